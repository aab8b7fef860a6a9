/* Calls across nodes. The caller's side: a proxy keeps the request event
 * (worker_event_ref), publishes a CALL with the reply subject
 * <prefix>.r.<node>.<call id> and answers the request when the REPLY
 * comes (a copy: worker_reply_ex), or with an error when the target is
 * gone, so a call never meets silence. The receiver's side: nats.c's
 * thread calls the exported worker with worker_call_then, and the answer
 * is published from the thread that makes it.
 *
 * Concurrency: the pending list is guarded by node->lock; an entry is
 * answered by whoever unlinks it (only one can): a REPLY on nats.c's
 * thread that received it, the sweep on the core's. Calls are forwarded on
 * the threads that call a proxy. Serving runs on nats.c's thread; answers
 * on the answering threads, through wk_answers (below). */
#include <stdlib.h>
#include <string.h>

#include "wk_nats.h"

static int publish_pending(worker_node_t *n, wk_proxy *p, uint64_t id, wk_msg *m)
{
    char reply[WK_SUBJECT_MAX];
    snprintf(reply, sizeof reply, "%s.r.%s.%llu", n->prefix, n->name, (unsigned long long)id);
    return wk_conn_publish(n, p->subject, reply, m);
}

static wk_pending *unlink_id(worker_node_t *n, uint64_t id)
{
    pthread_mutex_lock(&n->lock);
    wk_pending **pp = &n->pending;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    wk_pending *c = *pp;
    if (c)
        *pp = c->next;
    pthread_mutex_unlock(&n->lock);
    return c;
}

static void finish(wk_pending *c, int rc)
{
    if (rc != WORKER_OK)
        worker_reply_error(c->e, rc);
    worker_event_unref(c->e);
    free(c);
}

int wk_call_forward(wk_proxy *p, const worker_event_t *e, wk_msg *m)
{
    worker_node_t *n = p->node;
    wk_pending *c = calloc(1, sizeof *c);
    if (!c)
        return worker_reply_error(e, WORKER_ENOMEM);
    c->e = worker_event_ref(e);
    c->proxy = p;
    m->number = worker_event_deadline(e);
    pthread_mutex_lock(&n->lock);
    c->id = n->next_id++;
    c->next = n->pending;
    n->pending = c;
    pthread_mutex_unlock(&n->lock);
    int rc = publish_pending(n, p, c->id, m);
    if (rc != WORKER_OK && (c = unlink_id(n, c->id)))
        finish(c, rc);
    return rc;
}

/* A REPLY's code: 0 or one of the library's codes; anything else is
 * reported as WORKER_EINVAL. */
static int reply_code(int32_t rc)
{
    return rc <= 0 && rc >= -1000 ? rc : WORKER_EINVAL;
}

void wk_call_answer(worker_node_t *n, uint64_t id, const wk_msg *m)
{
    wk_pending *c = unlink_id(n, id);
    if (!c)
        return; /* answered already, or the caller gave up */
    wk_msgid_seen(m, worker_event_target(c->e)); /* the caller */
    int rc = reply_code(m->rc);
    if (rc == WORKER_OK) {
        worker_fire_opts fo = { .copy = m->size ? m->data : "", .copy_size = m->size };
        worker_reply_ex(c->e, NULL, &fo);
    }
    finish(c, rc);
}

/* ---- the receiver's side ----
 * A CALL is made with worker_call_then on nats.c's thread; its answer
 * (on_answer) runs on whichever thread answers, at any time, maybe after
 * worker_node_close. So it reaches the connection only through the node's
 * wk_answers, which outlives the node: a read lock while publishing, and
 * `closed` (set under the write lock by the close, before the connection
 * goes) makes a late answer a no-op. */

wk_answers *wk_answers_new(worker_node_t *n)
{
    wk_answers *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    atomic_init(&a->refs, 1);
    pthread_rwlock_init(&a->lock, NULL);
    a->node = n;
    return a;
}

void wk_answers_unref(wk_answers *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1) {
        pthread_rwlock_destroy(&a->lock);
        free(a);
    }
}

void wk_answers_close(wk_answers *a)
{
    if (!a)
        return;
    pthread_rwlock_wrlock(&a->lock); /* answers being published finish first */
    a->closed = true;
    pthread_rwlock_unlock(&a->lock);
}

typedef struct serve_ctx {
    wk_answers *answers; /* one reference */
    char reply[WK_SUBJECT_MAX];
} serve_ctx;

static void send_reply(worker_node_t *n, const char *reply, int rc, const void *data, size_t size)
{
    wk_msg m = { .type = WK_MSG_REPLY,
        .id = wk_msgid_new(n->salt, "REPLY", reply),
        .node = { n->name, strlen(n->name) },
        .rc = rc,
        .data = data,
        .size = size };
    if (wk_conn_publish(n, reply, NULL, &m) == WORKER_EINVAL && rc == WORKER_OK)
        send_reply(n, reply, WORKER_EINVAL, NULL, 0); /* the reply was too large */
}

/* worker_call_then's callback: on the thread that answered the call. */
static void on_answer(int rc, void *reply, size_t reply_size, void *userdata)
{
    serve_ctx *ctx = userdata;
    wk_answers *a = ctx->answers;
    pthread_rwlock_rdlock(&a->lock);
    if (!a->closed) {
        if (rc == WORKER_OK && reply && reply_size == 0) {
            wk_log_node(a->node, WORKER_LOG_WARN,
                "a reply by reference cannot cross processes: "
                "answer with worker_reply_ex and .copy; sent as empty");
        }
        send_reply(a->node, ctx->reply, rc, rc == WORKER_OK ? reply : NULL,
            rc == WORKER_OK ? reply_size : 0);
    }
    pthread_rwlock_unlock(&a->lock);
    wk_answers_unref(a);
    free(ctx);
}

void wk_call_serve(
    worker_node_t *n, worker_t *target, const char *reply, const wk_msg *m, worker_t *sender)
{
    char name[WK_WIRE_NAME_MAX + 1];
    if (!reply || strlen(reply) >= WK_SUBJECT_MAX) {
        wk_msg_bad(n, "a call without a reply subject", m->size);
        return;
    }
    memcpy(name, m->name.p, m->name.len);
    name[m->name.len] = '\0';
    serve_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) {
        send_reply(n, reply, WORKER_ENOMEM, NULL, 0);
        return;
    }
    ctx->answers = n->answers;
    atomic_fetch_add(&n->answers->refs, 1);
    strcpy(ctx->reply, reply);
    /* The caller's time left: the request expires unanswered if the
     * target takes it later than that (the caller has given up by then). */
    double timeout = m->number >= 0 && m->number < 1e9 ? m->number : -1.0;
    worker_fire_opts fo = {
        .copy = m->size ? m->data : "", .copy_size = m->size, .target = sender ? sender : n->core
    };
    int rc = worker_call_then(target, name, NULL, &fo, timeout, on_answer, ctx);
    if (rc != WORKER_OK) {
        send_reply(n, reply, rc, NULL, 0);
        wk_answers_unref(ctx->answers);
        free(ctx);
    }
}

/* ---- sweeping: calls whose caller gave up, or whose target is gone ---- */

static int verdict(worker_node_t *n, const wk_pending *c)
{
    if (worker_event_deadline(c->e) == 0.0)
        return WORKER_ETIMEDOUT;
    const wk_proxy *p = c->proxy;
    if (p->name ? !wk_name_known(n, p->name) : (p->ended || !wk_node_up(n, p->peer_node)))
        return WORKER_EREJECTED;
    return WORKER_OK;
}

void wk_calls_sweep(worker_node_t *n)
{
    wk_pending *done = NULL;
    pthread_mutex_lock(&n->lock);
    for (wk_pending **pp = &n->pending; *pp;) {
        wk_pending *c = *pp;
        int v = verdict(n, c);
        if (v == WORKER_OK) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->next = done;
        c->id = (uint64_t)(int64_t)v; /* reuse: the verdict */
        done = c;
    }
    pthread_mutex_unlock(&n->lock);
    while (done) {
        wk_pending *next = done->next;
        finish(done, (int)(int64_t)done->id);
        done = next;
    }
}

void wk_calls_close(worker_node_t *n)
{
    pthread_mutex_lock(&n->lock);
    wk_pending *c = n->pending;
    n->pending = NULL;
    pthread_mutex_unlock(&n->lock);
    while (c) {
        wk_pending *next = c->next;
        finish(c, WORKER_EREJECTED);
        c = next;
    }
}
