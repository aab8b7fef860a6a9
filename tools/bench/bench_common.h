/* Shared by every benchmark program of tools/bench: the message, the
 * command line, timing, memory and CPU readings, and the JSON output.
 *
 * Every program does the same work for a scenario: a 32-byte message is
 * copied per send, it carries a sender id and a sequence number, and the
 * receiver checks both (and a checksum word that catches torn copies). A
 * program exits non-zero when a count or a sequence check fails. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* bench_caf.cpp shares the harness */
#endif

/* --- the message ------------------------------------------------------------ */

typedef struct bench_msg {
    uint64_t seq;
    uint32_t sender;
    uint32_t check; /* derived from seq and sender: catches torn copies */
    unsigned char fill[16];
} bench_msg;

#ifdef __cplusplus
static_assert(sizeof(bench_msg) == 32, "the benchmark message is 32 bytes");
#else
_Static_assert(sizeof(bench_msg) == 32, "the benchmark message is 32 bytes");
#endif

#define BENCH_MSG_SIZE ((size_t)32)

/* Threads that run pooled workers, CAF actors and Erlang processes (Part
 * 2): the same for every system, the core count of the machine these
 * figures come from (bench_erlang.erl says +S 2:2 itself). */
#define BENCH_SCHEDULER_THREADS 2
#define BENCH_MAX_SENDERS 64

static inline uint32_t bench_msg_check(uint32_t sender, uint64_t seq)
{
    uint64_t x = (seq ^ ((uint64_t)sender << 40)) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32);
}

static inline void bench_msg_make(bench_msg *m, uint32_t sender, uint64_t seq)
{
    m->seq = seq;
    m->sender = sender;
    m->check = bench_msg_check(sender, seq);
    for (int i = 0; i < 16; i++)
        m->fill[i] = (unsigned char)(seq + (uint64_t)i);
}

/* True when `m` is intact and is `sender`'s message number `seq`. */
static inline bool bench_msg_ok(const bench_msg *m, uint32_t sender, uint64_t seq)
{
    return m->seq == seq && m->sender == sender && m->check == bench_msg_check(sender, seq)
        && m->fill[15] == (unsigned char)(seq + 15u);
}

/* Per-sender order checker used by every receiver (one thread only). */
typedef struct bench_checker {
    uint64_t next[BENCH_MAX_SENDERS];
    uint32_t senders;
    uint64_t received;
    uint64_t errors;
    uint64_t first_bad_seq;
    uint32_t first_bad_sender;
} bench_checker;

void bench_checker_init(bench_checker *c, uint32_t senders);
/* Check one received message; returns false (and counts an error) when it is
 * not the next one of its sender. */
bool bench_checker_take(bench_checker *c, const bench_msg *m);
/* Fails `r` unless exactly `expected` messages arrived, all in order. */
struct bench_result;
void bench_check_verdict(const bench_checker *c, long expected, struct bench_result *r);

/* --- command line ------------------------------------------------------------ */

typedef struct bench_args {
    const char *scenario; /* "P1" ... */
    long count; /* messages / round trips / publishes / workers / skynet leaves; 0: default */
    long events; /* P6b: events queued; 0: default */
    int workers; /* P4 subscribers, P6a/P7 idle workers, P9 workers, P11 pairs; 0: default */
    int senders; /* P3: sender threads; 0: default (4) */
    double seconds; /* P7: observation time; 0: default (2) */
    int runs; /* runs in this process (default 1) */
    bool json; /* one JSON line per run on stdout */
    bool quick; /* small defaults */
} bench_args;

/* --- results ------------------------------------------------------------------ */

#define BENCH_MAX_FIGS 12

typedef struct bench_result {
    bool ok;
    long count; /* what the scenario counted (messages, workers, ...) */
    double elapsed; /* seconds of the timed part */
    int nfig;
    struct {
        const char *name;
        double value;
    } fig[BENCH_MAX_FIGS];
    char error[256];
} bench_result;

void bench_fig(bench_result *r, const char *name, double value);
/* Mark the run failed with a printf-style reason (the first one is kept). */
void bench_fail(bench_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A scenario: fills `r`; the harness prints it. */
typedef void (*bench_scenario_fn)(const bench_args *a, bench_result *r);

typedef struct bench_scenario {
    const char *id;
    bench_scenario_fn fn;
} bench_scenario;

/* Parse the command line, run the scenario `runs` times, print the results.
 * Exit status 0 only when every run passed its checks. */
int bench_main(
    int argc, char **argv, const char *system, const bench_scenario *scenarios, size_t n_scenarios);

/* Default counts (full or quick) for a scenario's parameters. */
long bench_count(const bench_args *a); /* P1/P3/P3p messages, P2 round trips, P4 publishes,
                                          P5 workers, P10 skynet leaves, P11 round trips per pair */
long bench_events(const bench_args *a); /* P6b */
int bench_workers(const bench_args *a); /* P4 64, P6a 1000, P7 100, P9 1,000,000, P11 1000 pairs */
int bench_senders(const bench_args *a); /* P3: 4 */
double bench_seconds(const bench_args *a); /* P7: 2 */
/* Warm-up round trips before the measured ones (P2). */
long bench_warmup(long count);

/* Skynet (P10): a tree whose every inner node has 10 children and whose
 * leaves, `leaves` of them (a power of 10), reply their number 0..leaves-1.
 * The number of levels below the root, or -1 when `leaves` is not a power
 * of 10 (1 is 10^0: a root that is its own leaf). */
int bench_skynet_levels(long leaves);
/* What the root must add up: 0 + 1 + ... + (leaves - 1). */
uint64_t bench_skynet_sum(long leaves);
/* Every node of the tree: 1 + 10 + ... + leaves. */
long bench_skynet_nodes(long leaves);

/* --- time, memory, CPU ----------------------------------------------------- */

uint64_t bench_now_ns(void);
void bench_sleep(double seconds);
/* Resident set size in bytes (/proc/self/statm). */
long bench_rss_bytes(void);
/* Bytes in use in the malloc heap, all arenas (mallinfo2). */
long bench_heap_bytes(void);
/* User + system CPU time of the whole process, in seconds (getrusage). */
double bench_cpu_seconds(void);
/* Voluntary + involuntary context switches of the process. */
long bench_context_switches(void);

/* Per-thread scheduler counters of this process (/proc/self/task/<tid>/schedstat). */
typedef struct bench_task_stat {
    long tid;
    uint64_t run_ns; /* time spent on a CPU */
    uint64_t slices; /* times it was scheduled in */
} bench_task_stat;
/* Fills up to `max` entries; returns how many (or -1). */
int bench_task_stats(bench_task_stat *out, int max);
/* Compares two snapshots: how many threads of `before` were scheduled in
 * again in `after`, how many times in all, and their CPU time in ms. */
void bench_task_woken(const bench_task_stat *before, int nb, const bench_task_stat *after, int na,
    int *threads, long *wakeups, double *cpu_ms);

/* Round-trip statistics: sorts `ns` and fills p50_us, p99_us, mean_us,
 * max_us. */
void bench_latency_figs(bench_result *r, uint64_t *ns, long n);

/* Throughput figures from a message count and elapsed seconds:
 * events_per_s and ns_per_event. */
void bench_rate_figs(bench_result *r, long messages, double seconds);

/* The end of a throughput run: r->count (the messages received), r->elapsed
 * (from t0_ns to t1_ns, bench_now_ns) and the rate figures of `messages`. */
void bench_rate_result(
    bench_result *r, long received, long messages, uint64_t t0_ns, uint64_t t1_ns);

/* The end of a round-trip run: r->count (`done` round trips, timed in `ns`),
 * r->elapsed (from start_ns to stop_ns) and the latency figures. */
void bench_latency_result(
    bench_result *r, uint64_t *ns, long done, uint64_t start_ns, uint64_t stop_ns);

/* The end of a publish run (P4): r->count (the deliveries counted), r->elapsed
 * and the figures of `publishes` to `subscribers` each. */
void bench_fanout_result(bench_result *r, long delivered, long publishes, int subscribers,
    uint64_t t0_ns, uint64_t t1_ns);

/* The end of a spawn run (P5): r->count (`done` spawned and joined),
 * r->elapsed and us_per_worker. */
void bench_spawn_result(bench_result *r, long done, uint64_t t0_ns, uint64_t t1_ns);

/* A start line for several threads: bench_gate_wait() blocks until
 * bench_gate_open(). */
typedef struct bench_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
} bench_gate;
void bench_gate_init(bench_gate *g);
void bench_gate_wait(bench_gate *g);
void bench_gate_open(bench_gate *g);
void bench_gate_destroy(bench_gate *g);

#ifdef __cplusplus
}
#endif
#endif
