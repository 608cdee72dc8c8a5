/* The memory plan of a training run: see plan.h. */
#include "plan.h"

#include "dtype.h"
#include "llama.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int m2u_train_plan_make(const m2u_train_config *c, const m2u_train_model *tm, int local_ranks, m2u_train_plan *p) {
    memset(p, 0, sizeof *p);
    if (!tm || !tm->mg || !tm->mg->llm) return m2u_fail("memory plan: no model");
    const m2u_m2ugen *mg = tm->mg;
    m2u_llama *llm = mg->llm;
    /* the checkpoint as stored: mmap'ed and read in place */
    size_t by_dtype[M2U_DTYPE_COUNT] = {0};
    for (int i = 0; i < m2u_st_count(llm->st); i++) {
        const m2u_st_tensor *t = m2u_st_at(llm->st, i);
        size_t b = (size_t)t->numel * m2u_dtype_size(t->dtype);
        p->weights += b;
        p->weight_params += (double)t->numel;
        if ((int)t->dtype >= 0 && t->dtype < M2U_DTYPE_COUNT) by_dtype[t->dtype] += b;
    }
    if (c->train.precision == M2U_PRECISION_BF16) {
        /* the same whether the model holds its copies (the trainer's check) or not yet (--plan) */
        size_t src = 0, n = 0;
        p->frozen_bf16 = m2u_llama_frozen_bf16_bytes(llm, &src, &n);
        p->frozen_bf16_params = (double)n;
        p->weights -= src;
        p->weight_params -= (double)n;
    }
    int top = 0;
    for (int d = 1; d < M2U_DTYPE_COUNT; d++)
        if (by_dtype[d] > by_dtype[top]) top = d;
    p->weight_dtype = m2u_dtype_name((m2u_dtype)top);
    p->trainable_floats = mg->n_floats;
    p->trainables = mg->n_floats * sizeof(float);
    p->gradients = mg->n_floats * sizeof(float);
    p->optimizer = 2 * mg->n_floats * sizeof(float);
    /* train.checkpoint_activations is already applied by m2u_train_model_open */
    int B = c->train.batch, T = c->train.max_len;
    p->activations = m2u_llama_activation_bytes(llm, B, T);
    /* one micro-batch's tensors: features of the modalities with an adapter, decoder targets */
    size_t mb = 0;
    for (int g = 0; g < M2U_N_MODALITIES; g++)
        if (mg->cfg.use_adapter[g])
            mb += (size_t)B * mg->cfg.adapter[g].n_tokens * mg->cfg.adapter[g].feat_dim * sizeof(float);
    if (mg->cfg.use_projector) mb += (size_t)B * mg->cfg.projector.n_out * mg->cfg.projector.out_dim * sizeof(float);
    mb += 3 * (size_t)B * T * sizeof(int32_t); /* ids, labels, positions */
    /* the step being trained and the one the prefetch thread builds, accum micro-batches each */
    p->batch = 2 * (size_t)c->train.accum * mb;
    if (c->train.precision == M2U_PRECISION_BF16 && m2u_gemm_bf16_ok()) {
        const m2u_llama_config *lc = &llm->cfg;
        /* the frozen head's rows (added token rows are trainable, multiplied in fp32) */
        size_t w = (size_t)llm->lm_head.rows, qd = (size_t)lc->n_heads * (size_t)lc->head_dim;
        if ((size_t)lc->intermediate_size > w) w = (size_t)lc->intermediate_size;
        if ((size_t)lc->hidden_size > w) w = (size_t)lc->hidden_size;
        if (qd > w) w = qd;
        p->bf16_inputs = (size_t)B * (size_t)T * w * 2;
    }
    p->modules = m2u_m2ugen_act_bytes(mg, B, T);
    if (c->train.precision == M2U_PRECISION_FP32 && c->train.packed_weights != M2U_PACKED_OFF)
        p->packed = m2u_llama_packed_bytes(llm);
    p->per_rank = p->weights + p->frozen_bf16 + p->trainables + p->gradients + p->optimizer + p->activations +
                  p->modules + p->batch + p->bf16_inputs + p->packed;
    p->local_ranks = local_ranks > 0 ? local_ranks : 1;
    p->node = p->weights + (size_t)p->local_ranks * (p->per_rank - p->weights);
    return 0;
}

int m2u_train_plan_fit(const m2u_train_config *c, m2u_train_plan *p, size_t capacity) {
    if (p->node <= capacity) return 1;
    size_t without = p->node - (size_t)p->local_ranks * p->packed;
    if (c->train.packed_weights != M2U_PACKED_AUTO || !p->packed || without > capacity) return 0;
    p->packed_dropped = p->packed;
    p->per_rank -= p->packed;
    p->node = without;
    p->packed = 0;
    return 1;
}

/* A number from a cgroup or meminfo file; -1 when absent or "max". */
static int read_number(const char *path, const char *key, size_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        const char *v = line;
        if (key) {
            size_t kl = strlen(key);
            if (strncmp(line, key, kl) != 0) continue;
            v = line + kl;
        }
        while (*v == ' ' || *v == '\t') v++;
        if (!isdigit((unsigned char)*v)) break;
        errno = 0;
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno) break;
        while (*end == ' ') end++;
        if (!strncmp(end, "kB", 2)) n *= 1024ull;
        *out = (size_t)n;
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

int m2u_train_plan_available(size_t *bytes, const char **source) {
    size_t avail = 0, lim = 0;
    int have_avail = read_number("/proc/meminfo", "MemAvailable:", &avail) == 0;
    /* a cgroup limit below the machine's memory is the real ceiling (a Slurm job, a container) */
    if ((read_number("/sys/fs/cgroup/memory.max", NULL, &lim) == 0 ||
         read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", NULL, &lim) == 0) &&
        (!have_avail || lim < avail)) {
        *bytes = lim;
        *source = "the cgroup's memory limit";
        return 0;
    }
    if (!have_avail) return m2u_fail("memory plan: cannot read MemAvailable from /proc/meminfo");
    *bytes = avail;
    *source = "MemAvailable";
    return 0;
}

char *m2u_train_plan_text(const m2u_train_config *c, const m2u_train_plan *p, size_t capacity,
                          const char *capacity_source) {
    size_t cap = 4096, k = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    char b[7][32];
#define PUT(...) (k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, __VA_ARGS__))
    PUT("memory plan, per rank (run.device cpu; batch %d x max_len %d, accum %d, activation checkpointing %s, "
        "precision %s):\n",
        c->train.batch, c->train.max_len, c->train.accum, c->train.checkpoint_activations ? "on" : "off",
        c->train.precision == M2U_PRECISION_BF16 ? "bf16" : "fp32");
    if (!p->frozen_bf16) {
        PUT("  %-13s %12s  %.3g G parameters as stored (%s), mmap'ed and shared by the ranks of a node\n", "weights",
            m2u_fmt_bytes(p->weights, b[0], sizeof b[0]), p->weight_params / 1e9, p->weight_dtype);
    } else {
        PUT("  %-13s %12s  %.3g G parameters read as stored (norms, biases, bf16 matrices), mmap'ed and shared by "
            "the ranks of a node\n", "weights", m2u_fmt_bytes(p->weights, b[0], sizeof b[0]), p->weight_params / 1e9);
        PUT("  %-13s %12s  %.3g G frozen parameters stored as f32, held as bf16 copies (train.precision); "
            "their stored pages become page cache\n", "frozen bf16", m2u_fmt_bytes(p->frozen_bf16, b[1], sizeof b[1]),
            p->frozen_bf16_params / 1e9);
    }
    PUT("  %-13s %12s  %zu fp32 values (LoRA, biases, norms, token rows, adapters, projector)\n", "trainables",
        m2u_fmt_bytes(p->trainables, b[1], sizeof b[1]), p->trainable_floats);
    PUT("  %-13s %12s  fp32\n", "gradients", m2u_fmt_bytes(p->gradients, b[2], sizeof b[2]));
    PUT("  %-13s %12s  AdamW's two moments, fp32\n", "optimizer", m2u_fmt_bytes(p->optimizer, b[3], sizeof b[3]));
    PUT("  %-13s %12s  kept for backward (%s), logits, backward scratch\n", "activations",
        m2u_fmt_bytes(p->activations, b[4], sizeof b[4]),
        c->train.checkpoint_activations ? "one layer's, recomputed" : "every layer's");
    PUT("  %-13s %12s  the adapters' and the projector's activations and scratch, the model's step buffers\n",
        "modules", m2u_fmt_bytes(p->modules, b[5], sizeof b[5]));
    PUT("  %-13s %12s  features and targets of 2 x %d micro-batches (training + prefetch)\n", "batch",
        m2u_fmt_bytes(p->batch, b[5], sizeof b[5]), c->train.accum);
    if (p->bf16_inputs)
        PUT("  %-13s %12s  one product's input rounded to bf16 (this CPU multiplies bf16 natively)\n", "bf16 inputs",
            m2u_fmt_bytes(p->bf16_inputs, b[5], sizeof b[5]));
    if (p->packed)
        PUT("  %-13s %12s  the fp32 frozen linears packed for oneDNN's brgemm, read by the forward "
            "(train.packed_weights)\n", "packed", m2u_fmt_bytes(p->packed, b[5], sizeof b[5]));
    else if (p->packed_dropped)
        PUT("  %-13s %12s  not made: train.packed_weights auto, and the plan fits only without these %s\n", "packed",
            m2u_fmt_bytes(0, b[5], sizeof b[5]), m2u_fmt_bytes(p->packed_dropped, b[4], sizeof b[4]));
    PUT("  %-13s %12s\n", "per rank", m2u_fmt_bytes(p->per_rank, b[6], sizeof b[6]));
    PUT("  %-13s %12s  weights once + %d rank(s) x the rest\n", "node", m2u_fmt_bytes(p->node, b[0], sizeof b[0]),
        p->local_ranks);
    if (capacity) {
        int fits = p->node <= capacity;
        PUT("%s: %s available (%s)", fits ? "fits" : "does NOT fit", m2u_fmt_bytes(capacity, b[1], sizeof b[1]),
            capacity_source);
        if (fits) PUT(", %s to spare\n", m2u_fmt_bytes(capacity - p->node, b[2], sizeof b[2]));
        else {
            PUT(", %s short; %s", m2u_fmt_bytes(p->node - capacity, b[2], sizeof b[2]),
                c->train.checkpoint_activations ? "lower train.max_len or train.batch, or use fewer ranks per node"
                                                 : "train.checkpoint_activations=true keeps one layer's activations");
            if (p->packed) /* only with packed_weights on: auto drops the copies where that makes it fit */
                PUT("; train.packed_weights=off (or auto) saves %s per rank%s",
                    m2u_fmt_bytes(p->packed, b[3], sizeof b[3]),
                    p->node - (size_t)p->local_ranks * p->packed <= capacity ? ", enough to fit"
                                                                             : ", not enough by itself");
            PUT("\n");
        }
    }
#undef PUT
    if (k >= cap) out[cap - 1] = '\0';
    return out;
}
