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
 *
 * RoBERTa checkpoints (a directory with vocab.json + merges.txt, model_type
 * "roberta"): bert_score's default slow RobertaTokenizer (bytelevel_bpe.h),
 * each stripped sentence encoded with add_prefix_space=True as <s> ... </s>,
 * truncated to tokenizer_config.json's model_max_length (512 for roberta-large;
 * without one, the model's positions); [CLS] / [SEP] above read <s> / </s>.
 * bert_score.score(lang="en") is roberta-large at num_layers 17; with
 * rescale_with_baseline it reads bert_score/rescale_baseline/en/roberta-large.tsv
 * from the bert_score package (row 17: P 0.83150584, R 0.8314941, F 0.83122575).
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
 * (WordPiece) and optionally tokenizer_config.json (model_max_length); or a
 * RoBERTa one: config.json, weights, vocab.json, merges.txt and optionally
 * tokenizer_config.json. */
int m2u_bertscore_load(const char *dir, m2u_bertscorer **out);
void m2u_bertscore_free(m2u_bertscorer *s);
int m2u_bertscore_layers(const m2u_bertscorer *s); /* the model's num_hidden_layers */

/* What a report names: the model and where its numbers come from. */
typedef struct {
    int roberta;          /* 1: RoBERTa (slow byte-level BPE tokenizer), 0: BERT (WordPiece) */
    int layers, hidden;   /* num_hidden_layers, hidden_size */
    int default_layer;    /* bert_score's model2layers: 17 for roberta-large (24 x 1024), 10 for
                             roberta-base, 9 for bert-base (12 x 768), else the last layer */
    size_t max_length;    /* tokens per sentence, <s> </s> included */
    const char *weights;  /* the weight file hashed (static string) */
    char sha256[65];      /* its SHA-256, hex */
} m2u_bertscore_info;
/* Fills info; hashes the weight file (seconds for roberta-large's 1.4 GB). */
int m2u_bertscore_describe(const m2u_bertscorer *s, m2u_bertscore_info *info);

/* n candidates; refs[i] holds n_refs[i] >= 1 references of candidate i.
 * P, R, F: n values each (any may be NULL). */
int m2u_bertscore(const m2u_bertscorer *s, const m2u_bertscore_opts *opts, const char *const *cands,
                  const char *const *const *refs, const size_t *n_refs, size_t n, double *P, double *R, double *F);

#endif
