/* The parent and its peer process: fork, two pipes, reads with a timeout. */
#define _GNU_SOURCE
#include "bench_link.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long the parent waits for its peer: to be ready, then for its report. */
#define READY_TIMEOUT_S 30.0
#define REPORT_TIMEOUT_S 300.0

int bench_link_fork(bench_link *l, int (*peer)(bench_link *l, void *arg), void *arg)
{
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(up, O_CLOEXEC) != 0) {
        close(down[0]);
        close(down[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        bench_link mine = { .to_peer = up[1], .from_peer = down[0], .pid = 0 };
        _exit(peer(&mine, arg) == 0 ? 0 : 1);
    }
    close(down[0]);
    close(up[1]);
    *l = (bench_link) { .to_peer = down[1], .from_peer = up[0], .pid = pid };
    if (pid < 0) {
        close(down[1]);
        close(up[0]);
        return -1;
    }
    return 0;
}

int bench_link_send(const bench_link *l, const void *p, size_t n)
{
    const char *at = p;
    while (n) {
        ssize_t w = write(l->to_peer, at, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        at += w;
        n -= (size_t)w;
    }
    return 0;
}

int bench_link_recv(const bench_link *l, void *p, size_t n, double timeout_s)
{
    char *at = p;
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    while (n) {
        uint64_t now = bench_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pf = { .fd = l->from_peer, .events = POLLIN };
        int ready = poll(&pf, 1, (int)((deadline - now) / 1000000u) + 1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return -1;
        ssize_t got = read(l->from_peer, at, n);
        if (got <= 0)
            return -1;
        at += got;
        n -= (size_t)got;
    }
    return 0;
}

int bench_link_wait(bench_link *l)
{
    close(l->to_peer);
    close(l->from_peer);
    int status = 0;
    while (waitpid(l->pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *bench_nats_url(void)
{
    const char *url = getenv("WORKER_BENCH_NATS_URL");
    return url && *url ? url : "nats://127.0.0.1:4222";
}

int bench_far_receive(
    bench_link *l, bool ready, long n, int (*next)(void *ctx, bench_msg *m), void *ctx)
{
    char byte = ready ? 1 : 0;
    if (bench_link_send(l, &byte, 1) != 0 || !ready)
        return 1;
    bench_checker c;
    bench_checker_init(&c, 1);
    bench_far_report rep = { 0 };
    bench_msg m;
    while ((long)c.received < n && (rep.status = next(ctx, &m)) == 0)
        bench_checker_take(&c, &m);
    rep.t_last_ns = bench_now_ns();
    rep.received = c.received;
    rep.errors = c.errors;
    int sent = bench_link_send(l, &rep, sizeof rep);
    return sent == 0 && rep.status == 0 && !c.errors ? 0 : 1;
}

bool bench_far_ready(const bench_link *l)
{
    char byte = 0;
    return bench_link_recv(l, &byte, 1, READY_TIMEOUT_S) == 0 && byte == 1;
}

void bench_far_verdict(const bench_link *l, long n, uint64_t t0_ns, bench_result *r)
{
    bench_far_report rep;
    if (bench_link_recv(l, &rep, sizeof rep, REPORT_TIMEOUT_S) != 0) {
        bench_fail(r, "no report from the receiving process");
        return;
    }
    if (rep.errors)
        bench_fail(r, "%llu messages out of order or torn", (unsigned long long)rep.errors);
    else if ((long)rep.received != n)
        bench_fail(r, "received %llu of %ld (lost; peer status %lld)",
            (unsigned long long)rep.received, n, (long long)rep.status);
    bench_rate_result(r, (long)rep.received, n, t0_ns, rep.t_last_ns);
}
