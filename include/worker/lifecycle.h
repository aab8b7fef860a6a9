/* Workers: creating, starting, stopping, pausing and joining them.
 *
 * A worker is a thread with its own event loop and mailbox. Handles are
 * reference counted: worker_new()/worker_spawn() return one reference that
 * the caller owns and gives back with worker_unref(). A running worker holds
 * a reference to itself, so unref'ing a running worker never frees it under
 * its own feet. Every function here is safe to call from any thread unless
 * its comment says otherwise. */
#ifndef WORKER_LIFECYCLE_H
#define WORKER_LIFECYCLE_H

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A task runs on the worker's own thread. Return 0 for success (optionally
 * setting *result), WORKER_EXIT when it left because it was stopped, or any
 * other non-zero value: the task failed with that error code. */
typedef int (*worker_task_fn)(void *arg, void **result);

enum worker_daemon_mode {
    WORKER_DAEMON_INHERIT = 0, /* the parent's answer, or false without a parent */
    WORKER_DAEMON_YES = 1, /* the parent does not wait for this worker */
    WORKER_DAEMON_NO = 2 /* the parent waits for this worker when it ends */
};

/* What a fire at a full mailbox does (worker_opts.full_policy). Only user
 * events count against mailbox_limit; the library's own messages (stop,
 * child notices, replies' control, timers) are never refused, dropped or
 * delayed by either policy. */
enum worker_full_policy {
    WORKER_FULL_REJECT = 0, /* the fire returns WORKER_EFULL (or waits: worker_fire_opts.wait) */
    WORKER_FULL_DROP_OLDEST = 1, /* the oldest queued user event is dropped (released, counted,
                                    traced) and the new one accepted */
};

/* What a forwarding worker does with each user event fired at it
 * (worker_opts.forward). It runs on the firing thread, before the fire
 * returns; `e` is valid until it returns (keep it with worker_event_ref,
 * for instance to answer a request later). */
typedef void (*worker_forward_fn)(const worker_event_t *e, void *arg);

/* Options for worker_new()/worker_spawn(). NULL or a zero-filled struct
 * means all defaults. */
typedef struct worker_opts {
    const char *name; /* shown in logs, traces and the thread name; copied */
    worker_t *parent; /* NULL: the current worker, if the caller is a worker
                         the library started (else none) */
    bool no_parent; /* true: parent-less (pyThreadWorker's parent=False) */
    int daemon; /* enum worker_daemon_mode */
    bool quiet; /* true: do not report a failed task on stderr */
    size_t mailbox_limit; /* 0: unbounded; else the most user events queued at once */
    int full_policy; /* enum worker_full_policy: what a fire past mailbox_limit does */
    /* The worker's thread (not used by worker_start_overlay, which runs on
     * the caller's thread). worker_new() returns NULL for a stack_size
     * below PTHREAD_STACK_MIN or a negative cpu; worker_start() returns
     * WORKER_EINVAL, starting nothing, for a CPU the process may not run
     * on. */
    size_t stack_size; /* 0: the system default; else rounded up to whole pages */
    int cpu; /* 0: no affinity; n > 0: pin the thread to CPU n-1 */
    /* Links (supervision.h): true, a linked worker's failed or stopped end
     * comes as a LINKED_EXIT event; false, it stops this worker. */
    bool trap_links;
    /* Pooled (M:N): no thread of its own; its listeners and later/every
     * calls run one batch at a time on the scheduler's threads
     * (worker_scheduler_threads), so its state still needs no lock. A
     * pooled worker is created with a NULL task (else WORKER_EINVAL / NULL)
     * and lives until stopped; inside it every blocking call returns
     * WORKER_EWOULDBLOCK at once. docs/pooled.md says when to choose it. */
    bool pooled;
    /* Fires at it must copy their data (worker_fire_opts.copy): a fire
     * with data and without a copy is refused with WORKER_EINVAL (NULL
     * data needs none). For workers whose
     * events leave the process, as the proxies of libworker-actor-nats do:
     * a pointer does not cross. */
    bool copy_only;
    /* A forwarding worker (transports: the proxies of libworker-actor-nats
     * publish what is fired at them). While it runs, a user event or
     * request fired at it (directly, by bubble, broadcast or a channel) is
     * not queued: forward(e, forward_arg) runs on the firing thread before
     * the fire returns, so one thread's fires reach it in order, and fires
     * from several threads may run it at the same time. Its listeners and
     * waits never see those events; the library's events (stop, pause,
     * notices) are queued and handled by its loop as for any worker. It
     * counts them as accepted and handled. A fire at it while it is not
     * running is refused as for any worker, and its end returns only once
     * the forwards running then have returned (none runs afterwards).
     * forward must not block for long nor wait for workers (no join, call
     * or wait), nor unsubscribe or free a channel: it runs inside other
     * workers' fires and channel publishes. NULL: an ordinary worker. */
    worker_forward_fn forward;
    void *forward_arg;
} worker_opts;

/* The number of scheduler threads that run pooled workers: n > 0 threads,
 * 0 one per CPU the process may run on (the default). Call it before the
 * first pooled worker starts, at most once: WORKER_ESTATE when the
 * scheduler has already started or the number was already set,
 * WORKER_EINVAL for n < 0 or n > 1024. The threads start with the first
 * pooled worker and live as long as the process; they are not workers. */
WORKER_API int worker_scheduler_threads(int n);

/* What a worker's end reports: the data of CHILD_THREAD_END (and of
 * WORKER_DOWN). `err` is 0 when the task succeeded, WORKER_EXIT when it was
 * stopped, else its error code; `ret` is the task's result. */
typedef struct worker_down {
    worker_t *worker;
    int err;
    void *ret;
} worker_down_t;

/* Create a worker, not started. `task` NULL means "wait forever" (pyThreadWorker's
 * default worker). The worker is linked to its parent at once. Returns NULL
 * on bad options (unknown daemon mode, parent together with no_parent, a
 * stack_size below PTHREAD_STACK_MIN, a negative cpu) or
 * when memory runs out. The caller owns the returned reference. */
WORKER_API worker_t *worker_new(worker_task_fn task, void *arg, const worker_opts *opts);

/* Start the worker's thread. Also restarts a worker that has ended; its
 * permanent listeners survive. WORKER_ESTATE if it is running or starting,
 * WORKER_EREJECTED if its parent is itself ending, WORKER_EINVAL for NULL,
 * a root worker or a cpu option naming a CPU the process may not run on
 * (nothing started), WORKER_ENOMEM when memory runs out (the worker is left
 * as it was). WORKER_EAGAIN if the system refused a thread: the worker has then
 * run and ended, on the calling thread before this returns, as a task that
 * failed at once with WORKER_EAGAIN (the events accepted meanwhile are
 * delivered to its listeners, its parent, waiters and monitors hear of
 * that end). */
WORKER_API int worker_start(worker_t *w);

/* worker_new() + worker_start() (pyThreadWorker's create_worker). NULL on failure;
 * the caller owns the returned reference. */
WORKER_API worker_t *worker_spawn(worker_task_fn task, void *arg, const worker_opts *opts);

/* Run the worker's task on the calling thread, with its full event loop and
 * end sequence, and return when it has ended: WORKER_OK, or the start errors
 * of worker_start(). The task's own code is read with worker_wait_thread()
 * or worker_join(). */
WORKER_API int worker_start_overlay(worker_t *w);

/* Queue STOP_THREAD and return at once. On a worker that is not running it
 * does nothing and returns WORKER_OK. Never refused for a full mailbox;
 * WORKER_ENOMEM when memory runs out (nothing was sent). */
WORKER_API int worker_stop(worker_t *w);

/* Queue PAUSE_THREAD / RESUME_THREAD. WORKER_EREJECTED when the worker is not
 * running. Never refused for a full mailbox; WORKER_ENOMEM when memory runs
 * out. */
WORKER_API int worker_pause(worker_t *w);
WORKER_API int worker_resume(worker_t *w);

/* Block until the worker has ended, without running the caller's event loop
 * (use worker_wait_thread() for that). WORKER_OK at once if it is not
 * running; WORKER_EDEADLK when called on the calling thread's own worker;
 * WORKER_EINVAL for NULL or a root worker. */
WORKER_API int worker_join(worker_t *w);

/* True from worker_start() until the worker closes its mailbox at its end. */
WORKER_API bool worker_is_running(const worker_t *w);

/* The explicit daemon flag if set, else the parent's answer, else false. */
WORKER_API bool worker_is_daemon(const worker_t *w);

/* The parent for the worker's whole life (borrowed); NULL when parent-less. */
WORKER_API worker_t *worker_parent(const worker_t *w);

/* The number of this worker's children that are starting or running. */
WORKER_API size_t worker_children_count(const worker_t *w);

/* The worker's name (borrowed, valid as long as the handle). */
WORKER_API const char *worker_name(const worker_t *w);

/* Take one more reference; returns `w`. NULL stays NULL. */
WORKER_API worker_t *worker_ref(worker_t *w);

/* Give back one reference; the last one frees the worker. A running worker
 * keeps itself alive until it has ended. NULL is ignored. */
WORKER_API void worker_unref(worker_t *w);

#ifdef __cplusplus
}
#endif
#endif
