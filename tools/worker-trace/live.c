/* worker-trace view --live: the page served from 127.0.0.1 while the trace
 * grows.
 *
 *   GET /        the page (view.html) with the trace as it is now, and
 *                "live":{"bytes":N,"poll":MS} in its data
 *   GET /data    that data object alone (JSON), for scripts and tests
 *   GET /status  {"bytes":N,"complete":B}: the file's size, cheap (a stat)
 *
 * The page polls /status and reloads itself when the size changed, keeping
 * its view range (docs/tracing.md, "Watching a running service"). Every
 * request re-reads the file with --partial semantics: a trace whose writer
 * still runs may end in a half-written chunk and has no TRACE_END.
 *
 * The socket is bound to 127.0.0.1 only (there is no option for another
 * address), and a request whose Host header names another host is refused
 * (a web page elsewhere cannot reach it through DNS rebinding). One request
 * at a time, HTTP/1.0, the connection closed after each answer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "wt.h"

#define POLL_MS 2000 /* how often the page asks /status */
#define MAX_REQUEST 8192

static volatile sig_atomic_t live_quit;

static void on_signal(int sig)
{
    (void)sig;
    live_quit = 1;
}

typedef struct live {
    const char *path, *title;
    int port;
} live;

/* Writes all of buf; false when the client went away. */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static void respond(int fd, int code, const char *type, const char *body, size_t len)
{
    const char *reason = code == 200 ? "OK"
        : code == 404                ? "Not Found"
        : code == 405                ? "Method Not Allowed"
        : code == 403                ? "Forbidden"
        : code == 400                ? "Bad Request"
                                     : "Service Unavailable";
    char head[512];
    int n = snprintf(head, sizeof head,
        "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        code, reason, type, len);
    if (send_all(fd, head, (size_t)n))
        send_all(fd, body, len);
}

static void respond_text(int fd, int code, const char *text)
{
    respond(fd, code, "text/plain; charset=utf-8", text, strlen(text));
}

/* The size of the trace file, or -1. */
static long long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The page (`page`) or its data object, of the trace as it is now. */
static void serve_trace(int fd, const live *lv, bool page)
{
    long long bytes = file_bytes(lv->path);
    wt_trace t;
    char err[512], msg[600];
    if (wt_load(lv->path, true, &t, err, sizeof err) < 0) {
        snprintf(msg, sizeof msg, "worker-trace: %s: %s\n", lv->path, err);
        respond_text(fd, 503, msg);
        return;
    }
    wt_model m;
    wt_model_build(&t, &m);
    char extra[128];
    snprintf(extra, sizeof extra, ",\"live\":{\"bytes\":%lld,\"poll\":%d}", bytes, POLL_MS);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = -1;
    if (f) {
        rc = page ? wt_view_page(&m, f, lv->title, extra) : wt_view_data(&m, f, lv->title, extra);
        rc = fclose(f) != 0 ? -1 : rc;
    }
    if (rc == 0)
        respond(fd, 200, page ? "text/html; charset=utf-8" : "application/json", buf, len);
    else
        respond_text(fd, 503, "worker-trace: out of memory\n");
    free(buf);
    wt_model_free(&m);
    wt_trace_free(&t);
}

static void serve_status(int fd, const live *lv)
{
    char body[128];
    long long bytes = file_bytes(lv->path);
    /* complete: the file ends with the TRACE_END chunk (one 32-byte slot) */
    bool complete = false;
    FILE *f = bytes >= 64 + 64 ? fopen(lv->path, "rb") : NULL;
    if (f) {
        wk_trace_record r;
        complete = fseek(f, -(long)sizeof r, SEEK_END) == 0 && fread(&r, sizeof r, 1, f) == 1
            && r.kind == WK_TR_TRACE_END;
        fclose(f);
    }
    snprintf(body, sizeof body, "{\"bytes\":%lld,\"complete\":%s}\n", bytes,
        complete ? "true" : "false");
    respond(fd, 200, "application/json", body, strlen(body));
}

/* The Host header, when there is one, names this server: 127.0.0.1,
 * localhost or [::1], with or without our port. */
static bool host_ok(const char *req, int port)
{
    const char *h = strcasestr(req, "\r\nHost:");
    if (!h)
        return true; /* HTTP/1.0 without Host */
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strcspn(h, "\r\n \t");
    static const char *const names[] = { "127.0.0.1", "localhost", "[::1]" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char with_port[64];
        snprintf(with_port, sizeof with_port, "%s:%d", names[i], port);
        if ((n == strlen(names[i]) && strncmp(h, names[i], n) == 0)
            || (n == strlen(with_port) && strncmp(h, with_port, n) == 0))
            return true;
    }
    return false;
}

/* Reads the request head (up to the blank line) into req. */
static bool read_request(int fd, char *req, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, req + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR && !live_quit)
            continue;
        if (n <= 0)
            return false;
        len += (size_t)n;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            return true;
    }
    return false;
}

static void handle(int fd, const live *lv)
{
    char req[MAX_REQUEST], path[256];
    if (!read_request(fd, req, sizeof req))
        return;
    if (sscanf(req, "GET %255s HTTP/", path) != 1) {
        respond_text(fd, strncmp(req, "GET ", 4) == 0 ? 400 : 405, "only GET\n");
        return;
    }
    if (!host_ok(req, lv->port)) {
        respond_text(fd, 403, "this server answers to 127.0.0.1 only\n");
        return;
    }
    path[strcspn(path, "?#")] = 0;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        serve_trace(fd, lv, true);
    else if (strcmp(path, "/data") == 0)
        serve_trace(fd, lv, false);
    else if (strcmp(path, "/status") == 0)
        serve_status(fd, lv);
    else
        respond_text(fd, 404, "not found: the page is at /\n");
}

/* A socket listening on 127.0.0.1:*port (0: any free port, *port set). */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)*port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0
        || getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: accept() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int wt_live_serve(const char *path, const char *title, int port)
{
    live lv = { .path = path, .title = title, .port = port };
    int sfd = listen_loopback(&lv.port);
    if (sfd < 0) {
        fprintf(stderr, "worker-trace: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return WT_EXIT_USAGE;
    }
    catch_signals();
    fprintf(
        stderr, "worker-trace: serving %s at http://127.0.0.1:%d/ (Ctrl-C stops)\n", path, lv.port);
    fflush(stderr);
    while (!live_quit) {
        int fd = accept4(sfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue; /* EINTR (a signal: live_quit), or a connection gone */
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        handle(fd, &lv);
        close(fd);
    }
    close(sfd);
    fprintf(stderr, "worker-trace: stopped serving\n");
    return WT_EXIT_OK;
}
