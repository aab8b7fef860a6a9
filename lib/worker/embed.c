/* Embedding: the fd and the next timeout of the calling thread's root
 * worker, for a host event loop that drives it with worker_update().
 *
 * Invariants:
 * - Both calls run on the calling thread and touch only its own current
 *   worker's owner-only fields (frames, batch, timers, exiting) and its
 *   mailbox's fd (mailbox_fd.c).
 * - The fd is attached once per root worker and detached when the root
 *   ends (current.c). Outside its outermost loop the root rests: producers
 *   signal the fd (loop.c sets it busy and resting around each outermost
 *   wait, worker_update() included).
 */
#include <worker/embed.h>

#include "wk_current.h"
#include "wk_init.h"
#include "wk_os.h"
#include "wk_timers.h"

int worker_fd(void)
{
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    if (!me->is_root)
        return WORKER_ESTATE; /* its own thread runs its loop */
    bool first = !wk_mailbox_has_fd(&me->mb);
    int fd = wk_mailbox_attach_fd(&me->mb);
    if (fd >= 0 && first && !me->frames)
        wk_mailbox_rest(&me->mb); /* inside a loop: its end rests */
    return fd;
}

static bool has_queued(const worker_t *w)
{
    return atomic_load_explicit(&w->batch_pos, memory_order_relaxed)
        < atomic_load_explicit(&w->batch_len, memory_order_relaxed)
        || wk_mailbox_has_work(&w->mb);
}

double worker_next_timeout(void)
{
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return -1.0;
    if (has_queued(me))
        return 0.0;
    if (me->exiting)
        return -1.0; /* its timers no longer run */
    uint64_t next = wk_timers_next_deadline(me);
    if (next == WK_NO_DEADLINE)
        return -1.0;
    uint64_t now = wk_now_ns();
    return next <= now ? 0.0 : (double)(next - now) / 1e9;
}
