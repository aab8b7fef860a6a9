/* <worker/service.h>: the library's log, the thread options of
 * worker_opts (stack_size, cpu), signals as events, fork(), and the
 * periodic trace flush. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the log ------------------------------------------------------------ */

typedef struct log_seen {
    pthread_mutex_t lock;
    int calls;
    int level;
    char worker[64];
    char msg[256];
} log_seen;

static void record_log(int level, const char *worker_name, const char *msg, void *userdata)
{
    log_seen *s = userdata;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->level = level;
    snprintf(s->worker, sizeof s->worker, "%s", worker_name ? worker_name : "");
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    pthread_mutex_unlock(&s->lock);
}

static int fail_einval(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return WORKER_EINVAL;
}

Test(service, log_callback_receives_a_failed_task_report, .timeout = 10)
{
    log_seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    worker_set_log(record_log, &s);
    worker_t *w = worker_spawn(fail_einval, NULL, &(worker_opts) { .name = "failing" });
    cr_assert_not_null(w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_set_log(NULL, NULL);
    pthread_mutex_lock(&s.lock);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.level, WORKER_LOG_ERROR);
    cr_assert_str_eq(s.worker, "failing");
    cr_assert(strstr(s.msg, "failing") && strstr(s.msg, "WORKER_EINVAL"), "msg: %s", s.msg);
    cr_assert_null(strchr(s.msg, '\n'));
    pthread_mutex_unlock(&s.lock);
    worker_unref(w);
}

Test(service, quiet_workers_and_a_reset_log_do_not_call_back, .timeout = 10)
{
    log_seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    worker_set_log(record_log, &s);
    worker_t *w = worker_spawn(fail_einval, NULL, &(worker_opts) { .quiet = true });
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
    worker_set_log(NULL, &s); /* back to stderr; userdata ignored */
    w = worker_spawn(fail_einval, NULL, &(worker_opts) { .name = "to-stderr" });
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
    pthread_mutex_lock(&s.lock);
    cr_assert_eq(s.calls, 0);
    pthread_mutex_unlock(&s.lock);
}

/* ---- thread options ------------------------------------------------------ */

typedef struct thread_seen {
    size_t stack;
    int cpus; /* CPUs in the thread's affinity mask */
    int cpu; /* the one, when there is one */
} thread_seen;

static int look_at_own_thread(void *arg, void **result)
{
    (void)result;
    thread_seen *seen = arg;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstacksize(&attr, &seen->stack);
        pthread_attr_destroy(&attr);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        seen->cpus = CPU_COUNT(&set);
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &set))
                seen->cpu = i;
    }
    return 0;
}

Test(service, stack_size_is_honoured, .timeout = 10)
{
    const size_t sizes[] = { 256 * 1024, 3 * 1024 * 1024 + 100 };
    for (size_t i = 0; i < 2; i++) {
        thread_seen seen = { 0 };
        worker_t *w
            = worker_spawn(look_at_own_thread, &seen, &(worker_opts) { .stack_size = sizes[i] });
        cr_assert_not_null(w);
        cr_assert_eq(worker_join(w), WORKER_OK);
        cr_assert_geq(seen.stack, sizes[i]);
        cr_assert_lt(seen.stack, sizes[i] + 64 * 1024, "stack %zu for %zu", seen.stack, sizes[i]);
        worker_unref(w);
    }
}

Test(service, bad_thread_options_are_refused, .timeout = 10)
{
    cr_assert_null(worker_new(NULL, NULL, &(worker_opts) { .stack_size = 1 }));
    cr_assert_null(worker_new(NULL, NULL, &(worker_opts) { .cpu = -1 }));
    cr_assert_null(worker_spawn(NULL, NULL, &(worker_opts) { .cpu = -3 }));
    worker_t *w = worker_new(NULL, NULL, &(worker_opts) { .cpu = CPU_SETSIZE + 1 });
    cr_assert_not_null(w);
    cr_assert_eq(worker_start(w), WORKER_EINVAL);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_EREJECTED);
    worker_unref(w);
}

Test(service, cpu_pins_the_thread, .timeout = 10)
{
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    cr_assert_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    if (CPU_COUNT(&allowed) < 2)
        cr_skip_test("fewer than 2 CPUs");
    int last = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &allowed))
            last = i;
    thread_seen seen = { 0 };
    worker_t *w = worker_spawn(look_at_own_thread, &seen, &(worker_opts) { .cpu = last + 1 });
    cr_assert_not_null(w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(seen.cpus, 1);
    cr_assert_eq(seen.cpu, last);
    worker_unref(w);
    /* Without the option: the process's whole mask. */
    seen = (thread_seen) { 0 };
    w = worker_spawn(look_at_own_thread, &seen, NULL);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(seen.cpus, CPU_COUNT(&allowed));
    worker_unref(w);
}

/* ---- signals --------------------------------------------------------------- */

Test(service, a_signal_to_the_process_becomes_an_event_at_the_main_worker, .timeout = 10)
{
    tu_main();
    cr_assert_eq(worker_signal(SIGUSR1, NULL, "USR1"), WORKER_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(kill(getpid(), SIGUSR1), 0);
        void *data = NULL;
        cr_assert_eq(tu_wait("USR1", &data), WORKER_OK);
        cr_assert_eq(TU_INT(data), SIGUSR1);
    }
}

static int ack_on_event(const worker_event_t *e, void *userdata)
{
    worker_fire((worker_t *)userdata, TU_ACK, TU_PTR(TU_INT(worker_event_data(e)) + 1000));
    return 0;
}

Test(service, a_signal_goes_to_the_worker_it_names, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "HUP", ack_on_event, tu_main(), NULL));
    cr_assert_eq(worker_signal(SIGHUP, w, "HUP"), WORKER_OK);
    cr_assert_eq(kill(getpid(), SIGHUP), 0);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, SIGHUP + 1000);
    worker_stop(w);
    worker_join(w);
    worker_unref(w);
}

Test(service, bad_signals_and_names_are_refused, .timeout = 10)
{
    const int bad[] = { 0, -1, NSIG, NSIG + 5, SIGKILL, SIGSTOP };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(worker_signal(bad[i], NULL, "X"), WORKER_EINVAL, "signo %d", bad[i]);
    cr_assert_eq(worker_signal(SIGUSR1, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_signal(SIGUSR1, NULL, ""), WORKER_EINVAL);
    /* Nothing was routed: SIGUSR1 is not blocked. */
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    cr_assert_not(sigismember(&now, SIGUSR1));
}

static int report_mask(void *arg, void **result)
{
    (void)result;
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    *(int *)arg = sigismember(&now, SIGUSR2) + 10 * sigismember(&now, SIGUSR1);
    return 0;
}

Test(service, a_worker_started_after_the_call_blocks_the_signal, .timeout = 10)
{
    cr_assert_eq(worker_signal(SIGUSR2, NULL, "USR2"), WORKER_OK);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR2);
    /* Even when the creating thread unblocked it again. */
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    int seen = -1;
    worker_t *w = worker_spawn(report_mask, &seen, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(seen, 1, "SIGUSR2 blocked: %d, SIGUSR1 blocked: %d", seen % 10, seen / 10);
    worker_unref(w);
}

static void *wait_on_semaphore(void *arg)
{
    sem_wait(arg);
    return NULL;
}

Test(service, a_signal_sent_to_an_older_thread_is_forwarded, .timeout = 10)
{
    tu_main();
    sem_t done;
    sem_init(&done, 0, 0);
    pthread_t older;
    cr_assert_eq(pthread_create(&older, NULL, wait_on_semaphore, &done), 0);
    cr_assert_eq(worker_signal(SIGUSR1, NULL, "USR1"), WORKER_OK);
    cr_assert_eq(pthread_kill(older, SIGUSR1), 0);
    void *data = NULL;
    cr_assert_eq(tu_wait("USR1", &data), WORKER_OK);
    cr_assert_eq(TU_INT(data), SIGUSR1);
    sem_post(&done);
    pthread_join(older, NULL);
    sem_destroy(&done);
}

/* ---- fork ------------------------------------------------------------------ */

static int ack_on_event_plain(const worker_event_t *e, void *userdata)
{
    worker_fire((worker_t *)userdata, TU_ACK, worker_event_data(e));
    return 0;
}

/* The child's checks; its exit status says which one failed (0: none). */
static int child_after_fork(worker_t *parents_worker)
{
    if (worker_fire(parents_worker, "E", NULL) != WORKER_EREJECTED)
        return 1;
    if (worker_is_running(parents_worker))
        return 2;
    if (worker_trace_stop() != WORKER_ESTATE) /* tracing is off */
        return 3;
    worker_t *fresh = worker_spawn(NULL, NULL, &(worker_opts) { .name = "born-in-child" });
    if (!fresh || !worker_listen(fresh, "PING", ack_on_event_plain, worker_current(), NULL))
        return 4;
    if (worker_fire(fresh, "PING", TU_PTR(42)) != WORKER_OK)
        return 5;
    intptr_t v = 0;
    if (tu_wait_ack(&v) != WORKER_OK || v != 42)
        return 6;
    if (worker_stop(fresh) != WORKER_OK || worker_join(fresh) != WORKER_OK)
        return 7;
    worker_unref(fresh);
    return 0;
}

/* Not in the ASan build: there the child's ACK fails to arrive within 5 s
 * in about one run in three (3 of 8 runs), while the default build passes
 * every run (10 of 10). A backtrace of a stuck child shows why: its new
 * worker thread waits in the sanitizer's own allocator
 * (SizeClassAllocator64::GetFromAllocator) for a mutex that a thread of the
 * parent held at the fork; that thread does not exist in the child, so the
 * mutex is never released. gcc 12's libasan does not take its allocator's
 * locks around fork(); the library cannot do it for it. */
#if defined(__SANITIZE_ADDRESS__)
#define FORK_TEST_DISABLED true
#else
#define FORK_TEST_DISABLED false
#endif

Test(service, fork_child_has_only_the_forking_thread, .timeout = 20,
    .disabled = FORK_TEST_DISABLED)
{
    tu_main();
    char path[] = "/tmp/wk_fork_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    worker_t *w = worker_spawn(NULL, NULL, &(worker_opts) { .name = "parents" });
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "PING", ack_on_event_plain, tu_main(), NULL));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(child_after_fork(w)); /* _exit: the child's lost memory is no leak to report */
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child status %d", status);
    cr_assert_eq(WEXITSTATUS(status), 0, "child check %d failed", WEXITSTATUS(status));
    /* The parent goes on: its worker and its trace. */
    cr_assert_eq(worker_fire(w, "PING", TU_PTR(7)), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 7);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    worker_unref(w);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
#ifdef WORKER_TRACE_TOOL
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' check '%s' >/dev/null", WORKER_TRACE_TOOL, path);
    cr_assert_eq(system(cmd), 0, "the parent's trace is not complete");
#endif
    unlink(path);
}

/* ---- the periodic trace flush -------------------------------------------- */

static int tick(void *arg, void **result)
{
    (void)arg;
    (void)result;
    worker_t *me = worker_current();
    for (;;) {
        worker_fire(me, "TICK", NULL);
        if (worker_wait_timeout(0.01) == WORKER_EXIT)
            return WORKER_EXIT;
    }
}

static void traced_until_killed(const char *path)
{
    if (worker_trace_start(path) != WORKER_OK)
        _exit(10);
    worker_t *w = worker_spawn(tick, NULL, &(worker_opts) { .name = "ticker" });
    if (!w)
        _exit(11);
    worker_join(w); /* never returns: the parent kills this process */
    _exit(12);
}

Test(service, a_killed_process_leaves_a_readable_trace, .timeout = 30)
{
    char path[] = "/tmp/wk_killed_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        traced_until_killed(path);
    /* The scenario itself: the process runs about 1.5 s, then dies. */
    struct timespec run = { 1, 500000000L };
    nanosleep(&run, NULL);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_gt(size, 4096, "only %ld bytes reached the file", size);
#ifdef WORKER_TRACE_TOOL
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' check --partial '%s'", WORKER_TRACE_TOOL, path);
    cr_assert_eq(system(cmd), 0, "worker-trace check --partial refused the trace");
#endif
    unlink(path);
}
