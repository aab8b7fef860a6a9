/* The library's version, from <worker/version.h> as generated for this
 * build: what a program runs with, next to the macros it was compiled
 * with. */
#include <worker/version.h>

const char *worker_version(void)
{
    return WORKER_VERSION_STRING;
}

int worker_version_number(void)
{
    return WORKER_VERSION_NUMBER;
}
