/* The torch.save reader: state dicts of several dtypes, views into shared
 * storage, nested dicts; non-contiguous tensors, truncated files and a
 * malicious pickle (os.system in __reduce__) are refused, nothing executed. */
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "torch_ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[1024];

static const char *fx(const char *name) {
    snprintf(path, sizeof path, "%s/torch/%s", M2U_FIXTURES, name);
    return path;
}

static void check_state(m2u_torch_ckpt *c, const char *prefix) {
    char name[128];
    float v[6];
    snprintf(name, sizeof name, "%sa.weight", prefix);
    const m2u_st_tensor *t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 6);
        for (int i = 0; i < 6; i++) CHECK(v[i] == (float)i, "%s[%d] = %g", name, i, v[i]);
    }
    snprintf(name, sizeof name, "%sb", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_BF16 && t->numel == 2, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 2);
        CHECK(v[0] == 1.5f && v[1] == 2.5f, "bf16 values %g %g", v[0], v[1]);
    }
    snprintf(name, sizeof name, "%sc", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_F16 && t->numel == 4, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 4);
        CHECK(v[3] == 3.0f, "f16 value %g", v[3]);
    }
    snprintf(name, sizeof name, "%sd", prefix);
    t = m2u_torch_find(c, name);
    int64_t d[3] = {0, 0, 0};
    if (t && t->dtype == M2U_I64) memcpy(d, t->data, sizeof d);
    CHECK(t && d[0] == 7 && d[1] == -8 && d[2] == 9, "int64 values");
    snprintf(name, sizeof name, "%sview", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->ndim == 1 && t->numel == 3, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 3);
        CHECK(v[0] == 3.0f && v[2] == 5.0f, "view into shared storage: %g %g", v[0], v[2]);
    }
}

int main(void) {
    m2u_torch_ckpt *c;
    CHECK(m2u_torch_open(fx("state.pth"), &c) == 0, "%s", m2u_last_error());
    if (c) {
        CHECK(m2u_torch_count(c) == 5, "%d tensors", m2u_torch_count(c));
        check_state(c, "");
        m2u_torch_close(c);
    }
    CHECK(m2u_torch_open(fx("nested.pth"), &c) == 0, "%s", m2u_last_error());
    if (c) {
        check_state(c, "model.");
        CHECK(m2u_torch_n_other(c) == 1, "non-tensor values: %d", m2u_torch_n_other(c));
        m2u_torch_close(c);
    }
    /* the same file through the safetensors interface every loader uses */
    m2u_safetensors *st;
    CHECK(m2u_st_open(fx("state.pth"), &st) == 0, "%s", m2u_last_error());
    if (st) {
        int64_t shape[2] = {2, 3};
        const m2u_st_tensor *a = m2u_st_expect(st, "a.weight", 2, shape);
        float v[6] = {0};
        CHECK(a && m2u_st_read_f32(a, v, 6) == 0 && v[5] == 5.0f, "a.weight through m2u_st_open");
        CHECK(m2u_st_count(st) == 5, "%d tensors", m2u_st_count(st));
        m2u_st_close(st);
    }
    CHECK(m2u_torch_open(fx("strided.pth"), &c) != 0 && strstr(m2u_last_error(), "contiguous"), "strided: %s",
          m2u_last_error());
    CHECK(m2u_torch_open(fx("malicious.pth"), &c) != 0 && strstr(m2u_last_error(), "refusing global") &&
              strstr(m2u_last_error(), "system"),
          "malicious pickle: %s", m2u_last_error());
    /* truncated copies of a good file are refused, never read out of bounds */
    char *data;
    size_t len;
    CHECK(m2u_read_file(fx("state.pth"), &data, &len) == 0, "read");
    char tmp[] = "/tmp/m2u_torch_XXXXXX";
    int fd = mkstemp(tmp);
    int refused = 0, tries = 0;
    for (size_t cut = 1; fd >= 0 && cut < len; cut += len / 37 + 1, tries++) {
        FILE *f = fopen(tmp, "wb");
        fwrite(data, 1, cut, f);
        fclose(f);
        if (m2u_torch_open(tmp, &c) != 0) refused++;
        else m2u_torch_close(c);
    }
    CHECK(refused == tries, "%d of %d truncated files accepted", tries - refused, tries);
    /* corrupted bytes anywhere: refused or read, never a crash or an out-of-bounds
       read (this test also runs under AddressSanitizer) */
    unsigned seed = 12345;
    int opened = 0;
    for (int it = 0; fd >= 0 && it < 400; it++) {
        char *bad = malloc(len);
        memcpy(bad, data, len);
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            bad[(seed >> 8) % len] ^= (char)(1u << (seed % 8));
        }
        FILE *f = fopen(tmp, "wb");
        fwrite(bad, 1, len, f);
        fclose(f);
        free(bad);
        if (m2u_torch_open(tmp, &c) == 0) {
            opened++;
            for (int i = 0; i < m2u_torch_count(c); i++) { /* every tensor lies inside the file */
                const m2u_st_tensor *t = m2u_torch_at(c, i);
                volatile unsigned char sink = 0;
                for (size_t b = 0; b < t->nbytes; b++) sink ^= ((const unsigned char *)t->data)[b];
                (void)sink;
            }
            m2u_torch_close(c);
        }
    }
    printf("corrupted copies: %d of 400 still readable (flips in tensor data), the rest refused\n", opened);
    CHECK(m2u_torch_open("/nonexistent.pth", &c) != 0, "missing file accepted");
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(data);
    return t_finish("test_torch_ckpt");
}
