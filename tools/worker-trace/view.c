/* worker-trace view: one self-contained HTML page.
 *
 * The page is view.html (embedded at build time as wt_view_html[]) with the
 * trace's model inlined as JSON in place of the marker @WORKER_TRACE_DATA@,
 * inside a <script type="application/json"> block ('<', '>' and '&' are
 * escaped in every string, so the data cannot close the block).
 *
 * The data is columnar (one JSON array per field) so that a million-record
 * trace stays a few tens of MB and parses quickly; time columns are
 * delta-encoded (each value minus the previous one in the same column) and
 * the page decodes them into Float64Arrays. Times are ns from the trace's
 * start. Layout of the object: docs/trace-format.md ("The view's data"). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "view_html.h"
#include "wt.h"

#define MARKER "@WORKER_TRACE_DATA@"

typedef struct col {
    FILE *f;
    bool first;
    uint64_t prev;
} col;

static void col_open(col *c, FILE *f, const char *name, bool first_key)
{
    c->f = f;
    c->first = true;
    c->prev = 0;
    fprintf(f, "%s\"%s\":[", first_key ? "" : ",", name);
}

static void col_u(col *c, uint64_t v)
{
    fprintf(c->f, c->first ? "%" PRIu64 : ",%" PRIu64, v);
    c->first = false;
}

static void col_i(col *c, int64_t v)
{
    fprintf(c->f, c->first ? "%" PRId64 : ",%" PRId64, v);
    c->first = false;
}

/* delta-encoded */
static void col_d(col *c, uint64_t v)
{
    col_i(c, (int64_t)(v - c->prev));
    c->prev = v;
}

static void col_close(col *c)
{
    fputc(']', c->f);
}

/* One column: `name`, then `put` of `expr` (over i) for each of the n
 * rows. */
#define COLUMN(c, f, name, first, n, put, expr)                                                    \
    do {                                                                                           \
        col_open(&(c), (f), (name), (first));                                                     \
        for (size_t i = 0; i < (n); i++)                                                           \
            put(&(c), (expr));                                                                     \
        col_close(&(c));                                                                           \
    } while (0)

static int mark_cmp(const void *pa, const void *pb)
{
    const wt_mark *a = pa, *b = pb;
    if (a->lane != b->lane)
        return a->lane < b->lane ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

static int sample_cmp(const void *pa, const void *pb)
{
    const wt_sample *a = pa, *b = pb;
    if (a->lane != b->lane)
        return a->lane < b->lane ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

static void emit_spans(FILE *f, const char *key, const wt_span *s, size_t n)
{
    col c;
    fprintf(f, ",\"%s\":{", key);
    COLUMN(c, f, "lane", true, n, col_u, s[i].lane);
    COLUMN(c, f, "t0", false, n, col_d, s[i].t0);
    COLUMN(c, f, "dur", false, n, col_u, s[i].t1 - s[i].t0);
    COLUMN(c, f, "kind", false, n, col_u, s[i].kind);
    COLUMN(c, f, "what", false, n, col_u, s[i].what);
    COLUMN(c, f, "res", false, n, col_i, s[i].result);
    COLUMN(c, f, "depth", false, n, col_u, s[i].depth);
    COLUMN(c, f, "open", false, n, col_u, s[i].open);
    fputc('}', f);
}

/* The trace's header fields and title. */
static void emit_summary(const wt_model *m, FILE *f, const char *title)
{
    const wt_trace *t = m->trace;
    fputs("{\"v\":1,\"title\":", f);
    wt_json_str(f, title);
    fprintf(f,
        ",\"format\":\"%u.%u\",\"pid\":%" PRIu32 ",\"complete\":%s,\"span\":%" PRIu64
        ",\"records\":%zu,\"threads\":%zu,\"dropped\":%" PRIu64 ",\"partial\":",
        t->hdr.version, t->hdr.minor, t->hdr.pid, t->complete ? "true" : "false", m->t_last - m->t0,
        t->nrecs, t->nthreads, t->dropped);
    wt_json_str(f, t->partial ? t->error : "");
    fprintf(f, ",\"startRealtimeNs\":%" PRIu64, t->hdr.start_realtime_ns);
    fprintf(f, ",\"sampleEvery\":%" PRIu32, wt_sample_every(t));
}

/* Every string id, as an object. */
static void emit_names(const wt_trace *t, FILE *f)
{
    fputs(",\"names\":{", f);
    bool first = true;
    for (size_t i = 0; i < t->names.cap; i++) {
        if (!t->names.used[i] || t->names.k1[i] != 0)
            continue; /* k1 != 0: the reader's thread entries */
        fprintf(f, "%s\"%" PRIu64 "\":", first ? "" : ",", t->names.k2[i]);
        wt_json_str(f, t->strings[t->names.val[i]]);
        first = false;
    }
    fputc('}', f);
}

static void emit_worker(FILE *f, const wt_worker *w)
{
    fprintf(f, "{\"id\":%" PRIu32 ",\"proc\":%d,\"name\":", w->id, w->process);
    wt_json_str(f, w->name);
    fprintf(f,
        ",\"parent\":%d,\"parentId\":%" PRIu32 ",\"depth\":%d,\"daemon\":%s,\"root\":%s,"
        "\"main\":%s,\"created\":%" PRId64 ",\"started\":%" PRId64 ",\"ended\":%" PRId64
        ",\"err\":%" PRId64 ",\"tid\":%" PRIu64 ",\"recv\":%" PRIu64 ",\"sent\":%" PRIu64
        ",\"handled\":%" PRIu64 ",\"runs\":%zu,\"rejects\":%" PRIu64 ",\"maxMailbox\":%" PRIu64
        ",\"waitNs\":%" PRIu64 ",\"restarts\":%" PRIu32,
        w->parent_idx, w->parent, w->depth, w->cflags & WK_TRF_DAEMON ? "true" : "false",
        w->cflags & WK_TRF_ROOT ? "true" : "false", w->cflags & WK_TRF_MAIN ? "true" : "false",
        w->seen_created ? (int64_t)w->created : -1, w->seen_started ? (int64_t)w->started : -1,
        w->seen_ended ? (int64_t)w->ended : -1, w->err, w->os_tid, w->recv, w->sent, w->handled,
        w->nrun, w->rejects, w->max_mailbox, w->wait_ns, w->restarts);
    if (w->supervisor)
        fprintf(f,
            ",\"sup\":{\"strategy\":%" PRIu32 ",\"intensity\":%" PRIu32 ",\"periodMs\":%" PRIu32
            ",\"backoffMs\":%" PRIu32 "}",
            w->strategy, w->intensity, w->period_ms, w->backoff_ms);
    if (w->pooled)
        fprintf(f, ",\"pooled\":true,\"schedSlices\":%" PRIu64, w->sched_slices);
    fputc('}', f);
}

/* The traced processes (several for a merged trace): each one's label,
 * pid, trace file and how its clock was aligned. */
static void emit_processes(const wt_trace *t, FILE *f)
{
    static const char *const how[] = { "same host", "wall clock", "not aligned" };
    fputs(",\"processes\":[", f);
    for (size_t k = 0; k < t->nprocs; k++) {
        const wt_process *p = &t->procs[k];
        fputs(k ? ",{\"label\":" : "{\"label\":", f);
        wt_json_str(f, p->label);
        fputs(",\"path\":", f);
        wt_json_str(f, p->path ? p->path : "");
        fprintf(f, ",\"pid\":%" PRIu32 ",\"clock\":\"%s\",\"shiftNs\":%" PRId64 "}", p->pid,
            how[p->clock >= 0 && p->clock <= 2 ? p->clock : 2], p->shift_ns);
    }
    fputc(']', f);
}

static void emit_workers(const wt_model *m, FILE *f)
{
    fputs(",\"workers\":[", f);
    for (size_t i = 0; i < m->nworkers; i++) {
        fputs(i ? ",\n" : "", f);
        emit_worker(f, &m->workers[i]);
    }
    fputc(']', f);
}

static void emit_slices(const wt_slice *s, size_t n, FILE *f)
{
    col c;
    fputs(",\n\"slices\":{", f);
    COLUMN(c, f, "lane", true, n, col_u, s[i].lane);
    COLUMN(c, f, "t0", false, n, col_d, s[i].t0);
    COLUMN(c, f, "dur", false, n, col_u, s[i].t1 - s[i].t0);
    COLUMN(c, f, "ev", false, n, col_u, s[i].event_name);
    COLUMN(c, f, "ln", false, n, col_u, s[i].listener_name);
    COLUMN(c, f, "depth", false, n, col_u, s[i].depth);
    COLUMN(c, f, "msg", false, n, col_i, s[i].msg);
    COLUMN(c, f, "ret", false, n, col_i, s[i].ret);
    COLUMN(c, f, "flags", false, n, col_u, s[i].flags);
    fputc('}', f);
}

static void emit_msgs(const wt_msg *g, size_t n, FILE *f)
{
    col c;
    fputs(",\n\"msgs\":{", f);
    COLUMN(c, f, "from", true, n, col_u, g[i].from_lane);
    COLUMN(c, f, "to", false, n, col_u, g[i].to_lane);
    COLUMN(c, f, "sender", false, n, col_u, g[i].sender_lane);
    COLUMN(c, f, "tf", false, n, col_d, g[i].t_fire);
    COLUMN(c, f, "q", false, n, col_u, g[i].t_deliver - g[i].t_fire);
    COLUMN(c, f, "ev", false, n, col_u, g[i].event_name);
    COLUMN(c, f, "flags", false, n, col_u, g[i].flags);
    COLUMN(c, f, "serial", false, n, col_u, g[i].serial);
    fputc('}', f);
}

/* The marks sorted by (lane, t), which the page expects. */
static void emit_marks(const wt_mark *marks, size_t n, FILE *f)
{
    col c;
    wt_mark *mk = wt_xcalloc(n, sizeof *mk);
    if (n)
        memcpy(mk, marks, n * sizeof *mk);
    wt_sort(mk, n, sizeof *mk, mark_cmp);
    fputs(",\n\"marks\":{", f);
    COLUMN(c, f, "lane", true, n, col_u, mk[i].lane);
    COLUMN(c, f, "t", false, n, col_d, mk[i].t);
    COLUMN(c, f, "kind", false, n, col_u, mk[i].kind);
    COLUMN(c, f, "flags", false, n, col_u, mk[i].flags);
    COLUMN(c, f, "a", false, n, col_u, mk[i].a);
    COLUMN(c, f, "b", false, n, col_u, mk[i].b);
    fputc('}', f);
    free(mk);
}

/* The mailbox depth samples sorted by (lane, t); closes the data object. */
static void emit_depth_samples(const wt_sample *samples, size_t n, FILE *f)
{
    col c;
    wt_sample *sm = wt_xcalloc(n, sizeof *sm);
    if (n)
        memcpy(sm, samples, n * sizeof *sm);
    wt_sort(sm, n, sizeof *sm, sample_cmp);
    fputs(",\n\"depth\":{", f);
    COLUMN(c, f, "lane", true, n, col_u, sm[i].lane);
    COLUMN(c, f, "t", false, n, col_d, sm[i].t);
    COLUMN(c, f, "v", false, n, col_u, sm[i].depth);
    fputc('}', f);
    free(sm);
}

/* Pooled workers: the scheduler threads ("scheds", in (process, index,
 * tid) order; proc: index into processes)
 * and the slices they ran ("sched", sorted by lane, then start; sched is
 * an index into scheds; flags 1 open, 2 the worker's run ended in it). */
static void emit_sched_slices(const wt_model *m, FILE *f)
{
    fputs(",\n\"scheds\":[", f);
    for (size_t i = 0; i < m->nscheds; i++) {
        const wt_sched *s = &m->scheds[i];
        fprintf(f, "%s{\"index\":%" PRIu32 ",\"proc\":%d,\"tid\":%" PRIu64 ",\"name\":",
            i ? "," : "", s->index, s->process, s->os_tid);
        wt_json_str(f, s->name);
        fprintf(f, ",\"slices\":%" PRIu64 ",\"busyNs\":%" PRIu64 "}", s->slices, s->busy_ns);
    }
    fputc(']', f);
    const wt_sched_slice *s = m->sched_slices;
    size_t n = m->nsched_slices;
    col c;
    fputs(",\n\"sched\":{", f);
    COLUMN(c, f, "lane", true, n, col_u, s[i].lane);
    COLUMN(c, f, "t0", false, n, col_d, s[i].t0);
    COLUMN(c, f, "dur", false, n, col_u, s[i].t1 - s[i].t0);
    COLUMN(c, f, "sched", false, n, col_u, s[i].sched);
    COLUMN(c, f, "flags", false, n, col_u, s[i].flags);
    fputc('}', f);
}

/* The data object; `extra` (or NULL) is added to its members. */
static void emit_data(const wt_model *m, FILE *f, const char *title, const char *extra)
{
    emit_summary(m, f, title);
    emit_names(m->trace, f);
    emit_processes(m->trace, f);
    emit_workers(m, f);
    emit_slices(m->slices, m->nslices, f);
    emit_msgs(m->msgs, m->nmsgs, f);
    emit_spans(f, "waits", m->waits, m->nwaits);
    emit_spans(f, "pauses", m->pauses, m->npauses);
    emit_marks(m->marks, m->nmarks, f);
    emit_depth_samples(m->samples, m->nsamples, f);
    emit_sched_slices(m, f);
    fputs(extra ? extra : "", f);
    fputc('}', f);
}

int wt_view_data(const wt_model *m, FILE *f, const char *title, const char *extra)
{
    emit_data(m, f, title, extra);
    return ferror(f) ? -1 : 0;
}

int wt_view(const wt_model *m, FILE *f, const char *title)
{
    return wt_view_page(m, f, title, NULL);
}

int wt_view_page(const wt_model *m, FILE *f, const char *title, const char *extra)
{
    const char *page = (const char *)wt_view_html;
    size_t len = sizeof wt_view_html;
    size_t mlen = strlen(MARKER);
    const char *at = NULL;
    for (size_t i = 0; i + mlen <= len; i++) {
        if (memcmp(page + i, MARKER, mlen) == 0) {
            at = page + i;
            break;
        }
    }
    if (!at) {
        fputs("worker-trace: internal error: the page template has no data marker\n", stderr);
        return -1;
    }
    fwrite(page, 1, (size_t)(at - page), f);
    emit_data(m, f, title, extra);
    fwrite(at + mlen, 1, len - (size_t)(at - page) - mlen, f);
    return ferror(f) ? -1 : 0;
}
