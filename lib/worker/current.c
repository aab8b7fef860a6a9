/* The calling thread's worker: the stack of workers on a thread, root
 * workers for threads the library did not start, and their end.
 *
 * Invariants:
 * - A thread's stack (wk_thread.current, linked through worker.below) is
 *   only touched by that thread.
 * - A root worker is made on a thread's first use and stays at the bottom
 *   of its stack. The main thread's root lives as long as the process; a
 *   plain pthread's root ends in the thread-exit hook: it closes and drains
 *   its mailbox, stops its children and wakes its waiters like any worker.
 *   Its fd (worker_fd, embed.c) is closed after its mailbox closed for good.
 * - `main_top` is the top of the main thread's stack (its root worker, or a
 *   worker that worker_start_overlay runs there): only the main thread
 *   writes it, each time its stack changes (wk_stack_changed); any thread
 *   reads it (worker_is_main) and only compares it. The worker it names is
 *   running on the main thread, so its run holds a reference to it.
 */
#include <stdio.h>

#include "wk_control.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_init.h"
#include "wk_list.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_trace.h"
#include "wk_tree.h"

static _Atomic(const worker_t *) main_top;
/* The main thread's root worker once made (it lives as long as the
 * process): the target of worker_signal(signo, NULL, name). */
static _Atomic(worker_t *) main_root;

worker_t *wk_main_root(void)
{
    return atomic_load_explicit(&main_root, memory_order_acquire);
}

void wk_stack_changed(wk_thread *t)
{
    if (wk_on_main_thread())
        atomic_store_explicit(&main_top, t->current, memory_order_release);
}

/* The thread's root worker ends like any worker: it closes and drains its
 * mailbox, stops its children and wakes its waiters. */
static void end_root(wk_thread *t)
{
    worker_t *root = t->root;
    if (!root)
        return;
    t->current = root; /* overlays have all returned by now */
    worker_ref(root); /* the run's reference, dropped by the end sequence */
    wk_worker_finish(root, t, WORKER_OK, NULL);
    wk_mailbox_detach_fd(&root->mb); /* closed: no producer can signal it */
    t->root = NULL;
    worker_unref(root);
}

static worker_t *make_root(wk_thread *t)
{
    if (wk_init() != WORKER_OK)
        return NULL;
    bool is_main = wk_on_main_thread();
    char name[32];
    snprintf(name, sizeof name, is_main ? "main" : "thread-%ld", wk_gettid());
    worker_t *root = wk_worker_alloc(name, 0, false);
    if (!root)
        return NULL;
    root->is_root = true;
    root->is_main = is_main;
    wk_worker_set_state(root, WK_RUNNING);
    wk_worker_run_began(root);
    wk_mailbox_open(&root->mb);
    t->root = root;
    t->current = root;
    if (is_main) {
        wk_stack_changed(t);
        atomic_store_explicit(&main_root, root, memory_order_release);
    }
    if (wk_tracing())
        wk_worker_trace_created(root);
    return root;
}

void wk_current_thread_exit(wk_thread *t)
{
    end_root(t);
    wk_drop_last_returned(t);
}

worker_t *wk_current(wk_thread *t)
{
    return t->current ? t->current : make_root(t);
}

bool wk_on_stack(wk_thread *t, const worker_t *w)
{
    for (worker_t *x = t->current; x; x = x->below)
        if (x == w)
            return true;
    return false;
}

worker_t *worker_current(void)
{
    wk_thread *t = wk_thread_get();
    return t ? wk_current(t) : NULL;
}

bool worker_is_main(const worker_t *w)
{
    if (!w)
        w = worker_current();
    return w && w == atomic_load_explicit(&main_top, memory_order_acquire);
}

int worker_exit(void)
{
    wk_thread *t = wk_thread_get();
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    if (me->is_root) { /* sticky too; its children are told, not awaited */
        me->exiting = true;
        wk_tree_tell_children_stop(me, t);
    } else {
        wk_control_stop(me, t);
    }
    return WORKER_EXIT;
}

int worker_bubble(const char *name, void *data)
{
    worker_t *me = worker_current();
    if (!me)
        return WORKER_ENOMEM;
    if (!me->parent)
        return name && *name ? WORKER_EREJECTED : WORKER_EINVAL;
    worker_fire_opts opts = { .bubble = true, .target = me };
    return worker_fire_ex(me->parent, name, data, &opts);
}

int worker_broadcast(const char *name, void *data)
{
    if (!name || !*name)
        return WORKER_EINVAL;
    worker_t *me = worker_current();
    if (!me)
        return WORKER_ENOMEM;
    pthread_mutex_lock(&me->lock);
    worker_t **kids;
    size_t n = wk_list_copy(&me->children, &kids);
    bool copied = n == me->children.count;
    pthread_mutex_unlock(&me->lock);
    if (!copied)
        return WORKER_ENOMEM; /* nothing was sent */
    worker_fire_opts opts = { .broadcast = true, .target = me };
    int rc = WORKER_OK;
    for (size_t i = 0; i < n; i++) {
        int one = worker_fire_ex(kids[i], name, data, &opts);
        if (one != WORKER_OK && one != WORKER_EREJECTED)
            rc = one;
    }
    wk_list_release(kids, n);
    return rc;
}
