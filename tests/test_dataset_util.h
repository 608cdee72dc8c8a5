/* Helpers for tests that write their own small datasets (m2u_data), and the trainer tests' tiny
 * base model. */
#ifndef M2U_TEST_DATASET_UTIL_H
#define M2U_TEST_DATASET_UTIL_H

#include "fileio.h"
#include "m2u_error.h"
#include "manifest.h"
#include "shard.h"
#include "test_util.h"

#include <stdio.h>

/* dir/manifest.json listing the one finished shard dir/shard-00000.h5 */
static inline void t_manifest_one_shard(const char *dir) {
    char path[1024];
    m2u_manifest man;
    m2u_manifest_init(&man);
    m2u_manifest_shard ms;
    CHECK(m2u_manifest_scan_shard(dir, "shard-00000.h5", &ms) == 0, "%s", m2u_last_error());
    m2u_manifest_add(&man, &ms);
    m2u_manifest_shard_free(&ms);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(m2u_manifest_write(path, &man) == 0, "%s", m2u_last_error());
    m2u_manifest_free(&man);
}

/* root/data: one shard of 96 tiny M2UGen samples (captions from mood, instrument, key and tempo;
 * MERT-like [4, 8] features for two thirds of them; T5-like [2, 6] targets that depend on the
 * mood, so a projector has something to learn) and its manifest.  root/data is made if missing. */
static inline void t_tiny_music_dataset(const char *root) {
    static const char *mood[] = {"calm", "bright", "dark", "lively", "gentle", "tense", "dreamy", "joyful"};
    static const char *inst[] = {"piano", "guitar", "strings", "flute", "brass", "synth", "organ", "harp"};
    static const char *key[] = {"C major", "A minor", "G major", "E minor", "D major", "B minor"};
    char path[512], cap[256];
    snprintf(path, sizeof path, "%s/data", root);
    CHECK(m2u_mkdir_p(path) == 0, "%s", m2u_last_error());
    snprintf(path, sizeof path, "%s/data/shard-00000.h5", root);
    m2u_shard_tensor_spec cols[2] = {{.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {4, 8}},
                                     {.name = "t5", .dtype = M2U_F16, .rank = 2, .dims = {2, 6}}};
    m2u_shard_spec spec = {.n_tensors = 2, .tensors = cols};
    m2u_shard_writer *w;
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "%s", m2u_last_error());
    float feat[32], tgt[12];
    for (int i = 0; i < 96; i++) {
        char id[32];
        snprintf(id, sizeof id, "s%03d", i);
        snprintf(cap, sizeof cap, "A %s %s piece in %s at %d beats per minute.", mood[i % 8], inst[(i / 8) % 8],
                 key[i % 6], 60 + 10 * (i % 7));
        m2u_shard_sample s = {0};
        s.text[M2U_TEXT_ID] = id;
        s.text[M2U_TEXT_KIND] = "mucaps";
        s.text[M2U_TEXT_SPLIT] = i % 6 == 5 ? "valid" : "train";
        s.text[M2U_TEXT_LICENCE] = "CC0-1.0";
        s.text[M2U_TEXT_CAPTION] = cap;
        for (int k = 0; k < 32; k++) feat[k] = (float)((i * 7 + k * 3) % 11) / 11.0f - 0.5f;
        for (int k = 0; k < 12; k++) tgt[k] = 0.05f * (float)((i % 8) - 4 + (k % 3));
        s.tensor[0] = i % 3 ? feat : NULL;
        s.tensor[1] = tgt;
        CHECK(m2u_shard_append(w, &s) == 0, "%s", m2u_last_error());
    }
    CHECK(m2u_shard_close(w) == 0, "%s", m2u_last_error());
    snprintf(path, sizeof path, "%s/data", root);
    t_manifest_one_shard(path);
}

/* root/base: the trainer tests' tiny random LLaMA (64 wide, 3 layers, 4 heads over 2 kv heads,
 * LLaMA-2's 32000-word vocabulary, tied head), written by m2u-llm init with a fixed seed from
 * root/tiny.json. */
static inline void t_tiny_llama_base(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.json", root);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 64,"
               " \"intermediate_size\": 128, \"num_hidden_layers\": 3, \"num_attention_heads\": 4,"
               " \"num_key_value_heads\": 2, \"vocab_size\": 32000, \"rms_norm_eps\": 1e-5,"
               " \"tie_word_embeddings\": true, \"max_position_embeddings\": 256}\n");
    fclose(f);
    CHECK(t_sh("%s/m2u-llm init --config %s --tokenizer %s/tokenizer/tokenizer.json --out %s/base --seed 3 "
               "--std 0.05 --embed-std 0.1 > /dev/null",
               M2U_BUILD_DIR, path, M2U_FIXTURES, root) == 0,
          "m2u-llm init failed");
}

/* The training loss of every step in a run's metrics.jsonl, into loss[step - 1] for steps
 * 1..max (the last record of a step wins: a resumed run may repeat steps the killed one had
 * logged); returns the highest step read, 0 when the file cannot be read. */
static inline int t_read_losses(const char *metrics_path, double *loss, int max) {
    char line[1024];
    FILE *f = fopen(metrics_path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        int step;
        double l;
        if (sscanf(line, "{\"step\": %d, \"epoch\": %*d, \"loss\": %lf", &step, &l) == 2 && step >= 1 && step <= max) {
            loss[step - 1] = l;
            if (step > n) n = step;
        }
    }
    fclose(f);
    return n;
}

#endif
