/* EnCodec (transformers' EncodecModel, as MusicGen uses it: facebook/encodec_32khz), fp32, batch 1, mono.
 *
 * What runs (transformers 4.46.3 modeling_encodec.py):
 *   decode  codes [K][N] -> z[N][hidden] = sum_k codebook_k[codes[k][n]] -> SEANet decoder:
 *           conv(k=kernel_size) -> LSTM (num_lstm_layers, skip) -> per ratio r in upsampling_ratios:
 *           ELU, ConvTranspose1d(k=2r, stride r) halving the channels, num_residual_layers residual blocks
 *           (ELU, conv k=residual_kernel_size dilation growth^j, ELU, conv k=1, + identity or 1x1 shortcut)
 *           -> ELU -> conv(k=last_kernel_size) -> N * hop samples (hop = product of the ratios).
 *   encode  wav [n] -> SEANet encoder (the mirror image, strided convs) -> [ceil(n/hop)][hidden]
 *           -> residual VQ: per codebook the nearest entry by euclidean distance, subtracted from the residual.
 * Every conv is non-causal with the reflect (or constant) padding of EncodecConv1d: (eff_k - stride) split
 * right = total/2, left = the rest, plus right padding to a whole number of strides; transposed convs trim
 * (k - stride) the same way.  Weight norm is folded into plain weights at load.
 *
 * Not supported, refused at load with a message naming config.json: use_causal_conv true (the 24 kHz
 * model), norm_type other than weight_norm (time_group_norm: the 48 kHz model), normalize true (audio
 * scales), chunk_length_s (chunked/overlap-add mode), audio_channels other than 1, codebook_dim != hidden_size.
 *
 * Threads: the kernels (ops_audio.h) use OpenMP and OpenBLAS.  The model is read-only after load; each
 * call allocates its own activations (about 0.5 KB per output sample at encodec_32khz's shape: decoding
 * 30 s peaks at 0.62 GB resident with the decoder weights; the encoder needs about the same per input
 * sample), so concurrent calls on one model are safe.
 * Weights are held in fp32 whatever their stored type (weight norm is folded and the LSTM repacked at
 * load): 236 MB for encodec_32khz, 118 MB decoder-only (m2u_encodec_load_ex). */
#ifndef M2U_ENCODEC_H
#define M2U_ENCODEC_H

#include <stddef.h>
#include <stdint.h>

#define M2U_ENCODEC_MAX_RATIOS 8
#define M2U_ENCODEC_MAX_BANDWIDTHS 16

typedef struct {
    int audio_channels, sampling_rate;
    int hidden_size, num_filters, num_residual_layers;
    int n_ratios, upsampling_ratios[M2U_ENCODEC_MAX_RATIOS];
    int kernel_size, last_kernel_size, residual_kernel_size, dilation_growth_rate, compress;
    int num_lstm_layers;
    int pad_reflect; /* pad_mode "reflect" (1) or "constant" (0) */
    int use_conv_shortcut;
    int codebook_size, codebook_dim;
    int n_bandwidths;
    double target_bandwidths[M2U_ENCODEC_MAX_BANDWIDTHS];
    /* derived as EncodecConfig does */
    int hop_length;      /* product of upsampling_ratios */
    int frame_rate;      /* ceil(sampling_rate / hop_length) */
    int num_quantizers;  /* int(1000 * target_bandwidths[-1] // (frame_rate * 10)): codebooks in the checkpoint */
} m2u_encodec_config;

typedef struct m2u_encodec m2u_encodec;

/* Load EnCodec from `path`:
 *   - a directory with config.json (model_type "encodec") and model.safetensors / a sharded index /
 *     pytorch_model.bin (what save_pretrained writes; facebook/encodec_32khz as shipped), or
 *   - a MusicGen directory (config.json with an "audio_encoder" sub-config): the codec's tensors are the
 *     ones under "audio_encoder.", or
 *   - a weight file (.safetensors, index .json, .bin) whose directory holds config.json.
 * prefix: prepended to every tensor name; NULL picks "" for an EnCodec config and "audio_encoder." for a
 * MusicGen one.  Conv weights may be weight_g/weight_v, parametrizations.weight.original0/original1 (both
 * folded: w = g * v / ||v||, norm over all dims but 0) or an already folded plain weight.  Weights are
 * converted to fp32 whatever their stored type (every kernel here runs in fp32).  Decoder and encoder are
 * both loaded; the encoder can be skipped with m2u_encodec_load_ex.
 * Errors name the file and the key or tensor at fault. */
int m2u_encodec_load(const char *path, const char *prefix, m2u_encodec **out);
/* As m2u_encodec_load; with_encoder 0 leaves the encoder out (decode only, half the memory). */
int m2u_encodec_load_ex(const char *path, const char *prefix, int with_encoder, m2u_encodec **out);
void m2u_encodec_free(m2u_encodec *m);
const m2u_encodec_config *m2u_encodec_config_of(const m2u_encodec *m);

/* Codebooks transformers' encode uses at `bandwidth` (kbps, one of target_bandwidths; <= 0 means
 * target_bandwidths[0], as bandwidth=None): max(1, floor(bw * 1000 / (log2(codebook_size) * frame_rate))),
 * at most num_quantizers. */
int m2u_encodec_codebooks_for_bandwidth(const m2u_encodec *m, double bandwidth, int *n_codebooks);

/* codes [K][N] (row k = codebook k, values in [0, codebook_size)), 1 <= K <= num_quantizers, N >= 1 ->
 * *wav (malloc'ed, caller frees) with *n = N * hop_length samples: EncodecModel.decode(codes[None, None],
 * [None]).audio_values[0, 0]. */
int m2u_encodec_decode(const m2u_encodec *m, const int32_t *codes, int K, int N, float **wav, size_t *n);

/* wav [n] mono samples at sampling_rate (n >= 1) -> *codes [K][N] (malloc'ed, caller frees), K = n_codebooks
 * (1..num_quantizers), *N = ceil(n / hop_length): EncodecModel.encode(wav[None, None], bandwidth)
 * .audio_codes[0, 0] for the bandwidth giving K codebooks.  Fails without a loaded encoder. */
int m2u_encodec_encode(const m2u_encodec *m, const float *wav, size_t n, int n_codebooks, int32_t **codes, int *N);

#endif
