/* fork(): the library's pthread_atfork handlers.
 *
 * Invariants:
 * - The handlers are installed when the library is loaded (a constructor),
 *   before any thread of the library exists.
 * - prepare takes the library's process-wide locks in one fixed order
 *   (signal routes, trace flusher, trace registry, log, names, pool
 *   depots), the order in which the other code paths nest them; parent and
 *   child give them back in reverse. So the child finds none held by a
 *   thread that does not exist there.
 * - In the child only the forking thread exists. `wk_fork_generation`
 *   (global: the process's generation) is bumped, and only the workers on
 *   the forking thread's stack are claimed for it: every other worker of
 *   the parent is not running in the child (fire: WORKER_EREJECTED). The
 *   epoch records of the other threads are given back, tracing is off,
 *   signal routes are dropped, and the scheduler of pooled workers is
 *   forgotten (its threads are gone; the first pooled worker started in
 *   the child starts a new one). What the other threads owned (their pool
 *   caches, trace buffers, workers) is left alone and lost in the child.
 * - Not supported: fork() from inside a listener or with a worker lock
 *   held (the forking thread must not be inside the library).
 */
#define _GNU_SOURCE
#include "wk_fork.h"

#include <pthread.h>

#include "wk_atom.h"
#include "wk_epoch.h"
#include "wk_log.h"
#include "wk_os.h"
#include "wk_pool.h"
#include "wk_sched.h"
#include "wk_signal.h"
#include "wk_trace.h"

_Atomic uint32_t wk_fork_generation;

static void prepare(void)
{
    wk_signal_atfork_prepare();
    wk_flusher_atfork_prepare();
    wk_trace_atfork_prepare();
    wk_log_atfork_prepare();
    wk_atom_atfork_prepare();
    wk_pool_atfork_prepare();
}

static void parent(void)
{
    wk_pool_atfork_release();
    wk_atom_atfork_release();
    wk_log_atfork_release();
    wk_trace_atfork_parent();
    wk_flusher_atfork_parent();
    wk_signal_atfork_parent();
}

/* The forking thread's workers stay running in the child. */
static void claim_own_stack(wk_thread *t)
{
    for (worker_t *w = t->current; w; w = w->below)
        wk_worker_claim(w);
    if (t->root)
        wk_worker_claim(t->root);
}

static void child(void)
{
    wk_os_atfork_child(); /* first: what follows may ask for the tid */
    atomic_fetch_add(&wk_fork_generation, 1);
    wk_thread *t = wk_thread_peek();
    if (t)
        claim_own_stack(t);
    wk_epoch_atfork_child(t ? t->epoch : NULL);
    wk_pool_atfork_release();
    wk_atom_atfork_release();
    wk_log_atfork_release();
    wk_trace_atfork_child();
    wk_flusher_atfork_child();
    wk_signal_atfork_child();
    wk_sched_atfork_child();
}

__attribute__((constructor)) static void install_fork_handlers(void)
{
    pthread_atfork(prepare, parent, child);
}
