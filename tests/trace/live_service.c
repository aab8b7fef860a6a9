/* live_service: a small traced service for the live tests of worker-trace
 * (top, view --live; tests/trace/test_live.py). It runs until it is killed:
 * main fires WORK at "consumer-a" (every 2 ms) and "consumer-b" (every 4 ms,
 * and a burst of 40 every second, so its queue depth moves); each WORK
 * keeps its listener busy for about 0.3 ms; "flaky" ends after 0.3 s and
 * main starts it again (a restart per second or so).
 *
 * Run: WORKER_TRACE=run.wktrace ./trace_live_service */
#include <stdio.h>
#include <time.h>

#include <worker/worker.h>

static int on_work(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 300000L);
    return 0;
}

static int consumer_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (worker_listen(
            worker_current(), "WORK", on_work, NULL, &(worker_listen_opts) { .name = "on_work" })
        == NULL)
        return WORKER_ENOMEM;
    return worker_wait_forever();
}

static int flaky_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_sleep(0.3);
}

int main(void)
{
    worker_t *a = worker_spawn(consumer_task, NULL, &(worker_opts) { .name = "consumer-a" });
    worker_t *b = worker_spawn(consumer_task, NULL, &(worker_opts) { .name = "consumer-b" });
    worker_t *flaky = worker_spawn(flaky_task, NULL, &(worker_opts) { .name = "flaky" });
    if (!a || !b || !flaky) {
        fprintf(stderr, "live_service: worker_spawn failed\n");
        return 1;
    }
    puts("live_service: running");
    fflush(stdout);
    for (unsigned long i = 1;; i++) {
        worker_fire(a, "WORK", NULL);
        if (i % 2 == 0)
            worker_fire(b, "WORK", NULL);
        if (i % 500 == 0)
            for (int k = 0; k < 40; k++)
                worker_fire(b, "WORK", NULL);
        if (i % 500 == 250 && !worker_is_running(flaky))
            worker_start(flaky);
        worker_sleep(0.002); /* main's loop runs here */
    }
}
