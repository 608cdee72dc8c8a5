/* BERTScore (Zhang et al. 2020) exactly as the bert_score package 0.3.13
 * computes it (bert_score.score with model_type = a local BERT-family
 * directory, use_fast_tokenizer=True, no all_layers):
 *
 *   - each sentence is str.strip()'ed and encoded with its special tokens
 *     ([CLS] ... [SEP]; "" -> [CLS] [SEP]), truncated to the tokenizer's
 *     model_max_length (tokenizer_config.json, capped by the model's positions);
 *   - embeddings are the output of layer num_layers (bert_score cuts the
 *     encoder to its first num_layers layers; default for bert-base-uncased: 9);
 *   - token weights: without idf 1, and 0 for [CLS] / [SEP]; with idf
 *     log((M+1)/(df+1)) where df counts the (flattened) references holding the
 *     token id, M their number, log(M+1) for ids not in any reference (so
 *     [CLS] / [SEP] get 0 too); weights are normalised per sentence;
 *   - cosine similarities between all tokens, special tokens included (they
 *     can be the best match, they just weigh 0); P = weighted mean over the
 *     candidate's tokens of the best reference match, R the other way,
 *     F = 2PR/(P+R);
 *   - bert_score's greedy matching runs on batches of batch_size (64) pairs
 *     padded to the longest sentence, and padded entries have similarity 0,
 *     so a token's best match is max(best, 0) when its counterpart is shorter
 *     than the longest one of its side in the batch; this is reproduced;
 *   - a candidate or reference with no tokens gives P = R = F = 0; a NaN F
 *     (P + R = 0, or all weights 0) becomes 0;
 *   - several references per candidate: the pairs are scored flattened, and
 *     P, R and F are each the maximum over the candidate's references;
 *   - optional baseline rescaling: x -> (x - b) / (1 - b) with b the row
 *     num_layers of a bert_score baseline file (CSV "LAYER,P,R,F").
 * All functions return 0, or -1 after m2u_fail(). */
#ifndef M2U_BERTSCORE_H
#define M2U_BERTSCORE_H

#include <stddef.h>

typedef struct m2u_bertscorer m2u_bertscorer;

typedef struct {
    int num_layers;            /* layer whose output is used (1..layers; 0 = the embeddings) */
    int idf;                   /* 1: idf weights from the references */
    int batch_size;            /* bert_score's batch_size; <= 0 means 64 */
    const char *baseline_path; /* NULL: no rescaling */
} m2u_bertscore_opts;

/* A BERT-family checkpoint directory: config.json, weights, tokenizer.json
 * (WordPiece) and optionally tokenizer_config.json (model_max_length). */
int m2u_bertscore_load(const char *dir, m2u_bertscorer **out);
void m2u_bertscore_free(m2u_bertscorer *s);
int m2u_bertscore_layers(const m2u_bertscorer *s); /* the model's num_hidden_layers */

/* n candidates; refs[i] holds n_refs[i] >= 1 references of candidate i.
 * P, R, F: n values each (any may be NULL). */
int m2u_bertscore(const m2u_bertscorer *s, const m2u_bertscore_opts *opts, const char *const *cands,
                  const char *const *const *refs, const size_t *n_refs, size_t n, double *P, double *R, double *F);

#endif
