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
 * - Parent pointers are immutable and kept alive by the child's reference,
 *   so walking up takes no lock; children lists are copied (with
 *   references) under each worker's lock, one worker at a time.
 */
#include <stdint.h>

#include "wk_event.h"
#include "wk_trace.h"
#include "wk_worker.h"

/* What a trace needs of an event, read before it is offered: once a
 * mailbox has it, its receiver may recycle it at any moment. */
typedef struct offer_trace {
    bool traced; /* counted in the receiver's depth */
    bool on; /* recorded (not for internal commands) */
    uint64_t serial;
    const wk_atom *atom;
    uint32_t sender;
    unsigned flags;
} offer_trace;

static __attribute__((noinline, cold)) void offer_capture(
    offer_trace *o, const worker_event_t *e, worker_t *to, unsigned flags)
{
    wk_mailbox_trace_count(&to->mb, +1);
    o->on = e->kind != WK_EV_INTERNAL;
    o->serial = wk_event_serial(e);
    o->atom = e->atom;
    o->sender = e->sender ? (uint32_t)e->sender->id : 0;
    o->flags = flags | (e->kind != WK_EV_USER ? WK_TRF_LIBRARY : 0)
        | (wk_event_copied(e) ? WK_TRF_COPY : 0);
}

/* Tracing off costs one test of a flag: nothing else is read or written. */
static inline void offer_begin(
    offer_trace *o, const worker_event_t *e, worker_t *to, unsigned flags)
{
    o->traced = wk_traced(e);
    if (o->traced)
        offer_capture(o, e, to, flags);
}

static __attribute__((noinline, cold)) void offer_record(
    const offer_trace *o, worker_t *to, int rc);

/* FIRE when `to` accepted it, REJECT when not. */
static inline void offer_end(const offer_trace *o, worker_t *to, int rc)
{
    if (__builtin_expect(o->traced, 0))
        offer_record(o, to, rc);
}

static void offer_record(const offer_trace *o, worker_t *to, int rc)
{
    if (rc != WORKER_OK)
        wk_mailbox_trace_count(&to->mb, -1);
    if (!o->on)
        return;
    uint64_t who = wk_trace_pair((uint32_t)to->id, wk_trace_atom(o->atom));
    if (rc == WORKER_OK) {
        wk_trace_emit(o->sender, WK_TR_FIRE, (uint16_t)o->flags, o->serial, who);
        return;
    }
    uint16_t why = rc == WORKER_EFULL ? WK_TRR_FULL
        : rc == WORKER_ENOMEM         ? WK_TRR_NOMEM
                                      : WK_TRR_NOT_RUNNING;
    wk_trace_emit(o->sender, WK_TR_REJECT, why, o->serial, who);
}

static void tell_sender_refused(
    worker_t *refuser, const worker_event_t *e, void *origin_data, wk_thread *t)
{
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

/* Offer one more receiver the shared event. */
static void hop(worker_t *to, worker_event_t *e, void *origin_data, wk_thread *t, unsigned how)
{
    wk_event_ref(e);
    offer_trace o;
    offer_begin(&o, e, to, how);
    int rc = wk_mailbox_push(&to->mb, e, t);
    offer_end(&o, to, rc);
    if (rc == WORKER_OK)
        return;
    atomic_fetch_sub_explicit(&e->refs, 1, memory_order_relaxed); /* ours keeps it alive */
    if (rc == WORKER_EREJECTED || rc == WORKER_EFULL)
        tell_sender_refused(to, e, origin_data, t);
}

static void hop_down(worker_t *w, worker_event_t *e, void *origin_data, wk_thread *t)
{
    pthread_mutex_lock(&w->lock);
    worker_t **kids;
    size_t n = wk_list_copy(&w->children, &kids);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        hop(kids[i], e, origin_data, t, WK_TRF_BROADCAST | WK_TRF_HOP_DOWN);
        hop_down(kids[i], e, origin_data, t);
    }
    wk_list_release(kids, n);
}

/* An untraced event to one receiver: the common case, kept short. */
static inline int deliver_plain(worker_t *to, worker_event_t *e, void *origin_data, wk_thread *t)
{
    int rc = wk_mailbox_push(&to->mb, e, t);
    return rc == WORKER_OK ? WORKER_OK : refused(to, e, rc, origin_data, t);
}

int wk_deliver(
    worker_t *to, worker_event_t *e, bool bubble, bool broadcast, void *origin_data, wk_thread *t)
{
    bool fan_out = bubble || broadcast;
    if (!fan_out && !wk_traced(e))
        return deliver_plain(to, e, origin_data, t);
    if (fan_out)
        wk_event_ref(e); /* the firing call's own reference */
    offer_trace o;
    offer_begin(&o, e, to, (bubble ? WK_TRF_BUBBLE : 0) | (broadcast ? WK_TRF_BROADCAST : 0));
    int rc = wk_mailbox_push(&to->mb, e, t);
    offer_end(&o, to, rc);
    if (rc != WORKER_OK)
        return refused(to, e, rc, origin_data, t);
    if (!fan_out)
        return WORKER_OK;
    for (worker_t *p = bubble ? to->parent : NULL; p; p = p->parent)
        hop(p, e, origin_data, t, WK_TRF_BUBBLE | WK_TRF_HOP_UP);
    if (broadcast)
        hop_down(to, e, origin_data, t);
    wk_event_unref(e);
    return WORKER_OK;
}

static int push_or_discard(worker_t *to, worker_event_t *e, wk_thread *t)
{
    offer_trace o;
    offer_begin(&o, e, to, 0);
    int rc = wk_mailbox_push(&to->mb, e, t);
    offer_end(&o, to, rc);
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

static int check_fire_args(worker_t *w, const char *name, const worker_fire_opts *opts)
{
    if (!w || !name || !*name)
        return WORKER_EINVAL;
    if (opts && opts->copy_size && !opts->copy)
        return WORKER_EINVAL;
    if (opts && opts->copy_size > UINT32_MAX)
        return WORKER_EINVAL;
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
    return wk_deliver(w, e, opts->bubble, opts->broadcast, origin, t);
}

int worker_fire_ex(worker_t *w, const char *name, void *data, const worker_fire_opts *opts)
{
    static const worker_fire_opts defaults;
    int rc = check_fire_args(w, name, opts);
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
    if (opts->bubble || opts->broadcast)
        return wk_deliver(w, e, opts->bubble, opts->broadcast, origin, t);
    return deliver_plain(w, e, origin, t);
}

int worker_fire(worker_t *w, const char *name, void *data)
{
    return worker_fire_ex(w, name, data, NULL);
}
