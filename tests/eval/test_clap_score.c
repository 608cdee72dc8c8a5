/* m2u-eval clap against transformers' ClapModel on the fixtures of tests/make_clap_fixtures.py:
 * the per-pair cosines and their mean through the command (decoded with FFmpeg from the
 * 48 kHz 16-bit WAVs, so no resampling) must equal ClapModel's to 1e-5 absolute; the
 * report carries the weights' sha256; a TSV pairs file gives the same; a clip that does
 * not decode is reported and left out of the mean, and the command then exits 1. */
#include "clap_score.h"
#include "fileio.h"
#include "m2u_error.h"
#include "sha256.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLAP_DIR M2U_FIXTURES "/clap"
#define TOL 1e-5

static char g_out[1 << 16];

static int run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(g_out, 1, sizeof g_out - 1, p);
    g_out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static cJSON *load_json(const char *path) {
    char *t = NULL;
    size_t n = 0;
    if (m2u_read_file(path, &t, &n)) return NULL;
    cJSON *j = cJSON_ParseWithLength(t, n);
    free(t);
    return j;
}

static double g_worst;

/* The report at path against expected.json: every item's cosine and the mean. */
static void check_report(const char *path, const cJSON *exp, const char *label) {
    cJSON *r = load_json(path);
    CHECK(r != NULL, "%s: report %s unreadable", label, path);
    if (!r) return;
    const cJSON *cos = cJSON_GetObjectItem(exp, "cosine"), *items = cJSON_GetObjectItem(r, "items");
    int n = cJSON_GetArraySize(cos);
    CHECK(cJSON_GetArraySize(items) == n, "%s: %d items, want %d", label, cJSON_GetArraySize(items), n);
    for (int i = 0; i < n && i < cJSON_GetArraySize(items); i++) {
        double want = cJSON_GetArrayItem(cos, i)->valuedouble;
        const cJSON *got = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "cosine");
        double d = cJSON_IsNumber(got) ? fabs(got->valuedouble - want) : INFINITY;
        g_worst = t_worse(g_worst, d);
        CHECK(d < TOL, "%s: item %d cosine %.9g, ClapModel %.9g", label, i,
              cJSON_IsNumber(got) ? got->valuedouble : NAN, want);
    }
    const cJSON *mean = cJSON_GetObjectItem(r, "mean_cosine");
    double want = cJSON_GetObjectItem(exp, "mean_cosine")->valuedouble;
    CHECK(cJSON_IsNumber(mean) && fabs(mean->valuedouble - want) < TOL, "%s: mean %.9g, ClapModel %.9g", label,
          cJSON_IsNumber(mean) ? mean->valuedouble : NAN, want);
    char hex[65];
    const cJSON *sha = cJSON_GetObjectItem(r, "weights_sha256");
    CHECK(m2u_sha256_file(CLAP_DIR "/model/model.safetensors", hex) == 0 && cJSON_IsString(sha) &&
              !strcmp(sha->valuestring, hex),
          "%s: weights_sha256", label);
    cJSON_Delete(r);
}

int main(void) {
    cJSON *exp = load_json(CLAP_DIR "/expected.json");
    CHECK(exp != NULL, "expected.json");
    if (!exp) return t_finish("test_clap_score");
    char tmp[64] = "/tmp/m2u_test_clap_score.XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char cmd[2048], rep[256], tsv[256], bad[256];
    snprintf(rep, sizeof rep, "%s/clap.json", tmp);
    snprintf(tsv, sizeof tsv, "%s/pairs.tsv", tmp);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);

    /* the command on the JSON-lines pairs */
    snprintf(cmd, sizeof cmd,
             "%s/m2u-eval clap --clap %s/model --audio %s/audio --captions %s/pairs.jsonl --out %s 2>&1",
             M2U_BUILD_DIR, CLAP_DIR, CLAP_DIR, CLAP_DIR, rep);
    int rc = run(cmd);
    CHECK(rc == 0 && strstr(g_out, "CLAP "), "m2u-eval clap: rc %d:\n%s", rc, g_out);
    check_report(rep, exp, "jsonl");

    /* the same pairs as TSV, through the library */
    const cJSON *caps = cJSON_GetObjectItem(exp, "captions");
    static const char *const files[3] = {"short.wav", "exact.wav", "long.wav"};
    char text[2048] = "";
    for (int i = 0; i < 3; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\t%s\r\n\n", files[i],
                 cJSON_GetArrayItem(caps, i)->valuestring);
    CHECK(m2u_write_file_atomic(tsv, text, strlen(text)) == 0, "write %s", tsv);
    m2u_clap_scores s;
    CHECK(m2u_clap_score(CLAP_DIR "/model", CLAP_DIR "/audio", tsv, &s) == 0, "tsv: %s", m2u_last_error());
    if (s.n == 3) {
        CHECK(m2u_clap_scores_write(rep, CLAP_DIR "/model", tsv, &s) == 0, "%s", m2u_last_error());
        check_report(rep, exp, "tsv");
        m2u_clap_scores_free(&s);
    }

    /* a clip that does not decode: named, left out of the mean, exit status 1 */
    snprintf(text, sizeof text, "{\"audio\": \"exact.wav\", \"caption\": \"%s\"}\n{\"audio\": \"missing.wav\", "
                                "\"caption\": \"x\"}\n",
             cJSON_GetArrayItem(caps, 1)->valuestring);
    CHECK(m2u_write_file_atomic(bad, text, strlen(text)) == 0, "write %s", bad);
    snprintf(cmd, sizeof cmd, "%s/m2u-eval clap --clap %s/model --audio %s/audio --captions %s --out %s 2>&1",
             M2U_BUILD_DIR, CLAP_DIR, CLAP_DIR, bad, rep);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(g_out, "missing.wav") && strstr(g_out, "1 of 2 pairs"), "missing clip: rc %d:\n%s", rc,
          g_out);
    cJSON *r = load_json(rep);
    const cJSON *mean = r ? cJSON_GetObjectItem(r, "mean_cosine") : NULL;
    double want = cJSON_GetArrayItem(cJSON_GetObjectItem(exp, "cosine"), 1)->valuedouble;
    CHECK(cJSON_IsNumber(mean) && fabs(mean->valuedouble - want) < TOL, "mean over the decoded pair only");
    cJSON_Delete(r);

    /* malformed pairs files name the line */
    snprintf(text, sizeof text, "{\"audio\": \"exact.wav\"}\n");
    CHECK(m2u_write_file_atomic(bad, text, strlen(text)) == 0, "write %s", bad);
    CHECK(m2u_clap_score(CLAP_DIR "/model", CLAP_DIR "/audio", bad, &s) == -1 && strstr(m2u_last_error(), ":1:"),
          "pair without caption: %s", m2u_last_error());
    snprintf(text, sizeof text, "exact.wav caption without a tab\n");
    CHECK(m2u_write_file_atomic(tsv, text, strlen(text)) == 0, "write %s", tsv);
    CHECK(m2u_clap_score(CLAP_DIR "/model", CLAP_DIR "/audio", tsv, &s) == -1 && strstr(m2u_last_error(), "TAB"),
          "TSV line without a tab: %s", m2u_last_error());

    printf("worst |cosine - ClapModel| %.3g\n", g_worst);
    unlink(rep);
    unlink(tsv);
    unlink(bad);
    rmdir(tmp);
    cJSON_Delete(exp);
    return t_finish("test_clap_score");
}
