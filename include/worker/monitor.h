/* Supervision as messages: monitors.
 *
 * The monitoring worker gets WORKER_DOWN when the target ends; its data
 * points at a worker_down_t (see lifecycle.h), valid like any event data:
 * until the next wait or update. The parent/child tree is built on the same
 * messages (CHILD_THREAD_* are the parent's notices of its child's end). */
#ifndef WORKER_MONITOR_H
#define WORKER_MONITOR_H

#include <worker/export.h>
#include <worker/lifecycle.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The current worker gets WORKER_DOWN (sender: target) when `target` ends;
 * at once if it is not running. Once per monitor however often this is
 * called: one DOWN per end of the target for each monitoring worker, also
 * when it is called again after that end (a restart is a new end to monitor).
 * DOWN comes after every event the target fired at the monitoring worker.
 * WORKER_EINVAL for NULL or the current worker itself; WORKER_ENOMEM when
 * memory runs out (nothing registered or sent). */
WORKER_API int worker_monitor(worker_t *target);

/* Cancel a monitor: no WORKER_DOWN is sent for it any more (one already
 * queued stays queued). WORKER_EINVAL if the current worker does not
 * monitor `target`. */
WORKER_API int worker_demonitor(worker_t *target);

#ifdef __cplusplus
}
#endif
#endif
