/* The paper's KL (M2UGen Evaluation/{Text,Image,Video}2Music/evaluate.py, scorers.md §2.3), natively:
 *   each file: librosa.load(sr=32000) (audio_load.h), first 320,000 samples,
 *   PaSST logits (passt.h), p = softmax;
 *   KL = mean over pairs of sum_c p_ref (log p_ref - log(p_gen + 1e-6)),
 * pairs matched by the file's path inside its folder without the extension
 * (so generated .mp3 pair with reference .wav).  Unmatched files on either
 * side are listed, not scored.  A file that cannot be decoded, or is too short
 * for one PaSST patch (< 0.15 s), fails the run naming it. */
#ifndef M2U_PASST_KL_H
#define M2U_PASST_KL_H

#include "passt.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    const char *checkpoint;  /* PaSST state dict (.pt / .safetensors) */
    m2u_passt_opts passt;    /* heads, strides (passt.h defaults when 0) */
    const char *ref_dir, *gen_dir;
} m2u_passt_kl_opts;

/* Score the two folders; on success *report (caller frees with cJSON_Delete)
 * holds {"metric", "kl", "n_pairs", "pairs": [{"name", "ref", "gen", "kl"}],
 * "unmatched_ref": [...], "unmatched_gen": [...], "provenance": {embedder,
 * checkpoint, checkpoint_sha256, heads, strides, sizes, loader, resampler,
 * max_samples, eps}} and *kl the score.  No pairs at all is an error. */
int m2u_passt_kl(const m2u_passt_kl_opts *o, cJSON **report, double *kl);

#endif
