/* Error names and messages, from the one table in <worker/error.h>. */
#include <worker/error.h>

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
