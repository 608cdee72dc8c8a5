/* Standard MIDI Files -> audio with libfluidsynth (LGPL-2.1), and what a file
 * holds (notes per General MIDI program) without rendering it.
 *
 *   m2u_midi_render_opts o = {.soundfont = NULL, .rate = 24000, .program = -1, .max_s = 0};
 *   float *pcm; int64_t n;
 *   if (m2u_midi_render("song.mid", &o, &pcm, &n) != 0) ... m2u_last_error()
 *   ...
 *   free(pcm);
 *
 * How it renders.  The file is parsed here (SMF format 0, 1 and 2, PPQ or
 * SMPTE time division, running status, RIFF "RMID" wrappers); all tracks are
 * merged into one time line (ties: file track order, then order in the track;
 * format 2 tracks play at the same time, as fluidsynth's own player does) and
 * the events are sent straight to a fluidsynth synthesizer between
 * fluid_synth_write_float() calls, sample-accurately positioned (fluidsynth
 * itself applies events at its 64-sample block boundaries).  There is no
 * player thread, timer or audio driver, so:
 *   - Deterministic: the same file, options, soundfont and library build give
 *     the same bits on every run (one synthesizer per call, single-threaded:
 *     synth.cpu-cores = 1; fluidsynth's reverb and chorus are on, as in the
 *     fluidsynth CLI, and contain no randomness; float output, so no dither).
 *   - Level: synth.gain = M2U_MIDI_RENDER_GAIN (0.35; fluidsynth's default is
 *     0.2).  Real General MIDI files are dense: at this gain the 31 OpenMSX
 *     songs (the embedded default corpus) peak at 0.22..0.93; at 0.8 most
 *     of them would exceed 1.0.  The 4-part test song (tests/data) measures
 *     about -31 LUFS, so a build that wants a target level should loudness-
 *     normalise.  The output is not clamped: a denser song can still peak
 *     above 1.0.
 *   - Mono: the mean of fluidsynth's left and right outputs.
 *   - Length: the song (up to its last event, End-of-Track included) plus a
 *     release tail: after the last event the sustain/sostenuto pedals are
 *     lifted and all notes released on every channel, then rendering continues
 *     in 1024-sample blocks until a block peaks 60 dB below the loudest sample
 *     so far, or no voice is active and the block peaks below 1e-4 (-80 dBFS;
 *     the reverb tail), at most M2U_MIDI_RENDER_TAIL_S seconds.
 *     max_s > 0 stops after exactly round(max_s * rate) samples (max_s above
 *     20 minutes counts as 20 minutes), or earlier when the song and its tail
 *     end first.  max_s <= 0: the whole song, capped
 *     at 20 minutes of output.
 *   - Program override (program 0..127): every channel except 9 (GM drums)
 *     starts on bank 0 / that program, each program change on those channels is
 *     replaced by it, and their bank selects (CC 0 / CC 32) are dropped, so the
 *     melodic parts all play that GM instrument; channel 9 is untouched.
 *     After a SysEx message (which may be a GM/GS reset) the override is set
 *     again.
 *   - fluidsynth's log output is captured, never printed: the first error it
 *     logs during a call is appended to our failure message.  (This installs
 *     process-wide fluidsynth log handlers on first use.)
 *   - Cost: the soundfont is loaded on every call (FluidR3_GM.sf2, 141 MB,
 *     from the page cache: a 4-part 18 s song renders in about 0.3 s in all);
 *     the OpenMSX songs (1-4 minutes, up to 16 parts) render at 15-85x real
 *     time on one core at 24 kHz (about 45x overall).
 * Reentrant: one call per thread may run concurrently (each has its own
 * synthesizer; fluidsynth's global initialisation is done once under
 * pthread_once).  Rendering is single-threaded; fluidsynth (Debian's build
 * links libgomp) may load the soundfont's samples with OpenMP threads, which
 * does not affect the output.
 *
 * Failures name the file: missing/unreadable, not a MIDI file ("not a
 * Standard MIDI File"), malformed or truncated tracks, a missing or invalid
 * soundfont (SoundFont 2/3 only: the RIFF "sfbk" header is checked before
 * fluidsynth sees the file), an out-of-range rate (8000..96000, fluidsynth's range) or
 * program. */
#ifndef M2U_MIDI_RENDER_H
#define M2U_MIDI_RENDER_H

#include <stddef.h>
#include <stdint.h>

#define M2U_MIDI_DEFAULT_SOUNDFONT "/usr/share/sounds/sf2/FluidR3_GM.sf2"
#define M2U_MIDI_RENDER_GAIN 0.35
#define M2U_MIDI_RENDER_TAIL_S 10.0
#define M2U_MIDI_RENDER_MAX_S 1200.0 /* 20 minutes */

typedef struct {
    const char *soundfont; /* .sf2 path; NULL = M2U_MIDI_DEFAULT_SOUNDFONT */
    int rate;              /* output Hz, 8000..96000, e.g. 24000 */
    int program;           /* -1: programs as written; 0..127: every melodic (non-drum, channel != 9)
                              channel plays this GM program instead (see above) */
    double max_s;          /* stop after this many seconds (<= 0: whole song + release tail, capped at
                              20 min) */
} m2u_midi_render_opts;

/* Render mid_path to mono float32 at o->rate.  On success *pcm (malloc'ed,
 * caller frees) holds *n samples (n > 0 for any song with events; a file with
 * no events at all renders nothing and fails with "no events").  On failure
 * *pcm is NULL, *n is 0 and m2u_last_error() names the file. */
int m2u_midi_render(const char *mid_path, const m2u_midi_render_opts *o, float **pcm, int64_t *n);

/* What the file plays, read from the file alone (no rendering, no soundfont).
 *   notes[p]    note-ons (velocity > 0) on channels other than 9 while the
 *               channel's current program is p (programs as written, tracked per
 *               channel through the merged time line; a channel starts on 0)
 *   drum_notes  note-ons on channel 9
 *   main_program  the lead: the program with the most notes (lowest on a tie),
 *               the bass family (GM 32-39) counting only when nothing else
 *               plays; -1 when no melodic notes
 *   duration_s  time of the last event (End-of-Track included) with the file's
 *               tempo map: the song without the release tail that
 *               m2u_midi_render adds (not capped). */
typedef struct {
    int64_t notes[128];
    int64_t drum_notes;
    int main_program; /* most notes, -1 if none */
    double duration_s;
} m2u_midi_summary;
int m2u_midi_summarize(const char *mid_path, m2u_midi_summary *s);

/* General MIDI program names in lower-case everyday words usable in captions
 * ("acoustic grand piano", "violin", "nylon-string guitar", "square wave lead"),
 * and a coarse family word: "piano", "chromatic percussion", "organ", "guitar",
 * "bass", "strings", "ensemble", "brass", "reed", "pipe", "synth" (GM's synth
 * lead, pad and effects families), "ethnic", "percussion", "sound effects".
 * Static strings; "unknown" for a program outside 0..127. */
const char *m2u_gm_program_name(int program);
const char *m2u_gm_family_name(int program);

#endif
