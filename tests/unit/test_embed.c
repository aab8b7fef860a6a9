/* Embedding a worker in a host event loop: worker_fd() and
 * worker_next_timeout() (embed.h, docs/semantics.md "Embedding in a host
 * event loop").
 *
 * The test's main thread plays the host loop: it polls the fd of its root
 * worker (bounded by TU_WAIT) and calls worker_update(). Producers are
 * started workers; the main thread joins them before it reads what they
 * did. Every poll that must see readiness is bounded, so a lost wake-up
 * fails instead of hanging. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <worker/worker.h>

/* Seconds to whole milliseconds, rounded up (no libm needed). */
static int ms_up(double seconds)
{
    int ms = (int)(seconds * 1000.0);
    return (double)ms < seconds * 1000.0 ? ms + 1 : ms;
}

/* Readable within `timeout_ms` (0: right now)? */
static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, timeout_ms);
    cr_assert_geq(n, 0, "poll failed: %d", errno);
    return n == 1 && (p.revents & POLLIN);
}

static int count_event(const worker_event_t *e, void *userdata)
{
    (void)e;
    (*(long *)userdata)++;
    return 0;
}

static void count_on_main(const char *name, long *counter)
{
    cr_assert_not_null(worker_listen(tu_main(), name, count_event, counter, NULL));
}

/* The host loop: poll the fd (and the next timeout) and update until
 * `*counter` reaches `want` or TU_WAIT passes. */
static void drive_until(int fd, const long *counter, long want)
{
    double give_up = tu_now() + TU_WAIT;
    while (*counter < want && tu_now() < give_up) {
        double next = worker_next_timeout();
        int ms = next < 0 || next > TU_WAIT ? (int)(TU_WAIT * 1000) : ms_up(next);
        readable(fd, ms);
        cr_assert_eq(worker_update(), WORKER_OK);
    }
    cr_assert_eq(*counter, want);
}

Test(embed, fd_is_the_same_on_every_call, .timeout = 10)
{
    tu_main();
    int fd = worker_fd();
    cr_assert_geq(fd, 0, "worker_fd: %s", worker_strerror(fd));
    cr_assert_eq(worker_fd(), fd);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(worker_fd(), fd);
    cr_assert_neq(fcntl(fd, F_GETFD), -1);
}

Test(embed, readable_exactly_while_an_event_is_queued, .timeout = 10)
{
    long seen = 0;
    count_on_main("PING", &seen);
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    cr_assert_not(readable(fd, 0), "nothing queued yet");

    cr_assert_eq(worker_fire(tu_main(), "PING", NULL), WORKER_OK);
    cr_assert(readable(fd, 0));
    cr_assert(readable(fd, 0), "level-triggered: still readable until handled");
    cr_assert_eq(worker_next_timeout(), 0.0);

    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(seen, 1);
    cr_assert_not(readable(fd, 0), "worker_update() handled everything");
    cr_assert_lt(worker_next_timeout(), 0.0);

    /* Again, several at once. */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(worker_fire(tu_main(), "PING", NULL), WORKER_OK);
    cr_assert(readable(fd, 0));
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(seen, 6);
    cr_assert_not(readable(fd, 0));
}

static int fire_pings(void *arg, void **result)
{
    (void)result;
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        if (worker_fire(tu_main_w, "PING", NULL) != WORKER_OK)
            return WORKER_EINVAL;
    return WORKER_OK;
}

static void join_ok(worker_t *w)
{
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
}

Test(embed, an_event_from_another_thread_makes_it_readable, .timeout = 10)
{
    long seen = 0;
    count_on_main("PING", &seen);
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    worker_t *w = worker_spawn(fire_pings, TU_PTR(1), NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_join(w), WORKER_OK); /* the event is queued now */
    worker_unref(w);
    cr_assert(readable(fd, 0));
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(seen, 1);
    /* The join's own handling ran the loop too: whatever it left is drained. */
    cr_assert_not(readable(fd, 0));
}

/* The producer waits a little before it fires, so that the main thread is
 * most likely asleep in poll() by then (which path is taken does not
 * change what the test asserts: poll must return readable in time). */
static int fire_after_a_while(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = worker_wait_timeout(0.05);
    if (rc != WORKER_OK)
        return rc;
    return worker_fire(tu_main_w, "PING", NULL);
}

Test(embed, a_producer_wakes_a_thread_asleep_in_poll, .timeout = 20)
{
    long seen = 0;
    count_on_main("PING", &seen);
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    for (int round = 0; round < 5; round++) {
        worker_t *w = worker_spawn(fire_after_a_while, NULL, NULL);
        cr_assert_not_null(w);
        double start = tu_now();
        cr_assert(readable(fd, (int)(TU_WAIT * 1000)), "round %d: no wake-up", round);
        cr_assert_lt(tu_now() - start, TU_WAIT);
        cr_assert_eq(worker_update(), WORKER_OK);
        cr_assert_eq(seen, round + 1);
        join_ok(w);
        worker_update(); /* the join may leave nothing; it must not block */
    }
}

#define PRODUCERS 4
#define PER_PRODUCER 20000L

Test(embed, many_producers_lose_nothing, .timeout = 60)
{
    long seen = 0;
    count_on_main("PING", &seen);
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    worker_t *w[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        w[i] = worker_spawn(fire_pings, TU_PTR(PER_PRODUCER), NULL);
        cr_assert_not_null(w[i]);
    }
    drive_until(fd, &seen, PRODUCERS * PER_PRODUCER);
    for (int i = 0; i < PRODUCERS; i++)
        join_ok(w[i]);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(seen, PRODUCERS * PER_PRODUCER);
    cr_assert_not(readable(fd, 0));
}

static void note_ran(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
}

Test(embed, a_due_timer_is_reported_by_next_timeout, .timeout = 20)
{
    tu_main();
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    cr_assert_lt(worker_next_timeout(), 0.0, "no timer yet");
    atomic_int ran = 0;
    cr_assert_eq(worker_later(NULL, note_ran, &ran, 0.3, NULL), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    double next = worker_next_timeout();
    cr_assert_geq(next, 0.0);
    cr_assert_leq(next, 0.3);
    cr_assert_eq(atomic_load(&ran), 0);

    /* The host loop sleeps until the timeout, then updates. */
    double give_up = tu_now() + TU_WAIT;
    while (!atomic_load(&ran) && tu_now() < give_up) {
        next = worker_next_timeout();
        cr_assert_geq(next, 0.0, "the timer is still pending");
        readable(fd, ms_up(next));
        cr_assert_eq(worker_update(), WORKER_OK);
    }
    cr_assert_eq(atomic_load(&ran), 1);
    cr_assert_lt(worker_next_timeout(), 0.0, "no timer left");
    cr_assert_not(readable(fd, 0));
}

Test(embed, next_timeout_is_zero_for_a_due_timer, .timeout = 10)
{
    tu_main();
    atomic_int ran = 0;
    cr_assert_eq(worker_later(NULL, note_ran, &ran, 0.01, NULL), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    /* Wait past the deadline without running the loop. */
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 30 * 1000 * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (!atomic_load(&ran))
        cr_assert_eq(worker_next_timeout(), 0.0);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(atomic_load(&ran), 1);
}

Test(embed, next_timeout_without_timers_is_negative, .timeout = 10)
{
    tu_main();
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_lt(worker_next_timeout(), 0.0);
}

static int report_fd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_fire(tu_main_w, "FD", TU_PTR(worker_fd()));
}

Test(embed, a_started_worker_has_no_fd, .timeout = 10)
{
    tu_main();
    worker_t *w = worker_spawn(report_fd, NULL, NULL);
    cr_assert_not_null(w);
    void *data = NULL;
    cr_assert_eq(worker_wait_event("FD", TU_WAIT, w, &data), WORKER_OK);
    cr_assert_eq(TU_INT(data), WORKER_ESTATE);
    join_ok(w);
}

Test(embed, an_overlay_has_no_fd, .timeout = 10)
{
    tu_main();
    worker_t *w = worker_new(report_fd, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_start_overlay(w), WORKER_OK);
    void *data = NULL;
    cr_assert_eq(worker_wait_event("FD", TU_WAIT, w, &data), WORKER_OK);
    cr_assert_eq(TU_INT(data), WORKER_ESTATE);
    worker_unref(w);
    cr_assert_geq(worker_fd(), 0, "the root under it has one");
}

Test(embed, a_blocking_wait_leaves_the_fd_right, .timeout = 10)
{
    long seen = 0;
    count_on_main("PING", &seen);
    int fd = worker_fd();
    cr_assert_geq(fd, 0);
    worker_t *w = worker_spawn(fire_pings, TU_PTR(1), NULL);
    cr_assert_not_null(w);
    /* The library's own wait handles the event, not the host loop. */
    cr_assert_eq(worker_wait_event("PING", TU_WAIT, w, NULL), WORKER_OK);
    join_ok(w);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_not(readable(fd, 0), "the wait handled it");
    cr_assert_eq(worker_fire(tu_main(), "PING", NULL), WORKER_OK);
    cr_assert(readable(fd, 0), "resting again after the wait");
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(seen, 2);
}

struct fd_in_listener {
    int fd;
};

static int fd_from_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct fd_in_listener *)userdata)->fd = worker_fd();
    return 0;
}

Test(embed, first_asked_inside_a_listener, .timeout = 10)
{
    struct fd_in_listener got = { .fd = -1 };
    cr_assert_not_null(worker_listen(tu_main(), "ASK", fd_from_listener, &got, NULL));
    cr_assert_eq(worker_fire(tu_main(), "ASK", NULL), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_geq(got.fd, 0);
    cr_assert_not(readable(got.fd, 0));
    cr_assert_eq(worker_fire(tu_main(), "PING", NULL), WORKER_OK);
    cr_assert(readable(got.fd, 0));
    cr_assert_eq(worker_fd(), got.fd);
}

static void *plain_thread(void *arg)
{
    *(int *)arg = worker_fd();
    return NULL;
}

Test(embed, a_plain_thread_fd_is_closed_when_it_ends, .timeout = 10)
{
    int fd = -1;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, plain_thread, &fd), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_geq(fd, 0);
    errno = 0;
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "closed with the thread's root");
    cr_assert_eq(errno, EBADF);
}
