/* Pooled workers (M:N): the scheduler's threads and run queues (sched.c),
 * a pooled worker's run in slices (pooled.c), and the setting of
 * worker_scheduler_threads (sched_config.c). */
#ifndef WK_SCHED_H
#define WK_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "wk_worker.h"

/* Freeze worker_scheduler_threads' setting (the scheduler is starting):
 * later calls get WORKER_ESTATE. Returns the number set, or -1 when it was
 * never set. */
int wk_sched_freeze_config(void);

/* Start the scheduler's threads, once. WORKER_OK, WORKER_ENOMEM, or
 * WORKER_EAGAIN when the system refused every thread. */
int wk_sched_start(void);
/* Put a claimed pooled worker (its mailbox's `sleeping` taken back) on a
 * run queue: the calling scheduler thread's own, else the next in turn. */
void wk_sched_submit(worker_t *w);
/* Run `w` again at `deadline` (a timer of its own). Takes over one
 * reference on w when it returns true; false: out of memory, the caller
 * keeps it. */
bool wk_sched_timer(worker_t *w, uint64_t deadline);
/* True when the calling scheduler thread's own queue is empty (a hint). */
bool wk_sched_nothing_queued_here(void);
/* In a fork() child: forget the parent's scheduler (fork.c). */
void wk_sched_atfork_child(void);
/* A pooled worker's end: take its entry out of the timer heap, with the
 * reference the entry held (the caller's run still holds one). */
void wk_sched_forget(worker_t *w);
/* The calling thread's index among the scheduler's threads, or -1. */
int wk_sched_queue_index(void);

/* pooled.c */
/* The run begins on the starting thread t (started and its parent told);
 * the scheduler runs it from now on. */
void wk_pooled_begin(worker_t *w, wk_thread *t);
/* One slice on the scheduler thread t: a batch of events, or the next
 * step of its end sequence; then it rests or goes back on a queue. */
void wk_pooled_run_slice(worker_t *w, wk_thread *t);
/* The mailbox hook: a producer took an idle pooled worker's flag back. */
void wk_pooled_woken(wk_mailbox *mb);
/* True when the calling thread runs a pooled worker now: a blocking call
 * must return WORKER_EWOULDBLOCK. */
static inline bool wk_in_pooled(const wk_thread *t)
{
    return t && t->current && t->current->pooled;
}

#endif
