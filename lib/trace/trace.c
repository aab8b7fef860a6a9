/* The trace recorder.
 *
 * Invariants:
 * - Recording state is process-wide (global state: one trace file for all
 *   threads): `wk_trace_on`, and `rec` guarded by `rec.lock` except where
 *   noted.
 * - Each thread owns one buffer (wk_thread.trace). Only the owner appends:
 *   it fills slots[count] with plain stores, then publishes `published =
 *   count` with a release store. No lock and no read-modify-write on that
 *   path.
 * - `buf.lock` orders the writers of a buffer's slots to the file: the
 *   owner when its buffer is full (or at thread exit), worker_trace_stop,
 *   and the periodic flusher (wk_trace_flush_published, once a second,
 *   which walks the registry under `rec.lock` like stop).
 *   Under it, [flushed, published) are complete records not yet written;
 *   the owner may be filling slots past `published` at the same time, which
 *   nobody else reads.
 * - The file descriptor is read under a buffer's lock. Stop first takes the
 *   descriptor away (`rec.fd` = -1), then takes every buffer's lock in turn
 *   to write what it holds, and closes the file last: a flush that read the
 *   old descriptor holds its buffer's lock, so it is over before the close.
 *   That covers the buffers in the registry (`rec.bufs`). A thread's exit
 *   takes its buffer out of the registry and writes it under `rec.lock`,
 *   which stop and start hold throughout: the exit's write is over before
 *   stop begins, or it comes after stop (and after the next start, if
 *   any) and finds the trace over or its session gone, and drops what it
 *   holds. It never writes into a file after its TRACE_END, nor into the
 *   next trace's file (which may have the same descriptor).
 * - A buffer belongs to one trace session; a buffer from an older session is
 *   emptied before its owner appends again.
 * - Sampling: `wk_trace_sample_every` and `wk_trace_generation` change only
 *   in worker_trace_start, before tracing is turned on; each thread keeps
 *   its own countdown (wk_thread.trace_skip, owner only), restarted when it
 *   sees a new generation.
 * - fork(): the prepare handler holds `rec.lock`, so no flush by stop or
 *   the flusher is under way, and the forking thread's own buffer lock is
 *   free. The child keeps only the forking thread's buffer in the registry
 *   (the others' owners do not exist there, their locks may be held).
 * - Names: `wk_trace_name_written[id] == wk_trace_name_mark` once the id's
 *   NAME record is written in this trace; the exchange that sets it makes
 *   exactly one thread write it.
 */
#define _GNU_SOURCE
#include "wk_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <worker/error.h>
#include <worker/trace.h>

#include "wk_log.h"
#include "wk_os.h"
#include "wk_thread.h"

#define SLOTS 4096 /* 128 KiB per thread */
#define NAME_BITMAP WK_TRACE_NAME_BITMAP

typedef struct wk_trace_buf {
    pthread_mutex_t lock;
    uint32_t thread_no;
    uint32_t seq;
    uint64_t session;
    uint64_t dropped;
    uint32_t flushed;
    uint32_t count; /* owner only */
    _Atomic uint32_t published; /* the owner's count, for stop */
    uint64_t next_serial; /* owner only */
    struct wk_trace_buf *next; /* the registry, under rec.lock */
    wk_trace_record slots[SLOTS];
} wk_trace_buf;

_Atomic int wk_trace_on;
/* Global like the trace: fixed while a trace records (set at start). */
_Atomic uint32_t wk_trace_sample_every = 1;
_Atomic uint32_t wk_trace_generation;

static struct {
    pthread_mutex_t lock;
    _Atomic int fd;
    _Atomic uint64_t session;
    wk_trace_buf *bufs;
    _Atomic uint32_t next_thread_no;
    _Atomic uint64_t chunks;
    _Atomic uint64_t dropped;
    bool exit_hook_set;
    uint32_t next_sample_every; /* worker_trace_sample(), for the next start */
} rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .next_sample_every = 1 };

/* One byte per string id: equal to wk_trace_name_mark when its NAME record
 * is in this trace already. Global like the trace it belongs to; read
 * inline by wk_trace_atom. Each start takes the next mark (never 0), so the
 * array is cleared only when the mark wraps, once in 255 traces. */
_Atomic uint8_t wk_trace_name_written[NAME_BITMAP];
_Atomic uint8_t wk_trace_name_mark;
#define name_written wk_trace_name_written

/* ---- writing chunks ---- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Write slots [from, to) of `b` as one chunk. Caller holds b->lock. */
static void write_chunk(wk_trace_buf *b, int fd, uint32_t from, uint32_t to, uint64_t dropped)
{
    wk_trace_chunk_header h = {
        .magic = WK_TRACE_CHUNK_MAGIC,
        .thread = b->thread_no,
        .count = to - from,
        .seq = b->seq++,
        .dropped = dropped,
        .checksum
        = wk_trace_checksum(&b->slots[from], (size_t)(to - from) * sizeof(wk_trace_record)),
    };
    struct iovec iov[2]
        = { { &h, sizeof h }, { &b->slots[from], (size_t)(to - from) * sizeof(wk_trace_record) } };
    size_t want = iov[0].iov_len + iov[1].iov_len;
    if (writev(fd, iov, 2) == (ssize_t)want)
        atomic_fetch_add(&rec.chunks, 1);
    else
        atomic_fetch_add(&rec.dropped, to - from);
}

/* Write what `b` holds and is not written yet to `fd` (-1: the trace is
 * over, so it is dropped). Caller holds b->lock. */
static void flush_locked(wk_trace_buf *b, int fd)
{
    uint32_t upto = atomic_load_explicit(&b->published, memory_order_acquire);
    bool current = b->session == atomic_load(&rec.session);
    if (upto > b->flushed && fd >= 0 && current) {
        write_chunk(b, fd, b->flushed, upto, b->dropped);
        b->dropped = 0;
    } else if (upto > b->flushed) {
        atomic_fetch_add(&rec.dropped, upto - b->flushed);
    }
    b->flushed = upto;
}

/* The owner empties its full buffer. */
static void flush_own(wk_trace_buf *b)
{
    pthread_mutex_lock(&b->lock);
    flush_locked(b, atomic_load(&rec.fd));
    b->flushed = 0;
    b->count = 0;
    atomic_store_explicit(&b->published, 0, memory_order_release);
    pthread_mutex_unlock(&b->lock);
}

/* ---- the calling thread's buffer ---- */

static void put(wk_trace_buf *b, uint64_t ts, uint32_t worker, uint16_t kind, uint16_t flags,
    uint64_t a, uint64_t bb)
{
    b->slots[b->count++] = (wk_trace_record) { ts, worker, kind, flags, a, bb };
}

static void publish(wk_trace_buf *b)
{
    atomic_store_explicit(&b->published, b->count, memory_order_release);
}

/* Room for `n` more slots, flushing first if needed. */
static bool make_room(wk_trace_buf *b, uint32_t n)
{
    if (b->count + n <= SLOTS)
        return true;
    flush_own(b);
    if (b->count + n <= SLOTS)
        return true;
    pthread_mutex_lock(&b->lock); /* `dropped` is read by stop */
    b->dropped += n;
    pthread_mutex_unlock(&b->lock);
    return false;
}

static void thread_record(wk_trace_buf *b, wk_thread *t);

/* The calling thread's buffer for the current session; NULL if none. */
static wk_trace_buf *own_buffer(void)
{
    wk_thread *t = wk_thread_get();
    if (!t)
        return NULL;
    wk_trace_buf *b = t->trace;
    uint64_t session = atomic_load_explicit(&rec.session, memory_order_relaxed);
    if (b && b->session == session)
        return b;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b)
            return NULL;
        pthread_mutex_init(&b->lock, NULL);
        b->thread_no = atomic_fetch_add(&rec.next_thread_no, 1) + 1;
        pthread_mutex_lock(&rec.lock);
        b->next = rec.bufs;
        rec.bufs = b;
        pthread_mutex_unlock(&rec.lock);
        t->trace = b;
    }
    pthread_mutex_lock(&b->lock); /* a buffer of an older trace starts over */
    b->session = session;
    b->count = b->flushed = 0;
    b->seq = 0;
    b->dropped = 0;
    atomic_store_explicit(&b->published, 0, memory_order_release);
    pthread_mutex_unlock(&b->lock);
    thread_record(b, t);
    return b;
}

/* The calling thread's buffer when it belongs to this trace and has room
 * for `n` more slots: the common case, with no call and no lock. */
static inline wk_trace_buf *ready_buffer(uint32_t n)
{
    wk_thread *t = wk_thread_peek();
    wk_trace_buf *b = t ? t->trace : NULL;
    if (__builtin_expect(b != NULL, 1)
        && __builtin_expect(
            b->session == atomic_load_explicit(&rec.session, memory_order_relaxed), 1)
        && __builtin_expect(b->count + n <= SLOTS, 1))
        return b;
    return NULL;
}

/* A first record of this thread in this trace, or a full buffer. */
static __attribute__((noinline)) void emit_slow(
    uint32_t worker, uint16_t kind, uint16_t flags, uint64_t a, uint64_t b)
{
    wk_trace_buf *buf = own_buffer();
    if (!buf || !make_room(buf, 1))
        return;
    put(buf, now_ns(), worker, kind, flags, a, b);
    publish(buf);
}

void wk_trace_emit(uint32_t worker, uint16_t kind, uint16_t flags, uint64_t a, uint64_t b)
{
    wk_trace_buf *buf = ready_buffer(1);
    if (!buf) {
        emit_slow(worker, kind, flags, a, b);
        return;
    }
    put(buf, now_ns(), worker, kind, flags, a, b);
    publish(buf);
}

uint64_t wk_trace_session(void)
{
    return atomic_load_explicit(&rec.session, memory_order_relaxed);
}

uint64_t wk_trace_serial(void)
{
    wk_trace_buf *b = own_buffer();
    if (!b)
        return 0;
    return ((uint64_t)b->thread_no << 40) | ++b->next_serial;
}

/* ---- names ---- */

static void name_record(wk_trace_buf *b, uint32_t id, const char *s, size_t len)
{
    if (len > WK_TRACE_MAX_NAME)
        len = WK_TRACE_MAX_NAME;
    uint32_t n = WK_TRACE_NAME_SLOTS(len);
    if (!make_room(b, n))
        return;
    put(b, now_ns(), 0, WK_TR_NAME, 0, id, len);
    char *bytes = (char *)&b->slots[b->count];
    memset(bytes, 0, (size_t)(n - 1) * sizeof(wk_trace_record));
    memcpy(bytes, s, len);
    b->count += n - 1;
    publish(b);
}

uint32_t wk_trace_atom_slow(const wk_atom *atom)
{
    if (!atom)
        return 0;
    uint8_t mark = atomic_load_explicit(&wk_trace_name_mark, memory_order_relaxed);
    bool first = atom->id >= NAME_BITMAP
        || (atomic_load_explicit(&name_written[atom->id], memory_order_relaxed) != mark
            && atomic_exchange(&name_written[atom->id], mark) != mark);
    if (first) {
        wk_trace_buf *b = own_buffer();
        if (b)
            name_record(b, atom->id, atom->name, atom->len);
    }
    return atom->id;
}

uint32_t wk_trace_string(const char *s)
{
    return s && *s ? wk_trace_atom(wk_atom_intern(s)) : 0;
}

static void thread_record(wk_trace_buf *b, wk_thread *t)
{
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    uint32_t name_id = wk_trace_string(name);
    if (!make_room(b, 1))
        return;
    (void)t;
    put(b, now_ns(), 0, WK_TR_THREAD, 0, (uint64_t)wk_gettid(), name_id);
    publish(b);
}

/* ---- thread exit ---- */

/* Thread exit: write what this thread still holds (the exit hook of the
 * trace layer, set at the first start). */
static void trace_thread_exit(wk_thread *t)
{
    wk_trace_buf *b = t->trace;
    if (!b)
        return;
    /* Under rec.lock throughout: stop and start cannot run in between (a
     * buffer out of the registry is not waited for by stop). */
    pthread_mutex_lock(&rec.lock);
    for (wk_trace_buf **p = &rec.bufs; *p; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    pthread_mutex_lock(&b->lock);
    flush_locked(b, atomic_load(&rec.fd));
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&rec.lock);
    pthread_mutex_destroy(&b->lock);
    free(b);
    t->trace = NULL;
}

/* ---- start and stop ---- */

static int write_header(int fd)
{
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    wk_trace_file_header h = {
        .version = WK_TRACE_VERSION,
        .minor = WK_TRACE_MINOR,
        .header_size = sizeof(wk_trace_file_header),
        .record_size = sizeof(wk_trace_record),
        .endian = WK_TRACE_ENDIAN_MARK,
        .clock = WK_TRACE_CLOCK_MONOTONIC,
        .start_ns = now_ns(),
        .start_realtime_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec,
        .pid = (uint32_t)getpid(),
        .sample_every = atomic_load(&wk_trace_sample_every),
        .boot_id = wk_boot_id(),
    };
    memcpy(h.magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN);
    return write(fd, &h, sizeof h) == (ssize_t)sizeof h ? 0 : -1;
}

/* Under rec.lock, before tracing is on. */
static void next_name_mark(void)
{
    uint8_t mark = (uint8_t)(atomic_load(&wk_trace_name_mark) + 1);
    if (mark == 0) {
        for (size_t i = 0; i < NAME_BITMAP; i++)
            atomic_store_explicit(&name_written[i], 0, memory_order_relaxed);
        mark = 1;
    }
    atomic_store(&wk_trace_name_mark, mark);
}

static void stop_at_exit(void)
{
    worker_trace_stop();
}

int worker_trace_start(const char *path)
{
    if (!path || !*path)
        return WORKER_EINVAL;
    pthread_mutex_lock(&rec.lock);
    int rc = WORKER_OK;
    if (atomic_load(&rec.fd) >= 0) {
        rc = WORKER_ESTATE;
    } else {
        atomic_store(&wk_trace_sample_every, rec.next_sample_every);
        atomic_fetch_add(&wk_trace_generation, 1);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
        if (fd < 0 || write_header(fd) != 0) {
            int saved = errno;
            if (fd >= 0)
                close(fd);
            errno = saved;
            rc = WORKER_EAGAIN;
        } else {
            next_name_mark();
            atomic_store(&rec.chunks, 0);
            atomic_store(&rec.dropped, 0);
            atomic_fetch_add(&rec.session, 1);
            atomic_store(&rec.fd, fd);
            if (!rec.exit_hook_set)
                rec.exit_hook_set = atexit(stop_at_exit) == 0;
            wk_thread_on_exit(WK_EXIT_TRACE, trace_thread_exit);
            atomic_store(&wk_trace_on, 1);
        }
    }
    pthread_mutex_unlock(&rec.lock);
    if (rc == WORKER_OK)
        wk_flusher_tracing(true);
    return rc;
}

static void write_end(int fd)
{
    wk_trace_record end = { .ts = now_ns(),
        .kind = WK_TR_TRACE_END,
        .a = atomic_load(&rec.chunks),
        .b = atomic_load(&rec.dropped) };
    /* Chunk thread numbers are never 0: the end marker gets one of its own. */
    uint32_t end_thread = atomic_fetch_add(&rec.next_thread_no, 1) + 1;
    wk_trace_chunk_header h = { .magic = WK_TRACE_CHUNK_MAGIC,
        .thread = end_thread,
        .count = 1,
        .checksum = wk_trace_checksum(&end, sizeof end) };
    struct iovec iov[2] = { { &h, sizeof h }, { &end, sizeof end } };
    if (writev(fd, iov, 2) < 0)
        wk_log(WORKER_LOG_ERROR, NULL, "trace end: %s", strerror(errno));
}

void wk_trace_flush_published(void)
{
    pthread_mutex_lock(&rec.lock);
    int fd = atomic_load(&rec.fd);
    for (wk_trace_buf *b = fd >= 0 ? rec.bufs : NULL; b; b = b->next) {
        pthread_mutex_lock(&b->lock);
        if (b->session == atomic_load(&rec.session))
            flush_locked(b, fd);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&rec.lock);
}

void wk_trace_atfork_prepare(void)
{
    pthread_mutex_lock(&rec.lock);
}

void wk_trace_atfork_parent(void)
{
    pthread_mutex_unlock(&rec.lock);
}

void wk_trace_atfork_child(void)
{
    atomic_store(&wk_trace_on, 0);
    wk_trace_remote_atfork_child();
    int fd = atomic_exchange(&rec.fd, -1);
    if (fd >= 0)
        close(fd); /* the child's copy; the parent's trace goes on */
    wk_thread *t = wk_thread_peek();
    rec.bufs = t ? t->trace : NULL; /* the others are lost in the child */
    if (rec.bufs)
        rec.bufs->next = NULL;
    pthread_mutex_unlock(&rec.lock);
}

int worker_trace_stop(void)
{
    pthread_mutex_lock(&rec.lock);
    int fd = atomic_exchange(&rec.fd, -1);
    if (fd < 0) {
        pthread_mutex_unlock(&rec.lock);
        return WORKER_ESTATE;
    }
    atomic_store(&wk_trace_on, 0);
    for (wk_trace_buf *b = rec.bufs; b; b = b->next) {
        pthread_mutex_lock(&b->lock);
        if (b->session == atomic_load(&rec.session)) /* older traces' buffers: left alone */
            flush_locked(b, fd); /* rec.fd is -1 already: this is the last write */
        pthread_mutex_unlock(&b->lock);
    }
    write_end(fd);
    close(fd);
    pthread_mutex_unlock(&rec.lock);
    wk_flusher_tracing(false);
    return WORKER_OK;
}

int worker_trace_sample(unsigned every)
{
    if (every == 0)
        return WORKER_EINVAL;
    pthread_mutex_lock(&rec.lock);
    int rc = atomic_load(&rec.fd) >= 0 ? WORKER_ESTATE : WORKER_OK;
    if (rc == WORKER_OK)
        rec.next_sample_every = every > UINT32_MAX ? UINT32_MAX : (uint32_t)every;
    pthread_mutex_unlock(&rec.lock);
    return rc;
}

/* WORKER_TRACE_SAMPLE=N: a positive decimal number, else ignored (with a
 * message). */
static void sample_from_environment(void)
{
    const char *text = getenv("WORKER_TRACE_SAMPLE");
    if (!text || !*text)
        return;
    char *end;
    errno = 0;
    unsigned long every = strtoul(text, &end, 10);
    if (errno || *end || every == 0 || every > UINT32_MAX || worker_trace_sample((unsigned)every))
        wk_log(WORKER_LOG_WARN, NULL, "WORKER_TRACE_SAMPLE='%s' ignored (want 1 or more)", text);
}

/* WORKER_TRACE=path turns tracing on when the library is loaded. */
__attribute__((constructor)) static void trace_from_environment(void)
{
    const char *path = getenv("WORKER_TRACE");
    if (path && *path)
        sample_from_environment();
    if (path && *path && worker_trace_start(path) != WORKER_OK)
        wk_log(WORKER_LOG_ERROR, NULL, "cannot trace to '%s': %s", path, strerror(errno));
}
