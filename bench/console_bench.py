"""console_bench: how long the web console's job page takes to show a 1,000-host job in a
real headless Chromium (Debian chromium + chromium-driver, driven over WebDriver).

It starts musterd (--insecure, --no-etcd, --web-listen) and integration/sim_agents with N
simulated agents (one process, each a real agent stream), runs one `hostname`-like task on
all of them, waits for the job to finish, then loads /jobs/ID in the browser R times. Printed
per load: from the navigation start to the timeline holding one bar per host (the page's own
performance.now(), so WebDriver's overhead is not counted), plus the size and fetch time of
/api/v1/jobs/ID. Figures only, no pass/fail.

usage: bazel run //bench:console_bench -- [--agents N] [--runs R]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
from browser import Browser, available  # noqa: E402
from harness import Proc, free_port, wait_until  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("musterd")
    ap.add_argument("cli")
    ap.add_argument("sim_agents")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    why = available()
    if why:
        sys.exit("console_bench: " + why)
    work = tempfile.mkdtemp(prefix="console-bench-")
    port, web = free_port(), free_port()
    addr = "127.0.0.1:%d" % port
    base = "http://127.0.0.1:%d" % web
    procs = []
    try:
        md = Proc("musterd", [os.path.abspath(a.musterd), "--insecure", "--no-etcd", "--listen",
                              addr, "--web-listen", "127.0.0.1:%d" % web, "--log-level", "warn",
                              "--max-task-runs", "100000"], work)
        procs.append(md)
        cli = [os.path.abspath(a.cli), "--addr", addr]
        wait_until("musterd", lambda: subprocess.run(cli + ["cluster"], capture_output=True).returncode == 0)
        sim = subprocess.Popen([os.path.abspath(a.sim_agents), "--control", addr, "--agents",
                                str(a.agents), "--heartbeat-interval", "5s"],
                               stdout=subprocess.PIPE, text=True)
        line = sim.stdout.readline()
        assert line.startswith("ready"), line
        t0 = time.monotonic()
        r = subprocess.run(cli + ["run", "--all", "--detach", "--", "hostname"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = subprocess.run(cli + ["-o", "json", "jobs"], capture_output=True, text=True).stdout
        job = json.loads(out.splitlines()[0])["id"]

        def finished():
            with urllib.request.urlopen(base + "/api/v1/jobs/%s?limit=1" % job) as resp:
                return json.load(resp)["state"] == "succeeded"
        wait_until("the job to finish", finished, timeout=120)
        print("job %s: %d hosts done in %.1fs" % (job, a.agents, time.monotonic() - t0))
        t = time.monotonic()
        with urllib.request.urlopen(base + "/api/v1/jobs/" + job) as resp:
            body = resp.read()
        print("GET /api/v1/jobs/ID: %d bytes, %.1f ms (urllib)" % (len(body),
                                                                 1000 * (time.monotonic() - t)))
        with urllib.request.urlopen(base + "/api/v1/jobs/%s/events" % job) as resp:
            replay = resp.read()
        print("GET /api/v1/jobs/ID/events (history): %d bytes, %d events%s" % (
            len(replay), replay.count(b"\n\n"),
            ", ended in overflow" if b"event: overflow" in replay else ""))
        loads = []
        with Browser(work, width=1400, height=1000) as b:
            b.get(base + "/")  # warm: the static files are cached after this
            b.wait_js("the fleet page", "return document.querySelectorAll('#agents-body tr').length")
            for i in range(a.runs):
                b.get(base + "/jobs/" + job)
                ms = b.wait_js("a bar per host", "const n = document.querySelectorAll("
                               "'#timeline rect.run').length; return n >= %d ? "
                               "performance.now() : null" % a.agents, timeout=120)
                loads.append(ms)
                print("load %d: %.0f ms to %d bars" % (i + 1, ms, a.agents))
            b.screenshot(os.path.join(work, "console-1000-hosts.png"))
        print("job page, %d hosts, %d loads: median %.0f ms, min %.0f, max %.0f" % (
            a.agents, len(loads), statistics.median(loads), min(loads), max(loads)))
        print("screenshot: %s" % os.path.join(work, "console-1000-hosts.png"))
        sim.terminate()
        sim.wait(30)
    finally:
        for p in procs:
            p.stop()


main()
