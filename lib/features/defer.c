/* Defer: a value settled once, by anyone.
 *
 * Invariants:
 * - `lock` guards every field. The first resolve/reject moves `state` out
 *   of PENDING and takes the list of waiting workers under the lock; a get
 *   either sees the settled state or adds itself to that list under the
 *   same lock, so no waiter misses DEFER_FULFILL.
 * - DEFER_FULFILL goes to every waiter before the state moves, under the
 *   lock. If one cannot be sent (out of memory) the defer stays PENDING
 *   and the settle returns WORKER_ENOMEM: a waiter told early reads the
 *   state under the lock after the settle has given up, finds it PENDING
 *   and waits again, still in the list.
 * - A waiter holds a reference in the list until it is told or gives up.
 */
#include <pthread.h>
#include <stdlib.h>

#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_probe.h"
#include "wk_tree.h"

enum defer_state { DEFER_PENDING, DEFER_RESOLVED, DEFER_REJECTED };

struct worker_defer {
    uint64_t trace_id; /* unique per defer, for traces */
    pthread_mutex_t lock;
    int state;
    void *value;
    int err;
    wk_worker_list waiters;
};

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
    int rc = ignored || me || !d->waiters.count ? WORKER_OK : WORKER_ENOMEM;
    for (size_t i = 0; !ignored && rc == WORKER_OK && i < d->waiters.count; i++)
        if (wk_send_library(d->waiters.items[i], wk_atoms.defer_fulfill, d, NULL, 0, me, t)
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
    wk_worker_list waiters = d->waiters;
    d->waiters = (wk_worker_list) { 0 };
    pthread_mutex_unlock(&d->lock);
    wk_list_release(waiters.items, waiters.count);
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
    if (!d)
        return WORKER_EINVAL;
    if (wk_init() != WORKER_OK)
        return WORKER_ENOMEM;
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    pthread_mutex_lock(&d->lock);
    if (d->state == DEFER_PENDING && !wk_list_add(&d->waiters, me)) {
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
        rc = wk_loop_wait(me, t, &f, WK_NO_DEADLINE);
        pthread_mutex_lock(&d->lock);
    }
    if (rc != WORKER_OK)
        wk_list_remove(&d->waiters, me);
    else
        rc = outcome(d, value);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void worker_defer_free(worker_defer_t *d)
{
    if (!d)
        return;
    wk_list_release(d->waiters.items, d->waiters.count);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
