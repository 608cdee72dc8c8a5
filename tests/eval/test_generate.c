/* m2u-generate and models/generate/music.h:
 *  1. the WAV writer: 16-bit PCM and float32 round trips, header fields, clamping, refusals,
 *     no file left behind on an error;
 *  2. `m2u-generate init` output loads (MusicGen + EnCodec) and generates: frames, samples,
 *     finite audio, seed reproducibility, CFG changing the result;
 *  3. the M2UGen chain against PyTorch (tests/make_generate_fixtures.py): [AUD] projector input
 *     -> output projector -> / target_scale -> MusicGen (CFG 3, null half appended) logits and
 *     greedy codes;
 *  4. the tool on bad input writes no WAV (missing model, melody checkpoint, text path on a
 *     directory without a text encoder, unreadable image, bad options exit 2);
 *  5. the --run path on a tiny trained run (m2u-llm init + m2u-train, stage 3 MUImage samples
 *     whose answers end in [AUD]): WAV + sidecar, settings and hashes in the sidecar. */
#include "fileio.h"
#include "m2u_error.h"
#include "music.h"
#include "safetensors.h"
#include "shard.h"
#include "test_dataset_util.h"
#include "test_util.h"
#include "wav.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];

static int exists(const char *fmt, ...) M2U_PRINTF(1, 2);
static int exists(const char *fmt, ...) {
    char p[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    struct stat st;
    return stat(p, &st) == 0;
}

/* any "<name>.tmp.*" left in dir */
static int temp_left(const char *dir) {
    return t_sh("ls -a %s | grep -q '\\.tmp\\.'", dir) == 0;
}

/* ---- 1. WAV ------------------------------------------------------------------------------ */

static void test_wav(void) {
    char path[256];
    enum { N = 1000 };
    float x[2 * N];
    for (int i = 0; i < 2 * N; i++) x[i] = 1.3f * sinf(0.01f * (float)i * (1 + i % 2)); /* some beyond +-1 */
    x[0] = 0.0f, x[1] = -1.0f, x[2] = 1.0f, x[3] = 0.5f / 32767.0f * 3;
    /* 16-bit stereo */
    snprintf(path, sizeof path, "%s/pcm.wav", g_dir);
    CHECK(m2u_wav_write(path, x, N, 2, 22050, M2U_WAV_PCM16) == 0, "%s", m2u_last_error());
    float *y = NULL;
    size_t nf = 0;
    int ch = 0, rate = 0;
    m2u_wav_format fmt = M2U_WAV_FLOAT32;
    CHECK(m2u_wav_read(path, &y, &nf, &ch, &rate, &fmt) == 0, "%s", m2u_last_error());
    CHECK(nf == N && ch == 2 && rate == 22050 && fmt == M2U_WAV_PCM16, "pcm header %zu %d %d %d", nf, ch, rate, fmt);
    double worst = 0;
    for (int i = 0; y && i < 2 * N; i++) {
        float c = x[i] > 1 ? 1 : x[i] < -1 ? -1 : x[i];
        double d = fabs((double)y[i] - c);
        worst = t_worse(worst, d);
    }
    CHECK(worst <= 0.5 / 32767 + 1e-7, "pcm16 round trip error %g > half a step", worst);
    CHECK(y && y[0] == 0.0f && y[1] == -1.0f && y[2] == 1.0f, "0, -1, +1 exact");
    free(y);
    {
        FILE *f = fopen(path, "rb");
        unsigned char h[44] = {0};
        CHECK(f && fread(h, 1, 44, f) == 44, "read header");
        if (f) fclose(f);
        CHECK(!memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVEfmt ", 8) && !memcmp(h + 36, "data", 4), "chunk ids");
        unsigned riff = h[4] | h[5] << 8 | h[6] << 16 | (unsigned)h[7] << 24;
        unsigned data = h[40] | h[41] << 8 | h[42] << 16 | (unsigned)h[43] << 24;
        CHECK(data == 4 * N && riff == 36 + data, "sizes riff %u data %u", riff, data);
        CHECK(h[20] == 1 && h[22] == 2 && h[34] == 16 && (h[28] | h[29] << 8 | h[30] << 16) == 22050 * 4,
              "fmt: PCM, 2 ch, 16 bit, byte rate");
    }
    /* float mono: bit exact */
    snprintf(path, sizeof path, "%s/f32.wav", g_dir);
    CHECK(m2u_wav_write(path, x, 2 * N, 1, 32000, M2U_WAV_FLOAT32) == 0, "%s", m2u_last_error());
    CHECK(m2u_wav_read(path, &y, &nf, &ch, &rate, &fmt) == 0, "%s", m2u_last_error());
    CHECK(nf == 2 * N && ch == 1 && rate == 32000 && fmt == M2U_WAV_FLOAT32, "float header");
    CHECK(y && !memcmp(x, y, sizeof x), "float32 round trip is bit exact");
    free(y);
    /* refusals leave nothing */
    x[5] = NAN;
    snprintf(path, sizeof path, "%s/nan.wav", g_dir);
    CHECK(m2u_wav_write(path, x, N, 1, 32000, M2U_WAV_FLOAT32) != 0 && strstr(m2u_last_error(), "not finite"),
          "NaN refused in float: %s", m2u_last_error());
    CHECK(!exists("%s", path), "no file after a refusal");
    CHECK(m2u_wav_write(path, x, N, 1, 32000, M2U_WAV_PCM16) == 0, "NaN written as 0 in PCM");
    CHECK(m2u_wav_read(path, &y, &nf, &ch, &rate, &fmt) == 0 && y && y[5] == 0.0f, "NaN -> 0");
    free(y);
    CHECK(m2u_wav_write(path, x, N, 0, 32000, M2U_WAV_PCM16) != 0, "0 channels refused");
    CHECK(m2u_wav_write(path, x, N, 1, 0, M2U_WAV_PCM16) != 0, "rate 0 refused");
    snprintf(path, sizeof path, "%s/no/such/dir/x.wav", g_dir);
    CHECK(m2u_wav_write(path, x, N, 1, 32000, M2U_WAV_PCM16) != 0, "unwritable path refused");
    CHECK(!temp_left(g_dir), "no temp file left");
}

/* ---- 2. init loads and generates --------------------------------------------------------- */

static void test_init(void) {
    CHECK(t_sh("%s/m2u-generate init --out %s/mg --hidden 32 --layers 2 --heads 4 --codebooks 4 --vocab 64 "
             "--text-hidden 24 --seed 5 > /dev/null",
             M2U_BUILD_DIR, g_dir) == 0,
          "init");
    CHECK(t_sh("%s/m2u-generate init --out %s/mg > /dev/null 2>&1", M2U_BUILD_DIR, g_dir) == 1, "init refuses an existing dir");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/mg", g_dir);
    m2u_encodec *ec = NULL;
    CHECK(m2u_encodec_load(dir, NULL, &ec) == 0, "EnCodec with its encoder loads: %s", m2u_last_error());
    if (ec) {
        const m2u_encodec_config *c = m2u_encodec_config_of(ec);
        CHECK(c->sampling_rate == 32000 && c->hop_length == 640 && c->frame_rate == 50 && c->num_quantizers == 4 &&
                  c->codebook_size == 64,
              "codec config: rate %d hop %d frame rate %d quantizers %d", c->sampling_rate, c->hop_length,
              c->frame_rate, c->num_quantizers);
        /* encode of a tone -> codes in range, 4 codebooks */
        float tone[6400];
        for (int i = 0; i < 6400; i++) tone[i] = 0.3f * sinf(2 * 3.14159265f * 440 * i / 32000.0f);
        int32_t *codes = NULL;
        int N = 0;
        CHECK(m2u_encodec_encode(ec, tone, 6400, 4, &codes, &N) == 0 && N == 10, "encode: %s", m2u_last_error());
        int ok = 1;
        for (int i = 0; codes && i < 4 * N; i++) ok &= codes[i] >= 0 && codes[i] < 64;
        CHECK(ok, "codes in range");
        free(codes);
        m2u_encodec_free(ec);
    }
    m2u_music *mu = NULL;
    CHECK(m2u_music_open(dir, 0, &mu) == 0, "open: %s", m2u_last_error());
    if (!mu) return;
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(mu->lm);
    CHECK(lc->text_hidden == 24 && lc->has_proj && lc->codebooks == 4 && lc->vocab == 64 && lc->guidance_scale == 3.0f,
          "decoder config");
    CHECK(m2u_music_open(dir, 1, &(m2u_music *){NULL}) != 0, "text path refused without a text encoder");
    int S = 6;
    float st[6 * 24];
    for (int i = 0; i < S * 24; i++) st[i] = sinf(0.37f * i);
    int ml = m2u_music_max_length(mu, 0.3);
    CHECK(ml == 15 + 4, "0.3 s = 15 frames (+4): %d", ml);
    m2u_musicgen_gen_opts o = m2u_musicgen_default_opts(ml);
    o.seed = 11;
    m2u_music_clip a, b, c;
    CHECK(m2u_music_from_states(mu, st, NULL, S, &o, &a) == 0, "%s", m2u_last_error());
    CHECK(m2u_music_from_states(mu, st, NULL, S, &o, &b) == 0, "%s", m2u_last_error());
    o.guidance_scale = 1.0f;
    CHECK(m2u_music_from_states(mu, st, NULL, S, &o, &c) == 0, "%s", m2u_last_error());
    CHECK(a.K == 4 && a.N == 15 && a.n == 15 * 640, "clip shape K %d N %d n %zu", a.K, a.N, a.n);
    int fin = 1;
    double rms = 0;
    for (size_t i = 0; a.wav && i < a.n; i++) fin &= isfinite(a.wav[i]), rms += (double)a.wav[i] * a.wav[i];
    CHECK(fin && rms > 0, "finite, non-silent audio");
    CHECK(a.codes && b.codes && !memcmp(a.codes, b.codes, 60 * sizeof(int32_t)) && !memcmp(a.wav, b.wav, a.n * 4),
          "same seed, same clip");
    CHECK(a.codes && c.codes && memcmp(a.codes, c.codes, 60 * sizeof(int32_t)), "CFG 3 differs from no CFG");
    /* the tool's decode equals EnCodec on the codes */
    m2u_music_clip_free(&a);
    m2u_music_clip_free(&b);
    m2u_music_clip_free(&c);
    float bad = NAN;
    st[3] = bad;
    CHECK(m2u_music_from_states(mu, st, NULL, S, &o, &a) != 0 && strstr(m2u_last_error(), "not finite"),
          "non-finite conditioning refused");
    o.max_length = 4;
    st[3] = 0;
    CHECK(m2u_music_from_states(mu, st, NULL, S, &o, &a) != 0, "max_length < 2K-1 refused");
    m2u_music_close(mu);
}

/* ---- 3. the chain against PyTorch -------------------------------------------------------- */

static float *read_t(m2u_safetensors *st, const char *name, size_t *n) {
    const m2u_st_tensor *t = m2u_st_find(st, name);
    if (!t) return NULL;
    float *d = malloc((size_t)t->numel * sizeof(float));
    if (d && m2u_st_read_f32(t, d, (size_t)t->numel)) {
        free(d);
        return NULL;
    }
    *n = (size_t)t->numel;
    return d;
}

static void test_chain(void) {
    const char *fx = M2U_FIXTURES "/generate";
    char p[512];
    snprintf(p, sizeof p, "%s/ref.safetensors", fx);
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(p, &st) == 0, "%s", m2u_last_error());
    if (!st) return;
    snprintf(p, sizeof p, "%s/musicgen", fx);
    m2u_music *mu = NULL;
    m2u_musicgen *lm = NULL;
    CHECK(m2u_musicgen_load(p, 0, &lm) == 0, "%s", m2u_last_error());
    size_t n_meta = 0, n_x = 0, n_states = 0, n_logits = 0, n_codes = 0;
    float *meta = read_t(st, "meta", &n_meta); /* dim, n_aud, d_model, heads, enc, dec, ffn, n_out, out_dim, scale, steps, max_length */
    float *x = read_t(st, "proj_in", &n_x), *ref_states = read_t(st, "states", &n_states);
    float *ref_logits = read_t(st, "guided_logits", &n_logits), *ref_codes = read_t(st, "codes", &n_codes);
    CHECK(meta && n_meta == 12 && x && ref_states && ref_logits && ref_codes && lm, "fixture tensors");
    if (!(meta && n_meta == 12 && x && ref_states && ref_logits && ref_codes && lm)) goto done;
    m2u_projector_config pc = m2u_projector_preset_musicgen((int)meta[0]);
    pc.n_in = (int)meta[1], pc.d_model = (int)meta[2], pc.n_heads = (int)meta[3], pc.n_enc = (int)meta[4];
    pc.n_dec = (int)meta[5], pc.ffn = (int)meta[6], pc.n_out = (int)meta[7], pc.out_dim = (int)meta[8];
    pc.target_scale = meta[9];
    int steps = (int)meta[10], ml = (int)meta[11];
    size_t np = m2u_projector_size(&pc);
    float *params = calloc(np, sizeof(float));
    m2u_projector pj;
    memset(&pj, 0, sizeof pj);
    CHECK(params && m2u_projector_init(&pj, &pc, params, NULL) == 0, "%s", m2u_last_error());
    int n_loaded = 0;
    CHECK(m2u_params_load(pj.params, pj.n_params, st, 1, &n_loaded) == 0, "projector weights: %s", m2u_last_error());
    float *states = NULL;
    CHECK(m2u_music_states_from_aud(&pj, x, &states) == 0, "%s", m2u_last_error());
    if (states) {
        double e = t_max_rel_err(states, ref_states, n_states);
        printf("projector / target_scale vs torch: max rel err %.3g\n", e);
        CHECK(n_states == (size_t)pc.n_out * pc.out_dim && e < 1e-5, "states rel err %g", e);
    }
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(lm);
    int K = lc->codebooks, V = lc->vocab;
    CHECK(n_logits == (size_t)steps * K * V, "logits count");
    /* guided logits of the first `steps` passes from the torch states (teacher-forced on the reference
     * delayed sequence, stored as seq) */
    size_t n_seq = 0;
    float *seq = read_t(st, "seq", &n_seq);
    m2u_musicgen_session *s = NULL;
    CHECK(seq && n_seq == (size_t)K * ml, "seq");
    if (states && seq && m2u_musicgen_begin(lm, states, NULL, pc.n_out, 1, steps, &s) == 0) {
        float *g = malloc((size_t)K * V * sizeof(float));
        double worst = 0;
        for (int t = 0; t < steps; t++) {
            int32_t ids[4];
            for (int k = 0; k < K; k++) ids[k] = (int32_t)seq[(size_t)k * ml + t];
            CHECK(m2u_musicgen_step(s, ids, 3.0f, NULL, g) == 0, "%s", m2u_last_error());
            double e = t_max_rel_err(g, ref_logits + (size_t)t * K * V, (size_t)K * V);
            worst = t_worse(worst, e);
        }
        printf("guided logits (CFG 3) of %d passes vs torch: max rel err %.3g\n", steps, worst);
        CHECK(worst < 1e-5, "guided logits rel err %g", worst);
        free(g);
        m2u_musicgen_session_free(s);
    } else
        CHECK(0, "begin: %s", m2u_last_error());
    /* greedy codes through the library's path (projector output -> MusicGen, CFG 3) */
    if (states) {
        m2u_musicgen_gen_opts o = m2u_musicgen_default_opts(ml);
        o.do_sample = 0;
        o.guidance_scale = 3.0f;
        int N = ml - K;
        int32_t *codes = malloc((size_t)K * N * sizeof(int32_t));
        CHECK(codes && n_codes == (size_t)K * N && m2u_musicgen_generate(lm, states, NULL, pc.n_out, &o, codes, NULL) == 0,
              "%s", m2u_last_error());
        int same = 1;
        for (int i = 0; codes && i < K * N && (size_t)i < n_codes; i++) same &= codes[i] == (int32_t)ref_codes[i];
        CHECK(same, "greedy codes (CFG 3, %d frames) identical to torch", N);
        free(codes);
    }
    free(seq);
    free(states);
    m2u_projector_free(&pj);
    free(params);
done:
    free(meta), free(x), free(ref_states), free(ref_logits), free(ref_codes);
    m2u_musicgen_free(lm);
    m2u_music_close(mu);
    m2u_st_close(st);
}

/* ---- 3b. continuation against transformers' generate(input_values=...) ------------------------ */

static void test_continue(void) {
    const char *fx = M2U_FIXTURES "/generate";
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(M2U_FIXTURES "/generate/continue_ref.safetensors", &st) == 0, "%s", m2u_last_error());
    if (!st) return;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/continue", fx);
    m2u_music *mu = NULL;
    CHECK(m2u_music_open_ex(dir, 0, 1, NULL, &mu) == 0, "open with the codec encoder: %s", m2u_last_error());
    /* the T5 part for the text + audio case (the fixture has no tokenizer: ids are given) */
    m2u_musicgen *t5lm = NULL;
    CHECK(m2u_musicgen_load(dir, 1, &t5lm) == 0, "%s", m2u_last_error());
    size_t n_wav = 0, n_pc = 0, n_ids = 0, n_g3 = 0, n_g1 = 0, n_enc = 0, n_ml = 0;
    float *wav = read_t(st, "wav", &n_wav), *pc = read_t(st, "prompt_codes", &n_pc), *ids_f = read_t(st, "ids", &n_ids);
    float *g3 = read_t(st, "codes_g3", &n_g3), *g1 = read_t(st, "codes_g1", &n_g1), *enc = read_t(st, "enc", &n_enc);
    float *mlf = read_t(st, "max_length", &n_ml);
    int ok = mu && t5lm && wav && pc && ids_f && g3 && g1 && enc && mlf;
    CHECK(ok, "continuation fixture");
    if (!ok) goto done;
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(mu->lm);
    int K = lc->codebooks, ml = (int)mlf[0], N = ml - K;
    /* the prompt's codes: EnCodec encode as generate's _prepare_audio_encoder_kwargs_for_generation */
    int32_t *codes = NULL;
    int P = 0;
    CHECK(m2u_music_prompt_codes(mu, wav, n_wav, &codes, &P) == 0, "%s", m2u_last_error());
    int same = codes && (size_t)K * P == n_pc;
    for (size_t i = 0; same && i < n_pc; i++) same = codes[i] == (int32_t)pc[i];
    CHECK(same, "prompt codes [%d, %d] identical to EncodecModel.encode", K, P);
    m2u_musicgen_gen_opts o = m2u_musicgen_default_opts(ml);
    o.do_sample = 0;
    o.prompt_codes = codes;
    o.prompt_frames = P;
    int32_t *out = malloc((size_t)K * N * sizeof(int32_t));
    /* text + audio prompt with CFG 3 (the text path: HF appends the null half itself) */
    int32_t ids[16];
    int St = (int)n_ids;
    for (int i = 0; i < St && i < 16; i++) ids[i] = (int32_t)ids_f[i];
    float *states = malloc((size_t)St * lc->text_hidden * sizeof(float));
    o.guidance_scale = 3.0f;
    CHECK(out && states && m2u_musicgen_encode_text(t5lm, ids, NULL, St, states) == 0 &&
              m2u_musicgen_generate(mu->lm, states, NULL, St, &o, out, NULL) == 0,
          "%s", m2u_last_error());
    same = out && n_g3 == (size_t)K * N;
    for (size_t i = 0; same && i < n_g3; i++) same = out[i] == (int32_t)g3[i];
    CHECK(same, "text + audio prompt, CFG 3: %d codes per codebook (%d prompt + %d new) identical to HF generate", N, P,
          N - P);
    /* encoder states + audio prompt, no CFG */
    o.guidance_scale = 1.0f;
    CHECK(out && m2u_musicgen_generate(mu->lm, enc, NULL, (int)(n_enc / lc->text_hidden), &o, out, NULL) == 0, "%s",
          m2u_last_error());
    same = out && n_g1 == (size_t)K * N;
    for (size_t i = 0; same && i < n_g1; i++) same = out[i] == (int32_t)g1[i];
    CHECK(same, "states + audio prompt, no CFG: codes identical to HF generate");
    /* refusals */
    o.prompt_frames = N;
    CHECK(m2u_musicgen_generate(mu->lm, enc, NULL, 5, &o, out, NULL) != 0, "prompt as long as the output refused");
    o.prompt_frames = P;
    codes[0] = 64;
    CHECK(m2u_musicgen_generate(mu->lm, enc, NULL, 5, &o, out, NULL) != 0 && strstr(m2u_last_error(), "prompt code"),
          "prompt code out of range refused");
    free(out);
    free(states);
    free(codes);
    /* text -> music end to end through the tool: tokenizer, T5, CFG 3, greedy, EnCodec, WAV, against the
     * waveform transformers' generate returns */
    {
        size_t n_ta = 0;
        float *ta = read_t(st, "text_audio", &n_ta), *y = NULL;
        int rc = t_sh("%s/m2u-generate --musicgen %s --tokenizer %s/t5/tokenizer.json --text 'calm lo-fi piano with soft "
                    "rain' --greedy --guidance 3 --seconds 0.1 --float --out %s/t.wav > /dev/null 2> %s/err12",
                    M2U_BUILD_DIR, dir, M2U_FIXTURES, g_dir, g_dir);
        char p[256];
        snprintf(p, sizeof p, "%s/t.wav", g_dir);
        size_t nf = 0;
        int ch, rate;
        m2u_wav_format fmt;
        int ok2 = rc == 0 && ta && m2u_wav_read(p, &y, &nf, &ch, &rate, &fmt) == 0 && nf == n_ta && rate == 1600;
        double e = ok2 ? t_max_rel_err(y, ta, n_ta) : 1;
        if (ok2) printf("text -> WAV through m2u-generate vs transformers' generate: max rel err %.3g\n", e);
        CHECK(ok2 && e < 1e-4, "text -> music end to end (rel err %g; see %s/err12)", e, g_dir);
        free(ta);
        free(y);
    }
done:
    free(wav), free(pc), free(ids_f), free(g3), free(g1), free(enc), free(mlf);
    m2u_musicgen_free(t5lm);
    m2u_music_close(mu);
    m2u_st_close(st);
}

/* ---- 4. bad input: no WAV --------------------------------------------------------------- */

static void test_bad_input(void) {
    const char *b = M2U_BUILD_DIR;
    CHECK(t_sh("%s/m2u-generate --musicgen %s/nope --text x --out %s/b1.wav 2> %s/err1", b, g_dir, g_dir, g_dir) == 1 &&
              !exists("%s/b1.wav", g_dir),
          "missing MusicGen dir: exit 1, no WAV");
    t_sh("mkdir -p %s/melody && printf '{\"model_type\": \"musicgen_melody\"}' > %s/melody/config.json", g_dir, g_dir);
    CHECK(t_sh("%s/m2u-generate --musicgen %s/melody --text x --out %s/b2.wav 2> %s/err2", b, g_dir, g_dir, g_dir) == 1 &&
              !exists("%s/b2.wav", g_dir) && t_sh("grep -q melody %s/err2", g_dir) == 0,
          "melody checkpoint: named, no WAV");
    CHECK(t_sh("%s/m2u-generate --musicgen %s/mg --text x --out %s/b3.wav 2> %s/err3", b, g_dir, g_dir, g_dir) == 1 &&
              !exists("%s/b3.wav", g_dir) && t_sh("grep -q text_encoder %s/err3", g_dir) == 0,
          "no text encoder: named, no WAV");
    CHECK(t_sh("%s/m2u-generate --musicgen %s/mg --text x --seconds -1 --out %s/b4.wav 2> /dev/null", b, g_dir, g_dir) == 2 &&
              !exists("%s/b4.wav", g_dir),
          "bad --seconds: exit 2");
    CHECK(t_sh("%s/m2u-generate --musicgen %s/mg --bogus 1 --out %s/b5.wav 2> %s/err5", b, g_dir, g_dir, g_dir) == 2 &&
              t_sh("grep -q 'unknown option' %s/err5 && grep -q usage: %s/err5", g_dir, g_dir) == 0,
          "unknown option: what was wrong + usage, exit 2");
    CHECK(t_sh("%s/m2u-generate --help | grep -q 'm2u-generate init'", b) == 0, "--help has examples");
    CHECK(!temp_left(g_dir), "no temp file left");
}

/* ---- 5. the --run path ------------------------------------------------------------------ */

static void write_ppm(const char *path, int w, int h, int seed) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fprintf(f, "P6\n%d %d\n255\n", w, h);
    for (int i = 0; i < w * h; i++) {
        unsigned char px[3] = {(unsigned char)(i * 7 + seed), (unsigned char)(i / w * 3), (unsigned char)(seed * 40)};
        fwrite(px, 1, 3, f);
    }
    fclose(f);
}

static int make_run(void) {
    char path[256];
    t_sh("mkdir -p %s/data", g_dir);
    snprintf(path, sizeof path, "%s/data/shard-00000.h5", g_dir);
    m2u_shard_tensor_spec cols[2] = {{.name = "vit", .dtype = M2U_F16, .rank = 2, .dims = {197, 768}},
                                     {.name = "t5", .dtype = M2U_F16, .rank = 2, .dims = {8, 24}}};
    /* reference music (1.2 s at 16 kHz: FAD's embedding takes clips of 1 s or more) for m2u-eval
     * run --musicgen's scoring (section 6) */
    m2u_shard_spec spec = {.n_tensors = 2, .tensors = cols, .audio_rate = 16000};
    int16_t *aud = malloc(19200 * sizeof *aud);
    m2u_shard_writer *w;
    if (m2u_shard_create(path, &spec, &w)) return -1;
    float *vit = malloc(197 * 768 * sizeof(float)), t5[8 * 24];
    for (int i = 0; i < 12; i++) {
        for (int k = 0; k < 197 * 768; k++) vit[k] = sinf(0.001f * k * (1 + i));
        for (int k = 0; k < 8 * 24; k++) t5[k] = 0.1f * cosf(0.3f * k + i);
        char id[16];
        snprintf(id, sizeof id, "m%02d", i);
        m2u_shard_sample s = {0};
        s.text[M2U_TEXT_ID] = id;
        s.text[M2U_TEXT_KIND] = "muimage";
        s.text[M2U_TEXT_SPLIT] = i % 4 == 3 ? "valid" : "train";
        s.text[M2U_TEXT_LICENCE] = "CC0-1.0";
        s.text[M2U_TEXT_INSTRUCTION] = "Compose music for this picture.";
        s.text[M2U_TEXT_OUTPUT_TEXT] = "Here is music.";
        s.tensor[0] = vit;
        s.tensor[1] = t5;
        for (int k = 0; k < 19200; k++) aud[k] = (int16_t)(8000 * sinf(6.2831853f * (220.0f + 55 * i) * k / 16000.0f));
        s.audio = aud;
        s.audio_len = 19200;
        if (m2u_shard_append(w, &s)) return -1;
    }
    free(vit);
    free(aud);
    if (m2u_shard_close(w)) return -1;
    snprintf(path, sizeof path, "%s/data", g_dir);
    t_manifest_one_shard(path);
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
            "run:\n  name: g\n  seed: 7\n  keep_last: 1\n  save_every: 40\n  log_every: 10\n  eval_every: 40\n"
            "model:\n  llm: %s/base\n  aud_tokens: 8\n  query_layer: 1\n  modalities: [image]\n"
            "  image_tokens: 197\n  image_dim: 768\n  decoder: musicgen\n"
            "  projector:\n    d_model: 16\n    heads: 2\n    enc_layers: 1\n    dec_layers: 1\n    ffn: 32\n"
            "    n_out: 8\n    out_dim: 24\n    target_scale: 10.0\n"
            "lora:\n  r: 4\n  alpha: 4\n  dropout: 0.0\n"
            "train:\n  stage: 3\n  trainable: [lora, norm, adapters, gates, prefix_query, projector, aud_embeddings]\n"
            "  data: %s/data/manifest.json\n  kinds: [muimage]\n  max_len: 96\n  batch: 4\n  accum: 1\n"
            "  max_steps: 40\n  lr: 1.0e-2\n  warmup_steps: 2\n"
            "eval:\n  split: valid\n  batches: 1\n  max_new_tokens: 4\n",
            g_dir, g_dir);
    fclose(f);
    return t_sh("OMP_NUM_THREADS=2 ASAN_OPTIONS=detect_leaks=0 %s/m2u-train %s run.out_dir=%s/run 2> %s/train.log",
              M2U_BUILD_DIR, path, g_dir, g_dir);
}

static void test_run(void) {
    int rc = make_run();
    CHECK(rc == 0, "tiny run (see %s/train.log)", g_dir);
    if (rc) return;
    char img[256];
    snprintf(img, sizeof img, "%s/pic.ppm", g_dir);
    write_ppm(img, 64, 48, 3);
    t_sh("printf 'not an image' > %s/bad.png", g_dir);
    const char *b = M2U_BUILD_DIR;
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt 'Compose music for this picture.' --image %s "
            "--seconds 0.2 --seed 4 --float --out %s/r.wav > %s/run.out 2> %s/run.err",
            b, g_dir, g_dir, img, g_dir, g_dir, g_dir);
    CHECK(rc == 0, "--run generation (see %s/run.err)", g_dir);
    CHECK(t_sh("grep -q '^answer: Here is music' %s/run.out", g_dir) == 0, "the trained answer is printed");
    CHECK(t_sh("grep -q 'frames/s, real-time factor' %s/run.err", g_dir) == 0, "progress line with frames/s and RTF");
    float *y = NULL;
    size_t nf = 0;
    int ch, rate;
    m2u_wav_format fmt;
    char p[256];
    snprintf(p, sizeof p, "%s/r.wav", g_dir);
    CHECK(m2u_wav_read(p, &y, &nf, &ch, &rate, &fmt) == 0 && nf == 10 * 640 && ch == 1 && rate == 32000 &&
              fmt == M2U_WAV_FLOAT32,
          "WAV: %zu frames", nf);
    free(y);
    snprintf(p, sizeof p, "%s/r.wav.json", g_dir);
    char *txt = NULL;
    size_t len;
    cJSON *j = NULL;
    CHECK(m2u_read_file(p, &txt, &len) == 0 && (j = cJSON_Parse(txt)) != NULL, "sidecar JSON");
    if (j) {
        cJSON *s = cJSON_GetObjectItem(j, "settings"), *h = cJSON_GetObjectItem(j, "sha256");
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "mode")), "m2ugen"), "mode");
        CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "answer")), "Here is music") != NULL, "answer");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "seed")) == 4 &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(s, "frames")) == 10 &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(s, "guidance_scale")) == 3 &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(s, "top_k")) == 250,
              "settings");
        CHECK(cJSON_GetArraySize(h) >= 4, "hashes of config.json, generation_config, model, run config, checkpoint");
        cJSON_Delete(j);
    }
    free(txt);
    /* same seed -> the same WAV; batch -> numbered files */
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt 'Compose music for this picture.' --image %s "
            "--seconds 0.2 --seed 4 --float --out %s/r2.wav > /dev/null 2>&1",
            b, g_dir, g_dir, img, g_dir);
    {
        /* same codes -> byte-identical audio: EnCodec's decode does not depend on timing or thread count
         * (it once did, by up to 4e-8 on 0.09 peaks; test_encodec checks it directly) */
        float *a = NULL, *c = NULL;
        size_t na = 0, nc = 0;
        char pa[256], pc[256];
        snprintf(pa, sizeof pa, "%s/r.wav", g_dir);
        snprintf(pc, sizeof pc, "%s/r2.wav", g_dir);
        int ok = rc == 0 && m2u_wav_read(pa, &a, &na, &ch, &rate, &fmt) == 0 &&
                 m2u_wav_read(pc, &c, &nc, &ch, &rate, &fmt) == 0 && na == nc && na > 0;
        double worst = 0;
        for (size_t i = 0; ok && i < na; i++)
            if (fabs((double)a[i] - c[i]) > worst) worst = fabs((double)a[i] - c[i]);
        CHECK(ok && worst == 0, "same seed, same WAV (max diff %g)", worst);
        free(a);
        free(c);
    }
    t_sh("printf 'Compose music for this picture.\\nCompose music for this picture.\\n' > %s/prompts.txt", g_dir);
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --batch %s/prompts.txt --image %s --seconds 0.2 --seed 4 "
            "--out %s/bt.wav > /dev/null 2>&1",
            b, g_dir, g_dir, g_dir, img, g_dir);
    CHECK(rc == 0 && exists("%s/bt-000.wav", g_dir) && exists("%s/bt-001.wav.json", g_dir) && !exists("%s/bt.wav", g_dir),
          "--batch: bt-000.wav, bt-001.wav");
    /* the run exported in M2UGen's layout and read back with --checkpoint: the same clip */
    rc = t_sh("%s/m2u-export m2ugen --base %s/base --run %s/run --out %s/exp > /dev/null 2>&1", b, g_dir, g_dir, g_dir);
    CHECK(rc == 0, "m2u-export m2ugen");
    rc = t_sh("%s/m2u-generate --run %s/run --checkpoint %s/exp/checkpoint.pth --musicgen %s/mg "
            "--prompt 'Compose music for this picture.' --image %s --seconds 0.2 --seed 4 --float --out %s/r7.wav "
            "> /dev/null 2> %s/err10",
            b, g_dir, g_dir, g_dir, img, g_dir, g_dir);
    {
        float *a = NULL, *c = NULL;
        size_t na = 0, nc = 0;
        char pa[256], pc[256];
        snprintf(pa, sizeof pa, "%s/r.wav", g_dir);
        snprintf(pc, sizeof pc, "%s/r7.wav", g_dir);
        int ok = rc == 0 && m2u_wav_read(pa, &a, &na, &ch, &rate, &fmt) == 0 &&
                 m2u_wav_read(pc, &c, &nc, &ch, &rate, &fmt) == 0 && na == nc && na > 0;
        double worst = 0;
        for (size_t i = 0; ok && i < na; i++)
            if (fabs((double)a[i] - c[i]) > worst) worst = fabs((double)a[i] - c[i]);
        /* the export rounds nothing (fp32) but permutes to Meta's RoPE layout and back */
        CHECK(ok && worst < 1e-4, "--checkpoint (M2UGen layout) gives the run's clip (max diff %g; see %s/err10)",
              worst, g_dir);
        free(a);
        free(c);
    }
    /* --continue: the 0.2 s clip (10 frames) as the audio prompt, 0.2 s more: 20 frames, starting with the
     * prompt re-synthesised from its codes */
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt 'Compose music for this picture.' --image %s "
            "--continue %s/r.wav --seconds 0.2 --seed 4 --float --out %s/c.wav > /dev/null 2> %s/err11",
            b, g_dir, g_dir, img, g_dir, g_dir, g_dir);
    snprintf(p, sizeof p, "%s/c.wav", g_dir);
    y = NULL;
    CHECK(rc == 0 && m2u_wav_read(p, &y, &nf, &ch, &rate, &fmt) == 0 && nf == 20 * 640,
          "--continue: prompt + new frames (%zu samples; see %s/err11)", nf, g_dir);
    free(y);
    CHECK(t_sh("grep -q '\"prompt_frames\":.*10' %s/c.wav.json", g_dir) == 0, "sidecar records the prompt frames");
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt x --continue %s/bad.png --out %s/c2.wav 2> /dev/null",
            b, g_dir, g_dir, g_dir, g_dir);
    CHECK(rc == 1 && !exists("%s/c2.wav", g_dir), "--continue with unreadable audio: exit 1, no WAV");
    /* unreadable media: named, no WAV */
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt x --image %s/bad.png --out %s/r3.wav 2> %s/err6",
            b, g_dir, g_dir, g_dir, g_dir, g_dir);
    CHECK(rc == 1 && !exists("%s/r3.wav", g_dir) && t_sh("grep -q bad.png %s/err6", g_dir) == 0,
          "unreadable image: named, no WAV");
    /* a modality the run has no adapter for */
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt x --video %s --out %s/r4.wav 2> %s/err7", b, g_dir,
            g_dir, img, g_dir, g_dir);
    CHECK(rc == 1 && !exists("%s/r4.wav", g_dir) && t_sh("grep -q 'no adapter' %s/err7", g_dir) == 0, "no video adapter");
    /* a real ViT of another shape than the run's adapter: named, no WAV */
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg --prompt x --image %s --vit %s/encoders/vit_a --out %s/r6.wav "
            "2> %s/err9",
            b, g_dir, g_dir, img, M2U_FIXTURES, g_dir, g_dir);
    CHECK(rc == 1 && !exists("%s/r6.wav", g_dir) && t_sh("grep -q 'the encoder gives' %s/err9", g_dir) == 0,
          "--vit of another shape refused");
    /* a MusicGen whose conditioning width differs from the projector's */
    t_sh("%s/m2u-generate init --out %s/mg40 --hidden 32 --vocab 64 --text-hidden 40 > /dev/null", b, g_dir);
    rc = t_sh("%s/m2u-generate --run %s/run --musicgen %s/mg40 --prompt x --out %s/r5.wav 2> %s/err8", b, g_dir, g_dir,
            g_dir, g_dir);
    CHECK(rc == 1 && !exists("%s/r5.wav", g_dir) && t_sh("grep -q '24-wide' %s/err8", g_dir) == 0, "width mismatch named");
}

/* ---- 6. m2u-eval run --musicgen: the generation benchmark end to end ---------------------- */

static char *slurp(const char *fmt, ...) M2U_PRINTF(1, 2);
static char *slurp(const char *fmt, ...) {
    char p[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    char *t = NULL;
    size_t n;
    return m2u_read_file(p, &t, &n) ? NULL : t;
}

static void test_eval_run(void) {
    const char *b = M2U_BUILD_DIR;
    /* the valid split holds m03, m07, m11 (muimage, "Compose music for this picture." -> "Here is music." + [AUD]) */
    int rc = t_sh("%s/m2u-eval run --run %s/run --split valid --kinds muimage --musicgen %s/mg --seconds 1.2 --seed 4 "
                "--out %s/ev > %s/ev.out 2> %s/ev.err",
                b, g_dir, g_dir, g_dir, g_dir, g_dir);
    CHECK(rc == 0, "m2u-eval run --musicgen (see %s/ev.err)", g_dir);
    static const char *const ids[3] = {"m03", "m07", "m11"};
    for (int k = 0; k < 3; k++) {
        char p[256];
        snprintf(p, sizeof p, "%s/ev/music/%s.wav", g_dir, ids[k]);
        float *y = NULL;
        size_t nf = 0;
        int ch = 0, rate = 0;
        m2u_wav_format fmt = M2U_WAV_FLOAT32;
        double peak = 0;
        int ok = m2u_wav_read(p, &y, &nf, &ch, &rate, &fmt) == 0;
        for (size_t i = 0; ok && i < nf; i++) peak = fmax(peak, fabs(y[i]));
        CHECK(ok && nf == 60 * 640 && ch == 1 && rate == 32000 && fmt == M2U_WAV_PCM16 && peak > 0,
              "%s: PCM16 WAV of 60 frames x 640 samples at 32 kHz, not silent (%zu samples, peak %g)", p, nf, peak);
        free(y);
    }
    char *pj = slurp("%s/ev/music/predictions.jsonl", g_dir);
    int lines = 0, good = 0;
    for (char *l = pj; l && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        cJSON *j = cJSON_Parse(l);
        lines++;
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
        const char *au = cJSON_GetStringValue(cJSON_GetObjectItem(j, "audio"));
        const char *tx = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
        char want[16];
        snprintf(want, sizeof want, "%s.wav", id ? id : "?");
        good += id && au && tx && !strcmp(au, want) && strstr(tx, "Here is music") != NULL;
        cJSON_Delete(j);
        l = e ? e + 1 : l + strlen(l);
    }
    CHECK(pj && lines == 3 && good == 3, "music/predictions.jsonl: %d lines, %d {id, audio, text: the answer}", lines,
          good);
    free(pj);
    char *rj = slurp("%s/ev/report.json", g_dir);
    cJSON *r = rj ? cJSON_Parse(rj) : NULL, *m = cJSON_GetObjectItem(r, "music");
    CHECK(m && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "n_items")) == 3 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(m, "n_generated")) == 3 &&
              cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "fad"), "value")) &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "split")) ? cJSON_GetStringValue(cJSON_GetObjectItem(m, "split")) : "", "valid"),
          "report.json: music section with 3 of 3 generated");
    {
        cJSON *its = cJSON_GetObjectItem(m, "items");
        int gen = 0;
        for (int i = 0; i < cJSON_GetArraySize(its); i++) {
            cJSON *it = cJSON_GetArrayItem(its, i);
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(it, "answer_text"));
            gen += cJSON_IsTrue(cJSON_GetObjectItem(it, "generated")) && t && strstr(t, "Here is music");
        }
        CHECK(gen == 3, "report.json music items: %d generated with the answer text", gen);
    }
    cJSON_Delete(r);
    free(rj);
    char *md = slurp("%s/ev/report.md", g_dir), *html = slurp("%s/ev/report.html", g_dir);
    CHECK(md && strstr(md, "Generated music"), "report.md has the Generated music section");
    CHECK(html && strstr(html, "Generated music") && strstr(html, "data:audio/wav;base64,"),
          "report.html has the section with playable clips");
    free(md);
    free(html);
    CHECK(t_sh("grep -q 'music: 3 of 3 generation samples' %s/ev.out", g_dir) == 0, "summary line");
    t_sh("grep '^music' %s/ev.out", g_dir); /* the scores, in the test log */
    /* an answer cut before [AUD0] (one new token): no clip, reported as not generated */
    rc = t_sh("%s/m2u-eval run --run %s/run --split valid --kinds muimage --max-new-tokens 1 --musicgen %s/mg "
            "--seconds 0.2 --out %s/ev1 > /dev/null 2> %s/ev1.err",
            b, g_dir, g_dir, g_dir, g_dir);
    rj = slurp("%s/ev1/report.json", g_dir);
    r = rj ? cJSON_Parse(rj) : NULL, m = cJSON_GetObjectItem(r, "music");
    pj = slurp("%s/ev1/music/predictions.jsonl", g_dir);
    CHECK(rc == 0 && m && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "n_items")) == 3 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(m, "n_generated")) == 0 && pj && !pj[0] &&
              !exists("%s/ev1/music/m03.wav", g_dir),
          "no [AUD] block: no clip, 0 of 3 generated (see %s/ev1.err)", g_dir);
    cJSON_Delete(r);
    free(rj);
    free(pj);
    /* options */
    CHECK(t_sh("%s/m2u-eval run --run %s/run --seed 3 > /dev/null 2>&1", b, g_dir) == 2, "--seed without --musicgen: usage");
    CHECK(t_sh("%s/m2u-eval run --run %s/run --musicgen %s/mg --guidance 0.5 > /dev/null 2>&1", b, g_dir, g_dir) == 2,
          "--guidance < 1: usage");
    CHECK(t_sh("%s/m2u-eval run --run %s/run --split valid --kinds muimage --musicgen %s/nope --out %s/ev2 > /dev/null "
             "2> %s/ev2.err",
             b, g_dir, g_dir, g_dir, g_dir) == 1 &&
              t_sh("grep -q 'nope' %s/ev2.err", g_dir) == 0,
          "missing MusicGen dir named");
    CHECK(t_sh("%s/m2u-eval run --help | grep -q -- '--musicgen MUSICGEN_DIR'", b) == 0, "--help documents --musicgen");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/m2u_test_generate_%d", (int)getpid());
    t_sh("rm -rf %s && mkdir -p %s", g_dir, g_dir);
    test_wav();
    test_init();
    if (exists("%s", M2U_FIXTURES "/generate/ref.safetensors")) test_chain();
    else CHECK(0, "fixture missing: python3 tests/make_generate_fixtures.py");
    test_continue();
    test_bad_input();
    test_run();
    if (exists("%s/run/config.yaml", g_dir)) test_eval_run();
    if (!t_fail) t_sh("rm -rf %s", g_dir);
    else fprintf(stderr, "kept %s\n", g_dir);
    return t_finish("test_generate");
}
