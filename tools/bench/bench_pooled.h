/* bench_worker's scenarios of pooled workers (BENCH.md Part 2), in
 * bench_pooled.c: P9 (spawn, one event, stop), P10 (skynet), P11
 * (ping-pong pairs). P3p (4 senders into one pooled worker) is P3's code
 * with other options, in bench_worker.c. */
#ifndef BENCH_POOLED_H
#define BENCH_POOLED_H

#include "bench_common.h"

void bench_pooled_p9(const bench_args *a, bench_result *r);
void bench_pooled_p10(const bench_args *a, bench_result *r);
void bench_pooled_p11(const bench_args *a, bench_result *r);

#endif
