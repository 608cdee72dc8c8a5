/* The list of media files a dataset build reads: from folders (recursive),
 * glob(3) patterns, or a JSON-lines manifest, in one deterministic order.
 *
 * Stable id: 16 hex digits, the first 64 bits of
 *     SHA-256("m2u-input-v1\n" + rel + "\n" + decimal size in bytes)
 * where `rel` is the file's path relative to its root, '/'-separated, with no
 * "./" or "//":
 *   - folder "/x/music": rel = "music/a/b.ogg" (the root folder's own name is
 *     kept, so two folders listed side by side rarely collide);
 *   - glob "/x/music/<star>.ogg": the root is the longest wildcard-free folder
 *     prefix ("/x/music"), rel as for a folder;
 *   - manifest "/x/music/list.jsonl": rel = "music/" + the "path" field as
 *     written (paths are relative to the manifest's folder), so a file gets
 *     the same id from the manifest and from listing its folder; a manifest
 *     may also give an explicit "id".
 * So the id is the same on any machine and under any mount point, for the
 * same tree; it changes when a file is re-encoded (its size changes), which
 * is what resuming a build needs.  An absolute manifest path outside the
 * manifest's folder is hashed as written (not portable; give "id").
 * Two different files with the same id are an error.
 *
 * Order: m2u_inputs_finish() sorts by rel (bytewise), then id; the same
 * inputs give the same order on every machine and for any number of ranks.
 *
 * Licence: every entry needs one.  A manifest line without "licence" (or
 * "license"), or with "", "unknown" or "?", takes opts.default_licence; when
 * the caller gave none the listing fails naming the file and line.  Folders and
 * globs have no per-file licence, so they need opts.default_licence too. */
#ifndef M2U_INPUTS_H
#define M2U_INPUTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    M2U_KIND_UNKNOWN = 0,
    M2U_KIND_AUDIO = 1,
    M2U_KIND_IMAGE = 2,
    M2U_KIND_VIDEO = 4,
} m2u_media_kind;
#define M2U_KIND_ALL (M2U_KIND_AUDIO | M2U_KIND_IMAGE | M2U_KIND_VIDEO)

typedef struct {
    char *path;   /* to open: as given / joined with the root (relative to the cwd or absolute) */
    char *rel;    /* root-relative path the id is made from */
    char id[17];  /* 16 lowercase hex digits (or the manifest's own id, up to 16 chars) */
    int kind;     /* m2u_media_kind; from the manifest's "kind" or the extension */
    int64_t size; /* bytes; -1 when the file is missing (the build records it as cannot-open) */
    char *licence, *attribution, *source;
    char *origin; /* "dir:<root>", "glob:<pattern>" or "<manifest>:<line>", for messages */
    size_t order; /* position in the order added: the first listing of a file wins */
} m2u_input;

typedef struct {
    m2u_input *items;
    size_t n, cap;
} m2u_input_list;

typedef struct {
    int kinds;                      /* mask of m2u_media_kind to keep; 0 = M2U_KIND_ALL */
    const char *default_licence;    /* NULL: a missing licence is an error */
    const char *default_attribution; /* NULL: "" */
    const char *default_source;     /* NULL: "" */
    int include_hidden;             /* 1: also list ".name" files and folders */
    int strict;                     /* 1: a named input that does not exist (or a pattern that
                                       matches nothing) is an error; 0: it is listed with size -1,
                                       so the build records it as unusable and goes on */
} m2u_input_opts;

/* Kind from the file name's extension (case-insensitive); M2U_KIND_UNKNOWN otherwise.
 * audio: wav flac mp3 ogg oga opus m4a aac wma aif aiff aifc mka wv ape mpc ac3 tta caf au w64 spx it s3m xm mod
 *        mid midi kar (Standard MIDI Files: the build renders them, midi_render.h)
 * image: png jpg jpeg webp bmp gif tif tiff ppm pgm tga
 * video: mp4 m4v mkv webm mov avi mpg mpeg ogv flv wmv ts 3gp */
int m2u_media_kind_of(const char *path);
/* "audio", "image", "video", "unknown". */
const char *m2u_media_kind_name(int kind);

/* Add every file under dir (recursively; symbolic links to files are
 * followed, to folders are not, so loops cannot happen) whose extension is of
 * a wanted kind.  Other files are ignored.  A dangling symbolic link with a
 * wanted extension is listed with size -1 (the build records it as unusable
 * rather than losing it without a word). */
int m2u_inputs_add_dir(m2u_input_list *l, const char *dir, const m2u_input_opts *opts);
/* Add the files a glob(3) pattern matches (folders matched are walked as by
 * add_dir; dangling links as there).  A pattern matching nothing is an error
 * (a likely typo) under opts.strict, else listed with size -1 under the
 * pattern itself, so the build records it and goes on. */
int m2u_inputs_add_glob(m2u_input_list *l, const char *pattern, const m2u_input_opts *opts);
/* Add a JSON-lines manifest: one object per line with "path" (required;
 * relative to the manifest's folder), "licence"/"license", "attribution",
 * "source", optional "kind" ("audio"/"image"/"video") and "id" (1-16 of
 * [A-Za-z0-9._-]).  Blank lines are skipped; anything else malformed fails
 * with "<manifest>:<line>: <problem>".  Entries of an unwanted known kind are
 * skipped; entries of unknown kind are kept (the decoder will judge them). */
int m2u_inputs_add_manifest(m2u_input_list *l, const char *jsonl_path, const m2u_input_opts *opts);
/* Dispatch on the spec: a folder, a *.jsonl / *.ndjson manifest, a pattern
 * with * ? or [, or else a single file (its folder is its root).  A spec
 * that does not exist fails under opts.strict; otherwise it is listed with
 * size -1 (recorded as cannot-open by the build, which goes on). */
int m2u_inputs_add(m2u_input_list *l, const char *spec, const m2u_input_opts *opts);
/* Sort into the canonical order and merge duplicates: the same file (same
 * device and inode) reached twice keeps its first listing in the order the
 * inputs were added, whatever its ids; an id shared by two different files is
 * an error. */
int m2u_inputs_finish(m2u_input_list *l);
void m2u_inputs_free(m2u_input_list *l);

#endif
