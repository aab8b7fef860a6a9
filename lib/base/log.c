/* The library's messages.
 *
 * Invariants:
 * - The sink (function and userdata) is process-wide (global state: the
 *   library has one log, set by the application). Both fields change
 *   together under `sink_lock`; a message copies the pair under the lock
 *   and calls the function after unlocking, so a sink may itself log or
 *   call worker_set_log, and messages from several threads may run the
 *   sink at the same time.
 * - A message is formatted into the caller's stack; nothing is allocated.
 */
#define _GNU_SOURCE
#include "wk_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#define MESSAGE_MAX 512

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static worker_log_fn sink_fn; /* NULL: stderr */
static void *sink_userdata;

void worker_set_log(worker_log_fn fn, void *userdata)
{
    pthread_mutex_lock(&sink_lock);
    sink_fn = fn;
    sink_userdata = fn ? userdata : NULL;
    pthread_mutex_unlock(&sink_lock);
}

void wk_log(int level, const char *worker_name, const char *format, ...)
{
    char msg[MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(msg, sizeof msg, format, args);
    va_end(args);
    pthread_mutex_lock(&sink_lock);
    worker_log_fn fn = sink_fn;
    void *userdata = sink_userdata;
    pthread_mutex_unlock(&sink_lock);
    if (fn)
        fn(level, worker_name, msg, userdata);
    else
        fprintf(stderr, "libworker-actor: %s\n", msg);
}

void worker_log(int level, const char *worker_name, const char *msg)
{
    if (msg)
        wk_log(level, worker_name, "%s", msg);
}

void wk_log_atfork_prepare(void)
{
    pthread_mutex_lock(&sink_lock);
}

void wk_log_atfork_release(void)
{
    pthread_mutex_unlock(&sink_lock);
}
