/* A small valid shard written by m2u's own writer: the seed of fuzz_shard and
 * the base that fuzz_shard_schema edits. */
#ifndef M2U_FUZZ_SHARD_SEED_H
#define M2U_FUZZ_SHARD_SEED_H

#include "shard.h"

#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
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

/* Open the shard at path and read everything it offers (samples, tensors, text columns,
 * attribute names), as the trainer and the card do; a refusal must leave a message. */
static inline void fuzz_read_shard(const char *path) {
    m2u_shard_reader *r = NULL;
    if (m2u_shard_open(path, &r) == 0) {
        int64_t n = m2u_shard_count(r);
        for (int64_t i = 0; i < n && i < 16; i++) {
            m2u_sample s;
            if (m2u_shard_get_sample(r, i, &s) == 0) m2u_sample_free(&s);
            for (int t = 0; t < m2u_shard_n_tensors(r); t++) {
                const m2u_shard_tensor_info *ti = m2u_shard_tensor(r, t);
                if (m2u_shard_tensor_present(r, t, i) == 1 && ti->numel <= (1u << 20)) {
                    float *buf = malloc((ti->numel ? ti->numel : 1) * sizeof *buf);
                    if (buf) (void)m2u_shard_get_tensor_f32(r, t, i, buf, ti->numel);
                    free(buf);
                }
            }
        }
        /* the batch reads of the same first rows (one hyperslab per column) */
        int64_t nb = n < 4 ? n : 4;
        if (nb > 0) {
            m2u_sample batch[4];
            if (m2u_shard_get_samples(r, 0, nb, batch) == 0)
                for (int64_t k = 0; k < nb; k++) m2u_sample_free(&batch[k]);
            for (int t = 0; t < m2u_shard_n_tensors(r); t++) {
                const m2u_shard_tensor_info *ti = m2u_shard_tensor(r, t);
                if (ti->numel > (1u << 18)) continue;
                size_t cap = (ti->numel ? ti->numel : 1) * (size_t)nb;
                float *buf = malloc(cap * sizeof *buf);
                if (buf) (void)m2u_shard_get_tensors_f32(r, t, 0, nb, buf, cap);
                free(buf);
            }
        }
        for (int c = 0; c < M2U_TEXT_COUNT; c++) {
            char *text = NULL;
            size_t nb = 0;
            const int64_t *off = NULL;
            if (m2u_shard_text_column(r, (m2u_text_col)c, &text, &nb, &off) == 0) free(text);
        }
        for (int k = 0; k < m2u_shard_n_attrs(r); k++) (void)m2u_shard_attr_name(r, k);
        m2u_shard_reader_close(r);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
}

#endif
