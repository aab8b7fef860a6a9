/* worker-trace: the slices of pooled workers on the scheduler threads.
 *
 * A pooled worker (worker_opts.pooled) has no thread of its own: the
 * scheduler's threads (wk-sched-N) run it in slices, each written as
 * SLICE_BEGIN .. SLICE_END on the scheduler thread's chunks (`a`: the
 * scheduler index). Here the pass over the records (model.c) hands every
 * such record over; a begin opens a slice on the worker's lane, the next end
 * closes it. A begin while one is open (the end was dropped) closes the open
 * one there; an end without a begin is ignored; slices still open at the
 * end close at the last record, flagged open, or, when the worker's run
 * ended in one (its SLICE_END, written after the end, can miss a trace
 * stopped as soon as the worker was joined), at that end, flagged ended. Each (scheduler index,
 * trace thread) seen is a wt_sched, sorted by (process, index, OS tid).
 *
 * Merged traces (merge.c): each input's thread numbers are moved above
 * those of the inputs before it, in its records and in the merged thread
 * table alike, so (index, r->thread) and wt_thread_of(r->thread) name the
 * scheduler thread of the record's own process; its process is that of the
 * pooled worker the slice ran (worker ids are moved per input too). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

struct wt_sched_state {
    wt_model *m;
    wt_map open; /* (lane, 1) -> index of its open slice + 1 */
    wt_map by_thread; /* (scheduler index, trace thread) -> index into m->scheds */
};

wt_sched_state *wt_sched_begin(wt_model *m)
{
    wt_sched_state *st = wt_xcalloc(1, sizeof *st);
    st->m = m;
    wt_map_init(&st->open);
    wt_map_init(&st->by_thread);
    return st;
}

/* The scheduler thread of record r (index a, on r's thread). */
static uint32_t sched_of(wt_sched_state *st, const wt_rec *r, uint32_t lane)
{
    wt_model *m = st->m;
    uint32_t index = r->a <= UINT32_MAX ? (uint32_t)r->a : UINT32_MAX;
    bool inserted;
    uint64_t *v = wt_map_put(&st->by_thread, index, r->thread, m->nscheds, &inserted);
    if (inserted) {
        wt_sched *s = WT_PUSH(m->scheds, m->nscheds, m->capscheds);
        memset(s, 0, sizeof *s);
        s->index = index;
        s->thread = r->thread;
        s->process = m->workers[lane].process;
        const wt_thread *th = wt_thread_of(m->trace, r->thread);
        const char *nm = th ? wt_name(m->trace, th->name_id) : NULL;
        s->os_tid = th ? th->os_tid : 0;
        char buf[40];
        if (!nm || !*nm) {
            snprintf(buf, sizeof buf, "wk-sched-%" PRIu32, index);
            nm = buf;
        }
        s->name = wt_xstrdup(nm);
    }
    return (uint32_t)*v;
}

static void close_slice(wt_model *m, size_t i, uint64_t t, uint16_t flags)
{
    wt_sched_slice *s = &m->sched_slices[i];
    s->t1 = t > s->t0 ? t : s->t0;
    s->flags = flags;
    m->scheds[s->sched].busy_ns += s->t1 - s->t0;
}

void wt_sched_record(wt_sched_state *st, const wt_rec *r, uint32_t lane)
{
    wt_model *m = st->m;
    uint64_t t = r->ts - m->t0;
    wt_worker *w = &m->workers[lane];
    w->pooled = true;
    uint64_t *open = wt_map_get(&st->open, lane, 1);
    if (r->kind == WK_TR_SLICE_END) {
        if (open && *open) {
            close_slice(m, *open - 1, t, r->flags & WK_TRF_ENDED ? WT_SCHED_ENDED : 0);
            *open = 0;
        }
        return;
    }
    if (r->kind != WK_TR_SLICE_BEGIN)
        return;
    if (open && *open)
        close_slice(m, *open - 1, t, WT_SCHED_OPEN); /* its end was lost */
    uint32_t sched = sched_of(st, r, lane);
    wt_sched_slice *s = WT_PUSH(m->sched_slices, m->nsched_slices, m->capsched_slices);
    memset(s, 0, sizeof *s);
    s->t0 = s->t1 = t;
    s->lane = lane;
    s->sched = sched;
    s->flags = WT_SCHED_OPEN;
    m->scheds[sched].slices++;
    w->sched_slices++;
    *wt_map_put(&st->open, lane, 1, 0, NULL) = m->nsched_slices;
}

static int sched_slice_cmp(const void *pa, const void *pb)
{
    const wt_sched_slice *a = pa, *b = pb;
    if (a->lane != b->lane)
        return a->lane < b->lane ? -1 : 1;
    if (a->t0 != b->t0)
        return a->t0 < b->t0 ? -1 : 1;
    return a->t1 < b->t1 ? -1 : a->t1 > b->t1;
}

typedef struct sched_key {
    wt_sched s;
    uint32_t old;
} sched_key;

static int sched_cmp(const void *pa, const void *pb)
{
    const sched_key *a = pa, *b = pb;
    if (a->s.process != b->s.process)
        return a->s.process < b->s.process ? -1 : 1;
    if (a->s.index != b->s.index)
        return a->s.index < b->s.index ? -1 : 1;
    if (a->s.os_tid != b->s.os_tid)
        return a->s.os_tid < b->s.os_tid ? -1 : 1;
    return a->s.thread < b->s.thread ? -1 : a->s.thread > b->s.thread;
}

/* m->scheds in (process, index, tid) order, the slices' references renumbered. */
static void sort_scheds(wt_model *m)
{
    size_t n = m->nscheds;
    sched_key *k = wt_xcalloc(n ? n : 1, sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = (sched_key) { m->scheds[i], (uint32_t)i };
    wt_sort(k, n, sizeof *k, sched_cmp);
    uint32_t *to = wt_xcalloc(n ? n : 1, sizeof *to);
    for (size_t i = 0; i < n; i++) {
        m->scheds[i] = k[i].s;
        to[k[i].old] = (uint32_t)i;
    }
    for (size_t i = 0; i < m->nsched_slices; i++)
        m->sched_slices[i].sched = to[m->sched_slices[i].sched];
    free(to);
    free(k);
}

/* The thread id each scheduler thread has in the perfetto outputs: its OS
 * tid, unless that is unknown, taken by a worker (worker ids are the
 * workers' tids there) or by an earlier scheduler thread. */
static void assign_track_tids(wt_model *m)
{
    wt_map used;
    wt_map_init(&used);
    for (size_t i = 0; i < m->nworkers; i++)
        wt_map_put(&used, m->workers[i].id, 0, 1, NULL);
    uint32_t spare = 0x7ffffffeu;
    for (size_t i = 0; i < m->nscheds; i++) {
        wt_sched *s = &m->scheds[i];
        uint64_t tid = s->os_tid;
        if (!tid || tid > 0x7fffffffu || wt_map_get(&used, tid, 0)) {
            while (wt_map_get(&used, spare, 0))
                spare--;
            tid = spare;
        }
        s->track_tid = (uint32_t)tid;
        wt_map_put(&used, tid, 0, 1, NULL);
    }
    wt_map_free(&used);
}

void wt_sched_finish(wt_sched_state *st)
{
    wt_model *m = st->m;
    uint64_t tend = m->t_last - m->t0;
    for (size_t i = 0; i < st->open.cap; i++) {
        if (!st->open.used[i] || !st->open.val[i])
            continue;
        size_t k = st->open.val[i] - 1;
        const wt_worker *w = &m->workers[m->sched_slices[k].lane];
        if (w->seen_ended && w->ended >= m->sched_slices[k].t0) /* SLICE_END lost after the end */
            close_slice(m, k, w->ended, WT_SCHED_OPEN | WT_SCHED_ENDED);
        else
            close_slice(m, k, tend, WT_SCHED_OPEN);
    }
    sort_scheds(m);
    wt_sort(m->sched_slices, m->nsched_slices, sizeof *m->sched_slices, sched_slice_cmp);
    assign_track_tids(m);
    wt_map_free(&st->open);
    wt_map_free(&st->by_thread);
    free(st);
}
