/* ZeroMQ PUSH -> PULL between two processes, the brokerless peer of P12
 * (BENCH.md Part 2): no server between them, so what a broker hop costs
 * shows beside raw nats.c and our node.
 *
 * P12 the parent pushes 1,000,000 32-byte messages; the peer process binds
 *     the PULL socket, checks each in order and reports the count and the
 *     time of its last check (bench_link.c). The end is confirmed that
 *     way: a PUSH closed with the default linger can lose its last
 *     messages, so the parent never judges by its own sends.
 * The transport: WORKER_BENCH_ZMQ_TRANSPORT=ipc (default; a socket file in
 * /tmp) or tcp (127.0.0.1, a port the peer's bind picks). Default
 * high-water marks (1,000): the pusher waits when the puller lags. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_common.h"
#include "bench_link.h"

#define ENDPOINT_MAX 256
#define RECV_TIMEOUT_MS 10000

static bool over_tcp(void)
{
    const char *v = getenv("WORKER_BENCH_ZMQ_TRANSPORT");
    return v && strcmp(v, "tcp") == 0;
}

/* Where the peer binds: a free port (tcp) or a socket file of this run. */
static void bind_address(char *buf, size_t len)
{
    if (over_tcp())
        snprintf(buf, len, "tcp://127.0.0.1:*");
    else
        snprintf(buf, len, "ipc:///tmp/worker-bench-zmq-%ld.sock", (long)getpid());
}

/* One message into *m: 0, or errno (a timeout, a wrong size: EPROTO). */
static int next_pulled(void *sock, bench_msg *m)
{
    for (;;) {
        int rc = zmq_recv(sock, m, sizeof *m, 0);
        if (rc == (int)sizeof *m)
            return 0;
        if (rc >= 0)
            return EPROTO;
        if (zmq_errno() != EINTR)
            return zmq_errno();
    }
}

/* Binds the PULL socket and tells the parent where (empty: it failed). */
static void *bind_pull(void *ctx, const bench_link *l)
{
    char endpoint[ENDPOINT_MAX] = "";
    size_t len = sizeof endpoint;
    void *sock = zmq_socket(ctx, ZMQ_PULL);
    int timeout = RECV_TIMEOUT_MS;
    bind_address(endpoint, sizeof endpoint);
    if (!sock || zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout) != 0
        || zmq_bind(sock, endpoint) != 0
        || zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        endpoint[0] = 0;
    bench_link_send(l, endpoint, sizeof endpoint);
    return endpoint[0] ? sock : NULL;
}

static int pull_peer(bench_link *l, void *arg)
{
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? bind_pull(ctx, l) : NULL;
    int rc = bench_far_receive(l, sock != NULL, *(long *)arg, next_pulled, sock);
    if (sock) {
        char endpoint[ENDPOINT_MAX];
        size_t len = sizeof endpoint;
        if (!over_tcp() && zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len) == 0)
            unlink(endpoint + strlen("ipc://"));
        zmq_close(sock);
    }
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

static void push_all(void *sock, long n, bench_result *r)
{
    bench_msg m;
    for (long i = 0; i < n && r->ok; i++) {
        bench_msg_make(&m, 0, (uint64_t)i);
        int rc;
        while ((rc = zmq_send(sock, &m, sizeof m, 0)) < 0 && zmq_errno() == EINTR) { }
        if (rc != (int)sizeof m)
            bench_fail(r, "zmq_send %ld: %s", i, zmq_strerror(zmq_errno()));
    }
}

/* The parent: connects its PUSH socket where the peer bound, pushes, and
 * judges by the peer's report. */
static void push_run(const bench_link *l, void *ctx, long n, bench_result *r)
{
    char endpoint[ENDPOINT_MAX] = "";
    if (bench_link_recv(l, endpoint, sizeof endpoint, 30.0) != 0 || !endpoint[0]) {
        bench_fail(r, "the pulling process could not bind");
        return;
    }
    endpoint[ENDPOINT_MAX - 1] = 0;
    void *sock = zmq_socket(ctx, ZMQ_PUSH);
    if (!sock || zmq_connect(sock, endpoint) != 0)
        bench_fail(r, "connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
    else if (!bench_far_ready(l))
        bench_fail(r, "the pulling process did not get ready");
    uint64_t t0 = bench_now_ns();
    if (r->ok)
        push_all(sock, n, r);
    if (r->ok)
        bench_far_verdict(l, n, t0, r);
    int linger = 1000; /* the end is confirmed (or the run failed): do not hang */
    if (sock) {
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(sock);
    }
}

static void p12(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    bench_link l;
    if (bench_link_fork(&l, pull_peer, &n) != 0) {
        bench_fail(r, "fork failed");
        return;
    }
    void *ctx = zmq_ctx_new();
    if (ctx)
        push_run(&l, ctx, n, r);
    else
        bench_fail(r, "zmq_ctx_new failed");
    if (ctx)
        zmq_ctx_term(ctx);
    if (bench_link_wait(&l) != 0 && r->ok)
        bench_fail(r, "the pulling process failed");
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P12", p12 } };
    return bench_main(argc, argv, over_tcp() ? "zmq-tcp" : "zmq-ipc", scenarios, 1);
}
