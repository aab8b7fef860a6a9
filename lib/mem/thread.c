/* Per-thread contexts.
 *
 * Invariants:
 * - `wk_self` is only ever read and written by its own thread.
 * - The pthread key's destructor runs at thread exit: it first runs the
 *   exit hooks that the layers above registered, in stage order (the worker
 *   layer ends the thread's root worker, which may still deliver events;
 *   the tracer writes what the thread still holds), then gives back the
 *   epoch record (its barrier runs the pending callbacks, which free into
 *   this thread's caches) and last empties the caches into the depot.
 * - The key and the exit hooks are process-wide (global state: a thread-exit
 *   destructor can only be reached through a key); each hook is set once,
 *   before any thread can need it, and never unset.
 */
#include "wk_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "wk_epoch.h"
#include "wk_pool.h"

WK_TLS wk_thread *wk_self;
static pthread_key_t exit_key;
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool key_made; /* set once exit_key exists; a failed creation is retried */
static wk_thread_exit_fn _Atomic exit_hooks[WK_EXIT_STAGES]; /* set once, read at exit */

static void thread_exit(void *arg)
{
    wk_thread *t = arg;
    for (int stage = 0; stage < WK_EXIT_STAGES; stage++) {
        wk_thread_exit_fn hook = atomic_load(&exit_hooks[stage]);
        if (hook)
            hook(t);
    }
    wk_epoch_unregister(t->epoch); /* runs pending callbacks into the caches */
    wk_pool_flush(t);
    wk_self = NULL;
    free(t);
}

/* The key whose destructor ends a thread's context; false when the system
 * refused it (the next context tries again). */
static bool key_ready(void)
{
    if (atomic_load_explicit(&key_made, memory_order_acquire))
        return true;
    pthread_mutex_lock(&key_lock);
    if (!atomic_load_explicit(&key_made, memory_order_relaxed)
        && pthread_key_create(&exit_key, thread_exit) == 0)
        atomic_store_explicit(&key_made, true, memory_order_release);
    pthread_mutex_unlock(&key_lock);
    return atomic_load_explicit(&key_made, memory_order_relaxed);
}

void wk_thread_on_exit(enum wk_exit_stage stage, wk_thread_exit_fn hook)
{
    atomic_store(&exit_hooks[stage], hook);
}

wk_thread *wk_thread_prepare(void)
{
    if (!key_ready())
        return NULL;
    wk_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->epoch = wk_epoch_register();
    if (!t->epoch) {
        free(t);
        return NULL;
    }
    return t;
}

bool wk_thread_adopt(wk_thread *t)
{
    wk_self = t;
    return pthread_setspecific(exit_key, t) == 0;
}

void wk_thread_leave(wk_thread *t)
{
    pthread_setspecific(exit_key, NULL); /* clearing a value allocates nothing */
    thread_exit(t);
}

void wk_thread_discard(wk_thread *t)
{
    wk_epoch_unregister(t->epoch);
    free(t);
}

wk_thread *wk_thread_make(void)
{
    if (wk_self)
        return wk_self;
    wk_thread *t = wk_thread_prepare();
    if (t && !wk_thread_adopt(t)) { /* no destructor would end it: refuse */
        wk_self = NULL;
        wk_thread_discard(t);
        t = NULL;
    }
    return t;
}
