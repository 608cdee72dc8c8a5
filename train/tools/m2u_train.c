/* m2u-train: train M2UGen-style models from a YAML recipe, as one process or under mpirun/srun. */
#include "log.h"
#include "progress.h"
#include "config.h"
#include "dist.h"
#include "m2u_error.h"
#include "ops.h"
#include "plan.h"
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("usage: m2u-train CONFIG.yaml [key=value ...] [--resume | --resume-auto] [--dump-config] [--schema]\n"
          "       m2u-train CONFIG.yaml [key=value ...] --plan [--memory SIZE] [--ranks-per-node N]\n"
          "\n"
          "Train an M2UGen-style model on an m2u dataset as the recipe says: around the frozen\n"
          "LLaMA, whatever train.trainable lists of its LoRA, biases, norms and [AUD] token rows,\n"
          "the music / image / video adapters (MERT, ViT, ViViT features into the last layers),\n"
          "their gates and prefix queries, and the output projector towards the music decoder\n"
          "(MusicGen or AudioLDM2).  key=value overrides any key of the recipe\n"
          "(configs/SCHEMA.md, or --schema).  The resolved config, metrics.jsonl (one JSON line per\n"
          "step) and checkpoints go to run.out_dir.  Under mpirun every rank trains on its share\n"
          "of each global batch.\n"
          "\n"
          "  --resume        continue bit-identically from the newest complete checkpoint\n"
          "  --resume-auto   the same when a checkpoint exists, else start (requeued jobs)\n"
          "  --dump-config   print the resolved config as YAML and exit\n"
          "  --schema        print every config key as Markdown and exit\n"
          "  --plan          print the run's memory plan per rank and per node (weights as stored,\n"
          "                  trainables, gradients, AdamW state, activations, batches) and whether it\n"
          "                  fits, then exit (0: fits, 1: does not); opens the model without reading\n"
          "                  its weights.  A run checks the same before step 1 (run.memory_check)\n"
          "  --memory SIZE   with --plan: the capacity to check against (24G, 40GiB, 80000M) instead\n"
          "                  of this node's (the cgroup's limit, else MemAvailable)\n"
          "  --ranks-per-node N  with --plan: ranks sharing a node (default: this job's)\n"
          "\n"
          "examples:\n"
          "  m2u-train configs/tiny_stage1.yaml\n"
          "  m2u-train configs/stage3.yaml model.llm=/models/Llama-2-7b-hf train.lr=5e-5\n"
          "  m2u-train configs/stage2.yaml train.trainable=adapters,gates,prefix_query,projector\n"
          "  m2u-train configs/tiny_stage1.yaml --dump-config\n"
          "  m2u-train configs/stage3.yaml --plan --memory 24G train.checkpoint_activations=true\n"
          "  mpirun -np 2 m2u-train configs/tiny_stage1.yaml run.out_dir=runs/s1 --resume\n"
          "  launch/mpirun.sh 4 configs/stage2.yaml      (binding and threads set for you)\n",
          f);
}

/* --plan: the model opened (weights mmap'ed, not read), the plan, the verdict. */
static int print_plan(const m2u_train_config *cfg, int ranks, size_t capacity, int show, int *fits) {
    m2u_train_model tm;
    if (m2u_train_model_open_mapped(cfg, &tm)) return -1; /* a bf16 plan is counted, not converted */
    m2u_train_plan p;
    int rc = m2u_train_plan_make(cfg, &tm, ranks, &p);
    m2u_train_model_close(&tm);
    if (rc) return -1;
    const char *src = "--memory";
    if (!capacity && m2u_train_plan_available(&capacity, &src)) return -1;
    *fits = m2u_train_plan_fit(cfg, &p, capacity);
    char *text = m2u_train_plan_text(cfg, &p, capacity, src);
    if (!text) return m2u_fail("out of memory");
    if (show) fputs(text, stdout);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    m2u_dist dist;
    if (m2u_dist_init(&argc, &argv, &dist)) {
        fprintf(stderr, "m2u-train: %s\n", m2u_last_error());
        return 1;
    }
    const char *path = NULL, *overrides[256];
    int n_over = 0, resume = 0, dump = 0, rc = 0, bad_cli = 0, plan = 0, ranks_per_node = 0;
    size_t capacity = 0;
    for (int i = 1; i < argc; i++) /* --help anywhere, even after a mistake */
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (dist.rank == 0) usage(stdout);
            m2u_dist_finalize();
            return 0;
        }
    for (int i = 1; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--schema")) {
            if (dist.rank == 0) m2u_train_config_doc_markdown(stdout);
            m2u_dist_finalize();
            return 0;
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
        } else if (!strcmp(argv[i], "--resume-auto")) {
            resume = 2;
        } else if (!strcmp(argv[i], "--dump-config")) {
            dump = 1;
        } else if (!strcmp(argv[i], "--plan")) {
            plan = 1;
        } else if ((!strcmp(argv[i], "--memory") || !strcmp(argv[i], "--ranks-per-node")) && i + 1 >= argc) {
            rc = m2u_fail("%s needs a value", argv[i]), bad_cli = 1;
        } else if (!strcmp(argv[i], "--memory")) {
            if (m2u_parse_bytes(argv[++i], &capacity)) m2u_fail_prefix("--memory"), rc = -1, bad_cli = 1;
        } else if (!strcmp(argv[i], "--ranks-per-node")) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 4096)
                rc = m2u_fail("--ranks-per-node expects an integer in [1, 4096], got '%s'", argv[i]), bad_cli = 1;
            else ranks_per_node = (int)v;
        } else if (argv[i][0] == '-') {
            rc = m2u_fail("unknown option %s", argv[i]), bad_cli = 1;
        } else if (strchr(argv[i], '=')) {
            if (n_over == (int)(sizeof overrides / sizeof *overrides)) rc = m2u_fail("too many overrides (at most 256)");
            else overrides[n_over++] = argv[i];
        } else if (!path) {
            path = argv[i];
        } else {
            rc = m2u_fail("unexpected argument '%s' (one CONFIG.yaml; overrides are key=value)", argv[i]), bad_cli = 1;
        }
    }
    if (!rc && !path) rc = m2u_fail("no config given"), bad_cli = 1;
    if (!rc && !plan && (capacity || ranks_per_node))
        rc = m2u_fail("--memory and --ranks-per-node go with --plan"), bad_cli = 1;
    if (bad_cli) { /* a mistake on the command line: what was wrong, the usage, status 2 */
        if (dist.rank == 0) {
            fprintf(stderr, "m2u-train: %s\n\n", m2u_last_error());
            usage(stderr);
        }
        m2u_dist_finalize();
        return 2;
    }
    m2u_train_config cfg;
    int loaded = 0;
    if (!rc) {
        rc = m2u_train_config_load(path, overrides, n_over, dump || plan ? M2U_CFG_NO_FILE_CHECKS : 0, &cfg);
        loaded = rc == 0;
    }
    if (!rc && plan && !dump) {
        int fits = 0;
        rc = print_plan(&cfg, ranks_per_node ? ranks_per_node : dist.local_size, capacity, dist.rank == 0, &fits);
        if (loaded) m2u_train_config_free(&cfg);
        if (rc) fprintf(stderr, "m2u-train: %s\n", m2u_last_error());
        m2u_dist_finalize();
        return rc ? 1 : fits ? 0 : 1;
    }
    if (!rc && dump) {
        char *yaml;
        rc = m2u_train_config_to_yaml(&cfg, &yaml);
        if (!rc && dist.rank == 0) fputs(yaml, stdout);
        if (!rc) free(yaml);
    } else if (!rc) {
        const char *warn = m2u_blas_threading_warning();
        if (warn && dist.rank == 0) fprintf(stderr, "m2u-train: warning: %s\n", warn);
        rc = m2u_train_run(&cfg, &dist, resume);
    }
    if (rc) fprintf(stderr, "m2u-train[%d]: %s\n", dist.rank, m2u_last_error());
    if (loaded) m2u_train_config_free(&cfg);
    m2u_dist_finalize();
    return rc ? 1 : 0;
}
