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
 */
#include <stdint.h>
#include <stdio.h>

#include "wk_event.h"
#include "wk_os.h"
#include "wk_trace.h"
#include "wk_worker.h"

static worker_event_t *next_event(worker_t *w, wk_thread *t)
{
    if (w->batch_pos == w->batch_len) {
        w->batch_pos = 0;
        w->batch_len = wk_mailbox_pop_batch(&w->mb, t, w->batch, WK_BATCH);
        if (w->batch_len == 0)
            return NULL;
    }
    worker_event_t *e = w->batch[w->batch_pos++];
    if (w->batch_pos < w->batch_len) /* written on another core: fetch it early */
        __builtin_prefetch(w->batch[w->batch_pos]);
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

static void pause_here(worker_t *w, wk_thread *t)
{
    if (w->paused)
        return;
    w->paused = true;
    wk_frame until_resumed = { .kind = WK_WAIT_EVENT, .atom = wk_atoms.resume };
    wk_loop_wait(w, t, &until_resumed, WK_NO_DEADLINE);
    w->paused = false;
    WK_TRACE((uint32_t)w->id, WK_TR_RESUME, 0,
        until_resumed.matched ? sender_id(until_resumed.matched) : 0, 0);
}

/* The library's own reaction, after the user's listeners. */
static inline __attribute__((always_inline)) void handle_builtin(
    worker_t *w, wk_thread *t, const worker_event_t *e)
{
    if (w->ending)
        return;
    if (e->atom == wk_atoms.stop) {
        WK_TRACE((uint32_t)w->id, WK_TR_STOP, 0, sender_id(e), 0);
        wk_loop_stop(w, t);
    } else if (e->atom == wk_atoms.pause) {
        WK_TRACE((uint32_t)w->id, WK_TR_PAUSE, 0, sender_id(e), 0);
        pause_here(w, t);
    }
}

void wk_loop_stop(worker_t *w, wk_thread *t)
{
    if (w->is_root)
        wk_tree_stop_children(w, t); /* a root worker only stops its children */
    else
        w->exiting = true;
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

static inline __attribute__((always_inline)) void deliver_to_owner(
    worker_t *w, wk_thread *t, worker_event_t *e, const bool traced)
{
    if (shown(w, e)) {
        if (traced)
            wk_listeners_dispatch_traced(&w->listeners, e, listener_failed, w);
        else
            wk_listeners_dispatch(&w->listeners, e, listener_failed, w);
        mark_frames(w, e);
        handle_builtin(w, t, e);
    }
    wk_internal_fn call = wk_event_call_fn(e);
    if (call)
        call(w, e);
    wk_event_unref(e);
}

/* Traced events: the mailbox depth, the DELIVER record, then the traced
 * listener path. */
static __attribute__((noinline, cold)) void dispatch_traced(
    worker_t *w, wk_thread *t, worker_event_t *e)
{
    wk_mailbox_trace_popped(&w->mb);
    if (e->kind != WK_EV_INTERNAL)
        wk_trace_emit((uint32_t)w->id, WK_TR_DELIVER, 0, wk_event_serial(e),
            wk_trace_pair(sender_id(e), wk_trace_atom(e->atom)));
    deliver_to_owner(w, t, e, true);
}

/* Tracing off costs one test of the event's flag. */
static void dispatch(worker_t *w, wk_thread *t, worker_event_t *e)
{
    if (wk_traced(e))
        dispatch_traced(w, t, e);
    else
        deliver_to_owner(w, t, e, false);
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
    wk_thread_drop_last_returned(t);
    if (f->trace_kind)
        WK_TRACE((uint32_t)w->id, WK_TR_WAIT_BEGIN, f->trace_kind, time_left(deadline_ns),
            f->trace_what);
    if (must_leave(w, f)) {
        if (f->trace_kind)
            WK_TRACE((uint32_t)w->id, WK_TR_WAIT_END, f->trace_kind, (uint64_t)WORKER_EXIT,
                f->trace_what);
        return WORKER_EXIT;
    }
    f->outer = w->frames;
    w->frames = f;
    int rc;
    for (;;) {
        if (must_leave(w, f)) {
            rc = WORKER_EXIT;
            break;
        }
        if (f->done) {
            rc = WORKER_OK;
            break;
        }
        if (w->batch_pos == w->batch_len && wk_timers_pending(w))
            wk_timers_run_due(w); /* between batches, so a busy loop still runs them */
        worker_event_t *e = next_event(w, t);
        if (e) {
            dispatch(w, t, e);
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
    if (f->trace_kind)
        WK_TRACE(
            (uint32_t)w->id, WK_TR_WAIT_END, f->trace_kind, (uint64_t)(int64_t)rc, f->trace_what);
    if (f->matched) {
        if (rc == WORKER_OK) {
            wk_thread_drop_last_returned(t); /* a nested wait may have set one */
            t->last_returned = keep_payload_only(f->matched);
        } else
            wk_event_unref(f->matched);
    }
    return rc;
}

void wk_loop_drain(worker_t *w, wk_thread *t)
{
    worker_event_t *e;
    while ((e = next_event(w, t)))
        dispatch(w, t, e);
}
