/* Events and listeners.
 *
 * An event has a name, a data pointer and the worker that sent it (its
 * "target" in pyThreadWorker's words). Listeners run on the receiving worker's own
 * thread inside its event loop, so the state they touch needs no lock. */
#ifndef WORKER_EVENT_H
#define WORKER_EVENT_H

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The names of the events the library fires itself. */
#define WORKER_EV_STOP_THREAD "STOP_THREAD"
#define WORKER_EV_PAUSE_THREAD "PAUSE_THREAD"
#define WORKER_EV_RESUME_THREAD "RESUME_THREAD"
#define WORKER_EV_CHILD_THREAD_START "CHILD_THREAD_START"
#define WORKER_EV_CHILD_THREAD_STOP "CHILD_THREAD_STOP"
#define WORKER_EV_CHILD_THREAD_ERROR "CHILD_THREAD_ERROR"
#define WORKER_EV_CHILD_THREAD_DONE "CHILD_THREAD_DONE"
#define WORKER_EV_CHILD_THREAD_END "CHILD_THREAD_END"
#define WORKER_EV_WAIT_THREAD_PENDING "WAIT_THREAD_PENDING"
#define WORKER_EV_WAIT_THREAD_PENDING_DONE "WAIT_THREAD_PENDING_DONE"
#define WORKER_EV_EVENT_REJECT "EVENT_REJECT"
#define WORKER_EV_EXECUTE "EXECUTE"
#define WORKER_EV_LISTENER_ERROR "LISTENER_ERROR"
#define WORKER_EV_DEFER_FULFILL "DEFER_FULFILL"
#define WORKER_EV_WORKER_DOWN "WORKER_DOWN"

/* Accessors. Valid inside a listener or wait condition for the event being
 * delivered. NULL events give NULL / 0. */
WORKER_API const char *worker_event_name(const worker_event_t *e);
WORKER_API void *worker_event_data(const worker_event_t *e);
WORKER_API size_t worker_event_size(const worker_event_t *e); /* 0 unless copied in */
WORKER_API worker_t *worker_event_target(const worker_event_t *e); /* the sender, borrowed */

typedef struct worker_fire_opts {
    const void *copy; /* non-NULL: copy copy_size bytes into the event;
                         data then points at the copy */
    size_t copy_size;
    void (*release)(void *data); /* called once when the event is no longer
                                    referenced anywhere; not called when the
                                    fire is refused */
    bool bubble; /* also fire on the parent, and on up */
    bool broadcast; /* also fire on every child, and on down */
    worker_t *target; /* the sender seen by listeners; NULL: the
                         calling thread's worker */
    double wait; /* at a full mailbox: 0 refuse at once (WORKER_EFULL);
                    > 0 wait up to that many seconds for room; < 0 wait
                    for room as long as it takes. A waiting worker runs
                    its own loop meanwhile. */
} worker_fire_opts;

/* Queue an event on `w`. Any thread, managed or not. WORKER_OK: accepted and
 * will be delivered exactly once, in order per sender (or, when `w` drops
 * its oldest at a full mailbox, dropped and released once and counted).
 * WORKER_EREJECTED: `w` is not running, or ended while the fire waited for
 * room (and EVENT_REJECT goes to a running sender). WORKER_EFULL: `w`'s
 * mailbox_limit is reached (after `wait` seconds when it is set).
 * WORKER_EXIT: the sender was stopped while it waited for room.
 * WORKER_EINVAL: NULL worker, NULL or empty name, copy_size without copy, a
 * NaN wait. WORKER_ENOMEM: out of memory; nothing was queued. On every
 * error `release` is not called. */
WORKER_API int worker_fire(worker_t *w, const char *name, void *data);
WORKER_API int worker_fire_ex(
    worker_t *w, const char *name, void *data, const worker_fire_opts *opts);

/* A non-zero return is a listener error: it is reported on stderr (unless the
 * worker is quiet) and LISTENER_ERROR bubbles up from that worker with the
 * code as data (cast via intptr_t). */
typedef int (*worker_listener_fn)(const worker_event_t *e, void *userdata);

typedef struct worker_listen_opts {
    int priority; /* higher runs first; equal priorities run in the order added */
    bool once; /* remove after the first call */
    bool transient; /* removed when the worker ends (pyThreadWorker's permanent=False) */
    worker_t *target; /* only events whose sender is this worker */
    const char *name; /* copied; shown in traces and the viewer; NULL: the function's symbol
                         name where the binary has one */
} worker_listen_opts;

/* Add a listener for `name` on `w`. Any thread, also from inside a listener;
 * a listener added while an event is being delivered does not see that
 * event. Returns a handle owned by the worker (valid until it is removed),
 * or NULL on bad arguments or out of memory. The handle is an identifier,
 * not the listener's address: no two listeners of the process ever get the
 * same one. */
WORKER_API worker_listener_t *worker_listen(worker_t *w, const char *name, worker_listener_fn fn,
    void *userdata, const worker_listen_opts *opts);

/* Remove one listener. Any thread, also from inside that listener. Once it
 * returns, the listener is not called again. WORKER_EINVAL if `l` is not
 * (or no longer) a listener of `w`; the handle is never dereferenced and
 * never reused, so a stale handle is safe: it gives WORKER_EINVAL and
 * removes nothing, also after newer listeners were added. */
WORKER_API int worker_unlisten(worker_t *w, worker_listener_t *l);

/* Remove every listener of `w` with that function and userdata.
 * WORKER_EINVAL if there was none. */
WORKER_API int worker_unlisten_fn(worker_t *w, worker_listener_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif
#endif
