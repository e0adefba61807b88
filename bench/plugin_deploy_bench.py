"""Fleet plugin deploy: time until every agent reports the new version (docs/benchmarks.md,
"Plugin deploy").

musterd (--no-etcd, trusting a fresh key) and integration/sim_agents with N simulated agents
(bench/fleet: each one fetches the deploy's bundle from musterd like muster-agent, then reports
the new version in a PluginsChanged and succeeds). The example plugin v2 is packed, signed and
pushed with the CLI; then `muster plugin deploy sleep-echo@2.0.0 --all --max-concurrency C`
is submitted and `muster agents -o json` polled until all N report 2.0.0.
Usage: bazel run -c opt //bench:plugin_deploy_bench [-- --agents 1000 --max-concurrency 10%]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
from harness import Proc, free_port, wait_until  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("musterd")
    ap.add_argument("cli")
    ap.add_argument("sim_agents")
    ap.add_argument("plugin_so")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--max-concurrency", default="10%")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="plugin-deploy-bench-")
    addr = "127.0.0.1:%d" % free_port()
    cli = [os.path.abspath(a.cli), "--addr", addr]
    procs, sim = [], None
    try:
        subprocess.run(cli + ["keygen", "--out", os.path.join(work, "team")], check=True, capture_output=True)
        procs.append(Proc("musterd", [os.path.abspath(a.musterd), "--insecure", "--no-etcd", "--listen", addr,
                                      "--log-level", "warn", "--max-agents", str(a.agents + 10),
                                      "--max-task-runs", str(a.agents * 4 + 100),
                                      "--trust-key", os.path.join(work, "team.pub")], work))
        wait_until("musterd", lambda: subprocess.run(cli + ["cluster"], capture_output=True).returncode == 0)
        sim = subprocess.Popen([os.path.abspath(a.sim_agents), "--control", addr, "--agents", str(a.agents),
                                "--heartbeat-interval", "5s"], stdout=subprocess.PIPE, text=True)
        line = sim.stdout.readline()
        assert line.startswith("ready"), line
        d = os.path.join(work, "v2")
        os.makedirs(d)
        so = os.path.basename(a.plugin_so)
        shutil.copy(a.plugin_so, os.path.join(d, so))
        with open(os.path.join(d, "plugin.yaml"), "w") as f:
            f.write("type: sleep-echo\nversion: 2.0.0\nabi_version: 1\nos: linux\narch: any\nlibrary: %s\n" % so)
        out = os.path.join(work, "v2.bundle")
        subprocess.run(cli + ["plugin", "pack", d, "--out", out, "--key", os.path.join(work, "team.key")],
                       check=True, capture_output=True)
        subprocess.run(cli + ["plugin", "push", out, "--no-progress"], check=True, capture_output=True)
        size = os.path.getsize(out)

        def on_v2():
            r = subprocess.run(cli + ["-o", "json", "agents"], capture_output=True, text=True, timeout=60)
            n = 0
            for l in r.stdout.splitlines():
                if any(p.get("type") == "sleep-echo" and p.get("version") == "2.0.0"
                       for p in json.loads(l).get("plugins", [])):
                    n += 1
            return n
        t0 = time.monotonic()
        r = subprocess.run(cli + ["-o", "json", "plugin", "deploy", "sleep-echo@2.0.0", "--all",
                                  "--max-concurrency", a.max_concurrency, "--detach"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        submitted = time.monotonic() - t0
        wait_until("all %d agents on 2.0.0" % a.agents, lambda: on_v2() == a.agents, timeout=a.timeout, step=0.2)
        total = time.monotonic() - t0
        print("plugin deploy, %d simulated agents, bundle %d bytes, --max-concurrency %s: submitted in %.2fs, "
              "all agents report 2.0.0 after %.2fs (%.0f agents/s)" % (
                  a.agents, size, a.max_concurrency, submitted, total, a.agents / total))
        print("%d passed, 0 failed" % 1)
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
