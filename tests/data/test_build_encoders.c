/* m2u-dataset build with encoder checkpoints: the shards must hold exactly
 * what the encoders give for the same inputs (to float16), with the shapes of
 * the checkpoints and their names and config hashes on the columns; and a
 * broken checkpoint must stop the build before any work.
 *
 * The encoders are the tiny fixtures of tests/fixtures/encoders and
 * tests/fixtures/t5 (themselves checked against transformers by test_encoders
 * and test_t5).  MERT's fixture is made for 100 Hz audio; here its config is
 * copied with a 16 kHz sampling rate and conv strides 10, 8, 4 (a 320-sample
 * hop, as the real MERT): the weights keep their shapes, so it is still a valid
 * checkpoint, now at a rate the build decodes to. */
#include "build.h"
#include "fileio.h"
#include "frames.h"
#include "m2u_error.h"
#include "manifest.h"
#include "mert_encoder.h"
#include "midi_render.h"
#include "t5_encoder.h"
#include "test_music.h"
#include "test_util.h"
#include "unigram_tokenizer.h"
#include "vit_encoder.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define DIR M2U_BUILD_DIR "/test_build_encoders_work"
#define ENC M2U_FIXTURES "/encoders"

/* largest |a - b| / max|b| */
static double rel(const float *a, const float *b, size_t n) { return t_max_rel_err(a, b, n); }

static float f16r(float x) { /* round to float16 and back, as the shard stores it */
    _Float16 h = (_Float16)x;
    return (float)h;
}

int main(void) {
    t_sh("rm -rf '%s' && mkdir -p '%s/media' '%s/mert16k'", DIR, DIR, DIR);
    tm_piece p = {.bpm = 110, .tonic = 2, .mode = M2U_MIDI_MAJOR, .acc_prog = 0, .mel_prog = 73, .bass_prog = 33,
                  .drums = 1, .bars = 4, .seed = 7};
    CHECK(tm_write(&p, DIR "/media/song.mid", NULL) == 0, "write song.mid");
    CHECK(t_sh("cd '%s/media' && ffmpeg -v error -f lavfi -i 'mandelbrot=s=96x64' -frames:v 1 pic.png && "
             "ffmpeg -v error -f lavfi -i 'testsrc2=s=64x48:r=10:d=3' -pix_fmt yuv420p clip.mp4",
             DIR) == 0,
          "ffmpeg media");
    /* MERT at 16 kHz (see the top comment) */
    CHECK(t_sh("cp '%s/mert_a/model.safetensors' '%s/mert16k/' && python3 - '%s/mert_a' '%s/mert16k' <<'EOF'\n"
             "import json, sys\n"
             "src, dst = sys.argv[1], sys.argv[2]\n"
             "c = json.load(open(src + '/config.json')); c['sample_rate'] = 16000; c['conv_stride'] = [10, 8, 4]\n"
             "json.dump(c, open(dst + '/config.json', 'w'))\n"
             "q = json.load(open(src + '/preprocessor_config.json')); q['sampling_rate'] = 16000\n"
             "json.dump(q, open(dst + '/preprocessor_config.json', 'w'))\n"
             "EOF",
             ENC, DIR, ENC, DIR) == 0,
          "mert16k");
    if (t_fail) return t_finish("test_build_encoders");

    const char *inputs[1] = {DIR "/media"};
    m2u_build_config c;
    m2u_build_config_default(&c);
    c.inputs = inputs, c.n_inputs = 1, c.out_dir = DIR "/out", c.default_licence = "CC0-1.0";
    c.audio_rate = 16000, c.clip_s = 4, c.hop_s = 4, c.min_clip_s = 2, c.max_clips = 2;
    c.recipes = M2U_RECIPE_MUCAPS | M2U_RECIPE_MUIMAGE | M2U_RECIPE_MUVIDEO;
    c.valid_frac = 0, c.test_frac = 0;
    c.mert_dir = DIR "/mert16k", c.vit_dir = ENC "/vit_b", c.vivit_dir = ENC "/vivit_a";
    c.t5_dir = M2U_FIXTURES "/t5/enc_gated_musicgen", c.t5_tokenizer = M2U_FIXTURES "/t5/tokenizer.json";
    c.text_rows = 16;

    /* a broken checkpoint is refused before any work, naming it */
    m2u_build_config bad = c;
    bad.vit_dir = ENC "/no_such_vit";
    CHECK(m2u_build_run(&bad, NULL, NULL) != 0 && strstr(m2u_last_error(), "no_such_vit"),
          "missing ViT checkpoint not refused by name: %s", m2u_last_error());
    char rp[512];
    snprintf(rp, sizeof rp, "%s/out/work/records", DIR);
    CHECK(t_sh("[ -z \"$(ls -A '%s' 2>/dev/null)\" ]", rp) == 0, "work was done before the checkpoint was refused");
    bad = c;
    bad.audio_rate = 24000;
    bad.out_dir = DIR "/out_rate";
    CHECK(m2u_build_run(&bad, NULL, NULL) != 0 && strstr(m2u_last_error(), "16000"),
          "MERT rate mismatch not refused: %s", m2u_last_error());

    m2u_build_stats st;
    int rc = m2u_build_run(&c, NULL, &st);
    CHECK(rc == 0, "build: %s", m2u_last_error());
    if (rc) return t_finish("test_build_encoders");

    m2u_mert *mert = NULL;
    m2u_vit *vit = NULL, *vivit = NULL;
    m2u_t5_encoder *t5 = NULL;
    m2u_unigram *tok = NULL;
    CHECK(m2u_mert_load(c.mert_dir, &mert) == 0 && m2u_vit_load(c.vit_dir, &vit) == 0 &&
              m2u_vit_load(c.vivit_dir, &vivit) == 0 && m2u_t5_encoder_load(c.t5_dir, NULL, &t5) == 0 &&
              m2u_unigram_load(c.t5_tokenizer, &tok) == 0,
          "load encoders: %s", m2u_last_error());
    const m2u_mert_config *mc = m2u_mert_config_of(mert);
    const m2u_vit_config *vc = m2u_vit_config_of(vit), *vvc = m2u_vit_config_of(vivit);
    int dm = m2u_t5_encoder_config(t5)->d_model;
    size_t n_mert = (size_t)(mc->layers + 1) * mc->dims.hidden, n_vit = (size_t)vc->n_tokens * vc->dims.hidden;
    size_t n_vivit = (size_t)vvc->n_tokens * vvc->dims.hidden, n_t5 = (size_t)16 * dm;

    /* the song as the build rendered it */
    float *song = NULL;
    int64_t song_n = 0;
    m2u_midi_render_opts ro = {.rate = 16000, .program = -1, .max_s = (c.max_clips - 1) * c.hop_s + c.clip_s + 1};
    CHECK(m2u_midi_render(DIR "/media/song.mid", &ro, &song, &song_n) == 0, "render: %s", m2u_last_error());

    m2u_dataset *ds;
    CHECK(m2u_dataset_open(DIR "/out/manifest.json", NULL, &ds) == 0, "open: %s", m2u_last_error());
    int64_t n = m2u_dataset_count(ds);
    size_t cap = n_mert;
    size_t sizes[3] = {n_vit, n_vivit, n_t5};
    for (int k = 0; k < 3; k++) cap = sizes[k] > cap ? sizes[k] : cap;
    float *got = malloc(cap * sizeof(float)), *want = malloc(cap * sizeof(float));
    int checked[3] = {0, 0, 0};
    double worst[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        m2u_sample s;
        CHECK(m2u_dataset_get(ds, i, &s) == 0, "get");
        const char *k = s.text[M2U_TEXT_KIND];
        int present = 0;
        if (!strcmp(k, "mucaps")) {
            long s0 = lround(s.clip_start * 16000), s1 = lround(s.clip_end * 16000);
            CHECK(m2u_dataset_get_tensor_f32(ds, i, "mert", got, n_mert, &present) == 0 && present, "mert");
            CHECK(m2u_mert_layer_means(mert, NULL, song + s0, s1 - s0, want) == 0, "mert ref");
            for (size_t j = 0; j < n_mert; j++) want[j] = f16r(want[j]);
            double e = rel(got, want, n_mert);
            worst[0] = e > worst[0] ? e : worst[0];
            checked[0]++;
        } else {
            int img = !strcmp(k, "muimage");
            const m2u_vit_config *cc = img ? vc : vvc;
            uint8_t *rgb = NULL;
            if (img) {
                CHECK(m2u_image_load(DIR "/media/pic.png", cc->image_w, cc->image_h, M2U_FIT_CROP, &rgb, NULL) == 0,
                      "image");
            } else {
                CHECK(m2u_video_frames(DIR "/media/clip.mp4", cc->frames, cc->image_w, cc->image_h, &rgb, NULL) == 0,
                      "video");
            }
            size_t nn = img ? n_vit : n_vivit;
            CHECK(m2u_dataset_get_tensor_f32(ds, i, img ? "vit" : "vivit", got, nn, &present) == 0 && present,
                  "%s features", k);
            CHECK(m2u_vit_features(img ? vit : vivit, rgb, want) == 0, "vit ref");
            for (size_t j = 0; j < nn; j++) want[j] = f16r(want[j]);
            double e = rel(got, want, nn);
            worst[img ? 1 : 2] = e > worst[img ? 1 : 2] ? e : worst[img ? 1 : 2];
            checked[img ? 1 : 2]++;
            free(rgb);
        }
        /* every sample has a T5 target; a MUCaps one is its caption's */
        CHECK(m2u_dataset_get_tensor_f32(ds, i, "t5", got, n_t5, &present) == 0 && present, "t5");
        if (!strcmp(k, "mucaps")) {
            const char *text = s.text[M2U_TEXT_CAPTION];
            CHECK(m2u_t5_caption_target(t5, tok, text, strlen(text), 16, want, NULL, NULL, NULL) == 0, "t5 ref");
            for (size_t j = 0; j < n_t5; j++) want[j] = f16r(want[j]);
            double e = rel(got, want, n_t5);
            worst[3] = e > worst[3] ? e : worst[3];
        }
        m2u_sample_free(&s);
    }
    printf("test_build_encoders: %lld samples; worst relative error vs the encoders (after float16): mert %.2e "
           "(%d clips), vit %.2e (%d), vivit %.2e (%d), t5 %.2e\n",
           (long long)n, worst[0], checked[0], worst[1], checked[1], worst[2], checked[2], worst[3]);
    CHECK(checked[0] >= 2 && checked[1] == 1 && checked[2] == 1, "samples: %d mucaps, %d muimage, %d muvideo",
          checked[0], checked[1], checked[2]);
    /* the same inputs through the same encoder: only float rounding differs */
    for (int k = 0; k < 4; k++) CHECK(worst[k] <= 1e-6, "feature %d differs: %.3e", k, worst[k]);

    /* shapes, names and hashes on the columns */
    m2u_shard_reader *r;
    CHECK(m2u_dataset_shard(ds, 0, &r) == 0, "shard");
    const m2u_shard_tensor_info *ti = m2u_shard_tensor(r, m2u_shard_tensor_index(r, "mert"));
    CHECK(ti->dims[0] == mc->layers + 1 && ti->dims[1] == mc->dims.hidden && !strcmp(ti->encoder, "mert16k") &&
              strlen(ti->config_hash) == 16,
          "mert column: [%lld, %lld] encoder '%s' hash '%s'", (long long)ti->dims[0], (long long)ti->dims[1],
          ti->encoder, ti->config_hash);
    ti = m2u_shard_tensor(r, m2u_shard_tensor_index(r, "vivit"));
    CHECK(ti->dims[0] == vvc->n_tokens && !strcmp(ti->encoder, "vivit_a"), "vivit column: %s", ti->encoder);
    ti = m2u_shard_tensor(r, m2u_shard_tensor_index(r, "t5"));
    CHECK(ti->dims[0] == 16 && ti->dims[1] == dm && !strcmp(ti->encoder, "enc_gated_musicgen"), "t5 column: %s",
          ti->encoder);
    m2u_dataset_close(ds);
    free(got), free(want), free(song);

    /* captions rewritten by a JSON-lines captioner process; one that refuses
     * leaves the built-in captions and records every failure */
    for (int fail = 0; fail < 2; fail++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../data/fake_captioner.py --mode %s", M2U_FIXTURES,
                 fail ? "error" : "ok");
        m2u_build_config pc = c;
        pc.recipes = M2U_RECIPE_MUCAPS, pc.captioner_cmd = cmd, pc.captioner_timeout_s = 10;
        pc.out_dir = fail ? DIR "/out_cap_fail" : DIR "/out_cap";
        m2u_build_stats cs;
        CHECK(m2u_build_run(&pc, NULL, &cs) == 0, "build with --captioner: %s", m2u_last_error());
        char mp[512];
        snprintf(mp, sizeof mp, "%s/manifest.json", pc.out_dir);
        m2u_dataset *d2;
        CHECK(m2u_dataset_open(mp, NULL, &d2) == 0 && m2u_dataset_count(d2) == checked[0], "captioner build: %d clips",
              checked[0]);
        for (int64_t i = 0; d2 && i < m2u_dataset_count(d2); i++) {
            m2u_sample s;
            CHECK(m2u_dataset_get(d2, i, &s) == 0, "get");
            char want[256];
            snprintf(want, sizeof want, "caption of %s", s.text[M2U_TEXT_ID]);
            if (!fail)
                CHECK(!strcmp(s.text[M2U_TEXT_CAPTION], want), "caption not from the captioner: %s",
                      s.text[M2U_TEXT_CAPTION]);
            else
                CHECK(strstr(s.text[M2U_TEXT_CAPTION], " BPM") || strstr(s.text[M2U_TEXT_CAPTION], "It sounds") ||
                          strstr(s.text[M2U_TEXT_CAPTION], "sound"),
                      "a refusing captioner did not leave the built-in caption: %s", s.text[M2U_TEXT_CAPTION]);
            m2u_sample_free(&s);
        }
        if (d2) m2u_dataset_close(d2);
        CHECK(cs.caption_failures == (fail ? checked[0] : 0), "caption failures: %ld", cs.caption_failures);
    }

    /* instructions rewritten by an OpenAI-compatible endpoint (the fake server of
     * test_captioners, which echoes the user message), and kept when it fails */
    /* it exits when its stdin (the sleep) ends; no descriptor of ours stays open in it */
    CHECK(t_sh("(sleep 30 | /usr/bin/python3 -u '%s/../data/fake_llm_server.py' '%s/llm.log' > '%s/port') "
             "< /dev/null > /dev/null 2>&1 &",
             M2U_FIXTURES, DIR, DIR) == 0,
          "start the fake LLM server");
    int port = 0;
    for (int t = 0; t < 500 && !port; t++) {
        char *txt = NULL;
        size_t len;
        if (m2u_read_file(DIR "/port", &txt, &len) == 0) sscanf(txt, "PORT %d", &port);
        free(txt);
        if (!port) nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    CHECK(port > 0, "the fake LLM server did not start");
    if (port) {
        char url[128];
        for (int fail = 0; fail < 2; fail++) {
            snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, fail ? "err500" : "ok");
            m2u_build_config lc = c;
            lc.recipes = M2U_RECIPE_MUIMAGE, lc.llm_url = url, lc.captioner_timeout_s = 5;
            lc.out_dir = fail ? DIR "/out_llm_fail" : DIR "/out_llm";
            CHECK(m2u_build_run(&lc, NULL, NULL) == 0, "build with --llm: %s", m2u_last_error());
            char mp[512];
            snprintf(mp, sizeof mp, "%s/manifest.json", lc.out_dir);
            m2u_dataset *d2;
            CHECK(m2u_dataset_open(mp, NULL, &d2) == 0 && m2u_dataset_count(d2) == 1, "llm build: one sample");
            m2u_sample s;
            CHECK(m2u_dataset_get(d2, 0, &s) == 0, "get");
            const char *ins = s.text[M2U_TEXT_INSTRUCTION];
            if (!fail)
                CHECK(strstr(ins, "Music description:") && strstr(ins, "Write an instruction"),
                      "the endpoint's instruction was not used: %s", ins);
            else
                CHECK(!strstr(ins, "Music description:") && strstr(ins, "image"),
                      "a failing endpoint did not leave the built-in instruction: %s", ins);
            m2u_sample_free(&s);
            m2u_dataset_close(d2);
            if (fail) {
                char *errs = NULL;
                size_t len;
                snprintf(mp, sizeof mp, "%s/errors.jsonl", lc.out_dir);
                CHECK(m2u_read_file(mp, &errs, &len) == 0 && strstr(errs, "\"reason\":\"llm-failed\"") &&
                          strstr(errs, "http-error"),
                      "the LLM failure is not in errors.jsonl: %s", errs ? errs : "");
                free(errs);
            }
        }
    }
    m2u_mert_free(mert), m2u_vit_free(vit), m2u_vit_free(vivit), m2u_t5_encoder_free(t5), m2u_unigram_free(tok);
    if (!t_fail) t_sh("rm -rf '%s'", DIR);
    return t_finish("test_build_encoders");
}
