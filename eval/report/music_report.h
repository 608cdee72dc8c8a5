/* The report of a generated-music evaluation (music_gen.h): music.json,
 * music.md and one self-contained music.html in a folder (written
 * atomically; the folder is created).
 *
 * HTML conventions (tests and scrapers can rely on them):
 *   <section class="clip" data-id="ID" data-kind="KIND" data-generated="0|1">
 *     per item, holding, when its clip was generated:
 *       <audio controls src="data:audio/wav;base64,..."> (16-bit mono WAV at
 *         the evaluation's rate) while the embedded WAVs' total stays within
 *         embed_max_bytes; later clips get <a class="clip-link" href="file://PATH">
 *         instead, so the page stays a bounded size;
 *       <svg class="spectrogram" width=W height=H> with one <image> whose href
 *         is a PNG data URI (m2u_spectrogram_png);
 *     the prompt, the reference text, the model's text answer when known, and
 *     a <table class="attrs"> of asked vs measured class per attribute (the
 *     row of an agreeing attribute has class "agree", else "disagree").
 *   confusion heatmaps as eval_report.h's m2u_svg_heatmap, one per attribute
 *     of the "all" group: id="music-confusion-ATTR" (rows asked, columns
 *     measured then "not measured").
 * Functions return 0, or -1 after m2u_fail(); nothing prints. */
#ifndef M2U_MUSIC_REPORT_H
#define M2U_MUSIC_REPORT_H

#include "music_gen.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Log-magnitude spectrogram of pcm as an RGB PNG of width x height pixels:
 * Hann frames of 2048 samples (1024 below 32 kHz) at `width` equally spaced
 * starts; rows are `height` log-spaced bands from 40 Hz to rate/2 (top =
 * high), each the largest bin magnitude in its band (or the nearest bin);
 * 20 log10 magnitude, the top 80 dB of the clip mapped onto a dark-purple ->
 * orange -> yellow ramp.  The PNG is 8-bit RGB, zlib stream of stored
 * (uncompressed) deflate blocks with its adler32, CRC32 per chunk, so no
 * image library is needed.  *png is malloc'ed. */
int m2u_spectrogram_png(const float *pcm, size_t n, int rate, int width, int height, unsigned char **png, size_t *len);

/* Standard base64 (RFC 4648, padded) of n bytes: a malloc'ed string. */
char *m2u_base64(const unsigned char *data, size_t n);

/* The whole evaluation as JSON (keys in music.json; see m2u-eval music --help). */
cJSON *m2u_music_eval_json(const m2u_music_eval *e);

typedef struct {
    size_t embed_max_bytes; /* 0 -> 16 MiB of embedded WAV in the page */
    int spec_width, spec_height; /* 0 -> 480 x 128 */
} m2u_music_report_opts;

/* The music section alone, for a larger report (eval_report.c puts it in
 * report.html / report.md): HTML inside <div id="music">, using the CSS
 * classes of m2u_music_html_css() (the page adds that text to its <style>),
 * headings at <h3>; Markdown with "###" headings.  o may be NULL. */
int m2u_music_html_section(m2u_strbuf *b, const m2u_music_eval *e, const m2u_music_report_opts *o);
const char *m2u_music_html_css(void);
void m2u_music_md_section(m2u_strbuf *b, const m2u_music_eval *e);

/* o may be NULL (defaults). */
int m2u_music_report_write(const char *out_dir, const m2u_music_eval *e, const m2u_music_report_opts *o);

#endif
