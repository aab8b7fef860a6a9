/* libworker-actor across processes: two nodes (libworker-actor-nats,
 * <worker/nats.h>, API.md "Across processes and hosts") through the
 * nats-server at $WORKER_BENCH_NATS_URL; our side of BENCH.md Part 2,
 * beside bench_nats.c (raw nats.c) and bench_zmq_proc.c. Built only when
 * the CMake target worker-actor-nats exists.
 *
 * P12  the peer process exports a worker "bench-sink" that checks each
 *      event (32 bytes, one sender, in order); the parent looks it up (a
 *      proxy) and fires 1,000,000 events at it with .copy. The peer
 *      reports the count and the time of its last check: none may be lost.
 * P13x the peer exports "bench-echo", whose listener answers ASK with the
 *      request's 32 bytes (worker_reply_ex, copied); the parent makes
 *      10,000 timed worker_call_ex through the proxy (plus warm-up).
 * Names are resolved when fired: the first fire or call is retried until
 * the export is known (within a heartbeat). */
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <worker/nats.h>
#include <worker/worker.h>

#include "bench_common.h"
#include "bench_link.h"

#define SINK_NAME "bench-sink"
#define ECHO_NAME "bench-echo"
#define EXPORT_WAIT_S 10.0 /* for the export to be known */
#define END_WAIT_S 120.0 /* for the last event at the peer */
#define CALL_TIMEOUT_S 10.0

/* WORKER_BENCH_NATS_ASAP=1 (system nodeasap): every message written at
 * once (worker_node_opts.send_asap), as bench_nats's natsasap does. */
static bool send_asap(void)
{
    const char *v = getenv("WORKER_BENCH_NATS_ASAP");
    return v && strcmp(v, "1") == 0;
}

/* Messages a subscription may hold before NATS drops (slow consumer): the
 * receiver takes the whole million, as bench_nats's subscriber (no pending
 * limits) does; NATS core drops, never slows, a fast sender. */
#define RECEIVER_PENDING 4000000

static worker_node_t *connect_node(const char *name, bench_result *r)
{
    int err = 0;
    worker_node_opts o = { .name = name,
        .send_asap = send_asap(),
        .pending_limit = strcmp(name, "bench-receiver") == 0 ? RECEIVER_PENDING : 0 };
    worker_node_t *n = worker_node_connect(bench_nats_url(), &o, &err);
    if (!n)
        bench_fail(r, "worker_node_connect %s: %s", bench_nats_url(), worker_strerror(err));
    return n;
}

/* A started worker (task NULL: waits forever) with `fn` listening on `event`. */
static worker_t *listening(const char *event, worker_listener_fn fn, void *ud)
{
    worker_t *w = worker_new(NULL, NULL, &(worker_opts) { .name = "bench" });
    if (w && (!worker_listen(w, event, fn, ud, NULL) || worker_start(w) != WORKER_OK)) {
        worker_unref(w);
        w = NULL;
    }
    return w;
}

static void disconnect(worker_node_t *node)
{
    if (node)
        worker_node_close(node);
}

static void finish(worker_t *w)
{
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
}

/* --- P12: the peer ----------------------------------------------------------------- */

typedef struct sink {
    bench_checker check; /* the sink's thread only */
    long expected;
    _Atomic uint64_t received, errors, t_last_ns; /* read by the peer's main thread */
    sem_t done;
} sink;

static int on_event(const worker_event_t *e, void *userdata)
{
    sink *s = userdata;
    const bench_msg *m = worker_event_data(e);
    if (worker_event_size(e) != BENCH_MSG_SIZE || !m) {
        s->check.received++;
        s->check.errors++;
    } else {
        bench_checker_take(&s->check, m);
    }
    atomic_store(&s->received, s->check.received);
    atomic_store(&s->errors, s->check.errors);
    if ((long)s->check.received == s->expected) {
        atomic_store(&s->t_last_ns, bench_now_ns());
        sem_post(&s->done);
    }
    return 0;
}

/* Waits for the last event (or END_WAIT_S) and reports what arrived. */
static void report_sink(const bench_link *l, sink *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)END_WAIT_S;
    int waited;
    while ((waited = sem_timedwait(&s->done, &until)) != 0 && errno == EINTR) { }
    bench_far_report rep = { .received = atomic_load(&s->received),
        .errors = atomic_load(&s->errors),
        .t_last_ns = waited == 0 ? atomic_load(&s->t_last_ns) : bench_now_ns(),
        .status = waited == 0 ? 0 : ETIMEDOUT };
    bench_link_send(l, &rep, sizeof rep);
}

static int sink_peer(bench_link *l, void *arg)
{
    bench_result r = { .ok = true };
    sink s = { .expected = *(long *)arg };
    bench_checker_init(&s.check, 1);
    sem_init(&s.done, 0, 0);
    worker_node_t *node = connect_node("bench-receiver", &r);
    worker_t *w = node ? listening("EV", on_event, &s) : NULL;
    char ready = w && worker_node_export(node, w, SINK_NAME) == WORKER_OK;
    bench_link_send(l, &ready, 1);
    if (ready)
        report_sink(l, &s);
    if (w)
        finish(w);
    disconnect(node);
    sem_destroy(&s.done);
    return ready && atomic_load(&s.errors) == 0 ? 0 : 1;
}

/* --- P12: the parent ---------------------------------------------------------------- */

static int fire_msg(worker_t *proxy, long i)
{
    bench_msg m;
    bench_msg_make(&m, 0, (uint64_t)i);
    worker_fire_opts o = { .copy = &m, .copy_size = sizeof m, .wait = -1 };
    return worker_fire_ex(proxy, "EV", NULL, &o);
}

/* The first fire, retried while no node is known to export the name. */
static int first_fire(worker_t *proxy)
{
    uint64_t until = bench_now_ns() + (uint64_t)(EXPORT_WAIT_S * 1e9);
    int rc;
    while ((rc = fire_msg(proxy, 0)) == WORKER_EREJECTED && bench_now_ns() < until)
        bench_sleep(0.01);
    return rc;
}

/* Events 1..n-1 (event 0 went first, once the export was known). */
static void fire_rest(worker_t *proxy, long n, bench_result *r)
{
    int rc = WORKER_OK;
    for (long i = 1; i < n && rc == WORKER_OK; i++)
        if ((rc = fire_msg(proxy, i)) != WORKER_OK)
            bench_fail(r, "fire %ld: %s", i, worker_strerror(rc));
    if (rc != WORKER_OK && r->ok)
        bench_fail(r, "fire: %s", worker_strerror(rc));
}

static void p12(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    bench_link l;
    if (bench_link_fork(&l, sink_peer, &n) != 0) {
        bench_fail(r, "fork failed");
        return;
    }
    worker_node_t *node = bench_far_ready(&l) ? connect_node("bench-sender", r) : NULL;
    worker_t *proxy = node ? worker_node_lookup(node, SINK_NAME) : NULL;
    if (!proxy && r->ok)
        bench_fail(r, "no proxy for %s (peer not ready, or lookup failed)", SINK_NAME);
    /* The first fire waits until the export is known (up to a heartbeat);
     * the timed part starts after it. */
    int first = r->ok ? first_fire(proxy) : WORKER_OK;
    if (first != WORKER_OK)
        bench_fail(r, "first fire: %s", worker_strerror(first));
    uint64_t t0 = bench_now_ns();
    if (r->ok)
        fire_rest(proxy, n, r);
    if (r->ok)
        bench_far_verdict(&l, n, t0, r);
    worker_unref(proxy);
    disconnect(node);
    if (bench_link_wait(&l) != 0 && r->ok)
        bench_fail(r, "the receiving process failed");
}

/* --- P13x ------------------------------------------------------------------------------ */

static int on_ask(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    if (worker_event_size(e) != BENCH_MSG_SIZE || !worker_event_data(e))
        return worker_reply_error(e, WORKER_EINVAL);
    worker_fire_opts o = { .copy = worker_event_data(e), .copy_size = BENCH_MSG_SIZE };
    return worker_reply_ex(e, NULL, &o);
}

/* Answers until the parent closes its end of the link. */
static int echo_peer(bench_link *l, void *arg)
{
    (void)arg;
    bench_result r = { .ok = true };
    worker_node_t *node = connect_node("bench-replier", &r);
    worker_t *w = node ? listening("ASK", on_ask, NULL) : NULL;
    char ready = w && worker_node_export(node, w, ECHO_NAME) == WORKER_OK;
    bench_link_send(l, &ready, 1);
    char end;
    if (ready)
        bench_link_recv(l, &end, 1, 3600.0); /* EOF when the parent is done */
    if (w)
        finish(w);
    disconnect(node);
    return ready ? 0 : 1;
}

static int call_msg(worker_t *proxy, long i, bench_result *r)
{
    bench_msg m;
    bench_msg_make(&m, 0, (uint64_t)i);
    worker_fire_opts o = { .copy = &m, .copy_size = sizeof m };
    void *reply = NULL;
    size_t size = 0;
    int rc = worker_call_ex(proxy, "ASK", NULL, &o, CALL_TIMEOUT_S, &reply, &size);
    if (rc == WORKER_OK && (size != BENCH_MSG_SIZE || !bench_msg_ok(reply, 0, (uint64_t)i)))
        bench_fail(r, "call %ld: wrong reply", i);
    return rc;
}

/* One timed call; false (and the failure recorded) when it went wrong. */
static bool call_once(worker_t *proxy, long i, uint64_t *ns, bench_result *r)
{
    uint64_t t0 = bench_now_ns();
    int rc = call_msg(proxy, i, r);
    *ns = bench_now_ns() - t0;
    if (rc != WORKER_OK)
        bench_fail(r, "call %ld: %s", i, worker_strerror(rc));
    return r->ok;
}

/* Warm-up, the first call retried while the export is not known yet. */
static void warm_up(worker_t *proxy, long warm, bench_result *r)
{
    uint64_t until = bench_now_ns() + (uint64_t)(EXPORT_WAIT_S * 1e9), scratch;
    while (call_msg(proxy, 0, r) == WORKER_EREJECTED && bench_now_ns() < until)
        bench_sleep(0.01);
    for (long i = 1; i < warm && call_once(proxy, i, &scratch, r); i++) { }
}

static void call_all(worker_t *proxy, long n, long warm, bench_result *r)
{
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) {
        bench_fail(r, "out of memory");
        return;
    }
    warm_up(proxy, warm, r);
    uint64_t start = bench_now_ns();
    long done = 0;
    while (r->ok && done < n && call_once(proxy, warm + done, &lat[done], r))
        done++;
    if (r->ok)
        bench_latency_result(r, lat, done, start, bench_now_ns());
    free(lat);
}

static void p13x(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n) + 1;
    bench_link l;
    if (bench_link_fork(&l, echo_peer, NULL) != 0) {
        bench_fail(r, "fork failed");
        return;
    }
    worker_node_t *node = bench_far_ready(&l) ? connect_node("bench-caller", r) : NULL;
    worker_t *proxy = node ? worker_node_lookup(node, ECHO_NAME) : NULL;
    if (!proxy && r->ok)
        bench_fail(r, "no proxy for %s (peer not ready, or lookup failed)", ECHO_NAME);
    if (r->ok)
        call_all(proxy, n, warm, r);
    worker_unref(proxy);
    disconnect(node);
    if (bench_link_wait(&l) != 0 && r->ok)
        bench_fail(r, "the replying process failed");
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P12", p12 }, { "P13x", p13x } };
    return bench_main(argc, argv, "node", scenarios, 2);
}
