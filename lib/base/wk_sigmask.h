/* The signals the library's threads keep blocked (sigmask.c): those given
 * to worker_signal. Every thread the library creates is created through
 * wk_thread_create, which creates it with them blocked. */
#ifndef WK_SIGMASK_H
#define WK_SIGMASK_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

/* Add `signo` to the set and block it in the calling thread. */
void wk_sigmask_add(int signo);

/* In a fork() child: empty the set (the routes are gone) and unblock what
 * it held in the calling thread. */
void wk_sigmask_reset(void);

/* The set so far (a copy). */
void wk_sigmask_get(sigset_t *out);

/* pthread_create with the set blocked in the new thread (the calling
 * thread's mask is put back before this returns). `all`: block every
 * signal but the ones a fault raises, for the library's own service
 * threads. Returns pthread_create's error number. */
int wk_thread_create(
    pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg, bool all);

#endif
