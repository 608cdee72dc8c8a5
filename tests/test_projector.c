/* M2UGen output projector against PyTorch (fixtures from tests/make_m2u_fixtures.py).
 *
 * For each tiny ProjectionLayer (nn.Transformer, post-norm, ReLU, no masks): every
 * parameter loads under its M2UGen state_dict name (query_embs from its
 * [1, N, D] checkpoint shape); output and MSE loss (target x target_scale) match
 * to 1e-5 relative, every parameter gradient and the input gradient to 1e-4;
 * batched == one sample at a time; an explicit output gradient equals the loss
 * path.  Also full-size parameter counts, default init and refusals. */
#include "m2u_error.h"
#include "projector.h"
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
    m2u_projector_config cfg = m2u_projector_preset_musicgen(t_st_meta_int(ref, "dim"));
    cfg.n_in = t_st_meta_int(ref, "n_in");
    cfg.d_model = t_st_meta_int(ref, "d_model");
    cfg.n_heads = t_st_meta_int(ref, "n_heads");
    cfg.n_enc = t_st_meta_int(ref, "n_enc");
    cfg.n_dec = t_st_meta_int(ref, "n_dec");
    cfg.ffn = t_st_meta_int(ref, "ffn");
    cfg.n_out = t_st_meta_int(ref, "n_out");
    cfg.out_dim = t_st_meta_int(ref, "out_dim");
    cfg.ln_eps = strtof(m2u_st_metadata(ref, "ln_eps"), NULL);
    cfg.target_scale = strtof(m2u_st_metadata(ref, "target_scale"), NULL);
    int B = t_st_meta_int(ref, "batch");
    size_t nf = m2u_projector_size(&cfg);
    CHECK(nf > 0, "%s: %s", name, m2u_last_error());
    float *params = calloc(nf, sizeof(float)), *grads = calloc(nf, sizeof(float));
    m2u_projector p;
    if (m2u_projector_init(&p, &cfg, params, grads)) {
        CHECK(0, "%s: %s", name, m2u_last_error());
        free(params);
        free(grads);
        m2u_st_close(ref);
        return;
    }
    CHECK(p.n_floats == nf, "%s: %zu floats laid out, size says %zu", name, p.n_floats, nf);
    int n_loaded = 0;
    CHECK(m2u_params_load(p.params, p.n_params, ref, 1, &n_loaded) == 0, "%s: %s", name, m2u_last_error());
    int n_ref = 0;
    for (int i = 0; i < m2u_st_count(ref); i++)
        if (strncmp(m2u_st_at(ref, i)->name, "output_projector.", 17) == 0) n_ref++;
    CHECK(n_loaded == p.n_params && n_ref == p.n_params && p.n_params == t_st_meta_int(ref, "n_params"),
          "%s: loaded %d, module %d, file %d", name, n_loaded, p.n_params, n_ref);

    size_t n = 0, n_out = (size_t)B * cfg.n_out * cfg.out_dim, n_x = (size_t)B * cfg.n_in * cfg.dim;
    float *x = t_st_f32(ref, "x", &n), *target = t_st_f32(ref, "target", NULL), *want = t_st_f32(ref, "out", NULL);
    float *ref_loss = t_st_f32(ref, "loss", NULL), *ref_dx = t_st_f32(ref, "grad.x", NULL);
    CHECK(n == n_x, "%s: x size", name);
    float *out = malloc(n_out * sizeof(float));
    CHECK(m2u_projector_forward(&p, x, B, out) == 0, "%s: %s", name, m2u_last_error());
    double e = t_max_rel_err(out, want, n_out);
    CHECK(e < 1e-5, "%s: output rel err %.3g", name, e);
    float loss = 0;
    CHECK(m2u_projector_loss(&p, target, &loss) == 0, "%s", m2u_last_error());
    double le = fabs(loss - ref_loss[0]) / fabs(ref_loss[0]);
    CHECK(le < 1e-5, "%s: loss %.8f vs %.8f", name, loss, ref_loss[0]);

    float *dx = calloc(n_x, sizeof(float));
    CHECK(m2u_projector_backward(&p, NULL, 1.0f, dx) == 0, "%s: %s", name, m2u_last_error());
    double xe = t_max_rel_err(dx, ref_dx, n_x);
    CHECK(xe < 1e-4, "%s: input gradient rel err %.3g", name, xe);
    double worst = t_check_grads(ref, p.params, p.n_params, 1e-4, name);
    printf("%s: B=%d, %d parameters, output rel err %.2e, loss rel err %.2e, input gradient rel err %.2e, worst "
           "parameter gradient rel err %.2e\n",
           name, B, p.n_params, e, le, xe, worst);

    /* an explicit output gradient (2 (out - s t) / n, scaled) gives the loss path's gradients, scaled */
    float *g1 = malloc(nf * sizeof(float)), *dres = malloc(n_out * sizeof(float));
    memcpy(g1, grads, nf * sizeof(float));
    memset(grads, 0, nf * sizeof(float));
    for (size_t i = 0; i < n_out; i++) dres[i] = 2.0f * (out[i] - cfg.target_scale * target[i]) / (float)n_out;
    float *dx2 = calloc(n_x, sizeof(float));
    CHECK(m2u_projector_backward(&p, dres, 0.5f, dx2) == 0, "%s", m2u_last_error());
    for (size_t i = 0; i < nf; i++) g1[i] *= 0.5f;
    for (size_t i = 0; i < n_x; i++) dx[i] *= 0.5f;
    double de = t_max_rel_err(grads, g1, nf), dxe = t_max_rel_err(dx2, dx, n_x);
    CHECK(de < 1e-5 && dxe < 1e-5, "%s: explicit dout vs loss path: %.3g, dx %.3g", name, de, dxe);

    /* one sample at a time == batched */
    float *one = malloc((size_t)cfg.n_out * cfg.out_dim * sizeof(float));
    for (int b = 0; b < B; b++) {
        CHECK(m2u_projector_forward(&p, x + (size_t)b * cfg.n_in * cfg.dim, 1, one) == 0, "%s", m2u_last_error());
        double be = t_max_rel_err(one, out + (size_t)b * cfg.n_out * cfg.out_dim, (size_t)cfg.n_out * cfg.out_dim);
        CHECK(be < 1e-6, "%s: sample %d alone vs batched %.3g", name, b, be);
    }
    free(one);
    free(dx2);
    free(dres);
    free(g1);
    free(dx);
    free(out);
    free(x);
    free(target);
    free(want);
    free(ref_loss);
    free(ref_dx);
    m2u_projector_free(&p);
    free(params);
    free(grads);
    m2u_st_close(ref);
}

static void check_presets(void) {
    m2u_projector_config mg = m2u_projector_preset_musicgen(4096), al = m2u_projector_preset_audioldm2(4096);
    CHECK(m2u_projector_size(&mg) == 31984896u, "MusicGen projector %zu floats", m2u_projector_size(&mg));
    CHECK(m2u_projector_size(&al) == 101917696u, "AudioLDM 2 projector %zu floats", m2u_projector_size(&al));
    CHECK(mg.target_scale == 10.0f && strcmp(mg.prefix, "output_projector.") == 0, "preset scale/prefix");
}

static void check_init_and_refusals(void) {
    m2u_projector_config c = m2u_projector_preset_musicgen(20);
    c.d_model = 16;
    c.ffn = 24;
    c.n_enc = 1;
    c.n_dec = 1;
    c.n_out = 3;
    c.out_dim = 5;
    size_t nf = m2u_projector_size(&c);
    float *params = calloc(nf, sizeof(float)), *grads = calloc(nf, sizeof(float));
    m2u_projector p;
    CHECK(m2u_projector_init(&p, &c, params, grads) == 0, "%s", m2u_last_error());
    const char *names[] = {"output_projector.fc.weight",
                           "output_projector.tfm.encoder.layers.0.self_attn.in_proj_weight",
                           "output_projector.tfm.encoder.norm.bias",
                           "output_projector.tfm.decoder.layers.0.multihead_attn.out_proj.bias",
                           "output_projector.tfm.decoder.layers.0.norm3.weight",
                           "output_projector.model.bias",
                           "output_projector.query_embs"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK(m2u_params_find(p.params, p.n_params, names[i]) != NULL, "no %s", names[i]);
    m2u_param *q = m2u_params_find(p.params, p.n_params, "output_projector.query_embs");
    CHECK(q && q->shape[0] == 3 && q->shape[1] == 16, "query_embs shape");
    CHECK(p.n_params == 2 + 12 + 2 + 18 + 2 + 2 + 1, "%d parameters", p.n_params);
    CHECK(m2u_projector_backward(&p, NULL, 1.0f, NULL) != 0, "backward before forward accepted");
    m2u_projector_reset_params(&p, 11);
    CHECK(p.enc[0].sa.in_b[5] == 0.0f && p.dec[0].n3.w[2] == 1.0f && p.dec_norm.b[1] == 0.0f,
          "MHA biases 0, LayerNorm 1/0");
    float xb = sqrtf(6.0f / 64.0f);
    int ok = 1;
    for (int i = 0; i < 3 * 16 * 16; i++) ok &= fabsf(p.dec[0].ca.in_w[i]) <= xb;
    CHECK(ok, "in_proj_weight outside xavier bound");
    float x[2 * 8 * 20], target[2 * 3 * 5], loss = -1;
    for (int i = 0; i < 2 * 8 * 20; i++) x[i] = cosf(0.37f * (float)i);
    for (int i = 0; i < 30; i++) target[i] = 0.01f * (float)i;
    CHECK(m2u_projector_forward(&p, x, 2, NULL) == 0, "%s", m2u_last_error());
    CHECK(m2u_projector_backward(&p, NULL, 1.0f, NULL) != 0, "backward without loss or dout accepted");
    CHECK(m2u_projector_loss(&p, target, &loss) == 0 && isfinite(loss) && loss > 0, "loss %g", loss);
    CHECK(m2u_projector_backward(&p, NULL, 1.0f, NULL) == 0, "%s", m2u_last_error());
    ok = 1;
    for (size_t i = 0; i < nf; i++) ok &= isfinite(grads[i]);
    CHECK(ok, "non-finite gradients");
    m2u_projector_free(&p);

    c.n_heads = 3;
    CHECK(m2u_projector_size(&c) == 0 && strstr(m2u_last_error(), "n_heads"), "message: %s", m2u_last_error());
    CHECK(m2u_projector_init(&p, &c, params, grads) != 0, "d_model %% n_heads != 0 accepted");
    c.n_heads = 4;
    CHECK(m2u_projector_init(&p, &c, params, NULL) == 0, "%s", m2u_last_error());
    CHECK(m2u_projector_forward(&p, x, 2, NULL) == 0, "%s", m2u_last_error());
    CHECK(m2u_projector_loss(&p, target, &loss) == 0, "%s", m2u_last_error());
    CHECK(m2u_projector_backward(&p, NULL, 1.0f, NULL) != 0, "backward without a gradient buffer accepted");
    m2u_projector_free(&p);
    free(params);
    free(grads);
}

int main(void) {
    const char *names[] = {"projector_a", "projector_b"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_fixture(names[i]);
    check_presets();
    check_init_and_refusals();
    return t_finish("test_projector");
}
