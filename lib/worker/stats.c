/* worker_stats: a snapshot of a worker's counters, and the run times its
 * busy time is measured from.
 *
 * Invariants:
 * - Nothing here is on the fire or delivery path. Every counter has its
 *   writers named where it is declared (wk_worker.h, wk_mailbox.h) and is
 *   read with relaxed loads, one field at a time.
 * - `accepted` and `taken` are the mailbox's queue generations (mailbox.c),
 *   less the messages that are not user events. Every accepted user event
 *   is then handled, dropped (expired request or drop-oldest), owed to a
 *   drop not made yet, or still queued (in the queue or in the owner's
 *   batch). So queued = accepted - handled - dropped - owed. The owner's
 *   side is read before `accepted`, which only grows; fields read while
 *   events flow may be up to a batch apart (clamped at zero), and are
 *   exact once the mailbox is quiet.
 * - busy = the time of its runs minus the time its mailbox slept. A run
 *   begins in enter_run (or when a thread's root worker is made) and ends
 *   in its end sequence; both are on the owner thread.
 */
#include <worker/stats.h>

#include <worker/error.h>

#include "wk_os.h"
#include "wk_worker.h"

static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

void wk_worker_run_began(worker_t *w)
{
    atomic_store_explicit(&w->stats.run_since, wk_now_ns(), memory_order_relaxed);
}

void wk_worker_run_ended(worker_t *w)
{
    uint64_t since = load(&w->stats.run_since);
    if (!since)
        return;
    uint64_t ran = load(&w->stats.ran_ns) + (wk_now_ns() - since);
    atomic_store_explicit(&w->stats.ran_ns, ran, memory_order_relaxed);
    atomic_store_explicit(&w->stats.run_since, 0, memory_order_relaxed);
}

static double busy_seconds(const worker_t *w)
{
    uint64_t now = wk_now_ns();
    uint64_t since = load(&w->stats.run_since);
    uint64_t ran = load(&w->stats.ran_ns) + (since && now > since ? now - since : 0);
    uint64_t slept = wk_mailbox_slept_ns(&w->mb, now);
    return ran > slept ? (double)(ran - slept) / 1e9 : 0.0;
}

/* The user events its loop took out of the queue and gave to listeners:
 * everything taken, minus what is not a user event, what is still in the
 * batch, what was dropped and the requests that expired. */
static uint64_t handled(const worker_t *w, uint64_t dropped)
{
    size_t pos = atomic_load_explicit(&((worker_t *)w)->batch_pos, memory_order_relaxed);
    size_t len = atomic_load_explicit(&((worker_t *)w)->batch_len, memory_order_relaxed);
    uint64_t not_user = load(&w->counts.not_user);
    uint64_t taken = wk_mailbox_taken(&w->mb);
    uint64_t gone = not_user + (len > pos ? len - pos : 0) + dropped;
    uint64_t forwarded = load(&w->mb.forwarded); /* a forwarding worker's (never queued) */
    return (taken > gone ? taken - gone : 0) + forwarded;
}

typedef struct snapshot {
    uint64_t accepted, handled, dropped, queued;
} snapshot;

/* The owner's side first, then `accepted` (see the top). */
static snapshot take_snapshot(const worker_t *w)
{
    snapshot s;
    uint64_t expired = load(&w->stats.expired);
    s.dropped = load(&w->counts.dropped) + expired;
    s.handled = handled(w, s.dropped);
    long owed = wk_mailbox_drops_owed((wk_mailbox *)&w->mb);
    s.accepted = wk_mailbox_accepted(&w->mb);
    uint64_t gone = s.handled + s.dropped + (owed > 0 ? (uint64_t)owed : 0);
    s.queued = s.accepted > gone ? s.accepted - gone : 0;
    return s;
}

uint64_t wk_worker_queued(const worker_t *w)
{
    return take_snapshot(w).queued;
}

int worker_stats(const worker_t *w, worker_stats_t *out)
{
    if (!w || !out)
        return WORKER_EINVAL;
    uint64_t max = load(&w->counts.queued_max);
    snapshot s = take_snapshot(w);
    *out = (worker_stats_t) {
        .accepted = s.accepted,
        .handled = s.handled,
        .refused = load(&w->stats.refused),
        .dropped = s.dropped,
        .queued = (size_t)s.queued,
        .queued_max = (size_t)(max > s.queued ? max : s.queued),
        .busy = busy_seconds(w),
    };
    return WORKER_OK;
}
