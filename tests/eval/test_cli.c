/* Every tool and subcommand as a new user meets it: --help anywhere prints the
 * usage with examples on stdout and exits 0; a mistake on the command line
 * prints what was wrong and the usage and exits 2 (a failure while running
 * exits 1); m2u-llm tokenize takes "--" as the end of options; the launcher
 * prints a real usage; m2u-train --help names everything it trains. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char g_out[1 << 16];

/* Under the sanitizer build, m2u-train runs without LeakSanitizer: Open MPI's
   MPI_Init allocations are never freed (see test_train_run); the other tools
   keep every check. */
static const char *env_for(const char *tool) { return strcmp(tool, "m2u-train") ? "" : "ASAN_OPTIONS=detect_leaks=0 "; }

/* Run cmd with stdout and stderr (2>&1) into g_out; the exit status. */
static int run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(g_out, 1, sizeof g_out - 1, p);
    g_out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* tool [sub] --help (and -h after the other arguments): usage and examples on stdout, status 0 */
static void help_ok(const char *tool, const char *sub, const char *want) {
    char cmd[1024];
    for (int form = 0; form < 2; form++) {
        snprintf(cmd, sizeof cmd, "%s%s/%s %s %s 2> /dev/null", env_for(tool), M2U_BUILD_DIR, tool, sub,
                 form ? (sub[0] ? "--out x -h" : "-h") : "--help");
        int rc = run(cmd);
        CHECK(rc == 0 && strstr(g_out, "usage:") && strstr(g_out, "examples:") && strstr(g_out, want),
              "%s %s %s: rc %d, output:\n%s", tool, sub, form ? "-h" : "--help", rc, g_out);
    }
}

/* a bad option: exit 2, the option named, the usage after it, on stderr */
static void bad_ok(const char *tool, const char *args, const char *want) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s/%s %s 2>&1 > /dev/null", env_for(tool), M2U_BUILD_DIR, tool, args);
    int rc = run(cmd);
    const char *w = strstr(g_out, want), *u = strstr(g_out, "usage:");
    CHECK(rc == 2 && w && u && w < u, "%s %s: rc %d (want 2), want '%s' then the usage:\n%s", tool, args, rc, want,
          g_out);
}

int main(void) {
    /* m2u-llm */
    static const char *const llm[] = {"tokenize", "decode", "logits", "generate", "init", "finetune"};
    for (int i = 0; i < 6; i++) {
        char want[64], args[128];
        snprintf(want, sizeof want, "usage: m2u-llm %s", llm[i]);
        help_ok("m2u-llm", llm[i], want);
        snprintf(args, sizeof args, "%s --model x --bogus", llm[i]);
        bad_ok("m2u-llm", args, "unknown option --bogus");
    }
    help_ok("m2u-llm", "", "commands:");
    bad_ok("m2u-llm", "", "no command given");
    bad_ok("m2u-llm", "frobnicate", "unknown command 'frobnicate'");
    bad_ok("m2u-llm", "generate --model x", "missing required option --prompt");
    bad_ok("m2u-llm", "logits --model x --out y --ids 1,a", "--ids: expected comma-separated integers");
    bad_ok("m2u-llm", "logits --model x --out y --ids 1 extra", "unexpected argument 'extra'");
    bad_ok("m2u-llm", "generate --model x --prompt p --top-k", "--top-k needs a value");
    /* a failure while running is status 1, not a usage error */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/m2u-llm logits --model /nonexistent --ids 1 --out /dev/null 2>&1", M2U_BUILD_DIR);
    CHECK(run(cmd) == 1 && !strstr(g_out, "usage:"), "a missing model: status 1 without usage:\n%s", g_out);
    /* "--" ends the options: text that starts with "--" is tokenized, "--help" after it too */
    snprintf(cmd, sizeof cmd, "%s/m2u-llm tokenize --model %s/export/base --no-bos -- \"--help me\" 2>&1",
             M2U_BUILD_DIR, M2U_FIXTURES);
    int rc = run(cmd);
    CHECK(rc == 0 && g_out[0] == '[' && strstr(g_out, "]"), "tokenize -- \"--help me\": rc %d, %s", rc, g_out);
    snprintf(cmd, sizeof cmd, "%s/m2u-llm tokenize --model %s/export/base --no-bos -- --verbose 2>&1", M2U_BUILD_DIR,
             M2U_FIXTURES);
    rc = run(cmd);
    CHECK(rc == 0 && g_out[0] == '[', "tokenize -- --verbose: rc %d, %s", rc, g_out);
    bad_ok("m2u-llm", "tokenize --model x --verbose", "goes after --");

    /* m2u-train */
    help_ok("m2u-train", "", "usage: m2u-train");
    help_ok("m2u-train", "cfg.yaml --bogus", "usage: m2u-train"); /* --help wins over a mistake before it */
    bad_ok("m2u-train", "--bogus", "unknown option --bogus");
    bad_ok("m2u-train", "", "no config given");
    bad_ok("m2u-train", "a.yaml b.yaml", "unexpected argument 'b.yaml'");
    snprintf(cmd, sizeof cmd, "%s%s/m2u-train --help", env_for("m2u-train"), M2U_BUILD_DIR);
    run(cmd);
    static const char *const trained[] = {"LoRA", "biases", "norms", "[AUD]", "adapters", "gates", "prefix queries",
                                          "projector"};
    for (int i = 0; i < 8; i++) CHECK(strstr(g_out, trained[i]), "m2u-train --help does not mention %s", trained[i]);

    /* m2u-eval: --help after the command is never taken for an option's value */
    static const char *const ev[] = {"captions", "fad", "bench", "kl", "cosine", "fd", "run", "report", "clap"};
    for (int i = 0; i < 9; i++) {
        char want[64], args[128];
        snprintf(want, sizeof want, "usage: m2u-eval %s", ev[i]);
        help_ok("m2u-eval", ev[i], want);
        snprintf(args, sizeof args, "%s --bogus 1", ev[i]);
        bad_ok("m2u-eval", args, "unknown option --bogus");
    }
    help_ok("m2u-eval", "", "commands:");
    bad_ok("m2u-eval", "", "no command given");
    bad_ok("m2u-eval", "bench --out", "--out needs a value");
    bad_ok("m2u-eval", "run --run r --batch 0", "--batch 0: expected an integer in [1, 256]");
    bad_ok("m2u-eval", "fd --a x", "need --a and --b");
    bad_ok("m2u-eval", "clap --clap x --audio y", "need --clap, --audio and --captions");
    bad_ok("m2u-eval", "captions --candidates c --references r --bert-baseline b.tsv", "need --bert DIR");
    bad_ok("m2u-eval", "fd --a x --b y --bert-baseline b.tsv", "belong to the captions command");
    help_ok("m2u-eval", "captions", "rescale_baseline/en/roberta-large.tsv"); /* where bert_score's table is */
    bad_ok("m2u-eval", "fd --a x --b y --meteor-wordnet w", "belong to the captions command");
    bad_ok("m2u-eval", "captions --candidates c --references r --meteor-paraphrase", "--meteor-paraphrase needs a value");
    bad_ok("m2u-eval", "frobnicate", "unknown command \"frobnicate\"");

    /* m2u-export */
    static const char *const ex[] = {"peft", "merged", "gguf", "gguf-lora", "m2ugen"};
    for (int i = 0; i < 5; i++) {
        char args[128];
        help_ok("m2u-export", ex[i], "usage: m2u-export KIND");
        snprintf(args, sizeof args, "%s --base b --bogus", ex[i]);
        bad_ok("m2u-export", args, "unknown option '--bogus'");
    }
    bad_ok("m2u-export", "", "no KIND given");
    bad_ok("m2u-export", "peft --base b", "--base and --out are required");
    bad_ok("m2u-export", "wheel --base b", "unknown kind 'wheel'");

    /* the launcher: a real usage, never its own source lines */
    snprintf(cmd, sizeof cmd, "bash %s/../../launch/mpirun.sh 2>&1", M2U_FIXTURES);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(g_out, "no rank count N given") && strstr(g_out, "usage: launch/mpirun.sh N CONFIG.yaml") &&
              strstr(g_out, "examples:") && !strstr(g_out, "#") && !strstr(g_out, "set -"),
          "mpirun.sh without arguments: rc %d:\n%s", rc, g_out);
    snprintf(cmd, sizeof cmd, "bash %s/../../launch/mpirun.sh --help 2>&1", M2U_FIXTURES);
    CHECK(run(cmd) == 0 && strstr(g_out, "usage: launch/mpirun.sh"), "mpirun.sh --help:\n%s", g_out);
    snprintf(cmd, sizeof cmd, "bash %s/../../launch/mpirun.sh two configs/x.yaml 2>&1", M2U_FIXTURES);
    CHECK(run(cmd) == 2 && strstr(g_out, "N must be a positive number of ranks, got 'two'"), "mpirun.sh two:\n%s",
          g_out);
    return t_finish("test_cli");
}
