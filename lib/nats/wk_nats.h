/* The node of libworker-actor-nats: its state, shared by the files of
 * lib/nats (one concern each). Built on the public API of the core only.
 *
 * Concurrency invariants (every file of lib/nats keeps them):
 * - One mutex, node->lock, guards every list of the node (exports,
 *   remotes, proxies, senders, pending calls, bridges) and the counters
 *   that are not atomics. It is never held while calling into nats.c's
 *   blocking calls (connect, flush, close) or while waiting for a worker;
 *   worker_fire/worker_start/worker_stop (which never block) may be called
 *   with it held.
 * - nats.c delivers each subscription's messages in order, on one thread
 *   at a time, and they are handled right there (inbound.c): a FIRE is
 *   fired at its target, a CALL is made with worker_call_then (its answer
 *   is published from the thread that answers: calls.c), a REPLY answers
 *   its caller. So per-subscription order, and with it per
 *   sender/receiver pair order across nodes, holds for fires and calls
 *   alike. Only heartbeats and end notices go to the node's own worker
 *   (`core`), whose listeners handle them on one thread. The bridge
 *   callback only publishes into its channel.
 * - Named proxies are started and stopped only on the core worker's thread
 *   (wk_proxies_sync), so a proxy's running state follows "some live node
 *   exports the name" without races between two syncs.
 * - A proxy is a forwarding worker: its forward hook runs on the threads
 *   that fire at it, reads only the proxy's immutable fields and
 *   publishes; it takes node->lock to register senders and pending calls.
 * - Entries are freed only by worker_node_close: it sets `closing` and
 *   waits for the message callbacks that did not see it (wk_conn_quiesce)
 *   before anything else, so no callback reads an entry, a proxy or an
 *   export being freed; the connection is closed (its closed callback has
 *   run: nats.c's callbacks may run after natsConnection_Close returns)
 *   and every worker the node made is joined before the entries go. */
#ifndef WK_NATS_H
#define WK_NATS_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include <worker/nats.h>
#include <worker/worker.h>

#include "wk_wire.h"

#define WK_SUBJECT_MAX 600

/* One exported member: a name (a group has one entry per member). */
typedef struct wk_export {
    struct wk_export *next;
    uint64_t id; /* the subscription callback's key */
    char *name;
    worker_t *w; /* one reference */
    bool group;
    _Atomic bool gone; /* unexported; freed at close (read without the lock by inbound.c) */
    natsSubscription *sub;
} wk_export;

/* Another node, as heard in its heartbeats. */
typedef struct wk_remote {
    struct wk_remote *next;
    char *node;
    double period;
    uint64_t last_ns;
    bool up;
    unsigned char *exports; /* its last export list (wire entries) */
    size_t exports_size;
} wk_remote;

/* The FIREs a proxy holds for one publish (batch.c): an encoded FIRES
 * message, guarded by its own lock. */
typedef struct wk_batch {
    pthread_mutex_t lock;
    unsigned char *buf; /* NULL until the first FIRE */
    size_t len; /* bytes in buf (0: empty) */
    size_t room; /* the most this batch may hold (set as it begins) */
    unsigned entries;
    bool flush_queued; /* a flush is queued at the core worker */
    uint64_t prev_wid; /* the last entry's sender */
    const char *prev_node;
} wk_batch;

/* A proxy worker: for an exported name (`name`), or for one remote worker
 * that sent to this node (`peer_node` + `peer_wid`). */
typedef struct wk_proxy {
    struct wk_proxy *next;
    worker_node_t *node;
    worker_t *w; /* the node's reference */
    char *name; /* NULL for a sender's proxy */
    char *peer_node;
    uint64_t peer_wid;
    bool ended; /* a sender's proxy whose worker has ended: never restarted */
    wk_batch batch;
    char subject[WK_SUBJECT_MAX];
} wk_proxy;

/* A local worker that sent across: remote nodes address it by wid. */
typedef struct wk_sender {
    struct wk_sender *next;
    worker_t *w; /* one reference, until its end is announced */
    uint64_t wid;
} wk_sender;

/* A call forwarded by a proxy, waiting for its REPLY. */
typedef struct wk_pending {
    struct wk_pending *next;
    uint64_t id;
    const worker_event_t *e; /* kept with worker_event_ref */
    wk_proxy *proxy;
} wk_pending;

/* A channel bridged to a subject. */
typedef struct wk_bridge {
    struct wk_bridge *next;
    worker_node_t *node;
    worker_channel_t *ch;
    worker_t *w; /* subscribed to ch: forwards local publishes */
    char subject[WK_SUBJECT_MAX];
    natsSubscription *sub;
} wk_bridge;

/* What a subscription callback is for (its closure). */
enum wk_sub_kind { WK_SUB_EXPORT, WK_SUB_DIRECT, WK_SUB_REPLY, WK_SUB_HEARTBEAT };

typedef struct wk_closure {
    struct wk_closure *next;
    worker_node_t *node;
    enum wk_sub_kind kind;
    uint64_t key; /* WK_SUB_EXPORT: the export's id */
    wk_export *export; /* WK_SUB_EXPORT: its entry (entries live until close) */
    /* The proxy of the last remote sender seen on this subscription: used
     * by its callbacks only (one at a time); proxies live until close. */
    wk_proxy *last_sender;
} wk_closure;

/* What outlives a node for the answers of the calls it serves (calls.c). */
typedef struct wk_answers {
    _Atomic uint32_t refs; /* the node's, and one per call being served */
    pthread_rwlock_t lock; /* read: publishing an answer; write: closing */
    bool closed; /* under the write lock: answers are dropped */
    worker_node_t *node;
} wk_answers;

struct worker_node {
    pthread_mutex_t lock;
    natsConnection *nc;
    char *name;
    char prefix[WK_SUBJECT_MAX]; /* "wk.<cluster>" */
    double heartbeat;
    int pending_limit;
    bool batch_fires; /* FIREs at a proxy go in batches (not send_asap) */
    uint32_t salt;
    worker_t *core;
    wk_answers *answers;
    worker_timer_t *tick;
    natsSubscription *subs[3]; /* direct, reply, heartbeat */
    wk_export *exports;
    wk_remote *remotes;
    wk_proxy *proxies;
    wk_sender *senders;
    wk_pending *pending;
    wk_bridge *bridges;
    wk_closure *closures;
    struct wk_dead_sub *dead_subs; /* unsubscribed, not yet destroyed (conn.c) */
    uint64_t next_id; /* exports, wids and call ids (under lock) */
    uint64_t serial; /* unique in the process (senders.c's per-thread cache) */
    _Atomic uint64_t senders_changed; /* bumped when a sender is forgotten */
    atomic_bool closing;
    atomic_int in_callback; /* message callbacks running now (close waits for 0) */
    pthread_cond_t closed_cv; /* nats.c's closed callback has run (closed, under lock) */
    bool closed;
    _Atomic uint64_t sent, received, bad, dropped, async_errors, reconnects;
};

/* node.c */
uint64_t wk_now_ns(void);
void wk_log_node(worker_node_t *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool wk_name_ok(const char *name);
char *wk_strdup(const char *s);
char *wk_strndup(const char *s, size_t len);
bool wk_str_eq(wk_str s, const char *c);

/* conn.c: the connection, its options and callbacks */
int wk_conn_open(worker_node_t *n, const char *url, const worker_node_opts *o);
/* Close the connection and wait (up to 5 s) for nats.c's closed callback
 * on it, which may run on its own thread after natsConnection_Close
 * returns, then for message callbacks still running (wk_conn_quiesce). */
void wk_conn_close(worker_node_t *n);
/* With `closing` set: wait until no message callback that saw it clear is
 * still running (any later one sees it set and only counts itself). */
void wk_conn_quiesce(worker_node_t *n);
natsSubscription *wk_conn_sub(
    worker_node_t *n, const char *subject, const char *queue, natsMsgHandler cb, void *closure);
/* Unsubscribe now, destroy later (wk_conn_reap: nats.c 3.4's reader may
 * still be handing `sub` a message). */
void wk_conn_unsub(worker_node_t *n, natsSubscription *sub);
/* Destroy the subscriptions unsubscribed so far: after a round trip with
 * the server (kept for the next reap if it fails), or at once when the
 * connection is closed (its reader has stopped). */
void wk_conn_reap(worker_node_t *n, bool closed);
/* Publish an encoded message (reply subject may be NULL): WORKER_OK,
 * WORKER_EINVAL (larger than the server allows), WORKER_EAGAIN. */
int wk_conn_publish(worker_node_t *n, const char *subject, const char *reply, const wk_msg *m);
/* The same for bytes encoded already, which hold `events` events (counted
 * as dropped when the publish fails). */
int wk_conn_publish_bytes(worker_node_t *n, const char *subject, const char *reply,
    const unsigned char *buf, size_t size, uint64_t events);

/* inbound.c: messages handed from nats.c's threads to the core worker */
int wk_inbound_start(worker_node_t *n);
void wk_inbound_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
void *wk_inbound_closure(worker_node_t *n, enum wk_sub_kind kind, uint64_t key, wk_export *x);
void wk_msg_bad(worker_node_t *n, const char *subject, size_t len);

/* export.c */
void wk_exports_down(worker_node_t *n, worker_t *w);
size_t wk_exports_encode(worker_node_t *n, unsigned char *out, size_t room);
bool wk_exported_locally(worker_node_t *n, const char *name);
void wk_exports_close(worker_node_t *n);

/* peers.c: heartbeats and liveness */
void wk_peers_tick(void *arg);
void wk_peers_announce(worker_node_t *n); /* from any thread: a heartbeat now */
void wk_peers_heard(worker_node_t *n, const wk_msg *m);
bool wk_name_known(worker_node_t *n, const char *name); /* lock held */
bool wk_node_up(worker_node_t *n, const char *node); /* lock held */
void wk_remote_seen(worker_node_t *n, const char *node); /* lock held */
void wk_peers_close(worker_node_t *n);

/* proxy.c */
wk_proxy *wk_proxy_sender(worker_node_t *n, wk_str node, uint64_t wid, wk_str name);
void wk_proxies_sync(worker_node_t *n); /* core thread only */
void wk_proxy_peer_ended(worker_node_t *n, wk_str node, uint64_t wid);
void wk_proxies_close(worker_node_t *n);
wk_proxy *wk_proxy_of(worker_node_t *n, const worker_t *w); /* lock held */

/* forward.c: what a proxy does with an event */
void wk_forward(const worker_event_t *e, void *proxy); /* worker_opts.forward of proxies */
bool wk_library_event(const char *name);
int wk_identify_sender(worker_node_t *n, const worker_event_t *e, wk_msg *m);

/* batch.c: a proxy's FIREs, published together */
void wk_batch_init(wk_batch *b);
void wk_batch_destroy(wk_batch *b);
void wk_batch_fire(wk_proxy *p, const wk_msg *m); /* any thread */
void wk_batch_flush(wk_proxy *p); /* publish what waits, now; any thread */

/* senders.c */
uint64_t wk_node_serial(void); /* a new node's serial */
uint64_t wk_sender_wid(worker_node_t *n, worker_t *w); /* registers; 0 on failure */
worker_t *wk_sender_find(worker_node_t *n, uint64_t wid); /* a reference, or NULL */
void wk_senders_down(worker_node_t *n, worker_t *w);
void wk_senders_close(worker_node_t *n);

/* calls.c */
int wk_call_forward(wk_proxy *p, const worker_event_t *e, wk_msg *m);
void wk_call_answer(worker_node_t *n, uint64_t id, const wk_msg *m);
wk_answers *wk_answers_new(worker_node_t *n);
void wk_answers_close(wk_answers *a); /* before the connection closes: answers publish nothing */
void wk_answers_unref(wk_answers *a); /* the node's reference, at its free */
void wk_call_serve(
    worker_node_t *n, worker_t *target, const char *reply, const wk_msg *m, worker_t *sender);
void wk_calls_sweep(worker_node_t *n);
void wk_calls_close(worker_node_t *n);

/* bridge.c */
void wk_bridges_close(worker_node_t *n);
void wk_bridges_free(worker_node_t *n);

#endif
