/* A small valid shard written by m2u's own writer: the seed of fuzz_shard and
 * the base that fuzz_shard_schema edits. */
#ifndef M2U_FUZZ_SHARD_SEED_H
#define M2U_FUZZ_SHARD_SEED_H

#include "shard.h"

#include <math.h>
#include <stdio.h>

static inline int make_seed(const char *path, int audio_rate, int n_attrs, int n_tensors, int n) {
    static const char *const attr_names[] = {"tempo", "key", "mode", "loudness"};
    m2u_shard_tensor_spec ts[2] = {
        {.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {3, 4}, .encoder = "m-a-p/MERT-v1-95M", .config_hash = "abc"},
        {.name = "image", .dtype = M2U_U8, .rank = 3, .dims = {2, 2, 3}},
    };
    m2u_shard_spec spec = {.audio_rate = audio_rate, .target_audio = audio_rate > 0, .n_attrs = n_attrs,
                           .attr_names = attr_names, .n_tensors = n_tensors, .tensors = ts, .shuffle = 1};
    m2u_shard_writer *w;
    if (m2u_shard_create(path, &spec, &w)) return -1;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "sample-%d", i);
        int16_t audio[40];
        for (int k = 0; k < 40; k++) audio[k] = (int16_t)(1000 * sin(0.3 * k * (i + 1)));
        float attrs[4] = {120.0f + i, 3, 1, -14.5f}, mert[12];
        uint8_t image[12];
        for (int k = 0; k < 12; k++) mert[k] = 0.25f * k - i, image[k] = (uint8_t)(20 * k + i);
        m2u_shard_sample s = {.text = {id, "src.wav", "CC0-1.0", "someone", i % 2 ? "valid" : "train", "mucaps",
                                       "a calm piano piece", NULL, NULL, NULL, NULL, "{\"tempo\": 120}"},
                              .clip_start = i,
                              .clip_end = i + 1.5,
                              .audio = audio,
                              .audio_len = audio_rate ? (size_t)(10 + 10 * i) : 0,
                              .target_audio = audio,
                              .target_audio_len = audio_rate ? 8 : 0,
                              .attrs = i == 1 ? NULL : attrs,
                              .tensor = {i == 2 ? NULL : mert, image}};
        if (m2u_shard_append(w, &s)) {
            m2u_shard_abort(w);
            return -1;
        }
    }
    return m2u_shard_close(w);
}

#endif
