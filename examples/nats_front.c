/* nats_front: the front-end node of the two-process NATS example (with
 * nats_workers). It looks up "square" (a proxy worker_t), waits until some
 * node exports it, then calls it COUNT times with copied data and checks
 * every answer. Exit status 0 when all were right.
 *
 * Needs pkg-config: worker-actor-nats
 *
 * Run: ./nats_front nats://127.0.0.1:4222 [COUNT]   (nats_workers running) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <worker/nats.h>
#include <worker/worker.h>

/* A proxy runs while some node exports its name (heard within a heartbeat). */
static int wait_for_export(worker_t *proxy, double seconds)
{
    for (double waited = 0; !worker_is_running(proxy); waited += 0.05) {
        if (waited > seconds)
            return WORKER_ETIMEDOUT;
        worker_sleep(0.05);
    }
    return WORKER_OK;
}

static int ask(worker_t *square, int64_t n)
{
    worker_fire_opts copy = { .copy = &n, .copy_size = sizeof n };
    void *reply;
    size_t size;
    int rc = worker_call_ex(square, "square", NULL, &copy, 2.0, &reply, &size);
    if (rc != WORKER_OK || size != sizeof(int64_t)) {
        fprintf(stderr, "nats_front: square(%lld): %s\n", (long long)n, worker_strerror(rc));
        return 1;
    }
    int64_t sq;
    memcpy(&sq, reply, sizeof sq);
    printf("square(%lld) = %lld\n", (long long)n, (long long)sq);
    return sq == n * n ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "nats://127.0.0.1:4222";
    int count = argc > 2 ? atoi(argv[2]) : 10, err, bad = 0;
    worker_node_t *node = worker_node_connect(url, &(worker_node_opts) { .name = "front" }, &err);
    if (!node) {
        fprintf(stderr, "nats_front: cannot connect to %s: %s\n", url, worker_strerror(err));
        return 1;
    }
    worker_t *square = worker_node_lookup(node, "square");
    if (wait_for_export(square, 10) != WORKER_OK) {
        fprintf(stderr, "nats_front: no node exports \"square\"\n");
        bad = 1;
    }
    for (int64_t i = 1; !bad && i <= count; i++)
        bad += ask(square, i);
    worker_unref(square);
    worker_node_close(node);
    return bad ? 1 : 0;
}
