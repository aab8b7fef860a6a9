/* worker-trace stats: a plain-text summary of a trace.
 *
 * Per worker (tree order): events queued on it (recv), events it fired
 * (sent; a bubble or broadcast counts once, each channel delivery once),
 * events its loop handled, listener runs and their duration percentiles,
 * rejected fires, the deepest mailbox seen, how it ended. Then the longest
 * waits and the busiest sender -> receiver pairs (every queued event, hops
 * included). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

/* Nearest-rank percentile of sorted values. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned p)
{
    size_t rank = (size_t)(((uint64_t)n * p + 99) / 100);
    if (rank == 0)
        rank = 1;
    return v[rank - 1];
}

static void put_us(FILE *out, const uint64_t *v, size_t n, unsigned p)
{
    if (!n) {
        fprintf(out, " %9s", "-");
        return;
    }
    uint64_t x = p == 100 ? v[n - 1] : percentile(v, n, p);
    fprintf(out, " %9.1f", (double)x / 1e3);
}

static const char *end_text(const wt_worker *w, char *buf, size_t len)
{
    if (!w->seen_ended)
        return w->seen_started ? "running" : "-";
    if (w->err == 0)
        return "ok";
    const char *n = wt_err_name(w->err);
    if (n && strncmp(n, "WORKER_", 7) == 0)
        return n + 7;
    snprintf(buf, len, "err=%" PRId64, w->err);
    return buf;
}

typedef struct pair {
    uint32_t from, to;
    uint64_t count;
} pair;

/* Two spaces per tree level, at most MAX_INDENT_LEVELS: a deep (or
 * corrupt) tree must not make every line kilobytes wide. */
#define MAX_INDENT_LEVELS 32
static int indent_of(int depth)
{
    return (depth < MAX_INDENT_LEVELS ? depth : MAX_INDENT_LEVELS) * 2;
}

static int pair_cmp(const void *pa, const void *pb)
{
    const pair *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    if (a->from != b->from)
        return a->from < b->from ? -1 : 1;
    return a->to < b->to ? -1 : a->to > b->to;
}

static int wait_cmp(const void *pa, const void *pb)
{
    const wt_span *a = *(const wt_span *const *)pa, *b = *(const wt_span *const *)pb;
    uint64_t da = a->t1 - a->t0, db = b->t1 - b->t0;
    if (da != db)
        return da > db ? -1 : 1;
    return a->t0 < b->t0 ? -1 : a->t0 > b->t0;
}

static void wait_what(const wt_model *m, const wt_span *s, char *buf, size_t len)
{
    switch (s->kind) {
    case WK_TRW_EVENT: {
        const char *n = wt_model_str(m, s->what);
        snprintf(buf, len, "%s", *n ? n : "-");
        break;
    }
    case WK_TRW_THREAD:
    case WK_TRW_JOIN:
        snprintf(buf, len, "worker %" PRIu64, s->what);
        break;
    case WK_TRW_FUTURE:
    case WK_TRW_DEFER:
        snprintf(buf, len, "#%" PRIu64, s->what);
        break;
    default:
        snprintf(buf, len, "-");
    }
}

/* Merged traces: each process, its worker ids and how its clock was put
 * on the common axis. */
static void put_processes(const wt_trace *t, FILE *out)
{
    static const char *const how[] = { "same host", "wall clock (approximate)", "not aligned" };
    for (size_t k = 0; t->nprocs > 1 && k < t->nprocs; k++) {
        const wt_process *p = &t->procs[k];
        fprintf(out,
            "process %zu: %s  %s  workers #%" PRIu32 "..#%" PRIu32 "  clock: %s, %+.3f ms\n", k,
            p->label, p->path, p->worker_base + 1, p->worker_end - 1,
            how[p->clock >= 0 && p->clock <= 2 ? p->clock : 2], (double)p->shift_ns / 1e6);
    }
}

static void put_summary(const wt_model *m, FILE *out)
{
    const wt_trace *t = m->trace;
    fprintf(out, "trace: %s\n", t->path);
    fprintf(out,
        "format %u.%u  pid %" PRIu32 "  threads %zu  chunks %" PRIu64 "  records %zu"
        "  dropped %" PRIu64 "  %s\n",
        t->hdr.version, t->hdr.minor, t->hdr.pid, t->nthreads, t->chunks, t->nrecs, t->dropped,
        t->complete ? "complete" : "PARTIAL");
    if (wt_sample_every(t) > 1)
        fprintf(out,
            "sampled: the flow of 1 event in %" PRIu32 " was recorded; counts of events and "
            "listener runs below are of the sampled ones\n",
            wt_sample_every(t));
    if (t->partial)
        fprintf(out, "partial: %s\n", t->error);
    put_processes(t, out);
    fprintf(
        out, "span %.3f ms (trace start to last record)\n\n", (double)(m->t_last - m->t0) / 1e6);
}

static void put_workers(const wt_model *m, FILE *out)
{
    fprintf(out, "workers (tree order; listener run times in microseconds)\n");
    fprintf(out, "%6s %7s %7s %7s %7s %9s %9s %9s %9s %7s %7s %9s  %s\n", "id", "recv", "sent",
        "handled", "runs", "p50", "p90", "p99", "max", "rejects", "mailbox", "end", "name");
    for (size_t i = 0; i < m->nworkers; i++) {
        const wt_worker *w = &m->workers[i];
        char eb[32];
        fprintf(out, "%6" PRIu32 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7zu", w->id, w->recv,
            w->sent, w->handled, w->nrun);
        put_us(out, w->run_ns, w->nrun, 50);
        put_us(out, w->run_ns, w->nrun, 90);
        put_us(out, w->run_ns, w->nrun, 99);
        put_us(out, w->run_ns, w->nrun, 100);
        fprintf(out, " %7" PRIu64 " %7" PRIu64 " %9s  %*s%s\n", w->rejects, w->max_mailbox,
            end_text(w, eb, sizeof eb), indent_of(w->depth), "", w->name);
    }
}

/* "open", the error's name without "WORKER_", or the number. */
static void wait_result(const wt_span *s, char *buf, size_t len)
{
    const char *rn = wt_err_name(s->result);
    if (s->open)
        snprintf(buf, len, "open");
    else if (rn)
        snprintf(buf, len, "%s", strncmp(rn, "WORKER_", 7) == 0 ? rn + 7 : rn);
    else
        snprintf(buf, len, "%" PRId64, s->result);
}

/* A table's title and how many rows it shows: "(top 10 of 12)", "(all 8)"
 * or "(none)", never more than there are. */
static void put_table_title(FILE *out, const char *title, int top, size_t count)
{
    if (count == 0)
        fprintf(out, "\n%s (none)\n", title);
    else if (count <= (size_t)top)
        fprintf(out, "\n%s (all %zu)\n", title, count);
    else
        fprintf(out, "\n%s (top %d of %zu)\n", title, top, count);
}

static void put_longest_waits(const wt_model *m, FILE *out, int top)
{
    const wt_span **ws = wt_xcalloc(m->nwaits, sizeof *ws);
    for (size_t i = 0; i < m->nwaits; i++)
        ws[i] = &m->waits[i];
    wt_sort(ws, m->nwaits, sizeof *ws, wait_cmp);
    size_t nw = m->nwaits < (size_t)top ? m->nwaits : (size_t)top;
    put_table_title(out, "longest waits", top, m->nwaits);
    fprintf(out, "%12s %12s %8s %10s  %-20s %s\n", "duration_ms", "begin_ms", "kind", "result",
        "what", "worker");
    for (size_t i = 0; i < nw; i++) {
        const wt_span *s = ws[i];
        char what[64], res[32];
        wait_what(m, s, what, sizeof what);
        wait_result(s, res, sizeof res);
        fprintf(out, "%12.3f %12.3f %8s %10s  %-20s %s (#%" PRIu32 ")\n",
            (double)(s->t1 - s->t0) / 1e6, (double)s->t0 / 1e6, wt_wait_kind_name(s->kind), res,
            what, m->workers[s->lane].name, m->workers[s->lane].id);
    }
    free(ws);
}

/* Events per (original sender, receiver) lane pair, busiest first. */
static pair *count_pairs(const wt_model *m, size_t *npairs)
{
    wt_map pm;
    wt_map_init(&pm);
    pair *ps = NULL;
    size_t np = 0, cap = 0;
    for (size_t i = 0; i < m->nmsgs; i++) {
        const wt_msg *g = &m->msgs[i];
        if (g->flags & WT_MSG_NO_FIRE)
            continue;
        bool ins;
        uint64_t *v = wt_map_put(&pm, g->sender_lane, g->to_lane, np, &ins);
        if (ins) {
            pair *p = WT_PUSH(ps, np, cap);
            p->from = g->sender_lane;
            p->to = g->to_lane;
            p->count = 0;
        }
        ps[*v].count++;
    }
    wt_map_free(&pm);
    wt_sort(ps, np, sizeof *ps, pair_cmp);
    *npairs = np;
    return ps;
}

static void put_top_pairs(const wt_model *m, FILE *out, int top)
{
    size_t np;
    pair *ps = count_pairs(m, &np);
    put_table_title(out, "top sender -> receiver pairs", top, np);
    fprintf(out, "%9s  %s\n", "events", "sender -> receiver");
    for (size_t i = 0; i < np && i < (size_t)top; i++) {
        const wt_worker *a = &m->workers[ps[i].from], *b = &m->workers[ps[i].to];
        fprintf(out, "%9" PRIu64 "  %s (#%" PRIu32 ") -> %s (#%" PRIu32 ")\n", ps[i].count, a->name,
            a->id, b->name, b->id);
    }
    free(ps);
}

int wt_stats(const wt_model *m, FILE *out, int top)
{
    put_summary(m, out);
    put_workers(m, out);
    put_longest_waits(m, out, top);
    put_top_pairs(m, out, top);
    return ferror(out) ? -1 : 0;
}
