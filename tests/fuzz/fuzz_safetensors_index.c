/* libFuzzer target: a sharded checkpoint's model.safetensors.index.json as
 * m2u_st_open reads it, beside the two real shards of the mqa_bf16_sharded
 * fixture (copied into the scratch folder at start): weight_map entries naming
 * missing, duplicated, hostile ("../x", "/etc/passwd") or wrong shards must be
 * refused; an accepted index gives tensors that can be read. */
#define FUZZ_OWN_INIT
#include "fuzz_util.h"
#include "m2u_error.h"
#include "safetensors.h"

#define SHARD_DIR M2U_FIXTURES "/llama/mqa_bf16_sharded"

static void copy_in(const char *name) {
    char src[512];
    snprintf(src, sizeof src, "%s/%s", SHARD_DIR, name);
    FILE *fp = fopen(src, "rb");
    if (!fp) abort();
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    fuzz_write(1, name, buf, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    copy_in("model-00001-of-00002.safetensors");
    copy_in("model-00002-of-00002.safetensors");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "model.safetensors.index.json", data, size);
    fuzz_quiet_begin();
    m2u_safetensors *st = NULL;
    if (m2u_st_open(path, &st) == 0) {
        for (int i = 0; i < m2u_st_count(st); i++) {
            const m2u_st_tensor *t = m2u_st_at(st, i);
            if (m2u_st_find(st, t->name) != t) abort();
            if (t->numel > 0 && t->numel <= (1 << 20)) {
                float *buf = malloc((size_t)t->numel * sizeof *buf);
                if (buf) (void)m2u_st_read_f32(t, buf, (size_t)t->numel);
                free(buf);
            }
        }
        m2u_st_close(st);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
