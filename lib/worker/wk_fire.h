/* Queueing events on workers (fire.c): admission, bubble and broadcast
 * hops, EVENT_REJECT, and the library's own messages. Any thread. */
#ifndef WK_FIRE_H
#define WK_FIRE_H

#include "wk_worker.h"

/* Queue `e` (one reference, owned by the caller and given away here) on
 * `to`, and on its ancestors / descendants. `origin_data` is what an
 * EVENT_REJECT reports. */
int wk_deliver(
    worker_t *to, worker_event_t *e, bool bubble, bool broadcast, void *origin_data, wk_thread *t);
/* Queue a library event (never refused for a full mailbox). */
int wk_send_library(worker_t *to, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* The same with an explicit kind (WK_EV_LIBRARY or WK_EV_LINK). */
int wk_send_kind(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* Queue an event that runs `fn(owner, e)` on `to`'s thread (after its
 * listeners when `visible`: EXECUTE). */
int wk_send_call(worker_t *to, const wk_atom *atom, bool visible, void *data, wk_internal_fn fn,
    void *fn_arg, wk_thread *t);
/* Offer one traced event to `to`: counts it in to's depth, pushes it and
 * records FIRE or REJECT. `flags`: WK_TRF_*. */
int wk_push_traced(worker_t *to, worker_event_t *e, unsigned flags, wk_thread *t);

#endif
