/* Error codes of libworker-actor.
 *
 * Every call that can fail returns WORKER_OK (0) or one negative code below.
 * The table is an X-macro so that the enum, worker_err_name() and
 * worker_strerror() can never disagree. */
#ifndef WORKER_ERROR_H
#define WORKER_ERROR_H

#include <worker/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define WORKER_ERROR_TABLE(X)                                                                      \
    X(WORKER_OK, 0, "success")                                                                     \
    X(WORKER_EXIT, -1, "the worker has been asked to stop")                                        \
    X(WORKER_ETIMEDOUT, -2, "the wait timed out")                                                  \
    X(WORKER_EINVAL, -3, "invalid argument")                                                       \
    X(WORKER_ENOMEM, -4, "out of memory")                                                          \
    X(WORKER_ESTATE, -5, "the handle is in the wrong state for this call")                         \
    X(WORKER_EREJECTED, -6, "the target worker is not running")                                    \
    X(WORKER_EFULL, -7, "the target's mailbox is full")                                            \
    X(WORKER_EDEADLK, -8, "the call would wait for the calling worker itself")                     \
    X(WORKER_EAGAIN, -9, "the system refused a resource")                                          \
    X(WORKER_ENOREPLY, -10, "the request was released without a reply")                            \
    X(WORKER_EWOULDBLOCK, -11, "the call would block a pooled worker's scheduler thread")            \
    X(WORKER_EEXPIRED, -12, "the request's deadline passed before it was handled")               \
    X(WORKER_EINTENSITY, -13, "the supervisor gave up: too many restarts within its period")

enum worker_error {
#define WORKER_ERROR_ENUM_(name, value, message) name = value,
    WORKER_ERROR_TABLE(WORKER_ERROR_ENUM_)
#undef WORKER_ERROR_ENUM_
};

/* A sentence describing `code`. Never NULL, also for unknown codes.
 * Thread-safe; the string is static. */
WORKER_API const char *worker_strerror(int code);

/* The symbolic name of `code` ("WORKER_EINVAL"), or "WORKER_E?" for an
 * unknown code. Thread-safe; the string is static. */
WORKER_API const char *worker_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
