/* The parent/child tree: a child joins its parent's children at its
 * start, a parent stops its children at its end and waits for the
 * non-daemon ones, and every end is reported to the worker's watchers
 * (watch.c).
 *
 * Downwards, a parent stops its children with STOP_THREAD messages and
 * waits for the non-daemon ones by running its own loop until each one's
 * CHILD_THREAD_END has arrived; its mailbox still admits those supervision
 * messages while it ends (WK_MB_ENDING).
 *
 * Invariants:
 * - A child is in its parent's `children` from its start until its end
 *   sequence reports to the parent; it leaves `children` (under the
 *   parent's lock) before it sends CHILD_THREAD_END. So a parent that takes
 *   a snapshot of `children` will receive CHILD_THREAD_END from every child
 *   in it, later.
 * - A stop round (wk_tree_stop_children) needs no memory: under the
 *   parent's lock it writes the ids of its non-daemon children into
 *   `awaited`, whose room was reserved when each child joined (a start that
 *   cannot reserve it fails with WORKER_ENOMEM), and sends STOP_THREAD to
 *   each child while it holds that lock (a send takes no worker lock). Each
 *   child records the round that told it (`stop_round`, under the parent's
 *   lock), so a STOP that could not be made is sent again, once, later;
 *   each child holds a spare for its parent's STOP_THREAD (`stop_spare`,
 *   under the parent's lock), taken when it joins.
 *   `awaited` is then only changed under the lock by the round's wait
 *   condition, on the parent's thread; only a root worker, whose stop does
 *   not end it, can be stopped again meanwhile: that nested round sends
 *   and leaves the waiting to the running one.
 * - A parent in WK_ENDING takes no new children (start fails with
 *   WORKER_EREJECTED), so its snapshot is complete.
 * - Lock order: child, then parent (see wk_worker.h).
 */
#include "wk_tree.h"

#include <stdint.h>
#include <stdlib.h>

#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_list.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_watch.h"

int wk_tree_link(worker_t *child)
{
    worker_t *p = child->parent;
    if (!p)
        return WORKER_OK;
    int rc = wk_watch_add(child, p, WK_WATCH_PARENT);
    if (rc != WORKER_OK)
        return rc;
    pthread_mutex_lock(&p->lock);
    if (wk_worker_state(p) == WK_ENDING) {
        rc = WORKER_EREJECTED;
    } else if (!wk_spare_take(&child->stop_spare) || !wk_list_add(&p->children, child)) {
        rc = WORKER_ENOMEM;
    } else { /* room for its id in a stop round of p */
        uint64_t *room
            = wk_array_room(p->awaited, &p->awaited_cap, p->children.count - 1, sizeof *room, 4);
        if (room) {
            p->awaited = room;
        } else {
            wk_list_remove(&p->children, child);
            rc = WORKER_ENOMEM;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (rc != WORKER_OK)
        wk_watch_remove(child, p, WK_WATCH_PARENT);
    return rc;
}

void wk_tree_unlink(worker_t *child)
{
    worker_t *p = child->parent;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool found = wk_list_take(&p->children, child);
    pthread_mutex_unlock(&p->lock);
    if (found)
        worker_unref(child);
}

/* Wait condition of a stop round: a CHILD_THREAD_END takes its sender out
 * of the awaited ids; true when none is left. Owner thread of w. */
bool wk_tree_child_ended(const worker_event_t *e, void *userdata)
{
    worker_t *w = userdata;
    if (e->atom != wk_atoms.child_end || !e->sender)
        return false;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->awaited_count; i++) {
        if (w->awaited[i] == e->sender->id) {
            w->awaited[i] = w->awaited[--w->awaited_count];
            break;
        }
    }
    bool none_left = w->awaited_count == 0;
    pthread_mutex_unlock(&w->lock);
    return none_left;
}

/* STOP_THREAD to every child not told yet in this round, sent under w's
 * lock (a send takes no worker lock). False when one could not be made
 * (out of memory): that child is told on the next call. */
static bool send_stops(worker_t *w, wk_thread *t, uint64_t round)
{
    bool all_told = true;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->children.count; i++) {
        worker_t *kid = w->children.items[i];
        if (kid->stop_round == round)
            continue;
        if (wk_send_spared(kid, WK_EV_LIBRARY, wk_atoms.stop, NULL, NULL, 0, w, t,
                &kid->stop_spare)
            == WORKER_ENOMEM)
            all_told = false;
        else
            kid->stop_round = round;
    }
    pthread_mutex_unlock(&w->lock);
    return all_told;
}

void wk_tree_tell_children_stop(worker_t *w, wk_thread *t)
{
    send_stops(w, t, ++w->stop_rounds);
}

#define STOP_RETRY_NS 10000000ull /* 10 ms */

/* The ids of the non-daemon children into `awaited` (a new round that
 * waits); true when there are any. */
static bool note_awaited(worker_t *w, bool await)
{
    pthread_mutex_lock(&w->lock);
    if (await) {
        w->awaited_count = 0;
        for (size_t i = 0; i < w->children.count; i++)
            if (!worker_is_daemon(w->children.items[i]))
                w->awaited[w->awaited_count++] = w->children.items[i]->id;
    }
    bool waiting = w->awaited_count > 0;
    pthread_mutex_unlock(&w->lock);
    return waiting;
}

void wk_tree_stop_children(worker_t *w, wk_thread *t)
{
    /* A root worker stopped again while it waits for its children: that
     * round goes on waiting; this one only stops the children (again). */
    bool await = !w->stopping;
    uint64_t round = ++w->stop_rounds;
    bool waiting = note_awaited(w, await);
    w->stopping |= await;
    bool all_told = send_stops(w, t, round);
    while (!all_told || (await && waiting)) {
        wk_frame f
            = { .kind = WK_WAIT_COND, .cond = wk_tree_child_ended, .userdata = w, .ignore_exit = true };
        int rc = wk_loop_wait(w, t, &f, all_told ? WK_NO_DEADLINE : wk_now_ns() + STOP_RETRY_NS);
        waiting = waiting && rc != WORKER_OK;
        if (!all_told)
            all_told = send_stops(w, t, round);
    }
    if (await)
        w->stopping = false;
}

bool wk_tree_stop_children_begin(worker_t *w, wk_thread *t)
{
    bool waiting = note_awaited(w, true);
    w->stopping = true;
    w->stops_untold = !send_stops(w, t, ++w->stop_rounds);
    return waiting || w->stops_untold;
}

bool wk_tree_stop_children_step(worker_t *w, wk_thread *t)
{
    if (w->stops_untold)
        w->stops_untold = !send_stops(w, t, w->stop_rounds);
    pthread_mutex_lock(&w->lock);
    bool waiting = w->awaited_count > 0;
    pthread_mutex_unlock(&w->lock);
    if (waiting || w->stops_untold)
        return false;
    w->stopping = false;
    return true;
}

/* The run's last step: `finished`, and its reference dropped under the
 * lock, so a joiner that wakes may free the worker right after. */
static void finish_run(worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->finished = true;
    pthread_cond_broadcast(&w->ended);
    bool last = atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1;
    pthread_mutex_unlock(&w->lock);
    if (last)
        wk_worker_free(w);
}

void wk_tree_report_end(worker_t *w, wk_thread *t)
{
    pthread_mutex_lock(&w->lock);
    wk_worker_set_state(w, WK_ENDED);
    wk_watch_list watchers = w->watchers;
    w->watchers = (wk_watch_list) { 0 };
    for (size_t i = 0; i < watchers.count; i++) /* room reserved by wk_watch_add */
        if (watchers.items[i].kind == WK_WATCH_MONITOR && w->told_count < w->told_cap)
            w->told[w->told_count++] = watchers.items[i].watcher->id;
    pthread_cond_broadcast(&w->ended);
    pthread_mutex_unlock(&w->lock);
    /* The parent first, then waiters, monitors and links. */
    for (int kind = WK_WATCH_PARENT; kind <= WK_WATCH_LINK; kind++)
        for (size_t i = 0; i < watchers.count; i++)
            if ((int)watchers.items[i].kind == kind)
                wk_watch_notify(w, watchers.items[i].watcher, (wk_watch_kind)kind, t,
                    watchers.items[i].spare);
    wk_watch_list_free(&watchers);
    finish_run(w);
}

