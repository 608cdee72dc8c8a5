/* A trained M2UGen run as a music maker (shared by m2u-generate and m2u-eval run --musicgen):
 * open the run (its config.yaml and newest checkpoint, or a released-layout checkpoint), turn a
 * user's media into the adapters' features, and answer a prompt greedily with the KV cache,
 * taking the [AUD] block's hidden states through the output projector.  The numeric work of
 * making the clip is models/generate/music.h.  Functions return 0, or -1 after m2u_fail();
 * nothing here prints. */
#include "run_music.h"

#include "builtin_features.h"
#include "checkpoint.h"
#include "decode.h"
#include "fileio.h"
#include "frames.h"
#include "m2u_error.h"
#include "music.h"
#include "prompt.h"
#include "safetensors.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>
void m2u_run_close(m2u_run_model *r) {
    m2u_train_model_close(&r->em);
    if (r->have_config) m2u_train_config_free(&r->c);
    free(r->checkpoint);
    free(r->config_path);
}

/* ckpt_file: a checkpoint in the released M2UGen layout (checkpoint.pth / safetensors, m2u-export
 * m2ugen's output) loaded instead of the run's newest checkpoint; the run's config.yaml still
 * describes the model (LLaMA directory, LoRA rank, adapters, projector). */
int m2u_run_open(const char *run_dir, const char *ckpt_file, m2u_run_model *r) {
    memset(r, 0, sizeof *r);
    r->config_path = m2u_path_join(run_dir, "config.yaml");
    if (!r->config_path) return m2u_fail("out of memory");
    if (!m2u_file_exists(r->config_path)) return m2u_fail("%s: no config.yaml (is %s an m2u-train run directory?)", run_dir, run_dir);
    if (m2u_train_config_load(r->config_path, NULL, 0, 0, &r->c)) return m2u_fail_prefix("the run's config");
    r->have_config = 1;
    if (m2u_train_model_open(&r->c, &r->em)) return -1;
    r->em.mg->llm->training = 0;
    if (!r->em.mg->cfg.use_projector)
        return m2u_fail("%s: the run's model has no output projector (model.decoder); it cannot make music", r->config_path);
    if (!r->em.n_aud) return m2u_fail("%s: the run's model has no [AUD] tokens (model.aud_tokens)", r->config_path);
    if (ckpt_file) {
        int n_loaded = 0;
        if (!(r->checkpoint = strdup(ckpt_file))) return m2u_fail("out of memory");
        if (m2u_m2ugen_load_released(r->em.mg, ckpt_file, &n_loaded))
            return m2u_fail_prefix("--checkpoint %s (with the model %s describes)", ckpt_file, r->config_path);
        return 0;
    }
    if (m2u_ckpt_latest(run_dir, &r->checkpoint)) return -1;
    if (!r->checkpoint) return m2u_fail("%s: no complete checkpoint under %s/checkpoints", run_dir, run_dir);
    char *p = m2u_path_join(r->checkpoint, "trainable.safetensors");
    m2u_safetensors *st = NULL;
    int n_loaded = 0, rc = p ? m2u_st_open(p, &st) : m2u_fail("out of memory");
    if (!rc) {
        rc = m2u_params_load(r->em.mg->params, r->em.mg->n_params, st, 1, &n_loaded);
        if (rc) m2u_fail_prefix("%s (does the run's config.yaml still describe this checkpoint?)", p);
    }
    if (st) m2u_st_close(st);
    free(p);
    return rc;
}

/* The features m2u-dataset would store for the user's media, in the adapters' shapes: the
 * real encoder's when one is given (--mert/--vit/--vivit DIR, as m2u-dataset build --mert ...:
 * MERT layer means of the first 10 s, ViT / ViViT last_hidden_state), else the built-in ones
 * (data/build/builtin_features.h).  A modality the model has no adapter for, or features of
 * another shape than its adapter takes, is refused. */
int m2u_run_media_features(const m2u_run_model *r, const m2u_run_encoders *enc, const char *const media[3], float *feat[3],
                          int present[3]) {
    static const char *const names[3] = {"--music", "--image", "--video"};
    const m2u_m2ugen *mg = r->em.mg;
    for (int g = 0; g < 3; g++) {
        feat[g] = NULL, present[g] = 0;
        if (!media[g]) continue;
        int rows = g == 0 ? 25 : g == 1 ? 197 : 3137, cols = g == 0 ? 1024 : 768, size = 224, frames = 32;
        int rate = 24000;
        const m2u_vit *v = g == 1 ? enc->vit : g == 2 ? enc->vivit : NULL;
        if (g == 0 && enc->mert) {
            const m2u_mert_config *mc = m2u_mert_config_of(enc->mert);
            rows = mc->layers + 1, cols = mc->dims.hidden, rate = mc->sampling_rate;
        } else if (v) {
            const m2u_vit_config *vc = m2u_vit_config_of(v);
            rows = vc->n_tokens, cols = vc->dims.hidden, size = vc->image_h, frames = vc->frames;
        }
        if (!mg->cfg.use_adapter[g])
            return m2u_fail("%s: the run's model has no adapter for this modality (model.modalities)", names[g]);
        if (mg->cfg.adapter[g].n_tokens != rows || mg->cfg.adapter[g].feat_dim != cols)
            return m2u_fail("%s: the run's adapter takes [%d, %d] features, %s gives [%d, %d]", names[g],
                            mg->cfg.adapter[g].n_tokens, mg->cfg.adapter[g].feat_dim,
                            (g == 0 ? enc->mert != NULL : v != NULL) ? "the encoder" : "the built-in feature", rows,
                            cols);
        feat[g] = malloc((size_t)rows * cols * sizeof(float));
        if (!feat[g]) return m2u_fail("out of memory");
        int rc;
        if (g == 0) {
            float *pcm = NULL;
            int64_t n = 0;
            rc = m2u_audio_decode(media[g], rate, &pcm, &n, NULL);
            /* the dataset's clips are 10 s: the first 10 s */
            long use = n < 10L * rate ? (long)n : 10L * rate;
            if (!rc && enc->mert) rc = m2u_mert_layer_means(enc->mert, NULL, pcm, use, feat[g]);
            else if (!rc) rc = m2u_builtin_mert(pcm, (size_t)use, rate, feat[g]);
            free(pcm);
        } else {
            uint8_t *rgb = NULL;
            if (g == 1) rc = m2u_image_load(media[g], size, size, M2U_FIT_CROP, &rgb, NULL);
            else rc = m2u_video_frames(media[g], frames, size, size, &rgb, NULL);
            if (!rc && v) rc = m2u_vit_features(v, rgb, feat[g]);
            else if (!rc) rc = g == 1 ? m2u_builtin_vit(rgb, feat[g]) : m2u_builtin_vivit(rgb, feat[g]);
            free(rgb);
        }
        if (rc) return m2u_fail_prefix("%s %s", names[g], media[g]);
        present[g] = 1;
    }
    return 0;
}

/* Greedy answer with the KV cache (as m2u-eval answers): stops at EOS, at [AUD0] (the rest of the
 * block is then appended as ids, as the trainer lays it out: prompt.h), or after max_new tokens.
 * *states: the projector's conditioning [n_out, out_dim] / target_scale, or NULL with no [AUD0]. */
int m2u_run_aud_states(m2u_train_model *em, int ignore_index, const int32_t *seq, int n, float *const feat[3],
                       const int present[3], float **states) {
    *states = NULL;
    m2u_m2ugen *mg = em->mg;
    m2u_llama *llm = mg->llm;
    int C = llm->cfg.hidden_size, aud0 = em->aud0, n_aud = em->n_aud;
    if (n < 2 || !n_aud || seq[n - 1] != aud0) return m2u_fail("internal: the sequence does not end with [AUD0]");
    int32_t *all = malloc(((size_t)n + (size_t)n_aud) * sizeof *all);
    float *x = malloc((size_t)n_aud * C * sizeof *x), *tmp = malloc((size_t)C * sizeof *tmp);
    int rc = -1, nn = n, nm;
    double ce, mse;
    const float *fp[3] = {feat[0], feat[1], feat[2]};
    int pres[3] = {present[0], present[1], present[2]};
    const int *pp[3] = {&pres[0], &pres[1], &pres[2]};
    if (!all || !x || !tmp) {
        m2u_fail("out of memory");
        goto done;
    }
    memcpy(all, seq, (size_t)n * sizeof *all);
    /* the whole [AUD] block, then one forward over the sequence with the same features: the
     * projector input is h_last[p .. p+n_aud) + embed([AUD0..]) as in training (m2ugen.c),
     * p = the position whose hidden state predicted [AUD0] */
    for (int k = 1; k < n_aud; k++) all[nn++] = aud0 + k;
    int ap = n - 2;
    llm->adapter_in = NULL;
    if (m2u_m2ugen_forward(mg, all, NULL, 1, nn, ignore_index, fp, pp, &ap, NULL, NULL, &ce, &mse, &nm)) goto done;
    const float *h = m2u_llama_last_hidden(llm);
    for (int k = 0; k < n_aud; k++) {
        /* the [AUD] rows are usually added tokens, outside the frozen table */
        const float *e = m2u_llama_embed_row(llm, aud0 + k, tmp);
        for (int c = 0; c < C; c++) x[(size_t)k * C + c] = h[((size_t)ap + k) * C + c] + e[c];
    }
    rc = m2u_music_states_from_aud(&mg->proj, x, states);
done:
    free(all), free(x), free(tmp);
    return rc;
}

int m2u_run_answer(m2u_train_model *em, const char *prompt_template, int ignore_index, const char *instruction,
                   float *const feat[3], const int present[3], int max_new, char **answer, float **states) {
    *answer = NULL, *states = NULL;
    m2u_m2ugen *mg = em->mg;
    m2u_llama *llm = mg->llm;
    int V = llm->cfg.vocab_size, C = llm->cfg.hidden_size, A = llm->spec.adapter_layers, eos = llm->cfg.eos_token_id;
    int aud0 = em->aud0, n_aud = em->n_aud;
    char *prompt = m2u_prompt_fill(prompt_template, instruction);
    int32_t *ids = NULL, *all = NULL;
    size_t n = 0;
    float *logits = malloc((size_t)V * sizeof(float)), *rows = calloc((size_t)(A ? A : 1) * C, sizeof(float));
    m2u_kv_cache kc;
    memset(&kc, 0, sizeof kc);
    int rc = -1, have_kc = 0;
    const float *fp[3] = {feat[0], feat[1], feat[2]};
    int pres[3] = {present[0], present[1], present[2]};
    const int *pp[3] = {&pres[0], &pres[1], &pres[2]};
    if (!prompt || !logits || !rows) {
        m2u_fail("out of memory");
        goto done;
    }
    if (m2u_tokenizer_encode(em->tok, prompt, strlen(prompt), 1, &ids, &n)) goto done;
    all = malloc((n + (size_t)max_new + (size_t)n_aud) * sizeof *all);
    if (!all) {
        m2u_fail("out of memory");
        goto done;
    }
    memcpy(all, ids, n * sizeof *ids);
    int aud_m1 = -1, nn = (int)n, dummy_pos = -1, nm;
    double ce, mse;
    if (m2u_m2ugen_forward(mg, ids, NULL, 1, (int)n, ignore_index, fp, pp, &dummy_pos, NULL, NULL, &ce, &mse,
                           &nm) ||
        m2u_kv_cache_init(&kc, llm, (int)n + max_new))
        goto done;
    have_kc = 1;
    if (A) memcpy(rows, llm->adapter_in, (size_t)A * C * sizeof(float));
    if (m2u_llama_forward_cached(llm, &kc, ids, (int)n, logits)) goto done;
    m2u_sample_config sc = {.max_new_tokens = max_new, .temperature = 0.0f, .top_p = 1.0f, .stop_at_eos = 1};
    uint64_t rng = 0;
    for (int step = 0; step < max_new; step++) {
        int32_t t = m2u_sample_token(logits, V, &sc, &rng);
        if (t == eos) break;
        all[nn++] = t;
        if (t == aud0) {
            aud_m1 = nn - 2; /* the position whose hidden state predicted [AUD0] */
            break;
        }
        if (step + 1 == max_new) break;
        m2u_kv_cache *kp = &kc;
        llm->adapter_in = A ? rows : NULL;
        if (m2u_llama_decode_step(llm, &kp, 1, &t, logits)) goto done;
    }
    llm->adapter_in = NULL;
    /* the answer text without [AUD] ids */
    {
        int32_t *txt = malloc((size_t)(nn - (int)n + 1) * sizeof *txt);
        int k = 0;
        if (!txt) {
            m2u_fail("out of memory");
            goto done;
        }
        for (int j = (int)n; j < nn; j++)
            if (!(all[j] >= aud0 && all[j] < aud0 + n_aud)) txt[k++] = all[j];
        int e = m2u_tokenizer_decode(em->tok, txt, (size_t)k, 1, answer);
        free(txt);
        if (e) goto done;
    }
    if (aud_m1 >= 0 && m2u_run_aud_states(em, ignore_index, all, nn, feat, present, states)) goto done;
    rc = 0;
done:
    llm->adapter_in = NULL;
    if (have_kc) m2u_kv_cache_free(&kc);
    free(prompt), free(ids), free(all), free(logits), free(rows);
    if (rc) {
        free(*answer);
        *answer = NULL;
    }
    return rc;
}
