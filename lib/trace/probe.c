/* Trace probes that are not inline (see wk_probe.h for the invariants). */
#include "wk_probe.h"

void wk_probe_depth_popped(wk_trace_depth *d, uint32_t worker)
{
    uint64_t pushed = atomic_load_explicit(&d->pushed, memory_order_relaxed);
    d->popped += wk_trace_weight();
    if (d->popped > pushed)
        d->popped = pushed;
    uint64_t depth = pushed - d->popped;
    int level = 64 - __builtin_clzll(depth + 1) - 1;
    if (level != d->level) {
        d->level = level;
        wk_trace_emit(worker, WK_TR_MAILBOX_DEPTH, 0, depth, 0);
    }
}
