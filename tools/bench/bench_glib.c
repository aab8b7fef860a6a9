/* GLib's GAsyncQueue, the usual "queue + thread" in C applications: one
 * g_malloc per message (the 32-byte copy), g_async_queue_push / _pop.
 *
 * P1 main thread -> consumer thread; the end is the join of the consumer.
 * P2 ping-pong over two queues, main <-> echo thread.
 * P3 4 producer threads -> 1 consumer, per-sender order checked. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <glib.h>
#include <string.h>

static void push_copy(GAsyncQueue *q, const bench_msg *m)
{
    bench_msg *copy = g_malloc(sizeof *copy);
    memcpy(copy, m, sizeof *m);
    g_async_queue_push(q, copy);
}

static void pop_copy(GAsyncQueue *q, bench_msg *out)
{
    bench_msg *m = g_async_queue_pop(q);
    memcpy(out, m, sizeof *out);
    g_free(m);
}

/* --- P1 / P3 ---------------------------------------------------------------------- */

typedef struct consumer {
    GAsyncQueue *q;
    long n;
    bench_checker check;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    bench_msg m;
    for (long i = 0; i < c->n; i++) {
        pop_copy(c->q, &m);
        bench_checker_take(&c->check, &m);
    }
    return NULL;
}

typedef struct producer {
    pthread_t thread;
    GAsyncQueue *q;
    uint32_t id;
    long n;
    bench_gate *gate;
} producer;

static void produce(producer *p)
{
    bench_msg m;
    for (long i = 0; i < p->n; i++) {
        bench_msg_make(&m, p->id, (uint64_t)i);
        push_copy(p->q, &m);
    }
}

static void *produce_thread(void *arg)
{
    producer *p = arg;
    bench_gate_wait(p->gate);
    produce(p);
    return NULL;
}

static void many_to_one(int nsenders, long per, bench_result *r)
{
    long n = per * nsenders;
    GAsyncQueue *q = g_async_queue_new();
    consumer c = { .q = q, .n = n };
    bench_checker_init(&c.check, (uint32_t)nsenders);
    bench_gate gate;
    bench_gate_init(&gate);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    producer ps[BENCH_MAX_SENDERS];
    for (int i = 0; i < nsenders; i++)
        ps[i] = (producer) { .q = q, .id = (uint32_t)i, .n = per, .gate = &gate };
    uint64_t t0;
    if (nsenders == 1) {
        t0 = bench_now_ns();
        produce(&ps[0]);
    } else {
        for (int i = 0; i < nsenders; i++)
            pthread_create(&ps[i].thread, NULL, produce_thread, &ps[i]);
        t0 = bench_now_ns();
        bench_gate_open(&gate);
    }
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    if (nsenders > 1)
        for (int i = 0; i < nsenders; i++)
            pthread_join(ps[i].thread, NULL);
    bench_check_verdict(&c.check, n, r);
    bench_gate_destroy(&gate);
    g_async_queue_unref(q);
    r->count = (long)c.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_rate_figs(r, n, r->elapsed);
}

static void p1(const bench_args *a, bench_result *r)
{
    many_to_one(1, bench_count(a), r);
}

static void p3(const bench_args *a, bench_result *r)
{
    int ns = bench_senders(a);
    many_to_one(ns, bench_count(a) / ns, r);
}

/* --- P2 ---------------------------------------------------------------------------- */

typedef struct pingpong {
    GAsyncQueue *ping, *pong;
    long n;
    bench_checker check;
} pingpong;

static void *echo_thread(void *arg)
{
    pingpong *pp = arg;
    bench_msg m;
    for (long i = 0; i < pp->n; i++) {
        pop_copy(pp->ping, &m);
        bench_checker_take(&pp->check, &m);
        push_copy(pp->pong, &m);
    }
    return NULL;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = g_malloc(sizeof *lat * (size_t)n);
    pingpong pp = { .ping = g_async_queue_new(), .pong = g_async_queue_new(), .n = total };
    bench_checker_init(&pp.check, 1);
    pthread_t et;
    pthread_create(&et, NULL, echo_thread, &pp);
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < total; i++) {
        bench_msg m, back;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        push_copy(pp.ping, &m);
        pop_copy(pp.pong, &back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i))
            bench_fail(r, "round trip %ld: wrong answer", i);
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    pthread_join(et, NULL);
    bench_check_verdict(&pp.check, total, r);
    g_async_queue_unref(pp.ping);
    g_async_queue_unref(pp.pong);
    r->count = done;
    r->elapsed = (double)(end - start) / 1e9;
    bench_latency_figs(r, lat, done);
    g_free(lat);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 } };
    return bench_main(argc, argv, "glib", scenarios, sizeof scenarios / sizeof *scenarios);
}
