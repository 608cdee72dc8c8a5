/* Built-in features (data/build/builtin_features.h) against their documented
 * definitions, recomputed here independently: a naive DFT for the music rows,
 * direct pixel indexing for the ViT/ViViT grids, and this file's own FNV-1a,
 * splitmix64 and Box-Muller (checked first against published test vectors)
 * for the text rows. */
#include "builtin_features.h"
#include "m2u_error.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define MR M2U_BUILTIN_MERT_ROWS
#define MD M2U_BUILTIN_MERT_DIM

static float *tone(size_t n, int rate, double hz, double amp) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * hz * (double)i / rate));
    return x;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* One frame's log power, bins 1..1024, by the textbook DFT (no FFT). */
static void naive_logpow(const float *pcm, size_t n, size_t start, const double *cs, const double *sn, double *out) {
    double xw[2048];
    for (int i = 0; i < 2048; i++) {
        size_t j = start + (size_t)i;
        double w = 0.5 - 0.5 * cos(2 * PI * i / 2048.0);
        xw[i] = (j < n ? pcm[j] : 0.0) * w;
    }
    for (int k = 1; k <= 1024; k++) {
        double re = 0, im = 0;
        for (int i = 0; i < 2048; i++) {
            int m = (i * k) & 2047;
            re += xw[i] * cs[m];
            im -= xw[i] * sn[m];
        }
        out[k - 1] = log10(re * re + im * im + 1e-10);
    }
}

static void standardise(double *v, int n) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    s = sqrt(s / n);
    for (int i = 0; i < n; i++) v[i] = s < 1e-9 ? 0 : (v[i] - m) / s;
}

static double max_abs_diff_fd(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]);
    return m;
}

static void test_mert(void) {
    float *out = malloc(MR * MD * sizeof(float)), *out2 = malloc(MR * MD * sizeof(float));

    /* 1 kHz: bin 1000 * 2048 / rate; column = bin - 1 */
    const int rates[3] = {16000, 24000, 44100};
    for (int r = 0; r < 3; r++) {
        int rate = rates[r];
        size_t n = (size_t)rate * 2;
        float *x = tone(n, rate, 1000.0, 0.5);
        CHECK(m2u_builtin_mert(x, n, rate, out) == 0, "%s", m2u_last_error());
        int want = (int)lround(1000.0 * 2048 / rate) - 1;
        int ok = 1;
        for (int l = 0; l < MR; l++) ok &= argmax(out + l * MD, MD) == want;
        CHECK(ok, "1 kHz at %d Hz: row 0 peaks at column %d, want %d", rate, argmax(out, MD), want);
        /* standardised rows */
        double worst_m = 0, worst_v = 0;
        for (int l = 0; l < MR; l++) {
            double m = 0, v = 0;
            for (int c = 0; c < MD; c++) m += out[l * MD + c];
            m /= MD;
            for (int c = 0; c < MD; c++) v += (out[l * MD + c] - m) * (out[l * MD + c] - m);
            v /= MD;
            if (fabs(m) > worst_m) worst_m = fabs(m);
            if (fabs(v - 1) > worst_v) worst_v = fabs(v - 1);
        }
        CHECK(worst_m < 1e-5 && worst_v < 1e-4, "rows not standardised: |mean| %g, |var-1| %g", worst_m, worst_v);
        /* determinism: same input, same bits */
        CHECK(m2u_builtin_mert(x, n, rate, out2) == 0, "%s", m2u_last_error());
        CHECK(memcmp(out, out2, MR * MD * sizeof(float)) == 0, "not bit-identical at %d Hz", rate);
        /* a different signal differs */
        float *y = tone(n, rate, 2000.0, 0.5);
        CHECK(m2u_builtin_mert(y, n, rate, out2) == 0, "%s", m2u_last_error());
        CHECK(argmax(out2, MD) == (int)lround(2000.0 * 2048 / rate) - 1, "2 kHz peak at %d", argmax(out2, MD));
        CHECK(memcmp(out, out2, MR * MD * sizeof(float)) != 0, "1 kHz and 2 kHz give the same features");
        free(x);
        free(y);
    }

    /* rows follow time: 440 Hz then 3 kHz */
    {
        const int rate = 24000;
        size_t n = (size_t)rate * 4;
        float *x = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 * sin(2 * PI * (i < n / 2 ? 440.0 : 3000.0) * i / rate));
        CHECK(m2u_builtin_mert(x, n, rate, out) == 0, "%s", m2u_last_error());
        int a0 = argmax(out, MD), a24 = argmax(out + 24 * MD, MD);
        CHECK(a0 == (int)lround(440.0 * 2048 / rate) - 1, "first row peaks at %d", a0);
        CHECK(a24 == (int)lround(3000.0 * 2048 / rate) - 1, "last row peaks at %d", a24);
        free(x);
    }

    /* against a naive DFT: the documented frames and segments */
    {
        double *cs = malloc(2048 * sizeof(double)), *sn = malloc(2048 * sizeof(double));
        for (int i = 0; i < 2048; i++) {
            cs[i] = cos(2 * PI * i / 2048.0);
            sn[i] = sin(2 * PI * i / 2048.0);
        }
        /* deterministic noise plus a chirp-ish mixture */
        uint32_t s = 12345;
        const size_t n = 2048 + 49 * 512; /* F = 50 frames: 2 per row */
        float *x = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(0.3 * sin(2 * PI * (300.0 + 0.05 * i) * i / 22050.0) + 0.1 * ((s >> 8) / 16777216.0 - 0.5));
        }
        CHECK(m2u_builtin_mert(x, n, 22050, out) == 0, "%s", m2u_last_error());
        double a[MD], b[MD];
        for (int l = 0; l < MR; l += 12) { /* rows 0, 12, 24 = frames (0,1), (24,25), (48,49) */
            naive_logpow(x, n, (size_t)(2 * l) * 512, cs, sn, a);
            naive_logpow(x, n, (size_t)(2 * l + 1) * 512, cs, sn, b);
            for (int c = 0; c < MD; c++) a[c] = (a[c] + b[c]) / 2;
            standardise(a, MD);
            double e = max_abs_diff_fd(out + l * MD, a, MD);
            CHECK(e < 1e-4, "row %d differs from the naive DFT by %g", l, e);
        }
        /* short clip: F = 2 (n = 3000), row l uses frame floor(l * 2 / 25) */
        const size_t ns = 3000;
        CHECK(m2u_builtin_mert(x, ns, 8000, out) == 0, "%s", m2u_last_error());
        naive_logpow(x, ns, 0, cs, sn, a);
        standardise(a, MD);
        naive_logpow(x, ns, 512, cs, sn, b);
        standardise(b, MD);
        CHECK(max_abs_diff_fd(out + 12 * MD, a, MD) < 1e-4, "short clip row 12 != frame 0");
        CHECK(max_abs_diff_fd(out + 13 * MD, b, MD) < 1e-4, "short clip row 13 != frame 1");
        CHECK(max_abs_diff_fd(out + 24 * MD, b, MD) < 1e-4, "short clip row 24 != frame 1");
        /* shorter than one frame: zero-padded, every row the same frame */
        CHECK(m2u_builtin_mert(x, 100, 8000, out) == 0, "%s", m2u_last_error());
        naive_logpow(x, 100, 0, cs, sn, a);
        standardise(a, MD);
        CHECK(max_abs_diff_fd(out, a, MD) < 1e-4 && max_abs_diff_fd(out + 24 * MD, a, MD) < 1e-4,
              "100-sample clip is not the zero-padded frame");
        free(x);
        free(cs);
        free(sn);
    }

    /* silence: constant rows -> zeros */
    {
        float *z = calloc(10000, sizeof(float));
        memset(out, 0x7f, MR * MD * sizeof(float));
        CHECK(m2u_builtin_mert(z, 10000, 16000, out) == 0, "%s", m2u_last_error());
        int allz = 1;
        for (int i = 0; i < MR * MD; i++) allz &= out[i] == 0.0f;
        CHECK(allz, "silence is not all zeros");
        /* errors */
        z[5] = NAN;
        CHECK(m2u_builtin_mert(z, 10000, 16000, out) == -1 && strstr(m2u_last_error(), "finite"), "NaN accepted");
        z[5] = 0;
        CHECK(m2u_builtin_mert(z, 10000, 1000, out) == -1, "rate 1000 accepted");
        CHECK(m2u_builtin_mert(z, 0, 16000, out) == -1, "empty clip accepted");
        free(z);
    }
    free(out);
    free(out2);
}

/* ---- ViT / ViViT ------------------------------------------------------------------ */

#define S 224

static uint8_t pattern(int f, int y, int x, int ch) { return (uint8_t)((f * 37 + y * 7 + x * 3 + ch * 90 + (x * y) % 13) & 255); }

static void test_vit(void) {
    uint8_t *img = malloc(S * S * 3);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int ch = 0; ch < 3; ch++) img[(y * S + x) * 3 + ch] = pattern(0, y, x, ch);
    float *out = malloc(197 * 768 * sizeof(float));
    CHECK(m2u_builtin_vit(img, out) == 0, "%s", m2u_last_error());
    int bad = 0;
    for (int r = 1; r < 197 && !bad; r++) {
        int py = (r - 1) / 14, px = (r - 1) % 14;
        for (int k = 0; k < 768; k++) {
            int y = k / 48, x = (k / 3) % 16, ch = k % 3;
            float want = (float)(pattern(0, py * 16 + y, px * 16 + x, ch) / 127.5 - 1.0);
            if (out[r * 768 + k] != want) {
                bad = 1;
                CHECK(0, "vit row %d col %d: %g, want %g", r, k, out[r * 768 + k], want);
                break;
            }
        }
    }
    CHECK(!bad, "vit patch rows");
    /* a hand-picked value: patch (py 2, px 5), pixel (y 3, x 4), green */
    {
        int r = 1 + 2 * 14 + 5, k = (3 * 16 + 4) * 3 + 1;
        int v = (0 * 37 + (2 * 16 + 3) * 7 + (5 * 16 + 4) * 3 + 1 * 90 + ((5 * 16 + 4) * (2 * 16 + 3)) % 13) & 255;
        CHECK(fabs(out[r * 768 + k] - (v / 127.5 - 1)) < 1e-7, "hand value %g vs %g", out[r * 768 + k], v / 127.5 - 1);
    }
    double worst = 0;
    for (int k = 0; k < 768; k++) {
        double m = 0;
        for (int r = 1; r < 197; r++) m += out[r * 768 + k];
        m /= 196;
        if (fabs(out[k] - m) > worst) worst = fabs(out[k] - m);
    }
    CHECK(worst < 1e-6, "vit CLS is not the patch mean (%g)", worst);
    /* extremes */
    memset(img, 255, S * S * 3);
    CHECK(m2u_builtin_vit(img, out) == 0 && out[0] == 1.0f && out[196 * 768 + 767] == 1.0f, "white != 1");
    memset(img, 0, S * S * 3);
    CHECK(m2u_builtin_vit(img, out) == 0 && out[0] == -1.0f && out[5 * 768 + 100] == -1.0f, "black != -1");
    free(img);
    free(out);
}

static void test_vivit(void) {
    const size_t fr = (size_t)S * S * 3;
    uint8_t *vid = malloc(32 * fr);
    for (int f = 0; f < 32; f++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int ch = 0; ch < 3; ch++) vid[f * fr + (size_t)(y * S + x) * 3 + ch] = pattern(f, y, x, ch);
    float *out = malloc((size_t)3137 * 768 * sizeof(float));
    CHECK(m2u_builtin_vivit(vid, out) == 0, "%s", m2u_last_error());
    int bad = 0;
    for (int r = 1; r < 3137 && !bad; r++) {
        int t = (r - 1) / 196, py = ((r - 1) % 196) / 14, px = (r - 1) % 14;
        for (int k = 0; k < 768; k++) {
            int y = k / 48, x = (k / 3) % 16, ch = k % 3;
            double a = pattern(2 * t, py * 16 + y, px * 16 + x, ch), b = pattern(2 * t + 1, py * 16 + y, px * 16 + x, ch);
            double want = ((a + b) / 2) / 127.5 - 1;
            if (fabs(out[(size_t)r * 768 + k] - want) > 1e-6) {
                bad = 1;
                CHECK(0, "vivit row %d col %d: %g, want %g", r, k, out[(size_t)r * 768 + k], want);
                break;
            }
        }
    }
    CHECK(!bad, "vivit tubelet rows");
    /* the two frames of a tubelet really are averaged: frame 2t+1 changed -> row changes by half */
    {
        int r = 1 + 3 * 196 + 7 * 14 + 9, k = (5 * 16 + 6) * 3 + 2;
        size_t o = 7 * fr + (size_t)((7 * 16 + 5) * S + 9 * 16 + 6) * 3 + 2;
        float before = out[(size_t)r * 768 + k];
        uint8_t old = vid[o];
        vid[o] = (uint8_t)(old ^ 0x80);
        float *out2 = malloc((size_t)3137 * 768 * sizeof(float));
        CHECK(m2u_builtin_vivit(vid, out2) == 0, "%s", m2u_last_error());
        double delta = out2[(size_t)r * 768 + k] - before, want = ((int)vid[o] - (int)old) / 255.0;
        CHECK(fabs(delta - want) < 1e-6, "one pixel of frame 7 moved tubelet 3 by %g, want %g", delta, want);
        int others = 0;
        for (size_t i = 768; i < (size_t)3137 * 768; i++)
            if (i != (size_t)r * 768 + k && out2[i] != out[i]) others++;
        CHECK(others == 0, "%d other tubelet values changed", others);
        vid[o] = old;
        free(out2);
    }
    double worst = 0;
    for (int k = 0; k < 768; k++) {
        double m = 0;
        for (int r = 1; r < 3137; r++) m += out[(size_t)r * 768 + k];
        m /= 3136;
        if (fabs(out[k] - m) > worst) worst = fabs(out[k] - m);
    }
    CHECK(worst < 1e-6, "vivit CLS is not the tubelet mean (%g)", worst);
    CHECK(m2u_builtin_vivit(NULL, out) == -1, "NULL video accepted");
    free(vid);
    free(out);
}

/* ---- text ---------------------------------------------------------------------------
 * Own implementation of the documented definition. */

static uint64_t t_fnv(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ULL; /* 0xcbf29ce484222325 */
    for (size_t i = 0; i < n; i++) {
        h = h ^ (unsigned char)s[i];
        h = h * 1099511628211ULL; /* 0x100000001b3 */
    }
    return h;
}

static uint64_t t_splitmix(uint64_t *st) {
    *st = *st + 0x9E3779B97F4A7C15ULL;
    uint64_t z = *st;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* unit vector of a (lower-case, stripped) word */
static void t_word_vec(const char *w, int dim, double *v) {
    uint64_t st = t_fnv(w, strlen(w));
    for (int i = 0; i < dim; i += 2) {
        double u1 = ((double)(t_splitmix(&st) >> 11) + 0.5) * 0x1p-53;
        double u2 = ((double)(t_splitmix(&st) >> 11) + 0.5) * 0x1p-53;
        double r = sqrt(-2 * log(u1));
        v[i] = r * cos(2 * PI * u2);
        if (i + 1 < dim) v[i + 1] = r * sin(2 * PI * u2);
    }
    double n = 0;
    for (int i = 0; i < dim; i++) n += v[i] * v[i];
    n = sqrt(n);
    for (int i = 0; i < dim; i++) v[i] /= n;
}

/* rows of a list of words */
static void t_rows(const char **words, int nw, int dim, double *rows) {
    for (int j = 0; j < nw; j++) {
        double *row = rows + (size_t)j * dim;
        t_word_vec(words[j], dim, row);
        if (j) {
            double n = 0;
            for (int i = 0; i < dim; i++) {
                row[i] += 0.5 * rows[(size_t)(j - 1) * dim + i];
                n += row[i] * row[i];
            }
            n = sqrt(n);
            for (int i = 0; i < dim; i++) row[i] /= n;
        }
    }
}

static double row_norm(const float *r, int dim) {
    double n = 0;
    for (int i = 0; i < dim; i++) n += (double)r[i] * r[i];
    return sqrt(n);
}

static int row_zero(const float *r, int dim) {
    for (int i = 0; i < dim; i++)
        if (r[i] != 0.0f) return 0;
    return 1;
}

static void test_text(void) {
    /* the generators against published test vectors */
    CHECK(t_fnv("", 0) == 0xcbf29ce484222325ULL && t_fnv("a", 1) == 0xaf63dc4c8601ec8cULL &&
              t_fnv("foobar", 6) == 0x85944171f73967e8ULL,
          "test FNV-1a wrong");
    CHECK(m2u_builtin_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL, "library FNV-1a wrong");
    uint64_t st = 0;
    uint64_t o1 = t_splitmix(&st), o2 = t_splitmix(&st), o3 = t_splitmix(&st);
    CHECK(o1 == 0xe220a8397b1dcdafULL && o2 == 0x6e789e6aa1b965f4ULL && o3 == 0x06c45d188009454fULL,
          "test splitmix64 wrong");

    const int R = 128, D = 768;
    float *a = malloc((size_t)R * D * sizeof(float)), *b = malloc((size_t)R * D * sizeof(float));
    double *want = malloc((size_t)R * D * sizeof(double));

    /* known values: the documented definition recomputed here */
    const char *text = "  'Upbeat' JAZZ piano -- don't stop, café!";
    const char *words[] = {"upbeat", "jazz", "piano", "don't", "stop", "caf\xc3\xa9"};
    CHECK(m2u_builtin_text_words(text) == 6, "%zu words", m2u_builtin_text_words(text));
    /* every byte >= 0x80 is a word byte (U+0100 is c4 80); '-' and '_' separate */
    CHECK(m2u_builtin_text_words("\xc4\x80x r&b lo-fi hip_hop") == 7, "%zu words",
          m2u_builtin_text_words("\xc4\x80x r&b lo-fi hip_hop"));
    CHECK(m2u_builtin_text(text, R, D, a) == 0, "%s", m2u_last_error());
    t_rows(words, 6, D, want);
    for (int j = 0; j < 6; j++) {
        double e = max_abs_diff_fd(a + (size_t)j * D, want + (size_t)j * D, D);
        CHECK(e < 1e-6, "row %d (%s) differs from the definition by %g", j, words[j], e);
        CHECK(fabs(row_norm(a + (size_t)j * D, D) - 1) < 1e-5, "row %d norm %g", j, row_norm(a + (size_t)j * D, D));
    }
    int pad = 1;
    for (int j = 6; j < R; j++) pad &= row_zero(a + (size_t)j * D, D);
    CHECK(pad, "padding rows are not zero");

    /* same first word -> same row 0 bits; different texts differ; order matters */
    CHECK(m2u_builtin_text("Jazz, with brushes", R, D, b) == 0, "%s", m2u_last_error());
    CHECK(memcmp(a + D, b, D * sizeof(float)) != 0, "row 1 of a equals row 0 of b");
    float *c = malloc((size_t)R * D * sizeof(float));
    CHECK(m2u_builtin_text("jazz", R, D, c) == 0, "%s", m2u_last_error());
    CHECK(memcmp(b, c, D * sizeof(float)) == 0, "'Jazz, ...' and 'jazz' differ at row 0");
    CHECK(memcmp(a, b, (size_t)R * D * sizeof(float)) != 0, "different texts are identical");
    CHECK(m2u_builtin_text("piano drums", R, D, b) == 0 && m2u_builtin_text("drums piano", R, D, c) == 0, "%s",
          m2u_last_error());
    CHECK(memcmp(b + D, c + D, D * sizeof(float)) != 0, "word order does not matter");
    /* deterministic */
    CHECK(m2u_builtin_text(text, R, D, b) == 0 && memcmp(a, b, (size_t)R * D * sizeof(float)) == 0, "not repeatable");
    /* context is small: row 1 still mostly the word itself */
    {
        double v[768], dot = 0;
        t_word_vec("jazz", D, v);
        for (int i = 0; i < D; i++) dot += v[i] * a[D + i];
        CHECK(dot > 0.85, "row 1 . vec(jazz) = %g", dot);
    }

    /* 200 words: truncated to 128 rows, and the rest is ignored */
    {
        char *big = malloc(200 * 12 + 1), *p = big;
        for (int k = 0; k < 200; k++) p += sprintf(p, "w%d ", k * 7919 % 1000);
        CHECK(m2u_builtin_text_words(big) == 200, "%zu", m2u_builtin_text_words(big));
        CHECK(m2u_builtin_text(big, R, D, b) == 0, "%s", m2u_last_error());
        int nz = 1;
        for (int j = 0; j < R; j++) nz &= fabs(row_norm(b + (size_t)j * D, D) - 1) < 1e-5;
        CHECK(nz, "not all 128 rows are unit vectors");
        /* cut after word 128 */
        char *q = big;
        for (int k = 0; k < 128; k++) q = strchr(q, ' ') + 1;
        *q = '\0';
        CHECK(m2u_builtin_text(big, R, D, c) == 0, "%s", m2u_last_error());
        CHECK(memcmp(b, c, (size_t)R * D * sizeof(float)) == 0, "words after 128 changed the rows");
        free(big);
    }

    /* empty text and odd dim */
    CHECK(m2u_builtin_text(" ,;''  ", 4, 7, b) == 0, "%s", m2u_last_error());
    CHECK(row_zero(b, 4 * 7), "text without words is not all zeros");
    CHECK(m2u_builtin_text("Hi", 2, 7, b) == 0, "%s", m2u_last_error());
    {
        const char *w1[] = {"hi"};
        t_rows(w1, 1, 7, want);
        CHECK(max_abs_diff_fd(b, want, 7) < 1e-6 && row_zero(b + 7, 7), "odd dim row differs");
    }
    CHECK(m2u_builtin_text("x", 0, 768, b) == -1, "rows 0 accepted");
    CHECK(m2u_builtin_text(NULL, 4, 768, b) == -1, "NULL text accepted");
    free(a);
    free(b);
    free(c);
    free(want);
}

int main(void) {
    test_mert();
    test_vit();
    test_vivit();
    test_text();
    return t_finish("test_builtin_features");
}
