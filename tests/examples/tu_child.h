/* Running an example as a child process and reading what it prints
 * (header-only; include tests/test_util.h first).
 *
 * No sleeps: a test waits for the child's lines (poll on its stdout, with a
 * deadline) and for its exit (the end of its stdout, then waitpid). Every
 * wait has a deadline, so a child that hangs fails the test instead of
 * hanging it; the test's Criterion .timeout is the last resort. */
#ifndef WORKER_TU_CHILD_H
#define WORKER_TU_CHILD_H

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The longest a test waits for a line or an exit that must come. */
#define TU_CHILD_WAIT 30.0

typedef struct tu_child {
    pid_t pid;
    int out; /* read end of the child's stdout */
    char buf[16384];
    size_t len;
    bool eof;
} tu_child;

/* Start argv[0] with argv, its stdout a pipe to `c->out`; `env` (may be
 * NULL) is one extra "NAME=value" for the child. False when it cannot. The
 * environment is built before fork(): the child of a threaded process may
 * only call async-signal-safe functions before exec. */
static inline bool tu_child_start(tu_child *c, char *const argv[], const char *env)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    int fds[2];
    *c = (tu_child) { .pid = -1, .out = -1 };
    if (!envp || pipe2(fds, O_CLOEXEC) != 0) {
        free(envp);
        return false;
    }
    memcpy(envp, environ, n * sizeof *envp);
    envp[n] = (char *)env;
    c->pid = fork();
    if (c->pid == 0) {
        dup2(fds[1], STDOUT_FILENO); /* the copy does not inherit FD_CLOEXEC */
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    close(fds[1]);
    c->out = fds[0];
    return c->pid > 0;
}

/* Read more of the child's stdout, waiting up to `timeout` seconds. */
static inline bool tu_child_fill(tu_child *c, double timeout)
{
    struct pollfd p = { .fd = c->out, .events = POLLIN };
    if (c->eof || c->len == sizeof c->buf || poll(&p, 1, (int)(timeout * 1000.0)) <= 0)
        return false;
    ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - c->len);
    if (n <= 0)
        c->eof = true;
    else
        c->len += (size_t)n;
    return n > 0;
}

/* The child's next line (without its '\n') in `line`: true, or false at
 * the end of its output or after TU_CHILD_WAIT seconds without one. */
static inline bool tu_child_line(tu_child *c, char *line, size_t size)
{
    double deadline = tu_now() + TU_CHILD_WAIT;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            snprintf(line, size, "%.*s", (int)n, c->buf);
            c->len -= n + 1;
            memmove(c->buf, nl + 1, c->len);
            return true;
        }
        double left = deadline - tu_now();
        if (left <= 0 || !tu_child_fill(c, left))
            return false;
    }
}

/* Wait for the child's exit: its wait status, or -1 when its output did
 * not end within TU_CHILD_WAIT seconds (it is then killed). Lines not yet
 * read are kept out of the way: read them first. */
static inline int tu_child_wait(tu_child *c)
{
    double deadline = tu_now() + TU_CHILD_WAIT;
    while (!c->eof && tu_now() < deadline) {
        if (c->len == sizeof c->buf)
            c->len = 0; /* nobody reads these any more */
        tu_child_fill(c, deadline - tu_now());
    }
    if (!c->eof)
        kill(c->pid, SIGKILL);
    int status = -1;
    waitpid(c->pid, &status, 0);
    close(c->out);
    return c->eof ? status : -1;
}

#endif
