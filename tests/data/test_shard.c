/* HDF5 shards, the zstd filter and the dataset manifest/reader.
 *
 * Writes a shard with every column kind, reads all of it back, checks it is
 * compressed with filter 32015 and byte-reproducible, that a writer killed
 * before close leaves no shard-*.h5, that damaged files are refused with the
 * file's name, the manifest round trip, random access and the epoch order's
 * properties; then h5py (tests/data/test_shard_h5py.py) and h5dump read the shard
 * through the plugin built in <build>/hdf5-plugins. */
#include "manifest.h"
#include "shard.h"
#include "zstd_filter.h"
/* the filter callback itself, for the codec checks */
#include "h5zstd/zstd_filter_impl.h"

#include "dtype.h"
#include "fileio.h"
#include "m2u_error.h"
#include "rng.h"
#include "sha256.h"
#include "test_util.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 10
#define RATE 24000
#define LEVEL 5
#define MERT_T 25
#define MERT_D 1024
#define T5_T 16
#define T5_D 32
#define IMG_H 24
#define IMG_W 32
#define VID_F 4
#define VID_S 8

static char g_dir[512];

static const char *ATTR_NAMES[] = {"tempo", "key", "mode", "loudness"};
static const char *SPLIT_OF[] = {"train", "valid", "test"};
static const char *KIND_OF[] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};

/* Everything about sample i, regenerated identically for writing and checking. */
typedef struct {
    char *text[M2U_TEXT_COUNT];
    int16_t *audio, *target;
    size_t alen, tlen;
    float attrs[4];
    int has_attrs;
    float *mert, *t5;
    uint8_t *image, *video;
    double cs, ce;
} gen_t;

static char *xstrdup(const char *s) {
    char *p = malloc(strlen(s) + 1);
    strcpy(p, s);
    return p;
}

static void gen(int i, gen_t *g) {
    memset(g, 0, sizeof *g);
    m2u_rng r;
    m2u_rng_seed(&r, 1000 + (uint64_t)i);
    char buf[512];
    snprintf(buf, sizeof buf, "shard0-%05d", i);
    g->text[M2U_TEXT_ID] = xstrdup(buf);
    if (i != 3) { /* sample 3 leaves every other text empty */
        snprintf(buf, sizeof buf, "/corpus/track %d.ogg", i);
        g->text[M2U_TEXT_SOURCE] = xstrdup(buf);
        g->text[M2U_TEXT_LICENCE] = xstrdup("CC-BY-SA-3.0");
        g->text[M2U_TEXT_ATTRIBUTION] = xstrdup(u8"Jörg Ünlü & 合唱団");
        g->text[M2U_TEXT_SPLIT] = xstrdup(SPLIT_OF[i % 3]);
        g->text[M2U_TEXT_KIND] = xstrdup(KIND_OF[i % 5]);
        snprintf(buf, sizeof buf, u8"Café — 音楽 🎵 sample %d: a calm piano piece at %d BPM", i, 60 + 7 * i);
        g->text[M2U_TEXT_CAPTION] = xstrdup(buf);
        g->text[M2U_TEXT_INSTRUCTION] = xstrdup("Make it faster.");
        g->text[M2U_TEXT_ANSWER] = xstrdup(i % 2 ? "It is in C major." : "");
        g->text[M2U_TEXT_INPUT_TEXT] = xstrdup("");
        g->text[M2U_TEXT_OUTPUT_TEXT] = xstrdup(u8"naïve output ✓");
        if (i == 0) { /* long enough to span several 64 KiB text chunks */
            size_t n = 150000;
            char *a = malloc(n + 1);
            for (size_t k = 0; k < n; k++) a[k] = (char)('a' + (k * 7 + k / 13) % 26);
            memcpy(a, "{\"x\":\"", 6);
            memcpy(a + n - 2, "\"}", 2);
            a[n] = '\0';
            g->text[M2U_TEXT_ANALYSIS] = a;
        } else {
            snprintf(buf, sizeof buf, "{\"tempo\": %d, \"key\": \"C\"}", 60 + 7 * i);
            g->text[M2U_TEXT_ANALYSIS] = xstrdup(buf);
        }
    }
    /* sine + small noise: realistic enough, and compressible */
    g->alen = i == 0 ? 300000 : i == 3 ? 0 : 5000 + 1777 * (size_t)i;
    g->audio = malloc(g->alen * 2 + 2);
    for (size_t k = 0; k < g->alen; k++)
        g->audio[k] = (int16_t)(8000.0 * sin(2 * 3.14159265358979 * 440.0 * (double)k / RATE + i) +
                                (double)(m2u_rng_next(&r) % 129) - 64.0);
    g->tlen = i % 4 == 2 ? 7000 : 0;
    g->target = malloc(g->tlen * 2 + 2);
    for (size_t k = 0; k < g->tlen; k++) g->target[k] = (int16_t)(k * 31 % 65536 - 32768);
    g->has_attrs = i != 3;
    for (int k = 0; k < 4; k++) g->attrs[k] = g->has_attrs ? (float)(i * 10 + k) + 0.25f : NAN;
    g->cs = 1.5 * i;
    g->ce = 1.5 * i + 10.0;
    g->mert = malloc(sizeof(float) * MERT_T * MERT_D);
    for (int e = 0; e < MERT_T * MERT_D; e++) g->mert[e] = (float)sin(0.01 * e + i) + 0.01f * m2u_rng_normal(&r);
    g->t5 = malloc(sizeof(float) * T5_T * T5_D);
    for (int e = 0; e < T5_T * T5_D; e++) g->t5[e] = 3.0f * m2u_rng_normal(&r);
    if (i != 3) {
        g->image = malloc(IMG_H * IMG_W * 3);
        for (int y = 0; y < IMG_H; y++)
            for (int x = 0; x < IMG_W; x++)
                for (int c = 0; c < 3; c++) g->image[(y * IMG_W + x) * 3 + c] = (uint8_t)(x * 8 + y * 3 + c * 50 + i);
    }
    if (i % 2 == 0) {
        g->video = malloc(VID_F * VID_S * VID_S * 3);
        for (int e = 0; e < VID_F * VID_S * VID_S * 3; e++) g->video[e] = (uint8_t)(e * 13 + i);
    }
}

static void gen_free(gen_t *g) {
    for (int c = 0; c < M2U_TEXT_COUNT; c++) free(g->text[c]);
    free(g->audio);
    free(g->target);
    free(g->mert);
    free(g->t5);
    free(g->image);
    free(g->video);
}

static size_t raw_bytes(const gen_t *g) {
    size_t b = g->alen * 2 + g->tlen * 2 + sizeof(uint16_t) * (MERT_T * MERT_D + T5_T * T5_D);
    for (int c = 0; c < M2U_TEXT_COUNT; c++) b += g->text[c] ? strlen(g->text[c]) : 0;
    if (g->image) b += IMG_H * IMG_W * 3;
    if (g->video) b += VID_F * VID_S * VID_S * 3;
    return b;
}

static m2u_shard_tensor_spec TENSORS[4] = {
    {"mert", M2U_F16, 2, {MERT_T, MERT_D}, "m-a-p/MERT-v1-330M", "cfg-mert-1"},
    {"t5", M2U_F16, 2, {T5_T, T5_D}, "t5-base", "cfg-t5"},
    {"image", M2U_U8, 3, {IMG_H, IMG_W, 3}, "", ""},
    {"video", M2U_U8, 4, {VID_F, VID_S, VID_S, 3}, NULL, NULL},
};

static m2u_shard_spec full_spec(void) {
    m2u_shard_spec s;
    memset(&s, 0, sizeof s);
    s.audio_rate = RATE;
    s.target_audio = 1;
    s.n_attrs = 4;
    s.attr_names = ATTR_NAMES;
    s.n_tensors = 4;
    s.tensors = TENSORS;
    s.zstd_level = LEVEL;
    s.shuffle = 1;
    return s;
}

static void to_sample(const gen_t *g, m2u_shard_sample *s) {
    memset(s, 0, sizeof *s);
    for (int c = 0; c < M2U_TEXT_COUNT; c++) s->text[c] = g->text[c];
    s->clip_start = g->cs;
    s->clip_end = g->ce;
    s->audio = g->audio;
    s->audio_len = g->alen;
    s->target_audio = g->target;
    s->target_audio_len = g->tlen;
    s->attrs = g->has_attrs ? g->attrs : NULL;
    s->tensor[0] = g->mert;
    s->tensor[1] = g->t5;
    s->tensor[2] = g->image;
    s->tensor[3] = g->video;
}

static int write_full_shard(const char *path, size_t *raw) {
    m2u_shard_spec spec = full_spec();
    m2u_shard_writer *w;
    if (m2u_shard_create(path, &spec, &w) != 0) return -1;
    if (raw) *raw = 0;
    for (int i = 0; i < N; i++) {
        gen_t g;
        gen(i, &g);
        m2u_shard_sample s;
        to_sample(&g, &s);
        if (raw) *raw += raw_bytes(&g);
        int rc = m2u_shard_append(w, &s);
        gen_free(&g);
        if (rc != 0) {
            m2u_shard_abort(w);
            return -1;
        }
    }
    return m2u_shard_close(w);
}

static char *in_dir(const char *name) { return m2u_path_join(g_dir, name); }

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int copy_file(const char *from, const char *to, long keep) {
    char *data;
    size_t len;
    if (m2u_read_file(from, &data, &len) != 0) return -1;
    if (keep >= 0 && (size_t)keep < len) len = (size_t)keep;
    int rc = m2u_write_file_atomic(to, data, len);
    free(data);
    return rc;
}

static float f16_round(float x) { return m2u_f16_to_f32(m2u_f32_to_f16(x)); }

static void check_read_back(const char *path) {
    m2u_shard_reader *r;
    int rc = m2u_shard_open(path, &r);
    CHECK(rc == 0, "open: %s", m2u_last_error());
    if (rc) return;
    CHECK(m2u_shard_count(r) == N, "count %lld", (long long)m2u_shard_count(r));
    CHECK(m2u_shard_audio_rate(r) == RATE, "rate");
    CHECK(m2u_shard_has_target_audio(r), "target audio");
    CHECK(m2u_shard_n_attrs(r) == 4 && !strcmp(m2u_shard_attr_name(r, 3), "loudness"), "attr names");
    CHECK(m2u_shard_attr_index(r, "mode") == 2 && m2u_shard_attr_index(r, "nope") == -1, "attr index");
    CHECK(m2u_shard_n_tensors(r) == 4, "tensors %d", m2u_shard_n_tensors(r));
    int tm = m2u_shard_tensor_index(r, "mert"), tt = m2u_shard_tensor_index(r, "t5");
    int ti = m2u_shard_tensor_index(r, "image"), tv = m2u_shard_tensor_index(r, "video");
    CHECK(tm >= 0 && tt >= 0 && ti >= 0 && tv >= 0, "tensor names");
    if (tm < 0 || tt < 0 || ti < 0 || tv < 0) {
        m2u_shard_reader_close(r);
        return;
    }
    const m2u_shard_tensor_info *im = m2u_shard_tensor(r, tm), *iv = m2u_shard_tensor(r, tv);
    CHECK(im->dtype == M2U_F16 && im->rank == 2 && im->dims[0] == MERT_T && im->dims[1] == MERT_D &&
              im->numel == MERT_T * MERT_D && !strcmp(im->encoder, "m-a-p/MERT-v1-330M") &&
              !strcmp(im->config_hash, "cfg-mert-1"),
          "mert info");
    CHECK(iv->dtype == M2U_U8 && iv->rank == 4 && iv->dims[0] == VID_F && iv->dims[3] == 3 && iv->encoder[0] == 0,
          "video info");
    float *fbuf = malloc(sizeof(float) * MERT_T * MERT_D);
    uint16_t *hbuf = malloc(sizeof(uint16_t) * MERT_T * MERT_D);
    float *abuf = malloc(sizeof(float) * 300000);
    int16_t *ibuf = malloc(sizeof(int16_t) * 300000);
    for (int i = 0; i < N; i++) {
        gen_t g;
        gen(i, &g);
        for (int c = 0; c < M2U_TEXT_COUNT; c++) {
            char *s = NULL;
            size_t len = 0;
            const char *want = g.text[c] ? g.text[c] : "";
            rc = m2u_shard_get_text(r, (m2u_text_col)c, i, &s, &len);
            CHECK(rc == 0 && len == strlen(want) && !strcmp(s, want), "sample %d text %s", i, m2u_text_col_name(c));
            free(s);
        }
        size_t alen = 99;
        CHECK(m2u_shard_audio_len(r, 0, i, &alen) == 0 && alen == g.alen, "sample %d audio len %zu", i, alen);
        CHECK(m2u_shard_get_audio_i16(r, 0, i, ibuf, 300000) == 0 && !memcmp(ibuf, g.audio, g.alen * 2),
              "sample %d audio", i);
        int ok = m2u_shard_get_audio_f32(r, 0, i, abuf, 300000) == 0;
        for (size_t k = 0; ok && k < g.alen; k++) ok = abuf[k] == (float)g.audio[k] / 32768.0f;
        CHECK(ok, "sample %d audio f32", i);
        CHECK(m2u_shard_audio_len(r, 1, i, &alen) == 0 && alen == g.tlen &&
                  m2u_shard_get_audio_i16(r, 1, i, ibuf, 300000) == 0 && !memcmp(ibuf, g.target, g.tlen * 2),
              "sample %d target audio", i);
        double cs, ce;
        CHECK(m2u_shard_get_clip(r, i, &cs, &ce) == 0 && cs == g.cs && ce == g.ce, "sample %d clip", i);
        float at[4];
        CHECK(m2u_shard_get_attrs(r, i, at) == 0, "attrs");
        for (int k = 0; k < 4; k++)
            CHECK(g.has_attrs ? at[k] == g.attrs[k] : isnan(at[k]), "sample %d attr %d = %g", i, k, at[k]);
        /* f16 features come back as the float16 rounding of what was written */
        CHECK(m2u_shard_tensor_present(r, tm, i) == 1, "mert present");
        ok = m2u_shard_get_tensor_f32(r, tm, i, fbuf, MERT_T * MERT_D) == 0;
        for (int e = 0; ok && e < MERT_T * MERT_D; e++) ok = fbuf[e] == f16_round(g.mert[e]);
        CHECK(ok, "sample %d mert", i);
        ok = m2u_shard_get_tensor_raw(r, tm, i, hbuf, sizeof(uint16_t) * MERT_T * MERT_D) == 0;
        for (int e = 0; ok && e < MERT_T * MERT_D; e++) ok = hbuf[e] == m2u_f32_to_f16(g.mert[e]);
        CHECK(ok, "sample %d mert raw bits", i);
        ok = m2u_shard_get_tensor_f32(r, tt, i, fbuf, T5_T * T5_D) == 0;
        for (int e = 0; ok && e < T5_T * T5_D; e++) ok = fbuf[e] == f16_round(g.t5[e]);
        CHECK(ok, "sample %d t5", i);
        CHECK(m2u_shard_tensor_present(r, ti, i) == (g.image != NULL), "sample %d image presence", i);
        ok = m2u_shard_get_tensor_f32(r, ti, i, fbuf, IMG_H * IMG_W * 3) == 0;
        for (int e = 0; ok && e < IMG_H * IMG_W * 3; e++) ok = fbuf[e] == (g.image ? (float)g.image[e] : 0.0f);
        CHECK(ok, "sample %d image", i);
        uint8_t vbuf[VID_F * VID_S * VID_S * 3];
        CHECK(m2u_shard_tensor_present(r, tv, i) == (g.video != NULL), "sample %d video presence", i);
        ok = m2u_shard_get_tensor_raw(r, tv, i, vbuf, sizeof vbuf) == 0;
        for (size_t e = 0; ok && e < sizeof vbuf; e++) ok = vbuf[e] == (g.video ? g.video[e] : 0);
        CHECK(ok, "sample %d video", i);
        m2u_sample s;
        rc = m2u_shard_get_sample(r, i, &s);
        CHECK(rc == 0 && s.audio_len == g.alen && s.target_audio_len == g.tlen && s.n_attrs == 4 &&
                  !strcmp(s.text[M2U_TEXT_ID], g.text[M2U_TEXT_ID]) && !memcmp(s.audio, g.audio, g.alen * 2) &&
                  s.clip_end == g.ce && s.audio_rate == RATE,
              "sample %d get_sample", i);
        m2u_sample_free(&s);
        gen_free(&g);
    }
    /* out-of-range and too-small buffers are errors, not crashes */
    char *s = NULL;
    CHECK(m2u_shard_get_text(r, M2U_TEXT_ID, N, &s, NULL) != 0 && strstr(m2u_last_error(), path), "index N");
    CHECK(m2u_shard_get_audio_i16(r, 0, 0, ibuf, 10) != 0, "small audio buffer");
    CHECK(m2u_shard_get_tensor_f32(r, tm, 0, fbuf, 10) != 0, "small tensor buffer");
    char *col;
    const int64_t *off;
    CHECK(m2u_shard_text_column(r, M2U_TEXT_SPLIT, &col, NULL, &off) == 0 && off[2] - off[1] == 5 &&
              !memcmp(col + off[1], "valid", 5),
          "text column");
    free(col);
    free(fbuf);
    free(hbuf);
    free(abuf);
    free(ibuf);
    m2u_shard_reader_close(r);
}

static int same_sample(const m2u_sample *a, const m2u_sample *b) {
    for (int c = 0; c < M2U_TEXT_COUNT; c++)
        if (a->text_len[c] != b->text_len[c] || !a->text[c] || !b->text[c] || strcmp(a->text[c], b->text[c]))
            return 0;
    if (a->audio_len != b->audio_len || a->target_audio_len != b->target_audio_len || a->n_attrs != b->n_attrs ||
        a->audio_rate != b->audio_rate || memcmp(&a->clip_start, &b->clip_start, sizeof(double)) ||
        memcmp(&a->clip_end, &b->clip_end, sizeof(double)))
        return 0;
    if ((a->audio_len && memcmp(a->audio, b->audio, a->audio_len * 2)) ||
        (a->target_audio_len && memcmp(a->target_audio, b->target_audio, a->target_audio_len * 2)))
        return 0;
    return !a->n_attrs || !memcmp(a->attrs, b->attrs, (size_t)a->n_attrs * sizeof(float)); /* NaN bits too */
}

/* m2u_shard_get_samples and m2u_shard_get_tensors_f32 (one hyperslab for n
 * consecutive rows) equal the per-sample reads on every range; ranges outside
 * the shard are refused with a message naming the file and leave out as it was. */
static void check_batch(const char *path) {
    m2u_shard_reader *r;
    int rc = m2u_shard_open(path, &r);
    CHECK(rc == 0, "batch: open: %s", m2u_last_error());
    if (rc) return;
    m2u_sample one[N], many[N];
    for (int i = 0; i < N; i++) {
        rc = m2u_shard_get_sample(r, i, &one[i]);
        CHECK(rc == 0, "batch: get_sample %d: %s", i, m2u_last_error());
        if (rc) return;
    }
    static const int lens[] = {1, 2, 3, 7, N};
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
        for (int i0 = 0; i0 + lens[l] <= N; i0++) {
            int n = lens[l];
            rc = m2u_shard_get_samples(r, i0, n, many);
            CHECK(rc == 0, "batch %d+%d: %s", i0, n, m2u_last_error());
            for (int k = 0; rc == 0 && k < n; k++) {
                CHECK(same_sample(&many[k], &one[i0 + k]), "batch %d+%d: sample %d differs", i0, n, i0 + k);
                m2u_sample_free(&many[k]);
            }
        }
    /* tensors: f16 (mert, t5) and uint8 with absent rows (image, video) */
    size_t maxel = 0;
    for (int t = 0; t < m2u_shard_n_tensors(r); t++)
        if (m2u_shard_tensor(r, t)->numel > maxel) maxel = m2u_shard_tensor(r, t)->numel;
    float *rows = malloc(sizeof(float) * maxel * N), *row = malloc(sizeof(float) * maxel);
    for (int t = 0; t < m2u_shard_n_tensors(r); t++) {
        size_t ne = m2u_shard_tensor(r, t)->numel;
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
            for (int i0 = 0; i0 + lens[l] <= N; i0 += lens[l] > 1 ? 1 : 3) {
                int n = lens[l], ok;
                memset(rows, 0xff, sizeof(float) * ne * (size_t)n); /* NaN: absent rows must come back as zeros */
                ok = m2u_shard_get_tensors_f32(r, t, i0, n, rows, ne * (size_t)n) == 0;
                CHECK(ok, "tensors %s %d+%d: %s", m2u_shard_tensor(r, t)->name, i0, n, m2u_last_error());
                for (int k = 0; ok && k < n; k++) {
                    ok = m2u_shard_get_tensor_f32(r, t, i0 + k, row, ne) == 0 &&
                         !memcmp(rows + (size_t)k * ne, row, ne * sizeof(float));
                    CHECK(ok, "tensors %s %d+%d: row %d differs from the per-sample read",
                          m2u_shard_tensor(r, t)->name, i0, n, k);
                }
            }
    }

    /* refused ranges: before, past the end, empty, negative, overflowing */
    static const int64_t bad[][2] = {{-1, 1}, {N, 1}, {N - 2, 3}, {0, N + 1}, {0, 0}, {3, -1}, {1, INT64_MAX},
                                     {INT64_MAX, 2}, {-2, 4}};
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        memset(many, 0x5a, sizeof many);
        m2u_sample guard;
        memset(&guard, 0x5a, sizeof guard);
        rc = m2u_shard_get_samples(r, bad[b][0], bad[b][1], many);
        const char *e = m2u_last_error();
        CHECK(rc != 0 && strstr(e, path) && (strstr(e, "out of range") || strstr(e, "at least 1")),
              "samples %lld+%lld: rc %d, %s", (long long)bad[b][0], (long long)bad[b][1], rc, e);
        CHECK(!memcmp(&many[0], &guard, sizeof guard), "samples %lld+%lld: out touched on a refused range",
              (long long)bad[b][0], (long long)bad[b][1]);
        rc = m2u_shard_get_tensors_f32(r, 0, bad[b][0], bad[b][1], rows, maxel * N);
        e = m2u_last_error();
        CHECK(rc != 0 && strstr(e, path) && (strstr(e, "out of range") || strstr(e, "at least 1")),
              "tensors %lld+%lld: rc %d, %s", (long long)bad[b][0], (long long)bad[b][1], rc, e);
    }
    rc = m2u_shard_get_samples(r, N - 3, 4, many);
    CHECK(rc != 0 && strstr(m2u_last_error(), "samples 7..10 (4 from 7) out of range (shard has 10)"),
          "range message: %s", m2u_last_error());
    size_t ne0 = m2u_shard_tensor(r, 0)->numel;
    CHECK(m2u_shard_get_tensors_f32(r, 0, 0, 3, rows, ne0 * 3 - 1) != 0 && strstr(m2u_last_error(), "buffer"),
          "small batch tensor buffer: %s", m2u_last_error());
    CHECK(m2u_shard_get_tensors_f32(r, 99, 0, 1, rows, maxel) != 0 && strstr(m2u_last_error(), "out of range"),
          "tensor column 99");
    CHECK(m2u_shard_get_samples(r, 0, 1, NULL) != 0 && m2u_shard_get_tensors_f32(r, 0, 0, 1, NULL, 1) != 0,
          "NULL out accepted");
    free(rows);
    free(row);
    for (int i = 0; i < N; i++) m2u_sample_free(&one[i]);
    m2u_shard_reader_close(r);
}

/* Every sample of the shard at path, read in the order given, equals what
 * gen() wrote: text, audio, target audio and every tensor (per sample and in
 * batches).  The reader decodes chunks itself and keeps the last one of each
 * column, so the orders jump back into a kept chunk and across chunk edges. */
static void check_all_samples(const char *path, const char *what, const int *order, int n_order) {
    m2u_shard_reader *r;
    int rc = m2u_shard_open(path, &r);
    CHECK(rc == 0, "%s: open: %s", what, m2u_last_error());
    if (rc) return;
    int16_t *ibuf = malloc(sizeof(int16_t) * 300000);
    float *fbuf = malloc(sizeof(float) * MERT_T * MERT_D * N);
    for (int o = 0; o < n_order; o++) {
        int i = order[o];
        gen_t g;
        gen(i, &g);
        m2u_sample s;
        rc = m2u_shard_get_sample(r, i, &s);
        int ok = rc == 0 && s.audio_len == g.alen && s.target_audio_len == g.tlen &&
                 !memcmp(s.audio, g.audio, g.alen * 2) && !memcmp(s.target_audio, g.target, g.tlen * 2);
        for (int c = 0; ok && c < M2U_TEXT_COUNT; c++) ok = !strcmp(s.text[c], g.text[c] ? g.text[c] : "");
        CHECK(ok, "%s: sample %d: %s", what, i, rc ? m2u_last_error() : "differs");
        if (rc == 0) m2u_sample_free(&s);
        CHECK(m2u_shard_get_audio_i16(r, 0, i, ibuf, 300000) == 0 && !memcmp(ibuf, g.audio, g.alen * 2),
              "%s: sample %d audio", what, i);
        ok = m2u_shard_get_tensor_f32(r, 0, i, fbuf, MERT_T * MERT_D) == 0;
        for (int e = 0; ok && e < MERT_T * MERT_D; e++) ok = fbuf[e] == f16_round(g.mert[e]);
        CHECK(ok, "%s: sample %d mert", what, i);
        ok = m2u_shard_get_tensor_f32(r, 2, i, fbuf, IMG_H * IMG_W * 3) == 0;
        for (int e = 0; ok && e < IMG_H * IMG_W * 3; e++) ok = fbuf[e] == (g.image ? (float)g.image[e] : 0.0f);
        CHECK(ok, "%s: sample %d image", what, i);
        gen_free(&g);
    }
    /* batches from each start, then the whole shard at once */
    m2u_sample many[N];
    for (int i0 = N - 1; i0 >= 0; i0 -= 3) {
        int n = N - i0 < 4 ? N - i0 : 4;
        rc = m2u_shard_get_samples(r, i0, n, many);
        CHECK(rc == 0, "%s: batch %d+%d: %s", what, i0, n, m2u_last_error());
        for (int k = 0; rc == 0 && k < n; k++) {
            gen_t g;
            gen(i0 + k, &g);
            const char *an = g.text[M2U_TEXT_ANALYSIS] ? g.text[M2U_TEXT_ANALYSIS] : "";
            CHECK(many[k].audio_len == g.alen && !memcmp(many[k].audio, g.audio, g.alen * 2) &&
                      !strcmp(many[k].text[M2U_TEXT_ANALYSIS], an),
                  "%s: batch %d+%d: sample %d differs", what, i0, n, i0 + k);
            gen_free(&g);
            m2u_sample_free(&many[k]);
        }
    }
    int ok = m2u_shard_get_tensors_f32(r, 0, 0, N, fbuf, (size_t)MERT_T * MERT_D * N) == 0;
    for (int i = 0; ok && i < N; i++) {
        gen_t g;
        gen(i, &g);
        const float *row = fbuf + (size_t)i * MERT_T * MERT_D;
        for (int e = 0; ok && e < MERT_T * MERT_D; e++) ok = row[e] == f16_round(g.mert[e]);
        gen_free(&g);
    }
    CHECK(ok, "%s: mert of all samples in one batch", what);
    free(ibuf);
    free(fbuf);
    m2u_shard_reader_close(r);
}

/* src's root attributes and objects copied into a new file that starts with a 512-byte user
 * block (what h5jam makes): HDF5 addresses are then no longer file offsets. */
static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *op) {
    (void)ai;
    hid_t dst = *(hid_t *)op, a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a), sp = H5Aget_space(a);
    size_t sz = H5Tget_size(t) * (size_t)H5Sget_simple_extent_npoints(sp);
    void *buf = calloc(1, sz ? sz : 1);
    herr_t rc = H5Aread(a, t, buf);
    hid_t b = rc >= 0 ? H5Acreate2(dst, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    rc = b >= 0 && H5Awrite(b, t, buf) >= 0 ? 0 : -1;
    if (H5Tdetect_class(t, H5T_VLEN) > 0 || H5Tis_variable_str(t) > 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
    free(buf);
    if (b >= 0) H5Aclose(b);
    H5Sclose(sp), H5Tclose(t), H5Aclose(a);
    return rc;
}

static int copy_with_userblock(const char *src, const char *dst) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, 512);
    hid_t fo = H5Fcreate(dst, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), fi = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Pclose(fcpl);
    int rc = fo >= 0 && fi >= 0 ? 0 : -1;
    H5G_info_t gi;
    if (rc == 0 && H5Gget_info(fi, &gi) < 0) rc = -1;
    for (hsize_t i = 0; rc == 0 && i < gi.nlinks; i++) {
        char name[256];
        if (H5Lget_name_by_idx(fi, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0 ||
            H5Ocopy(fi, name, fo, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = -1;
    }
    hsize_t idx = 0;
    if (rc == 0 && H5Aiterate2(fi, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr, &fo) < 0) rc = -1;
    if (fi >= 0) H5Fclose(fi);
    if (fo >= 0) H5Fclose(fo);
    return rc;
}

/* The direct chunk reads against what the shard holds, in orders that jump
 * back into kept chunks; then shards the reader must read through HDF5
 * instead, whole columns or single chunks: no shuffle (chunks decoded straight
 * into the caller's buffer), /audio rewritten with gzip (another pipeline),
 * one /audio chunk stored unfiltered (its filter mask set, as HDF5 does
 * for a chunk a filter declined), and the whole shard behind a user block (the
 * chunk addresses are then not file offsets; the reader turns direct reads off
 * there, and a misplaced read would also fail its zstd frame checks and fall
 * back: this checks the samples, not which of the two kept them right). */
static void check_direct_reads(const char *good) {
    static const int fwd[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int back[] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 2, 1, 9, 0, 5, 5};
    check_all_samples(good, "forward", fwd, N);
    check_all_samples(good, "backward", back, (int)(sizeof back / sizeof *back));

    /* the same samples without the shuffle filter */
    char *p = in_dir("noshuffle.h5");
    m2u_shard_spec spec = full_spec();
    spec.shuffle = 0;
    m2u_shard_writer *w;
    int rc = m2u_shard_create(p, &spec, &w);
    for (int i = 0; rc == 0 && i < N; i++) {
        gen_t g;
        gen(i, &g);
        m2u_shard_sample s;
        to_sample(&g, &s);
        rc = m2u_shard_append(w, &s);
        gen_free(&g);
    }
    if (rc == 0) rc = m2u_shard_close(w);
    else m2u_shard_abort(w);
    CHECK(rc == 0, "no shuffle: write: %s", m2u_last_error());
    if (rc == 0) check_all_samples(p, "no shuffle", back, (int)(sizeof back / sizeof *back));
    unlink(p);

    /* /audio with gzip: read through HDF5 */
    CHECK(copy_file(good, p, -1) == 0, "copy");
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/audio", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t total = 0, chunk = 4096;
    H5Sget_simple_extent_dims(sp, &total, NULL);
    int16_t *all = malloc(total * sizeof(int16_t));
    CHECK(H5Dread(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0, "read /audio");
    H5Dclose(d);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 4);
    CHECK(H5Ldelete(f, "/audio", H5P_DEFAULT) >= 0, "delete /audio");
    d = H5Dcreate2(f, "/audio", H5T_STD_I16LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0, "gzip /audio");
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    check_all_samples(p, "gzip audio", back, (int)(sizeof back / sizeof *back));

    /* chunk 1 of /audio stored raw, both filters skipped (mask 0x3) */
    CHECK(copy_file(good, p, -1) == 0, "copy");
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "/audio", H5P_DEFAULT);
    dcpl = H5Dget_create_plist(d);
    CHECK(H5Pget_chunk(dcpl, 1, &chunk) == 1 && chunk < total, "audio chunk %llu", (unsigned long long)chunk);
    H5Pclose(dcpl);
    hsize_t at = chunk;
    CHECK(H5Dwrite_chunk(d, H5P_DEFAULT, 0x3, &at, chunk * sizeof(int16_t), all + chunk) >= 0, "raw chunk 1");
    H5Dclose(d);
    H5Fclose(f);
    check_all_samples(p, "raw chunk", back, (int)(sizeof back / sizeof *back));
    free(all);

    CHECK(copy_with_userblock(good, p) == 0, "copy behind a user block");
    check_all_samples(p, "user block", back, (int)(sizeof back / sizeof *back));
    unlink(p);
    free(p);
}

/* Filter 32015 with our level recorded on the dataset (and shuffle on numeric ones). */
static void check_filters(const char *path) {
    const char *names[] = {"/text/caption", "/text/caption_offsets", "/audio", "/target_audio", "/clip_start",
                           "/attrs", "/features/mert", "/media/image", "/media/image_present"};
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "H5Fopen");
    for (size_t k = 0; f >= 0 && k < sizeof names / sizeof *names; k++) {
        hid_t d = H5Dopen2(f, names[k], H5P_DEFAULT);
        hid_t pl = d >= 0 ? H5Dget_create_plist(d) : -1;
        int nf = pl >= 0 ? H5Pget_nfilters(pl) : 0, zstd = 0, shuffle = 0;
        for (int j = 0; j < nf; j++) {
            unsigned flags, cd[4] = {0};
            size_t ncd = 4;
            char fname[64];
            H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)j, &flags, &ncd, cd, sizeof fname, fname, NULL);
            if (id == M2U_ZSTD_FILTER_ID && ncd == 1 && cd[0] == LEVEL && j == nf - 1) zstd = 1;
            if (id == H5Z_FILTER_SHUFFLE) shuffle = 1;
        }
        /* shuffle goes on multi-byte numeric columns only, not on uint8 text/pixels/flags */
        int numeric = strcmp(names[k], "/text/caption") != 0 && strcmp(names[k], "/media/image") != 0 &&
                      strstr(names[k], "present") == NULL;
        CHECK(zstd, "%s: filter 32015 level %d not recorded (%d filters)", names[k], LEVEL, nf);
        CHECK(shuffle == numeric, "%s: shuffle %d", names[k], shuffle);
        if (pl >= 0) H5Pclose(pl);
        if (d >= 0) H5Dclose(d);
    }
    if (f >= 0) H5Fclose(f);
}

static int count_shards(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (!strncmp(e->d_name, "shard-", 6) && l > 3 && !strcmp(e->d_name + l - 3, ".h5")) n++;
    }
    if (d) closedir(d);
    return n;
}

static void check_kill_and_abort(void) {
    int before = count_shards();
    char *path = in_dir("shard-00099.h5");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        m2u_shard_spec spec = full_spec();
        m2u_shard_writer *w;
        if (m2u_shard_create(path, &spec, &w) != 0) _exit(3);
        for (int i = 0; i < 3; i++) {
            gen_t g;
            gen(i, &g);
            m2u_shard_sample s;
            to_sample(&g, &s);
            m2u_shard_append(w, &s);
            gen_free(&g);
        }
        raise(SIGKILL); /* killed mid-shard: no close, no cleanup */
        _exit(4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    CHECK(!m2u_file_exists(path), "killed writer left %s", path);
    CHECK(m2u_file_exists(tmp), "killed writer's temp file %s missing", tmp);
    CHECK(count_shards() == before, "shard count changed after kill");
    unlink(tmp);

    /* abort removes the temp file */
    m2u_shard_spec spec = full_spec();
    m2u_shard_writer *w;
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "create: %s", m2u_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(m2u_file_exists(tmp), "temp file while writing");
    m2u_shard_abort(w);
    CHECK(!m2u_file_exists(tmp) && !m2u_file_exists(path), "abort left files");

    /* invalid samples are refused and leave the writer usable */
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "create");
    m2u_shard_sample s;
    memset(&s, 0, sizeof s);
    s.text[M2U_TEXT_SPLIT] = "val";
    CHECK(m2u_shard_append(w, &s) != 0 && strstr(m2u_last_error(), "split 'val'"), "bad split: %s", m2u_last_error());
    s.text[M2U_TEXT_SPLIT] = "train";
    s.text[M2U_TEXT_KIND] = "podcast";
    CHECK(m2u_shard_append(w, &s) != 0 && strstr(m2u_last_error(), "kind"), "bad kind");
    s.text[M2U_TEXT_KIND] = NULL;
    CHECK(m2u_shard_append(w, &s) == 0 && m2u_shard_writer_count(w) == 1, "valid sample after refusals: %s",
          m2u_last_error());
    CHECK(m2u_shard_close(w) == 0, "close: %s", m2u_last_error());
    m2u_shard_reader *r;
    CHECK(m2u_shard_open(path, &r) == 0 && m2u_shard_count(r) == 1, "reopen");
    if (r) {
        m2u_sample smp;
        CHECK(m2u_shard_get_sample(r, 0, &smp) == 0 && smp.audio_len == 0 && isnan(smp.attrs[0]) &&
                  !strcmp(smp.text[M2U_TEXT_SPLIT], "train"),
              "minimal sample");
        m2u_sample_free(&smp);
        m2u_shard_reader_close(r);
    }
    unlink(path);

    /* bad specs */
    m2u_shard_tensor_spec bad = {"bad name", M2U_F16, 1, {4}, NULL, NULL};
    spec.tensors = &bad;
    spec.n_tensors = 1;
    CHECK(m2u_shard_create(path, &spec, &w) != 0 && strstr(m2u_last_error(), "bad name"), "bad tensor name");
    spec = full_spec();
    spec.audio_rate = 0;
    CHECK(m2u_shard_create(path, &spec, &w) != 0, "target audio without audio");
    CHECK(!m2u_file_exists(path), "failed create left a file");
    free(path);
}

/* open must fail and name the file (and optionally mention `what`) */
static void expect_refused(const char *path, const char *what) {
    m2u_shard_reader *r = NULL;
    int rc = m2u_shard_open(path, &r);
    CHECK(rc != 0, "%s was accepted", path);
    if (rc == 0) {
        m2u_shard_reader_close(r);
        return;
    }
    CHECK(strstr(m2u_last_error(), path) != NULL, "message does not name the file: %s", m2u_last_error());
    if (what) CHECK(strstr(m2u_last_error(), what) != NULL, "message lacks '%s': %s", what, m2u_last_error());
}

static void check_damaged(const char *good) {
    long size = file_size(good);
    char *p = in_dir("damaged.h5");

    CHECK(copy_file(good, p, size / 2) == 0, "copy");
    expect_refused(p, "truncated");
    CHECK(copy_file(good, p, 100) == 0, "copy");
    expect_refused(p, NULL);
    CHECK(m2u_write_file_atomic(p, "this is not hdf5 at all", 23) == 0, "write");
    expect_refused(p, "not an HDF5 file");
    char *missing = in_dir("nonexistent.h5");
    expect_refused(missing, "No such file");
    free(missing);

    /* missing column */
    CHECK(copy_file(good, p, -1) == 0, "copy");
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0 && H5Ldelete(f, "/text/caption", H5P_DEFAULT) >= 0, "delete column");
    H5Fclose(f);
    expect_refused(p, "text/caption is missing");

    /* wrong type */
    CHECK(copy_file(good, p, -1) == 0, "copy");
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t n = N;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    CHECK(f >= 0 && H5Ldelete(f, "/clip_end", H5P_DEFAULT) >= 0, "delete clip_end");
    hid_t d = H5Dcreate2(f, "/clip_end", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0, "create int clip_end");
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    expect_refused(p, "clip_end has the wrong type");

    /* a corrupted compressed chunk: open succeeds (metadata intact), the read fails */
    CHECK(copy_file(good, p, -1) == 0, "copy");
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    d = H5Dopen2(f, "/audio", H5P_DEFAULT);
    sp = H5Dget_space(d);
    hsize_t coff[1];
    unsigned mask;
    haddr_t addr = 0;
    hsize_t csize = 0;
    CHECK(H5Dget_chunk_info(d, sp, 0, coff, &mask, &addr, &csize) >= 0 && csize > 100, "chunk info");
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(p, "r+b");
    for (int k = 0; fp && k < 8; k++) {
        fseek(fp, (long)(addr + csize / 2 + (hsize_t)k), SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, (long)(addr + csize / 2 + (hsize_t)k), SEEK_SET);
        fputc(c ^ 0x5a, fp);
    }
    if (fp) fclose(fp);
    m2u_shard_reader *r = NULL;
    CHECK(m2u_shard_open(p, &r) == 0, "corrupt chunk: open: %s", m2u_last_error());
    if (r) {
        int16_t *buf = malloc(300000 * sizeof(int16_t));
        CHECK(m2u_shard_get_audio_i16(r, 0, 0, buf, 300000) != 0 && strstr(m2u_last_error(), p) &&
                  strstr(m2u_last_error(), "audio of sample 0"),
              "corrupt chunk read: %s", m2u_last_error());
        m2u_sample batch[2];
        CHECK(m2u_shard_get_samples(r, 0, 2, batch) != 0 && strstr(m2u_last_error(), p) &&
                  strstr(m2u_last_error(), "audio of sample 0") && batch[0].audio == NULL && batch[1].text[0] == NULL,
              "corrupt chunk batch read: %s", m2u_last_error());
        free(buf);
        m2u_shard_reader_close(r);
    }
    unlink(p);
    free(p);
}

/* Damaged HDF5 metadata of the right size: the variable-length string
 * attributes (encoder, config_hash, attr_names, m2u_version) live in a global
 * heap collection ("GCOL"); a damaged object size in it made libhdf5 crash
 * (SIGSEGV) or spin inside H5Aread.  The open runs in a child so a crash or a
 * hang is a test failure, not the end of the test; it must be refused with a
 * message naming the file.  (Through a manifest such damage is caught even
 * earlier, by the sha256 check: check_manifest's same-size change.) */
static void check_damaged_heap(const char *good) {
    long size = file_size(good);
    unsigned char *bytes = malloc((size_t)size);
    FILE *fp = fopen(good, "rb");
    CHECK(fp && fread(bytes, 1, (size_t)size, fp) == (size_t)size, "read %s", good);
    if (fp) fclose(fp);
    long gcol = -1;
    for (long p = 0; p + 32 < size && gcol < 0; p++)
        if (!memcmp(bytes + p, "GCOL", 4) && bytes[p + 4] == 1) gcol = p;
    CHECK(gcol >= 0, "no global heap in %s (are string attributes still variable-length?)", good);
    /* every object's size field (+8 in its header: index, refcount, reserved)
     * set too large by 64 KiB, or to a size whose padding wraps around */
    char *p = in_dir("damaged_heap.h5");
    long hsize = 0;
    for (int j = 7; gcol >= 0 && j >= 0; j--) hsize = hsize << 8 | bytes[gcol + 8 + j];
    int tried = 0;
    for (long o = gcol + 16; gcol >= 0 && o + 16 <= gcol + hsize;) {
        unsigned idx = bytes[o] | (unsigned)bytes[o + 1] << 8;
        long osz = 0;
        for (int j = 7; j >= 0; j--) osz = osz << 8 | bytes[o + 8 + j];
        if (idx == 0) break;
        for (int v = 0; v < 2; v++) {
            unsigned char *b = malloc((size_t)size);
            memcpy(b, bytes, (size_t)size);
            if (v == 0) { /* + 64 KiB: past the collection */
                memset(b + o + 8, 0, 8);
                memcpy(b + o + 8, bytes + o + 8, 2);
                b[o + 10] = 1;
            } else { /* 2^64 - 7: rounds up to 8-byte alignment as 0 */
                memset(b + o + 8, 0xff, 8);
                b[o + 8] = 0xf9;
            }
            CHECK(m2u_write_file_atomic(p, (const char *)b, (size_t)size) == 0, "write");
            free(b);
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                alarm(30);
                m2u_shard_reader *r = NULL;
                if (m2u_shard_open(p, &r) == 0) _exit(3);
                _exit(strstr(m2u_last_error(), p) && strstr(m2u_last_error(), "global heap") ? 0 : 4);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "heap object %u (%ld bytes) with size %s: %s %d (3: accepted, 4: message does not name the file "
                  "and the heap)",
                  idx, osz, v ? "2^64-7" : "+64 KiB", WIFSIGNALED(st) ? "crashed with signal" : "exit status",
                  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            tried++;
        }
        o += 16 + ((osz + 7) & ~7L);
    }
    CHECK(tried >= 8, "only %d heap objects tried", tried / 2);
    unlink(p);
    free(p);
    free(bytes);
}

/* A full disk: a shard that does not fit must fail with a message and let the
 * process exit normally.  libhdf5 1.10 used to be left with a half-closed
 * file id after the failed flush, and its atexit handler crashed (SIGSEGV).
 * Each case runs in a child that writes into a 256 KiB tmpfs and exits with
 * status 1 through exit() (so HDF5's atexit handler runs): a crash shows as a
 * signal.  Mounting needs root (CAP_SYS_ADMIN); elsewhere the check is
 * skipped with the reason printed. */
static void check_disk_full(void) {
    char *mnt = in_dir("full_disk");
    char cmd[1200];
    mkdir(mnt, 0755);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=256k m2u-test-full '%s' 2>&1", mnt);
    fflush(NULL);
    FILE *pp = popen(cmd, "r");
    char why[300] = "";
    size_t got = pp ? fread(why, 1, sizeof why - 1, pp) : 0;
    why[got] = '\0';
    int mounted = pp && pclose(pp) == 0;
    if (!mounted) {
        why[strcspn(why, "\n")] = '\0';
        printf("test_shard: full-disk check skipped: cannot mount a small tmpfs (needs root / CAP_SYS_ADMIN): %s\n",
               why[0] ? why : "mount failed");
        rmdir(mnt);
        free(mnt);
        return;
    }
    /* samples of incompressible [rows, 1024] float16 tensors: the first case
     * runs out of space in an append, the second in the last appends or the
     * final flush (both crashed before), the third fits but leaves less than
     * the margin check_space_to_finish() asks for the final flush */
    static const struct {
        int samples, rows;
    } cases[] = {{12, 20}, {6, 20}, {1, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *path = m2u_path_join(mnt, "shard-00000.h5");
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            m2u_shard_tensor_spec ts = {.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {cases[k].rows, 1024}};
            m2u_shard_spec spec = {.audio_rate = 16000, .n_tensors = 1, .tensors = &ts};
            m2u_shard_writer *w;
            if (m2u_shard_create(path, &spec, &w)) _exit(5);
            float *x = malloc((size_t)cases[k].rows * 1024 * sizeof *x);
            int16_t au[1000];
            m2u_rng g;
            m2u_rng_seed(&g, 7);
            for (int i = 0; i < cases[k].rows * 1024; i++) x[i] = (float)m2u_rng_uniform(&g);
            for (int i = 0; i < 1000; i++) au[i] = (int16_t)(m2u_rng_next(&g) >> 48);
            int rc = 0;
            for (int i = 0; i < cases[k].samples && !rc; i++) {
                m2u_shard_sample smp = {.clip_start = NAN, .clip_end = NAN, .audio = au, .audio_len = 1000};
                smp.tensor[0] = x;
                rc = m2u_shard_append(w, &smp);
            }
            if (rc) m2u_shard_abort(w);
            else rc = m2u_shard_close(w);
            free(x);
            /* refused, naming the shard: a clean exit through HDF5's atexit handler */
            if (rc && strstr(m2u_last_error(), path)) {
                printf("test_shard: full disk (%d x %d rows): %s\n", cases[k].samples, cases[k].rows,
                       m2u_last_error());
                exit(1);
            }
            exit(rc ? 4 : 3);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "full disk, %d samples of %d rows: %s %d (expected exit status 1; 3: the shard was written, 4: the "
              "message does not name it)",
              cases[k].samples, cases[k].rows, WIFSIGNALED(st) ? "killed by signal" : "exit status",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        DIR *d = opendir(mnt);
        int left = 0;
        for (struct dirent *e; d && (e = readdir(d));) left += e->d_name[0] != '.';
        if (d) closedir(d);
        CHECK(left == 0, "full disk: %d file(s) left behind in %s", left, mnt);
        snprintf(cmd, sizeof cmd, "rm -f '%s'/* 2>/dev/null", mnt);
        if (system(cmd) != 0) { /* nothing to remove */
        }
        free(path);
    }
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    CHECK(system(cmd) == 0, "umount %s", mnt);
    rmdir(mnt);
    free(mnt);
}

/* A small shard whose sample ids are global indices "g%05d", split by index. */
static int make_small_shard(const char *path, int first, int count) {
    m2u_shard_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.audio_rate = 16000;
    m2u_shard_tensor_spec t = {"clap", M2U_F16, 1, {8}, "clap", "h"};
    spec.tensors = &t;
    spec.n_tensors = 1;
    m2u_shard_writer *w;
    if (m2u_shard_create(path, &spec, &w) != 0) return -1;
    for (int i = first; i < first + count; i++) {
        char id[32];
        snprintf(id, sizeof id, "g%05d", i);
        int16_t audio[16];
        float feat[8];
        for (int k = 0; k < 16; k++) audio[k] = (int16_t)(i * 100 + k);
        for (int k = 0; k < 8; k++) feat[k] = (float)i + 0.5f * (float)k;
        m2u_shard_sample s;
        memset(&s, 0, sizeof s);
        s.text[M2U_TEXT_ID] = id;
        s.text[M2U_TEXT_SPLIT] = i % 5 == 3 ? "valid" : i % 5 == 4 ? "test" : "train";
        s.audio = audio;
        s.audio_len = (size_t)(i % 16);
        s.tensor[0] = i % 2 ? feat : NULL;
        if (m2u_shard_append(w, &s) != 0) {
            m2u_shard_abort(w);
            return -1;
        }
    }
    return m2u_shard_close(w);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void check_epoch_order(m2u_dataset *ds) {
    int64_t total = m2u_dataset_count(ds);
    int64_t *a, *b, na, nb;
    /* world 1: a permutation of everything, reproducible, different per epoch and seed */
    CHECK(m2u_dataset_epoch_order(ds, 42, 0, 0, 1, &a, &na) == 0 && na == total, "world 1");
    CHECK(m2u_dataset_epoch_order(ds, 42, 0, 0, 1, &b, &nb) == 0 && nb == na && !memcmp(a, b, (size_t)na * 8),
          "deterministic");
    free(b);
    int64_t *sorted = malloc((size_t)na * 8);
    memcpy(sorted, a, (size_t)na * 8);
    qsort(sorted, (size_t)na, 8, cmp_i64);
    int ok = 1, ident = 1;
    for (int64_t k = 0; k < na; k++) {
        ok &= sorted[k] == k;
        ident &= a[k] == k;
    }
    CHECK(ok, "not a permutation");
    CHECK(!ident, "identity permutation");
    free(sorted);
    CHECK(m2u_dataset_epoch_order(ds, 42, 1, 0, 1, &b, &nb) == 0 && memcmp(a, b, (size_t)na * 8) != 0,
          "same order in epochs 0 and 1");
    free(b);
    CHECK(m2u_dataset_epoch_order(ds, 43, 0, 0, 1, &b, &nb) == 0 && memcmp(a, b, (size_t)na * 8) != 0,
          "same order for seeds 42 and 43");
    free(b);
    free(a);
    /* ranks: equal counts, disjoint; union = all when the world divides the count */
    int worlds[] = {2, 3, 4, 5, 7};
    for (size_t wi = 0; wi < sizeof worlds / sizeof *worlds; wi++) {
        int world = worlds[wi];
        unsigned char *seen = calloc((size_t)total, 1);
        int64_t covered = 0;
        ok = 1;
        for (int rk = 0; rk < world; rk++) {
            int64_t *idx, n;
            if (m2u_dataset_epoch_order(ds, 7, 3, rk, world, &idx, &n) != 0) {
                ok = 0;
                break;
            }
            ok &= n == total / world;
            for (int64_t k = 0; k < n; k++) {
                ok &= idx[k] >= 0 && idx[k] < total && !seen[idx[k]];
                if (idx[k] >= 0 && idx[k] < total) seen[idx[k]] = 1;
                covered++;
            }
            free(idx);
        }
        CHECK(ok, "world %d: unequal, overlapping or out-of-range ranks", world);
        CHECK(covered == (total / world) * world, "world %d covered %lld", world, (long long)covered);
        if (total % world == 0) CHECK(covered == total, "world %d: union is not everything", world);
        free(seen);
    }
    CHECK(m2u_dataset_epoch_order(ds, 1, 0, 3, 3, &a, &na) != 0, "rank == world accepted");
    CHECK(m2u_dataset_epoch_order(ds, 1, 0, 0, (int)total + 1, &a, &na) != 0, "world > count accepted");
}

/* m2u_hash_file against xxh128sum and sha256sum (xxHash 0.8.1, coreutils) on
 * known inputs; the pattern crosses the 1 MiB read buffer three times. */
static void check_hash_file(void) {
    static const struct {
        size_t n;
        const char *xxh, *sha;
    } known[] = {
        {0, "99aa06d3014798d86001c324468d497f", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {3, "06b05ab6733a618578af5f94892f3950", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {3 * 1048576 + 5, "d4000aeb592841eaf9773a058dd68c26",
         "329f85fd8c099d1bb4cb37189898d9ce6bfb60d2277e230d5b17fb6be054140d"},
    };
    char *p = in_dir("hash.bin");
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        unsigned char *b = malloc(known[k].n + 1);
        for (size_t i = 0; i < known[k].n; i++) b[i] = known[k].n == 3 ? (unsigned char)("abc"[i]) : (unsigned char)((i * 131 + 7) % 251);
        CHECK(m2u_write_file_atomic(p, (const char *)b, known[k].n) == 0, "write %s", p);
        free(b);
        char sha[65] = "", xxh[33] = "", only[33] = "";
        CHECK(m2u_hash_file(p, sha, xxh) == 0 && !strcmp(xxh, known[k].xxh) && !strcmp(sha, known[k].sha),
              "hash of %zu bytes: xxh128 %s sha256 %s", known[k].n, xxh, sha);
        CHECK(m2u_hash_file(p, NULL, only) == 0 && !strcmp(only, known[k].xxh), "xxh128 alone: %s", only);
    }
    unlink(p);
    CHECK(m2u_hash_file(p, NULL, (char[33]){0}) != 0 && strstr(m2u_last_error(), "hash.bin"), "missing file: %s",
          m2u_last_error());
    free(p);
}

static void check_manifest(void) {
    /* three shards, one of them empty: 7 + 0 + 5 = 12 samples */
    int counts[3] = {7, 0, 5};
    char *paths[3];
    int first = 0;
    char *dsdir = in_dir("ds");
    CHECK(mkdir(dsdir, 0777) == 0, "mkdir %s", dsdir);
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "ds/shard-%05d.h5", s);
        paths[s] = in_dir(name);
        CHECK(make_small_shard(paths[s], first, counts[s]) == 0, "small shard %d: %s", s, m2u_last_error());
        first += counts[s];
    }
    const int total = first;
    m2u_manifest m;
    m2u_manifest_init(&m);
    for (int s = 0; s < 3; s++) {
        m2u_manifest_shard sh;
        char name[64];
        snprintf(name, sizeof name, "shard-%05d.h5", s);
        CHECK(m2u_manifest_scan_shard(dsdir, name, &sh) == 0, "scan: %s", m2u_last_error());
        CHECK(sh.count == counts[s] && sh.bytes == file_size(paths[s]), "scan %d", s);
        char hex[65], xx[33];
        m2u_sha256_file(paths[s], hex);
        CHECK(!strcmp(hex, sh.sha256), "scan sha");
        CHECK(m2u_hash_file(paths[s], NULL, xx) == 0 && !strcmp(xx, sh.xxh128), "scan xxh128 '%s'", sh.xxh128);
        CHECK(m2u_manifest_add(&m, &sh) == 0, "add");
        CHECK(m2u_manifest_add(&m, &sh) != 0, "duplicate add accepted");
        m2u_manifest_shard_free(&sh);
    }
    m2u_manifest_shard evil = {"../escape.h5", 1, 1, "", ""};
    CHECK(m2u_manifest_add(&m, &evil) != 0, "path outside accepted");
    m2u_manifest_shard badx = m.shards[0];
    badx.path = "other.h5";
    snprintf(badx.xxh128, sizeof badx.xxh128, "%s", "0123456789ABCDEF0123456789abcdef");
    CHECK(m2u_manifest_add(&m, &badx) != 0 && strstr(m2u_last_error(), "xxh128"), "upper-case xxh128 accepted");
    cJSON *cfg = cJSON_Parse("{\"clip_seconds\": 10, \"rates\": {\"mert\": 24000}, \"captioner\": \"builtin\"}");
    CHECK(m2u_manifest_set_config(&m, cfg) == 0, "config");
    char *mpath = m2u_path_join(dsdir, "manifest.json");
    CHECK(m2u_manifest_write(mpath, &m) == 0, "write manifest: %s", m2u_last_error());
    m2u_manifest back;
    CHECK(m2u_manifest_read(mpath, &back) == 0, "read manifest: %s", m2u_last_error());
    CHECK(back.n_shards == 3 && back.total == total && !strcmp(back.tool_version, M2U_VERSION) &&
              back.created && strlen(back.created) == 20,
          "manifest fields");
    for (int s = 0; s < 3 && back.n_shards == 3; s++)
        CHECK(!strcmp(back.shards[s].path, m.shards[s].path) && back.shards[s].count == m.shards[s].count &&
                  back.shards[s].bytes == m.shards[s].bytes && !strcmp(back.shards[s].sha256, m.shards[s].sha256) &&
                  strlen(back.shards[s].xxh128) == 32 && !strcmp(back.shards[s].xxh128, m.shards[s].xxh128),
              "shard %d round trip", s);
    CHECK(cJSON_Compare(back.config, cfg, 1), "config round trip");
    m2u_manifest_free(&back);
    m2u_manifest_free(&m);
    cJSON_Delete(cfg);

    /* random access across shards, with at most one shard open at a time */
    m2u_dataset_options opt = {NULL, 0, 1, 0}; /* verified (the default) */
    m2u_dataset *ds = NULL;
    CHECK(m2u_dataset_open(mpath, &opt, &ds) == 0, "dataset open: %s", m2u_last_error());
    if (ds) {
        CHECK(m2u_dataset_count(ds) == total, "dataset count");
        int order[] = {11, 0, 6, 7, 3, 10, 1};
        for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
            int i = order[k];
            m2u_sample s;
            char id[32];
            snprintf(id, sizeof id, "g%05d", i);
            int rc = m2u_dataset_get(ds, i, &s);
            CHECK(rc == 0 && !strcmp(s.text[M2U_TEXT_ID], id) && s.audio_len == (size_t)(i % 16) &&
                      (s.audio_len == 0 || s.audio[0] == i * 100),
                  "dataset get %d: %s", i, rc ? m2u_last_error() : s.text[M2U_TEXT_ID]);
            if (rc == 0) m2u_sample_free(&s);
            float feat[8];
            int present = -1;
            CHECK(m2u_dataset_get_tensor_f32(ds, i, "clap", feat, 8, &present) == 0 && present == (i % 2) &&
                      feat[3] == (present ? (float)i + 1.5f : 0.0f),
                  "dataset tensor %d", i);
        }
        int sh;
        int64_t local;
        CHECK(m2u_dataset_locate(ds, 7, &sh, &local) == 0 && sh == 2 && local == 0, "locate skips the empty shard");
        CHECK(m2u_dataset_get(ds, total, &(m2u_sample){0}) != 0, "index out of range accepted");
        check_epoch_order(ds);
        m2u_dataset_close(ds);
    }
    /* split view */
    opt.split = "valid";
    opt.no_verify = 1;
    CHECK(m2u_dataset_open(mpath, &opt, &ds) == 0, "valid view: %s", m2u_last_error());
    if (ds) {
        CHECK(m2u_dataset_count(ds) == 2, "valid count %lld", (long long)m2u_dataset_count(ds)); /* 3, 8 */
        for (int64_t i = 0; i < m2u_dataset_count(ds); i++) {
            m2u_sample s;
            CHECK(m2u_dataset_get(ds, i, &s) == 0 && !strcmp(s.text[M2U_TEXT_SPLIT], "valid") &&
                      atoi(s.text[M2U_TEXT_ID] + 1) % 5 == 3,
                  "valid sample %lld", (long long)i);
            m2u_sample_free(&s);
        }
        int64_t *idx, n;
        CHECK(m2u_dataset_epoch_order(ds, 1, 0, 0, 2, &idx, &n) == 0 && n == 1 && idx[0] >= 0 && idx[0] < 2,
              "valid epoch");
        free(idx);
        m2u_dataset_close(ds);
    }

    /* a same-size change is caught only by the hash; a size change always */
    FILE *fp = fopen(paths[2], "r+b");
    fseek(fp, 200, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 200, SEEK_SET);
    fputc(c ^ 1, fp);
    fclose(fp);
    opt.split = NULL;
    CHECK(m2u_dataset_open(mpath, &opt, &ds) == 0, "unverified open");
    m2u_dataset_close(ds);
    /* verified by default (NULL options too): the first open of the changed
     * shard is refused, naming it; the other shards still read.  Pass 2 asks
     * for the sha256 as well (the xxh128 fails first); pass 3 reads the
     * manifest as written before the xxh128 (none: the sha256 is checked). */
    char *mtext = NULL;
    size_t mlen = 0;
    CHECK(m2u_read_file(mpath, &mtext, &mlen) == 0, "read %s", mpath);
    for (int pass = 0; pass < 4; pass++) {
        opt.no_verify = 0;
        opt.verify_sha256 = pass == 2;
        if (pass == 3 && mtext) {
            cJSON *j = cJSON_Parse(mtext), *it;
            cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "shards")) cJSON_DeleteItemFromObject(it, "xxh128");
            char *old = cJSON_Print(j);
            CHECK(old && !strstr(old, "xxh128") && m2u_write_file_atomic(mpath, old, strlen(old)) == 0, "old manifest");
            free(old);
            cJSON_Delete(j);
        }
        CHECK(m2u_dataset_open(mpath, pass == 1 ? NULL : &opt, &ds) == 0, "verified open: %s", m2u_last_error());
        if (!ds) continue;
        m2u_shard_reader *sr;
        CHECK(m2u_dataset_shard(ds, 0, &sr) == 0, "intact shard 0: %s", m2u_last_error());
        CHECK(m2u_dataset_shard(ds, 2, &sr) != 0 && strstr(m2u_last_error(), pass == 3 ? "sha256" : "xxh128") &&
                  strstr(m2u_last_error(), "shard-00002.h5") && strstr(m2u_last_error(), "--no-verify"),
              "hash mismatch (pass %d): %s", pass, m2u_last_error());
        m2u_dataset_close(ds);
    }
    opt.verify_sha256 = 0;
    /* a shard whose xxh128 matches but whose recorded sha256 does not (a
     * manifest edited by hand): only the sha256 check sees it */
    if (mtext) {
        CHECK(m2u_write_file_atomic(mpath, mtext, mlen) == 0, "restore manifest");
        m2u_manifest mm;
        CHECK(m2u_manifest_read(mpath, &mm) == 0, "reread");
        if (mm.n_shards == 3) {
            mm.shards[0].sha256[0] = mm.shards[0].sha256[0] == '0' ? '1' : '0';
            CHECK(m2u_manifest_write(mpath, &mm) == 0, "rewrite");
            for (int sha = 0; sha < 2; sha++) {
                opt.verify_sha256 = sha;
                CHECK(m2u_dataset_open(mpath, &opt, &ds) == 0, "open: %s", m2u_last_error());
                m2u_shard_reader *sr;
                int rc0 = ds ? m2u_dataset_shard(ds, 0, &sr) : -1;
                CHECK(sha ? rc0 != 0 && strstr(m2u_last_error(), "sha256") : rc0 == 0, "sha256=%d: shard 0 %s", sha,
                      rc0 ? m2u_last_error() : "read");
                m2u_dataset_close(ds);
            }
            opt.verify_sha256 = 0;
        }
        m2u_manifest_free(&mm);
    }
    free(mtext);
    opt.no_verify = 1;
    unlink(paths[1]);
    CHECK(m2u_dataset_open(mpath, &opt, &ds) != 0 && strstr(m2u_last_error(), "shard-00001.h5"),
          "missing shard: %s", m2u_last_error());
    CHECK(copy_file(paths[0], paths[0], file_size(paths[0]) - 1) == 0, "truncate");
    CHECK(m2u_dataset_open(mpath, &opt, &ds) != 0 && strstr(m2u_last_error(), "shard-00000.h5") &&
              strstr(m2u_last_error(), "truncated"),
          "size mismatch: %s", m2u_last_error());
    const char *bad = "{\"format\": \"m2u-dataset-manifest\"}";
    CHECK(m2u_write_file_atomic(mpath, bad, strlen(bad)) == 0, "write");
    CHECK(m2u_dataset_open(mpath, &opt, &ds) != 0 && strstr(m2u_last_error(), "manifest_version"),
          "bad manifest: %s", m2u_last_error());
    for (int s = 0; s < 3; s++) {
        unlink(paths[s]);
        free(paths[s]);
    }
    unlink(mpath);
    free(mpath);
    rmdir(dsdir);
    free(dsdir);
}

/* h5py and h5dump read the shard through the plugin built beside this test. */
static void check_external_readers(const char *shard) {
    const char *plugdir = M2U_BUILD_DIR "/hdf5-plugins";
    char so[600], cmd[4096];
    snprintf(so, sizeof so, "%s/libh5zstd.so", plugdir);
    CHECK(m2u_file_exists(so), "%s missing: build the h5zstd target", so);
#if defined(__SANITIZE_ADDRESS__)
    /* A plugin built with the sanitizers needs libasan loaded first and so
     * cannot be loaded into an uninstrumented python3/h5dump; the release
     * build runs this part. */
    snprintf(cmd, sizeof cmd, "ldd '%s' | grep -q libasan", so);
    if (system(cmd) == 0) {
        printf("test_shard: h5py/h5dump check skipped: %s is instrumented\n", so);
        return;
    }
#endif
    /* Debian's python3-h5py is installed for /usr/bin/python3, which a pyenv or
     * venv python3 earlier on PATH would not see. */
    const char *py = getenv("M2U_PYTHON");
    if (!py) py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";

    gen_t g;
    const int i = 1;
    gen(i, &g);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "n", N);
    cJSON_AddNumberToObject(e, "audio_rate", RATE);
    cJSON_AddNumberToObject(e, "level", LEVEL);
    cJSON_AddNumberToObject(e, "sample", i);
    const char *filtered[] = {"text/caption", "audio", "audio_offsets", "attrs", "features/mert", "media/image"};
    cJSON_AddItemToObject(e, "filtered", cJSON_CreateStringArray(filtered, 6));
    cJSON *tx = cJSON_AddObjectToObject(e, "text");
    cJSON_AddStringToObject(tx, "id", g.text[M2U_TEXT_ID]);
    cJSON_AddStringToObject(tx, "caption", g.text[M2U_TEXT_CAPTION]);
    cJSON_AddStringToObject(tx, "attribution", g.text[M2U_TEXT_ATTRIBUTION]);
    cJSON_AddStringToObject(tx, "split", g.text[M2U_TEXT_SPLIT]);
    cJSON_AddNumberToObject(e, "audio_len", (double)g.alen);
    int head[6];
    for (int k = 0; k < 6; k++) head[k] = g.audio[k];
    cJSON_AddItemToObject(e, "audio_head", cJSON_CreateIntArray(head, 6));
    cJSON_AddNumberToObject(e, "clip_start", g.cs);
    cJSON_AddItemToObject(e, "attr_names", cJSON_CreateStringArray(ATTR_NAMES, 4));
    cJSON_AddItemToObject(e, "attrs", cJSON_CreateFloatArray(g.attrs, 4));
    int shape[3] = {N, MERT_T, MERT_D};
    cJSON_AddItemToObject(e, "mert_shape", cJSON_CreateIntArray(shape, 3));
    double mh[5];
    for (int k = 0; k < 5; k++) mh[k] = f16_round(g.mert[k]);
    cJSON_AddItemToObject(e, "mert_head", cJSON_CreateDoubleArray(mh, 5));
    cJSON_AddStringToObject(e, "mert_encoder", TENSORS[0].encoder);
    int px[3];
    for (int c = 0; c < 3; c++) px[c] = g.image[(1 * IMG_W + 2) * 3 + c];
    cJSON_AddItemToObject(e, "image_px", cJSON_CreateIntArray(px, 3));
    cJSON_AddNumberToObject(e, "absent_image", 3);
    char *js = cJSON_Print(e);
    char *jpath = in_dir("expected.json");
    CHECK(m2u_write_file_atomic(jpath, js, strlen(js)) == 0, "expected.json");
    cJSON_free(js);
    cJSON_Delete(e);
    gen_free(&g);

    snprintf(cmd, sizeof cmd, "%s -c 'import h5py, numpy' 2>/dev/null", py);
    int rc = system(cmd);
    CHECK(rc == 0, "%s cannot import h5py and numpy (apt-get install python3-h5py, or set M2U_PYTHON)", py);
    if (rc == 0) {
        fflush(NULL);
        snprintf(cmd, sizeof cmd, "HDF5_PLUGIN_PATH='%s' %s '%s/../data/test_shard_h5py.py' '%s' '%s'", plugdir, py,
                 M2U_FIXTURES, shard, jpath);
        rc = system(cmd);
        CHECK(rc == 0, "h5py check failed (%d): %s", rc, cmd);
    }
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' > '%s/h5dump.txt' 2>&1", shard, g_dir);
    rc = system(cmd);
    CHECK(rc == 0, "h5dump -H failed: %s", cmd);
    /* dumping data needs the filter: through the plugin */
    snprintf(cmd, sizeof cmd,
             "HDF5_PLUGIN_PATH='%s' h5dump -d /clip_start '%s' > '%s/h5dump.txt' 2>&1 && "
             "grep -q '13.5' '%s/h5dump.txt'",
             plugdir, shard, g_dir, g_dir);
    rc = system(cmd);
    CHECK(rc == 0, "h5dump -d /clip_start through the plugin failed: %s", cmd);
    char *dump = in_dir("h5dump.txt");
    unlink(dump);
    free(dump);
    unlink(jpath);
    free(jpath);
}

/* The filter callback itself: frames without a content size (written by other
 * zstd encoders in streaming mode) decode through the streaming path, several
 * frames concatenate, and truncated or damaged input is refused. */
static void check_filter_codec(void) {
    size_t n = 1 << 20;
    unsigned char *src = malloc(n);
    for (size_t k = 0; k < n; k++) src[k] = (unsigned char)((k * k) >> 9);
    /* our encoder, round trip */
    void *buf = malloc(n);
    memcpy(buf, src, n);
    size_t bsz = n;
    unsigned lvl = 3;
    size_t cn = m2u_h5z_zstd_filter(0, 1, &lvl, n, &bsz, &buf);
    CHECK(cn > 0 && cn < n / 4 && ZSTD_getFrameContentSize(buf, cn) == n, "encode %zu", cn);
    size_t dn = m2u_h5z_zstd_filter(H5Z_FLAG_REVERSE, 1, &lvl, cn, &bsz, &buf);
    CHECK(dn == n && !memcmp(buf, src, n), "round trip");
    free(buf);

    /* two frames of unknown content size, as a streaming encoder writes them */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t cap = 2 * ZSTD_compressBound(n);
    unsigned char *enc = malloc(cap);
    size_t used = 0;
    for (int f = 0; f < 2; f++) {
        ZSTD_CCtx_reset(cc, ZSTD_reset_session_only);
        ZSTD_inBuffer in = {src + f * (n / 2), n / 2, 0};
        ZSTD_outBuffer out = {enc, cap, used};
        size_t rem;
        do rem = ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end);
        while (rem != 0 && !ZSTD_isError(rem));
        used = out.pos;
    }
    ZSTD_freeCCtx(cc);
    CHECK(ZSTD_getFrameContentSize(enc, used) == ZSTD_CONTENTSIZE_UNKNOWN, "frame has a content size");
    buf = malloc(used);
    memcpy(buf, enc, used);
    bsz = used;
    dn = m2u_h5z_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, used, &bsz, &buf);
    CHECK(dn == n && !memcmp(buf, src, n), "streamed frames: %zu of %zu", dn, n);
    free(buf);
    /* truncated: cut inside the second frame */
    buf = malloc(used);
    memcpy(buf, enc, used);
    bsz = used;
    CHECK(m2u_h5z_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, used - 10, &bsz, &buf) == 0, "truncated frame accepted");
    free(buf);
    /* garbage */
    buf = malloc(64);
    memset(buf, 0xab, 64);
    bsz = 64;
    CHECK(m2u_h5z_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, 64, &bsz, &buf) == 0, "garbage accepted");
    free(buf);

    /* end to end: HDF5 reads a chunk written pre-compressed without content size */
    char *p = in_dir("raw_chunk.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims = n, chunk = n;
    hid_t sp = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_filter(dcpl, M2U_ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &lvl);
    hid_t d = H5Dcreate2(f, "x", H5T_NATIVE_UCHAR, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hsize_t origin = 0;
    CHECK(d >= 0 && H5Dwrite_chunk(d, H5P_DEFAULT, 0, &origin, used, enc) >= 0, "H5Dwrite_chunk");
    unsigned char *back = malloc(n);
    CHECK(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0 && !memcmp(back, src, n),
          "HDF5 read of a streamed chunk");
    free(back);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    unlink(p);
    free(p);
    free(enc);
    free(src);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test_shard.XXXXXX", M2U_BUILD_DIR);
    if (!mkdtemp(g_dir)) {
        perror(g_dir);
        return 1;
    }
    CHECK(m2u_zstd_filter_register() == 0, "register: %s", m2u_last_error());
    check_filter_codec();
    char *shard = in_dir("shard-00000.h5");
    size_t raw = 0;
    int rc = write_full_shard(shard, &raw);
    CHECK(rc == 0, "write: %s", m2u_last_error());
    if (rc == 0) {
        long sz = file_size(shard);
        printf("test_shard: %d samples, %zu raw bytes -> %ld bytes on disk (%.2fx)\n", N, raw, sz,
               (double)raw / (double)sz);
        CHECK(sz > 0 && (size_t)sz < raw * 6 / 10, "not compressed: %ld of %zu bytes", sz, raw);
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", shard, (long)getpid());
        CHECK(!m2u_file_exists(tmp), "temp file left after close");
        check_read_back(shard);
        check_batch(shard);
        check_direct_reads(shard);
        check_filters(shard);

        /* same samples, same order -> the same bytes */
        char *again = in_dir("again.h5");
        char h1[65] = "", h2[65] = "";
        CHECK(write_full_shard(again, NULL) == 0 && m2u_sha256_file(shard, h1) == 0 &&
                  m2u_sha256_file(again, h2) == 0 && !strcmp(h1, h2),
              "rewrite differs: %s vs %s", h1, h2);
        unlink(again);
        free(again);

        check_kill_and_abort();
        check_damaged(shard);
        check_damaged_heap(shard);
        check_external_readers(shard);
    }
    check_hash_file();
    check_manifest();
    check_disk_full();

    /* the filter registration is idempotent, and survives H5close */
    CHECK(m2u_zstd_filter_register() == 0 && m2u_zstd_filter_register() == 0, "register twice");
    CHECK(H5Zfilter_avail(M2U_ZSTD_FILTER_ID) > 0, "filter not available");

    unlink(shard);
    free(shard);
    if (t_fail == 0) rmdir(g_dir);
    H5close(); /* release HDF5's global allocations so LeakSanitizer sees only ours */
    return t_finish("test_shard");
}
