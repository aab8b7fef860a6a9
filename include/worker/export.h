/* Symbol visibility for libworker-actor.
 *
 * The library is built with -fvisibility=hidden; only declarations marked
 * WORKER_API are exported from the shared object. WORKER_BUILDING is defined
 * by the library's own build, never by users. */
#ifndef WORKER_EXPORT_H
#define WORKER_EXPORT_H

#if defined(_WIN32)
#define WORKER_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define WORKER_API __attribute__((visibility("default")))
#else
#define WORKER_API
#endif

#endif
