/* A pooled worker's run: it begins on the thread that starts it, then goes
 * on in slices on the scheduler's threads (sched.c), each one batch of
 * events or one step of its end sequence.
 *
 * Invariants:
 * - A slice runs only on the scheduler thread that took the worker off a
 *   run queue, and the worker was claimed before it went on the queue
 *   (sched.c), so its owner-only fields (frames, exiting, ending, batch,
 *   timers, end_phase, stops_untold) are touched by one thread at a time;
 *   the queue's lock and the mailbox's `sleeping` exchange order one
 *   slice's writes before the next slice's reads.
 * - During a slice the worker is the top of the scheduler thread's stack
 *   (t->current), so worker_current(), fires and replies from its
 *   listeners name it; the stack is empty again before it rests.
 * - Every slice ends with the batch empty (a slice stops between batches),
 *   so nothing the worker holds is left in its batch while it is idle.
 * - A resting worker may be claimed and run by another thread as soon as
 *   `sleeping` is set: the slice takes a reference before it rests and
 *   reads nothing of the worker's owner-only fields afterwards (the next
 *   deadline is read before).
 * - Nothing here blocks. The end sequence is that of a thread worker
 *   (worker.c) with its wait for the children cut into slices: the stop
 *   round's condition (tree.c) runs on each event of those slices, and the
 *   end completes in the slice that finds no child left.
 */
#include "wk_sched.h"

#include <ck_pr.h>

#include "wk_loop.h"
#include "wk_os.h"
#include "wk_timers.h"
#include "wk_tree.h"

enum wk_end_phase { END_NONE = 0, END_AWAITING_CHILDREN = 1 };

#define RETRY_STOPS_NS 10000000ull /* 10 ms: a STOP that found no memory */

void wk_pooled_woken(wk_mailbox *mb)
{
    wk_sched_submit((worker_t *)mb); /* the mailbox is the worker's first field */
}

void wk_pooled_begin(worker_t *w, wk_thread *t)
{
    wk_worker_run_begins(w, t, 0);
    wk_mailbox_make_pooled(&w->mb);
    wk_mailbox_sleep_begin(&w->mb); /* idle until its first slice */
    if (wk_mailbox_pooled_rest(&w->mb)) /* events came before its start */
        wk_sched_submit(w);
}

/* The end's first half and the stop of its children; true when the run
 * has ended (the worker may be gone). */
static bool end_begins(worker_t *w, wk_thread *t)
{
    wk_worker_end_begin(w, t, WORKER_EXIT, NULL);
    wk_sched_forget(w); /* its timers are dropped: so is its deadline */
    if (wk_tree_stop_children_begin(w, t)) {
        w->end_phase = END_AWAITING_CHILDREN;
        return false;
    }
    wk_worker_end_complete(w, t);
    return true;
}

/* A slice of the wait for the children's ends; true when the run has
 * ended. */
static bool end_goes_on(worker_t *w, wk_thread *t)
{
    wk_frame f = { .kind = WK_WAIT_COND,
        .cond = wk_tree_child_ended,
        .userdata = w,
        .ignore_exit = true,
        .update_only = true,
        .slice = true };
    wk_loop_wait(w, t, &f, WK_NO_DEADLINE);
    if (!wk_tree_stop_children_step(w, t))
        return false;
    w->end_phase = END_NONE;
    wk_worker_end_complete(w, t);
    return true;
}

/* One batch of events (and the due timers); true when the run has ended. */
static bool handle_batch(worker_t *w, wk_thread *t)
{
    wk_frame f = { .kind = WK_WAIT_TIME, .update_only = true, .slice = true };
    if (wk_loop_wait(w, t, &f, WK_NO_DEADLINE) == WORKER_EXIT)
        return end_begins(w, t);
    return false;
}

/* When the scheduler must run it again without an event: its next timer,
 * or a retry of the stops it could not send. */
static uint64_t next_deadline(worker_t *w)
{
    if (w->end_phase != END_NONE)
        return w->stops_untold ? wk_now_ns() + RETRY_STOPS_NS : WK_NO_DEADLINE;
    return wk_timers_pending(w) ? wk_timers_next_deadline(w) : WK_NO_DEADLINE;
}

/* Senders that keep one pooled worker busy (fan-in) refill its mailbox
 * within a few hundred nanoseconds: a scheduler thread with nothing else
 * to run looks a little longer before the worker rests, as a thread
 * worker spins before it parks, so they do not pay a wake-up each. */
#define LOOKS_BEFORE_REST 64

static bool work_came(worker_t *w)
{
    if (wk_mailbox_has_work(&w->mb))
        return true;
    for (int i = 0; i < LOOKS_BEFORE_REST && wk_sched_nothing_queued_here(); i++) {
        ck_pr_stall();
        if (wk_mailbox_has_work(&w->mb))
            return true;
    }
    return false;
}

/* After a slice: back on a queue when it has more, else idle (and its
 * next deadline registered). */
static void rest(worker_t *w, wk_thread *t)
{
    wk_sender_credit_return(t);
    if (w->end_phase == END_NONE ? work_came(w) : wk_mailbox_has_work(&w->mb)) {
        wk_sched_submit(w);
        return;
    }
    uint64_t deadline = next_deadline(w);
    worker_ref(w); /* from the store of `sleeping` on, it may run elsewhere */
    wk_mailbox_sleep_begin(&w->mb);
    if (wk_mailbox_pooled_rest(&w->mb))
        wk_sched_submit(w);
    else if (deadline != WK_NO_DEADLINE && wk_sched_timer(w, deadline))
        return; /* the timer heap took the reference */
    else if (deadline != WK_NO_DEADLINE && wk_mailbox_pooled_claim(&w->mb))
        wk_sched_submit(w); /* no memory for the heap: run it again soon */
    worker_unref(w);
}

void wk_pooled_run_slice(worker_t *w, wk_thread *t)
{
    uint32_t id = (uint32_t)w->id;
    int index = wk_sched_queue_index();
    wk_probe_slice_begin(id, index);
    wk_mailbox_sleep_end(&w->mb);
    w->below = t->current;
    t->current = w;
    bool ended = w->end_phase == END_AWAITING_CHILDREN ? end_goes_on(w, t) : handle_batch(w, t);
    wk_probe_slice_end(id, index, ended);
    if (ended)
        return; /* the end sequence left the stack; w may be gone */
    t->current = w->below;
    w->below = NULL;
    rest(w, t);
}
