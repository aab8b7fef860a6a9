/* Stress: ask and reply with answers from other threads racing timeouts.
 *
 * A plain program (no Criterion) so that it also runs under
 * ThreadSanitizer. Exit status 0 on success; on failure a message on stderr
 * and exit status 1.
 *
 * CALLERS plain pthreads (each with its root worker) call one server
 * worker N times each, with a copied request released through a counter
 * and, every other call, a timeout short enough to race the answer. The
 * server's listener keeps each request (worker_event_ref) and hands it to
 * REPLIERS plain pthreads, which answer with a copied reply (released
 * through a counter), a reply error, or nothing (they let it go:
 * WORKER_ENOREPLY), then drop their reference.
 *
 * Checked: every call ends with one of the codes its request allows; every
 * reply's release ran exactly once (also for late replies, released on a
 * caller that gave up, and for refused second answers); every request's
 * release ran exactly once.
 *
 * Usage: stress_call [N per caller] (env WORKER_STRESS_N overrides the
 * default of 3000). */
#include "test_util.h"

#define CALLERS 4
#define REPLIERS 2
#define ANSWER_ERR 77

/* Requests handed from the server's listener to the repliers. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;
    const worker_event_t **items;
    size_t head, tail, cap;
    bool closed;
} queue = { .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER };

static atomic_long replies_made, replies_released, requests_made, requests_released;
static atomic_long bad;
static long n_per_caller = 3000;

static void queue_put(const worker_event_t *e)
{
    pthread_mutex_lock(&queue.lock);
    queue.items[queue.tail++ % queue.cap] = e;
    pthread_cond_signal(&queue.more);
    pthread_mutex_unlock(&queue.lock);
}

static const worker_event_t *queue_take(void)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.head == queue.tail && !queue.closed)
        pthread_cond_wait(&queue.more, &queue.lock);
    const worker_event_t *e
        = queue.head == queue.tail ? NULL : queue.items[queue.head++ % queue.cap];
    pthread_mutex_unlock(&queue.lock);
    return e;
}

static int keep_and_hand_over(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    queue_put(worker_event_ref(e));
    return 0;
}

static void count_reply_release(void *data)
{
    (void)data;
    atomic_fetch_add(&replies_released, 1);
}

static void count_request_release(void *data)
{
    (void)data;
    atomic_fetch_add(&requests_released, 1);
}

/* The request's data: the sequence number; its remainder picks the answer. */
static void answer(const worker_event_t *e)
{
    long seq;
    memcpy(&seq, worker_event_data(e), sizeof seq);
    if (seq % 3 == 0) {
        worker_fire_opts o
            = { .copy = &seq, .copy_size = sizeof seq, .release = count_reply_release };
        atomic_fetch_add(&replies_made, 1);
        int rc = worker_reply_ex(e, NULL, &o);
        atomic_fetch_add(&replies_made, 1); /* a second answer: refused, released */
        int again = worker_reply_ex(e, NULL, &o);
        if (rc != WORKER_OK || again != WORKER_ESTATE)
            atomic_fetch_add(&bad, 1);
    } else if (seq % 3 == 1) {
        if (worker_reply_error(e, ANSWER_ERR) != WORKER_OK)
            atomic_fetch_add(&bad, 1);
    }
    worker_event_unref(e);
}

static void *replier(void *arg)
{
    (void)arg;
    const worker_event_t *e;
    while ((e = queue_take()))
        answer(e);
    return NULL;
}

static bool allowed(long seq, int rc, bool short_timeout)
{
    if (short_timeout && (rc == WORKER_ETIMEDOUT || rc == WORKER_EEXPIRED))
        return true;
    switch (seq % 3) {
    case 0:
        return rc == WORKER_OK;
    case 1:
        return rc == ANSWER_ERR;
    default:
        return rc == WORKER_ENOREPLY;
    }
}

static void *caller(void *arg)
{
    worker_t *server = arg;
    for (long i = 0; i < n_per_caller; i++) {
        long seq = i;
        bool short_timeout = i % 2;
        worker_fire_opts o
            = { .copy = &seq, .copy_size = sizeof seq, .release = count_request_release };
        void *reply = NULL;
        size_t size = 0;
        atomic_fetch_add(&requests_made, 1);
        int rc = worker_call_ex(
            server, "ASK", NULL, &o, short_timeout ? 0.0002 : TU_WAIT * 4, &reply, &size);
        if (!allowed(seq, rc, short_timeout)
            || (rc == WORKER_OK && (size != sizeof seq || memcmp(reply, &seq, sizeof seq))))
            atomic_fetch_add(&bad, 1);
    }
    return NULL; /* the root worker ends with the thread: late replies go */
}

static int serve(void *arg, void **result)
{
    (void)arg;
    (void)result;
    worker_on("ASK", keep_and_hand_over, NULL, NULL);
    return worker_wait_forever();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *env = getenv("WORKER_STRESS_N");
    if (env != NULL && atol(env) > 0)
        n_per_caller = atol(env);
    if (argc > 1 && atol(argv[1]) > 0)
        n_per_caller = atol(argv[1]);
    queue.cap = (size_t)(CALLERS * n_per_caller + 1);
    queue.items = calloc(queue.cap, sizeof *queue.items);
    worker_t *server = worker_new(serve, NULL, NULL);
    if (!queue.items || !server || worker_start(server) != WORKER_OK)
        return fprintf(stderr, "stress_call: setup failed\n"), 1;
    pthread_t r[REPLIERS], c[CALLERS];
    for (int i = 0; i < REPLIERS; i++)
        pthread_create(&r[i], NULL, replier, NULL);
    for (int i = 0; i < CALLERS; i++)
        pthread_create(&c[i], NULL, caller, server);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(c[i], NULL);
    worker_stop(server);
    worker_join(server);
    worker_unref(server);
    pthread_mutex_lock(&queue.lock);
    queue.closed = true;
    pthread_cond_broadcast(&queue.more);
    pthread_mutex_unlock(&queue.lock);
    for (int i = 0; i < REPLIERS; i++)
        pthread_join(r[i], NULL);
    free(queue.items);
    long made = atomic_load(&replies_made), freed = atomic_load(&replies_released);
    long asked = atomic_load(&requests_made), done = atomic_load(&requests_released);
    if (atomic_load(&bad) || made != freed || asked != done) {
        fprintf(stderr,
            "stress_call: %ld bad outcomes, replies %ld made %ld released, requests %ld made %ld "
            "released\n",
            atomic_load(&bad), made, freed, asked, done);
        return 1;
    }
    printf("stress_call: %ld calls, %ld replies, every release once\n", asked, made);
    return 0;
}
