/* Hugging Face tokenizer.json, BPE model (LLaMA / SentencePiece-converted style).
 *
 * Supports what LLaMA-family tokenizer.json files use: added tokens (special and
 * not) matched before normalisation, the normalizer Sequence[Prepend("▁"),
 * Replace(" ", "▁")] (legacy) or the Metaspace pre-tokenizer (non-legacy),
 * BPE with merges by rank, byte fallback to <0xXX> tokens, unk, the
 * TemplateProcessing post-processor (adds <s>), and the decoder
 * Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(left 1)].
 * Also GPT-2 / RoBERTa files (RobertaTokenizerFast's tokenizer.json): the ByteLevel pre-tokenizer
 * (add_prefix_space before every piece between added tokens, the GPT-2 regex with onig's Unicode
 * classes, bytes_to_unicode), the ByteLevel decoder and the RobertaProcessing / BertProcessing
 * post-processor (<s> $A </s>); for what bert_score and CLAP run (the slow tokenizer) see
 * bytelevel_bpe.h.
 * Anything else in the file is refused at load with a message naming the field. */
#ifndef M2U_TOKENIZER_H
#define M2U_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct m2u_tokenizer m2u_tokenizer;

int m2u_tokenizer_load(const char *tokenizer_json_path, m2u_tokenizer **out);
void m2u_tokenizer_free(m2u_tokenizer *tok);

/* Encode UTF-8 text (len bytes).  add_special: apply the post-processor (BOS for
 * LLaMA) exactly as tokenizers' encode(text, add_special_tokens=True) does.
 * *ids is malloc'ed (caller frees).  Invalid UTF-8 is an error. */
int m2u_tokenizer_encode(const m2u_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                         size_t *n_ids);
/* Decode as tokenizers' decode(ids, skip_special_tokens=skip_special); *text malloc'ed, NUL-terminated. */
int m2u_tokenizer_decode(const m2u_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text);
/* The same, also giving the byte length: decoded text can contain U+0000 (e.g. from <0x00>). */
int m2u_tokenizer_decode_n(const m2u_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                           size_t *len);

int m2u_tokenizer_vocab_size(const m2u_tokenizer *tok); /* including added tokens */
/* Id of a token string (vocab or added), or -1. */
int m2u_tokenizer_token_to_id(const m2u_tokenizer *tok, const char *token);
/* Token string of an id, or NULL. */
const char *m2u_tokenizer_id_to_token(const m2u_tokenizer *tok, int id);
int m2u_tokenizer_bos_id(const m2u_tokenizer *tok); /* -1 if none */
int m2u_tokenizer_eos_id(const m2u_tokenizer *tok);

/* The BPE merge order per piece, for writers of score-based vocabularies (GGUF's SPM tokenizer merges
 * the adjacent pair whose concatenation has the highest score).  For each id in [0, n): the rank of
 * the first merge in model.merges that produces that piece, or -1 if none does (single characters,
 * byte and special tokens, added tokens).  *n_unlisted (may be NULL) counts the pieces that two
 * vocabulary pieces concatenate to without model.merges listing that pair: a score-based tokenizer
 * can merge such a pair where BPE never does.  Merges converted from a SentencePiece model (LLaMA's)
 * list every split, so this is 0 for them. */
int m2u_tokenizer_merge_ranks(const m2u_tokenizer *tok, int32_t *rank, int32_t n, int64_t *n_unlisted);

/* Add tokens (as tokenizers' add_tokens / add_special_tokens): new ids follow the
 * current vocabulary; existing ones keep their id.  Used for [AUD0]..[AUD7]. */
int m2u_tokenizer_add_tokens(m2u_tokenizer *tok, const char *const *tokens, int n, int special);

#endif
