/* worker-trace perfetto: Chrome Trace Event JSON (ui.perfetto.dev,
 * chrome://tracing).
 *
 * One process per traced process (several for merged traces: each worker's
 * own pid), one thread per worker (tid = worker id,
 * named by thread_name metadata, ordered by thread_sort_index = tree
 * order). On each worker's thread: a complete ("X") slice per delivered
 * event (cat "event", from its delivery to the end of its last listener run),
 * the listener runs nested in it (cat "listener"), a 1 ns "send" slice
 * where an event was fired (something for the flow to start from), and the waits (cat "wait").
 * Messages are v1 flows: "s" on the sender's send slice, "f" (bp "e") on the receiver's event
 * slice, one flow id per queued event (a message across processes too). Pauses are async "b"/"e"
 * pairs (they need not nest with slices), mailbox depth a "C" counter per worker, and stops,
 * rejects, timers, settles and ends are thread instants ("i"). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

/* The output and what every event shares. */
typedef struct json_out {
    FILE *f;
    const wt_trace *t;
    bool first; /* no event written yet */
} json_out;

static void ts(FILE *f, const char *key, uint64_t ns)
{
    fprintf(f, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static void head_in(json_out *o, const char *ph, uint32_t pid, uint32_t tid)
{
    fputs(o->first ? "\n" : ",\n", o->f);
    o->first = false;
    fprintf(o->f, "{\"ph\":\"%s\",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32, ph, pid, tid);
}

/* Starts an event: its phase, and the thread of worker `tid` in its process. */
static void head(json_out *o, const char *ph, uint32_t tid)
{
    head_in(o, ph, o->t->procs[wt_process_of(o->t, tid)].pid, tid);
}

const char *wt_mark_kind_name(uint16_t kind)
{
    switch (kind) {
    case WK_TR_WORKER_ENDED:
        return "ended";
    case WK_TR_REJECT:
        return "reject";
    case WK_TR_RESUME:
        return "resume";
    case WK_TR_STOP:
        return "stop";
    case WK_TR_TIMER_ARMED:
        return "timer armed";
    case WK_TR_TIMER_FIRED:
        return "timer fired";
    case WK_TR_TIMER_CANCELLED:
        return "timer cancelled";
    case WK_TR_FUTURE_SETTLED:
        return "future settled";
    case WK_TR_DEFER_SETTLED:
        return "defer settled";
    case WK_TR_CHANNEL_PUBLISH:
        return "channel publish";
    case WK_TR_DROPPED:
        return "records dropped";
    case WK_TR_REQUEST_EXPIRED:
        return "request expired";
    case WK_TR_EVENT_DROPPED:
        return "event dropped";
    case WK_TR_CHILD_RESTART:
        return "restart";
    case WK_TR_SUPERVISOR_STARTED:
        return "supervisor started";
    default:
        return "mark";
    }
}

/* The file's header, the process's name and each worker's thread name and
 * place. */
static void put_metadata(const wt_model *m, json_out *o)
{
    const wt_trace *t = m->trace;
    FILE *f = o->f;
    fprintf(f,
        "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"worker-trace\","
        "\"format\":\"%u.%u\",\"pid\":%" PRIu32 ",\"processes\":%zu,\"complete\":%s,"
        "\"sampleEvery\":%" PRIu32 "},\n\"traceEvents\":[",
        t->hdr.version, t->hdr.minor, t->hdr.pid, t->nprocs, t->complete ? "true" : "false",
        wt_sample_every(t));
    for (size_t k = 0; k < t->nprocs; k++) {
        head_in(o, "M", t->procs[k].pid, 0);
        fputs(",\"name\":\"process_name\",\"args\":{\"name\":", f);
        wt_json_str(f, t->procs[k].label);
        fputs("}}", f);
    }
    for (size_t i = 0; i < m->nworkers; i++) {
        const wt_worker *w = &m->workers[i];
        char buf[64];
        snprintf(buf, sizeof buf, " #%" PRIu32, w->id);
        head(o, "M", w->id);
        fputs(",\"name\":\"thread_name\",\"args\":{\"name\":", f);
        size_t n = strlen(w->name);
        char *label = wt_xmalloc(n + strlen(buf) + 1);
        memcpy(label, w->name, n);
        strcpy(label + n, buf);
        wt_json_str(f, label);
        free(label);
        fputs("}}", f);
        head(o, "M", w->id);
        fprintf(f, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%zu}}", i);
    }
}

/* Where each message's event slice ends: at its last listener run, or at
 * its delivery. */
static uint64_t *event_ends(const wt_model *m)
{
    uint64_t *dend = wt_xcalloc(m->nmsgs, sizeof *dend);
    for (size_t i = 0; i < m->nmsgs; i++)
        dend[i] = m->msgs[i].t_deliver;
    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        if (s->msg >= 0 && s->t1 > dend[s->msg])
            dend[s->msg] = s->t1;
    }
    return dend;
}

/* The 1 ns slice on the sender where a flow starts. */
static void put_send(json_out *o, const wt_msg *g, uint32_t tid, const char *name)
{
    head(o, "X", tid);
    ts(o->f, "ts", g->t_fire);
    fputs(",\"dur\":0.001,\"cat\":\"send\",\"name\":", o->f);
    wt_json_str(o->f, name);
    fputs("}", o->f);
}

/* The receiver's slice of a delivered event, from delivery to `end`. */
static void put_event(
    const wt_model *m, json_out *o, const wt_msg *g, uint64_t end, const char *name)
{
    FILE *f = o->f;
    head(o, "X", m->workers[g->to_lane].id);
    ts(f, "ts", g->t_deliver);
    ts(f, "dur", end > g->t_deliver ? end - g->t_deliver : 1);
    fputs(",\"cat\":\"event\",\"name\":", f);
    wt_json_str(f, name);
    fprintf(f, ",\"args\":{\"serial\":%" PRIu64 ",\"sender\":", g->serial);
    wt_json_str(f, m->workers[g->sender_lane].name);
    fprintf(f, ",\"queued_us\":%.3f,\"bubble\":%s,\"broadcast\":%s,\"channel\":%s,\"hop\":%s}}",
        (double)(g->t_deliver - g->t_fire) / 1e3, g->flags & WK_TRF_BUBBLE ? "true" : "false",
        g->flags & WK_TRF_BROADCAST ? "true" : "false",
        g->flags & WK_TRF_CHANNEL ? "true" : "false",
        g->flags & (WK_TRF_HOP_UP | WK_TRF_HOP_DOWN) ? "true" : "false");
}

/* The flow of message number `id`: "s" at the fire, "f" at the delivery. */
static void put_flow(
    json_out *o, const wt_msg *g, size_t id, uint32_t from, uint32_t to, const char *name)
{
    head(o, "s", from);
    ts(o->f, "ts", g->t_fire);
    fprintf(o->f, ",\"id\":%zu,\"cat\":\"message\",\"name\":", id);
    wt_json_str(o->f, name);
    fputs("}", o->f);
    head(o, "f", to);
    ts(o->f, "ts", g->t_deliver);
    fprintf(o->f, ",\"bp\":\"e\",\"id\":%zu,\"cat\":\"message\",\"name\":", id);
    wt_json_str(o->f, name);
    fputs("}", o->f);
}

static void put_messages(const wt_model *m, json_out *o)
{
    uint64_t *dend = event_ends(m);
    for (size_t i = 0; i < m->nmsgs; i++) {
        const wt_msg *g = &m->msgs[i];
        const wt_worker *from = &m->workers[g->from_lane], *to = &m->workers[g->to_lane];
        const char *name = wt_model_str(m, g->event_name);
        if (!(g->flags & WT_MSG_NO_FIRE))
            put_send(o, g, from->id, name);
        if (!(g->flags & WT_MSG_DELIVERED))
            continue;
        put_event(m, o, g, dend[i], name);
        if (!(g->flags & WT_MSG_NO_FIRE))
            put_flow(o, g, i + 1, from->id, to->id, name);
    }
    free(dend);
}

static void put_listener_runs(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        head(o, "X", m->workers[s->lane].id);
        ts(o->f, "ts", s->t0);
        ts(o->f, "dur", s->t1 - s->t0);
        fputs(",\"cat\":\"listener\",\"name\":", o->f);
        const char *ln = wt_model_str(m, s->listener_name);
        wt_json_str(o->f, *ln ? ln : "listener");
        fputs(",\"args\":{\"event\":", o->f);
        wt_json_str(o->f, wt_model_str(m, s->event_name));
        fprintf(o->f, ",\"serial\":%" PRIu64 ",\"ret\":%" PRId32 ",\"open\":%s}}", s->serial,
            s->ret, s->flags & WT_SLICE_OPEN ? "true" : "false");
    }
}

static void put_waits(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->nwaits; i++) {
        const wt_span *s = &m->waits[i];
        head(o, "X", m->workers[s->lane].id);
        ts(o->f, "ts", s->t0);
        ts(o->f, "dur", s->t1 - s->t0);
        fprintf(o->f,
            ",\"cat\":\"wait\",\"name\":\"wait %s\",\"args\":{\"what\":%" PRIu64
            ",\"result\":%" PRId64 ",\"open\":%s}}",
            wt_wait_kind_name(s->kind), s->what, s->result, s->open ? "true" : "false");
    }
}

static void put_pauses(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->npauses; i++) {
        const wt_span *s = &m->pauses[i];
        uint32_t tid = m->workers[s->lane].id;
        head(o, "b", tid);
        ts(o->f, "ts", s->t0);
        fprintf(o->f, ",\"cat\":\"pause\",\"name\":\"paused\",\"id\":\"pause-%zu\"}", i);
        head(o, "e", tid);
        ts(o->f, "ts", s->t1);
        fprintf(o->f, ",\"cat\":\"pause\",\"name\":\"paused\",\"id\":\"pause-%zu\"}", i);
    }
}

/* One "mailbox <worker> #<id>" counter per worker. */
static void put_mailbox_depths(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->nsamples; i++) {
        const wt_sample *s = &m->samples[i];
        const wt_worker *w = &m->workers[s->lane];
        char buf[48];
        snprintf(buf, sizeof buf, " #%" PRIu32, w->id);
        size_t n = strlen(w->name);
        char *label = wt_xmalloc(n + strlen(buf) + 9);
        memcpy(label, "mailbox ", 8);
        memcpy(label + 8, w->name, n);
        strcpy(label + 8 + n, buf);
        head(o, "C", w->id);
        ts(o->f, "ts", s->t);
        fputs(",\"name\":", o->f);
        wt_json_str(o->f, label);
        fprintf(o->f, ",\"args\":{\"depth\":%" PRIu64 "}}", s->depth);
        free(label);
    }
}

static void put_marks(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->nmarks; i++) {
        const wt_mark *k = &m->marks[i];
        head(o, "i", m->workers[k->lane].id);
        ts(o->f, "ts", k->t);
        fprintf(o->f,
            ",\"s\":\"t\",\"cat\":\"mark\",\"name\":\"%s\",\"args\":{\"a\":%" PRIu64
            ",\"b\":%" PRIu64 ",\"flags\":%u}}",
            wt_mark_kind_name(k->kind), k->a, k->b, k->flags);
    }
}

/* Pooled workers: each scheduler thread is a thread of its own (its OS
 * tid, named wk-sched-N, sorted after the workers, in the process of the
 * workers it ran) with an "X" slice, cat
 * "sched", named by the worker, for each slice it ran a pooled worker. */
static void put_sched_slices(const wt_model *m, json_out *o)
{
    for (size_t i = 0; i < m->nscheds; i++) {
        const wt_sched *s = &m->scheds[i];
        uint32_t pid = o->t->procs[s->process].pid;
        head_in(o, "M", pid, s->track_tid);
        fputs(",\"name\":\"thread_name\",\"args\":{\"name\":", o->f);
        wt_json_str(o->f, s->name);
        fputs("}}", o->f);
        head_in(o, "M", pid, s->track_tid);
        fprintf(o->f, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%zu}}",
            m->nworkers + i);
    }
    for (size_t i = 0; i < m->nsched_slices; i++) {
        const wt_sched_slice *s = &m->sched_slices[i];
        const wt_worker *w = &m->workers[s->lane];
        const wt_sched *sc = &m->scheds[s->sched];
        head_in(o, "X", o->t->procs[sc->process].pid, sc->track_tid);
        ts(o->f, "ts", s->t0);
        ts(o->f, "dur", s->t1 - s->t0);
        fputs(",\"cat\":\"sched\",\"name\":", o->f);
        wt_json_str(o->f, w->name);
        fprintf(o->f,
            ",\"args\":{\"worker\":%" PRIu32 ",\"sched\":%" PRIu32 ",\"ended\":%s,\"open\":%s}}",
            w->id, sc->index, s->flags & WT_SCHED_ENDED ? "true" : "false",
            s->flags & WT_SCHED_OPEN ? "true" : "false");
    }
}

int wt_perfetto(const wt_model *m, FILE *f)
{
    json_out o = { .f = f, .t = m->trace, .first = true };
    put_metadata(m, &o);
    put_messages(m, &o);
    put_listener_runs(m, &o);
    put_waits(m, &o);
    put_pauses(m, &o);
    put_mailbox_depths(m, &o);
    put_marks(m, &o);
    put_sched_slices(m, &o);
    fputs("\n]}\n", f);
    return ferror(f) ? -1 : 0;
}
