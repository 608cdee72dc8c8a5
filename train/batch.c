#include "batch.h"

#include "m2u_error.h"

#include <stdlib.h>
#include <string.h>

int m2u_sample_pair(const m2u_sample *s, int stage, const char **instruction, const char **answer, int *wants_music) {
    const char *kind = s->text[M2U_TEXT_KIND] ? s->text[M2U_TEXT_KIND] : "";
    const char *caption = s->text[M2U_TEXT_CAPTION] ? s->text[M2U_TEXT_CAPTION] : "";
    *wants_music = 0;
    if (stage == 1) {
        if (!caption[0]) return -1;
        *instruction = "";
        *answer = caption;
        return 0;
    }
    if (stage == 2) {
        if (!caption[0]) return -1;
        *instruction = caption;
        *answer = caption;
        *wants_music = 1;
        return 0;
    }
    if (!strcmp(kind, "musicqa")) {
        *instruction = s->text[M2U_TEXT_INSTRUCTION];
        *answer = s->text[M2U_TEXT_ANSWER];
    } else if (!strcmp(kind, "muedit") || !strcmp(kind, "muimage") || !strcmp(kind, "muvideo")) {
        *instruction = s->text[M2U_TEXT_INSTRUCTION];
        *answer = s->text[M2U_TEXT_OUTPUT_TEXT];
        *wants_music = 1;
    } else if (!strcmp(kind, "mucaps")) {
        *instruction = "Describe this music.";
        *answer = caption;
    } else {
        return -1;
    }
    return *instruction && *answer && (*answer)[0] ? 0 : -1;
}

void m2u_batch_free(m2u_batch *b) {
    free(b->ids);
    free(b->labels);
    free(b->length);
    free(b->aud_pos);
    memset(b, 0, sizeof *b);
}

typedef m2u_prompt_seq seq;

static int build_seq(const m2u_tokenizer *tok, const m2u_batch_options *o, const m2u_sample *s, seq *q) {
    const char *instruction, *answer;
    int music;
    memset(q, 0, sizeof *q);
    if (m2u_sample_pair(s, o->stage, &instruction, &answer, &music))
        return m2u_fail("sample %s (kind '%s') has nothing to learn at stage %d", s->text[M2U_TEXT_ID],
                        s->text[M2U_TEXT_KIND], o->stage);
    if (m2u_prompt_encode(tok, o->prompt_template, instruction, answer, music ? o->n_aud : 0, o->aud_id0,
                          o->append_eos, o->max_len, q))
        return m2u_fail_prefix("sample %s", s->text[M2U_TEXT_ID]);
    return 0;
}

int m2u_batch_build(m2u_dataset *ds, const m2u_tokenizer *tok, const m2u_batch_options *o, const int64_t *idx, int B,
                    m2u_batch *out) {
    seq *qs = calloc((size_t)B, sizeof *qs);
    if (!qs) return m2u_fail("out of memory");
    int rc = 0, T = 1;
    for (int b = 0; b < B && !rc; b++) {
        m2u_sample s;
        rc = m2u_dataset_get(ds, idx[b], &s);
        if (!rc) {
            rc = build_seq(tok, o, &s, &qs[b]);
            m2u_sample_free(&s);
        }
        if (!rc && (int)qs[b].n > T) T = (int)qs[b].n;
    }
    if (!rc) {
        m2u_batch_free(out);
        out->B = B;
        out->T = T;
        out->ids = malloc((size_t)B * T * sizeof(int32_t));
        out->labels = malloc((size_t)B * T * sizeof(int32_t));
        out->length = malloc((size_t)B * sizeof(int));
        out->aud_pos = malloc((size_t)B * sizeof(int));
        out->n_valid = 0;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int real = t < (int)qs[b].n;
                int32_t id = real ? qs[b].ids[t] : o->pad_id;
                out->ids[b * T + t] = id;
                out->labels[b * T + t] = (real && t >= (int)qs[b].n_prompt) ? id : o->ignore_index;
                if (t >= 1 && out->labels[b * T + t] != o->ignore_index) out->n_valid++;
            }
            out->length[b] = (int)qs[b].n;
            out->aud_pos[b] = qs[b].aud_pos;
        }
    }
    for (int b = 0; b < B; b++) free(qs[b].ids);
    free(qs);
    return rc;
}
