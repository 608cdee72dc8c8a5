/* Image and video descriptors on the music mood axes: what the dataset
 * builder pairs pictures with music by (m2u_mood_from_analysis, analysis.h),
 * and the words its captions and pairing rationales use.
 *
 * Input layout as data/build/frames.h: uint8 RGB [H][W][3] for an image,
 * [F][H][W][3] for a video (any size; the builder passes 224 x 224).
 * All sums run in double in a fixed order: deterministic, reentrant, no
 * printing.
 *
 * Per pixel (R, G, B in 0..255):
 *   luma        Y = (0.299 R + 0.587 G + 0.114 B) / 255            (BT.601)
 *   HSV         V = max(R,G,B), C = V - min(R,G,B); saturation S = C / V
 *               (0 when V = 0); hue (only when C > 0), in degrees 0..360:
 *               V = R: 60 ((G - B) / C), plus 360 when negative
 *               else V = G: 60 ((B - R) / C + 2)
 *               else:       60 ((R - G) / C + 4)
 *   opponent    rg = R - G, yb = (R + G) / 2 - B
 *
 * Image descriptors (means over all H W pixels):
 *   brightness    mean Y, 0..1
 *   saturation    mean S, 0..1 (HSV: a dark pixel can be saturated)
 *   colorfulness  Hasler & Süsstrunk (2003) M = sqrt(sd(rg)^2 + sd(yb)^2)
 *                 + 0.3 sqrt(mean(rg)^2 + mean(yb)^2) (population sd), / 100.
 *                 Their scale: 0.15 slightly, 0.33 moderately, 0.45 averagely,
 *                 0.59 quite, 0.82 highly, 1.09 extremely colourful; a flat
 *                 pure red gives 0.855.
 *   warmth        mean (R - B) / 255, -1 (blue) .. 1 (red)
 *   contrast      population sd of Y / 0.5 (0..1: 1 = half black, half white)
 *   motion        0
 *   hue_deg       circular mean of the hue of pixels with S > 0.2:
 *                 atan2(sum sin h, sum cos h) in degrees, mapped to [0, 360);
 *                 -1 when no pixel qualifies or the hues cancel (resultant
 *                 length below 1e-6 of the pixel count).
 * Video descriptors: brightness, saturation, colorfulness, warmth, contrast
 * are the image descriptors of each frame averaged over the F frames; hue_deg
 * is the circular mean over the qualifying pixels of all frames; motion is the
 * mean over the F - 1 consecutive frame pairs of the mean |Y_t - Y_{t-1}| per
 * pixel (so 0..1; 0 for a single frame).  The builder samples frames spread
 * over the whole clip (frames.h), so motion measures change between moments
 * as well as movement within a shot. */
#ifndef M2U_VISUAL_H
#define M2U_VISUAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double brightness;   /* mean luma (BT.601 Y / 255), 0..1 */
    double saturation;   /* mean HSV saturation, 0..1 */
    double colorfulness; /* Hasler & Süsstrunk 2003 M metric / 100 (roughly 0..1+) */
    double warmth;       /* mean (R - B) / 255, -1..1 */
    double contrast;     /* std of luma / 0.5 (0..1) */
    double motion;       /* videos: mean absolute luma difference between consecutive frames / 255 (0 for images) */
    double hue_deg;      /* circular mean hue of pixels with saturation > 0.2, degrees; -1 if none */
} m2u_visual_desc;

/* h, w >= 1.  0, or -1 after m2u_fail(). */
int m2u_image_descriptors(const uint8_t *rgb, int h, int w, m2u_visual_desc *d);
/* frames, h, w >= 1.  0, or -1 after m2u_fail(). */
int m2u_video_descriptors(const uint8_t *rgb, int frames, int h, int w, m2u_visual_desc *d);

/* Mood on the [-1, 1] valence/arousal plane of m2u_mood_from_analysis.
 * With clamp() to [-1, 1]:
 *   Bn = clamp((brightness - 0.45) / 0.30)     mid-grey 0.45 is neutral
 *   Sn = clamp((saturation - 0.30) / 0.30)
 *   Cn = clamp((colorfulness - 0.33) / 0.40)   "moderately colourful" neutral
 *   Wn = clamp(warmth / 0.20)
 *   Kn = clamp((contrast - 0.40) / 0.40)       luma sd 0.2, a typical photo
 *   Mn = min(1, motion / 0.06)                 0..1: motion only adds
 * valence = clamp(0.60 Bn + 0.20 Sn + 0.20 Cn)
 * arousal = clamp(0.35 Sn + 0.15 Cn + 0.15 Wn + 0.10 Kn - 0.10 Bn + 0.30 Mn)
 * Reasoning:
 *  - Valdez & Mehrabian (1994, J. Exp. Psychol. Gen. 123:394) regressed
 *    emotion on colour: pleasure = 0.69 brightness + 0.22 saturation,
 *    arousal = -0.31 brightness + 0.60 saturation.  The valence weights keep
 *    their ratio (brightness about three times saturation), with the
 *    saturation share split between HSV saturation and colourfulness (which,
 *    unlike HSV saturation, ignores saturated-but-dark shadows); arousal is
 *    led by saturation/colourfulness, and brightness lowers it a little, as
 *    they found (a pale, bright picture reads calm).
 *  - Warm (red/orange) colours read as more arousing than cool ones (blue,
 *    green): Wilson 1966; Jacobs & Hustmyer 1974.
 *  - Motion drives arousal in affective video analysis (Hanjalic & Xu 2005,
 *    IEEE Trans. Multimedia 7:143: motion activity, cut rate, sound energy).
 *    Images have motion 0, and a static video is treated like an image:
 *    motion raises arousal, it never lowers it.
 *  - Contrast: a small arousal term of our own (hard light and strong
 *    shadows read as dramatic), not taken from a study.
 * The magnitudes of image and music moods are comparable only roughly; the
 * pairing should compare positions (quadrants, distances), not exact values.
 * NULL outputs are skipped. */
void m2u_mood_from_visual(const m2u_visual_desc *d, double *valence, double *arousal);

/* A short noun phrase for captions and the pairing rationale, e.g.
 * "a bright, colourful, warm-toned image", "a dark, fast-moving blue video",
 * "an image".  Written into buf, NUL-terminated, truncated to cap (cap 0:
 * nothing written).  Words, in this order, comma-separated, then the hue
 * name and the noun without a comma:
 *   brightness < 0.25 "dark", < 0.40 "dim", > 0.65 "bright"
 *   colorfulness >= 0.45 "colourful", < 0.15 "muted"
 *   contrast > 0.70 "high-contrast"
 *   videos: motion >= 0.06 "fast-moving", >= 0.02 "moving", < 0.005 "static"
 *   warmth > 0.10 "warm-toned", < -0.10 "cool-toned" (only when no hue name)
 *   hue name (m2u_hue_name) when hue_deg >= 0 and saturation >= 0.25
 *   noun "image" or "video"; article "a", or "an" before a vowel. */
void m2u_visual_phrase(const m2u_visual_desc *d, int is_video, char *buf, size_t cap);

/* English name of a hue in degrees (taken modulo 360):
 *   [345, 15) "red", [15, 45) "orange", [45, 70) "yellow", [70, 160) "green",
 *   [160, 200) "cyan", [200, 260) "blue", [260, 295) "purple", [295, 345) "pink";
 *   "grey" for a negative or non-finite hue (no dominant colour). */
const char *m2u_hue_name(double hue_deg);

#endif
