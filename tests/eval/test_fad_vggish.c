/* FAD on VGGish as fad_pytorch 0.0.6 (tests/make_vggish_fixtures.py: a tiny torchvggish-layout
 * network, WAVs at 4 - 48 kHz with 1 - 3 channels, the reference pipeline's outputs):
 *   - the resampler equals torchaudio's Resample(rate, 16000) at 48k 44.1k 32k 24k 22.05k 16k
 *     8k 4k (within 2e-6 absolute on noise of std 0.3);
 *   - the checkpoint loads from .pth and .safetensors with the widths of its shapes;
 *   - the front end (decode, resample, PadCrop at 0, stereo, clamp, mean, log-mel) gives the
 *     reference's examples (within 5e-4 absolute on values of -5 .. 3; 6e-6 where the bands
 *     have energy, the bound is for near-empty bands of upsampled 4 kHz audio);
 *   - the rows of both sets equal the reference's (within 1e-5 of the largest |row value|),
 *     file and crop counts are right, the .txt is ignored;
 *   - `m2u-eval fad --embed vggish` prints fad_score's number within 1e-4 relative, writes the
 *     report (checkpoint sha256) and the dumps; bad option combinations exit 2. */
#include "decode.h"
#include "distribution_metrics.h"
#include "fad_vggish.h"
#include "fileio.h"
#include "m2u_error.h"
#include "sha256.h"
#include "sinc_resample.h"
#include "test_util.h"
#include "vggish.h"
#include "wav.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#define FIX M2U_FIXTURES "/vggish"
#define WORK M2U_BUILD_DIR "/test_fad_vggish_work"

static double max_abs_diff(const float *a, const double *b, size_t n, double *scale) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d || e != e ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    if (scale) *scale = s;
    return d;
}

static void t_resampler(void) {
    static const int rates[] = {48000, 44100, 32000, 24000, 22050, 16000, 8000, 4000};
    double worst = 0;
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        char p[512], q[512];
        snprintf(p, sizeof p, FIX "/resample_%d.npy", rates[r]);
        snprintf(q, sizeof q, FIX "/resample_%d_out.npy", rates[r]);
        double *x = NULL, *y = NULL;
        size_t nx, cx, ny, cy;
        CHECK(m2u_npy_read_matrix(p, &x, &nx, &cx) == 0 && m2u_npy_read_matrix(q, &y, &ny, &cy) == 0, "%s",
              m2u_last_error());
        if (!x || !y) goto next;
        m2u_sinc_resampler rs;
        CHECK(m2u_sinc_resampler_init(&rs, rates[r], 16000) == 0, "%s", m2u_last_error());
        int64_t len = m2u_sinc_resampled_length(&rs, (int64_t)nx);
        CHECK(len == (int64_t)ny, "%d Hz: %lld output samples, torchaudio %zu", rates[r], (long long)len, ny);
        float *xf = malloc(nx * sizeof *xf), *yf = malloc((size_t)len * sizeof *yf);
        for (size_t i = 0; i < nx; i++) xf[i] = (float)x[i];
        m2u_sinc_resample(&rs, xf, (int64_t)nx, yf, len);
        double d = max_abs_diff(yf, y, len < (int64_t)ny ? (size_t)len : ny, NULL);
        printf("test_fad_vggish: resample %5d -> 16000 Hz: max |error| %.3g (%zu samples)\n", rates[r], d, ny);
        CHECK(d <= 2e-6, "%d Hz: resampler differs from torchaudio by %g", rates[r], d);
        worst = d > worst ? d : worst;
        free(xf), free(yf);
        m2u_sinc_resampler_free(&rs);
    next:
        free(x), free(y);
    }
}

/* decode keep_channels: a 3-channel 32 kHz WAV gives its first two channels at 32 kHz,
 * interleaved, each sample int16 / 32768 exactly (torchaudio.load) */
static void t_decode_channels(void) {
    const char *path = FIX "/ref/sub/c_32k_3ch.wav";
    char *raw = NULL;
    size_t len = 0;
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info info;
    m2u_audio_opts o = {.keep_channels = 2};
    CHECK(m2u_read_file(path, &raw, &len) == 0 && len > 44, "read %s", path);
    CHECK(m2u_audio_decode_ex(path, 0, &o, &pcm, &n, &info) == 0, "%s", m2u_last_error());
    size_t frames = (len - 44) / 6; /* python's wave module: a 44-byte header, 3 x int16 per frame */
    CHECK(pcm && info.src_rate == 32000 && info.out_channels == 2 && (size_t)n == 2 * frames,
          "decoded %lld samples, %d channels at %d Hz (want %zu x 2 at 32000)", (long long)n, info.out_channels,
          info.src_rate, frames);
    int exact = pcm && (size_t)n == 2 * frames;
    for (size_t i = 0; exact && i < frames; i++)
        for (int c = 0; c < 2; c++) {
            const unsigned char *b = (const unsigned char *)raw + 44 + (i * 3 + (size_t)c) * 2;
            int16_t v = (int16_t)(b[0] | b[1] << 8);
            exact &= pcm[i * 2 + (size_t)c] == (float)v / 32768.0f;
        }
    CHECK(exact, "keep_channels samples are not int16 / 32768");
    free(raw), free(pcm);
}

/* the reference's file list and FAD from expected.json */
static cJSON *expected(void) {
    char *txt = NULL;
    size_t len;
    if (m2u_read_file(FIX "/expected.json", &txt, &len)) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    return j;
}

static void t_model_and_front_end(const cJSON *exp) {
    m2u_vggish *a = NULL, *b = NULL;
    CHECK(m2u_vggish_load(FIX "/vggish_tiny.pth", &a) == 0, "%s", m2u_last_error());
    CHECK(m2u_vggish_load(FIX "/vggish_tiny.safetensors", &b) == 0, "%s", m2u_last_error());
    if (!a || !b) goto done;
    const m2u_vggish_config *c = m2u_vggish_config_of(a);
    static const int want[6] = {4, 8, 8, 8, 16, 16};
    CHECK(!memcmp(c->conv, want, sizeof want) && c->fc_in == 384 && c->fc1 == 32 && c->fc2 == 32 && c->dim == 8,
          "widths from the shapes: conv %d..%d fc %d %d %d dim %d", c->conv[0], c->conv[5], c->fc_in, c->fc1, c->fc2,
          c->dim);

    /* the reference's examples: ref file (sorted) f, chunk k */
    double *lm = NULL;
    size_t nr, nc;
    CHECK(m2u_npy_read_matrix(FIX "/logmel_examples.npy", &lm, &nr, &nc) == 0 && nc == 96 * 64, "%s",
          m2u_last_error());
    const cJSON *picks = cJSON_GetObjectItem(exp, "logmel_examples"), *files = cJSON_GetObjectItem(exp, "ref_files");
    float *mono = malloc(M2U_FAD_SAMPLE_SIZE * sizeof *mono), *ex = malloc(96 * 64 * sizeof *ex);
    float ea[8], eb[8];
    for (int i = 0; lm && i < cJSON_GetArraySize(picks) && (size_t)i < nr; i++) {
        const cJSON *pk = cJSON_GetArrayItem(picks, i);
        int f = cJSON_GetObjectItem(pk, "file")->valueint, k = cJSON_GetObjectItem(pk, "chunk")->valueint;
        char path[512];
        snprintf(path, sizeof path, FIX "/%s", cJSON_GetArrayItem(files, f)->valuestring);
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        m2u_audio_opts o = {.keep_channels = 2};
        CHECK(m2u_audio_decode_ex(path, 0, &o, &pcm, &n, &info) == 0, "%s", m2u_last_error());
        if (!pcm) continue;
        CHECK(m2u_fad_vggish_prepare(pcm, (long)(n / info.out_channels), info.out_channels, info.src_rate, mono, NULL,
                                     NULL) == 0,
              "%s", m2u_last_error());
        CHECK(m2u_vggish_log_mel(mono + (size_t)k * M2U_FAD_HOP, M2U_FAD_HOP, ex) == 0, "%s", m2u_last_error());
        double d = max_abs_diff(ex, lm + (size_t)i * nc, nc, NULL);
        printf("test_fad_vggish: log-mel of %s chunk %d (%d Hz, %d ch): max |error| %.3g\n", path + strlen(FIX) + 1, k,
               info.src_rate, info.out_channels, d);
        /* the resampled samples differ from torch's float32 conv1d by an ulp or so (above); a band
         * with almost no energy amplifies that through log(mel + 0.01) (slope up to 100): 4 kHz
         * audio upsampled leaves everything above 2 kHz near 0, the worst case here */
        CHECK(d <= 5e-4, "log-mel example %d differs by %g", i, d);
        /* both checkpoint formats give the same network */
        CHECK(m2u_vggish_forward(a, ex, 1, ea) == 0 && m2u_vggish_forward(b, ex, 1, eb) == 0 && !memcmp(ea, eb, sizeof ea),
              ".pth and .safetensors give different embeddings");
        free(pcm);
    }
    free(mono), free(ex), free(lm);
    /* too short for an example, and the real layout's shape checks */
    CHECK(m2u_vggish_n_examples(15599) == 0 && m2u_vggish_n_examples(15600) == 1 && m2u_vggish_n_examples(26214) == 1,
          "example count");
done:
    m2u_vggish_free(a);
    m2u_vggish_free(b);
}

static void t_rows(const cJSON *exp) {
    m2u_vggish *m = NULL;
    CHECK(m2u_vggish_load(FIX "/vggish_tiny.pth", &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    static const char *const side[2] = {"ref", "gen"};
    for (int s = 0; s < 2; s++) {
        char dir[256], npy[256], key[32];
        snprintf(dir, sizeof dir, FIX "/%s", side[s]);
        snprintf(npy, sizeof npy, FIX "/%s_emb.npy", side[s]);
        m2u_audio_embeddings e;
        m2u_fad_vggish_counts cnt;
        CHECK(m2u_fad_vggish_embed_dir(m, dir, &e, &cnt) == 0, "%s", m2u_last_error());
        double *ref = NULL;
        size_t nr = 0, nc = 0;
        CHECK(m2u_npy_read_matrix(npy, &ref, &nr, &nc) == 0, "%s", m2u_last_error());
        snprintf(key, sizeof key, "%s_cropped", side[s]);
        CHECK(e.files == 4 && e.files_skipped == 0 && cnt.cropped == cJSON_GetObjectItem(exp, key)->valueint &&
                  cnt.silent == 0,
              "%s: %ld files, %ld skipped, %ld cropped, %ld silent", side[s], e.files, e.files_skipped, cnt.cropped,
              cnt.silent);
        CHECK(e.n == nr && e.dim == nc, "%s: %zu x %zu rows, reference %zu x %zu", side[s], e.n, e.dim, nr, nc);
        if (e.n == nr && e.dim == nc) {
            float *f = malloc(e.n * e.dim * sizeof *f);
            for (size_t i = 0; i < e.n * e.dim; i++) f[i] = (float)e.rows[i];
            double scale, d = max_abs_diff(f, ref, e.n * e.dim, &scale);
            printf("test_fad_vggish: %s rows: max |error| %.3g (largest |value| %.3g)\n", side[s], d, scale);
            CHECK(d <= 1e-5 * scale, "%s rows differ by %g", side[s], d);
            free(f);
        }
        free(ref);
        m2u_audio_embeddings_free(&e);
    }
    m2u_vggish_free(m);
}

/* the deterministic choices: a silent file is kept (its 10 rows counted as silent), an
 * undecodable one skipped, other extensions ignored */
static void t_silent_and_broken(void) {
    t_sh("rm -rf '%s/odd' && mkdir -p '%s/odd/deep' && cp '%s/ref/b_44k_mono.wav' '%s/odd/deep/B.WaV' && "
       "echo 'not audio' > '%s/odd/broken.mp3' && cp '%s/ref/b_44k_mono.wav' '%s/odd/ignored.m4a'",
       WORK, WORK, FIX, WORK, WORK, FIX, WORK);
    float zeros[8000] = {0};
    CHECK(m2u_wav_write(WORK "/odd/silent.wav", zeros, 8000, 1, 8000, M2U_WAV_PCM16) == 0, "%s", m2u_last_error());
    m2u_vggish *m = NULL;
    m2u_audio_embeddings e;
    m2u_fad_vggish_counts cnt;
    CHECK(m2u_vggish_load(FIX "/vggish_tiny.pth", &m) == 0 && m2u_fad_vggish_embed_dir(m, WORK "/odd", &e, &cnt) == 0,
          "%s", m2u_last_error());
    CHECK(m && e.files == 3 && e.files_skipped == 1 && e.n == 20 && cnt.silent == 1 && cnt.cropped == 0,
          "%ld files, %ld skipped, %zu rows, %ld silent", e.files, e.files_skipped, e.n, cnt.silent);
    /* the silent file's rows: every chunk is log(0.01), so all ten are the same row (up to the
     * GEMM's blocking: OpenBLAS may sum a batch's tail rows in another order) */
    for (size_t r = 11; m && e.n == 20 && r < 20; r++)
        for (size_t j = 0; j < e.dim; j++)
            CHECK(fabs(e.rows[r * e.dim + j] - e.rows[10 * e.dim + j]) <= 1e-5 * (1 + fabs(e.rows[10 * e.dim + j])),
                  "silent rows differ: row %zu col %zu", r, j);
    m2u_audio_embeddings_free(&e);
    m2u_vggish_free(m);
}

/* the reference's own rows through m2u's distance: isolates the float32 NS-20 */
static void t_distance(const cJSON *exp) {
    double fad = cJSON_GetObjectItem(exp, "fad")->valuedouble, *a = NULL, *b = NULL;
    size_t na, nb, ca, cb;
    CHECK(m2u_npy_read_matrix(FIX "/ref_emb.npy", &a, &na, &ca) == 0 && m2u_npy_read_matrix(FIX "/gen_emb.npy", &b, &nb, &cb) == 0,
          "%s", m2u_last_error());
    if (a && b) {
        float *fa = malloc(na * ca * sizeof *fa), *fb = malloc(nb * cb * sizeof *fb);
        for (size_t i = 0; i < na * ca; i++) fa[i] = (float)a[i];
        for (size_t i = 0; i < nb * cb; i++) fb[i] = (float)b[i];
        double fd = NAN, exact = NAN;
        CHECK(m2u_frechet_distance_ns(fa, na, fb, nb, ca, 20, &fd) == 0, "%s", m2u_last_error());
        CHECK(m2u_frechet_distance(a, na, b, nb, ca, &exact) == 0, "%s", m2u_last_error());
        printf("test_fad_vggish: NS-20 on the reference rows %.9g vs fad_score %.9g (relative %.2g); exact FD %.9g\n",
               fd, fad, fabs(fd - fad) / fad, exact);
        /* float32 throughout, but OpenBLAS and torch sum the products in different orders, and
         * 20 iterations of three products each carry that: ~1e-5 relative */
        CHECK(fabs(fd - fad) <= 5e-5 * fad, "NS-20 distance %.9g vs fad_score %.9g", fd, fad);
        free(fa), free(fb);
    }
    free(a), free(b);
}

static void t_cli(const cJSON *exp) {
    double fad = cJSON_GetObjectItem(exp, "fad")->valuedouble;
    CHECK(t_sh("'%s/m2u-eval' fad --embed vggish --vggish '%s/vggish_tiny.pth' --ref '%s/ref' --gen '%s/gen' "
             "--out '%s/rep.json' --dump-ref '%s/a.npy' --dump-gen '%s/b.npy' > '%s/out.txt' 2> '%s/err.txt'",
             M2U_BUILD_DIR, FIX, FIX, FIX, WORK, WORK, WORK, WORK, WORK) == 0,
          "m2u-eval fad --embed vggish failed (see %s/err.txt)", WORK);
    char *txt = NULL;
    size_t len;
    double v = NAN, v2 = NAN;
    if (m2u_read_file(WORK "/out.txt", &txt, &len) == 0) {
        sscanf(txt, "frechet distance %lf", &v);
        const char *s = strstr(txt, "FAD score =  ");
        if (s) v2 = strtod(s + 13, NULL);
    }
    free(txt);
    printf("test_fad_vggish: m2u-eval fad --embed vggish %.9g, fad_pytorch %.9g: relative error %.2g\n", v, fad,
           fabs(v - fad) / fad);
    CHECK(fabs(v - fad) <= 1e-4 * fad && (float)v2 == (float)v, "FAD %.9g (FAD score line %.9g) vs fad_pytorch %.9g", v,
          v2, fad);
    char sha[65] = "";
    CHECK(m2u_sha256_file(FIX "/vggish_tiny.pth", sha) == 0, "sha");
    txt = NULL;
    cJSON *rep = m2u_read_file(WORK "/rep.json", &txt, &len) == 0 ? cJSON_Parse(txt) : NULL;
    free(txt);
    const cJSON *h = cJSON_GetObjectItem(rep, "checkpoint_sha256"), *fd = cJSON_GetObjectItem(rep, "frechet_distance"),
                *emb = cJSON_GetObjectItem(rep, "embedding"), *rc = cJSON_GetObjectItem(rep, "ref_clips");
    CHECK(cJSON_IsString(h) && !strcmp(h->valuestring, sha) && cJSON_IsNumber(fd) && fabs(fd->valuedouble - v) <= 1e-8 * fabs(v) &&
              cJSON_IsString(emb) && !strcmp(emb->valuestring, "vggish") && cJSON_IsNumber(rc) && rc->valueint == 40,
          "report: sha256, distance, embedding or clip count wrong");
    cJSON_Delete(rep);
    double *a = NULL, *r = NULL;
    size_t na, ca, nr, cr;
    CHECK(m2u_npy_read_matrix(WORK "/a.npy", &a, &na, &ca) == 0 && m2u_npy_read_matrix(FIX "/ref_emb.npy", &r, &nr, &cr) == 0 &&
              na == nr && ca == cr,
          "dump");
    free(a), free(r);
    /* wrong combinations: exit 2 with the reason */
    static const char *const bad[] = {"--embed foo --vggish x", "--embed vggish", "--vggish x",
                                      "--embed vggish --vggish x --clip 3", "--embed vggish --vggish x --mert y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(t_sh("'%s/m2u-eval' fad %s --ref a --gen b > /dev/null 2> '%s/bad.txt'", M2U_BUILD_DIR, bad[i], WORK) == 2,
              "'%s' not refused with exit 2", bad[i]);
    /* a missing checkpoint is an error naming it, exit 1 */
    CHECK(t_sh("'%s/m2u-eval' fad --embed vggish --vggish '%s/none.pth' --ref '%s/ref' --gen '%s/gen' > /dev/null 2> "
             "'%s/bad.txt' ; test $? -eq 1 && grep -q none.pth '%s/bad.txt'",
             M2U_BUILD_DIR, WORK, FIX, FIX, WORK, WORK) == 0,
          "missing checkpoint not reported by name");
    if (!t_fail) t_sh("rm -rf '%s'", WORK);
}

int main(void) {
    cJSON *exp = expected();
    CHECK(exp != NULL, "cannot read %s/expected.json", FIX);
    if (!exp) return t_finish("test_fad_vggish");
    t_resampler();
    t_decode_channels();
    t_model_and_front_end(exp);
    t_rows(exp);
    t_distance(exp);
    t_sh("rm -rf '%s' && mkdir -p '%s'", WORK, WORK);
    t_silent_and_broken();
    t_cli(exp);
    cJSON_Delete(exp);
    return t_finish("test_fad_vggish");
}
