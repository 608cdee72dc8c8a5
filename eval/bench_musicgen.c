/* m2u side of eval/bench_musicgen.sh: MusicGen decoder LM generation throughput.
 *
 *   m2u-bench-musicgen DIR FRAMES [GUIDANCE [RUNS]]
 *
 * Loads DIR (a MusicGen checkpoint, e.g. the random one bench_musicgen_torch.py make writes),
 * conditions on fixed random encoder states [12, text_hidden] with a full mask (what the
 * text encoder would hand over), and times m2u_musicgen_generate: FRAMES + K - 1 decoder
 * passes with classifier-free guidance (batch of two), top-k 250 sampling.  Prints one JSON
 * line per run: wall seconds, frames per second, real-time factor at 50 frames per second, and
 * the process CPU seconds (the fair measure on a shared, oversubscribed machine). */
#include "m2u_error.h"
#include "musicgen.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR FRAMES [GUIDANCE [RUNS]]\n", argv[0]);
        return 2;
    }
    int frames = atoi(argv[2]), runs = argc > 4 ? atoi(argv[4]) : 1;
    float g = argc > 3 ? (float)atof(argv[3]) : 3.0f;
    if (frames < 1 || runs < 1) {
        fprintf(stderr, "bench_musicgen: FRAMES and RUNS must be positive\n");
        return 2;
    }
    double t0 = now();
    m2u_musicgen *m = NULL;
    if (m2u_musicgen_load(argv[1], 0, &m)) {
        fprintf(stderr, "bench_musicgen: %s\n", m2u_last_error());
        return 1;
    }
    double t_load = now() - t0;
    const m2u_musicgen_config *c = m2u_musicgen_get_config(m);
    int S = 12, K = c->codebooks, L = frames + K;
    float *enc = malloc((size_t)S * c->text_hidden * sizeof(float));
    int32_t *codes = malloc((size_t)K * frames * sizeof(int32_t));
    if (!enc || !codes) {
        fprintf(stderr, "bench_musicgen: out of memory\n");
        return 1;
    }
    m2u_rng r;
    m2u_rng_seed(&r, 1);
    for (int i = 0; i < S * c->text_hidden; i++) enc[i] = m2u_rng_normal(&r) * 0.1f;
    int rc = 0;
    for (int run = 0; run < runs; run++) {
        m2u_musicgen_gen_opts o = m2u_musicgen_default_opts(L);
        o.guidance_scale = g;
        o.seed = (uint64_t)run;
        double t1 = now(), c1 = cpu_now();
        if (m2u_musicgen_generate(m, enc, NULL, S, &o, codes, NULL)) {
            fprintf(stderr, "bench_musicgen: %s\n", m2u_last_error());
            rc = 1;
            break;
        }
        double dt = now() - t1, cpu = cpu_now() - c1;
        printf("{\"impl\": \"m2u\", \"frames\": %d, \"passes\": %d, \"seconds\": %.4f, \"frames_per_s\": %.3f, "
               "\"rtf\": %.4f, \"cpu_seconds\": %.4f, \"load_s\": %.3f, \"hidden\": %d, \"layers\": %d}\n",
               frames, L - 1, dt, frames / dt, dt / (frames / 50.0), cpu, t_load, c->hidden, c->layers);
        fflush(stdout);
    }
    free(enc);
    free(codes);
    m2u_musicgen_free(m);
    return rc;
}
