"""Image signatures against a real loopback docker-registry (2.8: no referrers API, so the
fallback tag sha256-<hex>.sig): `muster image sign|verify` and muster-container's
require_signed. The operator's story: sign an image, verify it; an agent that requires
signatures pulls the signed image and refuses, before a single layer is fetched (the
registry's access log shows no blob GET), an unsigned image, another image's signature
attached to this one, a signature by an untrusted key, an expired one and a tampered one.
Keys rotate (several signatures, any trusted one counts); an index is signed as itself; token
auth pushes with the right credentials and fails clearly with wrong or none; a blob present
in another repository is mounted, not uploaded.

argv: MUSTER_CLI MUSTER_CONTAINER REGISTRY_PUSH_TOOL"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ocireg  # noqa: E402
import regfixture as rf  # noqa: E402

CLI, HELPER, PUSH_TOOL = (os.path.abspath(p) for p in sys.argv[1:4])
del sys.argv[1:]
ENV = dict(os.environ, MUSTER_CONFIG="/nonexistent/muster-test.yaml")
ART = "application/vnd.muster.image.signature.v1+json"


def need_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (the helper unpacks in a chroot)")
    for tool in ("docker-registry", rf.BUSYBOX):
        if shutil.which(tool) is None and not os.path.exists(tool):
            raise unittest.SkipTest("%s missing: run scripts/setup" % tool)


def cli(*args, env=None):
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True, env=env or ENV, timeout=60)
    return p.returncode, p.stdout, p.stderr


class Signatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_root()
        cls.tmp = tempfile.mkdtemp(prefix="sig-test.")
        cls.reg = rf.Registry(access_log=True)
        for k in ("k1", "k2", "k3"):
            rc, out, err = cli("keygen", "--out", os.path.join(cls.tmp, k))
            assert rc == 0, err
        cls.key_id = {}
        for k in ("k1", "k2", "k3"):
            with open(os.path.join(cls.tmp, k + ".pub")) as f:
                cls.key_id[k] = f.read().split()[2]

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def key(self, k):
        return os.path.join(self.tmp, k + ".key")

    def pub(self, k):
        return os.path.join(self.tmp, k + ".pub")

    def push(self, repo, text):
        """An image of its own (its own layer digest); returns (ref, manifest digest, layer digests)."""
        layer = rf.busybox_layer(lambda l: l.file("hello.txt", text))
        digest, _ = self.reg.push_image(repo, "1", [layer], rf.run_image_config())
        man = json.load(self.reg._req("GET", "/v2/%s/manifests/%s" % (repo, digest),
                                      headers={"Accept": rf.OCI_MANIFEST}))
        return "%s/%s:1" % (self.reg.host, repo), digest, [l["digest"] for l in man["layers"]]

    def sign(self, ref, k, *extra):
        rc, out, err = cli("image", "sign", ref, "--key", self.key(k), "--insecure", *extra)
        self.assertEqual(rc, 0, err)
        return out

    def verify(self, ref, *keys):
        args = []
        for k in keys:
            args += ["--pub", self.pub(k)]
        return cli("image", "verify", ref, "--insecure", *args)

    def pull(self, ref, *keys):
        """muster-container pull with require_signed and keys; (rc, stdout, stderr)."""
        store = tempfile.mkdtemp(prefix="store.", dir=self.tmp)
        argv = [HELPER, "pull", "--store", store, "--insecure", "--require-signed"]
        for k in keys:
            argv += ["--signature-key", self.pub(k)]
        p = subprocess.run(argv + [ref], capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def assert_refused_before_layers(self, ref, repo, layers, keys, needle):
        rc, out, err = self.pull(ref, *keys)
        self.assertEqual(rc, 125, out + err)
        self.assertIn(needle, err)
        got = self.reg.blob_gets(repo)
        for d in layers:
            self.assertNotIn(d, got, "a layer was fetched before the signature was refused")
        return err

    def fallback_tag(self, digest):
        return "sha256-%s.sig" % digest.split(":")[1]

    def get_manifest(self, repo, ref):
        return self.reg._req("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": rf.OCI_MANIFEST}).read()

    def test_sign_verify_and_run_signed(self):
        ref, digest, layers = self.push("s/ok", "signed\n")
        rc, out, err = self.verify(ref, "k1")
        self.assertEqual(rc, 1)
        self.assertIn("unsigned", err)
        out = self.sign(ref, "k1", "--expires", "30d")
        self.assertIn("signed %s/s/ok@%s with key %s" % (self.reg.host, digest, self.key_id["k1"]), out)
        self.assertIn("fallback tag %s" % self.fallback_tag(digest), out)  # recorded: no referrers API
        rc, out, err = self.verify(ref, "k1")
        self.assertEqual(rc, 0, err)
        self.assertIn("@%s: signed by key %s (%s) until 20" % (digest, self.key_id["k1"], self.pub("k1")), out)
        self.assertIn("found via tag " + self.fallback_tag(digest), out)
        # JSON, and the artifact as stored: subject = the image, our artifactType, empty config
        rc, out, err = cli("-o", "json", "image", "verify", ref, "--pub", self.pub("k1"), "--insecure")
        v = json.loads(out)
        self.assertEqual((v["kind"], v["ok"], v["status"], v["digest"]), ("imageVerification", True, "ok", digest))
        art = json.loads(self.get_manifest("s/ok", self.fallback_tag(digest)))
        self.assertEqual(art["artifactType"], ART)
        self.assertEqual(art["subject"]["digest"], digest)
        self.assertEqual(art["config"]["mediaType"], "application/vnd.oci.empty.v1+json")
        # the agent's helper pulls it (pinned to the signed digest)
        rc, out, err = self.pull(ref, "k1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.split()[0], digest)
        self.assertTrue(set(layers) <= set(self.reg.blob_gets("s/ok")))

    def test_unsigned_refused_before_layers(self):
        ref, digest, layers = self.push("s/unsigned", "unsigned\n")
        err = self.assert_refused_before_layers(ref, "s/unsigned", layers, ["k1"], "image refused (unsigned)")
        self.assertIn(digest, err)

    def test_untrusted_refused(self):
        ref, digest, layers = self.push("s/untrusted", "untrusted\n")
        self.sign(ref, "k3")
        rc, out, err = self.verify(ref, "k1")
        self.assertEqual(rc, 1)
        self.assertIn("untrusted", err)
        self.assertIn("signed by key %s, which is not trusted" % self.key_id["k3"], err)
        self.assert_refused_before_layers(ref, "s/untrusted", layers, ["k1"], "image refused (untrusted)")

    def test_expired_refused(self):
        ref, digest, layers = self.push("s/expired", "expired\n")
        self.sign(ref, "k1", "--expires", "1s")
        time.sleep(2.1)
        rc, out, err = self.verify(ref, "k1")
        self.assertEqual(rc, 1)
        self.assertIn("expired: ", err)
        self.assertIn("expired at 20", err)
        self.assert_refused_before_layers(ref, "s/expired", layers, ["k1"], "image refused (expired)")

    def test_tampered_refused(self):
        """Image A's signature attached to image B, both ways: the artifact as it is (subject A)
        under B's tag, and the artifact with its subject rewritten to B (the payload still says
        A); and a signature whose bytes were changed."""
        ref_a, da, _ = self.push("s/tamper", "image A\n")
        self.sign(ref_a, "k1")
        art = self.get_manifest("s/tamper", self.fallback_tag(da))
        layer = rf.busybox_layer(lambda l: l.file("hello.txt", "image B\n"))
        db, _ = self.reg.push_image("s/tamper", "b", [layer], rf.run_image_config())
        ref_b = "%s/s/tamper:b" % self.reg.host
        layers_b = [rf.sha(rf.compress(layer, "gzip")[0])]
        self.reg.push_manifest("s/tamper", self.fallback_tag(db), art, rf.OCI_MANIFEST)
        err = self.assert_refused_before_layers(ref_b, "s/tamper", layers_b, ["k1"], "image refused (wrong-digest)")
        self.assertIn("is attached to %s, not %s" % (da, db), err)
        moved = json.loads(art)
        moved["subject"]["digest"] = db
        self.reg.push_manifest("s/tamper", self.fallback_tag(db), moved, rf.OCI_MANIFEST)
        rc, out, err = self.verify(ref_b, "k1")
        self.assertEqual(rc, 1)
        self.assertIn("wrong-digest", err)
        self.assertIn("is over %s, not %s" % (da, db), err)
        self.assert_refused_before_layers(ref_b, "s/tamper", layers_b, ["k1"], "is over %s" % da)
        # the envelope's signature bytes changed (re-uploaded under its new digest)
        env = json.loads(self.reg._req("GET", "/v2/s/tamper/blobs/" + moved["layers"][0]["digest"]).read())
        sig = bytearray(base64.b64decode(env["signature"]))
        sig[0] ^= 1
        env["signature"] = base64.b64encode(bytes(sig)).decode()
        payload = json.loads(base64.b64decode(env["payload"]))
        payload["manifest"] = db
        env["payload"] = base64.b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()).decode()
        blob = json.dumps(env).encode()
        moved["layers"][0].update(digest=self.reg.push_blob("s/tamper", blob), size=len(blob))
        self.reg.push_manifest("s/tamper", self.fallback_tag(db), moved, rf.OCI_MANIFEST)
        self.assert_refused_before_layers(ref_b, "s/tamper", layers_b, ["k1"], "image refused (bad-signature)")
        # garbage under the tag: malformed, and sign refuses to overwrite it
        self.reg.push_manifest("s/tamper", self.fallback_tag(db), {"schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
                                                                    "config": moved["config"], "layers": []},
                               rf.OCI_MANIFEST)
        self.assert_refused_before_layers(ref_b, "s/tamper", layers_b, ["k1"], "image refused (malformed)")
        rc, out, err = cli("image", "sign", ref_b, "--key", self.key("k1"), "--insecure")
        self.assertEqual(rc, 1)
        self.assertIn("holds something else", err)

    def test_key_rotation(self):
        ref, digest, _ = self.push("s/rotate", "rotate\n")
        self.sign(ref, "k1")
        out = self.sign(ref, "k2")
        self.assertIn("2 signatures there", out)
        out = self.sign(ref, "k1")  # again with k1: its signature replaced, not added
        self.assertIn("2 signatures there", out)
        for keys in (["k1"], ["k2"], ["k3", "k2"]):
            rc, out, err = self.verify(ref, *keys)
            self.assertEqual(rc, 0, (keys, err))
        rc, out, err = self.verify(ref, "k3")
        self.assertEqual(rc, 1)
        self.assertIn("untrusted", err)
        # a bound on the signatures kept under the tag: the oldest go
        out = self.sign(ref, "k3", "--max-signatures", "2")
        self.assertIn("2 signatures there", out)
        rc, out, err = self.verify(ref, "k2")
        self.assertEqual(rc, 1, out)  # k2's was the oldest (k1 signed again after it)
        rc, out, err = self.pull(ref, "k2", "k3")
        self.assertEqual(rc, 0, err)

    def test_index_signed_as_itself(self):
        amd = rf.busybox_layer(lambda l: l.file("hello.txt", "amd64\n"))
        d1, s1 = self.reg.push_image("s/multi", "amd64", [amd], rf.run_image_config())
        d2, s2 = self.reg.push_image("s/multi", "arm64", [amd], rf.run_image_config(), arch="arm64")
        di, _ = self.reg.push_index("s/multi", "1", [(d1, s1, "amd64", None), (d2, s2, "arm64", "v8")])
        ref = "%s/s/multi:1" % self.reg.host
        out = self.sign(ref, "k1")
        self.assertIn("@%s with key" % di, out)
        rc, out, err = self.verify(ref, "k1")
        self.assertEqual(rc, 0, err)
        rc, out, err = cli("-o", "json", "image", "sign", ref, "--key", self.key("k2"), "--insecure")
        self.assertEqual(json.loads(out)["mediaType"], rf.OCI_INDEX)
        rc, out, err = self.pull(ref, "k1")
        self.assertEqual(rc, 0, err)
        self.assertIn(out.split()[0], (d1, d2))  # the platform's manifest under the signed index

    def test_admission_policy_require_signed(self):
        """The admission policy's require_signed (lib/imagepolicy) through the same verifier:
        trusted_keys narrows the agent's signature keys by name; refusals name the rule and
        fetch no layer; a warm start in the lite helper hands the check to the full one."""
        ref, digest, layers = self.push("s/policy", "policy\n")
        pol = os.path.join(self.tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("require_signed: true\ntrusted_keys: [k1]\n")
        store = tempfile.mkdtemp(prefix="store.", dir=self.tmp)

        def pull(image):
            argv = [HELPER, "pull", "--store", store, "--insecure", "--image-policy", pol,
                    "--signature-key", self.pub("k1"), "--signature-key", self.pub("k2"), image]
            return subprocess.run(argv, capture_output=True, text=True, timeout=120)
        p = pull(ref)
        self.assertEqual(p.returncode, 125)
        self.assertIn("require_signed: no signature for", p.stderr)
        self.sign(ref, "k2")  # a key the agent has, but not one the policy names
        p = pull(ref)
        self.assertEqual(p.returncode, 125)
        self.assertIn("is signed by an untrusted key", p.stderr)
        for d in layers:
            self.assertNotIn(d, self.reg.blob_gets("s/policy"))
        self.sign(ref, "k1")
        p = pull(ref)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[0], digest)
        # warm: the image is in the store, and the check still runs (through the full helper)
        state = tempfile.mkdtemp(prefix="task.", dir=self.tmp)
        conf = os.path.join(state, "c.json")
        with open(conf, "w") as f:
            json.dump({"store": store, "image": ref, "insecure": True, "state_dir": state, "pull_only": True,
                       "policy_files": [{"source": "agent", "path": pol}],
                       "signature_keys": [self.pub("k1")]}, f)
        p = subprocess.run([HELPER, "run", conf], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[0], digest)
        with open(pol, "w") as f:
            f.write("require_signed: true\ntrusted_keys: [k3]\n")
        with open(conf, "w") as f:
            json.dump({"store": store, "image": ref, "insecure": True, "state_dir": state, "pull_only": True,
                       "policy_files": [{"source": "agent", "path": pol}],
                       "signature_keys": [self.pub("k1"), self.pub("k3")]}, f)
        p = subprocess.run([HELPER, "run", conf], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 125, p.stdout)
        self.assertIn("signed by an untrusted key", p.stderr)

    def test_usage_errors(self):
        rc, out, err = cli("image", "sign", "x/y:1")
        self.assertEqual(rc, 2)
        self.assertIn("REF and --key are required", err)
        rc, out, err = cli("image", "sign", "example.com/y:1", "--key", self.key("k1"), "--insecure")
        self.assertEqual(rc, 2)
        self.assertIn("loopback registries only", err)
        rc, out, err = cli("image", "sign", "%s/y:1" % self.reg.host, "--key", self.key("k1"), "--expires", "soon")
        self.assertEqual(rc, 2)
        self.assertIn("--expires", err)
        rc, out, err = cli("image", "verify", "%s/y:1" % self.reg.host, "--pub", "/nonexistent.pub")
        self.assertEqual(rc, 2)
        rc, out, err = self.pull("%s/s/none:1" % self.reg.host)  # require_signed without keys
        self.assertEqual(rc, 125)
        self.assertIn("trusts no signature key", err)

    def test_blob_mount_and_skip(self):
        path = os.path.join(self.tmp, "blob")
        with open(path, "wb") as f:
            f.write(os.urandom(4096))
        run = lambda *a: subprocess.run([PUSH_TOOL] + list(a), capture_output=True, text=True, timeout=60)
        p = run("%s/m/one" % self.reg.host, path)
        self.assertEqual((p.returncode, p.stdout.split()[0]), (0, "uploaded"), p.stderr)
        p = run("%s/m/one" % self.reg.host, path)
        self.assertEqual(p.stdout.split()[0], "existed", p.stderr)
        p = run("%s/m/two" % self.reg.host, path, "m/one")
        self.assertEqual(p.stdout.split()[0], "mounted", p.stderr)
        lines = self.reg.access_lines()
        self.assertTrue(any(l.startswith("POST /v2/m/two/blobs/uploads/?mount=sha256:") for l in lines), lines)
        self.assertFalse(any(l.startswith("PUT /v2/m/two/") for l in lines), lines)


class ReferrersAPI(unittest.TestCase):
    """A registry with the OCI 1.1 referrers API (ocireg.py, in memory): one artifact per
    signature, pushed by digest and found through GET /v2/<name>/referrers/<digest>; no
    fallback tag."""

    @classmethod
    def setUpClass(cls):
        need_root()
        cls.tmp = tempfile.mkdtemp(prefix="sig-oci.")
        cls.oci = ocireg.OciRegistry()
        cls.reg = rf.Registry.__new__(rf.Registry)  # regfixture's image pushes, over HTTP to ocireg
        cls.reg.url, cls.reg.host, cls.reg.auth_header = cls.oci.url, cls.oci.host, None
        for k in ("k1", "k2", "k3"):
            rc, out, err = cli("keygen", "--out", os.path.join(cls.tmp, k))
            assert rc == 0, err

    @classmethod
    def tearDownClass(cls):
        cls.oci.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cli_sig(self, verb, ref, *args):
        return cli("image", verb, "%s/%s" % (self.oci.host, ref), "--insecure", *args)

    def test_referrers(self):
        layer = rf.busybox_layer(lambda l: l.file("hello.txt", "referred\n"))
        da, _ = self.reg.push_image("r/img", "1", [layer], rf.run_image_config())
        layer_b = rf.busybox_layer()
        db, _ = self.reg.push_image("r/img", "2", [layer_b], rf.run_image_config())
        key = lambda k: os.path.join(self.tmp, k)
        arts = []
        for k in ("k1", "k2"):
            rc, out, err = self.cli_sig("sign", "r/img:1", "--key", key(k + ".key"))
            self.assertEqual(rc, 0, err)
            self.assertIn("stored as referrer sha256:", out)
            self.assertNotIn("fallback", out)
            arts.append(out.split("stored as referrer ")[1].strip())
        self.assertFalse(any(".sig" in l for l in self.oci.log if l.startswith("PUT")), self.oci.log)
        self.assertTrue(any(l.startswith("GET /v2/r/img/referrers/%s?artifactType=" % da) for l in self.oci.log))
        for k in ("k1", "k2"):
            rc, out, err = self.cli_sig("verify", "r/img:1", "--pub", key(k + ".pub"))
            self.assertEqual(rc, 0, err)
            self.assertIn("found via referrers API", out)
        rc, out, err = self.cli_sig("verify", "r/img:1", "--pub", key("k3.pub"))
        self.assertEqual(rc, 1)
        self.assertIn("untrusted", err)
        # image A's artifact re-pushed with B as its subject: a referrer of B, over A
        art = json.loads(self.oci.manifests[("r/img", arts[0])][0])
        art["subject"]["digest"] = db
        self.reg.push_manifest("r/img", rf.sha(json.dumps(art).encode()), art, rf.OCI_MANIFEST)
        rc, out, err = self.cli_sig("verify", "r/img:2", "--pub", key("k1.pub"))
        self.assertEqual(rc, 1)
        self.assertIn("is over %s, not %s" % (da, db), err)
        # require_signed through the referrers API: the signed image pulls, B is refused unfetched
        store = tempfile.mkdtemp(prefix="store.", dir=self.tmp)
        pull = lambda ref: subprocess.run([HELPER, "pull", "--store", store, "--insecure", "--require-signed",
                                           "--signature-key", key("k2.pub"), "%s/%s" % (self.oci.host, ref)],
                                          capture_output=True, text=True, timeout=120)
        p = pull("r/img:2")
        self.assertEqual(p.returncode, 125)
        self.assertIn("image refused (untrusted)", p.stderr)  # only k1's (moved) signature is there
        fetched_b = "GET /v2/r/img/blobs/" + rf.sha(rf.compress(layer_b, "gzip")[0])
        self.assertNotIn(fetched_b, self.oci.log)
        p = pull("r/img:1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[0], da)


class PushCredentials(unittest.TestCase):
    """A registry with token auth: signing needs push; the right credentials work, wrong or
    missing ones fail with a message that says so."""

    @classmethod
    def setUpClass(cls):
        need_root()
        try:
            import cryptography  # noqa: F401  (the token server's)
        except ImportError:
            raise unittest.SkipTest("python3-cryptography missing")
        cls.tmp = tempfile.mkdtemp(prefix="sig-tok.")
        cls.reg = rf.Registry(token=True)
        for repo in ("private/img", "public/img"):
            cls.reg.login_push(repo)
            rf.push_run_image(cls.reg, repo, "1")
        cls.reg.auth_header = None
        rc, out, err = cli("keygen", "--out", os.path.join(cls.tmp, "k"))
        assert rc == 0, err

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sign(self, repo, creds):
        env = dict(ENV, REG_CREDS=creds) if creds else ENV
        args = ["image", "sign", "%s/%s:1" % (self.reg.host, repo), "--key", os.path.join(self.tmp, "k.key"),
                "--insecure"] + (["--auth-env", "REG_CREDS"] if creds else [])
        return cli(*args, env=env)

    def test_push_credentials(self):
        rc, out, err = self.sign("private/img", "muster:secret")
        self.assertEqual(rc, 0, err)
        rc, out, err = cli("image", "verify", "%s/private/img:1" % self.reg.host, "--pub",
                           os.path.join(self.tmp, "k.pub"), "--insecure", "--auth-env", "REG_CREDS",
                           env=dict(ENV, REG_CREDS="muster:secret"))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.sign("private/img", "muster:wrong")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 401 (credentials refused)", err)
        # anonymous: the public image reads, the push is refused, saying no credentials were given
        rc, out, err = self.sign("public/img", None)
        self.assertEqual(rc, 1)
        self.assertIn("blob upload", err)
        self.assertIn("HTTP 401 (no credentials configured)", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
