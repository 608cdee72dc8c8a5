/* CLAP audio (and text) towers: see clap.h.  Checked against transformers 4.46.3
 * (ClapModel, ClapFeatureExtractor) by tests/test_clap.c on the fixtures of
 * tests/make_clap_fixtures.py. */
#include "clap.h"

#include "bert_encoder.h"
#include "bytelevel_bpe.h"
#include "tokenizer.h"
#include "fft.h"
#include "fileio.h"
#include "image.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "tensor.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int dim, heads, res, shift; /* channels, heads, tokens per side, cyclic shift (0: none) */
    m2u_enc_layer w;            /* q/k/v fused, o, layernorm_before/after, intermediate/output */
    float *rel_table;           /* [(2 ws - 1)^2][heads] */
} swin_block;

typedef struct {
    int n_blocks, dim, res;
    swin_block *blocks;
    float *merge_ln_w, *merge_ln_b; /* [4 dim] */
    float *merge_w;                 /* [2 dim, 4 dim], no bias; NULL in the last stage */
} swin_stage;

typedef struct {
    float *w1, *b1, *w2, *b2; /* linear1 [P, H], linear2 [P, P] */
    int in, out;
} projection;

struct m2u_clap {
    m2u_clap_config cfg;
    /* front end */
    m2u_fft *fft;
    double *window;   /* [n_fft] */
    double *mel_fb;   /* [n_mels][n_bins] (the transpose of mel_filter_bank's [n_bins][n_mels]) */
    int *mel_lo, *mel_hi; /* [n_mels]: each filter's nonzero bins [lo, hi) */
    /* HTSAT */
    float *bn_scale, *bn_shift; /* BatchNorm folded: x * scale + shift, per mel bin */
    float *patch_w, *patch_b, *patch_ln_w, *patch_ln_b;
    swin_stage stages[M2U_CLAP_MAX_STAGES];
    float *norm_w, *norm_b;
    projection audio_proj;
    /* text tower (has_text) */
    m2u_tokenizer *fast; /* tokenizer.json (RobertaTokenizerFast, what AutoTokenizer gives), or */
    m2u_bytebpe *tok;    /* vocab.json + merges.txt (RobertaTokenizer) when there is no tokenizer.json */
    m2u_bert *text;
    projection text_proj;
    size_t max_tokens; /* captions are truncated to this many ids, <s> and </s> included */
};

/* ---- config ------------------------------------------------------------------------------ */

static int parse_preprocessor(const cJSON *root, const char *origin, m2u_clap_config *c) {
    const char *trunc, *pad;
    int max_s;
    /* ClapFeatureExtractor's defaults, except that the file is required (below) */
    if (m2u_json_int(root, origin, "feature_size", 0, 64, 1, &c->n_mels) ||
        m2u_json_int(root, origin, "sampling_rate", 0, 48000, 1, &c->sample_rate) ||
        m2u_json_int(root, origin, "hop_length", 0, 480, 1, &c->hop) ||
        m2u_json_int(root, origin, "max_length_s", 0, 10, 1, &max_s) ||
        m2u_json_int(root, origin, "fft_window_size", 0, 1024, 2, &c->n_fft) ||
        m2u_json_num(root, origin, "frequency_min", 0, 0, &c->fmin) ||
        m2u_json_num(root, origin, "frequency_max", 0, 14000, &c->fmax) ||
        m2u_json_str(root, origin, "truncation", "fusion", &trunc) ||
        m2u_json_str(root, origin, "padding", "repeatpad", &pad))
        return -1;
    if (strcmp(trunc, "rand_trunc") != 0)
        return m2u_fail("%s: key 'truncation': '%s' is not supported (only \"rand_trunc\", the unfused CLAP's; "
                        "\"fusion\" belongs to laion/clap-htsat-fused)",
                        origin, trunc);
    if (!strcmp(pad, "repeatpad")) c->padding = M2U_CLAP_PAD_REPEATPAD;
    else if (!strcmp(pad, "repeat")) c->padding = M2U_CLAP_PAD_REPEAT;
    else if (!strcmp(pad, "pad")) c->padding = M2U_CLAP_PAD_PAD;
    else return m2u_fail("%s: key 'padding': '%s' is not one of repeatpad, repeat, pad", origin, pad);
    if (c->n_fft & (c->n_fft - 1) || c->n_fft > (1 << 20))
        return m2u_fail("%s: key 'fft_window_size': %d is not a power of two up to 2^20", origin, c->n_fft);
    if ((long)max_s * c->sample_rate > (1L << 30))
        return m2u_fail("%s: max_length_s %d at %d Hz is too long", origin, max_s, c->sample_rate);
    c->max_samples = max_s * c->sample_rate;
    if (c->max_samples <= c->n_fft / 2)
        return m2u_fail("%s: max_length_s %d is shorter than half an FFT window (reflect padding needs more)", origin,
                        max_s);
    if (!(c->fmin >= 0 && c->fmin < c->fmax && c->fmax <= c->sample_rate / 2.0))
        return m2u_fail("%s: frequency_min %g / frequency_max %g must satisfy 0 <= min < max <= sampling_rate/2",
                        origin, c->fmin, c->fmax);
    c->frames = 1 + c->max_samples / c->hop; /* center=True */
    return 0;
}

static int parse_audio_config(const cJSON *a, const char *origin, m2u_clap_config *c) {
    int fusion, mels, stride[2], n, qkv_bias, hidden;
    const char *act;
    double eps;
    /* ClapAudioConfig's defaults */
    static const int def_depths[4] = {2, 2, 6, 2}, def_heads[4] = {4, 8, 16, 32};
    if (m2u_json_int(a, origin, "window_size", 0, 8, 1, &c->window) ||
        m2u_json_int(a, origin, "num_mel_bins", 0, 64, 1, &mels) ||
        m2u_json_int(a, origin, "spec_size", 0, 256, 1, &c->spec_size) ||
        m2u_json_int(a, origin, "patch_size", 0, 4, 1, &c->patch) ||
        m2u_json_int(a, origin, "hidden_size", 0, 768, 1, &hidden) ||
        m2u_json_int(a, origin, "patch_embeds_hidden_size", 0, 96, 1, &c->embed_dim) ||
        m2u_json_bool(a, origin, "enable_fusion", 0, &fusion) || m2u_json_bool(a, origin, "qkv_bias", 1, &qkv_bias) ||
        m2u_json_num(a, origin, "mlp_ratio", 0, 4.0, &c->mlp_ratio) ||
        m2u_json_num(a, origin, "layer_norm_eps", 0, 1e-5, &eps) ||
        m2u_json_str(a, origin, "hidden_act", "gelu", &act) || m2u_act_parse(act, origin, "hidden_act", &c->act))
        return -1;
    if (fusion)
        return m2u_fail("%s: audio_config.enable_fusion true (laion/clap-htsat-fused) is not supported", origin);
    if (!qkv_bias) return m2u_fail("%s: audio_config.qkv_bias false is not supported", origin);
    if (!(eps > 0) || !(c->mlp_ratio > 0))
        return m2u_fail("%s: audio_config layer_norm_eps / mlp_ratio must be > 0", origin);
    c->ln_eps = (float)eps;
    if (!cJSON_GetObjectItemCaseSensitive(a, "patch_stride")) stride[0] = stride[1] = 4;
    else if (m2u_json_ints(a, origin, "patch_stride", 2, 1, 1, stride, &n) != 0) return -1;
    if (stride[0] != c->patch || stride[1] != c->patch)
        return m2u_fail("%s: audio_config patch_stride [%d, %d] differs from patch_size %d (overlapping patches are "
                        "not supported)",
                        origin, stride[0], stride[1], c->patch);
    int nd = 0, nh = 0;
    if (!cJSON_GetObjectItemCaseSensitive(a, "depths")) {
        memcpy(c->depths, def_depths, sizeof def_depths);
        nd = 4;
    } else if (m2u_json_ints(a, origin, "depths", M2U_CLAP_MAX_STAGES, 1, 0, c->depths, &nd) != 0)
        return -1;
    if (!cJSON_GetObjectItemCaseSensitive(a, "num_attention_heads")) {
        memcpy(c->heads, def_heads, sizeof def_heads);
        nh = 4;
    } else if (m2u_json_ints(a, origin, "num_attention_heads", M2U_CLAP_MAX_STAGES, 1, 0, c->heads, &nh) != 0)
        return -1;
    if (nd != nh) return m2u_fail("%s: audio_config has %d depths but %d num_attention_heads", origin, nd, nh);
    c->n_stages = nd;
    /* bounds before the products below (laion/clap-htsat-unfused: spec_size 256, 96 channels) */
    if (c->spec_size > 1 << 15 || c->embed_dim > 1 << 20)
        return m2u_fail("%s: audio_config spec_size %d or patch_embeds_hidden_size %d is past this loader's limits "
                        "(%d, %d)", origin, c->spec_size, c->embed_dim, 1 << 15, 1 << 20);
    c->freq_ratio = c->spec_size / mels;
    if (c->freq_ratio < 1 || mels != c->n_mels || c->spec_size / c->freq_ratio != mels)
        return m2u_fail("%s: audio_config num_mel_bins %d, spec_size %d and the feature extractor's %d mel bins do "
                        "not fold into a square image (need spec_size = k * num_mel_bins = k * feature_size)",
                        origin, mels, c->spec_size, c->n_mels);
    if (c->frames > c->spec_size * c->freq_ratio)
        return m2u_fail("%s: %d frames do not fit spec_size %d x freq_ratio %d", origin, c->frames, c->spec_size,
                        c->freq_ratio);
    if (c->spec_size % c->patch) return m2u_fail("%s: spec_size %d is not a multiple of patch_size %d", origin,
                                                 c->spec_size, c->patch);
    int res = c->spec_size / c->patch;
    for (int s = 0; s < c->n_stages; s++) {
        int dim = c->embed_dim << s;
        if (dim % c->heads[s]) return m2u_fail("%s: stage %d: %d channels are not divisible by %d heads", origin, s,
                                               dim, c->heads[s]);
        if (res < c->window || res % c->window)
            return m2u_fail("%s: stage %d: resolution %d is not a multiple of window_size %d", origin, s, res,
                            c->window);
        if (s + 1 < c->n_stages && res % 2) return m2u_fail("%s: stage %d: odd resolution %d", origin, s, res);
        res /= 2;
    }
    c->num_features = c->embed_dim << (c->n_stages - 1);
    if (hidden != c->num_features)
        return m2u_fail("%s: audio_config hidden_size %d differs from the last stage's %d channels", origin, hidden,
                        c->num_features);
    return 0;
}

static int parse_config(const cJSON *root, const char *origin, m2u_clap_config *c) {
    const char *mt, *pact;
    if (m2u_json_str(root, origin, "model_type", NULL, &mt) != 0) return -1;
    if (!mt || strcmp(mt, "clap") != 0)
        return m2u_fail("%s: key 'model_type': need \"clap\" (a transformers ClapModel), got %s%s%s", origin,
                        mt ? "'" : "", mt ? mt : "none", mt ? "'" : "");
    if (m2u_json_int(root, origin, "projection_dim", 0, 512, 1, &c->proj_dim) ||
        m2u_json_str(root, origin, "projection_hidden_act", "relu", &pact))
        return -1;
    if (strcmp(pact, "relu") != 0)
        return m2u_fail("%s: key 'projection_hidden_act': '%s' is not supported (relu)", origin, pact);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "audio_config");
    cJSON *empty = NULL;
    if (a && !cJSON_IsObject(a)) return m2u_fail("%s: key 'audio_config' is not an object", origin);
    if (!a) a = empty = cJSON_CreateObject();
    int rc = a ? parse_audio_config(a, origin, c) : m2u_fail("%s: out of memory", origin);
    cJSON_Delete(empty);
    return rc;
}

/* ---- the front end ------------------------------------------------------------------------ */

/* transformers.audio_utils.hertz_to_mel / mel_to_hertz, mel_scale "slaney" */
static double hz_to_mel_slaney(double f) {
    if (f >= 1000.0) return 15.0 + log(f / 1000.0) * (27.0 / log(6.4));
    return 3.0 * f / 200.0;
}
static double mel_to_hz_slaney(double m) {
    if (m >= 15.0) return 1000.0 * exp(log(6.4) / 27.0 * (m - 15.0));
    return 200.0 * m / 3.0;
}

/* numpy.linspace(a, b, n)[i]: i * ((b - a) / (n - 1)) + a, the last one exactly b */
static double linspace_at(double a, double b, int n, int i) {
    if (i == n - 1) return b;
    return (double)i * ((b - a) / (n - 1)) + a;
}

/* mel_filter_bank(n_bins, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="slaney"),
 * transposed: fb[m][k]. */
static int mel_filters(double *fb, int n_bins, int n_mels, double fmin, double fmax, int sr) {
    double *ff = malloc((size_t)(n_mels + 2) * sizeof *ff);
    if (!ff) return m2u_fail("clap: out of memory for the mel filters");
    double mmin = hz_to_mel_slaney(fmin), mmax = hz_to_mel_slaney(fmax);
    for (int i = 0; i < n_mels + 2; i++) ff[i] = mel_to_hz_slaney(linspace_at(mmin, mmax, n_mels + 2, i));
    for (int m = 0; m < n_mels; m++) {
        double enorm = 2.0 / (ff[m + 2] - ff[m]);
        for (int k = 0; k < n_bins; k++) {
            double f = linspace_at(0.0, (double)(sr / 2), n_bins, k);
            double down = -(ff[m] - f) / (ff[m + 1] - ff[m]);
            double up = (ff[m + 2] - f) / (ff[m + 2] - ff[m + 1]);
            double w = down < up ? down : up;
            fb[(size_t)m * n_bins + k] = (w > 0 ? w : 0.0) * enorm;
        }
    }
    free(ff);
    return 0;
}

static int frontend_init(m2u_clap *m) {
    const m2u_clap_config *c = &m->cfg;
    int n = c->n_fft, n_bins = n / 2 + 1;
    m->fft = m2u_fft_new(n);
    m->window = malloc((size_t)n * sizeof(double));
    m->mel_fb = malloc((size_t)n_bins * c->n_mels * sizeof(double));
    m->mel_lo = malloc((size_t)c->n_mels * sizeof(int));
    m->mel_hi = malloc((size_t)c->n_mels * sizeof(int));
    if (!m->fft || !m->window || !m->mel_fb || !m->mel_lo || !m->mel_hi)
        return m->fft ? m2u_fail("clap: out of memory for the front end") : -1;
    /* window_function(n, "hann"): np.hanning(n + 1)[:-1], np.hanning(M) = 0.5 + 0.5 cos(pi k / (M - 1))
     * for k = 1 - M, 3 - M, ..., M - 1 */
    for (int i = 0; i < n; i++)
        m->window[i] = 0.5 + 0.5 * cos(3.14159265358979323846 * (double)(2 * i - n) / (double)n);
    if (mel_filters(m->mel_fb, n_bins, c->n_mels, c->fmin, c->fmax, c->sample_rate)) return -1;
    /* each triangular filter's nonzero bins: the zeros outside would add exactly nothing */
    for (int mm = 0; mm < c->n_mels; mm++) {
        const double *f = m->mel_fb + (size_t)mm * n_bins;
        int lo = 0, hi = n_bins;
        while (lo < n_bins && f[lo] == 0.0) lo++;
        while (hi > lo && f[hi - 1] == 0.0) hi--;
        m->mel_lo[mm] = lo, m->mel_hi[mm] = hi;
    }
    return 0;
}

int m2u_clap_features(const m2u_clap *m, const float *pcm, long n, float *features) {
    const m2u_clap_config *c = &m->cfg;
    if (n <= 0) return m2u_fail("clap: no audio samples");
    long L = c->max_samples, nf = c->n_fft, half = nf / 2, n_bins = nf / 2 + 1;
    /* the max_length samples after truncation / padding, reflect-padded by n_fft / 2 */
    float *x = calloc((size_t)(L + nf), sizeof *x);
    double *buf = malloc((size_t)(5 * nf + 2 * n_bins) * sizeof *buf);
    if (!x || !buf) {
        free(x);
        free(buf);
        return m2u_fail("clap: out of memory for the spectrogram");
    }
    float *w = x + half;
    if (n >= L) {
        memcpy(w, pcm, (size_t)L * sizeof *w); /* rand_trunc with offset 0 */
    } else if (c->padding == M2U_CLAP_PAD_REPEAT) {
        for (long i = 0; i < L; i++) w[i] = pcm[i % n];
    } else {
        long reps = c->padding == M2U_CLAP_PAD_REPEATPAD ? L / n : 1; /* int(max_length / len) */
        for (long r = 0; r < reps; r++) memcpy(w + r * n, pcm, (size_t)n * sizeof *w);
        /* the rest stays 0 */
    }
    for (long i = 1; i <= half; i++) { /* np.pad(mode="reflect") */
        x[half - i] = w[i];
        w[L - 1 + i] = w[L - 1 - i];
    }
    double *fr = buf, *re = fr + nf, *im = re + n_bins, *work = im + n_bins, *pw = work + 2 * nf;
    for (int t = 0; t < c->frames; t++) {
        const float *s = x + (size_t)t * c->hop;
        for (long k = 0; k < nf; k++) fr[k] = (double)s[k] * m->window[k];
        m2u_fft_real(m->fft, fr, re, im, work);
        for (long k = 0; k < n_bins; k++) {
            /* the reference keeps the DFT as complex64, then np.abs(..., dtype=float64) ** 2: the
             * squared modulus of the float parts (in double; hypot's square within an ulp) */
            double r = (double)(float)re[k], i = (double)(float)im[k];
            pw[k] = r * r + i * i;
        }
        for (int mm = 0; mm < c->n_mels; mm++) {
            const double *f = m->mel_fb + (size_t)mm * n_bins;
            double acc = 0;
            for (long k = m->mel_lo[mm]; k < m->mel_hi[mm]; k++) acc += f[k] * pw[k];
            if (!(acc > 1e-10)) acc = 1e-10; /* mel_floor, then power_to_db's min_value: the same clamp */
            features[(size_t)t * c->n_mels + mm] = (float)(10.0 * log10(acc));
        }
    }
    free(x);
    free(buf);
    return 0;
}

/* ---- weights --------------------------------------------------------------------------- */

#define AE "audio_model.audio_encoder."

static const m2u_enc_names SWIN_NAMES = {
    .q = "blocks.%d.attention.self.query",
    .k = "blocks.%d.attention.self.key",
    .v = "blocks.%d.attention.self.value",
    .o = "blocks.%d.attention.output.dense",
    .ln1 = "blocks.%d.layernorm_before",
    .ln2 = "blocks.%d.layernorm_after",
    .fc1 = "blocks.%d.intermediate.dense",
    .fc2 = "blocks.%d.output.dense",
};

static int load_vec(const m2u_safetensors *st, const char *name, int n, float **out) {
    int64_t s[1] = {n};
    return m2u_enc_tensor(st, "", name, 1, s, out);
}

static int load_projection(const m2u_safetensors *st, const char *prefix, int in, int out, projection *p) {
    char name[128];
    int64_t s1[2] = {out, in}, s2[2] = {out, out}, sb[1] = {out};
    p->in = in, p->out = out;
    snprintf(name, sizeof name, "%s.linear1.weight", prefix);
    if (m2u_enc_tensor(st, "", name, 2, s1, &p->w1)) return -1;
    snprintf(name, sizeof name, "%s.linear1.bias", prefix);
    if (m2u_enc_tensor(st, "", name, 1, sb, &p->b1)) return -1;
    snprintf(name, sizeof name, "%s.linear2.weight", prefix);
    if (m2u_enc_tensor(st, "", name, 2, s2, &p->w2)) return -1;
    snprintf(name, sizeof name, "%s.linear2.bias", prefix);
    return m2u_enc_tensor(st, "", name, 1, sb, &p->b2);
}

static void projection_free(projection *p) {
    free(p->w1);
    free(p->b1);
    free(p->w2);
    free(p->b2);
}

static int load_audio(m2u_clap *m, const m2u_safetensors *st) {
    const m2u_clap_config *c = &m->cfg;
    int M = c->n_mels, E = c->embed_dim, P = c->patch;
    float *bw = NULL, *bb = NULL, *rm = NULL, *rv = NULL;
    int rc = -1;
    if (load_vec(st, AE "batch_norm.weight", M, &bw) || load_vec(st, AE "batch_norm.bias", M, &bb) ||
        load_vec(st, AE "batch_norm.running_mean", M, &rm) || load_vec(st, AE "batch_norm.running_var", M, &rv))
        goto done;
    m->bn_scale = malloc((size_t)M * sizeof(float));
    m->bn_shift = malloc((size_t)M * sizeof(float));
    if (!m->bn_scale || !m->bn_shift) {
        m2u_fail("%s: out of memory", m2u_st_path(st));
        goto done;
    }
    /* torch's eval BatchNorm on CPU: alpha = 1 / sqrt(var + eps) * w, beta = b - mean * alpha, y = x alpha + beta */
    for (int i = 0; i < M; i++) {
        float invstd = 1.0f / sqrtf(rv[i] + 1e-5f);
        m->bn_scale[i] = invstd * bw[i];
        m->bn_shift[i] = bb[i] - rm[i] * m->bn_scale[i];
    }
    int64_t spw[4] = {E, 1, P, P};
    if (m2u_enc_tensor(st, "", AE "patch_embed.proj.weight", 4, spw, &m->patch_w) ||
        load_vec(st, AE "patch_embed.proj.bias", E, &m->patch_b) ||
        load_vec(st, AE "patch_embed.norm.weight", E, &m->patch_ln_w) ||
        load_vec(st, AE "patch_embed.norm.bias", E, &m->patch_ln_b))
        goto done;
    int res = c->spec_size / P, ws = c->window, nrel = (2 * ws - 1) * (2 * ws - 1);
    for (int s = 0; s < c->n_stages; s++) {
        swin_stage *sg = &m->stages[s];
        int dim = E << s;
        char prefix[96], name[160];
        snprintf(prefix, sizeof prefix, AE "layers.%d.", s);
        sg->dim = dim, sg->res = res, sg->n_blocks = c->depths[s];
        sg->blocks = calloc((size_t)sg->n_blocks, sizeof *sg->blocks);
        if (!sg->blocks) {
            m2u_fail("%s: out of memory", m2u_st_path(st));
            goto done;
        }
        m2u_enc_dims d = {.hidden = dim, .heads = c->heads[s], .inter = (int)(c->mlp_ratio * dim), .eps = c->ln_eps,
                          .act = c->act, .prenorm = 1};
        for (int b = 0; b < sg->n_blocks; b++) {
            swin_block *bk = &sg->blocks[b];
            bk->dim = dim, bk->heads = c->heads[s], bk->res = res;
            /* ClapAudioLayer.set_shift_and_window_size: a stage that is one window is not shifted */
            bk->shift = (b % 2 == 1 && res > ws) ? ws / 2 : 0;
            if (m2u_enc_layer_load(st, prefix, &SWIN_NAMES, b, &d, &bk->w)) goto done;
            int64_t srel[2] = {nrel, bk->heads};
            snprintf(name, sizeof name, "blocks.%d.attention.self.relative_position_bias_table", b);
            if (m2u_enc_tensor(st, prefix, name, 2, srel, &bk->rel_table)) goto done;
        }
        if (s + 1 < c->n_stages) {
            int64_t sw[2] = {2 * dim, 4 * dim}, sl[1] = {4 * dim};
            if (m2u_enc_tensor(st, prefix, "downsample.norm.weight", 1, sl, &sg->merge_ln_w) ||
                m2u_enc_tensor(st, prefix, "downsample.norm.bias", 1, sl, &sg->merge_ln_b) ||
                m2u_enc_tensor(st, prefix, "downsample.reduction.weight", 2, sw, &sg->merge_w))
                goto done;
        }
        res /= 2;
    }
    if (load_vec(st, AE "norm.weight", c->num_features, &m->norm_w) ||
        load_vec(st, AE "norm.bias", c->num_features, &m->norm_b) ||
        load_projection(st, "audio_projection", c->num_features, c->proj_dim, &m->audio_proj))
        goto done;
    rc = 0;
done:
    free(bw);
    free(bb);
    free(rm);
    free(rv);
    return rc;
}

void m2u_clap_free(m2u_clap *m) {
    if (!m) return;
    m2u_fft_free(m->fft);
    free(m->window);
    free(m->mel_fb);
    free(m->mel_lo);
    free(m->mel_hi);
    free(m->bn_scale);
    free(m->bn_shift);
    free(m->patch_w);
    free(m->patch_b);
    free(m->patch_ln_w);
    free(m->patch_ln_b);
    for (int s = 0; s < M2U_CLAP_MAX_STAGES; s++) {
        swin_stage *sg = &m->stages[s];
        if (sg->blocks)
            for (int b = 0; b < sg->n_blocks; b++) {
                m2u_enc_layer_free(&sg->blocks[b].w);
                free(sg->blocks[b].rel_table);
            }
        free(sg->blocks);
        free(sg->merge_ln_w);
        free(sg->merge_ln_b);
        free(sg->merge_w);
    }
    free(m->norm_w);
    free(m->norm_b);
    projection_free(&m->audio_proj);
    m2u_bytebpe_free(m->tok);
    m2u_tokenizer_free(m->fast);
    m2u_bert_free(m->text);
    projection_free(&m->text_proj);
    free(m);
}

/* ClapTextConfig's defaults (RoBERTa-base sizes; transformers writes only the keys that differ). */
static int fill_text_defaults(cJSON *t) {
    static const struct {
        const char *key;
        double v;
    } nums[] = {{"vocab_size", 50265},       {"hidden_size", 768},           {"num_hidden_layers", 12},
                {"num_attention_heads", 12}, {"intermediate_size", 3072},    {"max_position_embeddings", 514},
                {"type_vocab_size", 1},      {"layer_norm_eps", 1e-12},      {"pad_token_id", 1}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, nums[i].key);
        if ((!v || cJSON_IsNull(v)) && !cJSON_AddNumberToObject(t, nums[i].key, nums[i].v)) return -1;
    }
    /* ClapTextModel is a RobertaModel with its pooler: positions from padding_idx + 1 */
    cJSON_DeleteItemFromObjectCaseSensitive(t, "model_type");
    return cJSON_AddStringToObject(t, "model_type", "roberta") ? 0 : -1;
}

static int load_text(m2u_clap *m, const char *dir, const cJSON *root, const char *origin,
                     const m2u_safetensors *st) {
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (tc && !cJSON_IsObject(tc)) return m2u_fail("%s: key 'text_config' is not an object", origin);
    cJSON *t = tc ? cJSON_Duplicate(tc, 1) : cJSON_CreateObject();
    char sub[600];
    snprintf(sub, sizeof sub, "%s (text_config)", origin);
    int rc = !t || fill_text_defaults(t) ? m2u_fail("%s: out of memory", origin)
                                         : m2u_bert_load_sub(t, sub, st, "text_model.", &m->text);
    cJSON_Delete(t);
    if (rc) return -1;
    const m2u_bert_config *bc = m2u_bert_config_of(m->text);
    if (!m2u_bert_has_pooler(m->text))
        return m2u_fail("%s: tensor 'text_model.pooler.dense.weight' is missing (the CLAP text output)",
                        m2u_st_path(st));
    if (load_projection(st, "text_projection", bc->dims.hidden, m->cfg.proj_dim, &m->text_proj)) return -1;
    /* the tokenizer the checkpoint ships: tokenizer.json when present (AutoTokenizer loads
     * RobertaTokenizerFast from it; its ByteLevel splitting follows Oniguruma's letter classes,
     * which differ from the slow tokenizer's on some recent letters), else RobertaTokenizer's
     * vocab.json + merges.txt */
    size_t mml = 0;
    char *tj = m2u_path_join(dir, "tokenizer.json"), *tcp = m2u_path_join(dir, "tokenizer_config.json");
    if (!tj || !tcp) {
        free(tj);
        free(tcp);
        return m2u_fail("%s: out of memory", dir);
    }
    if (m2u_file_exists(tj)) {
        cJSON *tcfg = NULL;
        double v = 0;
        rc = m2u_tokenizer_load(tj, &m->fast) ? m2u_fail_prefix("the CLAP text tower's tokenizer") : 0;
        if (!rc && !(rc = m2u_json_load(tcp, 1, &tcfg)) && tcfg &&
            !(rc = m2u_json_num(tcfg, tcp, "model_max_length", 0, 0, &v)) && v >= 1 && v < 1e29)
            mml = (size_t)v;
        cJSON_Delete(tcfg);
    } else {
        rc = m2u_bytebpe_load(dir, &m->tok) ? m2u_fail_prefix("the CLAP text tower's tokenizer") : 0;
        if (!rc && (m2u_bytebpe_cls_id(m->tok) < 0 || m2u_bytebpe_sep_id(m->tok) < 0))
            rc = m2u_fail("%s: the tokenizer has no <s> / </s> ids", dir);
        if (!rc) mml = m2u_bytebpe_model_max_length(m->tok);
    }
    free(tj);
    free(tcp);
    if (rc) return -1;
    /* ClapModel's users call tokenizer(text) without truncation and the model fails past its
     * positions; m2u truncates there instead (and at model_max_length, as truncation=True would). */
    size_t mx = (size_t)(bc->max_positions - bc->position_offset);
    m->max_tokens = mml && mml < mx ? mml : mx;
    m->cfg.has_text = 1;
    return 0;
}

int m2u_clap_load(const char *dir, m2u_clap **out) {
    *out = NULL;
    m2u_clap *m = calloc(1, sizeof *m);
    char *cfg_path = m2u_path_join(dir, "config.json"), *pp_path = m2u_path_join(dir, "preprocessor_config.json");
    cJSON *cfg = NULL, *pp = NULL;
    m2u_safetensors *st = NULL;
    int rc = -1;
    if (!m || !cfg_path || !pp_path) {
        m2u_fail("%s: out of memory", dir);
        goto done;
    }
    /* the feature extractor's settings come first: the model's image size is checked against them */
    if (m2u_json_load(pp_path, 0, &pp) != 0 || parse_preprocessor(pp, pp_path, &m->cfg) != 0) goto done;
    if (m2u_json_load(cfg_path, 0, &cfg) != 0 || parse_config(cfg, cfg_path, &m->cfg) != 0) goto done;
    if (frontend_init(m) != 0) goto done;
    if (m2u_st_open(dir, &st) != 0 || load_audio(m, st) != 0) goto done;
    /* ClapModel has the text tower; ClapAudioModelWithProjection (the same audio names) does not */
    if (m2u_st_find(st, "text_model.embeddings.word_embeddings.weight") && load_text(m, dir, cfg, cfg_path, st) != 0)
        goto done;
    rc = 0;
done:
    cJSON_Delete(cfg);
    cJSON_Delete(pp);
    m2u_st_close(st);
    free(cfg_path);
    free(pp_path);
    if (rc != 0) {
        m2u_clap_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

const m2u_clap_config *m2u_clap_config_of(const m2u_clap *m) { return &m->cfg; }

/* ---- HTSAT forward ------------------------------------------------------------------------ */

/* torch.nn.functional.interpolate(mode="bicubic", align_corners=True) along the rows of
 * x [in][C] -> y [out][C], as torch's CPU kernel (UpSampleKernel.cpp, HelperInterpCubic) computes
 * it in float: source = float((in - 1) / (out - 1)) * i, weights from t = source - floor(source)
 * with a = -0.75, taps clamped at the borders, summed in tap order.  (The other axis of the 2-D
 * call keeps its size, so its weights are exactly 0, 1, 0, 0 and it changes nothing.) */
static void bicubic_rows(float *y, const float *x, int in, int out, int C) {
    const float A = -0.75f;
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    for (int i = 0; i < out; i++) {
        float real = scale * (float)i;
        long i0 = (long)floorf(real);
        if (i0 > in - 1) i0 = in - 1;
        float t = real - (float)i0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        float x1 = t + 1.0f, x2 = 1.0f - t, x3 = x2 + 1.0f;
        float w[4] = {((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A, ((A + 2) * t - (A + 3)) * t * t + 1,
                      ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1, ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A};
        long idx[4];
        for (int j = 0; j < 4; j++) {
            long k = i0 - 1 + j;
            idx[j] = k < 0 ? 0 : k > in - 1 ? in - 1 : k;
        }
        for (int ch = 0; ch < C; ch++) {
            float acc = x[idx[0] * C + ch] * w[0];
            for (int j = 1; j < 4; j++) acc += x[idx[j] * C + ch] * w[j];
            y[(size_t)i * C + ch] = acc;
        }
    }
}

/* Token of window w, position i inside it, in the unshifted [res][res] grid: the cyclic
 * shift (torch.roll by -shift) maps shifted (y, x) to original ((y + s) % R, (x + s) % R). */
static inline int window_token(int w, int i, int res, int ws, int shift) {
    int nwx = res / ws, wy = w / nwx, wx = w % nwx;
    int y = (wy * ws + i / ws + shift) % res, x = (wx * ws + i % ws + shift) % res;
    return y * res + x;
}

/* SW-MSA region id of shifted position p along one axis (ClapAudioLayer.get_attn_mask's slices). */
static inline int region(int p, int res, int ws, int shift) { return p < res - ws ? 0 : p < res - shift ? 1 : 2; }

/* One Swin block on x [res*res][dim] in place.  scratch sized by block_scratch(). */
static size_t block_scratch(int res, int dim, int heads, int inter, int ws) {
    size_t N = (size_t)res * res, T = (size_t)ws * ws;
    return N * (6 * (size_t)dim + inter) + 2 * N + 2 * (size_t)heads * T * T;
}

static int swin_block_fwd(const swin_block *bk, int ws, float eps, m2u_act act, int inter, float *x, float *scratch) {
    int R = bk->res, C = bk->dim, H = bk->heads, hd = C / H, T = ws * ws, nW = (R / ws) * (R / ws), N = R * R;
    float *t = scratch, *xw = t + (size_t)N * C, *qkv = xw + (size_t)N * C, *att = qkv + 3 * (size_t)N * C,
          *ffn = att + (size_t)N * C, *mean = ffn + (size_t)N * inter, *rstd = mean + N, *rb = rstd + N,
          *bias = rb + (size_t)H * T * T;
    const m2u_enc_layer *L = &bk->w;
    /* the relative-position bias [H][T][T]: table[(dy + ws - 1) (2 ws - 1) + dx + ws - 1][h] */
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            int dy = i / ws - j / ws + ws - 1, dx = i % ws - j % ws + ws - 1;
            const float *row = bk->rel_table + (size_t)(dy * (2 * ws - 1) + dx) * H;
            for (int h = 0; h < H; h++) rb[((size_t)h * T + i) * T + j] = row[h];
        }
    m2u_layernorm_fwd(t, mean, rstd, x, L->ln1_w, L->ln1_b, N, C, eps);
    for (int w = 0; w < nW; w++)
        for (int i = 0; i < T; i++)
            memcpy(xw + ((size_t)w * T + i) * C, t + (size_t)window_token(w, i, R, ws, bk->shift) * C,
                   (size_t)C * sizeof(float));
    m2u_enc_linear(L->qkv_p, qkv, xw, L->qkv_w, L->qkv_b, N, C, 3 * C);
    if (!bk->shift) {
        m2u_attn a = m2u_attn_make(nW, T, T, H, H, hd, 3 * C, 3 * C, 3 * C, 0, 0);
        a.bias = rb, a.bias_heads = H;
        if (m2u_attn_fwd(&a, att, NULL, qkv, qkv + C, qkv + 2 * C)) return -1;
    } else {
        /* each window has its own mask (-100 between tokens of different regions), so one call per window
         * with the bias plus that mask */
        int nwx = R / ws;
        for (int w = 0; w < nW; w++) {
            int wy = w / nwx, wx = w % nwx;
            for (int i = 0; i < T; i++) {
                int ri = region(wy * ws + i / ws, R, ws, bk->shift) * 3 + region(wx * ws + i % ws, R, ws, bk->shift);
                for (int j = 0; j < T; j++) {
                    int rj =
                        region(wy * ws + j / ws, R, ws, bk->shift) * 3 + region(wx * ws + j % ws, R, ws, bk->shift);
                    float mk = ri == rj ? 0.0f : -100.0f;
                    for (int h = 0; h < H; h++) {
                        size_t o = ((size_t)h * T + i) * T + j;
                        bias[o] = rb[o] + mk;
                    }
                }
            }
            const float *q = qkv + (size_t)w * T * 3 * C;
            m2u_attn a = m2u_attn_make(1, T, T, H, H, hd, 3 * C, 3 * C, 3 * C, 0, 0);
            a.bias = bias, a.bias_heads = H;
            if (m2u_attn_fwd(&a, att + (size_t)w * T * C, NULL, q, q + C, q + 2 * C)) return -1;
        }
    }
    m2u_enc_linear(L->o_p, xw, att, L->o_w, L->o_b, N, C, C);
    /* window_reverse, the reverse roll, and the residual */
    for (int w = 0; w < nW; w++)
        for (int i = 0; i < T; i++)
            m2u_add_inplace(x + (size_t)window_token(w, i, R, ws, bk->shift) * C, xw + ((size_t)w * T + i) * C,
                            (size_t)C);
    m2u_layernorm_fwd(t, mean, rstd, x, L->ln2_w, L->ln2_b, N, C, eps);
    m2u_enc_linear(L->fc1_p, ffn, t, L->fc1_w, L->fc1_b, N, C, inter);
    m2u_act_apply(act, ffn, (size_t)N * inter);
    m2u_enc_linear(L->fc2_p, t, ffn, L->fc2_w, L->fc2_b, N, inter, C);
    m2u_add_inplace(x, t, (size_t)N * C);
    return 0;
}

/* ClapAudioPatchMerging: x [R][R][C] -> y [(R/2)^2][2C] via the concat (even, even), (odd, even),
 * (even, odd), (odd, odd) [4C], LayerNorm(4C, 1e-5), Linear(4C -> 2C, no bias). */
static int patch_merge(const swin_stage *sg, const float *x, float *y, float *cat) {
    int R = sg->res, C = sg->dim, R2 = R / 2, N2 = R2 * R2;
    for (int yy = 0; yy < R2; yy++)
        for (int xx = 0; xx < R2; xx++) {
            float *o = cat + ((size_t)yy * R2 + xx) * 4 * C;
            static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
            for (int k = 0; k < 4; k++)
                memcpy(o + (size_t)k * C, x + ((size_t)(2 * yy + dy[k]) * R + 2 * xx + dx[k]) * C,
                       (size_t)C * sizeof(float));
        }
    if (m2u_enc_layernorm(cat, cat, sg->merge_ln_w, sg->merge_ln_b, N2, 4 * C, 1e-5f)) return -1;
    m2u_linear_fwd(y, cat, sg->merge_w, NULL, N2, 4 * C, 2 * C);
    return 0;
}

/* ClapProjectionLayer (linear1, ReLU, linear2) and F.normalize(eps 1e-12): x [in] -> out [out].
 * h: [out] floats of scratch. */
static void project_normalize(const projection *p, const float *x, float *h, float *out) {
    float nrm;
    m2u_linear_fwd(h, x, p->w1, p->b1, 1, p->in, p->out);
    m2u_relu_fwd(h, h, (size_t)p->out);
    m2u_linear_fwd(out, h, p->w2, p->b2, 1, p->out, p->out);
    m2u_l2norm_fwd(out, &nrm, out, 1, p->out, 1e-12f);
}

int m2u_clap_audio_forward(const m2u_clap *m, const float *features, float *pooled, float *embed) {
    const m2u_clap_config *c = &m->cfg;
    int F = c->n_mels, Tin = c->frames, Wt = c->spec_size * c->freq_ratio, S = c->spec_size, P = c->patch;
    int R0 = S / P, E = c->embed_dim, ws = c->window;
    size_t N0 = (size_t)R0 * R0;
    /* the largest scratch: any stage's block (tokens shrink 4x as channels double) or the merge */
    size_t need = 0;
    for (int s = 0; s < c->n_stages; s++) {
        const swin_stage *sg = &m->stages[s];
        size_t b = block_scratch(sg->res, sg->dim, c->heads[s], (int)(c->mlp_ratio * sg->dim), ws);
        if (b > need) need = b;
    }
    size_t img = (size_t)S * S, bn = (size_t)Tin * F, up = (size_t)Wt * F;
    float *a = malloc((bn + up + img) * sizeof(float));
    float *x = malloc(N0 * E * sizeof(float)), *x2 = malloc(N0 * E * sizeof(float));
    float *col = malloc(N0 * P * P * sizeof(float)), *scratch = malloc(need * sizeof(float));
    float *pool = malloc((size_t)c->num_features * sizeof(float));
    double *acc = malloc((size_t)c->num_features * sizeof(double));
    int rc = -1;
    if (!a || !x || !x2 || !col || !scratch || !pool || !acc) {
        m2u_fail("clap: out of memory for the audio tower");
        goto done;
    }
    float *xb = a, *xu = a + bn, *im = xu + up;
    for (size_t t = 0; t < (size_t)Tin; t++)
        for (int f = 0; f < F; f++) xb[t * F + f] = features[t * F + f] * m->bn_scale[f] + m->bn_shift[f];
    /* reshape_mel2img: time -> Wt bicubically, then block k of Wt / freq_ratio frames becomes rows
     * k F .. k F + F - 1 */
    if (Tin < Wt) bicubic_rows(xu, xb, Tin, Wt, F);
    else memcpy(xu, xb, bn * sizeof(float));
    int Wk = Wt / c->freq_ratio; /* = S */
    for (int k = 0; k < c->freq_ratio; k++)
        for (int f = 0; f < F; f++)
            for (int col_i = 0; col_i < Wk; col_i++)
                im[((size_t)k * F + f) * S + col_i] = xu[((size_t)k * Wk + col_i) * F + f];
    m2u_patch_im2col(col, im, 1, S, S, 1, P, P, 1, R0, R0);
    m2u_linear_fwd(x2, col, m->patch_w, m->patch_b, (int)N0, P * P, E);
    if (m2u_enc_layernorm(x, x2, m->patch_ln_w, m->patch_ln_b, (int)N0, E, 1e-5f)) goto done;
    for (int s = 0; s < c->n_stages; s++) {
        const swin_stage *sg = &m->stages[s];
        int inter = (int)(c->mlp_ratio * sg->dim);
        for (int b = 0; b < sg->n_blocks; b++)
            if (swin_block_fwd(&sg->blocks[b], ws, c->ln_eps, c->act, inter, x, scratch)) goto done;
        if (s + 1 < c->n_stages) {
            if (patch_merge(sg, x, x2, scratch)) goto done;
            float *tmp = x;
            x = x2, x2 = tmp;
        }
    }
    int Rl = m->stages[c->n_stages - 1].res, Nl = Rl * Rl;
    if (m2u_enc_layernorm(x, x, m->norm_w, m->norm_b, Nl, c->num_features, 1e-5f)) goto done;
    m2u_col_mean(acc, x, Nl, c->num_features);
    for (int i = 0; i < c->num_features; i++) pool[i] = (float)acc[i];
    if (pooled) memcpy(pooled, pool, (size_t)c->num_features * sizeof(float));
    if (embed) project_normalize(&m->audio_proj, pool, scratch, embed);
    rc = 0;
done:
    free(a);
    free(x);
    free(x2);
    free(col);
    free(scratch);
    free(pool);
    free(acc);
    return rc;
}

int m2u_clap_audio_embed(const m2u_clap *m, const float *pcm, long n, float *embed) {
    const m2u_clap_config *c = &m->cfg;
    float *f = malloc((size_t)c->frames * c->n_mels * sizeof(float));
    if (!f) return m2u_fail("clap: out of memory for the features");
    int rc = m2u_clap_features(m, pcm, n, f);
    if (rc == 0) rc = m2u_clap_audio_forward(m, f, NULL, embed);
    free(f);
    return rc;
}

/* ---- text tower --------------------------------------------------------------------------- */

int m2u_clap_text_forward(const m2u_clap *m, const int32_t *ids, int T, float *pooled, float *embed) {
    if (!m->cfg.has_text) return m2u_fail("clap: this checkpoint has no text tower");
    const m2u_bert_config *bc = m2u_bert_config_of(m->text);
    int H = bc->dims.hidden;
    float *last = malloc((size_t)(T > 0 ? T : 1) * H * sizeof(float)), *pool = malloc((size_t)H * sizeof(float));
    float *h = malloc((size_t)m->cfg.proj_dim * sizeof(float));
    int rc = -1;
    if (!last || !pool || !h) {
        m2u_fail("clap: out of memory for %d tokens", T);
        goto done;
    }
    if (m2u_bert_forward(m->text, ids, T, bc->layers, NULL, last) || m2u_bert_pooler(m->text, last, pool)) goto done;
    if (pooled) memcpy(pooled, pool, (size_t)H * sizeof(float));
    if (embed) project_normalize(&m->text_proj, pool, h, embed);
    rc = 0;
done:
    free(last);
    free(pool);
    free(h);
    return rc;
}

int m2u_clap_tokenize(const m2u_clap *m, const char *text, int32_t **ids, size_t *n_ids) {
    *ids = NULL, *n_ids = 0;
    if (!m->cfg.has_text) return m2u_fail("clap: this checkpoint has no text tower");
    if (!m->fast) return m2u_bytebpe_encode(m->tok, text, strlen(text), -1, 1, m->max_tokens, ids, n_ids);
    if (m2u_tokenizer_encode(m->fast, text, strlen(text), 1, ids, n_ids)) return -1;
    if (*n_ids > m->max_tokens && m->max_tokens >= 2) { /* truncation=True: the text's tokens, then </s> */
        (*ids)[m->max_tokens - 1] = (*ids)[*n_ids - 1];
        *n_ids = m->max_tokens;
    }
    return 0;
}

int m2u_clap_text_embed(const m2u_clap *m, const char *text, float *embed) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (m2u_clap_tokenize(m, text, &ids, &n)) return -1;
    int rc = m2u_clap_text_forward(m, ids, (int)n, NULL, embed);
    free(ids);
    return rc;
}

int m2u_clap_text_embed_many(const m2u_clap *m, const char *const *texts, int n, float *embeds) {
    if (!m->cfg.has_text) return m2u_fail("clap: this checkpoint has no text tower");
    if (n <= 0) return 0;
    const m2u_bert_config *bc = m2u_bert_config_of(m->text);
    int H = bc->dims.hidden, total = 0, rc = -1;
    int32_t **ids = calloc((size_t)n, sizeof *ids), *packed = NULL;
    int *lens = malloc((size_t)n * sizeof *lens);
    float *last = NULL, *pool = malloc((size_t)H * sizeof(float)), *h = malloc((size_t)m->cfg.proj_dim * sizeof(float));
    if (!ids || !lens || !pool || !h) {
        m2u_fail("clap: out of memory for %d captions", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        if (m2u_clap_tokenize(m, texts[i], &ids[i], &k)) goto done;
        if (k > (size_t)(INT_MAX - total)) {
            m2u_fail("clap: %d captions are too long together", n);
            goto done;
        }
        lens[i] = (int)k, total += (int)k;
    }
    packed = malloc((size_t)total * sizeof *packed);
    last = malloc((size_t)total * H * sizeof *last);
    if (!packed || !last) {
        m2u_fail("clap: out of memory for %d caption tokens", total);
        goto done;
    }
    for (int i = 0, t0 = 0; i < n; t0 += lens[i++]) memcpy(packed + t0, ids[i], (size_t)lens[i] * sizeof *packed);
    if (m2u_bert_forward_packed(m->text, packed, n, lens, bc->layers, NULL, last)) goto done;
    /* each caption's pooler reads its first row */
    for (int i = 0, t0 = 0; i < n; t0 += lens[i++]) {
        if (m2u_bert_pooler(m->text, last + (size_t)t0 * H, pool)) goto done;
        project_normalize(&m->text_proj, pool, h, embeds + (size_t)i * m->cfg.proj_dim);
    }
    rc = 0;
done:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids), free(lens), free(packed), free(last), free(pool), free(h);
    return rc;
}
