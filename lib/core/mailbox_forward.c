/* Forwarding owners: a mailbox whose user events are not queued but handed,
 * on the pushing thread, to the owner's `forward` hook (worker_opts.forward:
 * the proxies of a transport publish them at once, with no hand-off to a
 * thread of their own). Library messages are queued as for any mailbox.
 *
 * Invariants:
 * - `forward` is set once, before the first open, and never changes; the
 *   open level is then WK_MB_FORWARD instead of WK_MB_OPEN. A held
 *   forwarding mailbox (a supervised worker between runs) refuses user
 *   events rather than queueing them: nothing but the hook ever sees them.
 * - A push that sees WK_MB_FORWARD counts itself in `forwarding` while
 *   still inside its epoch section, then leaves the section before the hook
 *   runs, so that a hook does not hold up grace periods. Sections nest,
 *   though: a push made inside an outer section (a channel publish offers
 *   the event to its subscribers inside one) runs the hook still inside
 *   that one. Hence the rule for hooks (worker_opts.forward): short, and
 *   never waiting for a grace period (no join, no channel unsubscribe or
 *   free), which would wait for its own section.
 *   Closing stores the new level, waits for a grace period (every push that
 *   saw the open level has counted itself by then) and then for
 *   `forwarding` to fall to 0: after close returns, no hook runs, and
 *   none will. So the hook's state may be freed once the owner has ended.
 * - Pushes from one thread reach the hook in their order (each push runs
 *   its hook before it returns); pushes from different threads may run
 *   their hooks at the same time.
 * - The hook owns the push's reference to the event. A forwarded event
 *   counts as accepted and handled in the statistics (`forwarded`).
 */
#include <sched.h>

#include <worker/error.h>

#include "wk_epoch.h"
#include "wk_mailbox.h"
#include "wk_pool.h"

void wk_mailbox_make_forwarding(wk_mailbox *mb, wk_mailbox_forward_fn forward)
{
    mb->forward = forward;
}

int wk_mailbox_forward_out(wk_mailbox *mb, worker_event_t *e, void *node, wk_thread *t)
{
    atomic_fetch_add_explicit(&mb->forwarding, 1, memory_order_seq_cst);
    wk_epoch_exit(t);
    wk_pool_free(WK_POOL_QNODE, node);
    mb->forward(mb, e, t);
    atomic_fetch_add_explicit(&mb->forwarded, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&mb->forwarding, 1, memory_order_release);
    return WORKER_OK;
}

void wk_mailbox_forwards_drain(wk_mailbox *mb)
{
    while (atomic_load_explicit(&mb->forwarding, memory_order_acquire) != 0)
        sched_yield();
}
