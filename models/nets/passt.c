/* PaSST front end and model: see passt.h.  Checked against hear21passt 0.0.26
 * (its own AugmentMelSTFT and PaSST classes, tiny random configuration) by
 * tests/test_passt.c on the fixtures of tests/make_passt_fixtures.py. */
#include "passt.h"

#include "fft.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "safetensors.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct m2u_passt {
    m2u_passt_config cfg;
    float *patch_w, *patch_b;       /* [E, kf*kt], [E] */
    float *time_pos, *freq_pos;     /* [E, max_grid_t], [E, grid_f] */
    float *cls, *dist, *new_pos;    /* [E], [E], [2, E] */
    m2u_enc_layer *layer;           /* [layers] */
    float *norm_w, *norm_b;         /* final LayerNorm (eps 1e-6) */
    float *head_ln_w, *head_ln_b;   /* head.0: LayerNorm (eps 1e-5) */
    float *head_w, *head_b;         /* head.1: [n_classes, E], [n_classes] */
    float *window;                  /* [n_fft]: Hann(win, symmetric) centred, zeros around */
    float *banks;                   /* [n_mels, n_fft/2 + 1] */
};

/* ---- front end ----------------------------------------------------------------------- */

/* torch.hann_window(win, periodic=False) in float32 (0.5 - 0.5 cos(2 pi n / (win-1)), the
 * step rounded to float as torch does), zero-padded centrally to n_fft as torch.stft does. */
static void make_window(float *w, int n_fft, int win) {
    memset(w, 0, (size_t)n_fft * sizeof *w);
    int left = (n_fft - win) / 2;
    float step = (float)(2.0 * 3.14159265358979323846 / (win - 1));
    for (int i = 0; i < win; i++) w[left + i] = 0.5f - 0.5f * cosf((float)i * step);
}

static float mel_f(float f) { return 1127.0f * logf(1.0f + f / 700.0f); }

/* torchaudio.compliance.kaldi.get_mel_banks(n_mels, n_fft, sr, fmin, fmax, 100, -500, 1.0),
 * float32 as torch evaluates it, plus hear21passt's zero column for the Nyquist bin. */
static void make_banks(float *banks, int n_mels, int n_fft, int sr, double fmin, double fmax) {
    int nb = n_fft / 2, cols = nb + 1;
    double mel_lo = 1127.0 * log(1.0 + fmin / 700.0), mel_hi = 1127.0 * log(1.0 + fmax / 700.0);
    float delta = (float)((mel_hi - mel_lo) / (n_mels + 1)), lo = (float)mel_lo;
    float bin_w = (float)((double)sr / n_fft);
    for (int b = 0; b < n_mels; b++) {
        float left = lo + (float)b * delta, center = lo + ((float)b + 1.0f) * delta,
              right = lo + ((float)b + 2.0f) * delta;
        for (int k = 0; k < nb; k++) {
            float m = mel_f(bin_w * (float)k);
            float up = (m - left) / (center - left), down = (right - m) / (right - center);
            float v = up < down ? up : down;
            banks[(size_t)b * cols + k] = v > 0 ? v : 0;
        }
        banks[(size_t)b * cols + nb] = 0;
    }
}

int m2u_passt_frames(const m2u_passt *m, int64_t n) {
    const m2u_passt_config *c = &m->cfg;
    if (n - 1 <= c->n_fft / 2) return 0;
    int64_t t = 1 + (n - 1) / c->hop;
    return t > (1 << 30) ? 0 : (int)t;
}

int64_t m2u_passt_max_samples(const m2u_passt *m) {
    const m2u_passt_config *c = &m->cfg;
    /* patches: (T - kt) / tstride + 1 <= max_grid_t  <=>  T <= (max_grid_t - 1) * tstride + kt + tstride - 1 */
    int64_t max_t = (int64_t)(c->max_grid_t - 1) * c->tstride + c->kt + c->tstride - 1;
    return max_t * c->hop; /* largest n with 1 + (n-1)/hop <= max_t */
}

int m2u_passt_frontend(const m2u_passt *m, const float *wav, int64_t n, float *mel) {
    const m2u_passt_config *c = &m->cfg;
    int T = m2u_passt_frames(m, n);
    if (T <= 0)
        return m2u_fail("passt: %lld samples are too short for the front end (need more than %d)", (long long)n,
                        c->n_fft / 2 + 1);
    int64_t M = n - 1, half = c->n_fft / 2;
    int nf = c->n_fft, nb = nf / 2 + 1;
    float *y = malloc((size_t)M * sizeof *y), *power = malloc((size_t)T * nb * sizeof *power);
    double *frame = malloc((size_t)nf * 5 * sizeof *frame);
    m2u_fft *fft = m2u_fft_new(nf);
    int rc = -1;
    if (!y || !power || !frame || !fft) {
        if (fft) m2u_fail("passt: out of memory for %d frames", T);
        goto done;
    }
    /* conv1d with kernel [-0.97, 1]: one product, one sum, in float32 */
    for (int64_t i = 0; i < M; i++) y[i] = wav[i + 1] + -0.97f * wav[i];
    double *re = frame + nf, *im = re + nf, *work = im + nf;
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < nf; k++) {
            /* centred frame over the reflect-padded signal: sample t*hop + k - n_fft/2 */
            int64_t j = (int64_t)t * c->hop + k - half;
            if (j < 0) j = -j;
            if (j >= M) j = 2 * (M - 1) - j;
            frame[k] = (double)(y[j] * m->window[k]);
        }
        m2u_fft_real(fft, frame, re, im, work);
        float *p = power + (size_t)t * nb;
        for (int k = 0; k < nb; k++) {
            float r = (float)re[k], i = (float)im[k];
            p[k] = r * r + i * i;
        }
    }
    /* banks [n_mels, nb] @ power^T -> [n_mels, T]; each sum in double, rounded once, over the
     * bank's nonzero bins [lo, hi) (the zero weights outside would add exactly nothing) */
    for (int b = 0; b < c->n_mels; b++) {
        const float *w = m->banks + (size_t)b * nb;
        int lo = 0, hi = nb;
        while (lo < nb && w[lo] == 0.0f) lo++;
        while (hi > lo && w[hi - 1] == 0.0f) hi--;
        for (int t = 0; t < T; t++) {
            const float *p = power + (size_t)t * nb;
            double s = 0;
            for (int k = lo; k < hi; k++) s += (double)w[k] * p[k];
            float v = logf((float)s + 1e-5f);
            mel[(size_t)b * T + t] = (v + 4.5f) / 5.0f;
        }
    }
    rc = 0;
done:
    free(y);
    free(power);
    free(frame);
    m2u_fft_free(fft);
    return rc;
}

/* ---- model ------------------------------------------------------------------------------ */

int m2u_passt_forward(const m2u_passt *m, const float *mel, int T, float *logits) {
    const m2u_passt_config *c = &m->cfg;
    int E = c->dims.hidden, K = c->kf * c->kt;
    if (T < c->kt) return m2u_fail("passt: %d frames are fewer than the patch width %d", T, c->kt);
    int gt = (T - c->kt) / c->tstride + 1, gf = c->grid_f, P = gf * gt, N = 2 + P;
    if (gt > c->max_grid_t)
        return m2u_fail("passt: %d frames give %d time patches but the time position table holds %d "
                        "(at most %lld samples, %.3f s at %d Hz)",
                        T, gt, c->max_grid_t, (long long)m2u_passt_max_samples(m),
                        (double)m2u_passt_max_samples(m) / c->sample_rate, c->sample_rate);
    float *col = malloc((size_t)P * K * sizeof *col), *x = malloc((size_t)N * E * sizeof *x),
          *patch = malloc((size_t)P * E * sizeof *patch),
          *scratch = malloc(m2u_enc_layer_scratch(&c->dims, N) * sizeof(float));
    float feat[2 * 4096];
    int rc = -1;
    if (!col || !x || !patch || !scratch) {
        m2u_fail("passt: out of memory for %d tokens", N);
        goto done;
    }
    /* Overlapping patches (stride < kernel), so not image.h's patch im2col: one row per
     * patch in (f, t) order = the model's frequency-major token order, columns (dy, dx) as
     * the Conv2d weight [E, 1, kf, kt] is laid out.  A copy; the product is the GEMM below. */
    for (int f = 0; f < gf; f++)
        for (int t = 0; t < gt; t++) {
            float *dst = col + ((size_t)f * gt + t) * K;
            for (int dy = 0; dy < c->kf; dy++)
                memcpy(dst + (size_t)dy * c->kt, mel + (size_t)(f * c->fstride + dy) * T + (size_t)t * c->tstride,
                       (size_t)c->kt * sizeof(float));
        }
    m2u_linear_fwd(patch, col, m->patch_w, m->patch_b, P, K, E);
    /* x = conv + time_new_pos_embed[..., :gt], then + freq_new_pos_embed (two float adds, in torch's order) */
    for (int f = 0; f < gf; f++)
        for (int t = 0; t < gt; t++) {
            const float *src = patch + ((size_t)f * gt + t) * E;
            float *dst = x + (size_t)(2 + f * gt + t) * E;
            for (int e = 0; e < E; e++)
                dst[e] = (src[e] + m->time_pos[(size_t)e * c->max_grid_t + t]) + m->freq_pos[(size_t)e * gf + f];
        }
    for (int e = 0; e < E; e++) {
        x[e] = m->cls[e] + m->new_pos[e];
        x[E + e] = m->dist[e] + m->new_pos[E + e];
    }
    /* only the cls and dist rows reach the head, so the last layer computes only those two
     * (its keys and values still come from every token): a twelfth of the work less */
    for (int l = 0; l < c->layers; l++)
        if ((l + 1 < c->layers ? m2u_enc_layer_fwd(&c->dims, &m->layer[l], x, N, scratch)
                               : m2u_enc_layer_fwd_rows(&c->dims, &m->layer[l], x, N, 2, scratch)) != 0)
            goto done;
    if (m2u_enc_layernorm(feat, x, m->norm_w, m->norm_b, 2, E, c->dims.eps) != 0) goto done;
    for (int e = 0; e < E; e++) feat[e] = (feat[e] + feat[E + e]) / 2.0f;
    if (m2u_enc_layernorm(feat, feat, m->head_ln_w, m->head_ln_b, 1, E, 1e-5f) != 0) goto done;
    m2u_linear_fwd(logits, feat, m->head_w, m->head_b, 1, E, c->n_classes);
    rc = 0;
done:
    free(col);
    free(x);
    free(patch);
    free(scratch);
    return rc;
}

int m2u_passt_logits(const m2u_passt *m, const float *wav, int64_t n, float *logits) {
    const m2u_passt_config *c = &m->cfg;
    int64_t max_n = m2u_passt_max_samples(m);
    if (n > max_n)
        return m2u_fail("passt: %lld samples (%.3f s) are longer than the time position table allows: at most "
                        "%lld samples (%.3f s at %d Hz); cut the input first (M2UGen keeps the first 10 s)",
                        (long long)n, (double)n / c->sample_rate, (long long)max_n, (double)max_n / c->sample_rate,
                        c->sample_rate);
    int T = m2u_passt_frames(m, n);
    if (T < c->kt)
        return m2u_fail("passt: %lld samples give %d frames, fewer than one patch (%d frames, %lld samples)",
                        (long long)n, T, c->kt, (long long)(c->kt - 1) * c->hop + 1);
    float *mel = malloc((size_t)c->n_mels * T * sizeof *mel);
    if (!mel) return m2u_fail("passt: out of memory for %d frames", T);
    int rc = m2u_passt_frontend(m, wav, n, mel);
    if (rc == 0) rc = m2u_passt_forward(m, mel, T, logits);
    free(mel);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

void m2u_passt_free(m2u_passt *m) {
    if (!m) return;
    if (m->layer)
        for (int l = 0; l < m->cfg.layers; l++) m2u_enc_layer_free(&m->layer[l]);
    float *p[] = {m->patch_w, m->patch_b, m->time_pos, m->freq_pos, m->cls,       m->dist,      m->new_pos,
                  m->norm_w,  m->norm_b,  m->head_ln_w, m->head_ln_b, m->head_w, m->head_b, m->window, m->banks};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    free(m->layer);
    free(m);
}

const m2u_passt_config *m2u_passt_config_of(const m2u_passt *m) { return &m->cfg; }

/* Shape of a tensor that must exist, for sizes read from the weights. */
static const m2u_st_tensor *need(const m2u_safetensors *st, const char *prefix, const char *name, int ndim) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const m2u_st_tensor *t = m2u_st_find(st, full);
    if (!t) {
        m2u_fail("%s: no tensor '%s' (not a PaSST state dict?)", m2u_st_path(st), full);
        return NULL;
    }
    if (t->ndim != ndim) {
        m2u_fail("%s: tensor '%s' has %d dimensions, expected %d", m2u_st_path(st), full, t->ndim, ndim);
        return NULL;
    }
    return t;
}

static int load_layer(const m2u_safetensors *st, const char *prefix, int l, const m2u_enc_dims *d,
                      m2u_enc_layer *L) {
    int E = d->hidden, I = d->inter;
    char nm[128];
    struct {
        const char *fmt;
        float **dst;
        int ndim;
        int64_t s0, s1;
    } t[] = {
        {"blocks.%d.norm1.weight", &L->ln1_w, 1, E, 0},   {"blocks.%d.norm1.bias", &L->ln1_b, 1, E, 0},
        {"blocks.%d.attn.qkv.weight", &L->qkv_w, 2, 3 * E, E}, /* rows q, k, v: the fused layout of encoder_layer.h */
        {"blocks.%d.attn.qkv.bias", &L->qkv_b, 1, 3 * E, 0},
        {"blocks.%d.attn.proj.weight", &L->o_w, 2, E, E}, {"blocks.%d.attn.proj.bias", &L->o_b, 1, E, 0},
        {"blocks.%d.norm2.weight", &L->ln2_w, 1, E, 0},   {"blocks.%d.norm2.bias", &L->ln2_b, 1, E, 0},
        {"blocks.%d.mlp.fc1.weight", &L->fc1_w, 2, I, E}, {"blocks.%d.mlp.fc1.bias", &L->fc1_b, 1, I, 0},
        {"blocks.%d.mlp.fc2.weight", &L->fc2_w, 2, E, I}, {"blocks.%d.mlp.fc2.bias", &L->fc2_b, 1, E, 0},
    };
    memset(L, 0, sizeof *L);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(nm, sizeof nm, t[i].fmt, l);
        int64_t s[2] = {t[i].s0, t[i].s1};
        if (m2u_enc_tensor(st, prefix, nm, t[i].ndim, s, t[i].dst) != 0) return -1;
    }
    if (m2u_enc_layer_pack(L, d) != 0) return m2u_fail("%s: out of memory for layer %d", m2u_st_path(st), l);
    return 0;
}

static int load_weights(m2u_passt *m, const m2u_safetensors *st, const m2u_passt_opts *o) {
    m2u_passt_config *c = &m->cfg;
    const char *prefix = "";
    if (!m2u_st_find(st, "patch_embed.proj.weight") && m2u_st_find(st, "net.patch_embed.proj.weight")) prefix = "net.";
    const m2u_st_tensor *pw = need(st, prefix, "patch_embed.proj.weight", 4),
                        *fp = pw ? need(st, prefix, "freq_new_pos_embed", 4) : NULL,
                        *tp = fp ? need(st, prefix, "time_new_pos_embed", 4) : NULL,
                        *fc1 = tp ? need(st, prefix, "blocks.0.mlp.fc1.weight", 2) : NULL,
                        *hw = fc1 ? need(st, prefix, "head.1.weight", 2) : NULL;
    if (!hw) return -1;
    int E = (int)pw->shape[0];
    if (pw->shape[1] != 1)
        return m2u_fail("%s: patch_embed.proj.weight has %lld input channels; PaSST takes one mel spectrogram",
                        m2u_st_path(st), (long long)pw->shape[1]);
    c->kf = (int)pw->shape[2], c->kt = (int)pw->shape[3];
    c->grid_f = (int)fp->shape[2];
    c->max_grid_t = (int)tp->shape[3];
    c->dims.hidden = E;
    c->dims.inter = (int)fc1->shape[0];
    c->n_classes = (int)hw->shape[0];
    c->dims.heads = o && o->heads ? o->heads : 12;
    c->fstride = o && o->fstride ? o->fstride : 10;
    c->tstride = o && o->tstride ? o->tstride : 10;
    c->dims.eps = 1e-6f;
    c->dims.act = M2U_ACT_GELU;
    c->dims.prenorm = 1;
    if (E <= 0 || E > 4096 || c->dims.heads <= 0 || E % c->dims.heads)
        return m2u_fail("%s: embed dim %d is not divisible by %d heads (set the heads option)", m2u_st_path(st), E,
                        c->dims.heads);
    if (c->kf <= 0 || c->kt <= 0 || c->fstride <= 0 || c->tstride <= 0 || c->grid_f <= 0 || c->max_grid_t <= 0 ||
        c->n_classes <= 0)
        return m2u_fail("%s: bad PaSST sizes (kernel %dx%d, strides %d/%d, grid %d x %d, %d classes)",
                        m2u_st_path(st), c->kf, c->kt, c->fstride, c->tstride, c->grid_f, c->max_grid_t,
                        c->n_classes);
    if (c->n_mels < c->kf || (c->n_mels - c->kf) / c->fstride + 1 != c->grid_f)
        return m2u_fail("%s: %d mel bins with a %d-row kernel and frequency stride %d give %d frequency patches, "
                        "but freq_new_pos_embed has %d (wrong stride option?)",
                        m2u_st_path(st), c->n_mels, c->kf, c->fstride,
                        c->n_mels < c->kf ? 0 : (c->n_mels - c->kf) / c->fstride + 1, c->grid_f);
    for (c->layers = 0;; c->layers++) {
        char nm[96];
        snprintf(nm, sizeof nm, "%sblocks.%d.norm1.weight", prefix, c->layers);
        if (!m2u_st_find(st, nm)) break;
    }
    if (c->layers == 0) return m2u_fail("%s: no blocks.N.* tensors", m2u_st_path(st));
    int64_t s_pw[4] = {E, 1, c->kf, c->kt}, s_e[1] = {E}, s_tok[3] = {1, 1, E}, s_np[3] = {1, 2, E},
            s_fp[4] = {1, E, c->grid_f, 1}, s_tp[4] = {1, E, 1, c->max_grid_t}, s_hw[2] = {c->n_classes, E},
            s_hb[1] = {c->n_classes};
    if (m2u_enc_tensor(st, prefix, "patch_embed.proj.weight", 4, s_pw, &m->patch_w) ||
        m2u_enc_tensor(st, prefix, "patch_embed.proj.bias", 1, s_e, &m->patch_b) ||
        m2u_enc_tensor(st, prefix, "freq_new_pos_embed", 4, s_fp, &m->freq_pos) ||
        m2u_enc_tensor(st, prefix, "time_new_pos_embed", 4, s_tp, &m->time_pos) ||
        m2u_enc_tensor(st, prefix, "cls_token", 3, s_tok, &m->cls) ||
        m2u_enc_tensor(st, prefix, "dist_token", 3, s_tok, &m->dist) ||
        m2u_enc_tensor(st, prefix, "new_pos_embed", 3, s_np, &m->new_pos) ||
        m2u_enc_tensor(st, prefix, "norm.weight", 1, s_e, &m->norm_w) ||
        m2u_enc_tensor(st, prefix, "norm.bias", 1, s_e, &m->norm_b) ||
        m2u_enc_tensor(st, prefix, "head.0.weight", 1, s_e, &m->head_ln_w) ||
        m2u_enc_tensor(st, prefix, "head.0.bias", 1, s_e, &m->head_ln_b) ||
        m2u_enc_tensor(st, prefix, "head.1.weight", 2, s_hw, &m->head_w) ||
        m2u_enc_tensor(st, prefix, "head.1.bias", 1, s_hb, &m->head_b))
        return -1;
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    if (!m->layer) return m2u_fail("%s: out of memory", m2u_st_path(st));
    for (int l = 0; l < c->layers; l++)
        if (load_layer(st, prefix, l, &c->dims, &m->layer[l]) != 0) return -1;
    return 0;
}

int m2u_passt_load(const char *path, const m2u_passt_opts *opts, m2u_passt **out) {
    *out = NULL;
    m2u_passt *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("%s: out of memory", path);
    m2u_passt_config *c = &m->cfg;
    /* get_basic_model's AugmentMelSTFT: fmax = sr/2 - fmax_aug_range/2 = 16000 - 1000 */
    c->sample_rate = 32000, c->n_fft = 1024, c->hop = 320, c->win = 800, c->n_mels = 128;
    c->fmin = 0, c->fmax = 15000;
    m2u_safetensors *st = NULL;
    int rc = -1;
    if (m2u_st_open(path, &st) != 0 || load_weights(m, st, opts) != 0) goto done;
    m->window = malloc((size_t)c->n_fft * sizeof *m->window);
    m->banks = malloc((size_t)c->n_mels * (c->n_fft / 2 + 1) * sizeof *m->banks);
    if (!m->window || !m->banks) {
        m2u_fail("%s: out of memory", path);
        goto done;
    }
    make_window(m->window, c->n_fft, c->win);
    make_banks(m->banks, c->n_mels, c->n_fft, c->sample_rate, c->fmin, c->fmax);
    rc = 0;
done:
    m2u_st_close(st);
    if (rc != 0) {
        m2u_passt_free(m);
        return -1;
    }
    *out = m;
    return 0;
}
