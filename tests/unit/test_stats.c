/* worker_stats: the counters after known traffic, bad input. (stats.h,
 * docs/semantics.md "Backpressure and statistics".) */
#include "test_util.h"

#include <criterion/criterion.h>

static int gated_task(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30);
    return worker_wait_forever();
}

Test(stats, counts_after_known_traffic, .timeout = 10)
{
    static atomic_int calls;
    tu_gate gate;
    tu_gate_init(&gate);
    worker_opts o = { .mailbox_limit = 2 };
    worker_t *w = worker_new(gated_task, &gate, &o);
    worker_listen(w, "E", tu_count_listener, &calls, NULL);
    worker_stats_t s;
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_EREJECTED, "not running yet");
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_EFULL);
    cr_assert_eq(worker_pause(w), WORKER_OK, "control messages are not counted");
    cr_assert_eq(worker_resume(w), WORKER_OK);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.accepted, 2);
    cr_assert_eq(s.queued, 2);
    cr_assert_eq(s.queued_max, 2);
    cr_assert_eq(s.handled, 0);
    cr_assert_eq(s.refused, 2, "one not running, one full");
    cr_assert_eq(s.dropped, 0);
    tu_gate_open(&gate);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(atomic_load(&calls), 2);
    cr_assert_eq(s.accepted, 2);
    cr_assert_eq(s.handled, 2);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.queued_max, 2);
    cr_assert_eq(s.refused, 2);
    cr_assert(s.busy >= 0.0 && s.busy < 30.0);
    worker_unref(w);
    tu_gate_destroy(&gate);
}

/* A listener that keeps its thread busy for `seconds` (measured, not a
 * synchronisation). */
static int spin_listener(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    double until = tu_now() + *(double *)worker_event_data(e);
    while (tu_now() < until) {
    }
    return 0;
}

Test(stats, busy_counts_time_in_listeners, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    worker_listen(w, "SPIN", spin_listener, NULL, NULL);
    tu_sync_install(w);
    double secs = 0.05;
    worker_fire_opts fo = { .copy = &secs, .copy_size = sizeof secs };
    cr_assert_eq(worker_fire_ex(w, "SPIN", NULL, &fo), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    worker_stats_t s;
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert(s.busy >= 0.045, "busy %f", s.busy);
    cr_assert_eq(s.handled, 2, "SPIN and TU_SYNC");
    tu_stop_join_unref(w);
}

Test(stats, queued_max_is_the_high_water_mark_of_user_events, .timeout = 10)
{
    tu_gate gate;
    tu_gate_init(&gate);
    worker_t *w = worker_spawn(gated_task, &gate, NULL);
    tu_sync_install(w);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_pause(w), WORKER_OK, "library messages are not user events");
    cr_assert_eq(worker_resume(w), WORKER_OK);
    worker_stats_t s;
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.queued, 40);
    tu_gate_open(&gate);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.queued, 0);
    /* 40, or 41 when TU_SYNC came before the loop took the first batch */
    cr_assert(s.queued_max == 40 || s.queued_max == 41, "queued_max %zu", s.queued_max);
    size_t mark = s.queued_max;
    cr_assert_eq(s.handled, 41);
    cr_assert_eq(s.accepted, 41);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.queued_max, mark, "a mark, not the last depth");
    tu_stop_join_unref(w);
    tu_gate_destroy(&gate);
}

static int block_on(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30);
    return worker_wait_forever();
}

Test(stats, an_expired_request_counts_as_dropped, .timeout = 10)
{
    tu_gate gate;
    tu_gate_init(&gate);
    worker_t *w = worker_spawn(block_on, &gate, NULL);
    cr_assert_eq(worker_call(w, "ASK", NULL, 0.05, NULL), WORKER_EEXPIRED);
    tu_gate_open(&gate);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_stats_t s;
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.accepted, 1);
    cr_assert_eq(s.dropped, 1, "taken after its deadline: not delivered");
    cr_assert_eq(s.handled, 0);
    cr_assert_eq(s.queued, 0);
    worker_unref(w);
    tu_gate_destroy(&gate);
}

/* A thread driven by a host loop (worker_fd) is asleep between its
 * worker_update() calls: that time is not busy. */
static void *host_loop_thread(void *arg)
{
    double *busy = arg;
    worker_t *me = worker_current();
    worker_listen(me, "SPIN", spin_listener, NULL, NULL);
    if (worker_fd() < 0)
        return NULL;
    double secs = 0.05;
    worker_fire_opts fo = { .copy = &secs, .copy_size = sizeof secs };
    worker_fire_ex(me, "SPIN", NULL, &fo);
    worker_update();
    /* Not a synchronisation: the time measured as not busy. */
    struct timespec rest = { .tv_sec = 0, .tv_nsec = 300000000 };
    nanosleep(&rest, NULL);
    worker_stats_t s;
    worker_stats(me, &s);
    *busy = s.busy;
    return NULL;
}

Test(stats, a_host_loop_rest_is_not_busy, .timeout = 10)
{
    double busy = -1;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, host_loop_thread, &busy), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert(busy >= 0.045, "the listener's 50 ms: %f", busy);
    cr_assert(busy < 0.25, "not the 300 ms rest: %f", busy);
}

Test(stats, bad_input, .timeout = 10)
{
    worker_stats_t s;
    cr_assert_eq(worker_stats(NULL, &s), WORKER_EINVAL);
    worker_t *w = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_stats(w, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_stats(w, &s), WORKER_OK);
    cr_assert_eq(s.accepted + s.handled + s.refused + s.dropped + s.queued + s.queued_max, 0);
    worker_unref(w);
}
