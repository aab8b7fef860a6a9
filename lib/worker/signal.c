/* Signals as events: worker_signal.
 *
 * Invariants:
 * - The routes are process-wide (global state: a signal's disposition is
 *   the process's). `routes`, `watched`, `sfd`, `wake` and `thread_made`
 *   change under `sig.lock` only; the signal thread reads a route under it.
 * - A routed signal is blocked in the thread that called worker_signal and
 *   in every thread the library creates afterwards (wk_sigmask), so the
 *   kernel leaves it pending on the process, where the signal thread reads
 *   it from a signalfd. A thread that does not block it (one started
 *   before the call) runs `forward`, the only code that runs in a signal
 *   handler: it re-sends the signal to the signal thread (tgkill, async-
 *   signal-safe) and touches nothing else.
 * - The signal thread is made once, with every signal blocked, and lives
 *   as long as the process. It alone fires the events: one per signal it
 *   reads. It alone uses `sfd` once it runs: worker_signal changes
 *   `watched` (setting `watched_changed`) and pokes `wake`; the thread
 *   applies the new mask to `sfd` (signalfd() again) before it reads. A
 *   signal routed meanwhile stays pending, blocked everywhere, until then.
 *   (signalfd() on an fd another thread reads is safe for the kernel, but
 *   ThreadSanitizer sees it as closing the fd under the reader.) `tid` is its kernel id, written
 * once before any handler is installed (release), read by `forward` (acquire).
 * - A route holds a reference to its target worker (NULL: the main
 *   thread's root, looked up at each delivery).
 */
#define _GNU_SOURCE
#include "wk_signal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <worker/worker.h>

#include "wk_current.h"
#include "wk_log.h"
#include "wk_os.h"
#include "wk_sigmask.h"

typedef struct route {
    bool set;
    worker_t *target; /* a reference; NULL: the main thread's root */
    char *name;
    struct sigaction before; /* the disposition worker_signal replaced */
} route;

static struct {
    pthread_mutex_t lock;
    route routes[NSIG];
    sigset_t watched;
    bool watched_changed; /* `sfd` does not have `watched` yet */
    int sfd; /* signalfd of `watched` */
    int wake; /* eventfd: `watched` changed */
    bool thread_made;
    _Atomic long tid;
} sig = { .lock = PTHREAD_MUTEX_INITIALIZER, .sfd = -1, .wake = -1 };

static void forward(int signo)
{
    int saved = errno;
    long tid = atomic_load_explicit(&sig.tid, memory_order_acquire);
    if (tid > 0)
        syscall(SYS_tgkill, (long)getpid(), tid, (long)signo);
    errno = saved;
}

/* One delivery of `signo`: its event, fired at its target. */
static void deliver(int signo)
{
    pthread_mutex_lock(&sig.lock);
    route *r = &sig.routes[signo];
    if (r->set) {
        worker_t *to = r->target ? r->target : wk_main_root();
        int rc = to ? worker_fire(to, r->name, (void *)(intptr_t)signo) : WORKER_EREJECTED;
        if (rc != WORKER_OK)
            wk_log(WORKER_LOG_WARN, to ? worker_name(to) : NULL,
                "signal %d: event '%s' not delivered: %s", signo, r->name, worker_strerror(rc));
    }
    pthread_mutex_unlock(&sig.lock);
}

static void read_signals(int sfd)
{
    struct signalfd_siginfo info;
    while (read(sfd, &info, sizeof info) == (ssize_t)sizeof info)
        deliver((int)info.ssi_signo);
}

static void *signal_thread(void *arg)
{
    (void)arg;
    wk_set_thread_name("worker-signals");
    atomic_store_explicit(&sig.tid, wk_gettid(), memory_order_release);
    for (;;) {
        pthread_mutex_lock(&sig.lock);
        if (sig.watched_changed)
            signalfd(sig.sfd, &sig.watched, SFD_NONBLOCK | SFD_CLOEXEC);
        sig.watched_changed = false;
        struct pollfd fds[2]
            = { { .fd = sig.sfd, .events = POLLIN }, { .fd = sig.wake, .events = POLLIN } };
        pthread_mutex_unlock(&sig.lock);
        read_signals(fds[0].fd); /* also what was pending before the mask changed */
        if (poll(fds, 2, -1) < 0)
            continue;
        uint64_t pokes;
        if (fds[1].revents & POLLIN)
            (void)!read(fds[1].fd, &pokes, sizeof pokes);
    }
    return NULL;
}

/* Under sig.lock: the descriptors and the thread, once. */
static int ensure_thread(void)
{
    if (sig.thread_made)
        return WORKER_OK;
    sigemptyset(&sig.watched);
    if (sig.sfd < 0)
        sig.sfd = signalfd(-1, &sig.watched, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig.wake < 0)
        sig.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sig.sfd < 0 || sig.wake < 0)
        return WORKER_EAGAIN;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return WORKER_ENOMEM;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int err = wk_thread_create(&thread, &attr, signal_thread, NULL, true);
    pthread_attr_destroy(&attr);
    if (err)
        return WORKER_EAGAIN;
    sig.thread_made = true;
    while (atomic_load_explicit(&sig.tid, memory_order_acquire) == 0)
        sched_yield(); /* `forward` needs it before the first handler */
    return WORKER_OK;
}

/* Under sig.lock: route `signo` to `target` (a reference) as `name`. */
static int set_route(int signo, worker_t *target, char *name, worker_t **old_target)
{
    route *r = &sig.routes[signo];
    if (!r->set) {
        struct sigaction act = { .sa_handler = forward, .sa_flags = SA_RESTART };
        sigfillset(&act.sa_mask);
        if (sigaction(signo, &act, &r->before) != 0)
            return WORKER_EINVAL;
    }
    wk_sigmask_add(signo);
    sigaddset(&sig.watched, signo);
    sig.watched_changed = true; /* the signal thread applies it to sfd */
    *old_target = r->target;
    free(r->name);
    *r = (route) { .set = true, .target = target, .name = name, .before = r->before };
    uint64_t one = 1;
    (void)!write(sig.wake, &one, sizeof one); /* apply the mask, read what is pending */
    return WORKER_OK;
}

int worker_signal(int signo, worker_t *w, const char *name)
{
    sigset_t probe;
    sigemptyset(&probe);
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP
        || sigaddset(&probe, signo) != 0) /* also glibc's own signals */
        return WORKER_EINVAL;
    if (!name || !*name)
        return WORKER_EINVAL;
    char *copy = strdup(name);
    if (!copy)
        return WORKER_ENOMEM;
    if (!w && wk_on_main_thread())
        (void)worker_current(); /* the main thread's root, the target */
    worker_t *old = NULL;
    pthread_mutex_lock(&sig.lock);
    int rc = ensure_thread();
    if (rc == WORKER_OK)
        rc = set_route(signo, worker_ref(w), copy, &old);
    pthread_mutex_unlock(&sig.lock);
    if (rc != WORKER_OK) {
        worker_unref(w);
        free(copy);
    }
    worker_unref(old);
    return rc;
}

void wk_signal_atfork_prepare(void)
{
    pthread_mutex_lock(&sig.lock);
}

void wk_signal_atfork_parent(void)
{
    pthread_mutex_unlock(&sig.lock);
}

void wk_signal_atfork_child(void)
{
    for (int signo = 1; signo < NSIG; signo++) {
        route *r = &sig.routes[signo];
        if (!r->set)
            continue;
        sigaction(signo, &r->before, NULL);
        free(r->name);
        *r = (route) { 0 }; /* the target's reference is the parent's */
    }
    wk_sigmask_reset();
    if (sig.sfd >= 0)
        close(sig.sfd);
    if (sig.wake >= 0)
        close(sig.wake);
    sig.sfd = sig.wake = -1;
    sig.watched_changed = false;
    sig.thread_made = false;
    atomic_store(&sig.tid, 0);
    pthread_mutex_unlock(&sig.lock);
}
