/* The wire format (wk_wire.h, docs/wire-format.md).
 *
 * Concurrency: pure functions over caller-owned buffers; the message id
 * counter is one atomic. */
#include <stdatomic.h>
#include <string.h>

#include "wk_wire.h"

#include <worker/trace.h>

static void put_u16(unsigned char **p, uint16_t v)
{
    (*p)[0] = (unsigned char)v;
    (*p)[1] = (unsigned char)(v >> 8);
    *p += 2;
}

static void put_u32(unsigned char **p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        (*p)[i] = (unsigned char)(v >> (8 * i));
    *p += 4;
}

static void put_u64(unsigned char **p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        (*p)[i] = (unsigned char)(v >> (8 * i));
    *p += 8;
}

static void put_str(unsigned char **p, wk_str s)
{
    put_u16(p, (uint16_t)s.len);
    if (s.len)
        memcpy(*p, s.p, s.len);
    *p += s.len;
}

/* ---- FIRE: the short layout (docs/wire-format.md) ----
 * magic, version, type, flags; the id when traced (flag 1); the sender
 * (flag 2): node (u8 length), wid (LEB128), display name (u8 length); the
 * event name (u8 length); the payload is the rest. */

enum {
    FIRE_HAS_ID = 1,
    FIRE_HAS_SENDER = 2,
    FIRE_SAME_SENDER = 4, /* in a FIRES entry: the previous entry's sender */
    FIRE_FLAGS = FIRE_HAS_ID | FIRE_HAS_SENDER,
    ENTRY_FLAGS = FIRE_FLAGS | FIRE_SAME_SENDER,
};

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(unsigned char **p, uint64_t v)
{
    while (v >= 0x80) {
        *(*p)++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *(*p)++ = (unsigned char)v;
}

static void put_short_str(unsigned char **p, wk_str s)
{
    *(*p)++ = (unsigned char)s.len;
    if (s.len)
        memcpy(*p, s.p, s.len);
    *p += s.len;
}

/* The body of a FIRE (after magic, version and type): flags, id, sender,
 * name, payload. */
static size_t body_size(const wk_msg *m, bool same_sender)
{
    size_t size = 1 + (m->id ? 8 : 0) + 1 + m->name.len + m->size;
    if (m->wid && !same_sender)
        size += 1 + m->node.len + varint_size(m->wid) + 1 + m->sender.len;
    return size;
}

static unsigned char *body_put(const wk_msg *m, bool same_sender, unsigned char *p)
{
    bool sender = m->wid && !same_sender;
    *p++ = (unsigned char)((m->id ? FIRE_HAS_ID : 0) | (sender ? FIRE_HAS_SENDER : 0)
        | (m->wid && same_sender ? FIRE_SAME_SENDER : 0));
    if (m->id)
        put_u64(&p, m->id);
    if (sender) {
        put_short_str(&p, m->node);
        put_varint(&p, m->wid);
        put_short_str(&p, m->sender);
    }
    put_short_str(&p, m->name);
    if (m->size)
        memcpy(p, m->data, m->size);
    return p + m->size;
}

static size_t fire_size(const wk_msg *m)
{
    return 4 + body_size(m, false);
}

static size_t fire_encode(const wk_msg *m, unsigned char *out)
{
    unsigned char *p = out;
    *p++ = 'W';
    *p++ = 'K';
    *p++ = WK_WIRE_VERSION;
    *p++ = WK_MSG_FIRE;
    return (size_t)(body_put(m, false, p) - out);
}

void wk_wire_fires_head(unsigned char *out)
{
    out[0] = 'W';
    out[1] = 'K';
    out[2] = WK_WIRE_VERSION;
    out[3] = WK_MSG_FIRES;
}

size_t wk_wire_entry_size(const wk_msg *m, bool same_sender)
{
    size_t body = body_size(m, same_sender);
    return varint_size(body) + body;
}

size_t wk_wire_entry_put(const wk_msg *m, bool same_sender, unsigned char *out)
{
    unsigned char *p = out;
    put_varint(&p, body_size(m, same_sender));
    return (size_t)(body_put(m, same_sender, p) - out);
}

size_t wk_wire_size(const wk_msg *m)
{
    if (m->type == WK_MSG_FIRE)
        return fire_size(m);
    return WK_WIRE_HEADER + 2 + m->node.len + 8 + 2 + m->sender.len + 2 + m->name.len + 8 + 4 + 4
        + m->size;
}

size_t wk_wire_encode(const wk_msg *m, unsigned char *out)
{
    if (m->type == WK_MSG_FIRE)
        return fire_encode(m, out);
    unsigned char *p = out;
    *p++ = 'W';
    *p++ = 'K';
    *p++ = WK_WIRE_VERSION;
    *p++ = m->type;
    put_u64(&p, m->id);
    put_str(&p, m->node);
    put_u64(&p, m->wid);
    put_str(&p, m->sender);
    put_str(&p, m->name);
    uint64_t bits;
    memcpy(&bits, &m->number, sizeof bits);
    put_u64(&p, bits);
    put_u32(&p, (uint32_t)m->rc);
    put_u32(&p, (uint32_t)m->size);
    if (m->size)
        memcpy(p, m->data, m->size);
    p += m->size;
    return (size_t)(p - out);
}

/* A cursor over the bytes being decoded: every read checks what is left. */
typedef struct cursor {
    const unsigned char *p;
    size_t left;
} cursor;

static bool get_u64(cursor *c, uint64_t *v)
{
    if (c->left < 8)
        return false;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)c->p[i] << (8 * i);
    c->p += 8;
    c->left -= 8;
    return true;
}

static bool get_u32(cursor *c, uint32_t *v)
{
    if (c->left < 4)
        return false;
    *v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16
        | (uint32_t)c->p[3] << 24;
    c->p += 4;
    c->left -= 4;
    return true;
}

static bool get_str(cursor *c, wk_str *s)
{
    if (c->left < 2)
        return false;
    size_t len = (size_t)c->p[0] | (size_t)c->p[1] << 8;
    if (len > WK_WIRE_NAME_MAX || c->left - 2 < len)
        return false;
    s->p = (const char *)c->p + 2;
    s->len = len;
    if (memchr(s->p, '\0', len))
        return false;
    c->p += 2 + len;
    c->left -= 2 + len;
    return true;
}

static bool get_short_str(cursor *c, wk_str *s)
{
    if (c->left < 1 || c->left - 1 < c->p[0])
        return false;
    s->len = c->p[0];
    s->p = (const char *)c->p + 1;
    if (memchr(s->p, '\0', s->len))
        return false;
    c->p += 1 + s->len;
    c->left -= 1 + s->len;
    return true;
}

static bool get_varint(cursor *c, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && c->left > 0; shift += 7) {
        unsigned char b = *c->p++;
        c->left--;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* A FIRE body; `allowed`: the flags this place admits. */
static bool body_decode(cursor *c, wk_msg *m, unsigned allowed)
{
    if (c->left < 1 || (c->p[0] & ~allowed))
        return false;
    unsigned flags = c->p[0];
    c->p++;
    c->left--;
    m->id = 0;
    if ((flags & FIRE_HAS_ID) && !get_u64(c, &m->id))
        return false;
    if ((flags & FIRE_HAS_SENDER) && (flags & FIRE_SAME_SENDER))
        return false;
    if (flags & FIRE_HAS_SENDER) {
        if (!get_short_str(c, &m->node) || m->node.len == 0 || !get_varint(c, &m->wid)
            || m->wid == 0 || !get_short_str(c, &m->sender))
            return false;
    } else if (!(flags & FIRE_SAME_SENDER)) {
        m->node = (wk_str) { NULL, 0 };
        m->sender = (wk_str) { NULL, 0 };
        m->wid = 0;
    } else if (m->wid == 0) {
        return false; /* "the same sender" with none before */
    }
    if (!get_short_str(c, &m->name) || m->name.len == 0)
        return false;
    m->type = WK_MSG_FIRE;
    m->number = -1.0;
    m->data = c->p;
    m->size = c->left;
    return true;
}

static bool fire_decode(cursor *c, wk_msg *m)
{
    return body_decode(c, m, FIRE_FLAGS);
}

/* The next entry of a FIRES region: its length, then its body. */
static bool entry_decode(cursor *c, wk_msg *entry)
{
    uint64_t len;
    if (!get_varint(c, &len) || len == 0 || len > c->left)
        return false;
    cursor body = { c->p, (size_t)len };
    c->p += len;
    c->left -= (size_t)len;
    return body_decode(&body, entry, ENTRY_FLAGS);
}

/* Every entry must parse (a message is refused whole), and there must be
 * at least one. */
static bool fires_decode(cursor *c, wk_msg *m)
{
    m->data = c->p;
    m->size = c->left;
    wk_msg entry = { 0 };
    cursor walk = *c;
    do {
        if (!entry_decode(&walk, &entry))
            return false;
    } while (walk.left > 0);
    return true;
}

bool wk_wire_entry_next(const wk_msg *fires, size_t *pos, wk_msg *entry)
{
    if (*pos >= fires->size)
        return false;
    cursor c = { (const unsigned char *)fires->data + *pos, fires->size - *pos };
    if (!entry_decode(&c, entry))
        return false; /* checked at decode: not reached */
    *pos = fires->size - c.left;
    return true;
}

bool wk_wire_decode(const void *buf, size_t len, wk_msg *m)
{
    const unsigned char *b = buf;
    if (!buf || len < 4 || b[0] != 'W' || b[1] != 'K' || b[2] != WK_WIRE_VERSION
        || b[3] < WK_MSG_FIRE || b[3] > WK_MSG_FIRES)
        return false;
    memset(m, 0, sizeof *m);
    m->type = b[3];
    cursor c = { b + 4, len - 4 };
    if (m->type == WK_MSG_FIRE)
        return fire_decode(&c, m);
    if (m->type == WK_MSG_FIRES)
        return fires_decode(&c, m);
    uint64_t bits;
    uint32_t rc, size;
    if (!get_u64(&c, &m->id) || !get_str(&c, &m->node) || !get_u64(&c, &m->wid)
        || !get_str(&c, &m->sender) || !get_str(&c, &m->name) || !get_u64(&c, &bits)
        || !get_u32(&c, &rc) || !get_u32(&c, &size))
        return false;
    if (size != c.left) /* the payload is the rest, exactly */
        return false;
    memcpy(&m->number, &bits, sizeof bits);
    m->rc = (int32_t)rc;
    m->data = c.p;
    m->size = size;
    return m->node.len > 0;
}

size_t wk_wire_export_put(unsigned char *out, bool group, const char *name)
{
    size_t len = strlen(name);
    out[0] = group ? 1 : 0;
    out[1] = (unsigned char)len;
    memcpy(out + 2, name, len);
    return 2 + len;
}

bool wk_wire_export_next(const wk_msg *m, size_t *pos, wk_str *name, bool *group, bool *bad)
{
    const unsigned char *b = m->data;
    *bad = false;
    if (*pos >= m->size)
        return false;
    if (m->size - *pos < 2 || b[*pos] > 1 || b[*pos + 1] == 0 || m->size - *pos - 2 < b[*pos + 1]) {
        *bad = true;
        return false;
    }
    *group = b[*pos] == 1;
    name->len = b[*pos + 1];
    name->p = (const char *)b + *pos + 2;
    if (memchr(name->p, '\0', name->len)) {
        *bad = true;
        return false;
    }
    *pos += 2 + name->len;
    return true;
}

/* ---- message ids and cross-process trace arrows ---------------------------
 * Every message a node sends carries an id. A message with an event, sent
 * while this process traces, takes the id worker_trace_remote_send gives
 * (unique across processes, recorded with the sender), so the receiving
 * process's REMOTE_RECEIVE pairs with it when worker-trace merges the two
 * traces. Otherwise the id is the node's random salt in the high 32 bits
 * and a process-wide counter in the low 32, so ids of different nodes do
 * not collide either. */

static _Atomic uint32_t msgid_counter;

uint64_t wk_msgid_traced(const char *event_name, const char *destination)
{
    return worker_trace_remote_send(event_name, destination);
}

uint64_t wk_msgid_new(uint32_t node_salt, const char *event_name, const char *destination)
{
    uint64_t traced = event_name ? worker_trace_remote_send(event_name, destination) : 0;
    if (traced)
        return traced;
    uint32_t n = atomic_fetch_add_explicit(&msgid_counter, 1, memory_order_relaxed) + 1;
    return (uint64_t)node_salt << 32 | n;
}

void wk_msgid_seen(const wk_msg *m, worker_t *receiver)
{
    const char *name = NULL;
    char buf[WK_WIRE_NAME_MAX + 1];
    if (m->type == WK_MSG_REPLY) {
        name = "REPLY";
    } else if (m->name.len > 0 && m->name.len <= WK_WIRE_NAME_MAX) {
        memcpy(buf, m->name.p, m->name.len);
        buf[m->name.len] = '\0';
        name = buf;
    }
    if (name && m->id)
        worker_trace_remote_receive_at(receiver, m->id, name);
}
