/* libFuzzer target: any file handed to the MUVideo frame sampler,
 * m2u_video_frames_ex, the way the dataset builder calls it (a few frames,
 * small), once decoding straight through and once seeking to every target.
 * What is m2u's here is the sampler around FFmpeg: the duration it trusts
 * (header, container, or a pass over the packets' timestamps), the frame
 * times, the seek and its fallback, the truncation rule, rotation and the
 * scaling.  Seeds: tiny MP4 / WebM / AVI / GIF / rotated and variable-rate
 * clips that tests/fuzz/run.sh makes with the ffmpeg CLI.  FFmpeg itself is
 * not instrumented. */
#include "decode.h"
#include "frames.h"
#include "fuzz_util.h"
#include "m2u_error.h"

#include <math.h>

enum { NF = 5, W = 6, H = 4 };

volatile unsigned g_frames_sum; /* written, never read: keeps the frame-reading loop */

static void sample(const char *path, m2u_sample_strategy strategy, m2u_fit_mode fit) {
    double times[NF];
    for (int k = 0; k < NF; k++) times[k] = NAN;
    m2u_video_opts o = {.fit = fit, .strategy = strategy, .times = times};
    uint8_t *rgb = (uint8_t *)1;
    m2u_video_info info;
    if (m2u_video_frames_ex(path, NF, W, H, &o, &rgb, &info) == 0) {
        if (!rgb || info.status != M2U_DECODE_OK) abort();
        if (info.n_unique < 1 || info.n_unique > NF) abort();
        if (!(info.duration_s > 0) || !isfinite(info.duration_s)) abort();
        for (int k = 0; k < NF; k++)
            if (!isfinite(times[k])) abort(); /* every sampled frame has its time */
        /* the buffer holds all NF frames: ASan stops a read past a shorter one (the sum goes to a
         * volatile, or the optimiser would drop the loop and the check with it) */
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)NF * W * H * 3; i++) sum += rgb[i];
        g_frames_sum = sum;
        free(rgb);
    } else if (!m2u_last_error()[0] || rgb || info.status == M2U_DECODE_OK) {
        abort();
    }
    m2u_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "input.bin", data, size);
    fuzz_quiet_begin();
    sample(path, M2U_SAMPLE_DECODE_THROUGH, M2U_FIT_CROP);
    sample(path, M2U_SAMPLE_SEEK, M2U_FIT_PAD);
    fuzz_quiet_end();
    return 0;
}
