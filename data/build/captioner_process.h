/* External-process captioner: any program that speaks JSON lines.
 *
 * The program is started once and kept alive across requests (models take long
 * to load).  For each request m2u writes one line on its stdin:
 *   {"id":"s0001","kind":"audio","path":"/tmp/x.wav","start":0,"end":10,
 *    "analysis":{...},"caption":"...","prompt":"..."}
 * ("analysis", "caption", "prompt" only when present; "prompt" is the expanded
 * template, captioner.h) and reads one line from its stdout:
 *   {"id":"s0001","text":"A calm piano piece ..."}        success; any other
 *                                                        fields become extras
 *   {"id":"s0001","error":"cannot decode"}               refused by the model
 * The program must flush after each line, write nothing else to stdout (logs go
 * to stderr) and exit when its stdin reaches end of file.
 *
 * Failure handling (each recorded in the reply with a reason, never a hang):
 *   - no complete reply line within timeout_s (first request after a start:
 *     startup_timeout_s)                                     -> timeout
 *   - not JSON / not an object, wrong id, neither text nor error, a line longer
 *     than max_line                                          -> malformed
 *   - stdout closed / process exited or killed              -> crashed
 *   - {"error":...}                                          -> refused
 * After a timeout or a malformed line the stream can no longer be trusted to
 * pair replies with requests (a late or split reply would answer the next
 * request), so the process is killed and a new one started for the next
 * attempt.  A failed attempt is retried up to max_retries times.  More than
 * max_restarts restarts without a successful reply in between, or a program
 * that cannot be started, make the captioner unavailable (reply.fatal).
 *
 * The program runs in its own process group, so that close() and restarts kill
 * whatever it started too (a shell wrapper's children).  Because of that a
 * terminal's Ctrl-C does not reach it: it is expected to exit on end of stdin,
 * which it sees when m2u dies. */
#ifndef M2U_CAPTIONER_PROCESS_H
#define M2U_CAPTIONER_PROCESS_H

#include "captioner.h"

#include <stddef.h>

typedef struct {
    /* The program: argv (NULL-terminated; argv[0] looked up in PATH) or, when argv
     * is NULL, command split shell-like (m2u_command_split). */
    const char *command;
    const char *const *argv;
    const char *stderr_path; /* the program's stderr is appended here; NULL = ours */
    const char *prompt;      /* default prompt template when a request has none; NULL = none */
    double timeout_s;        /* per attempt (write + reply); <= 0: 60 */
    double startup_timeout_s;/* first attempt after each start (model loading); <= 0: timeout_s */
    double close_grace_s;    /* close(): wait this long for exit on EOF before SIGTERM,
                                then as long again before SIGKILL; <= 0: 2 */
    int max_retries;         /* extra attempts per request; < 0: 0 */
    int max_restarts;        /* consecutive restarts allowed (reset by a success); < 0: 0 */
    size_t max_line;         /* longest reply line accepted, bytes; 0: 1 MiB */
} m2u_process_captioner_config;

/* Sensible defaults: timeout 60 s, startup 600 s, 2 retries, 3 restarts, 1 MiB lines. */
void m2u_process_captioner_config_default(m2u_process_captioner_config *cfg);

/* Start the program now (a misspelt command fails here, not on the first sample). */
int m2u_process_captioner_open(const m2u_process_captioner_config *cfg, m2u_captioner **out);

/* Process id of the running program, or -1 when none is running (tests, logs). */
long m2u_process_captioner_pid(const m2u_captioner *c);

/* Split a command line the way a POSIX shell splits words, without expansions:
 * blanks separate words; '...' is literal; "..." keeps blanks and honours
 * \" \\ \$ \` and backslash-newline; a backslash outside quotes escapes the next
 * character.  No globbing, variables, pipes or redirections (the command is run
 * directly, never through /bin/sh).  *argv_out is a NULL-terminated malloc'ed
 * array (free with m2u_command_free); fails on an unterminated quote or no words. */
int m2u_command_split(const char *command, char ***argv_out, int *argc_out);
void m2u_command_free(char **argv);

#endif
