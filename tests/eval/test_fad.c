/* m2u-eval fad: Fréchet distance between audio sets made here with ffmpeg.
 *   - a set against a copy of itself: 0 (up to rounding);
 *   - against slightly detuned versions: smaller than against noise;
 *   - the dumped embeddings are what audio_embed.h defines (recomputed here
 *     from the decoder and the built-in features), and `m2u-eval fd` on the
 *     dumps gives the same distance as `fad`;
 *   - the MERT path (tiny fixture checkpoint) gives rows of its hidden size;
 *   - a missing folder is refused with its name. */
#include "audio_embed.h"
#include "builtin_features.h"
#include "decode.h"
#include "distribution_metrics.h"
#include "fileio.h"
#include "m2u_error.h"
#include "npy.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DIR M2U_BUILD_DIR "/test_fad_work"

/* the distance `m2u-eval fad` prints */
static double fad(const char *ref, const char *gen, const char *extra) {
    char out[600];
    snprintf(out, sizeof out, "%s/fad.txt", DIR);
    if (t_sh("'%s/m2u-eval' fad --ref '%s' --gen '%s' --clip 1 %s > '%s' 2> '%s/fad.err'", M2U_BUILD_DIR, ref, gen, extra,
           out, DIR))
        return NAN;
    char *txt = NULL;
    size_t len;
    double v = NAN;
    if (m2u_read_file(out, &txt, &len) == 0) sscanf(txt, "frechet distance %lf", &v);
    free(txt);
    return v;
}

int main(void) {
    t_sh("rm -rf '%s' && mkdir -p '%s/ref' '%s/near' '%s/noise'", DIR, DIR, DIR, DIR);
    /* six tones with harmonics; "near" is each 3 % higher; "noise" is coloured noise */
    static const int freq[6] = {196, 262, 330, 392, 523, 660};
    static const char *const colour[6] = {"white", "pink", "brown", "blue", "violet", "velvet"};
    int ok = 1;
    for (int k = 0; k < 6 && ok; k++) {
        ok = t_sh("ffmpeg -v error -f lavfi -i \"aevalsrc=0.5*sin(2*PI*%d*t)+0.25*sin(4*PI*%d*t)+0.1*sin(6*PI*%d*t):"
                "d=3:s=24000\" '%s/ref/tone%d.wav' && "
                "ffmpeg -v error -f lavfi -i \"aevalsrc=0.5*sin(2*PI*%g*t)+0.25*sin(4*PI*%g*t)+0.1*sin(6*PI*%g*t):"
                "d=3:s=24000\" '%s/near/tone%d.wav' && "
                "ffmpeg -v error -f lavfi -i 'anoisesrc=d=3:c=%s:a=0.3:r=24000:s=%d' '%s/noise/noise%d.wav'",
                freq[k], freq[k], freq[k], DIR, k, freq[k] * 1.03, freq[k] * 1.03, freq[k] * 1.03, DIR, k, colour[k],
                k + 1, DIR, k) == 0;
    }
    CHECK(ok, "ffmpeg could not make the test audio");
    t_sh("cp -r '%s/ref' '%s/copy' && echo 'not audio' > '%s/copy/broken.wav'", DIR, DIR, DIR);
    if (!ok) return t_finish("test_fad");

    double same = fad(DIR "/ref", DIR "/copy", ""), near = fad(DIR "/ref", DIR "/near", ""),
           noise = fad(DIR "/ref", DIR "/noise", "");
    printf("test_fad: built-in embedding: copy %.3g, detuned 3%% %.4g, noise %.4g\n", same, near, noise);
    CHECK(fabs(same) < 1e-6 * (noise > 0 ? noise : 1), "a set against its copy: %g", same);
    CHECK(near > 0 && noise > 2 * near, "detuned %.4g should be well below noise %.4g", near, noise);
    char *err = NULL;
    size_t len;
    /* the copy's broken file was skipped, not fatal */
    CHECK(t_sh("'%s/m2u-eval' fad --ref '%s/ref' --gen '%s/copy' --clip 1 --out '%s/rep.json' > /dev/null 2>&1 && "
             "grep -q '\"gen_files_skipped\":\\s*1' '%s/rep.json'",
             M2U_BUILD_DIR, DIR, DIR, DIR, DIR) == 0,
          "report does not count the skipped file");

    /* the dumps: rows as defined, and `fd` on them gives the same distance */
    CHECK(t_sh("'%s/m2u-eval' fad --ref '%s/ref' --gen '%s/noise' --clip 1 --dump-ref '%s/a.npy' --dump-gen '%s/b.npy' "
             "> /dev/null 2>&1 && '%s/m2u-eval' fd --a '%s/a.npy' --b '%s/b.npy' > '%s/fd.txt'",
             M2U_BUILD_DIR, DIR, DIR, DIR, DIR, M2U_BUILD_DIR, DIR, DIR, DIR) == 0,
          "dump / fd failed");
    double fdv = NAN;
    char *txt = NULL;
    if (m2u_read_file(DIR "/fd.txt", &txt, &len) == 0) fdv = strtod(txt, NULL);
    free(txt);
    /* the rows are float32 (as computed) in both paths, so the distances agree to printing precision */
    CHECK(fabs(fdv - noise) <= 1e-5 * noise, "fd on the dumps %.10g vs fad %.10g", fdv, noise);
    double *rows = NULL;
    size_t nr = 0, nc = 0;
    CHECK(m2u_npy_read_matrix(DIR "/a.npy", &rows, &nr, &nc) == 0 && nr == 18 && nc == M2U_BUILTIN_MERT_DIM,
          "ref dump: %zu x %zu (6 files x 3 clips of 1 s expected)", nr, nc);
    if (rows && nr == 18) {
        float *pcm = NULL, *feat = malloc(M2U_BUILTIN_MERT_ROWS * M2U_BUILTIN_MERT_DIM * sizeof(float));
        int64_t n = 0;
        CHECK(m2u_audio_decode(DIR "/ref/tone0.wav", 24000, &pcm, &n, NULL) == 0, "decode");
        /* file 0 (tone0.wav, first in order), clip 1: samples [24000, 48000) */
        CHECK(pcm && n >= 48000 && m2u_builtin_mert(pcm + 24000, 24000, 24000, feat) == 0, "features");
        double worst = 0;
        for (int k = 0; pcm && k < M2U_BUILTIN_MERT_DIM; k++) {
            double s = 0;
            for (int r = 0; r < M2U_BUILTIN_MERT_ROWS; r++) s += feat[r * M2U_BUILTIN_MERT_DIM + k];
            double d = fabs(s / M2U_BUILTIN_MERT_ROWS - rows[1 * nc + k]);
            worst = d > worst ? d : worst;
        }
        CHECK(worst < 1e-6, "dumped row differs from the definition by %g", worst);
        free(pcm), free(feat);
    }
    free(rows);

    /* the MERT path: the tiny fixture (100 Hz audio, hidden 32), last hidden state.
     * At 100 Hz the tones are filtered away after the first clip's onset, so each
     * file gives one clip above the silence threshold. */
    m2u_audio_embeddings e;
    m2u_audio_embed_opts mo = {.mert_dir = M2U_FIXTURES "/encoders/mert_a", .layer = -1, .clip_s = 1};
    CHECK(m2u_audio_embed_set(DIR "/ref", &mo, &e) == 0, "MERT embedding: %s", m2u_last_error());
    CHECK(e.n == 6 && e.dim == 32 && strstr(e.encoder, "mert_a:layer2"), "MERT rows %zu x %zu (%s)", e.n, e.dim,
          e.encoder);
    m2u_audio_embeddings_free(&e);
    double msame = fad(DIR "/ref", DIR "/copy", "--mert " M2U_FIXTURES "/encoders/mert_a");
    CHECK(fabs(msame) < 1e-6, "MERT: a set against its copy: %g", msame);

    /* kl and cosine on paired .npy rows equal the library's values */
    {
        float pa[6] = {0.7f, 0.2f, 0.1f, 0.1f, 0.3f, 0.6f}, pb[6] = {0.5f, 0.3f, 0.2f, 0.2f, 0.2f, 0.6f};
        int64_t shape[2] = {2, 3};
        CHECK(m2u_npy_write(DIR "/pa.npy", M2U_F32, pa, 2, shape) == 0 && m2u_npy_write(DIR "/pb.npy", M2U_F32, pb, 2, shape) == 0,
              "npy");
        double da[6], db[6], kl = 0, cs = 0;
        for (int k = 0; k < 6; k++) da[k] = pa[k], db[k] = pb[k];
        CHECK(m2u_kl_divergence(da, db, 2, 3, 0, 1e-6, NULL, &kl) == 0 && m2u_cosine_score(da, db, 2, 3, NULL, &cs) == 0,
              "library");
        double v[2] = {NAN, NAN};
        for (int t = 0; t < 2; t++) {
            CHECK(t_sh("'%s/m2u-eval' %s --a '%s/pa.npy' --b '%s/pb.npy' > '%s/v.txt'", M2U_BUILD_DIR, t ? "cosine" : "kl", DIR,
                     DIR, DIR) == 0,
                  "m2u-eval %s", t ? "cosine" : "kl");
            char *vt = NULL;
            if (m2u_read_file(DIR "/v.txt", &vt, &len) == 0) v[t] = strtod(vt, NULL);
            free(vt);
        }
        CHECK(fabs(v[0] - kl) <= 1e-9 * fabs(kl) && fabs(v[1] - cs) <= 1e-9, "kl %.10g vs %.10g, cosine %.10g vs %.10g", v[0],
              kl, v[1], cs);
        CHECK(kl > 0 && cs > 0.9 && cs < 1, "kl %g cosine %g", kl, cs);
    }

    /* a missing set is refused by name */
    CHECK(t_sh("'%s/m2u-eval' fad --ref '%s/nowhere' --gen '%s/ref' 2> '%s/err.txt' > /dev/null", M2U_BUILD_DIR, DIR,
             DIR, DIR) == 1,
          "missing folder not refused");
    CHECK(m2u_read_file(DIR "/err.txt", &err, &len) == 0 && strstr(err, "nowhere"), "message does not name it: %s",
          err ? err : "");
    free(err);
    if (!t_fail) t_sh("rm -rf '%s'", DIR);
    return t_finish("test_fad");
}
