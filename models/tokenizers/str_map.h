/* String -> int32 hash map (open addressing, FNV-1a) shared by the tokenizers' vocabularies
 * (tokenizer.c's BPE, bytelevel_bpe.c).  Keys are borrowed: they must outlive the map. */
#ifndef M2U_STR_MAP_H
#define M2U_STR_MAP_H

#include "m2u_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64: short keys, good enough spread */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

/* String -> int, open addressing.  Keys are borrowed: they must outlive the map. */
typedef struct {
    const char *key;
    uint32_t len;
    int32_t val;
} str_slot;

typedef struct {
    str_slot *slots;
    size_t cap, count; /* cap is a power of two (or 0) */
} str_map;

static inline int str_map_find(const str_map *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        const str_slot *e = &m->slots[i];
        if (!e->key) return -1;
        if (e->len == n && memcmp(e->key, s, n) == 0) return e->val;
    }
}

static inline int str_map_grow(str_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    str_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return m2u_fail("out of memory (hash table of %zu)", cap);
    for (size_t j = 0; j < m->cap; j++) {
        str_slot e = m->slots[j];
        if (!e.key) continue;
        size_t i = hash_bytes(e.key, e.len) & (cap - 1);
        while (slots[i].key) i = (i + 1) & (cap - 1);
        slots[i] = e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Insert or overwrite.  *was_new (optional) tells which. */
static inline int str_map_put(str_map *m, const char *key, size_t n, int32_t val, bool *was_new) {
    if ((m->count + 1) * 2 > m->cap && str_map_grow(m)) return -1;
    size_t mask = m->cap - 1;
    size_t i = hash_bytes(key, n) & mask;
    for (;; i = (i + 1) & mask) {
        str_slot *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->len = (uint32_t)n;
            e->val = val;
            m->count++;
            if (was_new) *was_new = true;
            return 0;
        }
        if (e->len == n && memcmp(e->key, key, n) == 0) {
            e->val = val;
            if (was_new) *was_new = false;
            return 0;
        }
    }
}

#endif
