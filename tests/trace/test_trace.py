#!/usr/bin/env python3
"""Tests of worker-trace on synthetic traces (see tests/trace/CMakeLists.txt).

usage: test_trace.py {stats|perfetto|bad|fuzz|big|view|cli|pooled} --tool WORKER_TRACE
                     --gen GEN_TRACE --work DIR [--project-version VERSION]
                     [--pooled-program POOLED_TRACE]

Exit status 0 when every check passed, 1 on a failure, 77 when skipped
(view without chromium). The expected values below mirror the scenario in
gen_trace.c's small(): keep the two in step.
"""
import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

FAILS = []


def check(cond, what):
    if cond:
        print("  ok   " + what)
    else:
        print("  FAIL " + what)
        FAILS.append(what)


def run(cmd, timeout=300, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def sanitizer_clean(err):
    return "Sanitizer" not in err and "runtime error" not in err


# --- expectations for gen_trace small --------------------------------------------

# id: (recv, sent, handled, runs, p50_us, p90_us, max_us, rejects, mailbox, end, name, depth)
WORKERS = {
    1: (1, 7, 1, 1, 20.0, 20.0, 20.0, 1, 0, "-", "main", 0),
    2: (6, 9, 6, 5, 100.0, 300.0, 300.0, 0, 0, "ok", "boss", 1),
    3: (7, 1, 7, 7, 25.0, 50.0, 50.0, 0, 0, "ok", "alpha", 2),
    4: (6, 0, 6, 6, 500.0, 500.0, 500.0, 0, 4, "EXIT", "beta", 2),
}
PAIRS = [  # (count, sender, receiver), in the order stats prints them
    (5, "main", "boss"), (5, "boss", "alpha"), (4, "boss", "beta"),
    (2, "main", "alpha"), (2, "main", "beta"), (1, "alpha", "main"), (1, "alpha", "boss"),
]
WAITS = [  # (duration_ms, kind, result, worker), longest first
    (8.470, "thread", "OK", "main"), (7.982, "forever", "EXIT", "boss"),
    (2.000, "event", "ETIMEDOUT", "alpha"), (0.500, "timeout", "OK", "beta"),
]
RUNS = 1 + 5 + 7 + 6       # listener runs
MESSAGES = 3 + 9 + 2 + 2 + 3 + 1  # queued events with a FIRE and a DELIVER


def small(args):
    path = os.path.join(args.work, "small.wktrace")
    rc, _, err = run([args.gen, "small", path])
    if rc != 0:
        sys.exit("gen_trace small failed: " + err)
    return path


def test_stats(args):
    path = small(args)
    rc, out, err = run([args.tool, "check", path])
    check(rc == 0 and ": ok:" in out, "check accepts the small trace")
    check("4 threads" in out and "3 dropped" in out, "check counts threads and dropped records: " + out.strip())
    rc, out, err = run([args.tool, "stats", path])
    print(out)
    check(rc == 0, "stats exits 0")
    check("dropped 3" in out and "complete" in out, "stats header: dropped 3, complete")
    lines = out.splitlines()
    try:
        h = next(i for i, l in enumerate(lines) if l.split()[:2] == ["id", "recv"])
    except StopIteration:
        check(False, "stats has a workers table")
        return
    rows = {}
    order = []
    for l in lines[h + 1:]:
        if not l.strip():
            break
        f = l.split(None, 12)
        order.append(int(f[0]))
        rows[int(f[0])] = f
    check(order == [1, 2, 3, 4], "workers in tree order: %s" % order)
    for wid, exp in WORKERS.items():
        f = rows.get(wid)
        if not f:
            check(False, "worker %d listed" % wid)
            continue
        recv, sent, handled, runs, p50, p90, mx, rej, mb, end, name, depth = exp
        got = (int(f[1]), int(f[2]), int(f[3]), int(f[4]), float(f[5]), float(f[6]), float(f[8]),
               int(f[9]), int(f[10]), f[11], f[12].strip())
        want = (recv, sent, handled, runs, p50, p90, mx, rej, mb, end, name)
        check(got == want, "worker %d (%s): %s" % (wid, name, got if got != want else "as expected"))
        line = next(l for l in lines[h + 1:] if l.split()[0] == str(wid))
        check(line.endswith("  " + "  " * depth + name), "worker %d indented to depth %d" % (wid, depth))
    # waits
    w = lines.index(next(l for l in lines if l.startswith("longest waits")))
    got = []
    for l in lines[w + 2:w + 2 + len(WAITS)]:
        f = l.split()
        got.append((float(f[0]), f[2], f[3], f[-2]))
    check(got == WAITS, "longest waits: %s" % got)
    p = lines.index(next(l for l in lines if l.startswith("top sender")))
    got = []
    for l in lines[p + 2:]:
        m = re.match(r"\s*(\d+)\s+(\S+) \(#\d+\) -> (\S+) \(#\d+\)", l)
        if m:
            got.append((int(m.group(1)), m.group(2), m.group(3)))
    check(got == PAIRS, "top pairs: %s" % got)
    rc, out2, _ = run([args.tool, "stats", path, "--top", "2"])
    check(rc == 0 and "(top 2 of 7)" in out2, "--top 2 limits the pairs")
    check_table_titles(args, path)


def table_titles(out):
    return [l for l in out.splitlines() if l.startswith(("longest waits", "top sender"))]


def check_table_titles(args, path):
    """A table's title never claims more rows than there are."""
    rc, out, _ = run([args.tool, "stats", path])
    got = table_titles(out)
    check(got == ["longest waits (all 4)", "top sender -> receiver pairs (all 7)"],
          "fewer rows than --top 10: the titles say all: %s" % got)
    rc, out, _ = run([args.tool, "stats", path, "--top", "4"])
    got = table_titles(out)
    check(got == ["longest waits (all 4)", "top sender -> receiver pairs (top 4 of 7)"],
          "--top 4: all 4 waits, top 4 of 7 pairs: %s" % got)
    rc, out, _ = run([args.tool, "stats", path, "--top", "3"])
    got = table_titles(out)
    check(got[:1] == ["longest waits (top 3 of 4)"], "--top 3: top 3 of 4 waits: %s" % got)
    big = os.path.join(args.work, "no-waits.wktrace")
    rc, _, err = run([args.gen, "big", big, "2000"])
    rc, out, _ = run([args.tool, "stats", big])
    got = table_titles(out)
    check(rc == 0 and got[:1] == ["longest waits (none)"], "a trace without waits: %s" % got)


def test_perfetto(args):
    path = small(args)
    out = os.path.join(args.work, "small.json")
    rc, _, err = run([args.tool, "perfetto", path, "-o", out])
    check(rc == 0, "perfetto exits 0 " + err.strip())
    with open(out) as f:
        doc = json.load(f)
    ev = doc["traceEvents"]
    check(doc.get("displayTimeUnit") == "ns", "displayTimeUnit ns")
    names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    check(names == {1: "main #1", 2: "boss #2", 3: "alpha #3", 4: "beta #4"}, "thread names: %s" % names)
    sort = {e["tid"]: e["args"]["sort_index"] for e in ev if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    check(sort == {1: 0, 2: 1, 3: 2, 4: 3}, "threads sorted in tree order")
    runs = [e for e in ev if e["ph"] == "X" and e.get("cat") == "listener"]
    check(len(runs) == RUNS, "%d listener runs as X slices (want %d)" % (len(runs), RUNS))
    per = {}
    for e in runs:
        per[e["tid"]] = per.get(e["tid"], 0) + 1
    check(per == {1: 1, 2: 5, 3: 7, 4: 6}, "listener runs per worker: %s" % per)
    check(all(e["dur"] >= 0 and "ts" in e for e in ev if e["ph"] == "X"), "every X has ts and dur >= 0")
    job = [e for e in runs if e["tid"] == 2 and e["args"]["event"] == "job"]
    check(sorted(round(e["dur"]) for e in job) == [100, 200, 300], "boss's job runs last 100/200/300 us")
    s = {e["id"]: e for e in ev if e["ph"] == "s"}
    f = {e["id"]: e for e in ev if e["ph"] == "f"}
    check(len(s) == MESSAGES and set(s) == set(f), "%d flows, each with s and f (want %d)" % (len(s), MESSAGES))
    check(all(f[i]["ts"] >= s[i]["ts"] and f[i].get("bp") == "e" for i in s), "flows end after they start, bp=e")
    pairs = {}
    for i in s:
        k = (s[i]["tid"], f[i]["tid"])
        pairs[k] = pairs.get(k, 0) + 1
    # hops start at the previous hop: done goes alpha->boss->main, the
    # shutdown broadcast main->boss->{alpha, beta}
    want = {(1, 2): 5, (2, 3): 6, (2, 4): 5, (3, 2): 1, (2, 1): 1, (1, 3): 1, (1, 4): 1}
    check(pairs == want, "flow endpoints (hops from the previous hop): %s" % sorted(pairs.items()))
    # every flow start lies in a slice of its thread, every end in one
    xs = {}
    for e in ev:
        if e["ph"] == "X":
            xs.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"]))
    def inside(tid, t):
        return any(a <= t <= b for a, b in xs.get(tid, []))
    check(all(inside(e["tid"], e["ts"]) for e in s.values()), "each flow start binds to a slice")
    check(all(inside(e["tid"], e["ts"]) for e in f.values()), "each flow end binds to a slice")
    c = [e for e in ev if e["ph"] == "C"]
    check([e["args"]["depth"] for e in c] == [1, 2, 4, 0] and all(e["name"] == "mailbox beta #4" for e in c),
          "mailbox depth counter for beta: 1, 2, 4, 0")
    waits = [e for e in ev if e["ph"] == "X" and e.get("cat") == "wait"]
    check(len(waits) == 4, "4 waits as X slices")
    b = [e for e in ev if e["ph"] == "b" and e.get("cat") == "pause"]
    check(len(b) == 1 and b[0]["tid"] == 2, "one pause (boss) as an async span")
    test_perfetto_proto(args, path)
    check_sup_data(args)


def sup_trace(args):
    path = os.path.join(args.work, "sup.wktrace")
    rc, _, err = run([args.gen, "sup", path])
    check(rc == 0, "gen_trace sup " + err)
    return path


def check_sup_data(args):
    """SUPERVISOR_STARTED and CHILD_RESTART in the Chrome JSON and the view's data."""
    path = sup_trace(args)
    out = os.path.join(args.work, "sup.json")
    rc, _, err = run([args.tool, "perfetto", path, "-o", out])
    check(rc == 0, "perfetto of the supervision trace exits 0 " + err.strip())
    with open(out) as f:
        ev = json.load(f)["traceEvents"]
    marks = [(e["tid"], e["name"]) for e in ev if e["ph"] == "i"]
    check(sorted(t for t, n in marks if n == "supervisor started") == [2, 5], "a supervisor started mark on sup and pool")
    check(len([1 for t, n in marks if n == "restart"]) == 8, "8 restart marks")
    html = os.path.join(args.work, "sup.html")
    rc, _, err = run([args.tool, "view", path, "-o", html])
    check(rc == 0, "view of the supervision trace exits 0 " + err.strip())
    m = re.search(r'<script[^>]*application/json[^>]*>(.*?)</script>', open(html, encoding="utf-8").read(), re.S)
    w = {x["name"]: x for x in json.loads(m.group(1))["workers"]} if m else {}
    check(w.get("sup", {}).get("sup") == {"strategy": 1, "intensity": 3, "periodMs": 5000, "backoffMs": 0}
          and w.get("pool", {}).get("sup") == {"strategy": 0, "intensity": 10, "periodMs": 1000, "backoffMs": 20}
          and "sup" not in w.get("flaky", {"sup": 1}), "the view's data: supervisors with their strategy")
    got = {n: w[n]["restarts"] for n in ("flaky", "steady", "w1", "w2", "main")} if len(w) == 7 else {}
    check(got == {"flaky": 2, "steady": 2, "w1": 4, "w2": 0, "main": 0}, "the view's data: restarts per child: %s" % got)
    return html


# --- a small protobuf reader (the wire format: varints, fixed64, lengths) ---------

def pb_fields(buf):
    """{field: [values]} of one message; LEN fields as bytes."""
    out, i = {}, 0
    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            val = varint()
        elif wire == 1:
            val = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wire == 2:
            n = varint()
            val = bytes(buf[i:i + n])
            if len(val) != n:
                raise ValueError("length past the end")
            i += n
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(field, []).append(val)
    return out


def one(d, f, default=None):
    return d[f][0] if f in d else default


def read_pftrace(path):
    """The packets of a Perfetto trace as plain dicts: interned names,
    tracks, and track events (ts, type, track, name, cat, flows, args)."""
    data = open(path, "rb").read()
    names, cats, argn, tracks, events = {}, {}, {}, {}, []
    for pkt in pb_fields(data).get(1, []):
        p = pb_fields(pkt)
        if 12 in p:
            it = pb_fields(p[12][0])
            for field, table in ((2, names), (1, cats), (3, argn)):
                for e in it.get(field, []):
                    e = pb_fields(e)
                    table[one(e, 1)] = one(e, 2).decode()
        if 60 in p:
            td = pb_fields(p[60][0])
            th = pb_fields(one(td, 4)) if 4 in td else {}
            pr = pb_fields(one(td, 3)) if 3 in td else {}
            tracks[one(td, 1)] = {"name": one(td, 2, b"").decode(), "tid": one(th, 2),
                                  "thread": one(th, 5, b"").decode(), "counter": 8 in td,
                                  "parent": one(td, 5), "pid": one(th, 1, one(pr, 1)),
                                  "process": one(pr, 6, b"").decode() if pr else None}
        if 11 in p:
            te = pb_fields(p[11][0])
            args = {}
            for a in te.get(4, []):
                a = pb_fields(a)
                args[argn.get(one(a, 1))] = one(a, 4)
            events.append({"ts": one(p, 8), "type": one(te, 9), "track": one(te, 11),
                           "name": names.get(one(te, 10)), "cat": cats.get(one(te, 3)),
                           "out": te.get(47, []), "in": te.get(48, []), "value": one(te, 30), "args": args})
    return tracks, events


def test_perfetto_proto(args, path):
    out = os.path.join(args.work, "small.pftrace")
    rc, _, err = run([args.tool, "perfetto", path, "-o", out])
    check(rc == 0, "perfetto writes protobuf by default " + err.strip())
    tracks, ev = read_pftrace(out)
    threads = {t["tid"]: t["thread"] for t in tracks.values() if t["tid"]}
    check(threads == {1: "main #1", 2: "boss #2", 3: "alpha #3", 4: "beta #4"}, "proto thread tracks: %s" % threads)
    tid = {u: t["tid"] for u, t in tracks.items() if t["tid"]}
    runs = [e for e in ev if e["type"] == 1 and e["cat"] == "listener"]
    per = {}
    for e in runs:
        per[tid[e["track"]]] = per.get(tid[e["track"]], 0) + 1
    check(len(runs) == RUNS and per == {1: 1, 2: 5, 3: 7, 4: 6}, "proto listener runs per worker: %s" % per)
    # begins and ends pair up per track, properly nested, in time order
    stack, ok, durs = {}, True, []
    last = 0
    for e in ev:
        ok = ok and e["ts"] >= last
        last = e["ts"]
        if e["type"] == 1:
            stack.setdefault(e["track"], []).append(e)
        elif e["type"] == 2:
            st = stack.get(e["track"])
            if not st:
                ok = False
                continue
            b = st.pop()
            if b["cat"] == "listener" and tid[b["track"]] == 2 and b["name"] == "on_job":
                durs.append(e["ts"] - b["ts"])
    check(ok and all(not s for s in stack.values()), "proto slices begin and end in order, each closed")
    check(sorted(round(d / 1000) for d in durs) == [100, 200, 300], "boss's on_job runs last 100/200/300 us: %s" % durs)
    outs = {f: e for e in ev for f in e["out"]}
    ins = {f: e for e in ev for f in e["in"]}
    check(len(outs) == MESSAGES and set(outs) == set(ins), "%d flows out and in (want %d)" % (len(outs), MESSAGES))
    pairs = {}
    for f in outs:
        k = (tid[outs[f]["track"]], tid[ins[f]["track"]])
        pairs[k] = pairs.get(k, 0) + 1
    want = {(1, 2): 5, (2, 3): 6, (2, 4): 5, (3, 2): 1, (2, 1): 1, (1, 3): 1, (1, 4): 1}
    check(pairs == want, "proto flow endpoints: %s" % sorted(pairs.items()))
    counters = {u: t["name"] for u, t in tracks.items() if t["counter"]}
    depth = [e["value"] for e in ev if e["type"] == 4]
    beta = [e["value"] for e in ev if e["type"] == 4 and counters.get(e["track"]) == "mailbox beta #4"]
    check(beta == [1, 2, 4, 0] and depth == beta, "proto mailbox counter for beta: %s" % beta)
    waits = [e["name"] for e in ev if e["type"] == 1 and e["cat"] == "wait"]
    check(sorted(waits) == ["wait event", "wait forever", "wait thread", "wait timeout"], "proto waits: %s" % waits)
    pause = [e for e in ev if e["type"] == 1 and e["cat"] == "pause"]
    check(len(pause) == 1 and tracks[pause[0]["track"]]["parent"] == [u for u in tid if tid[u] == 2][0],
          "one pause, on boss's pause track")
    serials = [e["args"].get("serial") for e in ev if e["type"] == 1 and e["cat"] == "event"]
    check(len(serials) == MESSAGES and all(serials), "every event slice carries its serial")
    rc, _, _ = run([args.tool, "perfetto", "--json", path, "-o", out])
    check(rc == 0 and json.load(open(out))["traceEvents"], "--json writes JSON to any file name")


def test_cli(args):
    tool = os.path.abspath(args.tool)  # some runs are in the work folder
    rc, out, err = run([tool, "--version"])
    want = "worker-trace %s\n" % args.project_version
    check(rc == 0 and out == want and not err, "--version prints %r, exit 0 (got %d, %r %r)"
          % (want, rc, out, err))
    rc, out, _ = run([tool, "stats", "--version", "x", "y", "z"])
    check(rc == 0 and out == want, "--version anywhere on the line")
    rc, out, _ = run([tool, "--help"])
    check(rc == 0 and "--version" in out and "\n  --  " in out, "--help lists --version and --")
    # "--" ends the options: a trace whose name starts with '-'
    shutil.copy(small(args), os.path.join(args.work, "-x.wktrace"))
    rc, out, err = run([tool, "check", "--", "-x.wktrace"], cwd=args.work)
    check(rc == 0 and out.startswith("-x.wktrace: ok:"), "check -- -x.wktrace: exit %d %s%s"
          % (rc, out.strip(), err.strip()))
    rc, out, err = run([tool, "check", "-x.wktrace"], cwd=args.work)
    check(rc == 1 and "unknown option -x.wktrace" in err, "without --, -x.wktrace is an option")
    rc, out, _ = run([tool, "stats", "--top", "2", "--", "-x.wktrace"], cwd=args.work)
    check(rc == 0 and "(top 2 of 7)" in out, "options before -- still count")
    rc, out, err = run([tool, "check", "--", "--partial"], cwd=args.work)
    check(rc == 2 and "--partial: cannot open" in err, "after --, --partial is a file name: %s" % err.strip())
    rc, out, err = run([tool, "view", "-o", "x.html", "--", "-x.wktrace"], cwd=args.work)
    page = open(os.path.join(args.work, "x.html"), encoding="utf-8").read() if rc == 0 else ""
    check(rc == 0 and '"title":"-x.wktrace"' in page, "view -- -x.wktrace titles the page -x.wktrace")
    rc, out, err = run([tool, "check", "--", "-x.wktrace", "--"], cwd=args.work)
    check(rc == 2 and "--: cannot open" in err, "a second -- is an argument (a second trace)")


BAD = {  # file -> a word the message must hold
    "empty": "truncated", "short-header": "truncated", "cut-mid-chunk": "truncated",
    "cut-chunk-header": "truncated", "no-end": "TRACE_END", "magic": "magic",
    "version": "version", "record-size": "record size", "absurd-count": "records",
    "count-past-end": "truncated", "checksum": "checksum", "seq": "chunks missing",
    "chunk-magic": "chunk magic", "garbage": "magic", "garbage-after-header": "corrupt",
    "name-overflow": "past the end", "name-padding": "padding", "kind": "unknown kind",
    "timestamp": "timestamp", "wait-kind": "wait kind", "end-not-alone": "TRACE_END",
}


FLIPS = 120


def test_bad(args):
    d = os.path.join(args.work, "bad")
    os.makedirs(d, exist_ok=True)
    rc, _, err = run([args.gen, "bad", d])
    if rc != 0:
        sys.exit("gen_trace bad failed: " + err)
    out = os.path.join(args.work, "out.tmp")
    for name, word in sorted(BAD.items()):
        path = os.path.join(d, "bad-%s.wktrace" % name)
        for cmd in (["check", path], ["stats", path], ["perfetto", path, "-o", out], ["view", path, "-o", out]):
            rc, so, err = run([args.tool] + cmd)
            first = err.strip().splitlines()[0] if err.strip() else ""
            ok = rc == 2 and first.startswith("worker-trace: ") and word in first and sanitizer_clean(err)
            if not ok or cmd[0] == "check":
                check(ok, "%s: %s -> exit %d: %s" % (name, cmd[0], rc, first or err[-300:]))
    # --partial reads what comes before the damage
    rc, so, err = run([args.tool, "stats", "--partial", os.path.join(d, "bad-no-end.wktrace")])
    check(rc == 0 and "PARTIAL" in so and "warning" in err, "--partial reads a trace without TRACE_END")
    rc, so, err = run([args.tool, "check", "--partial", os.path.join(d, "bad-cut-mid-chunk.wktrace")])
    check(rc == 0 and "partial" in so, "--partial reads a trace cut mid-chunk")
    rc, so, err = run([args.tool, "check", os.path.join(d, "does-not-exist")])
    check(rc == 2 and "cannot open" in err, "a missing file: exit 2")
    rc, so, err = run([args.tool, "frobnicate", "x"])
    check(rc == 1 and "unknown command" in err, "an unknown command: exit 1")

    # every truncation of the good file, and random byte flips
    path = small(args)
    data = open(path, "rb").read()
    cut = os.path.join(args.work, "cut.wktrace")
    bad_rc = []
    sizes = sorted(set(list(range(0, len(data), 29)) + [64, 65, 95, 96, 97, len(data) - 1]))
    for n in sizes:
        with open(cut, "wb") as f:
            f.write(data[:n])
        rc, _, err = run([args.tool, "check", cut])
        if rc != 2 or not sanitizer_clean(err):
            bad_rc.append((n, rc, err[-200:]))
    check(not bad_rc, "truncations (%d sizes) exit 2 cleanly %s" % (len(sizes), bad_rc[:3]))
    rnd = random.Random(12345)
    bad_rc = []
    accepted = 0
    for i in range(FLIPS):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        with open(cut, "wb") as f:
            f.write(b)
        rc, _, err = run([args.tool, "stats", cut])
        if rc not in (0, 2) or not sanitizer_clean(err):
            bad_rc.append((i, rc, err[-300:]))
        accepted += rc == 0
    check(not bad_rc, "%d files with flipped bits exit 0 or 2, no crash %s" % (FLIPS, bad_rc[:2]))
    print("  (%d of %d flipped files were still valid: flips in unchecked header fields)" % (accepted, FLIPS))


def test_fuzz(args):
    path = os.path.join(args.work, "fuzz.wktrace")
    out = os.path.join(args.work, "fuzz.out")
    bad = []
    ok = 0
    n = int(os.environ.get("TRACE_FUZZ_RUNS", "60"))
    for seed in range(1, n + 1):
        rc, _, err = run([args.gen, "fuzz", str(seed), path])
        if rc != 0:
            sys.exit("gen_trace fuzz failed: " + err)
        for cmd in (["stats", path], ["perfetto", "--json", path, "-o", out], ["view", path, "-o", out],
                    ["perfetto", path, "-o", out + ".pftrace"]):
            rc, so, err = run([args.tool] + cmd)
            if rc not in (0, 2) or not sanitizer_clean(err):
                bad.append((seed, cmd[0], rc, err[-400:]))
            elif rc == 0 and cmd[0] == "perfetto" and cmd[-1].endswith(".pftrace"):
                try:
                    read_pftrace(out + ".pftrace")
                except (ValueError, IndexError, KeyError) as e:
                    bad.append((seed, "perfetto protobuf", str(e)))
            elif rc == 0 and cmd[0] == "perfetto":
                try:
                    json.load(open(out))
                    ok += 1
                except ValueError as e:
                    bad.append((seed, "perfetto json", str(e)))
    check(not bad, "%d fuzzed traces through stats/perfetto/view: exit 0 or 2, no crash, JSON valid %s"
          % (n, bad[:2]))
    check(ok > n // 2, "most fuzzed traces are still valid (%d of %d)" % (ok, n))


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(c)
        if p:
            return p
    return None


def browser(html, extra, timeout=240, hash=""):
    exe = chromium()
    prof = tempfile.mkdtemp(prefix="wt-chromium-")
    try:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--user-data-dir=" + prof] + extra + ["file://" + os.path.abspath(html) + hash]
        return run(cmd, timeout=timeout)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def title_of(dom):
    m = re.search(r"<title>([^<]*)</title>", dom)
    return m.group(1) if m else "(no title in the DOM)"


def status_of(dom):
    m = re.search(r'<pre id="status">([^<]*)</pre>', dom)
    return m.group(1) if m else "(no status in the DOM)"


def test_view(args):
    if not chromium():
        print("chromium not found: skipped")
        return 77
    path = small(args)
    html = os.path.join(args.work, "small.html")
    rc, _, err = run([args.tool, "view", path, "-o", html])
    check(rc == 0, "view exits 0")
    page = open(html, encoding="utf-8").read()
    check(not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page), "the page loads nothing from the network")
    check('"name":"alpha"' in page, "the data is inlined")
    rc, dom, err = browser(html, ["--dump-dom", "--window-size=1400,900"])
    st = status_of(dom)
    print("  page status: " + st)
    check(st.startswith("ok "), "the page runs without script errors")
    check(" lanes=4 " in st + " " and "workers=4" in st, "it draws one lane per worker (4)")
    check("slices=%d" % RUNS in st, "it draws every listener run (%d)" % RUNS)
    check("arrows=%d" % MESSAGES in st, "it draws every message arrow (%d)" % MESSAGES)
    check(title_of(dom) == "worker-trace: small.wktrace",
          "the tab's title names the trace, the status stays in the page: %r" % title_of(dom))
    shot = os.path.join(args.work, "trace-view.png")
    if os.path.exists(shot):
        os.remove(shot)
    rc, _, err = browser(html, ["--screenshot=" + shot, "--window-size=1400,900"])
    check(os.path.exists(shot) and os.path.getsize(shot) > 10000, "screenshot saved: " + shot)
    # a click on boss's first listener run (slice 1: main has one, then
    # boss's job runs) shows its event in the details panel
    rc, dom, err = browser(html, ["--dump-dom", "--window-size=1400,900"], hash="#click=1")
    st = status_of(dom)
    print("  after a click: " + st)
    check("selected=slice:1 " in st and "detail=job" in st, "a click on a slice selects it and shows its event")
    check(title_of(dom) == "worker-trace: small.wktrace", "after a click, the title is still the trace's: %r"
          % title_of(dom))
    check("queued for" in dom and "boss" in dom and "deliveries" in dom, "the details name the event's sender and deliveries")
    check("on_job <span class=\"meta\">(given name)</span>" in dom,
          "the details say the listener's name was given (worker_listen_opts.name)")
    shot = os.path.join(args.work, "trace-view-click.png")
    browser(html, ["--screenshot=" + shot, "--window-size=1400,900"], hash="#click=1")
    check(os.path.exists(shot), "screenshot after the click saved: " + shot)
    check_view_tools(args, html)
    check_fit_activity(args)
    check_view_sup(args)
    # the big trace renders too
    big = os.path.join(args.work, "big.wktrace")
    rc, _, err = run([args.gen, "big", big, "1000000"])
    bightml = os.path.join(args.work, "big.html")
    rc, _, err = run([args.tool, "view", big, "-o", bightml])
    check(rc == 0, "view of 1,000,000 records exits 0")
    t = time.time()
    rc, dom, err = browser(bightml, ["--dump-dom", "--window-size=1400,900"])
    dt = time.time() - t
    st = status_of(dom)
    print("  big page status: %s (%.1f s in chromium)" % (st, dt))
    check(st.startswith("ok ") and " lanes=8 " in st + " ", "the 1,000,000-record page renders 8 lanes")
    shot = os.path.join(args.work, "trace-view-big.png")
    browser(bightml, ["--screenshot=" + shot, "--window-size=1400,900"])
    check(os.path.exists(shot), "big screenshot saved: " + shot)
    # zoomed in to 1 ms: individual runs, every arrow
    zoom = "#view=100000000,101000000"
    rc, dom, err = browser(bightml, ["--dump-dom", "--window-size=1400,900"], hash=zoom)
    st = status_of(dom)
    print("  zoomed big page status: " + st)
    m = re.search(r"slices=(\d+) arrows=(\d+)", st)
    check(st.startswith("ok ") and m and 0 < int(m.group(1)) < 5000 and 0 < int(m.group(2)) < 2500,
          "zoomed to 1 ms, the page draws only what is in view")
    shot = os.path.join(args.work, "trace-view-big-zoom.png")
    browser(bightml, ["--screenshot=" + shot, "--window-size=1400,900"], hash=zoom)
    # a 4 us window 229 ms into the run: every axis label differs
    st = page_status(bightml, "#view=229290000,229294000&report=axis")
    labels = axis_labels(st)
    print("  4 us window at 229.29 ms: " + st)
    check(st.startswith("ok ") and len(labels) >= 3 and len(set(labels)) == len(labels),
          "axis labels at a 4 us window are distinct: %s" % labels)
    check("axisbase=229.29_ms_+" in st, "they are offsets from a base shown at the left")
    st = page_status(bightml, "#search=shard-a&next=3")
    m = re.search(r"matches=(\d+) match=3 ", st)
    check(st.startswith("ok ") and m and int(m.group(1)) > 10000 and "detail=" in st,
          "search in 1,000,000 records steps to the third match: " + st)
    return 0


def page_status(html, hash):
    rc, dom, err = browser(html, ["--dump-dom", "--window-size=1400,900"], hash=hash)
    return status_of(dom)


def axis_labels(st):
    m = re.search(r" axis=(\S*)", st)
    return m.group(1).split("|") if m and m.group(1) else []


def view_range(st):
    m = re.search(r" range=(-?\d+),(-?\d+)", st)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def shot_of(args, html, name, hash):
    shot = os.path.join(args.work, name)
    if os.path.exists(shot):
        os.remove(shot)
    browser(html, ["--screenshot=" + shot, "--window-size=1400,900"], hash=hash)
    check(os.path.exists(shot) and os.path.getsize(shot) > 10000, "screenshot saved: " + shot)


def check_view_tools(args, html):
    """Zoom by selection, double-click, keys, search, filters and the axis,
    each driven through the page's own input handlers (URL hash actions)."""
    st0 = page_status(html, "")
    a0, b0 = view_range(st0)
    st = page_status(html, "#select=400,600")
    a, b = view_range(st)
    print("  after a shift+drag from x 400 to 600: " + st)
    check(st.startswith("ok ") and a0 < a < b < b0 and (b - a) < (b0 - a0) / 3,
          "shift+drag zooms to the selected range (%d..%d inside %d..%d)" % (a, b, a0, b0))
    shot_of(args, html, "trace-view-select.png", "#select=400,600")
    st = page_status(html, "#dblclick=1")
    a, b = view_range(st)
    check("selected=slice:1 " in st and a < 100000 + 6000 and b > 100000 + 106000 and b - a < 200000,
          "double-click zooms to boss's first job run (100 us) and selects it: " + st)
    st = page_status(html, "#key=w,w")
    a, b = view_range(st)
    check(st.startswith("ok ") and abs((b - a) - (b0 - a0) * 0.49) < (b0 - a0) * 0.01, "W W zooms in twice: " + st)
    st = page_status(html, "#key=d")
    a, b = view_range(st)
    check(abs((a - a0) - (b0 - a0) * 0.15) < 1000 and abs((b - a) - (b0 - a0)) < 10, "D pans right: " + st)
    st = page_status(html, "#key=w,w,w,f")
    check(view_range(st) == (a0, b0), "F fits to activity again: " + st)
    # search: by event name, stepping; by sender
    st = page_status(html, "#search=job&next=2")
    print("  search job, Enter twice: " + st)
    check("matches=3 match=2 " in st and "selected=slice:2 " in st and "detail=job" in st,
          "search finds the 3 job runs and Enter steps to the second")
    st = page_status(html, "#search=alpha&next=1")
    check("matches=9 " in st, "search by worker or sender: alpha runs 7 listeners and sent 2 handled events: " + st)
    st = page_status(html, "#search=no-such-thing&next=1")
    check(st.startswith("ok ") and "matches=0 " in st and "searchinfo=no_match" in st, "no match: " + st)
    shot_of(args, html, "trace-view-search.png", "#search=work&next=1")
    # filters
    st = page_status(html, "#hide=beta")
    print("  beta hidden: " + st)
    check(st.startswith("ok ") and " lanes=3 " in st and "slices=%d " % (RUNS - 6) in st,
          "unticking beta hides its lane and its 6 runs")
    st = page_status(html, "#hideev=work")
    check(st.startswith("ok ") and "slices=%d " % (RUNS - 9) in st, "unticking the event work hides its 9 runs: " + st)
    shot_of(args, html, "trace-view-filter.png", "#hide=beta&hideev=tick")
    # the axis: absolute labels to the step's digit at a 4 us window
    st = page_status(html, "#view=5000000,5004000&report=axis")
    labels = axis_labels(st)
    check(len(labels) >= 3 and len(set(labels)) == len(labels) and labels[0].startswith("5.00"),
          "axis labels at a 4 us window at 5 ms: %s" % labels)
    dom = browser(html, ["--dump-dom", "--window-size=1400,900"], hash="#search=job&next=1")[1]
    check(title_of(dom) == "worker-trace: small.wktrace", "the title stays clean after a search: %r" % title_of(dom))
    check("Legend" in dom and "bubble / broadcast hop" in dom and "wait: future" in dom, "the page has a legend")


def check_view_sup(args):
    """The tree's supervision badges and a supervisor's details."""
    html = check_sup_data(args)
    st = page_status(html, "#report=sup")
    print("  supervision page: " + st.encode("ascii", "backslashreplace").decode("ascii"))
    want = ("sup=sup:sup_one_for_all,_3/5s|flaky:\u21bb_2|steady:\u21bb_2|pool:sup_one_for_one,_10/1s|"
            "w1:\u21bb_4|w2:\u21bb_0 ")
    check(st.startswith("ok ") and " lanes=7 " in st and want in st + " ",
          "the tree marks supervisors with their strategy and children with their restarts")
    rc, dom, err = browser(html, ["--dump-dom", "--window-size=1400,900"], hash="#worker=pool")
    st = status_of(dom)
    check("selected=worker:" in st and "detail=pool" in st, "#worker=pool selects the supervisor: " + st)
    check(re.search(r"children \(restarts\)</td><td>.*w1 .*#6.*\u21bb 4.*w2 .*#7.*\u21bb 0", dom) is not None,
          "the supervisor's details list its children with their restarts")
    check("sup one_for_one, 10/1s" in dom and "20 ms" in dom, "... and its strategy and backoff")
    shot_of(args, html, "trace-view-sup.png", "#worker=pool")


def check_fit_activity(args):
    path = os.path.join(args.work, "burst.wktrace")
    html = os.path.join(args.work, "burst.html")
    rc, _, err = run([args.gen, "burst", path])
    rc2, _, err2 = run([args.tool, "view", path, "-o", html])
    check(rc == 0 and rc2 == 0, "burst trace and page " + err + err2)
    st = page_status(html, "")
    a, b = view_range(st)
    print("  burst page: " + st)
    check(st.startswith("ok ") and "slices=100 " in st and 9890000000 < a < 9900000000 < 9902000000 < b < 9910000000,
          "the page opens fitted to the 2 ms burst at 9.9 s, not to the 10 s run")
    st = page_status(html, "#key=0")
    a, b = view_range(st)
    check(a < 0 and b > 10000000000, "0 shows the whole run: " + st)
    shot_of(args, html, "trace-view-burst.png", "")


def test_big(args):
    path = os.path.join(args.work, "big.wktrace")
    rc, _, err = run([args.gen, "big", path, "1000000"])
    check(rc == 0, "gen_trace big")
    rc, out, err = run([args.tool, "check", path])
    m = re.search(r"(\d+) records", out)
    n = int(m.group(1)) if m else 0
    check(rc == 0 and n >= 1000000, "check: %s" % out.strip())
    for cmd in (["stats", path], ["perfetto", path, "-o", os.path.join(args.work, "big.json")],
                ["view", path, "-o", os.path.join(args.work, "big.html")]):
        t = time.time()
        rc, out, err = run([args.tool] + cmd, timeout=600)
        dt = time.time() - t
        check(rc == 0 and dt < 60, "%s of %d records: exit %d in %.1f s" % (cmd[0], n, rc, dt))
    pf = os.path.join(args.work, "big.pftrace")
    t = time.time()
    rc, out, err = run([args.tool, "perfetto", path, "-o", pf], timeout=600)
    check(rc == 0 and time.time() - t < 60, "perfetto protobuf of %d records: exit %d in %.1f s" % (n, rc, time.time() - t))
    js, pb = os.path.getsize(os.path.join(args.work, "big.json")), os.path.getsize(pf)
    check(pb * 5 <= js, "the protobuf is at most a fifth of the JSON: %.1f MB against %.1f MB (1/%.1f)"
          % (pb / 1048576.0, js / 1048576.0, js / max(pb, 1)))
    tracks, ev = read_pftrace(pf)
    runs = sum(1 for e in ev if e["type"] == 1 and e["cat"] == "listener")
    check(runs >= 200000, "the big protobuf parses back: %d listener runs" % runs)
    size = os.path.getsize(os.path.join(args.work, "big.html"))
    check(size < 80 * 1024 * 1024, "the page is %.1f MB" % (size / 1048576.0))
    t = time.time()
    with open(os.path.join(args.work, "big.json")) as f:
        doc = json.load(f)
    runs = sum(1 for e in doc["traceEvents"] if e["ph"] == "X" and e.get("cat") == "listener")
    check(runs >= 200000, "the big JSON parses (%d listener runs, %.1f s)" % (runs, time.time() - t))


# --- traces of two processes merged (remote_pair.c) ------------------------------

def remote_traces(args):
    """Runs remote_pair: two traces, the message id and the two pids."""
    a, b = os.path.join(args.work, "a.wktrace"), os.path.join(args.work, "b.wktrace")
    rc, out, err = run([args.pair, a, b])
    check(rc == 0, "remote_pair exits 0: %s %s" % (out.strip(), err.strip()))
    mid = int(re.search(r"id ([0-9a-f]+)", out).group(1), 16)
    pa, pb = (int(x) for x in re.search(r"pids (\d+) (\d+)", out).group(1, 2))
    check(mid != 0, "worker_trace_remote_send gave an id while tracing")
    return a, b, mid, pa, pb


def view_data(html):
    """The data object inlined in a page written by view."""
    page = open(html, encoding="utf-8").read()
    m = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def check_remote_view(args, a, b, pa, pb):
    html = os.path.join(args.work, "both.html")
    rc, _, err = run([args.tool, "view", a, b, "-o", html])
    check(rc == 0, "view a b exits 0 " + err.strip())
    d = view_data(html)
    procs = [p["pid"] for p in d["processes"]]
    check(procs == [pa, pb], "the page has both processes in order: %s" % procs)
    check(all(p["clock"] == "same host" for p in d["processes"]), "one host: times kept as they are")
    lanes = {w["name"]: (i, w["proc"]) for i, w in enumerate(d["workers"])}
    check(lanes.get("sender", (0, -1))[1] == 0 and lanes.get("transport", (0, -1))[1] == 1
          and lanes.get("inbox", (0, -1))[1] == 1, "workers grouped by process: %s" % lanes)
    order = [w["proc"] for w in d["workers"]]
    check(order == sorted(order), "a process's lanes are together: %s" % order)
    m = d["msgs"]
    remote = [i for i, f in enumerate(m["flags"]) if f & 0x40000]
    check(len(remote) == 1, "one message across processes (%d)" % len(remote))
    if remote:
        i = remote[0]
        check(m["from"][i] == lanes["sender"][0] and m["to"][i] == lanes["transport"][0],
              "the arrow goes from sender (process a) to transport (process b)")
        check(m["flags"][i] & 0x10000 and m["q"][i] > 0, "delivered, after it was sent (%d ns)" % m["q"][i])
        check(d["names"].get(str(m["ev"][i])) == "PING", "the message is named PING")
    local = [i for i, f in enumerate(m["flags"]) if not f & 0x40000 and m["to"][i] == lanes["inbox"][0]]
    check(len(local) >= 1, "the transport's local fire to inbox is there too")
    if chromium():
        rc, dom, _ = browser(html, ["--dump-dom", "--window-size=1400,900"])
        st = status_of(dom)
        print("  merged page status: " + st)
        check(st.startswith("ok ") and "processes=2" in st and "remote=1" in st,
              "the merged page runs and draws the arrow across processes")
        shot = os.path.join(args.work, "trace-remote.png")
        browser(html, ["--screenshot=" + shot, "--window-size=1400,700"])
    else:
        print("  chromium not found: the page is not run")


def check_remote_perfetto(args, a, b, pa, pb):
    out = os.path.join(args.work, "both.pftrace")
    rc, _, err = run([args.tool, "perfetto", a, b, "-o", out])
    check(rc == 0, "perfetto a b exits 0 " + err.strip())
    tracks, ev = read_pftrace(out)
    procs = sorted(t["pid"] for t in tracks.values() if t["process"] is not None)
    check(procs == sorted([pa, pb]), "a process track per trace: %s" % procs)
    pid_of = {u: t["pid"] for u, t in tracks.items() if t["tid"]}
    name_of = {u: t["thread"] for u, t in tracks.items() if t["tid"]}
    outs = {f: e for e in ev for f in e["out"]}
    ins = {f: e for e in ev for f in e["in"]}
    cross = [(name_of[outs[f]["track"]], name_of[ins[f]["track"]]) for f in outs
             if f in ins and pid_of[outs[f]["track"]] != pid_of[ins[f]["track"]]]
    check(len(cross) == 1 and cross[0][0].startswith("sender") and cross[0][1].startswith("transport"),
          "protobuf: one flow from sender (pid %d) to transport (pid %d): %s" % (pa, pb, cross))
    js = os.path.join(args.work, "both.json")
    rc, _, err = run([args.tool, "perfetto", a, b, "-o", js])
    doc = json.load(open(js)) if rc == 0 else {"traceEvents": []}
    flows = {}
    for e in doc["traceEvents"]:
        if e["ph"] in ("s", "f"):
            flows.setdefault(e["id"], {})[e["ph"]] = e["pid"]
    crossing = [f for f in flows.values() if f.get("s") == pa and f.get("f") == pb]
    check(len(crossing) == 1, "JSON: one flow from pid %d to pid %d" % (pa, pb))
    names = [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"]
    check(len(names) == 2, "JSON: both processes named: %s" % names)


def remote_queue(d):
    m = d["msgs"]
    return [m["q"][i] for i, f in enumerate(m["flags"]) if f & 0x40000 and f & 0x10000]


def check_other_host(args, a, b):
    """b as if written on another host whose wall clock is 5 ms ahead: its
    boot id differs, so it is aligned by the wall-clock anchors."""
    data = bytearray(open(b, "rb").read())
    realtime = struct.unpack_from("<Q", data, 32)[0]
    struct.pack_into("<Q", data, 32, realtime + 5000000)
    struct.pack_into("<Q", data, 56, 0x1234)
    b2 = os.path.join(args.work, "b-other-host.wktrace")
    open(b2, "wb").write(data)
    same, other = os.path.join(args.work, "same.html"), os.path.join(args.work, "other.html")
    run([args.tool, "view", a, b, "-o", same])
    rc, _, err = run([args.tool, "view", a, b2, "-o", other])
    d = view_data(other)
    check(rc == 0 and d["processes"][1]["clock"] == "wall clock", "another host: aligned by wall clock")
    q0, q1 = remote_queue(view_data(same)), remote_queue(d)
    check(len(q0) == 1 and len(q1) == 1 and abs(q1[0] - q0[0] - 5000000) < 1000000,
          "its times move by the 5 ms of its wall clock: %s -> %s ns" % (q0, q1))


def test_remote(args):
    a, b, mid, pa, pb = remote_traces(args)
    check_remote_view(args, a, b, pa, pb)
    check_other_host(args, a, b)
    check_remote_perfetto(args, a, b, pa, pb)
    rc, out, err = run([args.tool, "stats", a, b])
    check(rc == 0 and "process 0: " in out and "process 1: " in out, "stats a b lists both processes")
    rc, out, err = run([args.tool, "check", a, b])
    check(rc == 0 and out.count(": ok:") == 2, "check a b validates each: %s" % out.strip())
    # alone, each side keeps its end: an undelivered send, a receive with no send
    rc, _, err = run([args.tool, "view", b, "-o", os.path.join(args.work, "b.html")])
    d = view_data(os.path.join(args.work, "b.html"))
    check(rc == 0 and sum(1 for f in d["msgs"]["flags"] if f & 0x60000 == 0x60000) == 1,
          "b alone: the receive is a message with no fire record")


# --- pooled workers: their slices on the scheduler threads -------------------------

# gen_trace pooled: per worker, its slices in time order as (scheduler
# thread, duration in us, ended)
POOLED_SLICES = {
    "pool-a": [("wk-sched-0", 15, False), ("wk-sched-1", 8, False), ("wk-sched-0", 3, True)],
    "pool-b": [("wk-sched-1", 22, False), ("wk-sched-1", 3, True)],
    "pool-c": [("wk-sched-1", 8, False), ("wk-sched-0", 3, True)],
}
POOLED_TIDS = {"wk-sched-0": 8002, "wk-sched-1": 8003}


def pooled_view_data(args, path, name):
    html = os.path.join(args.work, name + ".html")
    rc, _, err = run([args.tool, "view", path, "-o", html], timeout=600)
    check(rc == 0, "view of %s exits 0 %s" % (name, err.strip()))
    m = re.search(r'<script[^>]*application/json[^>]*>(.*?)</script>', open(html, encoding="utf-8").read(), re.S)
    return html, (json.loads(m.group(1)) if m else {})


def data_slices(d):
    """{worker name: [(scheduler thread name, dur ns, flags, t0)]} of the view's data."""
    sc, out, t = d["sched"], {}, 0
    for i in range(len(sc["lane"])):
        t += sc["t0"][i]
        out.setdefault(d["workers"][sc["lane"][i]]["name"], []).append(
            (d["scheds"][sc["sched"][i]]["name"], sc["dur"][i], sc["flags"][i], t))
    return out


def json_sched(args, path, name):
    """{tid: thread name} and the "sched" X events of the Chrome JSON."""
    out = os.path.join(args.work, name + ".json")
    rc, _, err = run([args.tool, "perfetto", "--json", path, "-o", out], timeout=600)
    check(rc == 0, "perfetto --json of %s exits 0 %s" % (name, err.strip()))
    ev = json.load(open(out))["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    return names, [e for e in ev if e["ph"] == "X" and e.get("cat") == "sched"]


def proto_sched(args, path, name):
    """{track: thread name} of the scheduler threads, and the "sched" slices
    of the protobuf as (track, name, begin ts, end ts, worker arg); None when
    the begins and ends do not pair up in order."""
    out = os.path.join(args.work, name + ".pftrace")
    rc, _, err = run([args.tool, "perfetto", path, "-o", out], timeout=600)
    check(rc == 0, "perfetto (protobuf) of %s exits 0 %s" % (name, err.strip()))
    tracks, ev = read_pftrace(out)
    stack, got = {}, []
    for e in ev:
        if e["type"] == 1:
            stack.setdefault(e["track"], []).append(e)
        elif e["type"] == 2:
            st = stack.get(e["track"])
            if not st:
                return tracks, None
            b = st.pop()
            if b["cat"] == "sched":
                got.append((b["track"], b["name"], b["ts"], e["ts"], b["args"].get("worker")))
    if any(stack.values()):
        return tracks, None
    return tracks, got


def check_pooled_known(args):
    """gen_trace pooled: the model (the view's data), perfetto JSON and
    protobuf hold exactly the known slices."""
    path = os.path.join(args.work, "pooled.wktrace")
    rc, _, err = run([args.gen, "pooled", path])
    check(rc == 0, "gen_trace pooled " + err)
    rc, out, err = run([args.tool, "check", path])
    check(rc == 0 and ": ok:" in out, "check accepts SLICE_BEGIN/SLICE_END: " + out.strip() + err.strip())
    html, d = pooled_view_data(args, path, "pooled")
    w = {x["name"]: x for x in d.get("workers", [])}
    check(all(w.get(n, {}).get("pooled") for n in POOLED_SLICES) and "pooled" not in w.get("main", {"pooled": 1}),
          "the view's data marks the three pooled workers (not main)")
    check({n: w[n].get("schedSlices") for n in POOLED_SLICES if n in w} == {"pool-a": 3, "pool-b": 2, "pool-c": 2},
          "slices per pooled worker 3, 2, 2")
    sch = [(s["index"], s["tid"], s["name"], s["slices"]) for s in d.get("scheds", [])]
    check(sch == [(0, 8002, "wk-sched-0", 3), (1, 8003, "wk-sched-1", 4)], "scheduler threads: %s" % sch)
    got = {n: [(s, round(dur / 1000), bool(fl & 2)) for s, dur, fl, _ in v] for n, v in data_slices(d).items()}
    check(got == POOLED_SLICES, "each worker's slices: scheduler thread, length, ended: %s" % got)
    names, xs = json_sched(args, path, "pooled")
    check(names.get(8002) == "wk-sched-0" and names.get(8003) == "wk-sched-1",
          "JSON: the scheduler threads are threads of their own, by OS tid: %s" % names)
    got = {}
    for e in sorted(xs, key=lambda e: e["ts"]):
        got.setdefault(e["name"], []).append((names.get(e["tid"]), round(e["dur"]), e["args"]["ended"]))
    check(got == POOLED_SLICES, "JSON: each slice on its scheduler thread, named by its worker: %s" % got)
    check(all(e["args"]["sched"] == int(names[e["tid"]][-1]) for e in xs), "JSON: each slice's scheduler index")
    tracks, sl = proto_sched(args, path, "pooled")
    check(sl is not None, "protobuf: begins and ends pair up, in order")
    sched_tracks = {u: t["thread"] for u, t in tracks.items() if t["thread"].startswith("wk-sched-")}
    check(sorted((t["thread"], t["tid"]) for t in tracks.values() if t["thread"].startswith("wk-sched-"))
          == [("wk-sched-0", 8002), ("wk-sched-1", 8003)], "protobuf: a thread track per scheduler thread")
    got = {}
    for track, name, a, b, wid in sorted(sl or [], key=lambda x: x[2]):
        got.setdefault(name, []).append((sched_tracks.get(track), round((b - a) / 1000)))
    want = {n: [(s, us) for s, us, _ in v] for n, v in POOLED_SLICES.items()}
    check(got == want, "protobuf: each slice on its scheduler thread's track, named by its worker: %s" % got)
    check(sorted(set(x[4] for x in sl or [])) == [2, 3, 4], "protobuf: slices carry the worker id")
    return html


def check_pooled_page(args, html):
    """The page: thin bars colored by scheduler thread, their details and
    tooltip, the worker's slices per scheduler thread, the legend."""
    st = page_status(html, "#report=pooled")
    print("  pooled page: " + st)
    want = "pooled=pool-a:wk-sched-0=2;wk-sched-1=1|pool-b:wk-sched-1=2|pool-c:wk-sched-0=1;wk-sched-1=1"
    check(st.startswith("ok ") and want in st, "the page counts each worker's slices per scheduler thread")
    m = re.search(r" sched=(\d+) ", st)
    check(m and int(m.group(1)) == 4, "it draws the 4 slices in the fitted view (1..3 ms)")
    st = page_status(html, "#clicksched=0")
    check("selected=sched:0 " in st and "detail=slice_on_wk-sched-0_(tid_8002),_15.0_\u00b5s" in st,
          "a click on pool-a's first slice: slice on wk-sched-0 (tid 8002), 15.0 us: " + st)
    st = page_status(html, "#hoversched=3")
    check("tip=slice_on_wk-sched-1_(tid_8003),_22.0_\u00b5s" in st, "the tooltip of pool-b's first slice: " + st)
    st = page_status(html, "#view=5000000,7010000&report=pooled")
    check(" sched=3 " in st, "5..7 ms: the three ended slices: " + st)
    rc, dom, err = browser(html, ["--dump-dom", "--window-size=1400,900"], hash="#worker=pool-a")
    check("detail=pool-a" in status_of(dom) and '<b class="pooled">pooled</b>' in dom,
          "a pooled worker's details say pooled")
    check(re.search(r"slices per scheduler thread</td><td>.*wk-sched-0 \(tid 8002\): 2</div>.*"
                    r"wk-sched-1 \(tid 8003\): 1</div>", dom) is not None,
          "... and list its slices per scheduler thread")
    check("pooled slice, colored by scheduler thread" in dom and "wk-sched-1 (tid 8003)" in dom, "the legend has the scheduler threads")
    check("badge pool" in dom, "the tree marks pooled workers")
    shot_of(args, html, "trace-view-pooled.png", "#report=pooled")
    shot_of(args, html, "trace-view-pooled-slice.png", "#clicksched=0")


def check_pooled_program(args):
    """A real run: three pooled workers on two scheduler threads."""
    path = os.path.join(args.work, "pooled-run.wktrace")
    rc, out, err = run([args.pooled_program, path], timeout=120)
    check(rc == 0 and "handled 300" in out, "pooled_trace runs: %s %s" % (out.strip(), err.strip()))
    rc, out, err = run([args.tool, "check", path])
    check(rc == 0, "check: " + out.strip() + err.strip())
    html, d = pooled_view_data(args, path, "pooled-run")
    pooled = sorted(w["name"] for w in d.get("workers", []) if w.get("pooled"))
    check(pooled == ["pool-0", "pool-1", "pool-2"], "the model marks the pooled workers: %s" % pooled)
    sl = data_slices(d)
    n = sum(len(v) for v in sl.values())
    check(sorted(sl) == pooled and n >= 3 * 20 // 2, "every pooled worker ran in slices (%d slices)" % n)
    names = {s["name"] for s in d.get("scheds", [])}
    check(names and names <= {"wk-sched-0", "wk-sched-1"} and all(s["tid"] > 0 for s in d["scheds"])
          and all(s["index"] == int(s["name"][-1]) for s in d["scheds"]),
          "slices on wk-sched-0/1, with their index and OS tid: %s" % d.get("scheds"))
    # a worker's last SLICE_END follows its end, and may miss a trace
    # stopped right after the join: the model closes that slice at the end
    check(all(flags & 1 == 0 for v in sl.values() for _, _, flags, _ in v[:-1]), "every slice but the last has its end")
    check(all(sum(1 for x in v if x[2] & 2) == 1 and v[-1][2] & 2 for v in sl.values()),
          "each worker's run ended in its last slice")
    # every listener run of a pooled worker lies in one of its slices
    S, lanes, t = d["slices"], {w["name"]: i for i, w in enumerate(d["workers"])}, 0
    inside, runs = 0, 0
    for i in range(len(S["lane"])):
        t += S["t0"][i]
        nm = d["workers"][S["lane"][i]]["name"]
        if nm in sl:
            runs += 1
            inside += any(t0 <= t and t + S["dur"][i] <= t0 + dur for _, dur, _, t0 in sl[nm])
    check(runs == 300 and inside == runs, "the 300 listener runs lie inside their worker's slices (%d of %d)" % (inside, runs))
    tnames, xs = json_sched(args, path, "pooled-run")
    check(len(xs) == n and all(tnames.get(e["tid"], "").startswith("wk-sched-") and e["name"] in pooled for e in xs),
          "JSON: %d slices on the scheduler threads, named by their workers" % len(xs))
    tracks, psl = proto_sched(args, path, "pooled-run")
    check(psl is not None and len(psl) == n and all(tracks[x[0]]["thread"].startswith("wk-sched-") for x in psl),
          "protobuf: %d slices on the scheduler threads' tracks" % len(psl or []))
    if chromium():
        st = page_status(html, "#report=pooled")
        print("  pooled run page: " + st)
        check(st.startswith("ok ") and all(p + ":wk-sched-" in st for p in pooled), "the run's page: " + st)
        shot_of(args, html, "trace-view-pooled-run.png", "")


def check_pooled_big(args):
    """1,000,000 records of 64 pooled workers: every command, and the page."""
    path = os.path.join(args.work, "pooled-big.wktrace")
    rc, _, err = run([args.gen, "pooled-big", path, "1000000"])
    check(rc == 0, "gen_trace pooled-big")
    t = time.time()
    html, d = pooled_view_data(args, path, "pooled-big")
    n = len(d.get("sched", {}).get("lane", []))
    check(time.time() - t < 60 and n > 90000, "view of 1,000,000 records: %d slices in %.1f s" % (n, time.time() - t))
    tracks, sl = proto_sched(args, path, "pooled-big")
    check(sl is not None and len(sl) == n, "protobuf: %d slices, in order" % len(sl or []))
    if not chromium():
        return
    t = time.time()
    st = page_status(html, "#report=pooled")
    m = re.search(r" sched=(\d+) drawms=(\d+) ", st)
    print("  pooled big page: %s ... (%.1f s in chromium)" % (st[:160], time.time() - t))
    check(st.startswith("ok ") and " lanes=" in st and m and 0 < int(m.group(1)) and int(m.group(2)) < 2000,
          "the 1,000,000-record page draws the slices (one a pixel at most) in under 2 s")
    # one more load (a minute for this page in headless Chromium): zoomed to
    # 1 ms, it draws only what is in view (the screenshot of that)
    shot_of(args, html, "trace-view-pooled-big-zoom.png", "#view=10000000,11000000")


def sched_slices_by_lane(d):
    """[(lane, index into scheds)] of the view's "sched" columns."""
    sc = d.get("sched", {"lane": [], "sched": []})
    return list(zip(sc["lane"], sc["sched"]))


def check_pooled_merged(args, a, b, name, known):
    """Two traces of pooled workers merged (view a b): each process keeps
    its own scheduler threads (thread numbers are renumbered per input by
    merge.c), a worker's slices name its own process's scheduler threads,
    and the perfetto outputs put them under that process's pid."""
    html, d = pooled_view_data_of(args, [a, b], name)
    procs = [p["pid"] for p in d.get("processes", [])]
    check(len(procs) == 2 and procs[0] != procs[1], "%s: two processes: %s" % (name, procs))
    _, da = pooled_view_data(args, a, name + "-a")
    _, db = pooled_view_data(args, b, name + "-b")
    single = [[(s["index"], s["tid"], s["name"], s["slices"]) for s in x.get("scheds", [])] for x in (da, db)]
    merged = [[(s["index"], s["tid"], s["name"], s["slices"]) for s in d.get("scheds", []) if s["proc"] == k]
              for k in (0, 1)]
    check(merged == single and len(d.get("scheds", [])) == len(single[0]) + len(single[1]),
          "%s: each process's scheduler threads as in its own trace: %s" % (name, merged))
    procs_of = [s["proc"] for s in d.get("scheds", [])]
    check(procs_of == sorted(procs_of), "%s: scheduler threads in process order: %s" % (name, procs_of))
    pairs = sched_slices_by_lane(d)
    wrong = [(d["workers"][l]["name"], d["scheds"][s]["name"]) for l, s in pairs
             if d["scheds"][s]["proc"] != d["workers"][l]["proc"]]
    check(pairs and not wrong, "%s: every slice on a scheduler thread of its worker's process (%d slices, wrong: %s)"
          % (name, len(pairs), wrong[:5]))
    n = len(da.get("sched", {}).get("lane", [])) + len(db.get("sched", {}).get("lane", []))
    check(len(pairs) == n, "%s: all %d slices of both traces (%d)" % (name, n, len(pairs)))
    if known and chromium():
        first = next((i for i, (l, _) in enumerate(pairs) if d["workers"][l]["proc"] == 1), 0)
        st = page_status(html, "#clicksched=%d" % first)
        check(st.startswith("ok ") and "processes=2" in st and "selected=sched:%d " % first in st
              and ("_of_worker-actor_pid_%d," % procs[1]) in st,
              "%s: the page names the second process's scheduler thread with its process: %s" % (name, st[-160:]))
    if known:
        for k in (0, 1):
            got = {}
            for l, s in pairs:
                if d["workers"][l]["proc"] == k:
                    got.setdefault(d["workers"][l]["name"], []).append(d["scheds"][s]["name"])
            want = {w: [x[0] for x in v] for w, v in POOLED_SLICES.items()}
            check(got == want, "%s: process %d's workers' slices on its scheduler threads: %s" % (name, k, got))
    # perfetto JSON: the scheduler threads and their slices under their process's pid
    out = os.path.join(args.work, name + ".json")
    rc, _, err = run([args.tool, "perfetto", "--json", a, b, "-o", out], timeout=600)
    check(rc == 0, "%s: perfetto --json a b exits 0 %s" % (name, err.strip()))
    ev = json.load(open(out))["traceEvents"] if rc == 0 else []
    tname = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    wpid = {}
    for e in ev:
        if e["ph"] == "X" and e.get("cat") == "listener":
            wpid[e["tid"]] = e["pid"]
    xs = [e for e in ev if e["ph"] == "X" and e.get("cat") == "sched"]
    bad = [e for e in xs if tname.get((e["pid"], e["tid"]), "") != "wk-sched-%d" % e["args"]["sched"]
           or (e["args"]["worker"] in wpid and wpid[e["args"]["worker"]] != e["pid"])]
    check(len(xs) == n and not bad and set(e["pid"] for e in xs) == set(procs),
          "%s: JSON: %d slices on wk-sched-N threads of their worker's pid (wrong: %d)" % (name, len(xs), len(bad)))
    # protobuf: a scheduler thread track per process's thread, none taking a process track's uuid
    tracks, sl = proto_sched_of(args, [a, b], name)
    ptracks = sorted(t["pid"] for t in tracks.values() if t["process"] is not None)
    check(ptracks == sorted(procs), "%s: protobuf: both process tracks kept: %s" % (name, ptracks))
    st = {u: t for u, t in tracks.items() if t["thread"].startswith("wk-sched-")}
    check(sorted(t["pid"] for t in st.values()) == sorted(procs[s["proc"]] for s in d.get("scheds", [])),
          "%s: protobuf: each scheduler thread's track in its process" % name)
    wp = {t["tid"]: t["pid"] for t in tracks.values() if t["tid"] and not t["thread"].startswith("wk-sched-")}
    check(sl is not None and len(sl) == n and all(x[0] in st and wp.get(x[4]) == st[x[0]]["pid"] for x in sl or []),
          "%s: protobuf: %d slices on their worker's process's scheduler threads" % (name, len(sl or [])))


def pooled_view_data_of(args, paths, name):
    html = os.path.join(args.work, name + ".html")
    rc, _, err = run([args.tool, "view"] + paths + ["-o", html], timeout=600)
    check(rc == 0, "view of %s exits 0 %s" % (name, err.strip()))
    m = re.search(r'<script[^>]*application/json[^>]*>(.*?)</script>', open(html, encoding="utf-8").read(), re.S)
    return html, (json.loads(m.group(1)) if m else {})


def proto_sched_of(args, paths, name):
    """proto_sched of several traces merged."""
    out = os.path.join(args.work, name + ".pftrace")
    rc, _, err = run([args.tool, "perfetto"] + paths + ["-o", out], timeout=600)
    check(rc == 0, "perfetto (protobuf) of %s exits 0 %s" % (name, err.strip()))
    tracks, ev = read_pftrace(out)
    stack, got = {}, []
    for e in ev:
        if e["type"] == 1:
            stack.setdefault(e["track"], []).append(e)
        elif e["type"] == 2:
            st = stack.get(e["track"])
            if not st:
                return tracks, None
            b = st.pop()
            if b["cat"] == "sched":
                got.append((b["track"], b["name"], b["ts"], e["ts"], b["args"].get("worker")))
    return (tracks, None) if any(stack.values()) else (tracks, got)


def check_pooled_two_traces(args):
    """gen_trace pooled as two processes (the copy with another pid), and,
    with the program, two real runs merged."""
    a = os.path.join(args.work, "pooled.wktrace")
    data = bytearray(open(a, "rb").read())
    struct.pack_into("<I", data, 40, struct.unpack_from("<I", data, 40)[0] + 1)
    b = os.path.join(args.work, "pooled-other.wktrace")
    open(b, "wb").write(data)
    check_pooled_merged(args, a, b, "pooled-merged", True)
    if args.pooled_program:
        ra, rb = (os.path.join(args.work, "pooled-run-%s.wktrace" % x) for x in "ab")
        for r in (ra, rb):
            rc, out, err = run([args.pooled_program, r], timeout=120)
            check(rc == 0, "pooled_trace %s: %s %s" % (r, out.strip(), err.strip()))
        check_pooled_merged(args, ra, rb, "pooled-run-merged", False)


def test_pooled(args):
    html = check_pooled_known(args)
    check_pooled_two_traces(args)
    if chromium():
        check_pooled_page(args, html)
    else:
        print("chromium not found: the page checks are skipped")
    if args.pooled_program:
        check_pooled_program(args)
    check_pooled_big(args)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["stats", "perfetto", "bad", "fuzz", "big", "view", "cli", "remote", "pooled"])
    ap.add_argument("--pair", help="remote_pair (remote)")
    ap.add_argument("--tool", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--project-version", default="", help="what --version must print (cli)")
    ap.add_argument("--pooled-program", default="", help="tests/trace/pooled_trace (pooled)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print("%s: %s" % (args.what, args.tool))
    rc = globals()["test_" + args.what](args)
    if rc == 77:
        sys.exit(77)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
