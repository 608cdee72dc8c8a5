/* EnCodec against transformers 4.46.3 EncodecModel: the fixtures of tests/make_encodec_fixtures.py hold two
 * tiny random 32 kHz-style codecs (an EnCodec directory with weight_g/weight_v safetensors, and a MusicGen
 * directory with the codec under "audio_encoder." in a pytorch_model.bin with parametrizations naming),
 * fixed codes with the audio transformers decoded from them, and fixed waveforms with the codes it encoded.
 *
 * Checked: decode (all codebooks, fewer codebooks, a single frame) within 1e-5 absolute; encode at every
 * target bandwidth (a waveform whose length is not a whole number of hops, and a 3-sample one that takes
 * the short-input reflect path) giving identical codes; the bandwidth -> codebook count rule; loading by
 * directory, by weight file and with an explicit prefix; and that unsupported configs, missing and
 * mis-shaped tensors, a wrong prefix and bad codes are refused with a message naming the file or input.
 * Kernels on their own: a transposed conv whose kernel is not a multiple of its stride, and the LSTM stack
 * against a direct double-precision LSTM, also when called inside a parallel region.
 * Reproducibility: the same codes decode to byte-identical audio every time and with 1, 2 or 3 threads (the
 * pipelined LSTM and the blocked convs once split their GEMMs by timing / thread count, and OpenBLAS's
 * rounding depends on a GEMM's shape: up to 2.5e-6 apart on these fixtures). */
#include "backend.h"
#include "encodec.h"
#include "fileio.h"
#include "m2u_error.h"
#include "ops_audio.h"
#include "test_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIX M2U_FIXTURES "/encodec"
#define TOL 1e-5

static double worst_abs;

static m2u_safetensors *open_ref(const char *name) {
    char path[512];
    snprintf(path, sizeof path, FIX "/ref_%s.safetensors", name);
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(path, &st) == 0, "%s", m2u_last_error());
    return st;
}

static void check_decode(const m2u_encodec *m, const m2u_safetensors *ref, const char *name, const char *tag) {
    char cn[64], an[64];
    snprintf(cn, sizeof cn, "%s.codes", tag);
    snprintf(an, sizeof an, "%s.audio", tag);
    const m2u_st_tensor *ct = m2u_st_find(ref, cn);
    int32_t *codes = t_st_ids(ref, cn, NULL);
    size_t n_ref = 0;
    float *audio = t_st_f32(ref, an, &n_ref);
    CHECK(ct && codes && audio && ct->ndim == 2, "%s: reference %s / %s missing", name, cn, an);
    if (ct && codes && audio && ct->ndim == 2) {
        float *wav = NULL;
        size_t n = 0;
        int rc = m2u_encodec_decode(m, codes, (int)ct->shape[0], (int)ct->shape[1], &wav, &n);
        CHECK(rc == 0, "%s %s: %s", name, tag, m2u_last_error());
        CHECK(rc != 0 || n == n_ref, "%s %s: %zu samples, reference %zu", name, tag, n, n_ref);
        if (rc == 0 && n == n_ref) {
            double e = 0;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)wav[i] - audio[i]);
                e = t_worse(e, d);
            }
            worst_abs = t_worse(worst_abs, e);
            CHECK(e <= TOL, "%s %s: max abs error %.3g", name, tag, e);
            printf("  %s %s: %d codebooks x %d frames -> %zu samples, max abs err %.2e\n", name, tag,
                   (int)ct->shape[0], (int)ct->shape[1], n, e);
        }
        free(wav);
    }
    free(codes);
    free(audio);
}

static void check_encode(const m2u_encodec *m, const m2u_safetensors *ref, const char *name, const char *tag) {
    const m2u_encodec_config *c = m2u_encodec_config_of(m);
    char wn[64], cn[64];
    snprintf(wn, sizeof wn, "%s.wav", tag);
    size_t n = 0;
    float *wav = t_st_f32(ref, wn, &n);
    CHECK(wav != NULL, "%s: reference %s missing", name, wn);
    for (int b = 0; wav && b < c->n_bandwidths; b++) {
        snprintf(cn, sizeof cn, "%s.codes.%d", tag, b);
        const m2u_st_tensor *ct = m2u_st_find(ref, cn);
        int32_t *want = t_st_ids(ref, cn, NULL);
        int K = 0;
        CHECK(m2u_encodec_codebooks_for_bandwidth(m, c->target_bandwidths[b], &K) == 0, "%s", m2u_last_error());
        CHECK(ct && want && ct->ndim == 2 && ct->shape[0] == K, "%s: reference %s missing or not %d codebooks", name,
              cn, K);
        if (ct && want && ct->ndim == 2 && ct->shape[0] == K) {
            int32_t *codes = NULL;
            int N = 0;
            int rc = m2u_encodec_encode(m, wav, n, K, &codes, &N);
            CHECK(rc == 0, "%s %s: %s", name, cn, m2u_last_error());
            CHECK(rc != 0 || N == ct->shape[1], "%s %s: %d frames, reference %d", name, cn, N, (int)ct->shape[1]);
            if (rc == 0 && N == ct->shape[1]) {
                int diff = 0;
                for (int i = 0; i < K * N; i++) diff += codes[i] != want[i];
                CHECK(diff == 0, "%s %s: %d of %d codes differ", name, cn, diff, K * N);
                printf("  %s %s: %zu samples at %g kbps -> %d x %d codes, %d differ\n", name, cn, n,
                       c->target_bandwidths[b], K, N, diff);
            }
            free(codes);
        }
        free(want);
    }
    free(wav);
}

static void test_model(const char *name, const char *path, const char *prefix) {
    m2u_encodec *m = NULL;
    CHECK(m2u_encodec_load(path, prefix, &m) == 0, "%s: %s", path, m2u_last_error());
    m2u_safetensors *ref = open_ref(name);
    if (m && ref) {
        check_decode(m, ref, name, "dec");
        check_decode(m, ref, name, "dec2");
        check_decode(m, ref, name, "dec1");
        check_encode(m, ref, name, "enc");
        check_encode(m, ref, name, "enc_short");
        const m2u_encodec_config *c = m2u_encodec_config_of(m);
        CHECK(c->hop_length == t_st_meta_int(ref, "hop"), "%s: hop %d", name, c->hop_length);
        CHECK(c->num_quantizers == t_st_meta_int(ref, "num_quantizers"), "%s: %d quantizers", name,
              c->num_quantizers);
    }
    m2u_encodec_free(m);
    m2u_st_close(ref);
}

/* ---- refusals ------------------------------------------------------------------------------------------ */

static char tmpdir[512];

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* A copy of encodec_a/ in tmpdir/<sub>/ whose config.json has `key` set to the JSON `value` (NULL: unchanged),
 * and whose weights are encodec_a's with tensor `drop` left out and tensor `reshape` given one row less
 * (NULL: neither). */
static void make_variant(const char *sub, const char *key, const char *value, const char *drop, const char *reshape,
                         char *dir, size_t n) {
    snprintf(dir, n, "%s/%s", tmpdir, sub);
    mkdir(dir, 0755);
    cJSON *cfg = t_json_load(FIX "/encodec_a/config.json");
    if (key) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, key);
        cJSON_AddItemToObject(cfg, key, cJSON_Parse(value));
    }
    char *text = cJSON_Print(cfg);
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(m2u_write_file_atomic(path, text, strlen(text)) == 0, "%s", m2u_last_error());
    free(text);
    cJSON_Delete(cfg);

    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(FIX "/encodec_a/model.safetensors", &st) == 0, "%s", m2u_last_error());
    if (!st) return;
    int cnt = m2u_st_count(st), k = 0;
    m2u_st_entry *e = calloc((size_t)cnt, sizeof *e);
    for (int i = 0; i < cnt; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        e[k].name = t->name;
        e[k].dtype = t->dtype;
        e[k].ndim = t->ndim;
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        e[k].data = t->data;
        if (reshape && strcmp(t->name, reshape) == 0) e[k].shape[0]--; /* fewer rows: data is long enough */
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(m2u_st_write(path, e, k, NULL, NULL, 0) == 0, "%s", m2u_last_error());
    free(e);
    m2u_st_close(st);
}

static void expect_refusal(const char *sub, const char *key, const char *value, const char *drop,
                           const char *reshape, const char *needle1, const char *needle2) {
    char dir[600];
    make_variant(sub, key, value, drop, reshape, dir, sizeof dir);
    m2u_encodec *m = NULL;
    int rc = m2u_encodec_load(dir, NULL, &m);
    const char *msg = m2u_last_error();
    CHECK(rc != 0 && m == NULL, "%s: loaded although it should be refused", sub);
    CHECK(rc != 0 && contains(msg, dir) && contains(msg, needle1) && (!needle2 || contains(msg, needle2)),
          "%s: message '%s' does not name the file and '%s'", sub, msg, needle1);
    printf("  refused %s: %s\n", sub, msg);
    m2u_encodec_free(m);
}

static void test_refusals(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/test_encodec_tmp", M2U_BUILD_DIR);
    mkdir(tmpdir, 0755);
    /* the unchanged copy loads: the variants below fail for their one change only */
    char dir[600];
    make_variant("same", NULL, NULL, NULL, NULL, dir, sizeof dir);
    m2u_encodec *m = NULL;
    CHECK(m2u_encodec_load(dir, NULL, &m) == 0, "unchanged copy: %s", m2u_last_error());
    m2u_encodec_free(m);

    expect_refusal("causal", "use_causal_conv", "true", NULL, NULL, "config.json", "use_causal_conv");
    expect_refusal("groupnorm", "norm_type", "\"time_group_norm\"", NULL, NULL, "config.json", "norm_type");
    expect_refusal("chunked", "chunk_length_s", "1.0", NULL, NULL, "config.json", "chunk_length_s");
    expect_refusal("normalize", "normalize", "true", NULL, NULL, "config.json", "normalize");
    expect_refusal("stereo", "audio_channels", "2", NULL, NULL, "config.json", "audio_channels");
    expect_refusal("padmode", "pad_mode", "\"circular\"", NULL, NULL, "config.json", "pad_mode");
    expect_refusal("cbdim", "codebook_dim", "8", NULL, NULL, "config.json", "codebook_dim");
    expect_refusal("badtype", "num_filters", "\"four\"", NULL, NULL, "config.json", "num_filters");
    expect_refusal("encodec24", "model_type", "\"wav2vec2\"", NULL, NULL, "config.json", "model_type");
    expect_refusal("missing", NULL, NULL, "decoder.layers.0.conv.bias", NULL, "model.safetensors",
                   "decoder.layers.0.conv.bias");
    expect_refusal("nov", NULL, NULL, "encoder.layers.4.block.1.conv.weight_v", NULL, "model.safetensors",
                   "encoder.layers.4.block.1.conv");
    expect_refusal("shape", NULL, NULL, NULL, "quantizer.layers.1.codebook.embed", "model.safetensors",
                   "quantizer.layers.1.codebook.embed");
    expect_refusal("lstmshape", NULL, NULL, NULL, "decoder.layers.1.lstm.weight_hh_l1", "model.safetensors",
                   "decoder.layers.1.lstm.weight_hh_l1");
    expect_refusal("fewerlstm", "num_lstm_layers", "1", NULL, NULL, "model.safetensors", "num_lstm_layers");
    /* sizes whose products would overflow: refused from the config, before any weight */
    expect_refusal("manyres", "num_residual_layers", "100000", NULL, NULL, "config.json", "num_residual_layers");
    expect_refusal("widekernel", "kernel_size", "2000000000", NULL, NULL, "config.json", "reach too far");
    /* a bandwidth whose quantizer count went through a cast out of int's range (found by fuzz_model_config) */
    expect_refusal("hugebw", "target_bandwidths", "[3.3e62]", NULL, NULL, "config.json", "quantizers");

    /* the MusicGen directory read without its prefix finds no codec tensors */
    m = NULL;
    CHECK(m2u_encodec_load(FIX "/musicgen_b", "", &m) != 0 && contains(m2u_last_error(), "pytorch_model.bin") &&
              contains(m2u_last_error(), "decoder.layers.0.conv"),
          "wrong prefix: %s", m2u_last_error());
    m2u_encodec_free(m);
    m = NULL;
    CHECK(m2u_encodec_load(FIX "/does_not_exist", NULL, &m) != 0 && contains(m2u_last_error(), "does_not_exist"),
          "missing dir: %s", m2u_last_error());

    /* bad inputs to decode / encode */
    m = NULL;
    CHECK(m2u_encodec_load_ex(FIX "/encodec_a", NULL, 0, &m) == 0, "%s", m2u_last_error());
    if (m) {
        int32_t codes[6] = {0, 1, 2, 3, 64, 5};
        float *wav = NULL;
        size_t n = 0;
        CHECK(m2u_encodec_decode(m, codes, 3, 2, &wav, &n) != 0 && contains(m2u_last_error(), "64") && !wav,
              "code out of range: %s", m2u_last_error());
        CHECK(m2u_encodec_decode(m, codes, 4, 1, &wav, &n) != 0 && contains(m2u_last_error(), "4 codebooks"),
              "too many codebooks: %s", m2u_last_error());
        float x[32] = {0};
        int32_t *out = NULL;
        int N = 0;
        CHECK(m2u_encodec_encode(m, x, 32, 1, &out, &N) != 0 && contains(m2u_last_error(), "encoder") && !out,
              "decode-only model encodes: %s", m2u_last_error());
        int K = 0;
        CHECK(m2u_encodec_codebooks_for_bandwidth(m, 6.0, &K) != 0 && contains(m2u_last_error(), "6"),
              "bandwidth 6: %s", m2u_last_error());
        CHECK(m2u_encodec_codebooks_for_bandwidth(m, 0, &K) == 0 && K == 2, "default bandwidth: %d codebooks", K);
    }
    m2u_encodec_free(m);
}

/* ---- kernels on their own: a transposed conv with k not a multiple of the stride ----------------------------- */

static void test_convtr_generic(void) {
    /* ConvTranspose1d(3 -> 2, k=5, stride=3) on 4 steps, computed directly */
    enum { CI = 3, CO = 2, KK = 5, S = 3, T = 4 };
    float w[CI * CO * KK], x[T * CI], b[CO] = {0.25f, -0.5f};
    for (int i = 0; i < CI * CO * KK; i++) w[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    for (int i = 0; i < T * CI; i++) x[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    int full = (T - 1) * S + KK;
    double ref[(T - 1) * S + KK][CO];
    for (int o = 0; o < full; o++)
        for (int co = 0; co < CO; co++) ref[o][co] = b[co];
    for (int t = 0; t < T; t++)
        for (int ci = 0; ci < CI; ci++)
            for (int co = 0; co < CO; co++)
                for (int j = 0; j < KK; j++) ref[t * S + j][co] += (double)x[t * CI + ci] * w[(ci * CO + co) * KK + j];
    float *pp = m2u_conv_transpose1d_pack(w, CI, CO, KK, S);
    float y[(T - 1) * S + KK][CO];
    int tl = 1, tr = 2, n = full - tl - tr;
    CHECK(m2u_conv_transpose1d_fwd(&y[0][0], x, T, CI, CO, KK, S, tl, tr, pp, b) == 0, "%s", m2u_last_error());
    double e = 0;
    for (int o = 0; o < n; o++)
        for (int co = 0; co < CO; co++) e = fmax(e, fabs(y[o][co] - ref[o + tl][co]));
    CHECK(e < 1e-6, "generic transposed conv: max abs err %.3g", e);
    free(pp);
}

/* ---- the LSTM stack against a direct double-precision LSTM, also from inside a parallel region ---------- */

static void lstm_ref(double *h, const float *x, int T, int In, int H, const float *wih, const float *whh,
                     const float *bih, const float *bhh) {
    double *c = calloc((size_t)H, sizeof(double)), *g = malloc((size_t)4 * H * sizeof(double));
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < 4 * H; r++) {
            double a = (double)bih[r] + bhh[r];
            for (int i = 0; i < In; i++) a += (double)wih[(size_t)r * In + i] * x[(size_t)t * In + i];
            if (t > 0)
                for (int i = 0; i < H; i++) a += (double)whh[(size_t)r * H + i] * h[(size_t)(t - 1) * H + i];
            g[r] = a;
        }
        for (int u = 0; u < H; u++) {
            double ig = 1 / (1 + exp(-g[u])), fg = 1 / (1 + exp(-g[H + u])), gg = tanh(g[2 * H + u]),
                   og = 1 / (1 + exp(-g[3 * H + u]));
            c[u] = fg * c[u] + ig * gg;
            h[(size_t)t * H + u] = og * tanh(c[u]);
        }
    }
    free(c);
    free(g);
}

static void test_lstm_stack(void) {
    enum { T = 37, IN = 6, H = 8, L = 2 };
    float *w[L][4];
    m2u_lstm_packed p[L];
    unsigned s = 12345;
    for (int l = 0; l < L; l++) {
        int in = l == 0 ? IN : H;
        size_t n[4] = {(size_t)4 * H * in, (size_t)4 * H * H, 4 * H, 4 * H};
        for (int k = 0; k < 4; k++) {
            w[l][k] = malloc(n[k] * sizeof(float));
            for (size_t i = 0; i < n[k]; i++) {
                s = s * 1103515245u + 12345u;
                w[l][k][i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.9f;
            }
        }
        CHECK(m2u_lstm_pack(&p[l], w[l][0], w[l][1], w[l][2], w[l][3], in, H) == 0, "%s", m2u_last_error());
    }
    float x[T * IN], h[T * H], h2[T * H], scratch[T * H];
    for (int i = 0; i < T * IN; i++) x[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    double r0[T * H], r1[T * H];
    float r0f[T * H];
    lstm_ref(r0, x, T, IN, H, w[0][0], w[0][1], w[0][2], w[0][3]);
    for (int i = 0; i < T * H; i++) r0f[i] = (float)r0[i];
    lstm_ref(r1, r0f, T, H, H, w[1][0], w[1][1], w[1][2], w[1][3]);
    CHECK(m2u_lstm_fwd(h, scratch, x, T, p, L) == 0, "%s", m2u_last_error());
    int rc = 0;
#pragma omp parallel num_threads(2)
    {
        /* nested: the inner team has one thread, which must run both layers */
#pragma omp single
        rc = m2u_lstm_fwd(h2, scratch, x, T, p, L);
    }
    CHECK(rc == 0, "nested: %s", m2u_last_error());
    double e = 0, e2 = 0;
    for (int i = 0; i < T * H; i++) {
        e = fmax(e, fabs(h[i] - r1[i]));
        e2 = fmax(e2, fabs(h2[i] - r1[i]));
    }
    CHECK(e < 1e-5, "LSTM stack: max abs err %.3g", e);
    CHECK(e2 < 1e-5, "LSTM stack inside a parallel region: max abs err %.3g", e2);
    for (int l = 0; l < L; l++) {
        m2u_lstm_packed_free(&p[l]);
        for (int k = 0; k < 4; k++) free(w[l][k]);
    }
}

/* ---- reproducibility ------------------------------------------------------------------------------------ */

/* N frames of pseudo-random codes decoded `reps` times with 2 threads (the pipelined LSTM, blocks handed out
 * dynamically): every result byte-identical to the first, whatever the timing.  Then with 1 and 3 threads:
 * equal to within 1e-5 (max abs) only.  m2u's own blocking never depends on the thread count, but
 * OpenBLAS's does: on this Zen machine a BLAS-threaded sgemm of 201 x 128 x 32 rounds differently with 1,
 * 2 and 3 threads (its per-thread split changes which edge kernels compute which elements), and the
 * decode's small GEMMs are BLAS-threaded.  The same holds for PyTorch, which promises bit-identity only
 * for the same thread count. */
static void test_reproducible(const char *name, const char *path, const char *prefix, int N, int reps) {
    m2u_encodec *m = NULL;
    CHECK(m2u_encodec_load_ex(path, prefix, 0, &m) == 0, "%s: %s", path, m2u_last_error());
    if (!m) return;
    const m2u_encodec_config *c = m2u_encodec_config_of(m);
    int K = c->num_quantizers, saved = m2u_max_threads();
    int32_t *codes = malloc((size_t)K * N * sizeof(int32_t));
    unsigned s = 2024u;
    for (int i = 0; codes && i < K * N; i++) {
        s = s * 1103515245u + 12345u;
        codes[i] = (int32_t)((s >> 8) % (unsigned)c->codebook_size);
    }
    float *first = NULL;
    size_t n_first = 0;
    int runs = 0, same = 0;
    const int threads[] = {1, 3};
    for (int r = 0; codes && r < reps + 2; r++) {
        m2u_set_threads(r < reps ? 2 : threads[r - reps]);
        float *wav = NULL;
        size_t n = 0;
        int rc = m2u_encodec_decode(m, codes, K, N, &wav, &n);
        CHECK(rc == 0, "%s reproducibility: %s", name, m2u_last_error());
        if (rc != 0) break;
        runs++;
        if (!first) {
            first = wav, n_first = n;
            same++;
            continue;
        }
        size_t diff = 0, at = 0;
        double worst = 0;
        for (size_t i = 0; n == n_first && i < n; i++)
            if (memcmp(&wav[i], &first[i], sizeof(float)) != 0) {
                if (!diff++) at = i;
                worst = fmax(worst, fabs((double)wav[i] - first[i]));
            }
        if (r < reps)
            CHECK(n == n_first && diff == 0,
                  "%s: decode %d (%d threads) differs from the first: %zu of %zu samples from %zu, max %.3g", name, r,
                  m2u_max_threads(), diff, n, at, worst);
        else
            CHECK(n == n_first && worst <= 1e-5, "%s: decode with %d threads differs from 2 threads by %.3g", name,
                  m2u_max_threads(), worst);
        same += n == n_first && diff == 0;
        free(wav);
    }
    m2u_set_threads(saved);
    printf("  %s: %d x %d codes decoded %d times (2 threads x %d, 1, 3): %d byte-identical to the first "
           "(the 2-thread runs must be)\n", name, K, N, runs, reps, same);
    free(first);
    free(codes);
    m2u_encodec_free(m);
}

int main(void) {
    test_model("encodec_a", FIX "/encodec_a", NULL);
    test_model("encodec_a", FIX "/encodec_a/model.safetensors", NULL);
    test_model("musicgen_b", FIX "/musicgen_b", NULL);
    test_model("musicgen_b", FIX "/musicgen_b/pytorch_model.bin", "audio_encoder.");
    test_refusals();
    test_convtr_generic();
    test_lstm_stack();
    test_reproducible("encodec_a", FIX "/encodec_a", NULL, 200, 8);
    test_reproducible("musicgen_b", FIX "/musicgen_b", "audio_encoder.", 201, 8);
    test_reproducible("musicgen_b", FIX "/musicgen_b", "audio_encoder.", 7, 8);
    printf("test_encodec: worst decode abs error %.3g (tolerance %g)\n", worst_abs, TOL);
    return t_finish("test_encodec");
}
