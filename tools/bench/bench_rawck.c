/* The raw Concurrency Kit peer: ck_fifo_mpmc + ck_epoch + ck_ec with one
 * malloc per message and no event loop (BENCH.md "raw ck" program).
 *
 * Each message is one malloc'd node holding the queue entry, an epoch entry
 * and the 32-byte copy. The consumer reads the payload from the node that
 * carried it (it stays in the queue as the stub) and retires the previous
 * stub, handed back as garbage, through ck_epoch_call; it polls the epoch
 * every 64 messages. Producers enqueue inside an epoch section and bump the
 * ck_ec event count after every enqueue (ck_ec only makes a syscall when the
 * consumer is parked). The consumer re-checks after a snapshot and waits on
 * the snapshot (ck_ec spins briefly before it parks on the futex).
 *
 * P1 main thread -> consumer thread; the end is the join of the consumer.
 * P2 ping-pong over two such queues, main <-> echo thread.
 * P3 4 producer threads -> 1 consumer, per-sender order checked. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <ck_ec.h>
#include <ck_epoch.h>
#include <ck_fifo.h>
#include <ck_pr.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !defined(CK_F_FIFO_MPMC)
#error "ck_fifo_mpmc is not available on this platform"
#endif

/* --- ck_ec's futex and clock operations --------------------------------------- */

static int ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
    (void)ops;
    return clock_gettime(CLOCK_MONOTONIC, out);
}

static void ec_wait32(const struct ck_ec_wait_state *state, const uint32_t *addr, uint32_t expected,
    const struct timespec *deadline)
{
    (void)state;
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, deadline, NULL,
        FUTEX_BITSET_MATCH_ANY);
}

static void ec_wait64(const struct ck_ec_wait_state *state, const uint64_t *addr, uint64_t expected,
    const struct timespec *deadline)
{
    (void)state;
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, (uint32_t)expected, deadline,
        NULL, FUTEX_BITSET_MATCH_ANY);
}

static void ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
    (void)ops;
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static void ec_wake64(const struct ck_ec_ops *ops, const uint64_t *addr)
{
    (void)ops;
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static const struct ck_ec_ops ec_ops = {
    .gettime = ec_gettime,
    .wait32 = ec_wait32,
    .wait64 = ec_wait64,
    .wake32 = ec_wake32,
    .wake64 = ec_wake64,
};

static const struct ck_ec_mode ec_mode = { .ops = &ec_ops, .single_producer = false };

/* --- the queue -------------------------------------------------------------------- */

typedef struct rnode {
    ck_fifo_mpmc_entry_t entry; /* first: 16-byte aligned (malloc gives 16) */
    ck_epoch_entry_t retire;
    bench_msg msg;
} rnode;

typedef struct rq {
    ck_fifo_mpmc_t fifo; /* head and tail on their own cache lines */
    _Alignas(64) struct ck_ec32 ec;
    _Alignas(64) uint32_t since_poll; /* consumer only */
} rq;

static ck_epoch_t epoch;

static void rnode_free(ck_epoch_entry_t *e)
{
    free((char *)e - offsetof(rnode, retire));
}

static rnode *rnode_new(void)
{
    rnode *n = malloc(sizeof *n);
    if (n && ((uintptr_t)n & 15u)) {
        fprintf(stderr, "malloc returned a pointer that is not 16-byte aligned\n");
        abort();
    }
    return n;
}

static bool rq_init(rq *q)
{
    rnode *stub = rnode_new();
    if (!stub)
        return false;
    ck_fifo_mpmc_init(&q->fifo, &stub->entry);
    ck_ec32_init(&q->ec, 0);
    q->since_poll = 0;
    return true;
}

/* Only once every producer and the consumer are done. */
static void rq_destroy(rq *q)
{
    ck_fifo_mpmc_entry_t *stub;
    ck_fifo_mpmc_deinit(&q->fifo, &stub);
    free(stub);
}

static ck_epoch_record_t *record_new(void)
{
    ck_epoch_record_t *rec = ck_epoch_recycle(&epoch, NULL);
    if (rec)
        return rec;
    if (posix_memalign((void **)&rec, 64, sizeof *rec) != 0)
        return NULL;
    ck_epoch_register(&epoch, rec, NULL);
    return rec;
}

static void record_done(ck_epoch_record_t *rec)
{
    ck_epoch_barrier(rec); /* runs this record's pending frees */
    ck_epoch_unregister(rec);
}

static bool rq_push(rq *q, ck_epoch_record_t *rec, const bench_msg *m)
{
    rnode *n = rnode_new();
    if (!n)
        return false;
    memcpy(&n->msg, m, sizeof *m);
    ck_epoch_begin(rec, NULL);
    ck_fifo_mpmc_enqueue(&q->fifo, &n->entry, n);
    ck_epoch_end(rec, NULL);
    ck_ec32_inc(&q->ec, &ec_mode);
    return true;
}

static bool rq_try_pop(rq *q, ck_epoch_record_t *rec, bench_msg *out)
{
    void *value;
    ck_fifo_mpmc_entry_t *garbage;
    ck_epoch_begin(rec, NULL);
    bool got = ck_fifo_mpmc_dequeue(&q->fifo, &value, &garbage);
    if (got) {
        /* `value` is now the stub: it is retired only by a later dequeue of
         * this (only) consumer, so reading it here is safe. */
        memcpy(out, &((rnode *)value)->msg, sizeof *out);
        ck_epoch_call(rec, &((rnode *)garbage)->retire, rnode_free);
    }
    ck_epoch_end(rec, NULL);
    if (got && ++q->since_poll >= 64) {
        q->since_poll = 0;
        ck_epoch_poll(rec);
    }
    return got;
}

static void rq_pop(rq *q, ck_epoch_record_t *rec, bench_msg *out)
{
    for (;;) {
        if (rq_try_pop(q, rec, out))
            return;
        uint32_t snap = ck_ec32_value(&q->ec);
        if (rq_try_pop(q, rec, out))
            return;
        ck_epoch_poll(rec);
        ck_ec32_wait(&q->ec, &ec_mode, snap, NULL);
    }
}

/* --- P1 / P3: producers -> one consumer --------------------------------------------- */

typedef struct consumer {
    rq *q;
    long n;
    bench_checker check;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    ck_epoch_record_t *rec = record_new();
    bench_msg m;
    for (long i = 0; i < c->n; i++) {
        rq_pop(c->q, rec, &m);
        bench_checker_take(&c->check, &m);
    }
    record_done(rec);
    return NULL;
}

typedef struct producer {
    pthread_t thread;
    rq *q;
    uint32_t id;
    long n;
    bench_gate *gate;
    bool failed;
} producer;

static void produce(producer *p)
{
    ck_epoch_record_t *rec = record_new();
    bench_msg m;
    for (long i = 0; i < p->n; i++) {
        bench_msg_make(&m, p->id, (uint64_t)i);
        if (!rq_push(p->q, rec, &m)) {
            p->failed = true;
            break;
        }
    }
    record_done(rec);
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
    rq *q = aligned_alloc(64, sizeof *q);
    if (!q || !rq_init(q)) {
        bench_fail(r, "out of memory");
        free(q);
        return;
    }
    consumer c = { .q = q, .n = n };
    bench_checker_init(&c.check, (uint32_t)nsenders);
    bench_gate gate;
    bench_gate_init(&gate);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    producer ps[BENCH_MAX_SENDERS];
    for (int i = 0; i < nsenders; i++)
        ps[i] = (producer) { .q = q, .id = (uint32_t)i, .n = per, .gate = &gate };
    uint64_t t0 = 0;
    if (nsenders == 1) { /* P1: the main thread sends */
        t0 = bench_now_ns();
        produce(&ps[0]);
    } else {
        for (int i = 0; i < nsenders; i++)
            pthread_create(&ps[i].thread, NULL, produce_thread, &ps[i]);
        t0 = bench_now_ns();
        bench_gate_open(&gate);
    }
    if (ps[0].failed) {
        fprintf(stderr, "out of memory while sending\n");
        exit(1); /* the consumer would wait forever */
    }
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    if (nsenders > 1)
        for (int i = 0; i < nsenders; i++)
            pthread_join(ps[i].thread, NULL);
    for (int i = 0; i < nsenders; i++)
        if (ps[i].failed)
            bench_fail(r, "sender %d ran out of memory", i);
    bench_check_verdict(&c.check, n, r);
    bench_gate_destroy(&gate);
    rq_destroy(q);
    free(q);
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

/* --- P2: ping-pong --------------------------------------------------------------- */

typedef struct pingpong {
    rq *ping, *pong;
    long n;
    bench_checker check;
} pingpong;

static void *echo_thread(void *arg)
{
    pingpong *pp = arg;
    ck_epoch_record_t *rec = record_new();
    bench_msg m;
    for (long i = 0; i < pp->n; i++) {
        rq_pop(pp->ping, rec, &m);
        bench_checker_take(&pp->check, &m);
        if (!rq_push(pp->pong, rec, &m)) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    record_done(rec);
    return NULL;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    rq *q = aligned_alloc(64, 2 * sizeof *q);
    if (!lat || !q || !rq_init(&q[0]) || !rq_init(&q[1])) {
        bench_fail(r, "out of memory");
        return;
    }
    pingpong pp = { .ping = &q[0], .pong = &q[1], .n = total };
    bench_checker_init(&pp.check, 1);
    pthread_t et;
    pthread_create(&et, NULL, echo_thread, &pp);
    ck_epoch_record_t *rec = record_new();
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < total; i++) {
        bench_msg m, back;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        if (!rq_push(pp.ping, rec, &m)) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        rq_pop(pp.pong, rec, &back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i)) {
            bench_fail(r, "round trip %ld: wrong answer", i);
            /* keep going: the echo thread expects `total` pings */
        }
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    pthread_join(et, NULL);
    record_done(rec);
    bench_check_verdict(&pp.check, total, r);
    rq_destroy(&q[0]);
    rq_destroy(&q[1]);
    free(q);
    r->count = done;
    r->elapsed = (double)(end - start) / 1e9;
    bench_latency_figs(r, lat, done);
    free(lat);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 } };
    ck_epoch_init(&epoch);
    return bench_main(argc, argv, "rawck", scenarios, sizeof scenarios / sizeof *scenarios);
}
