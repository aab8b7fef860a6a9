/* A tiny outside program built against an installed libworker-actor-nats
 * (find_package(worker-actor) then worker::nats): the node's arguments are
 * checked without a server. */
#include <stdio.h>

#include <worker/nats.h>
#include <worker/worker.h>

int main(void)
{
    int err = 0;
    worker_node_t *n = worker_node_connect(NULL, NULL, &err);
    if (n || err != WORKER_EINVAL) {
        fprintf(stderr, "consumer_nats: worker_node_connect(NULL) gave %s\n", worker_err_name(err));
        return 1;
    }
    printf("consumer_nats: libworker-actor-nats linked (%s)\n", worker_strerror(err));
    return 0;
}
