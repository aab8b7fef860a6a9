/* Stress: 4 plain pthreads fire with .wait < 0 into a worker whose mailbox
 * holds 4 user events, and 2 more fire with .wait = 1 ms (which may run
 * out: those refusals must be reported, never lost).
 *
 * A plain program (no Criterion) so that it also runs under
 * ThreadSanitizer. Exit status 0 on success; on failure a message on stderr
 * and exit status 1.
 *
 * Checks: every accepted event is delivered exactly once, per-sender order
 * is kept (seqs of accepted events strictly increase), the forever senders
 * never see a refusal, and worker_stats agrees: accepted == handled ==
 * delivered, refused == the short senders' refusals, queued_max <= 4.
 *
 * Usage: stress_backpressure [N per sender] (env WORKER_STRESS_N). */
#include "test_util.h"

#define FOREVER 4
#define SHORT 2
#define SENDERS (FOREVER + SHORT)
#define LIMIT 4

struct msg {
    int sender;
    long seq;
};

struct receiver {
    /* Listener's thread only; read by main after join. */
    long last[SENDERS];
    long delivered;
    long errors;
};

struct sender {
    worker_t *to;
    int id;
    long n;
    long accepted;
    long refused;
    long errors;
};

static int on_msg(const worker_event_t *e, void *userdata)
{
    struct receiver *r = userdata;
    const struct msg *m = worker_event_data(e);
    if (m->sender < 0 || m->sender >= SENDERS || m->seq <= r->last[m->sender])
        r->errors++;
    else
        r->last[m->sender] = m->seq;
    r->delivered++;
    return 0;
}

static void *send_all(void *arg)
{
    struct sender *s = arg;
    worker_fire_opts fo = { .copy_size = sizeof(struct msg), .wait = s->id < FOREVER ? -1 : 0.001 };
    for (long i = 0; i < s->n; i++) {
        struct msg m = { s->id, i };
        fo.copy = &m;
        int rc = worker_fire_ex(s->to, "M", NULL, &fo);
        if (rc == WORKER_OK)
            s->accepted++;
        else if (rc == WORKER_EFULL && s->id >= FOREVER)
            s->refused++;
        else
            s->errors++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : getenv("WORKER_STRESS_N") ? atol(getenv("WORKER_STRESS_N")) : 20000;
    struct receiver r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < SENDERS; i++)
        r.last[i] = -1;
    worker_opts o = { .name = "bp-receiver", .mailbox_limit = LIMIT };
    worker_t *w = worker_new(NULL, NULL, &o);
    worker_listen(w, "M", on_msg, &r, NULL);
    if (worker_start(w) != WORKER_OK) {
        fprintf(stderr, "start failed\n");
        return 1;
    }
    pthread_t th[SENDERS];
    struct sender s[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct sender) { .to = w, .id = i, .n = n };
        pthread_create(&th[i], NULL, send_all, &s[i]);
    }
    long accepted = 0, refused = 0, errors = 0;
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        accepted += s[i].accepted;
        refused += s[i].refused;
        errors += s[i].errors;
    }
    worker_stop(w);
    worker_join(w);
    worker_stats_t st;
    worker_stats(w, &st);
    int bad = 0;
    if (errors || r.errors) {
        fprintf(stderr, "errors: senders %ld, order %ld\n", errors, r.errors);
        bad = 1;
    }
    for (int i = 0; i < FOREVER; i++)
        if (s[i].accepted != n) {
            fprintf(stderr, "forever sender %d: %ld of %ld accepted\n", i, s[i].accepted, n);
            bad = 1;
        }
    if (r.delivered != accepted || (long)st.accepted != accepted || (long)st.handled != accepted
        || (long)st.refused != refused || st.queued != 0 || st.queued_max > LIMIT) {
        fprintf(stderr,
            "delivered %ld accepted %ld; stats accepted %llu handled %llu refused %llu (%ld) "
            "queued %zu max %zu\n",
            r.delivered, accepted, (unsigned long long)st.accepted,
            (unsigned long long)st.handled, (unsigned long long)st.refused, refused, st.queued,
            st.queued_max);
        bad = 1;
    }
    worker_unref(w);
    if (!bad)
        printf("stress_backpressure: %ld accepted, %ld refused (short waits), in order\n", accepted,
            refused);
    return bad;
}
