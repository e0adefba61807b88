"""The container helper (muster-container) against a real loopback docker-registry: pulls of
OCI and Docker manifests, gzip/zstd/plain layers, an amd64+arm64 index, token and Basic auth,
bad input, the store (warm start, shared layers once), hostile layers, and the launcher's
isolation checked from inside the container (escapes refused), plus runc as a reference.
Needs root (namespaces, mounts), docker-registry and busybox-static (scripts/setup)."""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import unittest
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regfixture as rf  # noqa: E402

HELPER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
del sys.argv[1:]


view = rf.image_view
unmount_views = rf.unmount_views


def need_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (namespaces, mounts, chroot)")
    for tool in ("docker-registry", rf.BUSYBOX):
        if shutil.which(tool) is None and not os.path.exists(tool):
            raise unittest.SkipTest("%s missing: run scripts/setup" % tool)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_root()
        cls.reg = rf.Registry()
        cls.tmp = tempfile.mkdtemp(prefix="ctr-test.")
        cls.store = os.path.join(cls.tmp, "store")

    @classmethod
    def tearDownClass(cls):
        unmount_views()
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pull(self, image, *opts, store=None, env=None, ok=True):
        argv = [HELPER, "pull", "--store", store or self.store, "--insecure"] + list(opts) + [image]
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if ok and p.returncode != 0:
            self.fail("pull %s: rc %d: %s" % (image, p.returncode, p.stderr))
        if not ok:
            self.assertNotEqual(p.returncode, 0, p.stdout)
            return p.stderr
        digest, rootfs, layers, nbytes = p.stdout.split()
        return digest, rootfs, int(layers), int(nbytes)

    def run_ctr(self, image, timeout=60, **cfg):
        state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
        conf = dict({"store": self.store, "image": image, "insecure": True, "state_dir": state}, **cfg)
        path = os.path.join(state, "container.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        p = subprocess.run([HELPER, "run", path], capture_output=True, text=True, timeout=timeout)
        self.assertFalse(os.path.exists(path), "the config (credentials) must be deleted")
        return p


class PullTest(Base):
    def test_oci_gzip_and_warm_start(self):
        self.reg.push_image("t/oci", "v1", [rf.busybox_layer()], {"Cmd": ["/bin/echo", "hi"]})
        d, rootfs, layers, nbytes = self.pull(self.host("t/oci:v1"))
        self.assertEqual(layers, 1)
        self.assertGreater(nbytes, 100000)
        self.assertTrue(os.path.isfile(os.path.join(view(rootfs), "bin/busybox")))
        d2, _, layers2, nbytes2 = self.pull(self.host("t/oci:v1"))
        self.assertEqual((d2, layers2, nbytes2), (d, 0, 0), "a warm start downloads nothing")
        d3, _, layers3, _ = self.pull(self.host("t/oci@" + d))
        self.assertEqual((d3, layers3), (d, 0))

    def host(self, name):
        return "%s/%s" % (self.reg.host, name)

    def test_zstd_plain_docker(self):
        base = rf.busybox_layer()
        top = rf.Layer().file("etc/motd", "zstd layer\n").raw()
        self.reg.push_image("t/zstd", "1", [base, top], compression="zstd")
        _, rootfs, _, _ = self.pull(self.host("t/zstd:1"))
        self.assertEqual(open(os.path.join(view(rootfs), "etc/motd")).read(), "zstd layer\n")
        self.reg.push_image("t/plain", "1", [base, rf.Layer().file("etc/motd", "plain\n").raw()], compression="none")
        _, rootfs, _, _ = self.pull(self.host("t/plain:1"))
        self.assertEqual(open(os.path.join(view(rootfs), "etc/motd")).read(), "plain\n")
        self.reg.push_image("t/docker", "1", [base], docker=True)
        _, rootfs, layers, _ = self.pull(self.host("t/docker:1"))
        self.assertTrue(os.path.isfile(os.path.join(view(rootfs), "bin/busybox")))

    def test_shared_layers_stored_once(self):
        store = os.path.join(self.tmp, "dedup")
        base = rf.busybox_layer()
        self.reg.push_image("t/a", "1", [base, rf.Layer().file("a", "a").raw()])
        self.reg.push_image("t/b", "1", [base, rf.Layer().file("b", "b").raw()])
        _, _, la, _ = self.pull(self.host("t/a:1"), store=store)
        _, _, lb, nb = self.pull(self.host("t/b:1"), store=store)
        self.assertEqual((la, lb), (2, 1), "the shared base layer is downloaded once")
        self.assertLess(nb, 10000)

    def test_concurrent_pulls_of_one_image(self):
        store = os.path.join(self.tmp, "concurrent")
        layers = [rf.busybox_layer()] + [rf.Layer().file("f%d" % i, os.urandom(200000)).raw() for i in range(5)]
        self.reg.push_image("t/conc", "1", layers)
        procs = [subprocess.Popen([HELPER, "pull", "--store", store, "--insecure", self.host("t/conc:1")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(len({o.split()[0] for o, _ in outs}), 1)
        blobs = os.listdir(os.path.join(store, "blobs/sha256"))
        self.assertEqual(len([b for b in blobs if not b.endswith(".partial")]), 1 + 1 + 6, blobs)  # manifest, config, layers

    def test_oci_layout(self):
        if shutil.which("skopeo") is None:
            self.skipTest("skopeo missing: run scripts/setup")
        self.reg.push_image("t/layout", "1", [rf.busybox_layer(lambda l: l.file("hello.txt", "from a layout\n"))],
                            {"Entrypoint": ["/bin/cat"], "Cmd": ["/hello.txt"]})
        layout = os.path.join(self.tmp, "layout")
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + self.host("t/layout:1"),
                        "oci:%s:v1" % layout], check=True)
        store = os.path.join(self.tmp, "layout-store")
        d, rootfs, _, _ = self.pull("v1", "--layout", layout, store=store)
        self.assertEqual(open(os.path.join(view(rootfs), "hello.txt")).read(), "from a layout\n")
        err = self.pull("v2", "--layout", layout, store=store, ok=False)
        self.assertIn('no image named "v2" (it has: v1)', err)
        # a tampered blob is refused
        store2 = os.path.join(self.tmp, "layout-store2")
        man = json.load(open(os.path.join(layout, "blobs/sha256", d[7:])))
        layer = os.path.join(layout, "blobs/sha256", man["layers"][0]["digest"][7:])
        data = bytearray(open(layer, "rb").read())
        data[100] ^= 1
        with open(layer, "wb") as f:
            f.write(data)
        err = self.pull("v1", "--layout", layout, store=store2, ok=False)
        self.assertIn("refused", err)

    def test_diff_ids_checked(self):
        layer = rf.busybox_layer()
        self.reg.push_image("t/diffid", "1", [layer], diff_ids=[rf.sha(b"not the layer")])
        err = self.pull(self.host("t/diffid:1"), store=os.path.join(self.tmp, "diffid-store"), ok=False)
        self.assertIn("is not the config's diff_id", err)
        self.assertFalse(os.listdir(os.path.join(self.tmp, "diffid-store", "rootfs")), "nothing unpacked")

    def docker_archive(self, name, entries, symlinks=()):
        """A `docker save`-style tar: entries {name: bytes}, symlinks [(name, target)]."""
        path = os.path.join(self.tmp, name)
        with tarfile.open(path, "w") as t:
            for n, data in entries.items():
                ti = tarfile.TarInfo(n)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            for n, target in symlinks:
                ti = tarfile.TarInfo(n)
                ti.type = tarfile.SYMTYPE
                ti.linkname = target
                t.addfile(ti)
        return path

    def archive_image(self, text, diff_id=None):
        layer = rf.busybox_layer(lambda l: l.file("hello.txt", text))
        cfg = json.dumps({"architecture": "amd64", "os": "linux",
                          "config": {"Entrypoint": ["/bin/cat"], "Cmd": ["/hello.txt"]},
                          "rootfs": {"type": "layers", "diff_ids": [diff_id or rf.sha(layer)]}}).encode()
        return layer, cfg

    def test_docker_archive(self):
        layer, cfg = self.archive_image("from a docker archive\n")
        lid, cid = rf.sha(layer)[7:], rf.sha(cfg)[7:]
        # the legacy layout: <id>/layer.tar, <config>.json, manifest.json
        tar = self.docker_archive("legacy.tar", {
            "%s/VERSION" % lid: b"1.0", "%s/layer.tar" % lid: layer, "%s.json" % cid: cfg, "repositories": b"{}",
            "manifest.json": json.dumps([{"Config": "%s.json" % cid, "RepoTags": ["t/arch:1"],
                                          "Layers": ["%s/layer.tar" % lid]}]).encode()})
        store = os.path.join(self.tmp, "archive-store")
        d, rootfs, _, _ = self.pull("t/arch:1", "--docker-archive", tar, store=store)
        self.assertEqual(open(os.path.join(view(rootfs), "hello.txt")).read(), "from a docker archive\n")
        blobs = sorted(os.listdir(os.path.join(store, "blobs/sha256")))
        man = json.load(open(os.path.join(store, "blobs/sha256", d[7:])))
        self.assertEqual(blobs, sorted([d[7:], lid, cid]), "only the image's blobs are kept")
        self.assertEqual(man["layers"][0]["digest"], "sha256:" + lid)
        d2, rootfs2, _, _ = self.pull("", "--docker-archive", tar, store=store)  # the only image
        self.assertEqual((d2, rootfs2), (d, rootfs), "the same archive is the same image")
        err = self.pull("t/other:2", "--docker-archive", tar, store=store, ok=False)
        self.assertIn('no image tagged "t/other:2" (it has: t/arch:1)', err)
        # the newer layout: blobs/sha256/<hex>, reached through the archive's own symlinks
        tar2 = self.docker_archive("oci-style.tar", {
            "blobs/sha256/" + lid: layer, "blobs/sha256/" + cid: cfg,
            "manifest.json": json.dumps([{"Config": "blobs/sha256/" + cid, "RepoTags": ["t/arch:1"],
                                          "Layers": ["%s/layer.tar" % lid]}]).encode()},
            symlinks=[("%s/layer.tar" % lid, "../blobs/sha256/" + lid)])
        d3, _, _, _ = self.pull("t/arch:1", "--docker-archive", tar2, store=os.path.join(self.tmp, "archive-store2"))
        self.assertEqual(d3, d)
        # it runs
        p = self.run_ctr("docker-archive", docker_archive=tar, layout_tag="t/arch:1")
        self.assertEqual((p.returncode, p.stdout), (0, "from a docker archive\n"), p.stderr)

    def test_docker_archive_refused(self):
        layer, cfg = self.archive_image("x\n", diff_id=rf.sha(b"another layer"))
        man = json.dumps([{"Config": "c.json", "RepoTags": ["t/a:1"], "Layers": ["l/layer.tar"]}]).encode()
        store = os.path.join(self.tmp, "archive-bad")
        tar = self.docker_archive("baddiff.tar", {"l/layer.tar": layer, "c.json": cfg, "manifest.json": man})
        self.assertIn("is not the config's diff_id", self.pull("", "--docker-archive", tar, store=store, ok=False))
        tar = self.docker_archive("dotdot.tar", {"../evil": b"x", "manifest.json": man})
        self.assertIn('entry "../evil": absolute or with ".." (refused)',
                      self.pull("", "--docker-archive", tar, store=store, ok=False))
        tar = self.docker_archive("linkout.tar", {"c.json": cfg, "manifest.json": man},
                                  symlinks=[("l/layer.tar", "../../etc/passwd")])
        self.assertIn("symlink l/layer.tar points out of the archive",
                      self.pull("", "--docker-archive", tar, store=store, ok=False))
        tar = self.docker_archive("nomanifest.tar", {"c.json": cfg})
        self.assertIn("no manifest.json", self.pull("", "--docker-archive", tar, store=store, ok=False))

    def test_index_platforms(self):
        amd = self.reg.push_image("t/multi", "amd64", [rf.Layer().file("arch", "amd64\n").raw()], arch="amd64")
        arm = self.reg.push_image("t/multi", "arm64", [rf.Layer().file("arch", "arm64\n").raw()], arch="arm64")
        self.reg.push_index("t/multi", "1", [(arm[0], arm[1], "arm64", "v8"), (amd[0], amd[1], "amd64", None)])
        d, rootfs, _, _ = self.pull(self.host("t/multi:1"), "--platform", "linux/amd64")
        self.assertEqual(d, amd[0])
        self.assertEqual(open(os.path.join(view(rootfs), "arch")).read(), "amd64\n")
        d, rootfs, _, _ = self.pull(self.host("t/multi:1"), "--platform", "linux/arm64/v8", "--policy", "always")
        self.assertEqual(d, arm[0])
        err = self.pull(self.host("t/multi:1"), "--platform", "linux/s390x", "--policy", "always", ok=False)
        self.assertIn("no image for platform linux/s390x", err)
        self.assertIn("linux/arm64/v8", err)

    def test_bad_references_and_policies(self):
        self.assertIn("short names are refused", self.pull("busybox", ok=False))
        self.assertIn("digest", self.pull(self.host("t/x@sha256:abc"), ok=False))
        self.assertIn("HTTP 404", self.pull(self.host("t/missing:1"), "--policy", "always", ok=False))
        self.assertIn("pull_policy is never", self.pull(self.host("t/never:1"), "--policy", "never", ok=False))
        p = subprocess.run([HELPER, "pull", "--store", self.store, "--insecure", "10.1.2.3:5000/a:1"],
                           capture_output=True, text=True)
        self.assertIn("loopback registries only", p.stderr)
        p = subprocess.run([HELPER, "pull", "--store", self.store, self.host("t/oci:v1")], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0, "https is the default: a plain-http registry fails")


class RunTest(Base):
    """The launcher, checked from inside the container."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        def extra(l):
            l.dir("sbin").file("sbin/id", open(rf.BUSYBOX, "rb").read(), 0o4755)
            l.symlink("dev", "/tmp/hostdev")  # an image's /dev symlink is ignored
            l.file("hello.txt", "hello from the image\n")
        cls.reg.push_image("t/run", "1", [rf.busybox_layer(extra)],
                           {"Entrypoint": ["/bin/cat"], "Cmd": ["/hello.txt"], "Env": ["A=1", "PATH=/bin"],
                            "WorkingDir": "/w", "User": "app"})
        cls.image = "%s/t/run:1" % cls.reg.host
        cls.agent_file = os.path.join(cls.tmp, "agent-binary")
        with open(cls.agent_file, "w") as f:
            f.write("agent\n")
        os.chmod(cls.agent_file, 0o755)

    def sh(self, script, **cfg):
        return self.run_ctr(self.image, command=["/bin/sh", "-c", script], **cfg)

    def test_lite_launcher(self):
        """muster-container loads neither libcurl nor libarchive; it runs a stored image itself
        (strace: no execve of muster-container-full) and hands a missing one to the full
        helper, which pulls it and deletes the config all the same."""
        libs = subprocess.run(["ldd", HELPER], capture_output=True, text=True).stdout
        self.assertNotIn("libcurl", libs)
        self.assertNotIn("libarchive", libs)
        self.pull(self.image)
        if shutil.which("strace"):
            trace = os.path.join(self.tmp, "lite.trace")
            state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
            path = os.path.join(state, "container.json")
            with open(path, "w") as f:
                json.dump({"store": self.store, "image": self.image, "insecure": True, "state_dir": state}, f)
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")  # LeakSanitizer cannot run under ptrace
            p = subprocess.run(["strace", "-f", "-e", "trace=execve", "-o", trace, HELPER, "run", path],
                               capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual((p.returncode, p.stdout), (0, "hello from the image\n"), p.stderr)
            self.assertNotIn("muster-container-full", open(trace).read())
            self.assertFalse(os.path.exists(path))
        self.reg.push_image("t/lite", "1", [rf.busybox_layer(lambda l: l.file("hello.txt", "pulled by full\n"))],
                            {"Cmd": ["/bin/cat", "/hello.txt"]})
        p = self.run_ctr("%s/t/lite:1" % self.reg.host)
        self.assertEqual((p.returncode, p.stdout), (0, "pulled by full\n"), p.stderr)

    def test_entrypoint_cmd_env_user(self):
        p = self.run_ctr(self.image)
        self.assertEqual((p.returncode, p.stdout), (0, "hello from the image\n"), p.stderr)
        p = self.run_ctr(self.image, args=["/etc/group"])
        self.assertIn("nogroup", p.stdout)
        p = self.sh('echo "$A $B $(id -u):$(id -g) $(pwd) $(hostname) $$"', env=["B=2"], hostname="c1")
        self.assertEqual(p.stdout, "1 2 1000:1000 /w c1 1\n", p.stderr)
        p = self.sh("id -u", user="65534")
        self.assertEqual(p.stdout, "65534\n")
        p = self.sh("exit 7")
        self.assertEqual(p.returncode, 7)

    def test_root_needs_policy(self):
        p = self.sh("id -u", user="root")
        self.assertEqual(p.returncode, 126)
        self.assertIn("does not allow", p.stderr)
        p = self.sh("id -u", user="root", allow_root=True)
        self.assertEqual(p.stdout, "0\n", p.stderr)

    def test_isolation_status(self):
        p = self.sh("grep -E '^(CapEff|CapBnd|CapPrm|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; ls /sys/class/net 2>/dev/null; "
                    "cat /proc/net/dev | wc -l", user="root", allow_root=True)
        out = p.stdout
        for line in ("CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "CapPrm:\t0000000000000000",
                     "NoNewPrivs:\t1", "Seccomp:\t2"):
            self.assertIn(line, out, p.stderr)
        self.assertTrue(out.strip().endswith("3"), "only lo in the net namespace: " + out)

    def test_cap_add(self):
        p = self.sh("grep CapEff /proc/self/status", cap_add=["NET_BIND_SERVICE"])
        self.assertIn("CapEff:\t0000000000000400", p.stdout, p.stderr)

    def test_read_only_root_and_tmp(self):
        p = self.sh("touch /x 2>&1; echo rc=$?; touch /tmp/x && echo tmp-ok; ls -ld /dev/null /dev; ls /dev")
        self.assertIn("Read-only file system", p.stdout)
        self.assertIn("tmp-ok", p.stdout)
        self.assertIn("crw-rw-rw-", p.stdout)
        self.assertNotIn("hostdev", p.stdout)
        p = self.sh("touch /x && echo ok", writable_rootfs=True, user="root", allow_root=True)
        self.assertEqual(p.stdout, "ok\n", p.stderr)

    def test_escapes_refused(self):
        checks = {
            "mount": "mount -t tmpfs none /tmp 2>&1 || echo REFUSED",
            "proc-sys": "echo 1 > /proc/sys/kernel/sysrq 2>&1 || echo REFUSED",
            "sysrq": "echo b > /proc/sysrq-trigger 2>&1; cat /proc/sysrq-trigger | wc -c; echo REFUSED",
            "kcore": "[ ! -e /proc/kcore ] || [ $(wc -c < /proc/kcore) = 0 ] && echo REFUSED",
            "chroot": "chroot / /bin/true 2>&1 || echo REFUSED",
            "ptrace": "cat /proc/1/environ >/dev/null 2>&1; busybox nsenter -t 1 -m true 2>&1 || echo REFUSED",
            "mknod": "busybox mknod /tmp/sda b 8 0 2>&1 || echo REFUSED",
            "host-procs": "[ ! -d /proc/%d ] && [ ! -d /proc/%d ] && echo REFUSED" % (os.getpid(), os.getppid()),
            "raw-socket": "busybox ping -c1 127.0.0.1 2>&1 | grep -qi 'permission\\|not permitted\\|socket' && echo REFUSED",
            "suid": "ls -l /sbin/id; test $(/sbin/id -u) = 1000 && echo REFUSED",
            "unshare": "busybox unshare -m true 2>&1 || echo REFUSED",
        }
        for name, script in checks.items():
            p = self.sh(script)
            self.assertIn("REFUSED", p.stdout, "%s: %s %s" % (name, p.stdout, p.stderr))

    def test_host_loopback_unreachable(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                c.sendall(b"hello\n")
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        try:
            p = self.sh("nc 127.0.0.1 %d </dev/null 2>&1; echo rc=$?" % port)
            self.assertNotIn("hello", p.stdout)
            self.assertNotIn("rc=0", p.stdout, p.stdout)
            p = self.sh("nc 127.0.0.1 %d </dev/null" % port, network="host")
            self.assertIn("hello", p.stdout, p.stderr)
        finally:
            srv.close()

    def test_volumes(self):
        vol = tempfile.mkdtemp(prefix="vol.", dir=self.tmp)
        with open(os.path.join(vol, "in"), "w") as f:
            f.write("from host\n")
        os.chmod(vol, 0o777)
        p = self.sh("cat /data/in; touch /data/out && echo wrote", volumes=[{"source": vol, "target": "/data"}])
        self.assertEqual(p.stdout, "from host\nwrote\n", p.stderr)
        p = self.sh("touch /data/out2 2>&1 || echo REFUSED", volumes=[{"source": vol, "target": "/data", "read_only": True}])
        self.assertIn("REFUSED", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(vol, "out2")))

    def test_agent_binary_not_writable(self):
        # CVE-2019-5736 shape: /proc/self/exe is the container's program, and the host's files
        # are not in the mount namespace at all.
        p = self.sh("echo x > /proc/self/exe 2>&1; readlink /proc/self/exe; ls %s 2>&1 || echo NOT-VISIBLE" % self.agent_file,
                    user="root", allow_root=True)
        self.assertIn("NOT-VISIBLE", p.stdout)
        with open(self.agent_file) as f:
            self.assertEqual(f.read(), "agent\n")

    def test_health_check(self):
        # runs inside: same mounts (/tmp), user and hostname as the container
        p = self.sh("sleep 1.5; cat /tmp/hc", hostname="hc1",
                    health_check={"command": ["/bin/sh", "-c", "id -u > /tmp/hc; hostname >> /tmp/hc"],
                                  "interval_ms": 200, "retries": 2})
        self.assertEqual((p.returncode, p.stdout), (0, "1000\nhc1\n"), p.stderr)
        # failing: the container is ended, with the check's output
        state_dir = None
        p = self.sh("sleep 30", health_check={"command": ["/bin/sh", "-c", "echo not ready; exit 1"], "interval_ms": 200,
                                             "retries": 2})
        self.assertEqual(p.returncode, -9)
        self.assertIn("unhealthy: the health check failed 2 times in a row (last: exit 1: not ready)", p.stderr)
        # a check past its timeout counts as a failure
        p = self.sh("sleep 30", health_check={"command": ["/bin/sleep", "10"], "interval_ms": 100, "timeout_ms": 200,
                                             "retries": 1})
        self.assertIn("timed out after 200 ms", p.stderr)

    def test_workdir_proc_fd_refused(self):
        # CVE-2024-21626 shape
        p = self.sh("pwd", working_dir="/proc/self/fd/7")
        self.assertEqual(p.returncode, 126)
        self.assertIn("refused", p.stderr)

    def test_missing_program(self):
        p = self.run_ctr(self.image, command=["/no/such"])
        self.assertEqual(p.returncode, 127)
        self.assertIn("cannot run", p.stderr)


class RuncComparisonTest(Base):
    """The same image and commands under runc (test-only reference): same exit codes and output."""

    def test_same_as_runc(self):
        if shutil.which("runc") is None:
            self.skipTest("runc missing: run scripts/setup")
        self.reg.push_image("t/cmp", "1", [rf.busybox_layer(lambda l: l.file("hello.txt", "hello\n"))],
                            {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "X=1"], "WorkingDir": "/w"})
        image = "%s/t/cmp:1" % self.reg.host
        _, rootfs, _, _ = self.pull(image)
        scripts = ["cat /hello.txt", "id -u; id -g", "exit 5", "echo $X; pwd", "touch /x 2>/dev/null; echo $?",
                   "ls /proc/self/fd | wc -l", "grep -c . /proc/net/dev", "cat /proc/self/status | grep NoNewPrivs"]
        bundle = tempfile.mkdtemp(prefix="runc.", dir=self.tmp)
        subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["root"] = {"path": view(rootfs), "readonly": True}
        spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
        spec["process"].update({"terminal": False, "user": {"uid": 65534, "gid": 65534}, "cwd": "/w",
                                "env": ["PATH=/bin", "X=1", "HOME=/"], "noNewPrivileges": True})
        for caps in spec["process"]["capabilities"].values():
            caps.clear()
        for script in scripts:
            spec["process"]["args"] = ["/bin/sh", "-c", script]
            with open(os.path.join(bundle, "config.json"), "w") as f:
                json.dump(spec, f)
            ref = subprocess.run(["runc", "--root", os.path.join(self.tmp, "runc-state"), "run", "--bundle", bundle,
                                  "cmp%d" % os.getpid()], capture_output=True, text=True, timeout=60)
            ours = self.run_ctr(image, command=["/bin/sh", "-c", script])
            self.assertEqual((ours.returncode, ours.stdout), (ref.returncode, ref.stdout),
                             "%r: runc %r / ours %r %r" % (script, ref.stdout, ours.stdout, ours.stderr))


class StopSignalTest(Base):
    def test_stop_signal_from_image(self):
        import signal
        import time
        self.reg.push_image("t/stop", "1", [rf.busybox_layer()],
                            {"Entrypoint": ["/bin/sh", "-c", "trap 'echo got INT; exit 3' INT; trap 'echo got TERM; exit 4' TERM; "
                                            "echo ready; while :; do sleep 0.1; done"], "StopSignal": "SIGINT"})
        state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
        path = os.path.join(state, "c.json")
        with open(path, "w") as f:
            json.dump({"store": self.store, "image": "%s/t/stop:1" % self.reg.host, "insecure": True, "state_dir": state}, f)
        p = subprocess.Popen([HELPER, "run", path], stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        self.assertEqual((p.returncode, out), (3, "got INT\n"), "TERM became the image's StopSignal")


class GcTest(Base):
    def test_list_and_gc(self):
        import time
        store = os.path.join(self.tmp, "gc")
        base = rf.busybox_layer()
        self.reg.push_image("gc/a", "1", [base, rf.Layer().file("a", "a" * 5000).raw()])
        self.reg.push_image("gc/b", "1", [base, rf.Layer().file("b", "b").raw()], {"Cmd": ["/bin/sleep", "3"]})
        self.reg.push_image("gc/c", "1", [rf.Layer().file("c", "c").raw()])
        digests = {}
        for i, name in enumerate(("a", "b", "c")):
            d, rootfs, _, _ = self.pull("%s/gc/%s:1" % (self.reg.host, name), store=store)
            digests[name] = d
            os.utime(rootfs, (1000 + i, 1000 + i))  # a is the least recently used
        out = subprocess.run([HELPER, "images", "--store", store], capture_output=True, text=True, check=True).stdout
        self.assertEqual(len(out.splitlines()), 3, out)
        self.assertIn("%s/gc/a:1" % self.reg.host, out)
        # b runs (holds its image) while GC wants the store at 1 byte
        state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
        cfg = os.path.join(state, "c.json")
        with open(cfg, "w") as f:
            json.dump({"store": store, "image": "%s/gc/b:1" % self.reg.host, "insecure": True, "state_dir": state}, f)
        running = subprocess.Popen([HELPER, "run", cfg])
        time.sleep(1)
        out = subprocess.run([HELPER, "gc", "--store", store, "--max-bytes", "1"], capture_output=True, text=True,
                             check=True).stdout
        self.assertTrue(out.startswith("removed 2 kept 0 in-use 1"), out)
        blobs = set(os.listdir(os.path.join(store, "blobs/sha256")))
        self.assertIn(rf.sha(gzip_of(base))[7:], blobs, "the shared base layer stays: b still names it")
        self.assertNotIn(digests["a"][7:], blobs)
        self.assertFalse(os.path.exists(os.path.join(store, "rootfs", digests["c"][7:])))
        self.assertEqual(running.wait(timeout=30), 0)
        out = subprocess.run([HELPER, "gc", "--store", store, "--max-bytes", "1"], capture_output=True, text=True,
                             check=True).stdout
        self.assertTrue(out.startswith("removed 1 kept 0 in-use 0"), out)
        self.assertEqual(os.listdir(os.path.join(store, "blobs/sha256")), [])
        self.assertEqual(os.listdir(os.path.join(store, "refs")), [])


def gzip_of(raw):
    return rf.compress(raw, "gzip")[0]


class FakeRegistry(http.server.BaseHTTPRequestHandler):
    """Serves what a test puts in `routes` (path -> (status, headers, body)); "stall" hangs."""
    routes = {}
    ranges = []
    seen = []

    def do_GET(self):
        FakeRegistry.seen.append((self.headers.get("Host"), self.path.split("?")[0], self.headers.get("Authorization")))
        r = self.routes.get(self.path.split("?")[0])
        if r is None:
            self.send_response(404)
            self.end_headers()
            return
        status, headers, body = r
        if headers.get("X-Need-Basic") and self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="fake"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in headers.items() if k != "X-Need-Basic"}
        if isinstance(body, tuple):  # ("drop", data): the first GET breaks half-way, then Range works
            data = body[1]
            rng = self.headers.get("Range")
            FakeRegistry.ranges.append(rng)
            if rng is None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])
            return
        if body == b"stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            threading.Event().wait(30)
            return
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class BadRegistryTest(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
        cls.srv.daemon_threads = True
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()
        cls.fake = "127.0.0.1:%d" % cls.srv.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        super().tearDownClass()

    def serve_image(self, name, layer, layer_digest=None, layer_size=None, manifest_digest_header=None, media=None):
        cfg = json.dumps({"os": "linux", "architecture": "amd64", "config": {}}).encode()
        man = json.dumps({"schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": rf.sha(cfg), "size": len(cfg)},
                          "layers": [{"mediaType": media or "application/vnd.oci.image.layer.v1.tar",
                                      "digest": layer_digest or rf.sha(layer), "size": layer_size or len(layer)}]}).encode()
        h = {"Content-Type": rf.OCI_MANIFEST}
        if manifest_digest_header:
            h["Docker-Content-Digest"] = manifest_digest_header
        FakeRegistry.routes["/v2/%s/manifests/1" % name] = (200, h, man)
        FakeRegistry.routes["/v2/%s/blobs/%s" % (name, rf.sha(cfg))] = (200, {}, cfg)
        FakeRegistry.routes["/v2/%s/blobs/%s" % (name, layer_digest or rf.sha(layer))] = (200, {}, layer)
        return "%s/%s:1" % (self.fake, name)

    def test_wrong_blob_digest(self):
        layer = rf.Layer().file("a", "a").raw()
        img = self.serve_image("bad/digest", layer, layer_digest=rf.sha(b"something else"))
        self.assertIn("refused", self.pull(img, ok=False))

    def test_blob_longer_than_descriptor(self):
        layer = rf.Layer().file("a", "a").raw()
        img = self.serve_image("bad/size", layer, layer_size=100)
        self.assertIn("more bytes than the descriptor", self.pull(img, ok=False))

    def test_manifest_digest_header_mismatch(self):
        layer = rf.Layer().file("a", "a").raw()
        img = self.serve_image("bad/header", layer, manifest_digest_header=rf.sha(b"other"))
        self.assertIn("Docker-Content-Digest", self.pull(img, ok=False))

    def test_unknown_layer_type(self):
        layer = rf.Layer().file("a", "a").raw()
        img = self.serve_image("bad/type", layer, media="application/vnd.example.layer.v1.tar+lz4")
        self.assertIn("unsupported media type", self.pull(img, ok=False))

    def test_manifest_too_big(self):
        FakeRegistry.routes["/v2/bad/big/manifests/1"] = (200, {"Content-Type": rf.OCI_MANIFEST}, b" " * (5 << 20))
        self.assertIn("bound", self.pull(self.fake + "/bad/big:1", ok=False))

    def test_resume_after_dropped_connection(self):
        layer = rf.Layer().file("big", os.urandom(300000)).raw()
        img = self.serve_image("drop/resume", layer)
        FakeRegistry.routes["/v2/drop/resume/blobs/%s" % rf.sha(layer)] = (200, {}, ("drop", layer))
        FakeRegistry.ranges.clear()
        _, rootfs, layers, nbytes = self.pull(img)
        self.assertEqual(os.path.getsize(os.path.join(view(rootfs), "big")), 300000)
        self.assertEqual(FakeRegistry.ranges, [None, "bytes=%d-" % (len(layer) // 2)], "resumed with Range")

    def test_no_credentials_across_a_redirect(self):
        layer = rf.Layer().file("a", "redirected").raw()
        img = self.serve_image("redir/x", layer)
        port = self.srv.server_address[1]
        man_path = "/v2/redir/x/manifests/1"
        st, h, body = FakeRegistry.routes[man_path]
        FakeRegistry.routes[man_path] = (st, dict(h, **{"X-Need-Basic": "1"}), body)
        blob_path = "/v2/redir/x/blobs/%s" % rf.sha(layer)
        FakeRegistry.routes["/elsewhere/blob"] = (200, {}, layer)
        FakeRegistry.routes[blob_path] = (307, {"Location": "http://localhost:%d/elsewhere/blob" % port}, b"")
        FakeRegistry.seen.clear()
        env = dict(os.environ, REGAUTH="user:pw")
        _, rootfs, _, _ = self.pull(img, "--auth-env", "REGAUTH", env=env)
        self.assertEqual(open(os.path.join(view(rootfs), "a")).read(), "redirected")
        sent = {(host.split(":")[0], path): auth for host, path, auth in FakeRegistry.seen}
        self.assertTrue(sent[("127.0.0.1", man_path)], "Basic credentials sent to the registry")
        self.assertIsNone(sent[("localhost", "/elsewhere/blob")], "no Authorization to another host after a redirect")

    def test_stall_times_out(self):
        layer = rf.Layer().file("a", "a").raw()
        img = self.serve_image("bad/stall", layer)
        FakeRegistry.routes["/v2/bad/stall/blobs/%s" % rf.sha(layer)] = (200, {}, b"stall")
        err = self.pull(img, "--stall-ms", "1500", ok=False)
        self.assertIn("stalled", err)


class TokenAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_root()
        cls.reg = rf.Registry(token=True)
        cls.reg.login_push("private/bb")
        cls.reg.push_image("private/bb", "1", [rf.busybox_layer()])
        cls.reg.auth_header = None
        cls.tmp = tempfile.mkdtemp(prefix="ctr-tok.")

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pull(self, creds):
        env = dict(os.environ, REGAUTH=creds or "")
        argv = [HELPER, "pull", "--store", os.path.join(self.tmp, "s"), "--insecure", "--policy", "always"]
        if creds is not None:
            argv += ["--auth-env", "REGAUTH"]
        return subprocess.run(argv + [self.reg.host + "/private/bb:1"], capture_output=True, text=True, env=env, timeout=60)

    def test_token_flow(self):
        p = self.pull("muster:secret")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.pull(None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("HTTP 401", p.stderr)
        p = self.pull("muster:wrong")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("401", p.stderr)
        self.assertNotIn("wrong", p.stderr, "credentials never printed")


class HostileLayerTest(Base):
    def hostile(self, name, build, expect_err=None):
        base = rf.busybox_layer()
        self.reg.push_image("hostile/" + name, "1", [base] + [b(rf.Layer()).raw() for b in build])
        img = "%s/hostile/%s:1" % (self.reg.host, name)
        if expect_err:
            err = self.pull(img, ok=False)
            self.assertIn(expect_err, err)
            return None
        return self.pull(img)[1]

    def setUp(self):
        self.victim_dir = tempfile.mkdtemp(prefix="victim.", dir=self.tmp)
        self.victim = os.path.join(self.victim_dir, "victim")
        with open(self.victim, "w") as f:
            f.write("host file\n")

    def tearDown(self):
        with open(self.victim) as f:
            self.assertEqual(f.read(), "host file\n", "a host file was touched")

    def test_dotdot(self):
        self.hostile("dotdot", [lambda l: l.file("../../../../" + self.victim.lstrip("/"), "pwned")], "\"..\" refused")

    def test_absolute(self):
        self.hostile("abs", [lambda l: l.file(self.victim, "pwned")], "absolute path refused")

    def test_symlink_then_write(self):
        # Unpacked in a chroot with SECURE_SYMLINKS: the symlink is replaced, nothing escapes
        # (tearDown checks the host file).
        rootfs = self.hostile("symwrite", [lambda l: l.symlink("lnk", self.victim_dir),
                                           lambda l: l.file("lnk/victim", "pwned")])
        self.assertFalse(os.path.islink(os.path.join(view(rootfs), "lnk")))

    def test_symlink_then_write_same_layer(self):
        rootfs = self.hostile("symwrite1", [lambda l: l.symlink("lnk", self.victim_dir).file("lnk/victim", "pwned")])
        self.assertFalse(os.path.islink(os.path.join(view(rootfs), "lnk")))

    def test_whiteout_through_symlink(self):
        self.hostile("whsym", [lambda l: l.symlink("lnk", self.victim_dir), lambda l: l.file("lnk/.wh.victim", "")])

    def test_hardlink_out(self):
        self.hostile("hardlink", [lambda l: l.hardlink("h", self.victim)], "absolute path refused")
        self.hostile("hardlink2", [lambda l: l.hardlink("h", "../../../.." + self.victim)], "\"..\" refused")

    def test_device_node(self):
        self.hostile("dev", [lambda l: l.device("dev/mem", 1, 1)], "device nodes are refused")

    def test_bare_whiteout(self):
        self.hostile("barewh", [lambda l: l.file("etc/.wh.", "")], "bare .wh.")

    def test_duplicate(self):
        self.hostile("dup", [lambda l: l.file("a", "1").file("a", "2")], "appears twice")

    def test_bomb(self):
        base = rf.busybox_layer()
        bomb = rf.Layer().file("zeros", b"\0" * (64 << 20)).raw()
        self.reg.push_image("hostile/bomb", "1", [base, bomb])
        err = self.pull("%s/hostile/bomb:1" % self.reg.host, "--max-bytes", str(16 << 20), ok=False)
        self.assertIn("cap", err)

    def test_whiteouts_applied(self):
        rootfs = self.hostile("wh", [lambda l: l.dir("d").file("d/a", "a").file("d/b", "b").file("keep", "k").file("gone", "g"),
                                     lambda l: l.file("d/c", "c").file("d/.wh..wh..opq", "").file(".wh.gone", "")])
        self.assertEqual(sorted(os.listdir(os.path.join(view(rootfs), "d"))), ["c"], "opaque hides lower entries, keeps its own")
        self.assertFalse(os.path.exists(os.path.join(view(rootfs), "gone")))
        self.assertTrue(os.path.exists(os.path.join(view(rootfs), "keep")))


class LayerDirsTest(Base):
    """Per-layer unpacked dirs (layers.h): each layer once in its own dir, shared by images."""

    def host(self, name):
        return "%s/%s" % (self.reg.host, name)

    def test_second_image_shares_layers(self):
        store = os.path.join(self.tmp, "layers-store")
        base = rf.busybox_layer()
        mid = rf.Layer().file("etc/motd", "shared\n").raw()
        self.reg.push_image("t/lay1", "1", [base, mid, rf.Layer().file("one", "1\n").raw()])
        self.reg.push_image("t/lay2", "1", [base, mid, rf.Layer().file("two", "2\n").file(".wh.bin", "").raw()])
        d1, r1, _, _ = self.pull(self.host("t/lay1:1"), store=store)
        layers = os.path.join(store, "layers")
        before = {n: os.stat(os.path.join(layers, n)).st_ino for n in os.listdir(layers) if not n.endswith(".bytes")}
        self.assertEqual(len(before), 3, os.listdir(layers))
        self.assertEqual(os.listdir(r1), [".muster-layers"], "the image's rootfs names its layers, holds no tree")
        d2, r2, _, _ = self.pull(self.host("t/lay2:1"), store=store)
        after = {n: os.stat(os.path.join(layers, n)).st_ino for n in os.listdir(layers) if not n.endswith(".bytes")}
        self.assertEqual(len(after), 4, "one new layer dir for the second image")
        for n, ino in before.items():  # the shared ones were not unpacked again
            self.assertEqual(after[n], ino, n)
        v1, v2 = view(r1), view(r2)
        self.assertEqual(open(os.path.join(v1, "etc/motd")).read(), "shared\n")
        self.assertTrue(os.path.exists(os.path.join(v1, "bin/busybox")) and os.path.exists(os.path.join(v1, "one")))
        self.assertFalse(os.path.exists(os.path.join(v2, "bin")), "a whiteout in an upper layer dir hides the lower bin")
        self.assertFalse(os.path.exists(os.path.join(v2, "one")))
        # GC by refcount: removing the first image keeps the layers the second still names
        unmount_views()
        subprocess.run([HELPER, "gc", "--store", store, "--max-bytes", "1"], check=True, capture_output=True)
        self.assertEqual(sorted(os.listdir(os.path.join(store, "rootfs"))), [], "both images collected")
        self.assertEqual([n for n in os.listdir(layers) if not n.endswith(".bytes")], [], "no layer left")

    def test_copy_fallback_many_layers(self):
        # more layers than one overlay mount's options hold: the image is unpacked into one
        # merged tree instead (the copy fallback), whiteouts applied, and runs the same
        store = os.path.join(self.tmp, "layers-store-many")
        layers = [rf.busybox_layer()] + [rf.Layer().file("f%02d" % i, "%d\n" % i).raw() for i in range(40)]
        layers.append(rf.Layer().file(".wh.f07", "").raw())
        self.reg.push_image("t/many", "1", layers)
        d, r, _, _ = self.pull(self.host("t/many:1"), store=store)
        self.assertFalse(os.path.exists(os.path.join(r, ".muster-layers")))
        self.assertEqual(open(os.path.join(r, "f39")).read(), "39\n")
        self.assertFalse(os.path.exists(os.path.join(r, "f07")), "the whiteout applied in the merged tree")
        self.assertTrue(os.path.isfile(os.path.join(r, "bin/busybox")))

    def test_layer_dirs_kept_while_named(self):
        store = os.path.join(self.tmp, "layers-store2")
        base = rf.busybox_layer()
        self.reg.push_image("t/keep1", "1", [base, rf.Layer().file("a", "a\n").raw()])
        self.reg.push_image("t/keep2", "1", [base, rf.Layer().file("b", "b\n").raw()])
        d1, r1, _, _ = self.pull(self.host("t/keep1:1"), store=store)
        d2, r2, _, _ = self.pull(self.host("t/keep2:1"), store=store)
        os.utime(r1, (1000, 1000))  # keep1 is the least recently used
        p = subprocess.run([HELPER, "gc", "--store", store, "--max-age-s", "3600"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(os.path.join(store, "rootfs")), [d2[7:]])
        layers = sorted(n for n in os.listdir(os.path.join(store, "layers")) if not n.endswith(".bytes"))
        self.assertEqual(len(layers), 2, "the shared base and keep2's own layer stay; keep1's own went")
        self.assertEqual(open(os.path.join(view(r2), "b")).read(), "b\n")


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        unmount_views()
