/* Reading a trace file back in a Criterion test (the format of
 * lib/trace/wk_trace_format.h): every record but names into `tr`, names by
 * id, with the writing thread of each record's chunk. Shared by test_trace.c
 * and test_pooled.c; include it after test_util.h and Criterion. */
#ifndef WORKER_TU_TRACE_H
#define WORKER_TU_TRACE_H

#include "wk_trace_format.h"

#define MAX_RECORDS 100000
#define MAX_NAMES 4096

static struct {
    wk_trace_file_header header;
    wk_trace_record rec[MAX_RECORDS];
    uint32_t thread[MAX_RECORDS]; /* the chunk's writing thread */
    size_t count;
    char *names[MAX_NAMES];
    int chunks;
    int ends;
} tr;

/* Append the records of the file at `path` to `tr` (memset it to start
 * over); every chunk's magic and checksum must hold. */
static void read_trace(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(&tr.header, sizeof tr.header, 1, f), 1);
    wk_trace_chunk_header ch;
    while (fread(&ch, sizeof ch, 1, f) == 1) {
        cr_assert_eq(ch.magic, WK_TRACE_CHUNK_MAGIC);
        wk_trace_record *slots = malloc(ch.count * sizeof *slots);
        cr_assert_eq(fread(slots, sizeof *slots, ch.count, f), ch.count);
        cr_assert_eq(ch.checksum, wk_trace_checksum(slots, ch.count * sizeof *slots));
        tr.chunks++;
        for (uint32_t i = 0; i < ch.count; i++) {
            wk_trace_record *r = &slots[i];
            if (r->kind == WK_TR_NAME) {
                cr_assert_lt(r->a, MAX_NAMES);
                tr.names[r->a] = strndup((const char *)&slots[i + 1], r->b);
                i += WK_TRACE_NAME_SLOTS(r->b) - 1;
                continue;
            }
            tr.ends += r->kind == WK_TR_TRACE_END;
            cr_assert_lt(tr.count, MAX_RECORDS);
            tr.thread[tr.count] = ch.thread;
            tr.rec[tr.count++] = *r;
        }
        free(slots);
    }
    fclose(f);
}

static const char *name_of(uint64_t id)
{
    return id < MAX_NAMES && tr.names[id] ? tr.names[id] : "?";
}

#endif
