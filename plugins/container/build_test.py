"""`muster image build`'s helper (muster-image-build) end to end: a busybox-static base pushed
to a loopback docker-registry, a Musterfile with COPY/RUN/ENV/USER/ENTRYPOINT built, pushed
and run with muster-container from a fresh store (as another agent would); a rebuild is all
cache hits with the same digest; a changed file rebuilds only its step and later ones; a
`RUN rm` leaves a whiteout that applies on run; bad Musterfiles and a failing RUN produce no
image and name the line. Needs root, docker-registry and busybox-static (scripts/setup)."""
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regfixture as rf  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
HELPER = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
CLI = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
del sys.argv[1:]

MUSTERFILE = """# syntax=docker/dockerfile:1
FROM {base}
ARG GREETING=hello
ENV APP_DIR=/app \\
    MODE=test
COPY app.sh $APP_DIR/
COPY data/ $APP_DIR/data/
RUN echo "$GREETING from RUN as $(id -u)" > /built.txt && \\
    rm /etc/group && mkdir -p /app/out && chown 1000:1000 /app/out
WORKDIR /app
USER app
RUN echo "user $(id -u) in $(pwd)" > out/who.txt
LABEL org.example.team=fleet
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "/app/app.sh"]
CMD ["default-arg"]
"""

APP_SH = """echo "args: $*"
echo "mode: $MODE dir: $APP_DIR"
cat /built.txt /app/out/who.txt /app/data/one.txt
test -e /etc/group && echo "group still there" || echo "group removed"
id -u
"""


def need_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (namespaces, mounts)")
    for tool in ("docker-registry", rf.BUSYBOX):
        if shutil.which(tool) is None and not os.path.exists(tool):
            raise unittest.SkipTest("%s missing: run scripts/setup" % tool)


class BuildTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_root()
        cls.reg = rf.Registry()
        cls.tmp = tempfile.mkdtemp(prefix="build-test.")
        cls.store = os.path.join(cls.tmp, "store")
        cls.reg.push_image("base/busybox", "1", [rf.busybox_layer()], {"Cmd": ["/bin/sh"]})
        cls.base = "%s/base/busybox:1" % cls.reg.host

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def context(self, name, musterfile, files=None):
        ctx = os.path.join(self.tmp, name)
        shutil.rmtree(ctx, ignore_errors=True)
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Musterfile"), "w") as f:
            f.write(musterfile.replace("{base}", self.base))
        for path, data in (files or {}).items():
            p = os.path.join(ctx, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(data)
        return ctx

    def build(self, ctx, tag, *opts, ok=True, store=None):
        argv = [BUILD, "--store", store or self.store, "--insecure", "-t", tag] + list(opts) + [ctx]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if ok and p.returncode != 0:
            self.fail("build: rc %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
        if not ok:
            self.assertNotEqual(p.returncode, 0, p.stdout)
        return p

    @staticmethod
    def digest_of(p):
        return [l.split()[1] for l in p.stdout.splitlines() if l.startswith("image ")][-1]

    def manifest(self, digest, store=None):
        with open(os.path.join(store or self.store, "blobs/sha256", digest[7:])) as f:
            return json.load(f)

    def blob(self, digest, store=None):
        with open(os.path.join(store or self.store, "blobs/sha256", digest[7:]), "rb") as f:
            return f.read()

    def layer_names(self, digest):
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.blob(digest)))) as t:
            return [m.name for m in t.getmembers()]

    def run_image(self, image, store, **cfg):
        state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
        conf = dict({"store": store, "image": image, "insecure": True, "state_dir": state}, **cfg)
        path = os.path.join(state, "container.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        return subprocess.run([HELPER, "run", path], capture_output=True, text=True, timeout=120)

    def app_context(self, one="first version\n"):
        return self.context("app", MUSTERFILE, {"app.sh": APP_SH, "data/one.txt": one, "data/sub/two.txt": "two\n"})

    def test_build_push_run_cache(self):
        ctx = self.app_context()
        tag = "%s/t/app:1" % self.reg.host
        p = self.build(ctx, tag, "--push", "--build-arg", "GREETING=hi")
        d1 = self.digest_of(p)
        self.assertIn("pushed %s@%s" % (tag, d1), p.stdout)
        self.assertIn("1 mounted from base/busybox", p.stdout, "the base layer: a cross-repo mount, not an upload")
        man = self.manifest(d1)
        cfg = json.loads(self.blob(man["config"]["digest"]))
        c = cfg["config"]
        self.assertEqual(c["Entrypoint"], ["/bin/sh", "/app/app.sh"])
        self.assertEqual(c["Cmd"], ["default-arg"])
        self.assertEqual(c["User"], "app")
        self.assertEqual(c["WorkingDir"], "/app")
        self.assertIn("MODE=test", c["Env"])
        self.assertIn("APP_DIR=/app", c["Env"])
        self.assertNotIn("GREETING=hi", c["Env"], "ARGs are not kept in the image")
        self.assertEqual(c["Labels"], {"org.example.team": "fleet"})
        self.assertEqual(c["ExposedPorts"], {"8080/tcp": {}})
        self.assertEqual(len(man["layers"]), 1 + 4, "base + COPY + COPY + RUN + RUN (WORKDIR /app exists)")
        self.assertEqual(len(cfg["rootfs"]["diff_ids"]), len(man["layers"]))
        self.assertEqual(cfg["created"], "1970-01-01T00:00:00Z")
        self.assertEqual(len([h for h in cfg["history"] if not h.get("empty_layer")]), len(man["layers"]),
                         "one history entry per layer (the base's added)")
        for l in man["layers"][1:]:
            head = self.blob(l["digest"])[:10]
            self.assertEqual(head[3], 0, "gzip: no name or other flags")
            self.assertEqual(head[4:8], b"\0\0\0\0", "gzip: no mtime")
        # the first RUN removed /etc/group: a whiteout in its layer
        self.assertIn("etc/.wh.group", self.layer_names(man["layers"][3]["digest"]))
        # the registry has it: a fresh store (another agent) pulls and runs it
        other = os.path.join(self.tmp, "agent2-store")
        r = self.run_image(tag, other)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("args: default-arg", out)
        self.assertIn("mode: test dir: /app", out)
        self.assertIn("hi from RUN as 0", out)
        self.assertIn("user 1000 in /app", out)
        self.assertIn("first version", out)
        self.assertIn("group removed", out, "the whiteout applies on run")
        self.assertEqual(out.strip().splitlines()[-1], "1000", "USER app")

        # rebuild unchanged: every layer step cached, the same digest
        p2 = self.build(ctx, tag, "--build-arg", "GREETING=hi")
        self.assertEqual(self.digest_of(p2), d1, "reproducible: the same inputs, the same digest")
        self.assertIn("(5 of 5 layer steps cached)", p2.stdout)
        self.assertNotIn("  | ", p2.stdout, "no RUN ran")
        # a fresh store and --no-cache rebuild everything: still the same digest
        p3 = self.build(ctx, tag, "--no-cache", "--build-arg", "GREETING=hi", store=os.path.join(self.tmp, "store2"))
        self.assertEqual(self.digest_of(p3), d1, "reproducible from scratch")

        # change one file: its COPY and later steps rebuilt, earlier ones cached
        with open(os.path.join(ctx, "data/one.txt"), "w") as f:
            f.write("second version\n")
        p4 = self.build(ctx, tag, "--build-arg", "GREETING=hi", "--push")
        d4 = self.digest_of(p4)
        self.assertNotEqual(d4, d1)
        self.assertIn("(1 of 5 layer steps cached)", p4.stdout)  # COPY app.sh; the rest rebuilt
        m4 = self.manifest(d4)
        self.assertEqual(m4["layers"][:2], man["layers"][:2], "base and COPY app.sh layers unchanged")
        self.assertNotEqual(m4["layers"][2], man["layers"][2])
        # only the new COPY layer and the config go up: the base, COPY app.sh and both RUN layers
        # (rebuilt, but byte-identical: reproducible) are there already
        self.assertIn("(2 blobs uploaded", p4.stdout)
        self.assertIn("4 already there", p4.stdout)
        r = self.run_image(tag, os.path.join(self.tmp, "agent3-store"))
        self.assertIn("second version", r.stdout, r.stderr)

    def test_cli(self):
        if CLI is None:
            self.skipTest("no muster CLI given")
        ctx = self.context("cli", "FROM {base}\nRUN echo built by the cli\nCMD [\"/bin/true\"]\n")
        env = dict(os.environ, MUSTER_IMAGE_BUILD=BUILD, MUSTER_CONFIG="/nonexistent", ASAN_OPTIONS="detect_leaks=0")
        p = subprocess.run([CLI, "image", "build", ctx, "-t", "%s/t/cli:1" % self.reg.host, "--store", self.store,
                            "--insecure", "--push"], capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  | built by the cli", p.stdout, "RUN output is shown")
        self.assertIn("pushed", p.stdout)
        p = subprocess.run([CLI, "image", "build", ctx, "-t", "x/y:1", "--builder", "/x"], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--builder and --timeout go with --on", p.stderr)
        p = subprocess.run([CLI, "image", "build", ctx], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: muster image build DIR -t", p.stderr)

    def test_opaque_dir_and_layer_bound(self):
        ctx = self.context("opq", "FROM {base}\nRUN mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b\n"
                                  "RUN rm -rf /d && mkdir /d && echo new > /d/new\nCMD [\"/bin/ls\", \"-R\", \"/d\"]\n")
        tag = "%s/t/opq:1" % self.reg.host
        p = self.build(ctx, tag, "--push")
        man = self.manifest(self.digest_of(p))
        names = self.layer_names(man["layers"][2]["digest"])
        self.assertIn("d/.wh..wh..opq", names, "a replaced directory is opaque in its layer")
        self.assertIn("d/new", names)
        r = self.run_image(tag, os.path.join(self.tmp, "opq-store"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["/d:", "new"], "the old contents are hidden on run")
        ctx = self.context("big", "FROM {base}\nRUN dd if=/dev/zero of=/big bs=1024 count=64 2>/dev/null\n")
        p = self.build(ctx, "%s/t/big:1" % self.reg.host, "--max-layer-bytes", "10000", ok=False)
        self.assertIn("line 2", p.stderr)
        self.assertIn("over the 10000-byte layer bound", p.stderr)

    def test_push_auth(self):
        treg = rf.Registry(token=True)
        try:
            # the token server is a python process: on a loaded machine it can take longer to
            # listen than the fixture waits
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", treg.token_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            ctx = self.context("auth", "FROM {base}\nCOPY f /f\n", {"f": "pushed with a token\n"})
            tag = "%s/private/app:1" % treg.host
            env = dict(os.environ, REG_AUTH="muster:wrong")
            argv = [BUILD, "--store", self.store, "--insecure", "-t", tag, "--push", "--auth-env", "REG_AUTH", ctx]
            p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("401 with the credentials given (refused)", p.stderr)
            p = subprocess.run(argv[:-3] + ["--push", ctx], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("refused", p.stderr, "no credentials: refused too")
            env["REG_AUTH"] = "muster:secret"
            p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("pushed %s@" % tag, p.stdout)
            # FROM on the token registry too (pulled with the credentials): the base layer is
            # mounted from its repository (the push token asks for pull on it)
            treg.login_push("base/bb")
            treg.push_image("base/bb", "1", [rf.busybox_layer()], {"Cmd": ["/bin/sh"]})
            treg.auth_header = None
            ctx2 = self.context("auth2", "FROM %s/base/bb:1\nCOPY f /f\n" % treg.host, {"f": "on one registry\n"})
            argv2 = [a if a != tag else "%s/private/other:1" % treg.host for a in argv[:-1]] + [ctx2]
            p = subprocess.run(argv2, capture_output=True, text=True, env=env, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("1 mounted from base/bb", p.stdout)
        finally:
            treg.close()

    def test_gc_sweeps_the_build_cache(self):
        store = os.path.join(self.tmp, "gc-store")
        ctx = self.context("gc", "FROM {base}\nCOPY f /f\nRUN echo x > /x\n", {"f": "gc\n"})
        p = self.build(ctx, "%s/t/gc:1" % self.reg.host, store=store)
        self.assertEqual(len(os.listdir(os.path.join(store, "build-cache"))), 2)
        # an entry unused past --max-age-s goes, with its blob (a cache hit refreshes its time)
        time.sleep(2.2)
        g = subprocess.run([HELPER, "gc", "--store", store, "--max-age-s", "1"], capture_output=True, text=True)
        self.assertEqual(g.returncode, 0, g.stderr)
        self.assertEqual(os.listdir(os.path.join(store, "build-cache")), [])
        self.assertEqual([b for b in os.listdir(os.path.join(store, "blobs/sha256"))], [], "no blob left behind")
        p = self.build(ctx, "%s/t/gc:1" % self.reg.host, store=store)
        self.assertIn("(0 of 2 layer steps cached)", p.stdout)

    def test_oci_archive(self):
        ctx = self.context("arch", "FROM {base}\nCOPY f.txt /f.txt\nCMD [\"/bin/cat\", \"/f.txt\"]\n", {"f.txt": "archived\n"})
        out = os.path.join(self.tmp, "img.tar")
        p = self.build(ctx, "%s/t/arch:v1" % self.reg.host, "--oci-archive", out)
        d = self.digest_of(p)
        with tarfile.open(out) as t:
            names = t.getnames()
            index = json.load(t.extractfile("index.json"))
            t.extractall(os.path.join(self.tmp, "layout"))
        self.assertIn("oci-layout", names)
        self.assertIn("blobs/sha256/" + d[7:], names)
        self.assertEqual(index["manifests"][0]["digest"], d)
        self.assertEqual(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1")
        self.assertTrue(os.path.isfile(os.path.join(self.store, "rootfs", d[7:], "f.txt")),
                        "a COPY-only build leaves the image unpacked in the store too")
        # the layout is an image the helper runs
        r = self.run_image("x", os.path.join(self.tmp, "layout-store"), layout=os.path.join(self.tmp, "layout"),
                           layout_tag="v1")
        self.assertEqual(r.stdout, "archived\n", r.stderr)
        # and a base for another build (--base-layout: FROM read from the layout, no registry)
        ctx2 = self.context("from-layout", "FROM whatever/name:v1\nRUN cat /f.txt > /g.txt\n"
                                           "CMD [\"/bin/cat\", \"/g.txt\"]\n")
        p = self.build(ctx2, "%s/t/layered:1" % self.reg.host, "--base-layout", os.path.join(self.tmp, "layout"))
        man = self.manifest(self.digest_of(p))
        self.assertEqual(man["layers"][:2], self.manifest(d)["layers"], "the layout's layers, then ours")
        r = self.run_image("%s/t/layered:1" % self.reg.host, self.store, pull_policy="never")
        self.assertEqual(r.stdout, "archived\n", r.stderr)

    def test_failing_run(self):
        ctx = self.context("fail", "FROM {base}\nRUN echo before-fail\nRUN echo the-output; echo oops >&2; exit 3\n"
                                   "RUN echo never\n")
        tag = "%s/t/fail:1" % self.reg.host
        p = self.build(ctx, tag, ok=False)
        self.assertIn("line 3", p.stderr)
        self.assertIn("exit 3", p.stderr)
        self.assertIn("oops", p.stderr, "the failing step's output is in the message")
        self.assertIn("the-output", p.stdout, "and shown as it ran")
        self.assertIn("no image was produced", p.stderr)
        self.assertNotIn("never", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.store, "refs", ("%s/t/fail:1" % self.reg.host).replace("/", "%"))))

    def test_run_has_no_network_and_times_out(self):
        ctx = self.context("net", "FROM {base}\nRUN ip link | grep -c '^[0-9]' > /n && test \"$(cat /n)\" = 1\n")
        self.build(ctx, "%s/t/net:1" % self.reg.host)
        ctx = self.context("slow", "FROM {base}\nRUN sleep 30\n")
        p = self.build(ctx, "%s/t/slow:1" % self.reg.host, "--step-timeout-ms", "1000", ok=False)
        self.assertIn("line 2", p.stderr)
        self.assertIn("step time limit of 1000 ms", p.stderr)

    def test_bad_musterfiles(self):
        cases = [
            ("FROM {base}\nRUN true\nVOLUME /data\n", "line 3: VOLUME is not supported"),
            ("FROM {base}\nFROBNICATE x\n", "line 2: unknown instruction FROBNICATE"),
            ("FROM {base}\nADD http://example.com/x /x\n", "line 2: ADD of a URL"),
            ("FROM {base}\nCOPY ../outside /x\n", "line 2: COPY source \"../outside\" is outside the build context"),
            ("FROM {base}\n\nCOPY link/secret /x\n", "line 3: COPY source link/secret leads out of the build context"),
            ("FROM {base}\nCOPY missing.txt /x\n", "line 2: COPY source missing.txt"),
            ("FROM {base}\nCOPY big.bin /x\n", "over the 100-byte context bound"),
            # a context file an unpacker would read as a whiteout (deleting /etc/passwd)
            ("FROM {base}\nCOPY wh/ /etc/\n", "a file named etc/.wh.passwd cannot be stored"),
            ("FROM {base}\nRUN touch /tmp2 /.wh.tmp2\n", "a file named .wh.tmp2 cannot be stored"),
        ]
        outside = os.path.join(self.tmp, "outside")
        os.makedirs(outside, exist_ok=True)
        with open(os.path.join(outside, "secret"), "w") as f:
            f.write("host secret\n")
        for i, (mf, want) in enumerate(cases):
            ctx = self.context("bad%d" % i, mf, {"big.bin": "x" * 1000, "wh/.wh.passwd": ""})
            os.symlink(outside, os.path.join(ctx, "link"))
            p = self.build(ctx, "%s/t/bad:%d" % (self.reg.host, i), "--max-context-bytes", "100", ok=False)
            self.assertIn(want, p.stderr)
            self.assertIn("no image was produced", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
