/* m2u-eval run / report:
 *  - the attribute parser on hand-written sentences (exact words) and on every
 *    caption / MusicQA answer data/build/describe.c writes for a grid of analyses
 *    (it must read back exactly the measured words);
 *  - a tiny run (m2u-llm init + m2u-train, 6 steps, music adapter on mert
 *    features): `m2u-eval run` writes one prediction per selected test sample,
 *    in dataset order, with scores in range, attribute agreement whose
 *    reference columns are exactly 1, and a report whose SVG/HTML is balanced;
 *  - `m2u-eval report` on a schema-correct metrics.jsonl (a resumed step, a torn
 *    last line): the loss / held-out / lr polylines have exactly the expected
 *    points, the values land where they should;
 *  - when `chromium` is installed: the page is rendered headless, the PNG is
 *    decoded and must show the plot colours (not a blank page). */
#include "attr_agreement.h"
#include "describe.h"
#include "m2u_error.h"
#include "manifest.h"
#include "png_min.h"
#include "test_dataset_util.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- 1. parser --------------------------------------------------------------------------- */

static const char *word(m2u_attr a, const m2u_attr_set *s) {
    const char *w = m2u_attr_class_name(a, s->cls[a]);
    return w ? w : "-";
}

static void expect(const char *text, const char *tempo, const char *key, const char *mode, const char *loud,
                   const char *mood) {
    m2u_attr_set s;
    m2u_attr_parse(text, &s);
    const char *want[M2U_ATTR_COUNT] = {tempo, key, mode, loud, mood};
    for (int a = 0; a < M2U_ATTR_COUNT; a++)
        CHECK(!strcmp(word((m2u_attr)a, &s), want[a]), "\"%s\": %s = %s, expected %s", text,
              m2u_attr_name((m2u_attr)a), word((m2u_attr)a, &s), want[a]);
}

static void test_parser(void) {
    expect("A calm, relaxed piano piece in D minor at about 84 BPM. It sounds quiet and warm, without drums.",
           "relaxed", "D minor", "minor", "quiet", "calm");
    expect("An upbeat track in F# major with a cheerful feel. The sound is moderately loud and bright.", "upbeat",
           "F# major", "major", "moderately loud", "cheerful");
    expect("It is in Bb minor, a minor key.", "-", "Bb minor", "minor", "-", "-");
    expect("It is in a major key.", "-", "-", "major", "-", "-");             /* the article is not the note A */
    expect("A tense tune in C sharp minor.", "-", "C# minor", "minor", "-", "tense"); /* C sharp = C# */
    expect("C# major, E flat minor", "-", "Db major", "major", "-", "-");     /* C# = Db; the first key wins */
    expect("Then E flat minor.", "-", "Eb minor", "minor", "-", "-");
    expect("The tempo is about 156 beats per minute.", "fast", "-", "-", "-", "-"); /* number -> word */
    expect("It is loud, around -9 LUFS.", "-", "-", "-", "loud", "-");
    expect("Around -25 LUFS overall.", "-", "-", "-", "moderately loud", "-");  /* LUFS number -> word */
    expect("Its loudness is even; breakfast at a moderately slow pace.", "slow", "-", "-", "-", "-");
    expect("A free-tempo, melancholic piece", "free-tempo", "-", "-", "-", "melancholic");
    expect("FAST and LOUD", "fast", "-", "-", "loud", "-");
    expect("", "-", "-", "-", "-", "-");
    m2u_attr_set s;
    m2u_attr_parse("a slow piece at about 60 BPM, -31.5 LUFS", &s);
    CHECK(s.bpm == 60 && s.lufs == -31.5, "numbers: bpm %g lufs %g", s.bpm, s.lufs);

    /* every caption and QA answer describe.c writes reads back as the measured words */
    static const double bpm[] = {55, 80, 110, 140, 170, 100, 300};
    static const double lufs[] = {-40, -25, -12};
    static const double cen[] = {600, 1500, 3500};
    int n_checked = 0, bad = 0;
    for (int ti = 0; ti < 7; ti++)
        for (int k = 0; k < 24; k++)
            for (int li = 0; li < 3; li++) {
                m2u_analysis an;
                memset(&an, 0, sizeof an);
                an.tempo_bpm = bpm[ti];
                an.tempo_confidence = ti == 5 ? 0.1 : 0.8; /* 100 bpm but unsure: "free-tempo" */
                an.key = k % 12;
                an.mode = k / 12;
                an.key_confidence = k % 5 == 0 ? 0.3 : 0.8; /* some keys too unsure to state */
                an.loudness_lufs = lufs[li];
                an.centroid_hz = cen[(ti + k) % 3];
                an.percussiveness = (k % 2) * 0.6;
                an.dynamics_db = 8;
                m2u_music_facts f = {.a = &an, .has_drums = -1};
                double v, ar;
                m2u_mood_from_analysis(&an, &v, &ar);
                float vals[8] = {(float)an.tempo_bpm, (float)an.tempo_confidence, (float)an.key, (float)an.mode,
                                 (float)an.key_confidence, (float)an.loudness_lufs, (float)v, (float)ar};
                static const char *const names[8] = {"tempo_bpm", "tempo_confidence", "key", "mode",
                                                     "key_confidence", "loudness_lufs", "valence", "arousal"};
                m2u_attr_measured m;
                m2u_attr_measured_from_columns(&m, names, vals, 8);
                m2u_attr_set meas;
                m2u_attr_measured_classes(&m, &meas);
                uint64_t seed = (uint64_t)(ti * 1000 + k * 10 + li);
                char *cap = m2u_describe_music(&f, seed);
                m2u_attr_parse(cap, &s);
                for (int a = 0; a < M2U_ATTR_COUNT; a++) {
                    /* a caption states tempo (a word, maybe free-tempo), loudness and mood always, key and mode when known */
                    int want = meas.cls[a];
                    if (s.cls[a] != want) {
                        if (bad++ < 5)
                            fprintf(stderr, "caption \"%s\": %s parsed %s, measured %s\n", cap,
                                    m2u_attr_name((m2u_attr)a), word((m2u_attr)a, &s), word((m2u_attr)a, &meas));
                    }
                    n_checked++;
                }
                free(cap);
                char *q[6], *ans[6];
                int nq = m2u_music_qa(&f, seed, 6, q, ans);
                for (int i = 0; i < nq; i++) {
                    m2u_attr_parse(ans[i], &s);
                    for (int a = 0; a < M2U_ATTR_COUNT; a++) {
                        if (s.cls[a] < 0) continue; /* an answer speaks about one subject */
                        n_checked++;
                        if (s.cls[a] != meas.cls[a] && bad++ < 5)
                            fprintf(stderr, "answer \"%s\": %s parsed %s, measured %s\n", ans[i],
                                    m2u_attr_name((m2u_attr)a), word((m2u_attr)a, &s), word((m2u_attr)a, &meas));
                    }
                    free(q[i]);
                    free(ans[i]);
                }
            }
    CHECK(bad == 0 && n_checked > 2500, "describe.c texts: %d of %d attribute readings differ from the measured words",
          bad, n_checked);

    /* agreement counting */
    m2u_attr_agreement ag;
    CHECK(m2u_attr_agreement_init(&ag) == 0, "init");
    m2u_attr_set me = {.cls = {0, 2, 0, 1, 3}, .bpm = 60, .lufs = -20}, st;
    m2u_attr_parse("A slow piece in D major at 62 BPM, quiet.", &st); /* tempo right, key right, loudness wrong */
    m2u_attr_agreement_add(&ag, &me, &st);
    CHECK(ag.n_measured[M2U_ATTR_TEMPO] == 1 && ag.n_correct[M2U_ATTR_TEMPO] == 1, "tempo counted");
    CHECK(ag.n_stated[M2U_ATTR_LOUDNESS] == 1 && ag.n_correct[M2U_ATTR_LOUDNESS] == 0, "loudness wrong");
    CHECK(ag.confusion[M2U_ATTR_LOUDNESS][1 * 4 + 0] == 1, "loudness confusion cell [moderately loud][quiet]");
    CHECK(ag.n_stated[M2U_ATTR_MOOD] == 0 && ag.confusion[M2U_ATTR_MOOD][3 * 5 + 4] == 1, "mood not stated column");
    CHECK(ag.bpm_n == 1 && ag.bpm_within_4pct == 1, "62 is within 4%% of 60");
    CHECK(isnan(m2u_attr_accuracy(&ag, M2U_ATTR_MOOD)) && m2u_attr_agreement_rate(&ag, M2U_ATTR_MOOD) == 0,
          "mood rates");
    m2u_attr_agreement_free(&ag);
}

/* ---- 2. a tiny run ----------------------------------------------------------------------- */

#define N_SAMPLES 48
static int is_test(int i) { return i % 4 == 3; }

static void make_dataset(char expected_ids[][16], int *n_expected, int max) {
    char path[256];
    t_sh("mkdir -p %s/data", g_dir);
    snprintf(path, sizeof path, "%s/data/shard-00000.h5", g_dir);
    static const char *const names[8] = {"tempo_bpm", "tempo_confidence", "key", "mode",
                                         "key_confidence", "loudness_lufs", "valence", "arousal"};
    m2u_shard_tensor_spec cols[1] = {{.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {4, 8}}};
    m2u_shard_spec spec = {.n_attrs = 8, .attr_names = names, .n_tensors = 1, .tensors = cols};
    m2u_shard_writer *w;
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "%s", m2u_last_error());
    *n_expected = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        m2u_analysis an;
        memset(&an, 0, sizeof an);
        an.tempo_bpm = 60 + 11 * (i % 9);
        an.tempo_confidence = 0.8;
        an.key = (i * 5) % 12;
        an.mode = (i / 3) % 2;
        an.key_confidence = i % 7 == 0 ? 0.2 : 0.9;
        an.loudness_lufs = -38 + 3 * (i % 10);
        an.centroid_hz = 800 + 150 * (i % 13);
        an.percussiveness = (i % 3) * 0.3;
        an.dynamics_db = 6;
        m2u_music_facts f = {.a = &an, .has_drums = -1};
        double v, ar;
        m2u_mood_from_analysis(&an, &v, &ar);
        float attrs[8] = {(float)an.tempo_bpm, (float)an.tempo_confidence, (float)an.key, (float)an.mode,
                          (float)an.key_confidence, (float)an.loudness_lufs, (float)v, (float)ar};
        char id[16];
        snprintf(id, sizeof id, "s%03d", i);
        char *cap = m2u_describe_music(&f, (uint64_t)i), *q[1] = {NULL}, *a[1] = {NULL};
        int musicqa = (i / 4) % 2 == 1; /* test samples (i % 4 == 3) alternate mucaps / musicqa */
        if (musicqa) CHECK(m2u_music_qa(&f, (uint64_t)i, 1, q, a) == 1, "qa");
        m2u_shard_sample s = {0};
        s.text[M2U_TEXT_ID] = id;
        s.text[M2U_TEXT_KIND] = musicqa ? "musicqa" : "mucaps";
        s.text[M2U_TEXT_SPLIT] = is_test(i) ? "test" : i % 4 == 2 ? "valid" : "train";
        s.text[M2U_TEXT_LICENCE] = "CC0-1.0";
        s.text[M2U_TEXT_CAPTION] = cap;
        s.text[M2U_TEXT_INSTRUCTION] = q[0];
        s.text[M2U_TEXT_ANSWER] = a[0];
        s.attrs = attrs;
        float feat[32];
        for (int k = 0; k < 32; k++) feat[k] = (float)((i * 7 + k * 3) % 11) / 11.0f - 0.5f;
        s.tensor[0] = feat;
        CHECK(m2u_shard_append(w, &s) == 0, "%s", m2u_last_error());
        if (is_test(i) && *n_expected < max) snprintf(expected_ids[(*n_expected)++], 16, "%s", id);
        free(cap);
        free(q[0]);
        free(a[0]);
    }
    CHECK(m2u_shard_close(w) == 0, "%s", m2u_last_error());
    snprintf(path, sizeof path, "%s/data", g_dir);
    t_manifest_one_shard(path);
}

/* dir/shard-00000.h5 + manifest: 4 test-split MusicCaps samples with MERT features [rows, cols] */
static void make_small_dataset(const char *dir, int rows, int cols) {
    char path[256];
    t_sh("mkdir -p %s", dir);
    snprintf(path, sizeof path, "%s/shard-00000.h5", dir);
    m2u_shard_tensor_spec tc[1] = {{.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {rows, cols}}};
    m2u_shard_spec spec = {.n_tensors = 1, .tensors = tc};
    m2u_shard_writer *w;
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "%s", m2u_last_error());
    if (!w) return;
    float *feat = calloc((size_t)rows * cols, sizeof(float));
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        m2u_shard_sample s = {0};
        s.text[M2U_TEXT_ID] = id;
        s.text[M2U_TEXT_KIND] = "mucaps";
        s.text[M2U_TEXT_SPLIT] = "test";
        s.text[M2U_TEXT_LICENCE] = "CC0-1.0";
        s.text[M2U_TEXT_CAPTION] = "A calm piano piece.";
        s.tensor[0] = feat;
        CHECK(m2u_shard_append(w, &s) == 0, "%s", m2u_last_error());
    }
    free(feat);
    CHECK(m2u_shard_close(w) == 0, "%s", m2u_last_error());
    t_manifest_one_shard(dir);
}

static int train_tiny(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/tiny.json", g_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 64,"
               " \"intermediate_size\": 128, \"num_hidden_layers\": 3, \"num_attention_heads\": 4,"
               " \"num_key_value_heads\": 2, \"vocab_size\": 32000, \"rms_norm_eps\": 1e-5,"
               " \"tie_word_embeddings\": true, \"max_position_embeddings\": 512}\n");
    fclose(f);
    if (t_sh("%s/m2u-llm init --config %s --tokenizer %s/tokenizer/tokenizer.json --out %s/base --seed 3 "
           "--std 0.05 --embed-std 0.1 > /dev/null",
           M2U_BUILD_DIR, path, M2U_FIXTURES, g_dir))
        return -1;
    snprintf(path, sizeof path, "%s/run.yaml", g_dir);
    f = fopen(path, "w");
    fprintf(f,
            "run:\n  name: t\n  seed: 7\n  keep_last: 2\n  save_every: 3\n  log_every: 1\n  eval_every: 3\n"
            "model:\n  llm: %s/base\n  aud_tokens: 8\n  query_layer: 1\n  modalities: [music]\n"
            "  music_tokens: 4\n  music_dim: 8\n"
            "lora:\n  r: 4\n  alpha: 8\n  dropout: 0.0\n"
            "train:\n  stage: 3\n  trainable: [lora, norm, adapters, gates, prefix_query]\n"
            "  data: %s/data/manifest.json\n  kinds: [mucaps, musicqa]\n  max_len: 160\n  batch: 4\n  accum: 1\n"
            "  max_steps: 6\n  lr: 5.0e-3\n  warmup_steps: 1\n"
            "eval:\n  split: valid\n  batches: 1\n  max_new_tokens: 4\n",
            g_dir, g_dir);
    fclose(f);
    return t_sh("OMP_NUM_THREADS=2 ASAN_OPTIONS=detect_leaks=0 %s/m2u-train %s run.out_dir=%s/run 2> %s/train.log",
              M2U_BUILD_DIR, path, g_dir, g_dir);
}

/* Balanced tags: every element opened is closed in order (void and self-closed ones excepted). */
static int html_balanced(const char *s, char *why, size_t wn) {
    char stack[256][16];
    int depth = 0;
    for (const char *p = s; (p = strchr(p, '<'));) {
        if (!strncmp(p, "<!", 2)) {
            p++;
            continue;
        }
        const char *e = strchr(p, '>');
        if (!e) return snprintf(why, wn, "unterminated tag"), 0;
        int closing = p[1] == '/', selfc = e[-1] == '/';
        const char *n = p + 1 + closing;
        size_t l = strcspn(n, " \t\n/>");
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)(l < 15 ? l : 15), n);
        p = e + 1;
        if (!strcmp(name, "meta") || !strcmp(name, "br")) continue;
        if (selfc) continue;
        if (!closing) {
            if (depth == 256) return snprintf(why, wn, "too deep"), 0;
            snprintf(stack[depth++], 16, "%s", name);
        } else {
            if (!depth || strcmp(stack[depth - 1], name))
                return snprintf(why, wn, "</%s> closes <%s>", name, depth ? stack[depth - 1] : "(nothing)"), 0;
            depth--;
        }
    }
    if (depth) return snprintf(why, wn, "<%s> never closed", stack[depth - 1]), 0;
    return 1;
}

/* the number of points of the polyline of a series; *declared = its data-points */
static int polyline_points(const char *html, const char *series, int *declared) {
    char key[96];
    snprintf(key, sizeof key, "data-series=\"%s\" data-points=\"", series);
    const char *p = strstr(html, key);
    if (!p) return -1;
    *declared = atoi(p + strlen(key));
    p = strstr(p, " points=\""); /* not data-points / data-source-points */
    if (!p) return -1;
    p += 9;
    const char *end = strchr(p, '"');
    int n = 0;
    for (const char *x = p; end && x < end; x++) n += *x == ',';
    return n;
}

static void test_run(void) {
    char ids[16][16];
    int n_exp = 0;
    make_dataset(ids, &n_exp, 8);
    CHECK(n_exp == 8, "expected ids %d", n_exp);
    int trc = train_tiny();
    CHECK(trc == 0, "m2u-train failed (see %s/train.log)", g_dir);
    if (trc) return;
    char out[128];
    snprintf(out, sizeof out, "%s/eval", g_dir);
    int rc = t_sh("OMP_NUM_THREADS=2 %s/m2u-eval run --run %s/run --split test --kinds mucaps,musicqa --max-samples 8 "
                "--max-new-tokens 12 --out %s > %s/eval.out 2> %s/eval.err",
                M2U_BUILD_DIR, g_dir, out, g_dir, g_dir);
    CHECK(rc == 0, "m2u-eval run failed (see %s/eval.err)", g_dir);
    if (rc) return;
    char path[256];
    snprintf(path, sizeof path, "%s/eval.err", g_dir);
    char *err = slurp(path);
    CHECK(err && strstr(err, "sample 8/8") && strstr(err, "ETA"), "progress with rate/ETA on stderr: %s", err ? err : "");
    free(err);

    /* predictions.jsonl: one line per selected sample, in dataset order */
    snprintf(path, sizeof path, "%s/predictions.jsonl", out);
    char *pred = slurp(path);
    CHECK(pred != NULL, "no predictions.jsonl");
    int n = 0;
    for (char *line = pred ? strtok(pred, "\n") : NULL; line; line = strtok(NULL, "\n"), n++) {
        cJSON *o = cJSON_Parse(line);
        CHECK(o != NULL, "line %d is not JSON", n + 1);
        if (!o) continue;
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(o, "kind"));
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt"));
        const char *ref = cJSON_GetStringValue(cJSON_GetObjectItem(o, "reference"));
        CHECK(n < 8 && id && !strcmp(id, ids[n]), "line %d: id %s, expected %s", n + 1, id ? id : "?",
              n < 8 ? ids[n] : "-");
        CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "prediction")), "line %d: no prediction", n + 1);
        int musicqa = kind && !strcmp(kind, "musicqa");
        CHECK(kind && prompt && (musicqa ? strchr(prompt, '?') != NULL : strstr(prompt, "Describe this music.") != NULL),
              "line %d: prompt of a %s sample: %s", n + 1, kind ? kind : "?", prompt ? prompt : "?");
        /* the reference is the caption (mucaps) or the answer (musicqa): both state measured words */
        CHECK(ref && ref[0], "line %d: reference", n + 1);
        cJSON *sc = cJSON_GetObjectItem(o, "scores");
        double b1 = cJSON_GetNumberValue(cJSON_GetObjectItem(sc, "bleu_1"));
        CHECK(b1 >= 0 && b1 <= 1, "line %d: bleu_1 %g", n + 1, b1);
        cJSON *feat = cJSON_GetObjectItem(o, "features");
        CHECK(cJSON_GetArraySize(feat) == 1 && !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(feat, 0)), "mert"),
              "line %d: the mert features were fed", n + 1);
        CHECK(cJSON_IsObject(cJSON_GetObjectItem(o, "measured")), "line %d: measured attrs", n + 1);
        double nt = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "new_tokens"));
        CHECK(nt >= 1 && nt <= 12, "line %d: new_tokens %g", n + 1, nt);
        cJSON_Delete(o);
    }
    CHECK(n == 8, "predictions.jsonl has %d lines, expected 8", n);
    free(pred);

    /* report.json */
    snprintf(path, sizeof path, "%s/report.json", out);
    char *rj = slurp(path);
    cJSON *r = rj ? cJSON_Parse(rj) : NULL;
    CHECK(r != NULL, "report.json missing or not JSON");
    free(rj);
    if (r) {
        cJSON *ev = cJSON_GetObjectItem(r, "evaluation");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "n")) == 8, "evaluation.n");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "checkpoint_step")) == 6, "the newest checkpoint (step 6)");
        cJSON *cap = cJSON_GetObjectItem(r, "captions");
        const char *groups[3] = {"all", "mucaps", "musicqa"};
        for (int g = 0; g < 3; g++) {
            cJSON *gg = cJSON_GetObjectItem(cap, groups[g]);
            CHECK(gg != NULL, "captions.%s", groups[g]);
            const char *ks[6] = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l"};
            for (int k = 0; k < 6; k++) {
                cJSON *v = cJSON_GetObjectItem(gg, ks[k]);
                double x = cJSON_GetNumberValue(v);
                CHECK(cJSON_IsNumber(v) && x >= 0 && x <= 1, "captions.%s.%s = %g", groups[g], ks[k], x);
            }
            double cd = cJSON_GetNumberValue(cJSON_GetObjectItem(gg, "cider_d"));
            CHECK(cd >= 0 && cd <= 10, "captions.%s.cider_d = %g", groups[g], cd);
        }
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cap, "mucaps"), "n")) == 4 &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cap, "musicqa"), "n")) == 4,
              "4 + 4 items per kind");
        cJSON *at = cJSON_GetObjectItem(r, "attributes");
        for (int a = 0; a < M2U_ATTR_COUNT; a++) {
            cJSON *x = cJSON_GetObjectItem(at, m2u_attr_name((m2u_attr)a));
            double nm = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "n_measured"));
            double ns = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "n_stated"));
            double nc = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "n_correct"));
            CHECK(nm >= ns && ns >= nc && nc >= 0, "%s counts %g %g %g", m2u_attr_name((m2u_attr)a), nm, ns, nc);
            cJSON *ra = cJSON_GetObjectItem(x, "reference_accuracy");
            /* references are describe.c's texts of the measured values: the parser must agree exactly */
            CHECK(cJSON_IsNull(ra) || cJSON_GetNumberValue(ra) == 1.0, "%s reference accuracy %g",
                  m2u_attr_name((m2u_attr)a), cJSON_GetNumberValue(ra));
            cJSON *cm = cJSON_GetObjectItem(cJSON_GetObjectItem(x, "confusion"), "counts");
            double sum = 0;
            for (int i = 0; i < cJSON_GetArraySize(cm); i++)
                for (int j = 0; j < cJSON_GetArraySize(cJSON_GetArrayItem(cm, i)); j++)
                    sum += cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j));
            CHECK(sum == nm, "%s confusion sums to %g, measured %g", m2u_attr_name((m2u_attr)a), sum, nm);
        }
        /* the 8 test samples s003..s031 all have a tempo; the key of s007 (confidence 0.2, i % 7 == 0) is unknown */
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(at, "tempo"), "n_measured")) == 8,
              "tempo measured for all 8");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(at, "key"), "n_measured")) == 7,
              "key measured for 7");
        cJSON *ref_ag = cJSON_GetObjectItem(cJSON_GetObjectItem(at, "mood"), "reference_agreement");
        CHECK(cJSON_IsNumber(ref_ag) && cJSON_GetNumberValue(ref_ag) > 0, "mood stated by some references");
        cJSON *tr = cJSON_GetObjectItem(r, "training");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(tr, "steps_logged")) == 6, "6 training steps in the report");
        cJSON_Delete(r);
    }

    /* report.html: balanced, the curves of the 6 steps, a heatmap per attribute */
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    CHECK(html != NULL, "no report.html");
    if (html) {
        char why[128] = "";
        CHECK(html_balanced(html, why, sizeof why), "report.html: %s", why);
        CHECK(!strstr(html, "<script"), "no script");
        CHECK(count_str(html, "http://") == count_str(html, "xmlns=\"http://www.w3.org/2000/svg\""),
              "no external resources");
        int decl = 0, pts = polyline_points(html, "train loss", &decl);
        CHECK(pts == 6 && decl == 6, "train loss polyline has %d points (declared %d), expected 6", pts, decl);
        pts = polyline_points(html, "held-out loss", &decl);
        /* start (step 0), eval at steps 3 (eval_every 3; not at the last step), done at step 6 */
        CHECK(pts == 3 && decl == 3, "held-out polyline has %d points, expected 3", pts);
        CHECK(count_str(html, "class=\"heatmap\"") == M2U_ATTR_COUNT, "one heatmap per attribute");
        CHECK(count_str(html, "<rect class=\"cell\"") == 6 * 7 + 24 * 25 + 2 * 3 + 3 * 4 + 4 * 5,
              "heatmap cells: %d", count_str(html, "<rect class=\"cell\""));
        CHECK(count_str(html, "<table") == count_str(html, "</table>") && count_str(html, "<table") == 3, "3 tables");
        free(html);
    }
    snprintf(path, sizeof path, "%s/report.md", out);
    char *md = slurp(path);
    CHECK(md && strstr(md, "| all | 8 |") && strstr(md, "### Attribute agreement"), "report.md tables");
    free(md);

    /* batched decoding answers exactly as one sequence at a time, for any batch size */
    for (int bs = 1; bs <= 3; bs += 2) {
        char out_b[160], pb[256];
        snprintf(out_b, sizeof out_b, "%s/eval_b%d", g_dir, bs);
        CHECK(t_sh("OMP_NUM_THREADS=2 %s/m2u-eval run --run %s/run --split test --kinds mucaps,musicqa --max-samples 8 "
                 "--max-new-tokens 12 --batch %d --out %s > /dev/null 2>&1",
                 M2U_BUILD_DIR, g_dir, bs, out_b) == 0,
              "m2u-eval run --batch %d failed", bs);
        snprintf(path, sizeof path, "%s/predictions.jsonl", out);
        snprintf(pb, sizeof pb, "%s/predictions.jsonl", out_b);
        char *a8 = slurp(path), *ab = slurp(pb);
        int same = 0, lines = 0;
        for (char *sa = NULL, *sb = NULL, *la = a8 ? strtok_r(a8, "\n", &sa) : NULL, *lb = ab ? strtok_r(ab, "\n", &sb) : NULL;
             la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb)) {
            cJSON *x = cJSON_Parse(la), *y = cJSON_Parse(lb);
            const cJSON *px = cJSON_GetObjectItemCaseSensitive(x, "prediction"), *py = cJSON_GetObjectItemCaseSensitive(y, "prediction");
            lines++;
            same += cJSON_IsString(px) && cJSON_IsString(py) && !strcmp(px->valuestring, py->valuestring);
            cJSON_Delete(x), cJSON_Delete(y);
        }
        CHECK(lines == 8 && same == 8, "--batch %d: %d of %d predictions equal the batch-8 run's", bs, same, lines);
        free(a8), free(ab);
    }

    /* bad input is refused with a reason */
    CHECK(t_sh("%s/m2u-eval run --run %s/nope --out %s/x 2> /dev/null", M2U_BUILD_DIR, g_dir, g_dir) == 1,
          "a missing run is an error");
    CHECK(t_sh("%s/m2u-eval run --run %s/run --kinds mucaps,bogus 2> /dev/null", M2U_BUILD_DIR, g_dir) == 1,
          "an unknown kind is an error");
    /* MERT features of another shape than the run's adapter (3 x 8 for 4 x 8): refused before
       any answer, naming the shard, the column and both shapes (used to be zero-padded) */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/data_bad", g_dir);
    make_small_dataset(bad, 3, 8);
    CHECK(t_sh("%s/m2u-eval run --run %s/run --data %s/manifest.json --split test --out %s/eval_bad 2> %s/bad.err",
             M2U_BUILD_DIR, g_dir, bad, g_dir, g_dir) == 1,
          "features [3, 8] accepted for an adapter of 4 x 8 (see %s/bad.err)", g_dir);
    CHECK(t_sh("grep -qF \"data_bad/shard-00000.h5: column 'mert' holds [3, 8] per sample, but the model expects [4, 8]\" "
             "%s/bad.err", g_dir) == 0,
          "no clear shape message (see %s/bad.err)", g_dir);
}

/* ---- 3. curves only, from a written metrics.jsonl ---------------------------------------- */

static int is_near(const uint8_t *p, int r, int g, int b) {
    return abs(p[0] - r) < 24 && abs(p[1] - g) < 24 && abs(p[2] - b) < 24;
}

static void test_curves_and_render(void) {
    char run[128], path[256];
    snprintf(run, sizeof run, "%s/fake_run", g_dir);
    t_sh("mkdir -p %s", run);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"event\": \"start\", \"steps\": 40, \"ranks\": 1, \"eval_loss\": 10.5}\n");
    for (int s = 1; s <= 40; s++) {
        double loss = 10.0 * exp(-s / 15.0) + 1.0, lr = s < 5 ? 1e-3 * s / 5 : 1e-3 * (1 - (s - 5) / 40.0);
        fprintf(f,
                "{\"step\": %d, \"epoch\": 0, \"loss\": %.9g, \"lr\": %.6g, \"grad_norm\": 1.5, \"tokens\": 512, "
                "\"step_s\": 0.1, \"tokens_per_s\": %.1f}\n",
                s, s == 20 ? 99.0 : loss, lr, 5000.0 + 10 * s);
        if (s % 10 == 0 && s < 40) fprintf(f, "{\"event\": \"eval\", \"step\": %d, \"eval_loss\": %.6f}\n", s, 9.0 - s / 10.0);
        if (s == 25) /* an older trainer's NaN (not JSON), and a held-out loss of null (no held-out data) */
            fprintf(f, "{\"event\": \"eval\", \"step\": 25, \"eval_loss\": nan}\n"
                       "{\"event\": \"eval\", \"step\": 26, \"eval_loss\": null}\n");
        if (s == 20) /* a resumed run logs step 20 again: the last record wins */
            fprintf(f, "{\"step\": 20, \"epoch\": 0, \"loss\": %.9g, \"lr\": %.6g, \"grad_norm\": 1.5, \"tokens\": 512, "
                       "\"step_s\": 0.1, \"tokens_per_s\": 5200}\n",
                    loss, lr);
    }
    fprintf(f, "{\"event\": \"sample\", \"instruction\": \"q\", \"expected\": \"a\", \"generated\": \"b\"}\n");
    fprintf(f, "{\"event\": \"done\", \"step\": 40, \"train_loss\": 1.7, \"eval_loss\": 5.000000, \"seconds\": 4.2, "
               "\"step_s\": {\"data\": 0.001, \"forward\": 0.05, \"backward\": 0.04, \"allreduce\": 0, \"optimizer\": 0.001}}\n");
    fprintf(f, "{\"step\": 41, \"epoch\": 0, \"lo"); /* torn line of a killed run */
    fclose(f);
    char out[160];
    snprintf(out, sizeof out, "%s/curves", g_dir);
    int rc = t_sh("%s/m2u-eval report --run %s --out %s > /dev/null 2> %s/report.err", M2U_BUILD_DIR, run, out, g_dir);
    CHECK(rc == 0, "m2u-eval report failed (see %s/report.err)", g_dir);
    /* the lines left out are named file:line, never dropped unseen */
    int nan_line = 0, torn_line = 0;
    {
        char *m = slurp(path), *er;
        int ln = 1;
        for (char *q = m; q && *q; q++) {
            if (!strncmp(q, "\"eval_loss\": nan}", 17)) nan_line = ln;
            if (!strncmp(q, "\"lo", 3) && q[3] == '\0') torn_line = ln;
            ln += *q == '\n';
        }
        free(m);
        char want[512], errp[256];
        snprintf(errp, sizeof errp, "%s/report.err", g_dir);
        er = slurp(errp);
        snprintf(want, sizeof want, "%s:%d is not a JSON object; skipped", path, nan_line);
        CHECK(nan_line && er && strstr(er, want), "report.err lacks '%s': %s", want, er ? er : "");
        snprintf(want, sizeof want, "%s:%d is not a JSON object; skipped", path, torn_line);
        CHECK(torn_line && er && strstr(er, want), "report.err lacks '%s': %s", want, er ? er : "");
        free(er);
    }
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    CHECK(html != NULL, "no curves report.html");
    if (!html) return;
    char why[128] = "";
    CHECK(html_balanced(html, why, sizeof why), "curves report.html: %s", why);
    int decl = 0;
    int pts = polyline_points(html, "train loss", &decl);
    CHECK(pts == 40 && decl == 40, "train loss: %d points (declared %d), expected 40 (duplicate step 20 merged)", pts, decl);
    pts = polyline_points(html, "held-out loss", &decl);
    CHECK(pts == 5 && decl == 5, "held-out loss: %d points, expected 5 (start, 3 evals, done)", pts);
    CHECK(count_str(html, "<circle class=\"marker\" data-series=\"held-out loss\"") == 5, "5 held-out markers");
    pts = polyline_points(html, "lr", &decl);
    CHECK(pts == 40, "lr: %d points", pts);
    CHECK(count_str(html, "<svg class=\"chart\"") == 3 && !strstr(html, "class=\"heatmap\""),
          "3 charts, no heatmaps in a curves-only report");
    /* the resumed record replaced the spike: no point of the loss curve sits at the top of a 99-high axis */
    snprintf(path, sizeof path, "%s/report.json", out);
    char *rj = slurp(path);
    cJSON *r = rj ? cJSON_Parse(rj) : NULL;
    cJSON *tr = cJSON_GetObjectItem(r, "training");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(tr, "steps_logged")) == 40, "steps_logged");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(tr, "lines_skipped")) == 2, "the NaN and the torn line are skipped");
    cJSON *skl = cJSON_GetObjectItem(tr, "skipped_lines");
    CHECK(cJSON_GetArraySize(skl) == 2 && cJSON_GetNumberValue(cJSON_GetArrayItem(skl, 0)) == nan_line &&
              cJSON_GetNumberValue(cJSON_GetArrayItem(skl, 1)) == torn_line,
          "report.json skipped_lines: want [%d, %d]", nan_line, torn_line);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(tr, "held_out")) == 5, "5 held-out losses");
    cJSON *hl = cJSON_GetArrayItem(cJSON_GetObjectItem(tr, "held_out"), 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(hl, "step")) == 0 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(hl, "eval_loss")) == 10.5,
          "the start record is the step-0 held-out loss");
    double first = cJSON_GetNumberValue(cJSON_GetObjectItem(tr, "first_loss"));
    CHECK(fabs(first - (10.0 * exp(-1 / 15.0) + 1.0)) < 1e-6, "first loss %g", first);
    cJSON_Delete(r);
    free(rj);
    /* every y of the train loss lies below 15 on a loss axis ~[1, 11]: the 99 spike was replaced */
    const char *p = strstr(html, "data-series=\"train loss\"");
    p = p ? strstr(p, " points=\"") : NULL;
    p = p ? p + 9 : NULL;
    double miny = 1e9;
    for (int i = 0; p && i < 40; i++) {
        double x, y;
        if (sscanf(p, "%lf,%lf", &x, &y) != 2) break;
        if (y < miny) miny = y;
        p = strchr(p, ' ');
        if (!p) break;
        p++;
    }
    CHECK(miny > 34 - 1 && miny < 60, "the highest loss point (step 1) sits near the top of the plot: y %g", miny);

    /* headless Chromium: the page renders and the plots are visible */
    if (t_sh("command -v chromium > /dev/null 2>&1") != 0) {
        printf("SKIP rendering check: chromium is not installed (Debian package: chromium)\n");
        free(html);
        return;
    }
    char png[192];
    snprintf(png, sizeof png, "%s/shot.png", g_dir);
    rc = t_sh("cd %s && HOME=%s timeout 120 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars "
            "--screenshot=%s --window-size=1200,1600 file://%s/report.html > %s/chromium.log 2>&1",
            g_dir, g_dir, png, out, g_dir);
    CHECK(rc == 0, "chromium failed (see %s/chromium.log)", g_dir);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int prc = rc == 0 ? png_read(png, &rgb, &w, &h) : -1;
    CHECK(prc == 0, "screenshot: %s", png_err);
    if (prc == 0) {
        CHECK(w == 1200 && h == 1600, "screenshot is %dx%d", w, h);
        long nonwhite = 0, blue = 0, red = 0, green = 0, purple = 0;
        for (long i = 0; i < (long)w * h; i++) {
            const uint8_t *px = rgb + i * 3;
            nonwhite += px[0] < 240 || px[1] < 240 || px[2] < 240;
            blue += is_near(px, 0x1f, 0x77, 0xb4);
            red += is_near(px, 0xd6, 0x27, 0x28);
            green += is_near(px, 0x2c, 0xa0, 0x2c);
            purple += is_near(px, 0x94, 0x67, 0xbd);
        }
        printf("render: %ld non-white pixels; loss %ld, held-out %ld, lr %ld, tokens/s %ld pixels\n", nonwhite, blue,
               red, green, purple);
        CHECK(nonwhite > (long)w * h / 100, "the page is blank (%ld non-white pixels)", nonwhite);
        CHECK(blue > 300 && red > 100 && green > 300 && purple > 300,
              "plot colours missing: loss %ld, held-out %ld, lr %ld, tokens/s %ld", blue, red, green, purple);
        free(rgb);
    }
    /* the full report's heatmaps too */
    snprintf(png, sizeof png, "%s/shot_eval.png", g_dir);
    if (access(g_dir, F_OK) == 0 && t_sh("test -f %s/eval/report.html", g_dir) == 0) {
        rc = t_sh("cd %s && HOME=%s timeout 120 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars "
                "--screenshot=%s --window-size=1200,4000 file://%s/eval/report.html > %s/chromium2.log 2>&1",
                g_dir, g_dir, png, g_dir, g_dir);
        prc = rc == 0 ? png_read(png, &rgb, &w, &h) : -1;
        CHECK(prc == 0, "eval screenshot: %s", rc ? "chromium failed" : png_err);
        if (prc == 0) {
            long cells = 0;
            for (long i = 0; i < (long)w * h; i++) {
                const uint8_t *px = rgb + i * 3;
                /* heatmap shades: between white and #1f5fa8 with blue dominant */
                cells += px[2] > px[0] + 30 && px[2] > px[1] + 10 && !is_near(px, 0x1f, 0x77, 0xb4);
            }
            CHECK(cells > 2000, "heatmap cells not visible (%ld bluish pixels)", cells);
            free(rgb);
        }
    }
    free(html);
}

/* Finite values near +-DBL_MAX in a damaged metrics.jsonl make a chart's span infinite: the
 * report still renders (the tick count once went through a cast from NaN: undefined behaviour,
 * which the sanitizer build of m2u-eval stops on). */
static void test_extreme_values(void) {
    char run[128], path[256], out[160];
    snprintf(run, sizeof run, "%s/extreme_run", g_dir);
    t_sh("mkdir -p %s", run);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "write %s", path);
    if (!f) return;
    fprintf(f, "{\"event\": \"start\", \"steps\": 3, \"ranks\": 1}\n");
    for (int s = 1; s <= 3; s++)
        fprintf(f, "{\"step\": %d, \"loss\": %s, \"lr\": 1e-3, \"tokens_per_s\": 100}\n", s,
                s == 1 ? "1.7e308" : s == 2 ? "-1.7e308" : "2.5");
    fclose(f);
    snprintf(out, sizeof out, "%s/extreme", g_dir);
    int rc = t_sh("%s/m2u-eval report --run %s --out %s > /dev/null 2> %s/extreme.err", M2U_BUILD_DIR, run, out, g_dir);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = rc == 0 ? slurp(path) : NULL;
    char why[128] = "";
    CHECK(rc == 0 && html && html_balanced(html, why, sizeof why), "report of +-1.7e308 losses: exit %d, %s (see %s/extreme.err)",
          rc, why, g_dir);
    free(html);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/m2u_evalrep_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_parser();
    test_run();
    test_curves_and_render();
    test_extreme_values();
    if (!t_fail && !getenv("M2U_KEEP_TEST_DIR")) t_sh("rm -rf %s", g_dir);
    else fprintf(stderr, "kept %s for inspection\n", g_dir);
    return t_finish("test_eval_report");
}
