/* EnCodec: see encodec.h.  Checked against transformers 4.46.3 EncodecModel by tests/test_encodec.c on the
 * fixtures of tests/make_encodec_fixtures.py.  Activations are time-major [T][C] (ops_audio.h says why). */
#include "encodec.h"

#include "encoder_layer.h" /* m2u_json_* */
#include "fileio.h"
#include "m2u_error.h"
#include "ops_audio.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LSTM_LAYERS 8
#define MAX_CODEBOOKS 64

typedef struct {
    int cin, cout, k, stride, dil;
    float *w; /* tap-major [cout][k][cin] */
    float *b; /* [cout] */
} conv_t;

typedef struct {
    int cin, cout, k, stride;
    float *w; /* polyphase (m2u_conv_transpose1d_pack) */
    float *b;
} convtr_t;

typedef struct {
    int dim, layers;
    m2u_lstm_packed l[MAX_LSTM_LAYERS];
} lstm_t;

typedef struct {
    conv_t c1, c2, sc; /* sc only with use_conv_shortcut */
} res_t;

/* One SEANet half.  Decoder stage i: ELU, up[i], res[i][*]; encoder stage i: res[i][*], ELU, down[i]. */
typedef struct {
    conv_t first, last;
    lstm_t lstm;
    convtr_t up[M2U_ENCODEC_MAX_RATIOS];
    conv_t down[M2U_ENCODEC_MAX_RATIOS];
    res_t *res[M2U_ENCODEC_MAX_RATIOS];
    int loaded;
} seanet_t;

struct m2u_encodec {
    m2u_encodec_config cfg;
    seanet_t dec, enc;
    float *codebook[MAX_CODEBOOKS]; /* [codebook_size][codebook_dim] each */
    float *codebook_sq[MAX_CODEBOOKS];
};

/* ---- config ---------------------------------------------------------------------------------------------- */

static int parse_config(const cJSON *root, const char *origin, m2u_encodec_config *c) {
    const char *mt, *norm, *pad;
    int causal, normalize;
    double trim;
    if (m2u_json_str(root, origin, "model_type", "encodec", &mt) != 0) return -1;
    if (strcmp(mt, "encodec") != 0) return m2u_fail("%s: key 'model_type': need \"encodec\", got '%s'", origin, mt);
    /* defaults: EncodecConfig's (the 24 kHz model's), used only for keys a config.json leaves out */
    if (m2u_json_int(root, origin, "audio_channels", 0, 1, 1, &c->audio_channels) ||
        m2u_json_int(root, origin, "sampling_rate", 0, 24000, 1, &c->sampling_rate) ||
        m2u_json_int(root, origin, "hidden_size", 0, 128, 1, &c->hidden_size) ||
        m2u_json_int(root, origin, "num_filters", 0, 32, 1, &c->num_filters) ||
        m2u_json_int(root, origin, "num_residual_layers", 0, 1, 0, &c->num_residual_layers) ||
        m2u_json_int(root, origin, "kernel_size", 0, 7, 1, &c->kernel_size) ||
        m2u_json_int(root, origin, "last_kernel_size", 0, 7, 1, &c->last_kernel_size) ||
        m2u_json_int(root, origin, "residual_kernel_size", 0, 3, 1, &c->residual_kernel_size) ||
        m2u_json_int(root, origin, "dilation_growth_rate", 0, 2, 1, &c->dilation_growth_rate) ||
        m2u_json_int(root, origin, "compress", 0, 2, 1, &c->compress) ||
        m2u_json_int(root, origin, "num_lstm_layers", 0, 2, 1, &c->num_lstm_layers) ||
        m2u_json_int(root, origin, "codebook_size", 0, 1024, 1, &c->codebook_size) ||
        m2u_json_int(root, origin, "codebook_dim", 0, c->hidden_size, 1, &c->codebook_dim) ||
        m2u_json_str(root, origin, "norm_type", "weight_norm", &norm) ||
        m2u_json_str(root, origin, "pad_mode", "reflect", &pad) ||
        m2u_json_bool(root, origin, "use_causal_conv", 1, &causal) ||
        m2u_json_bool(root, origin, "use_conv_shortcut", 1, &c->use_conv_shortcut) ||
        m2u_json_bool(root, origin, "normalize", 0, &normalize) ||
        m2u_json_num(root, origin, "trim_right_ratio", 0, 1.0, &trim))
        return -1;
    if (c->audio_channels != 1)
        return m2u_fail("%s: key 'audio_channels': %d channels are not supported (mono only)", origin,
                        c->audio_channels);
    if (strcmp(norm, "weight_norm") != 0)
        return m2u_fail("%s: key 'norm_type': '%s' is not supported (only \"weight_norm\", as encodec_32khz)", origin,
                        norm);
    if (causal)
        return m2u_fail("%s: key 'use_causal_conv': causal convolutions are not supported (encodec_32khz has false)",
                        origin);
    if (normalize)
        return m2u_fail("%s: key 'normalize': true (per-chunk audio scales) is not supported", origin);
    if (trim != 1.0)
        return m2u_fail("%s: key 'trim_right_ratio': %g is only meaningful for causal convs (need 1.0)", origin, trim);
    if (strcmp(pad, "reflect") == 0) c->pad_reflect = 1;
    else if (strcmp(pad, "constant") == 0) c->pad_reflect = 0;
    else return m2u_fail("%s: key 'pad_mode': '%s' is not supported (need \"reflect\" or \"constant\")", origin, pad);
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "chunk_length_s");
    if (cl && !cJSON_IsNull(cl))
        return m2u_fail("%s: key 'chunk_length_s': chunked encoding/decoding is not supported (need null)", origin);
    if (c->codebook_dim != c->hidden_size)
        return m2u_fail("%s: key 'codebook_dim': %d differs from hidden_size %d (the quantizer has no projection)",
                        origin, c->codebook_dim, c->hidden_size);
    /* the residual convs' dilations are growth^j and pad (kernel - 1) * dilation: bounded
     * here so that no product of them overflows (encodec_32khz: 1 layer, growth 2, kernel 3) */
    if (c->num_residual_layers > 64)
        return m2u_fail("%s: key 'num_residual_layers': at most 64 supported, got %d", origin,
                        c->num_residual_layers);
    double reach = c->residual_kernel_size - 1.0;
    for (int j = 1; j < c->num_residual_layers; j++) reach *= c->dilation_growth_rate;
    if (reach > (double)(1 << 24) || c->kernel_size > 1 << 16 || c->last_kernel_size > 1 << 16)
        return m2u_fail("%s: keys 'residual_kernel_size' (%d), 'dilation_growth_rate' (%d), 'num_residual_layers' (%d), "
                        "'kernel_size' (%d), 'last_kernel_size' (%d): the convolutions reach too far",
                        origin, c->residual_kernel_size, c->dilation_growth_rate, c->num_residual_layers,
                        c->kernel_size, c->last_kernel_size);
    if (c->num_lstm_layers > MAX_LSTM_LAYERS)
        return m2u_fail("%s: key 'num_lstm_layers': at most %d supported, got %d", origin, MAX_LSTM_LAYERS,
                        c->num_lstm_layers);

    if (cJSON_GetObjectItemCaseSensitive(root, "upsampling_ratios")) {
        if (m2u_json_ints(root, origin, "upsampling_ratios", M2U_ENCODEC_MAX_RATIOS, 1, 0, c->upsampling_ratios,
                          &c->n_ratios) != 0)
            return -1;
    } else {
        static const int def[4] = {8, 5, 4, 2};
        c->n_ratios = 4;
        memcpy(c->upsampling_ratios, def, sizeof def);
    }
    long hop = 1;
    for (int i = 0; i < c->n_ratios; i++) {
        hop *= c->upsampling_ratios[i];
        if (hop > 1 << 20) return m2u_fail("%s: key 'upsampling_ratios': hop length too large", origin);
    }
    c->hop_length = (int)hop;
    long top = (long)c->num_filters << c->n_ratios;
    if (top > 1 << 16) return m2u_fail("%s: keys 'num_filters'/'upsampling_ratios': too many channels", origin);
    if (c->num_filters / c->compress < 1)
        return m2u_fail("%s: key 'compress': num_filters %d // %d leaves no hidden channel", origin, c->num_filters,
                        c->compress);

    const cJSON *bw = cJSON_GetObjectItemCaseSensitive(root, "target_bandwidths");
    if (!bw || cJSON_IsNull(bw)) {
        static const double def[5] = {1.5, 3.0, 6.0, 12.0, 24.0};
        c->n_bandwidths = 5;
        memcpy(c->target_bandwidths, def, sizeof def);
    } else {
        int n = cJSON_IsArray(bw) ? cJSON_GetArraySize(bw) : -1;
        if (n < 1 || n > M2U_ENCODEC_MAX_BANDWIDTHS)
            return m2u_fail("%s: key 'target_bandwidths' must be a list of 1..%d numbers", origin,
                            M2U_ENCODEC_MAX_BANDWIDTHS);
        c->n_bandwidths = n;
        for (int i = 0; i < n; i++) {
            const cJSON *v = cJSON_GetArrayItem(bw, i);
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
                return m2u_fail("%s: key 'target_bandwidths': entry %d is not a positive number", origin, i);
            c->target_bandwidths[i] = v->valuedouble;
        }
    }
    c->frame_rate = (int)((c->sampling_rate + c->hop_length - 1) / c->hop_length);
    /* python: int(1000 * bw // (frame_rate * 10)), floor division of floats */
    double nq = floor(1000.0 * c->target_bandwidths[c->n_bandwidths - 1] / (c->frame_rate * 10.0));
    if (!(nq >= 1 && nq <= MAX_CODEBOOKS)) /* compared as a double: a huge bandwidth must not reach the cast */
        return m2u_fail("%s: key 'target_bandwidths': the largest gives %.4g quantizers (need 1..%d)", origin, nq,
                        MAX_CODEBOOKS);
    c->num_quantizers = (int)nq;
    return 0;
}

/* ---- weights ---------------------------------------------------------------------------------------------- */

typedef struct {
    const m2u_safetensors *st;
    const char *prefix;
} loader;

static int read_tensor(const loader *ld, const char *name, int ndim, const int64_t *shape, float **out) {
    return m2u_enc_tensor(ld->st, ld->prefix, name, ndim, shape, out);
}

static int has_tensor(const loader *ld, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    return m2u_st_find(ld->st, full) != NULL;
}

/* The weight of module `base` (an nn.Conv1d / nn.ConvTranspose1d) in torch layout [d0][d1][k], weight norm
 * folded: w = g * v / ||v||, one norm per index of dim 0 (torch's weight_norm default dim). */
static int load_weight(const loader *ld, const char *base, int d0, int d1, int k, float **out) {
    char gname[400], vname[400];
    int64_t s_v[3] = {d0, d1, k}, s_g[3] = {d0, 1, 1};
    *out = NULL;
    snprintf(vname, sizeof vname, "%s.weight_v", base);
    snprintf(gname, sizeof gname, "%s.weight_g", base);
    if (!has_tensor(ld, vname)) {
        snprintf(vname, sizeof vname, "%s.parametrizations.weight.original1", base);
        snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", base);
    }
    if (!has_tensor(ld, vname)) {
        snprintf(vname, sizeof vname, "%s.weight", base);
        if (!has_tensor(ld, vname))
            return m2u_fail("%s: no weight for %s%s (looked for .weight_g/.weight_v, "
                            ".parametrizations.weight.original0/1 and .weight)",
                            m2u_st_path(ld->st), ld->prefix, base);
        return read_tensor(ld, vname, 3, s_v, out); /* already folded */
    }
    float *v = NULL, *g = NULL;
    if (read_tensor(ld, vname, 3, s_v, &v) != 0 || read_tensor(ld, gname, 3, s_g, &g) != 0) {
        free(v);
        return -1;
    }
    size_t per = (size_t)d1 * k;
    for (int i = 0; i < d0; i++) {
        float *r = v + (size_t)i * per;
        double ss = 0;
        for (size_t j = 0; j < per; j++) ss += (double)r[j] * r[j];
        if (!(ss > 0)) {
            free(v);
            free(g);
            return m2u_fail("%s: tensor %s%s: row %d is all zeros, weight norm is undefined", m2u_st_path(ld->st),
                            ld->prefix, vname, i);
        }
        float scale = g[i] / (float)sqrt(ss);
        for (size_t j = 0; j < per; j++) r[j] *= scale;
    }
    free(g);
    *out = v;
    return 0;
}

static int load_conv(const loader *ld, const char *base, int cin, int cout, int k, int stride, int dil, conv_t *c) {
    char name[400];
    float *w = NULL;
    int64_t s_b[1] = {cout};
    c->cin = cin, c->cout = cout, c->k = k, c->stride = stride, c->dil = dil;
    if (load_weight(ld, base, cout, cin, k, &w) != 0) return -1;
    c->w = m2u_conv1d_pack(w, cout, cin, k);
    free(w);
    if (!c->w) return m2u_fail("%s: out of memory for %s%s", m2u_st_path(ld->st), ld->prefix, base);
    snprintf(name, sizeof name, "%s.bias", base);
    return read_tensor(ld, name, 1, s_b, &c->b);
}

static int load_convtr(const loader *ld, const char *base, int cin, int cout, int k, int stride, convtr_t *c) {
    char name[400];
    float *w = NULL;
    int64_t s_b[1] = {cout};
    c->cin = cin, c->cout = cout, c->k = k, c->stride = stride;
    if (load_weight(ld, base, cin, cout, k, &w) != 0) return -1;
    c->w = m2u_conv_transpose1d_pack(w, cin, cout, k, stride);
    free(w);
    if (!c->w) return m2u_fail("%s: out of memory for %s%s", m2u_st_path(ld->st), ld->prefix, base);
    snprintf(name, sizeof name, "%s.bias", base);
    return read_tensor(ld, name, 1, s_b, &c->b);
}

static int load_lstm(const loader *ld, const char *base, int dim, int layers, lstm_t *l) {
    char name[400];
    int64_t s_w[2] = {4 * (int64_t)dim, dim}, s_b[1] = {4 * (int64_t)dim};
    l->dim = dim, l->layers = layers;
    for (int i = 0; i < layers; i++) {
        float *w_ih = NULL, *w_hh = NULL, *b_ih = NULL, *b_hh = NULL;
        int rc = 0;
        snprintf(name, sizeof name, "%s.lstm.weight_ih_l%d", base, i);
        rc = read_tensor(ld, name, 2, s_w, &w_ih);
        snprintf(name, sizeof name, "%s.lstm.weight_hh_l%d", base, i);
        if (rc == 0) rc = read_tensor(ld, name, 2, s_w, &w_hh);
        snprintf(name, sizeof name, "%s.lstm.bias_ih_l%d", base, i);
        if (rc == 0) rc = read_tensor(ld, name, 1, s_b, &b_ih);
        snprintf(name, sizeof name, "%s.lstm.bias_hh_l%d", base, i);
        if (rc == 0) rc = read_tensor(ld, name, 1, s_b, &b_hh);
        if (rc == 0) rc = m2u_lstm_pack(&l->l[i], w_ih, w_hh, b_ih, b_hh, dim, dim);
        free(w_ih);
        free(w_hh);
        free(b_ih);
        free(b_hh);
        if (rc != 0) return -1;
    }
    /* a checkpoint with more LSTM layers than the config says was built from another config */
    snprintf(name, sizeof name, "%s.lstm.weight_ih_l%d", base, layers);
    if (has_tensor(ld, name))
        return m2u_fail("%s: tensor %s%s exists but the config has num_lstm_layers %d", m2u_st_path(ld->st),
                        ld->prefix, name, layers);
    return 0;
}

/* EncodecResnetBlock(dim, dilations (growth^j, 1)) at module path `base`: block.1 and block.3 are the convs
 * (block.0 and block.2 the ELUs), shortcut.conv the optional 1x1 conv. */
static int load_res(const loader *ld, const m2u_encodec_config *c, const char *base, int dim, int j, res_t *r) {
    char name[256];
    int hidden = dim / c->compress, dil = 1;
    for (int i = 0; i < j; i++) dil *= c->dilation_growth_rate;
    snprintf(name, sizeof name, "%s.block.1.conv", base);
    if (load_conv(ld, name, dim, hidden, c->residual_kernel_size, 1, dil, &r->c1) != 0) return -1;
    snprintf(name, sizeof name, "%s.block.3.conv", base);
    if (load_conv(ld, name, hidden, dim, 1, 1, 1, &r->c2) != 0) return -1;
    if (c->use_conv_shortcut) {
        snprintf(name, sizeof name, "%s.shortcut.conv", base);
        if (load_conv(ld, name, dim, dim, 1, 1, 1, &r->sc) != 0) return -1;
    }
    return 0;
}

/* Module indices follow EncodecDecoder's ModuleList (ELUs take an index too). */
static int load_decoder(const loader *ld, const m2u_encodec_config *c, seanet_t *d) {
    char name[256];
    int scale = 1 << c->n_ratios, idx = 0;
    int ch = scale * c->num_filters;
    if (load_conv(ld, "decoder.layers.0.conv", c->hidden_size, ch, c->kernel_size, 1, 1, &d->first) != 0) return -1;
    idx = 1;
    snprintf(name, sizeof name, "decoder.layers.%d", idx++);
    if (load_lstm(ld, name, ch, c->num_lstm_layers, &d->lstm) != 0) return -1;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->upsampling_ratios[i];
        idx++; /* ELU */
        snprintf(name, sizeof name, "decoder.layers.%d.conv", idx++);
        if (load_convtr(ld, name, ch, ch / 2, 2 * r, r, &d->up[i]) != 0) return -1;
        ch /= 2;
        d->res[i] = calloc((size_t)(c->num_residual_layers ? c->num_residual_layers : 1), sizeof(res_t));
        if (!d->res[i]) return m2u_fail("%s: out of memory", m2u_st_path(ld->st));
        for (int j = 0; j < c->num_residual_layers; j++) {
            snprintf(name, sizeof name, "decoder.layers.%d", idx++);
            if (load_res(ld, c, name, ch, j, &d->res[i][j]) != 0) return -1;
        }
    }
    idx++; /* ELU */
    snprintf(name, sizeof name, "decoder.layers.%d.conv", idx);
    if (load_conv(ld, name, c->num_filters, c->audio_channels, c->last_kernel_size, 1, 1, &d->last) != 0) return -1;
    d->loaded = 1;
    return 0;
}

/* EncodecEncoder: stage i runs ratio upsampling_ratios[n_ratios-1-i]. */
static int load_encoder(const loader *ld, const m2u_encodec_config *c, seanet_t *e) {
    char name[256];
    int ch = c->num_filters, idx = 0;
    if (load_conv(ld, "encoder.layers.0.conv", c->audio_channels, ch, c->kernel_size, 1, 1, &e->first) != 0)
        return -1;
    idx = 1;
    for (int i = 0; i < c->n_ratios; i++) {
        int r = c->upsampling_ratios[c->n_ratios - 1 - i];
        e->res[i] = calloc((size_t)(c->num_residual_layers ? c->num_residual_layers : 1), sizeof(res_t));
        if (!e->res[i]) return m2u_fail("%s: out of memory", m2u_st_path(ld->st));
        for (int j = 0; j < c->num_residual_layers; j++) {
            snprintf(name, sizeof name, "encoder.layers.%d", idx++);
            if (load_res(ld, c, name, ch, j, &e->res[i][j]) != 0) return -1;
        }
        idx++; /* ELU */
        snprintf(name, sizeof name, "encoder.layers.%d.conv", idx++);
        if (load_conv(ld, name, ch, 2 * ch, 2 * r, r, 1, &e->down[i]) != 0) return -1;
        ch *= 2;
    }
    snprintf(name, sizeof name, "encoder.layers.%d", idx++);
    if (load_lstm(ld, name, ch, c->num_lstm_layers, &e->lstm) != 0) return -1;
    idx++; /* ELU */
    snprintf(name, sizeof name, "encoder.layers.%d.conv", idx);
    if (load_conv(ld, name, ch, c->hidden_size, c->last_kernel_size, 1, 1, &e->last) != 0) return -1;
    e->loaded = 1;
    return 0;
}

static void free_conv(conv_t *c) {
    free(c->w);
    free(c->b);
}

static void free_seanet(seanet_t *s, int n_stage, int n_res) {
    free_conv(&s->first);
    free_conv(&s->last);
    for (int i = 0; i < MAX_LSTM_LAYERS; i++) m2u_lstm_packed_free(&s->lstm.l[i]);
    for (int i = 0; i < n_stage; i++) {
        free(s->up[i].w);
        free(s->up[i].b);
        free_conv(&s->down[i]);
        if (s->res[i])
            for (int j = 0; j < n_res; j++) {
                free_conv(&s->res[i][j].c1);
                free_conv(&s->res[i][j].c2);
                free_conv(&s->res[i][j].sc);
            }
        free(s->res[i]);
    }
}

void m2u_encodec_free(m2u_encodec *m) {
    if (!m) return;
    free_seanet(&m->dec, m->cfg.n_ratios, m->cfg.num_residual_layers);
    free_seanet(&m->enc, m->cfg.n_ratios, m->cfg.num_residual_layers);
    for (int i = 0; i < MAX_CODEBOOKS; i++) {
        free(m->codebook[i]);
        free(m->codebook_sq[i]);
    }
    free(m);
}

const m2u_encodec_config *m2u_encodec_config_of(const m2u_encodec *m) { return &m->cfg; }

/* config.json next to `path` (path itself when a directory); *weights gets what m2u_st_open should open. */
static int config_path_for(const char *path, char *cfg, size_t n) {
    const char *slash = strrchr(path, '/');
    int w;
    if (m2u_is_dir(path)) w = snprintf(cfg, n, "%s/config.json", path);
    else if (slash) w = snprintf(cfg, n, "%.*s/config.json", (int)(slash - path), path);
    else w = snprintf(cfg, n, "config.json");
    if (w < 0 || (size_t)w >= n) return m2u_fail("%s: path too long", path);
    return 0;
}

int m2u_encodec_load_ex(const char *path, const char *prefix, int with_encoder, m2u_encodec **out) {
    *out = NULL;
    char cfg_path[4096], origin[4200];
    if (!m2u_is_dir(path) && !m2u_file_exists(path)) return m2u_fail("%s: no such file or directory", path);
    if (config_path_for(path, cfg_path, sizeof cfg_path) != 0) return -1;
    cJSON *root = NULL;
    if (m2u_json_load(cfg_path, 0, &root) != 0) return -1;
    const cJSON *sub = root;
    const char *def_prefix = "";
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(root, "audio_encoder");
    snprintf(origin, sizeof origin, "%s", cfg_path);
    if (ae) { /* MusicgenConfig: the codec's config is the audio_encoder entry */
        if (!cJSON_IsObject(ae)) {
            cJSON_Delete(root);
            return m2u_fail("%s: key 'audio_encoder' must be an object", cfg_path);
        }
        sub = ae;
        def_prefix = "audio_encoder.";
        snprintf(origin, sizeof origin, "%s: audio_encoder", cfg_path);
    }
    m2u_encodec *m = calloc(1, sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return m2u_fail("%s: out of memory", path);
    }
    int rc = parse_config(sub, origin, &m->cfg);
    cJSON_Delete(root);
    if (rc != 0) {
        free(m);
        return -1;
    }
    m2u_safetensors *st = NULL;
    if (m2u_st_open(path, &st) != 0) {
        free(m);
        return -1;
    }
    loader ld = {st, prefix ? prefix : def_prefix};
    const m2u_encodec_config *c = &m->cfg;
    rc = load_decoder(&ld, c, &m->dec);
    if (rc == 0 && with_encoder) rc = load_encoder(&ld, c, &m->enc);
    for (int q = 0; rc == 0 && q < c->num_quantizers; q++) {
        char name[128];
        int64_t s[2] = {c->codebook_size, c->codebook_dim};
        snprintf(name, sizeof name, "quantizer.layers.%d.codebook.embed", q);
        rc = read_tensor(&ld, name, 2, s, &m->codebook[q]);
        if (rc == 0) {
            m->codebook_sq[q] = malloc((size_t)c->codebook_size * sizeof(float));
            if (!m->codebook_sq[q]) rc = m2u_fail("%s: out of memory", m2u_st_path(st));
            else m2u_vq_sqnorms(m->codebook_sq[q], m->codebook[q], c->codebook_size, c->codebook_dim);
        }
    }
    m2u_st_close(st);
    if (rc != 0) {
        m2u_encodec_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int m2u_encodec_load(const char *path, const char *prefix, m2u_encodec **out) {
    return m2u_encodec_load_ex(path, prefix, 1, out);
}

int m2u_encodec_codebooks_for_bandwidth(const m2u_encodec *m, double bandwidth, int *n_codebooks) {
    const m2u_encodec_config *c = &m->cfg;
    if (bandwidth <= 0) bandwidth = c->target_bandwidths[0];
    int ok = 0;
    for (int i = 0; i < c->n_bandwidths; i++) ok |= c->target_bandwidths[i] == bandwidth;
    if (!ok) return m2u_fail("encodec: bandwidth %g kbps is not one of the model's target_bandwidths", bandwidth);
    double bw_per_q = log2((double)c->codebook_size) * c->frame_rate;
    double q = floor(bandwidth * 1000.0 / bw_per_q);
    int n = q < 1 ? 1 : (int)q;
    *n_codebooks = n < c->num_quantizers ? n : c->num_quantizers;
    return 0;
}

/* ---- forward ------------------------------------------------------------------------------------------------ */

/* Scratch of one decode or encode.  The forward runs twice: a dry run that only records the largest buffer
 * each role needs (same code path, so sizes cannot drift from use), then the real one on buffers allocated
 * once, so the layers reuse the same pages instead of faulting in fresh ones per layer. */
typedef struct {
    int dry;
    float *h[2]; /* activations, ping-pong */
    float *pad;  /* the LSTM's intermediate layer outputs */
    float *t1;   /* residual block hidden */
    size_t cap_h, cap_pad, cap_t1;
} work_t;

static void need(size_t *cap, size_t n) {
    if (n > *cap) *cap = n;
}

static int work_alloc(work_t *w) {
    w->dry = 0;
    w->h[0] = m2u_audio_alloc(w->cap_h);
    w->h[1] = m2u_audio_alloc(w->cap_h);
    w->pad = m2u_audio_alloc(w->cap_pad);
    w->t1 = m2u_audio_alloc(w->cap_t1);
    if (!w->h[0] || !w->h[1] || !w->pad || !w->t1)
        return m2u_fail("encodec: out of memory for %.0f MB of activations",
                        (2.0 * w->cap_h + w->cap_pad + w->cap_t1) * 4 / 1e6);
    return 0;
}

static void work_free(work_t *w) {
    free(w->h[0]);
    free(w->h[1]);
    free(w->pad);
    free(w->t1);
}

/* EncodecConv1d (non-causal) of x[T][cin] (ELU'd first when elu) into y[T_out][cout] (y += ... when
 * accumulate).  Padding: (eff_k - stride) split right = total / 2, left = the rest, plus right padding
 * to a whole number of strides, ceil(T / stride) * stride - T; the kernel pads block by block.  y must not
 * alias x. */
static int sconv(const m2u_encodec *m, work_t *w, const conv_t *c, const float *x, int T, int elu, float *y,
                 int accumulate, int *T_out) {
    int eff = (c->k - 1) * c->dil + 1, total = eff - c->stride;
    int right = total / 2, left = total - right;
    long extra = ((long)T + c->stride - 1) / c->stride * c->stride - T;
    long Tp = (long)T + total + extra;
    *T_out = m2u_conv1d_out_len((int)Tp, c->k, c->stride, c->dil);
    if (w->dry) return 0;
    m2u_pad_spec pad = {left, (int)(right + extra), m->cfg.pad_reflect ? M2U_PAD_REFLECT : M2U_PAD_CONSTANT, elu};
    return m2u_conv1d_fwd(y, x, T, c->cin, c->cout, c->k, c->stride, c->dil, &pad, c->w, c->b, accumulate);
}

/* EncodecResnetBlock on w->h[*cur] [T][dim]: h = shortcut(h) + conv2(ELU(conv1(ELU(h)))). */
static int resblock(const m2u_encodec *m, work_t *w, const res_t *r, int *cur, int T) {
    float *h = w->h[*cur], *o = w->h[1 - *cur];
    int T1, T2;
    if (w->dry) need(&w->cap_t1, (size_t)T * r->c1.cout);
    if (sconv(m, w, &r->c1, h, T, 1, w->t1, 0, &T1) != 0) return -1;
    if (!w->dry) m2u_elu(w->t1, w->t1, (size_t)T1 * r->c1.cout);
    if (!m->cfg.use_conv_shortcut) /* identity: add conv2 straight into h */
        return sconv(m, w, &r->c2, w->t1, T1, 0, h, 1, &T2);
    int Ts;
    if (sconv(m, w, &r->sc, h, T, 0, o, 0, &Ts) != 0 || sconv(m, w, &r->c2, w->t1, T1, 0, o, 1, &T2) != 0)
        return -1;
    *cur = 1 - *cur;
    return 0;
}

/* EncodecLSTM on w->h[cur] [T][dim]: the layers, then + input (skip).  The last layer writes the other
 * activation buffer; the intermediate layers' outputs go to the pad buffer. */
static int lstm_skip(work_t *w, const lstm_t *l, int cur, int T) {
    size_t n = (size_t)T * l->dim;
    if (w->dry) {
        need(&w->cap_pad, n * (size_t)(l->layers > 1 ? l->layers - 1 : 1));
        return 0;
    }
    float *x = w->h[cur], *out = w->h[1 - cur];
    if (m2u_lstm_fwd(out, w->pad, x, T, l->l, l->layers) != 0) return -1;
    m2u_add_inplace(x, out, n);
    return 0;
}

/* SEANet decoder of z (already in w->h[0], [N][hidden]); the waveform ends up in w->h[*cur], *T samples. */
static int decoder_fwd(const m2u_encodec *m, work_t *w, int N, int *cur, int *T_io) {
    const m2u_encodec_config *c = &m->cfg;
    const seanet_t *d = &m->dec;
    int T = N, To;
    *cur = 0;
    if (w->dry) need(&w->cap_h, (size_t)N * (c->hidden_size > d->first.cout ? c->hidden_size : d->first.cout));
    if (sconv(m, w, &d->first, w->h[0], T, 0, w->h[1], 0, &To) != 0) return -1;
    *cur = 1;
    T = To;
    if (lstm_skip(w, &d->lstm, *cur, T) != 0) return -1;
    for (int i = 0; i < c->n_ratios; i++) {
        const convtr_t *u = &d->up[i];
        int total = u->k - u->stride, right = total / 2, left = total - right;
        To = (T - 1) * u->stride + u->k - total;
        if (w->dry) {
            need(&w->cap_h, (size_t)To * u->cout);
        } else {
            float *h = w->h[*cur];
            m2u_elu(h, h, (size_t)T * u->cin); /* the pre-ELU values are not needed again */
            if (m2u_conv_transpose1d_fwd(w->h[1 - *cur], h, T, u->cin, u->cout, u->k, u->stride, left, right, u->w,
                                         u->b) != 0)
                return -1;
        }
        *cur = 1 - *cur;
        T = To;
        for (int j = 0; j < c->num_residual_layers; j++)
            if (resblock(m, w, &d->res[i][j], cur, T) != 0) return -1;
    }
    if (w->dry) need(&w->cap_h, (size_t)T * d->last.cout);
    if (sconv(m, w, &d->last, w->h[*cur], T, 1, w->h[1 - *cur], 0, &To) != 0) return -1;
    *cur = 1 - *cur;
    *T_io = To;
    return 0;
}

int m2u_encodec_decode(const m2u_encodec *m, const int32_t *codes, int K, int N, float **wav, size_t *n) {
    const m2u_encodec_config *c = &m->cfg;
    *wav = NULL;
    *n = 0;
    if (K < 1 || K > c->num_quantizers)
        return m2u_fail("encodec decode: %d codebooks given, the model has %d", K, c->num_quantizers);
    if (N < 1) return m2u_fail("encodec decode: no frames");
    if ((long)N * c->hop_length > 1L << 30) return m2u_fail("encodec decode: %d frames is too long", N);
    for (size_t i = 0; i < (size_t)K * N; i++)
        if (codes[i] < 0 || codes[i] >= c->codebook_size)
            return m2u_fail("encodec decode: code %d at codebook %zu frame %zu is outside [0, %d)", codes[i], i / N,
                            i % N, c->codebook_size);
    work_t w = {.dry = 1};
    int cur, T;
    if (decoder_fwd(m, &w, N, &cur, &T) != 0 || work_alloc(&w) != 0) {
        work_free(&w);
        return -1;
    }
    float *out = malloc((size_t)T * sizeof(float));
    if (!out) {
        work_free(&w);
        return m2u_fail("encodec decode: out of memory for %d samples", T);
    }
    memset(w.h[0], 0, (size_t)N * c->hidden_size * sizeof(float));
    for (int k = 0; k < K; k++)
        m2u_vq_dequant_add(w.h[0], codes + (size_t)k * N, N, m->codebook[k], c->hidden_size, 1.0f);
    if (decoder_fwd(m, &w, N, &cur, &T) != 0) {
        free(out);
        work_free(&w);
        return -1;
    }
    memcpy(out, w.h[cur], (size_t)T * sizeof(float)); /* one channel: [T][1] is the waveform */
    work_free(&w);
    *wav = out;
    *n = (size_t)T;
    return 0;
}

/* SEANet encoder of the waveform (in w->h[0], [n][1]); the embeddings end up in w->h[*cur], [*T][hidden]. */
static int encoder_fwd(const m2u_encodec *m, work_t *w, int n, int *cur, int *T_io) {
    const m2u_encodec_config *c = &m->cfg;
    const seanet_t *e = &m->enc;
    int T = n, To;
    if (w->dry) need(&w->cap_h, (size_t)n * e->first.cout);
    if (sconv(m, w, &e->first, w->h[0], T, 0, w->h[1], 0, &To) != 0) return -1;
    *cur = 1;
    T = To;
    for (int i = 0; i < c->n_ratios; i++) {
        for (int j = 0; j < c->num_residual_layers; j++)
            if (resblock(m, w, &e->res[i][j], cur, T) != 0) return -1;
        const conv_t *dn = &e->down[i];
        if (sconv(m, w, dn, w->h[*cur], T, 1, w->h[1 - *cur], 0, &To) != 0) return -1;
        if (w->dry) need(&w->cap_h, (size_t)To * dn->cout);
        *cur = 1 - *cur;
        T = To;
    }
    if (lstm_skip(w, &e->lstm, *cur, T) != 0) return -1;
    if (sconv(m, w, &e->last, w->h[*cur], T, 1, w->h[1 - *cur], 0, &To) != 0) return -1;
    if (w->dry) need(&w->cap_h, (size_t)To * e->last.cout);
    *cur = 1 - *cur;
    *T_io = To;
    return 0;
}

int m2u_encodec_encode(const m2u_encodec *m, const float *wav, size_t n, int n_codebooks, int32_t **codes, int *N) {
    const m2u_encodec_config *c = &m->cfg;
    *codes = NULL;
    *N = 0;
    if (!m->enc.loaded) return m2u_fail("encodec encode: the model was loaded without its encoder");
    if (n_codebooks < 1 || n_codebooks > c->num_quantizers)
        return m2u_fail("encodec encode: %d codebooks asked, the model has %d", n_codebooks, c->num_quantizers);
    if (n < 1) return m2u_fail("encodec encode: no samples");
    if (n > 1u << 30) return m2u_fail("encodec encode: %zu samples is too long", n);
    work_t w = {.dry = 1};
    int cur, T;
    if (encoder_fwd(m, &w, (int)n, &cur, &T) != 0 || work_alloc(&w) != 0) {
        work_free(&w);
        return -1;
    }
    int32_t *out = malloc((size_t)n_codebooks * T * sizeof(int32_t));
    if (!out) {
        work_free(&w);
        return m2u_fail("encodec encode: out of memory");
    }
    memcpy(w.h[0], wav, n * sizeof(float));
    if (encoder_fwd(m, &w, (int)n, &cur, &T) != 0) goto fail;
    float *res = w.h[cur]; /* the residual [T][hidden] from here on */
    for (int k = 0; k < n_codebooks; k++) {
        int32_t *ck = out + (size_t)k * T;
        if (m2u_vq_nearest(ck, res, T, c->hidden_size, m->codebook[k], m->codebook_sq[k], c->codebook_size) != 0)
            goto fail;
        if (k + 1 < n_codebooks) m2u_vq_dequant_add(res, ck, T, m->codebook[k], c->hidden_size, -1.0f);
    }
    work_free(&w);
    *codes = out;
    *N = T;
    return 0;
fail:
    free(out);
    work_free(&w);
    return -1;
}
