/* Two processes for the scenarios that cross the process boundary (P12,
 * P13x): the program forks a peer process (the receiver or the replier) and
 * talks to it on two pipes, apart from the transport being measured: the
 * peer says when it is ready, and what it received at the end.
 *
 * Both processes read CLOCK_MONOTONIC (bench_now_ns), which one host
 * shares, so the peer's time of its last check ends the sender's timed
 * part. */
#ifndef BENCH_LINK_H
#define BENCH_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_common.h"

typedef struct bench_link {
    int to_peer, from_peer; /* the parent's ends (the peer's, in the peer) */
    pid_t pid; /* the peer, in the parent */
} bench_link;

/* What a receiving peer reports at its end. */
typedef struct bench_far_report {
    uint64_t received; /* messages taken and checked */
    uint64_t errors; /* out of order, torn or unexpected */
    uint64_t t_last_ns; /* bench_now_ns() when it checked the last one */
    int64_t status; /* 0, or the transport's error */
} bench_far_report;

/* Forks the peer, which runs peer(link, arg) and exits with its result
 * (0 ok). Returns 0 in the parent, -1 when it could not fork. */
int bench_link_fork(bench_link *l, int (*peer)(bench_link *l, void *arg), void *arg);
/* Writes / reads exactly n bytes (read: up to timeout_s seconds). 0 or -1. */
int bench_link_send(const bench_link *l, const void *p, size_t n);
int bench_link_recv(const bench_link *l, void *p, size_t n, double timeout_s);
/* Parent: closes its ends and waits for the peer; its exit status or -1. */
int bench_link_wait(bench_link *l);

/* The peer's side of a throughput run: says it is ready (a byte, 1 when
 * `ready` is true), then takes n messages with next() (0 per message; any
 * other value, a timeout or an error, ends the run early), checks each
 * (one sender, in order) and reports. Returns 0 when all n were fine. */
int bench_far_receive(
    bench_link *l, bool ready, long n, int (*next)(void *ctx, bench_msg *m), void *ctx);
/* The parent's side: waits for the peer to be ready (false: it is not). */
bool bench_far_ready(const bench_link *l);
/* The parent's side at the end: the peer's report, judged (all n received,
 * in order: none lost), and the rate from t0_ns to the peer's last check. */
void bench_far_verdict(const bench_link *l, long n, uint64_t t0_ns, bench_result *r);

/* The NATS server of the benchmarks: $WORKER_BENCH_NATS_URL (tools/bench/run
 * starts one on a free port), else nats://127.0.0.1:4222. */
const char *bench_nats_url(void);

#endif
