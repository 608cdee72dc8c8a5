/* PEFT LoRA adapter directories (adapter_config.json + adapter_model.safetensors). */
#ifndef M2U_PEFT_H
#define M2U_PEFT_H

#include "llama.h"

#include <cjson/cJSON.h>

/* Read adapter_config.json into the LoRA fields of spec (r, alpha, dropout,
 * targets, rslora).  Options m2u does not implement (DoRA, fan_in_fan_out,
 * rank/alpha patterns, layers_to_transform, modules_to_save, bias != "none")
 * are refused with the file and key named, never ignored. */
int m2u_peft_read_config(const char *adapter_dir, m2u_train_spec *spec);
/* An adapter made over a resized vocabulary (M2UGen's [AUD] tokens) carries the
 * whole embed_tokens and lm_head under their PEFT names
 * (base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight),
 * as peft saves them.  Compare them with the base model in model_dir and set
 * spec->extra_vocab (rows beyond the base's vocabulary) and, when rows of the
 * base's own range changed too, spec->token_rows_start (the first changed row),
 * so that m2u_llama_load makes room for exactly those rows.  No such tensors:
 * spec unchanged.  Refused: a shrunk vocabulary, another hidden size, row 0
 * changed (m2u keeps rows from index 1 on), an lm_head that differs from the
 * embeddings of a base that ties them. */
int m2u_peft_prepare_vocab(const char *adapter_dir, const char *model_dir, m2u_train_spec *spec);
/* Load adapter_model.safetensors of adapter_dir into a model set up with that spec
 * (after m2u_peft_prepare_vocab, the saved embed_tokens / lm_head rows go into
 * the model's token rows). */
int m2u_peft_load_weights(m2u_llama *m, const char *adapter_dir);

/* Write a peft-loadable adapter directory: adapter_config.json and
 * adapter_model.safetensors holding the LoRA tensors only (other trainables are
 * not part of a LoRA adapter; save them with m2u_llama_save_params).  The
 * directory is created if needed; each file is written atomically. */
/* adapter_config.json of a LoRA adapter, with the keys and defaults peft 0.13.2 writes
 * (the one builder: m2u-llm finetune and m2u-export peft both use it).  NULL on OOM. */
cJSON *m2u_peft_config_new(const char *base_model_name_or_path, int r, double alpha, double dropout, unsigned targets,
                           int use_rslora);
int m2u_peft_save(const m2u_llama *m, const char *adapter_dir, const char *base_model_name_or_path);

#endif
