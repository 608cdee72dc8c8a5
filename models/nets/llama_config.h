/* config.json of a Hugging Face LlamaForCausalLM checkpoint. */
#ifndef M2U_LLAMA_CONFIG_H
#define M2U_LLAMA_CONFIG_H

typedef struct {
    int hidden_size;
    int intermediate_size;
    int n_layers;          /* num_hidden_layers */
    int n_heads;           /* num_attention_heads */
    int n_kv_heads;        /* num_key_value_heads; null/absent -> n_heads */
    int head_dim;          /* head_dim; absent/null -> hidden_size / n_heads */
    int vocab_size;
    int max_position_embeddings; /* absent -> 2048 */
    float rms_norm_eps;    /* absent -> 1e-6 (class default) */
    float rope_theta;      /* top level, or rope_parameters.rope_theta; absent -> 10000 */
    int tie_word_embeddings; /* absent -> 0 (LlamaConfig default false) */
    int attention_bias;    /* q/k/v/o have bias tensors in the checkpoint */
    int mlp_bias;          /* gate/up/down have bias tensors */
    int bos_token_id;      /* absent -> 1 */
    int eos_token_id;      /* absent -> 2; a list takes its first entry */
    int pad_token_id;      /* absent/null -> -1 */
} m2u_llama_config;

/* Parse and validate: architectures (if present) must contain "LlamaForCausalLM"
 * (or model_type "llama"); hidden_act must be "silu" if present; sizes positive;
 * n_heads % n_kv_heads == 0; rope_scaling must be null/absent or rope_type
 * "default" (others are refused, not silently ignored).  Errors name the file and key. */
int m2u_llama_config_load(const char *path, m2u_llama_config *cfg);
/* Same, from a JSON text already in memory (`origin` names it in messages). */
int m2u_llama_config_parse(const char *json, const char *origin, m2u_llama_config *cfg);
/* Write it back as a config.json transformers can load (atomic). */
int m2u_llama_config_save(const char *path, const m2u_llama_config *cfg);

#endif
