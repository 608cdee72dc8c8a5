/* Audio decoding (FFmpeg 5.1: AVChannelLayout, swr_alloc_set_opts2, the
 * send/receive API) and clipping.  See decode.h for the contract. */
#include "decode.h"

#include "m2u_error.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mem.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reasons ---------------------------------------------------------------- */

const char *m2u_decode_reason(int status) {
    static const char *const names[] = {
        "ok",        "cannot-open", "not-media", "no-audio",  "no-video", "wrong-kind", "unsupported",
        "corrupt",   "truncated",   "empty",     "too-short", "silent",   "internal",
    };
    if (status < 0 || status >= (int)(sizeof names / sizeof names[0])) return "unknown";
    return names[status];
}

/* ---- FFmpeg logging ------------------------------------------------------------ */

/* First error-level FFmpeg message of the current operation on this thread:
 * FFmpeg often knows the precise cause ("inflate returned error", "Header
 * missing") that its return codes flatten into AVERROR_INVALIDDATA. */
static _Thread_local char g_avmsg[512];
static atomic_int g_pass_level = AV_LOG_QUIET;
static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;

static void log_cb(void *avcl, int level, const char *fmt, va_list vl) {
    if (level <= atomic_load(&g_pass_level)) {
        va_list copy;
        va_copy(copy, vl);
        av_log_default_callback(avcl, level, fmt, copy);
        va_end(copy);
    }
    if (level > AV_LOG_ERROR || g_avmsg[0]) return;
    char text[400];
    vsnprintf(text, sizeof text, fmt, vl);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '.')) text[--len] = '\0';
    const char *cls = NULL;
    if (avcl) {
        const AVClass *c = *(const AVClass *const *)avcl;
        if (c && c->item_name) cls = c->item_name(avcl);
    }
    if (cls)
        snprintf(g_avmsg, sizeof g_avmsg, "[%s] %s", cls, text);
    else
        snprintf(g_avmsg, sizeof g_avmsg, "%s", text);
}

/* FFmpeg trusts the sizes a header claims when it allocates: the WAV
 * demuxer's LIST/INFO reader asks av_mallocz for a 2 GB subchunk that a
 * 1.3 KB file announces (tests/fuzz/regressions/media), zeroes it, then
 * finds nothing to read; a probe does that several times per file.  One
 * cap per process (FFmpeg has no per-file one, m2u_decode_max_alloc sets
 * it): hardly a real input needs more in one buffer (a 12000 x 12000 16-bit
 * RGBA picture does: 1.15 GB), and a refused request fails that one file
 * with ENOMEM, said as such (m2u_av_detail), instead of letting one bad file
 * take a rank's memory. */
static _Atomic size_t g_max_alloc = M2U_DECODE_MAX_ALLOC_DEFAULT;

static void log_install(void) {
    av_log_set_callback(log_cb);
    av_max_alloc(atomic_load(&g_max_alloc));
}

void m2u_decode_max_alloc(size_t bytes) {
    pthread_once(&g_log_once, log_install);
    atomic_store(&g_max_alloc, bytes ? bytes : M2U_DECODE_MAX_ALLOC_DEFAULT);
    av_max_alloc(atomic_load(&g_max_alloc));
}

size_t m2u_decode_max_alloc_get(void) { return atomic_load(&g_max_alloc); }

void m2u_av_begin(void) {
    pthread_once(&g_log_once, log_install);
    g_avmsg[0] = '\0';
}

const char *m2u_av_message(void) { return g_avmsg; }

void m2u_decode_log_level(int av_level) {
    pthread_once(&g_log_once, log_install);
    atomic_store(&g_pass_level, av_level);
}

void m2u_av_copy_name(char *dst, size_t cap, const char *src) {
    if (!cap) return;
    snprintf(dst, cap, "%s", src ? src : "");
}

/* "(Invalid data found when processing input; [mp3] Header missing)"; an allocation
 * failure says which limit it may have met. */
void m2u_av_detail(char *buf, size_t cap, int averr) {
    char e[128] = "";
    if (averr < 0) av_strerror(averr, e, sizeof e);
    const char *m = m2u_av_message();
    char lim[200] = "";
    if (averr == AVERROR(ENOMEM))
        snprintf(lim, sizeof lim, "; a buffer over the %zu MiB limit on one FFmpeg allocation "
                 "(m2u-dataset --decode-max-alloc), or the machine is out of memory",
                 m2u_decode_max_alloc_get() >> 20);
    if (e[0] && m[0])
        snprintf(buf, cap, " (%s; %s%s)", e, m, lim);
    else if (e[0] || m[0])
        snprintf(buf, cap, " (%s%s)", e[0] ? e : m, lim);
    else
        buf[0] = '\0';
}

/* ---- opening ----------------------------------------------------------------- */

int m2u_av_open(const char *path, AVFormatContext **out, int *status) {
    *out = NULL;
    pthread_once(&g_log_once, log_install);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        *status = M2U_DECODE_CANNOT_OPEN;
        return m2u_fail("%s: cannot open: %s", path, av_err2str(AVERROR(e)));
    }
    if (S_ISDIR(sb.st_mode)) {
        *status = M2U_DECODE_CANNOT_OPEN;
        return m2u_fail("%s: cannot open: is a directory", path);
    }
    /* Check readability ourselves: FFmpeg's message for EACCES names no file. */
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        *status = M2U_DECODE_CANNOT_OPEN;
        return m2u_fail("%s: cannot open: %s", path, av_err2str(AVERROR(e)));
    }
    close(fd);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
        *status = M2U_DECODE_EMPTY;
        return m2u_fail("%s: empty file (0 bytes)", path);
    }
    /* A ':' would make FFmpeg look for a protocol ("a:b.wav" -> protocol "a"). */
    char *url = NULL;
    if (strchr(path, ':')) {
        size_t len = strlen(path);
        url = malloc(len + 6);
        if (!url) {
            *status = M2U_DECODE_INTERNAL;
            return m2u_fail("%s: out of memory", path);
        }
        memcpy(url, "file:", 5);
        memcpy(url + 5, path, len + 1);
    }
    AVFormatContext *fmt = NULL;
    int ret = avformat_open_input(&fmt, url ? url : path, NULL, NULL);
    free(url);
    char d[640];
    if (ret < 0) {
        m2u_av_detail(d, sizeof d, ret);
        if (ret == AVERROR(ENOMEM)) {
            *status = M2U_DECODE_UNSUPPORTED;
            return m2u_fail("%s: FFmpeg could not open it%s", path, d);
        }
        *status = M2U_DECODE_NOT_MEDIA;
        return m2u_fail("%s: not a media file FFmpeg can read%s", path, d);
    }
    ret = avformat_find_stream_info(fmt, NULL);
    if (ret < 0) {
        m2u_av_detail(d, sizeof d, ret);
        avformat_close_input(&fmt);
        *status = M2U_DECODE_CORRUPT;
        return m2u_fail("%s: cannot read the stream parameters%s", path, d);
    }
    if (fmt->nb_streams == 0) {
        avformat_close_input(&fmt);
        *status = M2U_DECODE_NOT_MEDIA;
        return m2u_fail("%s: not a media file (no streams)", path);
    }
    *out = fmt;
    return 0;
}

int m2u_av_is_image_format(const AVFormatContext *fmt) {
    const char *n = fmt->iformat->name;
    size_t len = strlen(n);
    /* FFmpeg's still-image demuxers: image2 (by extension) and <codec>_pipe (by content). */
    return (len > 5 && !strcmp(n + len - 5, "_pipe")) || !strcmp(n, "image2") || !strcmp(n, "image2pipe");
}

/* ---- decoder state ------------------------------------------------------------- */

typedef struct {
    const char *path;
    int target_rate;
    int keep;   /* m2u_audio_opts.keep_channels > 0 */
    int out_ch; /* 1 (mono mean), or the channels kept with m2u_audio_opts.keep_channels */
    AVFormatContext *fmt;
    AVStream *st;
    int si;
    AVCodecContext *cc;
    AVPacket *pkt;
    AVFrame *fr;
    SwrContext *swr;
    int swr_rate, swr_fmt;
    AVChannelLayout swr_layout; /* the frame layout swr was built for (for change detection) */

    float *out;
    int64_t n, cap;
    int64_t max_out; /* -1: unlimited */
    int done;        /* max_out reached */

    double start_s;
    int seeked;   /* a seek happened: position comes from the first frame's timestamp */
    int restart;  /* first frame after the seek had no timestamp: rewind and count */
    int have_pos;
    double pos_s; /* stream time (s) just after the last frame seen */

    int64_t packets;
    int errors;
    int first_err;
    double first_err_s;
    char first_err_msg[512];
    int hard; /* non-recoverable failure already recorded with m2u_fail */
} dec_t;

static int out_reserve(dec_t *d, int64_t extra) {
    if (d->n + extra <= d->cap) return 0;
    int64_t cap = d->cap ? d->cap * 2 : 65536;
    if (cap < d->n + extra) cap = d->n + extra;
    float *p = realloc(d->out, (size_t)cap * sizeof *p);
    if (!p) {
        d->hard = M2U_DECODE_INTERNAL;
        return m2u_fail("%s: out of memory for %lld samples", d->path, (long long)cap);
    }
    d->out = p;
    d->cap = cap;
    return 0;
}

static void note_error(dec_t *d, int averr) {
    if (d->errors++ == 0) {
        d->first_err = averr;
        d->first_err_s = d->have_pos ? d->pos_s : 0;
        m2u_av_detail(d->first_err_msg, sizeof d->first_err_msg, averr);
    }
}

/* Drain whatever the resampler still holds (end of stream or format change). */
static int swr_drain(dec_t *d) {
    if (!d->swr) return 0;
    for (;;) {
        int cap = swr_get_out_samples(d->swr, 0);
        if (cap <= 0) cap = 4096;
        if (out_reserve(d, (int64_t)cap * d->out_ch) < 0) return -1;
        uint8_t *o = (uint8_t *)(d->out + d->n);
        int got = swr_convert(d->swr, &o, cap, NULL, 0);
        if (got < 0) {
            d->hard = M2U_DECODE_INTERNAL;
            return m2u_fail("%s: resampler flush failed: %s", d->path, av_err2str(got));
        }
        if (got == 0) return 0;
        d->n += (int64_t)got * d->out_ch;
    }
}

static int swr_setup(dec_t *d, const AVFrame *fr) {
    int nch = fr->ch_layout.nb_channels;
    if (nch > 64) {
        d->hard = M2U_DECODE_UNSUPPORTED;
        return m2u_fail("%s: %d channels (at most 64 supported)", d->path, nch);
    }
    if (swr_drain(d) < 0) return -1;
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_layout);

    AVChannelLayout in = {0};
    int ret = fr->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC ? (av_channel_layout_default(&in, nch), 0)
                                                              : av_channel_layout_copy(&in, &fr->ch_layout);
    if (ret < 0) goto fail;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if (d->out_ch > 1) av_channel_layout_default(&mono, d->out_ch);
    double matrix[64 * 2];
    if (d->out_ch == 1 && !d->keep)
        for (int c = 0; c < nch; c++) matrix[c] = 1.0 / nch; /* mean of channels, see decode.h */
    else /* keep_channels: output channel o is input channel o (channel 0 if the stream has fewer) */
        for (int o = 0; o < d->out_ch; o++)
            for (int c = 0; c < nch; c++) matrix[o * nch + c] = c == (o < nch ? o : 0) ? 1.0 : 0.0;
    /* soxr first (better stop-band than swr's default at equal speed); swr's
     * own engine when this FFmpeg lacks soxr. */
    for (int attempt = 0; attempt < 2; attempt++) {
        ret = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, d->target_rate, &in, fr->format,
                                  fr->sample_rate, 0, NULL);
        if (ret < 0) break;
        if (attempt == 0) av_opt_set(d->swr, "resampler", "soxr", 0);
        ret = swr_set_matrix(d->swr, matrix, nch);
        if (ret >= 0) ret = swr_init(d->swr);
        if (ret >= 0) break;
        swr_free(&d->swr);
    }
    av_channel_layout_uninit(&in);
    if (ret < 0) goto fail;
    ret = av_channel_layout_copy(&d->swr_layout, &fr->ch_layout);
    if (ret < 0) goto fail;
    d->swr_rate = fr->sample_rate;
    d->swr_fmt = fr->format;
    return 0;
fail:
    d->hard = M2U_DECODE_INTERNAL;
    return m2u_fail("%s: cannot set up the resampler (%d Hz, %d channels, %s): %s", d->path, fr->sample_rate, nch,
                    av_get_sample_fmt_name(fr->format) ? av_get_sample_fmt_name(fr->format) : "?", av_err2str(ret));
}

static double stream_time(const AVStream *st, int64_t ts) {
    int64_t t0 = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    return (double)(ts - t0) * av_q2d(st->time_base);
}

static int process_frame(dec_t *d, AVFrame *fr) {
    int rate = fr->sample_rate, nch = fr->ch_layout.nb_channels, nb = fr->nb_samples;
    if (rate <= 0 || nch <= 0 || nb <= 0) {
        if (nb > 0) note_error(d, AVERROR_INVALIDDATA);
        return 0;
    }
    if (!d->have_pos) {
        if (d->seeked) {
            if (fr->best_effort_timestamp == AV_NOPTS_VALUE) {
                d->restart = 1;
                return 0;
            }
            d->pos_s = stream_time(d->st, fr->best_effort_timestamp);
        } else {
            d->pos_s = 0;
        }
        d->have_pos = 1;
    }
    /* Count samples rather than trusting each frame's timestamp: timestamps
     * jitter on some containers, sample counts do not. */
    double t = d->pos_s;
    d->pos_s += (double)nb / rate;
    int64_t skip = 0;
    if (t < d->start_s) {
        skip = llround((d->start_s - t) * rate);
        if (skip >= nb) return 0;
    }
    if (!d->swr || rate != d->swr_rate || fr->format != d->swr_fmt ||
        av_channel_layout_compare(&fr->ch_layout, &d->swr_layout) != 0) {
        if (swr_setup(d, fr) < 0) return -1;
    }
    const uint8_t *in[64];
    int bps = av_get_bytes_per_sample(fr->format);
    if (av_sample_fmt_is_planar(fr->format)) {
        for (int c = 0; c < nch; c++) in[c] = fr->extended_data[c] + skip * bps;
    } else {
        in[0] = fr->extended_data[0] + skip * bps * nch;
    }
    int cnt = nb - (int)skip;
    int cap = swr_get_out_samples(d->swr, cnt);
    if (cap < 0) cap = (int)av_rescale_rnd(cnt + 256, d->target_rate, rate, AV_ROUND_UP) + 256;
    if (out_reserve(d, (int64_t)cap * d->out_ch) < 0) return -1;
    uint8_t *o = (uint8_t *)(d->out + d->n);
    int got = swr_convert(d->swr, &o, cap, in, cnt);
    if (got < 0) {
        d->hard = M2U_DECODE_INTERNAL;
        return m2u_fail("%s: resampling failed: %s", d->path, av_err2str(got));
    }
    d->n += (int64_t)got * d->out_ch;
    if (d->max_out >= 0 && d->n >= d->max_out) d->done = 1;
    return 0;
}

static int receive_all(dec_t *d) {
    for (;;) {
        int ret = avcodec_receive_frame(d->cc, d->fr);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0) {
            note_error(d, ret);
            return 0;
        }
        ret = process_frame(d, d->fr);
        av_frame_unref(d->fr);
        if (ret < 0) return -1;
        if (d->done || d->restart) return 0;
    }
}

/* The first frame after a seek had no timestamp: go back to the start and
 * count samples from there instead. */
static int rewind_to_start(dec_t *d) {
    int ret = avformat_seek_file(d->fmt, -1, INT64_MIN, d->fmt->start_time != AV_NOPTS_VALUE ? d->fmt->start_time : 0,
                                 INT64_MAX, 0);
    if (ret < 0) ret = av_seek_frame(d->fmt, d->si, 0, AVSEEK_FLAG_BYTE);
    if (ret < 0) {
        d->hard = M2U_DECODE_CORRUPT;
        return m2u_fail("%s: cannot seek back to the start: %s", d->path, av_err2str(ret));
    }
    avcodec_flush_buffers(d->cc);
    d->seeked = 0;
    d->restart = 0;
    d->have_pos = 0;
    return 0;
}

static void dec_free(dec_t *d) {
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_layout);
    av_frame_free(&d->fr);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->cc);
    avformat_close_input(&d->fmt);
    free(d->out);
    d->out = NULL;
}

/* Expected stream length in seconds from the container, or -1.  Durations
 * FFmpeg estimated from the bitrate are ignored: for VBR files without a
 * header they are wrong in both directions and would fake truncation. */
static double container_duration(const AVFormatContext *fmt, const AVStream *st) {
    if (fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return -1;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return (double)st->duration * av_q2d(st->time_base);
    if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) return (double)fmt->duration / AV_TIME_BASE;
    return -1;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Seconds the data chunk of a RIFF/WAVE file claims, or -1.  FFmpeg's wav
 * demuxer trims that claim to the file's size, which hides a WAV that was cut
 * short; the header still tells.  0 and 0xFFFFFFFF are "unknown" (streamed). */
static double wav_claimed_s(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char h[16];
    double claim = -1;
    uint32_t byte_rate = 0;
    if (fread(h, 1, 12, f) == 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) {
        long off = 12;
        for (int guard = 0; guard < 64; guard++) {
            if (fseek(f, off, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8) break;
            uint32_t size = le32(h + 4);
            if (!memcmp(h, "fmt ", 4) && size >= 16) {
                if (fread(h, 1, 16, f) != 16) break;
                byte_rate = le32(h + 8);
            } else if (!memcmp(h, "data", 4)) {
                if (size != 0 && size != 0xFFFFFFFFu && byte_rate) claim = (double)size / byte_rate;
                break;
            }
            off += 8 + (long)size + (long)(size & 1);
        }
    }
    fclose(f);
    return claim;
}

static int set_status(m2u_audio_info *info, int status) {
    if (info) info->status = status;
    return status == M2U_DECODE_OK ? 0 : -1;
}

int m2u_audio_decode(const char *path, int target_rate, float **pcm, int64_t *n, m2u_audio_info *info) {
    return m2u_audio_decode_ex(path, target_rate, NULL, pcm, n, info);
}

int m2u_audio_decode_ex(const char *path, int target_rate, const m2u_audio_opts *opts, float **pcm, int64_t *n,
                        m2u_audio_info *info) {
    m2u_audio_opts o = {0};
    if (opts) o = *opts;
    if (pcm) *pcm = NULL;
    if (n) *n = 0;
    if (info) {
        memset(info, 0, sizeof *info);
        info->src_duration_s = -1;
    }
    if (o.keep_channels > 0 || (o.native_rate && target_rate == 0))
        target_rate = 1; /* replaced by the stream's rate once it is open */
    if (!path || !pcm || !n || target_rate <= 0 || target_rate > 1000000 || !(o.start_s >= 0) || o.keep_channels > 64 ||
        (o.keep_channels > 0 && !info)) {
        m2u_fail("m2u_audio_decode(%s): bad arguments (target rate %d, start %g s)", path ? path : "(null)",
                 target_rate, o.start_s);
        return set_status(info, M2U_DECODE_INTERNAL);
    }
    m2u_av_begin();
    dec_t d;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.target_rate = target_rate;
    d.keep = o.keep_channels > 0;
    d.out_ch = 1;
    d.start_s = o.start_s;
    char detail[640];
    int status = M2U_DECODE_OK;

    if (m2u_av_open(path, &d.fmt, &status) < 0) return set_status(info, status);
    if (info) m2u_av_copy_name(info->format, sizeof info->format, d.fmt->iformat->name);

    const AVCodec *codec = NULL;
    int si = av_find_best_stream(d.fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (si < 0) {
        int videos = 0;
        for (unsigned i = 0; i < d.fmt->nb_streams; i++)
            videos += d.fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
        if (si == AVERROR_DECODER_NOT_FOUND) {
            status = M2U_DECODE_UNSUPPORTED;
            m2u_fail("%s: no decoder for its audio codec in this FFmpeg build", path);
        } else if (m2u_av_is_image_format(d.fmt)) {
            status = M2U_DECODE_WRONG_KIND;
            m2u_fail("%s: an image (%s), not audio", path, d.fmt->iformat->name);
        } else if (videos) {
            status = M2U_DECODE_NO_AUDIO;
            m2u_fail("%s: no audio stream (%d video stream%s only)", path, videos, videos == 1 ? "" : "s");
        } else {
            status = M2U_DECODE_NO_AUDIO;
            m2u_fail("%s: no audio stream (%u stream%s of other kinds)", path, d.fmt->nb_streams,
                     d.fmt->nb_streams == 1 ? "" : "s");
        }
        goto out;
    }
    d.si = si;
    d.st = d.fmt->streams[si];
    /* Other streams (video, cover art) are read and dropped without decoding. */
    for (unsigned i = 0; i < d.fmt->nb_streams; i++)
        if ((int)i != si) d.fmt->streams[i]->discard = AVDISCARD_ALL;

    d.cc = avcodec_alloc_context3(codec);
    d.pkt = av_packet_alloc();
    d.fr = av_frame_alloc();
    if (!d.cc || !d.pkt || !d.fr) {
        status = M2U_DECODE_INTERNAL;
        m2u_fail("%s: out of memory", path);
        goto out;
    }
    int ret = avcodec_parameters_to_context(d.cc, d.st->codecpar);
    if (ret >= 0) {
        d.cc->pkt_timebase = d.st->time_base;
        /* One thread per file: the builder parallelises across files. */
        d.cc->thread_count = 1;
        ret = avcodec_open2(d.cc, codec, NULL);
    }
    if (ret < 0) {
        m2u_av_detail(detail, sizeof detail, ret);
        status = M2U_DECODE_UNSUPPORTED;
        m2u_fail("%s: cannot open the %s decoder%s", path, codec->name, detail);
        goto out;
    }
    if (d.keep) {
        int nch = d.cc->ch_layout.nb_channels;
        if (d.cc->sample_rate <= 0 || d.cc->sample_rate > 1000000 || nch <= 0) {
            status = M2U_DECODE_UNSUPPORTED;
            m2u_fail("%s: the stream does not state its sample rate / channels (%d Hz, %d channels)", path,
                     d.cc->sample_rate, nch);
            goto out;
        }
        d.target_rate = target_rate = d.cc->sample_rate;
        d.out_ch = nch < o.keep_channels ? nch : o.keep_channels;
    } else if (o.native_rate) {
        if (d.cc->sample_rate <= 0 || d.cc->sample_rate > 1000000) {
            status = M2U_DECODE_UNSUPPORTED;
            m2u_fail("%s: the audio stream states no usable sample rate (%d)", path, d.cc->sample_rate);
            goto out;
        }
        target_rate = d.target_rate = d.cc->sample_rate;
    }
    d.max_out = o.max_s > 0 ? llround(o.max_s * target_rate) * d.out_ch : -1;
    double expected = container_duration(d.fmt, d.st);
    if (!strcmp(d.fmt->iformat->name, "wav")) {
        double claim = wav_claimed_s(path);
        if (claim > expected) expected = claim;
    }
    if (info) {
        m2u_av_copy_name(info->codec, sizeof info->codec, codec->name);
        info->src_rate = d.cc->sample_rate;
        info->src_channels = d.cc->ch_layout.nb_channels;
        info->src_duration_s = expected;
    }
    /* Preallocate from the container's claim, capped so a lying header cannot
     * make us allocate gigabytes up front. */
    if (expected > 0) {
        double want = expected - o.start_s;
        if (o.max_s > 0 && want > o.max_s) want = o.max_s;
        int64_t pre = want > 0 ? ((int64_t)(want * target_rate) + target_rate / 8 + 1024) * d.out_ch : 0;
        if (pre > ((int64_t)1 << 24)) pre = (int64_t)1 << 24;
        if (pre > 0 && out_reserve(&d, pre) < 0) {
            status = M2U_DECODE_INTERNAL;
            goto out;
        }
    }
    if (o.start_s > 0) {
        /* Seek half a second early so decoders with pre-roll (Vorbis, Opus,
         * MP3's bit reservoir) are settled; process_frame drops the excess
         * exactly by timestamp. */
        double s = o.start_s - 0.5 > 0 ? o.start_s - 0.5 : 0;
        int64_t ts = (int64_t)(s * AV_TIME_BASE) + (d.fmt->start_time != AV_NOPTS_VALUE ? d.fmt->start_time : 0);
        if (s > 0 && avformat_seek_file(d.fmt, -1, INT64_MIN, ts, ts, 0) >= 0) d.seeked = 1;
    }

    double pkt_end = -1; /* stream time where the packets read so far end */
    for (;;) {
        while (!d.done && !d.hard) {
            if (d.restart && rewind_to_start(&d) < 0) break;
            ret = av_read_frame(d.fmt, d.pkt);
            if (ret == AVERROR_EOF) break;
            if (ret < 0) {
                /* The CLI treats a demuxer error as the end of the input; so do
                 * we, but it counts as a decoding error and feeds the checks below. */
                note_error(&d, ret);
                break;
            }
            if (d.pkt->stream_index != si) {
                av_packet_unref(d.pkt);
                continue;
            }
            d.packets++;
            if (d.pkt->pts != AV_NOPTS_VALUE) {
                double e = stream_time(d.st, d.pkt->pts + (d.pkt->duration > 0 ? d.pkt->duration : 0));
                if (e > pkt_end) pkt_end = e;
            }
            ret = avcodec_send_packet(d.cc, d.pkt);
            av_packet_unref(d.pkt);
            if (ret < 0) {
                note_error(&d, ret);
                continue;
            }
            receive_all(&d);
        }
        if (d.hard || d.done) break;
        if (!d.restart) { /* drain the decoder's delayed frames */
            avcodec_send_packet(d.cc, NULL);
            receive_all(&d);
        }
        /* The first timed frame may only come out of the drain: rewind then too
         * (at most once: rewinding turns seeking off). */
        if (d.restart && !d.hard) {
            if (rewind_to_start(&d) < 0) break;
            continue;
        }
        break;
    }
    if (!d.hard) swr_drain(&d);
    if (d.hard) {
        status = d.hard;
        goto out;
    }
    if (d.max_out >= 0 && d.n > d.max_out) d.n = d.max_out;

    if (info) {
        info->decode_errors = d.errors;
        if (!info->src_rate) info->src_rate = d.swr_rate;
        if (!info->src_channels) info->src_channels = d.swr_layout.nb_channels;
    }
    double got_s = (double)(d.n / d.out_ch) / target_rate;
    /* Where the file's data ends: packets that arrived but did not decode
     * are damage (corrupt), not a missing tail (truncated). */
    double data_end = d.have_pos ? d.pos_s : o.start_s;
    if (pkt_end > data_end) data_end = pkt_end;
    int truncated = 0;
    if (expected > 0 && !d.done) {
        double missing = expected - data_end;
        if (missing > 0.1 && (missing > 1.0 || missing > 0.2 * expected)) truncated = 1;
    }
    int64_t tolerated = d.packets / 100 > 2 ? d.packets / 100 : 2;
    if (d.errors > tolerated) {
        status = M2U_DECODE_CORRUPT;
        m2u_fail("%s: %d of %lld packets failed to decode (first at %.2f s)%s", path, d.errors,
                 (long long)d.packets, d.first_err_s, d.first_err_msg);
        goto out;
    }
    if (truncated && (!o.keep_truncated || d.n == 0)) {
        status = M2U_DECODE_TRUNCATED;
        m2u_fail("%s: truncated at %.2f s of %.2f s%s", path, data_end, expected, d.errors ? d.first_err_msg : "");
        goto out;
    }
    if (d.n == 0 && d.errors) {
        status = M2U_DECODE_CORRUPT;
        m2u_fail("%s: no audio could be decoded (%d decoder error%s%s)", path, d.errors, d.errors == 1 ? "" : "s",
                 d.first_err_msg);
        goto out;
    }
    if (d.n == 0) {
        status = M2U_DECODE_EMPTY;
        m2u_fail("%s: no audio samples%s", path, o.start_s > 0 ? " after the start offset" : "");
        goto out;
    }
    if (o.min_s > 0 && got_s + 0.5 / target_rate < o.min_s) {
        status = M2U_DECODE_TOO_SHORT;
        m2u_fail("%s: too short: %.2f s decoded, at least %.2f s wanted", path, got_s, o.min_s);
        goto out;
    }
    int64_t clipped = 0;
    for (int64_t i = 0; i < d.n; i++) {
        float v = d.out[i];
        if (o.no_clamp && !d.keep && v == v) continue; /* librosa.load does not clamp */
        if (d.keep) { /* as decoded: only a NaN is replaced */
            if (v != v) d.out[i] = 0.0f, clipped++;
        } else if (v > 1.0f) {
            d.out[i] = 1.0f;
            clipped++;
        } else if (v < -1.0f) {
            d.out[i] = -1.0f;
            clipped++;
        } else if (v != v) { /* NaN from a broken decoder must not reach training */
            d.out[i] = 0.0f;
            clipped++;
        }
    }
    if (info) {
        info->clipped = clipped;
        info->decoded_s = got_s;
        info->truncated = truncated;
        info->out_channels = d.out_ch;
    }
    /* Give back the slack of the geometric growth. */
    float *shrunk = realloc(d.out, (size_t)d.n * sizeof *shrunk);
    *pcm = shrunk ? shrunk : d.out;
    *n = d.n;
    d.out = NULL;
out:
    dec_free(&d);
    return set_status(info, status);
}

/* ---- clips ------------------------------------------------------------------------- */

int m2u_audio_clips(const float *pcm, int64_t n, int rate, double clip_s, double hop_s, double silence_db,
                    double min_s, m2u_clip **clips, size_t *n_clips) {
    if (!clips || !n_clips) return m2u_fail("m2u_audio_clips: NULL output");
    *clips = NULL;
    *n_clips = 0;
    if ((!pcm && n > 0) || n < 0 || rate <= 0 || !(clip_s > 0) || !(hop_s > 0) || !(min_s >= 0))
        return m2u_fail("m2u_audio_clips: bad arguments (n %lld, rate %d, clip %g s, hop %g s, min %g s)",
                        (long long)n, rate, clip_s, hop_s, min_s);
    int64_t clip_n = llround(clip_s * rate), hop_n = llround(hop_s * rate), min_n = llround(min_s * rate);
    if (clip_n < 1 || hop_n < 1)
        return m2u_fail("m2u_audio_clips: clip %g s / hop %g s is under one sample at %d Hz", clip_s, hop_s, rate);
    if (min_n < 1) min_n = 1;
    size_t cap = 0, cnt = 0;
    m2u_clip *out = NULL;
    for (int64_t s = 0; s < n; s += hop_n) {
        int64_t e = s + clip_n;
        int partial = e > n;
        if (partial) {
            e = n;
            if (e - s < min_n) break;
        }
        double acc = 0;
        for (int64_t i = s; i < e; i++) acc += (double)pcm[i] * pcm[i];
        double rms = sqrt(acc / (double)(e - s));
        double db = rms > 1e-10 ? 20.0 * log10(rms) : -200.0;
        if (db >= silence_db) {
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 16;
                m2u_clip *p = realloc(out, nc * sizeof *p);
                if (!p) {
                    free(out);
                    return m2u_fail("m2u_audio_clips: out of memory");
                }
                out = p;
                cap = nc;
            }
            out[cnt].start = s;
            out[cnt].end = e;
            out[cnt].rms_db = (float)db;
            cnt++;
        }
        if (e == n) break; /* later starts would only be subsets of this clip */
    }
    *clips = out;
    *n_clips = cnt;
    return 0;
}
