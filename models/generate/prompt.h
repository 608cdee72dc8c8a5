/* M2UGen's prompt and [AUD] template: what the trainer teaches and what generation
 * (m2u-eval run, m2u-generate) must reproduce token for token.
 *
 * ids = BOS + tokens(template(instruction) + answer) [+ [AUD0..n_aud-1] ids] [+ EOS].
 * The [AUD] ids are appended as ids rather than tokenised from "[AUD0]...", because
 * added tokens glued to text do not survive the LLaMA normaliser in HF's fast tokenizer
 * (see tests/fixtures/tokenizer).  The template and the answer are tokenised together
 * (as M2UGen does), so the prompt length is that of the template's own tokens. */
#ifndef M2U_PROMPT_H
#define M2U_PROMPT_H

#include "tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* tpl with its first "{instruction}" replaced (malloc'ed; NULL when out of memory). */
char *m2u_prompt_fill(const char *tpl, const char *instruction);

typedef struct {
    int32_t *ids;    /* malloc'ed, n of them */
    size_t n;
    size_t n_prompt; /* leading ids that are prompt (no loss) */
    int aud_pos;     /* position whose hidden state predicts [AUD0], or -1 */
} m2u_prompt_seq;

/* Tokenise one (instruction, answer) pair into *out.  n_aud [AUD] ids starting at aud_id0
 * follow the answer when n_aud > 0; EOS when append_eos.  Longer than max_len: the answer's
 * tail is cut, never the [AUD] block or EOS. */
int m2u_prompt_encode(const m2u_tokenizer *tok, const char *tpl, const char *instruction, const char *answer,
                      int n_aud, int aud_id0, int append_eos, int max_len, m2u_prompt_seq *out);
void m2u_prompt_seq_free(m2u_prompt_seq *s);

#endif
