/* Byte-level BPE (GPT-2 / RoBERTa) exactly as transformers 4.46.3's slow RobertaTokenizer runs it
 * (what bert_score 0.3.13 and LAION-CLAP's text tower load), from the files that tokenizer reads:
 *
 *   vocab.json             token -> id (json.load; a duplicate key or a non-integer id is refused)
 *   merges.txt             read as text.split("\n")[1:-1] (the first line and the last element are
 *                          dropped, as the reference does: a file without a final newline loses its
 *                          last merge there too), each line split() on Python whitespace; a pair's
 *                          rank is its line index, a repeated pair keeps its last rank; lines that
 *                          are not two tokens take a rank and never match
 *   tokenizer_config.json  optional: added_tokens_decoder (content, lstrip, rstrip, single_word,
 *                          special per id), the special token names (bos/eos/unk/sep/pad/cls/mask
 *                          _token), model_max_length, add_prefix_space, clean_up_tokenization_spaces;
 *                          tokenizer_class, when given, must be RobertaTokenizer(Fast); errors must be
 *                          "replace".  Without it: RobertaTokenizer's defaults (<s> </s> <unk> <pad>
 *                          <mask>, <mask> with lstrip).
 *
 * Encoding (PreTrainedTokenizer.encode): with add_prefix_space a " " is put before a text whose first
 * character is not whitespace (str.isspace); the text is cut on the added tokens by transformers'
 * Trie.split (ported literally, quirks included) and their lstrip / rstrip / single_word rules; every
 * other piece is split by the GPT-2 regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (\p{L} \p{N} from Python regex 2026.5.9: bytelevel_unicode_tables.h), each match's UTF-8 bytes are
 * mapped to printable characters (bytes_to_unicode) and merged by GPT-2's bpe() (the lowest-ranked
 * pair, every occurrence left to right, until none is left); a token is looked up in the added tokens,
 * then the vocabulary, else <unk>.  max_length > 0 truncates the text's ids to max_length minus the
 * specials (a sequence shorter than what must go is left whole, as the reference does); add_special
 * puts <s> ... </s> (cls ... sep) around it.
 *
 * Decoding: tokens joined, mapped back to bytes, UTF-8 with errors="replace" (one U+FFFD per maximal
 * invalid subpart, as CPython); non-special added tokens kept apart and joined with spaces;
 * clean_up_tokenization_spaces when the config asks.  Unknown ids are an error (the reference fails).
 * Library code: errors via m2u_fail, nothing printed; encode / decode are const and thread-safe. */
#ifndef M2U_BYTELEVEL_BPE_H
#define M2U_BYTELEVEL_BPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct m2u_bytebpe m2u_bytebpe;

/* A directory with vocab.json, merges.txt and optionally tokenizer_config.json. */
int m2u_bytebpe_load(const char *dir, m2u_bytebpe **out);
/* The same from explicit paths; config_path may be NULL (RobertaTokenizer defaults). */
int m2u_bytebpe_load_files(const char *vocab_json, const char *merges_txt, const char *config_path,
                           m2u_bytebpe **out);
void m2u_bytebpe_free(m2u_bytebpe *t);

/* Encode UTF-8 text[0..len) as tokenizer.encode(text, add_special_tokens=add_special,
 * add_prefix_space=add_prefix_space, max_length=max_length, truncation=max_length > 0).
 * add_prefix_space < 0: the config's value.  *ids malloc'ed (never NULL on success; caller frees).
 * Invalid UTF-8 is an error. */
int m2u_bytebpe_encode(const m2u_bytebpe *t, const char *text, size_t len, int add_prefix_space, int add_special,
                       size_t max_length, int32_t **ids, size_t *n_ids);

/* tokenizer.decode(ids, skip_special_tokens=skip_special); *text malloc'ed, NUL-terminated, *len bytes. */
int m2u_bytebpe_decode(const m2u_bytebpe *t, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                       size_t *len);

int m2u_bytebpe_vocab_size(const m2u_bytebpe *t);                    /* len(tokenizer): vocab + new added ids */
int m2u_bytebpe_token_to_id(const m2u_bytebpe *t, const char *token); /* added, then vocab; -1 if neither */
const char *m2u_bytebpe_id_to_token(const m2u_bytebpe *t, int id);    /* NULL if unknown */
/* The special tokens' ids (-1 when the name has no id): <s> (cls), </s> (sep), <pad>, <unk>, <mask>. */
int m2u_bytebpe_cls_id(const m2u_bytebpe *t);
int m2u_bytebpe_sep_id(const m2u_bytebpe *t);
int m2u_bytebpe_pad_id(const m2u_bytebpe *t);
int m2u_bytebpe_unk_id(const m2u_bytebpe *t);
int m2u_bytebpe_mask_id(const m2u_bytebpe *t);
/* tokenizer_config.json's model_max_length, 0 when absent or "very large" (>= 1e29). */
size_t m2u_bytebpe_model_max_length(const m2u_bytebpe *t);

#endif
