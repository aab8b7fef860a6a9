/* The two-process NATS example (examples/nats_front.c, nats_workers.c)
 * run as its users would: a nats-server, the worker node, then the front
 * end, whose exit status says whether every answer was right. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tn_server.h"

Test(nats_example, front_and_workers, .timeout = 60)
{
    tn_server srv = { 0 };
    cr_assert(tn_server_start(&srv, NULL));
    int workers_in = -1, front_in = -1;
    const char *wargv[] = { EXAMPLE_WORKERS, srv.url, NULL };
    pid_t workers = tn_spawn(wargv, &workers_in);
    const char *fargv[] = { EXAMPLE_FRONT, srv.url, "30", NULL };
    pid_t front = tn_spawn(fargv, &front_in);
    int status = 0;
    cr_assert_eq(waitpid(front, &status, 0), front);
    close(front_in);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nats_front failed");
    kill(workers, SIGTERM);
    cr_assert_eq(waitpid(workers, &status, 0), workers);
    close(workers_in);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nats_workers did not end cleanly");
    tn_server_kill(&srv, SIGTERM);
}

/* Run the front end (and the worker node) with tracing on (WORKER_TRACE
 * in its environment only); true when it exited 0. */
static bool run_traced(const char *url, const char *front_trace, const char *workers_trace)
{
    int workers_in = -1, front_in = -1;
    setenv("WORKER_TRACE", workers_trace, 1);
    const char *wargv[] = { EXAMPLE_WORKERS, url, NULL };
    pid_t workers = tn_spawn(wargv, &workers_in);
    setenv("WORKER_TRACE", front_trace, 1);
    const char *fargv[] = { EXAMPLE_FRONT, url, "10", NULL };
    pid_t front = tn_spawn(fargv, &front_in);
    unsetenv("WORKER_TRACE");
    int fstatus = 0, wstatus = 0;
    bool ok = waitpid(front, &fstatus, 0) == front;
    close(front_in);
    kill(workers, SIGTERM);
    ok = waitpid(workers, &wstatus, 0) == workers && ok;
    close(workers_in);
    return ok && WIFEXITED(fstatus) && WEXITSTATUS(fstatus) == 0 && WIFEXITED(wstatus)
        && WEXITSTATUS(wstatus) == 0;
}

/* Each node writes its own trace; worker-trace merges the two and pairs
 * the messages that crossed (the id on the wire): the front end's calls
 * (sent on the caller's thread: proxies forward there) reach the squaring
 * workers of the other process, whose answers (published on the
 * answering worker's thread) reach the front end's caller. */

/* "process N: ... workers #A..#B": the range of process N's workers. */
static bool process_range(const char *line, int *first, int *last)
{
    const char *w = strstr(line, "workers #");
    return strncmp(line, "process ", 8) == 0 && w && sscanf(w, "workers #%d..#%d", first, last) == 2;
}

/* A pair line "  N  sender (#S) -> receiver (#R)": S and R. */
static bool pair_line(const char *line, int *sender, int *receiver)
{
    const char *arrow = strstr(line, ") -> ");
    if (!arrow)
        return false;
    const char *open = arrow;
    while (open > line && *open != '#')
        open--;
    const char *to = strrchr(arrow, '#');
    return *open == '#' && to && sscanf(open, "#%d", sender) == 1 && sscanf(to, "#%d", receiver) == 1;
}

static bool in(int id, int first, int last)
{
    return id >= first && id <= last;
}

Test(nats_example, each_node_traces_and_the_traces_merge, .timeout = 60)
{
    tn_server srv = { 0 };
    cr_assert(tn_server_start(&srv, NULL));
    char dir[] = "/tmp/nats-trace-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char front[64], workers[64];
    snprintf(front, sizeof front, "%s/front.wktrace", dir);
    snprintf(workers, sizeof workers, "%s/workers.wktrace", dir);
    cr_assert(run_traced(srv.url, front, workers), "the traced example failed");
    tn_server_kill(&srv, SIGTERM);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s stats --top 1000 %s %s", WORKER_TRACE_TOOL, front, workers);
    FILE *out = popen(cmd, "r");
    cr_assert_not_null(out);
    char line[512];
    bool two_processes = false, calls_across = false, answers_across = false;
    int front_first = 0, front_last = -1, workers_first = 0, workers_last = -1;
    while (fgets(line, sizeof line, out)) {
        two_processes |= strncmp(line, "process 1: nats_workers", 23) == 0;
        if (strncmp(line, "process 0:", 10) == 0)
            process_range(line, &front_first, &front_last);
        if (strncmp(line, "process 1:", 10) == 0)
            process_range(line, &workers_first, &workers_last);
        int from, to;
        if (!pair_line(line, &from, &to))
            continue;
        calls_across |= in(from, front_first, front_last) && in(to, workers_first, workers_last);
        answers_across |= in(from, workers_first, workers_last) && in(to, front_first, front_last);
    }
    cr_assert_eq(pclose(out), 0, "%s failed", cmd);
    cr_assert(two_processes, "the two traces were not merged");
    cr_assert(calls_across, "no call arrow from the front end to the worker node");
    cr_assert(answers_across, "no answer arrow back to the front end");
    unlink(front);
    unlink(workers);
    rmdir(dir);
}
