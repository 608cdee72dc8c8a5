#include "checkpoint.h"

#include "fileio.h"
#include "json.h" /* m2u_json_whole */
#include "m2u_error.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Complete checkpoints as sorted step numbers. */
static int list_steps(const char *root, long **steps, int *n) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(root);
    if (!d) return errno == ENOENT ? 0 : m2u_fail("%s: cannot list: %s", root, strerror(errno));
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        long s;
        char tail;
        if (sscanf(e->d_name, "step-%ld%c", &s, &tail) != 1) continue; /* skips step-N.tmp */
        char *dir = m2u_path_join(root, e->d_name), *mark = dir ? m2u_path_join(dir, "COMPLETE") : NULL;
        int ok = mark && m2u_file_exists(mark);
        free(mark);
        free(dir);
        if (!ok) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *steps = realloc(*steps, (size_t)cap * sizeof(long));
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    for (int i = 1; i < *n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
            long t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return 0;
}

static char *state_json(const m2u_train_state *st) {
    cJSON *o = cJSON_CreateObject();
    char buf[32];
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "epoch", st->epoch);
    cJSON_AddNumberToObject(o, "epoch_pos", (double)st->epoch_pos);
    /* 64-bit values as decimal strings: JSON numbers are doubles */
    snprintf(buf, sizeof buf, "%" PRIu64, st->model_seed);
    cJSON_AddStringToObject(o, "model_seed", buf);
    cJSON *r = cJSON_AddArrayToObject(o, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%" PRIu64, st->rng[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(buf));
    }
    cJSON_AddNumberToObject(o, "tokens", st->tokens);
    cJSON_AddNumberToObject(o, "last_loss", st->last_loss);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* 64-bit values are stored as decimal strings (JSON numbers are doubles) */
static int u64_of(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

static int parse_u64(const cJSON *j, uint64_t *v) { return cJSON_IsString(j) ? u64_of(j->valuestring, v) : -1; }

static int read_state(const char *path, m2u_train_state *st) {
    char *text;
    if (m2u_read_file(path, &text, NULL)) return -1;
    cJSON *o = cJSON_Parse(text);
    free(text);
    int rc = 0;
    const cJSON *step = cJSON_GetObjectItem(o, "step"), *ep = cJSON_GetObjectItem(o, "epoch"),
                *pos = cJSON_GetObjectItem(o, "epoch_pos"), *r = cJSON_GetObjectItem(o, "rng"),
                *tok = cJSON_GetObjectItem(o, "tokens"), *ll = cJSON_GetObjectItem(o, "last_loss");
    if (!o || !cJSON_IsNumber(step) || !cJSON_IsNumber(ep) || !cJSON_IsNumber(pos) || !cJSON_IsArray(r) ||
        cJSON_GetArraySize(r) != 4 || parse_u64(cJSON_GetObjectItem(o, "model_seed"), &st->model_seed))
        rc = m2u_fail("%s: malformed checkpoint state", path);
    /* counters as the writer wrote them: whole, not negative, exact in a double (a damaged or
     * edited value must not reach the casts below, where it would be undefined behaviour) */
    else if (!m2u_json_whole(step, 0, M2U_JSON_EXACT_MAX) || !m2u_json_whole(ep, 0, INT_MAX) ||
             !m2u_json_whole(pos, 0, M2U_JSON_EXACT_MAX) ||
             (cJSON_IsNumber(tok) && !(tok->valuedouble >= 0 && isfinite(tok->valuedouble))))
        rc = m2u_fail("%s: malformed checkpoint state: step, epoch and epoch_pos must be whole numbers >= 0, "
                      "tokens a number >= 0", path);
    if (!rc) {
        st->step = (long)step->valuedouble;
        st->epoch = (int)ep->valuedouble;
        st->epoch_pos = (long)pos->valuedouble;
        st->tokens = cJSON_IsNumber(tok) ? tok->valuedouble : 0;
        st->last_loss = cJSON_IsNumber(ll) ? ll->valuedouble : 0;
        for (int i = 0; i < 4 && !rc; i++)
            if (parse_u64(cJSON_GetArrayItem(r, i), &st->rng[i])) rc = m2u_fail("%s: malformed rng state", path);
    }
    cJSON_Delete(o);
    return rc;
}

/* The parameters as one safetensors file under their own names. */
static int write_params(const char *path, const m2u_param *params, int n) {
    m2u_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    char **names = calloc((size_t)n + 1, sizeof *names);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        names[i] = strdup(params[i].name);
        e[i].name = names[i];
        e[i].dtype = M2U_F32;
        e[i].ndim = params[i].ndim;
        e[i].shape[0] = params[i].shape[0];
        e[i].shape[1] = params[i].shape[1];
        e[i].data = params[i].data;
    }
    rc = m2u_st_write(path, e, n, NULL, NULL, 0);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(e);
    return rc;
}

int m2u_ckpt_save(const char *out_dir, const m2u_train_state *st, const m2u_param *params, int n_params,
                  const m2u_adamw *opt, int keep_last) {
    char root[4096], dir[4200], tmp[4300];
    snprintf(root, sizeof root, "%s/checkpoints", out_dir);
    snprintf(dir, sizeof dir, "%s/step-%08ld", root, st->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    if (m2u_mkdir_p(root)) return -1;
    m2u_rm_tree(tmp); /* a previous attempt killed mid-way */
    if (mkdir(tmp, 0755) != 0) return m2u_fail("%s: cannot create: %s", tmp, strerror(errno));
    const float *base = n_params ? params[0].data : NULL;
    char *p = m2u_path_join(tmp, "trainable.safetensors");
    int rc = write_params(p, params, n_params);
    free(p);
    if (!rc) {
        char *pm = m2u_path_join(tmp, "optimizer.safetensors");
        /* both moments in one file, "m.<name>" and "v.<name>"; they share the
           parameters' flat layout, so a parameter's offset finds its moments */
        m2u_st_entry *e = calloc(2 * (size_t)n_params + 1, sizeof *e);
        char **names = calloc(2 * (size_t)n_params + 1, sizeof *names);
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < n_params; i++) {
                int j = k * n_params + i;
                size_t len = strlen(params[i].name) + 3;
                names[j] = malloc(len);
                snprintf(names[j], len, "%c.%s", k ? 'v' : 'm', params[i].name);
                e[j].name = names[j];
                e[j].dtype = M2U_F32;
                e[j].ndim = params[i].ndim;
                e[j].shape[0] = params[i].shape[0];
                e[j].shape[1] = params[i].shape[1];
                e[j].data = (k ? opt->v : opt->m) + (params[i].data - base);
            }
        char step_buf[32];
        snprintf(step_buf, sizeof step_buf, "%ld", opt->step);
        const char *mk[1] = {"adamw_step"}, *mv[1] = {step_buf};
        rc = m2u_st_write(pm, e, 2 * n_params, mk, mv, 1);
        for (int j = 0; j < 2 * n_params; j++) free(names[j]);
        free(names);
        free(e);
        free(pm);
    }
    if (!rc) {
        char *js = state_json(st), *ps = m2u_path_join(tmp, "state.json");
        rc = m2u_write_file_atomic(ps, js, strlen(js));
        free(js);
        free(ps);
    }
    if (!rc) {
        char *pc = m2u_path_join(tmp, "COMPLETE");
        rc = m2u_write_file_atomic(pc, "ok\n", 3);
        free(pc);
    }
    if (!rc) {
        m2u_rm_tree(dir); /* re-saving the same step replaces it */
        if (rename(tmp, dir) != 0) rc = m2u_fail("%s: rename failed: %s", dir, strerror(errno));
    }
    if (rc) {
        m2u_rm_tree(tmp);
        return -1;
    }
    long *steps;
    int n;
    if (keep_last > 0 && list_steps(root, &steps, &n) == 0) {
        for (int i = 0; i + keep_last < n; i++) {
            char old[4200];
            snprintf(old, sizeof old, "%s/step-%08ld", root, steps[i]);
            m2u_rm_tree(old);
        }
        free(steps);
    }
    return 0;
}

int m2u_ckpt_latest(const char *out_dir, char **path) {
    char root[4096];
    snprintf(root, sizeof root, "%s/checkpoints", out_dir);
    long *steps;
    int n;
    *path = NULL;
    if (list_steps(root, &steps, &n)) return -1;
    if (n) {
        char buf[4200];
        snprintf(buf, sizeof buf, "%s/step-%08ld", root, steps[n - 1]);
        *path = strdup(buf);
    }
    free(steps);
    return 0;
}

static int load_into(const char *path, const char *prefix, m2u_param *params, int n_params, float *dst_buf,
                     const float *base) {
    m2u_safetensors *st;
    if (m2u_st_open(path, &st)) return -1;
    int rc = 0;
    char name[1024];
    for (int i = 0; i < n_params && !rc; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, params[i].name);
        const m2u_st_tensor *t = m2u_st_expect(st, name, params[i].ndim, params[i].shape);
        float *dst = dst_buf ? dst_buf + (params[i].data - base) : params[i].data;
        if (!t || m2u_st_read_f32(t, dst, params[i].n)) rc = -1;
    }
    m2u_st_close(st);
    return rc;
}

int m2u_ckpt_load(const char *ckpt_dir, m2u_train_state *st, m2u_param *params, int n_params, m2u_adamw *opt) {
    char *mark = m2u_path_join(ckpt_dir, "COMPLETE");
    int complete = m2u_file_exists(mark);
    free(mark);
    if (!complete) return m2u_fail("%s: checkpoint is incomplete (no COMPLETE marker)", ckpt_dir);
    char *ps = m2u_path_join(ckpt_dir, "state.json");
    int rc = read_state(ps, st);
    free(ps);
    const float *base = n_params ? params[0].data : NULL;
    char *pt = m2u_path_join(ckpt_dir, "trainable.safetensors");
    if (!rc) rc = load_into(pt, "", params, n_params, NULL, base);
    free(pt);
    char *po = m2u_path_join(ckpt_dir, "optimizer.safetensors");
    if (!rc) rc = load_into(po, "m.", params, n_params, opt->m, base);
    if (!rc) rc = load_into(po, "v.", params, n_params, opt->v, base);
    if (!rc) {
        m2u_safetensors *so;
        if (m2u_st_open(po, &so) == 0) {
            const char *s = m2u_st_metadata(so, "adamw_step");
            opt->step = st->step;
            uint64_t v;
            if (s && (s[0] == '-' || u64_of(s, &v) || v > LONG_MAX)) /* as m2u_ckpt_save writes it */
                rc = m2u_fail("%s: metadata adamw_step '%s' is not a step count", po, s);
            else if (s)
                opt->step = (long)v;
            m2u_st_close(so);
        }
    }
    free(po);
    return rc;
}
