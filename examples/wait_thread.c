/* wait_thread: pyThreadWorker's "Event system" example, second snippet.
 *
 * pyThreadWorker starts a worker that waits forever, stops it, calls
 * wait_thread(thread) and then is_running() is false. pyThreadWorker's
 * wait_thread also hands back the worker's (error, result) pair; in C
 * that is worker_wait_thread(w, &err, &ret): err is 0 when the task
 * succeeded, WORKER_EXIT when it was stopped, or the task's own error code.
 * This program shows all three endings.
 *
 * Unlike worker_join() (a plain thread join), worker_wait_thread() runs the
 * caller's event loop while it waits, so the caller's listeners keep
 * running.
 *
 * Run: ./wait_thread [--auto]       (no input is ever read) */
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

#define APP_EBROKEN 42 /* an application error code (any non-zero value) */

/* Ends only when stopped. */
static int forever_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_wait_forever(); /* WORKER_EXIT */
}

/* Succeeds with a result. */
static int answer_task(void *arg, void **result)
{
    static int answer = 42;
    (void)arg;
    *result = &answer;
    return 0;
}

/* Fails with an application error code. */
static int broken_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return APP_EBROKEN;
}

/* Wait for `w`, print how it ended, and check it against what we expect. */
static int wait_and_report(worker_t *w, int want_err)
{
    int err = -1000;
    void *ret = NULL;
    int rc = worker_wait_thread(w, &err, &ret);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_wait_thread: %s\n", worker_strerror(rc));
        return 0;
    }
    printf("%-8s is_running=%s err=%d (%s)", worker_name(w),
        worker_is_running(w) ? "true" : "false", err,
        err == APP_EBROKEN ? "application error" : worker_err_name(err));
    if (ret != NULL)
        printf(" result=%d", *(int *)ret);
    printf("\n");
    return !worker_is_running(w) && err == want_err;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    /* pyThreadWorker's snippet: stop, wait_thread, is_running() is false. */
    worker_t *thread = worker_spawn(forever_task, NULL, &(worker_opts) { .name = "forever" });
    worker_t *answer = worker_spawn(answer_task, NULL, &(worker_opts) { .name = "answer" });
    /* quiet: this failure is expected, do not report it on stderr. */
    worker_t *broken
        = worker_spawn(broken_task, NULL, &(worker_opts) { .name = "broken", .quiet = true });
    if (thread == NULL || answer == NULL || broken == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }

    int rc = worker_stop(thread);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_stop: %s\n", worker_strerror(rc));
        return 1;
    }

    int ok = wait_and_report(thread, WORKER_EXIT);
    ok &= wait_and_report(answer, 0);
    ok &= wait_and_report(broken, APP_EBROKEN);

    /* Waiting for yourself would never end: the library refuses it
     * (WORKER_EDEADLK; the main thread's root worker, which never ends,
     * gives WORKER_EINVAL). */
    rc = worker_wait_thread(worker_current(), NULL, NULL);
    printf("wait_thread(current) -> %s\n", worker_err_name(rc));
    ok &= rc != WORKER_OK;

    worker_unref(thread);
    worker_unref(answer);
    worker_unref(broken);
    return ok ? 0 : 1;
}
