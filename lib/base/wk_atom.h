/* Interned event names: each distinct name gets one atom for the life of
 * the process, so the hot path compares pointers, not strings. */
#ifndef WK_ATOM_H
#define WK_ATOM_H

#include <stddef.h>
#include <stdint.h>

#include <worker/types.h>

/* What the library does with an event of a given name after the user's
 * listeners (STOP_THREAD, PAUSE_THREAD). Set by the worker layer. */
typedef void (*wk_atom_action)(worker_t *owner, worker_event_t *e);

typedef struct wk_atom {
    struct wk_atom *next; /* bucket chain; published with release ordering */
    uint32_t id; /* dense, from 1 */
    uint32_t hash;
    size_t len;
    /* A slot of the worker layer, written once during its set-up (before
     * any event of that name can be handled) and read-only afterwards;
     * this layer never reads it. NULL for the names users make. */
    wk_atom_action action;
    char name[];
} wk_atom;

/* The atom for `name` (NUL-terminated, non-empty), made on first use.
 * NULL only when memory runs out. Any thread. */
const wk_atom *wk_atom_intern(const char *name);
/* fork(): hold the intern table's lock across it (fork.c). */
void wk_atom_atfork_prepare(void);
void wk_atom_atfork_release(void);

/* Give `atom` its action: once, during the worker layer's set-up, before
 * any event of that name exists (see wk_atom.action). */
void wk_atom_set_action(const wk_atom *atom, wk_atom_action action);

/* The same, through a one-entry cache of the caller's (hits when a thread
 * fires the same name again: the common case). The cache is the caller's
 * own, e.g. per thread. */
typedef struct wk_atom_cache {
    const char *name; /* the pointer last looked up; its text is compared too */
    const wk_atom *atom;
} wk_atom_cache;

/* Event names are short: a byte loop beats a call to strcmp. */
static inline int wk_same_text(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static inline const wk_atom *wk_atom_cached(wk_atom_cache *c, const char *name)
{
    if (c->name == name && c->atom && wk_same_text(name, c->atom->name))
        return c->atom;
    const wk_atom *a = wk_atom_intern(name);
    c->name = name;
    c->atom = a;
    return a;
}

#endif
