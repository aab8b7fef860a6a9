/* The signals the library's threads keep blocked.
 *
 * Invariants:
 * - `blocked` is process-wide (global state: a signal is the process's,
 *   and every thread the library creates must block it). Signals are only
 *   ever added, under `blocked_lock`; readers copy the set under it.
 * - A thread created by wk_thread_create has the set blocked from its
 *   first instruction: the creating thread blocks it around pthread_create
 *   and the new thread inherits that mask.
 */
#define _GNU_SOURCE
#include "wk_sigmask.h"

static pthread_mutex_t blocked_lock = PTHREAD_MUTEX_INITIALIZER;
static sigset_t blocked;
static bool blocked_ready;

/* Under blocked_lock. */
static void ready(void)
{
    if (!blocked_ready)
        sigemptyset(&blocked);
    blocked_ready = true;
}

void wk_sigmask_add(int signo)
{
    pthread_mutex_lock(&blocked_lock);
    ready();
    sigaddset(&blocked, signo);
    pthread_mutex_unlock(&blocked_lock);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
}

void wk_sigmask_reset(void)
{
    pthread_mutex_lock(&blocked_lock);
    ready();
    sigset_t held = blocked;
    sigemptyset(&blocked);
    pthread_mutex_unlock(&blocked_lock);
    pthread_sigmask(SIG_UNBLOCK, &held, NULL);
}

void wk_sigmask_get(sigset_t *out)
{
    pthread_mutex_lock(&blocked_lock);
    ready();
    *out = blocked;
    pthread_mutex_unlock(&blocked_lock);
}

/* Every signal but those a fault raises synchronously in the thread that
 * caused it (blocking those would hide a crash). */
static void service_set(sigset_t *set)
{
    sigfillset(set);
    static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(set, faults[i]);
}

int wk_thread_create(
    pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg, bool all)
{
    sigset_t set, old;
    if (all)
        service_set(&set);
    else
        wk_sigmask_get(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int err = pthread_create(thread, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}
