/* Opaque handle types shared by every libworker-actor header. */
#ifndef WORKER_TYPES_H
#define WORKER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct worker worker_t; /* a worker: thread + loop + mailbox */
typedef struct worker_event worker_event_t; /* an event being delivered */
typedef struct worker_listener worker_listener_t; /* a registered listener */

#endif
