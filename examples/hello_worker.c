/* hello_worker: pyThreadWorker's first example, from the "Event loop" section.
 *
 * pyThreadWorker decorates a function with create_worker: a new thread starts,
 * prints "thread created" and then sits in its event loop forever
 * (wait_forever). In C the event loop is worker_wait_forever(): it handles
 * events and calls listeners until the worker is stopped, and then returns
 * WORKER_EXIT (pyThreadWorker raises WorkerExit instead). pyThreadWorker leaves the end
 * of the program implicit; here the main thread stops the worker and joins
 * it, and checks that the task really left through WORKER_EXIT.
 *
 * Run: ./hello_worker [--auto]      (no input is ever read) */
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

/* What the task saw; written by the worker, read by main after the join
 * (the join orders the worker's writes before main's reads). */
struct hello_state {
    int printed;
    int loop_rc;
};

static int hello_task(void *arg, void **result)
{
    struct hello_state *st = arg;
    (void)result; /* this task has no result */

    printf("thread created\n");
    st->printed = 1;

    /* The event loop. It returns only when the worker has been asked to
     * stop: that is the C form of "WorkerExit is raised". */
    st->loop_rc = worker_wait_forever();

    /* Returning WORKER_EXIT says "I left because I was stopped": the
     * parent, if any, then gets CHILD_THREAD_STOP, not CHILD_THREAD_ERROR. */
    return st->loop_rc;
}

int main(int argc, char **argv)
{
    (void)argc; /* --auto changes nothing: this example never reads input */
    (void)argv;

    struct hello_state st = { 0, 0 };

    /* create_worker = worker_spawn: create and start in one call. The
     * caller owns one reference to the handle. */
    worker_t *w = worker_spawn(hello_task, &st, &(worker_opts) { .name = "hello" });
    if (w == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }

    /* Ask the worker to stop (queues STOP_THREAD, returns at once), then
     * block until its thread has ended. */
    int rc = worker_stop(w);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_stop: %s\n", worker_strerror(rc));
        return 1;
    }
    rc = worker_join(w);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_join: %s\n", worker_strerror(rc));
        return 1;
    }

    int ok = st.printed && st.loop_rc == WORKER_EXIT && !worker_is_running(w);
    printf("worker '%s' left its event loop with %s; running: %s\n", worker_name(w),
        worker_err_name(st.loop_rc), worker_is_running(w) ? "yes" : "no");

    worker_unref(w); /* give back our reference: the worker is freed */
    return ok ? 0 : 1;
}
