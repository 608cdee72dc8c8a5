/* libFuzzer target: an HDF5 dataset shard as m2u_shard_open reads it, then
 * every sample (text, clip, audio, attributes, tensors) through the reader.
 * Byte-level mutations mostly corrupt HDF5's own metadata, which libhdf5
 * (not instrumented, not hardened against hostile files) may crash on; m2u's
 * defence there is the manifest's hash (xxh128, else sha256), checked when a shard is first
 * opened through a dataset (issue 11).  So a crash whose stack is entirely
 * inside libhdf5 is libhdf5's; one with an m2u frame is ours.
 *
 * Seeds: M2U_FUZZ_MAKE_SEEDS=<dir> fuzz_shard writes small valid shards
 * (m2u_shard_create) into <dir> and exits; tests/fuzz/run.sh does this. */
#define FUZZ_OWN_INIT
#include "fuzz_util.h"
#include "m2u_error.h"
#include "fuzz_shard_seed.h"
#include "shard.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    const char *dir = getenv("M2U_FUZZ_MAKE_SEEDS");
    if (dir) {
        char p[3][600];
        for (int k = 0; k < 3; k++) snprintf(p[k], sizeof p[k], "%s/seed%d.h5", dir, k);
        if (make_seed(p[0], 16000, 4, 2, 3) || make_seed(p[1], 0, 0, 0, 2) || make_seed(p[2], 8000, 0, 1, 1)) {
            fprintf(stderr, "fuzz_shard: %s\n", m2u_last_error());
            exit(1);
        }
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "shard.h5", data, size);
    fuzz_quiet_begin();
    fuzz_read_shard(path);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
