/* worker-trace: allocation, a small hash map, JSON strings, names of codes. */
#include <stdlib.h>
#include <string.h>

#include <worker/error.h>

#include "wt.h"

static void out_of_memory(void)
{
    fputs("worker-trace: out of memory\n", stderr);
    exit(WT_EXIT_USAGE);
}

void *wt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *wt_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *wt_xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        out_of_memory();
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        out_of_memory();
    return q;
}

char *wt_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = wt_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void wt_grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            out_of_memory();
        c *= 2;
    }
    *items = wt_xrealloc(*items, c, size);
    *cap = c;
}

void wt_sort(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (items && n > 1)
        qsort(items, n, size, cmp);
}

/* --- map ----------------------------------------------------------------------- */

static uint64_t mix(uint64_t k1, uint64_t k2)
{
    uint64_t h = k1 * 0x9e3779b97f4a7c15u ^ (k2 + 0x632be59bd9b4e019u) * 0xbf58476d1ce4e5b9u;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebu;
    return h ^ (h >> 29);
}

void wt_map_init(wt_map *m)
{
    memset(m, 0, sizeof *m);
}

void wt_map_free(wt_map *m)
{
    free(m->k1);
    free(m->k2);
    free(m->val);
    free(m->used);
    memset(m, 0, sizeof *m);
}

uint64_t *wt_map_get(const wt_map *m, uint64_t k1, uint64_t k2)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = mix(k1, k2) & mask;; i = (i + 1) & mask) {
        if (!m->used[i])
            return NULL;
        if (m->k1[i] == k1 && m->k2[i] == k2)
            return &m->val[i];
    }
}

static void map_rehash(wt_map *m, size_t cap)
{
    wt_map n = { .cap = cap };
    n.k1 = wt_xcalloc(cap, sizeof *n.k1);
    n.k2 = wt_xcalloc(cap, sizeof *n.k2);
    n.val = wt_xcalloc(cap, sizeof *n.val);
    n.used = wt_xcalloc(cap, 1);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i])
            continue;
        size_t j = mix(m->k1[i], m->k2[i]) & (cap - 1);
        while (n.used[j])
            j = (j + 1) & (cap - 1);
        n.used[j] = 1;
        n.k1[j] = m->k1[i];
        n.k2[j] = m->k2[i];
        n.val[j] = m->val[i];
    }
    n.count = m->count;
    wt_map_free(m);
    *m = n;
}

uint64_t *wt_map_put(wt_map *m, uint64_t k1, uint64_t k2, uint64_t init, bool *inserted)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        map_rehash(m, m->cap ? m->cap * 2 : 64);
    size_t mask = m->cap - 1;
    size_t i = mix(k1, k2) & mask;
    for (; m->used[i]; i = (i + 1) & mask) {
        if (m->k1[i] == k1 && m->k2[i] == k2) {
            if (inserted)
                *inserted = false;
            return &m->val[i];
        }
    }
    m->used[i] = 1;
    m->k1[i] = k1;
    m->k2[i] = k2;
    m->val[i] = init;
    m->count++;
    if (inserted)
        *inserted = true;
    return &m->val[i];
}

/* --- JSON ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void wt_json_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    putc('"', f);
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc((int)c, f);
            s++;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            s++;
        } else if (c < 0x80) {
            putc((int)c, f);
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", f);
                s++;
            } else {
                fwrite(s, 1, n, f);
                s += n;
            }
        }
    }
    putc('"', f);
}

const char *wt_err_name(int64_t code)
{
    switch (code) {
#define WT_ERR_CASE_(name, value, message)                                                         \
    case value:                                                                                    \
        return #name;
        WORKER_ERROR_TABLE(WT_ERR_CASE_)
#undef WT_ERR_CASE_
    default:
        return NULL;
    }
}

const char *wt_wait_kind_name(unsigned kind)
{
    static const char *const names[]
        = { "?", "event", "until", "timeout", "forever", "thread", "future", "defer", "join" };
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
