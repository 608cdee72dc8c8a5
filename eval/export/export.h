/* Exporting a trained m2u run in the formats people deploy with.
 *
 * Input: a Hugging Face LLaMA directory (the frozen base the run trained on:
 * config.json, safetensors, tokenizer.json) and a trainer output: a run
 * directory (config.yaml + checkpoints/step-N/, the newest complete checkpoint
 * is used), one checkpoint directory (trainable.safetensors; config.yaml is
 * looked up two levels up) or a trainable.safetensors file.  The LoRA scale
 * alpha comes from the run's config.yaml (lora.alpha), the number of [AUD]
 * tokens from model.aud_tokens.
 *
 * Kinds:
 *   PEFT     adapter_config.json + adapter_model.safetensors as peft 0.13.2
 *            save_pretrained writes them (keys base_model.model.<module>.lora_A/B.weight,
 *            fp32); when the vocabulary grew ([AUD] tokens) or token rows were
 *            trained, the full base_model.model.model.embed_tokens.weight and
 *            base_model.model.lm_head.weight, as peft saves resized embeddings,
 *            plus the tokenizer with the added tokens.  Biases, norms, gates,
 *            prefix queries, adapters and the projector have no place in a LoRA
 *            adapter: they are listed in the report (use MERGED or M2UGEN).
 *   MERGED   a LlamaForCausalLM directory: W + (alpha/r) B A merged into every
 *            target, trained norms/biases/token rows written in (attention_bias /
 *            mlp_bias set when biases were trained), the text-only adapter
 *            injection (tanh(gate) * W_v prefix_query, a constant per layer) folded
 *            into o_proj's bias, vocab grown for [AUD]; sharded like transformers'
 *            save_pretrained (model-0000i-of-0000n.safetensors + index), config.json,
 *            tokenizer files (with the added tokens) and generation_config.json.
 *   GGUF     the same model as llama.cpp's convert_hf_to_gguf.py writes it
 *            (general.architecture llama, llama.* hyper-parameters, tokenizer.ggml.*
 *            from tokenizer.json as gguf-py's LlamaHfVocab, q/k rows in Meta's
 *            interleaved RoPE order).  Without merge_lora the LoRA is left out, for
 *            use with the GGUF_LORA file (everything else is still folded in);
 *            without a run it is the plain base model.
 *   GGUF_LORA the LoRA as convert_lora_to_gguf.py writes it (general.type adapter,
 *            adapter.type lora, adapter.lora.alpha, blk.N.attn_q.weight.lora_a /
 *            .lora_b, lora_b rows of attn_q/attn_k permuted to Meta order).
 *   M2UGEN   the trainables under M2UGen's own parameter names and shapes, in Meta
 *            RoPE layout, LoRA scale folded into lora_*_l2 (M2UGen's LoRA has scale
 *            1): checkpoint.pth ({"model": state_dict}, torch.save's format) and
 *            checkpoint.safetensors (same tensors). */
#ifndef M2U_EXPORT_H
#define M2U_EXPORT_H

#include <stdint.h>

typedef enum { M2U_EXPORT_PEFT, M2U_EXPORT_MERGED, M2U_EXPORT_GGUF, M2U_EXPORT_GGUF_LORA, M2U_EXPORT_M2UGEN } m2u_export_kind;

typedef struct {
    const char *base;         /* Hugging Face LLaMA directory (required) */
    const char *run;          /* run dir, checkpoint dir or trainable.safetensors (NULL only for GGUF) */
    const char *out;          /* a directory (PEFT, MERGED, M2UGEN) or a file (GGUF, GGUF_LORA) */
    int force;                /* replace an existing export */
    const char *dtype;        /* MERGED: "auto" (the base's) | "f32" | "f16" | "bf16";
                                 GGUF: "f32" | "f16" (default: f16 for 2-D weights, f32 for norms, as
                                 convert_hf_to_gguf's default f16) | "auto"; GGUF_LORA: "f32" (default) | "f16" */
    uint64_t max_shard_bytes; /* MERGED: 0 -> 5 GB (transformers' default "5GB") */
    int merge_lora;           /* GGUF: fold the LoRA in too */
    double lora_alpha;        /* > 0: overrides lora.alpha when there is no config.yaml */
    const char *base_name;    /* base_model_name_or_path / general.name; NULL -> the base path */
} m2u_export_options;

/* Export; on success *report (malloc'ed, may be NULL) lists what was written and
 * which trainables had no place in the format.  Refuses to replace an existing
 * export unless force; a directory is built under "<out>.tmp.<pid>" and renamed,
 * a file is written through a temp file, fsync and rename. */
int m2u_export(m2u_export_kind kind, const m2u_export_options *o, char **report);

/* "peft" -> M2U_EXPORT_PEFT, ...; -1 if unknown. */
int m2u_export_kind_from_name(const char *name);

#endif
