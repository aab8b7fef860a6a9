/* embed_epoll: a worker inside a plain epoll loop.
 *
 * The main thread owns an epoll loop (as a service's I/O thread would). It
 * does not block in the library's waits: it adds worker_fd(), the fd of its
 * root worker, to its epoll set, sleeps in epoll_wait() with
 * worker_next_timeout() as the timeout, and calls worker_update() when the
 * fd is readable or the timeout ran out. worker_update() runs the
 * listeners and the timers that are due, then returns at once.
 *
 * A producer worker fires N "TICK" events at the main thread; a timer
 * (worker_later) runs on the main thread too. The loop ends when every tick
 * has arrived and the timer has run: exit status 0.
 *
 * Run: ./embed_epoll [--auto]      (no input is ever read) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <worker/worker.h>

#define TICKS 100000L

struct host {
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

static void on_timer(void *arg)
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

/* worker_next_timeout() in seconds -> epoll_wait's milliseconds, rounded
 * up so that the loop does not wake just before a timer is due. */
static int poll_timeout_ms(void)
{
    double next = worker_next_timeout();
    if (next < 0)
        return -1;
    return (int)ms_rounded_up(next);
}

int main(int argc, char **argv)
{
    (void)argc; /* --auto changes nothing: this example never reads input */
    (void)argv;
    struct host host = { 0, false };
    worker_t *me = worker_current();
    int wfd = worker_fd();
    if (!me || wfd < 0) {
        fprintf(stderr, "worker_fd: %s\n", worker_strerror(wfd));
        return 1;
    }
    worker_listen(me, "TICK", on_tick, &host, NULL);
    worker_later(NULL, on_timer, &host, 0.05, NULL);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = wfd };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, wfd, &ev) != 0) {
        perror("epoll");
        return 1;
    }
    worker_t *w = worker_spawn(producer, me, &(worker_opts) { .name = "producer" });
    if (!w) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }

    while (host.ticks < TICKS || !host.timer_ran) {
        struct epoll_event ready[8];
        int n = epoll_wait(ep, ready, 8, poll_timeout_ms());
        if (n < 0) {
            perror("epoll_wait");
            return 1;
        }
        /* Readable fd or a timeout: either way, let the worker work. */
        worker_update();
    }
    printf("embed_epoll: %ld ticks arrived, the timer ran\n", host.ticks);

    int rc = worker_join(w);
    worker_unref(w);
    close(ep);
    return rc == WORKER_OK ? 0 : 1;
}
