/* Caption metrics exactly as pycocoevalcap computes them (coco-caption; the
 * salaniz/pycocoevalcap 1.2 package): PTB tokenisation, BLEU-1..4, METEOR
 * (exact + stem modules only, see below), ROUGE-L and CIDEr-D.
 *
 * Pipeline (pycocoevalcap/eval.py): candidates and references are tokenised
 * with m2u_ptb_tokenize() (each list in one call, references item by item in
 * order, because the tokenizer looks one line ahead), then every scorer sees
 * the tokenised strings.  Per-item scores and corpus scores are returned:
 *   - BLEU-N corpus = corpus-level BLEU (summed clipped counts and lengths,
 *     "closest" reference length, pycocoevalcap's tiny=1e-15 / small=1e-9
 *     guards), not the mean of the per-item values;
 *   - ROUGE-L and CIDEr-D corpus = mean of the per-item values;
 *   - METEOR corpus = METEOR of the summed statistics (as meteor-1.5 -stdio).
 * CIDEr-D's document frequencies come from the references of the evaluated
 * set, so per-item CIDEr-D depends on the whole set.
 *
 * All functions return 0, or -1 after m2u_fail(). */
#ifndef M2U_CAPTION_METRICS_H
#define M2U_CAPTION_METRICS_H

#include <stddef.h>

/* ---- PTB tokenisation (eval/metrics/ptb_tokenize.c) ---- */

/* Compile the lexer tables (done on first use; call it once before using the
 * tokenizer from several threads). */
int m2u_ptb_init(void);

/* Tokenise n texts as pycocoevalcap's PTBTokenizer does for one call
 * (CoreNLP 3.4.1 PTBTokenizer -preserveLines -lowerCase on the texts joined
 * by newlines, then its PUNCTUATIONS removed).  *tokenized receives n
 * malloc'ed strings (tokens separated by single spaces); if raw is not NULL,
 * *raw receives the tokenizer's lines before punctuation removal.  Free with
 * m2u_strv_free(v, n).  Deviation: a '\r' (or other line separator) inside a
 * text becomes a space; pycocoevalcap only replaces '\n' and would misalign
 * every later line. */
int m2u_ptb_tokenize(const char *const *texts, size_t n, char ***tokenized, char ***raw);
void m2u_strv_free(char **v, size_t n);

/* ---- scorers (on tokenised text) ---- */

/* n items; item i has one candidate and n_refs[i] >= 1 references. */
typedef struct {
    size_t n;
    const char *const *cand;
    const char *const *const *refs;
    const int *n_refs;
} m2u_caption_set;

/* BLEU-1..4.  corpus[4]; per_item (may be NULL) [n][4]. */
int m2u_bleu(const m2u_caption_set *s, double corpus[4], double *per_item);
/* ROUGE-L F with beta 1.2, precision and recall each maximised over the references. */
int m2u_rouge_l(const m2u_caption_set *s, double *corpus, double *per_item);
/* CIDEr-D: n-grams 1..4, sigma 6, clipped candidate weights, x10. */
int m2u_cider_d(const m2u_caption_set *s, double *corpus, double *per_item);

/* METEOR 1.5 (eval/metrics/meteor.c).  Implemented: the "exact" and "stem" (Snowball
 * English) matching modules, Meteor's alignment search, the fragmentation
 * penalty and the parameterised F-mean with content/function word weighting
 * (delta) over Meteor's English function-word list, and -norm's text
 * normalisation.  Not implemented: the "synonym" (WordNet) and "paraphrase"
 * modules, so the defaults here are modules exact,stem with weights 1.0, 0.6;
 * pycocoevalcap's Meteor uses exact,stem,synonym,paraphrase (1.0 0.6 0.8 0.6).
 * Agreement (tests/eval/test_caption_metrics.c, 62 groups): identical, to the
 * last bit, to meteor-1.5.jar run with -m "exact stem" -w "1.0 0.6"; against
 * pycocoevalcap's 4-module METEOR, 54/62 items equal, the largest item
 * difference 0.065, corpus 0.3316 vs 0.3293. */
typedef struct {
    double alpha, beta, gamma, delta;
    double w_exact, w_stem;
    int use_stem;
} m2u_meteor_params;
void m2u_meteor_default_params(m2u_meteor_params *p); /* en rank task: 0.85 0.2 0.6 0.75; exact 1.0, stem 0.6 */
int m2u_meteor(const m2u_caption_set *s, const m2u_meteor_params *p, double *corpus, double *per_item);
/* Meteor's -norm normalisation of one line (then lower-cased), as a malloc'ed string. */
char *m2u_meteor_normalize(const char *line);
/* Snowball English (Porter2) stem of one lower-case word; returns a malloc'ed string. */
char *m2u_snowball_english(const char *word);

/* ---- everything at once, from raw text ---- */

typedef struct {
    double bleu[4];
    double meteor;
    double rouge_l;
    double cider_d;
} m2u_caption_scores;

/* Tokenise (candidates in one call, references in another) and score.
 * per_item may be NULL, else it has n entries. */
int m2u_caption_evaluate(size_t n, const char *const *cands, const char *const *const *refs, const int *n_refs,
                         m2u_caption_scores *corpus, m2u_caption_scores *per_item);

#endif
