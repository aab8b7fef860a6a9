/* Per-thread context: every thread that touches the library gets one on first
 * use. It holds the thread's ck_epoch record, its object-pool caches and the
 * stack of workers running on the thread. Only its own thread touches it. */
#ifndef WK_THREAD_H
#define WK_THREAD_H

#include <ck_epoch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <worker/types.h>

#include "wk_atom.h"

#define WK_POOL_CLASSES 3

typedef struct wk_pool_cache {
    void *head; /* free objects linked through their first word */
    size_t count;
} wk_pool_cache;

typedef struct wk_thread {
    ck_epoch_record_t *epoch;
    unsigned epoch_depth; /* nesting of wk_epoch_enter */
    wk_pool_cache cache[WK_POOL_CLASSES];
    worker_t *current; /* top of the stack of workers on this thread */
    worker_t *root; /* this thread's root worker, once made */
    worker_event_t *last_returned; /* keeps the data of the last wait valid */
    worker_t *credit_worker; /* references taken in advance on this worker */
    uint32_t credit; /* how many of them are left to hand out */
    bool tearing_down;
    struct wk_trace_buf *trace; /* this thread's trace buffer, once it traced */
    uint32_t trace_skip; /* events to leave untraced before the next sample */
    uint32_t trace_generation; /* the trace that trace_skip counts for */
    wk_atom_cache fired_name; /* the last event name this thread fired */
} wk_thread;

/* The calling thread's context (its own thread only reads or writes it). */
extern _Thread_local wk_thread *wk_self;

wk_thread *wk_thread_make(void); /* the slow path of wk_thread_get */

/* The calling thread's context, made on first use; NULL if memory ran out. */
static inline wk_thread *wk_thread_get(void)
{
    return __builtin_expect(wk_self != NULL, 1) ? wk_self : wk_thread_make();
}

/* A context made on one thread for a thread about to be created, so that
 * the new thread cannot fail to get one: it adopts it first thing. NULL if
 * memory ran out. Free an unused one with wk_thread_discard(). */
wk_thread *wk_thread_prepare(void);
void wk_thread_adopt(wk_thread *t);
void wk_thread_discard(wk_thread *t);

/* The calling thread's context if it has one, else NULL. */
static inline wk_thread *wk_thread_peek(void)
{
    return wk_self;
}

/* Release the event that kept the last wait's data valid. */
void wk_thread_drop_last_returned(wk_thread *t);

/* Called at thread exit, before the epoch record is released, to end the
 * thread's root worker. Set once by the worker layer. */
void wk_thread_set_exit_hook(void (*hook)(wk_thread *t));

#endif
