/* The wire format (docs/wire-format.md, lib/nats/wire.c), without a
 * server: FIRE's short layout and FIRES batches round-trip, sizes are the
 * documented ones, and malformed messages are refused whole. */
#include <criterion/criterion.h>
#include <string.h>

#include "wk_wire.h"

static wk_msg fire(const char *node, uint64_t wid, const char *sender, const char *name,
    const void *data, size_t size, uint64_t id)
{
    wk_msg m = { .type = WK_MSG_FIRE,
        .id = id,
        .node = { node, node ? strlen(node) : 0 },
        .wid = wid,
        .sender = { sender, sender ? strlen(sender) : 0 },
        .name = { name, strlen(name) },
        .data = data,
        .size = size };
    return m;
}

static bool str_is(wk_str s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.p, c, s.len) == 0;
}

Test(wire, a_fire_round_trips_with_and_without_sender_and_id)
{
    unsigned char buf[256];
    const char payload[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */
    wk_msg in = fire("bench-sender", 3, "main", "EV", payload, 32, 0);
    size_t size = wk_wire_size(&in);
    cr_assert_eq(size, 59, "the size docs/wire-format.md gives");
    cr_assert_eq(wk_wire_encode(&in, buf), size);
    wk_msg out;
    cr_assert(wk_wire_decode(buf, size, &out));
    cr_assert_eq(out.type, WK_MSG_FIRE);
    cr_assert(str_is(out.node, "bench-sender") && str_is(out.sender, "main"));
    cr_assert(str_is(out.name, "EV"));
    cr_assert_eq(out.wid, 3);
    cr_assert_eq(out.id, 0);
    cr_assert_eq(out.size, 32);
    cr_assert_eq(memcmp(out.data, payload, 32), 0);

    /* The sender's id takes as many bytes as it needs (LEB128). */
    const uint64_t wids[] = { 127, 128, 300, UINT64_MAX };
    const size_t extra[] = { 0, 1, 1, 9 };
    for (int i = 0; i < 4; i++) {
        wk_msg big = fire("bench-sender", wids[i], "main", "EV", payload, 32, 0);
        cr_assert_eq(wk_wire_size(&big), 59 + extra[i]);
        size = wk_wire_encode(&big, buf);
        cr_assert(wk_wire_decode(buf, size, &out));
        cr_assert_eq(out.wid, wids[i]);
    }

    wk_msg bare = fire(NULL, 0, NULL, "E", NULL, 0, 0x1122334455667788ULL);
    size = wk_wire_encode(&bare, buf);
    cr_assert_eq(size, wk_wire_size(&bare));
    cr_assert(wk_wire_decode(buf, size, &out));
    cr_assert_eq(out.wid, 0);
    cr_assert_eq(out.node.len, 0);
    cr_assert_eq(out.id, 0x1122334455667788ULL);
    cr_assert_eq(out.size, 0);
}

Test(wire, a_batch_round_trips_in_order_naming_each_sender_once_per_run)
{
    unsigned char buf[1024];
    size_t len = WK_WIRE_FIRES_HEAD;
    wk_wire_fires_head(buf);
    const char *senders[] = { "a", "a", "a", "b", "a" };
    uint64_t wids[] = { 1, 1, 1, 2, 1 };
    for (uint32_t i = 0; i < 5; i++) {
        wk_msg m = fire("node", wids[i], senders[i], "seq", &i, sizeof i, 0);
        bool same = i > 0 && wids[i] == wids[i - 1];
        size_t entry = wk_wire_entry_size(&m, same);
        cr_assert_eq(wk_wire_entry_put(&m, same, buf + len), entry);
        len += entry;
    }
    wk_msg fires;
    cr_assert(wk_wire_decode(buf, len, &fires));
    cr_assert_eq(fires.type, WK_MSG_FIRES);
    wk_msg e = { 0 };
    size_t pos = 0;
    uint32_t count = 0;
    while (wk_wire_entry_next(&fires, &pos, &e)) {
        uint32_t v;
        cr_assert_eq(e.size, sizeof v);
        memcpy(&v, e.data, sizeof v);
        cr_assert_eq(v, count, "entry %u carries %u", count, v);
        cr_assert_eq(e.wid, wids[count]);
        cr_assert(str_is(e.sender, senders[count]) && str_is(e.node, "node"));
        cr_assert(str_is(e.name, "seq"));
        count++;
    }
    cr_assert_eq(count, 5);
}

/* A batch whose one entry is bad is refused whole. */
static bool batch_of(const unsigned char *entries, size_t n)
{
    unsigned char buf[256];
    wk_wire_fires_head(buf);
    memcpy(buf + WK_WIRE_FIRES_HEAD, entries, n);
    wk_msg m;
    return wk_wire_decode(buf, WK_WIRE_FIRES_HEAD + n, &m);
}

Test(wire, malformed_fires_and_batches_are_refused)
{
    /* entry: length, flags, name (1 + n), payload */
    const unsigned char good[] = { 4, 0, 2, 'E', 'V' };
    cr_assert(batch_of(good, sizeof good));
    const unsigned char same_first[] = { 4, 4, 2, 'E', 'V' }; /* "same sender" with none before */
    cr_assert_not(batch_of(same_first, sizeof same_first));
    const unsigned char empty_entry[] = { 0 };
    cr_assert_not(batch_of(empty_entry, sizeof empty_entry));
    const unsigned char too_long[] = { 9, 0, 2, 'E', 'V' };
    cr_assert_not(batch_of(too_long, sizeof too_long));
    const unsigned char unknown_flag[] = { 4, 8, 2, 'E', 'V' };
    cr_assert_not(batch_of(unknown_flag, sizeof unknown_flag));
    const unsigned char no_name[] = { 2, 0, 0 };
    cr_assert_not(batch_of(no_name, sizeof no_name));
    const unsigned char bad_second[] = { 4, 0, 2, 'E', 'V', 3, 0, 5, 'E' };
    cr_assert_not(batch_of(bad_second, sizeof bad_second));
    cr_assert_not(batch_of(good, 0), "a batch holds at least one entry");

    /* A plain FIRE may not say "the same sender" (it has no previous). */
    const unsigned char same_in_fire[] = { 'W', 'K', WK_WIRE_VERSION, WK_MSG_FIRE, 4, 2, 'E', 'V' };
    wk_msg m;
    cr_assert_not(wk_wire_decode(same_in_fire, sizeof same_in_fire, &m));
    /* A sender with wid 0, or a varint that never ends. */
    const unsigned char wid0[] = { 'W', 'K', WK_WIRE_VERSION, WK_MSG_FIRE, 2, 1, 'n', 0, 0, 1, 'E' };
    cr_assert_not(wk_wire_decode(wid0, sizeof wid0, &m));
    const unsigned char endless[] = { 'W', 'K', WK_WIRE_VERSION, WK_MSG_FIRE, 2, 1, 'n', 0x80, 0x80 };
    cr_assert_not(wk_wire_decode(endless, sizeof endless, &m));
    /* Version 1 is not read by version 2 nodes. */
    const unsigned char v1[] = { 'W', 'K', 1, WK_MSG_FIRE, 0, 2, 'E', 'V' };
    cr_assert_not(wk_wire_decode(v1, sizeof v1, &m));
    /* A NUL inside a name. */
    const unsigned char nul[] = { 'W', 'K', WK_WIRE_VERSION, WK_MSG_FIRE, 0, 2, 'E', 0 };
    cr_assert_not(wk_wire_decode(nul, sizeof nul, &m));
}
