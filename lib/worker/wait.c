/* The waits of the calling thread's worker (the shortcuts of current.h).
 * Each one builds a frame and runs the loop of loop.c. */
#include "wk_sched.h"
#include "wk_current.h"
#include "wk_event.h"
#include "wk_init.h"
#include "wk_loop.h"
#include "wk_os.h"
#include "wk_trace.h"

/* Run the current worker's loop with frame `f` until `seconds` pass. */
static int run(wk_frame *f, double seconds, void **data)
{
    uint64_t deadline;
    if (!wk_deadline_after(seconds, &deadline))
        return WORKER_EINVAL;
    wk_thread *t = wk_thread_get();
    if (wk_in_pooled(t))
        return WORKER_EWOULDBLOCK;
    worker_t *me = t ? wk_current(t) : NULL;
    if (!me)
        return WORKER_ENOMEM;
    int rc = wk_loop_wait(me, t, f, deadline);
    if (data)
        *data = rc == WORKER_OK && f->matched ? f->matched->data : NULL;
    return rc;
}

int worker_wait_timeout(double seconds)
{
    wk_frame f = { .kind = WK_WAIT_TIME, .trace_kind = WK_TRW_TIMEOUT };
    return run(&f, seconds, NULL);
}

int worker_sleep(double seconds)
{
    return worker_wait_timeout(seconds);
}

int worker_wait_forever(void)
{
    wk_frame f = { .kind = WK_WAIT_TIME, .trace_kind = WK_TRW_FOREVER };
    return run(&f, -1, NULL);
}

int worker_update(void)
{
    wk_frame f = { .kind = WK_WAIT_TIME, .update_only = true };
    return run(&f, -1, NULL);
}

int worker_wait_event(const char *name, double timeout, worker_t *target, void **data)
{
    if (!name || !*name)
        return WORKER_EINVAL;
    if (wk_init() != WORKER_OK)
        return WORKER_ENOMEM;
    const wk_atom *atom = wk_atom_intern(name);
    if (!atom)
        return WORKER_ENOMEM;
    wk_frame f = { .kind = WK_WAIT_EVENT,
        .atom = atom,
        .sender_id = target ? target->id : 0,
        .trace_kind = WK_TRW_EVENT,
        .trace_what = wk_tracing() ? wk_trace_atom(atom) : 0 };
    return run(&f, timeout, data);
}

int worker_wait_until(worker_cond_fn cond, void *userdata, double timeout, void **data)
{
    if (!cond)
        return WORKER_EINVAL;
    wk_frame f
        = { .kind = WK_WAIT_COND, .cond = cond, .userdata = userdata, .trace_kind = WK_TRW_UNTIL };
    return run(&f, timeout, data);
}
