/* Fuzz target for worker-trace: the reader (read.c), the model (model.c) and
 * the three outputs (stats.c, perfetto.c, view.c), called as main.c calls
 * them. Any input must load or fail with a message; a loaded trace must
 * render. A crash, leak or sanitizer report is a bug in tools/worker-trace/.
 *
 * Each input runs twice when its chunk checksums are wrong: as given, and
 * with every chunk's checksum recomputed, so that mutated records get past
 * the checksum into the validation of records, the model and the outputs.
 *
 * libFuzzer (see tests/fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib -Iinclude \
 *     -Ibuild/tools/worker-trace/generated tests/fuzz/fuzz_trace.c \
 *     tools/worker-trace/{read,model,stats,perfetto,view,util}.c -o fuzz_trace
 *   ./fuzz_trace -max_len=65536 -max_total_time=600 CORPUS tests/fuzz/corpus
 * Replay without libFuzzer: build with -DFUZZ_REPLAY (ctest fuzz_trace_replay)
 *   fuzz_trace_replay FILE|DIR...
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static FILE *devnull;

static void remove_tmp(void)
{
    unlink(path);
}

static void run(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        abort();
    }
    for (int partial = 0; partial < 2; partial++) {
        wt_trace t;
        char err[512] = "";
        if (wt_load(path, partial, &t, err, sizeof err) < 0) {
            if (!err[0])
                abort(); /* failed without saying why */
            continue;
        }
        if (t.partial && !t.error[0])
            abort();
        wt_model m;
        wt_model_build(&t, &m);
        if (wt_stats(&m, devnull, 10) < 0 || wt_perfetto(&m, devnull) < 0
            || wt_perfetto_proto(&m, devnull) < 0 || wt_view(&m, devnull, "fuzz") < 0)
            abort(); /* /dev/null takes anything */
        wt_model_free(&m);
        wt_trace_free(&t);
    }
}

/* Recompute the checksum of every whole chunk; true when one changed. */
static bool fix_checksums(uint8_t *d, size_t size)
{
    bool changed = false;
    size_t off = sizeof(wk_trace_file_header);
    wk_trace_chunk_header ch;
    while (size >= sizeof ch && off <= size - sizeof ch) {
        memcpy(&ch, d + off, sizeof ch);
        size_t body = (size_t)ch.count * sizeof(wk_trace_record);
        if (ch.count > WK_TRACE_MAX_CHUNK_RECORDS || body > size - off - sizeof ch)
            break;
        uint32_t sum = wk_trace_checksum(d + off + sizeof ch, body);
        changed |= sum != ch.checksum;
        memcpy(d + off + offsetof(wk_trace_chunk_header, checksum), &sum, sizeof sum);
        off += sizeof ch + body;
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull) {
        snprintf(path, sizeof path, "/tmp/fuzz_trace.%ld.wktrace", (long)getpid());
        atexit(remove_tmp);
        devnull = fopen("/dev/null", "w");
        if (!devnull)
            abort();
    }
    run(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    if (fix_checksums(copy, size))
        run(copy, size);
    free(copy);
    return 0;
}

#ifdef FUZZ_REPLAY
#include <dirent.h>

static int replay_file(const char *name)
{
    FILE *f = fopen(name, "rb");
    if (!f) {
        perror(name);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap && !(buf = realloc(buf, cap = cap ? cap * 2 : 65536)))
            abort();
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    int bad = ferror(f);
    fclose(f);
    if (!bad)
        LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return bad ? -1 : 0;
}

/* Feeds every FILE, and every file in every DIR, to the fuzz target. */
int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? opendir(argv[i]) : NULL;
        if (!dir) {
            bad |= replay_file(argv[i]);
            files++;
            continue;
        }
        for (struct dirent *e; (e = readdir(dir));) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                bad |= replay_file(p);
                files++;
            }
        }
        closedir(dir);
    }
    printf("fuzz_trace_replay: %d files replayed%s\n", files, bad ? ", some unreadable" : "");
    return files == 0 || bad ? 1 : 0;
}
#endif
