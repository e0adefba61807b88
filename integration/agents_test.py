"""End-to-end: musterd and three agents as real processes.

The operator's story: three hosts join with their labels; one host dies and shows as
disconnected within the heartbeat timeout; a hung host is dropped when its heartbeats stop
and comes back when it recovers; the control plane restarts and every agent comes back on
its own; bad streams and bad configs get clear errors and the daemon keeps serving.
"""
import json
import os
import signal
import subprocess
import time

import grpc

from harness import Cluster, job_status, main, wait_until  # noqa: F401

HEARTBEAT = "300ms"
TIMEOUT = "2s"


def three_agents(c):
    c.start_musterd("--heartbeat-timeout", TIMEOUT)
    c.start_agent("web-1", "role=web,dc=eu-west", "--heartbeat-interval", HEARTBEAT)
    c.start_agent("web-2", "role=web,dc=us-east", "--heartbeat-interval", HEARTBEAT)
    c.start_agent("db-1", "role=db,dc=eu-west,tier=gold", "--heartbeat-interval", HEARTBEAT)
    wait_until("three connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3)


def test_agents_register_with_labels(c):
    three_agents(c)
    agents = c.agents_json()
    assert agents["web-1"]["labels"] == {"role": "web", "dc": "eu-west"}, agents["web-1"]
    assert agents["db-1"]["labels"] == {"role": "db", "dc": "eu-west", "tier": "gold"}
    for a in agents.values():
        assert a["hostname"], a
        assert int(a["cpuCount"]) >= 1
        assert int(a["memoryBytes"]) > 0
        assert a["agentVersion"]
        assert a["capacity"]["slots"] >= 1
    # heartbeats carry metrics
    wait_until("metrics from heartbeats",
               lambda: all("metrics" in a and int(a["metrics"].get("agentRssBytes", 0)) > 0
                           for a in c.agents_json().values()))
    # selectors filter
    assert set(c.agents_json("-t", "dc=eu*")) == {"web-1", "db-1"}
    assert set(c.agents_json("-t", "role=web,!tier")) == {"web-1", "web-2"}
    # built-in facts are selector terms too, with numeric comparisons; a label of the same
    # name wins over the fact
    facts = {f["name"]: f["value"] for f in agents["web-1"]["facts"]}
    assert facts["os"] == "linux" and facts["arch"] == os.uname().machine, facts
    assert facts["kernel"] == os.uname().release and int(facts["cpus"]) == os.cpu_count(), facts
    assert float(facts["mem_gib"]) > 0 and facts["hostname"] == agents["web-1"]["hostname"], facts
    assert set(c.agents_json("-t", "os=linux,cpus>=1,mem_gib>0.1")) == {"web-1", "web-2", "db-1"}
    assert set(c.agents_json("-t", "cpus>100000")) == set()
    assert set(c.agents_json("-t", "dc=eu*,cpus<=%d" % os.cpu_count())) == {"web-1", "db-1"}
    rc, _, err = c.cli("agents", "-t", "cpus>=eight", check=False)
    assert rc == 2 and "'>=' compares with 'eight', which is not a number" in err, err
    rc, out, err = c.cli("-o", "json", "run", "-t", "role=db,os=linux,cpus>=1", "--", "echo on $(hostname)")
    assert rc == 0 and '"agentId":"db-1"' in out.replace(" ", ""), (out, err)
    rc, _, err = c.cli("run", "-t", "mem_gib>1000000", "--", "true", check=False)
    assert rc == 2 and "matches no agent" in err, err
    # the table names every agent and its labels
    _, out, _ = c.cli("agents")
    assert "web-2" in out and "role=web,dc=us-east" in out and "3 agents, 3 connected" in out, out


def test_killed_agent_disconnects_within_timeout(c):
    three_agents(c)
    t0 = time.monotonic()
    c.agents["web-2"].kill()
    wait_until("web-2 disconnected", lambda: c.states().get("web-2") == "AGENT_DISCONNECTED",
               timeout=2.5)
    assert time.monotonic() - t0 < 2.5
    del c.agents["web-2"]
    # a hung agent (stopped, socket open) is dropped by the heartbeat timeout
    c.agents["db-1"].p.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    wait_until("db-1 disconnected", lambda: c.states().get("db-1") == "AGENT_DISCONNECTED",
               timeout=5)
    took = time.monotonic() - t0
    assert took >= 1.0, "dropped after %.2fs, before the 2s timeout could pass" % took
    reason = c.agents_json()["db-1"]["disconnectReason"]
    assert "no heartbeat" in reason, reason
    assert c.states()["web-1"] == "AGENT_CONNECTED"
    # and it comes back once it runs again
    c.agents["db-1"].p.send_signal(signal.SIGCONT)
    wait_until("db-1 back", lambda: c.states().get("db-1") == "AGENT_CONNECTED", timeout=10)


def test_musterd_restart_brings_agents_back(c):
    three_agents(c)
    pids = {k: p.pid for k, p in c.agents.items()}
    assert c.musterd.stop() == 0
    time.sleep(0.5)
    c.start_musterd("--heartbeat-timeout", TIMEOUT)
    wait_until("all three reconnected after the restart",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3, timeout=15)
    assert {k: p.pid for k, p in c.agents.items()} == pids, "agents were restarted"
    assert all(p.alive() for p in c.agents.values())


def _connect_call(c, kind="agent", name="intruder"):
    ch = c.grpc_channel(kind, name)
    return ch, ch.stream_stream("/muster.v1.AgentGateway/Connect",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)


def test_bad_streams_are_refused_and_daemon_goes_on(c):
    c.start_musterd("--heartbeat-timeout", TIMEOUT)
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HEARTBEAT)
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    ch, connect = _connect_call(c)
    cases = [
        ([b"\xff\xff\xff\xff\xff"], grpc.StatusCode.INVALID_ARGUMENT, "malformed AgentMessage"),
        # field 2 = Heartbeat (empty) before any Hello
        ([b"\x12\x00"], grpc.StatusCode.INVALID_ARGUMENT, "must be Hello"),
        # an agent certificate for "intruder" saying Hello as the connected "web-1"
        ([b"\x0a\x07\x0a\x05web-1"], grpc.StatusCode.PERMISSION_DENIED,
         "certificate is for 'intruder'; its Hello claims to be 'web-1'"),
        # Hello with an invalid id
        ([b"\x0a\x06\x0a\x04a b!"], grpc.StatusCode.INVALID_ARGUMENT, "agent_id"),
    ]
    for msgs, code, text in cases:
        try:
            for _ in connect(iter(msgs), timeout=5):
                pass
            raise AssertionError("stream %r was not refused" % msgs)
        except grpc.RpcError as e:
            assert e.code() == code, (msgs, e.code(), e.details())
            assert text in e.details(), (msgs, e.details())
    ch.close()
    ch = c.grpc_channel("admin", "test-admin")
    # a method that is in no permission table: denied before anything else looks at it
    nope = ch.unary_unary("/muster.v1.Admin/NoSuchMethod", request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    try:
        nope(b"", timeout=5)
        raise AssertionError("unknown method answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.code()
        assert "not in the permission table" in e.details(), e.details()
    # a malformed admin request
    la = ch.unary_unary("/muster.v1.Admin/ListAgents", request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)
    try:
        la(b"\xff\xff", timeout=5)
        raise AssertionError("malformed request answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
    ch.close()
    # the daemon still serves everyone, and the real agent was never disturbed
    assert c.musterd.alive()
    assert c.states() == {"web-1": "AGENT_CONNECTED"}, c.states()


def _job(c, job):
    """`muster -o json status JOB` (which exits 1 once the job failed)."""
    rc, out, err = c.cli("-o", "json", "status", job, check=False)
    assert out.strip(), (rc, err)
    return job_status(out)


def _history(c, job):
    """The task runs (TaskRun objects) `muster watch` replays for a finished job."""
    rc, out, err = c.cli("-o", "json", "watch", job, check=False, timeout=60)
    assert rc in (0, 1), err
    return [json.loads(line) for line in out.splitlines() if "taskId" in line]


def _kill_pid_in(path):
    """Kills the process whose pid a task wrote to path (the agent's kill -9 left it running
    where the task's cgroup did not take it down)."""
    try:
        pid = int(open(path).read().strip())
        if b"sleep" in open("/proc/%d/cmdline" % pid, "rb").read():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


LOST_BY_RESTART = "agent restarted (previous process ended while the task ran)"


def test_restarted_agent_reports_lost_tasks_at_once(c):
    """kill -9 an agent while two tasks run there and start it again: its Hello says which
    attempts its previous process was running, so they are LOST as soon as it is back (not
    after the 20 s heartbeat grace), saying why; the task with a retry runs again and
    succeeds."""
    c.start_musterd("--heartbeat-timeout", "20s")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HEARTBEAT)
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    pids, marker = os.path.join(c.workdir, "pids"), os.path.join(c.workdir, "ran-once")
    os.makedirs(pids)
    once = c.cli("run", "--detach", "--hosts", "web-1", "--",
                 "echo $$ > %s/once; exec sleep 60" % pids)[1].strip()
    retried = c.cli("run", "--detach", "--hosts", "web-1", "--retries", "1", "--",
                    "if [ -e %s ]; then echo second attempt; exit 0; fi; touch %s; "
                    "echo $$ > %s/retried; exec sleep 60" % (marker, marker, pids))[1].strip()
    for job in (once, retried):
        wait_until("%s running" % job, lambda: _job(c, job)["tasks"][0]["state"] == "RUNNING")
    time.sleep(1)  # the control plane has acked RUNNING: the agent's journal no longer holds it
    c.agents["web-1"].kill()
    for name in ("once", "retried"):
        _kill_pid_in(os.path.join(pids, name))
    before = c.agents_json()["web-1"]["connectedAtMs"]
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HEARTBEAT)
    back = wait_until("web-1 back", lambda: (lambda a: a if a["state"] == "AGENT_CONNECTED" and
                                             a["connectedAtMs"] != before else None)(
        c.agents_json()["web-1"]))
    st = wait_until("the first task LOST", lambda: (lambda j: j if j["state"] != "JOB_RUNNING"
                                                    else None)(_job(c, once)), timeout=10)
    task = st["tasks"][0]
    assert st["state"] == "JOB_FAILED" and task["state"] == "LOST", st
    assert task["message"] == LOST_BY_RESTART, task
    took = int(task["finishedAtMs"]) - int(back["connectedAtMs"])
    assert took < 2000, "LOST %d ms after the new Hello" % took
    st = wait_until("the retried task done", lambda: (lambda j: j if j["state"] != "JOB_RUNNING"
                                                      else None)(_job(c, retried)), timeout=20)
    task = st["tasks"][0]
    assert st["state"] == "JOB_SUCCEEDED" and task["attempt"] == 2, st
    assert "second attempt" in task["outputTail"], task
    assert "%s/web-1/run attempt 1 %s; retrying" % (retried, LOST_BY_RESTART) in c.musterd.text()


def test_reconnected_agent_keeps_its_running_tasks(c):
    """The agent's stream drops while its process lives on (here a second stream with its
    certificate replaces it, as when the old one is half dead): it reconnects, its Hello lists
    nothing lost, and the task it was running goes on to succeed, as the same attempt."""
    c.start_musterd("--heartbeat-timeout", "3s")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HEARTBEAT)
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    job = c.cli("run", "--detach", "--hosts", "web-1", "--", "sleep 4; echo done")[1].strip()
    wait_until("task running", lambda: _job(c, job)["tasks"][0]["state"] == "RUNNING")
    before = c.agents_json()["web-1"]["connectedAtMs"]
    ch, connect = _connect_call(c, name="web-1")
    try:
        for _ in connect(iter([b"\x0a\x07\x0a\x05web-1"]), timeout=5):
            pass  # Welcome; then our half-close ends this stream
    except grpc.RpcError:
        pass
    ch.close()
    wait_until("web-1 reconnected", lambda: (lambda a: a["state"] == "AGENT_CONNECTED" and
                                             a["connectedAtMs"] != before)(c.agents_json()["web-1"]))
    assert "replaced by a new stream" in c.musterd.text(), c.musterd.text()[-2000:]
    st = wait_until("job done", lambda: (lambda j: j if j["state"] != "JOB_RUNNING" else None)(
        _job(c, job)), timeout=20)
    task = st["tasks"][0]
    assert st["state"] == "JOB_SUCCEEDED" and task["attempt"] == 1, st
    assert "done" in task["outputTail"], task
    assert all(t["state"] != "LOST" for t in _history(c, job)), _history(c, job)


def test_bad_config_and_flags(c):
    bad = os.path.join(c.workdir, "agent.yaml")
    with open(bad, "w") as f:
        f.write("id: ok-id\nlabels:\n  role: web\nheartbeat_interval: 5x\n")
    r = subprocess.run([c.agent_bin, "--config", bad], capture_output=True, text=True)
    assert r.returncode == 2, r
    assert "%s:4: field 'heartbeat_interval'" % bad in r.stderr, r.stderr
    r = subprocess.run([c.agent_bin, "--no-such-flag"], capture_output=True, text=True)
    assert r.returncode == 2 and "--no-such-flag" in r.stderr, r
    r = subprocess.run([c.musterd_bin, "--listen", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2 and "--listen" in r.stderr, r
    srv = os.path.join(c.workdir, "musterd.yaml")
    with open(srv, "w") as f:
        f.write("listen: 127.0.0.1:1\nbogus_field: 3\n")
    r = subprocess.run([c.musterd_bin, "--config", srv], capture_output=True, text=True)
    assert r.returncode == 2 and "%s:2: field 'bogus_field'" % srv in r.stderr, r.stderr
    r = subprocess.run([c.cli_bin, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, r
    cli_errors_say_what_to_check(c)


def cli(c, *args, env=None):
    r = subprocess.run([c.cli_bin] + list(args), capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})), timeout=60)
    return r.returncode, r.stderr


def cli_errors_say_what_to_check(c):
    """An operator's mistakes get one sentence naming what to check, and the exit code says
    whether it was the command line (2) or the call (1)."""
    # nothing listening: what went wrong, where, and what to check; gRPC's words on a second line
    rc, err = cli(c, "--addr", c.addr, "agents")
    lines = err.splitlines()
    assert rc == 1 and lines[0] == (
        "muster agents: cannot reach the control plane at %s (connection refused): is musterd "
        "running? set --addr or MUSTER_ADDR" % c.addr), err
    assert lines[1].startswith("detail: UNAVAILABLE: ") and "refused" in lines[1], err
    # a host without a port is refused before any dial, with the fix suggested
    rc, err = cli(c, "--addr", "127.0.0.1", "agents")
    assert (rc, err) == (2, "muster: --addr: '127.0.0.1' has no port: did you mean "
                            "'127.0.0.1:7400'?\n"), (rc, err)
    rc, err = cli(c, "agents", env={"MUSTER_ADDR": "[::1]:7400, 127.0.0.1:99999"})
    assert (rc, err) == (2, "muster: MUSTER_ADDR: '127.0.0.1:99999' is not HOST:PORT with a port "
                            "from 1 to 65535\n"), (rc, err)
    # typos: one line pointing at the closest name and at --help, not the whole usage
    rc, err = cli(c, "agnets")
    assert (rc, err) == (2, "muster: unknown command 'agnets'; did you mean 'agents'? see "
                            "'muster --help'\n"), (rc, err)
    rc, err = cli(c, "--adr", c.addr, "agents")
    assert (rc, err) == (2, "muster: unknown option '--adr'; did you mean '--addr'? see "
                            "'muster --help'\n"), (rc, err)

    # a control plane whose certificate our CA did not sign: the handshake is named
    c.start_musterd()
    other = os.path.join(c.workdir, "other-ca")
    os.makedirs(other, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", other + "/ca.key",
                    "-out", other + "/ca.crt", "-subj", "/CN=some other CA", "-days", "2"],
                   check=True, capture_output=True)
    rc, err = cli(c, "--addr", c.addr, "agents", env={"MUSTER_CA": other + "/ca.crt"})
    lines = err.splitlines()
    assert rc == 1 and lines[0] == (
        "muster agents: cannot reach the control plane at %s: the TLS handshake failed: check "
        "--ca/--cert/--key (MUSTER_CA, MUSTER_CERT, MUSTER_KEY) and that the server certificate "
        "names 127.0.0.1" % c.addr), err
    assert lines[1].startswith("detail: UNAVAILABLE: "), err

    # the control plane goes away while `muster run` follows its job: how to pick it up again
    c.start_agent("web-1", "role=web")
    wait_until("one connected agent", lambda: list(c.states().values()) == ["AGENT_CONNECTED"])
    run = subprocess.Popen([c.cli_bin, "--addr", c.addr, "run", "-t", "role=web", "--",
                            "sleep 20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    wait_until("the job to run", lambda: any(j.get("state") == "JOB_RUNNING"
                                              for j in jobs_json(c)), timeout=20)
    job_id = [j for j in jobs_json(c) if j.get("state") == "JOB_RUNNING"][0]["jobId"]
    assert c.musterd.stop() == 0  # the control plane goes away mid-run
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1, err
    assert ("muster: lost the stream of job %s; it keeps running: re-attach with "
            "'muster watch %s'" % (job_id, job_id)) in err, err


def jobs_json(c):
    rc, out, _ = c.cli("-o", "json", "jobs", check=False)
    return [json.loads(line) for line in out.splitlines() if line.strip()] if rc == 0 else []


def test_muster_dev_runs_a_local_cluster(c):
    """`muster dev`: etcd, musterd and agents as children in the foreground; a fleet run works
    on it; Ctrl-C stops every child and the command exits 0; a second start finds the jobs
    of the first (etcd's data is kept in the state dir)."""
    state = os.path.join(c.workdir, "dev")

    def start(*extra):
        out_path = os.path.join(c.workdir, "dev.out")
        out = open(out_path, "w")
        p = subprocess.Popen([c.cli_bin, "--addr", c.addr, "dev", "--agents", "2",
                              "--state-dir", state] + list(extra),
                             stdout=out, stderr=subprocess.STDOUT)
        wait_until("muster dev ready", lambda: "Ctrl-C stops everything" in open(out_path).read()
                   or p.poll() is not None, timeout=60, step=0.2)
        assert p.poll() is None, open(out_path).read()
        return p, out, out_path

    p, out, out_path = start()
    # the copy-paste line muster dev prints: its own CA and admin certificate
    shown = open(out_path).read()
    assert "source %s/env" % os.path.realpath(state) in shown and "MUSTER_CA=" in shown, shown
    env_line = open(os.path.join(state, "env")).read().split()
    dev_env = dict(kv.split("=", 1) for kv in env_line[1:])
    assert dev_env["MUSTER_ADDR"] == c.addr, dev_env
    for k in ("MUSTER_CA", "MUSTER_CERT", "MUSTER_KEY"):
        assert os.path.exists(dev_env[k]), (k, dev_env)
    key_mode = os.stat(dev_env["MUSTER_KEY"]).st_mode & 0o777
    assert key_mode == 0o600, oct(key_mode)
    harness_env = {k: os.environ[k] for k in dev_env if k in os.environ}
    os.environ.update(dev_env)
    rc, text, err = c.cli("run", "--", "echo dev run on $MUSTER_AGENT_ID", check=False)
    assert rc == 0 and "dev run on dev-1" in text and "dev run on dev-2" in text, (text, err)
    p.send_signal(signal.SIGINT)
    assert p.wait(60) == 0, open(out_path).read()
    out.close()
    assert "muster dev: stopped" in open(out_path).read()
    assert c.cli("cluster", check=False)[0] != 0, "musterd still answers after Ctrl-C"
    for name in ("etcd", "musterd", "dev-1", "dev-2"):
        assert os.path.exists(os.path.join(state, name + ".log")), name
    # --plugin-dir reaches the agents (a missing one: they warn and find the bundled types)
    p, out, out_path = start("--plugin-dir", os.path.join(c.workdir, "dev-plugins"))
    rc, text, _ = c.cli("jobs", check=False)
    assert rc == 0 and "SUCCEEDED" in text, text
    dev1_log = open(os.path.join(state, "dev-1.log")).read()
    assert "plugin dir %s/dev-plugins" % c.workdir in dev1_log, dev1_log[-2000:]
    rc, text, err = c.cli("run", "--", "echo again", check=False)
    assert rc == 0 and text.count("again") >= 2, (text, err)
    p.send_signal(signal.SIGINT)
    assert p.wait(60) == 0
    out.close()
    os.environ.update(harness_env)
    rc, _, err = c.cli("dev", "--agents", "100", check=False)
    assert rc == 2 and "--agents" in err, err


def test_fresh_agents_find_their_plugins(c):
    """A fresh install runs jobs: an agent started with no plugin flags, and one pointed at a
    plugin dir that does not exist, find the plugins that ship with Muster and run a shell
    task. An agent with no plugins at all (an empty dir and nothing beside its binary) shows
    as degraded, its /healthz says why, and a job for it alone is refused at submit."""
    import shutil
    from harness import free_port

    def curl(url):
        r = subprocess.run(["curl", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
                            url], capture_output=True, text=True, timeout=30)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body
    c.start_musterd()
    c.start_agent("web-1", "role=web")
    c.start_agent("web-2", "role=web", plugin_dir=os.path.join(c.workdir, "no-such-dir"))
    wait_until("two connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 2)
    assert "no-such-dir" in c.agents["web-2"].text(), c.agents["web-2"].text()
    for a in c.agents_json().values():
        assert "shell" in [p["type"] for p in a.get("plugins", [])], a
    rc, out, err = c.cli("run", "-t", "role=web", "--", "echo fresh on $MUSTER_AGENT_ID",
                         check=False)
    assert rc == 0 and "fresh on web-1" in out and "fresh on web-2" in out, (out, err)
    if os.path.isdir("/var/lib/muster/plugins"):
        print("note: /var/lib/muster/plugins exists here; the no-plugins case is skipped")
        return
    # the agent binary alone in a temp dir: nothing beside it, no Bazel tree above it
    lone = os.path.join(c.workdir, "lone", "bin")
    os.makedirs(lone)
    empty = os.path.join(c.workdir, "lone", "empty-plugins")
    os.makedirs(empty)
    agent_copy = os.path.join(lone, "muster-agent")
    shutil.copy(os.path.realpath(c.agent_bin), agent_copy)
    port = free_port()
    c.start_agent("bare-1", "role=bare", "--metrics-listen", "127.0.0.1:%d" % port,
                  plugin_dir=empty, agent_bin=agent_copy)
    wait_until("bare-1 connected", lambda: c.states().get("bare-1") == "AGENT_CONNECTED")
    assert "task types: none" in c.agents["bare-1"].text(), c.agents["bare-1"].text()
    wait_until("/healthz answers",
               lambda: curl("http://127.0.0.1:%d/healthz" % port)[0] != 0)
    code, body = curl("http://127.0.0.1:%d/healthz" % port)
    assert code == 503 and "no task types" in body, (code, body)
    _, table, _ = c.cli("agents")
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATE", "LABELS", "TYPES"], table
    rows = {ln.split()[0]: ln.split() for ln in lines[1:] if ln.split() and ln.split()[0] in
            ("web-1", "web-2", "bare-1")}
    assert rows["bare-1"][1:4] == ["degraded", "role=bare", "-"], table
    assert rows["web-1"][1] == "connected" and "shell" in rows["web-1"][3].split(","), table
    # the installed layout: bin/muster-agent with lib/muster/plugins/ beside bin/
    inst = os.path.join(c.workdir, "inst")
    os.makedirs(os.path.join(inst, "bin"))
    os.makedirs(os.path.join(inst, "lib", "muster", "plugins"))
    shutil.copy(os.path.realpath(c.agent_bin), os.path.join(inst, "bin", "muster-agent"))
    shell_so = os.path.join(os.path.dirname(os.path.realpath(c.agent_bin)), "..", "plugins",
                            "shell", "libmuster_shell.so")
    shutil.copy(shell_so, os.path.join(inst, "lib", "muster", "plugins"))
    c.start_agent("inst-1", "role=inst", agent_bin=os.path.join(inst, "bin", "muster-agent"))
    wait_until("inst-1 connected", lambda: c.states().get("inst-1") == "AGENT_CONNECTED")
    types = [p["type"] for p in c.agents_json()["inst-1"].get("plugins", [])]
    assert types == ["shell"], types
    rc, _, err = c.cli("run", "--hosts", "bare-1", "--", "true", check=False)
    assert rc != 0 and \
        'task \'run\': no targeted agent serves type "shell" (bare-1)' in err, err
    # a target that also names a serving agent is accepted
    rc, out, err = c.cli("run", "--hosts", "web-1", "--", "true", check=False)
    assert rc == 0, (out, err)


def audit_actions(c, action):
    rc, out, err = c.cli("-o", "json", "audit", "--action", action, check=False)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines() if line]


def test_agents_rm_forgets_dead_hosts(c):
    """A dead host stays listed (and targeted) until `muster agents rm` forgets it; a connected
    one is refused unless --force, which ends its stream; a forced agent that still runs comes
    back as new."""
    three_agents(c)
    # refused while connected, naming the way out
    rc, out, err = c.cli("agents", "rm", "web-1", check=False)
    assert rc == 1 and "is connected" in err and "--force" in err, (rc, out, err)
    assert c.states().get("web-1") == "AGENT_CONNECTED"
    rc, _, err = c.cli("agents", "rm", "nobody", check=False)
    assert rc == 1 and "agent 'nobody' is not known" in err, err
    rc, _, err = c.cli("agents", "rm", check=False)
    assert rc == 2 and "give at least one agent ID" in err, err
    # a dead host: listed as disconnected, then forgotten
    c.agents["web-2"].kill()
    del c.agents["web-2"]
    wait_until("web-2 disconnected", lambda: c.states().get("web-2") == "AGENT_DISCONNECTED")
    rc, out, err = c.cli("agents", "rm", "web-2")
    assert rc == 0 and out.strip() == "web-2: removed", (out, err)
    assert set(c.states()) == {"web-1", "db-1"}, c.states()
    rc, out, _ = c.cli("-q", "agents")
    assert out.split() == ["db-1", "web-1"], out  # -q: ids only
    rc, out, _ = c.cli("agents", "-q", "--state", "disconnected")
    assert out == "", out
    # --force on a connected agent that cannot answer (stopped): its stream ends, it is gone
    c.agents["db-1"].p.send_signal(signal.SIGSTOP)
    rc, out, err = c.cli("-o", "json", "agents", "rm", "--force", "db-1")
    got = json.loads(out)
    assert rc == 0 and got["agentId"] == "db-1" and got["disconnected"] is True, (out, err)
    assert set(c.states()) == {"web-1"}, c.states()
    # ... and once it runs again it reconnects and is registered as new
    c.agents["db-1"].p.send_signal(signal.SIGCONT)
    wait_until("db-1 registered again", lambda: c.states().get("db-1") == "AGENT_CONNECTED",
               timeout=15)
    # every removal is audited, the refusals too
    outcomes = sorted((r["target"], r["outcome"]) for r in audit_actions(c, "agent.remove"))
    assert ("db-1", "ok") in outcomes and ("web-2", "ok") in outcomes, outcomes
    assert any(t == "web-1" and o.startswith("refused") for t, o in outcomes), outcomes
    assert "agent web-2 forgotten: removed by" in c.musterd.text()


def test_agent_gc_after_forgets_long_disconnected(c):
    """With agent_gc_after (2s here, 7d by default) the control plane forgets agents that stay
    disconnected that long, and never a connected one."""
    c.start_musterd("--heartbeat-timeout", TIMEOUT, "--agent-gc-after", "2s")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HEARTBEAT)
    c.start_agent("web-2", "role=web", "--heartbeat-interval", HEARTBEAT)
    wait_until("two connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 2)
    c.agents["web-2"].kill()
    del c.agents["web-2"]
    wait_until("web-2 disconnected", lambda: c.states().get("web-2") == "AGENT_DISCONNECTED")
    t0 = time.monotonic()
    wait_until("web-2 forgotten", lambda: "web-2" not in c.states(), timeout=8)
    took = time.monotonic() - t0
    assert took >= 1.0, "forgotten %.2fs after it disconnected, before agent_gc_after" % took
    time.sleep(2.5)  # web-1 has been connected far longer than 2s: it stays
    assert c.states() == {"web-1": "AGENT_CONNECTED"}, c.states()
    gc = audit_actions(c, "agent.gc")
    assert [r["target"] for r in gc] == ["web-2"], gc
    assert "past agent_gc_after (2.00s)" in c.musterd.text(), c.musterd.text()[-2000:]
    # 0 turns it off; a bad value is refused at start
    r = subprocess.run([c.musterd_bin, "--insecure", "--no-etcd", "--agent-gc-after", "soon"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "agent-gc-after" in r.stderr.replace("_", "-"), r.stderr


if __name__ == "__main__":
    main([
        test_agents_register_with_labels,
        test_killed_agent_disconnects_within_timeout,
        test_musterd_restart_brings_agents_back,
        test_bad_streams_are_refused_and_daemon_goes_on,
        test_restarted_agent_reports_lost_tasks_at_once,
        test_reconnected_agent_keeps_its_running_tasks,
        test_bad_config_and_flags,
        test_muster_dev_runs_a_local_cluster,
        test_fresh_agents_find_their_plugins,
        test_agents_rm_forgets_dead_hosts,
        test_agent_gc_after_forgets_long_disconnected,
    ])
