/* Supervision: the parent/child tree, wait_thread and monitors, all built
 * from one mechanism: a worker's `watchers` hear of its end by message.
 *
 *   watcher kind   message(s) sent when the worker ends
 *   parent         CHILD_THREAD_STOP / _ERROR / _DONE, then CHILD_THREAD_END
 *   waiter         WAIT_THREAD_PENDING_DONE          (worker_wait_thread)
 *   monitor        WORKER_DOWN                       (worker_monitor)
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
 *   lock), so a STOP that could not be made is sent again, once, later.
 *   `awaited` is then only changed under the lock by the round's wait
 *   condition, on the parent's thread; only a root worker, whose stop does
 *   not end it, can be stopped again meanwhile: that nested round sends
 *   and leaves the waiting to the running one.
 * - A parent in WK_ENDING takes no new children (start fails with
 *   WORKER_EREJECTED), so its snapshot is complete.
 * - `watchers` are added under the target's lock while it is not ENDED; the
 *   end sequence publishes ENDED and takes the list under that same lock,
 *   so no watcher is missed or told twice. A watcher added when the target
 *   has already ended is told at once.
 * - The end sequence needs no memory to tell anyone: each watcher is added
 *   with a spare (an event object and a queue node) for each notice it will
 *   be sent (a parent: CHILD_THREAD_START, STOP/ERROR/DONE, END), and each
 *   child with a spare for its parent's STOP_THREAD (`stop_spare`, under
 *   the parent's lock); adding fails with WORKER_ENOMEM when they cannot be
 *   taken. A notice uses its spare only when it cannot allocate at the
 *   time; spares left over go back to the pools when the watcher is told,
 *   removed, or the worker freed.
 * - WORKER_DOWN goes once to a worker per end of the target: under the
 *   lock that publishes ENDED, the ids of the monitors are kept in `told`
 *   (room reserved when each monitor was added), and a monitor of an
 *   ended (or never started) target is told at once only if its id is not
 *   there yet (then it is added). A restart empties `told`.
 * - Lock order: child, then parent (see wk_worker.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_tree.h"

/* ---- plain worker lists ---- */

bool wk_list_add(wk_worker_list *l, worker_t *w)
{
    worker_t **grown = wk_array_room(l->items, &l->cap, l->count, sizeof *grown, 4);
    if (!grown)
        return false;
    l->items = grown;
    l->items[l->count++] = worker_ref(w);
    return true;
}

static bool list_take(wk_worker_list *l, worker_t *w)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i] == w) {
            l->items[i] = l->items[--l->count];
            return true;
        }
    }
    return false;
}

bool wk_list_remove(wk_worker_list *l, worker_t *w)
{
    bool found = list_take(l, w);
    if (found)
        worker_unref(w);
    return found;
}

size_t wk_list_copy(wk_worker_list *l, worker_t ***out)
{
    *out = NULL;
    if (l->count == 0)
        return 0;
    worker_t **copy = malloc(l->count * sizeof *copy);
    if (!copy)
        return 0;
    for (size_t i = 0; i < l->count; i++)
        copy[i] = worker_ref(l->items[i]);
    *out = copy;
    return l->count;
}

void wk_list_release(worker_t **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_unref(items[i]);
    free(items);
}

/* ---- watchers ---- */

static wk_watch *watch_find(worker_t *target, worker_t *watcher, wk_watch_kind kind)
{
    for (size_t i = 0; i < target->watchers.count; i++) {
        wk_watch *x = &target->watchers.items[i];
        if (x->watcher == watcher && x->kind == kind)
            return x;
    }
    return NULL;
}

/* Room for one more id in target->told (caller holds target->lock). */
static bool told_room(worker_t *target, size_t count)
{
    uint64_t *room = wk_array_room(target->told, &target->told_cap, count, sizeof *room, 4);
    if (room)
        target->told = room;
    return room != NULL;
}

static bool told_has(const worker_t *target, const worker_t *watcher)
{
    for (size_t i = 0; i < target->told_count; i++)
        if (target->told[i] == watcher->id)
            return true;
    return false;
}

static void watch_spares_release(wk_watch *x)
{
    for (int i = 0; i < WK_WATCH_SPARES; i++)
        wk_spare_release(&x->spare[i]);
}

int wk_watch_add(worker_t *target, worker_t *watcher, wk_watch_kind kind)
{
    wk_watch_list *l = &target->watchers;
    if (watch_find(target, watcher, kind))
        return WORKER_OK;
    wk_watch *grown = wk_array_room(l->items, &l->cap, l->count, sizeof *grown, 4);
    if (!grown)
        return WORKER_ENOMEM;
    l->items = grown;
    /* A monitor is recorded in `told` at the end: room for every watcher. */
    if (kind == WK_WATCH_MONITOR && !told_room(target, l->count))
        return WORKER_ENOMEM;
    wk_watch x = { .watcher = watcher, .kind = kind };
    int spares = kind == WK_WATCH_PARENT ? WK_WATCH_SPARES : 1;
    for (int i = 0; i < spares; i++) {
        if (!wk_spare_take(&x.spare[i])) {
            watch_spares_release(&x);
            return WORKER_ENOMEM;
        }
    }
    worker_ref(watcher);
    l->items[l->count++] = x;
    return WORKER_OK;
}

bool wk_watch_remove(worker_t *target, worker_t *watcher, wk_watch_kind kind)
{
    wk_watch *x = watch_find(target, watcher, kind);
    if (!x)
        return false;
    watch_spares_release(x);
    *x = target->watchers.items[--target->watchers.count];
    worker_unref(watcher);
    return true;
}

void wk_watch_list_free(wk_watch_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        watch_spares_release(&l->items[i]);
        worker_unref(l->items[i].watcher);
    }
    free(l->items);
    *l = (wk_watch_list) { 0 };
}

void wk_watch_notify(
    worker_t *w, worker_t *watcher, wk_watch_kind kind, wk_thread *t, wk_spare *spares)
{
    worker_down_t down = { .worker = w, .err = w->result_err, .ret = w->result_ret };
    switch (kind) {
    case WK_WATCH_PARENT: {
        int err = down.err;
        const wk_atom *how = err == WORKER_OK ? wk_atoms.child_done
            : err == WORKER_EXIT              ? wk_atoms.child_stop
                                              : wk_atoms.child_error;
        void *data = err == WORKER_OK ? down.ret
            : err == WORKER_EXIT      ? NULL
                                      : (void *)(intptr_t)err;
        wk_send_spared(watcher, WK_EV_LINK, how, data, NULL, 0, w, t,
            spares ? &spares[WK_SPARE_HOW] : NULL);
        wk_send_spared(watcher, WK_EV_LINK, wk_atoms.child_end, NULL, &down, sizeof down, w, t,
            spares ? &spares[WK_SPARE_END] : NULL);
        break;
    }
    case WK_WATCH_WAITER: /* the end of this run, for a waiter that reads it after a restart */
        wk_send_spared(watcher, WK_EV_LIBRARY, wk_atoms.wait_pending_done, NULL, &down,
            sizeof down, w, t, spares);
        break;
    case WK_WATCH_MONITOR:
        wk_send_spared(watcher, WK_EV_LIBRARY, wk_atoms.worker_down, NULL, &down, sizeof down, w,
            t, spares);
        break;
    }
}

/* ---- parent and children ---- */

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
    bool found = list_take(&p->children, child);
    pthread_mutex_unlock(&p->lock);
    if (found)
        worker_unref(child);
}

/* Wait condition of a stop round: a CHILD_THREAD_END takes its sender out
 * of the awaited ids; true when none is left. Owner thread of w. */
static bool child_ended(const worker_event_t *e, void *userdata)
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

void wk_tree_stop_children(worker_t *w, wk_thread *t)
{
    /* A root worker stopped again while it waits for its children: that
     * round goes on waiting; this one only stops the children (again). */
    bool await = !w->stopping;
    uint64_t round = ++w->stop_rounds;
    pthread_mutex_lock(&w->lock);
    if (await) {
        w->awaited_count = 0;
        for (size_t i = 0; i < w->children.count; i++)
            if (!worker_is_daemon(w->children.items[i]))
                w->awaited[w->awaited_count++] = w->children.items[i]->id;
    }
    bool waiting = w->awaited_count > 0;
    pthread_mutex_unlock(&w->lock);
    w->stopping |= await;
    bool all_told = send_stops(w, t, round);
    while (!all_told || (await && waiting)) {
        wk_frame f
            = { .kind = WK_WAIT_COND, .cond = child_ended, .userdata = w, .ignore_exit = true };
        int rc = wk_loop_wait(w, t, &f, all_told ? WK_NO_DEADLINE : wk_now_ns() + STOP_RETRY_NS);
        waiting = waiting && rc != WORKER_OK;
        if (!all_told)
            all_told = send_stops(w, t, round);
    }
    if (await)
        w->stopping = false;
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
    /* The parent first, then waiters and monitors. */
    for (int kind = WK_WATCH_PARENT; kind <= WK_WATCH_MONITOR; kind++)
        for (size_t i = 0; i < watchers.count; i++)
            if ((int)watchers.items[i].kind == kind)
                wk_watch_notify(w, watchers.items[i].watcher, (wk_watch_kind)kind, t,
                    watchers.items[i].spare);
    wk_watch_list_free(&watchers);
    finish_run(w);
}

/* ---- waiting for a worker's end ---- */

int worker_wait_thread(worker_t *w, int *err, void **ret)
{
    return wk_wait_thread_until(w, err, ret, WK_NO_DEADLINE);
}

int wk_wait_thread_until(worker_t *w, int *err, void **ret, uint64_t deadline_ns)
{
    if (!w || w->is_root)
        return WORKER_EINVAL;
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    if (wk_on_stack(t, w))
        return WORKER_EDEADLK;
    pthread_mutex_lock(&w->lock);
    wk_state s = wk_worker_state(w);
    bool must_wait = s == WK_STARTING || s == WK_RUNNING || s == WK_ENDING;
    int rc = must_wait ? wk_watch_add(w, me, WK_WATCH_WAITER) : WORKER_OK;
    uint64_t run = w->runs; /* the run this call waits for */
    pthread_mutex_unlock(&w->lock);
    if (rc != WORKER_OK)
        return rc;
    if (must_wait) /* as in the original: the target hears who waits for it */
        wk_send_library(w, wk_atoms.wait_pending, NULL, NULL, 0, me, t);
    wk_frame until_done = { .kind = WK_WAIT_EVENT,
        .atom = wk_atoms.wait_pending_done,
        .sender_id = w->id,
        .trace_kind = WK_TRW_THREAD,
        .trace_what = (uint32_t)w->id };
    if (must_wait)
        rc = wk_loop_wait(me, t, &until_done, deadline_ns);
    /* The notice tells how that run ended; the worker may have been
     * started again since, so its result fields may be the next run's. */
    const worker_event_t *notice = rc == WORKER_OK ? until_done.matched : NULL;
    if (notice
        && (notice->kind != WK_EV_LIBRARY || wk_event_copied(notice) != sizeof(worker_down_t)))
        notice = NULL; /* not the library's notice */
    pthread_mutex_lock(&w->lock);
    /* The notice comes just before that run's very end: wait for it (a
     * restart waits for it too, so a later run means it is over). */
    while (rc == WORKER_OK && w->runs == run && !w->finished)
        pthread_cond_wait(&w->ended, &w->lock);
    if (rc != WORKER_OK)
        wk_watch_remove(w, me, WK_WATCH_WAITER);
    const worker_down_t *down = notice ? notice->data : NULL;
    if (err)
        *err = down ? down->err : w->result_err;
    if (ret)
        *ret = down ? down->ret : w->result_ret;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int worker_monitor(worker_t *target)
{
    wk_thread *t = target ? wk_thread_get() : NULL;
    worker_t *me = t ? wk_current(t) : NULL;
    if (!target || target == me || target->is_root)
        return target && !me ? WORKER_ENOMEM : WORKER_EINVAL;
    /* For a target that has ended: its DOWN, sent at once, cannot fail for
     * memory once `told` records it. */
    wk_spare spare = { 0 };
    bool spared = wk_spare_take(&spare);
    pthread_mutex_lock(&target->lock);
    wk_state s = wk_worker_state(target);
    bool ended = s == WK_NEW || s == WK_ENDED;
    int rc = ended ? WORKER_OK : wk_watch_add(target, me, WK_WATCH_MONITOR);
    /* Told of this end already (by this call before, or by a monitor): no
     * second DOWN. */
    bool tell = ended && !told_has(target, me);
    if (tell && (!spared || !told_room(target, target->told_count))) {
        tell = false;
        rc = WORKER_ENOMEM;
    }
    if (tell)
        target->told[target->told_count++] = me->id;
    pthread_mutex_unlock(&target->lock);
    if (tell)
        wk_watch_notify(target, me, WK_WATCH_MONITOR, t, &spare);
    wk_spare_release(&spare);
    return rc;
}

void wk_tree_tell_started(worker_t *w, wk_thread *t)
{
    wk_spare spare = { 0 };
    pthread_mutex_lock(&w->lock);
    wk_watch *x = watch_find(w, w->parent, WK_WATCH_PARENT);
    if (x) {
        spare = x->spare[WK_SPARE_START];
        x->spare[WK_SPARE_START] = (wk_spare) { 0 };
    }
    pthread_mutex_unlock(&w->lock);
    wk_send_spared(w->parent, WK_EV_LIBRARY, wk_atoms.child_start, NULL, NULL, 0, w, t, &spare);
    wk_spare_release(&spare);
}

int worker_demonitor(worker_t *target)
{
    wk_thread *t = target ? wk_thread_get() : NULL;
    worker_t *me = t ? wk_current(t) : NULL;
    if (!target || !me)
        return target ? WORKER_ENOMEM : WORKER_EINVAL;
    pthread_mutex_lock(&target->lock);
    bool found = wk_watch_remove(target, me, WK_WATCH_MONITOR);
    pthread_mutex_unlock(&target->lock);
    return found ? WORKER_OK : WORKER_EINVAL;
}
