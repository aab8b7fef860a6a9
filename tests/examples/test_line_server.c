/* examples/line_server.c from outside, as its users see it: a child
 * process, TCP clients on plain threads, signals.
 *
 * The server prints its port; clients connect concurrently, send lines
 * (some all at once, some one at a time) and check every answer and its
 * order; SIGUSR1 must print a stats line per worker; SIGINT or SIGTERM
 * must end it in order (the pool, then the dictionary) with exit status 0.
 * Nothing sleeps: the test waits for printed lines, answers and the exit,
 * each with a deadline. */
#include "test_util.h"

#include "tu_child.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef EXAMPLE_PATH
#error "EXAMPLE_PATH: the line_server executable (tests/examples/CMakeLists.txt)"
#endif

#define POOL 4 /* examples/line_server.c */
#define CLIENTS 8
#define LINES 300

/* A line sent and the answer it must get. */
static const char *const sent[][2] = {
    { "ssh", "ssh 22" },
    { "HTTP", "http 80" },
    { "imap  ", "imap 143" },
    { "gopher", "gopher unknown" },
    { "https\r", "https 443" },
    { "", "error: empty line" },
    { "Dns", "dns 53" },
    { "finger", "finger unknown" },
    { "smtp", "smtp 25" },
    { "pop3", "pop3 110" },
    { "ftp", "ftp 21" },
};
#define SENT_KINDS (sizeof sent / sizeof sent[0])

struct client {
    pthread_t thread;
    int port;
    int id;
    bool lockstep; /* one line at a time; else every line at once */
    int right; /* answers as expected */
    char wrong[512]; /* the first one that was not, or the error */
};

/* ---- a client ------------------------------------------------------------ */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval patience = { .tv_sec = (time_t)TU_CHILD_WAIT }; /* a lost answer fails */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience) != 0
        || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* A socket's lines, buffered. */
struct reader {
    int fd;
    size_t len;
    char buf[4096];
};

/* The next line (without '\n'): 1; 0 at the end; -1 on an error or after
 * TU_CHILD_WAIT seconds (SO_RCVTIMEO). */
static int read_line(struct reader *r, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t n = (size_t)(nl - r->buf);
            snprintf(line, size, "%.*s", (int)n, r->buf);
            r->len -= n + 1;
            memmove(r->buf, nl + 1, r->len);
            return 1;
        }
        if (r->len == sizeof r->buf)
            return -1;
        ssize_t k = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (k <= 0)
            return k == 0 ? 0 : -1;
        r->len += (size_t)k;
    }
}

/* Line i of client `id`: each client its own mix. */
static size_t kind_of(int id, int i)
{
    return ((size_t)id * 7 + (size_t)i * 3) % SENT_KINDS;
}

static bool check_answer(struct client *c, struct reader *r, int i)
{
    char line[256];
    int got = read_line(r, line, sizeof line);
    const char *want = sent[kind_of(c->id, i)][1];
    if (got == 1 && strcmp(line, want) == 0) {
        c->right++;
        return true;
    }
    snprintf(c->wrong, sizeof c->wrong, "client %d line %d: got %s'%s', want '%s'", c->id, i,
        got == 1       ? ""
            : got == 0 ? "the end "
                       : "an error ",
        got == 1 ? line : "", want);
    return false;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct reader r = { .fd = connect_to(c->port) };
    if (r.fd < 0) {
        snprintf(c->wrong, sizeof c->wrong, "client %d: connect: %s", c->id, strerror(errno));
        return NULL;
    }
    char all[LINES * 16];
    size_t len = 0;
    for (int i = 0; i < LINES; i++) {
        char one[16];
        int n = snprintf(one, sizeof one, "%s\n", sent[kind_of(c->id, i)][0]);
        if (c->lockstep && (!send_all(r.fd, one, (size_t)n) || !check_answer(c, &r, i)))
            break;
        memcpy(all + len, one, (size_t)n);
        len += (size_t)n;
    }
    /* Every line at once: the server takes them as its buffer allows. */
    if (!c->lockstep && send_all(r.fd, all, len))
        for (int i = 0; i < LINES && check_answer(c, &r, i); i++) { }
    close(r.fd);
    return NULL;
}

/* ---- the server ---------------------------------------------------------- */

static int start_server(tu_child *srv)
{
    char path[] = EXAMPLE_PATH, zero[] = "0";
    char *argv[] = { path, zero, NULL };
    cr_assert(tu_child_start(srv, argv, NULL), "cannot start %s", path);
    char line[256];
    unsigned port = 0;
    cr_assert(tu_child_line(srv, line, sizeof line), "line_server printed no port");
    cr_assert_eq(sscanf(line, "line_server: listening on 127.0.0.1:%u", &port), 1, "'%s'", line);
    cr_assert(port > 0 && port < 65536);
    return (int)port;
}

static void run_clients(struct client *clients, int n, int port)
{
    for (int i = 0; i < n; i++) {
        clients[i] = (struct client) { .port = port, .id = i, .lockstep = i % 2 == 1 };
        cr_assert_eq(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(clients[i].thread, NULL);
    for (int i = 0; i < n; i++)
        cr_expect_eq(clients[i].right, LINES, "%s", clients[i].wrong);
}

/* After SIGUSR1: one stats line per worker, then the count of answers. */
static void expect_stats(tu_child *srv, unsigned long answered)
{
    const char *names[POOL + 1] = { "pool-0", "pool-1", "pool-2", "pool-3", "dictionary" };
    bool seen[POOL + 1] = { false };
    char line[512];
    cr_assert_eq(kill(srv->pid, SIGUSR1), 0);
    while (tu_child_line(srv, line, sizeof line) && strncmp(line, "stats: ", 7) != 0)
        for (int i = 0; i < POOL + 1; i++) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "stats %s: accepted=", names[i]);
            seen[i] = seen[i] || strncmp(line, prefix, strlen(prefix)) == 0;
        }
    for (int i = 0; i < POOL + 1; i++)
        cr_expect(seen[i], "no stats line for %s", names[i]);
    unsigned long count = 0;
    cr_assert_eq(sscanf(line, "stats: %lu lines answered", &count), 1, "'%s'", line);
    cr_expect_eq(count, answered);
}

/* After `signo`: the stop, the pool, the dictionary, the goodbye; exit 0. */
static void expect_orderly_end(tu_child *srv, int signo)
{
    char want[POOL + 3][64];
    snprintf(want[0], sizeof want[0], "line_server: signal %d, stopping", signo);
    for (int i = 0; i < POOL; i++)
        snprintf(want[1 + i], sizeof want[1 + i], "line_server: pool-%d ended", i);
    snprintf(want[POOL + 1], sizeof want[POOL + 1], "line_server: dictionary ended");
    snprintf(want[POOL + 2], sizeof want[POOL + 2], "line_server: bye, ");
    cr_assert_eq(kill(srv->pid, signo), 0);
    char line[256];
    for (int i = 0; i < POOL + 3; i++) {
        cr_assert(
            tu_child_line(srv, line, sizeof line), "no line after '%s'", i ? want[i - 1] : "");
        cr_assert_eq(strncmp(line, want[i], strlen(want[i])), 0, "'%s', want '%s'", line, want[i]);
    }
    int status = tu_child_wait(srv);
    cr_assert(WIFEXITED(status), "line_server did not exit (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
}

/* ---- tests --------------------------------------------------------------- */

Test(line_server, concurrent_clients_then_stats_then_ctrl_c, .timeout = 120)
{
    tu_child srv;
    int port = start_server(&srv);
    struct client clients[CLIENTS];
    run_clients(clients, CLIENTS, port);
    expect_stats(&srv, (unsigned long)CLIENTS * LINES);
    expect_stats(&srv, (unsigned long)CLIENTS * LINES); /* again: each SIGUSR1 counts */
    expect_orderly_end(&srv, SIGINT);
}

/* A client that leaves with lines in the pool (their answers find it gone)
 * and one whose line is too long (closed) do not disturb the others. */
Test(line_server, clients_that_leave_early_then_sigterm, .timeout = 120)
{
    tu_child srv;
    int port = start_server(&srv);
    int early = connect_to(port);
    cr_assert_geq(early, 0);
    static char lines[LINES * 5];
    for (int i = 0; i < LINES; i++)
        memcpy(lines + 5 * i, "ssh\n\n", 5);
    cr_assert(send_all(early, lines, sizeof lines));
    close(early);

    int rude = connect_to(port);
    cr_assert_geq(rude, 0);
    static char endless[4096];
    memset(endless, 'x', sizeof endless);
    send_all(rude, endless, sizeof endless); /* no '\n'; may fail once the server closed */
    char c;
    ssize_t n = recv(rude, &c, 1, 0);
    cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "recv %zd, %s", n, strerror(errno));
    close(rude);

    struct client clients[2];
    run_clients(clients, 2, port);
    expect_orderly_end(&srv, SIGTERM);
}
