/* A minimal PNG reader for the tests: 8-bit RGB / RGBA / grey, non-interlaced
 * (what headless Chromium writes for --screenshot), with its own inflate
 * (RFC 1951: stored, fixed and dynamic Huffman blocks), so the test needs no
 * image library.  png_read() returns 0 and a malloc'ed RGB buffer [h][w][3],
 * or -1 with a reason in png_err. */
#ifndef M2U_TEST_PNG_MIN_H
#define M2U_TEST_PNG_MIN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char png_err[128];

typedef struct {
    const uint8_t *src;
    size_t n, pos; /* bytes */
    uint32_t bitbuf;
    int bitcnt;
    uint8_t *out;
    size_t on, ocap;
} inf_state;

static int inf_bits(inf_state *s, int need, uint32_t *v) {
    while (s->bitcnt < need) {
        if (s->pos >= s->n) return -1;
        s->bitbuf |= (uint32_t)s->src[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    *v = s->bitbuf & ((need == 32) ? 0xffffffffu : ((1u << need) - 1));
    s->bitbuf >>= need;
    s->bitcnt -= need;
    return 0;
}

static int inf_put(inf_state *s, uint8_t c) {
    if (s->on == s->ocap) {
        size_t cap = s->ocap ? s->ocap * 2 : 1 << 16;
        uint8_t *o = realloc(s->out, cap);
        if (!o) return -1;
        s->out = o;
        s->ocap = cap;
    }
    s->out[s->on++] = c;
    return 0;
}

typedef struct {
    short count[16], symbol[320];
} huff;

static int huff_build(huff *h, const uint8_t *len, int n) {
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++) h->count[len[i]]++;
    h->count[0] = 0;
    short offs[16];
    offs[1] = 0;
    for (int i = 1; i < 15; i++) offs[i + 1] = (short)(offs[i] + h->count[i]);
    for (int i = 0; i < n; i++)
        if (len[i]) h->symbol[offs[len[i]]++] = (short)i;
    return 0;
}

static int huff_decode(inf_state *s, const huff *h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; len++) {
        uint32_t b;
        if (inf_bits(s, 1, &b)) return -1;
        code |= (int)b;
        int count = h->count[len];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static const short k_lbase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short k_lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const short k_dbase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const short k_dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int inf_codes(inf_state *s, const huff *lh, const huff *dh) {
    for (;;) {
        int sym = huff_decode(s, lh);
        if (sym < 0) return -1;
        if (sym < 256) {
            if (inf_put(s, (uint8_t)sym)) return -1;
        } else if (sym == 256) {
            return 0;
        } else {
            sym -= 257;
            if (sym >= 29) return -1;
            uint32_t e;
            if (inf_bits(s, k_lext[sym], &e)) return -1;
            int len = k_lbase[sym] + (int)e;
            int ds = huff_decode(s, dh);
            if (ds < 0 || ds >= 30) return -1;
            if (inf_bits(s, k_dext[ds], &e)) return -1;
            size_t dist = (size_t)k_dbase[ds] + e;
            if (dist > s->on) return -1;
            for (int i = 0; i < len; i++)
                if (inf_put(s, s->out[s->on - dist])) return -1;
        }
    }
}

static int inf_block_dynamic(inf_state *s) {
    uint32_t hlit, hdist, hclen;
    if (inf_bits(s, 5, &hlit) || inf_bits(s, 5, &hdist) || inf_bits(s, 4, &hclen)) return -1;
    hlit += 257, hdist += 1, hclen += 4;
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t lens[320] = {0};
    for (uint32_t i = 0; i < hclen; i++) {
        uint32_t v;
        if (inf_bits(s, 3, &v)) return -1;
        lens[order[i]] = (uint8_t)v;
    }
    huff ch, lh, dh;
    huff_build(&ch, lens, 19);
    memset(lens, 0, sizeof lens);
    uint32_t idx = 0;
    while (idx < hlit + hdist) {
        int sym = huff_decode(s, &ch);
        if (sym < 0) return -1;
        uint32_t rep, v;
        uint8_t val = 0;
        if (sym < 16) {
            lens[idx++] = (uint8_t)sym;
            continue;
        }
        if (sym == 16) {
            if (!idx || inf_bits(s, 2, &v)) return -1;
            val = lens[idx - 1], rep = 3 + v;
        } else if (sym == 17) {
            if (inf_bits(s, 3, &v)) return -1;
            rep = 3 + v;
        } else {
            if (inf_bits(s, 7, &v)) return -1;
            rep = 11 + v;
        }
        if (idx + rep > hlit + hdist) return -1;
        while (rep--) lens[idx++] = val;
    }
    huff_build(&lh, lens, (int)hlit);
    huff_build(&dh, lens + hlit, (int)hdist);
    return inf_codes(s, &lh, &dh);
}

static int inflate_zlib(const uint8_t *src, size_t n, uint8_t **out, size_t *on) {
    if (n < 2 || (src[0] & 0x0f) != 8) return -1;
    inf_state s = {.src = src, .n = n, .pos = 2};
    uint32_t last = 0, type;
    while (!last) {
        if (inf_bits(&s, 1, &last) || inf_bits(&s, 2, &type)) goto fail;
        if (type == 0) {
            s.bitbuf = 0, s.bitcnt = 0;
            if (s.pos + 4 > s.n) goto fail;
            size_t len = (size_t)s.src[s.pos] | (size_t)s.src[s.pos + 1] << 8;
            s.pos += 4;
            if (s.pos + len > s.n) goto fail;
            for (size_t i = 0; i < len; i++)
                if (inf_put(&s, s.src[s.pos + i])) goto fail;
            s.pos += len;
        } else if (type == 1) {
            static huff lh, dh;
            uint8_t l[288];
            for (int i = 0; i < 288; i++) l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
            huff_build(&lh, l, 288);
            for (int i = 0; i < 30; i++) l[i] = 5;
            huff_build(&dh, l, 30);
            if (inf_codes(&s, &lh, &dh)) goto fail;
        } else if (type == 2) {
            if (inf_block_dynamic(&s)) goto fail;
        } else {
            goto fail;
        }
    }
    *out = s.out;
    *on = s.on;
    return 0;
fail:
    free(s.out);
    return -1;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

static int png_read(const char *path, uint8_t **rgb, int *w_out, int *h_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(png_err, sizeof png_err, "cannot open %s", path), -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)(n > 0 ? n : 1));
    size_t got = d ? fread(d, 1, (size_t)n, f) : 0;
    fclose(f);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (!d || got != (size_t)n || n < 33 || memcmp(d, sig, 8)) {
        free(d);
        return snprintf(png_err, sizeof png_err, "%s: not a PNG", path), -1;
    }
    uint32_t w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    uint8_t *idat = NULL;
    size_t ni = 0;
    for (size_t p = 8; p + 12 <= (size_t)n;) {
        uint32_t len = be32(d + p);
        const uint8_t *type = d + p + 4, *body = d + p + 8;
        if (p + 12 + len > (size_t)n) break;
        if (!memcmp(type, "IHDR", 4)) {
            w = be32(body), h = be32(body + 4), depth = body[8], ctype = body[9], interlace = body[12];
        } else if (!memcmp(type, "IDAT", 4)) {
            uint8_t *ni2 = realloc(idat, ni + len + 1);
            if (!ni2) break;
            idat = ni2;
            memcpy(idat + ni, body, len);
            ni += len;
        } else if (!memcmp(type, "IEND", 4)) {
            break;
        }
        p += 12 + len;
    }
    free(d);
    int ch = ctype == 2 ? 3 : ctype == 6 ? 4 : ctype == 0 ? 1 : 0;
    if (!w || !h || depth != 8 || !ch || interlace) {
        free(idat);
        return snprintf(png_err, sizeof png_err, "unsupported PNG (depth %d, colour type %d, interlace %d)", depth,
                        ctype, interlace),
               -1;
    }
    uint8_t *raw;
    size_t nr;
    int irc = inflate_zlib(idat, ni, &raw, &nr);
    free(idat);
    size_t stride = (size_t)w * ch;
    if (irc || nr < (stride + 1) * h) {
        if (!irc) free(raw);
        return snprintf(png_err, sizeof png_err, "bad zlib stream"), -1;
    }
    uint8_t *img = malloc(stride * h), *out = malloc((size_t)w * h * 3);
    if (!img || !out) {
        free(raw), free(img), free(out);
        return snprintf(png_err, sizeof png_err, "out of memory"), -1;
    }
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *src = raw + y * (stride + 1) + 1;
        int ft = raw[y * (stride + 1)];
        uint8_t *cur = img + y * stride, *prev = y ? img + (y - 1) * stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)ch ? cur[x - ch] : 0, b = prev ? prev[x] : 0,
                c = prev && x >= (size_t)ch ? prev[x - ch] : 0, v = src[x];
            switch (ft) {
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) / 2; break;
            case 4: v += paeth(a, b, c); break;
            default: break;
            }
            cur[x] = (uint8_t)v;
        }
    }
    free(raw);
    for (size_t i = 0; i < (size_t)w * h; i++)
        for (int k = 0; k < 3; k++) out[i * 3 + k] = img[i * ch + (ch == 1 ? 0 : k)];
    free(img);
    *rgb = out;
    *w_out = (int)w;
    *h_out = (int)h;
    return 0;
}

#endif
