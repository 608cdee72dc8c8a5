#!/usr/bin/env python3
"""Generate tests/fixtures/generate/: the M2UGen any-to-music chain in PyTorch, for
tests/eval/test_generate.c (models/generate/music.h).  Python only makes reference files.

Pinned versions (the script refuses others, through the two modules it reuses): python 3.11,
torch 2.5.1, transformers 4.46.3, safetensors 0.8.0, numpy 1.26.4.

Usage:  python3 tests/make_generate_fixtures.py      (~10 s)

The chain (M2UGen's original generation, m2ugen.py <= de2085b, with CFG added):
  x [8, 48]   the projector input (LLaMA's last hidden states at the [AUD] positions + the [AUD]
              embeddings; random here)
  -> ProjectionLayer (M2UGen/llama/projector.py, as tests/make_m2u_fixtures.py: d_model 16,
     2 heads, 1 + 1 layers, ffn 32, 6 query tokens, out_dim 24)   -> / target_scale (10)
  -> MusicgenForConditionalGeneration (tiny random: T5 width 24 -> decoder 32, 2 layers, 4 heads,
     4 codebooks x 64) with encoder_outputs = those states, no mask, guidance 3.
generate(encoder_outputs=..., guidance_scale=3) mis-shapes the batch in transformers 4.46.3 (the
null half is only appended on the text path), so the reference loop is make_musicgen_fixtures'
manual_generate (checked there against HF generate on the text path): the null half is zeros
with mask 0, as generate appends it for text.

fixtures/generate/musicgen/: config.json, generation_config.json, model.safetensors (decoder.*
and enc_to_dec_proj.* only; no T5, no codec: the C side tests those elsewhere).
fixtures/generate/ref.safetensors:
  meta [12] f32       dim, n_in, d_model, heads, n_enc, n_dec, ffn, n_out, out_dim, target_scale,
                      steps (guided logits stored), max_length
  proj_in [8, 48]     x;   output_projector.* the projector's parameters (M2UGen names)
  states [6, 24]      projector(x) / target_scale
  guided_logits [3, 4, 64]   CFG-3 logits of the first 3 decoder passes
  seq [4, 25]         the delayed sequence (float), codes [4, 21] (float) greedy, un-delayed

Continuation (fixtures/generate/continue/: a whole MusicgenForConditionalGeneration with T5, a non-causal
EnCodec and the decoder; continue_ref.safetensors): a 117-sample prompt at 1600 Hz -> EnCodec codes
prompt_codes [3, 8]; HF generate(input_ids=ids, input_values=wav, guidance_scale=3, do_sample=False)
-> codes_g3 [3, 20] (the prompt's 8 frames, then 12 new; text path: HF appends the null half itself);
generate(encoder_outputs=(enc,), input_values=wav, guidance_scale=1) -> codes_g1; text -> music end to end:
TEXT_PROMPT tokenised by tests/fixtures/t5/tokenizer.json (text_ids), generate(guidance 3, greedy, 10 frames)
-> text_audio [160], the waveform transformers returns.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_m2u_fixtures as m2u_fx  # noqa: E402  (pins torch/safetensors/numpy)
import make_musicgen_fixtures as mg_fx  # noqa: E402  (pins transformers too)
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(HERE, "fixtures", "generate")
SPEC = dict(dim=48, n_in=8, d_model=16, n_heads=2, n_enc=1, n_dec=1, ffn=32, n_out=6, out_dim=24, target_scale=10.0)
MG = dict(name="gen", seed=21, t5=dict(d_model=24, d_kv=8, num_heads=3, d_ff=32, num_layers=1, vocab_size=50),
          dec=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64, num_codebooks=4,
                   vocab_size=64, max_position_embeddings=64), bf16=False)
N_FRAMES = 21
G = 3.0
STEPS = 3


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "musicgen"))
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    s = SPEC
    pl = m2u_fx.ProjectionLayer(s["dim"], s["out_dim"], s["n_out"], s["d_model"], s["n_heads"], s["n_enc"], s["n_dec"],
                                s["ffn"])
    mod = m2u_fx.Holder(output_projector=pl).float().eval()
    m2u_fx.randomize(mod, gen)
    x = torch.randn(1, s["n_in"], s["dim"], generator=gen)
    with torch.no_grad():
        # the projector adds its two inputs first: x split as (x, 0) gives projector(x)
        states = mod.output_projector(x, torch.zeros_like(x)) / s["target_scale"]

    model = mg_fx.build(MG)
    K, V = MG["dec"]["num_codebooks"], MG["dec"]["vocab_size"]
    L = N_FRAMES + K
    codes, seq, _, guided = mg_fx.manual_generate(model, states, None, G, L)
    assert codes.shape == (K, N_FRAMES)

    d = os.path.join(OUT, "musicgen")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(os.path.join(tmp, "config.json"), d)
        shutil.copy(os.path.join(tmp, "generation_config.json"), d)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()
          if k.startswith("decoder.") or k.startswith("enc_to_dec_proj.")}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})

    ref = {
        "meta": torch.tensor([s["dim"], s["n_in"], s["d_model"], s["n_heads"], s["n_enc"], s["n_dec"], s["ffn"],
                              s["n_out"], s["out_dim"], s["target_scale"], STEPS, L], dtype=torch.float32),
        "proj_in": x[0].contiguous(),
        "states": states[0].contiguous(),
        "guided_logits": guided[:STEPS].reshape(STEPS, K, V).contiguous(),
        "seq": seq.float().contiguous(),
        "codes": codes.float().contiguous(),
    }
    for name, p in mod.named_parameters():
        ref[name] = p.detach().contiguous()
    save_file(ref, os.path.join(OUT, "ref.safetensors"))
    print(f"generate fixtures: states std {states.std().item():.4f}, codes[0][:8] {codes[0, :8].tolist()}")


# Continuation (generate(input_values=...)): a tiny model whose codec is a non-causal 32 kHz-style
# EnCodec (the C codec's scope) with 3 codebooks of 64 codes: hop 16 at 1600 Hz -> 100 frames/s,
# target_bandwidths [3.0] -> 3 quantizers, and encode's default bandwidth (the first) asks for
# floor(3000 / (6 * 100)) = 5 codebooks, i.e. all 3 layers.
CONT_CODEC = dict(audio_channels=1, normalize=False, chunk_length_s=None, overlap=None, norm_type="weight_norm",
                  use_causal_conv=False, pad_mode="reflect", num_lstm_layers=2, trim_right_ratio=1.0,
                  dilation_growth_rate=2, sampling_rate=1600, num_filters=4, upsampling_ratios=[4, 2, 2],
                  hidden_size=16, codebook_size=64, target_bandwidths=[3.0], num_residual_layers=1, kernel_size=7,
                  last_kernel_size=7, residual_kernel_size=3, compress=2, use_conv_shortcut=False)
# vocab 800: tests/fixtures/t5/tokenizer.json's pieces (the text path runs end to end through the tool)
CONT_T5 = dict(d_model=24, d_kv=8, num_heads=3, d_ff=32, num_layers=1, vocab_size=800)
TEXT_PROMPT = "calm lo-fi piano with soft rain"
TEXT_FRAMES = 10
CONT_DEC = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64, num_codebooks=3,
                vocab_size=64, max_position_embeddings=64)
CONT_NEW = 12  # frames generated after the prompt


def continuation():
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration
    from transformers import T5Config
    import math
    torch.manual_seed(31)
    V = CONT_DEC["vocab_size"]
    cfg = MusicgenConfig.from_sub_models_config(
        T5Config(**CONT_T5, feed_forward_proj="relu", dropout_rate=0.0), EncodecConfig(**CONT_CODEC),
        MusicgenDecoderConfig(**CONT_DEC, pad_token_id=V, bos_token_id=V, dropout=0.0, attention_dropout=0.0,
                              activation_dropout=0.0))
    model = MusicgenForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "embed_positions" in n:
                continue
            if "audio_encoder" in n and "original0" in n:  # weight-norm gains: keep the norms near 1
                p.uniform_(0.5, 1.5)
            elif p.dim() >= 2:
                fan = p[0].numel() if "audio_encoder" in n else p.shape[-1]
                p.normal_(0, (1.0 if "audio_encoder" in n else 0.5) / fan ** 0.5)
            elif n.endswith("bias"):
                p.normal_(0, 0.1)
            else:
                p.normal_(1, 0.1)
    model.generation_config.decoder_start_token_id = V
    model.generation_config.pad_token_id = V
    model.generation_config.bos_token_id = V
    model.generation_config.guidance_scale = 1.0
    K = CONT_DEC["num_codebooks"]
    n = 7 * 16 + 5
    t = torch.arange(n, dtype=torch.float64) / 1600.0
    wav = (0.4 * torch.sin(2 * math.pi * 97.0 * t) + 0.2 * torch.sin(2 * math.pi * 301.0 * t)).float()
    with torch.no_grad():
        # the codebooks are buffers (not randomised above): entries at the scale of the encoder's output,
        # smaller for later codebooks (they quantise residuals), so the prompt's codes vary
        z = model.audio_encoder.encoder(wav[None, None])
        sd_z = z.std().item()
        for q, layer in enumerate(model.audio_encoder.quantizer.layers):
            layer.codebook.embed.copy_(torch.randn(layer.codebook.embed.shape) * sd_z / (1 + q))
        pcodes = model.audio_encoder.encode(wav[None, None]).audio_codes[0, 0]
    P = pcodes.shape[-1]
    assert pcodes.shape == (K, 8), pcodes.shape
    L = P + CONT_NEW + K
    ids = torch.tensor([[5, 17, 3, 42, 1]])
    codes_g3, _ = mg_fx.hf_generate_codes(model, input_ids=ids, attention_mask=torch.ones_like(ids),
                                          input_values=wav[None, None], guidance_scale=3.0, max_length=L)
    assert codes_g3.shape == (K, P + CONT_NEW), codes_g3.shape
    assert torch.equal(codes_g3[:, :P], pcodes), "generate's output starts with the prompt codes"
    g = torch.Generator().manual_seed(77)
    h = torch.randn(1, 5, CONT_T5["d_model"], generator=g)
    codes_g1, _ = mg_fx.hf_generate_codes(model, encoder_outputs=(h,), input_values=wav[None, None],
                                          guidance_scale=1.0, max_length=L)
    assert torch.equal(codes_g1[:, :P], pcodes)
    # text -> music end to end: the prompt through the tokenizers library, generate with CFG 3, greedy,
    # and the waveform generate returns (the codec's decode of the codes)
    from tokenizers import Tokenizer
    tids = torch.tensor([Tokenizer.from_file(mg_fx.T5_TOKENIZER).encode(TEXT_PROMPT).ids])
    with torch.no_grad():
        text_audio = model.generate(input_ids=tids, attention_mask=torch.ones_like(tids), guidance_scale=3.0,
                                    do_sample=False, max_length=TEXT_FRAMES + K)[0, 0]
    assert text_audio.shape == (TEXT_FRAMES * 16,), text_audio.shape
    d = os.path.join(OUT, "continue")
    os.makedirs(d)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(os.path.join(tmp, "config.json"), d)
        shutil.copy(os.path.join(tmp, "generation_config.json"), d)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "text_encoder.encoder.embed_tokens.weight"}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    ref = {"wav": wav.contiguous(), "prompt_codes": pcodes.float().contiguous(), "ids": ids[0].float().contiguous(),
           "codes_g3": codes_g3.float().contiguous(), "enc": h[0].contiguous(), "codes_g1": codes_g1.float().contiguous(),
           "max_length": torch.tensor([float(L)]), "text_ids": tids[0].float().contiguous(),
           "text_audio": text_audio.contiguous()}
    save_file(ref, os.path.join(OUT, "continue_ref.safetensors"))
    for root, _, files in os.walk(OUT):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    print(f"continuation: prompt {P} frames, {CONT_NEW} new, codes_g3[0] {codes_g3[0].tolist()}")


if __name__ == "__main__":
    main()
    continuation()
