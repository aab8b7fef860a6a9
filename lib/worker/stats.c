/* worker_stats: a snapshot of a worker's mailbox counters. */
#include <worker/stats.h>

#include <worker/error.h>

#include "wk_worker.h"

int worker_stats(const worker_t *w, worker_stats_t *out)
{
    if (!w || !out)
        return WORKER_EINVAL;
    *out = (worker_stats_t) { 0 };
    out->dropped = atomic_load_explicit(&w->stats.dropped, memory_order_relaxed);
    return WORKER_OK;
}
