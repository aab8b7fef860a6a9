/* One-time set-up of the library (init.c): the library's own event names,
 * and what the layers below need from this one (how events hold their
 * senders, the thread-exit hook, the actions of STOP and PAUSE). */
#ifndef WK_INIT_H
#define WK_INIT_H

#include "wk_atom.h"

/* The library's own event names, interned once at start-up. */
typedef struct wk_builtin_atoms {
    const wk_atom *stop, *pause, *resume;
    const wk_atom *child_start, *child_stop, *child_error, *child_done, *child_end;
    const wk_atom *wait_pending, *wait_pending_done;
    const wk_atom *event_reject, *execute, *listener_error, *defer_fulfill, *worker_down;
    const wk_atom *linked_exit;
} wk_builtin_atoms;

/* Valid after wk_init(). */
extern wk_builtin_atoms wk_atoms;

/* One-time library initialisation. Cheap after the first call; every
 * public entry point that needs the library calls it. Returns 0, or
 * WORKER_ENOMEM if the built-in names could not be made (the next call
 * tries again). */
int wk_init(void);

#endif
