#include "music.h"

#include "fileio.h"
#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void m2u_music_close(m2u_music *m) {
    if (!m) return;
    m2u_musicgen_free(m->lm);
    m2u_encodec_free(m->codec);
    if (m->tok) m2u_unigram_free(m->tok);
    free(m->dir);
    free(m);
}

int m2u_music_open(const char *dir, int with_text, m2u_music **out) {
    return m2u_music_open_ex(dir, with_text, 0, NULL, out);
}

int m2u_music_prompt_codes(const m2u_music *m, const float *wav, size_t n, int32_t **codes, int *frames) {
    *codes = NULL, *frames = 0;
    if (!m->with_encoder) return m2u_fail("%s: opened without EnCodec's encoder (audio prompts need it)", m->dir);
    if (n < 1) return m2u_fail("audio prompt: no samples");
    return m2u_encodec_encode(m->codec, wav, n, m2u_musicgen_get_config(m->lm)->codebooks, codes, frames);
}

int m2u_music_open_ex(const char *dir, int with_text, int with_codec_encoder, const char *tokenizer, m2u_music **out) {
    *out = NULL;
    if (!m2u_is_dir(dir)) return m2u_fail("%s: not a directory (need a MusicGen checkpoint directory)", dir);
    m2u_music *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return m2u_fail("out of memory");
    }
    m->with_text = with_text;
    if (m2u_musicgen_load(dir, with_text, &m->lm)) goto fail;
    /* decode only: the encoder is needed only to turn audio into codes */
    m->with_encoder = with_codec_encoder;
    if (m2u_encodec_load_ex(dir, NULL, with_codec_encoder, &m->codec)) goto fail;
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(m->lm);
    const m2u_encodec_config *ec = m2u_encodec_config_of(m->codec);
    if (ec->codebook_size != lc->vocab) {
        m2u_fail("%s: the audio encoder has %d codes per codebook, the decoder %d (vocab_size)", dir,
                 ec->codebook_size, lc->vocab);
        goto fail;
    }
    if (lc->codebooks > ec->num_quantizers) {
        m2u_fail("%s: the decoder makes %d codebooks, the audio encoder has %d quantizers", dir, lc->codebooks,
                 ec->num_quantizers);
        goto fail;
    }
    if (with_text) {
        char *p = tokenizer ? strdup(tokenizer) : m2u_path_join(dir, "tokenizer.json");
        int rc = p ? m2u_unigram_load(p, &m->tok) : m2u_fail("out of memory");
        free(p);
        if (rc) goto fail;
    }
    *out = m;
    return 0;
fail:
    m2u_music_close(m);
    return -1;
}

int m2u_music_sample_rate(const m2u_music *m) { return m2u_encodec_config_of(m->codec)->sampling_rate; }
int m2u_music_frame_rate(const m2u_music *m) { return m2u_encodec_config_of(m->codec)->frame_rate; }

int m2u_music_max_length(const m2u_music *m, double seconds) {
    double f = seconds * m2u_music_frame_rate(m);
    long n = f >= 1 ? lround(f) : 1;
    if (n > 1000000) n = 1000000;
    return (int)n + m2u_musicgen_get_config(m->lm)->codebooks;
}

void m2u_music_clip_free(m2u_music_clip *c) {
    free(c->codes);
    free(c->wav);
    memset(c, 0, sizeof *c);
}

int m2u_music_from_states(const m2u_music *m, const float *states, const int32_t *mask, int S,
                          const m2u_musicgen_gen_opts *o, m2u_music_clip *out) {
    memset(out, 0, sizeof *out);
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(m->lm);
    int K = lc->codebooks, N = o->max_length - K;
    if (S < 1) return m2u_fail("MusicGen: no conditioning states");
    if (N < 1 || o->max_length < 2 * K - 1)
        return m2u_fail("MusicGen: max_length %d gives no frames with %d codebooks (need >= %d)", o->max_length, K,
                        2 * K - 1 > K + 1 ? 2 * K - 1 : K + 1);
    for (size_t i = 0; i < (size_t)S * lc->text_hidden; i++)
        if (!isfinite(states[i])) return m2u_fail("MusicGen: conditioning state %zu is not finite", i);
    out->codes = malloc((size_t)K * N * sizeof(int32_t));
    if (!out->codes) return m2u_fail("out of memory");
    out->K = K, out->N = N;
    if (m2u_musicgen_generate(m->lm, states, mask, S, o, out->codes, NULL)) goto fail;
    /* after the un-delay every code is a real one (pad ids only fill the delay triangle) */
    for (size_t i = 0; i < (size_t)K * N; i++)
        if (out->codes[i] < 0 || out->codes[i] >= lc->vocab) {
            m2u_fail("MusicGen: code %d at codebook %zu frame %zu is outside [0, %d)", out->codes[i], i / N, i % N,
                     lc->vocab);
            goto fail;
        }
    if (m2u_encodec_decode(m->codec, out->codes, K, N, &out->wav, &out->n)) goto fail;
    return 0;
fail:
    m2u_music_clip_free(out);
    return -1;
}

int m2u_music_from_text(const m2u_music *m, const char *text, const m2u_musicgen_gen_opts *o, m2u_music_clip *out) {
    memset(out, 0, sizeof *out);
    if (!m->with_text || !m->tok)
        return m2u_fail("%s: opened without the text encoder (text prompts need it)", m->dir);
    float *st = NULL;
    int32_t *mask = NULL;
    int S = 0;
    if (m2u_musicgen_encode_prompt(m->lm, m->tok, text, strlen(text), &st, &mask, &S)) return -1;
    int rc = m2u_music_from_states(m, st, mask, S, o, out);
    free(st);
    free(mask);
    return rc;
}

int m2u_music_check_projector(const m2u_music *m, const m2u_projector_config *pc) {
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(m->lm);
    if (pc->out_dim != lc->text_hidden)
        return m2u_fail("%s: the output projector makes %d-wide states but MusicGen's conditioning is %d wide "
                        "(text_encoder d_model); the run was trained for another decoder",
                        m->dir, pc->out_dim, lc->text_hidden);
    if (pc->n_out < 1) return m2u_fail("output projector: n_out %d", pc->n_out);
    if (!(pc->target_scale > 0)) return m2u_fail("output projector: target_scale %g must be > 0", pc->target_scale);
    return 0;
}

int m2u_music_states_from_aud(m2u_projector *p, const float *x, float **states) {
    *states = NULL;
    const m2u_projector_config *pc = &p->cfg;
    if (!(pc->target_scale > 0)) return m2u_fail("output projector: target_scale %g must be > 0", pc->target_scale);
    size_t n = (size_t)pc->n_out * pc->out_dim;
    float *s = malloc(n * sizeof *s);
    if (!s) return m2u_fail("out of memory");
    if (m2u_projector_forward(p, x, 1, s)) {
        free(s);
        return -1;
    }
    /* the projector regresses target_scale * T5 states: undo the scale (M2UGen's / 10) */
    for (size_t i = 0; i < n; i++) s[i] /= pc->target_scale;
    *states = s;
    return 0;
}
