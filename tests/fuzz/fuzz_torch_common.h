/* Shared body of the torch.save targets: open the archive with m2u_torch_open
 * and read every accepted tensor's bytes (so the bounds the reader checked are
 * the bounds ASan enforces). */
#ifndef M2U_FUZZ_TORCH_COMMON_H
#define M2U_FUZZ_TORCH_COMMON_H

#include "fuzz_util.h"
#include "m2u_error.h"
#include "torch_ckpt.h"

static void fuzz_torch_open(const char *path) {
    fuzz_quiet_begin();
    m2u_torch_ckpt *c = NULL;
    if (m2u_torch_open(path, &c) == 0) {
        for (int i = 0; i < m2u_torch_count(c); i++) {
            const m2u_st_tensor *t = m2u_torch_at(c, i);
            void *copy = malloc(t->nbytes ? t->nbytes : 1); /* ASan checks the source range */
            if (!copy) abort();
            if (t->nbytes) memcpy(copy, t->data, t->nbytes);
            free(copy);
            if (m2u_torch_find(c, t->name) == NULL) abort();
        }
        (void)m2u_torch_n_other(c);
        m2u_torch_close(c);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
}

#endif
