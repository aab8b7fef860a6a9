/* The raw Concurrency Kit peer: ck_fifo_mpmc + ck_epoch + ck_ec with one
 * malloc per message and no event loop (the "raw ck" peer of docs/performance.md).
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
 * P3 4 producer threads -> 1 consumer, per-sender order checked.
 * The drivers are bench_transport.c's; this file is the queue. */
#define _GNU_SOURCE
#include "bench_transport.h"

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

/* --- the transport ------------------------------------------------------------------ */

/* One queue (P1, P3) or two, one per direction (P2); 64-byte aligned. */
typedef struct rq_link {
    int nq;
    rq *q;
} rq_link;

static void *open_link(bench_shape shape, int senders)
{
    (void)senders;
    rq_link *l = malloc(sizeof *l);
    int nq = shape == BENCH_ROUND_TRIP ? 2 : 1;
    rq *q = aligned_alloc(64, (size_t)nq * sizeof *q);
    if (!l || !q || !rq_init(&q[0]) || (nq > 1 && !rq_init(&q[1]))) {
        free(q);
        free(l);
        return NULL;
    }
    *l = (rq_link) { .nq = nq, .q = q };
    return l;
}

/* Every thread has its own epoch record (end->local). */
static void attach(void *link, bench_side side, uint32_t sender, bench_end *end)
{
    (void)sender;
    rq_link *l = link;
    bench_end_of_queues(end, side, &l->q[0], l->nq > 1 ? &l->q[1] : NULL);
    end->local = record_new();
}

static void detach(bench_end *end)
{
    record_done(end->local);
}

static void send_one(const bench_end *end, const bench_msg *m)
{
    if (!rq_push(end->out, end->local, m)) {
        fprintf(stderr, "out of memory while sending\n");
        exit(1); /* the receiver would wait forever */
    }
}

static void recv_one(const bench_end *end, bench_msg *m)
{
    rq_pop(end->in, end->local, m);
}

static void close_link(void *link)
{
    rq_link *l = link;
    for (int i = 0; i < l->nq; i++)
        rq_destroy(&l->q[i]);
    free(l->q);
    free(l);
}

int main(int argc, char **argv)
{
    static const bench_transport transport = {
        .system = "rawck",
        .open = open_link,
        .attach = attach,
        .detach = detach,
        .send = send_one,
        .recv = recv_one,
        .close = close_link,
    };
    ck_epoch_init(&epoch);
    return bench_transport_main(argc, argv, &transport, NULL, 0);
}
