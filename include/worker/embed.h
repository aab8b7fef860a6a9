/* Embedding a worker in a foreign event loop.
 *
 * A thread the library did not start (the main thread, an I/O thread of a
 * service) has a root worker. Instead of blocking in the library's waits,
 * such a thread can let its own event loop (epoll, poll, libuv, GLib) watch
 * one fd and call worker_update() when it is readable:
 *
 *     int fd = worker_fd();
 *     for (;;) {
 *         poll fd for reading, timeout = worker_next_timeout();
 *         worker_update();
 *     }
 *
 * (docs/service.md "Inside your event loop", docs/semantics.md
 * "Embedding in a host event loop".) */
#ifndef WORKER_EMBED_H
#define WORKER_EMBED_H

#include <worker/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The fd of the calling thread's root worker (>= 0), or a negative
 * WORKER_E... code. Level-triggered: readable exactly while an event is
 * queued for that worker, and no longer once worker_update() has handled
 * everything (a rare spurious readiness is possible; worker_update() then
 * finds nothing and clears it). A due timer does not make it readable:
 * worker_next_timeout() returns 0 for it. The library owns the fd: do not
 * read, write or close it; it is the same on every call and is closed when
 * the thread's root worker ends (a plain pthread's exit).
 * WORKER_ESTATE on a worker the library runs (a started worker, a task of
 * worker_start_overlay()), WORKER_EAGAIN when the system refuses an fd,
 * WORKER_ENOMEM when memory runs out. */
WORKER_API int worker_fd(void);

/* Seconds until the calling thread's worker has work: 0 when an event is
 * queued or a timer is due, the time to its next timer otherwise, and a
 * negative value when it has no timer (or once it is exiting, when timers
 * no longer run). Use it as the host loop's poll timeout. */
WORKER_API double worker_next_timeout(void);

#ifdef __cplusplus
}
#endif

#endif
