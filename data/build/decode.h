/* Audio decoding with FFmpeg's libraries (5.1 API): any file FFmpeg can
 * demux and decode -> mono float32 at the rate a model wants, plus clipping
 * into fixed-length clips with silence skipped.
 *
 * Failures are classified (enum m2u_decode_status) so the dataset builder can
 * skip a file, record "file, reason" in its error report and go on; the full
 * sentence (naming the file) is in m2u_last_error().
 *
 * Logging: FFmpeg prints warnings to stderr by default.  Library code must not
 * print, so the first call of any function here installs an av_log callback
 * that keeps FFmpeg's first error-level message of the current operation (it
 * is appended to our failure messages) and prints nothing.  A tool that wants
 * FFmpeg's own log on stderr calls m2u_decode_log_level(AV_LOG_WARNING). */
#ifndef M2U_DECODE_H
#define M2U_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Why a file was refused.  m2u_decode_reason() gives the short token the
 * build's error report uses; the values are stable (they may be stored). */
typedef enum {
    M2U_DECODE_OK = 0,
    M2U_DECODE_CANNOT_OPEN = 1,  /* missing, unreadable, a directory */
    M2U_DECODE_NOT_MEDIA = 2,    /* FFmpeg recognises no format (text/random bytes) */
    M2U_DECODE_NO_AUDIO = 3,     /* a media file without an audio stream (e.g. silent video) */
    M2U_DECODE_NO_VIDEO = 4,     /* no video stream (cover art does not count) */
    M2U_DECODE_WRONG_KIND = 5,   /* an image given to the audio/video decoder, a video to the image loader */
    M2U_DECODE_UNSUPPORTED = 6,  /* no decoder for the codec, too many channels, a buffer over
                                    m2u_decode_max_alloc */
    M2U_DECODE_CORRUPT = 7,      /* decoder errors mid-stream, or nothing decodable */
    M2U_DECODE_TRUNCATED = 8,    /* container promises more than the file holds */
    M2U_DECODE_EMPTY = 9,        /* 0-byte file, or 0 samples/frames decoded */
    M2U_DECODE_TOO_SHORT = 10,   /* decoded less than the caller's minimum */
    M2U_DECODE_SILENT = 11,      /* for callers: m2u_audio_clips() found only silence */
    M2U_DECODE_INTERNAL = 12,    /* out of memory, bad arguments, FFmpeg setup failure */
} m2u_decode_status;

/* "ok", "cannot-open", "not-media", "no-audio", "no-video", "wrong-kind",
 * "unsupported", "corrupt", "truncated", "empty", "too-short", "silent",
 * "internal"; "unknown" for any other value.  Static strings. */
const char *m2u_decode_reason(int status);

typedef struct {
    int status;               /* m2u_decode_status; also set on success (0) */
    int src_rate;             /* sample rate of the stream (first frame) */
    int src_channels;
    double src_duration_s;    /* the container's claim; -1 when unknown or only estimated from bitrate */
    double decoded_s;         /* seconds returned (n / target_rate) */
    char codec[32];           /* decoder name, e.g. "flac", "mp3float" */
    char format[32];          /* demuxer name, e.g. "wav", "ogg", "mov,mp4,m4a,3gp,3g2,mj2" (truncated) */
    int truncated;            /* 1: the file ended early and opts.keep_truncated kept what was decoded */
    int decode_errors;        /* packets the decoder rejected and that were skipped (tolerated) */
    int64_t clipped;          /* output samples clamped into [-1, 1] (keep_channels: NaNs replaced by 0) */
    int out_channels;         /* channels interleaved in the output: 1, or with keep_channels the number kept */
} m2u_audio_info;

typedef struct {
    double start_s;       /* skip this much audio first (seeks when the format allows; sample-exact) */
    double max_s;         /* stop after this much output; <= 0: the whole file */
    double min_s;         /* fewer decoded seconds -> M2U_DECODE_TOO_SHORT; <= 0: no minimum */
    int keep_truncated;   /* 1: a truncated file returns 0 with what was decoded and info.truncated = 1 */
    int keep_channels;    /* 0: mono mean at target_rate (the default).  K > 0: neither downmix nor resample:
                           * the stream's first min(K, channels) channels, interleaved, at the stream's own
                           * rate (target_rate is ignored; info, required, gives src_rate and out_channels),
                           * not clamped (NaN -> 0); *n counts samples of all channels, max_s / min_s are
                           * seconds as always.  For front ends that must resample and clamp as their
                           * reference does (torchaudio.load + Resample). */
    int native_rate;      /* 1: no resampling: output at the stream's own rate (info.src_rate; pass
                           * target_rate 0), for callers that resample with a reference's own
                           * resampler (audio_load.h); a mid-stream rate change is resampled to the
                           * first rate */
    int no_clamp;         /* 1: keep samples outside [-1, 1] (librosa.load does not clamp); NaN
                           * still become 0 and are counted in info.clipped */
} m2u_audio_opts;

/* Decode the best audio stream of `path` (audio files, and the audio track of
 * video files) to mono float32 at target_rate (any rate, e.g. 24000 MERT,
 * 32000 MusicGen, 16000 AudioLDM 2).
 *   - Downmix: the mean of all channels (as librosa.to_mono), not swresample's
 *     default matrix, which adds channels at -3 dB and so raises amplitude.
 *   - Resampling: swresample with the soxr engine when available (the same
 *     library librosa's default uses), else swresample's own.
 *   - Output clamped to [-1, 1] (lossy decoders and the resampler overshoot a
 *     little); info.clipped counts clamped samples.
 *   - Isolated corrupt packets are skipped (counted in info.decode_errors) as
 *     the ffmpeg CLI does; more than max(2, 1 % of packets) failures, or no
 *     audio decoded at all from a file with errors, is CORRUPT.
 *   - Truncation: when the container's duration (from the stream header, not
 *     a bitrate estimate; for WAV the data chunk's own size, which FFmpeg
 *     trims to the file) exceeds the end of the data read by more than 0.1 s
 *     AND by more than 1 s or 20 % of the expected length, the file is
 *     "truncated at X s of Y s" (status TRUNCATED).  Checked after CORRUPT.
 * On success *pcm (malloc'ed, caller frees) holds *n samples.  On failure *pcm
 * is NULL, *n is 0, info->status says why (info may be NULL) and
 * m2u_last_error() names the file and the problem. */
int m2u_audio_decode(const char *path, int target_rate, float **pcm, int64_t *n, m2u_audio_info *info);
/* The same with options (opts may be NULL = defaults: whole file, no minimum). */
int m2u_audio_decode_ex(const char *path, int target_rate, const m2u_audio_opts *opts, float **pcm,
                        int64_t *n, m2u_audio_info *info);

/* A clip of a decoded signal: samples [start, end). */
typedef struct {
    int64_t start, end;
    float rms_db; /* 20*log10(RMS); a full-scale square wave is 0 dB, a full-scale sine -3 dB */
} m2u_clip;

/* Cut pcm into clips of clip_s seconds every hop_s seconds (starting at 0).
 * Clips whose RMS is below silence_db (e.g. -60) are skipped.  After the last
 * full clip, one partial clip reaching the end of the signal is kept when it
 * is at least min_s long (so the tail is covered; later starts would only be
 * subsets of it).  A silent file gives *n_clips = 0 and *clips = NULL, which
 * is success: the caller records M2U_DECODE_SILENT.  *clips is malloc'ed. */
int m2u_audio_clips(const float *pcm, int64_t n, int rate, double clip_s, double hop_s, double silence_db,
                    double min_s, m2u_clip **clips, size_t *n_clips);

/* Let FFmpeg messages at or below av_level (AV_LOG_ERROR = 16, AV_LOG_WARNING
 * = 24, ...) through to FFmpeg's default stderr logger.  Default: none
 * (AV_LOG_QUIET = -8).  Process-wide. */
void m2u_decode_log_level(int av_level);

/* The largest buffer FFmpeg may allocate at once (av_max_alloc), process-wide.
 * FFmpeg believes the sizes a header claims: a 1.3 KB WAV made it allocate
 * and zero 2 GB several times over.  A file that needs more fails alone, as
 * "unsupported", with a message naming this limit.  0: the default, 1 GiB
 * (FFmpeg's own is 2 GiB).  Set it before decoding, not while other threads
 * decode. */
#define M2U_DECODE_MAX_ALLOC_DEFAULT ((size_t)1 << 30)
void m2u_decode_max_alloc(size_t bytes);
size_t m2u_decode_max_alloc_get(void);

/* ---- shared with data/build/frames.c; not part of the public API -------------- */
struct AVFormatContext;
/* Install the log callback and the cap on one FFmpeg allocation
 * (m2u_decode_max_alloc) once, and forget the previous FFmpeg message. */
void m2u_av_begin(void);
/* FFmpeg's first error message since m2u_av_begin() on this thread ("" if none). */
const char *m2u_av_message(void);
/* Check the file (exists, readable, non-empty), open and probe it.  On failure
 * returns -1 with *status set and the message recorded. */
int m2u_av_open(const char *path, struct AVFormatContext **fmt, int *status);
/* " (FFmpeg's error; its first logged message[; the allocation limit])" for averr,
 * or "" when there is nothing to say: the tail of a decode error message. */
void m2u_av_detail(char *buf, size_t cap, int averr);
/* 1 when the demuxer is one of FFmpeg's still-image readers (png_pipe, image2, ...). */
int m2u_av_is_image_format(const struct AVFormatContext *fmt);
/* Copy a C string into a fixed buffer, truncating. */
void m2u_av_copy_name(char *dst, size_t cap, const char *src);

#endif
