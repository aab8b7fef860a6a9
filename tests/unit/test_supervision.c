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

/* Waits for GO, then returns the GO event's data as its code. */
static int go_task(void *arg, void **result)
{
    (void)arg;
    void *d = NULL;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, &d);
    if (rc != WORKER_OK)
        return rc;
    *result = TU_PTR(5);
    return TU_INT(d);
}

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
    worker_t *b = worker_spawn(go_task, NULL, &quiet);
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
    worker_t *b = worker_spawn(go_task, NULL, &quiet);
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
    worker_t *b = worker_spawn(go_task, NULL, &quiet);
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
    worker_t *b = worker_spawn(go_task, NULL, &quiet);
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
    worker_t *c = worker_spawn(go_task, NULL, &quiet);
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
