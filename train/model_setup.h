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
void m2u_train_model_close(m2u_train_model *m);

#endif
