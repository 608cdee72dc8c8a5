/* METEOR 1.5's synonym (WordNet) and paraphrase resources, re-implemented
 * from the Meteor 1.5 sources (cmu-mtlab/meteor: SynonymDictionary,
 * ParaphraseTransducer, scripts/build_wordnet_files.py).
 *
 * Synonyms.  meteor-1.5.jar carries synonym/english.synsets and
 * english.exceptions, made by build_wordnet_files.py from WordNet 3.0.  m2u
 * builds the same tables at run time from a WordNet 3.0 dict folder
 * (Debian: wordnet-base + wordnet-sense-index, /usr/share/wordnet) by the
 * script's rules:
 *   - synsets: index.sense line by line, lemma = the sense key before '%',
 *     consecutive lines of one lemma give its synset offsets (the part of
 *     speech is dropped: offsets are compared as plain integers, so offsets
 *     of different parts of speech that happen to be equal match, as in the
 *     jar); a lemma met again later replaces its set (Hashtable.put);
 *   - exceptions: {adj,adv,noun,verb}.exc lines "inflected base...": the
 *     jar's file is inverted twice, so in effect inflected -> bases.
 * Debian's 1:3.0-37 data files carry two corrections of Princeton's 3.0
 * release that were applied with WordNet's grind, which renumbers synset
 * offsets: verb synsets at offsets [613036, 2422967) moved by +18 bytes and
 * adjective synsets from 1681478 on by +1.  The jar's offsets are the
 * original ones and cross-part-of-speech collisions depend on them, so when
 * index.sense shows Debian's numbering (forget%2:31:02:: at 00613036,
 * placed%5:00:00:arranged:00 at 01681478; Princeton's files have 00613018
 * and 01681477) the offsets are moved back.  With that, the tables equal the
 * jar's english.synsets (147,306 lemmas) and english.exceptions (4,270
 * bases) entry for entry (checked by tests/make_eval_fixtures.py).
 *
 * Paraphrases.  paraphrase-en.gz (pycocoevalcap's meteor/data/): entries of
 * three lines, probability (unused by Meteor), phrase, paraphrase, read with
 * zlib (gzread also reads an uncompressed file as it is).  Meteor keeps all
 * entries in a trie keyed by the phrase; m2u keeps a hash of phrases with
 * their entries in file order, which yields the same paraphrases in the same
 * order.  A loader may be given the sentences to be scored: an entry with a
 * word that none of them contains can never match (a match needs every word
 * of the phrase in one sentence and every word of the paraphrase in the
 * other), so it is dropped at load time without changing any score. */
#include "meteor_data.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* string -> int map (open addressing, owned keys)                      */

typedef struct {
    char **key;
    uint64_t *hash; /* of each key: most probes end on a hash mismatch, without touching the key */
    int *val;
    size_t cap, n;
} strmap;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void sm_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->key[i]);
    free(m->key);
    free(m->hash);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t sm_slot_h(const strmap *m, const char *s, size_t n, uint64_t h) {
    size_t i = (size_t)h & (m->cap - 1);
    while (m->key[i] && !(m->hash[i] == h && strlen(m->key[i]) == n && memcmp(m->key[i], s, n) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static size_t sm_slot(const strmap *m, const char *s, size_t n) { return sm_slot_h(m, s, n, hash_bytes(s, n)); }

static int sm_get(const strmap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    size_t i = sm_slot(m, s, n);
    return m->key[i] ? m->val[i] : -1;
}

static int sm_grow(strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    strmap g = {calloc(cap, sizeof(char *)), malloc(cap * sizeof(uint64_t)), malloc(cap * sizeof(int)), cap, 0};
    if (!g.key || !g.hash || !g.val) {
        free(g.key);
        free(g.hash);
        free(g.val);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = (size_t)m->hash[i] & (cap - 1);
            while (g.key[j]) j = (j + 1) & (cap - 1);
            g.key[j] = m->key[i];
            g.hash[j] = m->hash[i];
            g.val[j] = m->val[i];
            g.n++;
        }
    free(m->key);
    free(m->hash);
    free(m->val);
    *m = g;
    return 0;
}

/* Value of s, inserting `val` when absent; *added says which.  -1: out of memory. */
static int sm_put(strmap *m, const char *s, size_t n, int val, int *added) {
    if ((m->n + 1) * 2 > m->cap && sm_grow(m)) return -1;
    uint64_t h = hash_bytes(s, n);
    size_t i = sm_slot_h(m, s, n, h);
    *added = 0;
    if (m->key[i]) return m->val[i];
    char *k = malloc(n + 1);
    if (!k) return -1;
    memcpy(k, s, n);
    k[n] = 0;
    m->key[i] = k;
    m->hash[i] = h;
    m->val[i] = val;
    m->n++;
    *added = 1;
    return val;
}

/* ------------------------------------------------------------------ */

typedef struct {
    int *v;
    size_t n, cap;
} ivec;

static int iv_push(ivec *a, int x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        int *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

struct m2u_meteor_data {
    /* synonyms */
    int has_synonyms;
    strmap lemma;          /* lemma -> index into syn_first/syn_count */
    ivec syn_first, syn_count, syn_pool;
    strmap form;           /* inflected form -> first index into exc_base */
    char **exc_base;       /* base lemma of each exception entry */
    ivec exc_next;         /* next base of the same form, -1 at the end */
    ivec exc_head, exc_tail; /* per form: its first and last entry */
    size_t exc_cap;
    /* paraphrases */
    int has_paraphrases;
    strmap vocab;          /* word -> id */
    ivec tok;              /* phrase words then paraphrase words, per entry */
    ivec e_off, e_rlen, e_plen, e_next;
    int *ph_head, *ph_tail; /* hash of phrases: first / last entry, -1 empty */
    size_t ph_cap, ph_n;
    int max_len;
    /* word filter for loading paraphrases (NULL: keep all) */
    const strmap *filter;
};

m2u_meteor_data *m2u_meteor_data_new(void) {
    m2u_meteor_data *d = calloc(1, sizeof *d);
    if (!d) m2u_fail("meteor: out of memory");
    return d;
}

void m2u_meteor_data_free(m2u_meteor_data *d) {
    if (!d) return;
    sm_free(&d->lemma);
    free(d->syn_first.v);
    free(d->syn_count.v);
    free(d->syn_pool.v);
    for (size_t i = 0; i < d->exc_next.n; i++) free(d->exc_base[i]);
    sm_free(&d->form);
    free(d->exc_base);
    free(d->exc_next.v);
    free(d->exc_head.v);
    free(d->exc_tail.v);
    sm_free(&d->vocab);
    free(d->tok.v);
    free(d->e_off.v);
    free(d->e_rlen.v);
    free(d->e_plen.v);
    free(d->e_next.v);
    free(d->ph_head);
    free(d->ph_tail);
    free(d);
}

int m2u_meteor_data_has_synonyms(const m2u_meteor_data *d) { return d && d->has_synonyms; }
int m2u_meteor_data_has_paraphrases(const m2u_meteor_data *d) { return d && d->has_paraphrases; }

/* ------------------------------------------------------------------ */
/* WordNet                                                             */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* next whitespace-separated field of [*p, end) on the current line */
static int next_field(const char **p, const char *end, const char **f, size_t *fn) {
    const char *s = *p;
    while (s < end && *s != '\n' && is_ws(*s)) s++;
    if (s >= end || *s == '\n') { *p = s; return 0; }
    const char *e = s;
    while (e < end && !is_ws(*e)) e++;
    *f = s;
    *fn = (size_t)(e - s);
    *p = e;
    return 1;
}

static const char *line_end(const char *p, const char *end) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    return e ? e : end;
}

/* Integer.parseInt of a synset offset field (decimal digits, int range). */
static int parse_offset(const char *f, size_t n, int *out) {
    if (n == 0 || n > 11) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9') return -1;
        v = v * 10 + (f[i] - '0');
    }
    if (v > 2147483647LL) return -1;
    *out = (int)v;
    return 0;
}

static int field_is(const char *f, size_t n, const char *s) { return strlen(s) == n && memcmp(f, s, n) == 0; }

int m2u_meteor_parse_index_sense(m2u_meteor_data *d, const char *buf, size_t len, const char *name) {
    const char *end = buf + len;
    /* pass 1: which numbering (see the top of this file) */
    int fix_verb = 0, fix_adj = 0;
    for (const char *p = buf; p < end;) {
        const char *le = line_end(p, end), *q = p, *k, *o;
        size_t kn, on;
        if (next_field(&q, le, &k, &kn) && next_field(&q, le, &o, &on)) {
            if (field_is(k, kn, "forget%2:31:02::") && field_is(o, on, "00613036")) fix_verb = 1;
            if (field_is(k, kn, "placed%5:00:00:arranged:00") && field_is(o, on, "01681478")) fix_adj = 1;
        }
        p = le + 1;
    }
    /* pass 2: consecutive lines of one lemma make one entry */
    const char *cur = NULL;
    size_t curn = 0;
    int cur_idx = -1, lineno = 0;
    for (const char *p = buf; p < end;) {
        const char *le = line_end(p, end), *q = p, *k, *o;
        size_t kn, on;
        lineno++;
        if (!next_field(&q, le, &k, &kn)) { /* the script would fail on a blank line; Meteor never sees one */
            p = le + 1;
            continue;
        }
        if (!next_field(&q, le, &o, &on))
            return m2u_fail("meteor: %s:%d: a sense key without a synset offset", name, lineno);
        const char *pct = memchr(k, '%', kn);
        size_t wn = pct ? (size_t)(pct - k) : kn;
        int off;
        if (parse_offset(o, on, &off))
            return m2u_fail("meteor: %s:%d: synset offset '%.*s' is not a number", name, lineno, (int)(on > 40 ? 40 : on), o);
        char ss = pct && pct + 1 < k + kn ? pct[1] : 0;
        if (fix_verb && ss == '2' && off >= 613036 && off < 2422967) off -= 18;
        if (fix_adj && (ss == '3' || ss == '5') && off >= 1681478) off -= 1;
        if (!cur || wn != curn || memcmp(cur, k, wn) != 0) {
            int added;
            int idx = sm_put(&d->lemma, k, wn, (int)d->syn_first.n, &added);
            if (idx < 0) goto oom;
            if (added) {
                if (iv_push(&d->syn_first, 0) || iv_push(&d->syn_count, 0)) goto oom;
            }
            /* a new group (or a lemma met again: Hashtable.put replaces its set) */
            d->syn_first.v[idx] = (int)d->syn_pool.n;
            d->syn_count.v[idx] = 0;
            cur = k;
            curn = wn;
            cur_idx = idx;
        }
        if (iv_push(&d->syn_pool, off)) goto oom;
        d->syn_count.v[cur_idx]++;
        p = le + 1;
    }
    d->has_synonyms = 1;
    return 0;
oom:
    return m2u_fail("meteor: out of memory reading %s", name);
}

int m2u_meteor_parse_exc(m2u_meteor_data *d, const char *buf, size_t len, const char *name) {
    const char *end = buf + len;
    for (const char *p = buf; p < end;) {
        const char *le = line_end(p, end), *q = p, *f, *b;
        size_t fn, bn;
        if (next_field(&q, le, &f, &fn)) {
            while (next_field(&q, le, &b, &bn)) {
                int added;
                int fi = sm_put(&d->form, f, fn, (int)d->exc_tail.n, &added);
                if (fi < 0) goto oom;
                if (d->exc_next.n == d->exc_cap) {
                    size_t cap = d->exc_cap ? d->exc_cap * 2 : 1024;
                    char **nb = realloc(d->exc_base, cap * sizeof *nb);
                    if (!nb) goto oom;
                    d->exc_base = nb;
                    d->exc_cap = cap;
                }
                int e = (int)d->exc_next.n;
                char *s = malloc(bn + 1);
                if (!s) goto oom;
                memcpy(s, b, bn);
                s[bn] = 0;
                d->exc_base[e] = s;
                if (iv_push(&d->exc_next, -1)) { free(s); goto oom; }
                if (added) {
                    if (iv_push(&d->exc_head, e) || iv_push(&d->exc_tail, e)) goto oom;
                } else {
                    d->exc_next.v[d->exc_tail.v[fi]] = e;
                    d->exc_tail.v[fi] = e;
                }
            }
        }
        p = le + 1;
    }
    return 0;
oom:
    return m2u_fail("meteor: out of memory reading %s", name);
}

int m2u_meteor_load_wordnet(m2u_meteor_data *d, const char *dir) {
    static const char *const exc[] = {"adj.exc", "adv.exc", "noun.exc", "verb.exc"};
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/index.sense", dir);
    if (m2u_read_file(path, &buf, &len))
        return m2u_fail("meteor: cannot read %s (WordNet 3.0 sense index; Debian: wordnet-sense-index)", path);
    int rc = m2u_meteor_parse_index_sense(d, buf, len, path);
    free(buf);
    if (rc) return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, exc[i]);
        if (m2u_read_file(path, &buf, &len))
            return m2u_fail("meteor: cannot read %s (WordNet 3.0 exception list; Debian: wordnet-base)", path);
        rc = m2u_meteor_parse_exc(d, buf, len, path);
        free(buf);
        if (rc) return -1;
    }
    return 0;
}

/* append the synsets of lemma s[0..n) */
static int add_synsets(const m2u_meteor_data *d, const char *s, size_t n, ivec *out) {
    int idx = sm_get(&d->lemma, s, n);
    if (idx < 0) return 0;
    for (int k = 0; k < d->syn_count.v[idx]; k++)
        if (iv_push(out, d->syn_pool.v[d->syn_first.v[idx] + k])) return -1;
    return 0;
}

/* String.length(): UTF-16 code units */
static size_t utf16_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) == 0x80) continue;
        n += (*p >= 0xF0) ? 2 : 1;
    }
    return n;
}

/* SynonymDictionary.morph: WordNet's suffix rules; the first candidate that
 * is a known lemma, else "" (returns its length in *rn, candidate in rb).
 * Meteor's "-ful" handling never fires: no suffix below ends in "ful". */
static void morph(const m2u_meteor_data *d, const char *w, char *rb, size_t *rn) {
    static const char *const sufx[20] = {"s",  "ses", "xes", "zes", "ches", "shes", "men", "ies", "s",  "ies",
                                         "es", "es",  "ed",  "ed",  "ing",  "ing",  "er",  "est", "er", "est"};
    static const char *const addr[20] = {"", "s", "x", "z", "ch", "sh", "man", "y", "", "y",
                                         "e", "", "e", "", "e", "", "", "", "e", "e"};
    size_t n = strlen(w);
    if ((n >= 2 && w[n - 2] == 's' && w[n - 1] == 's') || utf16_len(w) <= 2) {
        memcpy(rb, w, n);
        *rn = n;
        return;
    }
    for (int i = 0; i < 20; i++) {
        size_t sl = strlen(sufx[i]), al = strlen(addr[i]);
        if (n < sl || memcmp(w + n - sl, sufx[i], sl) != 0) continue;
        memcpy(rb, w, n - sl);
        memcpy(rb + n - sl, addr[i], al);
        if (sm_get(&d->lemma, rb, n - sl + al) >= 0) {
            *rn = n - sl + al;
            return;
        }
    }
    *rn = 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int m2u_meteor_word_synsets(const m2u_meteor_data *d, const char *word, int **out, int *n) {
    ivec v = {0};
    size_t wl = strlen(word);
    *out = NULL;
    *n = 0;
    if (add_synsets(d, word, wl, &v)) goto oom;
    int fi = sm_get(&d->form, word, wl);
    if (fi >= 0) { /* getStemSynSets: exception bases, if listed */
        for (int e = d->exc_head.v[fi]; e >= 0; e = d->exc_next.v[e])
            if (add_synsets(d, d->exc_base[e], strlen(d->exc_base[e]), &v)) goto oom;
    } else { /* else the synsets of morph(word) */
        char *rb = malloc(wl + 8);
        size_t rn;
        if (!rb) goto oom;
        morph(d, word, rb, &rn);
        int rc = add_synsets(d, rb, rn, &v);
        free(rb);
        if (rc) goto oom;
    }
    if (v.n) {
        qsort(v.v, v.n, sizeof *v.v, cmp_int);
        size_t k = 1;
        for (size_t i = 1; i < v.n; i++)
            if (v.v[i] != v.v[k - 1]) v.v[k++] = v.v[i];
        v.n = k;
    }
    *out = v.v;
    *n = (int)v.n;
    if (!v.n) {
        free(v.v);
        *out = NULL;
    }
    return 0;
oom:
    free(v.v);
    return m2u_fail("meteor: out of memory");
}

/* ------------------------------------------------------------------ */
/* Paraphrase table                                                    */

static uint64_t hash_ids(const int *ids, int n) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

static int ph_same(const m2u_meteor_data *d, int e, const int *ids, int n) {
    return d->e_rlen.v[e] == n && memcmp(d->tok.v + d->e_off.v[e], ids, (size_t)n * sizeof *ids) == 0;
}

static size_t ph_slot(const m2u_meteor_data *d, const int *ids, int n) {
    size_t i = (size_t)hash_ids(ids, n) & (d->ph_cap - 1);
    while (d->ph_head[i] >= 0 && !ph_same(d, d->ph_head[i], ids, n)) i = (i + 1) & (d->ph_cap - 1);
    return i;
}

static int ph_grow(m2u_meteor_data *d) {
    size_t cap = d->ph_cap ? d->ph_cap * 2 : 1024, old = d->ph_cap;
    int *h = malloc(cap * sizeof *h), *t = malloc(cap * sizeof *t);
    if (!h || !t) {
        free(h);
        free(t);
        return -1;
    }
    int *oh = d->ph_head, *ot = d->ph_tail;
    for (size_t i = 0; i < cap; i++) h[i] = t[i] = -1;
    d->ph_head = h;
    d->ph_tail = t;
    d->ph_cap = cap;
    for (size_t i = 0; i < old; i++)
        if (oh[i] >= 0) {
            int e = oh[i];
            size_t j = ph_slot(d, d->tok.v + d->e_off.v[e], d->e_rlen.v[e]);
            h[j] = oh[i];
            t[j] = ot[i];
        }
    free(oh);
    free(ot);
    return 0;
}

/* tokens of a line (StringTokenizer: space, \t, \n, \r, \f) -> ids appended to d->tok;
 * returns the count, -2 when a word is outside the filter, -1 out of memory */
static int line_ids(m2u_meteor_data *d, char *s) {
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\n') s++;
        if (!*s) break;
        char *e = s;
        while (*e && !(*e == ' ' || *e == '\t' || *e == '\r' || *e == '\f' || *e == '\n')) e++;
        size_t wn = (size_t)(e - s);
        if (d->filter && sm_get(d->filter, s, wn) < 0) return -2;
        int added, id = sm_put(&d->vocab, s, wn, (int)d->vocab.n, &added);
        if (id < 0 || iv_push(&d->tok, id)) return -1;
        n++;
        s = e;
    }
    return n;
}

/* one line (without its terminator) of a gz stream into *buf; 0 ok, 1 end of file, -1 error */
static int gz_line(gzFile f, char **buf, size_t *cap) {
    size_t n = 0;
    int c;
    if (!*cap) {
        *buf = malloc(256);
        if (!*buf) return -1;
        *cap = 256;
    }
    while ((c = gzgetc(f)) != -1) {
        if (c == '\n') break;
        if (n + 2 > *cap) {
            char *p = realloc(*buf, *cap * 2);
            if (!p) return -1;
            *buf = p;
            *cap *= 2;
        }
        (*buf)[n++] = (char)c;
    }
    if (c == -1) {
        int err;
        gzerror(f, &err);
        if (err != Z_OK && err != Z_BUF_ERROR) return -1;
        if (n == 0) return 1;
    }
    if (n && (*buf)[n - 1] == '\r') n--; /* BufferedReader.readLine: \r\n ends a line */
    (*buf)[n] = 0;
    return 0;
}

/* Normalised words of the sentences (the filter of a paraphrase load). */
static int filter_words(const m2u_caption_set *s, strmap *m) {
    for (size_t i = 0; i < s->n; i++)
        for (int r = -1; r < s->n_refs[i]; r++) {
            char *norm = m2u_meteor_normalize(r < 0 ? s->cand[i] : s->refs[i][r]);
            if (!norm) return -1;
            for (char *p = norm; *p;) {
                while (*p == ' ') p++;
                if (!*p) break;
                char *e = p;
                while (*e && *e != ' ') e++;
                int added;
                if (sm_put(m, p, (size_t)(e - p), 0, &added) < 0) {
                    free(norm);
                    return m2u_fail("meteor: out of memory");
                }
                p = e;
            }
            free(norm);
        }
    return 0;
}

int m2u_meteor_load_paraphrase(m2u_meteor_data *d, const char *path, const m2u_caption_set *only_for) {
    strmap filt = {0};
    if (only_for && filter_words(only_for, &filt)) {
        sm_free(&filt);
        return -1;
    }
    gzFile f = gzopen(path, "rb");
    if (!f) {
        sm_free(&filt);
        return m2u_fail("meteor: cannot open paraphrase table %s", path);
    }
    gzbuffer(f, 1 << 17);
    d->filter = only_for ? &filt : NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = -1, r;
    while ((r = gz_line(f, &line, &cap)) == 0) {
        lineno++; /* probability line: Meteor does not use it */
        size_t mark = d->tok.n;
        int n[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            r = gz_line(f, &line, &cap);
            if (r < 0) goto io;
            if (r == 1) {
                m2u_fail("meteor: %s: entry at line %ld is cut short (3 lines per entry)", path, lineno);
                goto done;
            }
            lineno++;
            n[k] = (k == 1 && n[0] == -2) ? -2 : line_ids(d, line);
            if (n[k] == -1) goto oom;
        }
        /* outside the filter, or an empty phrase (never matched by Meteor's trie:
         * the root state emits nothing; the distributed table has none) */
        if (n[0] <= 0 || n[1] <= 0) {
            d->tok.n = mark;
            continue;
        }
        if (n[0] > 255 || n[1] > 255) {
            m2u_fail("meteor: %s: entry at line %ld has a phrase of more than 255 words", path, lineno - 1);
            goto done;
        }
        if (d->e_off.n >= 0x7fffffff || d->tok.n >= 0x7fffffff) {
            m2u_fail("meteor: %s: more than 2^31 entries or words", path);
            goto done;
        }
        int e = (int)d->e_off.n;
        if (iv_push(&d->e_off, (int)mark) || iv_push(&d->e_rlen, n[0]) || iv_push(&d->e_plen, n[1]) ||
            iv_push(&d->e_next, -1))
            goto oom;
        if ((d->ph_n + 1) * 2 > d->ph_cap && ph_grow(d)) goto oom;
        size_t sl = ph_slot(d, d->tok.v + mark, n[0]);
        if (d->ph_head[sl] < 0) {
            d->ph_head[sl] = d->ph_tail[sl] = e;
            d->ph_n++;
        } else {
            d->e_next.v[d->ph_tail[sl]] = e;
            d->ph_tail[sl] = e;
        }
        if (n[0] > d->max_len) d->max_len = n[0];
    }
    if (r < 0) goto io;
    d->has_paraphrases = 1;
    rc = 0;
    goto done;
io:
    m2u_fail("meteor: %s: read error (not a valid gzip file?)", path);
    goto done;
oom:
    m2u_fail("meteor: out of memory reading %s", path);
done:
    d->filter = NULL;
    free(line);
    gzclose(f);
    sm_free(&filt);
    return rc;
}

int m2u_meteor_para_word(const m2u_meteor_data *d, const char *word) { return sm_get(&d->vocab, word, strlen(word)); }
int m2u_meteor_para_max_len(const m2u_meteor_data *d) { return d->max_len; }

int m2u_meteor_para_first(const m2u_meteor_data *d, const int *ids, int len) {
    if (!d->ph_cap) return -1;
    for (int i = 0; i < len; i++)
        if (ids[i] < 0) return -1;
    return d->ph_head[ph_slot(d, ids, len)];
}

int m2u_meteor_para_next(const m2u_meteor_data *d, int entry) { return d->e_next.v[entry]; }

const int *m2u_meteor_para_target(const m2u_meteor_data *d, int entry, int *len) {
    *len = d->e_plen.v[entry];
    return d->tok.v + d->e_off.v[entry] + d->e_rlen.v[entry];
}
