/* The CUDA backend's attention (attention.h's m2u_attn, forward and backward), RoPE (ops.h) and
 * M2UGen's tanh head gate (tensor.h), with the CPU ops' semantics (models/kernels/cpu/attention.c,
 * ops.c, tensor.c).
 *
 * Attention is the plain algorithm, no flash tiling: the forward runs one thread block per query
 * row (b, h, t), scores of the row in probs (when kept) or in scratch, a softmax over the visible
 * keys, then the weighted sum of V with threads over the head's columns.  The backward runs, per
 * sequence and chunk of query rows, one block per (head, row) for dP, dS and dq, then one block
 * per (key, kv head) that loops over the group's heads and the chunk's rows for dk and dv: one
 * writer per dk/dv element, so GQA's shared columns need no atomics and the sums are
 * deterministic.  Dot products and sums run in double (the CPU's float sgemm is the less exact
 * side); scores are rounded to float before the biases are added, as the CPU adds them. */
#include "cuda_internal.h"

#include <math.h>

#define WARP 32
#define FULL_MASK 0xffffffffu
/* Scratch budget in floats for the score rows of one launch (128 MiB): large inputs run in
 * chunks of query rows instead of a B x H x T x S buffer. */
#define SCORE_BUDGET ((size_t)1 << 25)

/* ---- shared device helpers ---- */

/* Last key visible to query t before the key mask (-1: none), as the CPU's last_key. */
__device__ __forceinline__ int last_key(const m2u_attn &a, int t) {
    int last = a.S - 1;
    if (a.causal && a.pos0 + t < last) last = a.pos0 + t;
    return last;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = WARP / 2; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

/* a . b over n floats by the calling warp (every lane gets the sum); pre multiplies a's values
 * first, rounded to float (BartAttention's pre-scaled query), when pre_on. */
__device__ __forceinline__ double warp_dot(const float *x, const float *y, int n, int pre_on, float pre) {
    int lane = threadIdx.x & (WARP - 1);
    double acc = 0.0;
    for (int j = lane; j < n; j += WARP) {
        float xv = pre_on ? __fmul_rn(x[j], pre) : x[j];
        acc += (double)xv * (double)y[j];
    }
    return warp_sum(acc);
}

/* Block-wide sum, the same value in every thread.  The leading barrier lets a kernel call it
 * twice (the second call's writes wait for the first call's reads). */
__device__ double block_sum(double v) {
    __shared__ double sh[WARP];
    v = warp_sum(v);
    int lane = threadIdx.x & (WARP - 1), w = threadIdx.x / WARP, nw = (blockDim.x + WARP - 1) / WARP;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double r = 0.0;
    for (int i = 0; i < nw; i++) r += sh[i];
    return r;
}

/* Block-wide max with the CPU's comparison (p > mx ? p : mx from -inf: NaN scores are skipped). */
__device__ float block_max(float v) {
    __shared__ float sh[WARP];
    for (int off = WARP / 2; off > 0; off >>= 1) {
        float o = __shfl_xor_sync(FULL_MASK, v, off);
        v = o > v ? o : v;
    }
    int lane = threadIdx.x & (WARP - 1), w = threadIdx.x / WARP, nw = (blockDim.x + WARP - 1) / WARP;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; i++) r = sh[i] > r ? sh[i] : r;
    return r;
}


/* ---- attention forward ---- */

/* One block per query row r = (b*H + h)*T + t, rows row0 .. row0 + gridDim.x - 1.  p: the row's
 * probs when kept, else scratch row blockIdx.x. */
__global__ void attn_fwd_rows(m2u_attn a, size_t kbs, size_t vbs, long long row0, float *out, float *probs,
                              float *scr, const float *q, const float *k, const float *v) {
    long long r = row0 + blockIdx.x;
    int T = a.T, S = a.S, H = a.H, hd = a.hd, group = a.H / a.KV;
    int t = (int)(r % T), bh = (int)(r / T), b = bh / H, h = bh % H, g = h / group;
    float *p = probs ? probs + (size_t)r * S : scr + (size_t)blockIdx.x * S;
    const float *qr = q + ((size_t)b * T + t) * a.qs + (size_t)h * hd;
    const float *kb = k + (size_t)b * kbs + (size_t)g * hd, *vb = v + (size_t)b * vbs + (size_t)g * hd;
    const float *brow = a.bias ? a.bias + ((size_t)(a.bias_heads == 1 ? 0 : h) * T + t) * S : NULL;
    const float *kbias = a.key_bias ? a.key_bias + (size_t)b * S : NULL;
    const int32_t *mask = a.key_mask ? a.key_mask + (size_t)b * S : NULL;
    float *o = out + ((size_t)b * T + t) * ((size_t)H * hd) + (size_t)h * hd;
    int last = last_key(a, t), lane = threadIdx.x & (WARP - 1), warp = threadIdx.x / WARP;
    int nwarps = blockDim.x / WARP;

    /* scores, a warp per key: the float score, then + bias, + key_bias in float as the CPU */
    for (int s = warp; s <= last; s += nwarps) {
        double d = warp_dot(qr, kb + (size_t)s * a.ks, hd, a.prescale_q, a.scale);
        if (lane == 0) {
            float sc = a.prescale_q ? (float)d : (float)(d * (double)a.scale);
            if (brow) sc += brow[s];
            if (kbias) sc += kbias[s];
            p[s] = sc;
        }
    }
    if (probs)
        for (int s = last + 1 + (int)threadIdx.x; s < S; s += blockDim.x) p[s] = 0.0f;
    __syncthreads();

    float mx = -INFINITY;
    int any = 0;
    for (int s = threadIdx.x; s <= last; s += blockDim.x)
        if (!mask || mask[s]) {
            mx = p[s] > mx ? p[s] : mx;
            any = 1;
        }
    any = __syncthreads_or(any);
    if (!any) { /* nothing visible: zero probabilities, zero output, lse +inf */
        if (probs)
            for (int s = threadIdx.x; s <= last; s += blockDim.x) p[s] = 0.0f;
        for (int j = threadIdx.x; j < hd; j += blockDim.x) o[j] = 0.0f;
        if (!probs && a.lse && threadIdx.x == 0) a.lse[r] = INFINITY;
        return;
    }
    mx = block_max(mx);

    double sum = 0.0;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) {
        if (!mask || mask[s]) {
            double e = exp((double)(p[s] - mx));
            p[s] = (float)e;
            sum += e;
        } else {
            p[s] = 0.0f;
        }
    }
    sum = block_sum(sum);
    double inv = 1.0 / sum;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) p[s] = (float)((double)p[s] * inv);
    if (!probs && a.lse && threadIdx.x == 0) a.lse[r] = (float)((double)mx + log(sum));
    __syncthreads(); /* the row's probabilities, written by all threads, before the V sum reads them */

    for (int j = threadIdx.x; j < hd; j += blockDim.x) {
        double acc = 0.0;
        for (int s = 0; s <= last; s++) acc += (double)p[s] * (double)vb[(size_t)s * a.vs + j];
        o[j] = (float)acc;
    }
}

extern "C" int m2u_cuda_attn_fwd(const m2u_attn *a, float *out, float *probs, const float *q, const float *k,
                                 const float *v) {
    if (m2u_attn_check(a, "attention")) return -1;
    int B = a->B, T = a->T, S = a->S, H = a->H, hd = a->hd;
    if (B == 0 || T == 0) return 0;
    if (S == 0) {
        m2u_cuda_note(cudaMemsetAsync(out, 0, (size_t)B * T * H * hd * sizeof(float), 0), "attention: zero output");
        return m2u_cuda_failed();
    }
    size_t kbs = a->kv_bstride ? a->kv_bstride : (size_t)S * a->ks;
    size_t vbs = a->kv_bstride ? a->kv_bstride : (size_t)S * a->vs;
    long long rows = (long long)B * H * T, chunk;
    float *scr = NULL;
    if (probs) {
        chunk = rows < (1ll << 30) ? rows : (1ll << 30);
    } else {
        long long fit = (long long)(SCORE_BUDGET / (size_t)S);
        if (fit < 1) fit = 1;
        chunk = rows < fit ? rows : fit;
        scr = (float *)m2u_cuda_scratch((size_t)chunk * S * sizeof(float));
        if (!scr) return m2u_cuda_failed() ? -1 : m2u_fail("attention: no device scratch for %lld x %d scores", chunk, S);
    }
    for (long long r0 = 0; r0 < rows; r0 += chunk) {
        long long n = rows - r0 < chunk ? rows - r0 : chunk;
        attn_fwd_rows<<<(unsigned)n, M2U_CUDA_THREADS>>>(*a, kbs, vbs, r0, out, probs, scr, q, k, v);
        m2u_cuda_note_launch("attention forward");
    }
    return m2u_cuda_failed();
}

/* ---- attention backward ---- */

/* Sequence b, query rows t0 .. t0 + gridDim.x - 1, one block per (row, head = blockIdx.y):
 * P (recomputed from lse when probs is NULL, into Pscr), dS = P (dP - sum P dP) with
 * dP = dO V^T into dS, and dq += scale dS K.  Scratch rows: (h * tn + row) * S. */
__global__ void attn_bwd_rows(m2u_attn a, int b, int t0, int tn, const float *probs, float *Pscr, float *dS,
                              float *dq, const float *dout, const float *q, const float *k, const float *v) {
    int T = a.T, S = a.S, H = a.H, hd = a.hd, group = a.H / a.KV;
    int i = blockIdx.x, t = t0 + i, h = blockIdx.y, g = h / group;
    size_t srow = ((size_t)h * tn + i) * S;
    const float *P = probs ? probs + (((size_t)b * H + h) * T + t) * S : Pscr + srow;
    float *d = dS + srow;
    const float *qr = q + ((size_t)b * T + t) * a.qs + (size_t)h * hd;
    const float *dor = dout + ((size_t)b * T + t) * ((size_t)H * hd) + (size_t)h * hd;
    const float *kb = k + (size_t)b * S * a.ks + (size_t)g * hd, *vb = v + (size_t)b * S * a.vs + (size_t)g * hd;
    const float *brow = a.bias ? a.bias + ((size_t)(a.bias_heads == 1 ? 0 : h) * T + t) * S : NULL;
    const int32_t *mask = a.key_mask ? a.key_mask + (size_t)b * S : NULL;
    int last = last_key(a, t), lane = threadIdx.x & (WARP - 1), warp = threadIdx.x / WARP;
    int nwarps = blockDim.x / WARP;
    float lse = probs ? 0.0f : a.lse[((size_t)b * H + h) * T + t];

    for (int s = warp; s <= last; s += nwarps) {
        double dp = warp_dot(dor, vb + (size_t)s * a.vs, hd, 0, 1.0f);
        if (!probs) {
            double sd = warp_dot(qr, kb + (size_t)s * a.ks, hd, 0, 1.0f);
            if (lane == 0) {
                float sc = (float)(sd * (double)a.scale);
                if (brow) sc += brow[s];
                /* the forward's probability again; hidden keys 0 */
                Pscr[srow + s] = (!mask || mask[s]) ? (float)exp((double)(sc - lse)) : 0.0f;
            }
        }
        if (lane == 0) d[s] = (float)dp;
    }
    for (int s = last + 1 + (int)threadIdx.x; s < S; s += blockDim.x) {
        d[s] = 0.0f;
        if (!probs) Pscr[srow + s] = 0.0f;
    }
    __syncthreads();

    double dot = 0.0;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) dot += (double)P[s] * (double)d[s];
    dot = block_sum(dot);
    for (int s = threadIdx.x; s <= last; s += blockDim.x) d[s] = (float)((double)P[s] * ((double)d[s] - dot));
    __syncthreads(); /* dS complete before the dq sum reads it */

    if (dq) {
        float *dqr = dq + ((size_t)b * T + t) * a.qs + (size_t)h * hd;
        for (int j = threadIdx.x; j < hd; j += blockDim.x) {
            double acc = 0.0;
            for (int s = 0; s <= last; s++) acc += (double)d[s] * (double)kb[(size_t)s * a.ks + j];
            dqr[j] += (float)(acc * (double)a.scale);
        }
    }
}

/* Sequence b, the chunk's tn query rows from t0, one block per (key s = blockIdx.x, kv head g =
 * blockIdx.y): dk[s] += scale sum dS[., s] q, dv[s] += sum P[., s] dO over the group's heads
 * and the rows; the only writer of its dk/dv columns. */
__global__ void attn_bwd_kv(m2u_attn a, int b, int t0, int tn, const float *probs, const float *Pscr,
                            const float *dS, float *dk, float *dv, const float *dout, const float *q) {
    int T = a.T, S = a.S, H = a.H, hd = a.hd, group = a.H / a.KV;
    int s = blockIdx.x, g = blockIdx.y;
    size_t od = (size_t)H * hd;
    for (int j = threadIdx.x; j < hd; j += blockDim.x) {
        double ak = 0.0, av = 0.0;
        for (int h = g * group; h < (g + 1) * group; h++)
            for (int i = 0; i < tn; i++) {
                int t = t0 + i;
                size_t srow = ((size_t)h * tn + i) * S;
                float pv = probs ? probs[(((size_t)b * H + h) * T + t) * S + s] : Pscr[srow + s];
                size_t qo = ((size_t)b * T + t) * a.qs + (size_t)h * hd, oo = ((size_t)b * T + t) * od + (size_t)h * hd;
                if (dk) ak += (double)dS[srow + s] * (double)q[qo + j];
                if (dv) av += (double)pv * (double)dout[oo + j];
            }
        if (dk) dk[((size_t)b * S + s) * a.ks + (size_t)g * hd + j] += (float)(ak * (double)a.scale);
        if (dv) dv[((size_t)b * S + s) * a.vs + (size_t)g * hd + j] += (float)av;
    }
}

extern "C" int m2u_cuda_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout,
                                 const float *probs, const float *q, const float *k, const float *v) {
    if (m2u_attn_check(a, "attention backward")) return -1;
    /* the decoder conventions exist for inference; a silent wrong gradient would be worse than none */
    if (a->key_bias || a->kv_bstride || a->prescale_q)
        return m2u_fail("attention backward: key_bias, kv_bstride and prescale_q are forward-only (got %s%s%s)",
                        a->key_bias ? "key_bias " : "", a->kv_bstride ? "kv_bstride " : "",
                        a->prescale_q ? "prescale_q" : "");
    if (a->B == 0 || a->T == 0 || a->S == 0) return 0;
    if (!probs && !a->lse) return m2u_fail("attention backward: neither probs nor lse from the forward");
    if (!dq && !dk && !dv) return 0;
    int B = a->B, T = a->T, S = a->S, H = a->H, KV = a->KV, hd = a->hd;
    /* rows of one sequence per chunk, all heads: dS (and P when recomputed) for H x tn x S */
    size_t per_row = (size_t)H * S * (probs ? 1 : 2);
    long long fit = (long long)(SCORE_BUDGET / per_row);
    int tn = fit < 1 ? 1 : (fit < T ? (int)fit : T);
    float *dS = (float *)m2u_cuda_scratch((size_t)H * tn * S * sizeof(float));
    float *Pscr = probs ? NULL : (float *)m2u_cuda_scratch2((size_t)H * tn * S * sizeof(float));
    if (!dS || (!probs && !Pscr))
        return m2u_cuda_failed() ? -1 : m2u_fail("attention backward: no device scratch for %d x %d x %d scores", H, tn, S);
    unsigned kv_threads = (unsigned)((hd + WARP - 1) / WARP * WARP);
    if (kv_threads > M2U_CUDA_THREADS) kv_threads = M2U_CUDA_THREADS;
    for (int b = 0; b < B; b++)
        for (int t0 = 0; t0 < T; t0 += tn) {
            int n = T - t0 < tn ? T - t0 : tn;
            attn_bwd_rows<<<dim3((unsigned)n, (unsigned)H), M2U_CUDA_THREADS>>>(*a, b, t0, n, probs, Pscr, dS, dq,
                                                                                dout, q, k, v);
            m2u_cuda_note_launch("attention backward (rows)");
            if (dk || dv) {
                attn_bwd_kv<<<dim3((unsigned)S, (unsigned)KV), kv_threads>>>(*a, b, t0, n, probs, Pscr, dS, dk, dv,
                                                                             dout, q);
                m2u_cuda_note_launch("attention backward (keys)");
            }
        }
    return m2u_cuda_failed();
}

/* ---- RoPE ---- */

__global__ void rope_table_k(float *cos_t, float *sin_t, const int *pos, int N, int half, const float *inv_freq) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * half) return;
    int n = (int)(i / half), j = (int)(i % half);
    float f = __fmul_rn((float)pos[n], inv_freq[j]); /* the fp32 angle, as transformers */
    cos_t[i] = (float)cos((double)f);
    sin_t[i] = (float)sin((double)f);
}

/* The CPU's rotation of the pair (j, j + half), products and sums rounded one by one (no FMA
 * contraction), so the values are the CPU's own. */
__global__ void rope_apply_k(float *x, int N, int stride, int n_heads, int hd, const float *cos_t,
                             const float *sin_t, float sign) {
    int half = hd / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * n_heads * half) return;
    int j = (int)(i % half);
    size_t nh = i / half;
    int h = (int)(nh % n_heads), n = (int)(nh / n_heads);
    float c = cos_t[(size_t)n * half + j], s = sign * sin_t[(size_t)n * half + j];
    float *vr = x + (size_t)n * stride + (size_t)h * hd;
    float a = vr[j], b = vr[j + half];
    vr[j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    vr[j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

extern "C" void m2u_cuda_rope_table(float *cos_t, float *sin_t, const int *pos, int N, int head_dim,
                                    const float *inv_freq) {
    size_t n = N > 0 && head_dim / 2 > 0 ? (size_t)N * (head_dim / 2) : 0;
    if (!n) return;
    rope_table_k<<<M2U_CUDA_GRID(n), M2U_CUDA_THREADS>>>(cos_t, sin_t, pos, N, head_dim / 2, inv_freq);
    m2u_cuda_note_launch("rope_table");
}

static void rope_apply(float *x, int N, int stride, int n_heads, int hd, const float *cos_t, const float *sin_t,
                       float sign, const char *what) {
    size_t n = N > 0 && n_heads > 0 && hd / 2 > 0 ? (size_t)N * n_heads * (hd / 2) : 0;
    if (!n) return;
    rope_apply_k<<<M2U_CUDA_GRID(n), M2U_CUDA_THREADS>>>(x, N, stride, n_heads, hd, cos_t, sin_t, sign);
    m2u_cuda_note_launch(what);
}

extern "C" void m2u_cuda_rope_fwd(float *x, int N, int stride, int n_heads, int head_dim, const float *cos_t,
                                  const float *sin_t) {
    rope_apply(x, N, stride, n_heads, head_dim, cos_t, sin_t, 1.0f, "rope_fwd");
}

/* The rotation is orthogonal: its gradient is the rotation by -angle. */
extern "C" void m2u_cuda_rope_bwd(float *dx, int N, int stride, int n_heads, int head_dim, const float *cos_t,
                                  const float *sin_t) {
    rope_apply(dx, N, stride, n_heads, head_dim, cos_t, sin_t, -1.0f, "rope_bwd");
}

/* ---- M2UGen's tanh head gate ---- */

/* tanh in double rounded once: glibc's tanhf is within an ulp of that, CUDA's tanhf within 2. */
__device__ __forceinline__ float gate_tanh(float g) { return (float)tanh((double)g); }

__global__ void head_gate_add_k(float *att, const float *av, const float *gate, int T, int H, int KV, int hd,
                                size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t qd = (size_t)H * hd, row = i / qd;
    int c = (int)(i % qd), h = c / hd, d = c % hd, group = H / KV;
    float tg = gate_tanh(gate[h]);
    float vv = av[(row / T) * ((size_t)KV * hd) + (size_t)(h / group) * hd + d];
    att[i] = __fadd_rn(att[i], __fmul_rn(tg, vv));
}

extern "C" void m2u_cuda_head_gate_add(float *att, const float *av, const float *gate, int B, int T, int H, int KV,
                                       int hd) {
    size_t n = B > 0 && T > 0 && H > 0 && hd > 0 ? (size_t)B * T * H * hd : 0;
    if (!n || KV <= 0) return;
    head_gate_add_k<<<M2U_CUDA_GRID(n), M2U_CUDA_THREADS>>>(att, av, gate, T, H, KV, hd, n);
    m2u_cuda_note_launch("head_gate_add");
}

/* dgate[h] += (1 - tg^2) * sum over b, t, d of datt * av, in double; one block per head. */
__global__ void head_gate_dgate_k(float *dgate, const float *datt, const float *av, const float *gate, int B, int T,
                                  int H, int KV, int hd) {
    int h = blockIdx.x, group = H / KV;
    size_t kvd = (size_t)KV * hd, qd = (size_t)H * hd, n = (size_t)B * T * hd;
    double acc = 0.0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        size_t bt = i / hd;
        int d = (int)(i % hd), b = (int)(bt / T);
        acc += (double)datt[bt * qd + (size_t)h * hd + d] * (double)av[(size_t)b * kvd + (size_t)(h / group) * hd + d];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
        float tg = gate_tanh(gate[h]);
        dgate[h] += (float)((1.0 - (double)tg * tg) * acc);
    }
}

/* dav[b][g][d] += tg(h) * datt over the group's heads in head order, then t: the CPU's float
 * additions in its order, one thread per element. */
__global__ void head_gate_dav_k(float *dav, const float *datt, const float *gate, int B, int T, int H, int KV,
                                int hd) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, kvd = (size_t)KV * hd, qd = (size_t)H * hd;
    if (i >= (size_t)B * kvd) return;
    int b = (int)(i / kvd), c = (int)(i % kvd), g = c / hd, d = c % hd, group = H / KV;
    float acc = dav[i];
    for (int h = g * group; h < (g + 1) * group; h++) {
        float tg = gate_tanh(gate[h]);
        for (int t = 0; t < T; t++)
            acc = __fadd_rn(acc, __fmul_rn(tg, datt[((size_t)b * T + t) * qd + (size_t)h * hd + d]));
    }
    dav[i] = acc;
}

extern "C" void m2u_cuda_head_gate_bwd(float *dgate, float *dav, const float *datt, const float *av,
                                       const float *gate, int B, int T, int H, int KV, int hd) {
    if (H <= 0 || KV <= 0 || hd <= 0 || B < 0 || T < 0) return;
    head_gate_dgate_k<<<(unsigned)H, M2U_CUDA_THREADS>>>(dgate, datt, av, gate, B, T, H, KV, hd);
    m2u_cuda_note_launch("head_gate_bwd (gate)");
    size_t n = (size_t)B * KV * hd;
    if (!n || T == 0) return;
    head_gate_dav_k<<<M2U_CUDA_GRID(n), M2U_CUDA_THREADS>>>(dav, datt, gate, B, T, H, KV, hd);
    m2u_cuda_note_launch("head_gate_bwd (av)");
}
