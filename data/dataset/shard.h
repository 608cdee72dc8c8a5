/* HDF5 dataset shards: writer and reader.
 *
 * ===================== Shard schema (schema_version 1) =====================
 * One HDF5 file `shard-NNNNN.h5` holds N samples in columns.  Every dataset is
 * chunked and compressed with zstd (HDF5 filter id 32015, cd_values[0] = level),
 * optionally preceded by the shuffle filter on numeric columns.  Readers other
 * than m2u need the plugin: HDF5_PLUGIN_PATH=<build>/hdf5-plugins.
 * Variable-length data is stored as one concatenated array plus an int64
 * offsets array of N+1 entries (sample i = data[off[i]:off[i+1]]); no HDF5
 * variable-length types are used (they cannot be compressed, see research §2.3).
 *
 * Root attributes
 *   schema_version  int32   1
 *   m2u_version     string  version of the tool that wrote the file
 *   n_samples       int64   N
 *   audio_rate      int32   sample rate (Hz) of /audio and /target_audio; 0 = no audio
 *   zstd_level      int32   level the writer used
 * Text (UTF-8 bytes, no NUL; an absent value is the empty string)
 *   /text/<name>          uint8 [total bytes]   chunks of 64 KiB
 *   /text/<name>_offsets  int64 [N+1]
 *   names: id source licence attribution split kind caption instruction answer
 *          input_text output_text analysis
 *   split is "", "train", "valid" or "test"; kind is "", "mucaps", "musicqa",
 *   "muedit", "muimage" or "muvideo"; analysis is a JSON object as text.
 * Audio (only when audio_rate > 0), mono int16 PCM, chunks of 2^17 samples (256 KiB)
 *   /audio                 int16 [total samples]   attribute rate (int32)
 *   /audio_offsets         int64 [N+1]
 *   /target_audio          int16 [total samples]   (optional: MUEdit targets)
 *   /target_audio_offsets  int64 [N+1]
 * Fixed-size columns
 *   /clip_start, /clip_end  float64 [N]   seconds within the source (NaN = unknown)
 *   /attrs                  float32 [N, K] (present when K > 0; NaN = unknown)
 *                           attribute attr_names: K strings (e.g. tempo, key, mode, loudness)
 * Tensor columns (each optional, shape fixed per shard, chunk = one sample)
 *   /features/<name>          float16 [N, d1..dr]   encoder outputs, e.g. mert [N,25,1024],
 *                             vit [N,197,768], vivit [N,3137,768], t5 [N,128,768]
 *   /media/<name>             uint8   [N, d1..dr]   raw pixels, e.g. image [N,H,W,3],
 *                             video [N,F,H,W,3]
 *   /<group>/<name>_present   uint8   [N]   1 if sample i has this tensor; an absent
 *                             sample's chunk is never written and reads as zeros
 *   attributes on the tensor: encoder (string), config_hash (string)
 * Object modification times are not recorded, so the same samples written in
 * the same order give a byte-identical file.
 * ===========================================================================
 *
 * The writer builds the file under "<path>.tmp.<pid>" and only m2u_shard_close()
 * fsyncs it and renames it to <path>: a process killed mid-shard leaves a temp
 * file, never a `shard-*.h5`.  A reader opened on a file that is truncated, not
 * HDF5, missing a column or holding a column of the wrong type or shape is
 * refused with a message naming the file and the column.
 *
 * Threads: a writer or reader object must be used by one thread at a time
 * (HDF5 serializes calls internally); use one reader per thread. */
#ifndef M2U_SHARD_H
#define M2U_SHARD_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

#define M2U_SHARD_SCHEMA_VERSION 1
#define M2U_SHARD_MAX_TENSORS 16
#define M2U_SHARD_MAX_RANK 6 /* per-sample dims of a tensor column */
#define M2U_SHARD_MAX_ATTRS 256

typedef enum {
    M2U_TEXT_ID = 0,
    M2U_TEXT_SOURCE,      /* path or URL of the source media */
    M2U_TEXT_LICENCE,
    M2U_TEXT_ATTRIBUTION,
    M2U_TEXT_SPLIT,       /* "", "train", "valid", "test" */
    M2U_TEXT_KIND,        /* "", "mucaps", "musicqa", "muedit", "muimage", "muvideo" */
    M2U_TEXT_CAPTION,
    M2U_TEXT_INSTRUCTION, /* also the question of a MusicQA pair */
    M2U_TEXT_ANSWER,
    M2U_TEXT_INPUT_TEXT,
    M2U_TEXT_OUTPUT_TEXT,
    M2U_TEXT_ANALYSIS,    /* JSON object */
    M2U_TEXT_COUNT
} m2u_text_col;

/* Column name of a text field ("caption", ...); NULL if out of range. */
const char *m2u_text_col_name(m2u_text_col c);

/* One tensor column. dtype M2U_F16 -> /features/<name>, M2U_U8 -> /media/<name>. */
typedef struct {
    const char *name;        /* [A-Za-z0-9_]+, unique within the shard */
    m2u_dtype dtype;         /* M2U_F16 or M2U_U8 */
    int rank;                /* per-sample rank, 1..M2U_SHARD_MAX_RANK */
    int64_t dims[M2U_SHARD_MAX_RANK];
    const char *encoder;     /* e.g. "m-a-p/MERT-v1-330M"; NULL = "" */
    const char *config_hash; /* hash of the encoder's resolved config; NULL = "" */
} m2u_shard_tensor_spec;

typedef struct {
    int audio_rate;          /* > 0: /audio present at this rate; 0: no audio columns */
    int target_audio;        /* nonzero: /target_audio present (needs audio_rate > 0) */
    int n_attrs;             /* K columns of /attrs */
    const char *const *attr_names;
    int n_tensors;
    const m2u_shard_tensor_spec *tensors;
    int zstd_level;          /* 0 = 3 */
    int shuffle;             /* nonzero: shuffle filter before zstd on numeric columns */
} m2u_shard_spec;

/* What the writer takes for one sample.  Pointers are borrowed for the call. */
typedef struct {
    const char *text[M2U_TEXT_COUNT]; /* NUL-terminated UTF-8; NULL = "" */
    double clip_start, clip_end;      /* seconds; NaN = unknown */
    const int16_t *audio;             /* audio_len samples at spec.audio_rate */
    size_t audio_len;
    const int16_t *target_audio;
    size_t target_audio_len;
    const float *attrs;               /* spec.n_attrs values; NULL = all NaN */
    /* Per tensor column, in spec order: NULL = absent for this sample.  F16
     * columns take float32 values (rounded to nearest-even float16 here);
     * U8 columns take uint8 values.  Element count = product of dims. */
    const void *tensor[M2U_SHARD_MAX_TENSORS];
} m2u_shard_sample;

/* ---- writer ---- */
typedef struct m2u_shard_writer m2u_shard_writer;

/* Start a shard that will appear at `path` when closed.  The spec is copied. */
int m2u_shard_create(const char *path, const m2u_shard_spec *spec, m2u_shard_writer **out);
int m2u_shard_append(m2u_shard_writer *w, const m2u_shard_sample *s);
int64_t m2u_shard_writer_count(const m2u_shard_writer *w);
/* Flush, close, fsync, rename to the final path, fsync the directory, free w.
 * On failure the temp file is removed and w is freed all the same. */
int m2u_shard_close(m2u_shard_writer *w);
/* Give up: close and remove the temp file, free w. */
void m2u_shard_abort(m2u_shard_writer *w);

/* ---- reader ---- */
typedef struct m2u_shard_reader m2u_shard_reader;

typedef struct {
    char name[64];
    m2u_dtype dtype;         /* M2U_F16 or M2U_U8 */
    int rank;
    int64_t dims[M2U_SHARD_MAX_RANK];
    size_t numel;            /* elements per sample */
    char encoder[256];
    char config_hash[128];
} m2u_shard_tensor_info;

int m2u_shard_open(const char *path, m2u_shard_reader **out);
void m2u_shard_reader_close(m2u_shard_reader *r);
const char *m2u_shard_path(const m2u_shard_reader *r);
int64_t m2u_shard_count(const m2u_shard_reader *r);
int m2u_shard_audio_rate(const m2u_shard_reader *r);
int m2u_shard_has_target_audio(const m2u_shard_reader *r);

/* Text of sample i: *s is malloc'ed and NUL-terminated (caller frees); *len may be NULL. */
int m2u_shard_get_text(m2u_shard_reader *r, m2u_text_col c, int64_t i, char **s, size_t *len);
/* Length in bytes of a text value without reading it. */
int m2u_shard_text_len(const m2u_shard_reader *r, m2u_text_col c, int64_t i, size_t *len);

/* A whole text column in one read (for filtering by split or kind, or a
 * dataset card): *data is malloc'ed (caller frees, NUL-terminated after the
 * last byte), *offsets is borrowed from the reader (N+1 entries). */
int m2u_shard_text_column(m2u_shard_reader *r, m2u_text_col c, char **data, size_t *nbytes,
                          const int64_t **offsets);

/* Audio of sample i (target = 0: /audio, 1: /target_audio). */
int m2u_shard_audio_len(const m2u_shard_reader *r, int target, int64_t i, size_t *len);
/* Into a caller buffer of cap samples (cap >= the length). */
int m2u_shard_get_audio_i16(m2u_shard_reader *r, int target, int64_t i, int16_t *dst, size_t cap);
/* As float in [-1, 1): sample / 32768. */
int m2u_shard_get_audio_f32(m2u_shard_reader *r, int target, int64_t i, float *dst, size_t cap);

int m2u_shard_get_clip(const m2u_shard_reader *r, int64_t i, double *start, double *end);
int m2u_shard_n_attrs(const m2u_shard_reader *r);
/* Name of attribute column k (borrowed from the reader). */
const char *m2u_shard_attr_name(const m2u_shard_reader *r, int k);
/* Index of the attribute column called name, or -1. */
int m2u_shard_attr_index(const m2u_shard_reader *r, const char *name);
/* All K attributes of sample i into dst[K]. */
int m2u_shard_get_attrs(const m2u_shard_reader *r, int64_t i, float *dst);

int m2u_shard_n_tensors(const m2u_shard_reader *r);
const m2u_shard_tensor_info *m2u_shard_tensor(const m2u_shard_reader *r, int t);
/* Index of the tensor column called name, or -1. */
int m2u_shard_tensor_index(const m2u_shard_reader *r, const char *name);
/* 1 if sample i has tensor t, 0 if not, -1 on error. */
int m2u_shard_tensor_present(const m2u_shard_reader *r, int t, int64_t i);
/* Tensor t of sample i as float32 (F16 widened, U8 as 0..255) into dst[cap], cap >= numel. */
int m2u_shard_get_tensor_f32(m2u_shard_reader *r, int t, int64_t i, float *dst, size_t cap);
/* Stored bytes (float16 bits or uint8) into dst[cap_bytes]. */
int m2u_shard_get_tensor_raw(m2u_shard_reader *r, int t, int64_t i, void *dst, size_t cap_bytes);
/* Tensor t of the n consecutive samples i0 .. i0+n-1 (one HDF5 read for all of
 * them) as float32 into dst[cap], cap >= n * numel: sample i0+k at dst + k * numel;
 * an absent sample's row is zeros (m2u_shard_tensor_present tells which). */
int m2u_shard_get_tensors_f32(m2u_shard_reader *r, int t, int64_t i0, int64_t n, float *dst, size_t cap);

/* ---- whole sample ---- */
/* Everything except tensors, owned by the struct (free with m2u_sample_free). */
typedef struct {
    char *text[M2U_TEXT_COUNT];
    size_t text_len[M2U_TEXT_COUNT];
    double clip_start, clip_end;
    int audio_rate;
    int16_t *audio;              /* NULL when the shard has no audio */
    size_t audio_len;
    int16_t *target_audio;       /* NULL when the shard has no target audio */
    size_t target_audio_len;
    float *attrs;                /* n_attrs values, NULL when none */
    int n_attrs;
} m2u_sample;

int m2u_shard_get_sample(m2u_shard_reader *r, int64_t i, m2u_sample *out);
/* The n consecutive samples i0 .. i0+n-1 (n >= 1) into out[0..n-1], equal to n
 * m2u_shard_get_sample calls but with one HDF5 read per text column for all of
 * them (audio, large, is read into each sample's buffer directly) -- for
 * sequential scans: a batch of rows, a data loader's prefetch.  A range
 * outside the shard is refused before out is touched; on a later failure every
 * out[k] is left freed and zeroed.  Each out[k] is freed with m2u_sample_free. */
int m2u_shard_get_samples(m2u_shard_reader *r, int64_t i0, int64_t n, m2u_sample *out);
void m2u_sample_free(m2u_sample *s);

#endif
