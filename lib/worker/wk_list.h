/* Plain lists of workers (list.c), each entry holding a reference. The
 * caller holds the lock of the worker that owns the list. */
#ifndef WK_LIST_H
#define WK_LIST_H

#include "wk_worker.h"

bool wk_list_add(wk_worker_list *l, worker_t *w); /* takes a reference */
bool wk_list_take(wk_worker_list *l, worker_t *w); /* out, its reference to the caller */
bool wk_list_remove(wk_worker_list *l, worker_t *w); /* out, its reference dropped */
size_t wk_list_copy(wk_worker_list *l, worker_t ***out); /* refs; caller frees */
void wk_list_release(worker_t **items, size_t n);

#endif
