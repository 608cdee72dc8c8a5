/* libFuzzer target: a .safetensors file (header JSON, offsets, dtypes) as
 * m2u_st_open reads it; every accepted tensor is then converted to float32 so
 * the data pointers and sizes the reader computed are exercised too. */
#include "fuzz_util.h"
#include "m2u_error.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "x.safetensors", data, size);
    fuzz_quiet_begin();
    m2u_safetensors *st = NULL;
    if (m2u_st_open(path, &st) == 0) {
        (void)m2u_st_metadata(st, "format");
        for (int i = 0; i < m2u_st_count(st); i++) {
            const m2u_st_tensor *t = m2u_st_at(st, i);
            if (m2u_st_find(st, t->name) != t) abort(); /* the name index must find every tensor */
            if (t->numel > 0 && t->numel <= (1 << 20)) {
                float *buf = malloc((size_t)t->numel * sizeof *buf);
                if (buf) (void)m2u_st_read_f32(t, buf, (size_t)t->numel);
                free(buf);
            }
        }
        m2u_st_close(st);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
