/* demo: a small service-like pipeline built from workers.
 *
 *                          +-> processor-0 -+
 *   source --(round robin)-+-> processor-1 -+--> aggregator
 *                          +-> processor-2 -+
 *
 * A "pipeline" worker owns the stages: they are its children (a worker
 * created inside a worker gets it as parent by default). The source fires
 * N items at the processors in turn, each item's payload copied into the
 * event (worker_fire_ex with .copy), then SOURCE_DONE at each processor.
 * A processor squares every item it gets and fires the result at the
 * aggregator; after SOURCE_DONE it knows it has seen all of its items (one
 * sender's events arrive in order), tells the aggregator PROCESSOR_DONE
 * and ends. The aggregator sums the results, marks every sequence number
 * it sees, and ends once all processors are done.
 *
 * Clean stop, in order: the pipeline waits for the source to end, then
 * for the processors (drained), then for the aggregator, with
 * worker_wait_thread(): no sleeps anywhere. If any stage fails, the
 * pipeline leaves early and its end sequence stops the other stages.
 *
 * It prints what each stage did and the event rate, and exits with 0 only
 * when no result was lost or duplicated and the sum is right.
 *
 * Run: ./demo [--auto] [--count N]  (default N = 200000; --auto: 20000) */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <worker/worker.h>

#define NPROC 3
#define APP_EBADEVENT 100 /* application error: an event with a bad payload */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- payloads: plain structs, copied into the events */

struct item {
    uint64_t seq;
    uint64_t value;
};

struct result {
    uint64_t seq;
    uint64_t value;
    uint32_t processor;
};

struct done {
    uint32_t processor;
    uint64_t processed;
};

/* ---- per-stage state. Each is touched only by its own stage's thread
 * while it runs; the pipeline and main read it after waiting for that
 * stage's end. */

struct source_state {
    uint64_t count;
    worker_t *processors[NPROC];
    uint64_t produced;
    double start, end;
};

struct processor_state {
    uint32_t id;
    worker_t *source;
    worker_t *aggregator;
    uint64_t processed;
    int error;
};

struct aggregator_state {
    uint64_t count;
    unsigned char *seen; /* one flag per sequence number */
    uint64_t received, duplicates, bad, sum;
    uint64_t per_processor[NPROC]; /* results counted here */
    uint64_t reported[NPROC]; /* what each processor says it did */
    int dones;
    double end;
};

struct pipeline {
    uint64_t count;
    struct source_state src;
    struct processor_state proc[NPROC];
    struct aggregator_state agg;
    int failed; /* a stage reported CHILD_THREAD_ERROR */
    int stages_ended; /* CHILD_THREAD_END events seen */
    double start, source_ended, processors_ended, aggregator_ended;
};

/* ---- the source */

static int source_task(void *arg, void **result)
{
    struct source_state *s = arg;
    (void)result;
    s->start = now();
    for (uint64_t i = 0; i < s->count; i++) {
        struct item it = { .seq = i, .value = i };
        int rc = worker_fire_ex(s->processors[i % NPROC], "ITEM", NULL,
            &(worker_fire_opts) { .copy = &it, .copy_size = sizeof it });
        if (rc != WORKER_OK)
            return rc; /* a processor is gone: fail, the pipeline stops */
        s->produced++;
        /* A long loop without a wait cannot be stopped. Give the loop a
         * turn now and then: worker_update() never blocks and returns
         * WORKER_EXIT once this worker has been asked to stop. */
        if ((i & 4095) == 4095 && (rc = worker_update()) != WORKER_OK)
            return rc;
    }
    for (int k = 0; k < NPROC; k++) {
        int rc = worker_fire(s->processors[k], "SOURCE_DONE", NULL);
        if (rc != WORKER_OK)
            return rc;
    }
    s->end = now();
    return 0;
}

/* ---- a processor */

static int on_item(const worker_event_t *e, void *userdata)
{
    struct processor_state *p = userdata;
    struct item it;
    if (worker_event_size(e) != sizeof it)
        return p->error = APP_EBADEVENT;
    memcpy(&it, worker_event_data(e), sizeof it);

    struct result r = { .seq = it.seq, .value = it.value * it.value, .processor = p->id };
    int rc = worker_fire_ex(
        p->aggregator, "RESULT", NULL, &(worker_fire_opts) { .copy = &r, .copy_size = sizeof r });
    if (rc != WORKER_OK)
        return p->error = rc; /* reported as a listener error */
    p->processed++;
    return 0;
}

static int processor_task(void *arg, void **result)
{
    struct processor_state *p = arg;
    (void)result;
    if (worker_on("ITEM", on_item, p, NULL) == NULL)
        return WORKER_ENOMEM;

    /* Handle ITEMs until the source says it is done. WORKER_EXIT here
     * means the pipeline is being stopped: nothing to clean up. */
    int rc = worker_wait_event("SOURCE_DONE", -1, p->source, NULL);
    if (rc != WORKER_OK)
        return rc;
    if (p->error != 0)
        return p->error;

    /* Drained: every ITEM of the source came before its SOURCE_DONE. */
    struct done d = { .processor = p->id, .processed = p->processed };
    return worker_fire_ex(p->aggregator, "PROCESSOR_DONE", NULL,
        &(worker_fire_opts) { .copy = &d, .copy_size = sizeof d });
}

/* ---- the aggregator */

static int on_result(const worker_event_t *e, void *userdata)
{
    struct aggregator_state *a = userdata;
    struct result r;
    if (worker_event_size(e) != sizeof r)
        return APP_EBADEVENT;
    memcpy(&r, worker_event_data(e), sizeof r);
    if (r.seq >= a->count || r.processor >= NPROC) {
        a->bad++;
        return 0;
    }
    if (a->seen[r.seq]) {
        a->duplicates++;
        return 0;
    }
    a->seen[r.seq] = 1;
    a->received++;
    a->sum += r.value;
    a->per_processor[r.processor]++;
    return 0;
}

static int on_processor_done(const worker_event_t *e, void *userdata)
{
    struct aggregator_state *a = userdata;
    struct done d;
    if (worker_event_size(e) != sizeof d)
        return APP_EBADEVENT;
    memcpy(&d, worker_event_data(e), sizeof d);
    if (d.processor < NPROC)
        a->reported[d.processor] = d.processed;
    a->dones++;
    return 0;
}

static bool all_processors_done(const worker_event_t *e, void *userdata)
{
    const struct aggregator_state *a = userdata;
    (void)e;
    return a->dones == NPROC; /* tested after the event's listeners ran */
}

static int aggregator_task(void *arg, void **result)
{
    struct aggregator_state *a = arg;
    (void)result;
    if (worker_on("RESULT", on_result, a, NULL) == NULL
        || worker_on("PROCESSOR_DONE", on_processor_done, a, NULL) == NULL)
        return WORKER_ENOMEM;
    /* A processor's RESULTs all come before its PROCESSOR_DONE. */
    int rc = worker_wait_until(all_processors_done, a, -1, NULL);
    a->end = now();
    return rc;
}

/* ---- the pipeline: owns the stages and stops them in order */

static int on_stage_error(const worker_event_t *e, void *userdata)
{
    struct pipeline *p = userdata;
    int code = (int)(intptr_t)worker_event_data(e);
    fprintf(stderr, "stage %s failed: %s\n", worker_name(worker_event_target(e)),
        worker_err_name(code));
    p->failed = 1;
    worker_exit(); /* leave: our end sequence stops the other stages */
    return 0;
}

static int on_stage_end(const worker_event_t *e, void *userdata)
{
    struct pipeline *p = userdata;
    (void)e;
    p->stages_ended++;
    return 0;
}

/* Wait for one stage; WORKER_OK only if it ended by itself with success. */
static int wait_stage(worker_t *stage)
{
    int err = 0;
    int rc = worker_wait_thread(stage, &err, NULL);
    if (rc != WORKER_OK)
        return rc; /* WORKER_EXIT: the pipeline itself is being stopped */
    if (err != 0) {
        fprintf(stderr, "stage %s ended with %s\n", worker_name(stage), worker_err_name(err));
        return err;
    }
    return WORKER_OK;
}

static int pipeline_task(void *arg, void **result)
{
    struct pipeline *p = arg;
    worker_t *source = NULL, *aggregator = NULL, *procs[NPROC] = { NULL };
    int rc = WORKER_ENOMEM;
    (void)result;

    /* 1. Create every stage first (children of this worker), so that each
     *    one's state can name the others before anything runs. */
    aggregator = worker_new(aggregator_task, &p->agg, &(worker_opts) { .name = "aggregator" });
    source = worker_new(source_task, &p->src, &(worker_opts) { .name = "source" });
    for (int k = 0; k < NPROC; k++) {
        char name[32];
        snprintf(name, sizeof name, "processor-%d", k); /* name is copied */
        procs[k] = worker_new(processor_task, &p->proc[k], &(worker_opts) { .name = name });
        if (procs[k] == NULL)
            goto out;
    }
    if (aggregator == NULL || source == NULL)
        goto out;

    p->src.count = p->count;
    for (int k = 0; k < NPROC; k++) {
        p->src.processors[k] = procs[k];
        p->proc[k] = (struct processor_state) {
            .id = (uint32_t)k, .source = source, .aggregator = aggregator
        };
    }
    if (worker_on(WORKER_EV_CHILD_THREAD_ERROR, on_stage_error, p, NULL) == NULL
        || worker_on(WORKER_EV_CHILD_THREAD_END, on_stage_end, p, NULL) == NULL)
        goto out;

    /* 2. Start downstream first: nothing is fired at a stage that is not
     *    running yet (that fire would be refused with WORKER_EREJECTED). */
    p->start = now();
    if ((rc = worker_start(aggregator)) != WORKER_OK)
        goto out;
    for (int k = 0; k < NPROC; k++)
        if ((rc = worker_start(procs[k])) != WORKER_OK)
            goto out;
    if ((rc = worker_start(source)) != WORKER_OK)
        goto out;
    printf("%s: started source, %d processors and aggregator "
           "(children of '%s'), %" PRIu64 " items to go\n",
        worker_name(worker_current()), NPROC, worker_name(worker_parent(source)), p->count);

    /* 3. The clean stop, in order: source done, processors drained,
     *    aggregator done. Each wait runs this worker's loop, so the
     *    CHILD_THREAD_* listeners above keep running meanwhile. */
    if ((rc = wait_stage(source)) != WORKER_OK)
        goto out;
    p->source_ended = now();
    for (int k = 0; k < NPROC; k++)
        if ((rc = wait_stage(procs[k])) != WORKER_OK)
            goto out;
    p->processors_ended = now();
    if ((rc = wait_stage(aggregator)) != WORKER_OK)
        goto out;
    p->aggregator_ended = now();

    /* Handle what is still queued (the last CHILD_THREAD_END events). */
    rc = worker_update();

out:
    /* Give back our references. A stage that is still running (we are
     * leaving early) keeps itself alive, and our end sequence stops it
     * and joins it. */
    worker_unref(source);
    worker_unref(aggregator);
    for (int k = 0; k < NPROC; k++)
        worker_unref(procs[k]);
    return rc;
}

/* ---- main */

static int parse_count(int argc, char **argv, uint64_t *count)
{
    *count = 200000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--auto") == 0) {
            *count = 20000;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            unsigned long long n = strtoull(argv[++i], &end, 10);
            if (*end != '\0' || n == 0 || n > 100000000ULL)
                return -1;
            *count = n;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct pipeline p;
    memset(&p, 0, sizeof p);
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line out at once, also into a pipe */
    if (parse_count(argc, argv, &p.count) != 0) {
        fprintf(stderr, "usage: %s [--auto] [--count N]\n", argv[0]);
        return 2;
    }
    p.agg.count = p.count;
    p.agg.seen = calloc(p.count, 1);
    if (p.agg.seen == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    worker_t *pipeline = worker_spawn(pipeline_task, &p, &(worker_opts) { .name = "pipeline" });
    if (pipeline == NULL) {
        fprintf(stderr, "worker_spawn failed\n");
        return 1;
    }
    int err = 0;
    int rc = worker_wait_thread(pipeline, &err, NULL);
    if (rc != WORKER_OK || err != 0) {
        fprintf(stderr, "pipeline: wait %s, ended with %s\n", worker_err_name(rc),
            worker_err_name(err));
        return 1;
    }
    size_t left = worker_children_count(pipeline);
    worker_unref(pipeline);

    /* The report. */
    uint64_t n = p.count, processed = 0;
    uint64_t expected_sum = 0; /* sum of i*i for i < n, modulo 2^64 */
    for (uint64_t i = 0; i < n; i++)
        expected_sum += i * i;
    int ok = !p.failed && left == 0 && p.stages_ended == NPROC + 2;

    printf("source       produced %" PRIu64 " items in %.3f s\n", p.src.produced,
        p.src.end - p.src.start);
    ok &= p.src.produced == n;
    for (int k = 0; k < NPROC; k++) {
        printf("processor-%d  processed %" PRIu64 " items "
               "(aggregator counted %" PRIu64 ")\n",
            k, p.proc[k].processed, p.agg.per_processor[k]);
        processed += p.proc[k].processed;
        ok &= p.proc[k].processed == p.agg.per_processor[k]
            && p.agg.reported[k] == p.proc[k].processed;
    }
    ok &= processed == n;
    printf("aggregator   received %" PRIu64 " results: %" PRIu64 " lost, %" PRIu64
           " duplicated, %" PRIu64 " bad; sum %" PRIu64 " (expected %" PRIu64 ")\n",
        p.agg.received, n - p.agg.received, p.agg.duplicates, p.agg.bad, p.agg.sum, expected_sum);
    ok &= p.agg.received == n && p.agg.duplicates == 0 && p.agg.bad == 0
        && p.agg.sum == expected_sum;
    printf("stopped in order: source at %.3f s, processors at %.3f s, "
           "aggregator at %.3f s; %d stages ended, %zu left\n",
        p.source_ended - p.start, p.processors_ended - p.start, p.aggregator_ended - p.start,
        p.stages_ended, left);

    double seconds = p.agg.end - p.src.start;
    uint64_t events = 2 * n; /* ITEM + RESULT; control events not counted */
    printf("rate: %" PRIu64 " events in %.3f s = %.0f events/s\n", events, seconds,
        seconds > 0 ? (double)events / seconds : 0.0);
    printf("%s\n", ok ? "OK: nothing lost" : "FAILED");
    free(p.agg.seen);
    return ok ? 0 : 1;
}
