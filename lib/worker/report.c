/* Reports of failed tasks, through the library's log. */
#include "wk_report.h"

#include "wk_log.h"

void wk_report(const worker_t *w, const char *what, int code)
{
    if (w->quiet)
        return;
    const char *name = worker_err_name(code);
    if (name[8] == '?') /* "WORKER_E?": one of the application's own codes */
        wk_log(WORKER_LOG_ERROR, w->name, "worker '%s' %s: %d (%s)", w->name, what, code,
            worker_strerror(code));
    else
        wk_log(WORKER_LOG_ERROR, w->name, "worker '%s' %s: %s (%s)", w->name, what, name,
            worker_strerror(code));
}
