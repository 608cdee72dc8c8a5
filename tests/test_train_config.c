/* The trainer's YAML config: the six recipes load, dumps load back identical,
 * every refusal names file:line (or the override) exactly, overrides are typed
 * by the schema, defaults and derived defaults apply, files are checked. */
#include "config.h"
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONFIGS M2U_FIXTURES "/../../configs"

/* init + parse `yaml` (named cfg/x.yaml) + overrides + finalize; the struct is freed. */
static int run_cfg(const char *yaml, const char *const *ov, int n_ov, unsigned flags, m2u_train_config *keep) {
    m2u_train_config c;
    m2u_clear_error();
    if (m2u_train_config_init(&c) != 0) return -1;
    int rc = m2u_train_config_parse(&c, yaml, strlen(yaml), "cfg/x.yaml");
    for (int i = 0; rc == 0 && i < n_ov; i++) rc = m2u_train_config_override(&c, ov[i]);
    if (rc == 0) rc = m2u_train_config_finalize(&c, flags);
    if (keep && rc == 0)
        *keep = c;
    else
        m2u_train_config_free(&c);
    return rc;
}

static void expect_err_at(int line, const char *yaml, const char *const *ov, int n_ov, unsigned flags,
                          const char *want, int exact) {
    int rc = run_cfg(yaml, ov, n_ov, flags, NULL);
    const char *msg = m2u_last_error();
    CHECK(rc == -1, "line %d: accepted", line);
    if (exact)
        CHECK(strcmp(msg, want) == 0, "line %d:\n  got  %s\n  want %s", line, msg, want);
    else
        CHECK(strstr(msg, want) != NULL, "line %d:\n  got  %s\n  want ...%s...", line, msg, want);
}
/* exact message from parsing (no overrides, no file checks) */
#define ERR_IS(yaml, want) expect_err_at(__LINE__, yaml, NULL, 0, M2U_CFG_NO_FILE_CHECKS, want, 1)
#define ERR_HAS(yaml, want) expect_err_at(__LINE__, yaml, NULL, 0, M2U_CFG_NO_FILE_CHECKS, want, 0)
#define OV_ERR_IS(ov, want)                                                                     \
    do {                                                                                        \
        const char *o_[] = {ov};                                                                \
        expect_err_at(__LINE__, BASE, o_, 1, M2U_CFG_NO_FILE_CHECKS, want, 1);                  \
    } while (0)

/* The smallest valid config (all else defaults). */
#define BASE "model:\n  llm: m\ntrain:\n  stage: 1\n  data: d.json\n"

static void test_defaults(void) {
    m2u_train_config c;
    CHECK(run_cfg(BASE, NULL, 0, M2U_CFG_NO_FILE_CHECKS, &c) == 0, "%s", m2u_last_error());
    CHECK(c.train.lr == 1e-4 && c.train.min_lr == 1e-6 && c.train.batch == 1 && c.train.accum == 1, "optimiser");
    CHECK(c.train.beta1 == 0.9 && c.train.beta2 == 0.95 && c.train.eps == 1e-8 && c.train.weight_decay == 0.05, "adamw");
    CHECK(c.train.schedule == M2U_SCHEDULE_COSINE && c.train.warmup_steps == 0 && c.train.max_len == 1024, "sched");
    CHECK(c.train.ignore_index == -100 && c.train.shuffle == 1 && c.train.split == M2U_SPLIT_TRAIN, "train misc");
    CHECK(c.eval.split == M2U_SPLIT_VALID, "eval split");
    CHECK(c.lora.r == 16 && c.lora.alpha == 16 && c.lora.dropout == 0 && c.lora.targets == 0x7f, "lora");
    CHECK(c.model.aud_tokens == 8 && c.model.query_layer == 6 && c.model.modalities == 7, "model");
    CHECK(c.model.music_tokens == 25 && c.model.music_dim == 1024 && c.model.image_tokens == 197 &&
              c.model.image_dim == 768 && c.model.video_tokens == 3137 && c.model.video_dim == 768,
          "feature shapes");
    CHECK(c.model.projector.d_model == 512 && c.model.projector.heads == 4 && c.model.projector.enc_layers == 4 &&
              c.model.projector.dec_layers == 4 && c.model.projector.ffn == 2048 && c.model.projector.n_out == 128 &&
              c.model.projector.out_dim == 768 && c.model.projector.target_scale == 10.0,
          "projector");
    CHECK(c.model.compat == M2U_COMPAT_PAPER && c.model.decoder == M2U_DECODER_MUSICGEN, "enums");
    CHECK(strstr(c.train.prompt_template, "### Instruction:\n{instruction}\n\n### Response:") != NULL, "prompt");
    /* derived */
    CHECK(!strcmp(c.run.name, "x") && !strcmp(c.run.out_dir, "runs/x"), "name %s out %s", c.run.name, c.run.out_dir);
    CHECK(!strcmp(c.model.tokenizer, "m/tokenizer.json"), "tokenizer %s", c.model.tokenizer);
    CHECK(c.train.kinds == 0x3f, "kinds all: %x", c.train.kinds);
    CHECK(c.train.trainable == (M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_ADAPTERS |
                                M2U_TRAIN_GATES | M2U_TRAIN_PREFIX_QUERY),
          "stage 1 trainable %x", c.train.trainable);
    CHECK(!strcmp(m2u_train_config_origin(&c, "train.stage"), "cfg/x.yaml:4"), "origin %s",
          m2u_train_config_origin(&c, "train.stage"));
    CHECK(!strcmp(m2u_train_config_origin(&c, "train.lr"), "cfg/x.yaml"), "default origin");
    CHECK(m2u_train_config_origin(&c, "train.nope") == NULL, "unknown origin");
    CHECK(m2u_train_config_fail(&c, "train.stage", "too deep for %d layers", 4) == -1 &&
              !strcmp(m2u_last_error(), "cfg/x.yaml:4: too deep for 4 layers"),
          "fail: %s", m2u_last_error());
    CHECK(!strcmp(m2u_train_config_value_name("train.trainable", 7), "aud_embeddings") &&
              m2u_train_config_value_name("train.trainable", 8) == NULL && m2u_train_config_value_name("run.seed", 0) == NULL,
          "value names");
    m2u_train_config_free(&c);

    /* per-stage trainable sets, paper and released */
    const unsigned paper[3] = {M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_ADAPTERS |
                                   M2U_TRAIN_GATES | M2U_TRAIN_PREFIX_QUERY,
                               M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_PROJECTOR |
                                   M2U_TRAIN_AUD_EMBEDDINGS,
                               0xff};
    for (int st = 1; st <= 3; st++) {
        char ov[32];
        snprintf(ov, sizeof ov, "train.stage=%d", st);
        const char *o[] = {ov, "model.compat=released"};
        CHECK(run_cfg(BASE, o, 1, M2U_CFG_NO_FILE_CHECKS, &c) == 0, "%s", m2u_last_error());
        CHECK(c.train.trainable == paper[st - 1], "paper stage %d: %x", st, c.train.trainable);
        m2u_train_config_free(&c);
        CHECK(run_cfg(BASE, o, 2, M2U_CFG_NO_FILE_CHECKS, &c) == 0, "%s", m2u_last_error());
        CHECK(!(c.train.trainable & M2U_TRAIN_GATES) && (c.train.trainable & M2U_TRAIN_PREFIX_QUERY), "released %d", st);
        if (st == 3) CHECK(!(c.train.trainable & (M2U_TRAIN_ADAPTERS | M2U_TRAIN_PROJECTOR)), "released stage 3");
        m2u_train_config_free(&c);
    }

    /* a null value resets a key to its default; an empty section is fine */
    CHECK(run_cfg(BASE "  lr:\n  batch: ~\n  kinds: null\nlora:\neval: {}\n", NULL, 0, M2U_CFG_NO_FILE_CHECKS, &c) == 0,
          "%s", m2u_last_error());
    CHECK(c.train.lr == 1e-4 && c.train.batch == 1 && c.train.kinds == 0x3f, "null resets");
    m2u_train_config_free(&c);
    /* explicit lists, flow and block, YAML booleans, quoted numbers */
    CHECK(run_cfg(BASE "  kinds:\n    - muedit\n    - text\n  shuffle: off\n  batch: \"3\"\n"
                       "model:\n  modalities: []\n  decoder: audioldm2\n",
                  NULL, 0, M2U_CFG_NO_FILE_CHECKS, &c) == -1,
          "model twice must be refused");
    CHECK(run_cfg("model: {llm: m, modalities: [], decoder: audioldm2}\ntrain:\n  stage: 2\n  data: d.json\n"
                  "  kinds:\n    - muedit\n    - text\n  shuffle: off\n  batch: \"3\"\n",
                  NULL, 0, M2U_CFG_NO_FILE_CHECKS, &c) == 0,
          "%s", m2u_last_error());
    CHECK(c.train.kinds == (M2U_KIND_MUEDIT | M2U_KIND_TEXT) && c.train.shuffle == 0 && c.train.batch == 3, "lists");
    CHECK(c.model.modalities == 0 && c.model.decoder == M2U_DECODER_AUDIOLDM2, "empty list, enum");
    m2u_train_config_free(&c);
    /* an empty file has every default and only misses the required keys */
    expect_err_at(__LINE__, "", NULL, 0, M2U_CFG_NO_FILE_CHECKS,
                  "cfg/x.yaml: missing required key 'model.llm' (Hugging Face LLaMA-2 directory (`config.json`, "
                  "`*.safetensors`); frozen. Its `config.json` sets the LLM sizes.)",
                  1);
    ERR_IS("model: {llm: m}\ntrain: {data: d}\n", "cfg/x.yaml: missing required key 'train.stage' (1: encoder side "
                                                  "(captioning), 2: decoder side (caption -> conditioning), 3: "
                                                  "instruction tuning.)");
    ERR_HAS("model: {llm: m}\ntrain: {stage: 1}\n", "cfg/x.yaml: missing required key 'train.data'");
}

static void test_errors(void) {
    /* the two formats the issue spells out */
    ERR_IS(BASE "  lrr: 3\n", "cfg/x.yaml:6: unknown key 'lrr' in 'train' (did you mean 'lr'?)");
    ERR_IS(BASE "\n  batch: two\n", "cfg/x.yaml:7: train.batch must be an integer >= 1, got 'two'");
    /* types and ranges */
    ERR_IS(BASE "  batch: 0\n", "cfg/x.yaml:6: train.batch must be an integer >= 1, got '0'");
    ERR_IS(BASE "  batch: 1.5\n", "cfg/x.yaml:6: train.batch must be an integer >= 1, got '1.5'");
    ERR_IS(BASE "  batch: 99999999999\n", "cfg/x.yaml:6: train.batch must be an integer >= 1, got '99999999999'");
    ERR_IS(BASE "  lr: -1e-4\n", "cfg/x.yaml:6: train.lr must be a number > 0, got '-1e-4'");
    ERR_IS(BASE "  lr: .nan\n", "cfg/x.yaml:6: train.lr must be a number > 0, got '.nan'");
    ERR_IS(BASE "  beta2: 1\n", "cfg/x.yaml:6: train.beta2 must be a number in [0, 1), got '1'");
    ERR_IS("train:\n  stage: 4\n", "cfg/x.yaml:2: train.stage must be an integer in [1, 3], got '4'");
    ERR_IS(BASE "  shuffle: maybe\n", "cfg/x.yaml:6: train.shuffle must be true or false, got 'maybe'");
    ERR_IS(BASE "  schedule: cosin\n",
           "cfg/x.yaml:6: train.schedule must be one of cosine, constant, linear, got 'cosin' (did you mean 'cosine'?)");
    ERR_IS(BASE "  split: dev\n", "cfg/x.yaml:6: train.split must be one of train, valid, test, got 'dev'");
    ERR_IS(BASE "  precision: fp16\n",
           "cfg/x.yaml:6: train.precision must be one of fp32, bf16, got 'fp16' (did you mean 'fp32'?)");
    /* lists */
    ERR_IS(BASE "  kinds: [mucaps,\n          musiqa]\n",
           "cfg/x.yaml:7: train.kinds must be a list of mucaps, musicqa, muedit, muimage, muvideo, text; 'musiqa' is "
           "not one of them (did you mean 'musicqa'?)");
    ERR_IS(BASE "  kinds: [text, text]\n", "cfg/x.yaml:6: train.kinds lists 'text' twice");
    ERR_IS(BASE "  kinds: text\n", "cfg/x.yaml:6: train.kinds must be a list of mucaps, musicqa, muedit, muimage, "
                                   "muvideo, text, written [a, b], got 'text'");
    ERR_IS(BASE "  kinds: [[text]]\n", "cfg/x.yaml:6: train.kinds must be a list of mucaps, musicqa, muedit, "
                                       "muimage, muvideo, text; its items must be names, got a list");
    ERR_IS(BASE "  trainable: []\n", "cfg/x.yaml:6: train.trainable must not be empty (it must be a list of lora, "
                                     "bias, norm, adapters, gates, prefix_query, projector, aud_embeddings); leave "
                                     "it out for the default (per stage (below))");
    ERR_IS(BASE "  batch: [1]\n", "cfg/x.yaml:6: train.batch must be an integer >= 1, got a list");
    ERR_IS(BASE "  lr: {a: 1}\n", "cfg/x.yaml:6: train.lr must be a number > 0, got a mapping");
    /* structure */
    ERR_IS(BASE "  stage: 2\n", "cfg/x.yaml:6: duplicate key 'stage' in 'train' (first at line 4)");
    ERR_IS(BASE "model:\n  llm: n\n", "cfg/x.yaml:6: duplicate key 'model' at the top level (first at line 1)");
    ERR_IS("trian:\n  stage: 1\n", "cfg/x.yaml:1: unknown key 'trian' at the top level (did you mean 'train'?)");
    ERR_IS("model:\n  lr: 1\n", "cfg/x.yaml:2: unknown key 'lr' in 'model' (did you mean 'train.lr'?)");
    ERR_IS("model:\n  projector:\n    dmodel: 3\n",
           "cfg/x.yaml:3: unknown key 'dmodel' in 'model.projector' (did you mean 'd_model'?)");
    ERR_IS("eval:\n  zzz: 1\n", "cfg/x.yaml:2: unknown key 'zzz' in 'eval' (valid keys: split, batches, max_new_tokens)");
    ERR_IS("train.lr: 1\n", "cfg/x.yaml:1: key 'train.lr' at the top level: nest sections instead of dotted keys "
                            "(dotted keys are for command-line overrides)");
    ERR_IS("model:\n  projector: 3\n", "cfg/x.yaml:2: 'model.projector' is a section: it must be a mapping of its "
                                       "keys (d_model, heads, enc_layers, dec_layers, ffn, n_out, out_dim, "
                                       "target_scale), got a scalar");
    ERR_IS("- a\n- b\n", "cfg/x.yaml:1: the top level must be a mapping of sections (run, model, lora, train, eval), "
                         "got a list");
    ERR_IS("model: {llm: m}\n---\nmodel: {llm: n}\n",
           "cfg/x.yaml:2: a second YAML document; a config file holds exactly one");
    ERR_IS("[a]: 1\n", "cfg/x.yaml:1: keys must be names, got a list at the top level");
    /* aliases, anchors and tags */
    ERR_IS("train:\n  lr: &x 0.1\n  min_lr: *x\n",
           "cfg/x.yaml:2: YAML anchors (&x) are not supported; write each value out");
    ERR_IS("train:\n  lr: *x\n", "cfg/x.yaml:2: YAML aliases (*x) are not supported; write the value out");
    ERR_IS("train:\n  lr: !!float 1\n",
           "cfg/x.yaml:2: YAML tags (tag:yaml.org,2002:float) are not supported; the schema types every key");
    /* syntax */
    ERR_HAS("train:\n  stage: 1\n   data: x\n", "cfg/x.yaml:3: YAML syntax error: mapping values are not allowed");
    ERR_HAS("train: [1, 2\n", "cfg/x.yaml:2: YAML syntax error:");
    ERR_HAS("train:\n\tstage: 1\n", "cfg/x.yaml:2: YAML syntax error:");
    ERR_IS("train:\n  stage: 1\n  data: \xff\n", "cfg/x.yaml:3: YAML syntax error: invalid leading UTF-8 octet");
    /* rules between keys */
    ERR_IS(BASE "  min_lr: 0.1\n", "cfg/x.yaml:6: train.min_lr (0.1) must not exceed train.lr (0.0001)");
    ERR_IS(BASE "  max_steps: 5\n  warmup_steps: 6\n",
           "cfg/x.yaml:7: train.warmup_steps (6) must not exceed train.max_steps (5)");
    /* tokens a micro-batch: 65536 x 65536 overflowed an int in the model's buffers */
    ERR_HAS(BASE "  batch: 65536\n  max_len: 65536\n", "train.batch x train.max_len (65536 x 65536) is over 16777216 "
                                                     "tokens a micro-batch");
    CHECK(run_cfg(BASE "  batch: 4096\n  max_len: 4096\n", NULL, 0, M2U_CFG_NO_FILE_CHECKS, NULL) == 0,
          "4096 x 4096 tokens refused: %s", m2u_last_error());
    ERR_IS(BASE "model:\n  projector: {d_model: 30, heads: 4}\n",
           "cfg/x.yaml:6: duplicate key 'model' at the top level (first at line 1)");
    ERR_IS("model:\n  llm: m\n  projector: {d_model: 30, heads: 4}\ntrain: {stage: 1, data: d}\n",
           "cfg/x.yaml:3: model.projector.heads (4) must divide model.projector.d_model (30)");
    ERR_IS(BASE "  prompt_template: \"no slot\"\n",
           "cfg/x.yaml:6: train.prompt_template must contain '{instruction}' exactly once");
    ERR_IS(BASE "  trainable: [gates]\n" "lora: {targets: []}\nmodel2: 1\n",
           "cfg/x.yaml:8: unknown key 'model2' at the top level (did you mean 'model'?)");
    ERR_IS(BASE "  trainable: [gates, lora]\nlora: {targets: []}\n",
           "cfg/x.yaml:7: lora.targets is empty but train.trainable includes 'lora'");
    ERR_IS("model: {llm: m, compat: released}\ntrain: {stage: 1, data: d, trainable: [gates]}\n",
           "cfg/x.yaml:2: train.trainable includes 'gates' but model.compat is 'released', whose gates stay frozen "
           "at zero");
    ERR_IS("model: {llm: m, modalities: []}\ntrain: {stage: 1, data: d}\n",
           "cfg/x.yaml:1: model.modalities is empty but train.trainable includes 'adapters'");
    ERR_IS(BASE "run: {name: a/b}\n", "cfg/x.yaml:6: run.name 'a/b' may only use letters, digits, '.', '_' and '-' "
                                      "(it names the output directory)");
    /* a file that is not there */
    m2u_train_config c;
    m2u_clear_error();
    CHECK(m2u_train_config_load("/nonexistent/x.yaml", NULL, 0, 0, &c) == -1 &&
              !strcmp(m2u_last_error(), "config /nonexistent/x.yaml: No such file or directory"),
          "missing config: %s", m2u_last_error());
    CHECK(m2u_train_config_load("/tmp", NULL, 0, 0, &c) == -1 && !strcmp(m2u_last_error(), "config /tmp: not a regular file"),
          "directory as config: %s", m2u_last_error());
}

static void test_overrides(void) {
    m2u_train_config c;
    const char *good[] = {"train.lr=3e-4", " model.modalities = music, image ", "train.kinds=[muedit]",
                          "train.shuffle=no", "model.decoder=audioldm2", "run.name=my-run",
                          "train.prompt_template='Q: {instruction}\nA:'", "lora.targets=", "train.trainable=projector",
                          "train.batch=8", "train.batch="};
    CHECK(run_cfg(BASE "  batch: 2\n", good, 11, M2U_CFG_NO_FILE_CHECKS, &c) == 0, "%s", m2u_last_error());
    CHECK(c.train.lr == 3e-4 && c.model.modalities == (M2U_MOD_MUSIC | M2U_MOD_IMAGE) &&
              c.train.kinds == M2U_KIND_MUEDIT && !c.train.shuffle && c.model.decoder == M2U_DECODER_AUDIOLDM2,
          "typed overrides");
    CHECK(!strcmp(c.run.name, "my-run") && !strcmp(c.run.out_dir, "runs/my-run"), "name -> out_dir");
    CHECK(!strcmp(c.train.prompt_template, "Q: {instruction}\nA:"), "quoted string: %s", c.train.prompt_template);
    CHECK(c.lora.targets == 0 && c.train.trainable == M2U_TRAIN_PROJECTOR, "empty list, explicit trainable");
    CHECK(c.train.batch == 1, "empty value resets to the default: %d", c.train.batch);
    CHECK(!strcmp(m2u_train_config_origin(&c, "train.lr"), "override 'train.lr=3e-4'"), "override origin");
    m2u_train_config_free(&c);
    /* an overridden model.llm moves the derived tokenizer too */
    const char *llm[] = {"model.llm=/w/llama"};
    CHECK(run_cfg(BASE, llm, 1, M2U_CFG_NO_FILE_CHECKS, &c) == 0 && !strcmp(c.model.tokenizer, "/w/llama/tokenizer.json"),
          "derived tokenizer");
    m2u_train_config_free(&c);

    OV_ERR_IS("train.lrr=3", "override 'train.lrr=3': unknown key 'train.lrr' (did you mean 'train.lr'?)");
    OV_ERR_IS("lr=3", "override 'lr=3': unknown key 'lr' (did you mean 'train.lr'?)");
    OV_ERR_IS("foo.bar=3", "override 'foo.bar=3': unknown key 'foo.bar' (keys are section.name, e.g. train.lr)");
    OV_ERR_IS("train", "override 'train': expected key=value (e.g. train.lr=3e-4)");
    OV_ERR_IS("model.projector=3", "override 'model.projector=3': 'model.projector' is a section; set one of its keys "
                                   "(d_model, heads, enc_layers, dec_layers, ffn, n_out, out_dim, target_scale) as "
                                   "model.projector.<key>=value");
    OV_ERR_IS("train.batch=two", "override 'train.batch=two': train.batch must be an integer >= 1, got 'two'");
    OV_ERR_IS("train.lr=1e-4x", "override 'train.lr=1e-4x': train.lr must be a number > 0, got '1e-4x'");
    OV_ERR_IS("model.modalities=music,,image", "override 'model.modalities=music,,image': model.modalities has an "
                                               "empty item in 'music,,image'");
    OV_ERR_IS("model.modalities=music,audio", "override 'model.modalities=music,audio': model.modalities must be a "
                                              "list of music, image, video; 'audio' is not one of them");
    OV_ERR_IS("train.trainable=[]", "override 'train.trainable=[]': train.trainable must not be empty (it must be a "
                                    "list of lora, bias, norm, adapters, gates, prefix_query, projector, "
                                    "aud_embeddings); leave it out for the default (per stage (below))");
    OV_ERR_IS("train.min_lr=1", "override 'train.min_lr=1': train.min_lr (1) must not exceed train.lr (0.0001)");
    OV_ERR_IS("model.compat=releesed", "override 'model.compat=releesed': model.compat must be one of paper, "
                                       "released, got 'releesed' (did you mean 'released'?)");
}

static int write_text(const char *path, const char *text) { return m2u_write_file_atomic(path, text, strlen(text)); }

static void test_files(void) {
    char root[] = "/tmp/m2u_cfg_XXXXXX";
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    char llm[512], yaml[2048], path[600];
    snprintf(llm, sizeof llm, "%s/llm", root);
    mkdir(llm, 0755);
    snprintf(yaml, sizeof yaml, "model:\n  llm: %s\ntrain:\n  stage: 2\n  data: %s/manifest.json\n", llm, root);
    char want[1024];
    snprintf(want, sizeof want, "cfg/x.yaml:2: model.llm: '%s' has no config.json (expected a Hugging Face LLaMA "
                                "checkpoint directory)", llm);
    expect_err_at(__LINE__, yaml, NULL, 0, 0, want, 1);
    snprintf(path, sizeof path, "%s/config.json", llm);
    write_text(path, "{}");
    snprintf(want, sizeof want, "cfg/x.yaml: model.tokenizer: '%s/tokenizer.json' does not exist", llm);
    expect_err_at(__LINE__, yaml, NULL, 0, 0, want, 0);
    snprintf(path, sizeof path, "%s/tokenizer.json", llm);
    write_text(path, "{}");
    snprintf(want, sizeof want, "cfg/x.yaml:5: train.data: '%s/manifest.json' does not exist", root);
    expect_err_at(__LINE__, yaml, NULL, 0, 0, want, 0);
    snprintf(path, sizeof path, "%s/manifest.json", root);
    mkdir(path, 0755);
    snprintf(want, sizeof want, "cfg/x.yaml:5: train.data: '%s/manifest.json' is not a regular file", root);
    expect_err_at(__LINE__, yaml, NULL, 0, 0, want, 1);
    rmdir(path);
    write_text(path, "{}");
    CHECK(run_cfg(yaml, NULL, 0, 0, NULL) == 0, "all files present: %s", m2u_last_error());
    const char *ov[] = {"model.init_from=/nonexistent/run"};
    expect_err_at(__LINE__, yaml, ov, 1, 0,
                  "override 'model.init_from=/nonexistent/run': model.init_from: '/nonexistent/run' does not exist", 0);
    snprintf(want, sizeof want, "cfg/x.yaml:2: model.llm: '%s/manifest.json' is not a directory", root);
    char ov2[600];
    snprintf(ov2, sizeof ov2, "model.llm=%s/manifest.json", root);
    const char *ovs[] = {ov2};
    expect_err_at(__LINE__, yaml, ovs, 1, 0, "is not a directory (expected a Hugging Face LLaMA checkpoint directory)",
                  0);
    CHECK(run_cfg(yaml, ovs, 1, M2U_CFG_NO_FILE_CHECKS, NULL) == 0, "no file checks: %s", m2u_last_error());

    /* the resolved dump: atomic file, loads back identical (also through m2u_train_config_load) */
    m2u_train_config a, b;
    CHECK(run_cfg(yaml, NULL, 0, 0, &a) == 0, "%s", m2u_last_error());
    snprintf(path, sizeof path, "%s/run.yaml", root);
    CHECK(m2u_train_config_save(&a, path) == 0, "%s", m2u_last_error());
    CHECK(m2u_train_config_load(path, NULL, 0, 0, &b) == 0, "%s", m2u_last_error());
    CHECK(m2u_train_config_diff(&a, &b) == NULL, "dump differs at %s", m2u_train_config_diff(&a, &b));
    m2u_train_config_free(&b);
    m2u_train_config_free(&a);
    unlink(path);
    snprintf(path, sizeof path, "%s/llm/config.json", root), unlink(path);
    snprintf(path, sizeof path, "%s/llm/tokenizer.json", root), unlink(path);
    snprintf(path, sizeof path, "%s/manifest.json", root), unlink(path);
    rmdir(llm);
    rmdir(root);
}

/* Dump to YAML and parse it back into a fresh struct: identical, and stable on a second dump. */
static void check_roundtrip(const m2u_train_config *a, const char *what) {
    char *y1 = NULL, *y2 = NULL;
    m2u_train_config b;
    CHECK(m2u_train_config_to_yaml(a, &y1) == 0, "%s: %s", what, m2u_last_error());
    if (!y1) return;
    CHECK(m2u_train_config_init(&b) == 0, "init");
    CHECK(m2u_train_config_parse(&b, y1, strlen(y1), "dump.yaml") == 0, "%s: %s\n%s", what, m2u_last_error(), y1);
    const char *d = m2u_train_config_diff(a, &b);
    CHECK(d == NULL, "%s: round trip differs at %s\n%s", what, d, y1);
    CHECK(m2u_train_config_finalize(&b, M2U_CFG_NO_FILE_CHECKS) == 0, "%s: %s", what, m2u_last_error());
    CHECK(m2u_train_config_diff(a, &b) == NULL, "%s: finalize changed %s", what, m2u_train_config_diff(a, &b));
    CHECK(m2u_train_config_to_yaml(&b, &y2) == 0 && y2 && !strcmp(y1, y2), "%s: second dump differs", what);
    m2u_train_config_free(&b);
    free(y1);
    free(y2);
}

static void test_recipes(void) {
    static const char *names[] = {"stage1", "stage2", "stage3", "tiny_stage1", "tiny_stage2", "tiny_stage3"};
    for (int i = 0; i < 6; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.yaml", CONFIGS, names[i]);
        m2u_train_config c;
        m2u_clear_error();
        int rc = m2u_train_config_load(path, NULL, 0, M2U_CFG_NO_FILE_CHECKS, &c);
        CHECK(rc == 0, "%s: %s", names[i], m2u_last_error());
        if (rc) continue;
        int st = i % 3 + 1, tiny = i >= 3;
        CHECK(c.train.stage == st && !strcmp(c.run.name, names[i]), "%s: stage/name", names[i]);
        CHECK(c.model.compat == M2U_COMPAT_PAPER && c.train.batch == (tiny ? 4 : 1) && c.train.accum == 1, "%s", names[i]);
        CHECK(c.train.beta1 == 0.9 && c.train.beta2 == 0.95 && c.train.weight_decay == 0.05 &&
                  c.train.schedule == M2U_SCHEDULE_COSINE,
              "%s: AdamW (0.9, 0.95), wd 0.05, cosine", names[i]);
        unsigned want_tr[3] = {M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_ADAPTERS | M2U_TRAIN_GATES |
                                   M2U_TRAIN_PREFIX_QUERY,
                               M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_PROJECTOR |
                                   M2U_TRAIN_AUD_EMBEDDINGS,
                               0xff};
        CHECK(c.train.trainable == want_tr[st - 1], "%s: trainable %x", names[i], c.train.trainable);
        CHECK((st == 1) == !*c.model.init_from, "%s: init_from '%s'", names[i], c.model.init_from);
        if (!tiny) {
            CHECK(c.train.epochs == (st == 3 ? 2 : 5) && c.train.max_steps == 0, "%s: epochs", names[i]);
            CHECK(c.train.lr == 1e-4 && c.train.min_lr == 1e-6 && c.train.warmup_steps == 0 && c.train.clip_grad == 0,
                  "%s: lr", names[i]);
            CHECK(c.lora.r == 16 && c.lora.targets == 0x7f && c.model.query_layer == 6 && c.train.max_len == 1024,
                  "%s: lora/model", names[i]);
            CHECK(c.model.projector.d_model == 512 && c.model.projector.n_out == 128 && c.model.projector.out_dim == 768,
                  "%s: projector", names[i]);
        } else {
            CHECK(c.train.max_steps >= 100 && c.train.max_steps <= 200 && c.train.lr == 3e-3, "%s: tiny schedule",
                  names[i]);
            CHECK(c.model.projector.d_model == 32 && c.model.projector.heads == 2 && c.model.projector.enc_layers == 1 &&
                      c.model.projector.dec_layers == 1 && c.model.projector.ffn == 64 &&
                      c.model.projector.n_out == 128 && c.model.projector.out_dim == 768,
                  "%s: tiny projector", names[i]);
            /* the shapes m2u-dataset build stores (built-in features = the real encoders' shapes) */
            CHECK(c.model.music_tokens == 25 && c.model.music_dim == 1024 && c.model.image_tokens == 197 &&
                      c.model.image_dim == 768 && c.model.video_tokens == 3137 && c.model.video_dim == 768,
                  "%s: tiny feature shapes", names[i]);
            CHECK(!strcmp(c.model.llm, "build/demo/base") && !strcmp(c.train.data, "build/demo/dataset/manifest.json") &&
                      !strcmp(c.model.tokenizer, "build/demo/base/tokenizer.json"),
                  "%s: tiny paths", names[i]);
        }
        /* the recipes write every key: no origin is left at a default */
        int defaults = 0;
        static const char *const keys[] = {"run.seed", "train.lr", "train.epochs", "lora.r", "model.projector.ffn",
                                           "eval.batches", "train.ignore_index"};
        for (int k = 0; k < 7; k++) defaults += strchr(m2u_train_config_origin(&c, keys[k]), ':') == NULL;
        CHECK(defaults == 0, "%s: %d keys left at defaults", names[i], defaults);
        check_roundtrip(&c, names[i]);
        m2u_train_config_free(&c);
    }
}

static void test_roundtrip_edges(void) {
    m2u_train_config c;
    const char *ov[] = {"train.prompt_template=\"Tab\there \\\"quoted\\\" 'single' ünïcödé: #x {instruction} \n\n"
                        "[end] - yes: no\"",
                        "run.name=stage-1.b", "train.lr=0.1", "train.min_lr=1e-300", "train.eps=3.0000000000000004e-9",
                        "train.ignore_index=0", "run.seed=2147483647", "model.init_from= ", "run.out_dir=a dir/with: colon",
                        "train.kinds=text", "lora.dropout=0.05"};
    CHECK(run_cfg(BASE, ov, 11, M2U_CFG_NO_FILE_CHECKS, &c) == 0, "%s", m2u_last_error());
    CHECK(c.train.min_lr == 1e-300 && c.train.eps == 3.0000000000000004e-9 && c.run.seed == 2147483647, "values");
    check_roundtrip(&c, "edge values");
    m2u_train_config_free(&c);
}

static void test_markdown(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    CHECK(fp != NULL, "open_memstream");
    if (!fp) return;
    m2u_train_config_doc_markdown(fp);
    fclose(fp);
    static const char *const keys[] = {"`run.keep_last`", "`model.projector.target_scale`", "`lora.targets`",
                                       "`train.ignore_index`", "`eval.max_new_tokens`", "`model.compat`",
                                       "| `train.batch` | int ≥ 1 | `1` |", "| `train.beta2` | float in [0, 1) | `0.95` |",
                                       "| `train.stage` | int in [1, 3] | **required** |"};
    for (int i = 0; i < 9; i++) CHECK(strstr(buf, keys[i]) != NULL, "markdown lacks %s", keys[i]);
    int rows = 0;
    for (const char *p = buf; (p = strstr(p, "\n| `")) != NULL; p++) rows++;
    CHECK(rows == 65, "markdown rows: %d", rows);
    CHECK(strstr(buf, "| `train.packed_weights` | one of `auto`, `on`, `off` | `auto` |") != NULL,
          "markdown lacks train.packed_weights");
    CHECK(strstr(buf, "| `train.precision` | one of `fp32`, `bf16` | `fp32` |") != NULL, "markdown lacks precision");
    CHECK(strstr(buf, "| `train.checkpoint_activations` | bool | `false` |") != NULL, "markdown lacks checkpointing");
    CHECK(strstr(buf, "| `run.memory_limit` | string | `auto` |") != NULL, "markdown lacks run.memory_limit");
    /* configs/SCHEMA.md is this text under a four-line heading: regenerate it
     * (m2u-train --schema) when the table changes */
    char *doc = NULL;
    size_t doc_len = 0;
    CHECK(m2u_read_file(M2U_FIXTURES "/../../configs/SCHEMA.md", &doc, &doc_len) == 0, "read configs/SCHEMA.md");
    const char *body = doc;
    for (int k = 0; body && k < 4; k++) body = (body = strchr(body, '\n')) ? body + 1 : NULL;
    CHECK(body && !strcmp(body, buf),
          "configs/SCHEMA.md differs from m2u-train --schema: regenerate it (keep its first four lines)");
    free(doc);
    free(buf);
}

/* Hostile sizes: very deep nesting used to take quadratic time in libyaml (a 200 KB
   file of '[' did not finish in a minute); now refused at the 65th level, at once. */
static void test_limits(void) {
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    if (!deep) return;
    size_t k = (size_t)sprintf(deep, "model:\n  llm: m\nrun:\n  name: ");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '\n';
    deep[k] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ERR_IS(deep, "cfg/x.yaml:4: nesting deeper than 64 levels (a config needs 3)");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK(secs < 10.0, "deep nesting took %.1f s", secs); /* it took 46 s before the cap */
    free(deep);
    /* block style, one level per line: the line of the 65th level is named */
    char block[8192];
    k = 0;
    for (int i = 0; i < 70; i++) k += (size_t)sprintf(block + k, "%*sk%d:\n", i, "", i);
    ERR_IS(block, "cfg/x.yaml:65: nesting deeper than 64 levels (a config needs 3)");
    /* 64 levels are still parsed (and then refused by the schema, not the limit) */
    k = (size_t)sprintf(block, "run:\n  name: ");
    for (int i = 0; i < 62; i++) block[k++] = '[';
    for (int i = 0; i < 62; i++) block[k++] = ']';
    block[k] = '\0';
    ERR_HAS(block, "run.name must be");
    /* a config larger than 1 MiB is refused before it is parsed */
    size_t big = ((size_t)1 << 20) + 1;
    char *huge = malloc(big + 1);
    if (!huge) return;
    memset(huge, '#', big);
    huge[big] = '\0';
    ERR_IS(huge, "cfg/x.yaml: 1048577 bytes, larger than a config can be (1048576); is this the right file?");
    free(huge);
}

int main(void) {
    test_defaults();
    test_errors();
    test_overrides();
    test_files();
    test_recipes();
    test_roundtrip_edges();
    test_markdown();
    test_limits();
    return t_finish("test_train_config");
}
