/* Held mailboxes: what makes a supervised restart keep the mail.
 *
 * A worker whose hold_mode says so ends with its mailbox at WK_MB_HELD
 * instead of closing it: user events (up to mailbox_limit), internal
 * commands and supervision messages are still admitted, the library's
 * named events (STOP_THREAD, PAUSE_THREAD, notices) are refused, and
 * worker_is_running is false. Like any end, the ending run delivers every
 * event accepted before it (wk_hold_drain: up to a marker it queues after
 * the level changed, so a STOP_THREAD meant for this run never reaches the
 * next one). The next run (wk_worker_restart, by the supervisor) opens the
 * mailbox again and pops what waits, in order. If the supervisor gives up
 * instead, wk_worker_release_held delivers what waits and closes it.
 *
 * Invariants:
 * - hold_mode and held are read and written under w->lock. The end
 *   sequence decides (wk_hold_decide) under the lock that publishes
 *   ENDING, so a mode set before that lock is taken is the one that
 *   counts, and `held` says what that end did.
 * - While `held` is set only wk_worker_restart starts w (worker_start and
 *   start_overlay: WORKER_ESTATE), so there is exactly one next consumer
 *   of the mailbox: the next run, or the releasing thread.
 * - Single consumer: wk_worker_release_held pops only after w's last run
 *   has finished (`finished`, under the lock, after the run's last pop);
 *   `held` is cleared only after the mailbox is CLOSED and drained, so no
 *   start can overlap the release.
 * - Accepted means handled once: wk_mailbox_close(HELD) returns once
 *   every push that saw the mailbox open has enqueued, so all of them are
 *   before the marker and handled by the ending run; every event admitted
 *   while HELD is after it, and popped by exactly one of the next run or
 *   the release.
 */
#include "wk_hold.h"

#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"

/* The marker's command: the drain's wait is over. */
static void marker_reached(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    ((wk_frame *)wk_event_call_arg(e))->done = true;
}

void wk_hold_drain(worker_t *w, wk_thread *t)
{
    wk_frame f = { .kind = WK_WAIT_NOTICE, .ignore_exit = true };
    worker_event_t *marker
        = wk_event_new_call(wk_atoms.execute, WK_EV_INTERNAL, NULL, marker_reached, &f, NULL);
    if (!marker) /* out of memory: what was accepted waits for the next run */
        return;
    int rc
        = wk_traced(marker) ? wk_push_traced(w, marker, 0, t) : wk_mailbox_push(&w->mb, marker, t);
    if (rc != WORKER_OK) {
        wk_event_discard(marker);
        return;
    }
    wk_loop_wait(w, t, &f, WK_NO_DEADLINE);
}

bool wk_hold_decide(worker_t *w, int err)
{
    w->held = w->hold_mode == WK_HOLD_ALWAYS || (w->hold_mode == WK_HOLD_ON_ERROR && err != 0);
    return w->held;
}

void wk_worker_set_hold(worker_t *w, int mode)
{
    pthread_mutex_lock(&w->lock);
    w->hold_mode = (uint8_t)mode;
    pthread_mutex_unlock(&w->lock);
}

void wk_worker_release_held(worker_t *w)
{
    wk_thread *t = wk_thread_get();
    pthread_mutex_lock(&w->lock);
    while (!w->finished)
        pthread_cond_wait(&w->ended, &w->lock);
    bool held = w->held && wk_worker_state(w) == WK_ENDED;
    pthread_mutex_unlock(&w->lock);
    if (!held || !t)
        return;
    /* As a run on this thread (run_refused in worker.c does the same): w
     * on top of the stack while its listeners run; the caller's last wait
     * keeps its data. */
    worker_event_t *kept = t->last_returned;
    t->last_returned = NULL;
    w->below = t->current;
    t->current = w;
    wk_stack_changed(t);
    w->ending = w->exiting = true;
    w->paused = false;
    wk_mailbox_close(&w->mb, t, WK_MB_CLOSED);
    wk_loop_drain(w, t);
    t->current = w->below;
    w->below = NULL;
    wk_stack_changed(t);
    wk_sender_credit_return(t);
    wk_drop_last_returned(t);
    t->last_returned = kept;
    pthread_mutex_lock(&w->lock);
    w->held = false;
    w->hold_mode = WK_HOLD_NEVER;
    pthread_mutex_unlock(&w->lock);
}
