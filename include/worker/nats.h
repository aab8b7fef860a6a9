/* Nodes on NATS: workers in other processes and on other hosts
 * (libworker-actor-nats, a separate library: pkg-config worker-actor-nats,
 * CMake worker::nats). docs/nats.md has every rule, docs/wire-format.md the
 * bytes on the wire.
 *
 * A node is one NATS connection. Exported workers answer to a name on every
 * node of the cluster; worker_node_lookup gives a proxy worker_t that
 * stands for a remote worker: fire at it with copied data, call it,
 * monitor it, link to it. Delivery across nodes is at most once (NATS
 * core). Every function here may be called from any thread. */
#ifndef WORKER_NATS_H
#define WORKER_NATS_H

#include <worker/channel.h>
#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct worker_node worker_node_t;

/* Options of worker_node_connect. NULL or zero-filled: all defaults. The
 * strings are copied. The first three fields are API.md's; the rest are
 * additions of this library (credentials and TLS are nats.c's own: a URL
 * "nats://user:password@host:port" passes user and password through). */
typedef struct worker_node_opts {
    const char *name; /* this node's name, unique in the cluster; NULL: "<host>-<pid>" */
    double connect_timeout; /* 0: 2 s */
    double heartbeat; /* 0: 1 s; a node silent for 3 heartbeats is down */
    const char *cluster; /* the subject prefix's cluster part: wk.<cluster>.…; NULL: "default" */
    const char *token; /* NULL: none; the server's authorization token */
    const char *tls_ca_file; /* PEM CA file; it turns TLS on. NULL: TLS only for a
                                tls:// URL or a server that requires it, checked
                                against the system's CAs */
    const char *tls_cert_file; /* client certificate (PEM), with tls_key_file */
    const char *tls_key_file;
    double reconnect_wait; /* 0: 0.25 s between reconnect attempts (reconnects forever) */
    int pending_limit; /* 0: 65,536 messages pending per subscription before
                          NATS drops (slow consumer, logged and counted) */
    bool send_asap; /* true: every message is written at once (lower call
                       latency, lower throughput); false: fires at a proxy
                       travel in batches (one NATS message for many,
                       docs/nats.md) and nats.c buffers its writes */
} worker_node_opts;

/* Counters of a node (worker_node_stats). */
typedef struct worker_node_stats_t {
    uint64_t sent; /* messages published (a batch of fires is one) */
    uint64_t received; /* messages taken from NATS (a batch of fires is one) */
    uint64_t bad; /* messages that did not parse (logged and dropped) */
    uint64_t dropped; /* not delivered: slow consumer drops, refusals, oversize */
    uint64_t async_errors; /* NATS asynchronous errors (slow consumer, ...) */
    uint64_t reconnects; /* times the connection came back */
    size_t nodes_up; /* other nodes heard within 3 heartbeats */
} worker_node_stats_t;

/* Connect to `url` ("nats://127.0.0.1:4222", or a comma-separated list of
 * servers of one cluster) and start the node. NULL on failure with *err
 * (may be NULL) set: WORKER_EINVAL (NULL or empty url, a bad option, a
 * name with '.', '*', '>' or spaces, a TLS file nats.c cannot load),
 * WORKER_EAGAIN (no server reached within connect_timeout, refused
 * credentials or TLS), WORKER_ENOMEM. nats.c's reason is logged.
 * The caller owns the node and closes it with worker_node_close. */
WORKER_API worker_node_t *worker_node_connect(
    const char *url, const worker_node_opts *opts, int *err);

/* Unexport everything, stop the node's proxies and bridges (their
 * monitors see WORKER_DOWN), close the connection and free the node.
 * Proxy handles still held stay valid handles of ended workers. NULL is
 * ignored. Not from a listener of a worker the node created. */
WORKER_API void worker_node_close(worker_node_t *n);

/* `w` answers to `name` on every node: events fired at a proxy of `name`
 * reach it as copies, with a proxy of the remote sender as sender. The
 * export ends with `w` (and is then unexported). WORKER_EINVAL: NULL, an
 * empty name or one with '.', '*', '>' or spaces, a name this node already
 * exports; WORKER_EREJECTED: `w` is not running; WORKER_EAGAIN: NATS
 * refused the subscription; WORKER_ENOMEM. */
WORKER_API int worker_node_export(worker_node_t *n, worker_t *w, const char *name);

/* Like worker_node_export, but many workers (on this and other nodes) may
 * share `name`: each event goes to exactly one of them (a NATS queue
 * group). A name is either a group or not, on this node. */
WORKER_API int worker_node_export_group(worker_node_t *n, worker_t *w, const char *name);

/* Stop answering to `name` (every member this node exports under it).
 * WORKER_EINVAL: NULL, or a name this node does not export. Other nodes'
 * proxies of the name end (WORKER_DOWN) once no node exports it. */
WORKER_API int worker_node_unexport(worker_node_t *n, const char *name);

/* A proxy handle for the remote worker exported as `name` (caller owns a
 * reference; the same handle for the same name). Running while some node
 * exports the name (a fire meanwhile is WORKER_EREJECTED); names are
 * resolved when fired, so a proxy looked up before the export works once
 * the export is known. NULL only for bad arguments or no memory. */
WORKER_API worker_t *worker_node_lookup(worker_node_t *n, const char *name);

/* Bridge `ch` and the NATS subject `subject`: a local publish with copied
 * data also goes out on the subject; a publish from another node on it is
 * published into `ch` (sender: a proxy of the node's bridge); no node
 * receives its own publish twice. WORKER_EINVAL: NULL, an empty subject
 * or one with wildcards or spaces, `ch` already bridged on this node;
 * WORKER_EAGAIN: NATS refused the subscription; WORKER_ENOMEM. */
WORKER_API int worker_node_bridge(worker_node_t *n, worker_channel_t *ch, const char *subject);

/* The node's counters. WORKER_EINVAL for NULL. */
WORKER_API int worker_node_stats(worker_node_t *n, worker_node_stats_t *out);

/* The node's name (borrowed, valid until worker_node_close). */
WORKER_API const char *worker_node_name(const worker_node_t *n);

#ifdef __cplusplus
}
#endif
#endif
