/* worker_trace_remote_send and worker_trace_remote_receive: the records a
 * transport makes when a message crosses processes (docs/trace-format.md,
 * REMOTE_SEND and REMOTE_RECEIVE). They live in the worker layer because
 * the records name the calling thread's worker. */
#include <worker/trace.h>

#include "wk_probe.h"
#include "wk_thread.h"
#include "wk_worker.h"

/* The calling thread's worker, without making a root worker for a thread
 * that runs none (0 then). */
static uint32_t calling_worker(void)
{
    wk_thread *t = wk_thread_peek();
    return t && t->current ? (uint32_t)t->current->id : 0;
}

uint64_t worker_trace_remote_send(const char *event_name, const char *destination)
{
    if (!wk_tracing())
        return 0;
    uint64_t id = wk_trace_remote_id();
    wk_probe_remote_send(calling_worker(), id, event_name, destination);
    return id;
}

void worker_trace_remote_receive(uint64_t id, const char *event_name)
{
    if (id == 0 || !wk_tracing())
        return;
    wk_probe_remote_receive(calling_worker(), id, event_name);
}

void worker_trace_remote_receive_at(worker_t *receiver, uint64_t id, const char *event_name)
{
    if (id == 0 || !wk_tracing())
        return;
    wk_probe_remote_receive(receiver ? (uint32_t)receiver->id : calling_worker(), id, event_name);
}
