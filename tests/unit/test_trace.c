/* Round trip: a known program is traced by the library, and the trace file
 * is read back with the format header alone; the records must be exactly
 * those of the program (counts, senders, receivers, order per worker). */
#include "test_util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <worker/worker.h>

#include "tu_trace.h"
#include "wk_trace_format.h"

#define PINGS 5

/* Make the file named by the template `path` (XXXXXX replaced), empty. */
static void make_temp_file(char *path)
{
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
}

/* The records of `kind` about worker `w` (0: any), in file order. */
static size_t select_records(uint16_t kind, uint32_t w, wk_trace_record **out)
{
    size_t n = 0;
    for (size_t i = 0; i < tr.count; i++)
        if (tr.rec[i].kind == kind && (!w || tr.rec[i].worker == w))
            out[n++] = &tr.rec[i];
    return n;
}

static int on_ping(const worker_event_t *e, void *ud)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

static uint32_t find_worker(const char *name)
{
    for (size_t i = 0; i < tr.count; i++)
        if (tr.rec[i].kind == WK_TR_WORKER_CREATED && strcmp(name_of(tr.rec[i].b), name) == 0)
            return tr.rec[i].worker;
    return 0;
}

Test(trace, library_trace_reads_back_exactly, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    cr_assert_eq(worker_trace_start(path), WORKER_ESTATE);

    int pings = 0;
    worker_t *alpha = worker_new(NULL, NULL, &(worker_opts) { .name = "alpha" });
    cr_assert_not_null(worker_listen(alpha, "PING", on_ping, &pings, NULL));
    cr_assert_eq(worker_start(alpha), WORKER_OK);
    for (int i = 0; i < PINGS; i++)
        cr_assert_eq(worker_fire(alpha, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_stop(alpha), WORKER_OK);
    cr_assert_eq(worker_join(alpha), WORKER_OK);
    cr_assert_eq(pings, PINGS);
    cr_assert_eq(worker_fire(alpha, "PING", NULL), WORKER_EREJECTED);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_ESTATE);
    worker_unref(alpha);

    read_trace(path);
    unlink(path);
    cr_assert_eq(memcmp(tr.header.magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN), 0);
    cr_assert_eq(tr.header.version, WK_TRACE_VERSION);
    cr_assert_eq(tr.header.sample_every, 1, "every event by default");
    cr_assert_eq(tr.header.pid, (uint32_t)getpid());
    cr_assert_eq(tr.ends, 1, "one TRACE_END");

    uint32_t a = find_worker("alpha"), m = find_worker("main");
    cr_assert(a && m, "CREATED records for alpha and main");
    static wk_trace_record *sel[MAX_RECORDS];

    /* main -> alpha: PINGS fires of PING, then STOP_THREAD, then a reject. */
    size_t fires = select_records(WK_TR_FIRE, m, sel);
    uint64_t serials[PINGS];
    size_t pings_fired = 0;
    for (size_t i = 0; i < fires; i++) {
        uint32_t to = (uint32_t)sel[i]->b, ev = (uint32_t)(sel[i]->b >> 32);
        if (strcmp(name_of(ev), "PING") == 0) {
            cr_assert_eq(to, a);
            cr_assert_lt(pings_fired, PINGS);
            serials[pings_fired++] = sel[i]->a;
        }
    }
    cr_assert_eq(pings_fired, PINGS);
    size_t rejects = select_records(WK_TR_REJECT, m, sel);
    cr_assert_eq(rejects, 1);
    cr_assert_eq((uint32_t)sel[0]->b, a);
    cr_assert_eq(sel[0]->flags, WK_TRR_NOT_RUNNING);

    /* alpha handled them in the order fired, each once, with one listener
     * run per delivery. */
    size_t delivered = select_records(WK_TR_DELIVER, a, sel), seen = 0;
    for (size_t i = 0; i < delivered; i++) {
        if (strcmp(name_of(sel[i]->b >> 32), "PING") != 0)
            continue;
        cr_assert_eq((uint32_t)sel[i]->b, m, "the sender is main");
        cr_assert_eq(sel[i]->a, serials[seen], "delivery %zu in firing order", seen);
        seen++;
    }
    cr_assert_eq(seen, PINGS);
    size_t starts = select_records(WK_TR_LISTENER_START, a, sel);
    cr_assert_eq(starts, PINGS);
    for (size_t i = 0; i < starts; i++) {
        /* Named by its symbol, read from the executable's symbol table (a
         * static function, no -rdynamic). */
        cr_assert_str_eq(name_of((uint32_t)sel[i]->b), "on_ping");
        cr_assert_eq(sel[i]->flags, WK_TRF_NAME_SYMBOL);
        cr_assert_str_eq(name_of(sel[i]->b >> 32), "PING");
    }
    cr_assert_eq(select_records(WK_TR_LISTENER_END, a, sel), PINGS);

    /* Its life: started, stopped by main, ended with WORKER_EXIT. */
    cr_assert_eq(select_records(WK_TR_WORKER_STARTED, a, sel), 1);
    cr_assert_eq(select_records(WK_TR_STOP, a, sel), 1);
    cr_assert_eq(sel[0]->a, m);
    cr_assert_eq(select_records(WK_TR_WORKER_ENDED, a, sel), 1);
    cr_assert_eq((int64_t)sel[0]->a, WORKER_EXIT);
    /* main's join is a traced wait on alpha. */
    cr_assert_eq(select_records(WK_TR_WAIT_BEGIN, m, sel), 1);
    cr_assert_eq(sel[0]->flags, WK_TRW_JOIN);
    cr_assert_eq(sel[0]->b, a);
}

/* worker_listen_opts.name names a listener in the trace (a copy: the
 * caller's buffer is reused at once); without it, the function's symbol. */
Test(trace, listener_names_given_or_from_the_symbol_table, .timeout = 30)
{
    memset(&tr, 0, sizeof tr);
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    int pings = 0;
    char given[32];
    strcpy(given, "ping-counter");
    worker_t *w = worker_new(NULL, NULL, &(worker_opts) { .name = "named" });
    cr_assert_not_null(
        worker_listen(w, "PING", on_ping, &pings, &(worker_listen_opts) { .name = given }));
    strcpy(given, "overwritten");
    cr_assert_not_null(
        worker_listen(w, "PING", on_ping, &pings, &(worker_listen_opts) { .name = NULL }));
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(w);
    cr_assert_eq(pings, 2);

    read_trace(path);
    unlink(path);
    cr_assert_eq(tr.header.minor, WK_TRACE_MINOR);
    cr_assert_geq(tr.header.minor, 2, "LISTENER_START flags say where the name came from");
    static wk_trace_record *sel[MAX_RECORDS];
    size_t starts = select_records(WK_TR_LISTENER_START, find_worker("named"), sel);
    cr_assert_eq(starts, 2);
    cr_assert_str_eq(name_of((uint32_t)sel[0]->b), "ping-counter");
    cr_assert_eq(sel[0]->flags, WK_TRF_NAME_GIVEN);
    cr_assert_str_eq(name_of((uint32_t)sel[1]->b), "on_ping");
    cr_assert_eq(sel[1]->flags, WK_TRF_NAME_SYMBOL);
    size_t ends = select_records(WK_TR_LISTENER_END, find_worker("named"), sel);
    cr_assert_eq(ends, 2);
    cr_assert_str_eq(name_of((uint32_t)sel[0]->b), "ping-counter");
}

/* The PING events main fired, as seen in the trace. */
static size_t ping_records(uint16_t kind, uint32_t w, uint64_t *serials, size_t max)
{
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(kind, w, sel), found = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t name = kind == WK_TR_LISTENER_START || kind == WK_TR_DELIVER || kind == WK_TR_FIRE
            ? (uint32_t)(sel[i]->b >> 32)
            : 0;
        if (strcmp(name_of(name), "PING") == 0 && found < max)
            serials[found++] = sel[i]->a;
    }
    return found;
}

/* With worker_trace_sample(10), 100 events in a row from one thread have
 * exactly 10 traced flows (fire, delivery, listener run); the worker's life
 * is recorded in full, and the header says how the trace was sampled. */
Test(trace, sampled_trace_records_one_event_in_n, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_sample(0), WORKER_EINVAL);
    cr_assert_eq(worker_trace_sample(10), WORKER_OK);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    cr_assert_eq(worker_trace_sample(5), WORKER_ESTATE, "fixed while recording");

    int pings = 0;
    worker_t *alpha = worker_new(NULL, NULL, &(worker_opts) { .name = "alpha" });
    cr_assert_not_null(worker_listen(alpha, "PING", on_ping, &pings, NULL));
    cr_assert_eq(worker_start(alpha), WORKER_OK);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(worker_fire(alpha, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_stop(alpha), WORKER_OK);
    cr_assert_eq(worker_join(alpha), WORKER_OK);
    cr_assert_eq(pings, 100, "sampling never changes delivery");
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(alpha);

    read_trace(path);
    unlink(path);
    cr_assert_eq(tr.header.sample_every, 10);
    uint32_t a = find_worker("alpha"), m = find_worker("main");
    cr_assert(a && m);
    uint64_t fired[100], delivered[100], ran[100];
    cr_assert_eq(ping_records(WK_TR_FIRE, m, fired, 100), 10);
    cr_assert_eq(ping_records(WK_TR_DELIVER, a, delivered, 100), 10);
    cr_assert_eq(ping_records(WK_TR_LISTENER_START, a, ran, 100), 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(delivered[i], fired[i], "the sampled events arrive whole, in order");
        cr_assert_eq(ran[i], fired[i]);
    }
    static wk_trace_record *sel[MAX_RECORDS];
    cr_assert_eq(select_records(WK_TR_WORKER_STARTED, a, sel), 1);
    cr_assert_eq(select_records(WK_TR_WORKER_ENDED, a, sel), 1);
}

/* A new trace restarts every thread's sampling: the first event a thread
 * fires in it is traced, whatever the previous trace left. */
Test(trace, sampling_restarts_with_each_trace, .timeout = 30)
{
    char first[] = "/tmp/worker-trace-XXXXXX", second[] = "/tmp/worker-trace-XXXXXX";
    close(mkstemp(first));
    close(mkstemp(second));
    int pings = 0;
    worker_t *alpha = worker_new(NULL, NULL, &(worker_opts) { .name = "alpha" });
    cr_assert_not_null(worker_listen(alpha, "PING", on_ping, &pings, NULL));
    cr_assert_eq(worker_start(alpha), WORKER_OK);
    cr_assert_eq(worker_trace_sample(10), WORKER_OK);

    cr_assert_eq(worker_trace_start(first), WORKER_OK);
    for (int i = 0; i < 3; i++) /* the first traced; 7 left to skip */
        cr_assert_eq(worker_fire(alpha, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    cr_assert_eq(worker_trace_start(second), WORKER_OK);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(worker_fire(alpha, "PING", NULL), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    cr_assert_eq(worker_stop(alpha), WORKER_OK);
    cr_assert_eq(worker_join(alpha), WORKER_OK);
    worker_unref(alpha);
    cr_assert_eq(pings, 8);

    read_trace(second);
    unlink(first);
    unlink(second);
    uint64_t fired[8];
    cr_assert_eq(ping_records(WK_TR_FIRE, 0, fired, 8), 1, "the second trace's first PING");
}

/* A channel's traced REJECT says why the subscriber refused: FULL for a
 * mailbox at its limit, NOT_RUNNING for a worker that is not running (as
 * a refused fire does). */
static int block_on(void *arg, void **result)
{
    (void)result;
    sem_wait(arg); /* the loop does not run: events stay queued */
    return worker_wait_forever();
}

Test(trace, channel_reject_records_the_reason, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);

    sem_t hold;
    sem_init(&hold, 0, 0);
    worker_t *full
        = worker_new(block_on, &hold, &(worker_opts) { .name = "full", .mailbox_limit = 1 });
    worker_t *stopped = worker_new(NULL, NULL, &(worker_opts) { .name = "stopped" });
    cr_assert_eq(worker_start(full), WORKER_OK);
    cr_assert_eq(worker_fire(full, "FILL", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(full, "FILL", NULL), WORKER_EFULL, "the limit is reached");
    worker_channel_t *ch = worker_channel_new();
    cr_assert_eq(worker_channel_sub(ch, full), WORKER_OK);
    cr_assert_eq(worker_channel_sub(ch, stopped), WORKER_OK);
    cr_assert_eq(worker_channel_pub(ch, "NEWS", NULL), 0, "nobody took it");
    sem_post(&hold);
    cr_assert_eq(worker_stop(full), WORKER_OK);
    cr_assert_eq(worker_join(full), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_channel_free(ch);
    worker_unref(full);
    worker_unref(stopped);
    sem_destroy(&hold);

    read_trace(path);
    unlink(path);
    uint32_t f = find_worker("full"), st = find_worker("stopped");
    cr_assert(f && st, "CREATED records for both subscribers");
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(WK_TR_REJECT, 0, sel);
    int seen_full = 0, seen_stopped = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name_of(sel[i]->b >> 32), "NEWS") != 0)
            continue;
        uint32_t to = (uint32_t)sel[i]->b;
        if (to == f) {
            seen_full++;
            cr_assert_eq(sel[i]->flags, WK_TRR_FULL, "full mailbox: reason %u", sel[i]->flags);
        } else if (to == st) {
            seen_stopped++;
            cr_assert_eq(
                sel[i]->flags, WK_TRR_NOT_RUNNING, "not running: reason %u", sel[i]->flags);
        }
    }
    cr_assert_eq(seen_full, 1);
    cr_assert_eq(seen_stopped, 1);
}

Test(trace, expired_request_is_recorded, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    sem_t hold;
    sem_init(&hold, 0, 0);
    worker_t *slow = worker_new(block_on, &hold, &(worker_opts) { .name = "slow" });
    cr_assert_eq(worker_start(slow), WORKER_OK);
    cr_assert_eq(worker_call(slow, "ASK", NULL, 0.05, NULL), WORKER_EEXPIRED);
    sem_post(&hold);
    cr_assert_eq(worker_stop(slow), WORKER_OK);
    cr_assert_eq(worker_join(slow), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(slow);
    sem_destroy(&hold);

    read_trace(path);
    unlink(path);
    cr_assert_eq(tr.header.minor, WK_TRACE_MINOR);
    uint32_t w = find_worker("slow");
    cr_assert(w);
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(WK_TR_REQUEST_EXPIRED, w, sel);
    cr_assert_eq(n, 1, "one REQUEST_EXPIRED on the receiver");
    cr_assert_str_eq(name_of(sel[0]->b >> 32), "ASK");
}

Test(trace, dropped_event_is_recorded, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    sem_t hold;
    sem_init(&hold, 0, 0);
    worker_opts wo
        = { .name = "dropper", .mailbox_limit = 1, .full_policy = WORKER_FULL_DROP_OLDEST };
    worker_t *w = worker_new(block_on, &hold, &wo);
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "OLD", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "NEW", NULL), WORKER_OK, "pushes OLD out");
    sem_post(&hold);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(w);
    sem_destroy(&hold);

    read_trace(path);
    unlink(path);
    uint32_t id = find_worker("dropper");
    cr_assert(id);
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(WK_TR_EVENT_DROPPED, id, sel);
    cr_assert_eq(n, 1, "one EVENT_DROPPED on the receiver");
    cr_assert_str_eq(name_of(sel[0]->b >> 32), "OLD");
    cr_assert_neq(sel[0]->a, 0, "a sampled event carries its serial");
}

/* ---- messages across processes ---------------------------------------- */

static uint64_t remote_ids[3];

/* Sends two messages and receives the first back, as a transport would. */
static int remote_transport(void *arg, void **result)
{
    (void)arg;
    (void)result;
    remote_ids[0] = worker_trace_remote_send("PING", "node-b.inbox");
    remote_ids[1] = worker_trace_remote_send("PONG", NULL);
    worker_trace_remote_receive(remote_ids[0], "PING");
    worker_trace_remote_receive(0, "NOTHING"); /* id 0: nothing recorded */
    return 0;
}

Test(trace, remote_send_and_receive_read_back, .timeout = 30)
{
    cr_assert_eq(worker_trace_remote_send("PING", "x"), 0, "no id when not tracing");
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    worker_t *w = worker_spawn(remote_transport, NULL, &(worker_opts) { .name = "transport" });
    cr_assert_not_null(w);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(w);

    read_trace(path);
    unlink(path);
    cr_assert_neq(tr.header.boot_id, 0, "the header names the host's boot");
    cr_assert(remote_ids[0] && remote_ids[1] && remote_ids[0] != remote_ids[1]);
    uint32_t id = find_worker("transport");
    static wk_trace_record *sel[MAX_RECORDS];
    cr_assert_eq(select_records(WK_TR_REMOTE_SEND, 0, sel), 2);
    cr_assert_eq(sel[0]->worker, id, "attributed to the calling thread's worker");
    cr_assert_eq(sel[0]->a, remote_ids[0]);
    cr_assert_str_eq(name_of((uint32_t)sel[0]->b), "PING");
    cr_assert_str_eq(name_of(sel[0]->b >> 32), "node-b.inbox");
    cr_assert_eq(sel[1]->a, remote_ids[1]);
    cr_assert_eq(sel[1]->b >> 32, 0, "no destination given");
    cr_assert_eq(select_records(WK_TR_REMOTE_RECEIVE, 0, sel), 1, "id 0 records nothing");
    cr_assert_eq(sel[0]->worker, id);
    cr_assert_eq(sel[0]->a, remote_ids[0]);
    cr_assert_str_eq(name_of(sel[0]->b), "PING");
}

/* A forked child draws ids of its own (its parent's would repeat). */
Test(trace, remote_ids_differ_after_fork, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    uint64_t before = worker_trace_remote_send("A", NULL);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        char cpath[] = "/tmp/worker-trace-XXXXXX";
        int fd = mkstemp(cpath);
        uint64_t mine = 0;
        if (fd >= 0 && worker_trace_start(cpath) == WORKER_OK)
            mine = worker_trace_remote_send("A", NULL);
        worker_trace_stop();
        unlink(cpath);
        _exit(write(fds[1], &mine, sizeof mine) == sizeof mine ? 0 : 1);
    }
    uint64_t parent_next = worker_trace_remote_send("A", NULL), child_id = 0;
    cr_assert_eq(read(fds[0], &child_id, sizeof child_id), (ssize_t)sizeof child_id);
    int status;
    waitpid(child, &status, 0);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    unlink(path);
    close(fds[0]);
    close(fds[1]);
    cr_assert_neq(child_id, 0);
    cr_assert_eq(parent_next, before + 1, "consecutive in one process");
    cr_assert_neq(child_id, before + 1, "the child does not repeat its parent's next id");
}

Test(trace, bad_input, .timeout = 10)
{
    cr_assert_eq(worker_trace_start(NULL), WORKER_EINVAL);
    cr_assert_eq(worker_trace_start(""), WORKER_EINVAL);
    cr_assert_eq(worker_trace_start("/nonexistent-dir/x/trace"), WORKER_EAGAIN);
    cr_assert_eq(worker_trace_stop(), WORKER_ESTATE);
}

/* ---- traces stopped and started while traced threads exit ------------ */

#define CYCLES 300
#define EXITERS 4

/* Records a few events on its own thread, then ends: its thread's exit
 * writes what its buffer still holds. */
static int trace_and_leave(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 3; i++)
        worker_fire(worker_current(), "X", NULL);
    return worker_update() == WORKER_OK ? 0 : 1;
}

/* NULL when the file at `path` is a whole trace: header, chunks with good
 * checksums, and last a TRACE_END alone in its chunk that counts every
 * chunk before it; else what is wrong. */
static const char *whole_trace(const char *path, char *why, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return "cannot open";
    wk_trace_file_header h;
    const char *bad = NULL;
    uint64_t chunks = 0;
    bool ended = false;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN) != 0)
        bad = "no trace header";
    wk_trace_chunk_header ch;
    while (!bad && fread(&ch, sizeof ch, 1, f) == 1) {
        if (ended) {
            bad = "a chunk after TRACE_END";
            break;
        }
        if (ch.magic != WK_TRACE_CHUNK_MAGIC || ch.count == 0 || ch.count > 1000000) {
            bad = "a bad chunk header";
            break;
        }
        wk_trace_record *slots = malloc(ch.count * sizeof *slots);
        if (fread(slots, sizeof *slots, ch.count, f) != ch.count)
            bad = "a cut chunk";
        else if (ch.checksum != wk_trace_checksum(slots, ch.count * sizeof *slots))
            bad = "a bad checksum";
        else if (ch.count == 1 && slots[0].kind == WK_TR_TRACE_END) {
            ended = true;
            if (slots[0].a != chunks) {
                snprintf(why, size, "TRACE_END counts %llu chunks, the file has %llu",
                    (unsigned long long)slots[0].a, (unsigned long long)chunks);
                bad = why;
            }
        } else {
            chunks++;
        }
        free(slots);
    }
    fclose(f);
    return bad ? bad : ended ? NULL : "no TRACE_END";
}

#ifdef WORKER_TRACE_TOOL
/* A sanitized tool takes a fifth of a second to start: there, only one
 * file in ten goes through it (the reader here reads them all). */
#ifdef __SANITIZE_ADDRESS__
#define TOOL_EVERY 10
#else
#define TOOL_EVERY 1
#endif
#endif

/* worker_trace_stop and worker_trace_start again while threads that
 * traced are exiting: a thread's exit must not write into a trace that
 * stop has ended (after its TRACE_END, or into the next trace, which may
 * have the same file descriptor). Every file must read back whole, with
 * the reader here and with `worker-trace check`. */
Test(trace, traces_stopped_while_traced_threads_exit_are_whole, .timeout = 120)
{
    static char paths[CYCLES][32];
    static worker_t *exiters[CYCLES][EXITERS];
    for (int c = 0; c < CYCLES; c++) {
        snprintf(paths[c], sizeof paths[c], "/tmp/worker-trace-XXXXXX");
        int fd = mkstemp(paths[c]);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(worker_trace_start(paths[c]), WORKER_OK, "cycle %d", c);
        for (int k = 0; k < EXITERS; k++) {
            exiters[c][k] = worker_spawn(trace_and_leave, NULL, NULL);
            cr_assert_not_null(exiters[c][k]);
        }
        cr_assert_eq(worker_trace_stop(), WORKER_OK, "cycle %d", c);
    }
    for (int c = 0; c < CYCLES; c++) {
        for (int k = 0; k < EXITERS; k++) {
            cr_assert_eq(worker_join(exiters[c][k]), WORKER_OK);
            worker_unref(exiters[c][k]);
        }
    }
    int broken = 0;
    for (int c = 0; c < CYCLES; c++) {
        char why[128];
        const char *bad = whole_trace(paths[c], why, sizeof why);
        if (bad && broken++ < 5)
            cr_log_error("%s: %s", paths[c], bad);
#ifdef WORKER_TRACE_TOOL
        int rc = c % TOOL_EVERY == 0 ? tu_tool_check(paths[c]) : 0;
        if (rc != 0 && !bad && broken++ < 5)
            cr_log_error("%s: worker-trace check failed (status %d)", paths[c], rc);
#endif
        unlink(paths[c]);
    }
    cr_assert_eq(broken, 0, "%d of %d trace files are not whole", broken, CYCLES);
}

/* A supervisor's restart leaves a CHILD_RESTART record on the child's
 * lane with its supervisor and the reason (the err of the end). */
static int fail_on_go(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *d = NULL;
    int rc = worker_wait_event("GO", 5.0, NULL, &d);
    return rc != WORKER_OK ? rc : (int)(intptr_t)d;
}

Test(trace, restart_is_recorded, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    worker_opts quiet = { .quiet = true };
    worker_child_spec spec = { .name = "flaky", .task = fail_on_go, .opts = &quiet };
    worker_sup_opts so = { .name = "sup" };
    worker_t *sup = worker_supervisor(&spec, 1, &so);
    worker_t *child = worker_supervisor_child(sup, "flaky");
    cr_assert_eq(worker_monitor(child), WORKER_OK);
    cr_assert_eq(worker_fire(child, "GO", (void *)(intptr_t)42), WORKER_OK);
    cr_assert_eq(worker_wait_event(WORKER_EV_WORKER_DOWN, 5.0, child, NULL), WORKER_OK);
    /* Stopping the supervisor joins the restarted child first. */
    cr_assert_eq(worker_stop(sup), WORKER_OK);
    cr_assert_eq(worker_join(sup), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(sup);

    read_trace(path);
    cr_assert_eq(tr.header.minor, WK_TRACE_MINOR);
    cr_assert_geq(WK_TRACE_MINOR, 2);
    uint32_t c = find_worker("flaky"), s = find_worker("sup");
    cr_assert(c && s);
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(WK_TR_CHILD_RESTART, c, sel);
    cr_assert_eq(n, 1, "one CHILD_RESTART on the child's lane");
    cr_assert_eq((uint32_t)sel[0]->a, s, "its supervisor");
    cr_assert_eq((uint32_t)(sel[0]->a >> 32), 1, "its first restart");
    cr_assert_eq((int64_t)sel[0]->b, 42, "the reason: the err of its end");
    cr_assert_eq(sel[0]->flags, 0, "ONE_FOR_ONE: not a group restart");
#ifdef WORKER_TRACE_TOOL
    cr_assert_eq(tu_tool_check(path), 0, "worker-trace reads it");
#endif
    unlink(path);
}

/* A supervisor's run starts with a SUPERVISOR_STARTED record on its lane:
 * its strategy and intensity, its period and first backoff in ms. */
Test(trace, supervisor_started_is_recorded, .timeout = 30)
{
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    worker_sup_opts so = { .name = "sup",
        .strategy = WORKER_ONE_FOR_ALL,
        .intensity = 4,
        .period = 2.5,
        .backoff = 0.02 };
    worker_t *sup = worker_supervisor(NULL, 0, &so);
    cr_assert_not_null(sup);
    cr_assert_eq(worker_stop(sup), WORKER_OK);
    cr_assert_eq(worker_join(sup), WORKER_OK);
    cr_assert_eq(worker_trace_stop(), WORKER_OK);
    worker_unref(sup);

    read_trace(path);
    uint32_t s = find_worker("sup");
    cr_assert(s);
    static wk_trace_record *sel[MAX_RECORDS];
    size_t n = select_records(WK_TR_SUPERVISOR_STARTED, s, sel);
    cr_assert_eq(n, 1, "one SUPERVISOR_STARTED on the supervisor's lane");
    cr_assert_eq((uint32_t)sel[0]->a, WORKER_ONE_FOR_ALL, "its strategy");
    cr_assert_eq((uint32_t)(sel[0]->a >> 32), 4, "its intensity");
    cr_assert_eq((uint32_t)sel[0]->b, 2500, "its period in ms");
    cr_assert_eq((uint32_t)(sel[0]->b >> 32), 20, "its first backoff in ms");
#ifdef WORKER_TRACE_TOOL
    cr_assert_eq(tu_tool_check(path), 0, "worker-trace reads it");
#endif
    unlink(path);
}

/* Pooled workers (M:N): each slice a scheduler thread runs one in is a
 * SLICE_BEGIN .. SLICE_END pair on that worker's id with the thread's
 * index; WORKER_STARTED flags the run as pooled; the scheduler threads'
 * THREAD records name them wk-sched-N. */
#define POOLED_WORKERS 3
#define POOLED_EVENTS 40

static int ts_cmp(const void *pa, const void *pb)
{
    const wk_trace_record *a = *(wk_trace_record *const *)pa, *b = *(wk_trace_record *const *)pb;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

Test(trace, pooled_slices_are_recorded, .timeout = 30)
{
    int threads = worker_scheduler_threads(2) == WORKER_OK ? 2 : 1024; /* ESTATE: set before */
    char path[] = "/tmp/worker-trace-XXXXXX";
    make_temp_file(path);
    cr_assert_eq(worker_trace_start(path), WORKER_OK);
    worker_t *w[POOLED_WORKERS];
    static int handled[POOLED_WORKERS];
    char names[POOLED_WORKERS][16];
    for (int i = 0; i < POOLED_WORKERS; i++) {
        snprintf(names[i], sizeof names[i], "pooled-%d", i);
        worker_opts o = { .pooled = true, .name = names[i] };
        w[i] = worker_new(NULL, NULL, &o);
        cr_assert_not_null(w[i]);
        cr_assert_not_null(worker_listen(w[i], "x", on_ping, &handled[i], NULL));
        cr_assert_eq(worker_start(w[i]), WORKER_OK);
    }
    for (int k = 0; k < POOLED_EVENTS; k++)
        for (int i = 0; i < POOLED_WORKERS; i++)
            cr_assert_eq(worker_fire(w[i], "x", NULL), WORKER_OK);
    for (int i = 0; i < POOLED_WORKERS; i++) {
        cr_assert_eq(worker_stop(w[i]), WORKER_OK);
        cr_assert_eq(worker_join(w[i]), WORKER_OK);
        cr_assert_eq(handled[i], POOLED_EVENTS);
        worker_unref(w[i]);
    }
    usleep(20000); /* the last SLICE_END is written just after the end the join saw */
    cr_assert_eq(worker_trace_stop(), WORKER_OK);

    read_trace(path);
    static wk_trace_record *sel[MAX_RECORDS];
    uint32_t ids[POOLED_WORKERS];
    for (int i = 0; i < POOLED_WORKERS; i++) {
        ids[i] = find_worker(names[i]);
        cr_assert(ids[i], "a CREATED record for %s", names[i]);
        size_t n = select_records(WK_TR_WORKER_STARTED, ids[i], sel);
        cr_assert_eq(n, 1, "one WORKER_STARTED for pooled worker %d", i);
        cr_assert(sel[0]->flags & WK_TRF_POOLED, "flagged pooled");
        size_t nb = select_records(WK_TR_SLICE_BEGIN, ids[i], sel);
        size_t ne = select_records(WK_TR_SLICE_END, ids[i], sel + nb);
        cr_assert_geq(nb, 1, "worker %d ran in slices", i);
        cr_assert_eq(nb, ne, "a SLICE_END for each SLICE_BEGIN");
        qsort(sel, nb + ne, sizeof *sel, ts_cmp);
        for (size_t k = 0; k < nb + ne; k++) {
            cr_assert_eq(sel[k]->kind, k % 2 ? WK_TR_SLICE_END : WK_TR_SLICE_BEGIN,
                "begins and ends alternate in time");
            cr_assert_lt(sel[k]->a, (uint64_t)threads, "a scheduler index");
            if (k % 2)
                cr_assert_eq(sel[k]->a, sel[k - 1]->a, "the end names the index of its begin");
            cr_assert_eq(sel[k]->flags, k + 1 == nb + ne ? WK_TRF_ENDED : 0,
                "only the last slice ends the run");
        }
    }
    bool sched_named = false;
    for (size_t i = 0; i < MAX_NAMES; i++)
        sched_named |= tr.names[i] && strncmp(tr.names[i], "wk-sched-", 9) == 0;
    cr_assert(sched_named, "the scheduler threads are named wk-sched-N");
#ifdef WORKER_TRACE_TOOL
    cr_assert_eq(tu_tool_check(path), 0, "worker-trace reads it");
#endif
    unlink(path);
}
