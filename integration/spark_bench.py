"""Figures for the spark task type (prints figures, asserts nothing): N concurrent cluster-mode
Spark tasks on one agent tracked against the emulators (integration/emulators/spark), with

- the agent's own CPU (utime+stime of the muster-agent process, not its children) as % of one
  core and its RSS, idle before the tasks and while it tracks all N applications;
- cancel-to-confirmed-kill latency: from just before `muster cancel JOB` to the task's
  finishedAtMs, the task having ended "killed (confirmed)" by the ResourceManager.

Usage: spark_bench.py MUSTERD AGENT CLI LIBMUSTER_SPARK_SO [N [shell]]
(bazel run //integration:spark_bench -- 200; "-- 200 shell" runs N shell tasks `sleep 600`
instead, for the agent's own per-task cost without any Spark tracking)
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spark_test  # noqa: E402
from harness import wait_until  # noqa: E402

N = int(sys.argv[5]) if len(sys.argv) > 5 else 200
SHELL = len(sys.argv) > 6 and sys.argv[6] == "shell"
WINDOW_S = 20.0
KILL_DELAY = "0.2"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def sample(pid, seconds):
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_s(pid) - c0) / (time.monotonic() - t0), rss_kib(pid)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]


def main():
    spark_test.SPARK_SO = os.path.abspath(sys.argv[4])
    c = spark_test.SparkCluster(*sys.argv[1:4])
    try:
        c.start_musterd("--heartbeat-timeout", "20s", "--allow-unsigned-bundles")
        c.start_agent("spark-1", "role=spark", "--heartbeat-interval", "1s", "--allow-unsigned", "--slots", str(N + 8),
                      plugin_dir=c.plugins)
        wait_until("agent", lambda: c.states().get("spark-1") == "AGENT_CONNECTED")
        spark_test.setup_bundle(c)
        pid = c.agents["spark-1"].pid
        time.sleep(2)
        idle_cpu, idle_rss = sample(pid, 5)
        jobs = []
        t0 = time.monotonic()
        for i in range(N):
            if SHELL:
                path = spark_test.job_file(c, "bench-%d" % i, "  - name: app\n    shell: {command: [sleep, \"600\"]}\n")
                rc, out, err = c.cli("submit", "--detach", path)
                jobs.append(out.strip().split()[-1])
                continue
            path = spark_test.job_file(c, "bench-%d" % i, """
  - name: app
    type: spark
    bundle: etl-app@1.0.0
    spark: {master: yarn, deploy_mode: cluster, main_class: a.B, app_resource: lib/etl.jar,
            conf: {spark.emulator.runSeconds: "600", spark.emulator.killDelaySeconds: "%s"}}
""" % KILL_DELAY)
            rc, out, err = c.cli("submit", "--detach", path)
            jobs.append(out.strip().split()[-1])
        submitted_s = time.monotonic() - t0

        def all_tracked():
            if SHELL:
                return all(spark_test.status(c, j)["tasks"][0]["state"] == "RUNNING" for j in jobs)
            apps = c.emu.stats()["apps"]
            return len(apps) == N and all(a["state"] == "RUNNING" for a in apps.values())
        wait_until("%d applications running" % N, all_tracked, timeout=600, step=1)
        ready_s = time.monotonic() - t0
        time.sleep(5)  # every spark-submit has exited; only tracking is left
        track_cpu, track_rss = sample(pid, WINDOW_S)
        lat = []
        sent = {}
        for j in jobs:
            sent[j] = time.time() * 1000
            c.cli("cancel", j)
        for j in jobs:
            st = wait_until("job %s cancelled" % j, lambda j=j: (lambda s: s if s["state"] != "JOB_RUNNING" else None)(
                spark_test.status(c, j)), timeout=120, step=0.2)
            t = st["tasks"][0]
            if "killed (confirmed)" in t.get("message", ""):
                lat.append(int(t["finishedAtMs"]) - sent[j])
        kills = c.emu.stats()["kills"]
        if SHELL:
            print("baseline: %d shell tasks `sleep 600` on one agent, %d CPUs" % (N, os.cpu_count()))
        else:
            print("spark tracking bench: %d cluster-mode YARN tasks on one agent, poll_interval 2s (default), "
                  "emulator kill delay %ss, %d CPUs" % (N, KILL_DELAY, os.cpu_count()))
        print("  submitted %d jobs in %.1fs; all %d applications RUNNING after %.1fs" % (N, submitted_s, N, ready_s))
        print("  agent idle:      %.2f%% of a core, RSS %.1f MiB" % (idle_cpu, idle_rss / 1024.0))
        print("  agent tracking:  %.2f%% of a core over %.0fs, RSS %.1f MiB (+%.1f MiB)" % (
            track_cpu, WINDOW_S, track_rss / 1024.0, (track_rss - idle_rss) / 1024.0))
        if lat:
            print("  cancel -> confirmed kill: %d of %d confirmed; p50 %d ms, p99 %d ms, max %d ms, mean %.0f ms "
                  "(PUT state calls per app: mean %.1f)" % (len(lat), N, pct(lat, 50), pct(lat, 99), max(lat),
                                                           statistics.mean(lat), statistics.mean(kills.values())))
    finally:
        c.stop_all()


if __name__ == "__main__":
    main()
