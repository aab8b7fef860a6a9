/* worker-trace: look at a libworker-actor trace file.
 *
 *   worker-trace view TRACE -o trace.html      self-contained HTML timeline
 *   worker-trace view A B ... -o all.html      several processes' traces merged
 *   worker-trace perfetto TRACE -o trace.pftrace  Perfetto protobuf (-o x.json, --json: JSON)
 *   worker-trace stats TRACE                   text summary per worker
 *   worker-trace check TRACE                   validate only
 *   worker-trace top PID-or-TRACE              live per-worker view in the terminal
 *   worker-trace view --live TRACE [--port N]  the page served on 127.0.0.1, refreshing
 *   worker-trace --version                     the program's version
 *
 * Exit status: 0 ok, 1 bad command line or output error, 2 bad trace file
 * (unreadable, truncated, corrupted, wrong version). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

#ifndef WT_VERSION /* the project's version, defined by the build */
#define WT_VERSION "unknown"
#endif

static void usage(FILE *f)
{
    fputs("usage: worker-trace COMMAND TRACE [TRACE...] [options]\n"
          "\n"
          "commands:\n"
          "  view TRACE -o FILE.html   one self-contained HTML page: a lane per worker,\n"
          "                            listener runs, messages, waits, pauses, mailbox\n"
          "                            depth and the supervision tree (open it in a browser)\n"
          "  perfetto TRACE -o FILE.pftrace\n"
          "                            Perfetto's protobuf trace (TrackEvent) for\n"
          "                            ui.perfetto.dev; with --json or -o FILE.json,\n"
          "                            Chrome Trace Event JSON (also chrome://tracing)\n"
          "  stats TRACE               per worker: events received and sent, listener\n"
          "                            time percentiles, longest waits, top pairs\n"
          "  check TRACE               validate the file and print one summary line\n"
          "  view|perfetto|stats|check TRACE TRACE...\n"
          "                            several traces, one per process (nodes): merged\n"
          "                            on one time axis (one host: exact; several hosts:\n"
          "                            aligned by their wall clocks, approximate), a group\n"
          "                            of lanes per process, arrows for the messages that\n"
          "                            crossed processes; check validates each\n"
          "  top PID|TRACE             live view of a running traced process, like top:\n"
          "                            per worker queue depth, events/s, busy %%, restarts\n"
          "                            (a PID: the trace file it has open, else its\n"
          "                            WORKER_TRACE); q or Ctrl-C quits\n"
          "  view --live TRACE [--port N]\n"
          "                            serve the page on http://127.0.0.1:N/ (default\n"
          "                            8377, 0: any free port); it refreshes as the trace\n"
          "                            grows; Ctrl-C stops\n"
          "\n"
          "options:\n"
          "  -o FILE       output file ('-' or none for stats/check: standard output)\n"
          "  --top N       rows in the stats tables (default 10)\n"
          "  --title TEXT  page title for view (default: the trace's file name)\n"
          "  --partial     read a cut or damaged trace up to its first bad chunk\n"
          "  --once        top: print one frame and exit\n"
          "  --interval S  top: seconds between refreshes (default 1)\n"
          "  --json, --proto  perfetto's output format (default: by the -o file's\n"
          "                name, .json for JSON, else protobuf)\n"
          "  -h, --help    this text\n"
          "  --version     the program's version\n"
          "  --            the arguments after it are not options (a file named '-x')\n"
          "\n"
          "exit status: 0 ok, 1 bad command line or output error, 2 bad trace file\n",
        f);
}

/* Reports a bad command line; returns false (do not go on). */
static bool usage_error(const char *msg)
{
    fprintf(stderr, "worker-trace: %s\n", msg);
    usage(stderr);
    return false;
}

typedef enum command { CMD_VIEW, CMD_PERFETTO, CMD_STATS, CMD_CHECK, CMD_TOP } command;

/* Traces one command reads at most (merged: one per process). */
#define WT_MAX_INPUTS 64

typedef struct options {
    const char *command_name, *in, *out, *title; /* in: the first trace */
    const char *ins[WT_MAX_INPUTS];
    size_t nin;
    command cmd; /* from command_name */
    bool partial;
    int format; /* perfetto: 0 by the file's name, 'j' JSON, 'p' protobuf */
    bool operands_only; /* after "--" */
    long top;
    bool live, once; /* view --live; top --once */
    long port; /* view --live */
    double interval; /* top */
} options;

/* The value of --top: a number from 1 to 1000000. */
static bool parse_top(const char *text, long *top)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *end || n < 1 || n > 1000000)
        return false;
    *top = n;
    return true;
}

/* A number in [lo, hi] (a decimal fraction when `real`). */
static bool parse_number(const char *text, double lo, double hi, bool real, double *out)
{
    char *end;
    errno = 0;
    double v = real ? strtod(text, &end) : (double)strtol(text, &end, 10);
    if (errno || end == text || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

/* The options of top and view --live. Returns 1 when argv[*i] was one of
 * them, 0 when not, -1 on a bad value. */
static int parse_live_option(int argc, char **argv, int *i, options *o)
{
    const char *a = argv[*i];
    double v;
    if (strcmp(a, "--live") == 0) {
        o->live = true;
    } else if (strcmp(a, "--once") == 0) {
        o->once = true;
    } else if (strcmp(a, "--port") == 0) {
        if (++*i >= argc || !parse_number(argv[*i], 0, 65535, false, &v)) {
            usage_error("--port needs a number from 0 to 65535");
            return -1;
        }
        o->port = (long)v;
    } else if (strcmp(a, "--interval") == 0) {
        if (++*i >= argc || !parse_number(argv[*i], 0.1, 3600, true, &v)) {
            usage_error("--interval needs seconds from 0.1 to 3600");
            return -1;
        }
        o->interval = v;
    } else {
        return 0;
    }
    return 1;
}

/* The option at argv[*i] and its value, if it takes one (*i moves past
 * it). Returns true to go on; false to exit with *status. */
static bool parse_option(int argc, char **argv, int *i, options *o, int *status)
{
    const char *a = argv[*i];
    *status = WT_EXIT_USAGE;
    int live = parse_live_option(argc, argv, i, o);
    if (live != 0)
        return live > 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        usage(stdout);
        *status = WT_EXIT_OK;
        return false;
    } else if (strcmp(a, "--version") == 0) {
        printf("worker-trace %s\n", WT_VERSION);
        *status = WT_EXIT_OK;
        return false;
    } else if (strcmp(a, "--") == 0) {
        o->operands_only = true;
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
        if (++*i >= argc)
            return usage_error("-o needs a file name");
        o->out = argv[*i];
    } else if (strcmp(a, "--top") == 0) {
        if (++*i >= argc)
            return usage_error("--top needs a number");
        if (!parse_top(argv[*i], &o->top))
            return usage_error("--top needs a number from 1 to 1000000");
    } else if (strcmp(a, "--title") == 0) {
        if (++*i >= argc)
            return usage_error("--title needs a text");
        o->title = argv[*i];
    } else if (strcmp(a, "--partial") == 0) {
        o->partial = true;
    } else if (strcmp(a, "--json") == 0 || strcmp(a, "--proto") == 0) {
        o->format = a[2];
    } else {
        fprintf(stderr, "worker-trace: unknown option %s\n", a);
        return false;
    }
    return true;
}

/* Returns true to go on; false to exit with *status. */
static bool parse_options(int argc, char **argv, options *o, int *status)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!o->operands_only && a[0] == '-' && a[1] != 0) {
            if (!parse_option(argc, argv, &i, o, status))
                return false;
        } else if (!o->command_name) {
            o->command_name = a;
        } else if (o->nin < WT_MAX_INPUTS) {
            o->ins[o->nin++] = a;
            o->in = o->ins[0];
        } else {
            *status = WT_EXIT_USAGE;
            return usage_error("too many arguments");
        }
    }
    return true;
}

/* The command and what it needs. Returns true to go on; false to exit
 * with *status. */
static bool check_command(options *o, int *status)
{
    *status = WT_EXIT_USAGE;
    if (!o->command_name)
        return usage_error("no command");
    static const char *const names[] = { "view", "perfetto", "stats", "check", "top" };
    size_t k = 0;
    while (k < sizeof names / sizeof names[0] && strcmp(o->command_name, names[k]) != 0)
        k++;
    if (k == sizeof names / sizeof names[0]) {
        fprintf(stderr, "worker-trace: unknown command '%s'\n", o->command_name);
        usage(stderr);
        return false;
    }
    o->cmd = (command)k;
    if (!o->in)
        return usage_error("no trace file");
    if (o->nin > 1 && (o->cmd == CMD_TOP || o->live))
        return usage_error("top and view --live read one trace");
    if (o->live && o->cmd != CMD_VIEW)
        return usage_error("--live goes with view");
    if (o->live && o->out)
        return usage_error("view --live serves the page: no -o");
    if ((o->once || o->interval > 0) && o->cmd != CMD_TOP)
        return usage_error("--once and --interval go with top");
    if (((o->cmd == CMD_VIEW && !o->live) || o->cmd == CMD_PERFETTO) && !o->out)
        return usage_error("view and perfetto need -o FILE");
    return true;
}

static void print_check(const wt_trace *t, const char *in)
{
    printf("%s: ok: format %u.%u, pid %" PRIu32 ", %zu threads, %" PRIu64
           " chunks, %zu records, %zu names, %" PRIu64 " dropped, 1 in %" PRIu32
           " events sampled%s\n",
        in, t->hdr.version, t->hdr.minor, t->hdr.pid, t->nthreads, t->chunks, t->nrecs, t->nstrings,
        t->dropped, wt_sample_every(t), t->partial ? ", partial" : "");
}

/* JSON when asked for, or by default for a file named *.json. */
static bool perfetto_json(const options *o)
{
    size_t n = o->out ? strlen(o->out) : 0;
    if (o->format)
        return o->format == 'j';
    return n >= 5 && strcmp(o->out + n - 5, ".json") == 0;
}

/* The page's title: --title, else the trace's file name (the first and
 * "+ N more" for several). */
static void page_title(const options *o, char *buf, size_t len)
{
    const char *base = strrchr(o->in, '/');
    base = base ? base + 1 : o->in;
    if (o->title)
        snprintf(buf, len, "%s", o->title);
    else if (o->nin > 1)
        snprintf(buf, len, "%s + %zu more", base, o->nin - 1);
    else
        snprintf(buf, len, "%s", base);
}

static int render(const wt_model *m, FILE *f, const options *o)
{
    if (o->cmd == CMD_VIEW) {
        char title[1024];
        page_title(o, title, sizeof title);
        return wt_view(m, f, title);
    }
    if (o->cmd == CMD_PERFETTO)
        return perfetto_json(o) ? wt_perfetto(m, f) : wt_perfetto_proto(m, f);
    return wt_stats(m, f, (int)o->top);
}

/* view, perfetto or stats into -o FILE or standard output. */
static int write_output(const wt_trace *t, const options *o)
{
    wt_model m;
    wt_model_build(t, &m);
    FILE *f = stdout;
    bool to_file = o->out && strcmp(o->out, "-") != 0;
    if (to_file) {
        f = fopen(o->out, "w");
        if (!f) {
            fprintf(stderr, "worker-trace: cannot write %s: %s\n", o->out, strerror(errno));
            wt_model_free(&m);
            return WT_EXIT_USAGE;
        }
    }
    int rc = render(&m, f, o);
    if (fflush(f) != 0)
        rc = -1;
    if (to_file && fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "worker-trace: writing %s failed\n", to_file ? o->out : "standard output");
    else if (to_file && o->cmd != CMD_STATS)
        fprintf(stderr, "worker-trace: wrote %s (%zu workers, %zu listener runs, %zu messages)\n",
            o->out, m.nworkers, m.nslices, m.nmsgs);
    wt_model_free(&m);
    return rc < 0 ? WT_EXIT_USAGE : WT_EXIT_OK;
}

/* top and view --live: they read the trace again and again themselves. */
static int run_live(const options *o)
{
    if (o->cmd == CMD_VIEW) {
        const char *base = strrchr(o->in, '/');
        return wt_live_serve(o->in, o->title ? o->title : base ? base + 1 : o->in, (int)o->port);
    }
    char path[4096];
    long pid;
    if (wt_top_resolve(o->in, path, sizeof path, &pid) < 0)
        return WT_EXIT_INPUT;
    if (pid && !o->once)
        fprintf(stderr, "worker-trace: process %ld traces to %s\n", pid, path);
    return wt_top(o->in, path, o->interval > 0 ? o->interval : 1.0, o->once);
}

/* Loads the trace at `path` (a message on standard error when it cannot). */
static bool load_one(const char *path, const options *o, wt_trace *t)
{
    char err[512];
    if (wt_load(path, o->partial, t, err, sizeof err) < 0) {
        fprintf(stderr, "worker-trace: %s: %s\n", path, err);
        return false;
    }
    if (t->partial)
        fprintf(
            stderr, "worker-trace: %s: warning: read only part of the trace: %s\n", path, t->error);
    return true;
}

/* Every input loaded, then checked, or merged and rendered. */
static int run_files(const options *o)
{
    wt_trace *ts = wt_xcalloc(o->nin, sizeof *ts);
    size_t loaded = 0;
    while (loaded < o->nin && load_one(o->ins[loaded], o, &ts[loaded]))
        loaded++;
    int status = loaded < o->nin ? WT_EXIT_INPUT : WT_EXIT_OK;
    for (size_t k = 0; status == WT_EXIT_OK && o->cmd == CMD_CHECK && k < o->nin; k++)
        print_check(&ts[k], o->ins[k]);
    if (status == WT_EXIT_OK && o->cmd != CMD_CHECK && o->nin == 1) {
        status = write_output(&ts[0], o);
    } else if (status == WT_EXIT_OK && o->cmd != CMD_CHECK) {
        wt_trace merged;
        wt_merge(ts, o->nin, &merged);
        status = write_output(&merged, o);
        wt_trace_free(&merged);
    }
    for (size_t k = 0; k < loaded; k++)
        wt_trace_free(&ts[k]);
    free(ts);
    return status;
}

int main(int argc, char **argv)
{
    options o = { .top = 10, .port = 8377 };
    int status;
    if (!parse_options(argc, argv, &o, &status) || !check_command(&o, &status))
        return status;
    if (o.cmd == CMD_TOP || o.live)
        return run_live(&o);
    return run_files(&o);
}
