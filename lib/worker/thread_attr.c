/* The attributes of a worker's thread. Keeps no state. */
#define _GNU_SOURCE
#include "wk_thread_attr.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include <worker/error.h>

bool wk_thread_opts_valid(size_t stack_size, int cpu)
{
    return cpu >= 0 && (stack_size == 0 || stack_size >= (size_t)PTHREAD_STACK_MIN);
}

static size_t whole_pages(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;
    return size > SIZE_MAX - p ? size : (size + p - 1) / p * p;
}

/* CPU `index` is one the process may run on (the main thread's mask, which
 * every thread starts from unless the application narrowed its own). */
static bool cpu_allowed(int index)
{
    if (index >= CPU_SETSIZE)
        return false;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(getpid(), sizeof allowed, &allowed) != 0)
        return false;
    return CPU_ISSET(index, &allowed);
}

int wk_thread_attr_make(pthread_attr_t *attr, size_t stack_size, int cpu)
{
    if (pthread_attr_init(attr) != 0)
        return WORKER_ENOMEM;
    pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
    int rc = WORKER_OK;
    if (stack_size && pthread_attr_setstacksize(attr, whole_pages(stack_size)) != 0)
        rc = WORKER_EINVAL;
    if (rc == WORKER_OK && cpu > 0) {
        if (!cpu_allowed(cpu - 1)) {
            rc = WORKER_EINVAL;
        } else {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu - 1, &one);
            if (pthread_attr_setaffinity_np(attr, sizeof one, &one) != 0)
                rc = WORKER_ENOMEM;
        }
    }
    if (rc != WORKER_OK)
        pthread_attr_destroy(attr);
    return rc;
}
