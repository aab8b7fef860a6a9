/* Timers and `later`.
 *
 * Invariants:
 * - A timer's `state` is the only field shared between threads after it is
 *   armed: PENDING -> RUNNING -> RAN on the owner thread, PENDING ->
 *   CANCELLED from any thread (worker_timer_cancel), PENDING -> DROPPED when
 *   the worker ends. Each transition out of PENDING is a compare-and-swap,
 *   so exactly one of "runs", "cancelled" and "dropped" happens.
 * - Delay 0 is an EXECUTE event that listeners see. Its owner leaves
 *   PENDING as it takes the event, before the listeners (show_on_owner):
 *   a timer cancelled before that is not shown to any listener or wait,
 *   and a cancel from then on finds it running (WORKER_ESTATE). The call
 *   itself runs after the listeners (run_on_owner), only when the owner
 *   claimed it.
 * - The heap (worker.timers) belongs to the owner thread. Other threads
 *   never touch it: `later` sends the timer to the owner in a message, and
 *   the owner inserts it. Cancelled timers stay in the heap until their
 *   deadline (lazy removal) and are then skipped.
 * - Filing a timer needs no memory: when the heap cannot grow, the timer
 *   waits in the owner's `spilled` list (linked through the timers, in
 *   arming order), which the owner moves into the heap at each run, and
 *   runs its due timers from there while the heap still cannot take them.
 *   So a timer `later` accepted is never dropped for want of memory.
 * - `refs`: the caller's handle (if asked for) plus one for the message /
 *   heap entry; the last unref frees the timer.
 * - Deadlines are absolute CLOCK_MONOTONIC nanoseconds, taken when `later`
 *   is called.
 * - A periodic timer (worker_every, `period_ns` > 0) goes RUNNING ->
 *   PENDING after each tick, on the owner, by compare-and-swap, and is
 *   filed again with the next deadline of its fixed rate (the previous
 *   deadline plus whole periods, past ones skipped); the heap's reference
 *   carries over. A cancel while it runs moves RUNNING -> CANCELLED, so
 *   that swap fails and no further tick starts.
 */
#include <math.h>
#include <stdlib.h>

#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_os.h"
#include "wk_probe.h"
#include "wk_timers.h"

enum timer_state { TIMER_PENDING, TIMER_RUNNING, TIMER_RAN, TIMER_CANCELLED, TIMER_DROPPED };

struct worker_timer {
    _Atomic uint32_t refs;
    _Atomic int state;
    worker_call_fn fn;
    worker_call_fn on_drop; /* run with arg when its worker ends first; may be NULL */
    void *arg;
    uint64_t deadline_ns;
    uint64_t period_ns; /* 0: runs once (later); else worker_every's period */
    uint64_t seq; /* owner only: ties keep arming order */
    uint64_t trace_id;
    uint32_t worker_id; /* where it runs, for traces */
    struct worker_timer *next_spilled; /* owner only: in timers.spilled */
};

static void timer_unref(worker_timer_t *tm)
{
    if (atomic_fetch_sub_explicit(&tm->refs, 1, memory_order_acq_rel) == 1)
        free(tm);
}

static bool leave_pending(worker_timer_t *tm, int to)
{
    int expected = TIMER_PENDING;
    return atomic_compare_exchange_strong(&tm->state, &expected, to);
}

/* PENDING -> RUNNING on the owner: false when it was cancelled or
 * dropped first. */
static bool claim(worker_timer_t *tm)
{
    if (!leave_pending(tm, TIMER_RUNNING))
        return false;
    if (wk_tracing()) { /* the lateness reads the clock: only when tracing */
        uint64_t now = wk_now_ns();
        wk_probe_timer_fired(
            tm->worker_id, tm->trace_id, now > tm->deadline_ns ? now - tm->deadline_ns : 0);
    }
    return true;
}

/* A claimed timer's call. */
static void call_claimed(worker_timer_t *tm)
{
    tm->fn(tm->arg);
    if (tm->period_ns) { /* back to PENDING unless cancelled meanwhile */
        int expected = TIMER_RUNNING;
        atomic_compare_exchange_strong(&tm->state, &expected, TIMER_PENDING);
        return;
    }
    atomic_store(&tm->state, TIMER_RAN);
}

static void run_timer(worker_timer_t *tm)
{
    if (claim(tm))
        call_claimed(tm);
}

/* The deadline after `deadline` on a fixed rate: the next one still ahead
 * of `now` (missed ticks are skipped, not run late in a burst). */
static uint64_t next_tick(uint64_t deadline, uint64_t period, uint64_t now)
{
    uint64_t next = deadline + period;
    if (next <= now)
        next += ((now - next) / period + 1) * period;
    return next;
}

/* ---- the owner's heap ---- */

static bool before(const worker_timer_t *a, const worker_timer_t *b)
{
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void swap(worker_timer_t **h, size_t i, size_t j)
{
    worker_timer_t *x = h[i];
    h[i] = h[j];
    h[j] = x;
}

static bool heap_push(wk_timers *ts, worker_timer_t *tm)
{
    worker_timer_t **grown = wk_array_room(ts->heap, &ts->cap, ts->count, sizeof *grown, 8);
    if (!grown)
        return false;
    ts->heap = grown;
    tm->seq = ts->next_seq++;
    size_t i = ts->count++;
    ts->heap[i] = tm;
    while (i > 0 && before(ts->heap[i], ts->heap[(i - 1) / 2])) {
        swap(ts->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return true;
}

static worker_timer_t *heap_pop(wk_timers *ts)
{
    worker_timer_t *top = ts->heap[0];
    ts->heap[0] = ts->heap[--ts->count];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ts->count && before(ts->heap[l], ts->heap[m]))
            m = l;
        if (r < ts->count && before(ts->heap[r], ts->heap[m]))
            m = r;
        if (m == i)
            break;
        swap(ts->heap, i, m);
        i = m;
    }
    return top;
}

/* ---- timers the heap had no room for ---- */

static void spill(wk_timers *ts, worker_timer_t *tm)
{
    worker_timer_t **end = &ts->spilled;
    while (*end)
        end = &(*end)->next_spilled;
    tm->next_spilled = NULL;
    *end = tm;
}

/* Into the heap, in arming order, while it can grow. */
static void unspill(wk_timers *ts)
{
    while (ts->spilled) {
        worker_timer_t *tm = ts->spilled;
        if (!heap_push(ts, tm))
            return;
        ts->spilled = tm->next_spilled;
    }
}

/* The first spilled timer due by `now` taken out of the list, or NULL.
 * Searched from the head each time: a timer's function may wait, and the
 * nested loop change the list. */
static worker_timer_t *take_spilled_due(wk_timers *ts, uint64_t now)
{
    worker_timer_t **p = &ts->spilled;
    while (*p && (*p)->deadline_ns > now)
        p = &(*p)->next_spilled;
    worker_timer_t *tm = *p;
    if (tm)
        *p = tm->next_spilled;
    return tm;
}

uint64_t wk_timers_next_deadline(const worker_t *w)
{
    uint64_t next = w->timers.count ? w->timers.heap[0]->deadline_ns : WK_NO_DEADLINE;
    for (const worker_timer_t *tm = w->timers.spilled; tm; tm = tm->next_spilled)
        if (tm->deadline_ns < next)
            next = tm->deadline_ns;
    return next;
}

/* A due timer taken out of the heap or the spill list: run it, then file
 * a periodic one again (its heap reference carries over) or let it go. */
static void run_taken(worker_t *w, worker_timer_t *tm)
{
    run_timer(tm);
    if (!tm->period_ns || atomic_load(&tm->state) != TIMER_PENDING || w->ending) {
        if (tm->period_ns)
            leave_pending(tm, TIMER_DROPPED); /* the worker ends: no more ticks */
        timer_unref(tm);
        return;
    }
    tm->deadline_ns = next_tick(tm->deadline_ns, tm->period_ns, wk_now_ns());
    if (!heap_push(&w->timers, tm))
        spill(&w->timers, tm);
}

void wk_timers_run_due(worker_t *w)
{
    unspill(&w->timers);
    uint64_t now = wk_now_ns();
    while (w->timers.count && w->timers.heap[0]->deadline_ns <= now && !w->exiting)
        run_taken(w, heap_pop(&w->timers));
    worker_timer_t *tm;
    while (!w->exiting && (tm = take_spilled_due(&w->timers, now)))
        run_taken(w, tm);
}

/* On the owner, as it ends: the timer will not run; its on_drop does. */
static void drop(worker_timer_t *tm)
{
    if (leave_pending(tm, TIMER_DROPPED) && tm->on_drop)
        tm->on_drop(tm->arg);
    timer_unref(tm);
}

void wk_timers_drop_all(worker_t *w)
{
    while (w->timers.count)
        drop(heap_pop(&w->timers));
    worker_timer_t *tm;
    while ((tm = take_spilled_due(&w->timers, WK_NO_DEADLINE)))
        drop(tm);
    free(w->timers.heap);
    w->timers = (wk_timers) { 0 };
}

/* ---- messages to the owner ---- */

static void arm_on_owner(worker_t *owner, worker_event_t *e)
{
    worker_timer_t *tm = wk_event_call_arg(e);
    if (owner->ending)
        drop(tm);
    else if (!heap_push(&owner->timers, tm))
        spill(&owner->timers, tm); /* out of memory: filed all the same */
}

/* Delay 0, as the owner takes the EXECUTE: listeners see it only when
 * the timer is claimed here, so a cancelled timer is not seen at all. */
static bool show_on_owner(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    return claim(wk_event_call_arg(e));
}

/* Delay 0, after the listeners: the call, if show_on_owner claimed it. */
static void run_on_owner(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    worker_timer_t *tm = wk_event_call_arg(e);
    if (atomic_load(&tm->state) == TIMER_RUNNING) /* only the owner sets it */
        call_claimed(tm);
    timer_unref(tm);
}

static int check_later(worker_call_fn fn, double delay)
{
    if (!fn || isnan(delay) || delay < 0)
        return WORKER_EINVAL;
    return wk_init();
}

/* `later` (period 0) or `every`: file a timer on `w` (NULL: current). */
static int arm(worker_t *w, worker_call_fn fn, worker_call_fn on_drop, void *arg, double delay,
    double period, worker_timer_t **timer)
{
    int rc = WORKER_OK;
    wk_thread *t = wk_thread_get();
    if (!w)
        w = t ? wk_current(t) : NULL;
    worker_timer_t *tm = calloc(1, sizeof *tm);
    if (!t || !w || !tm) {
        free(tm);
        return WORKER_ENOMEM;
    }
    atomic_init(&tm->refs, timer ? 2 : 1);
    atomic_init(&tm->state, TIMER_PENDING);
    tm->fn = fn;
    tm->on_drop = on_drop;
    tm->arg = arg;
    tm->period_ns = (uint64_t)(period * 1e9);
    tm->worker_id = (uint32_t)w->id;
    tm->trace_id = wk_tracing() ? wk_trace_serial() : 0;
    if (!wk_deadline_after(delay, &tm->deadline_ns))
        tm->deadline_ns = WK_NO_DEADLINE;
    uint64_t trace_id = tm->trace_id; /* once sent, tm may run and be freed */
    rc = delay == 0 ? wk_send_call(w, wk_atoms.execute, show_on_owner, arg, run_on_owner, tm, t)
                    : wk_send_call(w, wk_atoms.execute, NULL, NULL, arm_on_owner, tm, t);
    if (rc != WORKER_OK) {
        free(tm);
        return rc;
    }
    wk_probe_timer_armed((uint32_t)w->id, trace_id, (uint64_t)(delay * 1e9));
    if (timer)
        *timer = tm;
    return WORKER_OK;
}

int worker_later(worker_t *w, worker_call_fn fn, void *arg, double delay, worker_timer_t **timer)
{
    int rc = check_later(fn, delay);
    return rc == WORKER_OK ? arm(w, fn, NULL, arg, delay, 0, timer) : rc;
}

int wk_later_or_drop(worker_t *w, worker_call_fn fn, worker_call_fn on_drop, void *arg,
    double delay, worker_timer_t **timer)
{
    int rc = check_later(fn, delay);
    return rc == WORKER_OK ? arm(w, fn, on_drop, arg, delay, 0, timer) : rc;
}

int worker_every(worker_t *w, worker_call_fn fn, void *arg, double period, worker_timer_t **timer)
{
    /* At least a nanosecond, and a period the clock can add up. */
    if (!fn || !isfinite(period) || period < 1e-9 || period > 1e9)
        return WORKER_EINVAL;
    int rc = wk_init();
    return rc == WORKER_OK ? arm(w, fn, NULL, arg, period, period, timer) : rc;
}

int worker_timer_cancel(worker_timer_t *tm)
{
    if (!tm)
        return WORKER_EINVAL;
    int rc = WORKER_OK;
    if (!leave_pending(tm, TIMER_CANCELLED)) {
        int s = TIMER_RUNNING; /* a periodic tick running: no further one */
        if (tm->period_ns && atomic_compare_exchange_strong(&tm->state, &s, TIMER_CANCELLED))
            s = TIMER_CANCELLED;
        else
            s = atomic_load(&tm->state);
        rc = s == TIMER_CANCELLED || s == TIMER_DROPPED ? WORKER_OK : WORKER_ESTATE;
    }
    wk_probe_timer_cancelled(tm->worker_id, tm->trace_id, rc != WORKER_OK);
    return rc;
}

void worker_timer_free(worker_timer_t *tm)
{
    if (tm)
        timer_unref(tm);
}
