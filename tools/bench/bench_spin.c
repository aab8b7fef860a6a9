/* The hardware floors: nothing allocates, nothing sleeps, both sides spin.
 *
 * P1 a single-producer single-consumer ring of 1,024 32-byte slots; head
 *    and tail on their own cache lines, each side caching the other's index.
 *    The main thread produces; the end is the join of the consumer.
 * P2 atomic ping-pong: one cache line per direction holding a sequence word
 *    and the 32-byte message; each side spins on the other's word. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* --- P1: SPSC ring --------------------------------------------------------------- */

#define RING 1024u

typedef struct ring {
    _Alignas(64) _Atomic uint64_t tail; /* written by the producer */
    uint64_t head_cache; /* producer's copy of head */
    _Alignas(64) _Atomic uint64_t head; /* written by the consumer */
    uint64_t tail_cache; /* consumer's copy of tail */
    _Alignas(64) bench_msg slot[RING];
} ring;

typedef struct consumer {
    ring *q;
    long n;
    bench_checker check;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    ring *q = c->q;
    uint64_t head = 0;
    for (long i = 0; i < c->n; i++) {
        while (head == q->tail_cache) {
            q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head == q->tail_cache)
                cpu_relax();
        }
        bench_msg m;
        memcpy(&m, &q->slot[head % RING], sizeof m);
        atomic_store_explicit(&q->head, ++head, memory_order_release);
        bench_checker_take(&c->check, &m);
    }
    return NULL;
}

static void p1(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    ring *q = aligned_alloc(64, sizeof *q);
    if (!q) {
        bench_fail(r, "out of memory");
        return;
    }
    memset(q, 0, sizeof *q);
    consumer c = { .q = q, .n = n };
    bench_checker_init(&c.check, 1);
    pthread_t ct;
    pthread_create(&ct, NULL, consume, &c);
    uint64_t t0 = bench_now_ns();
    uint64_t tail = 0;
    for (long i = 0; i < n; i++) {
        while (tail - q->head_cache == RING) {
            q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail - q->head_cache == RING)
                cpu_relax();
        }
        bench_msg m;
        bench_msg_make(&m, 0, (uint64_t)i);
        memcpy(&q->slot[tail % RING], &m, sizeof m);
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    }
    pthread_join(ct, NULL);
    uint64_t t1 = bench_now_ns();
    bench_check_verdict(&c.check, n, r);
    free(q);
    bench_rate_result(r, (long)c.check.received, n, t0, t1);
}

/* --- P2: atomic ping-pong ------------------------------------------------------------ */

typedef struct box {
    _Alignas(64) _Atomic uint64_t seq; /* number of messages put in */
    bench_msg msg;
} box;

typedef struct pingpong {
    box ping, pong;
    long n;
    bench_checker check;
} pingpong;

static void *echo_thread(void *arg)
{
    pingpong *pp = arg;
    for (long i = 0; i < pp->n; i++) {
        while (atomic_load_explicit(&pp->ping.seq, memory_order_acquire) != (uint64_t)i + 1)
            cpu_relax();
        bench_msg m;
        memcpy(&m, &pp->ping.msg, sizeof m);
        bench_checker_take(&pp->check, &m);
        memcpy(&pp->pong.msg, &m, sizeof m);
        atomic_store_explicit(&pp->pong.seq, (uint64_t)i + 1, memory_order_release);
    }
    return NULL;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    pingpong *pp = aligned_alloc(64, sizeof *pp);
    if (!lat || !pp) {
        bench_fail(r, "out of memory");
        return;
    }
    memset(pp, 0, sizeof *pp);
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
        memcpy(&pp->ping.msg, &m, sizeof m);
        atomic_store_explicit(&pp->ping.seq, (uint64_t)i + 1, memory_order_release);
        while (atomic_load_explicit(&pp->pong.seq, memory_order_acquire) != (uint64_t)i + 1)
            cpu_relax();
        memcpy(&back, &pp->pong.msg, sizeof back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i))
            bench_fail(r, "round trip %ld: wrong answer", i);
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    pthread_join(et, NULL);
    bench_check_verdict(&pp->check, total, r);
    free(pp);
    bench_latency_result(r, lat, done, start, end);
    free(lat);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P1", p1 }, { "P2", p2 } };
    return bench_main(argc, argv, "spin", scenarios, sizeof scenarios / sizeof *scenarios);
}
