/* The worker object (worker.c: its memory, references and life). Every
 * file of the worker layer and of the features above it sees this struct;
 * each module's functions are declared in its own header (wk_loop.h,
 * wk_tree.h, wk_fire.h, wk_timers.h, wk_current.h, wk_control.h,
 * wk_init.h, wk_report.h).
 *
 * Who touches what:
 * - Immutable after worker_new(): id, name, task, arg, parent, daemon_mode,
 *   quiet, is_root, is_main, trap_links, mb.limit, stack_size, cpu.
 * - `lock` guards: state (also readable atomically without it), children,
 *   awaited, watchers (and their spares), told, channels, result_err,
 *   result_ret, finished, runs, hold_mode, held; and in each of its children, stop_round and
 *   stop_spare. `ended` is
 *   signalled when state becomes WK_ENDED and when `finished` is set.
 * - A run holds one reference on the worker (taken by start/overlay, or for
 *   a root by its thread) and drops it as its very last step, under `lock`,
 *   together with setting `finished`. So when join or wait_thread return,
 *   the worker's thread no longer holds it: the caller's unref can be the
 *   last one. Lock order: a child's lock may be held while taking
 *   its parent's, never the reverse; no other two worker locks nest.
 * - The owner thread only (the thread running the worker, between start
 *   and the end of its end sequence): frames, exiting, paused, ending,
 *   below, batch*, timers, the listeners' snapshot.
 * - refs: atomic. A running worker holds one reference on itself.
 */
#ifndef WK_WORKER_H
#define WK_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <worker/worker.h>

#include "wk_event.h"
#include "wk_listeners.h"
#include "wk_mailbox.h"
#include "wk_pool.h"
#include "wk_probe.h"
#include "wk_thread.h"

#define WK_BATCH 32

/* Does an end keep the mailbox for a restart (hold.c)? */
enum wk_hold {
    WK_HOLD_NEVER = 0, /* every end closes it (unsupervised workers) */
    WK_HOLD_ON_ERROR = 1, /* an end with err != 0 keeps it */
    WK_HOLD_ALWAYS = 2, /* every end keeps it */
};

typedef enum wk_state { WK_NEW, WK_STARTING, WK_RUNNING, WK_ENDING, WK_ENDED } wk_state;

typedef enum wk_wait_kind {
    WK_WAIT_TIME, /* only the deadline (or stop) ends it */
    WK_WAIT_EVENT, /* an event with that name (and sender) */
    WK_WAIT_COND, /* a user condition */
    WK_WAIT_NOTICE, /* no event matches: only `done`, set on the owner
                       thread by an internal call (a call's answer) */
} wk_wait_kind;

/* One running wait; frames nest when a listener waits. */
typedef struct wk_frame {
    struct wk_frame *outer;
    wk_wait_kind kind;
    const wk_atom *atom;
    uint64_t sender_id; /* 0: any sender */
    worker_cond_fn cond;
    void *userdata;
    bool update_only; /* worker_update: never park */
    bool slice; /* a pooled worker's slice: update_only, and one batch at most */
    bool ignore_exit; /* the end sequence's own waits */
    uint16_t trace_kind; /* enum wk_trace_wait; 0: not traced (internal waits) */
    uint64_t trace_what; /* what a traced wait waits for */
    bool done;
    worker_event_t *matched; /* holds a reference */
} wk_frame;

/* Who hears of a worker's end, and how (see tree.c). */
typedef enum wk_watch_kind {
    WK_WATCH_PARENT, /* CHILD_THREAD_STOP/ERROR/DONE, then CHILD_THREAD_END */
    WK_WATCH_WAITER, /* WAIT_THREAD_PENDING_DONE (worker_wait_thread) */
    WK_WATCH_MONITOR, /* WORKER_DOWN (worker_monitor) */
    WK_WATCH_LINK, /* LINKED_EXIT or STOP_THREAD (worker_link, link.c) */
} wk_watch_kind;

/* Memory taken in advance for one notice: an event object (WK_POOL_EVENT)
 * and a queue node (WK_POOL_QNODE), used by wk_send_spared (fire.c) when
 * it cannot allocate them at the time of sending. */
typedef struct wk_spare {
    void *event;
    void *node;
} wk_spare;

/* The notices a watcher of each kind is sent (tree.c): a parent gets
 * CHILD_THREAD_START, then STOP/ERROR/DONE and END; the others one. */
enum { WK_SPARE_START = 0, WK_SPARE_HOW = 1, WK_SPARE_END = 2, WK_WATCH_SPARES = 3 };

typedef struct wk_watch {
    worker_t *watcher; /* holds a reference */
    wk_watch_kind kind;
    wk_spare spare[WK_WATCH_SPARES]; /* taken when added: its notices need no memory */
} wk_watch;

typedef struct wk_watch_list {
    wk_watch *items;
    size_t count, cap;
} wk_watch_list;

/* Pending timers: a min-heap on (deadline, seq); owner thread only.
 * Timers the heap had no room for (out of memory) wait in `spilled`, a
 * list through the timers themselves, until it has. */
typedef struct wk_timers {
    struct worker_timer **heap;
    size_t count, cap;
    uint64_t next_seq;
    struct worker_timer *spilled;
} wk_timers;

typedef struct wk_worker_list {
    worker_t **items; /* each holds a reference */
    size_t count, cap;
} wk_worker_list;

/* Counters any thread may add to (relaxed atomics: counts, not
 * publications); read by worker_stats (stats.c). Only refusals and drops
 * write them: never the fast path. */
struct wk_worker_stats {
    _Atomic uint64_t expired; /* requests taken after their deadline (owner adds) */
    _Atomic uint64_t refused; /* user events refused: full or not running (senders add) */
    _Atomic uint64_t ran_ns; /* the length of its finished runs (owner) */
    _Atomic uint64_t run_since; /* 0, or when the running run began (owner) */
};

/* Counters only the owner writes (relaxed load and store), any thread
 * reads (stats.c): among the owner's own fields, away from the lines
 * producers write. Nothing is counted per user event: the events taken
 * out of the queue are its head generation (mailbox.c), so only what is
 * not a plain user event is counted here. */
struct wk_owner_counts {
    _Atomic uint64_t not_user; /* messages taken that were not user events */
    _Atomic uint64_t dropped; /* user events dropped by drop-oldest */
    _Atomic uint64_t queued_max; /* the most user events seen queued */
    /* When the current batch was taken: its size and the not_user count,
     * so the next refill knows how many user events it held. */
    size_t batch_taken;
    uint64_t batch_not_user;
    uint64_t queued_max_seen; /* queued_max as the owner last set it */
};

struct worker {
    wk_mailbox mb; /* first: the struct is cache-line aligned */
    _Atomic uint32_t refs;
    uint64_t id;
    char *name;
    worker_task_fn task;
    void *arg;
    worker_t *parent; /* holds a reference */
    int daemon_mode;
    bool quiet;
    bool is_root;
    bool is_main; /* the main thread's root worker (worker_is_main: see current.c) */
    bool is_future; /* runs a worker_async task: its end settles a future */
    bool trap_links; /* a linked worker's end comes as LINKED_EXIT (link.c) */
    bool pooled; /* runs in slices on the scheduler's threads (pooled.c) */
    bool copy_only; /* fires must copy their data (worker_opts.copy_only) */
    worker_forward_fn forward; /* worker_opts.forward (immutable; forward.c) */
    void *forward_arg;
    /* Its thread's attributes (thread_attr.c). */
    size_t stack_size; /* 0: the system default */
    int cpu; /* 0: no affinity; n > 0: CPU n-1 */
    /* The process it runs in (fork.c): the fork generation of its last
     * start; a worker of an older generation is not running here. */
    _Atomic uint32_t fork_gen;
    _Atomic uint64_t traced_in; /* the trace session that has its CREATED record */
    wk_listeners listeners;
    struct wk_worker_stats stats;

    pthread_mutex_t lock;
    pthread_cond_t ended;
    _Atomic int state;
    wk_worker_list children;
    /* The ids of the non-daemon children the running stop round waits for
     * (tree.c), in room reserved as each child starts (cap >= the children
     * count), so that a worker's end needs no memory to stop them. */
    uint64_t *awaited;
    size_t awaited_count, awaited_cap;
    uint64_t stop_round; /* the last stop round of its parent that told it;
                            under the parent's lock */
    wk_spare stop_spare; /* the parent's STOP_THREAD to it, taken when it
                            starts; under the parent's lock */
    wk_watch_list watchers;
    /* The ids of the workers WORKER_DOWN told of its last end (tree.c), in
     * room reserved as each monitor is added; emptied by a restart. */
    uint64_t *told;
    size_t told_count, told_cap;
    struct worker_channel **channels; /* the channels it is subscribed to */
    size_t channel_count, channel_cap;
    int result_err;
    void *result_ret;
    bool finished; /* the last run has dropped its reference (true when NEW) */
    /* Supervised restarts (hold.c): whether an end keeps the mailbox
     * admitting events for the next run (enum wk_hold), and whether the
     * last end did (the mailbox is WK_MB_HELD; only wk_worker_restart
     * starts it then). */
    uint8_t hold_mode;
    bool held;
    /* What a layer above hangs on the worker (a supervisor's state), freed
     * with it by ext_free. Set before the worker starts. */
    void *ext;
    void (*ext_free)(void *ext);
    uint64_t runs; /* how many runs were started (prepare_start waits for
                      the last one to finish before it counts the next) */

    /* owner thread only */
    wk_frame *frames;
    bool exiting;
    bool paused;
    bool ending;
    bool stopping; /* a stop round waits for its children (tree.c) */
    bool end_children; /* it had children when its end sequence began */
    uint8_t end_phase; /* pooled: enum wk_end_phase (pooled.c) */
    bool stops_untold; /* pooled: a STOP to a child is still to be sent */
    uint64_t stop_rounds; /* the stop rounds it began */
    worker_t *below; /* the worker under this one on its thread's stack */
    wk_timers timers;
    struct wk_owner_counts counts;
    /* The batch being handled: any thread may read the two counts (relaxed;
     * stats.c), only the owner writes them. */
    _Atomic size_t batch_pos, batch_len;
    worker_event_t *batch[WK_BATCH];
    /* The scheduler's (sched.c): the next worker on its run queue (the
     * queue's lock), its place in the timer heap (the heap's lock). */
    worker_t *sched_next;
    size_t sched_heap_at; /* its entry's place in the timer heap + 1; 0: none */
    /* Traced pushes and pops, for the depth records (any thread adds); last,
     * on lines of its own, so the hot fields above keep their places. */
    _Alignas(64) wk_trace_depth depth;
};

_Static_assert(sizeof(struct worker) <= WK_POOL_WORKER_SIZE, "the worker outgrew its pool class");
_Static_assert(WK_POOL_WORKER_SIZE % 64 == 0, "pool objects of a class stay line aligned");

static inline uint64_t wk_worker_id(const worker_t *w)
{
    return w->id;
}

static inline wk_state wk_worker_state(const worker_t *w)
{
    return (wk_state)atomic_load_explicit(&((worker_t *)w)->state, memory_order_acquire);
}

/* worker.c */
worker_t *wk_worker_alloc(const char *name, size_t mailbox_limit, bool drop_oldest);
void wk_worker_trace_created(worker_t *w); /* once per trace */
void wk_worker_set_state(worker_t *w, wk_state s); /* caller holds w->lock */
void wk_worker_free(worker_t *w); /* at the last reference */
/* stats.c: a run begins and ends (owner; for the busy time). */
void wk_worker_run_began(worker_t *w);
void wk_worker_run_ended(worker_t *w);
/* Any thread: user events queued now (accepted, not handled or dropped). */
uint64_t wk_worker_queued(const worker_t *w);
/* A reference on `sender` for an event. For the thread's own current
 * worker it comes from a block taken in advance, so a hot sender does not
 * bounce the refcount's cache line with its receivers on every event. */
worker_t *wk_sender_ref(wk_thread *t, worker_t *sender);
/* Give back the references taken in advance (before the worker may end). */
void wk_sender_credit_return(wk_thread *t);

/* Run the task and the end sequence on the calling thread. */
void wk_worker_run(worker_t *w, wk_thread *t);

/* A run begins (traced, RUNNING, its parent told), without putting the
 * worker on a thread's stack: the first step of every run. */
void wk_worker_run_begins(worker_t *w, wk_thread *t, long tid);

/* The end sequence after the task (or, for root workers, the thread) ended. */
void wk_worker_finish(worker_t *w, wk_thread *t, int err, void *ret);
/* Its two halves, around the stop of the children (tree.c): the first
 * closes the mailbox and delivers what it holds; the last closes it for
 * good, leaves t's stack and tells the watchers (the worker may be freed
 * when it returns). */
void wk_worker_end_begin(worker_t *w, wk_thread *t, int err, void *ret);
void wk_worker_end_complete(worker_t *w, wk_thread *t);

/* Run `hook(w)` at every worker's last reference, before its memory goes
 * (channels leave the worker there). Set once, by the layer above. */
void wk_worker_on_free(void (*hook)(worker_t *w));

/* forward.c: make `w` a forwarding worker (worker_opts.forward), once,
 * before its first start. */
void wk_worker_make_forwarding(worker_t *w, worker_forward_fn forward, void *arg);

#endif
