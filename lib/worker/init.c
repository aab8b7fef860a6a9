/* One-time set-up of the library: the built-in event names, and what the
 * layers below need from the worker layer, given to them here once.
 *
 * Invariants:
 * - `initialised` is set (release) only once every built-in atom exists and
 *   the lower layers are wired; every public entry point calls wk_init()
 *   (acquire) before it makes events, so what is written here is visible to
 *   every thread that uses it.
 * - A set-up that ran out of memory is retried by the next call (under
 *   `init_lock`); the atoms it made meanwhile are found again.
 * - Global state (the reason: the names and hooks are the process's, like
 *   the intern table): `wk_atoms` is written under init_lock until
 *   `initialised`, read-only afterwards.
 */
#include "wk_init.h"

#include <pthread.h>
#include <stdatomic.h>

#include <worker/error.h>
#include <worker/event.h>

#include "wk_control.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_thread.h"
#include "wk_worker.h"

wk_builtin_atoms wk_atoms;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static worker_t *hold_sender(wk_thread *t, worker_t *sender)
{
    return wk_sender_ref(t, sender);
}

static uint64_t sender_id(const worker_t *sender)
{
    return sender->id;
}

/* How events hold their senders, the thread-exit hook, and the actions of
 * the control events. */
static void wire_lower_layers(void)
{
    static const wk_sender_ops ops = { hold_sender, worker_unref, sender_id };
    wk_event_set_sender_ops(&ops);
    wk_thread_on_exit(WK_EXIT_WORKER, wk_current_thread_exit);
    wk_control_install();
}

/* WORKER_OK, or WORKER_ENOMEM when a name could not be made. */
static int init_builtins(void)
{
    struct {
        const wk_atom **slot;
        const char *name;
    } table[] = {
        { &wk_atoms.stop, WORKER_EV_STOP_THREAD },
        { &wk_atoms.pause, WORKER_EV_PAUSE_THREAD },
        { &wk_atoms.resume, WORKER_EV_RESUME_THREAD },
        { &wk_atoms.child_start, WORKER_EV_CHILD_THREAD_START },
        { &wk_atoms.child_stop, WORKER_EV_CHILD_THREAD_STOP },
        { &wk_atoms.child_error, WORKER_EV_CHILD_THREAD_ERROR },
        { &wk_atoms.child_done, WORKER_EV_CHILD_THREAD_DONE },
        { &wk_atoms.child_end, WORKER_EV_CHILD_THREAD_END },
        { &wk_atoms.wait_pending, WORKER_EV_WAIT_THREAD_PENDING },
        { &wk_atoms.wait_pending_done, WORKER_EV_WAIT_THREAD_PENDING_DONE },
        { &wk_atoms.event_reject, WORKER_EV_EVENT_REJECT },
        { &wk_atoms.execute, WORKER_EV_EXECUTE },
        { &wk_atoms.listener_error, WORKER_EV_LISTENER_ERROR },
        { &wk_atoms.defer_fulfill, WORKER_EV_DEFER_FULFILL },
        { &wk_atoms.worker_down, WORKER_EV_WORKER_DOWN },
        { &wk_atoms.linked_exit, WORKER_EV_LINKED_EXIT },
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        *table[i].slot = wk_atom_intern(table[i].name);
        if (!*table[i].slot)
            return WORKER_ENOMEM;
    }
    return WORKER_OK;
}

/* Set once everything is initialised: the common path is one acquire load
 * instead of taking the lock. */
static _Atomic int initialised;

int wk_init(void)
{
    if (__builtin_expect(atomic_load_explicit(&initialised, memory_order_acquire), 1))
        return WORKER_OK;
    pthread_mutex_lock(&init_lock);
    int rc = WORKER_OK;
    if (!atomic_load_explicit(&initialised, memory_order_relaxed)) {
        rc = init_builtins(); /* out of memory: the next call tries again */
        if (rc == WORKER_OK) {
            wire_lower_layers();
            atomic_store_explicit(&initialised, 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}
