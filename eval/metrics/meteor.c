/* METEOR 1.5 as pycocoevalcap runs it (java -jar meteor-1.5.jar - - -stdio
 * -l en -norm), re-implemented from the Meteor 1.5 sources
 * (cmu-mtlab/meteor: Normalizer, Aligner, Stage, PartialAlignment,
 * ExactMatcher, StemMatcher, SynonymMatcher, ParaphraseMatcher, MeteorScorer,
 * MeteorStats):
 *
 *   - normalisation: Meteor's Normalizer.normalizeLine for English with
 *     punctuation kept (-norm), then lower-casing;
 *   - matching, each a module with its own weight, in the order exact (equal
 *     words), stem (different words, equal Snowball English stems), synonym
 *     (different words sharing a WordNet synset, meteor_data.c) and
 *     paraphrase (phrase of one line whose paraphrase is in the other, both
 *     directions, multi-word); words and stems are compared by
 *     String.hashCode as Meteor does;
 *   - alignment: Meteor's beam search (beam 40) over matches that may span
 *     several words, with its comparator (more weighted matches, counted in
 *     ints as the Java code truncates them, then fewer chunks, then smaller
 *     distance) and its quirks (the distance of a new match is added to the
 *     path that skips it), on a stable sort;
 *   - scoring: weighted precision / recall with content/function words
 *     (delta), F-mean (alpha), fragmentation penalty gamma * frag^beta,
 *     the best reference per segment, corpus score from summed statistics. */
#include "caption_metrics.h"
#include "meteor_data.h"

#include "m2u_error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Snowball English (Porter2) stemmer, as org.tartarus.snowball.ext.englishStemmer */

static int sb_v(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y'; }

typedef struct {
    char *w; /* working word, room for +2 chars */
    int n;
    int p1, p2;
} sbw;

static int ends(const sbw *s, const char *suf) {
    int l = (int)strlen(suf);
    return s->n >= l && memcmp(s->w + s->n - l, suf, (size_t)l) == 0;
}

static void set_to(sbw *s, int at, const char *rep) { /* replace w[at..n) by rep */
    int l = (int)strlen(rep);
    memcpy(s->w + at, rep, (size_t)l);
    s->n = at + l;
    s->w[s->n] = 0;
}

/* shortv tested on the chars before position `end` */
static int shortv(const sbw *s, int end) {
    const char *w = s->w;
    if (end >= 3 && !sb_v(w[end - 1]) && w[end - 1] != 'w' && w[end - 1] != 'x' && w[end - 1] != 'Y' &&
        sb_v(w[end - 2]) && !sb_v(w[end - 3]))
        return 1;
    if (end == 2 && !sb_v(w[1]) && sb_v(w[0])) return 1;
    return 0;
}

/* longest suffix among a list; returns its index or -1 */
static int among(const sbw *s, const char *const *list, int n) {
    int best = -1, bl = -1;
    for (int i = 0; i < n; i++) {
        int l = (int)strlen(list[i]);
        if (l > bl && ends(s, list[i])) { best = i; bl = l; }
    }
    return best;
}

static int has_vowel(const char *w, int from, int to) {
    for (int i = from; i < to; i++)
        if (sb_v(w[i])) return 1;
    return 0;
}

char *m2u_snowball_english(const char *word) {
    size_t len = strlen(word);
    char *out = malloc(len + 4);
    if (!out) return NULL;
    static const char *const exc1[][2] = {
        {"skis", "ski"}, {"skies", "sky"}, {"dying", "die"}, {"lying", "lie"}, {"tying", "tie"},
        {"idly", "idl"}, {"gently", "gentl"}, {"ugly", "ugli"}, {"early", "earli"}, {"only", "onli"},
        {"singly", "singl"}, {"sky", "sky"}, {"news", "news"}, {"howe", "howe"}, {"atlas", "atlas"},
        {"cosmos", "cosmos"}, {"bias", "bias"}, {"andes", "andes"}};
    for (size_t i = 0; i < sizeof exc1 / sizeof exc1[0]; i++)
        if (strcmp(word, exc1[i][0]) == 0) {
            strcpy(out, exc1[i][1]);
            return out;
        }
    memcpy(out, word, len + 1);
    if (len < 3) return out;
    sbw s = {out, (int)len, 0, 0};
    /* prelude */
    if (s.w[0] == '\'') {
        memmove(s.w, s.w + 1, (size_t)s.n);
        s.n--;
    }
    if (s.n > 0 && s.w[0] == 'y') s.w[0] = 'Y';
    for (int i = 1; i < s.n; i++)
        if (s.w[i] == 'y' && sb_v(s.w[i - 1])) s.w[i] = 'Y';
    /* mark_regions */
    s.p1 = s.p2 = s.n;
    {
        int i = -1;
        if (strncmp(s.w, "gener", 5) == 0) i = 5;
        else if (strncmp(s.w, "commun", 6) == 0) i = 6;
        else if (strncmp(s.w, "arsen", 5) == 0) i = 5;
        else {
            int k = 0;
            while (k < s.n && !sb_v(s.w[k])) k++;
            if (k < s.n) {
                k++;
                while (k < s.n && sb_v(s.w[k])) k++;
                if (k < s.n) i = k + 1;
            }
        }
        if (i >= 0) {
            s.p1 = i;
            int k = i;
            while (k < s.n && !sb_v(s.w[k])) k++;
            if (k < s.n) {
                k++;
                while (k < s.n && sb_v(s.w[k])) k++;
                if (k < s.n) s.p2 = k + 1;
            }
        }
    }
    /* Step 0 (start of Step_1a): 's' 's '  */
    {
        static const char *const l0[] = {"'", "'s'", "'s"};
        int a = among(&s, l0, 3);
        if (a >= 0) set_to(&s, s.n - (int)strlen(l0[a]), "");
    }
    /* Step 1a */
    {
        static const char *const l1[] = {"sses", "ied", "ies", "s", "us", "ss"};
        int a = among(&s, l1, 6);
        if (a == 0) set_to(&s, s.n - 4, "ss");
        else if (a == 1 || a == 2) {
            int at = s.n - 3;
            set_to(&s, at, at >= 2 ? "i" : "ie");
        } else if (a == 3) {
            int before = s.n - 1; /* position of s */
            if (before >= 1 && has_vowel(s.w, 0, before - 1)) set_to(&s, before, "");
        }
    }
    /* exception2 */
    {
        static const char *const e2[] = {"inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed"};
        for (int i = 0; i < 8; i++)
            if ((int)strlen(e2[i]) == s.n && memcmp(s.w, e2[i], (size_t)s.n) == 0) goto postlude;
    }
    /* Step 1b */
    {
        static const char *const l1b[] = {"eed", "eedly", "ed", "edly", "ing", "ingly"};
        int a = among(&s, l1b, 6);
        if (a == 0 || a == 1) {
            int at = s.n - (int)strlen(l1b[a]);
            if (at >= s.p1) set_to(&s, at, "ee");
        } else if (a >= 2) {
            int at = s.n - (int)strlen(l1b[a]);
            if (has_vowel(s.w, 0, at)) {
                set_to(&s, at, "");
                if (ends(&s, "at") || ends(&s, "bl") || ends(&s, "iz")) set_to(&s, s.n, "e");
                else if (ends(&s, "bb") || ends(&s, "dd") || ends(&s, "ff") || ends(&s, "gg") || ends(&s, "mm") ||
                         ends(&s, "nn") || ends(&s, "pp") || ends(&s, "rr") || ends(&s, "tt"))
                    set_to(&s, s.n - 1, "");
                else if (s.n == s.p1 && shortv(&s, s.n)) set_to(&s, s.n, "e");
            }
        }
    }
    /* Step 1c */
    if (s.n >= 3 && (s.w[s.n - 1] == 'y' || s.w[s.n - 1] == 'Y') && !sb_v(s.w[s.n - 2])) s.w[s.n - 1] = 'i';
    /* Step 2 */
    {
        static const char *const l2[] = {"tional", "enci", "anci", "abli", "entli", "izer", "ization", "ational",
                                         "ation", "ator", "alism", "aliti", "alli", "fulness", "ousli", "ousness",
                                         "iveness", "iviti", "biliti", "bli", "ogi", "fulli", "lessli", "li"};
        static const char *const r2[] = {"tion", "ence", "ance", "able", "ent", "ize", "ize", "ate",
                                         "ate", "ate", "al", "al", "al", "ful", "ous", "ous",
                                         "ive", "ive", "ble", "ble", "og", "ful", "less", ""};
        int a = among(&s, l2, 24);
        if (a >= 0) {
            int at = s.n - (int)strlen(l2[a]);
            if (at >= s.p1) {
                if (a == 20) { /* ogi: preceded by l */
                    if (at >= 1 && s.w[at - 1] == 'l') set_to(&s, at, "og");
                } else if (a == 23) { /* li: valid li-ending */
                    if (at >= 1 && strchr("cdeghkmnrt", s.w[at - 1])) set_to(&s, at, "");
                } else
                    set_to(&s, at, r2[a]);
            }
        }
    }
    /* Step 3 */
    {
        static const char *const l3[] = {"tional", "ational", "alize", "icate", "iciti", "ical", "ful", "ness", "ative"};
        static const char *const r3[] = {"tion", "ate", "al", "ic", "ic", "ic", "", "", ""};
        int a = among(&s, l3, 9);
        if (a >= 0) {
            int at = s.n - (int)strlen(l3[a]);
            if (at >= s.p1) {
                if (a == 8) {
                    if (at >= s.p2) set_to(&s, at, "");
                } else
                    set_to(&s, at, r3[a]);
            }
        }
    }
    /* Step 4 */
    {
        static const char *const l4[] = {"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment",
                                         "ent", "ism", "ate", "iti", "ous", "ive", "ize", "ion"};
        int a = among(&s, l4, 18);
        if (a >= 0) {
            int at = s.n - (int)strlen(l4[a]);
            if (at >= s.p2) {
                if (a == 17) {
                    if (at >= 1 && (s.w[at - 1] == 's' || s.w[at - 1] == 't')) set_to(&s, at, "");
                } else
                    set_to(&s, at, "");
            }
        }
    }
    /* Step 5 */
    if (s.n >= 1 && s.w[s.n - 1] == 'e') {
        int at = s.n - 1;
        if (at >= s.p2 || (at >= s.p1 && !shortv(&s, at))) set_to(&s, at, "");
    } else if (s.n >= 1 && s.w[s.n - 1] == 'l') {
        int at = s.n - 1;
        if (at >= s.p2 && at >= 1 && s.w[at - 1] == 'l') set_to(&s, at, "");
    }
postlude:
    for (int i = 0; i < s.n; i++)
        if (s.w[i] == 'Y') s.w[i] = 'y';
    return out;
}

/* ------------------------------------------------------------------ */
/* Meteor's English normaliser (Normalizer.normalizeLine, punctuation kept) */

typedef struct {
    uint32_t *c;
    size_t n, cap;
} ustr;

static int us_push(ustr *u, uint32_t c) {
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        uint32_t *p = realloc(u->c, cap * sizeof *p);
        if (!p) return -1;
        u->c = p;
        u->cap = cap;
    }
    u->c[u->n++] = c;
    return 0;
}

static int us_cat(ustr *u, const char *ascii) {
    for (; *ascii; ascii++)
        if (us_push(u, (unsigned char)*ascii)) return -1;
    return 0;
}

static void us_swap(ustr *a, ustr *b) {
    ustr t = *a;
    *a = *b;
    *b = t;
}

static int is_alpha_m(uint32_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == 0x160 || c == 0x17D || c == 0x161 || c == 0x17E ||
           c == 0x178 || (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x17E) ||
           (c >= 0x400 && c <= 0x4FF) || (c >= 0x500 && c <= 0x527) || (c >= 0xA640 && c <= 0xA66E) ||
           (c >= 0xA67E && c <= 0xA697) || (c >= 0x1D00 && c <= 0x1D7F);
}
static int is_digit_m(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_alnum_m(uint32_t c) { return is_alpha_m(c) || is_digit_m(c); }
static int is_jspace(uint32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r'; }

static int us_match_lit(const ustr *u, size_t i, const char *lit) {
    size_t l = strlen(lit);
    if (i + l > u->n) return 0;
    for (size_t k = 0; k < l; k++)
        if (u->c[i + k] != (unsigned char)lit[k]) return 0;
    return 1;
}

/* String.replace(lit, rep) */
static int us_replace(ustr *u, const char *lit, const char *rep, ustr *tmp) {
    tmp->n = 0;
    size_t l = strlen(lit);
    for (size_t i = 0; i < u->n;) {
        if (us_match_lit(u, i, lit)) {
            if (us_cat(tmp, rep)) return -1;
            i += l;
        } else {
            if (us_push(tmp, u->c[i])) return -1;
            i++;
        }
    }
    us_swap(u, tmp);
    return 0;
}

static int us_replace_cp(ustr *u, uint32_t from, const char *rep, ustr *tmp) {
    tmp->n = 0;
    for (size_t i = 0; i < u->n; i++) {
        if (u->c[i] == from) {
            if (us_cat(tmp, rep)) return -1;
        } else if (us_push(tmp, u->c[i]))
            return -1;
    }
    us_swap(u, tmp);
    return 0;
}

static int us_contains(const ustr *u, const char *lit) {
    for (size_t i = 0; i < u->n; i++)
        if (us_match_lit(u, i, lit)) return 1;
    return 0;
}

typedef int (*cls_fn)(uint32_t);
static int c_not_digit(uint32_t c) { return !is_digit_m(c); }
static int c_digit(uint32_t c) { return is_digit_m(c); }
static int c_not_alpha(uint32_t c) { return !is_alpha_m(c); }
static int c_alpha(uint32_t c) { return is_alpha_m(c); }
static int c_not_alpha_digit(uint32_t c) { return !is_alpha_m(c) && !is_digit_m(c); }
static int c_s(uint32_t c) { return c == 's'; }
static int c_alnum_dot(uint32_t c) { return is_alnum_m(c) || c == '.'; }
static int c_alnum(uint32_t c) { return is_alnum_m(c); }

/* replaceAll of "(A)x(B)" by  $1 <mid> $2  (three-char window, non-overlapping, left to right) */
static int us_tri(ustr *u, cls_fn a, uint32_t x, cls_fn b, const char *mid, ustr *tmp) {
    tmp->n = 0;
    size_t i = 0;
    while (i < u->n) {
        if (i + 2 < u->n && a(u->c[i]) && u->c[i + 1] == x && b(u->c[i + 2])) {
            if (us_push(tmp, u->c[i]) || us_cat(tmp, mid) || us_push(tmp, u->c[i + 2])) return -1;
            i += 3;
        } else {
            if (us_push(tmp, u->c[i])) return -1;
            i++;
        }
    }
    us_swap(u, tmp);
    return 0;
}

static const char *const NBP_ANY[] = {
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V",
    "W", "X", "Y", "Z", "Adj", "Adm", "Adv", "Asst", "Bart", "Bldg", "Brig", "Bros", "Capt", "Cmdr", "Col", "Comdr",
    "Con", "Corp", "Cpl", "DR", "Dr", "Drs", "Ens", "Gen", "Gov", "Hon", "Hr", "Hosp", "Insp", "Lt", "MM", "MR",
    "MRS", "MS", "Maj", "Messrs", "Mlle", "Mme", "Mr", "Mrs", "Ms", "Msgr", "Op", "Ord", "Pfc", "Ph", "Prof", "Pvt",
    "Rep", "Reps", "Res", "Rev", "Rt", "Sen", "Sens", "Sfc", "Sgt", "Sr", "St", "Supt", "Surg", "v", "vs", "i.e",
    "rev", "e.g", "Nos", "Nr"};
static const char *const NBP_NUM[] = {"No", "Art", "pp"};

static int word_eq(const ustr *w, size_t a, size_t b, const char *s) {
    size_t l = strlen(s);
    if (b - a != l) return 0;
    for (size_t k = 0; k < l; k++)
        if (w->c[a + k] != (unsigned char)s[k]) return 0;
    return 1;
}

static int is_lower_cp(uint32_t c) { return c >= 'a' && c <= 'z'; } /* \p{Lower}: ASCII */

static int normalize_line(const char *line, ustr *out) {
    int rc = -1;
    ustr u = {0}, t = {0};
    size_t n8 = strlen(line);
    /* decode UTF-8 */
    if (us_push(&u, ' ')) goto done;
    for (size_t i = 0; i < n8;) {
        unsigned char c = (unsigned char)line[i];
        uint32_t cp;
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
        cp = extra == 0 ? c : extra == 1 ? (c & 0x1Fu) : extra == 2 ? (c & 0x0Fu) : (c & 0x07u);
        for (int k = 1; k <= extra && i + (size_t)k < n8; k++) cp = (cp << 6) | ((unsigned char)line[i + k] & 0x3Fu);
        if (us_push(&u, cp)) goto done;
        i += (size_t)extra + 1;
    }
    if (us_push(&u, ' ')) goto done;
    /* r_sep_other: wrap every char that is not alnum, whitespace or . ' ` , - ‘ ’ */
    t.n = 0;
    for (size_t i = 0; i < u.n; i++) {
        uint32_t c = u.c[i];
        int keep = is_alnum_m(c) || is_jspace(c) || c == '.' || c == '\'' || c == '`' || c == ',' || c == '-' ||
                   c == 0x2018 || c == 0x2019;
        if (!keep) {
            if (us_push(&t, ' ') || us_push(&t, c) || us_push(&t, ' ')) goto done;
        } else if (us_push(&t, c))
            goto done;
    }
    us_swap(&u, &t);
    /* multiple dots: \.([\.]+) -> " DOTMULTI$1" */
    t.n = 0;
    for (size_t i = 0; i < u.n;) {
        if (u.c[i] == '.' && i + 1 < u.n && u.c[i + 1] == '.') {
            size_t j = i + 1;
            while (j < u.n && u.c[j] == '.') j++;
            if (us_cat(&t, " DOTMULTI")) goto done;
            for (size_t k = i + 1; k < j; k++)
                if (us_push(&t, '.')) goto done;
            i = j;
        } else {
            if (us_push(&t, u.c[i])) goto done;
            i++;
        }
    }
    us_swap(&u, &t);
    while (us_contains(&u, "DOTMULTI.")) {
        /* DOTMULTI\.([^\.]) -> "DOTDOTMULTI $1" */
        t.n = 0;
        for (size_t i = 0; i < u.n;) {
            if (us_match_lit(&u, i, "DOTMULTI.") && i + 9 < u.n && u.c[i + 9] != '.') {
                if (us_cat(&t, "DOTDOTMULTI ") || us_push(&t, u.c[i + 9])) goto done;
                i += 10;
            } else {
                if (us_push(&t, u.c[i])) goto done;
                i++;
            }
        }
        us_swap(&u, &t);
        if (us_replace(&u, "DOTMULTI.", "DOTDOTMULTI", &t)) goto done;
    }
    /* commas except within numbers */
    if (us_tri(&u, c_not_digit, ',', c_not_digit, " , ", &t)) goto done;
    if (us_tri(&u, c_digit, ',', c_not_digit, " , ", &t)) goto done;
    if (us_tri(&u, c_not_digit, ',', c_digit, " , ", &t)) goto done;
    /* quotes */
    for (size_t i = 0; i < u.n; i++)
        if (u.c[i] == '`' || u.c[i] == 0x2018 || u.c[i] == 0x2019) u.c[i] = '\'';
    t.n = 0;
    for (size_t i = 0; i < u.n;) {
        if (u.c[i] == 0x201C || u.c[i] == 0x201D) {
            if (us_cat(&t, " \" ")) goto done;
            i++;
        } else if (u.c[i] == '\'' && i + 1 < u.n && u.c[i + 1] == '\'') {
            if (us_cat(&t, " \" ")) goto done;
            i += 2;
        } else {
            if (us_push(&t, u.c[i])) goto done;
            i++;
        }
    }
    us_swap(&u, &t);
    /* dashes */
    if (us_replace_cp(&u, 0x2013, "-", &t)) goto done;
    if (us_replace(&u, "--", "-", &t)) goto done;
    if (us_tri(&u, c_alnum_dot, '-', c_alnum, " ", &t)) goto done;
    /* English contractions */
    if (us_tri(&u, c_not_alpha, '\'', c_not_alpha, " ' ", &t)) goto done;
    if (us_tri(&u, c_not_alpha_digit, '\'', c_alpha, " ' ", &t)) goto done;
    if (us_tri(&u, c_alpha, '\'', c_not_alpha, " ' ", &t)) goto done;
    if (us_tri(&u, c_alpha, '\'', c_alpha, " '", &t)) goto done;
    if (us_tri(&u, c_digit, '\'', c_s, " '", &t)) goto done;
    /* split on whitespace (StringTokenizer: space, \t \n \r \f) and rebuild, breaking final dots */
    {
        size_t (*wb)[2] = malloc((u.n + 1) * sizeof *wb);
        size_t nw = 0;
        if (!wb) goto done;
        for (size_t i = 0; i < u.n;) {
            while (i < u.n && (u.c[i] == ' ' || u.c[i] == '\t' || u.c[i] == '\n' || u.c[i] == '\r' || u.c[i] == '\f'))
                i++;
            if (i >= u.n) break;
            size_t j = i;
            while (j < u.n && !(u.c[j] == ' ' || u.c[j] == '\t' || u.c[j] == '\n' || u.c[j] == '\r' || u.c[j] == '\f'))
                j++;
            wb[nw][0] = i;
            wb[nw][1] = j;
            nw++;
            i = j;
        }
        t.n = 0;
        for (size_t w = 0; w < nw; w++) {
            size_t a = wb[w][0], b = wb[w][1];
            int r = 0;
            if (b - a > 1 && u.c[b - 1] == '.') {
                size_t pe = b - 1; /* pre = [a, pe) */
                int has_dot = 0, has_alpha = 0;
                for (size_t k = a; k < pe; k++) {
                    if (u.c[k] == '.') has_dot = 1;
                    if (is_alpha_m(u.c[k])) has_alpha = 1;
                }
                int type = 0; /* 1 any, 2 numeric only */
                for (size_t k = 0; k < sizeof NBP_ANY / sizeof NBP_ANY[0]; k++)
                    if (word_eq(&u, a, pe, NBP_ANY[k])) type = 1;
                for (size_t k = 0; k < sizeof NBP_NUM / sizeof NBP_NUM[0]; k++)
                    if (word_eq(&u, a, pe, NBP_NUM[k])) type = 2;
                if (has_dot && has_alpha) {
                    for (size_t k = a; k < b && !r; k++)
                        if (u.c[k] != '.') r = us_push(&t, u.c[k]);
                } else if (type == 1 || (w + 1 < nw && is_lower_cp(u.c[wb[w + 1][0]]))) {
                    for (size_t k = a; k < b && !r; k++) r = us_push(&t, u.c[k]);
                } else if (type == 2 && w + 1 < nw && is_digit_m(u.c[wb[w + 1][0]])) {
                    for (size_t k = a; k < b && !r; k++) r = us_push(&t, u.c[k]);
                } else {
                    for (size_t k = a; k < pe && !r; k++) r = us_push(&t, u.c[k]);
                    if (!r) r = us_cat(&t, " .");
                }
            } else {
                for (size_t k = a; k < b && !r; k++) r = us_push(&t, u.c[k]);
            }
            if (!r) r = us_push(&t, ' ');
            if (r) { free(wb); goto done; }
        }
        free(wb);
        us_swap(&u, &t);
    }
    while (us_contains(&u, "DOTDOTMULTI"))
        if (us_replace(&u, "DOTDOTMULTI", "DOTMULTI.", &t)) goto done;
    if (us_replace(&u, "DOTMULTI", ".", &t)) goto done;
    /* whitespace runs -> one space; trim */
    t.n = 0;
    for (size_t i = 0; i < u.n;) {
        uint32_t c = u.c[i];
        int sp = c == ' ' || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000 ||
                 c == 0x1680;
        if (sp) {
            while (i < u.n) {
                uint32_t d = u.c[i];
                if (!(d == ' ' || d == 0xA0 || (d >= 0x2000 && d <= 0x200A) || d == 0x202F || d == 0x205F ||
                      d == 0x3000 || d == 0x1680))
                    break;
                i++;
            }
            if (us_push(&t, ' ')) goto done;
        } else {
            if (us_push(&t, c)) goto done;
            i++;
        }
    }
    us_swap(&u, &t);
    size_t a = 0, b = u.n;
    while (a < b && u.c[a] <= ' ') a++;
    while (b > a && u.c[b - 1] <= ' ') b--;
    out->n = 0;
    for (size_t i = a; i < b; i++) {
        uint32_t c = u.c[i];
        /* lowerCase: ASCII and Latin-1 (the normaliser's alphabet) */
        if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) c += 32;
        if (us_push(out, c)) goto done;
    }
    rc = 0;
done:
    free(u.c);
    free(t.c);
    if (rc) m2u_fail("meteor: out of memory");
    return rc;
}

char *m2u_meteor_normalize(const char *line) {
    ustr u = {0};
    if (normalize_line(line, &u)) return NULL;
    char *s = malloc(u.n * 4 + 1), *p = s;
    if (!s) { free(u.c); m2u_fail("meteor: out of memory"); return NULL; }
    for (size_t k = 0; k < u.n; k++) {
        uint32_t c = u.c[k];
        if (c < 0x80) *p++ = (char)c;
        else if (c < 0x800) { *p++ = (char)(0xC0 | (c >> 6)); *p++ = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) {
            *p++ = (char)(0xE0 | (c >> 12)); *p++ = (char)(0x80 | ((c >> 6) & 0x3F)); *p++ = (char)(0x80 | (c & 0x3F));
        } else {
            *p++ = (char)(0xF0 | (c >> 18)); *p++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *p++ = (char)(0x80 | ((c >> 6) & 0x3F)); *p++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *p = 0;
    free(u.c);
    return s;
}

/* ------------------------------------------------------------------ */
/* Words                                                               */

typedef struct {
    char **w;
    int *func;
    int32_t *hash, *shash; /* String.hashCode of the word and of its stem */
    int **syn, *nsyn;      /* synset offsets (synonym module) */
    int *pid;              /* paraphrase-table word id, -1 unknown */
    int n;
} mwords;

static const char *const FUNCTION_WORDS[] = {
    "the", ",", ".", "to", "of", "and", "a", "in", "that", "for", "\"", "is", "on", "'s", "it", "with", "was", "as",
    "said", "at", "he", "by", "be", "from", "have", "has", "are", "his", "but", "an", "this", "not", "i", "will",
    "\xE2\x80\x99", "they", ")", "-rrb-", "(", "-lrb-", "who", "their", "had", "we", "which", "were", "been", "more",
    "or", "s", "its", "would", "about", "new", "one", "after", "you", ":", "also", "up", "when", "there", "than", "$",
    "all", "out", "her", "people", "she", "year", "two", "-", "can", "if", "last", "first", "\xE2\x80\x9C", "over",
    "other", "\xE2\x80\x9D", "into", "some", "what", "so", "--", "no", "time", "years", "could", "?", "'t",
    "\xE2\x80\x94", "'"};


/* String.hashCode() of a UTF-8 word (over its UTF-16 code units): Meteor
 * compares words and stems by these keys (Stage.wordsToKeys, StemMatcher). */
static int32_t java_hash(const char *s) {
    uint32_t h = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
        c = extra == 0 ? c : extra == 1 ? (c & 0x1Fu) : extra == 2 ? (c & 0x0Fu) : (c & 0x07u);
        p++;
        for (int k = 0; k < extra && *p; k++, p++) c = (c << 6) | (*p & 0x3Fu);
        if (c >= 0x10000) {
            c -= 0x10000;
            h = 31u * h + (0xD800u + (c >> 10));
            h = 31u * h + (0xDC00u + (c & 0x3FFu));
        } else
            h = 31u * h + c;
    }
    return (int32_t)h;
}

static void mwords_free(mwords *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->w[i]);
        if (m->syn) free(m->syn[i]);
    }
    free(m->w);
    free(m->func);
    free(m->hash);
    free(m->shash);
    free(m->syn);
    free(m->nsyn);
    free(m->pid);
    memset(m, 0, sizeof *m);
}

/* kinds of matching module */
enum { MOD_EXACT, MOD_STEM, MOD_SYNONYM, MOD_PARAPHRASE };

static int mwords_make(const char *line, const m2u_meteor_params *p, mwords *m) {
    memset(m, 0, sizeof *m);
    ustr u = {0};
    if (normalize_line(line, &u)) return -1;
    size_t cap = u.n + 1;
    m->w = calloc(cap, sizeof *m->w);
    m->func = calloc(cap, sizeof *m->func);
    m->hash = calloc(cap, sizeof *m->hash);
    m->shash = calloc(cap, sizeof *m->shash);
    m->syn = calloc(cap, sizeof *m->syn);
    m->nsyn = calloc(cap, sizeof *m->nsyn);
    m->pid = calloc(cap, sizeof *m->pid);
    if (!m->w || !m->func || !m->hash || !m->shash || !m->syn || !m->nsyn || !m->pid) goto oom;
    for (size_t i = 0; i < u.n;) {
        if (u.c[i] == ' ') { i++; continue; }
        size_t j = i;
        while (j < u.n && u.c[j] != ' ') j++;
        char *s = malloc((j - i) * 4 + 1), *q = s;
        if (!s) goto oom;
        for (size_t k = i; k < j; k++) {
            uint32_t c = u.c[k];
            if (c < 0x80) *q++ = (char)c;
            else if (c < 0x800) { *q++ = (char)(0xC0 | (c >> 6)); *q++ = (char)(0x80 | (c & 0x3F)); }
            else if (c < 0x10000) {
                *q++ = (char)(0xE0 | (c >> 12)); *q++ = (char)(0x80 | ((c >> 6) & 0x3F)); *q++ = (char)(0x80 | (c & 0x3F));
            } else {
                *q++ = (char)(0xF0 | (c >> 18)); *q++ = (char)(0x80 | ((c >> 12) & 0x3F));
                *q++ = (char)(0x80 | ((c >> 6) & 0x3F)); *q++ = (char)(0x80 | (c & 0x3F));
            }
        }
        *q = 0;
        int n = m->n++;
        m->w[n] = s;
        m->hash[n] = java_hash(s);
        for (size_t f = 0; f < sizeof FUNCTION_WORDS / sizeof FUNCTION_WORDS[0]; f++)
            if (strcmp(s, FUNCTION_WORDS[f]) == 0) m->func[n] = 1;
        if (p->use_stem) {
            char *st = m2u_snowball_english(s);
            if (!st) goto oom;
            m->shash[n] = java_hash(st);
            free(st);
        }
        if (p->use_synonym && m2u_meteor_word_synsets(p->data, s, &m->syn[n], &m->nsyn[n])) goto fail;
        m->pid[n] = p->use_paraphrase ? m2u_meteor_para_word(p->data, s) : -1;
        i = j;
    }
    free(u.c);
    return 0;
oom:
    m2u_fail("meteor: out of memory");
fail:
    free(u.c);
    mwords_free(m);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Alignment                                                           */

typedef struct {
    int start, length;            /* in line2 (reference) */
    int match_start, match_length; /* in line1 (test) */
    int module;                   /* index among the modules that run */
} mmatch;

typedef struct {
    mmatch *v;
    int n, cap;
} mvec;

static int mv_push(mvec *a, mmatch m) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        mmatch *p = realloc(a->v, (size_t)cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = m;
    return 0;
}

typedef struct {
    int *match; /* per line2 start position: index into the match table, -1 none */
    unsigned char *used1, *used2;
    int matches1, matches2, chunks, idx, last_end, distance;
} mpath;

#define NMOD 4
typedef struct {
    double tlen, rlen, tfunc, rfunc;
    double tc[NMOD], rc[NMOD], tf[NMOD], rf[NMOD]; /* per module: content / function matches */
    double chunks, twm, rwm;                       /* chunks, test / reference word matches */
    double ttot, rtot;
    double score;
} mstats;

/* the modules that run, in Meteor's order, and their weights */
static int module_list(const m2u_meteor_params *p, int kind[NMOD], double w[NMOD]) {
    int n = 0;
    kind[n] = MOD_EXACT; w[n++] = p->w_exact;
    if (p->use_stem) { kind[n] = MOD_STEM; w[n++] = p->w_stem; }
    if (p->use_synonym) { kind[n] = MOD_SYNONYM; w[n++] = p->w_synonym; }
    if (p->use_paraphrase) { kind[n] = MOD_PARAPHRASE; w[n++] = p->w_paraphrase; }
    return n;
}

static void compute_metrics(mstats *st, const m2u_meteor_params *p) {
    int kind[NMOD];
    double w[NMOD];
    int nmod = module_list(p, kind, w);
    double delta = p->delta, alpha = p->alpha;
    double twl = (delta * (st->tlen - st->tfunc)) + ((1.0 - delta) * (st->tfunc));
    double rwl = (delta * (st->rlen - st->rfunc)) + ((1.0 - delta) * (st->rfunc));
    double twm = 0, rwm = 0;
    for (int i = 0; i < nmod; i++) twm += st->tc[i] * w[i] * delta;
    for (int i = 0; i < nmod; i++) rwm += st->rc[i] * w[i] * delta;
    for (int i = 0; i < nmod; i++) twm += st->tf[i] * w[i] * (1.0 - delta);
    for (int i = 0; i < nmod; i++) rwm += st->rf[i] * w[i] * (1.0 - delta);
    double precision = twm / twl;
    double recall = rwm / rwl;
    double fmean = 1.0 / (((1.0 - alpha) / precision) + (alpha / recall));
    double frag;
    if (st->ttot == st->tlen && st->rtot == st->rlen && st->chunks == 1)
        frag = 0;
    else
        frag = st->chunks / ((st->twm + st->rwm) / 2);
    double pen = p->gamma * pow(frag, p->beta);
    double score = fmean * (1.0 - pen);
    st->score = isnan(score) ? 0 : (score > 0.0 ? score : 0.0);
}

static int path_cmp(const mpath *x, const mpath *y) {
    int md = (y->matches1 + y->matches2) - (x->matches1 + x->matches2);
    if (md > 0) return 1;
    if (md < 0) return -1;
    int cd = x->chunks - y->chunks;
    if (cd != 0) return cd;
    return x->distance - y->distance;
}

/* stable merge sort of path pointers (Collections.sort) */
static void sort_paths(mpath **a, int n, mpath **tmp) {
    if (n < 2) return;
    int h = n / 2;
    sort_paths(a, h, tmp);
    sort_paths(a + h, n - h, tmp);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = (path_cmp(a[j], a[i]) < 0) ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

typedef struct {
    mpath **v;
    int n, cap;
} pvec;

static int pv_push(pvec *p, mpath *x) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        mpath **v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = x;
    return 0;
}

static mpath *path_new(int n1, int n2) {
    mpath *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->match = malloc((size_t)(n2 + 1) * sizeof *p->match);
    p->used1 = calloc((size_t)n1 + 1, 1);
    p->used2 = calloc((size_t)n2 + 1, 1);
    if (!p->match || !p->used1 || !p->used2) {
        free(p->match); free(p->used1); free(p->used2); free(p);
        return NULL;
    }
    for (int i = 0; i < n2; i++) p->match[i] = -1;
    p->last_end = -1;
    return p;
}

static mpath *path_copy(const mpath *s, int n1, int n2) {
    mpath *p = path_new(n1, n2);
    if (!p) return NULL;
    int *m = p->match;
    unsigned char *u1 = p->used1, *u2 = p->used2;
    *p = *s;
    p->match = m;
    p->used1 = u1;
    p->used2 = u2;
    memcpy(m, s->match, (size_t)n2 * sizeof *m);
    memcpy(u1, s->used1, (size_t)n1);
    memcpy(u2, s->used2, (size_t)n2);
    return p;
}

static void path_free(mpath *p) {
    if (!p) return;
    free(p->match);
    free(p->used1);
    free(p->used2);
    free(p);
}

static int path_uses(const mpath *p, const mmatch *m) { /* PartialAlignment.isUsed */
    for (int k = 0; k < m->length; k++)
        if (p->used2[m->start + k]) return 1;
    for (int k = 0; k < m->match_length; k++)
        if (p->used1[m->match_start + k]) return 1;
    return 0;
}

static void path_mark(mpath *p, const mmatch *m) { /* PartialAlignment.setUsed(m, true) */
    for (int k = 0; k < m->length; k++) p->used2[m->start + k] = 1;
    for (int k = 0; k < m->match_length; k++) p->used1[m->match_start + k] = 1;
}

static int syn_meet(const int *a, int na, const int *b, int nb) {
    int i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) return 1;
        if (a[i] < b[j]) i++; else j++;
    }
    return 0;
}

/* ParaphraseMatcher: phrases of `from` (starting at each position) whose
 * paraphrase occurs in `to`; from_is_ref says which line `from` is. */
static int para_matches(const m2u_meteor_data *d, const int *from, int nf, const int *to, int nt, int from_is_ref,
                        int module, mvec *out) {
    int maxl = m2u_meteor_para_max_len(d);
    for (int a = 0; a < nf; a++)
        for (int len = 1; len <= maxl && a + len <= nf; len++)
            for (int e = m2u_meteor_para_first(d, from + a, len); e >= 0; e = m2u_meteor_para_next(d, e)) {
                int wl;
                const int *words = m2u_meteor_para_target(d, e, &wl);
                for (int b = 0; b < nt; b++) {
                    int ok = 1;
                    for (int k = 0; k < wl && ok; k++)
                        if (b + k == nt || to[b + k] != words[k]) ok = 0;
                    if (!ok) continue;
                    mmatch m = from_is_ref ? (mmatch){a, len, b, wl, module} : (mmatch){b, wl, a, len, module};
                    if (mv_push(out, m)) return -1;
                }
            }
    return 0;
}

/* Align test (words1) to reference (words2) and fill the segment statistics
 * (Aligner.align + MeteorScorer.getMeteorStats). */
static int align_stats(const mwords *t, const mwords *r, const m2u_meteor_params *prm, mstats *st) {
    int n1 = t->n, n2 = r->n;
    int kind[NMOD];
    double w[NMOD];
    int nmod = module_list(prm, kind, w);
    int rc = -1;
    mvec all_m = {0};
    mmatch *mt = NULL;
    int *first = calloc((size_t)n2 + 1, sizeof *first), *count = calloc((size_t)n2 + 1, sizeof *count);
    int *cov1 = calloc((size_t)n1 + 1, sizeof *cov1), *cov2 = calloc((size_t)n2 + 1, sizeof *cov2);
    pvec paths = {0}, next = {0}, all = {0};
    mpath **tmp = NULL;
    if (!first || !count || !cov1 || !cov2) goto oom;
    /* identical lines use only the first module ("prevents beam search errors") */
    int mods = nmod;
    if (n1 == n2) {
        int same = 1;
        for (int i = 0; i < n1 && same; i++) same = t->hash[i] == r->hash[i];
        if (same) mods = 1;
    }
    /* all matches in Meteor's insertion order */
    for (int mod = 0; mod < mods; mod++) {
        if (kind[mod] == MOD_PARAPHRASE) {
            if (para_matches(prm->data, r->pid, n2, t->pid, n1, 1, mod, &all_m) ||
                para_matches(prm->data, t->pid, n1, r->pid, n2, 0, mod, &all_m))
                goto oom;
            continue;
        }
        for (int j = 0; j < n2; j++)
            for (int i = 0; i < n1; i++) {
                int ok;
                if (kind[mod] == MOD_EXACT) ok = t->hash[i] == r->hash[j];
                else if (kind[mod] == MOD_STEM) ok = t->shash[i] == r->shash[j] && t->hash[i] != r->hash[j];
                else ok = syn_meet(t->syn[i], t->nsyn[i], r->syn[j], r->nsyn[j]) && t->hash[i] != r->hash[j];
                if (ok && mv_push(&all_m, (mmatch){j, 1, i, 1, mod})) goto oom;
            }
    }
    for (int k = 0; k < all_m.n; k++) {
        const mmatch *m = &all_m.v[k];
        for (int q = 0; q < m->match_length; q++) cov1[m->match_start + q]++;
        for (int q = 0; q < m->length; q++) cov2[m->start + q]++;
    }
    /* Stage.matches.get(j): the matches starting at j, in insertion order */
    mt = malloc(((size_t)all_m.n + 1) * sizeof *mt);
    if (!mt) goto oom;
    for (int k = 0; k < all_m.n; k++) count[all_m.v[k].start]++;
    for (int j = 0, s = 0; j < n2; j++) {
        first[j] = s;
        s += count[j];
        count[j] = 0;
    }
    for (int k = 0; k < all_m.n; k++) {
        int j = all_m.v[k].start;
        mt[first[j] + count[j]++] = all_m.v[k];
    }
    /* initial path: one-to-one, non-overlapping matches are fixed */
    mpath *init = path_new(n1, n2);
    if (!init || pv_push(&all, init)) { path_free(init); goto oom; }
    for (int j = 0; j < n2; j++)
        if (count[j] == 1) {
            const mmatch *m = &mt[first[j]];
            int overlap = 0;
            for (int q = 0; q < m->length; q++) overlap |= cov2[j + q] != 1;
            for (int q = 0; q < m->match_length; q++) overlap |= cov1[m->match_start + q] != 1;
            if (!overlap) {
                init->match[j] = first[j];
                path_mark(init, m);
            }
        }
    if (pv_push(&next, init)) goto oom;
    /* Aligner.resolve: beam search left to right over line2 */
    for (int cur = 0; cur <= n2; cur++) {
        pvec swap = paths;
        paths = next;
        next = swap;
        next.n = 0;
        free(tmp);
        tmp = malloc(((size_t)paths.n + 1) * sizeof *tmp);
        if (!tmp) goto oom;
        sort_paths(paths.v, paths.n, tmp);
        for (int rank = 0; rank < 40 && rank < paths.n; rank++) {
            mpath *path = paths.v[rank];
            if (cur == n2) {
                if (path->last_end != -1) path->chunks++;
                if (pv_push(&next, path)) goto oom;
                continue;
            }
            if (path->used2[cur]) {
                if (cur < path->idx) {
                    if (pv_push(&next, path)) goto oom;
                } else if (path->idx < n2 && path->match[path->idx] >= 0) { /* fixed match */
                    const mmatch *m = &mt[path->match[path->idx]];
                    path->matches1 = (int)(path->matches1 + m->match_length * w[m->module]);
                    path->matches2 = (int)(path->matches2 + m->length * w[m->module]);
                    if (path->last_end != -1 && m->match_start != path->last_end) path->chunks++;
                    path->idx = m->start + m->length;
                    path->last_end = m->match_start + m->match_length;
                    path->distance += abs(m->start - m->match_start);
                    if (pv_push(&next, path)) goto oom;
                }
                continue;
            }
            for (int k = 0; k < count[cur]; k++) {
                int mi = first[cur] + k;
                const mmatch *m = &mt[mi];
                if (path_uses(path, m)) continue;
                mpath *np = path_copy(path, n1, n2);
                if (!np || pv_push(&all, np)) { path_free(np); goto oom; }
                path_mark(np, m);
                np->match[cur] = mi;
                np->matches1 = (int)(np->matches1 + m->match_length * w[m->module]);
                np->matches2 = (int)(np->matches2 + m->length * w[m->module]);
                if (np->last_end != -1 && m->match_start != np->last_end) np->chunks++;
                np->idx = m->start + m->length;
                np->last_end = m->match_start + m->match_length;
                path->distance += abs(m->start - m->match_start); /* sic: Meteor 1.5 adds it to the skipping path */
                if (pv_push(&next, np)) goto oom;
            }
            if (path->last_end != -1) {
                path->chunks++;
                path->last_end = -1;
            }
            path->idx++;
            if (pv_push(&next, path)) goto oom;
        }
        if (next.n == 0 && pv_push(&next, paths.v[0])) goto oom;
    }
    free(tmp);
    tmp = malloc(((size_t)next.n + 1) * sizeof *tmp);
    if (!tmp) goto oom;
    sort_paths(next.v, next.n, tmp);
    const mpath *best = next.v[0];
    /* statistics of the best alignment */
    memset(st, 0, sizeof *st);
    st->tlen = n1;
    st->rlen = n2;
    for (int i = 0; i < n1; i++) st->tfunc += t->func[i];
    for (int j = 0; j < n2; j++) st->rfunc += r->func[j];
    int chunks = 0, last = -1;
    for (int j = 0; j < n2;) { /* Aligner.getCountAndChunks */
        int mi = best->match[j];
        if (mi < 0) {
            if (last != -1) { chunks++; last = -1; }
            j++;
            continue;
        }
        const mmatch *m = &mt[mi];
        for (int q = 0; q < m->match_length; q++) {
            if (t->func[m->match_start + q]) st->tf[m->module] += 1; else st->tc[m->module] += 1;
        }
        for (int q = 0; q < m->length; q++) {
            if (r->func[m->start + q]) st->rf[m->module] += 1; else st->rc[m->module] += 1;
        }
        if (last != -1 && m->match_start != last) chunks++;
        j = m->start + m->length;
        last = m->match_start + m->match_length;
    }
    if (last != -1) chunks++;
    st->chunks = chunks;
    for (int i = 0; i < nmod; i++) {
        st->ttot += st->tc[i];
        st->ttot += st->tf[i];
        st->rtot += st->rc[i];
        st->rtot += st->rf[i];
        st->twm += st->tc[i] + st->tf[i];
        st->rwm += st->rc[i] + st->rf[i];
    }
    compute_metrics(st, prm);
    rc = 0;
    goto done;
oom:
    m2u_fail("meteor: out of memory");
done:
    for (int i = 0; i < all.n; i++) path_free(all.v[i]);
    free(all.v);
    free(paths.v);
    free(next.v);
    free(tmp);
    free(mt);
    free(all_m.v);
    free(first);
    free(count);
    free(cov1);
    free(cov2);
    return rc;
}

void m2u_meteor_default_params(m2u_meteor_params *p) {
    p->alpha = 0.85;
    p->beta = 0.20;
    p->gamma = 0.60;
    p->delta = 0.75;
    p->w_exact = 1.0;
    p->w_stem = 0.6;
    p->w_synonym = 0.8;
    p->w_paraphrase = 0.6;
    p->use_stem = 1;
    p->use_synonym = 0;
    p->use_paraphrase = 0;
    p->data = NULL;
}

void m2u_meteor_default_params_data(m2u_meteor_params *p, const m2u_meteor_data *d) {
    m2u_meteor_default_params(p);
    p->data = d;
    p->use_synonym = m2u_meteor_data_has_synonyms(d);
    p->use_paraphrase = m2u_meteor_data_has_paraphrases(d);
}

const char *m2u_meteor_modules(const m2u_meteor_params *p) {
    static const char *const names[8] = {"exact", "exact,paraphrase", "exact,synonym", "exact,synonym,paraphrase",
                                         "exact,stem", "exact,stem,paraphrase", "exact,stem,synonym",
                                         "exact,stem,synonym,paraphrase"};
    return names[(p->use_stem ? 4 : 0) | (p->use_synonym ? 2 : 0) | (p->use_paraphrase ? 1 : 0)];
}

int m2u_meteor(const m2u_caption_set *s, const m2u_meteor_params *p, double *corpus, double *per_item) {
    m2u_meteor_params def;
    if (!p) {
        m2u_meteor_default_params(&def);
        p = &def;
    }
    if (p->use_synonym && !m2u_meteor_data_has_synonyms(p->data))
        return m2u_fail("meteor: the synonym module needs WordNet data (m2u_meteor_load_wordnet)");
    if (p->use_paraphrase && !m2u_meteor_data_has_paraphrases(p->data))
        return m2u_fail("meteor: the paraphrase module needs a paraphrase table (m2u_meteor_load_paraphrase)");
    mstats agg;
    memset(&agg, 0, sizeof agg);
    for (size_t i = 0; i < s->n; i++) {
        if (s->n_refs[i] < 1) return m2u_fail("meteor: item %zu has no reference", i);
        mwords tw;
        if (mwords_make(s->cand[i], p, &tw)) return -1;
        mstats best;
        memset(&best, 0, sizeof best);
        best.score = -1;
        for (int r = 0; r < s->n_refs[i]; r++) {
            mwords rw;
            if (mwords_make(s->refs[i][r], p, &rw)) { mwords_free(&tw); return -1; }
            mstats cur;
            int rc = align_stats(&tw, &rw, p, &cur);
            mwords_free(&rw);
            if (rc) { mwords_free(&tw); return -1; }
            if (cur.score > best.score) best = cur; /* MeteorScorer: the first best reference */
        }
        mwords_free(&tw);
        if (per_item) per_item[i] = best.score;
        /* MeteorStats.addStats */
        agg.tlen += best.tlen;
        agg.rlen += best.rlen;
        agg.tfunc += best.tfunc;
        agg.rfunc += best.rfunc;
        agg.ttot += best.ttot;
        agg.rtot += best.rtot;
        for (int m = 0; m < NMOD; m++) {
            agg.tc[m] += best.tc[m];
            agg.rc[m] += best.rc[m];
            agg.tf[m] += best.tf[m];
            agg.rf[m] += best.rf[m];
        }
        if (!(best.ttot == best.tlen && best.rtot == best.rlen && best.chunks == 1.0)) agg.chunks += best.chunks;
        agg.twm += best.twm;
        agg.rwm += best.rwm;
    }
    compute_metrics(&agg, p);
    *corpus = agg.score;
    return 0;
}
