/* libFuzzer target: arbitrary text (any bytes, invalid UTF-8 included)
 * through the three tokenizers of the fixtures (LLaMA-2 BPE, T5 Unigram,
 * BERT WordPiece): encode, decode, normalize.  The tokenizers load once. */
#define FUZZ_OWN_INIT
#include "fuzz_util.h"
#include "m2u_error.h"
#include "tokenizer.h"
#include "unigram_tokenizer.h"
#include "wordpiece_tokenizer.h"

static m2u_tokenizer *g_bpe;
static m2u_unigram *g_uni;
static m2u_wordpiece *g_wp;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    if (m2u_tokenizer_load(M2U_FIXTURES "/tokenizer/tokenizer.json", &g_bpe) ||
        m2u_unigram_load(M2U_FIXTURES "/t5/tokenizer.json", &g_uni) ||
        m2u_wordpiece_load(M2U_FIXTURES "/bertscore/model/tokenizer.json", &g_wp)) {
        fprintf(stderr, "fuzz_tokenize: %s\n", m2u_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    fuzz_quiet_begin();
    for (int sp = 0; sp < 2; sp++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (m2u_tokenizer_encode(g_bpe, text, size, sp, &ids, &n) == 0) {
            char *back = NULL;
            size_t len = 0;
            if (m2u_tokenizer_decode_n(g_bpe, ids, n, 1, &back, &len) == 0) free(back);
            free(ids);
        }
        ids = NULL;
        if (m2u_unigram_encode_truncated(g_uni, text, size, sp, 128, &ids, &n) == 0) {
            if (n > 128) abort();
            free(ids);
        }
        ids = NULL;
        if (m2u_wordpiece_encode(g_wp, text, size, sp, 0, &ids, &n) == 0) free(ids);
    }
    /* decoding arbitrary ids (in and out of range) */
    if (size >= 4) {
        size_t n = size / 4;
        int32_t *ids = malloc(n * sizeof *ids);
        if (!ids) abort();
        memcpy(ids, data, n * sizeof *ids);
        for (size_t k = 0; k < n; k++) ids[k] %= 40000;
        char *back = NULL;
        size_t len = 0;
        if (m2u_tokenizer_decode_n(g_bpe, ids, n, 0, &back, &len) == 0) free(back);
        free(ids);
    }
    char *norm = NULL;
    size_t nl = 0;
    if (m2u_unigram_normalize(g_uni, text, size, &norm, &nl) == 0) free(norm);
    norm = NULL;
    if (m2u_wordpiece_normalize(g_wp, text, size, &norm, &nl) == 0) free(norm);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
