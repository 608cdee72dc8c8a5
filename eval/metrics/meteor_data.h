/* METEOR 1.5's synonym and paraphrase resources (eval/metrics/meteor_data.c),
 * internal to eval/metrics: the loaders and parsers are public in
 * caption_metrics.h; these are the look-ups meteor.c's matchers use. */
#ifndef M2U_METEOR_DATA_H
#define M2U_METEOR_DATA_H

#include "caption_metrics.h"

/* SynonymDictionary.getSynSets(word) U getStemSynSets(word): the synset
 * offsets of the word and of its base forms (WordNet exception list, else
 * WordNet's morph() suffix rules), sorted and without repeats.  *out is
 * malloc'ed (NULL when *n == 0).  Returns 0 or -1 (out of memory). */
int m2u_meteor_word_synsets(const m2u_meteor_data *d, const char *word, int **out, int *n);

/* ParaphraseTransducer.translate: the word's id in the table's vocabulary, -1 if absent. */
int m2u_meteor_para_word(const m2u_meteor_data *d, const char *word);
/* Longest reference phrase in the table (words). */
int m2u_meteor_para_max_len(const m2u_meteor_data *d);
/* First table entry whose reference phrase is exactly ids[0..len), -1 if none;
 * m2u_meteor_para_next gives the following entries of the same phrase, in file order. */
int m2u_meteor_para_first(const m2u_meteor_data *d, const int *ids, int len);
int m2u_meteor_para_next(const m2u_meteor_data *d, int entry);
/* The paraphrase of an entry: *len word ids. */
const int *m2u_meteor_para_target(const m2u_meteor_data *d, int entry, int *len);

#endif
