/* Writes synthetic libworker-actor traces for the worker-trace tests, using
 * only lib/trace/wk_trace_format.h (the same layout the library writes).
 *
 *   gen_trace small OUT          the known 4-worker scenario (test_trace.py
 *                                holds the counts it must give)
 *   gen_trace sup OUT            two supervisors and their restarted children
 *                                (the viewer's supervision badges)
 *   gen_trace big OUT [N]        about N records (default 1,000,000), 8 workers
 *   gen_trace pooled OUT         three pooled workers in known slices on two
 *                                scheduler threads (test_trace.py pooled)
 *   gen_trace pooled-big OUT [N] about N records of 64 pooled workers on 4
 *                                scheduler threads
 *   gen_trace bad DIR            one file per kind of damage, DIR/bad-*.wktrace
 *   gen_trace fuzz SEED OUT      the small trace with random field values in
 *                                valid chunks (checksums fixed): must never
 *                                crash the tool
 *
 * The writer here is the model the library follows: one buffer of slots per
 * thread, flushed as one chunk (header + slots) when full and at the end,
 * names interned once, a TRACE_END chunk last. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_trace_format.h"

#define START_NS 1000000000000ull /* the clock reading at trace start */
#define US 1000ull
#define MS 1000000ull

typedef struct tbuf {
    uint32_t thread, seq, n, cap;
    uint64_t dropped;
    wk_trace_record *slots;
} tbuf;

static FILE *out;
static uint64_t nchunks;
/* In-memory copy of everything written, for the damage and fuzz modes. */
static unsigned char *mem;
static size_t memlen, memcap;

static void emit(const void *p, size_t n)
{
    if (memlen + n > memcap) {
        memcap = (memlen + n) * 2;
        mem = realloc(mem, memcap);
        if (!mem) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(mem + memlen, p, n);
    memlen += n;
    if (out && fwrite(p, 1, n, out) != n) {
        perror("write");
        exit(1);
    }
}

static void file_header(uint32_t pid)
{
    wk_trace_file_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN);
    h.version = WK_TRACE_VERSION;
    h.minor = WK_TRACE_MINOR;
    h.header_size = sizeof h;
    h.record_size = sizeof(wk_trace_record);
    h.endian = WK_TRACE_ENDIAN_MARK;
    h.clock = WK_TRACE_CLOCK_MONOTONIC;
    h.start_ns = START_NS;
    h.start_realtime_ns = 1767225600000000000ull; /* 2026-01-01 */
    h.pid = pid;
    emit(&h, sizeof h);
}

static void tb_init(tbuf *b, uint32_t thread, uint32_t cap)
{
    memset(b, 0, sizeof *b);
    b->thread = thread;
    b->cap = cap;
    b->slots = calloc(cap, sizeof *b->slots);
}

static void flush(tbuf *b)
{
    if (!b->n)
        return;
    wk_trace_chunk_header ch;
    memset(&ch, 0, sizeof ch);
    ch.magic = WK_TRACE_CHUNK_MAGIC;
    ch.thread = b->thread;
    ch.count = b->n;
    ch.seq = b->seq++;
    ch.dropped = b->dropped;
    ch.checksum = wk_trace_checksum(b->slots, (size_t)b->n * sizeof *b->slots);
    emit(&ch, sizeof ch);
    emit(b->slots, (size_t)b->n * sizeof *b->slots);
    nchunks++;
    b->n = 0;
    b->dropped = 0;
}

static void rec(
    tbuf *b, uint64_t t, uint32_t worker, uint16_t kind, uint16_t flags, uint64_t a, uint64_t bb)
{
    if (b->n == b->cap)
        flush(b);
    wk_trace_record *r = &b->slots[b->n++];
    r->ts = START_NS + t;
    r->worker = worker;
    r->kind = kind;
    r->flags = flags;
    r->a = a;
    r->b = bb;
}

static void name(tbuf *b, uint64_t t, uint32_t id, const char *s)
{
    size_t len = strlen(s);
    uint32_t slots = WK_TRACE_NAME_SLOTS(len);
    if (b->n + slots > b->cap)
        flush(b);
    rec(b, t, 0, WK_TR_NAME, 0, id, len);
    memset(&b->slots[b->n], 0, (size_t)(slots - 1) * sizeof *b->slots);
    memcpy(&b->slots[b->n], s, len);
    b->n += slots - 1;
}

static void trace_end(tbuf *b, uint64_t t, uint64_t dropped)
{
    flush(b);
    uint64_t before = nchunks;
    rec(b, t, 0, WK_TR_TRACE_END, 0, before, dropped);
    flush(b);
}

static uint64_t pack(uint32_t lo, uint32_t hi)
{
    return (uint64_t)lo | (uint64_t)hi << 32;
}

/* --- the small, known scenario ------------------------------------------------- */

enum { W_MAIN = 1, W_BOSS = 2, W_ALPHA = 3, W_BETA = 4 };
enum {
    S_MAIN = 1,
    S_BOSS,
    S_ALPHA,
    S_BETA,
    S_JOB,
    S_WORK,
    S_DONE,
    S_SHUTDOWN,
    S_TICK,
    S_ON_JOB,
    S_ON_WORK,
    S_ON_DONE,
    S_ON_SHUTDOWN,
    S_ON_TICK,
    S_STOP,
    S_GONE,
    S_THREAD
};

static tbuf T[5]; /* thread i runs worker i */
static uint64_t serial;

static void fire(uint64_t t, uint32_t from, uint32_t to, uint64_t ser, uint32_t ev, uint16_t fl)
{
    rec(&T[from], t, from, WK_TR_FIRE, fl, ser, pack(to, ev));
}

/* delivery + one listener run of `dur` */
static void handle(uint64_t t, uint32_t w, uint64_t ser, uint32_t from, uint32_t ev,
    uint32_t listener, uint64_t dur, int32_t ret)
{
    rec(&T[w], t, w, WK_TR_DELIVER, 0, ser, pack(from, ev));
    if (!listener)
        return;
    /* on_job was named by worker_listen_opts.name, on_work by its symbol */
    uint16_t named = listener == S_ON_JOB ? WK_TRF_NAME_GIVEN
        : listener == S_ON_WORK           ? WK_TRF_NAME_SYMBOL
                                          : 0;
    rec(&T[w], t + 1 * US, w, WK_TR_LISTENER_START, named, ser, pack(listener, ev));
    rec(&T[w], t + 1 * US + dur, w, WK_TR_LISTENER_END, ret ? WK_TRF_ERROR : 0, ser,
        pack(listener, (uint32_t)ret));
}

static void small(void)
{
    file_header(4242);
    for (uint32_t i = 1; i <= 4; i++)
        tb_init(&T[i], i, 16); /* small buffers: many interleaved chunks */
    tbuf *m = &T[1];
    const char *names[] = { NULL, "main", "boss", "alpha", "beta", "job", "work", "done",
        "shutdown", "tick", "on_job", "on_work", "on_done", "on_shutdown", "on_tick", "STOP_THREAD",
        "gone", "main-thread" };
    for (uint32_t i = 1; i <= S_THREAD; i++)
        name(m, 0, i, names[i]);
    rec(m, 1 * US, W_MAIN, WK_TR_THREAD, 0, 5001, S_THREAD);
    rec(m, 1 * US, W_MAIN, WK_TR_WORKER_CREATED, WK_TRF_ROOT | WK_TRF_MAIN, 0, S_MAIN);
    rec(m, 2 * US, W_BOSS, WK_TR_WORKER_CREATED, 0, W_MAIN, S_BOSS);
    rec(m, 3 * US, W_BOSS, WK_TR_WORKER_STARTED, 0, 5002, 0);
    rec(&T[2], 10 * US, W_BOSS, WK_TR_THREAD, 0, 5002, 0);
    rec(&T[2], 11 * US, W_ALPHA, WK_TR_WORKER_CREATED, 0, W_BOSS, S_ALPHA);
    rec(&T[2], 12 * US, W_BETA, WK_TR_WORKER_CREATED, WK_TRF_DAEMON, W_BOSS, S_BETA);
    rec(&T[3], 20 * US, W_ALPHA, WK_TR_THREAD, 0, 5003, 0);
    rec(&T[3], 20 * US, W_ALPHA, WK_TR_WORKER_STARTED, 0, 5003, 0);
    rec(&T[4], 21 * US, W_BETA, WK_TR_THREAD, 0, 5004, 0);
    rec(&T[4], 21 * US, W_BETA, WK_TR_WORKER_STARTED, 0, 5004, 0);
    /* main waits for boss for the whole run */
    rec(m, 30 * US, W_MAIN, WK_TR_WAIT_BEGIN, WK_TRW_THREAD, UINT64_MAX, W_BOSS);
    rec(&T[2], 30 * US, W_BOSS, WK_TR_WAIT_BEGIN, WK_TRW_FOREVER, UINT64_MAX, 0);

    /* main -> boss: job x3, runs of 100, 200, 300 us */
    for (int i = 0; i < 3; i++) {
        uint64_t t = 100 * US + (uint64_t)i * 1000 * US;
        fire(t, W_MAIN, W_BOSS, ++serial, S_JOB, 0);
        handle(
            t + 5 * US, W_BOSS, serial, W_MAIN, S_JOB, S_ON_JOB, (uint64_t)(i + 1) * 100 * US, 0);
        /* boss -> alpha work (5 in all) and -> beta work (4 in all) */
        uint64_t tb = t + 10 * US;
        for (int k = 0; k < (i < 2 ? 2 : 0); k++) {
            fire(tb, W_BOSS, W_ALPHA, ++serial, S_WORK, 0);
            uint64_t run = (uint64_t)(10 * (i * 2 + k + 1)) * US; /* 10, 20, 30, 40, 50 */
            handle(tb + 20 * US, W_ALPHA, serial, W_BOSS, S_WORK, S_ON_WORK, run, 0);
            tb += 100 * US;
        }
        if (i == 2) { /* the fifth work */
            fire(tb, W_BOSS, W_ALPHA, ++serial, S_WORK, 0);
            handle(tb + 300 * US, W_ALPHA, serial, W_BOSS, S_WORK, S_ON_WORK, 50 * US, 0);
            tb += 5 * US;
        }
        for (int k = 0; k < 1; k++) {
            fire(tb, W_BOSS, W_BETA, ++serial, S_WORK, 0);
            handle(tb + 40 * US, W_BETA, serial, W_BOSS, S_WORK, S_ON_WORK, 500 * US, 0);
            tb += 5 * US;
        }
        rec(&T[4], t + 15 * US, W_BETA, WK_TR_MAILBOX_DEPTH, 0, (uint64_t)1 << i, 0);
    }
    /* beta's fourth work; its mailbox went 1, 2, 4, then back to 0 */
    fire(2600 * US, W_BOSS, W_BETA, ++serial, S_WORK, 0);
    handle(2700 * US, W_BETA, serial, W_BOSS, S_WORK, S_ON_WORK, 500 * US, 0);
    rec(&T[4], 3800 * US, W_BETA, WK_TR_MAILBOX_DEPTH, 0, 0, 0);

    /* alpha waits for "work" for 2 ms (its longest wait) */
    rec(&T[3], 3000 * US, W_ALPHA, WK_TR_WAIT_BEGIN, WK_TRW_EVENT, 5 * MS, S_WORK);
    rec(&T[3], 5000 * US, W_ALPHA, WK_TR_WAIT_END, WK_TRW_EVENT, (uint64_t)-2, S_WORK);
    /* beta sleeps 500 us */
    rec(&T[4], 3900 * US, W_BETA, WK_TR_WAIT_BEGIN, WK_TRW_TIMEOUT, 500 * US, 0);
    rec(&T[4], 4400 * US, W_BETA, WK_TR_WAIT_END, WK_TRW_TIMEOUT, 0, 0);
    /* beta dropped 3 records here */
    T[4].dropped += 3;
    rec(&T[4], 4401 * US, W_BETA, WK_TR_DROPPED, 0, 3, 0);

    /* alpha bubbles done: boss, then main (hop up) */
    fire(5100 * US, W_ALPHA, W_BOSS, ++serial, S_DONE, WK_TRF_BUBBLE);
    fire(5101 * US, W_ALPHA, W_MAIN, serial, S_DONE, WK_TRF_BUBBLE | WK_TRF_HOP_UP);
    handle(5110 * US, W_BOSS, serial, W_ALPHA, S_DONE, S_ON_DONE, 50 * US, 0);
    handle(5120 * US, W_MAIN, serial, W_ALPHA, S_DONE, S_ON_DONE, 20 * US, 7); /* fails: 7 */

    /* boss paused 5200..5600 us by main; a timer on boss */
    rec(&T[2], 5200 * US, W_BOSS, WK_TR_PAUSE, 0, W_MAIN, 0);
    rec(&T[2], 5250 * US, W_BOSS, WK_TR_TIMER_ARMED, 0, 1, 1 * MS);
    rec(&T[2], 5600 * US, W_BOSS, WK_TR_RESUME, 0, W_MAIN, 0);
    rec(&T[2], 6260 * US, W_BOSS, WK_TR_TIMER_FIRED, 0, 1, 10 * US);
    /* a request of main's reached boss after its deadline: not delivered */
    rec(&T[2], 6270 * US, W_BOSS, WK_TR_REQUEST_EXPIRED, 0, ++serial, pack(W_MAIN, S_TICK));

    /* main publishes tick on a channel: alpha and beta */
    rec(m, 6300 * US, W_MAIN, WK_TR_CHANNEL_PUBLISH, 2, ++serial, pack(1, S_TICK));
    fire(6300 * US, W_MAIN, W_ALPHA, serial, S_TICK, WK_TRF_CHANNEL);
    fire(6301 * US, W_MAIN, W_BETA, serial, S_TICK, WK_TRF_CHANNEL);
    handle(6310 * US, W_ALPHA, serial, W_MAIN, S_TICK, S_ON_TICK, 25 * US, 0);
    handle(6320 * US, W_BETA, serial, W_MAIN, S_TICK, S_ON_TICK, 25 * US, 0);
    rec(m, 6400 * US, W_MAIN, WK_TR_DEFER_SETTLED, 0, 9, 0);
    rec(m, 6401 * US, W_MAIN, WK_TR_FUTURE_SETTLED, 0, 3, 0);

    /* main broadcasts shutdown from boss down: boss, alpha, beta (hops down) */
    fire(7000 * US, W_MAIN, W_BOSS, ++serial, S_SHUTDOWN, WK_TRF_BROADCAST);
    fire(7001 * US, W_MAIN, W_ALPHA, serial, S_SHUTDOWN, WK_TRF_BROADCAST | WK_TRF_HOP_DOWN);
    fire(7002 * US, W_MAIN, W_BETA, serial, S_SHUTDOWN, WK_TRF_BROADCAST | WK_TRF_HOP_DOWN);
    handle(7010 * US, W_BOSS, serial, W_MAIN, S_SHUTDOWN, S_ON_SHUTDOWN, 15 * US, 0);
    handle(7020 * US, W_ALPHA, serial, W_MAIN, S_SHUTDOWN, S_ON_SHUTDOWN, 15 * US, 0);
    handle(7030 * US, W_BETA, serial, W_MAIN, S_SHUTDOWN, S_ON_SHUTDOWN, 15 * US, 0);

    /* main stops boss (a library event, no listener); boss stops its children */
    fire(8000 * US, W_MAIN, W_BOSS, ++serial, S_STOP, WK_TRF_LIBRARY);
    handle(8010 * US, W_BOSS, serial, W_MAIN, S_STOP, 0, 0, 0);
    rec(&T[2], 8011 * US, W_BOSS, WK_TR_STOP, 0, W_MAIN, 0);
    rec(&T[2], 8012 * US, W_BOSS, WK_TR_WAIT_END, WK_TRW_FOREVER, (uint64_t)-1, 0);
    rec(&T[3], 8100 * US, W_ALPHA, WK_TR_STOP, 0, W_BOSS, 0);
    rec(&T[3], 8200 * US, W_ALPHA, WK_TR_WORKER_ENDED, 0, 0, 0);
    rec(&T[4], 8100 * US, W_BETA, WK_TR_STOP, 0, W_BOSS, 0);
    rec(&T[4], 8300 * US, W_BETA, WK_TR_WORKER_ENDED, 0, (uint64_t)-1, 0);
    rec(&T[2], 8400 * US, W_BOSS, WK_TR_WORKER_ENDED, 0, 0, 0);
    rec(m, 8500 * US, W_MAIN, WK_TR_WAIT_END, WK_TRW_THREAD, 0, W_BOSS);
    /* main fires at beta after it ended: rejected */
    rec(m, 8600 * US, W_MAIN, WK_TR_REJECT, WK_TRR_NOT_RUNNING, ++serial, pack(W_BETA, S_GONE));
    for (int i = 4; i >= 2; i--)
        flush(&T[i]);
    trace_end(m, 9000 * US, 3);
}

/* --- a burst at the end of a long, idle run ----------------------------------------- */

/* Two workers live for 10 s; all their messages fall in 9.900..9.902 s
 * (the viewer's fit-to-activity must show that, not the 10 s). */
static void burst(void)
{
    file_header(4343);
    tb_init(&T[1], 1, 64);
    tbuf *m = &T[1];
    name(m, 0, 1, "main");
    name(m, 0, 2, "sink");
    name(m, 0, 3, "burst");
    name(m, 0, 4, "on_burst");
    rec(m, 1 * US, 1, WK_TR_THREAD, 0, 6001, 0);
    rec(m, 1 * US, 1, WK_TR_WORKER_CREATED, WK_TRF_ROOT | WK_TRF_MAIN, 0, 1);
    rec(m, 2 * US, 2, WK_TR_WORKER_CREATED, 0, 1, 2);
    rec(m, 3 * US, 2, WK_TR_WORKER_STARTED, 0, 6001, 0);
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t t = 9900 * MS + i * 20 * US;
        rec(m, t, 1, WK_TR_FIRE, 0, i + 1, pack(2, 3));
        rec(m, t + 2 * US, 2, WK_TR_DELIVER, 0, i + 1, pack(1, 3));
        rec(m, t + 3 * US, 2, WK_TR_LISTENER_START, 0, i + 1, pack(4, 3));
        rec(m, t + 13 * US, 2, WK_TR_LISTENER_END, 0, i + 1, pack(4, 0));
    }
    rec(m, 10000 * MS, 2, WK_TR_WORKER_ENDED, 0, 0, 0);
    trace_end(m, 10000 * MS, 0);
}

/* --- supervision ------------------------------------------------------------------ */

/* main (1) has two supervisors: "sup" (2, ONE_FOR_ALL, 3 in 5 s) with
 * "flaky" (3) and "steady" (4), restarted together twice after flaky
 * fails; "pool" (5, ONE_FOR_ONE, 10 in 1 s, backoff 20 ms) with "w1" (6),
 * restarted 4 times, and "w2" (7), never. */
static void restart(
    tbuf *m, uint64_t t, uint32_t child, uint32_t sup, uint32_t n, int64_t why, uint16_t fl)
{
    rec(m, t, child, WK_TR_WORKER_ENDED, 0, (uint64_t)why, 0);
    rec(m, t + 10 * US, child, WK_TR_CHILD_RESTART, fl, pack(sup, n), (uint64_t)why);
    rec(m, t + 20 * US, child, WK_TR_WORKER_STARTED, 0, 7000 + child, 0);
}

static void supervision(void)
{
    static const char *const names[] = { "", "main", "sup", "flaky", "steady", "pool", "w1", "w2" };
    static const uint32_t parents[] = { 0, 0, 1, 2, 2, 1, 5, 5 };
    file_header(4444);
    tb_init(&T[1], 1, 64);
    tbuf *m = &T[1];
    for (uint32_t i = 1; i <= 7; i++)
        name(m, 0, i, names[i]);
    rec(m, 1 * US, 1, WK_TR_THREAD, 0, 7001, 0);
    for (uint32_t i = 1; i <= 7; i++) {
        rec(m, i * US, i, WK_TR_WORKER_CREATED, i == 1 ? WK_TRF_ROOT | WK_TRF_MAIN : 0, parents[i],
            i);
        rec(m, i * US + 500, i, WK_TR_WORKER_STARTED, 0, 7000 + i, 0);
        if (i == 2)
            rec(m, i * US + 600, 2, WK_TR_SUPERVISOR_STARTED, 0, pack(1, 3), pack(5000, 0));
        if (i == 5)
            rec(m, i * US + 600, 5, WK_TR_SUPERVISOR_STARTED, 0, pack(0, 10), pack(1000, 20));
    }
    for (uint32_t n = 1; n <= 2; n++) {
        restart(m, n * 10 * MS, 3, 2, n, 7, WK_TRF_GROUP);
        restart(m, n * 10 * MS + 100 * US, 4, 2, n, 7, WK_TRF_GROUP);
    }
    for (uint32_t n = 1; n <= 4; n++)
        restart(m, 30 * MS + n * 5 * MS, 6, 5, n, -1, 0);
    for (uint32_t i = 7; i >= 1; i--)
        rec(m, 60 * MS + (8 - i) * US, i, WK_TR_WORKER_ENDED, 0, 0, 0);
    trace_end(m, 61 * MS, 0);
}

/* --- a big trace ------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void big(uint64_t target)
{
    enum { NWK = 8 };
    static const uint32_t parent[NWK + 1] = { 0, 0, 1, 1, 1, 2, 2, 3, 4 };
    static const char *wn[NWK + 1]
        = { NULL, "main", "router", "store", "cache", "shard-a", "shard-b", "flusher", "evictor" };
    static const char *ev[] = { "get", "put", "ack", "sync", "evict", "stat" };
    file_header(777);
    tbuf tb[NWK + 1];
    for (uint32_t i = 1; i <= NWK; i++)
        tb_init(&tb[i], i, 2048);
    uint64_t t = 1000;
    uint32_t sid = 1;
    for (uint32_t i = 1; i <= NWK; i++)
        name(&tb[1], t, sid++, wn[i]); /* ids 1..8 */
    for (uint32_t e = 0; e < 6; e++)
        name(&tb[1], t, sid++, ev[e]); /* ids 9..14 */
    name(&tb[1], t, sid++, "on_message"); /* 15 */
    for (uint32_t i = 1; i <= NWK; i++) {
        rec(&tb[i], t, i, WK_TR_THREAD, 0, 9000 + i, 0);
        rec(&tb[i], t + i, i, WK_TR_WORKER_CREATED, i == 1 ? WK_TRF_ROOT | WK_TRF_MAIN : 0,
            parent[i], i);
        rec(&tb[i], t + i + 1, i, WK_TR_WORKER_STARTED, 0, 9000 + i, 0);
    }
    uint64_t written = 3 * NWK + NWK, ser = 0; /* THREAD/CREATED/STARTED and the ENDED below */
    uint64_t busy_until[NWK + 1] = { 0 };
    uint32_t depth[NWK + 1] = { 0 };
    while (written < target) {
        t += 500 + next_rand() % 1500;
        uint32_t from = 1 + (uint32_t)(next_rand() % NWK);
        uint32_t to = 1 + (uint32_t)(next_rand() % NWK);
        uint32_t e = (uint32_t)(next_rand() % 6);
        rec(&tb[from], t, from, WK_TR_FIRE, 0, ++ser, pack(to, 9 + e));
        uint64_t td = t + 200 + next_rand() % 3000;
        if (td < busy_until[to])
            td = busy_until[to] + 50;
        uint64_t dur = 300 + next_rand() % 4000;
        rec(&tb[to], td, to, WK_TR_DELIVER, 0, ser, pack(from, 9 + e));
        rec(&tb[to], td + 20, to, WK_TR_LISTENER_START, 0, ser, pack(15, 9 + e));
        rec(&tb[to], td + 20 + dur, to, WK_TR_LISTENER_END, 0, ser, pack(15, 0));
        busy_until[to] = td + 40 + dur;
        written += 4;
        uint32_t d = (uint32_t)(next_rand() % 9);
        if ((d ^ depth[to]) > depth[to] || d == 0) { /* a power-of-two change, roughly */
            rec(&tb[to], td, to, WK_TR_MAILBOX_DEPTH, 0, d, 0);
            depth[to] = d;
            written++;
        }
    }
    for (uint32_t i = NWK; i >= 1; i--)
        rec(&tb[i], t + 100000 + i, i, WK_TR_WORKER_ENDED, 0, 0, 0);
    for (uint32_t i = NWK; i >= 2; i--)
        flush(&tb[i]);
    trace_end(&tb[1], t + 200000, 0);
}

/* --- pooled workers: slices on scheduler threads ------------------------------------ */

/* A pooled worker's slice on scheduler thread `sched` (its buffer):
 * SLICE_BEGIN, then `events` deliveries of "x" from main, each a 5 us run
 * of on_x 1 us apart, then SLICE_END (ended: after a STOP and the end). */
static void pooled_slice(
    tbuf *b, uint64_t t, uint32_t w, uint32_t sched, uint32_t events, bool ended, uint64_t *ser)
{
    rec(b, t, w, WK_TR_SLICE_BEGIN, 0, sched, 0);
    uint64_t at = t + 1 * US;
    for (uint32_t k = 0; k < events; k++, at += 7 * US) {
        ++*ser;
        rec(b, at, w, WK_TR_DELIVER, 0, *ser, pack(1, 6));
        rec(b, at + 1 * US, w, WK_TR_LISTENER_START, WK_TRF_NAME_GIVEN, *ser, pack(7, 6));
        rec(b, at + 6 * US, w, WK_TR_LISTENER_END, 0, *ser, pack(7, 0));
    }
    if (ended) {
        rec(b, at, w, WK_TR_STOP, 0, 1, 0);
        rec(b, at + 1 * US, w, WK_TR_WORKER_ENDED, 0, (uint64_t)-1, 0);
        at += 2 * US;
    }
    rec(b, at, w, WK_TR_SLICE_END, ended ? WK_TRF_ENDED : 0, sched, 0);
}

/* main (1, a thread of its own) and three pooled workers, "pool-a" (2),
 * "pool-b" (3), "pool-c" (4), on wk-sched-0 (trace thread 2, tid 8002)
 * and wk-sched-1 (thread 3, tid 8003). Slices (start ms, scheduler,
 * events; the last of each ends its run):
 *   pool-a  1 s0 2,  3 s1 1,  5 s0 0 ended  -> s0 2, s1 1
 *   pool-b  2 s1 3,  6 s1 0 ended           -> s1 2
 *   pool-c  1.5 s1 1, 7 s0 0 ended          -> s0 1, s1 1
 * The fires of the 7 events are on main's thread, before each slice. */
static void pooled(void)
{
    file_header(4545);
    tbuf b[4];
    for (uint32_t i = 1; i <= 3; i++)
        tb_init(&b[i], i, 64);
    static const char *const names[] = { "", "main", "pool-a", "pool-b", "pool-c", "main-thread",
        "x", "on_x", "wk-sched-0", "wk-sched-1" };
    for (uint32_t i = 1; i <= 9; i++)
        name(&b[1], 0, i, names[i]);
    rec(&b[1], 1 * US, 1, WK_TR_THREAD, 0, 8001, 5);
    rec(&b[1], 1 * US, 1, WK_TR_WORKER_CREATED, WK_TRF_ROOT | WK_TRF_MAIN, 0, 1);
    rec(&b[2], 2 * US, 0, WK_TR_THREAD, 0, 8002, 8);
    rec(&b[3], 2 * US, 0, WK_TR_THREAD, 0, 8003, 9);
    for (uint32_t w = 2; w <= 4; w++) {
        rec(&b[1], (10 + w) * US, w, WK_TR_WORKER_CREATED, 0, 1, w);
        rec(&b[1], (20 + w) * US, w, WK_TR_WORKER_STARTED, WK_TRF_POOLED, 8001, 0);
    }
    /* the fires: serials 1..7 in the order the slices take them */
    static const struct {
        uint64_t t;
        uint32_t w, sched, events;
        bool ended;
    } sl[] = {
        { 1000, 2, 0, 2, false },
        { 1500, 4, 1, 1, false },
        { 2000, 3, 1, 3, false },
        { 3000, 2, 1, 1, false },
        { 5000, 2, 0, 0, true },
        { 6000, 3, 1, 0, true },
        { 7000, 4, 0, 0, true },
    };
    uint64_t fser = 0, ser = 0;
    for (size_t i = 0; i < sizeof sl / sizeof *sl; i++) {
        for (uint32_t k = 0; k < sl[i].events; k++)
            rec(&b[1], sl[i].t * US - 100 * US + k, 1, WK_TR_FIRE, 0, ++fser, pack(sl[i].w, 6));
        pooled_slice(&b[2 + sl[i].sched], sl[i].t * US, sl[i].w, sl[i].sched, sl[i].events,
            sl[i].ended, &ser);
    }
    flush(&b[2]);
    flush(&b[3]);
    trace_end(&b[1], 8000 * US, 0);
}

/* About `target` records: main fires "x" at one of 64 pooled workers; one
 * of 4 scheduler threads (each its own trace thread) runs the worker for a
 * slice of 1 to 3 events (4 records an event with the fire, 2 a slice);
 * neither a scheduler thread nor a worker runs two slices at once. */
static void pooled_big(uint64_t target)
{
    enum { NPW = 64, NS = 4 };
    file_header(4646);
    tbuf tb[NS + 2];
    for (uint32_t i = 1; i <= NS + 1; i++)
        tb_init(&tb[i], i, 4096);
    name(&tb[1], 0, 1, "main");
    name(&tb[1], 0, 2, "x");
    name(&tb[1], 0, 3, "on_x");
    char nm[32];
    for (uint32_t s = 0; s < NS; s++) {
        snprintf(nm, sizeof nm, "wk-sched-%u", s);
        name(&tb[1], 0, 10 + s, nm);
        rec(&tb[2 + s], 1 * US, 0, WK_TR_THREAD, 0, 9100 + s, 10 + s);
    }
    for (uint32_t w = 0; w < NPW; w++) {
        snprintf(nm, sizeof nm, "pw-%02u", w);
        name(&tb[1], 0, 100 + w, nm);
    }
    rec(&tb[1], 1 * US, 1, WK_TR_THREAD, 0, 9000, 0);
    rec(&tb[1], 1 * US, 1, WK_TR_WORKER_CREATED, WK_TRF_ROOT | WK_TRF_MAIN, 0, 1);
    for (uint32_t w = 0; w < NPW; w++) {
        rec(&tb[1], 2 * US + w, 2 + w, WK_TR_WORKER_CREATED, 0, 1, 100 + w);
        rec(&tb[1], 3 * US + w, 2 + w, WK_TR_WORKER_STARTED, WK_TRF_POOLED, 9000, 0);
    }
    uint64_t t = 10 * US, written = 4 + 2 * NPW + NS, ser = 0, free_at[NS] = { 0 };
    uint64_t w_free[NPW + 2] = { 0 }; /* a worker runs in one slice at a time */
    while (written < target) {
        t += 300 + next_rand() % 900;
        uint32_t w = 2 + (uint32_t)(next_rand() % NPW), s = (uint32_t)(next_rand() % NS);
        uint32_t events = 1 + (uint32_t)(next_rand() % 3);
        uint64_t at = t + 100 > free_at[s] ? t + 100 : free_at[s] + 50;
        at = at > w_free[w] ? at : w_free[w] + 50;
        rec(&tb[2 + s], at, w, WK_TR_SLICE_BEGIN, 0, s, 0);
        for (uint32_t k = 0; k < events; k++) {
            rec(&tb[1], t + k, 1, WK_TR_FIRE, 0, ++ser, pack(w, 2));
            uint64_t dur = 200 + next_rand() % 2000;
            rec(&tb[2 + s], at + 10, w, WK_TR_DELIVER, 0, ser, pack(1, 2));
            rec(&tb[2 + s], at + 20, w, WK_TR_LISTENER_START, 0, ser, pack(3, 2));
            rec(&tb[2 + s], at + 20 + dur, w, WK_TR_LISTENER_END, 0, ser, pack(3, 0));
            at += 40 + dur;
        }
        rec(&tb[2 + s], at, w, WK_TR_SLICE_END, 0, s, 0);
        free_at[s] = w_free[w] = at;
        written += 2 + 4 * (uint64_t)events;
    }
    for (uint32_t i = NS + 1; i >= 2; i--)
        flush(&tb[i]);
    trace_end(&tb[1], t + 100 * MS, 0);
}

/* --- damaged files ----------------------------------------------------------------- */

static void put_file(const char *dir, const char *nm, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bad-%s.wktrace", dir, nm);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A file with one chunk holding `r` (n records), checksum right. */
static void put_crafted(const char *dir, const char *nm, const wk_trace_record *r, uint32_t n)
{
    memlen = 0;
    out = NULL;
    file_header(1);
    wk_trace_chunk_header ch = { .magic = WK_TRACE_CHUNK_MAGIC, .thread = 1, .count = n };
    ch.checksum = wk_trace_checksum(r, n * sizeof *r);
    emit(&ch, sizeof ch);
    emit(r, n * sizeof *r);
    put_file(dir, nm, mem, memlen);
}

static void bad(const char *dir)
{
    out = NULL;
    small();
    unsigned char *good = malloc(memlen);
    size_t n = memlen;
    memcpy(good, mem, n);
    unsigned char *b = malloc(n);
    wk_trace_chunk_header ch;
    const size_t c0 = sizeof(wk_trace_file_header); /* first chunk */

    put_file(dir, "empty", good, 0);
    put_file(dir, "short-header", good, 40);
    put_file(dir, "cut-mid-chunk", good, n - 100);
    put_file(dir, "cut-chunk-header", good, c0 + 10);
    put_file(dir, "no-end", good, n - 64); /* the TRACE_END chunk is 32 + 32 bytes */

    memcpy(b, good, n);
    b[0] = 'X';
    put_file(dir, "magic", b, n);

    memcpy(b, good, n);
    ((wk_trace_file_header *)(void *)b)->version = WK_TRACE_VERSION + 1;
    put_file(dir, "version", b, n);

    memcpy(b, good, n);
    ((wk_trace_file_header *)(void *)b)->record_size = 48;
    put_file(dir, "record-size", b, n);

    memcpy(b, good, n);
    memcpy(&ch, b + c0, sizeof ch);
    ch.count = 0xffffffffu;
    memcpy(b + c0, &ch, sizeof ch);
    put_file(dir, "absurd-count", b, n);

    memcpy(b, good, n);
    ch.count = WK_TRACE_MAX_CHUNK_RECORDS; /* allowed, but far past the file's end */
    memcpy(b + c0, &ch, sizeof ch);
    put_file(dir, "count-past-end", b, n);

    memcpy(b, good, n);
    b[c0 + sizeof ch + 40] ^= 0x10; /* a record byte: checksum */
    put_file(dir, "checksum", b, n);

    memcpy(b, good, n);
    memcpy(&ch, b + c0, sizeof ch);
    ch.seq = 5;
    memcpy(b + c0, &ch, sizeof ch);
    put_file(dir, "seq", b, n);

    memcpy(b, good, n);
    b[c0 + 1] ^= 0xff; /* chunk magic */
    put_file(dir, "chunk-magic", b, n);

    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)next_rand();
    put_file(dir, "garbage", b, n);

    /* garbage after a valid header */
    memcpy(b, good, c0);
    put_file(dir, "garbage-after-header", b, n);

    /* crafted chunks with valid checksums */
    wk_trace_record r[4];
    memset(r, 0, sizeof r);
    r[0].ts = START_NS + 1;
    r[0].kind = WK_TR_NAME;
    r[0].a = 1;
    r[0].b = 4000; /* needs 125 slots, the chunk has 2 */
    put_crafted(dir, "name-overflow", r, 2);
    r[0].b = 40;
    memset(&r[1], 'x', 64); /* 64 bytes where 40 + zero padding belong */
    put_crafted(dir, "name-padding", r, 3);
    memset(r, 0, sizeof r);
    r[0].ts = START_NS + 1;
    r[0].kind = 999;
    put_crafted(dir, "kind", r, 1);
    r[0].kind = WK_TR_FIRE;
    r[0].ts = START_NS - 5;
    put_crafted(dir, "timestamp", r, 1);
    r[0].ts = START_NS + 5;
    r[0].kind = WK_TR_WAIT_BEGIN;
    r[0].flags = 77;
    put_crafted(dir, "wait-kind", r, 1);
    r[0].kind = WK_TR_TRACE_END;
    r[0].flags = 0;
    r[0].a = 0;
    r[1] = r[0];
    r[1].kind = WK_TR_FIRE;
    put_crafted(dir, "end-not-alone", r, 2);
    free(good);
    free(b);
}

/* --- structure-aware fuzz: valid chunks, random fields ------------------------------ */

static void fuzz(uint64_t seed, const char *path)
{
    out = NULL;
    small();
    rng = seed * 2654435761u + 1;
    size_t off = sizeof(wk_trace_file_header);
    static const uint16_t kinds[] = { 2, 4, 16, 17, 18, 19, 32, 33, 34, 35, 36, 37, 48, 49, 50, 51,
        52, 64, 65, 66, 67, 68, 80, WK_TR_SLICE_BEGIN, WK_TR_SLICE_END };
    while (off + sizeof(wk_trace_chunk_header) <= memlen) {
        wk_trace_chunk_header ch;
        memcpy(&ch, mem + off, sizeof ch);
        wk_trace_record *r = (wk_trace_record *)(void *)(mem + off + sizeof ch);
        for (uint32_t i = 0; i < ch.count; i++) {
            if (r[i].kind == WK_TR_NAME) {
                i += WK_TRACE_NAME_SLOTS(r[i].b) - 1;
                continue;
            }
            if (r[i].kind == WK_TR_TRACE_END || next_rand() % 3)
                continue;
            switch (next_rand() % 6) {
            case 0:
                r[i].kind = kinds[next_rand() % (sizeof kinds / sizeof kinds[0])];
                if (r[i].kind == 48 || r[i].kind == 49)
                    r[i].flags = 1 + next_rand() % WK_TRW_MAX;
                break;
            case 1:
                r[i].worker = (uint32_t)(next_rand() % 7);
                break;
            case 2:
                r[i].a = next_rand() % 3 ? r[i].a + next_rand() % 5 : next_rand();
                break;
            case 3:
                r[i].b = next_rand() % 2
                    ? pack((uint32_t)(next_rand() % 6), (uint32_t)(next_rand() % 20))
                    : next_rand();
                break;
            case 4:
                r[i].ts = START_NS + next_rand() % (10 * MS);
                break;
            default:
                if (r[i].kind != 48 && r[i].kind != 49)
                    r[i].flags = (uint16_t)next_rand();
                break;
            }
        }
        ch.checksum = wk_trace_checksum(r, (size_t)ch.count * sizeof *r);
        memcpy(mem + off, &ch, sizeof ch);
        off += sizeof ch + (size_t)ch.count * sizeof *r;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(mem, 1, memlen, f) != memlen || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "small") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        small();
    } else if (argc >= 3 && strcmp(argv[1], "burst") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        burst();
    } else if (argc >= 3 && strcmp(argv[1], "sup") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        supervision();
    } else if (argc >= 3 && strcmp(argv[1], "big") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        big(argc >= 4 ? strtoull(argv[3], NULL, 10) : 1000000);
    } else if (argc >= 3 && strcmp(argv[1], "pooled") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        pooled();
    } else if (argc >= 3 && strcmp(argv[1], "pooled-big") == 0) {
        out = fopen(argv[2], "wb");
        if (!out)
            return perror(argv[2]), 1;
        pooled_big(argc >= 4 ? strtoull(argv[3], NULL, 10) : 1000000);
    } else if (argc >= 3 && strcmp(argv[1], "bad") == 0) {
        bad(argv[2]);
        return 0;
    } else if (argc >= 4 && strcmp(argv[1], "fuzz") == 0) {
        fuzz(strtoull(argv[2], NULL, 10), argv[3]);
        return 0;
    } else {
        fputs("usage: gen_trace small OUT | burst OUT | sup OUT | big OUT [N] | bad DIR |"
              " fuzz SEED OUT | pooled OUT | pooled-big OUT [N]\n",
            stderr);
        return 2;
    }
    if (fclose(out) != 0)
        return perror("close"), 1;
    return 0;
}
