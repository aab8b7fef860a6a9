/* worker-trace perfetto: Perfetto's native protobuf trace (TrackEvent),
 * the default output of `perfetto` (JSON with --json or a .json file).
 *
 * No protobuf library: the few messages are written here by hand with the
 * wire format's two primitives, a varint (7 bits a byte, low first, the top
 * bit set on every byte but the last) and a key (field number << 3 | wire
 * type: 0 varint, 1 fixed64, 2 length-delimited). A nested message is
 * built in its own buffer and written as a length-delimited field. The
 * fields used, with their numbers in Perfetto's protos:
 *
 *   Trace          packet 1 (TracePacket, repeated)
 *   TracePacket    timestamp 8, trusted_packet_sequence_id 10 (always 1),
 *                  track_event 11, interned_data 12, sequence_flags 13
 *                  (1 incremental state cleared: the first packet only),
 *                  track_descriptor 60
 *   TrackDescriptor uuid 1, name 2, process 3, thread 4, parent_uuid 5,
 *                  counter 8 (an empty CounterDescriptor)
 *   ProcessDescriptor pid 1, process_name 6
 *   ThreadDescriptor pid 1, tid 2, thread_name 5
 *   TrackEvent     category_iids 3, debug_annotations 4, type 9 (1 slice
 *                  begin, 2 slice end, 3 instant, 4 counter), name_iid 10,
 *                  track_uuid 11, counter_value 30, flow_ids 47 (fixed64),
 *                  terminating_flow_ids 48 (fixed64)
 *   DebugAnnotation name_iid 1, int_value 4
 *   InternedData   event_categories 1, event_names 2,
 *                  debug_annotation_names 3 (each: iid 1, name 2)
 *
 * What is written is what the JSON output holds: a process track per traced
 * process (several for merged traces; uuid 1, then after the workers'), one thread
 * track per worker (tid = worker id), on it a slice per delivered event
 * with its listener runs nested, an instant where each event was sent (the
 * flow's start; the flow ends on the event's slice), the waits; a child
 * track per worker for pauses, a counter track for its mailbox depth, and
 * instants for the marks. Names are interned once (an event name's iid is
 * its string id in the trace), so an event costs a few bytes. Timestamps
 * are ns from the trace's start. Slice begins and ends are written in time
 * order, inner slices ending before outer ones at the same time. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

/* --- the wire format ------------------------------------------------------------ */

typedef struct pb {
    unsigned char *p;
    size_t n, cap;
} pb;

static void pb_raw(pb *b, const void *s, size_t n)
{
    wt_grow((void **)&b->p, &b->cap, b->n + n, 1);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    do {
        t[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(b, t, n);
}

static void pb_uint(pb *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_fixed64(pb *b, unsigned field, uint64_t v)
{
    unsigned char t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    pb_varint(b, (uint64_t)field << 3 | 1);
    pb_raw(b, t, 8);
}

static void pb_bytes(pb *b, unsigned field, const void *s, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pb_raw(b, s, n);
}

static void pb_str(pb *b, unsigned field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* `m` as a nested message, then `m` emptied. */
static void pb_msg(pb *b, unsigned field, pb *m)
{
    pb_bytes(b, field, m->p, m->n);
    m->n = 0;
}

/* --- what is written ------------------------------------------------------------ */

enum { CAT_EVENT = 1, CAT_LISTENER, CAT_WAIT, CAT_SEND, CAT_MARK, CAT_PAUSE, CAT_SCHED };
static const char *const categories[]
    = { NULL, "event", "listener", "wait", "send", "mark", "pause", "sched" };
enum { ARG_SERIAL = 1, ARG_RET, ARG_RESULT, ARG_A, ARG_WORKER };
static const char *const arg_names[] = { NULL, "serial", "ret", "result", "a", "worker" };
/* The record kinds of marks, each with a name of its own (0: others). */
static const uint16_t mark_kinds[] = { 0, WK_TR_WORKER_ENDED, WK_TR_REJECT, WK_TR_RESUME,
    WK_TR_STOP, WK_TR_TIMER_ARMED, WK_TR_TIMER_FIRED, WK_TR_TIMER_CANCELLED, WK_TR_FUTURE_SETTLED,
    WK_TR_DEFER_SETTLED, WK_TR_CHANNEL_PUBLISH, WK_TR_DROPPED, WK_TR_REQUEST_EXPIRED,
    WK_TR_EVENT_DROPPED, WK_TR_CHILD_RESTART, WK_TR_SUPERVISOR_STARTED };
#define NMARKS (sizeof mark_kinds / sizeof *mark_kinds)

/* Names that are not in the trace, interned after its strings. */
enum { FIX_LISTENER, FIX_PAUSED, FIX_UNNAMED, FIX_WAIT, FIX_MARK = FIX_WAIT + WK_TRW_MAX + 1 };
#define FIX_COUNT (FIX_MARK + (int)NMARKS)

enum { T_BEGIN = 1, T_END = 2, T_INSTANT = 3, T_COUNTER = 4 };
enum { F_OUT = 47, F_IN = 48 }; /* flow_ids, terminating_flow_ids */

/* One TrackEvent to write; sorted by (ts, cls, tie, seq). cls: 0 the end
 * of a slice that began earlier (inner first: tie = -t0), 1 instants and
 * counters, 2 begins (outer first: tie = -t1), 3 the end of an empty slice. */
typedef struct op {
    uint64_t ts, tie, track, name, flow;
    int64_t arg;
    uint32_t seq;
    uint8_t cls, type, cat, argname, flowfield;
} op;

typedef struct pf {
    const wt_model *m;
    FILE *f;
    pb pkt, ev, sub, sub2;
    uint64_t fixed; /* iid of the first FIX_ name */
    op *ops;
    size_t nops, capops;
} pf;

static uint64_t thread_track(uint32_t lane)
{
    return 2 + lane;
}
static uint64_t counter_track(const pf *o, uint32_t lane)
{
    return 2 + o->m->nworkers + lane;
}
static uint64_t pause_track(const pf *o, uint32_t lane)
{
    return 2 + 2 * o->m->nworkers + lane;
}
/* Process 0 keeps uuid 1; the others come after every worker's tracks. */
static uint64_t process_track(const pf *o, size_t process)
{
    return process ? 1 + 3 * o->m->nworkers + process : 1;
}

/* Writes o->pkt as one packet of the Trace, then empties it. */
static void put_packet(pf *o)
{
    pb head = { 0 };
    pb_varint(&head, 1u << 3 | 2);
    pb_varint(&head, o->pkt.n);
    fwrite(head.p, 1, head.n, o->f);
    fwrite(o->pkt.p, 1, o->pkt.n, o->f);
    free(head.p);
    o->pkt.n = 0;
}

static op *add_op(pf *o, uint64_t ts, uint8_t type, uint64_t track, uint64_t name)
{
    op *x = WT_PUSH(o->ops, o->nops, o->capops);
    memset(x, 0, sizeof *x);
    x->ts = ts;
    x->type = type;
    x->track = track;
    x->name = name;
    x->seq = (uint32_t)o->nops;
    x->cls = 1;
    return x;
}

/* A slice [t0, t1] on `track`; returns its begin (for a flow or an arg). */
static op *add_slice(pf *o, uint64_t track, uint64_t t0, uint64_t t1, uint64_t name, uint8_t cat)
{
    op *end = add_op(o, t1, T_END, track, 0);
    end->cls = t1 > t0 ? 0 : 3;
    end->tie = t1 > t0 ? UINT64_MAX - t0 : 0;
    op *begin = add_op(o, t0, T_BEGIN, track, name);
    begin->cls = 2;
    begin->tie = UINT64_MAX - t1;
    begin->cat = cat;
    return begin;
}

/* --- the first packets: names and tracks ---------------------------------------- */

static void intern(pb *list, pb *item, unsigned field, uint64_t iid, const char *name)
{
    pb_uint(item, 1, iid);
    pb_str(item, 2, name);
    pb_msg(list, field, item);
}

static uint64_t mark_iid(const pf *o, uint16_t kind)
{
    size_t k = NMARKS;
    while (--k > 0 && mark_kinds[k] != kind) { }
    return o->fixed + FIX_MARK + k;
}

static void fixed_name(int k, char *buf, size_t len)
{
    if (k == FIX_LISTENER || k == FIX_UNNAMED)
        snprintf(buf, len, k == FIX_LISTENER ? "listener" : "event");
    else if (k == FIX_PAUSED)
        snprintf(buf, len, "paused");
    else if (k < FIX_MARK)
        snprintf(buf, len, "wait %s", wt_wait_kind_name((unsigned)(k - FIX_WAIT)));
    else
        snprintf(buf, len, "%s", wt_mark_kind_name(mark_kinds[k - FIX_MARK]));
}

/* A string id of the trace as a name iid; `fallback` when it has no string. */
static uint64_t name_iid(const pf *o, uint32_t id, int fallback)
{
    return id && wt_name(o->m->trace, id) ? id : o->fixed + (uint64_t)fallback;
}

/* Every string of the trace (iid = its string id) and the fixed names. */
static void put_interned(pf *o)
{
    const wt_trace *t = o->m->trace;
    pb *names = &o->sub, *item = &o->sub2;
    uint64_t max = 0;
    for (size_t i = 0; i < t->names.cap; i++) {
        if (!t->names.used[i] || t->names.k1[i] != 0)
            continue;
        intern(names, item, 2, t->names.k2[i], t->strings[t->names.val[i]]);
        max = t->names.k2[i] > max ? t->names.k2[i] : max;
    }
    o->fixed = max + 1;
    char buf[32];
    for (int k = 0; k < FIX_COUNT; k++) {
        fixed_name(k, buf, sizeof buf);
        intern(names, item, 2, o->fixed + (uint64_t)k, buf);
    }
    for (unsigned c = 1; c < sizeof categories / sizeof *categories; c++)
        intern(names, item, 1, c, categories[c]);
    for (unsigned a = 1; a < sizeof arg_names / sizeof *arg_names; a++)
        intern(names, item, 3, a, arg_names[a]);
    pb_uint(&o->pkt, 10, 1);
    pb_uint(&o->pkt, 13, 1); /* incremental state cleared */
    pb_msg(&o->pkt, 12, names);
    put_packet(o);
}

static void put_track(
    pf *o, uint64_t uuid, uint64_t parent, const char *name, pb *kind, unsigned field)
{
    pb_uint(&o->sub, 1, uuid);
    if (name)
        pb_str(&o->sub, 2, name);
    if (parent)
        pb_uint(&o->sub, 5, parent);
    if (kind)
        pb_msg(&o->sub, field, kind);
    pb_uint(&o->pkt, 10, 1);
    pb_msg(&o->pkt, 60, &o->sub);
    put_packet(o);
}

/* The processes, and per worker its thread, pause and mailbox tracks. */
static void put_tracks(pf *o)
{
    const wt_model *m = o->m;
    const wt_trace *t = m->trace;
    for (size_t k = 0; k < t->nprocs; k++) {
        pb_uint(&o->sub2, 1, t->procs[k].pid);
        pb_str(&o->sub2, 6, t->procs[k].label);
        put_track(o, process_track(o, k), 0, NULL, &o->sub2, 3);
    }
    for (uint32_t l = 0; l < m->nworkers; l++) {
        const wt_worker *w = &m->workers[l];
        uint32_t pid = t->procs[w->process].pid;
        size_t n = strlen(w->name) + 32;
        char *label = wt_xmalloc(n);
        pb_uint(&o->sub2, 1, pid);
        pb_uint(&o->sub2, 2, w->id);
        snprintf(label, n, "%s #%" PRIu32, w->name, w->id);
        pb_str(&o->sub2, 5, label);
        put_track(o, thread_track(l), 0, NULL, &o->sub2, 4);
        put_track(o, pause_track(o, l), thread_track(l), "paused", NULL, 0);
        snprintf(label, n, "mailbox %s #%" PRIu32, w->name, w->id);
        put_track(o, counter_track(o, l), process_track(o, (size_t)w->process), label, &o->sub2,
            8); /* sub2 is empty: counter {} */
        free(label);
    }
}

/* --- the model as TrackEvents --------------------------------------------------- */

/* Each message: the send instant (flow out) and the event's slice (flow
 * in), from its delivery to the end of its last listener run. */
static void add_messages(pf *o)
{
    const wt_model *m = o->m;
    uint64_t *dend = wt_xcalloc(m->nmsgs, sizeof *dend);
    for (size_t i = 0; i < m->nmsgs; i++)
        dend[i] = m->msgs[i].t_deliver;
    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        if (s->msg >= 0 && s->t1 > dend[s->msg])
            dend[s->msg] = s->t1;
    }
    for (size_t i = 0; i < m->nmsgs; i++) {
        const wt_msg *g = &m->msgs[i];
        bool fired = !(g->flags & WT_MSG_NO_FIRE), delivered = g->flags & WT_MSG_DELIVERED;
        if (fired) {
            op *x = add_op(o, g->t_fire, T_INSTANT, thread_track(g->from_lane),
                name_iid(o, g->event_name, FIX_UNNAMED));
            x->cat = CAT_SEND;
            x->flowfield = delivered ? F_OUT : 0;
            x->flow = i + 1;
        }
        if (!delivered)
            continue;
        op *b = add_slice(o, thread_track(g->to_lane), g->t_deliver, dend[i],
            name_iid(o, g->event_name, FIX_UNNAMED), CAT_EVENT);
        b->argname = ARG_SERIAL;
        b->arg = (int64_t)g->serial;
        b->flowfield = fired ? F_IN : 0;
        b->flow = i + 1;
    }
    free(dend);
}

static void add_runs_and_spans(pf *o)
{
    const wt_model *m = o->m;
    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        op *b = add_slice(o, thread_track(s->lane), s->t0, s->t1,
            name_iid(o, s->listener_name, FIX_LISTENER), CAT_LISTENER);
        b->argname = s->ret ? ARG_RET : 0;
        b->arg = s->ret;
    }
    for (size_t i = 0; i < m->nwaits; i++) {
        const wt_span *s = &m->waits[i];
        unsigned kind = s->kind <= WK_TRW_MAX ? s->kind : 0;
        op *b = add_slice(
            o, thread_track(s->lane), s->t0, s->t1, o->fixed + FIX_WAIT + kind, CAT_WAIT);
        b->argname = ARG_RESULT;
        b->arg = s->result;
    }
    for (size_t i = 0; i < m->npauses; i++) {
        const wt_span *s = &m->pauses[i];
        add_slice(o, pause_track(o, s->lane), s->t0, s->t1, o->fixed + FIX_PAUSED, CAT_PAUSE);
    }
}

static void add_marks_and_depths(pf *o)
{
    const wt_model *m = o->m;
    for (size_t i = 0; i < m->nsamples; i++) {
        const wt_sample *s = &m->samples[i];
        add_op(o, s->t, T_COUNTER, counter_track(o, s->lane), 0)->arg = (int64_t)s->depth;
    }
    for (size_t i = 0; i < m->nmarks; i++) {
        const wt_mark *k = &m->marks[i];
        op *x = add_op(o, k->t, T_INSTANT, thread_track(k->lane), mark_iid(o, k->kind));
        x->cat = CAT_MARK;
        x->argname = ARG_A;
        x->arg = (int64_t)k->a;
    }
}

static int op_cmp(const void *pa, const void *pb_)
{
    const op *a = pa, *b = pb_;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    if (a->tie != b->tie)
        return a->tie < b->tie ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void put_op(pf *o, const op *x)
{
    pb *ev = &o->ev;
    pb_uint(ev, 9, x->type);
    pb_uint(ev, 11, x->track);
    if (x->type == T_COUNTER)
        pb_uint(ev, 30, (uint64_t)x->arg);
    if (x->name)
        pb_uint(ev, 10, x->name);
    if (x->cat)
        pb_uint(ev, 3, x->cat);
    if (x->flowfield)
        pb_fixed64(ev, x->flowfield, x->flow);
    if (x->argname) {
        pb_uint(&o->sub, 1, x->argname);
        pb_uint(&o->sub, 4, (uint64_t)x->arg);
        pb_msg(ev, 4, &o->sub);
    }
    pb_uint(&o->pkt, 8, x->ts);
    pb_uint(&o->pkt, 10, 1); /* no sequence_flags: 2 bytes an event, the state never resets */
    pb_msg(&o->pkt, 11, ev);
    put_packet(o);
}

/* --- pooled workers: their slices on the scheduler threads ----------------------- */

/* A scheduler thread's track, after every worker's three and the process
 * tracks of a merged trace (process_track: up to 1 + 3 * nworkers + nprocs - 1). */
static uint64_t sched_track(const pf *o, size_t sched)
{
    size_t nprocs = o->m->trace->nprocs ? o->m->trace->nprocs : 1;
    return 1 + 3 * o->m->nworkers + nprocs + sched;
}

/* The name iid of a pooled worker's slices: its name, interned after the
 * fixed names. */
static uint64_t worker_name_iid(const pf *o, uint32_t lane)
{
    return o->fixed + FIX_COUNT + lane;
}

/* The names of the workers that ran in slices, one more interned-data
 * packet (the sequence's state is kept: no flags). */
static void put_interned_workers(pf *o)
{
    const wt_model *m = o->m;
    bool any = false;
    for (uint32_t l = 0; l < m->nworkers; l++) {
        if (!m->workers[l].sched_slices)
            continue;
        intern(&o->sub, &o->sub2, 2, worker_name_iid(o, l), m->workers[l].name);
        any = true;
    }
    if (!any)
        return;
    pb_uint(&o->pkt, 10, 1);
    pb_msg(&o->pkt, 12, &o->sub);
    put_packet(o);
}

/* A thread track per scheduler thread (its tid and name, wk-sched-N), in
 * the process of the workers it ran. */
static void put_sched_tracks(pf *o)
{
    const wt_model *m = o->m;
    for (size_t i = 0; i < m->nscheds; i++) {
        pb_uint(&o->sub2, 1, m->trace->procs[m->scheds[i].process].pid);
        pb_uint(&o->sub2, 2, m->scheds[i].track_tid);
        pb_str(&o->sub2, 5, m->scheds[i].name);
        put_track(o, sched_track(o, i), 0, NULL, &o->sub2, 4);
    }
}

/* Each slice on its scheduler thread's track, named by the worker it ran. */
static void add_sched_slices(pf *o)
{
    const wt_model *m = o->m;
    for (size_t i = 0; i < m->nsched_slices; i++) {
        const wt_sched_slice *s = &m->sched_slices[i];
        op *b = add_slice(
            o, sched_track(o, s->sched), s->t0, s->t1, worker_name_iid(o, s->lane), CAT_SCHED);
        b->argname = ARG_WORKER;
        b->arg = m->workers[s->lane].id;
    }
}

int wt_perfetto_proto(const wt_model *m, FILE *f)
{
    pf o = { .m = m, .f = f };
    put_interned(&o);
    put_interned_workers(&o);
    put_tracks(&o);
    put_sched_tracks(&o);
    add_messages(&o);
    add_runs_and_spans(&o);
    add_marks_and_depths(&o);
    add_sched_slices(&o);
    wt_sort(o.ops, o.nops, sizeof *o.ops, op_cmp);
    for (size_t i = 0; i < o.nops; i++)
        put_op(&o, &o.ops[i]);
    free(o.ops);
    free(o.pkt.p);
    free(o.ev.p);
    free(o.sub.p);
    free(o.sub2.p);
    return ferror(f) ? -1 : 0;
}
