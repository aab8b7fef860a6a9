/* pooled_trace: a traced run of pooled (M:N) workers for the worker-trace
 * tests (tests/trace/test_trace.py pooled). Three pooled workers
 * ("pool-0".."pool-2") on two scheduler threads (wk-sched-0, wk-sched-1)
 * each handle ROUNDS rounds of EVENTS "x" events (a round at a time, so
 * they run in many slices), then are stopped and joined.
 *
 * usage: pooled_trace OUT.wktrace
 * Exit status 0, or 1 with a message when a library call failed. */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include <worker/worker.h>

#define POOLED 3
#define ROUNDS 20
#define EVENTS 5

static atomic_int handled;

static int on_x(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do /* a few us of work, so that a slice has a width */
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 20000L);
    atomic_fetch_add(&handled, 1);
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "pooled_trace: %s: %d\n", what, rc);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: pooled_trace OUT.wktrace\n", stderr);
        return 2;
    }
    int rc = worker_scheduler_threads(2);
    if (rc != WORKER_OK)
        return fail("worker_scheduler_threads", rc);
    if ((rc = worker_trace_start(argv[1])) != WORKER_OK)
        return fail("worker_trace_start", rc);
    worker_t *w[POOLED];
    for (int i = 0; i < POOLED; i++) {
        char name[16];
        snprintf(name, sizeof name, "pool-%d", i);
        worker_opts o = { .pooled = true, .name = name };
        w[i] = worker_new(NULL, NULL, &o);
        if (!w[i])
            return fail("worker_new", -1);
        if (!worker_listen(w[i], "x", on_x, NULL, &(worker_listen_opts) { .name = "on_x" }))
            return fail("worker_listen", -1);
        if ((rc = worker_start(w[i])) != WORKER_OK)
            return fail("worker_start", rc);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < POOLED; i++)
            for (int k = 0; k < EVENTS; k++)
                if ((rc = worker_fire(w[i], "x", NULL)) != WORKER_OK)
                    return fail("worker_fire", rc);
        int want = (r + 1) * POOLED * EVENTS;
        while (atomic_load(&handled) < want) /* the round is done: the next is a new slice */
            nanosleep(&(struct timespec) { 0, 100000 }, NULL);
    }
    for (int i = 0; i < POOLED; i++) {
        if ((rc = worker_stop(w[i])) != WORKER_OK)
            return fail("worker_stop", rc);
        if ((rc = worker_join(w[i])) != WORKER_OK)
            return fail("worker_join", rc);
        worker_unref(w[i]);
    }
    if ((rc = worker_trace_stop()) != WORKER_OK)
        return fail("worker_trace_stop", rc);
    printf("handled %d\n", atomic_load(&handled));
    return 0;
}
