/* FAD on VGGish embeddings as fad_pytorch 0.0.6 (see fad_vggish.h). */
#include "fad_vggish.h"

#include "backend.h"
#include "decode.h"
#include "distribution_metrics.h"
#include "fileio.h"
#include "m2u_error.h"
#include "sha256.h"
#include "sinc_resample.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- files: aeiou get_audio_filenames ---- */

typedef struct {
    char **v;
    size_t n, cap;
} path_list;

static int audio_ext(const char *name) {
    static const char *const ext[] = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0; /* os.path.splitext: a leading dot is not an extension */
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i])) return 1;
    return 0;
}

static int walk(path_list *l, const char *dir, int depth) {
    if (depth > 64) return m2u_fail("%s: folders nested more than 64 deep", dir);
    DIR *dp = opendir(dir);
    if (!dp) return m2u_fail("%s: cannot list folder: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = m2u_path_join(dir, de->d_name);
        struct stat sb;
        if (!p) rc = m2u_fail("out of memory");
        else if (stat(p, &sb) != 0) { /* dangling link: os.scandir's is_file() is False too */
        } else if (S_ISDIR(sb.st_mode)) rc = walk(l, p, depth + 1);
        else if (S_ISREG(sb.st_mode) && audio_ext(de->d_name)) {
            if (l->n == l->cap) {
                size_t nc = l->cap ? 2 * l->cap : 64;
                char **v = realloc(l->v, nc * sizeof *v);
                if (!v) rc = m2u_fail("out of memory");
                else l->v = v, l->cap = nc;
            }
            if (!rc) l->v[l->n++] = p, p = NULL;
        }
        free(p);
    }
    closedir(dp);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void paths_free(path_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- front end ---- */

int m2u_fad_vggish_prepare(const float *pcm, long n, int channels, int rate, float *mono, int *cropped, int *silent) {
    if (channels < 1 || n < 0) return m2u_fail("fad front end: %d channels, %ld frames", channels, n);
    int nch = channels < 2 ? channels : 2; /* aeiou Stereo: first two channels */
    m2u_sinc_resampler rs;
    if (m2u_sinc_resampler_init(&rs, rate, M2U_VGGISH_RATE)) return -1;
    float *x = malloc(((size_t)n + 1) * sizeof *x), *y = malloc((size_t)M2U_FAD_SAMPLE_SIZE * 2 * sizeof *y);
    if (!x || !y) {
        free(x), free(y), m2u_sinc_resampler_free(&rs);
        return m2u_fail("fad front end: out of memory (%ld frames)", n);
    }
    int64_t len = m2u_sinc_resampled_length(&rs, n);
    int64_t keep = len < M2U_FAD_SAMPLE_SIZE ? len : M2U_FAD_SAMPLE_SIZE;
    for (int c = 0; c < nch; c++) {
        float *yc = y + (size_t)c * M2U_FAD_SAMPLE_SIZE;
        for (long i = 0; i < n; i++) x[i] = pcm[(size_t)i * channels + c];
        m2u_sinc_resample(&rs, x, n, yc, keep); /* PadCrop at start 0 */
        for (int64_t i = keep; i < M2U_FAD_SAMPLE_SIZE; i++) yc[i] = 0.0f;
        for (int64_t i = 0; i < M2U_FAD_SAMPLE_SIZE; i++) yc[i] = yc[i] < -1.0f ? -1.0f : yc[i] > 1.0f ? 1.0f : yc[i];
    }
    float peak = 0;
    for (int64_t i = 0; i < M2U_FAD_SAMPLE_SIZE; i++) {
        /* mono is duplicated to two channels, whose mean is the channel itself */
        float v = nch == 2 ? (y[i] + y[M2U_FAD_SAMPLE_SIZE + i]) * 0.5f : y[i];
        mono[i] = v;
        for (int c = 0; c < nch; c++) peak = fabsf(y[(size_t)c * M2U_FAD_SAMPLE_SIZE + i]) > peak ? fabsf(y[(size_t)c * M2U_FAD_SAMPLE_SIZE + i]) : peak;
    }
    if (cropped) *cropped = len > M2U_FAD_SAMPLE_SIZE;
    if (silent) *silent = !(20 * log10(peak) >= -60); /* aeiou is_silence: dB of the peak < -60 */
    free(x), free(y), m2u_sinc_resampler_free(&rs);
    return 0;
}

/* 2^18 samples at 16 kHz plus a margin that covers any resampler's look-ahead (< 1 s + its width) */
#define DECODE_MAX_S (M2U_FAD_SAMPLE_SIZE / (double)M2U_VGGISH_RATE + 1.1)

/* One file's ten chunks through VGGish's convolutions into feat + (f - first) * chunks * fc_in;
 * done[f] = 0 when it cannot be decoded (counted as skipped, as fad_pytorch skips it),
 * counts[2f], [2f + 1]: cropped, silent.  The fully connected head runs afterwards on a whole
 * group of files at once (m2u_vggish_head: its 200 MB first weight is read once per group,
 * not once per file). */
typedef struct {
    const m2u_vggish *m;
    const char *const *paths;
    float *feat;
    int first;
    char *done;
    int *counts;
} embed_job;

/* files per group: 640 example rows, 31 MB of features */
#define FAD_GROUP 64

static int embed_file(void *ctx, int i) {
    const embed_job *j = ctx;
    int f = j->first + i;
    size_t ex = (size_t)M2U_VGGISH_FRAMES * M2U_VGGISH_BANDS, fc_in = (size_t)m2u_vggish_config_of(j->m)->fc_in;
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info info;
    m2u_audio_opts o = {.max_s = DECODE_MAX_S, .keep_channels = 2};
    if (m2u_audio_decode_ex(j->paths[f], 0, &o, &pcm, &n, &info)) {
        free(pcm);
        return 0;
    }
    float *mono = malloc((size_t)M2U_FAD_SAMPLE_SIZE * sizeof *mono);
    float *examples = malloc(M2U_FAD_CHUNKS * ex * sizeof *examples);
    int rc = 0, cropped = 0, silent = 0;
    if (!mono || !examples) rc = m2u_fail("out of memory");
    if (!rc) rc = m2u_fad_vggish_prepare(pcm, (long)(n / info.out_channels), info.out_channels, info.src_rate, mono,
                                         &cropped, &silent);
    free(pcm);
    for (int k = 0; k < M2U_FAD_CHUNKS && !rc; k++) {
        if (m2u_vggish_n_examples(M2U_FAD_HOP) != 1) rc = m2u_fail("internal: a chunk is not one VGGish example");
        else rc = m2u_vggish_log_mel(mono + (size_t)k * M2U_FAD_HOP, M2U_FAD_HOP, examples + k * ex);
    }
    if (!rc) rc = m2u_vggish_features(j->m, examples, M2U_FAD_CHUNKS, j->feat + (size_t)i * M2U_FAD_CHUNKS * fc_in);
    if (!rc) j->done[f] = 1, j->counts[2 * f] = cropped, j->counts[2 * f + 1] = silent;
    free(mono), free(examples);
    if (rc) m2u_fail_prefix("%s: ", j->paths[f]);
    return rc;
}

/* Files [first, first + n): their features side by side, one file per thread (backend.h), then
 * the head on the decoded ones' rows together, into rows + f * chunks * dim. */
static int embed_group(embed_job *j, int n, float *emb, double *rows, size_t dim) {
    size_t fc_in = (size_t)m2u_vggish_config_of(j->m)->fc_in, per = M2U_FAD_CHUNKS * fc_in;
    if (m2u_parallel_items(n, embed_file, j)) return -1;
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (j->done[j->first + i]) {
            if (kept != i) memmove(j->feat + (size_t)kept * per, j->feat + (size_t)i * per, per * sizeof(float));
            kept++;
        }
    if (m2u_vggish_head(j->m, j->feat, kept * M2U_FAD_CHUNKS, emb)) return -1;
    kept = 0;
    for (int i = 0; i < n; i++)
        if (j->done[j->first + i]) {
            const float *src = emb + (size_t)kept++ * M2U_FAD_CHUNKS * dim;
            double *dst = rows + (size_t)(j->first + i) * M2U_FAD_CHUNKS * dim;
            for (size_t k = 0; k < M2U_FAD_CHUNKS * dim; k++) dst[k] = src[k];
        }
    return 0;
}

int m2u_fad_vggish_embed_dir(const m2u_vggish *m, const char *dir, m2u_audio_embeddings *out,
                             m2u_fad_vggish_counts *counts) {
    memset(out, 0, sizeof *out);
    memset(counts, 0, sizeof *counts);
    if (!m2u_is_dir(dir)) return m2u_fail("%s: not a folder", dir);
    path_list files = {0};
    if (walk(&files, dir, 0)) {
        paths_free(&files);
        return -1;
    }
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    int rc = 0;
    const m2u_vggish_config *cfg = m2u_vggish_config_of(m);
    size_t dim = (size_t)cfg->dim, per = M2U_FAD_CHUNKS * dim;
    out->dim = dim;
    snprintf(out->encoder, sizeof out->encoder, "vggish");
    if (files.n > (size_t)INT_MAX) rc = m2u_fail("%s: %zu files are too many", dir, files.n);
    size_t group = files.n < FAD_GROUP ? (files.n ? files.n : 1) : FAD_GROUP;
    embed_job job = {m, (const char *const *)files.v, malloc(group * M2U_FAD_CHUNKS * (size_t)cfg->fc_in * sizeof(float)),
                     0, calloc(files.n ? files.n : 1, sizeof *job.done),
                     calloc(files.n ? files.n : 1, 2 * sizeof *job.counts)};
    float *emb = malloc(group * per * sizeof *emb);
    if (!rc && (!job.feat || !emb || !job.done || !job.counts ||
                !(out->rows = malloc((files.n ? files.n : 1) * per * sizeof *out->rows))))
        rc = m2u_fail("out of memory (%zu files)", files.n);
    if (!rc && files.n == 0) rc = m2u_fail("%s: no .wav .flac .ogg .aiff .aif .mp3 file", dir);
    for (size_t g = 0; !rc && g < files.n; g += group) {
        job.first = (int)g;
        rc = embed_group(&job, (int)(files.n - g < group ? files.n - g : group), emb, out->rows, dim);
    }
    free(job.feat), free(emb);
    /* then in file order: the decoded ones' rows packed, the undecodable ones counted */
    for (size_t f = 0; !rc && f < files.n; f++) {
        out->files++;
        if (!job.done[f]) {
            out->files_skipped++;
            continue;
        }
        counts->cropped += job.counts[2 * f], counts->silent += job.counts[2 * f + 1];
        memmove(out->rows + out->n * dim, out->rows + f * per, per * sizeof *out->rows);
        out->n += M2U_FAD_CHUNKS;
    }
    free(job.done), free(job.counts);
    paths_free(&files);
    if (!rc && out->n == 0) rc = m2u_fail("%s: none of the %ld audio files could be decoded", dir, out->files);
    if (rc) m2u_audio_embeddings_free(out);
    return rc;
}

void m2u_fad_vggish_result_free(m2u_fad_vggish_result *res) {
    m2u_audio_embeddings_free(&res->e[0]);
    m2u_audio_embeddings_free(&res->e[1]);
}

int m2u_fad_vggish(const char *ckpt, const char *ref, const char *gen, m2u_fad_vggish_result *res) {
    memset(res, 0, sizeof *res);
    if (m2u_sha256_file(ckpt, res->sha256)) return m2u_fail_prefix("--vggish %s: ", ckpt);
    m2u_vggish *m = NULL;
    if (m2u_vggish_load(ckpt, &m)) return -1;
    res->config = *m2u_vggish_config_of(m);
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) rc = m2u_fad_vggish_embed_dir(m, k ? gen : ref, &res->e[k], &res->counts[k]);
    m2u_vggish_free(m);
    float *a = NULL, *b = NULL;
    if (!rc) {
        a = malloc(res->e[0].n * res->e[0].dim * sizeof *a), b = malloc(res->e[1].n * res->e[1].dim * sizeof *b);
        if (!a || !b) rc = m2u_fail("out of memory");
    }
    for (size_t i = 0; !rc && i < res->e[0].n * res->e[0].dim; i++) a[i] = (float)res->e[0].rows[i];
    for (size_t i = 0; !rc && i < res->e[1].n * res->e[1].dim; i++) b[i] = (float)res->e[1].rows[i];
    if (!rc)
        rc = m2u_frechet_distance_ns(a, res->e[0].n, b, res->e[1].n, res->e[0].dim, M2U_FAD_NS_ITERS, &res->fad);
    free(a), free(b);
    if (rc) m2u_fad_vggish_result_free(res);
    return rc;
}

char *m2u_fad_vggish_report(const m2u_fad_vggish_result *res, const char *ckpt, const char *ref, const char *gen) {
    cJSON *rep = cJSON_CreateObject(), *set = cJSON_CreateObject(), *net = cJSON_CreateObject();
    if (!rep || !set || !net) {
        cJSON_Delete(rep), cJSON_Delete(set), cJSON_Delete(net);
        m2u_fail("out of memory");
        return NULL;
    }
    cJSON_AddStringToObject(rep, "command", "fad");
    cJSON_AddStringToObject(rep, "ref", ref);
    cJSON_AddStringToObject(rep, "gen", gen);
    cJSON_AddStringToObject(rep, "embedding", "vggish");
    cJSON_AddStringToObject(rep, "checkpoint", ckpt);
    cJSON_AddStringToObject(rep, "checkpoint_sha256", res->sha256);
    cJSON_AddNumberToObject(rep, "dim", (double)res->e[0].dim);
    cJSON_AddNumberToObject(rep, "ref_files", (double)res->e[0].files);
    cJSON_AddNumberToObject(rep, "gen_files", (double)res->e[1].files);
    cJSON_AddNumberToObject(rep, "ref_clips", (double)res->e[0].n);
    cJSON_AddNumberToObject(rep, "gen_clips", (double)res->e[1].n);
    cJSON_AddNumberToObject(rep, "ref_files_skipped", (double)res->e[0].files_skipped);
    cJSON_AddNumberToObject(rep, "gen_files_skipped", (double)res->e[1].files_skipped);
    cJSON_AddNumberToObject(rep, "ref_files_cropped", (double)res->counts[0].cropped);
    cJSON_AddNumberToObject(rep, "gen_files_cropped", (double)res->counts[1].cropped);
    cJSON_AddNumberToObject(rep, "ref_files_silent", (double)res->counts[0].silent);
    cJSON_AddNumberToObject(rep, "gen_files_silent", (double)res->counts[1].silent);
    cJSON_AddNumberToObject(rep, "frechet_distance", res->fad);
    int conv[6];
    for (int i = 0; i < 6; i++) conv[i] = res->config.conv[i];
    cJSON_AddItemToObject(net, "conv_channels", cJSON_CreateIntArray(conv, 6));
    cJSON_AddNumberToObject(net, "fc_in", res->config.fc_in);
    cJSON_AddNumberToObject(net, "fc1", res->config.fc1);
    cJSON_AddNumberToObject(net, "fc2", res->config.fc2);
    cJSON_AddNumberToObject(net, "parameters", (double)res->config.n_params);
    cJSON_AddItemToObject(rep, "network", net);
    cJSON_AddStringToObject(set, "reference", "fad_pytorch 0.0.6: fad_embed vggish + fad_score (method maji)");
    cJSON_AddStringToObject(set, "vggish", "harritaylor/torchvggish f3f9096, postprocess off, final ReLU removed");
    cJSON_AddStringToObject(set, "files", "*.wav *.flac *.ogg *.aiff *.aif *.mp3, recursive, sorted");
    cJSON_AddStringToObject(set, "resampler", "torchaudio Resample sinc_interp_hann, width 6, rolloff 0.99");
    cJSON_AddNumberToObject(set, "sample_rate", M2U_VGGISH_RATE);
    cJSON_AddNumberToObject(set, "sample_size", M2U_FAD_SAMPLE_SIZE);
    cJSON_AddStringToObject(set, "crop", "start 0 (the reference: a random start); shorter files zero-padded");
    cJSON_AddStringToObject(set, "channels", "first two (mono duplicated), clamped to [-1, 1], averaged");
    cJSON_AddNumberToObject(set, "chunks_per_file", M2U_FAD_CHUNKS);
    cJSON_AddNumberToObject(set, "chunk_samples", M2U_FAD_HOP);
    cJSON_AddStringToObject(set, "silent_crops", "kept (the reference substitutes random other files)");
    cJSON_AddStringToObject(set, "undecodable_files", "skipped (the reference substitutes random other files)");
    cJSON_AddStringToObject(set, "sqrtm", "coupled Newton-Schulz, float32");
    cJSON_AddNumberToObject(set, "sqrtm_iterations", M2U_FAD_NS_ITERS);
    cJSON_AddItemToObject(rep, "settings", set);
    char *txt = cJSON_Print(rep);
    cJSON_Delete(rep);
    if (!txt) m2u_fail("out of memory");
    return txt;
}
