/* Error names and messages, from the one table in <worker/error.h>. */
#include <stdio.h>

#include "wk_worker.h"

const char *worker_strerror(int code)
{
    switch (code) {
#define MESSAGE_CASE(name, value, message)                                                         \
    case value:                                                                                    \
        return message;
        WORKER_ERROR_TABLE(MESSAGE_CASE)
#undef MESSAGE_CASE
    default:
        return "unknown error code";
    }
}

const char *worker_err_name(int code)
{
    switch (code) {
#define NAME_CASE(name, value, message)                                                            \
    case value:                                                                                    \
        return #name;
        WORKER_ERROR_TABLE(NAME_CASE)
#undef NAME_CASE
    default:
        return "WORKER_E?";
    }
}

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
