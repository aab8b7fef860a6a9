/* What a proxy does: it is a forwarding worker (worker_opts.forward), so
 * each user event fired at it comes to wk_forward on the firing thread,
 * before the fire returns; it is published there to the remote worker's
 * subject, as a FIRE, or as a CALL when the event is a request (answered
 * later by calls.c). No hand-off to another thread: one sender's events
 * are published in its order, and nats.c keeps the order of publishes.
 *
 * Concurrency: runs on any thread that fires at a proxy, several at once;
 * reads the proxy's immutable fields, takes node->lock only inside the
 * sender and call registries; nats.c's publish is thread-safe. The proxy
 * (and the node) outlive every running wk_forward: the node frees a proxy
 * only after joining its worker, whose end waits for running forwards. */
#include <string.h>

#include "wk_nats.h"

/* Events the library makes (notices, commands): they do not cross. */
bool wk_library_event(const char *name)
{
    static const char *const names[] = { WORKER_EV_STOP_THREAD, WORKER_EV_PAUSE_THREAD,
        WORKER_EV_RESUME_THREAD, WORKER_EV_CHILD_THREAD_START, WORKER_EV_CHILD_THREAD_STOP,
        WORKER_EV_CHILD_THREAD_ERROR, WORKER_EV_CHILD_THREAD_DONE, WORKER_EV_CHILD_THREAD_END,
        WORKER_EV_WAIT_THREAD_PENDING, WORKER_EV_WAIT_THREAD_PENDING_DONE, WORKER_EV_EVENT_REJECT,
        WORKER_EV_EXECUTE, WORKER_EV_LISTENER_ERROR, WORKER_EV_DEFER_FULFILL, WORKER_EV_WORKER_DOWN,
        WORKER_EV_LINKED_EXIT };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The calling thread's last answer of wk_identify_sender: a proxy's fire
 * comes from the same worker, to the same node, message after message, so
 * the registries' lock is taken once per sender, not once per message.
 * Per thread, so it needs no lock; it stays valid while the node has
 * forgotten no sender since (a forgotten sender may be freed and its
 * address reused) and is keyed by the node's serial, not its address. */
static _Thread_local struct {
    uint64_t node_serial, senders_changed;
    const worker_t *sender;
    const char *node; /* lives as long as the node */
    uint64_t wid;
} last_sender;

static bool cached_identity(worker_node_t *n, const worker_t *s, wk_msg *m)
{
    if (last_sender.sender != s || last_sender.node_serial != n->serial
        || last_sender.senders_changed != atomic_load(&n->senders_changed))
        return false;
    m->node = (wk_str) { last_sender.node, strlen(last_sender.node) };
    m->wid = last_sender.wid;
    return true;
}

/* The sender's identity on the wire: a proxy of a remote sender stands
 * for that sender (answers go straight to it); any other worker is
 * registered as a local sender of this node. */
int wk_identify_sender(worker_node_t *n, const worker_event_t *e, wk_msg *m)
{
    worker_t *s = worker_event_target(e);
    m->node = (wk_str) { n->name, strlen(n->name) };
    if (!s)
        return WORKER_OK;
    const char *display = worker_name(s);
    m->sender = (wk_str) { display, display ? strlen(display) : 0 };
    if (m->sender.len > WK_WIRE_NAME_MAX)
        m->sender.len = WK_WIRE_NAME_MAX;
    if (cached_identity(n, s, m))
        return WORKER_OK;
    uint64_t changed = atomic_load(&n->senders_changed);
    pthread_mutex_lock(&n->lock);
    wk_proxy *p = wk_proxy_of(n, s);
    if (p && !p->name) {
        m->node = (wk_str) { p->peer_node, strlen(p->peer_node) };
        m->wid = p->peer_wid;
    }
    pthread_mutex_unlock(&n->lock);
    if (!m->wid)
        m->wid = wk_sender_wid(n, s);
    if (!m->wid)
        return WORKER_ENOMEM;
    last_sender.node_serial = n->serial;
    last_sender.senders_changed = changed;
    last_sender.sender = s;
    last_sender.node = m->node.p;
    last_sender.wid = m->wid;
    return WORKER_OK;
}

/* A copy of the data crosses; a pointer without a copy does not. */
static bool has_copy(const worker_event_t *e)
{
    return worker_event_size(e) > 0 || worker_event_data(e) == NULL;
}

static void forward(wk_proxy *p, const worker_event_t *e)
{
    worker_node_t *n = p->node;
    const char *name = worker_event_name(e);
    bool request = worker_event_is_request(e);
    if (!has_copy(e)) {
        atomic_fetch_add(&n->dropped, 1);
        wk_log_node(n, WORKER_LOG_WARN,
            "event %s at proxy %s has no copied data (.copy): "
            "a pointer does not cross processes; dropped",
            name, p->subject);
        if (request)
            worker_reply_error(e, WORKER_EINVAL);
        return;
    }
    wk_msg m = { .type = request ? WK_MSG_CALL : WK_MSG_FIRE,
        .id = request ? wk_msgid_new(n->salt, name, p->subject) : wk_msgid_traced(name, p->subject),
        .name = { name, strlen(name) },
        .number = -1.0,
        .data = worker_event_data(e),
        .size = worker_event_size(e) };
    if (m.name.len > WK_WIRE_NAME_MAX || wk_identify_sender(n, e, &m) != WORKER_OK) {
        if (request)
            worker_reply_error(e, m.name.len > WK_WIRE_NAME_MAX ? WORKER_EINVAL : WORKER_ENOMEM);
        return;
    }
    if (request) {
        if (n->batch_fires)
            wk_batch_flush(p); /* the sender's earlier FIREs go first */
        wk_call_forward(p, e, &m);
    } else if (n->batch_fires) {
        wk_batch_fire(p, &m);
    } else {
        wk_conn_publish(n, p->subject, NULL, &m);
    }
}

void wk_forward(const worker_event_t *e, void *arg)
{
    forward(arg, e);
}
