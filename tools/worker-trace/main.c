/* worker-trace: look at a libworker-actor trace file.
 *
 *   worker-trace view TRACE -o trace.html      self-contained HTML timeline
 *   worker-trace perfetto TRACE -o trace.json  Chrome Trace Event JSON
 *   worker-trace stats TRACE                   text summary per worker
 *   worker-trace check TRACE                   validate only
 *
 * Exit status: 0 ok, 1 bad command line or output error, 2 bad trace file
 * (unreadable, truncated, corrupted, wrong version). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wt.h"

static void usage(FILE *f)
{
    fputs("usage: worker-trace COMMAND TRACE [options]\n"
          "\n"
          "commands:\n"
          "  view TRACE -o FILE.html   one self-contained HTML page: a lane per worker,\n"
          "                            listener runs, messages, waits, pauses, mailbox\n"
          "                            depth and the supervision tree (open it in a browser)\n"
          "  perfetto TRACE -o FILE.json\n"
          "                            Chrome Trace Event JSON for ui.perfetto.dev or\n"
          "                            chrome://tracing\n"
          "  stats TRACE               per worker: events received and sent, listener\n"
          "                            time percentiles, longest waits, top pairs\n"
          "  check TRACE               validate the file and print one summary line\n"
          "\n"
          "options:\n"
          "  -o FILE       output file ('-' or none for stats/check: standard output)\n"
          "  --top N       rows in the stats tables (default 10)\n"
          "  --title TEXT  page title for view (default: the trace's file name)\n"
          "  --partial     read a cut or damaged trace up to its first bad chunk\n"
          "  -h, --help    this text\n"
          "\n"
          "exit status: 0 ok, 1 bad command line or output error, 2 bad trace file\n",
        f);
}

static int bad_usage(const char *msg)
{
    fprintf(stderr, "worker-trace: %s\n", msg);
    usage(stderr);
    return WT_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    const char *cmd = NULL, *in = NULL, *out = NULL, *title = NULL;
    bool partial = false;
    long top = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return WT_EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (++i >= argc)
                return bad_usage("-o needs a file name");
            out = argv[i];
        } else if (strcmp(a, "--top") == 0) {
            char *end;
            if (++i >= argc)
                return bad_usage("--top needs a number");
            errno = 0;
            top = strtol(argv[i], &end, 10);
            if (errno || *end || top < 1 || top > 1000000)
                return bad_usage("--top needs a number from 1 to 1000000");
        } else if (strcmp(a, "--title") == 0) {
            if (++i >= argc)
                return bad_usage("--title needs a text");
            title = argv[i];
        } else if (strcmp(a, "--partial") == 0) {
            partial = true;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "worker-trace: unknown option %s\n", a);
            return WT_EXIT_USAGE;
        } else if (!cmd) {
            cmd = a;
        } else if (!in) {
            in = a;
        } else {
            return bad_usage("too many arguments");
        }
    }
    if (!cmd)
        return bad_usage("no command");
    bool is_view = strcmp(cmd, "view") == 0, is_perfetto = strcmp(cmd, "perfetto") == 0;
    bool is_stats = strcmp(cmd, "stats") == 0, is_check = strcmp(cmd, "check") == 0;
    if (!is_view && !is_perfetto && !is_stats && !is_check) {
        fprintf(stderr, "worker-trace: unknown command '%s'\n", cmd);
        usage(stderr);
        return WT_EXIT_USAGE;
    }
    if (!in)
        return bad_usage("no trace file");
    if ((is_view || is_perfetto) && !out)
        return bad_usage("view and perfetto need -o FILE");

    wt_trace t;
    char err[512];
    if (wt_load(in, partial, &t, err, sizeof err) < 0) {
        fprintf(stderr, "worker-trace: %s: %s\n", in, err);
        return WT_EXIT_INPUT;
    }
    if (t.partial)
        fprintf(
            stderr, "worker-trace: %s: warning: read only part of the trace: %s\n", in, t.error);
    if (is_check) {
        printf("%s: ok: format %u.%u, pid %" PRIu32 ", %zu threads, %" PRIu64
               " chunks, %zu records, %zu names, %" PRIu64 " dropped, 1 in %" PRIu32
               " events sampled%s\n",
            in, t.hdr.version, t.hdr.minor, t.hdr.pid, t.nthreads, t.chunks, t.nrecs, t.nstrings,
            t.dropped, wt_sample_every(&t), t.partial ? ", partial" : "");
        wt_trace_free(&t);
        return WT_EXIT_OK;
    }

    wt_model m;
    wt_model_build(&t, &m);
    FILE *f = stdout;
    bool to_file = out && strcmp(out, "-") != 0;
    if (to_file) {
        f = fopen(out, "w");
        if (!f) {
            fprintf(stderr, "worker-trace: cannot write %s: %s\n", out, strerror(errno));
            wt_model_free(&m);
            wt_trace_free(&t);
            return WT_EXIT_USAGE;
        }
    }
    int rc;
    if (is_view) {
        const char *base = strrchr(in, '/');
        rc = wt_view(&m, f, title ? title : base ? base + 1 : in);
    } else if (is_perfetto) {
        rc = wt_perfetto(&m, f);
    } else {
        rc = wt_stats(&m, f, (int)top);
    }
    if (fflush(f) != 0)
        rc = -1;
    if (to_file && fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "worker-trace: writing %s failed\n", to_file ? out : "standard output");
    else if (to_file && !is_stats)
        fprintf(stderr, "worker-trace: wrote %s (%zu workers, %zu listener runs, %zu messages)\n",
            out, m.nworkers, m.nslices, m.nmsgs);
    wt_model_free(&m);
    wt_trace_free(&t);
    return rc < 0 ? WT_EXIT_USAGE : WT_EXIT_OK;
}
