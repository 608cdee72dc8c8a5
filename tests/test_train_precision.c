/* train.precision: bf16 (llama.h spec.frozen_bf16):
 *  - the frozen matrices stored as f32 become bf16 copies rounded to nearest even (f16 ones
 *    are read in place, as bf16 ones)
 *    (every element checked), tied tables stay one copy, bf16 checkpoints are read in place,
 *    and nothing trainable (norms, biases, token rows) is rounded;
 *  - m2u-train's per-step losses in bf16 follow fp32 within a measured tolerance on three
 *    small recipes shaped like the tiny stage 1 / 2 / 3 configs, and do differ from fp32
 *    (a bf16 run that silently computed with the fp32 weights fails);
 *  - the memory plan counts the copies the same before the conversion (--plan) and after it
 *    (the trainer's own check), and a bad value is refused naming the key. */
#include "llama.h"
#include "m2u_error.h"
#include "manifest.h"
#include "model_setup.h"
#include "ops_extra.h" /* m2u_linear_pack_available */
#include "plan.h"
#include "safetensors.h"
#include "test_dataset_util.h"
#include "test_util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];

/* ---- the copies, element by element ------------------------------------------------- */

/* w holds bf16(stored tensor t) with round-to-nearest-even through fp32, in memory of its own. */
static int is_bf16_copy(const m2u_mat *w, const m2u_st_tensor *t, const char *what) {
    if (w->dtype != M2U_BF16 || w->data == t->data) {
        fprintf(stderr, "  %s: dtype %s, %s\n", what, m2u_dtype_name(w->dtype),
                w->data == t->data ? "read in place" : "own copy");
        return 0;
    }
    float *x = malloc((size_t)t->numel * sizeof(float));
    if (!x || m2u_st_read_f32(t, x, (size_t)t->numel)) return free(x), 0;
    const uint16_t *h = w->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < t->numel; i++) bad += h[i] != m2u_f32_to_bf16(x[i]);
    free(x);
    if (bad) fprintf(stderr, "  %s: %lld of %lld elements are not bf16(stored) to nearest even\n", what, (long long)bad,
                     (long long)t->numel);
    return bad == 0;
}

static void check_linears(const m2u_llama *m, const m2u_safetensors *st, int expect_copy) {
    static const char *const parent[M2U_N_LINEAR] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                     "mlp",       "mlp",       "mlp"};
    int ok = 1;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int s = 0; s < M2U_N_LINEAR; s++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, parent[s], m2u_linear_names[s]);
            const m2u_st_tensor *t = m2u_st_find(st, name);
            const m2u_mat *w = &m->layers[l].lin[s].w;
            ok &= t && (expect_copy ? is_bf16_copy(w, t, name) : w->data == t->data && w->dtype == t->dtype);
        }
    CHECK(ok, "decoder linears of %s: expected %s", m2u_st_path(st), expect_copy ? "bf16 copies" : "in place");
}

/* An f16 checkpoint: mha_tied's tensors as f16 (kept as stored under bf16). */
static void write_f16_copy(const char *src_dir, const char *dst_dir) {
    CHECK(t_sh("mkdir -p %s && cp %s/config.json %s/", dst_dir, src_dir, dst_dir) == 0, "copy config.json");
    m2u_safetensors *st;
    CHECK(m2u_st_open(src_dir, &st) == 0, "%s", m2u_last_error());
    int n = m2u_st_count(st);
    m2u_st_entry *e = calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, i);
        float *x = malloc((size_t)t->numel * 4);
        uint16_t *h = malloc((size_t)t->numel * 2);
        m2u_st_read_f32(t, x, (size_t)t->numel);
        m2u_convert_from_f32(M2U_F16, x, h, (size_t)t->numel);
        free(x);
        e[i] = (m2u_st_entry){.name = t->name, .dtype = M2U_F16, .ndim = t->ndim, .data = h};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dst_dir);
    CHECK(m2u_st_write(path, e, n, NULL, NULL, 0) == 0, "%s", m2u_last_error());
    for (int i = 0; i < n; i++) free((void *)e[i].data);
    free(e);
    m2u_st_close(st);
}

static void llama_checks(void) {
    /* gqa_odd: f32, untied lm_head, biases, trainable norms, biases and token rows [75, 83) */
    const char *dir = M2U_FIXTURES "/llama/gqa_odd";
    m2u_train_spec spec = {.lora_r = 2, .lora_alpha = 2, .lora_targets = M2U_ALL_LINEARS,
                           .bias_targets = 1u << M2U_Q, .train_norms = 1, .token_rows_start = 75,
                           .frozen_bf16 = 1};
    m2u_llama *m;
    CHECK(m2u_llama_load(dir, &spec, &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    const m2u_safetensors *st = m->st; /* the model's mapping: "in place" means a pointer into it */
    CHECK(is_bf16_copy(&m->embed, m2u_st_find(st, "model.embed_tokens.weight"), "embed_tokens"), "embedding table");
    CHECK(is_bf16_copy(&m->lm_head, m2u_st_find(st, "lm_head.weight"), "lm_head"), "lm_head");
    check_linears(m, st, 1);
    /* the block holds exactly the copies: 2 bytes an element, each padded to 64 bytes */
    size_t src, n, bytes = m2u_llama_frozen_bf16_bytes(m, &src, &n);
    CHECK(bytes == m->frozen16_bytes && src == 4 * n && bytes >= 2 * n && bytes < 2 * n + 64 * (2 + 7 * 3),
          "frozen bf16 bytes %zu for %zu elements (%zu stored)", bytes, n, src);
    /* trainables start from the stored fp32 values, not the rounded copies */
    float row[48];
    m2u_st_read_f32(m2u_st_find(st, "model.layers.1.self_attn.q_proj.bias"), row, 48);
    CHECK(!memcmp(m->layers[1].lin[M2U_Q].bias, row, sizeof row), "a trainable bias was rounded");
    m2u_param *rows = m2u_llama_param(m, "lm_head.weight.rows");
    const m2u_st_tensor *head = m2u_st_find(st, "lm_head.weight");
    float *hv = malloc((size_t)head->numel * 4);
    m2u_st_read_f32(head, hv, (size_t)head->numel);
    CHECK(rows && !memcmp(rows->data, hv + 75 * 48, 8 * 48 * sizeof(float)), "token rows were rounded");
    free(hv);
    m2u_st_read_f32(m2u_st_find(st, "model.norm.weight"), row, 48);
    CHECK(!memcmp(m->norm.w, row, sizeof row), "a norm was rounded");
    m2u_llama_free(m);

    /* the same checkpoint without the flag: every matrix read in place, as stored */
    spec.frozen_bf16 = 0;
    CHECK(m2u_llama_load(dir, &spec, &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    st = m->st;
    CHECK(m->frozen16 == NULL && m->embed.data == m2u_st_find(st, "model.embed_tokens.weight")->data &&
              m->lm_head.dtype == M2U_F32,
          "fp32: the tables are not read in place");
    check_linears(m, st, 0);
    /* ...and the converted later (the trainer's order: plan first), the same copies */
    size_t src0, n0, plan = m2u_llama_frozen_bf16_bytes(m, &src0, &n0);
    CHECK(m2u_llama_convert_frozen_bf16(m) == 0, "%s", m2u_last_error());
    CHECK(plan == bytes && src0 == src && n0 == n && m->frozen16_bytes == bytes,
          "counted %zu bytes before converting, %zu after", plan, m->frozen16_bytes);
    CHECK(is_bf16_copy(&m->lm_head, m2u_st_find(st, "lm_head.weight"), "lm_head (converted later)"),
          "lm_head converted later");
    check_linears(m, st, 1);
    m2u_llama_free(m);

    /* f32, tied: one copy serves the embedding and the head */
    spec = (m2u_train_spec){.frozen_bf16 = 1};
    CHECK(m2u_llama_load(M2U_FIXTURES "/llama/mha_tied", &spec, &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    st = m->st;
    CHECK(is_bf16_copy(&m->embed, m2u_st_find(st, "model.embed_tokens.weight"), "tied embed_tokens"), "tied table");
    CHECK(m->lm_head.data == m->embed.data && m->lm_head.dtype == M2U_BF16, "tied head is not the table's copy");
    check_linears(m, st, 1);
    m2u_llama_free(m);

    /* an f16 checkpoint (Meta's LLaMA-2 ships so) is read in place: f16 takes 2 bytes a value
     * already and the kernels read it directly; a per-rank bf16 copy would only lose bits */
    char f16dir[128];
    snprintf(f16dir, sizeof f16dir, "%s/mha_tied_f16", g_dir);
    write_f16_copy(M2U_FIXTURES "/llama/mha_tied", f16dir);
    CHECK(m2u_llama_load(f16dir, &spec, &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    st = m->st;
    CHECK(m->frozen16 == NULL && m->embed.dtype == M2U_F16 &&
              m->embed.data == m2u_st_find(st, "model.embed_tokens.weight")->data,
          "an f16 checkpoint was copied");
    check_linears(m, st, 0);
    m2u_llama_free(m);

    /* a bf16 checkpoint is read in place: no copy at all */
    dir = M2U_FIXTURES "/llama/mqa_bf16_sharded";
    spec = (m2u_train_spec){.frozen_bf16 = 1};
    CHECK(m2u_llama_load(dir, &spec, &m) == 0, "%s", m2u_last_error());
    if (!m) return;
    st = m->st;
    size_t s2;
    CHECK(m->frozen16 == NULL && m2u_llama_frozen_bf16_bytes(m, &s2, NULL) == 0 && s2 == 0 &&
              m->embed.data == m2u_st_find(st, "model.embed_tokens.weight")->data,
          "a bf16 checkpoint was copied");
    check_linears(m, st, 0);
    m2u_llama_free(m);
}

/* ---- training runs ---------------------------------------------------------------------- */

static void write_base_and_config(void) {
    char path[256];
    t_tiny_llama_base(g_dir);
    /* the tiny recipes' optimisation (lr 3e-3, warmup, cosine, clip 1) on the test's small data */
    snprintf(path, sizeof path, "%s/run.yaml", g_dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "run:\n  name: p\n  seed: 7\n  save_every: 0\n  log_every: 1\n  eval_every: 0\n"
            "model:\n  llm: %s/base\n  aud_tokens: 8\n  modalities: [music]\n  query_layer: 1\n"
            "  music_tokens: 4\n  music_dim: 8\n"
            "  projector: {d_model: 8, heads: 2, enc_layers: 1, dec_layers: 1, ffn: 16, n_out: 2, out_dim: 6}\n"
            "lora:\n  r: 4\n  alpha: 8\n"
            "train:\n  stage: 1\n  data: %s/data/manifest.json\n  kinds: [mucaps]\n  max_len: 64\n  batch: 4\n"
            "  max_steps: %d\n  lr: 3.0e-3\n  min_lr: 3.0e-5\n  warmup_steps: 2\n  clip_grad: 1.0\n"
            "eval:\n  split: valid\n  batches: 1\n",
            g_dir, g_dir, 20);
    fclose(f);
}

/* Per-step losses of run's metrics.jsonl (t_read_losses). */
static int read_losses(const char *run, double *loss, int max) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", g_dir, run);
    return t_read_losses(path, loss, max);
}

/* "plan_bytes" of a run's done record (the plan the trainer checked before step 1) */
static double plan_bytes(const char *run) {
    char path[256], line[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", g_dir, run);
    FILE *f = fopen(path, "r");
    double v = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"plan_bytes\": ");
        if (p) v = atof(p + 14);
    }
    if (f) fclose(f);
    return v;
}

/* Tolerance on max over the 20 steps of |loss_bf16 - loss_fp32| / loss_fp32, per recipe: 3x
 * the largest measured over run.seed 1..16 (M2U_PRECISION_SEED=1..16, AMD Zen 3, 1 thread):
 *   stage 1  2.6e-4 (seed 13; median of the 16 seeds 1.6e-4)      -> 8e-4
 *   stage 2  8.5e-3 (seed 3; then 3.1e-3, 1.7e-3, 1.1e-3; median 4.3e-4) -> 2.5e-2
 *   stage 3  3.4e-4 (seed 4; median 2.0e-4)                       -> 1e-3
 * Before any update (step 1) the difference is the forward's alone, 1e-4 to 2e-4.  Stage 2
 * trains the projector against the MSE targets: a few early steps have gradient norms of
 * 10 to 40, clipped to 1, and there the two runs' updates part more (fp32 run against fp32
 * run with another summation order, 2 threads, seed 3: 1.5e-7 at most, so it is the bf16 weights, not
 * chaos).  The default seed 7 measures 1.4e-4 / 1.9e-4 / 2.3e-4.
 * With bf16 products (m2u_gemm_bf16_ok: the activations rounded to bf16 too; AMD Zen 5 with
 * AVX-512 BF16, 2 threads) the same 16 seeds give at most 3.2e-4 (seed 11; median 1.9e-4),
 * 1.0e-2 (seed 3; then 3.3e-3, 2.1e-3; median 4.3e-4) and 3.7e-4 (seed 8; median 2.6e-4):
 * the same tolerances hold, 2.5x to 3x above.  Which arithmetic ran depends on the CPU. */
static const double LOSS_RTOL[3] = {8e-4, 2.5e-2, 1e-3};
#define STEPS 20

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/m2u_prec_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    llama_checks();
    t_tiny_music_dataset(g_dir);
    write_base_and_config();
    /* one thread per process: two runs of one precision are bit-identical */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* MPI's and OpenBLAS's unfreed buffers: see test_train_run */
    const char *bin = M2U_BUILD_DIR "/m2u-train";
    /* the tiny recipes' stages and trainable sets (configs/tiny_stage{1,2,3}.yaml) at this size */
    static const struct {
        const char *name, *over;
    } recipes[3] = {
        {"s1", "train.stage=1 train.trainable=lora,bias,norm,adapters,gates,prefix_query"},
        {"s2", "train.stage=2 train.trainable=lora,bias,norm,projector,aud_embeddings"},
        {"s3", "train.stage=3 train.trainable=lora,bias,norm,adapters,gates,prefix_query,projector,aud_embeddings"},
    };
    const char *seed = getenv("M2U_PRECISION_SEED"); /* for measuring the tolerance over seeds */
    char seed_over[64] = "";
    if (seed) snprintf(seed_over, sizeof seed_over, "run.seed=%s", seed);
    for (int r = 0; r < 3; r++) {
        double loss[2][STEPS] = {{0}};
        for (int p = 0; p < 2; p++) {
            const char *prec = p ? "bf16" : "fp32";
            CHECK(t_sh("%s %s/run.yaml %s %s train.precision=%s run.out_dir=%s/%s_%s 2> %s/%s_%s.log", bin, g_dir,
                     recipes[r].over, seed_over, prec, g_dir, recipes[r].name, prec, g_dir, recipes[r].name,
                     prec) == 0,
                  "%s %s failed (see %s/%s_%s.log)", recipes[r].name, prec, g_dir, recipes[r].name, prec);
            char run[16];
            snprintf(run, sizeof run, "%s_%s", recipes[r].name, prec);
            CHECK(read_losses(run, loss[p], STEPS) == STEPS, "%s logged %d steps", run, read_losses(run, loss[p], STEPS));
        }
        double d = 0;
        int at = 0;
        for (int i = 0; i < STEPS; i++) {
            double e = fabs(loss[1][i] - loss[0][i]) / fabs(loss[0][i]);
            if (!(e <= d) && d == d) d = e, at = i + 1;
        }
        printf("%s: loss %.4f -> %.4f (fp32), largest relative difference bf16 vs fp32 %.3e at step %d "
               "(tolerance %.1e)\n", recipes[r].name, loss[0][0], loss[0][STEPS - 1], d, at, LOSS_RTOL[r]);
        CHECK(d > 0, "%s: bf16 losses equal fp32's bit for bit: the run did not use bf16 weights", recipes[r].name);
        CHECK(d <= LOSS_RTOL[r], "%s: bf16 loss differs from fp32 by %.3e (relative, step %d) > %.2e", recipes[r].name,
              d, at, LOSS_RTOL[r]);
    }
    /* the trainer says what it holds: the tied 32000 x 64 table and 3 layers' linears, f32 -> bf16 */
    CHECK(t_sh("grep -q 'precision bf16: frozen weights held as bf16 (4.12 MiB of copies in place of 8.23 MiB' "
             "%s/s1_bf16.log", g_dir) == 0,
          "no bf16 line in the bf16 run's log (see %s/s1_bf16.log)", g_dir);
    CHECK(t_sh("grep -q 'precision bf16' %s/s1_fp32.log", g_dir) != 0, "the fp32 run reports bf16");

    /* the plan: the copies per rank in place of the stored matrices, the same whether counted
       before the conversion (--plan, m2u_train_model_open_mapped) or after it (the trainer) */
    char cfg_path[256];
    snprintf(cfg_path, sizeof cfg_path, "%s/run.yaml", g_dir);
    const char *ov[] = {"train.trainable=lora,bias,norm,adapters,gates,prefix_query", "train.precision=bf16"}; /* s1 */
    m2u_train_config c;
    CHECK(m2u_train_config_load(cfg_path, ov, 2, 0, &c) == 0, "%s", m2u_last_error());
    m2u_train_model tm;
    CHECK(m2u_train_model_open_mapped(&c, &tm) == 0, "%s", m2u_last_error());
    m2u_train_plan pb, pf;
    CHECK(m2u_train_plan_make(&c, &tm, 1, &pb) == 0, "%s", m2u_last_error());
    CHECK(tm.mg->llm->embed.dtype == M2U_F32, "open_mapped converted the weights");
    c.train.precision = M2U_PRECISION_FP32;
    CHECK(m2u_train_plan_make(&c, &tm, 1, &pf) == 0, "%s", m2u_last_error());
    c.train.precision = M2U_PRECISION_BF16;
    /* the tied 32000 x 64 table and 3 layers' linears (each copy's size a multiple of 64 bytes) */
    const size_t elems = 32000 * 64 + 3 * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64);
    CHECK(pb.frozen_bf16 == 2 * elems && pb.frozen_bf16_params == (double)elems, "plan: %zu bytes of copies", pb.frozen_bf16);
    /* with bf16 products, one product's input in bf16 too: the largest, the classifier's gradient
       rows (batch x max_len x vocabulary) */
    const size_t inputs = m2u_gemm_bf16_ok() ? (size_t)c.train.batch * c.train.max_len * 32000 * 2 : 0;
    /* fp32 (train.packed_weights auto): a packed copy of the same matrices where the CPU has
       oneDNN's brgemm kernels; none with bf16 */
    const size_t packed = m2u_linear_pack_available() ? 4 * elems : 0;
    CHECK(pf.packed == packed && pb.packed == 0, "plan: %zu bytes packed (%zu expected), %zu with bf16", pf.packed,
          packed, pb.packed);
    CHECK(pf.frozen_bf16 == 0 && pf.bf16_inputs == 0 && pb.bf16_inputs == inputs && pb.weights == pf.weights - 4 * elems &&
              pb.per_rank == pf.per_rank - pf.packed - 2 * elems + inputs,
          "plan: weights %zu (fp32 %zu), per rank %zu (fp32 %zu), bf16 inputs %zu (%zu expected)", pb.weights,
          pf.weights, pb.per_rank, pf.per_rank, pb.bf16_inputs, inputs);
    /* train.packed_weights auto: a plan that fits only without the packed copies drops them;
       on: it does not fit; neither fits what the rest alone exceeds */
    if (pf.packed) {
        c.train.precision = M2U_PRECISION_FP32;
        m2u_train_plan q = pf;
        CHECK(m2u_train_plan_fit(&c, &q, pf.node) == 1 && q.packed == pf.packed, "a fitting plan keeps its packs");
        q = pf;
        CHECK(m2u_train_plan_fit(&c, &q, pf.node - 1) == 1 && q.packed == 0 && q.packed_dropped == pf.packed &&
                  q.node == pf.node - pf.packed && q.per_rank == pf.per_rank - pf.packed,
              "auto: packs dropped from a plan that fits only without them (node %zu -> %zu)", pf.node, q.node);
        q = pf;
        CHECK(m2u_train_plan_fit(&c, &q, pf.node - pf.packed - 1) == 0, "auto: a plan too big without the packs fits");
        c.train.packed_weights = M2U_PACKED_ON;
        q = pf;
        CHECK(m2u_train_plan_fit(&c, &q, pf.node - 1) == 0 && q.packed == pf.packed, "on: the packs were dropped");
        /* the hint to turn them off says whether that alone makes the plan fit */
        for (int k = 0; k < 2; k++) {
            size_t cap = k ? pf.node - pf.packed - 1 : pf.node - 1;
            char *txt = m2u_train_plan_text(&c, &q, cap, "test");
            CHECK(txt && strstr(txt, "does NOT fit") && strstr(txt, "train.packed_weights=off (or auto) saves") &&
                      strstr(txt, k ? ", not enough by itself" : ", enough to fit"),
                  "plan text at %zu bytes (node %zu, packed %zu):\n%s", cap, q.node, q.packed, txt ? txt : "(none)");
            free(txt);
        }
        c.train.packed_weights = M2U_PACKED_OFF;
        CHECK(m2u_train_plan_make(&c, &tm, 1, &q) == 0 && q.packed == 0 && q.per_rank == pf.per_rank - pf.packed,
              "off: %zu bytes packed", q.packed);
        c.train.packed_weights = M2U_PACKED_AUTO;
        c.train.precision = M2U_PRECISION_BF16;
    }
    /* two ranks on a node: the mapping once, the copies once per rank */
    m2u_train_plan pb2;
    CHECK(m2u_train_plan_make(&c, &tm, 2, &pb2) == 0 && pb2.node == pb.node + pb.per_rank - pb.weights &&
              pb2.node - pb.node >= pb.frozen_bf16,
          "bf16 node total of 2 ranks %zu (1 rank %zu)", pb2.node, pb.node);
    CHECK(plan_bytes("s1_bf16") == (double)pb.per_rank && plan_bytes("s1_fp32") == (double)pf.per_rank,
          "the trainer's plan %.0f / %.0f, --plan's %zu / %zu (bf16 / fp32)", plan_bytes("s1_bf16"),
          plan_bytes("s1_fp32"), pb.per_rank, pf.per_rank);
    CHECK(m2u_train_model_apply_precision(&c, &tm) == 0 && tm.mg->llm->embed.dtype == M2U_BF16 &&
              tm.mg->llm->frozen16_bytes == pb.frozen_bf16,
          "apply_precision: %s", m2u_last_error());
    m2u_train_model_close(&tm);
    m2u_train_config_free(&c);
    CHECK(t_sh("%s %s/run.yaml train.precision=bf16 --plan --memory 1G > %s/plan.txt 2>&1", bin, g_dir, g_dir) == 0 &&
              t_sh("grep -q 'frozen bf16 .* 4.12 MiB .*0.00216 G frozen parameters' %s/plan.txt", g_dir) == 0,
          "--plan lacks the bf16 copies (see %s/plan.txt)", g_dir);

    /* a bad value is refused naming the key and the choices */
    CHECK(t_sh("%s %s/run.yaml train.precision=fp16 --plan > /dev/null 2> %s/bad.log", bin, g_dir, g_dir) == 1 &&
              t_sh("grep -q \"override 'train.precision=fp16': train.precision must be one of fp32, bf16, got 'fp16'\" %s/bad.log",
                 g_dir) == 0,
          "train.precision=fp16 not refused clearly (see %s/bad.log)", g_dir);
    if (t_fail == 0) t_sh("rm -rf %s", g_dir);
    return t_finish("test_train_precision");
}
