/* Waits: wait_event, wait_until, wait_timeout, sleep, wait_forever, update,
 * nested waits, pause, exit, native threads, self-deadlock.
 * (current.h, docs/semantics.md "Waits".) */
#include "test_util.h"

#include <criterion/criterion.h>

/* ===================================================================== */
/* wait_event                                                             */
/* ===================================================================== */

/* On GO: fire, at the sender, "PONG" sent as X (data 1), "OTHER" (data 2),
 * then "PONG" (data 3), then "DONE". */
struct ponger {
    worker_t *x;
};

static int ponger_go(const worker_event_t *e, void *userdata)
{
    struct ponger *p = userdata;
    worker_t *to = worker_event_target(e);
    worker_fire_opts as_x = { .target = p->x };
    worker_fire_ex(to, "PONG", TU_PTR(1), &as_x);
    worker_fire(to, "OTHER", TU_PTR(2));
    worker_fire(to, "PONG", TU_PTR(3));
    worker_fire(to, "DONE", TU_PTR(4));
    return 0;
}

static worker_t *make_ponger(struct ponger *p)
{
    worker_t *w = worker_new(NULL, NULL, NULL);
    worker_listen(w, "GO", ponger_go, p, NULL);
    worker_start(w);
    return w;
}

Test(waits, wait_event_name_target_data, .timeout = 10)
{
    tu_main();
    struct ponger p = { .x = worker_new(NULL, NULL, NULL) };
    worker_t *w = make_ponger(&p);
    void *d = NULL;

    /* By target: the PONG sent as X does not match. */
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("PONG", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 3);
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, w, NULL), WORKER_OK);

    /* By name only: the first PONG (sent as X). */
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("PONG", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 1);
    cr_assert_eq(worker_wait_event("OTHER", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 2);
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 4);

    /* By target X. */
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("PONG", TU_WAIT, p.x, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 1);
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, w, NULL), WORKER_OK);

    /* NULL data pointer is fine. */
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, NULL, NULL), WORKER_OK);
    tu_stop_join_unref(w);
    worker_unref(p.x);
}

Test(waits, wait_event_ignores_events_handled_before, .timeout = 10)
{
    tu_main();
    struct ponger p = { .x = worker_new(NULL, NULL, NULL) };
    worker_t *w = make_ponger(&p);
    cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
    /* DONE comes after both PONGs: they are handled by this wait. */
    cr_assert_eq(worker_wait_event("DONE", TU_WAIT, w, NULL), WORKER_OK);
    double t0 = tu_now();
    cr_assert_eq(worker_wait_event("PONG", 0.05, NULL, NULL), WORKER_ETIMEDOUT);
    double dt = tu_now() - t0;
    cr_assert_geq(dt, 0.04);
    cr_assert_lt(dt, 5.0);
    tu_stop_join_unref(w);
    worker_unref(p.x);
}

Test(waits, wait_event_timeout_bounds, .timeout = 10)
{
    tu_main();
    double t0 = tu_now();
    cr_assert_eq(worker_wait_event("NEVER", 0.05, NULL, NULL), WORKER_ETIMEDOUT);
    double dt = tu_now() - t0;
    cr_assert_geq(dt, 0.04, "returned after %f s", dt);
    cr_assert_lt(dt, 5.0);

    t0 = tu_now();
    void *d = TU_PTR(5);
    cr_assert_eq(worker_wait_event("NEVER", 0, NULL, &d), WORKER_ETIMEDOUT);
    cr_assert_lt(tu_now() - t0, 5.0);
}

Test(waits, wait_event_bad_input, .timeout = 10)
{
    tu_main();
    cr_assert_eq(worker_wait_event(NULL, 0.01, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_wait_event("", 0.01, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_wait_event("E", NAN, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_wait_until(NULL, NULL, 0.01, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_wait_timeout(NAN), WORKER_EINVAL);
    cr_assert_eq(worker_sleep(NAN), WORKER_EINVAL);
}

/* Events fired by a worker that waits (no timeout) for them: the wait with a
 * negative timeout returns on the event. */
static int fire_at_arg(void *arg, void **result)
{
    (void)result;
    worker_fire((worker_t *)arg, "LATE", TU_PTR(8));
    return 0;
}

Test(waits, wait_event_negative_timeout_waits_for_the_event, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *w = worker_spawn(fire_at_arg, main, NULL);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("LATE", -1, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 8);
    worker_join(w);
    worker_unref(w);
}

/* ===================================================================== */
/* wait_until                                                             */
/* ===================================================================== */

struct until {
    pthread_t thread;
    bool wrong_thread;
    int listener_saw; /* set by a main-thread listener on N */
    int cond_saw_listener;
    int calls;
};

static int n_listener(const worker_event_t *e, void *userdata)
{
    struct until *u = userdata;
    u->listener_saw = TU_INT(worker_event_data(e));
    return 0;
}

static bool n_is_3(const worker_event_t *e, void *userdata)
{
    struct until *u = userdata;
    u->calls++;
    if (!pthread_equal(pthread_self(), u->thread))
        u->wrong_thread = true;
    if (!tu_streq(worker_event_name(e), "N"))
        return false;
    /* The condition runs after the event's listeners. */
    u->cond_saw_listener = u->listener_saw == TU_INT(worker_event_data(e));
    return TU_INT(worker_event_data(e)) == 3;
}

static int fire_1_to_5(void *arg, void **result)
{
    (void)result;
    for (int i = 1; i <= 5; i++)
        worker_fire((worker_t *)arg, "N", TU_PTR(i));
    return 0;
}

Test(waits, wait_until_condition, .timeout = 10)
{
    worker_t *main = tu_main();
    struct until u = { .thread = pthread_self() };
    worker_listener_t *l = worker_listen(main, "N", n_listener, &u, NULL);
    cr_assert_not_null(l);
    worker_t *w = worker_spawn(fire_1_to_5, main, NULL);
    void *d = NULL;
    cr_assert_eq(worker_wait_until(n_is_3, &u, TU_WAIT, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 3);
    cr_assert_not(u.wrong_thread, "the condition runs on the waiting thread");
    cr_assert(u.cond_saw_listener, "the condition runs after the listeners");
    cr_assert_geq(u.calls, 3);

    /* 4 and 5 come later; no more 3: a timeout. */
    double t0 = tu_now();
    cr_assert_eq(worker_wait_until(n_is_3, &u, 0.05, NULL), WORKER_ETIMEDOUT);
    cr_assert_geq(tu_now() - t0, 0.04);
    cr_assert_eq(u.listener_saw, 5);
    worker_join(w);
    worker_unref(w);
    cr_assert_eq(worker_unlisten(main, l), WORKER_OK);
}

/* ===================================================================== */
/* wait_timeout, sleep, update, wait_forever                              */
/* ===================================================================== */

Test(waits, wait_timeout_and_sleep_bounds, .timeout = 10)
{
    tu_main();
    double t0 = tu_now();
    cr_assert_eq(worker_wait_timeout(0.05), WORKER_OK);
    double dt = tu_now() - t0;
    cr_assert_geq(dt, 0.04, "wait_timeout(0.05) returned after %f s", dt);
    cr_assert_lt(dt, 5.0);

    t0 = tu_now();
    cr_assert_eq(worker_sleep(0.05), WORKER_OK);
    dt = tu_now() - t0;
    cr_assert_geq(dt, 0.04, "sleep(0.05) returned after %f s", dt);
    cr_assert_lt(dt, 5.0);

    t0 = tu_now();
    cr_assert_eq(worker_wait_timeout(0), WORKER_OK);
    cr_assert_eq(worker_sleep(0), WORKER_OK);
    cr_assert_lt(tu_now() - t0, 5.0);
}

static int count_n(const worker_event_t *e, void *userdata)
{
    (void)e;
    (*(int *)userdata)++;
    return 0;
}

Test(waits, wait_timeout_runs_listeners, .timeout = 10)
{
    worker_t *main = tu_main();
    int n = 0;
    worker_listen(main, "N", count_n, &n, NULL);
    worker_t *w = worker_spawn(fire_1_to_5, main, NULL);
    worker_join(w); /* all five are in main's mailbox now */
    cr_assert_eq(n, 0, "nothing runs main's listeners outside a wait");
    cr_assert_eq(worker_wait_timeout(0.01), WORKER_OK);
    cr_assert_eq(n, 5);
    worker_unref(w);
}

Test(waits, update_never_blocks, .timeout = 10)
{
    worker_t *main = tu_main();
    int n = 0;
    worker_listen(main, "N", count_n, &n, NULL);
    double t0 = tu_now();
    cr_assert_eq(worker_update(), WORKER_OK); /* nothing queued */
    cr_assert_lt(tu_now() - t0, 1.0);
    cr_assert_eq(n, 0);

    worker_t *w = worker_spawn(fire_1_to_5, main, NULL);
    worker_join(w); /* a plain join: main's loop did not run */
    t0 = tu_now();
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_lt(tu_now() - t0, 1.0);
    cr_assert_eq(n, 5, "update handles what is queued");
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(n, 5);
    worker_unref(w);
}

struct forever_ctx {
    worker_t *main;
    int rc;
    int calls_after;
};

static int forever_task(void *arg, void **result)
{
    (void)result;
    struct forever_ctx *f = arg;
    tu_ack(f->main, 1);
    f->rc = worker_wait_forever();
    return f->rc;
}

Test(waits, wait_forever_returns_exit_on_stop, .timeout = 10)
{
    struct forever_ctx f = { .main = tu_main(), .rc = 12345 };
    worker_t *w = worker_spawn(forever_task, &f, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(f.rc, WORKER_EXIT);
    cr_assert_eq(err, WORKER_EXIT);
    worker_unref(w);
}

static int negative_timeout_task(void *arg, void **result)
{
    (void)result;
    struct forever_ctx *f = arg;
    tu_ack(f->main, 1);
    f->rc = worker_wait_timeout(-1);
    return f->rc;
}

Test(waits, wait_timeout_negative_waits_until_stop, .timeout = 10)
{
    struct forever_ctx f = { .main = tu_main(), .rc = 12345 };
    worker_t *w = worker_spawn(negative_timeout_task, &f, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert(worker_is_running(w));
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(f.rc, WORKER_EXIT);
    worker_unref(w);
}

/* A stopped worker's sleep returns early with WORKER_EXIT. */
static int long_sleep_task(void *arg, void **result)
{
    (void)result;
    struct forever_ctx *f = arg;
    tu_ack(f->main, 1);
    f->rc = worker_sleep(30);
    return f->rc;
}

Test(waits, sleep_returns_early_on_stop, .timeout = 10)
{
    struct forever_ctx f = { .main = tu_main(), .rc = 12345 };
    worker_t *w = worker_spawn(long_sleep_task, &f, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    double t0 = tu_now();
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_lt(tu_now() - t0, 5.0);
    cr_assert_eq(f.rc, WORKER_EXIT);
    worker_unref(w);
}

/* ===================================================================== */
/* worker_exit and sticky stop                                            */
/* ===================================================================== */

struct sticky {
    int rc[8];
    double elapsed;
};

static int exit_task(void *arg, void **result)
{
    (void)result;
    struct sticky *s = arg;
    s->rc[0] = worker_exit();
    double t0 = tu_now();
    s->rc[1] = worker_wait_timeout(5);
    s->rc[2] = worker_update();
    s->rc[3] = worker_wait_event("E", 5, NULL, NULL);
    s->rc[4] = worker_wait_forever();
    s->rc[5] = worker_sleep(5);
    s->rc[6] = worker_wait_timeout(0);
    s->rc[7] = worker_exit();
    s->elapsed = tu_now() - t0;
    return WORKER_EXIT;
}

Test(waits, worker_exit_is_sticky, .timeout = 20)
{
    struct sticky s;
    memset(&s, 0, sizeof s);
    worker_t *w = worker_spawn(exit_task, &s, NULL);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(s.rc[i], WORKER_EXIT, "call %d returned %d", i, s.rc[i]);
    cr_assert_lt(s.elapsed, 4.0, "the waits must return at once");
    cr_assert_eq(err, WORKER_EXIT);
    worker_unref(w);
}

/* A child of the main thread's root worker that does not run its loop until
 * the gate opens. */
struct gated_child {
    tu_gate gate;
    int rc;
};

static int gated_child_task(void *arg, void **result)
{
    (void)result;
    struct gated_child *g = arg;
    tu_gate_pass(&g->gate, TU_WAIT);
    g->rc = worker_wait_forever();
    return g->rc;
}

static void *root_exit_thread(void *arg)
{
    struct sticky *s = arg;
    s->rc[0] = worker_exit();
    s->rc[1] = worker_sleep(5);
    s->rc[2] = worker_wait_event("E", 5, NULL, NULL);
    s->rc[3] = worker_update();
    s->rc[4] = worker_wait_forever();
    s->rc[5] = worker_wait_timeout(0);
    s->rc[6] = worker_exit();
    s->rc[7] = WORKER_EXIT;
    return NULL;
}

/* On a root worker too, worker_exit() is sticky: every later wait returns
 * WORKER_EXIT at once. It stops the root's children but does not wait for
 * them (a plain worker_join does). */
Test(waits, worker_exit_on_a_root_worker_is_sticky_and_does_not_block, .timeout = 30)
{
    worker_t *main = tu_main();
    struct gated_child g = { .rc = 1 };
    tu_gate_init(&g.gate);
    worker_opts under_main = { .parent = main };
    worker_t *c = worker_spawn(gated_child_task, &g, &under_main);
    cr_assert_not_null(c);
    struct sticky s;
    memset(&s, 0, sizeof s);
    double t0 = tu_now();
    s.rc[0] = worker_exit();
    double exit_took = tu_now() - t0;
    s.rc[1] = worker_sleep(1);
    s.rc[2] = worker_wait_event("E", 1, NULL, NULL);
    s.rc[3] = worker_update();
    s.rc[4] = worker_wait_timeout(1);
    s.elapsed = tu_now() - t0;
    cr_assert_lt(exit_took, 1.0, "worker_exit waited %.1f s for the children", exit_took);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(s.rc[i], WORKER_EXIT, "call %d returned %s", i, worker_err_name(s.rc[i]));
    cr_assert_lt(s.elapsed, 1.0, "the waits must return at once");
    cr_assert_eq(worker_wait_forever(), WORKER_EXIT);
    cr_assert_eq(worker_exit(), WORKER_EXIT);
    cr_assert(worker_is_running(main), "the main thread's root worker lives on");
    /* The child was stopped: it sees WORKER_EXIT once it runs its loop. */
    tu_gate_open(&g.gate);
    cr_assert_eq(worker_join(c), WORKER_OK);
    cr_assert_eq(g.rc, WORKER_EXIT);
    worker_unref(c);
    tu_gate_destroy(&g.gate);

    /* The same on a plain pthread's root worker, which then ends with its
     * thread as usual. */
    memset(&s, 0, sizeof s);
    pthread_t thread;
    t0 = tu_now();
    cr_assert_eq(pthread_create(&thread, NULL, root_exit_thread, &s), 0);
    pthread_join(thread, NULL);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(
            s.rc[i], WORKER_EXIT, "pthread: call %d returned %s", i, worker_err_name(s.rc[i]));
    cr_assert_lt(tu_now() - t0, 4.0);
}

static int stop_then_wait_task(void *arg, void **result)
{
    (void)result;
    struct sticky *s = arg;
    s->rc[0] = worker_wait_forever();
    double t0 = tu_now();
    s->rc[1] = worker_wait_timeout(5);
    s->rc[2] = worker_update();
    s->rc[3] = worker_wait_event("E", 5, NULL, NULL);
    s->rc[4] = worker_sleep(5);
    s->rc[5] = worker_wait_forever();
    s->rc[6] = worker_wait_timeout(0);
    s->rc[7] = WORKER_EXIT;
    s->elapsed = tu_now() - t0;
    return 0; /* a task may clean up and report success */
}

Test(waits, stop_is_sticky, .timeout = 20)
{
    struct sticky s;
    memset(&s, 0, sizeof s);
    worker_t *w = worker_spawn(stop_then_wait_task, &s, NULL);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = 1;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(s.rc[i], WORKER_EXIT, "call %d returned %d", i, s.rc[i]);
    cr_assert_lt(s.elapsed, 4.0);
    cr_assert_eq(err, 0);
    worker_unref(w);
}

/* ===================================================================== */
/* nested waits                                                           */
/* ===================================================================== */

struct nested {
    worker_t *main;
    int inner_rc;
    void *inner_data;
    atomic_int listener_done;
    int outer_rc;
    void *outer_data;
    int listener_done_when_outer_returned;
};

static int outer_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct nested *n = userdata;
    tu_ack(n->main, 1);
    n->inner_rc = worker_wait_event("INNER", TU_WAIT, NULL, &n->inner_data);
    atomic_store(&n->listener_done, 1);
    return 0;
}

static int nested_task(void *arg, void **result)
{
    (void)result;
    struct nested *n = arg;
    worker_listen(worker_current(), "OUTER", outer_listener, n, NULL);
    tu_ack(n->main, 0);
    n->outer_rc = worker_wait_event("INNER", TU_WAIT, NULL, &n->outer_data);
    n->listener_done_when_outer_returned = atomic_load(&n->listener_done);
    return 0;
}

Test(waits, nested_wait_inside_a_listener, .timeout = 10)
{
    struct nested n = { .main = tu_main(), .inner_rc = 1, .outer_rc = 1 };
    worker_t *w = worker_spawn(nested_task, &n, NULL);
    intptr_t v = -1;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(worker_fire(w, "OUTER", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK); /* the listener is in its wait */
    cr_assert_eq(v, 1);
    cr_assert_eq(worker_fire(w, "INNER", TU_PTR(77)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(n.inner_rc, WORKER_OK);
    cr_assert_eq(TU_INT(n.inner_data), 77);
    /* The event handled by the nested wait satisfies the outer wait too,
     * which returns once the inner one has returned. */
    cr_assert_eq(n.outer_rc, WORKER_OK);
    cr_assert_eq(TU_INT(n.outer_data), 77);
    cr_assert_eq(n.listener_done_when_outer_returned, 1);
    worker_unref(w);
}

/* A listener on main that waits: main's outer wait sees the event that the
 * listener's nested wait handled. */
struct main_nested {
    int inner_rc;
};

static int main_outer_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct main_nested *m = userdata;
    m->inner_rc = worker_wait_event("B", TU_WAIT, NULL, NULL);
    return 0;
}

static int fire_a_then_b(void *arg, void **result)
{
    (void)result;
    worker_fire((worker_t *)arg, "A", NULL);
    worker_fire((worker_t *)arg, "B", TU_PTR(2));
    return 0;
}

Test(waits, nested_wait_on_main_satisfies_outer_wait, .timeout = 10)
{
    worker_t *main = tu_main();
    struct main_nested m = { .inner_rc = 1 };
    worker_listen(main, "A", main_outer_listener, &m, NULL);
    worker_t *w = worker_spawn(fire_a_then_b, main, NULL);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("B", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(m.inner_rc, WORKER_OK);
    cr_assert_eq(TU_INT(d), 2);
    worker_join(w);
    worker_unref(w);
}

/* ===================================================================== */
/* pause                                                                  */
/* ===================================================================== */

struct pausing {
    worker_t *main;
    tu_gate gate;
    int rc;
    void *data;
    double elapsed;
};

/* Held at a gate while the test queues PAUSE_THREAD, so the pause is
 * handled in the wait below. */
static int pause_wait_event_task(void *arg, void **result)
{
    (void)result;
    struct pausing *p = arg;
    tu_gate_pass(&p->gate, 30);
    p->rc = worker_wait_event("X", -1, NULL, &p->data);
    worker_fire(p->main, "TASK_DONE", TU_PTR(p->rc));
    return worker_wait_forever();
}

Test(waits, events_during_pause_satisfy_the_running_wait, .timeout = 10)
{
    struct pausing p = { .main = tu_main(), .rc = 12345 };
    tu_gate_init(&p.gate);
    worker_t *w = worker_new(pause_wait_event_task, &p, NULL);
    worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_ack_listener, p.main, NULL);
    worker_listen(w, "X", tu_ack_listener, p.main, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK);
    tu_gate_open(&p.gate);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK); /* PAUSE_THREAD is being handled */

    cr_assert_eq(worker_fire(w, "X", TU_PTR(5)), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK); /* the listener ran while paused */
    cr_assert_eq(v, 5);
    /* The task's wait does not return while paused. */
    cr_assert_eq(worker_wait_event("TASK_DONE", 0.1, w, NULL), WORKER_ETIMEDOUT);

    cr_assert_eq(worker_resume(w), WORKER_OK);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("TASK_DONE", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), WORKER_OK, "X handled during the pause satisfies the wait");
    cr_assert_eq(TU_INT(p.data), 5);
    tu_stop_join_unref(w);
    tu_gate_destroy(&p.gate);
}

static int pause_wait_timeout_task(void *arg, void **result)
{
    (void)result;
    struct pausing *p = arg;
    tu_gate_pass(&p->gate, 30);
    double t0 = tu_now();
    p->rc = worker_wait_timeout(0.05);
    p->elapsed = tu_now() - t0;
    worker_fire(p->main, "TASK_DONE", TU_PTR(p->rc));
    return worker_wait_forever();
}

Test(waits, pause_holds_a_wait_past_its_timeout, .timeout = 10)
{
    struct pausing p = { .main = tu_main(), .rc = 12345 };
    tu_gate_init(&p.gate);
    worker_t *w = worker_new(pause_wait_timeout_task, &p, NULL);
    worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_ack_listener, p.main, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK);
    tu_gate_open(&p.gate);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("TASK_DONE", 0.3, w, NULL), WORKER_ETIMEDOUT,
        "a paused task's wait_timeout(0.05) returned");
    cr_assert_eq(worker_resume(w), WORKER_OK);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("TASK_DONE", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), WORKER_OK);
    cr_assert_geq(p.elapsed, 0.3);
    tu_stop_join_unref(w);
    tu_gate_destroy(&p.gate);
}

Test(waits, stop_while_paused_stops, .timeout = 10)
{
    struct pausing p = { .main = tu_main(), .rc = 12345 };
    tu_gate_init(&p.gate);
    worker_t *w = worker_new(pause_wait_event_task, &p, NULL);
    worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_ack_listener, p.main, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK);
    tu_gate_open(&p.gate);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(p.rc, WORKER_EXIT, "the paused wait returns WORKER_EXIT");
    cr_assert_eq(err, WORKER_EXIT);
    worker_unref(w);
    tu_gate_destroy(&p.gate);
}

/* ===================================================================== */
/* wait_thread                                                            */
/* ===================================================================== */

/* The worker can only end if main handles its E during wait_thread. */
static int needs_main_loop_task(void *arg, void **result)
{
    (void)result;
    worker_fire((worker_t *)arg, "E", NULL);
    return worker_wait_event("GO", TU_WAIT, NULL, NULL);
}

static int answer_go(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), "GO", NULL);
    return 0;
}

Test(waits, wait_thread_runs_the_loop, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_listen(main, "E", answer_go, NULL, NULL);
    worker_t *w = worker_spawn(needs_main_loop_task, main, NULL);
    int err = 1;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_OK, "the task's wait for GO: %d", err);
    worker_unref(w);
}

struct waiter {
    worker_t *main;
    worker_t *target;
    int rc;
};

static int wait_thread_task(void *arg, void **result)
{
    (void)result;
    struct waiter *wt = arg;
    tu_ack(wt->main, 1);
    wt->rc = worker_wait_thread(wt->target, NULL, NULL);
    return wt->rc;
}

Test(waits, wait_thread_returns_exit_when_the_caller_is_stopped, .timeout = 10)
{
    worker_opts np = { .no_parent = true };
    struct waiter wt = { .main = tu_main(), .rc = 12345 };
    wt.target = worker_spawn(NULL, NULL, &np);
    worker_t *w = worker_spawn(wait_thread_task, &wt, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(wt.rc, WORKER_EXIT);
    cr_assert(worker_is_running(wt.target), "the waited-for worker is not a child");
    tu_stop_join_unref(wt.target);
    worker_unref(w);
}

static int self_wait_task(void *arg, void **result)
{
    (void)arg;
    worker_t *me = worker_current();
    int a = worker_join(me);
    int b = worker_wait_thread(me, NULL, NULL);
    *result = TU_PTR(a == WORKER_EDEADLK && b == WORKER_EDEADLK);
    return 0;
}

Test(waits, edeadlk_for_join_and_wait_thread_on_self, .timeout = 10)
{
    worker_t *w = worker_spawn(self_wait_task, NULL, NULL);
    void *ret = NULL;
    int err = 1;
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(ret), 1);
    worker_unref(w);
}

/* ===================================================================== */
/* native threads                                                         */
/* ===================================================================== */

struct native {
    worker_t *echo;
    worker_t *main;
    worker_t *me;
    bool is_main;
    bool parent_null;
    int wait_rc;
    void *reply;
    int timeout_rc;
    int update_rc;
    int etimedout_rc;
    int ack_rc;
};

/* The echo worker answers REQ with REPLY (data + 1) at the sender. */
static int echo_listener(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), "REPLY", TU_PTR(TU_INT(worker_event_data(e)) + 1));
    return 0;
}

static void *native_thread(void *arg)
{
    struct native *n = arg;
    n->me = worker_current();
    n->is_main = worker_is_main(NULL);
    n->parent_null = worker_parent(n->me) == NULL;
    worker_fire(n->echo, "REQ", TU_PTR(41));
    n->wait_rc = worker_wait_event("REPLY", TU_WAIT, n->echo, &n->reply);
    n->timeout_rc = worker_wait_timeout(0.01);
    n->update_rc = worker_update();
    n->etimedout_rc = worker_wait_event("NEVER", 0.01, NULL, NULL);
    n->ack_rc = tu_ack(n->main, 1);
    return NULL;
}

Test(waits, native_pthreads_wait_and_fire, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *echo = worker_new(NULL, NULL, NULL);
    worker_listen(echo, "REQ", echo_listener, NULL, NULL);
    worker_start(echo);
    struct native n[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        n[i] = (struct native) { .echo = echo, .main = main, .wait_rc = 1 };
        cr_assert_eq(pthread_create(&t[i], NULL, native_thread, &n[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_not_null(n[i].me);
        cr_assert_neq(n[i].me, main);
        cr_assert_not(n[i].is_main);
        cr_assert(n[i].parent_null);
        cr_assert_eq(n[i].wait_rc, WORKER_OK);
        cr_assert_eq(TU_INT(n[i].reply), 42);
        cr_assert_eq(n[i].timeout_rc, WORKER_OK);
        cr_assert_eq(n[i].update_rc, WORKER_OK);
        cr_assert_eq(n[i].etimedout_rc, WORKER_ETIMEDOUT);
        cr_assert_eq(n[i].ack_rc, WORKER_OK);
        for (int j = 0; j < i; j++)
            cr_assert_neq(n[i].me, n[j].me, "each thread has its own root worker");
    }
    tu_stop_join_unref(echo);
}

/* Two native threads talk through their root workers. */
struct pingpong {
    worker_t *peer; /* set before the gate opens */
    worker_t *me;
    tu_gate ready; /* opened by the thread once `me` is set */
    tu_gate go; /* opened by the test once both are set */
    int rounds_ok;
    struct pingpong *other;
};

static void *pingpong_thread(void *arg)
{
    struct pingpong *p = arg;
    p->me = worker_current();
    tu_gate_open(&p->ready);
    tu_gate_pass(&p->go, 30);
    worker_t *peer = p->other->me;
    for (int i = 0; i < 100; i++) {
        worker_fire(peer, "BALL", TU_PTR(i));
        void *d = NULL;
        if (worker_wait_event("BALL", TU_WAIT, peer, &d) == WORKER_OK && TU_INT(d) == i)
            p->rounds_ok++;
    }
    /* Let the peer's last wait see our last BALL before we exit. */
    worker_fire(peer, "BYE", NULL);
    worker_wait_event("BYE", TU_WAIT, peer, NULL);
    return NULL;
}

Test(waits, native_pthreads_talk_to_each_other, .timeout = 20)
{
    struct pingpong a = { 0 }, b = { 0 };
    a.other = &b;
    b.other = &a;
    tu_gate_init(&a.ready);
    tu_gate_init(&b.ready);
    tu_gate_init(&a.go);
    tu_gate_init(&b.go);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pingpong_thread, &a);
    pthread_create(&tb, NULL, pingpong_thread, &b);
    cr_assert_eq(tu_gate_pass(&a.ready, 5), 0);
    cr_assert_eq(tu_gate_pass(&b.ready, 5), 0);
    tu_gate_open(&a.go);
    tu_gate_open(&b.go);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rounds_ok, 100);
    cr_assert_eq(b.rounds_ok, 100);
}

/* A plain pthread's root worker ends when the thread exits: firing at it
 * afterwards is refused. */
static void *give_root(void *arg)
{
    worker_t **out = arg;
    *out = worker_ref(worker_current());
    return NULL;
}

Test(waits, native_thread_root_worker_ends_with_the_thread, .timeout = 10)
{
    tu_main();
    worker_t *root = NULL;
    pthread_t t;
    pthread_create(&t, NULL, give_root, &root);
    pthread_join(t, NULL);
    cr_assert_not_null(root);
    cr_assert_not(worker_is_running(root));
    cr_assert_eq(worker_fire(root, "E", NULL), WORKER_EREJECTED);
    worker_unref(root);
}

/* ===================================================================== */
/* wait data                                                              */
/* ===================================================================== */

struct payload {
    int a;
    char text[100];
    double d;
};

static int fire_copies(void *arg, void **result)
{
    (void)result;
    struct payload p = { .a = 7, .d = 2.5 };
    snprintf(p.text, sizeof p.text, "hello from the worker");
    worker_fire_opts fo = { .copy = &p, .copy_size = sizeof p };
    worker_fire_ex((worker_t *)arg, "BIG", &p /* ignored: copy wins */, &fo);
    memset(&p, 0, sizeof p); /* the copy must not see this */
    int small = 1234;
    worker_fire_opts fs = { .copy = &small, .copy_size = sizeof small };
    worker_fire_ex((worker_t *)arg, "SMALL", NULL, &fs);
    small = 0;
    return 0;
}

Test(waits, wait_data_for_copied_payload, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *w = worker_spawn(fire_copies, main, NULL);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("BIG", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_not_null(d);
    struct payload *p = d;
    cr_assert_eq(p->a, 7);
    cr_assert_str_eq(p->text, "hello from the worker");
    cr_assert_eq(p->d, 2.5);
    cr_assert_eq(worker_wait_event("SMALL", TU_WAIT, w, &d), WORKER_OK);
    cr_assert_not_null(d);
    cr_assert_eq(*(int *)d, 1234);
    worker_join(w);
    worker_unref(w);
}
