/* The hand-written baseline: a linked-list queue under a mutex with a
 * condition variable, one malloc per message (the node with the 32-byte
 * copy). The consumer takes one message per lock and waits on the condition
 * variable when the queue is empty; producers signal after every push
 * (glibc makes no syscall when nobody waits).
 *
 * P1 main thread -> consumer thread; the end is the join of the consumer.
 * P2 ping-pong over two such queues, main <-> echo thread.
 * P3 4 producer threads -> 1 consumer, per-sender order checked.
 * The drivers are bench_transport.c's; this file is the queue. */
#define _GNU_SOURCE
#include "bench_transport.h"

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

/* --- the transport ------------------------------------------------------------------ */

/* One queue (P1, P3) or two, one per direction (P2). */
typedef struct mq_link {
    int nq;
    mq q[2];
} mq_link;

static void *open_link(bench_shape shape, int senders)
{
    (void)senders;
    mq_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->nq = shape == BENCH_ROUND_TRIP ? 2 : 1;
    for (int i = 0; i < l->nq; i++)
        mq_init(&l->q[i]);
    return l;
}

static void attach(void *link, bench_side side, uint32_t sender, bench_end *end)
{
    (void)sender;
    mq_link *l = link;
    bench_end_of_queues(end, side, &l->q[0], l->nq > 1 ? &l->q[1] : NULL);
}

static void send_one(const bench_end *end, const bench_msg *m)
{
    mq_push(end->out, m);
}

static void recv_one(const bench_end *end, bench_msg *m)
{
    mq_pop(end->in, m);
}

static void close_link(void *link)
{
    mq_link *l = link;
    for (int i = 0; i < l->nq; i++)
        mq_destroy(&l->q[i]);
    free(l);
}

int main(int argc, char **argv)
{
    static const bench_transport transport = {
        .system = "mutex",
        .open = open_link,
        .attach = attach,
        .send = send_one,
        .recv = recv_one,
        .close = close_link,
    };
    return bench_transport_main(argc, argv, &transport, NULL, 0);
}
