"""End-to-end: signed bundles from a laptop to a fleet, with real musterd, agents and CLI.

The operator's story: make a key, pack a directory, sign it, push it (twice: stored once),
list it, and run a script from it on three hosts; the second run is a cache hit. Agents
refuse a tampered bundle, an unsigned one (unless allowed) and a rollback, each naming the
rule; a bundle in use cannot be removed; an upload that stops halfway stores nothing; a job
naming a missing bundle is refused at submit. With etcd, bundles are chunk keys in etcd: they
survive a musterd restart and a failover to another member, and an agent with an empty cache
still gets them (read from etcd once).
"""
import json
import os
import subprocess
import threading
import time
import urllib.request

import grpc

from harness import Proc, free_port, main, wait_until

HB = "300ms"


def sh(c, *args, check=True):
    return c.cli(*args, check=check)


def make_bundle(c, name, version, text, sign=True, key="team", noise=0, compress=None):
    """Packs a directory whose run.sh prints text; returns the bundle path."""
    src = os.path.join(c.workdir, "src-%s-%s-%d" % (name, version, abs(hash(text))))
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "run.sh"), "w") as f:
        f.write('#!/bin/sh\necho "%s: $(cat data/msg.txt) on $MUSTER_AGENT_ID"\n' % text)
    os.chmod(os.path.join(src, "run.sh"), 0o755)
    os.makedirs(os.path.join(src, "data"), exist_ok=True)
    with open(os.path.join(src, "data", "msg.txt"), "w") as f:
        f.write("%s-%s\n" % (name, version))
    if noise:
        with open(os.path.join(src, "data", "noise.bin"), "wb") as f:
            f.write(os.urandom(noise))
    out = os.path.join(c.workdir, "%s-%s-%d.bundle" % (name, version, abs(hash(text))))
    sh(c, "bundle", "pack", src, "--name", name, "--version", version, "--entry", "run.sh",
       "--out", out, *(("--compress", compress) if compress else ()))
    if sign:
        sh(c, "bundle", "sign", out, "--key", os.path.join(c.workdir, key + ".key"))
    return out


def push(c, path, *extra):
    rc, out, err = c.cli("-o", "json", "bundle", "push", path, *extra, check=False)
    assert rc == 0, err
    return json.loads(out.strip().splitlines()[-1])


def job_file(c, bundle, hosts, name="from-bundle"):
    path = os.path.join(c.workdir, "job-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("""
name: %s
target: {hosts: [%s]}
tasks:
  - name: go
    timeout: 20s
    bundle: "%s"
    shell: {script_file: run.sh}
""" % (name, ", ".join(hosts), bundle))
    return path


def submit(c, bundle, hosts):
    """Submits a job running run.sh from bundle on hosts: (exit code, {agent: TaskRun}, stderr)."""
    rc, out, err = c.cli("-o", "json", "submit", job_file(c, bundle, hosts), check=False,
                         timeout=90)
    runs = {}
    for line in out.splitlines():
        obj = json.loads(line)
        if "taskId" in obj:
            runs[obj["agentId"]] = obj
    return rc, runs, err


def fleet(c, *agent_flags, ids=("web-1", "web-2", "db-1")):
    if c.musterd is None:
        c.start_musterd("--heartbeat-timeout", "3s")
    for a in ids:
        c.start_agent(a, "role=%s" % a.split("-")[0], "--heartbeat-interval", HB,
                      "--trust-key", os.path.join(c.workdir, "team.pub"), *agent_flags)
    wait_until("agents connected", lambda: sum(
        1 for k, v in c.states().items() if k in ids and v == "AGENT_CONNECTED") == len(ids))


def keys(c):
    sh(c, "keygen", "--out", os.path.join(c.workdir, "team"))
    sh(c, "keygen", "--out", os.path.join(c.workdir, "mallory"))


def test_push_and_run_on_three_agents(c):
    keys(c)
    fleet(c)
    b = make_bundle(c, "demo", "1.0.0", "hello")
    first = push(c, b)
    assert first["name"] == "demo" and first["version"] == "1.0.0", first
    assert not first.get("alreadyPresent"), first
    assert len(first["keyId"]) == 16, first
    second = push(c, b)
    assert second.get("alreadyPresent") is True and second["digest"] == first["digest"], second
    rc, out, _ = sh(c, "bundle", "ls")
    lines = [l for l in out.splitlines() if l.startswith("demo")]
    assert len(lines) == 1 and "1.0.0" in lines[0] and first["keyId"] in lines[0], out
    rc, out, _ = sh(c, "-o", "json", "bundle", "ls")
    assert [json.loads(l)["digest"] for l in out.splitlines()] == [first["digest"]], out
    rc, runs, err = submit(c, "demo@1.0.0", ["web-1", "web-2", "db-1"])
    assert rc == 0, (runs, err)
    assert set(runs) == {"web-1", "web-2", "db-1"}, runs
    for agent, r in runs.items():
        assert r["state"] == "SUCCEEDED", r
        assert "hello: demo-1.0.0 on %s" % agent in r["outputTail"], r
    # three agents fetched it, the control plane read its store once
    assert c.musterd.text().count("(reading the store)") == 1, c.musterd.text()
    # the second run (by digest this time) is a cache hit: no new request
    rc, runs, err = submit(c, first["digest"], ["web-1", "web-2", "db-1"])
    assert rc == 0 and all(r["state"] == "SUCCEEDED" for r in runs.values()), (runs, err)
    for a in ("web-1", "web-2", "db-1"):
        assert c.agents[a].text().count("missing; asking the control plane") == 1, a


def test_tampered_and_unsigned_refused(c):
    keys(c)
    c.start_musterd("--heartbeat-timeout", "3s", "--allow-unsigned-bundles")
    fleet(c)
    c.start_agent("lax-1", "role=lax", "--heartbeat-interval", HB, "--allow-unsigned",
                  "--trust-key", os.path.join(c.workdir, "team.pub"))
    wait_until("lax agent", lambda: c.states().get("lax-1") == "AGENT_CONNECTED")
    good = make_bundle(c, "app", "1.0", "good")
    evil = make_bundle(c, "app", "1.1", "evil", sign=False)
    # the good bundle's (intact) signature beside different bytes
    info = push(c, evil, "--sig", good + ".sig")
    rc, runs, _ = submit(c, info["digest"], ["web-1"])
    assert rc == 1 and runs["web-1"]["state"] == "FAILED", runs
    assert "bad signature by key" in runs["web-1"]["message"], runs
    # signed by a key nobody trusts
    other = make_bundle(c, "app", "1.2", "other", key="mallory")
    info = push(c, other)
    rc, runs, _ = submit(c, "app@1.2", ["web-1"])
    assert rc == 1 and "not in the trust set" in runs["web-1"]["message"], runs
    # unsigned: refused by default, run where the agent allows unsigned bundles
    plain = make_bundle(c, "plain", "1.0", "plain", sign=False)
    info = push(c, plain)
    assert info.get("keyId", "") == "", info
    rc, runs, _ = submit(c, "plain@1.0", ["web-2", "lax-1"])
    assert rc == 1, runs
    assert runs["web-2"]["state"] == "FAILED", runs
    assert "unsigned bundles are not allowed" in runs["web-2"]["message"], runs
    assert runs["lax-1"]["state"] == "SUCCEEDED" and "plain: plain-1.0" in runs["lax-1"]["outputTail"], runs
    # nothing from a refused bundle is left behind in the stage dir
    stage = os.path.join(c.workdir, "spool-web-1", "bundles", "stage")
    assert os.listdir(stage) == [], os.listdir(stage)


def test_unsigned_upload_refused_by_default(c):
    """Without --trust-key an unsigned upload could claim name@version before the real, signed
    one; musterd refuses unsigned uploads unless told to take them."""
    keys(c)
    c.start_musterd()
    squat = make_bundle(c, "app", "1.0", "squatter", sign=False)
    rc, _, err = c.cli("bundle", "push", squat, check=False)
    assert rc != 0, err
    assert "bundle is unsigned" in err and "--allow-unsigned-bundles" in err, err
    assert sh(c, "-o", "json", "bundle", "ls")[1].strip() == ""
    assert "action=bundle.upload" in c.musterd.text() and "outcome=refused" in c.musterd.text()
    # the real one is stored under its name
    real = push(c, make_bundle(c, "app", "1.0", "real"))
    assert real["name"] == "app" and len(real["keyId"]) == 16, real
    # the flag (or allow_unsigned_bundles: true in the config file) lets them in
    c.musterd.stop()
    conf = os.path.join(c.workdir, "musterd.yaml")
    with open(conf, "w") as f:
        f.write("allow_unsigned_bundles: true\n")
    c.start_musterd("--config", conf)
    info = push(c, squat)
    assert info["name"] == "app" and info.get("keyId", "") == "", info
    c.musterd.stop()
    c.start_musterd("--allow-unsigned-bundles")
    assert push(c, squat)["digest"] == info["digest"]


def test_rollback_refused_unless_pinned_and_allowed(c):
    keys(c)
    fleet(c, ids=("web-1",))
    c.start_agent("old-ok", "role=old", "--heartbeat-interval", HB, "--allow-downgrade",
                  "--trust-key", os.path.join(c.workdir, "team.pub"))
    wait_until("old-ok", lambda: c.states().get("old-ok") == "AGENT_CONNECTED")
    v2 = push(c, make_bundle(c, "web", "2.0", "two"))
    v1 = push(c, make_bundle(c, "web", "1.9", "one"))
    rc, runs, _ = submit(c, "web@2.0", ["web-1", "old-ok"])
    assert rc == 0, runs
    rc, runs, _ = submit(c, "web@1.9", ["web-1", "old-ok"])
    assert rc == 1, runs
    for a in ("web-1", "old-ok"):
        assert "version 1.9 is lower than 2.0 already run here (rollback refused)" in runs[a]["message"], runs
    # pinned by digest: allowed only where the agent allows downgrades
    rc, runs, _ = submit(c, v1["digest"], ["web-1", "old-ok"])
    assert runs["old-ok"]["state"] == "SUCCEEDED" and "one: web-1.9" in runs["old-ok"]["outputTail"], runs
    assert runs["web-1"]["state"] == "FAILED" and "--allow-downgrade" in runs["web-1"]["message"], runs
    # the same version again is fine; the record survives an agent restart
    assert c.agents["web-1"].stop() == 0
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB,
                  "--trust-key", os.path.join(c.workdir, "team.pub"))
    wait_until("web-1 back", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    rc, runs, _ = submit(c, "web@2.0", ["web-1"])
    assert rc == 0, runs
    rc, runs, _ = submit(c, "web@1.9", ["web-1"])
    assert rc == 1 and "rollback refused" in runs["web-1"]["message"], runs
    assert v2["digest"] != v1["digest"]


def corrupt_but_signed(c, name, version, text):
    """A bundle whose manifest and signature are in order but whose run.sh bytes are not the
    ones the manifest lists (a build that broke after hashing, signed anyway): it verifies,
    and the agent refuses it while unpacking."""
    import gzip
    import io
    import tarfile
    path = make_bundle(c, name, version, text, sign=False, compress="gzip")
    tar = bytearray(gzip.decompress(open(path, "rb").read()))
    member = tarfile.open(fileobj=io.BytesIO(bytes(tar))).getmember("run.sh")
    at = member.offset_data + member.size - 2  # the script's last character before "\n"
    tar[at] = ord("X") if tar[at] != ord("X") else ord("Y")
    with open(path, "wb") as f:
        f.write(gzip.compress(bytes(tar), mtime=0))
    sh(c, "bundle", "sign", path, "--key", os.path.join(c.workdir, "team.key"))
    return path


def test_a_bundle_that_never_ran_does_not_raise_the_rollback_floor(c):
    """legit@5.0.0 is signed but fails to unpack on the agent: it never ran there, so
    legit@2.0.0 still runs. Once a good 5.0.0 has run, 2.0.0 is refused again."""
    keys(c)
    fleet(c, ids=("web-1",))
    push(c, corrupt_but_signed(c, "legit", "5.0.0", "five"))
    rc, runs, _ = submit(c, "legit@5.0.0", ["web-1"])
    assert rc == 1 and runs["web-1"]["state"] == "FAILED", runs
    assert "entry 'run.sh': sha256 does not match the manifest" in runs["web-1"]["message"], runs
    push(c, make_bundle(c, "legit", "2.0.0", "two"))
    rc, runs, _ = submit(c, "legit@2.0.0", ["web-1"])
    assert rc == 0, runs
    assert "two: legit-2.0.0 on web-1" in runs["web-1"]["outputTail"], runs
    # the broken build is replaced by a good one, which runs and raises the floor
    sh(c, "bundle", "rm", "legit@5.0.0")
    push(c, make_bundle(c, "legit", "5.0.0", "five, fixed"))
    rc, runs, _ = submit(c, "legit@5.0.0", ["web-1"])
    assert rc == 0 and "five, fixed: legit-5.0.0" in runs["web-1"]["outputTail"], runs
    rc, runs, _ = submit(c, "legit@2.0.0", ["web-1"])
    assert rc == 1, runs
    assert ("version 2.0.0 is lower than 5.0.0 already run here (rollback refused)"
            in runs["web-1"]["message"]), runs
    # and the floor is on disk: it holds across an agent restart
    assert c.agents["web-1"].stop() == 0
    fleet(c, ids=("web-1",))
    rc, runs, _ = submit(c, "legit@2.0.0", ["web-1"])
    assert rc == 1 and "rollback refused" in runs["web-1"]["message"], runs


def test_rm_refused_while_a_job_uses_it(c):
    keys(c)
    fleet(c, ids=("web-1",))
    info = push(c, make_bundle(c, "slow", "1.0", "slow"))
    rc, out, err = c.cli("run", "--detach", "--hosts", "web-1", "--bundle", "slow@1.0", "--",
                         "sleep 2; sh run.sh", check=False)
    assert rc == 0, err
    job = out.strip()
    rc, _, err = c.cli("bundle", "rm", "slow@1.0", check=False)
    assert rc != 0 and "used by job %s" % job in err, err
    rc, out, _ = c.cli("watch", job, check=False, timeout=60)
    assert rc == 0 and "slow: slow-1.0" in out, out
    sh(c, "bundle", "rm", info["digest"])
    rc, out, _ = sh(c, "-o", "json", "bundle", "ls")
    assert out.strip() == "", out
    rc, _, err = c.cli("bundle", "rm", "slow@1.0", check=False)
    assert rc != 0 and "not found" in err, err


def pb_bytes(field, data):
    tag, n, out = bytes([(field << 3) | 2]), len(data), b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return tag + out + data


def pb_varint(field, n):
    out = bytes([field << 3])
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def test_upload_that_stops_halfway_stores_nothing(c):
    keys(c)
    c.start_musterd()
    path = make_bundle(c, "half", "1.0", "half", noise=300000)
    data = open(path, "rb").read()
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    header = (pb_bytes(2, digest.encode()) + pb_varint(3, len(data)) +
              pb_bytes(4, open(path + ".sig", "rb").read()))
    half = pb_bytes(1, data[: len(data) // 2])
    channel = c.grpc_channel()
    upload = channel.stream_unary("/muster.v1.Admin/UploadBundle")
    # 1. the client half-closes early
    try:
        upload(iter([header, half]), timeout=10)
        raise AssertionError("a short upload was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert "nothing stored" in e.details(), e.details()
    # 2. the client vanishes mid-stream
    gate = threading.Event()

    def stalled():
        yield header
        yield half
        gate.wait(10)

    fut = upload.future(stalled(), timeout=30)
    time.sleep(0.5)  # header and half the bytes are on the server
    fut.cancel()
    gate.set()
    # (gRPC may report the vanished client as an early end of its stream)
    wait_until("musterd to log the stopped upload",
               lambda: c.musterd.text().count("nothing stored") >= 2)
    channel.close()
    rc, out, _ = sh(c, "-o", "json", "bundle", "ls")
    assert out.strip() == "", out
    assert c.musterd.alive()
    # a bundle over the size cap is refused before any byte is stored
    c.musterd.stop()
    c.start_musterd("--max-bundle-size", "1K")
    rc, _, err = c.cli("bundle", "push", path, check=False)
    assert rc != 0 and "over the cap of 1024" in err, err
    # and a whole upload still works
    c.musterd.stop()
    c.start_musterd()
    info = push(c, path)
    assert info["digest"] == digest


def test_cp_to_and_from_hosts(c):
    """`muster cp` copies files to hosts through a signed bundle (removed afterwards) and
    collects files back into per-host directories (--from-hosts)."""
    keys(c)
    fleet(c)
    src = os.path.join(c.workdir, "cp-src")
    os.makedirs(os.path.join(src, "conf.d"))
    with open(os.path.join(src, "app.conf"), "w") as f:
        f.write("port = 8080\n")
    with open(os.path.join(src, "conf.d", "extra.conf"), "w") as f:
        f.write("debug = false\n")
    os.chmod(os.path.join(src, "app.conf"), 0o640)
    os.symlink("app.conf", os.path.join(src, "current.conf"))
    tool = os.path.join(c.workdir, "tool.sh")
    with open(tool, "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(tool, 0o755)
    dest = os.path.join(c.workdir, "cp-dest")
    key = os.path.join(c.workdir, "team.key")
    # unsigned is refused by musterd by default, saying how to sign
    rc, _, err = c.cli("cp", "--hosts", "web-1", tool, dest, check=False)
    assert rc == 2 and "--sign-key" in err, err
    # one host at a time: both agents of this test share one filesystem and one DEST
    rc, out, err = c.cli("cp", "--hosts", "web-1,web-2", "--max-concurrency", "1", "--sign-key", key,
                         os.path.join(src, "app.conf"), os.path.join(src, "conf.d"),
                         os.path.join(src, "current.conf"), tool, dest, check=False)
    assert rc == 0, (out, err)
    with open(os.path.join(dest, "app.conf")) as f:
        assert f.read() == "port = 8080\n"
    with open(os.path.join(dest, "conf.d", "extra.conf")) as f:
        assert f.read() == "debug = false\n"
    assert os.readlink(os.path.join(dest, "current.conf")) == "app.conf"
    assert os.stat(os.path.join(dest, "app.conf")).st_mode & 0o777 == 0o640
    assert os.stat(os.path.join(dest, "tool.sh")).st_mode & 0o777 == 0o755
    rc, out, _ = c.cli("bundle", "ls")
    assert "cp-" not in out, out  # removed once the job ended
    # the same through MUSTER_SIGNING_KEY, and a source that does not exist
    rc, _, err = c.cli("cp", "--hosts", "web-1", os.path.join(src, "nope"), dest, check=False)
    assert rc == 2 and "nope" in err, err
    # from hosts: each host's files under LOCAL/<host>/
    remote = os.path.join(c.workdir, "remote")
    os.makedirs(os.path.join(remote, "sub"))
    with open(os.path.join(remote, "a.txt"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(remote, "sub", "b.bin"), "wb") as f:
        f.write(bytes(range(256)) * 300)
    got = os.path.join(c.workdir, "got")
    rc, out, err = c.cli("cp", "--from-hosts", "--hosts", "web-1,db-1", remote, got, check=False)
    assert rc == 0, (out, err)
    for host in ("web-1", "db-1"):
        base = os.path.join(got, host, remote.lstrip("/"))
        with open(os.path.join(base, "a.txt")) as f:
            assert f.read() == "alpha\n"
        with open(os.path.join(base, "sub", "b.bin"), "rb") as f:
            assert f.read() == bytes(range(256)) * 300
        assert "%s: " % host in out, out
    assert not os.path.exists(os.path.join(got, "web-2"))
    # a path missing on the hosts fails those hosts; one over --max-size says so
    rc, out, err = c.cli("cp", "--from-hosts", "--hosts", "web-2", "/nonexistent/x", got,
                         check=False)
    assert rc == 1 and "web-2: nothing collected" in err, (out, err)
    rc, out, err = c.cli("cp", "--from-hosts", "--hosts", "web-2", "--max-size", "16K", remote,
                         got, check=False)
    assert rc == 1 and "larger than --max-size" in err, (out, err)
    rc, _, err = c.cli("cp", "--from-hosts", "relative/path", got, check=False)
    assert rc == 2 and "must be absolute" in err, err


def test_missing_bundle_refused_at_submit(c):
    keys(c)
    fleet(c, ids=("web-1",))
    before = c.cli("-o", "json", "jobs")[1].count("\n")
    rc, _, err = c.cli("submit", job_file(c, "x@1", ["web-1"]), check=False)
    assert rc == 2 and "tasks[0].bundle: bundle 'x@1' not found" in err, err
    rc, _, err = c.cli("run", "--bundle", "sha256:" + "0" * 64, "--", "true", check=False)
    assert rc == 2 and "not found" in err, err
    rc, _, err = c.cli("run", "--bundle", "nonsense", "--", "true", check=False)
    assert rc == 2 and "expected NAME@VERSION or sha256:<hex>" in err, err
    assert c.cli("-o", "json", "jobs")[1].count("\n") == before


def start_etcd(c):
    """A single-node etcd in the work dir; returns (Proc, endpoint)."""
    client, peer = "http://127.0.0.1:%d" % free_port(), "http://127.0.0.1:%d" % free_port()
    p = Proc("etcd", ["/usr/bin/etcd", "--name", "b", "--data-dir", os.path.join(c.workdir, "etcd"),
                      "--listen-client-urls", client, "--advertise-client-urls", client,
                      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                      "--initial-cluster", "b=" + peer], c.workdir)
    wait_until("etcd to serve", lambda: subprocess.run(
        ["curl", "-sf", "-m", "1", client + "/health"], capture_output=True).returncode == 0,
        timeout=20)
    return p, client


def etcd_keys(endpoint, prefix):
    r = subprocess.run(["etcdctl", "--endpoints", endpoint, "get", "--prefix", "--keys-only", prefix],
                       capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"))
    assert r.returncode == 0, r.stderr
    return [k for k in r.stdout.splitlines() if k]


def metric(port, name):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics:\n%s" % (name, text))


def cli_at(c, addr, *args):
    r = subprocess.run([c.cli_bin, "--addr", addr] + list(args), capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout, r.stderr


def leading(c, addr):
    rc, out, _ = cli_at(c, addr, "-o", "json", "cluster")
    return rc == 0 and json.loads(out).get("leader")


ETCD_FLAGS = ("--leader-ttl", "2s", "--takeover-grace", "1s", "--heartbeat-timeout", "3s",
              "--bundle-etcd-chunk", "64K")


def test_etcd_bundles_survive_a_restart(c):
    keys(c)
    etcd, endpoint = start_etcd(c)
    try:
        mport = free_port()
        flags = ETCD_FLAGS + ("--metrics-listen", "127.0.0.1:%d" % mport)
        c.start_musterd(*flags, etcd=endpoint)
        wait_until("leader", lambda: leading(c, c.addr))
        path = make_bundle(c, "kept", "1.0", "kept", noise=300000)
        info = push(c, path)
        size = os.path.getsize(path)
        assert info["size"] == str(size) or info["size"] == size, info
        # chunks of 64K, then the meta
        ks = etcd_keys(endpoint, "/muster/bundles/%s/" % info["digest"])
        chunks = (size + 65535) // 65536
        assert len(ks) == chunks + 1 and ks[-1].endswith("/meta"), ks
        # a restart: the bundle is still there
        assert c.musterd.stop() == 0
        before = c.musterd.text().count("(reading the store)")
        c.start_musterd(*flags, etcd=endpoint)
        wait_until("leader again", lambda: leading(c, c.addr))
        rc, out, _ = sh(c, "-o", "json", "bundle", "ls")
        assert [json.loads(l)["digest"] for l in out.splitlines()] == [info["digest"]], out
        assert metric(mport, "muster_bundle_store_read_bytes_total") == 0
        # agents with empty caches run from it: read from etcd once for both
        fleet(c, ids=("web-1", "web-2"))
        rc, runs, err = submit(c, "kept@1.0", ["web-1", "web-2"])
        assert rc == 0, (runs, err)
        for agent, r in runs.items():
            assert r["state"] == "SUCCEEDED" and "kept: kept-1.0 on %s" % agent in r["outputTail"], r
        assert c.musterd.text().count("(reading the store)") == before + 1, c.musterd.text()
        wait_until("metrics", lambda: metric(mport, "muster_bundle_store_read_bytes_total") == size)
        assert metric(mport, "muster_bundle_store_reads_total") == 1
        # removing it deletes the meta and the chunks
        sh(c, "bundle", "rm", "kept@1.0")
        assert etcd_keys(endpoint, "/muster/bundles/") == []
        c.stop_all()
        c.musterd = None
        c.agents = {}
    finally:
        etcd.stop()


def test_etcd_bundles_after_failover(c):
    """Pushed while a second member follows: the follower becomes leader after kill -9 and
    serves the bundle to an agent with an empty cache."""
    keys(c)
    etcd, endpoint = start_etcd(c)
    members = []
    try:
        addrs = ["127.0.0.1:%d" % free_port() for _ in range(2)]
        for i, addr in enumerate(addrs):
            members.append(Proc("musterd-%d" % i, [c.musterd_bin, "--listen", addr, "--etcd", endpoint,
                                                   "--member-id", "m%d" % i] + list(ETCD_FLAGS) +
                                                  c.server_tls("m%d" % i),
                                c.workdir))
            wait_until("m%d to answer" % i, lambda: cli_at(c, addr, "cluster")[0] == 0)
        wait_until("a leader", lambda: leading(c, addrs[0]) or leading(c, addrs[1]))
        lead = 0 if leading(c, addrs[0]) else 1
        c.addr = addrs[lead]
        info = push(c, make_bundle(c, "moved", "2.0", "moved", noise=200000))
        # the follower learns of it from its watch
        other = addrs[1 - lead]
        wait_until("the follower lists it",
                   lambda: info["digest"] in cli_at(c, other, "-o", "json", "bundle", "ls")[1])
        members[lead].p.kill()
        members[lead].p.wait()
        wait_until("the follower leads", lambda: leading(c, other), timeout=20)
        c.addr = other
        c.start_agent("fresh-1", "role=fresh", "--heartbeat-interval", HB,
                      "--trust-key", os.path.join(c.workdir, "team.pub"))
        wait_until("agent", lambda: c.states().get("fresh-1") == "AGENT_CONNECTED")
        rc, runs, err = submit(c, "moved@2.0", ["fresh-1"])
        assert rc == 0 and runs["fresh-1"]["state"] == "SUCCEEDED", (runs, err)
        assert "moved: moved-2.0 on fresh-1" in runs["fresh-1"]["outputTail"], runs
        assert members[1 - lead].text().count("(reading the store)") == 1
        assert c.agents["fresh-1"].stop() == 0
        c.agents = {}
        assert members[1 - lead].stop() == 0, members[1 - lead].text()[-3000:]
    finally:
        for m in members:
            if m.alive():
                m.kill()
        etcd.stop()


if __name__ == "__main__":
    main([
        test_push_and_run_on_three_agents,
        test_tampered_and_unsigned_refused,
        test_unsigned_upload_refused_by_default,
        test_rollback_refused_unless_pinned_and_allowed,
        test_a_bundle_that_never_ran_does_not_raise_the_rollback_floor,
        test_rm_refused_while_a_job_uses_it,
        test_upload_that_stops_halfway_stores_nothing,
        test_missing_bundle_refused_at_submit,
        test_cp_to_and_from_hosts,
        test_etcd_bundles_survive_a_restart,
        test_etcd_bundles_after_failover,
    ])
