/* Proxies: worker_t handles that stand for remote workers. A proxy is a
 * forwarding worker (worker_opts.forward): every user event fired at it
 * is published on the firing thread (forward.c). It runs
 * exactly while what it stands for is known to be there: a proxy of a name
 * while some live node exports the name, a proxy of a sender while the
 * sender's node is up and the sender has not ended. So a fire at a proxy
 * of a name nobody exports is refused by the core (WORKER_EREJECTED), and
 * its monitors and links see its end as the remote worker's end.
 *
 * Concurrency: the list is guarded by node->lock. Starting and stopping
 * happen on the core worker's thread only (wk_proxies_sync and the
 * handlers it calls), so two syncs never race; lookup may run anywhere and
 * only adds a proxy, then asks the core to sync. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

static wk_proxy *proxy_new(
    worker_node_t *n, const char *name, const char *peer, uint64_t wid, const char *display)
{
    wk_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->node = n;
    p->peer_wid = wid;
    p->name = name ? wk_strdup(name) : NULL;
    p->peer_node = peer ? wk_strdup(peer) : NULL;
    if (name)
        snprintf(p->subject, sizeof p->subject, "%s.w.%s", n->prefix, name);
    else
        snprintf(p->subject, sizeof p->subject, "%s.d.%s.%llu", n->prefix, peer,
            (unsigned long long)wid);
    char wname[600];
    snprintf(wname, sizeof wname, "%s@%s", display, name ? "nats" : peer);
    worker_opts o = { .name = wname,
        .no_parent = true,
        .daemon = WORKER_DAEMON_YES,
        .quiet = true,
        .copy_only = true,
        .pooled = true, /* no thread of its own: it only forwards */
        .forward = wk_forward,
        .forward_arg = p };
    p->w = (name || p->peer_node) ? worker_new(NULL, NULL, &o) : NULL;
    if (!p->w) {
        free(p->name);
        free(p->peer_node);
        free(p);
        return NULL;
    }
    wk_batch_init(&p->batch);
    return p;
}

static wk_proxy *find_named(worker_node_t *n, const char *name)
{
    for (wk_proxy *p = n->proxies; p; p = p->next)
        if (p->name && strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void sync_on_core(void *arg)
{
    wk_proxies_sync(arg);
}

worker_t *worker_node_lookup(worker_node_t *n, const char *name)
{
    if (!n || !wk_name_ok(name) || atomic_load(&n->closing))
        return NULL;
    pthread_mutex_lock(&n->lock);
    wk_proxy *p = find_named(n, name);
    if (!p && (p = proxy_new(n, name, NULL, 0, name))) {
        p->next = n->proxies;
        n->proxies = p;
    }
    worker_t *w = p ? worker_ref(p->w) : NULL;
    bool start = p && wk_name_known(n, name) && !worker_is_running(p->w);
    if (start)
        worker_start(p->w);
    pthread_mutex_unlock(&n->lock);
    if (w && !start)
        worker_later(n->core, sync_on_core, n, 0, NULL);
    return w;
}

wk_proxy *wk_proxy_sender(worker_node_t *n, wk_str node, uint64_t wid, wk_str name)
{
    char peer[WK_WIRE_NAME_MAX + 1], display[WK_WIRE_NAME_MAX + 1];
    memcpy(peer, node.p, node.len);
    peer[node.len] = '\0';
    memcpy(display, name.p, name.len);
    display[name.len] = '\0';
    pthread_mutex_lock(&n->lock);
    wk_proxy *p = n->proxies;
    while (p && (p->name || p->peer_wid != wid || strcmp(p->peer_node, peer) != 0))
        p = p->next;
    if (!p && wk_name_ok(peer) && !atomic_load(&n->closing)
        && (p = proxy_new(n, NULL, peer, wid, name.len ? display : "?"))) {
        p->next = n->proxies;
        n->proxies = p;
    }
    if (p && !p->ended) {
        wk_remote_seen(n, peer);
        if (!worker_is_running(p->w))
            worker_start(p->w);
    }
    pthread_mutex_unlock(&n->lock);
    return p;
}

/* Should `p` run now? (lock held) */
static bool wanted(worker_node_t *n, const wk_proxy *p)
{
    if (p->name)
        return wk_name_known(n, p->name);
    return !p->ended && wk_node_up(n, p->peer_node);
}

void wk_proxies_sync(worker_node_t *n)
{
    if (atomic_load(&n->closing))
        return;
    pthread_mutex_lock(&n->lock);
    for (wk_proxy *p = n->proxies; p; p = p->next) {
        bool want = wanted(n, p), running = worker_is_running(p->w);
        if (want && !running)
            worker_start(p->w);
        else if (!want && running)
            worker_stop(p->w);
    }
    pthread_mutex_unlock(&n->lock);
}

void wk_proxy_peer_ended(worker_node_t *n, wk_str node, uint64_t wid)
{
    pthread_mutex_lock(&n->lock);
    for (wk_proxy *p = n->proxies; p; p = p->next) {
        if (!p->name && p->peer_wid == wid && wk_str_eq(node, p->peer_node)) {
            p->ended = true;
            worker_stop(p->w);
        }
    }
    pthread_mutex_unlock(&n->lock);
}

wk_proxy *wk_proxy_of(worker_node_t *n, const worker_t *w)
{
    for (wk_proxy *p = n->proxies; p; p = p->next)
        if (p->w == w)
            return p;
    return NULL;
}

void wk_proxies_close(worker_node_t *n)
{
    pthread_mutex_lock(&n->lock);
    wk_proxy *list = n->proxies;
    n->proxies = NULL;
    pthread_mutex_unlock(&n->lock);
    for (wk_proxy *p = list; p; p = p->next)
        worker_stop(p->w);
    while (list) {
        wk_proxy *next = list->next;
        worker_join(list->w); /* no forward runs any more */
        wk_batch_flush(list); /* the connection is still open */
        wk_batch_destroy(&list->batch);
        worker_unref(list->w);
        free(list->name);
        free(list->peer_node);
        free(list);
        list = next;
    }
}
