/* The event loop of a worker (loop.c). Owner thread only. */
#ifndef WK_LOOP_H
#define WK_LOOP_H

#include "wk_worker.h"

/* Run w's loop until frame `f` is done, w must leave (WORKER_EXIT), or the
 * monotonic deadline passes (WK_NO_DEADLINE: none). */
int wk_loop_wait(worker_t *w, wk_thread *t, wk_frame *f, uint64_t deadline_ns);
/* Handle every event already queued, then return. */
void wk_loop_drain(worker_t *w, wk_thread *t);
/* Release the event that kept the last wait's data valid. */
void wk_drop_last_returned(wk_thread *t);

#endif
