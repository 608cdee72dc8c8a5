/* VGGish as fad_pytorch runs it (see vggish.h). */
#include "vggish.h"

#include "conv2d.h"
#include "fft.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* features.N of the conv layers, in torchvggish's make_layers() order; a max pool follows
 * the layers marked here (its ReLU sits at N+1, the pool at N+2). */
static const int k_conv_index[6] = {0, 3, 6, 8, 11, 13};
static const int k_pool_after[6] = {1, 1, 0, 1, 0, 1};

struct m2u_vggish {
    m2u_vggish_config cfg;
    float *conv_w[6], *conv_b[6]; /* packed [C_out][3][3][C_in] */
    float *fc_w[3], *fc_b[3];     /* torch [out][in] */
};

const m2u_vggish_config *m2u_vggish_config_of(const m2u_vggish *m) { return &m->cfg; }

void m2u_vggish_free(m2u_vggish *m) {
    if (!m) return;
    for (int i = 0; i < 6; i++) free(m->conv_w[i]), free(m->conv_b[i]);
    for (int i = 0; i < 3; i++) free(m->fc_w[i]), free(m->fc_b[i]);
    free(m);
}

/* A float tensor `name` of ndim dims (shape[d] < 0: any, filled in) copied to fp32. */
static float *read_tensor(const m2u_safetensors *st, const char *name, int ndim, int64_t *shape) {
    const m2u_st_tensor *t = m2u_st_find(st, name);
    if (!t) {
        m2u_fail("%s: no tensor %s (not a torchvggish state dict?)", m2u_st_path(st), name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) {
        if (shape[d] < 0) shape[d] = t->shape[d];
        ok = t->shape[d] == shape[d] && shape[d] > 0 && shape[d] < (1 << 24);
    }
    if (!ok) {
        char want[128] = "", got[128] = "";
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
        for (int d = 0; d < t->ndim && d < M2U_ST_MAX_DIMS; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        m2u_fail("%s: tensor %s is [%s], expected [%s] (negative = any)", m2u_st_path(st), name, got, want);
        return NULL;
    }
    float *p = malloc((size_t)t->numel * sizeof *p);
    if (!p) {
        m2u_fail("%s: out of memory for %s", m2u_st_path(st), name);
        return NULL;
    }
    if (m2u_st_read_f32(t, p, (size_t)t->numel)) {
        free(p);
        m2u_fail_prefix("%s: %s: ", m2u_st_path(st), name);
        return NULL;
    }
    return p;
}

static int load_weights(m2u_vggish *m, const m2u_safetensors *st) {
    m2u_vggish_config *c = &m->cfg;
    char name[64];
    int cin = 1, h = M2U_VGGISH_FRAMES, w = M2U_VGGISH_BANDS;
    c->n_params = 0;
    for (int i = 0; i < 6; i++) {
        int64_t ws[4] = {-1, cin, 3, 3}, bs[1] = {-1};
        snprintf(name, sizeof name, "features.%d.weight", k_conv_index[i]);
        float *raw = read_tensor(st, name, 4, ws);
        if (!raw) return -1;
        c->conv[i] = (int)ws[0];
        bs[0] = ws[0];
        m->conv_w[i] = m2u_conv2d_pack(raw, c->conv[i], cin, 3);
        free(raw);
        if (!m->conv_w[i]) return m2u_fail("%s: out of memory", m2u_st_path(st));
        snprintf(name, sizeof name, "features.%d.bias", k_conv_index[i]);
        if (!(m->conv_b[i] = read_tensor(st, name, 1, bs))) return -1;
        c->n_params += ws[0] * (cin * 9 + 1);
        cin = c->conv[i];
        if (k_pool_after[i]) h /= 2, w /= 2;
    }
    int64_t in = (int64_t)h * w * cin;
    for (int i = 0; i < 3; i++) {
        int64_t ws[2] = {-1, in}, bs[1];
        snprintf(name, sizeof name, "embeddings.%d.weight", 2 * i);
        if (!(m->fc_w[i] = read_tensor(st, name, 2, ws))) {
            if (i == 0) m2u_fail_prefix("(the last pool gives %d x %d x %d = %lld features) ", h, w, cin, (long long)in);
            return -1;
        }
        bs[0] = ws[0];
        snprintf(name, sizeof name, "embeddings.%d.bias", 2 * i);
        if (!(m->fc_b[i] = read_tensor(st, name, 1, bs))) return -1;
        c->n_params += ws[0] * (in + 1);
        if (i == 0) c->fc_in = (int)in, c->fc1 = (int)ws[0];
        if (i == 1) c->fc2 = (int)ws[0];
        if (i == 2) c->dim = (int)ws[0];
        in = ws[0];
    }
    return 0;
}

int m2u_vggish_load(const char *path, m2u_vggish **out) {
    *out = NULL;
    m2u_vggish *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("out of memory");
    m2u_safetensors *st = NULL;
    int rc = m2u_st_open(path, &st);
    if (!rc) rc = load_weights(m, st);
    m2u_st_close(st);
    if (rc) {
        m2u_vggish_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- front end ------------------------------------------------------------------------------ */

enum { WIN = 400, HOP = 160, NFFT = 512, NBIN = NFFT / 2 + 1 };

int m2u_vggish_n_examples(size_t n) {
    if (n < WIN) return 0;
    size_t frames = 1 + (n - WIN) / HOP;
    return (int)(frames / M2U_VGGISH_FRAMES);
}

/* np.linspace(a, b, num)[i]: i * ((b - a) / (num - 1)) + a, the last point exactly b */
static double linspace_at(double a, double b, int num, int i) {
    return i == num - 1 ? b : (double)i * ((b - a) / (num - 1)) + a;
}
static double hz_to_mel(double f) { return 1127.0 * log(1.0 + f / 700.0); }

/* mel_features.spectrogram_to_mel_matrix(64, 257, 16000, 125, 7500): mel[bin][band] */
static void mel_matrix(double *mel) {
    double lo = hz_to_mel(125.0), hi = hz_to_mel(7500.0);
    for (int k = 0; k < NBIN; k++) {
        double m = hz_to_mel(linspace_at(0.0, M2U_VGGISH_RATE / 2.0, NBIN, k));
        for (int j = 0; j < M2U_VGGISH_BANDS; j++) {
            double l = linspace_at(lo, hi, M2U_VGGISH_BANDS + 2, j), c = linspace_at(lo, hi, M2U_VGGISH_BANDS + 2, j + 1),
                   u = linspace_at(lo, hi, M2U_VGGISH_BANDS + 2, j + 2);
            double ls = (m - l) / (c - l), us = (u - m) / (u - c);
            double v = ls < us ? ls : us;
            mel[k * M2U_VGGISH_BANDS + j] = k == 0 ? 0.0 : (v > 0.0 ? v : 0.0); /* HTK drops the DC bin */
        }
    }
}

int m2u_vggish_log_mel(const float *wav, size_t n, float *examples) {
    int n_ex = m2u_vggish_n_examples(n);
    if (n_ex == 0) return 0;
    m2u_fft *fft = m2u_fft_new(NFFT);
    double *mel = malloc(sizeof(double) * NBIN * M2U_VGGISH_BANDS), *buf = malloc(sizeof(double) * (5 * NFFT + 8));
    if (!fft || !mel || !buf) {
        m2u_fft_free(fft), free(mel), free(buf);
        return m2u_fail("vggish log-mel: out of memory");
    }
    mel_matrix(mel);
    double *x = buf, *re = x + NFFT, *im = re + NBIN, *work = im + NBIN, *mag = work + 2 * NFFT;
    double win[WIN];
    const double pi = 3.14159265358979323846; /* np.pi */
    for (int i = 0; i < WIN; i++) win[i] = 0.5 - 0.5 * cos(2.0 * pi / WIN * i); /* periodic Hann */
    /* each band's nonzero bins [lo, hi) (from 1: the DC bin is dropped); the zero weights
     * outside would add exactly nothing to its sum */
    int lo[M2U_VGGISH_BANDS], hi[M2U_VGGISH_BANDS];
    for (int j = 0; j < M2U_VGGISH_BANDS; j++) {
        lo[j] = 1, hi[j] = NBIN;
        while (lo[j] < NBIN && mel[lo[j] * M2U_VGGISH_BANDS + j] == 0.0) lo[j]++;
        while (hi[j] > lo[j] && mel[(hi[j] - 1) * M2U_VGGISH_BANDS + j] == 0.0) hi[j]--;
    }
    for (int f = 0; f < n_ex * M2U_VGGISH_FRAMES; f++) {
        const float *s = wav + (size_t)f * HOP;
        for (int i = 0; i < WIN; i++) x[i] = (double)s[i] * win[i];
        for (int i = WIN; i < NFFT; i++) x[i] = 0.0;
        m2u_fft_real(fft, x, re, im, work);
        for (int k = 0; k < NBIN; k++) mag[k] = hypot(re[k], im[k]);
        float *dst = examples + (size_t)f * M2U_VGGISH_BANDS;
        for (int j = 0; j < M2U_VGGISH_BANDS; j++) {
            double acc = 0.0;
            for (int k = lo[j]; k < hi[j]; k++) acc += mag[k] * mel[k * M2U_VGGISH_BANDS + j];
            dst[j] = (float)log(acc + 0.01);
        }
    }
    m2u_fft_free(fft), free(mel), free(buf);
    return 0;
}

/* ---- network -------------------------------------------------------------------------------- */

int m2u_vggish_features(const m2u_vggish *m, const float *examples, int n, float *flat) {
    const m2u_vggish_config *c = &m->cfg;
    size_t big = (size_t)M2U_VGGISH_FRAMES * M2U_VGGISH_BANDS, cmax = 1;
    for (int i = 0; i < 6; i++) cmax = (size_t)c->conv[i] > cmax ? (size_t)c->conv[i] : cmax;
    /* the largest activation is conv 0's full-size output; later ones are smaller per channel */
    size_t cap = big * cmax;
    float *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
    int rc = -1;
    if (!a || !b) {
        m2u_fail("vggish: out of memory (%d examples)", n);
        goto done;
    }
    for (int e = 0; e < n; e++) {
        int h = M2U_VGGISH_FRAMES, w = M2U_VGGISH_BANDS, cin = 1;
        memcpy(a, examples + (size_t)e * big, big * sizeof *a);
        for (int i = 0; i < 6; i++) {
            if (m2u_conv2d_nhwc(b, a, h, w, cin, c->conv[i], 3, 1, m->conv_w[i], m->conv_b[i], 1)) goto done;
            cin = c->conv[i];
            if (k_pool_after[i]) {
                m2u_maxpool2d_nhwc(a, b, h, w, cin, 2);
                h /= 2, w /= 2;
            } else {
                float *t = a;
                a = b, b = t;
            }
        }
        /* NHWC with H = time is torchvggish's transpose(1,3).transpose(1,2) flatten order */
        memcpy(flat + (size_t)e * c->fc_in, a, (size_t)c->fc_in * sizeof *flat);
    }
    rc = 0;
done:
    free(a), free(b);
    return rc;
}

int m2u_vggish_head(const m2u_vggish *m, const float *flat, int n, float *emb) {
    const m2u_vggish_config *c = &m->cfg;
    if (n <= 0) return 0;
    float *h1 = malloc((size_t)n * c->fc1 * sizeof *h1), *h2 = malloc((size_t)n * c->fc2 * sizeof *h2);
    if (!h1 || !h2) {
        free(h1), free(h2);
        return m2u_fail("vggish: out of memory (%d examples)", n);
    }
    m2u_linear_fwd(h1, flat, m->fc_w[0], m->fc_b[0], n, c->fc_in, c->fc1);
    m2u_relu_fwd(h1, h1, (size_t)n * c->fc1);
    m2u_linear_fwd(h2, h1, m->fc_w[1], m->fc_b[1], n, c->fc1, c->fc2);
    m2u_relu_fwd(h2, h2, (size_t)n * c->fc2);
    /* fad_pytorch drops torchvggish's last ReLU: the raw projection is the embedding */
    m2u_linear_fwd(emb, h2, m->fc_w[2], m->fc_b[2], n, c->fc2, c->dim);
    free(h1), free(h2);
    return 0;
}

int m2u_vggish_forward(const m2u_vggish *m, const float *examples, int n, float *emb) {
    float *flat = malloc((size_t)(n > 0 ? n : 1) * m->cfg.fc_in * sizeof *flat);
    if (!flat) return m2u_fail("vggish: out of memory (%d examples)", n);
    int rc = m2u_vggish_features(m, examples, n, flat) || m2u_vggish_head(m, flat, n, emb) ? -1 : 0;
    free(flat);
    return rc;
}
