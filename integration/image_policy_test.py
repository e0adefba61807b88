"""Image admission policy end to end (issue 19 item 4, docs/images.md#admission-policy): a real
etcd, real musterd, a real agent running container tasks, a loopback docker-registry.

The operator's story: a bad policy file (unknown key, bad glob, bad severity) is refused naming
the file, line and key, and nothing is stored; `muster policy set` stores the policy and every
agent gets it; a container task from a disallowed repository, a root image, network host, a
host path outside the allowed volumes, an image over the size bound, a tag when digests only
are allowed, are each refused before the container starts (and, for the big image, before any
layer is fetched: the store never holds it), with every violation named in the task's
message and an audit line on the agent; an allowed image runs. `muster policy test` dry-runs a
reference and lists the violations. The policy survives a musterd restart (from etcd) and still
refuses; a refused `policy set` leaves the stored one as it was. The agent's own policy
(container_policy) applies too: both must allow.

argv: MUSTERD AGENT CLI PLUGIN_SO MUSTER_CONTAINER REGFIXTURE_PY
"""
import json
import os
import shutil
import subprocess
import sys

from harness import Proc, wait_until
from ha_test import GRACE, TTL, main

PLUGIN_SO, HELPER, FIXTURE = (os.path.abspath(p) for p in sys.argv[4:7])
sys.path.insert(0, os.path.dirname(FIXTURE))
import regfixture as rf  # noqa: E402


def can_run(name):
    if os.geteuid() != 0 or shutil.which("docker-registry") is None or not os.path.exists(rf.BUSYBOX):
        print("SKIP %s: needs root, docker-registry and busybox-static (scripts/setup)" % name)
        return False
    return True


def write(c, name, text):
    path = os.path.join(c.workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def container_plugin(c):
    """The container plugin and its helper in the plugin dir start_ha_agent gives agents."""
    plugins = os.path.join(c.workdir, "plugins")
    os.makedirs(plugins, exist_ok=True)
    os.symlink(PLUGIN_SO, os.path.join(plugins, "libmuster_container.so"))
    os.symlink(HELPER, os.path.join(plugins, "muster-container"))


def start(c, reg, agent_args=()):
    container_plugin(c)
    c.store = os.path.join(c.workdir, "images")
    c.vols = os.path.join(c.workdir, "vols")
    for d in ("ok", "secret"):
        os.makedirs(os.path.join(c.vols, d), exist_ok=True)
    os.environ.update(MUSTER_CONTAINER_STORE=c.store, MUSTER_CONTAINER_INSECURE_REGISTRIES=reg.host,
                      MUSTER_CONTAINER_VOLUMES=c.vols, MUSTER_CONTAINER_ALLOW_ROOT="1",
                      MUSTER_CONTAINER_ALLOW_HOST_NETWORK="1")
    os.environ.pop("MUSTER_CONTAINER_HELPER", None)
    c.start_etcd()
    c.addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    c.start_ha_agent("a1", c.addr, agent_args)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(c.addr))


def restart_member(c, name, addr):
    """musterd again on the same address (the agent's --control), from the same etcd."""
    p = Proc(name, [c.musterd_bin, "--listen", addr, "--etcd", c.endpoint, "--member-id", name,
                    "--leader-ttl", TTL, "--takeover-grace", GRACE, "--heartbeat-timeout", "2s"] + c.server_tls(name),
             c.workdir)
    c.members[name] = (p, addr)
    wait_until(name + " to answer", lambda: c.cli_at(addr, "cluster", check=False)[0] == 0)


def push_images(reg):
    """t/run:1 (user app, small), other/app:1 (a repository the policy does not allow),
    t/root:1 (no User: root), t/big:1 (a 3 MiB incompressible layer)."""
    images = {"run": rf.push_run_image(reg)}
    images["other"] = rf.push_run_image(reg, repo="other/app")
    images["root"] = reg.push_image("t/root", "1", [rf.busybox_layer()], {"Cmd": ["/bin/echo", "ran as root"]})
    big = rf.Layer().file("blob.bin", os.urandom(3 << 20)).raw()
    big_blob, _ = rf.compress(big, "gzip")
    images["big_layer"] = rf.sha(big_blob)
    images["big"] = reg.push_image("t/big", "1", [rf.busybox_layer(), big], {"Cmd": ["/bin/true"], "User": "app"})
    return images


def submit(c, tasks_yaml):
    """Each task as a job of its own (a failed task ends its host's run of a job); the runs by
    task name."""
    runs, rcs, errs = {}, [], []
    for one in ["  - " + t for t in tasks_yaml.split("  - ") if t.strip()]:
        path = write(c, "job-%d.yaml" % len(os.listdir(c.workdir)), "name: p\ntarget: {hosts: [a1]}\ntasks:\n" + one)
        rc, out, err = c.cli_at(c.addr, "-o", "json", "submit", path, check=False, timeout=120)
        rcs.append(rc)
        errs.append(err)
        for line in out.splitlines():
            r = json.loads(line)
            if "taskId" in r:
                runs[r["taskName"]] = r
    return max(rcs), runs, "".join(errs)


def task(name, image, extra=""):
    return "  - name: %s\n    type: container\n    timeout: 60s\n    container: {image: \"%s\"%s}\n" % (name, image, extra)


GOOD_POLICY = """# the cluster's image policy
registries: ["%(reg)s/t/*"]
allow_root_user: false
allow_host_network: false
allowed_volumes: ["%(vols)s/ok/**"]
max_image_size: 2M
"""


def policy_show(c):
    rc, out, err = c.cli_at(c.addr, "-o", "json", "policy", "show")
    return json.loads(out)


def test_policy_end_to_end(c):
    if not can_run("test_policy_end_to_end"):
        return
    reg = rf.Registry()
    try:
        imgs = push_images(reg)
        start(c, reg)
        r = reg.host

        # bad files: refused naming file, line and key; nothing stored
        for text, want in [("registries: [\"%s/t/*\"]\nallow_rot_user: false\n" % r,
                            "bad1.yaml:2: field 'allow_rot_user': unknown key"),
                           ("registries:\n  - \"%s/t/[a\"\n" % r, "bad2.yaml:2: field 'registries': [0]: bad glob"),
                           ("max_severity: SEVERE\n", "bad3.yaml:1: field 'max_severity': \"SEVERE\" is not LOW")]:
            name = "bad%d.yaml" % (len([f for f in os.listdir(c.workdir) if f.startswith("bad")]) + 1)
            rc, out, err = c.cli_at(c.addr, "policy", "set", write(c, name, text), check=False)
            assert rc == 2 and want in err and "nothing changed" in err, (rc, err)
        assert policy_show(c).get("policyJson", "") == "", policy_show(c)

        # the policy set: stored, pushed to the agent (its spool holds it)
        good = write(c, "policy.yaml", GOOD_POLICY % {"reg": r, "vols": c.vols})
        rc, out, err = c.cli_at(c.addr, "policy", "set", good)
        assert "cluster image policy set (sha256:" in out, out
        sha = out.split("(")[1].split(")")[0]
        pushed = os.path.join(c.workdir, "spool-a1", "cluster-image-policy.json")
        wait_until("the agent to keep the policy", lambda: os.path.exists(pushed))
        assert json.load(open(pushed))["allow_root_user"] is False
        shown = policy_show(c)
        assert shown["sha256"] == sha and "# the cluster's image policy" in shown["document"], shown
        rc, out, err = c.cli_at(c.addr, "policy", "show")
        assert out.startswith("# cluster image policy " + sha), out

        # each rule refuses before the container starts; the allowed image runs
        rc, runs, err = submit(c, task("ok", "%s/t/run:1" % r, ", mounts: [{source: \"%s/ok\", target: /in}]" % c.vols) +
                               task("repo", "%s/other/app:1" % r) +
                               task("root", "%s/t/root:1" % r) +
                               task("rootok", "%s/t/root:1" % r, ", user: \"1000\", command: [/bin/id, -u]") +
                               task("net", "%s/t/run:1" % r, ", network: host") +
                               task("vol", "%s/t/run:1" % r, ", mounts: [{source: \"%s/secret\", target: /s}]" % c.vols) +
                               task("big", "%s/t/big:1" % r))
        assert runs["ok"]["state"] == "SUCCEEDED" and runs["ok"]["outputTail"] == "hello from the image\n", runs["ok"]
        assert runs["rootok"]["state"] == "SUCCEEDED" and runs["rootok"]["outputTail"] == "1000\n", runs["rootok"]
        expect = {
            "repo": "registries: %s/other/app is not an allowed registry/repository (allowed: %s/t/*)" % (r, r),
            "root": "allow_root_user: the image's user is root (config User \"\") and the task sets no other user",
            "net": "allow_host_network: the task asks for network host",
            "vol": "allowed_volumes: host path %s/secret is not allowed (allowed: %s/ok/**)" % (c.vols, c.vols),
            "big": "max_image_size: the image is ",
        }
        for name, want in expect.items():
            run = runs[name]
            assert run["state"] == "FAILED", run
            # the message is cut at 512 bytes; the task's stderr has every violation whole
            assert "refused by the admission policy: cluster policy: " in run["message"], run
            assert want in run["message"] + run.get("output", ""), run
            assert "ran as root" not in run.get("outputTail", ""), run
        # refused before any layer was fetched: the big layer never reached the store
        assert not os.path.exists(os.path.join(c.store, "blobs", "sha256", imgs["big_layer"][7:])), imgs["big_layer"]
        agent_log = c.agents["a1"].text()
        assert "audit: action=image.refused image=%s/t/big:1" % r in agent_log, agent_log[-2000:]

        # every violation of one image at once
        rc, runs, err = submit(c, task("all", "%s/other/app:1" % r, ", network: host, user: root, mounts: "
                                       "[{source: \"%s/secret\", target: /s}]" % c.vols))
        msg = runs["all"]["message"]
        for rule in ("registries:", "allow_root_user: the task asks to run as root", "allow_host_network:",
                     "allowed_volumes:"):
            assert rule in msg, msg

        # muster policy test: a dry run with what the registry says of the image
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/root:1" % r, "--insecure", "--network", "host",
                                "--volume", "/etc", check=False)
        assert rc == 1, (rc, out, err)
        assert "REFUSED by the cluster policy %s: 3 violations" % sha in out, out
        assert "  allow_root_user: the image's user is root" in out and "  allow_host_network:" in out, out
        assert "  allowed_volumes: host path /etc is not allowed" in out, out
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/run:1" % r, "--insecure", check=False)
        assert rc == 0 and "ALLOWED by the cluster policy" in out and "user \"app\"" in out, (out, err)
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/big:1" % r, "--insecure", check=False)
        assert rc == 1 and "compressed, over the 2.0 MiB allowed" in out, out

        # audited
        rc, out, err = c.cli_at(c.addr, "audit", "--action", "imagepolicy.")
        assert "imagepolicy.set" in out and "imagepolicy.test" in out, out

        # musterd restarts: the policy comes back from etcd, is pushed again, still refuses
        c.members["cp-a"][0].stop()
        restart_member(c, "cp-a", c.addr)
        wait_until("cp-a to lead again", lambda: c.leader() is not None, timeout=15)
        assert policy_show(c)["sha256"] == sha
        wait_until("a1 back", lambda: "a1" in c.connected_at(c.addr), timeout=30)
        rc, runs, err = submit(c, task("net2", "%s/t/run:1" % r, ", network: host"))
        assert runs["net2"]["state"] == "FAILED" and "allow_host_network" in runs["net2"]["message"], runs

        # musterd checks a document itself (a client that skips the CLI's check), and only an
        # admin may set: a viewer is denied, and may show and test
        import grpc
        bad = b"nope: 1\n"
        req = b"\x0a" + bytes([len(bad)]) + bad + b"\x12\x08raw.yaml"
        for role, code, want in [("admin", grpc.StatusCode.INVALID_ARGUMENT, "raw.yaml:1: field 'nope': unknown key"),
                                 ("viewer", grpc.StatusCode.PERMISSION_DENIED, "needs the admin role")]:
            ch = c.grpc_channel(name="raw-" + role, role=role)
            fn = ch.unary_unary("/muster.v1.ImagePolicies/SetImagePolicy", request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
            try:
                fn(req, timeout=10)
                raise AssertionError("SetImagePolicy as %s was accepted" % role)
            except grpc.RpcError as e:
                assert e.code() == code and want in e.details(), (role, e.code(), e.details())
            get = ch.unary_unary("/muster.v1.ImagePolicies/GetImagePolicy", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
            assert sha.encode() in get(b"", timeout=10)
            ch.close()

        # a refused set leaves the stored policy as it was
        rc, out, err = c.cli_at(c.addr, "policy", "set", write(c, "bad9.yaml", "digests_only: yes please\n"),
                                check=False)
        assert rc == 2 and "bad9.yaml:1: field 'digests_only'" in err, err
        assert policy_show(c)["sha256"] == sha

        # digests only: a tag is refused, the digest runs
        rc, out, err = c.cli_at(c.addr, "policy", "set", write(c, "digests.yaml", "digests_only: true\n"))
        wait_until("the new policy on the agent", lambda: "digests_only\":true" in open(pushed).read())
        digest = imgs["run"][0]
        rc, runs, err = submit(c, task("tag", "%s/t/run:1" % r) + task("pinned", "%s/t/run@%s" % (r, digest)))
        assert runs["tag"]["state"] == "FAILED" and "digests_only: the image is named by tag \"1\"" in \
            runs["tag"]["message"], runs["tag"]
        assert runs["pinned"]["state"] == "SUCCEEDED", runs["pinned"]

        # a policy that needs a signature refuses this image, saying why, before any layer:
        # its max_severity, checked once the layers are in, is not reached
        c.cli_at(c.addr, "policy", "set", write(c, "sig.yaml", "require_signed: true\nmax_severity: HIGH\n"))
        wait_until("the sig policy on the agent", lambda: "require_signed\":true" in open(pushed).read())
        rc, runs, err = submit(c, task("sig", "%s/t/run@%s" % (r, digest)))
        msg = runs["sig"]["message"]
        assert "require_signed: signature not checked" in msg, msg

        # max_severity on an agent with no feed configured: refused, naming the config key
        c.cli_at(c.addr, "policy", "set", write(c, "sev.yaml", "max_severity: HIGH\n"))
        wait_until("the sev policy on the agent", lambda: "require_signed\":false" in open(pushed).read())
        rc, runs, err = submit(c, task("nofeed", "%s/t/run@%s" % (r, digest)))
        msg = runs["nofeed"]["message"] + runs["nofeed"].get("output", "")
        assert runs["nofeed"]["state"] == "FAILED", runs["nofeed"]
        assert "max_severity: no vulnerability feed on this agent" in msg and "container_scan_feed_dir" in msg, msg

        # cleared: the agent forgets it
        c.cli_at(c.addr, "policy", "set", "--clear")
        wait_until("the agent to drop the policy", lambda: not os.path.exists(pushed))
        rc, runs, err = submit(c, task("free", "%s/other/app:1" % r))
        assert runs["free"]["state"] == "SUCCEEDED", runs["free"]
    finally:
        reg.close()


def test_agent_policy_and_cluster_policy(c):
    """The agent's own policy (container_policy) and the cluster's: both must allow."""
    if not can_run("test_agent_policy_and_cluster_policy"):
        return
    reg = rf.Registry()
    try:
        push_images(reg)
        r = reg.host
        own = write(c, "agent-policy.yaml", "registries: [\"%s/t/run\"]\n" % r)
        os.environ["MUSTER_CONTAINER_POLICY"] = own
        start(c, reg)
        c.cli_at(c.addr, "policy", "set", write(c, "cluster.yaml", "allow_host_network: false\n"))
        pushed = os.path.join(c.workdir, "spool-a1", "cluster-image-policy.json")
        wait_until("the agent to keep the policy", lambda: os.path.exists(pushed))
        rc, runs, err = submit(c, task("both", "%s/t/root:1" % r, ", network: host") + task("ok", "%s/t/run:1" % r))
        msg = runs["both"]["message"]
        assert "agent policy: registries: %s/t/root is not an allowed" % r in msg, msg
        assert "cluster policy: allow_host_network: the task asks for network host" in msg, msg
        assert runs["ok"]["state"] == "SUCCEEDED", runs["ok"]
    finally:
        os.environ.pop("MUSTER_CONTAINER_POLICY", None)
        reg.close()


DEB_OS = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
          'VERSION_CODENAME=bookworm\n')


def dpkg_image(reg, repo, packages):
    """busybox + a layer with a Debian os-release and a dpkg status of (name, version, source)."""
    status = "".join("Package: %s\nStatus: install ok installed\nVersion: %s\nSource: %s\n\n" % p for p in packages)
    layer = (rf.Layer().dir("etc").dir("var").dir("var/lib").dir("var/lib/dpkg")
             .file("etc/os-release", DEB_OS).file("var/lib/dpkg/status", status).raw())
    return reg.push_image(repo, "1", [rf.busybox_layer(), layer],
                          {"Cmd": ["/bin/echo", "ran " + repo], "User": "app"})


def osv_record(id_, name, published, events, severity):
    return {"id": id_, "modified": published, "published": published,
            "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
            "database_specific": {"severity": severity}}


def test_max_severity_scans_on_the_agent(c):
    """max_severity on the agent: the layers are scanned against the agent's feed
    (container_scan_feed_dir in agent.yaml) after the pull and before the
    container starts; an unfixed CRITICAL is refused naming the count and severity, a fixed one
    or a clean image runs; severity_grace_days lets a fresh finding through; a feed directory
    with no feed refuses naming the key; the warm start reuses the cached scan; `muster policy
    test --feed` says the same."""
    if not can_run("test_max_severity_scans_on_the_agent"):
        return
    import datetime
    reg = rf.Registry()
    feed = os.path.join(c.workdir, "feed")
    try:
        r = reg.host
        # vuln: openssl with no fix (CRITICAL, 2024); fixed: zlib below its fix (CRITICAL, fixed);
        # fresh: newpkg with no fix, published today
        dpkg_image(reg, "t/vuln", [("libssl3", "3.0.11-1~deb12u2", "openssl")])
        dpkg_image(reg, "t/fixed", [("zlib1g", "1:1.2.13.dfsg-1", "zlib")])
        dpkg_image(reg, "t/fresh", [("newpkg", "1.0-1", "newpkg")])
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT00:00:00Z")
        osv_dir = os.path.join(c.workdir, "osv")
        os.makedirs(osv_dir)
        for rec in [osv_record("DSA-9001-1", "openssl", "2024-04-01T00:00:00Z", [{"introduced": "0"}], "CRITICAL"),
                    osv_record("DSA-9002-1", "zlib", "2024-04-01T00:00:00Z",
                               [{"introduced": "0"}, {"fixed": "1:1.2.14-1"}], "CRITICAL"),
                    osv_record("DSA-9003-1", "newpkg", today, [{"introduced": "0"}], "CRITICAL")]:
            with open(os.path.join(osv_dir, rec["id"] + ".json"), "w") as f:
                json.dump(rec, f)
        # configured in agent.yaml (the agent hands it to the plugin), not filled yet
        start(c, reg, ["--config", write(c, "agent.yaml", "container_scan_feed_dir: %s\n" % feed)])
        c.cli_at(c.addr, "policy", "set", write(c, "sev.yaml", "max_severity: HIGH\n"))
        pushed = os.path.join(c.workdir, "spool-a1", "cluster-image-policy.json")
        wait_until("the policy on the agent", lambda: os.path.exists(pushed))

        # a feed directory without a feed: refused naming the key (fail closed)
        rc, runs, err = submit(c, task("nofeed", "%s/t/vuln:1" % r))
        msg = runs["nofeed"]["message"] + runs["nofeed"].get("output", "")
        assert runs["nofeed"]["state"] == "FAILED" and "container_scan_feed_dir" in msg, runs["nofeed"]
        assert "max_severity: the image could not be scanned (feed %s" % feed in msg, msg

        env = dict(os.environ, HOME=c.workdir, XDG_CACHE_HOME="", XDG_DATA_HOME="")
        subprocess.run([c.cli_bin, "image", "feed", "update", osv_dir, "--feed-dir", feed], check=True, env=env,
                       capture_output=True, timeout=60)

        rc, runs, err = submit(c, task("vuln", "%s/t/vuln:1" % r) + task("fixed", "%s/t/fixed:1" % r) +
                               task("fresh", "%s/t/fresh:1" % r))
        vuln = runs["vuln"]
        assert vuln["state"] == "FAILED", vuln
        want = "refused by the admission policy: cluster policy: max_severity: 1 unfixed CRITICAL finding " \
               "(the policy allows up to HIGH)"
        assert want in vuln["message"], vuln
        assert "ran t/vuln" not in vuln.get("outputTail", ""), vuln  # refused before the start
        # the layers were fetched (the scan read them), the container never started
        assert runs["fixed"]["state"] == "SUCCEEDED" and runs["fixed"]["outputTail"] == "ran t/fixed\n", runs["fixed"]
        assert runs["fresh"]["state"] == "FAILED" and "1 unfixed CRITICAL finding" in runs["fresh"]["message"], runs
        agent_log = c.agents["a1"].text()
        assert "audit: action=image.refused image=%s/t/vuln:1" % r in agent_log, agent_log[-2000:]
        cache = os.path.join(c.store, "scan-cache")
        cached = sorted(os.listdir(cache))
        assert len(cached) == 3, cached

        # the warm start: the cached scan, no rescan (the cache files are not rewritten)
        mtimes = {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in cached}
        rc, runs, err = submit(c, task("vuln2", "%s/t/vuln:1" % r) + task("fixed2", "%s/t/fixed:1" % r))
        assert runs["vuln2"]["state"] == "FAILED" and want in runs["vuln2"]["message"], runs["vuln2"]
        assert runs["fixed2"]["state"] == "SUCCEEDED", runs["fixed2"]
        assert {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in sorted(os.listdir(cache))} == mtimes

        # a grace period: the finding published today is let through, the 2024 one is not
        c.cli_at(c.addr, "policy", "set", write(c, "grace.yaml", "max_severity: HIGH\nseverity_grace_days: 30\n"))
        wait_until("the grace policy on the agent", lambda: "\"severity_grace_days\":30" in open(pushed).read())
        rc, runs, err = submit(c, task("fresh2", "%s/t/fresh:1" % r) + task("vuln3", "%s/t/vuln:1" % r))
        assert runs["fresh2"]["state"] == "SUCCEEDED", runs["fresh2"]
        assert runs["vuln3"]["state"] == "FAILED" and "1 unfixed CRITICAL finding, the oldest published" in \
            runs["vuln3"]["message"] and "or newer than 30 days" in runs["vuln3"]["message"], runs["vuln3"]

        # muster policy test --feed: the same facts, from a local scan (its store and cache here)
        os.environ["XDG_CACHE_HOME"] = os.path.join(c.workdir, "cli-cache")
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/vuln:1" % r, "--insecure", "--feed", feed,
                                check=False, timeout=120)
        assert rc == 1, (rc, out, err)
        assert "scan 1 finding; unfixed: CRITICAL 1, HIGH 0" in out, out
        assert "max_severity: 1 unfixed CRITICAL finding, the oldest published" in out, out
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/fixed:1" % r, "--insecure", "--feed", feed,
                                check=False, timeout=120)
        assert rc == 0 and "scan 1 finding; unfixed: CRITICAL 0" in out and "ALLOWED by the cluster policy" in out, \
            (out, err)
        rc, out, err = c.cli_at(c.addr, "policy", "test", "%s/t/vuln:1" % r, "--insecure", check=False)
        assert rc == 1 and "max_severity: no scan available" in out, out
        assert os.path.isdir(os.path.join(c.workdir, "cli-cache", "muster", "scan")), "the CLI's scan cache"
    finally:
        os.environ.pop("XDG_CACHE_HOME", None)
        reg.close()


def test_policy_across_leader_failover(c):
    """kill -9 of the leader: the follower leads with the policy it read from etcd, the agent
    follows it, is sent the policy again, and a refused image is still refused; the follower
    also answered show and test before it led."""
    if not can_run("test_policy_across_leader_failover"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        r = reg.host
        container_plugin(c)
        os.environ.update(MUSTER_CONTAINER_STORE=os.path.join(c.workdir, "images"),
                          MUSTER_CONTAINER_INSECURE_REGISTRIES=r, MUSTER_CONTAINER_ALLOW_HOST_NETWORK="1")
        os.environ.pop("MUSTER_CONTAINER_POLICY", None)
        c.start_etcd()
        a = c.start_member("cp-a")
        wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
        b = c.start_member("cp-b")
        c.start_ha_agent("a1", a + "," + b)
        wait_until("a1 on the leader", lambda: "a1" in c.connected_at(a))
        rc, out, err = c.cli_at(a, "policy", "set", write(c, "p.yaml", "allow_host_network: false\n"))
        sha = out.split("(")[1].split(")")[0]
        wait_until("the follower to read it", lambda: json.loads(c.cli_at(b, "-o", "json", "policy", "show")[1])
                   .get("sha256") == sha)
        rc, out, err = c.cli_at(b, "policy", "test", "%s/t/run:1" % r, "--offline", "--network", "host",
                                check=False)
        assert rc == 1 and "allow_host_network: the task asks for network host" in out, (out, err)
        pushed = os.path.join(c.workdir, "spool-a1", "cluster-image-policy.json")
        wait_until("the agent to keep it", lambda: os.path.exists(pushed))
        os.unlink(pushed)  # so that the new leader's push is seen
        p, _ = c.members.pop("cp-a")
        p.kill()
        wait_until("cp-b to lead", lambda: (c.cluster_at(b) or {}).get("leader"), timeout=10, step=0.1)
        wait_until("a1 on the new leader", lambda: "a1" in c.connected_at(b), timeout=15)
        wait_until("the new leader to push the policy", lambda: os.path.exists(pushed), timeout=10)
        c.addr = b
        rc, runs, err = submit(c, task("net", "%s/t/run:1" % r, ", network: host") + task("ok", "%s/t/run:1" % r))
        assert runs["net"]["state"] == "FAILED" and "allow_host_network" in runs["net"]["message"], runs["net"]
        assert runs["ok"]["state"] == "SUCCEEDED", runs["ok"]
    finally:
        reg.close()


def test_bad_agent_policy_stops_the_agent(c):
    """A bad container_policy file stops the agent at start, naming the file, line and key."""
    bad = write(c, "bad-agent-policy.yaml", "registries: [a/b]\nallow_everything: true\n")
    r = subprocess.run([c.agent_bin, "--control", "127.0.0.1:1", "--id", "a2", "--insecure", "--container-policy", bad],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "bad-agent-policy.yaml:2: field 'allow_everything': unknown key" in r.stderr, r.stderr


if __name__ == "__main__":
    main([test_policy_end_to_end, test_agent_policy_and_cluster_policy, test_max_severity_scans_on_the_agent,
          test_policy_across_leader_failover, test_bad_agent_policy_stops_the_agent])
