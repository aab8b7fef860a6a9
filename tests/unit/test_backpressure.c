/* Backpressure: WORKER_FULL_DROP_OLDEST, worker_fire_opts.wait, control
 * messages past the limit, channels with full subscribers, bad input.
 * (lifecycle.h full_policy, event.h wait; docs/semantics.md
 * "Backpressure and statistics".) */
#include "test_util.h"

#include <criterion/criterion.h>

static int gated_task(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30);
    return worker_wait_forever();
}

static int gated_then_end(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30);
    return 0;
}

static atomic_int released[8];
static void count_release(void *data)
{
    atomic_fetch_add(&released[TU_INT(data)], 1);
}

struct order {
    int seen[16];
    atomic_int n;
};

static int record_order(const worker_event_t *e, void *userdata)
{
    struct order *o = userdata;
    o->seen[atomic_fetch_add(&o->n, 1) % 16] = TU_INT(worker_event_data(e));
    return 0;
}

Test(backpressure, drop_oldest_releases_once_and_counts, .timeout = 10)
{
    static struct order o;
    tu_gate gate;
    tu_gate_init(&gate);
    for (int i = 0; i < 8; i++)
        atomic_store(&released[i], 0);
    worker_opts wo = { .mailbox_limit = 3, .full_policy = WORKER_FULL_DROP_OLDEST };
    worker_t *w = worker_new(gated_task, &gate, &wo);
    worker_listen(w, "E", record_order, &o, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    worker_fire_opts fo = { .release = count_release };
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(i), &fo), WORKER_OK, "event %d", i);
    worker_stats_t s;
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.queued, 3, "never more than the limit");
    cr_assert_eq(s.accepted, 5);
    cr_assert_eq(worker_stop(w), WORKER_OK, "control messages are never dropped");
    tu_gate_open(&gate);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the stop was delivered");
    cr_assert_eq(atomic_load(&o.n), 3);
    cr_assert_eq(o.seen[0], 3);
    cr_assert_eq(o.seen[1], 4);
    cr_assert_eq(o.seen[2], 5);
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(atomic_load(&released[i]), 1, "event %d released once", i);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.dropped, 2);
    cr_assert_eq(s.handled, 3);
    cr_assert_eq(s.accepted, 5);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.refused, 0);
    worker_unref(w);
    tu_gate_destroy(&gate);
}

Test(backpressure, wait_with_timeout_gives_efull, .timeout = 10)
{
    tu_gate gate;
    tu_gate_init(&gate);
    for (int i = 0; i < 8; i++)
        atomic_store(&released[i], 0);
    worker_opts wo = { .mailbox_limit = 1 };
    worker_t *w = worker_spawn(gated_task, &gate, &wo);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    worker_fire_opts fo = { .wait = 0.2, .release = count_release };
    double t0 = tu_now();
    cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(1), &fo), WORKER_EFULL);
    double took = tu_now() - t0;
    cr_assert(took >= 0.15 && took < 4.0, "waited %f s", took);
    cr_assert_eq(atomic_load(&released[1]), 0, "a refused fire does not release");
    worker_stats_t s;
    worker_stats(w, &s);
    cr_assert_eq(s.refused, 1, "counted once, not per try");
    tu_gate_open(&gate);
    tu_stop_join_unref(w);
    tu_gate_destroy(&gate);
}

static int open_gate_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    tu_gate_open(userdata);
    return 0;
}

Test(backpressure, wait_forever_runs_own_loop_and_gets_room, .timeout = 10)
{
    static struct order o;
    worker_t *main = tu_main();
    tu_gate gate;
    tu_gate_init(&gate);
    worker_opts wo = { .mailbox_limit = 1 };
    worker_t *w = worker_new(gated_task, &gate, &wo);
    worker_listen(w, "E", record_order, &o, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    worker_listener_t *l = worker_listen(main, "OPEN", open_gate_listener, &gate, NULL);
    cr_assert_eq(worker_fire(w, "E", TU_PTR(1)), WORKER_OK);
    /* Only this thread's own loop, run while it waits, opens the gate. */
    cr_assert_eq(worker_fire(main, "OPEN", NULL), WORKER_OK);
    worker_fire_opts fo = { .wait = -1 };
    cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(2), &fo), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(atomic_load(&o.n), 2);
    cr_assert_eq(o.seen[0], 1);
    cr_assert_eq(o.seen[1], 2);
    worker_unlisten(main, l);
    worker_unref(w);
    tu_gate_destroy(&gate);
}

Test(backpressure, target_ends_while_waiting_gives_erejected, .timeout = 10)
{
    worker_t *main = tu_main();
    tu_gate gate;
    tu_gate_init(&gate);
    worker_opts wo = { .mailbox_limit = 1 };
    worker_t *w = worker_spawn(gated_then_end, &gate, &wo);
    worker_listener_t *l = worker_listen(main, "OPEN", open_gate_listener, &gate, NULL);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(main, "OPEN", NULL), WORKER_OK);
    worker_fire_opts fo = { .wait = -1 };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &fo), WORKER_EREJECTED);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unlisten(main, l);
    worker_unref(w);
    tu_gate_destroy(&gate);
}

struct sender_ctx {
    worker_t *to;
    int rc;
};

static int waiting_sender(void *arg, void **result)
{
    (void)result;
    struct sender_ctx *c = arg;
    worker_fire_opts fo = { .wait = -1 };
    c->rc = worker_fire_ex(c->to, "E", NULL, &fo);
    return 0;
}

Test(backpressure, sender_stopped_while_waiting_gives_exit, .timeout = 10)
{
    tu_gate gate;
    tu_gate_init(&gate);
    worker_opts wo = { .mailbox_limit = 1 };
    worker_t *w = worker_spawn(gated_task, &gate, &wo);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    struct sender_ctx c = { .to = w, .rc = 99 };
    worker_t *s = worker_spawn(waiting_sender, &c, NULL);
    cr_assert_eq(worker_stop(s), WORKER_OK);
    cr_assert_eq(worker_join(s), WORKER_OK);
    cr_assert_eq(c.rc, WORKER_EXIT);
    worker_unref(s);
    tu_gate_open(&gate);
    tu_stop_join_unref(w);
    tu_gate_destroy(&gate);
}

#define PINGS 300

struct peer {
    worker_t *other;
    tu_gate *both_started; /* a fire at a worker not started yet is refused */
    atomic_int got;
    int fire_errors;
};

static bool got_all(const worker_event_t *e, void *userdata)
{
    (void)e;
    return atomic_load(&((struct peer *)userdata)->got) >= PINGS;
}

static int peer_task(void *arg, void **result)
{
    (void)result;
    struct peer *p = arg;
    if (tu_gate_pass(p->both_started, 30) != 0)
        return WORKER_ETIMEDOUT;
    worker_fire_opts fo = { .wait = -1 };
    for (int i = 0; i < PINGS; i++)
        if (worker_fire_ex(p->other, "PING", NULL, &fo) != WORKER_OK)
            p->fire_errors++;
    if (atomic_load(&p->got) >= PINGS)
        return 0;
    return worker_wait_until(got_all, p, 30, NULL);
}

Test(backpressure, two_workers_firing_at_each_other_never_deadlock, .timeout = 30)
{
    static struct peer a, b;
    worker_opts wo = { .mailbox_limit = 2, .daemon = WORKER_DAEMON_YES };
    worker_t *wa = worker_new(peer_task, &a, &wo);
    worker_t *wb = worker_new(peer_task, &b, &wo);
    tu_gate started;
    tu_gate_init(&started);
    a.other = wb;
    b.other = wa;
    a.both_started = b.both_started = &started;
    worker_listen(wa, "PING", tu_count_listener, &a.got, NULL);
    worker_listen(wb, "PING", tu_count_listener, &b.got, NULL);
    cr_assert_eq(worker_start(wa), WORKER_OK);
    cr_assert_eq(worker_start(wb), WORKER_OK);
    tu_gate_open(&started);
    tu_gate_open(&started);
    int ea = -1, eb = -1;
    cr_assert_eq(worker_wait_thread(wa, &ea, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_thread(wb, &eb, NULL), WORKER_OK);
    cr_assert_eq(a.fire_errors + b.fire_errors, 0);
    cr_assert_eq(atomic_load(&a.got), PINGS);
    cr_assert_eq(atomic_load(&b.got), PINGS);
    worker_unref(wa);
    worker_unref(wb);
    tu_gate_destroy(&started);
}

Test(backpressure, channel_applies_each_subscribers_policy_and_waits, .timeout = 10)
{
    static atomic_int got_reject, got_drop;
    worker_t *main = tu_main();
    tu_gate g1, g2;
    tu_gate_init(&g1);
    tu_gate_init(&g2);
    worker_opts reject = { .mailbox_limit = 1 };
    worker_opts drop = { .mailbox_limit = 2, .full_policy = WORKER_FULL_DROP_OLDEST };
    worker_t *r = worker_spawn(gated_task, &g1, &reject);
    worker_t *d = worker_spawn(gated_task, &g2, &drop);
    worker_listen(r, "C", tu_count_listener, &got_reject, NULL);
    worker_listen(d, "C", tu_count_listener, &got_drop, NULL);
    worker_channel_t *ch = worker_channel_new();
    worker_channel_sub(ch, r);
    worker_channel_sub(ch, d);
    cr_assert_eq(worker_channel_pub(ch, "C", NULL), 2);
    cr_assert_eq(worker_channel_pub(ch, "C", NULL), 1, "the full REJECT subscriber refuses");
    worker_fire_opts fo = { .wait = 0.05 };
    cr_assert_eq(worker_channel_pub_ex(ch, "C", NULL, &fo), 1, "waited, still full");
    worker_listener_t *l = worker_listen(main, "OPEN", open_gate_listener, &g1, NULL);
    cr_assert_eq(worker_fire(main, "OPEN", NULL), WORKER_OK);
    fo.wait = -1;
    cr_assert_eq(worker_channel_pub_ex(ch, "C", NULL, &fo), 2, "waited for room");
    tu_gate_open(&g2);
    worker_stats_t s;
    worker_stop(d);
    worker_join(d);
    worker_stats(d, &s);
    cr_assert_eq(s.dropped, 2, "4 published, the newest 2 kept");
    cr_assert_eq(atomic_load(&got_drop), 2);
    worker_stop(r);
    worker_join(r);
    worker_stats(r, &s);
    cr_assert_eq(s.refused, 2);
    cr_assert_eq(atomic_load(&got_reject), 2);
    worker_unlisten(main, l);
    worker_channel_free(ch);
    worker_unref(r);
    worker_unref(d);
    tu_gate_destroy(&g1);
    tu_gate_destroy(&g2);
}

/* A drop-oldest mailbox whose loop does not run holds at most twice its
 * limit: the newest `limit` events, and `limit` older ones waiting to be
 * dropped when the loop runs again; past that a fire is refused. */
Test(backpressure, drop_oldest_holds_at_most_twice_its_limit, .timeout = 10)
{
    static struct order o;
    tu_gate gate;
    tu_gate_init(&gate);
    worker_opts wo = { .mailbox_limit = 2, .full_policy = WORKER_FULL_DROP_OLDEST };
    worker_t *w = worker_new(gated_task, &gate, &wo);
    worker_listen(w, "E", record_order, &o, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 1; i <= 4; i++)
        cr_assert_eq(worker_fire(w, "E", TU_PTR(i)), WORKER_OK, "event %d", i);
    cr_assert_eq(worker_fire(w, "E", TU_PTR(5)), WORKER_EFULL);
    worker_fire_opts fo = { .wait = 0.05 };
    cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(5), &fo), WORKER_EFULL, "waited, loop not running");
    worker_stats_t s;
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.queued, 2);
    cr_assert_eq(s.accepted, 4);
    cr_assert_eq(s.refused, 2);
    tu_gate_open(&gate);
    fo.wait = -1;
    cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(5), &fo), WORKER_OK, "room once the loop runs");
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.accepted, 5);
    cr_assert_eq(s.handled + s.dropped, 5);
    cr_assert_eq(s.queued, 0);
    int n = atomic_load(&o.n);
    cr_assert(n >= 2, "the newest ones are handled (%d)", n);
    cr_assert_eq(o.seen[n - 1], 5, "the last one handled is the newest");
    worker_unref(w);
    tu_gate_destroy(&gate);
}

Test(backpressure, bad_input, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    worker_fire_opts fo = { .wait = NAN };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &fo), WORKER_EINVAL);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_pub_ex(ch, "E", NULL, &fo), WORKER_EINVAL);
    worker_channel_free(ch);
    worker_opts bad = { .full_policy = 7 };
    cr_assert_null(worker_new(NULL, NULL, &bad));
    bad.full_policy = -1;
    cr_assert_null(worker_new(NULL, NULL, &bad));
    tu_stop_join_unref(w);
}
