/* Pluggable captioners: one small interface, several back ends.
 *
 * A captioner turns one sample (a media file or clip, its analysis, an
 * instruction template) into text.  Back ends:
 *   captioner_process.h  an external program speaking JSON lines on stdin/stdout
 *                        (MU-LLaMA, LP-MusicCaps, BLIP, a video captioner, ...)
 *   captioner_http.h     an OpenAI-compatible chat endpoint (llama.cpp server,
 *                        vLLM), as M2UGen used an LLM to turn captions into
 *                        instructions
 *
 * Use:
 *   m2u_captioner *c;  m2u_process_captioner_open(&cfg, &c)  (or _http_)
 *   m2u_caption_reply r;
 *   if (m2u_captioner_caption(c, &req, &r) != 0) record(req.id, r.status, r.error);
 *   m2u_caption_reply_free(&r);            after every call, success or not
 *   m2u_captioner_close(c);
 *
 * A failed request is a per-sample failure, not the end of the build: caption()
 * returns -1 after m2u_fail(), and the reply keeps the reason (status + error
 * text) so the caller can write it into the build's error report.  Only when
 * reply.fatal is set has the captioner stopped serving (could not be started,
 * or kept dying); every later call then fails at once with the same reason.
 *
 * Not thread-safe: one captioner per thread (or per rank). */
#ifndef M2U_CAPTIONER_H
#define M2U_CAPTIONER_H

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M2U_MEDIA_AUDIO, M2U_MEDIA_IMAGE, M2U_MEDIA_VIDEO, M2U_MEDIA_TEXT } m2u_caption_media;

static inline const char *m2u_caption_media_name(m2u_caption_media k) {
    switch (k) {
    case M2U_MEDIA_AUDIO: return "audio";
    case M2U_MEDIA_IMAGE: return "image";
    case M2U_MEDIA_VIDEO: return "video";
    case M2U_MEDIA_TEXT: return "text";
    }
    return "unknown";
}

/* Everything a back end may need; every pointer is borrowed for the call. */
typedef struct {
    const char *id;            /* sample id (required); the process protocol echoes it */
    m2u_caption_media kind;
    const char *path;          /* media file or a temp file holding the clip; NULL for text */
    double start_s, end_s;     /* clip within path, seconds; end_s <= start_s = whole file */
    const char *analysis_json; /* the sample's analysis as a JSON object (text); NULL = none */
    const char *caption;       /* an existing caption to rewrite (e.g. the deterministic
                                  captioner's); NULL = none */
    const char *prompt;        /* instruction / prompt template for this request; NULL =
                                  the back end's configured one (see the template rules) */
} m2u_caption_request;

typedef enum {
    M2U_CAPTION_OK = 0,
    M2U_CAPTION_ERR_INPUT,       /* the request itself is unusable: analysis not a JSON
                                    object, template names an unknown or missing field */
    M2U_CAPTION_ERR_TIMEOUT,     /* no reply within the per-attempt timeout */
    M2U_CAPTION_ERR_MALFORMED,   /* reply not JSON, wrong id, no text, line or body too long */
    M2U_CAPTION_ERR_REFUSED,     /* the model answered with an error (process "error" field,
                                    HTTP 4xx other than 429) */
    M2U_CAPTION_ERR_CRASHED,     /* the captioner process exited or was killed mid-request */
    M2U_CAPTION_ERR_HTTP,        /* HTTP 5xx / 429 still failing after the retries */
    M2U_CAPTION_ERR_TRANSPORT,   /* connection refused/reset, DNS, TLS, pipe errors */
    M2U_CAPTION_ERR_UNAVAILABLE, /* the captioner cannot serve any more (fatal set) */
} m2u_caption_status;

static inline const char *m2u_caption_status_name(m2u_caption_status s) {
    switch (s) {
    case M2U_CAPTION_OK: return "ok";
    case M2U_CAPTION_ERR_INPUT: return "bad-input";
    case M2U_CAPTION_ERR_TIMEOUT: return "timeout";
    case M2U_CAPTION_ERR_MALFORMED: return "malformed-reply";
    case M2U_CAPTION_ERR_REFUSED: return "refused";
    case M2U_CAPTION_ERR_CRASHED: return "crashed";
    case M2U_CAPTION_ERR_HTTP: return "http-error";
    case M2U_CAPTION_ERR_TRANSPORT: return "transport";
    case M2U_CAPTION_ERR_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}

typedef struct {
    char *text;                /* malloc'ed caption (success only), else NULL */
    cJSON *extras;             /* owned JSON object of back-end extras (other reply
                                  fields, finish_reason, usage, ...), or NULL */
    m2u_caption_status status;
    char error[512];           /* reason of the last failed attempt ("" on success) */
    int attempts;              /* attempts made for this request, retries included */
    int restarts;              /* process restarts this request caused or needed */
    int fatal;                 /* 1: the captioner has stopped serving (see above) */
} m2u_caption_reply;

/* Running totals, for logs and the dataset card. */
typedef struct {
    long requests, ok, failed; /* per request */
    long attempts;             /* per attempt, retries included */
    long timeouts, malformed, crashes, refused, http_errors, transport_errors;
    long restarts;             /* process back end: replacement processes started */
} m2u_captioner_stats;

typedef struct m2u_captioner m2u_captioner;
struct m2u_captioner {
    const char *name; /* "process" or "http", for logs */
    /* Fill *reply (initialised here; the caller frees it with m2u_caption_reply_free).
     * 0 = reply->text set; -1 = failure, reason in reply and m2u_last_error(). */
    int (*caption)(m2u_captioner *self, const m2u_caption_request *req, m2u_caption_reply *reply);
    /* Release everything, self included (kills and reaps a child process). */
    void (*close)(m2u_captioner *self);
    m2u_captioner_stats stats; /* updated by the back end on every request */
};

static inline int m2u_captioner_caption(m2u_captioner *c, const m2u_caption_request *req,
                                        m2u_caption_reply *reply) {
    return c->caption(c, req, reply);
}

static inline void m2u_captioner_close(m2u_captioner *c) {
    if (c) c->close(c);
}

static inline void m2u_caption_reply_init(m2u_caption_reply *r) { memset(r, 0, sizeof *r); }

static inline void m2u_caption_reply_free(m2u_caption_reply *r) {
    free(r->text);
    cJSON_Delete(r->extras);
    m2u_caption_reply_init(r);
}

/* ---- prompt templates --------------------------------------------------------
 * Text with {name} placeholders, expanded per request:
 *   {id} {kind} {path} {start} {end} {duration}   from the request (seconds, %g)
 *   {caption}                                      req->caption
 *   {analysis}                                     the analysis JSON, compact
 *   {analysis.a.b}                                 one field of the analysis: strings as
 *                                                  they are, numbers %g, arrays of strings
 *                                                  or numbers joined with ", " (tag lists,
 *                                                  as LP-MusicCaps prompts them), objects
 *                                                  as compact JSON
 *   {{ and }}                                      literal braces
 * A placeholder whose value is absent (no caption, no such analysis field) or an
 * unknown name fails the expansion: a prompt with a hole in it would still make
 * the model answer, and the damage would go unnoticed.
 * Defined in captioner_http.c (the process back end uses it too). */
int m2u_caption_template_expand(const char *tmpl, const m2u_caption_request *req, char **out);

/* ---- shared by the back ends (captioner.c) ---- */
/* Count a failed attempt of status st in the matching counter of s. */
void m2u_captioner_count_failure(m2u_captioner_stats *s, m2u_caption_status st);
/* Bounded copy: reasons are truncated, never overflowed. */
void m2u_captioner_copy_str(char *dst, size_t dstsz, const char *src);
/* Sleep s seconds (<= 0: not at all), resuming after signals. */
void m2u_captioner_sleep(double s);

#endif
