/* Futures: worker_async / worker_future_get / worker_await, and Defer.
 * (future.h, docs/semantics.md
 * "Futures and Defer", docs/features.md "Futures".)
 *
 * Synchronisation: tasks and workers tell the test's main thread what
 * happened by firing events at the main thread's root worker, which waits
 * for them with worker_wait_event() (TU_WAIT seconds at most). Assertions run
 * only on the main thread. */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <criterion/criterion.h>
#include <worker/worker.h>


/* ===================================================================== */
/* async                                                                  */
/* ===================================================================== */

/* Sum 1..n (a "long" computation); result: the sum. */
static int sum_task(void *arg, void **result)
{
    intptr_t n = (intptr_t)arg, s = 0;
    for (intptr_t i = 1; i <= n; i++)
        s += i;
    *result = TU_PTR(s);
    return 0;
}

Test(futures, async_result, .timeout = 10)
{
    worker_future_t *f = worker_async(sum_task, TU_PTR(1000));
    cr_assert_not_null(f);
    void *r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), 500500);
    /* Again: same answer; NULL result pointer allowed. */
    r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), 500500);
    cr_assert_eq(worker_future_get(f, NULL), 0);
    worker_future_free(f);
}

/* The task tells main it is about to return; main waits for that, joins
 * the task's worker, and only then gets. */
struct ending {
    worker_t *main;
};

static int say_then_return(void *arg, void **result)
{
    struct ending *e = arg;
    worker_fire(e->main, "TASK_ENDING", NULL);
    *result = TU_PTR(77);
    return 0;
}

Test(futures, async_result_fetched_long_after_end, .timeout = 10)
{
    struct ending e = { .main = worker_current() };
    worker_future_t *f = worker_async(say_then_return, &e);
    cr_assert_not_null(f);
    worker_t *w = worker_future_worker(f);
    cr_assert_not_null(w);
    cr_assert_eq(worker_wait_event("TASK_ENDING", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    void *r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), 77);
    worker_future_free(f);
}

static int failing_task(void *arg, void **result)
{
    (void)result;
    return TU_INT(arg);
}

Test(futures, async_failure_code, .timeout = 10)
{
    worker_future_t *f = worker_async(failing_task, TU_PTR(4242));
    cr_assert_not_null(f);
    cr_assert_eq(worker_future_get(f, NULL), 4242);
    cr_assert_eq(worker_future_get(f, NULL), 4242);
    worker_future_free(f);

    /* A library code as the task's failure comes back as is. */
    f = worker_async(failing_task, TU_PTR(WORKER_EREJECTED));
    cr_assert_eq(worker_future_get(f, NULL), WORKER_EREJECTED);
    worker_future_free(f);
}

/* worker_future_worker: the task's worker can be stopped; a task that waits
 * forever then returns WORKER_EXIT, and get reports it. */
static int forever_task(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    worker_fire(main, "TASK_STARTED", NULL);
    return worker_wait_forever();
}

Test(futures, future_worker_can_be_stopped, .timeout = 10)
{
    worker_future_t *f = worker_async(forever_task, worker_current());
    cr_assert_not_null(f);
    worker_t *w = worker_future_worker(f);
    cr_assert_eq(worker_wait_event("TASK_STARTED", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert(worker_is_running(w));
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_future_get(f, NULL), WORKER_EXIT);
    cr_assert_not(worker_is_running(w));
    worker_future_free(f);
}

/* ... fired at: the task waits for PING and returns its data. */
static int ping_task(void *arg, void **result)
{
    (void)arg;
    void *d = NULL;
    int rc = worker_wait_event("PING", TU_WAIT, NULL, &d);
    *result = d;
    return rc;
}

Test(futures, future_worker_can_be_fired_at, .timeout = 10)
{
    worker_future_t *f = worker_async(ping_task, NULL);
    cr_assert_not_null(f);
    cr_assert_eq(worker_fire(worker_future_worker(f), "PING", TU_PTR(99)), WORKER_OK);
    void *r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), 99);
    worker_future_free(f);
}

/* The async worker is parent-less and a daemon, also when made inside a
 * worker. */
struct shape {
    worker_t *parent;
    bool daemon, running;
};

static int shape_of_async(void *arg, void **result)
{
    (void)result;
    struct shape *s = arg;
    worker_future_t *f = worker_async(ping_task, NULL);
    if (!f)
        return 1;
    worker_t *w = worker_future_worker(f);
    s->parent = worker_parent(w);
    s->daemon = worker_is_daemon(w);
    s->running = worker_is_running(w);
    worker_fire(w, "PING", NULL);
    int rc = worker_future_get(f, NULL);
    worker_future_free(f);
    return rc;
}

Test(futures, async_is_parentless_daemon, .timeout = 10)
{
    struct shape s = { .parent = TU_PTR(1) };
    worker_t *outer = worker_spawn(shape_of_async, &s, NULL);
    cr_assert_not_null(outer);
    int err = -100;
    cr_assert_eq(worker_wait_thread(outer, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_null(s.parent);
    cr_assert(s.daemon);
    cr_assert(s.running);
    worker_unref(outer);
}

/* get on the task's own future, from the task: WORKER_EDEADLK. */
static int self_get_task(void *arg, void **result)
{
    (void)arg;
    void *f = NULL;
    if (worker_wait_event("FUTURE", TU_WAIT, NULL, &f) != WORKER_OK)
        return 1;
    *result = TU_PTR(worker_future_get(f, NULL));
    return 0;
}

Test(futures, get_from_own_task_is_edeadlk, .timeout = 10)
{
    worker_future_t *f = worker_async(self_get_task, NULL);
    cr_assert_not_null(f);
    cr_assert_eq(worker_fire(worker_future_worker(f), "FUTURE", f), WORKER_OK);
    void *r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), WORKER_EDEADLK);
    worker_future_free(f);
}

/* get from another worker and from a plain pthread. */
static int get_in_worker(void *arg, void **result)
{
    return worker_future_get(arg, result);
}

struct thread_get {
    worker_future_t *f;
    int rc;
    void *r;
};

static void *get_in_thread(void *arg)
{
    struct thread_get *g = arg;
    g->rc = worker_future_get(g->f, &g->r);
    return NULL;
}

Test(futures, get_from_worker_and_plain_thread, .timeout = 10)
{
    worker_future_t *f = worker_async(sum_task, TU_PTR(10));
    cr_assert_not_null(f);
    worker_t *w = worker_spawn(get_in_worker, f, NULL);
    struct thread_get g = { .f = f, .rc = 12345 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, get_in_thread, &g), 0);
    int err = -100;
    void *r = NULL;
    cr_assert_eq(worker_wait_thread(w, &err, &r), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(r), 55);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(g.rc, 0);
    cr_assert_eq(TU_INT(g.r), 55);
    worker_unref(w);
    worker_future_free(f);
}

/* Freeing the future does not stop the task: it runs to its end. */
static int go_then_done(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    worker_fire(main, "DONE", TU_PTR(rc));
    return 0;
}

Test(futures, free_while_running_lets_task_finish, .timeout = 10)
{
    worker_future_t *f = worker_async(go_then_done, worker_current());
    cr_assert_not_null(f);
    worker_t *w = worker_ref(worker_future_worker(f));
    worker_future_free(f);
    cr_assert(worker_is_running(w));
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    void *d = TU_PTR(-100);
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

/* The caller's loop runs while it waits in worker_future_get: a listener on
 * main answers the task's HELLO with GO1, and a `later` posted to main
 * sends GO2. The task needs both to end, so get returns only if both ran
 * during it, on the main thread. */
struct loop_during {
    worker_t *task;
    pthread_t main_thread;
    int hellos;
    bool later_on_main;
    atomic_bool later_ran;
};

static int two_go_task(void *arg, void **result)
{
    worker_t *main = arg;
    worker_fire(main, "HELLO", NULL);
    int rc = worker_wait_event("GO1", TU_WAIT, NULL, NULL);
    if (rc == WORKER_OK)
        rc = worker_wait_event("GO2", TU_WAIT, NULL, NULL);
    *result = TU_PTR(5);
    return rc;
}

static int on_hello(const worker_event_t *e, void *userdata)
{
    struct loop_during *l = userdata;
    l->hellos++;
    return worker_fire(worker_event_target(e), "GO1", NULL);
}

static void send_go2(void *arg)
{
    struct loop_during *l = arg;
    l->later_on_main = pthread_equal(pthread_self(), l->main_thread);
    atomic_store(&l->later_ran, true);
    worker_fire(l->task, "GO2", NULL);
}

Test(futures, loop_runs_while_waiting_on_future, .timeout = 10)
{
    struct loop_during l = { .main_thread = pthread_self() };
    worker_listener_t *li = worker_on("HELLO", on_hello, &l, NULL);
    cr_assert_not_null(li);
    worker_future_t *f = worker_async(two_go_task, worker_current());
    cr_assert_not_null(f);
    l.task = worker_future_worker(f);
    cr_assert_eq(worker_later(NULL, send_go2, &l, 0.05, NULL), WORKER_OK);
    cr_assert_not(atomic_load(&l.later_ran));
    void *r = NULL;
    cr_assert_eq(worker_future_get(f, &r), 0);
    cr_assert_eq(TU_INT(r), 5);
    cr_assert_eq(l.hellos, 1);
    cr_assert(atomic_load(&l.later_ran));
    cr_assert(l.later_on_main);
    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    worker_future_free(f);
}

/* ===================================================================== */
/* await                                                                  */
/* ===================================================================== */

Test(futures, await_result_and_code, .timeout = 10)
{
    void *r = NULL;
    cr_assert_eq(worker_await(sum_task, TU_PTR(100), &r), 0);
    cr_assert_eq(TU_INT(r), 5050);
    cr_assert_eq(worker_await(failing_task, TU_PTR(17), NULL), 17);
}

/* A worker stopped while it awaits: await returns WORKER_EXIT and the task
 * is stopped too (it tells main it saw the stop). */
static int forever_then_tell(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    worker_fire(main, "TASK_STARTED", NULL);
    int rc = worker_wait_forever();
    worker_fire(main, "TASK_STOPPED", TU_PTR(rc));
    return rc;
}

static int awaiting_worker(void *arg, void **result)
{
    *result = TU_PTR(worker_await(forever_then_tell, arg, NULL));
    return 0;
}

Test(futures, await_stopped_caller_stops_task, .timeout = 10)
{
    worker_t *w = worker_spawn(awaiting_worker, worker_current(), NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_wait_event("TASK_STARTED", TU_WAIT, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    void *d = TU_PTR(-100);
    cr_assert_eq(worker_wait_event("TASK_STOPPED", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), WORKER_EXIT);
    int err = -100;
    void *r = NULL;
    cr_assert_eq(worker_wait_thread(w, &err, &r), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(r), WORKER_EXIT, "await returned %d", TU_INT(r));
    worker_unref(w);
}

/* ===================================================================== */
/* defer                                                                  */
/* ===================================================================== */

Test(futures, defer_resolved_before_get, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    cr_assert_not_null(d);
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(42)), WORKER_OK);
    void *v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0);
    cr_assert_eq(TU_INT(v), 42);
    v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0, "get can be called again");
    cr_assert_eq(TU_INT(v), 42);
    cr_assert_eq(worker_defer_get(d, NULL), 0);
    worker_defer_free(d);
}

/* A resolver worker waits for GO, which main sends from a `later` that runs
 * inside main's get: so the resolve surely comes after get began. Main's
 * listener sees DEFER_FULFILL (data: the defer, sender: the resolver). */
struct resolver {
    worker_defer_t *d;
    void *value;
    int err; /* reject with this if non-zero */
};

static int resolver_task(void *arg, void **result)
{
    (void)result;
    struct resolver *r = arg;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    if (rc != WORKER_OK)
        return rc;
    return r->err ? worker_defer_reject(r->d, r->err) : worker_defer_resolve(r->d, r->value);
}

static void send_go(void *arg)
{
    worker_fire(arg, "GO", NULL);
}

struct fulfill_seen {
    int count;
    void *data;
    worker_t *sender;
};

static int on_fulfill(const worker_event_t *e, void *userdata)
{
    struct fulfill_seen *s = userdata;
    s->count++;
    s->data = worker_event_data(e);
    s->sender = worker_event_target(e);
    return 0;
}

Test(futures, defer_resolved_after_get_by_other_worker, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    cr_assert_not_null(d);
    struct resolver r = { .d = d, .value = TU_PTR(314) };
    worker_t *w = worker_spawn(resolver_task, &r, NULL);
    cr_assert_not_null(w);
    struct fulfill_seen seen = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_DEFER_FULFILL, on_fulfill, &seen, NULL);
    cr_assert_not_null(li);
    cr_assert_eq(worker_later(NULL, send_go, w, 0, NULL), WORKER_OK);

    void *v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0);
    cr_assert_eq(TU_INT(v), 314);
    cr_assert_eq(seen.count, 1);
    cr_assert_eq(seen.data, d);
    cr_assert_eq(seen.sender, w);
    int err = -100;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_OK);
    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    worker_unref(w);
    worker_defer_free(d);
}

Test(futures, defer_rejected, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    cr_assert_not_null(d);
    struct resolver r = { .d = d, .err = 808 };
    worker_t *w = worker_spawn(resolver_task, &r, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_later(NULL, send_go, w, 0, NULL), WORKER_OK);
    cr_assert_eq(worker_defer_get(d, NULL), 808);
    cr_assert_eq(worker_defer_get(d, NULL), 808);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
    worker_defer_free(d);

    /* Rejected before get, with a library code. */
    d = worker_defer_new();
    cr_assert_eq(worker_defer_reject(d, WORKER_ETIMEDOUT), WORKER_OK);
    cr_assert_eq(worker_defer_get(d, NULL), WORKER_ETIMEDOUT);
    worker_defer_free(d);
}

Test(futures, defer_settled_twice_first_wins, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(1)), WORKER_OK);
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(2)), WORKER_OK, "ignored, not an error");
    cr_assert_eq(worker_defer_reject(d, 5), WORKER_OK, "ignored, not an error");
    void *v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0);
    cr_assert_eq(TU_INT(v), 1);
    worker_defer_free(d);

    d = worker_defer_new();
    cr_assert_eq(worker_defer_reject(d, 9), WORKER_OK);
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(2)), WORKER_OK);
    cr_assert_eq(worker_defer_get(d, &v), 9);
    worker_defer_free(d);
}

/* Two workers race to settle it; everyone sees the same single outcome. */
static int settle_now(void *arg, void **result)
{
    (void)result;
    struct resolver *r = arg;
    return r->err ? worker_defer_reject(r->d, r->err) : worker_defer_resolve(r->d, r->value);
}

Test(futures, defer_racing_settlers_one_outcome, .timeout = 10)
{
    for (int round = 0; round < 20; round++) {
        worker_defer_t *d = worker_defer_new();
        struct resolver a = { .d = d, .value = TU_PTR(1) }, b = { .d = d, .err = 2 };
        worker_t *wa = worker_spawn(settle_now, &a, NULL);
        worker_t *wb = worker_spawn(settle_now, &b, NULL);
        void *v = NULL;
        int rc = worker_defer_get(d, &v);
        cr_assert(rc == 2 || (rc == 0 && TU_INT(v) == 1), "rc %d v %d", rc, TU_INT(v));
        cr_assert_eq(worker_join(wa), WORKER_OK);
        cr_assert_eq(worker_join(wb), WORKER_OK);
        void *v2 = NULL;
        cr_assert_eq(worker_defer_get(d, &v2), rc);
        if (rc == 0)
            cr_assert_eq(v2, v);
        worker_unref(wa);
        worker_unref(wb);
        worker_defer_free(d);
    }
}

Test(futures, defer_reject_zero_is_einval, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    cr_assert_eq(worker_defer_reject(d, 0), WORKER_EINVAL);
    /* ... and it did not settle it. */
    cr_assert_eq(worker_defer_resolve(d, TU_PTR(3)), WORKER_OK);
    void *v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0);
    cr_assert_eq(TU_INT(v), 3);
    worker_defer_free(d);
}

/* Several waiters (main, two workers, a plain pthread) all get the value of
 * one resolve. Each worker says WAITING just before its get. */
struct waiter {
    worker_t *main;
    worker_defer_t *d;
};

static int defer_get_worker(void *arg, void **result)
{
    struct waiter *w = arg;
    worker_fire(w->main, "WAITING", NULL);
    return worker_defer_get(w->d, result);
}

struct defer_thread {
    worker_defer_t *d;
    int rc;
    void *v;
};

static void *defer_get_thread(void *arg)
{
    struct defer_thread *t = arg;
    t->rc = worker_defer_get(t->d, &t->v);
    return NULL;
}

static void resolve_later(void *arg)
{
    worker_defer_resolve(arg, TU_PTR(21));
}

Test(futures, defer_many_waiters_one_resolve, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    struct waiter wt = { .main = worker_current(), .d = d };
    worker_t *w1 = worker_spawn(defer_get_worker, &wt, NULL);
    worker_t *w2 = worker_spawn(defer_get_worker, &wt, NULL);
    struct defer_thread th = { .d = d, .rc = 12345 };
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, defer_get_thread, &th), 0);
    cr_assert_eq(worker_wait_event("WAITING", TU_WAIT, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("WAITING", TU_WAIT, NULL, NULL), WORKER_OK);
    /* main resolves it from a later that runs inside its own get */
    cr_assert_eq(worker_later(NULL, resolve_later, d, 0.02, NULL), WORKER_OK);
    void *v = NULL;
    cr_assert_eq(worker_defer_get(d, &v), 0);
    cr_assert_eq(TU_INT(v), 21);
    int err = -100;
    void *r = NULL;
    cr_assert_eq(worker_wait_thread(w1, &err, &r), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(r), 21);
    cr_assert_eq(worker_wait_thread(w2, &err, &r), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(r), 21);
    cr_assert_eq(pthread_join(pt, NULL), 0);
    cr_assert_eq(th.rc, 0);
    cr_assert_eq(TU_INT(th.v), 21);
    worker_unref(w1);
    worker_unref(w2);
    worker_defer_free(d);
}

/* The loop runs while waiting on a defer: a `later` posted to main and a
 * listener on main both run during get. The later makes a worker fire PING
 * at main; main's PING listener resolves the defer. get can only return if
 * both ran. (pyThreadWorker's "resolve after get, enter event loop".) */
struct defer_loop {
    worker_defer_t *d;
    worker_t *pinger;
    pthread_t main_thread;
    bool later_on_main, listener_on_main;
    int pings;
};

static void ask_for_ping(void *arg)
{
    struct defer_loop *l = arg;
    l->later_on_main = pthread_equal(pthread_self(), l->main_thread);
    worker_fire(l->pinger, "GO", NULL);
}

static int on_ping(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct defer_loop *l = userdata;
    l->pings++;
    l->listener_on_main = pthread_equal(pthread_self(), l->main_thread);
    return worker_defer_resolve(l->d, TU_PTR(8));
}

static int pinger_task(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    return rc ? rc : worker_fire(main, "PING", NULL);
}

Test(futures, loop_runs_while_waiting_on_defer, .timeout = 10)
{
    struct defer_loop l = { .d = worker_defer_new(), .main_thread = pthread_self() };
    l.pinger = worker_spawn(pinger_task, worker_current(), NULL);
    cr_assert_not_null(l.pinger);
    worker_listener_t *li = worker_on("PING", on_ping, &l, NULL);
    cr_assert_eq(worker_later(NULL, ask_for_ping, &l, 0.05, NULL), WORKER_OK);
    void *v = NULL;
    cr_assert_eq(worker_defer_get(l.d, &v), 0);
    cr_assert_eq(TU_INT(v), 8);
    cr_assert(l.later_on_main);
    cr_assert(l.listener_on_main);
    cr_assert_eq(l.pings, 1);
    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    cr_assert_eq(worker_join(l.pinger), WORKER_OK);
    worker_unref(l.pinger);
    worker_defer_free(l.d);
}

/* A worker stopped while it waits in defer_get gets WORKER_EXIT; the defer
 * can be freed once no get runs on it. */
static int get_forever(void *arg, void **result)
{
    struct waiter *w = arg;
    worker_fire(w->main, "WAITING", NULL);
    int rc = worker_defer_get(w->d, NULL);
    *result = TU_PTR(rc);
    return 0;
}

Test(futures, defer_get_in_stopped_worker_exits, .timeout = 10)
{
    worker_defer_t *d = worker_defer_new();
    struct waiter wt = { .main = worker_current(), .d = d };
    worker_t *w = worker_spawn(get_forever, &wt, NULL);
    cr_assert_eq(worker_wait_event("WAITING", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = -100;
    void *r = NULL;
    cr_assert_eq(worker_wait_thread(w, &err, &r), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(r), WORKER_EXIT);
    worker_unref(w);
    /* Settling after the waiter left is fine. */
    cr_assert_eq(worker_defer_resolve(d, NULL), WORKER_OK);
    worker_defer_free(d);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

Test(futures, bad_input, .timeout = 10)
{
    cr_assert_null(worker_async(NULL, NULL));
    cr_assert_eq(worker_future_get(NULL, NULL), WORKER_EINVAL);
    void *r = TU_PTR(7);
    cr_assert_eq(worker_future_get(NULL, &r), WORKER_EINVAL);
    cr_assert_eq(TU_INT(r), 7);
    cr_assert_null(worker_future_worker(NULL));
    worker_future_free(NULL);
    cr_assert_eq(worker_await(NULL, NULL, NULL), WORKER_EINVAL);

    cr_assert_eq(worker_defer_resolve(NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_defer_reject(NULL, 1), WORKER_EINVAL);
    cr_assert_eq(worker_defer_reject(NULL, 0), WORKER_EINVAL);
    cr_assert_eq(worker_defer_get(NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_defer_get(NULL, &r), WORKER_EINVAL);
    cr_assert_eq(TU_INT(r), 7);
    worker_defer_free(NULL);
}

/* ===================================================================== */
/* timed gets                                                             */
/* ===================================================================== */

/* Waits for GO from main (its arg), then returns 7. */
static int wait_go_task(void *arg, void **result)
{
    (void)arg;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    *result = TU_PTR(7);
    return rc;
}

Test(futures, future_wait_times_out_then_gets, .timeout = 20)
{
    tu_main();
    worker_future_t *f = worker_async(wait_go_task, NULL);
    cr_assert_not_null(f);
    void *r = NULL;
    cr_assert_eq(worker_future_wait(f, 0.05, &r), WORKER_ETIMEDOUT);
    cr_assert_null(r, "no result on a timeout");
    cr_assert_eq(worker_future_wait(f, 0, &r), WORKER_ETIMEDOUT, "0: just look");
    cr_assert_eq(worker_future_wait(f, NAN, &r), WORKER_EINVAL);
    cr_assert_eq(worker_future_wait(NULL, 1, &r), WORKER_EINVAL);
    cr_assert_eq(worker_fire(worker_future_worker(f), "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_future_wait(f, TU_WAIT, &r), 0);
    cr_assert_eq(TU_INT(r), 7);
    cr_assert_eq(worker_future_wait(f, -1, NULL), 0, "negative: no limit");
    worker_future_free(f);
}

static void resolve_soon(void *arg)
{
    worker_defer_resolve(arg, TU_PTR(3));
}

Test(futures, defer_wait_times_out_then_gets, .timeout = 20)
{
    tu_main();
    worker_defer_t *d = worker_defer_new();
    void *v = NULL;
    cr_assert_eq(worker_defer_wait(d, 0.05, &v), WORKER_ETIMEDOUT);
    cr_assert_eq(worker_defer_wait(d, NAN, &v), WORKER_EINVAL);
    cr_assert_eq(worker_defer_wait(NULL, 1, &v), WORKER_EINVAL);
    cr_assert_eq(worker_later(NULL, resolve_soon, d, 0.01, NULL), WORKER_OK);
    cr_assert_eq(worker_defer_wait(d, TU_WAIT, &v), WORKER_OK);
    cr_assert_eq(TU_INT(v), 3);
    cr_assert_eq(worker_defer_wait(d, 0, &v), WORKER_OK, "settled: at once");
    worker_defer_free(d);
}

Test(futures, defer_wait_rejected_code, .timeout = 20)
{
    tu_main();
    worker_defer_t *d = worker_defer_new();
    worker_defer_reject(d, 9);
    cr_assert_eq(worker_defer_wait(d, -1, NULL), 9);
    worker_defer_free(d);
}
