#include "trainer.h"

#include "model_setup.h"

#include "adamw.h"
#include "plan.h"
#include "backend.h"
#include "batch.h"
#include "checkpoint.h"
#include "fileio.h"
#include "llama.h"
#include "m2ugen.h"
#include "log.h"
#include "m2u_error.h"
#include "manifest.h"
#include "progress.h"
#include "rng.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char *const k_kind_names[] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo", ""};

typedef struct {
    const m2u_train_config *cfg;
    const m2u_dist *dist;
    m2u_tokenizer *tok;
    m2u_m2ugen *mg;                    /* LLaMA + adapters + projector; model = mg->llm */
    m2u_llama *model;
    const char *feat_name[M2U_N_MODALITIES], *target_name;
    int freeze_rows;                   /* [AUD] rows exist but are not trained this stage */
    m2u_dataset *train, *eval;
    int64_t *eligible, n_eligible;     /* training samples this stage can use */
    int64_t *eval_idx, n_eval;
    m2u_batch_options bo;
    m2u_adamw opt;
    m2u_adamw_config ac;
    m2u_train_state st;
    long total_steps, steps_per_epoch;
    int64_t *order, n_order;           /* this rank's samples of the current epoch */
    int order_epoch;
    FILE *metrics;
    struct prefetcher *pf;             /* builds the next step's batches while this one computes */
    double t_data, t_fwd, t_bwd, t_opt; /* seconds, summed */
    m2u_train_plan plan;               /* memory, from check_plan */
} trainer;

/* ---- which samples a stage uses -------------------------------------------------------- */

static int kind_allowed(unsigned kinds, const char *kind) {
    for (int i = 0; i < 6; i++)
        if (!strcmp(kind, k_kind_names[i])) return (kinds >> i) & 1u;
    return 0;
}

/* Indices of the view whose texts give a (question, answer) pair at this stage. */
static int select_samples(m2u_dataset *ds, int stage, unsigned kinds, int64_t **out, int64_t *n_out) {
    int64_t n = m2u_dataset_count(ds), k = 0;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!idx) return m2u_fail("out of memory");
    static const m2u_text_col cols[] = {M2U_TEXT_ID, M2U_TEXT_KIND, M2U_TEXT_CAPTION, M2U_TEXT_INSTRUCTION,
                                        M2U_TEXT_ANSWER, M2U_TEXT_OUTPUT_TEXT};
    for (int64_t i = 0; i < n; i++) {
        int shard;
        int64_t local;
        m2u_shard_reader *r;
        if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r)) {
            free(idx);
            return -1;
        }
        m2u_sample s;
        memset(&s, 0, sizeof s);
        int rc = 0;
        for (size_t c = 0; c < sizeof cols / sizeof *cols && !rc; c++)
            rc = m2u_shard_get_text(r, cols[c], local, &s.text[cols[c]], NULL);
        const char *q, *a;
        int music;
        if (!rc && kind_allowed(kinds, s.text[M2U_TEXT_KIND]) && m2u_sample_pair(&s, stage, &q, &a, &music) == 0)
            idx[k++] = i;
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) free(s.text[cols[c]]);
        if (rc) {
            free(idx);
            return -1;
        }
    }
    *out = idx;
    *n_out = k;
    return 0;
}

/* This rank's share of an epoch: a permutation of the eligible samples drawn
 * from (seed, epoch) alone, dealt to the ranks micro-batch by micro-batch, so a
 * global step of `world` ranks x batch b holds the same samples as one rank's
 * `world` accumulated micro-batches of b.  The remainder is dropped,
 * differently each epoch. */
static void epoch_order(trainer *t, int epoch) {
    int64_t n = t->n_eligible, world = t->dist->size;
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    memcpy(perm, t->eligible, (size_t)n * sizeof(int64_t));
    if (t->cfg->train.shuffle) {
        m2u_rng r;
        m2u_rng_seed(&r, (uint64_t)t->cfg->run.seed * 1000003ull + (uint64_t)epoch);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(m2u_rng_next(&r) % (uint64_t)(i + 1));
            int64_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
    }
    /* micro-batch k of rank r holds global positions (k*world + r)*b .. +b-1, so all
       ranks' k-th micro-batches cover world*b consecutive positions; samples that
       do not fill a whole micro-batch are dropped with the remainder */
    /* whole global steps only (world x accum micro-batches of b), so the same data
       gives the same steps for any split of the global batch into ranks and
       accumulation */
    int64_t b = t->cfg->train.batch, accum = t->cfg->train.accum;
    int64_t blocks = (n / (world * b * accum)) * accum;
    free(t->order);
    t->order = malloc((size_t)(blocks > 0 ? blocks * b : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < blocks * b; i++) t->order[i] = perm[(i / b * world + t->dist->rank) * b + i % b];
    t->n_order = blocks * b;
    t->order_epoch = epoch;
    free(perm);
}

/* ---- schedule ------------------------------------------------------------------------- */

static double lr_at(const m2u_train_config *c, long step, long total) {
    double lr = c->train.lr, lo = c->train.min_lr;
    long w = c->train.warmup_steps;
    if (step < w) return lr * (double)(step + 1) / (double)w;
    double p = total > w ? (double)(step - w) / (double)(total - w) : 1.0;
    if (p > 1) p = 1;
    switch (c->train.schedule) {
    case M2U_SCHEDULE_CONSTANT: return lr;
    case M2U_SCHEDULE_LINEAR: return lo + (lr - lo) * (1.0 - p);
    default: return lo + (lr - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * p));
    }
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static const char *const k_split_names[] = {"train", "valid", "test"};

static int setup_model(trainer *t) {
    const m2u_train_config *c = t->cfg;
    m2u_train_model tm;
    /* train.precision's bf16 copies come after check_plan: nothing large before the verdict */
    if (m2u_train_model_open_mapped(c, &tm)) return -1;
    t->tok = tm.tok, t->mg = tm.mg, t->bo = tm.bo, t->freeze_rows = tm.freeze_rows;
    t->model = t->mg->llm; /* with train.checkpoint_activations applied (model_setup.c) */
    /* shard tensor columns (written by m2u-dataset): encoder features and decoder targets */
    for (int g = 0; g < M2U_N_MODALITIES; g++) t->feat_name[g] = m2u_train_feature_column(g);
    t->target_name = m2u_train_target_column(c);
    return 0;
}

static int setup_data(trainer *t) {
    const m2u_train_config *c = t->cfg;
    m2u_dataset_options o = {.split = k_split_names[c->train.split], .no_verify = !c->train.verify};
    if (m2u_dataset_open(c->train.data, &o, &t->train)) return -1;
    if (select_samples(t->train, c->train.stage, c->train.kinds, &t->eligible, &t->n_eligible)) return -1;
    t->steps_per_epoch = (long)(t->n_eligible / ((int64_t)t->dist->size * c->train.batch * c->train.accum));
    if (t->steps_per_epoch == 0)
        return m2u_train_config_fail(c, "train.batch",
                                     "%s: %lld usable samples in split '%s' at stage %d are too few for %d rank(s) x "
                                     "batch %d x accum %d",
                                     c->train.data, (long long)t->n_eligible, o.split, c->train.stage, t->dist->size,
                                     c->train.batch, c->train.accum);
    t->total_steps = c->train.max_steps > 0 ? c->train.max_steps : (long)c->train.epochs * t->steps_per_epoch;
    /* before step 1: a column of another shape would be zero-padded into the model's buffers */
    if (m2u_train_model_check_dataset(c, t->mg, t->train, 1)) return -1;
    m2u_dataset_options eo = {.split = k_split_names[c->eval.split], .no_verify = !c->train.verify};
    if (m2u_dataset_open(c->train.data, &eo, &t->eval)) return -1;
    return select_samples(t->eval, c->train.stage, c->train.kinds, &t->eval_idx, &t->n_eval);
}

/* ---- features, targets and the model's forward on a batch -------------------------------------- */

static int ds_has_tensor(m2u_dataset *ds, const char *name) {
    m2u_shard_reader *r;
    if (m2u_dataset_count(ds) == 0 || m2u_dataset_shard(ds, 0, &r)) return 0;
    return m2u_shard_tensor_index(r, name) >= 0;
}

/* One built batch through the model: encoder features of the modalities the
 * model reads and, when it has a projector, the decoder targets, from the
 * samples' tensor columns (absent ones are masked). */
typedef struct {
    float *feat[M2U_N_MODALITIES], *target;
    int *present[M2U_N_MODALITIES], *has_target;
} batch_tensors;

static void free_tensors(batch_tensors *bt) {
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        free(bt->feat[g]);
        free(bt->present[g]);
    }
    free(bt->target);
    free(bt->has_target);
    memset(bt, 0, sizeof *bt);
}

static int load_tensors(trainer *t, m2u_dataset *ds, const int64_t *idx, int B, batch_tensors *bt) {
    m2u_m2ugen *mg = t->mg;
    memset(bt, 0, sizeof *bt);
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        if (!mg->cfg.use_adapter[g] || !ds_has_tensor(ds, t->feat_name[g])) continue;
        size_t per = (size_t)mg->cfg.adapter[g].n_tokens * mg->cfg.adapter[g].feat_dim;
        bt->feat[g] = calloc((size_t)B * per, sizeof(float));
        bt->present[g] = calloc((size_t)B, sizeof(int));
        for (int b = 0; b < B; b++)
            if (m2u_dataset_get_tensor_f32(ds, idx[b], t->feat_name[g], bt->feat[g] + (size_t)b * per, per,
                                           &bt->present[g][b]))
                return m2u_fail_prefix("feature '%s' of sample %lld", t->feat_name[g], (long long)idx[b]);
    }
    if (mg->cfg.use_projector && ds_has_tensor(ds, t->target_name)) {
        size_t per = (size_t)mg->cfg.projector.n_out * mg->cfg.projector.out_dim;
        bt->target = calloc((size_t)B * per, sizeof(float));
        bt->has_target = calloc((size_t)B, sizeof(int));
        for (int b = 0; b < B; b++)
            if (m2u_dataset_get_tensor_f32(ds, idx[b], t->target_name, bt->target + (size_t)b * per, per,
                                           &bt->has_target[b]))
                return m2u_fail_prefix("target '%s' of sample %lld", t->target_name, (long long)idx[b]);
    }
    return 0;
}

static int forward_batch(trainer *t, const m2u_batch *b, const batch_tensors *bt, double *ce, double *mse, int *n_mse) {
    const float *feats[M2U_N_MODALITIES];
    const int *present[M2U_N_MODALITIES];
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        feats[g] = bt->feat[g];
        present[g] = bt->present[g];
    }
    return m2u_m2ugen_forward(t->mg, b->ids, b->labels, b->B, b->T, t->cfg->train.ignore_index, feats, present,
                              b->aud_pos, bt->target, bt->has_target, ce, mse, n_mse);
}

/* Samples with a projector target in a batch (those the MSE counts). */
static int count_targets(const m2u_batch *b, const batch_tensors *bt) {
    int n = 0;
    for (int i = 0; bt->has_target && i < b->B; i++) n += bt->has_target[i] && b->aud_pos[i] >= 0;
    return n;
}

/* A held-out loss for the log: four decimals, or `missing` where there is none (NaN). */
static const char *loss_text(char *buf, size_t n, double v, const char *missing) {
    if (isfinite(v)) snprintf(buf, n, "%.4f", v);
    else snprintf(buf, n, "%s", missing);
    return buf;
}

/* A held-out loss for metrics.jsonl: JSON has no NaN, so "no held-out data" is null. */
static const char *json_num(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.6f", v);
    else snprintf(buf, n, "null");
    return buf;
}

/* ---- evaluation: held-out loss (CE + weighted MSE, as trained) on the eval split (rank 0) ------ */

static double eval_loss(trainer *t) {
    const m2u_train_config *c = t->cfg;
    int B = c->train.batch;
    int64_t n = t->n_eval;
    if (c->eval.batches > 0 && n > (int64_t)c->eval.batches * B) n = (int64_t)c->eval.batches * B;
    double ce_sum = 0, mse_sum = 0;
    long tokens = 0, targets = 0;
    m2u_batch b = {0};
    batch_tensors bt = {0};
    int saved = t->model->training;
    uint64_t seed = t->model->step_seed; /* evaluation must not move the dropout stream */
    t->model->training = 0;
    for (int64_t i = 0; i + B <= n; i += B) {
        double ce, mse;
        int nm;
        if (m2u_batch_build(t->eval, t->tok, &t->bo, t->eval_idx + i, B, &b) ||
            load_tensors(t, t->eval, t->eval_idx + i, B, &bt) || forward_batch(t, &b, &bt, &ce, &mse, &nm)) {
            free_tensors(&bt);
            break;
        }
        free_tensors(&bt);
        ce_sum += ce;
        mse_sum += mse;
        tokens += t->model->n_valid;
        targets += nm;
    }
    t->model->training = saved;
    t->model->step_seed = seed;
    m2u_batch_free(&b);
    if (!tokens) return NAN;
    return ce_sum / (double)tokens + (targets ? c->train.mse_weight * mse_sum / (double)targets : 0.0);
}

/* ---- a few held-out prompts answered greedily, so a run shows what it learned ---------------- */

static void eval_generate(trainer *t, int n_samples) {
    const m2u_train_config *c = t->cfg;
    int max_new = c->eval.max_new_tokens;
    if (max_new <= 0) return;
    int32_t *out = malloc((size_t)max_new * sizeof(int32_t));
    for (int64_t k = 0; k < t->n_eval && k < n_samples; k++) {
        m2u_sample s;
        if (m2u_dataset_get(t->eval, t->eval_idx[k], &s)) break;
        const char *q, *a;
        int music;
        if (m2u_sample_pair(&s, c->train.stage, &q, &a, &music) == 0) {
            char *prompt = m2u_prompt_fill(c->train.prompt_template, q);
            size_t len = prompt ? strlen(prompt) : 0;
            int32_t *ids;
            size_t n;
            int n_out = 0;
            m2u_sample_config sc = {.max_new_tokens = max_new, .temperature = 0.0f, .top_p = 1.0f, .stop_at_eos = 1};
            char *text = NULL;
            batch_tensors bt = {0};
            if (prompt && m2u_tokenizer_encode(t->tok, prompt, len, 1, &ids, &n) == 0) {
                /* a forward over the prompt alone sets the sample's adapter inputs (B = 1) */
                m2u_batch one = {.B = 1, .T = (int)n, .ids = ids, .labels = NULL, .aud_pos = (int[]){-1}};
                double ce, mse;
                int nm;
                if (load_tensors(t, t->eval, t->eval_idx + k, 1, &bt) == 0 &&
                    forward_batch(t, &one, &bt, &ce, &mse, &nm) == 0 &&
                    m2u_llama_generate(t->model, ids, (int)n, &sc, out, &n_out, NULL) == 0 &&
                    m2u_tokenizer_decode(t->tok, out, (size_t)n_out, 1, &text) == 0) {
                    m2u_log(M2U_LOG_INFO, "  held-out: %s\n    expected: %s\n    model:    %s", q[0] ? q : "(no instruction)",
                            a, text);
                    cJSON *j = cJSON_CreateObject();
                    cJSON_AddStringToObject(j, "event", "sample");
                    cJSON_AddStringToObject(j, "instruction", q);
                    cJSON_AddStringToObject(j, "expected", a);
                    cJSON_AddStringToObject(j, "generated", text);
                    char *line = cJSON_PrintUnformatted(j);
                    fprintf(t->metrics, "%s\n", line);
                    free(line);
                    cJSON_Delete(j);
                }
                free_tensors(&bt);
                free(ids);
            }
            free(text);
            free(prompt);
        }
        m2u_sample_free(&s);
    }
    free(out);
}

/* ---- data: the next step's micro-batches, built on a prefetch thread ------------------------- */

/* One optimizer step's worth of data, and where the epoch stands after it. */
typedef struct {
    m2u_batch *bs;
    batch_tensors *bts;
    double tokens, targets;
    int epoch;
    long epoch_pos;
    int rc;
    char err[1024];
} step_data;

static void free_step(step_data *d, int A) {
    if (!d) return;
    for (int a = 0; a < A; a++) {
        m2u_batch_free(&d->bs[a]);
        free_tensors(&d->bts[a]);
    }
    free(d->bs);
    free(d->bts);
    free(d);
}

/* Build a step from the cursor (epoch, pos), advancing it.  Only the prefetch
 * thread calls this: it alone uses t->train, t->order and the cursor. */
static step_data *produce_step(trainer *t, int *epoch, long *pos) {
    const m2u_train_config *c = t->cfg;
    int A = c->train.accum;
    step_data *d = calloc(1, sizeof *d);
    d->bs = calloc((size_t)A, sizeof *d->bs);
    d->bts = calloc((size_t)A, sizeof *d->bts);
    for (int a = 0; a < A && !d->rc; a++) {
        if (t->order_epoch != *epoch) epoch_order(t, *epoch); /* first step, or resumed */
        if (*pos + c->train.batch > t->n_order) {             /* next epoch */
            ++*epoch;
            *pos = 0;
            epoch_order(t, *epoch);
        }
        const int64_t *idx = t->order + *pos;
        d->rc = m2u_batch_build(t->train, t->tok, &t->bo, idx, c->train.batch, &d->bs[a]);
        if (!d->rc) d->rc = load_tensors(t, t->train, idx, c->train.batch, &d->bts[a]);
        if (!d->rc) {
            d->tokens += d->bs[a].n_valid;
            d->targets += count_targets(&d->bs[a], &d->bts[a]);
        }
        *pos += c->train.batch;
    }
    /* the message is thread-local: carry it to the training thread */
    if (d->rc) snprintf(d->err, sizeof d->err, "%s", m2u_last_error());
    d->epoch = *epoch;
    d->epoch_pos = *pos;
    return d;
}

typedef struct prefetcher {
    trainer *t;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    step_data *slot; /* ready, not yet taken */
    int stop;
    int epoch;       /* the producer's cursor */
    long pos, remaining;
} prefetcher;

static void *prefetch_main(void *arg) {
    prefetcher *p = arg;
    while (p->remaining > 0) {
        step_data *d = produce_step(p->t, &p->epoch, &p->pos);
        pthread_mutex_lock(&p->mu);
        while (p->slot && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        if (!stop) {
            p->slot = d;
            pthread_cond_broadcast(&p->cv);
        }
        pthread_mutex_unlock(&p->mu);
        if (stop) {
            free_step(d, p->t->cfg->train.accum);
            break;
        }
        if (d->rc) break; /* the consumer reports it */
        p->remaining--;
    }
    return NULL;
}

static int prefetch_start(trainer *t) {
    prefetcher *p = calloc(1, sizeof *p);
    if (!p) return m2u_fail("out of memory");
    p->t = t;
    p->epoch = t->st.epoch;
    p->pos = t->st.epoch_pos;
    p->remaining = t->total_steps - t->st.step;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
        free(p);
        return m2u_fail("cannot start the prefetch thread");
    }
    t->pf = p;
    return 0;
}

static step_data *prefetch_take(trainer *t) {
    prefetcher *p = t->pf;
    pthread_mutex_lock(&p->mu);
    while (!p->slot) pthread_cond_wait(&p->cv, &p->mu);
    step_data *d = p->slot;
    p->slot = NULL;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return d;
}

static void prefetch_stop(trainer *t) {
    prefetcher *p = t->pf;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    free_step(p->slot, t->cfg->train.accum);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    t->pf = NULL;
}

/* ---- one optimizer step -------------------------------------------------------------------------- */

/* The global batch's counts are known before any backward (the micro-batches
 * are built first and the counts all-reduced), so each micro-batch's gradient is
 * scaled exactly: CE by 1/global tokens, MSE by mse_weight/global targets. */
static int train_step(trainer *t, double *loss_out, double *gnorm_out, double *tokens_out) {
    const m2u_train_config *c = t->cfg;
    m2u_m2ugen *mg = t->mg;
    m2u_llama *m = t->model;
    int A = c->train.accum, rc = 0;
    double t0 = m2u_now();
    step_data *d = prefetch_take(t); /* the time spent here is the data wait */
    t->t_data += m2u_now() - t0;
    if (d->rc) {
        rc = m2u_fail("%s", d->err);
        free_step(d, A);
        return rc;
    }
    m2u_batch *bs = d->bs;
    batch_tensors *bts = d->bts;
    t->st.epoch = d->epoch;
    t->st.epoch_pos = d->epoch_pos;
    double counts[4] = {d->tokens, d->targets, 0, 0}; /* tokens, targets, CE sum, MSE sum */
    if (!rc && t->dist->size > 1) rc = m2u_dist_allreduce_sum_f64(counts, 2);
    float ce_scale = (float)(1.0 / (counts[0] > 0 ? counts[0] : 1));
    float mse_scale = (float)(c->train.mse_weight / (counts[1] > 0 ? counts[1] : 1));
    memset(m->grad_buf, 0, mg->n_floats * sizeof(float));
    m->training = 1;
    for (int a = 0; a < A && !rc; a++) {
        double t1 = m2u_now(), ce, mse;
        int nm;
        rc = forward_batch(t, &bs[a], &bts[a], &ce, &mse, &nm);
        double t2 = m2u_now();
        if (!rc) rc = m2u_m2ugen_backward(mg, ce_scale, mse_scale);
        t->t_fwd += t2 - t1;
        t->t_bwd += m2u_now() - t2;
        counts[2] += ce;
        counts[3] += mse;
    }
    free_step(d, A);
    if (rc) return -1;
    if (t->dist->size > 1) {
        double sums[2] = {counts[2], counts[3]};
        if (m2u_dist_allreduce_sum_f32(m->grad_buf, mg->n_floats) || m2u_dist_allreduce_sum_f64(sums, 2)) return -1;
        counts[2] = sums[0];
        counts[3] = sums[1];
    }
    double t3 = m2u_now();
    if (t->freeze_rows && m->n_rows) {
        memset(m->dembed_rows, 0, (size_t)m->n_rows * m->cfg.hidden_size * sizeof(float));
        if (m->dhead_rows != m->dembed_rows) memset(m->dhead_rows, 0, (size_t)m->n_rows * m->cfg.hidden_size * sizeof(float));
    }
    double gn = m2u_grad_norm(m->grad_buf, mg->n_floats);
    *loss_out = counts[2] / (counts[0] > 0 ? counts[0] : 1) +
                (counts[1] > 0 ? c->train.mse_weight * counts[3] / counts[1] : 0.0);
    *gnorm_out = gn;
    *tokens_out = counts[0];
    if (!isfinite(*loss_out) || !isfinite(gn))
        return m2u_fail("step %ld: %s is %g; stopping (the last good checkpoint is kept)", t->st.step + 1,
                        isfinite(*loss_out) ? "gradient norm" : "loss", isfinite(*loss_out) ? gn : *loss_out);
    if (c->train.clip_grad > 0) m2u_clip_grad(m->grad_buf, mg->n_floats, gn, (float)c->train.clip_grad);
    m2u_adamw_step(&t->opt, &t->ac, (float)lr_at(c, t->st.step, t->total_steps), mg->params, mg->n_params);
    t->t_opt += m2u_now() - t3;
    return 0;
}

static int save(trainer *t) {
    int rc = 0;
    if (t->dist->rank == 0) {
        t->st.model_seed = t->model->step_seed;
        rc = m2u_ckpt_save(t->cfg->run.out_dir, &t->st, t->mg->params, t->mg->n_params, &t->opt,
                           t->cfg->run.keep_last);
    }
    if (t->dist->size > 1) {
        m2u_dist_barrier();
        rc = m2u_dist_any(rc != 0) ? -1 : 0;
        if (rc && t->dist->rank != 0) m2u_fail("rank 0 failed to write the checkpoint");
    }
    return rc;
}


static void free_trainer(trainer *t) {
    prefetch_stop(t);
    if (t->metrics) fclose(t->metrics);
    m2u_adamw_free(&t->opt);
    free(t->order);
    free(t->eligible);
    free(t->eval_idx);
    if (t->train) m2u_dataset_close(t->train);
    if (t->eval) m2u_dataset_close(t->eval);
    m2u_m2ugen_free(t->mg); /* owns the LLaMA */
    m2u_tokenizer_free(t->tok);
}

/* Before anything large is touched (the weights are only mmap'ed so far): refuse a run whose
 * memory plan (plan.h) exceeds what this node can give, rather than swap or be killed hours in. */
static int check_plan(trainer *t) {
    const m2u_train_config *c = t->cfg;
    m2u_train_model tm = {.tok = t->tok, .mg = t->mg, .bo = t->bo};
    if (m2u_train_plan_make(c, &tm, t->dist->local_size, &t->plan)) return -1;
    size_t avail;
    const char *src = "run.memory_limit";
    if (!strcmp(c->run.memory_limit, "off")) return 0;
    if (strcmp(c->run.memory_limit, "auto") != 0) {
        if (m2u_parse_bytes(c->run.memory_limit, &avail)) {
            char why[256];
            snprintf(why, sizeof why, "%s", m2u_last_error());
            return m2u_train_config_fail(c, "run.memory_limit", "%s (or auto, off)", why);
        }
    } else if (m2u_train_plan_available(&avail, &src)) {
        return 0; /* unknown here: nothing to check against */
    }
    if (m2u_train_plan_fit(c, &t->plan, avail)) return 0;
    char *text = m2u_train_plan_text(c, &t->plan, avail, src);
    int rc = m2u_fail("the run does not fit in this node's memory (run.memory_limit=off skips this check):\n%s",
                      text ? text : "");
    free(text);
    return rc;
}

int m2u_train_run(const m2u_train_config *cfg, const m2u_dist *dist, int resume) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.dist = dist;
    t.order_epoch = -1;
    if (cfg->run.threads > 0) m2u_set_threads(cfg->run.threads);
    int rc = setup_model(&t);
    if (!rc) rc = check_plan(&t);
    if (!rc) {
        m2u_train_model tm = {.tok = t.tok, .mg = t.mg, .bo = t.bo};
        rc = m2u_train_model_apply_precision(cfg, &tm);
        if (!rc && t.plan.packed) rc = m2u_llama_pack_frozen(t.model);
        if (!rc && dist->rank == 0 && (t.plan.packed || t.plan.packed_dropped)) {
            char b0[32];
            if (t.plan.packed)
                m2u_log(M2U_LOG_INFO, "m2u-train: train.packed_weights: the fp32 frozen linears packed for oneDNN's "
                        "brgemm (%s more per rank)", m2u_fmt_bytes(t.plan.packed, b0, sizeof b0));
            else
                m2u_log(M2U_LOG_INFO, "m2u-train: train.packed_weights auto: not packed, the %s of packed copies "
                        "would not fit in this node's memory", m2u_fmt_bytes(t.plan.packed_dropped, b0, sizeof b0));
        }
        if (!rc && dist->rank == 0 && cfg->train.precision == M2U_PRECISION_BF16) {
            size_t src, conv = m2u_llama_frozen_bf16_bytes(t.model, &src, NULL);
            char b0[32], b1[32];
            m2u_log(M2U_LOG_INFO, "m2u-train: precision bf16: frozen weights held as bf16 (%s of copies in place of %s "
                    "stored as f32), %s", m2u_fmt_bytes(conv, b0, sizeof b0), m2u_fmt_bytes(src, b1, sizeof b1),
                    m2u_gemm_bf16_ok() ? "multiplied in bf16 (this CPU has AVX-512 BF16)"
                                       : "multiplied in fp32 (this CPU has no native bf16 products)");
        }
    }
    if (!rc) rc = setup_data(&t);
    if (!rc) rc = m2u_adamw_init(&t.opt, t.mg->n_floats);
    t.ac = (m2u_adamw_config){.beta1 = (float)cfg->train.beta1, .beta2 = (float)cfg->train.beta2,
                              .eps = (float)cfg->train.eps, .weight_decay = (float)cfg->train.weight_decay};
    m2u_rng rng;
    m2u_rng_seed(&rng, (uint64_t)cfg->run.seed);
    memcpy(t.st.rng, rng.s, sizeof t.st.rng);
    if (!rc && resume) {
        char *latest = NULL;
        rc = m2u_ckpt_latest(cfg->run.out_dir, &latest);
        if (!rc && !latest && resume == 1)
            rc = m2u_fail("--resume: no complete checkpoint under %s/checkpoints", cfg->run.out_dir);
        if (!rc && latest) rc = m2u_ckpt_load(latest, &t.st, t.mg->params, t.mg->n_params, &t.opt);
        if (!rc && latest) t.model->step_seed = t.st.model_seed;
        if (!rc && latest && dist->rank == 0)
            m2u_log(M2U_LOG_INFO, "m2u-train: resuming from %s (step %ld)", latest, t.st.step);
        if (!latest) resume = 0; /* --resume-auto with nothing to resume: a fresh start */
        free(latest);
    }
    if (!rc && !resume && cfg->model.init_from[0] && !m2u_is_dir(cfg->model.init_from)) {
        /* a file: the released M2UGen checkpoint (checkpoint.pth or safetensors) */
        int n_loaded = 0;
        rc = m2u_m2ugen_load_released(t.mg, cfg->model.init_from, &n_loaded);
        if (!rc && dist->rank == 0)
            m2u_log(M2U_LOG_INFO, "m2u-train: %d trainable tensors from the M2UGen checkpoint %s", n_loaded,
                    cfg->model.init_from);
    } else if (!rc && !resume && cfg->model.init_from[0]) {
        char *latest = NULL, *p = NULL;
        rc = m2u_ckpt_latest(cfg->model.init_from, &latest);
        if (!rc && !latest) rc = m2u_fail("model.init_from: no complete checkpoint under %s", cfg->model.init_from);
        if (!rc) p = m2u_path_join(latest, "trainable.safetensors");
        m2u_safetensors *st = NULL;
        int n_loaded = 0;
        /* what this stage trains and the earlier one saved; the rest keeps its initialisation */
        if (!rc) rc = m2u_st_open(p, &st);
        if (!rc) rc = m2u_params_load(t.mg->params, t.mg->n_params, st, 0, &n_loaded);
        if (st) m2u_st_close(st);
        if (!rc && dist->rank == 0)
            m2u_log(M2U_LOG_INFO, "m2u-train: %d of %d trainable tensors from %s", n_loaded, t.mg->n_params, p);
        free(p);
        free(latest);
    }
    if (!rc && dist->rank == 0) {
        rc = m2u_mkdir_p(cfg->run.out_dir);
        char *p = rc ? NULL : m2u_path_join(cfg->run.out_dir, "config.yaml");
        if (p) rc = m2u_train_config_save(cfg, p);
        free(p);
        p = rc ? NULL : m2u_path_join(cfg->run.out_dir, "metrics.jsonl");
        if (p && !(t.metrics = fopen(p, resume ? "a+" : "w"))) rc = m2u_fail("%s: cannot open: %s", p, strerror(errno));
        /* a run killed mid-write leaves a torn last line; end it, or the first record of
           the resumed run would be glued to it and lost with it */
        if (t.metrics && resume && fseek(t.metrics, -1, SEEK_END) == 0) {
            int last = fgetc(t.metrics);
            fseek(t.metrics, 0, SEEK_END); /* C requires a positioning call between a read and a write */
            if (last != EOF && last != '\n') fputc('\n', t.metrics);
        }
        free(p);
    }
    if (dist->size > 1) rc = m2u_dist_any(rc != 0) ? (rc ? rc : m2u_fail("another rank failed to start")) : 0;
    if (rc) {
        free_trainer(&t);
        return -1;
    }
    double eval0 = dist->rank == 0 && !resume ? eval_loss(&t) : NAN;
    /* a resumed run does not measure the start again: its first run's log and metrics.jsonl have it */
    char ev0[48];
    loss_text(ev0, sizeof ev0, eval0, resume ? "(measured by the first run)" : "(none)");
    if (dist->rank == 0)
        m2u_log(M2U_LOG_INFO,
                "m2u-train: %s, stage %d, %d rank(s), %lld samples usable (%ld steps/epoch), %ld steps, %zu trainable "
                "parameters in %d tensors; held-out loss %s",
                cfg->run.name, cfg->train.stage, dist->size, (long long)t.n_eligible, t.steps_per_epoch, t.total_steps,
                t.mg->n_floats, t.mg->n_params, ev0);
    char num[32];
    if (t.metrics && !resume)
        fprintf(t.metrics, "{\"event\": \"start\", \"steps\": %ld, \"ranks\": %d, \"eval_loss\": %s}\n", t.total_steps,
                dist->size, json_num(num, sizeof num, eval0));
    if (prefetch_start(&t)) {
        free_trainer(&t);
        return -1;
    }
    m2u_progress pr;
    m2u_progress_start(&pr, "step", t.total_steps);
    double t_start = m2u_now(), comm0 = m2u_dist_comm_seconds();
    long first_step = t.st.step;
    double loss = 0, gn = 0, tokens = 0;
    while (!rc && t.st.step < t.total_steps) {
        double s0 = m2u_now();
        rc = train_step(&t, &loss, &gn, &tokens);
        if (rc) break;
        t.st.step++;
        t.st.tokens += tokens;
        t.st.last_loss = loss;
        double dt = m2u_now() - s0;
        if (dist->rank == 0) {
            char extra[128];
            snprintf(extra, sizeof extra, "loss %.4f lr %.2e %.0f tok/s", loss, lr_at(cfg, t.st.step - 1, t.total_steps),
                     tokens / dt);
            m2u_progress_update(&pr, t.st.step, extra);
            /* every step: the loss curve is what users plot, and the resume test compares it */
            fprintf(t.metrics,
                    "{\"step\": %ld, \"epoch\": %d, \"loss\": %.9g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens\": %.0f, "
                    "\"step_s\": %.4f, \"tokens_per_s\": %.1f}\n",
                    t.st.step, t.st.epoch, loss, lr_at(cfg, t.st.step - 1, t.total_steps), gn, tokens, dt, tokens / dt);
            if (t.st.step % cfg->run.log_every == 0) fflush(t.metrics);
        }
        if (cfg->run.eval_every > 0 && t.st.step % cfg->run.eval_every == 0 && t.st.step < t.total_steps &&
            dist->rank == 0) {
            double e = eval_loss(&t);
            fprintf(t.metrics, "{\"event\": \"eval\", \"step\": %ld, \"eval_loss\": %s}\n", t.st.step,
                    json_num(num, sizeof num, e));
        }
        if (cfg->run.save_every > 0 && t.st.step % cfg->run.save_every == 0 && t.st.step < t.total_steps) rc = save(&t);
    }
    if (!rc) rc = save(&t);
    if (!rc && dist->rank == 0) {
        m2u_progress_end(&pr, t.st.step, NULL);
        double e = eval_loss(&t), wall = m2u_now() - t_start;
        eval_generate(&t, 3);
        long steps = t.st.step - first_step;
        double per = steps ? 1.0 / (double)steps : 0;
        struct rusage ru;
        size_t peak = getrusage(RUSAGE_SELF, &ru) == 0 ? (size_t)ru.ru_maxrss * 1024 : 0; /* Linux: KiB */
        fprintf(t.metrics,
                "{\"event\": \"done\", \"step\": %ld, \"train_loss\": %.6f, \"eval_loss\": %s, \"seconds\": %.3f, "
                "\"step_s\": {\"data\": %.5f, \"forward\": %.5f, \"backward\": %.5f, \"allreduce\": %.5f, "
                "\"optimizer\": %.5f}, \"peak_rss_bytes\": %zu, \"plan_bytes\": %zu}\n",
                t.st.step, t.st.last_loss, json_num(num, sizeof num, e), wall, t.t_data * per, t.t_fwd * per, t.t_bwd * per,
                (m2u_dist_comm_seconds() - comm0) * per, t.t_opt * per, peak, t.plan.per_rank);
        char pk[32], pl[32], ev1[32];
        loss_text(ev1, sizeof ev1, e, "(none)");
        m2u_log(M2U_LOG_INFO, "m2u-train: peak memory of rank 0 %s (resident, weights' touched pages included); plan %s",
                m2u_fmt_bytes(peak, pk, sizeof pk), m2u_fmt_bytes(t.plan.per_rank, pl, sizeof pl));
        m2u_log(M2U_LOG_INFO,
                "m2u-train: %s done: %ld steps, train loss %.4f, held-out loss %s -> %s, %.1f s; per step: data "
                "%.3f s, forward %.3f s, backward %.3f s, all-reduce %.3f s, optimizer %.3f s; checkpoints in "
                "%s/checkpoints",
                cfg->run.name, t.st.step, t.st.last_loss, ev0, ev1, wall, t.t_data * per, t.t_fwd * per, t.t_bwd * per,
                (m2u_dist_comm_seconds() - comm0) * per, t.t_opt * per, cfg->run.out_dir);
    }
    free_trainer(&t);
    return rc;
}
