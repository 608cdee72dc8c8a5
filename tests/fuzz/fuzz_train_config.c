/* libFuzzer target: a training recipe (YAML) as m2u_train_config_parse reads
 * it, then finalize (without file checks).  A recipe that finalizes must
 * survive its own round trip: to_yaml, parse, finalize, and diff finds
 * nothing (the header promises "loading it back gives an identical struct").
 * run.sh caps the input size for this target (deep nesting is slow, issue 11;
 * another change caps it in the parser). */
#include "config.h"
#include "fuzz_util.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    m2u_train_config cfg;
    fuzz_quiet_begin();
    if (m2u_train_config_init(&cfg) != 0) abort();
    int rc = m2u_train_config_parse(&cfg, (const char *)data, size, "fuzz.yaml");
    if (rc == 0) rc = m2u_train_config_finalize(&cfg, M2U_CFG_NO_FILE_CHECKS);
    if (rc == 0) {
        char *yaml = NULL;
        m2u_train_config back;
        if (m2u_train_config_to_yaml(&cfg, &yaml) != 0 || m2u_train_config_init(&back) != 0) abort();
        if (m2u_train_config_parse(&back, yaml, strlen(yaml), "roundtrip.yaml") != 0 ||
            m2u_train_config_finalize(&back, M2U_CFG_NO_FILE_CHECKS) != 0) {
            dprintf(fuzz_report_fd_, "accepted recipe, but its own YAML is refused: %s\n--- yaml:\n%s\n",
                    m2u_last_error(), yaml);
            abort();
        }
        const char *d = m2u_train_config_diff(&cfg, &back);
        if (d) {
            dprintf(fuzz_report_fd_, "round trip changes key %s\n--- yaml:\n%s\n", d, yaml);
            abort();
        }
        free(yaml);
        m2u_train_config_free(&back);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_train_config_free(&cfg);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
