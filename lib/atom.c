/* Interned event names.
 *
 * Invariants:
 * - The table is process-wide (a reason for global state: names must map to
 *   the same atom on every thread). Atoms are never freed.
 * - Lookups take no lock: they walk a bucket chain with acquire loads.
 *   Inserts take `insert_lock`, re-check the chain, then publish the new atom
 *   at the head of its bucket with a release store, so a reader sees either
 *   the old head or a fully written atom.
 * - wk_init: `initialised` is set (release) only once every built-in atom
 *   exists. A set-up that ran out of memory is retried by the next call
 *   (under `init_lock`); the atoms it made meanwhile are found again.
 */
#include "wk_atom.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <worker/error.h>
#include <worker/event.h>

#include "wk_epoch.h"

#define ATOM_BUCKETS 4096u

/* Global: the intern table shared by all threads (see the invariants). */
static _Atomic(wk_atom *) buckets[ATOM_BUCKETS];
static pthread_mutex_t insert_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_id = 1; /* guarded by insert_lock */

/* Global: written under init_lock until `initialised`, read-only afterwards. */
wk_builtin_atoms wk_atoms;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t hash_name(const char *s, size_t *len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const char *p = s;
    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    *len = (size_t)(p - s);
    return h;
}

static const wk_atom *find(const char *name, size_t len, uint32_t hash)
{
    wk_atom *a = atomic_load_explicit(&buckets[hash % ATOM_BUCKETS], memory_order_acquire);
    for (; a; a = a->next)
        if (a->hash == hash && a->len == len && memcmp(a->name, name, len) == 0)
            return a;
    return NULL;
}

const wk_atom *wk_atom_intern(const char *name)
{
    size_t len;
    uint32_t hash = hash_name(name, &len);
    const wk_atom *found = find(name, len, hash);
    if (found)
        return found;

    pthread_mutex_lock(&insert_lock);
    found = find(name, len, hash);
    if (!found) {
        wk_atom *a = malloc(sizeof *a + len + 1);
        if (a) {
            memcpy(a->name, name, len + 1);
            a->len = len;
            a->hash = hash;
            a->id = next_id++;
            _Atomic(wk_atom *) *bucket = &buckets[hash % ATOM_BUCKETS];
            a->next = atomic_load_explicit(bucket, memory_order_relaxed);
            atomic_store_explicit(bucket, a, memory_order_release);
        }
        found = a;
    }
    pthread_mutex_unlock(&insert_lock);
    return found;
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
    };
    wk_epoch_domain_init();
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
        if (rc == WORKER_OK)
            atomic_store_explicit(&initialised, 1, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}
