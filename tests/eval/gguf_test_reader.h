/* A small GGUF (version 3) reader for the tests (tests/eval/test_export.c, test_gguf_vocab.c):
 * the key/value pairs and tensor infos of a whole file read into memory; free(g.buf) when done.
 * Limits (64 keys, 128 tensors, short names) fit the tiny files the tests write. */
#ifndef M2U_GGUF_TEST_READER_H
#define M2U_GGUF_TEST_READER_H

#include "fileio.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    char key[128];
    uint32_t type;
    const unsigned char *val;
    size_t len;
} gkv;
typedef struct {
    char name[64];
    uint32_t nd, type;
    uint64_t ne[4], off;
} gti;
typedef struct {
    char *buf;
    size_t n;
    gkv kv[64];
    int n_kv;
    gti t[128];
    int n_t;
    size_t data;
    int ok;
} gfile;

static inline uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline size_t val_size(const unsigned char *p, const unsigned char *end, uint32_t type) {
    static const int sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > 12) return 0;
    if (type == 8) return p + 8 <= end ? 8 + (size_t)le(p, 8) : 0;
    if (type == 9) {
        if (p + 12 > end) return 0;
        uint32_t et = (uint32_t)le(p, 4);
        uint64_t n = le(p + 4, 8);
        size_t off = 12;
        for (uint64_t i = 0; i < n; i++) {
            size_t s = val_size(p + off, end, et);
            if (!s) return 0;
            off += s;
        }
        return off;
    }
    return (size_t)sz[type];
}
static inline int gguf_read(const char *path, gfile *g) {
    memset(g, 0, sizeof *g);
    if (m2u_read_file(path, &g->buf, &g->n)) return -1;
    const unsigned char *p = (const unsigned char *)g->buf, *end = p + g->n;
    if (g->n < 24 || memcmp(p, "GGUF", 4) || le(p + 4, 4) != 3) return -1;
    uint64_t nt = le(p + 8, 8), nk = le(p + 16, 8);
    if (nt > 128 || nk > 64) return -1;
    size_t o = 24;
    for (uint64_t i = 0; i < nk; i++) {
        uint64_t kl = le(p + o, 8);
        if (kl >= 128) return -1;
        memcpy(g->kv[i].key, p + o + 8, kl);
        o += 8 + kl;
        g->kv[i].type = (uint32_t)le(p + o, 4);
        o += 4;
        g->kv[i].val = p + o;
        g->kv[i].len = val_size(p + o, end, g->kv[i].type);
        if (!g->kv[i].len) return -1;
        o += g->kv[i].len;
    }
    g->n_kv = (int)nk;
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t nl = le(p + o, 8);
        if (nl >= 64) return -1;
        memcpy(g->t[i].name, p + o + 8, nl);
        o += 8 + nl;
        g->t[i].nd = (uint32_t)le(p + o, 4);
        o += 4;
        for (uint32_t d = 0; d < g->t[i].nd && d < 4; d++, o += 8) g->t[i].ne[d] = le(p + o, 8);
        g->t[i].type = (uint32_t)le(p + o, 4);
        g->t[i].off = le(p + o + 4, 8);
        o += 12;
    }
    g->n_t = (int)nt;
    g->data = (o + 31) / 32 * 32;
    g->ok = 1;
    return 0;
}
static inline const gkv *gguf_kv(const gfile *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}
static inline const gti *gguf_t(const gfile *g, const char *name) {
    for (int i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}
static inline size_t gti_bytes(const gti *t) {
    size_t n = t->type == 0 ? 4 : 2;
    for (uint32_t d = 0; d < t->nd; d++) n *= (size_t)t->ne[d];
    return n;
}

#endif
