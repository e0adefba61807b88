"""Job dependencies end to end on a real etcd with a real agent (issue 20 item 5,
docs/scheduling.md#job-dependencies).

The operator's story: job B, submitted `after: [A]`, waits PENDING with the reason shown
while A runs, then runs after it; when A fails, B (on: success) ends CANCELLED without
running, saying which dependency failed, while C (on: completion) runs anyway. An unknown
job in `after` and a job listed twice are refused at submit and nothing runs. The leader is
killed (kill -9) while B waits: the next leader shows B still waiting, then runs it once A
is done.
"""
import json
import os
import time

from harness import job_status, wait_until
from ha_test import HA, main


def job_file(c, name, script, after=None, on=None):
    spec = {"name": name, "target": {"all": True},
            "tasks": [{"name": "t", "shell": {"script": script}}]}
    if after is not None:
        spec["after"] = after
    if on is not None:
        spec["on"] = on
    path = os.path.join(c.workdir, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def submit(c, addr, name, script, after=None, on=None, check=True):
    return c.cli_at(addr, "submit", "--detach", job_file(c, name, script, after, on),
                    check=check)


def run_detached(c, addr, script):
    rc, out, err = c.cli_at(addr, "run", "--detach", "--all", "--", script)
    return out.strip()


def status(c, addr, job_id):
    """The job's status whatever its outcome (status exits non-zero for a failed job)."""
    rc, out, _ = c.cli_at(addr, "-o", "json", "status", job_id, check=False)
    return job_status(out) if '"kind":"job"' in out.replace(" ", "") else None


def ended(c, addr, job_id):
    j = status(c, addr, job_id)
    return j if j and j["state"] not in ("JOB_PENDING", "JOB_RUNNING") else None


def marks_of(path):
    return open(path).read().split() if os.path.exists(path) else []


def one_member(c):
    c.start_etcd()
    addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    c.start_ha_agent("a1", addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    return addr


def test_chain_failure_and_completion(c):
    addr = one_member(c)
    marks = os.path.join(c.workdir, "marks")
    a = run_detached(c, addr, "sleep 2; echo A >> %s" % marks)
    _, out, _ = submit(c, addr, "b", "echo B >> %s" % marks, after=[a])
    b = out.strip()
    st = status(c, addr, b)
    assert st["state"] == "JOB_PENDING", st
    assert st.get("waitingFor", "").startswith("waiting for job %s (JOB_" % a), st
    st = wait_until("B to end", lambda: ended(c, addr, b), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert not st.get("waitingFor"), st
    assert marks_of(marks) == ["A", "B"], marks_of(marks)

    # A fails: B (on: success) is not run and says why; C (on: completion) runs
    f = run_detached(c, addr, "sleep 1; exit 3")
    _, out, _ = submit(c, addr, "b2", "echo B2 >> %s" % marks, after=[f])
    b2 = out.strip()
    _, out, _ = submit(c, addr, "c", "echo C >> %s" % marks, after=[f], on="completion")
    cj = out.strip()
    st = wait_until("B2 to end", lambda: ended(c, addr, b2), timeout=30)
    assert st["state"] == "JOB_CANCELLED", st
    why = "not run: dependency job %s ended JOB_FAILED (on: success)" % f
    assert all(t.get("message") == why for t in st["tasks"]), st
    st = wait_until("C to end", lambda: ended(c, addr, cj), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert marks_of(marks) == ["A", "B", "C"], marks_of(marks)

    # `muster submit` (following, not detached) waits with the job and ends with it
    a3 = run_detached(c, addr, "sleep 1; echo A3 >> %s" % marks)
    rc, out, err = c.cli_at(addr, "submit", job_file(c, "d", "echo D >> %s" % marks, after=[a3]),
                            check=False, timeout=60)
    assert rc == 0, (rc, out, err)
    assert marks_of(marks)[-2:] == ["A3", "D"], marks_of(marks)

    # refused at submit: unknown job, listed twice, a bad `on`
    for after, on, want in [(["j-nope-1"], None, "after[0]: no job 'j-nope-1'"),
                            ([a, a], None, "after[1]: '%s' listed twice" % a),
                            ([a], "failure", "on: 'failure' is not success or completion")]:
        rc, out, err = submit(c, addr, "bad", "echo BAD >> %s" % marks, after=after, on=on,
                              check=False)
        assert rc != 0 and want in err, (rc, out, err)
    time.sleep(1)
    assert "BAD" not in marks_of(marks)
    rc, out, _ = c.cli_at(addr, "status", b2, check=False)
    assert "not run: dependency job %s ended JOB_FAILED" % f in out, out


def test_after_a_schedule(c):
    addr = one_member(c)
    marks = os.path.join(c.workdir, "marks")
    sched = job_file(c, "nightly", "sleep 2; echo S >> %s" % marks)
    c.cli_at(addr, "schedule", "create", "nightly", "--cron", "0 0 1 1 *", sched)
    c.cli_at(addr, "schedule", "create", "never", "--cron", "0 0 1 1 *", sched)
    rc, out, err = submit(c, addr, "b", "echo B >> %s" % marks, after=["never"], check=False)
    assert rc == 2 and "after[0]: schedule 'never' has not made a job yet" in err, (rc, err)
    rc, out, err = submit(c, addr, "b", "echo B >> %s" % marks, after=["nosuch"], check=False)
    assert rc == 2 and "no job 'nosuch' and no schedule of that name" in err, (rc, err)
    _, out, _ = c.cli_at(addr, "schedule", "trigger", "nightly")
    s_job = out.strip()
    _, out, _ = submit(c, addr, "b", "echo B >> %s" % marks, after=["nightly"])
    b = out.strip()
    st = status(c, addr, b)
    assert st["spec"]["after"] == [s_job] and st["state"] == "JOB_PENDING", st
    st = wait_until("B to end", lambda: ended(c, addr, b), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert marks_of(marks) == ["S", "B"], marks_of(marks)


def test_waiting_job_survives_leader_failover(c):
    c.start_etcd()
    a_addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    b_addr = c.start_member("cp-b")
    c.start_ha_agent("a1", a_addr + "," + b_addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(a_addr))
    marks = os.path.join(c.workdir, "marks")
    a = run_detached(c, a_addr, "echo A-start >> %s; sleep 6; echo A >> %s" % (marks, marks))
    _, out, _ = submit(c, a_addr, "b", "echo B >> %s" % marks, after=[a])
    b = out.strip()
    wait_until("A to start", lambda: "A-start" in marks_of(marks))
    p, _ = c.members.pop("cp-a")
    p.kill()
    wait_until("cp-b to lead", lambda: (c.cluster_at(b_addr) or {}).get("leader"), timeout=10,
               step=0.1)
    wait_until("a1 on the new leader", lambda: "a1" in c.connected_at(b_addr), timeout=10)
    st = status(c, b_addr, b)
    assert st["state"] == "JOB_PENDING" and "B" not in marks_of(marks), (st, marks_of(marks))
    st = wait_until("B to end", lambda: ended(c, b_addr, b), timeout=40)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert marks_of(marks) == ["A-start", "A", "B"], marks_of(marks)


def template_file(c, name, script, params):
    path = os.path.join(c.workdir, name + ".yaml")
    with open(path, "w") as f:
        f.write("params:\n")
        for p in params:
            f.write("  - %s\n" % json.dumps(p))
        f.write("job:\n  target: {all: true}\n  tasks:\n    - name: t\n      shell: {script: %s}\n"
                % json.dumps(script))
    return path


def test_templates_dispatch_with_params(c):
    addr = one_member(c)
    b_addr = c.start_member("cp-b")
    marks = os.path.join(c.workdir, "marks")
    params = [{"name": "version", "required": True},
              {"name": "region", "default_value": "eu"}]
    path = template_file(c, "deploy", "echo ${param.version}-${param.region} '$${param.version}' >> "
                         + marks, params)
    c.cli_at(addr, "job", "template", "create", "deploy", path)
    rc, out, err = c.cli_at(addr, "job", "template", "create", "deploy", path, check=False)
    assert rc == 2 and "template 'deploy' exists already" in err, (rc, out, err)
    bad = template_file(c, "bad", "echo ${param.nope}", params)
    rc, out, err = c.cli_at(addr, "job", "template", "create", "bad", bad, check=False)
    assert rc == 2 and "${param.nope}: the template declares no param 'nope'" in err, (rc, err)
    _, out, _ = c.cli_at(addr, "job", "template", "ls")
    assert "deploy" in out and "bad" not in out and "version (required), region=eu" in out, out
    # the follower reads the stored record
    wait_until("cp-b to hold the template",
               lambda: "deploy" in c.cli_at(b_addr, "job", "template", "ls", check=False)[1])

    rc, out, err = c.cli_at(addr, "dispatch", "deploy", "version=4.2", check=False)
    assert rc == 0, (rc, out, err)
    assert open(marks).read().split("\n")[0] == "4.2-eu ${param.version}", open(marks).read()
    rc, out, err = c.cli_at(addr, "dispatch", "--detach", "deploy", "version=5", "region=us=1")
    st = wait_until("the dispatched job to end", lambda: ended(c, addr, out.strip()))
    assert st["state"] == "JOB_SUCCEEDED", st
    assert "5-us=1 ${param.version}" in open(marks).read(), open(marks).read()

    for args, want in [(["region=us"], "missing required param 'version'"),
                       (["version=1", "colour=red"],
                        "unknown param 'colour' (the template declares: version, region)"),
                       (["version=1", "version=2"], "param 'version' given twice")]:
        rc, out, err = c.cli_at(addr, "dispatch", "deploy", *args, check=False)
        assert rc == 2 and want in err, (args, rc, out, err)
    assert len(open(marks).read().splitlines()) == 2, open(marks).read()[-300:]

    # 1 MiB of values (8 params of 127 KiB: one argv string holds at most 128 KiB) runs;
    # one more KiB is refused
    names = ["p%d" % i for i in range(9)]
    big = template_file(c, "big", "printf %s " + "".join("${param.%s}" % n for n in names)
                        + " | wc -c >> " + marks,
                        [{"name": n, "default_value": ""} for n in names])
    c.cli_at(addr, "job", "template", "create", "big", big)
    chunk = 127 * 1024
    args = ["%s=%s" % (n, "v" * chunk) for n in names[:8]]
    rc, out, err = c.cli_at(addr, "dispatch", "big", *args, check=False, timeout=60)
    assert rc == 0, (rc, out[-500:], err[-500:])
    assert open(marks).read().split()[-1] == str(8 * chunk), open(marks).read()[-200:]
    rc, out, err = c.cli_at(addr, "dispatch", "big", *(args + ["p8=" + "v" * 8193]),
                            check=False, timeout=60)
    assert rc != 0 and "more than 1048576 bytes (at 'p8')" in err, (rc, err[-500:])

    rc, out, err = c.cli_at(addr, "job", "template", "rm", "deploy")
    assert "template deploy removed" in out, out
    rc, out, err = c.cli_at(addr, "dispatch", "deploy", "version=1", check=False)
    assert rc != 0 and "no template 'deploy'" in err, (rc, err)


if __name__ == "__main__":
    main([
        test_templates_dispatch_with_params,
        test_chain_failure_and_completion,
        test_after_a_schedule,
        test_waiting_job_survives_leader_failover,
    ])
