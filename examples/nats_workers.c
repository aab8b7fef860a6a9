/* nats_workers: the worker node of the two-process NATS example (with
 * nats_front). Three workers share the name "square" (a group: each
 * request goes to one of them); each answers a 64-bit integer with its
 * square, as a copy (worker_reply_ex), since a reply crosses processes.
 *
 * Needs pkg-config: worker-actor-nats
 *
 * Run: nats-server -a 127.0.0.1 -p 4222 &
 *      ./nats_workers nats://127.0.0.1:4222 [NODE_NAME] &
 *      ./nats_front nats://127.0.0.1:4222 10
 * NODE_NAME (default "workers") must be unique in the cluster: give each
 * nats_workers its own when running several (docs/nats.md, "Three nodes
 * and a 3-server NATS cluster"). It runs until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <worker/nats.h>
#include <worker/worker.h>

#define MEMBERS 3

static int on_square(const worker_event_t *e, void *userdata)
{
    int64_t n;
    if (worker_event_size(e) != sizeof n)
        return worker_reply_error(e, WORKER_EINVAL);
    memcpy(&n, worker_event_data(e), sizeof n);
    int64_t sq = n * n;
    printf("%s: %lld squared for %s\n", (const char *)userdata, (long long)n,
        worker_name(worker_event_target(e)));
    fflush(stdout);
    worker_fire_opts copy = { .copy = &sq, .copy_size = sizeof sq };
    return worker_reply_ex(e, NULL, &copy);
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "nats://127.0.0.1:4222";
    const char *name = argc > 2 ? argv[2] : "workers";
    int err;
    worker_node_t *node = worker_node_connect(url, &(worker_node_opts) { .name = name }, &err);
    if (!node) {
        fprintf(stderr, "nats_workers: cannot connect to %s: %s\n", url, worker_strerror(err));
        return 1;
    }
    static const char *names[MEMBERS] = { "square-1", "square-2", "square-3" };
    worker_t *members[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        members[i] = worker_spawn(NULL, NULL, &(worker_opts) { .name = names[i] });
        worker_listen(members[i], "square", on_square, (void *)names[i], NULL);
        worker_node_export_group(node, members[i], "square");
    }
    worker_signal(SIGINT, NULL, "quit");
    worker_signal(SIGTERM, NULL, "quit");
    printf("nats_workers: node %s, %d workers answer to \"square\" on %s\n", name, MEMBERS, url);
    fflush(stdout);
    worker_wait_event("quit", -1, NULL, NULL);
    worker_node_close(node);
    for (int i = 0; i < MEMBERS; i++) {
        worker_stop(members[i]);
        worker_join(members[i]);
        worker_unref(members[i]);
    }
    return 0;
}
