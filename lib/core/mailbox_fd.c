/* A mailbox's readable fd: the parking spot of an owner that a host event
 * loop drives (epoll, libuv, GLib) instead of the owner's own park.
 *
 * The fd is an eventfd (non-blocking, close-on-exec). It is readable while
 * its counter is not zero; reading it sets the counter to zero.
 *
 * Invariants:
 * - `wake_fd` is written by the owner only: once by wk_mailbox_attach_fd
 *   (before it first sets `sleeping` with the fd attached) and once by
 *   wk_mailbox_detach_fd, after wk_mailbox_close(WK_MB_CLOSED): no producer
 *   is inside a push any more, so none can write to a closed (and maybe
 *   reused) fd number.
 * - The owner "rests" while it is outside its outermost loop: `sleeping`
 *   stays set, so a push signals the fd, as it would wake a parked
 *   owner. Inside its loop the owner clears `sleeping`
 *   (wk_mailbox_busy), so producers pay nothing while it works.
 * - A producer that sees `sleeping` set takes it back (exchange to 0);
 *   only the one that gets 1 signals the fd (and bumps `ec` for a parked
 *   owner). The fd then stays readable until the owner rests again, so one
 *   signal per rest is enough, and later producers pay nothing.
 * - Resting, in this order: clear the fd (read), set `sleeping` (seq_cst),
 *   re-check the queue, signal the fd if the queue is not empty. Every
 *   producer signal that can count comes from taking a `sleeping` set by
 *   this rest, so it lands after the clear and is never erased. A push
 *   either lands before the re-check (the owner sees it and signals) or its
 *   load of `sleeping` comes after the owner's store: it then finds the
 *   flag set and signals, or finds it taken by a producer that signals. So
 *   the fd is readable whenever an event waits.
 * - The only readable-without-work case: a producer that took the flag in
 *   one rest but writes only after the next rest began (or after the owner
 *   handled its event). The next worker_update() finds nothing and the
 *   rest after it clears the fd; nothing is lost, one turn of the host loop
 *   is spent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <worker/error.h>

#include "wk_mailbox.h"

int wk_mailbox_attach_fd(wk_mailbox *mb)
{
    int fd = atomic_load_explicit(&mb->wake_fd, memory_order_relaxed);
    if (fd >= 0)
        return fd;
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? WORKER_ENOMEM : WORKER_EAGAIN;
    atomic_store_explicit(&mb->wake_fd, fd, memory_order_release);
    return fd;
}

void wk_mailbox_signal_fd(int fd)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is near 2^64: it is readable anyway. */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

static void clear_fd(int fd)
{
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count); /* EAGAIN: it was clear */
    (void)n;
}

void wk_mailbox_rest(wk_mailbox *mb)
{
    int fd = atomic_load_explicit(&mb->wake_fd, memory_order_relaxed);
    if (fd < 0)
        return;
    clear_fd(fd);
    wk_mailbox_sleep_begin(mb); /* resting counts as asleep (statistics) */
    atomic_store(&mb->sleeping, 1);
    if (wk_mailbox_has_work(mb))
        wk_mailbox_signal_fd(fd);
}

void wk_mailbox_busy(wk_mailbox *mb)
{
    atomic_store_explicit(&mb->sleeping, 0, memory_order_relaxed);
    wk_mailbox_sleep_end(mb);
}

void wk_mailbox_detach_fd(wk_mailbox *mb)
{
    int fd = atomic_exchange_explicit(&mb->wake_fd, -1, memory_order_relaxed);
    if (fd >= 0)
        close(fd);
}
