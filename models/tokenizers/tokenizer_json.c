#include "tokenizer_json.h"

#include "fileio.h"
#include "m2u_error.h"
#include "utf8_util.h"

#include <stdlib.h>
#include <string.h>

int m2u_tj_read(const char *path, cJSON **root) {
    *root = NULL;
    char *data;
    size_t len;
    if (m2u_read_file(path, &data, &len)) return -1;
    /* As tokenizers' from_file (the file is read into a Rust String): a tokenizer.json
     * that is not UTF-8 is refused; cJSON alone would pass invalid bytes into the
     * vocabulary and normalizer strings, which the encoders walk as UTF-8. */
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)data, len);
    if (bad != len) {
        free(data);
        return m2u_fail("%s: not UTF-8 (invalid byte at offset %zu)", path, bad);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    long at = j ? 0 : end ? (long)(end - data) : -1;
    free(data);
    if (!j) return m2u_fail("%s: malformed JSON near byte %ld", path, at);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return m2u_fail("%s: not a JSON object", path);
    }
    *root = j;
    return 0;
}

int m2u_tj_load(const char *path, size_t size, int (*parse)(void *model, const cJSON *root),
                void (*free_model)(void *model), void **out) {
    *out = NULL;
    cJSON *root;
    if (m2u_tj_read(path, &root)) return -1;
    void *model = calloc(1, size);
    if (!model) {
        cJSON_Delete(root);
        return m2u_fail("%s: out of memory", path);
    }
    int rc = parse(model, root);
    cJSON_Delete(root);
    if (rc) {
        free_model(model);
        return m2u_fail_prefix("%s", path);
    }
    *out = model;
    return 0;
}

int m2u_tj_check_root(const cJSON *root) {
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!m2u_tj_null(ver) && !(cJSON_IsString(ver) && !strcmp(ver->valuestring, "1.0")))
        return m2u_fail("version: only \"1.0\" is supported");
    if (!m2u_tj_null(cJSON_GetObjectItemCaseSensitive(root, "truncation")))
        return m2u_fail("truncation: must be null (the caller truncates)");
    if (!m2u_tj_null(cJSON_GetObjectItemCaseSensitive(root, "padding")))
        return m2u_fail("padding: must be null (the caller pads)");
    return 0;
}

bool m2u_tj_null(const cJSON *j) { return !j || cJSON_IsNull(j); }

const char *m2u_tj_type(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

int m2u_tj_bool(const cJSON *obj, const char *key, const char *where, bool *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsBool(j)) return m2u_fail("%s.%s must be true or false", where, key);
    *out = cJSON_IsTrue(j);
    return 0;
}

int m2u_tj_str(const cJSON *obj, const char *key, const char *where, const char **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsString(j)) return m2u_fail("%s.%s must be a string", where, key);
    *out = j->valuestring;
    return 0;
}

int m2u_tj_int(const cJSON *obj, const char *key, const char *where, int min, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= min && j->valuedouble <= 2147483647.0) ||
        j->valuedouble != (double)(int)j->valuedouble)
        return m2u_fail("%s.%s must be an integer >= %d", where, key, min);
    *out = (int)j->valuedouble;
    return 0;
}

int m2u_tj_parse_added(const cJSON *list, m2u_tj_model_id model_id, const void *ctx, int32_t n_model,
                       bool normalized_default, m2u_tj_added **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (m2u_tj_null(list)) return 0;
    if (!cJSON_IsArray(list)) return m2u_fail("added_tokens must be an array");
    int n = cJSON_GetArraySize(list), k = 0;
    m2u_tj_added *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return m2u_fail("out of memory (added tokens)");
    int64_t max_added = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        m2u_tj_added *t = &v[k];
        if (!cJSON_IsString(c)) {
            free(v);
            return m2u_fail("added_tokens[%d].content must be a string", k);
        }
        *t = (m2u_tj_added){.content = c->valuestring, .len = strlen(c->valuestring),
                               .normalized = normalized_default};
        if (m2u_tj_bool(e, "special", "added_tokens[]", &t->special) ||
            m2u_tj_bool(e, "single_word", "added_tokens[]", &t->single_word) ||
            m2u_tj_bool(e, "lstrip", "added_tokens[]", &t->lstrip) ||
            m2u_tj_bool(e, "rstrip", "added_tokens[]", &t->rstrip) ||
            m2u_tj_bool(e, "normalized", "added_tokens[]", &t->normalized)) {
            free(v);
            return -1;
        }
        if (!cJSON_IsNumber(id) || !(id->valuedouble >= 0 && id->valuedouble < (double)(1 << 26)) ||
            id->valuedouble != (double)(int32_t)id->valuedouble) {
            int rc = m2u_fail("added_tokens[%d] \"%s\": id must be a non-negative integer below %d", k, c->valuestring,
                              1 << 26);
            free(v);
            return rc;
        }
        t->id = (int32_t)id->valuedouble;
        if (t->len) {
            int32_t want = -1;
            const char *why = "the id of its earlier entry";
            for (int j = 0; j < k && want < 0; j++)
                if (v[j].len == t->len && !memcmp(v[j].content, t->content, t->len)) want = v[j].id;
            if (want < 0) {
                want = model_id(ctx, t->content, t->len);
                why = "its id in model.vocab";
            }
            if (want < 0) {
                want = max_added >= n_model ? (int32_t)max_added + 1 : n_model;
                why = "the next free id after model.vocab and the added tokens before it";
            }
            if (t->id != want) {
                int rc = m2u_fail("added_tokens[%d] \"%s\": declared id %d, but the token gets id %d (%s); "
                                  "refusing to renumber it",
                                  k, t->content, (int)t->id, (int)want, why);
                free(v);
                return rc;
            }
            if (want > max_added) max_added = want;
        }
        k++;
    }
    *out = v;
    *n_out = k;
    return 0;
}

static int tpl_push(int32_t **v, int *n, int32_t x) {
    int32_t *t = realloc(*v, (size_t)(*n + 1) * sizeof *t);
    if (!t) return m2u_fail("out of memory (template)");
    *v = t;
    t[(*n)++] = x;
    return 0;
}

int m2u_tj_parse_template(const cJSON *p, int64_t id_limit, int32_t **tpl, int *n_tpl, int *n_seq) {
    *tpl = NULL;
    *n_tpl = *n_seq = 0;
    const char *type = m2u_tj_type(p);
    if (!type || strcmp(type, "TemplateProcessing"))
        return m2u_fail("post_processor: type \"%s\" is not supported (only null or TemplateProcessing)",
                        type ? type : "?");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return m2u_fail("post_processor.single must be an array of pieces");
    int32_t *v = NULL;
    int n = 0, rc = 0;
    const cJSON *piece;
    cJSON_ArrayForEach(piece, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(piece, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        if (seq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A")) {
                rc = m2u_fail("post_processor.single: a single template can only hold Sequence A");
                break;
            }
            if ((rc = tpl_push(&v, &n, M2U_TJ_TPL_SEQUENCE))) break;
            (*n_seq)++;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        if (!sp || !cJSON_IsString(name)) {
            rc = m2u_fail("post_processor.single: pieces must be Sequence or SpecialToken");
            break;
        }
        const cJSON *ids =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(specials, name->valuestring), "ids");
        if (!cJSON_IsArray(ids) || !cJSON_GetArraySize(ids)) {
            rc = m2u_fail("post_processor.special_tokens: no ids for special token \"%s\"", name->valuestring);
            break;
        }
        const cJSON *idj;
        cJSON_ArrayForEach(idj, ids) {
            if (!cJSON_IsNumber(idj) || !(idj->valuedouble >= 0 && idj->valuedouble < (double)id_limit) ||
                idj->valuedouble != (double)(int64_t)idj->valuedouble) {
                rc = m2u_fail("post_processor.special_tokens[\"%s\"].ids: id out of range or not an integer",
                              name->valuestring);
                break;
            }
            if ((rc = tpl_push(&v, &n, (int32_t)idj->valuedouble))) break;
        }
        if (rc) break;
    }
    if (rc) {
        free(v);
        *n_seq = 0;
        return -1;
    }
    *tpl = v;
    *n_tpl = n;
    return 0;
}

int m2u_tj_char(const cJSON *obj, const char *key, const char *where, uint32_t *cp) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    size_t n = cJSON_IsString(j) ? strlen(j->valuestring) : 0;
    const unsigned char *s = n ? (const unsigned char *)j->valuestring : NULL;
    if (!n || m2u_utf8_valid_prefix(s, n) != n || (size_t)m2u_utf8_decode(s, cp) != n)
        return m2u_fail("%s.%s must be a one-character string", where, key);
    return 0;
}

int m2u_tj_parse_metaspace(const cJSON *obj, const char *where, m2u_tj_metaspace *out) {
    *out = (m2u_tj_metaspace){.scheme = M2U_TJ_PREPEND_ALWAYS, .split = true}; /* the reference's defaults */
    if (m2u_tj_char(obj, "replacement", where, &out->cp)) return -1;
    out->rep_len = m2u_utf8_encode(out->cp, out->rep);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(obj, "prepend_scheme");
    if (!m2u_tj_null(ps)) {
        if (!cJSON_IsString(ps)) return m2u_fail("%s.prepend_scheme must be a string", where);
        if (!strcmp(ps->valuestring, "always")) out->scheme = M2U_TJ_PREPEND_ALWAYS;
        else if (!strcmp(ps->valuestring, "first")) out->scheme = M2U_TJ_PREPEND_FIRST;
        else if (!strcmp(ps->valuestring, "never")) out->scheme = M2U_TJ_PREPEND_NEVER;
        else return m2u_fail("%s.prepend_scheme \"%s\" is not supported", where, ps->valuestring);
    }
    bool aps = true; /* older files say add_prefix_space instead; false means "never" */
    if (m2u_tj_bool(obj, "add_prefix_space", where, &aps)) return -1;
    if (!aps) {
        if (!m2u_tj_null(ps) && out->scheme != M2U_TJ_PREPEND_NEVER)
            return m2u_fail("%s: add_prefix_space does not match prepend_scheme", where);
        out->scheme = M2U_TJ_PREPEND_NEVER;
    }
    return m2u_tj_bool(obj, "split", where, &out->split);
}

int m2u_tj_each_part(const cJSON *obj, const char *where, const char *list_key, const char *child_where,
                     m2u_tj_part_fn one, void *ctx) {
    const char *type = m2u_tj_type(obj);
    if (!type) return m2u_fail("%s: missing \"type\"", where);
    if (strcmp(type, "Sequence")) return one(ctx, obj, type, where);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, list_key);
    if (!cJSON_IsArray(list)) return m2u_fail("%s.%s must be an array", where, list_key);
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (m2u_tj_each_part(it, child_where, list_key, child_where, one, ctx)) return -1;
    }
    return 0;
}



char *m2u_tj_dup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int m2u_tj_index(const cJSON *j, int64_t max, int32_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v < (double)max) || v != (double)(int64_t)v) return -1;
    *out = (int32_t)v;
    return 0;
}

int m2u_tj_apply_template(const int32_t *tpl, int n_tpl, const int32_t *seq, size_t n_seq, m2u_tj_ids *out) {
    static const int32_t alone = M2U_TJ_TPL_SEQUENCE;
    if (!tpl) tpl = &alone, n_tpl = 1;
    for (int i = 0; i < n_tpl; i++) {
        if (tpl[i] != M2U_TJ_TPL_SEQUENCE) {
            if (m2u_tj_ids_push(out, tpl[i])) return -1;
            continue;
        }
        for (size_t k = 0; k < n_seq; k++)
            if (m2u_tj_ids_push(out, seq[k])) return -1;
    }
    return 0;
}

/* Replace's pattern: {"String": s}, or {"Regex": r} where r is a literal (metacharacters
 * escaped) or one character followed by +, {m}, {m,} or {m,n}. */
static int parse_pattern(m2u_tj_replace *op, const cJSON *n, const char *where, bool allow_regex) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, "pattern");
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(p, "String");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(p, "Regex");
    if (cJSON_IsString(str)) {
        if (!str->valuestring[0]) return m2u_fail("%s.pattern.String must not be empty", where);
        op->run = false;
        op->pat_len = strlen(str->valuestring);
        op->pat = m2u_tj_dup(str->valuestring, op->pat_len);
        return op->pat ? 0 : m2u_fail("out of memory");
    }
    if (cJSON_IsString(re) && !allow_regex)
        return m2u_fail("%s.pattern: Regex patterns are not supported (only String)", where);
    if (!cJSON_IsString(re)) return m2u_fail("%s.pattern must be {\"String\": ...} or {\"Regex\": ...}", where);
    const char *r = re->valuestring;
    static const char meta[] = "\\.+*?()|[]{}^$";
    char lit[256];
    size_t nl = 0, n_chars = 0, i = 0, len = strlen(r);
    while (i < len && !strchr("+*?{", r[i])) {
        if (strchr("()|[]^$.", r[i])) break;
        size_t cl;
        const char *src = r + i;
        if (r[i] == '\\') {
            if (i + 1 >= len || !strchr(meta, r[i + 1]) || r[i + 1] == '\0') break;
            src = r + i + 1;
            cl = 1;
            i += 2;
        } else {
            cl = (size_t)m2u_utf8_len((unsigned char)r[i]);
            i += cl;
        }
        if (nl + cl >= sizeof lit) break;
        memcpy(lit + nl, src, cl);
        nl += cl;
        n_chars++;
    }
    op->rep_min = op->rep_max = 0;
    if (i == len && nl > 0) {
        op->run = false;
    } else if (n_chars == 1 && i < len) {
        long lo = 0, hi = 0;
        char *end;
        if (r[i] == '+' && i + 1 == len) {
            lo = 1;
        } else if (r[i] == '{') {
            lo = strtol(r + i + 1, &end, 10);
            if (end == r + i + 1) goto unsupported;
            if (*end == '}') {
                hi = lo;
            } else if (*end == ',' && end[1] == '}') {
                hi = 0;
                end++;
            } else if (*end == ',') {
                const char *s2 = end + 1;
                hi = strtol(s2, &end, 10);
                if (end == s2 || *end != '}' || hi < lo) goto unsupported;
            } else {
                goto unsupported;
            }
            if ((size_t)(end - r) + 1 != len) goto unsupported;
        } else {
            goto unsupported;
        }
        if (lo < 1 || lo > 1000000 || hi > 1000000) goto unsupported;
        op->run = true;
        op->rep_min = (int)lo;
        op->rep_max = (int)hi;
    } else {
        goto unsupported;
    }
    op->pat_len = nl;
    op->pat = m2u_tj_dup(lit, nl);
    return op->pat ? 0 : m2u_fail("out of memory");
unsupported:
    return m2u_fail("%s.pattern: Regex \"%s\" is not supported (only a literal, or one character with +, {m}, "
                    "{m,} or {m,n})",
                    where, r);
}

int m2u_tj_parse_replace(const cJSON *obj, const char *where, bool allow_regex, m2u_tj_replace *out) {
    *out = (m2u_tj_replace){0};
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "content");
    if (!cJSON_IsString(c)) return m2u_fail("%s.content must be a string", where);
    if (parse_pattern(out, obj, where, allow_regex)) {
        m2u_tj_replace_free(out);
        return -1;
    }
    out->content_len = strlen(c->valuestring);
    out->content = m2u_tj_dup(c->valuestring, out->content_len);
    if (!out->content) {
        m2u_tj_replace_free(out);
        return m2u_fail("out of memory");
    }
    return 0;
}

void m2u_tj_replace_free(m2u_tj_replace *r) {
    free(r->pat);
    free(r->content);
    *r = (m2u_tj_replace){0};
}

int m2u_tj_replace_apply(const m2u_tj_replace *op, const char *s, size_t n, m2u_strbuf *out) {
    size_t i = 0, last = 0;
    if (!op->run) {
        while (i + op->pat_len <= n) {
            if (memcmp(s + i, op->pat, op->pat_len) == 0) {
                if (m2u_tj_put(out, s + last, i - last) || m2u_tj_put(out, op->content, op->content_len)) return -1;
                i += op->pat_len;
                last = i;
            } else {
                i++;
            }
        }
    } else { /* one character (pat) repeated: greedy, leftmost, non-overlapping */
        while (i < n) {
            size_t j = i;
            int reps = 0;
            while (j + op->pat_len <= n && memcmp(s + j, op->pat, op->pat_len) == 0 &&
                   (op->rep_max == 0 || reps < op->rep_max)) {
                j += op->pat_len;
                reps++;
            }
            if (reps >= op->rep_min && reps > 0) {
                if (m2u_tj_put(out, s + last, i - last) || m2u_tj_put(out, op->content, op->content_len)) return -1;
                i = j;
                last = j;
            } else {
                i += (size_t)m2u_utf8_len((unsigned char)s[i]);
            }
        }
    }
    return m2u_tj_put(out, s + last, n - last);
}


int m2u_tj_parse_cls_sep(const cJSON *p, int64_t id_limit, int32_t **tpl, int *n_tpl) {
    const char *type = m2u_tj_type(p);
    if (!type || (strcmp(type, "BertProcessing") && strcmp(type, "RobertaProcessing"))) return 0;
    static const char *const keys[2] = {"cls", "sep"};
    int32_t id[2];
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[k]);
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(cJSON_GetArrayItem(v, 0)) ||
            m2u_tj_index(cJSON_GetArrayItem(v, 1), id_limit, &id[k]))
            return m2u_fail("post_processor.%s must be [token, id] with an id in [0, %lld)", keys[k],
                            (long long)id_limit);
    }
    *tpl = malloc(3 * sizeof **tpl);
    if (!*tpl) return m2u_fail("out of memory");
    (*tpl)[0] = id[0], (*tpl)[1] = M2U_TJ_TPL_SEQUENCE, (*tpl)[2] = id[1];
    *n_tpl = 3;
    return 1;
}
