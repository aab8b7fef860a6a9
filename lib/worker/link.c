/* Links: worker_link / worker_unlink. A link is two watch entries of kind
 * WK_WATCH_LINK (watch.c), one in each worker's `watchers`: the entry in
 * A's list names B and says "tell B when A ends".
 *
 * Invariants:
 * - Each entry is added and removed under its own worker's lock; no two
 *   worker locks are held at once here.
 * - worker_link adds the caller's entry first, then the other's under the
 *   other's lock, and only while the other is not ENDED. So when the other
 *   ends after that, its end sequence (which takes its list under the same
 *   lock, with ENDED) finds the entry and tells the caller, whose own entry
 *   is there by then; and when the other had already ended, the caller
 *   removes its own entry and acts at once. A link is never half made.
 * - Telling (wk_link_tell, on the ended worker's thread) removes the
 *   entry on the receiving side first, under that worker's lock, and
 *   sends only if it was still there: an unlink that came first wins, and
 *   each link acts once. What it sends goes through the mailbox, after
 *   every event the ended worker fired at the receiver (order per pair).
 * - The caller's own entry needs a spare (the caller may end first, with
 *   no memory to tell); so does the other's: wk_watch_add takes them.
 */
#include "wk_link.h"

#include "wk_current.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_watch.h"

/* What a failed or stopped end of `ended` does to `to`: LINKED_EXIT when
 * `to` traps links (a root worker always does), else STOP_THREAD. */
static void act(
    worker_t *ended, worker_t *to, const worker_down_t *down, wk_thread *t, wk_spare *spare)
{
    if (to->trap_links || to->is_root)
        wk_send_spared(
            to, WK_EV_LIBRARY, wk_atoms.linked_exit, NULL, down, sizeof *down, ended, t, spare);
    else
        wk_send_spared(to, WK_EV_LIBRARY, wk_atoms.stop, NULL, NULL, 0, ended, t, spare);
}

void wk_link_tell(worker_t *w, worker_t *other, wk_thread *t, wk_spare *spare)
{
    pthread_mutex_lock(&other->lock);
    bool linked = wk_watch_remove(other, w, WK_WATCH_LINK);
    pthread_mutex_unlock(&other->lock);
    worker_down_t down = { .worker = w, .err = w->result_err, .ret = w->result_ret };
    if (linked && down.err != WORKER_OK)
        act(w, other, &down, t, spare);
}

static int link_args(worker_t *other, wk_thread **t, worker_t **me)
{
    if (!other || other->is_root)
        return WORKER_EINVAL;
    if (wk_init() != WORKER_OK || !(*t = wk_thread_get()) || !(*me = wk_current(*t)))
        return WORKER_ENOMEM;
    return *me == other ? WORKER_EINVAL : WORKER_OK;
}

int worker_link(worker_t *other)
{
    wk_thread *t = NULL;
    worker_t *me = NULL;
    int rc = link_args(other, &t, &me);
    if (rc != WORKER_OK)
        return rc;
    /* For acting at once on an ended worker: that notice needs no memory. */
    wk_spare spare = { 0 };
    if (!wk_spare_take(&spare)) {
        wk_spare_release(&spare);
        return WORKER_ENOMEM;
    }
    pthread_mutex_lock(&me->lock);
    rc = wk_watch_add(me, other, WK_WATCH_LINK);
    pthread_mutex_unlock(&me->lock);
    worker_down_t down = { .worker = other };
    bool ended = false;
    if (rc == WORKER_OK) {
        pthread_mutex_lock(&other->lock);
        wk_state s = wk_worker_state(other);
        if (s == WK_NEW) {
            rc = WORKER_ESTATE;
        } else if (s == WK_ENDED) {
            ended = true;
            down.err = other->result_err;
            down.ret = other->result_ret;
        } else {
            rc = wk_watch_add(other, me, WK_WATCH_LINK);
        }
        pthread_mutex_unlock(&other->lock);
        if (rc != WORKER_OK || ended) {
            pthread_mutex_lock(&me->lock);
            bool mine = wk_watch_remove(me, other, WK_WATCH_LINK);
            pthread_mutex_unlock(&me->lock);
            /* Not ours any more: other's end told us meanwhile (it cannot
             * have: it had ended already), or an unlink on this thread. */
            ended = ended && mine;
        }
    }
    if (ended && down.err != WORKER_OK)
        act(other, me, &down, t, &spare);
    wk_spare_release(&spare);
    return rc;
}

int worker_unlink(worker_t *other)
{
    wk_thread *t = NULL;
    worker_t *me = NULL;
    int rc = link_args(other, &t, &me);
    if (rc != WORKER_OK)
        return rc;
    pthread_mutex_lock(&me->lock);
    bool mine = wk_watch_remove(me, other, WK_WATCH_LINK);
    pthread_mutex_unlock(&me->lock);
    pthread_mutex_lock(&other->lock);
    bool theirs = wk_watch_remove(other, me, WK_WATCH_LINK);
    pthread_mutex_unlock(&other->lock);
    return mine || theirs ? WORKER_OK : WORKER_EINVAL;
}
