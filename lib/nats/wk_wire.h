/* The wire format of libworker-actor-nats (docs/wire-format.md).
 *
 * A FIRE, the message that travels most, has a short layout of its own:
 * only the fields it has, one-byte lengths, the sender's id as a varint,
 * the message id only when traced. Every other message has one layout: a
 * 12-byte header (magic "WK", version, type, 64-bit message id), then the
 * same fields in the same order, each type using the ones it needs and
 * leaving the others empty. All integers
 * little endian. Decoding never trusts a length: a message that does not
 * parse is refused whole. Pure functions, no shared state. */
#ifndef WK_WIRE_H
#define WK_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <worker/types.h>

#define WK_WIRE_VERSION 2
#define WK_WIRE_HEADER 12
#define WK_WIRE_NAME_MAX 255 /* names, node names and event names on the wire */

enum wk_msg_type {
    WK_MSG_FIRE = 1, /* an event for a worker */
    WK_MSG_CALL = 2, /* a request; the NATS reply subject gets the REPLY */
    WK_MSG_REPLY = 3, /* the answer to a CALL: rc, and bytes when rc is 0 */
    WK_MSG_HEARTBEAT = 4, /* a node is alive; data: the names it exports */
    WK_MSG_ENDED = 5, /* a worker that sent across (wid) has ended */
    WK_MSG_PUB = 6, /* a publish on a bridged channel */
    WK_MSG_FIRES = 7, /* FIREs for the worker of the subject, in order (batch.c) */
};

typedef struct wk_str {
    const char *p; /* not NUL-terminated when decoded */
    size_t len;
} wk_str;

typedef struct wk_msg {
    uint8_t type;
    uint64_t id; /* the message id (TRACE HOOK: see wk_msgid_new in wire.c) */
    wk_str node; /* the sending node */
    uint64_t wid; /* FIRE/CALL: the sender's id on its node (0: none); ENDED: the ended one */
    wk_str sender; /* FIRE/CALL: the sender's worker name (for display) */
    wk_str name; /* FIRE/CALL/PUB: the event name */
    double number; /* CALL: seconds left (< 0: no timeout); HEARTBEAT: the period */
    int32_t rc; /* REPLY: 0 or a WORKER_E... code */
    const void *data; /* payload; HEARTBEAT: the export list */
    size_t size;
} wk_msg;

/* The encoded size of `m` (its data included). */
size_t wk_wire_size(const wk_msg *m);

/* Encode `m` into `out` (wk_wire_size(m) bytes); returns the bytes written. */
size_t wk_wire_encode(const wk_msg *m, unsigned char *out);

/* Decode `len` bytes at `buf` into `m` (pointing into `buf`). False when
 * they are not one whole message of a known version and type. A FIRES
 * message decodes to its entries (`data`, `size`), every one checked. */
bool wk_wire_decode(const void *buf, size_t len, wk_msg *m);

/* FIRES: a batch of FIRE bodies, each behind its length (LEB128). An
 * entry may say "the same sender as the entry before" instead of naming
 * it again. */
#define WK_WIRE_FIRES_HEAD 4 /* magic, version, type */
/* Write the FIRES header (WK_WIRE_FIRES_HEAD bytes). */
void wk_wire_fires_head(unsigned char *out);
/* The room an entry for `m` (a FIRE) takes; `same_sender`: its sender is
 * the previous entry's. */
size_t wk_wire_entry_size(const wk_msg *m, bool same_sender);
/* Append the entry; returns the bytes written (wk_wire_entry_size). */
size_t wk_wire_entry_put(const wk_msg *m, bool same_sender, unsigned char *out);
/* Walk a decoded FIRES message: *pos starts at 0 and *entry is kept
 * between calls (an entry may reuse the previous one's sender); true with
 * the next entry as a FIRE, false at the end. */
bool wk_wire_entry_next(const wk_msg *fires, size_t *pos, wk_msg *entry);

/* The export list of a heartbeat: entries (flags byte, name). Append one
 * to `out` (room: 2 + strlen(name)); returns the bytes written. */
size_t wk_wire_export_put(unsigned char *out, bool group, const char *name);

/* Walk a heartbeat's export list: *pos starts at 0; true with the next
 * entry, false at the end or at a malformed entry (*bad set then). */
bool wk_wire_export_next(const wk_msg *m, size_t *pos, wk_str *name, bool *group, bool *bad);

/* The one place where message ids are made (wire.c). For a message that
 * carries an event (`event_name` not NULL: fires, calls, replies, channel
 * publishes) the id comes from worker_trace_remote_send when this process
 * traces, which records the sending end of a cross-process arrow to
 * `destination`; otherwise (and for the node's own messages: heartbeats,
 * ends) it is the node's salt and a counter. */
uint64_t wk_msgid_new(uint32_t node_salt, const char *event_name, const char *destination);
/* A FIRE's id: worker_trace_remote_send's while this process traces (the
 * sending end of the arrow), else 0 (the short FIRE then carries none). */
uint64_t wk_msgid_traced(const char *event_name, const char *destination);

/* The one place where a received message id is consumed (wire.c): the
 * receiving end of the arrow (worker_trace_remote_receive_at), recorded
 * for `receiver`, the local worker the message is fired into, just before
 * it is (NULL: the calling thread's worker). Messages without an event
 * name are not recorded. */
void wk_msgid_seen(const wk_msg *m, worker_t *receiver);

#endif
