/* examples/ctrl_c.c from outside: a child process that gets a real SIGINT
 * (or SIGTERM) once its readings flow, as Ctrl-C in a terminal would send.
 *
 * It must end in order (the producer, then each subscriber with every
 * reading published, then main's verdict) with exit status 0; traced
 * (WORKER_TRACE), it must leave a complete trace that worker-trace reads
 * without --partial. The test waits for printed lines and the exit, each
 * with a deadline; it never sleeps. */
#include "test_util.h"

#include "tu_child.h"

#include <criterion/criterion.h>

#ifndef EXAMPLE_PATH
#error "EXAMPLE_PATH: the ctrl_c executable (tests/examples/CMakeLists.txt)"
#endif

#define SUBSCRIBERS 3 /* examples/ctrl_c.c */

static void start_ctrl_c(tu_child *c, const char *env)
{
    char path[] = EXAMPLE_PATH;
    char *argv[] = { path, NULL };
    cr_assert(tu_child_start(c, argv, env), "cannot start %s", path);
    char line[256];
    cr_assert(tu_child_line(c, line, sizeof line), "ctrl_c printed nothing");
    cr_assert_str_eq(line, "ctrl_c: readings flow to 3 subscribers; press Ctrl-C to stop");
}

static void next_line(tu_child *c, char *line, size_t size, const char *what)
{
    cr_assert(tu_child_line(c, line, size), "ctrl_c ended its output before %s", what);
}

/* After `signo`: the stop, the producer, every subscriber with all the
 * readings, the verdict; exit status 0. */
static void expect_orderly_end(tu_child *c, int signo)
{
    char line[256], want[256];
    cr_assert_eq(kill(c->pid, signo), 0);
    next_line(c, line, sizeof line, "the stop");
    snprintf(want, sizeof want, "ctrl_c: signal %d, stopping", signo);
    cr_assert_str_eq(line, want);
    next_line(c, line, sizeof line, "the producer's end");
    long published = -1;
    cr_assert_eq(sscanf(line, "producer: stopped after %ld readings", &published), 1, "'%s'", line);
    cr_assert_geq(published, 100);
    bool seen[SUBSCRIBERS] = { false };
    for (int i = 0; i < SUBSCRIBERS; i++) {
        next_line(c, line, sizeof line, "every subscriber's end");
        int id = 0;
        long got = -1;
        cr_assert_eq(sscanf(line, "subscriber-%d: %ld readings", &id, &got), 2, "'%s'", line);
        cr_assert(id >= 1 && id <= SUBSCRIBERS && !seen[id - 1], "'%s'", line);
        seen[id - 1] = true;
        cr_expect_eq(got, published, "subscriber-%d lost readings", id);
    }
    next_line(c, line, sizeof line, "the verdict");
    snprintf(
        want, sizeof want, "ctrl_c: every subscriber got all %ld readings, in order", published);
    cr_assert_str_eq(line, want);
    int status = tu_child_wait(c);
    cr_assert(WIFEXITED(status), "ctrl_c did not exit (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
}

Test(ctrl_c, sigint_ends_the_pipeline_in_order, .timeout = 120)
{
    tu_child c;
    start_ctrl_c(&c, NULL);
    expect_orderly_end(&c, SIGINT);
}

Test(ctrl_c, sigterm_ends_the_pipeline_in_order, .timeout = 120)
{
    tu_child c;
    start_ctrl_c(&c, NULL);
    expect_orderly_end(&c, SIGTERM);
}

#ifdef WORKER_TRACE_TOOL
/* Run worker-trace `command` on `path`; its exit status, and whether its
 * output has a line holding each of `needles` (NULL-terminated). */
static int trace_tool(
    const char *command, const char *path, const char *const *needles, bool *found)
{
    char tool[] = WORKER_TRACE_TOOL, cmd[16], file[64];
    snprintf(cmd, sizeof cmd, "%s", command);
    snprintf(file, sizeof file, "%s", path);
    char *argv[] = { tool, cmd, file, NULL };
    tu_child t;
    cr_assert(tu_child_start(&t, argv, NULL));
    char line[512];
    while (tu_child_line(&t, line, sizeof line))
        for (int i = 0; needles && needles[i]; i++)
            found[i] = found[i] || strstr(line, needles[i]) != NULL;
    return tu_child_wait(&t);
}

Test(ctrl_c, a_traced_run_leaves_a_complete_trace, .timeout = 120)
{
    char path[] = "/tmp/wk_ctrl_c_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char env[64];
    snprintf(env, sizeof env, "WORKER_TRACE=%s", path);
    tu_child c;
    start_ctrl_c(&c, env);
    expect_orderly_end(&c, SIGINT);

    /* check without --partial: the end marker is there. */
    int status = trace_tool("check", path, NULL, NULL);
    cr_assert(
        WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker-trace check: status %d", status);
    /* The whole run is in it: every worker, and the end marker. */
    const char *const needles[]
        = { "complete", " producer", " subscriber-1", " subscriber-2", " subscriber-3", NULL };
    bool found[5] = { false };
    status = trace_tool("stats", path, needles, found);
    cr_assert(
        WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker-trace stats: status %d", status);
    for (int i = 0; needles[i]; i++)
        cr_expect(found[i], "worker-trace stats does not mention '%s'", needles[i]);
    unlink(path);
}
#endif
