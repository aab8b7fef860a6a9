/* Stress of libworker-actor-nats (a plain program, so that it also runs
 * under ThreadSanitizer): one nats-server, two nodes in this process.
 * Node B exports a group of two workers; SENDERS plain threads on node A
 * call and fire through the same proxy at once, while a churn thread
 * exports and unexports another name on B and looks it up on A, and a
 * bridge carries channel publishes both ways. Then everything is closed.
 *
 * Checked: every call is answered with its own bytes (the group members
 * echo), or refused/timed out only while the churned name is away; no
 * crash, no race reported (TSan), no leak (ASan). Exit status 0 when every
 * check held. */
#include <pthread.h>
#include <stdatomic.h>

#include "tn_server.h"

#include <worker/nats.h>
#include <worker/worker.h>

#define SENDERS 4
#define CALLS 300
#define CHURN 20

static worker_node_t *a, *b;
static _Atomic int failures, published;

static int on_echo(const worker_event_t *e, void *u)
{
    (void)u;
    if (!worker_event_is_request(e))
        return 0;
    worker_fire_opts fo = { .copy = worker_event_data(e), .copy_size = worker_event_size(e) };
    return worker_reply_ex(e, NULL, &fo);
}

static worker_t *echo_worker(void)
{
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts){ .no_parent = true });
    worker_listen(w, "echo", on_echo, NULL, NULL);
    return w;
}

static void *sender(void *arg)
{
    worker_t *p = worker_node_lookup(a, "pool");
    for (int i = 0; i < CALLS; i++) {
        int v[2] = { (int)(intptr_t)arg, i };
        worker_fire_opts fo = { .copy = v, .copy_size = sizeof v };
        void *reply = NULL;
        size_t size = 0;
        int rc = worker_call_ex(p, "echo", NULL, &fo, 5, &reply, &size);
        if (rc != WORKER_OK || size != sizeof v || memcmp(reply, v, sizeof v) != 0) {
            fprintf(stderr, "stress_nats: call %d of sender %d: %s\n", i, v[0], worker_err_name(rc));
            atomic_fetch_add(&failures, 1);
        }
        worker_fire_ex(p, "echo", NULL, &fo); /* a fire too: not answered */
    }
    worker_unref(p);
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    worker_t *w = echo_worker();
    for (int i = 0; i < CHURN; i++) {
        worker_node_export(b, w, "churn");
        worker_t *p = worker_node_lookup(a, "churn");
        worker_fire_opts fo = { .copy = &i, .copy_size = sizeof i };
        worker_fire_ex(p, "echo", NULL, &fo); /* refused or not: both are fine */
        worker_unref(p);
        worker_node_unexport(b, "churn");
    }
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
    return NULL;
}

static int on_pub(const worker_event_t *e, void *u)
{
    (void)e;
    (void)u;
    atomic_fetch_add(&published, 1);
    return 0;
}

int main(void)
{
    tn_server srv = { 0 };
    if (!tn_server_start(&srv, NULL)) {
        fprintf(stderr, "stress_nats: nats-server did not start\n");
        return 1;
    }
    worker_node_opts o = { .name = "a", .heartbeat = 0.1 };
    a = worker_node_connect(srv.url, &o, NULL);
    o.name = "b";
    b = worker_node_connect(srv.url, &o, NULL);
    if (!a || !b)
        return 1;
    worker_t *members[2] = { echo_worker(), echo_worker() };
    for (int i = 0; i < 2; i++)
        worker_node_export_group(b, members[i], "pool");
    worker_channel_t *ca = worker_channel_new(), *cb = worker_channel_new();
    worker_t *sub = worker_spawn(NULL, NULL, &(worker_opts){ .no_parent = true });
    worker_listen(sub, "pub", on_pub, NULL, NULL);
    worker_channel_sub(cb, sub);
    worker_node_bridge(a, ca, "stress.bridge");
    worker_node_bridge(b, cb, "stress.bridge");
    worker_t *p = worker_node_lookup(a, "pool");
    double end = tn_now() + 5;
    while (!worker_is_running(p) && tn_now() < end)
        worker_wait_timeout(0.01);
    worker_unref(p);

    pthread_t threads[SENDERS + 1];
    for (intptr_t i = 0; i < SENDERS; i++)
        pthread_create(&threads[i], NULL, sender, (void *)i);
    pthread_create(&threads[SENDERS], NULL, churn, NULL);
    for (int i = 0; i < 200; i++) {
        worker_fire_opts fo = { .copy = &i, .copy_size = sizeof i };
        worker_channel_pub_ex(ca, "pub", NULL, &fo);
    }
    for (int i = 0; i <= SENDERS; i++)
        pthread_join(threads[i], NULL);

    worker_node_close(a);
    worker_node_close(b);
    worker_stop(sub);
    worker_join(sub);
    worker_unref(sub);
    for (int i = 0; i < 2; i++) {
        worker_stop(members[i]);
        worker_join(members[i]);
        worker_unref(members[i]);
    }
    worker_channel_free(ca);
    worker_channel_free(cb);
    tn_server_kill(&srv, SIGTERM);
    printf("stress_nats: %d calls, %d failed; %d bridged publishes arrived\n", SENDERS * CALLS,
        atomic_load(&failures), atomic_load(&published));
    return atomic_load(&failures) == 0 ? 0 : 1;
}
