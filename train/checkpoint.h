/* Training checkpoints that a killed job resumes from bit-identically.
 *
 * Layout: <out_dir>/checkpoints/step-<8 digits>/
 *   trainable.safetensors   every trainable tensor (fp32) under its PEFT/HF/M2UGen name
 *   optimizer.safetensors   AdamW moments "m.<name>", "v.<name>"
 *   state.json              step, epoch, position in the epoch, RNG states, counters
 *   COMPLETE                written last: a directory without it is ignored
 * A checkpoint is written into step-<n>.tmp and renamed when complete, so a kill
 * at any moment leaves the previous checkpoint intact; then all but the newest
 * keep_last complete checkpoints are removed. */
#ifndef M2U_CHECKPOINT_H
#define M2U_CHECKPOINT_H

#include "adamw.h"
#include "llama.h"

#include <stdint.h>

typedef struct {
    long step;            /* optimizer steps done */
    int epoch;            /* current epoch */
    long epoch_pos;       /* samples of this epoch already consumed (per rank) */
    uint64_t model_seed;  /* the model's dropout stream state (m2u_llama.step_seed) */
    uint64_t rng[4];      /* the trainer's own generator */
    double tokens;        /* tokens seen (all ranks) */
    double last_loss;     /* for the log */
} m2u_train_state;

/* Save params (n_params views into one flat buffer) and AdamW state.  Atomic, keeps keep_last. */
int m2u_ckpt_save(const char *out_dir, const m2u_train_state *st, const m2u_param *params, int n_params,
                  const m2u_adamw *opt, int keep_last);
/* Newest complete checkpoint directory under out_dir (malloc'ed), or *path = NULL when none. */
int m2u_ckpt_latest(const char *out_dir, char **path);
/* Load into params/opt; every parameter must be present with its exact shape. */
int m2u_ckpt_load(const char *ckpt_dir, m2u_train_state *st, m2u_param *params, int n_params, m2u_adamw *opt);

#endif
