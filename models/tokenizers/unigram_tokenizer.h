/* Hugging Face tokenizer.json with a Unigram model (T5, flan-T5, MusicGen's text tokenizer),
 * encoding only, id-exact against `tokenizers` 0.20.3.
 *
 * Supported (what T5-family tokenizer.json files use; anything else is refused at load with a
 * message naming the file and the field):
 *   - added tokens that are not normalized and have no lstrip/rstrip/single_word (T5's <pad>,
 *     </s>, <unk>, <extra_id_N>), matched on the raw text before normalisation;
 *   - normalizers: Precompiled (a SentencePiece precompiled_charsmap: darts-clone double-array
 *     trie + replacement strings, applied per Unicode extended grapheme cluster exactly as the
 *     reference does, including its first-prefix quirk), Strip, Replace (String patterns, and
 *     Regex patterns of one character with a repeat count such as " {2,}"), Sequence;
 *   - pre-tokenizers: Metaspace (prepend_scheme always/first/never, split, legacy
 *     add_prefix_space), WhitespaceSplit, Sequence;
 *   - the Unigram model: Viterbi over the vocabulary scores, consecutive unknown characters fused
 *     into one <unk>, byte_fallback to <0xXX> pieces, unk_id null (an unknown character is then
 *     an error, as in the reference);
 *   - the TemplateProcessing post-processor (T5 appends </s>).
 * The decoder field is read but not used (this module does not decode). */
#ifndef M2U_UNIGRAM_TOKENIZER_H
#define M2U_UNIGRAM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct m2u_unigram m2u_unigram;

int m2u_unigram_load(const char *tokenizer_json_path, m2u_unigram **out);
void m2u_unigram_free(m2u_unigram *tok);

/* Encode UTF-8 text (len bytes) as tokenizers' encode(text, add_special_tokens=add_special).
 * *ids is malloc'ed (caller frees; never NULL on success).  Invalid UTF-8 is an error. */
int m2u_unigram_encode(const m2u_unigram *tok, const char *text, size_t len, int add_special, int32_t **ids,
                       size_t *n_ids);

/* The same with tokenizers' truncation (max_length, longest_first, right side, stride 0): the
 * text's tokens are cut to max_length minus the special tokens the template adds, then the
 * template is applied, so the result has at most max_length ids (T5: 127 tokens + </s>). */
int m2u_unigram_encode_truncated(const m2u_unigram *tok, const char *text, size_t len, int add_special,
                                 size_t max_length, int32_t **ids, size_t *n_ids);

/* The normalizer alone on text (no added-token splitting); *out malloc'ed, NUL-terminated. */
int m2u_unigram_normalize(const m2u_unigram *tok, const char *text, size_t len, char **out, size_t *out_len);

/* tokenizers' decode(ids, skip_special_tokens): the tokenizer.json decoder chain (T5: Metaspace) on
 * the ids' tokens; unknown ids are skipped.  *text malloc'ed (caller frees), *len bytes. */
int m2u_unigram_decode(const m2u_unigram *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                       size_t *len);

int m2u_unigram_vocab_size(const m2u_unigram *tok); /* model vocabulary + added tokens beyond it */
int m2u_unigram_token_to_id(const m2u_unigram *tok, const char *token); /* -1 if unknown */
const char *m2u_unigram_id_to_token(const m2u_unigram *tok, int id);    /* NULL if unknown */
int m2u_unigram_eos_id(const m2u_unigram *tok); /* the template's last special token, else "</s>", else -1 */
int m2u_unigram_pad_id(const m2u_unigram *tok); /* "<pad>" or -1 */
int m2u_unigram_unk_id(const m2u_unigram *tok); /* model.unk_id or -1 */

#endif
