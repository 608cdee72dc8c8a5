/* The one attention kernel (scaled dot-product attention), forward and backward, for every
 * model: LLaMA's causal grouped-query attention (training and the KV-cache decode), the
 * full multi-head attention of nn.Transformer / the encoders (MERT, ViT, ViViT, BERT), and
 * T5's attention with a relative-position bias and a padding mask, and the BART-style decoder
 * of MusicGen (pre-scaled query, finfo.min key bias, KV cache with a batch stride).
 *
 * Layout.  B sequences; sequence b has queries q + b*T*qs ([T][H*hd], row stride qs floats),
 * keys k + b*S*ks and values v + b*S*vs ([S][KV*hd], row strides ks, vs; with kv_bstride set,
 * k + b*kv_bstride and v + b*kv_bstride: a cache sized for more than S keys).  Head h reads
 * kv head h / (H/KV) (GQA; KV must divide H; KV = H is plain MHA).  out is [B*T][H*hd], dense.
 *
 *   score[t][s] = scale * q_t.k_s + bias[h or 0][t][s] + key_bias[b][s]
 *                 (prescale_q: (scale * q_t, rounded to float) . k_s + ..., BartAttention's order)
 *   visible(t, s) = (!causal || s <= pos0 + t) && (!key_mask || key_mask[b*S + s])
 *   probs = softmax over the visible s (the others get probability 0)
 *
 * A query with no visible key gets all-zero probabilities and a zero output (where torch's
 * -inf mask would give NaN and a finfo.min mask a uniform row).  key_bias is the other way of
 * padding: transformers' additive mask, 0 for a kept key and -FLT_MAX (finfo.min) for a padded
 * one, which stays in the softmax, so a row whose keys are all padded comes out uniform over
 * them, as torch's does (MusicGen's classifier-free-guidance null half relies on it).  The
 * biases are constants: their gradients are not computed (T5's relative bias is frozen where
 * we use it).  key_bias, kv_bstride and prescale_q are forward only (inference decoders); the
 * backward refuses them.  T = 1 with prescale_q runs a scalar path (the decode step). */
#ifndef M2U_ATTENTION_H
#define M2U_ATTENTION_H

#include "m2u_error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int B, T, S;       /* sequences, queries and keys per sequence */
    int H, KV, hd;     /* query heads, key/value heads (divides H), head size */
    int qs, ks, vs;    /* row strides of q, k, v in floats */
    int causal, pos0;  /* causal: query t sits at position pos0 + t and sees keys 0..pos0+t */
    float scale;       /* multiplies q.k; LLaMA and nn.MultiheadAttention use 1/sqrt(hd), T5 uses 1 */
    const float *bias; /* NULL or [bias_heads][T][S], added after the scale, shared by the B sequences */
    int bias_heads;    /* H (one plane per head) or 1 (broadcast) */
    const int32_t *key_mask; /* NULL or [B][S]: 0 hides key s from every query of sequence b */
    const float *key_bias;   /* NULL or [B][S]: added to every score of sequence b (after bias) */
    size_t kv_bstride;       /* floats from one sequence's k (and v) to the next; 0: S*ks and S*vs */
    int prescale_q;          /* 1: scale q before the dot product (BartAttention), 0: scale q.k */
    float *lse;              /* NULL or [B][H][T]: a forward without probs writes each query's log-sum-exp
                                of its scores (+inf for a query with no visible key); a backward without
                                probs recomputes the probabilities from it, block by block */
} m2u_attn;

/* The refusals every backend makes before any work (bad dimensions, a bias with another head
 * count, overlapping per-sequence k/v): -1 with m2u_fail naming `what`, else 0.  Inline so the
 * CPU and the CUDA backends share it without linking each other. */
static inline int m2u_attn_check(const m2u_attn *a, const char *what) {
    if (a->B < 0 || a->T < 0 || a->S < 0 || a->H <= 0 || a->KV <= 0 || a->hd <= 0 || a->H % a->KV)
        return m2u_fail("%s: bad dimensions B=%d T=%d S=%d H=%d KV=%d hd=%d (KV must divide H)", what, a->B, a->T,
                        a->S, a->H, a->KV, a->hd);
    if (a->bias && a->bias_heads != 1 && a->bias_heads != a->H)
        return m2u_fail("%s: bias has %d heads, expected 1 or %d", what, a->bias_heads, a->H);
    /* sequences' k/v must not overlap: a stride below S rows is a caller's layout error */
    int kvs = a->ks > a->vs ? a->ks : a->vs;
    if (a->kv_bstride && a->kv_bstride < (size_t)a->S * kvs)
        return m2u_fail("%s: kv_bstride %zu is smaller than S x row stride = %d x %d", what, a->kv_bstride, a->S, kvs);
    return 0;
}

/* The usual description: no bias, no mask, scale 1/sqrt(hd). */
m2u_attn m2u_attn_make(int B, int T, int S, int H, int KV, int hd, int qs, int ks, int vs, int causal, int pos0);

/* probs [B][H][T][S] is written when non-NULL (the backward can use it).  Without probs the
 * forward runs in blocks of query rows that keep their scores in cache (no T x S buffer), with
 * a vectorised float softmax, and writes a->lse when set: what the memory-light backward needs.
 * Returns -1 (m2u_fail) on bad dimensions or when out of memory. */
int m2u_attn_fwd(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v);

/* Backward from the saved probs, or (probs NULL) from a->lse, recomputing each block of query
 * rows' probabilities (flash-attention style: one more q.k product, no B x H x T x S
 * activation).  dq, dk, dv ACCUMULATE, in the layouts (and strides) of q, k, v; any of them
 * may be NULL (not needed).  dout has out's layout.  Parallel over (sequence, kv head): the
 * heads of one group all add into the same dk/dv columns. */
int m2u_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                 const float *q, const float *k, const float *v);

#endif
