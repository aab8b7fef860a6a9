/* ck_queue_alone: what ck_fifo_mpmc alone costs on this machine, for
 * docs/performance.md (not part of the runner's table).
 *
 * One consumer thread spins on ck_fifo_mpmc_dequeue; P producer threads
 * enqueue N messages in total. Nodes are preallocated and touched before
 * the clock starts; there is no epoch, no allocation, no wake-up and no
 * payload copy: only the queue's own cache-line traffic. Each value carries
 * its sender and sequence number, and the consumer checks per-sender order.
 *
 *   ck_queue_alone [N [P]]     default N = 2,000,000, P = 1
 *
 * Prints "ck_fifo_mpmc alone: P producer(s), N messages, X ns/msg". */
#include <ck_fifo.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PRODUCERS 16

typedef struct producer {
    ck_fifo_mpmc_t *queue;
    ck_fifo_mpmc_entry_t *nodes;
    uint64_t id;
    long count;
} producer;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (long i = 0; i < p->count; i++) {
        uintptr_t value = (uintptr_t)((p->id << 48) | (uint64_t)(i + 1));
        ck_fifo_mpmc_enqueue(p->queue, &p->nodes[i], (void *)value);
    }
    return NULL;
}

/* Takes `total` messages; returns how many arrived out of order. */
static long consume(ck_fifo_mpmc_t *queue, long total, int producers)
{
    uint64_t next[MAX_PRODUCERS] = { 0 };
    long bad = 0;
    for (long got = 0; got < total;) {
        void *value;
        ck_fifo_mpmc_entry_t *garbage;
        if (!ck_fifo_mpmc_dequeue(queue, &value, &garbage))
            continue;
        uint64_t v = (uint64_t)(uintptr_t)value, who = v >> 48;
        bad += who >= (uint64_t)producers || (v & 0xffffffffffffu) != ++next[who];
        got++;
    }
    return bad;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 2000000;
    int producers = argc > 2 ? atoi(argv[2]) : 1;
    if (total < 1 || producers < 1 || producers > MAX_PRODUCERS) {
        fprintf(stderr, "usage: ck_queue_alone [N [P <= %d]]\n", MAX_PRODUCERS);
        return 2;
    }
    ck_fifo_mpmc_entry_t *nodes = aligned_alloc(64, sizeof *nodes * (size_t)(total + 1));
    if (!nodes)
        return 1;
    memset(nodes, 0, sizeof *nodes * (size_t)(total + 1)); /* no page faults in the timing */
    ck_fifo_mpmc_t queue;
    ck_fifo_mpmc_init(&queue, &nodes[total]);
    producer p[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    long share = total / producers, given = 0;
    double t0 = now_s();
    for (int i = 0; i < producers; i++) {
        long count = i == producers - 1 ? total - given : share;
        p[i] = (producer) { &queue, nodes + given, (uint64_t)i, count };
        given += count;
        pthread_create(&threads[i], NULL, produce, &p[i]);
    }
    long bad = consume(&queue, total, producers);
    for (int i = 0; i < producers; i++)
        pthread_join(threads[i], NULL);
    double elapsed = now_s() - t0;
    printf("ck_fifo_mpmc alone: %d producer(s), %ld messages, %.1f ns/msg, %ld out of order\n",
        producers, total, elapsed / (double)total * 1e9, bad);
    free(nodes);
    return bad ? 1 : 0;
}
