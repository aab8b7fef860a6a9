/* Timers: worker_later() and worker_timer_cancel().
 * (timer.h, docs/semantics.md
 * "Timers", docs/features.md "Timers and later".)
 *
 * Synchronisation: a callback or worker tells the test's main thread what
 * happened by firing an event at the main thread's root worker; the main
 * thread waits for it with worker_wait_event() (bounded by TU_WAIT seconds).
 * Assertions run only on the main thread, after such an event or a join. */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <worker/worker.h>


static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A worker that records its thread, says READY to `main`, and waits. */
struct wctx {
    worker_t *main;
    pthread_t thread;
};

static int record_task(void *arg, void **result)
{
    (void)result;
    struct wctx *c = arg;
    c->thread = pthread_self();
    worker_fire(c->main, "READY", NULL);
    return worker_wait_forever();
}

static worker_t *spawn_recorded(struct wctx *c)
{
    c->main = worker_current();
    worker_t *w = worker_spawn(record_task, c, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_wait_event("READY", TU_WAIT, w, NULL), WORKER_OK);
    return w;
}

static void stop_join_unref(worker_t *w)
{
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

/* A callback's record: where and when it ran, then "RAN" (data: tag) to
 * `main`. */
struct call {
    worker_t *main;
    pthread_t thread;
    double at;
    atomic_int runs;
    int tag;
};

static void record_call(void *arg)
{
    struct call *c = arg;
    c->thread = pthread_self();
    c->at = now();
    atomic_fetch_add(&c->runs, 1);
    worker_fire(c->main, "RAN", TU_PTR(c->tag));
}

/* ===================================================================== */
/* where and when `later` runs                                           */
/* ===================================================================== */

Test(timers, later_no_delay_on_other_worker, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct call c = { .main = worker_current(), .tag = 1 };

    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, record_call, &c, 0, &tm), WORKER_OK);
    cr_assert_not_null(tm);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 1);
    cr_assert_eq(atomic_load(&c.runs), 1);
    cr_assert(pthread_equal(c.thread, wc.thread), "ran on the target's thread");
    cr_assert(!pthread_equal(c.thread, pthread_self()));
    cr_assert_eq(worker_timer_cancel(tm), WORKER_ESTATE);
    worker_timer_free(tm);
    stop_join_unref(w);
}

Test(timers, later_with_delay_on_other_worker, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct call c = { .main = worker_current(), .tag = 2 };

    double t0 = now();
    cr_assert_eq(worker_later(w, record_call, &c, 0.05, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    double took = c.at - t0;
    cr_assert_geq(took, 0.04, "a 0.05 s timer ran after %f s", took);
    cr_assert_lt(took, 5.0);
    cr_assert(pthread_equal(c.thread, wc.thread));
    cr_assert_eq(atomic_load(&c.runs), 1);
    stop_join_unref(w);
}

/* NULL target: the calling thread's worker, here the main root worker; the
 * callback runs inside the main thread's wait. */
Test(timers, later_on_current_main_worker, .timeout = 10)
{
    worker_t *me = worker_current();
    struct call now0 = { .main = me, .tag = 10 }, delayed = { .main = me, .tag = 11 };

    double t0 = now();
    cr_assert_eq(worker_later(NULL, record_call, &delayed, 0.05, NULL), WORKER_OK);
    cr_assert_eq(worker_later(NULL, record_call, &now0, 0, NULL), WORKER_OK);
    /* Nothing runs before the loop turns. */
    cr_assert_eq(atomic_load(&now0.runs), 0);
    cr_assert_eq(atomic_load(&delayed.runs), 0);

    void *d = NULL;
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 10, "the delay-0 call runs first");
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 11);
    cr_assert(pthread_equal(now0.thread, pthread_self()));
    cr_assert(pthread_equal(delayed.thread, pthread_self()));
    cr_assert_geq(delayed.at - t0, 0.04);
    cr_assert_lt(delayed.at - t0, 5.0);
}

/* A worker schedules on itself (NULL target) from its task; the callback
 * runs on that worker's thread while its task waits. */
struct self_ctx {
    worker_t *main;
    pthread_t task_thread;
    struct call c0, c1;
};

static int later_on_self_task(void *arg, void **result)
{
    (void)result;
    struct self_ctx *s = arg;
    s->task_thread = pthread_self();
    s->c0.main = s->c1.main = worker_current(); /* RAN goes to the worker */
    s->c0.tag = 20;
    s->c1.tag = 21;
    if (worker_later(NULL, record_call, &s->c0, 0, NULL) != WORKER_OK
        || worker_later(NULL, record_call, &s->c1, 0.05, NULL) != WORKER_OK)
        return 1;
    int rc = worker_wait_event("RAN", TU_WAIT, NULL, NULL);
    if (rc == WORKER_OK)
        rc = worker_wait_event("RAN", TU_WAIT, NULL, NULL);
    return rc == WORKER_OK ? 0 : 2;
}

Test(timers, later_on_current_worker_from_task, .timeout = 10)
{
    struct self_ctx s = { .main = worker_current() };
    worker_t *w = worker_spawn(later_on_self_task, &s, &(worker_opts) { .quiet = true });
    cr_assert_not_null(w);
    int err = -100;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0, "the task saw both callbacks (err %d)", err);
    cr_assert_eq(atomic_load(&s.c0.runs), 1);
    cr_assert_eq(atomic_load(&s.c1.runs), 1);
    cr_assert(pthread_equal(s.c0.thread, s.task_thread));
    cr_assert(pthread_equal(s.c1.thread, s.task_thread));
    cr_assert(!pthread_equal(s.task_thread, pthread_self()));
    worker_unref(w);
}

/* Deadlines, not arming order, decide the order. */
Test(timers, later_runs_in_deadline_order, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    worker_t *me = worker_current();
    struct call a = { .main = me, .tag = 3 }, b = { .main = me, .tag = 1 },
                c = { .main = me, .tag = 2 };
    cr_assert_eq(worker_later(w, record_call, &a, 0.30, NULL), WORKER_OK);
    cr_assert_eq(worker_later(w, record_call, &b, 0.05, NULL), WORKER_OK);
    cr_assert_eq(worker_later(w, record_call, &c, 0.15, NULL), WORKER_OK);
    for (int want = 1; want <= 3; want++) {
        void *d = NULL;
        cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, &d), WORKER_OK);
        cr_assert_eq(TU_INT(d), want);
    }
    cr_assert_lt(b.at, c.at);
    cr_assert_lt(c.at, a.at);
    stop_join_unref(w);
}

/* Delay 0 is an EXECUTE event: listeners see it (data: arg), before the
 * callback itself runs. */
struct exec_seen {
    int order; /* bumped by both; worker thread only */
    int listener_at, call_at;
    void *data;
    worker_t *main;
};

static int on_execute(const worker_event_t *e, void *userdata)
{
    struct exec_seen *x = userdata;
    x->data = worker_event_data(e);
    x->listener_at = ++x->order;
    return 0;
}

static void exec_call(void *arg)
{
    struct exec_seen *x = arg;
    x->call_at = ++x->order;
    worker_fire(x->main, "RAN", NULL);
}

Test(timers, execute_event_seen_by_listener, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct exec_seen x = { .main = worker_current() };
    cr_assert_not_null(worker_listen(w, WORKER_EV_EXECUTE, on_execute, &x, NULL));
    cr_assert_eq(worker_later(w, exec_call, &x, 0, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(x.data, &x, "EXECUTE's data is the callback's arg");
    cr_assert_eq(x.listener_at, 1);
    cr_assert_eq(x.call_at, 2);
    cr_assert_str_eq(WORKER_EV_EXECUTE, "EXECUTE");
    stop_join_unref(w);
}

/* A flooded worker (its mailbox never empty) still runs due timers. */
struct flood {
    atomic_bool done;
    worker_t *main;
};

static int on_spam(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct flood *f = userdata;
    if (!atomic_load(&f->done))
        worker_fire(worker_current(), "SPAM", NULL);
    return 0;
}

static void end_flood(void *arg)
{
    struct flood *f = arg;
    atomic_store(&f->done, true);
    worker_fire(f->main, "RAN", NULL);
}

Test(timers, timer_runs_while_mailbox_is_flooded, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct flood f = { .main = worker_current() };
    cr_assert_not_null(worker_listen(w, "SPAM", on_spam, &f, NULL));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(worker_fire(w, "SPAM", NULL), WORKER_OK);
    cr_assert_eq(worker_later(w, end_flood, &f, 0.05, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert(atomic_load(&f.done));
    stop_join_unref(w);
}

/* ===================================================================== */
/* cancel                                                                 */
/* ===================================================================== */

/* Cancelled before its deadline: OK (twice), and it never runs. Proof: a
 * second timer with a later deadline runs on the same worker, and timers
 * run in deadline order, so the first would have run before it. */
Test(timers, cancel_before_it_runs, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    worker_t *me = worker_current();
    struct call first = { .main = me, .tag = 1 }, witness = { .main = me, .tag = 2 };

    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, record_call, &first, 0.1, &tm), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK, "cancelling again is still OK");
    cr_assert_eq(worker_later(w, record_call, &witness, 0.3, NULL), WORKER_OK);

    void *d = NULL;
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 2, "only the witness ran");
    cr_assert_eq(atomic_load(&first.runs), 0);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK);
    worker_timer_free(tm);
    stop_join_unref(w);
}

/* The same for delay 0, cancelled from a worker before its loop turns: the
 * target is blocked in a listener until we have cancelled. */
static int on_hold(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    /* Block the worker's loop (without running it, which would run the
     * EXECUTE) until the main thread sets the flag passed as data. */
    atomic_bool *go = worker_event_data(e);
    while (!atomic_load(go))
        sched_yield();
    return 0;
}

Test(timers, cancel_no_delay_before_loop_turns, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    worker_t *me = worker_current();
    struct call first = { .main = me, .tag = 1 }, witness = { .main = me, .tag = 2 };
    atomic_bool go = false;

    cr_assert_not_null(worker_listen(w, "HOLD", on_hold, NULL, NULL));
    cr_assert_eq(worker_fire(w, "HOLD", &go), WORKER_OK);
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, record_call, &first, 0, &tm), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK);
    cr_assert_eq(worker_later(w, record_call, &witness, 0, NULL), WORKER_OK);
    atomic_store(&go, true);

    void *d = NULL;
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 2);
    cr_assert_eq(atomic_load(&first.runs), 0);
    worker_timer_free(tm);
    stop_join_unref(w);
}

/* Cancelled means not seen at all: the EXECUTE of a delay-0 timer
 * cancelled before its worker's loop took it reaches no listener and no
 * wait. On the main thread's root worker, whose loop only turns when the
 * test calls it, so the cancel surely comes first. A witness timer, not
 * cancelled, is shown and runs as usual. */
struct exec_count {
    int shown;
    void *data;
};

static int count_execute(const worker_event_t *e, void *userdata)
{
    struct exec_count *x = userdata;
    x->shown++;
    x->data = worker_event_data(e);
    return 0;
}

static bool is_execute(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    return strcmp(worker_event_name(e), WORKER_EV_EXECUTE) == 0;
}

Test(timers, cancelled_no_delay_timer_is_not_shown_to_listeners, .timeout = 10)
{
    worker_t *me = worker_current();
    struct exec_count x = { 0 };
    struct call cancelled = { .main = me, .tag = 1 }, witness = { .main = me, .tag = 2 };
    cr_assert_not_null(worker_listen(me, WORKER_EV_EXECUTE, count_execute, &x, NULL));

    worker_timer_t *first = NULL, *second = NULL;
    cr_assert_eq(worker_later(me, record_call, &cancelled, 0, &first), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(first), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(x.shown, 0, "the cancelled timer's EXECUTE reached a listener");
    cr_assert_eq(atomic_load(&cancelled.runs), 0);

    cr_assert_eq(worker_later(me, record_call, &cancelled, 0, &second), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(second), WORKER_OK);
    cr_assert_eq(worker_later(me, record_call, &witness, 0, NULL), WORKER_OK);
    void *d = NULL;
    cr_assert_eq(worker_wait_until(is_execute, NULL, TU_WAIT, &d), WORKER_OK);
    cr_assert_eq(d, &witness, "the wait saw the cancelled timer's EXECUTE");
    cr_assert_eq(x.shown, 1);
    cr_assert_eq(x.data, &witness);
    cr_assert_eq(atomic_load(&cancelled.runs), 0);
    cr_assert_eq(atomic_load(&witness.runs), 1);
    cr_assert_eq(worker_timer_cancel(first), WORKER_OK, "still: it will not run");
    worker_timer_free(first);
    worker_timer_free(second);
}

Test(timers, cancel_after_it_ran, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct call c = { .main = worker_current(), .tag = 1 };
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, record_call, &c, 0.02, &tm), WORKER_OK);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_ESTATE);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_ESTATE);
    cr_assert_eq(atomic_load(&c.runs), 1);
    worker_timer_free(tm);
    stop_join_unref(w);
}

/* Cancel from inside the callback itself: it is running, so ESTATE. */
struct self_cancel {
    worker_timer_t *_Atomic tm;
    int rc;
    worker_t *main;
};

static void cancel_myself(void *arg)
{
    struct self_cancel *s = arg;
    worker_timer_t *tm;
    while (!(tm = atomic_load(&s->tm)))
        sched_yield();
    s->rc = worker_timer_cancel(tm);
    worker_fire(s->main, "RAN", NULL);
}

Test(timers, cancel_while_running_is_estate, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct self_cancel s = { .main = worker_current(), .rc = 12345 };
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, cancel_myself, &s, 0.01, &tm), WORKER_OK);
    atomic_store(&s.tm, tm);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(s.rc, WORKER_ESTATE);
    worker_timer_free(tm);
    stop_join_unref(w);
}

/* A worker that ends drops its pending timers: cancel says OK (will not
 * run), also after the worker has been freed; the handle stays valid. */
Test(timers, timers_dropped_when_worker_ends, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct call c = { .main = worker_current(), .tag = 1 };
    worker_timer_t *far = NULL, *soon = NULL;
    cr_assert_eq(worker_later(w, record_call, &c, 60.0, &far), WORKER_OK);
    cr_assert_eq(worker_later(w, record_call, &c, 30.0, &soon), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(far), WORKER_OK);
    worker_unref(w);
    cr_assert_eq(worker_timer_cancel(soon), WORKER_OK);
    cr_assert_eq(atomic_load(&c.runs), 0);
    worker_timer_free(far);
    worker_timer_free(soon);
}

/* A restarted worker does not run timers of its previous run. */
Test(timers, restart_does_not_revive_dropped_timers, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    worker_t *me = worker_current();
    struct call old = { .main = me, .tag = 1 }, fresh = { .main = me, .tag = 2 };
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_later(w, record_call, &old, 0.2, &tm), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_wait_event("READY", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert_eq(worker_later(w, record_call, &fresh, 0.4, NULL), WORKER_OK);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 2);
    cr_assert_eq(atomic_load(&old.runs), 0);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK);
    worker_timer_free(tm);
    stop_join_unref(w);
}

/* `later` from a plain pthread (not managed by the library) to a worker. */
struct from_thread {
    worker_t *w;
    struct call *c;
    int rc;
};

static void *later_from_thread(void *arg)
{
    struct from_thread *ft = arg;
    ft->rc = worker_later(ft->w, record_call, ft->c, 0.01, NULL);
    return NULL;
}

Test(timers, later_from_plain_thread, .timeout = 10)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    struct call c = { .main = worker_current(), .tag = 5 };
    struct from_thread ft = { .w = w, .c = &c, .rc = 12345 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, later_from_thread, &ft), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(ft.rc, WORKER_OK);
    cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
    cr_assert(pthread_equal(c.thread, wc.thread));
    stop_join_unref(w);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

static void never_called(void *arg)
{
    atomic_int *n = arg;
    atomic_fetch_add(n, 1);
}

Test(timers, bad_input, .timeout = 10)
{
    atomic_int n = 0;
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    worker_timer_t *tm = (worker_timer_t *)TU_PTR(1);

    cr_assert_eq(worker_later(w, NULL, NULL, 0, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_later(w, never_called, &n, -0.5, &tm), WORKER_EINVAL);
    cr_assert_eq(worker_later(w, never_called, &n, NAN, &tm), WORKER_EINVAL);
    cr_assert_eq(tm, (worker_timer_t *)TU_PTR(1), "no handle on failure");
    cr_assert_eq(worker_timer_cancel(NULL), WORKER_EINVAL);
    worker_timer_free(NULL);

    /* A worker that is not running refuses: never started, and ended. */
    worker_t *idle = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(idle);
    cr_assert_eq(worker_later(idle, never_called, &n, 0, NULL), WORKER_EREJECTED);
    cr_assert_eq(worker_later(idle, never_called, &n, 0.01, NULL), WORKER_EREJECTED);
    worker_unref(idle);
    stop_join_unref(w);
    w = worker_spawn(NULL, NULL, NULL);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_later(w, never_called, &n, 0, NULL), WORKER_EREJECTED);
    worker_unref(w);

    /* Nothing ran on this thread either. */
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(atomic_load(&n), 0);
}

/* A sleeping worker wakes at its earliest deadline, not much later. The
 * bound is loose (0.5 s late) and the best of three tries counts, so a
 * loaded machine does not fail it; a loop that sleeps in coarse steps
 * (e.g. 1 s) does. */
Test(timers, sleeping_worker_wakes_near_deadline, .timeout = 20)
{
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        struct call c = { .main = worker_current(), .tag = i };
        double t0 = now();
        cr_assert_eq(worker_later(w, record_call, &c, 0.2, NULL), WORKER_OK);
        cr_assert_eq(worker_wait_event("RAN", TU_WAIT, w, NULL), WORKER_OK);
        double took = c.at - t0;
        cr_assert_geq(took, 0.19);
        if (took < best)
            best = took;
    }
    cr_assert_lt(best, 0.7, "a 0.2 s timer ran after %f s at best", best);
    stop_join_unref(w);
}

/* ===================================================================== */
/* every                                                                  */
/* ===================================================================== */

typedef struct tick_ctx {
    int ticks;
    int stop_at;
    double times[16];
    worker_timer_t *self;
    int cancel_rc;
} tick_ctx;

/* Runs on the main thread's loop: records, and cancels itself at stop_at. */
static void tick(void *arg)
{
    tick_ctx *c = arg;
    if (c->ticks < 16)
        c->times[c->ticks] = now();
    if (++c->ticks == c->stop_at) {
        c->cancel_rc = worker_timer_cancel(c->self);
        worker_fire(worker_current(), "TICKS_DONE", NULL);
    }
}

Test(timers, every_ticks_at_a_fixed_rate_until_cancelled, .timeout = 20)
{
    tu_main();
    tick_ctx c = { .stop_at = 5 };
    double t0 = now();
    cr_assert_eq(worker_every(NULL, tick, &c, 0.02, &c.self), WORKER_OK);
    cr_assert_eq(worker_wait_event("TICKS_DONE", TU_WAIT, NULL, NULL), WORKER_OK);
    cr_assert_eq(c.cancel_rc, WORKER_OK, "cancel inside the tick: no further one");
    cr_assert_geq(c.times[0] - t0, 0.019, "the first tick after one period");
    /* No drift: tick n is not before t0 + n periods. */
    for (int i = 0; i < 5; i++)
        cr_assert_geq(c.times[i] - t0, 0.02 * (i + 1) - 0.001, "tick %d early", i);
    cr_assert_eq(worker_wait_timeout(0.1), WORKER_OK);
    cr_assert_eq(c.ticks, 5, "no tick after the cancel");
    cr_assert_eq(worker_timer_cancel(c.self), WORKER_OK, "cancelled: still OK");
    worker_timer_free(c.self);
}

static void slow_tick(void *arg)
{
    tick_ctx *c = arg;
    if (c->ticks < 16)
        c->times[c->ticks] = now();
    c->ticks++;
    if (c->ticks == 1) {
        struct timespec busy = { 0, 120 * 1000 * 1000 }; /* keeps the loop busy 6 periods */
        nanosleep(&busy, NULL);
    }
}

Test(timers, every_skips_missed_ticks, .timeout = 20)
{
    tu_main();
    tick_ctx c = { 0 };
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_every(NULL, slow_tick, &c, 0.02, &tm), WORKER_OK);
    while (c.ticks < 2)
        cr_assert_eq(worker_wait_timeout(0.01), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK);
    /* The missed ticks were not run back to back after the busy one. */
    cr_assert_geq(c.times[1] - c.times[0], 0.1, "tick 2 came after the busy time");
    int seen = c.ticks;
    cr_assert_eq(worker_wait_timeout(0.1), WORKER_OK);
    cr_assert_eq(c.ticks, seen);
    worker_timer_free(tm);
}

static void count_tick(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

Test(timers, every_bad_input_and_worker_end, .timeout = 20)
{
    tu_main();
    cr_assert_eq(worker_every(NULL, NULL, NULL, 1, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_every(NULL, count_tick, NULL, 0, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_every(NULL, count_tick, NULL, -1, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_every(NULL, count_tick, NULL, NAN, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_every(NULL, count_tick, NULL, INFINITY, NULL), WORKER_EINVAL);
    struct wctx wc;
    worker_t *w = spawn_recorded(&wc);
    atomic_int n = 0;
    worker_timer_t *tm = NULL;
    cr_assert_eq(worker_every(w, count_tick, &n, 0.005, &tm), WORKER_OK);
    stop_join_unref(w);
    int after = atomic_load(&n);
    cr_assert_eq(worker_timer_cancel(tm), WORKER_OK, "dropped with its worker");
    cr_assert_eq(atomic_load(&n), after);
    worker_timer_free(tm);
}
