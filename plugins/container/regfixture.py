"""Test fixture for the container task type: a loopback Debian `docker-registry` (and the
token server of ../shared/notes/container-fixtures), and images built here from local files
(busybox-static) and pushed with the registry v2 upload API. No network beyond loopback."""
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "cat", "echo", "id", "ls", "mount", "chroot", "touch", "mkdir", "sleep", "hostname", "grep",
           "wc", "head", "dd", "true", "false", "rm", "ln", "stat", "readlink", "nc", "ip", "ps", "env", "pwd", "tr"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Layer:
    """A tar layer built from (name, kind, data/target, mode, extra) entries."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, ti, data=None):
        ti.mtime = 1700000000
        self.tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        return self

    def dir(self, name, mode=0o755):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        return self._add(ti)

    def file(self, name, data, mode=0o644, uid=0, gid=0):
        if isinstance(data, str):
            data = data.encode()
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        return self._add(ti, data)

    def symlink(self, name, target):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.SYMTYPE
        ti.linkname = target
        return self._add(ti)

    def hardlink(self, name, target):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.LNKTYPE
        ti.linkname = target
        return self._add(ti)

    def device(self, name, major=1, minor=3):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.CHRTYPE
        ti.devmajor, ti.devminor = major, minor
        ti.mode = 0o666
        return self._add(ti)

    def raw(self):
        self.tar.close()
        return self.buf.getvalue()


def busybox_layer(extra=None):
    lay = Layer().dir("bin").dir("etc").dir("tmp", 0o1777).dir("w")
    with open(BUSYBOX, "rb") as f:
        lay.file("bin/busybox", f.read(), 0o755)
    for a in APPLETS:
        lay.symlink("bin/" + a, "busybox")
    lay.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\napp:x:1000:1000::/w:/bin/sh\n")
    lay.file("etc/group", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")
    if extra:
        extra(lay)
    return lay.raw()


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        p = subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True)
        return p.stdout, "application/vnd.oci.image.layer.v1.tar+zstd"
    return raw, "application/vnd.oci.image.layer.v1.tar"


class Registry:
    def __init__(self, token=False, access_log=False):
        """access_log: keep the registry's access log (one line per request) for access_lines()."""
        self.dir = tempfile.mkdtemp(prefix="ctr-reg.")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.host = "127.0.0.1:%d" % self.port
        self.token_proc = None
        auth = ""
        if token:
            self.token_port = free_port()
            self._make_cert()
            auth = ("auth: {token: {realm: http://127.0.0.1:%d/token, service: muster-test-registry, "
                    "issuer: test-issuer, rootcertbundle: %s/cert.pem}}\n" % (self.token_port, self.dir))
            srv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokensrv.py")
            self.token_proc = subprocess.Popen(["/usr/bin/python3", srv, str(self.token_port)], cwd=self.dir,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "reg.yml"), "w") as f:
            f.write("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\n"
                    "http: {addr: 127.0.0.1:%d}\n%s" % (self.dir, self.port, auth))
        self.log_path = os.path.join(self.dir, "access.log")
        out = open(self.log_path, "ab") if access_log else subprocess.DEVNULL
        self.proc = subprocess.Popen(["docker-registry", "serve", os.path.join(self.dir, "reg.yml")],
                                     stdout=out, stderr=subprocess.DEVNULL)
        if access_log:
            out.close()
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except Exception:
                time.sleep(0.1)
        self.auth_header = None
        if token:
            for _ in range(50):
                try:
                    urllib.request.urlopen("http://127.0.0.1:%d/token" % self.token_port, timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)

    def _make_cert(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", os.path.join(self.dir, "key.pem"), "-out", os.path.join(self.dir, "cert.pem"),
                        "-days", "2", "-subj", "/CN=token"], check=True, capture_output=True)

    def login_push(self, repo):
        """For a token registry: a push token (the token server grants any scope to muster:secret)."""
        q = "service=muster-test-registry&scope=repository:%s:pull,push" % repo
        req = urllib.request.Request("http://127.0.0.1:%d/token?%s" % (self.token_port, q))
        req.add_header("Authorization", "Basic " + base64.b64encode(b"muster:secret").decode())
        tok = json.load(urllib.request.urlopen(req))["token"]
        self.auth_header = "Bearer " + tok

    def access_lines(self):
        """The access log so far: ["GET /v2/t/run/manifests/1", ...] (method and path)."""
        time.sleep(0.2)  # the registry writes each line after answering
        with open(self.log_path, errors="replace") as f:
            lines = []
            for line in f:
                q = line.split('"')
                if len(q) > 1 and " " in q[1]:
                    lines.append(" ".join(q[1].split(" ")[:2]))
            return lines

    def blob_gets(self, repo):
        """Digests of the blobs GET in repo so far (HEADs not counted)."""
        pre = "GET /v2/%s/blobs/" % repo
        return [l[len(pre):] for l in self.access_lines() if l.startswith(pre)]

    def close(self):
        for p in (self.proc, self.token_proc):
            if p is not None:
                p.terminate()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _req(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url if url.startswith("http") else self.url + url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if self.auth_header:
            req.add_header("Authorization", self.auth_header)
        return urllib.request.urlopen(req)

    def push_blob(self, repo, data):
        d = sha(data)
        r = self._req("POST", "/v2/%s/blobs/uploads/" % repo)
        loc = r.headers["Location"]
        loc = loc if loc.startswith("http") else self.url + loc
        sep = "&" if "?" in loc else "?"
        self._req("PUT", loc + sep + "digest=" + d, data, {"Content-Type": "application/octet-stream"})
        return d

    def push_manifest(self, repo, ref, body, media_type):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self._req("PUT", "/v2/%s/manifests/%s" % (repo, ref), body, {"Content-Type": media_type})
        return sha(body), len(body)

    def push_image(self, repo, tag, layers, config=None, arch="amd64", docker=False, compression="gzip",
                   diff_ids=None):
        """layers: raw tars; diff_ids: the config's, when not their digests. Returns (manifest
        digest, manifest size)."""
        descs, diff = [], []
        for raw in layers:
            blob, mt = compress(raw, compression)
            if docker:
                mt = "application/vnd.docker.image.rootfs.diff.tar.gzip"
            descs.append({"mediaType": mt, "digest": self.push_blob(repo, blob), "size": len(blob)})
            diff.append(sha(raw))
        cfg = {"architecture": arch, "os": "linux", "config": config or {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids if diff_ids is not None else diff}}
        cb = json.dumps(cfg).encode()
        cmt = "application/vnd.docker.container.image.v1+json" if docker else "application/vnd.oci.image.config.v1+json"
        man = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
               "config": {"mediaType": cmt, "digest": self.push_blob(repo, cb), "size": len(cb)}, "layers": descs}
        return self.push_manifest(repo, tag, man, DOCKER_MANIFEST if docker else OCI_MANIFEST)

    def push_index(self, repo, tag, entries):
        """entries: (digest, size, arch, variant)."""
        idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            dict({"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": dict({"os": "linux", "architecture": a},
                                                                                      **({"variant": v} if v else {}))})
            for d, s, a, v in entries]}
        return self.push_manifest(repo, tag, idx, OCI_INDEX)


VIEWS = []


def image_view(rootfs, parent=None):
    """The tree a container of a stored image sees: the store's rootfs dir itself (a merged
    copy), or, for an image stored as per-layer dirs (.muster-layers, layers.h), its layers
    stacked with overlayfs (over a scratch upper layer, so runc can make its mount points) at
    a temporary mount point under parent; unmount_views() removes them."""
    lst = os.path.join(rootfs, ".muster-layers")
    if not os.path.exists(lst):
        return rootfs
    store = rootfs.rsplit("/rootfs/", 1)[0]
    with open(lst) as f:
        lowers = [os.path.join(store, l) for l in f.read().split()]
    scratch = tempfile.mkdtemp(prefix="view.", dir=parent)
    for d in ("upper", "work", "mnt"):
        os.mkdir(os.path.join(scratch, d))
    mnt = os.path.join(scratch, "mnt")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s/upper,workdir=%s/work" %
                    (":".join(reversed(lowers)), scratch, scratch), mnt], check=True)
    VIEWS.append(mnt)
    return mnt


def unmount_views():
    while VIEWS:
        subprocess.run(["umount", "-l", VIEWS.pop()], check=False)


def run_image_config():
    return {"Entrypoint": ["/bin/cat"], "Cmd": ["/hello.txt"], "Env": ["A=1", "PATH=/bin"], "WorkingDir": "/w", "User": "app"}


def push_run_image(reg, repo="t/run", tag="1"):
    """The image the plugin and end-to-end tests run: busybox, /hello.txt, user app."""
    return reg.push_image(repo, tag, [busybox_layer(lambda l: l.file("hello.txt", "hello from the image\n"))],
                          run_image_config())


if __name__ == "__main__":
    # serve: start a loopback registry with the run image pushed as t/run:1, print its
    # "host:port", and stop when stdin closes (for tests in other languages).
    import sys
    r = Registry()
    try:
        push_run_image(r)
        print(r.host, flush=True)
        sys.stdin.read()
    finally:
        r.close()
