/* The floor for spawning a worker: pthread_create + pthread_join of a thread
 * that returns at once, one at a time (P5). */
#define _GNU_SOURCE
#include "bench_common.h"

#include <string.h>

static void *noop(void *arg)
{
    return arg;
}

static void p5(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), done = 0;
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, noop, &done);
        if (rc != 0) {
            bench_fail(r, "pthread_create %ld: %s", i, strerror(rc));
            break;
        }
        void *ret = NULL;
        pthread_join(t, &ret);
        if (ret != &done) {
            bench_fail(r, "thread %ld returned the wrong value", i);
            break;
        }
        done++;
    }
    uint64_t t1 = bench_now_ns();
    bench_spawn_result(r, done, t0, t1);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = { { "P5", p5 } };
    return bench_main(argc, argv, "pthread", scenarios, sizeof scenarios / sizeof *scenarios);
}
