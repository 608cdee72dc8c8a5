/* OpenAI-compatible chat captioner (llama.cpp server, vLLM, ...).
 *
 * Each request POSTs {base_url}/v1/chat/completions:
 *   {"model": M, "messages": [{"role":"system","content": <system template>},
 *                             {"role":"user","content": <user template>}],
 *    "temperature": T, "seed": S, "max_tokens": N, "stream": false}
 * with both templates expanded for the request (captioner.h: {caption},
 * {analysis}, {analysis.tempo}, ...).  The user template is req->prompt when
 * the request has one, else the configured user_template.  The reply text is
 * choices[0].message.content (surrounding blanks trimmed); extras carry
 * finish_reason, usage and model when the server sends them.
 *
 * Failures and retries (each attempt has its own connect and total timeout):
 *   HTTP 5xx, 429, timeout, connection refused/reset   retried with exponential
 *       backoff (backoff_s, doubled each time, at most backoff_max_s; a 429's
 *       Retry-After is honoured up to backoff_max_s)
 *   other HTTP status (4xx, a redirect)                refused, not retried
 *   body not JSON, no choices[0].message.content,
 *   empty content, body over max_body bytes            malformed, not retried
 *       (a server that answers nonsense once answers it again; retrying only
 *       doubles the load)
 *
 * Only the configured URL is ever contacted: redirects are not followed, only
 * http and https are allowed, and proxy variables in the environment are
 * ignored unless use_env_proxy is set.  The API key, when any, is read from the
 * environment variable named by api_key_env at open time and kept in memory
 * only (never in a config file, never logged).
 *
 * open() calls curl_global_init and close() curl_global_cleanup; libcurl keeps
 * a count, so several captioners may coexist.  libcurl >= 7.84 makes that pair
 * thread-safe; with an older one open/close them from one thread. */
#ifndef M2U_CAPTIONER_HTTP_H
#define M2U_CAPTIONER_HTTP_H

#include "captioner.h"

#include <stddef.h>

/* LP-MusicCaps' tag-to-caption instructions (Doh et al., ISMIR 2023,
 * generate.py), verbatim; its user message was "<instruction> \n <tags>". */
#define M2U_LPMC_WRITING "write a song description sentence including the following attributes."
#define M2U_LPMC_SUMMARY                                                                               \
    "write a single sentence that summarize a song with the following attributes. Don't write artist " \
    "name or album name."
/* A user template in that style for m2u's analysis (tags = the analysis' tag list). */
#define M2U_LPMC_WRITING_TEMPLATE M2U_LPMC_WRITING " \n {analysis.tags}"

/* M2UGen-style instruction writing: caption + analysis -> a user instruction. */
#define M2U_INSTRUCTION_SYSTEM                                                                  \
    "You write instructions that a user would give to a music assistant. Answer with the " \
    "instruction only, one or two sentences, no quotes."
#define M2U_INSTRUCTION_TEMPLATE                                                               \
    "Music description: {caption}\nMeasured attributes: {analysis}\nWrite an instruction asking " \
    "to generate this music."

typedef struct {
    const char *base_url;        /* "http://127.0.0.1:8080" ("/v1/chat/completions" is appended;
                                    a trailing '/' is dropped) */
    const char *model;           /* sent as "model"; NULL = "default" (llama.cpp ignores it) */
    const char *system_template; /* NULL = no system message */
    const char *user_template;   /* used when a request has no prompt; NULL = such requests fail */
    double temperature;          /* < 0: not sent */
    long long seed;              /* < 0: not sent */
    int max_tokens;              /* <= 0: not sent */
    const char *api_key_env;     /* name of the environment variable with the key; NULL = none */
    double connect_timeout_s;    /* <= 0: 10 */
    double timeout_s;            /* whole attempt; <= 0: 120 */
    int max_retries;             /* extra attempts on 5xx/429/timeout/connection; < 0: 0 */
    double backoff_s;            /* first wait before a retry; <= 0: 1 */
    double backoff_max_s;        /* longest wait; <= 0: 30 */
    size_t max_body;             /* largest response accepted; 0: 8 MiB */
    int use_env_proxy;           /* 1: honour http_proxy/https_proxy/no_proxy */
} m2u_http_captioner_config;

/* Defaults: temperature 0.7, seed 0, max_tokens 256, timeouts 10 s / 120 s,
 * 3 retries, backoff 1 s .. 30 s, no templates (set at least user_template or
 * give every request a prompt). */
void m2u_http_captioner_config_default(m2u_http_captioner_config *cfg);

/* Checks the URL and the API key variable; contacts nothing yet. */
int m2u_http_captioner_open(const m2u_http_captioner_config *cfg, m2u_captioner **out);

#endif
