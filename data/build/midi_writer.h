/* A small Standard MIDI File (type 1) writer.
 *
 * Used by the analysis tests and by the dataset builder to make music whose
 * labels are known exactly (tempo, key, mode, instruments) and to make
 * MIDI-based ground-truth edits (transpose, tempo change, instrument swap)
 * that are then rendered with FluidSynth and a General MIDI soundfont.
 *
 * A song is built in memory with times in beats (quarter notes) and written
 * in one go:
 *
 *   m2u_midi *m = m2u_midi_new(480);
 *   m2u_midi_tempo(m, 0, 120);
 *   m2u_midi_time_signature(m, 0, 4, 4);
 *   m2u_midi_key_signature(m, 0, 9, M2U_MIDI_MINOR);           A minor
 *   int pno = m2u_midi_add_track(m, "piano", 0, 0);            channel 0, GM program 0
 *   int drm = m2u_midi_add_track(m, "drums", M2U_MIDI_DRUM_CHANNEL, -1);
 *   m2u_midi_note(m, pno, 0.0, 1.0, 57, 90);
 *   m2u_midi_write(m, "song.mid");                              atomic (temp + rename)
 *   m2u_midi_free(m);
 *
 * Events are kept structured (not as bytes) so the edit helpers can rewrite
 * them; they are sorted and encoded only by m2u_midi_write().  At one tick the
 * order is: meta events, note-offs, program/controller changes, note-ons, so a
 * repeated note is released before it is struck again and an instrument
 * change applies to the notes starting with it.  Track 0 of the file is the
 * conductor track (tempo, time and key signatures); the tracks added here
 * follow it.
 *
 * Channels and programs are 0-based as on the wire: channel 9 is General MIDI
 * channel 10 (drums, notes pick the drum sound), GM program 0 is Acoustic Grand
 * Piano.  Not thread-safe; one m2u_midi per thread. */
#ifndef M2U_MIDI_WRITER_H
#define M2U_MIDI_WRITER_H

#include <stddef.h>

#define M2U_MIDI_DRUM_CHANNEL 9 /* GM channel 10 */
#define M2U_MIDI_MAJOR 0
#define M2U_MIDI_MINOR 1

typedef struct m2u_midi m2u_midi;

/* A new empty song with `ppq` ticks per quarter note (24..32767; 480 is usual).
 * NULL after m2u_fail() on a bad ppq or out of memory. */
m2u_midi *m2u_midi_new(int ppq);
void m2u_midi_free(m2u_midi *m);

/* Add a track playing on `channel` (0..15); `program` 0..127 puts a program
 * change at beat 0, -1 leaves the channel's default (use -1 for drums).
 * `name` (may be NULL) becomes the track-name meta event.  Returns the track
 * index (0, 1, ...) used by the calls below, or -1 after m2u_fail(). */
int m2u_midi_add_track(m2u_midi *m, const char *name, int channel, int program);

/* Conductor events.  `beat` >= 0.  Tempo in quarter notes per minute
 * (3.6..60000e3 so that microseconds per quarter fit in 24 bits); time
 * signature numerator 1..255 over denominator 1,2,4,..,128; key signature as
 * tonic pitch class (0 = C .. 11 = B) and M2U_MIDI_MAJOR/MINOR, encoded as the
 * usual count of sharps/flats (see m2u_midi_key_sharps). */
int m2u_midi_tempo(m2u_midi *m, double beat, double bpm);
int m2u_midi_time_signature(m2u_midi *m, double beat, int numerator, int denominator);
int m2u_midi_key_signature(m2u_midi *m, double beat, int tonic, int mode);

/* Channel events on a track's channel. */
int m2u_midi_program(m2u_midi *m, int track, double beat, int program);
int m2u_midi_control(m2u_midi *m, int track, double beat, int controller, int value);
/* A note: start and duration in beats (duration > 0), pitch 0..127, velocity 1..127.
 * The note-off lands at least one tick after the note-on. */
int m2u_midi_note(m2u_midi *m, int track, double start_beat, double dur_beats, int pitch,
                  int velocity);

/* Edits for ground-truth pairs (all-or-nothing: on failure nothing changed).
 * Transpose every note on non-drum channels and every key signature by
 * `semitones`; fails if a note would leave 0..127. */
int m2u_midi_transpose(m2u_midi *m, int semitones);
/* Multiply every tempo by `factor` (> 0); fails if a tempo leaves the range. */
int m2u_midi_scale_tempo(m2u_midi *m, double factor);
/* Replace every program change of `track` with `program` (instrument swap). */
int m2u_midi_set_track_program(m2u_midi *m, int track, int program);

/* Length of the song in beats (end of the last note or event). */
double m2u_midi_length_beats(const m2u_midi *m);
int m2u_midi_track_count(const m2u_midi *m);

/* Encode as an SMF type-1 file: a malloc'ed buffer the caller frees. */
int m2u_midi_encode(const m2u_midi *m, unsigned char **data, size_t *len);
/* Encode and write atomically (temp file, fsync, rename). */
int m2u_midi_write(const m2u_midi *m, const char *path);

/* Sharps (> 0) or flats (< 0) of the key signature for tonic pitch class and
 * mode, as stored in the key-signature meta event: C major 0, G major 1, F
 * major -1, A minor 0, F# minor 3, pitch class 6 major -> -6 (Gb), 3 minor ->
 * -6 (Eb minor).  Returns 0 for arguments out of range. */
int m2u_midi_key_sharps(int tonic, int mode);

#endif
