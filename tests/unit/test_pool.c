/* Object pools (lib/pool.c, docs/architecture.md "Events and memory",
 * docs/semantics.md "Memory"): memory a burst needed goes back once the
 * burst has drained. Uses the pool's internal statistics, hence linked
 * with the static library (see tests/CMakeLists.txt). */
#include "test_util.h"

#include <criterion/criterion.h>

#include "wk_pool.h"

#define BURST 1000000
/* What a pool may keep once the burst has drained and its magazines have
 * sat idle: the 16 magazines of 64 objects a depot always keeps (64 KiB of
 * events, 32 KiB of nodes), those the traffic after it uses, and the
 * caches of the threads still alive (at most 128 objects each), in the
 * slabs holding them: a few slabs. 2 MiB leaves room and is a thirtieth of
 * the 64 MB the events took. */
#define KEPT_AT_MOST ((size_t)2 << 20)

struct burst {
    tu_gate gate;
    worker_t *main;
    int handled; /* the worker's thread only */
};

/* Blocks on the gate without running the loop: every event queues up. */
static int hold_then_wait(void *arg, void **result)
{
    (void)result;
    struct burst *b = arg;
    if (tu_gate_pass(&b->gate, 60) != 0)
        return WORKER_ETIMEDOUT;
    return worker_wait_forever();
}

static int on_item(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct burst *b = userdata;
    if (++b->handled == BURST)
        tu_ack(b->main, b->handled);
    return 0;
}

/* A million events queued at once (64 MB of events, 32 MB of queue nodes),
 * then drained. Once the magazines holding them have sat unused for two
 * idle intervals (1 s each), the next calls give them back: each pool
 * keeps a few slabs, not the burst's high-water mark. */
Test(pool, memory_of_a_drained_burst_goes_back, .timeout = 100)
{
    static struct burst b;
    b.main = tu_main();
    tu_gate_init(&b.gate);
    worker_t *w = worker_new(hold_then_wait, &b, NULL);
    cr_assert_not_null(w);
    cr_assert_not_null(worker_listen(w, "ITEM", on_item, &b, NULL));
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 0; i < BURST; i++)
        cr_assert_eq(worker_fire(w, "ITEM", NULL), WORKER_OK);
    size_t peak_events = wk_pool_retained_bytes(WK_POOL_EVENT);
    size_t peak_nodes = wk_pool_retained_bytes(WK_POOL_QNODE);
    cr_log_info("queued: %zu bytes of event slabs, %zu of node slabs", peak_events, peak_nodes);
    cr_assert_geq(peak_events, (size_t)BURST * WK_POOL_EVENT_SIZE, "the burst is in the pool");
    cr_assert_geq(peak_nodes, (size_t)BURST * WK_POOL_QNODE_SIZE);

    tu_gate_open(&b.gate);
    void *handled = NULL;
    cr_assert_eq(worker_wait_event(TU_ACK, 60, w, &handled), WORKER_OK);
    cr_assert_eq(TU_INT(handled), BURST);
    tu_stop_join_unref(w); /* its thread's caches go back to the depots */
    tu_gate_destroy(&b.gate);
    cr_log_info("drained: %zu bytes of event slabs, %zu of node slabs",
        wk_pool_retained_bytes(WK_POOL_EVENT), wk_pool_retained_bytes(WK_POOL_QNODE));

    /* Nothing uses the pools for more than two intervals (the time is the
     * condition here, there is nothing to wait for instead). Then traffic:
     * its first calls to the depots find the idle magazines, and every
     * call gives a batch of them back, so the memory goes back with use
     * (one round of 10,000 events is enough at 32 magazines per call; the
     * loop allows fifty). The pools still serve the traffic. */
    cr_assert_eq(worker_sleep(2.5), WORKER_OK);
    static atomic_int more;
    worker_t *again = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(worker_listen(again, "MORE", tu_count_listener, &more, NULL));
    tu_sync_install(again);
    size_t events = 0, nodes = 0;
    int rounds = 0;
    do {
        for (int i = 0; i < 10000; i++)
            cr_assert_eq(worker_fire(again, "MORE", NULL), WORKER_OK);
        cr_assert_eq(tu_sync(again), WORKER_OK);
        rounds++;
        events = wk_pool_retained_bytes(WK_POOL_EVENT);
        nodes = wk_pool_retained_bytes(WK_POOL_QNODE);
    } while ((events > KEPT_AT_MOST || nodes > KEPT_AT_MOST) && rounds < 50);
    cr_assert_eq(atomic_load(&more), 10000 * rounds);
    tu_stop_join_unref(again);
    cr_log_info("idle, then %d rounds of traffic: %zu bytes of event slabs, %zu of node slabs",
        rounds, events, nodes);
    cr_assert_leq(events, KEPT_AT_MOST, "event slabs kept after the drain: %zu", events);
    cr_assert_leq(nodes, KEPT_AT_MOST, "node slabs kept after the drain: %zu", nodes);
}
