/* Caption metrics exactly as pycocoevalcap computes them (coco-caption; the
 * salaniz/pycocoevalcap 1.2 package): PTB tokenisation, BLEU-1..4, METEOR
 * (see below), ROUGE-L and CIDEr-D.
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

/* METEOR 1.5 (eval/metrics/meteor.c, resources in meteor_data.c) as
 * pycocoevalcap 1.2 runs it (meteor-1.5.jar - - -stdio -l en -norm): -norm's
 * text normalisation, the matching modules exact, stem (Snowball English),
 * synonym (WordNet 3.0 synsets + morphology) and paraphrase (phrase table
 * paraphrase-en.gz, multi-word matches), Meteor's alignment beam search, the
 * fragmentation penalty and the parameterised F-mean with content/function
 * word weighting (delta) over Meteor's English function-word list; best
 * reference per segment, corpus score from summed statistics.
 * The synonym and paraphrase modules need their data (m2u_meteor_data); the
 * modules that run are those enabled in the parameters, in the order exact,
 * stem, synonym, paraphrase (as -m with a subset of them).
 * Agreement (tests/eval/test_caption_metrics.c, tests/eval/test_meteor_full.c):
 * identical within 1e-6 per item and corpus to meteor-1.5.jar, with all four
 * modules and with -m "exact stem". */
typedef struct m2u_meteor_data m2u_meteor_data;
m2u_meteor_data *m2u_meteor_data_new(void);
void m2u_meteor_data_free(m2u_meteor_data *d);
/* Synonyms from a WordNet 3.0 dict folder: index.sense and {adj,adv,noun,verb}.exc
 * (Debian: packages wordnet-sense-index and wordnet-base, M2U_METEOR_WORDNET_DIR). */
#define M2U_METEOR_WORDNET_DIR "/usr/share/wordnet"
int m2u_meteor_load_wordnet(m2u_meteor_data *d, const char *dir);
/* The paraphrase table (gzip or plain text; pycocoevalcap 1.2's
 * meteor/data/paraphrase-en.gz, installed by launch/install-deps.sh to
 * M2U_METEOR_PARAPHRASE_PATH).  only_for (may be NULL): keep only the entries
 * whose words all occur in these sentences after normalisation; scores of
 * those sentences are unchanged and loading needs a few MB instead of ~1 GB. */
#define M2U_METEOR_PARAPHRASE_PATH "/usr/local/share/m2u/meteor/paraphrase-en.gz"
int m2u_meteor_load_paraphrase(m2u_meteor_data *d, const char *path, const m2u_caption_set *only_for);
/* The parsers behind m2u_meteor_load_wordnet, on one file's bytes (name: for messages). */
int m2u_meteor_parse_index_sense(m2u_meteor_data *d, const char *buf, size_t len, const char *name);
int m2u_meteor_parse_exc(m2u_meteor_data *d, const char *buf, size_t len, const char *name);
int m2u_meteor_data_has_synonyms(const m2u_meteor_data *d);
int m2u_meteor_data_has_paraphrases(const m2u_meteor_data *d);

typedef struct {
    double alpha, beta, gamma, delta;
    double w_exact, w_stem, w_synonym, w_paraphrase;
    int use_stem, use_synonym, use_paraphrase;
    const m2u_meteor_data *data; /* needed by the synonym and paraphrase modules */
} m2u_meteor_params;
/* en rank task: 0.85 0.2 0.6 0.75; weights 1.0 0.6 0.8 0.6; modules exact and stem
 * enabled, synonym and paraphrase enabled only once data with them is set:
 * m2u_meteor_default_params_data does both. */
void m2u_meteor_default_params(m2u_meteor_params *p);
void m2u_meteor_default_params_data(m2u_meteor_params *p, const m2u_meteor_data *d);
/* "exact,stem,synonym,paraphrase" or the subset that runs with p (static string). */
const char *m2u_meteor_modules(const m2u_meteor_params *p);
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
 * per_item may be NULL, else it has n entries.  METEOR runs the exact and stem
 * modules, plus synonym with wordnet_dir and paraphrase with paraphrase_path
 * (NULL: that module off; a path that cannot be read is an error);
 * *meteor_modules (may be NULL) receives the modules that ran, e.g.
 * "exact,stem,synonym,paraphrase".  m2u_caption_evaluate: exact and stem. */
int m2u_caption_evaluate(size_t n, const char *const *cands, const char *const *const *refs, const int *n_refs,
                         m2u_caption_scores *corpus, m2u_caption_scores *per_item);
/* Which METEOR data to use: a path the user gave is used as it is; otherwise the installed
 * default (M2U_METEOR_WORDNET_DIR, M2U_METEOR_PARAPHRASE_PATH) when it exists, else NULL (that
 * module off) with the reason appended to why[cap] ("; "-separated). */
void m2u_meteor_data_paths(const char *given_wordnet, const char *given_paraphrase, const char **wordnet,
                           const char **paraphrase, char *why, size_t cap);
int m2u_caption_evaluate_meteor(size_t n, const char *const *cands, const char *const *const *refs,
                                const int *n_refs, const char *wordnet_dir, const char *paraphrase_path,
                                m2u_caption_scores *corpus, m2u_caption_scores *per_item,
                                const char **meteor_modules);

#endif
