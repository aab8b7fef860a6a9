/* worker-trace top: a live terminal view of a running traced process.
 *
 * Every refresh re-reads the whole trace file with --partial semantics (a
 * trace whose writer still runs ends in a chunk that may be half written,
 * and has no TRACE_END), builds the model and prints one line per worker:
 *   QUEUE     the last recorded mailbox depth (MAILBOX_DEPTH records: the
 *             writer records it when floor(log2(depth + 1)) changes, so it
 *             is exact at 0 and otherwise the last power-of-two step)
 *   PEAKQ     the highest depth recorded in the last second
 *   EV/S      DELIVER records in the last second (times 1-in-N sampling)
 *   BUSY%     listener run time (outermost runs) in the last second
 *   RESTARTS  WORKER_STARTED records of the worker beyond its first
 * "The last second" ends at the newest record in the file, or, while the
 * writer runs and has written nothing for longer, one flush period (1 s)
 * before now: the writer flushes each thread's buffer once a second, so
 * what is older than that is in the file.
 *
 * Given a PID, the trace is the file the process has open for writing and
 * that starts with the trace magic (/proc/PID/fd and fdinfo), else the
 * WORKER_TRACE variable of /proc/PID/environ (relative to /proc/PID/cwd).
 * Output is plain ANSI escapes (no curses); q or Ctrl-C quits. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "wt.h"

#define WINDOW_NS 1000000000ull /* "the last second" */
#define FLUSH_NS 1000000000ull /* lib/trace/flusher.c's period */

typedef struct top_row {
    uint64_t depth, peak, delivered, busy_ns, starts;
    uint16_t last_life; /* kind of its last WORKER_STARTED / ENDED, or 0 */
} top_row;

/* --- finding the trace of a process ------------------------------------------ */

/* The file starts with the trace magic (or is still empty: just opened). */
static bool looks_like_trace(const char *path)
{
    char magic[WK_TRACE_MAGIC_LEN];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return n == sizeof magic && memcmp(magic, WK_TRACE_MAGIC, WK_TRACE_MAGIC_LEN) == 0;
}

/* /proc/PID/fdinfo/FD says the descriptor was opened for writing. */
static bool fd_writable(long pid, const char *fd)
{
    char path[320], line[128];
    snprintf(path, sizeof path, "/proc/%ld/fdinfo/%s", pid, fd);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool w = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long flags;
        if (sscanf(line, "flags: %lo", &flags) == 1)
            w = (flags & O_ACCMODE) != O_RDONLY;
    }
    fclose(f);
    return w;
}

/* A regular file the process has open for writing that is a trace. */
static bool trace_from_fds(long pid, char *out, size_t outlen)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char link[400], target[PATH_MAX];
        struct stat st;
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0 || e->d_name[0] == '.')
            continue;
        target[n] = 0;
        if (target[0] != '/' || stat(target, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (fd_writable(pid, e->d_name) && looks_like_trace(target)) {
            snprintf(out, outlen, "%s", target);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* WORKER_TRACE=... in the process's environment, made absolute with its
 * current directory. */
static bool trace_from_environ(long pid, char *out, size_t outlen)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        const char *v = buf + i;
        if (strncmp(v, "WORKER_TRACE=", 13) != 0 || !v[13])
            continue;
        v += 13;
        if (v[0] == '/') {
            snprintf(out, outlen, "%s", v);
            return true;
        }
        char cwd[PATH_MAX];
        snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
        ssize_t k = readlink(path, cwd, sizeof cwd - 1);
        if (k <= 0)
            return false;
        cwd[k] = 0;
        snprintf(out, outlen, "%s/%s", cwd, v);
        return true;
    }
    return false;
}

/* The argument names a process: all digits and no such file. */
static bool is_pid(const char *arg, long *pid)
{
    struct stat st;
    if (!*arg || stat(arg, &st) == 0)
        return false;
    for (const char *p = arg; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *pid = strtol(arg, NULL, 10);
    return *pid > 0;
}

int wt_top_resolve(const char *arg, char *path, size_t pathlen, long *pid)
{
    *pid = 0;
    if (!is_pid(arg, pid)) {
        snprintf(path, pathlen, "%s", arg);
        return 0;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", *pid);
    if (access(proc, F_OK) != 0) {
        fprintf(stderr, "worker-trace: no process %ld (and no file named %s)\n", *pid, arg);
        return -1;
    }
    if (trace_from_fds(*pid, path, pathlen) || trace_from_environ(*pid, path, pathlen))
        return 0;
    fprintf(stderr,
        "worker-trace: process %ld has no trace file open for writing and no WORKER_TRACE "
        "in its environment (or they cannot be read: another user's process?)\n",
        *pid);
    return -1;
}

/* --- the numbers -------------------------------------------------------------- */

static uint64_t now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The writer's process is still there (the trace has no end marker). */
static bool writer_alive(const wt_trace *t)
{
    return !t->complete && t->hdr.pid && (kill((pid_t)t->hdr.pid, 0) == 0 || errno == EPERM);
}

/* The end of "the last second", in ns from the trace's start. */
static uint64_t window_end(const wt_model *m, bool alive)
{
    uint64_t end = m->t_last;
    uint64_t now = now_monotonic();
    if (alive && now > m->t0 + FLUSH_NS && now - FLUSH_NS > end)
        end = now - FLUSH_NS;
    return end - m->t0;
}

/* The lane of a worker id, or -1. */
static int lane_of(const wt_map *lanes, uint32_t id)
{
    uint64_t *v = wt_map_get(lanes, id, 0);
    return v ? (int)*v : -1;
}

static void count_records(const wt_model *m, const wt_map *lanes, uint64_t w0, top_row *rows)
{
    const wt_trace *t = m->trace;
    for (size_t i = 0; i < t->nrecs; i++) {
        const wt_rec *r = &t->recs[i];
        int lane = lane_of(lanes, r->worker);
        if (lane < 0)
            continue;
        top_row *row = &rows[lane];
        bool in_window = r->ts - m->t0 >= w0;
        if (r->kind == WK_TR_MAILBOX_DEPTH) {
            row->depth = r->a;
            if (in_window && r->a > row->peak)
                row->peak = r->a;
        } else if (r->kind == WK_TR_WORKER_STARTED || r->kind == WK_TR_WORKER_ENDED) {
            row->starts += r->kind == WK_TR_WORKER_STARTED;
            row->last_life = r->kind;
        } else if (r->kind == WK_TR_DELIVER && in_window)
            row->delivered++;
    }
}

/* Listener time of outermost runs inside [w0, w1]; an open run lasts to w1. */
static void count_busy(const wt_model *m, uint64_t w0, uint64_t w1, top_row *rows)
{
    for (size_t i = 0; i < m->nslices; i++) {
        const wt_slice *s = &m->slices[i];
        if (s->depth != 0 || s->lane >= m->nworkers)
            continue;
        uint64_t a = s->t0 > w0 ? s->t0 : w0;
        uint64_t b = s->flags & WT_SLICE_OPEN ? w1 : s->t1 < w1 ? s->t1 : w1;
        if (b > a)
            rows[s->lane].busy_ns += b - a;
    }
}

static top_row *compute_rows(const wt_model *m, bool alive)
{
    top_row *rows = wt_xcalloc(m->nworkers + 1, sizeof *rows);
    wt_map lanes;
    wt_map_init(&lanes);
    for (size_t i = 0; i < m->nworkers; i++)
        wt_map_put(&lanes, m->workers[i].id, 0, i, NULL);
    uint64_t w1 = window_end(m, alive);
    uint64_t w0 = w1 > WINDOW_NS ? w1 - WINDOW_NS : 0;
    count_records(m, &lanes, w0, rows);
    count_busy(m, w0, w1, rows);
    wt_map_free(&lanes);
    return rows;
}

/* --- one frame ---------------------------------------------------------------- */

typedef struct top_opts {
    const char *arg; /* what the user named: a PID or a file */
    const char *path; /* the trace file */
    double interval; /* seconds between frames */
    bool once, tty;
} top_opts;

static const char *worker_state(const wt_worker *w, const top_row *row)
{
    if (row->last_life)
        return row->last_life == WK_TR_WORKER_ENDED ? "ended" : "run";
    if (w->seen_ended)
        return "ended";
    if (w->seen_started || (w->cflags & (WK_TRF_ROOT | WK_TRF_MAIN)))
        return "run";
    return "new";
}

static void print_header(FILE *f, const wt_model *m, const top_opts *o, bool alive)
{
    const wt_trace *t = m->trace;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char clock[16];
    strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    fprintf(f, "worker-trace top - %s  pid %" PRIu32 " (%s)  %s\n", o->path, t->hdr.pid,
        t->complete ? "trace ended"
            : alive ? "running"
                    : "gone",
        clock);
    fprintf(f, "%zu workers, %zu records, %.1f s traced, %" PRIu64 " dropped", m->nworkers,
        t->nrecs, (double)(m->t_last - m->t0) / 1e9, t->dropped);
    if (wt_sample_every(t) > 1)
        fprintf(f, ", sampled 1 in %" PRIu32 " (EV/S estimated)", wt_sample_every(t));
    fputs("\n\n", f);
    fprintf(f, "%-28s %6s %-5s %7s %7s %9s %6s %8s\n", "WORKER", "ID", "STATE", "QUEUE", "PEAKQ",
        "EV/S", "BUSY%", "RESTARTS");
}

static void print_row(FILE *f, const wt_model *m, const top_row *row, const wt_worker *w)
{
    char name[64];
    int indent = w->depth < 8 ? w->depth : 8;
    snprintf(name, sizeof name, "%*s%s", indent * 2, "", w->name);
    double busy = 100.0 * (double)row->busy_ns / (double)WINDOW_NS;
    fprintf(f,
        "%-28.28s %6" PRIu32 " %-5s %7" PRIu64 " %7" PRIu64 " %9" PRIu64 " %6.1f %8" PRIu64 "\n",
        name, w->id, worker_state(w, row), row->depth, row->peak,
        row->delivered * wt_sample_every(m->trace), busy > 100.0 ? 100.0 : busy,
        row->starts > 1 ? row->starts - 1 : 0);
}

/* Renders one frame of the trace at o->path into f. Returns 0, or -1 when
 * the trace cannot be read (the message is in the frame). */
static int render_frame(FILE *f, const top_opts *o, int max_rows)
{
    wt_trace t;
    char err[512];
    if (wt_load(o->path, true, &t, err, sizeof err) < 0) {
        fprintf(f, "worker-trace top - %s\n\ncannot read the trace: %s\n", o->path, err);
        return -1;
    }
    wt_model m;
    wt_model_build(&t, &m);
    bool alive = writer_alive(&t);
    top_row *rows = compute_rows(&m, alive);
    print_header(f, &m, o, alive);
    for (size_t i = 0; i < m.nworkers; i++) {
        if (max_rows > 0 && (int)i >= max_rows) {
            fprintf(f, "... %zu more\n", m.nworkers - i);
            break;
        }
        print_row(f, &m, &rows[i], &m.workers[i]);
    }
    free(rows);
    wt_model_free(&m);
    wt_trace_free(&t);
    return 0;
}

/* --- the terminal ------------------------------------------------------------- */

static volatile sig_atomic_t top_quit;
static struct termios saved_tio;
static bool tio_saved;

static void on_signal(int sig)
{
    (void)sig;
    top_quit = 1;
}

static void restore_terminal(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    tio_saved = false;
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
}

/* Keys without Enter, no echo; Ctrl-C still signals. Alternate screen. */
static void setup_terminal(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    fputs("\033[?1049h\033[?25l", stdout);
}

static int terminal_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 6)
        return ws.ws_row - 5; /* the header lines and the help line */
    return 0;
}

/* Waits up to `ms` for a key; true when the user asked to quit. */
static bool wait_key(int ms)
{
    static bool input_ended;
    struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
    if (poll(&p, input_ended ? 0 : 1, ms) <= 0)
        return top_quit != 0;
    char c;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n <= 0 && !(n < 0 && errno == EINTR))
        input_ended = true; /* no more keys: keep refreshing until a signal */
    return n == 1 && (c == 'q' || c == 'Q' || c == 3);
}

/* One frame on the screen: drawn into memory, written at once. */
static void draw(const top_opts *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    render_frame(f, o, terminal_rows());
    fputs("\n(q quits)\n", f);
    fclose(f);
    fputs("\033[H", stdout);
    for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fwrite(line, 1, nl ? (size_t)(nl - line) : strlen(line), stdout);
        fputs("\033[K\n", stdout);
        if (!nl)
            break;
    }
    fputs("\033[J", stdout);
    fflush(stdout);
    free(buf);
}

int wt_top(const char *arg, const char *path, double interval, bool once)
{
    top_opts o = { .arg = arg, .path = path, .interval = interval, .once = once };
    if (once) {
        int rc = render_frame(stdout, &o, 0);
        if (fflush(stdout) != 0)
            return WT_EXIT_USAGE;
        return rc < 0 ? WT_EXIT_INPUT : WT_EXIT_OK;
    }
    setup_terminal();
    int ms = (int)(interval * 1000.0);
    while (!top_quit) {
        draw(&o);
        uint64_t until = now_monotonic() + (uint64_t)ms * 1000000ull;
        for (uint64_t now = now_monotonic(); now < until && !top_quit; now = now_monotonic()) {
            if (wait_key((int)((until - now) / 1000000ull) + 1))
                top_quit = 1;
        }
    }
    restore_terminal();
    return WT_EXIT_OK;
}
