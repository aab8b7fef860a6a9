/* The hand-written baseline: a linked-list queue under a mutex with a
 * condition variable, one malloc per message (the node with the 32-byte
 * copy). The consumer takes one message per lock and waits on the condition
 * variable when the queue is empty; producers signal after every push
 * (glibc makes no syscall when nobody waits).
 *
 * P1 main thread -> consumer thread; the end is the join of the consumer.
 * P2 ping-pong over two such queues, main <-> echo thread.
 * P3 4 producer threads -> 1 consumer, per-sender order checked. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mnode {
    struct mnode *next;
    bench_msg msg;
} mnode;

typedef struct mq {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    mnode *head, *tail;
} mq;

static void mq_init(mq *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    q->head = q->tail = NULL;
}

static void mq_destroy(mq *q)
{
    while (q->head) {
        mnode *n = q->head;
        q->head = n->next;
        free(n);
    }
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->nonempty);
}

static void mq_push(mq *q, const bench_msg *m)
{
    mnode *n = malloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(&n->msg, m, sizeof *m);
    n->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    pthread_mutex_unlock(&q->lock);
    pthread_cond_signal(&q->nonempty);
}

static void mq_pop(mq *q, bench_msg *out)
{
    pthread_mutex_lock(&q->lock);
    while (!q->head)
        pthread_cond_wait(&q->nonempty, &q->lock);
    mnode *n = q->head;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    memcpy(out, &n->msg, sizeof *out);
    free(n);
}

/* --- P1 / P3 ---------------------------------------------------------------------- */

typedef struct consumer {
    mq *q;
    long n;
    bench_checker check;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    bench_msg m;
    for (long i = 0; i < c->n; i++) {
        mq_pop(c->q, &m);
        bench_checker_take(&c->check, &m);
    }
    return NULL;
}

typedef struct producer {
    pthread_t thread;
    mq *q;
    uint32_t id;
    long n;
    bench_gate *gate;
} producer;

static void produce(producer *p)
{
    bench_msg m;
    for (long i = 0; i < p->n; i++) {
        bench_msg_make(&m, p->id, (uint64_t)i);
        mq_push(p->q, &m);
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
    mq q;
    mq_init(&q);
    consumer c = { .q = &q, .n = n };
    bench_checker_init(&c.check, (uint32_t)nsenders);
    bench_gate gate;
    bench_gate_init(&gate);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    producer ps[BENCH_MAX_SENDERS];
    for (int i = 0; i < nsenders; i++)
        ps[i] = (producer) { .q = &q, .id = (uint32_t)i, .n = per, .gate = &gate };
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
    mq_destroy(&q);
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
    mq ping, pong;
    long n;
    bench_checker check;
} pingpong;

static void *echo_thread(void *arg)
{
    pingpong *pp = arg;
    bench_msg m;
    for (long i = 0; i < pp->n; i++) {
        mq_pop(&pp->ping, &m);
        bench_checker_take(&pp->check, &m);
        mq_push(&pp->pong, &m);
    }
    return NULL;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    pingpong *pp = calloc(1, sizeof *pp);
    if (!lat || !pp) {
        bench_fail(r, "out of memory");
        return;
    }
    mq_init(&pp->ping);
    mq_init(&pp->pong);
    pp->n = total;
    bench_checker_init(&pp->check, 1);
    pthread_t et;
    pthread_create(&et, NULL, echo_thread, pp);
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < total; i++) {
        bench_msg m, back;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        mq_push(&pp->ping, &m);
        mq_pop(&pp->pong, &back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i))
            bench_fail(r, "round trip %ld: wrong answer", i);
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    pthread_join(et, NULL);
    bench_check_verdict(&pp->check, total, r);
    mq_destroy(&pp->ping);
    mq_destroy(&pp->pong);
    free(pp);
    r->count = done;
    r->elapsed = (double)(end - start) / 1e9;
    bench_latency_figs(r, lat, done);
    free(lat);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 } };
    return bench_main(argc, argv, "mutex", scenarios, sizeof scenarios / sizeof *scenarios);
}
