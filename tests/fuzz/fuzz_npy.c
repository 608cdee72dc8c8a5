/* libFuzzer target: a .npy file as m2u_npy_read_matrix (eval's embedding
 * reader for FAD / KL / CLAP scores) reads it.  m2u's models/npy.c only
 * writes .npy; this is the one reader. */
#include "distribution_metrics.h"
#include "fuzz_util.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "x.npy", data, size);
    fuzz_quiet_begin();
    double *d = NULL;
    size_t rows = 0, cols = 0;
    if (m2u_npy_read_matrix(path, &d, &rows, &cols) == 0) {
        double *copy = malloc((rows * cols ? rows * cols : 1) * sizeof *copy); /* ASan checks the size */
        if (!copy) abort();
        memcpy(copy, d, rows * cols * sizeof *d);
        free(copy);
        free(d);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
