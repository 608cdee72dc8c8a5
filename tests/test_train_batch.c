/* Training batches from shards: prompt masking, [AUD] block and its position,
 * padding, truncation, and what each stage asks for. */
#include "batch.h"
#include "m2u_error.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static const char *k_tpl = "Below is an instruction.\n\n### Instruction:\n{instruction}\n\n### Response:";

static void add(m2u_shard_writer *w, const char *id, const char *kind, const char *caption, const char *instr,
                const char *answer, const char *output) {
    m2u_shard_sample s = {0};
    s.text[M2U_TEXT_ID] = id;
    s.text[M2U_TEXT_KIND] = kind;
    s.text[M2U_TEXT_SPLIT] = "train";
    s.text[M2U_TEXT_LICENCE] = "CC0-1.0";
    s.text[M2U_TEXT_CAPTION] = caption;
    s.text[M2U_TEXT_INSTRUCTION] = instr;
    s.text[M2U_TEXT_ANSWER] = answer;
    s.text[M2U_TEXT_OUTPUT_TEXT] = output;
    s.clip_start = s.clip_end = 0;
    CHECK(m2u_shard_append(w, &s) == 0, "%s", m2u_last_error());
}

int main(void) {
    char dir[] = "/tmp/m2u_batch_XXXXXX", path[256], tokpath[1024];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/shard-00000.h5", dir);
    m2u_shard_spec spec = {0};
    m2u_shard_writer *w;
    CHECK(m2u_shard_create(path, &spec, &w) == 0, "%s", m2u_last_error());
    add(w, "a", "mucaps", "A calm piano piece.", "", "", "");
    add(w, "b", "musicqa", "", "What instrument plays?", "A piano.", "");
    add(w, "c", "muimage", "Brass.", "Compose music for this sunny picture.", "", "Bright brass fanfare.");
    CHECK(m2u_shard_close(w) == 0, "%s", m2u_last_error());
    m2u_manifest man;
    m2u_manifest_init(&man);
    m2u_manifest_shard sh;
    CHECK(m2u_manifest_scan_shard(dir, "shard-00000.h5", &sh) == 0, "%s", m2u_last_error());
    m2u_manifest_add(&man, &sh);
    m2u_manifest_shard_free(&sh);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(m2u_manifest_write(path, &man) == 0, "%s", m2u_last_error());
    m2u_manifest_free(&man);
    m2u_dataset *ds;
    CHECK(m2u_dataset_open(path, NULL, &ds) == 0, "%s", m2u_last_error());
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer/tokenizer.json", M2U_FIXTURES);
    m2u_tokenizer *tok;
    CHECK(m2u_tokenizer_load(tokpath, &tok) == 0, "%s", m2u_last_error());
    const char *aud[8] = {"[AUD0]", "[AUD1]", "[AUD2]", "[AUD3]", "[AUD4]", "[AUD5]", "[AUD6]", "[AUD7]"};
    m2u_tokenizer_add_tokens(tok, aud, 8, 0);
    int aud0 = m2u_tokenizer_token_to_id(tok, "[AUD0]");
    m2u_batch_options o = {.stage = 2, .prompt_template = k_tpl, .max_len = 256, .n_aud = 8, .aud_id0 = aud0,
                           .append_eos = 0, .ignore_index = -100, .pad_id = 0};
    m2u_batch b = {0};
    int64_t idx[3] = {0, 1, 2};
    /* stage 2: caption -> caption + [AUD]; sample b (musicqa) has no caption -> refused */
    CHECK(m2u_batch_build(ds, tok, &o, idx, 2, &b) != 0, "stage 2 accepted a sample without a caption");
    int64_t two[2] = {0, 2};
    CHECK(m2u_batch_build(ds, tok, &o, two, 2, &b) == 0, "%s", m2u_last_error());
    /* sequence 0 = tokens(prompt("A calm piano piece.") + "A calm piano piece.") + 8 AUD ids */
    char *prompt = "Below is an instruction.\n\n### Instruction:\nA calm piano piece.\n\n### Response:";
    char full[512];
    snprintf(full, sizeof full, "%sA calm piano piece.", prompt);
    int32_t *pids, *fids;
    size_t np, nf;
    m2u_tokenizer_encode(tok, prompt, strlen(prompt), 1, &pids, &np);
    m2u_tokenizer_encode(tok, full, strlen(full), 1, &fids, &nf);
    CHECK(b.length[0] == (int)nf + 8, "length %d, want %zu", b.length[0], nf + 8);
    CHECK(memcmp(b.ids, fids, nf * sizeof(int32_t)) == 0, "ids differ from the tokenizer's");
    for (int k = 0; k < 8; k++) CHECK(b.ids[nf + k] == aud0 + k, "AUD%d id", k);
    CHECK(b.aud_pos[0] == (int)nf - 1, "aud_pos %d, want %zu", b.aud_pos[0], nf - 1);
    for (size_t t = 0; t < (size_t)b.T; t++) {
        int want_ignored = t < np || (int)t >= b.length[0];
        CHECK((b.labels[t] == -100) == want_ignored, "label mask wrong at %zu", t);
    }
    /* padding of the shorter sequence (the captions differ in length so that one is padded) */
    CHECK(b.length[0] != b.length[1], "both sequences have %d tokens: nothing is padded", b.length[0]);
    int shorter = b.length[0] < b.length[1] ? 0 : 1;
    CHECK(b.ids[shorter * b.T + b.T - 1] == 0 && b.labels[shorter * b.T + b.T - 1] == -100, "padding");
    free(pids);
    free(fids);
    /* stage 3: QA has no [AUD]; image instruction gets them */
    o.stage = 3;
    CHECK(m2u_batch_build(ds, tok, &o, idx, 3, &b) == 0, "%s", m2u_last_error());
    CHECK(b.aud_pos[1] == -1 && b.aud_pos[2] > 0, "stage 3 aud positions %d %d", b.aud_pos[1], b.aud_pos[2]);
    /* truncation keeps the [AUD] block */
    o.max_len = 20;
    CHECK(m2u_batch_build(ds, tok, &o, idx + 2, 1, &b) == 0, "%s", m2u_last_error());
    CHECK(b.length[0] == 20 && b.ids[19] == aud0 + 7 && b.aud_pos[0] == 11, "truncated: len %d", b.length[0]);
    m2u_batch_free(&b);
    m2u_tokenizer_free(tok);
    m2u_dataset_close(ds);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return t_finish("test_train_batch");
}
