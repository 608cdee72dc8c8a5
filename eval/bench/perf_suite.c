#include "perf_suite.h"

#include "fileio.h"
#include "log.h"
#include "m2u_error.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *read_json(const char *path) {
    char *txt = NULL;
    size_t len;
    if (m2u_read_file(path, &txt, &len)) return NULL;
    cJSON *o = cJSON_ParseWithLength(txt, len);
    free(txt);
    return o;
}

static double num(const cJSON *o, const char *path) {
    /* "a.b.c" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    return cJSON_IsNumber(cur) ? cur->valuedouble : -1;
}

static void add_ratio(cJSON *o, const char *name, double m2u, double ref) {
    cJSON *r = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(r, "m2u", m2u);
    cJSON_AddNumberToObject(r, "reference", ref);
    cJSON_AddNumberToObject(r, "ratio", ref > 0 ? m2u / ref : 0);
}

/* the LoRA step's configs whose result files the report reads (bench_llama.sh's names) */
static const char *const TRAIN_CFGS[] = {"tiny", "15m", "110m", "15m-bf16", "110m-bf16"};
#define N_TRAIN_CFGS ((int)(sizeof TRAIN_CFGS / sizeof TRAIN_CFGS[0]))

/* the 7B step's sequence lengths with a result file, ascending (at most n) */
static int seqs_7b(const char *dir, int *seq, int n) {
    int k = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d)) && k < n;) {
        int t;
        char tail[8];
        if (sscanf(e->d_name, "m2u_7b_t%d%7s", &t, tail) == 2 && t > 0 && !strcmp(tail, ".json")) seq[k++] = t;
    }
    closedir(d);
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && seq[j - 1] > seq[j]; j--) {
            int x = seq[j];
            seq[j] = seq[j - 1], seq[j - 1] = x;
        }
    return k;
}

int m2u_perf_summarize(const char *build_dir, const char *dataset_json, const char *out_dir,
                       const int status[M2U_PERF_PARTS], const char *const reason[M2U_PERF_PARTS]) {
    cJSON *rep = cJSON_CreateObject();
    m2u_strbuf md = {0};
    m2u_sb_printf(&md, "# m2u benchmarks\n\nEach figure is m2u against a reference measured in the same run, on this machine.\n");
    static const char *const part_name[M2U_PERF_PARTS] = {"train", "mert", "dataset", "train7b"};
    /* train: tokens/s per config */
    m2u_sb_printf(&md, "\n## LoRA training step (eval/bench/bench_llama.sh): m2u vs PyTorch eager\n\n");
    cJSON *tr = cJSON_AddObjectToObject(rep, "train");
    int rows = 0, bf_rows = 0;
    m2u_strbuf notes = {0};
    /* NAME-bf16: m2u's train.precision bf16 against PyTorch's forward under CPU bf16 autocast; also
     * against PyTorch's fp32 step on NAME when the run has it (the faster PyTorch way on CPUs without
     * bf16 arithmetic) */
    for (int k = 0; k < N_TRAIN_CFGS; k++) {
        const char *cfg = TRAIN_CFGS[k];
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/bench_llama/m2u_%s.json", build_dir, cfg);
        snprintf(pb, sizeof pb, "%s/bench_llama/torch_%s.json", build_dir, cfg);
        cJSON *a = status[0] == 0 ? read_json(pa) : NULL, *b = a ? read_json(pb) : NULL;
        double ta = a ? num(a, "tokens_per_s") : -1, tb = b ? num(b, "tokens_per_s") : -1;
        const char *bf = strstr(cfg, "-bf16");
        if (ta > 0 && tb > 0) {
            if (!rows++) m2u_sb_printf(&md, "| config | m2u tokens/s | PyTorch tokens/s | m2u / PyTorch |\n|---|---:|---:|---:|\n");
            m2u_sb_printf(&md, "| %s | %.0f | %.0f | %.2f× |\n", cfg, ta, tb, ta / tb);
            add_ratio(tr, cfg, ta, tb);
            if (bf) {
                bf_rows++;
                snprintf(pb, sizeof pb, "%s/bench_llama/torch_%.*s.json", build_dir, (int)(bf - cfg), cfg);
                cJSON *c = read_json(pb);
                double t32 = c ? num(c, "tokens_per_s") : -1;
                if (t32 > 0) {
                    char key[64];
                    snprintf(key, sizeof key, "%s-vs-torch-fp32", cfg);
                    add_ratio(tr, key, ta, t32);
                    m2u_sb_printf(&notes, "- %s: m2u bf16 against PyTorch's fp32 eager step: %.0f / %.0f tokens/s = %.2f×\n",
                                  cfg, ta, t32, ta / t32);
                }
                cJSON_Delete(c);
            }
        }
        cJSON_Delete(a), cJSON_Delete(b);
    }
    if (bf_rows)
        m2u_sb_printf(&md, "\nA config named NAME-bf16 is m2u's `train.precision: bf16` against PyTorch with its "
                           "forward under `torch.autocast(\"cpu\", dtype=torch.bfloat16)`.\n%s",
                      notes.n ? notes.s : "");
    m2u_sb_free(&notes);
    if (!rows) m2u_sb_printf(&md, "Not measured%s%s\n", reason[0] ? ": " : ".", reason[0] ? reason[0] : "");
    /* mert */
    m2u_sb_printf(&md, "\n## MERT features (eval/bench/bench_mert.sh): m2u vs PyTorch\n\n");
    {
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/bench_mert/m2u.json", build_dir);
        snprintf(pb, sizeof pb, "%s/bench_mert/torch.json", build_dir);
        cJSON *a = status[1] == 0 ? read_json(pa) : NULL, *b = a ? read_json(pb) : NULL;
        double ra = a ? num(a, "audio_s_per_s") : -1, rb = b ? num(b, "audio_s_per_s") : -1;
        if (ra > 0 && rb > 0) {
            m2u_sb_printf(&md, "| | m2u | PyTorch | m2u / PyTorch |\n|---|---:|---:|---:|\n| audio-s per s | %.2f | %.2f | %.2f× |\n",
               ra, rb, ra / rb);
            add_ratio(rep, "mert", ra, rb);
            /* GFLOP/s of the products against the same run's sgemm peak (bench_mert.sh since 3ff53f2) */
            double gf = num(a, "gflops"), gfr = num(a, "front_gflops"), gl = num(a, "layers_gflops"),
                   pk = num(a, "sgemm_peak_gflops"), gt = num(b, "gflops");
            if (gf > 0 && gfr > 0 && gl > 0 && pk > 0) {
                m2u_sb_printf(&md, "| GFLOP/s (share of the sgemm peak %.1f) | %.1f (%.0f%%): front end %.1f (%.0f%%), layers %.1f (%.0f%%) | ",
                              pk, gf, 100 * gf / pk, gfr, 100 * gfr / pk, gl, 100 * gl / pk);
                if (gt > 0) m2u_sb_printf(&md, "%.1f (%.0f%%) | |\n", gt, 100 * gt / pk);
                else m2u_sb_printf(&md, "| |\n");
                cJSON *mj = cJSON_GetObjectItemCaseSensitive(rep, "mert");
                cJSON_AddNumberToObject(mj, "m2u_pct_of_sgemm_peak", 100 * gf / pk);
                cJSON_AddNumberToObject(mj, "m2u_layers_pct_of_sgemm_peak", 100 * gl / pk);
                cJSON_AddNumberToObject(mj, "m2u_front_pct_of_sgemm_peak", 100 * gfr / pk);
                if (gt > 0) cJSON_AddNumberToObject(mj, "torch_pct_of_sgemm_peak", 100 * gt / pk);
            }
        } else {
            m2u_sb_printf(&md, "Not measured%s%s\n", reason[1] ? ": " : ".", reason[1] ? reason[1] : "");
        }
        cJSON_Delete(a), cJSON_Delete(b);
    }
    /* dataset */
    m2u_sb_printf(&md, "\n## Dataset pipeline (eval/bench/bench_dataset.sh)\n\n");
    {
        cJSON *d = status[2] == 0 && dataset_json ? read_json(dataset_json) : NULL;
        double dm = d ? num(d, "decode.m2u.audio_s_per_cpu_s") : -1;
        double df = d ? num(d, "decode.ffmpeg_f32le.audio_s_per_cpu_s") : -1;
        double an = d ? num(d, "analysis.audio_s_per_cpu_s") : -1;
        double rc = d ? num(d, "read.c.samples_per_cpu_s") : -1, rh = d ? num(d, "read.h5py.samples_per_cpu_s") : -1;
        if (dm > 0 && df > 0) {
            cJSON *ds = cJSON_AddObjectToObject(rep, "dataset");
            m2u_sb_printf(&md, "| stage | m2u | reference | m2u / reference |\n|---|---:|---:|---:|\n");
            m2u_sb_printf(&md, "| decode to 24 kHz mono (audio-s per CPU-s) | %.1f | %.1f (ffmpeg CLI) | %.2f× |\n", dm, df, dm / df);
            add_ratio(ds, "decode_vs_ffmpeg", dm, df);
            if (an > 0) {
                m2u_sb_printf(&md, "| analysis (audio-s per CPU-s) | %.1f | | |\n", an);
                cJSON_AddNumberToObject(ds, "analysis_audio_s_per_cpu_s", an);
            }
            const cJSON *builds = cJSON_GetObjectItemCaseSensitive(d, "builds"), *bd;
            cJSON_ArrayForEach(bd, builds) {
                const cJSON *rcp = cJSON_GetObjectItemCaseSensitive(bd, "recipes");
                double r = num(bd, "audio_s_per_cpu_s");
                if (r > 0 && cJSON_IsString(rcp)) {
                    m2u_sb_printf(&md, "| `m2u-dataset build`, recipes %s (audio-s per CPU-s) | %.1f | | |\n", rcp->valuestring, r);
                    char key[96];
                    snprintf(key, sizeof key, "build_%s_audio_s_per_cpu_s", rcp->valuestring);
                    cJSON_AddNumberToObject(ds, key, r);
                }
            }
            if (rc > 0 && rh > 0) {
                m2u_sb_printf(&md, "| shard reading (samples per CPU-s) | %.0f | %.0f (h5py) | %.2f× |\n", rc, rh, rc / rh);
                add_ratio(ds, "read_vs_h5py", rc, rh);
            }
        } else {
            m2u_sb_printf(&md, "Not measured%s%s\n", reason[2] ? ": " : ".", reason[2] ? reason[2] : "");
        }
        cJSON_Delete(d);
    }
    /* train7b: no reference implementation; the sgemm peak of the same run is the yardstick */
    m2u_sb_printf(&md, "\n## LoRA step on LLaMA-2-7B shapes, bf16 weights (eval/bench/bench_llama7b.sh): m2u\n\n");
    {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/bench_llama", build_dir);
        int seq[16], n = status[3] == 0 ? seqs_7b(dir, seq, 16) : 0, rows7 = 0;
        double peak = -1;
        cJSON *t7 = NULL;
        for (int i = 0; i < n; i++) {
            char pa[1100];
            snprintf(pa, sizeof pa, "%s/m2u_7b_t%d.json", dir, seq[i]);
            cJSON *a = read_json(pa);
            double sps = a ? num(a, "step_s_median") : -1, tps = a ? num(a, "tokens_per_s") : -1;
            double gf = a ? num(a, "gflops") : -1, rss = a ? num(a, "max_rss_mib") : -1, pk = a ? num(a, "sgemm_peak_gflops") : -1;
            double B = a ? num(a, "batch") : -1;
            if (pk > 0 && peak < 0) peak = pk; /* measured once, in the first run */
            if (sps > 0 && tps > 0 && gf > 0) {
                if (!rows7++) {
                    m2u_sb_printf(&md, "| batch × sequence | s / step | tokens/s | GFLOP/s | %% of the sgemm peak | peak memory |\n"
                                       "|---|---:|---:|---:|---:|---:|\n");
                    t7 = cJSON_AddObjectToObject(rep, "train7b");
                }
                char pct[32] = "-";
                if (peak > 0) snprintf(pct, sizeof pct, "%.0f%%", 100 * gf / peak);
                m2u_sb_printf(&md, "| %.0f × %d | %.2f | %.2f | %.1f | %s | %.1f GiB |\n", B, seq[i], sps, tps, gf, pct,
                              rss / 1024);
                char key[32];
                snprintf(key, sizeof key, "t%d", seq[i]);
                cJSON *r = cJSON_AddObjectToObject(t7, key);
                cJSON_AddNumberToObject(r, "step_s", sps);
                cJSON_AddNumberToObject(r, "tokens_per_s", tps);
                cJSON_AddNumberToObject(r, "gflops", gf);
                if (peak > 0) cJSON_AddNumberToObject(r, "pct_of_sgemm_peak", 100 * gf / peak);
                cJSON_AddNumberToObject(r, "max_rss_mib", rss);
            }
            cJSON_Delete(a);
        }
        if (rows7 && peak > 0) {
            m2u_sb_printf(&md, "\nsgemm peak (2048³, same run): %.1f GFLOP/s\n", peak);
            cJSON_AddNumberToObject(t7, "sgemm_peak_gflops", peak);
        }
        if (!rows7) m2u_sb_printf(&md, "Not measured%s%s\n", reason[3] ? ": " : ".", reason[3] ? reason[3] : "");
    }
    cJSON *st = cJSON_AddObjectToObject(rep, "status");
    for (int k = 0; k < M2U_PERF_PARTS; k++) {
        cJSON *s = cJSON_AddObjectToObject(st, part_name[k]);
        cJSON_AddNumberToObject(s, "exit", status[k]);
        if (reason[k]) cJSON_AddStringToObject(s, "reason", reason[k]);
    }
    char *js = cJSON_Print(rep);
    cJSON_Delete(rep);
    char *jp = m2u_path_join(out_dir, "bench.json"), *mp = m2u_path_join(out_dir, "bench.md");
    int rc2 = m2u_mkdir_p(out_dir);
    if (!rc2) rc2 = js && md.s && !md.oom ? m2u_write_file_atomic(jp, js, strlen(js)) : m2u_fail("out of memory");
    if (!rc2) rc2 = m2u_write_file_atomic(mp, md.s, md.n);
    free(js), free(md.s), free(jp), free(mp);
    return rc2;
}

/* last non-empty line of a log, for "not measured: <why>" */
static char *last_line(const char *path) {
    char *txt = NULL;
    size_t len;
    if (m2u_read_file(path, &txt, &len) || !len) {
        free(txt);
        return strdup("no output");
    }
    while (len && (txt[len - 1] == '\n' || txt[len - 1] == '\r')) txt[--len] = 0;
    char *nl = strrchr(txt, '\n');
    char *r = strdup(nl ? nl + 1 : txt);
    free(txt);
    return r;
}

/* unlink one result file; ENOENT is what a first run finds, anything else left behind would be
 * reported as this run's */
static int rm_old(const char *fmt, ...) M2U_PRINTF(1, 2);
static int rm_old(const char *fmt, ...) {
    char p[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    if (unlink(p) && errno != ENOENT) return m2u_fail("m2u-eval bench: cannot remove the old %s: %s", p, strerror(errno));
    return 0;
}

int m2u_perf_clear(const char *build_dir, const char *dataset_json, int part) {
    int rc = 0;
    if (part == 0) {
        for (int k = 0; k < N_TRAIN_CFGS; k++) {
            rc |= rm_old("%s/bench_llama/m2u_%s.json", build_dir, TRAIN_CFGS[k]);
            rc |= rm_old("%s/bench_llama/torch_%s.json", build_dir, TRAIN_CFGS[k]);
        }
    } else if (part == 1) {
        rc |= rm_old("%s/bench_mert/m2u.json", build_dir);
        rc |= rm_old("%s/bench_mert/torch.json", build_dir);
    } else if (part == 2) {
        if (dataset_json) rc |= rm_old("%s", dataset_json);
    } else if (part == 3) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/bench_llama", build_dir);
        int seq[64], n = seqs_7b(dir, seq, 64);
        for (int i = 0; i < n; i++) rc |= rm_old("%s/m2u_7b_t%d.json", dir, seq[i]);
    }
    return rc ? -1 : 0;
}

int m2u_perf_run(const m2u_perf_opts *o) {
    unsigned parts = o->parts ? o->parts : M2U_PERF_ALL;
    const char *py = o->python ? o->python : "python3";
    if (m2u_mkdir_p(o->out_dir)) return -1;
    int status[M2U_PERF_PARTS] = {-1, -1, -1, -1};
    char *reason[M2U_PERF_PARTS] = {NULL, NULL, NULL, NULL};
    char *dataset_json = m2u_path_join(o->out_dir, "bench_dataset.json");
    static const char *const script[M2U_PERF_PARTS] = {"bench_llama.sh", "bench_mert.sh", "bench_dataset.sh",
                                                         "bench_llama7b.sh"};
    for (int k = 0; k < M2U_PERF_PARTS; k++) {
        if (!(parts & (1u << k))) {
            reason[k] = strdup("not selected");
            continue;
        }
        if (k == 3 && o->quick && !o->parts) { /* --quick alone: minutes and 14 GB of disk are not quick */
            reason[k] = strdup("not run with --quick (select it with --only train7b)");
            continue;
        }
        char args[1024];
        if (k == 0)
            snprintf(args, sizeof args, "--configs %s", o->quick ? "tiny,15m" : "tiny,15m,110m,110m-bf16");
        else if (k == 1)
            snprintf(args, sizeof args, "--seconds %d", o->quick ? 5 : 10);
        else if (k == 3)
            snprintf(args, sizeof args, "--seqs %s", o->quick ? "128" : "128,512");
        else
            snprintf(args, sizeof args, "--files %d --json '%s'", o->quick ? 4 : 8, dataset_json);
        /* the dataset script finds Debian's h5py python itself unless told otherwise */
        char pyarg[600] = "";
        if (k < 2 || o->python) snprintf(pyarg, sizeof pyarg, "--python '%s'", py);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "bash '%s/eval/bench/%s' --build '%s' %s %s > '%s/%.*s.log' 2>&1", o->source_dir,
                 script[k], o->build_dir, pyarg, args, o->out_dir, (int)(strlen(script[k]) - 3), script[k]);
        if (m2u_perf_clear(o->build_dir, dataset_json, k)) {
            status[k] = 1;
            reason[k] = strdup(m2u_last_error());
            continue;
        }
        m2u_log(M2U_LOG_INFO, "m2u-eval bench: %s ...", script[k]);
        fflush(NULL);
        int st = system(cmd);
        status[k] = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        if (status[k]) {
            char lp[1024];
            snprintf(lp, sizeof lp, "%s/%.*s.log", o->out_dir, (int)(strlen(script[k]) - 3), script[k]);
            reason[k] = last_line(lp);
        }
    }
    int rc = m2u_perf_summarize(o->build_dir, dataset_json, o->out_dir, status, (const char *const *)reason);
    for (int k = 0; k < M2U_PERF_PARTS; k++) free(reason[k]);
    free(dataset_json);
    return rc;
}
