/* Stress: 100,000 pooled workers, 8 plain sender threads.
 *
 * A plain program (no Criterion) so that it also runs under
 * ThreadSanitizer. Exit status 0 on success; on failure a message on stderr
 * and exit status 1.
 *
 * Each sender fires a stream of sequence-numbered events (data: sender and
 * seq packed in the pointer) at workers it picks at random. Every worker's
 * listener checks that the seqs of each sender arrive in increasing order
 * (order per sender and receiver), and marks (sender, seq) as handled in a
 * table: a second mark is a duplicate. When every event has been handled
 * the main thread is told (ACK, test_util.h); then every worker is stopped
 * and joined. At the end: nothing lost (every mark set, total = senders x
 * events), nothing handled twice, no order broken, no fire refused.
 *
 * Phase 2 (stops racing with fires): PHASE2_WORKERS pooled workers; the
 * 8 senders fire events / 5 each at random ones while the main thread
 * stops them one by one; the senders keep pace with the stops (so the
 * stops spread over the first half of the stream; the rest is fired at
 * stopped workers). A fire returns WORKER_OK (then the event must be handled exactly
 * once, in order per sender, before the worker's end) or WORKER_EREJECTED
 * (the worker had closed); per (sender, worker) the accepted count must
 * equal the handled count.
 *
 * The listeners run on the scheduler's threads, one at a time per worker,
 * so a worker's `last` array needs no lock (TSan checks that claim too).
 *
 * Usage: stress_pooled [workers] [events per sender]
 * Defaults: 100,000 workers and 100,000 events per sender (TSan: 10,000
 * workers and 20,000 events, to stay well under a minute; ASan: 50,000
 * events). Environment: WORKER_STRESS_POOLED_WORKERS, WORKER_STRESS_N. */
#include "test_util.h"

#include <sched.h>

#define SENDERS 8
#define SEQ_BITS 40
#define PHASE2_WORKERS 2000

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_WORKERS 10000L
#define DEFAULT_EVENTS 20000L
#elif defined(__SANITIZE_ADDRESS__)
#define DEFAULT_WORKERS 100000L
#define DEFAULT_EVENTS 50000L
#else
#define DEFAULT_WORKERS 100000L
#define DEFAULT_EVENTS 100000L
#endif

struct wstate {
    long last[SENDERS]; /* the last seq seen from each sender; the worker's own */
    long order_errors;
    long handled;
};

static struct wstate *states;
static worker_t **workers;
static long n_workers, n_events;
static _Atomic unsigned char *marks; /* [sender * n_events + seq] */
static atomic_long duplicates, bad_data, total;
static worker_t *main_w;

static int on_event(const worker_event_t *e, void *userdata)
{
    struct wstate *s = userdata;
    uintptr_t v = (uintptr_t)worker_event_data(e);
    long sender = (long)(v >> SEQ_BITS);
    long seq = (long)(v & (((uintptr_t)1 << SEQ_BITS) - 1));
    if (sender < 0 || sender >= SENDERS || seq >= n_events) {
        atomic_fetch_add(&bad_data, 1);
        return 0;
    }
    if (seq <= s->last[sender])
        s->order_errors++;
    s->last[sender] = seq;
    s->handled++;
    if (atomic_exchange(&marks[sender * n_events + seq], 1) != 0)
        atomic_fetch_add(&duplicates, 1);
    if (atomic_fetch_add(&total, 1) + 1 == SENDERS * n_events)
        tu_ack(main_w, 1);
    return 0;
}

struct sender {
    pthread_t thread;
    long id;
    long refused;
    int first_rc;
    pthread_barrier_t *go;
};

static void *send_stream(void *arg)
{
    struct sender *s = arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(s->id + 1); /* xorshift64 */
    pthread_barrier_wait(s->go);
    for (long seq = 0; seq < n_events; seq++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        worker_t *to = workers[x % (uint64_t)n_workers];
        uintptr_t v = ((uintptr_t)s->id << SEQ_BITS) | (uintptr_t)seq;
        int rc = worker_fire(to, "SEQ", (void *)v);
        if (rc != WORKER_OK && s->refused++ == 0)
            s->first_rc = rc;
    }
    return NULL;
}

/* ---- phase 2 ---- */

struct p2worker {
    long last[SENDERS];
    long handled[SENDERS];
    long order_errors;
};

static struct p2worker *p2;
static worker_t **p2w;
static long p2_events; /* per sender */
static atomic_long p2_stopped; /* workers the main thread has stopped */

static int on_p2(const worker_event_t *e, void *userdata)
{
    struct p2worker *s = userdata;
    uintptr_t v = (uintptr_t)worker_event_data(e);
    long sender = (long)(v >> SEQ_BITS);
    long seq = (long)(v & (((uintptr_t)1 << SEQ_BITS) - 1));
    if (sender < 0 || sender >= SENDERS) {
        atomic_fetch_add(&bad_data, 1);
        return 0;
    }
    if (seq <= s->last[sender])
        s->order_errors++;
    s->last[sender] = seq;
    s->handled[sender]++;
    return 0;
}

struct p2sender {
    pthread_t thread;
    long id;
    long *accepted; /* per worker */
    long other_rc;
    int first_other;
    pthread_barrier_t *go;
};

static void *p2_send(void *arg)
{
    struct p2sender *s = arg;
    uint64_t x = 0x2545f4914f6cdd1dull * (uint64_t)(s->id + 1);
    pthread_barrier_wait(s->go);
    for (long seq = 0; seq < p2_events; seq++) {
        /* Keep pace with the stops: over the first half of the stream the
         * stops go from the first worker to the last. */
        long need = seq * 2 * PHASE2_WORKERS / p2_events;
        while (atomic_load_explicit(&p2_stopped, memory_order_relaxed)
            < (need < PHASE2_WORKERS ? need : PHASE2_WORKERS))
            sched_yield();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long i = (long)(x % PHASE2_WORKERS);
        uintptr_t v = ((uintptr_t)s->id << SEQ_BITS) | (uintptr_t)seq;
        int rc = worker_fire(p2w[i], "SEQ", (void *)v);
        if (rc == WORKER_OK)
            s->accepted[i]++;
        else if (rc != WORKER_EREJECTED && s->other_rc++ == 0)
            s->first_other = rc;
    }
    return NULL;
}

static int phase2(void)
{
    p2 = calloc(PHASE2_WORKERS, sizeof *p2);
    p2w = calloc(PHASE2_WORKERS, sizeof *p2w);
    struct p2sender senders[SENDERS];
    if (!p2 || !p2w)
        return 1;
    worker_opts o = { .name = "phase2", .pooled = true };
    for (long i = 0; i < PHASE2_WORKERS; i++) {
        for (int k = 0; k < SENDERS; k++)
            p2[i].last[k] = -1;
        p2w[i] = worker_new(NULL, NULL, &o);
        if (!p2w[i] || !worker_listen(p2w[i], "SEQ", on_p2, &p2[i], NULL)
            || worker_start(p2w[i]) != WORKER_OK)
            return 1;
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, SENDERS + 1);
    for (int k = 0; k < SENDERS; k++) {
        senders[k] = (struct p2sender) { .id = k, .go = &go };
        senders[k].accepted = calloc(PHASE2_WORKERS, sizeof(long));
        if (!senders[k].accepted
            || pthread_create(&senders[k].thread, NULL, p2_send, &senders[k]) != 0)
            return 1;
    }
    pthread_barrier_wait(&go);
    /* Stop them one by one while the senders fire (they keep pace). */
    for (long i = 0; i < PHASE2_WORKERS; i++) {
        if (worker_stop(p2w[i]) != WORKER_OK)
            return 1;
        atomic_fetch_add(&p2_stopped, 1);
    }
    for (int k = 0; k < SENDERS; k++)
        pthread_join(senders[k].thread, NULL);
    pthread_barrier_destroy(&go);
    long mismatches = 0, order_errors = 0, accepted = 0, other = 0, fired = SENDERS * p2_events;
    for (long i = 0; i < PHASE2_WORKERS; i++) {
        if (worker_join(p2w[i]) != WORKER_OK)
            return 1;
        order_errors += p2[i].order_errors;
        for (int k = 0; k < SENDERS; k++) {
            accepted += senders[k].accepted[i];
            if (senders[k].accepted[i] != p2[i].handled[k] && mismatches++ < 5)
                fprintf(stderr,
                    "stress_pooled: phase 2: worker %ld, sender %d: %ld accepted, %ld handled\n", i,
                    k, senders[k].accepted[i], p2[i].handled[k]);
        }
        worker_unref(p2w[i]);
    }
    for (int k = 0; k < SENDERS; k++) {
        if (senders[k].other_rc) {
            fprintf(stderr, "stress_pooled: phase 2: sender %d: %ld fires failed with %s\n", k,
                senders[k].other_rc, worker_err_name(senders[k].first_other));
            other += senders[k].other_rc;
        }
        free(senders[k].accepted);
    }
    printf("stress_pooled: phase 2: %d workers stopped under fire, %ld of %ld fires accepted\n",
        PHASE2_WORKERS, accepted, fired);
    free(p2);
    free(p2w);
    if (mismatches)
        fprintf(stderr, "stress_pooled: phase 2: %ld (sender, worker) pairs lost or duplicated\n",
            mismatches);
    if (order_errors)
        fprintf(stderr, "stress_pooled: phase 2: %ld out of order\n", order_errors);
    return mismatches || order_errors || other ? 1 : 0;
}

static long arg_or_env(int argc, char **argv, int i, const char *env, long dflt)
{
    if (argc > i)
        return atol(argv[i]);
    const char *e = getenv(env);
    return e ? atol(e) : dflt;
}

static int fail(const char *what)
{
    fprintf(stderr, "stress_pooled: FAILED: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    n_workers = arg_or_env(argc, argv, 1, "WORKER_STRESS_POOLED_WORKERS", DEFAULT_WORKERS);
    n_events = arg_or_env(argc, argv, 2, "WORKER_STRESS_N", DEFAULT_EVENTS);
    if (n_workers < 1 || n_events < 1)
        return fail("bad arguments");
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_w = worker_current();
    double t0 = tu_now();

    states = calloc((size_t)n_workers, sizeof *states);
    workers = calloc((size_t)n_workers, sizeof *workers);
    marks = calloc((size_t)(SENDERS * n_events), sizeof *marks);
    if (!states || !workers || !marks)
        return fail("out of memory");
    worker_opts o = { .name = "pooled", .pooled = true };
    for (long i = 0; i < n_workers; i++) {
        for (int k = 0; k < SENDERS; k++)
            states[i].last[k] = -1;
        workers[i] = worker_new(NULL, NULL, &o);
        if (!workers[i])
            return fail("worker_new");
        if (!worker_listen(workers[i], "SEQ", on_event, &states[i], NULL))
            return fail("worker_listen");
        if (worker_start(workers[i]) != WORKER_OK)
            return fail("worker_start");
    }
    double t1 = tu_now();

    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, SENDERS);
    struct sender senders[SENDERS];
    for (int k = 0; k < SENDERS; k++) {
        senders[k] = (struct sender) { .id = k, .go = &go };
        if (pthread_create(&senders[k].thread, NULL, send_stream, &senders[k]) != 0)
            return fail("pthread_create");
    }
    for (int k = 0; k < SENDERS; k++)
        pthread_join(senders[k].thread, NULL);
    pthread_barrier_destroy(&go);
    int rc = 0;
    for (int k = 0; k < SENDERS; k++) {
        if (senders[k].refused) {
            fprintf(stderr, "stress_pooled: sender %d: %ld fires refused (first: %s)\n", k,
                senders[k].refused, worker_err_name(senders[k].first_rc));
            rc = 1;
        }
    }
    if (rc)
        return fail("fires refused");
    if (worker_wait_event(TU_ACK, 240, NULL, NULL) != WORKER_OK) {
        fprintf(stderr, "stress_pooled: %ld of %ld events handled after 240 s\n",
            atomic_load(&total), SENDERS * n_events);
        return fail("events lost (or far too slow)");
    }
    double t2 = tu_now();

    for (long i = 0; i < n_workers; i++)
        if (worker_stop(workers[i]) != WORKER_OK)
            return fail("worker_stop");
    long still_running = 0, handled = 0, order_errors = 0;
    for (long i = 0; i < n_workers; i++) {
        if (worker_join(workers[i]) != WORKER_OK)
            return fail("worker_join");
        still_running += worker_is_running(workers[i]);
        worker_unref(workers[i]);
        handled += states[i].handled; /* after the join: the worker's writes are visible */
        order_errors += states[i].order_errors;
    }
    double t3 = tu_now();

    long missing = 0;
    for (long i = 0; i < SENDERS * n_events; i++)
        missing += atomic_load(&marks[i]) == 0;
    printf("stress_pooled: %ld workers, %d senders x %ld events: spawn %.2f s, fire+handle "
           "%.2f s (%.2f M events/s), stop+join %.2f s\n",
        n_workers, SENDERS, n_events, t1 - t0, t2 - t1, SENDERS * n_events / (t2 - t1) / 1e6,
        t3 - t2);
    if (still_running)
        rc = fail("workers still running after their join");
    if (handled != SENDERS * n_events || atomic_load(&total) != SENDERS * n_events) {
        fprintf(stderr, "stress_pooled: handled %ld (counted %ld), expected %ld\n", handled,
            atomic_load(&total), SENDERS * n_events);
        rc = fail("wrong number of events handled");
    }
    if (missing) {
        fprintf(stderr, "stress_pooled: %ld events never handled\n", missing);
        rc = fail("events lost");
    }
    if (atomic_load(&duplicates)) {
        fprintf(stderr, "stress_pooled: %ld events handled twice\n", atomic_load(&duplicates));
        rc = fail("duplicates");
    }
    if (order_errors) {
        fprintf(stderr, "stress_pooled: %ld events out of order per sender\n", order_errors);
        rc = fail("order per sender");
    }
    if (atomic_load(&bad_data))
        rc = fail("bad event data");
    free(states);
    free(workers);
    free((void *)marks);
    p2_events
        = n_events / 5 > PHASE2_WORKERS ? n_events / 5 : PHASE2_WORKERS; /* 8 x 20,000 by default */

    if (phase2() != 0)
        rc = fail("phase 2: stops racing with fires");
    if (rc == 0)
        printf("stress_pooled: OK\n");
    return rc;
}
