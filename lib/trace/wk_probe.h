/* Named trace probes: one function per kind of record, taking plain values
 * (ids, serials, names), so that the layers above never build a record by
 * hand and the format stays in this layer.
 *
 * Every probe records only while tracing (wk_tracing(), one relaxed load);
 * callers on hot paths test an event's `traced` byte first, as before.
 *
 * Mailbox depth: the layers above count the traced events pushed into and
 * popped out of a worker's mailbox in a wk_trace_depth beside it; the
 * mailbox itself knows nothing of traces.
 *
 * Invariants of wk_trace_depth:
 * - `pushed` is written by any thread (relaxed atomic adds: a count, not a
 *   publication); `popped` and `level` by the owner thread only.
 * - Pushes made before the trace started are not counted, so the owner's
 *   count resynchronises when it would go past what was pushed.
 */
#ifndef WK_PROBE_H
#define WK_PROBE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <worker/error.h>

#include "wk_atom.h"
#include "wk_trace.h"

#define WK_PROBE(kind_call)                                                                        \
    do {                                                                                           \
        if (wk_tracing())                                                                          \
            kind_call;                                                                             \
    } while (0)

/* ---- events ---- */

/* An offer of a traced event to one receiver: FIRE when it was accepted
 * (rc == WORKER_OK), REJECT with the reason when not. `flags`: WK_TRF_*. */
static inline void wk_probe_offer(uint32_t sender, unsigned flags, uint64_t serial,
    uint32_t receiver, const wk_atom *atom, int rc)
{
    if (!wk_tracing())
        return;
    uint64_t who = wk_trace_pair(receiver, wk_trace_atom(atom));
    if (rc == WORKER_OK) {
        wk_trace_emit(sender, WK_TR_FIRE, (uint16_t)flags, serial, who);
        return;
    }
    uint16_t why = rc == WORKER_EFULL ? WK_TRR_FULL
        : rc == WORKER_ENOMEM         ? WK_TRR_NOMEM
                                      : WK_TRR_NOT_RUNNING;
    wk_trace_emit(sender, WK_TR_REJECT, why, serial, who);
}

/* A request taken after its deadline and not delivered (REQUEST_EXPIRED). */
static inline void wk_probe_request_expired(
    uint32_t receiver, uint64_t serial, uint32_t sender, const wk_atom *atom)
{
    WK_PROBE(wk_trace_emit(
        receiver, WK_TR_REQUEST_EXPIRED, 0, serial, wk_trace_pair(sender, wk_trace_atom(atom))));
}

/* A user event dropped by its receiver's drop-oldest policy (EVENT_DROPPED). */
static inline void wk_probe_event_dropped(
    uint32_t receiver, uint64_t serial, uint32_t sender, const wk_atom *atom)
{
    WK_PROBE(wk_trace_emit(
        receiver, WK_TR_EVENT_DROPPED, 0, serial, wk_trace_pair(sender, wk_trace_atom(atom))));
}

static inline void wk_probe_channel_publish(
    uint32_t sender, int reached, uint64_t serial, uint64_t channel_id, const wk_atom *atom)
{
    WK_PROBE(
        wk_trace_emit(sender, WK_TR_CHANNEL_PUBLISH, (uint16_t)(reached > 65535 ? 65535 : reached),
            serial, wk_trace_pair((uint32_t)channel_id, wk_trace_atom(atom))));
}

static inline void wk_probe_deliver(
    uint32_t receiver, uint64_t serial, uint32_t sender, const wk_atom *atom)
{
    WK_PROBE(wk_trace_emit(
        receiver, WK_TR_DELIVER, 0, serial, wk_trace_pair(sender, wk_trace_atom(atom))));
}

/* `from`: where the listener's name came from (WK_TRF_NAME_*, or 0). */
static inline void wk_probe_listener_start(uint32_t receiver, uint64_t serial,
    const wk_atom *listener, unsigned from, const wk_atom *event)
{
    WK_PROBE(wk_trace_emit(receiver, WK_TR_LISTENER_START, (uint16_t)from, serial,
        wk_trace_pair(wk_trace_atom(listener), wk_trace_atom(event))));
}

static inline void wk_probe_listener_end(
    uint32_t receiver, uint64_t serial, const wk_atom *listener, int code)
{
    WK_PROBE(wk_trace_emit(receiver, WK_TR_LISTENER_END, code ? WK_TRF_ERROR : 0, serial,
        wk_trace_pair(wk_trace_atom(listener), (uint32_t)code)));
}

/* ---- across processes ---- */

/* A message handed to a transport for another process (REMOTE_SEND); its
 * message id is `id`. */
static inline void wk_probe_remote_send(
    uint32_t sender, uint64_t id, const char *event, const char *destination)
{
    WK_PROBE(wk_trace_emit(sender, WK_TR_REMOTE_SEND, 0, id,
        wk_trace_pair(wk_trace_string(event), wk_trace_string(destination))));
}

/* The message `id` from another process, about to be fired into a local
 * worker by its transport (REMOTE_RECEIVE). */
static inline void wk_probe_remote_receive(uint32_t receiver, uint64_t id, const char *event)
{
    WK_PROBE(wk_trace_emit(receiver, WK_TR_REMOTE_RECEIVE, 0, id, wk_trace_string(event)));
}

/* ---- a worker's life ---- */

static inline void wk_probe_worker_created(
    uint32_t worker, unsigned flags, uint32_t parent, const char *name)
{
    WK_PROBE(wk_trace_emit(
        worker, WK_TR_WORKER_CREATED, (uint16_t)flags, parent, wk_trace_string(name)));
}

static inline void wk_probe_worker_started(uint32_t worker, unsigned flags, long tid)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_WORKER_STARTED, (uint16_t)flags, (uint64_t)tid, 0));
}

/* A pooled worker's slice on scheduler thread `index` (SLICE_BEGIN and
 * SLICE_END; `ended`: its run ended in the slice). */
static inline void wk_probe_slice_begin(uint32_t worker, int index)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_SLICE_BEGIN, 0, (uint64_t)index, 0));
}

static inline void wk_probe_slice_end(uint32_t worker, int index, bool ended)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_SLICE_END, ended ? WK_TRF_ENDED : 0, (uint64_t)index, 0));
}

static inline void wk_probe_worker_ended(uint32_t worker, int err)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_WORKER_ENDED, 0, (uint64_t)(int64_t)err, 0));
}

/* A supervisor starts its child again (CHILD_RESTART): `reason` is the err
 * of the end that made the restart; `group`: with its group. */
static inline void wk_probe_child_restart(
    uint32_t child, uint32_t sup, uint32_t restarts, int reason, bool group)
{
    WK_PROBE(wk_trace_emit(child, WK_TR_CHILD_RESTART, group ? WK_TRF_GROUP : 0,
        wk_trace_pair(sup, restarts), (uint64_t)(int64_t)reason));
}

/* A supervisor starts its run (SUPERVISOR_STARTED): its strategy,
 * intensity, period and first backoff (ms). */
static inline void wk_probe_supervisor_started(
    uint32_t sup, int strategy, int intensity, uint32_t period_ms, uint32_t backoff_ms)
{
    WK_PROBE(wk_trace_emit(sup, WK_TR_SUPERVISOR_STARTED, 0,
        wk_trace_pair((uint32_t)strategy, (uint32_t)intensity),
        wk_trace_pair(period_ms, backoff_ms)));
}

/* STOP, PAUSE or RESUME handled by `worker`, sent by `sender`. */
static inline void wk_probe_control(uint32_t worker, uint16_t kind, uint32_t sender)
{
    WK_PROBE(wk_trace_emit(worker, kind, 0, sender, 0));
}

/* ---- waits ---- */

/* `left`: the timeout still to run in ns (UINT64_MAX: none). */
static inline void wk_probe_wait_begin(uint32_t worker, unsigned kind, uint64_t left, uint64_t what)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_WAIT_BEGIN, (uint16_t)kind, left, what));
}

static inline void wk_probe_wait_end(uint32_t worker, unsigned kind, int rc, uint64_t what)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_WAIT_END, (uint16_t)kind, (uint64_t)(int64_t)rc, what));
}

/* ---- timers, futures, defers ---- */

static inline void wk_probe_timer_armed(uint32_t worker, uint64_t timer, uint64_t delay_ns)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_TIMER_ARMED, 0, timer, delay_ns));
}

static inline void wk_probe_timer_fired(uint32_t worker, uint64_t timer, uint64_t late_ns)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_TIMER_FIRED, 0, timer, late_ns));
}

static inline void wk_probe_timer_cancelled(uint32_t worker, uint64_t timer, bool too_late)
{
    WK_PROBE(
        wk_trace_emit(worker, WK_TR_TIMER_CANCELLED, too_late ? WK_TRF_TOO_LATE : 0, timer, 0));
}

static inline void wk_probe_future_settled(uint32_t worker, uint64_t future, int err)
{
    WK_PROBE(wk_trace_emit(worker, WK_TR_FUTURE_SETTLED, 0, future, (uint64_t)(int64_t)err));
}

/* `flags`: WK_TRF_REJECTED, WK_TRF_IGNORED. */
static inline void wk_probe_defer_settled(uint32_t worker, unsigned flags, uint64_t defer, int err)
{
    WK_PROBE(
        wk_trace_emit(worker, WK_TR_DEFER_SETTLED, (uint16_t)flags, defer, (uint64_t)(int64_t)err));
}

/* ---- mailbox depth ---- */

typedef struct wk_trace_depth {
    _Atomic uint64_t pushed; /* any thread */
    uint64_t popped; /* owner only */
    int level; /* owner only: floor(log2(depth + 1)) last recorded */
} wk_trace_depth;

/* Around a push of a traced event: +1 before it, -1 if it was refused. Each
 * traced event counts for what it stands for when sampling. Any thread. */
static inline void wk_probe_depth_push(wk_trace_depth *d, int sign)
{
    int64_t weight = (int64_t)wk_trace_weight() * sign;
    atomic_fetch_add_explicit(&d->pushed, (uint64_t)weight, memory_order_relaxed);
}

/* Owner: one traced event was taken out of `worker`'s mailbox; records the
 * depth when it crosses a power of two. */
void wk_probe_depth_popped(wk_trace_depth *d, uint32_t worker);

#endif
