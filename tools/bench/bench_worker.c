/* libworker-actor under the benchmark scenarios P1-P7 (docs/performance.md).
 *
 * P1  one sender (the main thread) fires N events, 32 bytes copied in, at
 *     one worker whose listener checks the sequence; the listener fires DONE
 *     back at the main thread after the N-th event, which the main thread
 *     waits for with worker_wait_event().
 * P2  ping-pong main <-> worker: PING copied in, the listener fires PONG
 *     (copied) back at worker_event_target(e); the main thread waits with
 *     worker_wait_event(). p50/p99 of per-round-trip timestamps.
 * P3  like P1 with 4 plain pthreads as senders, per-sender order checked.
 * P3p P3 into one pooled worker (worker_opts.pooled, BENCH.md Part 2).
 * P4  worker_channel_pub_ex() (32 bytes copied once) to 64 subscriber
 *     workers: deliveries/s and ns per delivery. Built only when
 *     <worker/channel.h> exists.
 * P5  worker_spawn + worker_stop + worker_join + worker_unref, one at a time.
 * P6a RSS and heap growth of 1,000 idle workers (task NULL), per worker.
 * P6b RSS and heap growth per event of 1,000,000 events queued at a worker
 *     whose task is blocked (not in its loop), minus the 32-byte payload.
 *     (worker_pause() does not queue events: a paused worker's listeners keep
 *     running, docs/semantics.md; a task blocked outside the loop does.)
 * P7  CPU time (getrusage) of the process over 2 s with 100 idle workers.
 * P13 ask: worker_call_ex main -> worker, the request (32 bytes) copied in,
 *     the listener answers with worker_reply_ex (copied); the same round
 *     trip as P2 with a request in place of two events. p50/p99.
 * P14 P1 turned around: a worker fires at the main thread, which an epoll
 *     loop on worker_fd() drives with worker_update().
 * P9, P10, P11 pooled workers at scale (spawn, skynet, ping-pong pairs):
 *     bench_pooled.c. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "bench_pooled.h"

#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <worker/worker.h>

#if defined(__has_include)
#if __has_include(<worker/channel.h>)
#include <worker/channel.h>
#define BENCH_HAVE_CHANNEL 1
#endif
#endif

#define WAIT_LIMIT_S 300.0

/* --- a counting, checking sink --------------------------------------------------- */

typedef struct sink {
    bench_checker check; /* touched only on the worker's thread */
    uint64_t expected; /* DONE after this many events */
    worker_t *notify; /* gets DONE */
    atomic_int *countdown; /* P4: the last subscriber to finish fires DONE */
    bool bad_size;
} sink;

static int on_event(const worker_event_t *e, void *userdata)
{
    sink *s = userdata;
    const bench_msg *m = worker_event_data(e);
    if (worker_event_size(e) != BENCH_MSG_SIZE || !m) {
        s->bad_size = true;
        s->check.received++;
        s->check.errors++;
    } else {
        bench_checker_take(&s->check, m);
    }
    if (s->check.received == s->expected) {
        if (!s->countdown || atomic_fetch_sub(s->countdown, 1) == 1)
            worker_fire(s->notify, "DONE", NULL);
    }
    return 0;
}

static void sink_verdict(const sink *s, const char *who, bench_result *r)
{
    if (s->bad_size)
        bench_fail(r, "%s: an event arrived without its 32-byte copy", who);
    else if (s->check.errors)
        bench_fail(r, "%s: %llu sequence errors (first: sender %u seq %llu)", who,
            (unsigned long long)s->check.errors, s->check.first_bad_sender,
            (unsigned long long)s->check.first_bad_seq);
    else if (s->check.received != s->expected)
        bench_fail(r, "%s: received %llu of %llu", who, (unsigned long long)s->check.received,
            (unsigned long long)s->expected);
}

/* A started worker (task NULL: waits forever, or pooled: lives until
 * stopped) made with `opts`, with `fn` listening on `name`. */
static worker_t *spawn_listening_opts(
    const char *name, worker_listener_fn fn, void *ud, const worker_opts *opts, bench_result *r)
{
    worker_t *w = worker_new(NULL, NULL, opts);
    if (!w) {
        bench_fail(r, "worker_new failed");
        return NULL;
    }
    if (!worker_listen(w, name, fn, ud, NULL)) {
        bench_fail(r, "worker_listen failed");
        worker_unref(w);
        return NULL;
    }
    int rc = worker_start(w);
    if (rc != WORKER_OK) {
        bench_fail(r, "worker_start: %s", worker_strerror(rc));
        worker_unref(w);
        return NULL;
    }
    return w;
}

static worker_t *spawn_listening(const char *name, worker_listener_fn fn, void *ud, bench_result *r)
{
    return spawn_listening_opts(name, fn, ud, &(worker_opts) { .name = "bench" }, r);
}

static void finish(worker_t *w, bench_result *r)
{
    int rc = worker_stop(w);
    if (rc != WORKER_OK)
        bench_fail(r, "worker_stop: %s", worker_strerror(rc));
    rc = worker_join(w);
    if (rc != WORKER_OK)
        bench_fail(r, "worker_join: %s", worker_strerror(rc));
    worker_unref(w);
}

static int fire_msg(worker_t *w, const char *name, const bench_msg *m)
{
    return worker_fire_ex(
        w, name, NULL, &(worker_fire_opts) { .copy = m, .copy_size = BENCH_MSG_SIZE });
}

/* --- P1 ------------------------------------------------------------------------ */

static void p1(const bench_args *a, bench_result *r)
{
    long n = bench_count(a);
    sink s = { .expected = (uint64_t)n, .notify = worker_current() };
    bench_checker_init(&s.check, 1);
    worker_t *w = spawn_listening("E", on_event, &s, r);
    if (!w)
        return;
    uint64_t t0 = bench_now_ns();
    bench_msg m;
    for (long i = 0; i < n; i++) {
        bench_msg_make(&m, 0, (uint64_t)i);
        int rc = fire_msg(w, "E", &m);
        if (rc != WORKER_OK) {
            bench_fail(r, "fire %ld: %s", i, worker_strerror(rc));
            break;
        }
    }
    int rc = r->ok ? worker_wait_event("DONE", WAIT_LIMIT_S, w, NULL) : WORKER_OK;
    uint64_t t1 = bench_now_ns();
    if (rc != WORKER_OK)
        bench_fail(r, "waiting for DONE: %s", worker_strerror(rc));
    finish(w, r);
    if (r->ok)
        sink_verdict(&s, "worker", r);
    bench_rate_result(r, (long)s.check.received, n, t0, t1);
}

/* --- P2 ------------------------------------------------------------------------ */

typedef struct echo {
    bench_checker check;
    int fire_errors;
} echo;

static int on_ping(const worker_event_t *e, void *userdata)
{
    echo *st = userdata;
    const bench_msg *m = worker_event_data(e);
    if (worker_event_size(e) != BENCH_MSG_SIZE || !m) {
        st->check.errors++;
        return 0;
    }
    bench_checker_take(&st->check, m);
    if (fire_msg(worker_event_target(e), "PONG", m) != WORKER_OK)
        st->fire_errors++;
    return 0;
}

static void p2(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n);
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) {
        bench_fail(r, "out of memory");
        return;
    }
    echo st;
    memset(&st, 0, sizeof st);
    bench_checker_init(&st.check, 1);
    worker_t *w = spawn_listening("PING", on_ping, &st, r);
    if (!w) {
        free(lat);
        return;
    }
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < warm + n && r->ok; i++) {
        bench_msg m;
        bench_msg_make(&m, 0, (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        int rc = fire_msg(w, "PING", &m);
        void *data = NULL;
        if (rc == WORKER_OK)
            rc = worker_wait_event("PONG", WAIT_LIMIT_S, w, &data);
        uint64_t t1 = bench_now_ns();
        if (rc != WORKER_OK) {
            bench_fail(r, "round trip %ld: %s", i, worker_strerror(rc));
            break;
        }
        if (!data || !bench_msg_ok(data, 0, (uint64_t)i)) {
            bench_fail(r, "round trip %ld: wrong PONG", i);
            break;
        }
        if (i >= warm)
            lat[done++] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    finish(w, r);
    if (r->ok && (st.check.errors || st.fire_errors))
        bench_fail(r, "worker side: %llu sequence errors, %d refused PONGs",
            (unsigned long long)st.check.errors, st.fire_errors);
    bench_latency_result(r, lat, done, start, end);
    free(lat);
}

/* --- P13 ----------------------------------------------------------------------- */

static int on_ask(const worker_event_t *e, void *userdata)
{
    echo *st = userdata;
    const bench_msg *m = worker_event_data(e);
    if (worker_event_size(e) != BENCH_MSG_SIZE || !m) {
        st->check.errors++;
        return worker_reply_error(e, WORKER_EINVAL);
    }
    bench_checker_take(&st->check, m);
    worker_fire_opts o = { .copy = m, .copy_size = BENCH_MSG_SIZE };
    if (worker_reply_ex(e, NULL, &o) != WORKER_OK)
        st->fire_errors++;
    return 0;
}

/* One timed ask; false (and the failure recorded) when it went wrong. */
static bool ask_once(worker_t *w, long i, uint64_t *ns, bench_result *r)
{
    bench_msg m;
    bench_msg_make(&m, 0, (uint64_t)i);
    worker_fire_opts o = { .copy = &m, .copy_size = BENCH_MSG_SIZE };
    void *reply = NULL;
    size_t size = 0;
    uint64_t t0 = bench_now_ns();
    int rc = worker_call_ex(w, "ASK", NULL, &o, WAIT_LIMIT_S, &reply, &size);
    *ns = bench_now_ns() - t0;
    if (rc != WORKER_OK)
        bench_fail(r, "ask %ld: %s", i, worker_strerror(rc));
    else if (size != BENCH_MSG_SIZE || !bench_msg_ok(reply, 0, (uint64_t)i))
        bench_fail(r, "ask %ld: wrong reply", i);
    return r->ok;
}

static void p13(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), warm = bench_warmup(n);
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) {
        bench_fail(r, "out of memory");
        return;
    }
    echo st;
    memset(&st, 0, sizeof st);
    bench_checker_init(&st.check, 1);
    worker_t *w = spawn_listening("ASK", on_ask, &st, r);
    if (!w) {
        free(lat);
        return;
    }
    long done = 0;
    uint64_t start = bench_now_ns();
    for (long i = 0; i < warm + n; i++) {
        uint64_t ns;
        if (!ask_once(w, i, &ns, r))
            break;
        if (i >= warm)
            lat[done++] = ns;
    }
    uint64_t end = bench_now_ns();
    finish(w, r);
    if (r->ok && (st.check.errors || st.fire_errors))
        bench_fail(r, "worker side: %llu sequence errors, %d refused replies",
            (unsigned long long)st.check.errors, st.fire_errors);
    bench_latency_result(r, lat, done, start, end);
    free(lat);
}

/* --- P3 ------------------------------------------------------------------------ */

typedef struct p3_sender {
    pthread_t thread;
    worker_t *to;
    uint32_t id;
    long count;
    bench_gate *gate;
    int rc;
} p3_sender;

static void *p3_send(void *arg)
{
    p3_sender *s = arg;
    bench_gate_wait(s->gate);
    bench_msg m;
    for (long i = 0; i < s->count; i++) {
        bench_msg_make(&m, s->id, (uint64_t)i);
        int rc = fire_msg(s->to, "E", &m);
        if (rc != WORKER_OK) {
            s->rc = rc;
            break;
        }
    }
    return NULL;
}

/* P3 into a receiver made with `receiver_opts`. */
static void p3_into(const bench_args *a, const worker_opts *receiver_opts, bench_result *r)
{
    int ns = bench_senders(a);
    long per = bench_count(a) / ns, n = per * ns;
    sink s = { .expected = (uint64_t)n, .notify = worker_current() };
    bench_checker_init(&s.check, (uint32_t)ns);
    worker_t *w = spawn_listening_opts("E", on_event, &s, receiver_opts, r);
    if (!w)
        return;
    bench_gate gate;
    bench_gate_init(&gate);
    p3_sender senders[BENCH_MAX_SENDERS];
    int started = 0;
    for (int i = 0; i < ns; i++) {
        senders[i] = (p3_sender) { .to = w, .id = (uint32_t)i, .count = per, .gate = &gate };
        if (pthread_create(&senders[i].thread, NULL, p3_send, &senders[i]) != 0) {
            bench_fail(r, "pthread_create failed");
            break;
        }
        started++;
    }
    uint64_t t0 = bench_now_ns();
    bench_gate_open(&gate);
    int rc = r->ok ? worker_wait_event("DONE", WAIT_LIMIT_S, w, NULL) : WORKER_OK;
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < started; i++) {
        pthread_join(senders[i].thread, NULL);
        if (senders[i].rc != WORKER_OK)
            bench_fail(r, "sender %d: fire: %s", i, worker_strerror(senders[i].rc));
    }
    if (rc != WORKER_OK)
        bench_fail(r, "waiting for DONE: %s", worker_strerror(rc));
    finish(w, r);
    bench_gate_destroy(&gate);
    if (r->ok)
        sink_verdict(&s, "worker", r);
    bench_rate_result(r, (long)s.check.received, n, t0, t1);
}

static void p3(const bench_args *a, bench_result *r)
{
    p3_into(a, &(worker_opts) { .name = "bench" }, r);
}

static void p3_pooled(const bench_args *a, bench_result *r)
{
    p3_into(a, &(worker_opts) { .name = "bench", .pooled = true }, r);
}

/* --- P4 ------------------------------------------------------------------------ */

#ifdef BENCH_HAVE_CHANNEL
static void p4(const bench_args *a, bench_result *r)
{
    long pubs = bench_count(a);
    int nsub = bench_workers(a);
    atomic_int countdown = nsub;
    sink *sinks = calloc((size_t)nsub, sizeof *sinks);
    worker_t **subs = calloc((size_t)nsub, sizeof *subs);
    worker_channel_t *ch = worker_channel_new();
    if (!sinks || !subs || !ch) {
        bench_fail(r, "out of memory");
        goto out;
    }
    worker_t *me = worker_current();
    int made = 0;
    for (int i = 0; i < nsub; i++) {
        sinks[i].expected = (uint64_t)pubs;
        sinks[i].notify = me;
        sinks[i].countdown = &countdown;
        bench_checker_init(&sinks[i].check, 1);
        subs[i] = spawn_listening("M", on_event, &sinks[i], r);
        if (!subs[i])
            break;
        made++;
        int rc = worker_channel_sub(ch, subs[i]);
        if (rc != WORKER_OK) {
            bench_fail(r, "worker_channel_sub: %s", worker_strerror(rc));
            break;
        }
    }
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < pubs && r->ok; i++) {
        bench_msg m;
        bench_msg_make(&m, 0, (uint64_t)i);
        int reached = worker_channel_pub_ex(
            ch, "M", NULL, &(worker_fire_opts) { .copy = &m, .copy_size = BENCH_MSG_SIZE });
        if (reached != nsub)
            bench_fail(r, "publish %ld reached %d of %d", i, reached, nsub);
    }
    int rc = r->ok ? worker_wait_event("DONE", WAIT_LIMIT_S, NULL, NULL) : WORKER_OK;
    uint64_t t1 = bench_now_ns();
    if (rc != WORKER_OK)
        bench_fail(r, "waiting for DONE: %s", worker_strerror(rc));
    long delivered = 0;
    for (int i = 0; i < made; i++) {
        finish(subs[i], r);
        if (r->ok)
            sink_verdict(&sinks[i], "subscriber", r);
        delivered += (long)sinks[i].check.received;
    }
    bench_fanout_result(r, delivered, pubs, nsub, t0, t1);
out:
    if (ch)
        worker_channel_free(ch);
    free(subs);
    free(sinks);
}
#endif

/* --- P5 ------------------------------------------------------------------------ */

static void p5(const bench_args *a, bench_result *r)
{
    long n = bench_count(a), done = 0;
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        worker_t *w = worker_spawn(NULL, NULL, NULL);
        if (!w) {
            bench_fail(r, "worker_spawn %ld failed", i);
            break;
        }
        int rc = worker_stop(w);
        if (rc == WORKER_OK)
            rc = worker_join(w);
        if (rc != WORKER_OK || worker_is_running(w))
            bench_fail(r, "worker %ld: stop/join: %s", i, worker_strerror(rc));
        worker_unref(w);
        if (!r->ok)
            break;
        done++;
    }
    uint64_t t1 = bench_now_ns();
    bench_spawn_result(r, done, t0, t1);
}

/* --- helpers for P6/P7: idle workers that have run their loop ------------------- */

static int on_hello(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), "HELLO_BACK", NULL);
    return 0;
}

/* Spawn `n` workers (task NULL) and make sure each one is in its loop. */
static int spawn_idle(worker_t **ws, int n, bench_result *r)
{
    int made = 0;
    for (int i = 0; i < n; i++) {
        ws[i] = spawn_listening("HELLO", on_hello, NULL, r);
        if (!ws[i])
            break;
        made++;
        int rc = worker_fire(ws[i], "HELLO", NULL);
        if (rc == WORKER_OK)
            rc = worker_wait_event("HELLO_BACK", WAIT_LIMIT_S, ws[i], NULL);
        if (rc != WORKER_OK) {
            bench_fail(r, "idle worker %d did not answer: %s", i, worker_strerror(rc));
            break;
        }
    }
    return made;
}

static void stop_all(worker_t **ws, int n, bench_result *r)
{
    for (int i = 0; i < n; i++)
        worker_stop(ws[i]);
    for (int i = 0; i < n; i++)
        finish(ws[i], r);
}

/* Warm the library up (thread context, root worker, pools, first arena) so
 * that the baseline holds what every program pays once. */
static void warm_up(bench_result *r)
{
    worker_t *w[1];
    if (spawn_idle(w, 1, r) == 1)
        stop_all(w, 1, r);
}

/* --- P6a: idle workers ---------------------------------------------------------- */

static void p6a(const bench_args *a, bench_result *r)
{
    int n = bench_workers(a);
    worker_t **ws = calloc((size_t)n, sizeof *ws);
    if (!ws) {
        bench_fail(r, "out of memory");
        return;
    }
    warm_up(r);
    bench_sleep(0.05);
    long rss0 = bench_rss_bytes(), heap0 = bench_heap_bytes();
    uint64_t t0 = bench_now_ns();
    int made = spawn_idle(ws, n, r);
    uint64_t t1 = bench_now_ns();
    bench_sleep(0.2); /* let every one of them park */
    long rss1 = bench_rss_bytes(), heap1 = bench_heap_bytes();
    stop_all(ws, made, r);
    free(ws);
    r->count = made;
    r->elapsed = (double)(t1 - t0) / 1e9;
    if (r->ok && made != n)
        bench_fail(r, "started %d of %d workers", made, n);
    bench_fig(r, "rss_bytes_per_worker", (double)(rss1 - rss0) / n);
    bench_fig(r, "heap_bytes_per_worker", (double)(heap1 - heap0) / n);
}

/* --- P6b: queued events ---------------------------------------------------------- */

typedef struct gated {
    sem_t ready, go;
} gated;

static int gated_task(void *arg, void **result)
{
    (void)result;
    gated *g = arg;
    sem_post(&g->ready);
    while (sem_wait(&g->go) != 0) { }
    return worker_wait_forever() == WORKER_EXIT ? WORKER_EXIT : 0;
}

static void p6b(const bench_args *a, bench_result *r)
{
    long n = bench_events(a);
    warm_up(r);
    gated g;
    sem_init(&g.ready, 0, 0);
    sem_init(&g.go, 0, 0);
    sink s = { .expected = (uint64_t)n, .notify = worker_current() };
    bench_checker_init(&s.check, 1);
    worker_t *w = worker_new(gated_task, &g, &(worker_opts) { .name = "gated" });
    if (!w || !worker_listen(w, "E", on_event, &s, NULL) || worker_start(w) != WORKER_OK) {
        bench_fail(r, "could not start the gated worker");
        if (w)
            worker_unref(w);
        return;
    }
    while (sem_wait(&g.ready) != 0) { }
    bench_sleep(0.05);
    long rss0 = bench_rss_bytes(), heap0 = bench_heap_bytes();
    uint64_t t0 = bench_now_ns();
    bench_msg m;
    for (long i = 0; i < n; i++) {
        bench_msg_make(&m, 0, (uint64_t)i);
        int rc = fire_msg(w, "E", &m);
        if (rc != WORKER_OK) {
            bench_fail(r, "fire %ld: %s", i, worker_strerror(rc));
            break;
        }
    }
    uint64_t t1 = bench_now_ns();
    long rss1 = bench_rss_bytes(), heap1 = bench_heap_bytes();
    sem_post(&g.go);
    int rc = r->ok ? worker_wait_event("DONE", WAIT_LIMIT_S, w, NULL) : WORKER_OK;
    if (rc != WORKER_OK)
        bench_fail(r, "waiting for the drain: %s", worker_strerror(rc));
    finish(w, r);
    sem_destroy(&g.ready);
    sem_destroy(&g.go);
    if (r->ok)
        sink_verdict(&s, "worker", r);
    r->count = (long)s.check.received;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_fig(r, "rss_bytes_per_event", (double)(rss1 - rss0) / (double)n - (double)BENCH_MSG_SIZE);
    bench_fig(
        r, "heap_bytes_per_event", (double)(heap1 - heap0) / (double)n - (double)BENCH_MSG_SIZE);
    bench_fig(r, "queue_ns_per_event", r->elapsed * 1e9 / (double)n);
}

/* --- P7: idle CPU ---------------------------------------------------------------- */

typedef struct idle_window {
    double cpu_ms; /* getrusage, whole process */
    int threads_woken; /* threads scheduled in at least once */
    long wakeups; /* times any thread was scheduled in */
} idle_window;

/* Sleep `secs` on the main thread (a plain sleep: its loop is not run) and
 * see who else ran meanwhile. */
static void watch_idle(double secs, int cap, idle_window *out)
{
    bench_task_stat *before = calloc((size_t)cap, sizeof *before);
    bench_task_stat *after = calloc((size_t)cap, sizeof *after);
    if (!before || !after) {
        free(before);
        free(after);
        return;
    }
    int nb = bench_task_stats(before, cap);
    double c0 = bench_cpu_seconds();
    bench_sleep(secs);
    double c1 = bench_cpu_seconds();
    int na = bench_task_stats(after, cap);
    double ms;
    bench_task_woken(before, nb, after, na, &out->threads_woken, &out->wakeups, &ms);
    out->cpu_ms = (c1 - c0) * 1e3;
    free(before);
    free(after);
}

static void p7(const bench_args *a, bench_result *r)
{
    int n = bench_workers(a);
    double secs = bench_seconds(a);
    worker_t **ws = calloc((size_t)n, sizeof *ws);
    if (!ws) {
        bench_fail(r, "out of memory");
        return;
    }
    int made = spawn_idle(ws, n, r);
    bench_sleep(0.1);
    /* The first `secs` of idleness, then the next `secs`: a parked worker's
     * wake-ups (if any) show up as `wakeups`, the main thread's own sleep
     * counts as one per window. */
    idle_window first = { 0 }, steady = { 0 };
    uint64_t t0 = bench_now_ns();
    watch_idle(secs, n + 16, &first);
    uint64_t t1 = bench_now_ns();
    watch_idle(secs, n + 16, &steady);
    stop_all(ws, made, r);
    free(ws);
    if (r->ok && made != n)
        bench_fail(r, "started %d of %d workers", made, n);
    r->count = made;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_fig(r, "cpu_ms", first.cpu_ms);
    bench_fig(r, "wakeups", (double)first.wakeups);
    bench_fig(r, "threads_woken", first.threads_woken);
    bench_fig(r, "steady_cpu_ms", steady.cpu_ms);
    bench_fig(r, "steady_wakeups", (double)steady.wakeups);
}

/* --- P14 ----------------------------------------------------------------------- */
/* P1 turned around: a producer worker fires N events (32 bytes copied in)
 * at the main thread, whose root worker is driven by an epoll loop on
 * worker_fd() with worker_update() (embed.h). Figures: the rate, and how
 * many epoll_wait calls and updates it took per 1,000 events (the batching
 * the fd allows). */

#include <sys/epoll.h>
#include <unistd.h>

typedef struct p14_producer {
    worker_t *to;
    long n;
    int errors;
} p14_producer;

static int p14_fire_all(void *arg, void **result)
{
    (void)result;
    p14_producer *p = arg;
    int rc = worker_wait_event("GO", WAIT_LIMIT_S, NULL, NULL);
    if (rc != WORKER_OK)
        return rc;
    bench_msg m;
    for (long i = 0; i < p->n; i++) {
        bench_msg_make(&m, 0, (uint64_t)i);
        if (fire_msg(p->to, "E", &m) != WORKER_OK)
            p->errors++;
    }
    return WORKER_OK;
}

/* The host loop: epoll on the fd until `s` has every event. */
static void p14_drive(int ep, const sink *s, long *waits, long *updates, bench_result *r)
{
    uint64_t give_up = bench_now_ns() + (uint64_t)(WAIT_LIMIT_S * 1e9);
    while (s->check.received < s->expected) {
        struct epoll_event ev;
        if (epoll_wait(ep, &ev, 1, 1000) < 0 || bench_now_ns() > give_up) {
            bench_fail(r, "epoll_wait failed or %llu of %llu events after the limit",
                (unsigned long long)s->check.received, (unsigned long long)s->expected);
            return;
        }
        (*waits)++;
        worker_update();
        (*updates)++;
    }
}

static void p14(const bench_args *a, bench_result *r)
{
    long n = a->count > 0 ? a->count : (a->quick ? 20000 : 2000000);
    worker_t *me = worker_current();
    int fd = worker_fd();
    if (!me || fd < 0) {
        bench_fail(r, "worker_fd: %s", worker_strerror(fd));
        return;
    }
    sink s = { .expected = (uint64_t)n, .notify = me };
    bench_checker_init(&s.check, 1);
    worker_listener_t *l = worker_listen(me, "E", on_event, &s, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    if (!l || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        bench_fail(r, "listen or epoll set-up failed");
        if (ep >= 0)
            close(ep);
        return;
    }
    p14_producer p = { .to = me, .n = n };
    worker_t *w = worker_spawn(p14_fire_all, &p, &(worker_opts) { .name = "producer" });
    if (!w) {
        bench_fail(r, "worker_spawn failed");
        close(ep);
        return;
    }
    long waits = 0, updates = 0;
    uint64_t t0 = bench_now_ns();
    if (worker_fire(w, "GO", NULL) == WORKER_OK)
        p14_drive(ep, &s, &waits, &updates, r);
    else
        bench_fail(r, "GO refused");
    uint64_t t1 = bench_now_ns();
    finish(w, r);
    worker_unlisten(me, l);
    worker_update(); /* DONE, which the sink fired at this thread */
    close(ep);
    if (r->ok && p.errors)
        bench_fail(r, "%d fires failed", p.errors);
    if (r->ok)
        sink_verdict(&s, "worker", r);
    bench_rate_result(r, (long)s.check.received, n, t0, t1);
    bench_fig(r, "epoll_waits_per_1k", 1000.0 * (double)waits / (double)n);
    bench_fig(r, "updates_per_1k", 1000.0 * (double)updates / (double)n);
}

int main(int argc, char **argv)
{
    static const bench_scenario scenarios[] = {
        { "P1", p1 },
        { "P2", p2 },
        { "P3", p3 },
        { "P3p", p3_pooled },
#ifdef BENCH_HAVE_CHANNEL
        { "P4", p4 },
#endif
        { "P5", p5 },
        { "P6a", p6a },
        { "P6b", p6b },
        { "P7", p7 },
        { "P9", bench_pooled_p9 },
        { "P10", bench_pooled_p10 },
        { "P11", bench_pooled_p11 },
        { "P13", p13 },
        { "P14", p14 },
    };
    /* Pooled workers run on as many threads as CAF's and Erlang's schedulers
     * (the default would be one per CPU). */
    int rc = worker_scheduler_threads(BENCH_SCHEDULER_THREADS);
    if (rc != WORKER_OK) {
        fprintf(stderr, "worker_scheduler_threads: %s\n", worker_strerror(rc));
        return 1;
    }
    return bench_main(argc, argv, "worker", scenarios, sizeof scenarios / sizeof *scenarios);
}
