"""End-to-end: fleet runs and jobs with real musterd, real agents and real processes.

The operator's story: run a command on every host and see each result; a failing host makes
the run fail; rollout limits stop a bad change early; a playbook of tasks passes values from
one task to the next; cancel stops processes on the hosts; logs show the output; a host that
dies mid-task is reported, never silently forgotten; bad specs are refused before anything
is stored.
"""
import base64
import json
import os
import re
import signal
import subprocess
import time

from harness import free_port, job_status, main, wait_until

HB = "300ms"


def fleet(c, *musterd_flags):
    c.start_musterd("--heartbeat-timeout", "2s", *musterd_flags)
    c.start_agent("web-1", "role=web,dc=eu-west", "--heartbeat-interval", HB)
    c.start_agent("web-2", "role=web,dc=us-east", "--heartbeat-interval", HB)
    c.start_agent("db-1", "role=db,dc=eu-west", "--heartbeat-interval", HB)
    wait_until("three connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3)


def run_json(c, *args, timeout=60):
    """`muster -o json run ...`: (exit code, {agent: TaskRun}, summary)."""
    rc, out, err = c.cli("-o", "json", "run", *args, check=False, timeout=timeout)
    results, summary = {}, None
    for line in out.splitlines():
        obj = json.loads(line)
        if "taskId" in obj:
            results[obj.get("agentId") or obj["taskId"]] = obj
        else:
            summary = obj
    return rc, results, summary, err


def test_run_on_every_host(c):
    fleet(c)
    rc, res, summary, err = run_json(c, "--", "echo hello from $MUSTER_AGENT_ID; echo oops >&2")
    assert rc == 0, err
    assert set(res) == {"web-1", "web-2", "db-1"}, res
    for agent, r in res.items():
        assert r["state"] == "SUCCEEDED", r
        assert "hello from %s" % agent in r["outputTail"], r
        assert "oops" in r["outputTail"], r
        assert int(r["metrics"]["wallMs"]) >= 0
    assert summary["state"] == "JOB_SUCCEEDED" and summary["counts"]["succeeded"] == 3, summary
    # the text form: a result line per host, its output prefixed with the host, a summary
    rc, out, _ = c.cli("run", "-t", "role=web", "--", "uname -s", check=False)
    lines = [l for l in out.splitlines() if re.match(r"web-\d +SUCCEEDED +exit 0 ", l)]
    assert rc == 0 and len(lines) == 2, out
    assert "web-1: Linux" in out and "web-2: Linux" in out, out
    assert "2 targets" in out, out
    # a watcher that joins after the end gets the whole history
    rc, out, _ = c.cli("-o", "json", "watch", summary["jobId"], check=False)
    late = [json.loads(l) for l in out.splitlines()]
    assert rc == 0 and {r["agentId"] for r in late if "taskId" in r} == {"web-1", "web-2", "db-1"}, out
    assert late[-1]["state"] == "JOB_SUCCEEDED", late[-1]
    # never more running than allowed: with one at a time, no two runs overlap
    rc, res, _, _ = run_json(c, "--max-concurrency", "1", "--",
                             "date +%s.%N; sleep 0.2; date +%s.%N")
    assert rc == 0 and len(res) == 3, res
    spans = sorted(tuple(float(x) for x in r["outputTail"].split()) for r in res.values())
    for a, b in zip(spans, spans[1:]):
        assert a[1] <= b[0], "runs overlap with max-concurrency 1: %r" % spans
    # argv form (no shell)
    rc, res, _, _ = run_json(c, "--hosts", "db-1", "--", "printf", "%s-%s", "a b", "c")
    assert rc == 0 and res["db-1"]["outputTail"] == "a b-c", res


def test_failures_exit_codes_and_rollout(c):
    fleet(c)
    rc, res, summary, _ = run_json(c, "-t", "role=web", "--", "exit 3")
    assert rc == 1, res
    assert all(r["state"] == "FAILED" and r["exitCode"] == 3 for r in res.values()), res
    assert summary["state"] == "JOB_FAILED"
    # one host at a time, stop at the first error: the other two never start
    rc, res, summary, _ = run_json(c, "--max-concurrency", "1", "--max-errors", "0", "--", "false")
    assert rc == 1
    states = sorted(r["state"] for r in res.values())
    assert states == ["CANCELLED", "CANCELLED", "FAILED"], res
    assert any("max errors" in r.get("message", "") for r in res.values()), res
    # batches of one: each host starts after the previous one ended
    rc, res, _, _ = run_json(c, "--batch", "1", "--", "date +%s.%N; sleep 0.3")
    assert rc == 0, res
    starts = sorted(float(r["outputTail"].split()[0]) for r in res.values())
    assert starts[1] - starts[0] >= 0.29 and starts[2] - starts[1] >= 0.29, starts
    # a percentage works too
    rc, res, _, _ = run_json(c, "--max-concurrency", "50%", "--", "true")
    assert rc == 0 and len(res) == 3


def test_timeout_retries_and_cancel(c):
    fleet(c)
    rc, res, _, err = run_json(c, "--hosts", "web-1", "--timeout", "1500ms", "--", "sleep 20")
    assert rc == 1 and res["web-1"]["state"] == "TIMED_OUT", (res, err)
    # the message gives the task's own limit
    assert res["web-1"]["message"].startswith("timed out after 1.5s"), res["web-1"]
    # fails on the first attempt, succeeds on the second
    marker = os.path.join(c.workdir, "attempts")
    script = "echo x >> %s; [ $(wc -l < %s) -ge 2 ]" % (marker, marker)
    rc, res, _, err = run_json(c, "--hosts", "web-2", "--retries", "2", "--", script)
    assert rc == 0 and res["web-2"]["attempt"] == 2, (res, err)
    # cancel kills the processes on every host
    tag = "31.4159"
    rc, out, _ = c.cli("run", "--detach", "--", "sleep %s" % tag)
    job = out.strip()
    wait_until("sleeps running", lambda: subprocess.run(["pgrep", "-f", "sleep " + tag],
                                                        capture_output=True).stdout.count(b"\n") >= 3)
    rc, out, _ = c.cli("cancel", job)
    assert "cancelling 3" in out, out
    wait_until("job cancelled", lambda: job_status(c.cli("-o", "json", "status", job, check=False)[1])["state"] == "JOB_CANCELLED")
    wait_until("processes gone", lambda: subprocess.run(["pgrep", "-f", "sleep " + tag]).returncode == 1)
    rc, _, err = c.cli("cancel", job, check=False)
    assert rc == 1 and "already finished" in err, err
    log = c.musterd.text()
    assert "action=job.cancel target=%s cancelling=3" % job in log, log[-2000:]
    assert re.search(r"action=job\.cancel target=%s .*outcome=refused: " % job, log)


def test_playbook_params_and_logs(c):
    fleet(c)
    spec = os.path.join(c.workdir, "job.yaml")
    with open(spec, "w") as f:
        f.write("""
name: two-steps
target: {selector: "dc=eu*"}
rollout: {max_concurrency: 2, max_errors: 0}
tasks:
  - name: probe
    type: shell
    timeout: 10s
    shell: {script: "echo probing; echo 'param version=4.2' >&3"}
  - name: use
    shell: {interpreter: bash, script: "echo got ${probe.version} and $MUSTER_PARAM_PROBE_VERSION"}
  - name: escaped
    shell: {script: "echo 'kept $${probe.version}'"}
""")
    rc, out, err = c.cli("-o", "json", "submit", spec, check=False)
    assert rc == 0, (out, err)
    runs = [json.loads(l) for l in out.splitlines() if "taskId" in l]
    uses = [r for r in runs if r["taskName"] == "use"]
    assert len(uses) == 2 and {r["agentId"] for r in uses} == {"web-1", "db-1"}, runs
    for r in uses:
        assert "got 4.2 and 4.2" in r["outputTail"], r
    for r in (r for r in runs if r["taskName"] == "escaped"):
        assert "kept ${probe.version}" in r["outputTail"], r
    probe = [r for r in runs if r["taskName"] == "probe"][0]
    assert probe["outputParams"] == {"version": "4.2"}, probe
    job = json.loads(out.splitlines()[-1])["jobId"]
    rc, out, _ = c.cli("logs", job, "web-1/use")
    assert out.strip() == "got 4.2 and 4.2", out
    rc, out, _ = c.cli("logs", job)
    assert "/web-1/probe: probing" in out and "/db-1/use: got 4.2" in out, out
    # grep across hosts, grouped: both hosts printed the same line
    rc, out, _ = c.cli("logs", job, "--grep", "got [0-9.]+")
    assert out == ("---------------\ndb-1,web-1 (2)\n---------------\n"
                   "use: got 4.2 and 4.2\n"), out
    rc, out, _ = c.cli("logs", job, "--grep", "nothing like this", check=False)
    assert rc == 1 and "no match on: db-1,web-1" in out, (rc, out)
    rc, _, err = c.cli("logs", job, "--hosts", "web-1", check=False)
    assert rc == 2 and "--hosts narrows --grep" in err, err
    # live logs with -f
    rc, out, _ = c.cli("run", "--detach", "--hosts", "web-2", "--",
                       "for i in 1 2 3; do echo line $i; sleep 0.2; done")
    job = out.strip()
    rc, out, _ = c.cli("logs", "-f", job, "web-2/run")
    assert out.splitlines() == ["line 1", "line 2", "line 3"], out
    rc, out, _ = c.cli("jobs")
    assert "two-steps" in out and job in out, out


def test_bad_specs_refused_before_storing(c):
    fleet(c)
    before = c.cli("-o", "json", "jobs")[1].count("\n")
    rc, _, err = c.cli("run", "-t", "role=nope", "--", "true", check=False)
    assert rc == 2 and "matches no agent" in err, err
    rc, _, err = c.cli("run", "--timeout", "soon", "--", "true", check=False)
    assert rc == 2 and "--timeout" in err, err
    rc, _, err = c.cli("run", "--batch", "2", "--max-concurrency", "1", "--", "true", check=False)
    assert rc == 2 and "conflict" in err, err
    spec = os.path.join(c.workdir, "bad.yaml")
    with open(spec, "w") as f:
        f.write("""
target: {all: true}
tasks:
  - name: a
    timeout: 5x
    shell: {script: "true"}
  - name: a
    type: telepathy
""")
    rc, _, err = c.cli("submit", spec, check=False)
    assert rc == 2, err
    # every problem at once, one per line, each at its FILE:LINE:COL
    for want in ("bad.yaml:5:14: tasks[0].timeout", "bad.yaml:7:11: tasks[1].name",
                 "bad.yaml:8:11: tasks[1].type: unknown task type 'telepathy'"):
        assert "\n" + os.path.join(c.workdir, want) in err, (want, err)
    # ${...} references are resolved or refused at submit, never handed to a shell
    with open(spec, "w") as f:
        f.write("""target: {all: true}
tasks:
  - name: first
    shell: {script: "echo ${later.x} ${HOME} ${first.y}"}
  - name: later
    env: {A: "${nobody.z}"}
    shell: {command: [echo, "${first.ok}", "${secret.S}"]}
""")
    rc, _, err = c.cli("submit", spec, check=False)
    assert rc == 2, err
    for want in ("bad.yaml:4:21: tasks[0].shell.script: ${later.x}: task 'later' runs after this one (tasks[1])",
                 "bad.yaml:4:21: tasks[0].shell.script: ${first.y}: a task cannot use its own params",
                 "bad.yaml:6:14: tasks[1].env.A: ${nobody.z}: no task 'nobody' in this job",
                 "bad.yaml:7:44: tasks[1].shell.command[2]: ${secret.S} is not replaced in shell, python or env fields"):
        assert os.path.join(c.workdir, want) in err, (want, err)
    assert "${HOME}" not in err and "${first.ok}" not in err, err
    with open(spec, "w") as f:
        f.write("target: {all: true}\ntasks: [{shell: {script: x}, bogus: 1}]\n")
    rc, _, err = c.cli("submit", spec, check=False)
    assert rc == 2 and "tasks[0].bogus: unknown field" in err, err
    after = c.cli("-o", "json", "jobs")[1].count("\n")
    assert before == after, "a refused job was stored"


def test_dry_run_plans_without_starting(c):
    """`run --dry-run` and `submit --plan` check against the live fleet and print the rollout;
    nothing is stored or started, and a bad job gets the refusal a submit would get."""
    fleet(c)
    c.start_agent("web-3", "role=web,dc=ap", "--heartbeat-interval", HB)
    wait_until("web-3 connected", lambda: c.states().get("web-3") == "AGENT_CONNECTED")
    c.agents.pop("web-3").stop()
    wait_until("web-3 disconnected", lambda: c.states().get("web-3") == "AGENT_DISCONNECTED")
    before = c.cli("-o", "json", "jobs")[1].count("\n")
    marker = os.path.join(c.workdir, "dry-run-ran")
    rc, out, err = c.cli("run", "--dry-run", "-t", "role=web", "--batch", "2", "--max-errors",
                         "1", "--", "touch " + marker)
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert lines[0].startswith("plan for job 'run: touch ") and lines[0].endswith(
        "': 1 task on 3 targets (3 task runs); nothing was started"), out
    assert lines[1] == "tasks: run (shell)", out
    assert lines[2] == ("rollout: 2 hosts at a time, 1 failed host tolerated (one more cancels "
                        "the rest)"), out
    assert lines[3:5] == ["  batch 1: web-1, web-2", "  batch 2: web-3"], out
    assert lines[5].startswith("disconnected now: web-3 (unreachable unless it reconnects"), out
    # JSON, from a job file
    spec = os.path.join(c.workdir, "plan.yaml")
    with open(spec, "w") as f:
        f.write("name: planned\ntarget: {all: true}\nrollout: {max_concurrency: 25%%}\n"
                "tasks: [{name: a, shell: {script: 'touch %s'}}, {name: b, http: {url: 'http://x'}}]\n"
                % marker)
    rc, out, err = c.cli("-o", "json", "submit", "--plan", spec)
    plan = json.loads(out)
    assert plan["name"] == "planned", plan
    assert sorted(plan["targets"]) == ["db-1", "web-1", "web-2", "web-3"], plan
    assert plan["concurrency"] == 1 and plan["taskRuns"] == 8, plan
    assert plan["tasks"] == ["a (shell)", "b (http)"] and plan["disconnected"] == ["web-3"], plan
    # an `any` target lists its connected candidates
    rc, out, err = c.cli("run", "--dry-run", "--any", "role=web", "--", "true")
    assert "on one agent picked at dispatch from 2 connected candidates" in out, out
    assert "candidates: web-1, web-2" in out, out
    # refusals are the submit's own
    rc, _, err = c.cli("run", "--dry-run", "-t", "role=nope", "--", "true", check=False)
    assert rc == 2 and "matches no agent" in err, err
    time.sleep(0.5)
    assert not os.path.exists(marker), "a dry run ran the command"
    assert c.cli("-o", "json", "jobs")[1].count("\n") == before, "a dry run stored a job"

    # exit codes say what happened: 3 when only unreachable hosts kept the job from
    # succeeding, 4 when it was cancelled
    rc, out, err = c.cli("run", "--hosts", "web-1,web-3", "--wait", "300ms", "--", "true",
                         check=False)
    assert rc == 3, (rc, out, err)
    rc, out, _ = c.cli("run", "--detach", "--hosts", "web-1", "--", "sleep 30")
    job = out.strip()
    c.cli("cancel", job)
    rc, out, err = c.cli("watch", job, check=False)
    assert rc == 4, (rc, out, err)


def test_explain_says_why(c):
    """`muster explain` gives each failed run its reason class and the evidence."""
    fleet(c)
    def job_of(*args):
        rc, out, err = c.cli("-o", "json", "run", *args, check=False, timeout=60)
        return json.loads(out.splitlines()[-1])["jobId"]
    job = job_of("--hosts", "web-1", "--", "echo before; echo oops >&2; exit 3")
    rc, out, err = c.cli("explain", job)
    assert rc == 0, err
    assert "web-1/run: FAILED (exit code, attempt 1)\n  exited with code 3" in out, out
    assert "      | oops" in out, out
    job = job_of("--hosts", "web-2", "--timeout", "1s", "--", "sleep 5")
    rc, out, _ = c.cli("explain", job)
    assert "web-2/run: TIMED_OUT (timeout, attempt 1)\n  still running at its 1s timeout" in out, out
    job = job_of("--hosts", "db-1", "--memory", "64M", "--",
                 "python3 -c 'b = bytearray(512 << 20); print(len(b))'")
    rc, out, _ = c.cli("explain", job)
    assert "db-1/run: FAILED (out of memory, attempt 1)" in out, out
    assert "killed by the kernel's OOM killer: memory peaked at" in out and "64.0 MiB limit" in out, out
    # a succeeded run is explained only when asked for
    job = job_of("--hosts", "web-1", "--", "true")
    rc, out, _ = c.cli("explain", job)
    assert "every task run succeeded" in out, out
    rc, out, _ = c.cli("explain", job, "web-1/run")
    assert "web-1/run: SUCCEEDED (ok, attempt 1)" in out, out
    rc, out, _ = c.cli("explain", job, "web-9/run", check=False)
    assert rc == 1 and "no task run 'web-9/run'" in out, out


def _trace_ids(job_id, task_id, attempt):
    """lib/base/trace.h's derivation, as docs/observability.md gives it."""
    m = (1 << 64) - 1

    def fnv(s, h):
        for b in s.encode():
            h = ((h ^ b) * 0x100000001b3) & m
        return h

    def mix(x):
        x ^= x >> 30
        x = (x * 0xbf58476d1ce4e5b9) & m
        x ^= x >> 27
        x = (x * 0x94d049bb133111eb) & m
        return x ^ (x >> 31)
    a, b = 0xcbf29ce484222325, 0x84222325cbf29ce4
    trace = "%016x%016x" % (mix(fnv(job_id, a)), mix(fnv(job_id, b)))
    span = "%016x" % mix(fnv("#%d" % attempt, fnv(task_id, a)))
    return trace, "00-%s-%s-01" % (trace, span)


def test_trace_ids_and_json_logs(c):
    """Tasks get MUSTER_TRACE_ID and TRACEPARENT derived from their job; with --log-format
    json every log line of musterd and the agent is a JSON object, and the lines about a job
    carry its trace id."""
    c.start_musterd("--heartbeat-timeout", "2s", "--log-format", "json")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB, "--log-format", "json")
    wait_until("agent connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    rc, res, summary, err = run_json(c, "--", "echo $MUSTER_TRACE_ID $TRACEPARENT")
    assert rc == 0, err
    run = res["web-1"]
    trace, parent = _trace_ids(summary["jobId"], run["taskId"], run["attempt"])
    assert run["outputTail"].split() == [trace, parent], (run, trace, parent)
    rc, _, err = c.cli("run", "--", "true", check=False)
    time.sleep(0.3)
    for proc in (c.musterd, c.agents["web-1"]):
        lines = [l for l in proc.text().splitlines() if l.strip()]
        objs = [json.loads(l) for l in lines]  # every line is one JSON object
        assert all({"ts", "level", "component", "msg"} <= set(o) for o in objs), objs[:3]
        about = [o for o in objs if summary["jobId"] in o["msg"]]
        assert about and all(o.get("trace_id") == trace for o in about), about


def test_agent_limits_refused_at_submit(c):
    """What would fail on every host is refused at submit, naming the field and the limit;
    nothing is stored."""
    fleet(c)
    before = c.cli("-o", "json", "jobs")[1].count("\n")
    spec = os.path.join(c.workdir, "limits.json")

    def submit(task, target=None):
        t = {"name": "t", "shell": {"script": "true"}}
        t.update(task)
        with open(spec, "w") as f:
            json.dump({"target": target or {"hosts": ["web-1"]}, "tasks": [t]}, f)
        return c.cli("submit", spec, check=False)

    cases = [
        ({"env": {"V%d" % i: "x" for i in range(1025)}}, "tasks[0].env: 1025 variables, the limit is 1024"),
        ({"shell": {"script": "true", "args": ["a"] * 4097}}, "tasks[0].shell.args: 4097 entries, the limit is 4096"),
        ({"shell": {"command": ["true"] + ["a"] * 4096}}, "tasks[0].shell.command: 4097 entries, the limit is 4096"),
        ({"working_dir": "../.."}, "tasks[0].working_dir: '../..' must be relative to the task dir"),
        ({"shell": {"script_file": "/etc/passwd"}}, "tasks[0].shell.script_file: '/etc/passwd' must be a path inside"),
        ({"shell": {"script": "true", "args": ["x" * 200000]}}, "the limit for one argument is 131071"),
        ({"run_as": "deploy:"}, "tasks[0].run_as: empty group in 'deploy:'"),
    ]
    for task, want in cases:
        rc, _, err = submit(task)
        assert rc == 2 and want in err, (want, err[:500])
    rc, _, err = submit({}, {"hosts": ["web-1", "db-1", "web-1"]})
    assert rc == 2 and "target.hosts[2]: duplicate host 'web-1' in target.hosts" in err, err
    rc, _, err = c.cli("run", "--hosts", "web-1,web-1", "--", "true", check=False)
    assert rc == 2 and "duplicate host 'web-1'" in err, err
    # a glob that names only hosts an earlier entry took says so
    rc, _, err = submit({}, {"hosts": ["web-1", "web-1*"]})
    assert rc == 2 and "matches only agents already named by target.hosts[0]" in err, err
    rc, _, err = submit({"env": {"A": "x" * 140000}})
    assert rc == 2 and "tasks[0].env.A: 140002 bytes as A=VALUE, the limit for one variable is 131071" in err, err
    after = c.cli("-o", "json", "jobs")[1].count("\n")
    assert before == after, "a refused job was stored"


def test_large_script_runs(c):
    """A script far over what one exec argument takes (128 KiB) runs: the agent hands it to the
    interpreter in a file."""
    fleet(c)
    body = "x" * (1 << 20)
    script = "s='%s'\necho ${#s} \"$1\"\n" % body
    spec = os.path.join(c.workdir, "big.json")
    with open(spec, "w") as f:
        json.dump({"name": "big", "target": {"hosts": ["web-1", "db-1"]},
                   "tasks": [{"name": "big", "shell": {"script": script, "args": ["arg1"]}},
                             {"name": "small", "shell": {"script": "echo small \"$0\""}}]}, f)
    rc, out, err = c.cli("-o", "json", "submit", spec, check=False, timeout=60)
    assert rc == 0, (out[-2000:], err)
    runs = [json.loads(l) for l in out.splitlines() if "taskId" in l]
    big = [r for r in runs if r["taskName"] == "big"]
    assert len(big) == 2 and all(r["outputTail"] == "%d arg1\n" % len(body) for r in big), big
    small = [r for r in runs if r["taskName"] == "small"]
    assert all(r["outputTail"].startswith("small %s/" % r["jobId"]) for r in small), small


def test_run_as_unknown_user_fails_clearly(c):
    """A run_as user a host does not have fails there, naming the user and the host, and
    stops the rollout like any failure."""
    fleet(c)
    rc, res, summary, err = run_json(c, "--user", "nosuch-muster-user", "--max-concurrency", "1",
                                     "--max-errors", "0", "--", "true")
    assert rc == 1, (res, err)
    failed = [(a, r) for a, r in res.items() if r["state"] == "FAILED"]
    assert len(failed) == 1, res
    agent, r = failed[0]
    assert "user 'nosuch-muster-user' does not exist on %s" % agent in r["message"], r
    assert sorted(r["state"] for r in res.values()) == ["CANCELLED", "CANCELLED", "FAILED"], res
    assert summary["state"] == "JOB_FAILED", summary


def test_finished_jobs_kept_for_their_min_age(c):
    """A burst past max_jobs_kept does not lose jobs that just finished; past the hard cap the
    oldest go, and asking for one says it was evicted, when, and by which rule."""
    c.start_musterd("--max-jobs-kept", "2", "--max-jobs-kept-hard", "4")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB)
    wait_until("agent", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    jobs = []
    for i in range(4):
        rc, res, summary, err = run_json(c, "--", "echo %d" % i)
        assert rc == 0, err
        jobs.append(summary["jobId"])
    # four finished jobs, twice max_jobs_kept: all younger than 1h, all kept
    for j in jobs:
        rc, out, err = c.cli("-o", "json", "status", j, check=False)
        assert rc == 0 and job_status(out)["state"] == "JOB_SUCCEEDED", (j, err)
    for i in range(2):
        rc, res, summary, err = run_json(c, "--", "echo more %d" % i)
        assert rc == 0, err
        jobs.append(summary["jobId"])
    # past the hard cap of 4: the two oldest went, and say so
    for j in jobs[:2]:
        rc, _, err = c.cli("status", j, check=False)
        assert rc != 0, err
        assert "job %s was evicted (finished at " % j in err, err
        assert "retention: max_jobs_kept 2, jobs_kept_min_age 1h, max_jobs_kept_hard 4" in err, err
        rc, _, err = c.cli("logs", j, check=False)
        assert rc != 0 and "was evicted" in err, err
    for j in jobs[2:]:
        assert c.cli("status", j, check=False)[0] == 0, j
    log = c.musterd.text()
    assert "younger than jobs_kept_min_age" in log and "max_jobs_kept_hard" in log, log[-2000:]


def test_host_dies_mid_task(c):
    fleet(c)
    rc, out, _ = c.cli("run", "--detach", "--hosts", "db-1", "--", "sleep 25")
    job = out.strip()
    wait_until("task running", lambda: "RUNNING" in c.cli("status", job, check=False)[1])
    c.agents["db-1"].kill()
    del c.agents["db-1"]
    st = wait_until("task lost", lambda: (lambda j: j if j["state"] != "JOB_RUNNING" else None)(
        job_status(c.cli("-o", "json", "status", job, check=False)[1])), timeout=10)
    task = st["tasks"][0]
    assert st["state"] == "JOB_FAILED" and task["state"] == "LOST", st
    assert "agent disconnected" in task["message"], task


def test_agent_restart_reports_lost_from_journal(c):
    fleet(c)
    rc, out, _ = c.cli("run", "--detach", "--hosts", "web-1", "--", "sleep 26")
    job = out.strip()
    wait_until("task running", lambda: "RUNNING" in c.cli("status", job, check=False)[1])
    p = c.agents["web-1"]
    p.p.send_signal(signal.SIGKILL)
    p.p.wait()
    subprocess.run(["pkill", "-f", "sleep 26"])
    c.start_agent("web-1", "role=web,dc=eu-west", "--heartbeat-interval", HB)
    st = wait_until("task reported", lambda: (lambda j: j if j["state"] != "JOB_RUNNING" else None)(
        job_status(c.cli("-o", "json", "status", job, check=False)[1])), timeout=10)
    task = st["tasks"][0]
    assert task["state"] == "LOST", task
    assert "restarted" in task["message"] or "disconnected" in task["message"], task


def log_chunks(c, job, task):
    """`muster -o json logs --allow-partial JOB TASK`: ({stream: bytes}, [notes])."""
    rc, out, err = c.cli("-o", "json", "logs", "--allow-partial", job, task, check=False, timeout=60)
    assert rc == 0, err
    streams, notes = {}, []
    for line in out.splitlines():
        chunk = json.loads(line)
        if chunk.get("note"):
            assert chunk["output"] is None, chunk  # a note carries no output
            notes.append(chunk["note"])
        else:
            data = base64.b64decode(chunk["output"].get("data", ""))
            s = chunk["output"].get("stream", "STREAM_UNSPECIFIED")
            streams[s] = streams.get(s, b"") + data
    return streams, notes


def test_full_logs_from_the_agent_spool(c):
    # an agent whose output spool holds 2 MiB: room for one big output, not two
    c.start_musterd("--heartbeat-timeout", "2s")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB, "--output-spool-size", "2M")
    wait_until("agent connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    # about 1 MiB of stdout, far more than the 64 KiB tail the control plane keeps
    want = "".join("%d\n" % i for i in range(1, 150001))
    rc, res, summary, err = run_json(c, "--hosts", "web-1", "--", "seq 1 150000; echo to-stderr >&2")
    assert rc == 0, (res, err)
    big = summary["jobId"]
    rc, out, err = c.cli("logs", big, "web-1/run", timeout=60)
    assert "note" not in err, err
    assert out.replace("to-stderr\n", "", 1) == want, (len(out), len(want))
    # stdout and stderr stay apart, byte-exact
    streams, notes = log_chunks(c, big, "web-1/run")
    assert notes == [], notes
    assert streams.get("STDOUT", b"").decode() == want, len(streams.get("STDOUT", b""))
    assert streams.get("STDERR") == b"to-stderr\n", streams.keys()
    # follow a running task: lines arrive as they are printed, and the call ends with the task
    rc, out, _ = c.cli("run", "--detach", "--hosts", "web-1", "--",
                       "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.4; done")
    job = out.strip()
    wait_until("task running", lambda: "RUNNING" in c.cli("status", job, check=False)[1])
    p = subprocess.Popen([c.cli_bin, "--addr", c.addr, "logs", "-f", job, "web-1/run"],
                         stdout=subprocess.PIPE, text=True)
    seen = []
    for line in p.stdout:
        seen.append((time.monotonic(), line.rstrip("\n")))
    assert p.wait(timeout=30) == 0
    assert [l for _, l in seen] == ["line %d" % i for i in range(1, 9)], seen
    assert seen[-1][0] - seen[-3][0] >= 0.6, "lines did not arrive as printed: %r" % seen
    assert "serving the control plane's tail" not in c.musterd.text(), c.musterd.text()[-2000:]
    # a second big output does not fit beside the first: the first is evicted, and its logs
    # fall back to the tail the control plane kept, saying so and which bytes are missing
    rc, res, summary, err = run_json(c, "--hosts", "web-1", "--", "seq 1 200000")
    assert rc == 0, (res, err)
    second = summary["jobId"]
    rc, out, err = c.cli("logs", second, "web-1/run", timeout=60)
    assert out == "".join("%d\n" % i for i in range(1, 200001)), len(out)
    rc, out, err = c.cli("logs", big, "web-1/run", check=False)
    assert rc == 1 and "tail kept by the control plane" in err, (rc, err)
    assert re.search(r"bytes 0\.\.\d+ of the output \(stdout and stderr together\) were evicted "
                     r"from agent web-1's output spool", err), err
    assert 0 < len(out) <= 64 * 1024 and "150000\n" in out, len(out)
    assert c.cli("logs", "--allow-partial", big, "web-1/run", check=False)[0] == 0
    # the agent goes away: the tail, with a note naming the agent
    agent = c.agents.pop("web-1")
    assert agent.stop() == 0, agent.text()[-3000:]
    wait_until("agent disconnected", lambda: c.states().get("web-1") != "AGENT_CONNECTED")
    rc, out, err = c.cli("logs", second, "web-1/run", check=False)
    assert rc == 1 and "are missing: agent web-1 is not connected" in err, err
    assert len(out) == 64 * 1024 and out.endswith("199999\n200000\n"), len(out)
    streams, notes = log_chunks(c, second, "web-1/run")
    assert len(notes) == 2 and "not connected" in notes[0], notes


def test_adhoc_python_and_http(c):
    """`muster run --type python|http`: the same fleet run for the other built-in task types;
    bad forms are refused before anything is stored."""
    fleet(c)
    rc, res, _, err = run_json(c, "--hosts", "web-1", "--type", "python", "--",
                               "-c", "import sys; print('py', sys.argv[1:])", "a", "b")
    assert rc == 0 and "py ['a', 'b']" in res["web-1"]["outputTail"], (res, err)
    port = free_port()
    srv = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(port), "--bind",
                            "127.0.0.1"], cwd=c.workdir, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until("http server", lambda: subprocess.run(
            ["curl", "-sf", "http://127.0.0.1:%d/" % port], capture_output=True).returncode == 0)
        rc, res, _, err = run_json(c, "-t", "role=web", "--type", "http", "--",
                                   "GET", "http://127.0.0.1:%d/" % port)
        assert rc == 0 and set(res) == {"web-1", "web-2"}, (res, err)
        rc, res, _, _ = run_json(c, "--hosts", "db-1", "--type", "http", "--",
                                 "http://127.0.0.1:%d/missing" % port)
        assert rc == 1 and "404" in res["db-1"]["message"], res
    finally:
        srv.kill()
        srv.wait()
    for args, why in ((["--type", "spark", "--", "x"], "ad hoc runs take shell, python or http"),
                      (["--type", "http", "--", "a", "b", "c"], "[METHOD] URL"),
                      (["--type", "python", "--", "-m"], "needs a value")):
        rc, _, err = c.cli("run", *args, check=False)
        assert rc == 2 and why in err, (args, err)
    rc, out, _ = c.cli("jobs", check=False)
    assert out.count("run:") == 3, out  # the refused ones were never stored


def test_dead_host_is_unreachable(c):
    """A job over a dead host: the host's run is UNREACHABLE (not CANCELLED) once the wait is
    over, counted as its own state against max_errors, and the CLI exits 3; with
    --skip-unreachable the host is skipped and the job succeeds (exit 0)."""
    fleet(c)
    c.agents.pop("web-1").kill()
    wait_until("web-1 disconnected", lambda: c.states().get("web-1") == "AGENT_DISCONNECTED")
    # --hosts takes a node set
    rc, res, summary, err = run_json(c, "--hosts", "web-[1-2],db-1", "--wait", "300ms", "--",
                                     "true")
    assert rc == 3, (rc, res, summary, err)
    assert res["web-1"]["state"] == "UNREACHABLE", res["web-1"]
    assert res["web-1"]["exitCode"] is None, res["web-1"]
    assert "unreachable" in res["web-1"]["message"], res["web-1"]
    assert res["web-2"]["state"] == res["db-1"]["state"] == "SUCCEEDED", res
    counts = summary["counts"]
    assert (counts["succeeded"], counts["unreachable"], counts["cancelled"],
            counts["skipped"]) == (2, 1, 0, 0), summary
    assert summary["notSucceededHosts"] == ["web-1"] and summary["skippedHosts"] == [], summary
    job = summary["jobId"]
    rc, out, _ = c.cli("status", job, check=False)
    assert rc == 1 and re.search(r"/web-1/run +UNREACHABLE +- ", out), out
    assert "3 targets: 2 succeeded, 1 unreachable" in out, out
    assert c.cli("-q", "status", job, check=False)[1] == "failed\n"
    rc, out, _ = c.cli("explain", job, check=False)
    assert "web-1/run: UNREACHABLE (unreachable, attempt 0)" in out, out
    assert job in c.cli("jobs", "-q")[1].split()
    # the text form says it too, and a bad node set is refused before anything is sent
    rc, out, _ = c.cli("run", "--hosts", "web-[1-2]", "--wait", "300ms", "--", "true",
                       check=False)
    assert rc == 3 and re.search(r"^web-1 +UNREACHABLE", out, re.M), out
    assert "2 targets: 1 succeeded, 1 unreachable" in out and "not succeeded: web-1" in out, out
    rc, _, err = c.cli("run", "--hosts", "web-[2-1]", "--", "true", check=False)
    assert rc == 2 and "--hosts: node set: range 2-1" in err, err
    # --skip-unreachable: skipped, not a failure, exit 0
    rc, res, summary, err = run_json(c, "--hosts", "web-[1-2]", "--wait", "300ms",
                                     "--skip-unreachable", "--max-errors", "0", "--", "true")
    assert rc == 0 and summary["state"] == "JOB_SUCCEEDED", (rc, summary, err)
    assert res["web-1"]["state"] == "UNREACHABLE", res["web-1"]
    assert res["web-1"]["message"].startswith("skipped: "), res["web-1"]
    assert (summary["counts"]["skipped"], summary["counts"]["unreachable"]) == (1, 0), summary
    assert summary["skippedHosts"] == ["web-1"] and summary["notSucceededHosts"] == [], summary
    rc, out, _ = c.cli("run", "--hosts", "web-[1-2]", "--wait", "300ms", "--skip-unreachable",
                       "--", "true", check=False)
    assert rc == 0 and "2 targets: 1 succeeded, 1 skipped" in out and "skipped: web-1" in out, out
    rc, out, _ = c.cli("run", "--dry-run", "--hosts", "web-[1-2]", "--skip-unreachable", "--",
                       "true")
    assert rc == 0 and "disconnected now: web-1 (skipped unless it reconnects" in out, out
    # ... and from a job file (rollout.skip_unreachable), or submit's flag
    spec = os.path.join(c.workdir, "skip.yaml")
    with open(spec, "w") as f:
        f.write("name: skip\ntarget: {hosts: [web-1, db-1]}\nrollout: {disconnected_wait: 300ms}\n"
                "tasks: [{name: a, shell: {script: 'true'}}]\n")
    assert c.cli("submit", spec, check=False)[0] == 3
    assert c.cli("submit", "--skip-unreachable", spec, check=False)[0] == 0
    # unreachable counts against max_errors: past it the rest is cancelled (exit 1)
    rc, res, summary, _ = run_json(c, "--hosts", "web-[1-2],db-1", "--wait", "300ms",
                                   "--max-concurrency", "1", "--max-errors", "0", "--",
                                   "sleep 1")
    assert rc == 1, (rc, summary)
    assert res["web-1"]["state"] == "UNREACHABLE", res
    cancelled = [h for h, r in res.items() if r["state"] == "CANCELLED"]
    assert len(cancelled) == 1 and "max errors" in res[cancelled[0]]["message"], res
    assert (summary["counts"]["unreachable"], summary["counts"]["cancelled"]) == (1, 1), summary


if __name__ == "__main__":
    main([
        test_run_on_every_host,
        test_failures_exit_codes_and_rollout,
        test_timeout_retries_and_cancel,
        test_playbook_params_and_logs,
        test_bad_specs_refused_before_storing,
        test_agent_limits_refused_at_submit,
        test_dry_run_plans_without_starting,
        test_trace_ids_and_json_logs,
        test_explain_says_why,
        test_large_script_runs,
        test_run_as_unknown_user_fails_clearly,
        test_finished_jobs_kept_for_their_min_age,
        test_host_dies_mid_task,
        test_agent_restart_reports_lost_from_journal,
        test_full_logs_from_the_agent_spool,
        test_adhoc_python_and_http,
        test_dead_host_is_unreachable,
    ])
