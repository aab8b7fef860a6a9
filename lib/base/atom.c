/* Interned event names.
 *
 * Invariants:
 * - The table is process-wide (a reason for global state: names must map to
 *   the same atom on every thread). Atoms are never freed.
 * - Lookups take no lock: they walk a bucket chain with acquire loads.
 *   Inserts take `insert_lock`, re-check the chain, then publish the new atom
 *   at the head of its bucket with a release store, so a reader sees either
 *   the old head or a fully written atom.
 */
#include "wk_atom.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ATOM_BUCKETS 4096u

/* Global: the intern table shared by all threads (see the invariants). */
static _Atomic(wk_atom *) buckets[ATOM_BUCKETS];
static pthread_mutex_t insert_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_id = 1; /* guarded by insert_lock */

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
            a->action = NULL;
            _Atomic(wk_atom *) *bucket = &buckets[hash % ATOM_BUCKETS];
            a->next = atomic_load_explicit(bucket, memory_order_relaxed);
            atomic_store_explicit(bucket, a, memory_order_release);
        }
        found = a;
    }
    pthread_mutex_unlock(&insert_lock);
    return found;
}

void wk_atom_set_action(const wk_atom *atom, wk_atom_action action)
{
    ((wk_atom *)atom)->action = action;
}

void wk_atom_atfork_prepare(void)
{
    pthread_mutex_lock(&insert_lock);
}

void wk_atom_atfork_release(void)
{
    pthread_mutex_unlock(&insert_lock);
}
