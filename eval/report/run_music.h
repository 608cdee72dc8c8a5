/* A trained M2UGen run as a music maker, shared by m2u-generate and m2u-eval run --musicgen.
 *
 * The [AUD] block -> MusicGen conditioning, exactly as the trainer defines the projector input
 * (models/nets/m2ugen.c): the run answers greedily with the KV cache; when it emits [AUD0] the
 * remaining [AUD1..n-1] ids are appended (the trainer's layout, prompt.h), one forward over the
 * whole sequence gives x[k] = h_last[p+k] + embed([AUDk]) (p = the position that predicted
 * [AUD0]), then the output projector and / target_scale (music.h's m2u_music_states_from_aud).
 *
 * Functions return 0, or -1 after m2u_fail(); nothing here prints. */
#ifndef M2U_RUN_MUSIC_H
#define M2U_RUN_MUSIC_H

#include "config.h"
#include "mert_encoder.h"
#include "model_setup.h"
#include "vit_encoder.h"

typedef struct {
    m2u_train_config c;
    int have_config;
    m2u_train_model em;
    char *checkpoint;
    char *config_path;
} m2u_run_model;

/* Open RUN_DIR (its config.yaml; the model as m2u-train builds it; the newest complete
 * checkpoint, or ckpt_file in the released M2UGen layout when not NULL).  The model must have an
 * output projector and [AUD] tokens.  m2u_run_close also after a failed open. */
int m2u_run_open(const char *run_dir, const char *ckpt_file, m2u_run_model *r);
void m2u_run_close(m2u_run_model *r);

/* Real encoders for the user's media (NULL: the built-in features). */
typedef struct {
    m2u_mert *mert;
    m2u_vit *vit, *vivit;
} m2u_run_encoders;

/* media[g] (music, image, video file, or NULL) -> feat[g] (malloc'ed, the adapter's shape) and
 * present[g]; see run_music.c. */
int m2u_run_media_features(const m2u_run_model *r, const m2u_run_encoders *enc, const char *const media[3],
                           float *feat[3], int present[3]);

/* Greedy answer of em's model to instruction (filled into prompt_template) with the features
 * feat[g] where present[g]: stops at EOS, at [AUD0], or after max_new tokens.  *answer: the text
 * without [AUD] ids (malloc'ed); *states: the conditioning [n_out, out_dim] / target_scale
 * (malloc'ed), or NULL when the answer has no [AUD0]. */
int m2u_run_answer(m2u_train_model *em, const char *prompt_template, int ignore_index, const char *instruction,
                   float *const feat[3], const int present[3], int max_new, char **answer, float **states);

/* The conditioning of an answer already generated: seq [n] = BOS + prompt tokens + the answer's
 * tokens up to and including [AUD0]; the rest of the [AUD] block is appended and one forward
 * with the features gives *states (malloc'ed), as m2u_run_answer's. */
int m2u_run_aud_states(m2u_train_model *em, int ignore_index, const int32_t *seq, int n, float *const feat[3],
                       const int present[3], float **states);

#endif
