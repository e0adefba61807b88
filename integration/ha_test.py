"""End-to-end high availability: a real etcd, two musterd and real agents.

The operator's story: two control planes share one etcd and exactly one leads; agents and the
CLI pointed at the follower end up at the leader; the leader is killed (-9) and the follower
takes over within a few seconds, with every stored job intact and a running job finishing
without running anything twice; etcd goes away and comes back, and the control plane says it
is unhealthy, refuses writes with a clear error, keeps its agents and recovers on its own; a
bad --etcd value is refused at start.
"""
import base64
import json
import os
import subprocess
import sys
import time

import grpc

from harness import Cluster, Proc, free_port, job_status, wait_until
from harness import main as harness_main

TTL = "2s"
GRACE = "3s"


class HA(Cluster):
    """A Cluster with a real etcd and several musterd members."""

    def __init__(self, *bins):
        super().__init__(*bins)
        self.etcd = None
        self.members = {}  # name -> (Proc, addr)
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.client_port

    def start_etcd(self):
        data = os.path.join(self.workdir, "etcd")
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.etcd = Proc("etcd", ["/usr/bin/etcd", "--name", "ha-test", "--data-dir", data,
                                  "--listen-client-urls", self.endpoint,
                                  "--advertise-client-urls", self.endpoint,
                                  "--listen-peer-urls", peer,
                                  "--initial-advertise-peer-urls", peer,
                                  "--initial-cluster", "ha-test=" + peer],
                         self.workdir)
        wait_until("etcd to serve", lambda: subprocess.run(
            ["curl", "-sf", "-m", "1", self.endpoint + "/health"],
            capture_output=True).returncode == 0, timeout=20)

    def start_member(self, name, *extra):
        port = free_port()
        addr = "127.0.0.1:%d" % port
        p = Proc(name, [self.musterd_bin, "--listen", addr, "--etcd", self.endpoint,
                        "--member-id", name, "--leader-ttl", TTL, "--takeover-grace", GRACE,
                        "--heartbeat-timeout", "2s"] + self.server_tls(name) + list(extra),
                 self.workdir)
        self.members[name] = (p, addr)
        wait_until(name + " to answer", lambda: self.cli_at(addr, "cluster", check=False)[0] == 0)
        return addr

    def cli_at(self, addr, *args, check=True, timeout=30):
        r = subprocess.run([self.cli_bin, "--addr", addr] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("muster --addr %s %s failed (%d): %s" %
                                 (addr, " ".join(args), r.returncode, r.stderr))
        return r.returncode, r.stdout, r.stderr

    def cluster_at(self, addr):
        rc, out, _ = self.cli_at(addr, "-o", "json", "cluster", check=False)
        return json.loads(out) if rc == 0 else None

    def leader(self):
        """(name, addr) of the one member that says it leads, or None."""
        leaders = []
        for name, (p, addr) in self.members.items():
            if not p.alive():
                continue
            c = self.cluster_at(addr)
            if c and c.get("leader"):
                leaders.append((name, addr))
        assert len(leaders) <= 1, "two leaders at once: %r" % leaders
        return leaders[0] if leaders else None

    def start_ha_agent(self, agent_id, control, extra=()):
        spool = os.path.join(self.workdir, "spool-" + agent_id)
        os.makedirs(spool, exist_ok=True)
        p = Proc("agent-" + agent_id,
                 [self.agent_bin, "--control", control, "--id", agent_id, "--spool-dir", spool,
                  "--plugin-dir", os.path.join(self.workdir, "plugins"),
                  "--heartbeat-interval", "300ms"] + self.agent_tls(agent_id) + list(extra), self.workdir)
        self.agents[agent_id] = p
        return p

    def connected_at(self, addr):
        rc, out, _ = self.cli_at(addr, "-o", "json", "agents", check=False)
        if rc != 0:
            return set()
        return {a["agentId"] for a in (json.loads(l) for l in out.splitlines() if l)
                if a.get("state") == "AGENT_CONNECTED"}

    def job(self, addr, job_id):
        rc, out, _ = self.cli_at(addr, "-o", "json", "status", job_id, check=False)
        return job_status(out) if rc == 0 else None

    def stop_all(self):
        problems = []
        for name, p in list(self.agents.items()):
            rc = p.stop()
            if rc != 0:
                problems.append("agent %s exited %d:\n%s" % (name, rc, p.text()[-3000:]))
        for name, (p, _) in list(self.members.items()):
            rc = p.stop()
            if rc != 0:
                problems.append("%s exited %d:\n%s" % (name, rc, p.text()[-3000:]))
        if self.etcd is not None and self.etcd.alive():
            self.etcd.stop()
        if problems:
            raise AssertionError("\n".join(problems))

    def procs(self):
        return list(self.agents.values()) + [p for p, _ in self.members.values()] + \
            ([self.etcd] if self.etcd else [])


def two_members(c):
    c.start_etcd()
    a = c.start_member("cp-a")
    b = c.start_member("cp-b")
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [(n, addr) for n, (_, addr) in c.members.items() if n != leader[0]][0]
    return leader, follower


def test_one_leader_redirects(c):
    leader, follower = two_members(c)
    fc = c.cluster_at(follower[1])
    assert not fc.get("leader") and fc["leaderAddress"] == leader[1], fc
    assert fc.get("etcdHealthy") and fc.get("healthy"), fc
    # an agent that only knows the follower ends up on the leader
    c.start_ha_agent("a1", follower[1])
    wait_until("a1 on the leader", lambda: "a1" in c.connected_at(leader[1]))
    assert "redirected" in c.agents["a1"].text() or "not the leader" in c.agents["a1"].text()
    # the follower serves reads from etcd
    wait_until("the follower sees a1", lambda: "a1" in c.connected_at(follower[1]))
    # the CLI against the follower: `run` is redirected, and its watch works there too
    rc, out, err = c.cli_at(follower[1], "run", "--all", "--", "echo hello-from-ha")
    assert rc == 0 and "hello-from-ha" in out, (out, err)
    # an address list: a dead address first, then the follower
    dead = "127.0.0.1:%d" % free_port()
    rc, out, err = c.cli_at(dead + "," + follower[1], "run", "--detach", "--all", "--", "true")
    assert rc == 0 and out.strip().startswith("j-"), (out, err)
    # a write sent straight to the follower names the leader
    ch = c.grpc_channel(addr=follower[1])
    try:
        ch.unary_unary("/muster.v1.Admin/CancelJob")(b"\x0a\x03j-x", timeout=5)
        raise AssertionError("CancelJob on the follower succeeded")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e
        md = dict(e.trailing_metadata() or ())
        assert md.get("muster-leader") == leader[1], md
    finally:
        ch.close()


def test_failover_keeps_jobs_and_runs_once(c):
    leader, follower = two_members(c)
    control = leader[1] + "," + follower[1]
    for aid in ("a1", "a2"):
        c.start_ha_agent(aid, control)
    wait_until("two agents on the leader", lambda: c.connected_at(leader[1]) == {"a1", "a2"})
    rc, out, _ = c.cli_at(leader[1], "run", "--all", "--", "echo done-before")
    assert rc == 0, out
    done_job = json.loads(c.cli_at(leader[1], "-o", "json", "jobs")[1].splitlines()[0])["jobId"]
    before = c.job(leader[1], done_job)
    assert before["state"] == "JOB_SUCCEEDED", before
    marks = os.path.join(c.workdir, "marks")
    rc, out, _ = c.cli_at(leader[1], "run", "--detach", "--all", "--",
                          "echo start >> %s; sleep 4; echo end >> %s" % (marks, marks))
    running_job = out.strip()
    wait_until("both tasks running", lambda: open(marks).read().count("start") == 2
               if os.path.exists(marks) else False)
    # kill -9 the leader
    p, _ = c.members.pop(leader[0])
    t0 = time.monotonic()
    p.kill()
    wait_until("the follower to lead", lambda: (c.cluster_at(follower[1]) or {}).get("leader"),
               timeout=8, step=0.1)
    took = time.monotonic() - t0
    assert took < 2.0 + 5.0, "failover took %.1fs" % took  # TTL + slack for a loaded machine
    wait_until("agents on the new leader", lambda: c.connected_at(follower[1]) == {"a1", "a2"},
               timeout=10)
    after = c.job(follower[1], done_job)
    assert after is not None and after["state"] == "JOB_SUCCEEDED", after
    assert [(t["agentId"], t["state"], t.get("exitCode", 0)) for t in after["tasks"]] == \
        [(t["agentId"], t["state"], t.get("exitCode", 0)) for t in before["tasks"]], (before, after)
    assert all("done-before" in t.get("outputTail", "") for t in after["tasks"]), after
    st = wait_until("the running job to finish", lambda: (lambda j: j if j and
                    j["state"] != "JOB_RUNNING" else None)(c.job(follower[1], running_job)),
                    timeout=20)
    assert st["state"] == "JOB_SUCCEEDED", st
    text = open(marks).read()
    assert text.count("start") == 2 and text.count("end") == 2, "ran twice? %r" % text
    # a drain is stored with the agent's record: it holds on the next leader, and the follower
    # (a member again once restarted) shows it too
    rc, out, err = c.cli_at(follower[1], "drain", "a2")
    assert rc == 0 and "a2: draining" in out, (out, err)
    new_member = c.start_member("cp-c")
    wait_until("the new member to see the drain", lambda: '"a2"' in c.cli_at(
        new_member, "-o", "json", "agents", "--state", "draining", check=False)[1], timeout=10)
    rc, out, err = c.cli_at(follower[1], "-o", "json", "run", "--all", "--", "true")
    assert rc == 0 and '"a2"' not in out and '"a1"' in out, (out, err)
    print("  failover: new leader after %.1fs" % took)


def presence(c):
    """{agent id: (lease, record)} of the presence keys in etcd, via etcdctl."""
    r = subprocess.run(["etcdctl", "--endpoints", c.endpoint, "get", "--prefix", "/muster/presence/",
                        "-w", "json"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, ETCDCTL_API="3"))
    assert r.returncode == 0, r.stderr
    out = {}
    for kv in json.loads(r.stdout).get("kvs", []):
        key = base64.b64decode(kv["key"]).decode()
        value = base64.b64decode(kv.get("value", "")).decode()
        try:
            rec = json.loads(value)
        except ValueError:
            rec = value
        out[key[len("/muster/presence/"):]] = (int(kv.get("lease", 0)), rec)
    return out


def lease_ttl(c, lease):
    """Seconds the lease has left (-1 once it expired or was revoked)."""
    r = subprocess.run(["etcdctl", "--endpoints", c.endpoint, "lease", "timetolive", "%x" % lease,
                        "-w", "json"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, ETCDCTL_API="3"))
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout).get("ttl", -1))


def test_presence_follows_the_leader(c):
    """presence/<id> exists while an agent is connected, under the leader's lease; it goes when
    the agent stops, and with the lease when the leader is killed; the new leader writes it
    again under its own lease for the agents that come back."""
    c.start_etcd()
    a = c.start_member("cp-a", "--presence-ttl", "3s")
    b = c.start_member("cp-b", "--presence-ttl", "3s")
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [(n, addr) for n, addr in (("cp-a", a), ("cp-b", b)) if n != leader[0]][0]
    both = leader[1] + "," + follower[1]
    c.start_ha_agent("a1", both)
    c.start_ha_agent("a2", both)
    c.start_ha_agent("a3", leader[1])  # knows only the leader: it cannot follow a failover
    hosts = {"a1", "a2", "a3"}
    wait_until("three agents on the leader", lambda: c.connected_at(leader[1]) == hosts)
    pres = wait_until("three presence keys", lambda: (lambda p: p if set(p) == hosts else None)(
        presence(c)))
    term1 = int(c.cluster_at(leader[1])["leaderTerm"])
    leases = {lease for lease, _ in pres.values()}
    assert len(leases) == 1 and 0 not in leases, pres
    lease1 = leases.pop()
    assert 0 < lease_ttl(c, lease1) <= 3, lease_ttl(c, lease1)
    for aid, (_, rec) in pres.items():
        assert rec["term"] == term1 and rec["address"] == leader[1], (aid, rec)
        assert rec["session"].startswith(aid + "-") and rec["connected_at_ms"] > 0, rec
    # the follower reports what presence says
    wait_until("the follower sees three connected", lambda: c.connected_at(follower[1]) == hosts)

    # an agent that stops: its key goes, the follower sees it disconnected
    assert c.agents.pop("a2").stop() == 0
    wait_until("presence/a2 deleted", lambda: "a2" not in presence(c))
    wait_until("the follower sees a2 gone", lambda: c.connected_at(follower[1]) == {"a1", "a3"})

    # a garbage presence record is logged with its key and skipped
    subprocess.run(["etcdctl", "--endpoints", c.endpoint, "put", "/muster/presence/zz", "garbage{"],
                   check=True, capture_output=True, env=dict(os.environ, ETCDCTL_API="3"))
    wait_until("the follower logs the bad key", lambda: "/muster/presence/zz" in
               c.members[follower[0]][0].text())
    assert "zz" not in c.connected_at(follower[1])

    # kill -9 the leader: its presence keys outlive it only until the lease expires
    p, _ = c.members.pop(leader[0])
    t0 = time.monotonic()
    p.kill()
    assert "a3" in presence(c), "presence/a3 went before the lease expired"
    wait_until("presence/a3 gone with the dead leader's lease", lambda: "a3" not in presence(c),
               timeout=3 + 4, step=0.1)
    gone = time.monotonic() - t0
    assert gone >= 1.5, "presence/a3 vanished %.1fs after the kill, before the 3s TTL" % gone
    assert lease_ttl(c, lease1) == -1
    wait_until("the follower to lead", lambda: (c.cluster_at(follower[1]) or {}).get("leader"),
                     timeout=8)
    term2 = int(c.cluster_at(follower[1])["leaderTerm"])
    assert term2 > term1, (term1, term2)
    wait_until("a1 back on the new leader", lambda: c.connected_at(follower[1]) == {"a1"}, timeout=10)
    pres = wait_until("presence/a1 under the new lease", lambda: (lambda p: p if set(p) - {"zz"} ==
                      {"a1"} and p["a1"][0] not in (0, lease1) else None)(presence(c)), timeout=10)
    assert pres["a1"][1]["term"] == term2 and pres["a1"][1]["address"] == follower[1], pres
    assert lease_ttl(c, pres["a1"][0]) > 0
    print("  presence: a3's key gone %.1fs after kill -9 (TTL 3s); a1 under lease %x of term %d"
          % (gone, pres["a1"][0], term2))


def health(c, addr):
    ch = c.grpc_channel(addr=addr)
    try:
        return ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
    finally:
        ch.close()


def test_etcd_outage(c):
    c.start_etcd()
    addr = c.start_member("cp-a")
    wait_until("a leader", c.leader, timeout=10)
    c.start_ha_agent("a1", addr)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    assert health(c, addr) == b"\x08\x01"  # SERVING
    t0 = time.monotonic()
    c.etcd.stop()
    print("  etcd stopped after %.1fs" % (time.monotonic() - t0))
    cl = wait_until("etcd unhealthy", lambda: (lambda x: x if x and not x.get("etcdHealthy")
                                               else None)(c.cluster_at(addr)), timeout=10)
    assert not cl.get("healthy") and cl.get("etcdError"), cl
    print("  unhealthy after %.1fs: %s" % (time.monotonic() - t0, cl.get("etcdError")))
    assert health(c, addr) == b"\x08\x02"  # NOT_SERVING
    rc, out, err = c.cli_at(addr, "run", "--all", "--", "true", check=False)
    assert rc != 0 and "etcd unavailable" in err, (rc, out, err)
    print("  run refused after %.1fs: %s" % (time.monotonic() - t0, err.strip()))
    time.sleep(3)  # past the lease TTL: the member no longer leads
    assert "a1" in c.connected_at(addr), "agent dropped during the etcd outage"
    assert c.agents["a1"].alive()
    c.start_etcd()
    print("  etcd back after %.1fs" % (time.monotonic() - t0))
    wait_until("healthy again", lambda: (c.cluster_at(addr) or {}).get("healthy"), timeout=15)
    wait_until("a run after the outage", lambda: c.cli_at(addr, "run", "--all", "--", "true",
                                                         check=False)[0] == 0, timeout=15)
    assert health(c, addr) == b"\x08\x01"
    print("  recovered after %.1fs" % (time.monotonic() - t0))


def agent_records(c):
    """The agent ids under agents/ in etcd."""
    r = subprocess.run(["etcdctl", "--endpoints", c.endpoint, "get", "--prefix", "/muster/agents/",
                        "--keys-only"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, ETCDCTL_API="3"))
    assert r.returncode == 0, r.stderr
    return {k[len("/muster/agents/"):] for k in r.stdout.split()}


def known_at(c, addr):
    rc, out, _ = c.cli_at(addr, "-q", "agents", check=False)
    return set(out.split()) if rc == 0 else None


def test_forgotten_agents_leave_etcd_and_the_follower(c):
    """`muster agents rm` on the leader deletes the agent's records through the fenced store;
    the follower forgets it from its watch; agent_gc_after does the same on its own, on the
    leader only."""
    c.start_etcd()
    for name in ("cp-a", "cp-b"):
        c.start_member(name, "--agent-gc-after", "4s")
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [addr for n, (_, addr) in c.members.items() if n != leader[0]][0]
    for aid in ("a1", "a2", "a3"):
        c.start_ha_agent(aid, leader[1])
    wait_until("the follower sees three agents",
               lambda: c.connected_at(follower) == {"a1", "a2", "a3"}, timeout=15)
    assert agent_records(c) == {"a1", "a2", "a3"}
    # removed by hand: gone from etcd, the leader and the follower
    c.agents.pop("a2").kill()
    wait_until("a2 disconnected", lambda: "a2" not in c.connected_at(leader[1]))
    rc, out, err = c.cli_at(follower, "agents", "rm", "a2", check=False)  # sent to the leader
    assert rc == 0 and out.strip() == "a2: removed", (rc, out, err)
    wait_until("a2 gone from etcd", lambda: "a2" not in agent_records(c))
    assert known_at(c, leader[1]) == {"a1", "a3"}
    wait_until("the follower forgot a2", lambda: known_at(c, follower) == {"a1", "a3"})
    # forgotten after agent_gc_after, by the leader; the follower follows
    c.agents.pop("a3").kill()
    wait_until("a3 forgotten everywhere", lambda: known_at(c, follower) == {"a1"} and
               known_at(c, leader[1]) == {"a1"} and agent_records(c) == {"a1"}, timeout=15)
    assert "agent a3 forgotten: disconnected for" in c.members[leader[0]][0].text()
    follower_name = [n for n in c.members if n != leader[0]][0]
    assert "agent a3 forgotten: the leader forgot it" in c.members[follower_name][0].text()


def test_bad_etcd_flag(c):
    r = subprocess.run([c.musterd_bin, "--etcd", "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "--etcd" in r.stderr, r
    r = subprocess.run([c.musterd_bin], capture_output=True, text=True,
                       env=dict(os.environ, MUSTER_ETCD="ftp://x"))
    assert r.returncode == 2 and "MUSTER_ETCD" in r.stderr, r


def main(tests):
    harness_main(tests, lambda *bins: HA(*bins))


if __name__ == "__main__":
    main([
        test_bad_etcd_flag,
        test_one_leader_redirects,
        test_failover_keeps_jobs_and_runs_once,
        test_etcd_outage,
        test_presence_follows_the_leader,
        test_forgotten_agents_leave_etcd_and_the_follower,
    ])
