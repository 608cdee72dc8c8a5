/* m2u-bench-dataset: how fast the dataset pipeline turns audio into shards, and
 * how fast the shards read back, each against a reference in the same run.
 *
 *   decode    m2u_audio_decode to 24 kHz mono float (the build's path) against
 *             three ffmpeg CLI runs on the same file, interleaved file by file
 *             (each with -nostdin -nostats -benchmark -v info, stderr to a file):
 *               ffmpeg -i X -f null -                                  (pure decode)
 *               ffmpeg -i X -ac 1 -ar 24000 -f f32le -                 (decode + downmix +
 *                                                                       resample: like for like;
 *                                                                       stdout read and counted)
 *               ffmpeg -i X -af aresample=24000:resampler=soxr,... -f f32le -
 *                                                                      (the same with soxr,
 *                                                                       m2u's resampler)
 *             m2u's CPU time is this process's (CLOCK_PROCESS_CPUTIME_ID, all
 *             threads) for the whole call (open, probe, decode, resample);
 *             ffmpeg's is the child's user + system time (getrusage
 *             (RUSAGE_CHILDREN) around waitpid), and also ffmpeg's own
 *             -benchmark figure, which covers only its transcode loop (no
 *             process start, library loading, probing or opening): the whole
 *             process is what a pipeline calling the CLI pays, the loop is a
 *             lower bound of ffmpeg's decoding cost.
 *   survey    what the build does per file after decoding (data/build/build.c):
 *             10 s clips (m2u_audio_clips with the build's defaults) each
 *             analysed (m2u_analyze), the chromaprint fingerprint of the first
 *             120 s, and the built-in MERT-shaped feature of each clip.  There
 *             is no ffmpeg equivalent; the rows show where the build's time goes.
 *   build     `m2u-dataset build` (one process) on the same files, once per
 *             recipe list given (--recipes mucaps --recipes all), into a fresh
 *             folder under --work; CPU time of the child and its wall time.
 *   read      every sample of the last build (text columns, audio, target
 *             audio, attrs, clip bounds and the `mert` tensor), per sample
 *             with the C reader (m2u_dataset_get + m2u_dataset_get_tensor_f32)
 *             and with h5py (eval/bench/bench_shard_h5py.py in a child process,
 *             timing its own read loop), and per batch of --read-batch
 *             consecutive samples (m2u_shard_get_samples +
 *             m2u_shard_get_tensors_f32; h5py: one slice per column for the
 *             batch), the four alternated --read-reps times; best pass of each.
 *             The C rows include the hash check of each shard on its first
 *             open (the dataset reader's default: the manifest's xxh128, its
 *             sha256 when it has none); that check is also timed alone, and
 *             so is the sha256 (what the reader checked before the xxh128).
 *             With --read MANIFEST and no FILE only these rows run.
 *
 * Audio-seconds per CPU-second = seconds of audio processed / CPU seconds
 * spent.  The numbers are reported, never asserted: this machine may be
 * shared, so the load average is printed with them. */
#include "log.h"
#include "analysis.h"
#include "build.h"
#include "builtin_features.h"
#include "decode.h"
#include "fingerprint.h"
#include "m2u_error.h"
#include "fileio.h"
#include "manifest.h"
#include "progress.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RATE 24000
#define MAX_RECIPE_RUNS 8
#define N_FF 3 /* ffmpeg variants */

extern char **environ;

static const char *const FF_NAME[N_FF] = {"ffmpeg -f null", "ffmpeg 24k mono f32le", "ffmpeg 24k mono soxr"};
static const char *const FF_KEY[N_FF] = {"ffmpeg_null", "ffmpeg_f32le", "ffmpeg_f32le_soxr"};

static void usage(FILE *f) {
    fprintf(f,
            "usage: m2u-bench-dataset [options] FILE...\n"
            "\n"
            "Audio-seconds per CPU-second of m2u's decoding, analysis and whole dataset build\n"
            "against the ffmpeg CLI on the same files in the same run, and shard reading with the\n"
            "C reader against h5py.  Prints a table; never asserts on time.\n"
            "\n"
            "options:\n"
            "  --ffmpeg PATH       ffmpeg binary (default: ffmpeg from PATH)\n"
            "  --reps N            decode + survey passes over the files (default 1)\n"
            "  --dataset PATH      the m2u-dataset binary; without it no build and no read rows\n"
            "  --recipes LIST      one build per occurrence, e.g. --recipes mucaps --recipes all\n"
            "                      (default: mucaps, then all); 'none' skips the builds\n"
            "  --licence L         licence passed to the build (default GPL-2.0-only)\n"
            "  --work DIR          where the builds go (each in a fresh subfolder; required for builds)\n"
            "  --read MANIFEST     read this dataset instead of the last build's; with no FILE,\n"
            "                      only the reading rows run (no ffmpeg, no build)\n"
            "  --read-reps N       alternated C / h5py reading passes, best kept (default 5)\n"
            "  --read-batch B      consecutive samples per batched read (default 16)\n"
            "  --python PY         interpreter with h5py (default /usr/bin/python3); 'none' skips it\n"
            "  --h5py-script PATH  eval/bench/bench_shard_h5py.py\n"
            "  --plugin-dir DIR    HDF5_PLUGIN_PATH for h5py (<build>/hdf5-plugins)\n"
            "  --tensor NAME       tensor column read with each sample (default mert)\n"
            "  --json PATH         write every number as JSON\n"
            "  -h, --help          this text\n"
            "\n"
            "example (eval/bench/bench_dataset.sh renders the files and runs this):\n"
            "  m2u-bench-dataset --dataset build/m2u-dataset --work /tmp/bd --python /usr/bin/python3 \\\n"
            "      --h5py-script eval/bench/bench_shard_h5py.py --plugin-dir build/hdf5-plugins a.flac b.ogg c.mp3\n"
            "  m2u-bench-dataset --read /tmp/bd/build-all-XXXXXX/manifest.json --python /usr/bin/python3 \\\n"
            "      --h5py-script eval/bench/bench_shard_h5py.py --plugin-dir build/hdf5-plugins\n");
}

static char *slurp(const char *path, size_t *len);
static void print_tail(const char *path, int lines);

/* ---- clocks and children ------------------------------------------------------------------------ */

static double cpu_self(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_children(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

typedef struct {
    double cpu, wall;
    long long out_bytes; /* stdout bytes when counted */
    int ok;              /* exited with status 0 */
    int code;
} child_res;

/* Run argv; stdout is counted (count_out), or goes to out_path, or to /dev/null;
 * stderr to err_path when given (else inherited).  extra_env: "NAME=VALUE" or NULL.
 * CPU = user + system of the child (and of the children it waited for). */
static int run_child(char *const argv[], const char *extra_env, int count_out, const char *out_path,
                     const char *err_path, child_res *r) {
    memset(r, 0, sizeof *r);
    int pfd[2] = {-1, -1};
    if (count_out && pipe(pfd)) return m2u_fail("pipe: %s", strerror(errno));
    /* environment for the child, built before fork */
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = malloc((ne + 2) * sizeof *envp);
    if (!envp) return m2u_fail("out of memory");
    size_t k = 0;
    size_t elen = 0;
    if (extra_env) {
        const char *eq = strchr(extra_env, '=');
        elen = eq ? (size_t)(eq - extra_env) + 1 : 0;
    }
    for (size_t e = 0; e < ne; e++)
        if (!(elen && !strncmp(environ[e], extra_env, elen))) envp[k++] = environ[e];
    if (extra_env) envp[k++] = (char *)extra_env;
    envp[k] = NULL;

    fflush(stdout);
    fflush(stderr);
    double c0 = cpu_children(), w0 = m2u_now();
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return m2u_fail("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) dup2(nul, 0);
        if (count_out) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
        } else if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) dup2(fd, 1);
        } else if (nul >= 0) {
            dup2(nul, 1);
        }
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) dup2(fd, 2);
        }
        environ = envp;
        execvp(argv[0], argv);
        fprintf(stderr, "m2u-bench-dataset: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(envp);
    if (count_out) {
        close(pfd[1]);
        static char buf[1 << 20];
        for (;;) {
            ssize_t got = read(pfd[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            r->out_bytes += got;
        }
        close(pfd[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return m2u_fail("waitpid: %s", strerror(errno));
    r->wall = m2u_now() - w0;
    r->cpu = cpu_children() - c0;
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r->ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return 0;
}

/* ---- per-file results --------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    char fmt[16];        /* file extension, lower case */
    char codec[32];
    int ok;              /* m2u decoded it */
    char reason[160];
    double src_s;        /* the container's duration (-1 unknown) */
    double audio_s;      /* decoded seconds at 24 kHz (one pass) */
    long long n_m2u, n_ff; /* samples: m2u, ffmpeg f32le */
    double m2u_cpu, m2u_wall;
    double ff_cpu[N_FF], ff_wall[N_FF];           /* whole process */
    double ff_loop_cpu[N_FF], ff_loop_wall[N_FF]; /* ffmpeg -benchmark: transcode loop only */
    int ff_ok[N_FF];
    /* survey (summed over passes) */
    long clips;
    double clip_s;       /* seconds analysed (one pass) */
    double an_cpu, an_wall, fp_cpu, fp_wall, feat_cpu, feat_wall;
} file_res;

typedef struct {
    double audio_s, cpu, wall;
} agg;

static double rate_of(double audio_s, double cpu) { return cpu > 0 ? audio_s / cpu : 0; }

static void fmt_ext(const char *path, char *dst, size_t cap) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    snprintf(dst, cap, "%s", dot ? dot + 1 : "?");
    for (char *p = dst; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
}

/* ffmpeg's stderr goes here (one run at a time) for its -benchmark line */
static char g_ff_err[4200];

/* "bench: utime=0.093s stime=0.014s rtime=0.156s" (the last one in the file) */
static int parse_ffmpeg_bench(double *cpu, double *wall) {
    char *log = slurp(g_ff_err, NULL);
    if (!log) return -1;
    char *p = log, *last = NULL;
    while ((p = strstr(p, "bench: utime=")) != NULL) last = p++;
    double u, st, rt;
    int ok = last && sscanf(last, "bench: utime=%lfs stime=%lfs rtime=%lfs", &u, &st, &rt) == 3;
    free(log);
    if (!ok) return -1;
    *cpu = u + st, *wall = rt;
    return 0;
}

static int decode_and_survey(file_res *fr, const char *ffmpeg, const m2u_build_config *bc, int pass) {
    /* m2u decode */
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info info;
    double c0 = cpu_self(), w0 = m2u_now();
    int rc = m2u_audio_decode(fr->path, RATE, &pcm, &n, &info);
    fr->m2u_cpu += cpu_self() - c0;
    fr->m2u_wall += m2u_now() - w0;
    if (rc) {
        fr->ok = 0;
        snprintf(fr->reason, sizeof fr->reason, "%s", m2u_last_error());
        return 0;
    }
    fr->ok = 1;
    fr->audio_s = (double)n / RATE;
    fr->n_m2u = n;
    fr->src_s = info.src_duration_s;
    snprintf(fr->codec, sizeof fr->codec, "%s", info.codec);

    /* ffmpeg, same file, right after */
    for (int v = 0; v < N_FF; v++) {
        char *argv[24];
        int a = 0;
        argv[a++] = (char *)ffmpeg;
        argv[a++] = "-nostdin";
        argv[a++] = "-hide_banner";
        argv[a++] = "-nostats";
        argv[a++] = "-benchmark";
        argv[a++] = "-v";
        argv[a++] = "info"; /* the -benchmark line is at info level */
        argv[a++] = "-i";
        argv[a++] = (char *)fr->path;
        if (v == 0) {
            argv[a++] = "-f";
            argv[a++] = "null";
        } else if (v == 1) {
            argv[a++] = "-ac";
            argv[a++] = "1";
            argv[a++] = "-ar";
            argv[a++] = "24000";
            argv[a++] = "-f";
            argv[a++] = "f32le";
        } else {
            argv[a++] = "-af";
            argv[a++] = "aresample=24000:resampler=soxr,aformat=sample_fmts=flt:channel_layouts=mono";
            argv[a++] = "-f";
            argv[a++] = "f32le";
        }
        argv[a++] = "-";
        argv[a] = NULL;
        child_res cr;
        FILE *ef = fopen(g_ff_err, "w");
        if (ef) fclose(ef);
        if (run_child(argv, NULL, v > 0, NULL, g_ff_err, &cr)) return -1;
        double lc = 0, lw = 0;
        if (cr.ok && parse_ffmpeg_bench(&lc, &lw)) cr.ok = 0;
        if (!cr.ok) {
            fprintf(stderr, "m2u-bench-dataset: ffmpeg (%s) on %s failed (exit %d); its log ends:\n", FF_NAME[v],
                    fr->path, cr.code);
            print_tail(g_ff_err, 5);
        }
        fr->ff_cpu[v] += cr.cpu;
        fr->ff_wall[v] += cr.wall;
        fr->ff_loop_cpu[v] += lc;
        fr->ff_loop_wall[v] += lw;
        fr->ff_ok[v] = cr.ok;
        if (v == 1) fr->n_ff = cr.out_bytes / 4;
    }

    /* survey: what data/build/build.c does with the decoded audio */
    m2u_clip *clips = NULL;
    size_t nc = 0;
    c0 = cpu_self(), w0 = m2u_now();
    if (m2u_audio_clips(pcm, n, RATE, bc->clip_s, bc->hop_s, bc->silence_db, bc->min_clip_s, &clips, &nc)) {
        free(pcm);
        return -1;
    }
    double clip_s = 0;
    for (size_t k = 0; k < nc; k++) {
        m2u_analysis an;
        if (m2u_analyze(pcm + clips[k].start, (size_t)(clips[k].end - clips[k].start), RATE, &an)) {
            free(clips), free(pcm);
            return -1;
        }
        m2u_analysis_free(&an);
        clip_s += (double)(clips[k].end - clips[k].start) / RATE;
    }
    fr->an_cpu += cpu_self() - c0;
    fr->an_wall += m2u_now() - w0;
    if (pass == 0) fr->clips = (long)nc, fr->clip_s = clip_s;

    uint32_t *fp = NULL;
    size_t fp_len = 0;
    c0 = cpu_self(), w0 = m2u_now();
    if (nc && m2u_fingerprint(pcm, (size_t)n, RATE, 120, &fp, &fp_len)) {
        free(clips), free(pcm);
        return -1;
    }
    fr->fp_cpu += cpu_self() - c0;
    fr->fp_wall += m2u_now() - w0;
    free(fp);

    static float feat[M2U_BUILTIN_MERT_ROWS * M2U_BUILTIN_MERT_DIM];
    c0 = cpu_self(), w0 = m2u_now();
    for (size_t k = 0; k < nc; k++)
        if (m2u_builtin_mert(pcm + clips[k].start, (size_t)(clips[k].end - clips[k].start), RATE, feat)) {
            free(clips), free(pcm);
            return -1;
        }
    fr->feat_cpu += cpu_self() - c0;
    fr->feat_wall += m2u_now() - w0;
    free(clips);
    free(pcm);
    return 0;
}

/* ---- builds ---------------------------------------------------------------------------------------- */

typedef struct {
    char recipes[64];
    char out[4096];
    int ok;
    double cpu, wall;
    long long samples, shard_bytes;
    int shards;
    long errors; /* lines of errors.jsonl */
} build_res;

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb, cap *= 2;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

static void print_tail(const char *path, int lines) {
    size_t len;
    char *s = slurp(path, &len);
    if (!s) return;
    size_t p = len;
    int seen = 0;
    while (p > 0 && seen <= lines)
        if (s[--p] == '\n') seen++;
    fprintf(stderr, "%s", s + p);
    free(s);
}

static int run_build(const char *dataset, const char *work, const char *licence, char **files, int n_files,
                     build_res *br) {
    if (snprintf(br->out, sizeof br->out, "%s/build-%s-XXXXXX", work, br->recipes) >= (int)sizeof br->out)
        return m2u_fail("--work %s: path too long", work);
    if (!mkdtemp(br->out)) return m2u_fail("mkdtemp %s: %s", br->out, strerror(errno));
    char log[4200];
    snprintf(log, sizeof log, "%s.log", br->out);
    char **argv = calloc((size_t)(2 * n_files + 16), sizeof *argv);
    if (!argv) return m2u_fail("out of memory");
    int a = 0;
    argv[a++] = (char *)dataset;
    argv[a++] = "build";
    for (int k = 0; k < n_files; k++) argv[a++] = "--input", argv[a++] = files[k];
    argv[a++] = "--licence";
    argv[a++] = (char *)licence;
    argv[a++] = "--attribution";
    argv[a++] = "m2u-bench-dataset";
    if (strcmp(br->recipes, "all")) argv[a++] = "--recipes", argv[a++] = br->recipes;
    argv[a++] = "--out";
    argv[a++] = br->out;
    argv[a++] = "--overwrite";
    argv[a++] = "--quiet";
    argv[a] = NULL;
    child_res cr;
    int rc = run_child(argv, NULL, 0, log, log, &cr);
    free(argv);
    if (rc) return -1;
    br->cpu = cr.cpu, br->wall = cr.wall, br->ok = cr.ok;
    if (!cr.ok) {
        fprintf(stderr, "m2u-bench-dataset: the build (--recipes %s) exited with %d; its log %s ends:\n",
                br->recipes, cr.code, log);
        print_tail(log, 15);
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", br->out);
    char *js = slurp(path, NULL);
    cJSON *m = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (m) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "total");
        if (cJSON_IsNumber(t)) br->samples = (long long)t->valuedouble;
        const cJSON *sh, *shards = cJSON_GetObjectItemCaseSensitive(m, "shards");
        cJSON_ArrayForEach(sh, shards) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(sh, "bytes");
            if (cJSON_IsNumber(b)) br->shard_bytes += (long long)b->valuedouble;
            br->shards++;
        }
        cJSON_Delete(m);
    }
    snprintf(path, sizeof path, "%s/errors.jsonl", br->out);
    char *errs = slurp(path, NULL);
    if (errs) {
        for (char *p = errs; *p; p++) br->errors += *p == '\n';
        free(errs);
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------------- */

typedef struct {
    int ok;
    int batch;                  /* samples per read (1: per sample) */
    double cpu, wall;           /* the read loop */
    double proc_cpu, proc_wall; /* whole process (h5py: interpreter start and imports included) */
    long long samples, bytes, text_bytes, audio_sum, tensors;
} read_res;

/* The audio checksum: int32 partial sums of 32768 samples (they cannot
 * overflow), vectorized like numpy's sum on the h5py side (GCC's -O2 does not
 * vectorize loops by itself; a scalar sum was ~10% of a C reading pass). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
static long long sum_i16(const int16_t *x, size_t n) {
    long long total = 0;
    for (size_t k = 0; k < n; k += 32768) {
        size_t e = n - k < 32768 ? n - k : 32768;
        int32_t part = 0;
        for (size_t j = 0; j < e; j++) part += x[k + j];
        total += part;
    }
    return total;
}

static void count_sample(const m2u_sample *s, read_res *rr) {
    for (int c = 0; c < M2U_TEXT_COUNT; c++) rr->text_bytes += (long long)s->text_len[c];
    rr->audio_sum += sum_i16(s->audio, s->audio_len) + sum_i16(s->target_audio, s->target_audio_len);
    rr->bytes += 2 * (long long)(s->audio_len + s->target_audio_len) + 4LL * s->n_attrs + 16;
}

/* Not inlined, so a profiler (callgrind) shows each reading pass on its own. */
#if defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_NOINLINE
#endif

BENCH_NOINLINE static int read_c(const char *manifest, const char *tensor, read_res *rr) {
    memset(rr, 0, sizeof *rr);
    double c0 = cpu_self(), w0 = m2u_now();
    m2u_dataset *ds;
    if (m2u_dataset_open(manifest, NULL, &ds)) return -1;
    int64_t n = m2u_dataset_count(ds);
    float *buf = NULL;
    size_t cap = 0;
    for (int64_t i = 0; i < n; i++) {
        m2u_sample s;
        if (m2u_dataset_get(ds, i, &s)) goto fail;
        count_sample(&s, rr);
        m2u_sample_free(&s);
        /* the tensor's shape from the sample's shard */
        int shard;
        int64_t local;
        m2u_shard_reader *r;
        if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r)) goto fail;
        int t = m2u_shard_tensor_index(r, tensor);
        if (t < 0) continue;
        const m2u_shard_tensor_info *ti = m2u_shard_tensor(r, t);
        if (ti->numel > cap) {
            free(buf);
            cap = ti->numel;
            buf = malloc(cap * sizeof *buf);
            if (!buf) {
                m2u_fail("out of memory");
                goto fail;
            }
        }
        int present = 0;
        if (m2u_dataset_get_tensor_f32(ds, i, tensor, buf, cap, &present)) goto fail;
        if (present) {
            rr->tensors++;
            rr->bytes += (long long)ti->numel * (ti->dtype == M2U_F16 ? 2 : 1);
        }
    }
    free(buf);
    m2u_dataset_close(ds);
    rr->bytes += rr->text_bytes;
    rr->samples = n;
    rr->cpu = rr->proc_cpu = cpu_self() - c0;
    rr->wall = rr->proc_wall = m2u_now() - w0;
    rr->batch = 1;
    rr->ok = 1;
    return 0;
fail:
    free(buf);
    m2u_dataset_close(ds);
    return -1;
}

/* The same data as read_c, shard by shard, `batch` consecutive samples per
 * read: m2u_shard_get_samples (one hyperslab per column for the batch) and
 * m2u_shard_get_tensors_f32 (the batch's tensor rows in one read). */
BENCH_NOINLINE static int read_c_batch(const char *manifest, const char *tensor, int batch, read_res *rr) {
    memset(rr, 0, sizeof *rr);
    double c0 = cpu_self(), w0 = m2u_now();
    m2u_dataset *ds;
    if (m2u_dataset_open(manifest, NULL, &ds)) return -1;
    m2u_sample *s = calloc((size_t)batch, sizeof *s);
    float *buf = NULL;
    size_t cap = 0;
    if (!s) {
        m2u_dataset_close(ds);
        return m2u_fail("out of memory");
    }
    for (int sh = 0; sh < m2u_dataset_manifest(ds)->n_shards; sh++) {
        m2u_shard_reader *r;
        if (m2u_dataset_shard(ds, sh, &r)) goto fail;
        int64_t n = m2u_shard_count(r);
        int t = m2u_shard_tensor_index(r, tensor);
        const m2u_shard_tensor_info *ti = t >= 0 ? m2u_shard_tensor(r, t) : NULL;
        if (ti && ti->numel * (size_t)batch > cap) {
            free(buf);
            cap = ti->numel * (size_t)batch;
            if (!(buf = malloc(cap * sizeof *buf))) {
                m2u_fail("out of memory");
                goto fail;
            }
        }
        for (int64_t i0 = 0; i0 < n; i0 += batch) {
            int64_t k = n - i0 < batch ? n - i0 : batch;
            if (m2u_shard_get_samples(r, i0, k, s)) goto fail;
            for (int64_t j = 0; j < k; j++) {
                count_sample(&s[j], rr);
                m2u_sample_free(&s[j]);
            }
            if (!ti) continue;
            if (m2u_shard_get_tensors_f32(r, t, i0, k, buf, cap)) goto fail;
            for (int64_t j = 0; j < k; j++)
                if (m2u_shard_tensor_present(r, t, i0 + j) == 1) {
                    rr->tensors++;
                    rr->bytes += (long long)ti->numel * (ti->dtype == M2U_F16 ? 2 : 1);
                }
        }
        rr->samples += n;
    }
    free(buf);
    free(s);
    m2u_dataset_close(ds);
    rr->bytes += rr->text_bytes;
    rr->cpu = rr->proc_cpu = cpu_self() - c0;
    rr->wall = rr->proc_wall = m2u_now() - w0;
    rr->batch = batch;
    rr->ok = 1;
    return 0;
fail:
    free(buf);
    free(s);
    m2u_dataset_close(ds);
    return -1;
}

/* The hash check the C rows include (each shard hashed on its first open,
 * m2u_manifest_verify_shard) alone; with sha256_only set, the sha256 alone (what the reader
 * checked before the xxh128).  *kind (may be NULL): the hash checked ("xxh128" when every
 * shard has one). */
BENCH_NOINLINE static int hash_shards(const char *manifest, int sha256_only, double *cpu, long long *bytes,
                                      const char **kind) {
    m2u_dataset *ds;
    m2u_dataset_options o = {.no_verify = 1};
    if (m2u_dataset_open(manifest, &o, &ds)) return -1;
    char *dir = m2u_path_dirname(manifest);
    double c0 = cpu_self();
    int rc = dir ? 0 : m2u_fail("out of memory");
    *bytes = 0;
    const m2u_manifest *m = m2u_dataset_manifest(ds);
    if (kind) *kind = sha256_only ? "sha256" : "xxh128";
    for (int sh = 0; rc == 0 && sh < m->n_shards; sh++) {
        char *full = m2u_path_join(dir, m->shards[sh].path), hex[65];
        if (!full) rc = m2u_fail("out of memory");
        else if (sha256_only) rc = m2u_hash_file(full, hex, NULL);
        else rc = m2u_manifest_verify_shard(full, &m->shards[sh], 0, manifest, NULL);
        if (kind && !m->shards[sh].xxh128[0]) *kind = "sha256";
        *bytes += m->shards[sh].bytes;
        free(full);
    }
    *cpu = cpu_self() - c0;
    free(dir);
    m2u_dataset_close(ds);
    return rc;
}

static long long json_ll(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}
static double json_d(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int read_h5py(const char *python, const char *script, const char *plugin_env, const char *manifest,
                     const char *tensor, int batch, const char *out_json, read_res *rr) {
    memset(rr, 0, sizeof *rr);
    char bs[16];
    snprintf(bs, sizeof bs, "%d", batch);
    char *argv[] = {(char *)python, (char *)script, "--manifest", (char *)manifest, "--tensor", (char *)tensor,
                    "--batch", bs, "--json", (char *)out_json, NULL};
    unlink(out_json);
    child_res cr;
    if (run_child(argv, plugin_env, 0, NULL, NULL, &cr)) return -1;
    if (!cr.ok) {
        fprintf(stderr, "m2u-bench-dataset: %s %s exited with %d\n", python, script, cr.code);
        return 0;
    }
    char *js = slurp(out_json, NULL);
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (!o) {
        fprintf(stderr, "m2u-bench-dataset: no result in %s\n", out_json);
        return 0;
    }
    rr->cpu = json_d(o, "cpu_s");
    rr->wall = json_d(o, "wall_s");
    rr->samples = json_ll(o, "samples");
    rr->bytes = json_ll(o, "bytes");
    rr->text_bytes = json_ll(o, "text_bytes");
    rr->audio_sum = json_ll(o, "audio_sum");
    rr->tensors = json_ll(o, "tensors");
    rr->batch = (int)json_ll(o, "batch");
    if (rr->batch != batch) {
        fprintf(stderr, "m2u-bench-dataset: %s read batches of %d, not %d (an older script?)\n", script, rr->batch,
                batch);
        cJSON_Delete(o);
        return 0;
    }
    rr->proc_cpu = cr.cpu;
    rr->proc_wall = cr.wall;
    rr->ok = 1;
    cJSON_Delete(o);
    return 0;
}

/* ---- the reading passes ------------------------------------------------------------------------- */

/* [0] per sample, [1] per batch; best (least CPU) pass of each. */
typedef struct {
    int have;
    read_res c[2], py[2];
    double hash_cpu; /* best pass of hash_shards: the check the C rows include */
    long long hash_bytes;
    const char *hash_kind;
    double sha_cpu;  /* best pass of the sha256 check */
} read_bench;

static int run_reads(const char *manifest, const char *tensor, int read_reps, int batch, const char *python,
                     const char *script, const char *plugin_env, const char *h5_json, read_bench *rb) {
    memset(rb, 0, sizeof *rb);
    fprintf(stderr, "m2u-bench-dataset: reading %s, %d pass(es) each, per sample and per batch of %d...\n", manifest,
            read_reps, batch);
    for (int p = 0; p < read_reps; p++) {
        double hc, sc;
        if (hash_shards(manifest, 0, &hc, &rb->hash_bytes, &rb->hash_kind) ||
            hash_shards(manifest, 1, &sc, &rb->hash_bytes, NULL)) {
            fprintf(stderr, "m2u-bench-dataset: hashing the shards: %s\n", m2u_last_error());
            return -1;
        }
        if (p == 0 || hc < rb->hash_cpu) rb->hash_cpu = hc;
        if (p == 0 || sc < rb->sha_cpu) rb->sha_cpu = sc;
        for (int m = 0; m < 2; m++) {
            read_res r;
            if (m == 0 ? read_c(manifest, tensor, &r) : read_c_batch(manifest, tensor, batch, &r)) {
                fprintf(stderr, "m2u-bench-dataset: C reader: %s\n", m2u_last_error());
                return -1;
            }
            if (!rb->c[m].ok || r.cpu < rb->c[m].cpu) rb->c[m] = r;
            rb->have = 1;
            if (python) {
                if (read_h5py(python, script, plugin_env, manifest, tensor, m == 0 ? 1 : batch, h5_json, &r))
                    return -1;
                if (r.ok && (!rb->py[m].ok || r.cpu < rb->py[m].cpu)) rb->py[m] = r;
            }
        }
    }
    return 0;
}

static int same_data(const read_res *a, const read_res *b) {
    return a->samples == b->samples && a->bytes == b->bytes && a->audio_sum == b->audio_sum && a->tensors == b->tensors;
}

static void print_reads(const read_bench *rb, const char *manifest, const char *tensor, int read_reps) {
    printf("\n  reading %s (best of %d; text + audio + target audio + attrs + '%s')\n", manifest, read_reps, tensor);
    printf("  %-40s %9s %9s %8s %8s %10s %9s %9s\n", "reader", "samples", "MB", "CPU-s", "wall-s", "samples/s",
           "MB/s", "C/h5py");
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2; k++) {
            const read_res *r = k == 0 ? &rb->c[m] : &rb->py[m];
            char nm[64];
            if (k == 0 && m == 0) snprintf(nm, sizeof nm, "C per sample (m2u_dataset_get + tensor)");
            else if (k == 0) snprintf(nm, sizeof nm, "C per batch of %d (get_samples + tensors)", rb->c[1].batch);
            else if (m == 0) snprintf(nm, sizeof nm, "h5py per sample");
            else snprintf(nm, sizeof nm, "h5py per batch of %d (one slice a column)", rb->py[1].batch);
            if (!r->ok) {
                printf("  %-40s (not run)\n", nm);
                continue;
            }
            char ratio[32] = "";
            const read_res *ref = &rb->py[m];
            if (k == 0 && ref->ok && ref->cpu > 0 && r->cpu > 0) snprintf(ratio, sizeof ratio, "%.2f", ref->cpu / r->cpu);
            printf("  %-40s %9lld %9.1f %8.3f %8.3f %10.0f %9.1f %9s\n", nm, r->samples, (double)r->bytes / 1e6, r->cpu,
                   r->wall, r->cpu > 0 ? (double)r->samples / r->cpu : 0,
                   r->cpu > 0 ? (double)r->bytes / 1e6 / r->cpu : 0, ratio);
        }
    char nm[64];
    snprintf(nm, sizeof nm, "  of which the %s check of the shards", rb->hash_kind ? rb->hash_kind : "hash");
    printf("  %-40s %9s %9.1f %8.3f %8s %10s %9.1f\n", nm, "", (double)rb->hash_bytes / 1e6, rb->hash_cpu, "", "",
           rb->hash_cpu > 0 ? (double)rb->hash_bytes / 1e6 / rb->hash_cpu : 0);
    if (rb->hash_kind && strcmp(rb->hash_kind, "sha256"))
        printf("  %-40s %9s %9.1f %8.3f %8s %10s %9.1f\n", "  (the sha256 of the shards, not included)", "",
               (double)rb->hash_bytes / 1e6, rb->sha_cpu, "", "",
               rb->sha_cpu > 0 ? (double)rb->hash_bytes / 1e6 / rb->sha_cpu : 0);
    /* h5py verifies nothing, so the reader itself compares as the C row less the hash */
    if (rb->c[0].ok && rb->c[1].ok && rb->hash_cpu > 0) {
        printf("  %-40s", "  C rows less the check (reader alone)");
        for (int m = 0; m < 2; m++) {
            double c = rb->c[m].cpu - rb->hash_cpu;
            printf("%s %.3f CPU-s", m ? "; per batch" : " per sample", c);
            if (rb->py[m].ok && c > 0) printf(" (%.2fx h5py)", rb->py[m].cpu / c);
        }
        printf("\n");
    }
    int all_same = same_data(&rb->c[0], &rb->c[1]);
    for (int m = 0; m < 2; m++)
        if (rb->py[m].ok) all_same = all_same && same_data(&rb->c[0], &rb->py[m]);
    printf("  all rows read the same data: %s", all_same ? "yes (samples, bytes, audio checksum, tensor count)" : "NO: they differ");
    if (rb->py[0].ok)
        printf("; h5py process total incl. interpreter + imports %.2f CPU-s (per sample)", rb->py[0].proc_cpu);
    printf("\n  samples/s and MB/s are per CPU-second; MB = 1e6 bytes of decompressed payload (int16 audio, "
           "float16 tensor, UTF-8 text);\n  the C rows include the hash check of each shard on its first open "
           "(the dataset reader's default), timed alone above\n");
}

static cJSON *reads_json(const read_bench *rb, const char *manifest, const char *tensor, int read_reps);

/* ---- output ---------------------------------------------------------------------------------------- */

static void row(const char *name, double audio_s, double cpu, double wall, double ref_rate, const char *note) {
    double r = rate_of(audio_s, cpu);
    char ratio[32] = "";
    if (ref_rate > 0 && r > 0) snprintf(ratio, sizeof ratio, "%.2f", r / ref_rate);
    printf("  %-34s %9.1f %8.2f %8.2f %12.1f %8s  %s\n", name, audio_s, cpu, wall, r, ratio, note ? note : "");
}

static cJSON *agg_json(double audio_s, double cpu, double wall) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "audio_s", audio_s);
    cJSON_AddNumberToObject(o, "cpu_s", cpu);
    cJSON_AddNumberToObject(o, "wall_s", wall);
    cJSON_AddNumberToObject(o, "audio_s_per_cpu_s", rate_of(audio_s, cpu));
    return o;
}

static cJSON *read_json(const read_res *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", r->ok);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddNumberToObject(o, "samples", (double)r->samples);
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
    cJSON_AddNumberToObject(o, "text_bytes", (double)r->text_bytes);
    cJSON_AddNumberToObject(o, "tensors", (double)r->tensors);
    cJSON_AddNumberToObject(o, "audio_sum", (double)r->audio_sum);
    cJSON_AddNumberToObject(o, "cpu_s", r->cpu);
    cJSON_AddNumberToObject(o, "wall_s", r->wall);
    cJSON_AddNumberToObject(o, "process_cpu_s", r->proc_cpu);
    cJSON_AddNumberToObject(o, "process_wall_s", r->proc_wall);
    cJSON_AddNumberToObject(o, "samples_per_cpu_s", r->cpu > 0 ? (double)r->samples / r->cpu : 0);
    cJSON_AddNumberToObject(o, "mb_per_cpu_s", r->cpu > 0 ? (double)r->bytes / 1e6 / r->cpu : 0);
    cJSON_AddNumberToObject(o, "samples_per_wall_s", r->wall > 0 ? (double)r->samples / r->wall : 0);
    cJSON_AddNumberToObject(o, "mb_per_wall_s", r->wall > 0 ? (double)r->bytes / 1e6 / r->wall : 0);
    return o;
}

static cJSON *reads_json(const read_bench *rb, const char *manifest, const char *tensor, int read_reps) {
    cJSON *rd = cJSON_CreateObject();
    cJSON_AddStringToObject(rd, "manifest", manifest);
    cJSON_AddStringToObject(rd, "tensor", tensor);
    cJSON_AddNumberToObject(rd, "passes", read_reps);
    cJSON_AddItemToObject(rd, "c", read_json(&rb->c[0]));
    cJSON_AddItemToObject(rd, "h5py", read_json(&rb->py[0]));
    cJSON_AddItemToObject(rd, "c_batch", read_json(&rb->c[1]));
    cJSON_AddItemToObject(rd, "h5py_batch", read_json(&rb->py[1]));
    cJSON *h = cJSON_AddObjectToObject(rd, "hash_check_of_shards");
    cJSON_AddStringToObject(h, "hash", rb->hash_kind ? rb->hash_kind : "");
    cJSON_AddNumberToObject(h, "bytes", (double)rb->hash_bytes);
    cJSON_AddNumberToObject(h, "cpu_s", rb->hash_cpu);
    cJSON_AddNumberToObject(h, "sha256_cpu_s", rb->sha_cpu);
    cJSON_AddStringToObject(h, "note", "included in the c and c_batch rows (each shard hashed on its first open)");
    /* the reader alone, comparable with h5py (which verifies nothing): best C pass less best hash pass */
    cJSON_AddNumberToObject(h, "c_less_hash_cpu_s", rb->c[0].cpu - rb->hash_cpu);
    cJSON_AddNumberToObject(h, "c_batch_less_hash_cpu_s", rb->c[1].cpu - rb->hash_cpu);
    return rd;
}

static void load_average(double l[3]) {
    l[0] = l[1] = l[2] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = 0;
        fclose(f);
    }
}

static int write_json(cJSON *o, const char *json_path) {
    char *s = cJSON_Print(o);
    FILE *f = s ? fopen(json_path, "w") : NULL;
    int bad = !f || fputs(s, f) < 0 || fputc('\n', f) < 0;
    if (f && fclose(f)) bad = 1;
    cJSON_free(s);
    cJSON_Delete(o);
    if (bad) {
        fprintf(stderr, "m2u-bench-dataset: cannot write %s\n", json_path);
        return -1;
    }
    printf("results: %s\n", json_path);
    return 0;
}

/* --read MANIFEST without FILEs: the reading rows alone. */
static int read_only(const char *manifest, const char *tensor, int read_reps, int batch, const char *python,
                     const char *script, const char *plugin_dir, const char *json_path) {
    double load[3];
    load_average(load);
    char plugin_env[4200] = "", h5_json[64];
    if (plugin_dir) snprintf(plugin_env, sizeof plugin_env, "HDF5_PLUGIN_PATH=%s", plugin_dir);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char h5_path[4200];
    snprintf(h5_json, sizeof h5_json, "/m2u-bench-h5py-%ld.json", (long)getpid());
    snprintf(h5_path, sizeof h5_path, "%.4000s%s", tmp, h5_json);
    read_bench rb;
    int rc = run_reads(manifest, tensor, read_reps, batch, python, script, plugin_env[0] ? plugin_env : NULL, h5_path,
                       &rb);
    unlink(h5_path);
    if (rc) return 1;
    printf("\nm2u shard reading benchmark; %ld cores, load average %.2f %.2f %.2f\n", sysconf(_SC_NPROCESSORS_ONLN),
           load[0], load[1], load[2]);
    print_reads(&rb, manifest, tensor, read_reps);
    printf("\nCPU-s: C = this process (CLOCK_PROCESS_CPUTIME_ID); h5py = its own read loop (time.process_time).\n"
           "wall-s includes waiting for the cores on a shared machine.  Nothing is asserted on time.\n");
    if (!json_path) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "benchmark", "m2u-bench-dataset --read");
    cJSON *mach = cJSON_AddObjectToObject(o, "machine");
    cJSON_AddNumberToObject(mach, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON *la = cJSON_AddArrayToObject(mach, "load_average_at_start");
    for (int k = 0; k < 3; k++) cJSON_AddItemToArray(la, cJSON_CreateNumber(load[k]));
    load_average(load);
    cJSON *lb = cJSON_AddArrayToObject(mach, "load_average_at_end");
    for (int k = 0; k < 3; k++) cJSON_AddItemToArray(lb, cJSON_CreateNumber(load[k]));
    cJSON_AddItemToObject(o, "read", reads_json(&rb, manifest, tensor, read_reps));
    return write_json(o, json_path) ? 1 : 0;
}

static int parse_int(const char *opt, const char *s, int lo, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > 1000000) {
        fprintf(stderr, "m2u-bench-dataset: %s expects an integer >= %d, got '%s'\n", opt, lo, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    const char *ffmpeg = "ffmpeg", *dataset = NULL, *work = NULL, *licence = "GPL-2.0-only", *json_path = NULL;
    const char *python = "/usr/bin/python3", *script = NULL, *plugin_dir = NULL, *tensor = "mert";
    const char *read_manifest = NULL;
    const char *recipes[MAX_RECIPE_RUNS];
    int n_recipes = 0, reps = 1, read_reps = 5, read_batch = 16;
    char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    if (!files) return 1;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (k + 1 >= argc) {
                fprintf(stderr, "m2u-bench-dataset: missing value for %s\n", a);
                return 2;
            }
            const char *v = argv[++k];
            if (!strcmp(a, "--ffmpeg")) ffmpeg = v;
            else if (!strcmp(a, "--dataset")) dataset = v;
            else if (!strcmp(a, "--work")) work = v;
            else if (!strcmp(a, "--licence")) licence = v;
            else if (!strcmp(a, "--json")) json_path = v;
            else if (!strcmp(a, "--python")) python = v;
            else if (!strcmp(a, "--h5py-script")) script = v;
            else if (!strcmp(a, "--plugin-dir")) plugin_dir = v;
            else if (!strcmp(a, "--tensor")) tensor = v;
            else if (!strcmp(a, "--read")) read_manifest = v;
            else if (!strcmp(a, "--reps")) {
                if (parse_int(a, v, 1, &reps)) return 2;
            } else if (!strcmp(a, "--read-reps")) {
                if (parse_int(a, v, 1, &read_reps)) return 2;
            } else if (!strcmp(a, "--read-batch")) {
                if (parse_int(a, v, 1, &read_batch)) return 2;
            } else if (!strcmp(a, "--recipes")) {
                if (n_recipes == MAX_RECIPE_RUNS) {
                    fprintf(stderr, "m2u-bench-dataset: at most %d --recipes\n", MAX_RECIPE_RUNS);
                    return 2;
                }
                if (strlen(v) >= sizeof((build_res *)0)->recipes || strchr(v, '/')) {
                    fprintf(stderr, "m2u-bench-dataset: bad --recipes '%s'\n", v);
                    return 2;
                }
                recipes[n_recipes++] = v;
            } else {
                fprintf(stderr, "m2u-bench-dataset: unknown option %s (see --help)\n", a);
                return 2;
            }
        } else {
            files[n_files++] = argv[k];
        }
    }
    if (!n_files && !read_manifest) {
        usage(stderr);
        return 2;
    }
    if (!n_recipes) recipes[n_recipes++] = "mucaps", recipes[n_recipes++] = "all";
    if (n_recipes == 1 && !strcmp(recipes[0], "none")) n_recipes = 0;
    if (dataset && n_recipes && !work) {
        fprintf(stderr, "m2u-bench-dataset: builds need --work DIR\n");
        return 2;
    }
    if (!strcmp(python, "none")) python = NULL;
    if (python && !script) {
        fprintf(stderr, "m2u-bench-dataset: h5py reading needs --h5py-script (or --python none)\n");
        return 2;
    }
    if (!n_files) return read_only(read_manifest, tensor, read_reps, read_batch, python, script, plugin_dir, json_path);

    m2u_build_config bc;
    m2u_build_config_default(&bc);
    double load[3] = {0, 0, 0};
    {
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
            if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = load[1] = load[2] = 0;
            fclose(f);
        }
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    {
        const char *tmp = work ? work : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if (work && mkdir(work, 0755) && errno != EEXIST) {
            fprintf(stderr, "m2u-bench-dataset: mkdir %s: %s\n", work, strerror(errno));
            return 1;
        }
        snprintf(g_ff_err, sizeof g_ff_err, "%.4000s/m2u-bench-ffmpeg-XXXXXX", tmp);
        int fd = mkstemp(g_ff_err);
        if (fd < 0) {
            fprintf(stderr, "m2u-bench-dataset: cannot create %s: %s\n", g_ff_err, strerror(errno));
            return 1;
        }
        close(fd);
        char *fa[] = {(char *)ffmpeg, "-hide_banner", "-version", NULL};
        child_res cr;
        if (run_child(fa, NULL, 0, NULL, g_ff_err, &cr)) return 1;
        if (!cr.ok) {
            fprintf(stderr, "m2u-bench-dataset: '%s' does not run (need the ffmpeg CLI; --ffmpeg PATH)\n", ffmpeg);
            unlink(g_ff_err);
            return 1;
        }
    }

    /* page cache: read every file once before timing */
    for (int k = 0; k < n_files; k++) {
        size_t len;
        char *s = slurp(files[k], &len);
        if (!s) {
            fprintf(stderr, "m2u-bench-dataset: cannot read %s: %s\n", files[k], strerror(errno));
            return 1;
        }
        free(s);
    }

    /* ---- decode + survey ---- */
    file_res *fr = calloc((size_t)n_files, sizeof *fr);
    if (!fr) return 1;
    fprintf(stderr, "m2u-bench-dataset: decode + survey of %d files, %d pass(es)...\n", n_files, reps);
    double t_dec0 = m2u_now();
    for (int pass = 0; pass < reps; pass++)
        for (int k = 0; k < n_files; k++) {
            fr[k].path = files[k];
            fmt_ext(files[k], fr[k].fmt, sizeof fr[k].fmt);
            if (pass > 0 && !fr[k].ok) continue;
            if (decode_and_survey(&fr[k], ffmpeg, &bc, pass)) {
                fprintf(stderr, "m2u-bench-dataset: %s\n", m2u_last_error());
                return 1;
            }
        }
    double t_dec = m2u_now() - t_dec0;
    unlink(g_ff_err);

    /* aggregates: all files and per format */
    agg m2u_all = {0, 0, 0}, ff_all[N_FF], ff_loop[N_FF], an_all = {0, 0, 0}, fp_all = {0, 0, 0}, feat_all = {0, 0, 0};
    memset(ff_all, 0, sizeof ff_all);
    memset(ff_loop, 0, sizeof ff_loop);
    int n_ok = 0, n_ff_fail = 0;
    long total_clips = 0;
    double max_len_diff = 0;
    char fmts[8][16];
    int n_fmts = 0;
    for (int k = 0; k < n_files; k++) {
        if (!fr[k].ok) continue;
        n_ok++;
        double as = fr[k].audio_s * reps;
        m2u_all.audio_s += as, m2u_all.cpu += fr[k].m2u_cpu, m2u_all.wall += fr[k].m2u_wall;
        for (int v = 0; v < N_FF; v++) {
            ff_all[v].audio_s += as, ff_all[v].cpu += fr[k].ff_cpu[v], ff_all[v].wall += fr[k].ff_wall[v];
            ff_loop[v].audio_s += as, ff_loop[v].cpu += fr[k].ff_loop_cpu[v],
                ff_loop[v].wall += fr[k].ff_loop_wall[v];
            n_ff_fail += !fr[k].ff_ok[v];
        }
        an_all.audio_s += fr[k].clip_s * reps, an_all.cpu += fr[k].an_cpu, an_all.wall += fr[k].an_wall;
        fp_all.audio_s += fmin(fr[k].audio_s, 120.0) * reps, fp_all.cpu += fr[k].fp_cpu,
            fp_all.wall += fr[k].fp_wall;
        feat_all.audio_s += fr[k].clip_s * reps, feat_all.cpu += fr[k].feat_cpu, feat_all.wall += fr[k].feat_wall;
        total_clips += fr[k].clips;
        double d = fabs((double)(fr[k].n_ff - fr[k].n_m2u)) / RATE;
        if (d > max_len_diff) max_len_diff = d;
        int seen = 0;
        for (int f = 0; f < n_fmts; f++) seen |= !strcmp(fmts[f], fr[k].fmt);
        if (!seen && n_fmts < 8) snprintf(fmts[n_fmts++], sizeof fmts[0], "%s", fr[k].fmt);
    }
    if (!n_ok) {
        fprintf(stderr, "m2u-bench-dataset: m2u decoded none of the files (first: %s)\n", fr[0].reason);
        return 1;
    }
    double audio_once = m2u_all.audio_s / reps;
    /* survey as a whole (what phase 1 of the build spends after decoding) */
    agg survey = {audio_once * reps, an_all.cpu + fp_all.cpu + feat_all.cpu + m2u_all.cpu,
                  an_all.wall + fp_all.wall + feat_all.wall + m2u_all.wall};

    char **ok_files = calloc((size_t)n_files, sizeof *ok_files);
    int n_ok_files = 0;
    if (!ok_files) return 1;
    for (int k = 0; k < n_files; k++)
        if (fr[k].ok) ok_files[n_ok_files++] = files[k];

    /* ---- builds ---- */
    build_res br[MAX_RECIPE_RUNS];
    memset(br, 0, sizeof br);
    int n_builds = 0;
    if (dataset && n_recipes) {
        for (int b = 0; b < n_recipes; b++) {
            snprintf(br[b].recipes, sizeof br[b].recipes, "%s", recipes[b]);
            fprintf(stderr, "m2u-bench-dataset: m2u-dataset build --recipes %s...\n", recipes[b]);
            if (run_build(dataset, work, licence, ok_files, n_ok_files, &br[b])) {
                fprintf(stderr, "m2u-bench-dataset: %s\n", m2u_last_error());
                return 1;
            }
            n_builds++;
        }
    }

    /* ---- reading ---- */
    char manifest[4200] = "";
    if (read_manifest) snprintf(manifest, sizeof manifest, "%s", read_manifest);
    else
        for (int b = n_builds - 1; b >= 0 && !manifest[0]; b--)
            if (br[b].ok && br[b].samples > 0) snprintf(manifest, sizeof manifest, "%s/manifest.json", br[b].out);
    read_bench rb;
    memset(&rb, 0, sizeof rb);
    char plugin_env[4200] = "";
    if (plugin_dir) snprintf(plugin_env, sizeof plugin_env, "HDF5_PLUGIN_PATH=%s", plugin_dir);
    char h5_json[4300] = "";
    if (manifest[0]) {
        snprintf(h5_json, sizeof h5_json, "%s/bench_h5py_result.json", work ? work : "/tmp");
        if (run_reads(manifest, tensor, read_reps, read_batch, python, script, plugin_env[0] ? plugin_env : NULL,
                      h5_json, &rb))
            return 1;
    }

    /* ---- table ---- */
    printf("\nm2u dataset benchmark: %d files (", n_ok);
    for (int f = 0; f < n_fmts; f++) {
        int c = 0;
        for (int k = 0; k < n_files; k++) c += fr[k].ok && !strcmp(fr[k].fmt, fmts[f]);
        printf("%s%d %s", f ? ", " : "", c, fmts[f]);
    }
    printf("), %.1f s of audio, %ld clips of <= %.0f s; %d pass(es); %ld cores, load average %.2f %.2f %.2f\n",
           audio_once, total_clips, bc.clip_s, reps, cores, load[0], load[1], load[2]);
    if (n_ok < n_files) printf("  (%d file(s) m2u could not decode were left out)\n", n_files - n_ok);
    double outside = 0;
    for (int v = 0; v < N_FF; v++) outside += ff_all[v].cpu - ff_loop[v].cpu;
    outside /= (double)N_FF * n_ok * reps;
    printf("ffmpeg outside its transcode loop (process start, libraries, probe, open): %.3f CPU-s per run (mean); "
           "samples ffmpeg vs m2u: max |diff| %.3f s per file%s\n\n",
           outside, max_len_diff, n_ff_fail ? "; SOME ffmpeg RUNS FAILED" : "");
    printf("  %-34s %9s %8s %8s %12s %8s\n", "stage", "audio-s", "CPU-s", "wall-s", "audio-s/CPU-s", "m2u/ref");
    double ref1 = rate_of(ff_all[1].audio_s, ff_all[1].cpu);
    row("decode: m2u_audio_decode 24k mono", m2u_all.audio_s, m2u_all.cpu, m2u_all.wall, ref1,
        "ref = ffmpeg 24k mono f32le");
    double m2u_rate = rate_of(m2u_all.audio_s, m2u_all.cpu);
    for (int v = 0; v < N_FF; v++) {
        char name[64], note[96];
        snprintf(note, sizeof note, "whole process; m2u/this %.2f",
                 m2u_rate / fmax(1e-12, rate_of(ff_all[v].audio_s, ff_all[v].cpu)));
        row(FF_NAME[v], ff_all[v].audio_s, ff_all[v].cpu, ff_all[v].wall, 0, note);
        snprintf(name, sizeof name, "  %s, loop only", FF_NAME[v]);
        snprintf(note, sizeof note, "ffmpeg -benchmark; m2u/this %.2f",
                 m2u_rate / fmax(1e-12, rate_of(ff_loop[v].audio_s, ff_loop[v].cpu)));
        row(name, ff_loop[v].audio_s, ff_loop[v].cpu, ff_loop[v].wall, 0, note);
    }
    for (int f = 0; f < n_fmts; f++) {
        agg m = {0, 0, 0}, r = {0, 0, 0}, nul = {0, 0, 0}, lp = {0, 0, 0};
        for (int k = 0; k < n_files; k++) {
            if (!fr[k].ok || strcmp(fr[k].fmt, fmts[f])) continue;
            m.audio_s += fr[k].audio_s * reps, m.cpu += fr[k].m2u_cpu, m.wall += fr[k].m2u_wall;
            r.audio_s += fr[k].audio_s * reps, r.cpu += fr[k].ff_cpu[1], r.wall += fr[k].ff_wall[1];
            nul.audio_s += fr[k].audio_s * reps, nul.cpu += fr[k].ff_cpu[0], nul.wall += fr[k].ff_wall[0];
            lp.audio_s += fr[k].audio_s * reps, lp.cpu += fr[k].ff_loop_cpu[1], lp.wall += fr[k].ff_loop_wall[1];
        }
        char name[64], note[96];
        snprintf(name, sizeof name, "  %s: m2u", fmts[f]);
        row(name, m.audio_s, m.cpu, m.wall, rate_of(r.audio_s, r.cpu), "ref = ffmpeg 24k mono f32le");
        snprintf(name, sizeof name, "  %s: ffmpeg 24k mono f32le", fmts[f]);
        snprintf(note, sizeof note, "loop only %.1f; -f null %.1f a-s/CPU-s", rate_of(lp.audio_s, lp.cpu),
                 rate_of(nul.audio_s, nul.cpu));
        row(name, r.audio_s, r.cpu, r.wall, 0, note);
    }
    row("analysis: m2u_analyze per clip", an_all.audio_s, an_all.cpu, an_all.wall, 0, "audio-s = clip seconds");
    row("fingerprint (first 120 s)", fp_all.audio_s, fp_all.cpu, fp_all.wall, 0, NULL);
    row("built-in mert feature per clip", feat_all.audio_s, feat_all.cpu, feat_all.wall, 0, NULL);
    row("survey = decode+analysis+fp+feat", survey.audio_s, survey.cpu, survey.wall, 0,
        "the build's phase 1 per file, in process");
    for (int b = 0; b < n_builds; b++) {
        char name[96], note[160];
        snprintf(name, sizeof name, "build --recipes %.48s", br[b].recipes);
        if (!br[b].ok) {
            printf("  %-34s FAILED (see the log next to %s)\n", name, br[b].out);
            continue;
        }
        snprintf(note, sizeof note, "%lld samples, %d shard(s), %.1f MB, %ld error line(s)", br[b].samples,
                 br[b].shards, (double)br[b].shard_bytes / 1e6, br[b].errors);
        row(name, audio_once, br[b].cpu, br[b].wall, 0, note);
    }
    if (rb.have) print_reads(&rb, manifest, tensor, read_reps);
    printf("\nCPU-s: m2u = this process (CLOCK_PROCESS_CPUTIME_ID); ffmpeg, builds, h5py process = children's "
           "user+system (getrusage).\nwall-s includes waiting for the cores on a shared machine.  Nothing is "
           "asserted on time.\n");

    /* ---- JSON ---- */
    if (json_path) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "benchmark", "m2u-bench-dataset");
        cJSON *mach = cJSON_AddObjectToObject(o, "machine");
        cJSON_AddNumberToObject(mach, "cores", (double)cores);
        cJSON *la = cJSON_AddArrayToObject(mach, "load_average_at_start");
        for (int k = 0; k < 3; k++) cJSON_AddItemToArray(la, cJSON_CreateNumber(load[k]));
        {
            double l2[3] = {0, 0, 0};
            FILE *f = fopen("/proc/loadavg", "r");
            if (f) {
                if (fscanf(f, "%lf %lf %lf", &l2[0], &l2[1], &l2[2]) != 3) l2[0] = l2[1] = l2[2] = 0;
                fclose(f);
            }
            cJSON *lb = cJSON_AddArrayToObject(mach, "load_average_at_end");
            for (int k = 0; k < 3; k++) cJSON_AddItemToArray(lb, cJSON_CreateNumber(l2[k]));
        }
        cJSON_AddNumberToObject(o, "passes", reps);
        cJSON_AddNumberToObject(o, "rate", RATE);
        cJSON_AddNumberToObject(o, "audio_s", audio_once);
        cJSON_AddNumberToObject(o, "clips", (double)total_clips);
        cJSON_AddNumberToObject(o, "decode_survey_wall_s", t_dec);
        cJSON_AddNumberToObject(o, "ffmpeg_outside_loop_cpu_s_per_run", outside);
        cJSON_AddNumberToObject(o, "ffmpeg_vs_m2u_max_length_diff_s", max_len_diff);
        cJSON *dec = cJSON_AddObjectToObject(o, "decode");
        cJSON_AddItemToObject(dec, "m2u", agg_json(m2u_all.audio_s, m2u_all.cpu, m2u_all.wall));
        for (int v = 0; v < N_FF; v++) {
            cJSON *x = agg_json(ff_all[v].audio_s, ff_all[v].cpu, ff_all[v].wall);
            cJSON_AddNumberToObject(x, "processes", (double)n_ok * reps);
            cJSON_AddNumberToObject(x, "m2u_over_this",
                                    rate_of(m2u_all.audio_s, m2u_all.cpu) /
                                        fmax(1e-12, rate_of(ff_all[v].audio_s, ff_all[v].cpu)));
            cJSON_AddItemToObject(dec, FF_KEY[v], x);
        }
        for (int v = 0; v < N_FF; v++) {
            char key[64];
            snprintf(key, sizeof key, "%s_loop_only", FF_KEY[v]);
            cJSON *x = agg_json(ff_loop[v].audio_s, ff_loop[v].cpu, ff_loop[v].wall);
            cJSON_AddStringToObject(x, "source", "ffmpeg -benchmark: utime+stime, rtime of transcode()");
            cJSON_AddNumberToObject(x, "m2u_over_this",
                                    m2u_rate / fmax(1e-12, rate_of(ff_loop[v].audio_s, ff_loop[v].cpu)));
            cJSON_AddItemToObject(dec, key, x);
        }
        cJSON_AddItemToObject(o, "analysis", agg_json(an_all.audio_s, an_all.cpu, an_all.wall));
        cJSON_AddItemToObject(o, "fingerprint", agg_json(fp_all.audio_s, fp_all.cpu, fp_all.wall));
        cJSON_AddItemToObject(o, "builtin_mert", agg_json(feat_all.audio_s, feat_all.cpu, feat_all.wall));
        cJSON_AddItemToObject(o, "survey", agg_json(survey.audio_s, survey.cpu, survey.wall));
        cJSON *fa = cJSON_AddArrayToObject(o, "files");
        for (int k = 0; k < n_files; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "path", fr[k].path);
            cJSON_AddStringToObject(x, "format", fr[k].fmt);
            cJSON_AddBoolToObject(x, "ok", fr[k].ok);
            if (!fr[k].ok) {
                cJSON_AddStringToObject(x, "reason", fr[k].reason);
                cJSON_AddItemToArray(fa, x);
                continue;
            }
            cJSON_AddStringToObject(x, "codec", fr[k].codec);
            cJSON_AddNumberToObject(x, "audio_s", fr[k].audio_s);
            cJSON_AddNumberToObject(x, "samples_m2u", (double)fr[k].n_m2u);
            cJSON_AddNumberToObject(x, "samples_ffmpeg", (double)fr[k].n_ff);
            cJSON_AddNumberToObject(x, "clips", (double)fr[k].clips);
            cJSON_AddNumberToObject(x, "m2u_decode_cpu_s", fr[k].m2u_cpu);
            for (int v = 0; v < N_FF; v++) {
                char key[64];
                snprintf(key, sizeof key, "%s_cpu_s", FF_KEY[v]);
                cJSON_AddNumberToObject(x, key, fr[k].ff_cpu[v]);
                snprintf(key, sizeof key, "%s_loop_cpu_s", FF_KEY[v]);
                cJSON_AddNumberToObject(x, key, fr[k].ff_loop_cpu[v]);
            }
            cJSON_AddNumberToObject(x, "analysis_cpu_s", fr[k].an_cpu);
            cJSON_AddNumberToObject(x, "fingerprint_cpu_s", fr[k].fp_cpu);
            cJSON_AddNumberToObject(x, "builtin_mert_cpu_s", fr[k].feat_cpu);
            cJSON_AddItemToArray(fa, x);
        }
        cJSON *ba = cJSON_AddArrayToObject(o, "builds");
        for (int b = 0; b < n_builds; b++) {
            cJSON *x = agg_json(audio_once, br[b].cpu, br[b].wall);
            cJSON_AddStringToObject(x, "recipes", br[b].recipes);
            cJSON_AddBoolToObject(x, "ok", br[b].ok);
            cJSON_AddNumberToObject(x, "samples", (double)br[b].samples);
            cJSON_AddNumberToObject(x, "shards", br[b].shards);
            cJSON_AddNumberToObject(x, "shard_bytes", (double)br[b].shard_bytes);
            cJSON_AddNumberToObject(x, "error_lines", (double)br[b].errors);
            cJSON_AddItemToArray(ba, x);
        }
        if (rb.have) cJSON_AddItemToObject(o, "read", reads_json(&rb, manifest, tensor, read_reps));
        if (write_json(o, json_path)) return 1;
    }
    free(ok_files);
    free(fr);
    free(files);
    return 0;
}
