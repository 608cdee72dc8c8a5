/* The memory plan of a training run (m2u-train --plan, and the check before step 1).
 *
 * Bytes per rank, from the opened model (the frozen weights are mmap'ed, not read, so
 * opening is cheap even for a 7B checkpoint) and the config:
 *   weights      the checkpoint's tensors as stored (bf16 / f16 / f32: the CPU path reads
 *                them in place; pages shared by the ranks of one node), less those that
 *                train.precision bf16 replaces by copies
 *   frozen bf16  train.precision bf16: the bf16 copies of the frozen matrices stored as f32 /
 *                f16 (m2u_llama_frozen_bf16_bytes), anonymous memory of each rank.  The
 *                stored pages they were read from stay only as page cache the kernel may drop
 *                (clean, file-backed), so they are not counted.
 *   trainables   LoRA, biases, norms, token rows, adapters, prefix, projector: fp32
 *   gradients    fp32, one per trainable (the fused all-reduce buffer)
 *   optimizer    AdamW's two moments, fp32
 *   activations  what the LLaMA keeps for backward at train.batch x train.max_len
 *                (m2u_llama_activation_bytes: one layer's with checkpointing), its logits
 *                and backward scratch
 *   batch        the micro-batches' encoder features and decoder targets, for the current
 *                step and the one the prefetch thread builds
 * The adapters' and the projector's own activations (a few tokens each) and BLAS's
 * buffers are not itemised: m2u-train's closing line prints the measured peak beside the
 * plan.  A node's total counts the weights once and everything else once per local rank. */
#ifndef M2U_TRAIN_PLAN_H
#define M2U_TRAIN_PLAN_H

#include "config.h"
#include "model_setup.h"
#include "units.h" /* m2u_parse_bytes, m2u_fmt_bytes */

#include <stddef.h>

typedef struct {
    size_t weights, frozen_bf16, trainables, gradients, optimizer, activations, batch;
    /* train.precision bf16 where the CPU has bf16 products: the input of one frozen product at
       a time rounded to bf16 (the largest: the classifier's gradient rows, N x vocabulary);
       kept from one product to the next (cpu/gemm_bf16.c).  0 otherwise. */
    size_t bf16_inputs;
    /* the M2UGen modules beside the LLaMA: the adapters' and the projector's activations and
       scratch, the model's step buffers (m2u_m2ugen_act_bytes) */
    size_t modules;
    /* train.packed_weights: the forward's packed copies of the fp32 frozen matrices (llama.h
       packed); 0 when off, with bf16, where the CPU has no brgemm kernels, or dropped by
       m2u_train_plan_fit (packed_dropped then holds what they would have taken) */
    size_t packed, packed_dropped;
    size_t per_rank;       /* the sum of the above */
    size_t trainable_floats;
    double weight_params;  /* elements of the checkpoint's tensors read in place */
    double frozen_bf16_params; /* elements of the bf16 copies */
    const char *weight_dtype; /* the most common stored dtype, for the report */
    int local_ranks;       /* processes of this job on this node */
    size_t node;           /* weights + local_ranks x (per_rank - weights): the copies are per rank */
} m2u_train_plan;

/* train.packed_weights auto: when the plan does not fit in capacity bytes but would without the
 * packed copies, drop them from it (the trainer then makes none).  Returns 1 when the plan (as
 * left) fits. */
int m2u_train_plan_fit(const m2u_train_config *c, m2u_train_plan *p, size_t capacity);

/* The plan of config c with its model opened (m2u_train_model_open); local_ranks >= 1. */
int m2u_train_plan_make(const m2u_train_config *c, const m2u_train_model *tm, int local_ranks, m2u_train_plan *p);

/* Memory this node can give the job: the cgroup's limit (memory.max, v2, or
 * memory.limit_in_bytes, v1) when set, else MemAvailable from /proc/meminfo; *source
 * names which.  -1 when neither can be read. */
int m2u_train_plan_available(size_t *bytes, const char **source);

/* The plan as a table (malloc'ed text), with the verdict against `capacity` bytes
 * (0: none given) described as `capacity_source`. */
char *m2u_train_plan_text(const m2u_train_config *c, const m2u_train_plan *p, size_t capacity,
                          const char *capacity_source);

#endif
