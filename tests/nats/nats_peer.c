/* The other process of the NATS tests: a node with exported workers that
 * answer the tests' events. It runs until its stdin is closed.
 *
 *   nats_peer URL NODE HEARTBEAT MODE
 *
 * MODE "echo": a worker exported as "echo":
 *   echo (call)      replies with the same bytes (a copy)
 *   fail (call)      replies with the error WORKER_ESTATE
 *   silent (call)    keeps the request and never answers
 *   seq (fire)       a uint32_t (first): counts them, and those not above the last
 *                    (a duplicate or a reorder)
 *   seq_check (call) replies with uint32_t[2] { received, not above the last }
 *   ping (fire)      fires "pong" with the same bytes back at the sender
 *   unexport (fire)  unexports "echo"
 *   quit (fire)      the worker ends (so it is unexported)
 * MODE "pool": three workers exported as the group "pool":
 *   who (call)       replies with the member's index (uint32_t)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <worker/nats.h>
#include <worker/worker.h>

static worker_node_t *node;
static uint32_t received, backwards, last;
static bool have_last;
static const worker_event_t *kept[64];
static int n_kept;

static int reply_copy(const worker_event_t *e, const void *data, size_t size)
{
    worker_fire_opts fo = { .copy = data, .copy_size = size };
    return worker_reply_ex(e, NULL, &fo);
}

static int on_echo(const worker_event_t *e, void *u)
{
    (void)u;
    return reply_copy(e, worker_event_data(e), worker_event_size(e));
}

static int on_fail(const worker_event_t *e, void *u)
{
    (void)u;
    return worker_reply_error(e, WORKER_ESTATE);
}

static int on_silent(const worker_event_t *e, void *u)
{
    (void)u;
    if (n_kept < 64)
        kept[n_kept++] = worker_event_ref(e);
    return 0;
}

static int on_seq(const worker_event_t *e, void *u)
{
    (void)u;
    uint32_t v = 0;
    if (worker_event_size(e) >= sizeof v) /* larger events carry it first */
        memcpy(&v, worker_event_data(e), sizeof v);
    if (have_last && v <= last)
        backwards++;
    last = v;
    have_last = true;
    received++;
    return 0;
}

static int on_seq_check(const worker_event_t *e, void *u)
{
    (void)u;
    uint32_t r[2] = { received, backwards };
    return reply_copy(e, r, sizeof r);
}

static int on_ping(const worker_event_t *e, void *u)
{
    (void)u;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_fire_ex(worker_event_target(e), "pong", NULL, &fo);
}

static int on_unexport(const worker_event_t *e, void *u)
{
    (void)e;
    (void)u;
    worker_node_unexport(node, "echo");
    return 0;
}

static int on_quit(const worker_event_t *e, void *u)
{
    (void)e;
    (void)u;
    worker_exit();
    return 0;
}

static worker_t *echo_worker(void)
{
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .name = "echo", .no_parent = true });
    worker_listen(w, "echo", on_echo, NULL, NULL);
    worker_listen(w, "fail", on_fail, NULL, NULL);
    worker_listen(w, "silent", on_silent, NULL, NULL);
    worker_listen(w, "seq", on_seq, NULL, NULL);
    worker_listen(w, "seq_check", on_seq_check, NULL, NULL);
    worker_listen(w, "ping", on_ping, NULL, NULL);
    worker_listen(w, "unexport", on_unexport, NULL, NULL);
    worker_listen(w, "quit", on_quit, NULL, NULL);
    return w;
}

static int on_who(const worker_event_t *e, void *u)
{
    uint32_t index = (uint32_t)(uintptr_t)u;
    return reply_copy(e, &index, sizeof index);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    worker_node_opts o = { .name = argv[2], .heartbeat = atof(argv[3]) };
    int err = 0;
    node = worker_node_connect(argv[1], &o, &err);
    if (!node) {
        fprintf(stderr, "nats_peer: connect: %s\n", worker_strerror(err));
        return 1;
    }
    worker_t *workers[3] = { 0 };
    if (strcmp(argv[4], "echo") == 0) {
        workers[0] = echo_worker();
        worker_node_export(node, workers[0], "echo");
    } else {
        for (uintptr_t i = 0; i < 3; i++) {
            workers[i] = worker_spawn(NULL, NULL, &(worker_opts) { .no_parent = true });
            worker_listen(workers[i], "who", on_who, (void *)i, NULL);
            worker_node_export_group(node, workers[i], "pool");
        }
    }
    char b;
    while (read(0, &b, 1) > 0)
        ;
    for (int i = 0; i < n_kept; i++)
        worker_event_unref(kept[i]);
    worker_node_close(node);
    for (int i = 0; i < 3; i++) {
        if (workers[i]) {
            worker_stop(workers[i]);
            worker_join(workers[i]);
            worker_unref(workers[i]);
        }
    }
    return 0;
}
