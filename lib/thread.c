/* Per-thread contexts.
 *
 * Invariants:
 * - `wk_self` is only ever read and written by its own thread.
 * - The pthread key's destructor runs at thread exit: it first lets the
 *   worker layer end the thread's root worker (which may still deliver
 *   events), then gives back the epoch record (its barrier runs the pending
 *   callbacks, which free into this thread's caches) and last empties the
 *   caches into the depot.
 * - The key and the exit hook are process-wide (global state: a thread-exit
 *   destructor can only be reached through a key), set once.
 */
#include "wk_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "wk_epoch.h"
#include "wk_event.h"
#include "wk_pool.h"
#include "wk_trace.h"

_Thread_local wk_thread *wk_self;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static void (*_Atomic exit_hook)(wk_thread *t); /* set by any thread, read at exit */

static void thread_exit(void *arg)
{
    wk_thread *t = arg;
    t->tearing_down = true;
    void (*hook)(wk_thread *) = atomic_load(&exit_hook);
    if (hook)
        hook(t);
    wk_thread_drop_last_returned(t);
    wk_trace_thread_exit(t);
    wk_epoch_unregister(t->epoch); /* runs pending callbacks into the caches */
    wk_pool_flush(t);
    wk_self = NULL;
    free(t);
}

static void make_key(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

void wk_thread_set_exit_hook(void (*hook)(wk_thread *t))
{
    atomic_store(&exit_hook, hook);
}

void wk_thread_drop_last_returned(wk_thread *t)
{
    worker_event_t *e = t->last_returned;
    t->last_returned = NULL;
    if (e)
        wk_event_unref(e);
}

wk_thread *wk_thread_prepare(void)
{
    pthread_once(&key_once, make_key);
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

void wk_thread_adopt(wk_thread *t)
{
    wk_self = t;
    pthread_setspecific(exit_key, t);
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
    if (t)
        wk_thread_adopt(t);
    return t;
}
