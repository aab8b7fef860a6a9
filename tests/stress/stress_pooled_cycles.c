/* Stress: spawn/stop cycles of pooled workers, nothing leaked.
 *
 * A plain program (no Criterion) so that it also runs under the
 * sanitizers. Exit status 0 on success; on failure a message on stderr and
 * exit status 1.
 *
 * Each cycle spawns N pooled workers (each with a listener, one event
 * fired at it; every tenth worker a child of the one before it, so that
 * pooled parents wait for pooled children), waits until every event was
 * handled, then stops, joins and unrefs them all. Nothing may leak:
 * - under ASan (LeakSanitizer at exit: detect_leaks=1 in the test
 *   environment) every allocation must be given back;
 * - in the normal build the resident set size after the last cycle may not
 *   exceed the one after the warm-up cycle (cycle 100 of 1,000, or a tenth
 *   of the cycles) by more than max(64 MiB, 25%): generous, but a leak of
 *   40 bytes per worker over the 1,800,000 workers of cycles 101 to 1,000
 *   would exceed it (8 bytes at the full size, 9,000,000 workers).
 *
 * Usage: stress_pooled_cycles [cycles] [workers per cycle]
 * Defaults: 1,000 cycles of 2,000 workers (ASan: 100 of 2,000; TSan: 20
 * of 1,000), so that ctest's 300 s hold on a loaded 2-CPU machine (about
 * 40 us per worker there, 11 us of it CPU). The size of issue 12, 1,000
 * cycles of 10,000 workers: `stress_pooled_cycles 1000 10000` (about 7
 * minutes on that machine). Environment: WORKER_STRESS_CYCLES,
 * WORKER_STRESS_POOLED_WORKERS. */
#include "test_util.h"

#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_CYCLES 20L
#define DEFAULT_WORKERS 1000L
#define CHECK_RSS false
#elif defined(__SANITIZE_ADDRESS__)
#define DEFAULT_CYCLES 100L
#define DEFAULT_WORKERS 2000L
#define CHECK_RSS false /* the quarantine holds freed memory */
#else
#define DEFAULT_CYCLES 1000L
#define DEFAULT_WORKERS 2000L
#define CHECK_RSS true
#endif

static atomic_long handled;
static long target;
static worker_t *main_w;

static int on_ping(const worker_event_t *e, void *userdata)
{
    (void)e;
    (void)userdata;
    if (atomic_fetch_add(&handled, 1) + 1 == target)
        tu_ack(main_w, 1);
    return 0;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long arg_or_env(int argc, char **argv, int i, const char *env, long dflt)
{
    if (argc > i)
        return atol(argv[i]);
    const char *e = getenv(env);
    return e ? atol(e) : dflt;
}

static int fail(const char *what, long cycle)
{
    fprintf(stderr, "stress_pooled_cycles: FAILED in cycle %ld: %s\n", cycle, what);
    return 1;
}

int main(int argc, char **argv)
{
    long cycles = arg_or_env(argc, argv, 1, "WORKER_STRESS_CYCLES", DEFAULT_CYCLES);
    long n = arg_or_env(argc, argv, 2, "WORKER_STRESS_POOLED_WORKERS", DEFAULT_WORKERS);
    if (cycles < 1 || n < 1)
        return fail("bad arguments", 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_w = worker_current();
    worker_t **w = calloc((size_t)n, sizeof *w);
    if (!w)
        return fail("out of memory", 0);
    long warm = cycles >= 10 ? cycles / 10 : 1; /* cycle 100 of 1,000 */
    long rss_warm = -1, rss_peak = 0;
    double t0 = tu_now();
    for (long c = 1; c <= cycles; c++) {
        atomic_store(&handled, 0);
        target = n;
        for (long i = 0; i < n; i++) {
            worker_opts o = { .pooled = true, .quiet = true };
            if (i % 10 != 0)
                o.parent = w[i - 1]; /* a chain of up to ten, from a pooled root */
            w[i] = worker_new(NULL, NULL, &o);
            if (!w[i])
                return fail("worker_new", c);
            if (!worker_listen(w[i], "PING", on_ping, NULL, NULL))
                return fail("worker_listen", c);
            if (worker_start(w[i]) != WORKER_OK)
                return fail("worker_start", c);
            if (worker_fire(w[i], "PING", NULL) != WORKER_OK)
                return fail("worker_fire", c);
        }
        if (worker_wait_event(TU_ACK, 60, NULL, NULL) != WORKER_OK)
            return fail("not every PING was handled within 60 s", c);
        /* Stop the roots of the chains (each stops and awaits its child),
         * then join everyone. */
        for (long i = 0; i < n; i += 10)
            if (worker_stop(w[i]) != WORKER_OK)
                return fail("worker_stop", c);
        for (long i = 0; i < n; i++) {
            if (worker_join(w[i]) != WORKER_OK)
                return fail("worker_join", c);
            if (worker_is_running(w[i]))
                return fail("running after its join", c);
        }
        for (long i = 0; i < n; i++)
            worker_unref(w[i]);
        long rss = rss_kib();
        if (rss > rss_peak)
            rss_peak = rss;
        if (c == warm)
            rss_warm = rss;
        if (c == warm || c == cycles || c % (cycles >= 10 ? cycles / 10 : 1) == 0)
            printf(
                "stress_pooled_cycles: cycle %ld: rss %ld KiB (%.1f s)\n", c, rss, tu_now() - t0);
    }
    long rss_end = rss_kib();
    free(w);
    double secs = tu_now() - t0;
    printf(
        "stress_pooled_cycles: %ld cycles x %ld pooled workers in %.1f s (%.2f us per "
        "spawn+ping+stop+join); rss after cycle %ld: %ld KiB, at the end: %ld KiB, peak %ld KiB\n",
        cycles, n, secs, secs * 1e6 / ((double)cycles * (double)n), warm, rss_warm, rss_end,
        rss_peak);
    if (CHECK_RSS && cycles > warm && rss_warm > 0 && rss_end > 0) {
        long bound = rss_warm / 4 > 64 * 1024 ? rss_warm / 4 : 64 * 1024;
        if (rss_end - rss_warm > bound) {
            fprintf(stderr,
                "stress_pooled_cycles: rss grew by %ld KiB between cycle %ld and cycle %ld "
                "(bound %ld KiB)\n",
                rss_end - rss_warm, warm, cycles, bound);
            return fail("memory grows from cycle to cycle (a leak?)", cycles);
        }
    }
    printf("stress_pooled_cycles: OK\n");
    return 0;
}
