"""End-to-end HA on a real 3-member etcd cluster, three musterd and three agents (issue 3).

1. kill -9 the leader while a job runs: another member serves admin calls within TTL + 2 s,
   every agent reconnects to it, the finished jobs read back identical (GetJob and their etcd
   records) and the running job finishes with each host's task run exactly once.
2. Fencing: SIGSTOP the leader until another member wins, then SIGCONT it. Every member talks
   to etcd through a recording proxy of this test, so the old leader's own requests and etcd's
   answers are observed on the wire: it steps down, and no write of its reached etcd at or
   after the new term (the create revision of /muster/leader); fenced attempts are counted.
"""
import base64
import datetime
import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

from harness import Proc, free_port, wait_until
from ha_test import HA

TTL_S = 2.0
HOSTS = ("a1", "a2", "a3")


class Wire:
    """One member's etcd traffic as its proxies saw it, and a gate that can hold its writes
    (transactions with a put or delete) in flight, as a slow network would."""

    def __init__(self):
        self.records = []  # (mono time, path, request body, status, response body)
        self.gate = threading.Event()
        self.gate.set()
        self.held = 0


def is_write_txn(path, body):
    if path != "/v3/kv/txn":
        return False
    ops = json.loads(body or b"{}").get("success", [])
    return any("request_put" in op or "request_delete_range" in op for op in ops)


class RecordingProxy:
    """Forwards HTTP POSTs to one etcd client port and records every unary call in its Wire;
    /v3/watch responses are streamed through unrecorded."""

    def __init__(self, target_port, wire):
        records = wire.records
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                watch = self.path.startswith("/v3/watch")
                if not wire.gate.is_set() and is_write_txn(self.path, body):
                    wire.held += 1
                    wire.gate.wait()
                up = http.client.HTTPConnection("127.0.0.1", target_port,
                                                timeout=None if watch else 10)
                try:
                    up.request("POST", self.path, body, {"Content-Type": "application/json"})
                    resp = up.getresponse()
                    if not watch:
                        data = resp.read()
                        records.append((time.monotonic(), self.path, body, resp.status, data))
                        self.send_response(resp.status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    self.send_response(resp.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while not proxy.closing:
                        chunk = resp.read1(65536)
                        if not chunk:
                            break
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.close_connection = True
                except (OSError, http.client.HTTPException):
                    self.close_connection = True
                finally:
                    up.close()

        self.closing = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients hang up: fine
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.closing = True
        self.server.shutdown()
        self.server.server_close()


class EtcdCluster(HA):
    """HA with three etcd members on loopback instead of one."""

    def __init__(self, *bins):
        super().__init__(*bins)
        self.etcds = []
        self.endpoints = []
        self.proxies = []
        self.wire = {}  # member name -> its Wire, when proxied

    def start_etcd_cluster(self):
        names = ["e%d" % i for i in range(3)]
        clients = [free_port() for _ in names]
        peers = [free_port() for _ in names]
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, p) for n, p in zip(names, peers))
        self.endpoints = ["http://127.0.0.1:%d" % p for p in clients]
        for n, cp, pp in zip(names, clients, peers):
            url = "http://127.0.0.1:%d" % cp
            peer = "http://127.0.0.1:%d" % pp
            self.etcds.append(Proc("etcd-" + n, [
                "/usr/bin/etcd", "--name", n, "--data-dir", os.path.join(self.workdir, "etcd-" + n),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "muster-ha-cluster-test",
                "--heartbeat-interval", "50", "--election-timeout", "500"], self.workdir))
        for url in self.endpoints:
            wait_until("etcd %s to serve" % url, lambda url=url: subprocess.run(
                ["curl", "-sf", "-m", "1", url + "/health"], capture_output=True).returncode == 0,
                timeout=20)

    def start_cluster_member(self, name, proxied=False, grace="3s"):
        endpoints = self.endpoints
        if proxied:
            self.wire[name] = Wire()
            ps = [RecordingProxy(int(u.rsplit(":", 1)[1]), self.wire[name]) for u in endpoints]
            self.proxies += ps
            endpoints = [p.url for p in ps]
        addr = "127.0.0.1:%d" % free_port()
        p = Proc(name, [self.musterd_bin, "--listen", addr, "--advertise", addr,
                        "--etcd", ",".join(endpoints), "--member-id", name,
                        "--leader-ttl", "%ds" % TTL_S, "--takeover-grace", grace,
                        "--heartbeat-timeout", "2s"] + self.server_tls(name), self.workdir)
        self.members[name] = (p, addr)
        wait_until(name + " to answer", lambda: self.cli_at(addr, "cluster", check=False)[0] == 0)
        return addr

    def start_three(self, proxied=False, grace="3s"):
        self.start_etcd_cluster()
        for n in ("cp-a", "cp-b", "cp-c"):
            self.start_cluster_member(n, proxied=proxied, grace=grace)
        leader = wait_until("one leader", self.leader, timeout=15)
        control = ",".join(addr for _, addr in self.members.values())
        for h in HOSTS:
            self.start_ha_agent(h, control)
        wait_until("three agents on the leader",
                   lambda: self.connected_at(leader[1]) == set(HOSTS), timeout=15)
        return leader

    def etcd_get(self, prefix="/muster/"):
        """{key: kv} under prefix (values decoded) and the read's revision, via etcdctl."""
        r = subprocess.run(["etcdctl", "--endpoints", ",".join(self.endpoints), "get", "--prefix",
                            prefix, "-w", "json"], capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, ETCDCTL_API="3"))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        kvs = {}
        for kv in doc.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            kvs[key] = dict(kv, key=key, value=base64.b64decode(kv.get("value", "")).decode())
        return kvs, int(doc["header"]["revision"])

    def stop_all(self):
        try:
            super().stop_all()
        finally:
            for w in self.wire.values():
                w.gate.set()
            for p in self.proxies:
                p.close()
            for e in self.etcds:
                if e.alive():
                    e.stop()

    def procs(self):
        return super().procs() + self.etcds


def marks_cmd(marks):
    """A shell task that appends start/end lines to a file named after its agent (from the task
    dir, which lives under the agent's spool-<id>)."""
    f = '%s/$(pwd | grep -o "spool-a[0-9]*")' % marks
    return 'echo start >> %s; sleep 4; echo end >> %s' % (f, f)


def marks_per_host(marks):
    out = {}
    for h in HOSTS:
        path = os.path.join(marks, "spool-" + h)
        out[h] = open(path).read() if os.path.exists(path) else ""
    return out


def job_records(kvs, job_id):
    return {k: (v["value"], v["mod_revision"]) for k, v in kvs.items()
            if k == "/muster/jobs/" + job_id or k.startswith("/muster/jobs/%s/" % job_id)
            or k.startswith("/muster/tasks/%s/" % job_id)}


def leading_seconds(c, name, wall0):
    """Seconds from wall0 to the member's "leading term" log line (its state loaded), or None.
    The CLI polling used for `took` adds its own latency (process start under ASan)."""
    for line in c.members[name][0].text().splitlines():
        if "cluster: leading term" in line:
            t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            if t >= wall0:
                return t - wall0
    return None


def leading_after(c, name, wall0):
    s = leading_seconds(c, name, wall0)
    return "no leading line" if s is None else "leading %.2fs after the kill" % s


def test_three_member_failover(c):
    leader = c.start_three()
    # two finished jobs, recorded in etcd
    done = []
    for word in ("first", "second"):
        rc, out, err = c.cli_at(leader[1], "run", "--detach", "--all", "--", "echo " + word)
        assert rc == 0, err
        done.append(out.strip())
    for j in done:
        wait_until("job %s done" % j,
                   lambda j=j: (c.job(leader[1], j) or {}).get("state") == "JOB_SUCCEEDED")
    marks = os.path.join(c.workdir, "marks")
    os.makedirs(marks)
    rc, out, err = c.cli_at(leader[1], "run", "--detach", "--all", "--", marks_cmd(marks))
    assert rc == 0, err
    running = out.strip()
    wait_until("three tasks running", lambda: all(
        v.count("start") == 1 for v in marks_per_host(marks).values()))
    before = {j: c.job(leader[1], j) for j in done}
    assert all(len(b["tasks"]) == 3 for b in before.values()), before
    kvs_before, _ = c.etcd_get()
    recs_before = {j: job_records(kvs_before, j) for j in done}
    assert all(len(r) == 5 for r in recs_before.values()), recs_before  # job, ready, 3 tasks
    assert "/muster/jobs/%s/ready" % running in kvs_before

    p, _ = c.members.pop(leader[0])
    t0, wall0 = time.monotonic(), time.time()
    p.kill()

    def serving():
        ld = c.leader()
        if ld and c.cli_at(ld[1], "-o", "json", "jobs", check=False)[0] == 0:
            return ld
        return None
    new = wait_until("a new leader serving admin calls", serving, timeout=15, step=0.05)
    took = time.monotonic() - t0
    wait_until("every agent on the new leader", lambda: c.connected_at(new[1]) == set(HOSTS),
               timeout=15, step=0.1)
    took_agents = time.monotonic() - t0
    print("  failover: %s -> %s serving after %.2fs (%s by its log), all agents reconnected "
          "after %.2fs (TTL %.0fs)" % (leader[0], new[0], took, leading_after(c, new[0], wall0),
                                      took_agents, TTL_S))
    # The bound (TTL + 2 s) is checked on the leader's own log time; the time seen
    # through CLI polling gets a looser bound, as it includes starting ASan-built CLIs.
    lead = leading_seconds(c, new[0], wall0)
    assert lead is not None and lead <= TTL_S + 2.0, "new leader leading after %r s (> TTL + 2s)" % lead
    assert took <= TTL_S + 6.0, "new leader served admin calls only after %.2fs" % took
    for name, (_, addr) in c.members.items():
        cl = c.cluster_at(addr)
        assert cl and cl.get("leaderAddress") == new[1], (name, cl)

    after = {j: c.job(new[1], j) for j in done}
    assert after == before, "finished jobs changed across failover:\n%r\n%r" % (before, after)
    ids = {json.loads(l)["jobId"] for l in c.cli_at(new[1], "-o", "json", "jobs")[1].splitlines() if l}
    assert set(done) | {running} <= ids, ids
    st = wait_until("the running job to finish", lambda: (lambda j: j if j and j["state"] not in
                    ("JOB_RUNNING", "JOB_PENDING") else None)(c.job(new[1], running)), timeout=20)
    assert st["state"] == "JOB_SUCCEEDED", st
    for h, text in marks_per_host(marks).items():
        assert text == "start\nend\n", "host %s ran its task %r" % (h, text)
    kvs_after, _ = c.etcd_get()
    for j in done:
        assert job_records(kvs_after, j) == recs_before[j], "etcd records of %s changed" % j
    # a follower's copy agrees too
    follower = [addr for n, (_, addr) in c.members.items() if n != new[0]][0]
    wait_until("the follower sees the running job end",
               lambda: (c.job(follower, running) or {}).get("state") == "JOB_SUCCEEDED")
    assert {j: c.job(follower, j) for j in done} == before


WRITE_PATHS = ("/v3/kv/txn", "/v3/kv/put", "/v3/kv/deleterange")


def classify(rec, term):
    """('write', rev) for a request that changed etcd, ('refused', None) for a txn fenced on
    `term` whose compare failed, None for anything else."""
    _, path, body, status, data = rec
    if path not in WRITE_PATHS or status != 200:
        return None
    resp = json.loads(data or b"{}")
    rev = int(resp.get("header", {}).get("revision", 0))
    if path != "/v3/kv/txn":
        return ("write", rev)
    req = json.loads(body)
    ok = resp.get("succeeded", False)
    ops = req.get("success" if ok else "failure", [])
    if any("request_put" in op or "request_delete_range" in op for op in ops):
        return ("write", rev)
    fenced = any(str(cmp.get("create_revision")) == str(term) for cmp in req.get("compare", []))
    return ("refused", None) if not ok and fenced else None


def test_fencing_paused_leader(c):
    # A long grace: the agents stay on the paused leader (its TCP is alive) and move to the new
    # one only when the old one steps down; the job must not be marked LOST meanwhile.
    old = c.start_three(proxied=True, grace="30s")
    kvs, _ = c.etcd_get("/muster/leader")
    term1 = kvs["/muster/leader"]["create_revision"]
    assert json.loads(kvs["/muster/leader"]["value"])["member_id"] == old[0], kvs
    marks = os.path.join(c.workdir, "marks")
    os.makedirs(marks)
    rc, out, err = c.cli_at(old[1], "run", "--detach", "--all", "--", marks_cmd(marks))
    assert rc == 0, err
    job = out.strip()
    wait_until("three tasks running", lambda: all(
        v.count("start") == 1 for v in marks_per_host(marks).values()))

    p = c.members[old[0]][0]
    wire = c.wire[old[0]]
    # A write in flight when the leader is paused: a submission whose transaction the proxy holds.
    wire.gate.clear()
    sub = subprocess.Popen([c.cli_bin, "--addr", old[1], "run", "--detach", "--all", "--", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until("a write of the leader held in flight", lambda: wire.held >= 1, timeout=5)
    p.p.send_signal(signal.SIGSTOP)
    t_stop = time.monotonic()

    def new_term():
        kv, _ = c.etcd_get("/muster/leader")
        k = kv.get("/muster/leader")
        return k if k and k["create_revision"] != term1 else None
    k = wait_until("another member to win", new_term, timeout=10, step=0.1)
    term2 = k["create_revision"]
    winner = json.loads(k["value"])["member_id"]
    assert winner != old[0] and term2 > term1, (winner, term1, term2)
    new_addr = c.members[winner][1]
    wait_until(winner + " to lead", lambda: (c.cluster_at(new_addr) or {}).get("leader"), timeout=5)
    print("  %s paused; %s won term %d (was %d) after %.2fs" %
          (old[0], winner, term2, term1, time.monotonic() - t_stop))
    time.sleep(3.0)  # the tasks end while the old leader is paused: their events wait for it
    # the held write reaches etcd now, in the new term: etcd must refuse it
    n_held = len(wire.records)
    held = wire.held
    wire.gate.set()
    wait_until("the held writes answered", lambda: len(wire.records) >= n_held + held, timeout=5)
    released = [(r, classify(r, term1)) for r in wire.records[n_held:n_held + held]]
    assert released and all(k == ("refused", None) for _, k in released), \
        "etcd did not refuse the old leader's late write(s): %r" % [(r[1], r[4][:300]) for r, _ in released]
    n_wire = len(wire.records)
    p.p.send_signal(signal.SIGCONT)
    t_cont = time.monotonic()

    cl = wait_until(old[0] + " to step down", lambda: (lambda x: x if x and not x.get("leader")
                    and x.get("leaderAddress") == new_addr else None)(c.cluster_at(old[1])),
                    timeout=10, step=0.1)
    print("  %s stepped down %.2fs after SIGCONT (leader now %s)" %
          (old[0], time.monotonic() - t_cont, cl["leaderAddress"]))
    assert "is no longer the leader" in p.text(), p.text()[-2000:]
    # a write of its last term that failed must not leave the follower unhealthy
    wait_until(old[0] + " healthy as a follower", lambda: (c.cluster_at(old[1]) or {}).get("healthy"),
               timeout=5)
    # agents follow the new leader; the job finishes there, each task run once
    wait_until("agents on " + winner, lambda: c.connected_at(new_addr) == set(HOSTS), timeout=15)
    st = wait_until("the job to finish", lambda: (lambda j: j if j and j["state"] not in
                    ("JOB_RUNNING", "JOB_PENDING") else None)(c.job(new_addr, job)), timeout=20)
    assert st["state"] == "JOB_SUCCEEDED", st
    for h, text in marks_per_host(marks).items():
        assert text == "start\nend\n", "host %s ran its task %r" % (h, text)
    # a write sent to the old leader is redirected
    rc, out, err = c.cli_at(old[1], "run", "--detach", "--all", "--", "true")
    assert rc == 0 and out.strip().startswith("j-"), (out, err)
    try:
        sub_out, sub_err = sub.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub_out, sub_err = sub.communicate()
    time.sleep(0.5)

    # What the old leader sent etcd, as seen on the wire
    kinds = [(rec, classify(rec, term1)) for rec in list(wire.records)]
    late_writes = [(r[1], r[2][:300], k) for r, k in kinds if k and k[0] == "write" and k[1] >= term2]
    assert not late_writes, "old leader wrote at/after term %d: %r" % (term2, late_writes)
    after_cont = kinds[n_wire:]
    refused_after = [r for r, k in after_cont if k and k[0] == "refused"]
    writes_before = [k[1] for _, k in kinds if k and k[0] == "write"]
    assert writes_before, "the recording proxy saw no write from the old leader at all"
    print("  old leader: %d writes in term %d (last at rev %d); %d held write(s) released in "
          "term %d all refused by etcd; %d requests after SIGCONT (%d refused txns), "
          "%d 'fenced out' log lines; the held submission's CLI exited %d (%s)" %
          (len(writes_before), term1, max(writes_before), len(released), term2, len(after_cont),
           len(refused_after), p.text().count("fenced out"), sub.returncode,
           (sub_out.strip() or sub_err.strip())[:120]))
    # and the winner still holds its term
    kvs, _ = c.etcd_get("/muster/leader")
    assert kvs["/muster/leader"]["create_revision"] == term2


if __name__ == "__main__":
    import ha_test
    ha_test.HA = EtcdCluster
    ha_test.main([test_three_member_failover, test_fencing_paused_leader])
