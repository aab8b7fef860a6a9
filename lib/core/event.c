/* Event objects (see wk_event.h for the layout and the invariants). */
#include "wk_event.h"

#include <stdlib.h>
#include <string.h>

#include "wk_pool.h"
#include "wk_trace.h"

_Static_assert(sizeof(struct worker_event) == WK_POOL_EVENT_SIZE, "an event is one cache line");
_Static_assert(
    sizeof(wk_traced_event) <= WK_POOL_TRACED_EVENT_SIZE, "traced event outgrew its class");

/* Global: set once by the layer that owns workers, before any event with
 * a sender exists (wk_event_set_sender_ops). */
static wk_sender_ops sender_ops;

void wk_event_set_sender_ops(const wk_sender_ops *ops)
{
    sender_ops = *ops;
}

uint64_t wk_event_sender_id(const worker_event_t *e)
{
    return e->sender ? sender_ops.id(e->sender) : 0;
}

static void event_init(
    worker_event_t *e, const wk_atom *atom, int kind, void *data, worker_t *sender, bool traced)
{
    atomic_init(&e->refs, 1);
    e->kind = (uint8_t)kind;
    e->form = WK_FORM_REF;
    e->inline_size = 0;
    e->traced = traced;
    e->atom = atom;
    e->data = data;
    e->body.release = NULL;
    e->sender = sender ? sender_ops.hold(wk_thread_peek(), sender) : NULL;
}

/* While tracing: the larger object, with a serial (for the sampled ones). */
static __attribute__((noinline, cold)) worker_event_t *event_alloc_traced(
    const wk_atom *atom, int kind, void *data, worker_t *sender)
{
    wk_thread *t = wk_thread_peek();
    if (t) { /* leave the next every - 1 events of this thread untraced */
        t->trace_skip = atomic_load_explicit(&wk_trace_sample_every, memory_order_relaxed) - 1;
        t->trace_generation = atomic_load_explicit(&wk_trace_generation, memory_order_relaxed);
    }
    wk_traced_event *te = wk_pool_alloc(WK_POOL_TRACED_EVENT);
    if (!te)
        return NULL;
    te->serial = wk_trace_serial();
    event_init(&te->event, atom, kind, data, sender, true);
    return &te->event;
}

enum trace_mode { MAY_TRACE, UNTRACED, TRACED };

/* An object with its header set and the data by reference. `mode` is a
 * constant at each call; MAY_TRACE adds the tracing test: one test of the
 * global flag when off, a per-thread countdown when sampling. */
static inline __attribute__((always_inline)) worker_event_t *event_alloc(
    const wk_atom *atom, int kind, void *data, worker_t *sender, const enum trace_mode mode)
{
    if (mode == TRACED || (mode == MAY_TRACE && wk_trace_sample_now(wk_thread_peek())))
        return event_alloc_traced(atom, kind, data, sender);
    worker_event_t *e = wk_pool_alloc(WK_POOL_EVENT);
    if (e)
        event_init(e, atom, kind, data, sender, false);
    return e;
}

static void event_free(worker_event_t *e)
{
    wk_pool_free(e->traced ? WK_POOL_TRACED_EVENT : WK_POOL_EVENT, e);
}

/* A copy on the heap, with its size and release. false: out of memory. */
static bool copy_to_heap(worker_event_t *e, const void *copy, size_t size, wk_release_fn release)
{
    wk_heap_copy *h = malloc(sizeof(*h) + size);
    if (!h)
        return false;
    h->size = size;
    h->release = release;
    memcpy(h->bytes, copy, size);
    e->form = WK_FORM_HEAP;
    e->data = h->bytes;
    return true;
}

static inline __attribute__((always_inline)) worker_event_t *event_new(const wk_atom *atom,
    int kind, void *data, const void *copy, size_t copy_size, wk_release_fn release,
    worker_t *sender, const enum trace_mode mode)
{
    worker_event_t *e = event_alloc(atom, kind, data, sender, mode);
    if (!e || !copy) {
        if (e)
            e->body.release = release;
        return e;
    }
    if (copy_size <= WK_INLINE_PAYLOAD && !release) {
        memcpy(e->body.bytes, copy, copy_size);
        e->form = WK_FORM_INLINE;
        e->inline_size = (uint8_t)copy_size;
        e->data = e->body.bytes;
    } else if (!copy_to_heap(e, copy, copy_size, release)) {
        wk_event_discard(e);
        return NULL;
    }
    return e;
}

worker_event_t *wk_event_new(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender)
{
    return event_new(atom, kind, data, copy, copy_size, release, sender, MAY_TRACE);
}

worker_event_t *wk_event_new_untraced(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender)
{
    return event_new(atom, kind, data, copy, copy_size, release, sender, UNTRACED);
}

worker_event_t *wk_event_new_traced(const wk_atom *atom, int kind, void *data, const void *copy,
    size_t copy_size, wk_release_fn release, worker_t *sender)
{
    return event_new(atom, kind, data, copy, copy_size, release, sender, TRACED);
}

worker_event_t *wk_event_new_in(void *room, const wk_atom *atom, int kind, void *data,
    const void *copy, size_t copy_size, worker_t *sender)
{
    if (!room || (copy && copy_size > WK_INLINE_PAYLOAD))
        return NULL;
    worker_event_t *e = room;
    event_init(e, atom, kind, data, sender, false);
    if (copy) {
        memcpy(e->body.bytes, copy, copy_size);
        e->form = WK_FORM_INLINE;
        e->inline_size = (uint8_t)copy_size;
        e->data = e->body.bytes;
    }
    return e;
}

worker_event_t *wk_event_new_call(
    const wk_atom *atom, int kind, void *data, wk_internal_fn fn, void *arg, worker_t *sender)
{
    worker_event_t *e = event_alloc(atom, kind, data, sender, MAY_TRACE);
    if (e) {
        e->form = WK_FORM_CALL;
        e->body.call.fn = fn;
        e->body.call.arg = arg;
        e->body.call.show = NULL;
        e->body.call.link = NULL;
    }
    return e;
}

static wk_heap_copy *heap_copy_of(const worker_event_t *e)
{
    return (wk_heap_copy *)((char *)e->data - offsetof(wk_heap_copy, bytes));
}

static void recycle(worker_event_t *e)
{
    if (e->form == WK_FORM_HEAP)
        free(heap_copy_of(e));
    worker_t *sender = e->sender;
    event_free(e);
    if (sender)
        sender_ops.release(sender);
}

static void run_release(worker_event_t *e)
{
    if (e->form == WK_FORM_CALL && e->body.call.link) {
        e->body.call.link->dropped(e->body.call.link);
        return;
    }
    wk_release_fn release = e->form == WK_FORM_REF ? e->body.release
        : e->form == WK_FORM_HEAP                  ? heap_copy_of(e)->release
                                                   : NULL;
    if (release)
        release(e->data);
}

void wk_event_unref(worker_event_t *e)
{
    /* A sole holder needs no atomic read-modify-write: nobody else can
     * touch the count. */
    if (atomic_load_explicit(&e->refs, memory_order_acquire) != 1
        && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    run_release(e);
    recycle(e);
}

void wk_event_discard(worker_event_t *e)
{
    recycle(e);
}

const char *worker_event_name(const worker_event_t *e)
{
    return e ? e->atom->name : NULL;
}

void *worker_event_data(const worker_event_t *e)
{
    return e ? e->data : NULL;
}

size_t worker_event_size(const worker_event_t *e)
{
    return e ? wk_event_copied(e) : 0;
}

worker_t *worker_event_target(const worker_event_t *e)
{
    return e ? e->sender : NULL;
}
