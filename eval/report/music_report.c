#include "music_report.h"

#include "eval_report.h"
#include "fileio.h"
#include "key.h"
#include "m2u_error.h"
#include "strbuf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_imagebind_reason[] =
    "ImageBind rank (image/video -> music) is not computed by m2u: it needs the ~1.2 B-parameter ImageBind-huge model and M2UGen's rank code has a bug; run it as an external scorer and put its numbers beside these with m2u-eval compare (README, Evaluation protocol)";

/* ---- base64 ---------------------------------------------------------------------------------------- */

char *m2u_base64(const unsigned char *d, size_t n) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t L = 4 * ((n + 2) / 3);
    char *s = malloc(L + 1);
    if (!s) {
        m2u_fail("out of memory");
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        s[j++] = T[v >> 18 & 63], s[j++] = T[v >> 12 & 63];
        s[j++] = i + 1 < n ? T[v >> 6 & 63] : '=';
        s[j++] = i + 2 < n ? T[v & 63] : '=';
    }
    s[j] = 0;
    return s;
}

/* ---- PNG without zlib: stored deflate blocks ----------------------------------------------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n, uint32_t c) {
    static uint32_t tab[256];
    static int ready;
    if (!ready) { /* the table is the same for every caller: a race writes equal values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i;
            for (int k = 0; k < 8; k++) r = r & 1 ? 0xedb88320u ^ (r >> 1) : r >> 1;
            tab[i] = r;
        }
        ready = 1;
    }
    c ^= 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = tab[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* chunk = length, type, data, CRC(type + data) at *o */
static void put_chunk(unsigned char *buf, size_t *o, const char *type, const unsigned char *data, size_t n) {
    be32(buf + *o, (uint32_t)n);
    memcpy(buf + *o + 4, type, 4);
    if (n) memcpy(buf + *o + 8, data, n);
    be32(buf + *o + 8 + n, crc32_of(buf + *o + 4, n + 4, 0));
    *o += 12 + n;
}

/* RGB rows [h][w*3] -> PNG (filter type 0 per row) */
static int png_rgb(const unsigned char *rgb, int w, int h, unsigned char **png, size_t *len) {
    size_t raw_n = (size_t)h * (1 + 3 * (size_t)w);
    size_t nblk = raw_n / 65535 + 1;
    size_t z_n = 2 + raw_n + 5 * nblk + 4;
    size_t total = 8 + 25 + 12 + z_n + 12;
    unsigned char *raw = malloc(raw_n), *z = malloc(z_n), *out = malloc(total);
    if (!raw || !z || !out) {
        free(raw), free(z), free(out);
        return m2u_fail("out of memory");
    }
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (1 + 3 * (size_t)w)] = 0;
        memcpy(raw + (size_t)y * (1 + 3 * (size_t)w) + 1, rgb + (size_t)y * 3 * w, 3 * (size_t)w);
    }
    size_t zo = 0;
    z[zo++] = 0x78, z[zo++] = 0x01; /* deflate, 32 KiB window, no dictionary; 0x7801 % 31 == 0 */
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_n; i++) a = (a + raw[i]) % 65521u, b = (b + a) % 65521u;
    for (size_t off = 0, k = 0; k < nblk; k++) {
        size_t n = raw_n - off > 65535 ? 65535 : raw_n - off;
        z[zo++] = k + 1 == nblk ? 1 : 0; /* BFINAL, BTYPE 00 (stored) */
        z[zo++] = (unsigned char)n, z[zo++] = (unsigned char)(n >> 8);
        z[zo++] = (unsigned char)~n, z[zo++] = (unsigned char)(~n >> 8);
        memcpy(z + zo, raw + off, n);
        zo += n, off += n;
    }
    be32(z + zo, b << 16 | a);
    zo += 4;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)w), be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = ihdr[11] = ihdr[12] = 0; /* 8-bit RGB, deflate, filter 0, no interlace */
    size_t o = 0;
    memcpy(out, sig, 8), o = 8;
    put_chunk(out, &o, "IHDR", ihdr, 13);
    put_chunk(out, &o, "IDAT", z, zo);
    put_chunk(out, &o, "IEND", NULL, 0);
    free(raw), free(z);
    *png = out, *len = o;
    return 0;
}

/* dark purple -> red-orange -> yellow, t in [0, 1] */
static void ramp(double t, unsigned char *px) {
    static const double stops[5][3] = {{0, 0, 4}, {80, 18, 123}, {200, 55, 90}, {250, 140, 40}, {252, 253, 191}};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double x = t * 4;
    int i = (int)x;
    if (i > 3) i = 3;
    double f = x - i;
    for (int c = 0; c < 3; c++) px[c] = (unsigned char)lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]));
}

int m2u_spectrogram_png(const float *pcm, size_t n, int rate, int width, int height, unsigned char **png, size_t *len) {
    *png = NULL, *len = 0;
    if (!pcm || n == 0 || rate < 4000 || width < 1 || height < 2 || width > 4096 || height > 2048)
        return m2u_fail("spectrogram: bad arguments (%zu samples at %d Hz, %dx%d pixels)", n, rate, width, height);
    int nfft = rate < 32000 ? 1024 : 2048, nb = nfft / 2 + 1;
    m2u_stft *st = m2u_stft_new(nfft);
    double *mag = malloc((size_t)nb * sizeof *mag), *db = malloc((size_t)width * height * sizeof *db);
    unsigned char *rgb = malloc((size_t)width * height * 3);
    if (!st || !mag || !db || !rgb) {
        m2u_stft_free(st), free(mag), free(db), free(rgb);
        return st ? m2u_fail("out of memory") : -1;
    }
    double fmin = 40, fmax = rate / 2.0, top = -1e300;
    for (int x = 0; x < width; x++) {
        /* frame centres spread over the clip */
        long long c = width > 1 ? (long long)((double)x * (double)(n - 1) / (width - 1)) : (long long)n / 2;
        m2u_stft_frame(st, pcm, n, c - nfft / 2, mag);
        for (int y = 0; y < height; y++) {
            /* row y (0 = top) covers [f0, f1) on a log axis */
            double r0 = (double)(height - 1 - y) / height, r1 = (double)(height - y) / height;
            double f0 = fmin * pow(fmax / fmin, r0), f1 = fmin * pow(fmax / fmin, r1);
            int b0 = (int)floor(f0 * nfft / rate), b1 = (int)ceil(f1 * nfft / rate);
            if (b0 >= nb) b0 = nb - 1;
            if (b1 <= b0) b1 = b0 + 1;
            if (b1 > nb) b1 = nb;
            double m = 0;
            for (int k = b0; k < b1; k++)
                if (mag[k] > m) m = mag[k];
            double v = 20 * log10(m + 1e-12);
            db[(size_t)y * width + x] = v;
            if (v > top) top = v;
        }
    }
    for (size_t i = 0; i < (size_t)width * height; i++) ramp((db[i] - (top - 80)) / 80, rgb + 3 * i);
    int rc = png_rgb(rgb, width, height, png, len);
    m2u_stft_free(st), free(mag), free(db), free(rgb);
    return rc;
}

/* ---- JSON ----------------------------------------------------------------------------------------- */

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *classes_json(const int *cls) {
    cJSON *o = cJSON_CreateObject();
    for (int a = 0; a < M2U_GA_COUNT; a++) {
        const char *w = m2u_gen_attr_class_name((m2u_gen_attr)a, cls[a]);
        cJSON_AddItemToObject(o, m2u_gen_attr_name((m2u_gen_attr)a), w ? cJSON_CreateString(w) : cJSON_CreateNull());
    }
    return o;
}

static cJSON *values_json(const m2u_gen_values *v) {
    cJSON *o = cJSON_CreateObject();
    const char *names[] = {"tempo_bpm", "tempo_confidence", "key", "mode", "key_confidence", "loudness_lufs",
                           "valence", "arousal", "centroid_hz", "percussiveness"};
    double vals[] = {v->tempo_bpm, v->tempo_confidence, v->key, v->mode, v->key_confidence, v->loudness_lufs,
                     v->valence, v->arousal, v->centroid_hz, v->percussiveness};
    for (int i = 0; i < 10; i++) cJSON_AddItemToObject(o, names[i], num_or_null(vals[i]));
    return o;
}

static cJSON *agreement_json(const m2u_music_agreement *ag) {
    cJSON *o = cJSON_CreateObject();
    for (int a = 0; a < M2U_GA_COUNT; a++) {
        int k = m2u_gen_attr_n_classes((m2u_gen_attr)a);
        cJSON *x = cJSON_CreateObject(), *cls = cJSON_CreateArray(), *cm = cJSON_CreateArray();
        cJSON_AddNumberToObject(x, "n_asked", (double)ag->n_asked[a]);
        cJSON_AddNumberToObject(x, "n_correct", (double)ag->n_correct[a]);
        cJSON_AddItemToObject(x, "rate", num_or_null(m2u_music_agreement_rate(ag, (m2u_gen_attr)a)));
        for (int c = 0; c < k; c++) cJSON_AddItemToArray(cls, cJSON_CreateString(m2u_gen_attr_class_name((m2u_gen_attr)a, c)));
        cJSON_AddItemToArray(cls, cJSON_CreateString("not measured"));
        for (int r = 0; r < k; r++) {
            cJSON *row = cJSON_CreateArray();
            for (int c = 0; c <= k; c++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ag->confusion[a][(size_t)r * (k + 1) + c]));
            cJSON_AddItemToArray(cm, row);
        }
        cJSON_AddItemToObject(x, "classes", cls);
        cJSON_AddItemToObject(x, "confusion", cm);
        cJSON_AddItemToObject(o, m2u_gen_attr_name((m2u_gen_attr)a), x);
    }
    return o;
}

cJSON *m2u_music_eval_json(const m2u_music_eval *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", e->data ? e->data : "");
    cJSON_AddStringToObject(o, "split", e->split ? e->split : "");
    cJSON_AddStringToObject(o, "kinds", e->kinds ? e->kinds : "");
    cJSON_AddStringToObject(o, "generated_dir", e->gen_dir ? e->gen_dir : "");
    cJSON_AddNumberToObject(o, "audio_rate", e->rate);
    cJSON_AddNumberToObject(o, "n_items", e->n_items);
    cJSON_AddNumberToObject(o, "n_generated", e->n_generated);
    cJSON *fad = cJSON_CreateObject();
    cJSON_AddBoolToObject(fad, "measured", e->fad_measured);
    cJSON_AddItemToObject(fad, "value", e->fad_measured ? cJSON_CreateNumber(e->fad) : cJSON_CreateNull());
    cJSON_AddStringToObject(fad, "embedding", e->fad_embedding);
    cJSON_AddNumberToObject(fad, "dim", (double)e->fad_dim);
    cJSON_AddNumberToObject(fad, "reference_clips", (double)e->fad_ref_clips);
    cJSON_AddNumberToObject(fad, "generated_clips", (double)e->fad_gen_clips);
    if (e->fad_sha256[0]) cJSON_AddStringToObject(fad, "checkpoint_sha256", e->fad_sha256);
    if (!e->fad_measured) cJSON_AddStringToObject(fad, "reason", e->fad_reason);
    cJSON_AddItemToObject(o, "fad", fad);
    cJSON *kl = cJSON_CreateObject(), *clap = cJSON_CreateObject();
    cJSON_AddBoolToObject(kl, "measured", e->kl_measured);
    cJSON_AddItemToObject(kl, "value", e->kl_measured ? cJSON_CreateNumber(e->kl) : cJSON_CreateNull());
    if (e->kl_measured) {
        cJSON_AddStringToObject(kl, "embedder", "PaSST (hear21passt 0.0.26 logits), M2UGen's KL (m2u-eval kl --passt)");
        cJSON_AddStringToObject(kl, "checkpoint_sha256", e->kl_sha256);
        cJSON_AddNumberToObject(kl, "pairs", (double)e->kl_pairs);
    } else {
        cJSON_AddStringToObject(kl, "reason", e->kl_reason ? e->kl_reason : "");
    }
    cJSON_AddBoolToObject(clap, "measured", e->clap_measured);
    cJSON_AddItemToObject(clap, "value", e->clap_measured ? cJSON_CreateNumber(e->clap) : cJSON_CreateNull());
    if (e->clap_measured) {
        cJSON_AddStringToObject(clap, "model", "transformers ClapModel (m2u-eval clap)");
        cJSON_AddStringToObject(clap, "weights_sha256", e->clap_sha256);
        cJSON_AddNumberToObject(clap, "clips", (double)e->clap_n);
    } else {
        cJSON_AddStringToObject(clap, "reason", e->clap_reason ? e->clap_reason : "");
    }
    cJSON_AddItemToObject(o, "kl", kl);
    cJSON_AddItemToObject(o, "clap_score", clap);
    cJSON *ib = cJSON_CreateObject();
    cJSON_AddBoolToObject(ib, "measured", 0);
    cJSON_AddItemToObject(ib, "value", cJSON_CreateNull());
    cJSON_AddStringToObject(ib, "reason", k_imagebind_reason);
    cJSON_AddItemToObject(o, "imagebind_rank", ib);
    cJSON *ag = cJSON_CreateObject();
    for (int g = 0; g < e->n_groups; g++) cJSON_AddItemToObject(ag, e->group[g], agreement_json(&e->ag[g]));
    cJSON_AddItemToObject(o, "agreement", ag);
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < e->n_items; i++) {
        const m2u_music_item *it = &e->items[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", it->id);
        cJSON_AddStringToObject(x, "kind", it->kind);
        cJSON_AddStringToObject(x, "prompt", it->prompt);
        cJSON_AddStringToObject(x, "reference_text", it->reference_text);
        cJSON_AddItemToObject(x, "answer_text", it->answer_text ? cJSON_CreateString(it->answer_text) : cJSON_CreateNull());
        cJSON_AddStringToObject(x, "audio", it->gen_path);
        cJSON_AddBoolToObject(x, "generated", it->generated);
        if (!it->generated) cJSON_AddStringToObject(x, "why", it->why);
        cJSON_AddItemToObject(x, "edit_attribute",
                              it->edit_attr >= 0 ? cJSON_CreateString(m2u_gen_attr_name((m2u_gen_attr)it->edit_attr))
                                                 : cJSON_CreateNull());
        cJSON_AddItemToObject(x, "duration_s", it->generated ? cJSON_CreateNumber(it->duration_s) : cJSON_CreateNull());
        if (!isnan(it->clap)) cJSON_AddNumberToObject(x, "clap", it->clap);
        cJSON_AddItemToObject(x, "asked", classes_json(it->asked));
        int got[M2U_GA_COUNT];
        for (int a = 0; a < M2U_GA_COUNT; a++) got[a] = it->generated ? it->got[a] : -1;
        cJSON_AddItemToObject(x, "measured", classes_json(got));
        cJSON_AddItemToObject(x, "asked_values", values_json(&it->asked_v));
        cJSON_AddItemToObject(x, "measured_values", values_json(&it->got_v));
        cJSON_AddItemToArray(items, x);
    }
    cJSON_AddItemToObject(o, "items", items);
    return o;
}

/* ---- text helpers --------------------------------------------------------------------------------- */


static const char *cls_name(int a, int c) {
    const char *w = m2u_gen_attr_class_name((m2u_gen_attr)a, c);
    return w ? w : "-";
}

static void pct(m2u_strbuf *b, double r) {
    if (isfinite(r)) m2u_sb_printf(b, "%.1f %%", 100 * r);
    else m2u_sb_puts(b, "n/a");
}

/* ---- Markdown ------------------------------------------------------------------------------------- */

void m2u_music_md_section(m2u_strbuf *b, const m2u_music_eval *e) {
    m2u_sb_printf(b, "Data `%s`, split %s, kinds %s, generated clips in `%s`: %d of %d samples have a clip.\n\n",
                  e->data, e->split, e->kinds, e->gen_dir, e->n_generated, e->n_items);
    m2u_sb_puts(b, "| metric | value | note |\n|---|---|---|\n");
    if (e->fad_measured)
        m2u_sb_printf(b, "| FAD | %.6g | %s, %zu reference / %zu generated clips |\n", e->fad, e->fad_embedding,
                      e->fad_ref_clips, e->fad_gen_clips);
    else {
        m2u_sb_puts(b, "| FAD | not measured | ");
        m2u_sb_md_cell(b, e->fad_reason);
        m2u_sb_puts(b, " |\n");
    }
    if (e->kl_measured)
        m2u_sb_printf(b, "| KL (PaSST) | %.6g | M2UGen's KL over %ld reference / generated pairs |\n", e->kl,
                      e->kl_pairs);
    else
        m2u_sb_printf(b, "| KL (PaSST) | not measured | %s |\n", e->kl_reason ? e->kl_reason : "");
    if (e->clap_measured)
        m2u_sb_printf(b, "| CLAP score | %.6f | mean cosine over %ld generated mucaps clips and their captions |\n",
                      e->clap, e->clap_n);
    else
        m2u_sb_printf(b, "| CLAP score | not measured | %s |\n", e->clap_reason ? e->clap_reason : "");
    m2u_sb_printf(b, "| ImageBind rank | not measured | %s |\n\n", k_imagebind_reason);
    m2u_sb_puts(b, "### Analysis agreement (generated clip vs what was asked)\n\n| group |");
    for (int a = 0; a < M2U_GA_COUNT; a++) m2u_sb_printf(b, " %s |", m2u_gen_attr_name((m2u_gen_attr)a));
    m2u_sb_puts(b, "\n|---|");
    for (int a = 0; a < M2U_GA_COUNT; a++) m2u_sb_puts(b, "---|");
    m2u_sb_puts(b, "\n");
    for (int g = 0; g < e->n_groups; g++) {
        m2u_sb_printf(b, "| %s |", e->group[g]);
        for (int a = 0; a < M2U_GA_COUNT; a++) {
            m2u_sb_puts(b, " ");
            pct(b, m2u_music_agreement_rate(&e->ag[g], (m2u_gen_attr)a));
            m2u_sb_printf(b, " (%ld/%ld) |", e->ag[g].n_correct[a], e->ag[g].n_asked[a]);
        }
        m2u_sb_puts(b, "\n");
    }
    m2u_sb_puts(b, "\n### Clips\n\n| id | kind | prompt | clip | asked -> measured |\n|---|---|---|---|---|\n");
    for (int i = 0; i < e->n_items; i++) {
        const m2u_music_item *it = &e->items[i];
        m2u_sb_puts(b, "| ");
        m2u_sb_md_cell(b, it->id);
        m2u_sb_printf(b, " | %s | ", it->kind);
        m2u_sb_md_cell(b, it->prompt);
        m2u_sb_puts(b, " | ");
        m2u_sb_md_cell(b, it->generated ? it->gen_path : it->why);
        m2u_sb_puts(b, " | ");
        for (int a = 0; a < M2U_GA_COUNT; a++)
            m2u_sb_printf(b, "%s%s: %s -> %s", a ? "; " : "", m2u_gen_attr_name((m2u_gen_attr)a), cls_name(a, it->asked[a]),
                          cls_name(a, it->generated ? it->got[a] : -1));
        m2u_sb_puts(b, " |\n");
    }
}

/* ---- HTML ----------------------------------------------------------------------------------------- */

static int html_clip(m2u_strbuf *b, const m2u_music_item *it, int rate, const m2u_music_report_opts *o, size_t *embedded) {
    m2u_sb_puts(b, "<section class=\"clip\" data-id=\"");
    m2u_sb_html(b, it->id);
    m2u_sb_printf(b, "\" data-kind=\"%s\" data-generated=\"%d\">\n<h3>", it->kind, it->generated);
    m2u_sb_html(b, it->id);
    m2u_sb_printf(b, " <span class=\"small\">%s</span></h3>\n", it->kind);
    if (it->generated) {
        unsigned char *wav = NULL;
        size_t wl = 0;
        if (*embedded + it->n_pcm * 2 + 44 <= o->embed_max_bytes) {
            if (m2u_wav_encode_pcm16(it->pcm, it->n_pcm, rate, &wav, &wl)) return -1;
            char *b64 = m2u_base64(wav, wl);
            free(wav);
            if (!b64) return -1;
            m2u_sb_puts(b, "<audio controls preload=\"none\" src=\"data:audio/wav;base64,");
            m2u_sb_puts(b, b64);
            m2u_sb_puts(b, "\"></audio>\n");
            free(b64);
            *embedded += wl;
        } else {
            m2u_sb_puts(b, "<p><a class=\"clip-link\" href=\"file://");
            m2u_sb_html(b, it->gen_path);
            m2u_sb_puts(b, "\">");
            m2u_sb_html(b, it->gen_path);
            m2u_sb_puts(b, "</a> <span class=\"small\">(not embedded: the page's audio budget is spent)</span></p>\n");
        }
        unsigned char *png = NULL;
        size_t pl = 0;
        if (m2u_spectrogram_png(it->pcm, it->n_pcm, rate, o->spec_width, o->spec_height, &png, &pl)) return -1;
        char *b64 = m2u_base64(png, pl);
        free(png);
        if (!b64) return -1;
        m2u_sb_printf(b, "<svg class=\"spectrogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\"><image x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
                      "preserveAspectRatio=\"none\" href=\"data:image/png;base64,",
                      o->spec_width, o->spec_height, o->spec_width, o->spec_height, o->spec_width, o->spec_height);
        m2u_sb_puts(b, b64);
        m2u_sb_printf(b, "\"/></svg>\n<p class=\"small\">%.2f s; log-magnitude spectrogram, 40 Hz - %d Hz (log axis), "
                      "top 80 dB</p>\n",
                      it->duration_s, rate / 2);
        free(b64);
    } else {
        m2u_sb_puts(b, "<p class=\"missing\">No clip: ");
        m2u_sb_html(b, it->why);
        m2u_sb_puts(b, "</p>\n");
    }
    m2u_sb_puts(b, "<p><b>Prompt:</b> ");
    m2u_sb_html(b, it->prompt);
    m2u_sb_puts(b, "</p>\n<p><b>Reference:</b> ");
    m2u_sb_html(b, it->reference_text);
    m2u_sb_puts(b, "</p>\n");
    if (it->answer_text) {
        m2u_sb_puts(b, "<p><b>Answer:</b> ");
        m2u_sb_html(b, it->answer_text);
        m2u_sb_puts(b, "</p>\n");
    }
    m2u_sb_puts(b, "<table class=\"attrs\"><tr><th>attribute</th><th>asked</th><th>measured</th></tr>\n");
    for (int a = 0; a < M2U_GA_COUNT; a++) {
        if (it->asked[a] < 0) continue;
        int got = it->generated ? it->got[a] : -1;
        m2u_sb_printf(b, "<tr class=\"%s\" data-attr=\"%s\"><td>%s%s</td><td>%s</td><td>%s</td></tr>\n",
                      got == it->asked[a] ? "agree" : "disagree", m2u_gen_attr_name((m2u_gen_attr)a),
                      m2u_gen_attr_name((m2u_gen_attr)a), a == it->edit_attr ? " (edited)" : "", cls_name(a, it->asked[a]),
                      got >= 0 ? cls_name(a, got) : "not measured");
    }
    m2u_sb_puts(b, "</table>\n</section>\n");
    return 0;
}

static const char k_css[] =
    "table{border-collapse:collapse;margin:8px 0 16px}\n"
    "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}\nth{background:#f2f2f2}\n"
    "figure{display:inline-block;margin:6px;vertical-align:top}\n.small{color:#666;font-size:12px}\n";

const char *m2u_music_html_css(void) {
    return "tr.agree td{background:#e6f4e6}\ntr.disagree td{background:#fbe9e7}\n"
           "section.clip{border:1px solid #ddd;padding:8px 12px;margin:12px 0;max-width:760px}\n"
           "svg.spectrogram{display:block;border:1px solid #999}\naudio{display:block;margin:6px 0}\n";
}

static m2u_music_report_opts resolve(const m2u_music_report_opts *opts) {
    m2u_music_report_opts o = opts ? *opts : (m2u_music_report_opts){0};
    if (!o.embed_max_bytes) o.embed_max_bytes = (size_t)16 << 20;
    if (o.spec_width <= 0) o.spec_width = 480;
    if (o.spec_height <= 0) o.spec_height = 128;
    return o;
}

int m2u_music_html_section(m2u_strbuf *b, const m2u_music_eval *e, const m2u_music_report_opts *opts) {
    m2u_music_report_opts ro = resolve(opts);
    const m2u_music_report_opts *o = &ro;
    m2u_sb_puts(b, "<div id=\"music\">\n<p>Data <code>");
    m2u_sb_html(b, e->data);
    m2u_sb_printf(b, "</code>, split %s, kinds %s; generated clips in <code>", e->split, e->kinds);
    m2u_sb_html(b, e->gen_dir);
    m2u_sb_printf(b, "</code>: %d of %d samples have a clip.</p>\n<h3>Distribution metrics</h3>\n"
                     "<table id=\"music-metrics\"><tr><th>metric</th><th>value</th><th>note</th></tr>\n",
                  e->n_generated, e->n_items);
    if (e->fad_measured)
        m2u_sb_printf(b, "<tr><td>FAD</td><td>%.6g</td><td>%s; %zu reference / %zu generated clips</td></tr>\n", e->fad,
                      e->fad_embedding, e->fad_ref_clips, e->fad_gen_clips);
    else {
        m2u_sb_puts(b, "<tr><td>FAD</td><td>not measured</td><td>");
        m2u_sb_html(b, e->fad_reason);
        m2u_sb_puts(b, "</td></tr>\n");
    }
    if (e->kl_measured) {
        m2u_sb_printf(b, "<tr><td>KL (PaSST)</td><td>%.6g</td><td>M2UGen's KL over %ld reference / generated pairs",
                      e->kl, e->kl_pairs);
    } else {
        m2u_sb_puts(b, "<tr><td>KL (PaSST)</td><td>not measured</td><td>");
        m2u_sb_html(b, e->kl_reason ? e->kl_reason : "");
    }
    if (e->clap_measured) {
        m2u_sb_printf(b, "</td></tr>\n<tr><td>CLAP score</td><td>%.6f</td><td>mean cosine over %ld generated mucaps "
                         "clips and their captions",
                      e->clap, e->clap_n);
    } else {
        m2u_sb_puts(b, "</td></tr>\n<tr><td>CLAP score</td><td>not measured</td><td>");
        m2u_sb_html(b, e->clap_reason);
    }
    m2u_sb_puts(b, "</td></tr>\n<tr><td>ImageBind rank</td><td>not measured</td><td>");
    m2u_sb_html(b, k_imagebind_reason);
    m2u_sb_puts(b, "</td></tr>\n</table>\n<h3>Analysis agreement</h3>\n<p class=\"small\">m2u's music analysis of each "
                   "generated clip against what the prompt or the edit asked for (rate = agreeing / asked; a missing "
                   "clip counts as wrong).</p>\n<table id=\"music-agreement\"><tr><th>group</th>");
    for (int a = 0; a < M2U_GA_COUNT; a++) m2u_sb_printf(b, "<th>%s</th>", m2u_gen_attr_name((m2u_gen_attr)a));
    m2u_sb_puts(b, "</tr>\n");
    for (int g = 0; g < e->n_groups; g++) {
        m2u_sb_printf(b, "<tr><td>%s</td>", e->group[g]);
        for (int a = 0; a < M2U_GA_COUNT; a++) {
            m2u_sb_puts(b, "<td>");
            pct(b, m2u_music_agreement_rate(&e->ag[g], (m2u_gen_attr)a));
            m2u_sb_printf(b, " <span class=\"small\">%ld/%ld</span></td>", e->ag[g].n_correct[a], e->ag[g].n_asked[a]);
        }
        m2u_sb_puts(b, "</tr>\n");
    }
    m2u_sb_puts(b, "</table>\n<div id=\"music-confusion\">\n");
    for (int a = 0; a < M2U_GA_COUNT && e->n_groups > 0; a++) {
        int k = m2u_gen_attr_n_classes((m2u_gen_attr)a);
        const char *rl[32], *cl[33];
        for (int c = 0; c < k; c++) rl[c] = cl[c] = m2u_gen_attr_class_name((m2u_gen_attr)a, c);
        cl[k] = "not measured";
        char id[64], title[96];
        snprintf(id, sizeof id, "music-confusion-%s", m2u_gen_attr_name((m2u_gen_attr)a));
        snprintf(title, sizeof title, "%s: asked vs generated", m2u_gen_attr_name((m2u_gen_attr)a));
        char *svg = NULL;
        if (m2u_svg_heatmap_axes(&svg, id, title, "asked", "measured on the generated clip", rl, k, cl, k + 1,
                                 e->ag[0].confusion[a]))
            return -1;
        m2u_sb_puts(b, "<figure>");
        m2u_sb_puts(b, svg);
        m2u_sb_puts(b, "</figure>\n");
        free(svg);
    }
    m2u_sb_puts(b, "</div>\n<h3>Generated clips</h3>\n");
    size_t embedded = 0;
    for (int i = 0; i < e->n_items; i++)
        if (html_clip(b, &e->items[i], e->rate, o, &embedded)) return -1;
    m2u_sb_puts(b, "</div>\n");
    return 0;
}

static int write_text(const char *dir, const char *leaf, char *text) {
    if (!text) return m2u_fail("out of memory");
    size_t n = strlen(dir) + strlen(leaf) + 2;
    char *p = malloc(n);
    int rc = p ? 0 : m2u_fail("out of memory");
    if (p) snprintf(p, n, "%s/%s", dir, leaf);
    if (!rc) rc = m2u_write_file_atomic(p, text, strlen(text));
    free(p), free(text);
    return rc;
}

int m2u_music_report_write(const char *out_dir, const m2u_music_eval *e, const m2u_music_report_opts *opts) {
    m2u_music_report_opts o = resolve(opts);
    if (m2u_mkdir_p(out_dir)) return -1;
    cJSON *j = m2u_music_eval_json(e);
    if (!j) return m2u_fail("out of memory");
    cJSON *top = cJSON_CreateObject();
    cJSON_AddStringToObject(top, "command", "music");
    cJSON_AddItemToObject(top, "music", j);
    char *txt = cJSON_Print(top);
    cJSON_Delete(top);
    if (write_text(out_dir, "music.json", txt)) return -1;
    m2u_strbuf b = {0};
    m2u_sb_puts(&b, "# m2u-eval music\n\n");
    m2u_music_md_section(&b, e);
    if (write_text(out_dir, "music.md", m2u_sb_take(&b))) return -1;
    m2u_strbuf h = {0};
    m2u_sb_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>m2u-eval music</title>\n"
                      "<style>\nbody{font-family:sans-serif;margin:24px;color:#222;background:#fff}\n%s%s</style>\n</head>\n"
                      "<body>\n<h1>m2u-eval music</h1>\n",
                  k_css, m2u_music_html_css());
    int hrc = m2u_music_html_section(&h, e, &o);
    m2u_sb_puts(&h, "</body>\n</html>\n");
    if (hrc) {
        m2u_sb_free(&h);
        return -1;
    }
    return write_text(out_dir, "music.html", m2u_sb_take(&h));
}
