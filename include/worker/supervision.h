/* Supervision: links between workers, and supervisors that restart their
 * children (docs/supervision.md).
 *
 * Links are messages, like monitors (monitor.h): when a linked worker ends,
 * the other hears of it through its mailbox, after every event the ended
 * worker fired at it, so order per pair holds. */
#ifndef WORKER_SUPERVISION_H
#define WORKER_SUPERVISION_H

#include <stddef.h>

#include <worker/export.h>
#include <worker/lifecycle.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The event a worker with worker_opts.trap_links gets when a linked worker
 * ends with an error (WORKER_EXIT included). Its data points at a
 * worker_down_t of the linked worker (valid like any event data: until the
 * next wait or update); its sender is the linked worker. */
#define WORKER_EV_LINKED_EXIT "LINKED_EXIT"

/* Link the current worker and `other`, both ways. When either ends with
 * err != 0 (a failure, or WORKER_EXIT: it was stopped), the other is
 * stopped (a STOP_THREAD whose sender is the ended worker), unless it traps
 * links (worker_opts.trap_links; a thread's root worker always does): then
 * it gets LINKED_EXIT. An end with err 0 only removes the link. Either way
 * the link is gone after one end: a restarted worker is not linked again.
 * Linking a worker that has ended acts at once, with that end's err.
 * Linking twice is linking once.
 * Any thread (the current worker is the thread's root worker on a thread
 * the library did not start). WORKER_EINVAL for NULL, the current worker
 * itself or a root worker as `other`; WORKER_ESTATE for a worker never
 * started; WORKER_ENOMEM when memory runs out (nothing linked). */
WORKER_API int worker_link(worker_t *other);

/* Remove the link between the current worker and `other` (both ways).
 * A notice of other's end that was already sent stays queued (as a
 * LINKED_EXIT for a worker that traps links, else as STOP_THREAD).
 * WORKER_EINVAL for NULL, or when the two are not linked (any more). */
WORKER_API int worker_unlink(worker_t *other);

/* ---- supervisors --------------------------------------------------- */

enum worker_strategy {
    WORKER_ONE_FOR_ONE = 0, /* restart the child that ended */
    WORKER_ONE_FOR_ALL = 1, /* stop the others (last started first), restart all in order */
    WORKER_REST_FOR_ONE = 2 /* the same for the child and those started after it */
};

enum worker_restart {
    WORKER_RESTART_PERMANENT = 0, /* always restarted */
    WORKER_RESTART_TRANSIENT = 1, /* restarted after an end with err != 0 (WORKER_EXIT from
                                     a stop by anyone but its supervisor included) */
    WORKER_RESTART_TEMPORARY = 2 /* never restarted; forgotten when it ends */
};

typedef struct worker_child_spec {
    const char *name; /* unique among the supervisor's children; copied */
    worker_task_fn task; /* NULL: wait forever */
    void *arg;
    int restart; /* enum worker_restart */
    const worker_opts *opts; /* copied; name, parent and no_parent are the supervisor's to set */
} worker_child_spec;

typedef struct worker_sup_opts {
    const char *name; /* the supervisor worker's name; copied */
    int strategy; /* enum worker_strategy */
    int intensity; /* most restarts allowed within `period`; 0: 3 */
    double period; /* seconds; 0: 5 */
    double backoff; /* 0: restart at once; else the first delay (seconds), doubled per
                       restart up to backoff_max, back to `backoff` after `period`
                       without a restart of that child */
    double backoff_max; /* 0: 10 x backoff */
} worker_sup_opts;

/* Create and start a supervisor: a worker (its parent by the default rule
 * of worker_new) that starts `children` in order, each after the previous
 * one's run has begun, and restarts them by their restart type with its
 * strategy. It stops them in reverse order (last started first, each ended
 * before the next is stopped) when it is stopped, and ends with err
 * WORKER_EXIT then; when more than `intensity` restarts would happen within
 * `period` seconds it makes none, stops the others and ends with
 * WORKER_EINTENSITY (its parent or supervisor sees that like any failure).
 * A restarted child is the same worker_t; events fired at it between its
 * end and its restart wait in its mailbox (up to its mailbox_limit) and are
 * handled by its next run (docs/semantics.md "Supervisors" says what a
 * restart keeps). Returns once every child's first run has begun (or the
 * supervisor has given up), without running the caller's event loop meanwhile
 * (like worker_join). The caller owns the returned reference. NULL for a NULL
 * `children` with n > 0, a NULL or empty or duplicate child name, an
 * unknown restart type or strategy, a negative intensity, a negative or
 * non-finite period, backoff or backoff_max, bad child opts, or no memory.
 * Any thread. */
WORKER_API worker_t *worker_supervisor(
    const worker_child_spec *children, size_t n, const worker_sup_opts *opts);

/* Add a child and start it (after the children already there). Any thread
 * (from another worker it waits for the supervisor's answer).
 * WORKER_EINVAL: NULL, not a supervisor (a root worker, a plain worker), a
 * bad spec (as worker_supervisor) or a name already taken; WORKER_EREJECTED:
 * the supervisor is not running (or stopping); WORKER_ENOMEM. */
WORKER_API int worker_supervisor_add(worker_t *sup, const worker_child_spec *spec);

/* Stop the child `name` and forget it; returns once it has ended. From then
 * on it is not restarted and refuses events (what its mailbox held is
 * delivered first). WORKER_EINVAL: NULL, not a supervisor, an unknown
 * name; WORKER_EREJECTED: the supervisor is not running. Any thread. */
WORKER_API int worker_supervisor_remove(worker_t *sup, const char *name);

/* The child `name` (borrowed: valid while it is the supervisor's child;
 * take a reference to keep it); NULL if unknown, or `sup` is not a
 * supervisor. The same worker_t across restarts. Any thread. */
WORKER_API worker_t *worker_supervisor_child(worker_t *sup, const char *name);

#ifdef __cplusplus
}
#endif
#endif
