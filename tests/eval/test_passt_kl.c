/* `m2u-eval kl --passt` against M2UGen's KL computed by hear21passt 0.0.26 + librosa 0.10.1
 * (tests/make_passt_fixtures.py: tiny random PaSST, two folders paired by stem, generated
 * files in FLAC at other rates, one unpaired file on each side):
 *   - the printed score and the report's score equal kl.json's within 1e-5 (per pair too);
 *   - unpaired files are named on stdout and in the report;
 *   - provenance carries the checkpoint's sha256;
 *   - the .npy mode still works; wrong options exit 2, a bad heads count exits 1. */
#include "fileio.h"
#include "m2u_error.h"
#include "passt_kl.h"
#include "sha256.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FIX M2U_FIXTURES "/passt"
#define WORK M2U_BUILD_DIR "/test_passt_kl_work"
#define TOL_KL 1e-5

static cJSON *load_json(const char *path) {
    char *buf = NULL;
    size_t n = 0;
    if (m2u_read_file(path, &buf, &n)) return NULL;
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    return j;
}

static char *slurp(const char *path) {
    char *buf = NULL;
    size_t n = 0;
    if (m2u_read_file(path, &buf, &n)) return NULL;
    char *s = realloc(buf, n + 1);
    if (!s) {
        free(buf);
        return NULL;
    }
    s[n] = 0;
    return s;
}

int main(void) {
    m2u_mkdir_p(WORK);
    cJSON *ref = load_json(FIX "/kl.json");
    CHECK(ref != NULL, "kl.json missing");
    if (!ref) return t_finish("test_passt_kl");
    double want = cJSON_GetObjectItemCaseSensitive(ref, "kl")->valuedouble;
    const cJSON *per_want = cJSON_GetObjectItemCaseSensitive(ref, "per_pair");

    /* the command */
    int rc = t_sh("'%s/m2u-eval' kl --passt '%s/passt_tiny.pt' --ref '%s/kl/ref' --gen '%s/kl/gen' --out '%s/kl.json' "
                "> '%s/out.txt' 2> '%s/err.txt'",
                M2U_BUILD_DIR, FIX, FIX, FIX, WORK, WORK, WORK);
    CHECK(rc == 0, "m2u-eval kl --passt exited %d", rc);
    char *out = slurp(WORK "/out.txt");
    double printed = -1;
    CHECK(out && sscanf(out, "KL (PaSST) = %lf over 3 pairs", &printed) == 1, "stdout: %s", out ? out : "(none)");
    printf("  KL: m2u %.10g, hear21passt %.10g, |diff| %.3g\n", printed, want, fabs(printed - want));
    CHECK(fabs(printed - want) <= TOL_KL, "printed KL %.10g vs %.10g", printed, want);
    CHECK(out && strstr(out, "only_ref.wav") && strstr(out, "only_gen.wav"), "unpaired files not named: %s",
          out ? out : "");
    char sha[65] = "";
    m2u_sha256_file(FIX "/passt_tiny.pt", sha);
    CHECK(out && sha[0] && strstr(out, sha), "sha256 not printed");
    free(out);

    cJSON *rep = load_json(WORK "/kl.json");
    CHECK(rep != NULL, "no report written");
    if (rep) {
        double k = cJSON_GetObjectItemCaseSensitive(rep, "kl")->valuedouble;
        CHECK(fabs(k - want) <= TOL_KL, "report KL %.10g vs %.10g", k, want);
        const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(rep, "pairs");
        CHECK(cJSON_GetArraySize(pairs) == 3, "%d pairs", cJSON_GetArraySize(pairs));
        for (int i = 0; i < cJSON_GetArraySize(pairs) && i < cJSON_GetArraySize(per_want); i++) {
            double a = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pairs, i), "kl")->valuedouble;
            double b = cJSON_GetArrayItem(per_want, i)->valuedouble;
            CHECK(fabs(a - b) <= TOL_KL, "pair %d: %.10g vs %.10g", i, a, b);
        }
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(rep, "unmatched_ref"),
                    *ug = cJSON_GetObjectItemCaseSensitive(rep, "unmatched_gen");
        CHECK(cJSON_GetArraySize(ur) == 1 && strstr(cJSON_GetArrayItem(ur, 0)->valuestring, "only_ref.wav"),
              "unmatched_ref");
        CHECK(cJSON_GetArraySize(ug) == 1 && strstr(cJSON_GetArrayItem(ug, 0)->valuestring, "only_gen.wav"),
              "unmatched_gen");
        const cJSON *prov = cJSON_GetObjectItemCaseSensitive(rep, "provenance");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(prov, "checkpoint_sha256");
        CHECK(cJSON_IsString(s) && !strcmp(s->valuestring, sha), "provenance sha256");
        CHECK(cJSON_GetObjectItemCaseSensitive(prov, "heads")->valueint == 12, "provenance heads");
        cJSON_Delete(rep);
    }

    /* the library call directly, with the heads given explicitly */
    m2u_passt_kl_opts o = {.checkpoint = FIX "/passt_tiny.pt", .passt = {.heads = 12}, .ref_dir = FIX "/kl/ref",
                           .gen_dir = FIX "/kl/gen"};
    cJSON *r2 = NULL;
    double k2 = -1;
    CHECK(m2u_passt_kl(&o, &r2, &k2) == 0 && fabs(k2 - want) <= TOL_KL, "library KL %.10g: %s", k2,
          m2u_last_error());
    cJSON_Delete(r2);
    /* a folder with no partners at all is an error */
    o.gen_dir = FIX "/audio";
    CHECK(m2u_passt_kl(&o, &r2, &k2) != 0 && strstr(m2u_last_error(), "partner"), "no pairs: %s", m2u_last_error());

    /* usage errors exit 2; a heads count that does not divide the embedding exits 1 */
    CHECK(t_sh("'%s/m2u-eval' kl --passt '%s/passt_tiny.pt' --ref '%s/kl/ref' 2>/dev/null >/dev/null", M2U_BUILD_DIR,
             FIX, FIX) == 2,
          "missing --gen must exit 2");
    CHECK(t_sh("'%s/m2u-eval' kl --passt x --ref a --gen b --bogus 1 2>/dev/null >/dev/null", M2U_BUILD_DIR) == 2,
          "unknown option must exit 2");
    CHECK(t_sh("'%s/m2u-eval' kl --passt x --ref a --gen b --passt-heads zero 2>/dev/null >/dev/null",
             M2U_BUILD_DIR) == 2,
          "bad --passt-heads must exit 2");
    CHECK(t_sh("'%s/m2u-eval' kl --passt '%s/passt_tiny.pt' --ref '%s/kl/ref' --gen '%s/kl/gen' --passt-heads 5 "
             "2> '%s/err.txt' >/dev/null",
             M2U_BUILD_DIR, FIX, FIX, FIX, WORK) == 1,
          "5 heads must fail");
    char *err = slurp(WORK "/err.txt");
    CHECK(err && strstr(err, "heads"), "stderr: %s", err ? err : "");
    free(err);

    /* the .npy mode is unchanged: logits rows written by hand, KL of a row with itself is 0 */
    static const char npy[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
    char hdr[128 + 8];
    memset(hdr, ' ', sizeof hdr);
    memcpy(hdr, npy, sizeof npy - 1);
    hdr[127] = '\n';
    float row[2] = {0.5f, -1.0f};
    memcpy(hdr + 128, row, 8);
    m2u_write_file_atomic(WORK "/a.npy", hdr, sizeof hdr);
    CHECK(t_sh("'%s/m2u-eval' kl --a '%s/a.npy' --b '%s/a.npy' --logits > '%s/npy.txt'", M2U_BUILD_DIR, WORK, WORK,
             WORK) == 0,
          "npy mode failed");
    char *v = slurp(WORK "/npy.txt");
    CHECK(v && fabs(atof(v)) < 1e-5, "npy KL of identical rows: %s", v ? v : "");
    free(v);
    cJSON_Delete(ref);
    return t_finish("test_passt_kl");
}
