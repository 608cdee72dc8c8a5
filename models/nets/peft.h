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
/* Load adapter_model.safetensors of adapter_dir into a model set up with that spec. */
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
