#!/usr/bin/env python3
"""Tests of worker-trace's live commands (see tests/trace/CMakeLists.txt).

usage: test_live.py {top-once|top-tmux|live} --tool WORKER_TRACE
                    --service TRACE_LIVE_SERVICE --work DIR

Each test runs trace_live_service (live_service.c: workers consumer-a,
consumer-b and flaky, fed by main until killed) with WORKER_TRACE set, and
looks at its trace while it runs:
  top-once  `top --once` by file and by PID: names and numbers, and the
            numbers change from one frame to the next
  top-tmux  `top PID` in a tmux pane, read with `tmux capture-pane`: it
            refreshes, q and Ctrl-C quit (77 without tmux)
  live      `view --live --port 0` with curl: the page, /data that grows,
            /status, 404, a foreign Host refused, a listener on 127.0.0.1
            only, the served page in headless Chromium (when installed)
            (77 without curl)
Exit status 0 when every check passed, 1 on a failure, 77 when skipped.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILS = []
NAMES = ["consumer-a", "consumer-b", "flaky", "main"]


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def run(cmd, timeout=60):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Service:
    """trace_live_service running with WORKER_TRACE=<work>/run.wktrace."""

    def __init__(self, args):
        self.trace = os.path.join(args.work, "run.wktrace")
        if os.path.exists(self.trace):
            os.unlink(self.trace)
        env = dict(os.environ, WORKER_TRACE="run.wktrace")
        self.p = subprocess.Popen([args.service], cwd=args.work, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def rows_of(frame):
    """{name: (id, state, queue, peak, events/s, busy %, restarts)} of a top frame."""
    rows = {}
    for line in frame.splitlines():
        m = re.match(r"^\s*(\S+)\s+(\d+)\s+(run|ended|new)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s*$",
                     line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5)),
                                int(m.group(6)), float(m.group(7)), int(m.group(8)))
    return rows


def records_of(frame):
    m = re.search(r"(\d+) records", frame)
    return int(m.group(1)) if m else -1


def wait_for_workers(args, what, timeout=20):
    """top --once WHAT until every worker shows (the first flushes)."""
    end = time.time() + timeout
    out = ""
    while time.time() < end:
        rc, out, err = run([args.tool, "top", "--once", what])
        if rc == 0 and all(n in rows_of(out) for n in NAMES):
            return out
        time.sleep(0.3)
    print(out)
    return None


def test_top_once(args):
    with Service(args) as svc:
        first = wait_for_workers(args, svc.trace)
        if not check(first is not None, "top --once TRACE shows every worker of the running service"):
            return
        print(first)
        time.sleep(2.5)
        rc, byfile, _ = run([args.tool, "top", "--once", svc.trace])
        check(rc == 0, "top --once TRACE exits 0")
        rows = rows_of(byfile)
        check(re.search(r"pid %d \(running\)" % svc.p.pid, byfile) is not None,
              "the header names the process and says it runs")
        check(rows["consumer-a"][4] > 50, "consumer-a receives events (EV/S > 50)")
        check(rows["consumer-b"][4] > 20, "consumer-b receives events (EV/S > 20)")
        check(rows["consumer-a"][5] > 0, "consumer-a is busy (BUSY% > 0)")
        check(rows["flaky"][6] >= 1, "flaky's restarts are counted")
        check(rows["main"][6] == 0, "main never restarted")
        check(records_of(byfile) > records_of(first), "the record count grows between frames")
        check(rows_of(first) != rows, "the numbers change between frames")
        rc, bypid, err = run([args.tool, "top", "--once", str(svc.p.pid)])
        check(rc == 0 and os.path.realpath(svc.trace) in bypid,
              "top --once PID finds the trace the process writes (%s)" % err.strip())
        check(all(n in rows_of(bypid) for n in NAMES), "top --once PID shows every worker")
        svc.kill()
        rc, dead, _ = run([args.tool, "top", "--once", svc.trace])
        check(rc == 0 and "(gone)" in dead and "consumer-a" in dead,
              "after SIGKILL the trace still reads, the process shown gone")
    rc, _, err = run([args.tool, "top", "--once", "999999999"])
    check(rc == 2 and "no process" in err, "top --once of no such PID exits 2 (%s)" % err.strip())
    rc, _, err = run([args.tool, "top", "--once", os.path.join(args.work, "none.wktrace")])
    check(rc == 2, "top --once of a missing file exits 2")
    rc, _, err = run([args.tool, "top", "--interval", "0", "x"])
    check(rc == 1, "a bad --interval is refused")


def tmux(sock, *a):
    return run(["tmux", "-L", sock] + list(a), timeout=30)


def pane_gone(sock, target, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if tmux(sock, "has-session", "-t", target)[0] != 0:
            return True
        time.sleep(0.2)
    return False


def pane_shows(sock, target, text, timeout=20):
    """Poll the pane until it shows `text` (a loaded machine draws late)."""
    end = time.time() + timeout
    while time.time() < end:
        if text in tmux(sock, "capture-pane", "-p", "-t", target)[1]:
            return True
        time.sleep(0.2)
    return False


def test_top_tmux(args):
    if not shutil.which("tmux"):
        print("SKIP: no tmux (./tools/run deps installs it)")
        return 77
    sock = "wt-top-test-%d" % os.getpid()
    os.environ.setdefault("TERM", "xterm")
    with Service(args) as svc:
        if not check(wait_for_workers(args, svc.trace) is not None, "the service's trace shows its workers"):
            return
        try:
            rc, _, err = tmux(sock, "new-session", "-d", "-s", "top", "-x", "120", "-y", "30",
                              "%s top %d" % (args.tool, svc.p.pid))
            check(rc == 0, "tmux runs top PID (%s)" % err.strip())
            frames = []
            for _ in range(3):
                time.sleep(1.6)
                frames.append(tmux(sock, "capture-pane", "-p", "-t", "top")[1])
            print(frames[-1])
            check(all(all(n in f for n in NAMES) for f in frames), "every frame names every worker")
            check("worker-trace top" in frames[0] and "EV/S" in frames[0], "the header and the columns show")
            rows = [rows_of(f) for f in frames]
            check(all(r.get("consumer-a", (0,) * 7)[4] > 0 for r in rows), "consumer-a's EV/S > 0 in every frame")
            check(len({records_of(f) for f in frames}) == 3, "the record count changes at every refresh")
            tmux(sock, "send-keys", "-t", "top", "q")
            check(pane_gone(sock, "top"), "q quits top")
            tmux(sock, "new-session", "-d", "-s", "top2", "-x", "120", "-y", "30",
                 "%s top --interval 0.5 %s" % (args.tool, svc.trace))
            check(pane_shows(sock, "top2", "consumer-b"), "top TRACE --interval 0.5 shows")
            tmux(sock, "send-keys", "-t", "top2", "C-c")
            check(pane_gone(sock, "top2"), "Ctrl-C quits top")
        finally:
            tmux(sock, "kill-server")


def curl(url, *extra):
    """(HTTP status, body) through curl."""
    rc, out, err = run(["curl", "-s", "-m", "30", "-w", "\n%{http_code}"] + list(extra) + [url])
    body, _, code = out.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def loopback_only(port):
    """Every listening socket on `port` is 127.0.0.1 (/proc/net/tcp, tcp6)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":  # LISTEN
                found.append(addr)
    return found == ["0100007F"], found


def start_server(args, trace):
    p = subprocess.Popen([args.tool, "view", "--live", trace, "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stderr.readline().decode()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    return p, (int(m.group(1)) if m else 0), line


def check_live_data(base):
    code, d1 = curl(base + "data")
    data1 = json.loads(d1) if code == 200 else {}
    check(code == 200 and data1.get("live", {}).get("bytes", 0) > 0, "/data is the JSON with live.bytes")
    check(sorted(w["name"] for w in data1.get("workers", [])) == sorted(NAMES), "/data lists the workers")
    code, s1 = curl(base + "status")
    time.sleep(2.5)
    code2, d2 = curl(base + "data")
    data2 = json.loads(d2) if code2 == 200 else {}
    check(data2.get("records", 0) > data1.get("records", 0), "/data grows as the service runs (%s -> %s records)"
          % (data1.get("records"), data2.get("records")))
    check(data2.get("span", 0) > data1.get("span", 0), "/data's span grows")
    code, s2 = curl(base + "status")
    check(code == 200 and json.loads(s2)["bytes"] > json.loads(s1)["bytes"], "/status's bytes grow")


def check_page_in_browser(base):
    """The served page in headless Chromium: no script error, live on."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("  (no chromium: the page is not run)")
        return
    prof = tempfile.mkdtemp(prefix="wt-chromium-")
    try:
        rc, dom, _ = run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update",
                          "--user-data-dir=" + prof, "--virtual-time-budget=5000", "--dump-dom", base],
                         timeout=240)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    m = re.search(r'<pre id="status">([^<]*)', dom)
    st = m.group(1) if m else ""
    print("  status: " + st)
    check(st.startswith("ok lanes=4") and "live:on" in st, "the served page runs in Chromium, live on, no error")


def test_live(args):
    if not shutil.which("curl"):
        print("SKIP: no curl")
        return 77
    with Service(args) as svc:
        if not check(wait_for_workers(args, svc.trace) is not None, "the service's trace shows its workers"):
            return
        p, port, line = start_server(args, svc.trace)
        try:
            check(port > 0, "view --live --port 0 says where it serves (%s)" % line.strip())
            base = "http://127.0.0.1:%d/" % port
            code, page = curl(base)
            check(code == 200 and page.startswith("<!DOCTYPE html>") and '"live":{"bytes":' in page,
                  "the page is served with its live data")
            check(all('"%s"' % n in page for n in NAMES), "the page holds every worker")
            check_live_data(base)
            check(curl(base + "nope")[0] == 404, "an unknown path is 404")
            check(curl(base + "status", "-H", "Host: example.com")[0] == 403, "a foreign Host header is refused")
            check(curl("http://localhost:%d/status" % port)[0] == 200, "Host localhost is served")
            ok, found = loopback_only(port)
            check(ok, "the only listener on the port is 127.0.0.1 (%s)" % found)
            svc.kill()  # the trace stops growing: the page stays as loaded
            check_page_in_browser(base)
        finally:
            p.send_signal(signal.SIGINT)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = -1
        check(rc == 0, "SIGINT stops the server, exit 0")
        static = os.path.join(args.work, "static.html")
        rc, _, _ = run([args.tool, "view", "--partial", svc.trace, "-o", static])
        check(rc == 0 and '"live"' not in open(static).read(), "the static view has no live data")
    rc, _, err = run([args.tool, "view", "--live", "x.wktrace", "--bind", "0.0.0.0"])
    check(rc == 1, "there is no option to bind another address (%s)" % err.strip().splitlines()[0])
    rc, _, _ = run([args.tool, "view", "--live", "x.wktrace", "-o", "x.html"])
    check(rc == 1, "view --live with -o is refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["top-once", "top-tmux", "live"])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rc = {"top-once": test_top_once, "top-tmux": test_top_tmux, "live": test_live}[args.what](args)
    if rc == 77:
        return 77
    print("%d failed" % len(FAILS) if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
