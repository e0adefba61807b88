"""A small in-memory OCI distribution 1.1 registry for tests (loopback only): blobs (monolithic
upload, cross-repository mount), manifests by tag and digest, and the referrers API that
Debian's docker-registry 2.8 lacks. Every request is recorded in `log` as "METHOD /path?query"."""
import hashlib
import json
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INDEX = "application/vnd.oci.image.index.v1+json"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class OciRegistry:
    def __init__(self):
        self.blobs, self.manifests, self.tags, self.uploads, self.log = {}, {}, {}, {}, []
        self.lock = threading.Lock()
        reg = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                reg.handle(self, "GET")

            def do_HEAD(self):
                reg.handle(self, "HEAD")

            def do_PUT(self):
                reg.handle(self, "PUT")

            def do_POST(self):
                reg.handle(self, "POST")

            def do_DELETE(self):
                reg.handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self.url = "http://" + self.host
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reply(self, h, method, code, body=b"", headers=None):
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method != "HEAD" and body:
            h.wfile.write(body)

    def handle(self, h, method):
        u = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(u.query)
        with self.lock:
            self.log.append("%s %s" % (method, h.path))
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method in ("PUT", "POST") else b""
        p = u.path
        if p == "/v2/":
            return self.reply(h, method, 200, b"{}")
        for kind in ("/blobs/uploads/", "/blobs/", "/manifests/", "/referrers/"):
            if kind in p:
                repo, _, rest = p[4:].partition(kind)
                return getattr(self, "on_" + kind.strip("/").replace("/", "_"))(h, method, repo, rest, q, body)
        return self.reply(h, method, 404)

    def on_blobs_uploads(self, h, method, repo, rest, q, body):
        if method == "POST":
            d = q.get("mount", [""])[0]
            if d and d in self.blobs:
                return self.reply(h, method, 201, headers={"Location": "/v2/%s/blobs/%s" % (repo, d)})
            uid = str(uuid.uuid4())
            return self.reply(h, method, 202, headers={"Location": "/v2/%s/blobs/uploads/%s" % (repo, uid)})
        d = q.get("digest", [""])[0]
        if sha(body) != d:
            return self.reply(h, method, 400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
        self.blobs[d] = body
        return self.reply(h, method, 201, headers={"Docker-Content-Digest": d})

    def on_blobs(self, h, method, repo, rest, q, body):
        if rest not in self.blobs:
            return self.reply(h, method, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        return self.reply(h, method, 200, self.blobs[rest], {"Docker-Content-Digest": rest})

    def on_manifests(self, h, method, repo, ref, q, body):
        key = (repo, ref) if ref.startswith("sha256:") else self.tags.get((repo, ref))
        if method == "PUT":
            d = sha(body)
            self.manifests[(repo, d)] = (body, h.headers.get("Content-Type", ""))
            if not ref.startswith("sha256:"):
                self.tags[(repo, ref)] = (repo, d)
            headers = {"Docker-Content-Digest": d, "Location": "/v2/%s/manifests/%s" % (repo, d)}
            if "subject" in json.loads(body):
                headers["OCI-Subject"] = json.loads(body)["subject"]["digest"]
            return self.reply(h, method, 201, headers=headers)
        if key not in self.manifests:
            return self.reply(h, method, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        b, ct = self.manifests[key]
        return self.reply(h, method, 200, b, {"Content-Type": ct, "Docker-Content-Digest": sha(b)})

    def on_referrers(self, h, method, repo, digest, q, body):
        want = q.get("artifactType", [None])[0]
        out = []
        for (r, d), (b, ct) in list(self.manifests.items()):
            m = json.loads(b)
            if r != repo or m.get("subject", {}).get("digest") != digest:
                continue
            at = m.get("artifactType") or m.get("config", {}).get("mediaType")
            if want is None or at == want:
                out.append({"mediaType": m.get("mediaType", ct), "digest": d, "size": len(b), "artifactType": at})
        idx = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": out}).encode()
        return self.reply(h, method, 200, idx, {"Content-Type": INDEX, "OCI-Filters-Applied": "artifactType"})
