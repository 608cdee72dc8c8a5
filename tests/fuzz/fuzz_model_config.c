/* libFuzzer target: a model config.json as the LLaMA reader
 * (m2u_llama_config_load), the T5 / MusicGen reader (m2u_t5_config_load) and
 * the encoders' JSON loader (m2u_json_load: duplicate keys) read it. */
#include "encoder_layer.h"
#include "fuzz_util.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "t5_encoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "config.json", data, size);
    fuzz_quiet_begin();
    m2u_llama_config lc;
    memset(&lc, 0, sizeof lc);
    if (m2u_llama_config_load(path, &lc) == 0) {
        /* what the reader accepted must be written back and read again unchanged */
        const char *out = fuzz_path(1, "config.out.json");
        m2u_llama_config again;
        memset(&again, 0, sizeof again);
        if (m2u_llama_config_save(out, &lc) != 0 || m2u_llama_config_load(out, &again) != 0) {
            dprintf(fuzz_report_fd_, "llama config accepted but its saved copy is refused: %s\n", m2u_last_error());
            abort();
        }
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    m2u_t5_config tc;
    if (m2u_t5_config_load(path, &tc) != 0 && !m2u_last_error()[0]) abort();
    m2u_clear_error();
    cJSON *root = NULL;
    if (m2u_json_load(path, 0, &root) == 0) cJSON_Delete(root);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
