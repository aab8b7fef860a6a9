/* Shared helpers for the libworker-actor tests (header-only).
 *
 * Used by the Criterion tests (tests/test_*.c) and by the plain stress
 * programs (tests/stress_*.c), so it does not include Criterion. Include it
 * FIRST in every test file: it sets the feature-test macros.
 *
 * Synchronisation rule of the suite: a test never sleeps to wait for
 * something that can be awaited. A worker tells the test's main thread that
 * something happened by firing an event at the main thread's root worker
 * (tu_main(), passed to the worker through its arg or a listener's
 * userdata); the main thread waits for that event with worker_wait_event()
 * (TU_WAIT seconds at most, so a missing event fails instead of hanging).
 *
 * Assertions only run on the test's main thread (Criterion cannot abort a
 * test from another thread): workers record what they saw in a context
 * struct, the main thread checks it after an ACK, a join or a wait_thread
 * (each of which orders the worker's writes before the main thread's
 * reads). */
#ifndef WORKER_TEST_UTIL_H
#define WORKER_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <worker/worker.h>

/* The longest a test waits for an event that must come. */
#define TU_WAIT 5.0

/* The name of the acknowledgement event workers fire at the main thread. */
#define TU_ACK "ACK"

#define TU_PTR(i) ((void *)(intptr_t)(i))
#define TU_INT(p) ((int)(intptr_t)(p))

/* ---- time ------------------------------------------------------------ */

static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the main thread's root worker ------------------------------------ */

static worker_t *tu_main_w;

/* Call at the start of a test, on the test's main thread. */
static inline worker_t *tu_main(void)
{
    if (tu_main_w == NULL)
        tu_main_w = worker_current();
    return tu_main_w;
}

/* ---- ACK events ------------------------------------------------------- */

/* Fire ACK (data `v`) at `to`. */
static inline int tu_ack(worker_t *to, intptr_t v)
{
    return worker_fire(to, TU_ACK, TU_PTR(v));
}

/* Wait (running the calling thread's loop) for an ACK; its data in *v. */
static inline int tu_wait_ack(intptr_t *v)
{
    void *d = NULL;
    int rc = worker_wait_event(TU_ACK, TU_WAIT, NULL, &d);
    if (v != NULL)
        *v = (intptr_t)d;
    return rc;
}

/* Wait for an event `name` (any sender) for TU_WAIT seconds. */
static inline int tu_wait(const char *name, void **data)
{
    return worker_wait_event(name, TU_WAIT, NULL, data);
}

/* A listener that fires ACK at the worker in `userdata`, with the event's
 * data. */
static inline int tu_ack_listener(const worker_event_t *e, void *userdata)
{
    worker_fire((worker_t *)userdata, TU_ACK, worker_event_data(e));
    return 0;
}

/* A listener that counts into the atomic_int in `userdata`. */
static inline int tu_count_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    atomic_fetch_add((atomic_int *)userdata, 1);
    return 0;
}

/* ---- round trip ("sync") ---------------------------------------------- *
 * tu_sync_install(w) adds a permanent listener for "TU_SYNC" on w that fires
 * "TU_SYNCED" back at the sender with the same data. tu_sync(w) fires
 * TU_SYNC from the calling thread and waits for the answer: when it returns
 * WORKER_OK, w has handled (with all its listeners) every event this thread
 * fired at it before. */

static inline int tu_sync_listener(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    worker_fire(worker_event_target(e), "TU_SYNCED", worker_event_data(e));
    return 0;
}

static inline worker_listener_t *tu_sync_install(worker_t *w)
{
    return worker_listen(w, "TU_SYNC", tu_sync_listener, NULL, NULL);
}

struct tu_sync_cond_ {
    worker_t *from;
    intptr_t seq;
};

static inline bool tu_sync_cond_(const worker_event_t *e, void *userdata)
{
    struct tu_sync_cond_ *c = userdata;
    return strcmp(worker_event_name(e), "TU_SYNCED") == 0 && worker_event_target(e) == c->from
        && (intptr_t)worker_event_data(e) == c->seq;
}

static inline int tu_sync(worker_t *w)
{
    static atomic_long seq_;
    struct tu_sync_cond_ c = { w, (intptr_t)atomic_fetch_add(&seq_, 1) + 1 };
    int rc = worker_fire(w, "TU_SYNC", TU_PTR(c.seq));
    if (rc != WORKER_OK)
        return rc;
    return worker_wait_until(tu_sync_cond_, &c, TU_WAIT, NULL);
}

/* ---- plain gates (not worker waits) ----------------------------------- *
 * A task blocked on a gate does not run its event loop: events queue up in
 * its mailbox. Used to hold a worker at a known point. */

typedef struct tu_gate {
    sem_t sem;
} tu_gate;

static inline void tu_gate_init(tu_gate *g)
{
    sem_init(&g->sem, 0, 0);
}
static inline void tu_gate_open(tu_gate *g)
{
    sem_post(&g->sem);
}
static inline void tu_gate_destroy(tu_gate *g)
{
    sem_destroy(&g->sem);
}

/* Wait for the gate, at most `seconds`; 0 when opened, -1 on timeout. */
static inline int tu_gate_pass(tu_gate *g, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(&g->sem, &ts) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* ---- common tasks ----------------------------------------------------- */

/* Wait forever; return what the wait returned (WORKER_EXIT). */
static inline int tu_task_forever(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return worker_wait_forever();
}

/* Wait for GO (TU_WAIT at most), then return the GO event's data as the
 * task's code, with result 5 (0: success). */
static inline int tu_go_task(void *arg, void **result)
{
    (void)arg;
    void *d = NULL;
    int rc = worker_wait_event("GO", TU_WAIT, NULL, &d);
    if (rc != WORKER_OK)
        return rc;
    *result = TU_PTR(5);
    return TU_INT(d);
}

/* Join and drop a worker (NULL is ignored). */
static inline void tu_stop_join_unref(worker_t *w)
{
    if (w == NULL)
        return;
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
}

static inline bool tu_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- the trace tool ---------------------------------------------------- */

#ifdef WORKER_TRACE_TOOL
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* `worker-trace check path`: its exit status (-1: it could not be run).
 * posix_spawn, not system(): forking a sanitized test process is slow. */
static inline int tu_tool_check(const char *path)
{
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = { (char *)WORKER_TRACE_TOOL, (char *)"check", (char *)path, NULL };
    pid_t pid;
    int status = -1;
    if (posix_spawn(&pid, WORKER_TRACE_TOOL, &quiet, NULL, argv, environ) == 0
        && waitpid(pid, &status, 0) == pid)
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    posix_spawn_file_actions_destroy(&quiet);
    return status;
}
#endif

#endif
