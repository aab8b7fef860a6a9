/* Tracing: record what workers do into a file for tools/worker-trace.
 *
 * Off by default. Turned on by the environment variable WORKER_TRACE=path
 * when the library is loaded (and then stopped at process exit), or by
 * worker_trace_start(). Each thread records into its own buffer; buffers
 * reach the file when full, at worker_trace_stop(), and at thread exit.
 * The file format is described in docs/trace-format.md. */
#ifndef WORKER_TRACE_H
#define WORKER_TRACE_H

#include <stdint.h>

#include <worker/export.h>
#include <worker/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start recording into `path` (created or truncated). Any thread.
 * WORKER_EINVAL: NULL or empty path; WORKER_ESTATE: already recording;
 * WORKER_EAGAIN: the file could not be opened (errno tells why);
 * WORKER_ENOMEM: the library's one-time set-up ran out of memory (it is
 * retried by the next call). Records that find no memory are dropped. */
WORKER_API int worker_trace_start(const char *path);

/* Record the message flow of only 1 event in `every` (per sending thread:
 * its first event in the trace, then every `every`-th): fire, reject, delivery, listener
 * runs and mailbox depth (scaled by `every`). Worker lifecycle, waits,
 * pauses, timers, futures and defers are always recorded. For long runs of
 * busy services where a full trace costs too much (docs/performance.md,
 * P8). Default 1 (every event); the environment variable
 * WORKER_TRACE_SAMPLE=N sets it for WORKER_TRACE. Applies to the next
 * worker_trace_start(). WORKER_EINVAL: 0; WORKER_ESTATE: recording now. */
WORKER_API int worker_trace_sample(unsigned every);

/* Stop recording: every thread's buffered records are written, then the end
 * marker, and the file is closed. Any thread. WORKER_ESTATE when not
 * recording. A thread that exits meanwhile has its records written before
 * the end marker or not at all (never after it, nor into a next trace). */
WORKER_API int worker_trace_stop(void);

/* For transports that carry messages to other processes (a node on NATS),
 * so that `worker-trace view a.wktrace b.wktrace` draws an arrow from the
 * send in one process's trace to the receive in the other's.
 *
 * worker_trace_remote_send: call it as the message leaves for another
 * process, on the sending thread. While tracing, it records a REMOTE_SEND
 * (attributed to the calling thread's worker, with `event_name` and
 * `destination`, which may be NULL) and returns the message's id: never 0,
 * unique across processes (a random 64-bit start per process, then
 * consecutive). Put the id on the wire with the message. When not
 * tracing it records nothing and returns 0 (nothing to carry). */
WORKER_API uint64_t worker_trace_remote_send(const char *event_name, const char *destination);

/* worker_trace_remote_receive: call it in the receiving process, on the
 * transport's thread, just before the message is fired into a local worker,
 * with the id that came on the wire. While tracing and for an id other
 * than 0, it records a REMOTE_RECEIVE (attributed to the calling thread's
 * worker); otherwise it does nothing. */
WORKER_API void worker_trace_remote_receive(uint64_t id, const char *event_name);

/* worker_trace_remote_receive attributed to `receiver`, the worker the
 * message is about to be fired into: for a transport whose receiving
 * thread runs no worker of its own (NULL receiver: the calling thread's
 * worker, as worker_trace_remote_receive). */
WORKER_API void worker_trace_remote_receive_at(
    worker_t *receiver, uint64_t id, const char *event_name);

#ifdef __cplusplus
}
#endif
#endif
