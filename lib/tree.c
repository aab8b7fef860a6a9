/* The parent/child tree and the waiters of a worker's end.
 *
 * Invariants:
 * - A child is in its parent's `children` from its start until its end
 *   sequence reports to the parent (both under the parent's lock), so a
 *   parent that ends sees every child that is starting or running.
 * - A parent in WK_ENDING takes no new children: starting one fails with
 *   WORKER_EREJECTED. So the parent's end sequence stops every child.
 * - `waiters` (worker_wait_thread callers) are added under the worker's
 *   lock while it is not ENDED; the end sequence publishes ENDED and takes
 *   the list under that same lock, so no waiter is missed or woken twice.
 * - Lock order: child, then parent (see wk_worker.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "wk_event.h"
#include "wk_os.h"
#include "wk_worker.h"

bool wk_list_add(wk_worker_list *l, worker_t *w)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        worker_t **grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return false;
        l->items = grown;
        l->cap = cap;
    }
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

int wk_tree_link(worker_t *child)
{
    worker_t *p = child->parent;
    if (!p)
        return WORKER_OK;
    pthread_mutex_lock(&p->lock);
    int rc = WORKER_OK;
    if (wk_worker_state(p) == WK_ENDING)
        rc = WORKER_EREJECTED;
    else if (!wk_list_add(&p->children, child))
        rc = WORKER_ENOMEM;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static void unlink_from_parent(worker_t *child)
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

void wk_tree_unlink(worker_t *child)
{
    unlink_from_parent(child);
}

void wk_tree_stop_children(worker_t *w, bool join_non_daemon)
{
    pthread_mutex_lock(&w->lock);
    worker_t **kids;
    size_t n = wk_list_copy(&w->children, &kids);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++)
        worker_stop(kids[i]);
    for (size_t i = 0; join_non_daemon && i < n; i++)
        if (!worker_is_daemon(kids[i]))
            worker_join(kids[i]);
    wk_list_release(kids, n);
}

void wk_tree_notify_parent(worker_t *w, int err, void *ret)
{
    worker_t *p = w->parent;
    if (!p)
        return;
    unlink_from_parent(w);
    wk_thread *t = wk_thread_peek();
    const wk_atom *how = err == WORKER_OK     ? wk_atoms.child_done
                         : err == WORKER_EXIT ? wk_atoms.child_stop
                                              : wk_atoms.child_error;
    void *data = err == WORKER_OK ? ret : err == WORKER_EXIT ? NULL : (void *)(intptr_t)err;
    wk_send_library(p, how, data, NULL, 0, w, t);
    worker_down_t down = {.worker = w, .err = err, .ret = ret};
    wk_send_library(p, wk_atoms.child_end, NULL, &down, sizeof down, w, t);
}

void wk_tree_release_waiters(worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    wk_worker_set_state(w, WK_ENDED);
    wk_worker_list waiters = w->waiters;
    w->waiters = (wk_worker_list){0};
    pthread_cond_broadcast(&w->ended);
    pthread_mutex_unlock(&w->lock);
    wk_thread *t = wk_thread_peek();
    for (size_t i = 0; i < waiters.count; i++)
        wk_send_library(waiters.items[i], wk_atoms.wait_pending_done, NULL, NULL, 0, w, t);
    wk_list_release(waiters.items, waiters.count);
}

int worker_wait_thread(worker_t *w, int *err, void **ret)
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
    if (must_wait && !wk_list_add(&w->waiters, me)) {
        pthread_mutex_unlock(&w->lock);
        return WORKER_ENOMEM;
    }
    pthread_mutex_unlock(&w->lock);
    int rc = WORKER_OK;
    if (must_wait) {
        wk_frame until_done = {.kind = WK_WAIT_EVENT,
                               .atom = wk_atoms.wait_pending_done,
                               .sender_id = w->id};
        rc = wk_loop_wait(me, t, &until_done, WK_NO_DEADLINE);
    }
    pthread_mutex_lock(&w->lock);
    if (rc != WORKER_OK)
        wk_list_remove(&w->waiters, me);
    if (err)
        *err = w->result_err;
    if (ret)
        *ret = w->result_ret;
    pthread_mutex_unlock(&w->lock);
    return rc;
}
