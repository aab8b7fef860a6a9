/* Waiting for room in a full mailbox (room.c): worker_fire_opts.wait and
 * channel publishes with a wait. Sender's thread only. */
#ifndef WK_ROOM_H
#define WK_ROOM_H

#include "wk_worker.h"

typedef struct wk_room {
    uint64_t deadline_ns; /* WK_NO_DEADLINE: wait as long as it takes */
} wk_room;

/* Start a wait of `seconds` (< 0: as long as it takes). WORKER_EINVAL for
 * NaN. */
int wk_room_begin(wk_room *rw, double seconds);

/* `to` refused a push for want of room: run the calling thread's worker
 * loop until `to` may have room (it took events out, or closed), then
 * return WORKER_OK to try again; WORKER_EFULL when the time ran out,
 * WORKER_EXIT when the caller was asked to stop, WORKER_ENOMEM. */
int wk_room_wait(wk_room *rw, worker_t *to, wk_thread *t);

#endif
