/* Images and uniformly sampled video frames -> RGB24 (see frames.h). */
#include "frames.h"

#include "m2u_error.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoder over one video stream ------------------------------------------------ */

typedef struct {
    const char *path;
    AVFormatContext *fmt;
    AVStream *st;
    int si;
    AVCodecContext *cc;
    AVPacket *pkt;
    AVFrame *fr;
    int eof_sent;
    int64_t packets, frames;
    int errors;
    char first_err[640];
    int first_averr; /* the first error's code (AVERROR(ENOMEM): over the allocation limit) */
    double fps;
    int rotation;
} vdec_t;

static void vdec_free(vdec_t *v) {
    av_frame_free(&v->fr);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->cc);
    avformat_close_input(&v->fmt);
}

static void vdec_note_error(vdec_t *v, int averr) {
    if (v->errors++ == 0) {
        v->first_averr = averr;
        m2u_av_detail(v->first_err, sizeof v->first_err, averr);
    }
}

/* The decoder failed for want of memory: a picture over m2u_decode_max_alloc (or none left),
 * not damage. */
static int vdec_too_big(const vdec_t *v) { return v->errors && v->first_averr == AVERROR(ENOMEM); }

/* Degrees clockwise the picture must be turned for display, rounded to 90. */
static int stream_rotation(const AVStream *st) {
    const int32_t *matrix = NULL;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    const AVPacketSideData *sd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                         st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
    if (sd && sd->size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)sd->data;
#else
    size_t size = 0;
    const uint8_t *sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (sd && size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)sd;
#endif
    if (!matrix) return 0;
    /* av_display_rotation_get is counter-clockwise; the CLI turns by its negation. */
    double ccw = av_display_rotation_get(matrix);
    if (isnan(ccw)) return 0;
    long cw = lround(-ccw / 90.0) * 90;
    cw %= 360;
    if (cw < 0) cw += 360;
    return (int)cw;
}

/* Open path, pick the video stream (not cover art) and open its decoder.
 * want_image: 1 for the still-image loader, 0 for the video sampler. */
static int vdec_open(vdec_t *v, const char *path, int want_image, int *status) {
    memset(v, 0, sizeof *v);
    v->path = path;
    if (m2u_av_open(path, &v->fmt, status) < 0) return -1;
    int is_image = m2u_av_is_image_format(v->fmt);
    const char *fname = v->fmt->iformat->name;
    /* GIF/APNG/WebP animations are both: the loader takes their first frame. */
    int animated = !strcmp(fname, "gif") || !strcmp(fname, "apng");
    int si = -1, audio = 0;
    for (unsigned i = 0; i < v->fmt->nb_streams; i++) {
        AVStream *s = v->fmt->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) audio++;
    }
    int best = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (best >= 0 && !(v->fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) si = best;
    for (unsigned i = 0; si < 0 && i < v->fmt->nb_streams; i++) {
        AVStream *s = v->fmt->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
            si = (int)i;
    }
    if (want_image && !is_image && !animated) {
        *status = M2U_DECODE_WRONG_KIND;
        m2u_fail("%s: not an image (%s %s)", path, si >= 0 ? "video," : audio ? "audio," : "", fname);
        goto fail;
    }
    if (!want_image && is_image) {
        *status = M2U_DECODE_WRONG_KIND;
        m2u_fail("%s: a still image (%s), not a video", path, fname);
        goto fail;
    }
    if (si < 0) {
        *status = want_image ? M2U_DECODE_NOT_MEDIA : M2U_DECODE_NO_VIDEO;
        m2u_fail("%s: no video stream%s", path, audio ? " (audio only)" : "");
        goto fail;
    }
    v->si = si;
    v->st = v->fmt->streams[si];
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != si) v->fmt->streams[i]->discard = AVDISCARD_ALL;
    const AVCodec *codec = avcodec_find_decoder(v->st->codecpar->codec_id);
    if (!codec) {
        *status = M2U_DECODE_UNSUPPORTED;
        m2u_fail("%s: no decoder for video codec %s in this FFmpeg build", path,
                 avcodec_get_name(v->st->codecpar->codec_id));
        goto fail;
    }
    v->cc = avcodec_alloc_context3(codec);
    v->pkt = av_packet_alloc();
    v->fr = av_frame_alloc();
    if (!v->cc || !v->pkt || !v->fr) {
        *status = M2U_DECODE_INTERNAL;
        m2u_fail("%s: out of memory", path);
        goto fail;
    }
    int ret = avcodec_parameters_to_context(v->cc, v->st->codecpar);
    if (ret >= 0) {
        v->cc->pkt_timebase = v->st->time_base;
        /* One thread per file: the builder parallelises across files. */
        v->cc->thread_count = 1;
        ret = avcodec_open2(v->cc, codec, NULL);
    }
    if (ret < 0) {
        *status = M2U_DECODE_UNSUPPORTED;
        m2u_fail("%s: cannot open the %s decoder: %s", path, codec->name, av_err2str(ret));
        goto fail;
    }
    AVRational r = v->st->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0) r = v->st->r_frame_rate;
    v->fps = r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
    v->rotation = stream_rotation(v->st);
    return 0;
fail:
    vdec_free(v);
    return -1;
}

/* Next decoded frame into v->fr: 1 = frame, 0 = end of stream. */
static int vdec_next(vdec_t *v) {
    for (;;) {
        int ret = avcodec_receive_frame(v->cc, v->fr);
        if (ret == 0) {
            v->frames++;
            return 1;
        }
        if (ret == AVERROR_EOF) return 0;
        if (ret != AVERROR(EAGAIN)) vdec_note_error(v, ret); /* then feed the next packet */
        if (v->eof_sent) return 0;
        ret = av_read_frame(v->fmt, v->pkt);
        if (ret < 0) {
            if (ret != AVERROR_EOF) vdec_note_error(v, ret);
            avcodec_send_packet(v->cc, NULL);
            v->eof_sent = 1;
            continue;
        }
        if (v->pkt->stream_index != v->si) {
            av_packet_unref(v->pkt);
            continue;
        }
        v->packets++;
        ret = avcodec_send_packet(v->cc, v->pkt);
        av_packet_unref(v->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) vdec_note_error(v, ret);
    }
}

static int vdec_seek(vdec_t *v, double t) {
    /* In double: a header's start time and time base are whatever the file
     * says, and a target past int64's range is a seek that cannot be made. */
    double t0 = v->st->start_time != AV_NOPTS_VALUE ? (double)v->st->start_time : 0.0;
    double d = t0 + floor(t / av_q2d(v->st->time_base));
    if (!(d > -9.0e18 && d < 9.0e18)) return -1;
    int ret = av_seek_frame(v->fmt, v->si, (int64_t)d, AVSEEK_FLAG_BACKWARD);
    if (ret < 0) return -1;
    avcodec_flush_buffers(v->cc);
    v->eof_sent = 0;
    return 0;
}

static double frame_time(const vdec_t *v, const AVFrame *f, int have_prev, double t_prev) {
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = f->pts;
    if (ts != AV_NOPTS_VALUE) {
        /* the difference in double: any two int64 timestamps, no overflow (exact below 2^53) */
        double t0 = v->st->start_time != AV_NOPTS_VALUE ? (double)v->st->start_time : 0.0;
        return ((double)ts - t0) * av_q2d(v->st->time_base);
    }
    return have_prev ? t_prev + (v->fps > 0 ? 1.0 / v->fps : 0.04) : 0.0;
}

/* ---- conversion --------------------------------------------------------------------- */

typedef struct {
    struct SwsContext *sws;
    uint8_t *tmp, *rot;
    size_t tmp_cap, rot_cap;
} conv_t;

static void conv_free(conv_t *c) {
    sws_freeContext(c->sws);
    free(c->tmp);
    free(c->rot);
    memset(c, 0, sizeof *c);
}

static int grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    uint8_t *p = realloc(*buf, need);
    if (!p) return -1;
    *buf = p;
    *cap = need;
    return 0;
}

static long lmax(long a, long b) { return a > b ? a : b; }
static long lmin(long a, long b) { return a < b ? a : b; }

/* Convert one decoded frame into dst [H][W][3] with the given fit and rotation. */
static int convert_frame(conv_t *c, const char *path, const AVFrame *f, int W, int H, m2u_fit_mode mode, int rotation,
                         uint8_t *dst) {
    int w = f->width, h = f->height;
    if (w <= 0 || h <= 0) return m2u_fail("%s: decoded frame has no size", path);
    int swap = rotation == 90 || rotation == 270;
    double dw = swap ? h : w, dh = swap ? w : h; /* display orientation */
    long sdw, sdh;                               /* scaled size in display orientation */
    if (mode == M2U_FIT_STRETCH) {
        sdw = W;
        sdh = H;
    } else if (mode == M2U_FIT_PAD) {
        double s = fmin(W / dw, H / dh);
        sdw = lmin(W, lmax(1, lround(dw * s)));
        sdh = lmin(H, lmax(1, lround(dh * s)));
    } else {
        double s = fmax(W / dw, H / dh);
        sdw = lmax(W, lround(dw * s));
        sdh = lmax(H, lround(dh * s));
    }
    int sw = (int)(swap ? sdh : sdw), sh = (int)(swap ? sdw : sdh); /* coded orientation */

    enum AVPixelFormat pf = f->format;
    int full = f->color_range == AVCOL_RANGE_JPEG;
    /* The deprecated YUVJ formats mean "full range": swscale warns and
     * guesses unless we say so with the plain format plus the range. */
    switch (pf) {
    case AV_PIX_FMT_YUVJ420P: pf = AV_PIX_FMT_YUV420P; full = 1; break;
    case AV_PIX_FMT_YUVJ422P: pf = AV_PIX_FMT_YUV422P; full = 1; break;
    case AV_PIX_FMT_YUVJ444P: pf = AV_PIX_FMT_YUV444P; full = 1; break;
    case AV_PIX_FMT_YUVJ440P: pf = AV_PIX_FMT_YUV440P; full = 1; break;
    case AV_PIX_FMT_YUVJ411P: pf = AV_PIX_FMT_YUV411P; full = 1; break;
    default: break;
    }
    c->sws = sws_getCachedContext(c->sws, w, h, pf, sw, sh, AV_PIX_FMT_RGB24,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, NULL, NULL,
                                  NULL);
    if (!c->sws)
        return m2u_fail("%s: swscale cannot convert %s %dx%d to RGB %dx%d", path,
                        av_get_pix_fmt_name(pf) ? av_get_pix_fmt_name(pf) : "?", w, h, sw, sh);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(pf);
    if (desc && !(desc->flags & AV_PIX_FMT_FLAG_RGB)) {
        int cs;
        switch (f->colorspace) {
        case AVCOL_SPC_BT709: cs = SWS_CS_ITU709; break;
        case AVCOL_SPC_FCC: cs = SWS_CS_FCC; break;
        case AVCOL_SPC_SMPTE240M: cs = SWS_CS_SMPTE240M; break;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: cs = SWS_CS_BT2020; break;
        default: cs = SWS_CS_ITU601; break;
        }
        sws_setColorspaceDetails(c->sws, sws_getCoefficients(cs), full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                 1 << 16, 1 << 16);
    }
    size_t scaled = (size_t)sw * sh * 3;
    if (grow(&c->tmp, &c->tmp_cap, scaled) < 0) return m2u_fail("%s: out of memory", path);
    uint8_t *planes[4] = {c->tmp, NULL, NULL, NULL};
    int strides[4] = {sw * 3, 0, 0, 0};
    int got = sws_scale(c->sws, (const uint8_t *const *)f->data, f->linesize, 0, h, planes, strides);
    if (got <= 0) return m2u_fail("%s: swscale failed on a %dx%d frame", path, w, h);

    const uint8_t *img = c->tmp; /* display orientation, sdw x sdh */
    if (rotation) {
        if (grow(&c->rot, &c->rot_cap, scaled) < 0) return m2u_fail("%s: out of memory", path);
        for (long y = 0; y < sdh; y++)
            for (long x = 0; x < sdw; x++) {
                long sx, sy; /* source pixel in the sw x sh coded image */
                if (rotation == 90) {
                    sx = y;
                    sy = sh - 1 - x;
                } else if (rotation == 180) {
                    sx = sw - 1 - x;
                    sy = sh - 1 - y;
                } else {
                    sx = sw - 1 - y;
                    sy = x;
                }
                memcpy(c->rot + (y * sdw + x) * 3, c->tmp + (sy * sw + sx) * 3, 3);
            }
        img = c->rot;
    }
    if (mode == M2U_FIT_PAD) {
        memset(dst, 0, (size_t)W * H * 3);
        long x0 = (W - sdw) / 2, y0 = (H - sdh) / 2;
        for (long y = 0; y < sdh; y++) memcpy(dst + ((y0 + y) * W + x0) * 3, img + y * sdw * 3, (size_t)sdw * 3);
    } else {
        long x0 = (sdw - W) / 2, y0 = (sdh - H) / 2;
        for (long y = 0; y < H; y++) memcpy(dst + (size_t)y * W * 3, img + ((y0 + y) * sdw + x0) * 3, (size_t)W * 3);
    }
    return 0;
}

/* ---- video sampling ------------------------------------------------------------------ */

/* The stream's length in seconds from its start: header, container, or a
 * pass over the packets' timestamps (last pts + its duration). */
static double video_duration(const vdec_t *v, int *status) {
    const AVStream *st = v->st;
    /* a header's figure only when it is a real length (a time base of x/0 makes it inf) */
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
        double d = (double)st->duration * av_q2d(st->time_base);
        if (d > 0 && isfinite(d)) return d;
    }
    if (v->fmt->duration != AV_NOPTS_VALUE && v->fmt->duration > 0 &&
        v->fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE)
        return (double)v->fmt->duration / AV_TIME_BASE;
    AVFormatContext *fmt = NULL;
    if (m2u_av_open(v->path, &fmt, status) < 0) return -1;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt) {
        avformat_close_input(&fmt);
        *status = M2U_DECODE_INTERNAL;
        m2u_fail("%s: out of memory", v->path);
        return -1;
    }
    const AVStream *s2 = fmt->streams[v->si];
    /* timestamps as the file has them, any int64: summed and subtracted in double */
    int have_t0 = s2->start_time != AV_NOPTS_VALUE, have_end = 0;
    double t0 = have_t0 ? (double)s2->start_time : 0.0, end = 0.0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == v->si && pkt->pts != AV_NOPTS_VALUE) {
            double e = (double)pkt->pts + (pkt->duration > 0 ? (double)pkt->duration : 0.0);
            if (!have_end || e > end) end = e, have_end = 1;
            if (!have_t0 || (double)pkt->pts < t0) t0 = (double)pkt->pts, have_t0 = 1;
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    double d = have_end ? (end - t0) * av_q2d(s2->time_base) : 0;
    avformat_close_input(&fmt);
    if (!(d > 0 && isfinite(d)) && v->fps > 0) d = 1.0 / v->fps; /* a single frame */
    if (!(d > 0 && isfinite(d))) {
        *status = M2U_DECODE_EMPTY;
        m2u_fail("%s: the video stream has no timed frames", v->path);
        return -1;
    }
    return d;
}

int m2u_video_frames(const char *path, int n_frames, int width, int height, uint8_t **rgb, m2u_video_info *info) {
    return m2u_video_frames_ex(path, n_frames, width, height, NULL, rgb, info);
}

static int vset(m2u_video_info *info, int status) {
    if (info) info->status = status;
    return status ? -1 : 0;
}

int m2u_video_frames_ex(const char *path, int n_frames, int width, int height, const m2u_video_opts *opts,
                        uint8_t **rgb, m2u_video_info *info) {
    m2u_video_opts o = {0};
    if (opts) o = *opts;
    if (rgb) *rgb = NULL;
    if (info) memset(info, 0, sizeof *info);
    if (!path || !rgb || n_frames < 1 || n_frames > 100000 || width < 1 || height < 1 || width > 16384 ||
        height > 16384) {
        m2u_fail("m2u_video_frames(%s): bad arguments (%d frames of %dx%d)", path ? path : "(null)", n_frames,
                 width, height);
        return vset(info, M2U_DECODE_INTERNAL);
    }
    m2u_av_begin();
    int status = M2U_DECODE_OK;
    vdec_t v;
    if (vdec_open(&v, path, 0, &status) < 0) return vset(info, status);
    conv_t c = {0};
    AVFrame *prev = av_frame_alloc();
    size_t frame_bytes = (size_t)width * height * 3;
    uint8_t *out = malloc(frame_bytes * (size_t)n_frames);
    int64_t *src_id = malloc(sizeof *src_id * (size_t)n_frames);
    double *targets = malloc(sizeof *targets * (size_t)n_frames);
    if (!prev || !out || !src_id || !targets) {
        status = M2U_DECODE_INTERNAL;
        m2u_fail("%s: out of memory for %d frames of %dx%d", path, n_frames, width, height);
        goto done;
    }
    if (info) {
        info->src_width = v.st->codecpar->width;
        info->src_height = v.st->codecpar->height;
        info->rotation = v.rotation;
        info->fps = v.fps;
        for (unsigned i = 0; i < v.fmt->nb_streams; i++)
            info->has_audio |= v.fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
        m2u_av_copy_name(info->codec, sizeof info->codec, v.cc->codec->name);
        m2u_av_copy_name(info->format, sizeof info->format, v.fmt->iformat->name);
    }
    double D = video_duration(&v, &status);
    if (D < 0) goto done;
    if (info) info->duration_s = D;
    for (int k = 0; k < n_frames; k++) targets[k] = (k + 0.5) * D / n_frames;

    /* Seeking lands on the keyframe before the target and decodes forward,
     * so it only pays when targets are far apart. */
    int no_seek = o.strategy == M2U_SAMPLE_DECODE_THROUGH;
    double gap = o.strategy == M2U_SAMPLE_SEEK ? 0.0 : 10.0;
    int have_prev = 0, just_seeked = 0, fell_back = 0, k = 0, seek_k = -1;
    double t_prev = 0;
    int64_t prev_id = -1;
    while (k < n_frames) {
        double tk = targets[k];
        /* At most one seek per target: the keyframe it lands on may still be
         * more than `gap` before the target. */
        if (!no_seek && k != seek_k && tk - (have_prev ? t_prev : 0.0) > gap) {
            seek_k = k;
            if (vdec_seek(&v, tk) == 0) {
                av_frame_unref(prev);
                have_prev = 0;
                just_seeked = 1;
            } else {
                no_seek = 1;
            }
        }
        int r = vdec_next(&v);
        if (r == 0) break;
        double tf = frame_time(&v, v.fr, have_prev, t_prev);
        if (just_seeked) {
            just_seeked = 0;
            if (tf > tk + 1e-6 && !fell_back) {
                /* The demuxer seeked past the target (imprecise index): decode
                 * through from the start instead, once. */
                fell_back = 1;
                no_seek = 1;
                av_frame_unref(v.fr);
                if (vdec_seek(&v, 0) < 0) {
                    status = M2U_DECODE_CORRUPT;
                    m2u_fail("%s: cannot seek back to the start", path);
                    goto done;
                }
                continue;
            }
        }
        /* Every target before this frame's time is shown by the previous frame. */
        while (k < n_frames && targets[k] < tf) {
            const AVFrame *use = have_prev ? prev : v.fr;
            int64_t id = have_prev ? prev_id : v.frames;
            uint8_t *dst = out + frame_bytes * (size_t)k;
            if (k > 0 && src_id[k - 1] == id) {
                memcpy(dst, dst - frame_bytes, frame_bytes);
            } else if (convert_frame(&c, path, use, width, height, o.fit, v.rotation, dst) < 0) {
                status = M2U_DECODE_INTERNAL;
                goto done;
            }
            src_id[k] = id;
            if (o.times) o.times[k] = have_prev ? t_prev : tf;
            k++;
        }
        av_frame_unref(prev);
        av_frame_move_ref(prev, v.fr);
        have_prev = 1;
        t_prev = tf;
        prev_id = v.frames;
    }
    if (k < n_frames) {
        if (!have_prev) {
            status = !v.errors ? M2U_DECODE_EMPTY : vdec_too_big(&v) ? M2U_DECODE_UNSUPPORTED : M2U_DECODE_CORRUPT;
            m2u_fail("%s: no video frame could be decoded%s", path, v.errors ? v.first_err : "");
            goto done;
        }
        double end = t_prev + (v.fps > 0 ? 1.0 / v.fps : 0);
        double missing = D - end;
        if (missing > 0.1 && (missing > 1.0 || missing > 0.2 * D)) {
            status = M2U_DECODE_TRUNCATED;
            m2u_fail("%s: video truncated at %.2f s of %.2f s%s", path, end, D, v.errors ? v.first_err : "");
            goto done;
        }
        for (; k < n_frames; k++) {
            uint8_t *dst = out + frame_bytes * (size_t)k;
            if (k > 0 && src_id[k - 1] == prev_id) {
                memcpy(dst, dst - frame_bytes, frame_bytes);
            } else if (convert_frame(&c, path, prev, width, height, o.fit, v.rotation, dst) < 0) {
                status = M2U_DECODE_INTERNAL;
                goto done;
            }
            src_id[k] = prev_id;
            if (o.times) o.times[k] = t_prev;
        }
    }
    int64_t tolerated = v.packets / 100 > 2 ? v.packets / 100 : 2;
    if (v.errors > tolerated) {
        status = vdec_too_big(&v) ? M2U_DECODE_UNSUPPORTED : M2U_DECODE_CORRUPT;
        m2u_fail("%s: %d of %lld video packets failed to decode%s", path, v.errors, (long long)v.packets,
                 v.first_err);
        goto done;
    }
    if (info) {
        int uniq = 0;
        for (int i = 0; i < n_frames; i++) {
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) seen = src_id[j] == src_id[i];
            uniq += !seen;
        }
        info->n_unique = uniq;
        info->frames_decoded = v.frames;
        info->decode_errors = v.errors;
    }
    *rgb = out;
    out = NULL;
done:
    free(out);
    free(src_id);
    free(targets);
    av_frame_free(&prev);
    conv_free(&c);
    vdec_free(&v);
    return vset(info, status);
}

/* ---- images ----------------------------------------------------------------------------- */

int m2u_image_load(const char *path, int width, int height, m2u_fit_mode mode, uint8_t **rgb, m2u_image_info *info) {
    if (rgb) *rgb = NULL;
    if (info) memset(info, 0, sizeof *info);
    int status = M2U_DECODE_OK;
    if (!path || !rgb || width < 1 || height < 1 || width > 16384 || height > 16384) {
        m2u_fail("m2u_image_load(%s): bad arguments (%dx%d)", path ? path : "(null)", width, height);
        status = M2U_DECODE_INTERNAL;
        goto ret;
    }
    m2u_av_begin();
    vdec_t v;
    if (vdec_open(&v, path, 1, &status) < 0) goto ret;
    if (info) {
        info->src_width = v.st->codecpar->width;
        info->src_height = v.st->codecpar->height;
        info->rotation = v.rotation;
        m2u_av_copy_name(info->codec, sizeof info->codec, v.cc->codec->name);
        m2u_av_copy_name(info->format, sizeof info->format, v.fmt->iformat->name);
    }
    /* Forget messages from probing; from here on an error-level message
     * means the picture data is damaged (decoders conceal and go on). */
    m2u_av_begin();
    int r = vdec_next(&v);
    if (r == 1 && !v.errors && m2u_av_message()[0]) vdec_note_error(&v, AVERROR_INVALIDDATA);
    if (r != 1 || v.errors) {
        status = r != 1 && !v.errors ? M2U_DECODE_EMPTY
                 : vdec_too_big(&v)  ? M2U_DECODE_UNSUPPORTED
                                     : M2U_DECODE_CORRUPT;
        if (status == M2U_DECODE_EMPTY)
            m2u_fail("%s: the image holds no picture", path);
        else if (status == M2U_DECODE_UNSUPPORTED)
            m2u_fail("%s: the decoder could not get its picture buffers%s", path, v.first_err);
        else
            m2u_fail("%s: damaged image, the decoder failed%s", path, v.first_err);
        vdec_free(&v);
        goto ret;
    }
    conv_t c = {0};
    uint8_t *out = malloc((size_t)width * height * 3);
    if (!out) {
        status = M2U_DECODE_INTERNAL;
        m2u_fail("%s: out of memory", path);
    } else if (convert_frame(&c, path, v.fr, width, height, mode, v.rotation, out) < 0) {
        status = M2U_DECODE_INTERNAL;
        free(out);
    } else {
        *rgb = out;
    }
    conv_free(&c);
    vdec_free(&v);
ret:
    if (info) info->status = status;
    return status ? -1 : 0;
}
