/* The worker object and the internal interface between worker.c, tree.c,
 * loop.c, fire.c and current.c.
 *
 * Who touches what:
 * - Immutable after worker_new(): id, name, task, arg, parent, daemon_mode,
 *   quiet, is_root, is_main, mb.limit.
 * - `lock` guards: state (also readable atomically without it), children,
 *   watchers, channels, result_err, result_ret, finished. `ended` is
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
#include "wk_thread.h"

#define WK_BATCH 32

typedef enum wk_state { WK_NEW, WK_STARTING, WK_RUNNING, WK_ENDING, WK_ENDED } wk_state;

typedef enum wk_wait_kind {
    WK_WAIT_TIME, /* only the deadline (or stop) ends it */
    WK_WAIT_EVENT, /* an event with that name (and sender) */
    WK_WAIT_COND, /* a user condition */
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
} wk_watch_kind;

typedef struct wk_watch {
    worker_t *watcher; /* holds a reference */
    wk_watch_kind kind;
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
    bool is_main;
    bool is_future; /* runs a worker_async task: its end settles a future */
    _Atomic uint64_t traced_in; /* the trace session that has its CREATED record */
    wk_listeners listeners;

    pthread_mutex_t lock;
    pthread_cond_t ended;
    _Atomic int state;
    wk_worker_list children;
    wk_watch_list watchers;
    struct worker_channel **channels; /* the channels it is subscribed to */
    size_t channel_count, channel_cap;
    int result_err;
    void *result_ret;
    bool finished; /* the last run has dropped its reference (true when NEW) */

    /* owner thread only */
    wk_frame *frames;
    bool exiting;
    bool paused;
    bool ending;
    worker_t *below; /* the worker under this one on its thread's stack */
    wk_timers timers;
    size_t batch_pos, batch_len;
    worker_event_t *batch[WK_BATCH];
};

static inline uint64_t wk_worker_id(const worker_t *w)
{
    return w->id;
}

static inline wk_state wk_worker_state(const worker_t *w)
{
    return (wk_state)atomic_load_explicit(&((worker_t *)w)->state, memory_order_acquire);
}

/* worker.c */
worker_t *wk_worker_alloc(const char *name, size_t mailbox_limit);
void wk_worker_trace_created(worker_t *w); /* once per trace */
void wk_worker_set_state(worker_t *w, wk_state s); /* caller holds w->lock */
void wk_worker_free(worker_t *w); /* at the last reference */
/* A reference on `sender` for an event. For the thread's own current
 * worker it comes from a block taken in advance, so a hot sender does not
 * bounce the refcount's cache line with its receivers on every event. */
worker_t *wk_sender_ref(wk_thread *t, worker_t *sender);
/* Give back the references taken in advance (before the worker may end). */
void wk_sender_credit_return(wk_thread *t);

/* Run the task and the end sequence on the calling thread. */
void wk_worker_run(worker_t *w, wk_thread *t);

/* The end sequence after the task (or, for root workers, the thread) ended. */
void wk_worker_finish(worker_t *w, wk_thread *t, int err, void *ret);

/* loop.c (owner thread only) */
int wk_loop_wait(worker_t *w, wk_thread *t, wk_frame *f, uint64_t deadline_ns);
void wk_loop_drain(worker_t *w, wk_thread *t);
/* What a stop does: the worker exits at its waits, or, for a root worker,
 * its children are stopped (and the non-daemon ones awaited). */
void wk_loop_stop(worker_t *w, wk_thread *t);

/* tree.c */
int wk_tree_link(worker_t *child); /* at start: join the parent's children */
void wk_tree_unlink(worker_t *child); /* leave the parent's children */
/* Send STOP_THREAD to every child, then run w's loop until every non-daemon
 * one has reported CHILD_THREAD_END. Owner thread of w. */
void wk_tree_stop_children(worker_t *w, wk_thread *t);
/* State -> WK_ENDED; tell the parent, then waiters and monitors; then
 * `finished` and drop the run's reference (w may be freed on return). */
void wk_tree_report_end(worker_t *w, wk_thread *t);
/* Block (plain condition wait) until the last run has finished. */
void wk_wait_finished(worker_t *w);
/* Add a watcher (not twice for the same kind). Caller holds target->lock. */
int wk_watch_add(worker_t *target, worker_t *watcher, wk_watch_kind kind);
bool wk_watch_remove(worker_t *target, worker_t *watcher, wk_watch_kind kind); /* holds lock */
/* Send the end notice of `kind` about `w` to `watcher`. */
void wk_watch_notify(worker_t *w, worker_t *watcher, wk_watch_kind kind, wk_thread *t);
bool wk_list_add(wk_worker_list *l, worker_t *w); /* takes a reference */
bool wk_list_remove(wk_worker_list *l, worker_t *w); /* drops it */
size_t wk_list_copy(wk_worker_list *l, worker_t ***out); /* refs; caller frees */
void wk_list_release(worker_t **items, size_t n);

/* fire.c */
/* Queue `e` (one reference, owned by the caller and given away here) on
 * `to`, and on its ancestors / descendants. `origin_data` is what an
 * EVENT_REJECT reports. */
int wk_deliver(
    worker_t *to, worker_event_t *e, bool bubble, bool broadcast, void *origin_data, wk_thread *t);
/* Queue a library event (never refused for a full mailbox). */
int wk_send_library(worker_t *to, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* The same with an explicit kind (WK_EV_LIBRARY or WK_EV_LINK). */
int wk_send_kind(worker_t *to, int kind, const wk_atom *atom, void *data, const void *copy,
    size_t copy_size, worker_t *sender, wk_thread *t);
/* Queue an event that runs `fn(owner, e)` on `to`'s thread. With `show`
 * (EXECUTE) the event is a library event that listeners see, after
 * `show(owner, e)` has agreed as the owner takes it, and `fn` runs after
 * them; without, an internal command no listener sees. */
int wk_send_call(worker_t *to, const wk_atom *atom, wk_show_fn show, void *data, wk_internal_fn fn,
    void *fn_arg, wk_thread *t);

/* timer.c (owner thread only) */
static inline bool wk_timers_pending(const worker_t *w)
{
    return w->timers.count || w->timers.spilled;
}
uint64_t wk_timers_next_deadline(const worker_t *w); /* WK_NO_DEADLINE if none */
void wk_timers_run_due(worker_t *w);
void wk_timers_drop_all(worker_t *w);

/* channel.c */
/* At the worker's last reference: leave every channel, and return only when
 * no publisher can still reach the worker through one. */
void wk_channels_leave_all(worker_t *w);

/* current.c */
worker_t *wk_current(wk_thread *t); /* the top of t's stack; makes a root */
bool wk_on_stack(wk_thread *t, const worker_t *w);

/* error.c */
void wk_report(const worker_t *w, const char *what, int code);

#endif
