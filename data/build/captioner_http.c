/* OpenAI-compatible chat captioner (captioner_http.h) over libcurl's easy API,
 * and the prompt-template expander both back ends use (captioner.h). */
#include "captioner_http.h"

#include "m2u_error.h"
#include "strbuf.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- growable string -------------------------------------------------------------- */


static void sb_num(m2u_strbuf *b, double v) {
    char t[64];
    snprintf(t, sizeof t, "%.10g", v);
    m2u_sb_puts(b, t);
}

/* ---- templates ---------------------------------------------------------------------- */

/* One analysis value as prompt text; 0, or -1 when it has no text form (null). */
static int add_json_value(m2u_strbuf *b, const cJSON *v) {
    if (cJSON_IsString(v)) {
        m2u_sb_puts(b, v->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        sb_num(b, v->valuedouble);
        return 0;
    }
    if (cJSON_IsBool(v)) {
        m2u_sb_puts(b, cJSON_IsTrue(v) ? "true" : "false");
        return 0;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return -1;
    int flat = cJSON_IsArray(v);
    for (const cJSON *e = v->child; flat && e; e = e->next)
        if (!cJSON_IsString(e) && !cJSON_IsNumber(e)) flat = 0;
    if (flat) { /* a tag list reads better as "a, b, c" (LP-MusicCaps joins them so) */
        for (const cJSON *e = v->child; e; e = e->next) {
            if (e != v->child) m2u_sb_puts(b, ", ");
            add_json_value(b, e);
        }
        return 0;
    }
    char *s = cJSON_PrintUnformatted(v); /* nested structure: compact JSON */
    if (!s) {
        b->oom = 1;
        return 0;
    }
    m2u_sb_puts(b, s);
    free(s);
    return 0;
}

int m2u_caption_template_expand(const char *tmpl, const m2u_caption_request *req, char **out) {
    *out = NULL;
    m2u_strbuf b = {0};
    cJSON *analysis = NULL;
    int analysis_parsed = 0;
    m2u_sb_put(&b, "", 0); /* an empty template still gives "" */
    for (const char *s = tmpl; *s;) {
        if (s[0] == '{' && s[1] == '{') {
            m2u_sb_put(&b, "{", 1);
            s += 2;
            continue;
        }
        if (s[0] == '}' && s[1] == '}') {
            m2u_sb_put(&b, "}", 1);
            s += 2;
            continue;
        }
        if (s[0] != '{') {
            size_t n = strcspn(s, "{}");
            if (n == 0) n = 1; /* a lone '}' is literal */
            m2u_sb_put(&b, s, n);
            s += n;
            continue;
        }
        const char *end = strchr(s + 1, '}');
        size_t n = end ? (size_t)(end - s - 1) : 0;
        char name[128];
        if (!end || n == 0 || n >= sizeof name) {
            m2u_fail("template: unterminated or empty placeholder at '%.20s' (write {{ for a literal brace)", s);
            goto fail;
        }
        memcpy(name, s + 1, n);
        name[n] = '\0';
        if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
            m2u_fail("template: '{%s}' is not a placeholder (write {{ and }} for literal braces)", name);
            goto fail;
        }
        s = end + 1;
        if (!strcmp(name, "id")) {
            if (!req->id) goto absent;
            m2u_sb_puts(&b, req->id);
        } else if (!strcmp(name, "kind")) {
            m2u_sb_puts(&b, m2u_caption_media_name(req->kind));
        } else if (!strcmp(name, "path")) {
            if (!req->path) goto absent;
            m2u_sb_puts(&b, req->path);
        } else if (!strcmp(name, "start")) {
            sb_num(&b, req->start_s);
        } else if (!strcmp(name, "end")) {
            if (!(req->end_s > req->start_s)) goto absent;
            sb_num(&b, req->end_s);
        } else if (!strcmp(name, "duration")) {
            if (!(req->end_s > req->start_s)) goto absent;
            sb_num(&b, req->end_s - req->start_s);
        } else if (!strcmp(name, "caption")) {
            if (!req->caption) goto absent;
            m2u_sb_puts(&b, req->caption);
        } else if (!strcmp(name, "analysis") || !strncmp(name, "analysis.", 9)) {
            if (!req->analysis_json) goto absent;
            if (!analysis_parsed) {
                analysis_parsed = 1;
                analysis = cJSON_Parse(req->analysis_json);
                if (!cJSON_IsObject(analysis)) {
                    m2u_fail("template: the request's analysis is not a JSON object");
                    goto fail;
                }
            }
            const cJSON *v = analysis;
            /* walk a.b.c through nested objects */
            for (char *seg = name + 8; seg && v; ) {
                if (*seg != '.') break;
                seg++;
                char *dot = strchr(seg, '.');
                if (dot) *dot = '\0';
                v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, seg) : NULL;
                if (dot) *dot = '.';
                seg = dot;
            }
            if (!v || add_json_value(&b, v) != 0) goto absent;
        } else {
            m2u_fail("template: unknown placeholder {%s} (known: id kind path start end duration caption "
                     "analysis analysis.<field>)", name);
            goto fail;
        }
        continue;
    absent:
        m2u_fail("template: {%s} has no value for sample %s", name, req->id ? req->id : "(no id)");
        goto fail;
    }
    cJSON_Delete(analysis);
    if (b.oom) {
        free(b.s);
        return m2u_fail("template: out of memory");
    }
    *out = b.s;
    return 0;
fail:
    cJSON_Delete(analysis);
    free(b.s);
    return -1;
}

/* ---- the captioner ---------------------------------------------------------------- */

typedef struct {
    m2u_captioner base; /* first: the interface pointer is this struct's address */
    CURL *curl;
    struct curl_slist *headers; /* one of them may carry the API key: wiped at close */
    char *url, *model, *system_t, *user_t;
    double temperature;
    long long seed;
    int max_tokens;
    double connect_timeout_s, timeout_s;
    int max_retries;
    double backoff_s, backoff_max_s;
    size_t max_body;
    char errbuf[CURL_ERROR_SIZE];
    m2u_strbuf body; /* response of the current attempt */
    int body_too_big;
} http_captioner;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    http_captioner *h = ud;
    size_t n = size * nmemb;
    if (h->body.n + n > h->max_body) {
        h->body_too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    m2u_sb_put(&h->body, data, n);
    return h->body.oom ? 0 : n;
}



static void snippet(const char *s, size_t n, char *out, size_t outsz) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < outsz && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (n > 120 && k + 4 < outsz) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* The server's own words for an error status, when it gave any. */
static void error_detail(const char *body, size_t n, char *out, size_t outsz) {
    out[0] = '\0';
    if (!n) return;
    cJSON *o = cJSON_ParseWithLength(body, n);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!e) e = cJSON_GetObjectItemCaseSensitive(o, "detail");
    if (cJSON_IsString(e))
        snippet(e->valuestring, strlen(e->valuestring), out, outsz);
    else
        snippet(body, n, out, outsz);
    cJSON_Delete(o);
}

static char *build_body(http_captioner *h, const m2u_caption_request *req, char *why, size_t whylen) {
    char *sys = NULL, *user = NULL, *json = NULL;
    const char *ut = req->prompt ? req->prompt : h->user_t;
    if (!ut) {
        snprintf(why, whylen, "no prompt: the request has none and no user_template is configured");
        return NULL;
    }
    if (req->analysis_json) { /* checked here too: a template may not mention it */
        cJSON *a = cJSON_Parse(req->analysis_json);
        int ok = cJSON_IsObject(a);
        cJSON_Delete(a);
        if (!ok) {
            snprintf(why, whylen, "analysis is not a JSON object");
            return NULL;
        }
    }
    if ((h->system_t && m2u_caption_template_expand(h->system_t, req, &sys) != 0) ||
        m2u_caption_template_expand(ut, req, &user) != 0) {
        m2u_captioner_copy_str(why, whylen, m2u_last_error());
        free(sys);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON_AddStringToObject(o, "model", h->model);
    if (sys) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", sys);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user);
    cJSON_AddItemToArray(msgs, m);
    if (h->temperature >= 0) cJSON_AddNumberToObject(o, "temperature", h->temperature);
    if (h->seed >= 0) cJSON_AddNumberToObject(o, "seed", (double)h->seed);
    if (h->max_tokens > 0) cJSON_AddNumberToObject(o, "max_tokens", h->max_tokens);
    cJSON_AddFalseToObject(o, "stream");
    json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(sys);
    free(user);
    if (!json) snprintf(why, whylen, "out of memory");
    return json;
}

/* Success body -> reply text + extras. */
static m2u_caption_status parse_completion(http_captioner *h, m2u_caption_reply *reply, char *why, size_t whylen) {
    char head[160];
    snippet(h->body.s ? h->body.s : "", h->body.n, head, sizeof head);
    cJSON *o = h->body.n ? cJSON_ParseWithLength(h->body.s, h->body.n) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(why, whylen, "malformed response: not a JSON object: '%s'", head);
        return M2U_CAPTION_ERR_MALFORMED;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = cJSON_IsObject(c0) ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    const cJSON *content = cJSON_IsObject(msg) ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    if (!cJSON_IsString(content)) {
        cJSON_Delete(o);
        snprintf(why, whylen, "malformed response: no choices[0].message.content string: '%s'", head);
        return M2U_CAPTION_ERR_MALFORMED;
    }
    const char *t = content->valuestring;
    while (*t && isspace((unsigned char)*t)) t++;
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1])) n--;
    if (n == 0) {
        cJSON_Delete(o);
        snprintf(why, whylen, "malformed response: choices[0].message.content is empty");
        return M2U_CAPTION_ERR_MALFORMED;
    }
    reply->text = malloc(n + 1);
    cJSON *extras = cJSON_CreateObject();
    if (!reply->text || !extras) {
        free(reply->text);
        reply->text = NULL;
        cJSON_Delete(extras);
        cJSON_Delete(o);
        snprintf(why, whylen, "out of memory");
        return M2U_CAPTION_ERR_TRANSPORT;
    }
    memcpy(reply->text, t, n);
    reply->text[n] = '\0';
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fr)) cJSON_AddStringToObject(extras, "finish_reason", fr->valuestring);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(o, "usage");
    if (cJSON_IsObject(usage)) cJSON_AddItemToObject(extras, "usage", cJSON_Duplicate(usage, 1));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    if (cJSON_IsString(model)) cJSON_AddStringToObject(extras, "model", model->valuestring);
    reply->extras = extras;
    cJSON_Delete(o);
    return M2U_CAPTION_OK;
}

/* One POST.  *retry_after gets the server's Retry-After (s) or -1. */
static m2u_caption_status post_once(http_captioner *h, const char *json, m2u_caption_reply *reply, int *retryable,
                                    double *retry_after, char *why, size_t whylen) {
    *retryable = 0;
    *retry_after = -1;
    h->body.n = 0;
    h->body.oom = 0;
    h->body_too_big = 0;
    h->errbuf[0] = '\0';
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    CURLcode rc = curl_easy_perform(h->curl);
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR && h->body_too_big) {
        snprintf(why, whylen, "malformed response: body larger than %zu bytes", h->max_body);
        return M2U_CAPTION_ERR_MALFORMED;
    }
    if (rc == CURLE_WRITE_ERROR && h->body.oom) {
        snprintf(why, whylen, "out of memory reading the response");
        return M2U_CAPTION_ERR_TRANSPORT;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        *retryable = 1;
        snprintf(why, whylen, "no response within the timeout (connect %.3g s, total %.3g s): %s",
                 h->connect_timeout_s, h->timeout_s, detail);
        return M2U_CAPTION_ERR_TIMEOUT;
    }
    if (rc != CURLE_OK) {
        /* transient network trouble is worth another try; the rest (bad URL, TLS
         * certificate, unsupported protocol) will not get better */
        *retryable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                     rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                     rc == CURLE_PARTIAL_FILE;
        snprintf(why, whylen, "request to %s failed: %s", h->url, detail);
        return M2U_CAPTION_ERR_TRANSPORT;
    }
    long code = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) return parse_completion(h, reply, why, whylen);
    char msg[200];
    error_detail(h->body.s, h->body.n, msg, sizeof msg);
    snprintf(why, whylen, "HTTP %ld from %s%s%s", code, h->url, msg[0] ? ": " : "", msg);
    if (code == 429 || code >= 500) {
        *retryable = 1;
        curl_off_t ra = -1;
        if (curl_easy_getinfo(h->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) *retry_after = (double)ra;
        return M2U_CAPTION_ERR_HTTP;
    }
    return M2U_CAPTION_ERR_REFUSED; /* 4xx, or a redirect we do not follow */
}


static int http_caption(m2u_captioner *self, const m2u_caption_request *req, m2u_caption_reply *reply) {
    http_captioner *h = (http_captioner *)self;
    m2u_caption_reply_init(reply);
    self->stats.requests++;
    char *json = NULL;
    if (!req || !req->id) {
        reply->status = M2U_CAPTION_ERR_INPUT;
        snprintf(reply->error, sizeof reply->error, "request has no id");
    } else if (!(json = build_body(h, req, reply->error, sizeof reply->error))) {
        reply->status = M2U_CAPTION_ERR_INPUT;
    } else {
        double wait = h->backoff_s;
        for (int a = 0; a <= h->max_retries; a++) {
            int retryable;
            double retry_after;
            char why[sizeof reply->error];
            m2u_caption_status st = post_once(h, json, reply, &retryable, &retry_after, why, sizeof why);
            reply->attempts++;
            self->stats.attempts++;
            if (st == M2U_CAPTION_OK) {
                reply->status = M2U_CAPTION_OK;
                self->stats.ok++;
                free(json);
                return 0;
            }
            reply->status = st;
            m2u_captioner_copy_str(reply->error, sizeof reply->error, why);
            m2u_captioner_count_failure(&self->stats, st);
            if (!retryable || a == h->max_retries) break;
            double w = retry_after > 0 ? retry_after : wait;
            m2u_captioner_sleep(w < h->backoff_max_s ? w : h->backoff_max_s);
            wait = wait * 2 < h->backoff_max_s ? wait * 2 : h->backoff_max_s;
        }
    }
    free(json);
    self->stats.failed++;
    return m2u_fail("caption %s: %s: %s", req && req->id ? req->id : "(none)", m2u_caption_status_name(reply->status),
                    reply->error);
}

static void http_close(m2u_captioner *self) {
    http_captioner *h = (http_captioner *)self;
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    for (struct curl_slist *l = h->headers; l; l = l->next) { /* the key must not linger in freed memory */
        volatile char *p = l->data;
        while (*p) *p++ = 0;
    }
    curl_slist_free_all(h->headers);
    free(h->url);
    free(h->model);
    free(h->system_t);
    free(h->user_t);
    free(h->body.s);
    free(h);
    curl_global_cleanup();
}

void m2u_http_captioner_config_default(m2u_http_captioner_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->temperature = 0.7;
    cfg->seed = 0;
    cfg->max_tokens = 256;
    cfg->connect_timeout_s = 10;
    cfg->timeout_s = 120;
    cfg->max_retries = 3;
    cfg->backoff_s = 1;
    cfg->backoff_max_s = 30;
    cfg->max_body = 8u << 20;
}

static char *dup_or_null(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static int add_header(http_captioner *h, const char *line) {
    struct curl_slist *l = curl_slist_append(h->headers, line);
    if (!l) return -1;
    h->headers = l;
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !strncmp(s + n - k, suffix, k);
}

int m2u_http_captioner_open(const m2u_http_captioner_config *cfg, m2u_captioner **out) {
    *out = NULL;
    const char *base = cfg->base_url;
    if (!base || (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0))
        return m2u_fail("http captioner: base_url '%s' must start with http:// or https://", base ? base : "(none)");
    if (strpbrk(base, " \t\r\n"))
        return m2u_fail("http captioner: base_url '%s' contains blanks", base);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return m2u_fail("http captioner: curl_global_init failed");
    http_captioner *h = calloc(1, sizeof *h);
    if (!h) {
        curl_global_cleanup();
        return m2u_fail("http captioner: out of memory");
    }
    h->base.name = "http";
    h->base.caption = http_caption;
    h->base.close = http_close;
    h->temperature = cfg->temperature;
    h->seed = cfg->seed;
    h->max_tokens = cfg->max_tokens;
    h->connect_timeout_s = cfg->connect_timeout_s > 0 ? cfg->connect_timeout_s : 10;
    h->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 120;
    h->max_retries = cfg->max_retries > 0 ? cfg->max_retries : 0;
    h->backoff_s = cfg->backoff_s > 0 ? cfg->backoff_s : 1;
    h->backoff_max_s = cfg->backoff_max_s > 0 ? cfg->backoff_max_s : 30;
    h->max_body = cfg->max_body ? cfg->max_body : (8u << 20);

    /* the endpoint: base, base/v1 or the full path are all accepted */
    size_t n = strlen(base);
    while (n > 8 && base[n - 1] == '/') n--;
    const char *suffix = ends_with(base, n, "/v1/chat/completions") ? ""
                         : ends_with(base, n, "/v1")                 ? "/chat/completions"
                                                                     : "/v1/chat/completions";
    int oom = 0;
    h->url = malloc(n + strlen(suffix) + 1);
    if (h->url) {
        memcpy(h->url, base, n);
        strcpy(h->url + n, suffix);
    } else {
        oom = 1;
    }
    h->model = dup_or_null(cfg->model ? cfg->model : "default", &oom);
    h->system_t = dup_or_null(cfg->system_template, &oom);
    h->user_t = dup_or_null(cfg->user_template, &oom);
    /* no "Expect: 100-continue" round trip before large bodies */
    if (oom || add_header(h, "Content-Type: application/json") != 0 || add_header(h, "Accept: application/json") != 0 ||
        add_header(h, "Expect:") != 0) {
        http_close(&h->base);
        return m2u_fail("http captioner: out of memory");
    }
    if (cfg->api_key_env) {
        const char *key = getenv(cfg->api_key_env);
        if (!key || !*key) {
            http_close(&h->base);
            return m2u_fail("http captioner: environment variable %s (api_key_env) is not set", cfg->api_key_env);
        }
        if (strpbrk(key, "\r\n")) {
            http_close(&h->base);
            return m2u_fail("http captioner: environment variable %s holds a line break", cfg->api_key_env);
        }
        size_t kn = strlen(key) + sizeof "Authorization: Bearer ";
        char *hdr = malloc(kn);
        int bad = !hdr;
        if (hdr) {
            snprintf(hdr, kn, "Authorization: Bearer %s", key);
            bad = add_header(h, hdr) != 0;
            for (volatile char *p = hdr; *p; p++) *p = 0;
            free(hdr);
        }
        if (bad) {
            http_close(&h->base);
            return m2u_fail("http captioner: out of memory");
        }
    }
    h->curl = curl_easy_init();
    if (!h->curl) {
        http_close(&h->base);
        return m2u_fail("http captioner: curl_easy_init failed");
    }
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                     \
    do {                                                     \
        if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); \
    } while (0)
    SETOPT(CURLOPT_URL, h->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM games: we may run in worker threads */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L); /* never leave the configured URL */
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (!cfg->use_env_proxy) SETOPT(CURLOPT_PROXY, ""); /* "" = no proxy, whatever the environment says */
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)(h->connect_timeout_s * 1000.0));
    SETOPT(CURLOPT_TIMEOUT_MS, (long)(h->timeout_s * 1000.0));
    SETOPT(CURLOPT_HTTPHEADER, h->headers);
    SETOPT(CURLOPT_USERAGENT, "m2u/" M2U_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)h);
    SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
#undef SETOPT
    if (rc != CURLE_OK) {
        const char *e = curl_easy_strerror(rc);
        http_close(&h->base);
        return m2u_fail("http captioner: configuring libcurl: %s", e);
    }
    *out = &h->base;
    return 0;
}
