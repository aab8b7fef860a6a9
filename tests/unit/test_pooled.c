/* Pooled workers (M:N): worker_opts.pooled and worker_scheduler_threads
 * (lifecycle.h; API.md Part 2 "Pooled workers"; issue 12 "Tests").
 *
 * One test per rule: where and how a pooled worker's listeners run, every
 * feature between pooled and thread workers (fire, bubble, broadcast,
 * channels, trees, monitors, links, supervisors, timers, calls, stats,
 * traces), the blocking calls that return WORKER_EWOULDBLOCK inside a
 * pooled worker, pause/resume, stop and restart, and bad input.
 *
 * Synchronisation: as in the rest of the suite (test_util.h), workers tell
 * the main thread's root worker with ACK (or named) events and record what
 * they saw in context structs; the main thread asserts after that event, a
 * join or a wait_thread. "Nothing came" is proven by ending the senders
 * first and then looking at what is already queued.
 *
 * worker_scheduler_threads is process-global and works once per process.
 * Criterion runs each test in its own process by default, but the tests
 * here do not rely on that: a test that needs a fresh process (the
 * "set once, before the start" rule) re-executes this binary with
 * TEST_POOLED_CHILD set, and main() runs that check instead of Criterion.
 * The other tests only ask for more scheduler threads (ignoring the answer:
 * the number is a hint for them, not what they check). */
#include "test_util.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <worker/worker.h>

#include "tu_trace.h"
#include "wk_trace_format.h"

extern char **environ;

static const worker_opts pooled_quiet = { .pooled = true, .quiet = true };

static pthread_t main_thread;

/* Every test starts here: the main thread's root worker, and at least two
 * scheduler threads where the process has not fixed the number yet (one
 * CPU would otherwise mean one thread, and "never two at once" would be
 * trivially true). */
static worker_t *setup(void)
{
    main_thread = pthread_self();
    (void)worker_scheduler_threads(4);
    return tu_main();
}

static worker_t *pooled_new(const char *name, worker_t *parent, int daemon)
{
    worker_opts o
        = { .name = name, .parent = parent, .daemon = daemon, .pooled = true, .quiet = true };
    worker_t *w = worker_new(NULL, NULL, &o);
    cr_assert_not_null(w, "worker_new(pooled %s)", name);
    return w;
}

static worker_t *thread_new(const char *name, worker_t *parent, int daemon)
{
    worker_opts o = { .name = name, .parent = parent, .daemon = daemon, .quiet = true };
    worker_t *w = worker_new(NULL, NULL, &o);
    cr_assert_not_null(w, "worker_new(thread %s)", name);
    return w;
}

static void start_ok(worker_t *w)
{
    cr_assert_eq(worker_start(w), WORKER_OK, "worker_start(%s)", worker_name(w));
}

/* Stop, wait for the end, check it was a stop, drop the reference. */
static void stop_end(worker_t *w)
{
    if (w == NULL)
        return;
    cr_assert_eq(worker_stop(w), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "%s ended with %s", worker_name(w), worker_err_name(err));
    cr_assert(!worker_is_running(w));
    worker_unref(w);
}

static void wait_ack_eq(intptr_t expected)
{
    intptr_t v = -1;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK, "no ACK (expected %ld)", (long)expected);
    cr_assert_eq(v, expected, "ACK %ld, expected %ld", (long)v, (long)expected);
}

/* A listener counting into an int of the worker (no lock: one listener at a
 * time), and the same for timers. */
static int count_plain(const worker_event_t *e, void *userdata)
{
    (void)e;
    (*(int *)userdata)++;
    return 0;
}

/* ==== where listeners run =========================================== */

struct where {
    worker_t *main;
    pthread_t thread;
    worker_t *current;
    bool is_main;
    bool in_main_thread;
};

static void where_record(struct where *x)
{
    x->thread = pthread_self();
    x->in_main_thread = pthread_equal(x->thread, main_thread);
    x->current = worker_current();
    x->is_main = worker_is_main(NULL);
}

static int where_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct where *x = userdata;
    where_record(x);
    tu_ack(x->main, 1);
    return 0;
}

static void where_init(void *arg)
{
    struct where *x = arg;
    where_record(x);
    tu_ack(x->main, 2);
}

/* A pooled worker's listeners and its set-up (a delay-0 later) run on a
 * scheduler thread, not on the thread that started it, and see themselves
 * as the current worker. */
Test(pooled, listeners_run_on_a_scheduler_thread, .timeout = 20)
{
    worker_t *m = setup();
    struct where in_listener = { .main = m }, in_init = { .main = m };
    worker_t *w = pooled_new("where", NULL, 0);
    cr_assert_not_null(worker_listen(w, "WHERE", where_listener, &in_listener, NULL));
    start_ok(w);
    cr_assert(worker_is_running(w));
    cr_assert_null(worker_parent(w), "made by the main thread: no parent");
    cr_assert_eq(worker_later(w, where_init, &in_init, 0, NULL), WORKER_OK);
    wait_ack_eq(2);
    cr_assert_eq(worker_fire(w, "WHERE", NULL), WORKER_OK);
    wait_ack_eq(1);
    struct where *all[] = { &in_init, &in_listener };
    for (int i = 0; i < 2; i++) {
        cr_assert(!all[i]->in_main_thread, "ran on the main thread");
        cr_assert_eq(all[i]->current, w, "worker_current() is the pooled worker");
        cr_assert(!all[i]->is_main);
    }
    stop_end(w);
}

/* ==== one listener at a time ======================================== */

#define OVL_WORKERS 4
#define OVL_SENDERS 4
#ifdef __SANITIZE_ADDRESS__
#define OVL_EVENTS 10000 /* per sender */
#else
#define OVL_EVENTS 40000
#endif

struct ovl {
    worker_t *main;
    int index;
    atomic_int inside; /* listeners of this worker running now */
    atomic_int overlaps;
    atomic_int wrong_thread;
    long plain; /* the worker's state: no lock, no atomic */
    long expected;
};

static int ovl_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct ovl *o = userdata;
    if (atomic_fetch_add(&o->inside, 1) != 0)
        atomic_fetch_add(&o->overlaps, 1);
    if (pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&o->wrong_thread, 1);
    long v = o->plain;
    for (volatile int i = 0; i < 50; i++) { } /* widen the window between the read and the write */
    o->plain = v + 1;
    atomic_fetch_sub(&o->inside, 1);
    if (o->plain == o->expected)
        tu_ack(o->main, o->index);
    return 0;
}

struct ovl_sender {
    pthread_t thread;
    worker_t **targets;
    long failures;
};

static void *ovl_send(void *arg)
{
    struct ovl_sender *s = arg;
    for (long i = 0; i < OVL_EVENTS; i++)
        if (worker_fire(s->targets[i % OVL_WORKERS], "HIT", NULL) != WORKER_OK)
            s->failures++;
    return NULL;
}

/* Two listeners per worker for the same event, several pooled workers
 * (so that scheduler threads steal), several plain threads firing at
 * them: no two listeners of one worker ever overlap, and a plain counter
 * of the worker's (read, spin, write) loses no increment. */
Test(pooled, one_listener_at_a_time_per_worker, .timeout = 120)
{
    worker_t *m = setup();
    static struct ovl o[OVL_WORKERS];
    worker_t *w[OVL_WORKERS];
    for (int i = 0; i < OVL_WORKERS; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].main = m;
        o[i].index = i + 1;
        o[i].expected = 2L * OVL_SENDERS * OVL_EVENTS / OVL_WORKERS; /* two listeners */
        w[i] = pooled_new("ovl", NULL, 0);
        cr_assert_not_null(worker_listen(w[i], "HIT", ovl_listener, &o[i], NULL));
        cr_assert_not_null(worker_listen(w[i], "HIT", ovl_listener, &o[i], NULL));
        start_ok(w[i]);
    }
    struct ovl_sender s[OVL_SENDERS];
    for (int k = 0; k < OVL_SENDERS; k++) {
        s[k] = (struct ovl_sender) { .targets = w };
        cr_assert_eq(pthread_create(&s[k].thread, NULL, ovl_send, &s[k]), 0);
    }
    for (int k = 0; k < OVL_SENDERS; k++) {
        pthread_join(s[k].thread, NULL);
        cr_assert_eq(s[k].failures, 0, "sender %d: %ld fires refused", k, s[k].failures);
    }
    int mask = 0;
    for (int i = 0; i < OVL_WORKERS; i++) {
        void *d = NULL;
        cr_assert_eq(worker_wait_event(TU_ACK, 60, NULL, &d), WORKER_OK,
            "a worker did not handle all its events");
        intptr_t v = (intptr_t)d;
        cr_assert(v >= 1 && v <= OVL_WORKERS);
        mask |= 1 << (v - 1);
    }
    cr_assert_eq(mask, (1 << OVL_WORKERS) - 1);
    for (int i = 0; i < OVL_WORKERS; i++) {
        stop_end(w[i]);
        cr_assert_eq(atomic_load(&o[i].overlaps), 0, "worker %d: %d overlapping listener runs", i,
            atomic_load(&o[i].overlaps));
        cr_assert_eq(atomic_load(&o[i].wrong_thread), 0);
        cr_assert_eq(o[i].plain, o[i].expected, "worker %d: state %ld, expected %ld", i, o[i].plain,
            o[i].expected);
    }
}

/* ==== fire between pooled and thread workers ========================= */

#define HOPS 1000

struct hop {
    worker_t *main;
    worker_t *next; /* NULL: the last hop, which ACKs main */
    worker_t *expect_sender;
    bool expect_pooled_thread; /* the listener must not run on the main thread */
    long next_seq;
    long n;
    long wrong_sender, wrong_order, wrong_thread, fire_failures;
};

static int hop_listener(const worker_event_t *e, void *userdata)
{
    struct hop *h = userdata;
    long seq = (long)(intptr_t)worker_event_data(e);
    if (worker_event_target(e) != h->expect_sender)
        h->wrong_sender++;
    if (seq != h->next_seq)
        h->wrong_order++;
    if (pthread_equal(pthread_self(), main_thread))
        h->wrong_thread++;
    h->next_seq = seq + 1;
    h->n++;
    if (h->next) {
        if (worker_fire(h->next, "HOP", TU_PTR(seq)) != WORKER_OK)
            h->fire_failures++;
    } else if (seq == HOPS - 1) {
        tu_ack(h->main, 7);
    }
    return 0;
}

/* main (thread) -> p1 (pooled) -> p2 (pooled) -> t (thread) -> p3 (pooled)
 * -> ACK main (pooled -> thread): each hop sees the previous one as the
 * sender, in order, once. */
Test(pooled, fire_between_pooled_and_thread_workers, .timeout = 30)
{
    worker_t *m = setup();
    worker_t *p1 = pooled_new("p1", NULL, 0), *p2 = pooled_new("p2", NULL, 0);
    worker_t *p3 = pooled_new("p3", NULL, 0), *t = thread_new("t", NULL, 0);
    static struct hop h[4];
    h[0] = (struct hop) { .main = m, .next = p2, .expect_sender = m };
    h[1] = (struct hop) { .main = m, .next = t, .expect_sender = p1 };
    h[2] = (struct hop) { .main = m, .next = p3, .expect_sender = p2 };
    h[3] = (struct hop) { .main = m, .next = NULL, .expect_sender = t };
    worker_t *ws[4] = { p1, p2, t, p3 };
    for (int i = 0; i < 4; i++) {
        cr_assert_not_null(worker_listen(ws[i], "HOP", hop_listener, &h[i], NULL));
        start_ok(ws[i]);
    }
    for (long i = 0; i < HOPS; i++)
        cr_assert_eq(worker_fire(p1, "HOP", TU_PTR(i)), WORKER_OK);
    cr_assert_eq(worker_wait_event(TU_ACK, 30, NULL, NULL), WORKER_OK);
    for (int i = 0; i < 4; i++)
        stop_end(ws[i]);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(h[i].n, HOPS, "hop %d handled %ld", i, h[i].n);
        cr_assert_eq(h[i].wrong_sender, 0, "hop %d: wrong sender", i);
        cr_assert_eq(h[i].wrong_order, 0, "hop %d: out of order", i);
        cr_assert_eq(h[i].wrong_thread, 0, "hop %d: on the main thread", i);
        cr_assert_eq(h[i].fire_failures, 0, "hop %d: fires refused", i);
    }
}

/* A plain pthread (a root worker of its own) fires at a pooled worker. */
static void *plain_fire(void *arg)
{
    worker_t *w = arg;
    for (long i = 0; i < HOPS; i++)
        if (worker_fire(w, "HOP", TU_PTR(i)) != WORKER_OK)
            return TU_PTR(1);
    return NULL;
}

struct from_plain {
    worker_t *main;
    long next, n, wrong_order;
};

static int from_plain_listener(const worker_event_t *e, void *userdata)
{
    struct from_plain *f = userdata;
    long seq = (long)(intptr_t)worker_event_data(e);
    if (seq != f->next)
        f->wrong_order++;
    f->next = seq + 1;
    if (++f->n == HOPS)
        tu_ack(f->main, 8);
    return 0;
}

Test(pooled, fire_from_a_plain_thread, .timeout = 30)
{
    worker_t *m = setup();
    struct from_plain f = { .main = m };
    worker_t *p = pooled_new("p", NULL, 0);
    cr_assert_not_null(worker_listen(p, "HOP", from_plain_listener, &f, NULL));
    start_ok(p);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, plain_fire, p), 0);
    void *ret = NULL;
    pthread_join(th, &ret);
    cr_assert_null(ret, "a fire from the plain thread was refused");
    wait_ack_eq(8);
    stop_end(p);
    cr_assert_eq(f.n, HOPS);
    cr_assert_eq(f.wrong_order, 0);
}

/* ==== bubble and broadcast in a mixed tree ========================== */

struct bit {
    worker_t *main;
    intptr_t bit;
    int rc; /* of the bubble/broadcast made inside the listener */
};

static int bit_ack(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct bit *b = userdata;
    tu_ack(b->main, b->bit);
    return 0;
}

static int do_bubble(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct bit *b = userdata;
    b->rc = worker_bubble("UP", NULL);
    return 0;
}

static int do_broadcast(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct bit *b = userdata;
    b->rc = worker_broadcast("BC", NULL);
    return 0;
}

/* Collect `n` ACKs; their bits OR'ed. */
static intptr_t collect_bits(int n)
{
    intptr_t mask = 0;
    for (int i = 0; i < n; i++) {
        intptr_t v = 0;
        cr_assert_eq(tu_wait_ack(&v), WORKER_OK, "ACK %d of %d missing", i + 1, n);
        cr_assert_eq(mask & v, 0, "bit %ld twice", (long)v);
        mask |= v;
    }
    return mask;
}

/*   P (pooled)
 *   |- T1 (thread)
 *   `- Q (pooled)
 *      |- T2 (thread)
 *      `- Q2 (pooled) */
Test(pooled, bubble_and_broadcast_in_a_mixed_tree, .timeout = 30)
{
    worker_t *m = setup();
    worker_t *P = pooled_new("P", NULL, 0);
    worker_t *T1 = thread_new("T1", P, 0);
    worker_t *Q = pooled_new("Q", P, 0);
    worker_t *T2 = thread_new("T2", Q, 0);
    worker_t *Q2 = pooled_new("Q2", Q, 0);
    worker_t *all[] = { P, T1, Q, T2, Q2 };
    enum { BP = 1, BT1 = 2, BQ = 4, BT2 = 8, BQ2 = 16 };
    static struct bit bits[5];
    for (int i = 0; i < 5; i++) {
        bits[i] = (struct bit) { .main = m, .bit = (intptr_t)1 << i };
        cr_assert_not_null(worker_listen(all[i], "BC", bit_ack, &bits[i], NULL));
        cr_assert_not_null(worker_listen(all[i], "UP", bit_ack, &bits[i], NULL));
    }
    struct bit q2_bubble = { .rc = 1 }, q_broadcast = { .rc = 1 };
    cr_assert_not_null(worker_listen(Q2, "DO_BUBBLE", do_bubble, &q2_bubble, NULL));
    cr_assert_not_null(worker_listen(Q, "DO_BROADCAST", do_broadcast, &q_broadcast, NULL));
    for (int i = 0; i < 5; i++)
        start_ok(all[i]);
    cr_assert_eq(worker_parent(Q2), Q);
    cr_assert_eq(worker_parent(T1), P);
    cr_assert_eq(worker_children_count(P), 2);
    cr_assert_eq(worker_children_count(Q), 2);

    /* From the top, down to everyone. */
    cr_assert_eq(
        worker_fire_ex(P, "BC", NULL, &(worker_fire_opts) { .broadcast = true }), WORKER_OK);
    cr_assert_eq(collect_bits(5), BP | BT1 | BQ | BT2 | BQ2);
    /* From the bottom (pooled), up. */
    cr_assert_eq(worker_fire_ex(Q2, "UP", NULL, &(worker_fire_opts) { .bubble = true }), WORKER_OK);
    cr_assert_eq(collect_bits(3), BQ2 | BQ | BP);
    /* From a thread leaf, up through pooled parents. */
    cr_assert_eq(worker_fire_ex(T2, "UP", NULL, &(worker_fire_opts) { .bubble = true }), WORKER_OK);
    cr_assert_eq(collect_bits(3), BT2 | BQ | BP);
    /* worker_bubble inside a pooled worker: its parents, not itself. */
    cr_assert_eq(worker_fire(Q2, "DO_BUBBLE", NULL), WORKER_OK);
    cr_assert_eq(collect_bits(2), BQ | BP);
    /* worker_broadcast inside a pooled worker: its children (a thread and
     * a pooled one), not itself. */
    cr_assert_eq(worker_fire(Q, "DO_BROADCAST", NULL), WORKER_OK);
    cr_assert_eq(collect_bits(2), BT2 | BQ2);

    stop_end(P); /* stops the tree and waits for it */
    for (int i = 1; i < 5; i++) {
        cr_assert(
            !worker_is_running(all[i]), "%s still runs after its root ended", worker_name(all[i]));
        worker_unref(all[i]);
    }
    cr_assert_eq(q2_bubble.rc, WORKER_OK);
    cr_assert_eq(q_broadcast.rc, WORKER_OK);
    cr_assert_eq(worker_wait_event(TU_ACK, 0.05, NULL, NULL), WORKER_ETIMEDOUT, "an extra ACK");
}

/* ==== channels ======================================================= */

#define NEWS 200 /* half published by main, half by a pooled worker */

static atomic_int released;
static worker_t *release_main;

static void news_release(void *data)
{
    (void)data;
    if (atomic_fetch_add(&released, 1) + 1 == NEWS)
        worker_fire(release_main, "RELEASED", NULL);
}

struct sub {
    worker_t *main;
    intptr_t id;
    long n, next_main, next_pub, wrong_order;
};

static int sub_listener(const worker_event_t *e, void *userdata)
{
    struct sub *s = userdata;
    long seq = (long)(intptr_t)worker_event_data(e);
    long *next = seq < NEWS / 2 ? &s->next_main : &s->next_pub;
    if (seq != *next)
        s->wrong_order++;
    *next = seq + 1;
    if (++s->n == NEWS)
        tu_ack(s->main, s->id);
    return 0;
}

struct publisher {
    worker_channel_t *ch;
    int bad_counts;
};

static int publish_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct publisher *p = userdata;
    worker_fire_opts o = { .release = news_release };
    for (long i = NEWS / 2; i < NEWS; i++)
        if (worker_channel_pub_ex(p->ch, "NEWS", TU_PTR(i), &o) != 4)
            p->bad_counts++;
    return 0;
}

/* Three pooled subscribers and a thread one; publishes from the main
 * thread and from inside a pooled worker: each subscriber gets each event
 * once, in order per publisher; each event's release runs once. */
Test(pooled, channel_with_pooled_subscribers, .timeout = 30)
{
    worker_t *m = setup();
    release_main = m;
    atomic_store(&released, 0);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_not_null(ch);
    worker_t *subs[4] = { pooled_new("s1", NULL, 0), pooled_new("s2", NULL, 0),
        pooled_new("s3", NULL, 0), thread_new("s4", NULL, 0) };
    static struct sub ctx[4];
    for (int i = 0; i < 4; i++) {
        ctx[i] = (struct sub) { .main = m, .id = (intptr_t)1 << i, .next_pub = NEWS / 2 };
        cr_assert_not_null(worker_listen(subs[i], "NEWS", sub_listener, &ctx[i], NULL));
        start_ok(subs[i]);
        cr_assert_eq(worker_channel_sub(ch, subs[i]), WORKER_OK);
    }
    cr_assert_eq(worker_channel_count(ch), 4);
    struct publisher pub = { .ch = ch };
    worker_t *pw = pooled_new("publisher", NULL, 0);
    cr_assert_not_null(worker_listen(pw, "PUBLISH", publish_listener, &pub, NULL));
    start_ok(pw);
    cr_assert_eq(worker_fire(pw, "PUBLISH", NULL), WORKER_OK);
    worker_fire_opts o = { .release = news_release };
    for (long i = 0; i < NEWS / 2; i++)
        cr_assert_eq(worker_channel_pub_ex(ch, "NEWS", TU_PTR(i), &o), 4);
    cr_assert_eq(collect_bits(4), 15);
    cr_assert_eq(worker_wait_event("RELEASED", TU_WAIT, NULL, NULL), WORKER_OK);
    stop_end(pw);
    cr_assert_eq(pub.bad_counts, 0, "a publish from the pooled worker reached != 4");

    /* A pooled subscriber leaves; a stopped one is skipped. */
    cr_assert_eq(worker_channel_unsub(ch, subs[0]), WORKER_OK);
    cr_assert_eq(worker_stop(subs[1]), WORKER_OK);
    cr_assert_eq(worker_join(subs[1]), WORKER_OK);
    cr_assert_eq(worker_channel_pub(ch, "OTHER", NULL), 2);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            worker_unref(subs[i]);
        else
            stop_end(subs[i]);
        cr_assert_eq(ctx[i].n, NEWS, "subscriber %d got %ld", i, ctx[i].n);
        cr_assert_eq(ctx[i].wrong_order, 0, "subscriber %d: out of order", i);
    }
    cr_assert_eq(atomic_load(&released), NEWS, "each release once");
    worker_channel_free(ch);
}

/* ==== trees ========================================================== */

static atomic_long clock_seq; /* orders records across threads */

struct parent_log {
    worker_t *main;
    int starts;
    int ends;
    worker_t *ended[8];
    int ended_err[8];
    long ended_at[8];
    int stops, errors, dones;
};

static int log_child_start(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct parent_log *)userdata)->starts++;
    return 0;
}

static int log_child_stop(const worker_event_t *e, void *userdata)
{
    struct parent_log *l = userdata;
    if (worker_event_data(e) == NULL)
        l->stops++;
    return 0;
}

static int log_child_error(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct parent_log *)userdata)->errors++;
    return 0;
}

static int log_child_done(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct parent_log *)userdata)->dones++;
    return 0;
}

static int log_child_end(const worker_event_t *e, void *userdata)
{
    struct parent_log *l = userdata;
    const worker_down_t *d = worker_event_data(e);
    if (l->ends < 8) {
        l->ended[l->ends] = d->worker;
        l->ended_err[l->ends] = d->err;
        l->ended_at[l->ends] = atomic_fetch_add(&clock_seq, 1);
    }
    l->ends++;
    if (l->main)
        tu_ack(l->main, 100 + l->ends);
    return 0;
}

static void listen_children(worker_t *w, struct parent_log *l)
{
    cr_assert_not_null(worker_listen(w, WORKER_EV_CHILD_THREAD_START, log_child_start, l, NULL));
    cr_assert_not_null(worker_listen(w, WORKER_EV_CHILD_THREAD_STOP, log_child_stop, l, NULL));
    cr_assert_not_null(worker_listen(w, WORKER_EV_CHILD_THREAD_ERROR, log_child_error, l, NULL));
    cr_assert_not_null(worker_listen(w, WORKER_EV_CHILD_THREAD_DONE, log_child_done, l, NULL));
    cr_assert_not_null(worker_listen(w, WORKER_EV_CHILD_THREAD_END, log_child_end, l, NULL));
}

static int find_end(const struct parent_log *l, const worker_t *w)
{
    for (int i = 0; i < l->ends && i < 8; i++)
        if (l->ended[i] == w)
            return i;
    return -1;
}

/* A daemon child that cannot end until its gate opens (its loop does not
 * run meanwhile); it ACKs main once its run has begun (and so has told
 * its parent CHILD_THREAD_START). */
struct gated {
    worker_t *main;
    tu_gate gate;
};

static int gated_task(void *arg, void **result)
{
    (void)result;
    struct gated *g = arg;
    tu_ack(g->main, 60);
    if (tu_gate_pass(&g->gate, 30) != 0)
        return 99;
    return worker_wait_forever();
}

static long down_seq;
static int record_down_seq(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    down_seq = atomic_fetch_add(&clock_seq, 1);
    return 0;
}

/* A pooled parent with thread and pooled children, daemon and not:
 * stopping it stops them; it ends only after its non-daemon children have
 * ended (their CHILD_THREAD_END reached its listener before its own end,
 * seen by a monitor); a daemon child that cannot end does not hold it. */
Test(pooled, pooled_parent_waits_for_its_non_daemon_children, .timeout = 40)
{
    setup();
    static struct parent_log log;
    memset(&log, 0, sizeof log);
    atomic_store(&clock_seq, 1);
    worker_t *P = pooled_new("P", NULL, 0);
    listen_children(P, &log);
    start_ok(P);
    worker_t *T = thread_new("T", P, 0);
    worker_t *Q = pooled_new("Q", P, 0);
    static struct gated gate;
    gate.main = tu_main();
    tu_gate_init(&gate.gate);
    worker_t *D = worker_new(gated_task, &gate,
        &(worker_opts) { .name = "D", .parent = P, .daemon = WORKER_DAEMON_YES, .quiet = true });
    cr_assert_not_null(D);
    worker_t *DQ = pooled_new("DQ", P, WORKER_DAEMON_YES);
    worker_t *kids[] = { T, Q, D, DQ };
    for (int i = 0; i < 4; i++)
        start_ok(kids[i]);
    wait_ack_eq(60); /* D is at its gate */
    /* T's run has begun (its loop answers), so its CHILD_THREAD_START,
     * sent from its own thread, is in P's mailbox before P's stop. (A
     * START that comes once P is ending is refused, while its END would
     * be admitted.) */
    cr_assert_not_null(tu_sync_install(T));
    cr_assert_eq(tu_sync(T), WORKER_OK);
    cr_assert(!worker_is_daemon(T) && !worker_is_daemon(Q));
    cr_assert(worker_is_daemon(D) && worker_is_daemon(DQ));
    cr_assert_eq(worker_children_count(P), 4);

    cr_assert_not_null(worker_on(WORKER_EV_WORKER_DOWN, record_down_seq, NULL, NULL));
    cr_assert_eq(worker_monitor(P), WORKER_OK);
    cr_assert_eq(worker_stop(P), WORKER_OK);
    void *d = NULL;
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 10, P, &d), WORKER_OK);
    cr_assert_eq(((worker_down_t *)d)->err, WORKER_EXIT);
    int err = 0;
    cr_assert_eq(worker_wait_thread(P, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);

    /* The non-daemon children ended first, and P heard of it. */
    int it = find_end(&log, T), iq = find_end(&log, Q);
    cr_assert_geq(it, 0, "P ended before hearing T's CHILD_THREAD_END");
    cr_assert_geq(iq, 0, "P ended before hearing Q's CHILD_THREAD_END");
    cr_assert_eq(log.ended_err[it], WORKER_EXIT, "T was stopped");
    cr_assert_eq(log.ended_err[iq], WORKER_EXIT, "Q was stopped");
    cr_assert_lt(log.ended_at[it], down_seq, "T's end after P's end");
    cr_assert_lt(log.ended_at[iq], down_seq, "Q's end after P's end");
    cr_assert(!worker_is_running(T) && !worker_is_running(Q));
    cr_assert_eq(log.starts, 4, "CHILD_THREAD_START from each child");
    /* The daemon thread child is still held at its gate: not awaited. */
    cr_assert(worker_is_running(D), "P waited for its daemon child");
    cr_assert_eq(find_end(&log, D), -1);

    tu_gate_open(&gate.gate);
    cr_assert_eq(worker_wait_thread(D, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the daemon child was sent STOP_THREAD too");
    cr_assert_eq(worker_join(DQ), WORKER_OK);
    for (int i = 0; i < 4; i++)
        worker_unref(kids[i]);
    worker_unref(P);
    tu_gate_destroy(&gate.gate);
}

/* Pooled parents waiting for their children do not hold scheduler
 * threads: 32 pooled parents (more than the 4 scheduler threads setup()
 * asks for) each wait for a thread child that cannot end yet (held at a
 * gate); meanwhile another pooled worker still runs. Then the gates open
 * and every parent ends. */
#define WAITING_PARENTS 32

static int held_child_task(void *arg, void **result)
{
    (void)result;
    struct gated *g = arg;
    tu_ack(g->main, 61);
    if (tu_gate_pass(&g->gate, 30) != 0)
        return 99;
    return worker_wait_forever();
}

static int ack_62(const worker_event_t *e, void *userdata)
{
    (void)e;
    tu_ack(((struct gated *)userdata)->main, 62);
    return 0;
}

Test(pooled, waiting_parents_hold_no_scheduler_thread, .timeout = 60)
{
    worker_t *m = setup();
    atomic_int downs = 0;
    cr_assert_not_null(worker_on(WORKER_EV_WORKER_DOWN, tu_count_listener, &downs, NULL));
    static struct gated gates[WAITING_PARENTS];
    worker_t *parents[WAITING_PARENTS], *kids[WAITING_PARENTS];
    for (int i = 0; i < WAITING_PARENTS; i++) {
        gates[i].main = m;
        tu_gate_init(&gates[i].gate);
        parents[i] = pooled_new("waiting", NULL, 0);
        cr_assert_not_null(
            worker_listen(parents[i], WORKER_EV_STOP_THREAD, ack_62, &gates[i], NULL));
        start_ok(parents[i]);
        kids[i] = worker_new(held_child_task, &gates[i],
            &(worker_opts) { .name = "held", .parent = parents[i], .quiet = true });
        cr_assert_not_null(kids[i]);
        start_ok(kids[i]);
        wait_ack_eq(61);
        cr_assert_eq(worker_monitor(parents[i]), WORKER_OK);
    }
    for (int i = 0; i < WAITING_PARENTS; i++)
        cr_assert_eq(worker_stop(parents[i]), WORKER_OK);
    /* Every parent has taken its STOP_THREAD (its listener ACKs): its end
     * has begun, and it cannot end while its child is held. */
    for (int i = 0; i < WAITING_PARENTS; i++)
        wait_ack_eq(62);
    int n = 0;
    worker_t *other = pooled_new("other", NULL, 0);
    cr_assert_not_null(worker_listen(other, "E", count_plain, &n, NULL));
    cr_assert_not_null(tu_sync_install(other));
    start_ok(other);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(worker_fire(other, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(other), WORKER_OK,
        "a pooled worker could not run while %d pooled parents waited for children",
        WAITING_PARENTS);
    cr_assert_eq(n, 100);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(atomic_load(&downs), 0, "a parent ended before its child");
    for (int i = 0; i < WAITING_PARENTS; i++)
        tu_gate_open(&gates[i].gate);
    for (int i = 0; i < WAITING_PARENTS; i++) {
        int err = 0;
        cr_assert_eq(worker_wait_thread(parents[i], &err, NULL), WORKER_OK);
        cr_assert_eq(err, WORKER_EXIT);
        cr_assert(!worker_is_running(kids[i]), "parent %d ended before its child", i);
        cr_assert_eq(worker_join(parents[i]), WORKER_OK);
        cr_assert_eq(worker_join(kids[i]), WORKER_OK);
        worker_unref(kids[i]);
        worker_unref(parents[i]);
        tu_gate_destroy(&gates[i].gate);
    }
    stop_end(other);
}

/* A thread parent whose task spawns pooled children (their default parent
 * is the thread worker): stopping it stops them and it waits for them. */
struct thread_parent {
    worker_t *main;
    worker_t *kids[2];
    struct parent_log log;
    int wait_rc;
};

static int thread_parent_task(void *arg, void **result)
{
    (void)result;
    struct thread_parent *tp = arg;
    for (int i = 0; i < 2; i++)
        tp->kids[i] = worker_spawn(NULL, NULL, &pooled_quiet);
    tu_ack(tp->main, tp->kids[0] && tp->kids[1] ? 1 : -1);
    tp->wait_rc = worker_wait_forever();
    return tp->wait_rc;
}

Test(pooled, thread_parent_with_pooled_children, .timeout = 30)
{
    worker_t *m = setup();
    static struct thread_parent tp;
    memset(&tp, 0, sizeof tp);
    tp.main = m;
    worker_t *T
        = worker_new(thread_parent_task, &tp, &(worker_opts) { .name = "T", .quiet = true });
    cr_assert_not_null(T);
    listen_children(T, &tp.log);
    start_ok(T);
    wait_ack_eq(1);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(worker_parent(tp.kids[i]), T, "the default parent is the thread worker");
        cr_assert(worker_is_running(tp.kids[i]));
    }
    cr_assert_eq(worker_children_count(T), 2);
    stop_end(T);
    cr_assert_eq(tp.wait_rc, WORKER_EXIT);
    for (int i = 0; i < 2; i++) {
        cr_assert(!worker_is_running(tp.kids[i]), "a pooled child outlived its thread parent");
        int k = find_end(&tp.log, tp.kids[i]);
        cr_assert_geq(k, 0, "T did not hear pooled child %d end", i);
        cr_assert_eq(tp.log.ended_err[k], WORKER_EXIT);
        worker_unref(tp.kids[i]);
    }
    cr_assert_eq(tp.log.starts, 2);
    cr_assert_eq(tp.log.stops, 2);
}

/* A stopped pooled worker ends with WORKER_EXIT; its parent (thread or
 * pooled) hears CHILD_THREAD_START, CHILD_THREAD_STOP (data NULL) and
 * CHILD_THREAD_END. Also when it ends itself with worker_exit() (in a
 * listener, in a timer's fn). */
static int exit_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    worker_exit();
    return 0;
}

static void exit_in_timer(void *arg)
{
    (void)arg;
    worker_exit();
}

Test(pooled, stop_ends_with_worker_exit_and_the_parent_hears_it, .timeout = 30)
{
    worker_t *m = setup();
    for (int kind = 0; kind < 2; kind++) {
        static struct parent_log log;
        memset(&log, 0, sizeof log);
        log.main = m;
        worker_t *parent
            = kind == 0 ? thread_new("tparent", NULL, 0) : pooled_new("pparent", NULL, 0);
        listen_children(parent, &log);
        start_ok(parent);
        for (int how = 0; how < 3; how++) {
            worker_t *c = pooled_new("child", parent, 0);
            cr_assert_not_null(worker_listen(c, "EXIT", exit_listener, NULL, NULL));
            start_ok(c);
            if (how == 0) /* stopped */
                cr_assert_eq(worker_stop(c), WORKER_OK);
            else if (how == 1) /* worker_exit() in a listener */
                cr_assert_eq(worker_fire(c, "EXIT", NULL), WORKER_OK);
            else /* worker_exit() in a timer's fn */
                cr_assert_eq(worker_later(c, exit_in_timer, NULL, 0.01, NULL), WORKER_OK);
            wait_ack_eq(100 + how + 1); /* the parent's CHILD_THREAD_END */
            int err = 0;
            void *ret = TU_PTR(1);
            cr_assert_eq(worker_wait_thread(c, &err, &ret), WORKER_OK);
            cr_assert_eq(
                err, WORKER_EXIT, "kind %d how %d: err %s", kind, how, worker_err_name(err));
            cr_assert_null(ret);
            cr_assert_eq(log.ended[how], c);
            cr_assert_eq(log.ended_err[how], WORKER_EXIT);
            cr_assert_eq(worker_fire(c, "LATE", NULL), WORKER_EREJECTED);
            worker_unref(c);
        }
        stop_end(parent);
        cr_assert_eq(log.starts, 3, "parent kind %d: CHILD_THREAD_START", kind);
        cr_assert_eq(log.stops, 3, "parent kind %d: CHILD_THREAD_STOP with NULL data", kind);
        cr_assert_eq(log.errors + log.dones, 0);
        cr_assert_eq(log.ends, 3);
    }
}

/* Workers made inside a pooled worker's listener have it as their
 * default parent (a pooled and a thread child); its stop ends them. */
struct spawner {
    worker_t *main;
    worker_t *kids[2];
};

static int spawn_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct spawner *sp = userdata;
    sp->kids[0] = worker_spawn(NULL, NULL, &pooled_quiet);
    sp->kids[1] = worker_spawn(NULL, NULL, &(worker_opts) { .quiet = true });
    tu_ack(sp->main, sp->kids[0] && sp->kids[1] ? 1 : -1);
    return 0;
}

Test(pooled, children_made_inside_a_pooled_worker, .timeout = 30)
{
    worker_t *m = setup();
    static struct spawner sp;
    memset(&sp, 0, sizeof sp);
    sp.main = m;
    worker_t *P = pooled_new("spawner", NULL, 0);
    cr_assert_not_null(worker_listen(P, "SPAWN", spawn_listener, &sp, NULL));
    start_ok(P);
    cr_assert_eq(worker_fire(P, "SPAWN", NULL), WORKER_OK);
    wait_ack_eq(1);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(worker_parent(sp.kids[i]), P, "child %d: the default parent", i);
    cr_assert_eq(worker_children_count(P), 2);
    stop_end(P);
    for (int i = 0; i < 2; i++) {
        cr_assert(!worker_is_running(sp.kids[i]), "child %d outlived its pooled parent", i);
        worker_unref(sp.kids[i]);
    }
}

/* Every event accepted before the stop is delivered before the end, also
 * when many are queued. */
Test(pooled, stop_delivers_every_accepted_event_first, .timeout = 30)
{
    setup();
    for (int round = 0; round < 20; round++) {
        int n = 0, accepted = 0;
        worker_t *p = pooled_new("drained", NULL, 0);
        cr_assert_not_null(worker_listen(p, "E", count_plain, &n, NULL));
        start_ok(p);
        for (int i = 0; i < 1000; i++)
            accepted += worker_fire(p, "E", NULL) == WORKER_OK;
        cr_assert_eq(worker_stop(p), WORKER_OK);
        for (int i = 0; i < 100; i++)
            accepted += worker_fire(p, "E", NULL) == WORKER_OK; /* some may still get in */
        cr_assert_eq(worker_join(p), WORKER_OK);
        cr_assert_geq(accepted, 1000);
        cr_assert_eq(n, accepted, "round %d: %d accepted, %d handled", round, accepted, n);
        worker_unref(p);
    }
}

/* A pooled worker's failing listener: LISTENER_ERROR bubbles up to its
 * (thread) parent with the code; a fire of a pooled worker refused by an
 * ended worker comes back to it as EVENT_REJECT. */
struct errs {
    worker_t *main;
    worker_t *dead;
    int fire_rc;
    intptr_t error_code;
    worker_t *reject_sender;
    void *reject_data;
};

static int failing_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return 17;
}

static int on_listener_error(const worker_event_t *e, void *userdata)
{
    struct errs *x = userdata;
    x->error_code = (intptr_t)worker_event_data(e);
    tu_ack(x->main, 70);
    return 0;
}

static int fire_at_dead(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct errs *x = userdata;
    x->fire_rc = worker_fire(x->dead, "HELLO", TU_PTR(1234));
    return 0;
}

static int on_reject(const worker_event_t *e, void *userdata)
{
    struct errs *x = userdata;
    x->reject_sender = worker_event_target(e);
    x->reject_data = worker_event_data(e);
    tu_ack(x->main, 71);
    return 0;
}

Test(pooled, listener_error_and_event_reject, .timeout = 30)
{
    worker_t *m = setup();
    static struct errs x;
    memset(&x, 0, sizeof x);
    x.main = m;
    x.dead = pooled_new("dead", NULL, 0); /* never started */
    worker_t *T = thread_new("parent", NULL, 0);
    cr_assert_not_null(worker_listen(T, WORKER_EV_LISTENER_ERROR, on_listener_error, &x, NULL));
    start_ok(T);
    worker_t *p = pooled_new("failing", T, 0);
    cr_assert_not_null(worker_listen(p, "FAIL", failing_listener, NULL, NULL));
    cr_assert_not_null(worker_listen(p, "FIRE", fire_at_dead, &x, NULL));
    cr_assert_not_null(worker_listen(p, WORKER_EV_EVENT_REJECT, on_reject, &x, NULL));
    start_ok(p);
    cr_assert_eq(worker_fire(p, "FAIL", NULL), WORKER_OK);
    wait_ack_eq(70);
    cr_assert_eq(x.error_code, 17);
    cr_assert_eq(worker_fire(p, "FIRE", NULL), WORKER_OK);
    wait_ack_eq(71);
    cr_assert_eq(x.fire_rc, WORKER_EREJECTED);
    cr_assert_eq(x.reject_sender, x.dead, "EVENT_REJECT comes from the refusing worker");
    cr_assert_eq(TU_INT(x.reject_data), 1234);
    cr_assert(worker_is_running(p), "a listener error does not end it");
    stop_end(T); /* and its pooled child */
    cr_assert(!worker_is_running(p));
    worker_unref(p);
    worker_unref(x.dead);
}

/* ==== monitors ======================================================= */

static worker_down_t wait_down_from(worker_t *w)
{
    void *d = NULL;
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, TU_WAIT, w, &d), WORKER_OK,
        "no WORKER_DOWN from %s", worker_name(w));
    worker_down_t down;
    memcpy(&down, d, sizeof down);
    return down;
}

struct watcher {
    worker_t *main;
    worker_t *targets[2];
    int monitor_rc[2];
    int self_rc;
    int downs;
    worker_down_t down[2];
    worker_t *down_sender[2];
    bool down_in_main_thread;
};

static int watcher_setup(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct watcher *w = userdata;
    for (int i = 0; i < 2; i++)
        w->monitor_rc[i] = worker_monitor(w->targets[i]);
    w->self_rc = worker_monitor(worker_current());
    tu_ack(w->main, 1);
    return 0;
}

static int watcher_down(const worker_event_t *e, void *userdata)
{
    struct watcher *w = userdata;
    if (w->downs < 2) {
        memcpy(&w->down[w->downs], worker_event_data(e), sizeof(worker_down_t));
        w->down_sender[w->downs] = worker_event_target(e);
    }
    w->downs++;
    if (pthread_equal(pthread_self(), main_thread))
        w->down_in_main_thread = true;
    tu_ack(w->main, 10 + w->downs);
    return 0;
}

/* The main thread monitors a pooled worker; a pooled worker monitors a
 * thread worker and a pooled worker. */
Test(pooled, monitors, .timeout = 30)
{
    worker_t *m = setup();
    /* Thread monitors pooled. */
    worker_t *p = pooled_new("p", NULL, 0);
    start_ok(p);
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    worker_down_t down = wait_down_from(p);
    cr_assert_eq(down.worker, p);
    cr_assert_eq(down.err, WORKER_EXIT);
    cr_assert_null(down.ret);
    cr_assert_eq(worker_join(p), WORKER_OK);
    worker_unref(p);

    /* Pooled monitors thread (ends with 7, result 5) and pooled (stopped). */
    static struct watcher wt;
    memset(&wt, 0, sizeof wt);
    wt.main = m;
    worker_t *t = worker_spawn(tu_go_task, NULL, &(worker_opts) { .quiet = true });
    worker_t *p2 = pooled_new("p2", NULL, 0);
    start_ok(p2);
    wt.targets[0] = t;
    wt.targets[1] = p2;
    worker_t *mon = pooled_new("monitor", NULL, 0);
    cr_assert_not_null(worker_listen(mon, "SETUP", watcher_setup, &wt, NULL));
    cr_assert_not_null(worker_listen(mon, WORKER_EV_WORKER_DOWN, watcher_down, &wt, NULL));
    start_ok(mon);
    cr_assert_eq(worker_fire(mon, "SETUP", NULL), WORKER_OK);
    wait_ack_eq(1);
    cr_assert_eq(wt.monitor_rc[0], WORKER_OK);
    cr_assert_eq(wt.monitor_rc[1], WORKER_OK);
    cr_assert_eq(wt.self_rc, WORKER_EINVAL, "a pooled worker monitoring itself");

    cr_assert_eq(worker_fire(t, "GO", TU_PTR(7)), WORKER_OK);
    wait_ack_eq(11);
    cr_assert_eq(wt.down_sender[0], t);
    cr_assert_eq(wt.down[0].worker, t);
    cr_assert_eq(wt.down[0].err, 7);
    cr_assert_eq(TU_INT(wt.down[0].ret), 5);
    cr_assert_eq(worker_stop(p2), WORKER_OK);
    wait_ack_eq(12);
    cr_assert_eq(wt.down_sender[1], p2);
    cr_assert_eq(wt.down[1].err, WORKER_EXIT);
    cr_assert(!wt.down_in_main_thread);
    cr_assert_eq(worker_join(t), WORKER_OK);
    cr_assert_eq(worker_join(p2), WORKER_OK);
    stop_end(mon);
    cr_assert_eq(wt.downs, 2);
    worker_unref(t);
    worker_unref(p2);
}

/* ==== links ========================================================== */

struct linker {
    worker_t *main;
    worker_t *other;
    int link_rc;
    int linked_exits;
    worker_down_t down;
    worker_t *sender;
};

static int link_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct linker *l = userdata;
    l->link_rc = worker_link(l->other);
    tu_ack(l->main, 1);
    return 0;
}

static int linked_exit_listener(const worker_event_t *e, void *userdata)
{
    struct linker *l = userdata;
    l->linked_exits++;
    memcpy(&l->down, worker_event_data(e), sizeof l->down);
    l->sender = worker_event_target(e);
    tu_ack(l->main, 2);
    return 0;
}

static worker_t *pooled_linker(struct linker *l, worker_t *other, bool trap)
{
    l->main = tu_main();
    l->other = other;
    worker_t *p = worker_new(NULL, NULL,
        &(worker_opts) { .name = "linker", .pooled = true, .quiet = true, .trap_links = trap });
    cr_assert_not_null(p);
    cr_assert_not_null(worker_listen(p, "LINK", link_listener, l, NULL));
    cr_assert_not_null(worker_listen(p, WORKER_EV_LINKED_EXIT, linked_exit_listener, l, NULL));
    start_ok(p);
    cr_assert_eq(worker_fire(p, "LINK", NULL), WORKER_OK);
    wait_ack_eq(1);
    cr_assert_eq(l->link_rc, WORKER_OK);
    return p;
}

/* A stopped pooled worker stops the thread worker it linked; a failed
 * thread worker stops the pooled worker linked to it; a pooled worker
 * that traps links gets LINKED_EXIT instead and keeps running. */
Test(pooled, links_between_pooled_and_thread_workers, .timeout = 30)
{
    setup();
    int err = 0;
    /* pooled end -> thread stopped */
    worker_t *t = thread_new("t", NULL, 0);
    start_ok(t);
    struct linker l1 = { 0 };
    worker_t *p = pooled_linker(&l1, t, false);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_wait_thread(t, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the linked thread worker was stopped");
    cr_assert_eq(worker_join(p), WORKER_OK);
    worker_unref(p);
    worker_unref(t);

    /* thread failure -> pooled stopped */
    worker_t *t2 = worker_spawn(tu_go_task, NULL, &(worker_opts) { .quiet = true });
    struct linker l2 = { 0 };
    worker_t *p2 = pooled_linker(&l2, t2, false);
    cr_assert_eq(worker_monitor(p2), WORKER_OK);
    cr_assert_eq(worker_fire(t2, "GO", TU_PTR(3)), WORKER_OK);
    worker_down_t down = wait_down_from(p2);
    cr_assert_eq(down.err, WORKER_EXIT, "the linked pooled worker was stopped");
    cr_assert_eq(l2.linked_exits, 0);
    cr_assert_eq(worker_join(t2), WORKER_OK);
    cr_assert_eq(worker_join(p2), WORKER_OK);
    worker_unref(p2);
    worker_unref(t2);

    /* thread failure -> trapping pooled gets LINKED_EXIT */
    worker_t *t3 = worker_spawn(tu_go_task, NULL, &(worker_opts) { .quiet = true });
    struct linker l3 = { 0 };
    worker_t *p3 = pooled_linker(&l3, t3, true);
    cr_assert_eq(worker_fire(t3, "GO", TU_PTR(4)), WORKER_OK);
    wait_ack_eq(2);
    cr_assert_eq(l3.linked_exits, 1);
    cr_assert_eq(l3.sender, t3);
    cr_assert_eq(l3.down.worker, t3);
    cr_assert_eq(l3.down.err, 4);
    cr_assert(worker_is_running(p3), "a trapping pooled worker keeps running");
    cr_assert_eq(worker_join(t3), WORKER_OK);
    worker_unref(t3);

    /* pooled end -> the linked main root (always traps) gets LINKED_EXIT */
    stop_end(p3);
}

/* ==== supervisors ==================================================== */

struct kid {
    atomic_int work;
};

static int kid_work(const worker_event_t *e, void *userdata)
{
    (void)e;
    atomic_fetch_add(&((struct kid *)userdata)->work, 1);
    return 0;
}

/* ONE_FOR_ONE with two pooled children: the one that ends is restarted
 * as the same handle, the mail queued behind its end and fired while it
 * was down goes to its next run, the other child is untouched. */
Test(pooled, supervisor_restarts_a_pooled_child, .timeout = 30)
{
    setup();
    worker_child_spec sp[2] = {
        { .name = "p", .restart = WORKER_RESTART_PERMANENT, .opts = &pooled_quiet },
        { .name = "q", .restart = WORKER_RESTART_PERMANENT, .opts = &pooled_quiet },
    };
    worker_t *s = worker_supervisor(sp, 2, &(worker_sup_opts) { .strategy = WORKER_ONE_FOR_ONE });
    cr_assert_not_null(s);
    /* Borrowed handles: keep them beyond the supervisor's end. */
    worker_t *p = worker_ref(worker_supervisor_child(s, "p"));
    worker_t *q = worker_ref(worker_supervisor_child(s, "q"));
    cr_assert(p && q);
    cr_assert(worker_is_running(p) && worker_is_running(q));
    static struct kid kp, kq;
    atomic_store(&kp.work, 0);
    atomic_store(&kq.work, 0);
    cr_assert_not_null(worker_listen(p, "WORK", kid_work, &kp, NULL));
    cr_assert_not_null(worker_listen(q, "WORK", kid_work, &kq, NULL));
    cr_assert_not_null(worker_listen(p, "EXIT", exit_listener, NULL, NULL));
    cr_assert_not_null(tu_sync_install(p));
    cr_assert_not_null(tu_sync_install(q));
    cr_assert_eq(worker_monitor(p), WORKER_OK);
    cr_assert_eq(worker_monitor(q), WORKER_OK);

    for (int round = 0; round < 2; round++) {
        int before = atomic_load(&kp.work);
        /* round 0: it ends itself (worker_exit); round 1: stopped by
         * someone else. 100 WORK queued behind the end. */
        if (round == 0)
            cr_assert_eq(worker_fire(p, "EXIT", NULL), WORKER_OK);
        else
            cr_assert_eq(worker_stop(p), WORKER_OK);
        int accepted = 0;
        for (int i = 0; i < 100; i++)
            accepted += worker_fire(p, "WORK", NULL) == WORKER_OK;
        cr_assert_eq(accepted, 100, "a supervised child's mail is kept across its end");
        worker_down_t down = wait_down_from(p);
        cr_assert_eq(down.err, WORKER_EXIT);
        cr_assert_eq(worker_supervisor_child(s, "p"), p, "the same handle after the restart");
        for (int i = 0; i < 50; i++)
            cr_assert_eq(worker_fire(p, "WORK", NULL), WORKER_OK, "accepted while it is down");
        cr_assert_eq(tu_sync(p), WORKER_OK, "the restarted child did not answer");
        cr_assert_eq(atomic_load(&kp.work), before + 150, "round %d: %d handled", round,
            atomic_load(&kp.work) - before);
        cr_assert(worker_is_running(p));
        cr_assert_eq(worker_monitor(p), WORKER_OK, "monitor the next run");
    }
    cr_assert_eq(worker_fire(q, "WORK", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(q), WORKER_OK);
    cr_assert_eq(atomic_load(&kq.work), 1);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 0.05, q, NULL), WORKER_ETIMEDOUT,
        "ONE_FOR_ONE restarted the other child");

    cr_assert_eq(worker_stop(s), WORKER_OK);
    int err = 0;
    cr_assert_eq(worker_wait_thread(s, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT);
    cr_assert(!worker_is_running(p) && !worker_is_running(q));
    worker_unref(p);
    worker_unref(q);
    worker_unref(s);
}

/* worker_supervisor_add / _remove wait for the supervisor's answer: inside
 * a pooled worker they return WORKER_EWOULDBLOCK and change nothing (no
 * child added or removed; under ASan, nothing leaked: the request and the
 * child made for it are given back). */
struct sup_calls {
    worker_t *main;
    worker_t *sup;
    int add_rc, remove_rc;
    worker_t *made; /* worker_supervisor() inside the pooled worker */
};

static int sup_calls_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct sup_calls *x = userdata;
    worker_child_spec spec = { .name = "late", .restart = WORKER_RESTART_PERMANENT };
    x->add_rc = worker_supervisor_add(x->sup, &spec);
    x->remove_rc = worker_supervisor_remove(x->sup, "k");
    worker_child_spec one = { .name = "one", .restart = WORKER_RESTART_PERMANENT };
    x->made = worker_supervisor(&one, 1, NULL); /* waits for its first run: refused */
    tu_ack(x->main, 80);
    return 0;
}

Test(pooled, supervisor_calls_inside_a_pooled_worker, .timeout = 30)
{
    worker_t *m = setup();
    worker_child_spec k = { .name = "k", .restart = WORKER_RESTART_PERMANENT };
    static struct sup_calls x;
    x = (struct sup_calls) { .main = m, .add_rc = 1, .remove_rc = 1 };
    x.sup = worker_supervisor(&k, 1, NULL);
    cr_assert_not_null(x.sup);
    worker_t *p = pooled_new("asker", NULL, 0);
    cr_assert_not_null(worker_listen(p, "TRY", sup_calls_listener, &x, NULL));
    start_ok(p);
    cr_assert_eq(worker_fire(p, "TRY", NULL), WORKER_OK);
    wait_ack_eq(80);
    cr_assert_eq(x.add_rc, WORKER_EWOULDBLOCK, "add: %s", worker_err_name(x.add_rc));
    cr_assert_eq(x.remove_rc, WORKER_EWOULDBLOCK, "remove: %s", worker_err_name(x.remove_rc));
    cr_assert_null(x.made, "worker_supervisor() made a supervisor inside a pooled worker");
    cr_assert_null(worker_supervisor_child(x.sup, "late"), "added");
    cr_assert_not_null(worker_supervisor_child(x.sup, "k"), "removed");
    cr_assert(worker_is_running(worker_supervisor_child(x.sup, "k")));
    stop_end(p);
    /* A pooled worker is not a supervisor: no target of the calls. */
    worker_t *plain = pooled_new("not-a-supervisor", NULL, 0);
    start_ok(plain);
    cr_assert_eq(worker_supervisor_add(plain, &k), WORKER_EINVAL);
    cr_assert_eq(worker_supervisor_remove(plain, "k"), WORKER_EINVAL);
    cr_assert_null(worker_supervisor_child(plain, "k"));
    stop_end(plain);
    /* The supervisor still answers. */
    worker_child_spec late = { .name = "late", .restart = WORKER_RESTART_PERMANENT };
    cr_assert_eq(worker_supervisor_add(x.sup, &late), WORKER_OK);
    cr_assert_eq(worker_supervisor_remove(x.sup, "late"), WORKER_OK);
    stop_end(x.sup);
}

/* ==== timers ========================================================= */

struct tctx {
    worker_t *main;
    worker_t *self;
    atomic_int wrong; /* ran on the main thread, or not as the pooled worker */
    atomic_int ticks;
    atomic_int ticks2;
    atomic_int bad; /* a cancelled timer that ran */
    atomic_int marker_ticks;
    atomic_bool acked5;
};

static void check_place(struct tctx *c)
{
    if (worker_current() != c->self || pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&c->wrong, 1);
}

static void on_later(void *arg)
{
    struct tctx *c = arg;
    check_place(c);
    tu_ack(c->main, 1);
}

static void on_tick(void *arg)
{
    struct tctx *c = arg;
    check_place(c);
    if (atomic_fetch_add(&c->ticks, 1) + 1 == 5)
        tu_ack(c->main, 5);
}

static void on_tick2(void *arg)
{
    struct tctx *c = arg;
    check_place(c);
    if (atomic_fetch_add(&c->ticks2, 1) + 1 == 3)
        tu_ack(c->main, 3);
}

static void on_bad(void *arg)
{
    struct tctx *c = arg;
    atomic_fetch_add(&c->bad, 1);
}

static void on_marker(void *arg)
{
    struct tctx *c = arg;
    atomic_store(&c->marker_ticks, atomic_load(&c->ticks));
    tu_ack(c->main, 9);
}

static int arm_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    if (worker_later(NULL, on_later, userdata, 0.01, NULL) != WORKER_OK)
        tu_ack(((struct tctx *)userdata)->main, -1);
    return 0;
}

struct other_thread_timers {
    struct tctx *c;
    int later_rc, every_rc;
    worker_timer_t *every;
};

static void *arm_from_other_thread(void *arg)
{
    struct other_thread_timers *o = arg;
    o->later_rc = worker_later(o->c->self, on_later, o->c, 0.01, NULL);
    o->every_rc = worker_every(o->c->self, on_tick2, o->c, 0.005, &o->every);
    return NULL;
}

/* worker_later (delay 0 and > 0) and worker_every on a pooled worker,
 * armed from the main thread, from another thread and from inside it: fn
 * runs on the pooled worker; cancel stops a timer; its end drops them. */
Test(pooled, later_and_every, .timeout = 30)
{
    worker_t *m = setup();
    static struct tctx c;
    memset(&c, 0, sizeof c);
    c.main = m;
    worker_t *p = pooled_new("timed", NULL, 0);
    c.self = p;
    cr_assert_eq(worker_later(p, on_later, &c, 0.01, NULL), WORKER_EREJECTED, "not running yet");
    cr_assert_not_null(worker_listen(p, "ARM", arm_listener, &c, NULL));
    start_ok(p);

    cr_assert_eq(worker_later(p, on_later, &c, 0, NULL), WORKER_OK);
    wait_ack_eq(1);
    cr_assert_eq(worker_later(p, on_later, &c, 0.02, NULL), WORKER_OK);
    wait_ack_eq(1);
    cr_assert_eq(worker_fire(p, "ARM", NULL), WORKER_OK);
    wait_ack_eq(1);

    struct other_thread_timers o = { .c = &c };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, arm_from_other_thread, &o), 0);
    pthread_join(th, NULL);
    cr_assert_eq(o.later_rc, WORKER_OK);
    cr_assert_eq(o.every_rc, WORKER_OK);
    /* later (ACK 1) and the third tick (ACK 3), in either order */
    intptr_t a = 0, b = 0;
    cr_assert_eq(tu_wait_ack(&a), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&b), WORKER_OK);
    cr_assert_eq(a * b, 3, "ACKs %ld %ld", (long)a, (long)b);
    cr_assert_eq(worker_timer_cancel(o.every), WORKER_OK);
    worker_timer_free(o.every);

    /* every, then cancel: no tick starts after the cancel returned. */
    worker_timer_t *every = NULL;
    cr_assert_eq(worker_every(p, on_tick, &c, 0.005, &every), WORKER_OK);
    wait_ack_eq(5);
    cr_assert_eq(worker_timer_cancel(every), WORKER_OK);
    int at_cancel = atomic_load(&c.ticks);
    cr_assert_eq(worker_later(p, on_marker, &c, 0.1, NULL), WORKER_OK); /* 20 periods later */
    wait_ack_eq(9);
    cr_assert_leq(atomic_load(&c.marker_ticks), at_cancel + 1, "ticks after the cancel");
    cr_assert_eq(worker_timer_cancel(every), WORKER_OK, "cancelled before");
    worker_timer_free(every);

    /* A cancelled later never runs; one that ran cannot be cancelled. */
    worker_timer_t *t1 = NULL, *t2 = NULL;
    cr_assert_eq(worker_later(p, on_bad, &c, 0.05, &t1), WORKER_OK);
    cr_assert_eq(worker_timer_cancel(t1), WORKER_OK);
    cr_assert_eq(worker_later(p, on_later, &c, 0.1, &t2), WORKER_OK);
    wait_ack_eq(1);
    cr_assert_eq(worker_timer_cancel(t2), WORKER_ESTATE, "it has run");
    worker_timer_free(t1);
    worker_timer_free(t2);

    /* The end drops pending timers. */
    worker_timer_t *t3 = NULL;
    cr_assert_eq(worker_later(p, on_bad, &c, 30, &t3), WORKER_OK);
    worker_timer_t *t4 = NULL;
    cr_assert_eq(worker_every(p, on_bad, &c, 30, &t4), WORKER_OK);
    stop_end(p);
    cr_assert_eq(worker_timer_cancel(t3), WORKER_OK, "dropped by the end");
    cr_assert_eq(worker_timer_cancel(t4), WORKER_OK, "dropped by the end");
    worker_timer_free(t3);
    worker_timer_free(t4);
    cr_assert_eq(atomic_load(&c.bad), 0, "a cancelled timer ran");
    cr_assert_eq(atomic_load(&c.wrong), 0, "a timer ran off its pooled worker");
}

/* An ended pooled worker is freed by its last unref, also when it had a
 * timer pending at its end (dropped by the end, semantics.md "Timers").
 * Freed is seen through a channel: a freed worker leaves every channel it
 * was on (channel.h), so the channel's count drops to 0 at the last unref.
 * Without a timer this holds (the control below). */
static void never_runs(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static size_t count_after_end(bool with_timer, atomic_int *ran)
{
    worker_channel_t *ch = worker_channel_new();
    cr_assert_not_null(ch);
    worker_t *p = pooled_new("timed-out", NULL, 0);
    start_ok(p);
    cr_assert_eq(worker_channel_sub(ch, p), WORKER_OK);
    if (with_timer)
        cr_assert_eq(worker_later(p, never_runs, ran, 3600, NULL), WORKER_OK);
    cr_assert_not_null(tu_sync_install(p));
    cr_assert_eq(tu_sync(p), WORKER_OK); /* it has rested with the timer pending */
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    worker_unref(p); /* the last reference: it is freed here */
    size_t n = worker_channel_count(ch);
    worker_channel_free(ch);
    return n;
}

Test(pooled, ended_worker_freed_at_its_last_unref, .timeout = 30)
{
    setup();
    atomic_int ran = 0;
    cr_assert_eq(count_after_end(false, &ran), 0, "not freed at its last unref");
}

/* A pooled worker that rested with a timer pending has its deadline in the
 * scheduler's timer heap, which holds a reference to it: its end takes the
 * entry out (sched.c, wk_sched_forget), so it is freed at its last unref,
 * not at the deadline (here an hour). */
Test(pooled, ended_worker_with_a_pending_timer_freed_at_its_last_unref, .timeout = 30)
{
    setup();
    atomic_int ran = 0;
    cr_assert_eq(count_after_end(true, &ran), 0,
        "the scheduler's timer heap keeps the ended worker until its timer's deadline");
    cr_assert_eq(atomic_load(&ran), 0);
}

/* ==== calls ========================================================== */

struct answerer {
    int asks;
    worker_t *sender;
};

static int answer_plus_one(const worker_event_t *e, void *userdata)
{
    struct answerer *a = userdata;
    a->asks++;
    a->sender = worker_event_target(e);
    worker_reply(e, TU_PTR(TU_INT(worker_event_data(e)) + 1));
    return 0;
}

static int answer_error(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_reply_error(e, 1234);
    return 0;
}

static int answer_copy(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    static const char text[] = "copied reply";
    worker_reply_ex(e, NULL, &(worker_fire_opts) { .copy = text, .copy_size = sizeof text });
    return 0;
}

static int answer_none(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return 0; /* the request is released unanswered */
}

struct async_caller {
    worker_t *main;
    worker_t *target;
    const char *name;
    int call_rc;
    int rc;
    intptr_t reply;
    char copied[32];
    size_t reply_size;
    bool on_main_thread;
    worker_t *current;
};

static void on_reply(int rc, void *reply, size_t reply_size, void *userdata)
{
    struct async_caller *c = userdata;
    c->rc = rc;
    c->reply_size = reply_size;
    if (reply_size > 0 && reply_size <= sizeof c->copied)
        memcpy(c->copied, reply, reply_size);
    else
        c->reply = (intptr_t)reply;
    c->on_main_thread = pthread_equal(pthread_self(), main_thread);
    c->current = worker_current();
    tu_ack(c->main, 20);
}

static int call_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct async_caller *c = userdata;
    c->call_rc = worker_call_async(c->target, c->name, TU_PTR(41), NULL, 5.0, on_reply, c);
    if (c->call_rc != WORKER_OK)
        tu_ack(c->main, -20);
    return 0;
}

/* worker_call_async from a pooled worker to a thread worker (and to a
 * pooled one): the reply comes back on the pooled worker's loop. */
Test(pooled, call_async_from_a_pooled_worker, .timeout = 30)
{
    worker_t *m = setup();
    worker_t *t = thread_new("answerer", NULL, 0);
    worker_t *pq = pooled_new("pooled-answerer", NULL, 0);
    static struct answerer at, aq;
    memset(&at, 0, sizeof at);
    memset(&aq, 0, sizeof aq);
    worker_t *answerers[] = { t, pq };
    struct answerer *as[] = { &at, &aq };
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(worker_listen(answerers[i], "ASK", answer_plus_one, as[i], NULL));
        cr_assert_not_null(worker_listen(answerers[i], "ASK_ERR", answer_error, NULL, NULL));
        cr_assert_not_null(worker_listen(answerers[i], "ASK_COPY", answer_copy, NULL, NULL));
        cr_assert_not_null(worker_listen(answerers[i], "ASK_NONE", answer_none, NULL, NULL));
        start_ok(answerers[i]);
    }
    static struct async_caller c;
    worker_t *p = pooled_new("caller", NULL, 0);
    cr_assert_not_null(worker_listen(p, "CALL", call_listener, &c, NULL));
    start_ok(p);
    const char *names[] = { "ASK", "ASK_ERR", "ASK_COPY", "ASK_NONE" };
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 4; k++) {
            memset(&c, 0, sizeof c);
            c.main = m;
            c.target = answerers[i];
            c.name = names[k];
            cr_assert_eq(worker_fire(p, "CALL", NULL), WORKER_OK);
            wait_ack_eq(20);
            cr_assert_eq(c.call_rc, WORKER_OK);
            cr_assert(!c.on_main_thread, "the reply ran on the main thread");
            cr_assert_eq(c.current, p, "the reply runs on the calling pooled worker");
            switch (k) {
            case 0:
                cr_assert_eq(c.rc, WORKER_OK);
                cr_assert_eq(c.reply, 42);
                cr_assert_eq(c.reply_size, 0);
                break;
            case 1:
                cr_assert_eq(c.rc, 1234);
                break;
            case 2:
                cr_assert_eq(c.rc, WORKER_OK);
                cr_assert_eq(c.reply_size, sizeof "copied reply");
                cr_assert_str_eq(c.copied, "copied reply");
                break;
            case 3:
                cr_assert_eq(c.rc, WORKER_ENOREPLY);
                break;
            }
        }
        cr_assert_eq(as[i]->asks, 1);
        cr_assert_eq(as[i]->sender, p, "the request's sender is the pooled caller");
    }
    stop_end(p);
    stop_end(t);
    stop_end(pq);
}

/* worker_call from a thread (main, and a thread worker) to a pooled worker
 * answered with worker_reply, at once or later from a timer. */
static void reply_later(void *arg)
{
    const worker_event_t *e = arg;
    worker_reply(e, TU_PTR(TU_INT(worker_event_data(e)) * 2));
    worker_event_unref(e);
}

static int answer_later(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_later(NULL, reply_later, (void *)worker_event_ref(e), 0.01, NULL);
    return 0;
}

struct thread_caller {
    worker_t *target;
    int rc;
    void *reply;
};

static int thread_caller_task(void *arg, void **result)
{
    (void)result;
    struct thread_caller *c = arg;
    c->rc = worker_call(c->target, "ASK", TU_PTR(99), 5.0, &c->reply);
    return 0;
}

Test(pooled, call_a_pooled_worker_from_a_thread, .timeout = 30)
{
    setup();
    static struct answerer a;
    memset(&a, 0, sizeof a);
    worker_t *p = pooled_new("answerer", NULL, 0);
    cr_assert_not_null(worker_listen(p, "ASK", answer_plus_one, &a, NULL));
    cr_assert_not_null(worker_listen(p, "ASK_LATER", answer_later, NULL, NULL));
    cr_assert_not_null(worker_listen(p, "ASK_ERR", answer_error, NULL, NULL));
    start_ok(p);
    void *reply = NULL;
    cr_assert_eq(worker_call(p, "ASK", TU_PTR(41), 5.0, &reply), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 42);
    cr_assert_eq(a.sender, tu_main());
    cr_assert_eq(worker_call(p, "ASK_LATER", TU_PTR(21), 5.0, &reply), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 42);
    cr_assert_eq(worker_call(p, "ASK_ERR", NULL, 5.0, &reply), 1234);

    struct thread_caller tc = { .target = p };
    worker_t *t = worker_spawn(thread_caller_task, &tc, &(worker_opts) { .quiet = true });
    cr_assert_not_null(t);
    cr_assert_eq(worker_join(t), WORKER_OK);
    cr_assert_eq(tc.rc, WORKER_OK);
    cr_assert_eq(TU_INT(tc.reply), 100);
    cr_assert_eq(a.sender, t);
    worker_unref(t);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    cr_assert_eq(worker_call(p, "ASK", NULL, 1.0, &reply), WORKER_EREJECTED, "ended");
    worker_unref(p);
}

/* ==== stats ========================================================== */

struct blocker {
    worker_t *main;
    tu_gate gate;
    int passed;
};

static int block_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct blocker *b = userdata;
    tu_ack(b->main, 30);
    b->passed = tu_gate_pass(&b->gate, 30) == 0; /* holds this scheduler thread */
    return 0;
}

/* accepted / handled / refused / queued on a pooled worker. */
Test(pooled, stats, .timeout = 30)
{
    worker_t *m = setup();
    int n = 0;
    worker_t *p = pooled_new("counted", NULL, 0);
    cr_assert_not_null(worker_listen(p, "E", count_plain, &n, NULL));
    start_ok(p);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(worker_fire(p, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    cr_assert_eq(worker_fire(p, "E", NULL), WORKER_EREJECTED);
    worker_stats_t st;
    cr_assert_eq(worker_stats(p, &st), WORKER_OK);
    cr_assert_eq(n, 100);
    cr_assert_eq(st.accepted, 100);
    cr_assert_eq(st.handled, 100);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.queued, 0);
    cr_assert_geq(st.queued_max, 1);
    cr_assert_leq(st.queued_max, 100);
    worker_unref(p);

    /* A full pooled mailbox: the worker is held inside a listener. */
    static struct blocker b;
    memset(&b, 0, sizeof b);
    b.main = m;
    tu_gate_init(&b.gate);
    worker_t *f = worker_new(NULL, NULL,
        &(worker_opts) { .name = "limited", .pooled = true, .quiet = true, .mailbox_limit = 2 });
    cr_assert_not_null(f);
    cr_assert_not_null(worker_listen(f, "BLOCK", block_listener, &b, NULL));
    start_ok(f);
    cr_assert_eq(worker_fire(f, "BLOCK", NULL), WORKER_OK);
    wait_ack_eq(30);
    cr_assert_eq(worker_fire(f, "X", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(f, "X", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(f, "X", NULL), WORKER_EFULL);
    cr_assert_eq(worker_stats(f, &st), WORKER_OK);
    cr_assert_eq(st.accepted, 3);
    cr_assert_eq(st.handled, 1);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.queued, 2);
    cr_assert_eq(st.queued_max, 2);
    tu_gate_open(&b.gate);
    stop_end(f);
    cr_assert(b.passed);
    tu_gate_destroy(&b.gate);
}

/* A pooled worker with mailbox_limit and WORKER_FULL_DROP_OLDEST, held
 * inside a listener (on a scheduler thread): the oldest queued events are
 * dropped, the newest delivered. */
struct seen {
    int n;
    intptr_t v[16];
};

static int record_value(const worker_event_t *e, void *userdata)
{
    struct seen *s = userdata;
    if (s->n < 16)
        s->v[s->n] = (intptr_t)worker_event_data(e);
    s->n++;
    return 0;
}

Test(pooled, drop_oldest_at_a_full_pooled_mailbox, .timeout = 30)
{
    worker_t *m = setup();
    static struct seen seen;
    memset(&seen, 0, sizeof seen);
    static struct blocker bl;
    memset(&bl, 0, sizeof bl);
    bl.main = m;
    tu_gate_init(&bl.gate);
    worker_t *p = worker_new(NULL, NULL,
        &(worker_opts) { .name = "dropper",
            .pooled = true,
            .quiet = true,
            .mailbox_limit = 3,
            .full_policy = WORKER_FULL_DROP_OLDEST });
    cr_assert_not_null(p);
    cr_assert_not_null(worker_listen(p, "BLOCK", block_listener, &bl, NULL));
    cr_assert_not_null(worker_listen(p, "V", record_value, &seen, NULL));
    start_ok(p);
    cr_assert_eq(worker_fire(p, "BLOCK", NULL), WORKER_OK);
    wait_ack_eq(30);
    /* 3 queued, then 3 more accepted as drops owed by the (held) owner;
     * at most mailbox_limit drops are owed (semantics.md): the 7th is
     * refused until the worker runs again. */
    for (intptr_t i = 1; i <= 6; i++)
        cr_assert_eq(worker_fire(p, "V", TU_PTR(i)), WORKER_OK, "drop-oldest accepts %ld", (long)i);
    cr_assert_eq(worker_fire(p, "V", TU_PTR(7)), WORKER_EFULL);
    tu_gate_open(&bl.gate);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    worker_stats_t st;
    cr_assert_eq(worker_stats(p, &st), WORKER_OK);
    cr_assert_eq(seen.n, 3, "%d delivered", seen.n);
    cr_assert_eq(seen.v[0], 4, "the oldest were dropped");
    cr_assert_eq(seen.v[1], 5);
    cr_assert_eq(seen.v[2], 6);
    cr_assert_eq(st.dropped, 3);
    cr_assert_eq(st.refused, 1);
    worker_unref(p);
    tu_gate_destroy(&bl.gate);
}

/* ==== blocking calls inside a pooled worker ========================= */

enum {
    B_SLEEP,
    B_UPDATE,
    B_WAIT_TIMEOUT,
    B_WAIT_FOREVER,
    B_WAIT_EVENT,
    B_WAIT_UNTIL,
    B_WAIT_THREAD,
    B_JOIN,
    B_CALL,
    B_CALL_EX,
    B_FUTURE_GET,
    B_FUTURE_WAIT,
    B_AWAIT,
    B_DEFER_GET,
    B_DEFER_WAIT,
    B_FIRE_WAIT,
    B_FIRE_WAIT_FOREVER,
    B_COUNT
};

static const char *const b_names[B_COUNT] = { "worker_sleep", "worker_update",
    "worker_wait_timeout", "worker_wait_forever", "worker_wait_event", "worker_wait_until",
    "worker_wait_thread", "worker_join", "worker_call", "worker_call_ex", "worker_future_get",
    "worker_future_wait", "worker_await", "worker_defer_get", "worker_defer_wait",
    "worker_fire_ex(.wait > 0)", "worker_fire_ex(.wait < 0)" };

static atomic_int awaited_runs;

static int awaited_task(void *arg, void **result)
{
    (void)result;
    atomic_fetch_add(&awaited_runs, 1);
    worker_fire((worker_t *)arg, "AWAITED", NULL);
    return 0;
}

static bool any_event(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return true;
}

static void no_op(void *arg)
{
    (void)arg;
}

struct blocking {
    worker_t *main;
    worker_t *thread; /* running, with an ASK listener */
    worker_t *full; /* a thread worker with a full mailbox */
    worker_channel_t *ch; /* `full` subscribed */
    worker_future_t *future; /* running */
    worker_defer_t *defer; /* unsettled */
    int rc[B_COUNT];
    void *out[B_COUNT];
    uint64_t full_refused; /* after the fires, before the publish */
    int pub_rc; /* a publish with .wait at the full subscriber */
    double seconds;
    int later_rc; /* the worker still works afterwards */
};

static int blocking_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct blocking *b = userdata;
    double t0 = tu_now();
    int err = 0;
    size_t size = 0;
    for (int i = 0; i < B_COUNT; i++)
        b->out[i] = TU_PTR(-1);
    b->rc[B_SLEEP] = worker_sleep(2);
    b->rc[B_UPDATE] = worker_update();
    b->rc[B_WAIT_TIMEOUT] = worker_wait_timeout(2);
    b->rc[B_WAIT_FOREVER] = worker_wait_forever();
    b->rc[B_WAIT_EVENT] = worker_wait_event("NEVER", 2, NULL, &b->out[B_WAIT_EVENT]);
    b->rc[B_WAIT_UNTIL] = worker_wait_until(any_event, NULL, 2, &b->out[B_WAIT_UNTIL]);
    b->rc[B_WAIT_THREAD] = worker_wait_thread(b->thread, &err, &b->out[B_WAIT_THREAD]);
    b->rc[B_JOIN] = worker_join(b->thread);
    b->rc[B_CALL] = worker_call(b->thread, "ASK", TU_PTR(1), 2, &b->out[B_CALL]);
    b->rc[B_CALL_EX]
        = worker_call_ex(b->thread, "ASK", TU_PTR(1), NULL, 2, &b->out[B_CALL_EX], &size);
    b->rc[B_FUTURE_GET] = worker_future_get(b->future, &b->out[B_FUTURE_GET]);
    b->rc[B_FUTURE_WAIT] = worker_future_wait(b->future, 2, &b->out[B_FUTURE_WAIT]);
    b->rc[B_AWAIT] = worker_await(awaited_task, b->main, &b->out[B_AWAIT]);
    b->rc[B_DEFER_GET] = worker_defer_get(b->defer, &b->out[B_DEFER_GET]);
    b->rc[B_DEFER_WAIT] = worker_defer_wait(b->defer, 2, &b->out[B_DEFER_WAIT]);
    b->rc[B_FIRE_WAIT] = worker_fire_ex(b->full, "X", NULL, &(worker_fire_opts) { .wait = 2 });
    b->rc[B_FIRE_WAIT_FOREVER]
        = worker_fire_ex(b->full, "X", NULL, &(worker_fire_opts) { .wait = -1 });
    worker_stats_t st;
    worker_stats(b->full, &st);
    b->full_refused = st.refused;
    b->pub_rc = worker_channel_pub_ex(b->ch, "X", NULL, &(worker_fire_opts) { .wait = 2 });
    b->seconds = tu_now() - t0;
    b->later_rc = worker_later(NULL, no_op, NULL, 30, NULL) == WORKER_OK ? 0 : -1;
    tu_ack(b->main, 40);
    return 0;
}

static int hold_task(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30); /* the loop does not run: mail queues up */
    return worker_wait_forever();
}

static int count_atomic(const worker_event_t *e, void *userdata)
{
    (void)e;
    atomic_fetch_add((atomic_int *)userdata, 1);
    return 0;
}

/* Every blocking call returns WORKER_EWOULDBLOCK at once inside a pooled
 * worker and changes nothing: no request is sent, no task started, no
 * event queued, the worker does not start exiting. */
Test(pooled, blocking_calls_return_ewouldblock, .timeout = 30)
{
    worker_t *m = setup();
    atomic_store(&awaited_runs, 0);
    static struct blocking b;
    memset(&b, 0, sizeof b);
    b.main = m;
    atomic_int asks = 0;
    b.thread = thread_new("thread", NULL, 0);
    cr_assert_not_null(worker_listen(b.thread, "ASK", count_atomic, &asks, NULL));
    cr_assert_not_null(tu_sync_install(b.thread));
    start_ok(b.thread);
    tu_gate full_gate, future_gate;
    tu_gate_init(&full_gate);
    tu_gate_init(&future_gate);
    b.full = worker_new(hold_task, &full_gate,
        &(worker_opts) { .name = "full", .mailbox_limit = 1, .quiet = true });
    cr_assert_not_null(b.full);
    start_ok(b.full);
    cr_assert_eq(worker_fire(b.full, "FILL", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(b.full, "FILL", NULL), WORKER_EFULL, "full now");
    b.ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(b.ch, b.full), WORKER_OK);
    b.future = worker_async(hold_task, &future_gate);
    cr_assert_not_null(b.future);
    b.defer = worker_defer_new();
    cr_assert_not_null(b.defer);
    worker_stats_t full_before, thread_before;
    cr_assert_eq(worker_stats(b.full, &full_before), WORKER_OK);

    worker_t *p = pooled_new("blocking", NULL, 0);
    cr_assert_not_null(worker_listen(p, "TRY", blocking_listener, &b, NULL));
    cr_assert_not_null(tu_sync_install(p));
    start_ok(p);
    cr_assert_eq(worker_stats(b.thread, &thread_before), WORKER_OK);
    cr_assert_eq(worker_fire(p, "TRY", NULL), WORKER_OK);
    wait_ack_eq(40);

    for (int i = 0; i < B_COUNT; i++)
        cr_assert_eq(b.rc[i], WORKER_EWOULDBLOCK, "%s inside a pooled worker: %s", b_names[i],
            worker_err_name(b.rc[i]));
    for (int i = 0; i < B_COUNT; i++)
        cr_assert_eq(b.out[i], TU_PTR(-1), "%s wrote its output", b_names[i]);
    cr_assert_lt(b.seconds, 1.5, "the calls took %.2f s: one waited", b.seconds);
    cr_assert_eq(b.later_rc, 0);

    /* The pooled worker is not exiting (wait_forever changed nothing) and
     * still handles mail. */
    cr_assert(worker_is_running(p));
    cr_assert_eq(tu_sync(p), WORKER_OK);
    /* No request reached the thread worker (its accepted count is what
     * main sent it: the sync's fire, none from p). */
    cr_assert_eq(tu_sync(b.thread), WORKER_OK);
    worker_stats_t thread_after;
    cr_assert_eq(worker_stats(b.thread, &thread_after), WORKER_OK);
    cr_assert_eq(thread_after.accepted, thread_before.accepted + 1, "a call was sent");
    cr_assert_eq(atomic_load(&asks), 0);
    cr_assert(worker_is_running(b.thread));
    /* Nothing queued at the full worker. */
    worker_stats_t full_after;
    cr_assert_eq(worker_stats(b.full, &full_after), WORKER_OK);
    cr_assert_eq(full_after.accepted, full_before.accepted);
    cr_assert_eq(full_after.queued, 1);
    cr_assert_eq(b.full_refused, full_before.refused, "a refused .wait fire was counted");
    /* The publish with .wait did not wait (b.seconds) and queued nothing
     * (above); what it returns is checked in
     * channel_pub_wait_returns_ewouldblock. */
    /* No task started by worker_await. p and its listener are done, so an
     * AWAITED would be queued or on its way from a task started then. */
    stop_end(p);
    cr_assert_eq(worker_wait_event("AWAITED", 0.2, NULL, NULL), WORKER_ETIMEDOUT);
    cr_assert_eq(atomic_load(&awaited_runs), 0, "worker_await started its task");
    /* The defer and the future are untouched and still work. */
    cr_assert_eq(worker_defer_resolve(b.defer, TU_PTR(5)), WORKER_OK);
    void *v = NULL;
    cr_assert_eq(worker_defer_get(b.defer, &v), WORKER_OK);
    cr_assert_eq(TU_INT(v), 5);
    tu_gate_open(&future_gate);
    cr_assert_eq(worker_stop(worker_future_worker(b.future)), WORKER_OK);
    cr_assert_eq(worker_future_get(b.future, &v), WORKER_EXIT);
    worker_future_free(b.future);
    worker_defer_free(b.defer);
    tu_gate_open(&full_gate);
    worker_channel_free(b.ch);
    stop_end(b.full);
    stop_end(b.thread);
    tu_gate_destroy(&full_gate);
    tu_gate_destroy(&future_gate);
}

/* A publish with .wait inside a pooled worker is refused up front with
 * WORKER_EWOULDBLOCK and publishes nothing (docs/semantics.md, "Pooled
 * workers"): stopping at its first full subscriber would leave it half
 * done. */
struct pub_in_pooled {
    worker_t *main;
    worker_channel_t *ch;
    int rc;
};

static int pub_wait_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct pub_in_pooled *x = userdata;
    x->rc = worker_channel_pub_ex(x->ch, "X", NULL, &(worker_fire_opts) { .wait = 2 });
    tu_ack(x->main, 50);
    return 0;
}

Test(pooled, channel_pub_wait_returns_ewouldblock, .timeout = 30)
{
    worker_t *m = setup();
    tu_gate gate;
    tu_gate_init(&gate);
    worker_t *full = worker_new(
        hold_task, &gate, &(worker_opts) { .name = "full", .mailbox_limit = 1, .quiet = true });
    cr_assert_not_null(full);
    start_ok(full);
    cr_assert_eq(worker_fire(full, "FILL", NULL), WORKER_OK);
    static struct pub_in_pooled x;
    x = (struct pub_in_pooled) { .main = m, .ch = worker_channel_new(), .rc = 1 };
    cr_assert_eq(worker_channel_sub(x.ch, full), WORKER_OK);
    worker_t *p = pooled_new("publisher", NULL, 0);
    cr_assert_not_null(worker_listen(p, "PUB", pub_wait_listener, &x, NULL));
    start_ok(p);
    cr_assert_eq(worker_fire(p, "PUB", NULL), WORKER_OK);
    wait_ack_eq(50);
    stop_end(p);
    tu_gate_open(&gate);
    worker_channel_free(x.ch);
    stop_end(full);
    tu_gate_destroy(&gate);
    cr_assert_eq(x.rc, WORKER_EWOULDBLOCK, "got %d (%s)", x.rc, worker_err_name(x.rc));
}

/* ==== pause / resume ================================================= */

Test(pooled, pause_and_resume, .timeout = 30)
{
    setup();
    int n = 0;
    worker_t *p = pooled_new("paused", NULL, 0);
    cr_assert_not_null(worker_listen(p, "E", count_plain, &n, NULL));
    cr_assert_not_null(tu_sync_install(p));
    cr_assert_eq(worker_pause(p), WORKER_EREJECTED, "not running");
    cr_assert_eq(worker_resume(p), WORKER_EREJECTED, "not running");
    start_ok(p);
    cr_assert_eq(worker_pause(p), WORKER_OK);
    cr_assert_eq(worker_pause(p), WORKER_OK, "twice");
    for (int i = 0; i < 10; i++)
        cr_assert_eq(worker_fire(p, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(p), WORKER_OK, "a paused pooled worker's listeners keep running");
    cr_assert_eq(n, 10);
    cr_assert_eq(worker_resume(p), WORKER_OK);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(worker_fire(p, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(p), WORKER_OK);
    cr_assert_eq(n, 20);
    cr_assert_eq(worker_resume(p), WORKER_OK, "resume when not paused");
    /* A paused pooled worker can be stopped. */
    cr_assert_eq(worker_pause(p), WORKER_OK);
    cr_assert_eq(tu_sync(p), WORKER_OK);
    stop_end(p);
}

/* ==== restart ======================================================== */

Test(pooled, restart_after_the_end, .timeout = 30)
{
    setup();
    int n = 0, transient = 0;
    worker_t *p = pooled_new("again", NULL, 0);
    cr_assert_not_null(worker_listen(p, "E", count_plain, &n, NULL));
    cr_assert_not_null(tu_sync_install(p));
    for (int run = 0; run < 3; run++) {
        start_ok(p);
        cr_assert_eq(worker_start(p), WORKER_ESTATE, "running");
        if (run == 0)
            cr_assert_not_null(worker_listen(
                p, "E", count_plain, &transient, &(worker_listen_opts) { .transient = true }));
        for (int i = 0; i < 5; i++)
            cr_assert_eq(worker_fire(p, "E", NULL), WORKER_OK);
        cr_assert_eq(tu_sync(p), WORKER_OK, "run %d", run);
        cr_assert_eq(n, 5 * (run + 1), "run %d: permanent listener", run);
        cr_assert_eq(worker_monitor(p), WORKER_OK);
        cr_assert_eq(worker_stop(p), WORKER_OK);
        worker_down_t down = wait_down_from(p);
        cr_assert_eq(down.err, WORKER_EXIT);
        int err = 0;
        cr_assert_eq(worker_wait_thread(p, &err, NULL), WORKER_OK);
        cr_assert_eq(err, WORKER_EXIT);
        cr_assert_eq(worker_fire(p, "E", NULL), WORKER_EREJECTED);
    }
    cr_assert_eq(transient, 5, "the transient listener went with the first run");
    worker_unref(p);
}

/* ==== bad input ====================================================== */

static int some_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

Test(pooled, bad_input, .timeout = 30)
{
    setup();
    cr_assert_null(worker_new(some_task, NULL, &pooled_quiet), "pooled with a task");
    cr_assert_null(worker_spawn(some_task, NULL, &pooled_quiet), "pooled with a task");
    cr_assert_null(worker_new(NULL, NULL, &(worker_opts) { .pooled = true, .stack_size = 1 << 20 }),
        "pooled with a stack size");
    cr_assert_null(
        worker_new(NULL, NULL, &(worker_opts) { .pooled = true, .cpu = 1 }), "pooled with a cpu");
    worker_t *p = pooled_new("overlay", NULL, 0);
    cr_assert_eq(worker_start_overlay(p), WORKER_EINVAL, "a pooled worker on the caller's thread");
    cr_assert(!worker_is_running(p));
    cr_assert_eq(worker_scheduler_threads(-1), WORKER_EINVAL);
    cr_assert_eq(worker_scheduler_threads(1025), WORKER_EINVAL);
    start_ok(p);
    cr_assert_eq(worker_scheduler_threads(2), WORKER_ESTATE, "after the scheduler started");
    cr_assert_eq(worker_scheduler_threads(-1), WORKER_EINVAL, "still EINVAL after the start");
    cr_assert_eq(worker_start_overlay(p), WORKER_EINVAL);
    stop_end(p);
}

/* The "once, before the start" rule needs a process whose scheduler has
 * not been configured or started: this binary again, with
 * TEST_POOLED_CHILD=<mode>, where main() runs config_child(mode). Its
 * exit status names the first check that failed (0: all passed). */
#define CHILD_WORKERS 64

static pthread_t child_seen[CHILD_WORKERS];

struct child_ctx {
    worker_t *main;
    int index;
};

static int child_where(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct child_ctx *c = userdata;
    child_seen[c->index] = pthread_self();
    tu_ack(c->main, 1);
    return 0;
}

static int config_child(int mode)
{
    pthread_t self = pthread_self();
    worker_t *m = worker_current();
    if (worker_scheduler_threads(-1) != WORKER_EINVAL)
        return 10;
    if (worker_scheduler_threads(1025) != WORKER_EINVAL)
        return 11;
    if (mode == 1) {
        if (worker_scheduler_threads(2) != WORKER_OK)
            return 12;
        if (worker_scheduler_threads(2) != WORKER_ESTATE)
            return 13; /* twice, same number */
        if (worker_scheduler_threads(3) != WORKER_ESTATE)
            return 14; /* twice, another number */
    } else if (mode == 3) {
        if (worker_scheduler_threads(1024) != WORKER_OK)
            return 15; /* the largest allowed (never started here) */
        if (worker_scheduler_threads(1) != WORKER_ESTATE)
            return 16;
        return 0;
    }
    /* mode 2: never set; the default (one per CPU) */
    static struct child_ctx ctx[CHILD_WORKERS];
    worker_t *w[CHILD_WORKERS];
    for (int i = 0; i < CHILD_WORKERS; i++) {
        ctx[i] = (struct child_ctx) { m, i };
        w[i] = worker_new(NULL, NULL, &pooled_quiet);
        if (!w[i] || !worker_listen(w[i], "WHERE", child_where, &ctx[i], NULL))
            return 20;
        if (worker_start(w[i]) != WORKER_OK)
            return 21;
    }
    if (worker_scheduler_threads(2) != WORKER_ESTATE)
        return 22; /* after the start */
    if (worker_scheduler_threads(0) != WORKER_ESTATE)
        return 23;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < CHILD_WORKERS; i++)
            if (worker_fire(w[i], "WHERE", NULL) != WORKER_OK)
                return 24;
        for (int i = 0; i < CHILD_WORKERS; i++)
            if (tu_wait_ack(NULL) != WORKER_OK)
                return 25;
    }
    pthread_t distinct[CHILD_WORKERS];
    int n = 0;
    for (int i = 0; i < CHILD_WORKERS; i++) {
        if (pthread_equal(child_seen[i], self))
            return 26; /* on the main thread */
        bool known = false;
        for (int k = 0; k < n; k++)
            known = known || pthread_equal(distinct[k], child_seen[i]);
        if (!known)
            distinct[n++] = child_seen[i];
    }
    if (mode == 1 && n > 2)
        return 27; /* more scheduler threads than set */
    for (int i = 0; i < CHILD_WORKERS; i++) {
        worker_stop(w[i]);
        worker_join(w[i]);
        worker_unref(w[i]);
    }
    return 0;
}

static int run_child(int mode)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(len, 0);
    self[len] = '\0';
    char env_mode[32];
    snprintf(env_mode, sizeof env_mode, "TEST_POOLED_CHILD=%d", mode);
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* not Criterion's sandbox (BoxFort) variables */
        if (strncmp(environ[i], "BXF", 3) != 0 && strncmp(environ[i], "CRITERION", 9) != 0)
            env[k++] = environ[i];
    env[k] = env_mode;
    char *argv[] = { self, NULL };
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, self, NULL, NULL, argv, env), 0);
    free(env);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child process crashed (signal %d)",
        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

Test(pooled, scheduler_threads_once_before_the_start, .timeout = 60)
{
    setup();
    for (int mode = 1; mode <= 3; mode++) {
        int rc = run_child(mode);
        cr_assert_eq(rc, 0, "mode %d: check %d failed (see config_child)", mode, rc);
    }
}

/* ==== tracing ======================================================== */

static uint32_t find_worker(const char *name)
{
    for (size_t i = 0; i < tr.count; i++)
        if (tr.rec[i].kind == WK_TR_WORKER_CREATED && strcmp(name_of(tr.rec[i].b), name) == 0)
            return tr.rec[i].worker;
    return 0;
}

#define TRACED_PINGS 5

/* A traced pooled run reads back: the worker's creation, start, each PING
 * delivered in firing order with its listener run, written by a thread
 * other than the main thread (a scheduler thread), and its end with
 * WORKER_EXIT; `worker-trace check` accepts the file. */
Test(pooled, traced_pooled_run, .timeout = 60)
{
    setup();
    memset(&tr, 0, sizeof tr);
    char path[] = "/tmp/worker-trace-pooled-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    int pings = 0;
    worker_t *p = pooled_new("pooly", NULL, 0);
    cr_assert_not_null(worker_listen(p, "PING", count_plain, &pings, NULL));
    start_ok(p);
    for (int i = 0; i < TRACED_PINGS; i++)
        cr_assert_eq(worker_fire(p, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_pause(p), WORKER_OK);
    cr_assert_eq(worker_resume(p), WORKER_OK);
    cr_assert_eq(worker_stop(p), WORKER_OK);
    cr_assert_eq(worker_join(p), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(p);
    cr_assert_eq(pings, TRACED_PINGS);

    read_trace(path);
    cr_assert_eq(tr.ends, 1);
    uint32_t a = find_worker("pooly"), m = 0;
    cr_assert(a, "a CREATED record for pooly");
    /* main's root worker was made before the trace started (setup()), so
     * the trace has no CREATED record of it: main is the sender of the
     * PINGs. */
    for (size_t i = 0; i < tr.count && !m; i++)
        if (tr.rec[i].kind == WK_TR_FIRE && (uint32_t)tr.rec[i].b == a
            && strcmp(name_of(tr.rec[i].b >> 32), "PING") == 0)
            m = tr.rec[i].worker;
    cr_assert(m && m != a, "main's PING fires");
    uint64_t fired[TRACED_PINGS], delivered[TRACED_PINGS], delivered_ts[TRACED_PINGS];
    size_t nf = 0, nd = 0, started = 0, listener_runs = 0, ended = 0, stops = 0;
    uint32_t main_writer = 0;
    bool listener_on_main_writer = false;
    for (size_t i = 0; i < tr.count; i++) {
        wk_trace_record *r = &tr.rec[i];
        if (r->kind == WK_TR_FIRE && r->worker == m && strcmp(name_of(r->b >> 32), "PING") == 0) {
            cr_assert_eq((uint32_t)r->b, a);
            cr_assert_lt(nf, TRACED_PINGS);
            fired[nf++] = r->a;
            main_writer = tr.thread[i];
        }
    }
    cr_assert_eq(nf, TRACED_PINGS);
    for (size_t i = 0; i < tr.count; i++) {
        wk_trace_record *r = &tr.rec[i];
        if (r->worker != a)
            continue;
        if (r->kind == WK_TR_DELIVER && strcmp(name_of(r->b >> 32), "PING") == 0) {
            cr_assert_lt(nd, TRACED_PINGS);
            /* A pooled worker's slices run on several scheduler threads,
             * each writing its own chunks: file order is not time order
             * across them. Insert by time. */
            size_t k = nd++;
            for (; k > 0 && delivered_ts[k - 1] > r->ts; k--) {
                delivered[k] = delivered[k - 1];
                delivered_ts[k] = delivered_ts[k - 1];
            }
            delivered[k] = r->a;
            delivered_ts[k] = r->ts;
        } else if (r->kind == WK_TR_LISTENER_START && strcmp(name_of(r->b >> 32), "PING") == 0) {
            listener_runs++;
            listener_on_main_writer = listener_on_main_writer || tr.thread[i] == main_writer;
        } else if (r->kind == WK_TR_WORKER_STARTED) {
            started++;
        } else if (r->kind == WK_TR_WORKER_ENDED) {
            ended++;
            cr_assert_eq((int64_t)r->a, WORKER_EXIT);
        } else if (r->kind == WK_TR_STOP) {
            stops++;
            cr_assert_eq(r->a, m, "stopped by main");
        }
    }
    cr_assert_eq(nd, TRACED_PINGS);
    for (size_t i = 0; i < nd; i++)
        cr_assert_eq(delivered[i], fired[i], "delivery %zu in firing order", i);
    cr_assert_eq(listener_runs, TRACED_PINGS);
    cr_assert(!listener_on_main_writer, "the listener runs were written by the main thread");
    cr_assert_eq(started, 1);
    cr_assert_eq(ended, 1);
    cr_assert_eq(stops, 1);
#ifdef WORKER_TRACE_TOOL
    cr_assert_eq(tu_tool_check(path), 0, "worker-trace check %s", path);
#endif
    unlink(path);
    for (size_t i = 0; i < MAX_NAMES; i++)
        free(tr.names[i]);
}

/* ==== main =========================================================== */

int main(int argc, char *argv[])
{
    const char *child = getenv("TEST_POOLED_CHILD");
    if (child)
        return config_child(atoi(child));
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
