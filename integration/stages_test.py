"""Jobs with stages end to end on a real etcd, real musterd and real agents with labels
(issue 20 item 4, docs/scheduling.md#stages).

The operator's story: a rollout as a playbook of plays. `drain` takes the load balancer out
and says which port it drained; `deploy` runs on the web hosts with that port and the drained
hosts put into its script, and fails on one host; `notify` (when: always) still runs and is
told which hosts succeeded and which failed; `smoke` (no when) is skipped; `rollback`
(when: on_failure) runs. `muster status` shows every stage with its counts and runs, JSON
carries them, a dry run shows each stage's hosts, and bad stage files are refused naming
FILE:LINE:COL. Then the leader is killed (kill -9) in the middle of a stage: the next leader
neither repeats the stage before nor loses the ones after.
"""
import json
import os

from harness import wait_until
from ha_test import HA, main
from deps_test import ended, run_detached, status, submit


def marks_of(path):
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


def fleet(c):
    c.start_etcd()
    addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    for agent, role in [("lb1", "lb"), ("web1", "web"), ("web2", "web")]:
        c.start_ha_agent(agent, addr, extra=["--labels", "role=" + role])
    wait_until("agents connected", lambda: {"lb1", "web1", "web2"} <= c.connected_at(addr))
    return addr


def write(c, name, text):
    path = os.path.join(c.workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


PLAYBOOK = """
name: rollout
stages:
  - name: drain
    target: {selector: role=lb}
    tasks:
      - name: off
        shell: {script: "echo drain $MUSTER_AGENT_ID >> MARKS; echo 'param port=8080' >&3"}
  - name: deploy
    target: {selector: role=web}
    rollout: {max_concurrency: 1}
    tasks:
      - name: up
        shell:
          script: |
            echo deploy $MUSTER_AGENT_ID port=${stages.drain.lb1.off.port} drained=${stages.drain.ok_hosts} >> MARKS
            test "$MUSTER_AGENT_ID" != web2
  - name: notify
    when: always
    target: {selector: role=lb}
    tasks:
      - name: say
        shell: {script: "echo notify ok=${stages.deploy.ok_hosts} failed=${stages.deploy.failed_hosts} >> MARKS"}
  - name: smoke
    target: {selector: role=web}
    tasks:
      - shell: {script: "echo SMOKE >> MARKS"}
  - name: rollback
    when: on_failure
    target: {hosts: [web2]}
    tasks:
      - name: back
        shell: {script: "echo rollback $MUSTER_AGENT_ID >> MARKS"}
"""


def test_playbook_with_a_failing_stage(c):
    addr = fleet(c)
    marks = os.path.join(c.workdir, "marks")
    path = write(c, "rollout.yaml", PLAYBOOK.replace("MARKS", marks))

    # the plan: each stage's hosts, nothing run
    rc, out, err = c.cli_at(addr, "submit", "--plan", path, check=False)
    assert rc == 0, (rc, out, err)
    assert "plan for job 'rollout': 5 stages" in out, out
    assert "stage drain: 1 host: lb1" in out and "stage deploy: 2 hosts: web1, web2" in out, out
    assert "stage rollback: 1 host: web2" in out and "deploy/up (shell)" in out, out
    assert marks_of(marks) == [], marks_of(marks)

    rc, out, err = c.cli_at(addr, "submit", "--detach", path)
    job = out.strip()
    st = wait_until("the job to end", lambda: ended(c, addr, job), timeout=60)
    assert st["state"] == "JOB_FAILED", st
    stages = {s["name"]: s for s in st["stages"]}
    assert [s["name"] for s in st["stages"]] == ["drain", "deploy", "notify", "smoke", "rollback"]
    want = {"drain": "succeeded", "deploy": "failed", "notify": "succeeded", "smoke": "skipped",
            "rollback": "succeeded"}
    assert {n: s["state"] for n, s in stages.items()} == want, st["stages"]
    assert stages["deploy"]["jobId"] == job + ".deploy", stages["deploy"]
    assert stages["deploy"]["counts"]["succeeded"] == 1 and stages["deploy"]["counts"]["failed"] == 1
    assert "earlier stage failed" in stages["smoke"]["message"], stages["smoke"]
    assert marks_of(marks) == [
        "drain lb1",
        "deploy web1 port=8080 drained=lb1",
        "deploy web2 port=8080 drained=lb1",
        "notify ok=web1 failed=web2",
        "rollback web2",
    ], marks_of(marks)

    # the stage's own job names its job and stage; its runs carry the values put in
    sj = status(c, addr, job + ".deploy")
    assert sj["parentJob"] == job and sj["stage"] == "deploy", sj
    assert "drained=lb1" in sj["spec"]["tasks"][0]["shell"]["script"], sj["spec"]

    rc, out, _ = c.cli_at(addr, "status", job, check=False)
    assert rc == 1, out
    for line in ["drain", "deploy", "notify", "smoke", "rollback", "stage deploy:"]:
        assert line in out, out
    assert "1 succeeded" in out and "1 failed" in out, out
    assert "'rollout': failed, 5 targets: 4 succeeded, 1 failed" in out.splitlines()[0], out
    assert st["counts"]["targets"] == 5 and st["counts"]["failed"] == 1, st["counts"]

    # `muster explain` names the stage that failed and why its run on web2 did
    rc, out, err = c.cli_at(addr, "explain", job, check=False)
    assert "stage deploy: failed: 1 of 2 targets failed" in out and "web2" in out, (out, err)
    assert "stage smoke: skipped: an earlier stage failed" in out, out

    # `muster watch` of the finished job replays its stages; JSON has a "stage" object each
    rc, out, err = c.cli_at(addr, "-o", "json", "watch", job, check=False)
    seen = [json.loads(l) for l in out.splitlines() if '"kind":"stage"' in l.replace(" ", "")]
    assert {(s["name"], s["state"]) for s in seen} >= {("drain", "running"), ("deploy", "failed"),
                                                       ("smoke", "skipped")}, out

    # `muster submit` (not detached) follows a job with stages to its end, a line per stage
    small = write(c, "small.yaml", "name: small\nstages:\n  - name: one\n    target: {selector: role=lb}\n"
                  "    tasks: [{shell: {script: 'true'}}]\n  - name: two\n    target: {selector: role=web}\n"
                  "    tasks: [{shell: {script: 'true'}}]\n")
    rc, out, err = c.cli_at(addr, "submit", small, check=False, timeout=60)
    assert rc == 0, (rc, out, err)
    assert "stage one" in out and "stage two" in out and "succeeded" in out, out

    # bad stage files: each refused naming FILE:LINE:COL, nothing runs
    bad = {
        "dup.yaml": ("stages:\n  - name: a\n    target: {all: true}\n    tasks: [{shell: {script: '@S@'}}]\n"
                     "  - name: a\n    target: {all: true}\n    tasks: [{shell: {script: '@S@'}}]\n",
                     "dup.yaml:5:11: stages[1].name: 'a' is already the name of stages[0]"),
        "empty.yaml": ("stages:\n  - name: a\n    target: {all: true}\n    tasks: []\n",
                       "stages[0].tasks: a stage needs at least one task"),
        "both.yaml": ("tasks: [{shell: {script: '@S@'}}]\nstages:\n  - name: a\n    target: {all: true}\n"
                      "    tasks: [{shell: {script: '@S@'}}]\n",
                      "both.yaml:1:8: tasks: a job with stages has its tasks in each stage"),
        "when.yaml": ("stages:\n  - name: a\n    when: sometimes\n    target: {all: true}\n"
                      "    tasks: [{shell: {script: '@S@'}}]\n",
                      "when.yaml:3:11: stages[0].when: expected success, always or on_failure, got 'sometimes'"),
        "later.yaml": ("stages:\n  - name: a\n    target: {all: true}\n"
                       "    tasks: [{shell: {script: 'echo ${stages.b.ok_hosts}'}}]\n"
                       "  - name: b\n    target: {all: true}\n    tasks: [{shell: {script: '@S@'}}]\n",
                       "later.yaml:4:30: stages[0].tasks[0].shell.script: ${stages.b.ok_hosts}: stage 'b' "
                       "runs after this one (stages[1])"),
        "unknown.yaml": ("stages:\n  - name: a\n    target: {all: true}\n"
                         "    tasks: [{shell: {script: 'echo ${stages.zz.ok_hosts}'}}]\n",
                         "${stages.zz.ok_hosts}: no stage 'zz' in this job"),
        "notask.yaml": ("stages:\n  - name: a\n    target: {all: true}\n    tasks: [{name: t, shell: {script: '@S@'}}]\n"
                        "  - name: b\n    target: {all: true}\n"
                        "    tasks: [{shell: {script: 'echo ${stages.a.lb1.nope.k}'}}]\n",
                        "'lb1.nope.k' names no task of stage 'a'"),
    }
    for name, (text, want) in bad.items():
        p = write(c, name, text.replace("@S@", "echo BAD >> " + marks))
        rc, out, err = c.cli_at(addr, "submit", p, check=False)
        assert rc == 2 and want in err, (name, rc, out, err)
    rc, out, err = c.cli_at(addr, "run", "--all", "--dry-run", "--", "echo ${stages.a.ok_hosts}", check=False)
    assert rc == 2 and "only a job with stages: has ${stages.*} values" in err, (rc, err)
    assert "BAD" not in open(marks).read()


def test_leader_killed_in_the_middle_of_a_stage(c):
    c.start_etcd()
    a_addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    b_addr = c.start_member("cp-b")
    for agent in ("w1", "w2"):
        c.start_ha_agent(agent, a_addr + "," + b_addr, extra=["--labels", "role=web"])
    wait_until("agents connected", lambda: {"w1", "w2"} <= c.connected_at(a_addr))
    marks = os.path.join(c.workdir, "marks")
    path = write(c, "three.yaml", """
name: three
stages:
  - name: one
    target: {selector: role=web}
    tasks: [{name: t, shell: {script: "echo one $MUSTER_AGENT_ID >> @M@; echo 'param v=1' >&3"}}]
  - name: two
    target: {selector: role=web}
    tasks: [{shell: {script: "echo two-start $MUSTER_AGENT_ID >> @M@; sleep 5; echo two $MUSTER_AGENT_ID >> @M@"}}]
  - name: three
    target: {hosts: [w1]}
    tasks: [{shell: {script: "echo three ${stages.one.w2.t.v} ${stages.two.ok_hosts} >> @M@"}}]
""".replace("@M@", marks))
    _, out, _ = c.cli_at(a_addr, "submit", "--detach", path)
    job = out.strip()
    wait_until("stage two to start", lambda: len([m for m in marks_of(marks) if m.startswith("two-start")]) == 2,
               timeout=30)
    p, _ = c.members.pop("cp-a")
    p.kill()
    wait_until("cp-b to lead", lambda: (c.cluster_at(b_addr) or {}).get("leader"), timeout=10, step=0.1)
    st = wait_until("the job to end", lambda: ended(c, b_addr, job), timeout=60)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert [s["state"] for s in st["stages"]] == ["succeeded"] * 3, st["stages"]
    m = marks_of(marks)
    assert sorted(m[:2]) == ["one w1", "one w2"], m
    assert sorted(m[2:4]) == ["two-start w1", "two-start w2"], m
    assert sorted(m[4:6]) == ["two w1", "two w2"], m
    assert m[6:] == ["three 1 w1,w2"] or m[6:] == ["three 1 w2,w1"], m
    # the new leader's watchers see the stages it ran on (its event history starts at takeover)
    rc, out, err = c.cli_at(b_addr, "-o", "json", "watch", job, check=False)
    lines = [json.loads(l) for l in out.splitlines()]
    seen = {(s["name"], s["state"]) for s in lines if s.get("kind") == "stage"}
    assert {("two", "succeeded"), ("three", "running"), ("three", "succeeded")} <= seen, (rc, out, err)
    summary = [s for s in lines if s.get("kind") == "summary"][0]
    assert summary["state"] == "JOB_SUCCEEDED" and summary["counts"]["succeeded"] == 5, summary


def test_schedule_fires_a_template(c):
    """A schedule made from a job template: its params are checked against the template when
    the schedule is created, and the template is read again at every fire."""
    c.start_etcd()
    addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    c.start_ha_agent("a1", addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    marks = os.path.join(c.workdir, "marks")

    def template(script):
        return write(c, "greet.yaml", "params:\n  - {name: who, required: true}\n"
                     "  - {name: how, default_value: hello}\njob:\n  target: {all: true}\n"
                     "  tasks:\n    - name: t\n      shell: {script: %s}\n" % json.dumps(script))

    c.cli_at(addr, "job", "template", "create", "greet",
             template("echo ${param.how} ${param.who} >> " + marks))
    for args, want in [(["--template", "greet"], "template: missing required param 'who'"),
                       (["--template", "greet", "who=x", "colour=red"], "unknown param 'colour'"),
                       (["--template", "nosuch", "who=x"], "template: no template 'nosuch'"),
                       (["--template", "greet", "who"], "expected KEY=VALUE after --template")]:
        rc, out, err = c.cli_at(addr, "schedule", "create", "bad", "--cron", "0 0 1 1 *", *args, check=False)
        assert rc == 2 and want in err, (args, rc, out, err)
    c.cli_at(addr, "schedule", "create", "greeter", "--cron", "0 0 1 1 *", "--template", "greet", "who=world")
    _, out, _ = c.cli_at(addr, "schedule", "show", "greeter")
    assert "template:   greet who=world" in out, out

    _, out, _ = c.cli_at(addr, "schedule", "trigger", "greeter")
    st = wait_until("the first fire to end", lambda: ended(c, addr, out.strip()), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    # the template changes: the next fire takes the new one
    c.cli_at(addr, "job", "template", "rm", "greet")
    c.cli_at(addr, "job", "template", "create", "greet", template("echo hi ${param.who} >> " + marks))
    _, out, _ = c.cli_at(addr, "schedule", "trigger", "greeter")
    st = wait_until("the second fire to end", lambda: ended(c, addr, out.strip()), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert marks_of(marks) == ["hello world", "hi world"], marks_of(marks)
    # the template is gone: the slot fails, saying why
    c.cli_at(addr, "job", "template", "rm", "greet")
    c.cli_at(addr, "schedule", "trigger", "greeter", check=False)
    _, out, _ = c.cli_at(addr, "schedule", "show", "greeter")
    assert "failed: template: no template 'greet'" in out, out
    assert marks_of(marks) == ["hello world", "hi world"], marks_of(marks)

    # a schedule's one-task job takes `muster run`'s flags
    c.cli_at(addr, "schedule", "create", "runflags", "--cron", "0 0 1 1 *", "--all", "--retries", "2",
             "--env", "GREETING=hey", "--max-concurrency", "1", "--timeout", "30s", "--",
             "echo $GREETING >> " + marks)
    _, out, _ = c.cli_at(addr, "schedule", "trigger", "runflags")
    st = wait_until("the run-flags fire to end", lambda: ended(c, addr, out.strip()), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    task = st["spec"]["tasks"][0]
    assert task["retries"] == 2 and task["env"] == {"GREETING": "hey"} and task["timeout"] == "30s", task
    assert st["spec"]["rollout"]["maxConcurrency"] == "1", st["spec"]
    assert marks_of(marks)[-1] == "hey", marks_of(marks)
    rc, out, err = c.cli_at(addr, "schedule", "create", "bad", "--cron", "0 0 1 1 *", "--batch", "0", "--", "x",
                            check=False)
    assert rc == 2 and "--batch: expected a positive count, got '0'" in err, (rc, err)


def test_dependency_kept_while_a_job_waits(c):
    """Retention keeps a finished job that a waiting job names in `after`, past max_jobs_kept
    and the hard cap, until the waiter has started; then it goes like any other."""
    c.start_etcd()
    addr = c.start_member("cp-a", "--max-jobs-kept", "1", "--jobs-kept-min-age", "0s",
                          "--max-jobs-kept-hard", "3")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    c.start_ha_agent("a1", addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    marks = os.path.join(c.workdir, "marks")
    slow = run_detached(c, addr, "sleep 4")
    a = run_detached(c, addr, "echo A >> %s" % marks)
    wait_until("A to end", lambda: ended(c, addr, a))
    _, out, _ = submit(c, addr, "b", "echo B >> %s" % marks, after=[a, slow])
    b = out.strip()
    for i in range(4):  # finished jobs past max_jobs_kept and the hard cap
        c.cli_at(addr, "run", "--all", "--", "true")
    assert status(c, addr, a) is not None, "A was evicted while B waits for it"
    assert status(c, addr, b)["state"] == "JOB_PENDING"
    st = wait_until("B to end", lambda: ended(c, addr, b), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert marks_of(marks) == ["A", "B"], marks_of(marks)
    for i in range(4):
        c.cli_at(addr, "run", "--all", "--", "true")
    rc, out, err = c.cli_at(addr, "status", a, check=False)
    assert rc != 0 and "was evicted" in err, (rc, out, err)


if __name__ == "__main__":
    main([
        test_playbook_with_a_failing_stage,
        test_leader_killed_in_the_middle_of_a_stage,
        test_schedule_fires_a_template,
        test_dependency_kept_while_a_job_waits,
    ])
