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
/* The same for a pooled worker, which may not wait: send the stops and
 * return true when its end must wait for children. Each slice of that
 * wait runs w's loop with wk_tree_child_ended as its condition, then
 * calls wk_tree_stop_children_step (which sends the stops that could not
 * be made before), until that returns true: every child has ended. */
bool wk_tree_stop_children_begin(worker_t *w, wk_thread *t);
bool wk_tree_stop_children_step(worker_t *w, wk_thread *t);
bool wk_tree_child_ended(const worker_event_t *e, void *userdata);
/* Send STOP_THREAD to every child and return (a root worker's exit). Out of
 * memory, a child may be left untold. Owner thread of w. */
void wk_tree_tell_children_stop(worker_t *w, wk_thread *t);
/* State -> WK_ENDED; tell the parent, then waiters and monitors; then
 * `finished` and drop the run's reference (w may be freed on return). */
void wk_tree_report_end(worker_t *w, wk_thread *t);

#endif
