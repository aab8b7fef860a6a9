/* A worker's pending timers (timer.c). Owner thread only. */
#ifndef WK_TIMERS_H
#define WK_TIMERS_H

#include "wk_worker.h"

static inline bool wk_timers_pending(const worker_t *w)
{
    return w->timers.count || w->timers.spilled;
}
uint64_t wk_timers_next_deadline(const worker_t *w); /* WK_NO_DEADLINE if none */
void wk_timers_run_due(worker_t *w);
void wk_timers_drop_all(worker_t *w);
/* worker_later whose `on_drop(arg)` runs instead of `fn`, on the owner,
 * when the worker ends before the timer ran (not when it is cancelled). */
int wk_later_or_drop(worker_t *w, worker_call_fn fn, worker_call_fn on_drop, void *arg,
    double delay, worker_timer_t **timer);

#endif
