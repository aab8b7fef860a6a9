/* GLib's GAsyncQueue, the usual "queue + thread" in C applications: one
 * g_malloc per message (the 32-byte copy), g_async_queue_push / _pop.
 *
 * P1 main thread -> consumer thread; the end is the join of the consumer.
 * P2 ping-pong over two queues, main <-> echo thread.
 * P3 4 producer threads -> 1 consumer, per-sender order checked.
 * The drivers are bench_transport.c's; this file is the queue. */
#define _GNU_SOURCE
#include "bench_transport.h"

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

/* --- the transport ------------------------------------------------------------------ */

/* q[0] carries the messages; q[1] the echoes of P2 (NULL otherwise). */
static void *open_link(bench_shape shape, int senders)
{
    (void)senders;
    GAsyncQueue **q = g_new0(GAsyncQueue *, 2);
    q[0] = g_async_queue_new();
    if (shape == BENCH_ROUND_TRIP)
        q[1] = g_async_queue_new();
    return q;
}

static void attach(void *link, bench_side side, uint32_t sender, bench_end *end)
{
    (void)sender;
    GAsyncQueue **q = link;
    bench_end_of_queues(end, side, q[0], q[1]);
}

static void send_one(const bench_end *end, const bench_msg *m)
{
    push_copy(end->out, m);
}

static void recv_one(const bench_end *end, bench_msg *m)
{
    pop_copy(end->in, m);
}

static void close_link(void *link)
{
    GAsyncQueue **q = link;
    g_async_queue_unref(q[0]);
    if (q[1])
        g_async_queue_unref(q[1]);
    g_free(q);
}

int main(int argc, char **argv)
{
    static const bench_transport transport = {
        .system = "glib",
        .open = open_link,
        .attach = attach,
        .send = send_one,
        .recv = recv_one,
        .close = close_link,
    };
    return bench_transport_main(argc, argv, &transport, NULL, 0);
}
