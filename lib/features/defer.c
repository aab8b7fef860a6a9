/* Defer: a value settled once, by anyone.
 *
 * Invariants:
 * - `lock` guards every field. The first resolve/reject moves `state` out
 *   of PENDING and takes the list of waiting workers under the lock; a get
 *   either sees the settled state or adds itself to that list under the
 *   same lock, so no waiter misses DEFER_FULFILL.
 * - DEFER_FULFILL goes to every waiter before the state moves, under the
 *   lock. Telling a waiter needs no memory: each waiter registers with a
 *   spare (an event object and a queue node, taken by the get, which fails
 *   with WORKER_ENOMEM without it), used when the settle cannot allocate.
 *   So a settle tells every waiter or, when its own thread has no context
 *   or root worker (out of memory before it starts), none: then the defer
 *   stays PENDING and the settle returns WORKER_ENOMEM. (Should a send
 *   still fail, a waiter told early reads the state under the lock after
 *   the settle has given up, finds it PENDING and waits again, still in
 *   the list.)
 * - A waiter holds a reference in the list until it is told or gives up;
 *   its spare goes back to the pools with it.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "wk_sched.h"
#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_probe.h"

enum defer_state { DEFER_PENDING, DEFER_RESOLVED, DEFER_REJECTED };

struct worker_defer {
    uint64_t trace_id; /* unique per defer, for traces */
    pthread_mutex_t lock;
    int state;
    void *value;
    int err;
    struct defer_waiter *waiters;
    size_t waiter_count, waiter_cap;
};

typedef struct defer_waiter {
    worker_t *w; /* holds a reference */
    wk_spare spare; /* its DEFER_FULFILL */
} defer_waiter;

/* Caller holds d->lock. false: out of memory (nothing added). */
static bool waiter_add(worker_defer_t *d, worker_t *w)
{
    defer_waiter *grown
        = wk_array_room(d->waiters, &d->waiter_cap, d->waiter_count, sizeof *grown, 4);
    if (!grown)
        return false;
    d->waiters = grown;
    defer_waiter x = { .w = w };
    if (!wk_spare_take(&x.spare)) {
        wk_spare_release(&x.spare);
        return false;
    }
    d->waiters[d->waiter_count++] = (defer_waiter) { worker_ref(w), x.spare };
    return true;
}

static void waiter_drop(defer_waiter *x)
{
    wk_spare_release(&x->spare);
    worker_unref(x->w);
}

/* Caller holds d->lock. */
static void waiter_remove(worker_defer_t *d, worker_t *w)
{
    for (size_t i = 0; i < d->waiter_count; i++) {
        if (d->waiters[i].w == w) {
            defer_waiter x = d->waiters[i];
            d->waiters[i] = d->waiters[--d->waiter_count];
            waiter_drop(&x);
            return;
        }
    }
}

static void waiters_free(defer_waiter *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        waiter_drop(&items[i]);
    free(items);
}

worker_defer_t *worker_defer_new(void)
{
    static _Atomic uint64_t next_id = 1; /* global: trace ids unique per process */
    worker_defer_t *d = calloc(1, sizeof *d);
    if (d) {
        d->trace_id = atomic_fetch_add(&next_id, 1);
        pthread_mutex_init(&d->lock, NULL);
    }
    return d;
}

static int settle(worker_defer_t *d, int state, void *value, int err)
{
    if (wk_init() != WORKER_OK)
        return WORKER_ENOMEM;
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    pthread_mutex_lock(&d->lock);
    bool ignored = d->state != DEFER_PENDING;
    int rc = ignored || me || !d->waiter_count ? WORKER_OK : WORKER_ENOMEM;
    for (size_t i = 0; !ignored && rc == WORKER_OK && i < d->waiter_count; i++)
        if (wk_send_spared(d->waiters[i].w, WK_EV_LIBRARY, wk_atoms.defer_fulfill, d, NULL, 0, me,
                t, &d->waiters[i].spare)
            == WORKER_ENOMEM)
            rc = WORKER_ENOMEM; /* not settled: the waiters told wait again */
    if (rc == WORKER_OK)
        wk_probe_defer_settled(me ? (uint32_t)me->id : 0,
            (state == DEFER_REJECTED ? WK_TRF_REJECTED : 0) | (ignored ? WK_TRF_IGNORED : 0),
            d->trace_id, err);
    if (ignored || rc != WORKER_OK) {
        pthread_mutex_unlock(&d->lock);
        return rc; /* settled already (ignored), or out of memory */
    }
    d->state = state;
    d->value = value;
    d->err = err;
    defer_waiter *waiters = d->waiters;
    size_t n = d->waiter_count;
    d->waiters = NULL;
    d->waiter_count = d->waiter_cap = 0;
    pthread_mutex_unlock(&d->lock);
    waiters_free(waiters, n);
    return WORKER_OK;
}

int worker_defer_resolve(worker_defer_t *d, void *value)
{
    return d ? settle(d, DEFER_RESOLVED, value, 0) : WORKER_EINVAL;
}

int worker_defer_reject(worker_defer_t *d, int err)
{
    return d && err ? settle(d, DEFER_REJECTED, NULL, err) : WORKER_EINVAL;
}

static bool fulfilled(const worker_event_t *e, void *userdata)
{
    return e->atom == wk_atoms.defer_fulfill && e->data == userdata;
}

/* Read a settled defer. Caller holds the lock. */
static int outcome(worker_defer_t *d, void **value)
{
    if (d->state == DEFER_REJECTED)
        return d->err;
    if (value)
        *value = d->value;
    return WORKER_OK;
}

int worker_defer_get(worker_defer_t *d, void **value)
{
    return worker_defer_wait(d, -1, value);
}

int worker_defer_wait(worker_defer_t *d, double timeout, void **value)
{
    uint64_t deadline;
    if (!d || isnan(timeout))
        return WORKER_EINVAL;
    if (!wk_deadline_after(timeout, &deadline))
        deadline = WK_NO_DEADLINE;
    if (wk_init() != WORKER_OK)
        return WORKER_ENOMEM;
    wk_thread *t = wk_thread_get();
    if (wk_in_pooled(t))
        return WORKER_EWOULDBLOCK;
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    pthread_mutex_lock(&d->lock);
    if (d->state == DEFER_PENDING && !waiter_add(d, me)) {
        pthread_mutex_unlock(&d->lock);
        return WORKER_ENOMEM;
    }
    int rc = WORKER_OK;
    /* Again after a DEFER_FULFILL from a settle that then gave up. */
    while (rc == WORKER_OK && d->state == DEFER_PENDING) {
        pthread_mutex_unlock(&d->lock);
        wk_frame f = { .kind = WK_WAIT_COND,
            .cond = fulfilled,
            .userdata = d,
            .trace_kind = WK_TRW_DEFER,
            .trace_what = d->trace_id };
        rc = wk_loop_wait(me, t, &f, deadline);
        pthread_mutex_lock(&d->lock);
    }
    if (rc != WORKER_OK)
        waiter_remove(d, me);
    else
        rc = outcome(d, value);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void worker_defer_free(worker_defer_t *d)
{
    if (!d)
        return;
    waiters_free(d->waiters, d->waiter_count);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
