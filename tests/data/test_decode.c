/* Decoding, clipping, frame sampling, image loading and input listing.
 *
 * All media are made here with the ffmpeg CLI in a temporary folder (the
 * library itself never runs ffmpeg): signals with known frequency and
 * amplitude, videos of solid colours with known timings (one variable frame
 * rate), a rotated MP4, images with a known layout, and a set of broken files
 * that must each be refused with the right reason.  Ends with a decode-speed
 * report against `ffmpeg -f null` (printed, not asserted). */
#include "decode.h"
#include "frames.h"
#include "inputs.h"
#include "m2u_error.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static const char *P(const char *name) {
    static char buf[8][512];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

/* Run a shell command (formatted); returns its exit status. */
M2U_PRINTF(1, 2) static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

#define FF "ffmpeg -nostdin -hide_banner -loglevel error -y "

static int have_encoder(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' %s '", name);
    return system(cmd) == 0;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Keep the first `frac` of a file under a new name. */
static void cut_copy(const char *src, const char *dst, double frac) {
    FILE *f = fopen(src, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) write_bytes(dst, b, (size_t)(n * frac));
    free(b);
    fclose(f);
}

static double rms(const float *x, int64_t n) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a += (double)x[i] * x[i];
    return n ? sqrt(a / (double)n) : 0;
}

/* Frequency from rising zero crossings (linear interpolation between samples). */
static double freq_zc(const float *x, int64_t n, int rate) {
    double first = -1, last = -1;
    int count = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i - 1] < 0 && x[i] >= 0) {
            double t = (double)(i - 1) + x[i - 1] / (x[i - 1] - x[i]);
            if (first < 0) first = t;
            last = t;
            count++;
        }
    return count > 1 ? (count - 1) * (double)rate / (last - first) : 0;
}

/* ---- audio ------------------------------------------------------------------------- */

/* L = 0.6 sin, R = 0.2 sin at 1 kHz: the mean downmix gives 0.4 sin (RMS 0.2828);
 * swresample's default matrix would give 0.566 sin. */
#define STEREO_SINE "aevalsrc='0.6*sin(2*PI*1000*t)|0.2*sin(2*PI*1000*t)':s=44100:d=3"

static void check_tone(const char *file, int rate, double dur, double amp, double rms_tol) {
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info info;
    int rc = m2u_audio_decode(P(file), rate, &pcm, &n, &info);
    CHECK(rc == 0, "%s: %s", file, m2u_last_error());
    if (rc) return;
    CHECK(info.status == M2U_DECODE_OK, "%s status %d", file, info.status);
    CHECK(fabs((double)n / rate - dur) < 0.06, "%s: %lld samples at %d = %.3f s, want %.2f", file, (long long)n, rate,
          (double)n / rate, dur);
    CHECK(info.src_rate == 44100 || info.src_rate == 48000, "%s: src rate %d", file, info.src_rate);
    CHECK(info.src_channels == 2, "%s: %d channels", file, info.src_channels);
    /* steady part only: skip 0.2 s at each end (encoder/resampler edges) */
    int64_t a = (int64_t)(0.2 * rate), b = n - (int64_t)(0.2 * rate);
    double f = freq_zc(pcm + a, b - a, rate), r = rms(pcm + a, b - a);
    CHECK(fabs(f - 1000.0) < 0.5, "%s: frequency %.3f Hz", file, f);
    CHECK(fabs(r - amp / sqrt(2.0)) < rms_tol, "%s: RMS %.4f, want %.4f", file, r, amp / sqrt(2.0));
    float mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(pcm[i]));
    CHECK(mx <= 1.0f, "%s: peak %.3f", file, mx);
    printf("  %-10s %-10s -> %5d Hz: %.3f s, %.3f Hz, RMS %.4f (codec %s, format %s)\n", file, info.codec, rate,
           (double)n / rate, f, r, info.codec, info.format);
    free(pcm);
}

static void test_audio(void) {
    CHECK(sh(FF "-f lavfi -i \"" STEREO_SINE "\" -c:a pcm_s16le %s", P("sine.wav")) == 0, "make wav");
    CHECK(sh(FF "-i %s -c:a flac %s", P("sine.wav"), P("sine.flac")) == 0, "make flac");
    check_tone("sine.wav", 24000, 3.0, 0.4, 0.002);
    check_tone("sine.wav", 32000, 3.0, 0.4, 0.002);
    check_tone("sine.flac", 16000, 3.0, 0.4, 0.002);
    check_tone("sine.flac", 44100, 3.0, 0.4, 0.002);
    check_tone("sine.flac", 11025, 3.0, 0.4, 0.002);
    if (have_encoder("libvorbis")) {
        CHECK(sh(FF "-i %s -ar 48000 -c:a libvorbis -q:a 6 %s", P("sine.wav"), P("sine.ogg")) == 0, "make ogg");
        check_tone("sine.ogg", 32000, 3.0, 0.4, 0.01);
    }
    if (have_encoder("libmp3lame")) {
        CHECK(sh(FF "-i %s -c:a libmp3lame -b:a 192k %s", P("sine.wav"), P("sine.mp3")) == 0, "make mp3");
        check_tone("sine.mp3", 24000, 3.0, 0.4, 0.01);
    } else {
        printf("  (no MP3 encoder: MP3 cases skipped)\n");
    }

    /* start offset and max duration, sample-exact: a ramp x(t) = t/4 at 8 kHz
     * decoded at 8 kHz (no resampling) must start at start/4. */
    CHECK(sh(FF "-f lavfi -i \"aevalsrc='t/4':s=8000:d=3\" -c:a pcm_s16le %s", P("ramp.wav")) == 0, "ramp");
    CHECK(sh(FF "-i %s -c:a flac %s", P("ramp.wav"), P("ramp.flac")) == 0, "ramp flac");
    const char *ramps[] = {"ramp.wav", "ramp.flac"};
    for (int i = 0; i < 2; i++) {
        double starts[] = {0.25, 1.0, 2.3};
        for (int j = 0; j < 3; j++) {
            m2u_audio_opts o = {.start_s = starts[j], .max_s = 0.5};
            float *pcm = NULL;
            int64_t n = 0;
            int rc = m2u_audio_decode_ex(P(ramps[i]), 8000, &o, &pcm, &n, NULL);
            CHECK(rc == 0, "%s start %.2f: %s", ramps[i], starts[j], m2u_last_error());
            if (rc) continue;
            CHECK(n == 4000, "%s start %.2f: %lld samples, want 4000", ramps[i], starts[j], (long long)n);
            CHECK(fabs(pcm[0] - starts[j] / 4) < 2e-4, "%s start %.2f: first sample %.5f, want %.5f", ramps[i],
                  starts[j], pcm[0], starts[j] / 4);
            CHECK(fabs(pcm[n - 1] - (starts[j] + 0.5 - 1.0 / 8000) / 4) < 2e-4, "%s: last sample %.5f", ramps[i],
                  pcm[n - 1]);
            free(pcm);
        }
    }
    /* offsets in lossy/container formats (seek + pre-roll): length exact, tone intact */
    const char *seekable[] = {"sine.ogg", "sine.mp3", "sine.flac"};
    for (int i = 0; i < 3; i++) {
        if (access(P(seekable[i]), R_OK) != 0) continue;
        m2u_audio_opts o = {.start_s = 1.25, .max_s = 1.0};
        float *pcm = NULL;
        int64_t n = 0;
        int rc = m2u_audio_decode_ex(P(seekable[i]), 24000, &o, &pcm, &n, NULL);
        CHECK(rc == 0 && n == 24000, "%s at 1.25 s: %s (%lld samples)", seekable[i], m2u_last_error(), (long long)n);
        if (rc) continue;
        /* the same samples as a whole-file decode at that offset */
        float *full = NULL;
        int64_t nf = 0;
        if (m2u_audio_decode(P(seekable[i]), 24000, &full, &nf, NULL) == 0 && nf >= 30000 + n) {
            double md = 0;
            for (int64_t j = 0; j < n; j++) md = fmax(md, fabs((double)pcm[j] - full[30000 + j]));
            CHECK(md < 0.02, "%s at 1.25 s differs from the whole decode by %.4f", seekable[i], md);
            printf("  %-10s start 1.25 s: max |diff| to whole-file decode %.2g\n", seekable[i], md);
        }
        free(full);
        double f = freq_zc(pcm, n, 24000), r = rms(pcm, n);
        CHECK(fabs(f - 1000) < 0.5 && fabs(r - 0.4 / sqrt(2.0)) < 0.01, "%s at 1.25 s: %.3f Hz RMS %.4f",
              seekable[i], f, r);
        free(pcm);
    }
    /* start beyond the end: empty */
    {
        m2u_audio_opts o = {.start_s = 10};
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        CHECK(m2u_audio_decode_ex(P("ramp.wav"), 8000, &o, &pcm, &n, &info) < 0 &&
                  info.status == M2U_DECODE_EMPTY && pcm == NULL,
              "start past the end: status %d", info.status);
    }
}

/* ---- clips ---------------------------------------------------------------------------- */

static void test_clips(void) {
    int rate = 16000;
    int64_t n = (int64_t)(10.5 * rate);
    float *x = calloc((size_t)n, sizeof *x);
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / rate;
        if (t < 4 || t >= 8) x[i] = (float)(0.5 * sin(2 * 3.14159265358979323846 * 440 * t));
    }
    m2u_clip *c = NULL;
    size_t nc = 0;
    /* 2 s clips, 2 s hop: [0,2) [2,4) tone, [4,6) [6,8) silent, [8,10) tone, [10,10.5) partial */
    CHECK(m2u_audio_clips(x, n, rate, 2, 2, -60, 1.0, &c, &nc) == 0, "clips: %s", m2u_last_error());
    CHECK(nc == 3, "clips: %zu, want 3", nc);
    if (nc == 3) {
        CHECK(c[0].start == 0 && c[0].end == 32000 && c[1].start == 32000 && c[2].start == 128000 &&
                  c[2].end == 160000,
              "clip bounds %lld-%lld %lld %lld-%lld", (long long)c[0].start, (long long)c[0].end,
              (long long)c[1].start, (long long)c[2].start, (long long)c[2].end);
        CHECK(fabs(c[0].rms_db - 20 * log10(0.5 / sqrt(2))) < 0.05, "clip RMS %.2f dB", c[0].rms_db);
    }
    free(c);
    /* the 0.5 s tail kept when min_s allows it */
    CHECK(m2u_audio_clips(x, n, rate, 2, 2, -60, 0.5, &c, &nc) == 0 && nc == 4 && c[3].start == 160000 &&
              c[3].end == n,
          "partial tail: %zu clips", nc);
    free(c);
    /* overlapping hop: starts 0,1,2 (tone), 3 ends at 5 (half tone, not silent), 4..7 silent-ish, ... */
    CHECK(m2u_audio_clips(x, (int64_t)(5 * rate), rate, 2, 1, -60, 2.0, &c, &nc) == 0 && nc == 4 &&
              c[3].start == 48000 && c[3].end == 80000,
          "hop < clip: %zu clips", nc);
    free(c);
    /* shorter than one clip */
    CHECK(m2u_audio_clips(x, rate / 2, rate, 2, 2, -60, 1.0, &c, &nc) == 0 && nc == 0 && c == NULL,
          "0.5 s with min 1 s: %zu clips", nc);
    CHECK(m2u_audio_clips(x, rate / 2, rate, 2, 2, -60, 0.25, &c, &nc) == 0 && nc == 1 && c[0].end == rate / 2,
          "0.5 s with min 0.25 s: %zu clips", nc);
    free(c);
    /* silence -> zero clips (success; the caller records "silent") */
    memset(x, 0, (size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(1e-5 * sin((double)i)); /* -100 dB hiss */
    CHECK(m2u_audio_clips(x, n, rate, 2, 2, -60, 1.0, &c, &nc) == 0 && nc == 0, "silence: %zu clips", nc);
    CHECK(!strcmp(m2u_decode_reason(M2U_DECODE_SILENT), "silent"), "reason");
    CHECK(m2u_audio_clips(x, n, rate, 0, 2, -60, 1.0, &c, &nc) < 0, "zero clip length accepted");
    free(x);

    /* a decoded silent file */
    CHECK(sh(FF "-f lavfi -i anullsrc=r=44100:cl=stereo -t 3 -c:a flac %s", P("silence.flac")) == 0, "silence");
    float *pcm = NULL;
    int64_t np = 0;
    CHECK(m2u_audio_decode(P("silence.flac"), 24000, &pcm, &np, NULL) == 0 && np == 72000, "silence decode %lld",
          (long long)np);
    CHECK(m2u_audio_clips(pcm, np, 24000, 1, 1, -60, 0.5, &c, &nc) == 0 && nc == 0, "silent file: %zu clips", nc);
    free(pcm);
}

/* ---- video and images ----------------------------------------------------------------- */

static const uint8_t *px(const uint8_t *img, int w, int x, int y) { return img + ((size_t)y * w + x) * 3; }

static int near_rgb(const uint8_t *p, int r, int g, int b, int tol) {
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

static void test_video(void) {
    /* testsrc + 1 kHz audio in MP4 (H.264 + AAC) */
    CHECK(sh(FF "-f lavfi -i testsrc=s=320x240:r=25:d=2 -f lavfi -i \"sine=frequency=1000:sample_rate=48000:d=2\" "
                "-c:v libx264 -pix_fmt yuv420p -c:a aac -shortest %s",
             P("clip.mp4")) == 0,
          "make mp4");
    uint8_t *rgb = NULL;
    m2u_video_info vi;
    int rc = m2u_video_frames(P("clip.mp4"), 8, 224, 224, &rgb, &vi);
    CHECK(rc == 0, "mp4 frames: %s", m2u_last_error());
    if (rc == 0) {
        CHECK(vi.src_width == 320 && vi.src_height == 240 && vi.has_audio && vi.n_unique == 8 &&
                  fabs(vi.duration_s - 2.0) < 0.05 && vi.frames_decoded >= 40,
              "mp4 info %dx%d audio %d unique %d dur %.3f decoded %lld", vi.src_width, vi.src_height, vi.has_audio,
              vi.n_unique, vi.duration_s, (long long)vi.frames_decoded);
        /* frames differ (testsrc moves) */
        CHECK(memcmp(rgb, rgb + 224 * 224 * 3 * 7, 224 * 224 * 3) != 0, "first and last frame equal");
        free(rgb);
    }
    /* its audio track */
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info ai;
    rc = m2u_audio_decode(P("clip.mp4"), 16000, &pcm, &n, &ai);
    CHECK(rc == 0 && fabs((double)n / 16000 - 2.0) < 0.05, "mp4 audio: %s (%lld samples)", m2u_last_error(),
          (long long)n);
    if (rc == 0) {
        double f = freq_zc(pcm + 3200, n - 6400, 16000);
        CHECK(fabs(f - 1000) < 0.5 && !strcmp(ai.codec, "aac"), "mp4 audio %.3f Hz codec %s", f, ai.codec);
        free(pcm);
    }

    /* variable frame rate: red 0-2 s at 2 fps, lime 2-4 s at 25 fps, blue 4-6 s at 5 fps
     * (64 frames).  Sampling by index would put 5 of 6 samples in the green part. */
    CHECK(sh(FF "-f lavfi -i color=c=red:s=160x120:r=2:d=2 -f lavfi -i color=c=0x00ff00:s=160x120:r=25:d=2 "
                "-f lavfi -i color=c=blue:s=160x120:r=5:d=2 -filter_complex \"[0][1][2]concat=n=3:v=1:a=0\" "
                "-fps_mode passthrough -c:v libx264 -g 10 -pix_fmt yuv420p %s",
             P("vfr.mkv")) == 0,
          "make vfr");
    const int want[6][3] = {{255, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 255, 0}, {0, 0, 255}, {0, 0, 255}};
    m2u_sample_strategy strategies[] = {M2U_SAMPLE_AUTO, M2U_SAMPLE_DECODE_THROUGH, M2U_SAMPLE_SEEK};
    for (int s = 0; s < 3; s++) {
        double times[6];
        m2u_video_opts o = {.fit = M2U_FIT_CROP, .strategy = strategies[s], .times = times};
        rc = m2u_video_frames_ex(P("vfr.mkv"), 6, 32, 24, &o, &rgb, &vi);
        CHECK(rc == 0, "vfr strategy %d: %s", s, m2u_last_error());
        if (rc) continue;
        for (int k = 0; k < 6; k++) {
            const uint8_t *p = px(rgb + (size_t)k * 32 * 24 * 3, 32, 16, 12);
            CHECK(near_rgb(p, want[k][0], want[k][1], want[k][2], 12), "vfr strategy %d frame %d: %d %d %d", s, k,
                  p[0], p[1], p[2]);
            double tk = (k + 0.5) * vi.duration_s / 6;
            CHECK(times[k] <= tk && times[k] > tk - 0.51, "vfr strategy %d frame %d at %.3f for target %.3f", s, k,
                  times[k], tk);
        }
        CHECK(vi.n_unique == 6 && !vi.has_audio, "vfr unique %d", vi.n_unique);
        if (s == 1) CHECK(vi.frames_decoded >= 60, "decode-through decoded %lld", (long long)vi.frames_decoded);
        free(rgb);
    }
    /* more samples than frames: frames repeat */
    CHECK(sh(FF "-f lavfi -i color=c=white:s=64x64:r=2:d=2 -c:v libx264 -pix_fmt yuv420p %s", P("few.mp4")) == 0,
          "few");
    rc = m2u_video_frames(P("few.mp4"), 16, 16, 16, &rgb, &vi);
    CHECK(rc == 0 && vi.n_unique == 4 && near_rgb(rgb, 255, 255, 255, 6), "4-frame video to 16: %s unique %d",
          m2u_last_error(), vi.n_unique);
    if (rc == 0) free(rgb);

    /* rotation: a 160x120 picture, top half red, bottom half blue, tagged "rotate
     * 90 clockwise" by patching the tkhd matrix (ffmpeg 5.1's CLI cannot set it).
     * Displayed it is 120x160 with red on the right. */
    CHECK(sh(FF "-f lavfi -i \"color=c=red:s=160x60,pad=160:120:0:0:blue\" -t 1 -c:v libx264 -pix_fmt yuv444p %s",
             P("rot.mp4")) == 0,
          "rot");
    {
        FILE *f = fopen(P("rot.mp4"), "r+b");
        char buf[1 << 16];
        size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
        char *t = NULL;
        for (size_t i = 0; i + 4 <= got && !t; i++)
            if (!memcmp(buf + i, "tkhd", 4)) t = buf + i;
        CHECK(t != NULL, "tkhd not found");
        if (t) {
            static const unsigned char m[36] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0};
            fseek(f, (long)(t - buf) + 4 + 40, SEEK_SET);
            fwrite(m, 1, sizeof m, f);
        }
        if (f) fclose(f);
    }
    rc = m2u_video_frames_ex(P("rot.mp4"), 1, 30, 40, &(m2u_video_opts){.fit = M2U_FIT_STRETCH}, &rgb, &vi);
    CHECK(rc == 0 && vi.rotation == 90, "rotated: %s rotation %d", m2u_last_error(), vi.rotation);
    if (rc == 0) {
        CHECK(near_rgb(px(rgb, 30, 25, 20), 255, 0, 0, 10) && near_rgb(px(rgb, 30, 4, 20), 0, 0, 255, 10),
              "rotated colours right %d,%d,%d left %d,%d,%d", px(rgb, 30, 25, 20)[0], px(rgb, 30, 25, 20)[1],
              px(rgb, 30, 25, 20)[2], px(rgb, 30, 4, 20)[0], px(rgb, 30, 4, 20)[1], px(rgb, 30, 4, 20)[2]);
        free(rgb);
    }
}

static void test_images(void) {
    /* 400x200: left half red, right half blue */
    CHECK(sh(FF "-f lavfi -i color=c=red:s=200x200 -f lavfi -i color=c=blue:s=200x200 -filter_complex hstack "
                "-frames:v 1 %s",
             P("img.png")) == 0,
          "png");
    CHECK(sh(FF "-i %s -q:v 2 %s", P("img.png"), P("img.jpg")) == 0, "jpg");
    /* the cap on one FFmpeg allocation: a 2400 x 2400 16-bit RGBA picture (46 MB decoded) fails
     * as unsupported, naming the limit, under a 16 MiB cap, and loads under the default */
    {
        CHECK(sh(FF "-f lavfi -i color=c=teal:s=2400x2400 -frames:v 1 -pix_fmt rgba64be %s", P("big16.png")) == 0,
              "big png");
        CHECK(m2u_decode_max_alloc_get() == M2U_DECODE_MAX_ALLOC_DEFAULT, "default cap %zu",
              m2u_decode_max_alloc_get());
        m2u_decode_max_alloc((size_t)16 << 20);
        uint8_t *rgb = NULL;
        m2u_image_info ii;
        int rc = m2u_image_load(P("big16.png"), 32, 32, M2U_FIT_CROP, &rgb, &ii);
        CHECK(rc < 0 && ii.status == M2U_DECODE_UNSUPPORTED && !rgb && strstr(m2u_last_error(), "16 MiB limit") &&
                  strstr(m2u_last_error(), "--decode-max-alloc"),
              "over the cap: %s: %s", m2u_decode_reason(ii.status), m2u_last_error());
        printf("  %-14s %-12s %s\n", "big16.png", m2u_decode_reason(ii.status), m2u_last_error() + strlen(g_dir) + 1);
        m2u_decode_max_alloc(0);
        rc = m2u_image_load(P("big16.png"), 32, 32, M2U_FIT_CROP, &rgb, &ii);
        CHECK(rc == 0 && rgb && m2u_decode_max_alloc_get() == M2U_DECODE_MAX_ALLOC_DEFAULT, "default cap: %s",
              m2u_last_error());
        free(rgb);
    }
    int webp = have_encoder("libwebp") && sh(FF "-i %s -lossless 1 %s", P("img.png"), P("img.webp")) == 0;
    const char *files[] = {"img.png", "img.jpg", "img.webp"};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && !webp) continue;
        int tol = i == 1 ? 16 : 4;
        uint8_t *rgb = NULL;
        m2u_image_info ii;
        /* crop: 400x200 -> 448x224, centre 224: x in [112,336) of the scaled image,
         * so the left half of the crop is red and the right half blue */
        int rc = m2u_image_load(P(files[i]), 224, 224, M2U_FIT_CROP, &rgb, &ii);
        CHECK(rc == 0 && ii.src_width == 400 && ii.src_height == 200, "%s crop: %s", files[i], m2u_last_error());
        if (rc == 0) {
            CHECK(near_rgb(px(rgb, 224, 56, 112), 255, 0, 0, tol) && near_rgb(px(rgb, 224, 168, 112), 0, 0, 255, tol),
                  "%s crop colours", files[i]);
            free(rgb);
        }
        /* pad: 400x200 -> 224x112 centred, black bands of 56 rows */
        rc = m2u_image_load(P(files[i]), 224, 224, M2U_FIT_PAD, &rgb, &ii);
        CHECK(rc == 0, "%s pad: %s", files[i], m2u_last_error());
        if (rc == 0) {
            CHECK(near_rgb(px(rgb, 224, 112, 20), 0, 0, 0, 0) && near_rgb(px(rgb, 224, 112, 210), 0, 0, 0, 0) &&
                      near_rgb(px(rgb, 224, 30, 112), 255, 0, 0, tol) &&
                      near_rgb(px(rgb, 224, 200, 112), 0, 0, 255, tol),
                  "%s pad colours", files[i]);
            free(rgb);
        }
        /* stretch to 100x50 */
        rc = m2u_image_load(P(files[i]), 100, 50, M2U_FIT_STRETCH, &rgb, NULL);
        CHECK(rc == 0 && near_rgb(px(rgb, 100, 10, 25), 255, 0, 0, tol) &&
                  near_rgb(px(rgb, 100, 90, 25), 0, 0, 255, tol),
              "%s stretch: %s", files[i], m2u_last_error());
        free(rgb);
    }
    printf("  images: png jpg%s\n", webp ? " webp" : " (no webp encoder)");
}

/* ---- broken files -------------------------------------------------------------------------- */

static void expect_audio(const char *file, int status, const char *what) {
    float *pcm = (float *)1;
    int64_t n = 7;
    m2u_audio_info info;
    int rc = m2u_audio_decode(P(file), 24000, &pcm, &n, &info);
    CHECK(rc < 0 && info.status == status && pcm == NULL && n == 0, "%s (%s): rc %d status %s, want %s: %s", file,
          what, rc, m2u_decode_reason(info.status), m2u_decode_reason(status), m2u_last_error());
    if (rc == 0) free(pcm);
    CHECK(strstr(m2u_last_error(), file) != NULL, "%s: message does not name the file: %s", file, m2u_last_error());
    printf("  %-14s %-12s %s\n", file, m2u_decode_reason(info.status), m2u_last_error() + strlen(g_dir) + 1);
}

static void test_broken(void) {
    write_bytes(P("empty.wav"), "", 0);
    expect_audio("empty.wav", M2U_DECODE_EMPTY, "0-byte file");

    unsigned char junk[20000];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        s = s * 1103515245u + 12345u;
        junk[i] = (unsigned char)(s >> 16);
    }
    write_bytes(P("random.wav"), junk, sizeof junk);
    expect_audio("random.wav", M2U_DECODE_NOT_MEDIA, "random bytes");

    const char *text = "This is a text file, not an MP3.\nIt has a few lines.\n";
    write_bytes(P("text.mp3"), text, strlen(text));
    expect_audio("text.mp3", M2U_DECODE_NOT_MEDIA, "text named .mp3");

    expect_audio("missing.wav", M2U_DECODE_CANNOT_OPEN, "no such file");
    mkdir(P("adir.wav"), 0755);
    expect_audio("adir.wav", M2U_DECODE_CANNOT_OPEN, "a directory");

    /* 10 s FLAC cut at half */
    CHECK(sh(FF "-f lavfi -i \"sine=frequency=440:sample_rate=44100:d=10\" -c:a flac %s", P("long.flac")) == 0, "f");
    cut_copy(P("long.flac"), P("trunc.flac"), 0.5);
    expect_audio("trunc.flac", M2U_DECODE_TRUNCATED, "FLAC cut at half");
    {
        m2u_audio_opts o = {.keep_truncated = 1};
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        int rc = m2u_audio_decode_ex(P("trunc.flac"), 16000, &o, &pcm, &n, &info);
        CHECK(rc == 0 && info.truncated == 1 && (double)n / 16000 > 4.0 && (double)n / 16000 < 6.0,
              "keep_truncated: rc %d truncated %d %.2f s: %s", rc, info.truncated, (double)n / 16000,
              m2u_last_error());
        free(pcm);
    }
    if (have_encoder("libmp3lame")) {
        CHECK(sh(FF "-f lavfi -i \"sine=frequency=440:sample_rate=44100:d=10\" -c:a libmp3lame %s", P("long.mp3")) ==
                  0,
              "mp3");
        cut_copy(P("long.mp3"), P("trunc.mp3"), 0.5);
        expect_audio("trunc.mp3", M2U_DECODE_TRUNCATED, "MP3 cut at half");
    }
    /* WAV whose header claims 3 s but holds 1.5 s */
    cut_copy(P("sine.wav"), P("lying.wav"), 0.5);
    expect_audio("lying.wav", M2U_DECODE_TRUNCATED, "WAV header claims more data");

    /* a valid WAV with no samples: 44-byte header, data size 0 */
    {
        unsigned char h[44] = {'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ',
                               16,  0,   0,   0,   1,  0, 1, 0, 0x44, 0xac, 0, 0, 0x88, 0x58, 1, 0,
                               2,   0,   16,  0,   'd', 'a', 't', 'a', 0, 0, 0, 0};
        write_bytes(P("zero.wav"), h, sizeof h);
        expect_audio("zero.wav", M2U_DECODE_EMPTY, "0 samples");
    }
    /* a 64-byte WAV whose LIST/INFO chunk announces a 2 GB subchunk: FFmpeg's
     * demuxer allocated and zeroed that much, several times per probe, until
     * m2u capped FFmpeg's single allocations (found by the media fuzzer;
     * its input is tests/fuzz/regressions/media).  Peak RSS must not move by
     * anything near it. */
    {
        unsigned char h[64] = {'R', 'I', 'F', 'F', 56,  0,   0,   0,    'W',  'A', 'V', 'E', 'f', 'm', 't', ' ',
                               16,  0,   0,   0,   1,   0,   1,   0,    0x40, 0x1f, 0,  0,   0x80, 0x3e, 0, 0,
                               2,   0,   16,  0,   'L', 'I', 'S', 'T',  0x1a, 0,   0,   0x80, 'I', 'N', 'F', 'O',
                               'I', 'S', 'F', 'T', 0,   0,   0,   0x7e, 'L',  'a', 'v', 'f', 0,   0,   0,   0};
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long before_kb = ru.ru_maxrss;
        write_bytes(P("bigtag.wav"), h, sizeof h);
        expect_audio("bigtag.wav", M2U_DECODE_NOT_MEDIA, "LIST/INFO subchunk claims 2 GB");
        getrusage(RUSAGE_SELF, &ru);
        CHECK(ru.ru_maxrss - before_kb < 256 * 1024, "bigtag.wav: decoding raised peak RSS by %ld MB",
              (ru.ru_maxrss - before_kb) / 1024);
    }
    /* video without audio, image, asked for audio */
    CHECK(sh(FF "-f lavfi -i testsrc=s=128x96:r=10:d=1 -c:v libx264 -pix_fmt yuv420p %s", P("mute.mp4")) == 0, "m");
    expect_audio("mute.mp4", M2U_DECODE_NO_AUDIO, "video without audio");
    expect_audio("img.png", M2U_DECODE_WRONG_KIND, "image given to the audio decoder");
    expect_audio("img.jpg", M2U_DECODE_WRONG_KIND, "JPEG given to the audio decoder");

    /* too short for the caller's minimum */
    CHECK(sh(FF "-f lavfi -i \"sine=frequency=440:sample_rate=44100:d=0.5\" -c:a pcm_s16le %s", P("short.wav")) == 0,
          "short");
    {
        m2u_audio_opts o = {.min_s = 1.0};
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        int rc = m2u_audio_decode_ex(P("short.wav"), 24000, &o, &pcm, &n, &info);
        CHECK(rc < 0 && info.status == M2U_DECODE_TOO_SHORT && !pcm, "too short: status %s: %s",
              m2u_decode_reason(info.status), m2u_last_error());
        printf("  %-14s %-12s %s\n", "short.wav", m2u_decode_reason(info.status),
               m2u_last_error() + strlen(g_dir) + 1);
    }
    /* garbage written over the middle of an MP3: isolated bad frames are skipped,
     * a wrecked file is corrupt */
    if (have_encoder("libmp3lame")) {
        FILE *f = fopen(P("long.mp3"), "rb");
        static unsigned char b[1 << 20];
        size_t nb = f ? fread(b, 1, sizeof b, f) : 0;
        if (f) fclose(f);
        memcpy(b + nb / 2, junk, 600);
        write_bytes(P("dent.mp3"), b, nb);
        float *pcm = NULL;
        int64_t n = 0;
        m2u_audio_info info;
        int rc = m2u_audio_decode(P("dent.mp3"), 24000, &pcm, &n, &info);
        CHECK(rc == 0 && (double)n / 24000 > 9.5, "dented mp3: %s (%.2f s, %d errors)", m2u_last_error(),
              (double)n / 24000, info.decode_errors);
        printf("  %-14s %-12s %.2f s, %d tolerated decoder errors\n", "dent.mp3", m2u_decode_reason(info.status),
               (double)n / 24000, info.decode_errors);
        free(pcm);
        for (size_t off = 4096; off + 600 < nb; off += 1500) memcpy(b + off, junk + off % 1000, 600);
        write_bytes(P("wreck.mp3"), b, nb);
        rc = m2u_audio_decode(P("wreck.mp3"), 24000, &pcm, &n, &info);
        CHECK(rc < 0 && (info.status == M2U_DECODE_CORRUPT || info.status == M2U_DECODE_TRUNCATED),
              "wrecked mp3: status %s: %s", m2u_decode_reason(info.status), m2u_last_error());
        printf("  %-14s %-12s %s\n", "wreck.mp3", m2u_decode_reason(info.status),
               m2u_last_error() + strlen(g_dir) + 1);
        if (rc == 0) free(pcm);
    }

    /* images and videos */
    uint8_t *rgb = (uint8_t *)1;
    m2u_image_info ii;
    cut_copy(P("img.png"), P("trunc.png"), 0.5);
    int rc = m2u_image_load(P("trunc.png"), 64, 64, M2U_FIT_CROP, &rgb, &ii);
    CHECK(rc < 0 && ii.status == M2U_DECODE_CORRUPT && rgb == NULL, "truncated png: %s: %s",
          m2u_decode_reason(ii.status), m2u_last_error());
    printf("  %-14s %-12s %s\n", "trunc.png", m2u_decode_reason(ii.status), m2u_last_error() + strlen(g_dir) + 1);
    const struct {
        const char *file;
        int status;
    } img_cases[] = {{"sine.wav", M2U_DECODE_WRONG_KIND}, {"clip.mp4", M2U_DECODE_WRONG_KIND},
                     {"text.mp3", M2U_DECODE_NOT_MEDIA},  {"empty.wav", M2U_DECODE_EMPTY},
                     {"missing.png", M2U_DECODE_CANNOT_OPEN}};
    for (size_t i = 0; i < sizeof img_cases / sizeof img_cases[0]; i++) {
        rc = m2u_image_load(P(img_cases[i].file), 64, 64, M2U_FIT_CROP, &rgb, &ii);
        CHECK(rc < 0 && ii.status == img_cases[i].status && rgb == NULL, "image loader on %s: %s, want %s: %s",
              img_cases[i].file, m2u_decode_reason(ii.status), m2u_decode_reason(img_cases[i].status),
              m2u_last_error());
    }
    m2u_video_info vi;
    const struct {
        const char *file;
        int status;
    } vid_cases[] = {{"img.png", M2U_DECODE_WRONG_KIND}, {"sine.flac", M2U_DECODE_NO_VIDEO},
                     {"random.wav", M2U_DECODE_NOT_MEDIA}, {"empty.wav", M2U_DECODE_EMPTY}};
    for (size_t i = 0; i < sizeof vid_cases / sizeof vid_cases[0]; i++) {
        rc = m2u_video_frames(P(vid_cases[i].file), 4, 32, 32, &rgb, &vi);
        CHECK(rc < 0 && vi.status == vid_cases[i].status && rgb == NULL, "video sampler on %s: %s, want %s: %s",
              vid_cases[i].file, m2u_decode_reason(vi.status), m2u_decode_reason(vid_cases[i].status),
              m2u_last_error());
    }
    /* MP3 with cover art is still not a video */
    if (have_encoder("libmp3lame")) {
        CHECK(sh(FF "-i %s -i %s -map 0:a -map 1:v -c:a copy -c:v png -disposition:v attached_pic %s",
                 P("sine.mp3"), P("img.png"), P("cover.mp3")) == 0,
              "cover");
        rc = m2u_video_frames(P("cover.mp3"), 4, 32, 32, &rgb, &vi);
        CHECK(rc < 0 && vi.status == M2U_DECODE_NO_VIDEO, "mp3 with cover art: %s", m2u_decode_reason(vi.status));
        float *pcm = NULL;
        int64_t n = 0;
        CHECK(m2u_audio_decode(P("cover.mp3"), 24000, &pcm, &n, NULL) == 0 && n > 70000, "cover mp3 audio: %s",
              m2u_last_error());
        free(pcm);
    }
    /* Matroska video cut at 60 %: the header's duration promises more */
    CHECK(sh(FF "-f lavfi -i testsrc=s=128x96:r=25:d=8 -c:v libx264 -g 25 -pix_fmt yuv420p %s", P("long.mkv")) == 0,
          "mkv");
    cut_copy(P("long.mkv"), P("trunc.mkv"), 0.6);
    rc = m2u_video_frames(P("trunc.mkv"), 8, 32, 32, &rgb, &vi);
    CHECK(rc < 0 && vi.status == M2U_DECODE_TRUNCATED && rgb == NULL, "truncated mkv: %s: %s",
          m2u_decode_reason(vi.status), m2u_last_error());
    printf("  %-14s %-12s %s\n", "trunc.mkv", m2u_decode_reason(vi.status), m2u_last_error() + strlen(g_dir) + 1);
    /* MP4 cut at half: the index (moov, written last) is gone */
    cut_copy(P("clip.mp4"), P("trunc.mp4"), 0.5);
    rc = m2u_video_frames(P("trunc.mp4"), 8, 32, 32, &rgb, &vi);
    CHECK(rc < 0 && vi.status == M2U_DECODE_NOT_MEDIA, "truncated mp4: %s: %s", m2u_decode_reason(vi.status),
          m2u_last_error());
    printf("  %-14s %-12s %s\n", "trunc.mp4", m2u_decode_reason(vi.status), m2u_last_error() + strlen(g_dir) + 1);
}

/* ---- inputs -------------------------------------------------------------------------------------- */

static void test_inputs(void) {
    /* two copies of the same tree under different parents: same ids */
    sh("mkdir -p %s/a/media/sub %s/b/media", g_dir, g_dir);
    sh("cp %s %s/a/media/x.wav && cp %s %s/a/media/sub/y.flac && cp %s %s/a/media/z.png && "
       "cp %s %s/a/media/v.mp4 && echo notes > %s/a/media/notes.txt && cp %s %s/a/media/.hidden.wav && "
       "cp -r %s/a/media/. %s/b/media/",
       P("sine.wav"), g_dir, P("sine.flac"), g_dir, P("img.png"), g_dir, P("clip.mp4"), g_dir, g_dir, P("sine.wav"),
       g_dir, g_dir, g_dir);
    m2u_input_list l = {0};
    m2u_input_opts o = {0};
    CHECK(m2u_inputs_add_dir(&l, P("a/media"), &o) < 0 && strstr(m2u_last_error(), "licence"),
          "folder without licence accepted: %s", m2u_last_error());
    o.default_licence = "CC-BY-4.0";
    CHECK(m2u_inputs_add_dir(&l, P("a/media"), &o) == 0 && m2u_inputs_finish(&l) == 0, "dir: %s", m2u_last_error());
    CHECK(l.n == 4, "dir listed %zu files, want 4", l.n);
    if (l.n == 4) {
        CHECK(!strcmp(l.items[0].rel, "media/sub/y.flac") && !strcmp(l.items[1].rel, "media/v.mp4") &&
                  !strcmp(l.items[2].rel, "media/x.wav") && !strcmp(l.items[3].rel, "media/z.png"),
              "order %s %s %s %s", l.items[0].rel, l.items[1].rel, l.items[2].rel, l.items[3].rel);
        CHECK(l.items[0].kind == M2U_KIND_AUDIO && l.items[1].kind == M2U_KIND_VIDEO &&
                  l.items[3].kind == M2U_KIND_IMAGE && !strcmp(l.items[2].licence, "CC-BY-4.0"),
              "kinds");
        CHECK(strlen(l.items[0].id) == 16, "id %s", l.items[0].id);
    }
    m2u_input_list l2 = {0};
    CHECK(m2u_inputs_add_dir(&l2, P("b/media"), &o) == 0 && m2u_inputs_finish(&l2) == 0 && l2.n == l.n, "b");
    for (size_t i = 0; i < l.n && i < l2.n; i++)
        CHECK(!strcmp(l.items[i].id, l2.items[i].id), "id differs across roots: %s %s", l.items[i].id,
              l2.items[i].id);
    /* kinds filter, globs, the same file twice, two different files with one id */
    m2u_input_list l3 = {0};
    m2u_input_opts oa = o;
    oa.kinds = M2U_KIND_AUDIO;
    char pat[600];
    snprintf(pat, sizeof pat, "%s/a/media/*.wav", g_dir);
    CHECK(m2u_inputs_add_dir(&l3, P("a/media"), &oa) == 0 && m2u_inputs_add_glob(&l3, pat, &o) == 0 &&
              m2u_inputs_finish(&l3) == 0,
          "audio + glob: %s", m2u_last_error());
    CHECK(l3.n == 2 && l.n == 4 && !strcmp(l3.items[1].id, l.items[2].id), "audio filter + glob dedupe: %zu", l3.n);
    snprintf(pat, sizeof pat, "%s/a/media/*.nothing", g_dir);
    /* a pattern matching nothing: listed as missing (the build records it), or refused when strict */
    size_t before = l3.n;
    CHECK(m2u_inputs_add_glob(&l3, pat, &o) == 0 && l3.n == before + 1 && l3.items[before].size == -1 &&
              !strcmp(l3.items[before].path, pat),
          "empty glob: %s", m2u_last_error());
    m2u_input_opts os = o;
    os.strict = 1;
    CHECK(m2u_inputs_add_glob(&l3, pat, &os) < 0 && strstr(m2u_last_error(), "matches no file"),
          "empty glob accepted under strict");
    m2u_inputs_free(&l3);
    CHECK(m2u_inputs_add_dir(&l3, P("a/media"), &o) == 0 && m2u_inputs_add_dir(&l3, P("b/media"), &o) == 0 &&
              m2u_inputs_finish(&l3) < 0 && strstr(m2u_last_error(), "duplicate input id"),
          "colliding ids accepted: %s", m2u_last_error());
    m2u_inputs_free(&l3);

    /* manifests */
    FILE *f = fopen(P("a/media/list.jsonl"), "w");
    fprintf(f, "{\"path\": \"x.wav\", \"licence\": \"CC0-1.0\", \"attribution\": \"A. Composer\", "
               "\"source\": \"test\"}\n\n");
    fprintf(f, "{\"path\": \"sub/y.flac\", \"license\": \"CC-BY-SA-4.0\"}\r\n");
    fprintf(f, "{\"path\": \"z.png\", \"licence\": \"unknown\", \"kind\": \"image\", \"id\": \"img-1\"}\n");
    fprintf(f, "{\"path\": \"gone.ogg\", \"licence\": \"CC0-1.0\"}\n");
    fclose(f);
    m2u_input_list lm = {0};
    m2u_input_opts on = {0};
    int rc = m2u_inputs_add_manifest(&lm, P("a/media/list.jsonl"), &on);
    CHECK(rc < 0 && strstr(m2u_last_error(), "list.jsonl:4:") && strstr(m2u_last_error(), "licence") && lm.n == 0,
          "manifest with an unknown licence: %s", m2u_last_error());
    printf("  manifest error: %s\n", strstr(m2u_last_error(), "list.jsonl"));
    on.default_licence = "LicenseRef-test";
    rc = m2u_inputs_add_manifest(&lm, P("a/media/list.jsonl"), &on) == 0 && m2u_inputs_finish(&lm) == 0;
    CHECK(rc && lm.n == 4, "manifest: %s (%zu)", m2u_last_error(), lm.n);
    if (rc && lm.n == 4) {
        /* order by rel: media/gone.ogg, media/sub/y.flac, media/x.wav, media/z.png */
        CHECK(lm.items[0].size == -1 && !strcmp(lm.items[1].licence, "CC-BY-SA-4.0") &&
                  !strcmp(lm.items[2].attribution, "A. Composer") && !strcmp(lm.items[2].source, "test") &&
                  !strcmp(lm.items[3].licence, "LicenseRef-test") && !strcmp(lm.items[3].id, "img-1"),
              "manifest fields");
        /* same id as the folder listing */
        CHECK(!strcmp(lm.items[2].id, l.items[2].id) && !strcmp(lm.items[1].id, l.items[0].id),
              "manifest ids differ from folder ids");
    }
    m2u_inputs_free(&lm);
    const char *bad[] = {"{\"path\": \"x.wav\", \"licence\": \"CC0\"",    "[1, 2]",
                         "{\"licence\": \"CC0\"}",                        "{\"path\": 3, \"licence\": \"CC0\"}",
                         "{\"path\": \"x.wav\", \"kind\": \"sound\"}",    "{\"path\": \"x.wav\", \"id\": \"a b\"}",
                         "{\"path\": \"x.wav\", \"licence\": [\"CC0\"]}", "not json at all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = fopen(P("bad.jsonl"), "w");
        fprintf(f, "{\"path\": \"sine.wav\", \"licence\": \"CC0-1.0\"}\n%s\n", bad[i]);
        fclose(f);
        rc = m2u_inputs_add_manifest(&lm, P("bad.jsonl"), &on);
        CHECK(rc < 0 && strstr(m2u_last_error(), "bad.jsonl:2:") && lm.n == 0, "bad line %zu accepted: %s", i,
              m2u_last_error());
        if (i == 0) printf("  manifest error: %s\n", strstr(m2u_last_error(), "bad.jsonl"));
    }
    m2u_inputs_free(&lm);
    /* dispatcher: folder, manifest, pattern, single file */
    snprintf(pat, sizeof pat, "%s/a/media/s*/*.flac", g_dir);
    rc = m2u_inputs_add(&lm, P("a/media/list.jsonl"), &on) == 0 && m2u_inputs_add(&lm, pat, &o) == 0 &&
         m2u_inputs_add(&lm, P("a/media/x.wav"), &o) == 0 && m2u_inputs_add(&lm, P("a/media"), &o) == 0 &&
         m2u_inputs_finish(&lm) == 0;
    CHECK(rc && lm.n == 5, "dispatch: %s (%zu)", m2u_last_error(), lm.n); /* 4 from the folder + gone.ogg */
    if (rc && lm.n == 5) CHECK(!strcmp(lm.items[3].attribution, "A. Composer"), "first listing wins");
    m2u_inputs_free(&lm);
    m2u_inputs_free(&l);
    m2u_inputs_free(&l2);
    CHECK(m2u_media_kind_of("A.FLAC") == M2U_KIND_AUDIO && m2u_media_kind_of("x.webm") == M2U_KIND_VIDEO &&
              m2u_media_kind_of("x.JPEG") == M2U_KIND_IMAGE && m2u_media_kind_of(".wav") == M2U_KIND_UNKNOWN &&
              m2u_media_kind_of("dir.mp3/readme") == M2U_KIND_UNKNOWN,
          "kind_of");
}

/* ---- speed ------------------------------------------------------------------------------------------ */

static double cpu_self(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_children(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void bench(void) {
    /* 60 s of music-like stereo: two tones plus noise, so FLAC has work to do */
    CHECK(sh(FF "-f lavfi -i \"aevalsrc='0.3*sin(2*PI*220*t)+0.2*sin(2*PI*331*t)+0.1*random(0)-0.05|"
                "0.3*sin(2*PI*277*t)+0.1*random(1)-0.05':s=44100:d=60\" -c:a flac %s",
             P("bench.flac")) == 0,
          "bench flac");
    const int rates[] = {24000, 16000, 44100};
    for (int r = 0; r < 3; r++) {
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = cpu_self();
            float *pcm = NULL;
            int64_t n = 0;
            int rc = m2u_audio_decode(P("bench.flac"), rates[r], &pcm, &n, NULL);
            double t = cpu_self() - t0;
            CHECK(rc == 0 && llabs(n - 60LL * rates[r]) < 100, "bench decode %s", m2u_last_error());
            free(pcm);
            if (t < best) best = t;
        }
        printf("  bench: m2u_audio_decode 60 s FLAC 44.1k stereo -> %d mono: %.3f CPU s = %.0f x real time\n",
               rates[r], best, 60.0 / best);
    }
    /* ffmpeg's process start-up (library loading, shell) measured on a
     * 0.1 s file, reported so its share can be taken out */
    CHECK(sh(FF "-f lavfi -i \"sine=d=0.1\" -c:a flac %s", P("tiny.flac")) == 0, "tiny");
    const char *files[] = {"tiny.flac", "bench.flac", "bench.flac"};
    const char *variants[] = {"-f null -", "-f null -", "-ac 1 -ar 24000 -f null -"};
    double base = 0;
    for (int v = 0; v < 3; v++) {
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = cpu_children();
            sh("ffmpeg -nostdin -hide_banner -loglevel error -threads 1 -i %s %s", P(files[v]), variants[v]);
            double t = cpu_children() - t0;
            if (t < best) best = t;
        }
        if (v == 0) {
            base = best;
            printf("  bench: ffmpeg start-up (0.1 s file): %.3f CPU s\n", best);
        } else {
            printf("  bench: ffmpeg -threads 1 -i X %-26s: %.3f CPU s = %.0f x real time; %.0f x without start-up\n",
                   variants[v], best, 60.0 / best, best > base ? 60.0 / (best - base) : 0.0);
        }
    }
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/m2u_decode_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
        printf("test_decode: ffmpeg CLI not found; cannot make test media\n");
        return 1;
    }
    test_audio();
    test_clips();
    test_video();
    test_images();
    test_broken();
    test_inputs();
    if (!getenv("M2U_TEST_NO_BENCH")) bench();
    if (!getenv("M2U_KEEP_TMP")) sh("rm -rf %s", g_dir);
    return t_finish("test_decode");
}
