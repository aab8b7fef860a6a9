/* Reports of failed tasks, through the library's log (report.c). */
#ifndef WK_REPORT_H
#define WK_REPORT_H

#include "wk_worker.h"

/* "libworker-actor: worker 'name' <what>: CODE (message)", unless quiet. */
void wk_report(const worker_t *w, const char *what, int code);

#endif
