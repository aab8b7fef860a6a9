/* Object pools (magazine style, slab backed).
 *
 * Invariants:
 * - A thread's cache (wk_thread.cache) is touched only by that thread.
 * - The depot is process-wide (global state: objects freed on a consumer
 *   thread must reach the producer threads that allocate), one per class,
 *   guarded by its mutex. It holds whole magazines of MAG objects, so the
 *   mutex is taken once per MAG allocations or frees, not per object. Loose
 *   objects (freed by threads without a context, or left in a cache at
 *   thread exit) wait in `loose` until MAG of them make a magazine.
 * - New objects are carved from slabs of SLAB_BYTES, CARVE at a time,
 *   under the depot's mutex. Slabs are never returned to the system: pooled
 *   memory stays at its high-water mark and is reused (docs/performance.md
 *   says so). Carving is what makes a 64-byte event cost 64 bytes: a malloc
 *   per object would add its chunk header and rounding.
 * - A free object's first word links it into a cache list; a magazine's
 *   first object's second word links magazines in the depot. Objects are at
 *   least 16 bytes, so both words exist.
 * - Objects are never handed to two owners: alloc removes them from exactly
 *   one list, free pushes them on exactly one.
 */
#include "wk_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define MAG 64
#define CACHE_MAX (2 * MAG)
/* New objects handed to a cache at a time: few, so that a thread that only
 * needs a handful (an idle worker) does not hold a magazine's worth. */
#define CARVE 8
#define SLAB_BYTES (64 * 1024)
#define SLAB_HEADER 64 /* the link to the previous slab; keeps objects line aligned */

typedef struct free_obj {
    struct free_obj *next; /* next object in a cache, magazine or loose list */
    struct free_obj *next_mag; /* in a magazine's first object: next magazine */
} free_obj;

typedef struct depot {
    pthread_mutex_t lock;
    free_obj *mags; /* full magazines */
    free_obj *loose; /* single objects, fewer than MAG */
    size_t loose_count;
    void *slabs; /* every slab, linked through its first word (kept reachable) */
    char *slab_next; /* the uncarved rest of the newest slab */
    size_t slab_left; /* bytes */
} depot;

#define DEPOT_INIT                                                                                 \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, NULL, NULL, 0                                    \
    }
static depot depots[WK_POOL_CLASSES] = { DEPOT_INIT, DEPOT_INIT, DEPOT_INIT };

static const size_t class_size[WK_POOL_CLASSES]
    = { WK_POOL_EVENT_SIZE, WK_POOL_TRACED_EVENT_SIZE, WK_POOL_QNODE_SIZE };

/* One new object from the slab; NULL when memory runs out. Depot locked. */
static free_obj *carve_one(depot *d, size_t size)
{
    if (d->slab_left < size) {
        char *slab = aligned_alloc(64, SLAB_BYTES);
        if (!slab)
            return NULL;
        *(void **)slab = d->slabs;
        d->slabs = slab;
        d->slab_next = slab + SLAB_HEADER;
        d->slab_left = SLAB_BYTES - SLAB_HEADER;
    }
    free_obj *o = (free_obj *)d->slab_next;
    d->slab_next += size;
    d->slab_left -= size;
    return o;
}

/* Up to CARVE new objects linked as a list (NULL when none could be made).
 * Depot locked. */
static free_obj *carve_some(depot *d, size_t size, size_t *count)
{
    free_obj *head = NULL;
    for (*count = 0; *count < CARVE; (*count)++) {
        free_obj *o = carve_one(d, size);
        if (!o)
            break;
        o->next = head;
        head = o;
    }
    return head;
}

/* Objects for an empty cache: a full magazine if the depot has one, else
 * a few fresh ones. Sets *count. */
static __attribute__((noinline)) free_obj *depot_take(enum wk_pool_class cls, size_t *count)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    free_obj *mag = d->mags;
    if (mag) {
        d->mags = mag->next_mag;
        *count = MAG;
    } else {
        mag = carve_some(d, class_size[cls], count);
    }
    pthread_mutex_unlock(&d->lock);
    return mag;
}

static __attribute__((noinline)) void depot_give(enum wk_pool_class cls, free_obj *mag)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    mag->next_mag = d->mags;
    d->mags = mag;
    pthread_mutex_unlock(&d->lock);
}

/* Depot locked: one object to the loose list, which becomes a magazine
 * when it has MAG. */
static void loose_put(depot *d, free_obj *o)
{
    o->next = d->loose;
    d->loose = o;
    if (++d->loose_count < MAG)
        return;
    d->loose->next_mag = d->mags;
    d->mags = d->loose;
    d->loose = NULL;
    d->loose_count = 0;
}

/* Alloc and free for threads without a context: one object at a time
 * under the depot's mutex. */
static void *alloc_uncached(enum wk_pool_class cls)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    free_obj *o = d->loose;
    if (o) {
        d->loose = o->next;
        d->loose_count--;
    } else {
        o = carve_one(d, class_size[cls]);
    }
    pthread_mutex_unlock(&d->lock);
    return o;
}

static void free_uncached(enum wk_pool_class cls, free_obj *o)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    loose_put(d, o);
    pthread_mutex_unlock(&d->lock);
}

void *wk_pool_alloc(enum wk_pool_class cls)
{
    wk_thread *t = wk_thread_peek();
    if (!t)
        return alloc_uncached(cls);
    wk_pool_cache *c = &t->cache[cls];
    if (!c->head) {
        c->head = depot_take(cls, &c->count);
        if (!c->head)
            return NULL;
    }
    free_obj *o = c->head;
    c->head = o->next;
    c->count--;
    /* The next object was most likely freed on another core: fetch its
     * line now, so the next alloc's read of its link does not stall
     * (P1 median 372 -> 231 ns/event in an interleaved A/B). */
    if (c->head)
        __builtin_prefetch(c->head, 1);
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
        free_uncached(cls, obj);
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
        depot *d = &depots[cls];
        pthread_mutex_lock(&d->lock);
        while (c->head) {
            free_obj *o = c->head;
            c->head = o->next;
            loose_put(d, o);
        }
        pthread_mutex_unlock(&d->lock);
        c->count = 0;
    }
}
