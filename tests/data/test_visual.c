/* Image/video descriptors, their mood and their words (data/build/visual.h) on
 * synthetic pictures whose descriptors are known in closed form. */
#include "visual.h"
#include "m2u_error.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define W 64
#define H 48
#define NPIX (W * H)

static uint8_t *solid(int r, int g, int b) {
    uint8_t *p = malloc(NPIX * 3);
    for (int i = 0; i < NPIX; i++) {
        p[3 * i] = (uint8_t)r;
        p[3 * i + 1] = (uint8_t)g;
        p[3 * i + 2] = (uint8_t)b;
    }
    return p;
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static m2u_visual_desc image_desc(const uint8_t *p) {
    m2u_visual_desc d;
    memset(&d, 0xff, sizeof d);
    if (m2u_image_descriptors(p, H, W, &d) != 0) CHECK(0, "%s", m2u_last_error());
    return d;
}

static void phrase_has(const m2u_visual_desc *d, int is_video, const char *want, const char *not_want) {
    char buf[128];
    m2u_visual_phrase(d, is_video, buf, sizeof buf);
    CHECK(strstr(buf, want) != NULL, "phrase \"%s\" lacks \"%s\"", buf, want);
    if (not_want) CHECK(strstr(buf, not_want) == NULL, "phrase \"%s\" has \"%s\"", buf, not_want);
}

static void test_images(void) {
    char buf[128];
    uint8_t *black = solid(0, 0, 0), *white = solid(255, 255, 255), *red = solid(255, 0, 0), *blue = solid(0, 0, 255);
    m2u_visual_desc k = image_desc(black), w = image_desc(white), r = image_desc(red), b = image_desc(blue);

    CHECK(k.brightness == 0 && k.saturation == 0 && k.colorfulness == 0 && k.warmth == 0 && k.contrast == 0 &&
              k.motion == 0 && k.hue_deg == -1,
          "black: %g %g %g %g %g %g %g", k.brightness, k.saturation, k.colorfulness, k.warmth, k.contrast, k.motion,
          k.hue_deg);
    CHECK(near(w.brightness, 1, 1e-12) && w.saturation == 0 && w.colorfulness == 0 && w.hue_deg == -1 &&
              near(w.contrast, 0, 1e-6),
          "white: %g %g %g %g", w.brightness, w.saturation, w.colorfulness, w.hue_deg);
    /* pure red: Y = 0.299, S = 1, rg = 255, yb = 127.5, no spread */
    double cf_red = 0.3 * sqrt(255.0 * 255 + 127.5 * 127.5) / 100;
    CHECK(near(r.brightness, 0.299, 1e-9) && r.saturation == 1 && near(r.colorfulness, cf_red, 1e-9) &&
              r.warmth == 1 && near(r.hue_deg, 0, 1e-9),
          "red: Y %g S %g M %g (want %g) warm %g hue %g", r.brightness, r.saturation, r.colorfulness, cf_red, r.warmth,
          r.hue_deg);
    CHECK(near(b.brightness, 0.114, 1e-9) && b.warmth == -1 && near(b.hue_deg, 240, 1e-9) &&
              near(b.colorfulness, 0.3 * 255 / 100, 1e-9),
          "blue: Y %g warm %g hue %g M %g", b.brightness, b.warmth, b.hue_deg, b.colorfulness);

    m2u_visual_phrase(&k, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "a dark, muted image") == 0, "black: \"%s\"", buf);
    m2u_visual_phrase(&w, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "a bright, muted image") == 0, "white: \"%s\"", buf);
    m2u_visual_phrase(&r, 0, buf, sizeof buf);
    CHECK(strcmp(buf, "a dim, colourful red image") == 0, "red: \"%s\"", buf);
    phrase_has(&b, 0, "blue image", "warm");
    phrase_has(&b, 0, "dark", "bright");

    /* grey noise: saturation 0, contrast = sd of the levels / 0.5 */
    {
        uint8_t *g = malloc(NPIX * 3);
        uint32_t s = 7;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < NPIX; i++) {
            s = s * 1664525u + 1013904223u;
            uint8_t v = (uint8_t)(s >> 24);
            g[3 * i] = g[3 * i + 1] = g[3 * i + 2] = v;
            double y = (0.299 * v + 0.587 * v + 0.114 * v) / 255;
            sum += y;
            sum2 += y * y;
        }
        double m = sum / NPIX, sd = sqrt(sum2 / NPIX - m * m);
        m2u_visual_desc d = image_desc(g);
        CHECK(d.saturation == 0 && d.colorfulness == 0 && d.hue_deg == -1 && d.warmth == 0, "grey noise has colour");
        CHECK(near(d.brightness, m, 1e-9) && near(d.contrast, sd / 0.5, 1e-9) && d.contrast > 0.45,
              "grey noise: Y %g (want %g) contrast %g (want %g)", d.brightness, m, d.contrast, sd / 0.5);
        phrase_has(&d, 0, "muted", "colourful");
        free(g);
    }

    /* half black, half white: contrast 1 */
    {
        uint8_t *p = solid(0, 0, 0);
        memset(p, 255, NPIX * 3 / 2);
        m2u_visual_desc d = image_desc(p);
        CHECK(near(d.contrast, 1, 1e-9) && near(d.brightness, 0.5, 1e-9), "half/half: contrast %g Y %g", d.contrast,
              d.brightness);
        phrase_has(&d, 0, "high-contrast", NULL);
        free(p);
    }

    /* circular hue mean: reds either side of 0 average to red, not cyan */
    {
        uint8_t *p = solid(255, 43, 0); /* hue 10.1 */
        for (int i = 0; i < NPIX / 2; i++) {
            p[3 * i + 1] = 0;
            p[3 * i + 2] = 43; /* hue 349.9 */
        }
        m2u_visual_desc d = image_desc(p);
        CHECK(d.hue_deg >= 0 && (d.hue_deg < 0.5 || d.hue_deg > 359.5), "hue mean %g", d.hue_deg);
        CHECK(strcmp(m2u_hue_name(d.hue_deg), "red") == 0, "hue name %s", m2u_hue_name(d.hue_deg));
        /* red and cyan cancel: no dominant hue */
        for (int i = 0; i < NPIX; i++) {
            int c = i < NPIX / 2;
            p[3 * i] = (uint8_t)(c ? 0 : 255);
            p[3 * i + 1] = p[3 * i + 2] = (uint8_t)(c ? 255 : 0);
        }
        d = image_desc(p);
        CHECK(d.hue_deg == -1, "red + cyan hue %g", d.hue_deg);
        /* pixels under the saturation threshold do not vote */
        for (int i = 0; i < NPIX; i++) {
            int c = i < NPIX / 2;
            p[3 * i] = (uint8_t)(c ? 200 : 40);
            p[3 * i + 1] = (uint8_t)(c ? 190 : 200);
            p[3 * i + 2] = (uint8_t)(c ? 180 : 40); /* pale (S 0.1) beige vs saturated green */
        }
        d = image_desc(p);
        CHECK(near(d.hue_deg, 120, 1e-6), "green with pale beige: hue %g", d.hue_deg);
        free(p);
    }

    /* mood: bright saturated warm > dark desaturated, on both axes */
    {
        uint8_t *warm = solid(255, 200, 40), *gloomy = solid(40, 40, 50), *pale = solid(235, 235, 240);
        m2u_visual_desc dw = image_desc(warm), dg = image_desc(gloomy), dp = image_desc(pale);
        double vw, aw, vg, ag, vp, ap;
        m2u_mood_from_visual(&dw, &vw, &aw);
        m2u_mood_from_visual(&dg, &vg, &ag);
        m2u_mood_from_visual(&dp, &vp, &ap);
        CHECK(vw > vg + 0.5 && aw > ag + 0.5, "warm (%g, %g) vs gloomy (%g, %g)", vw, aw, vg, ag);
        CHECK(vw > 0.5 && aw > 0.3, "warm image mood (%g, %g)", vw, aw);
        CHECK(vg < -0.5 && ag < 0, "gloomy image mood (%g, %g)", vg, ag);
        /* Valdez & Mehrabian: a pale bright picture is pleasant but calm */
        CHECK(vp > 0.2 && ap < -0.3, "pale image mood (%g, %g)", vp, ap);
        double vr, ar, vb, ab;
        m2u_mood_from_visual(&r, &vr, &ar);
        m2u_mood_from_visual(&b, &vb, &ab);
        CHECK(ar > ab, "red arousal %g <= blue %g", ar, ab);
        double lo = 1, hi = -1;
        const m2u_visual_desc *all[] = {&k, &w, &r, &b, &dw, &dg, &dp};
        for (int i = 0; i < 7; i++) {
            double v, a;
            m2u_mood_from_visual(all[i], &v, &a);
            lo = fmin(lo, fmin(v, a));
            hi = fmax(hi, fmax(v, a));
        }
        CHECK(lo >= -1 && hi <= 1, "mood out of range: %g .. %g", lo, hi);
        m2u_mood_from_visual(&dw, NULL, &aw); /* NULL outputs allowed */
        m2u_visual_phrase(&dw, 0, buf, sizeof buf);
        CHECK(strcmp(buf, "a bright, colourful orange image") == 0, "warm: \"%s\"", buf);
        free(warm);
        free(gloomy);
        free(pale);
    }

    /* phrase truncation; article before a vowel */
    m2u_visual_phrase(&k, 0, buf, 5);
    CHECK(strcmp(buf, "a da") == 0, "truncated: \"%s\"", buf);
    {
        m2u_visual_desc d = {.brightness = 0.5, .saturation = 0.3, .colorfulness = 0.3, .contrast = 0.3,
                             .hue_deg = 30};
        m2u_visual_phrase(&d, 0, buf, sizeof buf);
        CHECK(strcmp(buf, "an orange image") == 0, "\"%s\"", buf);
        d.hue_deg = -1;
        m2u_visual_phrase(&d, 0, buf, sizeof buf);
        CHECK(strcmp(buf, "an image") == 0, "\"%s\"", buf);
        d.warmth = 0.3;
        m2u_visual_phrase(&d, 0, buf, sizeof buf);
        CHECK(strcmp(buf, "a warm-toned image") == 0, "\"%s\"", buf);
    }

    CHECK(m2u_image_descriptors(black, 0, W, &k) == -1, "height 0 accepted");
    CHECK(m2u_image_descriptors(NULL, H, W, &k) == -1, "NULL image accepted");
    free(black);
    free(white);
    free(red);
    free(blue);
}

/* 8 frames, dark blue background, a white 12x12 square moving 6 px per frame
 * (or standing still). */
static uint8_t *square_video(int moving) {
    const int F = 8;
    uint8_t *v = malloc((size_t)F * NPIX * 3);
    for (int f = 0; f < F; f++) {
        uint8_t *fr = v + (size_t)f * NPIX * 3;
        int x0 = 4 + (moving ? 6 * f : 0), y0 = 18;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = fr + (y * W + x) * 3;
                int in = x >= x0 && x < x0 + 12 && y >= y0 && y < y0 + 12;
                p[0] = (uint8_t)(in ? 255 : 10);
                p[1] = (uint8_t)(in ? 255 : 20);
                p[2] = (uint8_t)(in ? 255 : 90);
            }
    }
    return v;
}

static void test_videos(void) {
    uint8_t *mv = square_video(1), *st = square_video(0);
    m2u_visual_desc dm, ds, d0;
    CHECK(m2u_video_descriptors(mv, 8, H, W, &dm) == 0, "%s", m2u_last_error());
    CHECK(m2u_video_descriptors(st, 8, H, W, &ds) == 0, "%s", m2u_last_error());
    CHECK(m2u_image_descriptors(st, H, W, &d0) == 0, "%s", m2u_last_error());
    /* each step uncovers 6 columns of the square and covers 6: 2 * 6 * 12 pixels change */
    double ybg = (0.299 * 10 + 0.587 * 20 + 0.114 * 90) / 255, dy = 1 - ybg;
    double want = 2.0 * 6 * 12 * dy / NPIX;
    CHECK(near(dm.motion, want, 1e-9), "moving square motion %g, want %g", dm.motion, want);
    CHECK(ds.motion == 0 && d0.motion == 0, "static motion %g / image %g", ds.motion, d0.motion);
    /* same content per frame: the frame-averaged descriptors equal the image's */
    CHECK(near(dm.brightness, d0.brightness, 1e-12) && near(dm.contrast, d0.contrast, 1e-12) &&
              near(dm.saturation, d0.saturation, 1e-12) && near(dm.hue_deg, d0.hue_deg, 1e-9),
          "moving vs still frame descriptors differ");
    double vm, am, vs, as;
    m2u_mood_from_visual(&dm, &vm, &am);
    m2u_mood_from_visual(&ds, &vs, &as);
    CHECK(am > as + 0.1, "moving arousal %g vs static %g", am, as);
    CHECK(near(vm, vs, 1e-12), "motion changed valence (%g vs %g)", vm, vs);
    char buf[128];
    m2u_visual_phrase(&dm, 1, buf, sizeof buf);
    CHECK(strcmp(buf, "a dark, moving blue video") == 0, "moving: \"%s\"", buf);
    m2u_visual_phrase(&ds, 1, buf, sizeof buf);
    CHECK(strcmp(buf, "a dark, static blue video") == 0, "static: \"%s\"", buf);
    m2u_visual_phrase(&ds, 0, buf, sizeof buf);
    CHECK(strstr(buf, "static") == NULL && strstr(buf, "image"), "image phrase \"%s\"", buf);
    dm.motion = 0.2;
    m2u_visual_phrase(&dm, 1, buf, sizeof buf);
    CHECK(strstr(buf, "fast-moving"), "fast: \"%s\"", buf);

    /* black <-> white flicker: per-frame contrast 0 (averaged, not pooled), motion 1 */
    {
        uint8_t *fl = malloc(4 * NPIX * 3);
        for (int f = 0; f < 4; f++) memset(fl + (size_t)f * NPIX * 3, f % 2 ? 255 : 0, NPIX * 3);
        m2u_visual_desc d;
        CHECK(m2u_video_descriptors(fl, 4, H, W, &d) == 0, "%s", m2u_last_error());
        CHECK(near(d.brightness, 0.5, 1e-9) && near(d.contrast, 0, 1e-6) && near(d.motion, 1, 1e-9),
              "flicker: Y %g contrast %g motion %g", d.brightness, d.contrast, d.motion);
        free(fl);
    }
    CHECK(m2u_video_descriptors(mv, 0, H, W, &dm) == -1, "0 frames accepted");
    free(mv);
    free(st);
}

static void test_hue_names(void) {
    struct {
        double h;
        const char *name;
    } t[] = {{0, "red"},      {359, "red"},     {14.9, "red"},    {15, "orange"}, {30, "orange"}, {60, "yellow"},
             {120, "green"},  {180, "cyan"},    {240, "blue"},    {280, "purple"}, {320, "pink"},  {344, "pink"},
             {345, "red"},    {720 + 240, "blue"}, {-1, "grey"}, {NAN, "grey"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(strcmp(m2u_hue_name(t[i].h), t[i].name) == 0, "hue %g: %s, want %s", t[i].h, m2u_hue_name(t[i].h),
              t[i].name);
}

int main(void) {
    test_images();
    test_videos();
    test_hue_names();
    return t_finish("test_visual");
}
