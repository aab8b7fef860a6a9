/* Test helpers of the NATS tests: a nats-server of our own on 127.0.0.1
 * with a free port (also in a cluster of several), peer processes, and
 * waiting for a proxy to be known. Header only: each test program and the
 * peer include it once. NATS_SERVER_PATH is the nats-server binary. */
#ifndef TN_SERVER_H
#define TN_SERVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct tn_server {
    pid_t pid;
    int port;
    int cluster_port; /* 0: not in a cluster */
    const char *auth; /* NULL, or "--auth" token / "user:password" (with --user/--pass) */
    const char *const *args; /* NULL, or more nats-server arguments, NULL-terminated (TLS) */
    char url[64];
} tn_server;

static inline double tn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A port nobody listens on now (the kernel's choice for port 0). */
static inline int tn_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0
        || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline bool tn_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Start nats-server on s->port (0: a free one), optionally in a cluster
 * (cluster_port set, `routes` a comma-separated list of route URLs or
 * NULL); true once it accepts connections (up to 5 s). */
static inline bool tn_server_start(tn_server *s, const char *routes)
{
    if (s->port == 0)
        s->port = tn_free_port();
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    char port[16], cport[64];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(cport, sizeof cport, "nats://127.0.0.1:%d", s->cluster_port);
    const char *argv[32] = { NATS_SERVER_PATH, "-a", "127.0.0.1", "-p", port };
    int argc = 5;
    if (s->cluster_port) {
        argv[argc++] = "--cluster_name";
        argv[argc++] = "wktest";
        argv[argc++] = "-cluster";
        argv[argc++] = cport;
        if (routes) {
            argv[argc++] = "-routes";
            argv[argc++] = routes;
        }
    }
    char user[64] = "", *pass = NULL;
    if (s->auth && strchr(s->auth, ':')) {
        snprintf(user, sizeof user, "%s", s->auth);
        pass = strchr(user, ':');
        *pass++ = '\0';
        argv[argc++] = "--user";
        argv[argc++] = user;
        argv[argc++] = "--pass";
        argv[argc++] = pass;
    } else if (s->auth) {
        argv[argc++] = "--auth";
        argv[argc++] = s->auth;
    }
    for (int i = 0; s->args && s->args[i] && argc < 31; i++)
        argv[argc++] = s->args[i];
    argv[argc] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    double end = tn_now() + 5;
    while (tn_now() < end) {
        if (tn_port_open(s->port))
            return true;
        usleep(10000); /* polling a port: there is no event to wait for */
    }
    return false;
}

static inline void tn_server_kill(tn_server *s, int sig)
{
    if (s->pid > 0) {
        kill(s->pid, sig);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* fork/exec a program; its stdin is a pipe whose write end is returned in
 * *in_fd (closing it tells a peer to end). */
static inline pid_t tn_spawn(const char *const argv[], int *in_fd)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[0]);
    *in_fd = fds[1];
    return pid;
}

/* End a peer: close its stdin, then wait (SIGKILL after 5 s). Its exit
 * status, or -1. */
static inline int tn_peer_end(pid_t pid, int in_fd)
{
    close(in_fd);
    double end = tn_now() + 5;
    int status = 0;
    while (tn_now() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

#endif
