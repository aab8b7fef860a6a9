/* Interned event names: each distinct name gets one immutable atom for the
 * life of the process, so the hot path compares pointers, not strings. */
#ifndef WK_ATOM_H
#define WK_ATOM_H

#include <stddef.h>
#include <stdint.h>

typedef struct wk_atom {
    struct wk_atom *next; /* bucket chain; published with release ordering */
    uint32_t id; /* dense, from 1 */
    uint32_t hash;
    size_t len;
    char name[];
} wk_atom;

/* The atom for `name` (NUL-terminated, non-empty), made on first use.
 * NULL only when memory runs out. Any thread. */
const wk_atom *wk_atom_intern(const char *name);

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

/* The library's own event names, interned once at start-up. */
typedef struct wk_builtin_atoms {
    const wk_atom *stop, *pause, *resume;
    const wk_atom *child_start, *child_stop, *child_error, *child_done, *child_end;
    const wk_atom *wait_pending, *wait_pending_done;
    const wk_atom *event_reject, *execute, *listener_error, *defer_fulfill, *worker_down;
} wk_builtin_atoms;

/* Valid after wk_init(). */
extern wk_builtin_atoms wk_atoms;

/* One-time library initialisation (atoms, epoch domain). Cheap after the
 * first call; every public entry point that needs the library calls it.
 * Returns 0, or WORKER_ENOMEM if the built-in names could not be made (the
 * next call tries again). */
int wk_init(void);

#endif
