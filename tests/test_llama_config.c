/* config.json parsing (v4 and v5 layouts, GQA, explicit head_dim), refusals that
 * name the file and key, and save/load round trip. */
#include "fileio.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* meta-llama/Llama-2-7b-hf config.json (formats.md 2.1): no rope_theta key. */
static const char *k7b = "{\n"
                         "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                         "  \"bos_token_id\": 1,\n"
                         "  \"eos_token_id\": 2,\n"
                         "  \"hidden_act\": \"silu\",\n"
                         "  \"hidden_size\": 4096,\n"
                         "  \"initializer_range\": 0.02,\n"
                         "  \"intermediate_size\": 11008,\n"
                         "  \"max_position_embeddings\": 4096,\n"
                         "  \"model_type\": \"llama\",\n"
                         "  \"num_attention_heads\": 32,\n"
                         "  \"num_hidden_layers\": 32,\n"
                         "  \"num_key_value_heads\": 32,\n"
                         "  \"pretraining_tp\": 1,\n"
                         "  \"rms_norm_eps\": 1e-05,\n"
                         "  \"rope_scaling\": null,\n"
                         "  \"tie_word_embeddings\": false,\n"
                         "  \"torch_dtype\": \"float16\",\n"
                         "  \"transformers_version\": \"4.31.0.dev0\",\n"
                         "  \"use_cache\": true,\n"
                         "  \"vocab_size\": 32000\n"
                         "}\n";

/* A small base config; `extra` is spliced in before the closing brace. */
static char *small_cfg(const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 160, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 8, \"vocab_size\": 100%s%s}",
             extra[0] ? ", " : "", extra);
    return buf;
}

static void expect_refused_at(int line, const char *json, const char *key) {
    m2u_llama_config c;
    m2u_clear_error();
    int rc = m2u_llama_config_parse(json, "cfg/config.json", &c);
    const char *msg = m2u_last_error();
    CHECK(rc == -1, "line %d: accepted: %s", line, json);
    CHECK(strstr(msg, "cfg/config.json") != NULL, "line %d: message lacks the file: %s", line, msg);
    CHECK(strstr(msg, key) != NULL, "line %d: message lacks '%s': %s", line, key, msg);
}
#define EXPECT_REFUSED(json, key) expect_refused_at(__LINE__, json, key)

static void test_7b(void) {
    m2u_llama_config c;
    CHECK(m2u_llama_config_parse(k7b, "7b", &c) == 0, "7B: %s", m2u_last_error());
    CHECK(c.hidden_size == 4096 && c.intermediate_size == 11008 && c.n_layers == 32 && c.n_heads == 32, "7B sizes");
    CHECK(c.n_kv_heads == 32 && c.head_dim == 128 && c.vocab_size == 32000, "7B heads/vocab");
    CHECK(c.max_position_embeddings == 4096, "7B max pos");
    CHECK(c.rms_norm_eps == 1e-5f, "7B eps %g (file says 1e-5, class default 1e-6)", (double)c.rms_norm_eps);
    CHECK(c.rope_theta == 10000.0f, "7B theta default");
    CHECK(c.tie_word_embeddings == 0 && c.attention_bias == 0 && c.mlp_bias == 0, "7B flags");
    CHECK(c.bos_token_id == 1 && c.eos_token_id == 2 && c.pad_token_id == -1, "7B tokens");
}

static void test_variants(void) {
    m2u_llama_config c;
    /* defaults when optional keys are absent */
    CHECK(m2u_llama_config_parse(small_cfg(""), "small", &c) == 0, "small: %s", m2u_last_error());
    CHECK(c.n_kv_heads == 8 && c.head_dim == 8 && c.max_position_embeddings == 2048 && c.rms_norm_eps == 1e-6f &&
              c.rope_theta == 10000.0f && c.bos_token_id == 1 && c.eos_token_id == 2 && c.pad_token_id == -1,
          "defaults");

    /* v5: rope_parameters */
    CHECK(m2u_llama_config_parse(small_cfg("\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": "
                                           "500000.0}"),
                                 "v5", &c) == 0,
          "v5: %s", m2u_last_error());
    CHECK(c.rope_theta == 500000.0f, "v5 theta %g", (double)c.rope_theta);
    /* v4: top level, and both agreeing */
    CHECK(m2u_llama_config_parse(small_cfg("\"rope_theta\": 1000000.0"), "v4", &c) == 0 && c.rope_theta == 1e6f,
          "v4 theta");
    CHECK(m2u_llama_config_parse(small_cfg("\"rope_theta\": 5e5, \"rope_parameters\": {\"rope_theta\": 500000}"),
                                 "both", &c) == 0,
          "both: %s", m2u_last_error());
    CHECK(m2u_llama_config_parse(small_cfg("\"rope_scaling\": {\"rope_type\": \"default\"}"), "rs", &c) == 0,
          "rope_scaling default: %s", m2u_last_error());

    /* GQA, null kv heads, explicit head_dim */
    CHECK(m2u_llama_config_parse(small_cfg("\"num_key_value_heads\": 2"), "gqa", &c) == 0 && c.n_kv_heads == 2 &&
              c.head_dim == 8,
          "GQA");
    CHECK(m2u_llama_config_parse(small_cfg("\"num_key_value_heads\": null, \"head_dim\": null"), "nulls", &c) == 0 &&
              c.n_kv_heads == 8 && c.head_dim == 8,
          "null kv/head_dim: %s", m2u_last_error());
    CHECK(m2u_llama_config_parse(small_cfg("\"head_dim\": 16"), "hd", &c) == 0 && c.head_dim == 16, "head_dim 16");

    /* tokens: eos list, nulls, pad */
    CHECK(m2u_llama_config_parse(small_cfg("\"eos_token_id\": [7, 9], \"pad_token_id\": 0, \"bos_token_id\": null"),
                                 "tok", &c) == 0 &&
              c.eos_token_id == 7 && c.pad_token_id == 0 && c.bos_token_id == -1,
          "eos list: %s", m2u_last_error());
    CHECK(m2u_llama_config_parse(small_cfg("\"tie_word_embeddings\": true, \"attention_bias\": true, \"mlp_bias\": "
                                           "true"),
                                 "flags", &c) == 0 &&
              c.tie_word_embeddings && c.attention_bias && c.mlp_bias,
          "flags");
    /* model_type alone, or architectures alone, is enough */
    CHECK(m2u_llama_config_parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, "
                                 "\"intermediate_size\": 1, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                                 "\"vocab_size\": 10}",
                                 "arch", &c) == 0,
          "architectures only: %s", m2u_last_error());
}

static void test_refusals(void) {
    char buf[2048];
    EXPECT_REFUSED("{\"hidden_size\": 64", "JSON");
    EXPECT_REFUSED("[1, 2]", "object");
    EXPECT_REFUSED(small_cfg("\"hidden_size\": 64"), "hidden_size"); /* duplicate key */
    EXPECT_REFUSED("{\"model_type\": \"llama\", \"intermediate_size\": 160, \"num_hidden_layers\": 2, "
                   "\"num_attention_heads\": 8, \"vocab_size\": 100}",
                   "hidden_size");
    snprintf(buf, sizeof buf, "%s", k7b);
    char *p = strstr(buf, "\"hidden_size\": 4096");
    memcpy(p, "\"hidden_size\": \"40\"", 19); /* same length: a string where an int belongs */
    EXPECT_REFUSED(buf, "hidden_size");
    EXPECT_REFUSED(small_cfg("\"num_key_value_heads\": 3"), "num_key_value_heads");
    EXPECT_REFUSED(small_cfg("\"num_key_value_heads\": 0"), "num_key_value_heads");
    EXPECT_REFUSED(small_cfg("\"num_key_value_heads\": 2.5"), "num_key_value_heads");
    EXPECT_REFUSED(small_cfg("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}"), "rope_scaling");
    EXPECT_REFUSED(small_cfg("\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"), "rope_scaling");
    EXPECT_REFUSED(small_cfg("\"rope_scaling\": {\"factor\": 2.0}"), "rope_scaling");
    EXPECT_REFUSED(small_cfg("\"rope_scaling\": \"none\""), "rope_scaling");
    EXPECT_REFUSED(small_cfg("\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 10000.0}"),
                   "rope_parameters");
    EXPECT_REFUSED(small_cfg("\"rope_parameters\": {\"rope_theta\": \"big\"}"), "rope_parameters.rope_theta");
    EXPECT_REFUSED(small_cfg("\"rope_theta\": 10000.0, \"rope_parameters\": {\"rope_theta\": 500000.0}"), "rope_theta");
    EXPECT_REFUSED(small_cfg("\"rope_theta\": -1"), "rope_theta");
    EXPECT_REFUSED(small_cfg("\"rms_norm_eps\": \"1e-5\""), "rms_norm_eps");
    /* positive, but 0 or inf as float32: accepted once, then refused by save (tests/fuzz) */
    EXPECT_REFUSED(small_cfg("\"rms_norm_eps\": 1e-205"), "rms_norm_eps");
    EXPECT_REFUSED(small_cfg("\"rope_theta\": 1e300"), "rope_theta");
    EXPECT_REFUSED(small_cfg("\"hidden_act\": \"gelu\""), "hidden_act");
    EXPECT_REFUSED(small_cfg("\"tie_word_embeddings\": 0"), "tie_word_embeddings");
    EXPECT_REFUSED(small_cfg("\"eos_token_id\": []"), "eos_token_id");
    EXPECT_REFUSED(small_cfg("\"eos_token_id\": \"2\""), "eos_token_id");
    EXPECT_REFUSED(small_cfg("\"bos_token_id\": [1]"), "bos_token_id");
    EXPECT_REFUSED(small_cfg("\"head_dim\": 0"), "head_dim");
    EXPECT_REFUSED(small_cfg("\"head_dim\": 7"), "head_dim");
    EXPECT_REFUSED(small_cfg("\"vocab_size\": -5"), "vocab_size");
    EXPECT_REFUSED(small_cfg("\"max_position_embeddings\": true"), "max_position_embeddings");
    EXPECT_REFUSED("{\"model_type\": \"llama\", \"hidden_size\": 60, \"intermediate_size\": 160, "
                   "\"num_hidden_layers\": 2, \"num_attention_heads\": 8, \"vocab_size\": 100}",
                   "head_dim"); /* 60 / 8 is not whole */
    EXPECT_REFUSED("{\"model_type\": \"mistral\", \"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64}",
                   "model_type");
}

static void test_files(void) {
    char dir[] = "/tmp/m2u_cfg_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char *path = m2u_path_join(dir, "config.json");
    m2u_llama_config a, b;
    /* load from disk */
    CHECK(m2u_write_file_atomic(path, k7b, strlen(k7b)) == 0, "write 7B");
    CHECK(m2u_llama_config_load(path, &a) == 0 && a.hidden_size == 4096, "load 7B: %s", m2u_last_error());
    /* save -> load gives the same struct, for the 7B and for a GQA/v5-style config */
    CHECK(m2u_llama_config_save(path, &a) == 0, "save: %s", m2u_last_error());
    CHECK(m2u_llama_config_load(path, &b) == 0, "reload: %s", m2u_last_error());
    CHECK(memcmp(&a, &b, sizeof a) == 0, "7B round trip differs");
    char *text = NULL;
    if (m2u_read_file(path, &text, NULL) == 0) {
        CHECK(strstr(text, "\"rms_norm_eps\": 1e-05,") && strstr(text, "\"rope_theta\": 10000.0,") &&
                  strstr(text, "\"head_dim\": 128,") && strstr(text, "\"LlamaForCausalLM\"") &&
                  strstr(text, "\"torch_dtype\": \"float32\"") && strstr(text, "\"mlp_bias\": false") &&
                  strstr(text, "\"attention_bias\": false") && strstr(text, "\"tie_word_embeddings\": false") &&
                  !strstr(text, "pad_token_id"),
              "saved text:\n%s", text);
        free(text);
    }
    CHECK(m2u_llama_config_parse(small_cfg("\"num_key_value_heads\": 2, \"head_dim\": 16, \"rope_parameters\": "
                                           "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}, \"rms_norm_eps\": "
                                           "1e-6, \"eos_token_id\": [5, 6], \"pad_token_id\": 3, \"bos_token_id\": "
                                           "null, \"tie_word_embeddings\": true, \"mlp_bias\": true"),
                                 "gqa", &a) == 0,
          "gqa: %s", m2u_last_error());
    CHECK(m2u_llama_config_save(path, &a) == 0 && m2u_llama_config_load(path, &b) == 0, "gqa save/load: %s",
          m2u_last_error());
    CHECK(memcmp(&a, &b, sizeof a) == 0, "GQA round trip differs");
    /* an invalid struct is refused, not written */
    a.n_kv_heads = 3;
    CHECK(m2u_llama_config_save(path, &a) == -1, "invalid config saved");
    /* load errors name the file */
    char *missing = m2u_path_join(dir, "nope.json");
    CHECK(m2u_llama_config_load(missing, &a) == -1 && strstr(m2u_last_error(), "nope.json"), "missing file: %s",
          m2u_last_error());
    const char *bad = "{\"model_type\": \"llama\", \"hidden_size\": \"64\"}";
    CHECK(m2u_write_file_atomic(path, bad, strlen(bad)) == 0, "write bad");
    CHECK(m2u_llama_config_load(path, &a) == -1 && strstr(m2u_last_error(), path) &&
              strstr(m2u_last_error(), "hidden_size"),
          "bad file: %s", m2u_last_error());
    unlink(path);
    rmdir(dir);
    free(path);
    free(missing);
}

int main(void) {
    test_7b();
    test_variants();
    test_refusals();
    test_files();
    return t_finish("test_llama_config");
}
