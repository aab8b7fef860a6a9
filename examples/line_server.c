/* line_server: a TCP line server, written the way a C service is.
 *
 * The main thread owns every socket. Its epoll loop watches the listening
 * socket, the connections and worker_fd() (the fd of the main thread's
 * root worker), sleeps at most worker_next_timeout(), and calls
 * worker_update() when the fd is readable. A connection's lines go, one at
 * a time, to a pool of POOL workers (round robin). A pool worker looks the
 * word up with worker_call() at the "dictionary" worker, with a deadline,
 * and fires the answer back at the main thread, which writes it out.
 *
 * Protocol: one service name per line, e.g. "ssh"; the answer is "ssh 22",
 * "gopher unknown", or "gopher error: <reason>" when the lookup failed.
 *
 * Signals are events (worker_signal), never code in a signal handler:
 *   SIGINT, SIGTERM  STOP_THREAD at the main worker: the loop ends, the pool
 *                    (the main worker's children) stops, then the
 *                    dictionary; exit status 0
 *   SIGUSR1          print worker_stats() of every worker
 *
 * Run: ./line_server [PORT]      (none or 0: a free port, printed)
 *      then `nc 127.0.0.1 PORT`, type "http"; `kill -USR1 PID`; Ctrl-C.
 * tests/examples/test_line_server.c runs it with concurrent clients. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <worker/worker.h>

#define POOL 4
#define MAX_CONNS 256
#define MAX_LINE 128
#define LOOKUP_DEADLINE 2.0 /* seconds a pool worker waits for the dictionary */
#define NOT_FOUND 1 /* the dictionary's reply error (WORKER_E... codes are < 0) */

/* epoll keys that are not a connection's slot. */
#define KEY_WORKER_FD UINT64_MAX
#define KEY_LISTEN (UINT64_MAX - 1)

/* main -> pool ("LINE") and pool -> main ("ANSWER"), copied into the event:
 * the main thread's buffers change while a worker holds the line. */
struct job {
    unsigned slot;
    uint64_t serial;
    char line[MAX_LINE];
};
struct answer {
    unsigned slot;
    uint64_t serial;
    char text[MAX_LINE + 64];
};

struct conn {
    int fd;
    uint64_t serial; /* tells this connection from an earlier one in its slot */
    bool busy; /* a line is with the pool: the next one waits, so answers keep the lines' order */
    bool eof; /* the client sent everything: close once it is answered */
    size_t in_len, out_len;
    char in[4 * MAX_LINE];
    char out[sizeof(struct answer)];
};

struct server {
    int ep, listen_fd;
    worker_t *me, *dictionary, *pool[POOL];
    unsigned next_worker;
    uint64_t next_serial;
    unsigned long answered;
    bool stopping; /* STOP_THREAD came: leave the loop */
    struct conn *conns[MAX_CONNS];
};

/* What the pool workers share (read-only once they start). */
struct pool_ctx {
    worker_t *main, *dictionary;
};

/* ---- the dictionary worker --------------------------------------------- */

static const char *const services[][2] = {
    { "ftp", "21" },
    { "ssh", "22" },
    { "smtp", "25" },
    { "dns", "53" },
    { "http", "80" },
    { "pop3", "110" },
    { "imap", "143" },
    { "https", "443" },
};

/* "LOOKUP" (data: a copied word). The values are static strings, so the
 * reply can go by reference: nothing to copy or release. */
static int on_lookup(const worker_event_t *e, void *userdata)
{
    (void)userdata;
    const char *word = worker_event_data(e);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        if (strcmp(word, services[i][0]) == 0)
            return worker_reply(e, (void *)services[i][1]);
    return worker_reply_error(e, NOT_FOUND);
}

/* ---- the pool workers -------------------------------------------------- */

/* The work a pool worker does itself: trim the line and lower-case it. */
static void normalize(char *word)
{
    size_t n = strlen(word);
    while (n > 0 && isspace((unsigned char)word[n - 1]))
        word[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        word[i] = (char)tolower((unsigned char)word[i]);
}

/* Ask the dictionary. worker_call runs this worker's loop while it waits,
 * so the worker keeps handling its mailbox; the deadline travels with the
 * request, and a dictionary too busy to see it in time never runs it. */
static void lookup(const struct pool_ctx *ctx, const char *word, char *text, size_t size)
{
    void *value = NULL;
    worker_fire_opts copy = { .copy = word, .copy_size = strlen(word) + 1 };
    int rc = worker_call_ex(ctx->dictionary, "LOOKUP", NULL, &copy, LOOKUP_DEADLINE, &value, NULL);
    if (rc == WORKER_OK)
        snprintf(text, size, "%s %s", word, (const char *)value);
    else if (rc == NOT_FOUND)
        snprintf(text, size, "%s unknown", word);
    else
        snprintf(text, size, "%s error: %s", word, worker_strerror(rc));
}

/* "LINE" (data: a copied struct job): answer it, back at the main thread. */
static int on_line(const worker_event_t *e, void *userdata)
{
    const struct pool_ctx *ctx = userdata;
    struct job job = *(const struct job *)worker_event_data(e);
    struct answer a = { .slot = job.slot, .serial = job.serial };
    normalize(job.line);
    if (job.line[0] == '\0')
        snprintf(a.text, sizeof a.text, "error: empty line");
    else
        lookup(ctx, job.line, a.text, sizeof a.text);
    worker_fire_opts copy = { .copy = &a, .copy_size = sizeof a };
    /* Refused only while the main thread is stopping: the client is gone. */
    worker_fire_ex(ctx->main, "ANSWER", NULL, &copy);
    return 0;
}

/* ---- connections (main thread only) ------------------------------------ */

/* Watch for what the connection can do next: read while its buffer has
 * room (level-triggered epoll would spin on a socket nobody reads), write
 * while an answer is pending. */
static void conn_watch(struct server *s, unsigned slot)
{
    struct conn *c = s->conns[slot];
    struct epoll_event ev = { .events = 0, .data.u64 = slot };
    if (!c->eof && c->in_len < sizeof c->in)
        ev.events |= EPOLLIN;
    if (c->out_len > 0)
        ev.events |= EPOLLOUT;
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct server *s, unsigned slot)
{
    struct conn *c = s->conns[slot];
    close(c->fd); /* also leaves the epoll set */
    free(c);
    s->conns[slot] = NULL; /* a late answer for it finds the slot empty */
}

/* The next complete line to the pool, once the last one is answered and
 * its answer sent: a client that does not read gets no more work. Closes
 * the connection when it has nothing more to say, or a line too long. */
static void conn_dispatch(struct server *s, unsigned slot)
{
    struct conn *c = s->conns[slot];
    if (c->busy || c->out_len > 0)
        return;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
        if (c->in_len == sizeof c->in || c->eof)
            conn_close(s, slot);
        return;
    }
    size_t len = (size_t)(nl - c->in);
    struct job job = { .slot = slot, .serial = c->serial };
    memcpy(job.line, c->in, len < MAX_LINE ? len : MAX_LINE - 1);
    c->in_len -= len + 1;
    memmove(c->in, nl + 1, c->in_len);
    worker_t *w = s->pool[s->next_worker++ % POOL];
    worker_fire_opts copy = { .copy = &job, .copy_size = sizeof job };
    c->busy = worker_fire_ex(w, "LINE", NULL, &copy) == WORKER_OK;
    if (!c->busy)
        conn_close(s, slot); /* the pool is stopping */
}

/* Send what is pending; the rest waits for EPOLLOUT. */
static bool conn_flush(struct conn *c)
{
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        c->out_len -= (size_t)n;
        memmove(c->out, c->out + n, c->out_len);
    }
    return true;
}

/* Read what the client sent; false when the connection is to be closed. */
static bool conn_read(struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    if (n > 0)
        c->in_len += (size_t)n;
    else if (n == 0)
        c->eof = true;
    else
        return errno == EAGAIN || errno == EINTR;
    return true;
}

static void conn_ready(struct server *s, unsigned slot, uint32_t events)
{
    struct conn *c = s->conns[slot];
    if (!c)
        return; /* closed earlier in this round of epoll_wait */
    bool ok = !(events & EPOLLERR);
    if (ok && (events & (EPOLLIN | EPOLLHUP)))
        ok = conn_read(c);
    if (ok && (events & EPOLLOUT))
        ok = conn_flush(c);
    if (!ok) {
        conn_close(s, slot);
        return;
    }
    conn_dispatch(s, slot);
    if (s->conns[slot])
        conn_watch(s, slot);
}

static void accept_one(struct server *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    unsigned slot = 0;
    while (slot < MAX_CONNS && s->conns[slot])
        slot++;
    struct conn *c = slot < MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = slot };
    if (!c || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd); /* full: the client sees the connection closed */
        free(c);
        return;
    }
    *c = (struct conn) { .fd = fd, .serial = ++s->next_serial };
    s->conns[slot] = c;
}

/* ---- the main worker's listeners (they run inside worker_update) -------- */

/* "ANSWER" from a pool worker: write it to its connection, if still there. */
static int on_answer(const worker_event_t *e, void *userdata)
{
    struct server *s = userdata;
    const struct answer *a = worker_event_data(e);
    struct conn *c = s->conns[a->slot];
    if (!c || c->serial != a->serial)
        return 0; /* that client left while its line was with the pool */
    int n = snprintf(c->out + c->out_len, sizeof c->out - c->out_len, "%s\n", a->text);
    c->out_len += (size_t)n < sizeof c->out - c->out_len ? (size_t)n : 0;
    c->busy = false;
    s->answered++;
    if (!conn_flush(c)) {
        conn_close(s, a->slot);
        return 0;
    }
    conn_dispatch(s, a->slot); /* the next line that waited for this answer */
    if (s->conns[a->slot])
        conn_watch(s, a->slot);
    return 0;
}

static void print_stats(const worker_t *w)
{
    worker_stats_t st;
    if (worker_stats(w, &st) != WORKER_OK)
        return;
    printf("stats %s: accepted=%" PRIu64 " handled=%" PRIu64 " refused=%" PRIu64 " dropped=%" PRIu64
           " queued=%zu queued_max=%zu busy=%.3fs\n",
        worker_name(w), st.accepted, st.handled, st.refused, st.dropped, st.queued, st.queued_max,
        st.busy);
}

/* "STATS" (SIGUSR1): a snapshot of every worker's mailbox. */
static int on_stats(const worker_event_t *e, void *userdata)
{
    (void)e;
    struct server *s = userdata;
    for (int i = 0; i < POOL; i++)
        print_stats(s->pool[i]);
    print_stats(s->dictionary);
    printf("stats: %lu lines answered\n", s->answered);
    return 0;
}

/* STOP_THREAD (SIGINT, SIGTERM). After this listener the library stops
 * the main worker's children (the pool). The main worker itself goes on
 * (a root worker only stops its children; worker_update() keeps returning
 * WORKER_OK), so the loop learns of the stop here. */
static int on_stop(const worker_event_t *e, void *userdata)
{
    ((struct server *)userdata)->stopping = true;
    printf("line_server: signal %d, stopping\n", (int)(intptr_t)worker_event_data(e));
    return 0;
}

/* ---- setup and the loop ------------------------------------------------- */

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("line_server: listen");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    printf("line_server: listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    return fd;
}

/* The pool workers are children of the main worker, so that its
 * STOP_THREAD (Ctrl-C) stops them. The dictionary has no parent: it is
 * stopped by hand after the pool, which may still be asking it. */
static bool start_workers(struct server *s, struct pool_ctx *ctx)
{
    s->dictionary = worker_new(NULL, NULL, &(worker_opts) { .name = "dictionary" });
    if (!s->dictionary || !worker_listen(s->dictionary, "LOOKUP", on_lookup, NULL, NULL)
        || worker_start(s->dictionary) != WORKER_OK)
        return false;
    *ctx = (struct pool_ctx) { .main = s->me, .dictionary = s->dictionary };
    for (int i = 0; i < POOL; i++) {
        char name[16];
        snprintf(name, sizeof name, "pool-%d", i);
        s->pool[i] = worker_new(NULL, NULL, &(worker_opts) { .name = name, .parent = s->me });
        if (!s->pool[i] || !worker_listen(s->pool[i], "LINE", on_line, ctx, NULL)
            || worker_start(s->pool[i]) != WORKER_OK)
            return false;
    }
    return true;
}

static bool watch(int ep, int fd, uint64_t key)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

/* worker_next_timeout() as epoll_wait's milliseconds, rounded up so that
 * the loop does not wake just before a timer is due. */
static int poll_timeout_ms(void)
{
    double next = worker_next_timeout();
    if (next < 0)
        return -1;
    if (next > 3600.0)
        return 3600 * 1000;
    int ms = (int)(next * 1000.0);
    return ms + ((double)ms < next * 1000.0);
}

/* Until Ctrl-C: sockets first, then the worker when its fd says so (or a
 * timer is due). Returns 0 on an orderly stop. */
static int run(struct server *s)
{
    for (;;) {
        struct epoll_event ready[64];
        int n = epoll_wait(s->ep, ready, 64, poll_timeout_ms());
        if (n < 0 && errno != EINTR) {
            perror("line_server: epoll_wait");
            return 1;
        }
        bool update = n == 0; /* the timeout: a timer is due */
        for (int i = 0; i < n; i++) {
            uint64_t key = ready[i].data.u64;
            if (key == KEY_WORKER_FD)
                update = true;
            else if (key == KEY_LISTEN)
                accept_one(s);
            else
                conn_ready(s, (unsigned)key, ready[i].events);
        }
        if (update && (worker_update() == WORKER_EXIT || s->stopping))
            return 0;
    }
}

/* In order: the pool (already told to stop by the main worker's
 * STOP_THREAD) ends, then the dictionary it was asking, then the sockets. */
static void shut_down(struct server *s)
{
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (int i = 0; i < POOL; i++) {
        if (!s->pool[i])
            continue;
        worker_stop(s->pool[i]); /* needed only when the start failed half-way */
        worker_join(s->pool[i]);
        printf("line_server: %s ended\n", worker_name(s->pool[i]));
        worker_unref(s->pool[i]);
    }
    if (s->dictionary) {
        worker_stop(s->dictionary);
        worker_join(s->dictionary);
        printf("line_server: dictionary ended\n");
        worker_unref(s->dictionary);
    }
    for (unsigned slot = 0; slot < MAX_CONNS; slot++)
        if (s->conns[slot])
            conn_close(s, slot);
    close(s->ep);
}

int main(int argc, char **argv)
{
    /* First, before any thread starts: the signals are blocked in every
     * thread and read by the library's signal thread. */
    if (worker_signal(SIGINT, NULL, WORKER_EV_STOP_THREAD) != WORKER_OK
        || worker_signal(SIGTERM, NULL, WORKER_EV_STOP_THREAD) != WORKER_OK
        || worker_signal(SIGUSR1, NULL, "STATS") != WORKER_OK) {
        fprintf(stderr, "line_server: worker_signal failed\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* whoever reads our stdout sees each line at once */
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct server s = { .me = worker_current(), .listen_fd = -1 };
    struct pool_ctx ctx;
    int wfd = worker_fd();
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (wfd < 0 || s.ep < 0 || !watch(s.ep, wfd, KEY_WORKER_FD)) {
        fprintf(stderr, "line_server: worker_fd: %s\n", worker_strerror(wfd));
        return 1;
    }
    worker_listen(s.me, "ANSWER", on_answer, &s, NULL);
    worker_listen(s.me, "STATS", on_stats, &s, NULL);
    worker_listen(s.me, WORKER_EV_STOP_THREAD, on_stop, &s, NULL);
    int rc = 1;
    if (start_workers(&s, &ctx) && (s.listen_fd = listen_on(port)) >= 0
        && watch(s.ep, s.listen_fd, KEY_LISTEN))
        rc = run(&s);
    else
        worker_exit(); /* the pool's STOP_THREAD, as Ctrl-C would send */
    shut_down(&s);
    printf("line_server: bye, %lu lines answered\n", s.answered);
    return rc;
}
