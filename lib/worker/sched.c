/* The scheduler of pooled workers (M:N): a few threads, each with a run
 * queue, that run pooled workers one slice (one batch of events) at a time
 * (pooled.c runs the slice).
 *
 * Invariants:
 * - A worker is on at most one run queue, and only while it is claimed:
 *   the thread that took its mailbox's `sleeping` flag back (a producer, a
 *   due timer, the worker's own rest; mailbox_pooled.c) submits it, and it
 *   stays claimed until the slice that runs it rests it again. So a pooled
 *   worker runs on one thread at a time, and its owner-only fields pass
 *   from one scheduler thread to the next through the queue's lock.
 * - A claimed worker is running (it holds its run's reference, which only
 *   its own end sequence, inside a slice, drops), so a queue holds no
 *   reference of its own.
 * - Each queue is a list through `sched_next`, guarded by its own lock;
 *   `length` is written under it and read without it (seq_cst) by threads
 *   that decide to park. Threads pop their own queue first, then steal one
 *   worker from the others, then run due timers, then park.
 * - Parking: a thread adds itself to `sleepers` (seq_cst) under
 *   `park_lock`, looks at every queue and the timers again, and only then
 *   waits. A submit stores the queue's length (seq_cst) before it loads
 *   `sleepers`, and signals under `park_lock`: either the parker sees the
 *   work or the submitter sees the parker, and the signal cannot fall
 *   between the parker's look and its wait. Idle threads use no CPU.
 * - Timers: a worker that rests with a pending timer registers its next
 *   deadline here (a heap under `timer_lock`, holding one reference per
 *   entry). A thread that finds one due claims the worker (if it is idle)
 *   and submits it; the slice runs its due timers. A worker has at most one
 *   entry: `sched_heap_at` (under `timer_lock`) is its place in the heap
 *   plus one (0: none), so a rest with an earlier deadline moves the entry
 *   up, and the worker's end takes it out (wk_sched_forget) and with it
 *   the heap's reference. An entry later than the worker's next deadline
 *   at most runs a slice that finds nothing due, then registers again.
 * - Global state (the reason: the scheduler is the process's, like the
 *   threads it owns): `sched` is set up once under `start_lock` and never
 *   freed; the threads live as long as the process.
 */
#define _GNU_SOURCE
#include "wk_sched.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_array.h"
#include "wk_os.h"
#include "wk_sigmask.h"
#include "wk_tls.h"
#include "wk_worker.h"

typedef struct run_queue {
    _Alignas(64) pthread_mutex_t lock;
    worker_t *head, *tail;
    _Atomic size_t length;
} run_queue;

typedef struct timer_entry {
    uint64_t deadline;
    worker_t *worker; /* holds a reference */
} timer_entry;

typedef struct scheduler {
    int threads;
    run_queue *queues;
    _Atomic unsigned next_queue; /* round robin for submits from outside */
    _Alignas(64) pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    _Atomic int sleepers;
    _Alignas(64) pthread_mutex_t timer_lock;
    timer_entry *heap;
    size_t heap_count, heap_cap;
    _Atomic uint64_t earliest; /* the heap's first deadline, WK_NO_DEADLINE when empty */
} scheduler;

static scheduler *sched;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(scheduler *) started;
/* The index of the calling thread's run queue; -1 on other threads. */
static WK_TLS int my_queue = -1;

enum { SLICES_BETWEEN_TIMER_CHECKS = 64 };

/* ---- run queues ---- */

static void queue_push(run_queue *q, worker_t *w)
{
    w->sched_next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->sched_next = w;
    else
        q->head = w;
    q->tail = w;
    atomic_store(&q->length, atomic_load_explicit(&q->length, memory_order_relaxed) + 1);
    pthread_mutex_unlock(&q->lock);
}

static worker_t *queue_pop(run_queue *q)
{
    if (atomic_load_explicit(&q->length, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    worker_t *w = q->head;
    if (w) {
        q->head = w->sched_next;
        if (!q->head)
            q->tail = NULL;
        atomic_store_explicit(&q->length,
            atomic_load_explicit(&q->length, memory_order_relaxed) - 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->lock);
    return w;
}

static bool any_queued(void)
{
    for (int i = 0; i < sched->threads; i++)
        if (atomic_load(&sched->queues[i].length) > 0)
            return true;
    return false;
}

static worker_t *take_work(int me)
{
    worker_t *w = queue_pop(&sched->queues[me]);
    for (int i = 1; !w && i < sched->threads; i++)
        w = queue_pop(&sched->queues[(me + i) % sched->threads]);
    return w;
}

static void wake_one(void)
{
    pthread_mutex_lock(&sched->park_lock);
    pthread_cond_signal(&sched->park_cond);
    pthread_mutex_unlock(&sched->park_lock);
}

void wk_sched_submit(worker_t *w)
{
    int me = my_queue;
    run_queue *q = me >= 0
        ? &sched->queues[me]
        : &sched->queues[atomic_fetch_add_explicit(&sched->next_queue, 1, memory_order_relaxed)
              % (unsigned)sched->threads];
    queue_push(q, w);
    /* A scheduler thread runs what it submits next unless it has more:
     * then a parked thread may steal. */
    if (atomic_load(&sched->sleepers) > 0 && (me < 0 || atomic_load(&q->length) > 1))
        wake_one();
}

/* ---- timers ---- */

/* Timer lock held: entry i is now `e`; its worker learns where it is. */
static void heap_place(size_t i, timer_entry e)
{
    sched->heap[i] = e;
    e.worker->sched_heap_at = i + 1;
}

static bool heap_less(size_t a, size_t b)
{
    return sched->heap[a].deadline < sched->heap[b].deadline;
}

static void heap_swap(size_t a, size_t b)
{
    timer_entry x = sched->heap[a];
    heap_place(a, sched->heap[b]);
    heap_place(b, x);
}

static void heap_up(size_t i)
{
    for (; i > 0 && heap_less(i, (i - 1) / 2); i = (i - 1) / 2)
        heap_swap(i, (i - 1) / 2);
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sched->heap_count && heap_less(l, m))
            m = l;
        if (r < sched->heap_count && heap_less(r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

/* Take entry i out; returns its worker (whose reference the caller now
 * holds). */
static worker_t *heap_take(size_t i)
{
    worker_t *w = sched->heap[i].worker;
    w->sched_heap_at = 0;
    timer_entry last = sched->heap[--sched->heap_count];
    if (i < sched->heap_count) {
        heap_place(i, last);
        heap_down(i);
        heap_up(i);
    }
    return w;
}

static void publish_earliest(void)
{
    atomic_store(&sched->earliest, sched->heap_count ? sched->heap[0].deadline : WK_NO_DEADLINE);
}

/* Timer lock held: move w's entry to `deadline` when that is earlier;
 * true when the earliest deadline of all changed. */
static bool move_earlier(worker_t *w, uint64_t deadline)
{
    size_t i = w->sched_heap_at - 1;
    if (deadline >= sched->heap[i].deadline)
        return false; /* its entry comes first: that slice registers again */
    sched->heap[i].deadline = deadline;
    heap_up(i);
    return sched->heap[0].worker == w;
}

bool wk_sched_timer(worker_t *w, uint64_t deadline)
{
    bool first;
    pthread_mutex_lock(&sched->timer_lock);
    if (w->sched_heap_at) {
        first = move_earlier(w, deadline);
        publish_earliest();
        pthread_mutex_unlock(&sched->timer_lock);
        worker_unref(w); /* its entry holds one already */
    } else {
        timer_entry *room = wk_array_room(
            sched->heap, &sched->heap_cap, sched->heap_count, sizeof *sched->heap, 64);
        if (!room) {
            pthread_mutex_unlock(&sched->timer_lock);
            return false; /* the caller keeps its reference */
        }
        sched->heap = room;
        heap_place(sched->heap_count++, (timer_entry) { deadline, w });
        heap_up(sched->heap_count - 1);
        first = sched->heap[0].worker == w;
        publish_earliest();
        pthread_mutex_unlock(&sched->timer_lock);
    }
    if (first && atomic_load(&sched->sleepers) > 0)
        wake_one(); /* a parked thread may sleep past it */
    return true;
}

void wk_sched_forget(worker_t *w)
{
    if (!atomic_load_explicit(&started, memory_order_acquire))
        return;
    pthread_mutex_lock(&sched->timer_lock);
    worker_t *gone = w->sched_heap_at ? heap_take(w->sched_heap_at - 1) : NULL;
    publish_earliest();
    pthread_mutex_unlock(&sched->timer_lock);
    worker_unref(gone); /* the run's own reference keeps w */
}

static void timer_fired(worker_t *w)
{
    if (wk_mailbox_pooled_claim(&w->mb))
        wk_sched_submit(w);
    worker_unref(w);
}

/* Submit the workers whose deadline has come; true when there were any. */
static bool run_due_timers(void)
{
    uint64_t now = wk_now_ns();
    if (atomic_load_explicit(&sched->earliest, memory_order_relaxed) > now)
        return false;
    enum { MAX_AT_ONCE = 64 };
    worker_t *due[MAX_AT_ONCE];
    size_t n = 0;
    pthread_mutex_lock(&sched->timer_lock);
    while (n < MAX_AT_ONCE && sched->heap_count && sched->heap[0].deadline <= now)
        due[n++] = heap_take(0);
    publish_earliest();
    pthread_mutex_unlock(&sched->timer_lock);
    for (size_t i = 0; i < n; i++)
        timer_fired(due[i]);
    return n > 0;
}

/* ---- the threads ---- */

static struct timespec to_timespec(uint64_t ns)
{
    return (struct timespec) { .tv_sec = (time_t)(ns / 1000000000u),
        .tv_nsec = (long)(ns % 1000000000u) };
}

static void park(void)
{
    pthread_mutex_lock(&sched->park_lock);
    atomic_fetch_add(&sched->sleepers, 1);
    uint64_t next = atomic_load(&sched->earliest);
    if (!any_queued() && next > wk_now_ns()) {
        if (next == WK_NO_DEADLINE) {
            pthread_cond_wait(&sched->park_cond, &sched->park_lock);
        } else {
            struct timespec ts = to_timespec(next);
            pthread_cond_timedwait(&sched->park_cond, &sched->park_lock, &ts);
        }
    }
    atomic_fetch_sub(&sched->sleepers, 1);
    pthread_mutex_unlock(&sched->park_lock);
}

static void *scheduler_main(void *arg)
{
    my_queue = (int)(intptr_t)arg;
    char name[16];
    snprintf(name, sizeof name, "wk-sched-%d", my_queue);
    wk_set_thread_name(name);
    wk_thread *t = NULL;
    unsigned slices = 0;
    for (;;) {
        worker_t *w = take_work(my_queue);
        if (w) {
            if (!t && !(t = wk_thread_get())) {
                wk_sched_submit(w); /* no memory for the context yet: later */
                sched_yield();
                continue;
            }
            wk_pooled_run_slice(w, t);
            if (++slices % SLICES_BETWEEN_TIMER_CHECKS == 0)
                run_due_timers();
            continue;
        }
        if (run_due_timers())
            continue;
        park();
    }
    return NULL;
}

static int thread_count(void)
{
    int n = wk_sched_freeze_config();
    if (n > 0)
        return n;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static scheduler *make_scheduler(int threads)
{
    scheduler *s = calloc(1, sizeof *s);
    run_queue *queues = s ? aligned_alloc(64, sizeof *queues * (size_t)threads) : NULL;
    if (!queues) {
        free(s);
        return NULL;
    }
    memset(queues, 0, sizeof *queues * (size_t)threads);
    for (int i = 0; i < threads; i++)
        pthread_mutex_init(&queues[i].lock, NULL);
    s->threads = threads;
    s->queues = queues;
    pthread_mutex_init(&s->park_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->park_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->timer_lock, NULL);
    atomic_init(&s->earliest, WK_NO_DEADLINE);
    return s;
}

/* The threads, once; WORKER_EAGAIN when the system refuses the first. */
static int start_threads(void)
{
    int started_threads = 0;
    for (int i = 0; i < sched->threads; i++) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (wk_thread_create(&th, &attr, scheduler_main, (void *)(intptr_t)i, true) == 0)
            started_threads++;
        pthread_attr_destroy(&attr);
    }
    if (started_threads == 0)
        return WORKER_EAGAIN;
    /* A queue whose thread was refused is emptied by the others (stealing). */
    return WORKER_OK;
}

int wk_sched_start(void)
{
    if (atomic_load_explicit(&started, memory_order_acquire))
        return WORKER_OK;
    pthread_mutex_lock(&start_lock);
    int rc = WORKER_OK;
    if (!atomic_load_explicit(&started, memory_order_relaxed)) {
        if (!sched)
            sched = make_scheduler(thread_count());
        if (!sched)
            rc = WORKER_ENOMEM;
        else {
            wk_mailbox_set_pooled_wake(wk_pooled_woken);
            rc = start_threads();
        }
        if (rc == WORKER_OK)
            atomic_store_explicit(&started, sched, memory_order_release);
    }
    pthread_mutex_unlock(&start_lock);
    return rc;
}

bool wk_sched_nothing_queued_here(void)
{
    int me = my_queue;
    return me < 0 || atomic_load_explicit(&sched->queues[me].length, memory_order_relaxed) == 0;
}

void wk_sched_atfork_child(void)
{
    /* Only the forking thread exists: the old scheduler's threads and
     * queues are gone with the parent's other threads (its memory is left,
     * as theirs is). */
    pthread_mutex_init(&start_lock, NULL);
    sched = NULL;
    atomic_store(&started, NULL);
}

int wk_sched_queue_index(void)
{
    return my_queue;
}
