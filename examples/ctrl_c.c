/* ctrl_c: a pub/sub pipeline that Ctrl-C ends in order.
 *
 * A producer worker publishes a numbered reading on a channel every
 * millisecond; SUBSCRIBERS workers, the producer's children, each check
 * that they get every reading in order. Ctrl-C is an event, not a signal
 * handler: worker_signal(SIGINT, NULL, WORKER_EV_STOP_THREAD) turns it into
 * STOP_THREAD at the main thread's worker, which stops its child, the
 * producer. The producer's loop ends, then the library stops its children
 * (a worker's end stops its children and waits for them), and each
 * subscriber handles every reading queued before its stop. Nothing is lost:
 * every subscriber got every reading published. Exit status 0 when so.
 *
 * Traced (WORKER_TRACE=run.wktrace ./ctrl_c), Ctrl-C leaves a complete
 * trace: main returns normally, and the trace is closed at exit.
 *
 * Run: ./ctrl_c            runs until Ctrl-C (SIGINT) or SIGTERM
 *      ./ctrl_c --auto     sends itself SIGINT once readings flow */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <worker/worker.h>

#define SUBSCRIBERS 3
#define PERIOD 0.001 /* seconds between readings */
#define FLOWING 100 /* readings published before main is told they flow */
#define MAILBOX 1024 /* a subscriber's queue; a full one makes the producer wait */

struct reading {
    long seq;
    double value;
};

struct subscriber {
    int id;
    long readings; /* its own thread only, until its worker has ended */
    long out_of_order;
};

struct pipeline {
    worker_t *main;
    worker_channel_t *channel;
    long published; /* the producer's thread only, until it has ended */
    long missed; /* publishes some subscriber did not take */
    struct subscriber subs[SUBSCRIBERS];
};

/* ---- subscribers ---------------------------------------------------------- */

static int on_reading(const worker_event_t *e, void *userdata)
{
    struct subscriber *s = userdata;
    const struct reading *r = worker_event_data(e);
    if (r->seq != s->readings)
        s->out_of_order++;
    s->readings++;
    return 0;
}

/* Waits until stopped; every reading queued before the stop is handled
 * first (a mailbox is FIFO), so the count printed is the final one. */
static int subscriber_main(void *arg, void **result)
{
    (void)result;
    struct subscriber *s = arg;
    int rc = worker_wait_forever();
    printf("subscriber-%d: %ld readings\n", s->id, s->readings);
    return rc;
}

/* Made by the producer's task, so they are its children: its end stops
 * them and waits for them. */
static bool start_subscribers(struct pipeline *p)
{
    for (int i = 0; i < SUBSCRIBERS; i++) {
        struct subscriber *s = &p->subs[i];
        char name[32];
        snprintf(name, sizeof name, "subscriber-%d", i + 1);
        *s = (struct subscriber) { .id = i + 1 };
        worker_t *w = worker_new(
            subscriber_main, s, &(worker_opts) { .name = name, .mailbox_limit = MAILBOX });
        bool ok = w && worker_listen(w, "READING", on_reading, s, NULL)
            && worker_start(w) == WORKER_OK && worker_channel_sub(p->channel, w) == WORKER_OK;
        worker_unref(w); /* a running worker keeps itself; the channel needs no reference */
        if (!ok)
            return false;
    }
    return true;
}

/* ---- the producer --------------------------------------------------------- */

/* One reading to every subscriber. A full subscriber makes the producer
 * wait for room (running its loop, so a stop still reaches it) rather than
 * lose the reading. */
static void publish(struct pipeline *p)
{
    struct reading r = { .seq = p->published, .value = (double)(p->published % 1000) / 10.0 };
    worker_fire_opts o = { .copy = &r, .copy_size = sizeof r, .wait = 1.0 };
    if (worker_channel_pub_ex(p->channel, "READING", NULL, &o) != SUBSCRIBERS)
        p->missed++;
    p->published++;
    if (p->published == FLOWING)
        worker_fire(p->main, "FLOWING", NULL);
}

static int producer_main(void *arg, void **result)
{
    (void)result;
    struct pipeline *p = arg;
    if (!start_subscribers(p))
        return WORKER_ENOMEM;
    /* Until stopped: the wait returns WORKER_EXIT once STOP_THREAD came. */
    while (worker_wait_timeout(PERIOD) == WORKER_OK)
        publish(p);
    printf("producer: stopped after %ld readings\n", p->published);
    return WORKER_EXIT;
}

/* ---- main ----------------------------------------------------------------- */

static bool auto_mode;

/* FLOWING, from the producer: the pipeline runs. */
static int on_flowing(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    printf("ctrl_c: readings flow to %d subscribers; press Ctrl-C to stop\n", SUBSCRIBERS);
    if (auto_mode)
        kill(getpid(), SIGINT); /* a real signal, the way Ctrl-C comes */
    return 0;
}

/* STOP_THREAD (Ctrl-C); the library then stops the main worker's child. */
static int on_stop(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    printf("ctrl_c: signal %d, stopping\n", (int)(intptr_t)worker_event_data(e));
    return 0;
}

/* Every subscriber got every reading, in order, and none was missed. */
static bool check(const struct pipeline *p)
{
    bool ok = p->missed == 0 && p->published >= FLOWING;
    for (int i = 0; i < SUBSCRIBERS; i++)
        ok = ok && p->subs[i].readings == p->published && p->subs[i].out_of_order == 0;
    if (ok)
        printf("ctrl_c: every subscriber got all %ld readings, in order\n", p->published);
    else
        printf("ctrl_c: readings lost (missed %ld of %ld)\n", p->missed, p->published);
    return ok;
}

int main(int argc, char **argv)
{
    /* First, before any thread starts: SIGINT and SIGTERM are blocked in
     * every thread and read by the library's signal thread. */
    if (worker_signal(SIGINT, NULL, WORKER_EV_STOP_THREAD) != WORKER_OK
        || worker_signal(SIGTERM, NULL, WORKER_EV_STOP_THREAD) != WORKER_OK) {
        fprintf(stderr, "ctrl_c: worker_signal failed\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* whoever reads our stdout sees each line at once */
    auto_mode = argc > 1 && strcmp(argv[1], "--auto") == 0;
    struct pipeline p = { 0 };
    p.main = worker_current();
    p.channel = worker_channel_new();
    worker_listen(p.main, "FLOWING", on_flowing, NULL, NULL);
    worker_listen(p.main, WORKER_EV_STOP_THREAD, on_stop, NULL, NULL);
    /* The producer is the main worker's child: Ctrl-C stops it. */
    worker_t *producer
        = worker_spawn(producer_main, &p, &(worker_opts) { .name = "producer", .parent = p.main });
    if (!p.channel || !producer) {
        fprintf(stderr, "ctrl_c: out of memory\n");
        return 1;
    }
    /* Runs main's loop (FLOWING, STOP_THREAD) until the producer and its
     * subscribers have ended. */
    int err = 0;
    int rc = worker_wait_thread(producer, &err, NULL);
    worker_unref(producer);
    worker_channel_free(p.channel);
    return rc == WORKER_OK && err == WORKER_EXIT && check(&p) ? 0 : 1;
}
