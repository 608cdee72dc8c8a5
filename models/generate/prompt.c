#include "prompt.h"

#include "m2u_error.h"

#include <stdlib.h>
#include <string.h>

char *m2u_prompt_fill(const char *tpl, const char *instruction) {
    const char *at = strstr(tpl, "{instruction}");
    size_t a = at ? (size_t)(at - tpl) : strlen(tpl), b = strlen(instruction);
    const char *rest = at ? at + strlen("{instruction}") : "";
    char *out = malloc(a + b + strlen(rest) + 1);
    if (!out) return NULL;
    memcpy(out, tpl, a);
    memcpy(out + a, instruction, b);
    strcpy(out + a + b, rest);
    return out;
}

void m2u_prompt_seq_free(m2u_prompt_seq *s) {
    free(s->ids);
    memset(s, 0, sizeof *s);
}

int m2u_prompt_encode(const m2u_tokenizer *tok, const char *tpl, const char *instruction, const char *answer,
                      int n_aud, int aud_id0, int append_eos, int max_len, m2u_prompt_seq *q) {
    memset(q, 0, sizeof *q);
    q->aud_pos = -1;
    if (n_aud < 0) n_aud = 0;
    size_t tail = (size_t)n_aud + (append_eos ? 1 : 0);
    if (max_len < 0 || (size_t)max_len < tail + 2) return m2u_fail("max_len %d is too short for the [AUD] block", max_len);
    char *prompt = m2u_prompt_fill(tpl, instruction);
    size_t lp = prompt ? strlen(prompt) : 0, la = strlen(answer);
    char *full = prompt ? malloc(lp + la + 1) : NULL;
    if (!full) {
        free(prompt);
        return m2u_fail("out of memory");
    }
    memcpy(full, prompt, lp);
    memcpy(full + lp, answer, la + 1);
    int32_t *pids = NULL, *fids = NULL;
    size_t np = 0, nf = 0;
    int rc = m2u_tokenizer_encode(tok, prompt, lp, 1, &pids, &np);
    if (!rc) rc = m2u_tokenizer_encode(tok, full, lp + la, 1, &fids, &nf);
    free(prompt);
    free(full);
    free(pids);
    if (rc) return -1;
    size_t keep = nf;
    if (keep + tail > (size_t)max_len) keep = (size_t)max_len - tail; /* cut the answer's end */
    q->ids = malloc((keep + tail) * sizeof(int32_t));
    if (!q->ids) {
        free(fids);
        return m2u_fail("out of memory");
    }
    memcpy(q->ids, fids, keep * sizeof(int32_t));
    free(fids);
    q->n = keep;
    if (n_aud) {
        q->aud_pos = (int)q->n - 1; /* its hidden state predicts [AUD0] */
        for (int k = 0; k < n_aud; k++) q->ids[q->n++] = aud_id0 + k;
    }
    if (append_eos) q->ids[q->n++] = m2u_tokenizer_eos_id(tok);
    q->n_prompt = np < keep ? np : keep;
    return 0;
}
