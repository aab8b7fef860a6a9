/* Running inside a service: the library's log, signals as events, and
 * fork().
 *
 * Every function here may be called from any thread. */
#ifndef WORKER_SERVICE_H
#define WORKER_SERVICE_H

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The levels of the library's messages. */
enum { WORKER_LOG_ERROR = 0, WORKER_LOG_WARN = 1, WORKER_LOG_INFO = 2, WORKER_LOG_DEBUG = 3 };

/* Receives every message the library prints. `worker_name` is the worker
 * the message is about, or NULL; `msg` has no trailing newline. Both are
 * valid only during the call. Called from any thread, possibly from
 * several at once. */
typedef void (*worker_log_fn)(int level, const char *worker_name, const char *msg, void *userdata);

/* Send the library's messages to `fn` (with `userdata`); NULL restores the
 * default, one line "libworker-actor: <msg>" on stderr per message. A call
 * already running the previous function on another thread may still be
 * running it when this returns. */
WORKER_API void worker_set_log(worker_log_fn fn, void *userdata);

/* Send one message through the library's log (the function set with
 * worker_set_log, or stderr), as the library's own messages go: for
 * modules built on the public API (libworker-actor-nats) and for
 * programs that want one log. `level` is a WORKER_LOG_* value,
 * `worker_name` the worker it is about or NULL; a NULL `msg` is ignored.
 * Any thread, never from a signal handler. */
WORKER_API void worker_log(int level, const char *worker_name, const char *msg);

/* Deliver the signal `signo` as the event `name` (data: signo) to `w`
 * (NULL: the main thread's root worker): each delivery becomes one event,
 * fired by a thread of the library, never from a signal handler. The
 * signal is blocked in the calling thread and in every thread the library
 * creates from now on; call it early in main(), before other threads
 * start. A second call for the same signal replaces its target.
 * WORKER_EINVAL for a signal number out of range, SIGKILL, SIGSTOP, or a
 * NULL or empty name; WORKER_EAGAIN when the system refuses the signal
 * thread or its descriptors; WORKER_ENOMEM. */
WORKER_API int worker_signal(int signo, worker_t *w, const char *name);

#ifdef __cplusplus
}
#endif
#endif
