/* libworker-actor-nats under faults: garbage and oversize messages
 * published by a raw nats.c client onto a node's subjects, a slow
 * consumer, and a 3-server NATS cluster with one server killed. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdatomic.h>

#include "tn_server.h"

#include <worker/nats.h>
#include <worker/worker.h>

#define HB 0.1

static tn_server srv[3];
static pid_t peer_pid;
static int peer_in = -1;
static _Atomic int log_bad, log_slow;

static void on_log(int level, const char *worker_name, const char *msg, void *u)
{
    (void)level;
    (void)worker_name;
    (void)u;
    if (strstr(msg, "does not parse"))
        atomic_fetch_add(&log_bad, 1);
    if (strstr(msg, "slow consumer"))
        atomic_fetch_add(&log_slow, 1);
}

static void setup(void)
{
    memset(srv, 0, sizeof srv);
    worker_set_log(on_log, NULL);
}

static void teardown(void)
{
    if (peer_pid > 0)
        tn_peer_end(peer_pid, peer_in);
    for (int i = 0; i < 3; i++)
        tn_server_kill(&srv[i], SIGTERM);
    worker_set_log(NULL, NULL);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 40);

static worker_node_t *node_on(const char *url, const char *name, int pending_limit)
{
    worker_node_opts o = { .name = name, .heartbeat = HB, .pending_limit = pending_limit };
    int err = 0;
    worker_node_t *n = worker_node_connect(url, &o, &err);
    cr_assert(n, "connect %s: %s", url, worker_strerror(err));
    return n;
}

static bool wait_running(worker_t *p, double secs)
{
    double end = tn_now() + secs;
    while (!worker_is_running(p)) {
        if (tn_now() > end)
            return false;
        worker_wait_timeout(0.01);
    }
    return true;
}

static bool wait_stat(worker_node_t *n, size_t offset, uint64_t at_least, double secs)
{
    double end = tn_now() + secs;
    for (;;) {
        worker_node_stats_t st;
        worker_node_stats(n, &st);
        uint64_t v;
        memcpy(&v, (char *)&st + offset, sizeof v);
        if (v >= at_least)
            return true;
        if (tn_now() > end)
            return false;
        worker_wait_timeout(0.01);
    }
}

static int on_echo(const worker_event_t *e, void *u)
{
    (void)u;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_reply_ex(e, NULL, &fo);
}

static worker_t *echo_worker(void)
{
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .name = "echo" });
    worker_listen(w, "echo", on_echo, NULL, NULL);
    return w;
}

static int call_echo(worker_t *p, double timeout)
{
    worker_fire_opts fo = { .copy = "ok", .copy_size = 2 };
    void *reply = NULL;
    size_t size = 0;
    int rc = worker_call_ex(p, "echo", NULL, &fo, timeout, &reply, &size);
    if (rc == WORKER_OK && (size != 2 || memcmp(reply, "ok", 2) != 0))
        return WORKER_EINVAL;
    return rc;
}

static void finish(worker_node_t **nodes, int count, worker_t *w)
{
    for (int i = 0; i < count; i++)
        worker_node_close(nodes[i]);
    if (w) {
        tu_stop_join_unref(w);
    }
}

static natsConnection *raw_client(const char *url)
{
    natsConnection *nc = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    return nc;
}

Test(faults, garbage_and_oversize_are_counted_not_crashes)
{
    cr_assert(tn_server_start(&srv[0], NULL));
    worker_node_t *n[2] = { node_on(srv[0].url, "a", 0), node_on(srv[0].url, "b", 0) };
    worker_t *w = echo_worker();
    cr_assert_eq(worker_node_export(n[0], w, "echo"), WORKER_OK);
    natsConnection *nc = raw_client(srv[0].url);
    static const char *subjects[]
        = { "wk.default.w.echo", "wk.default.hb.evil", "wk.default.r.a.1", "wk.default.d.a.1" };
    unsigned char bad_version[40] = { 'W', 'K', 9, 1 };
    unsigned char truncated[20] = { 'W', 'K', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 200, 0 };
    size_t big_size = 900 * 1024;
    char *big = malloc(big_size);
    memset(big, 'x', big_size);
    int sent = 0;
    for (int i = 0; i < 4; i++) {
        natsConnection_PublishString(nc, subjects[i], "garbage");
        natsConnection_Publish(nc, subjects[i], NULL, 0);
        natsConnection_Publish(nc, subjects[i], bad_version, sizeof bad_version);
        natsConnection_Publish(nc, subjects[i], truncated, sizeof truncated);
        natsConnection_Publish(nc, subjects[i], big, (int)big_size);
        sent += 5;
    }
    natsConnection_FlushTimeout(nc, 5000);
    free(big);
    cr_assert(wait_stat(n[0], offsetof(worker_node_stats_t, bad), (uint64_t)sent, 10),
        "not every bad message was counted");
    cr_assert_geq(atomic_load(&log_bad), sent);
    /* Both nodes still work. */
    worker_t *p = worker_node_lookup(n[1], "echo");
    cr_assert(wait_running(p, 5));
    cr_assert_eq(call_echo(p, 5), WORKER_OK);
    /* Our own oversize message is refused, not sent: the call gets an error. */
    size_t huge_size = 2 * 1024 * 1024;
    char *huge = calloc(1, huge_size);
    worker_fire_opts fo = { .copy = huge, .copy_size = huge_size };
    void *reply;
    cr_assert_eq(worker_call_ex(p, "echo", NULL, &fo, 5, &reply, NULL), WORKER_EINVAL);
    free(huge);
    natsConnection_Destroy(nc);
    worker_unref(p);
    finish(n, 2, w);
}

Test(faults, a_slow_consumer_is_reported_and_survived)
{
    cr_assert(tn_server_start(&srv[0], NULL));
    worker_node_t *n[2] = { node_on(srv[0].url, "slow", 1), node_on(srv[0].url, "b", 0) };
    worker_t *w = echo_worker();
    cr_assert_eq(worker_node_export(n[0], w, "echo"), WORKER_OK);
    natsConnection *nc = raw_client(srv[0].url);
    unsigned char msg[64] = { 0 };
    for (int i = 0; i < 50000; i++)
        natsConnection_Publish(nc, "wk.default.w.echo", msg, sizeof msg);
    natsConnection_FlushTimeout(nc, 5000);
    cr_assert(wait_stat(n[0], offsetof(worker_node_stats_t, async_errors), 1, 10),
        "no slow consumer was reported");
    cr_assert_geq(atomic_load(&log_slow), 1);
    worker_t *p = worker_node_lookup(n[1], "echo");
    cr_assert(wait_running(p, 5));
    int rc = WORKER_ETIMEDOUT, tries = 0;
    while (rc != WORKER_OK && tries++ < 10)
        rc = call_echo(p, 1);
    worker_node_stats_t st;
    worker_node_stats(n[0], &st);
    cr_assert_eq(rc, WORKER_OK, "%s after %d tries; received %llu dropped %llu",
        worker_err_name(rc), tries, (unsigned long long)st.received,
        (unsigned long long)st.dropped);
    natsConnection_Destroy(nc);
    worker_unref(p);
    finish(n, 2, w);
}

/* Three servers in one cluster on loopback ports; a node on each: this
 * process's "a" on server 0, the peer on server 1 (then server 2 when 1
 * is killed), this process's "b" on server 2. */
Test(faults, three_server_cluster_with_one_killed)
{
    for (int i = 0; i < 3; i++) {
        srv[i].port = tn_free_port();
        srv[i].cluster_port = tn_free_port();
    }
    for (int i = 0; i < 3; i++) {
        char routes[200];
        int j = (i + 1) % 3, k = (i + 2) % 3;
        snprintf(routes, sizeof routes, "nats://127.0.0.1:%d,nats://127.0.0.1:%d",
            srv[j].cluster_port, srv[k].cluster_port);
        cr_assert(tn_server_start(&srv[i], routes), "server %d did not start", i);
    }
    char peer_url[200], a_url[200], b_url[200];
    snprintf(peer_url, sizeof peer_url, "%s,%s", srv[1].url, srv[2].url);
    snprintf(a_url, sizeof a_url, "%s,%s", srv[0].url, srv[2].url);
    snprintf(b_url, sizeof b_url, "%s,%s", srv[2].url, srv[0].url);
    const char *argv[] = { NATS_PEER_PATH, peer_url, "peer", "0.2", "echo", NULL };
    peer_pid = tn_spawn(argv, &peer_in);
    worker_node_t *n[2] = { node_on(a_url, "a", 0), node_on(b_url, "b", 0) };
    worker_t *pool = echo_worker();
    cr_assert_eq(worker_node_export_group(n[1], pool, "local"), WORKER_OK);
    worker_t *pa = worker_node_lookup(n[0], "echo"), *pb = worker_node_lookup(n[1], "echo");
    worker_t *pl = worker_node_lookup(n[0], "local");
    cr_assert(wait_running(pa, 10) && wait_running(pb, 10) && wait_running(pl, 10),
        "the routes did not carry the exports");
    cr_assert_eq(call_echo(pa, 5), WORKER_OK); /* server 0 -> 1 */
    cr_assert_eq(call_echo(pb, 5), WORKER_OK); /* server 2 -> 1 */
    cr_assert_eq(call_echo(pl, 5), WORKER_OK); /* server 0 -> 2 */
    tn_server_kill(&srv[1], SIGKILL); /* the peer's server */
    double end = tn_now() + 15;
    int rc = WORKER_EREJECTED;
    while (tn_now() < end && (rc = call_echo(pa, 0.5)) != WORKER_OK)
        worker_wait_timeout(0.05);
    cr_assert_eq(
        rc, WORKER_OK, "the peer did not come back through server 2: %s", worker_err_name(rc));
    cr_assert_eq(call_echo(pb, 5), WORKER_OK);
    cr_assert_eq(call_echo(pl, 5), WORKER_OK);
    worker_unref(pa);
    worker_unref(pb);
    worker_unref(pl);
    finish(n, 2, pool);
}
