/* Channels: fan one event out to every subscribed worker.
 *
 * A publish builds one event object and queues it on every subscriber's
 * mailbox: no copy per subscriber; `release` runs once, after the last
 * subscriber has handled it. A channel does not keep its subscribers
 * alive: a worker that is freed leaves every channel it was on. */
#ifndef WORKER_CHANNEL_H
#define WORKER_CHANNEL_H

#include <worker/event.h>
#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct worker_channel worker_channel_t;

/* NULL when memory runs out. */
WORKER_API worker_channel_t *worker_channel_new(void);

/* Subscribe / unsubscribe `w` (NULL: the current worker). Any thread, also
 * while others publish. Subscribing twice is a no-op (WORKER_OK).
 * Unsubscribing a worker that is not subscribed: WORKER_EINVAL. Out of
 * memory: WORKER_ENOMEM, and the subscription is unchanged. */
WORKER_API int worker_channel_sub(worker_channel_t *ch, worker_t *w);
WORKER_API int worker_channel_unsub(worker_channel_t *ch, worker_t *w);

/* Publish: the number of subscribers whose mailbox accepted the event (a
 * stopped subscriber is skipped and not counted), or a negative error. On
 * success `release` (pub_ex) runs once when no subscriber holds the event
 * any more, at once when none took it. bubble/broadcast are not allowed
 * here (WORKER_EINVAL). Out of memory for the event: WORKER_ENOMEM, nothing
 * is queued and `release` is not called; a subscriber whose queue entry
 * cannot be made is skipped like a stopped one. Any thread. With `wait`
 * (pub_ex) inside a pooled worker, which may not wait: WORKER_EWOULDBLOCK,
 * nothing published. */
WORKER_API int worker_channel_pub(worker_channel_t *ch, const char *name, void *data);
WORKER_API int worker_channel_pub_ex(
    worker_channel_t *ch, const char *name, void *data, const worker_fire_opts *opts);

/* The number of subscribers. */
WORKER_API size_t worker_channel_count(const worker_channel_t *ch);

/* Unsubscribe everyone and free the channel. No call on it may be running.
 * NULL is ignored. */
WORKER_API void worker_channel_free(worker_channel_t *ch);

#ifdef __cplusplus
}
#endif
#endif
