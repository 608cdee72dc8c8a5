/* models/nets/bert_encoder.c as a RoBERTa encoder against transformers 4.46.3 RobertaModel.
 *
 * tests/fixtures/roberta/hidden.safetensors (tests/make_roberta_fixtures.py) holds every hidden state
 * and the pooler output of a tiny random RobertaModel (model/: 4 layers, hidden 32, LN eps 1e-5) on a
 * right-padded batch of 4 texts encoded by the slow RobertaTokenizer, one of them with "<pad>" inside
 * the text (its position ids skip those tokens, as create_position_ids_from_input_ids does).  Each
 * sequence is run through m2u_bert_forward_batch; every hidden state at a real token and the pooler
 * output must agree within a relative error of 1e-5 (of the tensor's largest magnitude). */
#include "bert_encoder.h"
#include "bytelevel_bpe.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define DIR M2U_FIXTURES "/roberta"

int main(void) {
    m2u_bert *m = NULL;
    m2u_safetensors *st = NULL;
    CHECK(m2u_bert_load(DIR "/model", &m) == 0, "load: %s", m2u_last_error());
    CHECK(m2u_st_open(DIR "/hidden.safetensors", &st) == 0, "open: %s", m2u_last_error());
    if (!m || !st) return t_finish("test_roberta");
    const m2u_bert_config *c = m2u_bert_config_of(m);
    CHECK(c->position_offset == 2 && c->type_vocab == 1 && c->dims.eps == 1e-5f && m2u_bert_has_pooler(m),
          "config: offset %d, types %d, eps %g", c->position_offset, c->type_vocab, c->dims.eps);
    const m2u_st_tensor *t_ids = m2u_st_find(st, "input_ids"), *t_mask = m2u_st_find(st, "attention_mask");
    const m2u_st_tensor *t_hs = m2u_st_find(st, "hidden_states"), *t_pool = m2u_st_find(st, "pooler_output");
    int B = (int)t_ids->shape[0], T = (int)t_ids->shape[1], H = c->dims.hidden, L = c->layers;
    size_t n_hs = (size_t)(L + 1) * B * T * H;
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *mask = malloc((size_t)B * T * sizeof *mask);
    float *want = malloc(n_hs * sizeof(float)), *got = malloc(n_hs * sizeof(float));
    float *wpool = malloc((size_t)B * H * sizeof(float)), *gpool = malloc((size_t)B * H * sizeof(float));
    memcpy(ids, t_ids->data, (size_t)B * T * sizeof *ids);
    memcpy(mask, t_mask->data, (size_t)B * T * sizeof *mask);
    CHECK(m2u_st_read_f32(t_hs, want, n_hs) == 0 && m2u_st_read_f32(t_pool, wpool, (size_t)B * H) == 0, "read");
    int inner_pad = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) inner_pad += mask[b * T + t] && ids[b * T + t] == c->pad_token_id;
    CHECK(inner_pad == 2, "the batch has <pad> inside a text (%d)", inner_pad);
    /* the fixture's ids are the slow tokenizer's: m2u's tokenizer gives them too */
    m2u_bytebpe *tok = NULL;
    CHECK(m2u_bytebpe_load(DIR "/model", &tok) == 0, "%s", m2u_last_error());
    const char *texts[] = {NULL, "Drums!", "piano <pad> and <pad> strings"};
    for (int b = 1; tok && b < 3; b++) {
        int32_t *e;
        size_t n, real = 0;
        while (real < (size_t)T && mask[b * T + real]) real++;
        CHECK(m2u_bytebpe_encode(tok, texts[b], strlen(texts[b]), 0, 1, 40, &e, &n) == 0 && n == real &&
                  !memcmp(e, ids + b * T, n * sizeof *e),
              "ids of \"%s\"", texts[b]);
        free(e);
    }
    m2u_bytebpe_free(tok);
    CHECK(m2u_bert_forward_batch(m, ids, mask, B, T, got) == 0, "forward: %s", m2u_last_error());
    for (int l = 0; l <= L; l++)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                if (!mask[b * T + t]) memset(want + (((size_t)l * B + b) * T + t) * H, 0, (size_t)H * sizeof(float));
    for (int l = 0; l <= L; l++) {
        double e = t_max_rel_err(got + (size_t)l * B * T * H, want + (size_t)l * B * T * H, (size_t)B * T * H);
        printf("roberta hidden_states[%d]: max rel err %.3g\n", l, e);
        CHECK(e < 1e-5, "hidden_states[%d] rel err %g", l, e);
    }
    for (int b = 0; b < B; b++)
        CHECK(m2u_bert_pooler(m, got + ((size_t)L * B + b) * T * H, gpool + (size_t)b * H) == 0, "pooler");
    double e = t_max_rel_err(gpool, wpool, (size_t)B * H);
    printf("roberta pooler_output: max rel err %.3g\n", e);
    CHECK(e < 1e-5, "pooler rel err %g", e);
    /* more tokens than positions: refused */
    int32_t *many = malloc(64 * sizeof *many);
    for (int i = 0; i < 64; i++) many[i] = 5;
    CHECK(m2u_bert_forward(m, many, 41, L, NULL, got) != 0 && strstr(m2u_last_error(), "positions"),
          "41 tokens refused at 42 positions: %s", m2u_last_error());
    CHECK(m2u_bert_forward(m, many, 40, 1, NULL, got) == 0, "40 tokens fit");
    free(many);
    free(ids);
    free(mask);
    free(want);
    free(got);
    free(wpool);
    free(gpool);
    m2u_st_close(st);
    m2u_bert_free(m);
    return t_finish("test_roberta");
}
