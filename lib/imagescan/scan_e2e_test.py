"""`muster image scan` end to end, through the real `muster` binary: images built here (a
Debian one with a dpkg status written by the test, status.d, Python dist-infos, a setuid file,
keys and a `RUN rm`-style layer of whiteouts hiding a package database and a dist-info from a
lower layer; an Alpine one with an apk database) are pushed to a loopback Debian
docker-registry (plugins/container/regfixture.py), also written as an OCI layout and a
`docker save` tar, and scanned against an OSV feed the test writes and imports with
`muster image feed update`. Every planted vulnerability must be found with the right fixed-in
version, none of the edge cases that must not match may appear, whited-out packages are not
reported, and a hostile feed (a huge record, bad versions, malformed JSON) is refused record
by record with nothing already imported lost."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import io
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MUSTER = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[2])))
del sys.argv[1:]
import regfixture as rf  # noqa: E402

DPKG_STATUS = """Package: libssl3
Status: install ok installed
Version: 3.0.11-1~deb12u2
Source: openssl

Package: zlib1g
Status: install ok installed
Version: 1:1.2.13.dfsg-1
Source: zlib

Package: bash
Status: install ok installed
Version: 5.2.15-2+b2
Source: bash (5.2.15-2)

Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u4
Source: glibc

Package: tzdata
Status: install ok installed
Version: 2024a-0+deb12u1

Package: libfoo1
Status: install ok installed
Version: 1:0.9-1
Source: libfoo

Package: libbar
Status: install ok installed
Version: 1.0~rc1-1

Package: libbaz
Status: install ok installed
Version: 2.30+dfsg-1

Package: oldtool
Status: deinstall ok config-files
Version: 0.1-1
"""

APK_DB = """C:Q1abc=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
o:busybox
p:/bin/sh

P:musl
V:1.2.4_git20230717-r4
o:musl

P:rcpkg
V:1.2_rc1

P:relpkg
V:1.2
"""


def metadata(name, version):
    return "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test\n\nlong description\n" % (name, version)


def osv(id_, eco, name, events=None, versions=None, severity=None, aliases=None, cvss=None):
    rec = {"id": id_, "modified": "2024-05-01T00:00:00Z", "published": "2024-04-01T00:00:00Z",
           "aliases": aliases or [], "affected": [{"package": {"ecosystem": eco, "name": name}}]}
    if events is not None:
        rec["affected"][0]["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        rec["affected"][0]["versions"] = versions
    if severity:
        rec["database_specific"] = {"severity": severity}
    if cvss:
        rec["severity"] = [{"type": "CVSS_V3", "score": cvss}]
    return rec


def fixed(v):
    return [{"introduced": "0"}, {"fixed": v}]


# (id, ecosystem, name, events/versions, severity) -> what the scan must say, or None
FEED = [
    # Debian image
    (osv("DSA-5001-1", "Debian:12", "openssl", fixed("3.0.13-1~deb12u1"), severity="CRITICAL",
         aliases=["CVE-2024-0727"]), ("libssl3", "3.0.13-1~deb12u1", "CRITICAL")),
    (osv("DEBIAN-CVE-2023-0001", "Debian", "zlib", fixed("1:1.2.13.dfsg-1"), severity="HIGH"), None),  # at the fix
    (osv("DLA-3001-1", "Debian:12", "bash", fixed("5.2.15-2+deb12u1"), severity="MEDIUM"),
     ("bash", "5.2.15-2+deb12u1", "MEDIUM")),  # by the source's version 5.2.15-2
    (osv("DLA-3002-1", "Debian:11", "glibc", fixed("2.40-1"), severity="HIGH"), None),  # another release
    (osv("DEBIAN-CVE-2024-0002", "Debian:12", "tzdata", fixed("2024b-0+deb12u1"), severity="LOW"),
     ("tzdata", "2024b-0+deb12u1", "LOW")),
    (osv("DEBIAN-CVE-2024-0003", "Debian:12", "libfoo", fixed("2.0-1"), severity="HIGH"), None),  # 1:0.9 > 2.0
    (osv("DEBIAN-CVE-2024-0004", "Debian:12", "libbar", fixed("1.0-1"), severity="HIGH"),
     ("libbar", "1.0-1", "HIGH")),  # 1.0~rc1 < 1.0
    (osv("DEBIAN-CVE-2024-0005", "Debian:12", "libbaz", fixed("2.30+dfsg-1.1")),
     ("libbaz", "2.30+dfsg-1.1", "UNKNOWN")),
    (osv("DEBIAN-CVE-2024-0006", "Debian:12", "libbaz", fixed("2.30-1"), severity="HIGH"), None),  # +dfsg > none
    (osv("DEBIAN-CVE-2024-0007", "Debian:12", "hiddenpkg", [{"introduced": "0"}], severity="CRITICAL"),
     None),  # its status.d file is whited out
    (osv("DEBIAN-CVE-2024-0008", "Debian:12", "oldtool", [{"introduced": "0"}], severity="CRITICAL"),
     None),  # not installed
    (osv("GHSA-9wx4-h78v-vm56", "PyPI", "requests", [{"introduced": "2.3.0"}, {"fixed": "2.32.0"}],
         cvss="CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N", aliases=["CVE-2024-35195"]),
     ("requests", "2.32.0", "MEDIUM")),
    (osv("GHSA-h5c8-rqwp-cp95", "PyPI", "jinja2", fixed("3.1.3"), severity="MODERATE"),
     ("Jinja2", "3.1.3", "MEDIUM")),
    (osv("PYSEC-2024-1", "PyPI", "oldlib", [{"introduced": "0"}], severity="CRITICAL"), None),  # whited out
    (osv("PYSEC-2024-2", "PyPI", "devpkg", [{"introduced": "0"}, {"fixed": "1.0a1"}], severity="LOW"),
     ("devpkg", "1.0a1", "LOW")),  # 1.0.dev1 < 1.0a1
    (osv("PYSEC-2024-3", "PyPI", "postpkg", [{"introduced": "0"}, {"fixed": "1.0"}], severity="LOW"),
     None),  # 1.0.post1 > 1.0
    (osv("PYSEC-2024-4", "PyPI", "postpkg", None, versions=["1.0", "1.0.post1"], severity="HIGH"),
     ("postpkg", "", "HIGH")),  # listed version, no fix known
    # Alpine image
    (osv("ALPINE-CVE-2024-0001", "Alpine:v3.19", "busybox", fixed("1.36.1-r16"), severity="HIGH"),
     ("busybox-binsh", "1.36.1-r16", "HIGH")),
    (osv("ALPINE-CVE-2024-0002", "Alpine:v3.18", "busybox", fixed("1.36.1-r99"), severity="HIGH"), None),
    (osv("ALPINE-CVE-2024-0003", "Alpine:v3.19", "musl", fixed("1.2.4-r2"), severity="HIGH"), None),  # _git > none
    (osv("ALPINE-CVE-2024-0004", "Alpine:v3.19", "rcpkg", fixed("1.2"), severity="LOW"), ("rcpkg", "1.2", "LOW")),
    (osv("ALPINE-CVE-2024-0005", "Alpine:v3.19", "relpkg", fixed("1.2-r1"), severity="LOW"),
     ("relpkg", "1.2-r1", "LOW")),
    (osv("ALPINE-CVE-2024-0006", "Alpine", "relpkg", fixed("1.2"), severity="LOW"), None),  # 1.2 is the fix
]

PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def debian_layers():
    l1 = (rf.Layer().dir("etc").dir("usr").dir("usr/lib").dir("usr/bin").dir("var").dir("var/lib")
          .dir("var/lib/dpkg").dir("var/lib/dpkg/status.d").dir("tmp", 0o1777).dir("srv", 0o777)
          .symlink("etc/os-release", "../usr/lib/os-release")
          .file("usr/lib/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n')
          .file("var/lib/dpkg/status", DPKG_STATUS)
          .file("var/lib/dpkg/status.d/hiddenpkg", "Package: hiddenpkg\nVersion: 1.0-1\n")
          .file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", metadata("requests", "2.31.0"))
          .file("usr/lib/python3/dist-packages/oldlib-0.1.dist-info/METADATA", metadata("oldlib", "0.1"))
          .file("usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", metadata("Jinja2", "3.1.2"))
          .file("usr/local/lib/python3.11/site-packages/devpkg-1.0.dev1.dist-info/METADATA",
                metadata("devpkg", "1.0.dev1"))
          .file("usr/local/lib/python3.11/site-packages/postpkg-1.0.post1.dist-info/METADATA",
                metadata("postpkg", "1.0.post1"))
          .file("usr/bin/passwd", "ELF", 0o4755)
          .file("root/.ssh/id_ed25519", "anything", 0o600)
          .file("app/deploy.key", PEM)
          .file("app/.env", "DB_PASSWORD=hunter2\n"))
    # RUN rm -rf /var/lib/dpkg/status.d/hiddenpkg /usr/lib/python3/dist-packages/oldlib-0.1.dist-info /app/.env
    l2 = (rf.Layer().dir("var/lib/dpkg/status.d").file("var/lib/dpkg/status.d/.wh.hiddenpkg", "")
          .file("usr/lib/python3/dist-packages/.wh.oldlib-0.1.dist-info", "")
          .file("app/.wh..env", "")
          .file("var/lib/dpkg/status.d/base-files", "Package: base-files\nVersion: 12.4+deb12u5\n"))
    return [l1.raw(), l2.raw()]


def alpine_layers():
    l1 = (rf.Layer().dir("etc").dir("lib").dir("lib/apk").dir("lib/apk/db")
          .file("etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n'
                'PRETTY_NAME="Alpine Linux v3.19"\n')
          .file("lib/apk/db/installed", APK_DB)
          .file("bin/su", "ELF", 0o4755))
    return [l1.raw()]


def expected(prefixes):
    out = set()
    for rec, want in FEED:
        eco = rec["affected"][0]["package"]["ecosystem"]
        if want and any(eco.startswith(p) for p in prefixes):
            out.add((want[0], rec["id"], want[1], want[2]))
    return out


def write_layout(dirpath, layers, config):
    """An OCI image layout of plain-tar layers."""
    os.makedirs(os.path.join(dirpath, "blobs", "sha256"))

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(dirpath, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d

    descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(l), "size": len(l)}
             for l in layers]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                      "rootfs": {"type": "layers", "diff_ids": [rf.sha(l) for l in layers]}}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg),
                                 "size": len(cfg)}, "layers": descs}).encode()
    with open(os.path.join(dirpath, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": rf.OCI_MANIFEST, "digest": blob(man),
                                                      "size": len(man)}]}, f)
    with open(os.path.join(dirpath, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')


def write_docker_save(path, layers, config):
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                      "rootfs": {"type": "layers", "diff_ids": [rf.sha(l) for l in layers]}}).encode()
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        names = []
        for i, l in enumerate(layers):
            names.append("layer%d/layer.tar" % i)
            add(names[-1], l)
        add("config.json", cfg)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t/alpine:1"],
                                          "Layers": names}]).encode())


class ScanTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("docker-registry") is None:
            raise unittest.SkipTest("docker-registry missing: run scripts/setup")
        cls.tmp = tempfile.mkdtemp(prefix="scan-e2e.")
        cls.env = dict(os.environ, HOME=cls.tmp, MUSTER_CONFIG="/nonexistent", XDG_CACHE_HOME="",
                       XDG_DATA_HOME="", MUSTER_FEED_DIR="")
        cls.env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        cls.reg = rf.Registry()
        cls.deb = debian_layers()
        cls.alp = alpine_layers()
        cls.reg.push_image("t/deb", "1", cls.deb, {"Cmd": ["/bin/sh"]})
        cls.reg.push_image("t/alpine", "1", cls.alp, {"Cmd": ["/bin/sh"], "User": "app"}, docker=True)
        cls.osv = os.path.join(cls.tmp, "osv")
        os.makedirs(cls.osv)
        for rec, _ in FEED:
            with open(os.path.join(cls.osv, rec["id"] + ".json"), "w") as f:
                json.dump(rec, f)
        cls.feed = os.path.join(cls.tmp, "feed")

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def muster(self, *args, rc=0):
        p = subprocess.run([MUSTER] + list(args), capture_output=True, text=True, env=self.env, timeout=120)
        if rc is not None and p.returncode != rc:
            self.fail("muster %s: rc %d (want %d)\nstdout: %s\nstderr: %s" % (" ".join(args), p.returncode, rc,
                                                                              p.stdout, p.stderr))
        self.assertNotIn("ERROR: AddressSanitizer", p.stderr)
        self.assertNotIn("LeakSanitizer", p.stderr)
        return p

    def import_feed(self):
        p = self.muster("image", "feed", "update", self.osv, "--feed-dir", self.feed)
        self.assertIn("imported %d records" % len(FEED), p.stdout)
        return p

    def scan_json(self, ref, *extra, rc=0):
        p = self.muster("image", "scan", ref, "--insecure", "--feed", self.feed, "-o", "json",
                        "--store", os.path.join(self.tmp, "store"), "--cache-dir", os.path.join(self.tmp, "cache"),
                        *extra, rc=rc)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(lines[0]["kind"], "imageScan")
        for l in lines:
            self.assertEqual(l["schema"], 1)
        summary = lines[0]
        findings = [l for l in lines if l["kind"] == "finding"]
        risks = [l for l in lines if l["kind"] == "risk"]
        self.assertEqual(summary["findingCount"], len(findings))
        return summary, findings, risks

    def test_1_debian_image_from_registry(self):
        self.import_feed()
        ref = "%s/t/deb:1" % self.reg.host
        summary, findings, risks = self.scan_json(ref)
        self.assertFalse(summary["cached"])
        self.assertEqual(summary["os"]["id"], "debian")
        self.assertEqual(summary["os"]["versionId"], "12")
        # dpkg: 8 installed in status (oldtool is not) + base-files from status.d; hiddenpkg whited out
        self.assertEqual(summary["packages"], {"dpkg": 9, "apk": 0, "python": 4, "total": 13})
        got = {(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings}
        self.assertEqual(got, expected(["Debian", "PyPI"]))
        ssl = [f for f in findings if f["id"] == "DSA-5001-1"][0]
        self.assertEqual(ssl["source"], "openssl")
        self.assertEqual(ssl["installedVersion"], "3.0.11-1~deb12u2")
        self.assertEqual(ssl["aliases"], ["CVE-2024-0727"])
        bash = [f for f in findings if f["id"] == "DLA-3001-1"][0]
        self.assertEqual((bash["installedVersion"], bash["sourceVersion"]), ("5.2.15-2+b2", "5.2.15-2"))
        # findings come most severe first
        order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
        self.assertEqual([f["severity"] for f in findings], sorted((f["severity"] for f in findings), key=order.index))
        self.assertEqual(summary["counts"]["critical"], 1)
        kinds = {(r["riskKind"], r["path"]) for r in risks}
        self.assertEqual(kinds, {("setuid", "usr/bin/passwd"), ("secret", "root/.ssh/id_ed25519"),
                                 ("secret", "app/deploy.key"), ("world-writable-dir", "srv"), ("root-user", "")})
        # the second scan of the same digest with the same feed is served from the cache
        again, findings2, _ = self.scan_json(ref)
        self.assertTrue(again["cached"])
        self.assertEqual(again["digest"], summary["digest"])
        self.assertEqual({f["id"] for f in findings2}, {f["id"] for f in findings})
        # --fail-on: 3 when a finding is at or above it
        self.scan_json(ref, "--fail-on", "critical", rc=3)
        self.scan_json(ref, "--fail-on", "CRITICAL", "--no-cache", rc=3)
        # text output: grouped by severity, fixed-in shown
        p = self.muster("image", "scan", ref, "--insecure", "--feed", self.feed, "--store",
                        os.path.join(self.tmp, "store"), "--cache-dir", os.path.join(self.tmp, "cache"))
        self.assertIn("CRITICAL (1)", p.stdout)
        self.assertIn("libssl3 (openssl)", p.stdout)
        self.assertIn("3.0.13-1~deb12u1", p.stdout)
        self.assertIn("DSA-5001-1 (CVE-2024-0727)", p.stdout)
        self.assertIn("(no fix yet)", p.stdout)
        self.assertIn("/usr/bin/passwd", p.stdout)
        self.assertNotIn("hiddenpkg", p.stdout)
        self.assertNotIn("oldlib", p.stdout)
        self.assertNotIn(".env", p.stdout)

    def test_2_alpine_image_three_sources(self):
        self.import_feed()
        want = expected(["Alpine"])
        ref = "%s/t/alpine:1" % self.reg.host
        summary, findings, risks = self.scan_json(ref)
        self.assertEqual(summary["os"]["versionId"], "3.19.1")
        self.assertEqual(summary["packages"]["apk"], 4)
        self.assertEqual({(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings}, want)
        self.assertEqual({r["riskKind"] for r in risks}, {"setuid"})  # user app: no root-user fact
        layout = os.path.join(self.tmp, "layout")
        write_layout(layout, self.alp, {"User": "app"})
        summary, findings, _ = self.scan_json(layout)
        self.assertEqual({(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings}, want)
        oci_tar = os.path.join(self.tmp, "alpine-oci.tar")
        with tarfile.open(oci_tar, "w") as t:
            for name in ("index.json", "oci-layout", "blobs"):
                t.add(os.path.join(layout, name), arcname=name)
        summary, findings, _ = self.scan_json(oci_tar)
        self.assertEqual({(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings}, want)
        tar = os.path.join(self.tmp, "alpine.tar")
        write_docker_save(tar, self.alp, {"User": "app"})
        summary, findings, _ = self.scan_json("docker-archive:%s:t/alpine:1" % tar)
        self.assertEqual({(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings}, want)
        summary, findings, _ = self.scan_json(tar)
        self.assertEqual(len(findings), len(want))

    def test_3_hostile_feed(self):
        self.import_feed()
        p = self.muster("image", "feed", "show", "--feed-dir", self.feed, "-o", "json")
        before = json.loads(p.stdout)
        self.assertEqual(before["kind"], "feed")
        bad = os.path.join(self.tmp, "bad")
        os.makedirs(bad, exist_ok=True)
        with open(os.path.join(bad, "huge.json"), "w") as f:
            f.write('{"id": "HUGE-1", "details": "%s"}' % ("x" * (2 << 20)))
        with open(os.path.join(bad, "broken.json"), "w") as f:
            f.write('{"id": "BROKEN-1", "affected": [')
        with open(os.path.join(bad, "badver.json"), "w") as f:
            json.dump(osv("BADVER-1", "Debian:12", "bash", [{"introduced": "0"}, {"fixed": "5.2 beta"}]), f)
        with open(os.path.join(bad, "badpy.json"), "w") as f:
            json.dump(osv("BADPY-1", "PyPI", "x", [{"introduced": "0"}, {"fixed": "not a version"}]), f)
        with open(os.path.join(bad, "new.json"), "w") as f:
            json.dump(osv("DSA-9999-1", "Debian:12", "libc6", fixed("9.0"), severity="LOW"), f)
        # --strict: nothing changes
        p = self.muster("image", "feed", "update", bad, "--feed-dir", self.feed, "--strict", rc=2)
        self.assertIn("huge.json: over the 1048576-byte record bound", p.stderr)
        self.assertIn("nothing imported (--strict)", p.stderr)
        after = json.loads(self.muster("image", "feed", "show", "--feed-dir", self.feed, "-o", "json").stdout)
        self.assertEqual(after["feedVersion"], before["feedVersion"])
        # default: the bad ones named and refused, the good one imported, the old ones kept
        p = self.muster("image", "feed", "update", bad, "--feed-dir", self.feed, rc=1)
        for needle in ("huge.json: over the 1048576-byte record bound (--max-record-bytes)",
                       "broken.json: not JSON",
                       'badver.json: record BADVER-1: affected[0].ranges[0]: fixed "5.2 beta" is not a valid Debian',
                       'badpy.json: record BADPY-1: affected[0].ranges[0]: fixed "not a version" is not a valid PyPI'):
            self.assertIn(needle, p.stderr)
        self.assertIn("refused 4 records", p.stdout)
        after = json.loads(self.muster("image", "feed", "show", "--feed-dir", self.feed, "-o", "json").stdout)
        self.assertEqual(after["records"], before["records"] + 1)
        # the record bound refuses the whole update
        p = self.muster("image", "feed", "update", self.osv, "--feed-dir", os.path.join(self.tmp, "small"),
                        "--max-records", "3", rc=2)
        self.assertIn("more than 3 records", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "small", "current")))
        # a scan with the grown feed sees the new record; the cache key changed with the version
        summary, findings, _ = self.scan_json("%s/t/deb:1" % self.reg.host)
        self.assertFalse(summary["cached"])
        self.assertIn("DSA-9999-1", {f["id"] for f in findings})

    def test_4_bad_input(self):
        p = self.muster("image", "scan", "/no/such.tar", rc=2)
        self.assertIn("/no/such.tar", p.stderr)
        p = self.muster("image", "scan", "registry.example.com/x:1", "--insecure", rc=2)
        self.assertIn("loopback registries only", p.stderr)
        p = self.muster("image", "scan", "%s/t/none:1" % self.reg.host, "--insecure", "--store",
                        os.path.join(self.tmp, "store"), rc=2)
        self.assertIn("404", p.stderr)
        self.muster("image", "scan", "x", "--fail-on", "bad", rc=2)
        self.muster("image", "scan", "--feed", "/no/such/feed", "%s/t/deb:1" % self.reg.host, "--insecure", rc=2)
        junk = os.path.join(self.tmp, "junk.tar")
        with open(junk, "wb") as f:
            f.write(b"not a tar" * 100)
        p = self.muster("image", "scan", junk, rc=2)
        self.assertIn("not a tar archive", p.stderr)
        # the blob store stays under --store-max-bytes; the image just scanned is kept
        store = os.path.join(self.tmp, "capped")
        for ref in ("%s/t/alpine:1" % self.reg.host, "%s/t/deb:1" % self.reg.host):
            self.muster("image", "scan", ref, "--insecure", "--store", store, "--no-cache", "--store-max-bytes", "1")
        blobs = sorted(os.listdir(os.path.join(store, "blobs", "sha256")))
        self.assertEqual(len(blobs), 4, blobs)  # t/deb:1: manifest, config, 2 layers
        self.muster("image", "scan", "%s/t/deb:1" % self.reg.host, "--insecure", "--store", store, "--no-cache",
                    "--store-max-bytes", "1")
        # no feed at all: inventory and risky facts only
        summary, findings, risks = self.scan_json("%s/t/deb:1" % self.reg.host, "--feed", self.osv)
        self.assertEqual({(f["package"], f["id"], f["fixedIn"], f["severity"]) for f in findings},
                         expected(["Debian", "PyPI"]))  # a raw OSV directory works as a feed too
        p = self.muster("image", "scan", "%s/t/deb:1" % self.reg.host, "--insecure", "-o", "json", "--store",
                        os.path.join(self.tmp, "store"))
        summary = json.loads(p.stdout.splitlines()[0])
        self.assertEqual(summary["feedVersion"], "none")
        self.assertEqual(summary["findingCount"], 0)
        self.assertEqual(summary["riskCount"], 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
