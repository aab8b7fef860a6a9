/* Forwarding workers (lifecycle.h worker_opts.forward): user events and
 * requests go to the hook on the firing thread, in each thread's order;
 * the library's events are still handled by the worker's loop; refusals
 * when not running; the end waits for running forwards. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

#define MANY 2000

typedef struct seen {
    pthread_t thread;
    atomic_int count;
    atomic_int out_of_order;
    atomic_int on_other_thread;
    atomic_int last;
} seen;

static void record(const worker_event_t *e, void *arg)
{
    seen *s = arg;
    const int *v = worker_event_data(e);
    if (!pthread_equal(pthread_self(), s->thread))
        atomic_fetch_add(&s->on_other_thread, 1);
    if (v && worker_event_size(e) == sizeof *v) {
        if (*v != atomic_load(&s->last) + 1)
            atomic_fetch_add(&s->out_of_order, 1);
        atomic_store(&s->last, *v);
    }
    atomic_fetch_add(&s->count, 1);
}

static worker_t *forwarder(worker_forward_fn fn, void *arg)
{
    worker_opts o = { .name = "fwd", .forward = fn, .forward_arg = arg, .quiet = true };
    return worker_new(NULL, NULL, &o);
}

static int fire_int(worker_t *w, int v)
{
    worker_fire_opts fo = { .copy = &v, .copy_size = sizeof v };
    return worker_fire_ex(w, "E", NULL, &fo);
}

Test(forward, user_events_run_the_hook_on_the_firing_thread_in_order, .timeout = 20)
{
    static seen s;
    static atomic_int listened;
    s.thread = pthread_self();
    worker_t *w = forwarder(record, &s);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &listened, NULL));
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 1; i <= MANY; i++)
        cr_assert_eq(fire_int(w, i), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), MANY, "every fire ran the hook before returning");
    cr_assert_eq(atomic_load(&s.out_of_order), 0);
    cr_assert_eq(atomic_load(&s.on_other_thread), 0);
    worker_stats_t st;
    cr_assert_eq(worker_stats(w, &st), WORKER_OK);
    cr_assert_eq(st.accepted, MANY);
    cr_assert_eq(st.handled, MANY);
    cr_assert_eq(st.queued, 0);
    tu_stop_join_unref(w);
    cr_assert_eq(atomic_load(&listened), 0, "listeners never see forwarded events");
}

static void answer_at_once(const worker_event_t *e, void *arg)
{
    (void)arg;
    if (!worker_event_is_request(e))
        return;
    worker_fire_opts fo = { .copy = "pong", .copy_size = 5 };
    worker_reply_ex(e, NULL, &fo);
}

Test(forward, a_request_is_answered_by_the_hook, .timeout = 20)
{
    worker_t *w = forwarder(answer_at_once, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    void *reply = NULL;
    size_t size = 0;
    cr_assert_eq(worker_call_ex(w, "PING", NULL, NULL, TU_WAIT, &reply, &size), WORKER_OK);
    cr_assert_eq(size, 5);
    cr_assert_str_eq(reply, "pong");
    tu_stop_join_unref(w);
}

/* The hook keeps the request; another thread answers it later. */
static const worker_event_t *kept;
static tu_gate kept_gate;

static void keep_request(const worker_event_t *e, void *arg)
{
    (void)arg;
    kept = worker_event_ref(e);
    tu_gate_open(&kept_gate);
}

static void *answer_later(void *arg)
{
    (void)arg;
    if (tu_gate_pass(&kept_gate, TU_WAIT) == 0) {
        worker_reply(kept, TU_PTR(42));
        worker_event_unref(kept);
    }
    return NULL;
}

Test(forward, a_kept_request_is_answered_later_from_another_thread, .timeout = 20)
{
    tu_gate_init(&kept_gate);
    worker_t *w = forwarder(keep_request, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    pthread_t th;
    pthread_create(&th, NULL, answer_later, NULL);
    void *reply = NULL;
    cr_assert_eq(worker_call(w, "ASK", NULL, TU_WAIT, &reply), WORKER_OK);
    cr_assert_eq(TU_INT(reply), 42);
    pthread_join(th, NULL);
    tu_stop_join_unref(w);
    tu_gate_destroy(&kept_gate);
}

static void ignore(const worker_event_t *e, void *arg)
{
    (void)e;
    (void)arg;
}

Test(forward, a_request_the_hook_drops_is_reported_at_once, .timeout = 20)
{
    worker_t *w = forwarder(ignore, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_call(w, "ASK", NULL, TU_WAIT, NULL), WORKER_ENOREPLY);
    tu_stop_join_unref(w);
}

Test(forward, fires_are_refused_while_it_does_not_run, .timeout = 20)
{
    static seen s;
    s.thread = pthread_self();
    worker_t *w = forwarder(record, &s);
    cr_assert_eq(fire_int(w, 1), WORKER_EREJECTED, "not started");
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(fire_int(w, 1), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(fire_int(w, 2), WORKER_EREJECTED, "ended");
    cr_assert_eq(worker_start(w), WORKER_OK, "restarted");
    cr_assert_eq(fire_int(w, 2), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 2);
    tu_stop_join_unref(w);
}

/* The worker's own loop still handles the library's events: a later call
 * runs on the worker's thread, not the caller's. */
static void note_thread(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    tu_ack(tu_main(), 1);
}

Test(forward, its_loop_still_runs_later_calls_and_stops, .timeout = 20)
{
    static seen s;
    s.thread = pthread_self();
    tu_main();
    worker_t *w = forwarder(record, &s);
    cr_assert_eq(worker_start(w), WORKER_OK);
    static pthread_t ran_on;
    ran_on = pthread_self();
    cr_assert_eq(worker_later(w, note_thread, &ran_on, 0, NULL), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert(!pthread_equal(ran_on, pthread_self()), "later ran on the worker's thread");
    cr_assert_eq(atomic_load(&s.count), 0, "a later call is not a user event");
    tu_stop_join_unref(w);
}

Test(forward, channel_publishes_and_broadcasts_reach_the_hook, .timeout = 20)
{
    static seen s;
    s.thread = pthread_self();
    worker_t *parent = worker_spawn(NULL, NULL, &(worker_opts) { .name = "parent" });
    worker_opts o = { .parent = parent, .forward = record, .forward_arg = &s };
    worker_t *w = worker_spawn(NULL, NULL, &o);
    cr_assert_not_null(w);
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(ch, w), WORKER_OK);
    cr_assert_eq(worker_channel_pub(ch, "P", NULL), 1, "one subscriber took it");
    worker_fire_opts fo = { .broadcast = true };
    cr_assert_eq(worker_fire_ex(parent, "B", NULL, &fo), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), 2);
    cr_assert_eq(atomic_load(&s.on_other_thread), 0);
    worker_channel_free(ch);
    tu_stop_join_unref(w);
    tu_stop_join_unref(parent);
}

/* A forward still running when the worker is stopped: the worker's end
 * (and so its join) waits until that forward has returned. */
typedef struct slow {
    tu_gate entered, release;
    atomic_bool returned, returned_at_join;
    worker_t *w;
} slow;

static void slow_forward(const worker_event_t *e, void *arg)
{
    (void)e;
    slow *s = arg;
    tu_gate_open(&s->entered);
    tu_gate_pass(&s->release, TU_WAIT);
    atomic_store(&s->returned, true);
}

static void *fire_once(void *arg)
{
    slow *s = arg;
    worker_fire(s->w, "E", NULL);
    return NULL;
}

static void *join_it(void *arg)
{
    slow *s = arg;
    worker_join(s->w);
    atomic_store(&s->returned_at_join, atomic_load(&s->returned));
    return NULL;
}

Test(forward, the_end_waits_for_forwards_running_then, .timeout = 20)
{
    static slow s;
    tu_gate_init(&s.entered);
    tu_gate_init(&s.release);
    s.w = forwarder(slow_forward, &s);
    cr_assert_eq(worker_start(s.w), WORKER_OK);
    pthread_t firer, joiner;
    pthread_create(&firer, NULL, fire_once, &s);
    cr_assert_eq(tu_gate_pass(&s.entered, TU_WAIT), 0);
    cr_assert_eq(worker_stop(s.w), WORKER_OK);
    pthread_create(&joiner, NULL, join_it, &s);
    /* Give a wrong end the time to come early; then let the forward go. */
    usleep(50 * 1000);
    tu_gate_open(&s.release);
    pthread_join(joiner, NULL);
    pthread_join(firer, NULL);
    cr_assert(atomic_load(&s.returned_at_join), "joined while a forward was still running");
    cr_assert_eq(worker_fire(s.w, "E", NULL), WORKER_EREJECTED);
    worker_unref(s.w);
    tu_gate_destroy(&s.entered);
    tu_gate_destroy(&s.release);
}

/* A pooled forwarding worker (the proxies of libworker-actor-nats): no
 * thread of its own; fires still run the hook on the firing thread, and
 * its stop and end run on the scheduler's threads. */
Test(forward, a_pooled_forwarder_forwards_and_ends, .timeout = 20)
{
    static seen s;
    s.thread = pthread_self();
    worker_opts o = { .pooled = true, .forward = record, .forward_arg = &s };
    worker_t *w = worker_new(NULL, NULL, &o);
    cr_assert_not_null(w);
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 1; i <= MANY; i++)
        cr_assert_eq(fire_int(w, i), WORKER_OK);
    cr_assert_eq(atomic_load(&s.count), MANY);
    cr_assert_eq(atomic_load(&s.out_of_order), 0);
    cr_assert_eq(atomic_load(&s.on_other_thread), 0);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(fire_int(w, 1), WORKER_EREJECTED);
    worker_unref(w);
}
