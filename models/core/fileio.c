#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1 /* madvise's MADV_DONTNEED (glibc's posix_madvise ignores POSIX_MADV_DONTNEED) */
#include "fileio.h"

#include "m2u_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int m2u_read_blocks(const char *path, void (*fn)(void *ctx, const unsigned char *block, size_t n), void *ctx) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    enum { BLOCK = 1 << 20 };
    unsigned char *buf = malloc(BLOCK);
    int rc = buf ? 0 : m2u_fail("%s: out of memory reading", path);
    while (rc == 0) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = m2u_fail("%s: read error: %s", path, strerror(errno));
        if (n <= 0) break;
        fn(ctx, buf, (size_t)n);
    }
    close(fd);
    free(buf);
    return rc;
}

int m2u_read_file(const char *path, char **data, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return m2u_fail("%s: cannot seek: %s", path, strerror(errno));
    }
    long n = ftell(fp);
    if (n < 0) {
        fclose(fp);
        return m2u_fail("%s: cannot tell size: %s", path, strerror(errno));
    }
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(fp);
        return m2u_fail("%s: out of memory reading %ld bytes", path, n);
    }
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        fclose(fp);
        return m2u_fail("%s: short read", path);
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    if (len) *len = (size_t)n;
    return 0;
}

int m2u_map_file(const char *path, m2u_mapping *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return m2u_fail("%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return m2u_fail("%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size == 0) { /* mmap of length 0 is invalid; an empty file is still a valid mapping */
        close(fd);
        return 0;
    }
#ifdef M2U_FUZZING
    /* Fuzz builds: an exact-size heap copy, so ASan reports any read past the
     * end of the file (a mapping would hide it up to the page boundary). */
    unsigned char *p = malloc(m->size);
    size_t got = 0;
    while (p && got < m->size) {
        ssize_t r = read(fd, p + got, m->size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!p || got != m->size) {
        free(p);
        m->size = 0;
        return m2u_fail("%s: cannot read", path);
    }
#else
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return m2u_fail("%s: mmap failed: %s", path, strerror(errno));
#endif
    m->data = p;
    return 0;
}

void m2u_unmap_file(m2u_mapping *m) {
#ifdef M2U_FUZZING
    if (m->data && m->size) free((void *)m->data);
#else
    if (m->data && m->size) munmap((void *)m->data, m->size);
#endif
    m->data = NULL;
    m->size = 0;
}

void m2u_mapping_drop(const m2u_mapping *m, const void *p, size_t n) {
#ifdef M2U_FUZZING
    (void)m, (void)p, (void)n;
#else
    uintptr_t lo = (uintptr_t)p, hi = lo + n, mlo = (uintptr_t)m->data, mhi = mlo + m->size;
    if (!m->data || !m->size || lo >= mhi || hi <= mlo) return;
    if (lo < mlo) lo = mlo;
    if (hi > mhi) hi = mhi;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t pg = (uintptr_t)page, a = (lo + pg - 1) / pg * pg, b = hi / pg * pg;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); /* advice: a failure loses nothing */
#endif
}

int m2u_atomic_open(m2u_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) {
        free(af->path);
        free(af->tmp_path);
        return m2u_fail("%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        free(af->path);
        free(af->tmp_path);
        return m2u_fail("%s: cannot create temp file: %s", path, strerror(e));
    }
    return 0;
}

int m2u_fsync_path(const char *path, int is_dir) {
    int fd = open(path, is_dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

char *m2u_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

int m2u_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return m2u_fail("%s: path too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return m2u_fail("%s: cannot create: %s", buf, strerror(errno));
            buf[i] = c;
        }
    return 0;
}

static void fsync_parent_dir(const char *path) {
    char *dir = m2u_path_dirname(path);
    if (dir) m2u_fsync_path(dir, 1); /* best effort: some filesystems refuse fsync on directories */
    free(dir);
}

int m2u_atomic_commit(m2u_atomic_file *af) {
    int rc = 0;
    if (fflush(af->fp) != 0 || ferror(af->fp)) rc = m2u_fail("%s: write failed: %s", af->path, strerror(errno));
    if (rc == 0 && fsync(fileno(af->fp)) != 0) rc = m2u_fail("%s: fsync failed: %s", af->path, strerror(errno));
    if (fclose(af->fp) != 0 && rc == 0) rc = m2u_fail("%s: close failed: %s", af->path, strerror(errno));
    af->fp = NULL;
    if (rc == 0 && rename(af->tmp_path, af->path) != 0) rc = m2u_fail("%s: rename failed: %s", af->path, strerror(errno));
    if (rc == 0) fsync_parent_dir(af->path);
    else unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return rc;
}

void m2u_atomic_abort(m2u_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int m2u_write_file_atomic(const char *path, const void *data, size_t len) {
    m2u_atomic_file af;
    if (m2u_atomic_open(&af, path) != 0) return -1;
    if (len && fwrite(data, 1, len, af.fp) != len) {
        m2u_atomic_abort(&af);
        return m2u_fail("%s: write failed", path);
    }
    return m2u_atomic_commit(&af);
}

char *m2u_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int m2u_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int m2u_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int m2u_rm_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : m2u_fail("%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return unlink(path) == 0 ? 0 : m2u_fail("%s: cannot remove: %s", path, strerror(errno));
    DIR *d = opendir(path);
    if (!d) return m2u_fail("%s: %s", path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = m2u_path_join(path, e->d_name);
        if (!p || m2u_rm_tree(p)) rc = -1;
        free(p);
    }
    closedir(d);
    if (rc) return -1;
    return rmdir(path) == 0 ? 0 : m2u_fail("%s: cannot remove: %s", path, strerror(errno));
}
