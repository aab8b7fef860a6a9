/* The mailbox's backpressure and statistics side: senders waiting for
 * room, drop-oldest acknowledgements, and the counters read by
 * worker_stats. The rules (who writes what, why no wake-up is lost) are
 * at the top of mailbox.c.
 *
 * Invariants:
 * - `room_waiters` is a stack any thread pushes on (CAS) and that is
 *   taken whole (exchange) by whoever wakes: each waiter is handed to its
 *   wake exactly once, on the thread that took it. The waker never reads
 *   a waiter after handing it over.
 * - `slept_ns` and `asleep_since` are written by the owner only (relaxed
 *   stores); readers add the running sleep themselves.
 */
#include <ck_pr.h>

#include "wk_mailbox.h"
#include "wk_os.h"

void wk_mailbox_wait_room(wk_mailbox *mb, wk_room_waiter *waiter)
{
    wk_room_waiter *head = atomic_load_explicit(&mb->room_waiters, memory_order_relaxed);
    do
        waiter->next = head;
    while (!atomic_compare_exchange_weak(&mb->room_waiters, &head, waiter));
}

bool wk_mailbox_may_push(wk_mailbox *mb)
{
    if (atomic_load(&mb->closed) != WK_MB_OPEN)
        return true; /* closed (refused for good), or forwarding (never full) */
    if (atomic_load(&mb->user_queued) < (long)mb->limit)
        return true;
    return mb->drop_oldest && atomic_load(&mb->drop_owed) < (long)mb->limit;
}

void wk_mailbox_wake_room(wk_mailbox *mb)
{
    wk_room_waiter *w = atomic_exchange(&mb->room_waiters, NULL);
    while (w) {
        wk_room_waiter *next = w->next;
        w->wake(w);
        w = next;
    }
}

void wk_mailbox_dropped(wk_mailbox *mb, long n)
{
    atomic_fetch_sub(&mb->drop_owed, n);
    if (atomic_load(&mb->room_waiters))
        wk_mailbox_wake_room(mb);
}

uint64_t wk_mailbox_accepted(const wk_mailbox *mb)
{
    /* Read the library messages first: the difference can then only be
     * short of pushes still in flight, never count one twice. */
    uint64_t not_user = atomic_load_explicit(&((wk_mailbox *)mb)->not_user, memory_order_acquire);
    uint64_t queued_ever = (uint64_t)(uintptr_t)ck_pr_load_ptr(&mb->fifo.tail.generation);
    uint64_t forwarded = atomic_load_explicit(&((wk_mailbox *)mb)->forwarded, memory_order_relaxed);
    return (queued_ever > not_user ? queued_ever - not_user : 0) + forwarded;
}

uint64_t wk_mailbox_taken(const wk_mailbox *mb)
{
    return (uint64_t)(uintptr_t)ck_pr_load_ptr(&mb->fifo.head.generation);
}

uint64_t wk_mailbox_queued_all(const wk_mailbox *mb)
{
    uint64_t taken = wk_mailbox_taken(mb);
    uint64_t queued_ever = (uint64_t)(uintptr_t)ck_pr_load_ptr(&mb->fifo.tail.generation);
    return queued_ever > taken ? queued_ever - taken : 0;
}

void wk_mailbox_sleep_begin(wk_mailbox *mb)
{
    atomic_store_explicit(&mb->asleep_since, wk_now_ns(), memory_order_relaxed);
}

void wk_mailbox_sleep_end(wk_mailbox *mb)
{
    uint64_t since = atomic_load_explicit(&mb->asleep_since, memory_order_relaxed);
    if (!since)
        return;
    uint64_t now = wk_now_ns();
    atomic_store_explicit(&mb->asleep_since, 0, memory_order_relaxed);
    atomic_store_explicit(&mb->slept_ns,
        atomic_load_explicit(&mb->slept_ns, memory_order_relaxed) + (now - since),
        memory_order_relaxed);
}

uint64_t wk_mailbox_slept_ns(const wk_mailbox *mb, uint64_t now_ns)
{
    wk_mailbox *m = (wk_mailbox *)mb;
    uint64_t since = atomic_load_explicit(&m->asleep_since, memory_order_relaxed);
    uint64_t slept = atomic_load_explicit(&m->slept_ns, memory_order_relaxed);
    return slept + (since && now_ns > since ? now_ns - since : 0);
}
