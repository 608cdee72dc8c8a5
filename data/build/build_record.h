/* Phase-1 records of `m2u-dataset build` (build.h): what the survey learnt
 * about one input file, as JSON in <out>/work/records/<id>.json.
 *
 *   {"id": "...", "path": "...", "rel": "...", "kind": "audio|image|video",
 *    "licence": "...", "attribution": "...", "source": "...",
 *    "status": "ok" | a decode.h reason, "message": "...",
 *    "duration_s": 183.2,
 *    "midi": {"main_program": 0, "drum_notes": 120},          MIDI sources
 *    "clips": [{"start": 0, "end": 10, "analysis": {...}}],  audio and video soundtracks
 *    "fp": [uint32, ...],                                     chromaprint (audio)
 *    "visual": {"brightness": .., ..., "valence": .., "arousal": ..}}   images, videos
 *
 * The analysis object has the fields of m2u_analysis (analysis.h) except the
 * beat times and chroma; it is also the text of a sample's `analysis` column. */
#ifndef M2U_BUILD_RECORD_H
#define M2U_BUILD_RECORD_H

#include "analysis.h"
#include "visual.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double start, end;
    m2u_analysis a; /* beat_s is NULL, n_beats kept */
} m2u_record_clip;

typedef struct {
    char *id, *path, *rel, *kind, *licence, *attribution, *source;
    char *status, *message;
    double duration_s;
    int is_midi, main_program;
    int64_t drum_notes;
    m2u_record_clip *clips;
    int n_clips;
    uint32_t *fp;
    size_t fp_len;
    int has_visual;
    m2u_visual_desc visual;
    double valence, arousal;
} m2u_record;

void m2u_record_free(m2u_record *r);
/* Analysis as a JSON object (fields of m2u_analysis; key/mode also as names). */
cJSON *m2u_analysis_to_json(const m2u_analysis *a);
/* Write the record atomically to path. */
int m2u_record_write(const char *path, const m2u_record *r);
/* Read and validate; a record that does not parse is refused naming the file. */
int m2u_record_read(const char *path, m2u_record *r);

#endif
