"""The CLI's output as an operator and a script see it (issue 14, items 3, 6 and 7).

Golden files (integration/golden/, placeholders for job ids, durations and timestamps) for the
text forms `fleet_test` does not cover: --lines and --tail with the note that says how to see
the rest, --summary-only, a job of several tasks (each run named HOST/TASK), `status` of a
cancelled job (no exit code on a CANCELLED row), a 1 s timeout (said as 1s, never 0s),
`jobs`, and one target said in the singular. Then every `-o json` command piped through
`jq -e` with assertions on its fields: schema and kind on every line, ids named jobId /
agentId everywhere, zero values present, numbers as numbers, one object per line.
MUSTER_UPDATE_GOLDEN=1 rewrites the golden files.
"""
import json
import os
import re
import subprocess
import sys
import time

from harness import Cluster, job_status, json_lines, main, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
HB = "300ms"
RESULT_LINE = re.compile(r"^(\S+)\s+(SUCCEEDED|FAILED|TIMED_OUT|CANCELLED|LOST|UNREACHABLE)\s")


def fleet(c):
    if c.musterd is None:
        c.start_musterd("--heartbeat-timeout", "3s")
    for agent, labels in (("web-1", "role=web"), ("web-2", "role=web"), ("db-1", "role=db")):
        c.start_agent(agent, labels, "--heartbeat-interval", HB)
    wait_until("three connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3)


def normalise(text):
    text = re.sub(r"j-[0-9a-f]+-[0-9]+", "<JOB>", text)
    text = re.sub(r"\b\d+(\.\d+)?(ms|s)\b", "<DUR>", text)
    # placeholders are not as wide as what they stand for: the padding beside them varies
    text = re.sub(r" +<DUR>", " <DUR>", text)
    text = re.sub(r"<JOB>(\S*) +", r"<JOB>\1 ", text)
    text = re.sub(r"\b\d+[smh] ago\b", "<AGO>", text)
    return text


def sorted_blocks(out):
    """Result blocks (a result line and the lines prefixed with its name) sorted by name, as
    they arrive in completion order; other lines kept in order after them."""
    blocks, rest, cur = [], [], None
    for l in out.splitlines():
        m = RESULT_LINE.match(l)
        if m:
            cur = (m.group(1), [l])
            blocks.append(cur)
        elif cur is not None and l.startswith(cur[0] + ": "):
            cur[1].append(l)
        else:
            cur = None
            rest.append(l)
    return "\n".join([l for _, b in sorted(blocks) for l in b] + rest) + "\n"


def check_golden(name, got):
    if os.environ.get("MUSTER_UPDATE_GOLDEN"):
        with open(os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", HERE + "/.."),
                               "integration", "golden", name), "w") as f:
            f.write(got)
        return
    with open(os.path.join(GOLDEN, name)) as f:
        want = f.read()
    assert got == want, "%s differs from the golden file:\n--- want\n%s--- got\n%s" % (name, want, got)


TWO_TASKS = """name: two-tasks
target: {all: true}
tasks:
  - name: build
    shell: {script: "echo building on $MUSTER_AGENT_ID"}
  - name: check
    shell: {script: "[ $MUSTER_AGENT_ID != db-1 ] || { echo db-1 is not ready >&2; exit 4; }; echo ok"}
"""


def test_text_forms_golden(c):
    fleet(c)
    rc, out, err = c.cli("run", "--lines", "2", "--", "seq 5", check=False)
    assert rc == 0, err
    # the first two lines of each host, then how to see the other three
    assert "web-1: ... 3 more lines; see all: muster logs j-" in out, out
    check_golden("run_lines.txt", normalise(sorted_blocks(out)))
    rc, out, _ = c.cli("run", "--tail", "2", "--", "seq 5", check=False)
    assert rc == 0 and "web-1: 5" in out and "web-1: 1\n" not in out, out
    check_golden("run_tail.txt", normalise(sorted_blocks(out)))
    rc, out, _ = c.cli("run", "--summary-only", "--", "[ $MUSTER_AGENT_ID != db-1 ]", check=False)
    assert rc == 1, out
    check_golden("run_summary_only.txt", normalise(out))
    path = os.path.join(c.workdir, "two-tasks.yaml")
    with open(path, "w") as f:
        f.write(TWO_TASKS)
    rc, out, _ = c.cli("submit", path, check=False)
    assert rc == 1 and "web-1/build: building on web-1" in out, out
    check_golden("submit_two_tasks.txt", normalise(sorted_blocks(out)))
    # one target: singular, on stderr and in the summary
    rc, out, err = c.cli("run", "--hosts", "web-1", "--", "true", check=False)
    assert rc == 0 and re.search(r"^job j-\S+: 1 target$", err, re.M), err
    assert ": 1 target: 1 succeeded (" in out, out
    # a 1 s timeout is said as 1s, and the run took about that long, not "0s"
    rc, out, _ = c.cli("run", "--hosts", "web-2", "--timeout", "1s", "--", "sleep 20", check=False)
    assert rc == 1 and "timed out after 1s" in out, out
    # (the agent's clock starts at the spawn, the run's at its first event: ~1 s either way)
    assert re.search(r"^web-2 +TIMED_OUT +signal 15 +(9\d\dms|1\.\d\ds) ", out, re.M), out
    check_golden("run_timeout.txt", normalise(out))
    # a cancelled host has no exit code; status counts it as cancelled, not failed
    rc, out, _ = c.cli("run", "--detach", "--hosts", "db-1", "--", "sleep 30")
    job = out.strip()
    wait_until("db-1 running", lambda: "RUNNING" in c.cli("status", job, check=False)[1])
    rc, out, _ = c.cli("cancel", job)
    assert out == "job %s: cancelling 1 target\n" % job, out
    wait_until("cancelled", lambda: "CANCELLED" in c.cli("status", job, check=False)[1])
    rc, out, _ = c.cli("status", job, check=False)
    assert rc == 1, out
    row = [l for l in out.splitlines() if "/db-1/run" in l][0]
    assert re.search(r" CANCELLED +(-|sig 15) +1 ", row), row  # the signal it got, no exit code
    assert ": cancelled, 1 target: 1 cancelled;" in out, out
    check_golden("status_cancelled.txt", normalise(out))
    rc, out, _ = c.cli("jobs", "--limit", "2")
    check_golden("jobs_table.txt", normalise(out))
    # -q (global, or after the command): what each command prints then (docs/cli.md, "-q")
    ids = c.cli("jobs", "--limit", "2", "-q")[1].split()
    assert len(ids) == 2 and ids[0] == job and all(i.startswith("j-") for i in ids), ids
    assert c.cli("-q", "agents")[1] == "db-1\nweb-1\nweb-2\n"
    assert c.cli("cluster", "-q")[1] == c.addr + "\n"
    assert c.cli("-q", "status", job, check=False)[1] == "cancelled\n"
    assert c.cli("-q", "drain", "web-2")[1] == ""
    assert c.cli("drain", "web-2", "--undrain", "-q")[1] == ""
    assert c.cli("-q", "bundle", "ls")[1] == ""
    rc, out, err = c.cli("-q", "explain", job, check=False)
    assert out.startswith("db-1/run CANCELLED cancelled: ") and "\n" == out[-1], (out, err)
    assert out.count("\n") == 1, out  # one line per run, no job line, no output
    rc, out, err = c.cli("-q", "logs", job, check=False)
    assert "note:" not in err, err


def jq(text, program, *args):
    """Runs `jq -e PROGRAM` over text; asserts it exits 0 (the last output is true). Without
    -s the program runs on each line and the last line's answer decides: use each()."""
    r = subprocess.run(["jq", "-e"] + list(args) + [program], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, "jq -e %r failed (%d) on:\n%s\n%s" % (program, r.returncode,
                                                                  text[:3000], r.stderr)
    return r.stdout


def each(text, kind, check):
    """jq: every line of kind (all lines for None) passes check, and there is one."""
    sel = "." if kind is None else 'select(.kind == "%s")' % kind
    return jq(text, "[.[] | %s | (%s)] | length > 0 and all" % (sel, check), "-s")


EVERY_LINE = '.schema == 1 and (.kind | type) == "string" and (.. | objects | has("id") | not)'


def cli_json(c, *args, rc_ok=(0,)):
    rc, out, err = c.cli("-o", "json", *args, check=False)
    assert rc in rc_ok, (args, rc, err)
    assert out.strip(), (args, err)
    # one object per line, each with the schema and its kind
    each(out, None, EVERY_LINE)
    for line in out.splitlines():
        assert line.startswith("{") and line.endswith("}"), line
    return out


def test_json_through_jq(c):
    # musterd with a secret key, so `secret ls` has something to say
    key = os.path.join(c.workdir, "secret.key")
    c.cli("secret", "keygen", "--out", key)
    c.start_musterd("--heartbeat-timeout", "3s", "--secret-key", key)
    fleet(c)
    cmd = "echo out; [ $MUSTER_AGENT_ID != db-1 ] || exit 3"
    out = cli_json(c, "run", "--", cmd, rc_ok=(1,))
    each(out, "task", '(.jobId | startswith("j-")) and (.exitCode | type) == "number"'
       ' and (.startedAtMs | type) == "number" and (.metrics.wallMs | type) == "number"'
       ' and .signal == 0 and .retryPending == false and .output == "out\\n"')
    each(out, "task", '.agentId != "web-1" or (.exitCode == 0 and .state == "SUCCEEDED")')
    each(out, "task", '.agentId != "db-1" or (.exitCode == 3 and .state == "FAILED")')
    jq(out, '[.[] | select(.kind == "summary")] | length == 1 and (.[0] | .counts.targets == 3'
       ' and .counts.succeeded == 2 and .counts.failed == 1 and .counts.cancelled == 0'
       ' and .notSucceededHosts == ["db-1"] and (.elapsedMs | type) == "number")', "-s")
    job = json.loads(out.splitlines()[-1])["jobId"]
    # watch replays the same results
    out = cli_json(c, "watch", job, rc_ok=(1,))
    jq(out, '[.[] | select(.kind == "task")] | length == 3', "-s")
    # status: the job, then one line per task run; the counts are the run's
    out = cli_json(c, "status", job, rc_ok=(1,))
    jq(out, '.[0] | .kind == "job" and .jobId == "%s" and .counts.failed == 1 and .targets == 3'
       ' and (.createdAtMs | type) == "number" and .unreachableHosts == [] and (has("tasks") | not)'
       % job, "-s")
    jq(out, '[.[1:][] | .kind == "task"] | length == 3 and all', "-s")
    # jobs: the same names (jobId, counts) as status
    out = cli_json(c, "jobs", "--limit", "1")
    each(out, "job", '.jobId == "%s" and .counts.succeeded == 2' % job)
    # detach, cancel: a cancelled run has no exit code (null), every other field is there
    out = cli_json(c, "run", "--detach", "--hosts", "db-1", "--", "sleep 30")
    jq(out, '.kind == "submitted" and .targets == 1 and (.jobId | startswith("j-"))')
    sleeper = json.loads(out)["jobId"]
    wait_until("db-1 running", lambda: "RUNNING" in c.cli("status", sleeper, check=False)[1])
    out = cli_json(c, "cancel", sleeper)
    jq(out, '.kind == "cancel" and .jobId == "%s" and .cancelledTargets == 1' % sleeper)
    wait_until("cancelled", lambda: job_status(
        c.cli("-o", "json", "status", sleeper, check=False)[1])["state"] == "JOB_CANCELLED")
    out = cli_json(c, "status", sleeper, rc_ok=(1,))
    each(out, "task", '.state == "CANCELLED" and .exitCode == null'
       ' and (.finishedAtMs | type) == "number"')
    each(out, "job", '.counts.cancelled == 1 and .counts.failed == 0')
    # logs: one line per chunk
    out = cli_json(c, "logs", job)
    each(out, "log", '(.taskId | type) == "string"')
    # agents and the cluster: numbers as numbers, agentId
    out = cli_json(c, "agents")
    each(out, "agent", '(.agentId | type) == "string" and (.memoryBytes | type) == "number"'
       ' and (.lastHeartbeatMs | type) == "number" and (.metrics.load1 | type) == "number"')
    jq(out, '[.[] | .agentId] | sort == ["db-1", "web-1", "web-2"]', "-s")
    out = cli_json(c, "cluster")
    jq(out, '.kind == "cluster"')
    out = cli_json(c, "audit", "--limit", "3")
    each(out, "audit", '(.auditId | type) == "string"')


if __name__ == "__main__":
    main([
        test_text_forms_golden,
        test_json_through_jq,
    ])
