/* Fixed-size object pools: a per-thread cache in front of a shared depot of
 * full magazines, so steady-state traffic never calls malloc. Objects are
 * carved from slabs, so an object costs its size and nothing more. The
 * magazines no call took for a second go back to their slabs, 16 per later
 * call (a depot keeps 16), and a slab whose objects are all back is freed
 * (pool.c). */
#ifndef WK_POOL_H
#define WK_POOL_H

#include <stddef.h>

#include "wk_thread.h"

/* Object sizes of each class (multiples of 16: every object is 16-byte
 * aligned); users static-assert that their struct fits. */
#define WK_POOL_EVENT_SIZE 64
#define WK_POOL_TRACED_EVENT_SIZE 80
#define WK_POOL_QNODE_SIZE 32
/* The worker object (lib/worker/wk_worker.h checks that it fits): carved
 * from slabs like events, so a million pooled workers cost no malloc
 * each, and their 64-byte alignment costs nothing. */
#define WK_POOL_WORKER_SIZE 1472

enum wk_pool_class {
    WK_POOL_EVENT = 0, /* struct worker_event */
    WK_POOL_TRACED_EVENT = 1, /* wk_traced_event: events made while tracing */
    WK_POOL_QNODE = 2, /* mailbox queue nodes and retirement tickets */
    WK_POOL_WORKER = 3, /* struct worker */
};

/* An object of the class; NULL when memory runs out. Any thread. */
void *wk_pool_alloc(enum wk_pool_class cls);

/* Give an object back. Any thread (also one without a context). */
void wk_pool_free(enum wk_pool_class cls, void *obj);

/* Return a thread's caches to the depot (thread exit). */
void wk_pool_flush(wk_thread *t);
/* fork(): hold every depot's lock across it (fork.c). The objects in the
 * caches of the threads that do not exist in the child are lost there. */
void wk_pool_atfork_prepare(void);
void wk_pool_atfork_release(void);

/* The bytes of the slabs the class holds now (in use, cached or idle).
 * Any thread; for tests and measurements. */
size_t wk_pool_retained_bytes(enum wk_pool_class cls);

#endif
