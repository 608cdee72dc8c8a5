/* JSON helpers over cJSON for the ecosystem's config files (config.json,
 * preprocessor_config.json, tokenizer.json, adapter_config.json): loading with
 * duplicate-key refusal and typed getters whose errors name the origin and key. */
#ifndef M2U_JSON_H
#define M2U_JSON_H

#include <cjson/cJSON.h>

/* ---- JSON configs (config.json, preprocessor_config.json) ---- */

/* Read and parse `path` into a JSON object; a missing file is an error unless
 * optional (then *root = NULL and 0 is returned).  Duplicated keys are refused
 * (Python's json keeps the last, cJSON the first). */
int m2u_json_load(const char *path, int optional, cJSON **root);

/* Typed getters: an absent (or null) key gives `def` unless `required`; a wrong
 * type or range fails with "<origin>: key '<key>' ...". */
int m2u_json_int(const cJSON *o, const char *origin, const char *key, int required, int def, int min, int *out);
int m2u_json_num(const cJSON *o, const char *origin, const char *key, int required, double def, double *out);
int m2u_json_bool(const cJSON *o, const char *origin, const char *key, int def, int *out);
/* String value (borrowed from o), or def when absent. */
int m2u_json_str(const cJSON *o, const char *origin, const char *key, const char *def, const char **out);
/* An integer, or a list of 1..max integers >= min.  An integer is returned as a
 * list of `max` copies when `broadcast`, else as a one-element list. *n gets the count. */
int m2u_json_ints(const cJSON *o, const char *origin, const char *key, int max, int min, int broadcast, int *vals,
                  int *n);
/* 1 when v is a number with no fraction in [lo, hi]: what may be cast to an integer
 * type of that range (a value outside it would be undefined behaviour).  Counters that
 * m2u writes as JSON numbers are exact up to M2U_JSON_EXACT_MAX (2^53). */
#define M2U_JSON_EXACT_MAX 9007199254740992.0
int m2u_json_whole(const cJSON *v, double lo, double hi);
/* A number or a list of exactly n numbers (a number is repeated n times); absent -> def[0..n). */
int m2u_json_nums(const cJSON *o, const char *origin, const char *key, int n, const double *def, double *vals);

#endif
