/* Stress: a supervised worker restarted 10,000 times while a client keeps
 * firing at it (also run under AddressSanitizer and ThreadSanitizer).
 *
 * The child fails (its task returns an error) when the main thread tells
 * it to (a worker_later call on it), once its run has told it began; its supervisor
 * (ONE_FOR_ONE, PERMANENT, no backoff) restarts it each time. Meanwhile a
 * client thread fires WORK events without pause (data in sequence; at the
 * child's mailbox_limit it tries again), through the ends and restarts,
 * counting those accepted, and the child checks that they arrive in order
 * with no gap. At the end every accepted event must have been handled
 * exactly once, none refused, the child must have run RESTARTS+1 times,
 * and it is the same worker_t throughout. Leaks: the ASan
 * build's leak check at exit.
 *
 * Exit status: 0 when every check held, 1 otherwise (with a message). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

enum { RESTARTS = 10000, LIMIT = 16 };

static atomic_long handled, runs, out_of_order;
static long next_seq; /* the child's thread only (one run at a time) */
static worker_t *main_worker;
static atomic_bool stop_firing;

static int on_work(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    long seq = (long)(intptr_t)worker_event_data(e);
    if (seq != next_seq + 1)
        atomic_fetch_add(&out_of_order, 1);
    next_seq = seq;
    atomic_fetch_add(&handled, 1);
    return 0;
}

static int on_done(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), "DONE_ACK", NULL);
    return 0;
}

static bool fail_now; /* the child's thread only */

/* Runs on the child (worker_later): not a user event, so it is not held
 * back by the mailbox_limit that the client keeps hitting. */
static void order_fail(void *arg)
{
    (void)arg;
    fail_now = true;
}

static bool must_fail(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return fail_now;
}

/* Each run tells the main thread it began, then fails when told to. */
static int flaky(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (atomic_fetch_add(&runs, 1) == 0) { /* permanent: they outlive a run */
        worker_listen(worker_current(), "WORK", on_work, NULL, NULL);
        worker_listen(worker_current(), "DONE", on_done, NULL, NULL);
    }
    fail_now = false;
    worker_fire(main_worker, "RUN", NULL);
    int rc = worker_wait_until(must_fail, NULL, -1, NULL);
    return rc == WORKER_OK ? 1 : rc;
}

struct client {
    worker_t *target;
    long accepted, refused;
};

/* Fires WORK (data: 1, 2, 3, ...) until told to stop. */
static void *client_main(void *arg)
{
    struct client *c = arg;
    for (long seq = 1; !atomic_load(&stop_firing); seq++) {
        int rc;
        while ((rc = worker_fire(c->target, "WORK", (void *)(intptr_t)seq)) == WORKER_EFULL)
            sched_yield(); /* its mailbox_limit: try again (the same seq) */
        if (rc != WORKER_OK) {
            c->refused++;
            break; /* a gap would break the order check */
        }
        c->accepted++;
    }
    return NULL;
}

int main(void)
{
    long restarts = RESTARTS;
    const char *env = getenv("STRESS_SUPERVISOR_RESTARTS");
    if (env && atol(env) > 0)
        restarts = atol(env);
    main_worker = worker_current();
    worker_opts quiet = { .quiet = true, .mailbox_limit = LIMIT };
    worker_child_spec spec
        = { .name = "flaky", .task = flaky, .restart = WORKER_RESTART_PERMANENT, .opts = &quiet };
    worker_sup_opts so = { .name = "sup", .intensity = 1000000000, .period = 1.0 };
    worker_t *sup = worker_supervisor(&spec, 1, &so);
    if (!sup) {
        fprintf(stderr, "stress_supervisor: no supervisor\n");
        return 1;
    }
    worker_t *child = worker_ref(worker_supervisor_child(sup, "flaky"));
    int failed = 0;
    if (worker_wait_event("RUN", 30.0, child, NULL) != WORKER_OK)
        failed = 1;
    struct client client = { child, 0, 0 };
    pthread_t thread;
    if (getenv("STRESS_NO_CLIENT"))
        atomic_store(&stop_firing, true);
    if (pthread_create(&thread, NULL, client_main, &client) != 0)
        return 1;
    long made = 0;
    for (; !failed && made < restarts; made++) {
        if (worker_later(child, order_fail, NULL, 0, NULL) != WORKER_OK
            || worker_wait_event("RUN", 30.0, child, NULL) != WORKER_OK) {
            fprintf(stderr, "stress_supervisor: restart %ld did not come\n", made + 1);
            failed = 1;
        }
    }
    atomic_store(&stop_firing, true);
    pthread_join(thread, NULL);
    /* Every WORK was fired before DONE (the client is joined): handled
     * before the answer. */
    if (worker_fire(child, "DONE", NULL) != WORKER_OK
        || worker_wait_event("DONE_ACK", 60.0, child, NULL) != WORKER_OK) {
        fprintf(stderr, "stress_supervisor: no DONE_ACK\n");
        failed = 1;
    }
    if (worker_supervisor_child(sup, "flaky") != child) {
        fprintf(stderr, "stress_supervisor: the child is not the same worker_t\n");
        failed = 1;
    }
    worker_stop(sup);
    int err = 0;
    worker_wait_thread(sup, &err, NULL);
    long h = atomic_load(&handled), r = atomic_load(&runs);
    printf("stress_supervisor: %ld restarts, %ld runs, %ld events accepted, %ld handled, %ld "
           "refused, %ld out of order, supervisor ended with %d\n",
        made, r, client.accepted, h, client.refused, atomic_load(&out_of_order), err);
    if (h != client.accepted || client.refused || atomic_load(&out_of_order) || r != restarts + 1
        || err != WORKER_EXIT) {
        fprintf(stderr,
            "stress_supervisor: FAILED (lost or extra events, refusals, a wrong "
            "number of runs, or a wrong end)\n");
        failed = 1;
    }
    worker_unref(child);
    worker_unref(sup);
    return failed;
}
