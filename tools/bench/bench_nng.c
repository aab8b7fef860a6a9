/* nng inproc, the other common choice for in-process messaging. nng_send()
 * copies the 32 bytes into a message; nng_recv() copies them out. Send and
 * receive buffers of 1,024 messages (as in the reference runs, docs/performance.md).
 *
 * P1 pair0: main thread -> consumer thread; the end is the join of the consumer.
 * P2 pair0 ping-pong, main <-> echo thread.
 * P3 push0 x4 -> pull0 (pair takes one peer only); per-sender order checked.
 * The drivers are bench_transport.c's; this file is the sockets. */
#define _GNU_SOURCE
#include "bench_transport.h"

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

/* --- the transport ------------------------------------------------------------------ */

typedef struct nlink {
    nng_socket rx; /* the receiver's pair0 or pull0 */
    int ntx;
    nng_socket tx[BENCH_MAX_SENDERS]; /* P1, P2: the main thread's pair0; P3: a push0 each */
} nlink;

static void *open_pair(const char *addr)
{
    nlink *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ntx = 1;
    check(nng_pair0_open(&l->rx), "nng_pair0_open");
    check(nng_pair0_open(&l->tx[0]), "nng_pair0_open");
    buffers(l->rx);
    buffers(l->tx[0]);
    check(nng_listen(l->rx, addr, NULL, 0), "nng_listen");
    check(nng_dial(l->tx[0], addr, NULL, 0), "nng_dial");
    return l;
}

/* Sockets are opened here, in the main thread, and closed only once the
 * receiver has everything (nng_close does not flush). */
static void *open_push_pull(int senders)
{
    nlink *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ntx = senders;
    check(nng_pull0_open(&l->rx), "nng_pull0_open");
    buffers(l->rx);
    check(nng_listen(l->rx, "inproc://p3", NULL, 0), "nng_listen");
    for (int i = 0; i < senders; i++) {
        check(nng_push0_open(&l->tx[i]), "nng_push0_open");
        buffers(l->tx[i]);
        check(nng_dial(l->tx[i], "inproc://p3", NULL, 0), "nng_dial");
    }
    return l;
}

static void *open_link(bench_shape shape, int senders)
{
    if (shape == BENCH_MANY_TO_ONE)
        return open_push_pull(senders);
    return open_pair(shape == BENCH_ONE_TO_ONE ? "inproc://p1" : "inproc://p2");
}

static void attach(void *link, bench_side side, uint32_t sender, bench_end *end)
{
    nlink *l = link;
    end->in = end->out = side == BENCH_RECEIVER ? &l->rx : &l->tx[sender];
}

static void send_one(const bench_end *end, const bench_msg *m)
{
    send_msg(*(nng_socket *)end->out, m);
}

static void recv_one(const bench_end *end, bench_msg *m)
{
    recv_msg(*(nng_socket *)end->in, m);
}

static void close_link(void *link)
{
    nlink *l = link;
    for (int i = 0; i < l->ntx; i++)
        nng_close(l->tx[i]);
    nng_close(l->rx);
    free(l);
}

int main(int argc, char **argv)
{
    static const bench_transport transport = {
        .system = "nng",
        .open = open_link,
        .attach = attach,
        .send = send_one,
        .recv = recv_one,
        .close = close_link,
    };
    return bench_transport_main(argc, argv, &transport, NULL, 0);
}
