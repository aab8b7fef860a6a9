/* worker_node_bridge: a channel and a NATS subject. A bridge worker is
 * subscribed to the channel and publishes every local publish that carries
 * a copy; the subject's messages from other nodes are published into the
 * channel with the bridge worker as sender, which the bridge worker skips,
 * so nothing goes round twice. A node drops its own publishes coming back
 * from the server (the origin node is on the wire).
 *
 * Concurrency: the list is guarded by node->lock; the subscription
 * callback runs on nats.c's thread and only reads its bridge (immutable
 * once subscribed) and publishes into the channel (thread-safe). */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

static bool subject_ok(const char *s)
{
    if (!s || !*s || strlen(s) >= WK_SUBJECT_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '*' || *p == '>' || (unsigned char)*p <= ' ')
            return false;
    return s[0] != '.' && s[strlen(s) - 1] != '.' && !strstr(s, "..");
}

static void publish_local(wk_bridge *b, const worker_event_t *e)
{
    worker_node_t *n = b->node;
    const char *name = worker_event_name(e);
    if (worker_event_size(e) == 0 && worker_event_data(e) != NULL)
        return; /* a pointer does not cross */
    wk_msg m = { .type = WK_MSG_PUB,
        .id = wk_msgid_new(n->salt, name, b->subject),
        .node = { n->name, strlen(n->name) },
        .name = { name, strlen(name) },
        .data = worker_event_data(e),
        .size = worker_event_size(e) };
    if (m.name.len <= WK_WIRE_NAME_MAX)
        wk_conn_publish(n, b->subject, NULL, &m);
}

static bool bridge_cond(const worker_event_t *e, void *userdata)
{
    wk_bridge *b = userdata;
    const char *name = worker_event_name(e);
    if (name && worker_event_target(e) != b->w && !wk_library_event(name))
        publish_local(b, e);
    return false;
}

static int bridge_task(void *arg, void **result)
{
    (void)result;
    int rc;
    while ((rc = worker_wait_until(bridge_cond, arg, -1, NULL)) == WORKER_OK)
        ;
    return rc == WORKER_EXIT ? WORKER_EXIT : rc;
}

static void on_subject(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    wk_bridge *b = closure;
    worker_node_t *n = b->node;
    wk_msg m;
    char name[WK_WIRE_NAME_MAX + 1];
    atomic_fetch_add(&n->in_callback, 1);
    atomic_fetch_add(&n->received, 1);
    if (!wk_wire_decode(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &m)
        || m.type != WK_MSG_PUB || m.name.len == 0) {
        wk_msg_bad(n, b->subject, (size_t)natsMsg_GetDataLength(msg));
    } else if (!wk_str_eq(m.node, n->name) && !atomic_load(&n->closing)) {
        wk_msgid_seen(&m, NULL);
        memcpy(name, m.name.p, m.name.len);
        name[m.name.len] = '\0';
        worker_fire_opts fo = { .copy = m.size ? m.data : "", .copy_size = m.size, .target = b->w };
        worker_channel_pub_ex(b->ch, name, NULL, &fo);
    }
    natsMsg_Destroy(msg);
    atomic_fetch_sub(&n->in_callback, 1);
}

static wk_bridge *bridge_new(worker_node_t *n, worker_channel_t *ch, const char *subject)
{
    wk_bridge *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->node = n;
    b->ch = ch;
    strcpy(b->subject, subject);
    char name[WK_SUBJECT_MAX + 16];
    snprintf(name, sizeof name, "bridge:%s", subject);
    worker_opts o = { .name = name, .no_parent = true, .daemon = WORKER_DAEMON_YES, .quiet = true };
    b->w = worker_new(bridge_task, b, &o);
    if (!b->w || worker_start(b->w) != WORKER_OK || worker_channel_sub(ch, b->w) != WORKER_OK) {
        if (b->w) {
            worker_stop(b->w);
            worker_join(b->w);
        }
        worker_unref(b->w);
        free(b);
        return NULL;
    }
    return b;
}

int worker_node_bridge(worker_node_t *n, worker_channel_t *ch, const char *subject)
{
    if (!n || !ch || !subject_ok(subject))
        return WORKER_EINVAL;
    pthread_mutex_lock(&n->lock);
    for (wk_bridge *b = n->bridges; b; b = b->next) {
        if (b->ch == ch) {
            pthread_mutex_unlock(&n->lock);
            return WORKER_EINVAL;
        }
    }
    pthread_mutex_unlock(&n->lock);
    wk_bridge *b = bridge_new(n, ch, subject);
    if (!b)
        return WORKER_ENOMEM;
    b->sub = wk_conn_sub(n, subject, NULL, on_subject, b);
    pthread_mutex_lock(&n->lock);
    b->next = n->bridges;
    n->bridges = b;
    pthread_mutex_unlock(&n->lock);
    return b->sub ? WORKER_OK : WORKER_EAGAIN;
}

/* Stop forwarding: unsubscribe, end the bridge workers. The entries stay
 * until wk_bridges_free (a callback may still hold one until the
 * connection is closed). */
void wk_bridges_close(worker_node_t *n)
{
    pthread_mutex_lock(&n->lock);
    wk_bridge *list = n->bridges;
    pthread_mutex_unlock(&n->lock);
    for (wk_bridge *b = list; b; b = b->next) {
        wk_conn_unsub(b->node, b->sub);
        b->sub = NULL;
        worker_channel_unsub(b->ch, b->w);
        worker_stop(b->w);
        worker_join(b->w);
    }
}

void wk_bridges_free(worker_node_t *n)
{
    wk_bridge *b = n->bridges;
    n->bridges = NULL;
    while (b) {
        wk_bridge *next = b->next;
        worker_unref(b->w);
        free(b);
        b = next;
    }
}
