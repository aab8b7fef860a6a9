/* Stress: the pools give idle memory back while other threads allocate.
 *
 * A plain program (no Criterion) so that it also runs under
 * ThreadSanitizer. It reads the pools' statistics, so it links the static
 * library (tests/CMakeLists.txt). Exit status 0 on success; on failure a
 * message on stderr and exit status 1.
 *
 * Each cycle: SENDERS plain pthreads fire N events each (copied payload
 * {sender, seq}) at a worker held in a listener, so that they all queue;
 * then the worker is let go and checks every payload (each sender's seq
 * consecutive, nothing lost or repeated). A trickle thread fires one event
 * every millisecond at a second worker all along, and the cycles are 1.5 s
 * apart: the pools' idle intervals (1 s) pass, the trickle's calls find
 * the idle magazines, and their reaping (a batch per call) runs while the
 * next burst allocates and frees on other threads. At the end, after the
 * trickle has run alone for a while, the pools must hold less than at
 * their peak: reaping did happen.
 *
 * Usage: stress_pool [N per sender] [cycles] */
#include "test_util.h"

#include "wk_pool.h"

#define SENDERS 4

struct msg {
    int sender;
    long seq;
};

struct receiver {
    tu_gate gate; /* holds the worker's loop in on_hold */
    worker_t *main;
    long expected; /* events to check before DRAINED goes to main */
    /* The worker's thread only; main reads them after DRAINED. */
    long next[SENDERS];
    long total;
    long errors;
    char first_error[200];
};

static int on_hold(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct receiver *r = userdata;
    if (tu_gate_pass(&r->gate, 120) != 0 && r->errors++ == 0)
        snprintf(r->first_error, sizeof r->first_error, "the gate never opened");
    return 0;
}

static int on_item(const worker_event_t *e, void *userdata)
{
    struct receiver *r = userdata;
    const struct msg *m = worker_event_data(e);
    if (worker_event_size(e) != sizeof *m || m->sender < 0 || m->sender >= SENDERS) {
        if (r->errors++ == 0)
            snprintf(r->first_error, sizeof r->first_error, "bad payload");
    } else {
        if (m->seq != r->next[m->sender] && r->errors++ == 0)
            snprintf(r->first_error, sizeof r->first_error, "sender %d: got seq %ld, expected %ld",
                m->sender, m->seq, r->next[m->sender]);
        r->next[m->sender] = m->seq + 1;
    }
    if (++r->total == r->expected)
        worker_fire(r->main, "DRAINED", NULL);
    return 0;
}

struct sender {
    int id;
    worker_t *target;
    long from, n;
    long failures;
};

static void *send_burst(void *arg)
{
    struct sender *s = arg;
    for (long i = s->from; i < s->from + s->n; i++) {
        struct msg m = { s->id, i };
        worker_fire_opts fo = { .copy = &m, .copy_size = sizeof m };
        if (worker_fire_ex(s->target, "ITEM", NULL, &fo) != WORKER_OK)
            s->failures++;
    }
    return NULL;
}

struct trickle {
    worker_t *target;
    atomic_bool stop;
    long fired;
};

static void *trickle(void *arg)
{
    struct trickle *tr = arg;
    while (!atomic_load(&tr->stop)) {
        if (worker_fire(tr->target, "TICK", NULL) == WORKER_OK)
            tr->fired++;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static int fail(const char *what, long a, long b)
{
    fprintf(stderr, "stress_pool: %s (%ld, %ld)\n", what, a, b);
    return 1;
}

static size_t pooled(void)
{
    return wk_pool_retained_bytes(WK_POOL_EVENT) + wk_pool_retained_bytes(WK_POOL_QNODE);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 25000;
    int cycles = argc > 2 ? atoi(argv[2]) : 3;
    worker_t *me = tu_main();

    static struct receiver r;
    tu_gate_init(&r.gate);
    r.main = me;
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    static atomic_int ticks;
    worker_t *ticked = worker_spawn(NULL, NULL, NULL);
    if (!w || !ticked || !worker_listen(w, "HOLD", on_hold, &r, NULL)
        || !worker_listen(w, "ITEM", on_item, &r, NULL)
        || !worker_listen(ticked, "TICK", tu_count_listener, &ticks, NULL))
        return fail("set-up failed", 0, 0);

    struct trickle tr = { .target = ticked };
    pthread_t trickler;
    if (pthread_create(&trickler, NULL, trickle, &tr) != 0)
        return fail("pthread_create failed", 0, 0);

    size_t peak = 0;
    for (int c = 0; c < cycles; c++) {
        r.expected += SENDERS * n;
        if (worker_fire(w, "HOLD", NULL) != WORKER_OK)
            return fail("HOLD refused", c, 0);
        struct sender s[SENDERS];
        pthread_t t[SENDERS];
        for (int i = 0; i < SENDERS; i++) {
            s[i] = (struct sender) { .id = i, .target = w, .from = c * n, .n = n };
            if (pthread_create(&t[i], NULL, send_burst, &s[i]) != 0)
                return fail("pthread_create failed", c, i);
        }
        for (int i = 0; i < SENDERS; i++) {
            pthread_join(t[i], NULL);
            if (s[i].failures)
                return fail("fires refused", c, s[i].failures);
        }
        size_t now = pooled();
        if (now > peak)
            peak = now;
        tu_gate_open(&r.gate);
        if (worker_wait_event("DRAINED", 120, w, NULL) != WORKER_OK)
            return fail("the burst did not drain", c, r.total);
        if (r.errors) {
            fprintf(stderr, "stress_pool: cycle %d: %ld errors, first: %s\n", c, r.errors,
                r.first_error);
            return 1;
        }
        if (worker_sleep(1.5) != WORKER_OK) /* the pools' interval: the time is the point */
            return fail("sleep interrupted", c, 0);
    }
    if (worker_sleep(2.0) != WORKER_OK)
        return fail("sleep interrupted", 0, 0);
    atomic_store(&tr.stop, true);
    pthread_join(trickler, NULL);
    size_t end = pooled();
    tu_stop_join_unref(w);
    tu_stop_join_unref(ticked);
    tu_gate_destroy(&r.gate);
    if (r.total != (long)cycles * SENDERS * n)
        return fail("events delivered, expected", r.total, (long)cycles * SENDERS * n);
    if (end >= peak)
        return fail("pooled bytes at the end, at the peak", (long)end, (long)peak);
    printf("stress_pool: %d cycles of %d x %ld events; pools %zu KiB at the peak, %zu KiB at "
           "the end; %ld ticks\n",
        cycles, SENDERS, n, peak / 1024, end / 1024, tr.fired);
    return 0;
}
