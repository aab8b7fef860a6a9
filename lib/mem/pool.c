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
 *   under the depot's mutex. Carving is what makes a 64-byte event cost 64
 *   bytes: a malloc per object would add its chunk header and rounding.
 * - Every carved object is in exactly one place: in use, in a thread's
 *   cache, in a depot magazine (`mags` or `reaping`), in the depot's loose
 *   list, in a reap's private cursors (on its way to its slab, depot
 *   locked), or in its own slab's free list. A slab's `carved` counts its
 *   carved objects and `free_count` those in its free list, so a slab other
 *   than the one being carved whose `free_count == carved` holds no object
 *   anywhere else: it leaves `slabs` at once, waits in `released` until the
 *   depot's mutex is let go, and is then freed, its whole pages first given
 *   to the system (madvise). `slabs` lists every slab the depot holds,
 *   sorted by address (to find an object's slab); `partial` lists the slabs
 *   with a non-empty free list.
 * - The bound on idle memory is a working set: time runs in intervals of
 *   IDLE_NS, and `low` is the fewest magazines `mags` held in the current
 *   one. Magazines are given and taken at the head, so the `low` at the
 *   bottom were not touched for a whole interval. The first depot call
 *   after an interval has ended moves those beyond KEEP_MAGS to `reaping`
 *   (every magazine beyond KEEP_MAGS when no call came for another whole
 *   interval: all of them sat idle that long; nothing when `reaping` is
 *   not empty yet). Every depot call then gives the objects of up to
 *   REAP_BATCH reaping magazines back to their slabs, so no single call
 *   pays for a large burst. A take that finds `mags` empty takes objects
 *   from partial slabs, else carves new ones; while a reap runs it always
 *   carves, so the slabs being reaped drain instead of being spread over
 *   the objects in use. Steady traffic dips into its magazines every
 *   interval and keeps them; the threads' fast paths (cache push and pop)
 *   are unchanged, and a depot call adds a coarse clock read and two
 *   tests.
 * - A free object's first word links it into a cache, magazine, loose or
 *   slab list; a magazine's first object's second word links magazines in
 *   the depot. Objects are at least 16 bytes, so both words exist.
 * - Objects are never handed to two owners: alloc removes them from exactly
 *   one list, free pushes them on exactly one.
 */
#include "wk_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "wk_array.h"

#define MAG 64
#define CACHE_MAX (2 * MAG)
/* New objects handed to a cache at a time: few, so that a thread that only
 * needs a handful (an idle worker) does not hold a magazine's worth. */
#define CARVE 8
#define SLAB_BYTES (64 * 1024)
#define SLAB_HEADER 64 /* the slab's own record; keeps objects line aligned */
/* The bound on idle memory (docs/architecture.md, "Events and memory"):
 * magazines no call took for IDLE_NS go back to their slabs, beyond the
 * KEEP_MAGS a depot always keeps. */
#define IDLE_NS 1000000000u
#define KEEP_MAGS 16
#define REAP_BATCH 16 /* reaping magazines given back per depot call */

typedef struct free_obj {
    struct free_obj *next; /* next object in a cache, magazine, loose or slab list */
    struct free_obj *next_mag; /* in a magazine's first object: next magazine */
} free_obj;

/* The head of every slab (its first SLAB_HEADER bytes). Depot locked. */
typedef struct slab {
    struct slab *prev, *next; /* in the depot's `partial` list */
    free_obj *free; /* its objects a reap gave back */
    uint32_t free_count;
    uint32_t carved;
    bool partial; /* in the `partial` list */
} slab;

_Static_assert(sizeof(slab) <= SLAB_HEADER, "a slab's record outgrew its header");

typedef struct depot {
    pthread_mutex_t lock;
    free_obj *mags; /* full magazines, the most recently given first */
    size_t mag_count;
    free_obj *reaping; /* idle magazines on their way back to their slabs */
    size_t low; /* the fewest magazines held in this interval */
    uint64_t interval_end; /* CLOCK_MONOTONIC_COARSE ns */
    free_obj *loose; /* single objects, fewer than MAG */
    size_t loose_count;
    slab **slabs; /* every slab, sorted by address (and so kept reachable) */
    size_t slab_count, slab_cap;
    slab *partial; /* slabs with objects in their free list */
    slab *carving; /* the newest slab, the one being carved */
    slab *released; /* out of `slabs`, to be freed once unlocked (through `next`) */
    char *slab_next; /* its uncarved rest */
    size_t slab_left; /* bytes */
} depot;

#define DEPOT_INIT                                                                                 \
    {                                                                                              \
        .lock = PTHREAD_MUTEX_INITIALIZER                                                          \
    }
static depot depots[WK_POOL_CLASSES] = { DEPOT_INIT, DEPOT_INIT, DEPOT_INIT, DEPOT_INIT };

static const size_t class_size[WK_POOL_CLASSES]
    = { WK_POOL_EVENT_SIZE, WK_POOL_TRACED_EVENT_SIZE, WK_POOL_QNODE_SIZE, WK_POOL_WORKER_SIZE };

/* ---- slabs (depot locked) ---- */

/* The index of the last slab starting at or before `p` (slab_count when
 * none does). */
static size_t slab_at_or_before(const depot *d, const void *p)
{
    size_t lo = 0, hi = d->slab_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((const char *)d->slabs[mid] <= (const char *)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : d->slab_count;
}

/* The slab an object was carved from. `hint` (may be NULL) is tried
 * first: the objects of a magazine mostly come from one slab. */
static slab *slab_of(const depot *d, const void *o, slab *hint)
{
    if (hint && (const char *)o > (const char *)hint
        && (const char *)o < (const char *)hint + SLAB_BYTES)
        return hint;
    return d->slabs[slab_at_or_before(d, o)];
}

/* A new slab, recorded in `slabs`; NULL when memory runs out. */
static slab *slab_new(depot *d)
{
    slab *s = aligned_alloc(64, SLAB_BYTES);
    if (!s)
        return NULL;
    slab **grown = wk_array_room(d->slabs, &d->slab_cap, d->slab_count, sizeof *grown, 16);
    if (!grown) {
        free(s);
        return NULL;
    }
    d->slabs = grown;
    *s = (slab) { 0 };
    size_t before = slab_at_or_before(d, s);
    size_t at = before == d->slab_count ? 0 : before + 1;
    memmove(&d->slabs[at + 1], &d->slabs[at], (d->slab_count - at) * sizeof *d->slabs);
    d->slabs[at] = s;
    d->slab_count++;
    return s;
}

static void partial_unlink(depot *d, slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        d->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->partial = false;
}

/* Out of the depot: a slab none of whose objects is anywhere else. It is
 * freed by slabs_free once the depot is unlocked. */
static void slab_release(depot *d, slab *s)
{
    if (s->partial)
        partial_unlink(d, s);
    size_t at = slab_at_or_before(d, s);
    memmove(&d->slabs[at], &d->slabs[at + 1], (d->slab_count - at - 1) * sizeof *d->slabs);
    d->slab_count--;
    s->next = d->released;
    d->released = s;
}

/* The slabs released while the caller held the depot's mutex (it still
 * does); give them to slabs_free after unlocking. */
static slab *take_released(depot *d)
{
    slab *list = d->released;
    d->released = NULL;
    return list;
}

/* Free released slabs, the depot unlocked. free() alone would leave their
 * pages in malloc's heap, resident, until malloc reuses or trims them: the
 * whole pages inside a slab go to the system first (malloc's own headers
 * lie outside them). */
static void slabs_free(slab *list)
{
    if (!list)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    while (list) {
        slab *s = list;
        list = s->next;
        uintptr_t from = ((uintptr_t)s + page - 1) & ~(page - 1);
        uintptr_t to = ((uintptr_t)s + SLAB_BYTES) & ~(page - 1);
        if (to > from)
            madvise((void *)from, to - from, MADV_DONTNEED);
        free(s);
    }
}

static bool slab_empty(const depot *d, const slab *s)
{
    return s != d->carving && s->free_count == s->carved;
}

/* An object back to its slab's free list; the slab is released when that
 * was its last object out. Returns the slab while it is still held (a
 * hint for the next object), else NULL. */
static slab *slab_put(depot *d, free_obj *o, slab *hint)
{
    slab *s = slab_of(d, o, hint);
    o->next = s->free;
    s->free = o;
    s->free_count++;
    if (slab_empty(d, s)) {
        slab_release(d, s);
        return NULL;
    }
    if (!s->partial) {
        s->partial = true;
        s->prev = NULL;
        s->next = d->partial;
        if (d->partial)
            d->partial->prev = s;
        d->partial = s;
    }
    return s;
}

/* One object from a partial slab's free list, or NULL. */
static free_obj *slab_take(depot *d)
{
    slab *s = d->partial;
    if (!s)
        return NULL;
    free_obj *o = s->free;
    s->free = o->next;
    s->free_count--;
    if (!s->free)
        partial_unlink(d, s);
    return o;
}

/* One new object from the slab; NULL when memory runs out. Depot locked. */
static free_obj *carve_one(depot *d, size_t size)
{
    if (d->slab_left < size) {
        slab *s = slab_new(d);
        if (!s)
            return NULL;
        slab *was = d->carving;
        d->carving = s;
        d->slab_next = (char *)s + SLAB_HEADER;
        d->slab_left = SLAB_BYTES - SLAB_HEADER;
        if (was && slab_empty(d, was)) /* it was only kept for carving */
            slab_release(d, was);
    }
    free_obj *o = (free_obj *)d->slab_next;
    d->slab_next += size;
    d->slab_left -= size;
    d->carving->carved++;
    return o;
}

/* One object for a take that found no magazine: from a partial slab's
 * free list, else a new one. While a reap runs, always a new one: the
 * slabs being reaped are left to drain (so they can be freed) instead of
 * being spread over the objects in use. Depot locked. */
static free_obj *take_one(depot *d, size_t size)
{
    free_obj *o = d->reaping ? NULL : slab_take(d);
    return o ? o : carve_one(d, size);
}

/* Up to CARVE objects linked as a list (NULL when none could be made), by
 * take_one. Depot locked. */
static free_obj *carve_some(depot *d, size_t size, size_t *count)
{
    free_obj *head = NULL;
    for (*count = 0; *count < CARVE; (*count)++) {
        free_obj *o = take_one(d, size);
        if (!o)
            break;
        o->next = head;
        head = o;
    }
    return head;
}

/* A full magazine into the depot. Depot locked. */
static void push_mag(depot *d, free_obj *mag)
{
    mag->next_mag = d->mags;
    d->mags = mag;
    d->mag_count++;
}

/* ---- giving idle magazines back ---- */

static uint64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* At the first call after an interval has ended: the magazines that sat
 * idle through it, beyond KEEP_MAGS, move to `reaping`; the next interval
 * starts. Depot locked. */
static void roll_interval(depot *d, uint64_t now)
{
    if (__builtin_expect(now < d->interval_end, 1))
        return;
    size_t idle = now - d->interval_end >= IDLE_NS ? d->mag_count /* no call for a while */
                                                   : d->low;
    d->interval_end = now + IDLE_NS;
    if (idle > KEEP_MAGS && !d->reaping) {
        size_t keep = d->mag_count - idle + KEEP_MAGS; /* >= 1 */
        free_obj *last_kept = d->mags;
        for (size_t i = 1; i < keep; i++)
            last_kept = last_kept->next_mag;
        d->reaping = last_kept->next_mag;
        last_kept->next_mag = NULL;
        d->mag_count = keep;
    }
    d->low = d->mag_count;
}

/* The objects of up to REAP_BATCH reaping magazines back to their slabs.
 * The magazines are walked side by side: each is a chain of dependent
 * loads of objects long out of the caches, and the loads of different
 * chains overlap. Depot locked. */
static __attribute__((noinline, cold)) void reap_some(depot *d)
{
    free_obj *cursor[REAP_BATCH];
    slab *hint[REAP_BATCH];
    int n = 0;
    for (; n < REAP_BATCH && d->reaping; n++) {
        cursor[n] = d->reaping;
        hint[n] = NULL;
        d->reaping = d->reaping->next_mag;
    }
    for (bool more = n > 0; more;) {
        more = false;
        for (int i = 0; i < n; i++) {
            free_obj *o = cursor[i];
            if (!o)
                continue;
            cursor[i] = o->next;
            hint[i] = slab_put(d, o, hint[i]);
            more = true;
        }
    }
}

static uint64_t depot_lock(depot *d)
{
    uint64_t now = coarse_now(); /* outside the mutex */
    pthread_mutex_lock(&d->lock);
    return now;
}

/* Unlock after a call: the interval's idle magazines start their way back,
 * a batch of them reaches their slabs, and released slabs are freed once
 * the mutex is let go. */
static void depot_unlock(depot *d, uint64_t now)
{
    roll_interval(d, now);
    if (__builtin_expect(d->reaping != NULL, 0))
        reap_some(d);
    slab *gone = take_released(d);
    pthread_mutex_unlock(&d->lock);
    slabs_free(gone);
}

static __attribute__((noinline)) free_obj *depot_take(enum wk_pool_class cls, size_t *count)
{
    depot *d = &depots[cls];
    uint64_t now = depot_lock(d);
    free_obj *mag = d->mags;
    if (mag) {
        d->mags = mag->next_mag;
        if (--d->mag_count < d->low)
            d->low = d->mag_count;
        *count = MAG;
    } else {
        mag = carve_some(d, class_size[cls], count);
    }
    depot_unlock(d, now);
    return mag;
}

static __attribute__((noinline)) void depot_give(enum wk_pool_class cls, free_obj *mag)
{
    depot *d = &depots[cls];
    uint64_t now = depot_lock(d);
    push_mag(d, mag);
    depot_unlock(d, now);
}

/* Depot locked: one object to the loose list, which becomes a magazine
 * when it has MAG. */
static void loose_put(depot *d, free_obj *o)
{
    o->next = d->loose;
    d->loose = o;
    if (++d->loose_count < MAG)
        return;
    free_obj *mag = d->loose;
    d->loose = NULL;
    d->loose_count = 0;
    push_mag(d, mag);
}

/* Alloc and free for threads without a context: one object at a time
 * under the depot's mutex. Not inlined: in wk_pool_alloc and wk_pool_free
 * their registers would cost the cached fast path a longer prologue. */
static __attribute__((noinline)) void *alloc_uncached(enum wk_pool_class cls)
{
    depot *d = &depots[cls];
    uint64_t now = depot_lock(d);
    free_obj *o = d->loose;
    if (o) {
        d->loose = o->next;
        d->loose_count--;
    } else {
        o = take_one(d, class_size[cls]);
    }
    depot_unlock(d, now);
    return o;
}

static __attribute__((noinline)) void free_uncached(enum wk_pool_class cls, free_obj *o)
{
    depot *d = &depots[cls];
    uint64_t now = depot_lock(d);
    loose_put(d, o);
    depot_unlock(d, now);
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
        uint64_t now = depot_lock(d);
        while (c->head) {
            free_obj *o = c->head;
            c->head = o->next;
            loose_put(d, o);
        }
        depot_unlock(d, now);
        c->count = 0;
    }
}

size_t wk_pool_retained_bytes(enum wk_pool_class cls)
{
    depot *d = &depots[cls];
    pthread_mutex_lock(&d->lock);
    size_t bytes = d->slab_count * SLAB_BYTES;
    pthread_mutex_unlock(&d->lock);
    return bytes;
}

void wk_pool_atfork_prepare(void)
{
    for (int i = 0; i < WK_POOL_CLASSES; i++)
        pthread_mutex_lock(&depots[i].lock);
}

void wk_pool_atfork_release(void)
{
    for (int i = WK_POOL_CLASSES - 1; i >= 0; i--)
        pthread_mutex_unlock(&depots[i].lock);
}
