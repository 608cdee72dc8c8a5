/* m2u-eval bench: the toolkit's own throughput figures in one report, each
 * against a reference measured in the same run by its benchmark script:
 *   train   eval/bench/bench_llama.sh   LoRA training step, m2u vs PyTorch eager (tokens/s)
 *   mert    eval/bench/bench_mert.sh    MERT feature extraction, m2u vs PyTorch (audio-s/s)
 *   dataset eval/bench/bench_dataset.sh decoding vs the ffmpeg CLI, analysis and build
 *                                 rates (audio-s per CPU-s), shard reading vs h5py
 *   train7b eval/bench/bench_llama7b.sh LoRA step on LLaMA-2-7B shapes (bf16 weights), m2u
 *                                 only: GFLOP/s against the sgemm peak measured in the same
 *                                 run, and peak memory (PyTorch fp32 would not fit)
 * The scripts need python3 with torch/transformers (train, mert) or h5py
 * (dataset) for their references; a part whose script fails is reported as
 * not measured, with the reason from its log, and the others still run. */
#ifndef M2U_PERF_SUITE_H
#define M2U_PERF_SUITE_H

enum { M2U_PERF_TRAIN = 1, M2U_PERF_MERT = 2, M2U_PERF_DATASET = 4, M2U_PERF_TRAIN7B = 8, M2U_PERF_ALL = 15 };
enum { M2U_PERF_PARTS = 4 };

typedef struct {
    const char *source_dir; /* the m2u source tree (its eval/ scripts) */
    const char *build_dir;  /* where the scripts build and cache (their --build) */
    const char *out_dir;    /* bench.json, bench.md, one log per part */
    const char *python;     /* interpreter for the references; NULL = python3 */
    unsigned parts;         /* M2U_PERF_* mask; 0 = all */
    int quick;              /* smaller configs and inputs; no 7B step unless asked by --only */
} m2u_perf_opts;

/* Run the selected scripts, then m2u_perf_summarize.  Returns 0 when the
 * report was written (parts may still be unmeasured), -1 otherwise. */
int m2u_perf_run(const m2u_perf_opts *o);

/* Remove part k's result files (the paths below; for train7b every m2u_7b_t<T>.json), so that a
 * run reports only what it measured: a --quick run of tiny and 15m must not show an older run's
 * 110m rows.  m2u_perf_run calls it before each part's script.  -1 (m2u_fail) when a file is
 * there and cannot be removed. */
int m2u_perf_clear(const char *build_dir, const char *dataset_json, int part);

/* The report from the scripts' result files: <build>/bench_llama/{m2u,torch}_<cfg>.json,
 * <build>/bench_mert/{m2u,torch}.json, the dataset JSON and <build>/bench_llama/m2u_7b_t<T>.json;
 * status[k] is the exit status of part k (train, mert, dataset, train7b; -1 = not run).  Writes
 * <out>/bench.json and <out>/bench.md atomically. */
int m2u_perf_summarize(const char *build_dir, const char *dataset_json, const char *out_dir,
                       const int status[M2U_PERF_PARTS], const char *const reason[M2U_PERF_PARTS]);

#endif
