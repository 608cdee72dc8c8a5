#include "eval_run.h"

#include "batch.h"
#include "checkpoint.h"
#include "config.h"
#include "fileio.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "m2ugen.h"
#include "manifest.h"
#include "model_setup.h"
#include "ops_extra.h"
#include "progress.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_feat_cols[M2U_N_MODALITIES] = {"mert", "vit", "vivit"};

/* the run's model, built exactly as m2u-train builds it (train/model_setup.h) */
typedef m2u_train_model eval_model;

static int build_model(const m2u_train_config *c, eval_model *em) {
    if (m2u_train_model_open(c, em)) return -1;
    em->mg->llm->training = 0;
    return 0;
}

static void free_model(eval_model *em) { m2u_train_model_close(em); }

/* The newest complete checkpoint's trainables, every one required. */
static int load_checkpoint(const char *run_dir, eval_model *em, char **ckpt, long *step, int *n_loaded) {
    char *latest = NULL;
    if (m2u_ckpt_latest(run_dir, &latest)) return -1;
    if (!latest) return m2u_fail("%s: no complete checkpoint under %s/checkpoints", run_dir, run_dir);
    char *p = m2u_path_join(latest, "trainable.safetensors");
    m2u_safetensors *st = NULL;
    int rc = p ? m2u_st_open(p, &st) : m2u_fail("out of memory");
    if (!rc) {
        rc = m2u_params_load(em->mg->params, em->mg->n_params, st, 1, n_loaded);
        if (rc) m2u_fail_prefix("%s (does the run's config.yaml still describe this checkpoint?)", p);
    }
    if (st) m2u_st_close(st);
    free(p);
    if (rc) {
        free(latest);
        return -1;
    }
    const char *b = strrchr(latest, '/');
    b = b ? b + 1 : latest;
    *step = !strncmp(b, "step-", 5) ? strtol(b + 5, NULL, 10) : -1;
    *ckpt = latest;
    return 0;
}

/* ---- samples ------------------------------------------------------------------------------ */

static int kind_in(const char *kinds, const char *kind) {
    size_t n = strlen(kind);
    for (const char *p = kinds; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, kind, n)) return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

static int check_kinds(const char *kinds) {
    static const char *const known[] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};
    if (!kinds[0]) return m2u_fail("--kinds: empty list");
    for (const char *p = kinds; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known && !ok; k++) ok = strlen(known[k]) == l && !strncmp(p, known[k], l);
        if (!ok) return m2u_fail("--kinds: unknown kind '%.*s' (known: mucaps, musicqa, muedit, muimage, muvideo)", (int)l, p);
        p += l + (e ? 1 : 0);
    }
    return 0;
}

static const m2u_text_col k_cols[] = {M2U_TEXT_ID, M2U_TEXT_KIND, M2U_TEXT_CAPTION, M2U_TEXT_INSTRUCTION,
                                      M2U_TEXT_ANSWER, M2U_TEXT_OUTPUT_TEXT};
#define N_COLS ((int)(sizeof k_cols / sizeof *k_cols))

static void free_texts(m2u_sample *s) {
    for (int c = 0; c < N_COLS; c++) {
        free(s->text[k_cols[c]]);
        s->text[k_cols[c]] = NULL;
    }
}

/* The texts a sample needs (not its audio), from its shard. */
static int read_texts(m2u_shard_reader *r, int64_t local, m2u_sample *s) {
    memset(s, 0, sizeof *s);
    for (int c = 0; c < N_COLS; c++)
        if (m2u_shard_get_text(r, k_cols[c], local, &s->text[k_cols[c]], NULL)) {
            free_texts(s);
            return -1;
        }
    return 0;
}

static int read_measured(m2u_shard_reader *r, int64_t local, m2u_eval_item *it) {
    int n = m2u_shard_n_attrs(r);
    m2u_attr_measured_clear(&it->measured);
    if (n <= 0) return 0;
    float *v = malloc((size_t)n * sizeof *v);
    const char **names = malloc((size_t)n * sizeof *names);
    if (!v || !names) {
        free(v);
        free(names);
        return m2u_fail("out of memory");
    }
    int rc = m2u_shard_get_attrs(r, local, v);
    for (int k = 0; k < n; k++) names[k] = m2u_shard_attr_name(r, k);
    if (!rc) {
        m2u_attr_measured_from_columns(&it->measured, names, v, n);
        it->has_measured = 1;
    }
    free(v);
    free(names);
    return rc;
}

/* Selected samples of the view, in order: kind in the list and something to ask at this stage. */
static int select_samples(m2u_dataset *ds, const char *kinds, int stage, long max, int64_t **out, int64_t *n_out) {
    int64_t n = m2u_dataset_count(ds), k = 0;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) return m2u_fail("out of memory");
    for (int64_t i = 0; i < n && (max <= 0 || k < max); i++) {
        int shard;
        int64_t local;
        m2u_shard_reader *r;
        m2u_sample s;
        if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r) ||
            read_texts(r, local, &s)) {
            free(idx);
            return -1;
        }
        const char *q, *a;
        int music;
        if (kind_in(kinds, s.text[M2U_TEXT_KIND] ? s.text[M2U_TEXT_KIND] : "") &&
            m2u_sample_pair(&s, stage, &q, &a, &music) == 0)
            idx[k++] = i;
        free_texts(&s);
    }
    *out = idx;
    *n_out = k;
    return 0;
}

/* ---- one sample --------------------------------------------------------------------------- */

static int answer_one(const m2u_train_config *c, int stage, int max_new, eval_model *em, m2u_dataset *ds, int64_t i,
                      m2u_eval_item *it, int32_t *out) {
    int shard;
    int64_t local;
    m2u_shard_reader *r;
    m2u_sample s;
    if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r) || read_texts(r, local, &s))
        return -1;
    int rc = -1;
    const char *q, *a;
    int music;
    int32_t *ids = NULL;
    size_t n = 0;
    float *feat[M2U_N_MODALITIES] = {0};
    int *present[M2U_N_MODALITIES] = {0};
    if (m2u_sample_pair(&s, stage, &q, &a, &music)) {
        m2u_fail("sample %lld has nothing to ask at stage %d", (long long)i, stage);
        goto done;
    }
    it->id = strdup(s.text[M2U_TEXT_ID] ? s.text[M2U_TEXT_ID] : "");
    it->kind = strdup(s.text[M2U_TEXT_KIND] ? s.text[M2U_TEXT_KIND] : "");
    it->instruction = strdup(q);
    it->reference = strdup(a);
    it->prompt = m2u_prompt_fill(c->train.prompt_template, q);
    if (!it->id || !it->kind || !it->instruction || !it->reference || !it->prompt) {
        m2u_fail("out of memory");
        goto done;
    }
    if (read_measured(r, local, it)) goto done;
    /* the sample's encoder features, for the adapters the model has */
    m2u_m2ugen *mg = em->mg;
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        if (!mg->cfg.use_adapter[g] || m2u_shard_tensor_index(r, k_feat_cols[g]) < 0) continue;
        size_t per = (size_t)mg->cfg.adapter[g].n_tokens * (size_t)mg->cfg.adapter[g].feat_dim;
        feat[g] = calloc(per ? per : 1, sizeof(float));
        present[g] = calloc(1, sizeof(int));
        if (!feat[g] || !present[g]) {
            m2u_fail("out of memory");
            goto done;
        }
        if (m2u_dataset_get_tensor_f32(ds, i, k_feat_cols[g], feat[g], per, present[g])) {
            m2u_fail_prefix("feature '%s' of sample %s", k_feat_cols[g], it->id);
            goto done;
        }
        it->has_feature[g] = present[g][0];
    }
    if (m2u_tokenizer_encode(em->tok, it->prompt, strlen(it->prompt), 1, &ids, &n)) goto done;
    it->n_prompt_tokens = (int)n;
    {
        /* a forward over the prompt sets the sample's adapter inputs (B = 1), as the trainer's held-out prompts */
        const float *fp[M2U_N_MODALITIES];
        const int *pp[M2U_N_MODALITIES];
        for (int g = 0; g < M2U_N_MODALITIES; g++) fp[g] = feat[g], pp[g] = present[g];
        int aud_pos = -1, n_out = 0, nm;
        double ce, mse;
        m2u_sample_config sc = {.max_new_tokens = max_new, .temperature = 0.0f, .top_p = 1.0f, .stop_at_eos = 1};
        mg->llm->training = 0;
        if (m2u_m2ugen_forward(mg, ids, NULL, 1, (int)n, c->train.ignore_index, fp, pp, &aud_pos, NULL, NULL, &ce,
                               &mse, &nm) ||
            m2u_llama_generate(mg->llm, ids, (int)n, &sc, out, &n_out, NULL))
            goto done;
        it->n_new_tokens = n_out;
        /* the text without [AUD] ids and the EOS */
        int k = 0;
        for (int j = 0; j < n_out; j++) {
            if (em->n_aud && out[j] >= em->aud0 && out[j] < em->aud0 + em->n_aud) {
                it->n_aud_tokens++;
                continue;
            }
            out[k++] = out[j];
        }
        if (m2u_tokenizer_decode(em->tok, out, (size_t)k, 1, &it->prediction)) goto done;
    }
    rc = 0;
done:
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        free(feat[g]);
        free(present[g]);
    }
    free(ids);
    free_texts(&s);
    return rc;
}

static void item_free(m2u_eval_item *it) {
    free(it->id);
    free(it->kind);
    free(it->instruction);
    free(it->prompt);
    free(it->prediction);
    free(it->reference);
    memset(it, 0, sizeof *it);
}

void m2u_eval_run_result_free(m2u_eval_run_result *r) {
    for (int i = 0; i < r->n_items; i++) item_free(&r->items[i]);
    free(r->items);
    free(r->config_path);
    free(r->checkpoint);
    free(r->llm);
    free(r->data);
    free(r->split);
    free(r->kinds);
    free(r->prompt_template);
    memset(r, 0, sizeof *r);
}

int m2u_eval_run_generate(const m2u_eval_run_options *o, m2u_eval_progress_fn progress, void *ctx,
                          m2u_eval_run_result *out) {
    memset(out, 0, sizeof *out);
    if (!o->run_dir) return m2u_fail("no run directory");
    const char *split = o->split ? o->split : "test";
    if (strcmp(split, "test") && strcmp(split, "valid") && strcmp(split, "train"))
        return m2u_fail("--split %s: expected test, valid or train", split);
    const char *kinds = o->kinds ? o->kinds : "mucaps,musicqa";
    if (check_kinds(kinds)) return -1;
    int max_new = o->max_new_tokens > 0 ? o->max_new_tokens : 48;
    char *cfg_path = o->config ? strdup(o->config) : m2u_path_join(o->run_dir, "config.yaml");
    if (!cfg_path) return m2u_fail("out of memory");
    char *data_ov = NULL;
    if (o->data) {
        size_t l = strlen(o->data) + 16;
        data_ov = malloc(l);
        if (data_ov) snprintf(data_ov, l, "train.data=%s", o->data);
    }
    const char *ovs[1] = {data_ov};
    m2u_train_config c;
    if (m2u_train_config_load(cfg_path, ovs, data_ov ? 1 : 0, 0, &c)) {
        free(data_ov);
        m2u_fail_prefix("the run's config");
        free(cfg_path);
        return -1;
    }
    free(data_ov);
    int stage = o->stage > 0 ? o->stage : c.train.stage;
    int threads = o->threads > 0 ? o->threads : c.run.threads;
    if (threads > 0) omp_set_num_threads(threads);
    eval_model em = {0};
    m2u_dataset *ds = NULL;
    int64_t *idx = NULL, n_sel = 0;
    int32_t *gen = NULL;
    int rc = -1;
    out->config_path = cfg_path;
    out->llm = strdup(c.model.llm);
    out->data = strdup(c.train.data);
    out->split = strdup(split);
    out->kinds = strdup(kinds);
    out->prompt_template = strdup(c.train.prompt_template);
    out->stage = stage;
    out->max_new_tokens = max_new;
    if (!out->llm || !out->data || !out->split || !out->kinds || !out->prompt_template) {
        m2u_fail("out of memory");
        goto done;
    }
    if (build_model(&c, &em) ||
        load_checkpoint(o->run_dir, &em, &out->checkpoint, &out->checkpoint_step, &out->n_trainables))
        goto done;
    m2u_dataset_options dopt = {.split = split};
    if (m2u_dataset_open(c.train.data, &dopt, &ds)) goto done;
    if (select_samples(ds, kinds, stage, o->max_samples, &idx, &n_sel)) goto done;
    if (n_sel == 0) {
        m2u_fail("%s: split '%s' has no samples of kind(s) %s to ask at stage %d (another --split or --kinds?)",
                 c.train.data, split, kinds, stage);
        goto done;
    }
    out->items = calloc((size_t)n_sel, sizeof *out->items);
    gen = malloc((size_t)max_new * sizeof *gen);
    if (!out->items || !gen) {
        m2u_fail("out of memory");
        goto done;
    }
    if (progress) progress(ctx, 0, (long)n_sel, NULL);
    double t0 = m2u_now();
    for (int64_t k = 0; k < n_sel; k++) {
        m2u_eval_item *it = &out->items[k];
        int arc = answer_one(&c, stage, max_new, &em, ds, idx[k], it, gen);
        out->n_items = (int)k + 1;
        if (arc) goto done;
        out->new_tokens += it->n_new_tokens;
        out->seconds = m2u_now() - t0;
        if (progress) progress(ctx, (long)k + 1, (long)n_sel, it);
    }
    rc = 0;
done:
    free(gen);
    free(idx);
    if (ds) m2u_dataset_close(ds);
    free_model(&em);
    m2u_train_config_free(&c);
    if (rc) m2u_eval_run_result_free(out);
    return rc;
}
