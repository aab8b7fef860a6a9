/* The periodic trace flusher: once a second while a trace records, every
 * buffer's published records reach the file, so a process that is killed
 * leaves a trace readable up to about its last second.
 *
 * Invariants:
 * - One flusher thread for the process (global state, like the trace it
 *   serves), made at the first trace start and kept for the process's
 *   life; it sleeps on `fl.wake` while no trace records.
 * - `fl.tracing` and `fl.made` change under `fl.lock` only. The flusher
 *   never holds `fl.lock` while it flushes: a flush takes `rec.lock` and
 *   each buffer's lock (trace.c), the same order as worker_trace_stop.
 * - The flusher is made with every signal blocked (wk_thread_create), so
 *   signals routed by worker_signal never land on it.
 * - fork(): the child has no flusher; the next start there makes one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "wk_os.h"
#include "wk_sigmask.h"
#include "wk_trace.h"

#define FLUSH_EVERY_NS 1000000000L

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    bool cond_ready;
    bool made;
    bool tracing;
} fl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct timespec one_second_from_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += FLUSH_EVERY_NS / 1000000000L;
    return ts;
}

static void *flusher_main(void *arg)
{
    (void)arg;
    wk_set_thread_name("worker-tflush");
    pthread_mutex_lock(&fl.lock);
    for (;;) {
        if (!fl.tracing) {
            pthread_cond_wait(&fl.wake, &fl.lock);
            continue;
        }
        struct timespec until = one_second_from_now();
        while (fl.tracing && pthread_cond_timedwait(&fl.wake, &fl.lock, &until) == 0) { }
        if (!fl.tracing)
            continue;
        pthread_mutex_unlock(&fl.lock);
        wk_trace_flush_published();
        pthread_mutex_lock(&fl.lock);
    }
    return NULL;
}

/* Under fl.lock. */
static void make_flusher(void)
{
    if (!fl.cond_ready) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        fl.cond_ready = pthread_cond_init(&fl.wake, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    pthread_attr_t attr;
    if (!fl.cond_ready || pthread_attr_init(&attr) != 0)
        return; /* no periodic flush: buffers still reach the file when full and at stop */
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    fl.made = wk_thread_create(&thread, &attr, flusher_main, NULL, true) == 0;
    pthread_attr_destroy(&attr);
}

void wk_flusher_tracing(bool on)
{
    pthread_mutex_lock(&fl.lock);
    fl.tracing = on;
    if (on && !fl.made)
        make_flusher();
    if (fl.cond_ready)
        pthread_cond_signal(&fl.wake);
    pthread_mutex_unlock(&fl.lock);
}

void wk_flusher_atfork_prepare(void)
{
    pthread_mutex_lock(&fl.lock);
}

void wk_flusher_atfork_parent(void)
{
    pthread_mutex_unlock(&fl.lock);
}

void wk_flusher_atfork_child(void)
{
    fl.made = false;
    fl.tracing = false;
    /* The parent's flusher may have been waiting on the condition: it is
     * made anew (destroying it could wait for that waiter forever). */
    memset(&fl.wake, 0, sizeof fl.wake);
    fl.cond_ready = false;
    pthread_mutex_unlock(&fl.lock);
}
