/* Workers' life: start, pause, resume, stop, join, restart, references,
 * names, daemon rules, the parent/child tree, overlay, bad input.
 * (lifecycle.h, docs/semantics.md "Workers" and "Parent
 * and children".) */
#include "test_util.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <sys/resource.h>

/* ===================================================================== */
/* start / pause / resume / stop / join with a counter                    */
/* ===================================================================== */

struct counter_ctx {
    worker_t *main;
    atomic_int count;
    int last_wait_rc; /* written by the task before it returns */
};

/* Counts one per loop turn and reports each value to main as TICK. */
static int counter_task(void *arg, void **result)
{
    (void)result;
    struct counter_ctx *c = arg;
    for (;;) {
        int n = atomic_fetch_add(&c->count, 1) + 1;
        worker_fire(c->main, "TICK", TU_PTR(n));
        int rc = worker_wait_timeout(0.001);
        if (rc != WORKER_OK) {
            c->last_wait_rc = rc;
            return rc;
        }
    }
}

static bool tick_at_least(const worker_event_t *e, void *userdata)
{
    return tu_streq(worker_event_name(e), "TICK")
        && (intptr_t)worker_event_data(e) >= *(intptr_t *)userdata;
}

/* PING's listener on the counting worker: answers PONG with the count. */
static int pong_count(const worker_event_t *e, void *userdata)
{
    struct counter_ctx *c = userdata;
    worker_fire(c->main, "PONG", TU_PTR(atomic_load(&c->count)));
    (void)e;
    return 0;
}

Test(lifecycle, start_pause_resume_stop_join_with_counter, .timeout = 10)
{
    struct counter_ctx c = { .main = tu_main() };
    worker_t *w = worker_new(counter_task, &c, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_ack_listener, c.main, NULL));
    cr_assert_not_null(worker_listen(w, "PING", pong_count, &c, NULL));
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert(worker_is_running(w));

    /* It counts. */
    intptr_t goal = 5;
    cr_assert_eq(worker_wait_until(tick_at_least, &goal, TU_WAIT, NULL), WORKER_OK);

    /* Pause: once PAUSE_THREAD is being handled, the task makes no progress. */
    cr_assert_eq(worker_pause(w), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    int frozen = atomic_load(&c.count);
    cr_assert_eq(worker_wait_timeout(0.05), WORKER_OK); /* a window for a wrong count */
    for (int i = 0; i < 3; i++) {
        /* Listeners keep running while paused, and the count stays. */
        void *d = NULL;
        cr_assert_eq(worker_fire(w, "PING", NULL), WORKER_OK);
        cr_assert_eq(worker_wait_event("PONG", TU_WAIT, w, &d), WORKER_OK);
        cr_assert_eq(TU_INT(d), frozen, "count moved while paused: %d -> %d", frozen, TU_INT(d));
    }
    cr_assert_eq(atomic_load(&c.count), frozen);
    cr_assert(worker_is_running(w));

    /* Resume: it counts again. */
    cr_assert_eq(worker_resume(w), WORKER_OK);
    goal = frozen + 3;
    cr_assert_eq(worker_wait_until(tick_at_least, &goal, TU_WAIT, NULL), WORKER_OK);

    /* Stop + join. */
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(c.last_wait_rc, WORKER_EXIT);
    int final = atomic_load(&c.count);
    cr_assert_geq(final, frozen + 3);

    /* Stop on an ended worker: nothing, WORKER_OK; join returns at once. */
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c.count), final);
    worker_unref(w);
}

/* A task held in a plain semaphore does not run its loop, so a stop is only
 * queued: stop returns at once and the worker is still running (pyThreadWorker's
 * "thread.stop(); print(thread.is_running()) # true"). */
struct gate_ctx {
    tu_gate gate;
    int wait_rc;
    atomic_int cleaned;
};

static int gated_forever_task(void *arg, void **result)
{
    (void)result;
    struct gate_ctx *g = arg;
    tu_gate_pass(&g->gate, 30);
    g->wait_rc = worker_wait_forever();
    atomic_store(&g->cleaned, 1); /* pyThreadWorker's "finally: server.terminate()" */
    return g->wait_rc;
}

Test(lifecycle, stop_returns_at_once_and_cleanup_runs_after_exit, .timeout = 10)
{
    struct gate_ctx g = { 0 };
    tu_gate_init(&g.gate);
    worker_t *w = worker_spawn(gated_forever_task, &g, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert(worker_is_running(w), "stop must only queue STOP_THREAD");
    cr_assert_eq(worker_stop(w), WORKER_OK); /* idempotent */
    cr_assert_eq(atomic_load(&g.cleaned), 0);
    tu_gate_open(&g.gate);
    int err = 1;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(g.wait_rc, WORKER_EXIT);
    cr_assert_eq(atomic_load(&g.cleaned), 1);
    cr_assert_eq(err, WORKER_EXIT);
    worker_unref(w);
    tu_gate_destroy(&g.gate);
}

/* ===================================================================== */
/* restart, is_running, wait_thread results                               */
/* ===================================================================== */

struct runs_ctx {
    worker_t *main;
    atomic_int runs;
};

static int runs_task(void *arg, void **result)
{
    (void)result;
    struct runs_ctx *c = arg;
    int n = atomic_fetch_add(&c->runs, 1) + 1;
    tu_ack(c->main, n);
    return worker_wait_forever();
}

Test(lifecycle, restart_after_end, .timeout = 10)
{
    struct runs_ctx c = { .main = tu_main() };
    worker_t *w = worker_new(runs_task, &c, NULL);
    cr_assert_not_null(w);
    for (int round = 1; round <= 3; round++) {
        cr_assert_eq(worker_start(w), WORKER_OK, "round %d", round);
        cr_assert(worker_is_running(w));
        cr_assert_eq(worker_start(w), WORKER_ESTATE, "start of a running worker");
        intptr_t v = 0;
        cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
        cr_assert_eq(v, round);
        cr_assert_eq(worker_start(w), WORKER_ESTATE);
        cr_assert_eq(worker_stop(w), WORKER_OK);
        int err = 0;
        cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
        cr_assert_eq(err, WORKER_EXIT);
        cr_assert_not(worker_is_running(w));
    }
    cr_assert_eq(atomic_load(&c.runs), 3);
    worker_unref(w);
}

static int result_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int failing_task(void *arg, void **result)
{
    (void)result;
    return TU_INT(arg);
}

Test(lifecycle, wait_thread_gives_result_and_error, .timeout = 10)
{
    static int token;
    worker_t *ok = worker_spawn(result_task, &token, NULL);
    cr_assert_not_null(ok);
    int err = -12345;
    void *ret = NULL;
    cr_assert_eq(worker_wait_thread(ok, &err, &ret), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(ret, &token);
    /* Again on the ended worker: at once, same answers. */
    err = -12345;
    ret = NULL;
    cr_assert_eq(worker_wait_thread(ok, &err, &ret), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(ret, &token);
    cr_assert_eq(worker_join(ok), WORKER_OK);
    worker_unref(ok);

    worker_opts q = { .quiet = true };
    worker_t *bad = worker_spawn(failing_task, TU_PTR(17), &q);
    cr_assert_not_null(bad);
    cr_assert_eq(worker_join(bad), WORKER_OK);
    err = 0;
    cr_assert_eq(worker_wait_thread(bad, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 17);
    worker_unref(bad);

    /* NULL out-pointers are fine. */
    worker_t *w = worker_spawn(result_task, NULL, NULL);
    cr_assert_eq(worker_wait_thread(w, NULL, NULL), WORKER_OK);
    worker_unref(w);
}

Test(lifecycle, wait_thread_after_stop, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL); /* NULL task: wait forever */
    cr_assert_not_null(w);
    cr_assert(worker_is_running(w));
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = 0;
    void *ret = TU_PTR(1);
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(err, WORKER_EXIT);
    /* A second wait_thread and a join return at once. */
    double t0 = tu_now();
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_lt(tu_now() - t0, 1.0);
    worker_unref(w);
}

/* Run 1 waits for GO and fails with 11 (result 111); run 2 waits up to 2 s
 * (or until stopped) and fails with 33 (result 333). */
struct two_runs {
    atomic_int runs;
    worker_t *w;
};

static int two_runs_task(void *arg, void **result)
{
    struct two_runs *r = arg;
    if (atomic_fetch_add(&r->runs, 1) == 0) {
        int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
        *result = TU_PTR(111);
        return rc == WORKER_OK ? 11 : rc;
    }
    int rc = worker_wait_event("NEVER", 2.0, NULL, NULL);
    *result = TU_PTR(333);
    return rc == WORKER_EXIT ? rc : 33;
}

static void fire_go(void *arg)
{
    worker_fire(arg, "GO", NULL);
}

/* On the waiter's thread, while it handles the end notice of run 1. */
static int restart_on_notice(const worker_event_t *e, void *userdata)
{
    struct two_runs *r = userdata;
    if (worker_event_target(e) == r->w)
        worker_start(r->w);
    return 0;
}

/* worker_wait_thread returns the end of the run it waited for, at once,
 * even when the worker has been started again meanwhile. */
Test(lifecycle, wait_thread_returns_the_run_it_waited_for, .timeout = 20)
{
    worker_t *main = tu_main();
    struct two_runs r = { 0 };
    worker_t *w = worker_new(two_runs_task, &r, &(worker_opts) { .quiet = true });
    cr_assert_not_null(w);
    r.w = w;
    worker_listen_opts once = { .once = true };
    cr_assert_not_null(
        worker_listen(main, WORKER_EV_WAIT_THREAD_PENDING_DONE, restart_on_notice, &r, &once));
    cr_assert_eq(worker_start(w), WORKER_OK);
    /* GO goes out from inside the wait (the waiter is registered by then). */
    cr_assert_eq(worker_later(NULL, fire_go, w, 0, NULL), WORKER_OK);
    int err = -100;
    void *ret = NULL;
    double t0 = tu_now();
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    double took = tu_now() - t0;
    cr_assert(worker_is_running(w), "the listener started it again");
    cr_assert_eq(err, 11, "got %d, not the first run's 11", err);
    cr_assert_eq(TU_INT(ret), 111);
    cr_assert_lt(took, 1.0, "waited %.1f s: for the second run", took);
    /* The second run, stopped: its own end. */
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_eq(TU_INT(ret), 333);
    cr_assert_eq(atomic_load(&r.runs), 2);
    worker_unref(w);
}

Test(lifecycle, join_and_wait_thread_on_a_never_started_worker, .timeout = 10)
{
    worker_t *w = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_wait_thread(w, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_EREJECTED);
    cr_assert_eq(worker_resume(w), WORKER_EREJECTED);
    worker_unref(w);
}

Test(lifecycle, pause_resume_on_an_ended_worker_are_rejected, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    tu_stop_join_unref(worker_ref(w));
    cr_assert_eq(worker_pause(w), WORKER_EREJECTED);
    cr_assert_eq(worker_resume(w), WORKER_EREJECTED);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    worker_unref(w);
}

/* ===================================================================== */
/* references                                                             */
/* ===================================================================== */

static int ack_later_task(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    /* Give the test time to drop its reference first. */
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    tu_ack(main, rc == WORKER_OK ? 1 : 2);
    return 0;
}

Test(lifecycle, refcounts, .timeout = 10)
{
    cr_assert_null(worker_ref(NULL));
    worker_unref(NULL);

    worker_t *w = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_ref(w), w);
    cr_assert_eq(worker_ref(w), w);
    worker_unref(w);
    worker_unref(w);
    cr_assert_not_null(worker_name(w)); /* still alive: one reference left */
    worker_unref(w);
}

Test(lifecycle, running_worker_keeps_itself_alive, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *w = worker_spawn(ack_later_task, main, NULL);
    cr_assert_not_null(w);
    worker_t *extra = worker_ref(w);
    worker_unref(w); /* the creator's reference is gone; `extra` keeps it */
    cr_assert_eq(worker_fire(extra, "GO", NULL), WORKER_OK);
    worker_unref(extra); /* no reference left but the worker's own */
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 1);
}

/* ===================================================================== */
/* names                                                                  */
/* ===================================================================== */

struct thread_name_ctx {
    worker_t *main;
    char name[32];
};

static int thread_name_task(void *arg, void **result)
{
    (void)result;
    struct thread_name_ctx *c = arg;
    pthread_getname_np(pthread_self(), c->name, sizeof c->name);
    tu_ack(c->main, 1);
    return 0;
}

Test(lifecycle, names, .timeout = 10)
{
    char buf[64];
    strcpy(buf, "my-worker");
    worker_opts o = { .name = buf };
    worker_t *a = worker_new(NULL, NULL, &o);
    cr_assert_not_null(a);
    memset(buf, 'x', sizeof buf - 1); /* the name was copied */
    buf[sizeof buf - 1] = 0;
    cr_assert_str_eq(worker_name(a), "my-worker");

    worker_t *b = worker_new(NULL, NULL, NULL);
    worker_t *c = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(worker_name(b));
    cr_assert_eq(strncmp(worker_name(b), "worker-", 7), 0, "default name %s", worker_name(b));
    cr_assert_eq(strncmp(worker_name(c), "worker-", 7), 0, "default name %s", worker_name(c));
    cr_assert_str_neq(worker_name(b), worker_name(c));
    /* "worker-<n>": a number after the prefix. */
    char *end = NULL;
    strtol(worker_name(b) + 7, &end, 10);
    cr_assert(end != worker_name(b) + 7 && *end == 0, "default name %s", worker_name(b));
    worker_unref(a);
    worker_unref(b);
    worker_unref(c);
}

Test(lifecycle, thread_name_is_the_first_15_bytes, .timeout = 10)
{
    struct thread_name_ctx c = { .main = tu_main() };
    worker_opts o = { .name = "a-very-long-worker-name" };
    worker_t *w = worker_spawn(thread_name_task, &c, &o);
    cr_assert_not_null(w);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_str_eq(c.name, "a-very-long-wor");
    cr_assert_str_eq(worker_name(w), "a-very-long-worker-name");
    worker_unref(w);
}

/* ===================================================================== */
/* daemon rules                                                           */
/* ===================================================================== */

Test(lifecycle, daemon_flags_and_inheritance, .timeout = 10)
{
    worker_t *plain = worker_new(NULL, NULL, NULL);
    worker_opts yes = { .daemon = WORKER_DAEMON_YES };
    worker_opts no = { .daemon = WORKER_DAEMON_NO };
    worker_t *dy = worker_new(NULL, NULL, &yes);
    worker_t *dn = worker_new(NULL, NULL, &no);
    cr_assert_not(worker_is_daemon(plain), "no parent, inherit: false");
    cr_assert(worker_is_daemon(dy));
    cr_assert_not(worker_is_daemon(dn));

    /* Inherit from a daemon parent, and from its parent in turn. */
    worker_opts under_dy = { .parent = dy };
    worker_t *c1 = worker_new(NULL, NULL, &under_dy);
    cr_assert_not_null(c1);
    cr_assert(worker_is_daemon(c1), "inherits the parent's daemon flag");
    worker_opts under_c1 = { .parent = c1 };
    worker_t *c2 = worker_new(NULL, NULL, &under_c1);
    cr_assert(worker_is_daemon(c2), "inherits through two levels");
    worker_opts under_dy_no = { .parent = dy, .daemon = WORKER_DAEMON_NO };
    worker_t *c3 = worker_new(NULL, NULL, &under_dy_no);
    cr_assert_not(worker_is_daemon(c3), "explicit NO wins over a daemon parent");

    worker_opts under_dn = { .parent = dn };
    worker_t *c4 = worker_new(NULL, NULL, &under_dn);
    cr_assert_not(worker_is_daemon(c4));
    worker_opts under_dn_yes = { .parent = dn, .daemon = WORKER_DAEMON_YES };
    worker_t *c5 = worker_new(NULL, NULL, &under_dn_yes);
    cr_assert(worker_is_daemon(c5));
    worker_opts under_plain = { .parent = plain };
    worker_t *c6 = worker_new(NULL, NULL, &under_plain);
    cr_assert_not(worker_is_daemon(c6));

    /* The main thread's worker is not a daemon. */
    cr_assert_not(worker_is_daemon(tu_main()));

    worker_t *all[] = { c6, c5, c4, c3, c2, c1, dn, dy, plain };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        worker_unref(all[i]);
}

/* A daemon child's answer follows its parent's flag at the time of asking
 * (the flag is "the parent's answer"), also for a running child. */
Test(lifecycle, daemon_inherit_running_child, .timeout = 10)
{
    worker_opts yes = { .daemon = WORKER_DAEMON_YES };
    worker_t *p = worker_spawn(NULL, NULL, &yes);
    worker_opts under = { .parent = p };
    worker_t *c = worker_spawn(NULL, NULL, &under);
    cr_assert_not_null(c);
    cr_assert(worker_is_daemon(c));
    cr_assert_eq(worker_parent(c), p);
    tu_stop_join_unref(c);
    tu_stop_join_unref(p);
}

/* --- the parent waits for non-daemon children, not for daemon ones --- */

struct family_ctx {
    worker_t *main;
    int child_daemon; /* enum worker_daemon_mode for the child */
    worker_t *child; /* set by the parent's task (a reference) */
    tu_gate release; /* the daemon child's plain wait */
    int child_wait_rc;
    atomic_int child_done;
};

static int slow_cleanup_child(void *arg, void **result)
{
    (void)result;
    struct family_ctx *f = arg;
    tu_ack(f->main, 2); /* "I am running" */
    f->child_wait_rc = worker_wait_forever();
    /* Not synchronisation: a cleanup that takes a while, so that a parent
     * that did not wait would be seen. */
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    atomic_store(&f->child_done, 1);
    return f->child_wait_rc;
}

static int blocked_cleanup_child(void *arg, void **result)
{
    (void)result;
    struct family_ctx *f = arg;
    tu_ack(f->main, 2);
    f->child_wait_rc = worker_wait_forever();
    /* A plain wait, not a worker wait: the test opens it only after the
     * parent's join returned. */
    tu_gate_pass(&f->release, 30);
    atomic_store(&f->child_done, 1);
    return f->child_wait_rc;
}

static int family_parent(void *arg, void **result)
{
    (void)result;
    struct family_ctx *f = arg;
    worker_opts o = { .daemon = f->child_daemon };
    worker_task_fn fn
        = f->child_daemon == WORKER_DAEMON_YES ? blocked_cleanup_child : slow_cleanup_child;
    f->child = worker_spawn(fn, f, &o); /* default parent: this worker */
    tu_ack(f->main, 1);
    return worker_wait_forever();
}

/* Wait for both ACKs (parent spawned, child running) in any order. */
static void wait_family_up(void)
{
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        intptr_t v = 0;
        cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
        seen |= (int)v;
    }
    cr_assert_eq(seen, 3);
}

Test(lifecycle, parent_waits_for_non_daemon_child, .timeout = 10)
{
    struct family_ctx f = { .main = tu_main(), .child_daemon = WORKER_DAEMON_NO };
    worker_t *p = worker_spawn(family_parent, &f, NULL);
    cr_assert_not_null(p);
    wait_family_up();
    cr_assert_not_null(f.child);
    cr_assert_eq(worker_parent(f.child), p);
    cr_assert_not(worker_is_daemon(f.child));
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    /* The parent's end joined the child: its cleanup has finished. */
    cr_assert_eq(atomic_load(&f.child_done), 1, "the parent did not wait for its child");
    cr_assert_not(worker_is_running(f.child));
    cr_assert_eq(f.child_wait_rc, WORKER_EXIT);
    int err = 0;
    cr_assert_eq(worker_wait_thread(f.child, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    worker_unref(f.child);
    worker_unref(p);
}

Test(lifecycle, parent_does_not_wait_for_daemon_child, .timeout = 10)
{
    struct family_ctx f = { .main = tu_main(), .child_daemon = WORKER_DAEMON_YES };
    tu_gate_init(&f.release);
    worker_t *p = worker_spawn(family_parent, &f, NULL);
    cr_assert_not_null(p);
    wait_family_up();
    cr_assert_not_null(f.child);
    cr_assert(worker_is_daemon(f.child));
    cr_assert_eq(worker_stop(p), WORKER_OK);
    /* Hangs (test timeout) if the parent waits for its daemon child, whose
     * task is held in a plain wait until after this join. */
    cr_assert_eq(worker_join(p), WORKER_OK);
    cr_assert_not(worker_is_running(p));
    cr_assert_eq(atomic_load(&f.child_done), 0);
    cr_assert(worker_is_running(f.child), "the daemon child's task has not returned yet");
    tu_gate_open(&f.release);
    /* The child did get STOP_THREAD from its parent: it ends by itself. */
    cr_assert_eq(worker_join(f.child), WORKER_OK);
    cr_assert_eq(atomic_load(&f.child_done), 1);
    cr_assert_eq(f.child_wait_rc, WORKER_EXIT);
    worker_unref(f.child);
    worker_unref(p);
    tu_gate_destroy(&f.release);
}

/* ===================================================================== */
/* the tree                                                               */
/* ===================================================================== */

struct tree_ctx {
    worker_t *main;
    worker_t *self_seen;
    worker_t *children[3];
    worker_t *parent_seen[3];
    size_t count_seen;
    int child_wait_rc[3];
};

static int tree_child(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    *rc = worker_wait_forever();
    return *rc;
}

static int tree_parent(void *arg, void **result)
{
    (void)result;
    struct tree_ctx *t = arg;
    t->self_seen = worker_current();
    for (int i = 0; i < 3; i++) {
        t->children[i] = worker_spawn(tree_child, &t->child_wait_rc[i], NULL);
        t->parent_seen[i] = worker_parent(t->children[i]);
    }
    t->count_seen = worker_children_count(t->self_seen);
    tu_ack(t->main, 1);
    return worker_wait_forever();
}

Test(lifecycle, default_parent_inside_a_worker, .timeout = 10)
{
    struct tree_ctx t = { .main = tu_main() };
    worker_t *p = worker_spawn(tree_parent, &t, NULL);
    cr_assert_not_null(p);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(t.self_seen, p, "worker_current() inside a task is its worker");
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(t.children[i]);
        cr_assert_eq(t.parent_seen[i], p);
        cr_assert_eq(worker_parent(t.children[i]), p);
    }
    cr_assert_eq(t.count_seen, 3);
    cr_assert_eq(worker_children_count(p), 3);
    tu_stop_join_unref(p);
    for (int i = 0; i < 3; i++)
        worker_unref(t.children[i]);
}

Test(lifecycle, no_default_parent_on_main, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_null(worker_parent(w));
    cr_assert_eq(worker_children_count(tu_main()), 0);
    cr_assert_null(worker_parent(tu_main()));
    worker_opts np = { .no_parent = true };
    worker_t *x = worker_new(NULL, NULL, &np);
    cr_assert_null(worker_parent(x));
    worker_unref(x);
    tu_stop_join_unref(w);
}

static int no_parent_inside_task(void *arg, void **result)
{
    (void)arg;
    worker_opts np = { .no_parent = true };
    worker_t *c = worker_new(NULL, NULL, &np);
    worker_t *d = worker_new(NULL, NULL, NULL);
    intptr_t ok = c != NULL && worker_parent(c) == NULL && d != NULL
        && worker_parent(d) == worker_current()
        && worker_children_count(worker_current()) == 0; /* not started */
    worker_unref(c);
    worker_unref(d);
    *result = TU_PTR(ok);
    return 0;
}

Test(lifecycle, no_parent_option_inside_a_worker, .timeout = 10)
{
    worker_t *w = worker_spawn(no_parent_inside_task, NULL, NULL);
    void *ret = NULL;
    int err = -1;
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(ret), 1);
    worker_unref(w);
}

static void *pthread_spawns(void *arg)
{
    (void)arg;
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    intptr_t ok = w != NULL && worker_parent(w) == NULL;
    tu_stop_join_unref(w);
    return TU_PTR(ok);
}

Test(lifecycle, no_default_parent_on_a_plain_pthread, .timeout = 10)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pthread_spawns, NULL), 0);
    void *ok = NULL;
    pthread_join(t, &ok);
    cr_assert_eq(TU_INT(ok), 1);
}

Test(lifecycle, child_threads_stopped_with_parent, .timeout = 10)
{
    struct tree_ctx t = { .main = tu_main() };
    for (int i = 0; i < 3; i++)
        t.child_wait_rc[i] = 12345;
    worker_t *p = worker_spawn(tree_parent, &t, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_not(worker_is_running(t.children[i]), "child %d still running", i);
        cr_assert_eq(t.child_wait_rc[i], WORKER_EXIT);
        int err = 0;
        cr_assert_eq(worker_wait_thread(t.children[i], &err, NULL), WORKER_OK);
        cr_assert_eq(err, WORKER_EXIT);
        cr_assert_eq(worker_parent(t.children[i]), p, "the parent stays for the child's life");
        worker_unref(t.children[i]);
    }
    cr_assert_eq(worker_children_count(p), 0);
    worker_unref(p);
}

/* A child is linked when it is created: a parent that ends right after
 * spawning still stops (and joins) it. */
static int spawn_and_leave(void *arg, void **result)
{
    (void)result;
    worker_t **child = arg;
    *child = worker_spawn(NULL, NULL, NULL);
    return 0;
}

Test(lifecycle, parent_ending_right_after_spawn_stops_child, .timeout = 10)
{
    worker_t *child = NULL;
    worker_t *p = worker_spawn(spawn_and_leave, &child, NULL);
    cr_assert_eq(worker_join(p), WORKER_OK);
    cr_assert_not_null(child);
    cr_assert_not(worker_is_running(child));
    cr_assert_eq(worker_parent(child), p);
    worker_unref(child);
    worker_unref(p);
}

/* Sync with a parent after a child ended: CHILD_THREAD_END's user listener
 * acks (so the parent has it), then a round trip makes sure the library's
 * own handling of it (which runs after user listeners) has run too. */
Test(lifecycle, children_list_shrinks_when_a_child_ends, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *p = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(p);
    tu_sync_install(p);
    cr_assert_not_null(worker_listen(p, WORKER_EV_CHILD_THREAD_END, tu_ack_listener, main, NULL));
    cr_assert_eq(worker_start(p), WORKER_OK);
    cr_assert_eq(worker_children_count(p), 0);

    worker_opts under = { .parent = p };
    worker_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = worker_spawn(NULL, NULL, &under);
        cr_assert_not_null(c[i]);
        cr_assert_eq(worker_parent(c[i]), p);
    }
    cr_assert_eq(worker_children_count(p), 3);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(worker_stop(c[i]), WORKER_OK);
        cr_assert_eq(worker_join(c[i]), WORKER_OK);
        cr_assert_eq(tu_wait_ack(NULL), WORKER_OK); /* p got CHILD_THREAD_END */
        cr_assert_eq(tu_sync(p), WORKER_OK);
        cr_assert_eq(worker_children_count(p), (size_t)(2 - i), "after child %d ended", i);
        cr_assert_eq(worker_parent(c[i]), p);
    }

    /* A child restarted counts again. */
    cr_assert_eq(worker_start(c[0]), WORKER_OK);
    cr_assert_eq(worker_children_count(p), 1);
    for (int i = 0; i < 3; i++)
        tu_stop_join_unref(c[i]);
    tu_stop_join_unref(p);
}

/* CHILD_THREAD_START, then _DONE / _ERROR / _STOP, then _END, each sent by
 * the child. */
struct child_events_ctx {
    worker_t *main;
    int n;
    char names[16][24];
    worker_t *sender[16];
    void *data[16];
    worker_down_t end; /* copy of CHILD_THREAD_END's data */
    bool end_data_null;
};

static int record_child_event(const worker_event_t *e, void *userdata)
{
    struct child_events_ctx *c = userdata;
    if (c->n < 16) {
        snprintf(c->names[c->n], sizeof c->names[0], "%s", worker_event_name(e));
        c->sender[c->n] = worker_event_target(e);
        c->data[c->n] = worker_event_data(e);
        c->n++;
    }
    if (tu_streq(worker_event_name(e), WORKER_EV_CHILD_THREAD_END)) {
        const worker_down_t *d = worker_event_data(e);
        c->end_data_null = d == NULL;
        if (d != NULL)
            c->end = *d;
        tu_ack(c->main, c->n);
    }
    return 0;
}

static worker_t *observed_parent(struct child_events_ctx *c)
{
    worker_t *p = worker_new(NULL, NULL, NULL);
    const char *names[] = { WORKER_EV_CHILD_THREAD_START, WORKER_EV_CHILD_THREAD_STOP,
        WORKER_EV_CHILD_THREAD_ERROR, WORKER_EV_CHILD_THREAD_DONE, WORKER_EV_CHILD_THREAD_END };
    for (int i = 0; i < 5; i++)
        worker_listen(p, names[i], record_child_event, c, NULL);
    worker_start(p);
    return p;
}

static void check_child_events(struct child_events_ctx *c, worker_t *child, const char *mid,
    void *mid_data, int err, void *ret)
{
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(c->n, 3, "got %d events", c->n);
    cr_assert_str_eq(c->names[0], WORKER_EV_CHILD_THREAD_START);
    cr_assert_str_eq(c->names[1], mid);
    cr_assert_str_eq(c->names[2], WORKER_EV_CHILD_THREAD_END);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(c->sender[i], child, "event %s sent by the child", c->names[i]);
    cr_assert_eq(c->data[1], mid_data);
    /* CHILD_THREAD_END's data: a worker_down_t (docs/semantics.md). */
    cr_assert_not(c->end_data_null, "CHILD_THREAD_END without a worker_down_t");
    cr_assert_eq(c->end.worker, child);
    cr_assert_eq(c->end.err, err);
    cr_assert_eq(c->end.ret, ret);
}

Test(lifecycle, child_thread_events_done, .timeout = 10)
{
    static int token;
    struct child_events_ctx c = { .main = tu_main() };
    worker_t *p = observed_parent(&c);
    worker_opts under = { .parent = p };
    worker_t *ch = worker_spawn(result_task, &token, &under);
    check_child_events(&c, ch, WORKER_EV_CHILD_THREAD_DONE, &token, 0, &token);
    tu_stop_join_unref(ch);
    tu_stop_join_unref(p);
}

Test(lifecycle, child_thread_events_error, .timeout = 10)
{
    struct child_events_ctx c = { .main = tu_main() };
    worker_t *p = observed_parent(&c);
    worker_opts under = { .parent = p, .quiet = true };
    worker_t *ch = worker_spawn(failing_task, TU_PTR(23), &under);
    check_child_events(&c, ch, WORKER_EV_CHILD_THREAD_ERROR, TU_PTR(23), 23, NULL);
    tu_stop_join_unref(ch);
    tu_stop_join_unref(p);
}

Test(lifecycle, child_thread_events_stop, .timeout = 10)
{
    struct child_events_ctx c = { .main = tu_main() };
    worker_t *p = observed_parent(&c);
    worker_opts under = { .parent = p };
    worker_t *ch = worker_spawn(NULL, NULL, &under);
    cr_assert_eq(worker_stop(ch), WORKER_OK);
    check_child_events(&c, ch, WORKER_EV_CHILD_THREAD_STOP, NULL, WORKER_EXIT, NULL);
    tu_stop_join_unref(ch);
    tu_stop_join_unref(p);
}

/* Start is refused while the parent is in its end sequence. The parent's
 * end is held while it joins a non-daemon child whose cleanup waits on a
 * plain gate; the child acks once it got STOP_THREAD (which only the
 * parent's end sequence sends). */
struct ending_ctx {
    worker_t *main;
    tu_gate gate;
};

static int ack_then_block_child(void *arg, void **result)
{
    (void)result;
    struct ending_ctx *e = arg;
    int rc = worker_wait_forever();
    tu_ack(e->main, rc == WORKER_EXIT ? 1 : 2);
    tu_gate_pass(&e->gate, 30);
    return rc;
}

Test(lifecycle, start_rejected_while_parent_ending, .timeout = 10)
{
    struct ending_ctx e = { .main = tu_main() };
    tu_gate_init(&e.gate);
    worker_t *p = worker_spawn(NULL, NULL, NULL);
    worker_opts under = { .parent = p };
    worker_t *c = worker_spawn(ack_then_block_child, &e, &under);
    worker_t *late = worker_new(NULL, NULL, &under);
    cr_assert_not_null(late);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 1);
    /* p is now joining c, inside its end sequence. */
    cr_assert_not(worker_is_running(p));
    cr_assert_eq(worker_start(late), WORKER_EREJECTED);
    cr_assert_not(worker_is_running(late));
    tu_gate_open(&e.gate);
    cr_assert_eq(worker_join(p), WORKER_OK);
    /* A parent that has ended does not block the start. */
    cr_assert_eq(worker_start(late), WORKER_OK);
    cr_assert(worker_is_running(late));
    tu_stop_join_unref(late);
    tu_stop_join_unref(c);
    worker_unref(p);
    tu_gate_destroy(&e.gate);
}

Test(lifecycle, child_of_a_never_started_parent_starts, .timeout = 10)
{
    worker_t *p = worker_new(NULL, NULL, NULL);
    worker_opts under = { .parent = p };
    worker_t *c = worker_spawn(NULL, NULL, &under);
    cr_assert_not_null(c);
    cr_assert(worker_is_running(c));
    cr_assert_eq(worker_parent(c), p);
    tu_stop_join_unref(c);
    worker_unref(p);
}

/* On the main thread's root worker, a stop stops only its children. */
Test(lifecycle, stop_main_root_stops_only_its_children, .timeout = 10)
{
    worker_t *main = tu_main();
    cr_assert(worker_is_main(main));
    cr_assert(worker_is_main(NULL));
    worker_opts under = { .parent = main };
    worker_t *c = worker_spawn(NULL, NULL, &under);
    cr_assert_not_null(c);
    cr_assert_eq(worker_parent(c), main);
    cr_assert_eq(worker_stop(main), WORKER_OK);
    /* STOP_THREAD is queued on main: its loop must run (wait_thread, not a
     * plain join) for main to handle it. */
    int err = 0;
    cr_assert_eq(worker_wait_thread(c, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_not(worker_is_running(c));
    /* main itself goes on: its waits do not return WORKER_EXIT. */
    cr_assert_eq(worker_wait_timeout(0.01), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(worker_current(), main);
    worker_unref(c);
}

/* ===================================================================== */
/* overlay                                                                */
/* ===================================================================== */

struct overlay_ctx {
    pthread_t main_thread;
    worker_t *self;
    bool on_main_thread;
    bool current_is_self;
    bool is_running_inside;
    int event_rc;
    void *event_data;
    worker_t *child_parent;
};

static int overlay_task(void *arg, void **result)
{
    struct overlay_ctx *o = arg;
    o->on_main_thread = pthread_equal(pthread_self(), o->main_thread);
    o->current_is_self = worker_current() == o->self;
    o->is_running_inside = worker_is_running(o->self);
    worker_fire(worker_current(), "SELF", TU_PTR(99));
    o->event_rc = worker_wait_event("SELF", TU_WAIT, NULL, &o->event_data);
    worker_t *c = worker_spawn(NULL, NULL, NULL);
    o->child_parent = worker_parent(c);
    worker_unref(c); /* stopped and joined by this worker's end */
    *result = TU_PTR(42);
    return 0;
}

Test(lifecycle, overlay_runs_on_calling_thread, .timeout = 10)
{
    worker_t *main = tu_main();
    struct overlay_ctx o = { .main_thread = pthread_self() };
    worker_t *w = worker_new(overlay_task, &o, NULL);
    cr_assert_not_null(w);
    o.self = w;
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    cr_assert(o.on_main_thread);
    cr_assert(o.current_is_self);
    cr_assert(o.is_running_inside);
    cr_assert_eq(o.event_rc, WORKER_OK);
    cr_assert_eq(TU_INT(o.event_data), 99);
    cr_assert_eq(o.child_parent, w, "default parent inside an overlay task");
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(worker_children_count(w), 0);
    int err = -1;
    void *ret = NULL;
    cr_assert_eq(worker_wait_thread(w, &err, &ret), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(TU_INT(ret), 42);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_current(), main, "back to the main root worker");
    cr_assert(worker_is_main(NULL));
    worker_unref(w);
}

/* What worker_is_main says inside an overlay (on the calling thread). */
struct overlay_main_ctx {
    worker_t *self;
    worker_t *root; /* the main thread's root worker, or NULL */
    bool current;
    bool self_is_main;
    bool root_is_main;
};

static int overlay_main_task(void *arg, void **result)
{
    (void)result;
    struct overlay_main_ctx *o = arg;
    o->current = worker_is_main(NULL);
    o->self_is_main = worker_is_main(o->self);
    o->root_is_main = o->root && worker_is_main(o->root);
    return 0;
}

static void *overlay_on_a_pthread(void *arg)
{
    struct overlay_main_ctx *o = arg;
    return TU_PTR(worker_start_overlay(o->self));
}

/* As in the original, an overlay makes the main thread a proper worker:
 * while it runs there it is the main thread's worker (and the root worker
 * under it is not); an overlay on another thread is not. */
Test(lifecycle, overlay_on_the_main_thread_is_main, .timeout = 10)
{
    worker_t *main = tu_main();
    struct overlay_main_ctx o = { .root = main };
    worker_t *w = worker_new(overlay_main_task, &o, NULL);
    cr_assert_not_null(w);
    o.self = w;
    cr_assert_not(worker_is_main(w));
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    cr_assert(o.current, "worker_is_main(NULL) inside an overlay on the main thread");
    cr_assert(o.self_is_main);
    cr_assert_not(o.root_is_main, "the root worker is under the overlay");
    cr_assert_not(worker_is_main(w), "the overlay has ended");
    cr_assert(worker_is_main(NULL));
    cr_assert(worker_is_main(main));

    /* The same worker overlaid on a plain pthread is not main. */
    o = (struct overlay_main_ctx) { .self = w, .current = true, .self_is_main = true };
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, overlay_on_a_pthread, &o), 0);
    void *rc = NULL;
    pthread_join(thread, &rc);
    cr_assert_eq(TU_INT(rc), WORKER_OK);
    cr_assert_not(o.current);
    cr_assert_not(o.self_is_main);
    cr_assert(worker_is_main(main));
    worker_unref(w);
}

static int stop_target_task(void *arg, void **result)
{
    (void)result;
    worker_t **target = arg;
    return worker_stop(*target);
}

static int overlay_stopped_task(void *arg, void **result)
{
    (void)result;
    worker_opts np = { .no_parent = true };
    worker_t *h = worker_spawn(stop_target_task, arg, &np);
    int rc = worker_wait_forever();
    worker_join(h);
    worker_unref(h);
    return rc;
}

Test(lifecycle, overlay_stopped_from_another_worker, .timeout = 10)
{
    worker_t *w = NULL;
    w = worker_new(overlay_stopped_task, &w, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_not(worker_is_running(w));
    /* The main thread's own worker was not stopped. */
    cr_assert_eq(worker_wait_timeout(0.01), WORKER_OK);
    worker_unref(w);
}

static int overlay_nested_start(void *arg, void **result)
{
    (void)result;
    worker_t **self = arg;
    intptr_t ok = worker_start(*self) == WORKER_ESTATE
        && worker_start_overlay(*self) == WORKER_ESTATE && worker_join(*self) == WORKER_EDEADLK;
    *result = TU_PTR(ok);
    return 0;
}

Test(lifecycle, overlay_can_restart_and_refuses_a_running_worker, .timeout = 10)
{
    worker_t *w = NULL;
    w = worker_new(overlay_nested_start, &w, NULL);
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    void *ret = NULL;
    cr_assert_eq(worker_wait_thread(w, NULL, &ret), WORKER_OK);
    cr_assert_eq(TU_INT(ret), 1);
    /* Overlay again on the ended worker, then as a thread. */
    ret = NULL;
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    cr_assert_eq(worker_wait_thread(w, NULL, &ret), WORKER_OK);
    cr_assert_eq(TU_INT(ret), 1);
    ret = NULL;
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_wait_thread(w, NULL, &ret), WORKER_OK);
    cr_assert_eq(TU_INT(ret), 1);
    worker_unref(w);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

Test(lifecycle, bad_input_null_handles, .timeout = 10)
{
    cr_assert_eq(worker_start(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_start_overlay(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_stop(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_pause(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_resume(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_join(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_wait_thread(NULL, NULL, NULL), WORKER_EINVAL);
    cr_assert_not(worker_is_running(NULL));
    cr_assert_not(worker_is_daemon(NULL));
    cr_assert_null(worker_parent(NULL));
    cr_assert_eq(worker_children_count(NULL), 0);
    (void)worker_name(NULL); /* must not crash; value unspecified */
    cr_assert_null(worker_ref(NULL));
    worker_unref(NULL);
}

Test(lifecycle, bad_input_options, .timeout = 10)
{
    worker_opts bad_daemon = { .daemon = 7 };
    cr_assert_null(worker_new(NULL, NULL, &bad_daemon));
    cr_assert_null(worker_spawn(NULL, NULL, &bad_daemon));
    worker_opts neg_daemon = { .daemon = -1 };
    cr_assert_null(worker_new(NULL, NULL, &neg_daemon));

    worker_t *p = worker_new(NULL, NULL, NULL);
    worker_opts both = { .parent = p, .no_parent = true };
    cr_assert_null(worker_new(NULL, NULL, &both));
    cr_assert_null(worker_spawn(NULL, NULL, &both));
    cr_assert_eq(worker_children_count(p), 0);

    /* Zero-filled options are the defaults. */
    worker_opts zero;
    memset(&zero, 0, sizeof zero);
    worker_t *z = worker_new(NULL, NULL, &zero);
    cr_assert_not_null(z);
    cr_assert_null(worker_parent(z));
    cr_assert_not(worker_is_daemon(z));
    worker_unref(z);
    worker_unref(p);
}

Test(lifecycle, bad_input_root_workers, .timeout = 10)
{
    worker_t *main = tu_main();
    cr_assert_not_null(main);
    cr_assert_eq(worker_start(main), WORKER_EINVAL);
    cr_assert_eq(worker_start_overlay(main), WORKER_EINVAL);
    cr_assert_eq(worker_join(main), WORKER_EINVAL);
    cr_assert_eq(worker_wait_thread(main, NULL, NULL), WORKER_EINVAL);
    /* The main root worker is running and answers as usual. */
    cr_assert(worker_is_running(main));
    cr_assert_not(worker_is_daemon(main));
    cr_assert_null(worker_parent(main));
    cr_assert_not_null(worker_name(main));
}

static void *pthread_root_checks(void *arg)
{
    (void)arg;
    worker_t *me = worker_current();
    intptr_t ok = me != NULL && !worker_is_main(NULL) && !worker_is_main(me)
        && worker_start(me) == WORKER_EINVAL && worker_join(me) == WORKER_EINVAL
        && worker_wait_thread(me, NULL, NULL) == WORKER_EINVAL
        && worker_start_overlay(me) == WORKER_EINVAL;
    return TU_PTR(ok);
}

Test(lifecycle, bad_input_pthread_root_worker, .timeout = 10)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pthread_root_checks, NULL), 0);
    void *ok = NULL;
    pthread_join(t, &ok);
    cr_assert_eq(TU_INT(ok), 1);
}

Test(lifecycle, bad_input_start_running_worker, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_eq(worker_start(w), WORKER_ESTATE);
    cr_assert_eq(worker_start_overlay(w), WORKER_ESTATE);
    cr_assert(worker_is_running(w));
    tu_stop_join_unref(w);
}

static int self_join_task(void *arg, void **result)
{
    (void)arg;
    worker_t *me = worker_current();
    intptr_t ok
        = worker_join(me) == WORKER_EDEADLK && worker_wait_thread(me, NULL, NULL) == WORKER_EDEADLK;
    *result = TU_PTR(ok);
    return 0;
}

Test(lifecycle, join_self_is_edeadlk, .timeout = 10)
{
    worker_t *w = worker_spawn(self_join_task, NULL, NULL);
    void *ret = NULL;
    cr_assert_eq(worker_wait_thread(w, NULL, &ret), WORKER_OK);
    cr_assert_eq(TU_INT(ret), 1);
    worker_unref(w);
}

Test(lifecycle, pause_twice_then_one_resume, .timeout = 10)
{
    struct counter_ctx c = { .main = tu_main() };
    worker_t *w = worker_new(counter_task, &c, NULL);
    worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_ack_listener, c.main, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    int frozen = atomic_load(&c.count);
    cr_assert_eq(worker_resume(w), WORKER_OK);
    intptr_t goal = frozen + 3;
    cr_assert_eq(worker_wait_until(tick_at_least, &goal, TU_WAIT, NULL), WORKER_OK,
        "a second pause must not need a second resume");
    tu_stop_join_unref(w);
}

Test(lifecycle, resume_without_pause_is_harmless, .timeout = 10)
{
    struct counter_ctx c = { .main = tu_main() };
    worker_t *w = worker_spawn(counter_task, &c, NULL);
    cr_assert_eq(worker_resume(w), WORKER_OK);
    intptr_t goal = 3;
    cr_assert_eq(worker_wait_until(tick_at_least, &goal, TU_WAIT, NULL), WORKER_OK);
    tu_stop_join_unref(w);
}

/* ===================================================================== */
/* failure reports on stderr                                              */
/* ===================================================================== */

static char *read_redirected_stderr(void)
{
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

static int exit_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return WORKER_EXIT;
}

/* docs/semantics.md: "A failed task (non-zero return other than
 * WORKER_EXIT) prints one line on stderr unless quiet:
 * libworker-actor: worker '<name>' failed: <WORKER_E... or number> (<message>)" */
Test(lifecycle, failed_task_reported_on_stderr_unless_quiet, .init = cr_redirect_stderr,
    .timeout = 10)
{
    worker_opts quiet = { .name = "hush", .quiet = true };
    worker_t *q = worker_spawn(failing_task, TU_PTR(WORKER_EINVAL), &quiet);
    worker_join(q);
    worker_opts named = { .name = "ok" };
    worker_t *ok = worker_spawn(result_task, NULL, &named);
    worker_join(ok);
    worker_t *ex = worker_spawn(exit_task, NULL, &named);
    worker_join(ex);
    worker_t *st = worker_spawn(NULL, NULL, &named);
    worker_stop(st);
    worker_join(st);
    worker_opts boom = { .name = "boom" };
    worker_t *b1 = worker_spawn(failing_task, TU_PTR(WORKER_EINVAL), &boom);
    worker_join(b1);
    worker_opts boom2 = { .name = "boom2" };
    worker_t *b2 = worker_spawn(failing_task, TU_PTR(17), &boom2);
    worker_join(b2);

    char expect[512];
    snprintf(expect, sizeof expect,
        "libworker-actor: worker 'boom' failed: WORKER_EINVAL (%s)\n"
        "libworker-actor: worker 'boom2' failed: 17 (%s)\n",
        worker_strerror(WORKER_EINVAL), worker_strerror(17));
    const char *got = read_redirected_stderr();
    cr_assert_str_eq(got, expect, "stderr was:\n%s", got);
    worker_t *all[] = { q, ok, ex, st, b1, b2 };
    for (int i = 0; i < 6; i++)
        worker_unref(all[i]);
}

static int fail_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    return TU_INT(userdata);
}

Test(
    lifecycle, listener_error_reported_once_unless_quiet, .init = cr_redirect_stderr, .timeout = 10)
{
    worker_opts quiet = { .quiet = true };
    worker_t *q = worker_new(NULL, NULL, &quiet);
    worker_listen(q, "E", fail_listener, TU_PTR(5), NULL);
    tu_sync_install(q);
    worker_start(q);
    cr_assert_eq(worker_fire(q, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(q), WORKER_OK);
    cr_assert_str_eq(read_redirected_stderr(), "", "a quiet worker printed");

    worker_opts loud = { .name = "loud" };
    worker_t *l = worker_new(NULL, NULL, &loud);
    worker_listen(l, "E", fail_listener, TU_PTR(5), NULL);
    tu_sync_install(l);
    worker_start(l);
    cr_assert_eq(worker_fire(l, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(l), WORKER_OK);
    const char *got = read_redirected_stderr();
    size_t lines = 0;
    for (const char *c = got; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 1, "expected one line, stderr was:\n%s", got);
    cr_assert_not_null(
        strstr(got, "libworker-actor: worker 'loud'"), "the report names the worker: %s", got);
    cr_assert_not_null(strstr(got, "listener failed"), "stderr was: %s", got);
    tu_stop_join_unref(q);
    tu_stop_join_unref(l);
}

/* ===================================================================== */
/* the system refuses a thread                                            */
/* ===================================================================== */

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static long vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &pages) != 1)
        pages = -1;
    fclose(f);
    return pages * 4096;
}
#endif

Test(lifecycle, start_gives_eagain_when_the_system_refuses_a_thread, .timeout = 30)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    cr_skip_test("RLIMIT_AS cannot be used under sanitizers");
#else
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL)
        cr_skip_test("RLIMIT_AS cannot be used under valgrind");
    /* Warm up what the library allocates once (root worker, pools). */
    worker_t *warm = worker_spawn(NULL, NULL, NULL);
    tu_stop_join_unref(warm);
    tu_main();

    struct rlimit old;
    getrlimit(RLIMIT_AS, &old);
    long vm = vm_bytes();
    cr_assert_gt(vm, 0);
    struct rlimit lim = { .rlim_cur = (rlim_t)vm + 64L * 1024 * 1024, .rlim_max = old.rlim_max };
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);

    enum { MAX = 400 };
    static worker_t *ws[MAX];
    int n = 0, rc = WORKER_OK;
    worker_t *refused = NULL;
    while (n < MAX) {
        worker_t *w = worker_new(NULL, NULL, NULL);
        if (w == NULL)
            break; /* memory ran out before threads did: inconclusive */
        rc = worker_start(w);
        if (rc != WORKER_OK) {
            refused = w;
            break;
        }
        ws[n++] = w;
    }
    setrlimit(RLIMIT_AS, &old);
    cr_assert_not_null(refused, "no refusal after %d workers", n);
    cr_assert_eq(rc, WORKER_EAGAIN, "worker_start returned %s", worker_err_name(rc));
    cr_assert_not(worker_is_running(refused));
    cr_assert_eq(worker_join(refused), WORKER_OK);
    cr_assert_eq(worker_fire(refused, "E", NULL), WORKER_EREJECTED);
    /* Nothing was left half-started: with the limit lifted it starts. */
    cr_assert_eq(worker_start(refused), WORKER_OK);
    tu_stop_join_unref(refused);
    for (int i = 0; i < n; i++)
        worker_stop(ws[i]);
    for (int i = 0; i < n; i++) {
        worker_join(ws[i]);
        worker_unref(ws[i]);
    }
#endif
}
