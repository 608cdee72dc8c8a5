/* m2u-dataset: build m2u dataset shards.
 *
 *   build  media (audio, MIDI, images, videos) -> MUCaps, MusicQA, MUEdit,
 *          MUImage, MUVideo samples (data/build/build.h), under mpirun or alone
 *   text   text-only samples from a JSON-lines file
 *   card   (re)write the dataset card of a finished build */
#include "log.h"
#include "backend.h" /* m2u_set_threads */
#include "build.h"
#include "decode.h" /* m2u_decode_max_alloc */
#include "fileio.h"
#include "m2u_error.h"
#include "manifest.h"
#include "progress.h"
#include "sha256.h"
#include "shard.h"
#include "units.h" /* m2u_parse_bytes */

#include <cjson/cJSON.h>
#include <mpi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char k_build_usage[] =
    "usage: m2u-dataset build --input SPEC [--input SPEC ...] --out DIR [options]\n"
    "\n"
    "Decode, analyse and caption media into MUCaps / MusicQA / MUEdit / MUImage / MUVideo\n"
    "samples in HDF5 shards (DIR/shard-rRRR-NNNNN.h5), DIR/manifest.json, the dataset card\n"
    "DIR/README.md and the error report DIR/errors.jsonl.  Run it again after a kill: finished\n"
    "work is kept.  Under mpirun the files are split across ranks.  A file that cannot be used\n"
    "(missing, a dangling link, not media, corrupt, too short, silent, a duplicate) is recorded\n"
    "in errors.jsonl and the build goes on; a build that makes no sample at all fails (status 1)\n"
    "with the count of files per reason.\n"
    "  --input SPEC        folder, glob, file, or JSON-lines manifest (path, licence, attribution,\n"
    "                      source); audio (anything FFmpeg decodes), MIDI, images, videos.  A named\n"
    "                      input that does not exist is recorded (cannot-open) and skipped\n"
    "  --strict            stop instead when a named input does not exist or a pattern matches nothing\n"
    "  --licence L         licence of inputs that have none (folders, globs); required for them\n"
    "  --attribution A     attribution of inputs that have none\n"
    "  --recipes LIST      mucaps,musicqa,muedit,muimage,muvideo (default: all)\n"
    "  --audio-rate HZ     stored audio and analysis rate (24000: MERT)\n"
    "  --clip S --hop S    clip length and hop in seconds (10, 10); --min-clip S (5)\n"
    "  --max-clips N       clips per file (0 = all)\n"
    "  --soundfont F.sf2   for MIDI sources (default: Debian's FluidR3_GM.sf2)\n"
    "  --qa N              MusicQA pairs per clip (2)\n"
    "  --valid F --test F  share of sources in valid / test (0.1, 0.1)\n"
    "  --shard-size N      samples per shard (256)\n"
    "  --seed N            phrasing / edit / pairing seed (0)\n"
    "  --captioner CMD     JSON-lines captioner program that rewrites captions (captioner_process.h)\n"
    "  --llm URL           OpenAI-compatible endpoint (llama.cpp server, vLLM) that rewrites the\n"
    "                      MUEdit / MUImage / MUVideo instructions; --llm-model NAME\n"
    "  --mert DIR          MERT checkpoint: features/mert = its [layers+1, hidden] layer means\n"
    "                      (60 s windows averaged); needs --audio-rate = its sampling rate\n"
    "  --vit DIR           ViT checkpoint: features/vit = last_hidden_state (e.g. [197, 768])\n"
    "  --vivit DIR         ViViT checkpoint: features/vivit = last_hidden_state (e.g. [3137, 768])\n"
    "  --t5 DIR            T5 encoder (or MusicGen) checkpoint: features/t5 = the text padded to\n"
    "                      --text-rows tokens through it; --t5-tokenizer F (default DIR/tokenizer.json)\n"
    "                      Without them the built-in features of the same shapes are stored.\n"
    "  --no-images         do not store image pixels (features only)\n"
    "  --text-rows N --text-dim N   text target shape (128 x 768, MusicGen's T5)\n"
    "  --overwrite         replace a build of other settings in DIR\n"
    "  --no-verify         do not check the shards' hashes when the card reads them back\n"
    "  --quiet             no progress lines\n"
    "  --audio-cache MB    decoded audio kept in memory from the survey for the samples, per\n"
    "                      process (1024; 0: decode again); the shards are the same for any MB\n"
    "  --decode-max-alloc SIZE  the largest buffer FFmpeg may take at once (1G; \"2G\", \"512M\"): a\n"
    "                      header claiming gigabytes fails its file alone (\"unsupported\"); raise it\n"
    "                      for pictures over about 1 GiB decoded (12000 x 12000 at 16-bit RGBA)\n"
    "  --threads N         threads of this process (default: OMP_NUM_THREADS, else every core;\n"
    "                      launch/mpirun.sh gives each rank its share).  A file's clips are\n"
    "                      analysed side by side; the shards are the same for any N\n"
    "  -h, --help          this text\n"
    "examples:\n"
    "  m2u-dataset build --input /usr/share/games/openttd/baseset/openmsx --licence GPL-2.0 \\\n"
    "      --attribution 'OpenMSX authors' --out build/openmsx\n"
    "  mpirun -np 4 m2u-dataset build --input music.jsonl --input images/ --licence CC0-1.0 --out ds\n"
    "  m2u-dataset build --input music/ --licence CC-BY-4.0 --mert ckpt/MERT-v1-330M --vit ckpt/vit-base \\\n"
    "      --t5 ckpt/musicgen-medium --t5-tokenizer ckpt/t5-base/tokenizer.json --out ds_mert\n"
    "  m2u-dataset build --input 'music/*.flac' --input extra.wav --strict --licence CC0-1.0 --out ds\n"
    "  HDF5_PLUGIN_PATH=build/hdf5-plugins h5dump -H ds/shard-r000-00000.h5\n";

static const char k_text_usage[] =
    "usage: m2u-dataset text --input FILE.jsonl --out DIR [--shard-size 1000] [--valid 0.1] [--test 0]\n"
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
    "  -h, --help          this text\n"
    "\n"
    "example:\n"
    "  m2u-dataset text --input data/demo/music_text.jsonl --out build/demo/text --valid 0.2\n"
    "  m2u-train configs/tiny_stage1.yaml train.data=build/demo/text/manifest.json\n";

static const char k_card_usage[] =
    "usage: m2u-dataset card [--no-verify] DIR\n"
    "\n"
    "(Re)write DIR/README.md, the dataset card of a finished build, from DIR/manifest.json, the\n"
    "shards and DIR/errors.jsonl.  Each shard's hash is checked against the manifest before it\n"
    "is read (a damaged shard is an error naming it); --no-verify skips the check.\n"
    "  -h, --help          this text\n"
    "\n"
    "example:\n"
    "  m2u-dataset card build/demo/media\n";

static const char k_verify_usage[] =
    "usage: m2u-dataset verify [--add-xxh128] DIR\n"
    "\n"
    "Check every shard of DIR/manifest.json in full: its size, its sha256 and its xxh128 (the\n"
    "faster hash the dataset reader checks on first use; manifests written before it have none),\n"
    "both from one read, then that HDF5 opens it with the recorded sample count.  Prints one line\n"
    "per shard and a summary; exits 1 when any shard fails (all are checked).  Progress with\n"
    "rate and ETA goes to stderr.  The sha256 is what `sha256sum` prints, the xxh128 what\n"
    "`xxh128sum` prints, so a copy can be checked without m2u too.\n"
    "  --add-xxh128        when every shard passed, record the xxh128 of the shards that have\n"
    "                      none in the manifest (rewritten atomically), so the dataset reader\n"
    "                      checks them by it instead of the slower sha256\n"
    "  -h, --help          this text\n"
    "\n"
    "example:\n"
    "  m2u-dataset verify build/demo/media\n"
    "  m2u-dataset verify --add-xxh128 old_build    (a dataset built before m2u recorded it)\n";

static void usage(FILE *f) {
    fputs("usage: m2u-dataset build --input SPEC [--input SPEC ...] --out DIR [options]\n"
          "       m2u-dataset text --input FILE.jsonl --out DIR [--shard-size 1000] [--valid 0.1] [--test 0]\n"
          "       m2u-dataset card [--no-verify] DIR\n"
          "       m2u-dataset verify [--add-xxh128] DIR\n"
          "       m2u-dataset COMMAND --help    (each command's options and examples)\n"
          "\n"
          "build: media (audio, MIDI, images, videos) -> MUCaps, MusicQA, MUEdit, MUImage, MUVideo samples\n"
          "text:  text-only samples from a JSON-lines file\n"
          "card:  (re)write the dataset card of a finished build\n"
          "verify: check every shard's size, sha256, xxh128 and sample count\n\n",
          f);
    fputs(k_build_usage, f);
    fputs("\n", f);
    fputs(k_text_usage, f);
    fputs("\n", f);
    fputs(k_card_usage, f);
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* 1 when any argument after the command asks for help */
static int wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) return 1;
    return 0;
}

/* An option mistake: what was wrong, then the command's usage, status 2. */
static int usage_error(const char *cmd, const char *text) {
    fprintf(stderr, "m2u-dataset %s: %s\n\n%s", cmd, m2u_last_error(), text);
    return 2;
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
    double u = m2u_sha256_unit("", source);
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

static int num_arg(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || end == v || *end || !(x >= lo && x <= hi))
        return m2u_fail("%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, v ? v : "");
    *out = x;
    return 0;
}

static int cmd_text(int argc, char **argv) {
    const char *input = NULL, *out = NULL;
    int shard_size = 1000;
    double valid = 0.1, test = 0.0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
        int bad = 0;
        if (strcmp(a, "--input") && strcmp(a, "--out") && strcmp(a, "--shard-size") && strcmp(a, "--valid") &&
            strcmp(a, "--test")) {
            m2u_fail("unknown option '%s'", a);
            return usage_error("text", k_text_usage);
        }
        if (!v) {
            m2u_fail("%s needs a value", a);
            return usage_error("text", k_text_usage);
        }
        if (!strcmp(a, "--input")) input = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--shard-size")) bad = num_arg(a, v, 1, 1e9, &x), shard_size = (int)x;
        else if (!strcmp(a, "--valid")) bad = num_arg(a, v, 0, 0.9, &valid);
        else bad = num_arg(a, v, 0, 0.9, &test);
        if (bad) return usage_error("text", k_text_usage);
        i++;
    }
    if (!input || !out) {
        m2u_fail("give %s", !input ? "--input FILE.jsonl" : "--out DIR");
        return usage_error("text", k_text_usage);
    }
    if (valid + test >= 1) {
        m2u_fail("--valid + --test must be < 1 (got %g + %g)", valid, test);
        return usage_error("text", k_text_usage);
    }
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

/* ---- build ---------------------------------------------------------------------------------------- */

static int mpi_barrier(void *ctx) {
    (void)ctx;
    return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

static int mpi_all_ok(void *ctx, int ok) {
    (void)ctx;
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) return 0;
    return all;
}

static int parse_recipes(const char *list, int *mask) {
    static const char *const names[5] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};
    *mask = 0;
    char *copy = strdup(list), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < 5 && strcmp(t, names[k])) k++;
        if (k == 5) rc = m2u_fail("--recipes: unknown recipe '%s' (mucaps, musicqa, muedit, muimage, muvideo)", t);
        else *mask |= 1 << k;
    }
    free(copy);
    return rc;
}

/* the build options that take a value (for the message when it is missing) */
static int known_value_option(const char *a) {
    static const char *const names[] = {"--input", "--out", "--licence", "--license", "--attribution", "--recipes",
                                        "--soundfont", "--captioner", "--llm", "--llm-model", "--mert", "--vit",
                                        "--vivit", "--t5", "--t5-tokenizer", "--audio-rate", "--clip", "--hop",
                                        "--min-clip", "--max-clips", "--qa", "--valid", "--test", "--shard-size",
                                        "--seed", "--text-rows", "--text-dim", "--stop-after", "--threads",
                                        "--audio-cache", "--decode-max-alloc"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (!strcmp(a, names[k])) return 1;
    return 0;
}

static int cmd_build(int argc, char **argv) {
    m2u_build_config c;
    m2u_build_config_default(&c);
    c.progress = 1;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int rc = 0, threads = 0;
    size_t max_alloc = 0; /* --decode-max-alloc; 0: the decoder's default */
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
        if (!strcmp(a, "--overwrite")) c.overwrite = 1;
        else if (!strcmp(a, "--strict")) c.strict = 1;
        else if (!strcmp(a, "--no-verify")) c.verify = 0;
        else if (!strcmp(a, "--quiet")) c.progress = 0;
        else if (!strcmp(a, "--no-images")) c.store_images = 0;
        else if (strncmp(a, "--", 2)) rc = m2u_fail("unexpected argument '%s' (inputs are given with --input)", a);
        else if (!v) rc = known_value_option(a) ? m2u_fail("%s needs a value", a) : m2u_fail("unknown option '%s'", a);
        else {
            i++;
            if (!strcmp(a, "--input")) inputs[c.n_inputs++] = v;
            else if (!strcmp(a, "--out")) c.out_dir = v;
            else if (!strcmp(a, "--licence") || !strcmp(a, "--license")) c.default_licence = v;
            else if (!strcmp(a, "--attribution")) c.default_attribution = v;
            else if (!strcmp(a, "--recipes")) rc = parse_recipes(v, &c.recipes);
            else if (!strcmp(a, "--soundfont")) c.soundfont = v;
            else if (!strcmp(a, "--captioner")) c.captioner_cmd = v;
            else if (!strcmp(a, "--llm")) c.llm_url = v;
            else if (!strcmp(a, "--llm-model")) c.llm_model = v;
            else if (!strcmp(a, "--mert")) c.mert_dir = v;
            else if (!strcmp(a, "--vit")) c.vit_dir = v;
            else if (!strcmp(a, "--vivit")) c.vivit_dir = v;
            else if (!strcmp(a, "--t5")) c.t5_dir = v;
            else if (!strcmp(a, "--t5-tokenizer")) c.t5_tokenizer = v;
            else if (!strcmp(a, "--audio-rate")) rc = num_arg(a, v, 8000, 192000, &x), c.audio_rate = (int)x;
            else if (!strcmp(a, "--clip")) rc = num_arg(a, v, 0.5, 600, &c.clip_s);
            else if (!strcmp(a, "--hop")) rc = num_arg(a, v, 0.1, 600, &c.hop_s);
            else if (!strcmp(a, "--min-clip")) rc = num_arg(a, v, 0.1, 600, &c.min_clip_s);
            else if (!strcmp(a, "--max-clips")) rc = num_arg(a, v, 0, 1e9, &x), c.max_clips = (int)x;
            else if (!strcmp(a, "--qa")) rc = num_arg(a, v, 0, 8, &x), c.qa_per_clip = (int)x;
            else if (!strcmp(a, "--valid")) rc = num_arg(a, v, 0, 0.9, &c.valid_frac);
            else if (!strcmp(a, "--test")) rc = num_arg(a, v, 0, 0.9, &c.test_frac);
            else if (!strcmp(a, "--shard-size")) rc = num_arg(a, v, 1, 1e9, &x), c.shard_size = (int)x;
            else if (!strcmp(a, "--seed")) rc = num_arg(a, v, 0, 1e15, &x), c.seed = (uint64_t)x;
            else if (!strcmp(a, "--text-rows")) rc = num_arg(a, v, 1, 4096, &x), c.text_rows = (int)x;
            else if (!strcmp(a, "--text-dim")) rc = num_arg(a, v, 1, 65536, &x), c.text_dim = (int)x;
            else if (!strcmp(a, "--stop-after")) rc = num_arg(a, v, 0, 1e9, &c.stop_after_s);
            else if (!strcmp(a, "--threads")) rc = num_arg(a, v, 1, 1024, &x), threads = (int)x;
            else if (!strcmp(a, "--audio-cache")) rc = num_arg(a, v, 0, 1e6, &x), c.audio_cache_mb = (size_t)x;
            else if (!strcmp(a, "--decode-max-alloc")) {
                rc = m2u_parse_bytes(v, &max_alloc);
                if (!rc && max_alloc < ((size_t)16 << 20))
                    rc = m2u_fail("--decode-max-alloc %s: below 16 MiB no real picture decodes", v);
            } else rc = m2u_fail("unknown option '%s'", a);
        }
    }
    c.inputs = inputs;
    if (!rc && !c.n_inputs) rc = m2u_fail("give at least one --input");
    if (!rc && !c.out_dir) rc = m2u_fail("give --out DIR");
    if (!rc && c.valid_frac + c.test_frac >= 1)
        rc = m2u_fail("--valid + --test must be < 1 (got %g + %g)", c.valid_frac, c.test_frac);
    if (rc) { /* an option mistake: say what, and how to call it (before MPI starts) */
        free(inputs);
        return usage_error("build", k_build_usage);
    }
    if (threads > 0) m2u_set_threads(threads);
    if (max_alloc) m2u_decode_max_alloc(max_alloc);
    int rank = 0, world = 1;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (rank != 0) c.progress = 0;
    m2u_build_comm comm = {.rank = rank, .world = world, .barrier = mpi_barrier, .all_ok = mpi_all_ok};
    m2u_build_stats st;
    double t0 = m2u_now();
    rc = m2u_build_run(&c, &comm, &st);
    /* totals over ranks for the summary */
    long loc[9] = {st.files, st.files_failed, st.files_duplicate, st.clips, st.samples[0], st.samples[1],
                   st.samples[2], st.samples[3], st.samples[4]}, tot[9];
    double secs = st.audio_s, tot_secs = 0;
    long drop = st.edits_dropped, tot_drop = 0;
    MPI_Reduce(loc, tot, 9, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&secs, &tot_secs, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&drop, &tot_drop, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (!rc && rank == 0) {
        double wall_s = m2u_now() - t0;
        printf("m2u-dataset build: %ld files surveyed now (%ld unusable, %ld duplicates), %ld clips, %.2f h of audio"
               " in %.1f s (%.0fx real time on %d rank%s)\n",
               tot[0], tot[1], tot[2], tot[3], tot_secs / 3600, wall_s, wall_s > 0 ? tot_secs / wall_s : 0, world,
               world > 1 ? "s" : "");
        printf("samples made now: mucaps %ld, musicqa %ld, muedit %ld (%ld unconfirmed edits dropped), muimage %ld, "
               "muvideo %ld\n",
               tot[4], tot[5], tot[6], tot_drop, tot[7], tot[8]);
        printf("manifest: %s/manifest.json\ncard:     %s/README.md\nerrors:   %s/errors.jsonl\nlogs:     %s/logs/\n",
               c.out_dir, c.out_dir, c.out_dir, c.out_dir);
    }
    if (rc) fprintf(stderr, "m2u-dataset: rank %d: %s\n", rank, m2u_last_error());
    MPI_Finalize();
    free(inputs);
    return rc ? 1 : 0;
}

/* The arguments of a command that takes one DIR and at most one option, `flag`
 * (*given set when it is there).  0, or 2 after showing the usage (usage_error). */
static int dir_args(int argc, char **argv, const char *cmd, const char *usage_text, const char *flag, int *given,
                    const char *what, const char **dir) {
    *dir = NULL;
    *given = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], flag)) {
            *given = 1;
        } else if (!strncmp(argv[i], "--", 2)) {
            m2u_fail("unknown option '%s'", argv[i]);
            return usage_error(cmd, usage_text);
        } else if (*dir) {
            m2u_fail("one DIR only ('%s' and '%s')", *dir, argv[i]);
            return usage_error(cmd, usage_text);
        } else {
            *dir = argv[i];
        }
    }
    if (!*dir) {
        m2u_fail("give the %s's DIR", what);
        return usage_error(cmd, usage_text);
    }
    return 0;
}

static int cmd_card(int argc, char **argv) {
    const char *dir;
    int no_verify, usage = dir_args(argc, argv, "card", k_card_usage, "--no-verify", &no_verify, "build", &dir);
    if (usage) return usage;
    char *mp = m2u_path_join(dir, "manifest.json"), *ep = m2u_path_join(dir, "errors.jsonl"),
         *cp = m2u_path_join(dir, "README.md");
    int rc = m2u_build_write_card(mp, m2u_file_exists(ep) ? ep : NULL, cp, !no_verify);
    if (!rc) printf("wrote %s\n", cp);
    free(mp), free(ep), free(cp);
    return rc ? -1 : 0;
}

static int cmd_verify(int argc, char **argv) {
    const char *dir;
    int add, usage = dir_args(argc, argv, "verify", k_verify_usage, "--add-xxh128", &add, "dataset", &dir);
    if (usage) return usage;
    char *mp = m2u_path_join(dir, "manifest.json");
    if (!mp) return m2u_fail("out of memory");
    /* opening checks that every shard is there with its recorded size */
    m2u_dataset_options o = {.no_verify = 1, .max_open_shards = 1};
    m2u_dataset *ds = NULL;
    if (m2u_dataset_open(mp, &o, &ds)) {
        free(mp);
        return -1;
    }
    const m2u_manifest *m = m2u_dataset_manifest(ds);
    /* with --add-xxh128, each shard's xxh128 from the verifying read (no second pass) */
    char(*xxh)[33] = add ? calloc((size_t)m->n_shards + 1, sizeof *xxh) : NULL;
    if (add && !xxh) {
        m2u_dataset_close(ds);
        free(mp);
        return m2u_fail("out of memory");
    }
    long long total = 0, done = 0;
    for (int s = 0; s < m->n_shards; s++) total += m->shards[s].bytes;
    m2u_progress pr;
    m2u_progress_start(&pr, "MiB", (long)(total >> 20));
    int bad = 0, no_xxh = 0;
    int64_t samples = 0;
    for (int s = 0; s < m->n_shards; s++) {
        const m2u_manifest_shard *sh = &m->shards[s];
        char *full = m2u_path_join(dir, sh->path);
        m2u_shard_reader *r;
        int rc = full ? m2u_manifest_verify_shard(full, sh, 1, mp, xxh ? xxh[s] : NULL) /* both hashes */
                      : m2u_fail("out of memory");
        if (!rc) rc = m2u_dataset_shard(ds, s, &r); /* HDF5 opens it with the recorded count */
        if (rc) {
            fprintf(stderr, "m2u-dataset verify: %s\n", m2u_last_error());
            printf("FAILED  %s\n", sh->path);
            bad++;
        } else {
            printf("ok      %s  %lld samples, %lld bytes, sha256 %.16s..., xxh128 %s\n", sh->path, (long long)sh->count,
                   (long long)sh->bytes, sh->sha256, sh->xxh128[0] ? sh->xxh128 : "(not recorded)");
            samples += sh->count;
        }
        no_xxh += !sh->xxh128[0];
        fflush(stdout);
        free(full);
        done += sh->bytes;
        m2u_progress_update(&pr, (long)(done >> 20), NULL);
    }
    m2u_progress_end(&pr, (long)(done >> 20), NULL);
    printf("%s: %d of %d shards verified, %lld samples, %.1f MB%s\n", mp, m->n_shards - bad, m->n_shards,
           (long long)samples, (double)total / 1e6,
           no_xxh && !add ? " (some shards have no xxh128 in the manifest: the reader checks their sha256; "
                            "--add-xxh128 records it)" : "");
    int rc = bad ? m2u_fail("%s: %d shard(s) failed verification", mp, bad) : 0;
    if (rc == 0 && add && no_xxh) {
        /* every shard matched its sha256 just now: record the xxh128 of the same read */
        m2u_manifest man;
        rc = m2u_manifest_read(mp, &man);
        if (rc == 0 && man.n_shards != m->n_shards) rc = m2u_fail("%s changed while it was verified", mp);
        for (int s = 0; rc == 0 && s < man.n_shards; s++)
            if (!man.shards[s].xxh128[0]) memcpy(man.shards[s].xxh128, xxh[s], sizeof xxh[s]);
        if (rc == 0) rc = m2u_manifest_write(mp, &man);
        if (rc == 0) printf("recorded the xxh128 of %d shard(s) in %s\n", no_xxh, mp);
        m2u_manifest_free(&man);
    }
    m2u_dataset_close(ds);
    free(xxh);
    free(mp);
    return rc;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    if (argc < 2 || is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name, *usage;
    } cmds[] = {{"build", k_build_usage}, {"text", k_text_usage}, {"card", k_card_usage}, {"verify", k_verify_usage}};
    for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++)
        if (!strcmp(argv[1], cmds[k].name) && wants_help(argc, argv)) {
            fputs(cmds[k].usage, stdout);
            return 0;
        }
    int rc;
    if (!strcmp(argv[1], "build")) return cmd_build(argc, argv); /* prints its own errors (per rank) */
    if (!strcmp(argv[1], "text")) rc = cmd_text(argc, argv);
    else if (!strcmp(argv[1], "card")) rc = cmd_card(argc, argv);
    else if (!strcmp(argv[1], "verify")) rc = cmd_verify(argc, argv);
    else {
        fprintf(stderr, "m2u-dataset: unknown command '%s' (build, text, card, verify)\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (rc > 0) return rc; /* an option mistake, already explained */
    if (rc) {
        fprintf(stderr, "m2u-dataset: %s\n", m2u_last_error());
        return 1;
    }
    return 0;
}
