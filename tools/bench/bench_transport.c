/* The P1, P2 and P3 drivers shared by the queue-like peers (see
 * bench_transport.h): the threads, the timed loops, the checks with
 * bench_checker and the figures, written once for every transport. */
#define _GNU_SOURCE
#include "bench_transport.h"

#include <stdlib.h>

void bench_end_of_queues(bench_end *end, bench_side side, void *forth, void *back)
{
    bool sender = side == BENCH_SENDER;
    end->out = sender ? forth : back;
    end->in = sender ? back : forth;
}

/* --- ends and loops ----------------------------------------------------------- */

static bench_end attach(const bench_transport *t, void *link, bench_side side, uint32_t sender)
{
    bench_end end = { NULL, NULL, NULL };
    t->attach(link, side, sender, &end);
    return end;
}

static void detach(const bench_transport *t, bench_end *end)
{
    if (t->detach)
        t->detach(end);
}

/* Sends `sender`'s messages 0 to n - 1. */
static void send_sequence(const bench_transport *t, const bench_end *end, uint32_t sender, long n)
{
    bench_send_fn *send = t->send;
    bench_msg m;
    for (long i = 0; i < n; i++) {
        bench_msg_make(&m, sender, (uint64_t)i);
        send(end, &m);
    }
}

static void *open_or_fail(const bench_transport *t, bench_shape shape, int senders, bench_result *r)
{
    void *link = t->open(shape, senders);
    if (!link)
        bench_fail(r, "out of memory");
    return link;
}

/* --- the receiving thread ---------------------------------------------------- */

/* The thread at the receiver side (P1, P3) or the echo thread (P2). */
typedef struct receiver {
    const bench_transport *t;
    void *link;
    long n; /* messages to take */
    bench_checker check;
} receiver;

static void *receive_thread(void *arg)
{
    receiver *rx = arg;
    bench_recv_fn *recv = rx->t->recv;
    bench_end end = attach(rx->t, rx->link, BENCH_RECEIVER, 0);
    bench_msg m;
    for (long i = 0; i < rx->n; i++) {
        recv(&end, &m);
        bench_checker_take(&rx->check, &m);
    }
    detach(rx->t, &end);
    return NULL;
}

/* --- P1: the main thread -> one receiver -------------------------------------------- */

static void one_to_one(const bench_transport *t, const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    void *link = open_or_fail(t, BENCH_ONE_TO_ONE, 1, r);
    if (!link)
        return;
    receiver rx = { .t = t, .link = link, .n = n };
    bench_checker_init(&rx.check, 1);
    pthread_t rt;
    pthread_create(&rt, NULL, receive_thread, &rx);
    bench_end end = attach(t, link, BENCH_SENDER, 0);
    uint64_t t0 = bench_now_ns();
    send_sequence(t, &end, 0, n);
    detach(t, &end);
    pthread_join(rt, NULL);
    uint64_t t1 = bench_now_ns();
    bench_check_verdict(&rx.check, n, r);
    t->close(link);
    bench_rate_result(r, (long)rx.check.received, n, t0, t1);
}

/* --- P3: sender threads -> one receiver ----------------------------------------------- */

typedef struct sender {
    pthread_t thread;
    const bench_transport *t;
    void *link;
    uint32_t id;
    long n;
    bench_gate *gate;
} sender;

static void *send_thread(void *arg)
{
    sender *s = arg;
    bench_end end = attach(s->t, s->link, BENCH_SENDER, s->id);
    bench_gate_wait(s->gate);
    send_sequence(s->t, &end, s->id, s->n);
    detach(s->t, &end);
    return NULL;
}

static void start_senders(
    sender *ss, int ns, long per, void *link, const bench_transport *t, bench_gate *gate)
{
    for (int i = 0; i < ns; i++) {
        ss[i] = (sender) { .t = t, .link = link, .id = (uint32_t)i, .n = per, .gate = gate };
        pthread_create(&ss[i].thread, NULL, send_thread, &ss[i]);
    }
}

static void join_senders(sender *ss, int ns)
{
    for (int i = 0; i < ns; i++)
        pthread_join(ss[i].thread, NULL);
}

static void many_to_one(const bench_transport *t, const bench_args *a, bench_result *r)
{
    int ns = bench_senders(a);
    long per = bench_count(a) / ns, n = per * ns;
    void *link = open_or_fail(t, BENCH_MANY_TO_ONE, ns, r);
    if (!link)
        return;
    receiver rx = { .t = t, .link = link, .n = n };
    bench_checker_init(&rx.check, (uint32_t)ns);
    bench_gate gate;
    bench_gate_init(&gate);
    pthread_t rt;
    pthread_create(&rt, NULL, receive_thread, &rx);
    sender ss[BENCH_MAX_SENDERS];
    start_senders(ss, ns, per, link, t, &gate);
    uint64_t t0 = bench_now_ns();
    bench_gate_open(&gate);
    pthread_join(rt, NULL);
    uint64_t t1 = bench_now_ns();
    join_senders(ss, ns);
    bench_check_verdict(&rx.check, n, r);
    bench_gate_destroy(&gate);
    t->close(link);
    bench_rate_result(r, (long)rx.check.received, n, t0, t1);
}

/* --- P2: ping-pong main <-> echo thread ------------------------------------------------ */

static void *echo_thread(void *arg)
{
    receiver *e = arg;
    bench_send_fn *send = e->t->send;
    bench_recv_fn *recv = e->t->recv;
    bench_end end = attach(e->t, e->link, BENCH_RECEIVER, 0);
    bench_msg m;
    for (long i = 0; i < e->n; i++) {
        recv(&end, &m);
        bench_checker_take(&e->check, &m);
        send(&end, &m);
    }
    detach(e->t, &end);
    return NULL;
}

/* Times `total` round trips; keeps the ones after `warm` in `lat` and
 * returns how many it kept. */
static long time_round_trips(const bench_transport *t, const bench_end *end, long total, long warm,
    uint64_t *lat, bench_result *r)
{
    bench_send_fn *send = t->send;
    bench_recv_fn *recv = t->recv;
    long done = 0;
    for (long i = 0; i < total; i++) {
        bench_msg m, back;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        send(end, &m);
        recv(end, &back);
        uint64_t t1 = bench_now_ns();
        if (!bench_msg_ok(&back, 0, (uint64_t)i))
            bench_fail(r, "round trip %ld: wrong answer", i);
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    return done;
}

static void round_trip(const bench_transport *t, const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n), total = n + warm;
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    void *link = lat ? t->open(BENCH_ROUND_TRIP, 1) : NULL;
    if (!link) {
        bench_fail(r, "out of memory");
        free(lat);
        return;
    }
    receiver e = { .t = t, .link = link, .n = total };
    bench_checker_init(&e.check, 1);
    pthread_t et;
    pthread_create(&et, NULL, echo_thread, &e);
    bench_end end = attach(t, link, BENCH_SENDER, 0);
    uint64_t start = bench_now_ns();
    long done = time_round_trips(t, &end, total, warm, lat, r);
    uint64_t stop = bench_now_ns();
    pthread_join(et, NULL);
    detach(t, &end);
    bench_check_verdict(&e.check, total, r);
    t->close(link);
    bench_latency_result(r, lat, done, start, stop);
    free(lat);
}

/* --- the program ------------------------------------------------------------------------- */

/* bench_scenario_fn takes no transport: the program's one is kept here. */
static const bench_transport *program_transport;

static void p1(const bench_args *a, bench_result *r)
{
    one_to_one(program_transport, a, r);
}

static void p2(const bench_args *a, bench_result *r)
{
    round_trip(program_transport, a, r);
}

static void p3(const bench_args *a, bench_result *r)
{
    many_to_one(program_transport, a, r);
}

int bench_transport_main(
    int argc, char **argv, const bench_transport *t, const bench_scenario *extra, size_t n_extra)
{
    enum { MAX_SCENARIOS = 8 };
    bench_scenario all[MAX_SCENARIOS] = { { "P1", p1 }, { "P2", p2 }, { "P3", p3 } };
    size_t n = 3;
    for (size_t i = 0; i < n_extra && n < MAX_SCENARIOS; i++)
        all[n++] = extra[i];
    program_transport = t;
    return bench_main(argc, argv, t->system, all, n);
}
