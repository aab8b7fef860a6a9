/* worker-trace: the model built from a loaded trace.
 *
 * Workers are put in tree order (depth first from the roots, siblings by
 * creation), which is also the lane order of every output. One pass over the
 * time-sorted records then builds listener slices (a stack per lane, since a
 * listener that waits runs nested listeners), messages (a FIRE matched with
 * its DELIVER by (serial, receiver)), waits, pauses, instant marks and
 * mailbox depth samples. A message that crossed processes (a merged trace,
 * merge.c) is one too: its REMOTE_SEND paired with the REMOTE_RECEIVEs of
 * the same message id, found in a first pass so that the message is made
 * at its send, in time order, whichever record comes first on the merged
 * axis. Lanes are grouped by process (roots in process order). Records that do not pair up (an END
 * whose START was dropped) are ignored; spans still open at the end close at the last record and
 * are flagged open. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

typedef struct lane_state {
    size_t *lstack; /* open listener slices */
    size_t nl, capl;
    size_t *wstack; /* open waits */
    size_t nw, capw;
    int64_t pause; /* open pause, -1 none */
} lane_state;

typedef struct builder {
    wt_model *m;
    const wt_trace *t;
    wt_map ids; /* (worker id, 0) -> lane */
    wt_map msgs; /* (serial, receiver id + 1) -> msg; (serial, 0) -> last msg of serial */
    wt_map remote; /* (message id, 0) -> receives; (id, k) -> k-th REMOTE_RECEIVE's
                      record index; (id, UINT64_MAX) -> 1 when a REMOTE_SEND has it */
    lane_state *ls;
    wt_sched_state *sched; /* pooled workers' slices (model_sched.c) */
} builder;

const char *wt_model_str(const wt_model *m, uint64_t id)
{
    const char *s = wt_name(m->trace, id);
    return s ? s : "";
}

/* --- workers and the tree ------------------------------------------------------ */

typedef struct proto {
    wt_worker w;
    size_t first_child, next_sibling; /* indexes + 1, 0 none */
    bool visited;
} proto;

/* The workers seen, before they are put in tree order. */
typedef struct proto_set {
    wt_map ids; /* (worker id, 0) -> index into ps */
    proto *ps;
    size_t n, cap;
} proto_set;

static size_t proto_get(proto_set *set, uint32_t id)
{
    bool inserted;
    uint64_t *v = wt_map_put(&set->ids, id, 0, set->n, &inserted);
    if (inserted) {
        proto *p = WT_PUSH(set->ps, set->n, set->cap);
        memset(p, 0, sizeof *p);
        p->w.id = id;
        p->w.parent_idx = -1;
    }
    return (size_t)*v;
}

static bool makes_lane(const wt_rec *r)
{
    return r->worker != 0 || (r->kind != WK_TR_THREAD && r->kind != WK_TR_DROPPED);
}

/* A worker's place in creation order: (created, id) is unique. */
typedef struct creation_key {
    int process; /* lanes are grouped by process */
    uint64_t created; /* UINT64_MAX when no CREATED record was seen */
    uint32_t id;
    size_t index; /* into the proto array */
} creation_key;

static int creation_cmp(const void *pa, const void *pb)
{
    const creation_key *a = pa, *b = pb;
    if (a->process != b->process)
        return a->process < b->process ? -1 : 1;
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The indexes of `ps` sorted by creation (O(n log n): a corrupt or huge
 * trace may name millions of workers). */
static size_t *creation_order(const proto *ps, size_t n)
{
    creation_key *keys = wt_xcalloc(n ? n : 1, sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = (creation_key) { ps[i].w.process,
            ps[i].w.seen_created ? ps[i].w.created : UINT64_MAX, ps[i].w.id, i };
    wt_sort(keys, n, sizeof *keys, creation_cmp);
    size_t *order = wt_xcalloc(n ? n : 1, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = keys[i].index;
    free(keys);
    return order;
}

/* The first CREATED record of a worker gives its creation time, parent,
 * flags and, unless a name is known already, its name. */
static void note_created(proto *p, const wt_trace *t, const wt_rec *r, uint64_t t0)
{
    if (p->w.seen_created)
        return;
    p->w.seen_created = true;
    p->w.created = r->ts - t0;
    p->w.parent = r->a <= UINT32_MAX ? (uint32_t)r->a : 0;
    p->w.cflags = r->flags;
    const char *s = wt_name(t, r->b);
    if (s && !p->w.name)
        p->w.name = wt_xstrdup(s);
}

/* A WORKER_NAME record replaces the name. */
static void note_name(proto *p, const wt_trace *t, const wt_rec *r)
{
    const char *s = wt_name(t, r->a);
    if (s) {
        free((char *)p->w.name);
        p->w.name = wt_xstrdup(s);
    }
}

/* Every worker a record is about, and the other end of a fire or delivery. */
static void protos_from_records(proto_set *set, const wt_trace *t, uint64_t t0)
{
    for (size_t i = 0; i < t->nrecs; i++) {
        const wt_rec *r = &t->recs[i];
        if (makes_lane(r))
            proto_get(set, r->worker);
        if (r->kind == WK_TR_FIRE || r->kind == WK_TR_REJECT || r->kind == WK_TR_DELIVER)
            proto_get(set, (uint32_t)r->b);
        if (r->kind == WK_TR_WORKER_CREATED) {
            size_t k = proto_get(set, r->worker); /* before set->ps: it may move */
            note_created(&set->ps[k], t, r, t0);
        } else if (r->kind == WK_TR_WORKER_NAME) {
            size_t k = proto_get(set, r->worker);
            note_name(&set->ps[k], t, r);
        }
    }
}

/* A parent seen only as an id gets a lane too. */
static void add_unseen_parents(proto_set *set)
{
    size_t nbase = set->n;
    for (size_t i = 0; i < nbase; i++) {
        if (set->ps[i].w.parent && set->ps[i].w.parent != set->ps[i].w.id)
            proto_get(set, set->ps[i].w.parent);
    }
}

/* Each worker's process; a worker named by the id that stands for its
 * process's threads without a worker is "(other threads)". */
static void name_unnamed(proto_set *set, const wt_trace *t)
{
    for (size_t i = 0; i < set->n; i++) {
        proto *p = &set->ps[i];
        size_t k = wt_process_of(t, p->w.id);
        p->w.process = (int)k;
        if (!p->w.name) {
            char buf[48];
            if (p->w.id == t->procs[k].worker_base)
                snprintf(buf, sizeof buf, "(other threads)");
            else
                snprintf(buf, sizeof buf, "worker-%" PRIu32, p->w.id);
            p->w.name = wt_xstrdup(buf);
        }
    }
}

/* The index of p's parent in the set, or NULL when it has none (a worker
 * that names itself as parent has none). */
static const uint64_t *parent_of(const proto_set *set, const proto *p)
{
    if (!p->w.parent || p->w.parent == p->w.id)
        return NULL;
    return wt_map_get(&set->ids, p->w.parent, 0);
}

/* Children lists, siblings in creation order. */
static void link_children(proto_set *set, const size_t *order)
{
    size_t *last_child = wt_xcalloc(set->n, sizeof *last_child);
    for (size_t k = 0; k < set->n; k++) {
        size_t i = order[k];
        const uint64_t *pi = parent_of(set, &set->ps[i]);
        if (!pi)
            continue;
        if (last_child[*pi])
            set->ps[last_child[*pi] - 1].next_sibling = i + 1;
        else
            set->ps[*pi].first_child = i + 1;
        last_child[*pi] = i + 1;
    }
    free(last_child);
}

/* Appends the subtree of `root` to m->workers, depth first, children in
 * order. stack and depth hold set->n + 1 entries. */
static void visit_subtree(proto_set *set, size_t root, size_t *stack, int *depth, wt_model *m)
{
    proto *ps = set->ps;
    size_t sp = 0;
    stack[sp] = root;
    depth[sp++] = 0;
    while (sp) {
        sp--;
        size_t i = stack[sp];
        int d = depth[sp];
        if (ps[i].visited)
            continue;
        ps[i].visited = true;
        ps[i].w.depth = d;
        ps[i].w.lane = (int)m->nworkers;
        m->workers[m->nworkers++] = ps[i].w;
        /* push children in reverse so the first is visited first */
        size_t nc = 0;
        for (size_t c = ps[i].first_child; c; c = ps[c - 1].next_sibling)
            nc++;
        sp += nc;
        size_t at = sp;
        for (size_t c = ps[i].first_child; c; c = ps[c - 1].next_sibling) {
            at--;
            stack[at] = c - 1;
            depth[at] = d + 1;
        }
    }
}

/* Depth-first from the roots; whatever is left (a cycle in a corrupt
 * trace) becomes a root too. */
static void place_in_tree_order(proto_set *set, const size_t *order, wt_model *m)
{
    m->workers = wt_xcalloc(set->n, sizeof *m->workers);
    size_t *stack = wt_xcalloc(set->n + 1, sizeof *stack);
    int *depth = wt_xcalloc(set->n + 1, sizeof *depth);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < set->n; k++) {
            size_t root = order[k];
            if (set->ps[root].visited)
                continue;
            if (pass == 0 && parent_of(set, &set->ps[root]))
                continue;
            visit_subtree(set, root, stack, depth, m);
        }
    }
    free(stack);
    free(depth);
}

/* Worker id -> lane, and each worker's parent lane. */
static void index_lanes(builder *bd)
{
    wt_model *m = bd->m;
    for (size_t i = 0; i < m->nworkers; i++) {
        wt_worker *w = &m->workers[i];
        wt_map_put(&bd->ids, w->id, 0, i, NULL);
    }
    for (size_t i = 0; i < m->nworkers; i++) {
        wt_worker *w = &m->workers[i];
        uint64_t *pi = w->parent ? wt_map_get(&bd->ids, w->parent, 0) : NULL;
        w->parent_idx = pi && *pi != i ? (int)*pi : -1;
    }
}

static void collect_workers(builder *bd)
{
    proto_set set = { .ps = NULL, .n = 0, .cap = 0 };
    wt_map_init(&set.ids);
    protos_from_records(&set, bd->t, bd->m->t0);
    add_unseen_parents(&set);
    name_unnamed(&set, bd->t);
    size_t *order = creation_order(set.ps, set.n);
    link_children(&set, order);
    place_in_tree_order(&set, order, bd->m);
    index_lanes(bd);
    free(order);
    free(set.ps);
    wt_map_free(&set.ids);
}

/* --- the pass over the records -------------------------------------------------- */

static uint32_t lane_of(builder *bd, uint32_t id)
{
    uint64_t *v = wt_map_get(&bd->ids, id, 0);
    return v ? (uint32_t)*v : 0; /* every id got a lane in collect_workers */
}

static void add_mark(builder *bd, const wt_rec *r, uint32_t lane)
{
    wt_model *m = bd->m;
    wt_mark *k = WT_PUSH(m->marks, m->nmarks, m->capmarks);
    k->t = r->ts - m->t0;
    k->a = r->a;
    k->b = r->b;
    k->lane = lane;
    k->kind = r->kind;
    k->flags = r->flags;
}

static size_t new_msg(builder *bd, uint64_t serial, uint32_t receiver_id, uint64_t t, uint32_t from,
    uint32_t to, uint32_t name, uint32_t flags)
{
    wt_model *m = bd->m;
    wt_msg *g = WT_PUSH(m->msgs, m->nmsgs, m->capmsgs);
    size_t gi = m->nmsgs - 1;
    g->t_fire = g->t_deliver = t;
    g->serial = serial;
    g->from_lane = g->sender_lane = from;
    g->to_lane = to;
    g->event_name = name;
    g->flags = flags;
    bool ins;
    uint64_t *head = wt_map_put(&bd->msgs, serial, 0, gi + 1, &ins);
    g->next_same_serial = ins ? -1 : (int64_t)*head - 1;
    *head = gi + 1;
    *wt_map_put(&bd->msgs, serial, (uint64_t)receiver_id + 1, gi + 1, NULL) = gi + 1;
    return gi;
}

/* A record and where it goes: its time, its worker's lane and state. */
typedef struct record_at {
    builder *bd;
    const wt_rec *r;
    uint64_t t; /* ns from the trace's start */
    uint32_t lane;
    wt_worker *w;
    lane_state *ls;
} record_at;

static void on_worker_started(const record_at *at)
{
    wt_worker *w = at->w;
    if (!w->seen_started) {
        w->seen_started = true;
        w->started = at->t;
    }
    w->os_tid = at->r->a;
}

static void on_worker_ended(const record_at *at)
{
    at->w->seen_ended = true;
    at->w->ended = at->t;
    at->w->err = (int64_t)at->r->a;
    add_mark(at->bd, at->r, at->lane);
}

static void on_fire(const record_at *at)
{
    const wt_rec *r = at->r;
    uint32_t rid = (uint32_t)r->b;
    uint32_t to = lane_of(at->bd, rid);
    if (!(r->flags & (WK_TRF_HOP_UP | WK_TRF_HOP_DOWN)))
        at->w->sent++;
    at->bd->m->workers[to].recv++;
    new_msg(at->bd, r->a, rid, at->t, at->lane, to, (uint32_t)(r->b >> 32), r->flags);
}

/* Matches the FIRE of the same serial to this receiver; a DELIVER without
 * one gets a message of its own. */
static void on_deliver(const record_at *at)
{
    const wt_rec *r = at->r;
    wt_model *m = at->bd->m;
    at->w->handled++;
    uint64_t *gi = wt_map_get(&at->bd->msgs, r->a, (uint64_t)r->worker + 1);
    if (gi && !(m->msgs[*gi - 1].flags & WT_MSG_DELIVERED)) {
        wt_msg *g = &m->msgs[*gi - 1];
        g->t_deliver = at->t;
        g->flags |= WT_MSG_DELIVERED;
    } else {
        uint32_t from = lane_of(at->bd, (uint32_t)r->b);
        new_msg(at->bd, r->a, r->worker, at->t, from, at->lane, (uint32_t)(r->b >> 32),
            WT_MSG_NO_FIRE | WT_MSG_DELIVERED);
    }
}

static void on_listener_start(const record_at *at)
{
    const wt_rec *r = at->r;
    wt_model *m = at->bd->m;
    lane_state *ls = at->ls;
    wt_slice *s = WT_PUSH(m->slices, m->nslices, m->capslices);
    memset(s, 0, sizeof *s);
    s->t0 = s->t1 = at->t;
    s->serial = r->a;
    s->lane = at->lane;
    s->listener_name = (uint32_t)r->b;
    s->event_name = (uint32_t)(r->b >> 32);
    s->depth = (uint16_t)(ls->nl < 0xffff ? ls->nl : 0xffff);
    s->flags = (uint16_t)(WT_SLICE_OPEN | (r->flags & WK_TRF_NAME_GIVEN ? WT_SLICE_NAME_GIVEN : 0)
        | (r->flags & WK_TRF_NAME_SYMBOL ? WT_SLICE_NAME_SYMBOL : 0));
    uint64_t *gi = wt_map_get(&at->bd->msgs, r->a, (uint64_t)r->worker + 1);
    s->msg = gi ? (int64_t)*gi - 1 : -1;
    if (s->depth > m->max_slice_depth)
        m->max_slice_depth = s->depth;
    *WT_PUSH(ls->lstack, ls->nl, ls->capl) = m->nslices - 1;
}

/* Closes the innermost open run of the same serial and listener, and the
 * runs nested in it whose END was lost. */
static void on_listener_end(const record_at *at)
{
    const wt_rec *r = at->r;
    wt_model *m = at->bd->m;
    wt_worker *w = at->w;
    lane_state *ls = at->ls;
    for (size_t k = ls->nl; k-- > 0;) {
        wt_slice *s = &m->slices[ls->lstack[k]];
        if (s->serial != r->a || s->listener_name != (uint32_t)r->b)
            continue;
        s->t1 = at->t;
        s->ret = (int32_t)(uint32_t)(r->b >> 32);
        s->flags &= (uint16_t)(WT_SLICE_NAME_GIVEN | WT_SLICE_NAME_SYMBOL);
        if ((r->flags & WK_TRF_ERROR) || s->ret)
            s->flags |= WT_SLICE_ERROR;
        w->runs++;
        if (s->flags & WT_SLICE_ERROR)
            w->errors++;
        *WT_PUSH(w->run_ns, w->nrun, w->caprun) = s->t1 - s->t0;
        for (size_t j = k + 1; j < ls->nl; j++) /* inner runs whose END was lost */
            m->slices[ls->lstack[j]].t1 = at->t;
        ls->nl = k;
        break;
    }
}

static void on_wait_begin(const record_at *at)
{
    wt_model *m = at->bd->m;
    lane_state *ls = at->ls;
    wt_span *s = WT_PUSH(m->waits, m->nwaits, m->capwaits);
    memset(s, 0, sizeof *s);
    s->t0 = s->t1 = at->t;
    s->what = at->r->b;
    s->lane = at->lane;
    s->kind = at->r->flags;
    s->depth = (uint16_t)(ls->nw < 0xffff ? ls->nw : 0xffff);
    s->open = true;
    *WT_PUSH(ls->wstack, ls->nw, ls->capw) = m->nwaits - 1;
}

/* Closes the innermost open wait of the same kind, and the waits nested in
 * it. */
static void on_wait_end(const record_at *at)
{
    wt_model *m = at->bd->m;
    wt_worker *w = at->w;
    lane_state *ls = at->ls;
    for (size_t k = ls->nw; k-- > 0;) {
        wt_span *s = &m->waits[ls->wstack[k]];
        if (s->kind != at->r->flags)
            continue;
        s->t1 = at->t;
        s->result = (int64_t)at->r->a;
        s->open = false;
        w->wait_count++;
        w->wait_ns += s->t1 - s->t0;
        for (size_t j = k + 1; j < ls->nw; j++)
            m->waits[ls->wstack[j]].t1 = at->t;
        ls->nw = k;
        break;
    }
}

static void on_pause(const record_at *at)
{
    wt_model *m = at->bd->m;
    lane_state *ls = at->ls;
    at->w->pauses++;
    if (ls->pause < 0) {
        wt_span *s = WT_PUSH(m->pauses, m->npauses, m->cappauses);
        memset(s, 0, sizeof *s);
        s->t0 = s->t1 = at->t;
        s->what = at->r->a;
        s->lane = at->lane;
        s->open = true;
        ls->pause = (int64_t)m->npauses - 1;
    }
}

static void on_resume(const record_at *at)
{
    wt_model *m = at->bd->m;
    lane_state *ls = at->ls;
    if (ls->pause >= 0) {
        m->pauses[ls->pause].t1 = at->t;
        m->pauses[ls->pause].open = false;
        ls->pause = -1;
    }
    add_mark(at->bd, at->r, at->lane);
}

static void on_mailbox_depth(const record_at *at)
{
    wt_model *m = at->bd->m;
    wt_sample *s = WT_PUSH(m->samples, m->nsamples, m->capsamples);
    s->t = at->t;
    s->depth = at->r->a;
    s->lane = at->lane;
    if (at->r->a > at->w->max_mailbox)
        at->w->max_mailbox = at->r->a;
}

static void on_reject(const record_at *at)
{
    at->w->rejects++;
    add_mark(at->bd, at->r, at->lane);
}

static void on_stop(const record_at *at)
{
    at->w->stops++;
    add_mark(at->bd, at->r, at->lane);
}

static void on_timer_fired(const record_at *at)
{
    at->w->timers++;
    add_mark(at->bd, at->r, at->lane);
}

/* A restart's reason (an err, int64 in the record) as a 32-bit two's
 * complement value, which the page reads back exactly. */
static void on_restart(const record_at *at)
{
    add_mark(at->bd, at->r, at->lane);
    wt_model *m = at->bd->m;
    m->marks[m->nmarks - 1].b = (uint32_t)(int32_t)(int64_t)at->r->b;
}

static void on_child_restart(const record_at *at)
{
    wt_worker *w = at->w;
    uint32_t so_far = (uint32_t)(at->r->a >> 32);
    w->restart_records++;
    if (so_far > w->restarts)
        w->restarts = so_far;
    if (w->restart_records > w->restarts)
        w->restarts = w->restart_records;
    on_restart(at);
}

static void on_supervisor_started(const record_at *at)
{
    wt_worker *w = at->w;
    w->supervisor = true;
    w->strategy = (uint32_t)at->r->a;
    w->intensity = (uint32_t)(at->r->a >> 32);
    w->period_ms = (uint32_t)at->r->b;
    w->backoff_ms = (uint32_t)(at->r->b >> 32);
    add_mark(at->bd, at->r, at->lane);
}

static void on_instant(const record_at *at)
{
    add_mark(at->bd, at->r, at->lane);
}

/* --- messages across processes ------------------------------------------------- */

/* The first pass: every REMOTE_RECEIVE by message id, and which ids a
 * REMOTE_SEND has. */
static void index_remote(builder *bd)
{
    const wt_trace *t = bd->t;
    for (size_t i = 0; i < t->nrecs; i++) {
        const wt_rec *r = &t->recs[i];
        if (r->kind == WK_TR_REMOTE_SEND) {
            wt_map_put(&bd->remote, r->a, UINT64_MAX, 1, NULL);
        } else if (r->kind == WK_TR_REMOTE_RECEIVE) {
            uint64_t *n = wt_map_put(&bd->remote, r->a, 0, 0, NULL);
            uint64_t k = ++*n;
            wt_map_put(&bd->remote, r->a, k, i, NULL);
        }
    }
}

/* A message between processes (outside the serial chains of local ones). */
static wt_msg *remote_msg(builder *bd, uint64_t id, uint32_t from, uint64_t t, uint32_t name)
{
    wt_model *m = bd->m;
    wt_msg *g = WT_PUSH(m->msgs, m->nmsgs, m->capmsgs);
    memset(g, 0, sizeof *g);
    g->t_fire = g->t_deliver = t;
    g->serial = id;
    g->from_lane = g->sender_lane = g->to_lane = from;
    g->event_name = name;
    g->flags = WT_MSG_REMOTE;
    g->next_same_serial = -1;
    return g;
}

/* One message per receive of the id (a subject may reach several
 * processes); one undelivered when no trace given has a receive. A receive
 * before its send (clocks of two hosts apart) is put at the send. */
static void on_remote_send(const record_at *at)
{
    builder *bd = at->bd;
    const wt_rec *r = at->r;
    uint64_t *n = wt_map_get(&bd->remote, r->a, 0);
    uint64_t receives = n ? *n : 0;
    at->w->sent++;
    if (!receives)
        remote_msg(bd, r->a, at->lane, at->t, (uint32_t)r->b);
    for (uint64_t k = 1; k <= receives; k++) {
        const wt_rec *in = &bd->t->recs[*wt_map_get(&bd->remote, r->a, k)];
        uint64_t t_in = in->ts - bd->m->t0;
        uint32_t to = lane_of(bd, in->worker);
        wt_msg *g = remote_msg(bd, r->a, at->lane, at->t, (uint32_t)r->b);
        g->to_lane = to;
        g->t_deliver = t_in > at->t ? t_in : at->t;
        g->flags |= WT_MSG_DELIVERED;
        bd->m->workers[to].recv++;
    }
}

/* A receive whose send is in none of the traces: a message of its own. */
static void on_remote_receive(const record_at *at)
{
    if (wt_map_get(&at->bd->remote, at->r->a, UINT64_MAX))
        return; /* made at its send */
    at->w->recv++;
    wt_msg *g = remote_msg(at->bd, at->r->a, at->lane, at->t, (uint32_t)at->r->b);
    g->flags |= WT_MSG_NO_FIRE | WT_MSG_DELIVERED;
}

/* --- pooled workers' slices ------------------------------------------------- */

static void on_sched_slice(const record_at *at)
{
    wt_sched_record(at->bd->sched, at->r, at->lane);
}

/* WORKER_STARTED of a pooled run */
static void on_worker_started_pooled(const record_at *at)
{
    on_worker_started(at);
    if (at->r->flags & WK_TRF_POOLED)
        at->w->pooled = true;
}

/* What each kind of record adds to the model; NULL: nothing. */
static void (*const record_handlers[WK_TR_KIND_MAX + 1])(const record_at *) = {
    [WK_TR_WORKER_STARTED] = on_worker_started_pooled,
    [WK_TR_WORKER_ENDED] = on_worker_ended,
    [WK_TR_FIRE] = on_fire,
    [WK_TR_DELIVER] = on_deliver,
    [WK_TR_LISTENER_START] = on_listener_start,
    [WK_TR_LISTENER_END] = on_listener_end,
    [WK_TR_REJECT] = on_reject,
    [WK_TR_WAIT_BEGIN] = on_wait_begin,
    [WK_TR_WAIT_END] = on_wait_end,
    [WK_TR_PAUSE] = on_pause,
    [WK_TR_RESUME] = on_resume,
    [WK_TR_STOP] = on_stop,
    [WK_TR_TIMER_FIRED] = on_timer_fired,
    [WK_TR_MAILBOX_DEPTH] = on_mailbox_depth,
    [WK_TR_TIMER_ARMED] = on_instant,
    [WK_TR_TIMER_CANCELLED] = on_instant,
    [WK_TR_FUTURE_SETTLED] = on_instant,
    [WK_TR_DEFER_SETTLED] = on_instant,
    [WK_TR_CHANNEL_PUBLISH] = on_instant,
    [WK_TR_DROPPED] = on_instant,
    [WK_TR_REQUEST_EXPIRED] = on_instant,
    [WK_TR_EVENT_DROPPED] = on_instant,
    [WK_TR_CHILD_RESTART] = on_child_restart,
    [WK_TR_SUPERVISOR_STARTED] = on_supervisor_started,
    [WK_TR_SLICE_BEGIN] = on_sched_slice,
    [WK_TR_SLICE_END] = on_sched_slice,
    [WK_TR_REMOTE_SEND] = on_remote_send,
    [WK_TR_REMOTE_RECEIVE] = on_remote_receive,
};

static void on_record(builder *bd, const wt_rec *r)
{
    if (!makes_lane(r) || r->kind > WK_TR_KIND_MAX || !record_handlers[r->kind])
        return;
    wt_model *m = bd->m;
    uint32_t lane = lane_of(bd, r->worker);
    record_at at = { bd, r, r->ts - m->t0, lane, &m->workers[lane], &bd->ls[lane] };
    record_handlers[r->kind](&at);
}

/* The lane a bubble or broadcast hop came from: the receiver of the same
 * serial that is this receiver's child (bubble) or parent (broadcast). */
static void resolve_hops(builder *bd)
{
    wt_model *m = bd->m;
    for (size_t i = 0; i < m->nmsgs; i++) {
        wt_msg *g = &m->msgs[i];
        if (!(g->flags & (WK_TRF_HOP_UP | WK_TRF_HOP_DOWN)))
            continue;
        const wt_worker *to = &m->workers[g->to_lane];
        int steps = 0;
        for (int64_t k = g->next_same_serial; k >= 0 && steps < 256;
             k = m->msgs[k].next_same_serial, steps++) {
            const wt_msg *o = &m->msgs[k];
            const wt_worker *ow = &m->workers[o->to_lane];
            if ((g->flags & WK_TRF_HOP_UP) && ow->parent_idx == (int)g->to_lane) {
                g->from_lane = o->to_lane;
                break;
            }
            if ((g->flags & WK_TRF_HOP_DOWN) && to->parent_idx == (int)o->to_lane) {
                g->from_lane = o->to_lane;
                break;
            }
        }
    }
}

static int slice_cmp(const void *pa, const void *pb)
{
    const wt_slice *a = pa, *b = pb;
    if (a->lane != b->lane)
        return a->lane < b->lane ? -1 : 1;
    if (a->t0 != b->t0)
        return a->t0 < b->t0 ? -1 : 1;
    return a->depth < b->depth ? -1 : a->depth > b->depth;
}

static int span_cmp(const void *pa, const void *pb)
{
    const wt_span *a = pa, *b = pb;
    if (a->lane != b->lane)
        return a->lane < b->lane ? -1 : 1;
    if (a->t0 != b->t0)
        return a->t0 < b->t0 ? -1 : 1;
    return a->depth < b->depth ? -1 : a->depth > b->depth;
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

void wt_model_build(const wt_trace *t, wt_model *m)
{
    memset(m, 0, sizeof *m);
    m->trace = t;
    m->t0 = t->hdr.start_ns;
    m->t_first = t->nrecs ? t->recs[0].ts : t->hdr.start_ns;
    m->t_last = t->nrecs ? t->recs[t->nrecs - 1].ts : t->hdr.start_ns;
    builder bd = { .m = m, .t = t };
    wt_map_init(&bd.ids);
    wt_map_init(&bd.msgs);
    wt_map_init(&bd.remote);
    collect_workers(&bd);
    index_remote(&bd);
    bd.ls = wt_xcalloc(m->nworkers, sizeof *bd.ls);
    for (size_t i = 0; i < m->nworkers; i++)
        bd.ls[i].pause = -1;
    bd.sched = wt_sched_begin(m);
    for (size_t i = 0; i < t->nrecs; i++)
        on_record(&bd, &t->recs[i]);
    uint64_t tend = m->t_last - m->t0;
    for (size_t i = 0; i < m->nworkers; i++) {
        lane_state *ls = &bd.ls[i];
        for (size_t k = 0; k < ls->nl; k++)
            m->slices[ls->lstack[k]].t1 = tend;
        for (size_t k = 0; k < ls->nw; k++)
            m->waits[ls->wstack[k]].t1 = tend;
        if (ls->pause >= 0)
            m->pauses[ls->pause].t1 = tend;
        free(ls->lstack);
        free(ls->wstack);
    }
    resolve_hops(&bd);
    wt_sched_finish(bd.sched);
    wt_sort(m->slices, m->nslices, sizeof *m->slices, slice_cmp);
    wt_sort(m->waits, m->nwaits, sizeof *m->waits, span_cmp);
    wt_sort(m->pauses, m->npauses, sizeof *m->pauses, span_cmp);
    for (size_t i = 0; i < m->nworkers; i++)
        wt_sort(m->workers[i].run_ns, m->workers[i].nrun, sizeof(uint64_t), u64_cmp);
    free(bd.ls);
    wt_map_free(&bd.ids);
    wt_map_free(&bd.msgs);
    wt_map_free(&bd.remote);
}

void wt_model_free(wt_model *m)
{
    for (size_t i = 0; i < m->nworkers; i++) {
        free((char *)m->workers[i].name);
        free(m->workers[i].run_ns);
    }
    free(m->workers);
    free(m->slices);
    free(m->msgs);
    free(m->waits);
    free(m->pauses);
    free(m->marks);
    free(m->samples);
    for (size_t i = 0; i < m->nscheds; i++)
        free((char *)m->scheds[i].name);
    free(m->scheds);
    free(m->sched_slices);
    memset(m, 0, sizeof *m);
}
