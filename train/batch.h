/* From dataset samples to a padded training batch, as M2UGen builds them
 * (m2ugen-code.md 2.4), with the stage deciding what is asked and answered:
 *
 *   stage 1 (encoder side):  instruction "" (the modality speaks), answer = caption
 *   stage 2 (decoder side):  instruction = caption, answer = caption + [AUD0..7]
 *   stage 3 (instructions):  musicqa: question -> answer; muedit/muimage/muvideo:
 *                            instruction -> output_text + [AUD0..7]; mucaps -> caption
 *
 * ids = BOS + tokens(template(instruction) + answer) [+ AUD ids] [+ EOS]; labels
 * equal ids with the prompt positions (and padding) set to ignore_index.  The
 * [AUD] ids are appended as ids rather than tokenised from "[AUD0]...", because
 * added tokens glued to text do not survive the LLaMA normaliser in HF's fast
 * tokenizer (see tests/fixtures/tokenizer).  Sequences are right-padded to the
 * batch's longest one and truncated to max_len (the answer's tail goes first,
 * but never the [AUD] block). */
#ifndef M2U_BATCH_H
#define M2U_BATCH_H

#include "manifest.h"
#include "prompt.h" /* the prompt and [AUD] template (models/generate) */
#include "tokenizer.h"

#include <stdint.h>

typedef struct {
    int stage;                   /* 1, 2 or 3 */
    const char *prompt_template; /* contains "{instruction}" */
    int max_len;
    int n_aud;                   /* [AUD] tokens appended to music-producing answers (0 = none) */
    int aud_id0;                 /* id of [AUD0]; the rest follow */
    int append_eos;
    int ignore_index;
    int pad_id;
} m2u_batch_options;

typedef struct {
    int B, T;
    int32_t *ids, *labels;  /* [B*T] */
    int *length;            /* [B] tokens before padding */
    int *aud_pos;           /* [B] position p whose hidden state predicts [AUD0] (p..p+n_aud-1), or -1 */
    int n_valid;            /* labels != ignore_index that have a next-token target */
} m2u_batch;

/* What a sample asks and answers at this stage; *wants_music tells whether the
 * answer ends in [AUD] tokens (so the projector's loss applies).  Returns -1 for
 * a kind the stage does not use (the caller skips it). */
int m2u_sample_pair(const m2u_sample *s, int stage, const char **instruction, const char **answer, int *wants_music);

/* Build the batch of samples idx[0..B).  out is (re)allocated as needed; free with m2u_batch_free. */
int m2u_batch_build(m2u_dataset *ds, const m2u_tokenizer *tok, const m2u_batch_options *o, const int64_t *idx, int B,
                    m2u_batch *out);
void m2u_batch_free(m2u_batch *b);

#endif
