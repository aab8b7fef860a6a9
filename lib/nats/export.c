/* worker_node_export / export_group / unexport: exported names, one NATS
 * subscription per member (a queue group for a group name).
 *
 * Concurrency: the list is guarded by node->lock; a subscription is made
 * and dropped outside the lock (nats.c may block). An export's worker is
 * monitored by the core worker, whose WORKER_DOWN unexports it. */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

static wk_export *find_name(worker_node_t *n, const char *name)
{
    for (wk_export *x = n->exports; x; x = x->next)
        if (!x->gone && strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

static void monitor_on_core(void *arg)
{
    worker_t *w = arg;
    worker_monitor(w);
    worker_unref(w);
}

static int subscribe(worker_node_t *n, wk_export *x)
{
    char subject[WK_SUBJECT_MAX], queue[WK_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s.w.%s", n->prefix, x->name);
    snprintf(queue, sizeof queue, "g.%s", x->name);
    void *closure = wk_inbound_closure(n, WK_SUB_EXPORT, x->id, x);
    x->sub = closure ? wk_conn_sub(n, subject, x->group ? queue : NULL, wk_inbound_msg, closure)
                     : NULL;
    return x->sub ? WORKER_OK : WORKER_EAGAIN;
}

/* Add the entry (refusing a name taken by the other kind, or twice by a
 * plain export), then subscribe. */
static int add(worker_node_t *n, worker_t *w, const char *name, bool group)
{
    if (!n || !w || !wk_name_ok(name))
        return WORKER_EINVAL;
    if (!worker_is_running(w))
        return WORKER_EREJECTED;
    wk_export *x = calloc(1, sizeof *x);
    if (!x || !(x->name = wk_strdup(name))) {
        free(x);
        return WORKER_ENOMEM;
    }
    x->w = worker_ref(w);
    x->group = group;
    pthread_mutex_lock(&n->lock);
    wk_export *same = find_name(n, name);
    if (same && (!group || !same->group || same->w == w)) {
        pthread_mutex_unlock(&n->lock);
        worker_unref(x->w);
        free(x->name);
        free(x);
        return WORKER_EINVAL;
    }
    x->id = n->next_id++;
    x->next = n->exports;
    n->exports = x;
    pthread_mutex_unlock(&n->lock);
    if (subscribe(n, x) != WORKER_OK) {
        pthread_mutex_lock(&n->lock);
        x->gone = true;
        pthread_mutex_unlock(&n->lock);
        return WORKER_EAGAIN;
    }
    if (worker_later(n->core, monitor_on_core, worker_ref(w), 0, NULL) != WORKER_OK)
        worker_unref(w); /* the node is closing */
    wk_peers_announce(n);
    return WORKER_OK;
}

int worker_node_export(worker_node_t *n, worker_t *w, const char *name)
{
    return add(n, w, name, false);
}

int worker_node_export_group(worker_node_t *n, worker_t *w, const char *name)
{
    return add(n, w, name, true);
}

/* Mark every member matching (name or w) gone; their subscriptions are
 * collected into `subs` (at most `room`) to drop outside the lock. */
static size_t mark_gone(
    worker_node_t *n, const char *name, worker_t *w, natsSubscription **subs, size_t room)
{
    size_t count = 0;
    for (wk_export *x = n->exports; x; x = x->next) {
        if (x->gone || (name && strcmp(x->name, name) != 0) || (w && x->w != w))
            continue;
        x->gone = true;
        if (count < room)
            subs[count++] = x->sub;
        x->sub = NULL;
    }
    return count;
}

static size_t remove_matching(worker_node_t *n, const char *name, worker_t *w)
{
    natsSubscription *subs[256];
    pthread_mutex_lock(&n->lock);
    size_t count = mark_gone(n, name, w, subs, 256);
    pthread_mutex_unlock(&n->lock);
    for (size_t i = 0; i < count; i++)
        wk_conn_unsub(n, subs[i]);
    if (count)
        wk_peers_announce(n);
    return count;
}

int worker_node_unexport(worker_node_t *n, const char *name)
{
    if (!n || !wk_name_ok(name))
        return WORKER_EINVAL;
    return remove_matching(n, name, NULL) ? WORKER_OK : WORKER_EINVAL;
}

void wk_exports_down(worker_node_t *n, worker_t *w)
{
    remove_matching(n, NULL, w);
}

bool wk_exported_locally(worker_node_t *n, const char *name)
{
    return find_name(n, name) != NULL;
}

/* The export list of a heartbeat (lock held); a name listed once. */
size_t wk_exports_encode(worker_node_t *n, unsigned char *out, size_t room)
{
    size_t used = 0;
    for (wk_export *x = n->exports; x; x = x->next) {
        if (x->gone || find_name(n, x->name) != x)
            continue;
        if (used + 2 + strlen(x->name) > room)
            break;
        used += wk_wire_export_put(out + used, x->group, x->name);
    }
    return used;
}

void wk_exports_close(worker_node_t *n)
{
    wk_export *x = n->exports;
    n->exports = NULL;
    while (x) {
        wk_export *next = x->next;
        wk_conn_unsub(n, x->sub);
        worker_unref(x->w);
        free(x->name);
        free(x);
        x = next;
    }
}
