/* remote_pair: two processes that pass one message "across the wire" (a
 * pipe standing in for a transport such as NATS), each with its own trace,
 * for the merged view of worker-trace (tests/trace/test_trace.py remote).
 *
 *   remote_pair A.wktrace B.wktrace
 *
 * The parent traces into A: its worker "sender" takes a message id with
 * worker_trace_remote_send("PING", "node-b.inbox") and writes it to the
 * pipe. The child traces into B: its worker "transport" reads the id,
 * records worker_trace_remote_receive(id, "PING") and fires PING at its
 * worker "inbox", as a node would. Prints "id <hex>" (the message id) and
 * "pids <A> <B>"; exit 0 when both traces were written. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <worker/worker.h>

static int on_ping(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return worker_stop(worker_current()); /* one message is all it waits for */
}

static int inbox_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (!worker_listen(
            worker_current(), "PING", on_ping, NULL, &(worker_listen_opts) { .name = "on_ping" }))
        return WORKER_ENOMEM;
    return worker_wait_forever();
}

typedef struct wire {
    int fd;
    worker_t *inbox; /* the receiving side's target */
    uint64_t id;
    int rc; /* what the task did */
} wire;

static int sender_task(void *arg, void **result)
{
    (void)result;
    wire *w = arg;
    w->id = worker_trace_remote_send("PING", "node-b.inbox");
    w->rc = write(w->fd, &w->id, sizeof w->id) == (ssize_t)sizeof w->id ? 0 : WORKER_EAGAIN;
    return w->rc;
}

static int transport_task(void *arg, void **result)
{
    (void)result;
    wire *w = arg;
    w->rc = WORKER_EAGAIN;
    if (read(w->fd, &w->id, sizeof w->id) != (ssize_t)sizeof w->id)
        return w->rc;
    worker_trace_remote_receive(w->id, "PING");
    w->rc = worker_fire(w->inbox, "PING", NULL);
    return w->rc;
}

/* Runs `task` in a worker named `name` and waits for it. */
static int run_worker(const char *name, int (*task)(void *, void **), void *arg)
{
    worker_t *w = worker_spawn(task, arg, &(worker_opts) { .name = name });
    if (!w)
        return WORKER_ENOMEM;
    int rc = worker_join(w);
    worker_unref(w);
    return rc;
}

static int receiving_side(const char *path, int fd)
{
    if (worker_trace_start(path) != WORKER_OK)
        return 1;
    worker_t *inbox = worker_spawn(inbox_task, NULL, &(worker_opts) { .name = "inbox" });
    wire w = { .fd = fd, .inbox = inbox };
    int rc = inbox ? run_worker("transport", transport_task, &w) : WORKER_ENOMEM;
    rc = rc ? rc : w.rc;
    if (inbox) {
        worker_join(inbox);
        worker_unref(inbox);
    }
    worker_trace_stop();
    return rc == 0 ? 0 : 1;
}

static int sending_side(const char *path, int fd, uint64_t *id)
{
    if (worker_trace_start(path) != WORKER_OK)
        return 1;
    wire w = { .fd = fd };
    int rc = run_worker("sender", sender_task, &w);
    rc = rc ? rc : w.rc;
    worker_trace_stop();
    *id = w.id;
    return rc == 0 && w.id != 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int fds[2];
    if (argc != 3 || pipe(fds) != 0) {
        fprintf(stderr, "usage: remote_pair A.wktrace B.wktrace\n");
        return 2;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(fds[1]);
        _exit(receiving_side(argv[2], fds[0]));
    }
    close(fds[0]);
    uint64_t id = 0;
    int rc = sending_side(argv[1], fds[1], &id);
    close(fds[1]);
    int status = 0;
    waitpid(child, &status, 0);
    printf("id %" PRIx64 "\npids %ld %ld\n", id, (long)getpid(), (long)child);
    return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
