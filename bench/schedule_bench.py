"""Schedules: fire accuracy and the cost of many schedules (docs/benchmarks.md, "Schedules").

A real etcd, two musterd (leader + follower) and one agent. Measured from etcd's records, per
slot of an every-second schedule: slot time -> job created on the leader (JobRecord
created_at_ms), -> job stored in etcd (the slot record's created_at_ms), -> task started on
the agent (TaskRecord started_at_ms); p50 / p99 / max:
  1. idle, with one schedule;
  2. with N more schedules (default 1,000, hourly, created through the CLI), after the leader's
     CPU and RSS were sampled for 30 s with them (and without them, before);
  3. across a kill -9 of the leader: the slots of the failover window (catch-up all).
Usage: bazel run -c opt //bench:schedule_bench [-- --schedules N --seconds S]
"""
import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
from harness import wait_until  # noqa: E402
from ha_test import HA  # noqa: E402


def etcd_kvs(c, prefix):
    r = subprocess.run(["/usr/bin/etcdctl", "--endpoints", c.endpoint, "get", "--prefix",
                        "/muster/" + prefix, "-w", "json"], capture_output=True, text=True,
                       check=True)
    return {base64.b64decode(kv["key"]).decode()[8:]: base64.b64decode(kv.get("value", "")).decode()
            for kv in json.loads(r.stdout).get("kvs", [])}


def delays(c, name, lo=0, hi=1 << 62):
    """[(slot, created, stored, started)] in ms after the slot, for slots in [lo, hi]."""
    slots = {k: json.loads(v)["slot"] for k, v in etcd_kvs(c, "schedules/%s/slots/" % name).items()}
    jobs = etcd_kvs(c, "jobs/")
    tasks = etcd_kvs(c, "tasks/")
    out = []
    for s in slots.values():
        t = int(s["slot_s"])
        if s["state"] != "created" or s.get("manual") or not lo <= t <= hi:
            continue
        job = json.loads(jobs.get("jobs/" + s["job_id"], "{}"))
        task = json.loads(tasks.get("tasks/%s/0.0" % s["job_id"], "{}"))
        created = int(job.get("created_at_ms", 0)) - t * 1000
        stored = int(s["created_at_ms"]) - t * 1000
        started = int(task.get("started_at_ms", 0)) - t * 1000 if task.get("started_at_ms") else None
        out.append((t, created, stored, started))
    return sorted(out)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def report(what, rows):
    print("%s: %d slots" % (what, len(rows)))
    for i, label in ((1, "slot -> job created"), (2, "slot -> job stored in etcd"),
                     (3, "slot -> task started on the agent")):
        xs = [r[i] for r in rows if r[i] is not None]
        if xs:
            print("  %-34s p50 %5d ms  p99 %5d ms  max %5d ms" %
                  (label, pct(xs, 50), pct(xs, 99), max(xs)))


def proc_sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = int(parts[11]) + int(parts[12])
    with open("/proc/%d/status" % pid) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    return ticks / os.sysconf("SC_CLK_TCK"), rss


def cpu_over(pid, seconds):
    c0, _ = proc_sample(pid)
    time.sleep(seconds)
    c1, rss = proc_sample(pid)
    return (c1 - c0) / seconds * 100.0, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("musterd")
    ap.add_argument("agent")
    ap.add_argument("cli")
    ap.add_argument("--schedules", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=40)
    a = ap.parse_args()
    c = HA(a.musterd, a.agent, a.cli)
    try:
        c.start_etcd()
        addr_a = c.start_member("cp-a")
        leader = wait_until("a leader", c.leader, timeout=10)
        addr_b = c.start_member("cp-b")
        c.start_ha_agent("a1", addr_a + "," + addr_b)
        wait_until("a1 connected", lambda: "a1" in c.connected_at(leader[1]))
        pid = c.members[leader[0]][0].pid

        cpu0, rss0 = cpu_over(pid, 10)
        c.cli_at(leader[1], "schedule", "create", "acc", "--cron", "* * * * * *", "--catch-up",
                 "all", "--catch-up-window", "1m", "--hosts", "a1", "--wait", "30s", "--", "true")
        t0 = int(time.time())
        time.sleep(a.seconds)
        report("1. idle, 1 schedule (%d s)" % a.seconds, delays(c, "acc", t0 + 1, int(time.time()) - 2))

        start = time.monotonic()
        for i in range(a.schedules):
            c.cli_at(leader[1], "schedule", "create", "bulk-%05d" % i, "--cron", "%d * * * *" % (i % 60),
                     "--hosts", "a1", "--", "true")
        took = time.monotonic() - start
        print("2. %d more schedules created through the CLI in %.1f s (%.1f ms each, a process "
              "per call)" % (a.schedules, took, took * 1000 / a.schedules))
        t1 = int(time.time())
        cpu1, rss1 = cpu_over(pid, 30)
        report("   with %d schedules (30 s)" % (a.schedules + 1), delays(c, "acc", t1 + 1, int(time.time()) - 2))
        print("   leader CPU %.2f%% -> %.2f%% of a core, RSS %d -> %d KiB (1 -> %d schedules)" %
              (cpu0, cpu1, rss0, rss1, a.schedules + 1))
        s = time.monotonic()
        rc, out, _ = c.cli_at(leader[1], "schedule", "ls")
        print("   `muster schedule ls` of %d schedules: %.0f ms, %d lines" %
              (a.schedules + 1, (time.monotonic() - s) * 1000, len(out.splitlines())))

        name, _ = leader
        p, _ = c.members.pop(name)
        kill_at = time.time()
        p.kill()
        new = wait_until("a new leader", c.leader, timeout=20)
        took = time.time() - kill_at
        time.sleep(10)
        rows = delays(c, "acc", int(kill_at) - 2, int(time.time()) - 2)
        print("3. kill -9 of the leader: %s leads after %.1f s" % (new[0], took))
        report("   slots from 2 s before the kill to 10 s after", rows)
        per = {}
        for k, v in etcd_kvs(c, "jobs/").items():
            if "/" in k[5:]:
                continue
            lb = json.loads(v).get("spec", {}).get("labels", {})
            if lb.get("schedule") == "acc":
                per.setdefault(lb["schedule.slot"], 0)
                per[lb["schedule.slot"]] += 1
        print("   jobs per slot of 'acc': max %d over %d slots" % (max(per.values()), len(per)))
    finally:
        for p in c.procs():
            if p.alive():
                p.kill()


if __name__ == "__main__":
    main()
