/* Object pools (magazine style).
 *
 * Invariants:
 * - A thread's cache (wk_thread.cache) is touched only by that thread.
 * - The depot is process-wide (global state: objects freed on a consumer
 *   thread must reach the producer threads that allocate), one per class,
 *   guarded by its mutex. It holds whole magazines of MAG objects, so the
 *   mutex is taken once per MAG allocations or frees, not per object.
 * - A free object's first word links it into a cache list; a magazine's
 *   first object's second word links magazines in the depot. Objects are at
 *   least 16 bytes, so both words exist.
 * - Objects are never handed to two owners: alloc removes them from exactly
 *   one list, free pushes them on exactly one.
 */
#include "wk_pool.h"

#include <pthread.h>
#include <stdlib.h>

#define MAG 64
#define CACHE_MAX (2 * MAG)
#define DEPOT_MAX_MAGS 1024

typedef struct free_obj {
    struct free_obj *next; /* next object in a cache or magazine */
    struct free_obj *next_mag; /* in a magazine's first object: next magazine */
} free_obj;

typedef struct depot {
    pthread_mutex_t lock;
    free_obj *mags;
    size_t count;
} depot;

static depot depots[WK_POOL_CLASSES] = {
    { PTHREAD_MUTEX_INITIALIZER, NULL, 0 },
    { PTHREAD_MUTEX_INITIALIZER, NULL, 0 },
};

static const size_t class_size[WK_POOL_CLASSES] = { WK_POOL_EVENT_SIZE, WK_POOL_QNODE_SIZE };

static void *fresh(enum wk_pool_class cls)
{
    return aligned_alloc(16, class_size[cls]);
}

static free_obj *depot_take(enum wk_pool_class cls)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    free_obj *mag = d->mags;
    if (mag) {
        d->mags = mag->next_mag;
        d->count--;
    }
    pthread_mutex_unlock(&d->lock);
    return mag;
}

/* Hand a chain of MAG objects to the depot; free them if it is full. */
static void depot_give(enum wk_pool_class cls, free_obj *mag)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    bool kept = d->count < DEPOT_MAX_MAGS;
    if (kept) {
        mag->next_mag = d->mags;
        d->mags = mag;
        d->count++;
    }
    pthread_mutex_unlock(&d->lock);
    while (!kept && mag) {
        free_obj *next = mag->next;
        free(mag);
        mag = next;
    }
}

void *wk_pool_alloc(enum wk_pool_class cls)
{
    wk_thread *t = wk_thread_peek();
    if (!t)
        return fresh(cls);
    wk_pool_cache *c = &t->cache[cls];
    if (!c->head) {
        c->head = depot_take(cls);
        c->count = c->head ? MAG : 0;
        if (!c->head)
            return fresh(cls);
    }
    free_obj *o = c->head;
    c->head = o->next;
    c->count--;
    return o;
}

/* Detach the first MAG objects of the cache as one magazine. */
static free_obj *cut_magazine(wk_pool_cache *c)
{
    free_obj *first = c->head, *last = first;
    for (int i = 1; i < MAG; i++)
        last = last->next;
    c->head = last->next;
    last->next = NULL;
    c->count -= MAG;
    return first;
}

void wk_pool_free(enum wk_pool_class cls, void *obj)
{
    if (!obj)
        return;
    wk_thread *t = wk_thread_peek();
    if (!t) {
        free(obj);
        return;
    }
    wk_pool_cache *c = &t->cache[cls];
    free_obj *o = obj;
    o->next = c->head;
    c->head = o;
    if (++c->count > CACHE_MAX)
        depot_give(cls, cut_magazine(c));
}

void wk_pool_flush(wk_thread *t)
{
    for (int cls = 0; cls < WK_POOL_CLASSES; cls++) {
        wk_pool_cache *c = &t->cache[cls];
        while (c->count >= MAG)
            depot_give((enum wk_pool_class)cls, cut_magazine(c));
        while (c->head) {
            free_obj *next = ((free_obj *)c->head)->next;
            free(c->head);
            c->head = next;
        }
        c->count = 0;
    }
}
