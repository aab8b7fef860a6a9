/* Introspection: what a worker's mailbox has seen.
 *
 * worker_stats may be called from any thread, for any worker, at any time
 * (also before it starts and after it ends). The counters add up over
 * every run of the worker; they are read without stopping anybody, so a
 * snapshot taken while events flow may be a few events off between
 * fields (each field alone is exact once the mailbox is quiet). */
#ifndef WORKER_STATS_H
#define WORKER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct worker_stats {
    uint64_t accepted; /* user events queued (fires that returned WORKER_OK) */
    uint64_t handled; /* user events delivered to its listeners */
    uint64_t refused; /* fires refused: mailbox full, or the worker not running */
    uint64_t dropped; /* dropped by WORKER_FULL_DROP_OLDEST, and requests that expired */
    size_t queued; /* user events queued now */
    size_t queued_max; /* the most user events queued at once */
    double busy; /* seconds its thread was awake: in listeners, its task and
                    the loop, not parked waiting for mail */
} worker_stats_t;

/* Fill `*out` with w's counters. WORKER_OK, or WORKER_EINVAL for a NULL
 * argument. */
WORKER_API int worker_stats(const worker_t *w, worker_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
