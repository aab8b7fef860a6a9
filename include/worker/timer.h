/* Scheduling work on a worker: `later`.
 *
 * A timer runs `fn(arg)` on the target worker's own thread, inside its event
 * loop, once its delay has passed. Timers live in the worker's loop (a heap
 * of absolute deadlines on the monotonic clock); there is no thread per
 * timer. */
#ifndef WORKER_TIMER_H
#define WORKER_TIMER_H

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct worker_timer worker_timer_t;
typedef void (*worker_call_fn)(void *arg);

/* Run fn(arg) on `w` (NULL: the current worker) after `delay` seconds; 0
 * means "when its loop next turns", as an EXECUTE event that listeners also
 * see (data: arg), before fn runs; a timer cancelled before its worker
 * takes that event is not seen by any listener or wait. Any thread.
 * `timer` (may be NULL) receives a handle the caller frees with
 * worker_timer_free(). WORKER_EINVAL: fn NULL, delay negative or NaN.
 * WORKER_EREJECTED: `w` is not running. WORKER_ENOMEM: out of memory,
 * nothing is armed and `*timer` is not set. A timer accepted (WORKER_OK)
 * runs even if `w` is out of memory when it files it. */
WORKER_API int worker_later(
    worker_t *w, worker_call_fn fn, void *arg, double delay, worker_timer_t **timer);

/* Run fn(arg) on `w` (NULL: the current worker) every `period` seconds,
 * the first time one period from now, until cancelled or `w` ends. Fixed
 * rate: each deadline is the previous one plus `period` (no drift); ticks
 * missed while `w` was busy are skipped, not run late in a row.
 * WORKER_EINVAL: fn NULL, period not finite, below 1 ns or above 1e9 s.
 * Other codes as worker_later. worker_timer_cancel on it returns WORKER_OK
 * once no further tick will start (a tick running finishes). */
WORKER_API int worker_every(
    worker_t *w, worker_call_fn fn, void *arg, double period, worker_timer_t **timer);

/* WORKER_OK if the timer will not run (cancelled now, cancelled before, or
 * dropped because its worker ended; for worker_every: no further tick
 * will start); WORKER_ESTATE if it has run or is
 * running (delay 0: from when its worker takes the EXECUTE event, its
 * listeners included). Any thread. */
WORKER_API int worker_timer_cancel(worker_timer_t *t);

/* Give back the handle. It does not cancel the timer. NULL is ignored. */
WORKER_API void worker_timer_free(worker_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif
