/* libFuzzer target: what an OpenAI-compatible server answers the HTTP
 * captioner.  A thread in this process listens on 127.0.0.1, reads each
 * request (headers and Content-Length body) and answers with the fuzzer's
 * bytes verbatim (status line, headers, body), then closes.  libcurl parses
 * the HTTP; m2u's part is the status mapping, the retry with Retry-After, the
 * body limit and parse_completion / error_detail on whatever body comes.
 * One request with one retry, short timeouts.  Seeds:
 * tests/fuzz/seeds/http_captioner (a 200 with a completion, a 429 with
 * Retry-After, a 500, a 400 with an error object, a chunked 200). */
#define FUZZ_OWN_INIT
#include "captioner.h"
#include "captioner_http.h"
#include "fuzz_util.h"
#include "m2u_error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

static int g_listen = -1;
static char g_url[64];
static const uint8_t *g_resp;
static size_t g_resp_n;
static atomic_int g_stop;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t len = sizeof a;
    if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_listen, 8) != 0 ||
        getsockname(g_listen, (struct sockaddr *)&a, &len) != 0) {
        perror("fuzz_http_captioner: listen");
        abort();
    }
    snprintf(g_url, sizeof g_url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return 0;
}

/* read until the end of the headers and Content-Length bytes of body (or 0.5 s of silence) */
static void read_request(int fd) {
    char buf[16384];
    size_t n = 0, need = (size_t)-1;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0) return;
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0) return;
        n += (size_t)k;
        buf[n] = '\0';
        if (need == (size_t)-1) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end) {
                size_t body = 0;
                char *h = buf;
                while (h && h < end) {
                    if (!strncasecmp(h, "Content-Length:", 15)) body = strtoul(h + 15, NULL, 10);
                    h = strstr(h, "\r\n");
                    if (h) h += 2;
                }
                need = (size_t)(end + 4 - buf) + body;
            }
        }
        if (n >= need || n >= sizeof buf - 1) return;
    }
}

static void *serve(void *arg) {
    (void)arg;
    while (!atomic_load(&g_stop)) {
        struct pollfd p = {.fd = g_listen, .events = POLLIN};
        if (poll(&p, 1, 2) <= 0) continue;
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) continue;
        read_request(fd);
        size_t off = 0;
        while (off < g_resp_n) {
            ssize_t k = send(fd, g_resp + off, g_resp_n - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += (size_t)k;
        }
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g_resp = data;
    g_resp_n = size;
    atomic_store(&g_stop, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, serve, NULL) != 0) abort();
    fuzz_quiet_begin();
    m2u_http_captioner_config cfg;
    m2u_http_captioner_config_default(&cfg);
    cfg.base_url = g_url;
    cfg.user_template = "Describe: {caption}";
    cfg.connect_timeout_s = 1;
    cfg.timeout_s = 1;
    cfg.max_retries = 1;
    cfg.backoff_s = cfg.backoff_max_s = 0.001; /* a Retry-After is honoured up to this */
    cfg.max_body = 4096;
    m2u_captioner *c = NULL;
    if (m2u_http_captioner_open(&cfg, &c) != 0) abort();
    m2u_caption_request req = {.id = "s1", .kind = M2U_MEDIA_AUDIO, .path = "/tmp/clip.wav",
                               .caption = "A calm piano piece."};
    m2u_caption_reply r;
    if (m2u_captioner_caption(c, &req, &r) == 0) {
        if (r.status != M2U_CAPTION_OK || !r.text || !r.text[0]) abort();
    } else if (r.status == M2U_CAPTION_OK || !r.error[0] || !m2u_last_error()[0] || r.attempts < 1 ||
               r.attempts > 2) {
        abort();
    }
    m2u_caption_reply_free(&r);
    m2u_captioner_close(c);
    m2u_clear_error();
    fuzz_quiet_end();
    atomic_store(&g_stop, 1);
    pthread_join(th, NULL);
    return 0;
}
