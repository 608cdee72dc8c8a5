/* MusicGen decoder LM (models/nets/musicgen.c) against transformers 4.46.3
 * (tests/make_musicgen_fixtures.py): logits of the first passes, greedy codes with and without
 * classifier-free guidance from fixed encoder states, the text path through the T5 encoder,
 * the delay pattern, the sampler, and refusals of bad checkpoints. */
#include "encoder_layer.h"
#include "m2u_error.h"
#include "musicgen.h"
#include "test_fixture.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MG_DIR M2U_FIXTURES "/musicgen/"
#define TOL 1e-5

/* The sequence generate feeds: the delay mask where it is set, else the codes shifted by k+1. */
static void delayed(const int32_t *codes, const int32_t *dmask, int K, int L, int32_t *seq) {
    int N = L - K;
    for (int k = 0; k < K; k++)
        for (int t = 0; t < L; t++) {
            int32_t mv = dmask[(size_t)k * L + t];
            int j = t - k - 1;
            seq[(size_t)k * L + t] = mv != -1 ? mv : (j >= 0 && j < N ? codes[(size_t)k * N + j] : -7);
        }
}

static int ids_equal(const int32_t *a, const int32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void test_model(const char *name, int expect_proj) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, MG_DIR "%s", name);
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    m2u_safetensors *ref = NULL;
    m2u_musicgen *m = NULL;
    CHECK(m2u_st_open(path, &ref) == 0, "%s", m2u_last_error());
    CHECK(m2u_musicgen_load(dir, 1, &m) == 0, "%s", m2u_last_error());
    if (!ref || !m) goto out;
    const m2u_musicgen_config *c = m2u_musicgen_get_config(m);
    CHECK(c->has_proj == expect_proj, "%s: has_proj %d", name, c->has_proj);
    int32_t *ml = t_st_ids(ref, "max_length", NULL), *hm = t_st_ids(ref, "has_mask", NULL);
    CHECK(ml && hm, "%s: max_length / has_mask missing", name);
    if (!ml || !hm) {
        free(ml), free(hm);
        goto out;
    }
    int K = c->codebooks, V = c->vocab, L = ml[0], N = L - K, has_mask = hm[0];
    free(ml), free(hm);
    size_t n_enc = 0;
    int S = 0;
    float *enc = t_st_f32(ref, "enc", &n_enc);
    int32_t *mask = t_st_ids(ref, "enc_mask", &S);
    const int32_t *mk = has_mask ? mask : NULL;
    CHECK(enc && mask && n_enc == (size_t)S * c->text_hidden, "%s: enc", name);

    /* delay pattern masks */
    for (int i = 0; i < m2u_st_count(ref); i++) {
        const m2u_st_tensor *t = m2u_st_at(ref, i);
        if (strncmp(t->name, "delay.", 6)) continue;
        int kk = (int)t->shape[0], ll = (int)t->shape[1];
        int32_t *want = t_st_ids(ref, t->name, NULL), *got = malloc((size_t)kk * ll * sizeof(int32_t));
        CHECK(m2u_musicgen_delay_mask(kk, ll, c->start_id, got) == 0, "%s", m2u_last_error());
        CHECK(ids_equal(got, want, (size_t)kk * ll), "%s: %s differs", name, t->name);
        free(want), free(got);
    }
    int32_t *dmask = malloc((size_t)K * L * sizeof(int32_t)), *seq = malloc((size_t)K * L * sizeof(int32_t));
    int32_t *codes = malloc((size_t)K * N * sizeof(int32_t));
    float *raw = malloc((size_t)2 * K * V * sizeof(float)), *guided = malloc((size_t)K * V * sizeof(float));
    m2u_musicgen_delay_mask(K, L, c->start_id, dmask);

    /* logits of the first passes without CFG, fed the columns generate feeds */
    int32_t *greedy = t_st_ids(ref, "greedy_codes", NULL);
    float *want_raw = t_st_f32(ref, "raw_logits", NULL);
    delayed(greedy, dmask, K, L, seq);
    m2u_musicgen_session *s = NULL;
    CHECK(m2u_musicgen_begin(m, enc, mk, S, 0, L - 1, &s) == 0, "%s", m2u_last_error());
    double worst = 0;
    for (int t = 0; s && t < 3; t++) {
        int32_t col[16];
        for (int k = 0; k < K; k++) col[k] = seq[(size_t)k * L + t];
        CHECK(m2u_musicgen_step(s, col, 1.0f, raw, NULL) == 0, "%s", m2u_last_error());
        double e = t_max_rel_err(raw, want_raw + (size_t)t * K * V, (size_t)K * V);
        worst = t_worse(worst, e);
        CHECK(e <= TOL, "%s: step %d logits rel err %.3g", name, t, e);
    }
    printf("%s: logits of 3 passes (no CFG) max rel err %.3g\n", name, worst);
    m2u_musicgen_session_free(s);

    /* greedy codes without CFG */
    m2u_musicgen_gen_opts o = m2u_musicgen_default_opts(L);
    o.do_sample = 0;
    o.guidance_scale = 1.0f;
    CHECK(m2u_musicgen_generate(m, enc, mk, S, &o, codes, NULL) == 0, "%s", m2u_last_error());
    CHECK(ids_equal(codes, greedy, (size_t)K * N), "%s: greedy codes differ", name);

    /* CFG at 3: raw and guided logits, codes and the delayed sequence */
    float *cfg_raw = t_st_f32(ref, "cfg_raw", NULL), *cfg_guided = t_st_f32(ref, "cfg_guided", NULL);
    int32_t *cfg_codes = t_st_ids(ref, "cfg_codes", NULL), *cfg_seq = t_st_ids(ref, "cfg_seq", NULL);
    CHECK(m2u_musicgen_begin(m, enc, mk, S, 1, L - 1, &s) == 0, "%s", m2u_last_error());
    double wr = 0, wg = 0;
    for (int t = 0; s && t < 3; t++) {
        int32_t col[16];
        for (int k = 0; k < K; k++) col[k] = cfg_seq[(size_t)k * L + t];
        CHECK(m2u_musicgen_step(s, col, 3.0f, raw, guided) == 0, "%s", m2u_last_error());
        double e = t_max_rel_err(raw, cfg_raw + (size_t)t * 2 * K * V, (size_t)2 * K * V);
        double e2 = t_max_rel_err(guided, cfg_guided + (size_t)t * K * V, (size_t)K * V);
        wr = e > wr ? e : wr, wg = e2 > wg ? e2 : wg;
        CHECK(e <= TOL && e2 <= TOL, "%s: CFG step %d rel err raw %.3g guided %.3g", name, t, e, e2);
        for (int k = 0; k < K; k++)
            CHECK(m2u_gen_argmax(guided + (size_t)k * V, V) == m2u_gen_argmax(cfg_guided + ((size_t)t * K + k) * V, V),
                  "%s: CFG step %d codebook %d argmax differs", name, t, k);
    }
    printf("%s: CFG logits max rel err raw %.3g guided %.3g\n", name, wr, wg);
    m2u_musicgen_session_free(s);
    o.guidance_scale = 3.0f;
    CHECK(m2u_musicgen_generate(m, enc, mk, S, &o, codes, seq) == 0, "%s", m2u_last_error());
    CHECK(ids_equal(codes, cfg_codes, (size_t)K * N), "%s: CFG codes differ", name);
    CHECK(ids_equal(seq, cfg_seq, (size_t)K * L), "%s: CFG delayed sequence differs", name);

    /* text path: T5 in C, then generate (HF generate's codes and scores) */
    int St = 0;
    int32_t *tids = t_st_ids(ref, "text_ids", &St), *tmask = t_st_ids(ref, "text_mask", NULL);
    float *tstates_ref = t_st_f32(ref, "text_states", NULL), *tscores = t_st_f32(ref, "text_cfg_scores", NULL);
    int32_t *tcodes = t_st_ids(ref, "text_cfg_codes", NULL);
    float *ts = malloc((size_t)St * c->text_hidden * sizeof(float));
    CHECK(m2u_musicgen_encode_text(m, tids, tmask, St, ts) == 0, "%s", m2u_last_error());
    double et = t_max_rel_err(ts, tstates_ref, (size_t)St * c->text_hidden);
    CHECK(et <= TOL, "%s: T5 states rel err %.3g", name, et);
    CHECK(m2u_musicgen_begin(m, ts, tmask, St, 1, L - 1, &s) == 0, "%s", m2u_last_error());
    wg = 0;
    delayed(tcodes, dmask, K, L, seq);
    for (int t = 0; s && t < 3; t++) {
        int32_t col[16];
        for (int k = 0; k < K; k++) col[k] = seq[(size_t)k * L + t];
        CHECK(m2u_musicgen_step(s, col, 3.0f, NULL, guided) == 0, "%s", m2u_last_error());
        double e = t_max_rel_err(guided, tscores + (size_t)t * K * V, (size_t)K * V);
        wg = e > wg ? e : wg;
        CHECK(e <= TOL, "%s: text CFG step %d scores rel err %.3g", name, t, e);
    }
    m2u_musicgen_session_free(s);
    CHECK(m2u_musicgen_generate(m, ts, tmask, St, &o, codes, NULL) == 0, "%s", m2u_last_error());
    CHECK(ids_equal(codes, tcodes, (size_t)K * N), "%s: text CFG codes differ from generate's", name);
    printf("%s: text path T5 rel err %.3g, guided scores rel err %.3g, %d x %d codes\n", name, et, wg, K, N);

    /* entry (a) from text: the prompt through m2u's tokenizer and T5, then generate */
    const char *prompt = m2u_st_metadata(ref, "prompt");
    if (prompt) {
        m2u_unigram *tok = NULL;
        CHECK(m2u_unigram_load(M2U_FIXTURES "/t5/tokenizer.json", &tok) == 0, "%s", m2u_last_error());
        float *pst = NULL;
        int32_t *pmask = NULL, *pids = NULL;
        int PS = 0, PN = 0;
        pids = t_st_ids(ref, "prompt_ids", &PN);
        int32_t *pcodes = t_st_ids(ref, "prompt_cfg_codes", NULL);
        CHECK(tok && m2u_musicgen_encode_prompt(m, tok, prompt, strlen(prompt), &pst, &pmask, &PS) == 0, "%s",
              m2u_last_error());
        CHECK(PS == PN, "%s: prompt gives %d tokens, transformers %d", name, PS, PN);
        int32_t *myids = NULL;
        size_t nmy = 0;
        CHECK(tok && m2u_unigram_encode(tok, prompt, strlen(prompt), 1, &myids, &nmy) == 0 && nmy == (size_t)PN &&
                  ids_equal(myids, pids, nmy),
              "%s: prompt ids differ from the tokenizers library's", name);
        free(myids);
        CHECK(pst && m2u_musicgen_generate(m, pst, pmask, PS, &o, codes, NULL) == 0, "%s", m2u_last_error());
        CHECK(pst && ids_equal(codes, pcodes, (size_t)K * N), "%s: prompt codes differ from generate's", name);
        printf("%s: prompt \"%s\" (%d tokens) -> %d x %d codes checked\n", name, prompt, PS, K, N);
        free(pst), free(pmask), free(pids), free(pcodes);
        m2u_unigram_free(tok);
    }

    /* sampling with top_k 1 is greedy; a seed gives the same codes twice */
    o.do_sample = 1;
    o.sampling.top_k = 1;
    CHECK(m2u_musicgen_generate(m, enc, mk, S, &o, codes, NULL) == 0, "%s", m2u_last_error());
    CHECK(ids_equal(codes, cfg_codes, (size_t)K * N), "%s: top_k 1 sampling differs from greedy", name);
    o.sampling.top_k = 250;
    o.seed = 42;
    int32_t *c2 = malloc((size_t)K * N * sizeof(int32_t));
    CHECK(m2u_musicgen_generate(m, enc, mk, S, &o, codes, NULL) == 0 &&
              m2u_musicgen_generate(m, enc, mk, S, &o, c2, NULL) == 0,
          "%s", m2u_last_error());
    CHECK(ids_equal(codes, c2, (size_t)K * N), "%s: same seed, different codes", name);
    int in_range = 1;
    for (int i = 0; i < K * N; i++) in_range &= codes[i] >= 0 && codes[i] < V;
    CHECK(in_range, "%s: sampled code outside 0..%d", name, V - 1);

    /* a too short max_length is refused */
    o.max_length = 2 * K - 2;
    CHECK(K == 1 || m2u_musicgen_generate(m, enc, mk, S, &o, codes, NULL) == -1, "%s: short max_length accepted", name);

    free(c2), free(ts), free(tids), free(tmask), free(tstates_ref), free(tscores), free(tcodes);
    free(cfg_raw), free(cfg_guided), free(cfg_codes), free(cfg_seq), free(greedy), free(want_raw);
    free(dmask), free(seq), free(codes), free(raw), free(guided), free(enc), free(mask);
out:
    m2u_musicgen_free(m);
    m2u_st_close(ref);
}

static void test_sampler(void) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 (and a token far below) */
    float lg[5] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f), -50.0f};
    void *scr = malloc(m2u_gen_sample_scratch(5));
    m2u_rng r;
    m2u_rng_seed(&r, 7);
    int cnt[5] = {0};
    m2u_gen_sampling s = {1.0f, 3, 1.0f};
    for (int i = 0; i < 20000; i++) cnt[m2u_gen_sample(lg, 5, &s, &r, scr)]++;
    CHECK(cnt[3] == 0 && cnt[4] == 0, "top_k 3 drew a token outside the top 3 (%d, %d)", cnt[3], cnt[4]);
    /* renormalised: 0.5/0.95 etc.; 20000 draws -> standard error ~0.0035 */
    CHECK(fabs(cnt[0] / 20000.0 - 0.5 / 0.95) < 0.02 && fabs(cnt[2] / 20000.0 - 0.15 / 0.95) < 0.02,
          "top_k frequencies %d %d %d", cnt[0], cnt[1], cnt[2]);
    /* top_p 0.7: ascending cumulative 0.05, 0.2, 0.5, 1 -> drop those <= 0.3: keeps 0.5 and 0.3 */
    memset(cnt, 0, sizeof cnt);
    m2u_gen_sampling sp = {1.0f, 0, 0.7f};
    for (int i = 0; i < 20000; i++) cnt[m2u_gen_sample(lg, 5, &sp, &r, scr)]++;
    CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[4] == 0 && cnt[0] > 0 && cnt[1] > 0, "top_p 0.7 kept %d %d %d %d %d",
          cnt[0], cnt[1], cnt[2], cnt[3], cnt[4]);
    CHECK(fabs(cnt[0] / 20000.0 - 0.625) < 0.02, "top_p frequencies %d %d", cnt[0], cnt[1]);
    /* temperature sharpens: t = 0.5 squares the odds */
    memset(cnt, 0, sizeof cnt);
    m2u_gen_sampling st = {0.5f, 2, 1.0f};
    for (int i = 0; i < 20000; i++) cnt[m2u_gen_sample(lg, 5, &st, &r, scr)]++;
    CHECK(fabs(cnt[0] / 20000.0 - 0.25 / (0.25 + 0.09)) < 0.02, "temperature frequencies %d %d", cnt[0], cnt[1]);
    float cf[3];
    float cnd[3] = {1, 2, 3}, unc[3] = {0, 1, 5};
    m2u_gen_cfg(cf, cnd, unc, 3, 3.0f);
    CHECK(cf[0] == 3 && cf[1] == 4 && cf[2] == -1, "cfg %g %g %g", cf[0], cf[1], cf[2]);
    free(scr);
}

/* A copy of fixture `name` whose config.json has `key` ("decoder.X" or "X") set to value. */
static void make_bad(const char *name, const char *tmp, const char *key, cJSON *value) {
    char src[1024], dst[1200], cfgp[1200];
    static const char *files[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                  "model.safetensors.index.json", "pytorch_model.bin"};
    mkdir(tmp, 0755);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(dst, sizeof dst, "%s/%s", tmp, files[i]);
        unlink(dst);
        snprintf(src, sizeof src, MG_DIR "%s/%s", name, files[i]);
        if (access(src, F_OK) == 0) CHECK(symlink(src, dst) == 0, "symlink %s", dst);
    }
    snprintf(cfgp, sizeof cfgp, MG_DIR "%s/config.json", name);
    cJSON *root = t_json_load(cfgp);
    cJSON *obj = root;
    const char *k = key;
    if (!strncmp(key, "decoder.", 8)) obj = cJSON_GetObjectItemCaseSensitive(root, "decoder"), k = key + 8;
    cJSON_ReplaceItemInObjectCaseSensitive(obj, k, value);
    char *txt = cJSON_Print(root);
    snprintf(cfgp, sizeof cfgp, "%s/config.json", tmp);
    FILE *f = fopen(cfgp, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    cJSON_Delete(root);
}

static void expect_fail(const char *dir, const char *needle, const char *what) {
    m2u_musicgen *m = NULL;
    int rc = m2u_musicgen_load(dir, 0, &m);
    CHECK(rc == -1 && m == NULL, "%s: loaded", what);
    CHECK(strstr(m2u_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, m2u_last_error(), needle);
    m2u_musicgen_free(m);
}

static void test_bad(void) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s/musicgen_bad", M2U_BUILD_DIR);
    make_bad("proj", tmp, "model_type", cJSON_CreateString("musicgen_melody"));
    expect_fail(tmp, "musicgen_melody", "melody");
    make_bad("proj", tmp, "decoder.num_hidden_layers", cJSON_CreateNumber(3));
    expect_fail(tmp, "layers.2.self_attn_layer_norm.weight", "missing tensor");
    make_bad("proj", tmp, "decoder.num_hidden_layers", cJSON_CreateNumber(1));
    expect_fail(tmp, "num_hidden_layers = 1", "extra layer");
    make_bad("proj", tmp, "decoder.ffn_dim", cJSON_CreateNumber(80));
    expect_fail(tmp, "fc1.weight", "wrong shape");
    make_bad("proj", tmp, "decoder.audio_channels", cJSON_CreateNumber(2));
    expect_fail(tmp, "stereo", "stereo");
    make_bad("noproj", tmp, "decoder.num_codebooks", cJSON_CreateNumber(1));
    expect_fail(tmp, "num_codebooks = 1", "codebook count");
    expect_fail(M2U_FIXTURES "/musicgen/nonexistent", "config.json", "no directory");
}

int main(void) {
    test_model("proj", 1);   /* fp32 sharded safetensors, masked conditioning, a prompt */
    test_model("noproj", 0); /* bf16 pytorch_model.bin, no mask, no stored sinusoids */
    test_sampler();
    test_bad();
    return t_finish("test_musicgen");
}
