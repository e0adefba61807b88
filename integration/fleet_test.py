"""End-to-end: a mixed fleet — three real muster-agent processes plus a few hundred simulated
agents (integration/sim_agents, one process, each stream a real gRPC agent stream) — and the
rollout rules checked from the job's own event stream (WatchJob over gRPC, client code
generated from our .proto files by Debian's python3-grpc-tools), not from timing.

Also the CLI's output forms against golden files (integration/golden/): the result table,
the clubak-style grouping and the JSON lines, with run-specific values (job ids, durations,
timestamps) replaced by placeholders. MUSTER_UPDATE_GOLDEN=1 rewrites the golden files.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import grpc

from harness import Cluster, Proc, job_status, main, wait_until

HB = "300ms"
SIMS = 200
HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "LOST"}
ACTIVE = {"ASSIGNED", "STARTING", "RUNNING"}


def sim_bin():
    return os.path.abspath(sys.argv[4])


def load_stubs(workdir):
    """Generates Python client code from protos/muster/v1/*.proto (Bazel data files)."""
    out = os.path.join(workdir, "stubs")
    src = os.path.join(workdir, "protos")
    os.makedirs(os.path.join(src, "muster", "v1"), exist_ok=True)
    os.makedirs(out, exist_ok=True)
    names = ["task", "job", "agent", "admin"]
    for n in names:
        shutil.copy(os.path.join("protos", "muster", "v1", n + ".proto"),
                    os.path.join(src, "muster", "v1"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + src, "--python_out=" + out,
                    "--grpc_python_out=" + out] + ["muster/v1/%s.proto" % n for n in names],
                   check=True)
    sys.path.insert(0, out)
    from muster.v1 import admin_pb2, admin_pb2_grpc, job_pb2, task_pb2  # noqa: E401
    return admin_pb2, admin_pb2_grpc, job_pb2, task_pb2


def mixed_fleet(c, sims=SIMS):
    c.start_musterd("--heartbeat-timeout", "3s")
    c.start_agent("web-1", "role=web,dc=eu-west", "--heartbeat-interval", HB)
    c.start_agent("web-2", "role=web,dc=us-east", "--heartbeat-interval", HB)
    c.start_agent("db-1", "role=db,dc=eu-west", "--heartbeat-interval", HB)
    sim = Proc("sim-agents", [sim_bin(), "--control", c.addr, "--agents", str(sims),
                              "--heartbeat-interval", "1s"], c.workdir)
    c.agents["sim-agents"] = sim
    wait_until("%d connected agents" % (sims + 3),
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == sims + 3,
               timeout=30, step=0.2)
    assert "ready %d" % sims in sim.text(), sim.text()


def watch_events(c, job_id):
    """Every JobEvent of job_id from its start (WatchJob replays the history first)."""
    admin_pb2, admin_pb2_grpc, _, _ = c.stubs
    with grpc.insecure_channel(c.addr) as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        return list(stub.WatchJob(admin_pb2.WatchJobRequest(job_id=job_id), timeout=60))


def transitions(c, events):
    """(task id, state name, retry pending) for each task-state event, in stream order."""
    task_pb2 = c.stubs[3]
    out = []
    for ev in events:
        if ev.HasField("task") and not ev.HasField("output") and not ev.HasField("progress"):
            out.append((ev.task.task_id, task_pb2.TaskState.Name(ev.task.state),
                        ev.task.retry_pending))
    return out


def in_flight_profile(trans):
    """Walks the events: the highest number of targets active at once, and every start as
    (in-flight count when it started)."""
    active, peak, starts, seen_final = set(), 0, [], set()
    for task, state, retry in trans:
        if state in ACTIVE and task not in active and task not in seen_final:
            active.add(task)
            starts.append(len(active))
            peak = max(peak, len(active))
        elif state in FINAL and not retry:
            active.discard(task)
            seen_final.add(task)
    return peak, starts, seen_final


def submit(c, spec):
    admin_pb2, admin_pb2_grpc, job_pb2, _ = c.stubs
    with grpc.insecure_channel(c.addr) as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        return stub.SubmitJob(admin_pb2.SubmitJobRequest(spec=spec), timeout=30).job_id


def shell_spec(c, name, command, target, **rollout):
    _, _, job_pb2, task_pb2 = c.stubs
    spec = job_pb2.JobSpec(name=name, target=target, rollout=job_pb2.Rollout(**rollout))
    t = spec.tasks.add()
    t.name = "main"
    t.shell.script = command
    return spec


def test_percentage_concurrency_from_events(c):
    mixed_fleet(c)
    c.stubs = load_stubs(c.workdir)
    _, _, job_pb2, _ = c.stubs
    n = SIMS + 3
    limit = n * 10 // 100
    job = submit(c, shell_spec(c, "pct", "hostname", job_pb2.Target(all=True),
                               max_concurrency="10%"))
    events = watch_events(c, job)
    peak, starts, done = in_flight_profile(transitions(c, events))
    assert len(done) == n, "%d of %d targets finished" % (len(done), n)
    assert peak <= limit, "%d targets active at once; 10%% of %d allows %d" % (peak, n, limit)
    assert peak == limit, "never reached the limit (%d of %d): the test proves nothing" % (peak, limit)
    last = [e for e in events if e.job_state][-1]
    assert job_pb2.JobState.Name(last.job_state) == "JOB_SUCCEEDED", last
    # a count limit over a selector that mixes real and simulated agents
    job = submit(c, shell_spec(c, "count", "hostname",
                               job_pb2.Target(hosts=["web-*", "sim-0000*"]), max_concurrency="4"))
    peak, _, done = in_flight_profile(transitions(c, watch_events(c, job)))
    assert len(done) == 2 + 10 and peak == 4, (len(done), peak)


def test_batches_from_events(c):
    mixed_fleet(c)
    c.stubs = load_stubs(c.workdir)
    _, _, job_pb2, _ = c.stubs
    batch = 25
    job = submit(c, shell_spec(c, "batches", "hostname", job_pb2.Target(selector="role=sim"),
                               batch=batch))
    trans = transitions(c, watch_events(c, job))
    # a batch starts only when nothing is active; within it at most `batch` targets start
    active, batches, in_batch, finished = set(), 0, 0, set()
    for task, state, retry in trans:
        if state in ACTIVE and task not in active and task not in finished:
            if not active:
                batches, in_batch = batches + 1, 0
            in_batch += 1
            assert in_batch <= batch, "batch %d started %d targets (batch size %d)" % (
                batches, in_batch, batch)
            active.add(task)
        elif state in FINAL and not retry:
            active.discard(task)
            finished.add(task)
    assert len(finished) == SIMS, len(finished)
    assert batches == SIMS // batch, "%d batches for %d targets of %d" % (batches, SIMS, batch)


def test_max_errors_percentage_stops_rollout(c):
    mixed_fleet(c, sims=20)
    c.stubs = load_stubs(c.workdir)
    _, _, job_pb2, _ = c.stubs
    # real agents fail, one at a time; 34% of 3 allows one error: the second stops the rest
    job = submit(c, shell_spec(c, "errs", "exit 5", job_pb2.Target(hosts=["web-1", "web-2", "db-1"]),
                               max_concurrency="1", max_errors="34%"))
    trans = transitions(c, watch_events(c, job))
    finals = {t: s for t, s, r in trans if s in FINAL and not r}
    assert sorted(finals.values()) == ["CANCELLED", "FAILED", "FAILED"], finals


def test_any_fails_over_when_agent_killed(c):
    """`--any role=web --retries 1`: the chosen host dies mid-task; after the grace period the
    retry runs on the other web host, and the job succeeds there."""
    mixed_fleet(c, sims=10)
    rc, out, _ = c.cli("run", "--detach", "--any", "role=web", "--retries", "1", "--",
                       '[ "$MUSTER_ATTEMPT" = 1 ] && sleep 27; echo "ran on $MUSTER_AGENT_ID"')
    job = out.strip()
    def running_on():
        st = job_status(c.cli("-o", "json", "status", job, check=False)[1])
        t = st["tasks"][0]
        return t.get("agentId") if t["state"] == "RUNNING" else None
    first = wait_until("task running", running_on)
    assert first in ("web-1", "web-2"), first
    c.agents[first].kill()
    del c.agents[first]
    subprocess.run(["pkill", "-f", "sleep 27"])
    st = wait_until("job finished", lambda: (lambda j: j if j["state"] != "JOB_RUNNING" else None)(
        job_status(c.cli("-o", "json", "status", job, check=False)[1])), timeout=20)
    other = "web-2" if first == "web-1" else "web-1"
    task = st["tasks"][0]
    assert st["state"] == "JOB_SUCCEEDED", st
    assert task["agentId"] == other and task["attempt"] == 2, task
    assert "ran on %s" % other in task["outputTail"], task


def test_drain_and_undrain(c):
    """A drained agent finishes what it runs, gets no new host runs, and is skipped by
    targets; naming only drained agents is an error; --undrain brings it back."""
    mixed_fleet(c, sims=5)
    rc, out, _ = c.cli("run", "--detach", "--hosts", "web-1", "--", "sleep 1.5; echo finished")
    running = out.strip()
    wait_until("task running", lambda: "RUNNING" in c.cli("status", running, check=False)[1])
    rc, out, err = c.cli("drain", "web-1")
    assert rc == 0 and "web-1: draining" in out, (out, err)
    drained = c.agents_json("--state", "draining")
    assert set(drained) == {"web-1"}, drained
    # what ran there finishes
    st = wait_until("drained agent's task done", lambda: (lambda j: j if j["state"] != "JOB_RUNNING" else None)(
        job_status(c.cli("-o", "json", "status", running, check=False)[1])), timeout=20)
    assert st["state"] == "JOB_SUCCEEDED" and "finished" in st["tasks"][0]["outputTail"], st
    # new runs skip it
    rc, out, _ = c.cli("-o", "json", "run", "-t", "role=web", "--", "hostname", check=False)
    hosts = {json.loads(l).get("agentId") for l in out.splitlines() if '"taskId"' in l}
    assert rc == 0 and hosts == {"web-2"}, out
    rc, _, err = c.cli("run", "--hosts", "web-1", "--", "true", check=False)
    assert rc != 0 and "matches only draining agents" in err, err
    rc, _, err = c.cli("drain", "no-such-agent", check=False)
    assert rc == 1 and "not known" in err, err
    # back
    rc, out, _ = c.cli("drain", "--undrain", "web-1")
    assert "web-1: connected" in out, out
    rc, out, _ = c.cli("-o", "json", "run", "-t", "role=web", "--", "hostname", check=False)
    hosts = {json.loads(l).get("agentId") for l in out.splitlines() if '"taskId"' in l}
    assert rc == 0 and hosts == {"web-1", "web-2"}, out
    assert "draining: the control plane starts no new tasks here" in c.agents["web-1"].text()
    # every admin action leaves an audit line with the caller's address
    log = c.musterd.text()
    assert re.search(r"audit: peer=ipv4:127\.0\.0\.1:\d+ who=anonymous action=agent\.drain target=web-1 outcome=ok", log), log[-2000:]
    assert "action=agent.undrain target=web-1" in log
    assert re.search(r"action=job\.submit target=j-\S+ name='run: hostname' targets=1 tasks=1 outcome=ok", log)
    assert re.search(r"action=job\.submit target=- name='run: true' outcome=refused: target\.hosts\[0\]: 'web-1' matches only draining", log)


def normalise(text):
    text = re.sub(r"j-[0-9a-f]+-[0-9]+", "<JOB>", text)
    text = re.sub(r"\b\d+(\.\d+)?(ms|s)\b", "<DUR>", text)
    # placeholders are not as wide as what they stand for: the padding beside them varies
    text = re.sub(r" +<DUR>", " <DUR>", text)
    text = re.sub(r"<JOB>(\S*) +", r"<JOB>\1 ", text)
    text = re.sub(r'"(\w*(At|Ms|Bytes|Pid|Kib|Usec))": ?"?-?\d+"?', r'"\1": "<N>"', text)
    return text


def normalise_json_lines(out):
    lines = []
    for line in out.splitlines():
        obj = json.loads(line)
        for k in list(obj):
            if k in ("jobId", "startedAtMs", "finishedAtMs", "metrics", "elapsedMs", "createdAtMs"):
                obj[k] = "<%s>" % k
        if "taskId" in obj:
            obj["taskId"] = re.sub(r"^j-[0-9a-f]+-[0-9]+", "<JOB>", obj["taskId"])
        lines.append(json.dumps(obj, sort_keys=True))
    # results arrive in completion order; the golden form is sorted by host
    results = sorted(l for l in lines if '"taskId"' in l)
    return "\n".join(results + [l for l in lines if '"taskId"' not in l]) + "\n"


def check_golden(name, got):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("MUSTER_UPDATE_GOLDEN"):
        with open(os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", HERE + "/.."),
                               "integration", "golden", name), "w") as f:
            f.write(got)
        return
    with open(path) as f:
        want = f.read()
    assert got == want, "%s differs from the golden file:\n--- want\n%s--- got\n%s" % (name, want, got)


RESULT_LINE = re.compile(r"^(\S+)\s+(SUCCEEDED|FAILED|TIMED_OUT|CANCELLED|LOST|UNREACHABLE)\s")


def sorted_block(out):
    """The result blocks (a result line, then that host's prefixed output lines) sorted by host
    (they arrive in completion order); the other lines kept, in order, after them."""
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
    lines = [l for _, b in sorted(blocks) for l in b]
    return "\n".join(lines + rest) + "\n"


def test_cli_output_golden(c):
    c.start_musterd("--heartbeat-timeout", "3s")
    c.start_agent("web-1", "role=web,dc=eu-west", "--heartbeat-interval", HB)
    c.start_agent("web-2", "role=web,dc=us-east", "--heartbeat-interval", HB)
    c.start_agent("db-1", "role=db,dc=eu-west", "--heartbeat-interval", HB)
    wait_until("three connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3)
    cmd = 'echo "same line"; [ "$MUSTER_AGENT_ID" = db-1 ] && { echo db only; exit 3; }; true'
    rc, out, _ = c.cli("run", "--", cmd, check=False)
    assert rc == 1, out
    check_golden("run_table.txt", normalise(sorted_block(out)))
    rc, out, _ = c.cli("run", "--group", "--", cmd, check=False)
    assert rc == 1, out
    check_golden("run_group.txt", normalise(sorted_block(out)))
    rc, out, _ = c.cli("-o", "json", "run", "--", cmd, check=False)
    assert rc == 1, out
    check_golden("run_json.jsonl", normalise_json_lines(out))
    rc, out, _ = c.cli("run", "--quiet", "-t", "role=web", "--", "true", check=False)
    assert rc == 0, out
    check_golden("run_quiet.txt", normalise(out))
    # the agents table: last seen and load vary, the rows are sorted by id; the TASKS column
    # follows heartbeats, so wait until the runs above are no longer counted as running
    def settled():
        rc, out, _ = c.cli("agents", check=False)
        rows = out.splitlines()[1:-1]
        return out if rc == 0 and all(r.split()[-1] == "0" for r in rows) else None
    out = wait_until("no agent counting a running task", settled, timeout=15)
    lines = [re.sub(r"\S+ ago +\d+\.\d\d +(\d+)$", r"<SEEN> <LOAD> \1", l)
             for l in out.splitlines()]
    check_golden("agents_table.txt", "\n".join([lines[0]] + sorted(lines[1:-1]) + lines[-1:]) + "\n")


def test_placement_respects_capacity(c):
    """45 one-task jobs (3 s each) asking 1.5 CPU, `any` of 30 simulated agents declaring 1 or
    2 CPU (15 each): from every job's WatchJob events, no agent ever ran more at once than its
    CPU holds (none on the 1-CPU agents, one at a time on 2 CPU), the 30 that did not fit at
    first said why while waiting, and every job still ran once capacity freed."""
    c.stubs = load_stubs(c.workdir)
    c.start_musterd("--heartbeat-timeout", "5s")
    sim = Proc("sim-agents", [sim_bin(), "--control", c.addr, "--agents", "30", "--prefix", "cap",
                              "--cpu-mix", "1000,2000", "--task-time", "3s",
                              "--heartbeat-interval", "1s"], c.workdir)
    c.agents["sim-agents"] = sim
    wait_until("30 connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 30, timeout=30, step=0.2)
    # ListAgents is paged: the CLI reads every page, 7 agents a call, and gets each agent once
    rc, out, err = c.cli("-o", "json", "agents", "--page-size", "7", "-t", "role=sim")
    paged = [json.loads(l)["agentId"] for l in out.splitlines()]
    assert paged == ["cap-%05d" % i for i in range(30)], (out, err)
    _, _, job_pb2, _ = c.stubs
    jobs = []
    for i in range(45):
        spec = shell_spec(c, "cap-%d" % i, "hostname", job_pb2.Target(any="role=sim"))
        spec.tasks[0].resources.requests.cpu = 1500
        jobs.append(submit(c, spec))
    cap = {"cap-%05d" % i: [1000, 2000][i % 2] // 1500 for i in range(30)}
    points, waited, ran = [], 0, 0
    for job_id in jobs:
        final, saw_wait = None, False
        for ev in watch_events(c, job_id):
            if not ev.HasField("task"):
                continue
            if ev.task.message.startswith("waiting: no agent with 1.5 CPU free among 30 matching"):
                saw_wait = True
            final = ev.task
        assert final is not None and c.stubs[3].TaskState.Name(final.state) == "SUCCEEDED", final
        assert cap[final.agent_id] >= 1, "%s ran on %s (1 CPU)" % (job_id, final.agent_id)
        points.append((final.started_at_ms, 1, final.agent_id))
        points.append((final.finished_at_ms, -1, final.agent_id))
        waited += saw_wait
        ran += 1
    running = {}
    for at, d, agent in sorted(points, key=lambda p: (p[0], p[1])):  # ends before starts
        running[agent] = running.get(agent, 0) + d
        assert running[agent] <= cap[agent], "%s over capacity at %d: %d running (holds %d)" % (
            agent, at, running[agent], cap[agent])
    assert ran == 45
    # from the CLI: a request no agent could hold is refused at submit, naming the largest;
    # count/strategy/request-cpu reach the placement (two distinct 2-CPU agents)
    rc, _, err = c.cli("run", "--any", "role=sim", "--request-cpu", "3000", "--", "true", check=False)
    assert rc != 0 and "3 CPU is more than any agent matching 'role=sim' has (largest: cap-00001 " \
        "with 2 CPU)" in err, (rc, err)
    rc, out, err = c.cli("-o", "json", "run", "--any", "role=sim", "--count", "2", "--strategy",
                         "binpack", "--request-cpu", "1500", "--", "true", check=False)
    assert rc == 0, (rc, out, err)
    hosts = {json.loads(l).get("agentId") for l in out.splitlines() if l.startswith("{")}
    assert len(hosts - {None}) == 2 and all(cap[h] == 1 for h in hosts - {None}), out
    assert waited >= 25, "only %d jobs showed a waiting reason" % waited


class PlaintextCluster(Cluster):
    """This suite is the one that keeps the plaintext path (`--insecure` on both daemons): its
    200 simulated agents share one certificate-less process."""
    insecure = True


if __name__ == "__main__":
    main(make_cluster=PlaintextCluster, test_functions=[
        test_percentage_concurrency_from_events,
        test_batches_from_events,
        test_max_errors_percentage_stops_rollout,
        test_any_fails_over_when_agent_killed,
        test_drain_and_undrain,
        test_cli_output_golden,
        test_placement_respects_capacity,
    ])
