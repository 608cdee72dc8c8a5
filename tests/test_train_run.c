/* m2u-train end to end, as users run it:
 *  - a small run learns (held-out loss falls) and writes config, metrics, checkpoints;
 *  - 20 steps straight == 10 steps, kill -9, --resume, 10 more: same losses and
 *    bit-identical weights (with LoRA dropout on, so the RNG streams must resume too);
 *  - 2 MPI ranks x micro-batch b == 1 rank x 2 accumulation steps of b;
 *  - a bad config is refused with file:line before any work. */
#include "m2u_error.h"
#include "manifest.h"
#include "safetensors.h"
#include "test_dataset_util.h"
#include "test_util.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[64];

static void write_config(void) {
    char path[256];
    t_tiny_llama_base(g_dir);
    snprintf(path, sizeof path, "%s/run.yaml", g_dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "run:\n  name: t\n  seed: 7\n  keep_last: 3\n  save_every: 10\n  log_every: 1\n  eval_every: 0\n"
            "model:\n  llm: %s/base\n  aud_tokens: 8\n"
            "lora:\n  r: 4\n  alpha: 8\n  dropout: 0.1\n"
            "train:\n  stage: 1\n  trainable: [lora, norm, aud_embeddings]\n  data: %s/data/manifest.json\n"
            "  kinds: [mucaps]\n  max_len: 64\n  batch: 4\n  accum: 1\n  max_steps: 20\n  lr: 5.0e-3\n"
            "  min_lr: 5.0e-4\n  warmup_steps: 2\n  clip_grad: 1.0\n"
            "eval:\n  split: valid\n  batches: 4\n",
            g_dir, g_dir);
    fclose(f);
}

/* Per-step losses of run's metrics.jsonl (t_read_losses). */
static int read_losses(const char *run, double *loss, int max) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", g_dir, run);
    return t_read_losses(path, loss, max);
}

static int same_file(const char *a, const char *b) {
    return t_sh("cmp -s %s %s", a, b) == 0;
}

/* ||a - b|| / ||b|| over every trainable tensor of two checkpoints.  A global
 * norm, not a per-element maximum: parameters whose true gradient is zero
 * (attention key biases) move by AdamW steps driven by rounding noise, which
 * differs with the summation order of any two correct runs. */
static double weights_rel_diff(const char *a, const char *b) {
    m2u_safetensors *sa, *sb;
    if (m2u_st_open(a, &sa)) return 1e9;
    if (m2u_st_open(b, &sb)) {
        m2u_st_close(sa);
        return 1e9;
    }
    double num = 0, den = 0;
    for (int i = 0; i < m2u_st_count(sa); i++) {
        const m2u_st_tensor *ta = m2u_st_at(sa, i), *tb = m2u_st_find(sb, ta->name);
        if (!tb || tb->numel != ta->numel) {
            num = 1e9;
            break;
        }
        float *x = malloc((size_t)ta->numel * 4), *y = malloc((size_t)ta->numel * 4);
        m2u_st_read_f32(ta, x, (size_t)ta->numel);
        m2u_st_read_f32(tb, y, (size_t)tb->numel);
        for (int64_t k = 0; k < ta->numel; k++) {
            num += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
            den += (double)y[k] * y[k];
        }
        free(x);
        free(y);
    }
    m2u_st_close(sa);
    m2u_st_close(sb);
    return sqrt(num / (den > 0 ? den : 1));
}

/* Lines of a run's metrics.jsonl that are not JSON objects; *n_null = records whose
   eval_loss is null (no held-out data).  -1 when the file cannot be read. */
static int bad_json_lines(const char *run, int *n_null, char *last, size_t last_cap) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", g_dir, run);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char line[1 << 16];
    int bad = 0;
    *n_null = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) bad++;
        if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "eval_loss"))) (*n_null)++;
        cJSON_Delete(o);
        if (last) snprintf(last, last_cap, "%.*s", (int)(last_cap - 1), line);
    }
    fclose(f);
    return bad;
}

/* Run `killed` (run.yaml plus the override extra, NULL for none) until its step-10 checkpoint,
 * kill -9 it, resume it, and compare its 20 losses, weights and optimizer state with the straight
 * run `straight` (losses sl): the same bits. */
static void kill_resume_compare(const char *bin, const char *straight, const char *killed, const char *extra,
                                const double *sl) {
    char pa[256], pb[256];
    pid_t pid = fork();
    if (pid == 0) {
        char out[128], cfg[128];
        snprintf(cfg, sizeof cfg, "%s/run.yaml", g_dir);
        snprintf(out, sizeof out, "run.out_dir=%s/%s", g_dir, killed);
        freopen("/dev/null", "w", stderr);
        if (extra) execl(bin, bin, cfg, out, extra, (char *)NULL);
        else execl(bin, bin, cfg, out, (char *)NULL);
        _exit(127);
    }
    snprintf(pb, sizeof pb, "%s/%s/checkpoints/step-00000010/COMPLETE", g_dir, killed);
    for (int i = 0; i < 60000 && access(pb, F_OK) != 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st), "run %s finished before it could be killed", killed);
    CHECK(t_sh("%s %s/run.yaml run.out_dir=%s/%s %s --resume 2> %s/%s.log", bin, g_dir, g_dir, killed,
               extra ? extra : "", g_dir, killed) == 0,
          "resume failed (see %s/%s.log)", g_dir, killed);
    double b[20] = {0};
    CHECK(read_losses(killed, b, 20) == 20, "run %s logged %d steps", killed, read_losses(killed, b, 20));
    int same = 1;
    for (int i = 0; i < 20; i++) same &= sl[i] == b[i];
    CHECK(same, "%s: losses after resume differ from the straight run %s", killed, straight);
    snprintf(pa, sizeof pa, "%s/%s/checkpoints/step-00000020/trainable.safetensors", g_dir, straight);
    snprintf(pb, sizeof pb, "%s/%s/checkpoints/step-00000020/trainable.safetensors", g_dir, killed);
    CHECK(same_file(pa, pb), "%s: weights after kill -9 + resume are not bit-identical", killed);
    snprintf(pa, sizeof pa, "%s/%s/checkpoints/step-00000020/optimizer.safetensors", g_dir, straight);
    snprintf(pb, sizeof pb, "%s/%s/checkpoints/step-00000020/optimizer.safetensors", g_dir, killed);
    CHECK(same_file(pa, pb), "%s: optimizer state after resume is not bit-identical", killed);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/m2u_train_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    t_tiny_music_dataset(g_dir);
    write_config();
    /* one thread per process: the runs are compared bit for bit and 2 ranks share 2 cores */
    setenv("OMP_NUM_THREADS", "1", 1);
    /* Under the sanitizer build, keep ASan/UBSan error checks in the m2u-train
       children but not LeakSanitizer: Open MPI (MPI_Init, even as a singleton)
       and OpenBLAS's thread buffers are not freed at exit, from dlopen'ed
       components LSan cannot name, so the report would be their noise.  The
       trainer's own code paths are leak-checked by test_train_batch,
       test_train_checkpoint and test_train_config. */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    const char *bin = M2U_BUILD_DIR "/m2u-train";

    /* 1. straight run: learns, writes its outputs */
    CHECK(t_sh("%s %s/run.yaml run.out_dir=%s/A 2> %s/A.log", bin, g_dir, g_dir, g_dir) == 0, "run A failed (see %s/A.log)",
          g_dir);
    double a[20] = {0};
    CHECK(read_losses("A", a, 20) == 20, "run A logged %d steps", read_losses("A", a, 20));
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/A/config.yaml", g_dir);
    CHECK(access(pa, F_OK) == 0, "no resolved config saved");
    CHECK(t_sh("grep -q '\"event\": \"done\"' %s/A/metrics.jsonl", g_dir) == 0, "no summary record");
    double held0 = 0, held1 = 0;
    {
        char line[512];
        snprintf(pa, sizeof pa, "%s/A/metrics.jsonl", g_dir);
        FILE *f = fopen(pa, "r");
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "\"eval_loss\": ");
            if (p && strstr(line, "\"start\"")) held0 = atof(p + 13);
            if (p && strstr(line, "\"done\"")) held1 = atof(p + 13);
        }
        if (f) fclose(f);
    }
    printf("run A: loss %.3f -> %.3f, held-out %.3f -> %.3f\n", a[0], a[19], held0, held1);
    CHECK(held1 < 0.8 * held0, "held-out loss did not fall: %.3f -> %.3f", held0, held1);

    /* 2. kill -9 after the step-10 checkpoint, resume, compare; then the same with
       train.precision bf16 (bf16 products where the CPU has them) against a straight bf16 run */
    kill_resume_compare(bin, "A", "B", NULL, a);
    CHECK(t_sh("%s %s/run.yaml run.out_dir=%s/A16 train.precision=bf16 2> %s/A16.log", bin, g_dir, g_dir, g_dir) == 0,
          "run A16 failed (see %s/A16.log)", g_dir);
    double a16[20] = {0};
    CHECK(read_losses("A16", a16, 20) == 20, "run A16 logged %d steps", read_losses("A16", a16, 20));
    CHECK(t_sh("grep -q 'precision bf16: frozen weights held as bf16 .*, multiplied in' %s/A16.log", g_dir) == 0,
          "run A16 does not say which arithmetic it used (see %s/A16.log)", g_dir);
    kill_resume_compare(bin, "A16", "B16", "train.precision=bf16", a16);

    /* 3. 2 ranks x batch 2 == 1 rank x 2 accumulation steps of batch 2 (no dropout) */
    if (t_sh("command -v mpirun > /dev/null") == 0) {
        /* the whole M2UGen model: adapters through prefix queries and gates, projector with MSE */
        const char *common = "lora.dropout=0 train.max_steps=6 train.batch=2 run.save_every=0 train.stage=2 "
                             "train.trainable=lora,norm,aud_embeddings,adapters,gates,prefix_query,projector "
                             "model.modalities=music model.query_layer=1 model.music_tokens=4 model.music_dim=8 "
                             "model.projector.d_model=8 model.projector.heads=2 model.projector.enc_layers=1 "
                             "model.projector.dec_layers=1 model.projector.ffn=16 model.projector.n_out=2 "
                             "model.projector.out_dim=6";
        CHECK(t_sh("%s %s/run.yaml %s train.accum=2 run.out_dir=%s/C 2> %s/C.log", bin, g_dir, common, g_dir, g_dir) == 0,
              "1-rank run failed (see %s/C.log)", g_dir);
        CHECK(t_sh("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe "
                 "-x OMP_NUM_THREADS=1 %s %s/run.yaml %s train.accum=1 run.out_dir=%s/D > %s/D.log 2>&1",
                 bin, g_dir, common, g_dir, g_dir) == 0,
              "2-rank run failed (see %s/D.log)", g_dir);
        snprintf(pa, sizeof pa, "%s/C/checkpoints/step-00000006/trainable.safetensors", g_dir);
        snprintf(pb, sizeof pb, "%s/D/checkpoints/step-00000006/trainable.safetensors", g_dir);
        double e = weights_rel_diff(pa, pb);
        double c6[6] = {0}, d6[6] = {0};
        read_losses("C", c6, 6);
        read_losses("D", d6, 6);
        printf("2 ranks vs accumulation: weights rel diff %.2e, step-6 loss %.7f vs %.7f\n", e, c6[5], d6[5]);
        CHECK(t_sh("grep -q '2 rank(s)' %s/D.log", g_dir) == 0, "the MPI run did not see 2 ranks");
        CHECK(e < 1e-4, "2 ranks x b differs from 1 rank x 2 accum: %.3g (relative L2 of all weights)", e);
        CHECK(fabs(c6[5] - d6[5]) < 1e-5 * fabs(c6[5]), "losses differ: %.7f vs %.7f", c6[5], d6[5]);
        /* the checkpoint holds the modules under M2UGen's names */
        m2u_safetensors *st;
        if (m2u_st_open(pa, &st) == 0) {
            const char *names[] = {"prefix_query.weight", "mu_mert_agg.weight", "output_projector.fc.weight",
                                   "model.layers.2.self_attn.gate"};
            for (size_t k = 0; k < 4; k++) CHECK(m2u_st_find(st, names[k]), "checkpoint lacks %s", names[k]);
            m2u_st_close(st);
        }
    } else {
        CHECK(0, "mpirun not found (apt-get install openmpi-bin)");
    }

    /* 4. a diverging run stops at the first non-finite loss, keeping the last good checkpoint */
    CHECK(t_sh("%s %s/run.yaml train.lr=1e30 train.min_lr=1e29 train.clip_grad=0 train.warmup_steps=0 "
             "run.save_every=1 run.out_dir=%s/N 2> %s/N.log",
             bin, g_dir, g_dir, g_dir) == 1,
          "a diverging run did not stop with an error");
    CHECK(t_sh("grep -qiE 'step [0-9]+: loss is -?(nan|inf)' %s/N.log", g_dir) == 0, "no clear divergence message");
    snprintf(pa, sizeof pa, "%s/N/checkpoints/step-00000001/COMPLETE", g_dir);
    CHECK(access(pa, F_OK) == 0, "the last good checkpoint is gone");

    /* 5. refusals before any work */
    snprintf(pa, sizeof pa, "%s/bad.yaml", g_dir);
    FILE *f = fopen(pa, "w");
    fprintf(f, "run:\n  name: bad\ntrain:\n  stage: 1\n  lrr: 1\n");
    fclose(f);
    CHECK(t_sh("%s %s 2> %s/bad.log", bin, pa, g_dir) == 1, "bad config accepted");
    CHECK(t_sh("grep -q 'bad.yaml:5' %s/bad.log", g_dir) == 0, "message lacks file:line");
    CHECK(t_sh("%s %s/run.yaml train.trainable=lora,aud_embeddings,adapters model.query_layer=2 run.out_dir=%s/E "
             "2> %s/E.log", bin, g_dir, g_dir, g_dir) == 1 &&
              t_sh("grep -q 'query_layer' %s/E.log", g_dir) == 0,
          "adapter groups deeper than the LLaMA were accepted");

    /* 6. a feature or target column of another shape than the model's is refused before
       step 1, naming the shard, the column and both shapes (a smaller one used to be
       zero-padded into the model's buffers and the run went to the end) */
    const char *mm = "train.stage=2 train.max_steps=2 run.save_every=0 "
                     "train.trainable=lora,norm,aud_embeddings,adapters,gates,prefix_query,projector "
                     "model.modalities=music model.query_layer=1 model.music_dim=8 model.projector.d_model=8 "
                     "model.projector.heads=2 model.projector.enc_layers=1 model.projector.dec_layers=1 "
                     "model.projector.ffn=16 model.projector.out_dim=6";
    CHECK(t_sh("%s %s/run.yaml %s model.music_tokens=5 model.projector.n_out=2 run.out_dir=%s/F 2> %s/F.log", bin,
             g_dir, mm, g_dir, g_dir) == 1,
          "MERT features [4, 8] accepted for a model of 5 x 8 (see %s/F.log)", g_dir);
    CHECK(t_sh("grep -qF \"data/shard-00000.h5: column 'mert' holds [4, 8] per sample, but the model expects [5, 8] "
             "(model.music_tokens x model.music_dim)\" %s/F.log", g_dir) == 0,
          "no clear shape message (see %s/F.log)", g_dir);
    CHECK(t_sh("grep -q '\"step\": 1,' %s/F/metrics.jsonl 2> /dev/null", g_dir) != 0, "a step ran before the refusal");
    CHECK(t_sh("%s %s/run.yaml %s model.music_tokens=4 model.projector.n_out=3 run.out_dir=%s/G 2> %s/G.log", bin,
             g_dir, mm, g_dir, g_dir) == 1,
          "T5 targets [2, 6] accepted for a projector of 3 x 6 (see %s/G.log)", g_dir);
    CHECK(t_sh("grep -qF \"column 't5' holds [2, 6] per sample, but the model expects [3, 6] (model.projector.n_out x "
             "model.projector.out_dim)\" %s/G.log", g_dir) == 0,
          "no clear target shape message (see %s/G.log)", g_dir);
    CHECK(t_sh("%s %s/run.yaml %s model.music_tokens=4 model.projector.n_out=2 run.out_dir=%s/H 2> %s/H.log", bin,
             g_dir, mm, g_dir, g_dir) == 0,
          "matching shapes refused (see %s/H.log)", g_dir);

    /* 7. no held-out data (no sample of split 'test'): eval_loss is null, never the NaN
       JSON has no word for, so every line of metrics.jsonl is JSON */
    CHECK(t_sh("%s %s/run.yaml train.max_steps=2 run.save_every=0 eval.split=test run.out_dir=%s/I 2> %s/I.log", bin,
             g_dir, g_dir, g_dir) == 0,
          "run without held-out data failed (see %s/I.log)", g_dir);
    int n_null = 0;
    int bad = bad_json_lines("I", &n_null, NULL, 0);
    CHECK(bad == 0 && n_null == 2, "metrics.jsonl without held-out data: %d lines not JSON, %d null eval_loss (want 0, 2 "
                                   "in start and done)", bad, n_null);
    /* 8. a resumed run whose metrics.jsonl ends in a killed run's torn line: the torn
       line stays alone, the resumed run's records are whole (they were glued to it) */
    char last[1024] = "", done0[1024] = "";
    bad_json_lines("I", &n_null, done0, sizeof done0); /* the first run's done record */
    CHECK(t_sh("printf '{\"step\": 3, \"epo' >> %s/I/metrics.jsonl && %s %s/run.yaml train.max_steps=2 run.save_every=0 "
             "eval.split=test run.out_dir=%s/I --resume 2>> %s/I.log", g_dir, bin, g_dir, g_dir, g_dir) == 0,
          "resume failed (see %s/I.log)", g_dir);
    bad = bad_json_lines("I", &n_null, last, sizeof last);
    CHECK(bad == 1 && strstr(last, "\"event\": \"done\""),
          "after a torn line: %d lines not JSON (want 1), last line %s", bad, last);
    /* nothing left to train: the done record repeats the checkpoint's last loss, not 0 */
    const char *l0 = strstr(done0, "\"train_loss\": "), *l1 = strstr(last, "\"train_loss\": ");
    CHECK(l0 && l1 && atof(l1 + 14) == atof(l0 + 14) && atof(l1 + 14) > 0, "resumed done record: %s (first run: %s)",
          last, done0);
    /* 9. the memory plan (plan.h): exact counts from the opened model, the verdict as the exit
       status, and a run over its limit refused before step 1 */
    CHECK(t_sh("%s %s/run.yaml --plan --memory 1G > %s/plan.txt 2> %s/plan.log", bin, g_dir, g_dir, g_dir) == 0,
          "--plan --memory 1G failed or did not fit (see %s/plan.txt, plan.log)", g_dir);
    long n_tr = -1, n_plan = -1;
    {
        char line[1024];
        snprintf(pa, sizeof pa, "%s/A.log", g_dir);
        FILE *lf = fopen(pa, "r");
        while (lf && fgets(line, sizeof line, lf)) {
            char *q = strstr(line, " trainable parameters");
            if (q) {
                while (q > line && q[-1] >= '0' && q[-1] <= '9') q--;
                n_tr = atol(q);
            }
        }
        if (lf) fclose(lf);
        snprintf(pa, sizeof pa, "%s/plan.txt", g_dir);
        lf = fopen(pa, "r");
        while (lf && fgets(line, sizeof line, lf)) {
            char *q = strstr(line, "  trainables ");
            if (q && (q = strstr(line, "B  "))) n_plan = atol(q + 3);
        }
        if (lf) fclose(lf);
    }
    CHECK(n_tr > 0 && n_plan == n_tr, "plan's trainables %ld, the run's %ld", n_plan, n_tr);
    /* weights as stored: the safetensors file less its header (the tied 32000 x 64 table and 3 layers, fp32) */
    CHECK(t_sh("grep -q 'weights .* 8.24 MiB .*(F32)' %s/plan.txt && grep -q '^fits: 1.00 GiB available (--memory)' "
             "%s/plan.txt", g_dir, g_dir) == 0, "plan's weights / verdict line (see %s/plan.txt)", g_dir);
    CHECK(t_sh("%s %s/run.yaml --plan --memory 1M > %s/plan2.txt 2>&1", bin, g_dir, g_dir) == 1 &&
              t_sh("grep -q 'does NOT fit: 1.00 MiB available' %s/plan2.txt", g_dir) == 0,
          "a plan over 1 MiB was not refused (see %s/plan2.txt)", g_dir);
    CHECK(t_sh("%s %s/run.yaml --plan --memory 12Q > /dev/null 2> %s/plan3.txt", bin, g_dir, g_dir) == 2 &&
              t_sh("grep -q \"'12Q' is not a size\" %s/plan3.txt", g_dir) == 0,
          "a bad --memory was not refused as a usage error (see %s/plan3.txt)", g_dir);
    CHECK(t_sh("%s %s/run.yaml run.memory_limit=2M run.out_dir=%s/J 2> %s/J.log", bin, g_dir, g_dir, g_dir) == 1 &&
              t_sh("grep -q 'does not fit in this node' %s/J.log && grep -q 'does NOT fit: 2.00 MiB available "
                 "(run.memory_limit)' %s/J.log", g_dir, g_dir) == 0,
          "a run over run.memory_limit was not refused with its plan (see %s/J.log)", g_dir);
    CHECK(t_sh("test -e %s/J/metrics.jsonl", g_dir) != 0, "the refused run started");
    CHECK(t_sh("%s %s/run.yaml run.memory_limit=lots run.out_dir=%s/K 2> %s/K.log", bin, g_dir, g_dir, g_dir) == 1 &&
              t_sh("grep -q \"run.memory_limit: 'lots' is not a size\" %s/K.log", g_dir) == 0,
          "a bad run.memory_limit was not refused naming the key (see %s/K.log)", g_dir);
    CHECK(t_sh("grep -q 'peak memory of rank 0 .*; plan ' %s/A.log && grep -q '\"peak_rss_bytes\": [1-9]' "
             "%s/A/metrics.jsonl", g_dir, g_dir) == 0, "no measured peak beside the plan (see %s/A.log)", g_dir);
    if (t_fail == 0) t_sh("rm -rf %s", g_dir);
    return t_finish("test_train_run");
}
