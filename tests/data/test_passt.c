/* PaSST and its loader against hear21passt 0.0.26 / librosa 0.10.1 (fixtures of
 * tests/make_passt_fixtures.py, a tiny random PaSST with 12 heads):
 *   - m2u_audio_load_librosa vs librosa.load(sr=32000) on WAVs at 48 kHz (stereo),
 *     44.1, 32, 22.05 and 16 kHz (Debian's libsoxr vs python-soxr's bundled one);
 *   - the front end on librosa's samples vs AugmentMelSTFT (eval);
 *   - logits vs the wrapper's mode="logits" output, also at the longest input the
 *     time position table takes; one sample more is refused, as are too-short inputs
 *     and a heads count that does not divide the embedding. */
#include "audio_load.h"
#include "m2u_error.h"
#include "passt.h"
#include "test_fixture.h"
#include "wav.h"

#include <stdlib.h>
#include <string.h>

#define DIR M2U_FIXTURES "/passt"

/* Tolerances (measured errors in the comments are this machine's):
 * loader: the same libsoxr algorithm in two builds (Debian 0.1.3, python-soxr 0.1.3-7-gacc0dac).
 * front end: float32 STFT / matmul in torch vs a double FFT and double sums here; the values
 * are log-mel / 5, around -2..1.  logits: two float32 transformer stacks. */
#define TOL_LOAD 1e-6   /* measured 0: bit-identical on all five rates */
#define TOL_MEL 1e-4    /* measured 2.1e-5 */
#define TOL_LOGITS 5e-5 /* measured 6.4e-6 */

static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = t_worse(m, d);
    }
    return m;
}

int main(void) {
    m2u_passt *m = NULL;
    m2u_safetensors *ex = NULL;
    CHECK(m2u_passt_load(DIR "/passt_tiny.pt", NULL, &m) == 0, "%s", m2u_last_error());
    CHECK(m2u_st_open(DIR "/expected.safetensors", &ex) == 0, "%s", m2u_last_error());
    if (!m || !ex) return t_finish("test_passt");
    const m2u_passt_config *c = m2u_passt_config_of(m);
    CHECK(c->dims.hidden == 36 && c->layers == 2 && c->dims.heads == 12 && c->dims.inter == 144 &&
              c->n_classes == 40 && c->grid_f == 12 && c->max_grid_t == 30 && c->kf == 16 && c->kt == 16,
          "sizes %d %d %d %d %d %d %d", c->dims.hidden, c->layers, c->dims.heads, c->dims.inter, c->n_classes,
          c->grid_f, c->max_grid_t);
    CHECK(m2u_passt_max_samples(m) == 315 * 320, "max samples %lld", (long long)m2u_passt_max_samples(m));

    static const char *clips[] = {"s48k", "s44k", "s32k", "s22k", "s16k"};
    double worst_load = 0, worst_mel = 0, worst_logit = 0;
    for (size_t k = 0; k < sizeof clips / sizeof clips[0]; k++) {
        char name[64], path[512];
        size_t nref = 0, nmel = 0, nlog = 0;
        snprintf(name, sizeof name, "load_%s", clips[k]);
        float *ref = t_st_f32(ex, name, &nref);
        snprintf(name, sizeof name, "mel_%s", clips[k]);
        float *mel_ref = t_st_f32(ex, name, &nmel);
        snprintf(name, sizeof name, "logits_%s", clips[k]);
        float *log_ref = t_st_f32(ex, name, &nlog);
        CHECK(ref && mel_ref && log_ref && nlog == 40, "%s: fixture tensors missing", clips[k]);
        if (!ref || !mel_ref || !log_ref) continue;

        /* loader */
        snprintf(path, sizeof path, "%s/audio/%s.wav", DIR, clips[k]);
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        CHECK(m2u_audio_load_librosa(path, 32000, 320000, &pcm, &n, &info) == 0, "%s", m2u_last_error());
        CHECK(n == (int64_t)nref, "%s: %lld samples, librosa %zu", clips[k], (long long)n, nref);
        if (pcm && n == (int64_t)nref) {
            double e = max_abs(pcm, ref, nref);
            printf("  %s (%d Hz, %d ch): loader max |diff| vs librosa %.3g\n", clips[k], info.src_rate,
                   info.src_channels, e);
            worst_load = t_worse(worst_load, e);
            CHECK(e <= TOL_LOAD, "%s: loader max |diff| %.3g", clips[k], e);
        }
        free(pcm);

        /* front end on librosa's own samples */
        int T = m2u_passt_frames(m, (int64_t)nref);
        CHECK(nmel == (size_t)128 * T, "%s: mel %zu values, expected 128 x %d", clips[k], nmel, T);
        float *mel = malloc((size_t)128 * (T > 0 ? T : 1) * sizeof *mel), lg[40];
        if (nmel == (size_t)128 * T && m2u_passt_frontend(m, ref, (int64_t)nref, mel) == 0) {
            double e = max_abs(mel, mel_ref, nmel);
            worst_mel = t_worse(worst_mel, e);
            CHECK(e <= TOL_MEL, "%s: mel max |diff| %.3g", clips[k], e);
        } else {
            CHECK(0, "%s: front end: %s", clips[k], m2u_last_error());
        }
        CHECK(m2u_passt_logits(m, ref, (int64_t)nref, lg) == 0, "%s", m2u_last_error());
        double e = max_abs(lg, log_ref, 40);
        worst_logit = t_worse(worst_logit, e);
        CHECK(e <= TOL_LOGITS, "%s: logits max |diff| %.3g", clips[k], e);
        free(mel);
        free(ref);
        free(mel_ref);
        free(log_ref);
    }
    printf("  worst: loader %.3g, mel %.3g, logits %.3g\n", worst_load, worst_mel, worst_logit);

    /* the longest input: load_s32k tiled (np.resize) to 315 * 320 samples */
    size_t n32 = 0;
    float *s32 = t_st_f32(ex, "load_s32k", &n32), *lmax = t_st_f32(ex, "logits_max", NULL);
    int64_t nmax = 315 * 320;
    float *w = malloc((size_t)(nmax + 1) * sizeof *w), lg[40];
    if (s32 && lmax && w) {
        for (int64_t i = 0; i <= nmax; i++) w[i] = s32[i % (int64_t)n32];
        CHECK(m2u_passt_logits(m, w, nmax, lg) == 0, "%s", m2u_last_error());
        double e = max_abs(lg, lmax, 40);
        printf("  longest input (%lld samples): logits max |diff| %.3g\n", (long long)nmax, e);
        CHECK(e <= TOL_LOGITS, "max-length logits max |diff| %.3g", e);
        CHECK(m2u_passt_logits(m, w, nmax + 1, lg) != 0 && strstr(m2u_last_error(), "position table"),
              "one sample too many must be refused: %s", m2u_last_error());
        CHECK(m2u_passt_logits(m, w, 4000, lg) != 0 && strstr(m2u_last_error(), "fewer than one patch"),
              "a too-short input must be refused: %s", m2u_last_error());
        CHECK(m2u_passt_logits(m, w, 300, lg) != 0, "300 samples must be refused");
    } else {
        CHECK(0, "max-length fixture missing");
    }
    free(w);
    free(s32);
    free(lmax);

    /* librosa.load neither clamps nor resamples a float WAV at the target rate: the channel
     * mean comes back as is, values beyond +-1 included */
    {
        float st[2 * 6000], *pcm = NULL;
        for (int i = 0; i < 6000; i++) st[2 * i] = 3.0f * (float)((i % 7) - 3) / 3, st[2 * i + 1] = 0.25f;
        const char *tmp = M2U_BUILD_DIR "/test_passt_float.wav";
        int64_t n = 0;
        CHECK(m2u_wav_write(tmp, st, 6000, 2, 32000, M2U_WAV_FLOAT32) == 0, "%s", m2u_last_error());
        CHECK(m2u_audio_load_librosa(tmp, 32000, 0, &pcm, &n, NULL) == 0 && n == 6000, "%s", m2u_last_error());
        int same = pcm != NULL;
        for (int i = 0; same && i < 6000; i++) same = pcm[i] == (st[2 * i] + st[2 * i + 1]) / 2;
        CHECK(same, "float WAV: the channel mean must come back unclamped");
        free(pcm);
        remove(tmp);
    }

    /* heads are not in the weights: a count that does not divide 36 is refused */
    m2u_passt *bad = NULL;
    m2u_passt_opts o = {.heads = 5};
    CHECK(m2u_passt_load(DIR "/passt_tiny.pt", &o, &bad) != 0 && strstr(m2u_last_error(), "heads"), "heads 5: %s",
          m2u_last_error());
    /* a wrong frequency stride contradicts freq_new_pos_embed */
    m2u_passt_opts o2 = {.fstride = 16};
    CHECK(m2u_passt_load(DIR "/passt_tiny.pt", &o2, &bad) != 0 && strstr(m2u_last_error(), "freq_new_pos_embed"),
          "fstride 16: %s", m2u_last_error());
    /* a different (legal) heads count changes the logits: the option is used */
    m2u_passt_opts o3 = {.heads = 4};
    CHECK(m2u_passt_load(DIR "/passt_tiny.pt", &o3, &bad) == 0, "%s", m2u_last_error());
    if (bad) {
        size_t nr = 0;
        float *ref = t_st_f32(ex, "load_s32k", &nr), *lr = t_st_f32(ex, "logits_s32k", NULL);
        CHECK(ref && lr && m2u_passt_logits(bad, ref, (int64_t)nr, lg) == 0 && max_abs(lg, lr, 40) > 1e-3,
              "4 heads must give other logits");
        free(ref);
        free(lr);
        m2u_passt_free(bad);
    }
    m2u_st_close(ex);
    m2u_passt_free(m);
    return t_finish("test_passt");
}
