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

#ifdef __cplusplus
}
#endif
#endif
