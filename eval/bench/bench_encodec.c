/* m2u-bench-encodec: EnCodec decode speed (times real time) for MusicGen's codec.
 *
 * One run = m2u_encodec_decode of K x N codes (N = seconds * frame_rate) into N * hop samples.  The codes
 * come from the same 64-bit LCG as eval/bench/bench_encodec_torch.py, so the PyTorch side decodes the same codes;
 * the audio is written as .npy so eval/bench/bench_encodec.sh can report the agreement of the two sides. */
#include "bench_args.h"
#include "encodec.h"
#include "m2u_error.h"
#include "npy.h"
#include "progress.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Knuth's MMIX LCG; code = (state >> 33) % size (bench_encodec_torch.py's lcg_codes). */
static void make_codes(int32_t *c, long n, int size, unsigned long long seed) {
    unsigned long long s = seed;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        c[i] = (int32_t)((s >> 33) % (unsigned long long)size);
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: m2u-bench-encodec --model DIR [--seconds S] [--runs K] [--warmup W] [--threads N]\n"
               "                         [--seed S] [--audio PATH.npy] [--json PATH]\n"
               "\n"
               "Times EnCodec decode of S seconds (default 5) of LCG codes with every codebook of the\n"
               "checkpoint: W untimed runs (default 1), then K timed ones (default 3).  Prints the median\n"
               "run time and the real-time factor (audio seconds per second of decoding).\n"
               "\n"
               "example: m2u-bench-encodec --model build/bench_ckpt/encodec_32khz_random --seconds 10 --runs 5\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *audio_path = NULL, *json_path = NULL;
    double seconds = 5;
    int runs = 3, warmup = 1, threads = 0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "m2u-bench-encodec: %s needs a value (see --help)\n", a);
            return 2;
        }
        long lv;
        const char *P = "m2u-bench-encodec";
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--seconds")) {
            if (parse_positive(P, a, v, &seconds)) return 2;
        } else if (!strcmp(a, "--runs")) {
            if (parse_long(P, a, v, 1, 100000, &lv)) return 2;
            runs = (int)lv;
        } else if (!strcmp(a, "--warmup")) {
            if (parse_long(P, a, v, 0, 100000, &lv)) return 2;
            warmup = (int)lv;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(P, a, v, 0, 4096, &lv)) return 2;
            threads = (int)lv;
        } else if (!strcmp(a, "--seed")) {
            if (parse_long(P, a, v, 0, 2147483647L, &lv)) return 2;
            seed = (unsigned long long)lv;
        } else if (!strcmp(a, "--audio")) audio_path = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else {
            fprintf(stderr, "m2u-bench-encodec: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!model || !(seconds > 0) || runs < 1 || warmup < 0) {
        usage(stderr);
        return 2;
    }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    threads = omp_get_max_threads();
    m2u_encodec *m = NULL;
    double tl = m2u_now();
    if (m2u_encodec_load_ex(model, NULL, 0, &m) != 0) {
        fprintf(stderr, "m2u-bench-encodec: %s\n", m2u_last_error());
        return 1;
    }
    tl = m2u_now() - tl;
    const m2u_encodec_config *c = m2u_encodec_config_of(m);
    int K = c->num_quantizers, N = (int)(seconds * c->frame_rate + 0.5);
    if (N < 1) N = 1;
    int32_t *codes = malloc((size_t)K * N * sizeof(int32_t));
    double *t = malloc((size_t)runs * sizeof(double)), cpu = 0;
    float *wav = NULL;
    size_t n = 0;
    if (!codes || !t) {
        fprintf(stderr, "m2u-bench-encodec: out of memory\n");
        return 1;
    }
    make_codes(codes, (long)K * N, c->codebook_size, seed);
    for (int r = 0; r < warmup + runs; r++) {
        free(wav);
        wav = NULL;
        double t0 = m2u_now(), c0 = cpu_s();
        if (m2u_encodec_decode(m, codes, K, N, &wav, &n) != 0) {
            fprintf(stderr, "m2u-bench-encodec: %s\n", m2u_last_error());
            return 1;
        }
        if (r >= warmup) {
            t[r - warmup] = m2u_now() - t0;
            cpu += cpu_s() - c0;
        }
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = t[runs / 2], audio_s = (double)n / c->sampling_rate;
    cpu /= runs;
    printf("m2u   decode %d x %d codes -> %.2f s of audio, %d threads: median %.3f s (best %.3f) -> %.1fx real time;"
           " %.3f CPU-s per run (load %.2f s)\n",
           K, N, audio_s, threads, med, t[0], audio_s / med, cpu, tl);
    if (audio_path) {
        int64_t shape[1] = {(int64_t)n};
        if (m2u_npy_write(audio_path, M2U_F32, wav, 1, shape) != 0) {
            fprintf(stderr, "m2u-bench-encodec: %s\n", m2u_last_error());
            return 1;
        }
    }
    if (json_path) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "side", "m2u");
        cJSON_AddNumberToObject(o, "audio_seconds", audio_s);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "median_s", med);
        cJSON_AddNumberToObject(o, "best_s", t[0]);
        cJSON_AddNumberToObject(o, "x_real_time", audio_s / med);
        cJSON_AddNumberToObject(o, "cpu_s", cpu);
        char *s = cJSON_Print(o);
        FILE *f = fopen(json_path, "w");
        if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0) {
            fprintf(stderr, "m2u-bench-encodec: cannot write %s\n", json_path);
            return 1;
        }
        free(s);
        cJSON_Delete(o);
    }
    free(wav);
    free(codes);
    free(t);
    m2u_encodec_free(m);
    return 0;
}
