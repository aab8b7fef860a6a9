/* worker-trace perfetto: Chrome Trace Event JSON (ui.perfetto.dev,
 * chrome://tracing).
 *
 * One process (the traced pid), one thread per worker (tid = worker id,
 * named by thread_name metadata, ordered by thread_sort_index = tree
 * order). On each worker's thread: a complete ("X") slice per delivered
 * event (cat "event", from its delivery to the end of its last listener run),
 * the listener runs nested in it (cat "listener"), a 1 ns "send" slice
 * where an event was fired (something for the flow to start from), and the waits (cat "wait").
 * Messages are v1 flows: "s" on the sender's send slice, "f" (bp "e") on the receiver's event
 * slice, one flow id per queued event. Pauses are async "b"/"e" pairs (they need not nest with
 * slices), mailbox depth a "C" counter per worker, and stops, rejects, timers, settles and ends are
 * thread instants ("i"). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

static void ts(FILE *f, const char *key, uint64_t ns)
{
    fprintf(f, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static void head(FILE *f, bool *first, const char *ph, uint32_t pid, uint32_t tid)
{
    fputs(*first ? "\n" : ",\n", f);
    *first = false;
    fprintf(f, "{\"ph\":\"%s\",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32, ph, pid, tid);
}

static const char *mark_name(const wt_mark *k)
{
    switch (k->kind) {
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
    default:
        return "mark";
    }
}

int wt_perfetto(const wt_model *m, FILE *f)
{
    const wt_trace *t = m->trace;
    uint32_t pid = t->hdr.pid;
    bool first = true;
    fprintf(f,
        "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"worker-trace\","
        "\"format\":\"%u.%u\",\"pid\":%" PRIu32 ",\"complete\":%s,\"sampleEvery\":%" PRIu32
        "},\n\"traceEvents\":[",
        t->hdr.version, t->hdr.minor, pid, t->complete ? "true" : "false", wt_sample_every(t));
    head(f, &first, "M", pid, 0);
    fprintf(
        f, ",\"name\":\"process_name\",\"args\":{\"name\":\"worker-actor pid %" PRIu32 "\"}}", pid);
    for (size_t i = 0; i < m->nworkers; i++) {
        const wt_worker *w = &m->workers[i];
        char buf[64];
        snprintf(buf, sizeof buf, " #%" PRIu32, w->id);
        head(f, &first, "M", pid, w->id);
        fputs(",\"name\":\"thread_name\",\"args\":{\"name\":", f);
        size_t n = strlen(w->name);
        char *label = wt_xmalloc(n + strlen(buf) + 1);
        memcpy(label, w->name, n);
        strcpy(label + n, buf);
        wt_json_str(f, label);
        free(label);
        fputs("}}", f);
        head(f, &first, "M", pid, w->id);
        fprintf(f, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%zu}}", i);
    }

    /* event slices end with their last listener run */
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
        const wt_worker *from = &m->workers[g->from_lane], *to = &m->workers[g->to_lane];
        const char *name = wt_model_str(m, g->event_name);
        if (!(g->flags & WT_MSG_NO_FIRE)) {
            head(f, &first, "X", pid, from->id);
            ts(f, "ts", g->t_fire);
            fputs(",\"dur\":0.001,\"cat\":\"send\",\"name\":", f);
            wt_json_str(f, name);
            fputs("}", f);
        }
        if (!(g->flags & WT_MSG_DELIVERED))
            continue;
        head(f, &first, "X", pid, to->id);
        ts(f, "ts", g->t_deliver);
        ts(f, "dur", dend[i] > g->t_deliver ? dend[i] - g->t_deliver : 1);
        fputs(",\"cat\":\"event\",\"name\":", f);
        wt_json_str(f, name);
        fprintf(f, ",\"args\":{\"serial\":%" PRIu64 ",\"sender\":", g->serial);
        wt_json_str(f, m->workers[g->sender_lane].name);
        fprintf(f, ",\"queued_us\":%.3f,\"bubble\":%s,\"broadcast\":%s,\"channel\":%s,\"hop\":%s}}",
            (double)(g->t_deliver - g->t_fire) / 1e3, g->flags & WK_TRF_BUBBLE ? "true" : "false",
            g->flags & WK_TRF_BROADCAST ? "true" : "false",
            g->flags & WK_TRF_CHANNEL ? "true" : "false",
            g->flags & (WK_TRF_HOP_UP | WK_TRF_HOP_DOWN) ? "true" : "false");
        if (g->flags & WT_MSG_NO_FIRE)
            continue;
        head(f, &first, "s", pid, from->id);
        ts(f, "ts", g->t_fire);
        fprintf(f, ",\"id\":%zu,\"cat\":\"message\",\"name\":", i + 1);
        wt_json_str(f, name);
        fputs("}", f);
        head(f, &first, "f", pid, to->id);
        ts(f, "ts", g->t_deliver);
        fprintf(f, ",\"bp\":\"e\",\"id\":%zu,\"cat\":\"message\",\"name\":", i + 1);
        wt_json_str(f, name);
        fputs("}", f);
    }
    free(dend);

    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        head(f, &first, "X", pid, m->workers[s->lane].id);
        ts(f, "ts", s->t0);
        ts(f, "dur", s->t1 - s->t0);
        fputs(",\"cat\":\"listener\",\"name\":", f);
        const char *ln = wt_model_str(m, s->listener_name);
        wt_json_str(f, *ln ? ln : "listener");
        fputs(",\"args\":{\"event\":", f);
        wt_json_str(f, wt_model_str(m, s->event_name));
        fprintf(f, ",\"serial\":%" PRIu64 ",\"ret\":%" PRId32 ",\"open\":%s}}", s->serial, s->ret,
            s->flags & WT_SLICE_OPEN ? "true" : "false");
    }
    for (size_t i = 0; i < m->nwaits; i++) {
        const wt_span *s = &m->waits[i];
        head(f, &first, "X", pid, m->workers[s->lane].id);
        ts(f, "ts", s->t0);
        ts(f, "dur", s->t1 - s->t0);
        fprintf(f,
            ",\"cat\":\"wait\",\"name\":\"wait %s\",\"args\":{\"what\":%" PRIu64
            ",\"result\":%" PRId64 ",\"open\":%s}}",
            wt_wait_kind_name(s->kind), s->what, s->result, s->open ? "true" : "false");
    }
    for (size_t i = 0; i < m->npauses; i++) {
        const wt_span *s = &m->pauses[i];
        uint32_t tid = m->workers[s->lane].id;
        head(f, &first, "b", pid, tid);
        ts(f, "ts", s->t0);
        fprintf(f, ",\"cat\":\"pause\",\"name\":\"paused\",\"id\":\"pause-%zu\"}", i);
        head(f, &first, "e", pid, tid);
        ts(f, "ts", s->t1);
        fprintf(f, ",\"cat\":\"pause\",\"name\":\"paused\",\"id\":\"pause-%zu\"}", i);
    }
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
        head(f, &first, "C", pid, w->id);
        ts(f, "ts", s->t);
        fputs(",\"name\":", f);
        wt_json_str(f, label);
        fprintf(f, ",\"args\":{\"depth\":%" PRIu64 "}}", s->depth);
        free(label);
    }
    for (size_t i = 0; i < m->nmarks; i++) {
        const wt_mark *k = &m->marks[i];
        head(f, &first, "i", pid, m->workers[k->lane].id);
        ts(f, "ts", k->t);
        fprintf(f,
            ",\"s\":\"t\",\"cat\":\"mark\",\"name\":\"%s\",\"args\":{\"a\":%" PRIu64
            ",\"b\":%" PRIu64 ",\"flags\":%u}}",
            mark_name(k), k->a, k->b, k->flags);
    }
    fputs("\n]}\n", f);
    return ferror(f) ? -1 : 0;
}
