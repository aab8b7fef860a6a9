/* Local senders: a worker of this node that sent across gets an id (wid)
 * so that remote nodes can address it (<prefix>.d.<node>.<wid>) and make
 * a proxy of it. The core worker monitors it; when it ends, an ENDED
 * message tells the other nodes (their proxies of it end: WORKER_DOWN).
 *
 * Concurrency: the list is guarded by node->lock; monitoring and the
 * ENDED announcement run on the core worker's thread. */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

uint64_t wk_node_serial(void)
{
    /* Process-wide on purpose: serials tell nodes apart in forward.c's
     * per-thread cache, where an address of a closed node may come back. */
    static _Atomic uint64_t next_serial;
    return atomic_fetch_add(&next_serial, 1) + 1;
}

static void monitor_on_core(void *arg)
{
    worker_t *w = arg;
    worker_monitor(w);
    worker_unref(w);
}

uint64_t wk_sender_wid(worker_node_t *n, worker_t *w)
{
    pthread_mutex_lock(&n->lock);
    for (wk_sender *s = n->senders; s; s = s->next) {
        if (s->w == w) {
            uint64_t wid = s->wid;
            pthread_mutex_unlock(&n->lock);
            return wid;
        }
    }
    wk_sender *s = calloc(1, sizeof *s);
    uint64_t wid = 0;
    if (s) {
        s->w = worker_ref(w);
        s->wid = wid = n->next_id++;
        s->next = n->senders;
        n->senders = s;
    }
    pthread_mutex_unlock(&n->lock);
    if (s && w != n->core
        && worker_later(n->core, monitor_on_core, worker_ref(w), 0, NULL) != WORKER_OK)
        worker_unref(w); /* the node is closing */
    return wid;
}

worker_t *wk_sender_find(worker_node_t *n, uint64_t wid)
{
    worker_t *w = NULL;
    pthread_mutex_lock(&n->lock);
    for (wk_sender *s = n->senders; s && !w; s = s->next)
        if (s->wid == wid)
            w = worker_ref(s->w);
    pthread_mutex_unlock(&n->lock);
    return w;
}

static void announce_ended(worker_node_t *n, uint64_t wid)
{
    char subject[WK_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s.hb.%s", n->prefix, n->name);
    wk_msg m = { .type = WK_MSG_ENDED,
        .id = wk_msgid_new(n->salt, NULL, NULL),
        .node = { n->name, strlen(n->name) },
        .wid = wid };
    wk_conn_publish(n, subject, NULL, &m);
}

/* `w` ended: forget it (a restarted worker registers again, new wid). */
void wk_senders_down(worker_node_t *n, worker_t *w)
{
    pthread_mutex_lock(&n->lock);
    wk_sender **pp = &n->senders;
    while (*pp && (*pp)->w != w)
        pp = &(*pp)->next;
    wk_sender *s = *pp;
    if (s) {
        *pp = s->next;
        atomic_fetch_add(&n->senders_changed, 1); /* before the unref below */
    }
    pthread_mutex_unlock(&n->lock);
    if (!s)
        return;
    announce_ended(n, s->wid);
    worker_unref(s->w);
    free(s);
}

void wk_senders_close(worker_node_t *n)
{
    wk_sender *s = n->senders;
    n->senders = NULL;
    while (s) {
        wk_sender *next = s->next;
        worker_unref(s->w);
        free(s);
        s = next;
    }
}
