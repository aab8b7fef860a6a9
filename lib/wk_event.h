/* Event objects: pooled, reference counted, with small payloads inline.
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
#include <stdint.h>

#include <worker/event.h>

#include "wk_atom.h"

#define WK_INLINE_PAYLOAD 48

enum wk_event_kind {
    WK_EV_USER = 0, /* fired by users: counts against mailbox_limit */
    WK_EV_LIBRARY = 1, /* the library's own named events: never refused for a full mailbox */
    WK_EV_INTERNAL = 2, /* commands to the owner thread, not shown to listeners */
    WK_EV_LINK = 3, /* supervision messages (CHILD_THREAD_*): still admitted
                       while the receiver is ending, until it closes for good */
};

typedef void (*wk_internal_fn)(worker_t *owner, worker_event_t *e);

struct worker_event {
    _Atomic uint32_t refs;
    uint8_t kind;
    uint8_t payload_on_heap; /* copied payload larger than the inline buffer */
    uint32_t size; /* bytes copied in; 0 when not copied */
    const wk_atom *atom;
    void *data;
    worker_t *sender; /* holds a reference */
    void (*release)(void *data);
    wk_internal_fn internal; /* run by the owner after the listeners (if set) */
    void *internal_arg;
    uint64_t trace_serial; /* 0 unless tracing was on when it was made */
    _Alignas(16) unsigned char payload[WK_INLINE_PAYLOAD];
};

/* A new event with one reference; `copy` (may be NULL) is copied in and
 * then `data` points at the copy. Takes a reference on `sender` (may be
 * NULL). NULL when memory runs out. */
worker_event_t *wk_event_new(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, worker_t *sender);

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
