/* nng inproc, the other common choice for in-process messaging. nng_send()
 * copies the 32 bytes into a message; nng_recv() copies them out. Send and
 * receive buffers of 1,024 messages (as in BENCH.md's reference runs).
 *
 * P1 pair0: main thread -> consumer thread; the end is the join of the consumer.
 * P2 pair0 ping-pong, main <-> echo thread.
 * P3 push0 x4 -> pull0 (pair takes one peer only); per-sender order checked. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <stdio.h>
#include <stdlib.h>

#define BUFFERS 1024

static void check(int rv, const char *what)
{
    if (rv != 0) {
        fprintf(stderr, "nng: %s: %s\n", what, nng_strerror(rv));
        exit(1);
    }
}

static void buffers(nng_socket s)
{
    check(nng_socket_set_int(s, NNG_OPT_SENDBUF, BUFFERS), "set send-buffer");
    check(nng_socket_set_int(s, NNG_OPT_RECVBUF, BUFFERS), "set recv-buffer");
}

static void send_msg(nng_socket s, const bench_msg *m)
{
    check(nng_send(s, (void *)m, sizeof *m, 0), "nng_send");
}

static void recv_msg(nng_socket s, bench_msg *m)
{
    size_t sz = sizeof *m;
    check(nng_recv(s, m, &sz, 0), "nng_recv");
    if (sz != sizeof *m) {
        fprintf(stderr, "nng: a message of %zu bytes\n", sz);
        exit(1);
    }
}

/* --- P1 / P3 ---------------------------------------------------------------------- */

typedef struct consumer {
    nng_socket sock;
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

static void produce(nng_socket s, uint32_t id, long n)
{
    bench_msg m;
    for (long i = 0; i < n; i++) {
        bench_msg_make(&m, id, (uint64_t)i);
        send_msg(s, &m);
    }
}

typedef struct producer {
    pthread_t thread;
    nng_socket sock;
    uint32_t id;
    long n;
    bench_gate *gate;
} producer;

static void *produce_thread(void *arg)
{
    producer *p = arg;
    bench_gate_wait(p->gate);
    produce(p->sock, p->id, p->n);
    return NULL;
}

static void p1(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    nng_socket rx, tx;
    check(nng_pair0_open(&rx), "nng_pair0_open");
    check(nng_pair0_open(&tx), "nng_pair0_open");
    buffers(rx);
    buffers(tx);
    check(nng_listen(rx, "inproc://p1", NULL, 0), "nng_listen");
    check(nng_dial(tx, "inproc://p1", NULL, 0), "nng_dial");
    consumer c = { .sock = rx, .n = n };
    bench_checker_init(&c.check, 1);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    uint64_t t0 = bench_now_ns();
    produce(tx, 0, n);
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    bench_check_verdict(&c.check, n, r);
    nng_close(tx);
    nng_close(rx);
    r->count = (long)c.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_rate_figs(r, n, r->elapsed);
}

static void p3(const bench_args *a, bench_result *r)
{
    int ns = bench_senders(a);
    long per = bench_count(a) / ns, n = per * ns;
    nng_socket rx;
    check(nng_pull0_open(&rx), "nng_pull0_open");
    buffers(rx);
    check(nng_listen(rx, "inproc://p3", NULL, 0), "nng_listen");
    consumer c = { .sock = rx, .n = n };
    bench_checker_init(&c.check, (uint32_t)ns);
    bench_gate gate;
    bench_gate_init(&gate);
    producer ps[BENCH_MAX_SENDERS];
    for (int i = 0; i < ns; i++) {
        ps[i] = (producer) { .id = (uint32_t)i, .n = per, .gate = &gate };
        check(nng_push0_open(&ps[i].sock), "nng_push0_open");
        buffers(ps[i].sock);
        check(nng_dial(ps[i].sock, "inproc://p3", NULL, 0), "nng_dial");
        pthread_create(&ps[i].thread, NULL, produce_thread, &ps[i]);
    }
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    uint64_t t0 = bench_now_ns();
    bench_gate_open(&gate);
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < ns; i++) {
        pthread_join(ps[i].thread, NULL);
        nng_close(ps[i].sock);
    }
    bench_check_verdict(&c.check, n, r);
    bench_gate_destroy(&gate);
    nng_close(rx);
    r->count = (long)c.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_rate_figs(r, n, r->elapsed);
}

/* --- P2 ---------------------------------------------------------------------------- */

typedef struct pingpong {
    nng_socket sock;
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
    nng_socket me, peer;
    check(nng_pair0_open(&me), "nng_pair0_open");
    check(nng_pair0_open(&peer), "nng_pair0_open");
    buffers(me);
    buffers(peer);
    check(nng_listen(peer, "inproc://p2", NULL, 0), "nng_listen");
    check(nng_dial(me, "inproc://p2", NULL, 0), "nng_dial");
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
    nng_close(me);
    nng_close(peer);
    r->count = done;
    r->elapsed = (double)(end - start) / 1e9;
    bench_latency_figs(r, lat, done);
    free(lat);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 } };
    return bench_main(argc, argv, "nng", scenarios, sizeof scenarios / sizeof *scenarios);
}
