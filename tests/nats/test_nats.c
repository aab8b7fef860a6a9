/* libworker-actor-nats: nodes on NATS (docs/nats.md, API.md "Across
 * processes and hosts"). Each test starts its own nats-server on a free
 * loopback port and, where two processes are needed, the peer program
 * (nats_peer.c, NATS_PEER_PATH); other tests put two nodes in this process.
 * Waits are on events (worker_wait_event) or on a proxy becoming known
 * (wait_running polls the proxy with the loop running: there is no event
 * for "a heartbeat was heard"). */
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "tn_server.h"

#include <worker/nats.h>
#include <worker/worker.h>

#define HB 0.1 /* heartbeats in tests: a node is down after 0.3 s */

static tn_server srv;
static pid_t peer_pid;
static int peer_in = -1;

static void setup(void)
{
    srv = (tn_server) { 0 };
    cr_assert(tn_server_start(&srv, NULL), "nats-server did not start");
}

static void teardown(void)
{
    if (peer_pid > 0)
        tn_peer_end(peer_pid, peer_in);
    tn_server_kill(&srv, SIGTERM);
}

TestSuite(nats, .init = setup, .fini = teardown, .timeout = 30);

static pid_t start_peer(const char *url, const char *name, const char *mode, const char *hb)
{
    const char *argv[] = { NATS_PEER_PATH, url, name, hb, mode, NULL };
    peer_pid = tn_spawn(argv, &peer_in);
    cr_assert(peer_pid > 0);
    return peer_pid;
}

static worker_node_t *node_on(const char *url, const char *name)
{
    worker_node_opts o = { .name = name, .heartbeat = HB };
    int err = -99;
    worker_node_t *n = worker_node_connect(url, &o, &err);
    cr_assert(n, "connect %s: %s", url, worker_strerror(err));
    cr_assert_eq(err, WORKER_OK);
    return n;
}

/* Run this thread's loop until `p` is running (or not), at most `secs`. */
static bool wait_running(worker_t *p, bool want, double secs)
{
    double end = tn_now() + secs;
    while (worker_is_running(p) != want) {
        if (tn_now() > end)
            return false;
        worker_wait_timeout(0.01);
    }
    return true;
}

/* A copy of `data`; NULL: no data (crosses as an empty event). */
static int fire_copy(worker_t *w, const char *name, const void *data, size_t size)
{
    if (!data)
        return worker_fire(w, name, NULL);
    worker_fire_opts fo = { .copy = data, .copy_size = size };
    return worker_fire_ex(w, name, NULL, &fo);
}

static int call_copy(worker_t *w, const char *name, const void *data, size_t size, double timeout,
    void **reply, size_t *reply_size)
{
    if (!data)
        return worker_call_ex(w, name, NULL, NULL, timeout, reply, reply_size);
    worker_fire_opts fo = { .copy = data, .copy_size = size };
    return worker_call_ex(w, name, NULL, &fo, timeout, reply, reply_size);
}

static worker_t *peer_echo(worker_node_t *n)
{
    start_peer(srv.url, "peer", "echo", "0.1");
    worker_t *p = worker_node_lookup(n, "echo");
    cr_assert(p);
    cr_assert(wait_running(p, true, 5), "the peer's export was not heard of");
    return p;
}

Test(nats, bad_arguments)
{
    int err = 0;
    cr_assert_null(worker_node_connect(NULL, NULL, &err));
    cr_assert_eq(err, WORKER_EINVAL);
    cr_assert_null(worker_node_connect(srv.url, &(worker_node_opts) { .name = "a.b" }, &err));
    cr_assert_eq(err, WORKER_EINVAL);
    cr_assert_null(worker_node_connect(srv.url, &(worker_node_opts) { .heartbeat = -1 }, &err));
    cr_assert_eq(err, WORKER_EINVAL);
    char closed[64];
    snprintf(closed, sizeof closed, "nats://127.0.0.1:%d", tn_free_port());
    cr_assert_null(
        worker_node_connect(closed, &(worker_node_opts) { .connect_timeout = 0.3 }, &err));
    cr_assert_eq(err, WORKER_EAGAIN);
    worker_node_close(NULL);
    cr_assert_eq(worker_node_export(NULL, worker_current(), "x"), WORKER_EINVAL);
    cr_assert_eq(worker_node_unexport(NULL, "x"), WORKER_EINVAL);
    cr_assert_null(worker_node_lookup(NULL, "x"));
    cr_assert_eq(worker_node_bridge(NULL, NULL, "x"), WORKER_EINVAL);

    worker_node_t *n = node_on(srv.url, "a");
    cr_assert_str_eq(worker_node_name(n), "a");
    cr_assert_eq(worker_node_export(n, worker_current(), "bad name"), WORKER_EINVAL);
    cr_assert_eq(worker_node_export(n, NULL, "x"), WORKER_EINVAL);
    cr_assert_eq(worker_node_unexport(n, "never"), WORKER_EINVAL);
    cr_assert_null(worker_node_lookup(n, "w.*"));
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_node_bridge(n, ch, "a.*"), WORKER_EINVAL);
    worker_t *stopped = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_node_export(n, stopped, "x"), WORKER_EREJECTED);
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_eq(worker_node_export(n, w, "x"), WORKER_OK);
    cr_assert_eq(worker_node_export(n, w, "x"), WORKER_EINVAL);
    cr_assert_eq(worker_node_export_group(n, w, "x"), WORKER_EINVAL);
    cr_assert_eq(worker_node_unexport(n, "x"), WORKER_OK);
    /* A pointer does not cross processes: a fire at a proxy with data must
     * copy it (refused at once, nothing sent); no data needs no copy. */
    worker_t *proxy = worker_node_lookup(n, "nobody");
    cr_assert_not_null(proxy);
    static char bytes[] = "abc";
    cr_assert_eq(worker_fire(proxy, "E", bytes), WORKER_EINVAL);
    cr_assert_eq(worker_fire_ex(proxy, "E", bytes, &(worker_fire_opts) { .copy_size = 0 }),
        WORKER_EINVAL);
    cr_assert_neq(worker_fire(proxy, "E", NULL), WORKER_EINVAL);
    worker_unref(proxy);
    worker_node_close(n);
    worker_channel_free(ch);
    tu_stop_join_unref(w);
    worker_unref(stopped);
}

/* The peer's count of "seq" fires so far, and how many came out of order. */
static void seq_check(worker_t *p, uint32_t want)
{
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(call_copy(p, "seq_check", NULL, 0, 5, &reply, &size), WORKER_OK);
    cr_assert_eq(size, 2 * sizeof(uint32_t));
    uint32_t got[2];
    memcpy(got, reply, sizeof got);
    cr_assert_eq(got[0], want, "received %u of %u before the call", got[0], want);
    cr_assert_eq(got[1], 0, "%u out of order", got[1]);
}

Test(nats, fires_keep_order_and_calls_get_answers)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    for (uint32_t i = 0; i < 2000; i++)
        cr_assert_eq(fire_copy(p, "seq", &i, sizeof i), WORKER_OK);
    seq_check(p, 2000);

    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(call_copy(p, "echo", "hello", 5, 5, &reply, &size), WORKER_OK);
    cr_assert_eq(size, 5);
    cr_assert_eq(memcmp(reply, "hello", 5), 0);
    cr_assert_eq(call_copy(p, "fail", NULL, 0, 5, &reply, &size), WORKER_ESTATE);
    cr_assert_eq(call_copy(p, "silent", NULL, 0, 0.3, &reply, &size), WORKER_ETIMEDOUT);
    /* A pointer does not cross processes. */
    int local = 7;
    cr_assert_eq(worker_call(p, "echo", &local, 5, &reply), WORKER_EINVAL);
    worker_unref(p);
    worker_node_close(n);
}

/* Fires travel in batches (one NATS message for many): a call flushes the
 * sender's earlier fires first, and an event too large for a batch goes
 * alone, after what waited. */
Test(nats, batched_fires_keep_order_against_calls_and_large_events)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    static unsigned char big[48 * 1024]; /* more than a batch holds */
    for (uint32_t i = 0; i < 3000; i++) {
        if (i % 500 == 250) {
            memcpy(big, &i, sizeof i);
            cr_assert_eq(fire_copy(p, "seq", big, sizeof big), WORKER_OK);
        } else {
            cr_assert_eq(fire_copy(p, "seq", &i, sizeof i), WORKER_OK);
        }
        if (i % 1000 == 999)
            seq_check(p, i + 1);
    }
    worker_unref(p);
    worker_node_close(n);
}

/* send_asap: no batches, every fire published at once; order holds. */
Test(nats, send_asap_fires_keep_order)
{
    worker_node_opts o = { .name = "front", .heartbeat = HB, .send_asap = true };
    int err = -99;
    worker_node_t *n = worker_node_connect(srv.url, &o, &err);
    cr_assert(n, "connect: %s", worker_strerror(err));
    worker_t *p = peer_echo(n);
    for (uint32_t i = 0; i < 500; i++)
        cr_assert_eq(fire_copy(p, "seq", &i, sizeof i), WORKER_OK);
    seq_check(p, 500);
    worker_unref(p);
    worker_node_close(n);
}

static void on_async(int rc, void *reply, size_t size, void *userdata)
{
    (void)userdata;
    bool ok = rc == WORKER_OK && size == 3 && memcmp(reply, "abc", 3) == 0;
    worker_fire(worker_current(), ok ? "async_ok" : "async_bad", NULL);
}

Test(nats, call_async_through_a_proxy)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    worker_fire_opts fo = { .copy = "abc", .copy_size = 3 };
    cr_assert_eq(worker_call_async(p, "echo", NULL, &fo, 5, on_async, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("async_ok", 5, NULL, NULL), WORKER_OK);
    worker_unref(p);
    worker_node_close(n);
}

static int on_ping_local(const worker_event_t *e, void *u)
{
    (void)u;
    /* The sender is a proxy of the remote sender: answer it. */
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_fire_ex(worker_event_target(e), "pong", NULL, &fo);
}

Test(nats, unknown_name_refused_then_known_within_a_heartbeat)
{
    worker_node_t *a = node_on(srv.url, "a"), *b = node_on(srv.url, "b");
    worker_t *p = worker_node_lookup(a, "late");
    cr_assert(p);
    cr_assert_eq(worker_node_lookup(a, "late"), p, "the same proxy for the same name");
    worker_unref(p);
    cr_assert_eq(fire_copy(p, "ping", "x", 1), WORKER_EREJECTED);
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .name = "late" });
    worker_listen(w, "ping", on_ping_local, NULL, NULL);
    cr_assert_eq(worker_node_export(b, w, "late"), WORKER_OK);
    cr_assert(wait_running(p, true, 3 * HB + 1), "the export was not known within a heartbeat");
    cr_assert_eq(fire_copy(p, "ping", "42", 2), WORKER_OK);
    void *data = NULL;
    cr_assert_eq(worker_wait_event("pong", 5, NULL, &data), WORKER_OK);
    cr_assert_eq(memcmp(data, "42", 2), 0);
    /* Unexported: the proxy ends and fires are refused again. */
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    cr_assert_eq(worker_node_unexport(b, "late"), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 5, p, NULL), WORKER_OK);
    cr_assert(wait_running(p, false, 1));
    cr_assert_eq(fire_copy(p, "ping", "x", 1), WORKER_EREJECTED);
    worker_unref(p);
    worker_node_close(a);
    worker_node_close(b);
    tu_stop_join_unref(w);
}

Test(nats, replies_reach_the_remote_sender)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    cr_assert_eq(fire_copy(p, "ping", "hi!", 3), WORKER_OK);
    void *data = NULL;
    cr_assert_eq(worker_wait_event("pong", 5, NULL, &data), WORKER_OK);
    cr_assert_eq(memcmp(data, "hi!", 3), 0);
    worker_unref(p);
    worker_node_close(n);
}

/* Monitor the peer's proxy, fire `what` at the peer, and see DOWN. */
static void down_after(const char *what)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    cr_assert_eq(fire_copy(p, what, NULL, 0), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 5, p, NULL), WORKER_OK);
    worker_unref(p);
    worker_node_close(n);
}

Test(nats, monitor_down_when_the_remote_worker_ends)
{
    down_after("quit");
}

Test(nats, monitor_down_when_unexported)
{
    down_after("unexport");
}

Test(nats, monitor_down_within_three_heartbeats_of_sigkill)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    kill(peer_pid, SIGKILL);
    waitpid(peer_pid, NULL, 0);
    peer_pid = 0;
    double t0 = tn_now();
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 5, p, NULL), WORKER_OK);
    double took = tn_now() - t0;
    /* 3 heartbeats of 0.1 s, plus at most one tick of this node. */
    cr_assert(took < 3 * HB + 2 * HB + 0.2, "DOWN after %.2f s", took);
    cr_assert(took > 2 * HB, "DOWN after %.2f s: before 3 heartbeats were missed", took);
    worker_unref(p);
    worker_node_close(n);
}

Test(nats, link_to_a_proxy)
{
    worker_node_t *n = node_on(srv.url, "front");
    worker_t *p = peer_echo(n);
    /* A thread's root worker traps links: LINKED_EXIT, not a stop. */
    cr_assert_eq(worker_link(p), WORKER_OK);
    cr_assert_eq(fire_copy(p, "quit", NULL, 0), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_LINKED_EXIT, 5, p, NULL), WORKER_OK);
    worker_unref(p);
    worker_node_close(n);
}

Test(nats, a_group_hands_each_call_to_one_member)
{
    worker_node_t *n = node_on(srv.url, "front");
    start_peer(srv.url, "pool-node", "pool", "0.1");
    worker_t *p = worker_node_lookup(n, "pool");
    cr_assert(wait_running(p, true, 5));
    int seen[3] = { 0 };
    for (int i = 0; i < 60; i++) {
        void *reply = NULL;
        size_t size = 0;
        cr_assert_eq(call_copy(p, "who", NULL, 0, 5, &reply, &size), WORKER_OK);
        cr_assert_eq(size, sizeof(uint32_t));
        uint32_t who;
        memcpy(&who, reply, sizeof who);
        cr_assert_lt(who, 3);
        seen[who]++;
    }
    cr_assert_eq(seen[0] + seen[1] + seen[2], 60);
    cr_assert((seen[0] > 0) + (seen[1] > 0) + (seen[2] > 0) >= 2, "one member took all");
    worker_unref(p);
    worker_node_close(n);
}

static worker_t *main_worker;

static int count_event(const worker_event_t *e, void *u)
{
    atomic_fetch_add((_Atomic int *)u, 1);
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_fire_ex(main_worker, "seen", NULL, &fo);
}

Test(nats, bridged_channels_publish_once_everywhere)
{
    main_worker = worker_current();
    worker_node_t *a = node_on(srv.url, "a"), *b = node_on(srv.url, "b");
    worker_channel_t *ca = worker_channel_new(), *cb = worker_channel_new();
    static _Atomic int got_a, got_b;
    worker_t *wa = worker_spawn(NULL, NULL, NULL), *wb = worker_spawn(NULL, NULL, NULL);
    worker_listen(wa, "x", count_event, &got_a, NULL);
    worker_listen(wb, "x", count_event, &got_b, NULL);
    worker_channel_sub(ca, wa);
    worker_channel_sub(cb, wb);
    cr_assert_eq(worker_node_bridge(a, ca, "test.bridge"), WORKER_OK);
    cr_assert_eq(worker_node_bridge(b, cb, "test.bridge"), WORKER_OK);
    cr_assert_eq(worker_node_bridge(a, ca, "other"), WORKER_EINVAL);
    worker_fire_opts fo = { .copy = "1", .copy_size = 1 };
    cr_assert_eq(worker_channel_pub_ex(ca, "x", NULL, &fo), 2); /* wa and the bridge */
    cr_assert_eq(worker_wait_event("seen", 5, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("seen", 5, NULL, NULL), WORKER_OK);
    fo.copy = "2";
    cr_assert_eq(worker_channel_pub_ex(cb, "x", NULL, &fo), 2);
    cr_assert_eq(worker_wait_event("seen", 5, NULL, NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("seen", 5, NULL, NULL), WORKER_OK);
    /* Nothing more comes: no publish is received twice. */
    worker_wait_timeout(0.3);
    cr_assert_eq(atomic_load(&got_a), 2);
    cr_assert_eq(atomic_load(&got_b), 2);
    worker_node_close(a);
    worker_node_close(b);
    worker_stop(wa);
    worker_stop(wb);
    worker_join(wa);
    worker_join(wb);
    worker_channel_free(ca);
    worker_channel_free(cb);
    worker_unref(wa);
    worker_unref(wb);
}

static int count_down(const worker_event_t *e, void *u)
{
    (void)e;
    atomic_fetch_add((_Atomic int *)u, 1);
    return 0;
}

Test(nats, reconnect_after_the_server_restarts)
{
    static _Atomic int downs;
    worker_on(WORKER_EV_WORKER_DOWN, count_down, (void *)&downs, NULL);
    worker_node_opts o = { .name = "front", .heartbeat = 0.5 };
    worker_node_t *n = worker_node_connect(srv.url, &o, NULL);
    cr_assert(n);
    start_peer(srv.url, "peer", "echo", "0.5");
    worker_t *p = worker_node_lookup(n, "echo");
    cr_assert(wait_running(p, true, 5));
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    uint32_t i = 0;
    for (; i < 500; i++)
        fire_copy(p, "seq", &i, sizeof i);
    tn_server_kill(&srv, SIGKILL);
    for (; i < 600; i++)
        fire_copy(p, "seq", &i, sizeof i); /* in flight while the server is away */
    cr_assert(tn_server_start(&srv, NULL), "nats-server did not restart");
    /* Both nodes reconnect by themselves: a call gets through again. */
    void *reply = NULL;
    size_t size = 0;
    double end = tn_now() + 10;
    int rc;
    while ((rc = call_copy(p, "echo", "x", 1, 0.5, &reply, &size)) != WORKER_OK && tn_now() < end)
        ;
    cr_assert_eq(rc, WORKER_OK, "no answer after the restart: %s", worker_err_name(rc));
    for (; i < 700; i++)
        cr_assert_eq(fire_copy(p, "seq", &i, sizeof i), WORKER_OK);
    cr_assert_eq(call_copy(p, "seq_check", NULL, 0, 5, &reply, &size), WORKER_OK);
    uint32_t got[2];
    memcpy(got, reply, sizeof got);
    /* At most once: some of what was in flight may be lost, nothing is
     * duplicated or reordered, and what was sent after is all there. */
    cr_assert_leq(got[0], 700);
    cr_assert_geq(got[0], 100, "received %u", got[0]);
    cr_assert_eq(got[1], 0, "%u duplicated or reordered", got[1]);
    /* The restart took less than 3 heartbeats: no DOWN. */
    cr_assert_eq(atomic_load(&downs), 0, "a DOWN during the restart");
    worker_node_stats_t st;
    cr_assert_eq(worker_node_stats(n, &st), WORKER_OK);
    cr_assert_geq(st.reconnects, 1);
    worker_unref(p);
    worker_node_close(n);
}

Test(nats, credentials_pass_through)
{
    tn_server auth = { .auth = "s3cret-token" };
    cr_assert(tn_server_start(&auth, NULL));
    int err = 0;
    worker_node_opts o = { .name = "t", .connect_timeout = 0.5 };
    cr_assert_null(worker_node_connect(auth.url, &o, &err), "admitted without the token");
    cr_assert_eq(err, WORKER_EAGAIN);
    o.token = "wrong";
    cr_assert_null(worker_node_connect(auth.url, &o, &err));
    o.token = "s3cret-token";
    worker_node_t *n = worker_node_connect(auth.url, &o, &err);
    cr_assert(n, "refused with the token: %s", worker_err_name(err));
    worker_node_close(n);
    tn_server_kill(&auth, SIGTERM);

    tn_server up = { .auth = "alice:pa55" };
    cr_assert(tn_server_start(&up, NULL));
    char url[128];
    snprintf(url, sizeof url, "nats://alice:pa55@127.0.0.1:%d", up.port);
    o.token = NULL;
    n = worker_node_connect(url, &o, &err);
    cr_assert(n, "user:password in the URL refused: %s", worker_err_name(err));
    worker_node_close(n);
    snprintf(url, sizeof url, "nats://alice:wrong@127.0.0.1:%d", up.port);
    cr_assert_null(worker_node_connect(url, &o, &err));
    tn_server_kill(&up, SIGTERM);
}

static worker_t *watcher_main;

static int watch_sender(const worker_event_t *e, void *u)
{
    (void)u;
    int rc = worker_monitor(worker_event_target(e)); /* W monitors the remote sender's proxy */
    return rc ? rc : worker_fire(watcher_main, "heard", NULL);
}

static int sender_down(const worker_event_t *e, void *u)
{
    (void)e;
    (void)u;
    return worker_fire(watcher_main, "sender_down", NULL);
}

static int fire_from_task(void *arg, void **result)
{
    (void)result;
    worker_fire_opts fo = { .copy = "s", .copy_size = 1 };
    worker_fire_ex(arg, "hello", NULL, &fo);
    return worker_wait_forever();
}

Test(nats, the_sender_proxy_ends_with_the_remote_sender)
{
    watcher_main = worker_current();
    worker_node_t *a = node_on(srv.url, "a"), *b = node_on(srv.url, "b");
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts){ .name = "watcher" });
    worker_listen(w, "hello", watch_sender, NULL, NULL);
    worker_listen(w, WORKER_EV_WORKER_DOWN, sender_down, NULL, NULL);
    cr_assert_eq(worker_node_export(b, w, "watcher"), WORKER_OK);
    worker_t *p = worker_node_lookup(a, "watcher");
    cr_assert(wait_running(p, true, 3));
    worker_t *s = worker_spawn(fire_from_task, p, &(worker_opts){ .name = "sender" });
    /* W heard from s; now s ends: node a announces it, W's monitor fires. */
    cr_assert_eq(worker_wait_event("heard", 5, NULL, NULL), WORKER_OK);
    worker_stop(s);
    worker_join(s);
    cr_assert_eq(worker_wait_event("sender_down", 5, NULL, NULL), WORKER_OK);
    worker_unref(s);
    worker_unref(p);
    worker_node_close(a);
    worker_node_close(b);
    tu_stop_join_unref(w);
}

/* A node closed while fires stream in: its message callbacks are running
 * (on nats.c's threads, firing at the exported worker through the export's
 * entry and the sender's proxy) when worker_node_close frees those. Under
 * ASan a callback that outlived them would be a use after free. */
static atomic_long streamed;
static atomic_bool stop_streaming;

static int count_streamed(const worker_event_t *e, void *u)
{
    (void)e;
    (void)u;
    atomic_fetch_add(&streamed, 1);
    return 0;
}

static void *stream_at(void *proxy)
{
    for (uint32_t i = 0; !atomic_load(&stop_streaming); i++)
        if (fire_copy(proxy, "s", &i, sizeof i) == WORKER_EREJECTED)
            break; /* the receiving node is gone */
    return NULL;
}

Test(nats, closing_a_node_while_fires_stream_in)
{
    worker_node_t *a = node_on(srv.url, "a"), *b = node_on(srv.url, "b");
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .no_parent = true });
    cr_assert_not_null(worker_listen(w, "s", count_streamed, NULL, NULL));
    cr_assert_eq(worker_node_export(a, w, "sink"), WORKER_OK);
    worker_t *p = worker_node_lookup(b, "sink");
    cr_assert(wait_running(p, true, 5), "the export was not heard of");
    pthread_t th;
    pthread_create(&th, NULL, stream_at, p);
    double until = tn_now() + 10;
    while (atomic_load(&streamed) < 20000 && tn_now() < until)
        sched_yield();
    cr_assert_geq(atomic_load(&streamed), 20000, "the stream did not flow");
    worker_node_close(a); /* while callbacks deliver */
    atomic_store(&stop_streaming, true);
    pthread_join(th, NULL);
    worker_unref(p);
    worker_node_close(b);
    tu_stop_join_unref(w);
}
