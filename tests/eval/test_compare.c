/* m2u-eval compare: flattening of m2u reports, published tables, provenance flags,
 * the files written, and every refusal (library and command line). */
#include "compare.h"
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[] = "/tmp/m2u_test_compare_XXXXXX";

static void put(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

/* A run report as eval_report.c and music_report.c write them (trimmed). */
static const char *k_run_a =
    "{\"format\": \"m2u-eval-report\", \"version\": 1, \"run\": \"runs/a\","
    " \"training\": {\"steps_logged\": 40, \"held_out\": [{\"step\": 0, \"eval_loss\": 3}]},"
    " \"captions\": {\"conventions\": \"pycocoevalcap 1.2, METEOR exact+stem\","
    "   \"all\": {\"n\": 20, \"bleu_4\": 0.25, \"meteor\": 0.31}},"
    " \"attributes\": {\"key\": {\"accuracy\": 0.5, \"confusion\": {\"counts\": [[1, 2]]}}},"
    " \"music\": {\"fad\": {\"measured\": true, \"value\": 4.5, \"embedding\": \"vggish\", \"dim\": 128,"
    "   \"checkpoint_sha256\": \"aaaa\"}, \"kl\": {\"measured\": false, \"value\": null, \"reason\": \"no PaSST\"},"
    "   \"items\": [{\"id\": \"x\", \"duration_s\": 10}]}}";
static const char *k_run_b =
    "{\"format\": \"m2u-eval-report\", \"version\": 1, \"run\": \"runs/b\","
    " \"captions\": {\"conventions\": \"pycocoevalcap 1.2, METEOR full\","
    "   \"all\": {\"n\": 20, \"bleu_4\": 0.27, \"meteor\": 0.33}},"
    " \"music\": {\"fad\": {\"measured\": true, \"value\": 3.25, \"embedding\": \"vggish\", \"dim\": 128,"
    "   \"checkpoint_sha256\": \"aaaa\"}}}";
static const char *k_table =
    "{\"format\": \"m2u-published-table\", \"name\": \"M2UGen <paper>\", \"source\": \"arXiv:2311.11255\","
    " \"metrics\": {\"music.fad.value\": 1.41, \"music.clap_score.value\": 0.26, \"captions.all.meteor\": null},"
    " \"notes\": {\"music.fad.value\": \"VGGish via fad_pytorch\"}}";

static int run_tool(const char *args, char *err, size_t n) {
    char cmd[2048], ep[600];
    snprintf(ep, sizeof ep, "%s/stderr.txt", g_dir);
    snprintf(cmd, sizeof cmd, "cd %s && %s/m2u-eval compare %s >/dev/null 2>%s", g_dir, M2U_BUILD_DIR, args, ep);
    int st = system(cmd);
    err[0] = 0;
    FILE *f = fopen(ep, "r");
    if (f) {
        size_t k = fread(err, 1, n - 1, f);
        err[k] = 0;
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_library(void) {
    m2u_compare c = {0};
    CHECK(m2u_compare_add_json(&c, k_run_a, strlen(k_run_a), "a.json", "A") == 0, "%s", m2u_last_error());
    CHECK(m2u_compare_add_json(&c, k_run_b, strlen(k_run_b), "b.json", NULL) == 0, "%s", m2u_last_error());
    CHECK(m2u_compare_add_json(&c, k_table, strlen(k_table), "t.json", NULL) == 0, "%s", m2u_last_error());
    CHECK(c.n_src == 3, "3 sources, got %zu", c.n_src);
    if (c.n_src != 3) {
        m2u_compare_free(&c);
        return;
    }
    CHECK(!strcmp(c.src[0].name, "A") && !strcmp(c.src[1].name, "b.json") && !strcmp(c.src[2].name, "M2UGen <paper>"),
          "names: %s / %s / %s", c.src[0].name, c.src[1].name, c.src[2].name);
    double v;
    CHECK(m2u_compare_get(&c, 0, "music.fad", &v) == 1 && v == 4.5, "a's FAD is the object's value");
    CHECK(m2u_compare_get(&c, 0, "music.kl", &v) == 1 && isnan(v), "a's KL: present, not measured");
    CHECK(m2u_compare_get(&c, 0, "captions.all.meteor", &v) == 1 && v == 0.31, "a's METEOR");
    CHECK(m2u_compare_get(&c, 0, "attributes.key.accuracy", &v) == 1 && v == 0.5, "a's key accuracy");
    CHECK(m2u_compare_get(&c, 0, "music.fad.dim", &v) == 0, "a count beside a value is provenance, not a row");
    CHECK(m2u_compare_get(&c, 0, "training.held_out.step", &v) == 0, "arrays are left out");
    CHECK(m2u_compare_get(&c, 0, "music.items.duration_s", &v) == 0, "per-item lists are left out");
    CHECK(m2u_compare_get(&c, 2, "music.fad.value", &v) == 1 && v == 1.41, "the table's FAD");
    CHECK(m2u_compare_get(&c, 2, "captions.all.meteor", &v) == 1 && isnan(v), "a null in a table");
    int conv = 0, emb = 0, hash = 0;
    for (size_t i = 0; i < c.src[0].n_notes; i++) {
        const m2u_cmp_note *n = &c.src[0].notes[i];
        conv += !strcmp(n->path, "captions") && !strcmp(n->key, "conventions");
        emb += !strcmp(n->path, "music.fad") && !strcmp(n->key, "embedding") && !strcmp(n->text, "vggish");
        hash += !strcmp(n->path, "music.fad") && !strcmp(n->key, "checkpoint_sha256");
    }
    CHECK(conv == 1 && emb == 1 && hash == 1, "provenance kept: conventions %d embedding %d hash %d", conv, emb, hash);
    const char **rows = NULL;
    size_t nr = 0;
    CHECK(m2u_compare_rows(&c, &rows, &nr) == 0, "rows");
    int fad = 0, fadv = 0;
    for (size_t i = 0; i < nr; i++) fad += !strcmp(rows[i], "music.fad"), fadv += !strcmp(rows[i], "music.fad.value");
    CHECK(fad == 1 && fadv == 1, "each path once (fad %d, fad.value %d)", fad, fadv);
    free(rows);

    char out[600], p[700];
    snprintf(out, sizeof out, "%s/lib_out", g_dir);
    CHECK(m2u_compare_write(&c, out) == 0, "write: %s", m2u_last_error());
    char *html = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/compare.html", out);
    CHECK(m2u_read_file(p, &html, &len) == 0, "compare.html");
    if (html) {
        CHECK(strstr(html, "M2UGen &lt;paper&gt;") != NULL, "names are HTML-escaped");
        CHECK(strstr(html, "<script") == NULL, "no script");
        /* captions.all.meteor of b is made with other conventions than a's: flagged */
        const char *row = strstr(html, "<code>captions.all.meteor</code>");
        const char *end = row ? strstr(row, "</tr>") : NULL;
        const char *sup = row ? strstr(row, "<sup") : NULL;
        CHECK(row && sup && sup < end, "a number made under other conventions is flagged");
        const char *frow = strstr(html, "<code>music.fad</code>");
        const char *fend = frow ? strstr(frow, "</tr>") : NULL;
        const char *fsup = frow ? strstr(frow, "<sup") : NULL;
        CHECK(frow && (!fsup || fsup > fend), "same embedder and checkpoint: not flagged");
        free(html);
    }
    char *js = NULL;
    snprintf(p, sizeof p, "%s/compare.json", out);
    CHECK(m2u_read_file(p, &js, &len) == 0 && strstr(js, "\"m2u-compare\"") != NULL, "compare.json");
    free(js);
    m2u_compare_free(&c);
}

static void refuses(const char *json, const char *what) {
    m2u_compare c = {0};
    CHECK(m2u_compare_add_json(&c, json, strlen(json), "bad.json", NULL) != 0, "refuses %s", what);
    CHECK(strstr(m2u_last_error(), "bad.json") != NULL, "the error names the file: %s", m2u_last_error());
    CHECK(c.n_src == 0, "nothing added for %s", what);
    m2u_compare_free(&c);
}

static void test_refusals(void) {
    refuses("{\"a\": ", "a torn file");
    refuses("[1, 2]", "a JSON array");
    refuses("{\"format\": \"m2u-eval-report\", \"run\": \"x\"}", "a report with no numbers");
    refuses("{\"format\": \"m2u-published-table\", \"metrics\": {\"x\": 1}}", "a table without a name");
    refuses("{\"format\": \"m2u-published-table\", \"name\": \"t\", \"metrics\": {\"x\": \"1.2\"}}",
            "a metric given as a string");
    refuses("{\"format\": \"m2u-published-table\", \"name\": \"t\"}", "a table without metrics");
    refuses("{\"format\": \"m2u-published-table\", \"name\": \"t\", \"metrics\": {\"x\": 1}, \"notes\": {\"x\": 2}}",
            "a note that is not a string");
    /* nesting deeper than any report: refused, not a stack overflow */
    char deep[3000]; /* 400 levels: cJSON parses it (its limit is 1000), the walk must refuse it */
    size_t k = 0;
    for (int i = 0; i < 400; i++) k += (size_t)sprintf(deep + k, "{\"a\":");
    k += (size_t)sprintf(deep + k, "1");
    for (int i = 0; i < 400; i++) deep[k++] = '}';
    deep[k] = 0;
    refuses(deep, "400 levels of nesting");
    m2u_compare c = {0};
    CHECK(m2u_compare_add(&c, "/nonexistent/m2u/report.json", NULL) != 0 &&
              strstr(m2u_last_error(), "/nonexistent/m2u/report.json") != NULL,
          "a missing file is named: %s", m2u_last_error());
    m2u_compare_free(&c);
}

static void test_cli(void) {
    char err[4096];
    put("a.json", k_run_a);
    char d[600];
    snprintf(d, sizeof d, "%s/run_b", g_dir);
    m2u_mkdir_p(d);
    put("run_b/report.json", k_run_b);
    put("table.json", k_table);
    put("broken.json", "{\"metrics\": ");
    CHECK(run_tool("--out cmp --name first a.json run_b table.json", err, sizeof err) == 0, "compare runs: %s", err);
    char p[700];
    snprintf(p, sizeof p, "%s/cmp/compare.md", g_dir);
    char *md = NULL;
    size_t len = 0;
    CHECK(m2u_read_file(p, &md, &len) == 0, "compare.md written");
    if (md) {
        CHECK(strstr(md, "| first |") != NULL && strstr(md, "(published)") != NULL, "md header: %.200s", md);
        CHECK(strstr(md, "| `music.fad` | 4.5 | 3.25 | — |") != NULL, "md FAD row");
        CHECK(strstr(md, "| `music.kl` | not measured | — | — |") != NULL, "md KL row");
        free(md);
    }
    CHECK(run_tool("--out cmp2 a.json broken.json", err, sizeof err) == 1 && strstr(err, "broken.json"),
          "a broken source: exit 1 naming it: %s", err);
    CHECK(run_tool("a.json", err, sizeof err) == 2 && strstr(err, "--out"), "no --out: exit 2: %s", err);
    CHECK(run_tool("--out x", err, sizeof err) == 2 && strstr(err, "SOURCE"), "no source: exit 2: %s", err);
    CHECK(run_tool("--out x --bogus a.json", err, sizeof err) == 2 && strstr(err, "--bogus"),
          "unknown option: exit 2: %s", err);
    CHECK(run_tool("--out x --name a --name b a.json", err, sizeof err) == 2 && strstr(err, "--name"),
          "more names than sources: exit 2: %s", err);
    CHECK(run_tool("--out x --name", err, sizeof err) == 2 && strstr(err, "needs a value"), "--name without value");
}

int main(void) {
    if (!mkdtemp(g_dir)) return 1;
    test_library();
    test_refusals();
    test_cli();
    m2u_rm_tree(g_dir);
    return t_finish("test_compare");
}
