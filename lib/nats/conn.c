/* The node's NATS connection: options (servers, credentials, TLS,
 * reconnect), the asynchronous callbacks, subscribe and publish.
 *
 * Concurrency: nats.c calls the error, disconnect and reconnect callbacks
 * on its own threads; they only log and bump atomic counters. Publish is
 * thread-safe in nats.c and called from proxies, the core and the caller. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wk_nats.h"

#define WK_PUBLISH_STACK 1024

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    worker_node_t *n = closure;
    atomic_fetch_add(&n->async_errors, 1);
    int64_t dropped = 0;
    if (sub)
        natsSubscription_GetDropped(sub, &dropped);
    if (err == NATS_SLOW_CONSUMER)
        atomic_fetch_add(&n->dropped, 1);
    wk_log_node(n, WORKER_LOG_WARN, "NATS asynchronous error: %s%s (%lld dropped so far)",
        natsStatus_GetText(err), err == NATS_SLOW_CONSUMER ? " (slow consumer)" : "",
        (long long)dropped);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    worker_node_t *n = closure;
    if (!atomic_load(&n->closing))
        wk_log_node(n, WORKER_LOG_WARN, "disconnected from the NATS server; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    worker_node_t *n = closure;
    atomic_fetch_add(&n->reconnects, 1);
    wk_log_node(n, WORKER_LOG_INFO, "reconnected to the NATS server");
    wk_peers_announce(n);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    worker_node_t *n = closure;
    pthread_mutex_lock(&n->lock);
    n->closed = true;
    pthread_cond_broadcast(&n->closed_cv);
    pthread_mutex_unlock(&n->lock);
}

void wk_conn_close(worker_node_t *n)
{
    if (!n->nc)
        return;
    natsConnection_Close(n->nc);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&n->lock);
    while (!n->closed && pthread_cond_timedwait(&n->closed_cv, &n->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&n->lock);
    wk_conn_quiesce(n);
}

void wk_conn_quiesce(worker_node_t *n)
{
    /* A callback counts itself before it reads `closing` (both seq_cst):
     * either it is counted here, or it sees `closing` and touches nothing
     * but the node. Those counted end soon: they fire and publish, never
     * wait for a worker. */
    struct timespec ms = { 0, 1000000 };
    while (atomic_load(&n->in_callback) > 0)
        nanosleep(&ms, NULL);
}

/* The servers: a comma-separated list in `url`. */
static natsStatus set_servers(natsOptions *no, const char *url)
{
    char *copy = wk_strdup(url);
    const char *list[64];
    int count = 0;
    if (!copy)
        return NATS_NO_MEMORY;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && count < 64;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            list[count++] = tok;
    }
    natsStatus s = count ? natsOptions_SetServers(no, list, count) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

static natsStatus set_security(natsOptions *no, const worker_node_opts *o)
{
    natsStatus s = NATS_OK;
    if (o->token)
        s = natsOptions_SetToken(no, o->token);
    if (s == NATS_OK && (o->tls_ca_file || o->tls_cert_file))
        s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && o->tls_ca_file)
        s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca_file);
    if (s == NATS_OK && o->tls_cert_file)
        s = natsOptions_LoadCertificatesChain(no, o->tls_cert_file, o->tls_key_file);
    return s;
}

static natsStatus set_options(
    worker_node_t *n, natsOptions *no, const char *url, const worker_node_opts *o)
{
    double timeout = o->connect_timeout > 0 ? o->connect_timeout : 2.0;
    double wait = o->reconnect_wait > 0 ? o->reconnect_wait : 0.25;
    natsStatus s = set_servers(no, url);
    if (s == NATS_OK) /* the servers in the order given: the first is the node's own */
        s = natsOptions_SetNoRandomize(no, true);
    if (s == NATS_OK && o->send_asap) /* latency over throughput: no write buffering */
        s = natsOptions_SetSendAsap(no, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, (int64_t)(timeout * 1000));
    if (s == NATS_OK)
        s = natsOptions_SetName(no, n->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, (int64_t)(wait * 1000) + 1);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(no, on_error, n);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(no, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, on_reconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(no, on_closed, n);
    if (s == NATS_OK)
        s = set_security(no, o);
    return s;
}

static int status_code(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return WORKER_OK;
    case NATS_NO_MEMORY:
        return WORKER_ENOMEM;
    case NATS_INVALID_ARG:
        return WORKER_EINVAL;
    default:
        return WORKER_EAGAIN;
    }
}

/* `url` for the log, with any "user:password@" replaced by "***@". */
static void redact(const char *url, char *out, size_t room)
{
    size_t used = 0;
    for (const char *p = url; *p && used + 1 < room;) {
        const char *scheme = strstr(p, "://"), *at, *end;
        if (!scheme) {
            used += (size_t)snprintf(out + used, room - used, "%s", p);
            break;
        }
        end = strchr(scheme, ',');
        at = strchr(scheme, '@');
        size_t keep = (size_t)(scheme + 3 - p);
        used += (size_t)snprintf(out + used, room - used, "%.*s", (int)keep, p);
        p = scheme + 3;
        if (at && (!end || at < end) && used + 4 < room) {
            used += (size_t)snprintf(out + used, room - used, "***@");
            p = at + 1;
        }
        end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
        if (used < room)
            used += (size_t)snprintf(out + used, room - used, "%.*s", (int)len, p);
        p += len;
    }
    out[used < room ? used : room - 1] = '\0';
}

int wk_conn_open(worker_node_t *n, const char *url, const worker_node_opts *o)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    bool connecting = false; /* the options were taken: a failure now is the server's */
    if (s == NATS_OK)
        s = set_options(n, no, url, o);
    if (s == NATS_OK) {
        connecting = true;
        s = natsConnection_Connect(&n->nc, no);
    }
    natsOptions_Destroy(no);
    if (s != NATS_OK) {
        /* nats.c's own words (no server, the TLS handshake error with the
         * certificate check that failed, "Secure Connection not available"
         * from a server without TLS...), not just "No server available". */
        char shown[512];
        redact(url, shown, sizeof shown);
        const char *detail = nats_GetLastError(NULL), *cut;
        if (!detail)
            detail = "";
        if (*detail == '(' && (cut = strstr(detail, "): "))) /* "(conn.c:733): " */
            detail = cut + 3;
        if (strcmp(detail, natsStatus_GetText(s)) == 0) /* nothing more than the status */
            detail = "";
        wk_log_node(n, WORKER_LOG_ERROR, "cannot %s %s: %s%s%s",
            connecting ? "connect to" : "set the options of the connection to", shown,
            natsStatus_GetText(s), *detail ? ": " : "", detail);
        if (s == NATS_NO_MEMORY)
            return WORKER_ENOMEM;
        /* Options nats.c refused (a URL it cannot parse, a CA, certificate
         * or key file it cannot load) are bad options; the rest: no server
         * took us within connect_timeout. */
        return connecting ? WORKER_EAGAIN : WORKER_EINVAL;
    }
    char subject[WK_SUBJECT_MAX];
    static const char *const fmt[3] = { "%s.d.%s.*", "%s.r.%s.*", "%s.hb.*" };
    static const enum wk_sub_kind kinds[3] = { WK_SUB_DIRECT, WK_SUB_REPLY, WK_SUB_HEARTBEAT };
    for (int i = 0; i < 3; i++) {
        snprintf(subject, sizeof subject, fmt[i], n->prefix, n->name);
        void *closure = wk_inbound_closure(n, kinds[i], 0, NULL);
        n->subs[i] = closure ? wk_conn_sub(n, subject, NULL, wk_inbound_msg, closure) : NULL;
        if (!n->subs[i])
            return WORKER_EAGAIN;
    }
    return natsConnection_FlushTimeout(n->nc, 2000) == NATS_OK ? WORKER_OK : WORKER_EAGAIN;
}

natsSubscription *wk_conn_sub(
    worker_node_t *n, const char *subject, const char *queue, natsMsgHandler cb, void *closure)
{
    natsSubscription *sub = NULL;
    natsStatus s = queue ? natsConnection_QueueSubscribe(&sub, n->nc, subject, queue, cb, closure)
                         : natsConnection_Subscribe(&sub, n->nc, subject, cb, closure);
    if (s != NATS_OK) {
        wk_log_node(
            n, WORKER_LOG_ERROR, "cannot subscribe to %s: %s", subject, natsStatus_GetText(s));
        return NULL;
    }
    natsSubscription_SetPendingLimits(sub, n->pending_limit, 256 * 1024 * 1024);
    /* Once the call returns the server has the subscription (a round trip):
     * what is published after it reaches it. */
    natsConnection_FlushTimeout(n->nc, 2000);
    return sub;
}

/* Unsubscribed subscriptions are destroyed later (wk_conn_reap), not at
 * once: nats.c 3.4's reader thread may be handing a message to a
 * subscription while another thread destroys it, and then locks freed
 * memory (nats.c issue 637, fixed upstream in PR 638; Debian 12 ships
 * 3.4.1). Kept alive by our reference, a subscription being unsubscribed
 * is harmless to the reader. */
typedef struct wk_dead_sub {
    struct wk_dead_sub *next;
    natsSubscription *sub;
} wk_dead_sub;

void wk_conn_unsub(worker_node_t *n, natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    wk_dead_sub *d = malloc(sizeof *d);
    if (!d)
        return; /* kept forever rather than destroyed under the reader */
    d->sub = sub;
    pthread_mutex_lock(&n->lock);
    d->next = n->dead_subs;
    n->dead_subs = d;
    pthread_mutex_unlock(&n->lock);
}

void wk_conn_reap(worker_node_t *n, bool closed)
{
    pthread_mutex_lock(&n->lock);
    wk_dead_sub *list = n->dead_subs;
    n->dead_subs = NULL;
    pthread_mutex_unlock(&n->lock);
    if (!list)
        return;
    /* A round trip: once its PONG is read, the reader has handled every
     * message sent before the server took the UNSUBs of the list. */
    if (!closed && natsConnection_FlushTimeout(n->nc, 500) != NATS_OK) {
        pthread_mutex_lock(&n->lock);
        wk_dead_sub **tail = &list;
        while (*tail)
            tail = &(*tail)->next;
        *tail = n->dead_subs;
        n->dead_subs = list;
        pthread_mutex_unlock(&n->lock);
        return;
    }
    while (list) {
        wk_dead_sub *next = list->next;
        natsSubscription_Destroy(list->sub);
        free(list);
        list = next;
    }
}

int wk_conn_publish_bytes(worker_node_t *n, const char *subject, const char *reply,
    const unsigned char *buf, size_t size, uint64_t events)
{
    natsStatus s = reply ? natsConnection_PublishRequest(n->nc, subject, reply, buf, (int)size)
                         : natsConnection_Publish(n->nc, subject, buf, (int)size);
    if (s == NATS_MAX_PAYLOAD) { /* nats.c checks against the server's max_payload */
        atomic_fetch_add(&n->dropped, events);
        wk_log_node(n, WORKER_LOG_WARN,
            "message of %zu bytes to %s is larger than the server's "
            "max_payload: dropped",
            size, subject);
        return WORKER_EINVAL;
    }
    if (s != NATS_OK) {
        atomic_fetch_add(&n->dropped, events);
        wk_log_node(n, WORKER_LOG_WARN, "publish to %s failed: %s", subject, natsStatus_GetText(s));
        return status_code(s) == WORKER_ENOMEM ? WORKER_ENOMEM : WORKER_EAGAIN;
    }
    atomic_fetch_add(&n->sent, 1);
    return WORKER_OK;
}

int wk_conn_publish(worker_node_t *n, const char *subject, const char *reply, const wk_msg *m)
{
    size_t size = wk_wire_size(m);
    unsigned char stack[WK_PUBLISH_STACK];
    unsigned char *buf = size <= sizeof stack ? stack : malloc(size);
    if (!buf)
        return WORKER_ENOMEM;
    wk_wire_encode(m, buf);
    int rc = wk_conn_publish_bytes(n, subject, reply, buf, size, 1);
    if (buf != stack)
        free(buf);
    return rc;
}
