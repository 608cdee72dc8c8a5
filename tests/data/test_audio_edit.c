/* Ground-truth edits: time stretch and pitch shift (Rubber Band) and gain.
 *
 * A song with known tempo and key (E minor, 112 bpm) is rendered with
 * m2u_midi_render; each edit is then verified with m2u_analyze:
 *   time stretch x1.25 / x0.8  -> analysed tempo ratio within 6 %, length n / ratio
 *   pitch shift +2 / -3        -> analysed key moves by that many semitones, mode
 *                                 and tempo (within 4 %) kept, length unchanged
 *   gain +6 / -6 dB            -> EBU R128 loudness moves by that +-0.5 LU
 *   clipping                   -> refused (samples untouched) or clamped and counted
 * plus determinism and argument checks.  Measured numbers are printed. */
#include "analysis.h"
#include "audio_edit.h"
#include "m2u_error.h"
#include "midi_render.h"
#include "test_music.h"
#include "test_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE 22050

static double peak_of(const float *x, size_t n) {
    double pk = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > pk) pk = fabs(x[i]);
    return pk;
}

static int analyse(const char *tag, const float *x, size_t n, m2u_analysis *a) {
    if (m2u_analyze(x, n, RATE, a) != 0) {
        CHECK(0, "%s: analysis failed: %s", tag, m2u_last_error());
        return -1;
    }
    printf("%-14s %8zu %7.2f %-9s %5.2f %6.2f %7.0f\n", tag, n, a->tempo_bpm, m2u_key_name(a->key, a->mode),
           a->key_confidence, a->loudness_lufs, a->centroid_hz);
    return 0;
}

static void test_args(void) {
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = 0.3f * (float)sin(6.283185307179586 * 440.0 * i / RATE);
    float *y = (float *)1;
    size_t ny = 5;
    CHECK(m2u_time_stretch(x, 1000, RATE, 0, &y, &ny) != 0 && y == NULL && ny == 0, "ratio 0 accepted");
    CHECK(m2u_time_stretch(x, 1000, RATE, NAN, &y, &ny) != 0, "ratio NaN accepted");
    CHECK(m2u_time_stretch(x, 1000, RATE, 5, &y, &ny) != 0 && strstr(m2u_last_error(), "ratio"), "ratio 5 accepted");
    CHECK(m2u_time_stretch(x, 0, RATE, 1.25, &y, &ny) != 0, "0 samples accepted");
    CHECK(m2u_time_stretch(x, 1000, 1000, 1.25, &y, &ny) != 0 && strstr(m2u_last_error(), "rate"), "rate 1000");
    CHECK(m2u_pitch_shift(x, 1000, RATE, 30, &y, &ny) != 0 && strstr(m2u_last_error(), "semitones"),
          "30 semitones accepted");
    float bad[4] = {0, NAN, 0, 0};
    CHECK(m2u_pitch_shift(bad, 4, RATE, 1, &y, &ny) != 0 && strstr(m2u_last_error(), "finite"), "NaN accepted");
    CHECK(m2u_apply_gain(bad, 4, 1, 0, NULL) != 0 && strstr(m2u_last_error(), "finite"), "gain on NaN");
    CHECK(m2u_apply_gain(x, 1000, NAN, 0, NULL) != 0, "gain NaN dB accepted");
    /* a very short input still gives the documented lengths */
    CHECK(m2u_time_stretch(x, 1000, RATE, 1.25, &y, &ny) == 0 && ny == 800, "short stretch: %s, %zu samples",
          m2u_last_error(), ny);
    int fin = 1;
    for (size_t i = 0; y && i < ny; i++) fin &= isfinite(y[i]) != 0;
    CHECK(fin, "short stretch output not finite");
    free(y);
    CHECK(m2u_pitch_shift(x, 1000, RATE, -5, &y, &ny) == 0 && ny == 1000, "short shift: %s, %zu samples",
          m2u_last_error(), ny);
    free(y);
}

static void test_gain(const float *src, size_t n) {
    float *x = malloc(n * sizeof *x), *keep = malloc(n * sizeof *x);
    if (!x || !keep) {
        CHECK(0, "out of memory");
        free(x);
        free(keep);
        return;
    }
    memcpy(x, src, n * sizeof *x);
    /* bring the peak to 0.4 so +6 dB cannot clip */
    double pk = peak_of(x, n);
    size_t clipped = 99;
    CHECK(m2u_apply_gain(x, n, 20 * log10(0.4 / pk), 0, &clipped) == 0 && clipped == 0, "normalise: %s",
          m2u_last_error());
    memcpy(keep, x, n * sizeof *x);
    m2u_analysis a0, a1, a2;
    int ok = analyse("gain 0 dB", x, n, &a0) == 0;
    CHECK(m2u_apply_gain(x, n, 6, 0, &clipped) == 0 && clipped == 0, "+6 dB: %s", m2u_last_error());
    ok = analyse("gain +6 dB", x, n, &a1) == 0 && ok;
    memcpy(x, keep, n * sizeof *x);
    CHECK(m2u_apply_gain(x, n, -6, 0, NULL) == 0, "-6 dB: %s", m2u_last_error());
    ok = analyse("gain -6 dB", x, n, &a2) == 0 && ok;
    if (ok) {
        double up = a1.loudness_lufs - a0.loudness_lufs, down = a2.loudness_lufs - a0.loudness_lufs;
        printf("gain: +6 dB -> %+.3f LU, -6 dB -> %+.3f LU\n", up, down);
        CHECK(fabs(up - 6) <= 0.5, "+6 dB changed loudness by %.3f LU", up);
        CHECK(fabs(down + 6) <= 0.5, "-6 dB changed loudness by %.3f LU", down);
        m2u_analysis_free(&a0);
        m2u_analysis_free(&a1);
        m2u_analysis_free(&a2);
    }
    /* clipping: +12 dB on a 0.4 peak would reach 1.59 */
    memcpy(x, keep, n * sizeof *x);
    CHECK(m2u_apply_gain(x, n, 12, 0, &clipped) != 0 && strstr(m2u_last_error(), "clip"), "+12 dB not refused");
    printf("clip refusal: %s\n", m2u_last_error());
    CHECK(!memcmp(x, keep, n * sizeof *x), "a refused gain changed the samples");
    double g = pow(10, 12 / 20.0);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) want += (float)(fabs(keep[i]) * g) > (float)M2U_GAIN_CLIP_PEAK;
    CHECK(m2u_apply_gain(x, n, 12, 1, &clipped) == 0, "+12 dB with allow_clip: %s", m2u_last_error());
    printf("allow_clip: %zu of %zu samples clamped, peak %.4f\n", clipped, n, peak_of(x, n));
    CHECK(clipped == want && clipped > 0, "clipped %zu, expected %zu", clipped, want);
    CHECK(peak_of(x, n) <= M2U_GAIN_CLIP_PEAK + 1e-7, "peak %.6f after clamping", peak_of(x, n));
    /* unclipped samples are scaled exactly */
    int exact = 1;
    for (size_t i = 0; i < n; i++)
        if ((float)(fabs(keep[i]) * g) <= (float)M2U_GAIN_CLIP_PEAK && x[i] != (float)(keep[i] * g)) exact = 0;
    CHECK(exact, "unclipped samples not scaled by the gain");
    CHECK(m2u_apply_gain(x, n, 0.5, 1, NULL) == 0, "NULL clipped pointer");
    free(x);
    free(keep);
}

int main(void) {
    test_args();
    CHECK(m2u_audio_edit_engine() == 3, "Rubber Band engine %d, expected R3 (finer) with librubberband 3.x",
          m2u_audio_edit_engine());
    char dir[512];
    snprintf(dir, sizeof dir, "%s/test_audio_edit.XXXXXX", M2U_BUILD_DIR);
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp %s: %s", dir, strerror(errno));
        return t_finish("test_audio_edit");
    }
    char mid[600];
    snprintf(mid, sizeof mid, "%s/song.mid", dir);
    tm_piece pc = {.bpm = 112, .tonic = 4, .mode = M2U_MIDI_MINOR, .acc_prog = 0, .mel_prog = 0, .bass_prog = 33,
                   .arpeggio = 0, .drums = 1, .bars = 8, .seed = 4242u};
    CHECK(tm_write(&pc, mid, NULL) == 0, "writing the song");
    m2u_midi_render_opts o = {NULL, RATE, -1, 0};
    float *x = NULL;
    int64_t n64 = 0;
    CHECK(m2u_midi_render(mid, &o, &x, &n64) == 0, "render: %s", m2u_last_error());
    tm_remove_dir(dir);
    if (!x) return t_finish("test_audio_edit");
    size_t n = (size_t)n64;

    printf("%-14s %8s %7s %-9s %5s %6s %7s\n", "signal", "samples", "bpm", "key", "kconf", "LUFS", "cent Hz");
    m2u_analysis a0;
    if (analyse("original", x, n, &a0) != 0) {
        free(x);
        return t_finish("test_audio_edit");
    }
    CHECK(fabs(a0.tempo_bpm - pc.bpm) <= 0.04 * pc.bpm && a0.key == pc.tonic && a0.mode == M2U_MODE_MINOR,
          "the original is not recognised as %.0f bpm E minor: %.2f %s", pc.bpm, a0.tempo_bpm,
          m2u_key_name(a0.key, a0.mode));

    /* ---- time stretch ---- */
    static const double ratios[2] = {1.25, 0.8};
    for (int k = 0; k < 2; k++) {
        float *y = NULL;
        size_t ny = 0;
        char tag[32];
        snprintf(tag, sizeof tag, "tempo x%.2f", ratios[k]);
        CHECK(m2u_time_stretch(x, n, RATE, ratios[k], &y, &ny) == 0, "%s: %s", tag, m2u_last_error());
        if (!y) continue;
        CHECK(ny == (size_t)llround(n / ratios[k]), "%s: %zu samples, expected %lld", tag, ny,
              llround(n / ratios[k]));
        if (k == 0) {
            float *y2 = NULL;
            size_t ny2 = 0;
            CHECK(m2u_time_stretch(x, n, RATE, ratios[k], &y2, &ny2) == 0 && ny2 == ny &&
                      !memcmp(y, y2, ny * sizeof *y),
                  "two time stretches of the same input differ");
            free(y2);
        }
        m2u_analysis a;
        if (analyse(tag, y, ny, &a) == 0) {
            double r = a.tempo_bpm / a0.tempo_bpm;
            printf("  tempo ratio %.4f (asked %.2f, error %+.2f %%), duration ratio %.5f\n", r, ratios[k],
                   100 * (r / ratios[k] - 1), (double)n / (double)ny);
            CHECK(fabs(r / ratios[k] - 1) <= 0.06, "%s: analysed tempo ratio %.4f", tag, r);
            CHECK(a.key == a0.key && a.mode == a0.mode, "%s: key changed to %s", tag, m2u_key_name(a.key, a.mode));
            CHECK(fabs(a.loudness_lufs - a0.loudness_lufs) < 2, "%s: loudness %.2f vs %.2f", tag, a.loudness_lufs,
                  a0.loudness_lufs);
            m2u_analysis_free(&a);
        }
        free(y);
    }

    /* ---- pitch shift ---- */
    static const double semis[2] = {2, -3};
    for (int k = 0; k < 2; k++) {
        float *y = NULL;
        size_t ny = 0;
        char tag[32];
        snprintf(tag, sizeof tag, "pitch %+.0f st", semis[k]);
        CHECK(m2u_pitch_shift(x, n, RATE, semis[k], &y, &ny) == 0, "%s: %s", tag, m2u_last_error());
        if (!y) continue;
        CHECK(ny == n, "%s: %zu samples for %zu", tag, ny, n);
        m2u_analysis a;
        if (analyse(tag, y, ny, &a) == 0) {
            int want = ((a0.key + (int)semis[k]) % 12 + 12) % 12;
            printf("  key %s -> %s (expected %s), tempo ratio %.4f\n", m2u_key_name(a0.key, a0.mode),
                   m2u_key_name(a.key, a.mode), m2u_key_name(want, a0.mode), a.tempo_bpm / a0.tempo_bpm);
            CHECK(a.key == want && a.mode == a0.mode, "%s: key %s, expected %s", tag, m2u_key_name(a.key, a.mode),
                  m2u_key_name(want, a0.mode));
            CHECK(fabs(a.tempo_bpm / a0.tempo_bpm - 1) <= 0.04, "%s: tempo %.2f vs %.2f", tag, a.tempo_bpm,
                  a0.tempo_bpm);
            CHECK(fabs(a.loudness_lufs - a0.loudness_lufs) < 2, "%s: loudness %.2f vs %.2f", tag, a.loudness_lufs,
                  a0.loudness_lufs);
            m2u_analysis_free(&a);
        }
        free(y);
    }

    /* ---- gain ---- */
    test_gain(x, n);

    m2u_analysis_free(&a0);
    free(x);
    return t_finish("test_audio_edit");
}
