/* libFuzzer target: a source of m2u-eval compare (an m2u report or a published table),
 * as m2u_compare_add_json reads it, then the three files written from it. */
#include "compare.h"
#include "fuzz_util.h"
#include "m2u_error.h"

#include <math.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet_begin();
    m2u_compare c = {0};
    if (m2u_compare_add_json(&c, (const char *)data, size, "fuzz.json", NULL) == 0) {
        if (c.n_src != 1 || !c.src[0].name) abort(); /* accepted means one usable source */
        for (size_t i = 0; i < c.src[0].n_v; i++)
            if (!c.src[0].v[i].path || isinf(c.src[0].v[i].value)) abort();
        char out[512];
        snprintf(out, sizeof out, "%s/out", fuzz_dir());
        if (m2u_compare_write(&c, out) != 0 && !m2u_last_error()[0]) abort();
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_compare_free(&c);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
