/* cleanup_on_exit: pyThreadWorker's "Handle WorkerExit" examples.
 *
 * pyThreadWorker runs a server inside a worker: the task starts the server, then
 * waits forever inside try/finally, so that when stop() makes the event
 * loop raise WorkerExit the finally block terminates the server. Its
 * second version moves the start/terminate pair into a context manager.
 *
 * C has no exceptions: WorkerExit is the return value WORKER_EXIT. The C
 * shape of try/finally is "check what every wait returns; on WORKER_EXIT
 * (or any error) fall through to the cleanup, then return that code".
 * The C shape of the context manager is a helper that acquires, calls a
 * body function, and always releases (with_server below). This program
 * runs one server worker of each shape, sends each a few requests, stops
 * both and checks that both servers were terminated.
 *
 * Run: ./cleanup_on_exit [--auto]   (no input is ever read) */
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

/* ---- a pretend "multiprocess server": any resource that needs cleanup */

struct report { /* what main checks at the end, one per server */
    const char *name;
    int requests;
    int terminated;
};

struct server {
    struct report *report;
    char *buffer; /* stands for sockets, child processes, files... */
};

static struct server *server_run(struct report *report)
{
    struct server *s = malloc(sizeof *s);
    if (s == NULL)
        return NULL;
    s->buffer = malloc(4096);
    if (s->buffer == NULL) {
        free(s);
        return NULL;
    }
    s->report = report;
    printf("[%s] server running\n", report->name);
    return s;
}

static void server_terminate(struct server *s)
{
    printf("[%s] server terminated after %d request(s)\n", s->report->name, s->report->requests);
    s->report->terminated = 1;
    free(s->buffer);
    free(s);
}

/* Listener: runs on the server worker's own thread, so no lock. */
static int on_request(const worker_event_t *e, void *userdata)
{
    struct server *s = userdata;
    (void)e;
    s->report->requests++;
    return 0;
}

/* ---- what both server workers do while their server is up */

struct server_arg {
    worker_t *main_worker; /* where to announce that the server is up */
    struct report *report;
};

static int serve(struct server *s, const struct server_arg *a)
{
    /* worker_on: a transient listener on the current worker. */
    worker_listener_t *l = worker_on("REQUEST", on_request, s, NULL);
    if (l == NULL)
        return WORKER_ENOMEM;
    int rc = worker_fire(a->main_worker, "SERVER_READY", NULL);
    if (rc == WORKER_OK) {
        /* The "breakpoint": stop() makes this return WORKER_EXIT. */
        rc = worker_wait_forever();
    }
    /* The listener points at the server, which our caller frees next.
     * Remove it first: events still queued when the task returns are
     * delivered to the listeners during the worker's end sequence. */
    worker_unlisten(worker_current(), l);
    return rc;
}

/* Shape 1, try/finally written out. */
static int server_thread(void *arg, void **result)
{
    const struct server_arg *a = arg;
    (void)result;

    struct server *server = server_run(a->report);
    if (server == NULL)
        return WORKER_ENOMEM;

    int rc = serve(server, a); /* try:     ...                  */
    server_terminate(server); /* finally: always runs          */
    return rc; /* usually WORKER_EXIT: re-raise */
}

/* Shape 2, the context manager: acquire, run the body, always release. */
static int with_server(
    const struct server_arg *a, int (*body)(struct server *, const struct server_arg *))
{
    struct server *server = server_run(a->report);
    if (server == NULL)
        return WORKER_ENOMEM;
    int rc = body(server, a);
    server_terminate(server);
    return rc;
}

static int server_thread_cm(void *arg, void **result)
{
    (void)result;
    return with_server(arg, serve);
}

/* ---- main: start both, "do something", stop both */

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    struct report reports[2] = { { "try/finally", 0, 0 }, { "with_server", 0, 0 } };
    worker_task_fn tasks[2] = { server_thread, server_thread_cm };
    struct server_arg args[2];
    worker_t *workers[2];
    int ok = 1;

    for (int i = 0; i < 2; i++) {
        args[i] = (struct server_arg) { worker_current(), &reports[i] };
        workers[i] = worker_spawn(tasks[i], &args[i], &(worker_opts) { .name = reports[i].name });
        if (workers[i] == NULL) {
            fprintf(stderr, "worker_spawn failed\n");
            return 1;
        }
        /* One at a time: a wait only sees events handled while it runs,
         * so a SERVER_READY handled earlier would be missed. */
        int rc = worker_wait_event("SERVER_READY", 5.0, workers[i], NULL);
        if (rc != WORKER_OK) {
            fprintf(stderr, "waiting for %s: %s\n", reports[i].name, worker_strerror(rc));
            return 1;
        }
    }

    /* ... do something ... */
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 3; r++)
            if (worker_fire(workers[i], "REQUEST", NULL) != WORKER_OK)
                ok = 0;

    /* server_thread.stop(): the REQUESTs fired before are still handled
     * first (per-sender order), then the loop returns WORKER_EXIT. */
    for (int i = 0; i < 2; i++) {
        int err = 0;
        if (worker_stop(workers[i]) != WORKER_OK
            || worker_wait_thread(workers[i], &err, NULL) != WORKER_OK)
            ok = 0;
        printf("[%s] task ended with %s\n", reports[i].name, worker_err_name(err));
        ok &= err == WORKER_EXIT && reports[i].terminated && reports[i].requests == 3;
        worker_unref(workers[i]);
    }
    return ok ? 0 : 1;
}
