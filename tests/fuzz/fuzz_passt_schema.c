/* libFuzzer target: the PaSST loader (m2u_passt_load) on state dicts whose
 * tensor shapes (and presence) come from the input.  PaSST takes every size
 * from the weights (passt.h), so this is the loader's "schema": each input byte
 * pair sets one tensor's rank and dimensions; well-formed safetensors files
 * are written (m2u_st_write) so the mutations reach the shape logic, not the
 * container parser (fuzz_safetensors covers that).  An accepted model must run
 * a short input and a too-long one must be refused, never crash. */
#include "fuzz_util.h"
#include "m2u_error.h"
#include "passt.h"
#include "safetensors.h"

static const char *const NAMES[] = {
    "patch_embed.proj.weight", "patch_embed.proj.bias", "freq_new_pos_embed", "time_new_pos_embed", "cls_token",
    "dist_token", "new_pos_embed", "norm.weight", "norm.bias", "head.0.weight", "head.0.bias", "head.1.weight",
    "head.1.bias", "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight",
    "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.norm2.weight",
    "blocks.0.norm2.bias", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight",
    "blocks.0.mlp.fc2.bias", "blocks.1.norm1.weight"};
#define NT ((int)(sizeof NAMES / sizeof NAMES[0]))
/* a consistent tiny model (embed 12, kernel 16, strides 10, 12 x 2 grid, MLP 24, 3 classes), the
 * starting point the input edits: dims[i][0] = rank (0: absent) */
static const int BASE[NT][5] = {{4, 12, 1, 16, 16}, {1, 12}, {4, 1, 12, 12, 1}, {4, 1, 12, 1, 2}, {3, 1, 1, 12},
                                {3, 1, 1, 12},      {3, 1, 2, 12}, {1, 12}, {1, 12}, {1, 12}, {1, 12}, {2, 3, 12},
                                {1, 3},             {1, 12}, {1, 12}, {2, 36, 12}, {1, 36}, {2, 12, 12}, {1, 12},
                                {1, 12},            {1, 12}, {2, 24, 12}, {1, 24}, {2, 12, 24}, {1, 12}, {0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int dims[NT][5];
    memcpy(dims, BASE, sizeof dims);
    /* each 3 bytes: tensor index, which field (rank or a dim), new value (small) */
    for (size_t i = 0; i + 2 < size; i += 3) {
        int t = data[i] % NT, f = data[i + 1] % 5, v = data[i + 2] % 40;
        dims[t][f] = f == 0 ? v % 5 : v;
    }
    m2u_st_entry e[NT];
    float *bufs[NT] = {0};
    int n = 0;
    for (int t = 0; t < NT; t++) {
        if (dims[t][0] <= 0) continue;
        size_t numel = 1;
        e[n].name = NAMES[t];
        e[n].dtype = M2U_F32;
        e[n].ndim = dims[t][0];
        for (int d = 0; d < dims[t][0]; d++) e[n].shape[d] = dims[t][d + 1], numel *= (size_t)dims[t][d + 1];
        bufs[t] = calloc(numel ? numel : 1, sizeof(float));
        for (size_t k = 0; k < numel; k++) bufs[t][k] = (float)((k * 7 + (size_t)t) % 13) / 13.0f - 0.5f;
        e[n].data = bufs[t];
        n++;
    }
    const char *path = fuzz_path(0, "passt.safetensors");
    if (m2u_st_write(path, e, n, NULL, NULL, 0) != 0) abort();
    fuzz_quiet_begin();
    m2u_passt *m = NULL;
    if (m2u_passt_load(path, NULL, &m) == 0) {
        const m2u_passt_config *c = m2u_passt_config_of(m);
        int64_t max_n = m2u_passt_max_samples(m);
        int64_t len = max_n < 8000 ? max_n : 8000;
        float *w = calloc((size_t)(max_n + 1), sizeof *w), *lg = calloc((size_t)c->n_classes, sizeof *lg);
        for (int64_t k = 0; k <= max_n; k++) w[k] = (float)((k * 31) % 17) / 17.0f - 0.5f;
        if (m2u_passt_logits(m, w, len, lg) != 0 && !m2u_last_error()[0]) abort();
        if (m2u_passt_logits(m, w, max_n + 1, lg) == 0) {
            dprintf(fuzz_report_fd_, "passt: %lld samples accepted past the position table\n", (long long)max_n + 1);
            abort();
        }
        free(w);
        free(lg);
        m2u_passt_free(m);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    for (int t = 0; t < NT; t++) free(bufs[t]);
    return 0;
}
