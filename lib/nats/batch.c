/* Batches: the FIREs fired at a proxy are appended to its batch (one
 * FIRES message, docs/wire-format.md) and published together, so a stream
 * of small events costs NATS one message per batch instead of one per
 * event. A batch is published when it is full, before a CALL or an event
 * too large for it goes out through the same proxy, and otherwise by the
 * node's core worker: the first FIRE of a batch queues a flush there
 * (worker_later, delay 0), so a lone event waits only for the core to run
 * it, and under load the batch grows while the core is busy. With
 * worker_node_opts.send_asap there are no batches (every FIRE is
 * published at once).
 *
 * Concurrency and order: the batch has its own lock, taken by the threads
 * that fire at the proxy and by the core's flush. Appending and publishing
 * happen under it, so the proxy's messages leave in the order their events
 * were appended, and one sender's events (appended by its own thread, in
 * its order) stay in order, also against its CALLs, which flush first.
 * The buffer lives until the proxy is freed (worker_node_close, after the
 * core worker has ended: no flush is queued any more; it flushes last). */
#include <stdlib.h>

#include "wk_nats.h"

#define BATCH_BYTES (32 * 1024) /* one FIRES message at most (less if the server says so) */

void wk_batch_init(wk_batch *b)
{
    pthread_mutex_init(&b->lock, NULL);
}

void wk_batch_destroy(wk_batch *b)
{
    free(b->buf);
    pthread_mutex_destroy(&b->lock);
}

/* Publish what the batch holds (lock held). */
static void publish_locked(wk_proxy *p)
{
    wk_batch *b = &p->batch;
    if (!b->entries)
        return;
    wk_conn_publish_bytes(p->node, p->subject, NULL, b->buf, b->len, b->entries);
    b->len = 0;
    b->entries = 0;
}

void wk_batch_flush(wk_proxy *p)
{
    pthread_mutex_lock(&p->batch.lock);
    p->batch.flush_queued = false;
    publish_locked(p);
    pthread_mutex_unlock(&p->batch.lock);
}

static void flush_on_core(void *arg)
{
    wk_batch_flush(arg);
}

static bool same_sender(const wk_batch *b, const wk_msg *m)
{
    return b->entries && m->wid && m->wid == b->prev_wid && m->node.p == b->prev_node;
}

/* The most a batch may hold: BATCH_BYTES, or less when the server takes
 * less (its max_payload; 0 while disconnected). Read as a batch begins. */
static size_t batch_room(worker_node_t *n)
{
    int64_t max = natsConnection_GetMaxPayload(n->nc);
    return max > 0 && (uint64_t)max < BATCH_BYTES ? (size_t)max : BATCH_BYTES;
}

/* Append `m` (lock held); false when it must go alone: too large for a
 * batch, or no memory for one. */
static bool append_locked(wk_proxy *p, const wk_msg *m)
{
    wk_batch *b = &p->batch;
    bool same = same_sender(b, m);
    if (!b->len)
        b->room = batch_room(p->node);
    if (WK_WIRE_FIRES_HEAD + wk_wire_entry_size(m, false) > b->room)
        return false;
    if (!b->buf && !(b->buf = malloc(BATCH_BYTES)))
        return false;
    if (!b->len) {
        wk_wire_fires_head(b->buf);
        b->len = WK_WIRE_FIRES_HEAD;
    }
    b->len += wk_wire_entry_put(m, same, b->buf + b->len);
    b->entries++;
    b->prev_wid = m->wid;
    b->prev_node = m->node.p;
    return true;
}

void wk_batch_fire(wk_proxy *p, const wk_msg *m)
{
    wk_batch *b = &p->batch;
    pthread_mutex_lock(&b->lock);
    if (b->len && b->len + wk_wire_entry_size(m, same_sender(b, m)) > b->room)
        publish_locked(p);
    if (!append_locked(p, m)) {
        publish_locked(p); /* what waits goes first */
        wk_conn_publish(p->node, p->subject, NULL, m);
        pthread_mutex_unlock(&b->lock);
        return;
    }
    bool queue = !b->flush_queued;
    b->flush_queued = true;
    pthread_mutex_unlock(&b->lock);
    if (queue && worker_later(p->node->core, flush_on_core, p, 0, NULL) != WORKER_OK)
        wk_batch_flush(p); /* the core has ended (the node is closing): now */
}
