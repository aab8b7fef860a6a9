/* The on-disk layout of a libworker-actor trace file, version 2.
 *
 * Shared by the library's writer (lib/) and the reader in
 * tools/worker-trace/. Plain C11: types, constants and one inline checksum,
 * nothing that needs the library. docs/trace-format.md describes every byte;
 * keep the two in step and bump WK_TRACE_VERSION on any incompatible change.
 *
 *   file   = file header (64 bytes), then chunks until the end of the file
 *   chunk  = chunk header (32 bytes), then `count` slots of 32 bytes
 *   slot   = one record, or a piece of the string of a preceding NAME record
 *
 * All integers are in the writer's byte order (little-endian on every
 * platform we build for); the reader checks `endian` and refuses others.
 * The last chunk of a complete trace holds one TRACE_END record.
 *
 * Writer model: every thread fills its own buffer of slots (single writer,
 * no atomics), and a flush writes one chunk (header + slots) to the file in
 * one write(2). Chunks of different threads interleave in the file, so the
 * reader sorts records by time and resolves names after reading them all.
 */
#ifndef WK_TRACE_FORMAT_H
#define WK_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* --- file header ------------------------------------------------------------ */

#define WK_TRACE_MAGIC "WKTRACE" /* the 8 bytes "WKTRACE\0" */
#define WK_TRACE_MAGIC_LEN 8
#define WK_TRACE_VERSION 2 /* readers refuse any other version */
#define WK_TRACE_MINOR 2 /* compatible additions (new record kinds, new flags) */
#define WK_TRACE_ENDIAN_MARK 0x01020304u
#define WK_TRACE_CLOCK_MONOTONIC 1 /* clock_gettime(CLOCK_MONOTONIC), in ns */

typedef struct wk_trace_file_header {
    char magic[WK_TRACE_MAGIC_LEN]; /*  0: "WKTRACE\0" */
    uint16_t version; /*  8: WK_TRACE_VERSION */
    uint16_t minor; /* 10: WK_TRACE_MINOR of the writer */
    uint16_t header_size; /* 12: sizeof(wk_trace_file_header) = 64 */
    uint16_t record_size; /* 14: sizeof(wk_trace_record) = 32 */
    uint32_t endian; /* 16: WK_TRACE_ENDIAN_MARK in writer order */
    uint32_t clock; /* 20: WK_TRACE_CLOCK_MONOTONIC */
    uint64_t start_ns; /* 24: that clock when tracing started */
    uint64_t start_realtime_ns; /* 32: CLOCK_REALTIME at the same moment; 0 unknown */
    uint32_t pid; /* 40: getpid() of the traced process */
    uint32_t flags; /* 44: 0 (no flag defined in version 2) */
    uint32_t sample_every; /* 48: 1 in this many events has its flow recorded; 1 = all */
    uint32_t reserved32; /* 52: 0 */
    uint64_t boot_id; /* 56 (minor 2): the host's boot, the first 16 hex digits of
                         /proc/sys/kernel/random/boot_id; 0 unknown. Equal in two
                         traces: one host since one boot, so one CLOCK_MONOTONIC */
} wk_trace_file_header; /* 64 bytes */

/* --- chunk header ----------------------------------------------------------- */

#define WK_TRACE_CHUNK_MAGIC 0x4b43574bu /* the bytes "WKCK" */
/* No chunk holds more slots than this (128 MiB); readers refuse more. */
#define WK_TRACE_MAX_CHUNK_RECORDS (1u << 22)

typedef struct wk_trace_chunk_header {
    uint32_t magic; /*  0: WK_TRACE_CHUNK_MAGIC */
    uint32_t thread; /*  4: the writing thread's trace number, from 1, never reused */
    uint32_t count; /*  8: slots that follow, 1..WK_TRACE_MAX_CHUNK_RECORDS */
    uint32_t seq; /* 12: this thread's chunk number: 0, 1, 2, ... */
    uint64_t dropped; /* 16: records this thread dropped since its previous chunk */
    uint32_t checksum; /* 24: wk_trace_checksum() of the `count` slots */
    uint32_t reserved; /* 28: 0 */
} wk_trace_chunk_header; /* 32 bytes */

/* --- records ---------------------------------------------------------------- */

typedef struct wk_trace_record {
    uint64_t ts; /*  0: ns on the header's clock (absolute, not from start) */
    uint32_t worker; /*  8: the worker the record is about (see each kind); 0 none */
    uint16_t kind; /* 12: enum wk_trace_kind */
    uint16_t flags; /* 14: per kind */
    uint64_t a; /* 16: per kind */
    uint64_t b; /* 24: per kind */
} wk_trace_record; /* 32 bytes */

/* Ids in records:
 * - worker ids: the library's worker id (low 32 bits), from 1; 0 = none
 *   (a thread the library does not manage, or no sender).
 * - string ids: from 1, defined once per trace by a NAME record; 0 = none.
 * - event serials: unique per fired event within the trace, never 0; every
 *   mailbox a fire reaches (bubble/broadcast hops, channel fan-out) shares it.
 * - timer, future, defer and channel ids: unique per object within the trace.
 * Pairs of 32-bit values in `a`/`b` are packed as low | (high << 32); codes
 * (err, result, ret) are int64_t stored as uint64_t. */
enum wk_trace_kind {
    /* structure */
    WK_TR_NAME = 1, /* a: string id; b: byte length (1..WK_TRACE_MAX_NAME);
                       the next ceil(b / 32) slots of the same chunk hold
                       the bytes (UTF-8, no NUL, zero padded); worker: 0 */
    WK_TR_THREAD = 2, /* a thread's first record. a: OS thread id (gettid);
                         b: string id of its name or 0; worker: its root worker or 0 */
    WK_TR_TRACE_END = 3, /* alone in the last chunk of a complete trace.
                           a: chunks written before it; b: records dropped in all */
    WK_TR_DROPPED = 4, /* a: records this thread dropped just before this point */

    /* workers */
    WK_TR_WORKER_CREATED = 16, /* worker: new id; a: parent id (0 none); b: name string id;
                                  flags: WK_TRF_DAEMON | WK_TRF_ROOT | WK_TRF_MAIN */
    WK_TR_WORKER_STARTED = 17, /* worker; a: OS tid of the thread running it;
                                  flags: WK_TRF_OVERLAY (worker_start_overlay) */
    WK_TR_WORKER_ENDED = 18, /* worker; a: (int64) err: 0 ok, WORKER_EXIT, or the task's code */
    WK_TR_WORKER_NAME = 19, /* worker; a: name string id (later name than CREATED's) */

    /* events */
    WK_TR_FIRE = 32, /* one per mailbox the event was queued on. worker: sender;
                        a: serial; b: receiver | event name id << 32;
                        flags: WK_TRF_BUBBLE .. WK_TRF_COPY */
    WK_TR_DELIVER = 33, /* the receiver's loop took the event. worker: receiver;
                           a: serial; b: sender | event name id << 32 */
    WK_TR_LISTENER_START = 34, /* worker: receiver; a: serial;
                                  b: listener name id | event name id << 32;
                                  flags (minor 2): WK_TRF_NAME_GIVEN, WK_TRF_NAME_SYMBOL */
    WK_TR_LISTENER_END = 35, /* worker: receiver; a: serial; b: listener name id |
                                (uint32) ret << 32; flags: WK_TRF_ERROR when ret != 0 */
    WK_TR_REJECT = 36, /* fire refused. worker: sender; a: serial;
                          b: receiver | event name id << 32; flags: enum wk_trace_reject */
    WK_TR_CHANNEL_PUBLISH = 37, /* worker: publisher; a: serial (shared by its FIREs);
                                   b: channel id | event name id << 32;
                                   flags: workers reached (saturates at 65535) */

    /* waits and control */
    WK_TR_WAIT_BEGIN = 48, /* worker; flags: enum wk_trace_wait; a: timeout ns
                              (UINT64_MAX none); b: what is waited for: event name id
                              (EVENT), worker id (THREAD, JOIN), future/defer id */
    WK_TR_WAIT_END = 49, /* worker; flags: the same kind; a: (int64) result; b: as BEGIN */
    WK_TR_PAUSE = 50, /* the worker handled PAUSE_THREAD. a: requester id */
    WK_TR_RESUME = 51, /* the worker handled RESUME_THREAD. a: requester id */
    WK_TR_STOP = 52, /* the worker handled STOP_THREAD. a: requester id */

    /* timers, futures, defers */
    WK_TR_TIMER_ARMED = 64, /* worker: where it runs; a: timer id; b: delay ns */
    WK_TR_TIMER_FIRED = 65, /* worker; a: timer id; b: lateness ns */
    WK_TR_TIMER_CANCELLED = 66, /* worker; a: timer id; flags: WK_TRF_TOO_LATE */
    WK_TR_FUTURE_SETTLED = 67, /* worker: the future's worker; a: future id; b: (int64) code */
    WK_TR_DEFER_SETTLED = 68, /* worker: settling worker or 0; a: defer id;
                                 b: (int64) code (0 resolved);
                                 flags: WK_TRF_REJECTED | WK_TRF_IGNORED */

    /* mailboxes */
    WK_TR_MAILBOX_DEPTH = 80, /* worker: mailbox owner; a: depth (recorded when
                                 floor(log2(depth + 1)) changes) */

    /* requests (minor 1) */
    WK_TR_REQUEST_EXPIRED = 96, /* a request (worker_call) taken after its deadline
                                   and not delivered. worker: receiver; a: serial;
                                   b: sender | event name id << 32 */

    /* backpressure (minor 2) */
    WK_TR_EVENT_DROPPED = 97, /* a user event dropped unhandled by its receiver's
                                 WORKER_FULL_DROP_OLDEST. worker: receiver;
                                 a: serial; b: sender | event name id << 32 */

    /* supervision (minor 2) */
    WK_TR_CHILD_RESTART = 112, /* a supervisor starts its child again. worker: the
                                  child; a: the supervisor | restarts so far << 32;
                                  b: (int64) the reason: err of the end that made the
                                  restart (the child's own, or the group member's
                                  that failed); flags: WK_TRF_GROUP */
    WK_TR_SUPERVISOR_STARTED = 113, /* a supervisor starts its run (each run: a
                                       supervisor under a supervisor is restarted
                                       too). worker: the supervisor; a: strategy
                                       (WORKER_ONE_FOR_ONE 0, ONE_FOR_ALL 1,
                                       REST_FOR_ONE 2) | intensity << 32;
                                       b: period ms | backoff ms << 32 (each
                                       capped at UINT32_MAX) */

    /* pooled workers (minor 2) */
    WK_TR_SLICE_BEGIN = 114, /* a scheduler thread takes a pooled worker for a
                                slice (one batch of events, or a step of its end).
                                worker: the pooled worker; a: the scheduler
                                thread's index (its OS tid is that of the
                                record's chunk) */
    WK_TR_SLICE_END = 115, /* the slice is over. worker; a: the index; flags:
                              WK_TRF_ENDED when the worker's run ended in it */
    /* 116-127: reserved (minor 2); a reader that does not know one skips it
       (WK_TR_RESERVED_FIRST..LAST) */

    /* across processes (minor 2): a message a transport carries to another
       process, paired by its message id (worker_trace_remote_send) */
    WK_TR_REMOTE_SEND = 128, /* worker: the sender (the calling thread's worker,
                                0 none); a: message id (never 0, unique across
                                processes); b: event name id | destination
                                string id << 32 */
    WK_TR_REMOTE_RECEIVE = 129, /* the transport is about to fire the message
                                   into a local worker. worker: the calling
                                   thread's worker (0 none); a: message id
                                   (as REMOTE_SEND's); b: event name id */
};

/* The highest kind a version-2.WK_TRACE_MINOR reader knows. */
#define WK_TR_KIND_MAX 129
/* Kinds set aside for additions of this minor that a reader may not know
 * yet: skipped, not taken for corruption. */
#define WK_TR_RESERVED_FIRST 116
#define WK_TR_RESERVED_LAST 127

/* flags of WORKER_CREATED / WORKER_STARTED */
#define WK_TRF_DAEMON 0x1u
#define WK_TRF_ROOT 0x2u
#define WK_TRF_MAIN 0x4u
#define WK_TRF_OVERLAY 0x1u
#define WK_TRF_POOLED 0x2u /* WORKER_STARTED (minor 2): it runs in slices on the scheduler's threads */

/* flags of SLICE_END */
#define WK_TRF_ENDED 0x1u

/* flags of CHILD_RESTART */
#define WK_TRF_GROUP 0x1u /* restarted with its group (ONE_FOR_ALL, REST_FOR_ONE) */

/* flags of FIRE */
#define WK_TRF_BUBBLE 0x1u /* the fire asked for bubble */
#define WK_TRF_BROADCAST 0x2u /* the fire asked for broadcast */
#define WK_TRF_CHANNEL 0x4u /* a delivery of a channel publish */
#define WK_TRF_HOP_UP 0x8u /* reached this receiver by bubbling from its child */
#define WK_TRF_HOP_DOWN 0x10u /* reached this receiver by broadcast from its parent */
#define WK_TRF_LIBRARY 0x20u /* one of the library's own events (STOP_THREAD, ...) */
#define WK_TRF_COPY 0x40u /* the data was copied into the event */

/* flags of LISTENER_START (minor 2): where the listener's name came from;
 * neither: "listener@ADDRESS", or a writer before minor 2 */
#define WK_TRF_NAME_GIVEN 0x1u /* worker_listen_opts.name */
#define WK_TRF_NAME_SYMBOL 0x2u /* the function's symbol (an ELF symbol table) */

/* flags of LISTENER_END */
#define WK_TRF_ERROR 0x1u
/* flags of TIMER_CANCELLED */
#define WK_TRF_TOO_LATE 0x1u
/* flags of DEFER_SETTLED */
#define WK_TRF_REJECTED 0x1u
#define WK_TRF_IGNORED 0x2u /* already settled: this settle was ignored */

/* flags of REJECT */
enum wk_trace_reject {
    WK_TRR_NOT_RUNNING = 1, /* WORKER_EREJECTED */
    WK_TRR_FULL = 2, /* WORKER_EFULL */
    WK_TRR_NOMEM = 3, /* WORKER_ENOMEM */
};

/* flags of WAIT_BEGIN / WAIT_END */
enum wk_trace_wait {
    WK_TRW_EVENT = 1, /* worker_wait_event */
    WK_TRW_UNTIL = 2, /* worker_wait_until */
    WK_TRW_TIMEOUT = 3, /* worker_wait_timeout, worker_sleep */
    WK_TRW_FOREVER = 4, /* worker_wait_forever */
    WK_TRW_THREAD = 5, /* worker_wait_thread */
    WK_TRW_FUTURE = 6, /* worker_future_get, worker_await */
    WK_TRW_DEFER = 7, /* worker_defer_get */
    WK_TRW_JOIN = 8, /* worker_join (blocks without running the loop) */
};
#define WK_TRW_MAX 8

/* Longest string of a NAME record; longer names are cut by the writer. */
#define WK_TRACE_MAX_NAME 4096

/* Slots a NAME record of `len` bytes occupies, itself included. */
#define WK_TRACE_NAME_SLOTS(len) (1u + ((uint32_t)(len) + 31u) / 32u)

_Static_assert(sizeof(wk_trace_file_header) == 64, "file header is 64 bytes");
_Static_assert(sizeof(wk_trace_chunk_header) == 32, "chunk header is 32 bytes");
_Static_assert(sizeof(wk_trace_record) == 32, "record is 32 bytes");
_Static_assert(offsetof(wk_trace_record, a) == 16, "record layout");
_Static_assert(offsetof(wk_trace_chunk_header, dropped) == 16, "chunk header layout");

/* The chunk checksum: four multiply-xor lanes, one per 8-byte word of a
 * 32-byte slot (independent, so the loop costs one xor and one multiply per
 * word and the lanes run in parallel), folded with the byte count at the
 * end (a trailing partial slot's whole words go to lane 0).
 * Catches flipped, shifted and truncated bytes; not a cryptographic hash. */
#define WK_TRACE_HASH_PRIME 0x100000001b3u
static inline uint64_t wk_trace_hash_fold(uint64_t x, uint64_t lane)
{
    x ^= lane ^ (lane >> 29);
    return x * WK_TRACE_HASH_PRIME;
}

static inline uint64_t wk_trace_word(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint32_t wk_trace_checksum(const void *slots, size_t bytes)
{
    const unsigned char *p = (const unsigned char *)slots;
    uint64_t l0 = 0xcbf29ce484222325u, l1 = 0x84222325cbf29ce4u;
    uint64_t l2 = 0x9e3779b97f4a7c15u, l3 = 0x7f4a7c159e3779b9u;
    size_t i = 0;
    for (; i + 32 <= bytes; i += 32) {
        l0 = (l0 ^ wk_trace_word(p + i)) * WK_TRACE_HASH_PRIME;
        l1 = (l1 ^ wk_trace_word(p + i + 8)) * WK_TRACE_HASH_PRIME;
        l2 = (l2 ^ wk_trace_word(p + i + 16)) * WK_TRACE_HASH_PRIME;
        l3 = (l3 ^ wk_trace_word(p + i + 24)) * WK_TRACE_HASH_PRIME;
    }
    for (; i + 8 <= bytes; i += 8) /* never with whole slots; kept total */
        l0 = (l0 ^ wk_trace_word(p + i)) * WK_TRACE_HASH_PRIME;
    uint64_t h = (uint64_t)bytes;
    h = wk_trace_hash_fold(h, l0);
    h = wk_trace_hash_fold(h, l1);
    h = wk_trace_hash_fold(h, l2);
    h = wk_trace_hash_fold(h, l3);
    return (uint32_t)(h ^ (h >> 32));
}

#endif
