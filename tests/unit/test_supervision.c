/* Supervision (supervision.h): links, and supervisors with their restart
 * strategies. (docs/supervision.md, docs/semantics.md "Links" and
 * "Supervisors".)
 *
 * Synchronisation: the main thread's root worker (which always traps
 * links) waits for events with worker_wait_event() (TU_WAIT seconds at
 * most); workers report through ACK events or context structs read after
 * a join. "Nothing came" is proven by joining the sender first and then
 * handling what is queued with worker_update(). */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <worker/worker.h>

static const worker_opts quiet = { .quiet = true };

static int fail_at_once(void *arg, void **result)
{
    (void)result;
    return TU_INT(arg);
}

/* ---- links ----------------------------------------------------------- */

/* Links to the worker in `arg`, ACKs the main thread with the link's
 * result, then waits forever; records what stopped it. */
struct linker {
    worker_t *main;
    worker_t *other;
    int link_rc;
    int wait_rc;
    worker_t *stop_sender;
    atomic_int linked_exits;
    worker_down_t down;
};

static int on_stop_record(const worker_event_t *e, void *userdata)
{
    struct linker *l = userdata;
    l->stop_sender = worker_event_target(e);
    return 0;
}

static int on_linked_exit(const worker_event_t *e, void *userdata)
{
    struct linker *l = userdata;
    memcpy(&l->down, worker_event_data(e), sizeof l->down);
    atomic_fetch_add(&l->linked_exits, 1);
    worker_fire(l->main, TU_ACK, TU_PTR(100));
    return 0;
}

static int linker_task(void *arg, void **result)
{
    (void)result;
    struct linker *l = arg;
    worker_on(WORKER_EV_STOP_THREAD, on_stop_record, l, NULL);
    worker_on(WORKER_EV_LINKED_EXIT, on_linked_exit, l, NULL);
    l->link_rc = worker_link(l->other);
    tu_ack(l->main, 1);
    l->wait_rc = worker_wait_forever();
    return l->wait_rc;
}

static worker_t *spawn_linker(struct linker *l, worker_t *other, bool trap)
{
    memset(l, 0, sizeof *l);
    l->main = tu_main();
    l->other = other;
    worker_opts o = { .quiet = true, .trap_links = trap };
    worker_t *w = worker_spawn(linker_task, l, &o);
    cr_assert_not_null(w);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(l->link_rc, WORKER_OK);
    return w;
}

Test(link, failed_end_stops_the_linked_worker, .timeout = 10)
{
    worker_t *b = worker_spawn(tu_go_task, NULL, &quiet);
    struct linker l;
    worker_t *a = spawn_linker(&l, b, false);
    cr_assert_eq(worker_fire(b, "GO", TU_PTR(7)), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(a, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the linked worker was stopped");
    cr_assert_eq(l.stop_sender, b, "its STOP_THREAD came from the failed worker");
    cr_assert_eq(atomic_load(&l.linked_exits), 0, "no LINKED_EXIT without trap_links");
    worker_join(b);
    worker_unref(a);
    worker_unref(b);
}

Test(link, stopped_end_stops_the_linked_worker, .timeout = 10)
{
    worker_t *b = worker_spawn(tu_task_forever, NULL, &quiet);
    struct linker l;
    worker_t *a = spawn_linker(&l, b, false);
    cr_assert_eq(worker_stop(b), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(a, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_eq(l.stop_sender, b);
    worker_join(b);
    worker_unref(a);
    worker_unref(b);
}

Test(link, links_go_both_ways, .timeout = 10)
{
    /* a makes the link and fails: b, the other end, is stopped. */
    worker_t *b = worker_spawn(tu_task_forever, NULL, &quiet);
    struct linker l;
    worker_t *a = spawn_linker(&l, b, false);
    cr_assert_eq(worker_fire(a, WORKER_EV_STOP_THREAD, NULL), WORKER_OK); /* a ends: WORKER_EXIT */
    int err = 0;
    cr_assert_eq(worker_wait_thread(b, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the worker linked to was stopped too");
    worker_join(a);
    worker_unref(a);
    worker_unref(b);
}

static int ping_ack(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), TU_ACK, TU_PTR(42));
    return 0;
}

Test(link, successful_end_only_removes_the_link, .timeout = 10)
{
    worker_t *b = worker_spawn(tu_go_task, NULL, &quiet);
    struct linker l;
    worker_t *a = spawn_linker(&l, b, false);
    worker_listen(a, "PING", ping_ack, NULL, NULL);
    cr_assert_eq(worker_fire(b, "GO", TU_PTR(0)), WORKER_OK);
    cr_assert_eq(worker_join(b), WORKER_OK); /* its end sequence told a (or not) */
    cr_assert_eq(worker_fire(a, "PING", NULL), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 42);
    cr_assert(worker_is_running(a), "a success does not stop the linked worker");
    cr_assert_eq(l.stop_sender, NULL);
    worker_stop(a);
    worker_join(a);
    cr_assert_eq(atomic_load(&l.linked_exits), 0);
    worker_unref(a);
    worker_unref(b);
}

Test(link, trap_links_gets_linked_exit, .timeout = 10)
{
    worker_t *b = worker_spawn(tu_go_task, NULL, &quiet);
    struct linker l;
    worker_t *a = spawn_linker(&l, b, true);
    cr_assert_eq(worker_fire(b, "GO", TU_PTR(9)), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 100);
    cr_assert_eq(l.down.worker, b);
    cr_assert_eq(l.down.err, 9);
    cr_assert_eq(TU_INT(l.down.ret), 5);
    cr_assert(worker_is_running(a), "a worker that traps links is not stopped");
    worker_stop(a);
    worker_join(a);
    cr_assert_eq(atomic_load(&l.linked_exits), 1);
    cr_assert_eq(l.stop_sender, tu_main(), "the only stop was ours");
    worker_join(b);
    worker_unref(a);
    worker_unref(b);
}

struct exits {
    int n;
    worker_t *sender;
    worker_down_t down;
};

static int count_exit(const worker_event_t *e, void *userdata)
{
    struct exits *x = userdata;
    x->n++;
    x->sender = worker_event_target(e);
    memcpy(&x->down, worker_event_data(e), sizeof x->down);
    return 0;
}

Test(link, linking_an_ended_worker_acts_at_once, .timeout = 10)
{
    tu_main();
    struct exits x = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_LINKED_EXIT, count_exit, &x, NULL);
    worker_t *failed = worker_spawn(fail_at_once, TU_PTR(11), &quiet);
    worker_join(failed);
    cr_assert_eq(worker_link(failed), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(x.n, 1, "LINKED_EXIT at once (the root worker traps links)");
    cr_assert_eq(x.sender, failed);
    cr_assert_eq(x.down.err, 11);
    cr_assert_eq(worker_unlink(failed), WORKER_EINVAL, "the link acted: it is gone");

    worker_t *fine = worker_spawn(fail_at_once, TU_PTR(0), &quiet);
    worker_join(fine);
    cr_assert_eq(worker_link(fine), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(x.n, 1, "an end with err 0 sends nothing");
    cr_assert_eq(worker_unlink(fine), WORKER_EINVAL);

    worker_t *idle = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_link(idle), WORKER_ESTATE, "never started");
    cr_assert_eq(worker_unlink(idle), WORKER_EINVAL);

    worker_unlisten(worker_current(), li);
    worker_unref(idle);
    worker_unref(fine);
    worker_unref(failed);
}

Test(link, unlink_removes_both_ends, .timeout = 10)
{
    tu_main();
    struct exits x = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_LINKED_EXIT, count_exit, &x, NULL);
    worker_t *b = worker_spawn(tu_go_task, NULL, &quiet);
    cr_assert_eq(worker_link(b), WORKER_OK);
    cr_assert_eq(worker_link(b), WORKER_OK, "linking twice is linking once");
    cr_assert_eq(worker_unlink(b), WORKER_OK);
    cr_assert_eq(worker_unlink(b), WORKER_EINVAL);
    cr_assert_eq(worker_fire(b, "GO", TU_PTR(3)), WORKER_OK);
    cr_assert_eq(worker_join(b), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(x.n, 0, "no LINKED_EXIT after unlink");
    worker_unlisten(worker_current(), li);
    worker_unref(b);
}

Test(link, bad_input, .timeout = 10)
{
    tu_main();
    cr_assert_eq(worker_link(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_unlink(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_link(worker_current()), WORKER_EINVAL, "itself");
    cr_assert_eq(worker_link(tu_main()), WORKER_EINVAL, "a root worker");
}

/* b fires N events at the main thread and fails: LINKED_EXIT comes after
 * all of them. */
static int fire_then_fail(void *arg, void **result)
{
    (void)result;
    worker_t *to = arg;
    if (worker_wait_event("GO", TU_WAIT, NULL, NULL) != WORKER_OK)
        return -1;
    for (int i = 0; i < 1000; i++)
        worker_fire(to, "N", TU_PTR(i));
    return 13;
}

struct order {
    int n;
    int n_at_exit;
};

static int on_n(const worker_event_t *e, void *userdata)
{
    struct order *o = userdata;
    if (TU_INT(worker_event_data(e)) == o->n)
        o->n++;
    return 0;
}

static int on_exit_order(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct order *o = userdata;
    o->n_at_exit = o->n;
    return 0;
}

Test(link, linked_exit_comes_after_the_ended_workers_events, .timeout = 10)
{
    worker_t *me = tu_main();
    struct order o = { 0, -1 };
    worker_listener_t *l1 = worker_on("N", on_n, &o, NULL);
    worker_listener_t *l2 = worker_on(WORKER_EV_LINKED_EXIT, on_exit_order, &o, NULL);
    worker_t *b = worker_spawn(fire_then_fail, me, &quiet);
    cr_assert_eq(worker_link(b), WORKER_OK);
    cr_assert_eq(worker_fire(b, "GO", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_LINKED_EXIT, TU_WAIT, b, NULL), WORKER_OK);
    cr_assert_eq(o.n_at_exit, 1000, "LINKED_EXIT after all 1000 events, in order");
    worker_unlisten(me, l1);
    worker_unlisten(me, l2);
    worker_join(b);
    worker_unref(b);
}

Test(link, a_chain_of_links_stops_every_worker, .timeout = 10)
{
    worker_t *c = worker_spawn(tu_go_task, NULL, &quiet);
    struct linker lb, la;
    worker_t *b = spawn_linker(&lb, c, false);
    worker_t *a = spawn_linker(&la, b, false);
    cr_assert_eq(worker_fire(c, "GO", TU_PTR(21)), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(a, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_eq(la.stop_sender, b, "b's stopped end (WORKER_EXIT) went on to a");
    cr_assert_eq(lb.stop_sender, c);
    worker_join(b);
    worker_join(c);
    worker_unref(a);
    worker_unref(b);
    worker_unref(c);
}

/* The race: the other worker ends while the link is being made. Whichever
 * wins, exactly one LINKED_EXIT comes, with the right err. */
Test(link, link_to_a_worker_that_ends_meanwhile, .timeout = 60)
{
    worker_t *me = tu_main();
    struct exits x = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_LINKED_EXIT, count_exit, &x, NULL);
    enum { ROUNDS = 300 };
    for (int i = 0; i < ROUNDS; i++) {
        worker_t *b = worker_spawn(fail_at_once, TU_PTR(17), &quiet);
        cr_assert_not_null(b);
        int rc = worker_link(b);
        cr_assert_eq(rc, WORKER_OK, "round %d: %d", i, rc);
        cr_assert_eq(worker_wait_event(WORKER_EV_LINKED_EXIT, TU_WAIT, b, NULL), WORKER_OK,
            "round %d: no LINKED_EXIT", i);
        cr_assert_eq(x.down.err, 17);
        cr_assert_eq(x.down.worker, b);
        worker_join(b);
        worker_unref(b);
    }
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(x.n, ROUNDS, "one LINKED_EXIT per link, none twice");
    worker_unlisten(me, li);
}

/* ---- supervisors ----------------------------------------------------- */

/* A child's context: counts its runs and the WORK events it handled (by a
 * permanent listener put on at its first run); each run fires RUN at
 * `main`, then waits for FAIL and returns FAIL's data as its code. */
struct kc {
    worker_t *main;
    atomic_int runs;
    atomic_int handled;
    atomic_int exits; /* runs that ended with WORKER_EXIT */
    struct kc *before, *after; /* neighbours in start order (order test) */
    const char *before_name; /* the child spec name of `before` */
    worker_t *self;
    bool saw_before_running; /* at each run: the one before was running */
    bool saw_after_ended; /* at each stop: the one after had ended */
    int seen, waited; /* main thread: RUN events seen, and waited for */
};

static int kid_on_work(const worker_event_t *e, void *userdata)
{
    (void)e;
    atomic_fetch_add(&((struct kc *)userdata)->handled, 1);
    return 0;
}

static int kid_task(void *arg, void **result)
{
    (void)result;
    struct kc *c = arg;
    c->self = worker_current();
    if (atomic_fetch_add(&c->runs, 1) == 0) { /* permanent listeners: they outlive a run */
        worker_listen(c->self, "WORK", kid_on_work, c, NULL);
        tu_sync_install(c->self);
    }
    if (c->before) {
        /* Its handle from the supervisor, not from its task (which may not
         * have run its first line yet although its run has begun). */
        worker_t *prev = worker_supervisor_child(worker_parent(c->self), c->before_name);
        c->saw_before_running = prev && worker_is_running(prev);
    }
    if (c->main)
        worker_fire(c->main, "RUN", c);
    void *d = NULL;
    int rc = worker_wait_event("FAIL", -1, NULL, &d);
    if (rc == WORKER_EXIT) {
        atomic_fetch_add(&c->exits, 1);
        if (c->after)
            c->saw_after_ended = !c->after->self || !worker_is_running(c->after->self);
        return rc;
    }
    return rc != WORKER_OK ? rc : TU_INT(d);
}

static const worker_opts kid_quiet = { .quiet = true };

static int count_run(const worker_event_t *e, void *userdata);

static worker_child_spec spec(const char *name, struct kc *c, int restart)
{
    static atomic_bool listening;
    c->main = tu_main();
    if (!atomic_exchange(&listening, true))
        worker_listen(c->main, "RUN", count_run, NULL, NULL);
    return (worker_child_spec) {
        .name = name, .task = kid_task, .arg = c, .restart = restart, .opts = &kid_quiet
    };
}

/* Wait for the RUN of the child with context c. */
/* RUN events are counted by a listener on the main thread's root worker,
 * so one that comes while the main thread waits for something else (an
 * answer of the supervisor) counts too. */
static int count_run(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    ((struct kc *)worker_event_data(e))->seen++;
    return 0;
}

#define wait_run(c) wait_run_at(c, __LINE__)
static void wait_run_at(struct kc *c, int line)
{
    int target = ++c->waited;
    while (c->seen < target)
        cr_assert_eq(worker_wait_event("RUN", TU_WAIT, NULL, NULL), WORKER_OK,
            "no RUN (line %d, run %d)", line, target);
}

static worker_t *sup_of_three(struct kc c[3], int strategy, const worker_sup_opts *extra)
{
    memset(c, 0, 3 * sizeof *c);
    worker_child_spec specs[3] = { spec("a", &c[0], WORKER_RESTART_PERMANENT),
        spec("b", &c[1], WORKER_RESTART_PERMANENT), spec("c", &c[2], WORKER_RESTART_PERMANENT) };
    worker_sup_opts o = extra ? *extra : (worker_sup_opts) { 0 };
    o.strategy = strategy;
    o.name = "sup";
    worker_t *s = worker_supervisor(specs, 3, &o);
    cr_assert_not_null(s);
    for (int i = 0; i < 3; i++)
        wait_run(&c[i]);
    return s;
}

/* When this returns, the supervisor has handled every event queued on it
 * before (a request is handled in mailbox order). */
static void sup_sync(worker_t *s)
{
    cr_assert_eq(worker_supervisor_remove(s, "no such child"), WORKER_EINVAL);
}

static void stop_sup(worker_t *s, int expect)
{
    cr_assert_eq(worker_stop(s), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(s, &err, NULL), WORKER_OK);
    cr_assert_eq(err, expect, "the supervisor ended with %d", err);
    worker_unref(s);
}

Test(supervisor, starts_in_order_and_stops_in_reverse, .timeout = 20)
{
    struct kc c[3];
    memset(c, 0, sizeof c);
    c[1].before = &c[0];
    c[2].before = &c[1];
    c[1].before_name = "a";
    c[2].before_name = "b";
    c[0].after = &c[1];
    c[1].after = &c[2];
    worker_child_spec specs[3] = { spec("a", &c[0], WORKER_RESTART_PERMANENT),
        spec("b", &c[1], WORKER_RESTART_PERMANENT), spec("c", &c[2], WORKER_RESTART_PERMANENT) };
    worker_t *s = worker_supervisor(specs, 3, NULL);
    cr_assert_not_null(s);
    for (int i = 0; i < 3; i++)
        wait_run(&c[i]);
    cr_assert(c[1].saw_before_running && c[2].saw_before_running, "started in order");
    cr_assert_eq(worker_supervisor_child(s, "b"), c[1].self);
    cr_assert_eq(worker_parent(c[1].self), s, "the supervisor is the children's parent");
    stop_sup(s, WORKER_EXIT);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&c[i].exits), 1);
    cr_assert(c[0].saw_after_ended && c[1].saw_after_ended, "stopped last started first");
}

Test(supervisor, one_for_one_restarts_only_the_failed_child, .timeout = 20)
{
    struct kc c[3];
    worker_t *s = sup_of_three(c, WORKER_ONE_FOR_ONE, NULL);
    worker_t *b = worker_supervisor_child(s, "b");
    cr_assert_eq(worker_fire(b, "FAIL", TU_PTR(7)), WORKER_OK);
    wait_run(&c[1]);
    cr_assert_eq(worker_supervisor_child(s, "b"), b, "the same worker_t");
    cr_assert_eq(c[1].self, b);
    cr_assert_eq(atomic_load(&c[0].runs), 1);
    cr_assert_eq(atomic_load(&c[1].runs), 2);
    cr_assert_eq(atomic_load(&c[2].runs), 1);
    stop_sup(s, WORKER_EXIT);
}

Test(supervisor, one_for_all_restarts_every_child, .timeout = 20)
{
    struct kc c[3];
    worker_t *s = sup_of_three(c, WORKER_ONE_FOR_ALL, NULL);
    cr_assert_eq(worker_fire(worker_supervisor_child(s, "b"), "FAIL", TU_PTR(7)), WORKER_OK);
    for (int i = 0; i < 3; i++)
        wait_run(&c[i]);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&c[i].runs), 2, "child %d", i);
    cr_assert_eq(atomic_load(&c[0].exits), 1, "a was stopped for the group");
    cr_assert_eq(atomic_load(&c[2].exits), 1, "c was stopped for the group");
    stop_sup(s, WORKER_EXIT);
}

Test(supervisor, rest_for_one_restarts_the_child_and_those_after_it, .timeout = 20)
{
    struct kc c[3];
    worker_t *s = sup_of_three(c, WORKER_REST_FOR_ONE, NULL);
    cr_assert_eq(worker_fire(worker_supervisor_child(s, "b"), "FAIL", TU_PTR(7)), WORKER_OK);
    wait_run(&c[1]);
    wait_run(&c[2]);
    cr_assert_eq(tu_sync(worker_supervisor_child(s, "a")), WORKER_OK);
    cr_assert_eq(atomic_load(&c[0].runs), 1, "a, started before b, runs on");
    cr_assert_eq(atomic_load(&c[1].runs), 2);
    cr_assert_eq(atomic_load(&c[2].runs), 2);
    stop_sup(s, WORKER_EXIT);
}

/* Two children fail at once under ONE_FOR_ALL: one group restart. */
Test(supervisor, two_children_failing_at_once_one_for_all, .timeout = 60)
{
    for (int round = 0; round < 20; round++) {
        struct kc c[3];
        worker_sup_opts o = { .intensity = 1 }; /* a second restart would end it */
        worker_t *s = sup_of_three(c, WORKER_ONE_FOR_ALL, &o);
        worker_fire(worker_supervisor_child(s, "a"), "FAIL", TU_PTR(3));
        worker_fire(worker_supervisor_child(s, "c"), "FAIL", TU_PTR(4));
        for (int i = 0; i < 3; i++)
            wait_run(&c[i]);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(atomic_load(&c[i].runs), 2, "round %d child %d", round, i);
        cr_assert(worker_is_running(s), "one restart, within the intensity");
        stop_sup(s, WORKER_EXIT);
        cr_assert_eq(worker_update(), WORKER_OK); /* no RUN of this round left */
    }
}

Test(supervisor, restart_types, .timeout = 20)
{
    struct kc p = { 0 }, t = { 0 }, tmp = { 0 };
    worker_child_spec specs[3] = { spec("p", &p, WORKER_RESTART_PERMANENT),
        spec("t", &t, WORKER_RESTART_TRANSIENT), spec("tmp", &tmp, WORKER_RESTART_TEMPORARY) };
    worker_sup_opts o = { .intensity = 100 };
    worker_t *s = worker_supervisor(specs, 3, &o);
    wait_run(&p);
    wait_run(&t);
    wait_run(&tmp);
    worker_t *pw = worker_supervisor_child(s, "p");
    worker_t *tw = worker_ref(worker_supervisor_child(s, "t"));
    worker_t *tmpw = worker_ref(worker_supervisor_child(s, "tmp"));

    /* PERMANENT: also after a success. */
    worker_fire(pw, "FAIL", TU_PTR(0));
    wait_run(&p);
    /* TRANSIENT: after an error, and after a stop by someone else. */
    worker_fire(tw, "FAIL", TU_PTR(5));
    wait_run(&t);
    worker_stop(tw);
    wait_run(&t);
    cr_assert_eq(atomic_load(&t.runs), 3);
    /* ... not after a success. */
    worker_monitor(tw);
    worker_fire(tw, "FAIL", TU_PTR(0));
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, tw, NULL), WORKER_OK);
    sup_sync(s); /* the supervisor has handled its end */
    cr_assert(!worker_is_running(tw));
    cr_assert_eq(worker_supervisor_child(s, "t"), tw, "a TRANSIENT that ended well stays known");
    cr_assert_eq(worker_fire(tw, "WORK", NULL), WORKER_EREJECTED, "and refuses events");
    /* TEMPORARY: never, and forgotten. */
    worker_monitor(tmpw);
    worker_fire(tmpw, "FAIL", TU_PTR(9));
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, tmpw, NULL), WORKER_OK);
    sup_sync(s);
    cr_assert_null(worker_supervisor_child(s, "tmp"));
    cr_assert_eq(worker_fire(tmpw, "WORK", NULL), WORKER_EREJECTED);
    cr_assert_eq(atomic_load(&tmp.runs), 1);
    cr_assert_eq(atomic_load(&p.runs), 2);
    stop_sup(s, WORKER_EXIT);
    worker_unref(tw);
    worker_unref(tmpw);
}

/* The intensity: the restart that would go over it is not made; the
 * supervisor stops the others and ends with WORKER_EINTENSITY, which its
 * parent sees. */
struct parent_ctx {
    struct kc c[2];
    worker_t *sup;
    int wait_rc, sup_err;
};

static int parent_of_sup(void *arg, void **result)
{
    (void)result;
    struct parent_ctx *p = arg;
    worker_child_spec specs[2] = { spec("x", &p->c[0], WORKER_RESTART_PERMANENT),
        spec("y", &p->c[1], WORKER_RESTART_PERMANENT) };
    worker_sup_opts o = { .intensity = 2, .period = 60 };
    p->sup = worker_supervisor(specs, 2, &o);
    tu_ack(p->c[0].main, 1);
    p->wait_rc = worker_wait_thread(p->sup, &p->sup_err, NULL);
    return p->sup_err;
}

Test(supervisor, intensity_ends_the_supervisor_with_eintensity, .timeout = 20)
{
    struct parent_ctx p;
    memset(&p, 0, sizeof p);
    p.c[0].main = p.c[1].main = tu_main();
    worker_t *parent = worker_spawn(parent_of_sup, &p, &quiet);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_not_null(p.sup);
    wait_run(&p.c[0]);
    wait_run(&p.c[1]);
    worker_t *x = worker_supervisor_child(p.sup, "x");
    for (int i = 0; i < 2; i++) {
        worker_fire(x, "FAIL", TU_PTR(1));
        wait_run(&p.c[0]);
    }
    worker_fire(x, "FAIL", TU_PTR(1)); /* the third restart in the period */
    int err = 0;
    cr_assert_eq(worker_wait_thread(parent, &err, NULL), WORKER_OK);
    cr_assert_eq(p.wait_rc, WORKER_OK);
    cr_assert_eq(p.sup_err, WORKER_EINTENSITY);
    cr_assert_eq(err, WORKER_EINTENSITY, "the parent saw it");
    cr_assert_eq(atomic_load(&p.c[0].runs), 3, "the restart over the intensity was not made");
    cr_assert_eq(atomic_load(&p.c[1].exits), 1, "the others were stopped");
    worker_unref(p.sup);
    worker_unref(parent);
}

Test(supervisor, backoff_doubles_up_to_its_maximum, .timeout = 20)
{
    struct kc c = { 0 };
    worker_child_spec sp = spec("k", &c, WORKER_RESTART_PERMANENT);
    worker_sup_opts o = { .intensity = 10, .period = 30, .backoff = 0.05, .backoff_max = 0.12 };
    worker_t *s = worker_supervisor(&sp, 1, &o);
    wait_run(&c);
    worker_t *k = worker_supervisor_child(s, "k");
    const double expect[] = { 0.05, 0.1, 0.12, 0.12 };
    for (int i = 0; i < 4; i++) {
        double t0 = tu_now();
        worker_fire(k, "FAIL", TU_PTR(1));
        wait_run(&c);
        double took = tu_now() - t0;
        cr_assert_geq(took, expect[i] * 0.95, "restart %d after %.3f s, expected %.3f s", i + 1,
            took, expect[i]);
    }
    stop_sup(s, WORKER_EXIT);
}

/* The mail of a restarting child: what was accepted before its end is
 * handled by that run's end (as for any worker); what is accepted while it
 * is down waits for its next run; each once. */
Test(supervisor, events_fired_while_down_go_to_the_next_run, .timeout = 20)
{
    struct kc c = { 0 };
    worker_child_spec sp = spec("k", &c, WORKER_RESTART_PERMANENT);
    worker_sup_opts o = { .backoff = 0.3 };
    worker_t *s = worker_supervisor(&sp, 1, &o);
    wait_run(&c);
    worker_t *k = worker_supervisor_child(s, "k");
    worker_monitor(k);
    /* FAIL then 100 WORK queued behind it: the run ends before them. */
    worker_fire(k, "FAIL", TU_PTR(2));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(worker_fire(k, "WORK", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, k, NULL), WORKER_OK);
    cr_assert(!worker_is_running(k), "down: not running");
    cr_assert_eq(worker_start(k), WORKER_ESTATE, "only its supervisor restarts it");
    cr_assert_eq(worker_pause(k), WORKER_EREJECTED);
    /* The WORKs accepted before its end were handled by that run's end
     * (it may have ended while they were being fired: the rest wait). */
    int before = atomic_load(&c.handled);
    cr_assert_leq(before, 100);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(worker_fire(k, "WORK", NULL), WORKER_OK, "accepted while it is down");
    cr_assert_eq(atomic_load(&c.handled), before, "nothing handled while it is down");
    wait_run(&c);
    cr_assert_eq(tu_sync(k), WORKER_OK);
    cr_assert_eq(atomic_load(&c.handled), 150, "every accepted event handled once");
    stop_sup(s, WORKER_EXIT);
}

/* What a restart keeps: permanent listeners and channel subscriptions;
 * not transient listeners, timers or monitors. */
static int count_transient(const worker_event_t *e, void *userdata)
{
    (void)e;
    atomic_fetch_add((atomic_int *)userdata, 1);
    return 0;
}

static void timer_fired(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

Test(supervisor, what_a_restart_keeps, .timeout = 20)
{
    struct kc c = { 0 };
    worker_child_spec sp = spec("k", &c, WORKER_RESTART_PERMANENT);
    worker_t *s = worker_supervisor(&sp, 1, NULL);
    wait_run(&c);
    worker_t *k = worker_supervisor_child(s, "k");
    atomic_int transient_n = 0, timer_n = 0;
    worker_listen_opts tr = { .transient = true };
    cr_assert_not_null(worker_listen(k, "WORK", count_transient, &transient_n, &tr));
    cr_assert_eq(worker_later(k, timer_fired, &timer_n, 0.2, NULL), WORKER_OK);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(ch, k), WORKER_OK);
    cr_assert_eq(worker_monitor(k), WORKER_OK);
    worker_fire(k, "FAIL", TU_PTR(1));
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, k, NULL), WORKER_OK);
    cr_assert_eq(worker_channel_pub(ch, "WORK", NULL), 1, "still subscribed");
    wait_run(&c);
    cr_assert_eq(tu_sync(k), WORKER_OK);
    cr_assert_eq(atomic_load(&c.handled), 1, "the permanent listener heard the pub");
    cr_assert_eq(atomic_load(&transient_n), 0, "the transient listener is gone");
    cr_assert_eq(worker_later(tu_main(), timer_fired, &timer_n, 0.3, NULL), WORKER_OK);
    cr_assert_eq(worker_sleep(0.35), WORKER_OK); /* main's own timer: ours ran, k's did not */
    cr_assert_eq(atomic_load(&timer_n), 1, "k's timer was dropped by its end");
    /* The monitor was spent by that end. */
    worker_fire(k, "FAIL", TU_PTR(1));
    wait_run(&c);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.05, k, NULL), WORKER_ETIMEDOUT);
    stop_sup(s, WORKER_EXIT);
    worker_channel_free(ch);
}

static int nested_task(void *arg, void **result)
{
    (void)result;
    struct kc *inner = arg;
    worker_child_spec sp = spec("inner", inner, WORKER_RESTART_PERMANENT);
    worker_sup_opts o = { .intensity = 1, .name = "inner-sup" };
    worker_t *s = worker_supervisor(&sp, 1, &o);
    if (!s)
        return WORKER_ENOMEM;
    worker_fire(inner->main, "NESTED", s);
    int err = 0;
    int rc = worker_wait_thread(s, &err, NULL);
    worker_unref(s);
    return rc != WORKER_OK ? rc : err;
}

Test(supervisor, supervisors_nest, .timeout = 20)
{
    struct kc inner = { 0 };
    inner.main = tu_main();
    worker_child_spec sp = { .name = "mid",
        .task = nested_task,
        .arg = &inner,
        .restart = WORKER_RESTART_PERMANENT,
        .opts = &kid_quiet };
    worker_sup_opts o = { .intensity = 5 };
    worker_t *outer = worker_supervisor(&sp, 1, &o);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("NESTED", TU_WAIT, NULL, &d), WORKER_OK);
    worker_t *inner_sup = d;
    wait_run(&inner);
    worker_t *in = worker_supervisor_child(inner_sup, "inner");
    worker_fire(in, "FAIL", TU_PTR(1)); /* one restart: allowed */
    wait_run(&inner);
    worker_fire(in, "FAIL", TU_PTR(1)); /* over: the inner supervisor gives up... */
    /* ... "mid" returns WORKER_EINTENSITY and the outer one restarts it,
     * with a new inner supervisor. */
    cr_assert_eq(worker_wait_event("NESTED", TU_WAIT, NULL, &d), WORKER_OK, "mid restarted");
    wait_run(&inner);
    cr_assert_eq(atomic_load(&inner.runs), 3);
    stop_sup(outer, WORKER_EXIT);
    cr_assert_eq(atomic_load(&inner.exits), 1, "stopping the outer one stops the nested tree");
}

Test(supervisor, add_remove_and_child, .timeout = 20)
{
    struct kc a = { 0 }, b = { 0 };
    worker_child_spec sa = spec("a", &a, WORKER_RESTART_PERMANENT);
    worker_t *s = worker_supervisor(&sa, 1, NULL);
    wait_run(&a);
    worker_child_spec sb = spec("b", &b, WORKER_RESTART_PERMANENT);
    cr_assert_eq(worker_supervisor_add(s, &sb), WORKER_OK);
    wait_run(&b);
    worker_t *bw = worker_ref(worker_supervisor_child(s, "b"));
    cr_assert_not_null(bw);
    cr_assert_eq(worker_supervisor_add(s, &sb), WORKER_EINVAL, "duplicate name");
    cr_assert_eq(worker_supervisor_remove(s, "b"), WORKER_OK);
    cr_assert(!worker_is_running(bw), "removal returns once it has ended");
    cr_assert_eq(atomic_load(&b.exits), 1);
    cr_assert_null(worker_supervisor_child(s, "b"));
    cr_assert_eq(worker_fire(bw, "WORK", NULL), WORKER_EREJECTED, "a removed child refuses");
    cr_assert_eq(worker_supervisor_remove(s, "b"), WORKER_EINVAL, "unknown now");
    cr_assert_eq(worker_supervisor_add(s, &sb), WORKER_OK, "the name is free again");
    wait_run(&b);
    stop_sup(s, WORKER_EXIT);
    cr_assert_eq(worker_supervisor_add(s = NULL, &sb), WORKER_EINVAL);
    worker_unref(bw);
}

Test(supervisor, remove_during_a_restart, .timeout = 60)
{
    struct kc a = { 0 };
    worker_child_spec sa = spec("a", &a, WORKER_RESTART_PERMANENT);
    worker_sup_opts o = { .intensity = 1000, .backoff = 0.5 };
    worker_t *s = worker_supervisor(&sa, 1, &o);
    wait_run(&a);
    worker_t *aw = worker_ref(worker_supervisor_child(s, "a"));
    /* Down, waiting for its backoff: removed at once, its held events
     * handled. */
    worker_monitor(aw);
    worker_fire(aw, "FAIL", TU_PTR(1));
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, aw, NULL), WORKER_OK);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(worker_fire(aw, "WORK", NULL), WORKER_OK);
    cr_assert_eq(worker_supervisor_remove(s, "a"), WORKER_OK);
    cr_assert_eq(atomic_load(&a.handled), 10, "what it held was delivered");
    cr_assert_eq(worker_fire(aw, "WORK", NULL), WORKER_EREJECTED);
    cr_assert_eq(atomic_load(&a.runs), 1, "not restarted");
    worker_unref(aw);
    /* Failing and removed at the same time, without backoff: either way it
     * ends up removed, not running, and the supervisor runs on. */
    worker_sup_opts o2 = { .intensity = 1000 };
    worker_t *s2 = worker_supervisor(NULL, 0, &o2);
    for (int round = 0; round < 50; round++) {
        struct kc k = { 0 };
        worker_child_spec sk = spec("k", &k, WORKER_RESTART_PERMANENT);
        cr_assert_eq(worker_supervisor_add(s2, &sk), WORKER_OK);
        wait_run(&k);
        worker_t *kw = worker_ref(worker_supervisor_child(s2, "k"));
        worker_fire(kw, "FAIL", TU_PTR(1));
        cr_assert_eq(worker_supervisor_remove(s2, "k"), WORKER_OK, "round %d", round);
        cr_assert(!worker_is_running(kw));
        cr_assert_null(worker_supervisor_child(s2, "k"));
        cr_assert_eq(worker_fire(kw, "WORK", NULL), WORKER_EREJECTED);
        cr_assert(worker_join(kw) == WORKER_OK);
        worker_unref(kw);
        cr_assert_eq(worker_update(), WORKER_OK); /* a RUN of a restart before the removal */
    }
    cr_assert(worker_is_running(s2));
    stop_sup(s2, WORKER_EXIT);
    stop_sup(s, WORKER_EXIT);
}

/* A child fails while its supervisor is being stopped: no restart, the
 * supervisor ends with WORKER_EXIT, and every event the child accepted is
 * handled once. */
Test(supervisor, child_fails_while_the_supervisor_stops, .timeout = 60)
{
    for (int round = 0; round < 30; round++) {
        struct kc c[3];
        worker_t *s = sup_of_three(c, WORKER_ONE_FOR_ONE, NULL);
        worker_t *b = worker_ref(worker_supervisor_child(s, "b"));
        int accepted = 0;
        for (int i = 0; i < 20; i++)
            accepted += worker_fire(b, "WORK", NULL) == WORKER_OK;
        worker_fire(b, "FAIL", TU_PTR(6));
        for (int i = 0; i < 20; i++)
            accepted += worker_fire(b, "WORK", NULL) == WORKER_OK;
        stop_sup(s, WORKER_EXIT);
        cr_assert(!worker_is_running(b));
        cr_assert_eq(worker_join(b), WORKER_OK);
        cr_assert_eq(atomic_load(&c[1].handled), accepted, "round %d: %d of %d handled", round,
            atomic_load(&c[1].handled), accepted);
        cr_assert_leq(atomic_load(&c[1].runs), 2);
        worker_unref(b);
        cr_assert_eq(worker_update(), WORKER_OK); /* no RUN of this round left */
    }
}

Test(supervisor, bad_input, .timeout = 20)
{
    tu_main();
    struct kc c = { 0 };
    worker_child_spec two[2] = { spec("x", &c, 0), spec("x", &c, 0) };
    cr_assert_null(worker_supervisor(two, 2, NULL), "duplicate names");
    cr_assert_null(worker_supervisor(NULL, 1, NULL), "NULL specs");
    worker_child_spec noname = spec("x", &c, 0);
    noname.name = NULL;
    cr_assert_null(worker_supervisor(&noname, 1, NULL));
    noname.name = "";
    cr_assert_null(worker_supervisor(&noname, 1, NULL));
    worker_child_spec badtype = spec("x", &c, 7);
    cr_assert_null(worker_supervisor(&badtype, 1, NULL));
    worker_sup_opts bad[] = { { .strategy = 3 }, { .strategy = -1 }, { .intensity = -1 },
        { .period = -1 }, { .period = NAN }, { .backoff = INFINITY }, { .backoff_max = -2 } };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_null(worker_supervisor(NULL, 0, &bad[i]), "bad opts %zu", i);

    worker_t *s = worker_supervisor(NULL, 0, NULL);
    cr_assert_not_null(s, "no children is fine");
    cr_assert_eq(worker_supervisor_add(s, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_supervisor_add(s, &badtype), WORKER_EINVAL);
    cr_assert_eq(worker_supervisor_remove(s, "nobody"), WORKER_EINVAL);
    cr_assert_eq(worker_supervisor_remove(s, NULL), WORKER_EINVAL);
    cr_assert_null(worker_supervisor_child(s, "nobody"));
    cr_assert_null(worker_supervisor_child(s, NULL));
    /* Not supervisors: a root worker, a plain worker, NULL. */
    worker_child_spec ok = spec("y", &c, 0);
    worker_t *plain = worker_spawn(tu_task_forever, NULL, NULL);
    worker_t *not_sup[] = { tu_main(), plain, NULL };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(worker_supervisor_add(not_sup[i], &ok), WORKER_EINVAL);
        cr_assert_eq(worker_supervisor_remove(not_sup[i], "y"), WORKER_EINVAL);
        cr_assert_null(worker_supervisor_child(not_sup[i], "y"));
    }
    worker_stop(plain);
    worker_join(plain);
    worker_unref(plain);
    stop_sup(s, WORKER_EXIT);
}

Test(supervisor, an_ended_supervisor_refuses_requests, .timeout = 20)
{
    tu_main();
    struct kc c = { 0 };
    worker_t *s = worker_supervisor(NULL, 0, NULL);
    worker_ref(s);
    stop_sup(s, WORKER_EXIT);
    worker_child_spec ok = spec("y", &c, 0);
    cr_assert_eq(worker_supervisor_add(s, &ok), WORKER_EREJECTED);
    cr_assert_eq(worker_supervisor_remove(s, "y"), WORKER_EREJECTED);
    worker_unref(s);
}
