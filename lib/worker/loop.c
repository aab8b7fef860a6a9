/* The event loop: one turn takes an event, runs its listeners, the
 * library's own handling, and tests every running wait.
 *
 * Invariants:
 * - Everything here runs on the worker's owner thread only, and touches
 *   only owner-only fields (frames, exiting, paused, ending, batch).
 * - Events are handled in mailbox order; `batch` holds events already
 *   popped but not yet handled, and every loop (nested ones too) takes from
 *   it first, so order holds across nesting and the end-sequence drain.
 * - Every frame on the stack sees every handled event; a frame that matches
 *   keeps a reference to the event so its data stays valid for the caller.
 * - No epoch section is open while a listener runs (listeners may wait).
 * - A mailbox with an fd (embed.c) is set busy when its owner enters its
 *   outermost wait and rests again when it leaves it (mailbox_fd.c).
 * - Drop-oldest: right after a pop, the owner drops as many of the popped
 *   user events (oldest first) as producers owe it (mailbox.c), so a
 *   dropped event is never shown to a listener, and is released once.
 * - Statistics (stats.c): nothing per user event (the queue's head
 *   generation counts what was taken); one owner-only increment per
 *   message that is not a user event; per batch, the high-water mark: a
 *   batch that is not full held the whole queue, so its user events were
 *   all that was queued; after a full batch the queue is measured.
 */
#include <stdint.h>
#include <stdio.h>

#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_probe.h"
#include "wk_report.h"
#include "wk_timers.h"

static uint32_t sender_id(const worker_event_t *e);

/* The batch counts: the owner writes them, any thread may read them
 * (stats.c). Relaxed atomics are plain moves on the owner's side. */
static inline size_t batch_pos(const worker_t *w)
{
    return atomic_load_explicit(&((worker_t *)w)->batch_pos, memory_order_relaxed);
}

static inline size_t batch_len(const worker_t *w)
{
    return atomic_load_explicit(&((worker_t *)w)->batch_len, memory_order_relaxed);
}

static inline uint64_t owner_load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

/* Owner-only counters: a relaxed load and store, no locked instruction. */
static inline void owner_add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, owner_load(v) + n, memory_order_relaxed);
}

static void raise_queued_max(worker_t *w, uint64_t queued)
{
    if (queued <= w->counts.queued_max_seen)
        return;
    w->counts.queued_max_seen = queued;
    atomic_store_explicit(&w->counts.queued_max, queued, memory_order_relaxed);
}

/* The batch just handled was not full, so it held the whole queue: its
 * user events were all the user events queued then. */
static void note_batch_done(worker_t *w)
{
    uint64_t not_user = owner_load(&w->counts.not_user) - w->counts.batch_not_user;
    if (w->counts.batch_taken < WK_BATCH && w->counts.batch_taken > not_user)
        raise_queued_max(w, w->counts.batch_taken - not_user);
}

static void drop_one(worker_t *w, worker_event_t *e)
{
    if (wk_traced(e))
        wk_probe_depth_popped(&w->depth, (uint32_t)w->id);
    wk_probe_event_dropped((uint32_t)w->id, wk_event_serial(e), sender_id(e), e->atom);
    wk_event_unref(e);
}

/* Drop the oldest user events of the batch just popped, as many as owed
 * (and as it holds). */
static void drop_owed(worker_t *w, long owed)
{
    size_t kept = 0, len = batch_len(w);
    long dropped = 0;
    for (size_t i = 0; i < len; i++) {
        worker_event_t *e = w->batch[i];
        if (dropped < owed && e->kind == WK_EV_USER) {
            drop_one(w, e);
            dropped++;
        } else
            w->batch[kept++] = e;
    }
    atomic_store_explicit(&w->batch_len, kept, memory_order_relaxed);
    w->counts.batch_taken = kept;
    owner_add(&w->counts.dropped, (uint64_t)dropped);
    wk_mailbox_dropped(&w->mb, dropped);
}

/* A full batch may have left more behind: measure the queue while the
 * batch still counts in it. Everything queued (of every kind) bounds the
 * user events queued, so the exact count is only worked out when that
 * bound could raise the mark. */
static void note_full_batch(worker_t *w)
{
    uint64_t bound = wk_mailbox_queued_all(&w->mb) + WK_BATCH;
    if (bound > owner_load(&w->counts.queued_max))
        raise_queued_max(w, wk_worker_queued(w));
}

/* After a pop that filled the batch or owes drops. */
static __attribute__((noinline, cold)) void refill_rare(worker_t *w)
{
    long owed = wk_mailbox_drops_owed(&w->mb);
    if (owed > 0)
        drop_owed(w, owed);
    if (batch_len(w) == WK_BATCH)
        note_full_batch(w);
}

/* Take the next batch; false when the mailbox is empty. */
static inline __attribute__((always_inline)) bool refill(worker_t *w, wk_thread *t)
{
    do {
        if (w->counts.batch_taken > w->counts.queued_max_seen) /* it could raise the mark */
            note_batch_done(w);
        size_t n = wk_mailbox_pop_batch(&w->mb, t, w->batch, WK_BATCH);
        atomic_store_explicit(&w->batch_pos, 0, memory_order_relaxed);
        atomic_store_explicit(&w->batch_len, n, memory_order_relaxed);
        w->counts.batch_taken = n;
        if (n == 0)
            return false;
        w->counts.batch_not_user = owner_load(&w->counts.not_user);
        if (__builtin_expect(n == WK_BATCH || wk_mailbox_drops_owed(&w->mb) > 0, 0))
            refill_rare(w);
    } while (batch_len(w) == 0); /* every event of it was dropped */
    return true;
}

static inline __attribute__((always_inline)) worker_event_t *next_event(worker_t *w, wk_thread *t)
{
    size_t pos = batch_pos(w), len = batch_len(w);
    if (pos == len) {
        if (!refill(w, t))
            return NULL;
        pos = 0;
        len = batch_len(w);
    }
    worker_event_t *e = w->batch[pos++];
    atomic_store_explicit(&w->batch_pos, pos, memory_order_relaxed);
    if (pos < len) /* written on another core: fetch it early */
        __builtin_prefetch(w->batch[pos]);
    return e;
}

static void listener_failed(void *ctx, const worker_event_t *e, int code)
{
    worker_t *w = ctx;
    wk_report(w, "listener failed", code);
    if (e->atom == wk_atoms.listener_error)
        return; /* no error storms */
    wk_thread *t = wk_thread_peek();
    worker_event_t *err = wk_event_new(
        wk_atoms.listener_error, WK_EV_LIBRARY, (void *)(intptr_t)code, NULL, 0, NULL, w);
    if (err)
        wk_deliver(w, err, true, false, err->data, t);
}

static uint32_t sender_id(const worker_event_t *e)
{
    return e->sender ? (uint32_t)e->sender->id : 0;
}

/* The library's own reaction to a name, after the user's listeners
 * (STOP_THREAD and PAUSE_THREAD: control.c gives them their action). */
static inline __attribute__((always_inline)) void run_action(worker_t *w, worker_event_t *e)
{
    wk_atom_action action = e->atom->action;
    if (__builtin_expect(action != NULL, 0))
        action(w, e);
}

static inline __attribute__((always_inline)) bool frame_matches(
    wk_frame *f, const worker_event_t *e)
{
    switch (f->kind) {
    case WK_WAIT_EVENT:
        return e->atom == f->atom
            && (!f->sender_id || (e->sender && f->sender_id == e->sender->id));
    case WK_WAIT_COND:
        return f->cond(e, f->userdata);
    default:
        return false;
    }
}

static inline __attribute__((always_inline)) void mark_frames(worker_t *w, worker_event_t *e)
{
    for (wk_frame *f = w->frames; f; f = f->outer) {
        if (!f->done && frame_matches(f, e)) {
            f->done = true;
            wk_event_ref(e);
            f->matched = e;
        }
    }
}

/* Listeners and waits see every event but internal commands, and a call
 * event only when its `show` agrees as the owner takes it (a delay-0 timer
 * cancelled before: its EXECUTE is not shown). One more test of a byte of
 * the header for other events. */
static inline __attribute__((always_inline)) bool shown(worker_t *w, worker_event_t *e)
{
    if (e->kind == WK_EV_INTERNAL)
        return false;
    return __builtin_expect(e->form != WK_FORM_CALL, 1) || e->body.call.show(w, e);
}

static inline __attribute__((always_inline)) void show_to_listeners(
    worker_t *w, worker_event_t *e, const bool traced)
{
    if (traced)
        wk_listeners_dispatch_traced(&w->listeners, e, listener_failed, w, (uint32_t)w->id);
    else
        wk_listeners_dispatch(&w->listeners, e, listener_failed, w);
    mark_frames(w, e);
    run_action(w, e);
}

/* Everything but a plain user event: the library's messages (counted:
 * the queue counts only user events), requests and calls. */
static __attribute__((noinline)) void deliver_special(worker_t *w, worker_event_t *e, bool traced)
{
    if (e->kind != WK_EV_USER)
        owner_add(&w->counts.not_user, 1);
    if (shown(w, e))
        show_to_listeners(w, e, traced);
    wk_internal_fn call = wk_event_call_fn(e);
    if (call)
        call(w, e);
}

static inline __attribute__((always_inline)) void deliver_to_owner(
    worker_t *w, worker_event_t *e, const bool traced)
{
    if (__builtin_expect(e->kind == WK_EV_USER && e->form != WK_FORM_CALL, 1))
        show_to_listeners(w, e, traced);
    else
        deliver_special(w, e, traced);
    wk_event_unref(e);
}

/* Traced events: the mailbox depth, the DELIVER record, then the traced
 * listener path. */
static __attribute__((noinline, cold)) void dispatch_traced(worker_t *w, worker_event_t *e)
{
    wk_probe_depth_popped(&w->depth, (uint32_t)w->id);
    if (e->kind != WK_EV_INTERNAL)
        wk_probe_deliver((uint32_t)w->id, wk_event_serial(e), sender_id(e), e->atom);
    deliver_to_owner(w, e, true);
}

/* Tracing off costs one test of the event's flag. */
static void dispatch(worker_t *w, worker_event_t *e)
{
    if (wk_traced(e))
        dispatch_traced(w, e);
    else
        deliver_to_owner(w, e, false);
}

/* The caller only gets the event's data: when this thread is its sole
 * holder, its sender need not stay alive for it. */
static worker_event_t *keep_payload_only(worker_event_t *e)
{
    if (e->sender && atomic_load_explicit(&e->refs, memory_order_acquire) == 1) {
        worker_t *sender = e->sender;
        e->sender = NULL;
        worker_unref(sender);
    }
    return e;
}

static bool deadline_passed(uint64_t deadline_ns)
{
    return deadline_ns != WK_NO_DEADLINE && wk_now_ns() >= deadline_ns;
}

/* For traces: the timeout still to run (UINT64_MAX: none; 0: already past). */
static uint64_t time_left(uint64_t deadline_ns)
{
    if (deadline_ns == WK_NO_DEADLINE)
        return UINT64_MAX;
    uint64_t now = wk_now_ns();
    return deadline_ns > now ? deadline_ns - now : 0;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static bool must_leave(const worker_t *w, const wk_frame *f)
{
    return w->exiting && !f->ignore_exit;
}

int wk_loop_wait(worker_t *w, wk_thread *t, wk_frame *f, uint64_t deadline_ns)
{
    wk_drop_last_returned(t);
    if (f->trace_kind && wk_tracing()) /* time_left reads the clock: only when tracing */
        wk_probe_wait_begin((uint32_t)w->id, f->trace_kind, time_left(deadline_ns), f->trace_what);
    if (must_leave(w, f)) {
        if (f->trace_kind)
            wk_probe_wait_end((uint32_t)w->id, f->trace_kind, WORKER_EXIT, f->trace_what);
        return WORKER_EXIT;
    }
    /* A root driven by a host loop (embed.c) rests outside its outermost
     * loop, with producers signalling its fd; inside, they pay nothing. */
    bool outermost = w->frames == NULL;
    if (outermost && wk_mailbox_has_fd(&w->mb))
        wk_mailbox_busy(&w->mb);
    f->outer = w->frames;
    w->frames = f;
    int rc;
    bool handled = false;
    for (;;) {
        if (must_leave(w, f)) {
            rc = WORKER_EXIT;
            break;
        }
        if (f->done) {
            rc = WORKER_OK;
            break;
        }
        if (batch_pos(w) == batch_len(w)) { /* between batches */
            if (f->slice && handled) {
                rc = WORKER_OK; /* a pooled worker's slice is one batch */
                break;
            }
            if (wk_timers_pending(w))
                wk_timers_run_due(w); /* so a busy loop still runs them */
        }
        worker_event_t *e = next_event(w, t);
        if (e) {
            handled = true;
            dispatch(w, e);
            continue;
        }
        if (f->done || must_leave(w, f))
            continue; /* a timer settled it */
        if (f->update_only) {
            rc = WORKER_OK;
            break;
        }
        if (deadline_passed(deadline_ns)) {
            rc = f->kind == WK_WAIT_TIME ? WORKER_OK : WORKER_ETIMEDOUT;
            break;
        }
        wk_mailbox_park(&w->mb, t, earliest(deadline_ns, wk_timers_next_deadline(w)));
    }
    w->frames = f->outer;
    if (outermost && wk_mailbox_has_fd(&w->mb))
        wk_mailbox_rest(&w->mb);
    if (f->trace_kind)
        wk_probe_wait_end((uint32_t)w->id, f->trace_kind, rc, f->trace_what);
    if (f->matched) {
        if (rc == WORKER_OK) {
            wk_drop_last_returned(t); /* a nested wait may have set one */
            t->last_returned = keep_payload_only(f->matched);
        } else
            wk_event_unref(f->matched);
    }
    return rc;
}

void wk_drop_last_returned(wk_thread *t)
{
    worker_event_t *e = t->last_returned;
    t->last_returned = NULL;
    if (e)
        wk_event_unref(e);
}

void wk_loop_drain(worker_t *w, wk_thread *t)
{
    worker_event_t *e;
    while ((e = next_event(w, t)))
        dispatch(w, e);
}
