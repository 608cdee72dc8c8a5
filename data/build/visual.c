/* Image and video descriptors and their mood (see visual.h). */
#include "visual.h"

#include "m2u_error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEG_PER_RAD 57.29577951308232087680
#define HUE_MIN_SAT 0.2

/* Sums over one frame's pixels. */
typedef struct {
    double y, y2, s, warm, rg, rg2, yb, yb2;
    double hue_sin, hue_cos, hue_n;
} frame_sums;

static double luma(const uint8_t *p) { return (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0; }

static void frame_accumulate(const uint8_t *rgb, size_t npix, frame_sums *fs) {
    memset(fs, 0, sizeof *fs);
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgb + 3 * i;
        const double r = p[0], g = p[1], b = p[2];
        const double y = luma(p);
        fs->y += y;
        fs->y2 += y * y;
        const double mx = fmax(r, fmax(g, b)), c = mx - fmin(r, fmin(g, b));
        const double s = mx > 0 ? c / mx : 0.0;
        fs->s += s;
        fs->warm += (r - b) / 255.0;
        const double rg = r - g, yb = 0.5 * (r + g) - b;
        fs->rg += rg;
        fs->rg2 += rg * rg;
        fs->yb += yb;
        fs->yb2 += yb * yb;
        if (c > 0 && s > HUE_MIN_SAT) {
            double h;
            if (mx == r) {
                h = 60.0 * ((g - b) / c);
                if (h < 0) h += 360.0;
            } else if (mx == g) {
                h = 60.0 * ((b - r) / c + 2.0);
            } else {
                h = 60.0 * ((r - g) / c + 4.0);
            }
            fs->hue_sin += sin(h / DEG_PER_RAD);
            fs->hue_cos += cos(h / DEG_PER_RAD);
            fs->hue_n += 1;
        }
    }
}

/* Per-frame descriptors (motion and hue left to the caller). */
static void frame_desc(const frame_sums *fs, size_t npix, m2u_visual_desc *d) {
    const double n = (double)npix;
    const double my = fs->y / n;
    d->brightness = my;
    d->saturation = fs->s / n;
    d->warmth = fs->warm / n;
    d->contrast = sqrt(fmax(0.0, fs->y2 / n - my * my)) / 0.5;
    const double mrg = fs->rg / n, myb = fs->yb / n;
    const double vrg = fmax(0.0, fs->rg2 / n - mrg * mrg), vyb = fmax(0.0, fs->yb2 / n - myb * myb);
    d->colorfulness = (sqrt(vrg + vyb) + 0.3 * sqrt(mrg * mrg + myb * myb)) / 100.0;
    d->motion = 0;
}

static double circular_mean_deg(double s, double c, double n) {
    if (n <= 0 || sqrt(s * s + c * c) < 1e-6 * n) return -1.0;
    double h = atan2(s, c) * DEG_PER_RAD;
    if (h < 0) h += 360.0;
    if (h >= 360.0) h -= 360.0;
    return h;
}

int m2u_video_descriptors(const uint8_t *rgb, int frames, int h, int w, m2u_visual_desc *d) {
    if (!rgb || !d) return m2u_fail("visual descriptors: NULL argument");
    if (frames < 1 || h < 1 || w < 1)
        return m2u_fail("visual descriptors: bad size %d frames of %d x %d", frames, w, h);
    const size_t npix = (size_t)h * (size_t)w;
    m2u_visual_desc acc = {0}, fd;
    double hs = 0, hc = 0, hn = 0, motion = 0;
    for (int f = 0; f < frames; f++) {
        const uint8_t *fr = rgb + (size_t)f * npix * 3;
        frame_sums fs;
        frame_accumulate(fr, npix, &fs);
        frame_desc(&fs, npix, &fd);
        acc.brightness += fd.brightness;
        acc.saturation += fd.saturation;
        acc.colorfulness += fd.colorfulness;
        acc.warmth += fd.warmth;
        acc.contrast += fd.contrast;
        hs += fs.hue_sin;
        hc += fs.hue_cos;
        hn += fs.hue_n;
        if (f > 0) {
            const uint8_t *pr = fr - npix * 3;
            double diff = 0;
            for (size_t i = 0; i < npix; i++) diff += fabs(luma(fr + 3 * i) - luma(pr + 3 * i));
            motion += diff / (double)npix;
        }
    }
    d->brightness = acc.brightness / frames;
    d->saturation = acc.saturation / frames;
    d->colorfulness = acc.colorfulness / frames;
    d->warmth = acc.warmth / frames;
    d->contrast = acc.contrast / frames;
    d->motion = frames > 1 ? motion / (frames - 1) : 0.0;
    d->hue_deg = circular_mean_deg(hs, hc, hn);
    return 0;
}

int m2u_image_descriptors(const uint8_t *rgb, int h, int w, m2u_visual_desc *d) {
    return m2u_video_descriptors(rgb, 1, h, w, d);
}

static double clamp1(double x) { return x < -1 ? -1 : x > 1 ? 1 : x; }

void m2u_mood_from_visual(const m2u_visual_desc *d, double *valence, double *arousal) {
    const double Bn = clamp1((d->brightness - 0.45) / 0.30);
    const double Sn = clamp1((d->saturation - 0.30) / 0.30);
    const double Cn = clamp1((d->colorfulness - 0.33) / 0.40);
    const double Wn = clamp1(d->warmth / 0.20);
    const double Kn = clamp1((d->contrast - 0.40) / 0.40);
    const double Mn = d->motion > 0 ? fmin(1.0, d->motion / 0.06) : 0.0;
    if (valence) *valence = clamp1(0.60 * Bn + 0.20 * Sn + 0.20 * Cn);
    if (arousal) *arousal = clamp1(0.35 * Sn + 0.15 * Cn + 0.15 * Wn + 0.10 * Kn - 0.10 * Bn + 0.30 * Mn);
}

const char *m2u_hue_name(double hue_deg) {
    if (!isfinite(hue_deg) || hue_deg < 0) return "grey";
    double h = fmod(hue_deg, 360.0);
    if (h < 15 || h >= 345) return "red";
    if (h < 45) return "orange";
    if (h < 70) return "yellow";
    if (h < 160) return "green";
    if (h < 200) return "cyan";
    if (h < 260) return "blue";
    if (h < 295) return "purple";
    return "pink";
}

void m2u_visual_phrase(const m2u_visual_desc *d, int is_video, char *buf, size_t cap) {
    const char *adj[6];
    int na = 0;
    if (d->brightness < 0.25) adj[na++] = "dark";
    else if (d->brightness < 0.40) adj[na++] = "dim";
    else if (d->brightness > 0.65) adj[na++] = "bright";
    if (d->colorfulness >= 0.45) adj[na++] = "colourful";
    else if (d->colorfulness < 0.15) adj[na++] = "muted";
    if (d->contrast > 0.70) adj[na++] = "high-contrast";
    if (is_video) {
        if (d->motion >= 0.06) adj[na++] = "fast-moving";
        else if (d->motion >= 0.02) adj[na++] = "moving";
        else if (d->motion < 0.005) adj[na++] = "static";
    }
    const char *hue = d->hue_deg >= 0 && d->saturation >= 0.25 ? m2u_hue_name(d->hue_deg) : NULL;
    if (!hue) {
        if (d->warmth > 0.10) adj[na++] = "warm-toned";
        else if (d->warmth < -0.10) adj[na++] = "cool-toned";
    }
    const char *noun = is_video ? "video" : "image";
    const char *first = na ? adj[0] : hue ? hue : noun;
    const char *article = strchr("aeiou", first[0]) ? "an" : "a";

    char tmp[256];
    size_t o = (size_t)snprintf(tmp, sizeof tmp, "%s", article);
    for (int i = 0; i < na; i++) o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s%s", i ? ", " : " ", adj[i]);
    if (hue) o += (size_t)snprintf(tmp + o, sizeof tmp - o, " %s", hue);
    snprintf(tmp + o, sizeof tmp - o, " %s", noun);
    if (cap == 0 || !buf) return;
    snprintf(buf, cap, "%s", tmp);
}
