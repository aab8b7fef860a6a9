/* Event objects (see wk_event.h for the invariants). */
#include "wk_event.h"

#include <stdlib.h>
#include <string.h>

#include <worker/lifecycle.h>

#include "wk_pool.h"
#include "wk_trace.h"
#include "wk_worker.h"

_Static_assert(sizeof(struct worker_event) <= WK_POOL_EVENT_SIZE, "event outgrew its pool class");

worker_event_t *wk_event_new(
    const wk_atom *atom, int kind, void *data, const void *copy, size_t copy_size, worker_t *sender)
{
    worker_event_t *e = wk_pool_alloc(WK_POOL_EVENT);
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    e->kind = (uint8_t)kind;
    e->payload_on_heap = 0;
    e->size = 0;
    e->atom = atom;
    e->data = data;
    e->release = NULL;
    e->internal = NULL;
    e->internal_arg = NULL;
    e->trace_serial = wk_tracing() ? wk_trace_serial() : 0;
    if (copy) {
        void *dst = e->payload;
        if (copy_size > WK_INLINE_PAYLOAD) {
            dst = malloc(copy_size);
            if (!dst) {
                wk_pool_free(WK_POOL_EVENT, e);
                return NULL;
            }
            e->payload_on_heap = 1;
        }
        memcpy(dst, copy, copy_size);
        e->data = dst;
        e->size = (uint32_t)copy_size;
    }
    e->sender = wk_sender_ref(wk_thread_peek(), sender);
    return e;
}

static void recycle(worker_event_t *e)
{
    if (e->payload_on_heap)
        free(e->data);
    worker_t *sender = e->sender;
    wk_pool_free(WK_POOL_EVENT, e);
    worker_unref(sender);
}

void wk_event_unref(worker_event_t *e)
{
    /* A sole holder needs no atomic read-modify-write: nobody else can
     * touch the count. */
    if (atomic_load_explicit(&e->refs, memory_order_acquire) != 1
        && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (e->release)
        e->release(e->data);
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
    return e ? e->size : 0;
}

worker_t *worker_event_target(const worker_event_t *e)
{
    return e ? e->sender : NULL;
}
