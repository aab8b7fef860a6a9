/* worker_stats: a snapshot of a worker's counters, and the run times its
 * busy time is measured from.
 *
 * Invariants:
 * - Nothing here is on the fire or delivery path. Every counter has its
 *   writers named where it is declared (wk_worker.h, wk_mailbox.h) and is
 *   read with relaxed loads, one field at a time.
 * - `accepted` is the mailbox's (derived from its queue, mailbox.c);
 *   every accepted user event is then handled, dropped (expired request or
 *   drop-oldest), owed to a drop not made yet, or still queued. So queued
 *   = accepted - handled - dropped - owed. The owner's counters are read
 *   before `accepted`, which only grows: a snapshot taken while events
 *   flow can count a handled event as not yet accepted only by clamping to
 *   zero, never count one twice.
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

/* The owner's counters first, then `accepted` (see the top). */
static uint64_t queued_now(const worker_t *w, uint64_t *accepted, uint64_t *handled, uint64_t *dropped)
{
    *handled = load(&w->counts.handled);
    *dropped = load(&w->stats.dropped);
    long owed = wk_mailbox_drops_owed((wk_mailbox *)&w->mb);
    *accepted = wk_mailbox_accepted(&w->mb);
    uint64_t gone = *handled + *dropped + (owed > 0 ? (uint64_t)owed : 0);
    return *accepted > gone ? *accepted - gone : 0;
}

uint64_t wk_worker_queued(const worker_t *w)
{
    uint64_t accepted, handled, dropped;
    return queued_now(w, &accepted, &handled, &dropped);
}

int worker_stats(const worker_t *w, worker_stats_t *out)
{
    if (!w || !out)
        return WORKER_EINVAL;
    uint64_t accepted, handled, dropped;
    uint64_t max = load(&w->counts.queued_max);
    uint64_t queued = queued_now(w, &accepted, &handled, &dropped);
    *out = (worker_stats_t) {
        .accepted = accepted,
        .handled = handled,
        .refused = load(&w->stats.refused),
        .dropped = dropped,
        .queued = (size_t)queued,
        .queued_max = (size_t)(max > queued ? max : queued),
        .busy = busy_seconds(w),
    };
    return WORKER_OK;
}
