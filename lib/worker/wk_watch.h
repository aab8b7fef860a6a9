/* Watchers (watch.c): the parent link, wait_thread and monitors hear of a
 * worker's end by message. Lock rules: wk_worker.h. */
#ifndef WK_WATCH_H
#define WK_WATCH_H

#include "wk_worker.h"

/* Add a watcher (not twice for the same kind). Caller holds target->lock. */
int wk_watch_add(worker_t *target, worker_t *watcher, wk_watch_kind kind);
bool wk_watch_remove(worker_t *target, worker_t *watcher, wk_watch_kind kind); /* holds lock */
/* Send the end notice of `kind` about `w` to `watcher`, using `spares`
 * (the watcher's, may be NULL) for what cannot be allocated now. */
void wk_watch_notify(
    worker_t *w, worker_t *watcher, wk_watch_kind kind, wk_thread *t, wk_spare *spares);
/* Drop every watcher of a list taken out of a worker (references, spares). */
void wk_watch_list_free(wk_watch_list *l);
/* worker_wait_thread with an absolute deadline (WK_NO_DEADLINE: none):
 * WORKER_ETIMEDOUT when it passed first (no longer a watcher then). */
int wk_wait_thread_until(worker_t *w, int *err, void **ret, uint64_t deadline_ns);
/* CHILD_THREAD_START to w's parent (w's run begins; w has a parent). */
void wk_watch_tell_started(worker_t *w, wk_thread *t);

#endif
