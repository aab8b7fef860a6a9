/* libworker-actor's pooled workers (M:N) under BENCH.md Part 2's P9, P10
 * and P11, the same checked work as bench_caf.cpp and bench_erlang.erl.
 *
 * Every worker here is created as the contract says: worker_opts.pooled,
 * a NULL task (it lives until stopped), its listeners added with
 * worker_listen before worker_start, set-up code (skynet) run as
 * worker_later(w, init, arg, 0, NULL). Nothing inside a pooled worker
 * blocks: answers are plain fires at the event's sender; only the main
 * thread (a root worker, not pooled) waits.
 *
 * P9  the main thread spawns N pooled workers with one listener each,
 *     fires one event at each, which answers with a fire back; RSS is read
 *     while all are alive; then every worker is stopped and joined.
 * P10 skynet: every inner worker spawns its 10 children from its set-up and
 *     adds up their sums, stopping each child once it has its sum; every
 *     leaf fires its number at its parent. Timed until the root's sum
 *     reached the main thread and the root (whose children have all been
 *     stopped) has ended.
 * P11 pairs of pooled workers ping-ponging: the pinger fires PING n, the
 *     ponger fires PONG n back, both check the sequence; after the round
 *     trips the pinger fires PAIR_DONE at the main thread.
 *
 * Until the scheduler lands, worker_opts.pooled is ignored and these run as
 * thread workers (one thread each): keep the counts small (--quick). */
#define _GNU_SOURCE
#include "bench_pooled.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <worker/worker.h>

#define WAIT_LIMIT_S 300.0
#define BAD_SEQUENCE UINT64_MAX

static const worker_opts pooled_opts = { .name = "pooled", .pooled = true };

/* --- helpers ---------------------------------------------------------------------- */

static int fire_copy(worker_t *w, const char *name, const void *data, size_t size)
{
    return worker_fire_ex(w, name, NULL, &(worker_fire_opts) { .copy = data, .copy_size = size });
}

/* The event's 8-byte payload, or BAD_SEQUENCE when it has none. */
static uint64_t event_u64(const worker_event_t *e)
{
    const uint64_t *v = worker_event_data(e);
    return worker_event_size(e) == sizeof *v && v ? *v : BAD_SEQUENCE;
}

/* A pooled worker, not started, listening to `event`. NULL on failure. */
static worker_t *new_pooled(const char *event, worker_listener_fn fn, void *userdata)
{
    worker_t *w = worker_new(NULL, NULL, &pooled_opts);
    if (w && !worker_listen(w, event, fn, userdata, NULL)) {
        worker_unref(w);
        return NULL;
    }
    return w;
}

/* Start `w`; on failure give it back and return NULL. */
static worker_t *start_or_drop(worker_t *w)
{
    if (w && worker_start(w) != WORKER_OK) {
        worker_unref(w);
        return NULL;
    }
    return w;
}

/* Stop every worker of `ws`, then join and give back each. */
static void stop_and_release(worker_t **ws, long n, bench_result *r)
{
    for (long i = 0; i < n; i++) {
        int rc = worker_stop(ws[i]);
        if (rc != WORKER_OK)
            bench_fail(r, "worker_stop: %s", worker_strerror(rc));
    }
    for (long i = 0; i < n; i++) {
        int rc = worker_join(ws[i]);
        if (rc != WORKER_OK)
            bench_fail(r, "worker_join: %s", worker_strerror(rc));
        worker_unref(ws[i]);
    }
}

/* Answers counted on the main thread by a listener of its root worker. */
typedef struct tally {
    long wanted, got, good;
    unsigned char *seen; /* P9: each index once */
} tally;

static bool tally_complete(const worker_event_t *e, void *userdata)
{
    (void)e;
    const tally *t = userdata;
    return t->got >= t->wanted;
}

/* Run the main thread's loop until `t` is complete. */
static void await_tally(tally *t, const char *what, bench_result *r)
{
    int rc = tally_complete(NULL, t) ? WORKER_OK
                                     : worker_wait_until(tally_complete, t, WAIT_LIMIT_S, NULL);
    if (rc != WORKER_OK)
        bench_fail(r, "%s: %ld of %ld, then %s", what, t->got, t->wanted, worker_strerror(rc));
    else if (t->good != t->wanted)
        bench_fail(r, "%s: %ld of %ld were right", what, t->good, t->wanted);
}

/* Threads of the process now (/proc/self/task), -1 if unknown. */
static int thread_count(void)
{
    static bench_task_stat tasks[8192];
    return bench_task_stats(tasks, (int)(sizeof tasks / sizeof *tasks));
}

static int on_nothing(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    return 0;
}

/* True when a pooled worker still gets a thread of its own (a build
 * without the scheduler, where worker_opts.pooled is ignored): the first
 * pooled worker starts the scheduler, the next 16 must add no thread. */
static bool pooled_workers_are_threads(void)
{
    enum { PROBES = 16 };
    worker_t *ws[PROBES + 1];
    long made = 0;
    int before = -1, after = -1;
    for (; made <= PROBES; made++) {
        if (made == 1)
            before = thread_count();
        ws[made] = start_or_drop(new_pooled("NOTHING", on_nothing, NULL));
        if (!ws[made])
            break;
    }
    after = thread_count();
    bench_result ignored = { .ok = true };
    stop_and_release(ws, made, &ignored);
    return before >= 0 && after - before >= PROBES;
}

/* Refuse a run of more than THREAD_MODE_MOST workers when they would be
 * threads: a million threads is no benchmark. */
#define THREAD_MODE_MOST 10000L

static bool scale_is_possible(long workers, bench_result *r)
{
    if (workers <= THREAD_MODE_MOST || !pooled_workers_are_threads())
        return true;
    bench_fail(r,
        "%ld workers: pooled workers run as threads in this build (no scheduler); "
        "at most %ld here (--quick, --workers, --count)",
        workers, THREAD_MODE_MOST);
    return false;
}

static double per_item_us(uint64_t t0, uint64_t t1, long n)
{
    return (double)(t1 - t0) / 1e3 / (double)(n ? n : 1);
}

/* --- P9 ----------------------------------------------------------------------------- */

/* One listener per worker: answers its own index (userdata). */
static int on_hello(const worker_event_t *e, void *userdata)
{
    uint64_t index = (uint64_t)(uintptr_t)userdata;
    uint64_t answer = event_u64(e) == index ? index : BAD_SEQUENCE;
    fire_copy(worker_event_target(e), "HELLO_BACK", &answer, sizeof answer);
    return 0;
}

static int on_hello_back(const worker_event_t *e, void *userdata)
{
    tally *t = userdata;
    uint64_t index = event_u64(e);
    t->got++;
    if (index < (uint64_t)t->wanted && !t->seen[index]) {
        t->seen[index] = 1;
        t->good++;
    }
    return 0;
}

static long spawn_hello_workers(worker_t **ws, long n, bench_result *r)
{
    for (long i = 0; i < n; i++) {
        ws[i] = start_or_drop(new_pooled("HELLO", on_hello, (void *)(uintptr_t)i));
        if (!ws[i]) {
            bench_fail(r, "pooled worker %ld: worker_new, worker_listen or worker_start failed", i);
            return i;
        }
    }
    return n;
}

/* Fire HELLO i at worker i and wait for every answer. */
static void greet_all(worker_t **ws, long n, tally *t, bench_result *r)
{
    worker_listener_t *l = worker_listen(worker_current(), "HELLO_BACK", on_hello_back, t, NULL);
    if (!l) {
        bench_fail(r, "worker_listen on the main thread failed");
        return;
    }
    for (long i = 0; i < n && r->ok; i++) {
        uint64_t index = (uint64_t)i;
        int rc = fire_copy(ws[i], "HELLO", &index, sizeof index);
        if (rc != WORKER_OK)
            bench_fail(r, "HELLO %ld: %s", i, worker_strerror(rc));
    }
    if (r->ok)
        await_tally(t, "answers", r);
    worker_unlisten(worker_current(), l);
}

/* Spawn, greet, stop `n` workers; the times of each phase in `t`
 * (start, spawned, answered, stopped) and the RSS/heap while alive. */
typedef struct p9_phases {
    uint64_t t[4];
    long rss_alive, heap_alive;
} p9_phases;

static long hello_round(worker_t **ws, long n, unsigned char *seen, p9_phases *p, bench_result *r)
{
    tally t = { .wanted = n, .seen = seen };
    p->t[0] = bench_now_ns();
    long made = spawn_hello_workers(ws, n, r);
    p->t[1] = bench_now_ns();
    if (r->ok)
        greet_all(ws, made, &t, r);
    p->t[2] = bench_now_ns();
    p->rss_alive = bench_rss_bytes();
    p->heap_alive = bench_heap_bytes();
    stop_and_release(ws, made, r);
    p->t[3] = bench_now_ns();
    return t.good;
}

void bench_pooled_p9(const bench_args *a, bench_result *r)
{
    long n = bench_workers(a);
    if (!scale_is_possible(n, r))
        return;
    worker_t **ws = calloc((size_t)n, sizeof *ws);
    unsigned char *seen = calloc((size_t)n, 1);
    if (!ws || !seen) {
        bench_fail(r, "out of memory");
        goto out;
    }
    /* Touch the bookkeeping (the CAF and Erlang programs keep their
     * handles too) and start the scheduler before the baseline. */
    memset(ws, 0, sizeof *ws * (size_t)n);
    memset(seen, 0, (size_t)n);
    p9_phases warm, p;
    hello_round(ws, 1, seen, &warm, r);
    seen[0] = 0;
    long rss0 = bench_rss_bytes(), heap0 = bench_heap_bytes();
    double cpu0 = bench_cpu_seconds();
    r->count = hello_round(ws, n, seen, &p, r);
    r->elapsed = (double)(p.t[3] - p.t[0]) / 1e9;
    bench_fig(r, "us_per_worker", per_item_us(p.t[0], p.t[3], n));
    bench_fig(r, "rss_bytes_per_worker", (double)(p.rss_alive - rss0) / (double)n);
    bench_fig(r, "heap_bytes_per_worker", (double)(p.heap_alive - heap0) / (double)n);
    bench_fig(r, "spawn_us_per_worker", per_item_us(p.t[0], p.t[1], n));
    bench_fig(r, "stop_us_per_worker", per_item_us(p.t[2], p.t[3], n));
    bench_fig(r, "cpu_s", bench_cpu_seconds() - cpu0);
out:
    free(seen);
    free(ws);
}

/* --- P10: skynet ------------------------------------------------------------------------ */

/* The tree in one array, heap-ordered: node i's children are 10i+1 ..
 * 10i+10, its parent (i-1)/10; nodes 0 .. inner-1 have children, the
 * others are leaves, numbered i - inner. */
typedef struct skynet_tree skynet_tree;

typedef struct skynet_node {
    skynet_tree *tree;
    worker_t *w; /* set by the parent before the node's set-up runs */
    uint64_t sum; /* of the children's answers so far */
    int pending; /* children not heard from */
} skynet_node;

struct skynet_tree {
    skynet_node *nodes;
    long count, inner;
    worker_t *main;
    atomic_long failures;
};

typedef struct skynet_answer {
    uint64_t from; /* node index */
    uint64_t sum;
} skynet_answer;

static long node_index(const skynet_node *n)
{
    return (long)(n - n->tree->nodes);
}

static void answer_parent(skynet_node *n, uint64_t sum)
{
    long i = node_index(n);
    worker_t *parent = i == 0 ? n->tree->main : n->tree->nodes[(i - 1) / 10].w;
    skynet_answer answer = { .from = (uint64_t)i, .sum = sum };
    if (fire_copy(parent, "SUM", &answer, sizeof answer) != WORKER_OK)
        atomic_fetch_add(&n->tree->failures, 1);
}

static int on_child_sum(const worker_event_t *e, void *userdata);
static void skynet_setup(void *arg);

/* Create node i's pooled worker, start it and queue its set-up. */
static bool spawn_node(skynet_tree *tree, long i)
{
    skynet_node *n = &tree->nodes[i];
    bool inner = i < tree->inner;
    n->w = inner ? new_pooled("SUM", on_child_sum, n) : worker_new(NULL, NULL, &pooled_opts);
    n->w = start_or_drop(n->w);
    if (!n->w)
        return false;
    if (worker_later(n->w, skynet_setup, n, 0, NULL) != WORKER_OK) {
        worker_stop(n->w);
        worker_unref(n->w);
        n->w = NULL;
        return false;
    }
    return true;
}

/* Runs on the node's own worker: a leaf answers its number, an inner node
 * spawns its children (their answers come to on_child_sum). */
static void skynet_setup(void *arg)
{
    skynet_node *n = arg;
    skynet_tree *tree = n->tree;
    long i = node_index(n);
    if (i >= tree->inner) {
        answer_parent(n, (uint64_t)(i - tree->inner));
        return;
    }
    for (long c = 10 * i + 1; c <= 10 * i + 10; c++) {
        if (spawn_node(tree, c))
            n->pending++;
        else
            atomic_fetch_add(&tree->failures, 1);
    }
    if (n->pending == 0)
        answer_parent(n, 0);
}

static int on_child_sum(const worker_event_t *e, void *userdata)
{
    skynet_node *n = userdata;
    skynet_tree *tree = n->tree;
    const skynet_answer *answer = worker_event_data(e);
    long first_child = 10 * node_index(n) + 1;
    if (worker_event_size(e) != sizeof *answer || !answer || (long)answer->from < first_child
        || (long)answer->from >= first_child + 10) {
        atomic_fetch_add(&tree->failures, 1);
        return 0;
    }
    skynet_node *child = &tree->nodes[answer->from];
    worker_stop(child->w);
    worker_unref(child->w);
    child->w = NULL;
    n->sum += answer->sum;
    if (--n->pending == 0)
        answer_parent(n, n->sum);
    return 0;
}

/* Spawn the root and wait for its answer: the total, or BAD_SEQUENCE. */
static uint64_t run_skynet(skynet_tree *tree, bench_result *r)
{
    if (!spawn_node(tree, 0)) {
        bench_fail(r, "the root worker did not start");
        return BAD_SEQUENCE;
    }
    worker_t *root = tree->nodes[0].w;
    void *data = NULL;
    int rc = worker_wait_event("SUM", WAIT_LIMIT_S, root, &data);
    uint64_t total = rc == WORKER_OK && data ? ((const skynet_answer *)data)->sum : BAD_SEQUENCE;
    if (rc != WORKER_OK)
        bench_fail(r, "waiting for the root's sum: %s", worker_strerror(rc));
    stop_and_release(&root, 1, r);
    return total;
}

void bench_pooled_p10(const bench_args *a, bench_result *r)
{
    long leaves = bench_count(a);
    if (bench_skynet_levels(leaves) < 0) {
        bench_fail(r, "--count %ld: the leaves must be a power of 10", leaves);
        return;
    }
    skynet_tree tree = { .count = bench_skynet_nodes(leaves), .main = worker_current() };
    if (!scale_is_possible(tree.count, r))
        return;
    tree.inner = tree.count - leaves;
    atomic_init(&tree.failures, 0);
    tree.nodes = calloc((size_t)tree.count, sizeof *tree.nodes);
    if (!tree.nodes) {
        bench_fail(r, "out of memory");
        return;
    }
    for (long i = 0; i < tree.count; i++)
        tree.nodes[i].tree = &tree;
    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    uint64_t total = run_skynet(&tree, r);
    uint64_t t1 = bench_now_ns();
    long failures = atomic_load(&tree.failures);
    if (r->ok && failures)
        bench_fail(r, "%ld workers failed to spawn or to answer", failures);
    else if (r->ok && total != bench_skynet_sum(leaves))
        bench_fail(r, "sum %llu, expected %llu", (unsigned long long)total,
            (unsigned long long)bench_skynet_sum(leaves));
    free(tree.nodes);
    r->count = r->ok ? leaves : 0;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_fig(r, "seconds", r->elapsed);
    bench_fig(r, "actors", (double)tree.count);
    bench_fig(r, "cpu_s", bench_cpu_seconds() - cpu0);
}

/* --- P11: ping-pong pairs ---------------------------------------------------------------- */

typedef struct ponger_state {
    uint64_t expected;
} ponger_state;

typedef struct pinger_state {
    worker_t *partner;
    worker_t *report_to; /* the sender of GO */
    uint64_t next, rounds;
    bool in_order;
} pinger_state;

static int on_ping(const worker_event_t *e, void *userdata)
{
    ponger_state *st = userdata;
    uint64_t seq = event_u64(e);
    uint64_t answer = seq == st->expected ? seq : BAD_SEQUENCE;
    st->expected++;
    fire_copy(worker_event_target(e), "PONG", &answer, sizeof answer);
    return 0;
}

static void report_pair(pinger_state *st)
{
    uint64_t in_order = st->in_order;
    fire_copy(st->report_to, "PAIR_DONE", &in_order, sizeof in_order);
}

static void send_ping(pinger_state *st)
{
    if (fire_copy(st->partner, "PING", &st->next, sizeof st->next) != WORKER_OK) {
        st->in_order = false;
        report_pair(st); /* the pair cannot go on: say so now */
    }
}

static int on_go(const worker_event_t *e, void *userdata)
{
    pinger_state *st = userdata;
    st->report_to = worker_event_target(e);
    send_ping(st);
    return 0;
}

static int on_pong(const worker_event_t *e, void *userdata)
{
    pinger_state *st = userdata;
    if (event_u64(e) != st->next)
        st->in_order = false;
    if (++st->next < st->rounds)
        send_ping(st);
    else
        report_pair(st);
    return 0;
}

static int on_pair_done(const worker_event_t *e, void *userdata)
{
    tally *t = userdata;
    t->got++;
    t->good += event_u64(e) == 1;
    return 0;
}

typedef struct pairs {
    long count;
    worker_t **workers; /* pinger i at 2i, its ponger at 2i + 1 */
    pinger_state *pingers;
    ponger_state *pongers;
} pairs;

static worker_t *spawn_pinger(pinger_state *st)
{
    worker_t *w = new_pooled("PONG", on_pong, st);
    if (w && !worker_listen(w, "GO", on_go, st, NULL)) {
        worker_unref(w);
        return NULL;
    }
    return start_or_drop(w);
}

/* Spawn every pair; returns how many workers started (in p->workers). */
static long spawn_pairs(pairs *p, uint64_t rounds, bench_result *r)
{
    for (long i = 0; i < p->count; i++) {
        worker_t *ponger = start_or_drop(new_pooled("PING", on_ping, &p->pongers[i]));
        if (!ponger) {
            bench_fail(r, "ponger %ld did not start", i);
            return 2 * i;
        }
        p->workers[2 * i + 1] = ponger;
        p->pingers[i] = (pinger_state) { .partner = ponger, .rounds = rounds, .in_order = true };
        p->workers[2 * i] = spawn_pinger(&p->pingers[i]);
        if (!p->workers[2 * i]) {
            p->workers[2 * i] = ponger; /* keep the started ones first */
            bench_fail(r, "pinger %ld did not start", i);
            return 2 * i + 1;
        }
    }
    return 2 * p->count;
}

/* Fire GO at every pinger and wait for every PAIR_DONE. */
static void play_pairs(pairs *p, bench_result *r)
{
    tally t = { .wanted = p->count };
    worker_listener_t *l = worker_listen(worker_current(), "PAIR_DONE", on_pair_done, &t, NULL);
    if (!l) {
        bench_fail(r, "worker_listen on the main thread failed");
        return;
    }
    for (long i = 0; i < p->count && r->ok; i++) {
        int rc = worker_fire(p->workers[2 * i], "GO", NULL);
        if (rc != WORKER_OK)
            bench_fail(r, "GO %ld: %s", i, worker_strerror(rc));
    }
    if (r->ok)
        await_tally(&t, "pairs in order", r);
    worker_unlisten(worker_current(), l);
}

void bench_pooled_p11(const bench_args *a, bench_result *r)
{
    long rounds = bench_count(a);
    pairs p = { .count = bench_workers(a) };
    if (!scale_is_possible(2 * p.count, r))
        return;
    p.workers = calloc((size_t)(2 * p.count), sizeof *p.workers);
    p.pingers = calloc((size_t)p.count, sizeof *p.pingers);
    p.pongers = calloc((size_t)p.count, sizeof *p.pongers);
    if (!p.workers || !p.pingers || !p.pongers) {
        bench_fail(r, "out of memory");
        goto out;
    }
    long started = spawn_pairs(&p, (uint64_t)rounds, r);
    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    if (r->ok)
        play_pairs(&p, r);
    uint64_t t1 = bench_now_ns();
    double cpu = bench_cpu_seconds() - cpu0;
    stop_and_release(p.workers, started, r);
    double messages = 2.0 * (double)p.count * (double)rounds;
    r->count = r->ok ? (long)messages : 0;
    r->elapsed = (double)(t1 - t0) / 1e9;
    bench_fig(r, "messages_per_s", messages / r->elapsed);
    bench_fig(r, "pairs", (double)p.count);
    bench_fig(r, "cpu_s", cpu);
out:
    free(p.pongers);
    free(p.pingers);
    free(p.workers);
}
