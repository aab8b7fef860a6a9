/* Shortcuts for the calling thread's worker.
 *
 * Every wait runs the calling thread's event loop: listeners keep running,
 * so a waiting worker still reacts to events. A thread the library does not
 * manage (the main thread, a plain pthread) gets a root worker on first use,
 * so these work from anywhere. The main thread's root worker lives as long
 * as the process; a plain pthread's root worker ends when that thread exits.
 *
 * Nested waits (a listener that waits) are allowed. Every wait that is
 * running on a thread sees every event handled on that thread while it runs,
 * including those handled by a nested wait or during a pause.
 *
 * Data returned through `void **data` stays valid until the next wait or
 * update starts on this thread. */
#ifndef WORKER_CURRENT_H
#define WORKER_CURRENT_H

#include <worker/event.h>
#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The calling thread's worker (borrowed); a root worker is made on first
 * use. NULL only when memory runs out. */
WORKER_API worker_t *worker_current(void);

/* True when `w` (NULL: the current worker) is the worker the main thread
 * runs now: its root worker, or, while worker_start_overlay() runs a task on
 * the main thread, that task's worker (the root under it is then not). */
WORKER_API bool worker_is_main(const worker_t *w);

/* = worker_wait_timeout(seconds). */
WORKER_API int worker_sleep(double seconds);

/* Handle every event queued now, never block. WORKER_OK or WORKER_EXIT. */
WORKER_API int worker_update(void);

/* Run the loop for `seconds`: WORKER_OK after the time, WORKER_EXIT early
 * when the worker is stopped. WORKER_EINVAL for NaN. A negative value waits
 * forever. */
WORKER_API int worker_wait_timeout(double seconds);

/* Run the loop until stopped; returns only WORKER_EXIT. */
WORKER_API int worker_wait_forever(void);

/* Run the loop until an event called `name` (sent by `target`, if not NULL)
 * has been handled: WORKER_OK, WORKER_ETIMEDOUT or WORKER_EXIT. `*data` (if
 * `data` is not NULL) gets the event's data. Negative timeout: none. */
WORKER_API int worker_wait_event(const char *name, double timeout, worker_t *target, void **data);

typedef bool (*worker_cond_fn)(const worker_event_t *e, void *userdata);

/* Run the loop until `cond` is true for a handled event. Same returns as
 * worker_wait_event(). `cond` runs on this thread after the event's
 * listeners. */
WORKER_API int worker_wait_until(worker_cond_fn cond, void *userdata, double timeout, void **data);

/* Run the loop until `w` has ended. *err: 0 when its task succeeded,
 * WORKER_EXIT when it was stopped, else its error code; *ret: its result.
 * WORKER_OK, WORKER_EXIT (the caller was stopped while waiting),
 * WORKER_EDEADLK (w is the caller), WORKER_EINVAL (NULL or a root worker).
 * Returns at once when `w` is not running. It waits for the run going on
 * when it is called, and reports that run's end even if `w` has been
 * started again since. */
WORKER_API int worker_wait_thread(worker_t *w, int *err, void **ret);

/* Mark the current worker as exiting; returns WORKER_EXIT, and so does every
 * later wait on it. Never blocks. On a root worker as well: its children are
 * sent STOP_THREAD (not waited for: worker_join them), and it stays exiting
 * until it ends (the main thread's: for the rest of the process). */
WORKER_API int worker_exit(void);

/* worker_listen() on the current worker, always transient. */
WORKER_API worker_listener_t *worker_on(
    const char *name, worker_listener_fn fn, void *userdata, const worker_listen_opts *opts);

/* Fire on the current worker's parent, bubbling further up. WORKER_EREJECTED
 * when there is no running parent. */
WORKER_API int worker_bubble(const char *name, void *data);

/* Fire on every child of the current worker, broadcasting further down.
 * WORKER_OK also when there are no children; WORKER_ENOMEM when memory ran
 * out (for the list of the children: nothing was sent). */
WORKER_API int worker_broadcast(const char *name, void *data);

#ifdef __cplusplus
}
#endif
#endif
