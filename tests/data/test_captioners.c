/* Pluggable captioners: the JSON-lines process back end against a fake captioner
 * that misbehaves on purpose (tests/data/fake_captioner.py), and the
 * OpenAI-compatible back end against a local fake server
 * (tests/data/fake_llm_server.py, loopback only).  Every wait is bounded; the
 * test checks that no child process is left behind. */
#include "captioner_http.h"
#include "captioner_process.h"
#include "m2u_error.h"
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SCRIPTS M2U_FIXTURES "/../data"

static const char *python(void) {
    /* Debian's interpreter when there is one: a pyenv python3 on PATH may lack nothing
     * we need, but /usr/bin/python3 is the one CI installs */
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t r;
    while (s && (r = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *ns = realloc(s, cap * 2);
            if (!ns) {
                free(s);
                s = NULL;
                break;
            }
            s = ns;
            cap *= 2;
        }
    }
    fclose(f);
    if (s) s[n] = '\0';
    return s;
}

static void rm_dir(const char *dir) {
    /* only files we created, one level deep */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* ---- command splitting ---------------------------------------------------------- */

static void test_split(void) {
    char **argv;
    int argc;
    CHECK(m2u_command_split("  a  'b c' \"d \\\"e\\\" $x\" f\\ g h'i'j ", &argv, &argc) == 0, "%s",
          m2u_last_error());
    if (argv) {
        CHECK(argc == 5, "argc %d", argc);
        CHECK(argc == 5 && !strcmp(argv[0], "a") && !strcmp(argv[1], "b c") && !strcmp(argv[2], "d \"e\" $x") &&
                  !strcmp(argv[3], "f g") && !strcmp(argv[4], "hij") && argv[5] == NULL,
              "words: [%s] [%s] [%s] [%s]", argv[0], argc > 1 ? argv[1] : "", argc > 2 ? argv[2] : "",
              argc > 3 ? argv[3] : "");
        m2u_command_free(argv);
    }
    CHECK(m2u_command_split("python3 'unterminated", &argv, &argc) != 0 && argv == NULL, "unterminated accepted");
    CHECK(strstr(m2u_last_error(), "unterminated") != NULL, "%s", m2u_last_error());
    CHECK(m2u_command_split("   ", &argv, &argc) != 0, "blank command accepted");
    CHECK(m2u_command_split("''", &argv, &argc) == 0 && argc == 1 && argv[0][0] == '\0', "empty word");
    m2u_command_free(argv);
}

/* ---- templates ---------------------------------------------------------------------- */

static void test_templates(void) {
    m2u_caption_request req = {.id = "s1", .kind = M2U_MEDIA_AUDIO, .path = "/x.wav", .start_s = 2, .end_s = 12,
                               .caption = "a calm piano piece",
                               .analysis_json = "{\"tempo\":120.5,\"key\":{\"tonic\":\"C\",\"mode\":\"major\"},"
                                                "\"tags\":[\"piano\",\"calm\"],\"beats\":[{\"t\":1}],\"n\":null}"};
    char *s = NULL;
    CHECK(m2u_caption_template_expand("{{{id}}} {kind} {path} {start}-{end} ({duration} s): {caption}; "
                                      "{analysis.tempo} bpm {analysis.key.tonic} {analysis.key.mode}; "
                                      "{analysis.tags}; {analysis.beats} }",
                                      &req, &s) == 0,
          "%s", m2u_last_error());
    const char *want = "{s1} audio /x.wav 2-12 (10 s): a calm piano piece; 120.5 bpm C major; piano, calm; "
                       "[{\"t\":1}] }";
    CHECK(s && !strcmp(s, want), "got '%s'", s ? s : "(null)");
    free(s);
    CHECK(m2u_caption_template_expand("{analysis}", &req, &s) == 0 && s && s[0] == '{' && strstr(s, "\"tempo\""),
          "analysis: %s", s ? s : m2u_last_error());
    free(s);
    CHECK(m2u_caption_template_expand("", &req, &s) == 0 && s && !s[0], "empty template");
    free(s);
    CHECK(m2u_caption_template_expand("{bogus}", &req, &s) != 0 && !s, "unknown placeholder accepted");
    CHECK(strstr(m2u_last_error(), "unknown placeholder {bogus}") != NULL, "%s", m2u_last_error());
    CHECK(m2u_caption_template_expand("{analysis.mood}", &req, &s) != 0, "missing field accepted");
    CHECK(strstr(m2u_last_error(), "{analysis.mood} has no value for sample s1") != NULL, "%s", m2u_last_error());
    CHECK(m2u_caption_template_expand("{analysis.n}", &req, &s) != 0, "null field accepted");
    CHECK(m2u_caption_template_expand("say {\"a\": 1}", &req, &s) != 0, "JSON braces accepted");
    CHECK(m2u_caption_template_expand("open {id", &req, &s) != 0, "unterminated accepted");
    req.caption = NULL;
    CHECK(m2u_caption_template_expand("{caption}", &req, &s) != 0, "absent caption accepted");
    req.analysis_json = "[1]";
    CHECK(m2u_caption_template_expand("{analysis.x}", &req, &s) != 0, "non-object analysis accepted");
}

/* ---- process captioner ------------------------------------------------------------ */

typedef struct {
    m2u_caption_status status;
    int attempts, restarts, rc;
    char error[512];
    char *text;
    cJSON *extras;
} result;

static result ask(m2u_captioner *c, const m2u_caption_request *req) {
    m2u_caption_reply r;
    result out;
    memset(&out, 0, sizeof out);
    memset(&r, 0x5a, sizeof r); /* caption() must initialise the reply itself */
    out.rc = m2u_captioner_caption(c, req, &r);
    out.status = r.status;
    out.attempts = r.attempts;
    out.restarts = r.restarts;
    memcpy(out.error, r.error, sizeof out.error);
    out.text = r.text;
    out.extras = r.extras;
    r.text = NULL;
    r.extras = NULL;
    m2u_caption_reply_free(&r);
    if ((out.rc == 0) != (out.status == M2U_CAPTION_OK)) {
        fprintf(stderr, "rc %d disagrees with status %s\n", out.rc, m2u_caption_status_name(out.status));
        out.rc = 99;
    }
    return out;
}

static void result_free(result *r) {
    free(r->text);
    cJSON_Delete(r->extras);
}

static m2u_caption_request simple(const char *id) {
    m2u_caption_request r = {.id = id, .kind = M2U_MEDIA_AUDIO, .path = "/tmp/clip.wav", .start_s = 0, .end_s = 10};
    return r;
}

static void expect_fail(m2u_captioner *c, const char *id, m2u_caption_status st, const char *reason, int attempts,
                        int restarts, int line) {
    m2u_caption_request req = simple(id);
    result r = ask(c, &req);
    CHECK(r.rc == -1 && r.status == st, "line %d: %s: status %s (%s), want %s", line, id,
          m2u_caption_status_name(r.status), r.error, m2u_caption_status_name(st));
    CHECK(strstr(r.error, reason) != NULL, "line %d: %s: reason '%s' lacks '%s'", line, id, r.error, reason);
    CHECK(strstr(m2u_last_error(), reason) != NULL, "line %d: %s: last error '%s'", line, id, m2u_last_error());
    CHECK(r.text == NULL, "line %d: %s: text on failure", line, id);
    CHECK(attempts < 0 || r.attempts == attempts, "line %d: %s: attempts %d, want %d", line, id, r.attempts, attempts);
    CHECK(restarts < 0 || r.restarts == restarts, "line %d: %s: restarts %d, want %d", line, id, r.restarts,
          restarts);
    result_free(&r);
}

static void expect_ok(m2u_captioner *c, const char *id, const char *text, int attempts, int restarts, int line) {
    m2u_caption_request req = simple(id);
    result r = ask(c, &req);
    CHECK(r.rc == 0 && r.text && !strcmp(r.text, text), "line %d: %s: rc %d text '%s' (%s)", line, id, r.rc,
          r.text ? r.text : "(null)", r.error);
    CHECK(r.attempts == attempts, "line %d: %s: attempts %d, want %d", line, id, r.attempts, attempts);
    CHECK(restarts < 0 || r.restarts == restarts, "line %d: %s: restarts %d, want %d", line, id, r.restarts,
          restarts);
    result_free(&r);
}

static void test_process(void) {
    char dir[] = "/tmp/m2u_captioners_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    char log[300];
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    const char *argv[] = {python(), "-u", SCRIPTS "/fake_captioner.py", "--state", dir, NULL};
    m2u_process_captioner_config cfg;
    m2u_process_captioner_config_default(&cfg);
    cfg.argv = argv;
    cfg.stderr_path = log;
    cfg.prompt = "default prompt for {id}";
    cfg.timeout_s = 0.5;
    cfg.startup_timeout_s = 2.0;
    cfg.max_retries = 1;
    cfg.max_restarts = 3;
    cfg.max_line = 64 * 1024;
    m2u_captioner *c = NULL;
    CHECK(m2u_process_captioner_open(&cfg, &c) == 0, "open: %s", m2u_last_error());
    if (!c) return;
    CHECK(!strcmp(c->name, "process"), "name %s", c->name);
    long pid0 = m2u_process_captioner_pid(c);
    CHECK(pid0 > 0, "no child");

    /* a good request: text, extras, and what the captioner received */
    m2u_caption_request req = {.id = "ok-1", .kind = M2U_MEDIA_VIDEO, .path = "/data/v.mp4", .start_s = 1.5,
                               .end_s = 11.5, .analysis_json = "{\"tempo\": 120, \"tags\": [\"rock\", \"live\"]}",
                               .caption = "a loud rock song",
                               .prompt = "Describe this {kind} ({analysis.tempo} bpm, {analysis.tags}): {caption}"};
    result r = ask(c, &req);
    CHECK(r.rc == 0 && r.text && !strcmp(r.text, "caption of ok-1"), "ok-1: %s / %s", r.text ? r.text : "", r.error);
    CHECK(r.attempts == 1 && r.restarts == 0, "ok-1: attempts %d restarts %d", r.attempts, r.restarts);
    const cJSON *echo = cJSON_GetObjectItemCaseSensitive(r.extras, "echo");
    CHECK(cJSON_IsObject(echo), "no echo extra");
    if (echo) {
        const cJSON *v;
        v = cJSON_GetObjectItemCaseSensitive(echo, "kind");
        CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "video"), "kind");
        v = cJSON_GetObjectItemCaseSensitive(echo, "path");
        CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "/data/v.mp4"), "path");
        v = cJSON_GetObjectItemCaseSensitive(echo, "start");
        CHECK(cJSON_IsNumber(v) && v->valuedouble == 1.5, "start");
        v = cJSON_GetObjectItemCaseSensitive(echo, "end");
        CHECK(cJSON_IsNumber(v) && v->valuedouble == 11.5, "end");
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(echo, "analysis"), "tempo");
        CHECK(cJSON_IsNumber(v) && v->valuedouble == 120, "analysis sent as an object");
        v = cJSON_GetObjectItemCaseSensitive(echo, "caption");
        CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "a loud rock song"), "caption");
        v = cJSON_GetObjectItemCaseSensitive(echo, "prompt");
        CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "Describe this video (120 bpm, rock, live): a loud rock song"),
              "prompt '%s'", cJSON_IsString(v) ? v->valuestring : "");
    }
    result_free(&r);
    /* the configured prompt when the request has none */
    req = simple("ok-default");
    r = ask(c, &req);
    echo = cJSON_GetObjectItemCaseSensitive(r.extras, "echo");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(echo, "prompt");
    CHECK(r.rc == 0 && cJSON_IsString(pr) && !strcmp(pr->valuestring, "default prompt for ok-default"),
          "default prompt: %s", r.error);
    result_free(&r);

    /* the model refuses: retried, same process (stream still in step) */
    expect_fail(c, "error-1", M2U_CAPTION_ERR_REFUSED, "captioner error: model refused", 2, 0, __LINE__);
    CHECK(m2u_process_captioner_pid(c) == pid0, "restarted after a well-formed error");
    /* garbage: process replaced before the retry */
    expect_fail(c, "garbage-1", M2U_CAPTION_ERR_MALFORMED, "not a JSON object: 'this is not json'", 2, 1, __LINE__);
    expect_ok(c, "ok-2", "caption of ok-2", 1, 1, __LINE__);
    expect_fail(c, "wrongid-1", M2U_CAPTION_ERR_MALFORMED, "id 'someone-else' does not match the request's 'wrongid-1'",
                2, 1, __LINE__);
    expect_ok(c, "ok-3", "caption of ok-3", 1, 1, __LINE__);
    long pid3 = m2u_process_captioner_pid(c);
    expect_fail(c, "notext-1", M2U_CAPTION_ERR_MALFORMED, "neither \"text\" nor \"error\"", 2, 0, __LINE__);
    CHECK(m2u_process_captioner_pid(c) == pid3, "restarted after an in-step malformed reply");
    expect_fail(c, "long-1", M2U_CAPTION_ERR_MALFORMED, "line exceeds the 65536-byte limit", 2, 1, __LINE__);
    expect_ok(c, "ok-4", "caption of ok-4", 1, 1, __LINE__);
    /* exits mid-line: crash recorded with its exit status, then good requests still work */
    expect_fail(c, "exit-1", M2U_CAPTION_ERR_CRASHED, "exited with status 3 before replying (14 bytes", 2, 1,
                __LINE__);
    expect_ok(c, "ok-5", "caption of ok-5", 1, 1, __LINE__);
    expect_ok(c, "ok-6", "caption of ok-6", 1, 0, __LINE__);
    /* crash once, succeed on the retry in a new process */
    expect_ok(c, "crashonce-1", "recovered crashonce-1", 2, 1, __LINE__);
    expect_ok(c, "blank-1", "caption of blank-1", 1, 0, __LINE__);
    /* sleeps past the timeout: both attempts time out (the second after a restart,
     * under the startup timeout), bounded */
    double t0 = now_s();
    expect_fail(c, "sleep-1", M2U_CAPTION_ERR_TIMEOUT, "no reply within", 2, 1, __LINE__);
    double dt = now_s() - t0;
    CHECK(dt >= 2.4 && dt < 5.0, "sleep-1 took %.2f s (want 0.5 + 2.0)", dt);
    expect_ok(c, "ok-7", "caption of ok-7", 1, 1, __LINE__);

    /* bad input never reaches the process */
    req = simple("ok-bad");
    req.analysis_json = "{not json";
    r = ask(c, &req);
    CHECK(r.status == M2U_CAPTION_ERR_INPUT && r.attempts == 0 && strstr(r.error, "analysis is not a JSON object"),
          "bad analysis: %s %s", m2u_caption_status_name(r.status), r.error);
    result_free(&r);
    req = simple("ok-bad2");
    req.prompt = "{caption}";
    r = ask(c, &req);
    CHECK(r.status == M2U_CAPTION_ERR_INPUT && strstr(r.error, "{caption} has no value"), "absent caption: %s",
          r.error);
    result_free(&r);
    r = ask(c, &(m2u_caption_request){.id = NULL});
    CHECK(r.status == M2U_CAPTION_ERR_INPUT, "no id accepted");
    result_free(&r);

    const m2u_captioner_stats *s = &c->stats;
    CHECK(s->requests == 20 && s->ok == 10 && s->failed == 10, "stats: %ld requests %ld ok %ld failed", s->requests,
          s->ok, s->failed);
    CHECK(s->timeouts == 2 && s->crashes == 3 && s->refused == 2 && s->malformed == 8,
          "stats: %ld timeouts %ld crashes %ld refused %ld malformed", s->timeouts, s->crashes, s->refused,
          s->malformed);
    long restarts = s->restarts;
    m2u_captioner_close(c);

    /* every start was a restart we counted, each child is gone and reaped */
    char path[300];
    snprintf(path, sizeof path, "%s/starts", dir);
    char *starts = read_file(path);
    int n_starts = 0, alive = 0;
    for (char *p = starts; p && *p;) {
        long pid = strtol(p, &p, 10);
        while (*p == '\n') p++;
        n_starts++;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) alive++;
    }
    free(starts);
    CHECK(n_starts == restarts + 1, "%d starts, %ld restarts counted", n_starts, restarts);
    CHECK(alive == 0, "%d captioner processes still exist", alive);
    int st;
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "a child was left unreaped");
    /* stderr went to the log, and close() let the last one finish on end of input */
    char *errlog = read_file(log);
    CHECK(errlog && strstr(errlog, "fake_captioner: request ok-1\n") && strstr(errlog, "fake_captioner: end of input"),
          "stderr log: %.200s", errlog ? errlog : "(missing)");
    free(errlog);

    /* a command (split shell-like) that dies at once: restarts run out, then it is
     * unavailable, immediately, for every later request */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s -c 'import sys; sys.exit(2)'", python());
    m2u_process_captioner_config_default(&cfg);
    cfg.command = cmd;
    cfg.timeout_s = cfg.startup_timeout_s = 5;
    cfg.max_retries = 5;
    cfg.max_restarts = 2;
    CHECK(m2u_process_captioner_open(&cfg, &c) == 0, "open: %s", m2u_last_error());
    if (c) {
        m2u_caption_request q = simple("ok-1");
        m2u_caption_reply rep;
        CHECK(m2u_captioner_caption(c, &q, &rep) == -1 && rep.status == M2U_CAPTION_ERR_UNAVAILABLE && rep.fatal &&
                  rep.attempts == 3 && rep.restarts == 2,
              "dying command: %s attempts %d restarts %d fatal %d: %s", m2u_caption_status_name(rep.status),
              rep.attempts, rep.restarts, rep.fatal, rep.error);
        CHECK(strstr(rep.error, "gave up after 2 restarts") && strstr(rep.error, "exited with status 2"), "%s",
              rep.error);
        m2u_caption_reply_free(&rep);
        q.id = "ok-2";
        CHECK(m2u_captioner_caption(c, &q, &rep) == -1 && rep.status == M2U_CAPTION_ERR_UNAVAILABLE && rep.fatal &&
                  rep.attempts == 0,
              "second request: %s attempts %d", m2u_caption_status_name(rep.status), rep.attempts);
        m2u_caption_reply_free(&rep);
        CHECK(c->stats.crashes == 3 && c->stats.restarts == 2, "crashes %ld restarts %ld", c->stats.crashes,
              c->stats.restarts);
        m2u_captioner_close(c);
    }
    /* a program that does not exist fails at open */
    m2u_process_captioner_config_default(&cfg);
    cfg.command = "/nonexistent/m2u-captioner --model x";
    c = NULL;
    CHECK(m2u_process_captioner_open(&cfg, &c) == -1 && c == NULL, "missing program accepted");
    CHECK(strstr(m2u_last_error(), "cannot start '/nonexistent/m2u-captioner': No such file"), "%s",
          m2u_last_error());
    cfg.command = "python3 'oops";
    CHECK(m2u_process_captioner_open(&cfg, &c) == -1 && strstr(m2u_last_error(), "unterminated quote"), "%s",
          m2u_last_error());
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "a child was left unreaped");
    rm_dir(dir);
}

/* ---- HTTP captioner ------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    int in_fd;
    int port;
    char log[300];
} server;

static int server_start(server *sv, const char *dir) {
    memset(sv, 0, sizeof *sv);
    sv->pid = -1;
    snprintf(sv->log, sizeof sv->log, "%s/requests.jsonl", dir);
    int in_p[2], out_p[2];
    if (pipe(in_p) != 0) return -1;
    if (pipe(out_p) != 0) {
        close(in_p[0]);
        close(in_p[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    posix_spawn_file_actions_addclose(&fa, in_p[1]);
    posix_spawn_file_actions_addclose(&fa, out_p[0]);
    char *argv[] = {(char *)python(), "-u", SCRIPTS "/fake_llm_server.py", sv->log, NULL};
    int err = posix_spawnp(&sv->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_p[0]);
    close(out_p[1]);
    if (err) {
        close(in_p[1]);
        close(out_p[0]);
        sv->pid = -1;
        fprintf(stderr, "cannot start the fake server: %s\n", strerror(err));
        return -1;
    }
    fcntl(in_p[1], F_SETFD, FD_CLOEXEC); /* later children must not hold its stdin open */
    sv->in_fd = in_p[1];
    char line[64];
    size_t n = 0;
    double end = now_s() + 15;
    while (n < sizeof line - 1 && !memchr(line, '\n', n) && now_s() < end) {
        struct pollfd pfd = {out_p[0], POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0) continue;
        ssize_t r = read(out_p[0], line + n, sizeof line - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    line[n] = '\0';
    close(out_p[0]);
    if (sscanf(line, "PORT %d", &sv->port) != 1) {
        fprintf(stderr, "fake server said '%s'\n", line);
        return -1;
    }
    return 0;
}

static void server_stop(server *sv) {
    if (sv->in_fd > 0) close(sv->in_fd); /* end of stdin: the server exits */
    sv->in_fd = -1;
    if (sv->pid <= 0) return;
    int st;
    double end = now_s() + 5;
    while (waitpid(sv->pid, &st, WNOHANG) == 0) {
        if (now_s() > end) {
            kill(sv->pid, SIGKILL);
            waitpid(sv->pid, &st, 0);
            break;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    sv->pid = -1;
}

/* Requests the server logged for one mode; *last_body gets the latest body (owned). */
static int logged(const server *sv, const char *mode, cJSON **last) {
    char *text = read_file(sv->log);
    int n = 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "/%s/", mode);
    if (last) *last = NULL;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
        if (cJSON_IsString(p) && !strncmp(p->valuestring, prefix, strlen(prefix))) {
            n++;
            if (last) {
                cJSON_Delete(*last);
                *last = o;
                o = NULL;
            }
        }
        cJSON_Delete(o);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return n;
}

static m2u_captioner *open_http(const server *sv, const char *mode, double timeout_s, const char *key_env) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", sv->port, mode);
    m2u_http_captioner_config cfg;
    m2u_http_captioner_config_default(&cfg);
    cfg.base_url = url;
    cfg.model = "test-model";
    cfg.system_template = "You turn captions of {kind} into instructions.";
    cfg.user_template = "Caption: {caption}\nTempo: {analysis.tempo}\nTags: {analysis.tags}";
    cfg.temperature = 0.25;
    cfg.seed = 42;
    cfg.max_tokens = 64;
    cfg.connect_timeout_s = 2;
    cfg.timeout_s = timeout_s;
    cfg.max_retries = 2;
    cfg.backoff_s = 0.05;
    cfg.backoff_max_s = 0.2;
    cfg.api_key_env = key_env;
    m2u_captioner *c = NULL;
    m2u_http_captioner_open(&cfg, &c); /* the caller checks (and sees m2u_last_error()) */
    return c;
}

static const m2u_caption_request HTTP_REQ = {
    .id = "s7", .kind = M2U_MEDIA_AUDIO, .path = "/tmp/s7.wav", .start_s = 0, .end_s = 10,
    .caption = "a calm piano piece",
    .analysis_json = "{\"tempo\": 72, \"tags\": [\"piano\", \"calm\"]}"};

static void http_expect_key(const server *sv, const char *mode, double timeout_s, const char *key_env,
                            m2u_caption_status st, const char *reason, int attempts, int line) {
    m2u_captioner *c = open_http(sv, mode, timeout_s, key_env);
    CHECK(c != NULL, "line %d: open: %s", line, m2u_last_error());
    if (!c) return;
    int before = logged(sv, mode, NULL);
    result r = ask(c, &HTTP_REQ);
    CHECK(r.status == st && r.rc == (st == M2U_CAPTION_OK ? 0 : -1), "line %d: %s: %s (%s), want %s", line, mode,
          m2u_caption_status_name(r.status), r.error, m2u_caption_status_name(st));
    CHECK(strstr(st == M2U_CAPTION_OK ? (r.text ? r.text : "") : r.error, reason) != NULL,
          "line %d: %s: '%s' lacks '%s'", line, mode, st == M2U_CAPTION_OK ? r.text : r.error, reason);
    CHECK(r.attempts == attempts, "line %d: %s: attempts %d, want %d", line, mode, r.attempts, attempts);
    int sent = logged(sv, mode, NULL) - before;
    CHECK(sent == attempts, "line %d: %s: the server saw %d requests, want %d", line, mode, sent, attempts);
    CHECK(c->stats.attempts == attempts && c->stats.requests == 1, "line %d: stats", line);
    result_free(&r);
    m2u_captioner_close(c);
}

static void http_expect(const server *sv, const char *mode, double timeout_s, m2u_caption_status st,
                        const char *reason, int attempts, int line) {
    http_expect_key(sv, mode, timeout_s, NULL, st, reason, attempts, line);
}

static void test_http(void) {
    char dir[] = "/tmp/m2u_llm_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    /* proxies in the environment must not be used: this one leads nowhere */
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
    server sv;
    if (server_start(&sv, dir) != 0) {
        CHECK(0, "fake server did not start");
        server_stop(&sv);
        rm_dir(dir);
        return;
    }

    /* a proper completion; the body carries the templated prompt and the settings */
    m2u_captioner *c = open_http(&sv, "ok", 5, NULL);
    CHECK(c && !strcmp(c->name, "http"), "open ok: %s", m2u_last_error());
    if (c) {
        result r = ask(c, &HTTP_REQ);
        const char *want = "INSTR: Caption: a calm piano piece\nTempo: 72\nTags: piano, calm";
        CHECK(r.rc == 0 && r.text && !strcmp(r.text, want), "ok: '%s' (%s)", r.text ? r.text : "", r.error);
        CHECK(r.attempts == 1, "ok attempts %d", r.attempts);
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(r.extras, "finish_reason");
        const cJSON *tot = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.extras, "usage"),
                                                            "total_tokens");
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(r.extras, "model");
        CHECK(cJSON_IsString(fr) && !strcmp(fr->valuestring, "stop"), "finish_reason");
        CHECK(cJSON_IsNumber(tot) && tot->valueint == 15, "usage");
        CHECK(cJSON_IsString(model) && !strcmp(model->valuestring, "fake-model"), "model extra");
        result_free(&r);
        cJSON *entry;
        CHECK(logged(&sv, "ok", &entry) == 1, "one request logged");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "path");
        CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, "/ok/v1/chat/completions"), "path");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(entry, "auth")), "auth header without a key");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(entry, "body");
        cJSON *body = cJSON_IsString(b) ? cJSON_Parse(b->valuestring) : NULL;
        CHECK(body != NULL, "body not JSON");
        if (body) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "model");
            CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "test-model"), "model");
            v = cJSON_GetObjectItemCaseSensitive(body, "temperature");
            CHECK(cJSON_IsNumber(v) && v->valuedouble == 0.25, "temperature");
            v = cJSON_GetObjectItemCaseSensitive(body, "seed");
            CHECK(cJSON_IsNumber(v) && v->valuedouble == 42, "seed");
            v = cJSON_GetObjectItemCaseSensitive(body, "max_tokens");
            CHECK(cJSON_IsNumber(v) && v->valueint == 64, "max_tokens");
            CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "stream")), "stream");
            const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
            const cJSON *m0 = cJSON_GetArrayItem(msgs, 0), *m1 = cJSON_GetArrayItem(msgs, 1);
            const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(m0, "role");
            const cJSON *c0 = cJSON_GetObjectItemCaseSensitive(m0, "content");
            const cJSON *r1 = cJSON_GetObjectItemCaseSensitive(m1, "role");
            const cJSON *c1 = cJSON_GetObjectItemCaseSensitive(m1, "content");
            CHECK(cJSON_GetArraySize(msgs) == 2 && cJSON_IsString(r0) && !strcmp(r0->valuestring, "system") &&
                      cJSON_IsString(c0) && !strcmp(c0->valuestring, "You turn captions of audio into instructions."),
                  "system message");
            CHECK(cJSON_IsString(r1) && !strcmp(r1->valuestring, "user") && cJSON_IsString(c1) &&
                      !strcmp(c1->valuestring, "Caption: a calm piano piece\nTempo: 72\nTags: piano, calm"),
                  "user message '%s'", cJSON_IsString(c1) ? c1->valuestring : "");
        }
        cJSON_Delete(body);
        cJSON_Delete(entry);
        /* a request's own prompt replaces the configured user template */
        m2u_caption_request q = HTTP_REQ;
        q.prompt = M2U_LPMC_WRITING_TEMPLATE;
        r = ask(c, &q);
        CHECK(r.rc == 0 && r.text &&
                  !strcmp(r.text, "INSTR: write a song description sentence including the following attributes. \n "
                                  "piano, calm"),
              "LP-MusicCaps prompt: '%s' (%s)", r.text ? r.text : "", r.error);
        result_free(&r);
        /* a template with a hole is refused before anything is sent */
        q.prompt = "{analysis.mood}";
        r = ask(c, &q);
        CHECK(r.status == M2U_CAPTION_ERR_INPUT && r.attempts == 0 && strstr(r.error, "{analysis.mood}"), "%s",
              r.error);
        result_free(&r);
        CHECK(logged(&sv, "ok", NULL) == 2, "bad input reached the server");
        CHECK(c->stats.requests == 3 && c->stats.ok == 2 && c->stats.failed == 1, "stats");
        m2u_captioner_close(c);
    }

    /* 500 (retried, then recorded), 503+429 then success, malformed (not retried),
     * no content, timeouts (retried), a redirect (not followed) */
    http_expect(&sv, "err500", 5, M2U_CAPTION_ERR_HTTP, "HTTP 500 from http://127.0.0.1", 3, __LINE__);
    http_expect(&sv, "err500", 5, M2U_CAPTION_ERR_HTTP, "/err500/v1/chat/completions: boom", 3, __LINE__);
    http_expect(&sv, "flaky", 5, M2U_CAPTION_OK, "INSTR: Caption: a calm piano piece", 3, __LINE__);
    http_expect(&sv, "malformed", 5, M2U_CAPTION_ERR_MALFORMED, "not a JSON object: '{\"choices\": [ this is not", 1,
                __LINE__);
    http_expect(&sv, "nocontent", 5, M2U_CAPTION_ERR_MALFORMED, "no choices[0].message.content", 1, __LINE__);
    double t0 = now_s();
    http_expect(&sv, "hang", 0.5, M2U_CAPTION_ERR_TIMEOUT, "no response within the timeout", 3, __LINE__);
    double dt = now_s() - t0;
    CHECK(dt >= 1.5 && dt < 4.0, "hang took %.2f s (want 3 x 0.5 s + backoff)", dt);
    int ok_before = logged(&sv, "ok", NULL);
    http_expect(&sv, "redirect", 5, M2U_CAPTION_ERR_REFUSED, "HTTP 302", 1, __LINE__);
    CHECK(logged(&sv, "ok", NULL) == ok_before, "the redirect was followed");

    /* API key from the environment, sent as a bearer token */
    unsetenv("M2U_TEST_LLM_KEY");
    CHECK(open_http(&sv, "auth", 5, "M2U_TEST_LLM_KEY") == NULL &&
              strstr(m2u_last_error(), "environment variable M2U_TEST_LLM_KEY (api_key_env) is not set"),
          "%s", m2u_last_error());
    setenv("M2U_TEST_LLM_KEY", "sekrit", 1);
    http_expect_key(&sv, "auth", 5, "M2U_TEST_LLM_KEY", M2U_CAPTION_OK, "INSTR:", 1, __LINE__);
    cJSON *entry;
    logged(&sv, "auth", &entry);
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(entry, "auth");
    CHECK(cJSON_IsString(auth) && !strcmp(auth->valuestring, "Bearer sekrit"), "auth header");
    cJSON_Delete(entry);
    setenv("M2U_TEST_LLM_KEY", "wrong", 1);
    http_expect_key(&sv, "auth", 5, "M2U_TEST_LLM_KEY", M2U_CAPTION_ERR_REFUSED, "HTTP 401 from http://127.0.0.1", 1, __LINE__);
    CHECK(!strstr(m2u_last_error(), "wrong"), "the key leaked into the error: %s", m2u_last_error());
    unsetenv("M2U_TEST_LLM_KEY");

    /* nothing listening: connection refused, retried, recorded */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int free_port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        free_port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    if (free_port > 0) {
        server dead = {.port = free_port};
        c = open_http(&dead, "ok", 2, NULL);
        if (c) {
            result r = ask(c, &HTTP_REQ);
            CHECK(r.status == M2U_CAPTION_ERR_TRANSPORT && r.attempts == 3 && strstr(r.error, "failed"),
                  "refused connection: %s attempts %d: %s", m2u_caption_status_name(r.status), r.attempts, r.error);
            result_free(&r);
            m2u_captioner_close(c);
        }
    }

    /* only http(s) URLs */
    m2u_http_captioner_config cfg;
    m2u_http_captioner_config_default(&cfg);
    cfg.base_url = "file:///etc/passwd";
    CHECK(m2u_http_captioner_open(&cfg, &c) == -1 && strstr(m2u_last_error(), "must start with http"), "%s",
          m2u_last_error());
    cfg.base_url = NULL;
    CHECK(m2u_http_captioner_open(&cfg, &c) == -1, "no URL accepted");

    server_stop(&sv);
    int st;
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "a child was left unreaped");
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    rm_dir(dir);
}

int main(void) {
    double t0 = now_s();
    test_split();
    test_templates();
    test_process();
    test_http();
    double dt = now_s() - t0;
    printf("test_captioners: %.1f s\n", dt);
    CHECK(dt < 30, "took %.1f s", dt);
    return t_finish("test_captioners");
}
