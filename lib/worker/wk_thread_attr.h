/* The attributes of a worker's thread: stack size, CPU, and the signals
 * it starts with blocked (thread_attr.c). */
#ifndef WK_THREAD_ATTR_H
#define WK_THREAD_ATTR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* worker_new's check of the options: stack_size 0 or at least
 * PTHREAD_STACK_MIN, cpu not negative. */
bool wk_thread_opts_valid(size_t stack_size, int cpu);

/* Fill `attr` (initialised, detached) for a thread with `stack_size` (0:
 * default) pinned to CPU cpu-1 (0: not pinned). WORKER_EINVAL when the
 * process may not run on that CPU, WORKER_ENOMEM. On failure `attr` is
 * destroyed. */
int wk_thread_attr_make(pthread_attr_t *attr, size_t stack_size, int cpu);

#endif
