/* Mailboxes: ck_fifo_mpmc + ck_epoch + ck_ec.
 *
 * Invariants:
 * - Any thread may push; only the owner thread pops, parks, opens and
 *   closes. So there is exactly one consumer per queue.
 * - Once an event is enqueued it belongs to the queue: the pusher never
 *   reads it again (the owner may already have handled and recycled it).
 * - Every push runs inside the pusher's epoch section from the `closed`
 *   check to the end of the enqueue. Closing stores `closed` and then waits
 *   for a grace period (wk_epoch_synchronize): afterwards every push that
 *   saw the mailbox open has finished enqueueing, and every later push sees
 *   it closed. That is what makes "accepted means delivered" exact without a
 *   per-push counter. Closing has two steps: WK_MB_ENDING still admits
 *   supervision messages (so an ending parent hears its children end),
 *   WK_MB_CLOSED admits nothing; each step has its own grace period.
 * - ck_fifo_mpmc leaves the previous stub behind as garbage on each dequeue.
 *   Producers may still be reading a garbage node (its `next`), so garbage
 *   is retired through ck_epoch_call and reused only after a grace period.
 *   Producers never read a node's `value` (only the consumer does), so the
 *   owner chains garbage through it and retires the chain with one ticket
 *   once it holds RETIRE_AFTER nodes: a node is a bare 32-byte entry, with
 *   no epoch entry of its own, and a ping-pong does not pay a ticket per
 *   message. A mailbox holds at most RETIRE_AFTER plus one batch of
 *   unretired nodes while tickets can be made; out of memory the chain
 *   grows until one can (the nodes are only kept longer, never reused
 *   early). The owner pops inside a section too, one section per batch.
 * - A push may bring its own node (taken in advance, so that a notice that
 *   must not depend on memory can still be queued): either way the node
 *   belongs to the queue once enqueued and goes back to the pool when the
 *   push is refused.
 * - The owner peeks at head->next outside any section: with a single
 *   consumer the head node is only ever retired by the owner itself.
 * - Before parking the owner spins briefly, then yields its core once, then
 *   parks; both only delay parking, so they change no guarantee.
 * - Wake-ups: the owner sets `sleeping` (seq_cst) and re-checks the queue
 *   before it parks on `ec`; a producer reads `sleeping` after its enqueue
 *   (whose locked CAS is a full barrier on x86_64) and bumps `ec` only when
 *   it is set. Either the owner sees the event or the producer sees the
 *   flag, so no wake-up is lost and an awake owner costs producers nothing.
 *   An owner driven by a host loop keeps `sleeping` set while it is outside
 *   its loop, and the producer then also signals its fd (mailbox_fd.c). A
 *   pooled owner (mailbox_pooled.c) keeps `sleeping` set while it is idle,
 *   and the producer that takes it back schedules it.
 * - `user_queued` counts user events pushed and not yet popped; only kept
 *   when `limit` is set, so unbounded mailboxes skip that atomic.
 * - Statistics cost the fire path nothing: ck_fifo_mpmc's tail generation
 *   goes up by one per message enqueued, so the user events accepted are
 *   that generation minus `not_user`, which only the pushes of library
 *   messages count. Its head generation goes up by one per message taken
 *   out; the owner counts only the messages it takes that are not user
 *   events, and its drops (worker layer).
 * - Drop-oldest: a user event past the limit is accepted when fewer than
 *   `limit` drops are owed already; it keeps its slot (`user_queued` goes
 *   past the limit) and adds one to `drop_owed`. Only the owner pops, so
 *   only the owner drops: after a pop it drops that many of the oldest user
 *   events it took and acknowledges them (wk_mailbox_dropped). Every owed
 *   drop has an event behind it (the producer's own), so it always finds
 *   one; the queue holds at most twice the limit, and past that the push is
 *   refused (WORKER_EFULL) until the owner catches up.
 * - Room: a sender that waits for room pushes a wk_room_waiter on
 *   `room_waiters` (seq_cst) and then tries its push again; the owner,
 *   after taking user events out (seq_cst fetch_sub, or a drop
 *   acknowledged), loads `room_waiters` and hands every waiter to its wake.
 *   Either the retry sees the room or the owner sees the waiter, so no
 *   wake-up is lost; an owner with nobody waiting pays one load per batch
 *   of counted events. Closing and destroying hand every waiter back too.
 * - Sleep time (statistics): the owner reads the clock only around a park
 *   that really sleeps (and around a host loop's rest, mailbox_fd.c), never
 *   per event.
 */
#include "wk_mailbox.h"

#include <ck_pr.h>
#include <sched.h>
#include <stddef.h>
#include <time.h>

#include <worker/error.h>

#include "wk_epoch.h"
#include "wk_event.h"
#include "wk_os.h"
#include "wk_pool.h"
#include "wk_tsan.h"

_Static_assert(sizeof(ck_fifo_mpmc_entry_t) <= WK_POOL_QNODE_SIZE, "queue node outgrew its class");
_Static_assert(sizeof(wk_retire_ticket) <= WK_POOL_QNODE_SIZE, "ticket outgrew its pool class");

/* Checks of the queue before parking (each with a pause). Long enough for a
 * hot ping-pong to stay awake, short enough that a worker with nothing to do
 * gives its core back at once: on 2 cores a long spin starves the producer. */
#define SPIN_BEFORE_PARK 100
#define POLL_EVERY 64
#define RETIRE_AFTER 32

static const struct ck_ec_mode ec_mode = { .ops = &wk_ec_ops, .single_producer = false };

static void free_chain(ck_fifo_mpmc_entry_t *node)
{
    while (node) {
        ck_fifo_mpmc_entry_t *next = node->value;
        wk_pool_free(WK_POOL_QNODE, node);
        node = next;
    }
}

/* After a grace period: no producer can still be reading these nodes. */
static void ticket_expired(ck_epoch_entry_t *retire)
{
    wk_retire_ticket *ticket
        = (wk_retire_ticket *)((char *)retire - offsetof(wk_retire_ticket, retire));
    free_chain(ticket->chain);
    wk_pool_free(WK_POOL_QNODE, ticket);
}

/* Retire the chained garbage; without memory for a ticket it stays chained
 * and waits for the next batch (or for wk_mailbox_destroy). */
static void retire_garbage(wk_mailbox *mb, wk_thread *t)
{
    wk_retire_ticket *ticket = wk_pool_alloc(WK_POOL_QNODE);
    if (!ticket)
        return;
    ticket->chain = mb->garbage;
    mb->garbage = NULL;
    mb->garbage_count = 0;
    wk_epoch_retire(t, &ticket->retire, ticket_expired);
}

int wk_mailbox_init(wk_mailbox *mb, size_t limit, bool drop_oldest)
{
    ck_fifo_mpmc_entry_t *stub = wk_pool_alloc(WK_POOL_QNODE);
    if (!stub)
        return WORKER_ENOMEM;
    ck_fifo_mpmc_init(&mb->fifo, stub);
    mb->garbage = NULL;
    mb->garbage_count = 0;
    atomic_init(&mb->closed, WK_MB_CLOSED);
    atomic_init(&mb->sleeping, 0);
    atomic_init(&mb->wake_fd, WK_MB_NO_FD);
    atomic_init(&mb->user_queued, 0);
    atomic_init(&mb->drop_owed, 0);
    atomic_init(&mb->room_waiters, NULL);
    atomic_init(&mb->not_user, 0);
    atomic_init(&mb->forwarding, 0);
    atomic_init(&mb->forwarded, 0);
    mb->forward = NULL;
    atomic_init(&mb->slept_ns, 0);
    atomic_init(&mb->asleep_since, 0);
    mb->limit = limit;
    mb->drop_oldest = drop_oldest;
    ck_ec32_init(&mb->ec, 0);
    mb->since_poll = 0;
    return WORKER_OK;
}

void wk_mailbox_destroy(wk_mailbox *mb)
{
    ck_fifo_mpmc_entry_t *stub;
    ck_fifo_mpmc_deinit(&mb->fifo, &stub);
    wk_pool_free(WK_POOL_QNODE, stub);
    free_chain(mb->garbage); /* closed: no producer is inside any more */
    mb->garbage = NULL;
    wk_mailbox_wake_room(mb); /* waiters that registered after the close */
}

/* Drop-oldest: owe the owner one more drop, unless a whole limit is owed. */
static bool owe_drop(wk_mailbox *mb)
{
    long owed = atomic_load_explicit(&mb->drop_owed, memory_order_relaxed);
    while (owed < (long)mb->limit)
        if (atomic_compare_exchange_weak_explicit(
                &mb->drop_owed, &owed, owed + 1, memory_order_relaxed, memory_order_relaxed))
            return true;
    return false;
}

/* Reserve a slot under the limit; false when full. (seq_cst: a waiting
 * sender's retry and the owner's release of slots, see "Room" above.) */
static bool take_slot(wk_mailbox *mb)
{
    long before = atomic_fetch_add_explicit(&mb->user_queued, 1, memory_order_seq_cst);
    if (before < (long)mb->limit || (mb->drop_oldest && owe_drop(mb)))
        return true;
    atomic_fetch_sub_explicit(&mb->user_queued, 1, memory_order_relaxed);
    return false;
}

static bool counted(const wk_mailbox *mb, const worker_event_t *e)
{
    return mb->limit && e->kind == WK_EV_USER;
}

/* A producer saw `sleeping`: wake a parked owner. With an fd (an owner
 * that rests in a host loop, mailbox_fd.c) the first producer to take the
 * flag back wakes it both ways and the others pay nothing more: the fd
 * stays readable until the owner rests again. (The acquire load of
 * `sleeping` that led here orders the owner's store of `wake_fd` before
 * this read.) */
static void wake_owner(wk_mailbox *mb)
{
    int fd = atomic_load_explicit(&mb->wake_fd, memory_order_relaxed);
    if (fd == WK_MB_NO_FD) {
        ck_ec32_inc(&mb->ec, &ec_mode);
        return;
    }
    if (!atomic_exchange_explicit(&mb->sleeping, 0, memory_order_acq_rel))
        return; /* another producer signalled (or scheduled it) */
    if (fd == WK_MB_POOLED) {
        wk_mailbox_pooled_wake(mb);
        return;
    }
    ck_ec32_inc(&mb->ec, &ec_mode);
    wk_mailbox_signal_fd(fd);
}

static inline __attribute__((always_inline)) int push(wk_mailbox *mb, worker_event_t *e,
    ck_fifo_mpmc_entry_t *node, wk_thread *t, const bool known_user)
{
    if (!node)
        return WORKER_ENOMEM;
    int rc = WORKER_OK;
    wk_epoch_enter(t);
    int level = atomic_load_explicit(&mb->closed, memory_order_acquire);
    if (__builtin_expect(level == WK_MB_FORWARD, 0) && e->kind == WK_EV_USER)
        return wk_mailbox_forward_out(mb, e, node, t); /* leaves the section */
    if (level == WK_MB_CLOSED || (level == WK_MB_ENDING && e->kind != WK_EV_LINK)
        || (level == WK_MB_HELD && (e->kind == WK_EV_LIBRARY || (mb->forward && e->kind == WK_EV_USER))))
        rc = WORKER_EREJECTED;
    else if (counted(mb, e) && !take_slot(mb))
        rc = WORKER_EFULL;
    if (rc == WORKER_OK) {
        if (!known_user && e->kind != WK_EV_USER) /* the statistics' only cost */
            atomic_fetch_add_explicit(&mb->not_user, 1, memory_order_relaxed);
        /* Nothing may read `e` after the enqueue: its receiver may already
         * have handled and recycled it. */
        wk_tsan_release(e);
        wk_tsan_ignore_begin();
        ck_fifo_mpmc_enqueue(&mb->fifo, node, e);
        wk_tsan_ignore_end();
#if !defined(__x86_64__)
        ck_pr_fence_store_load();
#endif
        if (atomic_load_explicit(&mb->sleeping, memory_order_acquire))
            wake_owner(mb);
    }
    wk_epoch_exit(t);
    if (rc != WORKER_OK)
        wk_pool_free(WK_POOL_QNODE, node);
    return rc;
}

int wk_mailbox_push(wk_mailbox *mb, worker_event_t *e, wk_thread *t)
{
    return push(mb, e, wk_pool_alloc(WK_POOL_QNODE), t, false);
}

int wk_mailbox_push_user(wk_mailbox *mb, worker_event_t *e, wk_thread *t)
{
    return push(mb, e, wk_pool_alloc(WK_POOL_QNODE), t, true);
}

int wk_mailbox_push_node(wk_mailbox *mb, worker_event_t *e, void *node, wk_thread *t)
{
    return push(mb, e, node, t, false);
}

size_t wk_mailbox_pop_batch(wk_mailbox *mb, wk_thread *t, worker_event_t **out, size_t max)
{
    size_t n = 0;
    long popped_counted = 0;
    wk_epoch_enter(t);
    while (n < max) {
        void *value;
        ck_fifo_mpmc_entry_t *garbage;
        wk_tsan_ignore_begin();
        bool got = ck_fifo_mpmc_dequeue(&mb->fifo, &value, &garbage);
        wk_tsan_ignore_end();
        if (!got)
            break;
        worker_event_t *e = value;
        wk_tsan_acquire(e);
        garbage->value = mb->garbage;
        mb->garbage = garbage;
        mb->garbage_count++;
        popped_counted += counted(mb, e);
        out[n++] = e;
    }
    wk_epoch_exit(t);
    if (mb->garbage_count >= RETIRE_AFTER)
        retire_garbage(mb, t);
    if (popped_counted) {
        atomic_fetch_sub_explicit(&mb->user_queued, popped_counted, memory_order_seq_cst);
        if (atomic_load(&mb->room_waiters))
            wk_mailbox_wake_room(mb);
    }
    mb->since_poll += (uint32_t)n;
    if (mb->since_poll >= POLL_EVERY) {
        mb->since_poll = 0;
        wk_epoch_poll(t);
    }
    return n;
}

bool wk_mailbox_has_work(const wk_mailbox *mb)
{
    ck_fifo_mpmc_entry_t *head = ck_pr_load_ptr(&mb->fifo.head.pointer);
    return ck_pr_load_ptr(&head->next.pointer) != NULL;
}

/* WK_NO_DEADLINE becomes the largest time_t, which ck_ec reads as "none". */
static struct timespec to_timespec(uint64_t ns)
{
    if (ns == WK_NO_DEADLINE)
        return (struct timespec) { .tv_sec = (time_t)(~(uint64_t)0 >> 1), .tv_nsec = 0 };
    struct timespec ts
        = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
    return ts;
}

/* ck_ec's slow path sleeps in growing slices (2 ms, 16 ms, 128 ms, then up
 * to 1 s) that are not clamped to the caller's deadline, so a 0.2 s timeout
 * would sleep about 1 s. Its predicate may replace each slice's deadline:
 * always use ours. Nothing is lost by skipping the slices: with
 * single_producer false every increment is atomic and wakes a flagged
 * waiter, so the sleep ends on the first push. */
static int sleep_until_our_deadline(
    const struct ck_ec_wait_state *state, struct timespec *partial_deadline)
{
    *partial_deadline = *(const struct timespec *)state->data;
    return 0;
}

void wk_mailbox_park(wk_mailbox *mb, wk_thread *t, uint64_t deadline_ns)
{
    for (int i = 0; i < SPIN_BEFORE_PARK; i++) {
        if (wk_mailbox_has_work(mb))
            return;
        ck_pr_stall();
    }
    /* Let a runnable producer on this core go first: on a machine with
     * more busy threads than cores, a worker that parks at once is woken
     * for every event and each wake-up preempts the producer (P4: 64
     * subscribers on 2 cores, one context switch per ~2 deliveries). After
     * the yield it finds a batch. On an idle core it returns at once. */
    sched_yield();
    if (wk_mailbox_has_work(mb))
        return;
    wk_epoch_poll(t);
    uint32_t snapshot = ck_ec32_value(&mb->ec);
    atomic_store(&mb->sleeping, 1);
    if (!wk_mailbox_has_work(mb)) {
        struct timespec deadline = to_timespec(deadline_ns);
        wk_mailbox_sleep_begin(mb);
        ck_ec32_wait_pred(&mb->ec, &ec_mode, snapshot, sleep_until_our_deadline, &deadline,
            deadline_ns == WK_NO_DEADLINE ? NULL : &deadline);
        wk_mailbox_sleep_end(mb);
    }
    atomic_store_explicit(&mb->sleeping, 0, memory_order_relaxed);
}

void wk_mailbox_open(wk_mailbox *mb)
{
    atomic_store_explicit(
        &mb->closed, mb->forward ? WK_MB_FORWARD : WK_MB_OPEN, memory_order_release);
}

void wk_mailbox_close(wk_mailbox *mb, wk_thread *t, int level)
{
    atomic_store(&mb->closed, level);
    wk_epoch_synchronize(t);
    if (mb->forward)
        wk_mailbox_forwards_drain(mb);
    wk_mailbox_wake_room(mb); /* their retries now see it closed */
}
