/* supervised_service: a supervisor keeps a flaky worker going, and no
 * order sent to it is lost across its restarts.
 *
 * "orders" handles ORDER events and fails (its task returns an error)
 * once a run has handled FAIL_EVERY orders (the orders already queued by
 * then are still handled by that run's end), like a service with a bug that
 * takes it down now and then. Its supervisor (ONE_FOR_ONE, PERMANENT, a
 * short backoff) restarts it each time. A client fires ORDERS orders at it
 * without waiting, straight through the restarts: orders that arrive while
 * it is down wait in its mailbox for its next run, because a restarted
 * child is the same worker_t and keeps its mail. At the end the client
 * asks the service (worker_call, also answered by whichever run is up)
 * how many orders it handled, and checks that every order it sent was
 * handled exactly once, in order.
 *
 * Run: ./supervised_service [--auto]   (no input is ever read; exit status
 * 0 when nothing was lost) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <worker/worker.h>

#define ORDERS 2000
#define FAIL_EVERY 150
#define BURST 50
#define APP_EBUG 77 /* the service's own error code */

/* The service's state: it lives in the task's arg, which every run gets,
 * and its listeners are permanent, so both outlive a restart. */
struct service {
    long handled; /* orders handled, over all runs */
    long in_run; /* orders handled by the current run */
    long next; /* the order number expected next */
    long out_of_order;
    int runs;
};

static int on_order(const worker_event_t *e, void *userdata)
{
    struct service *s = userdata;
    long n = (long)(intptr_t)worker_event_data(e);
    if (n != s->next)
        s->out_of_order++;
    s->next = n + 1;
    s->handled++;
    s->in_run++;
    return 0;
}

static int on_total(const worker_event_t *e, void *userdata)
{
    struct service *s = userdata;
    return worker_reply(e, (void *)(intptr_t)s->handled);
}

static bool bug_hits(const worker_event_t *e, void *userdata)
{
    (void)e;
    return ((struct service *)userdata)->in_run >= FAIL_EVERY;
}

static int service_task(void *arg, void **result)
{
    (void)result;
    struct service *s = arg;
    if (s->runs++ == 0) { /* the first run puts the permanent listeners on */
        worker_listen(worker_current(), "ORDER", on_order, s, NULL);
        worker_listen(worker_current(), "TOTAL", on_total, s, NULL);
    }
    s->in_run = 0;
    int rc = worker_wait_until(bug_hits, s, -1, NULL);
    return rc == WORKER_OK ? APP_EBUG : rc; /* the bug, or stopped */
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static struct service svc = { .next = 1 };
    worker_opts quiet = { .quiet = true }; /* its failures are expected here */
    worker_child_spec spec = { .name = "orders",
        .task = service_task,
        .arg = &svc,
        .restart = WORKER_RESTART_PERMANENT,
        .opts = &quiet };
    worker_sup_opts so = { .name = "orders-sup",
        .strategy = WORKER_ONE_FOR_ONE,
        .intensity = 100,
        .period = 10,
        .backoff = 0.001,
        .backoff_max = 0.01 };
    worker_t *sup = worker_supervisor(&spec, 1, &so);
    if (!sup) {
        fprintf(stderr, "supervised_service: no supervisor\n");
        return 1;
    }
    worker_t *orders = worker_supervisor_child(sup, "orders");

    /* Orders come in bursts of BURST, 2 ms apart (a client's pace): the
     * service goes down and comes back many times meanwhile. */
    long sent = 0;
    for (long n = 1; n <= ORDERS; n++) {
        if (worker_fire(orders, "ORDER", (void *)(intptr_t)n) == WORKER_OK)
            sent++;
        if (n % BURST == 0)
            worker_sleep(0.002);
    }
    void *reply = NULL;
    int rc = worker_call(orders, "TOTAL", NULL, 10.0, &reply);
    long handled = (long)(intptr_t)reply;

    worker_stop(sup); /* stops "orders" first, then ends */
    int err = 0;
    worker_wait_thread(sup, &err, NULL);
    worker_unref(sup);

    printf("sent %ld orders, the service handled %ld (%ld out of order) in %d runs "
           "(%d restarts); the supervisor ended with %s\n",
        sent, handled, svc.out_of_order, svc.runs, svc.runs - 1, worker_err_name(err));
    bool ok = rc == WORKER_OK && sent == ORDERS && handled == sent && svc.out_of_order == 0
        && svc.runs > 1 && err == WORKER_EXIT;
    printf("%s\n", ok ? "nothing was lost" : "LOST ORDERS");
    return ok ? 0 : 1;
}
