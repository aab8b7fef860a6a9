/* Heartbeats: each node publishes its name, period and export list on
 * <prefix>.hb.<node> every period (and at once when its exports change);
 * a node not heard for 3 of its periods is down.
 *
 * Concurrency: the remote list is guarded by node->lock. The tick and the
 * handling of heard heartbeats run on the core worker's thread, which is
 * also the only one that syncs proxies; announce may be called anywhere
 * (it asks the core worker to publish). */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

#define HEARTBEAT_ROOM 60000
#define MISSED 3

static void publish_heartbeat(worker_node_t *n)
{
    unsigned char *list = malloc(HEARTBEAT_ROOM);
    if (!list)
        return;
    pthread_mutex_lock(&n->lock);
    size_t size = wk_exports_encode(n, list, HEARTBEAT_ROOM);
    pthread_mutex_unlock(&n->lock);
    char subject[WK_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s.hb.%s", n->prefix, n->name);
    wk_msg m = { .type = WK_MSG_HEARTBEAT,
        .id = wk_msgid_new(n->salt, NULL, NULL),
        .node = { n->name, strlen(n->name) },
        .number = n->heartbeat,
        .data = list,
        .size = size };
    wk_conn_publish(n, subject, NULL, &m);
    free(list);
}

/* Mark the nodes not heard for MISSED periods down (lock held). */
static bool expire(worker_node_t *n, uint64_t now)
{
    bool changed = false;
    for (wk_remote *r = n->remotes; r; r = r->next) {
        if (!r->up || now - r->last_ns <= (uint64_t)(MISSED * r->period * 1e9))
            continue;
        r->up = false;
        free(r->exports);
        r->exports = NULL;
        r->exports_size = 0;
        changed = true;
        wk_log_node(
            n, WORKER_LOG_INFO, "node %s is down (silent for %d heartbeats)", r->node, MISSED);
    }
    return changed;
}

static void announce_now(void *arg)
{
    worker_node_t *n = arg;
    if (atomic_load(&n->closing))
        return;
    publish_heartbeat(n);
    wk_proxies_sync(n);
}

void wk_peers_tick(void *arg)
{
    worker_node_t *n = arg;
    if (atomic_load(&n->closing))
        return;
    publish_heartbeat(n);
    pthread_mutex_lock(&n->lock);
    expire(n, wk_now_ns());
    pthread_mutex_unlock(&n->lock);
    wk_proxies_sync(n);
    wk_calls_sweep(n);
    wk_conn_reap(n, false); /* unexported names' subscriptions */
}

void wk_peers_announce(worker_node_t *n)
{
    if (n->core && !atomic_load(&n->closing))
        worker_later(n->core, announce_now, n, 0, NULL);
}

static wk_remote *find(worker_node_t *n, const char *p, size_t len)
{
    for (wk_remote *r = n->remotes; r; r = r->next)
        if (strlen(r->node) == len && memcmp(r->node, p, len) == 0)
            return r;
    return NULL;
}

static wk_remote *find_or_add(worker_node_t *n, const char *p, size_t len)
{
    wk_remote *r = find(n, p, len);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->node = wk_strndup(p, len))) {
        free(r);
        return NULL;
    }
    r->period = n->heartbeat;
    r->next = n->remotes;
    n->remotes = r;
    return r;
}

void wk_remote_seen(worker_node_t *n, const char *node)
{
    wk_remote *r = find_or_add(n, node, strlen(node));
    if (r && !r->up) {
        r->up = true;
        r->last_ns = wk_now_ns();
    }
}

/* A valid export list (every entry parses)? */
static bool list_ok(const wk_msg *m)
{
    size_t pos = 0;
    wk_str name;
    bool group, bad;
    while (wk_wire_export_next(m, &pos, &name, &group, &bad))
        ;
    return !bad;
}

static bool update(wk_remote *r, const wk_msg *m)
{
    bool changed = !r->up || r->exports_size != m->size
        || (m->size && memcmp(r->exports, m->data, m->size) != 0);
    if (changed) {
        unsigned char *copy = m->size ? malloc(m->size) : NULL;
        if (m->size && !copy)
            return false;
        if (m->size)
            memcpy(copy, m->data, m->size);
        free(r->exports);
        r->exports = copy;
        r->exports_size = m->size;
    }
    r->up = true;
    r->last_ns = wk_now_ns();
    if (m->number >= 0.001 && m->number <= 3600)
        r->period = m->number;
    return changed;
}

void wk_peers_heard(worker_node_t *n, const wk_msg *m)
{
    if (!list_ok(m)) {
        wk_msg_bad(n, "a heartbeat", m->size);
        return;
    }
    pthread_mutex_lock(&n->lock);
    wk_remote *r = find_or_add(n, m->node.p, m->node.len);
    bool changed = r && update(r, m);
    pthread_mutex_unlock(&n->lock);
    if (changed)
        wk_proxies_sync(n);
}

static bool lists(const wk_remote *r, const char *name)
{
    wk_msg m = { .data = r->exports, .size = r->exports_size };
    size_t pos = 0;
    wk_str s;
    bool group, bad;
    while (wk_wire_export_next(&m, &pos, &s, &group, &bad))
        if (wk_str_eq(s, name))
            return true;
    return false;
}

bool wk_name_known(worker_node_t *n, const char *name)
{
    if (wk_exported_locally(n, name))
        return true;
    for (wk_remote *r = n->remotes; r; r = r->next)
        if (r->up && lists(r, name))
            return true;
    return false;
}

bool wk_node_up(worker_node_t *n, const char *node)
{
    if (strcmp(node, n->name) == 0)
        return true;
    wk_remote *r = find(n, node, strlen(node));
    return r && r->up;
}

void wk_peers_close(worker_node_t *n)
{
    wk_remote *r = n->remotes;
    n->remotes = NULL;
    while (r) {
        wk_remote *next = r->next;
        free(r->exports);
        free(r->node);
        free(r);
        r = next;
    }
    wk_closure *c = n->closures;
    n->closures = NULL;
    while (c) {
        wk_closure *next = c->next;
        free(c);
        c = next;
    }
}
