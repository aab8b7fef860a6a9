/* A worker's life: new, start, the task, the end sequence, refcounts.
 * Field ownership and lock order are stated in wk_worker.h. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_current.h"
#include "wk_epoch.h"
#include "wk_event.h"
#include "wk_fire.h"
#include "wk_fork.h"
#include "wk_hold.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_pool.h"
#include "wk_probe.h"
#include "wk_report.h"
#include "wk_sched.h"
#include "wk_sigmask.h"
#include "wk_thread_attr.h"
#include "wk_timers.h"
#include "wk_tree.h"
#include "wk_watch.h"

/* Global: ids must be unique across the process (listener target filters
 * compare them; default names use them). */
static _Atomic uint64_t next_worker_id = 1;

/* "worker-<id>", without printf's machinery (a million pooled workers
 * are named a million times). NULL when memory runs out. */
static char *default_name(uint64_t id)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    static const char prefix[] = "worker-";
    char *name = malloc(sizeof prefix + (size_t)n);
    if (!name)
        return NULL;
    memcpy(name, prefix, sizeof prefix - 1);
    for (int i = 0; i < n; i++)
        name[sizeof prefix - 1 + i] = digits[n - 1 - i];
    name[sizeof prefix - 1 + n] = '\0';
    return name;
}

worker_t *wk_worker_alloc(const char *name, size_t mailbox_limit, bool drop_oldest)
{
    worker_t *w = wk_pool_alloc(WK_POOL_WORKER);
    if (!w)
        return NULL;
    memset(w, 0, sizeof *w);
    w->id = atomic_fetch_add(&next_worker_id, 1);
    w->name = name ? strdup(name) : default_name(w->id);
    if (!w->name || wk_mailbox_init(&w->mb, mailbox_limit, drop_oldest) != WORKER_OK) {
        free(w->name);
        wk_pool_free(WK_POOL_WORKER, w);
        return NULL;
    }
    atomic_init(&w->refs, 1);
    atomic_init(&w->state, WK_NEW);
    wk_worker_claim(w);
    w->finished = true;
    wk_listeners_init(&w->listeners);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ended, NULL);
    return w;
}

void wk_worker_set_state(worker_t *w, wk_state s)
{
    atomic_store_explicit(&w->state, s, memory_order_release);
}

static worker_t *default_parent(void)
{
    wk_thread *t = wk_thread_peek();
    if (t && t->current && !t->current->is_root)
        return t->current;
    return NULL;
}

worker_t *worker_new(worker_task_fn task, void *arg, const worker_opts *opts)
{
    static const worker_opts defaults;
    if (!opts)
        opts = &defaults;
    if (opts->daemon < WORKER_DAEMON_INHERIT || opts->daemon > WORKER_DAEMON_NO)
        return NULL;
    if (opts->parent && opts->no_parent)
        return NULL;
    if (!wk_thread_opts_valid(opts->stack_size, opts->cpu))
        return NULL;
    if (opts->full_policy != WORKER_FULL_REJECT && opts->full_policy != WORKER_FULL_DROP_OLDEST)
        return NULL;
    if (opts->pooled && (task || opts->stack_size || opts->cpu))
        return NULL; /* no task and no thread of its own */
    if (wk_init() != WORKER_OK)
        return NULL;
    worker_t *w = wk_worker_alloc(
        opts->name, opts->mailbox_limit, opts->full_policy == WORKER_FULL_DROP_OLDEST);
    if (!w)
        return NULL;
    w->task = task;
    w->arg = arg;
    w->daemon_mode = opts->daemon;
    w->quiet = opts->quiet;
    w->trap_links = opts->trap_links;
    w->pooled = opts->pooled;
    w->copy_only = opts->copy_only;
    if (opts->forward)
        wk_worker_make_forwarding(w, opts->forward, opts->forward_arg);
    w->stack_size = opts->stack_size;
    w->cpu = opts->cpu;
    if (!opts->no_parent)
        w->parent = worker_ref(opts->parent ? opts->parent : default_parent());
    if (wk_tracing())
        wk_worker_trace_created(w);
    return w;
}

void wk_worker_trace_created(worker_t *w)
{
    uint64_t session = wk_trace_session();
    if (atomic_exchange(&w->traced_in, session) == session)
        return; /* this trace has it already */
    unsigned flags = (worker_is_daemon(w) ? WK_TRF_DAEMON : 0) | (w->is_root ? WK_TRF_ROOT : 0)
        | (w->is_main ? WK_TRF_MAIN : 0);
    wk_probe_worker_created(
        (uint32_t)w->id, flags, w->parent ? (uint32_t)w->parent->id : 0, w->name);
}

/* Move a NEW or ENDED worker to STARTING with an open mailbox. A worker
 * whose mailbox is held for its supervisor is started only by it
 * (`restart`). */
static int prepare_start(worker_t *w, bool restart)
{
    pthread_mutex_lock(&w->lock);
    while (wk_worker_state(w) == WK_ENDED && !w->finished)
        pthread_cond_wait(&w->ended, &w->lock); /* the last run is telling its watchers */
    wk_state s = wk_worker_state(w);
    int rc
        = (s == WK_NEW || s == WK_ENDED) && (!w->held || restart) ? wk_tree_link(w) : WORKER_ESTATE;
    if (rc == WORKER_OK) {
        w->held = false;
        w->exiting = w->paused = w->ending = false;
        w->frames = NULL;
        w->result_err = 0;
        w->result_ret = NULL;
        w->finished = false;
        w->runs++;
        w->told_count = 0; /* a new end to tell of */
        wk_worker_claim(w); /* also a parent's worker restarted in a fork() child */
        wk_worker_set_state(w, WK_STARTING);
        wk_mailbox_open(&w->mb);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void run_refused(worker_t *w, wk_thread *t);

typedef struct thread_start {
    worker_t *worker;
    wk_thread *context; /* made by worker_start, adopted by the new thread */
} thread_start;

static void *thread_main(void *arg)
{
    thread_start start = *(thread_start *)arg;
    free(arg);
    /* Without the exit slot the context is still ended below. */
    (void)wk_thread_adopt(start.context);
    wk_set_thread_name(start.worker->name);
    wk_worker_run(start.worker, start.context); /* drops the run's reference at its end */
    wk_thread_leave(start.context);
    return NULL;
}

static int start_checks(worker_t *w, wk_thread **t, bool restart)
{
    if (!w || w->is_root)
        return WORKER_EINVAL;
    if (wk_init() != WORKER_OK || !(*t = wk_thread_get()))
        return WORKER_ENOMEM;
    return prepare_start(w, restart);
}

static int start(worker_t *w, bool restart);

/* A pooled worker's run begins on the calling thread and goes on in
 * slices on the scheduler's threads (pooled.c). */
static int start_pooled(worker_t *w, bool restart)
{
    int rc = wk_sched_start(); /* before the mailbox opens: nothing to undo */
    wk_thread *t = NULL;
    if (rc == WORKER_OK)
        rc = start_checks(w, &t, restart);
    if (rc != WORKER_OK)
        return rc;
    worker_ref(w); /* the run's reference, dropped at its end */
    wk_pooled_begin(w, t);
    return WORKER_OK;
}

int worker_start(worker_t *w)
{
    return start(w, false);
}

int wk_worker_restart(worker_t *w)
{
    return start(w, true);
}

static int start(worker_t *w, bool restart)
{
    if (!w || w->is_root)
        return WORKER_EINVAL;
    if (w->pooled)
        return start_pooled(w, restart);
    /* Before start_checks opens the mailbox: a failure after that would
     * have to drop the events accepted meanwhile. */
    pthread_attr_t attr;
    int rc = wk_thread_attr_make(&attr, w->stack_size, w->cpu);
    if (rc != WORKER_OK)
        return rc;
    thread_start *start = malloc(sizeof *start);
    wk_thread *context = start ? wk_thread_prepare() : NULL;
    wk_thread *t = NULL;
    rc = context ? start_checks(w, &t, restart) : WORKER_ENOMEM;
    if (rc != WORKER_OK) {
        pthread_attr_destroy(&attr);
        free(start);
        if (context)
            wk_thread_discard(context);
        return rc;
    }
    *start = (thread_start) { worker_ref(w), context };
    pthread_t thread;
    int err = wk_thread_create(&thread, &attr, thread_main, start, false);
    pthread_attr_destroy(&attr);
    if (!err)
        return WORKER_OK;
    free(start);
    wk_thread_discard(context);
    run_refused(w, t); /* drops the run's reference at its end */
    return WORKER_EAGAIN;
}

worker_t *worker_spawn(worker_task_fn task, void *arg, const worker_opts *opts)
{
    worker_t *w = worker_new(task, arg, opts);
    if (w && worker_start(w) != WORKER_OK) {
        worker_unref(w);
        return NULL;
    }
    return w;
}

int worker_start_overlay(worker_t *w)
{
    if (w && w->pooled)
        return WORKER_EINVAL; /* it runs on the scheduler's threads only */
    wk_thread *t = NULL;
    int rc = start_checks(w, &t, false);
    if (rc != WORKER_OK)
        return rc;
    worker_ref(w); /* the run's reference, dropped at its end */
    wk_worker_run(w, t);
    return WORKER_OK;
}

static int run_task(worker_t *w, void **ret)
{
    if (w->task)
        return w->task(w->arg, ret);
    worker_wait_forever();
    return WORKER_EXIT;
}

void wk_worker_run_begins(worker_t *w, wk_thread *t, long tid)
{
    if (wk_tracing()) {
        wk_worker_trace_created(w); /* the trace may have started after worker_new */
        unsigned flags = (t->current && !w->pooled ? WK_TRF_OVERLAY : 0)
            | (w->pooled ? WK_TRF_POOLED : 0);
        wk_probe_worker_started((uint32_t)w->id, flags, tid);
    }
    wk_worker_run_began(w);
    pthread_mutex_lock(&w->lock);
    wk_worker_set_state(w, WK_RUNNING);
    pthread_mutex_unlock(&w->lock);
    if (w->parent)
        wk_watch_tell_started(w, t);
}

/* A run begins on t: w on top of t's stack, RUNNING, its parent told. */
static void enter_run(worker_t *w, wk_thread *t)
{
    w->below = t->current;
    t->current = w;
    wk_stack_changed(t);
    wk_worker_run_begins(w, t, wk_gettid());
}

void wk_worker_run(worker_t *w, wk_thread *t)
{
    enter_run(w, t);
    void *ret = NULL;
    int err = run_task(w, &ret);
    wk_worker_finish(w, t, err, ret);
}

/* The system refused a thread after the mailbox had opened. The run still
 * happens, on the starting thread (as an overlay would), as a task that
 * failed at once with WORKER_EAGAIN: its end sequence delivers the events
 * accepted meanwhile and tells the parent, waiters and monitors, like any
 * end. A start is not a wait: the data of the caller's last wait stays
 * valid. (Memory for the thread is taken before the mailbox opens, so
 * running out of it never gets here.) */
static void run_refused(worker_t *w, wk_thread *t)
{
    worker_event_t *kept = t->last_returned;
    t->last_returned = NULL;
    enter_run(w, t);
    wk_worker_finish(w, t, WORKER_EAGAIN, NULL);
    wk_drop_last_returned(t);
    t->last_returned = kept;
}

void wk_worker_finish(worker_t *w, wk_thread *t, int err, void *ret)
{
    wk_worker_end_begin(w, t, err, ret);
    /* 2. Stop the children; wait for the non-daemon ones' CHILD_THREAD_END. */
    wk_tree_stop_children(w, t);
    wk_worker_end_complete(w, t);
}

void wk_worker_end_begin(worker_t *w, wk_thread *t, int err, void *ret)
{
    if (err != WORKER_OK && err != WORKER_EXIT && !w->quiet)
        wk_report(w, "failed", err);
    wk_drop_last_returned(t); /* the task is over: so is its last wait's data */
    w->ending = true;
    w->exiting = true;
    w->paused = false;
    pthread_mutex_lock(&w->lock);
    wk_worker_set_state(w, WK_ENDING); /* from here no new child can start */
    w->result_err = err;
    w->result_ret = ret;
    w->end_children = w->children.count > 0;
    bool hold = wk_hold_decide(w, err);
    pthread_mutex_unlock(&w->lock);

    /* 1. Refuse user events; deliver every one accepted before. Only
     * children send supervision messages, so without children the mailbox
     * closes for good at once (one grace period instead of two). A held
     * mailbox (hold.c) keeps admitting user events: this run delivers
     * those accepted before its end, the next run those after. */
    wk_mailbox_close(
        &w->mb, t, hold ? WK_MB_HELD : w->end_children ? WK_MB_ENDING : WK_MB_CLOSED);
    wk_timers_drop_all(w);
    if (hold)
        wk_hold_drain(w, t);
    else
        wk_loop_drain(w, t);
    wk_listeners_remove_transient(&w->listeners);
}

void wk_worker_end_complete(worker_t *w, wk_thread *t)
{
    int err = w->result_err; /* owner: only this run wrote it */
    /* 3. Refuse everything; deliver the last supervision messages. */
    if (w->end_children && !w->held) {
        wk_mailbox_close(&w->mb, t, WK_MB_CLOSED);
        wk_loop_drain(w, t);
    }
    wk_tree_unlink(w);
    wk_worker_run_ended(w);
    /* Leave the thread's stack before ENDED is published: from then on a
     * restart may make this worker run on another thread. */
    t->current = w->below;
    w->below = NULL;
    wk_stack_changed(t);
    wk_sender_credit_return(t);
    wk_probe_worker_ended((uint32_t)w->id, err);
    if (w->is_future)
        wk_probe_future_settled((uint32_t)w->id, w->id, err);
    /* 4. ENDED; tell the parent, then waiters, and monitors. */
    wk_tree_report_end(w, t);
}

static void wait_finished(worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    while (!w->finished)
        pthread_cond_wait(&w->ended, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

int worker_join(worker_t *w)
{
    if (!w || w->is_root)
        return WORKER_EINVAL;
    wk_thread *t = wk_thread_peek();
    if (t && wk_on_stack(t, w))
        return WORKER_EDEADLK;
    if (wk_in_pooled(t))
        return WORKER_EWOULDBLOCK;
    uint32_t me = t && t->current ? (uint32_t)t->current->id : 0;
    wk_probe_wait_begin(me, WK_TRW_JOIN, UINT64_MAX, (uint32_t)w->id);
    wait_finished(w);
    wk_probe_wait_end(me, WK_TRW_JOIN, WORKER_OK, (uint32_t)w->id);
    return WORKER_OK;
}

bool worker_is_running(const worker_t *w)
{
    return w && wk_mailbox_is_open(&w->mb) && wk_worker_here(w);
}

bool worker_is_daemon(const worker_t *w)
{
    for (; w; w = w->parent) {
        if (w->daemon_mode == WORKER_DAEMON_YES)
            return true;
        if (w->daemon_mode == WORKER_DAEMON_NO)
            return false;
    }
    return false;
}

worker_t *worker_parent(const worker_t *w)
{
    return w ? w->parent : NULL;
}

size_t worker_children_count(const worker_t *w)
{
    if (!w)
        return 0;
    worker_t *mw = (worker_t *)w;
    pthread_mutex_lock(&mw->lock);
    size_t n = mw->children.count;
    pthread_mutex_unlock(&mw->lock);
    return n;
}

const char *worker_name(const worker_t *w)
{
    return w ? w->name : NULL;
}

#define SENDER_CREDIT_BLOCK 256

void wk_sender_credit_return(wk_thread *t)
{
    if (t->credit)
        atomic_fetch_sub_explicit(&t->credit_worker->refs, t->credit, memory_order_release);
    t->credit = 0;
    t->credit_worker = NULL;
}

worker_t *wk_sender_ref(wk_thread *t, worker_t *sender)
{
    if (!t || !sender || sender != t->current)
        return worker_ref(sender);
    if (t->credit_worker != sender || t->credit == 0) {
        wk_sender_credit_return(t);
        atomic_fetch_add_explicit(&sender->refs, SENDER_CREDIT_BLOCK, memory_order_relaxed);
        t->credit_worker = sender;
        t->credit = SENDER_CREDIT_BLOCK;
    }
    t->credit--;
    return sender;
}

worker_t *worker_ref(worker_t *w)
{
    if (w)
        atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
    return w;
}

typedef void (*free_hook_fn)(worker_t *w);
/* Global: set once by the channels, before any worker is on a channel. */
static _Atomic(free_hook_fn) free_hook;

void wk_worker_on_free(void (*hook)(worker_t *w))
{
    atomic_store_explicit(&free_hook, hook, memory_order_release);
}

void wk_worker_free(worker_t *w)
{
    /* A run that dropped its reference under the lock may still be
     * unlocking it: wait for that before the memory goes. */
    pthread_mutex_lock(&w->lock);
    pthread_mutex_unlock(&w->lock);
    /* Only channel arrays point at a worker without holding a reference;
     * leaving them (the free hook) waits out the publishers that may still
     * read it. */
    free_hook_fn hook = atomic_load_explicit(&free_hook, memory_order_acquire);
    if (hook)
        hook(w);
    wk_listeners_destroy(&w->listeners);
    wk_mailbox_destroy(&w->mb);
    free(w->children.items);
    free(w->awaited);
    wk_watch_list_free(&w->watchers);
    wk_spare_release(&w->stop_spare);
    free(w->told);
    free(w->channels);
    free(w->timers.heap);
    if (w->ext_free)
        w->ext_free(w->ext);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->ended);
    worker_t *parent = w->parent;
    free(w->name);
    wk_pool_free(WK_POOL_WORKER, w);
    worker_unref(parent);
}

void worker_unref(worker_t *w)
{
    if (w && atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
        wk_worker_free(w);
}
