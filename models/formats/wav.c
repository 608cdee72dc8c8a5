#include "wav.h"

#include "fileio.h"
#include "m2u_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}
static void put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

int m2u_wav_write(const char *path, const float *samples, size_t n_frames, int channels, int rate,
                  m2u_wav_format fmt) {
    if (!path || !*path) return m2u_fail("WAV: no output path");
    if (channels < 1 || channels > 64) return m2u_fail("%s: %d channels (need 1..64)", path, channels);
    if (rate < 1 || rate > 1000000) return m2u_fail("%s: sample rate %d Hz out of range", path, rate);
    if (n_frames && !samples) return m2u_fail("%s: no samples", path);
    int bps = fmt == M2U_WAV_FLOAT32 ? 4 : 2;
    size_t n = n_frames * (size_t)channels;
    /* RIFF sizes are 32-bit: the data chunk and the headers must fit */
    if (n_frames > (0xFFFFFFF0u - 64) / ((size_t)channels * bps))
        return m2u_fail("%s: %zu frames do not fit a WAV file (4 GiB limit)", path, n_frames);
    if (fmt == M2U_WAV_FLOAT32)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(samples[i])) return m2u_fail("%s: sample %zu is not finite (%g)", path, i, samples[i]);
    uint32_t data_bytes = (uint32_t)(n * bps);
    /* PCM: RIFF + fmt(16) + data; float: fmt(18, cbSize 0) + fact(4), as the WAVE spec asks for non-PCM */
    unsigned char h[58];
    size_t hl = 0;
    memcpy(h, "RIFF", 4);
    memcpy(h + 8, "WAVE", 4);
    memcpy(h + 12, "fmt ", 4);
    uint32_t fmt_len = fmt == M2U_WAV_FLOAT32 ? 18 : 16;
    put_u32(h + 16, fmt_len);
    put_u16(h + 20, fmt == M2U_WAV_FLOAT32 ? 3 : 1);
    put_u16(h + 22, (uint16_t)channels);
    put_u32(h + 24, (uint32_t)rate);
    put_u32(h + 28, (uint32_t)rate * (uint32_t)channels * (uint32_t)bps);
    put_u16(h + 32, (uint16_t)(channels * bps));
    put_u16(h + 34, (uint16_t)(8 * bps));
    hl = 36;
    if (fmt == M2U_WAV_FLOAT32) {
        put_u16(h + 36, 0);
        memcpy(h + 38, "fact", 4);
        put_u32(h + 42, 4);
        put_u32(h + 46, (uint32_t)n_frames);
        hl = 50;
    }
    memcpy(h + hl, "data", 4);
    put_u32(h + hl + 4, data_bytes);
    hl += 8;
    put_u32(h + 4, (uint32_t)(hl - 8 + data_bytes));

    m2u_atomic_file af;
    if (m2u_atomic_open(&af, path)) return -1;
    int ok = fwrite(h, 1, hl, af.fp) == hl;
    unsigned char buf[4096];
    size_t per = sizeof buf / (size_t)bps;
    for (size_t i = 0; ok && i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t j = 0; j < m; j++) {
            float x = samples[i + j];
            if (fmt == M2U_WAV_FLOAT32) {
                uint32_t u;
                memcpy(&u, &x, 4);
                put_u32(buf + 4 * j, u);
            } else {
                if (x != x) x = 0.0f; /* NaN */
                x = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
                put_u16(buf + 2 * j, (uint16_t)(int16_t)lrintf(x * 32767.0f));
            }
        }
        ok = fwrite(buf, (size_t)bps, m, af.fp) == m;
    }
    if (!ok) {
        m2u_atomic_abort(&af);
        return m2u_fail("%s: write failed", path);
    }
    if (m2u_atomic_commit(&af)) return m2u_fail_prefix("%s", path);
    return 0;
}

int m2u_wav_read(const char *path, float **samples, size_t *n_frames, int *channels, int *rate, m2u_wav_format *fmt) {
    *samples = NULL;
    char *d = NULL;
    size_t len = 0;
    if (m2u_read_file(path, &d, &len)) return -1;
    const unsigned char *p = (const unsigned char *)d;
    int rc = -1, tag = 0, ch = 0, bits = 0;
    uint32_t sr = 0;
    if (len < 12 || memcmp(p, "RIFF", 4) || memcmp(p + 8, "WAVE", 4)) {
        m2u_fail("%s: not a RIFF/WAVE file", path);
        goto done;
    }
    for (size_t off = 12; off + 8 <= len;) {
        uint32_t cl = get_u32(p + off + 4);
        if (cl > len - off - 8) {
            m2u_fail("%s: chunk at byte %zu runs past the end of the file", path, off);
            goto done;
        }
        if (!memcmp(p + off, "fmt ", 4) && cl >= 16) {
            tag = get_u16(p + off + 8), ch = get_u16(p + off + 10), sr = get_u32(p + off + 12), bits = get_u16(p + off + 22);
        } else if (!memcmp(p + off, "data", 4)) {
            if (!((tag == 1 && bits == 16) || (tag == 3 && bits == 32)) || ch < 1) {
                m2u_fail("%s: format tag %d, %d bits, %d channels: only 16-bit PCM and 32-bit float are read", path, tag,
                         bits, ch);
                goto done;
            }
            size_t bps = (size_t)bits / 8, n = cl / bps, nf = n / (size_t)ch;
            float *s = malloc((nf ? nf * ch : 1) * sizeof(float));
            if (!s) {
                m2u_fail("out of memory");
                goto done;
            }
            for (size_t i = 0; i < nf * (size_t)ch; i++) {
                const unsigned char *q = p + off + 8 + i * bps;
                if (tag == 3) {
                    uint32_t u = get_u32(q);
                    memcpy(&s[i], &u, 4);
                } else {
                    s[i] = (float)(int16_t)get_u16(q) / 32767.0f;
                }
            }
            *samples = s, *n_frames = nf, *channels = ch, *rate = (int)sr;
            *fmt = tag == 3 ? M2U_WAV_FLOAT32 : M2U_WAV_PCM16;
            rc = 0;
            goto done;
        }
        off += 8 + cl + (cl & 1);
    }
    m2u_fail("%s: no data chunk", path);
done:
    free(d);
    return rc;
}
