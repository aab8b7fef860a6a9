/* The parent/child tree (tree.c). Lock rules: wk_worker.h. */
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

#endif
