/* Channels: sub / unsub / pub / pub_ex / count / free.
 * (channel.h, docs/semantics.md "Channels",
 * docs/features.md "Channels".)
 *
 * Synchronisation: subscribers acknowledge to the test's main thread by
 * firing events at its root worker; the main thread waits for them with
 * worker_wait_event() (TU_WAIT seconds at most). Worker-side counters are read
 * by the main thread only after such an event or a join. */
#ifndef _GNU_SOURCE
#include "test_util.h"
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <worker/worker.h>

static void stop_join_unref(worker_t *w)
{
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

/* A subscriber: counts NEWS, remembers the last data pointer and payload,
 * and ACKs main with its index. FLUSH is answered with FLUSHED. */
struct sub {
    int index;
    worker_t *main;
    worker_t *w;
    int news;
    void *last_data;
    size_t last_size;
    worker_t *last_sender;
    char text[32];
    atomic_int *handled; /* shared, may be NULL */
};

static int on_news(const worker_event_t *e, void *userdata)
{
    struct sub *s = userdata;
    s->news++;
    s->last_data = worker_event_data(e);
    s->last_size = worker_event_size(e);
    s->last_sender = worker_event_target(e);
    if (s->last_size && s->last_size < sizeof s->text)
        memcpy(s->text, s->last_data, s->last_size);
    if (s->handled)
        atomic_fetch_add(s->handled, 1);
    return worker_fire(s->main, "ACK", TU_PTR(s->index));
}

static int on_flush(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct sub *s = userdata;
    return worker_fire(s->main, "FLUSHED", TU_PTR(s->index));
}

static void make_sub(struct sub *s, int index)
{
    s->index = index;
    s->main = worker_current();
    s->w = worker_new(NULL, NULL, NULL);
    cr_assert_not_null(s->w);
    cr_assert_not_null(worker_listen(s->w, "NEWS", on_news, s, NULL));
    cr_assert_not_null(worker_listen(s->w, "FLUSH", on_flush, s, NULL));
    cr_assert_eq(worker_start(s->w), WORKER_OK);
}

/* Wait for `n` events called `name`; seen[i] counts index i's. */
static void wait_n(const char *name, int n, int *seen, int max)
{
    for (int i = 0; i < n; i++) {
        void *d = NULL;
        cr_assert_eq(worker_wait_event(name, TU_WAIT, NULL, &d), WORKER_OK,
            "%s %d of %d did not come", name, i + 1, n);
        cr_assert(TU_INT(d) >= 0 && TU_INT(d) < max);
        if (seen)
            seen[TU_INT(d)]++;
    }
}

/* ===================================================================== */

Test(channels, ten_subscribers_each_receive_once, .timeout = 10)
{
    enum { N = 10 };
    struct sub subs[N];
    memset(subs, 0, sizeof subs);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_not_null(ch);
    for (int i = 0; i < N; i++) {
        make_sub(&subs[i], i);
        cr_assert_eq(worker_channel_sub(ch, subs[i].w), WORKER_OK);
    }
    cr_assert_eq(worker_channel_count(ch), N);

    cr_assert_eq(worker_channel_pub(ch, "NEWS", TU_PTR(123)), N);
    int seen[N] = { 0 };
    wait_n("ACK", N, seen, N);
    /* Every subscriber handles the FLUSH after the NEWS (same sender), so
     * after N FLUSHED a second delivery would have shown. */
    for (int i = 0; i < N; i++)
        cr_assert_eq(worker_fire(subs[i].w, "FLUSH", NULL), WORKER_OK);
    wait_n("FLUSHED", N, NULL, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(seen[i], 1, "subscriber %d acked %d times", i, seen[i]);
        cr_assert_eq(subs[i].news, 1);
        cr_assert_eq(TU_INT(subs[i].last_data), 123);
        cr_assert_eq(subs[i].last_sender, worker_current(), "the sender is the publisher");
    }
    worker_channel_free(ch);
    for (int i = 0; i < N; i++)
        stop_join_unref(subs[i].w);
}

/* One shared event: every subscriber sees the same data pointer (no copy
 * per subscriber), and `release` runs once, after the last one has handled
 * it. The release callback counts how many had handled it at that moment,
 * and fires RELEASED at main. */
struct rel {
    atomic_int calls;
    atomic_int handled;
    int handled_at_release;
    void *data;
    worker_t *main;
};

static struct rel *the_rel;

static void release_cb(void *data)
{
    struct rel *r = the_rel;
    r->data = data;
    r->handled_at_release = atomic_load(&r->handled);
    atomic_fetch_add(&r->calls, 1);
    worker_fire(r->main, "RELEASED", NULL);
}

static int count_acks(const worker_event_t *e, void *userdata)
{
    (void)e;
    (*(int *)userdata)++;
    return 0;
}

Test(channels, release_once_after_fan_out, .timeout = 10)
{
    enum { N = 10 };
    struct rel r = { .main = worker_current() };
    the_rel = &r;
    struct sub subs[N];
    memset(subs, 0, sizeof subs);
    worker_channel_t *ch = worker_channel_new();
    for (int i = 0; i < N; i++) {
        make_sub(&subs[i], i);
        subs[i].handled = &r.handled;
        cr_assert_eq(worker_channel_sub(ch, subs[i].w), WORKER_OK);
    }
    int acks = 0;
    worker_listener_t *li = worker_on("ACK", count_acks, &acks, NULL);

    for (int round = 1; round <= 2; round++) {
        char payload[] = "hello subscribers";
        worker_fire_opts o
            = { .copy = payload, .copy_size = sizeof payload, .release = release_cb };
        cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &o), N);
        memset(payload, 'x', sizeof payload - 1); /* the event holds its own copy */
        cr_assert_eq(worker_wait_event("RELEASED", TU_WAIT, NULL, NULL), WORKER_OK);
        /* Each ACK was fired before its subscriber let go of the event, so
         * before RELEASED: all N were handled by now. */
        cr_assert_eq(acks, N * round);
        cr_assert_eq(atomic_load(&r.calls), round, "release runs once per publish");
        cr_assert_eq(r.handled_at_release, N * round, "release ran after the last subscriber");
        for (int i = 0; i < N; i++) {
            cr_assert_eq(subs[i].news, round);
            cr_assert_eq(subs[i].last_data, subs[0].last_data, "one shared event object");
            cr_assert_eq(subs[i].last_size, sizeof payload);
            cr_assert_str_eq(subs[i].text, "hello subscribers");
        }
        cr_assert_eq(r.data, subs[0].last_data, "release gets the event's data");
    }
    cr_assert_eq(worker_unlisten(worker_current(), li), WORKER_OK);
    worker_channel_free(ch);
    for (int i = 0; i < N; i++)
        stop_join_unref(subs[i].w);
}

/* No subscriber: pub returns 0 and release runs at once. */
static atomic_int plain_releases;
static void plain_release(void *data)
{
    (void)data;
    atomic_fetch_add(&plain_releases, 1);
}

Test(channels, pub_without_subscribers_releases_at_once, .timeout = 10)
{
    worker_channel_t *ch = worker_channel_new();
    worker_fire_opts o = { .release = plain_release };
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", TU_PTR(1), &o), 0);
    cr_assert_eq(atomic_load(&plain_releases), 1);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 0);
    worker_channel_free(ch);
}

/* A worker that is freed leaves the channel: after stop + join + unref the
 * count drops at once (join returns after the run dropped its reference). */
Test(channels, freed_worker_leaves_channel, .timeout = 10)
{
    enum { N = 3 };
    struct sub subs[N];
    memset(subs, 0, sizeof subs);
    worker_channel_t *ch = worker_channel_new();
    for (int i = 0; i < N; i++) {
        make_sub(&subs[i], i);
        cr_assert_eq(worker_channel_sub(ch, subs[i].w), WORKER_OK);
    }
    cr_assert_eq(worker_channel_count(ch), 3);
    stop_join_unref(subs[1].w);
    cr_assert_eq(worker_channel_count(ch), 2);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 2);
    int seen[N] = { 0 };
    wait_n("ACK", 2, seen, N);
    cr_assert_eq(seen[0], 1);
    cr_assert_eq(seen[1], 0);
    cr_assert_eq(seen[2], 1);

    /* A worker never started, subscribed, then freed. */
    worker_t *idle = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_channel_sub(ch, idle), WORKER_OK);
    cr_assert_eq(worker_channel_count(ch), 3);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 2, "not running: skipped");
    wait_n("ACK", 2, NULL, N);
    worker_unref(idle);
    cr_assert_eq(worker_channel_count(ch), 2);

    worker_channel_free(ch);
    stop_join_unref(subs[0].w);
    stop_join_unref(subs[2].w);
}

/* A stopped subscriber stays subscribed but is skipped (not counted); once
 * restarted it receives again. */
Test(channels, stopped_subscriber_skipped_restarted_receives, .timeout = 10)
{
    enum { N = 2 };
    struct sub subs[N];
    memset(subs, 0, sizeof subs);
    worker_channel_t *ch = worker_channel_new();
    for (int i = 0; i < N; i++) {
        make_sub(&subs[i], i);
        cr_assert_eq(worker_channel_sub(ch, subs[i].w), WORKER_OK);
    }
    cr_assert_eq(worker_stop(subs[1].w), WORKER_OK);
    cr_assert_eq(worker_join(subs[1].w), WORKER_OK);
    cr_assert_eq(worker_channel_count(ch), 2);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 1);
    int seen[N] = { 0 };
    wait_n("ACK", 1, seen, N);
    cr_assert_eq(seen[0], 1);
    /* No EVENT_REJECT for a skipped subscriber. */
    cr_assert_eq(worker_wait_event(WORKER_EV_EVENT_REJECT, 0.1, NULL, NULL), WORKER_ETIMEDOUT);

    cr_assert_eq(worker_start(subs[1].w), WORKER_OK);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 2);
    wait_n("ACK", 2, seen, N);
    cr_assert_eq(seen[0], 2);
    cr_assert_eq(seen[1], 1);
    cr_assert_eq(subs[1].news, 1);
    worker_channel_free(ch);
    for (int i = 0; i < N; i++)
        stop_join_unref(subs[i].w);
}

Test(channels, sub_twice_and_unsub, .timeout = 10)
{
    struct sub s = { 0 };
    make_sub(&s, 0);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_count(ch), 0);
    cr_assert_eq(worker_channel_sub(ch, s.w), WORKER_OK);
    cr_assert_eq(worker_channel_sub(ch, s.w), WORKER_OK, "no-op");
    cr_assert_eq(worker_channel_count(ch), 1);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 1, "one delivery, not two");
    cr_assert_eq(worker_channel_unsub(ch, s.w), WORKER_OK);
    cr_assert_eq(worker_channel_count(ch), 0);
    cr_assert_eq(worker_channel_unsub(ch, s.w), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 0);
    cr_assert_eq(worker_fire(s.w, "FLUSH", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("FLUSHED", TU_WAIT, s.w, NULL), WORKER_OK);
    cr_assert_eq(s.news, 1);
    worker_channel_free(ch);
    stop_join_unref(s.w);
}

/* NULL worker: the current one (here main's root worker). */
Test(channels, sub_current_worker, .timeout = 10)
{
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(ch, NULL), WORKER_OK);
    cr_assert_eq(worker_channel_count(ch), 1);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", TU_PTR(5)), 1);
    void *d = NULL;
    cr_assert_eq(worker_wait_event("NEWS", TU_WAIT, NULL, &d), WORKER_OK);
    cr_assert_eq(TU_INT(d), 5);
    cr_assert_eq(worker_channel_unsub(ch, NULL), WORKER_OK);
    cr_assert_eq(worker_channel_count(ch), 0);
    worker_channel_free(ch);
}

/* opts.target sets the sender the subscribers see. */
Test(channels, pub_ex_target_is_sender, .timeout = 10)
{
    struct sub s = { 0 };
    make_sub(&s, 0);
    worker_t *other = worker_new(NULL, NULL, NULL);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(ch, s.w), WORKER_OK);
    worker_fire_opts o = { .target = other };
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &o), 1);
    cr_assert_eq(worker_wait_event("ACK", TU_WAIT, s.w, NULL), WORKER_OK);
    cr_assert_eq(s.last_sender, other);
    worker_channel_free(ch);
    stop_join_unref(s.w);
    worker_unref(other);
}

/* The channel can be freed while it still has subscribers, and a worker
 * can be freed after its channel. */
Test(channels, free_channel_with_subscribers, .timeout = 10)
{
    struct sub a = { 0 }, b = { 0 };
    make_sub(&a, 0);
    make_sub(&b, 1);
    worker_channel_t *c1 = worker_channel_new(), *c2 = worker_channel_new();
    cr_assert_eq(worker_channel_sub(c1, a.w), WORKER_OK);
    cr_assert_eq(worker_channel_sub(c1, b.w), WORKER_OK);
    cr_assert_eq(worker_channel_sub(c2, a.w), WORKER_OK);
    worker_channel_free(c1);
    cr_assert_eq(worker_channel_pub(c2, "NEWS", NULL), 1);
    cr_assert_eq(worker_wait_event("ACK", TU_WAIT, a.w, NULL), WORKER_OK);
    /* The ACK kept for this thread's last wait holds its sender (a.w)
     * until the next wait or update starts: let it go first. */
    cr_assert_eq(worker_update(), WORKER_OK);
    stop_join_unref(a.w);
    cr_assert_eq(worker_channel_count(c2), 0);
    worker_channel_free(c2);
    stop_join_unref(b.w);
}

/* ===================================================================== */
/* sub/unsub racing with pub from 4 threads                               */
/* ===================================================================== */

enum { RACE_SUBS = 6, RACE_PUBS_PER_THREAD = 20000, RACE_IDS = 2 * RACE_PUBS_PER_THREAD };

struct race_sub {
    worker_t *w;
    unsigned char count[RACE_IDS]; /* per publish id; worker thread only */
    int doubles;
    long total;
    worker_t *main;
};

static int race_on_pub(const worker_event_t *e, void *userdata)
{
    struct race_sub *s = userdata;
    int id = TU_INT(worker_event_data(e));
    if (id < 0 || id >= RACE_IDS || ++s->count[id] > 1)
        s->doubles++;
    s->total++;
    return 0;
}

static int race_on_flush(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct race_sub *s = userdata;
    return worker_fire(s->main, "FLUSHED", NULL);
}

struct race {
    worker_channel_t *ch;
    struct race_sub subs[RACE_SUBS];
    atomic_bool publishing_done;
    atomic_long reached;
    atomic_int errors;
};

struct race_arg {
    struct race *r;
    int n;
};

static void *race_publisher(void *arg)
{
    struct race_arg *a = arg;
    for (int i = 0; i < RACE_PUBS_PER_THREAD; i++) {
        int rc = worker_channel_pub(a->r->ch, "PUB", TU_PTR(a->n * RACE_PUBS_PER_THREAD + i));
        if (rc < 0)
            atomic_fetch_add(&a->r->errors, 1);
        else
            atomic_fetch_add(&a->r->reached, rc);
    }
    return NULL;
}

static void *race_subscriber(void *arg)
{
    struct race_arg *a = arg;
    unsigned seed = 12345u + (unsigned)a->n;
    while (!atomic_load(&a->r->publishing_done)) {
        worker_t *w = a->r->subs[rand_r(&seed) % RACE_SUBS].w;
        int rc = (rand_r(&seed) & 1) ? worker_channel_sub(a->r->ch, w)
                                     : worker_channel_unsub(a->r->ch, w);
        if (rc != WORKER_OK && rc != WORKER_EINVAL) /* EINVAL: was not subscribed */
            atomic_fetch_add(&a->r->errors, 1);
    }
    return NULL;
}

Test(channels, sub_unsub_racing_with_pub, .timeout = 60)
{
    static struct race r; /* large: not on the stack */
    memset(&r, 0, sizeof r);
    r.ch = worker_channel_new();
    for (int i = 0; i < RACE_SUBS; i++) {
        r.subs[i].main = worker_current();
        r.subs[i].w = worker_new(NULL, NULL, NULL);
        cr_assert_not_null(worker_listen(r.subs[i].w, "PUB", race_on_pub, &r.subs[i], NULL));
        cr_assert_not_null(worker_listen(r.subs[i].w, "FLUSH", race_on_flush, &r.subs[i], NULL));
        cr_assert_eq(worker_start(r.subs[i].w), WORKER_OK);
        if (i % 2)
            cr_assert_eq(worker_channel_sub(r.ch, r.subs[i].w), WORKER_OK);
    }
    pthread_t th[4];
    struct race_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct race_arg) { .r = &r, .n = i % 2 };
        cr_assert_eq(
            pthread_create(&th[i], NULL, i < 2 ? race_publisher : race_subscriber, &args[i]), 0);
    }
    cr_assert_eq(pthread_join(th[0], NULL), 0);
    cr_assert_eq(pthread_join(th[1], NULL), 0);
    atomic_store(&r.publishing_done, true);
    cr_assert_eq(pthread_join(th[2], NULL), 0);
    cr_assert_eq(pthread_join(th[3], NULL), 0);

    /* Every publish accepted before the FLUSH (same sender order does not
     * hold across threads, so stop + join instead: an ended worker has
     * delivered every accepted event). */
    long total = 0;
    for (int i = 0; i < RACE_SUBS; i++) {
        cr_assert_eq(worker_stop(r.subs[i].w), WORKER_OK);
        cr_assert_eq(worker_join(r.subs[i].w), WORKER_OK);
        cr_assert_eq(r.subs[i].doubles, 0, "subscriber %d saw an id twice", i);
        total += r.subs[i].total;
    }
    cr_assert_eq(atomic_load(&r.errors), 0);
    cr_assert_eq(total, atomic_load(&r.reached), "deliveries %ld != sum of pub counts %ld", total,
        atomic_load(&r.reached));
    worker_channel_free(r.ch);
    for (int i = 0; i < RACE_SUBS; i++)
        worker_unref(r.subs[i].w);
}

/* Workers freed while other threads publish on their channel: the freed
 * worker leaves the channel, and publishers that still read the old
 * subscriber set must find valid memory (no crash; under ASan no
 * use-after-free). 64 idle subscribers make each publish walk a large set. */
static atomic_bool churn_done;

static void *publish_until_done(void *arg)
{
    worker_channel_t *ch = arg;
    while (!atomic_load(&churn_done))
        if (worker_channel_pub(ch, "NEWS", NULL) < 0)
            return TU_PTR(1);
    return NULL;
}

Test(channels, workers_freed_while_publishing, .timeout = 60)
{
    enum { IDLE = 64, FREED = 200 };
    worker_channel_t *ch = worker_channel_new();
    worker_t *idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        idle[i] = worker_new(NULL, NULL, NULL);
        cr_assert_eq(worker_channel_sub(ch, idle[i]), WORKER_OK);
    }
    atomic_store(&churn_done, false);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, publish_until_done, ch), 0);
    for (int i = 0; i < FREED; i++) {
        worker_t *w = worker_new(NULL, NULL, NULL);
        cr_assert_eq(worker_channel_sub(ch, w), WORKER_OK);
        worker_unref(w); /* the last reference: it leaves the channel */
    }
    atomic_store(&churn_done, true);
    for (int i = 0; i < 2; i++) {
        void *failed = TU_PTR(1);
        cr_assert_eq(pthread_join(th[i], &failed), 0);
        cr_assert_null(failed);
    }
    cr_assert_eq(worker_channel_count(ch), IDLE);
    for (int i = 0; i < IDLE; i++)
        worker_unref(idle[i]);
    cr_assert_eq(worker_channel_count(ch), 0);
    worker_channel_free(ch);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

Test(channels, bad_input, .timeout = 10)
{
    struct sub s = { 0 };
    make_sub(&s, 0);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_not_null(ch);
    cr_assert_eq(worker_channel_sub(ch, s.w), WORKER_OK);

    cr_assert_eq(worker_channel_sub(NULL, s.w), WORKER_EINVAL);
    cr_assert_eq(worker_channel_unsub(NULL, s.w), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub(NULL, "NEWS", NULL), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub(ch, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub(ch, "", NULL), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub_ex(NULL, "NEWS", NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_channel_count(NULL), 0);
    worker_channel_free(NULL);

    /* bubble / broadcast / copy_size without copy: EINVAL, and release is
     * not called for a refused publish. */
    atomic_store(&plain_releases, 0);
    worker_fire_opts bub = { .bubble = true, .release = plain_release };
    worker_fire_opts bro = { .broadcast = true, .release = plain_release };
    worker_fire_opts sz = { .copy_size = 4, .release = plain_release };
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &bub), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &bro), WORKER_EINVAL);
    cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", NULL, &sz), WORKER_EINVAL);
    cr_assert_eq(atomic_load(&plain_releases), 0);

    /* Nothing was delivered by the refused calls. */
    cr_assert_eq(worker_fire(s.w, "FLUSH", NULL), WORKER_OK);
    cr_assert_eq(worker_wait_event("FLUSHED", TU_WAIT, s.w, NULL), WORKER_OK);
    cr_assert_eq(s.news, 0);
    cr_assert_eq(worker_channel_count(ch), 1);
    worker_channel_free(ch);
    stop_join_unref(s.w);
}
