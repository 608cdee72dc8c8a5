/* PEFT LoRA adapter directories (adapter_config.json + adapter_model.safetensors). */
#ifndef M2U_PEFT_H
#define M2U_PEFT_H

#include "llama.h"

/* Read adapter_config.json into the LoRA fields of spec (r, alpha, dropout,
 * targets, rslora).  Options m2u does not implement (DoRA, fan_in_fan_out,
 * rank/alpha patterns, layers_to_transform, modules_to_save, bias != "none")
 * are refused with the file and key named, never ignored. */
int m2u_peft_read_config(const char *adapter_dir, m2u_train_spec *spec);
/* Load adapter_model.safetensors of adapter_dir into a model set up with that spec. */
int m2u_peft_load_weights(m2u_llama *m, const char *adapter_dir);

#endif
