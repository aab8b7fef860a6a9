/* Per-thread context: every thread that touches the library gets one on first
 * use. It holds the thread's ck_epoch record and its object-pool caches, and
 * plain slots that the layers above keep per thread (the stack of workers
 * running on it, its trace buffer, ...): this layer never reads those slots,
 * it only gives each layer a hook at thread exit. Only its own thread touches
 * a context. */
#ifndef WK_THREAD_H
#define WK_THREAD_H

#include <ck_epoch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <worker/types.h>

#include "wk_atom.h"
#include "wk_tls.h"

#define WK_POOL_CLASSES 4

typedef struct wk_pool_cache {
    void *head; /* free objects linked through their first word */
    size_t count;
} wk_pool_cache;

typedef struct wk_thread {
    /* This layer's own state. */
    ck_epoch_record_t *epoch;
    unsigned epoch_depth; /* nesting of wk_epoch_enter */
    wk_pool_cache cache[WK_POOL_CLASSES];
    /* Slots of the worker layer. */
    worker_t *current; /* top of the stack of workers on this thread */
    worker_t *root; /* this thread's root worker, once made */
    worker_event_t *last_returned; /* keeps the data of the last wait valid */
    worker_t *credit_worker; /* references taken in advance on this worker */
    uint32_t credit; /* how many of them are left to hand out */
    wk_atom_cache fired_name; /* the last event name this thread fired */
    /* Slots of the trace layer. */
    struct wk_trace_buf *trace; /* this thread's trace buffer, once it traced */
    uint32_t trace_skip; /* events to leave untraced before the next sample */
    uint32_t trace_generation; /* the trace that trace_skip counts for */
} wk_thread;

/* The calling thread's context (its own thread only reads or writes it). */
extern WK_TLS wk_thread *wk_self;

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
/* Make `t` the calling thread's context, ended at thread exit. False when
 * the system refused the thread-exit slot (out of memory): `t` is the
 * thread's context all the same, but the caller must end it itself
 * (wk_thread_leave). */
bool wk_thread_adopt(wk_thread *t);
void wk_thread_discard(wk_thread *t);
/* End the calling thread's context `t` now (exit hooks, epoch record,
 * caches), as its thread-exit destructor would: for the threads the library
 * starts, which end theirs explicitly whether or not adopt got the slot. */
void wk_thread_leave(wk_thread *t);

/* The calling thread's context if it has one, else NULL. */
static inline wk_thread *wk_thread_peek(void)
{
    return wk_self;
}

/* The layers that keep state per thread, in the order their exit hooks
 * run: the worker layer first (ending a root worker may still deliver
 * events and trace), the tracer after it. */
enum wk_exit_stage { WK_EXIT_WORKER = 0, WK_EXIT_TRACE = 1, WK_EXIT_STAGES };
typedef void (*wk_thread_exit_fn)(wk_thread *t);

/* Run `hook` at the exit of every thread that has a context, before its
 * epoch record is released. Set once per stage by the layer it names. */
void wk_thread_on_exit(enum wk_exit_stage stage, wk_thread_exit_fn hook);

#endif
