/* Waiting for room in a full mailbox (worker_fire_opts.wait).
 *
 * A waiting sender hands the full mailbox a ticket (wk_mailbox_wait_room)
 * and runs its own worker's loop (a thread the library did not start runs
 * its root worker's) until the ticket's notice comes back: the mailbox's
 * owner sends it after it took user events out, the close sends it when the
 * target ends. So the sender sleeps while the target is full and wakes once
 * room may have come; an owner with nobody waiting pays one load per batch.
 * Running its own loop meanwhile, a sender keeps handling its own mail: two
 * workers firing at each other with waits never deadlock.
 *
 * Invariants:
 * - A ticket has two holders: the sender (until its wait returns) and the
 *   mailbox's waiter stack (until the ticket is handed to `wake`, which
 *   queues the notice, giving the stack's reference to the notice). The
 *   last holder frees it. The notice and its queue node are taken when the
 *   ticket is made, so waking needs no memory.
 * - `frame` is touched on the sender's thread only: the notice runs there,
 *   and marks the frame done only while the sender still waits on it. A
 *   late notice (the sender got room or gave up first) does nothing.
 * - After registering the ticket the sender checks for room once more
 *   (wk_mailbox_may_push; see mailbox.c, "Room") before it waits: either
 *   that check sees the room or the owner sees the ticket. A wake-up that
 *   comes before the wait begins only ends the wait at once.
 */
#include <stdlib.h>

#include "wk_sched.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_pool.h"
#include "wk_room.h"

typedef struct room_ticket {
    wk_room_waiter waiter; /* first: the mailbox hands this back */
    _Atomic uint32_t refs;
    worker_t *sender; /* holds a reference */
    worker_event_t *notice; /* taken in advance; NULL once queued */
    void *notice_node;
    wk_frame *frame; /* sender's thread only */
} room_ticket;

static void ticket_unref(room_ticket *k)
{
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (k->notice)
        wk_event_discard(k->notice);
    wk_pool_free(WK_POOL_QNODE, k->notice_node);
    worker_unref(k->sender);
    free(k);
}

/* On the sender's thread, in its loop. */
static void room_came(worker_t *owner, worker_event_t *e)
{
    (void)owner;
    room_ticket *k = wk_event_call_arg(e);
    if (k->frame)
        k->frame->done = true;
    ticket_unref(k); /* the notice's */
}

/* The mailbox's owner (or its close) hands the ticket back: queue the
 * notice to the sender. Refused, the sender has ended: nobody waits. */
static void wake(wk_room_waiter *waiter)
{
    room_ticket *k = (room_ticket *)waiter;
    worker_event_t *n = k->notice;
    void *node = k->notice_node;
    k->notice = NULL;
    k->notice_node = NULL;
    wk_thread *t = wk_thread_get();
    int rc = t ? wk_mailbox_push_node(&k->sender->mb, n, node, t) : WORKER_ENOMEM;
    if (rc == WORKER_OK)
        return; /* the stack's reference went with the notice */
    if (rc == WORKER_ENOMEM && !t)
        wk_pool_free(WK_POOL_QNODE, node);
    wk_event_discard(n);
    ticket_unref(k);
}

static room_ticket *ticket_new(worker_t *sender)
{
    room_ticket *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->notice = wk_event_new_call(wk_atoms.execute, WK_EV_INTERNAL, NULL, room_came, k, NULL);
    k->notice_node = wk_pool_alloc(WK_POOL_QNODE);
    if (!k->notice || !k->notice_node) {
        if (k->notice)
            wk_event_discard(k->notice);
        wk_pool_free(WK_POOL_QNODE, k->notice_node);
        free(k);
        return NULL;
    }
    k->waiter.wake = wake;
    atomic_init(&k->refs, 2); /* the sender's and the stack's */
    k->sender = worker_ref(sender);
    return k;
}

int wk_room_begin(wk_room *rw, double seconds)
{
    if (seconds != seconds)
        return WORKER_EINVAL;
    if (!wk_deadline_after(seconds, &rw->deadline_ns))
        rw->deadline_ns = WK_NO_DEADLINE;
    return WORKER_OK;
}

int wk_room_wait(wk_room *rw, worker_t *to, wk_thread *t)
{
    if (rw->deadline_ns != WK_NO_DEADLINE && wk_now_ns() >= rw->deadline_ns)
        return WORKER_EFULL;
    if (wk_in_pooled(t))
        return WORKER_EWOULDBLOCK; /* it may not wait for room */
    worker_t *me = wk_current(t);
    room_ticket *k = me ? ticket_new(me) : NULL;
    if (!k)
        return WORKER_ENOMEM;
    wk_frame f = { .kind = WK_WAIT_NOTICE };
    k->frame = &f;
    wk_mailbox_wait_room(&to->mb, &k->waiter);
    /* Room may have come between the refused push and the registration;
     * the owner did not see the ticket then. */
    int rc = wk_mailbox_may_push(&to->mb) ? WORKER_OK : wk_loop_wait(me, t, &f, rw->deadline_ns);
    k->frame = NULL;
    ticket_unref(k); /* the sender's */
    if (rc == WORKER_ETIMEDOUT)
        return WORKER_EFULL;
    return rc;
}
