/* A pooled owner's mailbox: the owner has no thread to park, so going idle
 * and being woken become "rest" and "schedule" (lib/worker/sched.c).
 *
 * Invariants:
 * - `wake_fd` is WK_MB_POOLED from wk_mailbox_make_pooled on (set by the
 *   owner before it first rests, never changed after), so a producer that
 *   sees `sleeping` set knows it must schedule, not signal.
 * - `sleeping` set means: idle, on no run queue, running nowhere. Exactly
 *   one thread takes it back (exchange to 0): a producer after its push
 *   (mailbox.c, wake_owner), a timer that fell due (wk_mailbox_pooled_claim),
 *   or the owner itself when its rest finds work. That thread schedules the
 *   owner, so it runs on one scheduler thread at a time and no wake-up is
 *   lost: as in mailbox_fd.c, a push either lands before the rest's
 *   re-check (the owner sees it) or its load of `sleeping` comes after the
 *   rest's store (seq_cst), and it schedules.
 * - The hook is set once, before the first pooled owner rests.
 */
#include "wk_mailbox.h"

/* Global: set once by the scheduler (the layer above) before any pooled
 * mailbox exists; read by producers. */
static _Atomic(wk_mailbox_wake_fn) pooled_wake_hook;

void wk_mailbox_set_pooled_wake(wk_mailbox_wake_fn wake)
{
    atomic_store_explicit(&pooled_wake_hook, wake, memory_order_release);
}

void wk_mailbox_pooled_wake(wk_mailbox *mb)
{
    atomic_load_explicit(&pooled_wake_hook, memory_order_acquire)(mb);
}

void wk_mailbox_make_pooled(wk_mailbox *mb)
{
    atomic_store_explicit(&mb->wake_fd, WK_MB_POOLED, memory_order_relaxed);
}

bool wk_mailbox_pooled_rest(wk_mailbox *mb)
{
    atomic_store(&mb->sleeping, 1);
    if (!wk_mailbox_has_work(mb))
        return false;
    return atomic_exchange_explicit(&mb->sleeping, 0, memory_order_acq_rel) == 1;
}

bool wk_mailbox_pooled_claim(wk_mailbox *mb)
{
    if (!atomic_load_explicit(&mb->sleeping, memory_order_relaxed))
        return false;
    return atomic_exchange_explicit(&mb->sleeping, 0, memory_order_acq_rel) == 1;
}
