/* m2u-bench-mert: MERT feature-extraction throughput (audio seconds per second).
 *
 * One run = Wav2Vec2FeatureExtractor normalisation + the whole MERT forward with
 * the per-layer time means of every hidden state ([layers+1, hidden], what a
 * dataset shard stores) for --seconds of audio at the model's sampling rate.
 * The audio comes from the same 64-bit LCG as eval/bench/bench_mert_torch.py, so the
 * PyTorch side sees the same samples; the layer means are written as .npy so
 * eval/bench/bench_mert.sh can report the agreement of the two sides as well.
 *
 * It also splits the time between the front end (conv feature encoder, projection,
 * positional conv) and the transformer layers, counts each stage's FLOPs
 * (m2u_mert_flops) and reports their GFLOP/s against the sgemm peak measured in
 * the same process with the same threads. */
#include "bench_common.h"
#include "log.h"
#include "progress.h"
#include "m2u_error.h"
#include "mert_encoder.h"
#include "npy.h"
#include "ops_extra.h" /* m2u_linear_pack_enable */

#include <cblas.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Knuth's MMIX LCG; sample = (top 24 bits / 2^24 - 0.5) * 0.5, exactly representable in fp32. */
static void make_audio(float *x, long n, unsigned long long seed) {
    unsigned long long s = seed;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.5f;
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: m2u-bench-mert --model DIR [--seconds S] [--runs K] [--warmup W] [--threads N]\n"
               "                      [--seed S] [--peak-n N] [--packed on|off] [--means PATH.npy] [--json PATH]\n"
               "\n"
               "Times MERT feature extraction (normalise + forward + per-layer time means) on S seconds\n"
               "(default 10) of LCG noise at the checkpoint's sampling rate: W untimed runs (default 1),\n"
               "then K timed ones (default 3).  Prints audio seconds per second (S / median run time),\n"
               "the median time of the front end (conv feature encoder, projection, positional conv)\n"
               "and of the transformer layers, each stage's GFLOP/s (products only) and the share of\n"
               "the sgemm peak: the best N x N x N sgemm in this process, OpenBLAS's or oneDNN's (--peak-n,\n"
               "default 2048; 0 skips it).  --packed off runs the encoder layers' products on the weights as\n"
               "stored (m2u_linear_fwd) instead of their packed copies (m2u_linear_pack_new), for A/B runs.\n"
               "\n"
               "example:\n"
               "  m2u-bench-mert --model build/bench_ckpt/mert_95m --seconds 10 --threads 2 --json m2u.json\n");
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    const char *model = NULL, *means_path = NULL, *json_path = NULL;
    double seconds = 10;
    int runs = 3, warmup = 1, threads = 0, peak_n = 2048;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "m2u-bench-mert: %s needs a value (see --help)\n", a);
            return 2;
        }
        long l = 0;
        int rc = 0;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--seconds")) rc = parse_positive("m2u-bench-mert", a, v, &seconds);
        else if (!strcmp(a, "--runs")) rc = parse_long("m2u-bench-mert", a, v, 1, 100000, &l), runs = (int)l;
        else if (!strcmp(a, "--warmup")) rc = parse_long("m2u-bench-mert", a, v, 0, 100000, &l), warmup = (int)l;
        else if (!strcmp(a, "--threads")) rc = parse_long("m2u-bench-mert", a, v, 1, 4096, &l), threads = (int)l;
        else if (!strcmp(a, "--seed")) rc = parse_long("m2u-bench-mert", a, v, 0, LONG_MAX, &l), seed = (unsigned long long)l;
        else if (!strcmp(a, "--peak-n")) rc = parse_long("m2u-bench-mert", a, v, 0, 16384, &l), peak_n = (int)l;
        else if (!strcmp(a, "--packed")) {
            if (v && (!strcmp(v, "on") || !strcmp(v, "off")))
                m2u_linear_pack_enable(!strcmp(v, "on"));
            else {
                fprintf(stderr, "m2u-bench-mert: --packed takes on or off, not '%s'\n", v ? v : "(nothing)");
                rc = 2;
            }
        } else if (!strcmp(a, "--means")) means_path = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else {
            fprintf(stderr, "m2u-bench-mert: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
        if (rc) return 2;
        i++;
    }
    if (!model) {
        fprintf(stderr, "m2u-bench-mert: --model DIR is required (see --help)\n");
        return 2;
    }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    threads = omp_get_max_threads();
    m2u_mert *m = NULL;
    if (m2u_mert_load(model, &m) != 0) {
        fprintf(stderr, "m2u-bench-mert: %s\n", m2u_last_error());
        return 1;
    }
    const m2u_mert_config *c = m2u_mert_config_of(m);
    long n = (long)(seconds * c->sampling_rate);
    int L1 = c->layers + 1, H = c->dims.hidden;
    float *wav = malloc((size_t)n * sizeof(float)), *iv = malloc((size_t)n * sizeof(float));
    float *means = malloc((size_t)L1 * H * sizeof(float));
    double *t = malloc(3 * (size_t)runs * sizeof(double)), *tf = t + runs, *tl = t + 2 * runs;
    if (!wav || !iv || !means || !t) {
        fprintf(stderr, "m2u-bench-mert: out of memory\n");
        return 1;
    }
    make_audio(wav, n, seed);
    /* one workspace for all runs, as a dataset build keeps one from clip to clip: the warm-up
     * run sizes it, the timed ones reuse it */
    m2u_mert_ws ws = {0};
    for (int r = 0; r < warmup + runs; r++) {
        m2u_mert_times st;
        double t0 = m2u_now();
        m2u_mert_preprocess(m, wav, n, iv);
        if (m2u_mert_forward_timed(m, &ws, iv, n, NULL, means, &st) != 0) {
            fprintf(stderr, "m2u-bench-mert: %s\n", m2u_last_error());
            return 1;
        }
        if (r >= warmup) t[r - warmup] = m2u_now() - t0, tf[r - warmup] = st.front_s, tl[r - warmup] = st.layers_s;
    }
    double med = median(t, runs), med_f = median(tf, runs), med_l = median(tl, runs), fl_f, fl_l, peak = 0;
    m2u_mert_flops(c, n, &fl_f, &fl_l);
    if (peak_n > 0 && sgemm_peak("m2u-bench-mert", peak_n, &peak)) return 1;
    printf("m2u   %s: %d layers x %d, %.1f s of audio (%d frames), %d threads: median %.3f s -> %.2f audio-s/s\n",
           model, c->layers, H, seconds, m2u_mert_n_frames(m, n), threads, med, seconds / med);
    printf("      front end %.3f s (%.1f GFLOP, %.1f GFLOP/s), layers %.3f s (%.1f GFLOP, %.1f GFLOP/s), "
           "whole run %.1f GFLOP/s",
           med_f, fl_f * 1e-9, fl_f / med_f * 1e-9, med_l, fl_l * 1e-9, fl_l / med_l * 1e-9,
           (fl_f + fl_l) / med * 1e-9);
    if (peak > 0)
        printf("; sgemm peak %.1f GFLOP/s (%d^3): front end %.0f%%, layers %.0f%%, whole %.0f%%", peak, peak_n,
               100 * fl_f / med_f * 1e-9 / peak, 100 * fl_l / med_l * 1e-9 / peak,
               100 * (fl_f + fl_l) / med * 1e-9 / peak);
    printf("\n");
    if (means_path) {
        int64_t shape[2] = {L1, H};
        if (m2u_npy_write(means_path, M2U_F32, means, 2, shape) != 0) {
            fprintf(stderr, "m2u-bench-mert: %s\n", m2u_last_error());
            return 1;
        }
    }
    if (json_path) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "side", "m2u");
        cJSON_AddNumberToObject(o, "seconds", seconds);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "median_s", med);
        cJSON_AddNumberToObject(o, "audio_s_per_s", seconds / med);
        cJSON_AddNumberToObject(o, "front_s_median", med_f);
        cJSON_AddNumberToObject(o, "layers_s_median", med_l);
        cJSON_AddNumberToObject(o, "front_gflop", fl_f * 1e-9);
        cJSON_AddNumberToObject(o, "layers_gflop", fl_l * 1e-9);
        cJSON_AddNumberToObject(o, "gflops", (fl_f + fl_l) / med * 1e-9);
        cJSON_AddNumberToObject(o, "front_gflops", fl_f / med_f * 1e-9);
        cJSON_AddNumberToObject(o, "layers_gflops", fl_l / med_l * 1e-9);
        if (peak > 0) {
            cJSON_AddNumberToObject(o, "sgemm_n", peak_n);
            cJSON_AddNumberToObject(o, "sgemm_peak_gflops", peak);
        }
        char *s = cJSON_Print(o);
        FILE *f = fopen(json_path, "w");
        if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0) {
            fprintf(stderr, "m2u-bench-mert: cannot write %s\n", json_path);
            return 1;
        }
        free(s);
        cJSON_Delete(o);
    }
    m2u_mert_ws_free(&ws);
    free(wav);
    free(iv);
    free(means);
    free(t);
    m2u_mert_free(m);
    return 0;
}
