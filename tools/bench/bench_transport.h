/* The queue-like peers (rawck, mutex, glib, zmq, nng) run P1, P2 and P3 with
 * the same drivers: a peer program only says how to open its queues or
 * sockets, send one message and receive one; bench_transport.c does the
 * threads, the timing, the checks and the figures.
 *
 * A link is what one scenario runs over: the N:1 queue of P1 and P3, or the
 * two-way pair of P2. Each thread that uses a link attaches one end of it;
 * the sender side sends towards the receiver side and, in P2 only, receives
 * the echo from it. Inside the timed loops the drivers make exactly one
 * indirect call per send and per receive. */
#ifndef BENCH_TRANSPORT_H
#define BENCH_TRANSPORT_H

#include "bench_common.h"

/* What a link carries. */
typedef enum bench_shape {
    BENCH_ONE_TO_ONE, /* P1: the main thread -> one receiver thread */
    BENCH_ROUND_TRIP, /* P2: main thread <-> echo thread */
    BENCH_MANY_TO_ONE, /* P3: sender threads -> one receiver thread */
} bench_shape;

typedef enum bench_side {
    BENCH_SENDER, /* sends; in P2 also takes the echo */
    BENCH_RECEIVER, /* receives; in P2 also sends the echo */
} bench_side;

/* One thread's end of a link, filled by attach: where send() puts messages,
 * where recv() takes them from, and the thread's own state (if any). */
typedef struct bench_end {
    void *out;
    void *in;
    void *local;
} bench_end;

/* Copies one message in (exits the program when that fails). */
typedef void bench_send_fn(const bench_end *end, const bench_msg *m);
/* Blocks until one message arrives and copies it out. */
typedef void bench_recv_fn(const bench_end *end, bench_msg *m);

typedef struct bench_transport {
    const char *system; /* "mutex", ... as in the JSON output */
    /* Sets up a link of `shape` for `senders` senders; NULL when out of memory. */
    void *(*open)(bench_shape shape, int senders);
    /* Fills `end` (zeroed) for the calling thread: `sender` numbers the
     * senders of P3 from 0 (0 elsewhere). */
    void (*attach)(void *link, bench_side side, uint32_t sender, bench_end *end);
    /* Releases what attach took; NULL when there is nothing. */
    void (*detach)(bench_end *end);
    bench_send_fn *send;
    bench_recv_fn *recv;
    /* Only once every thread has detached. */
    void (*close)(void *link);
} bench_transport;

/* Sets a queue peer's end->out and end->in: the sender puts into `forth` and
 * takes from `back`; the receiver the other way round. `back` is NULL but in
 * P2. */
void bench_end_of_queues(bench_end *end, bench_side side, void *forth, void *back);

/* bench_main() for a queue-like peer: P1, P2 and P3 over `t`, then the
 * peer's own `extra` scenarios (may be NULL). */
int bench_transport_main(
    int argc, char **argv, const bench_transport *t, const bench_scenario *extra, size_t n_extra);

#endif
