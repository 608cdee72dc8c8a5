#include "eval_run.h"

#include "backend.h"
#include "batch.h"
#include "checkpoint.h"
#include "config.h"
#include "fileio.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "m2ugen.h"
#include "manifest.h"
#include "model_setup.h"
#include "music.h"
#include "music_gen.h"
#include "ops_extra.h"
#include "progress.h"
#include "run_music.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- answering: prompts one by one, decoding in batches ------------------------------------ */

/* What one sample of a batch holds while it is answered. */
typedef struct {
    int32_t *ids;       /* BOS + prompt tokens */
    size_t n;
    int32_t *out;       /* new tokens [max_new] */
    int n_out, done;
    m2u_kv_cache kc;
} pending;

/* The sample's encoder features, for the adapters the model has: feat[g] [n_tokens, feat_dim]
 * and present[g] (one int) malloc'ed, NULL where the model has no adapter or the shard no column;
 * it->has_feature[g] set.  The caller frees both. */
static int sample_features(const m2u_m2ugen *mg, m2u_dataset *ds, m2u_shard_reader *r, int64_t i, m2u_eval_item *it,
                           float *feat[M2U_N_MODALITIES], int *present[M2U_N_MODALITIES]) {
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        if (!mg->cfg.use_adapter[g] || m2u_shard_tensor_index(r, m2u_train_feature_column(g)) < 0) continue;
        size_t per = (size_t)mg->cfg.adapter[g].n_tokens * (size_t)mg->cfg.adapter[g].feat_dim;
        feat[g] = calloc(per ? per : 1, sizeof(float));
        present[g] = calloc(1, sizeof(int));
        if (!feat[g] || !present[g]) return m2u_fail("out of memory");
        if (m2u_dataset_get_tensor_f32(ds, i, m2u_train_feature_column(g), feat[g], per, present[g]))
            return m2u_fail_prefix("feature '%s' of sample %s", m2u_train_feature_column(g), it->id);
        it->has_feature[g] = present[g][0];
    }
    return 0;
}

/* The sample's texts, measured attributes and prompt tokens; then one forward
 * over the prompt with its encoder features, which sets its adapter inputs
 * (B = 1, as the trainer's held-out prompts), and the prompt into its own KV
 * cache.  The adapter rows are copied to rows_out [A][C]; logits [V] are the
 * prompt's last. */
static int prefill_one(const m2u_train_config *c, int stage, int max_new, eval_model *em, m2u_dataset *ds,
                       int64_t i, m2u_eval_item *it, pending *pd, float *rows_out, float *logits) {
    int shard;
    int64_t local;
    m2u_shard_reader *r;
    m2u_sample s;
    if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r) || read_texts(r, local, &s))
        return -1;
    int rc = -1;
    const char *q, *a;
    int music;
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
    m2u_m2ugen *mg = em->mg;
    if (sample_features(mg, ds, r, i, it, feat, present)) goto done;
    if (m2u_tokenizer_encode(em->tok, it->prompt, strlen(it->prompt), 1, &pd->ids, &pd->n)) goto done;
    it->n_prompt_tokens = (int)pd->n;
    {
        const float *fp[M2U_N_MODALITIES];
        const int *pp[M2U_N_MODALITIES];
        for (int g = 0; g < M2U_N_MODALITIES; g++) fp[g] = feat[g], pp[g] = present[g];
        int aud_pos = -1, nm;
        double ce, mse;
        mg->llm->training = 0;
        if (m2u_m2ugen_forward(mg, pd->ids, NULL, 1, (int)pd->n, c->train.ignore_index, fp, pp, &aud_pos, NULL, NULL,
                               &ce, &mse, &nm) ||
            m2u_kv_cache_init(&pd->kc, mg->llm, (int)pd->n + max_new) ||
            m2u_llama_forward_cached(mg->llm, &pd->kc, pd->ids, (int)pd->n, logits))
            goto done;
        int A = mg->llm->spec.adapter_layers, C = mg->llm->cfg.hidden_size;
        if (A) memcpy(rows_out, mg->llm->adapter_in, (size_t)A * C * sizeof(float));
    }
    rc = 0;
done:
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        free(feat[g]);
        free(present[g]);
    }
    free_texts(&s);
    return rc;
}

static int is_gen_kind(const char *k) {
    return !strcmp(k, "mucaps") || !strcmp(k, "muedit") || !strcmp(k, "muimage") || !strcmp(k, "muvideo");
}

/* The prediction text: the new tokens without [AUD] ids and the EOS.  For a generation kind
 * whose answer has [AUD0], the tokens through it too: --musicgen's conditioning comes from them
 * (one forward, m2u_run_aud_states) rather than from answering the prompt a second time. */
static int finish_one(eval_model *em, m2u_eval_item *it, pending *pd) {
    it->n_new_tokens = pd->n_out;
    for (int j = 0; em->n_aud && is_gen_kind(it->kind) && j < pd->n_out; j++) {
        if (pd->out[j] != em->aud0) continue;
        size_t n = pd->n + (size_t)j + 1;
        if (!(it->aud_seq = malloc(n * sizeof *it->aud_seq))) return m2u_fail("out of memory");
        memcpy(it->aud_seq, pd->ids, pd->n * sizeof *it->aud_seq);
        memcpy(it->aud_seq + pd->n, pd->out, ((size_t)j + 1) * sizeof *it->aud_seq);
        it->n_aud_seq = (int)n;
        break;
    }
    int k = 0;
    for (int j = 0; j < pd->n_out; j++) {
        if (em->n_aud && pd->out[j] >= em->aud0 && pd->out[j] < em->aud0 + em->n_aud) {
            it->n_aud_tokens++;
            continue;
        }
        pd->out[k++] = pd->out[j];
    }
    return m2u_tokenizer_decode(em->tok, pd->out, (size_t)k, 1, &it->prediction);
}

/* Answer samples idx[0..nb) greedily: each prompt is prefilled alone (its own
 * adapter inputs and cache), then all unfinished sequences decode together,
 * one m2u_llama_decode_step per token, so the linears run as one GEMM over the
 * batch.  Stops a sequence at EOS (kept, then dropped from the text) or after
 * max_new tokens, exactly as m2u_llama_generate does for one. */
static int answer_batch(const m2u_train_config *c, int stage, int max_new, eval_model *em, m2u_dataset *ds,
                        const int64_t *idx, int nb, m2u_eval_item *items) {
    m2u_llama *llm = em->mg->llm;
    int V = llm->cfg.vocab_size, A = llm->spec.adapter_layers, C = llm->cfg.hidden_size, eos = llm->cfg.eos_token_id;
    pending *pd = calloc((size_t)nb, sizeof *pd);
    float *rows = calloc((size_t)(A ? A : 1) * nb * C, sizeof(float)); /* [nb][A][C], per sample */
    float *act_rows = calloc((size_t)(A ? A : 1) * nb * C, sizeof(float)); /* [A][n_act][C] */
    float *logits = malloc((size_t)nb * V * sizeof(float));
    m2u_kv_cache **act = calloc((size_t)nb, sizeof *act);
    int *who = calloc((size_t)nb, sizeof *who);
    int32_t *tok = calloc((size_t)nb, sizeof *tok);
    m2u_sample_config sc = {.max_new_tokens = max_new, .temperature = 0.0f, .top_p = 1.0f, .stop_at_eos = 1};
    uint64_t rng = 0;
    int rc = -1;
    if (!pd || !rows || !act_rows || !logits || !act || !who || !tok) {
        m2u_fail("out of memory");
        goto done;
    }
    for (int j = 0; j < nb; j++) {
        pd[j].out = malloc((size_t)max_new * sizeof(int32_t));
        if (!pd[j].out) {
            m2u_fail("out of memory");
            goto done;
        }
        if (prefill_one(c, stage, max_new, em, ds, idx[j], &items[j], &pd[j], rows + (size_t)j * A * C, logits))
            goto done;
        int32_t t = m2u_sample_token(logits, V, &sc, &rng);
        pd[j].out[pd[j].n_out++] = t;
        pd[j].done = t == eos || pd[j].n_out >= max_new;
    }
    for (;;) {
        int n = 0;
        for (int j = 0; j < nb; j++)
            if (!pd[j].done) act[n] = &pd[j].kc, who[n] = j, tok[n] = pd[j].out[pd[j].n_out - 1], n++;
        if (!n) break;
        for (int a = 0; a < A; a++)
            for (int k = 0; k < n; k++)
                memcpy(act_rows + ((size_t)a * n + k) * C, rows + ((size_t)who[k] * A + a) * C, (size_t)C * sizeof(float));
        llm->adapter_in = A ? act_rows : NULL;
        if (m2u_llama_decode_step(llm, act, n, tok, logits)) goto done;
        for (int k = 0; k < n; k++) {
            pending *p = &pd[who[k]];
            int32_t t = m2u_sample_token(logits + (size_t)k * V, V, &sc, &rng);
            p->out[p->n_out++] = t;
            p->done = t == eos || p->n_out >= max_new;
        }
    }
    for (int j = 0; j < nb; j++)
        if (finish_one(em, &items[j], &pd[j])) goto done;
    rc = 0;
done:
    llm->adapter_in = NULL; /* it pointed into act_rows */
    for (int j = 0; pd && j < nb; j++) {
        free(pd[j].ids);
        free(pd[j].out);
        m2u_kv_cache_free(&pd[j].kc);
    }
    free(pd), free(rows), free(act_rows), free(logits), free(act), free(who), free(tok);
    return rc;
}

/* ---- --musicgen: the generation kinds' clips ----------------------------------------------- */

/* The run must be able to make music, and MusicGen's conditioning must be the projector's width. */
static int open_music(const m2u_eval_run_options *o, const eval_model *em, m2u_music **mu) {
    if (!o->music_dir) return m2u_fail("--musicgen needs the clips' directory (music_dir)");
    if (!em->mg->cfg.use_projector)
        return m2u_fail("--musicgen: the run's model has no output projector (model.decoder); it cannot make music");
    if (!em->n_aud) return m2u_fail("--musicgen: the run's model has no [AUD] tokens (model.aud_tokens)");
    if (m2u_music_open(o->musicgen, 0, mu)) return m2u_fail_prefix("--musicgen %s", o->musicgen);
    if (m2u_music_check_projector(*mu, &em->mg->cfg.projector)) return m2u_fail_prefix("--musicgen %s", o->musicgen);
    return 0;
}

/* Each answered item of a generation kind whose answer has the [AUD] block: the conditioning of
 * its batch answer (m2u_run_aud_states over the prompt and the answer through [AUD0], with its
 * own features) -> MusicGen -> music_dir/<file id>.wav and a predictions.jsonl line.
 * Clip k (in item order among the generation kinds) is sampled with seed + k, so a clip does not
 * depend on which other samples were selected before it only through their count. */
static int make_music(const m2u_eval_run_options *o, const m2u_train_config *c, eval_model *em, m2u_dataset *ds,
                      m2u_music *mu, const int64_t *idx, m2u_eval_run_result *out) {
    if (m2u_mkdir_p(o->music_dir)) return m2u_fail_prefix("--musicgen output %s", o->music_dir);
    double secs = o->music_seconds > 0 ? o->music_seconds : 10.0;
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(mu->lm);
    m2u_musicgen_gen_opts mo = m2u_musicgen_default_opts(m2u_music_max_length(mu, secs));
    mo.guidance_scale = o->guidance > 0 ? (float)o->guidance : lc->guidance_scale;
    char *buf = strdup(""), *pp = m2u_path_join(o->music_dir, "predictions.jsonl");
    size_t len = 0;
    int rc = -1;
    long k = 0;
    double t0 = m2u_now();
    if (!buf || !pp) {
        m2u_fail("out of memory");
        goto done;
    }
    for (int j = 0; j < out->n_items; j++) {
        m2u_eval_item *it = &out->items[j];
        if (!is_gen_kind(it->kind)) continue;
        out->n_music_asked++;
        it->music = 1;
        int shard, ok = 0;
        int64_t local;
        m2u_shard_reader *r;
        float *feat[M2U_N_MODALITIES] = {0};
        int *present[M2U_N_MODALITIES] = {0}, pres[M2U_N_MODALITIES] = {0};
        char *line = NULL, name[300], *wp = NULL;
        float *states = NULL;
        m2u_music_clip clip;
        memset(&clip, 0, sizeof clip);
        cJSON *lj = NULL;
        if (m2u_dataset_locate(ds, idx[j], &shard, &local) || m2u_dataset_shard(ds, shard, &r) ||
            sample_features(em->mg, ds, r, idx[j], it, feat, present))
            goto next;
        for (int g = 0; g < M2U_N_MODALITIES; g++) pres[g] = present[g] ? present[g][0] : 0;
        if (it->aud_seq && m2u_run_aud_states(em, c->train.ignore_index, it->aud_seq, it->n_aud_seq, feat, pres, &states))
            goto next;
        if (states) {
            mo.seed = (uint64_t)o->seed + (uint64_t)k;
            m2u_music_file_id(it->id, name, sizeof name - 4);
            strcat(name, ".wav");
            if (!(wp = m2u_path_join(o->music_dir, name))) {
                m2u_fail("out of memory");
                goto next;
            }
            if (m2u_music_from_states(mu, states, NULL, em->mg->cfg.projector.n_out, &mo, &clip) ||
                m2u_wav_write_pcm16(wp, clip.wav, clip.n, m2u_music_sample_rate(mu)))
                goto next;
            lj = cJSON_CreateObject();
            if (!lj || !cJSON_AddStringToObject(lj, "id", it->id) || !cJSON_AddStringToObject(lj, "audio", name) ||
                !cJSON_AddStringToObject(lj, "text", it->prediction ? it->prediction : "") || !(line = cJSON_PrintUnformatted(lj))) {
                m2u_fail("out of memory");
                goto next;
            }
            size_t ll = strlen(line);
            char *nb = realloc(buf, len + ll + 2);
            if (!nb) {
                m2u_fail("out of memory");
                goto next;
            }
            buf = nb;
            memcpy(buf + len, line, ll);
            len += ll;
            buf[len++] = '\n';
            buf[len] = 0;
            it->music = 2;
            out->n_music_written++;
        }
        k++;
        ok = 1;
    next:
        for (int g = 0; g < M2U_N_MODALITIES; g++) free(feat[g]), free(present[g]);
        free(states), free(wp), free(line);
        cJSON_Delete(lj);
        m2u_music_clip_free(&clip);
        if (!ok) {
            m2u_fail_prefix("--musicgen, sample %s", it->id);
            goto done;
        }
    }
    /* written even when empty: every sample is then scored as not generated */
    if (m2u_write_file_atomic(pp, buf, len)) goto done;
    out->music_seconds = m2u_now() - t0;
    rc = 0;
done:
    free(buf);
    free(pp);
    return rc;
}

static void item_free(m2u_eval_item *it) {
    free(it->id);
    free(it->kind);
    free(it->instruction);
    free(it->prompt);
    free(it->prediction);
    free(it->reference);
    free(it->aud_seq);
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
    if (threads > 0) m2u_set_threads(threads);
    eval_model em = {0};
    m2u_dataset *ds = NULL;
    m2u_music *mu = NULL;
    int64_t *idx = NULL, n_sel = 0;
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
    m2u_dataset_options dopt = {.split = split, .no_verify = o->no_verify || !c.train.verify};
    if (m2u_dataset_open(c.train.data, &dopt, &ds)) goto done;
    /* a feature column of another shape would be zero-padded into the adapter's input */
    if (m2u_train_model_check_dataset(&c, em.mg, ds, 0)) goto done;
    if (o->musicgen && open_music(o, &em, &mu)) goto done;
    if (select_samples(ds, kinds, stage, o->max_samples, &idx, &n_sel)) goto done;
    if (n_sel == 0) {
        m2u_fail("%s: split '%s' has no samples of kind(s) %s to ask at stage %d (another --split or --kinds?)",
                 c.train.data, split, kinds, stage);
        goto done;
    }
    out->items = calloc((size_t)n_sel, sizeof *out->items);
    if (!out->items) {
        m2u_fail("out of memory");
        goto done;
    }
    if (progress) progress(ctx, 0, (long)n_sel, NULL);
    double t0 = m2u_now();
    int batch = o->batch > 0 ? o->batch : 8;
    for (int64_t k = 0; k < n_sel; k += batch) {
        int nb = n_sel - k < batch ? (int)(n_sel - k) : batch;
        int arc = answer_batch(&c, stage, max_new, &em, ds, idx + k, nb, out->items + k);
        out->n_items = (int)(k + nb);
        if (arc) goto done;
        for (int j = 0; j < nb; j++) out->new_tokens += out->items[k + j].n_new_tokens;
        out->seconds = m2u_now() - t0;
        if (progress) progress(ctx, (long)(k + nb), (long)n_sel, &out->items[k + nb - 1]);
    }
    if (mu && make_music(o, &c, &em, ds, mu, idx, out)) goto done;
    rc = 0;
done:
    free(idx);
    if (mu) m2u_music_close(mu);
    if (ds) m2u_dataset_close(ds);
    free_model(&em);
    m2u_train_config_free(&c);
    if (rc) m2u_eval_run_result_free(out);
    return rc;
}
