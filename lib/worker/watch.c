/* Watchers: who hears of a worker's end, and how. wait_thread, monitors
 * and the parent link are one mechanism: a worker's `watchers` are told by
 * message when it ends.
 *
 *   watcher kind   message(s) sent when the worker ends
 *   parent         CHILD_THREAD_STOP / _ERROR / _DONE, then CHILD_THREAD_END
 *   waiter         WAIT_THREAD_PENDING_DONE          (worker_wait_thread)
 *   monitor        WORKER_DOWN                       (worker_monitor)
 *   link           LINKED_EXIT or STOP_THREAD        (worker_link, link.c)
 *
 * Invariants:
 * - `watchers` are added under the target's lock while it is not ENDED; the
 *   end sequence (tree.c) publishes ENDED and takes the list under that
 *   same lock, so no watcher is missed or told twice. A watcher added when
 *   the target has already ended is told at once.
 * - Telling needs no memory: each watcher is added with a spare (an event
 *   object and a queue node) for each notice it will be sent (a parent:
 *   CHILD_THREAD_START, STOP/ERROR/DONE, END); adding fails with
 *   WORKER_ENOMEM when they cannot be taken. A notice uses its spare only
 *   when it cannot allocate at the time; spares left over go back to the
 *   pools when the watcher is told, removed, or the worker freed.
 * - WORKER_DOWN goes once to a worker per end of the target: under the
 *   lock that publishes ENDED, the ids of the monitors are kept in `told`
 *   (room reserved when each monitor was added), and a monitor of an
 *   ended (or never started) target is told at once only if its id is not
 *   there yet (then it is added). A restart empties `told`.
 * - Lock order: child, then parent (see wk_worker.h).
 */
#include "wk_sched.h"
#include "wk_watch.h"

#include <stdint.h>
#include <stdlib.h>

#include "wk_array.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_init.h"
#include "wk_link.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_tree.h"

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
        wk_send_spared(
            watcher, WK_EV_LINK, how, data, NULL, 0, w, t, spares ? &spares[WK_SPARE_HOW] : NULL);
        wk_send_spared(watcher, WK_EV_LINK, wk_atoms.child_end, NULL, &down, sizeof down, w, t,
            spares ? &spares[WK_SPARE_END] : NULL);
        break;
    }
    case WK_WATCH_WAITER: /* the end of this run, for a waiter that reads it after a restart */
        wk_send_spared(watcher, WK_EV_LIBRARY, wk_atoms.wait_pending_done, NULL, &down, sizeof down,
            w, t, spares);
        break;
    case WK_WATCH_MONITOR:
        wk_send_spared(
            watcher, WK_EV_LIBRARY, wk_atoms.worker_down, NULL, &down, sizeof down, w, t, spares);
        break;
    case WK_WATCH_LINK:
        wk_link_tell(w, watcher, t, spares);
        break;
    }
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
    if (wk_in_pooled(t))
        return WORKER_EWOULDBLOCK;
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

void wk_watch_tell_started(worker_t *w, wk_thread *t)
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
