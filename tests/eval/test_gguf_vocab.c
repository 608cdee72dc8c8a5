/* The GGUF vocabulary m2u-export writes, tokenized the way llama.cpp does, gives HF's ids.
 *
 * llama.cpp reads a "llama" GGUF's vocabulary with its SPM tokenizer (llm_tokenizer_spm in
 * src/llama-vocab.cpp), which merges by piece score and never sees the BPE merges.  This test
 * exports a tiny LLaMA (zero weights) carrying the real LLaMA-2 tokenizer (tests/fixtures/tokenizer)
 * to GGUF, reads the tokens, scores and token types back from the file, runs that algorithm (re-
 * implemented below, as in tests/gguf_spm.py) on 700 strings and compares with the ids HF
 * `tokenizers` gives (tests/fixtures/gguf_vocab/cases.jsonl, made by
 * tests/make_gguf_vocab_fixtures.py): unicode in many scripts, digits, whitespace runs, characters
 * outside the vocabulary (byte fallback), literal special tokens.  Every string must match.  The
 * same vocabulary with every score -1000 (what the export wrote before, and gguf-py's LlamaHfVocab
 * writes) must not: that checks the comparison can fail. */
#include "export.h"
#include "fileio.h"
#include "gguf_test_reader.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK_DIR M2U_FIXTURES "/tokenizer"
#define CASES M2U_FIXTURES "/gguf_vocab/cases.jsonl"

enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER_DEFINED = 4, T_UNUSED = 5, T_BYTE = 6 };

/* ---- the vocabulary as llama.cpp holds it ---------------------------------------------------------- */

typedef struct {
    int n;
    const char **text; /* borrowed from the GGUF buffer: not NUL-terminated, see len */
    size_t *len;
    float *score;
    int32_t *type;
    int32_t *slot; /* open-addressing text -> id; a repeated text keeps the last id, as llama.cpp's map */
    size_t cap;
    int *special; /* control, user-defined and unknown ids, longest text first */
    int n_special;
} vocab;

static uint64_t h_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int v_find(const vocab *v, const char *s, size_t n) {
    for (size_t i = h_bytes(s, n) & (v->cap - 1);; i = (i + 1) & (v->cap - 1)) {
        int id = v->slot[i];
        if (id < 0) return -1;
        if (v->len[id] == n && !memcmp(v->text[id], s, n)) return id;
    }
}

static const vocab *g_sort_v;
static int by_len_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    size_t lx = g_sort_v->len[x], ly = g_sort_v->len[y];
    return lx != ly ? (lx > ly ? -1 : 1) : (x > y) - (x < y);
}

/* tokens, scores and token types from the GGUF's key/value pairs */
static int v_from_gguf(const gfile *g, vocab *v) {
    memset(v, 0, sizeof *v);
    const gkv *kt = gguf_kv(g, "tokenizer.ggml.tokens"), *ks = gguf_kv(g, "tokenizer.ggml.scores");
    const gkv *ky = gguf_kv(g, "tokenizer.ggml.token_type");
    if (!kt || !ks || !ky || kt->type != 9 || ks->type != 9 || ky->type != 9) return -1;
    if (le(kt->val, 4) != 8 || le(ks->val, 4) != 6 || le(ky->val, 4) != 5) return -1;
    uint64_t n = le(kt->val + 4, 8);
    if (n == 0 || n > (1u << 24) || le(ks->val + 4, 8) != n || le(ky->val + 4, 8) != n) return -1;
    v->n = (int)n;
    v->text = calloc(n, sizeof *v->text);
    v->len = calloc(n, sizeof *v->len);
    v->score = calloc(n, sizeof *v->score);
    v->type = calloc(n, sizeof *v->type);
    v->special = calloc(n, sizeof *v->special);
    for (v->cap = 16; v->cap < 2 * n;) v->cap *= 2;
    v->slot = malloc(v->cap * sizeof *v->slot);
    if (!v->text || !v->len || !v->score || !v->type || !v->special || !v->slot) return -1;
    memset(v->slot, 0xFF, v->cap * sizeof *v->slot);
    const unsigned char *p = kt->val + 12;
    for (int i = 0; i < v->n; i++) {
        v->len[i] = (size_t)le(p, 8);
        v->text[i] = (const char *)p + 8;
        p += 8 + v->len[i];
        uint32_t bits = (uint32_t)le(ks->val + 12 + 4 * (size_t)i, 4);
        memcpy(&v->score[i], &bits, 4);
        v->type[i] = (int32_t)le(ky->val + 12 + 4 * (size_t)i, 4);
        size_t k = h_bytes(v->text[i], v->len[i]) & (v->cap - 1);
        while (v->slot[k] >= 0 && !(v->len[v->slot[k]] == v->len[i] && !memcmp(v->text[v->slot[k]], v->text[i], v->len[i])))
            k = (k + 1) & (v->cap - 1);
        v->slot[k] = i; /* the last id of a repeated text wins */
        if (v->type[i] == T_CONTROL || v->type[i] == T_USER_DEFINED || v->type[i] == T_UNKNOWN)
            v->special[v->n_special++] = i;
    }
    g_sort_v = v;
    qsort(v->special, (size_t)v->n_special, sizeof *v->special, by_len_desc);
    return 0;
}

static void v_free(vocab *v) {
    free(v->text);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->slot);
    free(v->special);
}

/* ---- llama.cpp's SPM tokenizer ------------------------------------------------------------------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ids_t;

static void push_id(ids_t *o, int32_t id) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->v = realloc(o->v, o->cap * sizeof *o->v);
        if (!o->v) abort();
    }
    o->v[o->n++] = id;
}

typedef struct {
    size_t off, n; /* n 0: merged into its left neighbour */
    int prev, next;
} sym_t;
typedef struct {
    float score;
    int left, right;
    size_t size;
} bigram_t;
typedef struct {
    size_t off, n; /* the text of a merge, in the session's text */
    int left, right;
} rev_t;

typedef struct {
    const vocab *v;
    const char *s;
    sym_t *sym;
    bigram_t *heap;
    size_t n_heap, cap_heap;
    rev_t *rev;
    size_t n_rev, cap_rev;
} session;

/* llm_bigram_spm's order: the highest score first, then the leftmost */
static bool before(const bigram_t *a, const bigram_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(session *S, bigram_t b) {
    if (S->n_heap == S->cap_heap) {
        S->cap_heap = S->cap_heap ? 2 * S->cap_heap : 64;
        S->heap = realloc(S->heap, S->cap_heap * sizeof *S->heap);
        if (!S->heap) abort();
    }
    size_t i = S->n_heap++;
    while (i > 0 && before(&b, &S->heap[(i - 1) / 2])) {
        S->heap[i] = S->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    S->heap[i] = b;
}

static bigram_t heap_pop(session *S) {
    bigram_t top = S->heap[0], last = S->heap[--S->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S->n_heap) break;
        if (c + 1 < S->n_heap && before(&S->heap[c + 1], &S->heap[c])) c++;
        if (!before(&S->heap[c], &last)) break;
        S->heap[i] = S->heap[c];
        i = c;
    }
    if (S->n_heap) S->heap[i] = last;
    return top;
}

static void try_add_bigram(session *S, int left, int right) {
    if (left < 0 || right < 0) return;
    size_t off = S->sym[left].off, n = S->sym[left].n + S->sym[right].n;
    int id = v_find(S->v, S->s + off, n);
    if (id < 0 || id >= S->v->n) return;
    heap_push(S, (bigram_t){S->v->score[id], left, right, n});
    if (S->n_rev == S->cap_rev) {
        S->cap_rev = S->cap_rev ? 2 * S->cap_rev : 64;
        S->rev = realloc(S->rev, S->cap_rev * sizeof *S->rev);
        if (!S->rev) abort();
    }
    S->rev[S->n_rev++] = (rev_t){off, n, left, right}; /* a later entry for the same text wins */
}

static int byte_to_token(const vocab *v, unsigned char c) {
    char buf[8];
    snprintf(buf, sizeof buf, "<0x%02X>", c);
    int id = v_find(v, buf, 6);
    return id >= 0 ? id : v_find(v, (const char *)&c, 1);
}

static void resegment(session *S, int k, ids_t *out) {
    const char *t = S->s + S->sym[k].off;
    size_t n = S->sym[k].n;
    int id = v_find(S->v, t, n);
    if (id >= 0) {
        push_id(out, id);
        return;
    }
    for (size_t r = S->n_rev; r-- > 0;) {
        if (S->rev[r].n == n && !memcmp(S->s + S->rev[r].off, t, n)) {
            resegment(S, S->rev[r].left, out);
            resegment(S, S->rev[r].right, out);
            return;
        }
    }
    for (size_t j = 0; j < n; j++) push_id(out, byte_to_token(S->v, (unsigned char)t[j]));
}

/* llm_tokenizer_spm_session::tokenize on s[0..n) (spaces already escaped) */
static void spm_session(const vocab *v, const char *s, size_t n, ids_t *out) {
    session S = {.v = v, .s = s};
    S.sym = malloc((n ? n : 1) * sizeof *S.sym);
    if (!S.sym) abort();
    int n_sym = 0;
    for (size_t off = 0; off < n;) {
        unsigned char c = (unsigned char)s[off];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (len > n - off) len = n - off;
        S.sym[n_sym] = (sym_t){off, len, n_sym - 1, off + len == n ? -1 : n_sym + 1};
        off += len;
        n_sym++;
    }
    for (int i = 1; i < n_sym; i++) try_add_bigram(&S, i - 1, i);
    while (S.n_heap) {
        bigram_t b = heap_pop(&S);
        sym_t *l = &S.sym[b.left], *r = &S.sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* a side was merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) S.sym[r->next].prev = b.left;
        try_add_bigram(&S, l->prev, b.left);
        try_add_bigram(&S, b.left, l->next);
    }
    for (int k = n_sym ? 0 : -1; k != -1; k = S.sym[k].next) resegment(&S, k, out);
    free(S.sym);
    free(S.heap);
    free(S.rev);
}

typedef struct {
    int token; /* -1: raw text [off, off + n) */
    size_t off, n;
} frag_t;

/* llama_vocab::impl::tokenize for SPM with parse_special (HF splits every added token out of the
 * text, special or not) and add_space_prefix (the export writes none: llama.cpp's default, true). */
static void spm_tokenize(const vocab *v, const char *text, size_t len, ids_t *out) {
    size_t cap = 2 * len + 2, nf = 0;
    frag_t *f = malloc(cap * sizeof *f), *g = malloc(cap * sizeof *g);
    if (!f || !g) abort();
    if (len) f[nf++] = (frag_t){-1, 0, len};
    for (int k = 0; k < v->n_special; k++) { /* tokenizer_st_partition: longest token text first */
        int id = v->special[k];
        size_t tl = v->len[id], ng = 0;
        if (!tl) continue;
        for (size_t i = 0; i < nf; i++) {
            if (f[i].token >= 0) {
                g[ng++] = f[i];
                continue;
            }
            size_t pos = f[i].off, end = f[i].off + f[i].n;
            for (size_t at = pos; at + tl <= end;) {
                if (memcmp(text + at, v->text[id], tl)) {
                    at++;
                    continue;
                }
                if (at > pos) g[ng++] = (frag_t){-1, pos, at - pos};
                g[ng++] = (frag_t){id, 0, 0};
                pos = at = at + tl;
            }
            if (pos < end) g[ng++] = (frag_t){-1, pos, end - pos};
        }
        frag_t *t = f;
        f = g;
        g = t;
        nf = ng;
    }
    bool prev_special = true; /* a space is prefixed at the start and after each special token */
    char *buf = malloc(3 * len + 4);
    if (!buf) abort();
    for (size_t i = 0; i < nf; i++) {
        if (f[i].token >= 0) {
            push_id(out, f[i].token);
            prev_special = true;
            continue;
        }
        size_t n = 0;
        const char *src = text + f[i].off;
        if (prev_special) memcpy(buf + n, "\xE2\x96\x81", 3), n += 3; /* " " escaped as U+2581 */
        for (size_t j = 0; j < f[i].n; j++) {
            if (src[j] == ' ') memcpy(buf + n, "\xE2\x96\x81", 3), n += 3;
            else buf[n++] = src[j];
        }
        spm_session(v, buf, n, out);
        prev_special = false;
    }
    free(buf);
    free(f);
    free(g);
}

/* ---- the model the export reads ---------------------------------------------------------------- */

static int copy_in(const char *dir, const char *name) {
    char src[1100], dst[1100], *data;
    size_t len;
    snprintf(src, sizeof src, "%s/%s", TOK_DIR, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    if (m2u_read_file(src, &data, &len)) return -1;
    int rc = m2u_write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

/* config.json + model.safetensors of a LLaMA with the LLaMA-2 vocabulary, hidden size 8, one
 * layer, zero weights (only the vocabulary matters here), and the tokenizer files */
static int make_base(const char *dir) {
    static const char cfg[] =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_act\": \"silu\", "
        "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
        "\"num_key_value_heads\": 2, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-05, "
        "\"rope_theta\": 10000.0, \"vocab_size\": 32000, \"tie_word_embeddings\": false, \"bos_token_id\": 1, "
        "\"eos_token_id\": 2}";
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (m2u_write_file_atomic(p, cfg, sizeof cfg - 1)) return -1;
    static const char *const lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                       "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    static const int rows[7] = {8, 8, 8, 8, 16, 16, 8}, cols[7] = {8, 8, 8, 8, 8, 8, 16};
    char names[12][64];
    m2u_st_entry e[12];
    float *zeros = calloc(32000 * 8, sizeof(float));
    if (!zeros) return m2u_fail("out of memory");
    int k = 0;
    for (int j = 0; j < 7; j++, k++) {
        snprintf(names[k], sizeof names[k], "model.layers.0.%s.weight", lin[j]);
        e[k] = (m2u_st_entry){names[k], M2U_F32, 2, {rows[j], cols[j]}, zeros};
    }
    e[k++] = (m2u_st_entry){"model.layers.0.input_layernorm.weight", M2U_F32, 1, {8}, zeros};
    e[k++] = (m2u_st_entry){"model.layers.0.post_attention_layernorm.weight", M2U_F32, 1, {8}, zeros};
    e[k++] = (m2u_st_entry){"model.norm.weight", M2U_F32, 1, {8}, zeros};
    e[k++] = (m2u_st_entry){"model.embed_tokens.weight", M2U_F32, 2, {32000, 8}, zeros};
    e[k++] = (m2u_st_entry){"lm_head.weight", M2U_F32, 2, {32000, 8}, zeros};
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = m2u_st_write(p, e, k, NULL, NULL, 0);
    free(zeros);
    if (!rc) rc = copy_in(dir, "tokenizer.json");
    if (!rc) rc = copy_in(dir, "tokenizer_config.json");
    if (!rc) rc = copy_in(dir, "special_tokens_map.json");
    return rc;
}

/* ---- the cases ------------------------------------------------------------------------------------ */

static char *case_text(const cJSON *t, size_t *len) {
    if (cJSON_IsString(t)) {
        *len = strlen(t->valuestring);
        return strdup(t->valuestring);
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "hex");
    if (!cJSON_IsString(h)) return NULL;
    size_t n = strlen(h->valuestring) / 2;
    char *s = malloc(n + 1);
    for (size_t i = 0; s && i < n; i++) {
        unsigned x;
        sscanf(h->valuestring + 2 * i, "%2x", &x);
        s[i] = (char)x;
    }
    *len = n;
    return s;
}

/* Tokenize every case; return how many differ from HF's ids (show the first few when asked). */
static int run_cases(const vocab *v, const char *cases, int show, int *n_cases) {
    int bad = 0, n = 0;
    for (const char *line = cases; *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        cJSON *c = cJSON_ParseWithLength(line, ll);
        line += ll + (end ? 1 : 0);
        if (!c) continue;
        size_t len;
        char *text = case_text(cJSON_GetObjectItemCaseSensitive(c, "text"), &len);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        ids_t got = {0};
        if (text) spm_tokenize(v, text, len, &got);
        int same = text && cJSON_IsArray(want) && (size_t)cJSON_GetArraySize(want) == got.n;
        for (size_t i = 0; same && i < got.n; i++) same = cJSON_GetArrayItem(want, (int)i)->valueint == got.v[i];
        if (!same && bad++ < show) {
            fprintf(stderr, "  differs: \"%.60s\": HF", text ? text : "?");
            for (int i = 0; i < cJSON_GetArraySize(want) && i < 12; i++)
                fprintf(stderr, " %d", cJSON_GetArrayItem(want, i)->valueint);
            fprintf(stderr, " | GGUF");
            for (size_t i = 0; i < got.n && i < 12; i++) fprintf(stderr, " %d", got.v[i]);
            fputc('\n', stderr);
        }
        n++;
        free(got.v);
        free(text);
        cJSON_Delete(c);
    }
    *n_cases = n;
    return bad;
}

int main(void) {
    char tmp[] = "/tmp/m2u_gguf_vocab_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    char base[64], out[64];
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(out, sizeof out, "%s/model.gguf", tmp);
    CHECK(mkdir(base, 0755) == 0, "mkdir %s", base);
    CHECK(make_base(base) == 0, "base: %s", m2u_last_error());
    m2u_export_options o = {.base = base, .out = out, .dtype = "f32"};
    char *report = NULL;
    CHECK(m2u_export(M2U_EXPORT_GGUF, &o, &report) == 0, "export: %s", m2u_last_error());
    /* LLaMA-2's merges list every split of every piece: no warning */
    CHECK(report && !strstr(report, "warning"), "report: %s", report ? report : "(none)");
    free(report);

    gfile g;
    vocab v;
    CHECK(gguf_read(out, &g) == 0, "cannot parse %s", out);
    CHECK(g.ok && v_from_gguf(&g, &v) == 0, "no tokenizer.ggml.tokens/scores/token_type in %s", out);
    char *cases = NULL;
    size_t cases_len;
    CHECK(m2u_read_file(CASES, &cases, &cases_len) == 0, "%s", m2u_last_error());
    if (g.ok && v.n && cases) {
        CHECK(v.n == 32000, "%d tokens", v.n);
        int n = 0, bad = run_cases(&v, cases, 8, &n);
        printf("test_gguf_vocab: %d of %d strings give HF's ids through the exported GGUF vocabulary\n", n - bad, n);
        CHECK(n == 700, "%d cases", n);
        CHECK(bad == 0, "%d strings give other ids than HF", bad);
        /* the same vocabulary with the scores of the old export (-1000 for every piece) */
        for (int i = 0; i < v.n; i++) v.score[i] = -1000.0f;
        int n2 = 0, bad_flat = run_cases(&v, cases, 0, &n2);
        printf("test_gguf_vocab: with every score -1000, %d of %d strings give other ids than HF\n", bad_flat, n2);
        CHECK(bad_flat > 100, "flat scores should break many strings, broke %d", bad_flat);
    }
    if (g.ok) v_free(&v);
    free(g.buf);
    free(cases);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    return t_finish("test_gguf_vocab");
}
