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
 *    messages (the "slow joiner" problem). */
#define _GNU_SOURCE
#include "bench_common.h"

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

/* --- P1 / P3 ---------------------------------------------------------------------- */

typedef struct consumer {
    void *sock;
    long n;
    bench_checker check;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    bench_msg m;
    for (long i = 0; i < c->n; i++) {
        recv_msg(c->sock, &m);
        bench_checker_take(&c->check, &m);
    }
    return NULL;
}

typedef struct producer {
    pthread_t thread;
    void *ctx;
    void *sock; /* P1: the main thread's PAIR */
    uint32_t id;
    long n;
    bench_gate *gate;
} producer;

static void produce(void *sock, uint32_t id, long n)
{
    bench_msg m;
    for (long i = 0; i < n; i++) {
        bench_msg_make(&m, id, (uint64_t)i);
        send_msg(sock, &m);
    }
}

static void *produce_thread(void *arg)
{
    producer *p = arg;
    void *s = make_socket(p->ctx, ZMQ_PUSH);
    if (zmq_connect(s, "inproc://p3") != 0)
        die_zmq("zmq_connect");
    bench_gate_wait(p->gate);
    produce(s, p->id, p->n);
    zmq_close(s);
    return NULL;
}

static void p1(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    void *ctx = zmq_ctx_new();
    void *rx = make_socket(ctx, ZMQ_PAIR), *tx = make_socket(ctx, ZMQ_PAIR);
    if (zmq_bind(rx, "inproc://p1") != 0 || zmq_connect(tx, "inproc://p1") != 0)
        die_zmq("bind/connect");
    consumer c = { .sock = rx, .n = n };
    bench_checker_init(&c.check, 1);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c); /* the thread takes over rx */
    uint64_t t0 = bench_now_ns();
    produce(tx, 0, n);
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    bench_check_verdict(&c.check, n, r);
    zmq_close(tx);
    zmq_close(rx);
    zmq_ctx_term(ctx);
    r->count = (long)c.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_rate_figs(r, n, r->elapsed);
}

static void p3(const bench_args *a, bench_result *r)
{
    int ns = bench_senders(a);
    long per = bench_count(a) / ns, n = per * ns;
    void *ctx = zmq_ctx_new();
    void *rx = make_socket(ctx, ZMQ_PULL);
    if (zmq_bind(rx, "inproc://p3") != 0)
        die_zmq("zmq_bind");
    consumer c = { .sock = rx, .n = n };
    bench_checker_init(&c.check, (uint32_t)ns);
    bench_gate gate;
    bench_gate_init(&gate);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    producer ps[BENCH_MAX_SENDERS];
    for (int i = 0; i < ns; i++) {
        ps[i] = (producer) { .ctx = ctx, .id = (uint32_t)i, .n = per, .gate = &gate };
        pthread_create(&ps[i].thread, NULL, produce_thread, &ps[i]);
    }
    uint64_t t0 = bench_now_ns();
    bench_gate_open(&gate);
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < ns; i++)
        pthread_join(ps[i].thread, NULL);
    bench_check_verdict(&c.check, n, r);
    bench_gate_destroy(&gate);
    zmq_close(rx);
    zmq_ctx_term(ctx);
    r->count = (long)c.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_rate_figs(r, n, r->elapsed);
}

/* --- P2 ---------------------------------------------------------------------------- */

typedef struct pingpong {
    void *sock;
    long n;
    bench_checker check;
} pingpong;

static void *echo_thread(void *arg)
{
    pingpong *pp = arg;
    bench_msg m;
    for (long i = 0; i < pp->n; i++) {
        recv_msg(pp->sock, &m);
        bench_checker_take(&pp->check, &m);
        send_msg(pp->sock, &m);
    }
    return NULL;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) {
        bench_fail(r, "out of memory");
        return;
    }
    void *ctx = zmq_ctx_new();
    void *me = make_socket(ctx, ZMQ_PAIR), *peer = make_socket(ctx, ZMQ_PAIR);
    if (zmq_bind(peer, "inproc://p2") != 0 || zmq_connect(me, "inproc://p2") != 0)
        die_zmq("bind/connect");
    pingpong pp = { .sock = peer, .n = total };
    bench_checker_init(&pp.check, 1);
    pthread_t et;
    pthread_create(&et, NULL, echo_thread, &pp);
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < total; i++) {
        bench_msg m, back;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        send_msg(me, &m);
        recv_msg(me, &back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i))
            bench_fail(r, "round trip %ld: wrong answer", i);
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    pthread_join(et, NULL);
    bench_check_verdict(&pp.check, total, r);
    zmq_close(me);
    zmq_close(peer);
    zmq_ctx_term(ctx);
    r->count = done;
    r->elapsed = (double)(end - start) / 1e9;
    bench_latency_figs(r, lat, done);
    free(lat);
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
    r->count = delivered;
    r->elapsed = (double)(t1 - t0) / 1e9;
    long deliveries = pubs * nsub;
    bench_fig(r, "deliveries_per_s", (double)deliveries / r->elapsed);
    bench_fig(r, "ns_per_delivery", r->elapsed * 1e9 / (double)deliveries);
    bench_fig(r, "subscribers", nsub);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[]
        = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 }, { "P4", p4 } };
    return bench_main(argc, argv, "zmq", scenarios, sizeof scenarios / sizeof *scenarios);
}
