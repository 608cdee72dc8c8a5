/* The M2UGen model a training config describes, built the one way m2u-train
 * and m2u-eval both use: the tokenizer with the [AUD] tokens added, the
 * trainable spec (LoRA / biases / norms / token rows) from train.trainable,
 * adapters, prefix queries and the projector from model.*, and the batch
 * options of the stage.  Trainables start at their initial values; load a
 * checkpoint into mg->params afterwards. */
#ifndef M2U_MODEL_SETUP_H
#define M2U_MODEL_SETUP_H

#include "batch.h"
#include "config.h"
#include "m2ugen.h"
#include "manifest.h"
#include "tokenizer.h"

typedef struct {
    m2u_tokenizer *tok;
    m2u_m2ugen *mg;
    m2u_batch_options bo;
    int aud0, n_aud;
    int freeze_rows; /* 1: [AUD] rows are not trained (aud_embeddings not in train.trainable) */
} m2u_train_model;

/* On failure everything built so far is freed and *m is zeroed. */
int m2u_train_model_open(const m2u_train_config *c, m2u_train_model *m);
/* The same without train.precision's conversion: the frozen weights stay mmap'ed as stored and
 * unread, so a memory plan (plan.h) can be made before the bf16 copies are allocated (the plan
 * counts them from the config either way); m2u_train_model_apply_precision makes them. */
int m2u_train_model_open_mapped(const m2u_train_config *c, m2u_train_model *m);
int m2u_train_model_apply_precision(const m2u_train_config *c, m2u_train_model *m);
void m2u_train_model_close(m2u_train_model *m);

/* The shard tensor columns the model reads: encoder features of modality g
 * ("mert", "vit", "vivit") and the decoder target ("t5" or "audioldm2"). */
const char *m2u_train_feature_column(int g);
const char *m2u_train_target_column(const m2u_train_config *c);

/* Every shard of the dataset against the model, before any step: a feature
 * column of a modality the model has an adapter for must hold [n_tokens,
 * feat_dim] per sample, and (with_targets, the model has a projector) the
 * target column [n_out, out_dim].  A smaller one would otherwise be read into
 * the model's buffer and zero-padded.  Absent columns are allowed (those
 * samples are masked).  Fails naming the shard, the column and both shapes. */
int m2u_train_model_check_dataset(const m2u_train_config *c, const m2u_m2ugen *mg, m2u_dataset *ds,
                                  int with_targets);

#endif
