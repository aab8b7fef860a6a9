/* Stress: channel sub/unsub racing with pub (also run under ThreadSanitizer).
 *
 * 8 subscriber workers; 4 plain threads subscribe and unsubscribe them at
 * random while 2 plain threads publish PUBS events each. An event's data is
 * (publisher << 32 | sequence). Every subscriber checks, on its own thread,
 * that the sequence from each publisher only increases (so no id is ever
 * seen twice and the per-sender order holds). At the end the workers are
 * stopped and joined (an ended worker has delivered every accepted event),
 * and the number of deliveries must equal the sum of what pub returned.
 *
 * Meanwhile the main thread makes short-lived workers, subscribes them and
 * frees them (last unref): a freed worker leaves the channel while
 * publishers may still be reading the set it was in.
 *
 * Exit status: 0 when every check held, 1 otherwise (with a message). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

enum { SUBS = 8, CHURNERS = 4, PUBLISHERS = 2, PUBS = 20000 };

struct sub {
    worker_t *w;
    int64_t last[PUBLISHERS]; /* worker thread only until joined */
    long seen;
    long violations;
};

static struct sub subs[SUBS];
static worker_channel_t *ch;
static atomic_bool publishing_done;
static atomic_long reached;
static atomic_long call_errors;
static atomic_int publishers_left = PUBLISHERS;

static int on_pub(const worker_event_t *e, void *userdata)
{
    struct sub *s = userdata;
    uint64_t v = (uint64_t)(uintptr_t)worker_event_data(e);
    unsigned who = (unsigned)(v >> 32);
    int64_t seq = (int64_t)(v & 0xffffffffu);
    if (who >= PUBLISHERS || seq <= s->last[who])
        s->violations++;
    else
        s->last[who] = seq;
    s->seen++;
    return 0;
}

static void *publisher(void *arg)
{
    uint64_t who = (uint64_t)(uintptr_t)arg;
    for (uint64_t seq = 1; seq <= PUBS; seq++) {
        int rc = worker_channel_pub(ch, "PUB", (void *)(uintptr_t)(who << 32 | seq));
        if (rc < 0)
            atomic_fetch_add(&call_errors, 1);
        else
            atomic_fetch_add(&reached, rc);
    }
    atomic_fetch_sub(&publishers_left, 1);
    return NULL;
}

static void *churner(void *arg)
{
    unsigned seed = 777u + (unsigned)(uintptr_t)arg;
    long ops = 0;
    while (!atomic_load(&publishing_done) || ops < 1000) {
        worker_t *w = subs[rand_r(&seed) % SUBS].w;
        int rc = (rand_r(&seed) & 1) ? worker_channel_sub(ch, w) : worker_channel_unsub(ch, w);
        if (rc != WORKER_OK && rc != WORKER_EINVAL) /* EINVAL: was not subscribed */
            atomic_fetch_add(&call_errors, 1);
        ops++;
    }
    return NULL;
}

int main(void)
{
    ch = worker_channel_new();
    if (!ch) {
        fprintf(stderr, "stress_channel: worker_channel_new failed\n");
        return 1;
    }
    for (int i = 0; i < SUBS; i++) {
        subs[i].w = worker_new(NULL, NULL, NULL);
        if (!subs[i].w || !worker_listen(subs[i].w, "PUB", on_pub, &subs[i], NULL)
            || worker_start(subs[i].w) != WORKER_OK) {
            fprintf(stderr, "stress_channel: cannot start subscriber %d\n", i);
            return 1;
        }
        if (i % 2 == 0)
            worker_channel_sub(ch, subs[i].w);
    }

    pthread_t pubs[PUBLISHERS], churn[CHURNERS];
    for (int i = 0; i < CHURNERS; i++)
        pthread_create(&churn[i], NULL, churner, (void *)(uintptr_t)i);
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_create(&pubs[i], NULL, publisher, (void *)(uintptr_t)i);
    /* Short-lived subscribers, never started (so never reached), freed by
     * their last unref while the publishers run. */
    long temporaries = 0;
    while (temporaries < 100000 && atomic_load(&publishers_left) > 0) {
        worker_t *tmp = worker_new(NULL, NULL, NULL);
        if (!tmp || worker_channel_sub(ch, tmp) != WORKER_OK)
            atomic_fetch_add(&call_errors, 1);
        worker_unref(tmp);
        temporaries++;
    }
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(pubs[i], NULL);
    atomic_store(&publishing_done, true);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(churn[i], NULL);

    long seen = 0, violations = 0;
    for (int i = 0; i < SUBS; i++) {
        worker_stop(subs[i].w);
        worker_join(subs[i].w);
        seen += subs[i].seen;
        violations += subs[i].violations;
    }
    long want = atomic_load(&reached);
    long errors = atomic_load(&call_errors);
    printf("stress_channel: %d publishes x %d publishers, %ld deliveries, %ld reached, "
           "%ld violations, %ld call errors, %ld temporary subscribers freed\n",
        PUBS, PUBLISHERS, seen, want, violations, errors, temporaries);

    worker_channel_free(ch);
    for (int i = 0; i < SUBS; i++)
        worker_unref(subs[i].w);

    if (violations || errors || seen != want) {
        fprintf(stderr, "stress_channel: FAILED (%s)\n",
            violations   ? "duplicate or out-of-order delivery"
                : errors ? "a channel call failed"
                         : "deliveries differ from what pub reported");
        return 1;
    }
    return 0;
}
