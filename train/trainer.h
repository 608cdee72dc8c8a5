/* The m2u-train loop: data-parallel LoRA/bias/norm/[AUD]-row training of the
 * frozen LLaMA on dataset shards, with resumable checkpoints.
 *
 * One optimizer step = `accum` micro-batches of `batch` sequences on every rank.
 * The loss is the mean token cross-entropy over the whole global batch: each
 * rank back-propagates the SUM of its token losses, the gradients and token
 * counts are all-reduced in one call, and the sum is divided by the global
 * token count.  So 2 ranks x batch b equals 1 rank x 2 accumulation steps of b
 * up to float summation order (tested).
 *
 * Resume is bit-identical: the data order is a pure function of (seed, epoch),
 * and the checkpoint stores the position, the RNG and dropout stream states,
 * and the AdamW moments. */
#ifndef M2U_TRAINER_H
#define M2U_TRAINER_H

#include "config.h"
#include "dist.h"

/* Run training as configured.  resume = 1: continue from the newest complete
 * checkpoint in run.out_dir (an error if there is none); 2: the same when one
 * exists, else start fresh (for requeued batch jobs). */
int m2u_train_run(const m2u_train_config *cfg, const m2u_dist *dist, int resume);

#endif
