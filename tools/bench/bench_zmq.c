/* ZeroMQ inproc, what C services use for in-process messaging. zmq_send()
 * copies the 32 bytes into a message; zmq_recv() copies them out. Default
 * high-water marks (1,000) give back-pressure for the one-to-one cases.
 *
 * P1 PAIR: main thread -> consumer thread; the end is the join of the consumer.
 * P2 PAIR ping-pong, main <-> echo thread.
 * P3 PUSH x4 -> PULL (PAIR takes one peer only); per-pipe order is kept, so
 *    per-sender order is checked as everywhere else.
 * P4 PUB -> 64 SUB threads, high-water marks off (a PUB drops at the mark),
 *    50,000 publishes; subscribers are synchronised first with marker
 *    messages (the "slow joiner" problem).
 * P1 to P3 run on bench_transport.c's drivers; P4 is this file's own. */
#define _GNU_SOURCE
#include "bench_transport.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SYNC_SENDER 0xFFFFFFFFu

static void die_zmq(const char *what)
{
    fprintf(stderr, "zmq: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *make_socket(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        die_zmq("zmq_socket");
    return s;
}

static void send_msg(void *s, const bench_msg *m)
{
    for (;;) {
        int rc = zmq_send(s, m, sizeof *m, 0);
        if (rc == (int)sizeof *m)
            return;
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        die_zmq("zmq_send");
    }
}

static void recv_msg(void *s, bench_msg *m)
{
    for (;;) {
        int rc = zmq_recv(s, m, sizeof *m, 0);
        if (rc == (int)sizeof *m)
            return;
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        if (rc >= 0) {
            fprintf(stderr, "zmq: a message of %d bytes\n", rc);
            exit(1);
        }
        die_zmq("zmq_recv");
    }
}

static void set_int(void *s, int opt, int v)
{
    if (zmq_setsockopt(s, opt, &v, sizeof v) != 0)
        die_zmq("zmq_setsockopt");
}

/* --- the transport of P1, P2, P3 ------------------------------------------------------- */

typedef struct zlink {
    void *ctx;
    void *tx; /* P1, P2: the main thread's PAIR; P3: NULL (senders open a PUSH each) */
    void *rx; /* the receiver's PAIR or PULL */
} zlink;

static const char *address(bench_shape shape)
{
    return shape == BENCH_ONE_TO_ONE ? "inproc://p1"
        : shape == BENCH_ROUND_TRIP  ? "inproc://p2"
                                     : "inproc://p3";
}

static void *open_link(bench_shape shape, int senders)
{
    (void)senders;
    zlink *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    const char *addr = address(shape);
    l->ctx = zmq_ctx_new();
    if (shape == BENCH_MANY_TO_ONE) {
        l->rx = make_socket(l->ctx, ZMQ_PULL);
        if (zmq_bind(l->rx, addr) != 0)
            die_zmq("zmq_bind");
        return l;
    }
    l->rx = make_socket(l->ctx, ZMQ_PAIR);
    l->tx = make_socket(l->ctx, ZMQ_PAIR);
    if (zmq_bind(l->rx, addr) != 0 || zmq_connect(l->tx, addr) != 0)
        die_zmq("bind/connect");
    return l;
}

/* A P3 sender's own PUSH socket, made in its thread (end->local: closed by
 * detach). The receiver of P1 takes over the PAIR made by the main thread. */
static void attach(void *link, bench_side side, uint32_t sender, bench_end *end)
{
    (void)sender;
    zlink *l = link;
    void *s = side == BENCH_RECEIVER ? l->rx : l->tx;
    if (!s) {
        s = end->local = make_socket(l->ctx, ZMQ_PUSH);
        if (zmq_connect(s, address(BENCH_MANY_TO_ONE)) != 0)
            die_zmq("zmq_connect");
    }
    end->in = end->out = s;
}

static void detach(bench_end *end)
{
    if (end->local)
        zmq_close(end->local);
}

static void send_one(const bench_end *end, const bench_msg *m)
{
    send_msg(end->out, m);
}

static void recv_one(const bench_end *end, bench_msg *m)
{
    recv_msg(end->in, m);
}

static void close_link(void *link)
{
    zlink *l = link;
    if (l->tx)
        zmq_close(l->tx);
    zmq_close(l->rx);
    zmq_ctx_term(l->ctx);
    free(l);
}

/* --- P4: PUB/SUB ------------------------------------------------------------------ */

typedef struct subscriber {
    pthread_t thread;
    void *ctx;
    long n;
    atomic_int *ready;
    bench_checker check;
} subscriber;

static void *subscribe_thread(void *arg)
{
    subscriber *s = arg;
    void *sock = make_socket(s->ctx, ZMQ_SUB);
    set_int(sock, ZMQ_RCVHWM, 0);
    if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0) != 0 || zmq_connect(sock, "inproc://p4") != 0)
        die_zmq("subscribe/connect");
    bool synced = false;
    bench_msg m;
    while ((long)s->check.received < s->n) {
        recv_msg(sock, &m);
        if (m.sender == SYNC_SENDER) {
            if (!synced) {
                synced = true;
                atomic_fetch_add(s->ready, 1);
            }
            continue;
        }
        bench_checker_take(&s->check, &m);
    }
    zmq_close(sock);
    return NULL;
}

static void p4(const bench_args *a, bench_result *r)
{
    long pubs = bench_count(a);
    int nsub = bench_workers(a);
    void *ctx = zmq_ctx_new();
    void *pub = make_socket(ctx, ZMQ_PUB);
    set_int(pub, ZMQ_SNDHWM, 0);
    if (zmq_bind(pub, "inproc://p4") != 0)
        die_zmq("zmq_bind");
    atomic_int ready = 0;
    subscriber *subs = calloc((size_t)nsub, sizeof *subs);
    if (!subs) {
        bench_fail(r, "out of memory");
        return;
    }
    for (int i = 0; i < nsub; i++) {
        subs[i].ctx = ctx;
        subs[i].n = pubs;
        subs[i].ready = &ready;
        bench_checker_init(&subs[i].check, 1);
        pthread_create(&subs[i].thread, NULL, subscribe_thread, &subs[i]);
    }
    bench_msg sync;
    bench_msg_make(&sync, SYNC_SENDER, 0);
    while (atomic_load(&ready) < nsub) {
        send_msg(pub, &sync);
        bench_sleep(0.001);
    }
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < pubs; i++) {
        bench_msg m;
        bench_msg_make(&m, 0, (uint64_t)i);
        send_msg(pub, &m);
    }
    long delivered = 0;
    for (int i = 0; i < nsub; i++)
        pthread_join(subs[i].thread, NULL);
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < nsub; i++) {
        bench_check_verdict(&subs[i].check, pubs, r);
        delivered += (long)subs[i].check.received;
    }
    free(subs);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    bench_fanout_result(r, delivered, pubs, nsub, t0, t1);
}

int main(int argc, char **argv)
{
    static const bench_transport transport = {
        .system = "zmq",
        .open = open_link,
        .attach = attach,
        .detach = detach,
        .send = send_one,
        .recv = recv_one,
        .close = close_link,
    };
    static const bench_scenario own[] = { { "P4", p4 } };
    return bench_transport_main(argc, argv, &transport, own, sizeof own / sizeof *own);
}
