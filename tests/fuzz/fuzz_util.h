/* Shared helpers of the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Most m2u parsers take a path, so a target writes its input to a file under
 * /dev/shm (tmpfs: no disk I/O) in a folder of its own process, then calls the
 * parser.  fuzz_quiet_begin/end wrap the call: the library must never print
 * (it reports through m2u_fail), so anything it writes to stdout or stderr
 * during the call is a finding and aborts the run with the text it printed.
 * Exiting is caught by libFuzzer itself ("fuzz target exited"). */
#ifndef M2U_FUZZ_UTIL_H
#define M2U_FUZZ_UTIL_H

#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir_[256];

static inline void fuzz_cleanup_(void) {
    char cmd[300];
    if (!fuzz_dir_[0]) return;
    /* only our own folder, made by fuzz_dir() below */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_);
    if (system(cmd) != 0) { /* nothing more to do */ }
}

/* The per-process scratch folder (created on first use). */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/m2u-fuzz-%d", base, (int)getpid());
        if (mkdir(fuzz_dir_, 0700) != 0 && access(fuzz_dir_, W_OK) != 0) {
            perror(fuzz_dir_);
            abort();
        }
        atexit(fuzz_cleanup_);
    }
    return fuzz_dir_;
}

/* Path of `name` inside the scratch folder (static buffer, one per slot 0..3). */
static inline const char *fuzz_path(int slot, const char *name) {
    static char buf[4][512];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", fuzz_dir(), name);
    return buf[slot];
}

/* Write data to the scratch file `name`; returns its path. */
static inline const char *fuzz_write(int slot, const char *name, const void *data, size_t n) {
    const char *p = fuzz_path(slot, name);
    FILE *fp = fopen(p, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n) || fclose(fp) != 0) {
        perror(p);
        abort();
    }
    return p;
}

/* ---- "the library must not print" ---- */
static int fuzz_saved_fd_[2] = {-1, -1};
static int fuzz_capture_fd_ = -1;
static int fuzz_report_fd_ = 2;

/* Call from LLVMFuzzerInitialize, before libFuzzer's -close_fd_mask replaces
 * fd 2 with /dev/null: keeps the real stderr for sanitizer reports and our own
 * findings, since fds 1 and 2 are redirected during every call. */
static inline void fuzz_init(void) {
    int fd = dup(2);
    if (fd >= 0) {
        fuzz_report_fd_ = fd;
        __sanitizer_set_report_fd((void *)(intptr_t)fd);
    }
    fuzz_dir();
}

#ifndef FUZZ_OWN_INIT
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}
#endif

static inline void fuzz_quiet_begin(void) {
    if (fuzz_capture_fd_ < 0) {
        const char *p = fuzz_path(3, "printed");
        fuzz_capture_fd_ = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fuzz_capture_fd_ < 0) abort();
    }
    if (ftruncate(fuzz_capture_fd_, 0) != 0 || lseek(fuzz_capture_fd_, 0, SEEK_SET) != 0) abort();
    fflush(stdout);
    fflush(stderr);
    for (int f = 1; f <= 2; f++) {
        fuzz_saved_fd_[f - 1] = dup(f);
        if (fuzz_saved_fd_[f - 1] < 0 || dup2(fuzz_capture_fd_, f) < 0) abort();
    }
}

/* 1 when everything captured is a line that a library below FFmpeg writes to
 * stderr itself, which no caller can turn off: Debian 12's libjxl 0.7 (FFmpeg's
 * only JPEG XL decoder) traces every failure on a damaged file as
 * "./lib/jxl/<file>:<line>: ...".  Anything else, m2u's or FFmpeg's (which m2u
 * routes through its log callback), is still a finding. */
static inline int fuzz_only_foreign_(off_t n) {
    if (n > (1 << 20)) return 0;
    char *text = malloc((size_t)n + 1);
    if (!text) abort();
    ssize_t k = pread(fuzz_capture_fd_, text, (size_t)n, 0);
    if (k != (ssize_t)n) abort();
    text[n] = '\0';
    int foreign = 1;
    for (char *line = text; *line && foreign;) {
        char *nl = strchr(line, '\n');
        foreign = *line == '\n' || strncmp(line, "./lib/jxl/", 10) == 0; /* its lines come with blank ones */
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return foreign;
}

static inline void fuzz_quiet_end(void) {
    fflush(stdout);
    fflush(stderr);
    for (int f = 1; f <= 2; f++) {
        if (dup2(fuzz_saved_fd_[f - 1], f) < 0) abort();
        close(fuzz_saved_fd_[f - 1]);
    }
    off_t n = lseek(fuzz_capture_fd_, 0, SEEK_END);
    if (n > 0 && !fuzz_only_foreign_(n)) {
        char text[512];
        ssize_t k = pread(fuzz_capture_fd_, text, sizeof text - 1, 0);
        text[k > 0 ? k : 0] = '\0';
        dprintf(fuzz_report_fd_, "m2u fuzz: the library printed %lld bytes during the call:\n%s\n", (long long)n, text);
        abort();
    }
}

#endif
