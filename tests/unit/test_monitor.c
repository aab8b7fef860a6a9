/* Monitors (WORKER_DOWN) and the supervision messages of the tree.
 * (monitor.h,
 * docs/semantics.md "Monitors" and "Parent and children",
 * docs/features.md "Monitors" and "Supervision as messages".)
 *
 * Synchronisation: the main thread's root worker is the monitoring worker;
 * it waits for WORKER_DOWN and for events fired by workers with
 * worker_wait_event() (TU_WAIT seconds at most). "No DOWN" is proven by
 * joining the target first (its end sequence, which sends every DOWN, is
 * then over) and then waiting a little for an event that would already be
 * queued. */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <worker/worker.h>

static const worker_opts quiet = { .quiet = true };

/* Wait for WORKER_DOWN from `w`; copy its worker_down_t out (the data is
 * valid only until the next wait). */
static worker_down_t wait_down(worker_t *w)
{
    void *d = NULL;
    cr_assert_eq(
        worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, w, &d), WORKER_OK, "no WORKER_DOWN");
    cr_assert_not_null(d);
    worker_down_t down;
    memcpy(&down, d, sizeof down);
    return down;
}

/* ===================================================================== */

Test(monitor, monitor_running_worker, .timeout = 10)
{
    worker_t *w = worker_spawn(tu_go_task, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(0)), WORKER_OK);
    worker_down_t down = wait_down(w);
    cr_assert_eq(down.worker, w);
    cr_assert_eq(down.err, 0);
    cr_assert_eq(TU_INT(down.ret), 5);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

/* An ended (or never started) target: DOWN is queued at once, so one
 * update handles it. */
struct down_count {
    int n;
    worker_t *sender;
    worker_down_t down;
};

static int on_down(const worker_event_t *e, void *userdata)
{
    struct down_count *c = userdata;
    c->n++;
    c->sender = worker_event_target(e);
    memcpy(&c->down, worker_event_data(e), sizeof c->down);
    return 0;
}

Test(monitor, monitor_ended_worker_down_at_once, .timeout = 10)
{
    worker_t *w = worker_spawn(tu_go_task, NULL, &quiet);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(31)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);

    struct down_count c = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_WORKER_DOWN, on_down, &c, NULL);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 1, "DOWN for an ended target comes at once");
    cr_assert_eq(c.sender, w, "DOWN's sender is the target");
    cr_assert_eq(c.down.worker, w);
    cr_assert_eq(c.down.err, 31);

    /* Never started. */
    worker_t *idle = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_monitor(idle), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.down.worker, idle);

    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    worker_unref(idle);
    worker_unref(w);
}

Test(monitor, monitor_twice_one_down, .timeout = 10)
{
    worker_t *w = worker_spawn(tu_go_task, NULL, NULL);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(0)), WORKER_OK);
    worker_down_t down = wait_down(w);
    cr_assert_eq(down.worker, w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.2, NULL, NULL), WORKER_ETIMEDOUT,
        "a second DOWN came");
    /* One demonitor undoes the monitor; after DOWN it is gone already. */
    cr_assert_eq(worker_demonitor(w), WORKER_EINVAL);
    worker_unref(w);
}

/* Once per monitoring worker and end of the target, however often and
 * whenever worker_monitor is called: on an ended target, on a never
 * started one, and on a running one monitored again after its end. */
Test(monitor, monitor_twice_an_ended_worker_one_down, .timeout = 10)
{
    struct down_count c = { 0 };
    worker_listener_t *li = worker_on(WORKER_EV_WORKER_DOWN, on_down, &c, NULL);
    cr_assert_not_null(li);

    worker_t *w = worker_spawn(tu_go_task, NULL, &quiet);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(31)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 1, "monitoring an ended worker twice sent %d DOWN", c.n);
    cr_assert_eq(c.down.err, 31);
    cr_assert_eq(worker_monitor(w), WORKER_OK, "after its DOWN was handled");
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 1, "a DOWN already told was sent again");

    worker_t *idle = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_monitor(idle), WORKER_OK);
    cr_assert_eq(worker_monitor(idle), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 2, "never started: %d DOWN", c.n - 1);

    /* Running, monitored twice: one DOWN when it ends, none more when it
     * is monitored again after that end. */
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(32)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 3, "a running worker monitored twice: %d DOWN", c.n - 2);
    cr_assert_eq(c.down.err, 32);

    /* A restart is a new end to hear of. */
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(33)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.down.err, 33);

    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    worker_unref(idle);
    worker_unref(w);
}

Test(monitor, demonitor_no_down, .timeout = 10)
{
    worker_t *w = worker_spawn(tu_go_task, NULL, NULL);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_demonitor(w), WORKER_OK);
    cr_assert_eq(worker_demonitor(w), WORKER_EINVAL, "not monitored any more");
    cr_assert_eq(worker_fire(w, "GO", TU_PTR(0)), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.2, NULL, NULL), WORKER_ETIMEDOUT);
    worker_unref(w);
}

/* DOWN comes after every event the target fired at the monitor: the target
 * fires 100 TICKs at main and returns; main's DOWN listener finds all 100
 * handled. */
struct ticks {
    int seen;
    int seen_at_down;
    int downs;
};

static int on_tick(const worker_event_t *e, void *userdata)
{
    struct ticks *t = userdata;
    if (TU_INT(worker_event_data(e)) == t->seen) /* in order */
        t->seen++;
    return 0;
}

static int on_tick_down(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct ticks *t = userdata;
    t->seen_at_down = t->seen;
    t->downs++;
    return 0;
}

static int ticker(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, NULL);
    for (int i = 0; rc == WORKER_OK && i < 100; i++)
        rc = worker_fire(main, "TICK", TU_PTR(i));
    return rc;
}

Test(monitor, down_ordered_after_targets_events, .timeout = 10)
{
    for (int round = 0; round < 10; round++) {
        struct ticks t = { 0 };
        worker_listener_t *l1 = worker_on("TICK", on_tick, &t, NULL);
        worker_listener_t *l2 = worker_on(WORKER_EV_WORKER_DOWN, on_tick_down, &t, NULL);
        worker_t *w = worker_spawn(ticker, worker_current(), NULL);
        cr_assert_eq(worker_monitor(w), WORKER_OK);
        cr_assert_eq(worker_fire(w, "GO", NULL), WORKER_OK);
        worker_down_t down = wait_down(w);
        cr_assert_eq(down.err, 0);
        cr_assert_eq(t.downs, 1);
        cr_assert_eq(t.seen_at_down, 100, "DOWN came after %d of 100 TICKs", t.seen_at_down);
        cr_assert_eq(worker_unlisten(worker_current(), l1), WORKER_OK);
        cr_assert_eq(worker_unlisten(worker_current(), l2), WORKER_OK);
        cr_assert_eq(worker_join(w), WORKER_OK);
        worker_unref(w);
    }
}

/* worker_down_t's err: WORKER_EXIT when stopped, the code when failed, 0
 * (and ret) when done. */
static int forever(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_wait_forever();
}

Test(monitor, down_fields, .timeout = 10)
{
    worker_t *stopped = worker_spawn(forever, NULL, NULL);
    worker_t *failed = worker_spawn(tu_go_task, NULL, &quiet);
    worker_t *done = worker_spawn(tu_go_task, NULL, NULL);
    cr_assert_eq(worker_monitor(stopped), WORKER_OK);
    cr_assert_eq(worker_monitor(failed), WORKER_OK);
    cr_assert_eq(worker_monitor(done), WORKER_OK);

    cr_assert_eq(worker_stop(stopped), WORKER_OK);
    worker_down_t d = wait_down(stopped);
    cr_assert_eq(d.worker, stopped);
    cr_assert_eq(d.err, WORKER_EXIT);
    cr_assert_null(d.ret);

    cr_assert_eq(worker_fire(failed, "GO", TU_PTR(-4711)), WORKER_OK);
    d = wait_down(failed);
    cr_assert_eq(d.worker, failed);
    cr_assert_eq(d.err, -4711);

    cr_assert_eq(worker_fire(done, "GO", TU_PTR(0)), WORKER_OK);
    d = wait_down(done);
    cr_assert_eq(d.worker, done);
    cr_assert_eq(d.err, 0);
    cr_assert_eq(TU_INT(d.ret), 5);

    worker_t *all[] = { stopped, failed, done };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(worker_join(all[i]), WORKER_OK);
        worker_unref(all[i]);
    }
}

/* A monitor is spent by its DOWN: a restarted target that ends again sends
 * no second DOWN unless monitored again. */
Test(monitor, down_is_once_per_monitor_across_restart, .timeout = 10)
{
    worker_t *w = worker_spawn(forever, NULL, NULL);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    wait_down(w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.2, NULL, NULL), WORKER_ETIMEDOUT);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_monitor(w), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    worker_down_t d = wait_down(w);
    cr_assert_eq(d.err, WORKER_EXIT);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

/* A worker (not main) monitors another one; two monitors of one target
 * each get their DOWN. */
struct watcher {
    worker_t *target;
    worker_t *main;
};

static int watcher_task(void *arg, void **result)
{
    struct watcher *x = arg;
    int rc = worker_monitor(x->target);
    if (rc != WORKER_OK)
        return rc;
    worker_fire(x->main, "WATCHING", NULL);
    void *d = NULL;
    rc = worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, x->target, &d);
    if (rc != WORKER_OK)
        return rc;
    const worker_down_t *down = d;
    *result = TU_PTR(down->worker == x->target ? down->err : 999);
    return 0;
}

Test(monitor, monitor_from_worker_and_two_monitors, .timeout = 10)
{
    worker_t *target = worker_spawn(tu_go_task, NULL, &quiet);
    struct watcher x = { .target = target, .main = worker_current() };
    worker_t *a = worker_spawn(watcher_task, &x, NULL);
    worker_t *b = worker_spawn(watcher_task, &x, NULL);
    /* Either may come first (a wait handles, and so uses up, the events
     * it does not match): wait for two WATCHING from anyone. */
    cr_assert_eq(worker_wait_event("WATCHING", TU_WAIT, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("WATCHING", TU_WAIT, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_monitor(target), WORKER_OK);
    cr_assert_eq(worker_fire(target, "GO", TU_PTR(66)), WORKER_OK);
    cr_assert_eq(wait_down(target).err, 66);
    worker_t *ws[] = { a, b };
    for (int i = 0; i < 2; i++) {
        int err = -100;
        void *r = NULL;
        cr_assert_eq(worker_wait_thread(ws[i], &err, &r), WORKER_OK);
        cr_assert_eq(err, 0);
        cr_assert_eq(TU_INT(r), 66);
        worker_unref(ws[i]);
    }
    cr_assert_eq(worker_join(target), WORKER_OK);
    worker_unref(target);
}

/* ===================================================================== */
/* the tree uses the same messages                                        */
/* ===================================================================== */

/* A parent worker spawns a child and records, in order, the supervision
 * messages it receives (CHILD_THREAD_*, WAIT_THREAD_PENDING_DONE) while it
 * waits for the child with worker_wait_thread. */
struct tree_log {
    char names[8][32];
    void *data[8];
    worker_down_t end;
    int n;
    worker_t *child;
    worker_t *main;
};

static int log_event(const worker_event_t *e, void *userdata)
{
    struct tree_log *l = userdata;
    if (l->n < 8) {
        strncpy(l->names[l->n], worker_event_name(e), 31);
        l->data[l->n] = worker_event_data(e);
        if (strcmp(worker_event_name(e), WORKER_EV_CHILD_THREAD_END) == 0)
            memcpy(&l->end, worker_event_data(e), sizeof l->end);
        l->n++;
    }
    return 0;
}

static int parent_task(void *arg, void **result)
{
    (void)result;
    struct tree_log *l = arg;
    const char *names[] = { WORKER_EV_CHILD_THREAD_START, WORKER_EV_CHILD_THREAD_DONE,
        WORKER_EV_CHILD_THREAD_END, WORKER_EV_WAIT_THREAD_PENDING_DONE };
    for (int i = 0; i < 4; i++)
        if (!worker_on(names[i], log_event, l, NULL))
            return 1;
    l->child = worker_spawn(tu_go_task, NULL, NULL); /* parent: this worker */
    if (!l->child)
        return 2;
    worker_fire(l->main, "PARENT_READY", NULL);
    int err = -100;
    int rc = worker_wait_thread(l->child, &err, NULL);
    /* CHILD_THREAD_* were sent before WAIT_THREAD_PENDING_DONE: handled. */
    return rc ? rc : err;
}

Test(monitor, tree_child_messages, .timeout = 10)
{
    struct tree_log l = { .main = worker_current() };
    worker_t *p = worker_spawn(parent_task, &l, NULL);
    cr_assert_eq(worker_wait_event("PARENT_READY", TU_WAIT, p, NULL), WORKER_OK);
    cr_assert_eq(worker_parent(l.child), p);
    cr_assert_eq(worker_fire(l.child, "GO", TU_PTR(0)), WORKER_OK);
    int err = -100;
    cr_assert_eq(worker_wait_thread(p, &err, NULL), WORKER_OK);
    cr_assert_eq(err, 0);
    cr_assert_eq(l.n, 4, "got %d messages", l.n);
    cr_assert_str_eq(l.names[0], "CHILD_THREAD_START");
    cr_assert_str_eq(l.names[1], "CHILD_THREAD_DONE");
    cr_assert_eq(TU_INT(l.data[1]), 5, "DONE carries the result");
    cr_assert_str_eq(l.names[2], "CHILD_THREAD_END");
    cr_assert_eq(l.end.worker, l.child);
    cr_assert_eq(l.end.err, 0);
    cr_assert_eq(TU_INT(l.end.ret), 5);
    cr_assert_str_eq(l.names[3], "WAIT_THREAD_PENDING_DONE");
    worker_unref(l.child);
    worker_unref(p);
}

/* As in the original, worker_wait_thread tells the target who waits for
 * it: WAIT_THREAD_PENDING, sender the waiting worker, data NULL. Here the
 * target's listener then ends it, which ends the wait. */
struct pending_log {
    int n;
    worker_t *sender;
    void *data;
};

static int on_pending(const worker_event_t *e, void *userdata)
{
    struct pending_log *l = userdata;
    l->n++;
    l->sender = worker_event_target(e);
    l->data = worker_event_data(e);
    worker_exit();
    return 0;
}

Test(monitor, wait_thread_sends_wait_thread_pending, .timeout = 10)
{
    struct pending_log l = { 0 };
    worker_t *w = worker_new(NULL, NULL, NULL); /* waits forever */
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, WORKER_EV_WAIT_THREAD_PENDING, on_pending, &l, NULL));
    cr_assert_eq(worker_start(w), WORKER_OK);
    int err = -100;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert_eq(l.n, 1, "WAIT_THREAD_PENDING came %d times", l.n);
    cr_assert_eq(l.sender, worker_current(), "its sender is the waiting worker");
    cr_assert_null(l.data);
    /* Not sent to a worker that is not running (the wait returns at once). */
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(l.n, 1);
    worker_unref(w);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

static int monitor_main(void *arg, void **result)
{
    *result = TU_PTR(worker_monitor(arg)); /* a root worker: EINVAL */
    return 0;
}

Test(monitor, bad_input, .timeout = 10)
{
    cr_assert_eq(worker_monitor(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_demonitor(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_monitor(worker_current()), WORKER_EINVAL, "monitoring oneself");
    worker_t *w = worker_spawn(forever, NULL, NULL);
    cr_assert_eq(worker_demonitor(w), WORKER_EINVAL, "not monitored");

    worker_t *m = worker_spawn(monitor_main, worker_current(), NULL);
    int err = -100;
    void *r = NULL;
    cr_assert_eq(worker_wait_thread(m, &err, &r), WORKER_OK);
    cr_assert_eq(TU_INT(r), WORKER_EINVAL, "monitoring a root worker");
    worker_unref(m);

    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
    /* None of these sent anything. */
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.1, NULL, NULL), WORKER_ETIMEDOUT);
}
