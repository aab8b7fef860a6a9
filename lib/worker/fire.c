/* Firing events: admission into mailboxes, bubble and broadcast hops,
 * EVENT_REJECT for refused user events.
 *
 * Invariants:
 * - The firing call owns one reference to the event until it has offered
 *   it to every receiver; each accepted receiver holds one more. So the
 *   event cannot be recycled while hops are still being queued, and its
 *   release runs once, after the last receiver.
 * - When the first receiver refuses, nothing was accepted anywhere: the
 *   event is discarded without calling release (the caller keeps its data).
 * - A bubble or broadcast takes every memory it needs before the first
 *   push: the list of receivers (with references) and one queue node per
 *   hop. Out of memory it queues nothing and returns WORKER_ENOMEM; once
 *   the first receiver has accepted, no hop can be lost for want of memory.
 * - Parent pointers are immutable and kept alive by the child's reference,
 *   so walking up takes no lock; children lists are copied (with
 *   references) under each worker's lock, one worker at a time.
 * - A notice sent with a spare (wk_send_spared) uses the spare's event
 *   object and queue node only when it cannot allocate them now; what it
 *   used is taken out of the spare, the rest stays the caller's.
 * - A fire with `wait` retries only its first receiver while it is full
 *   (the event is not anywhere yet, so a retry cannot duplicate it); the
 *   hops of a bubble or broadcast follow each receiver's policy without
 *   waiting. A refusal counts once in the refuser's statistics, after the
 *   last try.
 */
#include <math.h>
#include <stdint.h>

#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_fork.h"
#include "wk_init.h"
#include "wk_list.h"
#include "wk_pool.h"
#include "wk_probe.h"
#include "wk_room.h"
#include "wk_tree.h"

/* What a trace needs of an event, read before it is offered: once a
 * mailbox has it, its receiver may recycle it at any moment. */
typedef struct offer_trace {
    bool on; /* recorded (not for internal commands) */
    uint64_t serial;
    const wk_atom *atom;
    uint32_t sender;
    unsigned flags;
} offer_trace;

int wk_push_traced_node(worker_t *to, worker_event_t *e, unsigned flags, void *node, wk_thread *t)
{
    offer_trace o = { .on = e->kind != WK_EV_INTERNAL,
        .serial = wk_event_serial(e),
        .atom = e->atom,
        .sender = e->sender ? (uint32_t)e->sender->id : 0,
        .flags = flags | (e->kind != WK_EV_USER ? WK_TRF_LIBRARY : 0)
            | (wk_event_copied(e) ? WK_TRF_COPY : 0) };
    wk_probe_depth_push(&to->depth, +1);
    int rc = node ? wk_mailbox_push_node(&to->mb, e, node, t) : wk_mailbox_push(&to->mb, e, t);
    if (rc != WORKER_OK)
        wk_probe_depth_push(&to->depth, -1);
    if (o.on)
        wk_probe_offer(o.sender, o.flags, o.serial, (uint32_t)to->id, o.atom, rc);
    return rc;
}

int wk_push_traced(worker_t *to, worker_event_t *e, unsigned flags, wk_thread *t)
{
    return wk_push_traced_node(to, e, flags, NULL, t);
}

/* Tracing off costs one test of the event's flag. */
static inline int push(worker_t *to, worker_event_t *e, unsigned flags, wk_thread *t)
{
    if (__builtin_expect(wk_traced(e), 0))
        return wk_push_traced(to, e, flags, t);
    return wk_mailbox_push(&to->mb, e, t);
}

/* The same with a queue node taken in advance (the call takes it over). */
static int push_node(worker_t *to, worker_event_t *e, unsigned flags, void *node, wk_thread *t)
{
    if (wk_traced(e))
        return wk_push_traced_node(to, e, flags, node, t);
    return wk_mailbox_push_node(&to->mb, e, node, t);
}

/* Count a refused user event in the refuser's statistics and tell its
 * sender (EVENT_REJECT). */
static void tell_sender_refused(
    worker_t *refuser, const worker_event_t *e, void *origin_data, wk_thread *t)
{
    if (e->kind == WK_EV_USER)
        wk_count_refused(refuser);
    worker_t *sender = e->sender;
    if (e->kind != WK_EV_USER || !sender || sender == refuser || !worker_is_running(sender))
        return;
    wk_send_library(sender, wk_atoms.event_reject, origin_data, NULL, 0, refuser, t);
}

/* The first receiver refused `e`: nothing was accepted anywhere, so the
 * event goes back unreleased (the caller keeps its data). */
static int refused(worker_t *to, worker_event_t *e, int rc, void *origin_data, wk_thread *t)
{
    if (rc == WORKER_EREJECTED || rc == WORKER_EFULL)
        tell_sender_refused(to, e, origin_data, t);
    wk_event_discard(e);
    return rc;
}

/* Offer one more receiver the shared event, with a node taken in advance. */
static void hop(
    worker_t *to, worker_event_t *e, void *origin_data, wk_thread *t, unsigned how, void *node)
{
    wk_event_ref(e);
    int rc = push_node(to, e, how, node, t);
    if (rc == WORKER_OK)
        return;
    atomic_fetch_sub_explicit(&e->refs, 1, memory_order_relaxed); /* ours keeps it alive */
    if (rc == WORKER_EREJECTED || rc == WORKER_EFULL)
        tell_sender_refused(to, e, origin_data, t);
}

/* The receivers of a bubble or broadcast after the first one (ancestors
 * first, then descendants), each with a reference, and one free queue node
 * for each, linked through their first word. */
typedef struct fan {
    worker_t **to;
    size_t count, cap, up; /* up: how many of them are ancestors */
    void *nodes;
} fan;

static bool fan_add(fan *f, worker_t *w)
{
    worker_t **grown = wk_array_room(f->to, &f->cap, f->count, sizeof *grown, 8);
    if (!grown)
        return false;
    f->to = grown;
    f->to[f->count++] = worker_ref(w);
    return true;
}

static bool fan_children(fan *f, worker_t *w)
{
    bool ok = true;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; ok && i < w->children.count; i++)
        ok = fan_add(f, w->children.items[i]);
    pthread_mutex_unlock(&w->lock);
    return ok;
}

/* Everything the hops need; false when memory ran out (fan_release then). */
static bool fan_collect(fan *f, worker_t *to, bool bubble, bool broadcast)
{
    for (worker_t *p = bubble ? to->parent : NULL; p; p = p->parent)
        if (!fan_add(f, p))
            return false;
    f->up = f->count;
    if (broadcast && !fan_children(f, to))
        return false;
    for (size_t i = f->up; broadcast && i < f->count; i++) /* grows as it goes */
        if (!fan_children(f, f->to[i]))
            return false;
    for (size_t i = 0; i < f->count; i++) {
        void *node = wk_pool_alloc(WK_POOL_QNODE);
        if (!node)
            return false;
        *(void **)node = f->nodes;
        f->nodes = node;
    }
    return true;
}

static void *fan_node(fan *f)
{
    void *node = f->nodes;
    f->nodes = *(void **)node;
    return node;
}

static void fan_release(fan *f)
{
    while (f->nodes)
        wk_pool_free(WK_POOL_QNODE, fan_node(f));
    wk_list_release(f->to, f->count);
}

/* An untraced user event to one receiver: the common case, kept short.
 * (Only user events come here: library events to one receiver go through
 * push_or_discard, fanned-out ones through hops.) */
static inline int deliver_plain(worker_t *to, worker_event_t *e, void *origin_data, wk_thread *t)
{
    int rc = wk_mailbox_push_user(&to->mb, e, t);
    return rc == WORKER_OK ? WORKER_OK : refused(to, e, rc, origin_data, t);
}

/* The first receiver; while it is full and the caller waits for room,
 * run the caller's loop and try again. */
static int push_first(worker_t *to, worker_event_t *e, unsigned flags, wk_room *rw, wk_thread *t)
{
    int rc = push(to, e, flags, t);
    while (rc == WORKER_EFULL && rw) {
        int waited = wk_room_wait(rw, to, t);
        if (waited != WORKER_OK)
            return waited;
        rc = push(to, e, flags, t);
    }
    return rc;
}

int wk_deliver(
    worker_t *to, worker_event_t *e, bool bubble, bool broadcast, void *origin_data, wk_thread *t)
{
    return wk_deliver_waiting(to, e, bubble, broadcast, origin_data, NULL, t);
}

int wk_deliver_waiting(worker_t *to, worker_event_t *e, bool bubble, bool broadcast,
    void *origin_data, wk_room *rw, wk_thread *t)
{
    bool fan_out = bubble || broadcast;
    if (!fan_out && !wk_traced(e) && !rw && e->kind == WK_EV_USER)
        return deliver_plain(to, e, origin_data, t);
    fan f = { 0 };
    if (fan_out && !fan_collect(&f, to, bubble, broadcast)) {
        fan_release(&f);
        wk_event_discard(e); /* nothing was queued anywhere */
        return WORKER_ENOMEM;
    }
    if (fan_out)
        wk_event_ref(e); /* the firing call's own reference */
    int rc = push_first(
        to, e, (bubble ? WK_TRF_BUBBLE : 0) | (broadcast ? WK_TRF_BROADCAST : 0), rw, t);
    if (rc != WORKER_OK) {
        fan_release(&f);
        return refused(to, e, rc, origin_data, t);
    }
    if (!fan_out)
        return WORKER_OK;
    for (size_t i = 0; i < f.count; i++)
        hop(f.to[i], e, origin_data, t,
            i < f.up ? WK_TRF_BUBBLE | WK_TRF_HOP_UP : WK_TRF_BROADCAST | WK_TRF_HOP_DOWN,
            fan_node(&f));
    fan_release(&f);
    wk_event_unref(e);
    return WORKER_OK;
}

static int push_or_discard(worker_t *to, worker_event_t *e, wk_thread *t)
{
    int rc = push(to, e, 0, t);
    if (rc != WORKER_OK)
        wk_event_discard(e);
    return rc;
}

int wk_send_kind(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t)
{
    if (!t)
        return WORKER_ENOMEM;
    worker_event_t *e = wk_event_new(atom, kind, data, copy, copy_size, NULL, sender);
    return e ? push_or_discard(to, e, t) : WORKER_ENOMEM;
}

bool wk_spare_take(wk_spare *s)
{
    if (!s->event)
        s->event = wk_pool_alloc(WK_POOL_EVENT);
    if (!s->node)
        s->node = wk_pool_alloc(WK_POOL_QNODE);
    return s->event && s->node;
}

void wk_spare_release(wk_spare *s)
{
    wk_pool_free(WK_POOL_EVENT, s->event);
    wk_pool_free(WK_POOL_QNODE, s->node);
    s->event = s->node = NULL;
}

int wk_send_spared(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t, wk_spare *spare)
{
    if (!t)
        return WORKER_ENOMEM;
    worker_event_t *e = wk_event_new(atom, kind, data, copy, copy_size, NULL, sender);
    if (!e && spare && spare->event) {
        e = wk_event_new_in(spare->event, atom, kind, data, copy, copy_size, sender);
        if (e)
            spare->event = NULL;
    }
    if (!e)
        return WORKER_ENOMEM;
    void *node = wk_pool_alloc(WK_POOL_QNODE);
    if (!node && spare) {
        node = spare->node;
        spare->node = NULL;
    }
    if (!node) {
        wk_event_discard(e);
        return WORKER_ENOMEM;
    }
    int rc = push_node(to, e, 0, node, t);
    if (rc != WORKER_OK)
        wk_event_discard(e);
    return rc;
}

int wk_send_library(worker_t *to, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t)
{
    return wk_send_kind(to, WK_EV_LIBRARY, atom, data, copy, copy_size, sender, t);
}

int wk_send_call(worker_t *to, const wk_atom *atom, wk_show_fn show, void *data, wk_internal_fn fn,
    void *fn_arg, wk_thread *t)
{
    int kind = show ? WK_EV_LIBRARY : WK_EV_INTERNAL;
    worker_event_t *e = wk_event_new_call(atom, kind, data, fn, fn_arg, wk_current(t));
    if (!e)
        return WORKER_ENOMEM;
    e->body.call.show = show;
    return push_or_discard(to, e, t);
}

static int check_fire_args(
    worker_t *w, const char *name, const void *data, const worker_fire_opts *opts)
{
    if (!w || !name || !*name)
        return WORKER_EINVAL;
    if (opts && opts->copy_size && !opts->copy)
        return WORKER_EINVAL;
    if (opts && opts->copy_size > UINT32_MAX)
        return WORKER_EINVAL;
    if (!wk_worker_here(w))
        return WORKER_EREJECTED; /* a parent process's worker, seen from a fork() child */
    if (w->copy_only && data && !(opts && opts->copy))
        return WORKER_EINVAL; /* its events leave the process: a pointer does not cross */
    return wk_init();
}

/* A traced event (tracing is on and this one is sampled): the delivery
 * records too. */
static __attribute__((noinline, cold)) int fire_traced(worker_t *w, const wk_atom *atom, void *data,
    const worker_fire_opts *opts, worker_t *sender, void *origin, wk_thread *t)
{
    worker_event_t *e = wk_event_new_traced(
        atom, WK_EV_USER, data, opts->copy, opts->copy_size, opts->release, sender);
    if (!e)
        return WORKER_ENOMEM;
    wk_room rw;
    if (opts->wait != 0 && wk_room_begin(&rw, opts->wait) != WORKER_OK) {
        wk_event_discard(e);
        return WORKER_EINVAL; /* a NaN wait */
    }
    return wk_deliver_waiting(
        w, e, opts->bubble, opts->broadcast, origin, opts->wait != 0 ? &rw : NULL, t);
}

/* A fan-out, or a NaN wait (refused). */
static __attribute__((noinline)) int fire_special(
    worker_t *w, worker_event_t *e, const worker_fire_opts *opts, void *origin, wk_thread *t)
{
    wk_room rw;
    if (wk_room_begin(&rw, opts->wait) != WORKER_OK) {
        wk_event_discard(e);
        return WORKER_EINVAL;
    }
    return wk_deliver_waiting(
        w, e, opts->bubble, opts->broadcast, origin, opts->wait != 0 ? &rw : NULL, t);
}

/* One receiver refused a plain fire. A full one is waited for when the
 * fire asks to (so the success path never looks at `wait`). */
static __attribute__((noinline)) int plain_refused(worker_t *w, worker_event_t *e, int rc,
    const worker_fire_opts *opts, void *origin, wk_thread *t)
{
    if (rc == WORKER_EFULL && opts->wait != 0) {
        wk_room rw;
        wk_room_begin(&rw, opts->wait); /* not NaN: checked before */
        return wk_deliver_waiting(w, e, false, false, origin, &rw, t);
    }
    return refused(w, e, rc, origin, t);
}

int worker_fire_ex(worker_t *w, const char *name, void *data, const worker_fire_opts *opts)
{
    static const worker_fire_opts defaults;
    int rc = check_fire_args(w, name, data, opts);
    if (rc != WORKER_OK)
        return rc;
    if (!opts)
        opts = &defaults;
    wk_thread *t = wk_thread_get();
    const wk_atom *atom = t ? wk_atom_cached(&t->fired_name, name) : NULL;
    worker_t *sender = opts->target ? opts->target : (t ? wk_current(t) : NULL);
    if (!t || !atom || !sender)
        return WORKER_ENOMEM;
    void *origin = opts->copy ? (void *)opts->copy : data;
    if (wk_trace_sample_now(t)) /* tracing off: one test on the fire path */
        return fire_traced(w, atom, data, opts, sender, origin, t);
    worker_event_t *e = wk_event_new_untraced(
        atom, WK_EV_USER, data, opts->copy, opts->copy_size, opts->release, sender);
    if (!e)
        return WORKER_ENOMEM;
    if (opts->bubble || opts->broadcast || isnan(opts->wait))
        return fire_special(w, e, opts, origin, t);
    int pushed = wk_mailbox_push_user(&w->mb, e, t);
    if (__builtin_expect(pushed == WORKER_OK, 1))
        return WORKER_OK;
    return plain_refused(w, e, pushed, opts, origin, t);
}

int worker_fire(worker_t *w, const char *name, void *data)
{
    return worker_fire_ex(w, name, data, NULL);
}
