/* A worker's mailbox: many producers, one consumer (the owner thread). */
#ifndef WK_MAILBOX_H
#define WK_MAILBOX_H

#include <time.h> /* struct timespec, which ck_ec.h uses */

#include <ck_ec.h>
#include <ck_epoch.h>
#include <ck_fifo.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <worker/types.h>

#include "wk_thread.h"

/* How far a mailbox is closed. */
enum wk_mailbox_level {
    WK_MB_OPEN = 0, /* everything is admitted */
    WK_MB_ENDING = 1, /* only supervision messages (WK_EV_LINK) are admitted */
    WK_MB_CLOSED = 2, /* nothing is admitted */
    WK_MB_HELD = 3, /* all but the library's named events (stop, pause,
                       notices for the run that ended) are admitted, and the
                       owner is not running: a supervised worker between its
                       end and its restart (lib/worker/hold.c); the next run
                       pops what waits */
    WK_MB_FORWARD = 4, /* open, and user events are not queued: each is handed
                          to `forward` on the pushing thread (a forwarding
                          owner, mailbox_forward.c) */
};

/* What `wake_fd` holds besides an fd. */
enum { WK_MB_NO_FD = -1, WK_MB_POOLED = -2 };

/* Queue nodes are bare ck_fifo_mpmc entries (32 bytes). Garbage nodes are
 * chained through their `value` (only the single consumer reads it) and
 * retired a batch at a time, with one ticket per batch. */
typedef struct wk_retire_ticket {
    ck_epoch_entry_t retire;
    ck_fifo_mpmc_entry_t *chain;
} wk_retire_ticket;

/* A sender waiting for room in a full mailbox (worker_fire_opts.wait):
 * registered with wk_mailbox_wait_room, it is handed back once, to its
 * `wake`, by the owner after it took user events out, or by the close. */
typedef struct wk_room_waiter {
    struct wk_room_waiter *next;
    void (*wake)(struct wk_room_waiter *self);
} wk_room_waiter;

struct wk_mailbox;
/* A forwarding owner's hook: takes over the push's reference to `e`. */
typedef void (*wk_mailbox_forward_fn)(struct wk_mailbox *mb, worker_event_t *e, wk_thread *t);

typedef struct wk_mailbox {
    ck_fifo_mpmc_t fifo; /* head and tail on their own cache lines */
    /* Read-mostly: producers read these on every push. */
    _Alignas(64) _Atomic int closed; /* enum wk_mailbox_level */
    _Atomic int sleeping; /* the owner is about to park or parked */
    _Atomic int wake_fd; /* WK_MB_NO_FD, the eventfd of an embedded owner
                            (mailbox_fd.c), or WK_MB_POOLED (mailbox_pooled.c) */
    size_t limit; /* 0: unbounded */
    bool drop_oldest; /* the policy past `limit`: drop the oldest user event */
    wk_mailbox_forward_fn forward; /* NULL, or set once before the first open */
    /* Written by producers of counted events (a limit is set), of library
     * messages, and by the owner. */
    _Alignas(64) _Atomic long user_queued;
    _Atomic long drop_owed; /* drop-oldest: user events the owner must drop */
    _Atomic(wk_room_waiter *) room_waiters; /* a stack of waiting senders */
    _Atomic uint64_t not_user; /* messages queued that are not user events */
    _Atomic uint64_t forwarding; /* forwards running now (mailbox_forward.c) */
    _Atomic uint64_t forwarded; /* forwards done, over every run (statistics) */
    _Alignas(64) struct ck_ec32 ec;
    /* Owner only, written every batch: on a line of its own, away from the
     * wake-up counter that producers touch. */
    _Alignas(64) ck_fifo_mpmc_entry_t *garbage; /* dequeued stubs not yet retired */
    uint32_t garbage_count;
    uint32_t since_poll;
    /* Owner writes, any thread reads (statistics): time really asleep. */
    _Atomic uint64_t slept_ns; /* finished sleeps */
    _Atomic uint64_t asleep_since; /* 0, or when the running sleep began */
} wk_mailbox;

/* A closed, empty mailbox. WORKER_OK or WORKER_ENOMEM. */
int wk_mailbox_init(wk_mailbox *mb, size_t limit, bool drop_oldest);
/* Owner (or last reference), once nobody can push any more. */
void wk_mailbox_destroy(wk_mailbox *mb);

/* Any thread. WORKER_OK: queued, and it will be popped exactly once.
 * WORKER_EREJECTED (closed), WORKER_EFULL (a user event past the limit;
 * with drop_oldest it is accepted instead and the owner owes one drop,
 * unless a whole limit of drops is owed already), WORKER_ENOMEM. On error
 * nothing was queued. */
int wk_mailbox_push(wk_mailbox *mb, worker_event_t *e, wk_thread *t);
/* The same for an event known to be a user event (the fire path). */
int wk_mailbox_push_user(wk_mailbox *mb, worker_event_t *e, wk_thread *t);
/* The same with `node`, a WK_POOL_QNODE object taken in advance, which the
 * call takes over (NULL: WORKER_ENOMEM). */
int wk_mailbox_push_node(wk_mailbox *mb, worker_event_t *e, void *node, wk_thread *t);

/* Owner only: take up to `max` events in FIFO order; returns how many. */
size_t wk_mailbox_pop_batch(wk_mailbox *mb, wk_thread *t, worker_event_t **out, size_t max);

/* Owner only: how many of the oldest user events it must drop, and the
 * acknowledgement of `n` dropped (drop-oldest; mailbox_room.c). */
static inline long wk_mailbox_drops_owed(wk_mailbox *mb)
{
    return atomic_load_explicit(&mb->drop_owed, memory_order_relaxed);
}
void wk_mailbox_dropped(wk_mailbox *mb, long n);

/* Any thread: register `waiter` to be woken once room may have come (or
 * the mailbox closed). The caller then tries its push again: a wake-up
 * may come before that try, so it must not sleep before trying. */
void wk_mailbox_wait_room(wk_mailbox *mb, wk_room_waiter *waiter);
/* Any thread, after wk_mailbox_wait_room: true when a push of a user event
 * may now succeed (room, a drop it may owe, or closed: the push is then
 * refused for good). false: the waiter will be woken when that changes. */
bool wk_mailbox_may_push(wk_mailbox *mb);
/* Owner (and close/destroy): hand every registered waiter to its wake. */
void wk_mailbox_wake_room(wk_mailbox *mb);

/* Any thread (statistics): user events accepted so far, over every run. */
uint64_t wk_mailbox_accepted(const wk_mailbox *mb);
/* Any thread (statistics): messages of every kind the owner has taken out
 * so far (the queue's head generation). */
uint64_t wk_mailbox_taken(const wk_mailbox *mb);
/* Any thread: messages of every kind in the queue now (a snapshot). */
uint64_t wk_mailbox_queued_all(const wk_mailbox *mb);
/* Any thread (statistics): seconds the owner spent asleep in park, or
 * resting outside its host loop's calls (mailbox_fd.c), up to now. */
uint64_t wk_mailbox_slept_ns(const wk_mailbox *mb, uint64_t now_ns);

/* Owner only: true when an event may be waiting (a hint). */
bool wk_mailbox_has_work(const wk_mailbox *mb);

/* Owner only: spin briefly, then sleep until a push may have happened or
 * the monotonic deadline (ns, WK_NO_DEADLINE for none) passes. May return
 * early; the caller re-checks. */
void wk_mailbox_park(wk_mailbox *mb, wk_thread *t, uint64_t deadline_ns);

/* Owner: a sleep (statistics) begins and ends: in park, and while a host
 * loop's owner rests (mailbox_fd.c). */
void wk_mailbox_sleep_begin(wk_mailbox *mb);
void wk_mailbox_sleep_end(wk_mailbox *mb);

/* Owner: accept pushes again (start). */
void wk_mailbox_open(wk_mailbox *mb);

/* Owner: set the level (WK_MB_ENDING, WK_MB_CLOSED or WK_MB_HELD), and return only
 * when every push accepted under the lower level is in the queue. Outside
 * epoch sections. */
void wk_mailbox_close(wk_mailbox *mb, wk_thread *t, int level);

/* The readable fd of a mailbox whose owner is driven by a host event loop
 * (mailbox_fd.c). While the owner rests outside its loop, `sleeping` stays
 * set, so producers signal the fd as they would wake a parked owner. */

/* Owner: give the mailbox its eventfd (once). The fd, or WORKER_EAGAIN
 * when the system refuses one. */
int wk_mailbox_attach_fd(wk_mailbox *mb);
/* Owner, leaving its outermost loop: announce rest, clear the fd, re-check
 * the queue and signal the fd again if an event came. */
void wk_mailbox_rest(wk_mailbox *mb);
/* Owner, entering its outermost loop: producers stop signalling. */
void wk_mailbox_busy(wk_mailbox *mb);
/* Owner, after wk_mailbox_close(WK_MB_CLOSED): close the fd. */
void wk_mailbox_detach_fd(wk_mailbox *mb);
/* Producers: make the fd readable. */
void wk_mailbox_signal_fd(int fd);

/* A pooled owner (mailbox_pooled.c): no thread of its own parks on the
 * mailbox; while it is idle `sleeping` stays set, and the producer that
 * takes it back hands the owner to the hook set here, once, by the layer
 * that schedules pooled owners. */
typedef void (*wk_mailbox_wake_fn)(wk_mailbox *mb);
void wk_mailbox_set_pooled_wake(wk_mailbox_wake_fn wake);
void wk_mailbox_pooled_wake(wk_mailbox *mb); /* calls the hook */
/* Owner, once, before its first rest: producers schedule it from now on. */
void wk_mailbox_make_pooled(wk_mailbox *mb);
/* The owner goes idle: set `sleeping`, then look at the queue again. True
 * when an event came meanwhile and the caller took `sleeping` back: it
 * must schedule the owner itself. False: idle (a producer schedules it). */
bool wk_mailbox_pooled_rest(wk_mailbox *mb);
/* Any thread: take an idle pooled owner for running (a timer fell due).
 * True when taken: the caller schedules it. */
bool wk_mailbox_pooled_claim(wk_mailbox *mb);

static inline bool wk_mailbox_is_pooled(const wk_mailbox *mb)
{
    return atomic_load_explicit(&((wk_mailbox *)mb)->wake_fd, memory_order_relaxed) == WK_MB_POOLED;
}

static inline bool wk_mailbox_has_fd(wk_mailbox *mb)
{
    return atomic_load_explicit(&mb->wake_fd, memory_order_relaxed) >= 0;
}

static inline bool wk_mailbox_is_open(const wk_mailbox *mb)
{
    int level = atomic_load_explicit(&mb->closed, memory_order_acquire);
    return level == WK_MB_OPEN || level == WK_MB_FORWARD;
}

/* A forwarding owner (mailbox_forward.c): while open, user events go to
 * `forward` on the pushing thread instead of the queue; everything else is
 * queued as usual. Set once, before the first open. */
void wk_mailbox_make_forwarding(wk_mailbox *mb, wk_mailbox_forward_fn forward);
/* Inside push, in the pusher's epoch section, for a user event at a
 * WK_MB_FORWARD level: leaves the section, runs the hook, WORKER_OK. */
int wk_mailbox_forward_out(wk_mailbox *mb, worker_event_t *e, void *node, wk_thread *t);
/* Close's second half for a forwarding owner: wait until every forward
 * that began under the open level has returned. */
void wk_mailbox_forwards_drain(wk_mailbox *mb);

#endif
