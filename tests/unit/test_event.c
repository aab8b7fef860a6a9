/* Events and listeners: fire/listen, payloads and release, bubble and
 * broadcast, priorities, once/permanent/transient, listener changes during
 * delivery, filters, LISTENER_ERROR, EVENT_REJECT, mailbox_limit, nothing
 * lost, bad input. (event.h,
 * docs/semantics.md "Events" and "Listeners".) */
#include "test_util.h"

#include <criterion/criterion.h>

/* ===================================================================== */
/* basics                                                                 */
/* ===================================================================== */

struct seen {
    worker_t *main;
    worker_t *self; /* the worker the listener is on */
    char name[32];
    void *data;
    size_t size;
    worker_t *target;
    worker_t *current; /* worker_current() inside the listener */
    pthread_t thread;
    unsigned char bytes[256];
    atomic_int calls;
};

static int record_listener(const worker_event_t *e, void *userdata)
{
    struct seen *s = userdata;
    snprintf(s->name, sizeof s->name, "%s", worker_event_name(e));
    s->data = worker_event_data(e);
    s->size = worker_event_size(e);
    s->target = worker_event_target(e);
    s->current = worker_current();
    s->thread = pthread_self();
    if (s->size > 0 && s->size <= sizeof s->bytes && s->data != NULL)
        memcpy(s->bytes, s->data, s->size);
    atomic_fetch_add(&s->calls, 1);
    tu_ack(s->main, atomic_load(&s->calls));
    return 0;
}

Test(events, fire_and_listen_basics, .timeout = 10)
{
    static int token;
    struct seen s = { .main = tu_main() };
    worker_t *w = worker_new(NULL, NULL, NULL);
    s.self = w;
    cr_assert_not_null(worker_listen(w, "HELLO", record_listener, &s, NULL));
    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(worker_fire(w, "HELLO", &token), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_str_eq(s.name, "HELLO");
    cr_assert_eq(s.data, &token);
    cr_assert_eq(s.size, 0, "size is 0 unless copied in");
    cr_assert_eq(s.target, s.main, "the sender is the calling thread's worker");
    cr_assert_eq(s.current, w, "listeners run on the worker's own thread");
    cr_assert_not(pthread_equal(s.thread, pthread_self()));
    cr_assert_eq(atomic_load(&s.calls), 1);

    /* Other names do not reach it. */
    cr_assert_eq(worker_fire(w, "HELLO2", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "HELL", NULL), WORKER_OK);
    tu_sync_install(w);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.calls), 1);
    tu_stop_join_unref(w);
}

Test(events, listen_on_a_running_worker_from_another_thread, .timeout = 10)
{
    struct seen s = { .main = tu_main() };
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    cr_assert_not_null(worker_listen(w, "E", record_listener, &s, NULL));
    cr_assert_eq(worker_fire(w, "E", TU_PTR(5)), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(TU_INT(s.data), 5);
    tu_stop_join_unref(w);
}

/* pyThreadWorker's printer example: listen inside the task, fire from outside. */
struct printer_ctx {
    worker_t *main;
    char out[64];
};

static int print_listener(const worker_event_t *e, void *userdata)
{
    struct printer_ctx *p = userdata;
    strncat(p->out, (const char *)worker_event_data(e), sizeof p->out - strlen(p->out) - 1);
    strncat(p->out, "\n", sizeof p->out - strlen(p->out) - 1);
    return 0;
}

static int printer_task(void *arg, void **result)
{
    (void)result;
    struct printer_ctx *p = arg;
    worker_on("PRINT", print_listener, p, NULL);
    tu_ack(p->main, 1);
    return worker_wait_forever();
}

Test(events, printer_example, .timeout = 10)
{
    struct printer_ctx p = { .main = tu_main() };
    worker_t *w = worker_spawn(printer_task, &p, NULL);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK); /* the listener is on */
    cr_assert_eq(worker_fire(w, "PRINT", "foo"), WORKER_OK);
    cr_assert_eq(worker_fire(w, "PRINT", "bar"), WORKER_OK);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_str_eq(p.out, "foo\nbar\n");
    worker_unref(w);
}

/* ===================================================================== */
/* copied payloads and release                                            */
/* ===================================================================== */

static atomic_int release_calls;
static void *release_last;

static void count_release(void *data)
{
    release_last = data;
    atomic_fetch_add(&release_calls, 1);
}

struct gated {
    tu_gate gate;
};

static int gated_task(void *arg, void **result)
{
    (void)result;
    struct gated *g = arg;
    tu_gate_pass(&g->gate, 30);
    return worker_wait_forever();
}

/* A copy of `size` bytes survives the source being overwritten; release
 * (when given) runs once, after the last holder. */
static void check_copy(size_t size, bool with_release)
{
    struct seen s = { .main = tu_main() };
    struct gated g;
    tu_gate_init(&g.gate);
    atomic_store(&release_calls, 0);
    worker_t *w = worker_new(gated_task, &g, NULL);
    worker_listen(w, "COPY", record_listener, &s, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);

    unsigned char src[200];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 7 + 1);
    worker_fire_opts fo
        = { .copy = src, .copy_size = size, .release = with_release ? count_release : NULL };
    /* The task is held in a plain wait: the event stays queued while the
     * source is overwritten. */
    cr_assert_eq(worker_fire_ex(w, "COPY", TU_PTR(1), &fo), WORKER_OK);
    unsigned char expect[200];
    memcpy(expect, src, sizeof src);
    memset(src, 0xEE, sizeof src);
    tu_gate_open(&g.gate);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(s.size, size);
    cr_assert_not_null(s.data);
    cr_assert_neq(s.data, (void *)src, "data points at the copy");
    cr_assert_neq(s.data, TU_PTR(1), "data points at the copy, not the data argument");
    cr_assert_eq((uintptr_t)s.data % 16, 0, "a copy is 16-byte aligned (size %zu)", size);
    cr_assert_eq(memcmp(s.bytes, expect, size), 0, "copied bytes differ (size %zu)", size);

    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(atomic_load(&release_calls), with_release ? 1 : 0, "release called %d times",
        atomic_load(&release_calls));
    worker_unref(w);
    tu_gate_destroy(&g.gate);
}

Test(events, copied_small_payload_size_and_release_once, .timeout = 10)
{
    check_copy(16, true);
}

/* 32 bytes fit in the event object itself, 33 do not; a copy with a
 * release function is kept apart with it. Each size is checked both ways. */
Test(events, copied_payload_around_the_inline_limit, .timeout = 20)
{
    check_copy(32, false);
    check_copy(32, true);
    check_copy(33, false);
    check_copy(33, true);
}

Test(events, copied_empty_payload, .timeout = 10)
{
    check_copy(0, false);
}

Test(events, copied_large_payload_size_and_release_once, .timeout = 10)
{
    check_copy(200, true);
    check_copy(200, false);
}

Test(events, release_gets_data_once_for_plain_events, .timeout = 10)
{
    static int token;
    struct seen s = { .main = tu_main() };
    atomic_store(&release_calls, 0);
    release_last = NULL;
    worker_t *w = worker_new(NULL, NULL, NULL);
    worker_listen(w, "E", record_listener, &s, NULL);
    worker_listen(w, "E", record_listener, &s, NULL); /* two listeners, one event */
    worker_start(w);
    worker_fire_opts fo = { .release = count_release };
    cr_assert_eq(worker_fire_ex(w, "E", &token, &fo), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    tu_stop_join_unref(worker_ref(w));
    cr_assert_eq(atomic_load(&release_calls), 1);
    cr_assert_eq(release_last, &token);
    cr_assert_eq(s.data, &token);
    worker_unref(w);
}

Test(events, release_for_events_without_listeners, .timeout = 10)
{
    atomic_store(&release_calls, 0);
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    worker_fire_opts fo = { .release = count_release };
    for (int i = 0; i < 10; i++)
        cr_assert_eq(worker_fire_ex(w, "NOBODY", TU_PTR(i + 1), &fo), WORKER_OK);
    tu_stop_join_unref(w);
    cr_assert_eq(atomic_load(&release_calls), 10);
}

Test(events, refused_fire_does_not_release, .timeout = 10)
{
    atomic_store(&release_calls, 0);
    worker_t *w = worker_new(NULL, NULL, NULL); /* never started */
    int x = 5;
    worker_fire_opts fo = { .release = count_release };
    cr_assert_eq(worker_fire_ex(w, "E", &x, &fo), WORKER_EREJECTED);
    worker_fire_opts fc = { .copy = &x, .copy_size = sizeof x, .release = count_release };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &fc), WORKER_EREJECTED);
    cr_assert_eq(atomic_load(&release_calls), 0);
    worker_unref(w);
}

/* ===================================================================== */
/* bubble and broadcast across a 3-level tree: A <- B <- C                */
/* ===================================================================== */

struct got {
    int level; /* 0 = A, 1 = B, 2 = C */
    worker_t *target; /* the event's sender */
    worker_t *current; /* the worker the listener ran on */
    char name[16];
};

static struct got got_log[32];
static int got_n;

static int got_recorder(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    if (got_n < 32)
        memcpy(&got_log[got_n], worker_event_data(e), sizeof got_log[0]);
    got_n++;
    return 0;
}

struct level {
    worker_t *main;
    worker_t *w;
    int level;
};

static int got_listener(const worker_event_t *e, void *userdata)
{
    struct level *l = userdata;
    struct got g
        = { .level = l->level, .target = worker_event_target(e), .current = worker_current() };
    snprintf(g.name, sizeof g.name, "%s", worker_event_name(e));
    worker_fire_opts fo = { .copy = &g, .copy_size = sizeof g };
    worker_fire_ex(l->main, "GOT", NULL, &fo);
    return 0;
}

static int do_bubble(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    (void)e;
    int rc = worker_bubble("UP", NULL);
    tu_ack(((struct level *)userdata)->main, rc);
    return 0;
}

static int do_broadcast(const worker_event_t *e, void *userdata)
{
    (void)e;
    int rc = worker_broadcast("DOWN", NULL);
    tu_ack(((struct level *)userdata)->main, rc);
    return 0;
}

struct tree3 {
    struct level lv[3];
};

static void tree3_make(struct tree3 *t)
{
    worker_t *main = tu_main();
    got_n = 0;
    cr_assert_not_null(worker_listen(main, "GOT", got_recorder, NULL, NULL));
    const char *names[] = { "EV", "UP", "DOWN" };
    for (int i = 0; i < 3; i++) {
        worker_opts o = { .parent = i > 0 ? t->lv[i - 1].w : NULL };
        t->lv[i] = (struct level) { .main = main, .level = i };
        t->lv[i].w = worker_new(NULL, NULL, &o);
        cr_assert_not_null(t->lv[i].w);
        for (int n = 0; n < 3; n++)
            worker_listen(t->lv[i].w, names[n], got_listener, &t->lv[i], NULL);
        worker_listen(t->lv[i].w, "DO_BUBBLE", do_bubble, &t->lv[i], NULL);
        worker_listen(t->lv[i].w, "DO_BROADCAST", do_broadcast, &t->lv[i], NULL);
        tu_sync_install(t->lv[i].w);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_start(t->lv[i].w), WORKER_OK);
    cr_assert_eq(worker_parent(t->lv[1].w), t->lv[0].w);
    cr_assert_eq(worker_parent(t->lv[2].w), t->lv[1].w);
}

static void tree3_free(struct tree3 *t)
{
    worker_stop(t->lv[0].w);
    worker_join(t->lv[0].w);
    for (int i = 2; i >= 0; i--) {
        cr_assert_not(worker_is_running(t->lv[i].w));
        worker_unref(t->lv[i].w);
    }
}

/* GOT events are recorded by a listener on main (whichever wait handles
 * them: a GOT may arrive while the test waits for an ACK). tree3_collect
 * fires TU_SYNC at each level and waits for the three answers: a GOT fired
 * by a level while it handled an event queued before the TU_SYNC arrives
 * before that level's TU_SYNCED (order per sender), so every GOT is in by
 * then. It checks and clears the log. */
struct collect {
    struct tree3 *t;
    intptr_t seq_base;
    int synced;
};

static bool collect_cond(const worker_event_t *e, void *userdata)
{
    struct collect *c = userdata;
    if (tu_streq(worker_event_name(e), "TU_SYNCED")) {
        intptr_t v = (intptr_t)worker_event_data(e);
        for (int i = 0; i < 3; i++)
            if (v == c->seq_base + i && worker_event_target(e) == c->t->lv[i].w)
                c->synced |= 1 << i;
    }
    return c->synced == 7;
}

static int tree3_collect(struct tree3 *t, const char *name, worker_t *sender)
{
    static intptr_t next = 1000000;
    struct collect c = { .t = t, .seq_base = next };
    next += 10;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_fire(t->lv[i].w, "TU_SYNC", TU_PTR(c.seq_base + i)), WORKER_OK);
    cr_assert_eq(worker_wait_until(collect_cond, &c, TU_WAIT, NULL), WORKER_OK);
    int mask = 0;
    cr_assert_leq(got_n, 32);
    for (int k = 0; k < got_n; k++) {
        const struct got *g = &got_log[k];
        cr_assert(g->level >= 0 && g->level <= 2, "bad level %d", g->level);
        cr_assert_eq(mask & (1 << g->level), 0, "%s: level %d got it twice", name, g->level);
        mask |= 1 << g->level;
        cr_assert_str_eq(g->name, name, "level %d", g->level);
        cr_assert_eq(g->target, sender, "%s: level %d: wrong sender", name, g->level);
        cr_assert_eq(g->current, t->lv[g->level].w, "level %d: listener ran elsewhere", g->level);
    }
    got_n = 0;
    return mask;
}

#define LA 1
#define LB 2
#define LC 4

Test(events, bubble_targets_across_three_levels, .timeout = 10)
{
    struct tree3 t;
    tree3_make(&t);
    worker_t *main = tu_main();
    worker_t *A = t.lv[0].w, *B = t.lv[1].w, *C = t.lv[2].w;
    worker_fire_opts up = { .bubble = true };

    cr_assert_eq(worker_fire_ex(C, "EV", NULL, &up), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LA | LB | LC);
    cr_assert_eq(worker_fire_ex(B, "EV", NULL, &up), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LA | LB);
    cr_assert_eq(worker_fire_ex(A, "EV", NULL, &up), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LA);
    /* Without bubble only the target. */
    cr_assert_eq(worker_fire(C, "EV", NULL), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LC);
    /* opts.target sets the sender every receiver sees. */
    worker_fire_opts up_as_b = { .bubble = true, .target = B };
    cr_assert_eq(worker_fire_ex(C, "EV", NULL, &up_as_b), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", B), LA | LB | LC);
    tree3_free(&t);
}

Test(events, broadcast_targets_across_three_levels, .timeout = 10)
{
    struct tree3 t;
    tree3_make(&t);
    worker_t *main = tu_main();
    worker_t *A = t.lv[0].w, *B = t.lv[1].w, *C = t.lv[2].w;
    worker_fire_opts down = { .broadcast = true };

    cr_assert_eq(worker_fire_ex(A, "EV", NULL, &down), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LA | LB | LC);
    cr_assert_eq(worker_fire_ex(B, "EV", NULL, &down), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LB | LC);
    cr_assert_eq(worker_fire_ex(C, "EV", NULL, &down), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", main), LC);
    worker_fire_opts both = { .broadcast = true, .bubble = true, .target = C };
    cr_assert_eq(worker_fire_ex(B, "EV", NULL, &both), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", C), LA | LB | LC);
    tree3_free(&t);
}

Test(events, bubble_and_broadcast_shortcuts, .timeout = 10)
{
    struct tree3 t;
    tree3_make(&t);
    worker_t *A = t.lv[0].w, *C = t.lv[2].w;
    intptr_t rc = 1;

    /* worker_bubble inside C: fires on B and up, sent by C; not on C. */
    cr_assert_eq(worker_fire(C, "DO_BUBBLE", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&rc), WORKER_OK);
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "UP", C), LA | LB);
    /* worker_bubble inside A: no parent. */
    cr_assert_eq(worker_fire(A, "DO_BUBBLE", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&rc), WORKER_OK);
    cr_assert_eq(rc, WORKER_EREJECTED);
    cr_assert_eq(tree3_collect(&t, "UP", A), 0);

    /* worker_broadcast inside A: on B and down, sent by A; not on A. */
    cr_assert_eq(worker_fire(A, "DO_BROADCAST", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&rc), WORKER_OK);
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "DOWN", A), LB | LC);
    /* worker_broadcast inside C: no children, still WORKER_OK. */
    cr_assert_eq(worker_fire(C, "DO_BROADCAST", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&rc), WORKER_OK);
    cr_assert_eq(rc, WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "DOWN", C), 0);
    tree3_free(&t);
}

Test(events, shortcuts_on_main_without_tree, .timeout = 10)
{
    tu_main();
    cr_assert_eq(worker_bubble("X", NULL), WORKER_EREJECTED);
    cr_assert_eq(worker_broadcast("X", NULL), WORKER_OK);
}

Test(events, shared_event_released_once_after_all_receivers, .timeout = 10)
{
    struct tree3 t;
    tree3_make(&t);
    atomic_store(&release_calls, 0);
    release_last = NULL;
    static int token;
    worker_fire_opts up = { .bubble = true, .release = count_release };
    cr_assert_eq(worker_fire_ex(t.lv[2].w, "EV", &token, &up), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", tu_main()), LA | LB | LC);
    worker_fire_opts down = { .broadcast = true, .release = count_release };
    cr_assert_eq(worker_fire_ex(t.lv[0].w, "EV", &token, &down), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", tu_main()), LA | LB | LC);
    int x = 3;
    worker_fire_opts upc
        = { .bubble = true, .release = count_release, .copy = &x, .copy_size = sizeof x };
    cr_assert_eq(worker_fire_ex(t.lv[2].w, "EV", NULL, &upc), WORKER_OK);
    cr_assert_eq(tree3_collect(&t, "EV", tu_main()), LA | LB | LC);
    tree3_free(&t);
    cr_assert_eq(atomic_load(&release_calls), 3);
}

/* ===================================================================== */
/* listener order and kinds                                               */
/* ===================================================================== */

struct order {
    int n;
    int idx[16];
};

struct order_item {
    struct order *o;
    int index;
};

static int order_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct order_item *it = userdata;
    if (it->o->n < 16)
        it->o->idx[it->o->n++] = it->index;
    return 0;
}

Test(events, listener_priorities, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct order o = { 0 };
    const int prio[5] = { 1, 3, 3, 1, 2 };
    struct order_item items[5];
    for (int i = 0; i < 5; i++) {
        items[i] = (struct order_item) { &o, i };
        worker_listen_opts lo = { .priority = prio[i] };
        cr_assert_not_null(worker_listen(w, "P", order_listener, &items[i], &lo));
    }
    cr_assert_eq(worker_fire(w, "P", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(o.n, 5);
    const int expect[5] = { 1, 2, 4, 0, 3 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq(
            o.idx[i], expect[i], "position %d: listener %d, expected %d", i, o.idx[i], expect[i]);
    tu_stop_join_unref(w);
}

Test(events, negative_and_default_priorities, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct order o = { 0 };
    const int prio[4] = { -5, 0, 7, 0 };
    struct order_item items[4];
    for (int i = 0; i < 4; i++) {
        items[i] = (struct order_item) { &o, i };
        worker_listen_opts lo = { .priority = prio[i] };
        /* NULL options for the default priority 0 */
        cr_assert_not_null(
            worker_listen(w, "P", order_listener, &items[i], prio[i] == 0 ? NULL : &lo));
    }
    cr_assert_eq(worker_fire(w, "P", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(o.n, 4);
    const int expect[4] = { 2, 1, 3, 0 };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(o.idx[i], expect[i]);
    tu_stop_join_unref(w);
}

static atomic_int n_once, n_perm, n_trans, n_on;

static int on_task(void *arg, void **result)
{
    (void)result;
    worker_t *main = arg;
    /* worker_on: always transient, so a restart does not add it twice. */
    worker_on("E", tu_count_listener, &n_on, NULL);
    tu_ack(main, 1);
    return worker_wait_forever();
}

Test(events, once_permanent_transient_across_restart, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_t *w = worker_new(on_task, main, NULL);
    tu_sync_install(w);
    worker_listen_opts once = { .once = true };
    worker_listen_opts trans = { .transient = true };
    worker_listener_t *lo = worker_listen(w, "E", tu_count_listener, &n_once, &once);
    worker_listener_t *lp = worker_listen(w, "E", tu_count_listener, &n_perm, NULL);
    worker_listener_t *lt = worker_listen(w, "E", tu_count_listener, &n_trans, &trans);
    cr_assert(lo && lp && lt);

    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&n_once), 1);
    cr_assert_eq(atomic_load(&n_perm), 3);
    cr_assert_eq(atomic_load(&n_trans), 3);
    cr_assert_eq(atomic_load(&n_on), 3);
    cr_assert_eq(worker_unlisten(w, lo), WORKER_EINVAL, "a once listener that ran is gone");

    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(worker_unlisten(w, lt), WORKER_EINVAL, "transient listeners go when it ends");

    cr_assert_eq(worker_start(w), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK); /* the sync listener is permanent too */
    cr_assert_eq(atomic_load(&n_once), 1);
    cr_assert_eq(atomic_load(&n_perm), 5, "permanent listeners survive a restart");
    cr_assert_eq(atomic_load(&n_trans), 3, "the transient listener is gone");
    cr_assert_eq(atomic_load(&n_on), 5, "worker_on in the task: once per run, not twice");
    cr_assert_eq(worker_unlisten(w, lp), WORKER_OK);
    cr_assert_eq(worker_unlisten(w, lp), WORKER_EINVAL);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&n_perm), 5);
    tu_stop_join_unref(w);
}

/* once: removed before it is called, so a listener that waits inside still
 * runs only once. */
struct once_wait {
    worker_t *main;
    atomic_int calls;
};

static int once_waiting_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct once_wait *o = userdata;
    atomic_fetch_add(&o->calls, 1);
    tu_ack(o->main, 1);
    worker_wait_event("INNER", TU_WAIT, NULL, NULL); /* nested: E arrives here */
    return 0;
}

Test(events, once_listener_that_waits_runs_once, .timeout = 10)
{
    struct once_wait o = { .main = tu_main() };
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    worker_listen_opts once = { .once = true };
    cr_assert_not_null(worker_listen(w, "E", once_waiting_listener, &o, &once));
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK); /* handled in the nested wait */
    cr_assert_eq(worker_fire(w, "INNER", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&o.calls), 1);
    tu_stop_join_unref(w);
}

/* ===================================================================== */
/* listener changes during delivery                                       */
/* ===================================================================== */

struct self_remove {
    worker_t *w;
    worker_listener_t *self;
    atomic_int calls;
    int unlisten_rc;
    int again_rc;
};

static int self_removing_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct self_remove *s = userdata;
    atomic_fetch_add(&s->calls, 1);
    s->unlisten_rc = worker_unlisten(s->w, s->self);
    s->again_rc = worker_unlisten(s->w, s->self);
    return 0;
}

Test(events, unlisten_inside_its_own_callback, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct self_remove s = { .w = w, .unlisten_rc = 1, .again_rc = 1 };
    s.self = worker_listen(w, "E", self_removing_listener, &s, NULL);
    cr_assert_not_null(s.self);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.calls), 1);
    cr_assert_eq(s.unlisten_rc, WORKER_OK);
    cr_assert_eq(s.again_rc, WORKER_EINVAL);
    tu_stop_join_unref(w);
}

static int self_removing_fn_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct self_remove *s = userdata;
    atomic_fetch_add(&s->calls, 1);
    s->unlisten_rc = worker_unlisten_fn(s->w, self_removing_fn_listener, s);
    return 0;
}

Test(events, unlisten_fn_inside_its_own_callback, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct self_remove s = { .w = w, .unlisten_rc = 1 };
    cr_assert_not_null(worker_listen(w, "E", self_removing_fn_listener, &s, NULL));
    cr_assert_not_null(worker_listen(w, "F", self_removing_fn_listener, &s, NULL));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
        cr_assert_eq(worker_fire(w, "F", NULL), WORKER_OK);
    }
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&s.calls), 1, "unlisten_fn removes it for every name");
    cr_assert_eq(s.unlisten_rc, WORKER_OK);
    tu_stop_join_unref(w);
}

/* A listener removing a later listener of the same event: "once it returns,
 * the listener is not called again" (event.h). */
struct remove_other {
    worker_t *w;
    worker_listener_t *victim;
    int rc;
};

static int remove_other_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct remove_other *r = userdata;
    if (r->victim != NULL) {
        r->rc = worker_unlisten(r->w, r->victim);
        r->victim = NULL;
    }
    return 0;
}

Test(events, unlisten_a_later_listener_during_delivery, .timeout = 10)
{
    static atomic_int victim_calls;
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct remove_other r = { .w = w, .rc = 1 };
    worker_listen_opts first = { .priority = 10 };
    cr_assert_not_null(worker_listen(w, "E", remove_other_listener, &r, &first));
    r.victim = worker_listen(w, "E", tu_count_listener, &victim_calls, NULL);
    cr_assert_not_null(r.victim);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(r.rc, WORKER_OK);
    cr_assert_eq(
        atomic_load(&victim_calls), 0, "a listener removed during delivery was still called");
    tu_stop_join_unref(w);
}

struct adder {
    worker_t *w;
    atomic_int outer_calls;
    atomic_int inner_calls;
    bool added;
};

static int inner_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct adder *a = userdata;
    atomic_fetch_add(&a->inner_calls, 1);
    return 0;
}

static int adding_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct adder *a = userdata;
    atomic_fetch_add(&a->outer_calls, 1);
    if (!a->added) {
        a->added = true;
        /* Lowest priority: it would come after this one if it saw this event. */
        worker_listen_opts lo = { .priority = -100 };
        worker_listen(a->w, "E", inner_listener, a, &lo);
    }
    return 0;
}

Test(events, listen_inside_a_listener, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    struct adder a = { .w = w };
    cr_assert_not_null(worker_listen(w, "E", adding_listener, &a, NULL));
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&a.outer_calls), 1);
    cr_assert_eq(atomic_load(&a.inner_calls), 0, "a new listener must not see the current event");
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&a.outer_calls), 2);
    cr_assert_eq(atomic_load(&a.inner_calls), 1, "the new listener sees the next event");
    tu_stop_join_unref(w);
}

/* ===================================================================== */
/* filters and unlisten_fn                                                */
/* ===================================================================== */

Test(events, target_filter, .timeout = 10)
{
    static atomic_int from_x, any;
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    worker_t *x = worker_new(NULL, NULL, NULL);
    worker_t *y = worker_new(NULL, NULL, NULL);
    tu_sync_install(w);
    worker_listen_opts only_x = { .target = x };
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &from_x, &only_x));
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &any, NULL));
    worker_fire_opts as_x = { .target = x };
    worker_fire_opts as_y = { .target = y };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &as_x), WORKER_OK);
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &as_y), WORKER_OK);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK); /* sender: main */
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &as_x), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&any), 4);
    cr_assert_eq(atomic_load(&from_x), 2);
    tu_stop_join_unref(w);
    worker_unref(x);
    worker_unref(y);
}

Test(events, unlisten_fn_removes_every_matching_pair, .timeout = 10)
{
    static atomic_int c1, c2;
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    tu_sync_install(w);
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &c1, NULL));
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &c1, NULL));
    cr_assert_not_null(worker_listen(w, "G", tu_count_listener, &c1, NULL));
    cr_assert_not_null(worker_listen(w, "E", tu_count_listener, &c2, NULL));
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c1), 2);
    cr_assert_eq(atomic_load(&c2), 1);

    cr_assert_eq(worker_unlisten_fn(w, tu_count_listener, &c1), WORKER_OK);
    cr_assert_eq(worker_unlisten_fn(w, tu_count_listener, &c1), WORKER_EINVAL);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(worker_fire(w, "G", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&c1), 2);
    cr_assert_eq(atomic_load(&c2), 2);
    tu_stop_join_unref(w);
}

/* ===================================================================== */
/* LISTENER_ERROR                                                         */
/* ===================================================================== */

struct lerr {
    worker_t *main;
    atomic_int count;
    void *data[8];
    int ret; /* what this listener returns */
    bool ack;
};

static int failing_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    return TU_INT(userdata);
}

static int lerr_listener(const worker_event_t *e, void *userdata)
{
    struct lerr *l = userdata;
    int n = atomic_load(&l->count);
    if (n < 8)
        l->data[n] = worker_event_data(e);
    atomic_store(&l->count, n + 1);
    if (l->ack)
        tu_ack(l->main, TU_INT(worker_event_data(e)));
    return l->ret;
}

/* FWD on P forwards a sync to G from P's thread, so it arrives at G after
 * anything P's thread fired at G before; the sender is set to main, so G
 * answers main. */
struct fwd {
    worker_t *to;
    worker_t *answer;
};

static int forward_sync(const worker_event_t *e, void *userdata)
{
    struct fwd *f = userdata;
    worker_fire_opts fo = { .target = f->answer };
    worker_fire_ex(f->to, "TU_SYNC", worker_event_data(e), &fo);
    return 0;
}

Test(events, listener_error_bubbles, .timeout = 10)
{
    worker_t *main = tu_main();
    worker_opts quiet = { .quiet = true };
    worker_t *G = worker_new(NULL, NULL, &quiet);
    worker_opts qp = { .quiet = true, .parent = G };
    worker_t *P = worker_new(NULL, NULL, &qp);
    worker_opts qc = { .quiet = true, .parent = P };
    worker_t *C = worker_new(NULL, NULL, &qc);
    struct lerr lg = { .main = main }, lp = { .main = main, .ret = 7, .ack = true },
                lc = { .main = main };
    worker_listen(G, WORKER_EV_LISTENER_ERROR, lerr_listener, &lg, NULL);
    worker_listen(P, WORKER_EV_LISTENER_ERROR, lerr_listener, &lp, NULL);
    worker_listen(C, WORKER_EV_LISTENER_ERROR, lerr_listener, &lc, NULL);
    worker_listen(C, "E", failing_listener, TU_PTR(42), NULL);
    struct fwd fw = { .to = G, .answer = main };
    worker_listen(P, "FWD", forward_sync, &fw, NULL);
    tu_sync_install(G);
    tu_sync_install(C);
    cr_assert_eq(worker_start(G), WORKER_OK);
    cr_assert_eq(worker_start(P), WORKER_OK);
    cr_assert_eq(worker_start(C), WORKER_OK);

    cr_assert_eq(worker_fire(C, "E", NULL), WORKER_OK);
    intptr_t v = 0;
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK); /* P got it (its listener fails with 7) */
    cr_assert_eq(v, 42);
    cr_assert_eq(tu_sync(C), WORKER_OK);
    /* G: after anything C's or P's thread fired at it before. */
    cr_assert_eq(worker_fire(P, "FWD", TU_PTR(777)), WORKER_OK);
    cr_assert_eq(worker_wait_event("TU_SYNCED", TU_WAIT, G, NULL), WORKER_OK);

    cr_assert_eq(atomic_load(&lc.count), 1, "fired on the failing worker itself");
    cr_assert_eq(TU_INT(lc.data[0]), 42);
    cr_assert_eq(atomic_load(&lp.count), 1);
    cr_assert_eq(atomic_load(&lg.count), 1,
        "G: one LISTENER_ERROR (an error inside a LISTENER_ERROR listener is not "
        "fired again); got %d",
        atomic_load(&lg.count));
    cr_assert_eq(TU_INT(lg.data[0]), 42);

    /* The failing listener stays and fails again on the next event. */
    cr_assert_eq(worker_fire(C, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
    cr_assert_eq(v, 42);
    tu_stop_join_unref(G);
    worker_unref(P);
    worker_unref(C);
}

/* ===================================================================== */
/* EVENT_REJECT and refusals                                              */
/* ===================================================================== */

struct rejecter {
    worker_t *main;
    worker_t *dead;
    int fire_rc;
    worker_t *reject_sender;
    void *reject_data;
};

static int fire_at_dead(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct rejecter *r = userdata;
    r->fire_rc = worker_fire(r->dead, "X", TU_PTR(1234));
    return 0;
}

static int on_reject(const worker_event_t *e, void *userdata)
{
    struct rejecter *r = userdata;
    r->reject_sender = worker_event_target(e);
    r->reject_data = worker_event_data(e);
    tu_ack(r->main, 1);
    return 0;
}

static void check_reject(worker_t *dead)
{
    struct rejecter r = { .main = tu_main(), .dead = dead, .fire_rc = 1 };
    worker_t *s = worker_new(NULL, NULL, NULL);
    worker_listen(s, "DO", fire_at_dead, &r, NULL);
    worker_listen(s, WORKER_EV_EVENT_REJECT, on_reject, &r, NULL);
    cr_assert_eq(worker_start(s), WORKER_OK);
    cr_assert_eq(worker_fire(s, "DO", NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(r.fire_rc, WORKER_EREJECTED);
    cr_assert_eq(r.reject_sender, dead, "EVENT_REJECT is sent by the worker that refused");
    cr_assert_eq(TU_INT(r.reject_data), 1234, "EVENT_REJECT carries the refused data");
    tu_stop_join_unref(s);
}

Test(events, event_reject_to_running_sender_never_started, .timeout = 10)
{
    worker_t *dead = worker_new(NULL, NULL, NULL);
    check_reject(dead);
    worker_unref(dead);
}

Test(events, event_reject_to_running_sender_after_end, .timeout = 10)
{
    worker_t *dead = worker_spawn(NULL, NULL, NULL);
    worker_stop(dead);
    worker_join(dead);
    check_reject(dead);
    worker_unref(dead);
}

Test(events, event_reject_with_explicit_sender, .timeout = 10)
{
    /* opts.target names the sender: EVENT_REJECT goes there. */
    struct rejecter r = { .main = tu_main() };
    worker_t *s = worker_new(NULL, NULL, NULL);
    worker_listen(s, WORKER_EV_EVENT_REJECT, on_reject, &r, NULL);
    worker_start(s);
    worker_t *dead = worker_new(NULL, NULL, NULL);
    worker_fire_opts fo = { .target = s };
    cr_assert_eq(worker_fire_ex(dead, "X", TU_PTR(1234), &fo), WORKER_EREJECTED);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(r.reject_sender, dead);
    cr_assert_eq(TU_INT(r.reject_data), 1234);
    tu_stop_join_unref(s);
    worker_unref(dead);
}

/* A bubble hop that is refused (the parent is not running) gives an
 * EVENT_REJECT to the sender; the fire itself reports the result for its
 * own target. */
Test(events, bubble_hop_refused_rejects_to_sender, .timeout = 10)
{
    struct rejecter r = { .main = tu_main() };
    worker_t *a = worker_new(NULL, NULL, NULL); /* never started */
    worker_opts under = { .parent = a };
    worker_t *b = worker_new(NULL, NULL, &under);
    struct seen sb = { .main = r.main };
    worker_listen(b, "EV", record_listener, &sb, NULL);
    worker_start(b);
    worker_t *s = worker_new(NULL, NULL, NULL);
    worker_listen(s, WORKER_EV_EVENT_REJECT, on_reject, &r, NULL);
    worker_start(s);
    worker_fire_opts fo = { .bubble = true, .target = s };
    cr_assert_eq(worker_fire_ex(b, "EV", TU_PTR(31), &fo), WORKER_OK);
    /* Two ACKs in any order: b's listener (data 1) and s's reject (1). */
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(tu_wait_ack(NULL), WORKER_OK);
    cr_assert_eq(TU_INT(sb.data), 31);
    cr_assert_eq(sb.target, s);
    cr_assert_eq(r.reject_sender, a);
    cr_assert_eq(TU_INT(r.reject_data), 31);
    tu_stop_join_unref(s);
    tu_stop_join_unref(b);
    worker_unref(a);
}

Test(events, rejection_after_the_worker_ended, .timeout = 10)
{
    static atomic_int calls;
    atomic_store(&release_calls, 0);
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    worker_listen(w, "E", tu_count_listener, &calls, NULL);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_EREJECTED);
    int x = 1;
    worker_fire_opts fo = { .copy = &x, .copy_size = sizeof x, .release = count_release };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &fo), WORKER_EREJECTED);
    worker_fire_opts up = { .bubble = true, .broadcast = true };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &up), WORKER_EREJECTED);
    cr_assert_eq(worker_pause(w), WORKER_EREJECTED);
    cr_assert_eq(worker_resume(w), WORKER_EREJECTED);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(atomic_load(&release_calls), 0);
    cr_assert_eq(atomic_load(&calls), 0);
    /* Restarted, it accepts again; the refused events never show up. */
    cr_assert_eq(worker_start(w), WORKER_OK);
    tu_sync_install(w);
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK);
    cr_assert_eq(tu_sync(w), WORKER_OK);
    cr_assert_eq(atomic_load(&calls), 1);
    tu_stop_join_unref(w);
}

/* ===================================================================== */
/* mailbox_limit                                                          */
/* ===================================================================== */

struct limit_ctx {
    tu_gate gate;
    int paused_seen;
    int resumed_seen;
};

static int limit_task(void *arg, void **result)
{
    (void)result;
    struct limit_ctx *l = arg;
    tu_gate_pass(&l->gate, 30);
    return worker_wait_forever();
}

Test(events, mailbox_limit_refuses_user_events_only, .timeout = 10)
{
    static atomic_int calls, pauses, resumes;
    struct limit_ctx l;
    tu_gate_init(&l.gate);
    atomic_store(&release_calls, 0);
    worker_opts o = { .mailbox_limit = 4 };
    worker_t *w = worker_new(limit_task, &l, &o);
    worker_listen(w, "E", tu_count_listener, &calls, NULL);
    worker_listen(w, WORKER_EV_PAUSE_THREAD, tu_count_listener, &pauses, NULL);
    worker_listen(w, WORKER_EV_RESUME_THREAD, tu_count_listener, &resumes, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    /* The task is in a plain wait: nothing is taken from the mailbox. */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(worker_fire(w, "E", NULL), WORKER_OK, "event %d", i);
    worker_fire_opts fo = { .release = count_release };
    cr_assert_eq(worker_fire_ex(w, "E", TU_PTR(9), &fo), WORKER_EFULL);
    cr_assert_eq(worker_fire(w, "OTHER", NULL), WORKER_EFULL);
    cr_assert_eq(worker_pause(w), WORKER_OK, "pause is never refused for a full mailbox");
    cr_assert_eq(worker_resume(w), WORKER_OK, "resume is never refused for a full mailbox");
    cr_assert_eq(worker_fire(w, "E", NULL), WORKER_EFULL);
    cr_assert_eq(worker_stop(w), WORKER_OK, "stop is never refused for a full mailbox");
    cr_assert(worker_is_running(w));
    tu_gate_open(&l.gate);
    int err = 0;
    cr_assert_eq(worker_wait_thread(w, &err, NULL), WORKER_OK);
    cr_assert_eq(err, WORKER_EXIT, "the stop was queued and handled");
    cr_assert_eq(atomic_load(&calls), 4, "exactly the accepted events, none half-queued");
    cr_assert_eq(atomic_load(&pauses), 1);
    cr_assert_eq(atomic_load(&resumes), 1);
    cr_assert_eq(atomic_load(&release_calls), 0, "a refused fire does not release");
    worker_unref(w);
    tu_gate_destroy(&l.gate);
}

Test(events, mailbox_limit_frees_up_when_taken, .timeout = 10)
{
    worker_t *main = tu_main();
    struct limit_ctx l;
    tu_gate_init(&l.gate);
    worker_opts o = { .mailbox_limit = 2 };
    worker_t *w = worker_new(limit_task, &l, &o);
    worker_listen(w, "E", tu_ack_listener, main, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(worker_fire(w, "E", TU_PTR(1)), WORKER_OK);
        cr_assert_eq(worker_fire(w, "E", TU_PTR(2)), WORKER_OK);
        if (round == 0) {
            cr_assert_eq(worker_fire(w, "E", TU_PTR(3)), WORKER_EFULL);
            tu_gate_open(&l.gate);
        }
        intptr_t v = 0;
        cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
        cr_assert_eq(v, 1);
        cr_assert_eq(tu_wait_ack(&v), WORKER_OK);
        cr_assert_eq(v, 2);
    }
    /* Nothing else arrives: the refused event was not queued. */
    cr_assert_eq(worker_wait_event(TU_ACK, 0.05, NULL, NULL), WORKER_ETIMEDOUT);
    tu_stop_join_unref(w);
    tu_gate_destroy(&l.gate);
}

/* ===================================================================== */
/* nothing lost                                                           */
/* ===================================================================== */

struct seq_check {
    int count;
    int next;
    int out_of_order;
};

static int seq_listener(const worker_event_t *e, void *userdata)
{
    struct seq_check *s = userdata;
    if (TU_INT(worker_event_data(e)) != s->next)
        s->out_of_order++;
    s->next = TU_INT(worker_event_data(e)) + 1;
    s->count++;
    return 0;
}

Test(events, nothing_lost_when_stop_follows_many_fires, .timeout = 20)
{
    struct seq_check s = { 0 };
    worker_t *w = worker_new(NULL, NULL, NULL);
    worker_listen(w, "E", seq_listener, &s, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(worker_fire(w, "E", TU_PTR(i)), WORKER_OK, "fire %d", i);
    cr_assert_eq(worker_stop(w), WORKER_OK);
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_not(worker_is_running(w));
    cr_assert_eq(s.count, 10000, "delivered %d of 10000", s.count);
    cr_assert_eq(s.out_of_order, 0);
    worker_unref(w);
}

/* Events accepted while the worker is already stopping are delivered too:
 * the task leaves at once, the events queued behind STOP_THREAD arrive in
 * the end sequence's drain. */
static int return_at_once_task(void *arg, void **result)
{
    (void)result;
    tu_gate_pass(arg, 30);
    return 0;
}

Test(events, accepted_events_delivered_in_the_end_sequence, .timeout = 10)
{
    struct seq_check s = { 0 };
    tu_gate g;
    tu_gate_init(&g);
    worker_t *w = worker_new(return_at_once_task, &g, NULL);
    worker_listen(w, "E", seq_listener, &s, NULL);
    cr_assert_eq(worker_start(w), WORKER_OK);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(worker_fire(w, "E", TU_PTR(i)), WORKER_OK);
    tu_gate_open(&g); /* the task returns without ever running its loop */
    cr_assert_eq(worker_join(w), WORKER_OK);
    cr_assert_eq(s.count, 100);
    cr_assert_eq(s.out_of_order, 0);
    worker_unref(w);
    tu_gate_destroy(&g);
}

/* ===================================================================== */
/* bad input                                                              */
/* ===================================================================== */

Test(events, bad_input_fire, .timeout = 10)
{
    worker_t *w = worker_spawn(NULL, NULL, NULL);
    int x = 0;
    cr_assert_eq(worker_fire(NULL, "E", NULL), WORKER_EINVAL);
    cr_assert_eq(worker_fire(w, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_fire(w, "", NULL), WORKER_EINVAL);
    cr_assert_eq(worker_fire_ex(NULL, "E", NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_fire_ex(w, NULL, NULL, NULL), WORKER_EINVAL);
    cr_assert_eq(worker_fire_ex(w, "", NULL, NULL), WORKER_EINVAL);
    worker_fire_opts size_no_copy = { .copy_size = 4 };
    cr_assert_eq(worker_fire_ex(w, "E", NULL, &size_no_copy), WORKER_EINVAL);
    /* Valid corner cases. */
    cr_assert_eq(worker_fire_ex(w, "E", NULL, NULL), WORKER_OK);
    worker_fire_opts zero;
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(worker_fire_ex(w, "E", &x, &zero), WORKER_OK);
    /* Invalid arguments to a worker that is not running: still EINVAL. */
    worker_t *dead = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_fire(dead, "", NULL), WORKER_EINVAL);
    worker_unref(dead);
    tu_stop_join_unref(w);
}

Test(events, bad_input_listen, .timeout = 10)
{
    worker_t *w = worker_new(NULL, NULL, NULL);
    static atomic_int c;
    cr_assert_null(worker_listen(NULL, "E", tu_count_listener, &c, NULL));
    cr_assert_null(worker_listen(w, NULL, tu_count_listener, &c, NULL));
    cr_assert_null(worker_listen(w, "", tu_count_listener, &c, NULL));
    cr_assert_null(worker_listen(w, "E", NULL, &c, NULL));
    worker_listener_t *l = worker_listen(w, "E", tu_count_listener, &c, NULL);
    cr_assert_not_null(l);
    cr_assert_eq(worker_unlisten(NULL, l), WORKER_EINVAL);
    cr_assert_eq(worker_unlisten(w, NULL), WORKER_EINVAL);
    /* Never dereferenced: a bogus handle is just "not a listener". */
    cr_assert_eq(worker_unlisten(w, (worker_listener_t *)(uintptr_t)0x10), WORKER_EINVAL);
    worker_t *other = worker_new(NULL, NULL, NULL);
    cr_assert_eq(worker_unlisten(other, l), WORKER_EINVAL, "l belongs to w, not to other");
    cr_assert_eq(worker_unlisten(w, l), WORKER_OK);
    cr_assert_eq(worker_unlisten(w, l), WORKER_EINVAL);
    cr_assert_eq(worker_unlisten_fn(NULL, tu_count_listener, &c), WORKER_EINVAL);
    cr_assert_eq(worker_unlisten_fn(w, NULL, &c), WORKER_EINVAL);
    cr_assert_eq(worker_unlisten_fn(w, tu_count_listener, &c), WORKER_EINVAL, "none left");
    cr_assert_null(worker_on(NULL, tu_count_listener, &c, NULL));
    cr_assert_null(worker_on("", tu_count_listener, &c, NULL));
    cr_assert_null(worker_on("E", NULL, &c, NULL));
    worker_unref(other);
    worker_unref(w);
}

/* A stale handle stays stale when its memory is reused: remove a listener,
 * add another one (the allocator may give it the old one's memory), then
 * unlisten the stale handle: WORKER_EINVAL, and the newer listener is still
 * there and still fires. Many rounds, so that a reuse happens in some. */
Test(events, stale_handle_does_not_remove_a_newer_listener, .timeout = 30)
{
    worker_t *me = tu_main();
    static atomic_int fresh_calls, old_calls;
    int same_value = 0;
    for (int round = 0; round < 200; round++) {
        worker_listener_t *old = worker_listen(me, "REUSED", tu_count_listener, &old_calls, NULL);
        cr_assert_not_null(old);
        cr_assert_eq(worker_unlisten(me, old), WORKER_OK);
        worker_listener_t *fresh
            = worker_listen(me, "REUSED", tu_count_listener, &fresh_calls, NULL);
        cr_assert_not_null(fresh);
        same_value += old == fresh;
        cr_assert_eq(worker_unlisten(me, old), WORKER_EINVAL,
            "round %d: the stale handle removed a listener (the newer one %s its value)", round,
            old == fresh ? "has" : "does not have");
        if (round % 10 == 0) { /* the newer one fires */
            atomic_store(&fresh_calls, 0);
            cr_assert_eq(worker_fire(me, "REUSED", NULL), WORKER_OK);
            cr_assert_eq(worker_update(), WORKER_OK);
            cr_assert_eq(atomic_load(&fresh_calls), 1, "round %d: the newer listener fires", round);
        }
        cr_assert_eq(worker_unlisten(me, fresh), WORKER_OK, "round %d: still listed", round);
        cr_assert_eq(worker_unlisten(me, fresh), WORKER_EINVAL);
    }
    cr_assert_eq(atomic_load(&old_calls), 0);
    cr_log_info("handle values reused in %d of 200 rounds", same_value);
}

/* Many distinct names on one worker: each of 100,000 names gets its own
 * listener, each fires exactly its own listener once, and each handle
 * removes exactly its listener. (Adding a name used to cost a walk over all
 * the names the worker had: quadratic in total.) */
#define MANY_NAMES 100000

struct many_names {
    int calls[MANY_NAMES];
    int wrong;
};

static void many_name(char *buf, size_t size, int i)
{
    snprintf(buf, size, "MANY-%d", i);
}

static int on_many(const worker_event_t *e, void *userdata)
{
    struct many_names *m = worker_event_data(e);
    int i = TU_INT(userdata);
    char expect[32];
    many_name(expect, sizeof expect, i);
    if (strcmp(worker_event_name(e), expect) != 0)
        m->wrong++;
    m->calls[i]++;
    return 0;
}

Test(events, many_distinct_names_each_fire_their_own_listener, .timeout = 100)
{
    worker_t *me = tu_main();
    static struct many_names m;
    static worker_listener_t *handles[MANY_NAMES];
    char name[32];
    for (int i = 0; i < MANY_NAMES; i++) {
        many_name(name, sizeof name, i);
        handles[i] = worker_listen(me, name, on_many, TU_PTR(i), NULL);
        cr_assert_not_null(handles[i], "name %d", i);
    }
    for (int i = 0; i < MANY_NAMES; i++) {
        many_name(name, sizeof name, i);
        cr_assert_eq(worker_fire(me, name, &m), WORKER_OK);
        if (i % 1000 == 999) /* keep the mailbox short */
            cr_assert_eq(worker_update(), WORKER_OK);
    }
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(m.wrong, 0, "a listener saw another name");
    for (int i = 0; i < MANY_NAMES; i++)
        cr_assert_eq(m.calls[i], 1, "name %d fired %d times", i, m.calls[i]);
    for (int i = 0; i < MANY_NAMES; i++)
        cr_assert_eq(worker_unlisten(me, handles[i]), WORKER_OK, "name %d", i);
    cr_assert_eq(worker_unlisten(me, handles[0]), WORKER_EINVAL);
    many_name(name, sizeof name, 7);
    cr_assert_eq(worker_fire(me, name, &m), WORKER_OK);
    cr_assert_eq(worker_update(), WORKER_OK);
    cr_assert_eq(m.calls[7], 1, "removed: not called again");
}

Test(events, bad_input_event_accessors)
{
    cr_assert_null(worker_event_name(NULL));
    cr_assert_null(worker_event_data(NULL));
    cr_assert_eq(worker_event_size(NULL), 0);
    cr_assert_null(worker_event_target(NULL));
}

struct shortcut_bad {
    worker_t *main;
};

static int bad_shortcuts_listener(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct shortcut_bad *s = userdata;
    intptr_t ok = worker_bubble(NULL, NULL) == WORKER_EINVAL
        && worker_bubble("", NULL) == WORKER_EINVAL && worker_broadcast(NULL, NULL) == WORKER_EINVAL
        && worker_broadcast("", NULL) == WORKER_EINVAL;
    tu_ack(s->main, ok);
    return 0;
}

Test(events, bad_input_bubble_broadcast, .timeout = 10)
{
    struct shortcut_bad s = { .main = tu_main() };
    worker_t *p = worker_spawn(NULL, NULL, NULL);
    worker_opts under = { .parent = p };
    worker_t *c = worker_new(NULL, NULL, &under);
    worker_listen(c, "DO", bad_shortcuts_listener, &s, NULL);
    worker_start(c);
    worker_t *gc;
    worker_opts under_c = { .parent = c };
    gc = worker_spawn(NULL, NULL, &under_c);
    cr_assert_eq(worker_fire(c, "DO", NULL), WORKER_OK);
    intptr_t ok = 0;
    cr_assert_eq(tu_wait_ack(&ok), WORKER_OK);
    cr_assert_eq(ok, 1);
    tu_stop_join_unref(p);
    worker_unref(c);
    worker_unref(gc);
}
