/* Queueing events on workers (fire.c): admission, bubble and broadcast
 * hops, EVENT_REJECT, and the library's own messages. Any thread. */
#ifndef WK_FIRE_H
#define WK_FIRE_H

#include "wk_room.h"
#include "wk_worker.h"

/* Queue `e` (one reference, owned by the caller and given away here) on
 * `to`, and on its ancestors / descendants. `origin_data` is what an
 * EVENT_REJECT reports. */
int wk_deliver(
    worker_t *to, worker_event_t *e, bool bubble, bool broadcast, void *origin_data, wk_thread *t);
/* The same; while the first receiver is full and `rw` is not NULL, run
 * the calling thread's loop until it may have room and try again (room.c):
 * WORKER_EFULL when the wait's time ran out, WORKER_EXIT when the caller
 * was asked to stop meanwhile. */
int wk_deliver_waiting(worker_t *to, worker_event_t *e, bool bubble, bool broadcast,
    void *origin_data, wk_room *rw, wk_thread *t);
/* Queue a library event (never refused for a full mailbox). */
int wk_send_library(worker_t *to, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* The same with an explicit kind (WK_EV_LIBRARY or WK_EV_LINK). */
int wk_send_kind(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* Fill what `spare` lacks (an event object, a queue node); false when
 * memory ran out (what it got stays in it). */
bool wk_spare_take(wk_spare *spare);
/* Give back what `spare` still holds. */
void wk_spare_release(wk_spare *spare);
/* wk_send_kind, using `spare` (may be NULL) for the event object and the
 * queue node it cannot allocate now, so that a notice whose spare is full
 * never fails for memory. What it uses is taken out of the spare. The
 * copy must fit inline (a notice's data). */
int wk_send_spared(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t, wk_spare *spare);
/* Queue an event that runs `fn(owner, e)` on `to`'s thread. With `show`
 * (EXECUTE) the event is a library event that listeners see, after
 * `show(owner, e)` has agreed as the owner takes it, and `fn` runs after
 * them; without, an internal command no listener sees. */
int wk_send_call(worker_t *to, const wk_atom *atom, wk_show_fn show, void *data, wk_internal_fn fn,
    void *fn_arg, wk_thread *t);
/* Offer one traced event to `to`: counts it in to's depth, pushes it and
 * records FIRE or REJECT. `flags`: WK_TRF_*. */
int wk_push_traced(worker_t *to, worker_event_t *e, unsigned flags, wk_thread *t);
/* The same with a queue node taken in advance (the call takes it over). */
int wk_push_traced_node(worker_t *to, worker_event_t *e, unsigned flags, void *node, wk_thread *t);

/* Count one refused user event in `w`'s statistics (refusal paths only). */
static inline void wk_count_refused(worker_t *w)
{
    atomic_fetch_add_explicit(&w->stats.refused, 1, memory_order_relaxed);
}

#endif
