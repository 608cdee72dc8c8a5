/* Dataset manifest (JSON) and the trainer-facing dataset reader.
 *
 * manifest.json, written atomically next to the shards:
 *   {
 *     "format": "m2u-dataset-manifest", "manifest_version": 1,
 *     "tool": "m2u", "tool_version": "0.1.0", "created": "2024-05-01T12:00:00Z",
 *     "shard_schema_version": 1,
 *     "total": 12345,                       sum of the shard counts
 *     "shards": [ {"path": "shard-00000.h5",  relative to the manifest's folder
 *                  "count": 1000, "bytes": 73400320, "sha256": "<64 hex>",
 *                  "xxh128": "<32 hex>"}, ... ],    XXH3-128 as xxh128sum prints it;
 *                                        optional (absent in manifests before it)
 *     "config": { ... }                     the builder's resolved configuration
 *   }
 * Shards keep the order they were added in; global sample i is sample
 * i - start(s) of the shard s whose [start, start+count) holds i.
 *
 * The dataset reader checks on open that every shard exists with the size
 * the manifest records, and, unless told not to, hashes each shard the first
 * time it is opened and refuses it when the hash differs from the
 * manifest's: a shard damaged after it was written (its HDF5 metadata
 * included, which libhdf5 itself does not check and can crash on) is an error
 * naming the file before any byte of it reaches HDF5.  The hash is the
 * xxh128 where the manifest records one (XXH3-128: any accidental change is
 * caught, at ~9 GB/s with the file read; the sha256, ~1.6 GB/s with SHA-NI,
 * was 43 % of reading a shard's samples once), else the sha256; the sha256
 * stays in the manifest for provenance (sha256sum) and is checked as well
 * with verify_sha256 and by `m2u-dataset verify`.  Each shard is hashed once
 * per dataset object.  It
 * keeps a bounded number of shards open (least recently used closed first;
 * a reopened shard is not hashed again), and offers a view restricted to one
 * split.  Not thread-safe: one m2u_dataset per thread. */
#ifndef M2U_MANIFEST_H
#define M2U_MANIFEST_H

#include "shard.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define M2U_MANIFEST_VERSION 1

typedef struct {
    char *path; /* relative to the manifest's folder; no "..", not absolute */
    int64_t count;
    int64_t bytes;
    char sha256[65];
    char xxh128[33]; /* "" = not recorded */
} m2u_manifest_shard;

typedef struct {
    char *tool_version; /* set by m2u_manifest_write when NULL */
    char *created;      /* ISO 8601 UTC; set by m2u_manifest_write when NULL */
    cJSON *config;      /* owned; NULL = {} */
    m2u_manifest_shard *shards;
    int n_shards, cap;
    int64_t total;
} m2u_manifest;

void m2u_manifest_init(m2u_manifest *m);
void m2u_manifest_free(m2u_manifest *m);
/* Store a deep copy of config (the caller keeps its own). */
int m2u_manifest_set_config(m2u_manifest *m, const cJSON *config);
/* One pass over a file: its sha256 and its XXH3-128 (canonical big-endian, as
 * xxh128sum prints it) as lowercase hex; either output may be NULL. */
int m2u_hash_file(const char *path, char sha256[65], char xxh128[33]);
/* Describe a finished shard: opens it for its count, sizes it and hashes it (both hashes).
 * out->path is a malloc'ed copy of rel_path (free with m2u_manifest_shard_free). */
int m2u_manifest_scan_shard(const char *dir, const char *rel_path, m2u_manifest_shard *out);
void m2u_manifest_shard_free(m2u_manifest_shard *s);
/* Append a copy of s (e.g. from m2u_manifest_scan_shard, or from the builder's own records). */
int m2u_manifest_add(m2u_manifest *m, const m2u_manifest_shard *s);
/* Write atomically (temp file, fsync, rename). */
int m2u_manifest_write(const char *path, m2u_manifest *m);
/* Parse and validate; *m is initialised here (free with m2u_manifest_free even on failure). */
int m2u_manifest_read(const char *path, m2u_manifest *m);

/* ---- dataset reader ---- */
typedef struct m2u_dataset m2u_dataset;

typedef struct {
    const char *split;   /* NULL or "": every sample; else only samples of this split */
    int no_verify;       /* nonzero: skip the hash check of each shard on its first open */
    int max_open_shards; /* 0 = 16 */
    int verify_sha256;   /* nonzero: check the sha256 as well where the manifest has an xxh128 */
} m2u_dataset_options;

/* The check the reader makes of shard sh (file `full`) before opening it:
 * its xxh128 when the manifest records one, its sha256 when it does not or
 * when `sha256` is nonzero.  A mismatch is an error naming the file, the
 * hash and manifest_path.  xxh128_out (may be NULL): the file's xxh128 from
 * the same read, recorded or not (for `m2u-dataset verify --add-xxh128`). */
int m2u_manifest_verify_shard(const char *full, const m2u_manifest_shard *sh, int sha256, const char *manifest_path,
                              char xxh128_out[33]);

/* opt may be NULL (all samples, shards verified). */
int m2u_dataset_open(const char *manifest_path, const m2u_dataset_options *opt, m2u_dataset **out);
void m2u_dataset_close(m2u_dataset *ds);
/* Samples in the view (after split filtering). */
int64_t m2u_dataset_count(const m2u_dataset *ds);
const m2u_manifest *m2u_dataset_manifest(const m2u_dataset *ds);
/* Sample i of the view -> shard number and index inside that shard. */
int m2u_dataset_locate(const m2u_dataset *ds, int64_t i, int *shard, int64_t *local);
/* The open reader of a shard; borrowed, valid until the next m2u_dataset_* call on ds. */
int m2u_dataset_shard(m2u_dataset *ds, int shard, m2u_shard_reader **r);
/* Whole sample i of the view (text, clip, audio, attrs); free with m2u_sample_free. */
int m2u_dataset_get(m2u_dataset *ds, int64_t i, m2u_sample *out);
/* Tensor column `name` of sample i as float32 into dst[cap]; *present (may be
 * NULL) tells whether the sample has it (absent ones read as zeros). */
int m2u_dataset_get_tensor_f32(m2u_dataset *ds, int64_t i, const char *name, float *dst, size_t cap,
                               int *present);

/* The order of one epoch for one rank.  A permutation of [0, count) is drawn
 * from (seed, epoch) alone (xoshiro256** + Fisher-Yates), so every rank
 * computes the same one; rank r takes the contiguous block
 * [r*per, (r+1)*per) with per = floor(count / world).  The remainder
 * (count mod world samples, different ones each epoch) is DROPPED, so every
 * rank gets the same number of steps and ranks never share a sample.
 * *idx is malloc'ed (caller frees), *n = per.  Fails when count < world. */
int m2u_dataset_epoch_order(const m2u_dataset *ds, uint64_t seed, uint64_t epoch, int rank, int world,
                            int64_t **idx, int64_t *n);

#endif
