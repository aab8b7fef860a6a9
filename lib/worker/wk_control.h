/* Stop and pause (control.c): what STOP_THREAD, PAUSE_THREAD and
 * RESUME_THREAD do, beside the public calls that send them. */
#ifndef WK_CONTROL_H
#define WK_CONTROL_H

#include "wk_worker.h"

/* What a stop does: the worker exits at its waits, or, for a root worker,
 * its children are stopped (and the non-daemon ones awaited). Owner thread. */
void wk_control_stop(worker_t *w, wk_thread *t);
/* Give STOP_THREAD and PAUSE_THREAD their actions (wk_init). */
void wk_control_install(void);

#endif
