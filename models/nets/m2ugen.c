#include "m2ugen.h"

#include "fileio.h"
#include "m2u_error.h"
#include "rng.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

static const char *const k_prefixes[M2U_N_MODALITIES] = {"mu_mert_", "iu_vit_", "iu_vivit_"};

void m2u_m2ugen_free(m2u_m2ugen *m) {
    if (!m) return;
    for (int g = 0; g < M2U_N_MODALITIES; g++)
        if (m->cfg.use_adapter[g]) m2u_adapter_free(&m->adapter[g]);
    if (m->cfg.use_projector) m2u_projector_free(&m->proj);
    m2u_params_free(m->extra_params, m->n_extra);
    free(m->params);
    free(m->adapter_in);
    free(m->vec);
    free(m->present);
    free(m->target_rows);
    free(m->proj_in);
    free(m->dproj_in);
    free(m->aud_pos);
    m2u_llama_free(m->llm);
    free(m);
}

int m2u_m2ugen_load(const char *llm_dir, const m2u_m2ugen_config *cfg, m2u_m2ugen **out) {
    *out = NULL;
    m2u_m2ugen *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("out of memory");
    m->cfg = *cfg;
    char *cpath = m2u_path_join(llm_dir, "config.json");
    m2u_llama_config lc;
    int rc = m2u_llama_config_load(cpath, &lc);
    free(cpath);
    if (rc) {
        free(m);
        return -1;
    }
    int C = lc.hidden_size, q = cfg->query_layer;
    if (q < 0 || 3 * q > lc.n_layers) {
        free(m);
        return m2u_fail("query_layer %d: 3 groups x %d layers exceed the LLaMA's %d layers", q, q, lc.n_layers);
    }
    /* sizes of everything trained alongside the LLaMA, laid out after its own trainables */
    size_t extra = (size_t)3 * q * C;
    for (int g = 0; g < M2U_N_MODALITIES; g++)
        if (cfg->use_adapter[g]) {
            m->cfg.adapter[g].dim = C;
            snprintf(m->cfg.adapter[g].prefix, sizeof m->cfg.adapter[g].prefix, "%s", k_prefixes[g]);
            size_t n = m2u_adapter_size(&m->cfg.adapter[g]);
            if (!n) {
                free(m);
                return -1;
            }
            extra += n;
        }
    if (cfg->use_projector) {
        m->cfg.projector.dim = C;
        m->cfg.projector.n_in = cfg->n_aud;
        if (!m->cfg.projector.prefix[0]) snprintf(m->cfg.projector.prefix, sizeof m->cfg.projector.prefix, "output_projector.");
        size_t n = m2u_projector_size(&m->cfg.projector);
        if (!n) {
            free(m);
            return -1;
        }
        extra += n;
    }
    m2u_train_spec spec = cfg->llm;
    spec.adapter_layers = 3 * q;
    spec.reserve_floats = extra;
    if (m2u_llama_load(llm_dir, &spec, &m->llm)) {
        free(m);
        return -1;
    }
    float *pb = m->llm->param_buf + m->llm->n_param_floats, *gb = m->llm->grad_buf + m->llm->n_param_floats;
    m2u_param *tables[2 + M2U_N_MODALITIES];
    int counts[2 + M2U_N_MODALITIES], n_tables = 0;
    rc = 0;
    m2u_param *prefix_tab = NULL;
    int n_prefix = 0;
    if (q > 0) {
        m2u_ptable t = {0};
        rc = m2u_ptable_add(&t, "", "prefix_query.weight", 2, 3 * q, C, 1, &m->prefix, &m->dprefix);
        if (!rc) rc = m2u_ptable_finish(&t, pb, gb, &prefix_tab, &n_prefix);
        if (!rc) {
            m2u_rng r; /* nn.Embedding: N(0, 1) */
            m2u_rng_seed(&r, cfg->seed ^ 0x9e3779b9ull);
            for (size_t i = 0; i < (size_t)3 * q * C; i++) m->prefix[i] = m2u_rng_normal(&r);
            pb += (size_t)3 * q * C;
            gb += (size_t)3 * q * C;
            tables[n_tables] = prefix_tab;
            counts[n_tables++] = n_prefix;
        }
    }
    for (int g = 0; g < M2U_N_MODALITIES && !rc; g++) {
        if (!cfg->use_adapter[g]) continue;
        rc = m2u_adapter_init(&m->adapter[g], &m->cfg.adapter[g], pb, gb);
        if (rc) {
            m->cfg.use_adapter[g] = 0;
            break;
        }
        m2u_adapter_reset_params(&m->adapter[g], cfg->seed + 101 * (uint64_t)(g + 1));
        pb += m->adapter[g].n_floats;
        gb += m->adapter[g].n_floats;
        tables[n_tables] = m->adapter[g].params;
        counts[n_tables++] = m->adapter[g].n_params;
    }
    if (!rc && cfg->use_projector) {
        rc = m2u_projector_init(&m->proj, &m->cfg.projector, pb, gb);
        if (rc) m->cfg.use_projector = 0;
        else {
            m2u_projector_reset_params(&m->proj, cfg->seed + 7919);
            tables[n_tables] = m->proj.params;
            counts[n_tables++] = m->proj.n_params;
        }
    }
    m->extra_params = prefix_tab;
    m->n_extra = n_prefix;
    if (!rc) {
        /* one table over the one buffer: the LLaMA's views, then the modules' (names stay theirs) */
        int total = m->llm->n_params;
        for (int i = 0; i < n_tables; i++) total += counts[i];
        m->params = calloc((size_t)total + 1, sizeof(m2u_param));
        if (!m->params) rc = m2u_fail("out of memory");
        else {
            memcpy(m->params, m->llm->params, (size_t)m->llm->n_params * sizeof(m2u_param));
            int k = m->llm->n_params;
            for (int i = 0; i < n_tables; i++) {
                memcpy(m->params + k, tables[i], (size_t)counts[i] * sizeof(m2u_param));
                k += counts[i];
            }
            m->n_params = total;
            m->n_floats = m->llm->n_param_floats + extra;
        }
    }
    if (rc) {
        m2u_m2ugen_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int m2u_m2ugen_forward(m2u_m2ugen *m, const int32_t *ids, const int32_t *labels, int B, int T, int ignore_index,
                       const float *const *feats, const int *const *present, const int *aud_pos, const float *target,
                       const int *has_target, double *ce_sum, double *mse_sum, int *n_mse) {
    m2u_llama *l = m->llm;
    int C = l->cfg.hidden_size, q = m->cfg.query_layer, A = 3 * q;
    m->B = B;
    free(m->adapter_in);
    free(m->vec);
    free(m->present);
    free(m->aud_pos);
    m->adapter_in = calloc((size_t)(A ? A : 1) * B * C, sizeof(float));
    m->vec = calloc((size_t)M2U_N_MODALITIES * B * C, sizeof(float));
    m->present = calloc((size_t)M2U_N_MODALITIES * B, sizeof(int));
    m->aud_pos = malloc((size_t)B * sizeof(int));
    if (!m->adapter_in || !m->vec || !m->present || !m->aud_pos) return m2u_fail("out of memory");
    memcpy(m->aud_pos, aud_pos, (size_t)B * sizeof(int));
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        if (!feats || !feats[g] || !m->cfg.use_adapter[g]) continue;
        for (int b = 0; b < B; b++) m->present[g * B + b] = present[g][b] != 0;
        if (m2u_adapter_forward(&m->adapter[g], feats[g], B, m->vec + (size_t)g * B * C)) return -1;
    }
    for (int j = 0; j < A; j++) {
        int g = j / q;
        for (int b = 0; b < B; b++) {
            float *a = m->adapter_in + ((size_t)j * B + b) * C;
            const float *pq = m->prefix + (size_t)j * C, *v = m->vec + ((size_t)g * B + b) * C;
            if (m->present[g * B + b]) m2u_add(a, pq, v, (size_t)C);
            else memcpy(a, pq, (size_t)C * sizeof(float));
        }
    }
    l->adapter_in = A ? m->adapter_in : NULL;
    float loss = 0;
    if (m2u_llama_forward(l, ids, labels, B, T, ignore_index, &loss)) return -1;
    *ce_sum = (double)loss * l->n_valid;
    *mse_sum = 0;
    *n_mse = 0;
    m->n_target = 0;
    if (!m->cfg.use_projector || !target) return 0;
    int n_aud = m->cfg.n_aud, per = m->cfg.projector.n_out * m->cfg.projector.out_dim;
    /* NULL after freeing: a call with no target row returns before the new
     * allocations, and the next call frees these again */
    free(m->target_rows);
    free(m->proj_in);
    free(m->dproj_in);
    m->proj_in = m->dproj_in = NULL;
    m->target_rows = malloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++)
        if (has_target[b] && aud_pos[b] >= 0 && aud_pos[b] + n_aud <= T) m->target_rows[m->n_target++] = b;
    if (!m->n_target) return 0;
    int nt = m->n_target;
    m->proj_in = malloc((size_t)nt * n_aud * C * sizeof(float));
    m->dproj_in = malloc((size_t)nt * n_aud * C * sizeof(float));
    float *tgt = malloc((size_t)nt * per * sizeof(float)), *pout = malloc((size_t)nt * per * sizeof(float));
    float *tmp = malloc((size_t)C * sizeof(float));
    const float *h = m2u_llama_last_hidden(l);
    for (int t = 0; t < nt; t++) {
        int b = m->target_rows[t];
        for (int k = 0; k < n_aud; k++) {
            const float *hr = h + ((size_t)b * T + aud_pos[b] + k) * C, *e = m2u_llama_embed_row(l, m->cfg.aud_id0 + k, tmp);
            float *x = m->proj_in + ((size_t)t * n_aud + k) * C;
            m2u_add(x, hr, e, (size_t)C);
        }
        memcpy(tgt + (size_t)t * per, target + (size_t)b * per, (size_t)per * sizeof(float));
    }
    float mse = 0;
    int rc = m2u_projector_forward(&m->proj, m->proj_in, nt, pout);
    if (!rc) rc = m2u_projector_loss(&m->proj, tgt, &mse);
    free(tgt);
    free(pout);
    free(tmp);
    if (rc) return -1;
    *mse_sum = (double)mse * nt; /* every sample has the same element count */
    *n_mse = nt;
    return 0;
}

size_t m2u_m2ugen_act_bytes(const m2u_m2ugen *m, int B, int T) {
    const size_t Bz = (size_t)B, C = (size_t)m->llm->cfg.hidden_size, A = 3 * (size_t)m->cfg.query_layer;
    /* forward: adapter_in, vec, present, aud_pos; backward: dvec */
    size_t words = (A ? A : 1) * Bz * C + M2U_N_MODALITIES * Bz * C + M2U_N_MODALITIES * Bz + Bz + Bz * C;
    size_t bytes = 0;
    for (int g = 0; g < M2U_N_MODALITIES; g++)
        if (m->cfg.use_adapter[g]) bytes += m2u_adapter_act_bytes(&m->adapter[g].cfg, B);
    if (m->cfg.use_projector) {
        size_t n_aud = (size_t)m->cfg.n_aud, per = (size_t)m->cfg.projector.n_out * m->cfg.projector.out_dim;
        /* target_rows, proj_in, dproj_in, the targets and outputs gathered, one row, dh */
        words += Bz + 2 * Bz * n_aud * C + 2 * Bz * per + C + Bz * (size_t)T * C;
        bytes += m2u_projector_act_bytes(&m->proj, B);
    }
    return bytes + words * sizeof(float); /* ints and floats are both 4 bytes */
}

int m2u_m2ugen_backward(m2u_m2ugen *m, float ce_scale, float mse_scale) {
    m2u_llama *l = m->llm;
    int B = m->B, T = l->T, C = l->cfg.hidden_size, q = m->cfg.query_layer, A = 3 * q, n_aud = m->cfg.n_aud;
    float *dh = NULL;
    if (m->n_target) {
        int nt = m->n_target;
        memset(m->dproj_in, 0, (size_t)nt * n_aud * C * sizeof(float));
        /* d(sum of per-sample means) = nt * d(mean over all of them) */
        if (m2u_projector_backward(&m->proj, NULL, mse_scale * (float)nt, m->dproj_in)) return -1;
        dh = calloc((size_t)B * T * C, sizeof(float));
        if (!dh) return m2u_fail("out of memory");
        for (int t = 0; t < nt; t++) {
            int b = m->target_rows[t];
            for (int k = 0; k < n_aud; k++) {
                const float *d = m->dproj_in + ((size_t)t * n_aud + k) * C;
                float *dr = dh + ((size_t)b * T + m->aud_pos[b] + k) * C;
                int id = m->cfg.aud_id0 + k;
                float *de = id >= l->rows_start ? l->dembed_rows + (size_t)(id - l->rows_start) * C : NULL;
                m2u_add_inplace(dr, d, (size_t)C);
                if (de) m2u_add_inplace(de, d, (size_t)C);
            }
        }
    }
    int rc = m2u_llama_backward_hidden(l, ce_scale, dh);
    free(dh);
    if (rc || !A) return rc;
    float *dvec = calloc((size_t)B * C, sizeof(float));
    if (!dvec) return m2u_fail("out of memory");
    for (int j = 0; j < A; j++)
        for (int b = 0; b < B; b++) {
            const float *d = l->dadapter_in + ((size_t)j * B + b) * C;
            float *dp = m->dprefix + (size_t)j * C;
            m2u_add_inplace(dp, d, (size_t)C);
        }
    for (int g = 0; g < M2U_N_MODALITIES && !rc; g++) {
        if (!m->cfg.use_adapter[g]) continue;
        int any = 0;
        memset(dvec, 0, (size_t)B * C * sizeof(float));
        for (int b = 0; b < B; b++) {
            if (!m->present[g * B + b]) continue;
            any = 1;
            for (int i = 0; i < q; i++) {
                const float *d = l->dadapter_in + ((size_t)(g * q + i) * B + b) * C;
                m2u_add_inplace(dvec + (size_t)b * C, d, (size_t)C);
            }
        }
        if (any) rc = m2u_adapter_backward(&m->adapter[g], dvec);
    }
    free(dvec);
    return rc;
}

/* ---- released M2UGen checkpoints --------------------------------------------------------------- */

/* M2UGen's Meta-layout names of the seven linears: (module, weight) */
static const char *const k_meta_part[M2U_N_LINEAR] = {"attention", "attention", "attention", "attention",
                                                      "feed_forward", "feed_forward", "feed_forward"};
static const char *const k_meta_name[M2U_N_LINEAR] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

/* Meta interleaves RoPE pairs (2i, 2i+1) within a head; HF puts them at (i, i + hd/2).
 * HF row r of a head = Meta row (r < hd/2 ? 2r : 2(r - hd/2) + 1). */
static void meta_to_hf_rows(const float *src, float *dst, int rows, int cols, int hd) {
    int half = hd / 2;
    for (int r = 0; r < rows; r++) {
        int h = r / hd, i = r % hd, mr = h * hd + (i < half ? 2 * i : 2 * (i - half) + 1);
        memcpy(dst + (size_t)r * cols, src + (size_t)mr * cols, (size_t)cols * sizeof(float));
    }
}

static int slot_of(const char *proj) {
    for (int s = 0; s < M2U_N_LINEAR; s++)
        if (!strcmp(proj, m2u_linear_names[s])) return s;
    return -1;
}

int m2u_m2ugen_load_released(m2u_m2ugen *m, const char *path, int *n_loaded) {
    m2u_llama *l = m->llm;
    const m2u_train_spec *sp = &l->spec;
    *n_loaded = 0;
    if (sp->lora_r > 0 && sp->lora_alpha != (float)sp->lora_r)
        return m2u_fail("%s: M2UGen's LoRA has scale 1; set lora_alpha = lora_r (%d), not %g", path, sp->lora_r,
                        (double)sp->lora_alpha);
    m2u_safetensors *st;
    if (m2u_st_open(path, &st)) return -1;
    const char *pre = m2u_st_find(st, "llama.norm.weight") ? "" : m2u_st_find(st, "model.llama.norm.weight") ? "model." : NULL;
    if (!pre) {
        m2u_st_close(st);
        return m2u_fail("%s: no llama.norm.weight: not an M2UGen checkpoint", path);
    }
    int hd = l->cfg.head_dim, C = l->cfg.hidden_size, rc = 0;
    for (int i = 0; i < m->n_params && !rc; i++) {
        m2u_param *p = &m->params[i];
        char src[512], parent[32], proj[32], ab;
        int layer, row0 = 0, permute = 0;
        if (strstr(p->name, ".lora_") &&
            sscanf(p->name, "base_model.model.model.layers.%d.%31[^.].%31[^.].lora_%c.weight", &layer, parent, proj,
                   &ab) == 4) {
            int s = slot_of(proj);
            if (s < 0) {
                rc = m2u_fail("%s: unexpected parameter %s", path, p->name);
                break;
            }
            snprintf(src, sizeof src, "%sllama.layers.%d.%s.lora_%s_%s.weight", pre, layer, k_meta_part[s],
                     k_meta_name[s], ab == 'A' ? "l1" : "l2");
            permute = ab == 'B' && (s == M2U_Q || s == M2U_K);
        } else if (strstr(p->name, ".bias") == p->name + strlen(p->name) - 5 &&
                   sscanf(p->name, "model.layers.%d.%31[^.].%31[^.].bias", &layer, parent, proj) == 3) {
            int s = slot_of(proj);
            if (s < 0) {
                rc = m2u_fail("%s: unexpected parameter %s", path, p->name);
                break;
            }
            snprintf(src, sizeof src, "%sllama.layers.%d.%s.%s.bias", pre, layer, k_meta_part[s], k_meta_name[s]);
            permute = s == M2U_Q || s == M2U_K;
        } else if (sscanf(p->name, "model.layers.%d.input_layernorm.weigh%c", &layer, &ab) == 2) {
            snprintf(src, sizeof src, "%sllama.layers.%d.attention_norm.weight", pre, layer);
        } else if (sscanf(p->name, "model.layers.%d.post_attention_layernorm.weigh%c", &layer, &ab) == 2) {
            snprintf(src, sizeof src, "%sllama.layers.%d.ffn_norm.weight", pre, layer);
        } else if (sscanf(p->name, "model.layers.%d.self_attn.gat%c", &layer, &ab) == 2) {
            snprintf(src, sizeof src, "%sllama.layers.%d.attention.gate", pre, layer);
        } else if (!strcmp(p->name, "model.norm.weight")) {
            snprintf(src, sizeof src, "%sllama.norm.weight", pre);
        } else if (!strcmp(p->name, "model.embed_tokens.weight.rows")) {
            snprintf(src, sizeof src, "%sllama.tok_embeddings.weight", pre);
            row0 = l->rows_start;
        } else if (!strcmp(p->name, "lm_head.weight.rows")) {
            snprintf(src, sizeof src, "%sllama.output.weight", pre);
            row0 = l->rows_start;
        } else {
            snprintf(src, sizeof src, "%s%s", pre, p->name); /* prefix_query, adapters, projector: same names */
        }
        const m2u_st_tensor *t = m2u_st_find(st, src);
        if (!t) {
            rc = m2u_fail("%s: missing %s (for m2u's %s)", path, src, p->name);
            break;
        }
        size_t need = p->n + (size_t)row0 * C;
        if (row0 ? (t->ndim != 2 || t->shape[1] != C || (size_t)t->numel < need) : (size_t)t->numel != p->n) {
            rc = m2u_fail("%s: %s has %lld values, m2u's %s needs %zu", path, src, (long long)t->numel, p->name, need);
            break;
        }
        float *buf = malloc((size_t)t->numel * sizeof(float));
        if (!buf || m2u_st_read_f32(t, buf, (size_t)t->numel)) {
            free(buf);
            rc = buf ? -1 : m2u_fail("out of memory");
            break;
        }
        if (permute) meta_to_hf_rows(buf, p->data, (int)p->shape[0], p->ndim > 1 ? (int)p->shape[1] : 1, hd);
        else memcpy(p->data, buf + (size_t)row0 * C, p->n * sizeof(float));
        free(buf);
        (*n_loaded)++;
    }
    m2u_st_close(st);
    return rc;
}
