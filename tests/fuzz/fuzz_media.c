/* libFuzzer target: any file handed to the dataset builder, through the
 * FFmpeg probe and decoders as m2u uses them: m2u_audio_decode_ex (at most
 * 4 s decoded, so a header claiming hours cannot stall a run) and
 * m2u_image_load.  Seeds: tiny WAV / FLAC / Ogg / MP3 / PNG files that
 * tests/fuzz/run.sh makes with the ffmpeg CLI.  FFmpeg itself is not
 * instrumented; m2u's handling of what it returns is. */
#include "decode.h"
#include "frames.h"
#include "fuzz_util.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "input.bin", data, size);
    fuzz_quiet_begin();
    m2u_audio_opts o;
    memset(&o, 0, sizeof o);
    o.max_s = 4;
    o.keep_truncated = 1;
    float *pcm = NULL;
    int64_t n = 0;
    m2u_audio_info info;
    if (m2u_audio_decode_ex(path, 16000, &o, &pcm, &n, &info) == 0) {
        if (n < 0 || n > 4 * 16000 + 16000) abort(); /* max_s holds (within one frame of slack) */
        for (int64_t i = 0; i < n; i++)
            if (!(pcm[i] >= -1.0f && pcm[i] <= 1.0f)) abort(); /* clamped, never NaN */
        free(pcm);
    } else if (!m2u_last_error()[0] || pcm || n) {
        abort();
    }
    m2u_clear_error();
    /* keep_channels (the FAD front end's decode): the stream's rate and first two channels */
    o.keep_channels = 2;
    if (m2u_audio_decode_ex(path, 0, &o, &pcm, &n, &info) == 0) {
        int ch = info.out_channels;
        if (ch < 1 || ch > 2 || n % ch || info.src_rate <= 0 || n / ch > 5 * (int64_t)info.src_rate + 16000) abort();
        for (int64_t i = 0; i < n; i++)
            if (pcm[i] != pcm[i]) abort(); /* NaN replaced */
        free(pcm);
    } else if (!m2u_last_error()[0] || pcm || n) {
        abort();
    }
    m2u_clear_error();
    uint8_t *rgb = NULL;
    if (m2u_image_load(path, 8, 8, M2U_FIT_CROP, &rgb, NULL) == 0) free(rgb);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
