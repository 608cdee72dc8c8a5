/* Frozen ViT (google/vit-base-patch16-224-in21k style, transformers ViTModel) and
 * ViViT (google/vivit-b-16x2-kinetics400, VivitModel) encoders, forward only, fp32.
 *
 * Both are the same network: a patch ("tubelet" for ViViT) convolution with
 * kernel = stride, done as one GEMM over im2col patches, a CLS token, learned
 * position embeddings, pre-norm encoder layers (encoder_layer.h) and a final
 * LayerNorm.  ViT is the ViViT case with one frame and a 1-frame tubelet.
 * Tokens are ordered CLS, then t*(gh*gw) + y*gw + x as torch's flatten(2) does.
 *
 * What M2UGen stores per sample is last_hidden_state (after the final
 * LayerNorm): [197, 768] for ViT-B/16 at 224, [3137, 768] for ViViT-B 16x2 on
 * 32 frames.  The hidden_states list has layers+1 entries: the embeddings,
 * then each layer's output; the last entry is BEFORE the final LayerNorm. */
#ifndef M2U_VIT_ENCODER_H
#define M2U_VIT_ENCODER_H

#include "encoder_layer.h"

#include <stdint.h>

/* What a config may ask for: tokens (ViT-B/16 at 224 takes 197, ViViT-B 16x2 on 32 frames
 * 3137) and input values (frames x channels x height x width; 4.8M for that ViViT). */
#define M2U_VIT_MAX_TOKENS 65536
#define M2U_VIT_MAX_INPUT ((int64_t)1 << 30)

typedef struct {
    int video; /* 0: ViT (model_type "vit"), 1: ViViT ("vivit") */
    m2u_enc_dims dims;
    int layers, channels;
    int image_h, image_w, frames;    /* input size the model takes (frames = 1 for ViT) */
    int patch_t, patch_h, patch_w;   /* tubelet (patch_t = 1 for ViT) */
    int grid_t, grid_h, grid_w;      /* patches along each axis */
    int n_tokens;                    /* 1 + grid_t * grid_h * grid_w */
    /* preprocessing (preprocessor_config.json, else the processor's defaults) */
    int do_rescale, offset, do_normalize;
    double rescale_factor;
    double image_mean[3], image_std[3];
} m2u_vit_config;

typedef struct m2u_vit m2u_vit;

/* Load a ViTModel / VivitModel checkpoint directory: config.json (model_type
 * "vit" or "vivit"), optional preprocessor_config.json, and model.safetensors,
 * a sharded index or pytorch_model.bin.  Weight names may carry the "vit." /
 * "vivit." prefix of the *ForImageClassification / *ForVideoClassification
 * checkpoints; heads and poolers are ignored. */
int m2u_vit_load(const char *dir, m2u_vit **out);
void m2u_vit_free(m2u_vit *m);
const m2u_vit_config *m2u_vit_config_of(const m2u_vit *m);

/* ViTImageProcessor / VivitImageProcessor after resizing and cropping (the
 * caller's job): rgb uint8 [frames][image_h][image_w][3] (frames = 1 for ViT)
 * -> pixel_values [frames][3][image_h][image_w] (ViT: [3][H][W]), computed as
 * transformers does it: x = float(p * rescale_factor) (in double, rounded once),
 * x -= 1 when offset (ViViT), x = (x - mean[c]) / std[c] in fp32. */
int m2u_vit_preprocess(const m2u_vit *m, const uint8_t *rgb, float *pixel_values);

/* pixel_values as above -> last_hidden_state [n_tokens][hidden] (may be NULL)
 * and, when hidden_states is not NULL, all layers+1 hidden states
 * [layers+1][n_tokens][hidden]. */
int m2u_vit_forward(const m2u_vit *m, const float *pixel_values, float *hidden_states, float *last_hidden_state);

/* What a dataset shard stores: preprocess + forward -> last_hidden_state [n_tokens][hidden]. */
int m2u_vit_features(const m2u_vit *m, const uint8_t *rgb, float *tokens);

#endif
