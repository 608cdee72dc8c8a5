/* External-process captioner (captioner_process.h): spawn, JSON lines over
 * pipes, per-attempt deadlines with poll(), restart on death or desync. */
#include "captioner_process.h"

#include "progress.h"

#include "m2u_error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- command splitting ---------------------------------------------------------- */

void m2u_command_free(char **argv) {
    if (!argv) return;
    for (char **a = argv; *a; a++) free(*a);
    free(argv);
}

int m2u_command_split(const char *command, char ***argv_out, int *argc_out) {
    *argv_out = NULL;
    if (argc_out) *argc_out = 0;
    if (!command) return m2u_fail("command: none given");
    size_t n = strlen(command);
    /* every word is shorter than the command, and there are at most n/2+1 words */
    char **argv = calloc(n / 2 + 2, sizeof *argv);
    char *word = malloc(n + 1);
    if (!argv || !word) {
        free(argv);
        free(word);
        return m2u_fail("command: out of memory");
    }
    int argc = 0;
    size_t i = 0;
    for (;;) {
        while (i < n && (command[i] == ' ' || command[i] == '\t' || command[i] == '\n')) i++;
        if (i >= n) break;
        size_t w = 0;
        while (i < n && command[i] != ' ' && command[i] != '\t' && command[i] != '\n') {
            char c = command[i];
            if (c == '\'') {
                size_t j = i + 1;
                while (j < n && command[j] != '\'') word[w++] = command[j++];
                if (j >= n) goto unterminated;
                i = j + 1;
            } else if (c == '"') {
                size_t j = i + 1;
                while (j < n && command[j] != '"') {
                    if (command[j] == '\\' && j + 1 < n &&
                        strchr("\"\\$`\n", command[j + 1])) {
                        if (command[j + 1] != '\n') word[w++] = command[j + 1]; /* line continuation */
                        j += 2;
                    } else {
                        word[w++] = command[j++];
                    }
                }
                if (j >= n) goto unterminated;
                i = j + 1;
            } else if (c == '\\') {
                if (i + 1 >= n) {
                    m2u_command_free(argv);
                    free(word);
                    return m2u_fail("command: trailing backslash in '%s'", command);
                }
                if (command[i + 1] != '\n') word[w++] = command[i + 1];
                i += 2;
            } else {
                word[w++] = c;
                i++;
            }
        }
        word[w] = '\0';
        argv[argc] = malloc(w + 1);
        if (!argv[argc]) {
            m2u_command_free(argv);
            free(word);
            return m2u_fail("command: out of memory");
        }
        memcpy(argv[argc++], word, w + 1);
    }
    free(word);
    if (argc == 0) {
        free(argv);
        return m2u_fail("command: '%s' has no words", command);
    }
    *argv_out = argv;
    if (argc_out) *argc_out = argc;
    return 0;
unterminated:
    m2u_command_free(argv);
    free(word);
    return m2u_fail("command: unterminated quote in '%s'", command);
}

/* ---- the captioner -------------------------------------------------------------- */

typedef struct {
    m2u_captioner base; /* first: the interface pointer is this struct's address */
    char **argv;
    char *prompt;
    int stderr_fd; /* -1: the child inherits ours */
    double timeout_s, startup_timeout_s, grace_s;
    int max_retries, max_restarts;
    size_t max_line;

    pid_t pid;  /* -1: no child running */
    int in_fd;  /* child's stdin (write end, non-blocking) */
    int out_fd; /* child's stdout (read end, non-blocking) */
    int fresh;  /* no reply read since this child started: startup timeout applies */
    int started;              /* a child has been started before (next start is a restart) */
    int consecutive_restarts; /* restarts since the last successful reply */
    int unavailable;
    char unavailable_why[400];
    char last_failure[300];   /* the reason behind the latest restart, for the give-up message */
    char *buf;                /* bytes read from stdout not yet consumed */
    size_t len, cap;
} proc_captioner;



static int set_flags(int fd, int cloexec, int nonblock) {
    if (cloexec) {
        int f = fcntl(fd, F_GETFD);
        if (f < 0 || fcntl(fd, F_SETFD, f | FD_CLOEXEC) < 0) return -1;
    }
    if (nonblock) {
        int f = fcntl(fd, F_GETFL);
        if (f < 0 || fcntl(fd, F_SETFL, f | O_NONBLOCK) < 0) return -1;
    }
    return 0;
}

/* Printable head of a reply for an error message: control bytes become '?'. */
static void snippet(const char *s, size_t n, char *out, size_t outsz) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < outsz && i < 80; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n > 80 && k + 4 < outsz) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

static void describe_status(int status, char *out, size_t outsz) {
    if (WIFEXITED(status))
        snprintf(out, outsz, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, outsz, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, outsz, "stopped (wait status 0x%x)", (unsigned)status);
}

/* Has the child exited?  Observed without reaping it (WNOWAIT), so that its pid,
 * and so its process group id, cannot be reused before the group is killed. */
static int child_exited(pid_t pid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return si.si_pid != 0;
}

static int wait_exit(pid_t pid, double seconds) {
    double end = m2u_now() + seconds;
    for (;;) {
        if (child_exited(pid)) return 1;
        if (m2u_now() >= end) return 0;
        m2u_captioner_sleep(0.005);
    }
}

/* Stop the child: when grace > 0, close its stdin and give it that long to exit
 * on its own, then as long after SIGTERM; then SIGKILL.  The whole process group
 * is signalled so that helpers it started go too.  Always reaps (no zombie).
 * *status_out gets the wait status (-1 if it could not be had). */
static void stop_child(proc_captioner *p, double grace, int *status_out) {
    int status = -1;
    if (p->in_fd >= 0) close(p->in_fd);
    p->in_fd = -1;
    if (p->pid > 0) {
        if (grace > 0 && !wait_exit(p->pid, grace)) {
            kill(-p->pid, SIGTERM);
            wait_exit(p->pid, grace);
        }
        /* leader exited or overran: kill what is left of the group before reaping */
        kill(-p->pid, SIGKILL);
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (p->out_fd >= 0) close(p->out_fd);
    p->out_fd = -1;
    p->pid = -1;
    p->len = 0;
    if (status_out) *status_out = status;
}

static int start_child(proc_captioner *p, char *why, size_t whylen) {
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    int err = 0;
    if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) {
        err = errno;
        snprintf(why, whylen, "cannot create pipes: %s", strerror(err));
        goto fail;
    }
    /* close-on-exec everywhere: the child gets only the dup2'ed copies, and other
     * children we start never inherit these pipes (which would hide an EOF) */
    for (int k = 0; k < 2; k++)
        if (set_flags(in_pipe[k], 1, 0) != 0 || set_flags(out_pipe[k], 1, 0) != 0) {
            err = errno;
            snprintf(why, whylen, "fcntl: %s", strerror(err));
            goto fail;
        }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
        snprintf(why, whylen, "posix_spawn_file_actions_init: %s", strerror(err));
        goto fail;
    }
    if ((err = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        snprintf(why, whylen, "posix_spawnattr_init: %s", strerror(err));
        goto fail;
    }
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    /* the child starts with default handling of these whatever our process does
     * (a Python or a shell parent may ignore SIGPIPE, for instance) */
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGCHLD);
    err = posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    if (!err) err = posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    if (!err && p->stderr_fd >= 0) err = posix_spawn_file_actions_adddup2(&fa, p->stderr_fd, 2);
    if (!err) err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                      POSIX_SPAWN_SETSIGDEF);
    if (!err) err = posix_spawnattr_setpgroup(&at, 0);
    if (!err) err = posix_spawnattr_setsigmask(&at, &none);
    if (!err) err = posix_spawnattr_setsigdefault(&at, &defaults);
    pid_t pid = -1;
    if (!err) err = posix_spawnp(&pid, p->argv[0], &fa, &at, p->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (err) {
        snprintf(why, whylen, "cannot start '%s': %s", p->argv[0], strerror(err));
        goto fail;
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    p->pid = pid;
    p->in_fd = in_pipe[1];
    p->out_fd = out_pipe[0];
    p->len = 0;
    p->fresh = 1;
    p->started = 1;
    /* non-blocking both ways: every wait goes through poll() with a deadline */
    if (set_flags(p->in_fd, 0, 1) != 0 || set_flags(p->out_fd, 0, 1) != 0) {
        err = errno;
        stop_child(p, 0, NULL);
        snprintf(why, whylen, "fcntl: %s", strerror(err));
        return -1;
    }
    return 0;
fail:
    for (int k = 0; k < 2; k++) {
        if (in_pipe[k] >= 0) close(in_pipe[k]);
        if (out_pipe[k] >= 0) close(out_pipe[k]);
    }
    return -1;
}

/* write() that reports EPIPE instead of raising SIGPIPE, without touching the
 * process-wide disposition (a library must not): block SIGPIPE in this thread,
 * and swallow the signal the failed write left pending (unless one was pending
 * before us, which is someone else's). */
static ssize_t write_nosigpipe(int fd, const void *data, size_t n) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, data, n);
    int saved = errno;
    if (w < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return w;
}

static int read_more(proc_captioner *p) { /* 1 data, 0 EOF, -1 error (errno), -2 EAGAIN */
    if (p->cap - p->len < 65536) {
        size_t ncap = p->cap ? p->cap * 2 : 131072;
        while (ncap - p->len < 65536) ncap *= 2;
        char *nb = realloc(p->buf, ncap);
        if (!nb) {
            errno = ENOMEM;
            return -1;
        }
        p->buf = nb;
        p->cap = ncap;
    }
    ssize_t r = read(p->out_fd, p->buf + p->len, p->cap - p->len);
    if (r > 0) {
        p->len += (size_t)r;
        return 1;
    }
    if (r == 0) return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -2;
    return -1;
}

/* The child closed stdout or stdin: say how it ended. */
static void describe_death(proc_captioner *p, const char *what, char *why, size_t whylen) {
    size_t partial = p->len;
    /* it normally exits right after closing its pipes; a short wait gets the status */
    int exited = wait_exit(p->pid, 0.5);
    int status;
    stop_child(p, 0, &status);
    char how[160];
    if (exited && status != -1)
        describe_status(status, how, sizeof how);
    else
        snprintf(how, sizeof how, "closed its %s and was killed", what);
    if (partial)
        snprintf(why, whylen, "captioner process %s before replying (%zu bytes of an unfinished line)",
                 how, partial);
    else
        snprintf(why, whylen, "captioner process %s before replying", how);
}

/* Find the next non-blank line in buf; returns its length (excluding '\n', '\r')
 * and sets *consumed, or returns (size_t)-1 when no full line is there yet. */
static size_t next_line(proc_captioner *p, size_t *start, size_t *consumed) {
    size_t s = 0;
    for (;;) {
        char *nl = s < p->len ? memchr(p->buf + s, '\n', p->len - s) : NULL;
        if (!nl) {
            *start = s;
            return (size_t)-1;
        }
        size_t e = (size_t)(nl - p->buf);
        size_t k = s;
        while (k < e && (p->buf[k] == ' ' || p->buf[k] == '\t' || p->buf[k] == '\r')) k++;
        if (k == e) { /* blank line: tolerated, skipped */
            s = e + 1;
            continue;
        }
        *start = s;
        *consumed = e + 1;
        size_t n = e - s;
        if (n && p->buf[e - 1] == '\r') n--;
        return n;
    }
}

/* One attempt.  Returns the status; on M2U_CAPTION_OK reply->text/extras are set.
 * *sent is 0 when nothing could be sent (no child could be started). */
static m2u_caption_status attempt(proc_captioner *p, const char *line, size_t line_len, const char *id,
                                  m2u_caption_reply *reply, int *sent, char *why, size_t whylen) {
    *sent = 0;
    if (p->pid < 0) {
        if (p->started) {
            if (p->consecutive_restarts >= p->max_restarts) {
                snprintf(why, whylen, "gave up after %d restart%s without a successful reply (last: %s)",
                         p->consecutive_restarts, p->consecutive_restarts == 1 ? "" : "s", p->last_failure);
                return M2U_CAPTION_ERR_UNAVAILABLE;
            }
            p->consecutive_restarts++;
            p->base.stats.restarts++;
            reply->restarts++;
        }
        if (start_child(p, why, whylen) != 0) return M2U_CAPTION_ERR_UNAVAILABLE;
    }
    *sent = 1;
    double timeout = p->fresh ? p->startup_timeout_s : p->timeout_s;
    double deadline = m2u_now() + timeout;
    size_t off = 0;
    for (;;) {
        /* the line limit holds in every phase, so a flood never grows the buffer
         * past about max_line (reads come in 64 KiB pieces) */
        size_t start = 0, consumed = 0;
        size_t n = next_line(p, &start, &consumed);
        if ((n != (size_t)-1 && n > p->max_line) || (n == (size_t)-1 && p->len - start > p->max_line)) {
            snprintf(why, whylen, "malformed reply: line exceeds the %zu-byte limit", p->max_line);
            stop_child(p, 0, NULL);
            return M2U_CAPTION_ERR_MALFORMED;
        }
        if (off < line_len && p->len > 2 * p->max_line) {
            snprintf(why, whylen, "malformed reply: over %zu bytes written before the request was read",
                     2 * p->max_line);
            stop_child(p, 0, NULL);
            return M2U_CAPTION_ERR_MALFORMED;
        }
        /* a complete line, once the whole request is out */
        if (off == line_len) {
            if (n != (size_t)-1) {
                char head[128];
                snippet(p->buf + start, n, head, sizeof head);
                cJSON *o = cJSON_ParseWithLength(p->buf + start, n);
                memmove(p->buf, p->buf + consumed, p->len - consumed);
                p->len -= consumed;
                p->fresh = 0;
                if (!o || !cJSON_IsObject(o)) {
                    cJSON_Delete(o);
                    snprintf(why, whylen, "malformed reply: not a JSON object: '%s'", head);
                    stop_child(p, 0, NULL); /* stray output: pairing no longer reliable */
                    return M2U_CAPTION_ERR_MALFORMED;
                }
                const cJSON *jid = cJSON_GetObjectItemCaseSensitive(o, "id");
                if (!cJSON_IsString(jid) || strcmp(jid->valuestring, id) != 0) {
                    char got[96] = "";
                    if (cJSON_IsString(jid))
                        snippet(jid->valuestring, strlen(jid->valuestring), got, sizeof got);
                    snprintf(why, whylen, "malformed reply: id %s%s%s does not match the request's '%s'",
                             cJSON_IsString(jid) ? "'" : "", cJSON_IsString(jid) ? got : "(missing)",
                             cJSON_IsString(jid) ? "'" : "", id);
                    cJSON_Delete(o);
                    stop_child(p, 0, NULL); /* answering someone else: out of step */
                    return M2U_CAPTION_ERR_MALFORMED;
                }
                /* from here on the stream is in step: no restart needed */
                const cJSON *jerr = cJSON_GetObjectItemCaseSensitive(o, "error");
                const cJSON *jtext = cJSON_GetObjectItemCaseSensitive(o, "text");
                m2u_caption_status st;
                if (jerr && !cJSON_IsNull(jerr)) {
                    char msg[256];
                    if (cJSON_IsString(jerr)) snippet(jerr->valuestring, strlen(jerr->valuestring), msg, sizeof msg);
                    else snprintf(msg, sizeof msg, "(non-string error)");
                    snprintf(why, whylen, "captioner error: %s", msg);
                    st = M2U_CAPTION_ERR_REFUSED;
                } else if (!jtext) {
                    snprintf(why, whylen, "malformed reply: neither \"text\" nor \"error\": '%s'", head);
                    st = M2U_CAPTION_ERR_MALFORMED;
                } else if (!cJSON_IsString(jtext)) {
                    snprintf(why, whylen, "malformed reply: \"text\" is not a string");
                    st = M2U_CAPTION_ERR_MALFORMED;
                } else if (strspn(jtext->valuestring, " \t\r\n") == strlen(jtext->valuestring)) {
                    snprintf(why, whylen, "malformed reply: \"text\" is empty");
                    st = M2U_CAPTION_ERR_MALFORMED;
                } else {
                    st = M2U_CAPTION_OK;
                    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(o, "text");
                    reply->text = t->valuestring; /* take the string: cJSON allocates with malloc */
                    t->valuestring = NULL;
                    cJSON_Delete(t);
                    cJSON_DeleteItemFromObjectCaseSensitive(o, "id");
                    cJSON_DeleteItemFromObjectCaseSensitive(o, "error"); /* a null error */
                    if (o->child) {
                        reply->extras = o;
                        o = NULL;
                    }
                }
                cJSON_Delete(o);
                return st;
            }
        }
        double left = deadline - m2u_now();
        if (left <= 0) {
            snprintf(why, whylen, "no reply within %.3g s%s", timeout,
                     off < line_len ? " (the captioner stopped reading its stdin)" : "");
            stop_child(p, 0, NULL); /* presumed stuck; a late reply would answer the next request */
            return M2U_CAPTION_ERR_TIMEOUT;
        }
        struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->in_fd, POLLOUT, 0}};
        int nfds = off < line_len ? 2 : 1; /* keep draining stdout while writing: no deadlock */
        int ms = (int)(left * 1000.0) + 1;
        int r = poll(fds, (nfds_t)nfds, ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            snprintf(why, whylen, "poll: %s", strerror(errno));
            stop_child(p, 0, NULL);
            return M2U_CAPTION_ERR_TRANSPORT;
        }
        if (fds[0].revents) {
            int rr = read_more(p);
            if (rr == 0) {
                describe_death(p, "stdout", why, whylen);
                return M2U_CAPTION_ERR_CRASHED;
            }
            if (rr == -1) {
                snprintf(why, whylen, "reading the captioner's stdout: %s", strerror(errno));
                stop_child(p, 0, NULL);
                return M2U_CAPTION_ERR_TRANSPORT;
            }
        }
        if (nfds == 2 && fds[1].revents) {
            ssize_t w = write_nosigpipe(p->in_fd, line + off, line_len - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                if (errno == EPIPE) {
                    describe_death(p, "stdin", why, whylen);
                    return M2U_CAPTION_ERR_CRASHED;
                }
                snprintf(why, whylen, "writing to the captioner's stdin: %s", strerror(errno));
                stop_child(p, 0, NULL);
                return M2U_CAPTION_ERR_TRANSPORT;
            }
        }
    }
}

/* The request line: {"id",...,"prompt"} + '\n'.  Fails on bad input. */
static int build_line(proc_captioner *p, const m2u_caption_request *req, char **out, size_t *out_len,
                      char *why, size_t whylen) {
    cJSON *o = cJSON_CreateObject();
    cJSON *analysis = NULL;
    char *prompt = NULL;
    int rc = -1;
    if (!o) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (req->analysis_json) {
        analysis = cJSON_Parse(req->analysis_json);
        if (!analysis || !cJSON_IsObject(analysis)) {
            snprintf(why, whylen, "analysis is not a JSON object");
            goto done;
        }
    }
    const char *tmpl = req->prompt ? req->prompt : p->prompt;
    if (tmpl && m2u_caption_template_expand(tmpl, req, &prompt) != 0) {
        m2u_captioner_copy_str(why, whylen, m2u_last_error());
        goto done;
    }
    cJSON_AddStringToObject(o, "id", req->id);
    cJSON_AddStringToObject(o, "kind", m2u_caption_media_name(req->kind));
    if (req->path) cJSON_AddStringToObject(o, "path", req->path);
    cJSON_AddNumberToObject(o, "start", req->start_s);
    cJSON_AddNumberToObject(o, "end", req->end_s);
    if (analysis) {
        cJSON_AddItemToObject(o, "analysis", analysis);
        analysis = NULL;
    }
    if (req->caption) cJSON_AddStringToObject(o, "caption", req->caption);
    if (prompt) cJSON_AddStringToObject(o, "prompt", prompt);
    /* unformatted: strings escape their newlines, so the object is one line */
    char *s = cJSON_PrintUnformatted(o);
    if (!s) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *out = line;
    *out_len = n + 1;
    rc = 0;
done:
    cJSON_Delete(o);
    cJSON_Delete(analysis);
    free(prompt);
    return rc;
}


static int proc_caption(m2u_captioner *self, const m2u_caption_request *req, m2u_caption_reply *reply) {
    proc_captioner *p = (proc_captioner *)self;
    m2u_caption_reply_init(reply);
    self->stats.requests++;
    const char *id = req && req->id ? req->id : "(none)";
    char *line = NULL;
    size_t line_len = 0;
    if (!req || !req->id) {
        reply->status = M2U_CAPTION_ERR_INPUT;
        snprintf(reply->error, sizeof reply->error, "request has no id");
    } else if (p->unavailable) {
        reply->status = M2U_CAPTION_ERR_UNAVAILABLE;
        reply->fatal = 1;
        m2u_captioner_copy_str(reply->error, sizeof reply->error, p->unavailable_why);
    } else if (build_line(p, req, &line, &line_len, reply->error, sizeof reply->error) != 0) {
        reply->status = M2U_CAPTION_ERR_INPUT;
    } else {
        for (int a = 0; a <= p->max_retries; a++) {
            int sent = 0;
            char why[sizeof reply->error];
            m2u_caption_status st = attempt(p, line, line_len, req->id, reply, &sent, why, sizeof why);
            if (sent) {
                reply->attempts++;
                self->stats.attempts++;
            }
            if (st == M2U_CAPTION_OK) {
                p->consecutive_restarts = 0;
                reply->status = M2U_CAPTION_OK;
                reply->error[0] = '\0';
                self->stats.ok++;
                free(line);
                return 0;
            }
            reply->status = st;
            m2u_captioner_copy_str(reply->error, sizeof reply->error, why);
            if (st == M2U_CAPTION_ERR_UNAVAILABLE) {
                p->unavailable = 1;
                reply->fatal = 1;
                m2u_captioner_copy_str(p->unavailable_why, sizeof p->unavailable_why, "captioner unavailable: ");
                m2u_captioner_copy_str(p->unavailable_why + strlen(p->unavailable_why),
                         sizeof p->unavailable_why - strlen(p->unavailable_why), why);
                m2u_captioner_copy_str(reply->error, sizeof reply->error, p->unavailable_why);
                break;
            }
            m2u_captioner_count_failure(&self->stats, st);
            m2u_captioner_copy_str(p->last_failure, sizeof p->last_failure, why);
        }
    }
    free(line);
    self->stats.failed++;
    return m2u_fail("caption %s: %s: %s", id, m2u_caption_status_name(reply->status), reply->error);
}

static void proc_close(m2u_captioner *self) {
    proc_captioner *p = (proc_captioner *)self;
    if (!p) return;
    stop_child(p, p->grace_s, NULL);
    if (p->stderr_fd >= 0) close(p->stderr_fd);
    m2u_command_free(p->argv);
    free(p->prompt);
    free(p->buf);
    free(p);
}

void m2u_process_captioner_config_default(m2u_process_captioner_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_s = 60;
    cfg->startup_timeout_s = 600;
    cfg->close_grace_s = 2;
    cfg->max_retries = 2;
    cfg->max_restarts = 3;
    cfg->max_line = 1u << 20;
}

long m2u_process_captioner_pid(const m2u_captioner *c) {
    const proc_captioner *p = (const proc_captioner *)c;
    return p->pid > 0 ? (long)p->pid : -1;
}

int m2u_process_captioner_open(const m2u_process_captioner_config *cfg, m2u_captioner **out) {
    *out = NULL;
    proc_captioner *p = calloc(1, sizeof *p);
    if (!p) return m2u_fail("process captioner: out of memory");
    p->base.name = "process";
    p->base.caption = proc_caption;
    p->base.close = proc_close;
    p->pid = -1;
    p->in_fd = p->out_fd = p->stderr_fd = -1;
    p->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 60;
    p->startup_timeout_s = cfg->startup_timeout_s > 0 ? cfg->startup_timeout_s : p->timeout_s;
    p->grace_s = cfg->close_grace_s > 0 ? cfg->close_grace_s : 2;
    p->max_retries = cfg->max_retries > 0 ? cfg->max_retries : 0;
    p->max_restarts = cfg->max_restarts > 0 ? cfg->max_restarts : 0;
    p->max_line = cfg->max_line ? cfg->max_line : (1u << 20);
    if (cfg->argv) {
        int n = 0;
        while (cfg->argv[n]) n++;
        if (n == 0) {
            free(p);
            return m2u_fail("process captioner: empty argv");
        }
        p->argv = calloc((size_t)n + 1, sizeof *p->argv);
        for (int i = 0; p->argv && i < n; i++)
            if (!(p->argv[i] = strdup(cfg->argv[i]))) {
                m2u_command_free(p->argv);
                p->argv = NULL;
            }
        if (!p->argv) {
            free(p);
            return m2u_fail("process captioner: out of memory");
        }
    } else if (m2u_command_split(cfg->command, &p->argv, NULL) != 0) {
        free(p);
        return m2u_fail_prefix("process captioner");
    }
    if (cfg->prompt && !(p->prompt = strdup(cfg->prompt))) {
        proc_close(&p->base);
        return m2u_fail("process captioner: out of memory");
    }
    if (cfg->stderr_path) {
        p->stderr_fd = open(cfg->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (p->stderr_fd < 0) {
            int e = errno;
            proc_close(&p->base);
            return m2u_fail("process captioner: cannot open stderr log %s: %s", cfg->stderr_path, strerror(e));
        }
    }
    char why[400];
    if (start_child(p, why, sizeof why) != 0) {
        proc_close(&p->base);
        return m2u_fail("process captioner: %s", why);
    }
    *out = &p->base;
    return 0;
}
