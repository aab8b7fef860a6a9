/* The parent/child tree, watchers (parent, wait_thread, monitors) and
 * worker lists (tree.c). Lock rules: wk_worker.h. */
#ifndef WK_TREE_H
#define WK_TREE_H

#include "wk_worker.h"

int wk_tree_link(worker_t *child); /* at start: join the parent's children */
void wk_tree_unlink(worker_t *child); /* leave the parent's children */
/* Send STOP_THREAD to every child, then run w's loop until every non-daemon
 * one has reported CHILD_THREAD_END. Owner thread of w. Needs no memory:
 * a STOP that cannot be made is sent again a moment later. */
void wk_tree_stop_children(worker_t *w, wk_thread *t);
/* Send STOP_THREAD to every child and return (a root worker's exit). Out of
 * memory, a child may be left untold. Owner thread of w. */
void wk_tree_tell_children_stop(worker_t *w, wk_thread *t);
/* State -> WK_ENDED; tell the parent, then waiters and monitors; then
 * `finished` and drop the run's reference (w may be freed on return). */
void wk_tree_report_end(worker_t *w, wk_thread *t);
/* worker_wait_thread with an absolute deadline (WK_NO_DEADLINE: none):
 * WORKER_ETIMEDOUT when it passed first (no longer a watcher then). */
int wk_wait_thread_until(worker_t *w, int *err, void **ret, uint64_t deadline_ns);
/* Block (plain condition wait) until the last run has finished. */
void wk_wait_finished(worker_t *w);
/* Add a watcher (not twice for the same kind). Caller holds target->lock. */
int wk_watch_add(worker_t *target, worker_t *watcher, wk_watch_kind kind);
bool wk_watch_remove(worker_t *target, worker_t *watcher, wk_watch_kind kind); /* holds lock */
/* Send the end notice of `kind` about `w` to `watcher`, using `spares`
 * (the watcher's, may be NULL) for what cannot be allocated now. */
void wk_watch_notify(
    worker_t *w, worker_t *watcher, wk_watch_kind kind, wk_thread *t, wk_spare *spares);
/* Drop every watcher of a list taken out of a worker (references, spares). */
void wk_watch_list_free(wk_watch_list *l);
/* CHILD_THREAD_START to w's parent (w's run begins; w has a parent). */
void wk_tree_tell_started(worker_t *w, wk_thread *t);
bool wk_list_add(wk_worker_list *l, worker_t *w); /* takes a reference */
bool wk_list_remove(wk_worker_list *l, worker_t *w); /* drops it */
size_t wk_list_copy(wk_worker_list *l, worker_t ***out); /* refs; caller frees */
void wk_list_release(worker_t **items, size_t n);

#endif
