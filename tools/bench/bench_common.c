/* The harness shared by every benchmark program (see bench_common.h). */
#define _GNU_SOURCE
#include "bench_common.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* --- checker ------------------------------------------------------------------ */

void bench_checker_init(bench_checker *c, uint32_t senders)
{
    memset(c, 0, sizeof *c);
    c->senders = senders;
}

bool bench_checker_take(bench_checker *c, const bench_msg *m)
{
    c->received++;
    uint32_t s = m->sender;
    if (s < c->senders && bench_msg_ok(m, s, c->next[s])) {
        c->next[s]++;
        return true;
    }
    if (c->errors++ == 0) {
        c->first_bad_seq = m->seq;
        c->first_bad_sender = s;
    }
    return false;
}

void bench_check_verdict(const bench_checker *c, long expected, bench_result *r)
{
    if (c->errors)
        bench_fail(r, "%llu sequence errors (first: sender %u seq %llu)",
            (unsigned long long)c->errors, c->first_bad_sender,
            (unsigned long long)c->first_bad_seq);
    else if ((long)c->received != expected)
        bench_fail(r, "received %llu of %ld", (unsigned long long)c->received, expected);
}

/* --- results ------------------------------------------------------------------ */

void bench_fig(bench_result *r, const char *name, double value)
{
    for (int i = 0; i < r->nfig; i++) {
        if (strcmp(r->fig[i].name, name) == 0) {
            r->fig[i].value = value;
            return;
        }
    }
    if (r->nfig < BENCH_MAX_FIGS) {
        r->fig[r->nfig].name = name;
        r->fig[r->nfig].value = value;
        r->nfig++;
    }
}

void bench_fail(bench_result *r, const char *fmt, ...)
{
    if (!r->ok)
        return;
    r->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
}

/* --- defaults ------------------------------------------------------------------ */

static bool is(const bench_args *a, const char *id)
{
    return strcmp(a->scenario, id) == 0;
}

long bench_count(const bench_args *a)
{
    if (a->count > 0)
        return a->count;
    if (is(a, "P1") || is(a, "P3") || is(a, "P3p"))
        return a->quick ? 20000 : 2000000;
    if (is(a, "P2") || is(a, "P13"))
        return a->quick ? 2000 : 200000;
    if (is(a, "P12")) /* across processes */
        return a->quick ? 20000 : 1000000;
    if (is(a, "P13x")) /* across processes: about a millisecond each by default */
        return a->quick ? 200 : 10000;
    if (is(a, "P4"))
        return a->quick ? 500 : 50000;
    if (is(a, "P5"))
        return a->quick ? 200 : 10000;
    if (is(a, "P10"))
        return a->quick ? 100 : 1000000;
    if (is(a, "P11"))
        return a->quick ? 100 : 1000;
    return 0;
}

long bench_events(const bench_args *a)
{
    if (a->events > 0)
        return a->events;
    return a->quick ? 20000 : 1000000;
}

int bench_workers(const bench_args *a)
{
    if (a->workers > 0)
        return a->workers;
    if (is(a, "P4"))
        return a->quick ? 16 : 64;
    if (is(a, "P6a"))
        return a->quick ? 100 : 1000;
    if (is(a, "P7"))
        return a->quick ? 10 : 100;
    if (is(a, "P9"))
        return a->quick ? 200 : 1000000;
    if (is(a, "P11"))
        return a->quick ? 10 : 1000;
    return 1;
}

int bench_senders(const bench_args *a)
{
    int s = a->senders > 0 ? a->senders : 4;
    return s > BENCH_MAX_SENDERS ? BENCH_MAX_SENDERS : s;
}

double bench_seconds(const bench_args *a)
{
    if (a->seconds > 0)
        return a->seconds;
    return a->quick ? 0.2 : 2.0;
}

long bench_warmup(long count)
{
    long w = count / 20;
    return w > 2000 ? 2000 : w;
}

/* --- skynet ------------------------------------------------------------------------ */

int bench_skynet_levels(long leaves)
{
    int levels = 0;
    for (long n = leaves; n > 1; n /= 10) {
        if (n % 10)
            return -1;
        levels++;
    }
    return leaves >= 1 ? levels : -1;
}

uint64_t bench_skynet_sum(long leaves)
{
    return (uint64_t)leaves * (uint64_t)(leaves - 1) / 2;
}

long bench_skynet_nodes(long leaves)
{
    long nodes = 0;
    for (long level = leaves; level >= 1; level /= 10)
        nodes += level;
    return nodes;
}

/* --- time, memory, CPU --------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep(double seconds)
{
    struct timespec ts
        = { .tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - floor(seconds)) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

long bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

long bench_heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks + mi.hblkhd);
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
        + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

long bench_context_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

int bench_task_stats(bench_task_stat *out, int max)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while (n < max && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread has gone */
        unsigned long long run = 0, wait = 0, slices = 0;
        if (fscanf(f, "%llu %llu %llu", &run, &wait, &slices) == 3) {
            out[n].tid = strtol(de->d_name, NULL, 10);
            out[n].run_ns = run;
            out[n].slices = slices;
            n++;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

void bench_task_woken(const bench_task_stat *before, int nb, const bench_task_stat *after, int na,
    int *threads, long *wakeups, double *cpu_ms)
{
    *threads = 0;
    *wakeups = 0;
    *cpu_ms = 0;
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < na; j++) {
            if (after[j].tid != before[i].tid)
                continue;
            if (after[j].slices != before[i].slices) {
                (*threads)++;
                *wakeups += (long)(after[j].slices - before[i].slices);
                *cpu_ms += (double)(after[j].run_ns - before[i].run_ns) / 1e6;
            }
            break;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_latency_figs(bench_result *r, uint64_t *ns, long n)
{
    if (n <= 0)
        return;
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)ns[i];
    long i50 = (n - 1) * 50 / 100, i99 = (n - 1) * 99 / 100;
    bench_fig(r, "p50_us", (double)ns[i50] / 1e3);
    bench_fig(r, "p99_us", (double)ns[i99] / 1e3);
    bench_fig(r, "mean_us", sum / (double)n / 1e3);
    bench_fig(r, "max_us", (double)ns[n - 1] / 1e3);
}

void bench_rate_figs(bench_result *r, long messages, double seconds)
{
    if (seconds <= 0)
        seconds = 1e-9;
    bench_fig(r, "events_per_s", (double)messages / seconds);
    bench_fig(r, "ns_per_event", seconds * 1e9 / (double)messages);
}

void bench_rate_result(
    bench_result *r, long received, long messages, uint64_t t0_ns, uint64_t t1_ns)
{
    r->count = received;
    r->elapsed = (double)(t1_ns - t0_ns) / 1e9;
    bench_rate_figs(r, messages, r->elapsed);
}

void bench_latency_result(
    bench_result *r, uint64_t *ns, long done, uint64_t start_ns, uint64_t stop_ns)
{
    r->count = done;
    r->elapsed = (double)(stop_ns - start_ns) / 1e9;
    bench_latency_figs(r, ns, done);
}

void bench_fanout_result(bench_result *r, long delivered, long publishes, int subscribers,
    uint64_t t0_ns, uint64_t t1_ns)
{
    r->count = delivered;
    r->elapsed = (double)(t1_ns - t0_ns) / 1e9;
    long deliveries = publishes * subscribers;
    bench_fig(r, "deliveries_per_s", (double)deliveries / r->elapsed);
    bench_fig(r, "ns_per_delivery", r->elapsed * 1e9 / (double)deliveries);
    bench_fig(r, "subscribers", subscribers);
}

void bench_spawn_result(bench_result *r, long done, uint64_t t0_ns, uint64_t t1_ns)
{
    r->count = done;
    r->elapsed = (double)(t1_ns - t0_ns) / 1e9;
    bench_fig(r, "us_per_worker", r->elapsed * 1e6 / (double)(done ? done : 1));
}

/* --- gate ----------------------------------------------------------------------- */

void bench_gate_init(bench_gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = false;
}

void bench_gate_wait(bench_gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

void bench_gate_open(bench_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

void bench_gate_destroy(bench_gate *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

/* --- command line and output ------------------------------------------------------ */

static void usage(
    FILE *out, const char *prog, const char *system, const bench_scenario *sc, size_t n)
{
    fprintf(out,
        "usage: %s --scenario ID [--count N] [--events N] [--workers N] [--senders N]\n"
        "          [--seconds S] [--runs R] [--quick] [--json] | --list\n"
        "system: %s; scenarios:",
        prog, system);
    for (size_t i = 0; i < n; i++)
        fprintf(out, " %s", sc[i].id);
    fprintf(out, "\n");
}

static bool parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end); /* accepts 2e6 */
    if (errno || end == s || *end || v < 0 || v > 1e15)
        return false;
    *out = (long)v;
    return true;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_number(double v)
{
    if (isfinite(v))
        printf("%.6g", v);
    else
        printf("null");
}

static void print_result(const char *system, const bench_args *a, int run, const bench_result *r)
{
    if (a->json) {
        printf("{\"system\":");
        print_json_string(system);
        printf(",\"scenario\":");
        print_json_string(a->scenario);
        printf(",\"run\":%d,\"ok\":%s,\"quick\":%s,\"count\":%ld,\"elapsed_s\":", run,
            r->ok ? "true" : "false", a->quick ? "true" : "false", r->count);
        print_number(r->elapsed);
        printf(",\"figures\":{");
        for (int i = 0; i < r->nfig; i++) {
            printf("%s", i ? "," : "");
            print_json_string(r->fig[i].name);
            putchar(':');
            print_number(r->fig[i].value);
        }
        printf("},\"error\":");
        if (r->ok)
            printf("null");
        else
            print_json_string(r->error);
        printf("}\n");
    } else {
        printf("%s %s run %d: %s, count %ld, %.3f s", system, a->scenario, run,
            r->ok ? "ok" : "FAILED", r->count, r->elapsed);
        for (int i = 0; i < r->nfig; i++)
            printf(", %s %.6g", r->fig[i].name, r->fig[i].value);
        if (!r->ok)
            printf(" (%s)", r->error);
        printf("\n");
    }
    fflush(stdout);
}

int bench_main(
    int argc, char **argv, const char *system, const bench_scenario *scenarios, size_t n_scenarios)
{
    bench_args a = { .runs = 1 };
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(o, "--json") == 0) {
            a.json = true;
        } else if (strcmp(o, "--quick") == 0) {
            a.quick = true;
        } else if (strcmp(o, "--list") == 0) {
            for (size_t k = 0; k < n_scenarios; k++)
                printf("%s\n", scenarios[k].id);
            return 0;
        } else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout, argv[0], system, scenarios, n_scenarios);
            return 0;
        } else if (v && strcmp(o, "--scenario") == 0) {
            a.scenario = v;
            i++;
        } else if (v && strcmp(o, "--seconds") == 0) {
            char *end;
            a.seconds = strtod(v, &end);
            if (*end || !(a.seconds > 0)) {
                fprintf(stderr, "%s: bad --seconds %s\n", argv[0], v);
                return 2;
            }
            i++;
        } else if (v && parse_long(v, &n)
            && (strcmp(o, "--count") == 0 || strcmp(o, "--events") == 0
                || strcmp(o, "--workers") == 0 || strcmp(o, "--senders") == 0
                || strcmp(o, "--runs") == 0)) {
            if (strcmp(o, "--count") == 0)
                a.count = n;
            else if (strcmp(o, "--events") == 0)
                a.events = n;
            else if (strcmp(o, "--workers") == 0)
                a.workers = (int)n;
            else if (strcmp(o, "--senders") == 0)
                a.senders = (int)n;
            else
                a.runs = (int)n;
            i++;
        } else {
            fprintf(stderr, "%s: bad argument '%s'\n", argv[0], o);
            usage(stderr, argv[0], system, scenarios, n_scenarios);
            return 2;
        }
    }
    if (!a.scenario) {
        usage(stderr, argv[0], system, scenarios, n_scenarios);
        return 2;
    }
    const bench_scenario *sc = NULL;
    for (size_t k = 0; k < n_scenarios; k++)
        if (strcmp(scenarios[k].id, a.scenario) == 0)
            sc = &scenarios[k];
    if (!sc) {
        fprintf(stderr, "%s: system %s has no scenario %s\n", argv[0], system, a.scenario);
        return 2;
    }
    if (a.runs < 1)
        a.runs = 1;
    int status = 0;
    for (int run = 1; run <= a.runs; run++) {
        bench_result r;
        memset(&r, 0, sizeof r);
        r.ok = true;
        sc->fn(&a, &r);
        print_result(system, &a, run, &r);
        if (!r.ok) {
            fprintf(stderr, "%s %s run %d FAILED: %s\n", system, a.scenario, run, r.error);
            status = 1;
        }
    }
    return status;
}
