/* worker-trace: several traces, one per process, merged into one trace that
 * the model and every output read as they read a single one.
 *
 * Each input keeps its records; what moves is:
 * - time: traces of one host share CLOCK_MONOTONIC (same boot id in their
 *   headers) and keep their times; a trace of another host is shifted by
 *   the difference of the wall-clock anchors (start_realtime_ns against
 *   start_ns), so it is aligned only as well as the hosts' clocks agree.
 *   Without boot ids (older writers), anchors within a second of each other
 *   are taken for one host.
 * - ids: worker ids become base + id, the base of each input above every id
 *   of the inputs before it (base + 0 stands for the input's threads that
 *   run no worker); string ids and thread numbers likewise; serials and the
 *   ids of timers, futures and defers get the input's index in their top
 *   byte. Message ids of REMOTE_SEND / REMOTE_RECEIVE stay as they are:
 *   they are what pairs records across inputs.
 * Which field of which kind holds what: wk_trace_format.h. */
#include <stdlib.h>
#include <string.h>

#include "wt.h"

/* Times closer than this between two wall-clock anchors: one host. */
#define WT_SAME_HOST_NS 1000000000ll

typedef struct part_map {
    uint64_t worker_base, string_base, serial_tag;
    uint32_t thread_base;
    int64_t shift;
} part_map;

static uint32_t move_worker(const part_map *pm, uint64_t id)
{
    return (uint32_t)(pm->worker_base + (uint32_t)id);
}

static uint64_t move_string(const part_map *pm, uint64_t id)
{
    return id ? pm->string_base + id : 0;
}

/* A pair of 32-bit halves, each moved (or kept with NULL). */
static uint64_t move_pair(const part_map *pm, uint64_t v,
    uint64_t (*low)(const part_map *, uint64_t), uint64_t (*high)(const part_map *, uint64_t))
{
    uint64_t lo = v & 0xffffffffu, hi = v >> 32;
    lo = low ? low(pm, lo) : lo;
    hi = high ? high(pm, hi) : hi;
    return (lo & 0xffffffffu) | hi << 32;
}

static uint64_t worker_field(const part_map *pm, uint64_t id)
{
    return move_worker(pm, id);
}

static uint64_t tagged(const part_map *pm, uint64_t id)
{
    return id | pm->serial_tag;
}

/* WAIT_BEGIN / WAIT_END's b: what is waited for, by the wait's kind. */
static uint64_t move_wait_target(const part_map *pm, uint16_t kind, uint64_t what)
{
    if (kind == WK_TRW_EVENT)
        return move_string(pm, what);
    if (kind == WK_TRW_THREAD || kind == WK_TRW_JOIN)
        return move_worker(pm, what);
    if (kind == WK_TRW_FUTURE || kind == WK_TRW_DEFER)
        return tagged(pm, what);
    return what;
}

/* The fields of events: serial in a, the other worker and the name in b. */
static void move_event_fields(const part_map *pm, wt_rec *r)
{
    r->a = tagged(pm, r->a);
    switch (r->kind) {
    case WK_TR_LISTENER_START:
        r->b = move_pair(pm, r->b, move_string, move_string);
        break;
    case WK_TR_LISTENER_END:
        r->b = move_pair(pm, r->b, move_string, NULL);
        break;
    case WK_TR_CHANNEL_PUBLISH:
        r->b = move_pair(pm, r->b, NULL, move_string);
        break;
    default: /* FIRE, REJECT, DELIVER, REQUEST_EXPIRED, EVENT_DROPPED */
        r->b = move_pair(pm, r->b, worker_field, move_string);
    }
}

static bool is_event_kind(uint16_t kind)
{
    return kind == WK_TR_FIRE || kind == WK_TR_REJECT || kind == WK_TR_DELIVER
        || kind == WK_TR_LISTENER_START || kind == WK_TR_LISTENER_END
        || kind == WK_TR_CHANNEL_PUBLISH || kind == WK_TR_REQUEST_EXPIRED
        || kind == WK_TR_EVENT_DROPPED;
}

/* Every other field that holds an id. */
static void move_other_fields(const part_map *pm, wt_rec *r)
{
    switch (r->kind) {
    case WK_TR_THREAD:
        r->b = move_string(pm, r->b);
        break;
    case WK_TR_WORKER_CREATED:
        r->a = r->a ? move_worker(pm, r->a) : 0; /* 0: no parent */
        r->b = move_string(pm, r->b);
        break;
    case WK_TR_WORKER_NAME:
        r->a = move_string(pm, r->a);
        break;
    case WK_TR_WAIT_BEGIN:
    case WK_TR_WAIT_END:
        r->b = move_wait_target(pm, r->flags, r->b);
        break;
    case WK_TR_PAUSE:
    case WK_TR_RESUME:
    case WK_TR_STOP:
        r->a = move_worker(pm, r->a);
        break;
    case WK_TR_TIMER_ARMED:
    case WK_TR_TIMER_FIRED:
    case WK_TR_TIMER_CANCELLED:
    case WK_TR_FUTURE_SETTLED:
    case WK_TR_DEFER_SETTLED:
        r->a = tagged(pm, r->a);
        break;
    case WK_TR_CHILD_RESTART:
        r->a = move_pair(pm, r->a, worker_field, NULL);
        break;
    case WK_TR_REMOTE_SEND:
        r->b = move_pair(pm, r->b, move_string, move_string);
        break;
    case WK_TR_REMOTE_RECEIVE:
        r->b = move_string(pm, r->b);
        break;
    default:
        break;
    }
}

static void move_record(const part_map *pm, wt_rec *r)
{
    bool threadless = r->worker == 0 && (r->kind == WK_TR_THREAD || r->kind == WK_TR_DROPPED);
    r->worker = threadless ? 0 : move_worker(pm, r->worker);
    r->ts = (uint64_t)((int64_t)r->ts + pm->shift);
    r->thread += pm->thread_base;
    if (is_event_kind(r->kind))
        move_event_fields(pm, r);
    else
        move_other_fields(pm, r);
}

/* --- time ----------------------------------------------------------------------- */

static int64_t wall_minus_monotonic(const wk_trace_file_header *h)
{
    return (int64_t)(h->start_realtime_ns - h->start_ns);
}

/* How `t`'s times go onto the axis of `ref` (*shift is added to them). */
static int alignment(const wt_trace *ref, const wt_trace *t, int64_t *shift)
{
    const wk_trace_file_header *a = &ref->hdr, *b = &t->hdr;
    *shift = 0;
    if (ref == t || (a->boot_id && a->boot_id == b->boot_id))
        return WT_ALIGN_SAME;
    if (!a->start_realtime_ns || !b->start_realtime_ns)
        return WT_ALIGN_NONE;
    int64_t d = wall_minus_monotonic(b) - wall_minus_monotonic(a);
    if ((!a->boot_id || !b->boot_id) && d > -WT_SAME_HOST_NS && d < WT_SAME_HOST_NS)
        return WT_ALIGN_SAME;
    *shift = d;
    return WT_ALIGN_WALL;
}

/* Every input's shift, moved up together so no time goes below 0. */
static void align_all(const wt_trace *in, size_t n, wt_process *procs)
{
    int64_t lowest = 0;
    for (size_t k = 0; k < n; k++) {
        procs[k].clock = alignment(&in[0], &in[k], &procs[k].shift_ns);
        int64_t start = (int64_t)in[k].hdr.start_ns + procs[k].shift_ns;
        if (start < lowest)
            lowest = start;
    }
    for (size_t k = 0; k < n; k++)
        procs[k].shift_ns -= lowest;
}

/* --- processes ------------------------------------------------------------------ */

/* "NAME pid N", NAME the name of the thread whose id is the pid. */
static char *process_label(const wt_trace *t)
{
    const char *name = NULL;
    for (size_t i = 0; i < t->nthreads && !name; i++)
        if (t->threads[i].os_tid == t->hdr.pid)
            name = wt_name(t, t->threads[i].name_id);
    char buf[96];
    snprintf(buf, sizeof buf, "%.64s pid %u", name && *name ? name : "worker-actor",
        (unsigned)t->hdr.pid);
    return wt_xstrdup(buf);
}

void wt_single_process(wt_trace *t)
{
    t->procs = wt_xcalloc(1, sizeof *t->procs);
    t->nprocs = 1;
    t->procs[0] = (wt_process) {
        .path = t->path, .label = process_label(t), .pid = t->hdr.pid, .worker_end = UINT32_MAX
    };
}

size_t wt_process_of(const wt_trace *t, uint32_t id)
{
    for (size_t k = 0; k < t->nprocs; k++)
        if (id >= t->procs[k].worker_base && id < t->procs[k].worker_end)
            return k;
    return 0;
}

/* --- the merged trace ----------------------------------------------------------- */

static uint64_t max_string_id(const wt_trace *t)
{
    uint64_t max = 0;
    for (size_t i = 0; i < t->names.cap; i++)
        if (t->names.used[i] && t->names.k1[i] == 0 && t->names.k2[i] > max)
            max = t->names.k2[i];
    return max;
}

static void copy_strings(const wt_trace *t, const part_map *pm, wt_trace *out)
{
    for (size_t i = 0; i < t->names.cap; i++) {
        if (!t->names.used[i] || t->names.k1[i] != 0)
            continue; /* k1 != 0: the reader's thread entries */
        wt_map_put(&out->names, 0, move_string(pm, t->names.k2[i]), out->nstrings, NULL);
        *WT_PUSH(out->strings, out->nstrings, out->capstrings)
            = wt_xstrdup(t->strings[t->names.val[i]]);
    }
}

static uint32_t max_thread_number(const wt_trace *t)
{
    uint32_t max = 0;
    for (size_t i = 0; i < t->nthreads; i++)
        max = t->threads[i].number > max ? t->threads[i].number : max;
    return max;
}

static void copy_threads(const wt_trace *t, const part_map *pm, wt_trace *out)
{
    for (size_t i = 0; i < t->nthreads; i++) {
        wt_thread *th = wt_thread_add(out, t->threads[i].number + pm->thread_base);
        uint32_t number = th->number;
        *th = t->threads[i];
        th->number = number;
        th->name_id = move_string(pm, th->name_id);
    }
}

/* Input k's records moved into out; returns the highest worker id used. */
static uint32_t copy_records(const wt_trace *t, const part_map *pm, wt_trace *out)
{
    uint32_t top = (uint32_t)pm->worker_base;
    for (size_t i = 0; i < t->nrecs; i++) {
        wt_rec *r = &out->recs[out->nrecs];
        *r = t->recs[i];
        move_record(pm, r);
        r->order = (uint32_t)out->nrecs++;
        if (r->worker > top)
            top = r->worker;
        if (r->kind == WK_TR_FIRE || r->kind == WK_TR_REJECT || r->kind == WK_TR_DELIVER)
            top = (uint32_t)r->b > top ? (uint32_t)r->b : top;
        if (r->kind == WK_TR_WORKER_CREATED && r->a <= UINT32_MAX)
            top = (uint32_t)r->a > top ? (uint32_t)r->a : top;
    }
    return top;
}

static void add_counts(const wt_trace *t, wt_trace *out)
{
    out->file_size += t->file_size;
    out->chunks += t->chunks;
    out->slots += t->slots;
    out->dropped += t->dropped;
    out->skipped_unknown += t->skipped_unknown;
    out->complete = out->complete && t->complete;
    if (t->partial && !out->partial) {
        out->partial = true;
        snprintf(out->error, sizeof out->error, "%.200s: %.300s", t->path, t->error);
    }
}

static int rec_cmp(const void *pa, const void *pb)
{
    const wt_rec *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The merged header: the first input's, starting at the earliest start. */
static void merged_header(const wt_trace *in, size_t n, wt_trace *out)
{
    out->hdr = in[0].hdr;
    uint64_t start = UINT64_MAX;
    for (size_t k = 0; k < n; k++) {
        uint64_t s = (uint64_t)((int64_t)in[k].hdr.start_ns + out->procs[k].shift_ns);
        start = s < start ? s : start;
    }
    int64_t moved = (int64_t)start - (int64_t)in[0].hdr.start_ns;
    out->hdr.start_ns = start;
    if (out->hdr.start_realtime_ns)
        out->hdr.start_realtime_ns
            = (uint64_t)((int64_t)in[0].hdr.start_realtime_ns + moved - out->procs[0].shift_ns);
}

void wt_merge(const wt_trace *in, size_t n, wt_trace *out)
{
    memset(out, 0, sizeof *out);
    wt_map_init(&out->names);
    out->path = in[0].path;
    out->complete = true;
    out->procs = wt_xcalloc(n, sizeof *out->procs);
    out->nprocs = n;
    align_all(in, n, out->procs);
    size_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += in[k].nrecs;
    out->recs = wt_xcalloc(total + 1, sizeof *out->recs);
    part_map pm = { 0 };
    for (size_t k = 0; k < n; k++) {
        wt_process *p = &out->procs[k];
        pm.shift = p->shift_ns;
        pm.serial_tag = (uint64_t)k << 56;
        copy_strings(&in[k], &pm, out);
        copy_threads(&in[k], &pm, out);
        p->path = in[k].path;
        p->label = process_label(&in[k]);
        p->pid = in[k].hdr.pid;
        p->worker_base = (uint32_t)pm.worker_base;
        p->worker_end = copy_records(&in[k], &pm, out) + 1;
        add_counts(&in[k], out);
        pm.worker_base = p->worker_end;
        pm.string_base += max_string_id(&in[k]) + 1;
        pm.thread_base += max_thread_number(&in[k]) + 1;
    }
    merged_header(in, n, out);
    wt_sort(out->recs, out->nrecs, sizeof *out->recs, rec_cmp);
}
