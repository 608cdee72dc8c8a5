/* m2u-dataset's command line and its whole-build outcomes, on tiny inputs:
 *   - option mistakes (unknown option, missing --out, bad --valid / --recipes
 *     values, ...) print what was wrong and the usage and exit 2, never a
 *     silent 255;
 *   - --help works for every command and shows examples;
 *   - a folder holding only unusable files (empty, not media, a dangling
 *     link) gives no dataset and exit status 1 with the count per reason,
 *     while errors.jsonl still lists every file;
 *   - eight steady tones at different pitches are all kept (none dropped as
 *     a fingerprint duplicate of another). */
#include "build.h"
#include "fileio.h"
#include "m2u_error.h"
#include "manifest.h"
#include "test_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define DIR M2U_BUILD_DIR "/test_dataset_cli_work"
#define TOOL M2U_BUILD_DIR "/m2u-dataset"

/* Run the tool with args; its exit status, and stdout + stderr in *out (malloc'ed). */
static int run_tool(char **out, const char *fmt, ...) {
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/out.txt' 2>&1", TOOL, args, DIR);
    fflush(NULL);
    int st = system(cmd);
    size_t len = 0;
    *out = NULL;
    snprintf(cmd, sizeof cmd, "%s/out.txt", DIR);
    if (m2u_read_file(cmd, out, &len)) *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_option_mistakes(void) {
    static const struct {
        const char *args, *says, *usage;
    } cases[] = {
        {"build --input x --out y --bogus", "unknown option '--bogus'", "usage: m2u-dataset build"},
        {"build --input x --out y --frobnicate 3", "unknown option '--frobnicate'", "usage: m2u-dataset build"},
        {"build --input x", "give --out DIR", "usage: m2u-dataset build"},
        {"build --out y", "give at least one --input", "usage: m2u-dataset build"},
        {"build --input x --out", "--out needs a value", "usage: m2u-dataset build"},
        {"build --input x --out y --valid 2", "--valid: expected a number in [0, 0.9], got '2'",
         "usage: m2u-dataset build"},
        {"build --input x --out y --valid abc", "--valid: expected a number", "usage: m2u-dataset build"},
        {"build --input x --out y --recipes mucaps,songs", "unknown recipe 'songs'", "usage: m2u-dataset build"},
        {"build --input x --out y --valid 0.6 --test 0.5", "--valid + --test must be < 1", "usage: m2u-dataset build"},
        {"build stray --input x --out y", "unexpected argument 'stray'", "usage: m2u-dataset build"},
        {"build --input x --out y --threads 0", "--threads: expected a number in [1, 1024], got '0'",
         "usage: m2u-dataset build"},
        {"build --input x --out y --audio-cache -1", "--audio-cache: expected a number in [0, 1e+06], got '-1'",
         "usage: m2u-dataset build"},
        {"text --input x.jsonl", "give --out DIR", "usage: m2u-dataset text"},
        {"text --input x.jsonl --out y --shard-size 0", "--shard-size: expected a number", "usage: m2u-dataset text"},
        {"text --input x.jsonl --out y --colour red", "unknown option '--colour'", "usage: m2u-dataset text"},
        {"card", "give the build's DIR", "usage: m2u-dataset card"},
        {"card --fast d", "unknown option '--fast'", "usage: m2u-dataset card"},
        {"card a b", "one DIR only", "usage: m2u-dataset card"},
        {"verify", "give the dataset's DIR", "usage: m2u-dataset verify"},
        {"verify --sha d", "unknown option '--sha'", "usage: m2u-dataset verify"},
        {"verify a b", "one DIR only", "usage: m2u-dataset verify"},
        {"bake", "unknown command 'bake'", "usage: m2u-dataset build"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *out;
        int st = run_tool(&out, "%s", cases[k].args);
        CHECK(st == 2 && strstr(out, cases[k].says) && strstr(out, cases[k].usage),
              "m2u-dataset %s: exit %d (expected 2), output must say \"%s\" and show \"%s\":\n%s", cases[k].args, st,
              cases[k].says, cases[k].usage, out);
        free(out);
    }
}

static void check_help(void) {
    static const struct {
        const char *args, *usage;
    } cases[] = {{"--help", "m2u-dataset COMMAND --help"},
                 {"build --help", "usage: m2u-dataset build"},
                 {"build --input x -h", "usage: m2u-dataset build"},
                 {"text --help", "usage: m2u-dataset text"},
                 {"card --help", "usage: m2u-dataset card"},
                 {"card -h", "usage: m2u-dataset card"},
                 {"verify --help", "usage: m2u-dataset verify"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *out;
        int st = run_tool(&out, "%s", cases[k].args);
        CHECK(st == 0 && strstr(out, cases[k].usage) && strstr(out, "example"),
              "m2u-dataset %s: exit %d, must show \"%s\" with examples:\n%s", cases[k].args, st, cases[k].usage, out);
        free(out);
    }
    char *out;
    run_tool(&out, "build --help");
    CHECK(strstr(out, "--strict") && strstr(out, "--no-verify"), "build --help lacks --strict / --no-verify");
    free(out);
}

static void check_only_unusable(void) {
    CHECK(system("cd '" DIR "' && mkdir -p junk && : > junk/empty.wav && echo 'not audio' > junk/notes.mp3 && "
                 "ln -sf '" DIR "/nowhere.flac' junk/gone.flac") == 0,
          "make junk");
    char *out;
    int st = run_tool(&out, "build --input '%s/junk' --licence CC0-1.0 --out '%s/junk_out' --quiet", DIR, DIR);
    CHECK(st == 1 && strstr(out, "no sample was made from 3 input file(s)") && strstr(out, "1 empty") &&
              strstr(out, "1 not-media") && strstr(out, "1 cannot-open") && strstr(out, "errors.jsonl"),
          "a folder of unusable files: exit %d (expected 1) and the reasons:\n%s", st, out);
    free(out);
    char *errs = NULL;
    size_t len = 0;
    CHECK(m2u_read_file(DIR "/junk_out/errors.jsonl", &errs, &len) == 0, "errors.jsonl: %s", m2u_last_error());
    int lines = 0;
    for (size_t i = 0; errs && i < len; i++) lines += errs[i] == '\n';
    CHECK(lines == 3 && strstr(errs, "gone.flac") && strstr(errs, "dangling symbolic link"),
          "errors.jsonl must list the 3 files:\n%s", errs ? errs : "");
    free(errs);

    /* the library says the same (no MPI) */
    const char *inputs[1] = {DIR "/junk"};
    m2u_build_config c;
    m2u_build_config_default(&c);
    c.inputs = inputs, c.n_inputs = 1, c.out_dir = DIR "/junk_out2", c.default_licence = "CC0-1.0";
    c.progress = 0;
    CHECK(m2u_build_run(&c, NULL, NULL) != 0 && strstr(m2u_last_error(), "no sample was made"),
          "m2u_build_run on unusable files: %s", m2u_last_error());

    /* a named input that does not exist is recorded, or stops the build under --strict */
    st = run_tool(&out, "build --input '%s/junk' --input '%s/absent.wav' --licence CC0-1.0 --out '%s/junk_out3' "
                  "--quiet",
                  DIR, DIR, DIR);
    CHECK(st == 1 && strstr(out, "4 input file(s)") && strstr(out, "2 cannot-open"),
          "a missing named input is counted, not fatal: exit %d\n%s", st, out);
    free(out);
    st = run_tool(&out, "build --input '%s/junk' --input '%s/absent.wav' --strict --licence CC0-1.0 "
                  "--out '%s/junk_out4' --quiet",
                  DIR, DIR, DIR);
    CHECK(st == 1 && strstr(out, "absent.wav: cannot open") && !m2u_file_exists(DIR "/junk_out4"),
          "--strict with a missing input: exit %d\n%s", st, out);
    free(out);
}

/* Eight steady test tones at different pitches are eight clips: none may be
 * dropped as a near duplicate (steady tones share most fingerprint bits
 * whatever the pitch; half of such a set used to be dropped), while a
 * re-encoded copy of a real piece still is (test_build, test_fingerprint). */
static void check_tones_kept(void) {
    static const int hz[8] = {220, 262, 330, 392, 440, 523, 659, 880};
    CHECK(system("mkdir -p '" DIR "/tones'") == 0, "mkdir tones");
    for (int k = 0; k < 8; k++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -nostdin -v error -y -f lavfi -i 'sine=frequency=%d:duration=6:sample_rate=16000' "
                 "'%s/tones/tone%d.wav'",
                 hz[k], DIR, hz[k]);
        CHECK(system(cmd) == 0, "ffmpeg tone %d Hz", hz[k]);
    }
    char *out;
    int st = run_tool(&out, "build --input '%s/tones' --licence CC0-1.0 --out '%s/tones_out' --audio-rate 16000 "
                      "--clip 5 --hop 5 --min-clip 3 --recipes mucaps --valid 0 --test 0 --quiet",
                      DIR, DIR);
    CHECK(st == 0 && strstr(out, "8 files surveyed now (0 unusable, 0 duplicates)"),
          "8 distinct tones: exit %d, every one must be kept:\n%s", st, out);
    free(out);
    char *errs = NULL;
    size_t len = 0;
    if (m2u_read_file(DIR "/tones_out/errors.jsonl", &errs, &len) == 0) {
        CHECK(!strstr(errs, "duplicate"), "tones dropped as duplicates:\n%s", errs);
        free(errs);
    }
}

/* m2u-dataset verify on the tones' build: every shard passes; with the manifest's
 * xxh128 taken out (as written before m2u recorded it), --add-xxh128 puts the same
 * back; a byte changed in a shard (same size) fails it, naming the shard and the
 * hash, and still checks the rest. */
static void check_verify(void) {
    const char *mp = DIR "/tones_out/manifest.json";
    m2u_manifest m;
    int n = 0;
    if (m2u_manifest_read(mp, &m) == 0) {
        n = m.n_shards;
        for (int i = 0; i < m.n_shards; i++)
            CHECK(strlen(m.shards[i].xxh128) == 32, "shard %s: no xxh128 in the manifest", m.shards[i].path);
    }
    char *out, want[64];
    m2u_manifest old;
    if (n > 0 && m2u_manifest_read(mp, &old) == 0) {
        for (int i = 0; i < old.n_shards; i++) old.shards[i].xxh128[0] = 0;
        CHECK(m2u_manifest_write(mp, &old) == 0, "write the manifest without xxh128");
        m2u_manifest_free(&old);
        int st = run_tool(&out, "verify '%s/tones_out'", DIR);
        CHECK(st == 0 && strstr(out, "xxh128 (not recorded)") && strstr(out, "--add-xxh128 records it"),
              "verify without xxh128: exit %d:\n%s", st, out);
        free(out);
        st = run_tool(&out, "verify --add-xxh128 '%s/tones_out'", DIR);
        CHECK(st == 0 && strstr(out, "recorded the xxh128 of"), "verify --add-xxh128: exit %d:\n%s", st, out);
        free(out);
        CHECK(m2u_manifest_read(mp, &old) == 0 && old.n_shards == n, "reread");
        for (int i = 0; i < old.n_shards && old.n_shards == n; i++)
            CHECK(!strcmp(old.shards[i].xxh128, m.shards[i].xxh128) && !strcmp(old.shards[i].sha256, m.shards[i].sha256),
                  "shard %s: xxh128 '%s' recorded, '%s' built", old.shards[i].path, old.shards[i].xxh128,
                  m.shards[i].xxh128);
        m2u_manifest_free(&old);
    }
    int st = run_tool(&out, "verify '%s/tones_out'", DIR);
    snprintf(want, sizeof want, "%d of %d shards verified, 8 samples", n, n);
    CHECK(n > 0 && st == 0 && strstr(out, want) && strstr(out, "ok      shard-") && !strstr(out, "FAILED"),
          "verify: exit %d, expected \"%s\":\n%s", st, want, out);
    free(out);
    if (n > 0) {
        char path[600], cmd[800];
        snprintf(path, sizeof path, "%s/tones_out/%s", DIR, m.shards[n - 1].path);
        FILE *f = fopen(path, "r+b");
        CHECK(f != NULL, "open %s", path);
        if (f) {
            fseek(f, m.shards[n - 1].bytes / 2, SEEK_SET);
            int c = fgetc(f);
            fseek(f, m.shards[n - 1].bytes / 2, SEEK_SET);
            fputc(c ^ 0x40, f);
            fclose(f);
        }
        st = run_tool(&out, "verify '%s/tones_out'", DIR);
        snprintf(want, sizeof want, "FAILED  %s", m.shards[n - 1].path);
        snprintf(cmd, sizeof cmd, "%d of %d shards verified", n - 1, n);
        CHECK(st == 1 && strstr(out, want) && strstr(out, cmd) && strstr(out, "xxh128") &&
                  strstr(out, "1 shard(s) failed verification"),
              "verify of a damaged shard: exit %d:\n%s", st, out);
        free(out);
        /* nothing is recorded from a dataset that failed */
        st = run_tool(&out, "verify --add-xxh128 '%s/tones_out'", DIR);
        CHECK(st == 1 && !strstr(out, "recorded"), "--add-xxh128 on a damaged dataset: exit %d:\n%s", st, out);
        free(out);
    }
    m2u_manifest_free(&m);
}

/* --threads: the clips of a file are analysed side by side, and a one-clip file runs its
 * analysis's parts side by side; --audio-cache 0: the samples decode each file again instead
 * of taking the survey's copy.  The shards have the same bytes on 1, 3 and 2 threads, with and
 * without the copies.  The inputs are a 3-clip sweep and a 1-clip tone with a beat, at 16 kHz;
 * MUEdit re-renders and re-analyses edits (a one-clip analysis on the sample side). */
/* the manifest's shards as "path sha256" lines (NULL when it cannot be read) */
static char *shard_sums(const char *manifest) {
    m2u_manifest m;
    char *sums = NULL;
    if (m2u_manifest_read(manifest, &m) == 0 && (sums = calloc((size_t)m.n_shards + 1, 256)) != NULL)
        for (int i = 0; i < m.n_shards; i++)
            snprintf(sums + strlen(sums), 256, "%.150s %s\n", m.shards[i].path, m.shards[i].sha256);
    m2u_manifest_free(&m);
    return sums;
}
static void check_threads_same(void) {
    CHECK(system("mkdir -p '" DIR "/thr' && "
                 "ffmpeg -nostdin -v error -y -f lavfi -i 'aevalsrc=0.4*sin(2*PI*(200+40*t)*t):s=16000:d=16' "
                 "'" DIR "/thr/sweep.wav' && "
                 "ffmpeg -nostdin -v error -y -f lavfi -i 'aevalsrc=0.5*sin(2*PI*330*t)*exp(-8*mod(t\\,0.5)):s=16000:d=7' "
                 "'" DIR "/thr/beat.wav'") == 0,
          "ffmpeg inputs for --threads");
    char *out, *sums[3] = {NULL, NULL, NULL};
    const int threads[3] = {1, 3, 2}, cache_mb[3] = {1024, 1024, 0}; /* the last decodes each file twice */
    for (int k = 0; k < 3; k++) {
        int st = run_tool(&out, "build --input '%s/thr' --licence CC0-1.0 --out '%s/thr_out%d' --audio-rate 16000 "
                          "--clip 5 --hop 5 --min-clip 3 --recipes mucaps,musicqa,muedit --valid 0 --test 0 --quiet "
                          "--threads %d --audio-cache %d",
                          DIR, DIR, k, threads[k], cache_mb[k]);
        CHECK(st == 0 && strstr(out, "2 files surveyed now (0 unusable, 0 duplicates), 4 clips"),
              "--threads %d: exit %d:\n%s", threads[k], st, out);
        free(out);
        char path[600];
        snprintf(path, sizeof path, "%s/thr_out%d/manifest.json", DIR, k);
        sums[k] = shard_sums(path);
    }
    for (int k = 1; k < 3; k++)
        CHECK(sums[0] && sums[k] && *sums[0] && !strcmp(sums[0], sums[k]),
              "the shards with --threads %d --audio-cache %d differ from those with --threads 1:\n%s\n%s", threads[k],
              cache_mb[k], sums[0] ? sums[0] : "(none)", sums[k] ? sums[k] : "(none)");
    free(sums[0]), free(sums[1]), free(sums[2]);
}

int main(void) {
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* for the tool (OpenMPI's exit leaks), as in test_build */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    CHECK(system("rm -rf '" DIR "' && mkdir -p '" DIR "'") == 0, "mkdir");
    check_option_mistakes();
    check_help();
    check_only_unusable();
    check_tones_kept();
    check_verify();
    check_threads_same();
    if (!t_fail) CHECK(system("rm -rf '" DIR "'") == 0, "cleanup");
    return t_finish("test_dataset_cli");
}
