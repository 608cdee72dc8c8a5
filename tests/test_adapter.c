/* M2UGen understanding adapters against PyTorch (fixtures from tests/make_m2u_fixtures.py).
 *
 * For each modality's tiny adapter: every parameter loads under M2UGen's
 * state_dict name (the Conv1d weight from its [1, C, 1] checkpoint shape), the
 * output matches to 1e-5 relative (to the largest reference magnitude) and every
 * parameter gradient to 1e-4; batched == one sample at a time; gradients
 * accumulate.  Also: the F.normalize eps branch, the full-size parameter counts
 * of M2UGen's adapters, default init, and refusals. */
#include "m2u_error.h"
#include "mm_adapter.h"
#include "test_fixture.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>



static void check_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/m2u/%s.safetensors", M2U_FIXTURES, name);
    m2u_safetensors *ref;
    if (m2u_st_open(path, &ref)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    m2u_adapter_config cfg = {.n_tokens = t_st_meta_int(ref, "n_tokens"),
                              .feat_dim = t_st_meta_int(ref, "feat_dim"),
                              .dim = t_st_meta_int(ref, "dim"),
                              .n_blocks = t_st_meta_int(ref, "n_blocks"),
                              .norm_eps = strtof(m2u_st_metadata(ref, "norm_eps"), NULL),
                              .l2_eps = strtof(m2u_st_metadata(ref, "l2_eps"), NULL)};
    snprintf(cfg.prefix, sizeof cfg.prefix, "%s", m2u_st_metadata(ref, "prefix"));
    int B = t_st_meta_int(ref, "batch");
    size_t nf = m2u_adapter_size(&cfg);
    CHECK(nf > 0, "%s: %s", name, m2u_last_error());
    float *params = calloc(nf, sizeof(float)), *grads = calloc(nf, sizeof(float));
    m2u_adapter a;
    if (m2u_adapter_init(&a, &cfg, params, grads)) {
        CHECK(0, "%s: %s", name, m2u_last_error());
        goto done;
    }
    CHECK(a.n_floats == nf, "%s: %zu floats laid out, size says %zu", name, a.n_floats, nf);
    int n_loaded = 0;
    CHECK(m2u_params_load(a.params, a.n_params, ref, 1, &n_loaded) == 0, "%s: %s", name, m2u_last_error());
    /* 1:1 with M2UGen's names: every module parameter is in the file and nothing else carries the prefix */
    int n_ref = 0;
    for (int i = 0; i < m2u_st_count(ref); i++)
        if (strncmp(m2u_st_at(ref, i)->name, cfg.prefix, strlen(cfg.prefix)) == 0) n_ref++;
    CHECK(n_loaded == a.n_params && n_ref == a.n_params && a.n_params == t_st_meta_int(ref, "n_params"),
          "%s: loaded %d, module %d, file %d", name, n_loaded, a.n_params, n_ref);

    size_t n = 0;
    float *feats = t_st_f32(ref, "feats", &n), *dout = t_st_f32(ref, "dout", NULL);
    float *want = t_st_f32(ref, "out", NULL);
    CHECK(n == (size_t)B * cfg.n_tokens * cfg.feat_dim, "%s: feats size", name);
    float *out = malloc((size_t)B * cfg.dim * sizeof(float));
    CHECK(m2u_adapter_forward(&a, feats, B, out) == 0, "%s: %s", name, m2u_last_error());
    double e = t_max_rel_err(out, want, (size_t)B * cfg.dim);
    CHECK(e < 1e-5, "%s: output rel err %.3g", name, e);

    CHECK(m2u_adapter_backward(&a, dout) == 0, "%s: %s", name, m2u_last_error());
    double worst = t_check_grads(ref, a.params, a.n_params, 1e-4, name);
    printf("%s: B=%d, %d parameters, output rel err %.2e, worst gradient rel err %.2e\n", name, B, a.n_params, e,
           worst);

    /* gradients accumulate: a second backward doubles them */
    float *g1 = malloc(nf * sizeof(float));
    memcpy(g1, grads, nf * sizeof(float));
    CHECK(m2u_adapter_backward(&a, dout) == 0, "%s", m2u_last_error());
    for (size_t i = 0; i < nf; i++) g1[i] *= 2.0f;
    double ae = t_max_rel_err(grads, g1, nf);
    CHECK(ae < 1e-6, "%s: second backward does not accumulate (%.3g)", name, ae);

    /* one sample at a time == batched */
    float *one = malloc((size_t)cfg.dim * sizeof(float));
    for (int b = 0; b < B; b++) {
        CHECK(m2u_adapter_forward(&a, feats + (size_t)b * cfg.n_tokens * cfg.feat_dim, 1, one) == 0, "%s",
              m2u_last_error());
        double be = t_max_rel_err(one, out + (size_t)b * cfg.dim, (size_t)cfg.dim);
        CHECK(be < 1e-6, "%s: sample %d alone vs batched %.3g", name, b, be);
    }
    free(one);
    free(g1);
    free(out);
    free(feats);
    free(dout);
    free(want);
    m2u_adapter_free(&a);
done:
    free(params);
    free(grads);
    m2u_st_close(ref);
}

/* F.normalize: x / max(|x|, eps).  Below eps the denominator is the constant eps. */
static void check_l2norm(void) {
    const float eps = 1e-12f;
    float x[2][3] = {{0.0f, 0.0f, 0.0f}, {3e-13f, 4e-13f, 0.0f}}, y[2][3], nr[2];
    float dy[2][3] = {{1.0f, -2.0f, 0.5f}, {0.25f, 1.0f, -1.0f}}, dx[2][3] = {{0}};
    m2u_l2norm_fwd(&y[0][0], nr, &x[0][0], 2, 3, eps);
    CHECK(y[0][0] == 0.0f && y[0][1] == 0.0f && y[0][2] == 0.0f, "zero vector not kept at zero");
    CHECK(fabsf(y[1][0] - 0.3f) < 1e-6f && fabsf(y[1][1] - 0.4f) < 1e-6f, "clamped: %g %g", y[1][0], y[1][1]);
    m2u_l2norm_bwd(&dx[0][0], &dy[0][0], &y[0][0], nr, 2, 3, eps);
    int ok = 1;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++) ok &= fabsf(dx[r][i] - dy[r][i] / eps) <= 1e-6f * fabsf(dy[r][i] / eps);
    CHECK(ok, "clamped gradient is not dy / eps");
    /* unclamped: finite differences */
    float v[4] = {0.3f, -1.2f, 0.7f, 2.0f}, g[4] = {0.5f, 1.0f, -0.25f, 0.75f}, o[4], d[4] = {0}, n1;
    m2u_l2norm_fwd(o, &n1, v, 1, 4, eps);
    m2u_l2norm_bwd(d, g, o, &n1, 1, 4, eps);
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        float vp[4], vm[4], op[4], om[4], t;
        memcpy(vp, v, sizeof v);
        memcpy(vm, v, sizeof v);
        vp[i] += 1e-3f;
        vm[i] -= 1e-3f;
        m2u_l2norm_fwd(op, &t, vp, 1, 4, eps);
        m2u_l2norm_fwd(om, &t, vm, 1, 4, eps);
        double fd = 0;
        for (int j = 0; j < 4; j++) fd += (double)g[j] * (op[j] - om[j]) / 2e-3;
        if (fabs(fd - d[i]) > worst) worst = fabs(fd - d[i]);
    }
    CHECK(worst < 1e-3, "l2norm backward vs finite differences %.3g", worst);
}

/* Full-size adapters: parameter counts of M2UGen's modules (PyTorch's numel). */
static void check_presets(void) {
    m2u_adapter_config mu = m2u_adapter_preset(M2U_MODALITY_MUSIC, 4096);
    m2u_adapter_config im = m2u_adapter_preset(M2U_MODALITY_IMAGE, 4096);
    m2u_adapter_config vi = m2u_adapter_preset(M2U_MODALITY_VIDEO, 4096);
    CHECK(m2u_adapter_size(&mu) == 155205658u, "music adapter %zu floats", m2u_adapter_size(&mu));
    CHECK(m2u_adapter_size(&im) == 154157254u, "image adapter %zu floats", m2u_adapter_size(&im));
    CHECK(m2u_adapter_size(&vi) == 154160194u, "video adapter %zu floats", m2u_adapter_size(&vi));
    CHECK(strcmp(mu.prefix, "mu_mert_") == 0 && strcmp(im.prefix, "iu_vit_") == 0 &&
              strcmp(vi.prefix, "iu_vivit_") == 0,
          "prefixes");
    CHECK(mu.n_tokens == 25 && im.n_tokens == 197 && vi.n_tokens == 3137, "token counts");
}

/* A small adapter with PyTorch-default init runs, names its parameters, and refuses misuse. */
static void check_init_and_refusals(void) {
    m2u_adapter_config c = m2u_adapter_preset(M2U_MODALITY_IMAGE, 24);
    c.n_tokens = 6;
    c.feat_dim = 10;
    size_t nf = m2u_adapter_size(&c);
    float *params = calloc(nf, sizeof(float)), *grads = calloc(nf, sizeof(float));
    m2u_adapter a;
    CHECK(m2u_adapter_init(&a, &c, params, NULL) == 0, "%s", m2u_last_error());
    CHECK(a.n_params == 4 + 4 * 3, "%d parameters", a.n_params);
    CHECK(m2u_params_find(a.params, a.n_params, "iu_vit_agg.weight") != NULL, "no iu_vit_agg.weight");
    CHECK(m2u_params_find(a.params, a.n_params, "iu_vit_f2_3.weight") != NULL, "no iu_vit_f2_3.weight");
    m2u_param *pw = m2u_params_find(a.params, a.n_params, "iu_vit_proj.weight");
    CHECK(pw && pw->shape[0] == 24 && pw->shape[1] == 10 && pw->decay, "proj.weight shape/decay");
    m2u_param *nb = m2u_params_find(a.params, a.n_params, "iu_vit_norm_2.weight");
    CHECK(nb && !nb->decay && nb->ndim == 1, "norm weight must not decay");
    m2u_adapter_reset_params(&a, 7);
    CHECK(a.blk[1].norm_w[3] == 1.0f, "RMSNorm weights start at 1");
    float bound = 1.0f / sqrtf(6.0f);
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= fabsf(a.agg_w[i]) <= bound;
    CHECK(ok, "Conv1d init outside U(+-1/sqrt(6))");
    float feats[2 * 6 * 10], out[2 * 24], dout[2 * 24];
    for (int i = 0; i < 120; i++) feats[i] = sinf((float)i);
    for (int i = 0; i < 48; i++) dout[i] = 1.0f;
    CHECK(m2u_adapter_forward(&a, feats, 2, out) == 0, "%s", m2u_last_error());
    ok = 1;
    for (int i = 0; i < 48; i++) ok &= isfinite(out[i]);
    CHECK(ok, "non-finite output");
    CHECK(m2u_adapter_backward(&a, dout) != 0, "backward without a gradient buffer accepted");
    CHECK(strstr(m2u_last_error(), "gradient") != NULL, "message: %s", m2u_last_error());
    m2u_adapter_free(&a);

    /* a checkpoint with a wrong shape is refused, naming tensor and file */
    m2u_adapter_config wrong = c;
    wrong.n_tokens = 5;
    snprintf(wrong.prefix, sizeof wrong.prefix, "mu_mert_");
    wrong.feat_dim = 12;
    wrong.dim = 16;
    nf = m2u_adapter_size(&wrong);
    float *p2 = calloc(nf, sizeof(float));
    CHECK(m2u_adapter_init(&a, &wrong, p2, NULL) == 0, "%s", m2u_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/m2u/adapter_music.safetensors", M2U_FIXTURES);
    m2u_safetensors *st;
    if (m2u_st_open(path, &st) == 0) {
        a.params[0].shape[1] = 4; /* pretend the module wants [1, 4]: mismatch */
        a.params[0].n = 4;
        CHECK(m2u_params_load(a.params, a.n_params, st, 1, NULL) != 0, "wrong shape accepted");
        CHECK(strstr(m2u_last_error(), "mu_mert_agg.weight") && strstr(m2u_last_error(), "adapter_music"),
              "message: %s", m2u_last_error());
        m2u_st_close(st);
    }
    m2u_adapter_free(&a);
    free(p2);

    c.n_tokens = 0;
    CHECK(m2u_adapter_size(&c) == 0 && strstr(m2u_last_error(), "n_tokens"), "bad config: %s", m2u_last_error());
    CHECK(m2u_adapter_init(&a, &c, params, grads) != 0, "bad config accepted");
    c.n_tokens = 6;
    CHECK(m2u_adapter_init(&a, &c, params, grads) == 0, "%s", m2u_last_error());
    CHECK(m2u_adapter_backward(&a, dout) != 0, "backward before forward accepted");
    m2u_adapter_free(&a);
    free(params);
    free(grads);
}

int main(void) {
    const char *names[] = {"adapter_music", "adapter_image", "adapter_video"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_fixture(names[i]);
    check_l2norm();
    check_presets();
    check_init_and_refusals();
    return t_finish("test_adapter");
}
