/* Images and video frames as RGB24 tensors, through FFmpeg (demux, decode)
 * and swscale (convert, resize).
 *
 * Layout: uint8 [n_frames][height][width][3], rows top to bottom, RGB order,
 * no padding; one malloc'ed block the caller frees.
 *
 * Geometry (M2U_FIT_CROP, the default): resize so the shorter side matches
 * the target (the longer side is scaled by the same factor), then cut the
 * centre, as the ViT/ViViT/CLIP preprocessors do ("shortest_edge" resize +
 * center crop).  swscale's bicubic filter widens with the downscale factor,
 * so large reductions are antialiased; SWS_BITEXACT keeps results identical
 * across CPUs.  Rotation metadata (phone videos) is applied in multiples of
 * 90 degrees before the crop; mirroring is not.  Alpha is dropped (as PIL's
 * convert("RGB")).  Limited-range and full-range (JPEG) YUV, BT.601/709/2020
 * matrices are honoured from the frame's tags (untagged = BT.601, like the
 * ffmpeg CLI).
 *
 * Failures use the status codes and reasons of decode.h. */
#ifndef M2U_FRAMES_H
#define M2U_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

typedef enum {
    M2U_FIT_CROP = 0,    /* shorter side -> target, centre crop (no distortion, loses the edges) */
    M2U_FIT_STRETCH = 1, /* scale each axis independently (distorts, keeps everything) */
    M2U_FIT_PAD = 2,     /* longer side -> target, centred on black (letterbox) */
} m2u_fit_mode;

typedef enum {
    M2U_SAMPLE_AUTO = 0,          /* decode through; seek when the next target is > 10 s ahead */
    M2U_SAMPLE_DECODE_THROUGH = 1, /* never seek (exact for any stream, slow for long ones) */
    M2U_SAMPLE_SEEK = 2,          /* seek (to the keyframe before) for every target ahead */
} m2u_sample_strategy;

typedef struct {
    int status;               /* m2u_decode_status */
    int src_width, src_height; /* coded size, before rotation */
    int rotation;             /* degrees clockwise applied: 0, 90, 180, 270 */
    double duration_s;        /* stream length the targets were spread over */
    double fps;               /* average frame rate from the container; 0 if unknown */
    int64_t frames_decoded;   /* frames the decoder produced (all, not only the sampled) */
    int n_unique;             /* distinct source frames among the sampled ones */
    int has_audio;            /* 1: there is an audio track (decode it with m2u_audio_decode on the same path) */
    int decode_errors;        /* tolerated decoder errors */
    char codec[32], format[32];
} m2u_video_info;

typedef struct {
    m2u_fit_mode fit;
    m2u_sample_strategy strategy;
    double *times; /* optional [n_frames]: presentation time (s from stream start) of each sampled frame */
} m2u_video_opts;

/* Sample n_frames frames uniformly over the video's duration D: frame k is the
 * frame on screen at t_k = (k + 0.5) * D / n_frames (the centre of the k-th of
 * n equal segments), chosen by presentation timestamps, so variable frame rate
 * streams are sampled by time, not by frame index.  When the video has fewer
 * frames than n_frames, frames repeat.  D comes from the stream header, the
 * container, or (when neither says) a pass over the packets' timestamps.
 * Stills (png/jpeg/...) are WRONG_KIND; audio-only files (cover art does not
 * count) are NO_VIDEO; a video ending more than 1 s before D is TRUNCATED.
 * On success *rgb is malloc'ed [n_frames][height][width][3]. */
int m2u_video_frames(const char *path, int n_frames, int width, int height, uint8_t **rgb, m2u_video_info *info);
int m2u_video_frames_ex(const char *path, int n_frames, int width, int height, const m2u_video_opts *opts,
                        uint8_t **rgb, m2u_video_info *info);

typedef struct {
    int status;
    int src_width, src_height;
    int rotation;
    char codec[32], format[32];
} m2u_image_info;

/* Load a still image (PNG, JPEG, WebP, BMP, TIFF, GIF's first frame, ...)
 * and fit it to width x height.  Video and audio files are WRONG_KIND.
 * *rgb is malloc'ed [height][width][3].  info may be NULL. */
int m2u_image_load(const char *path, int width, int height, m2u_fit_mode mode, uint8_t **rgb, m2u_image_info *info);

#endif
