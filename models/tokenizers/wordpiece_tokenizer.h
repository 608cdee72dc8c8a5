/* Hugging Face tokenizer.json with a WordPiece model (BERT, DistilBERT, ...),
 * id-exact against `tokenizers` 0.20.3, and decoding through the WordPiece decoder.
 *
 * Supported (what BERT-family tokenizer.json files use; anything else is
 * refused at load with a message naming the file and the field):
 *   - added tokens that are not normalized and have no lstrip/rstrip/single_word
 *     ([PAD], [UNK], [CLS], [SEP], [MASK]), matched on the raw text first
 *     (longest match at the leftmost position);
 *   - normalizer BertNormalizer (clean_text, handle_chinese_chars,
 *     strip_accents null/true/false, lowercase), or null;
 *   - pre_tokenizer BertPreTokenizer (split on whitespace, isolate punctuation);
 *   - model WordPiece (greedy longest match from the left, continuing prefix
 *     "##" or as given, max_input_chars_per_word, one unk_token for a word
 *     that cannot be covered);
 *   - post_processor TemplateProcessing (single sequence) or BertProcessing,
 *     or null;
 *   - decoder WordPiece (prefix, cleanup), or null;
 *   - "truncation" and "padding" are ignored, as transformers' encode(text,
 *     max_length=..., truncation=True) overrides them per call.
 * The per-character Unicode behaviour (what clean_text removes, the CJK
 * ranges, punctuation, lower-casing, accent stripping) comes from tables
 * measured on tokenizers 0.20.3 itself (models/tokenizers/bert_unicode_tables.h,
 * tests/make_bert_unicode_tables.py).  Known gap: accent stripping is
 * applied per character, so NFD's canonical reordering of combining marks
 * that survive stripping (spacing marks with a non-zero combining class
 * following a nonspacing one) is not reproduced. */
#ifndef M2U_WORDPIECE_TOKENIZER_H
#define M2U_WORDPIECE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct m2u_wordpiece m2u_wordpiece;

int m2u_wordpiece_load(const char *tokenizer_json_path, m2u_wordpiece **out);
void m2u_wordpiece_free(m2u_wordpiece *tok);

/* Encode UTF-8 text (len bytes) as tokenizers' encode(text, add_special_tokens=add_special).
 * max_length > 0 truncates as transformers' encode(max_length=, truncation=True) does: the
 * text's tokens are cut to max_length minus the template's special tokens.  *ids is
 * malloc'ed (never NULL on success).  Invalid UTF-8 is an error. */
int m2u_wordpiece_encode(const m2u_wordpiece *tok, const char *text, size_t len, int add_special, size_t max_length,
                         int32_t **ids, size_t *n_ids);

/* BertNormalizer alone (no added-token splitting); *out malloc'ed, NUL-terminated. */
int m2u_wordpiece_normalize(const m2u_wordpiece *tok, const char *text, size_t len, char **out, size_t *out_len);

/* tokenizers' decode(ids, skip_special_tokens): the tokenizer.json decoder (WordPiece: "##"
 * continuations joined, other tokens after a space, then its cleanup); unknown ids are skipped.
 * *text malloc'ed (caller frees), *len bytes. */
int m2u_wordpiece_decode(const m2u_wordpiece *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                         size_t *len);

int m2u_wordpiece_vocab_size(const m2u_wordpiece *tok);
int m2u_wordpiece_token_to_id(const m2u_wordpiece *tok, const char *token); /* -1 if unknown */
/* The template's first / last special token ([CLS] / [SEP]), -1 without a template. */
int m2u_wordpiece_cls_id(const m2u_wordpiece *tok);
int m2u_wordpiece_sep_id(const m2u_wordpiece *tok);
/* Special tokens the template adds around a single sequence. */
int m2u_wordpiece_n_special(const m2u_wordpiece *tok);

#endif
