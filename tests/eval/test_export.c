/* m2u-export against the reference writers (tests/make_export_fixtures.py):
 * the .pth writer byte for byte against torch.save, the PEFT adapter against
 * peft's save_pretrained, the merged checkpoint against peft's merge (1e-6),
 * GGUF model and LoRA against gguf-py files (parsed by a small reader here),
 * the M2UGen checkpoint byte for byte against torch.save. */
#include "export.h"
#include "fileio.h"
#include "gguf_test_reader.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"
#include "torch_ckpt.h"
#include "torch_pth_writer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX M2U_FIXTURES "/export"

static char g_out[1024];

static int bytes_equal_files(const char *a, const char *b, size_t *where) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    if (m2u_read_file(a, &x, &nx) || m2u_read_file(b, &y, &ny)) {
        free(x);
        free(y);
        return 0;
    }
    size_t i = 0;
    while (i < nx && i < ny && x[i] == y[i]) i++;
    *where = i;
    int eq = nx == ny && i == nx;
    free(x);
    free(y);
    return eq;
}

/* ---- .pth writer vs torch.save ----------------------------------------------------------------- */

static void test_pth_writer(void) {
    m2u_safetensors *st;
    CHECK(m2u_st_open(FIX "/torch_state.safetensors", &st) == 0, "%s", m2u_last_error());
    if (!st) return;
    const char *order = m2u_st_metadata(st, "order");
    CHECK(order != NULL, "order metadata");
    char *ord = strdup(order ? order : "");
    m2u_st_entry e[64];
    int n = 0;
    for (char *tok = strtok(ord, ","); tok && n < 64; tok = strtok(NULL, ",")) {
        const m2u_st_tensor *t = m2u_st_find(st, tok);
        CHECK(t != NULL, "tensor %s", tok);
        if (!t) continue;
        e[n].name = t->name;
        e[n].dtype = t->dtype;
        e[n].ndim = t->ndim;
        memcpy(e[n].shape, t->shape, sizeof e[n].shape);
        e[n].data = t->data;
        n++;
    }
    CHECK(n == 41, "41 tensors, got %d", n);
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(m2u_pth_serialize("torch_state", e, n, NULL, &bytes, &len) == 0, "%s", m2u_last_error());
    char *ref = NULL;
    size_t rlen = 0;
    CHECK(m2u_read_file(FIX "/torch_state.pth", &ref, &rlen) == 0, "read ref");
    size_t i = 0;
    while (bytes && ref && i < len && i < rlen && bytes[i] == (unsigned char)ref[i]) i++;
    CHECK(bytes && ref && len == rlen && i == len, "m2u .pth differs from torch.save at byte %zu (sizes %zu vs %zu)", i,
          len, rlen);
    /* written through the file API and read back by the restricted reader */
    char path[1100];
    snprintf(path, sizeof path, "%s/torch_state.pth", g_out);
    CHECK(m2u_pth_write(path, e, n, NULL) == 0, "%s", m2u_last_error());
    size_t where = 0;
    CHECK(bytes_equal_files(path, FIX "/torch_state.pth", &where), "file differs at %zu", where);
    m2u_torch_ckpt *ck = NULL;
    CHECK(m2u_torch_open(path, &ck) == 0, "%s", m2u_last_error());
    if (ck) {
        CHECK(m2u_torch_count(ck) == n, "count %d", m2u_torch_count(ck));
        for (int k = 0; k < n; k++) {
            const m2u_st_tensor *t = m2u_torch_find(ck, e[k].name);
            CHECK(t && t->dtype == e[k].dtype && t->ndim == e[k].ndim, "%s", e[k].name);
            size_t nb = t ? t->nbytes : 0;
            CHECK(t && (nb == 0 || memcmp(t->data, e[k].data, nb) == 0), "%s data", e[k].name);
        }
        m2u_torch_close(ck);
    }
    /* duplicate names are refused */
    m2u_st_entry d[2] = {e[0], e[0]};
    CHECK(m2u_pth_serialize("x", d, 2, NULL, &bytes, &len) != 0 && strstr(m2u_last_error(), "duplicate"), "dup");
    free(bytes);
    free(ref);
    free(ord);
    m2u_st_close(st);
}

/* ---- helpers over exports ------------------------------------------------------------------------ */

static int run_export(m2u_export_kind kind, const char *out, const char *dtype, uint64_t shard) {
    m2u_export_options o = {.base = FIX "/base", .run = FIX "/run", .out = out, .force = 1, .dtype = dtype,
                            .max_shard_bytes = shard, .base_name = "tests/fixtures/export/base"};
    char *rep = NULL;
    int rc = m2u_export(kind, &o, &rep);
    free(rep);
    return rc;
}

/* every tensor of ref equals the one in got (same name, shape), max rel err <= tol */
static void compare_st(const char *got_path, const char *ref_path, double tol, int expect_same_count) {
    m2u_safetensors *g = NULL, *r = NULL;
    CHECK(m2u_st_open(got_path, &g) == 0, "%s", m2u_last_error());
    CHECK(m2u_st_open(ref_path, &r) == 0, "%s", m2u_last_error());
    if (!g || !r) {
        m2u_st_close(g);
        m2u_st_close(r);
        return;
    }
    if (expect_same_count)
        CHECK(m2u_st_count(g) == m2u_st_count(r), "%s: %d tensors, reference %d", got_path, m2u_st_count(g),
              m2u_st_count(r));
    double worst = 0;
    for (int i = 0; i < m2u_st_count(r); i++) {
        const m2u_st_tensor *rt = m2u_st_at(r, i), *gt = m2u_st_find(g, rt->name);
        CHECK(gt != NULL, "%s: missing %s", got_path, rt->name);
        if (!gt) continue;
        int same_shape = gt->ndim == rt->ndim;
        for (int d = 0; same_shape && d < rt->ndim; d++) same_shape = gt->shape[d] == rt->shape[d];
        CHECK(same_shape, "%s: shape of %s", got_path, rt->name);
        if (!same_shape) continue;
        float *a = malloc((size_t)rt->numel * 4 + 4), *b = malloc((size_t)rt->numel * 4 + 4);
        m2u_st_read_f32(gt, a, (size_t)gt->numel);
        m2u_st_read_f32(rt, b, (size_t)rt->numel);
        double e = t_max_rel_err(a, b, (size_t)rt->numel);
        worst = t_worse(worst, e);
        CHECK(e <= tol, "%s: %s max rel err %g > %g", got_path, rt->name, e, tol);
        free(a);
        free(b);
    }
    printf("  %s vs %s: %d tensors, worst rel err %.3g\n", strrchr(got_path, '/') + 1, strrchr(ref_path, '/') + 1,
           m2u_st_count(r), worst);
    m2u_st_close(g);
    m2u_st_close(r);
}

static cJSON *load_json(const char *path) {
    char *t = NULL;
    if (m2u_read_file(path, &t, NULL)) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static void test_peft(void) {
    char out[1100], p[1200];
    snprintf(out, sizeof out, "%s/peft", g_out);
    CHECK(run_export(M2U_EXPORT_PEFT, out, NULL, 0) == 0, "%s", m2u_last_error());
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", out);
    compare_st(p, FIX "/reference/peft/adapter_model.safetensors", 0.0, 1);
    snprintf(p, sizeof p, "%s/adapter_config.json", out);
    cJSON *g = load_json(p), *r = load_json(FIX "/reference/peft/adapter_config.json");
    CHECK(g && r, "configs");
    if (g && r) {
        const cJSON *e;
        cJSON_ArrayForEach(e, r) { /* every key peft writes, same value (target_modules as a set) */
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(g, e->string);
            CHECK(x != NULL, "adapter_config.json lacks %s", e->string);
            if (!x) continue;
            if (!strcmp(e->string, "target_modules")) {
                CHECK(cJSON_GetArraySize(x) == cJSON_GetArraySize(e), "target_modules size");
                const cJSON *t;
                cJSON_ArrayForEach(t, e) {
                    int found = 0;
                    const cJSON *u;
                    cJSON_ArrayForEach(u, x) found |= !strcmp(u->valuestring, t->valuestring);
                    CHECK(found, "target %s", t->valuestring);
                }
            } else {
                CHECK(cJSON_Compare(x, e, 1), "adapter_config.json %s differs", e->string);
            }
        }
        CHECK(cJSON_GetArraySize(g) == cJSON_GetArraySize(r), "key count %d vs %d", cJSON_GetArraySize(g),
              cJSON_GetArraySize(r));
    }
    cJSON_Delete(g);
    cJSON_Delete(r);
}

static void test_merged(void) {
    char out[1100], p[1200];
    snprintf(out, sizeof out, "%s/merged", g_out);
    CHECK(run_export(M2U_EXPORT_MERGED, out, "auto", 60000) == 0, "%s", m2u_last_error());
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", out);
    CHECK(m2u_file_exists(p), "sharded: %s", p);
    compare_st(out, FIX "/reference/merged.safetensors", 1e-6, 1);
    snprintf(p, sizeof p, "%s/config.json", out);
    cJSON *c = load_json(p);
    CHECK(c && cJSON_GetObjectItem(c, "vocab_size")->valueint == 308, "vocab_size");
    CHECK(c && cJSON_IsTrue(cJSON_GetObjectItem(c, "attention_bias")) && cJSON_IsTrue(cJSON_GetObjectItem(c, "mlp_bias")),
          "bias flags");
    cJSON_Delete(c);
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    cJSON *t = load_json(p);
    const cJSON *added = t ? cJSON_GetObjectItem(t, "added_tokens") : NULL;
    CHECK(cJSON_GetArraySize(added) == 11, "added tokens %d", cJSON_GetArraySize(added));
    const cJSON *last = cJSON_GetArrayItem(added, 10);
    CHECK(last && cJSON_GetObjectItem(last, "id")->valueint == 307 &&
              !strcmp(cJSON_GetObjectItem(last, "content")->valuestring, "[AUD7]"),
          "[AUD7] = 307");
    cJSON_Delete(t);
    /* one shard without --max-shard-size */
    CHECK(run_export(M2U_EXPORT_MERGED, out, "auto", 0) == 0, "%s", m2u_last_error());
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    compare_st(p, FIX "/reference/merged.safetensors", 1e-6, 1);
}

/* ---- GGUF: the small reader in gguf_test_reader.h ---- */

static void compare_gguf(const char *got_path, const char *ref_path) {
    gfile g, r;
    CHECK(gguf_read(got_path, &g) == 0, "cannot parse %s", got_path);
    CHECK(gguf_read(ref_path, &r) == 0, "cannot parse %s", ref_path);
    if (g.ok && r.ok) {
        for (int i = 0; i < r.n_kv; i++) {
            if (!strcmp(r.kv[i].key, "general.name")) continue;
            const gkv *x = gguf_kv(&g, r.kv[i].key);
            CHECK(x != NULL, "%s lacks key %s", got_path, r.kv[i].key);
            CHECK(x && x->type == r.kv[i].type && x->len == r.kv[i].len && !memcmp(x->val, r.kv[i].val, x->len),
                  "%s: key %s differs (type %u vs %u)", got_path, r.kv[i].key, x ? x->type : 99, r.kv[i].type);
        }
        CHECK(g.n_kv == r.n_kv, "%d keys vs %d", g.n_kv, r.n_kv);
        CHECK(g.n_t == r.n_t, "%d tensors vs %d", g.n_t, r.n_t);
        /* ggml's reader: offsets are the packed running sum, 32-aligned; the file ends after the last pad */
        uint64_t expect = 0;
        for (int i = 0; i < g.n_t; i++) {
            CHECK(g.t[i].off == expect, "%s: offset of %s", got_path, g.t[i].name);
            expect = (g.t[i].off + gti_bytes(&g.t[i]) + 31) / 32 * 32;
        }
        CHECK(g.data + expect == g.n, "%s: size %zu, expected %zu", got_path, g.n, (size_t)(g.data + expect));
        double worst = 0;
        for (int i = 0; i < r.n_t; i++) {
            const gti *rt = &r.t[i], *gt = gguf_t(&g, rt->name);
            CHECK(gt != NULL, "%s lacks tensor %s", got_path, rt->name);
            if (!gt) continue;
            CHECK(gt->nd == rt->nd && gt->type == rt->type && !memcmp(gt->ne, rt->ne, sizeof gt->ne), "%s: info of %s",
                  got_path, rt->name);
            if (gt->type != 0 || rt->type != 0 || gti_bytes(gt) != gti_bytes(rt)) continue;
            size_t n = gti_bytes(rt) / 4;
            float *a = malloc(n * 4), *b = malloc(n * 4);
            memcpy(a, g.buf + g.data + gt->off, n * 4);
            memcpy(b, r.buf + r.data + rt->off, n * 4);
            double e = t_max_rel_err(a, b, n);
            worst = t_worse(worst, e);
            CHECK(e <= 1e-6, "%s: %s rel err %g", got_path, rt->name, e);
            free(a);
            free(b);
        }
        printf("  %s: %d keys, %d tensors, worst rel err %.3g\n", strrchr(got_path, '/') + 1, r.n_kv, r.n_t, worst);
    }
    free(g.buf);
    free(r.buf);
}

static void test_gguf(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/model_f32.gguf", g_out);
    CHECK(run_export(M2U_EXPORT_GGUF, out, "f32", 0) == 0, "%s", m2u_last_error());
    compare_gguf(out, FIX "/reference/model_f32.gguf");
    snprintf(out, sizeof out, "%s/lora_f32.gguf", g_out);
    CHECK(run_export(M2U_EXPORT_GGUF_LORA, out, NULL, 0) == 0, "%s", m2u_last_error());
    compare_gguf(out, FIX "/reference/lora_f32.gguf");
    /* f16: 2-D weights F16, 1-D tensors F32 */
    snprintf(out, sizeof out, "%s/model_f16.gguf", g_out);
    CHECK(run_export(M2U_EXPORT_GGUF, out, NULL, 0) == 0, "%s", m2u_last_error());
    gfile g;
    CHECK(gguf_read(out, &g) == 0, "parse f16");
    if (g.ok) {
        const gti *q = gguf_t(&g, "blk.0.attn_q.weight"), *n = gguf_t(&g, "blk.0.attn_norm.weight");
        CHECK(q && q->type == 1 && n && n->type == 0, "f16 types");
    }
    free(g.buf);
}

static void test_m2ugen(void) {
    char out[1100], p[1200];
    snprintf(out, sizeof out, "%s/m2ugen", g_out);
    CHECK(run_export(M2U_EXPORT_M2UGEN, out, NULL, 0) == 0, "%s", m2u_last_error());
    snprintf(p, sizeof p, "%s/checkpoint.pth", out);
    size_t where = 0;
    CHECK(bytes_equal_files(p, FIX "/reference/m2ugen/checkpoint.pth", &where),
          "checkpoint.pth differs from torch.save's at byte %zu", where);
    m2u_torch_ckpt *ck = NULL;
    CHECK(m2u_torch_open(p, &ck) == 0, "%s", m2u_last_error());
    if (ck) {
        const m2u_st_tensor *t = m2u_torch_find(ck, "model.llama.layers.0.attention.gate");
        CHECK(t && t->ndim == 4 && t->shape[1] == 4, "gate [1,4,1,1]");
        m2u_torch_close(ck);
    }
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", out);
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(p, &st) == 0, "%s", m2u_last_error());
    if (st) {
        const m2u_st_tensor *t = m2u_st_find(st, "output_projector.query_embs");
        CHECK(t && t->ndim == 3 && t->shape[0] == 1 && t->shape[1] == 4 && t->shape[2] == 8, "query_embs [1,4,8]");
        t = m2u_st_find(st, "mu_mert_agg.weight");
        CHECK(t && t->ndim == 3 && t->shape[1] == 5 && t->shape[2] == 1, "agg [1,5,1]");
        m2u_st_close(st);
    }
}

static void test_refusals(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/peft", g_out); /* exists from test_peft */
    m2u_export_options o = {.base = FIX "/base", .run = FIX "/run", .out = out};
    CHECK(m2u_export(M2U_EXPORT_PEFT, &o, NULL) != 0 && strstr(m2u_last_error(), "--force"), "overwrite refused: %s",
          m2u_last_error());
    o.force = 1;
    o.run = FIX "/base"; /* no trainables there */
    CHECK(m2u_export(M2U_EXPORT_PEFT, &o, NULL) != 0 && strstr(m2u_last_error(), "base"), "bad run: %s",
          m2u_last_error());
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", g_out);
    m2u_write_file_atomic(bad, "\x10\0\0\0\0\0\0\0{\"a\":1}        ", 24);
    o.run = bad;
    CHECK(m2u_export(M2U_EXPORT_PEFT, &o, NULL) != 0 && strstr(m2u_last_error(), "bad.safetensors"),
          "malformed trainables named: %s", m2u_last_error());
    o.run = FIX "/run";
    o.dtype = "int4";
    snprintf(out, sizeof out, "%s/x.gguf", g_out);
    o.out = out;
    CHECK(m2u_export(M2U_EXPORT_GGUF, &o, NULL) != 0 && strstr(m2u_last_error(), "int4"), "dtype: %s", m2u_last_error());
    CHECK(!m2u_file_exists(out), "nothing left behind");
}

int main(void) {
    snprintf(g_out, sizeof g_out, "%s/test_export_out", M2U_BUILD_DIR);
    m2u_mkdir_p(g_out);
    test_pth_writer();
    test_peft();
    test_merged();
    test_gguf();
    test_m2ugen();
    test_refusals();
    return t_finish("test_export");
}
