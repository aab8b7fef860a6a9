/* Event objects: pooled, reference counted, with small payloads inline.
 *
 * Layout: one cache line (64 bytes) per event: a 32-byte header and a
 * 32-byte body that holds whichever of these the event's form needs:
 * - WK_FORM_REF: `data` is the caller's pointer; the body holds `release`;
 * - WK_FORM_INLINE: a copy of up to WK_INLINE_PAYLOAD bytes, in the body;
 * - WK_FORM_HEAP: a larger copy (or a copy with a release function) in a
 *   malloc'd wk_heap_copy block, which also holds its size and release;
 * - WK_FORM_CALL: no copy; the body holds the function the owner runs after
 *   the listeners and its argument (library commands, timers, later), and,
 *   for an event shown to listeners, the function that decides, as the
 *   owner takes it, whether it is shown at all; a request (worker_call)
 *   also links its wk_link there: the state of the ask, kept outside the
 *   cache line by the layer that asks.
 * Events made while tracing come from a larger pool class that adds the
 * trace serial after the body (`traced` says so).
 *
 * Invariants:
 * - `refs` counts the holders: each mailbox the event is queued on (until
 *   that worker has handled it), each wait that matched it, and the firing
 *   call while it fans the event out. The holder that drops it to zero runs
 *   `release` once, drops the sender reference and returns the object to its
 *   pool.
 * - Every other field is written before the event is first published to a
 *   mailbox and read-only afterwards (publication orders it).
 */
#ifndef WK_EVENT_H
#define WK_EVENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <worker/event.h>

#include "wk_atom.h"
#include "wk_thread.h"

#define WK_INLINE_PAYLOAD 32

enum wk_event_kind {
    WK_EV_USER = 0, /* fired by users: counts against mailbox_limit */
    WK_EV_LIBRARY = 1, /* the library's own named events: never refused for a full mailbox */
    WK_EV_INTERNAL = 2, /* commands to the owner thread, not shown to listeners */
    WK_EV_LINK = 3, /* supervision messages (CHILD_THREAD_*): still admitted
                       while the receiver is ending, until it closes for good */
};

enum wk_event_form { WK_FORM_REF = 0, WK_FORM_INLINE, WK_FORM_HEAP, WK_FORM_CALL };

typedef void (*wk_internal_fn)(worker_t *owner, worker_event_t *e);
/* Runs on the owner as it takes a shown WK_FORM_CALL event, before the
 * listeners: false and no listener or wait sees the event (its `fn` still
 * runs after). */
typedef bool (*wk_show_fn)(worker_t *owner, worker_event_t *e);
typedef void (*wk_release_fn)(void *data);

/* A request's state outside the event (a WK_FORM_CALL event may link one).
 * Owned by the layer that made it; the event only reads `copy_size` and,
 * when its last holder drops it, calls `dropped(link)` once (instead of a
 * release: the link owns the data). A discarded event (never accepted)
 * does not call it: the maker keeps the link. */
typedef struct wk_link {
    void (*dropped)(struct wk_link *link);
    size_t copy_size; /* bytes of the request's data copied by the maker */
} wk_link;

/* A copy that does not fit inline; `data` points at `bytes`. */
typedef struct wk_heap_copy {
    size_t size;
    wk_release_fn release;
    _Alignas(16) unsigned char bytes[];
} wk_heap_copy;

struct worker_event {
    _Atomic uint32_t refs;
    uint8_t kind; /* enum wk_event_kind */
    uint8_t form; /* enum wk_event_form */
    uint8_t inline_size; /* WK_FORM_INLINE: bytes copied in */
    uint8_t traced; /* a wk_traced_event: made while tracing */
    const wk_atom *atom;
    worker_t *sender; /* holds a reference */
    void *data;
    union {
        _Alignas(16) unsigned char bytes[WK_INLINE_PAYLOAD]; /* WK_FORM_INLINE */
        wk_release_fn release; /* WK_FORM_REF (may be NULL) */
        struct {
            wk_internal_fn fn;
            void *arg;
            wk_show_fn show; /* kinds shown to listeners only; else NULL */
            wk_link *link; /* a request's state; else NULL */
        } call; /* WK_FORM_CALL */
    } body;
};

typedef struct wk_traced_event {
    struct worker_event event;
    uint64_t serial; /* the id trace records carry */
} wk_traced_event;

/* How an event holds its sender: the worker layer (which owns workers) sets
 * these once, before the first event with a sender is made. `hold` takes a
 * reference for the event (on the calling thread `t`, which may be NULL);
 * `release` drops it when the event is recycled. */
typedef struct wk_sender_ops {
    worker_t *(*hold)(wk_thread *t, worker_t *sender);
    void (*release)(worker_t *sender);
    uint64_t (*id)(const worker_t *sender); /* the worker's unique id */
} wk_sender_ops;
void wk_event_set_sender_ops(const wk_sender_ops *ops);

/* The id of the event's sender; 0 when it has none. */
uint64_t wk_event_sender_id(const worker_event_t *e);

/* A new event with one reference, data by reference (WK_FORM_REF) or, when
 * `copy` is set, a copy of `copy_size` bytes that `data` then points at.
 * `release` (may be NULL) runs once with `data` when the last holder drops
 * it. Takes a reference on `sender` (may be NULL). NULL when memory runs
 * out. */
worker_event_t *wk_event_new(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender);

/* The same, untraced or traced whatever the trace state: for a caller that
 * has decided already (the fire path decides once, wk_trace_sample_now, for
 * both the event and its delivery). */
worker_event_t *wk_event_new_untraced(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender);
worker_event_t *wk_event_new_traced(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender);

/* An untraced event made in `room`, a WK_POOL_EVENT object taken in advance
 * (wk_pool_alloc), for a notice whose sending must not depend on memory:
 * data by reference, or a copy of at most WK_INLINE_PAYLOAD bytes (no
 * release). Takes a reference on `sender`. NULL (room untouched) when
 * `room` is NULL or the copy does not fit. */
worker_event_t *wk_event_new_in(void *room, const wk_atom *atom, int kind, void *data,
    const void *copy, size_t copy_size, worker_t *sender);

/* A new WK_FORM_CALL event: `fn(owner, e)` runs on the receiving thread
 * after the listeners (if the kind shows it to them). Its `show` and `link` are NULL:
 * an event of a shown kind must get one before it is queued. */
worker_event_t *wk_event_new_call(
    const wk_atom *atom, int kind, void *data, wk_internal_fn fn, void *arg, worker_t *sender);

static inline wk_internal_fn wk_event_call_fn(const worker_event_t *e)
{
    return e->form == WK_FORM_CALL ? e->body.call.fn : NULL;
}

static inline void *wk_event_call_arg(const worker_event_t *e)
{
    return e->body.call.arg;
}

/* Bytes copied in (0 when the data is by reference). */
static inline size_t wk_event_copied(const worker_event_t *e)
{
    if (e->form == WK_FORM_INLINE)
        return e->inline_size;
    if (e->form == WK_FORM_HEAP)
        return ((const wk_heap_copy *)((const char *)e->data - offsetof(wk_heap_copy, bytes)))
            ->size;
    if (e->form == WK_FORM_CALL && e->body.call.link)
        return e->body.call.link->copy_size;
    return 0;
}

/* The trace serial; 0 for events made while tracing was off. */
static inline uint64_t wk_event_serial(const worker_event_t *e)
{
    return e->traced ? ((const wk_traced_event *)e)->serial : 0;
}

static inline void wk_event_ref(worker_event_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

/* Drop one reference; the last runs release and recycles the object. */
void wk_event_unref(worker_event_t *e);

/* Free an event that was never accepted anywhere: release is not called
 * (the caller keeps ownership of its data). */
void wk_event_discard(worker_event_t *e);

#endif
