/* worker-trace: reading and validating a trace file (docs/trace-format.md).
 *
 * The whole file is read into memory, then walked chunk by chunk. Each chunk
 * is validated completely (magic, size, count, checksum, sequence, every
 * record) before any of it is kept, so --partial keeps exactly the chunks
 * before the first bad one. Nothing in the file is trusted: every count and
 * length is checked against what remains before it is used. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

/* Timestamps further than this after the trace's start are corrupt. */
#define WT_MAX_SPAN_NS (100ull * 24 * 3600 * 1000000000ull)

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int read_all(const char *path, unsigned char **data, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = wt_xmalloc(cap);
    for (;;) {
        if (n == cap)
            wt_grow((void **)&buf, &cap, cap + 1, 1);
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        fail(err, errlen, "read error");
        return -1;
    }
    *data = buf;
    *size = n;
    return 0;
}

static int check_header(const wk_trace_file_header *h, size_t size, char *err, size_t errlen)
{
    if (memcmp(h->magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN) != 0) {
        fail(err, errlen, "not a worker trace (bad magic; expected \"WKTRACE\\0\")");
        return -1;
    }
    if (h->endian != WK_TRACE_ENDIAN_MARK) {
        fail(err, errlen, "unsupported byte order (endian mark 0x%08" PRIx32 ")", h->endian);
        return -1;
    }
    if (h->version != WK_TRACE_VERSION) {
        fail(err, errlen, "unsupported trace format version %u.%u (this tool reads version %d)",
            h->version, h->minor, WK_TRACE_VERSION);
        return -1;
    }
    if (h->header_size != sizeof(wk_trace_file_header)
        || h->record_size != sizeof(wk_trace_record)) {
        fail(err, errlen, "corrupt file header: header size %u, record size %u (expected %zu, %zu)",
            h->header_size, h->record_size, sizeof(wk_trace_file_header), sizeof(wk_trace_record));
        return -1;
    }
    if (h->clock != WK_TRACE_CLOCK_MONOTONIC) {
        fail(err, errlen, "corrupt file header: unknown clock %" PRIu32, h->clock);
        return -1;
    }
    (void)size;
    return 0;
}

static wt_thread *thread_get(wt_trace *t, uint32_t number, bool create)
{
    uint64_t *idx = wt_map_get(&t->names, 0xffffffffffffffffu, number); /* separate key space */
    if (idx)
        return &t->threads[*idx];
    if (!create)
        return NULL;
    wt_thread *th = WT_PUSH(t->threads, t->nthreads, t->capthreads);
    memset(th, 0, sizeof *th);
    th->number = number;
    wt_map_put(&t->names, 0xffffffffffffffffu, number, t->nthreads - 1, NULL);
    return th;
}

wt_thread *wt_thread_add(wt_trace *t, uint32_t number)
{
    return thread_get(t, number, true);
}

const wt_thread *wt_thread_of(const wt_trace *t, uint32_t number)
{
    uint64_t *idx = wt_map_get(&t->names, 0xffffffffffffffffu, number);
    return idx ? &t->threads[*idx] : NULL;
}

const char *wt_name(const wt_trace *t, uint64_t id)
{
    if (id == 0)
        return NULL;
    uint64_t *idx = wt_map_get(&t->names, 0, id);
    return idx ? t->strings[*idx] : NULL;
}

/* The kinds of records with nothing to validate but their timestamp. */
static bool is_plain_kind(uint16_t kind)
{
    switch (kind) {
    case WK_TR_THREAD:
    case WK_TR_DROPPED:
    case WK_TR_WORKER_CREATED:
    case WK_TR_WORKER_STARTED:
    case WK_TR_WORKER_ENDED:
    case WK_TR_WORKER_NAME:
    case WK_TR_FIRE:
    case WK_TR_DELIVER:
    case WK_TR_LISTENER_START:
    case WK_TR_LISTENER_END:
    case WK_TR_REJECT:
    case WK_TR_CHANNEL_PUBLISH:
    case WK_TR_PAUSE:
    case WK_TR_RESUME:
    case WK_TR_STOP:
    case WK_TR_TIMER_ARMED:
    case WK_TR_TIMER_FIRED:
    case WK_TR_TIMER_CANCELLED:
    case WK_TR_FUTURE_SETTLED:
    case WK_TR_DEFER_SETTLED:
    case WK_TR_MAILBOX_DEPTH:
    case WK_TR_REQUEST_EXPIRED:
    case WK_TR_EVENT_DROPPED:
    case WK_TR_CHILD_RESTART:
    case WK_TR_SUPERVISOR_STARTED:
    case WK_TR_SLICE_BEGIN:
    case WK_TR_SLICE_END:
    case WK_TR_REMOTE_SEND:
    case WK_TR_REMOTE_RECEIVE:
        return true;
    default:
        return false;
    }
}

/* A NAME record at r[i] of a chunk of `count`: its id and length, and its
 * bytes in the slots after it (NUL-free, then zero padding). Returns the
 * number of slots the bytes take, or -1. */
static int64_t check_name(
    const wk_trace_record *r, uint32_t i, uint32_t count, uint64_t roff, char *err, size_t errlen)
{
    const wk_trace_record *x = &r[i];
    if (x->a == 0 || x->a > UINT32_MAX || x->b == 0 || x->b > WK_TRACE_MAX_NAME) {
        fail(err, errlen,
            "corrupt NAME record at offset %" PRIu64 ": id %" PRIu64 ", length %" PRIu64, roff,
            x->a, x->b);
        return -1;
    }
    uint32_t slots = WK_TRACE_NAME_SLOTS(x->b) - 1;
    if (slots > count - i - 1) {
        fail(err, errlen,
            "corrupt NAME record at offset %" PRIu64 ": its %" PRIu64
            " bytes run past the end of its chunk",
            roff, x->b);
        return -1;
    }
    const unsigned char *s = (const unsigned char *)&r[i + 1];
    for (uint64_t k = 0; k < (uint64_t)slots * 32; k++) {
        if ((k < x->b) != (s[k] != 0)) {
            fail(err, errlen,
                "corrupt NAME record at offset %" PRIu64 ": %s byte at position %" PRIu64, roff,
                k < x->b ? "NUL" : "non-zero padding", k);
            return -1;
        }
    }
    return slots;
}

/* TRACE_END: alone in the file's last chunk, counting the chunks before. */
static int check_trace_end(const wt_trace *t, const wk_trace_record *x, uint32_t count, bool last,
    uint64_t roff, char *err, size_t errlen)
{
    if (count != 1 || !last) {
        fail(err, errlen,
            "corrupt trace: TRACE_END at offset %" PRIu64 " is not alone in the last chunk", roff);
        return -1;
    }
    if (x->a != t->chunks) {
        fail(err, errlen,
            "corrupt trace: TRACE_END counts %" PRIu64 " chunks before it, the file has %" PRIu64
            " (chunks missing)",
            x->a, t->chunks);
        return -1;
    }
    return 0;
}

/* One record but a NAME's: its kind and, for waits, the wait's kind. */
static int check_record_kind(const wt_trace *t, const wk_trace_record *x, uint32_t count, bool last,
    uint64_t roff, char *err, size_t errlen)
{
    if (x->kind == WK_TR_TRACE_END)
        return check_trace_end(t, x, count, last, roff, err, errlen);
    if (x->kind == WK_TR_WAIT_BEGIN || x->kind == WK_TR_WAIT_END) {
        if (x->flags == 0 || x->flags > WK_TRW_MAX) {
            fail(err, errlen, "corrupt record at offset %" PRIu64 ": wait kind %u", roff, x->flags);
            return -1;
        }
        return 0;
    }
    if (is_plain_kind(x->kind) || wt_reserved_kind(x->kind))
        return 0;
    if (t->hdr.minor > WK_TRACE_MINOR && x->kind > WK_TR_KIND_MAX)
        return 0; /* a newer writer's addition: skipped when kept */
    fail(err, errlen, "corrupt record at offset %" PRIu64 ": unknown kind %u", roff, x->kind);
    return -1;
}

/* Validate one chunk's records. `last` says the chunk ends the file. */
static int check_records(const wt_trace *t, const wk_trace_record *r, uint32_t count, uint64_t off,
    bool last, char *err, size_t errlen)
{
    const uint64_t start = t->hdr.start_ns;
    for (uint32_t i = 0; i < count; i++) {
        const wk_trace_record *x = &r[i];
        uint64_t roff = off + (uint64_t)i * sizeof *x;
        if (x->ts < start || x->ts - start > WT_MAX_SPAN_NS) {
            fail(err, errlen,
                "corrupt record at offset %" PRIu64 ": timestamp %" PRIu64
                " is outside the trace (start %" PRIu64 ")",
                roff, x->ts, start);
            return -1;
        }
        if (x->kind == WK_TR_NAME) {
            int64_t slots = check_name(r, i, count, roff, err, errlen);
            if (slots < 0)
                return -1;
            i += (uint32_t)slots;
        } else if (check_record_kind(t, x, count, last, roff, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

static void keep_records(wt_trace *t, const wk_trace_record *r, uint32_t count, uint32_t thread)
{
    /* t->recs was sized for the whole file: one record per slot at most */
    for (uint32_t i = 0; i < count; i++) {
        const wk_trace_record *x = &r[i];
        if (x->kind == WK_TR_NAME) {
            uint32_t slots = WK_TRACE_NAME_SLOTS(x->b) - 1;
            bool inserted;
            wt_map_put(&t->names, 0, x->a, t->nstrings, &inserted);
            if (inserted) {
                char *s = wt_xmalloc((size_t)x->b + 1);
                memcpy(s, &r[i + 1], (size_t)x->b);
                s[x->b] = 0;
                *WT_PUSH(t->strings, t->nstrings, t->capstrings) = s;
            }
            i += slots;
            continue;
        }
        if (x->kind > WK_TR_KIND_MAX || wt_reserved_kind(x->kind)) {
            t->skipped_unknown++;
            continue;
        }
        if (x->kind == WK_TR_THREAD) {
            wt_thread *th = thread_get(t, thread, false);
            if (th) {
                th->os_tid = x->a;
                th->name_id = x->b;
            }
        }
        wt_rec *o = &t->recs[t->nrecs];
        o->ts = x->ts;
        o->a = x->a;
        o->b = x->b;
        o->worker = x->worker;
        o->kind = x->kind;
        o->flags = x->flags;
        o->thread = thread;
        o->order = (uint32_t)t->nrecs;
        t->nrecs++;
    }
}

static int rec_cmp(const void *pa, const void *pb)
{
    const wt_rec *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The file header at the start of `data`, copied into t->hdr and checked. */
static int read_file_header(
    wt_trace *t, const unsigned char *data, size_t size, char *err, size_t errlen)
{
    if (size < sizeof(wk_trace_file_header)) {
        if (size >= WK_TRACE_MAGIC_LEN && memcmp(data, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN) != 0)
            fail(err, errlen, "not a worker trace (bad magic; expected \"WKTRACE\\0\")");
        else
            fail(err, errlen, "truncated: the file header needs %zu bytes, the file has %zu",
                sizeof(wk_trace_file_header), size);
        return -1;
    }
    memcpy(&t->hdr, data, sizeof t->hdr);
    return check_header(&t->hdr, size, err, errlen);
}

/* The chunk header at `off`, copied into *ch: its magic, record count and
 * thread, and that its records fit in the file. */
static int read_chunk_header(const unsigned char *data, size_t size, size_t off,
    wk_trace_chunk_header *ch, char *err, size_t errlen)
{
    size_t left = size - off;
    if (left < sizeof *ch) {
        fail(err, errlen,
            "truncated: %zu bytes at offset %zu cannot hold a chunk header (%zu bytes)", left, off,
            sizeof *ch);
        return -1;
    }
    memcpy(ch, data + off, sizeof *ch);
    if (ch->magic != WK_TRACE_CHUNK_MAGIC) {
        fail(err, errlen, "corrupt: no chunk header at offset %zu (bad chunk magic)", off);
        return -1;
    }
    if (ch->count == 0 || ch->count > WK_TRACE_MAX_CHUNK_RECORDS) {
        fail(err, errlen,
            "corrupt: chunk at offset %zu declares %" PRIu32 " records (allowed 1..%u)", off,
            ch->count, WK_TRACE_MAX_CHUNK_RECORDS);
        return -1;
    }
    if (ch->thread == 0) {
        fail(err, errlen, "corrupt: chunk at offset %zu has thread number 0", off);
        return -1;
    }
    size_t body = (size_t)ch->count * sizeof(wk_trace_record);
    if (body > left - sizeof *ch) {
        fail(err, errlen,
            "truncated: chunk at offset %zu declares %" PRIu32
            " records (%zu bytes), only %zu bytes follow",
            off, ch->count, body, left - sizeof *ch);
        return -1;
    }
    return 0;
}

/* The chunk's checksum over its record slots, and its place in its
 * thread's sequence. */
static int check_chunk_integrity(wt_trace *t, const wk_trace_chunk_header *ch,
    const unsigned char *slots, size_t off, char *err, size_t errlen)
{
    uint32_t sum = wk_trace_checksum(slots, (size_t)ch->count * sizeof(wk_trace_record));
    if (sum != ch->checksum) {
        fail(err, errlen,
            "corrupt: chunk at offset %zu fails its checksum (0x%08" PRIx32
            ", computed 0x%08" PRIx32 ")",
            off, ch->checksum, sum);
        return -1;
    }
    wt_thread *th = thread_get(t, ch->thread, false);
    uint32_t want = th ? th->next_seq : 0;
    if (ch->seq != want) {
        fail(err, errlen,
            "corrupt: chunk at offset %zu is number %" PRIu32 " of thread %" PRIu32
            ", expected %" PRIu32 " (chunks missing or repeated)",
            off, ch->seq, ch->thread, want);
        return -1;
    }
    return 0;
}

/* Counts a valid chunk on its thread and the trace, and keeps its records. */
static void keep_chunk(wt_trace *t, const wk_trace_chunk_header *ch, const wk_trace_record *r)
{
    wt_thread *th = thread_get(t, ch->thread, true);
    th->next_seq++;
    th->chunks++;
    th->records += ch->count;
    th->dropped += ch->dropped;
    if (ch->dropped > UINT64_MAX - t->dropped)
        t->dropped = UINT64_MAX;
    else
        t->dropped += ch->dropped;
    if (ch->count == 1 && r[0].kind == WK_TR_TRACE_END) {
        t->complete = true;
    } else {
        keep_records(t, r, ch->count, ch->thread);
    }
    t->chunks++;
    t->slots += ch->count;
}

/* Validates and keeps the chunk at *off, then moves *off past it. */
static int read_chunk(
    wt_trace *t, const unsigned char *data, size_t size, size_t *off, char *err, size_t errlen)
{
    wk_trace_chunk_header ch;
    if (read_chunk_header(data, size, *off, &ch, err, errlen) < 0)
        return -1;
    const unsigned char *slots = data + *off + sizeof ch;
    if (check_chunk_integrity(t, &ch, slots, *off, err, errlen) < 0)
        return -1;
    /* Records are copied out: the slots may be unaligned in memory. */
    size_t body = (size_t)ch.count * sizeof(wk_trace_record);
    wk_trace_record *r = wt_xmalloc(body);
    memcpy(r, slots, body);
    bool last = *off + sizeof ch + body == size;
    if (check_records(t, r, ch.count, *off + sizeof ch, last, err, errlen) < 0) {
        free(r);
        return -1;
    }
    keep_chunk(t, &ch, r);
    free(r);
    *off += sizeof ch + body;
    return 0;
}

/* Every chunk after the file header, up to the first bad one; a file
 * without TRACE_END is bad too. */
static int read_chunks(
    wt_trace *t, const unsigned char *data, size_t size, char *err, size_t errlen)
{
    size_t off = sizeof(wk_trace_file_header);
    while (off < size) {
        if (read_chunk(t, data, size, &off, err, errlen) < 0)
            return -1;
    }
    if (!t->complete) {
        fail(err, errlen,
            "truncated: no TRACE_END record after %" PRIu64
            " chunks (the program did not stop tracing, or the file was cut)",
            t->chunks);
        return -1;
    }
    return 0;
}

int wt_load(const char *path, bool partial, wt_trace *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    wt_map_init(&t->names);
    unsigned char *data;
    size_t size;
    if (read_all(path, &data, &size, err, errlen) < 0)
        return -1;
    t->file_size = size;
    if (read_file_header(t, data, size, err, errlen) < 0) {
        free(data);
        return -1;
    }
    /* At most one record per 32 bytes of file: size the array once. */
    t->recs = wt_xcalloc(size / sizeof(wk_trace_record) + 1, sizeof *t->recs);
    char cerr[400];
    bool bad = read_chunks(t, data, size, cerr, sizeof cerr) < 0;
    free(data);
    if (bad) {
        if (!partial) {
            fail(err, errlen, "%s", cerr);
            wt_trace_free(t);
            return -1;
        }
        t->partial = true;
        snprintf(t->error, sizeof t->error, "%s", cerr);
    }
    wt_sort(t->recs, t->nrecs, sizeof *t->recs, rec_cmp);
    wt_single_process(t);
    return 0;
}

void wt_trace_free(wt_trace *t)
{
    for (size_t i = 0; i < t->nstrings; i++)
        free(t->strings[i]);
    free(t->strings);
    free(t->recs);
    free(t->threads);
    for (size_t i = 0; i < t->nprocs; i++)
        free(t->procs[i].label);
    free(t->procs);
    wt_map_free(&t->names);
    memset(t, 0, sizeof *t);
}
