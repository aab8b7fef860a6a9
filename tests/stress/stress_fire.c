/* Stress: 8 plain pthreads fire at one worker.
 *
 * A plain program (no Criterion) so that it also runs under
 * ThreadSanitizer. Exit status 0 on success; on failure a message on stderr
 * and exit status 1.
 *
 * Phase 1: each sender fires N events (copied payload {sender, seq}); the
 *   worker's listener checks that every sender's seq is consecutive (order
 *   kept, nothing lost or duplicated in between). After stop + join: total
 *   == 8 * N and every sender's last seq == N - 1.
 * Phase 2 (several rounds): the senders fire until refused while sender 0
 *   stops the worker after its 2000th event; every accepted event (WORKER_OK) must have
 *   been delivered exactly once, in order, and the refusal must be
 *   WORKER_EREJECTED.
 *
 * Usage: stress_fire [N per sender] [phase-2 rounds]
 * N defaults to 50000 (env WORKER_STRESS_N overrides the default). */
#include "test_util.h"

#define SENDERS 8

struct msg {
    int sender;
    long seq;
};

struct receiver {
    /* Touched only on the worker's thread (listener), read by main after
     * join. */
    long next[SENDERS];
    long delivered[SENDERS];
    long total;
    long errors;
    long bad_size;
    char first_error[200];
};

static int check_listener(const worker_event_t *e, void *userdata)
{
    struct receiver *r = userdata;
    const struct msg *m = worker_event_data(e);
    if (worker_event_size(e) != sizeof *m || m == NULL) {
        r->bad_size++;
        return 0;
    }
    if (m->sender < 0 || m->sender >= SENDERS) {
        if (r->errors++ == 0)
            snprintf(r->first_error, sizeof r->first_error, "bad sender %d", m->sender);
        return 0;
    }
    if (m->seq != r->next[m->sender]) {
        if (r->errors++ == 0)
            snprintf(r->first_error, sizeof r->first_error, "sender %d: got seq %ld, expected %ld",
                m->sender, m->seq, r->next[m->sender]);
    }
    r->next[m->sender] = m->seq + 1;
    r->delivered[m->sender]++;
    r->total++;
    return 0;
}

struct sender {
    int id;
    worker_t *target;
    long n; /* phase 1: events to fire; phase 2: unused */
    long accepted;
    int last_rc;
    long failures; /* phase 1: non-OK fires */
    pthread_barrier_t *barrier;
};

static void *phase1_sender(void *arg)
{
    struct sender *s = arg;
    pthread_barrier_wait(s->barrier);
    for (long i = 0; i < s->n; i++) {
        struct msg m = { s->id, i };
        worker_fire_opts fo = { .copy = &m, .copy_size = sizeof m };
        int rc = worker_fire_ex(s->target, "S", NULL, &fo);
        if (rc != WORKER_OK) {
            s->failures++;
            s->last_rc = rc;
        } else {
            s->accepted++;
        }
    }
    return NULL;
}

static void *phase2_sender(void *arg)
{
    struct sender *s = arg;
    pthread_barrier_wait(s->barrier);
    for (long i = 0;; i++) {
        struct msg m = { s->id, i };
        worker_fire_opts fo = { .copy = &m, .copy_size = sizeof m };
        int rc = worker_fire_ex(s->target, "S", NULL, &fo);
        if (rc != WORKER_OK) {
            s->last_rc = rc;
            break;
        }
        s->accepted++;
        /* Sender 0 stops the worker while all senders are in full flight
         * (a sender, not main: main could be starved of CPU for long). */
        if (s->id == 0 && i == 2000)
            worker_stop(s->target);
    }
    return NULL;
}

static int fail(const char *phase, const char *fmt, long a, long b)
{
    fprintf(stderr, "stress_fire: %s: ", phase);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static int phase1(long n)
{
    static struct receiver r;
    memset(&r, 0, sizeof r);
    worker_t *w = worker_new(NULL, NULL, NULL);
    if (w == NULL)
        return fail("phase 1", "worker_new failed%ld%ld", 0, 0);
    if (worker_listen(w, "S", check_listener, &r, NULL) == NULL)
        return fail("phase 1", "worker_listen failed%ld%ld", 0, 0);
    if (worker_start(w) != WORKER_OK)
        return fail("phase 1", "worker_start failed%ld%ld", 0, 0);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, SENDERS);
    struct sender s[SENDERS];
    pthread_t t[SENDERS];
    double t0 = tu_now();
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct sender) { .id = i, .target = w, .n = n, .barrier = &barrier };
        if (pthread_create(&t[i], NULL, phase1_sender, &s[i]) != 0)
            return fail("phase 1", "pthread_create failed%ld%ld", 0, 0);
    }
    for (int i = 0; i < SENDERS; i++)
        pthread_join(t[i], NULL);
    worker_stop(w);
    worker_join(w);
    double dt = tu_now() - t0;
    pthread_barrier_destroy(&barrier);

    int bad = 0;
    for (int i = 0; i < SENDERS; i++)
        if (s[i].failures != 0)
            bad |= fail("phase 1", "sender %ld: fire failed, last code %ld", i, s[i].last_rc);
    if (r.bad_size)
        bad |= fail("phase 1", "%ld events with a wrong size or NULL data%ld", r.bad_size, 0);
    if (r.errors) {
        fprintf(
            stderr, "stress_fire: phase 1: %ld order errors, first: %s\n", r.errors, r.first_error);
        bad = 1;
    }
    if (r.total != SENDERS * n)
        bad |= fail("phase 1", "delivered %ld events, expected %ld", r.total, SENDERS * n);
    for (int i = 0; i < SENDERS; i++) {
        if (r.next[i] - 1 != n - 1)
            bad |= fail("phase 1", "sender %ld: last seq %ld", i, r.next[i] - 1);
        if (r.delivered[i] != n)
            bad |= fail("phase 1", "sender %ld: delivered %ld", i, r.delivered[i]);
    }
    worker_unref(w);
    if (!bad)
        printf("stress_fire: phase 1: %d x %ld events in %.2f s (%.0f events/s)\n", SENDERS, n, dt,
            (double)(SENDERS * n) / dt);
    return bad;
}

static int phase2_round(int round)
{
    static struct receiver r;
    memset(&r, 0, sizeof r);
    worker_t *w = worker_new(NULL, NULL, NULL);
    if (w == NULL || worker_listen(w, "S", check_listener, &r, NULL) == NULL
        || worker_start(w) != WORKER_OK)
        return fail("phase 2", "setup failed in round %ld%ld", round, 0);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, SENDERS);
    struct sender s[SENDERS];
    pthread_t t[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct sender) { .id = i, .target = w, .barrier = &barrier };
        if (pthread_create(&t[i], NULL, phase2_sender, &s[i]) != 0)
            return fail("phase 2", "pthread_create failed%ld%ld", 0, 0);
    }
    for (int i = 0; i < SENDERS; i++)
        pthread_join(t[i], NULL);
    worker_join(w);
    pthread_barrier_destroy(&barrier);

    int bad = 0;
    long accepted = 0;
    for (int i = 0; i < SENDERS; i++) {
        accepted += s[i].accepted;
        if (s[i].last_rc != WORKER_EREJECTED)
            bad |= fail("phase 2", "sender %ld: refused with %ld, expected WORKER_EREJECTED", i,
                s[i].last_rc);
        if (r.delivered[i] != s[i].accepted)
            bad |= fail("phase 2", "accepted %ld but delivered %ld", s[i].accepted, r.delivered[i]);
        if (r.next[i] != s[i].accepted)
            bad |= fail(
                "phase 2", "last seq delivered %ld, accepted %ld", r.next[i] - 1, s[i].accepted);
    }
    if (r.errors) {
        fprintf(
            stderr, "stress_fire: phase 2: %ld order errors, first: %s\n", r.errors, r.first_error);
        bad = 1;
    }
    if (r.bad_size)
        bad |= fail("phase 2", "%ld events with a wrong size or NULL data%ld", r.bad_size, 0);
    if (r.total != accepted)
        bad |= fail("phase 2", "delivered %ld, accepted %ld", r.total, accepted);
    worker_unref(w);
    if (!bad)
        printf(
            "stress_fire: phase 2 round %d: %ld accepted, all delivered once\n", round, accepted);
    return bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* progress survives a sanitizer's abort */
    long n = 50000;
    int rounds = 5;
    const char *env = getenv("WORKER_STRESS_N");
    if (env != NULL && atol(env) > 0)
        n = atol(env);
    if (argc > 1 && atol(argv[1]) > 0)
        n = atol(argv[1]);
    if (argc > 2 && atoi(argv[2]) > 0)
        rounds = atoi(argv[2]);

    int bad = phase1(n);
    for (int i = 0; i < rounds && !bad; i++)
        bad |= phase2_round(i);
    if (bad) {
        fprintf(stderr, "stress_fire: FAILED\n");
        return 1;
    }
    printf("stress_fire: OK\n");
    return 0;
}
