/* libFuzzer target: what the dataset builder's captioners parse.  The first
 * byte picks the input, the rest is it:
 *   0  a captioner command line from a recipe (m2u_command_split)
 *   1  a prompt template from a recipe (m2u_caption_template_expand, with an
 *      analysis object, a caption and a clip to fill it from)
 *   2  what a captioner program writes on its stdout: the program reads the
 *      first request, writes the input and exits, so every reply m2u reads
 *      (JSON lines, ids, text, error, extras, long or torn lines, EOF, the
 *      program's death) comes from the fuzzer.  Two requests, no retries.
 * Seeds: tests/fuzz/seeds/captioner. */
#include "captioner.h"
#include "captioner_process.h"
#include "fuzz_util.h"
#include "m2u_error.h"

static const char *ANALYSIS = "{\"tempo_bpm\":120.5,\"key\":\"C major\",\"mood\":[\"calm\",\"warm\"],"
                              "\"loud\":{\"lufs\":-14}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    data++, size--;
    if (mode < 2 && memchr(data, 0, size)) return 0; /* strings from a recipe: no NUL */
    fuzz_quiet_begin();
    m2u_caption_request req = {.id = "s1", .kind = M2U_MEDIA_AUDIO, .path = "/tmp/clip.wav", .start_s = 5,
                               .end_s = 15, .analysis_json = ANALYSIS, .caption = "A calm piano piece."};
    if (mode == 0) {
        char *s = malloc(size + 1);
        if (!s) abort();
        memcpy(s, data, size);
        s[size] = '\0';
        char **argv = NULL;
        int argc = 0;
        if (m2u_command_split(s, &argv, &argc) == 0) {
            if (argc < 1 || !argv || argv[argc] != NULL) abort();
            for (int i = 0; i < argc; i++)
                if (!argv[i]) abort();
            m2u_command_free(argv);
        } else if (!m2u_last_error()[0] || argv) {
            abort();
        }
        free(s);
    } else if (mode == 1) {
        char *s = malloc(size + 1);
        if (!s) abort();
        memcpy(s, data, size);
        s[size] = '\0';
        char *out = NULL;
        if (m2u_caption_template_expand(s, &req, &out) == 0) {
            if (!out) abort();
            free(out);
        } else if (!m2u_last_error()[0] || out) {
            abort();
        }
        free(s);
    } else {
        const char *path = fuzz_write(0, "replies.jsonl", data, size);
        /* read the request before answering (m2u reads replies only once its request is
         * out), answer with the whole input and exit: a torn last line ends at EOF, not at
         * the timeout; the second request meets what is left, the exit, or a restart */
        const char *argv[] = {"/bin/sh", "-c", "read r; cat \"$0\"", path, NULL};
        m2u_process_captioner_config cfg;
        m2u_process_captioner_config_default(&cfg);
        cfg.argv = argv;
        cfg.stderr_path = fuzz_path(1, "captioner.stderr");
        cfg.timeout_s = cfg.startup_timeout_s = 2;
        cfg.close_grace_s = 0.5;
        cfg.max_retries = 0;
        cfg.max_restarts = 1;
        cfg.max_line = 4096;
        m2u_captioner *c = NULL;
        if (m2u_process_captioner_open(&cfg, &c) != 0) abort(); /* cat always starts */
        for (int k = 0; k < 2; k++) {
            req.id = k ? "s2" : "s1";
            m2u_caption_reply r;
            if (m2u_captioner_caption(c, &req, &r) == 0) {
                if (r.status != M2U_CAPTION_OK || !r.text) abort();
            } else if (r.status == M2U_CAPTION_OK || !m2u_last_error()[0]) {
                abort();
            }
            m2u_caption_reply_free(&r);
            m2u_clear_error();
        }
        m2u_captioner_close(c);
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
