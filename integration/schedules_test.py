"""Schedules end to end on a real etcd with real agents (issue 20, docs/scheduling.md).

The operator's story: a bad schedule is refused naming the problem and leaves nothing in etcd;
a schedule firing every second creates jobs that run on an agent; pause stops it, resume starts
it again, trigger fires it now, rm removes it. A long job with overlap skip makes the slots in
between skipped, queue waits, cancel-previous cancels. Across two kill -9 failovers of three
musterd, every slot of an every-second schedule (catch-up all) is claimed exactly once and
makes at most one job (none when skipped): counted from the job records and slot records
in etcd. A leader that dies right after claiming a slot (the test hook
MUSTER_TEST_SCHEDULE_EXIT_AFTER_CLAIM) leaves the job to the next leader, which creates it
once. After the only member was down, catch-up all fires the missed slots and none skips them.
"""
import base64
import json
import os
import subprocess
import sys
import time

from harness import free_port, wait_until
from ha_test import HA, main

PREFIX = "/muster/"


def etcd_kvs(c, prefix):
    r = subprocess.run(["/usr/bin/etcdctl", "--endpoints", c.endpoint, "get", "--prefix",
                        PREFIX + prefix, "-w", "json"], capture_output=True, text=True, check=True)
    out = {}
    for kv in json.loads(r.stdout).get("kvs", []):
        key = base64.b64decode(kv["key"]).decode()[len(PREFIX):]
        out[key] = base64.b64decode(kv.get("value", "")).decode()
    return out


def slot_records(c, name):
    """slot key suffix -> ScheduleSlot (as stored)."""
    pre = "schedules/%s/slots/" % name
    return {k[len(pre):]: json.loads(v)["slot"] for k, v in etcd_kvs(c, pre).items()}


def jobs_per_slot(c, name):
    """slot (int) -> [job ids] of stored, ready jobs labelled with the schedule."""
    kvs = etcd_kvs(c, "jobs/")
    per = {}
    for k, v in kvs.items():
        if "/" in k[5:]:
            continue
        if k + "/ready" not in kvs:
            continue
        labels = json.loads(v).get("spec", {}).get("labels", {})
        if labels.get("schedule") == name:
            per.setdefault(int(labels["schedule.slot"]), []).append(k[5:])
    return per


def show(c, addr, name):
    rc, out, err = c.cli_at(addr, "-o", "json", "schedule", "show", name)
    return json.loads(out)


def one_member_and_agent(c, *extra):
    c.start_etcd()
    addr = c.start_member("cp-a", *extra)
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    c.start_ha_agent("a1", addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    return addr


def test_refusals_store_nothing(c):
    addr = one_member_and_agent(c)
    cases = [
        (["--cron", "61 * * * *"], "cron field 1 (minute): '61'"),
        (["--cron", "* * * * * * *"], "got 7"),
        (["--cron", "0 0 L * *"], "'L' (last)"),
        (["--cron", "* * * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--cron", "* * * * *", "--jitter", "soon"], "--jitter"),
        (["--cron", "* * * * *", "--overlap", "sometimes"],
         "overlap: 'sometimes' is not one of skip, queue, cancel-previous"),
        (["--cron", "* * * * *", "--catch-up", "some"], "catch-up: 'some' is not one of"),
        (["--cron", "* * * * *", "--catch-up-window", "forever"], "--catch-up-window"),
    ]
    for flags, want in cases:
        rc, out, err = c.cli_at(addr, "schedule", "create", "bad", *flags, "--hosts", "a1", "--",
                                "true", check=False)
        assert rc == 2 and want in err, (flags, rc, err)
    # a job spec SubmitJob would refuse is refused at create time
    rc, out, err = c.cli_at(addr, "schedule", "create", "bad", "--cron", "* * * * *", "--hosts",
                            "nosuch", "--", "true", check=False)
    assert rc != 0 and "nosuch" in err, (rc, err)
    rc, out, err = c.cli_at(addr, "schedule", "create", "bad name", "--cron", "* * * * *",
                            "--hosts", "a1", "--", "true", check=False)
    assert rc == 2 and "schedule name" in err, err
    assert etcd_kvs(c, "schedules/") == {}, etcd_kvs(c, "schedules/")
    rc, out, err = c.cli_at(addr, "-o", "json", "schedule", "ls")
    assert out.strip() == "", out


def metric(port, name):
    r = subprocess.run(["curl", "-sf", "-m", "2", "http://127.0.0.1:%d/metrics" % port],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_fires_pause_resume_trigger_rm(c):
    mport = free_port()
    addr = one_member_and_agent(c, "--metrics-listen", "127.0.0.1:%d" % mport)
    c.cli_at(addr, "schedule", "create", "every", "--cron", "* * * * * *", "--hosts", "a1", "--",
             "echo tick")
    wait_until("3 jobs succeeded", lambda: sum(
        1 for s in show(c, addr, "every").get("recent", [])
        if s.get("jobState") == "JOB_SUCCEEDED") >= 3, timeout=20)
    s = show(c, addr, "every")
    assert s["kind"] == "schedule" and len(s["nextFireS"]) == 3, s
    assert s["nextFireS"][1] - s["nextFireS"][0] == 1, s
    rc, out, _ = c.cli_at(addr, "schedule", "ls")
    assert "every" in out and "* * * * * *" in out and "JOB_" not in out, out
    # the jobs really ran on the agent: their output
    job = [x for x in s["recent"] if x.get("jobState") == "JOB_SUCCEEDED"][0]["jobId"]
    rc, out, _ = c.cli_at(addr, "logs", job)
    assert "tick" in out, out

    c.cli_at(addr, "schedule", "pause", "every")
    time.sleep(1.5)  # a slot in flight may still land
    n_paused = len(slot_records(c, "every"))
    time.sleep(3)
    assert len(slot_records(c, "every")) == n_paused, "slots fired while paused"
    assert show(c, addr, "every").get("nextFireS", []) == [], "next fire times while paused"

    rc, out, _ = c.cli_at(addr, "schedule", "trigger", "every")  # paused: fires anyway
    job = out.strip()
    assert job.startswith("j-"), out
    wait_until("the triggered job to succeed", lambda: (c.job(addr, job) or {}).get("state") ==
               "JOB_SUCCEEDED")
    manual = [s for s in slot_records(c, "every").values() if s.get("manual")]
    assert len(manual) == 1 and manual[0]["job_id"] == job and manual[0]["state"] == "created", manual

    c.cli_at(addr, "schedule", "resume", "every")
    wait_until("slots again after resume", lambda: len(slot_records(c, "every")) >= n_paused + 4,
               timeout=10)
    for slot, jobs in jobs_per_slot(c, "every").items():
        assert len(jobs) == 1, (slot, jobs)

    assert metric(mport, "muster_schedule_slots_fired_total") >= 5, metric(
        mport, "muster_schedule_slots_fired_total")
    assert metric(mport, "muster_schedules") == 1
    rc, out, _ = c.cli_at(addr, "schedule", "rm", "every")
    assert "removed" in out, out
    assert etcd_kvs(c, "schedules/") == {}, etcd_kvs(c, "schedules/")
    rc, out, err = c.cli_at(addr, "schedule", "show", "every", check=False)
    assert rc != 0 and "no schedule 'every'" in err, err


def test_overlap_skip_with_a_long_job(c):
    addr = one_member_and_agent(c)
    c.cli_at(addr, "schedule", "create", "long", "--cron", "* * * * * *", "--overlap", "skip",
             "--hosts", "a1", "--", "sleep 3")
    time.sleep(7)
    c.cli_at(addr, "schedule", "pause", "long")
    time.sleep(1)
    slots = sorted(slot_records(c, "long").items())
    created = [s for _, s in slots if s["state"] == "created"]
    skipped = [s for _, s in slots if s["state"] == "skipped"]
    assert 2 <= len(created) <= 3, slots
    assert len(skipped) >= 3, slots
    assert all("still running (overlap skip)" in s["reason"] for s in skipped), skipped
    # a created slot's previous job had ended: slot times of created jobs are >= 3 s apart
    times = [int(s["slot_s"]) for s in created]
    assert all(b - a >= 3 for a, b in zip(times, times[1:])), times


def job_records(c, name):
    """[(slot, JobRecord)] of a schedule's stored jobs, by slot."""
    kvs = etcd_kvs(c, "jobs/")
    out = []
    for k, v in kvs.items():
        if "/" in k[5:] or k + "/ready" not in kvs:
            continue
        rec = json.loads(v)
        labels = rec.get("spec", {}).get("labels", {})
        if labels.get("schedule") == name:
            out.append((int(labels["schedule.slot"]), rec))
    return sorted(out, key=lambda x: x[0])


def test_overlap_queue_and_cancel_previous(c):
    addr = one_member_and_agent(c)
    job = os.path.join(c.workdir, "sleep2.yaml")
    with open(job, "w") as f:
        f.write("name: sleeper\ntarget: {hosts: [a1]}\ntasks:\n  - name: nap\n"
                "    shell: {script: 'sleep 2'}\n")
    c.cli_at(addr, "schedule", "create", "q", "--cron", "* * * * * *", "--overlap", "queue", job)
    c.cli_at(addr, "schedule", "create", "cp", "--cron", "*/2 * * * * *", "--overlap",
             "cancel-previous", "--hosts", "a1", "--", "sleep 30")
    time.sleep(9)
    c.cli_at(addr, "schedule", "pause", "q")
    c.cli_at(addr, "schedule", "pause", "cp")
    time.sleep(3)
    # queue: one slot waits for the running job, further ones are skipped; jobs never overlap
    slots = slot_records(c, "q").values()
    assert any("a slot is queued already" in s.get("reason", "") for s in slots), list(slots)
    jobs = job_records(c, "q")
    assert len(jobs) >= 2 and all(r["spec"]["name"] == "sleeper" for _, r in jobs), jobs
    for (_, a), (_, b) in zip(jobs, jobs[1:]):
        assert int(b["created_at_ms"]) >= int(a["finished_at_ms"]) > 0, (a, b)
    # cancel-previous: every job but the newest was cancelled by the next slot
    jobs = job_records(c, "cp")
    assert len(jobs) >= 3, jobs
    for _, r in jobs[:-1]:
        assert r["state"] == 5 and r.get("user_cancelled"), r


def three_members(c):
    c.start_etcd()
    addrs = [c.start_member(n) for n in ("cp-a", "cp-b", "cp-c")]
    leader = wait_until("one leader", c.leader, timeout=10)
    c.start_ha_agent("a1", ",".join(addrs))
    wait_until("a1 connected", lambda: "a1" in c.connected_at(leader[1]))
    return addrs


def kill_leader(c):
    name, addr = c.leader()
    p, _ = c.members.pop(name)
    p.kill()
    new = wait_until("a new leader", c.leader, timeout=15)
    assert new[0] != name
    return new


def test_exactly_once_across_two_leader_kills(c):
    addrs = three_members(c)
    leader = c.leader()
    c.cli_at(leader[1], "schedule", "create", "sec", "--cron", "* * * * * *", "--catch-up", "all",
             "--catch-up-window", "1m", "--hosts", "a1", "--", "true")
    time.sleep(10)
    leader = kill_leader(c)
    time.sleep(10)
    # the follower serves reads from its watched copy
    follower = [addr for n, (_, addr) in c.members.items() if n != leader[0]][0]
    fs = show(c, follower, "sec")
    assert fs["spec"]["catchUp"] == "all" and fs.get("last", {}).get("state") == "created", fs
    leader = kill_leader(c)
    time.sleep(10)
    c.cli_at(leader[1], "schedule", "pause", "sec")
    time.sleep(2)
    slots = slot_records(c, "sec")
    per = jobs_per_slot(c, "sec")
    times = sorted(int(s["slot_s"]) for s in slots.values() if not s.get("manual"))
    assert len(times) >= 30, times
    # every second between the first and the last slot was claimed once (catch-up all) ...
    assert times == list(range(times[0], times[-1] + 1)), times
    # ... and created exactly one job, named by its record; a slot whose previous job was still
    # running (a task in flight across the failover waits for its agent) is skipped (overlap
    # skip), and then has no job at all
    created = 0
    for k, s in slots.items():
        slot = int(s["slot_s"])
        if s["state"] == "skipped":
            assert "still running" in s["reason"] and slot not in per, (k, s, per.get(slot))
            continue
        assert s["state"] == "created", (k, s)
        assert per.get(slot) == [s["job_id"]], (slot, per.get(slot), s)
        created += 1
    assert created >= 25, created
    assert all(len(j) == 1 for j in per.values()), per
    assert set(per) <= set(times), (sorted(per), times)


def test_claim_then_crash_is_recovered(c):
    c.start_etcd()
    os.environ["MUSTER_TEST_SCHEDULE_EXIT_AFTER_CLAIM"] = "crashy"
    try:
        a = c.start_member("cp-a")
    finally:
        del os.environ["MUSTER_TEST_SCHEDULE_EXIT_AFTER_CLAIM"]
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    b = c.start_member("cp-b")
    c.start_ha_agent("a1", a + "," + b)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(a))
    # --wait: the jobs of the new leader's first seconds wait for the agent to come back
    c.cli_at(a, "schedule", "create", "crashy", "--cron", "* * * * * *", "--hosts", "a1",
             "--wait", "20s", "--", "true")
    pa, _ = c.members["cp-a"]
    wait_until("cp-a to exit after its claim", lambda: not pa.alive(), timeout=10)
    pa.p.wait()
    assert pa.p.returncode == 3 and "exiting after the claim" in pa.text(), pa.text()[-2000:]
    del c.members["cp-a"]
    first = sorted(slot_records(c, "crashy").items())[0]
    wait_until("cp-b to lead", lambda: (c.leader() or ("",))[0] == "cp-b", timeout=15)
    wait_until("the claimed slot's job created", lambda: slot_records(c, "crashy")[first[0]]
               ["state"] == "created", timeout=15)
    s = slot_records(c, "crashy")[first[0]]
    per = jobs_per_slot(c, "crashy")
    assert per[int(s["slot_s"])] == [s["job_id"]], (s, per)
    assert "without its job" in c.members["cp-b"][0].text(), "recovery not logged"
    wait_until("slots go on", lambda: len(slot_records(c, "crashy")) >= 3, timeout=10)
    c.cli_at(b, "schedule", "pause", "crashy")
    time.sleep(1.5)
    assert all(len(j) == 1 for j in jobs_per_slot(c, "crashy").values())
    wait_until("the recovered job to succeed",
               lambda: (c.job(b, s["job_id"]) or {}).get("state") == "JOB_SUCCEEDED")


def test_catch_up_after_downtime(c):
    addr = one_member_and_agent(c)
    for name, mode in (("all", "all"), ("none", "none"), ("latest", "latest")):
        c.cli_at(addr, "schedule", "create", name, "--cron", "*/2 * * * * *", "--catch-up", mode,
                 "--catch-up-window", "1m", "--hosts", "a1", "--", "true")
    time.sleep(3)
    p, _ = c.members.pop("cp-a")
    assert p.stop() == 0
    down_from = time.time()
    time.sleep(7)
    down_to = time.time()
    addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    time.sleep(3)
    for name in ("all", "none", "latest"):
        c.cli_at(addr, "schedule", "pause", name)
    time.sleep(1)
    # slots of the downtime more than 2 s (the on-time margin) before the member was back
    lo, hi = down_from + 1, down_to - 2
    missed = lambda name: [int(s["slot_s"]) for s in slot_records(c, name).values()
                           if lo < int(s["slot_s"]) < hi]
    # all: every slot of the downtime; none: not one; latest: one, the newest
    want = [t for t in range(int(lo), int(hi) + 1) if t % 2 == 0 and lo < t < hi]
    assert len(want) >= 2, (lo, hi)
    assert sorted(missed("all")) == want, (missed("all"), want)
    assert missed("none") == [], missed("none")
    assert len(missed("latest")) <= 1, missed("latest")
    for name in ("all", "none", "latest"):
        assert all(len(j) == 1 for j in jobs_per_slot(c, name).values())


if __name__ == "__main__":
    main([
        test_refusals_store_nothing,
        test_fires_pause_resume_trigger_rm,
        test_overlap_skip_with_a_long_job,
        test_overlap_queue_and_cancel_previous,
        test_exactly_once_across_two_leader_kills,
        test_claim_then_crash_is_recovered,
        test_catch_up_after_downtime,
    ])
