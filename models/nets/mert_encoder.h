/* Frozen MERT encoder (m-a-p/MERT-v1-95M, MERT-v1-330M), forward only, fp32.
 *
 * MERT-v1 is HuBERT's architecture (MERTModel subclasses transformers'
 * HubertModel and reuses its feature encoder, encoders and attention); its
 * extra paths (CQT features, DeepNorm / attention relaxation) are off in both
 * v1 checkpoints and are refused here when a config turns them on.  So this is
 * transformers' HubertModel:
 *   conv feature encoder (feat_extract_norm "group": GroupNorm on layer 0 only;
 *   "layer": LayerNorm on every layer) -> feature projection (LayerNorm when
 *   feat_proj_layer_norm, Linear) -> weight-normed grouped positional conv
 *   (last frame dropped for an even kernel, activation, added) -> encoder:
 *     post-norm (do_stable_layer_norm false, 95M): LayerNorm, then layers;
 *     pre-norm (true, 330M): layers, then a final LayerNorm.
 * hidden_states has layers+1 entries [T, hidden]: the encoder input (post-norm:
 * after its LayerNorm), then each layer's output; for the pre-norm model the
 * last entry is after the final LayerNorm.
 *
 * Preprocessing is Wav2Vec2FeatureExtractor's: with do_normalize, each clip is
 * (x - mean) / sqrt(var + 1e-7) (one utterance, no padding). */
#ifndef M2U_MERT_ENCODER_H
#define M2U_MERT_ENCODER_H

#include "encoder_layer.h"

#define M2U_MERT_MAX_CONV 16

typedef struct {
    m2u_enc_dims dims;
    int layers;
    int n_conv;
    int conv_dim[M2U_MERT_MAX_CONV], conv_kernel[M2U_MERT_MAX_CONV], conv_stride[M2U_MERT_MAX_CONV];
    int conv_bias;
    int feat_norm_layer; /* 0: "group", 1: "layer" */
    m2u_act feat_act;
    int feat_proj_layer_norm;
    int pos_kernel, pos_groups;
    int stable; /* do_stable_layer_norm */
    /* preprocessing */
    int sampling_rate, do_normalize;
} m2u_mert_config;

typedef struct m2u_mert m2u_mert;

/* Load a checkpoint directory: config.json (model_type "mert_model" or "hubert"),
 * preprocessor_config.json (Wav2Vec2FeatureExtractor; when absent the sampling
 * rate comes from config.json's "sample_rate" and do_normalize defaults to true),
 * and model.safetensors / index / pytorch_model.bin.  The positional conv weight
 * may be stored as weight_g/weight_v, as parametrizations.weight.original0/1 or
 * as a plain weight. */
int m2u_mert_load(const char *dir, m2u_mert **out);
void m2u_mert_free(m2u_mert *m);
const m2u_mert_config *m2u_mert_config_of(const m2u_mert *m);

/* Frames the conv feature encoder makes of n samples (0 when too short). */
int m2u_mert_n_frames(const m2u_mert *m, long n_samples);

/* Wav2Vec2FeatureExtractor on one mono clip at sampling_rate: out = x normalised
 * when do_normalize, else a copy.  out may alias wav. */
void m2u_mert_preprocess(const m2u_mert *m, const float *wav, long n, float *out);

/* Buffers a forward keeps for the next one.  The conv feature encoder's outputs alone are
 * about 150 MB per 10 s at 24 kHz; allocated and freed per call they are fresh pages every
 * time, which the kernel faults in and zeroes: about a tenth of the front end's time.  A
 * caller that runs clip after clip keeps one workspace (one per thread calling at the same
 * time); it grows to the longest input seen and holds that memory until m2u_mert_ws_free.
 * A zeroed struct is an empty workspace.  Functions given NULL use a temporary one. */
typedef struct {
    float *conv[2], *x, *pos, *scratch;              /* the conv stack's ping-pong, [T][hidden] x2, layer scratch */
    size_t conv_cap[2], x_cap, pos_cap, scratch_cap; /* floats allocated */
} m2u_mert_ws;
void m2u_mert_ws_free(m2u_mert_ws *ws);

/* input_values [n] (already preprocessed) -> hidden_states [layers+1][T][hidden]
 * (may be NULL) and/or layer_means [layers+1][hidden], the mean over the T frames
 * of each hidden state (may be NULL).  Fails when n gives no frame. */
int m2u_mert_forward(const m2u_mert *m, const float *input_values, long n, float *hidden_states, float *layer_means);

/* The same, with the wall time of its two stages: the front end (conv feature
 * encoder, feature projection, positional conv) and the transformer layers
 * (with their final LayerNorm and the means).  For benchmarks. */
typedef struct {
    double front_s, layers_s;
} m2u_mert_times;
int m2u_mert_forward_timed(const m2u_mert *m, m2u_mert_ws *ws, const float *input_values, long n,
                           float *hidden_states, float *layer_means, m2u_mert_times *times);

/* FLOPs (2 per multiply-add) of the products one forward on n samples computes:
 * front = the convs of the feature encoder, the feature projection and the grouped
 * positional conv over T frames; layers = q/k/v/o and the FFN over T frames plus
 * attention's scores and values (4 T^2 hidden per layer).  Biases, norms,
 * activations and softmax are not counted (torch.utils.flop_counter counts the
 * same, except that it counts T+1 positional-conv frames for an even kernel). */
void m2u_mert_flops(const m2u_mert_config *c, long n, double *front, double *layers);

/* What a dataset shard stores for a clip: the clip (mono, at sampling_rate) is cut
 * into windows of 60 s (the last one shorter; a clip under 60 s is one window),
 * each window preprocessed on its own and run through the model, its hidden states
 * averaged over time, and the windows' [layers+1][hidden] means averaged with equal
 * weight (M2UGen's encode_audio, but over every window rather than only the first).
 * A trailing window too short to give one frame (under conv receptive field,
 * 400 samples for MERT) is left out.  means: [layers+1][hidden].  ws: a workspace kept
 * from clip to clip, or NULL for a temporary one. */
int m2u_mert_layer_means(const m2u_mert *m, m2u_mert_ws *ws, const float *wav, long n, float *means);

#endif
