/* m2u-dataset: build m2u dataset shards.
 *
 * This build has one subcommand, `text`: text-only samples (captions, music QA,
 * instructions) from a JSON-lines file, into HDF5 shards + manifest.  It is what
 * the trainer's text stages and the demo need.  Building from media (decoding,
 * analysis, captioners, edits, pairing) is `m2u-dataset build`, which is not in
 * this build yet (see the dataset issue). */
#include "fileio.h"
#include "m2u_error.h"
#include "manifest.h"
#include "sha256.h"
#include "shard.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fputs("usage: m2u-dataset text --input FILE.jsonl --out DIR [--shard-size 1000] [--valid 0.1] [--test 0]\n"
          "\n"
          "Text-only samples to HDF5 shards (DIR/shard-NNNNN.h5) and DIR/manifest.json.\n"
          "One JSON object per line:\n"
          "  kind         mucaps | musicqa | muedit | muimage | muvideo        (required)\n"
          "  source       the track or file the text is about                 (required; splits are by source)\n"
          "  licence      licence of the text / source, e.g. CC-BY-4.0      (required)\n"
          "  attribution  who to credit\n"
          "  id           unique id (default: derived from source and line)\n"
          "  caption, question (or instruction), answer, input_text, output_text\n"
          "Samples of one source always land in one split (hash of the source), so no\n"
          "track is in two splits.  A malformed line stops the build before anything is\n"
          "written, naming FILE:LINE.\n"
          "\n"
          "example:\n"
          "  m2u-dataset text --input data/demo/music_text.jsonl --out build/demo/text --valid 0.2\n"
          "  m2u-train configs/tiny_stage1.yaml train.data=build/demo/text/manifest.json\n",
          f);
}

typedef struct {
    char *text[M2U_TEXT_COUNT];
} row;

static const char *const k_kinds[] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};

static int take(const cJSON *o, const char *key, char **dst) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return -1;
    free(*dst);
    *dst = strdup(v->valuestring);
    return 1;
}

/* Split from a hash of the source: stable across runs, machines and inputs. */
static const char *split_of(const char *source, double valid, double test) {
    m2u_sha256 s;
    unsigned char d[32];
    m2u_sha256_init(&s);
    m2u_sha256_update(&s, source, strlen(source));
    m2u_sha256_final(&s, d);
    double u = (double)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) / 4294967296.0;
    return u < test ? "test" : u < test + valid ? "valid" : "train";
}

static int parse_rows(const char *path, double valid, double test, row **out, int *n_out) {
    char *text;
    size_t len;
    if (m2u_read_file(path, &text, &len)) return -1;
    int cap = 256, n = 0, rc = 0, line = 0;
    row *rows = calloc((size_t)cap, sizeof *rows);
    char *save = NULL;
    for (char *p = strtok_r(text, "\n", &save); p && !rc; p = strtok_r(NULL, "\n", &save)) {
        line++;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) continue;
        cJSON *o = cJSON_Parse(p);
        if (!o || !cJSON_IsObject(o)) {
            rc = m2u_fail("%s:%d: not a JSON object", path, line);
            cJSON_Delete(o);
            break;
        }
        if (n == cap) rows = realloc(rows, (size_t)(cap *= 2) * sizeof *rows);
        row *r = &rows[n];
        memset(r, 0, sizeof *r);
        static const struct {
            const char *key;
            m2u_text_col col;
        } fields[] = {{"id", M2U_TEXT_ID},           {"source", M2U_TEXT_SOURCE},
                      {"licence", M2U_TEXT_LICENCE}, {"attribution", M2U_TEXT_ATTRIBUTION},
                      {"kind", M2U_TEXT_KIND},       {"caption", M2U_TEXT_CAPTION},
                      {"question", M2U_TEXT_INSTRUCTION}, {"instruction", M2U_TEXT_INSTRUCTION},
                      {"answer", M2U_TEXT_ANSWER},   {"input_text", M2U_TEXT_INPUT_TEXT},
                      {"output_text", M2U_TEXT_OUTPUT_TEXT}};
        for (size_t f = 0; f < sizeof fields / sizeof *fields && !rc; f++)
            if (take(o, fields[f].key, &r->text[fields[f].col]) < 0)
                rc = m2u_fail("%s:%d: \"%s\" must be a string", path, line, fields[f].key);
        cJSON *c;
        cJSON_ArrayForEach(c, o) {
            int known = 0;
            for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) known |= !strcmp(c->string, fields[f].key);
            if (!known && !rc) rc = m2u_fail("%s:%d: unknown field \"%s\"", path, line, c->string);
        }
        cJSON_Delete(o);
        n++;
        if (rc) break;
        int kind_ok = 0;
        for (int k = 0; k < 5; k++) kind_ok |= r->text[M2U_TEXT_KIND] && !strcmp(r->text[M2U_TEXT_KIND], k_kinds[k]);
        if (!kind_ok) rc = m2u_fail("%s:%d: kind must be mucaps, musicqa, muedit, muimage or muvideo", path, line);
        else if (!r->text[M2U_TEXT_SOURCE] || !r->text[M2U_TEXT_SOURCE][0])
            rc = m2u_fail("%s:%d: missing \"source\"", path, line);
        else if (!r->text[M2U_TEXT_LICENCE] || !r->text[M2U_TEXT_LICENCE][0])
            rc = m2u_fail("%s:%d: missing \"licence\" (every sample records its licence)", path, line);
        if (!rc && !r->text[M2U_TEXT_ID]) {
            char id[64];
            snprintf(id, sizeof id, "%.40s#%d", r->text[M2U_TEXT_SOURCE], line);
            r->text[M2U_TEXT_ID] = strdup(id);
        }
        if (!rc) r->text[M2U_TEXT_SPLIT] = strdup(split_of(r->text[M2U_TEXT_SOURCE], valid, test));
    }
    free(text);
    *out = rows;
    *n_out = n;
    return rc;
}

static int cmd_text(int argc, char **argv) {
    const char *input = NULL, *out = NULL;
    int shard_size = 1000;
    double valid = 0.1, test = 0.0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return m2u_fail("%s needs a value", a);
        if (!strcmp(a, "--input")) input = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--shard-size")) shard_size = atoi(v);
        else if (!strcmp(a, "--valid")) valid = atof(v);
        else if (!strcmp(a, "--test")) test = atof(v);
        else return m2u_fail("unknown option %s (see m2u-dataset --help)", a);
        i++;
    }
    if (!input || !out) return m2u_fail("text needs --input and --out");
    if (shard_size < 1 || valid < 0 || test < 0 || valid + test >= 1)
        return m2u_fail("--shard-size must be >= 1 and --valid + --test < 1");
    row *rows = NULL;
    int n = 0;
    int rc = parse_rows(input, valid, test, &rows, &n);
    if (!rc && n == 0) rc = m2u_fail("%s: no samples", input);
    if (!rc && mkdir(out, 0755) != 0 && errno != EEXIST) rc = m2u_fail("%s: cannot create: %s", out, strerror(errno));
    m2u_manifest man;
    m2u_manifest_init(&man);
    int counts[3] = {0, 0, 0};
    for (int s = 0; !rc && s * shard_size < n; s++) {
        char name[64], path[4096];
        snprintf(name, sizeof name, "shard-%05d.h5", s);
        snprintf(path, sizeof path, "%s/%s", out, name);
        m2u_shard_spec spec = {0};
        m2u_shard_writer *w;
        if ((rc = m2u_shard_create(path, &spec, &w))) break;
        for (int i = s * shard_size; i < n && i < (s + 1) * shard_size && !rc; i++) {
            m2u_shard_sample smp = {0};
            for (int c = 0; c < M2U_TEXT_COUNT; c++) smp.text[c] = rows[i].text[c];
            smp.clip_start = smp.clip_end = 0.0 / 0.0; /* no clip: text only */
            rc = m2u_shard_append(w, &smp);
            const char *sp = rows[i].text[M2U_TEXT_SPLIT];
            counts[!strcmp(sp, "valid") ? 1 : !strcmp(sp, "test") ? 2 : 0]++;
        }
        if (rc) {
            m2u_shard_abort(w);
            break;
        }
        m2u_manifest_shard sh;
        if ((rc = m2u_shard_close(w)) || (rc = m2u_manifest_scan_shard(out, name, &sh))) break;
        rc = m2u_manifest_add(&man, &sh);
        m2u_manifest_shard_free(&sh);
    }
    if (!rc) {
        cJSON *cfg = cJSON_CreateObject();
        cJSON_AddStringToObject(cfg, "builder", "m2u-dataset text");
        cJSON_AddStringToObject(cfg, "input", input);
        cJSON_AddNumberToObject(cfg, "shard_size", shard_size);
        cJSON_AddNumberToObject(cfg, "valid", valid);
        cJSON_AddNumberToObject(cfg, "test", test);
        m2u_manifest_set_config(&man, cfg);
        cJSON_Delete(cfg);
        char path[4096];
        snprintf(path, sizeof path, "%s/manifest.json", out);
        rc = m2u_manifest_write(path, &man);
        if (!rc)
            printf("wrote %s: %d samples (train %d, valid %d, test %d) in %d shard(s)\n", path, n, counts[0], counts[1],
                   counts[2], man.n_shards);
    }
    m2u_manifest_free(&man);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < M2U_TEXT_COUNT; c++) free(rows[i].text[c]);
    free(rows);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int rc;
    if (!strcmp(argv[1], "text")) rc = cmd_text(argc, argv);
    else rc = m2u_fail("unknown command '%s' (this build has: text; see m2u-dataset --help)", argv[1]);
    if (rc) {
        fprintf(stderr, "m2u-dataset: %s\n", m2u_last_error());
        return 1;
    }
    return 0;
}
