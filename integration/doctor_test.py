"""`muster doctor` against a real control plane and agents, as an operator runs it: a healthy
fleet passes (warnings only, exit 0), in text and JSON; an agent with a plugin that fails to
load is a warning with its fix; an agent that went away fails the run (exit 1) and says how to
fix it, while `--agent` on the healthy one still passes; a selector that matches nothing and a
control plane that is not there fail too."""
import json
import os

from bundles_test import ETCD_FLAGS, leading, start_etcd
from harness import free_port, main, wait_until


def doctor(c, *args):
    return c.cli("doctor", *args, check=False)


def checks(out):
    lines = [json.loads(l) for l in out.splitlines() if l]
    assert lines[-1]["kind"] == "summary", lines[-1]
    return {(l["scope"], l["check"]): l for l in lines if l["kind"] == "check"}, lines[-1]


def test_doctor_finds_the_broken_agent(c):
    c.start_musterd()
    bad_plugins = os.path.join(c.workdir, "bad-plugins")
    os.makedirs(bad_plugins)
    with open(os.path.join(bad_plugins, "libmuster_broken.so"), "w") as f:
        f.write("not an ELF file\n")
    c.start_agent("web-1", "role=web")
    c.start_agent("web-2", "role=web", plugin_dir=bad_plugins)
    wait_until("both agents connected",
               lambda: c.states() == {"web-1": "AGENT_CONNECTED", "web-2": "AGENT_CONNECTED"})
    wait_until("heartbeats with disk figures", lambda: all(
        (a.get("metrics") or {}).get("spoolDiskTotalBytes", 0) > 0
        for a in (c.agents_json() or {}).values()))

    rc, out, err = doctor(c)
    assert rc == 0, (rc, out, err)
    assert "FAIL" not in out, out
    assert "OK    cluster            connectivity" in out, out
    assert "WARN  cluster            etcd" in out and "--no-etcd" in out, out
    assert "OK    agent web-1        connected" in out, out
    # the broken plugin: a warning naming the count, and where to look
    assert "WARN  agent web-2        task-types" in out, out
    assert "1 plugins failed to load" in out and "see the agent's log" in out, out
    assert "client-cert" in out and "server-cert" in out, out

    rc, out, _ = c.cli("-o", "json", "doctor", check=False)
    assert rc == 0, out
    by, summary = checks(out)
    assert summary["fail"] == 0 and summary["status"] == "WARN", summary
    assert by[("cluster", "connectivity")]["status"] == "OK"
    assert by[("client", "clock-skew")]["status"] == "OK", by[("client", "clock-skew")]
    # same host, same clock: the skew seen is the heartbeat's delivery delay (a loaded
    # machine may take a second or two)
    assert by[("agent web-1", "clock-skew")]["status"] != "FAIL", by[("agent web-1", "clock-skew")]
    assert ("agent web-1", "exec-helper") not in by  # reported only when missing
    assert by[("agent web-1", "spool-disk")]["status"] in ("OK", "WARN")
    assert by[("agent web-2", "task-types")]["status"] == "WARN"
    assert by[("cluster", "server-cert")]["status"] == "OK", by[("cluster", "server-cert")]
    assert "valid for" in by[("client", "client-cert")]["message"]

    # web-1 goes away: the run fails and says what to do
    c.agents["web-1"].stop()
    wait_until("web-1 disconnected", lambda: c.states().get("web-1") == "AGENT_DISCONNECTED")
    rc, out, _ = doctor(c)
    assert rc == 1, (rc, out)
    assert "FAIL  agent web-1        connected" in out, out
    assert "fix: start muster-agent on the host" in out, out
    rc, out, _ = c.cli("-o", "json", "doctor", check=False)
    by, summary = checks(out)
    assert rc == 1 and summary["fail"] == 1 and summary["status"] == "FAIL", summary
    assert by[("agent web-1", "connected")]["status"] == "FAIL"
    # only the healthy agent: passes again
    rc, out, err = doctor(c, "--agent", "web-2")
    assert rc == 0 and "agent web-1" not in out and "agent web-2" in out, (rc, out, err)
    # a selector that matches nothing
    rc, out, _ = doctor(c, "-t", "role=db")
    assert rc == 1 and "no agent matches role=db" in out, out
    # usage errors
    rc, _, err = doctor(c, "--agent", "web-2", "-t", "role=web")
    assert rc == 2 and "do not go together" in err, err


def test_doctor_agent_environment(c):
    """A run-as user the host does not have fails with its fix; the python venv cache and
    the container runtime are reported."""
    c.start_musterd()
    c.start_agent("ok-1", "role=web")
    c.start_agent("bad-1", "role=web", "--run-as", "muster-no-such-user")
    wait_until("both agents connected",
               lambda: c.states() == {"ok-1": "AGENT_CONNECTED", "bad-1": "AGENT_CONNECTED"})
    rc, out, _ = doctor(c)
    assert rc == 1, (rc, out)
    assert "FAIL  agent bad-1        run-as" in out, out
    assert "muster-no-such-user" in out and "does not exist" in out, out
    assert "fix: create the user on the host (useradd" in out, out
    rc, out, _ = c.cli("-o", "json", "doctor", check=False)
    by, summary = checks(out)
    assert rc == 1 and summary["fail"] == 1, (summary, out)
    assert by[("agent bad-1", "run-as")]["status"] == "FAIL"
    assert ("agent ok-1", "run-as") not in by  # no run_as configured: nothing to check
    venvs = by[("agent ok-1", "python-venvs")]
    assert venvs["status"] in ("OK", "FAIL") and "venv cache" in venvs["message"], venvs
    ctr = by.get(("agent ok-1", "container"))
    assert ctr is not None and ctr["status"] in ("OK", "WARN"), by.keys()
    if ctr["status"] == "WARN":
        assert ctr["fix"], ctr
    # only the healthy agent: passes
    rc, out, _ = doctor(c, "--agent", "ok-1")
    assert rc == 0, out


def test_doctor_cluster_etcd(c):
    """--cluster on a real etcd: health with a timed request, members and the leader, the
    raft term, the database size against the (default) quota; --no-etcd says why not."""
    etcd, endpoint = start_etcd(c)
    c.start_musterd(*ETCD_FLAGS, etcd=endpoint)
    wait_until("musterd leads", lambda: leading(c, c.addr))
    rc, out, err = doctor(c, "--cluster")
    assert rc == 0, (rc, out, err)
    assert "OK    etcd               etcd-health" in out and "answered Status in" in out, out
    assert "1 members, leader b: b http://127.0.0.1:" in out, out
    assert "etcd-db-size" in out and "of etcd's default quota 2.00 GiB" in out, out
    assert " agent " not in out, out  # no agent checks with --cluster
    rc, out, _ = c.cli("-o", "json", "doctor", "--cluster", check=False)
    by, summary = checks(out)
    assert rc == 0, out
    assert by[("etcd", "etcd-members")]["status"] == "OK", by
    assert "raft term" in by[("etcd", "etcd-term")]["message"], by
    db = by[("etcd", "etcd-db-size")]
    assert db["status"] == "OK" and "quota is unknown" in db["message"], db
    # etcd goes away: the probe fails, and says what to check
    etcd.stop()
    wait_until("doctor --cluster sees etcd down", lambda: "FAIL  etcd               etcd-health"
               in doctor(c, "--cluster")[1], timeout=20)
    rc, out, _ = doctor(c, "--cluster")
    assert rc == 1 and "fix: check that etcd runs" in out, out
    rc, _, err = doctor(c, "--cluster", "--agent", "x")
    assert rc == 2 and "do not go together" in err, err


def test_doctor_cluster_without_etcd(c):
    c.start_musterd()
    rc, out, _ = doctor(c, "--cluster")
    assert rc == 0 and "WARN  etcd               etcd-status" in out, out
    assert "fix: run musterd with --etcd" in out, out


def test_doctor_without_a_control_plane(c):
    r = c.cli("--addr", "127.0.0.1:%d" % free_port(), "doctor", check=False)
    rc, out, _ = r
    assert rc == 1, r
    assert "FAIL  cluster            connectivity" in out and "fix: start musterd" in out, out


if __name__ == "__main__":
    main([
        test_doctor_finds_the_broken_agent,
        test_doctor_agent_environment,
        test_doctor_cluster_etcd,
        test_doctor_cluster_without_etcd,
        test_doctor_without_a_control_plane,
    ])
