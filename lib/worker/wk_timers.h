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

#endif
