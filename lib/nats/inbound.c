/* Inbound messages: nats.c's threads decode each message and act on it
 * right there. A FIRE (or a batch of them) is fired at its worker by the
 * ordinary fire path (a copy), so listeners run on that worker's thread; a
 * CALL is made with worker_call_then, whose answer is published from the
 * thread that answers (calls.c); a REPLY answers the waiting caller.
 * Heartbeats and end notices, which start and stop proxies, are copied
 * into an event for the node's core worker, whose listener handles them on
 * one thread (proxy.c's rule).
 *
 * Concurrency: wk_inbound_msg runs on nats.c's threads, one at a time per
 * subscription, so each subscription's messages are handled in the order
 * they came: per sender/receiver pair order holds for fires and calls
 * alike. The lists are read under node->lock; an export's entry and a
 * proxy are read without it (both live until worker_node_close frees
 * them, after the last callback that saw `closing` clear: it waits for
 * in_callback to fall to 0 first, wk_conn_quiesce). A
 * closure's kind, key and export are immutable; its last_sender cache is
 * touched only by its subscription's callbacks. */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

#define EV_INBOUND "wk.nats.in"

void *wk_inbound_closure(worker_node_t *n, enum wk_sub_kind kind, uint64_t key, wk_export *x)
{
    wk_closure *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->node = n;
    c->kind = kind;
    c->key = key;
    c->export = x;
    pthread_mutex_lock(&n->lock);
    c->next = n->closures;
    n->closures = c;
    pthread_mutex_unlock(&n->lock);
    return c;
}

void wk_msg_bad(worker_node_t *n, const char *subject, size_t len)
{
    uint64_t bad = atomic_fetch_add(&n->bad, 1) + 1;
    if (bad > 100 && bad % 1000 != 0)
        return; /* a flood is logged in samples, always counted */
    wk_log_node(n, WORKER_LOG_WARN,
        "dropped a message of %zu bytes on %s that does not parse "
        "(%llu so far)",
        len, subject, (unsigned long long)bad);
}

/* The proxy of a remote sender: the subscription's last one when it is
 * the same sender and runs (no lock), else found or made under the lock.
 * Proxies live until the node closes, so no reference is taken. */
static worker_t *remote_sender(wk_closure *c, const wk_msg *m)
{
    wk_proxy *p = c->last_sender;
    if (p && p->peer_wid == m->wid && wk_str_eq(m->node, p->peer_node) && worker_is_running(p->w))
        return p->w;
    p = wk_proxy_sender(c->node, m->node, m->wid, m->sender);
    c->last_sender = p;
    return p ? p->w : NULL;
}

/* The sender seen by the receiver's listeners: a local worker for this
 * node's own senders (*ref set: a reference to drop), else the proxy of
 * the remote sender. */
static worker_t *sender_of(wk_closure *c, const wk_msg *m, worker_t **ref)
{
    *ref = NULL;
    if (m->wid == 0)
        return NULL;
    if (wk_str_eq(m->node, c->node->name))
        return *ref = wk_sender_find(c->node, m->wid);
    return remote_sender(c, m);
}

static void deliver(wk_closure *c, worker_t *target, const char *reply, const wk_msg *m)
{
    worker_node_t *n = c->node;
    char name[WK_WIRE_NAME_MAX + 1];
    if (m->name.len == 0)
        return;
    memcpy(name, m->name.p, m->name.len);
    name[m->name.len] = '\0';
    worker_t *ref, *sender = sender_of(c, m, &ref);
    wk_msgid_seen(m, target);
    if (m->type == WK_MSG_CALL) {
        wk_call_serve(n, target, reply, m, sender);
    } else {
        worker_fire_opts fo = { .copy = m->size ? m->data : "",
            .copy_size = m->size,
            .target = sender ? sender : n->core };
        if (worker_fire_ex(target, name, NULL, &fo) != WORKER_OK)
            atomic_fetch_add(&n->dropped, 1);
    }
    worker_unref(ref);
}

/* The last token of a subject as a number (a wid or a call id). */
static uint64_t last_token(const char *subject)
{
    const char *dot = strrchr(subject, '.');
    return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

/* The worker a FIRE or CALL of the subscription is for (*ref set: a
 * reference to drop): an export's worker until it is unexported (the
 * entry keeps its reference until close), or a local sender by wid. */
static worker_t *target_of(wk_closure *c, const char *subject, worker_t **ref)
{
    *ref = NULL;
    if (c->kind == WK_SUB_EXPORT)
        return atomic_load(&c->export->gone) ? NULL : c->export->w;
    return *ref = wk_sender_find(c->node, last_token(subject));
}

/* Each FIRE of a FIRES message, in order, to one target. */
static void deliver_all(wk_closure *c, worker_t *target, const wk_msg *fires)
{
    wk_msg entry = { 0 };
    size_t pos = 0;
    while (wk_wire_entry_next(fires, &pos, &entry))
        deliver(c, target, NULL, &entry);
}

/* How many events a message holds (for the count of drops). */
static uint64_t events_in(const wk_msg *m)
{
    if (m->type != WK_MSG_FIRES)
        return 1;
    wk_msg entry = { 0 };
    size_t pos = 0;
    uint64_t count = 0;
    while (wk_wire_entry_next(m, &pos, &entry))
        count++;
    return count;
}

static void handle(wk_closure *c, const char *subject, const char *reply, const wk_msg *m)
{
    worker_node_t *n = c->node;
    worker_t *ref, *target;
    switch (c->kind) {
    case WK_SUB_EXPORT:
    case WK_SUB_DIRECT:
        if (m->type != WK_MSG_FIRE && m->type != WK_MSG_CALL && m->type != WK_MSG_FIRES)
            break;
        if (!(target = target_of(c, subject, &ref)))
            atomic_fetch_add(&n->dropped, events_in(m));
        else if (m->type == WK_MSG_FIRES)
            deliver_all(c, target, m);
        else
            deliver(c, target, reply, m);
        worker_unref(ref);
        return;
    case WK_SUB_REPLY:
        if (m->type == WK_MSG_REPLY)
            wk_call_answer(n, last_token(subject), m);
        return;
    case WK_SUB_HEARTBEAT:
        break;
    }
}

/* nats.c's thread, for every message of every subscription. */
void wk_inbound_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    wk_closure *c = closure;
    worker_node_t *n = c->node;
    const char *subject = natsMsg_GetSubject(msg);
    atomic_fetch_add(&n->in_callback, 1); /* before reading `closing`: wk_conn_quiesce */
    atomic_fetch_add(&n->received, 1);
    wk_msg m;
    const void *data = natsMsg_GetData(msg);
    size_t dl = (size_t)natsMsg_GetDataLength(msg);
    if (atomic_load(&n->closing)) {
        /* nothing is delivered any more */
    } else if (!data || !wk_wire_decode(data, dl, &m)) {
        wk_msg_bad(n, subject, dl);
    } else if (c->kind != WK_SUB_HEARTBEAT) {
        handle(c, subject, natsMsg_GetReply(msg), &m);
    } else {
        worker_fire_opts fo = { .copy = data, .copy_size = dl };
        if (worker_fire_ex(n->core, EV_INBOUND, NULL, &fo) != WORKER_OK)
            atomic_fetch_add(&n->dropped, 1);
    }
    natsMsg_Destroy(msg);
    atomic_fetch_sub(&n->in_callback, 1);
}

/* The core's side: a heartbeat or an end notice (it parsed on nats.c's
 * thread already). */
static int on_inbound(const worker_event_t *e, void *userdata)
{
    worker_node_t *n = userdata;
    wk_msg m;
    if (atomic_load(&n->closing)
        || !wk_wire_decode(worker_event_data(e), worker_event_size(e), &m))
        return 0;
    if (m.type == WK_MSG_HEARTBEAT && !wk_str_eq(m.node, n->name))
        wk_peers_heard(n, &m);
    else if (m.type == WK_MSG_ENDED && !wk_str_eq(m.node, n->name))
        wk_proxy_peer_ended(n, m.node, m.wid);
    return 0;
}

static int on_down(const worker_event_t *e, void *userdata)
{
    worker_node_t *n = userdata;
    worker_t *w = worker_event_target(e);
    if (w && !atomic_load(&n->closing)) {
        wk_exports_down(n, w);
        wk_senders_down(n, w);
    }
    return 0;
}

int wk_inbound_start(worker_node_t *n)
{
    char name[300];
    snprintf(name, sizeof name, "nats:%s", n->name);
    worker_opts o = { .name = name,
        .no_parent = true,
        .daemon = WORKER_DAEMON_YES,
        .quiet = true,
        .trap_links = true };
    n->core = worker_new(NULL, NULL, &o);
    if (!n->core)
        return WORKER_ENOMEM;
    worker_listen_opts lo = { .name = "nats inbound" };
    if (!worker_listen(n->core, EV_INBOUND, on_inbound, n, &lo)
        || !worker_listen(n->core, WORKER_EV_WORKER_DOWN, on_down, n, NULL))
        return WORKER_ENOMEM;
    int rc = worker_start(n->core);
    if (rc == WORKER_OK)
        rc = worker_every(n->core, wk_peers_tick, n, n->heartbeat, &n->tick);
    return rc;
}
