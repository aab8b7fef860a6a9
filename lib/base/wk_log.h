/* The library's messages (log.c): every line the library prints goes
 * through wk_log, to the function set by worker_set_log or to stderr. */
#ifndef WK_LOG_H
#define WK_LOG_H

#include <worker/service.h>

/* Format and send one message at `level` about the worker named
 * `worker_name` (NULL: about no worker). Safe from any thread, never from
 * a signal handler. */
void wk_log(int level, const char *worker_name, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* fork(): the prepare handler takes the log's lock, the parent and child
 * handlers give it back (wk_atfork in the worker layer calls them). */
void wk_log_atfork_prepare(void);
void wk_log_atfork_release(void);

#endif
