/* m2u side of eval/bench/bench_musicgen.sh: MusicGen decoder LM generation throughput.
 *
 *   m2u-bench-musicgen DIR FRAMES [GUIDANCE [RUNS]]
 *   m2u-bench-musicgen DIR --logits ENC.f32 OUT.f32
 *
 * The second form is the parity check at full size (bench_musicgen.sh --check): ENC.f32 holds
 * encoder states [12, text_hidden] (raw little-endian fp32); three decoder passes with CFG 3 are
 * fed the columns greedy generate feeds, and their raw logits [3][2][K][vocab] go to OUT.f32.
 *
 * Loads DIR (a MusicGen checkpoint, e.g. the random one bench_musicgen_torch.py make writes),
 * conditions on fixed random encoder states [12, text_hidden] with a full mask (what the
 * text encoder would hand over), and times m2u_musicgen_generate: FRAMES + K - 1 decoder
 * passes with classifier-free guidance (batch of two), top-k 250 sampling.  Prints one JSON
 * line per run: wall seconds, frames per second, real-time factor at 50 frames per second, and
 * the process CPU seconds (the fair measure on a shared, oversubscribed machine). */
#include "bench_args.h"
#include "m2u_error.h"
#include "musicgen.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Three CFG passes from the start column, the next columns as greedy generate builds them
 * (codebook k joins after k steps of delay). */
static int dump_logits(const m2u_musicgen *m, const char *enc_path, const char *out_path) {
    const m2u_musicgen_config *c = m2u_musicgen_get_config(m);
    int S = 12, K = c->codebooks, V = c->vocab, rc = 1;
    float *enc = malloc((size_t)S * c->text_hidden * sizeof(float));
    float *raw = malloc((size_t)2 * K * V * sizeof(float)), *g = malloc((size_t)K * V * sizeof(float));
    int32_t *col = malloc((size_t)K * sizeof(int32_t));
    FILE *fi = fopen(enc_path, "rb"), *fo = NULL;
    m2u_musicgen_session *s = NULL;
    if (!enc || !raw || !g || !col || !fi ||
        fread(enc, sizeof(float), (size_t)S * c->text_hidden, fi) != (size_t)S * c->text_hidden) {
        fprintf(stderr, "bench_musicgen: cannot read %d x %d floats from %s\n", S, c->text_hidden, enc_path);
        goto done;
    }
    if (m2u_musicgen_begin(m, enc, NULL, S, 1, 3, &s)) {
        fprintf(stderr, "bench_musicgen: %s\n", m2u_last_error());
        goto done;
    }
    if (!(fo = fopen(out_path, "wb"))) {
        fprintf(stderr, "bench_musicgen: cannot write %s\n", out_path);
        goto done;
    }
    for (int k = 0; k < K; k++) col[k] = c->start_id;
    for (int t = 0; t < 3; t++) {
        if (m2u_musicgen_step(s, col, 3.0f, raw, g)) {
            fprintf(stderr, "bench_musicgen: %s\n", m2u_last_error());
            goto done;
        }
        fwrite(raw, sizeof(float), (size_t)2 * K * V, fo);
        for (int k = 0; k < K; k++) col[k] = k <= t ? m2u_gen_argmax(g + (size_t)k * V, V) : c->start_id;
    }
    rc = 0;
done:
    if (fi) fclose(fi);
    if (fo && fclose(fo)) rc = 1;
    m2u_musicgen_session_free(s);
    free(enc), free(raw), free(g), free(col);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: m2u-bench-musicgen DIR FRAMES [GUIDANCE [RUNS]]\n"
               "       m2u-bench-musicgen DIR --logits ENC.f32 OUT.f32\n\n"
               "Times MusicGen's decoder LM generating FRAMES frames (+ K - 1 delay steps) with\n"
               "classifier-free guidance GUIDANCE (default 3) and top-k 250, RUNS times (default 1),\n"
               "on fixed random encoder states; prints one JSON line per run.  The second form\n"
               "writes three guided passes' raw logits for the parity check (bench_musicgen.sh --check).\n\n"
               "example: m2u-bench-musicgen build/bench/musicgen-small 250 3 2\n");
        return 0;
    }
    if (argc == 5 && strcmp(argv[2], "--logits") == 0) {
        m2u_musicgen *m = NULL;
        if (m2u_musicgen_load(argv[1], 0, &m)) {
            fprintf(stderr, "bench_musicgen: %s\n", m2u_last_error());
            return 1;
        }
        int rc = dump_logits(m, argv[3], argv[4]);
        m2u_musicgen_free(m);
        return rc;
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s DIR FRAMES [GUIDANCE [RUNS]]\n       %s DIR --logits ENC.f32 OUT.f32\n"
                        "(see --help)\n", argv[0], argv[0]);
        return 2;
    }
    const char *P = "m2u-bench-musicgen";
    long frames_l, runs_l = 1;
    double g_d = 3.0;
    if (parse_long(P, "FRAMES", argv[2], 1, 1000000, &frames_l) ||
        (argc > 3 && parse_positive(P, "GUIDANCE", argv[3], &g_d)) ||
        (argc > 4 && parse_long(P, "RUNS", argv[4], 1, 100000, &runs_l)))
        return 2;
    int frames = (int)frames_l, runs = (int)runs_l;
    float g = (float)g_d;
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
