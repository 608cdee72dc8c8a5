/* Built-in features (see builtin_features.h for the definitions). */
#include "builtin_features.h"

#include "key.h"
#include "m2u_error.h"
#include "tensor.h" /* m2u_log10_array */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TWO_PI 6.28318530717958647692

/* ---- music ---------------------------------------------------------------------- */

#define MERT_NFFT 2048
#define MERT_HOP 512

int m2u_builtin_mert(const float *pcm, size_t n, int rate, float *out) {
    if (!pcm || !out) return m2u_fail("builtin mert: NULL argument");
    if (n == 0) return m2u_fail("builtin mert: empty clip");
    if (rate < 8000 || rate > 192000) return m2u_fail("builtin mert: sample rate %d outside 8000..192000", rate);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i])) return m2u_fail("builtin mert: sample %zu is not finite", i);

    const size_t frames = n >= MERT_NFFT ? 1 + (n - MERT_NFFT) / MERT_HOP : 1;
    m2u_stft *st = m2u_stft_new(MERT_NFFT);
    if (!st) return m2u_fail_prefix("builtin mert");
    double *mag = malloc((MERT_NFFT / 2 + 1) * sizeof(double));
    double *acc = malloc(M2U_BUILTIN_MERT_DIM * sizeof(double));
    if (!mag || !acc) {
        free(mag);
        free(acc);
        m2u_stft_free(st);
        return m2u_fail("builtin mert: out of memory");
    }
    for (int l = 0; l < M2U_BUILTIN_MERT_ROWS; l++) {
        size_t a = (size_t)l * frames / M2U_BUILTIN_MERT_ROWS;
        size_t b = (size_t)(l + 1) * frames / M2U_BUILTIN_MERT_ROWS;
        if (b <= a) b = a + 1;
        memset(acc, 0, M2U_BUILTIN_MERT_DIM * sizeof(double));
        for (size_t f = a; f < b; f++) {
            m2u_stft_frame(st, pcm, n, (long long)(f * MERT_HOP), mag);
            /* the bins' powers, then their log10 in one vectorised pass (glibc's log10, a call
               per bin, was 6 % of a MUCaps build); the bins above move down one, in place */
            for (int c = 0; c < M2U_BUILTIN_MERT_DIM; c++) mag[c] = mag[c + 1] * mag[c + 1] + 1e-10;
            m2u_log10_array(mag, mag, M2U_BUILTIN_MERT_DIM);
            for (int c = 0; c < M2U_BUILTIN_MERT_DIM; c++) acc[c] += mag[c];
        }
        const double cnt = (double)(b - a);
        double mean = 0;
        for (int c = 0; c < M2U_BUILTIN_MERT_DIM; c++) {
            acc[c] /= cnt;
            mean += acc[c];
        }
        mean /= M2U_BUILTIN_MERT_DIM;
        double var = 0;
        for (int c = 0; c < M2U_BUILTIN_MERT_DIM; c++) var += (acc[c] - mean) * (acc[c] - mean);
        const double sd = sqrt(var / M2U_BUILTIN_MERT_DIM);
        float *row = out + (size_t)l * M2U_BUILTIN_MERT_DIM;
        for (int c = 0; c < M2U_BUILTIN_MERT_DIM; c++) row[c] = sd < 1e-9 ? 0.0f : (float)((acc[c] - mean) / sd);
    }
    free(mag);
    free(acc);
    m2u_stft_free(st);
    return 0;
}

/* ---- image and video ------------------------------------------------------------ */

#define GRID (M2U_BUILTIN_IMAGE_SIZE / M2U_BUILTIN_PATCH) /* 14 */
#define NPATCH (GRID * GRID)                              /* 196 */
#define PDIM M2U_BUILTIN_VIT_DIM

/* Row 0 = the column means of rows 1..rows-1, summed in row order. */
static int cls_mean(float *out, size_t rows, const char *who) {
    double *acc = calloc(PDIM, sizeof(double));
    if (!acc) return m2u_fail("%s: out of memory", who);
    for (size_t r = 1; r < rows; r++) {
        const float *row = out + r * PDIM;
        for (int c = 0; c < PDIM; c++) acc[c] += row[c];
    }
    for (int c = 0; c < PDIM; c++) out[c] = (float)(acc[c] / (double)(rows - 1));
    free(acc);
    return 0;
}

int m2u_builtin_vit(const uint8_t *rgb, float *out) {
    if (!rgb || !out) return m2u_fail("builtin vit: NULL argument");
    const int S = M2U_BUILTIN_IMAGE_SIZE, P = M2U_BUILTIN_PATCH;
    for (int py = 0; py < GRID; py++)
        for (int px = 0; px < GRID; px++) {
            float *row = out + (size_t)(1 + py * GRID + px) * PDIM;
            for (int y = 0; y < P; y++)
                for (int x = 0; x < P; x++)
                    for (int ch = 0; ch < 3; ch++) {
                        const uint8_t v = rgb[((size_t)(py * P + y) * S + (size_t)(px * P + x)) * 3 + (size_t)ch];
                        row[(y * P + x) * 3 + ch] = (float)(v / 127.5 - 1.0);
                    }
        }
    return cls_mean(out, M2U_BUILTIN_VIT_ROWS, "builtin vit");
}

int m2u_builtin_vivit(const uint8_t *rgb, float *out) {
    if (!rgb || !out) return m2u_fail("builtin vivit: NULL argument");
    const int S = M2U_BUILTIN_IMAGE_SIZE, P = M2U_BUILTIN_PATCH;
    const size_t frame = (size_t)S * S * 3;
    for (int t = 0; t < M2U_BUILTIN_VIVIT_FRAMES / 2; t++) {
        const uint8_t *f0 = rgb + (size_t)(2 * t) * frame, *f1 = f0 + frame;
        for (int py = 0; py < GRID; py++)
            for (int px = 0; px < GRID; px++) {
                float *row = out + (size_t)(1 + t * NPATCH + py * GRID + px) * PDIM;
                for (int y = 0; y < P; y++)
                    for (int x = 0; x < P; x++)
                        for (int ch = 0; ch < 3; ch++) {
                            const size_t o = ((size_t)(py * P + y) * S + (size_t)(px * P + x)) * 3 + (size_t)ch;
                            row[(y * P + x) * 3 + ch] = (float)(((double)f0[o] + (double)f1[o]) / 255.0 - 1.0);
                        }
            }
    }
    return cls_mean(out, M2U_BUILTIN_VIVIT_ROWS, "builtin vivit");
}

/* ---- text ------------------------------------------------------------------------ */

/* FNV-1a 64, optionally lower-casing ASCII letters on the fly. */
static uint64_t fnv1a64(const unsigned char *p, size_t len, int lower) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (lower && c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t m2u_builtin_fnv1a64(const void *data, size_t len) { return fnv1a64(data, len, 0); }

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) { return ((double)(splitmix64(state) >> 11) + 0.5) / 9007199254740992.0; }

static int word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

/* Next word starting the scan at *pos: its bytes (as in the text, not yet
 * lower-cased) are text[*start .. *start + *len); returns 0 at the end. */
static int next_word(const char *text, size_t *pos, size_t *start, size_t *len) {
    size_t i = *pos;
    for (;;) {
        while (text[i] && !word_byte((unsigned char)text[i])) i++;
        if (!text[i]) {
            *pos = i;
            return 0;
        }
        size_t a = i;
        while (text[i] && word_byte((unsigned char)text[i])) i++;
        size_t b = i;
        while (a < b && text[a] == '\'') a++;
        while (b > a && text[b - 1] == '\'') b--;
        if (b > a) {
            *pos = i;
            *start = a;
            *len = b - a;
            return 1;
        }
    }
}

size_t m2u_builtin_text_words(const char *text) {
    if (!text) return 0;
    size_t pos = 0, a, l, k = 0;
    while (next_word(text, &pos, &a, &l)) k++;
    return k;
}

int m2u_builtin_text(const char *text, int rows, int dim, float *out) {
    if (!text || !out) return m2u_fail("builtin text: NULL argument");
    if (rows < 1 || rows > 4096) return m2u_fail("builtin text: rows %d outside 1..4096", rows);
    if (dim < 2 || dim > 65536) return m2u_fail("builtin text: dim %d outside 2..65536", dim);
    double *prev = malloc((size_t)dim * sizeof(double));
    double *cur = malloc((size_t)dim * sizeof(double));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return m2u_fail("builtin text: out of memory");
    }
    memset(out, 0, (size_t)rows * (size_t)dim * sizeof(float));
    size_t pos = 0, a, len;
    for (int j = 0; j < rows && next_word(text, &pos, &a, &len); j++) {
        uint64_t state = fnv1a64((const unsigned char *)text + a, len, 1);
        for (int i = 0; i < dim; i += 2) {
            const double u1 = uniform01(&state), u2 = uniform01(&state);
            const double r = sqrt(-2.0 * log(u1));
            cur[i] = r * cos(TWO_PI * u2);
            if (i + 1 < dim) cur[i + 1] = r * sin(TWO_PI * u2);
        }
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += cur[i] * cur[i];
        double nrm = sqrt(ss);
        for (int i = 0; i < dim; i++) cur[i] /= nrm;
        if (j > 0) {
            ss = 0;
            for (int i = 0; i < dim; i++) {
                cur[i] += 0.5 * prev[i];
                ss += cur[i] * cur[i];
            }
            nrm = sqrt(ss);
            for (int i = 0; i < dim; i++) cur[i] /= nrm;
        }
        float *row = out + (size_t)j * (size_t)dim;
        for (int i = 0; i < dim; i++) row[i] = (float)cur[i];
        double *t = prev;
        prev = cur;
        cur = t;
    }
    free(prev);
    free(cur);
    return 0;
}
