/* embed_libuv: a worker inside a libuv loop.
 *
 * The main thread runs uv_run(). A uv_poll_t watches worker_fd() for
 * reading; a uv_timer_t is set from worker_next_timeout() after every
 * update, so that the worker's own timers (worker_later) run on time. Both
 * callbacks call worker_update(), which handles what is queued and returns
 * at once.
 *
 * A producer worker fires N "TICK" events at the main thread, and a timer
 * runs on it; when both are done the handles are closed, uv_run() returns
 * and the exit status is 0.
 *
 * Built only when libuv is found (pkg-config libuv, package libuv1-dev).
 * Needs pkg-config: libuv
 *
 * Run: ./embed_libuv [--auto]      (no input is ever read) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include <worker/worker.h>

#define TICKS 100000L

struct host {
    uv_poll_t poll;
    uv_timer_t timer;
    long ticks;
    bool timer_ran;
};

/* Seconds -> whole milliseconds, rounded up (no libm needed), at most a
 * day: so that the loop does not wake just before a timer is due. */
static long ms_rounded_up(double seconds)
{
    if (seconds > 86400.0)
        return 86400L * 1000L;
    double ms = seconds * 1000.0;
    long whole = (long)ms;
    return whole + (ms > (double)whole);
}

static int on_tick(const worker_event_t *e, void *userdata)
{
    (void)e;
    ((struct host *)userdata)->ticks++;
    return 0;
}

static void on_worker_timer(void *arg)
{
    ((struct host *)arg)->timer_ran = true;
}

static int producer(void *arg, void **result)
{
    (void)result;
    worker_t *main_root = arg;
    for (long i = 0; i < TICKS; i++) {
        int rc = worker_fire(main_root, "TICK", (void *)(intptr_t)i);
        if (rc != WORKER_OK)
            return rc;
    }
    return WORKER_OK;
}

static void drive(struct host *h);

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    drive(p->data);
}

static void on_timeout(uv_timer_t *t)
{
    drive(t->data);
}

/* One turn: update, then either stop (all done) or re-arm the timer. */
static void drive(struct host *h)
{
    worker_update();
    if (h->ticks == TICKS && h->timer_ran) {
        uv_close((uv_handle_t *)&h->poll, NULL);
        uv_close((uv_handle_t *)&h->timer, NULL);
        return;
    }
    double next = worker_next_timeout();
    if (next < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timeout, (uint64_t)ms_rounded_up(next), 0);
}

int main(int argc, char **argv)
{
    (void)argc; /* --auto changes nothing: this example never reads input */
    (void)argv;
    struct host h = { .ticks = 0, .timer_ran = false };
    worker_t *me = worker_current();
    int wfd = worker_fd();
    if (!me || wfd < 0) {
        fprintf(stderr, "worker_fd: %s\n", worker_strerror(wfd));
        return 1;
    }
    worker_listen(me, "TICK", on_tick, &h, NULL);
    worker_later(NULL, on_worker_timer, &h, 0.05, NULL);

    uv_loop_t *loop = uv_default_loop();
    uv_poll_init(loop, &h.poll, wfd);
    uv_timer_init(loop, &h.timer);
    h.poll.data = &h;
    h.timer.data = &h;
    uv_poll_start(&h.poll, UV_READABLE, on_readable);

    worker_t *w = worker_spawn(producer, me, &(worker_opts) { .name = "producer" });
    if (!w) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }
    drive(&h); /* arms the timer for the worker's first timeout */
    uv_run(loop, UV_RUN_DEFAULT);
    printf("embed_libuv: %ld ticks arrived, the timer ran\n", h.ticks);

    int rc = worker_join(w);
    worker_unref(w);
    uv_loop_close(loop);
    return rc == WORKER_OK && h.ticks == TICKS ? 0 : 1;
}
