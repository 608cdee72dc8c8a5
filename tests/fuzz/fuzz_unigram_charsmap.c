/* libFuzzer target: the binary precompiled_charsmap of a Unigram tokenizer
 * (SentencePiece's normalization trie + replacement blob, base64 in
 * tokenizer.json).  The input is the raw charsmap; the target base64-encodes it
 * into a small T5 tokenizer.json (tests/fuzz/seeds/tokenizer_unigram) as its
 * only normalizer, loads it and normalizes / encodes fixed texts, which walks
 * the trie.  Seed: T5's real charsmap (tests/fuzz/run.sh extracts it). */
#define FUZZ_OWN_INIT
#include "fuzz_tokenizer_common.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "unigram_tokenizer.h"

#include <cjson/cJSON.h>

static cJSON *g_tpl;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    FILE *fp = fopen(M2U_FIXTURES "/../fuzz/seeds/tokenizer_unigram/t5_small.json", "rb");
    static char text[1 << 16];
    size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    if (fp) fclose(fp);
    text[n] = '\0';
    if (!(g_tpl = cJSON_Parse(text))) abort();
    return 0;
}

static char *b64(const uint8_t *d, size_t n) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * ((n + 2) / 3) + 1), *p = o;
    if (!o) abort();
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        *p++ = al[v >> 18 & 63];
        *p++ = al[v >> 12 & 63];
        *p++ = i + 1 < n ? al[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? al[v & 63] : '=';
    }
    *p = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *doc = cJSON_Duplicate(g_tpl, 1), *norm = cJSON_CreateObject();
    char *enc = b64(data, size);
    cJSON_AddStringToObject(norm, "type", "Precompiled");
    cJSON_AddStringToObject(norm, "precompiled_charsmap", enc);
    free(enc);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "normalizer", norm);
    char *json = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!json) abort();
    const char *path = fuzz_write(0, "tokenizer.json", json, strlen(json));
    free(json);
    fuzz_quiet_begin();
    m2u_unigram *tok = NULL;
    if (m2u_unigram_load(path, &tok) == 0) {
        for (size_t k = 0; k < FUZZ_N_TEXTS; k++) {
            const char *t = fuzz_texts[k];
            char *out = NULL;
            size_t nl = 0;
            if (m2u_unigram_normalize(tok, t, strlen(t), &out, &nl) == 0) free(out);
            int32_t *ids = NULL;
            size_t n = 0;
            if (m2u_unigram_encode(tok, t, strlen(t), 1, &ids, &n) == 0) free(ids);
        }
        m2u_unigram_free(tok);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
