/* libFuzzer target: a PEFT adapter_config.json as m2u_peft_read_config reads it. */
#include "fuzz_util.h"
#include "llama.h"
#include "m2u_error.h"
#include "peft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(0, "adapter_config.json", data, size);
    fuzz_quiet_begin();
    m2u_train_spec spec;
    memset(&spec, 0, sizeof spec);
    if (m2u_peft_read_config(fuzz_dir(), &spec) == 0) {
        if (spec.lora_r < 1 || !spec.lora_targets) abort(); /* accepted means usable */
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
