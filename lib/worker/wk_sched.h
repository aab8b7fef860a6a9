/* The scheduler of pooled workers (M:N): see sched.c. */
#ifndef WK_SCHED_H
#define WK_SCHED_H

/* Freeze worker_scheduler_threads' setting (the scheduler is starting):
 * later calls get WORKER_ESTATE. Returns the number set, or -1 when it was
 * never set. */
int wk_sched_freeze_config(void);

#endif
