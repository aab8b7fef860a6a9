/* async_task: a long task run with worker_async(), its result fetched later.
 *
 * worker_async() starts the task on its own worker (parent-less, quiet,
 * daemon) and returns a future at once. The main thread goes on with other
 * work; when it needs the result it calls worker_future_get(), which runs
 * main's event loop until the task has ended (at once if it already has)
 * and returns the task's code and result. The task's progress reaches main
 * as PROGRESS events, handled by a listener while main waits or sleeps.
 *
 * Also shown: worker_await() (async + get + free in one call) and a task
 * that fails (get returns its code).
 *
 * Run: ./async_task [--auto]        (never reads input; exit 0 on success) */
#include <stdint.h>
#include <stdio.h>

#include <worker/worker.h>

/* The long task: count the primes below `limit`, reporting progress. */
struct job {
    long limit;
    worker_t *report; /* gets PROGRESS events (data: percent) */
};

static int count_primes(void *arg, void **result)
{
    struct job *job = arg;
    long found = 0;
    for (long n = 2; n < job->limit; n++) {
        bool prime = true;
        for (long d = 2; d * d <= n && prime; d++)
            prime = n % d != 0;
        found += prime;
        if (n % (job->limit / 4) == 0) /* every quarter */
            worker_fire(job->report, "PROGRESS", (void *)(intptr_t)(n * 100 / job->limit));
    }
    *result = (void *)(intptr_t)found;
    return 0; /* success; a non-zero code would be the task's failure */
}

static int failing_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 42; /* any non-zero code other than WORKER_EXIT: a failure */
}

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

/* Runs on the main thread, inside its loop (during sleep or get). */
static int on_progress(const worker_event_t *e, void *userdata)
{
    int *reports = userdata;
    (*reports)++;
    printf("main: the task says %d%% done\n", (int)(intptr_t)worker_event_data(e));
    return 0;
}

int main(void)
{
    int reports = 0;
    worker_on("PROGRESS", on_progress, &reports, NULL);

    struct job job = { .limit = 200000, .report = worker_current() };
    worker_future_t *f = worker_async(count_primes, &job);
    if (!f)
        return 1;
    printf("main: task started on worker '%s'\n", worker_name(worker_future_worker(f)));

    /* Other work meanwhile. worker_sleep runs main's loop, so PROGRESS
     * events are printed as they come. */
    int chores = 0;
    for (int i = 1; i <= 3; i++) {
        printf("main: doing other work, step %d\n", i);
        chores++;
        worker_sleep(0.01);
    }

    /* Now fetch the result; get waits only if the task is still running. */
    void *result = NULL;
    int rc = worker_future_get(f, &result);
    long primes = (long)(intptr_t)result;
    printf("main: task code %s, %ld primes below %ld\n", worker_err_name(rc), primes, job.limit);
    /* If the task had ended before get, get returned at once without
     * running the loop: handle any PROGRESS still queued. */
    worker_update();
    /* It can be fetched again, long after the end: same answer. */
    int again = worker_future_get(f, &result);
    worker_future_free(f); /* the future is ours to free */

    /* await = async + get + free. */
    void *sq = NULL;
    int rc_sq = worker_await(square, (void *)(intptr_t)12, &sq);
    printf("main: await(square, 12) -> %s, %ld\n", worker_err_name(rc_sq), (long)(intptr_t)sq);

    /* A failing task: get returns its code. */
    worker_future_t *bad = worker_async(failing_task, NULL);
    int rc_bad = worker_future_get(bad, NULL);
    printf("main: the failing task returned %d\n", rc_bad);
    worker_future_free(bad);

    /* Check what happened: 17984 primes below 200000; three progress
     * reports (25, 50, 75 %), all handled by now (fired before the task
     * ended; get or the update above handled them). */
    bool ok = rc == 0 && primes == 17984 && again == 0 && (long)(intptr_t)result == primes
        && chores == 3 && reports == 3 && rc_sq == 0 && (intptr_t)sq == 144 && rc_bad == 42;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
