/* libFuzzer target: the small JSON records m2u reads back from its own
 * folders, which a disk, a kill or a hand edit can damage.  The first byte
 * picks the reader, the rest is the file:
 *   0  a training checkpoint's state.json (m2u_ckpt_load, as --resume reads it)
 *   1  a dataset build's per-input record (m2u_record_read, as a resumed build)
 *   2  a dataset build's input manifest, JSON lines (m2u_inputs_add_manifest)
 *   3  a training run's metrics.jsonl (m2u_run_curves_read, as m2u-eval report)
 * Seeds: tests/fuzz/run.sh makes one file of each kind with the tools. */
#include "build_record.h"
#include "checkpoint.h"
#include "eval_report.h"
#include "fuzz_util.h"
#include "inputs.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 4;
    data++, size--;
    fuzz_quiet_begin();
    if (mode == 0) {
        /* the marker and the state; no weights: a state that parses ends at the missing
         * trainable.safetensors, with a message */
        fuzz_write(1, "COMPLETE", "", 0);
        fuzz_write(0, "state.json", data, size);
        m2u_train_state st;
        m2u_adamw opt;
        memset(&st, 0, sizeof st);
        memset(&opt, 0, sizeof opt);
        if (m2u_ckpt_load(fuzz_dir(), &st, NULL, 0, &opt) == 0 || !m2u_last_error()[0]) abort();
        unlink(fuzz_path(1, "COMPLETE"));
        unlink(fuzz_path(0, "state.json"));
    } else if (mode == 1) {
        const char *p = fuzz_write(0, "record.json", data, size);
        m2u_record r;
        if (m2u_record_read(p, &r) == 0) {
            if (!r.id || !r.status) abort();
            if (r.n_clips < 0 || (r.n_clips > 0 && !r.clips) || (r.fp_len > 0 && !r.fp)) abort();
            /* what the build indexes with (key and mode names, General MIDI programs) is in range */
            if (r.main_program < -1 || r.main_program > 127 || r.drum_notes < 0) abort();
            for (int i = 0; i < r.n_clips; i++) {
                const m2u_analysis *a = &r.clips[i].a;
                if (a->key < -1 || a->key > 11 || a->mode < -1 || a->mode > 1) abort();
                if (!(r.clips[i].start >= 0 && r.clips[i].end >= r.clips[i].start)) abort();
            }
            m2u_record_free(&r);
        } else if (!m2u_last_error()[0]) {
            abort();
        }
    } else if (mode == 2) {
        const char *p = fuzz_write(0, "inputs.jsonl", data, size);
        m2u_input_list l;
        memset(&l, 0, sizeof l);
        m2u_input_opts o = {.default_licence = "CC0-1.0"};
        if (m2u_inputs_add_manifest(&l, p, &o) == 0) {
            for (size_t i = 0; i < l.n; i++)
                if (!l.items[i].path || !l.items[i].rel || !l.items[i].licence || !l.items[i].id[0]) abort();
            if (m2u_inputs_finish(&l) != 0 && !m2u_last_error()[0]) abort();
        } else if (!m2u_last_error()[0]) {
            abort();
        }
        m2u_inputs_free(&l);
    } else {
        const char *p = fuzz_write(0, "metrics.jsonl", data, size);
        m2u_run_curves c;
        if (m2u_run_curves_read(p, &c) == 0)
            m2u_run_curves_free(&c);
        else if (!m2u_last_error()[0])
            abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
