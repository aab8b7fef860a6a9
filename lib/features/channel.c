/* Channels: one event object fanned out to every subscriber.
 *
 * Invariants:
 * - The subscriber set is an immutable array (`subs`) replaced as a whole
 *   by sub/unsub under `lock` (copy on write). `pub` reads it inside its
 *   epoch section without any lock; an old array is freed only after a
 *   grace period (wk_epoch_synchronize), so no publisher still reads it.
 * - The channel does not hold references on its subscribers. A worker
 *   keeps the list of channels it is on (worker.channels, under the
 *   worker's lock) and its last unref takes itself out of each array before
 *   its memory is reclaimed after a grace period: a publisher that read the
 *   worker from an old array still finds valid memory (a closed mailbox).
 * - Leaving at the last unref needs no memory: when no copy of an array
 *   can be made, the worker's slot in the current array is cleared in place
 *   (an atomic store of NULL, under `lock`); publishers load slots
 *   atomically and skip NULL ones, and the next copy leaves them out. The
 *   grace period before the worker's memory goes covers cleared slots too,
 *   and it is waited for also on a thread without a context.
 * - `refs`: the user's handle plus one per worker.channels entry, so a
 *   channel outlives a worker that is still leaving it.
 * - A publish with `wait` keeps the subscribers that were full (with a
 *   reference, taken only while the worker still has one: a subscriber
 *   may be at its last unref) and waits for room at each in turn after its
 *   epoch section, so it never runs its loop inside a section. Each
 *   subscriber's own policy (refuse or drop its oldest) applies to every
 *   offer; a refusal counts once in that subscriber's statistics.
 * - Lock order: a channel's lock, then a worker's lock; worker_free takes
 *   its list under the worker's lock and releases it before taking any
 *   channel's lock.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wk_sched.h"
#include "wk_array.h"
#include "wk_current.h"
#include "wk_epoch.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_list.h"
#include "wk_probe.h"

typedef struct subs {
    size_t count;
    worker_t *items[];
} subs;

struct worker_channel {
    uint64_t trace_id; /* unique per channel, for traces */
    pthread_mutex_t lock;
    _Atomic(subs *) current;
    _Atomic uint32_t refs;
};

static void leave_all(worker_t *w);

static void channel_unref(worker_channel_t *ch)
{
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(atomic_load_explicit(&ch->current, memory_order_relaxed));
    pthread_mutex_destroy(&ch->lock);
    free(ch);
}

worker_channel_t *worker_channel_new(void)
{
    if (wk_init() != WORKER_OK)
        return NULL;
    wk_worker_on_free(leave_all); /* before any worker can be on a channel */
    worker_channel_t *ch = calloc(1, sizeof *ch);
    subs *empty = calloc(1, sizeof *empty);
    if (!ch || !empty) {
        free(ch);
        free(empty);
        return NULL;
    }
    static _Atomic uint64_t next_id = 1; /* global: trace ids unique per process */
    ch->trace_id = atomic_fetch_add(&next_id, 1);
    pthread_mutex_init(&ch->lock, NULL);
    atomic_init(&ch->current, empty);
    atomic_init(&ch->refs, 1);
    return ch;
}

/* ---- the worker's own list (caller holds w->lock) ---- */

static bool worker_list_add(worker_t *w, worker_channel_t *ch)
{
    worker_channel_t **grown
        = wk_array_room(w->channels, &w->channel_cap, w->channel_count, sizeof *grown, 4);
    if (!grown)
        return false;
    w->channels = grown;
    w->channels[w->channel_count++] = ch;
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return true;
}

static bool worker_list_take(worker_t *w, worker_channel_t *ch)
{
    for (size_t i = 0; i < w->channel_count; i++) {
        if (w->channels[i] == ch) {
            w->channels[i] = w->channels[--w->channel_count];
            return true;
        }
    }
    return false;
}

/* ---- copy-on-write arrays (caller holds ch->lock) ---- */

/* A slot of the current array: publishers read it while the last unref of
 * a worker may clear it (leave_all). */
static worker_t *slot(const subs *s, size_t i)
{
    return __atomic_load_n(&s->items[i], __ATOMIC_RELAXED);
}

static size_t live_count(const subs *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        n += slot(s, i) != NULL;
    return n;
}

static long index_of(const subs *s, const worker_t *w)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->items[i] == w)
            return (long)i;
    return -1;
}

/* A copy of `s` with `add` appended or the item at `drop` left out. */
static subs *copy_with(const subs *s, worker_t *add, long drop)
{
    size_t n = s->count + (add ? 1 : 0) - (drop >= 0 ? 1 : 0);
    subs *c = malloc(sizeof *c + n * sizeof(worker_t *));
    if (!c)
        return NULL;
    c->count = 0;
    for (size_t i = 0; i < s->count; i++)
        if ((long)i != drop && s->items[i]) /* cleared slots are left out */
            c->items[c->count++] = s->items[i];
    if (add)
        c->items[c->count++] = add;
    return c;
}

/* Publish `fresh` and free the array it replaces after a grace period. */
static void replace(worker_channel_t *ch, subs *fresh, subs **old)
{
    *old = atomic_exchange_explicit(&ch->current, fresh, memory_order_acq_rel);
}

/* Free an array replaced under publishers' feet, after a grace period
 * (waited for also without a context: the memory may not wait). */
static void retire(subs *old)
{
    wk_epoch_synchronize(wk_thread_peek());
    free(old);
}

static worker_t *resolve(worker_t *w)
{
    if (w)
        return w;
    wk_thread *t = wk_thread_get();
    return t ? wk_current(t) : NULL;
}

int worker_channel_sub(worker_channel_t *ch, worker_t *w)
{
    if (!ch)
        return WORKER_EINVAL;
    if (!(w = resolve(w)))
        return WORKER_ENOMEM;
    pthread_mutex_lock(&ch->lock);
    subs *cur = atomic_load_explicit(&ch->current, memory_order_relaxed), *old = NULL;
    int rc = WORKER_OK;
    if (index_of(cur, w) < 0) {
        subs *fresh = copy_with(cur, w, -1);
        pthread_mutex_lock(&w->lock);
        bool listed = fresh && worker_list_add(w, ch);
        pthread_mutex_unlock(&w->lock);
        if (listed)
            replace(ch, fresh, &old);
        else
            free(fresh);
        rc = listed ? WORKER_OK : WORKER_ENOMEM;
    }
    pthread_mutex_unlock(&ch->lock);
    if (old)
        retire(old);
    return rc;
}

/* Take `w` out of the array. Caller holds ch->lock. */
static int drop_subscriber(worker_channel_t *ch, worker_t *w, subs **old)
{
    subs *cur = atomic_load_explicit(&ch->current, memory_order_relaxed);
    long at = index_of(cur, w);
    if (at < 0)
        return WORKER_EINVAL;
    subs *fresh = copy_with(cur, NULL, at);
    if (!fresh)
        return WORKER_ENOMEM;
    replace(ch, fresh, old);
    return WORKER_OK;
}

int worker_channel_unsub(worker_channel_t *ch, worker_t *w)
{
    if (!ch)
        return WORKER_EINVAL;
    if (!(w = resolve(w)))
        return WORKER_ENOMEM;
    subs *old = NULL;
    bool listed = false;
    pthread_mutex_lock(&ch->lock);
    int rc = drop_subscriber(ch, w, &old);
    if (rc == WORKER_OK) {
        pthread_mutex_lock(&w->lock);
        listed = worker_list_take(w, ch);
        pthread_mutex_unlock(&w->lock);
    }
    pthread_mutex_unlock(&ch->lock);
    if (old)
        retire(old);
    if (listed)
        channel_unref(ch);
    return rc;
}

/* Without memory for a copy: clear w's slot in place. Caller holds
 * ch->lock. */
static void clear_subscriber(worker_channel_t *ch, worker_t *w)
{
    subs *cur = atomic_load_explicit(&ch->current, memory_order_relaxed);
    long at = index_of(cur, w);
    if (at >= 0)
        __atomic_store_n(&cur->items[at], NULL, __ATOMIC_RELAXED);
}

/* At a worker's last reference (its free hook): leave every channel, and
 * return only when no publisher can still reach the worker through one.
 * Needs no memory (see the invariants). */
static void leave_all(worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    worker_channel_t **mine = w->channels;
    size_t n = w->channel_count;
    w->channels = NULL;
    w->channel_count = w->channel_cap = 0;
    pthread_mutex_unlock(&w->lock);
    subs **olds = n ? calloc(n, sizeof *olds) : NULL;
    for (size_t i = 0; i < n; i++) {
        subs *old = NULL;
        pthread_mutex_lock(&mine[i]->lock);
        if (drop_subscriber(mine[i], w, &old) == WORKER_ENOMEM)
            clear_subscriber(mine[i], w);
        pthread_mutex_unlock(&mine[i]->lock);
        if (olds)
            olds[i] = old;
        else if (old)
            retire(old); /* no room to batch: one grace period each */
    }
    if (n) {
        /* One grace period for all: publishers may still read the old arrays
         * or a cleared slot, and through them this worker, whose memory goes
         * after this. */
        wk_epoch_synchronize(wk_thread_peek());
        for (size_t i = 0; olds && i < n; i++)
            free(olds[i]);
        free(olds);
    }
    for (size_t i = 0; i < n; i++)
        channel_unref(mine[i]);
    free(mine);
}

static int check_pub(worker_channel_t *ch, const char *name, const worker_fire_opts *opts)
{
    if (!ch || !name || !*name)
        return WORKER_EINVAL;
    if (opts && (opts->bubble || opts->broadcast || (opts->copy_size && !opts->copy)))
        return WORKER_EINVAL;
    if (opts && isnan(opts->wait))
        return WORKER_EINVAL;
    return wk_init();
}

/* Subscribers that were full when a waiting publish offered them the
 * event (each holds a reference). */
typedef struct full_list {
    worker_t **items;
    size_t count, cap;
} full_list;

/* A reference on a worker read from the subscriber array, unless it is at
 * its last unref already. */
static bool ref_if_alive(worker_t *w)
{
    uint32_t refs = atomic_load_explicit(&w->refs, memory_order_relaxed);
    while (refs)
        if (atomic_compare_exchange_weak_explicit(
                &w->refs, &refs, refs + 1, memory_order_acq_rel, memory_order_relaxed))
            return true;
    return false;
}

static int offer_one(worker_t *sub, worker_event_t *e, wk_thread *t)
{
    wk_event_ref(e);
    int rc = wk_traced(e) ? wk_push_traced(sub, e, WK_TRF_CHANNEL, t)
                          : wk_mailbox_push(&sub->mb, e, t);
    if (rc != WORKER_OK)
        atomic_fetch_sub_explicit(&e->refs, 1, memory_order_relaxed); /* ours keeps it */
    return rc;
}

/* Keep a full subscriber for a second round; false without memory. */
static bool keep_full(full_list *full, worker_t *sub)
{
    worker_t **grown = wk_array_room(full->items, &full->cap, full->count, sizeof *grown, 4);
    if (!grown)
        return false;
    full->items = grown;
    if (!ref_if_alive(sub))
        return false;
    full->items[full->count++] = sub;
    return true;
}

static void count_refused(worker_t *sub, int rc)
{
    if (rc == WORKER_EFULL || rc == WORKER_EREJECTED)
        wk_count_refused(sub);
}

/* Offer `e` to every subscriber once; with `full`, the full ones are kept
 * there for a second round (without memory for that, they refuse). */
static int offer_all(worker_channel_t *ch, worker_event_t *e, full_list *full, wk_thread *t)
{
    int reached = 0;
    wk_epoch_enter(t);
    subs *s = atomic_load_explicit(&ch->current, memory_order_acquire);
    for (size_t i = 0; i < s->count; i++) {
        worker_t *sub = slot(s, i);
        if (!sub)
            continue; /* cleared by a worker's last unref */
        int rc = offer_one(sub, e, t);
        if (rc == WORKER_OK)
            reached++;
        else if (!(rc == WORKER_EFULL && full && keep_full(full, sub)))
            count_refused(sub, rc);
    }
    wk_epoch_exit(t);
    return reached;
}

/* Outside any epoch section: wait for room at each full subscriber in
 * turn (up to `seconds` each); a stopped publisher stops waiting. */
static int wait_for_full(full_list *full, worker_event_t *e, double seconds, wk_thread *t)
{
    int reached = 0;
    bool stopped = false;
    for (size_t i = 0; i < full->count; i++) {
        worker_t *sub = full->items[i];
        wk_room room;
        wk_room_begin(&room, seconds);
        int rc = WORKER_EFULL;
        while (!stopped && (rc = offer_one(sub, e, t)) == WORKER_EFULL) {
            int waited = wk_room_wait(&room, sub, t);
            stopped = waited == WORKER_EXIT;
            if (waited != WORKER_OK)
                break;
        }
        if (rc == WORKER_OK)
            reached++;
        else
            count_refused(sub, rc);
    }
    wk_list_release(full->items, full->count);
    return reached;
}

int worker_channel_pub_ex(
    worker_channel_t *ch, const char *name, void *data, const worker_fire_opts *opts)
{
    static const worker_fire_opts defaults;
    int rc = check_pub(ch, name, opts);
    if (rc != WORKER_OK)
        return rc;
    if (!opts)
        opts = &defaults;
    wk_thread *t = wk_thread_get();
    /* A pooled publisher may not wait; refusing the whole publish up front
     * keeps "nothing changed" true (a publish that stopped at its first
     * full subscriber would have reached some already). */
    if (opts->wait != 0 && wk_in_pooled(t))
        return WORKER_EWOULDBLOCK;
    const wk_atom *atom = wk_atom_intern(name);
    worker_t *sender = opts->target ? opts->target : (t ? wk_current(t) : NULL);
    worker_event_t *e = t && atom && sender
        ? wk_event_new(atom, WK_EV_USER, data, opts->copy, opts->copy_size, opts->release, sender)
        : NULL;
    if (!e)
        return WORKER_ENOMEM;
    full_list full = { 0 };
    int reached = offer_all(ch, e, opts->wait != 0 ? &full : NULL, t);
    if (full.count)
        reached += wait_for_full(&full, e, opts->wait, t); /* releases the list */
    else
        free(full.items);
    wk_probe_channel_publish((uint32_t)sender->id, reached, wk_event_serial(e), ch->trace_id, atom);
    wk_event_unref(e); /* the publisher's reference */
    return reached;
}

int worker_channel_pub(worker_channel_t *ch, const char *name, void *data)
{
    return worker_channel_pub_ex(ch, name, data, NULL);
}

size_t worker_channel_count(const worker_channel_t *ch)
{
    if (!ch)
        return 0;
    worker_channel_t *mch = (worker_channel_t *)ch;
    pthread_mutex_lock(&mch->lock);
    size_t n = live_count(atomic_load_explicit(&mch->current, memory_order_relaxed));
    pthread_mutex_unlock(&mch->lock);
    return n;
}

void worker_channel_free(worker_channel_t *ch)
{
    if (!ch)
        return;
    subs *empty = calloc(1, sizeof *empty), *old = NULL;
    size_t unlisted = 0;
    pthread_mutex_lock(&ch->lock);
    subs *cur = atomic_load_explicit(&ch->current, memory_order_relaxed);
    for (size_t i = 0; i < cur->count; i++) {
        worker_t *w = cur->items[i];
        if (!w)
            continue;
        pthread_mutex_lock(&w->lock);
        unlisted += worker_list_take(w, ch);
        pthread_mutex_unlock(&w->lock);
    }
    if (empty)
        replace(ch, empty, &old);
    pthread_mutex_unlock(&ch->lock);
    if (old)
        retire(old);
    while (unlisted--)
        channel_unref(ch);
    channel_unref(ch);
}
