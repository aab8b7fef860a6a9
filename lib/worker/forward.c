/* Forwarding workers (worker_opts.forward): the worker side of the
 * mailbox's forwarding level (lib/core/mailbox_forward.c, whose invariants
 * hold here). The hook runs on the firing thread and reads only the
 * worker's immutable `forward` and `forward_arg`; a request is shown to it
 * only if it has not expired, as a queued one is shown to listeners; the
 * push's reference to the event is released when the hook returns. */
#include "wk_event.h"
#include "wk_probe.h"
#include "wk_worker.h"

static void forward_event(wk_mailbox *mb, worker_event_t *e, wk_thread *t)
{
    (void)t;
    worker_t *w = (worker_t *)((char *)mb - offsetof(worker_t, mb));
    if (wk_traced(e)) {
        wk_probe_depth_popped(&w->depth, (uint32_t)w->id);
        wk_probe_deliver((uint32_t)w->id, wk_event_serial(e),
            e->sender ? (uint32_t)e->sender->id : 0, e->atom);
    }
    if (e->form != WK_FORM_CALL || e->body.call.show(w, e))
        w->forward(e, w->forward_arg);
    wk_event_unref(e);
}

void wk_worker_make_forwarding(worker_t *w, worker_forward_fn forward, void *arg)
{
    w->forward = forward;
    w->forward_arg = arg;
    wk_mailbox_make_forwarding(&w->mb, forward_event);
}
