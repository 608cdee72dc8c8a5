#include "llama.h"
#include "ops_extra.h" /* m2u_linear_pack */
#include "params.h"

#include "backend.h"

#include "fileio.h"
#include "m2u_error.h"
#include "rng.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const m2u_linear_names[M2U_N_LINEAR] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};

static const char *linear_parent(int slot) { return slot <= M2U_O ? "self_attn" : "mlp"; }

int m2u_parse_linear_targets(const char *list, unsigned *mask) {
    *mask = 0;
    if (strcmp(list, "all") == 0 || strcmp(list, "all-linear") == 0) {
        *mask = M2U_ALL_LINEARS;
        return 0;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < M2U_N_LINEAR; i++)
            if (strlen(m2u_linear_names[i]) == len && strncmp(p, m2u_linear_names[i], len) == 0) {
                *mask |= 1u << i;
                found = 1;
            }
        if (!found && len) return m2u_fail("unknown linear '%.*s' (expected q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all)", (int)len, p);
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* ---- parameter table: registered first, then laid out in one buffer ------- */

enum { INIT_ZERO, INIT_KAIMING, INIT_COPY };

enum { FILL_NONE, FILL_ONES, FILL_LINEAR }; /* rows INIT_COPY has no source for (added tokens) */

/* how one trainable starts (the table itself is nets/params.h's, in registration order) */
typedef struct {
    int init;
    const m2u_st_tensor *src; /* INIT_COPY: source tensor, rows from src_row0 */
    int src_row0;
    int copy_rows;            /* INIT_COPY: rows taken from src (-1 = all); the rest get `fill` */
    int fill;
} param_init;

typedef struct {
    m2u_ptable t;
    param_init *init; /* [t.n] */
    int cap;
} param_list;

static int add_param(param_list *pl, const char *name, int ndim, int64_t d0, int64_t d1, int decay, float **data_slot,
                     float **grad_slot, int init, const m2u_st_tensor *src, int src_row0) {
    if (pl->t.n == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 64;
        param_init *nv = realloc(pl->init, (size_t)cap * sizeof *nv);
        if (!nv) return m2u_fail("out of memory");
        pl->init = nv;
        pl->cap = cap;
    }
    if (m2u_ptable_add(&pl->t, "", name, ndim, d0, d1, decay, data_slot, grad_slot)) return -1;
    pl->init[pl->t.n - 1] =
        (param_init){.init = init, .src = src, .src_row0 = src_row0, .copy_rows = -1, .fill = FILL_NONE};
    return 0;
}

static int finish_params(m2u_llama *m, param_list *pl) {
    size_t total = pl->t.n_floats;
    int n = pl->t.n;
    size_t alloc = total + m->spec.reserve_floats;
    m->param_buf = calloc(alloc ? alloc : 1, sizeof(float));
    m->grad_buf = calloc(alloc ? alloc : 1, sizeof(float));
    if (!m->param_buf || !m->grad_buf) return m2u_fail("out of memory for %zu trainable floats", total);
    if (m2u_ptable_finish(&pl->t, m->param_buf, m->grad_buf, &m->params, &m->n_params)) return -1;
    if (!m->params && !(m->params = calloc(1, sizeof(m2u_param)))) return m2u_fail("out of memory");
    m->n_param_floats = total;
    m2u_rng rng;
    m2u_rng_seed(&rng, m->spec.seed);
    for (int i = 0; i < n; i++) {
        const param_init *e = &pl->init[i];
        m2u_param *p = &m->params[i];
        if (e->init == INIT_KAIMING) {
            /* peft: nn.init.kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
            float bound = 1.0f / sqrtf((float)p->shape[1]);
            for (size_t j = 0; j < p->n; j++) p->data[j] = (2.0f * m2u_rng_uniform(&rng) - 1.0f) * bound;
        } else if (e->init == INIT_COPY) {
            size_t es = m2u_dtype_size(e->src->dtype);
            size_t row = (size_t)(e->src->ndim > 1 ? e->src->shape[1] : 1);
            size_t n_copy = e->copy_rows < 0 ? p->n : (size_t)e->copy_rows * row;
            const unsigned char *src = (const unsigned char *)e->src->data + (size_t)e->src_row0 * row * es;
            if (n_copy && m2u_convert_to_f32(e->src->dtype, src, p->data, n_copy) != 0) return -1;
            float bound = 1.0f / sqrtf((float)row);
            for (size_t j = n_copy; j < p->n; j++)
                p->data[j] = e->fill == FILL_ONES ? 1.0f : (2.0f * m2u_rng_uniform(&rng) - 1.0f) * bound;
        }
    }
    return 0;
}

static void free_param_list(param_list *pl) {
    m2u_ptable_discard(&pl->t);
    free(pl->init);
}

/* ---- loading ------------------------------------------------------------------- */

static int mat_from(const m2u_st_tensor *t, m2u_mat *mat) {
    mat->dtype = t->dtype;
    mat->data = t->data;
    mat->rows = (int)t->shape[0];
    mat->cols = (int)t->shape[1];
    mat->bf16_math = 0;
    return 0;
}

typedef struct {
    float *block; /* frozen norm weights and biases of all layers, fp32 */
    size_t used, cap;
} frozen_arena;

static float *arena_copy(frozen_arena *a, const m2u_st_tensor *t) {
    if (a->used + (size_t)t->numel > a->cap) return NULL;
    float *p = a->block + a->used;
    a->used += (size_t)t->numel;
    if (m2u_st_read_f32(t, p, (size_t)t->numel) != 0) return NULL;
    return p;
}

static int load_layer(m2u_llama *m, int l, param_list *pl, frozen_arena *arena, int *n_used) {
    const m2u_llama_config *c = &m->cfg;
    m2u_layer *L = &m->layers[l];
    char name[256];
    int C = c->hidden_size, FF = c->intermediate_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int dims[M2U_N_LINEAR][2] = {{qd, C}, {kvd, C}, {kvd, C}, {C, qd}, {FF, C}, {FF, C}, {C, FF}};
    for (int s = 0; s < M2U_N_LINEAR; s++) {
        m2u_linear *lin = &L->lin[s];
        int64_t shape[2] = {dims[s][0], dims[s][1]};
        snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, linear_parent(s), m2u_linear_names[s]);
        const m2u_st_tensor *t = m2u_st_expect(m->st, name, 2, shape);
        if (!t) return -1;
        (*n_used)++;
        mat_from(t, &lin->w);
        lin->out = dims[s][0];
        lin->in = dims[s][1];
        int has_bias = s <= M2U_O ? c->attention_bias : c->mlp_bias;
        const m2u_st_tensor *bt = NULL;
        snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, linear_parent(s), m2u_linear_names[s]);
        if (has_bias) {
            int64_t bshape[1] = {lin->out};
            bt = m2u_st_expect(m->st, name, 1, bshape);
            if (!bt) return -1;
            (*n_used)++;
        }
        if (m->spec.bias_targets & (1u << s)) {
            if (add_param(pl, name, 1, lin->out, 1, 0, &lin->bias, &lin->dbias, bt ? INIT_COPY : INIT_ZERO, bt, 0)) return -1;
        } else if (bt) {
            if (!(lin->bias = arena_copy(arena, bt))) return m2u_fail("internal: frozen arena too small");
        }
        if (m->spec.lora_r > 0 && (m->spec.lora_targets & (1u << s))) {
            int r = m->spec.lora_r;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", l, linear_parent(s),
                     m2u_linear_names[s]);
            if (add_param(pl, name, 2, r, lin->in, 1, &lin->lora_a, &lin->dlora_a, INIT_KAIMING, NULL, 0)) return -1;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", l, linear_parent(s),
                     m2u_linear_names[s]);
            if (add_param(pl, name, 2, lin->out, r, 1, &lin->lora_b, &lin->dlora_b, INIT_ZERO, NULL, 0)) return -1;
        }
    }
    const char *norms[2] = {"input_layernorm", "post_attention_layernorm"};
    m2u_norm *nm[2] = {&L->ln1, &L->ln2};
    for (int k = 0; k < 2; k++) {
        int64_t shape[1] = {C};
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, norms[k]);
        const m2u_st_tensor *t = m2u_st_expect(m->st, name, 1, shape);
        if (!t) return -1;
        (*n_used)++;
        if (m->spec.train_norms) {
            if (add_param(pl, name, 1, C, 1, 0, &nm[k]->w, &nm[k]->dw, INIT_COPY, t, 0)) return -1;
        } else if (!(nm[k]->w = arena_copy(arena, t))) {
            return m2u_fail("internal: frozen arena too small");
        }
    }
    if (l >= c->n_layers - m->spec.adapter_layers) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.gate", l);
        if (add_param(pl, name, 1, c->n_heads, 1, 0, &L->gate, &L->dgate, INIT_ZERO, NULL, 0)) return -1;
    }
    return 0;
}

/* ---- spec.frozen_bf16: the frozen matrices as bf16 copies ---------------------- */

/* The frozen matrices in the order of the bf16 block: the embedding table, an untied lm_head,
 * then each layer's seven linears; i in [0, n_frozen_mats). */
static int n_frozen_mats(const m2u_llama *m) { return 1 + !m->cfg.tie_word_embeddings + M2U_N_LINEAR * m->cfg.n_layers; }
static m2u_mat *frozen_mat(m2u_llama *m, int i) {
    if (i-- == 0) return &m->embed;
    if (!m->cfg.tie_word_embeddings && i-- == 0) return &m->lm_head;
    return &m->layers[i / M2U_N_LINEAR].lin[i % M2U_N_LINEAR].w;
}

/* f32 only: an f16 matrix already takes 2 bytes a value and the same kernels read it directly
 * (F16C), with 3 more mantissa bits than bf16; a per-rank copy of it would cost memory (a whole
 * 7B model per rank, where the mapping is shared) and precision, and buy nothing on this CPU. */
static int converts_to_bf16(const m2u_mat *w) { return w->dtype == M2U_F32; }

/* Each copy starts on a cache line: the GEMM's packing reads whole rows from it. */
static size_t bf16_span(const m2u_mat *w) { return ((size_t)w->rows * (size_t)w->cols * 2 + 63) & ~(size_t)63; }

size_t m2u_llama_frozen_bf16_bytes(const m2u_llama *m, size_t *src, size_t *n_elems) {
    if (m->frozen16) {
        *src = m->frozen16_src_bytes;
        if (n_elems) *n_elems = m->frozen16_elems;
        return m->frozen16_bytes;
    }
    size_t bytes = 0, n = 0;
    *src = 0;
    for (int i = 0; i < n_frozen_mats(m); i++) {
        const m2u_mat *w = frozen_mat((m2u_llama *)m, i); /* read only */
        if (!converts_to_bf16(w)) continue;
        bytes += bf16_span(w);
        n += (size_t)w->rows * (size_t)w->cols;
        *src += (size_t)w->rows * (size_t)w->cols * m2u_dtype_size(w->dtype);
    }
    if (n_elems) *n_elems = n;
    return bytes;
}

/* One piece of one matrix to convert: n elements from src (stored type dt) to dst. */
typedef struct {
    const m2u_safetensors *st; /* the mapping src lies in */
    const unsigned char *src;
    m2u_dtype dt;
    uint16_t *dst;
    size_t n;
} bf16_job;

static int bf16_job_run(void *ctx, int i) {
    const bf16_job *j = (const bf16_job *)ctx + i;
    float tmp[4096]; /* through an aligned fp32 buffer (a stored tensor need not be 4-byte aligned); the one
                        rounding is m2u_f32_to_bf16's, to nearest even */
    size_t es = m2u_dtype_size(j->dt);
    for (size_t k = 0; k < j->n; k += 4096) {
        size_t c = j->n - k < 4096 ? j->n - k : 4096;
        if (m2u_convert_to_f32(j->dt, j->src + k * es, tmp, c) || m2u_convert_from_f32(M2U_BF16, tmp, j->dst + k, c))
            return -1;
    }
    /* The stored piece is not read again (the trainables copied from the checkpoint were
       copied at load, before this): give its pages back now, so they do not stay resident
       beside the copies until memory runs short, nor add up to the whole f32 file at the
       peak.  A page shared with a neighbouring piece stays (one per piece at most). */
    m2u_st_drop_pages(j->st, j->src, j->n * es);
    return 0;
}

/* Replace every f32 frozen matrix by a bf16 copy in one owned block.  The trainables
 * copied from the checkpoint (token rows) were read from its tensors, not from these. */
int m2u_llama_convert_frozen_bf16(m2u_llama *m) {
    m->spec.frozen_bf16 = 1;
    /* the bf16 compute path: every frozen product may run in bf16 arithmetic where the CPU
       has it (m2u_gemm_bf16_ok); an f16 matrix stays f16 and fp32 arithmetic */
    for (int i = 0; i < n_frozen_mats(m); i++) frozen_mat(m, i)->bf16_math = 1;
    m->lm_head.bf16_math = 1; /* a tied head is a copy of embed made at load */
    if (m->frozen16) return 0;
    size_t src = 0, n_elems = 0, bytes = m2u_llama_frozen_bf16_bytes(m, &src, &n_elems);
    if (!bytes) return 0; /* all bf16 already: read in place */
    /* pieces of at most 1 Mi elements, so a few large matrices (the embedding table) still
       spread over the threads */
    const size_t piece = (size_t)1 << 20;
    size_t n_jobs = 0;
    for (int i = 0; i < n_frozen_mats(m); i++) {
        const m2u_mat *w = frozen_mat(m, i);
        if (converts_to_bf16(w)) n_jobs += ((size_t)w->rows * (size_t)w->cols + piece - 1) / piece;
    }
    unsigned char *block = aligned_alloc(64, bytes);
    bf16_job *jobs = n_jobs <= INT32_MAX ? malloc(n_jobs * sizeof *jobs) : NULL;
    if (!block || !jobs) {
        free(block);
        free(jobs);
        return m2u_fail("out of memory for the bf16 copies of the frozen weights (%zu bytes)", bytes);
    }
    size_t off = 0, k = 0;
    for (int i = 0; i < n_frozen_mats(m); i++) {
        m2u_mat *w = frozen_mat(m, i);
        if (!converts_to_bf16(w)) continue;
        size_t numel = (size_t)w->rows * (size_t)w->cols, es = m2u_dtype_size(w->dtype);
        uint16_t *dst = (uint16_t *)(block + off);
        for (size_t e = 0; e < numel; e += piece)
            jobs[k++] = (bf16_job){.st = m->st,
                                   .src = (const unsigned char *)w->data + e * es,
                                   .dt = w->dtype,
                                   .dst = dst + e,
                                   .n = numel - e < piece ? numel - e : piece};
        off += bf16_span(w);
        w->dtype = M2U_BF16;
        w->data = dst;
    }
    /* owned from here on: the matrices point into it, and a failure below frees it with the model */
    m->frozen16 = block;
    m->frozen16_bytes = bytes;
    m->frozen16_src_bytes = src;
    m->frozen16_elems = n_elems;
    if (m->cfg.tie_word_embeddings) m->lm_head = m->embed;
    int rc = m2u_parallel_items((int)n_jobs, bf16_job_run, jobs);
    free(jobs);
    return rc ? m2u_fail_prefix("bf16 copies of the frozen weights") : 0;
}

static int validate_spec(const m2u_llama_config *c, const m2u_train_spec *s) {
    if (s->lora_r < 0) return m2u_fail("lora_r must be >= 0 (got %d)", s->lora_r);
    if (s->lora_r > 0 && !s->lora_targets) return m2u_fail("lora_r > 0 but no LoRA target modules");
    if (s->lora_r > 0 && !(s->lora_alpha > 0)) return m2u_fail("lora_alpha must be > 0");
    if (s->lora_dropout < 0 || s->lora_dropout >= 1) return m2u_fail("lora_dropout must be in [0, 1)");
    if (s->adapter_layers < 0 || s->adapter_layers > c->n_layers)
        return m2u_fail("adapter_layers %d outside [0, %d]", s->adapter_layers, c->n_layers);
    if (s->extra_vocab < 0) return m2u_fail("extra_vocab must be >= 0");
    if (s->token_rows_start < 0 || s->token_rows_start >= c->vocab_size)
        return m2u_fail("token_rows_start %d outside the vocabulary [0, %d)", s->token_rows_start, c->vocab_size);
    return 0;
}

static int load_model(m2u_llama *m, const char *dir) {
    char *cfg_path = m2u_path_join(dir, "config.json");
    if (!cfg_path) return m2u_fail("out of memory");
    int rc = m2u_llama_config_load(cfg_path, &m->cfg);
    free(cfg_path);
    if (rc) return -1;
    if (validate_spec(&m->cfg, &m->spec)) return m2u_fail_prefix("%s", dir);
    if (m2u_st_open(dir, &m->st)) return -1;
    const m2u_llama_config *c = &m->cfg;
    int C = c->hidden_size, V = c->vocab_size;
    int n_used = 0;
    int64_t eshape[2] = {V, C};
    const m2u_st_tensor *emb = m2u_st_expect(m->st, "model.embed_tokens.weight", 2, eshape);
    if (!emb) return -1;
    n_used++;
    mat_from(emb, &m->embed);
    const m2u_st_tensor *head = NULL;
    if (c->tie_word_embeddings) {
        m->lm_head = m->embed;
        if (m2u_st_find(m->st, "lm_head.weight")) n_used++; /* some writers store the tied copy too */
    } else {
        head = m2u_st_expect(m->st, "lm_head.weight", 2, eshape);
        if (!head) return -1;
        n_used++;
        mat_from(head, &m->lm_head);
    }
    int64_t nshape[1] = {C};
    const m2u_st_tensor *fn = m2u_st_expect(m->st, "model.norm.weight", 1, nshape);
    if (!fn) return -1;
    n_used++;

    m->layers = calloc((size_t)c->n_layers, sizeof(m2u_layer));
    m->inv_freq = malloc((size_t)(c->head_dim / 2) * sizeof(float));
    /* frozen fp32 copies: per layer 2 norms + 7 biases at most, plus the final norm */
    frozen_arena arena = {0};
    arena.cap = (size_t)c->n_layers * (2 * (size_t)C + 4 * (size_t)C + 3 * (size_t)c->intermediate_size +
                                       (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim) + C;
    arena.block = malloc(arena.cap * sizeof(float));
    if (!m->layers || !m->inv_freq || !arena.block) {
        free(arena.block);
        return m2u_fail("out of memory");
    }
    m->owned[m->n_owned++] = arena.block;
    m2u_rope_inv_freq(m->inv_freq, c->head_dim, c->rope_theta);
    m->first_adapter_layer = c->n_layers - m->spec.adapter_layers;

    param_list pl = {0};
    rc = 0;
    if (m->spec.token_rows_start > 0 || m->spec.extra_vocab > 0) {
        /* the checkpoint holds rows [0, V); added tokens extend the vocabulary */
        m->rows_start = m->spec.token_rows_start > 0 ? m->spec.token_rows_start : V;
        m->cfg.vocab_size = V + m->spec.extra_vocab;
        m->n_rows = m->cfg.vocab_size - m->rows_start;
        rc = add_param(&pl, "model.embed_tokens.weight.rows", 2, m->n_rows, C, 0, &m->embed_rows, &m->dembed_rows,
                       INIT_COPY, emb, m->rows_start);
        if (!rc) {
            pl.init[pl.t.n - 1].copy_rows = V - m->rows_start;
            pl.init[pl.t.n - 1].fill = FILL_ONES;
        }
        if (!rc && !c->tie_word_embeddings) {
            rc = add_param(&pl, "lm_head.weight.rows", 2, m->n_rows, C, 0, &m->head_rows, &m->dhead_rows, INIT_COPY,
                           head, m->rows_start);
            if (!rc) {
                pl.init[pl.t.n - 1].copy_rows = V - m->rows_start;
                pl.init[pl.t.n - 1].fill = FILL_LINEAR;
            }
        }
    } else {
        m->rows_start = V;
    }
    for (int l = 0; !rc && l < c->n_layers; l++) rc = load_layer(m, l, &pl, &arena, &n_used);
    if (!rc) {
        if (m->spec.train_norms) rc = add_param(&pl, "model.norm.weight", 1, C, 1, 0, &m->norm.w, &m->norm.dw, INIT_COPY, fn, 0);
        else if (!(m->norm.w = arena_copy(&arena, fn))) rc = m2u_fail("internal: frozen arena too small");
    }
    if (!rc) rc = finish_params(m, &pl);
    free_param_list(&pl);
    if (!rc && m->spec.frozen_bf16) rc = m2u_llama_convert_frozen_bf16(m);
    if (!rc && m->spec.packed) {
        m->spec.packed = 0; /* set again by m2u_llama_pack_frozen where something is packed */
        rc = m2u_llama_pack_frozen(m);
    }
    if (rc) return -1;
    if (m->n_rows && c->tie_word_embeddings) {
        m->head_rows = m->embed_rows;
        m->dhead_rows = m->dembed_rows;
    }
    /* Every tensor in the checkpoint must have been used: an unexpected weight
       means this is not the architecture we are computing. */
    int n_ignored = 0;
    for (int i = 0; i < m2u_st_count(m->st); i++)
        if (strstr(m2u_st_at(m->st, i)->name, "rotary_emb.inv_freq")) n_ignored++;
    if (n_used + n_ignored != m2u_st_count(m->st)) {
        for (int i = 0; i < m2u_st_count(m->st); i++) {
            const char *nm = m2u_st_at(m->st, i)->name;
            /* report the first tensor that is not part of LlamaForCausalLM */
            if (strncmp(nm, "model.layers.", 13) != 0 && strcmp(nm, "model.embed_tokens.weight") != 0 &&
                strcmp(nm, "model.norm.weight") != 0 && strcmp(nm, "lm_head.weight") != 0)
                return m2u_fail("%s: unexpected tensor '%s' (not part of LlamaForCausalLM)", m2u_st_path(m->st), nm);
        }
        return m2u_fail("%s: checkpoint has %d tensors, the config accounts for %d (extra layers or biases?)",
                        m2u_st_path(m->st), m2u_st_count(m->st), n_used + n_ignored);
    }
    return 0;
}

int m2u_llama_set_backend(m2u_llama *m, const struct m2u_backend *be) {
    if (!m || !be) return m2u_fail("m2u_llama_set_backend: no model or no backend");
    if (be->dev != M2U_DEV_CPU)
        return m2u_fail("m2u_llama_set_backend: backend '%s' keeps its buffers on the device, but the model's "
                        "weights and activations are host arrays (not moved yet)",
                        be->name);
    m->be = be;
    return 0;
}

int m2u_llama_load(const char *dir, const m2u_train_spec *spec, m2u_llama **out) {
    *out = NULL;
    m2u_llama *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("out of memory");
    if (spec) m->spec = *spec;
    m->be = m2u_backend_cpu();
    if (load_model(m, dir)) {
        m2u_llama_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

static void free_acts(m2u_llama *m) {
    if (m->layers) {
        /* one block per layer, see alloc_acts; with checkpointing every layer points at layer 0's */
        float *shared = m->layers[0].ln1_out;
        for (int l = 0; l < m->cfg.n_layers; l++) {
            m2u_layer *L = &m->layers[l];
            if (l == 0 || L->ln1_out != shared) free(L->ln1_out);
            L->ln1_out = NULL;
        }
    }
    free(m->x);
    m->x = NULL;
    m->cap_N = 0;
}

/* spec.packed's matrices: fp32 decoder linears, and an fp32 head whose every row is frozen (added
 * token rows are trainable and leave the head's product partial).  i in [0, 7 layers + 1). */
static m2u_mat *packed_mat(m2u_llama *m, int i) {
    int nl = M2U_N_LINEAR * m->cfg.n_layers;
    return i < nl ? &m->layers[i / M2U_N_LINEAR].lin[i % M2U_N_LINEAR].w : &m->lm_head;
}

static int packable(const m2u_llama *m, const m2u_mat *w) {
    if (w->dtype != M2U_F32 || ((uintptr_t)w->data % sizeof(float)) != 0 || w->rows <= 0 || w->cols <= 0) return 0;
    return w != &m->lm_head || m->rows_start == w->rows;
}

size_t m2u_llama_packed_bytes(const m2u_llama *m) {
    if (!m->packs && (m->spec.frozen_bf16 || !m2u_linear_pack_available())) return 0;
    size_t bytes = 0;
    for (int i = 0; i <= M2U_N_LINEAR * m->cfg.n_layers; i++) {
        const m2u_mat *w = packed_mat((m2u_llama *)m, i); /* read only */
        if (m->packs ? w->pack != NULL : packable(m, w)) bytes += (size_t)w->rows * (size_t)w->cols * sizeof(float);
    }
    return bytes;
}

int m2u_llama_pack_frozen(m2u_llama *m) {
    if (m->packs || m->spec.frozen_bf16 || !m2u_linear_pack_available()) return 0;
    int n = M2U_N_LINEAR * m->cfg.n_layers + 1;
    m->packs = calloc((size_t)n, sizeof *m->packs);
    if (!m->packs) return m2u_fail("out of memory for the packs of the frozen weights");
    for (int i = 0; i < n; i++) {
        m2u_mat *w = packed_mat(m, i);
        if (!packable(m, w)) continue;
        m2u_linear_pack *p = m2u_linear_pack_new(w->data, w->cols, w->rows);
        if (!p) return m2u_fail("out of memory for the packs of the frozen weights");
        m->packs[m->n_packs++] = p;
        w->pack = p;
    }
    m->spec.packed = m->n_packs > 0;
    return 0;
}

void m2u_llama_free(m2u_llama *m) {
    if (!m) return;
    for (int i = 0; i < m->n_packs; i++) m2u_linear_pack_free(m->packs[i]);
    free(m->packs);
    free_acts(m);
    m2u_params_free(m->params, m->n_params);
    free(m->param_buf);
    free(m->grad_buf);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->frozen16);
    free(m->layers);
    free(m->inv_freq);
    m2u_st_close(m->st);
    free(m);
}

m2u_param *m2u_llama_param(m2u_llama *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

int m2u_llama_load_params(m2u_llama *m, const char *path, int require_all) {
    m2u_safetensors *st;
    if (m2u_st_open(path, &st)) return -1;
    int rc = 0;
    for (int i = 0; i < m2u_st_count(st) && !rc; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, i);
        m2u_param *p = m2u_llama_param(m, t->name);
        if (!p) {
            rc = m2u_fail("%s: tensor '%s' is not a trainable parameter of this model (check r, targets and layers)",
                          path, t->name);
            break;
        }
        if (!m2u_st_expect(st, t->name, p->ndim, p->shape) || m2u_st_read_f32(t, p->data, p->n)) rc = -1;
    }
    if (!rc && require_all)
        for (int i = 0; i < m->n_params; i++)
            if (strstr(m->params[i].name, ".lora_") && !m2u_st_find(st, m->params[i].name)) {
                rc = m2u_fail("%s: missing LoRA tensor '%s'", path, m->params[i].name);
                break;
            }
    m2u_st_close(st);
    return rc;
}

int m2u_llama_save_params(const m2u_llama *m, const char *path) {
    m2u_st_entry *e = calloc(m->n_params ? (size_t)m->n_params : 1, sizeof *e);
    if (!e) return m2u_fail("out of memory");
    for (int i = 0; i < m->n_params; i++) {
        e[i].name = m->params[i].name;
        e[i].dtype = M2U_F32;
        e[i].ndim = m->params[i].ndim;
        e[i].shape[0] = m->params[i].shape[0];
        e[i].shape[1] = m->params[i].shape[1];
        e[i].data = m->params[i].data;
    }
    int rc = m2u_st_write(path, e, m->n_params, NULL, NULL, 0);
    free(e);
    return rc;
}

void m2u_llama_zero_grad(m2u_llama *m) { memset(m->grad_buf, 0, m->n_param_floats * sizeof(float)); }

/* ---- activations ------------------------------------------------------------------ */

/* Floats of one layer's saved activations for B x T. */
static size_t layer_act_floats(const m2u_llama *m, int B, int T) {
    const m2u_llama_config *c = &m->cfg;
    size_t N = (size_t)B * T;
    size_t C = (size_t)c->hidden_size, FF = (size_t)c->intermediate_size, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, H = (size_t)c->n_heads, r = (size_t)m->spec.lora_r;
    size_t per_layer = N * (C + 1 + qd + 2 * kvd + qd + C + C + 1 + 3 * FF) + (size_t)B * H * T + (size_t)B * kvd;
    for (int s = 0; s < M2U_N_LINEAR; s++) per_layer += N * r;
    return per_layer;
}

/* Floats of everything else a forward keeps: the residual stream, final norm, logits, backward scratch, ... */
static size_t top_act_floats(const m2u_llama *m, int B, int T) {
    const m2u_llama_config *c = &m->cfg;
    size_t N = (size_t)B * T;
    size_t C = (size_t)c->hidden_size, FF = (size_t)c->intermediate_size, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, r = (size_t)m->spec.lora_r, V = (size_t)c->vocab_size;
    size_t wide = C > FF ? C : FF;
    if (qd > wide) wide = qd;
    /* scratch for backward: dres, dln, dq, dk, dv, datt, dg, du, dact, lora x/dx, du_lora, dlogits */
    size_t scratch = N * (2 * C + qd + 2 * kvd + qd + 3 * FF + 2 * wide + r) + N * V;
    size_t n_adapt = (size_t)m->spec.adapter_layers * B * C;
    return (size_t)(c->n_layers + 1) * N * C + N * C + N + N * V + scratch + N * (size_t)c->head_dim + N + n_adapt;
}

void m2u_llama_set_checkpointing(m2u_llama *m, int on) {
    on = on != 0;
    if (on == m->checkpoint_acts) return;
    free_acts(m); /* the next forward allocates for the new layout */
    m->checkpoint_acts = on;
}

size_t m2u_llama_activation_bytes(const m2u_llama *m, int B, int T) {
    size_t layers = m->checkpoint_acts ? 1 : (size_t)m->cfg.n_layers;
    return (layers * layer_act_floats(m, B, T) + top_act_floats(m, B, T)) * sizeof(float) +
           3 * (size_t)B * T * sizeof(int32_t);
}

static int alloc_acts(m2u_llama *m, int B, int T) {
    int N = B * T;
    const m2u_llama_config *c = &m->cfg;
    if (N <= m->cap_N && T <= m->T) {
        m->B = B;
        m->T = T;
        return 0;
    }
    free_acts(m);
    size_t C = (size_t)c->hidden_size, FF = (size_t)c->intermediate_size, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, H = (size_t)c->n_heads, r = (size_t)m->spec.lora_r;
    size_t per_layer = layer_act_floats(m, B, T);
    float *shared = NULL;
    for (int l = 0; l < c->n_layers; l++) {
        m2u_layer *L = &m->layers[l];
        float *p = m->checkpoint_acts && shared ? shared : malloc(per_layer * sizeof(float));
        if (!p) return m2u_fail("out of memory for activations (B=%d, T=%d)", B, T);
        if (!shared) shared = p;
        L->ln1_out = p; p += N * C;
        L->rstd1 = p; p += N;
        L->q = p; p += N * qd;
        L->k = p; p += N * kvd;
        L->v = p; p += N * kvd;
        L->att = p; p += N * qd;
        L->h = p; p += N * C;
        L->ln2_out = p; p += N * C;
        L->rstd2 = p; p += N;
        L->g = p; p += N * FF;
        L->u = p; p += N * FF;
        L->act = p; p += N * FF;
        L->lse = p; p += (size_t)B * H * T;
        L->adapter_v = p; p += (size_t)B * kvd;
        for (int s = 0; s < M2U_N_LINEAR; s++) {
            L->lin[s].act_u = p;
            p += N * r;
        }
    }
    size_t V = (size_t)c->vocab_size;
    size_t wide = C > FF ? C : FF;
    if (qd > wide) wide = qd;
    size_t scratch = N * (2 * C + qd + 2 * kvd + qd + 3 * FF + 2 * wide + r) + N * V;
    size_t n_adapt = (size_t)m->spec.adapter_layers * B * C;
    size_t top = top_act_floats(m, B, T);
    m->x = malloc(top * sizeof(float) + 3 * (size_t)N * sizeof(int32_t));
    if (!m->x) return m2u_fail("out of memory for activations (B=%d, T=%d)", B, T);
    float *p = m->x + (size_t)(c->n_layers + 1) * N * C;
    m->lnf = p; p += N * C;
    m->rstdf = p; p += N;
    m->logits = p; p += N * V;
    m->scratch = p; p += scratch;
    m->dlogits = m->scratch + (scratch - N * V); /* the forward uses only the start of scratch */
    m->lse = p; p += N;
    m->dadapter_in = p; p += n_adapt;
    m->rope_cos = p; p += N * (size_t)(c->head_dim / 2);
    m->rope_sin = p; p += N * (size_t)(c->head_dim / 2);
    m->targets = (int32_t *)p;
    m->pos = (int *)(m->targets + N);
    m->ids = m->targets + 2 * (size_t)N;
    m->cap_N = N;
    m->B = B;
    m->T = T;
    return 0;
}

/* ---- linear with bias and LoRA ------------------------------------------------------ */

static float lora_scale(const m2u_train_spec *s) {
    return s->use_rslora ? s->lora_alpha / sqrtf((float)s->lora_r) : s->lora_alpha / (float)s->lora_r;
}

static uint64_t dropout_tag(int layer, int slot) { return ((uint64_t)layer << 8) | (uint64_t)slot; }

/* y[N, out] = x W^T + b + scale * drop(x) A^T B^T.  u_out [N, r] keeps drop(x) A^T;
 * xd_scratch [N, in] is needed only when dropout is active. */
static void linear_fwd(const m2u_llama *m, const m2u_linear *lin, float *y, const float *x, int N, int layer, int slot,
                       float *u_out, float *xd_scratch) {
    m->be->matmul_wt(y, lin->out, x, N, &lin->w, 0, lin->out, 0.0f);
    if (lin->bias) m->be->bias_add_rows(y, lin->bias, N, lin->out);
    if (lin->lora_a) {
        int r = m->spec.lora_r;
        const float *xd = x;
        if (m->training && m->spec.lora_dropout > 0) {
            m->be->dropout(xd_scratch, x, (size_t)N * lin->in, m->spec.lora_dropout, m->step_seed, dropout_tag(layer, slot));
            xd = xd_scratch;
        }
        m->be->gemm_thin(0, 1, N, r, lin->in, 1.0f, xd, lin->in, lin->lora_a, lin->in, 0.0f, u_out, r);
        m->be->gemm_thin(0, 1, N, lin->out, r, lora_scale(&m->spec), u_out, r, lin->lora_b, r, 1.0f, y, lin->out);
    }
}

/* dx[N, in] += dy W + (LoRA path); parameter gradients accumulate. */
static void linear_bwd(const m2u_llama *m, const m2u_linear *lin, float *dx, const float *dy, const float *x, int N,
                       int layer, int slot, float *xd_scratch, float *du_scratch) {
    if (lin->dbias) m->be->bias_grad(lin->dbias, dy, N, lin->out);
    if (lin->lora_a) {
        int r = m->spec.lora_r;
        float s = lora_scale(&m->spec);
        int drop = m->training && m->spec.lora_dropout > 0;
        const float *xd = x;
        if (drop) {
            m->be->dropout(xd_scratch, x, (size_t)N * lin->in, m->spec.lora_dropout, m->step_seed, dropout_tag(layer, slot));
            xd = xd_scratch;
        }
        /* dB += s * dy^T u ; du = s * dy B ; dA += du^T xd ; dx += drop'(du A) */
        m->be->gemm_thin(1, 0, lin->out, r, N, s, dy, lin->out, lin->act_u, r, 1.0f, lin->dlora_b, r);
        m->be->gemm_thin(0, 0, N, r, lin->out, s, dy, lin->out, lin->lora_b, r, 0.0f, du_scratch, r);
        m->be->gemm_thin(1, 0, r, lin->in, N, 1.0f, du_scratch, r, xd, lin->in, 1.0f, lin->dlora_a, lin->in);
        if (drop) {
            m->be->gemm_thin(0, 0, N, lin->in, r, 1.0f, du_scratch, r, lin->lora_a, lin->in, 0.0f, xd_scratch, lin->in);
            m->be->dropout(xd_scratch, xd_scratch, (size_t)N * lin->in, m->spec.lora_dropout, m->step_seed,
                        dropout_tag(layer, slot));
            m->be->axpy(N * lin->in, 1.0f, xd_scratch, dx);
        } else {
            m->be->gemm_thin(0, 0, N, lin->in, r, 1.0f, du_scratch, r, lin->lora_a, lin->in, 1.0f, dx, lin->in);
        }
    }
    m->be->matmul_w_acc(dx, dy, lin->out, N, &lin->w, 0, lin->out);
}

/* ---- embedding and head --------------------------------------------------------------- */

static void embed_fwd(const m2u_llama *m, float *x, const int32_t *ids, int N) {
    m->be->embedding_fwd(x, ids, N, &m->embed, m->embed_rows, m->rows_start);
}

/* logits[N, V] = x @ head^T, rows >= rows_start from the trainable copy. */
static void head_fwd(const m2u_llama *m, float *logits, const float *x, int N) {
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    m->be->matmul_wt(logits, V, x, N, &m->lm_head, 0, m->rows_start, 0.0f);
    if (m->n_rows)
        m->be->gemm(0, 1, N, m->n_rows, C, 1.0f, x, C, m->head_rows, C, 0.0f, logits + m->rows_start, V);
}

static int check_ids(const m2u_llama *m, const int32_t *ids, int N) {
    for (int n = 0; n < N; n++)
        if (ids[n] < 0 || ids[n] >= m->cfg.vocab_size)
            return m2u_fail("token id %d at position %d is outside the vocabulary [0, %d)", ids[n], n, m->cfg.vocab_size);
    return 0;
}

/* ---- adapter injection (M2UGen / LLaMA-Adapter, adapter length 1) ------------------------- */

static const float *adapter_rows(const m2u_llama *m, int l, int B) {
    return m->adapter_in + (size_t)(l - m->first_adapter_layer) * B * m->cfg.hidden_size;
}

/* att[b, t, head h] += tanh(gate_h) * (W_v a_b)[kv head of h], for every t.
 * av [B, kv_dim] receives W_v a (kept for the backward). */
static void adapter_fwd(const m2u_llama *m, const m2u_layer *L, int l, float *att, float *av_out, int B, int T) {
    const m2u_llama_config *c = &m->cfg;
    int hd = c->head_dim, kvd = c->n_kv_heads * hd;
    m->be->matmul_wt(av_out, kvd, adapter_rows(m, l, B), B, &L->lin[M2U_V].w, 0, kvd, 0.0f);
    m->be->head_gate_add(att, av_out, L->gate, B, T, c->n_heads, c->n_kv_heads, hd);
}

/* From datt (gradient of the attention output including the adapter term):
 * dgate, and d adapter_in = (sum over heads/positions) W_v^T dav. */
static int adapter_bwd(m2u_llama *m, m2u_layer *L, int l, const float *datt, int B, int T) {
    const m2u_llama_config *c = &m->cfg;
    int hd = c->head_dim, H = c->n_heads, kvd = c->n_kv_heads * hd, C = c->hidden_size;
    float *dav = calloc((size_t)B * kvd, sizeof(float)); /* small: B x kv_dim */
    if (!dav) return m2u_fail("out of memory (adapter backward)");
    m->be->head_gate_bwd(L->dgate, dav, datt, L->adapter_v, L->gate, B, T, H, c->n_kv_heads, hd);
    float *da = m->dadapter_in + (size_t)(l - m->first_adapter_layer) * B * C;
    memset(da, 0, (size_t)B * C * sizeof(float));
    m->be->matmul_w_acc(da, dav, kvd, B, &L->lin[M2U_V].w, 0, kvd);
    free(dav);
    return 0;
}

/* ---- one decoder layer over N rows of B sequences of length T (training/batched) ---- */

static int layer_fwd(m2u_llama *m, int l, const float *x, float *x_out, int B, int T, float *tmp, float *xd) {
    const m2u_llama_config *c = &m->cfg;
    m2u_layer *L = &m->layers[l];
    int N = B * T, C = c->hidden_size, FF = c->intermediate_size, hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads;
    int qd = H * hd, kvd = KV * hd;
    m->be->rmsnorm_fwd(L->ln1_out, L->rstd1, x, L->ln1.w, N, C, c->rms_norm_eps);
    linear_fwd(m, &L->lin[M2U_Q], L->q, L->ln1_out, N, l, M2U_Q, L->lin[M2U_Q].act_u, xd);
    linear_fwd(m, &L->lin[M2U_K], L->k, L->ln1_out, N, l, M2U_K, L->lin[M2U_K].act_u, xd);
    linear_fwd(m, &L->lin[M2U_V], L->v, L->ln1_out, N, l, M2U_V, L->lin[M2U_V].act_u, xd);
    m->be->rope_fwd(L->q, N, qd, H, hd, m->rope_cos, m->rope_sin);
    m->be->rope_fwd(L->k, N, kvd, KV, hd, m->rope_cos, m->rope_sin);
    m2u_attn at = m2u_attn_make(B, T, T, H, KV, hd, qd, kvd, kvd, 1, 0);
    at.lse = L->lse;
    if (m->be->attn_fwd(&at, L->att, NULL, L->q, L->k, L->v)) return -1;
    if (L->gate) adapter_fwd(m, L, l, L->att, L->adapter_v, B, T);
    linear_fwd(m, &L->lin[M2U_O], tmp, L->att, N, l, M2U_O, L->lin[M2U_O].act_u, xd);
    m->be->add(L->h, x, tmp, (size_t)N * C);
    m->be->rmsnorm_fwd(L->ln2_out, L->rstd2, L->h, L->ln2.w, N, C, c->rms_norm_eps);
    linear_fwd(m, &L->lin[M2U_GATE], L->g, L->ln2_out, N, l, M2U_GATE, L->lin[M2U_GATE].act_u, xd);
    linear_fwd(m, &L->lin[M2U_UP], L->u, L->ln2_out, N, l, M2U_UP, L->lin[M2U_UP].act_u, xd);
    m->be->swiglu_fwd(L->act, L->g, L->u, (size_t)N * FF);
    linear_fwd(m, &L->lin[M2U_DOWN], tmp, L->act, N, l, M2U_DOWN, L->lin[M2U_DOWN].act_u, xd);
    m->be->add(x_out, L->h, tmp, (size_t)N * C);
    return 0;
}

int m2u_llama_forward(m2u_llama *m, const int32_t *ids, const int32_t *labels, int B, int T, int ignore_index,
                      float *loss) {
    const m2u_llama_config *c = &m->cfg;
    if (B <= 0 || T <= 0) return m2u_fail("forward: empty batch (B=%d, T=%d)", B, T);
    if (check_ids(m, ids, B * T) || alloc_acts(m, B, T)) return -1;
    if (labels)
        for (int i = 0; i < B * T; i++)
            if (labels[i] != ignore_index && (labels[i] < 0 || labels[i] >= c->vocab_size))
                return m2u_fail("label %d at position %d is neither the ignore index %d nor a token id", labels[i], i,
                                ignore_index);
    if (m->spec.adapter_layers && !m->adapter_in)
        return m2u_fail("forward: the model injects adapters into %d layers but adapter_in is not set",
                        m->spec.adapter_layers);
    int N = B * T, C = c->hidden_size, V = c->vocab_size;
    m->step_seed = m->step_seed * 6364136223846793005ull + 1442695040888963407ull + m->spec.seed;
    memcpy(m->ids, ids, (size_t)N * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            m->pos[b * T + t] = t;
            /* ignored targets become -1, which the cross-entropy skips whatever the caller's index */
            int32_t lab = (labels && t + 1 < T) ? labels[b * T + t + 1] : ignore_index;
            m->targets[b * T + t] = lab == ignore_index ? -1 : lab;
        }
    float *tmp = m->scratch, *xd = m->scratch + (size_t)N * C;
    m->be->rope_table(m->rope_cos, m->rope_sin, m->pos, N, c->head_dim, m->inv_freq);
    embed_fwd(m, m->x, ids, N);
    for (int l = 0; l < c->n_layers; l++)
        if (layer_fwd(m, l, m->x + (size_t)l * N * C, m->x + (size_t)(l + 1) * N * C, B, T, tmp, xd)) return -1;
    m->be->rmsnorm_fwd(m->lnf, m->rstdf, m->x + (size_t)c->n_layers * N * C, m->norm.w, N, C, c->rms_norm_eps);
    head_fwd(m, m->logits, m->lnf, N);
    m->n_valid = 0;
    m->has_dlogits = labels != NULL;
    if (labels) {
        /* the gradient comes with the loss, while the logits are in the cache: a forward with
         * labels is nearly always a training step's, and a held-out loss pays one write */
        double l = m->be->cross_entropy(m->logits, m->targets, N, V, m->lse, &m->n_valid, m->dlogits);
        if (loss) *loss = (float)l;
    } else if (loss) {
        *loss = 0.0f;
    }
    return 0;
}

int m2u_llama_backward(m2u_llama *m, float grad_scale) { return m2u_llama_backward_hidden(m, grad_scale, NULL); }

const float *m2u_llama_embed_row(const m2u_llama *m, int id, float *tmp) {
    if (id >= m->rows_start) return m->embed_rows + (size_t)(id - m->rows_start) * m->cfg.hidden_size;
    m2u_mat_row(&m->embed, id, tmp);
    return tmp;
}

const float *m2u_llama_last_hidden(const m2u_llama *m) {
    return m->x + (size_t)m->cfg.n_layers * m->B * m->T * m->cfg.hidden_size;
}

int m2u_llama_backward_hidden(m2u_llama *m, float grad_scale, const float *dhidden) {
    const m2u_llama_config *c = &m->cfg;
    if (!m->cap_N) return m2u_fail("backward called before forward");
    int B = m->B, T = m->T, N = B * T, C = c->hidden_size, FF = c->intermediate_size, V = c->vocab_size;
    int hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, qd = H * hd, kvd = KV * hd, r = m->spec.lora_r;
    size_t wide = (size_t)(C > FF ? C : FF);
    if ((size_t)qd > wide) wide = (size_t)qd;
    float *p = m->scratch;
    float *dres = p; p += (size_t)N * C;
    float *dln = p; p += (size_t)N * C;
    float *dq = p; p += (size_t)N * qd;
    float *dk = p; p += (size_t)N * kvd;
    float *dv = p; p += (size_t)N * kvd;
    float *datt = p; p += (size_t)N * qd;
    float *dg = p; p += (size_t)N * FF;
    float *du = p; p += (size_t)N * FF;
    float *dact = p; p += (size_t)N * FF;
    float *xd = p; p += (size_t)N * wide;
    p += (size_t)N * wide; /* reserved */
    float *dul = p; p += (size_t)N * r;
    const float *dlogits = m->dlogits; /* the rest of scratch: softmax - onehot, from the forward */

    /* head: dlogits times grad_scale, applied to the [N, C] product rather than to the [N, V]
     * rows (the ignored rows are zero) */
    if (!m->has_dlogits) return m2u_fail("backward needs a forward with labels");
    m->be->zero(dln, (size_t)N * C);
    m->be->matmul_w_acc(dln, dlogits, V, N, &m->lm_head, 0, m->rows_start);
    if (m->n_rows) {
        m->be->gemm(0, 0, N, C, m->n_rows, 1.0f, dlogits + m->rows_start, V, m->head_rows, C, 1.0f, dln, C);
        m->be->gemm(1, 0, m->n_rows, C, N, grad_scale, dlogits + m->rows_start, V, m->lnf, C, 1.0f, m->dhead_rows,
                    C);
    }
    m->be->scale(dln, dln, grad_scale, (size_t)N * C);
    if (dhidden) memcpy(dres, dhidden, (size_t)N * C * sizeof(float));
    else m->be->zero(dres, (size_t)N * C);
    m->be->rmsnorm_bwd(dres, m->norm.dw, dln, m->x + (size_t)c->n_layers * N * C, m->norm.w, m->rstdf, N, C);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        m2u_layer *L = &m->layers[l];
        const float *x = m->x + (size_t)l * N * C;
        /* Checkpointing: layer l's activations again, from its input.  The output goes back to
         * x[l + 1], which no later step reads (layer l + 1's backward is done) and which gets the
         * same values; dln and xd are free here (dres is not, so the forward's scratch is not used). */
        if (m->checkpoint_acts && layer_fwd(m, l, x, m->x + (size_t)(l + 1) * N * C, B, T, dln, xd)) return -1;
        /* MLP branch: x_out = h + down(swiglu(gate(ln2), up(ln2))) */
        m->be->zero(dact, (size_t)N * FF);
        linear_bwd(m, &L->lin[M2U_DOWN], dact, dres, L->act, N, l, M2U_DOWN, xd, dul);
        m->be->zero(dg, (size_t)N * FF);
        m->be->zero(du, (size_t)N * FF);
        m->be->swiglu_bwd(dg, du, dact, L->g, L->u, (size_t)N * FF);
        m->be->zero(dln, (size_t)N * C);
        linear_bwd(m, &L->lin[M2U_GATE], dln, dg, L->ln2_out, N, l, M2U_GATE, xd, dul);
        linear_bwd(m, &L->lin[M2U_UP], dln, du, L->ln2_out, N, l, M2U_UP, xd, dul);
        m->be->rmsnorm_bwd(dres, L->ln2.dw, dln, L->h, L->ln2.w, L->rstd2, N, C);
        /* attention branch: h = x + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))) */
        m->be->zero(datt, (size_t)N * qd);
        linear_bwd(m, &L->lin[M2U_O], datt, dres, L->att, N, l, M2U_O, xd, dul);
        if (L->gate && adapter_bwd(m, L, l, datt, B, T)) return -1;
        m->be->zero(dq, (size_t)N * qd);
        m->be->zero(dk, (size_t)N * kvd);
        m->be->zero(dv, (size_t)N * kvd);
        m2u_attn at = m2u_attn_make(B, T, T, H, KV, hd, qd, kvd, kvd, 1, 0);
        at.lse = L->lse;
        if (m->be->attn_bwd(&at, dq, dk, dv, datt, NULL, L->q, L->k, L->v)) return -1;
        m->be->rope_bwd(dq, N, qd, H, hd, m->rope_cos, m->rope_sin);
        m->be->rope_bwd(dk, N, kvd, KV, hd, m->rope_cos, m->rope_sin);
        m->be->zero(dln, (size_t)N * C);
        linear_bwd(m, &L->lin[M2U_Q], dln, dq, L->ln1_out, N, l, M2U_Q, xd, dul);
        linear_bwd(m, &L->lin[M2U_K], dln, dk, L->ln1_out, N, l, M2U_K, xd, dul);
        linear_bwd(m, &L->lin[M2U_V], dln, dv, L->ln1_out, N, l, M2U_V, xd, dul);
        m->be->rmsnorm_bwd(dres, L->ln1.dw, dln, x, L->ln1.w, L->rstd1, N, C);
    }
    if (m->n_rows) m->be->embedding_bwd(m->dembed_rows, dres, m->ids, N, C, m->rows_start);
    return 0;
}

/* ---- inference with a KV cache --------------------------------------------------------- */

int m2u_kv_cache_init(m2u_kv_cache *kc, const m2u_llama *m, int cap) {
    size_t n = (size_t)m->cfg.n_layers * cap * m->cfg.n_kv_heads * m->cfg.head_dim;
    kc->cap = cap;
    kc->len = 0;
    kc->k = malloc(n * sizeof(float));
    kc->v = malloc(n * sizeof(float));
    if (!kc->k || !kc->v) {
        m2u_kv_cache_free(kc);
        return m2u_fail("out of memory for a KV cache of %d positions", cap);
    }
    return 0;
}

void m2u_kv_cache_free(m2u_kv_cache *kc) {
    free(kc->k);
    free(kc->v);
    kc->k = kc->v = NULL;
    kc->cap = kc->len = 0;
}

/* ---- KV-cached inference: N rows (one sequence's tokens, or one token of each of N sequences) ---- */

/* Scratch of a cached pass over N rows, one allocation. */
typedef struct {
    float *buf;
    float *x, *ln, *tmp, *q, *att, *k, *v, *g, *u, *act, *ul, *av, *rc_cos, *rc_sin, *rstd;
    int *pos;
} cached_scratch;

static void cached_scratch_free(cached_scratch *s) {
    free(s->buf);
    free(s->pos);
}

static int cached_scratch_alloc(const m2u_llama *m, int N, cached_scratch *s) {
    const m2u_llama_config *c = &m->cfg;
    int C = c->hidden_size, FF = c->intermediate_size, hd = c->head_dim, qd = c->n_heads * hd,
        kvd = c->n_kv_heads * hd, r = m->spec.lora_r > 0 ? m->spec.lora_r : 1;
    size_t need = (size_t)N * (3 * (size_t)C + 2 * (size_t)qd + 3 * (size_t)kvd + 3 * (size_t)FF + (size_t)r + 1 + hd);
    s->buf = malloc(need * sizeof(float));
    s->pos = malloc((size_t)N * sizeof(int));
    if (!s->buf || !s->pos) {
        cached_scratch_free(s);
        return m2u_fail("out of memory for a cached pass over %d rows", N);
    }
    float *p = s->buf;
    s->x = p, p += (size_t)N * C;
    s->ln = p, p += (size_t)N * C;
    s->tmp = p, p += (size_t)N * C;
    s->q = p, p += (size_t)N * qd;
    s->att = p, p += (size_t)N * qd;
    s->k = p, p += (size_t)N * kvd;
    s->v = p, p += (size_t)N * kvd;
    s->g = p, p += (size_t)N * FF;
    s->u = p, p += (size_t)N * FF;
    s->act = p, p += (size_t)N * FF;
    s->ul = p, p += (size_t)N * r;
    s->av = p, p += (size_t)N * kvd;
    s->rc_cos = p, p += (size_t)N * (hd / 2);
    s->rc_sin = p, p += (size_t)N * (hd / 2);
    s->rstd = p;
    return 0;
}

/* Layer l up to the rotated q/k and v of the N rows (at s->pos). */
static void cached_qkv(m2u_llama *m, int l, cached_scratch *s, int N) {
    const m2u_llama_config *c = &m->cfg;
    m2u_layer *L = &m->layers[l];
    int hd = c->head_dim, C = c->hidden_size;
    m->be->rmsnorm_fwd(s->ln, s->rstd, s->x, L->ln1.w, N, C, c->rms_norm_eps);
    linear_fwd(m, &L->lin[M2U_Q], s->q, s->ln, N, l, M2U_Q, s->ul, NULL);
    linear_fwd(m, &L->lin[M2U_K], s->k, s->ln, N, l, M2U_K, s->ul, NULL);
    linear_fwd(m, &L->lin[M2U_V], s->v, s->ln, N, l, M2U_V, s->ul, NULL);
    m->be->rope_fwd(s->q, N, c->n_heads * hd, c->n_heads, hd, s->rc_cos, s->rc_sin);
    m->be->rope_fwd(s->k, N, c->n_kv_heads * hd, c->n_kv_heads, hd, s->rc_cos, s->rc_sin);
}

/* The rest of layer l after attention: adapter injection (adapter_in as
 * [layers][ad_B][C], each vector over ad_T rows), output projection, residual,
 * MLP, residual. */
static void cached_tail(m2u_llama *m, int l, cached_scratch *s, int N, int ad_B, int ad_T) {
    const m2u_llama_config *c = &m->cfg;
    m2u_layer *L = &m->layers[l];
    int C = c->hidden_size, FF = c->intermediate_size;
    if (L->gate) adapter_fwd(m, L, l, s->att, s->av, ad_B, ad_T);
    linear_fwd(m, &L->lin[M2U_O], s->tmp, s->att, N, l, M2U_O, s->ul, NULL);
    for (size_t i = 0; i < (size_t)N * C; i++) s->x[i] += s->tmp[i];
    m->be->rmsnorm_fwd(s->ln, s->rstd, s->x, L->ln2.w, N, C, c->rms_norm_eps);
    linear_fwd(m, &L->lin[M2U_GATE], s->g, s->ln, N, l, M2U_GATE, s->ul, NULL);
    linear_fwd(m, &L->lin[M2U_UP], s->u, s->ln, N, l, M2U_UP, s->ul, NULL);
    m->be->swiglu_fwd(s->act, s->g, s->u, (size_t)N * FF);
    linear_fwd(m, &L->lin[M2U_DOWN], s->tmp, s->act, N, l, M2U_DOWN, s->ul, NULL);
    for (size_t i = 0; i < (size_t)N * C; i++) s->x[i] += s->tmp[i];
}

/* Checks and set-up common to both cached passes: ids, adapter inputs, scratch,
 * RoPE table for s->pos (filled by the caller before), embeddings. */
static int cached_begin(m2u_llama *m, const int32_t *ids, int N, const char *who, cached_scratch *s) {
    if (m->spec.adapter_layers && !m->adapter_in)
        return m2u_fail("%s: the model injects adapters but adapter_in is not set", who);
    if (check_ids(m, ids, N)) return -1;
    return cached_scratch_alloc(m, N, s);
}

int m2u_llama_decode_step(m2u_llama *m, m2u_kv_cache *const *kc, int B, const int32_t *ids, float *logits) {
    const m2u_llama_config *c = &m->cfg;
    if (B <= 0) return m2u_fail("decode_step: no sequences");
    for (int b = 0; b < B; b++)
        if (kc[b]->len + 1 > kc[b]->cap) return m2u_fail("KV cache %d full: %d positions", b, kc[b]->cap);
    cached_scratch s;
    if (cached_begin(m, ids, B, "decode_step", &s)) return -1;
    int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    for (int b = 0; b < B; b++) s.pos[b] = kc[b]->len;
    m->be->rope_table(s.rc_cos, s.rc_sin, s.pos, B, hd, m->inv_freq);
    int saved_training = m->training;
    m->training = 0; /* dropout is a training-time operation */
    embed_fwd(m, s.x, ids, B);
    int rc = 0;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        cached_qkv(m, l, &s, B);
        /* each sequence: its row into its own cache, attention over that cache */
        for (int b = 0; b < B && !rc; b++) {
            float *kcache = kc[b]->k + (size_t)l * kc[b]->cap * kvd, *vcache = kc[b]->v + (size_t)l * kc[b]->cap * kvd;
            memcpy(kcache + (size_t)s.pos[b] * kvd, s.k + (size_t)b * kvd, (size_t)kvd * sizeof(float));
            memcpy(vcache + (size_t)s.pos[b] * kvd, s.v + (size_t)b * kvd, (size_t)kvd * sizeof(float));
            m2u_attn at = m2u_attn_make(1, 1, s.pos[b] + 1, c->n_heads, c->n_kv_heads, hd, qd, kvd, kvd, 1, s.pos[b]);
            rc = m->be->attn_fwd(&at, s.att + (size_t)b * qd, NULL, s.q + (size_t)b * qd, kcache, vcache);
        }
        if (!rc) cached_tail(m, l, &s, B, B, 1);
    }
    m->training = saved_training;
    if (!rc) {
        m->be->rmsnorm_fwd(s.ln, s.rstd, s.x, m->norm.w, B, c->hidden_size, c->rms_norm_eps);
        head_fwd(m, logits, s.ln, B);
        for (int b = 0; b < B; b++) kc[b]->len++;
    }
    cached_scratch_free(&s);
    return rc;
}

int m2u_llama_forward_cached(m2u_llama *m, m2u_kv_cache *kc, const int32_t *ids, int n, float *logits_last) {
    const m2u_llama_config *c = &m->cfg;
    if (n <= 0) return m2u_fail("forward_cached: no tokens");
    if (kc->len + n > kc->cap) return m2u_fail("KV cache full: %d + %d tokens > %d positions", kc->len, n, kc->cap);
    cached_scratch s;
    if (cached_begin(m, ids, n, "forward_cached", &s)) return -1;
    int hd = c->head_dim, kvd = c->n_kv_heads * hd, pos0 = kc->len;
    for (int i = 0; i < n; i++) s.pos[i] = pos0 + i;
    m->be->rope_table(s.rc_cos, s.rc_sin, s.pos, n, hd, m->inv_freq);
    int saved_training = m->training;
    m->training = 0; /* dropout is a training-time operation */
    embed_fwd(m, s.x, ids, n);
    int rc = 0;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        float *kcache = kc->k + (size_t)l * kc->cap * kvd, *vcache = kc->v + (size_t)l * kc->cap * kvd;
        cached_qkv(m, l, &s, n);
        memcpy(kcache + (size_t)pos0 * kvd, s.k, (size_t)n * kvd * sizeof(float));
        memcpy(vcache + (size_t)pos0 * kvd, s.v, (size_t)n * kvd * sizeof(float));
        m2u_attn at = m2u_attn_make(1, n, pos0 + n, c->n_heads, c->n_kv_heads, hd, c->n_heads * hd, kvd, kvd, 1, pos0);
        rc = m->be->attn_fwd(&at, s.att, NULL, s.q, kcache, vcache);
        if (!rc) cached_tail(m, l, &s, n, 1, n);
    }
    m->training = saved_training;
    if (!rc) {
        float *last = s.x + (size_t)(n - 1) * c->hidden_size;
        m->be->rmsnorm_fwd(s.ln, s.rstd, last, m->norm.w, 1, c->hidden_size, c->rms_norm_eps);
        head_fwd(m, logits_last, s.ln, 1);
        kc->len += n;
    }
    cached_scratch_free(&s);
    return rc;
}
