/* worker_node_connect / worker_node_close and the node's small helpers.
 *
 * Concurrency: connect builds the node on the calling thread before any
 * other thread can see it; close runs once, on the caller's thread, after
 * which nothing of the node may be used (wk_nats.h has the invariants). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wk_nats.h"

uint64_t wk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wk_log_node(worker_node_t *n, int level, const char *fmt, ...)
{
    char msg[512];
    int len = snprintf(msg, sizeof msg, "nats node %s: ", n && n->name ? n->name : "?");
    va_list args;
    va_start(args, fmt);
    vsnprintf(msg + len, sizeof msg - (size_t)len, fmt, args);
    va_end(args);
    worker_log(level, NULL, msg);
}

bool wk_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > WK_WIRE_NAME_MAX - 1)
        return false;
    for (const char *p = name; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ' || *p == 127)
            return false;
    return true;
}

char *wk_strndup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *wk_strdup(const char *s)
{
    return wk_strndup(s, strlen(s));
}

bool wk_str_eq(wk_str s, const char *c)
{
    return strlen(c) == s.len && memcmp(s.p, c, s.len) == 0;
}

static char *default_name(void)
{
    char host[128] = "host", buf[200];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || *p <= ' ')
            *p = '_';
    snprintf(buf, sizeof buf, "%s-%ld", host, (long)getpid());
    return wk_strdup(buf);
}

static bool opts_ok(const worker_node_opts *o)
{
    if (o->name && !wk_name_ok(o->name))
        return false;
    if (o->cluster && !wk_name_ok(o->cluster))
        return false;
    if (!(o->connect_timeout >= 0 && o->connect_timeout < 1e6)
        || !(o->heartbeat >= 0 && o->heartbeat < 1e6)
        || !(o->reconnect_wait >= 0 && o->reconnect_wait < 1e6) || o->pending_limit < 0)
        return false;
    return !(o->tls_cert_file && !o->tls_key_file) && !(o->tls_key_file && !o->tls_cert_file);
}

static worker_node_t *node_new(const worker_node_opts *o)
{
    worker_node_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->closed_cv, NULL);
    n->name = o->name ? wk_strdup(o->name) : default_name();
    n->heartbeat = o->heartbeat > 0 ? o->heartbeat : 1.0;
    n->pending_limit = o->pending_limit > 0 ? o->pending_limit : 65536;
    n->batch_fires = !o->send_asap;
    snprintf(n->prefix, sizeof n->prefix, "wk.%s", o->cluster ? o->cluster : "default");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n->salt = (uint32_t)(ts.tv_nsec ^ (getpid() << 12) ^ ts.tv_sec);
    n->next_id = 1;
    n->serial = wk_node_serial();
    n->answers = wk_answers_new(n);
    if (!n->name || !n->answers) {
        wk_answers_unref(n->answers);
        free(n->name);
        free(n);
        return NULL;
    }
    return n;
}

static void node_free(worker_node_t *n)
{
    wk_answers_unref(n->answers); /* calls still being served keep it */
    pthread_cond_destroy(&n->closed_cv);
    pthread_mutex_destroy(&n->lock);
    free(n->name);
    free(n);
}

static int fail(int *err, int code)
{
    if (err)
        *err = code;
    return code;
}

worker_node_t *worker_node_connect(const char *url, const worker_node_opts *opts, int *err)
{
    worker_node_opts none = { 0 };
    const worker_node_opts *o = opts ? opts : &none;
    if (!url || !*url || !opts_ok(o)) {
        fail(err, WORKER_EINVAL);
        return NULL;
    }
    worker_node_t *n = node_new(o);
    if (!n) {
        fail(err, WORKER_ENOMEM);
        return NULL;
    }
    int rc = wk_inbound_start(n);
    if (rc == WORKER_OK)
        rc = wk_conn_open(n, url, o);
    if (rc != WORKER_OK) {
        worker_node_close(n);
        fail(err, rc);
        return NULL;
    }
    wk_peers_announce(n);
    fail(err, WORKER_OK);
    return n;
}

/* The message callbacks first (none acts any more), the core worker next
 * (then nothing handles heartbeats, ticks or flushes), the proxies and
 * bridges next (no more publishes), then the connection, then the
 * entries. */
void worker_node_close(worker_node_t *n)
{
    if (!n)
        return;
    atomic_store(&n->closing, true);
    wk_conn_quiesce(n); /* callbacks read proxies and exports: none from now on */
    if (n->tick) {
        worker_timer_cancel(n->tick);
        worker_timer_free(n->tick);
    }
    if (n->core) {
        worker_stop(n->core);
        worker_join(n->core);
    }
    wk_bridges_close(n);
    wk_proxies_close(n);
    wk_calls_close(n);
    for (int i = 0; i < 3; i++)
        wk_conn_unsub(n, n->subs[i]);
    wk_exports_close(n);
    wk_answers_close(n->answers); /* late answers publish nothing now */
    wk_conn_close(n);
    wk_conn_reap(n, true); /* the reader has stopped */
    wk_bridges_free(n);
    wk_senders_close(n);
    wk_peers_close(n);
    if (n->nc)
        natsConnection_Destroy(n->nc);
    worker_unref(n->core);
    node_free(n);
}

const char *worker_node_name(const worker_node_t *n)
{
    return n ? n->name : NULL;
}

int worker_node_stats(worker_node_t *n, worker_node_stats_t *out)
{
    if (!n || !out)
        return WORKER_EINVAL;
    memset(out, 0, sizeof *out);
    out->sent = atomic_load(&n->sent);
    out->received = atomic_load(&n->received);
    out->bad = atomic_load(&n->bad);
    out->dropped = atomic_load(&n->dropped);
    out->async_errors = atomic_load(&n->async_errors);
    out->reconnects = atomic_load(&n->reconnects);
    pthread_mutex_lock(&n->lock);
    for (wk_remote *r = n->remotes; r; r = r->next)
        out->nodes_up += r->up;
    pthread_mutex_unlock(&n->lock);
    return WORKER_OK;
}
