/* m2u-eval bench's report (perf_suite.h) from the result files its scripts
 * write: the ratios against the references, and parts that could not be
 * measured reported with their reason rather than dropped.  The inputs are
 * written here in the scripts' formats (the scripts themselves need PyTorch,
 * ffmpeg timings and minutes of CPU, which a test should not spend). */
#include "fileio.h"
#include "m2u_error.h"
#include "perf_suite.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR M2U_BUILD_DIR "/test_perf_suite_work"

static void put(const char *path, const char *text) {
    char *d = m2u_path_dirname(path);
    m2u_mkdir_p(d);
    free(d);
    CHECK(m2u_write_file_atomic(path, text, strlen(text)) == 0, "write %s", path);
}

static double ratio(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "ratio");
    return cJSON_IsNumber(r) ? r->valuedouble : NAN;
}

int main(void) {
    put(DIR "/build/bench_llama/m2u_tiny.json", "{\"impl\": \"m2u\", \"tokens_per_s\": 3000.0}");
    put(DIR "/build/bench_llama/torch_tiny.json", "{\"impl\": \"torch\", \"tokens_per_s\": 1500.0}");
    put(DIR "/build/bench_llama/m2u_15m.json", "{\"impl\": \"m2u\", \"tokens_per_s\": 1650.0}");
    put(DIR "/build/bench_llama/torch_15m.json", "{\"impl\": \"torch\", \"tokens_per_s\": 1100.0}");
    put(DIR "/build/bench_llama/m2u_110m-bf16.json", "{\"impl\": \"m2u\", \"tokens_per_s\": 300.0}");
    put(DIR "/build/bench_llama/torch_110m-bf16.json", "{\"impl\": \"torch\", \"tokens_per_s\": 3.0}");
    put(DIR "/build/bench_llama/torch_110m.json", "{\"impl\": \"torch\", \"tokens_per_s\": 250.0}");
    put(DIR "/build/bench_llama/m2u_7b_t512.json",
        "{\"impl\": \"m2u\", \"batch\": 1, \"seq\": 512, \"step_s_median\": 80.0, \"tokens_per_s\": 6.4,"
        " \"gflops\": 150.0, \"max_rss_mib\": 17408}");
    put(DIR "/build/bench_llama/m2u_7b_t128.json",
        "{\"impl\": \"m2u\", \"batch\": 1, \"seq\": 128, \"step_s_median\": 22.5, \"tokens_per_s\": 5.69,"
        " \"gflops\": 151.7, \"sgemm_peak_gflops\": 182.0, \"max_rss_mib\": 14336}");
    put(DIR "/build/bench_mert/m2u.json",
        "{\"side\": \"m2u\", \"audio_s_per_s\": 3.41, \"gflops\": 120.0, \"front_gflops\": 100.0,"
        " \"layers_gflops\": 150.0, \"sgemm_peak_gflops\": 200.0}");
    put(DIR "/build/bench_mert/torch.json", "{\"side\": \"torch\", \"audio_s_per_s\": 3.875, \"gflops\": 110.0}");
    put(DIR "/out/bench_dataset.json",
        "{\"decode\": {\"m2u\": {\"audio_s_per_cpu_s\": 412.0}, \"ffmpeg_f32le\": {\"audio_s_per_cpu_s\": 206.0}},"
        " \"analysis\": {\"audio_s_per_cpu_s\": 50.5}, \"builds\": [{\"recipes\": \"mucaps\", \"audio_s_per_cpu_s\": 36.2},"
        " {\"recipes\": \"all\", \"audio_s_per_cpu_s\": 14.2}], \"read\": {\"c\": {\"samples_per_cpu_s\": 1300.0},"
        " \"h5py\": {\"samples_per_cpu_s\": 1000.0}}}");
    if (t_fail) return t_finish("test_perf_suite");

    int ok[M2U_PERF_PARTS] = {0, 0, 0, 0};
    const char *none[M2U_PERF_PARTS] = {NULL, NULL, NULL, NULL};
    CHECK(m2u_perf_summarize(DIR "/build", DIR "/out/bench_dataset.json", DIR "/out", ok, none) == 0, "summarize: %s",
          m2u_last_error());
    char *md = NULL, *js = NULL;
    size_t len;
    CHECK(m2u_read_file(DIR "/out/bench.md", &md, &len) == 0 && m2u_read_file(DIR "/out/bench.json", &js, &len) == 0,
          "report files");
    if (md && js) {
        CHECK(strstr(md, "| tiny | 3000 | 1500 | 2.00× |") && strstr(md, "| 15m | 1650 | 1100 | 1.50× |"),
              "train rows: %s", md);
        /* 110m has a PyTorch file but no m2u one: not a row; its PyTorch fp32 figure still serves the bf16 row */
        CHECK(!strstr(md, "| 110m |"), "a config without results was listed");
        CHECK(strstr(md, "| 110m-bf16 | 300 | 3 | 100.00× |") &&
                  strstr(md, "110m-bf16: m2u bf16 against PyTorch's fp32 eager step: 300 / 250 tokens/s = 1.20×") &&
                  strstr(md, "torch.autocast"),
              "bf16 rows: %s", md);
        CHECK(strstr(md, "| 3.41 | 3.88 | 0.88× |"), "mert row");
        CHECK(strstr(md, "| GFLOP/s (share of the sgemm peak 200.0) | 120.0 (60%): front end 100.0 (50%), layers 150.0 (75%) | "
                         "110.0 (55%) | |"),
              "mert GFLOP/s row: %s", md);
        /* 7B rows in sequence order, each against the one peak measured in the first run */
        const char *r128 = strstr(md, "| 1 × 128 | 22.50 | 5.69 | 151.7 | 83% | 14.0 GiB |"),
                   *r512 = strstr(md, "| 1 × 512 | 80.00 | 6.40 | 150.0 | 82% | 17.0 GiB |");
        CHECK(r128 && r512 && r128 < r512 && strstr(md, "sgemm peak (2048³, same run): 182.0"), "7B rows: %s", md);
        CHECK(strstr(md, "| 412.0 | 206.0 (ffmpeg CLI) | 2.00× |") && strstr(md, "| 1300 | 1000 (h5py) | 1.30× |") &&
                  strstr(md, "recipes all (audio-s per CPU-s) | 14.2"),
              "dataset rows: %s", md);
        cJSON *o = cJSON_Parse(js);
        CHECK(fabs(ratio(o, "train", "tiny") - 2.0) < 1e-12 && fabs(ratio(o, "mert", NULL) - 3.41 / 3.875) < 1e-12 &&
                  fabs(ratio(o, "dataset", "read_vs_h5py") - 1.3) < 1e-12 &&
                  fabs(ratio(o, "train", "110m-bf16") - 100.0) < 1e-12 &&
                  fabs(ratio(o, "train", "110m-bf16-vs-torch-fp32") - 1.2) < 1e-12,
              "bench.json ratios");
        const cJSON *t7 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "train7b"), "t512");
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(t7, "pct_of_sgemm_peak");
        CHECK(cJSON_IsNumber(pp) && fabs(pp->valuedouble - 100 * 150.0 / 182.0) < 1e-9, "bench.json train7b");
        cJSON_Delete(o);
    }
    free(md), free(js);

    /* a failed part and an unselected one: reported with their reasons, the rest kept */
    int st[M2U_PERF_PARTS] = {1, 0, -1, 2};
    const char *why[M2U_PERF_PARTS] = {"python3 cannot import torch", NULL, "not selected",
                                       "needs about 15 GB of available memory, this machine has 7 GB"};
    CHECK(m2u_perf_summarize(DIR "/build", DIR "/out/bench_dataset.json", DIR "/out2", st, why) == 0, "summarize 2");
    md = NULL;
    CHECK(m2u_read_file(DIR "/out2/bench.md", &md, &len) == 0, "bench.md 2");
    if (md) {
        CHECK(strstr(md, "Not measured: python3 cannot import torch") && strstr(md, "Not measured: not selected") &&
                  strstr(md, "0.88×") && !strstr(md, "| tiny |") && !strstr(md, "1 × 128") &&
                  strstr(md, "Not measured: needs about 15 GB of available memory"),
              "failed parts: %s", md);
        free(md);
    }

    /* before each part runs, its old result files go (a --quick run of tiny and 15m showed an
     * older run's 110m rows as its own); other parts' files stay */
    CHECK(m2u_perf_clear(DIR "/build", DIR "/out/bench_dataset.json", 0) == 0 &&
              m2u_perf_clear(DIR "/build", DIR "/out/bench_dataset.json", 3) == 0,
          "clear: %s", m2u_last_error());
    CHECK(m2u_perf_clear(DIR "/build", DIR "/out/bench_dataset.json", 0) == 0, "clear again (nothing there): %s",
          m2u_last_error());
    CHECK(!m2u_file_exists(DIR "/build/bench_llama/m2u_tiny.json") &&
              !m2u_file_exists(DIR "/build/bench_llama/torch_110m.json") &&
              !m2u_file_exists(DIR "/build/bench_llama/m2u_7b_t512.json") &&
              !m2u_file_exists(DIR "/build/bench_llama/m2u_7b_t128.json") &&
              m2u_file_exists(DIR "/build/bench_mert/m2u.json") && m2u_file_exists(DIR "/out/bench_dataset.json"),
          "clear removed the train and train7b results only");
    int st3[M2U_PERF_PARTS] = {0, 0, 0, 0};
    CHECK(m2u_perf_summarize(DIR "/build", DIR "/out/bench_dataset.json", DIR "/out3", st3, none) == 0, "summarize 3");
    md = NULL;
    CHECK(m2u_read_file(DIR "/out3/bench.md", &md, &len) == 0, "bench.md 3");
    if (md) {
        CHECK(!strstr(md, "| tiny |") && !strstr(md, "| 110m-bf16 |") && !strstr(md, "1 × 128") && strstr(md, "0.88×"),
              "after clear: %s", md);
        free(md);
    }
    return t_finish("test_perf_suite");
}
