/* Reports on stderr. */
#include "wk_report.h"

#include <stdio.h>

void wk_report(const worker_t *w, const char *what, int code)
{
    if (w->quiet)
        return;
    const char *name = worker_err_name(code);
    if (name[8] == '?') /* "WORKER_E?": one of the application's own codes */
        fprintf(stderr, "libworker-actor: worker '%s' %s: %d (%s)\n", w->name, what, code,
            worker_strerror(code));
    else
        fprintf(stderr, "libworker-actor: worker '%s' %s: %s (%s)\n", w->name, what, name,
            worker_strerror(code));
}
