/* Stress: host loops driving their root workers through worker_fd() (also
 * run under ThreadSanitizer).
 *
 * HOSTS plain threads each run a poll() loop on their own worker_fd() and
 * call worker_update(); PRODUCERS workers fire EVENTS events at every host
 * (data: producer << 32 | sequence). Each host checks on its own thread
 * that every producer's sequence arrives in order with no gap, and arms a
 * short timer (worker_later) every 1,000 events, driven by
 * worker_next_timeout(). A poll that sleeps LOST_AFTER seconds while
 * events are still due counts as a lost wake-up.
 *
 * Meanwhile a churn thread makes short-lived plain threads that take an fd
 * and exit at once (their root ends and the fd is closed) while it fires
 * at them: pushes race with the close of the mailbox and of its fd.
 *
 * Exit status: 0 when every check held, 1 otherwise (with a message). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <worker/worker.h>

enum { HOSTS = 3, PRODUCERS = 3, EVENTS = 20000, CHURNS = 200, CHURN_FIRES = 50 };
#define LOST_AFTER 10.0

struct host {
    pthread_t thread;
    worker_t *root; /* a reference, taken by the host thread */
    int64_t next_seq[PRODUCERS]; /* host thread only until joined */
    long seen, timers_armed, timers_ran;
    long violations, lost_wakeups, fd_errors;
};

static struct host hosts[HOSTS];
static pthread_barrier_t roots_ready;

/* Seconds to whole milliseconds, rounded up (no libm needed). */
static int ms_up(double seconds)
{
    int ms = (int)(seconds * 1000.0);
    return (double)ms < seconds * 1000.0 ? ms + 1 : ms;
}

static int on_event(const worker_event_t *e, void *userdata)
{
    struct host *h = userdata;
    uint64_t v = (uint64_t)(uintptr_t)worker_event_data(e);
    int p = (int)(v >> 32);
    int64_t seq = (int64_t)(v & 0xffffffffu);
    if (p < 0 || p >= PRODUCERS || seq != h->next_seq[p])
        h->violations++;
    else
        h->next_seq[p]++;
    return 0;
}

static void timer_ran(void *arg)
{
    ((struct host *)arg)->timers_ran++;
}

static void *host_main(void *arg)
{
    struct host *h = arg;
    h->root = worker_ref(worker_current());
    int fd = worker_fd();
    if (fd < 0 || worker_fd() != fd)
        h->fd_errors++;
    worker_listen(h->root, "N", on_event, h, NULL);
    pthread_barrier_wait(&roots_ready);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (fd >= 0 && (h->seen < (long)PRODUCERS * EVENTS || h->timers_ran < h->timers_armed)) {
        double next = worker_next_timeout();
        int ms = next < 0 ? (int)(LOST_AFTER * 1000) : ms_up(next);
        int n = poll(&p, 1, ms);
        if (n == 0 && next < 0) {
            h->lost_wakeups++;
            break;
        }
        long before = h->seen;
        worker_update();
        h->seen = 0;
        for (int i = 0; i < PRODUCERS; i++)
            h->seen += h->next_seq[i];
        if (h->seen / 1000 != before / 1000) {
            if (worker_later(NULL, timer_ran, h, 0.001, NULL) == WORKER_OK)
                h->timers_armed++;
        }
    }
    return NULL;
}

static int producer(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    for (int64_t s = 0; s < EVENTS; s++)
        for (int i = 0; i < HOSTS; i++) {
            void *data = (void *)(uintptr_t)(((uint64_t)id << 32) | (uint64_t)s);
            if (worker_fire(hosts[i].root, "N", data) != WORKER_OK)
                return WORKER_EINVAL;
        }
    return WORKER_OK;
}

struct short_lived {
    sem_t ready;
    worker_t *root;
    int fd;
};

static void *short_lived_main(void *arg)
{
    struct short_lived *s = arg;
    s->root = worker_ref(worker_current());
    s->fd = worker_fd();
    sem_post(&s->ready);
    return NULL; /* the root ends here, and its fd is closed */
}

static atomic_long churn_errors;

static void *churn_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < CHURNS; i++) {
        struct short_lived s = { .root = NULL, .fd = -1 };
        sem_init(&s.ready, 0, 0);
        pthread_t th;
        if (pthread_create(&th, NULL, short_lived_main, &s) != 0) {
            atomic_fetch_add(&churn_errors, 1);
            break;
        }
        sem_wait(&s.ready);
        if (s.fd < 0)
            atomic_fetch_add(&churn_errors, 1);
        for (int k = 0; k < CHURN_FIRES; k++) {
            int rc = worker_fire(s.root, "X", NULL);
            if (rc != WORKER_OK && rc != WORKER_EREJECTED)
                atomic_fetch_add(&churn_errors, 1);
        }
        pthread_join(th, NULL);
        worker_unref(s.root);
        sem_destroy(&s.ready);
    }
    return NULL;
}

int main(void)
{
    pthread_barrier_init(&roots_ready, NULL, HOSTS + 1);
    for (int i = 0; i < HOSTS; i++)
        if (pthread_create(&hosts[i].thread, NULL, host_main, &hosts[i]) != 0) {
            fprintf(stderr, "stress_embed: pthread_create failed\n");
            return 1;
        }
    pthread_barrier_wait(&roots_ready);
    pthread_t churn;
    if (pthread_create(&churn, NULL, churn_main, NULL) != 0)
        return 1;
    worker_t *prod[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        prod[i] = worker_spawn(producer, (void *)(intptr_t)i, NULL);
    int failed = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        if (!prod[i] || worker_join(prod[i]) != WORKER_OK) {
            failed = 1;
            continue;
        }
        worker_unref(prod[i]);
    }
    for (int i = 0; i < HOSTS; i++) {
        struct host *h = &hosts[i];
        pthread_join(h->thread, NULL);
        if (h->seen != (long)PRODUCERS * EVENTS || h->violations || h->lost_wakeups || h->fd_errors
            || h->timers_ran != h->timers_armed) {
            fprintf(stderr,
                "stress_embed: host %d: seen %ld of %ld, %ld out of order, %ld lost "
                "wake-ups, %ld fd errors, timers %ld of %ld\n",
                i, h->seen, (long)PRODUCERS * EVENTS, h->violations, h->lost_wakeups, h->fd_errors,
                h->timers_ran, h->timers_armed);
            failed = 1;
        }
        worker_unref(h->root);
    }
    pthread_join(churn, NULL);
    if (atomic_load(&churn_errors)) {
        fprintf(stderr, "stress_embed: %ld churn errors\n", atomic_load(&churn_errors));
        failed = 1;
    }
    pthread_barrier_destroy(&roots_ready);
    if (!failed)
        printf("stress_embed: %d hosts x %d events, %d short-lived fds: ok\n", HOSTS,
            PRODUCERS * EVENTS, CHURNS);
    return failed;
}
