/* The m2u-llm command as a user runs it: logits written as .npy for a HF
 * checkpoint + PEFT adapter equal transformers' (the fixture's reference);
 * bad input exits non-zero with a message naming the file. */
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Minimal .npy reader for the float32 C-order files m2u writes. */
static float *read_npy(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre + 1, "NUMPY", 5) != 0) {
        fclose(f);
        return NULL;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    char *h = calloc(hlen + 1, 1);
    if (fread(h, 1, hlen, f) != hlen || !strstr(h, "'<f4'")) {
        free(h);
        fclose(f);
        return NULL;
    }
    free(h);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, (long)(10 + hlen), SEEK_SET);
    *n = (size_t)(end - 10 - (long)hlen) / 4;
    float *v = malloc(*n * 4 + 4);
    if (fread(v, 4, *n, f) != *n) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

/* m2u-llm logits with --adapter adapter_dir over the export base against
   reference/peft_aud_logits (peft + transformers on tests/fixtures/export/reference/peft). */
static void logits_vs_peft(const char *adapter_dir, const char *npy, const char *what) {
    char cmd[4096], out[8192], path[1200], list[512] = "";
    snprintf(path, sizeof path, "%s/export/reference/peft_aud_logits.safetensors", M2U_FIXTURES);
    m2u_safetensors *ref;
    CHECK(m2u_st_open(path, &ref) == 0, "%s", m2u_last_error());
    if (!ref) return;
    const m2u_st_tensor *ids = m2u_st_find(ref, "input_ids"), *logits = m2u_st_find(ref, "logits");
    int T = (int)ids->shape[1], V = (int)logits->shape[2];
    for (int t = 0; t < T; t++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + 8 * t, 8);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", t ? "," : "", (long long)v);
    }
    snprintf(cmd, sizeof cmd, "%s/m2u-llm logits --model %s/export/base --adapter %s --ids %s --out %s 2>&1",
             M2U_BUILD_DIR, M2U_FIXTURES, adapter_dir, list, npy);
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "%s: m2u-llm logits failed (%d): %s", what, rc, out);
    size_t n = 0;
    float *got = rc == 0 ? read_npy(npy, &n) : NULL;
    CHECK(!rc == !!got && (!got || n == (size_t)T * V), "%s: npy has %zu values, want %d x %d", what, n, T, V);
    if (got && n == (size_t)T * V) {
        float *want = malloc((size_t)logits->numel * sizeof(float));
        m2u_st_read_f32(logits, want, (size_t)logits->numel);
        double e = t_max_rel_err(got, want, n);
        printf("%s: logits vs peft, max rel err %.2e (%d tokens incl. 8 [AUD], vocab %d)\n", what, e, T, V);
        CHECK(e < 1e-5, "%s: logits differ from peft's: %.3g", what, e);
        free(want);
    }
    free(got);
    m2u_st_close(ref);
}

static void check_peft_aud(const char *npy) {
    char dir[1024], cmd[4096], out[8192];
    snprintf(dir, sizeof dir, "%s/export/reference/peft", M2U_FIXTURES);
    logits_vs_peft(dir, npy, "peft's save_pretrained");
    /* m2u's own export of the run those tensors came from (bit-exact with it, test_export) */
    snprintf(dir, sizeof dir, "%s/test_m2u_llm_peft", M2U_BUILD_DIR);
    snprintf(cmd, sizeof cmd, "%s/m2u-export peft --base %s/export/base --run %s/export/run --out %s --force 2>&1",
             M2U_BUILD_DIR, M2U_FIXTURES, M2U_FIXTURES, dir);
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "m2u-export peft failed (%d): %s", rc, out);
    if (rc) return;
    logits_vs_peft(dir, npy, "m2u-export peft");
    /* its tokenizer (with the added tokens) is the one m2u-llm uses */
    snprintf(cmd, sizeof cmd, "%s/m2u-llm tokenize --model %s/export/base --adapter %s --no-bos \"[AUD0] [AUD7]\" 2>&1",
             M2U_BUILD_DIR, M2U_FIXTURES, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "[300, 307]"), "[AUD] tokens through the adapter's tokenizer: rc %d, %s", rc, out);
}

int main(void) {
    char cmd[4096], out[8192], dir[1024], npy[1024];
    snprintf(dir, sizeof dir, "%s/llama/mqa_bf16_sharded", M2U_FIXTURES);
    snprintf(npy, sizeof npy, "%s/test_m2u_llm_logits.npy", M2U_BUILD_DIR);

    /* the reference's first sequence, as a comma list */
    char ref_path[1200];
    snprintf(ref_path, sizeof ref_path, "%s/reference.safetensors", dir);
    m2u_safetensors *ref;
    CHECK(m2u_st_open(ref_path, &ref) == 0, "%s", m2u_last_error());
    const m2u_st_tensor *ids = m2u_st_find(ref, "input_ids");
    const m2u_st_tensor *logits = m2u_st_find(ref, "logits");
    int T = (int)ids->shape[1], V = (int)logits->shape[2];
    char list[512] = "";
    for (int t = 0; t < T; t++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + 8 * t, 8);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", t ? "," : "", (long long)v);
    }
    snprintf(cmd, sizeof cmd, "%s/m2u-llm logits --model %s --adapter %s/adapter --ids %s --out %s 2>&1", M2U_BUILD_DIR,
             dir, dir, list, npy);
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "m2u-llm logits failed (%d): %s", rc, out);
    size_t n = 0;
    float *got = read_npy(npy, &n);
    CHECK(got && n == (size_t)T * V, "npy has %zu values, want %d", n, T * V);
    if (got && n == (size_t)T * V) {
        float *want = malloc((size_t)logits->numel * sizeof(float));
        CHECK(m2u_st_read_f32(logits, want, (size_t)logits->numel) == 0, "%s", m2u_last_error());
        /* the first T*V values are sequence 0 */
        double e = t_max_rel_err(got, want, n);
        CHECK(e < 1e-5, "logits from the command differ from transformers: %.3g", e);
        free(want);
    }
    free(got);
    m2u_st_close(ref);

    /* a PEFT adapter over a grown vocabulary (8 [AUD] tokens: the whole embed_tokens and lm_head
       [308, 32] saved beside the LoRA, as peft saves them): peft's own save of it, then
       m2u-export's PEFT export of the fixture run, both against peft's logits */
    check_peft_aud(npy);

    /* refusals: exit 1, message names the path */
    snprintf(cmd, sizeof cmd, "%s/m2u-llm logits --model /nonexistent/ckpt --ids 1,2 --out %s 2>&1", M2U_BUILD_DIR, npy);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "/nonexistent/ckpt"), "bad model dir: rc %d, %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s/m2u-llm logits --model %s --ids 1,99999 --out %s 2>&1", M2U_BUILD_DIR, dir, npy);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "vocabulary"), "out-of-range id: rc %d, %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s/m2u-llm generate --model %s --bogus 2>&1", M2U_BUILD_DIR, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--bogus") && strstr(out, "usage: m2u-llm generate"), "unknown option: rc %d, %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s/m2u-llm --help", M2U_BUILD_DIR);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "examples:"), "--help: rc %d", rc);
    return t_finish("test_m2u_llm");
}
