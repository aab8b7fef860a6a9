/* stop_is_running: pyThreadWorker's "Event system" example, first snippet.
 *
 * pyThreadWorker starts a worker that waits forever, calls stop() on it and
 * prints is_running(): still true, because stop only puts STOP_THREAD in
 * the worker's queue; the worker leaves when its event loop handles it.
 *
 * In C, reading worker_is_running() right after worker_stop() is a race:
 * the worker may already have handled STOP_THREAD and closed its mailbox.
 * To show pyThreadWorker's point without a race, the task here is busy outside
 * its event loop (blocked on a semaphore, like a long computation) when
 * main stops it: a stop only takes effect at the worker's next wait, so
 * worker_is_running() must still be true. Main then lets the task reach
 * its wait, waits for the worker with worker_wait_thread(), and
 * worker_is_running() is false.
 *
 * Lesson (pyThreadWorker's "carefully add breakpoints"): a worker reacts to
 * stop, pause and events only inside a wait. Code between two waits runs
 * to its end.
 *
 * Run: ./stop_is_running [--auto]   (no input is ever read) */
#define _POSIX_C_SOURCE 200809L
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

static sem_t busy_done; /* main posts it when the "busy work" may end */

static int busy_then_wait(void *arg, void **result)
{
    (void)arg;
    (void)result;

    /* Busy outside the event loop: STOP_THREAD just waits in the queue. */
    while (sem_wait(&busy_done) != 0) {
        /* EINTR: try again */
    }

    /* The first wait after the stop returns WORKER_EXIT at once. */
    return worker_wait_forever();
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, worker_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    if (sem_init(&busy_done, 0, 0) != 0) {
        perror("sem_init");
        return 1;
    }

    worker_t *thread = worker_spawn(busy_then_wait, NULL, NULL);
    if (thread == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }

    int rc = worker_stop(thread); /* returns at once */
    if (rc != WORKER_OK)
        return fail("worker_stop", rc);
    int running_after_stop = worker_is_running(thread);
    printf(
        "after stop:        is_running = %s\n", running_after_stop ? "true" : "false"); /* true */

    /* Let the task reach its event loop, then wait for the end. From the
     * main thread, worker_wait_thread() runs main's own event loop. */
    sem_post(&busy_done);
    int err = 0;
    rc = worker_wait_thread(thread, &err, NULL);
    if (rc != WORKER_OK)
        return fail("worker_wait_thread", rc);
    int running_after_wait = worker_is_running(thread);
    printf("after wait_thread: is_running = %s (task: %s)\n",
        running_after_wait ? "true" : "false", /* false */
        worker_err_name(err)); /* WORKER_EXIT */

    worker_unref(thread);
    sem_destroy(&busy_done);
    return running_after_stop && !running_after_wait && err == WORKER_EXIT ? 0 : 1;
}
