/* Futures: Async tasks and Defer values.
 *
 * Every get runs the calling thread's event loop while it waits, so the
 * caller's listeners and `later` calls keep running. */
#ifndef WORKER_FUTURE_H
#define WORKER_FUTURE_H

#include <worker/export.h>
#include <worker/lifecycle.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct worker_future worker_future_t;

/* Run fn(arg) on a new parent-less, quiet, daemon worker, started. NULL when
 * fn is NULL or the worker could not be made. Free with
 * worker_future_free(). */
WORKER_API worker_future_t *worker_async(worker_task_fn fn, void *arg);

/* Run the caller's loop until the task has ended (at once if it already
 * has); returns the task's code (0, WORKER_EXIT when it was stopped, or its
 * error) and sets *result (may be NULL) to its result. WORKER_EXIT also when
 * the caller itself is stopped while waiting (the task keeps running);
 * WORKER_EINVAL for NULL; WORKER_EDEADLK when called from the task itself;
 * WORKER_ENOMEM when memory runs out (the task goes on). May be called
 * again, from any thread. */
WORKER_API int worker_future_get(worker_future_t *f, void **result);

/* worker_future_get for at most `timeout` seconds (negative: no limit):
 * WORKER_ETIMEDOUT when the task is still running then (it goes on; wait
 * or get again). NaN: WORKER_EINVAL. */
WORKER_API int worker_future_wait(worker_future_t *f, double timeout, void **result);

/* The worker running the task (borrowed, valid until worker_future_free):
 * pause it, fire at it, stop it. */
WORKER_API worker_t *worker_future_worker(worker_future_t *f);

/* Give back the future. A task still running goes on to its end. */
WORKER_API void worker_future_free(worker_future_t *f);

/* worker_async() + worker_future_get() + worker_future_free(). When the
 * caller is stopped while waiting, the task is stopped too. WORKER_ENOMEM
 * when the task could not be started. */
WORKER_API int worker_await(worker_task_fn fn, void *arg, void **result);

typedef struct worker_defer worker_defer_t;

/* A value settled later, by anyone. NULL when memory runs out. */
WORKER_API worker_defer_t *worker_defer_new(void);

/* Settle with a value / an error (non-zero). Any thread, before or after
 * get. The first settles it; later ones are ignored and return WORKER_OK.
 * WORKER_EINVAL for NULL (and for reject with err 0). Each thread waiting
 * in get receives DEFER_FULFILL (data: the defer). WORKER_ENOMEM when a
 * waiter could not be told for want of memory: then nothing is settled
 * (call again); a waiter told already just goes on waiting. */
WORKER_API int worker_defer_resolve(worker_defer_t *d, void *value);
WORKER_API int worker_defer_reject(worker_defer_t *d, int err);

/* Run the caller's loop until settled: 0 (and *value) or the reject code.
 * WORKER_EXIT when the caller is stopped while waiting; WORKER_ENOMEM
 * when it cannot register as a waiter. Any thread, any number of times. */
WORKER_API int worker_defer_get(worker_defer_t *d, void **value);

/* worker_defer_get for at most `timeout` seconds (negative: no limit):
 * WORKER_ETIMEDOUT when it is still pending then. NaN: WORKER_EINVAL. */
WORKER_API int worker_defer_wait(worker_defer_t *d, double timeout, void **value);

/* Free it. No get may be running on it. NULL is ignored. */
WORKER_API void worker_defer_free(worker_defer_t *d);

#ifdef __cplusplus
}
#endif
#endif
