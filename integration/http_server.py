#!/usr/bin/python3
"""A loopback HTTP(S) server for the HTTP task type's tests and bench (plugins/http).

Prints "PORTS <http> <https>" (https is 0 without --tls-cert) once listening on port 0.
Endpoints:
  /echo                 method, path, query, headers and body as JSON (any method)
  /status/N             status N
  /flaky/KEY?fail=2&status=503&retry_after=1   `fail` times status (+Retry-After), then 200
  /redirect/N           302 to /redirect/N-1 ... /redirect/0 answers 200;  /loop redirects forever
  /trickle?bytes=N&every_ms=M   N bytes, one each M ms
  /huge?size=N[&length=1]       N zero bytes (with Content-Length when length=1)
  /hang                 never answers
  /slow?ms=N            answers 200 after N ms;  /stats[?reset=1]  {"max_inflight": most /slow at once}
  /basic                200 for alice:s3cret-pw, else 401;  /bearer  200 for tok-12345-secret
  /json                 a fixed JSON document with header X-Request-Id
  /xml                  a fixed XML document (a build report) for the XPath checks
  /clientcert           (TLS) 200 with the client certificate's CN, else 401
Requests with an absolute URL (through a proxy) get the echo with "proxied": true.
"""
import argparse
import json

XML_DOC = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<report xmlns:m="urn:muster"><status>ok</status><build id="b-42" version="2.4.1">'
           '<step name="compile" ok="true"/><step name="test" ok="false"/></build>'
           '<m:owner>ops</m:owner></report>\n')
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {}
COUNTS_MU = threading.Lock()
INFLIGHT = {"now": 0, "max": 0}
DOC = {"status": "ok", "version": "2.4.1", "count": 2, "ok": True,
       "items": [{"id": 7, "name": "first"}, {"id": 8, "name": "second"}],
       "nested": {"a": {"b": "deep"}}, "echo-me": "x"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", ctype="text/plain", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        path, q = url.path, urllib.parse.parse_qs(url.query)
        arg = lambda k, d: q.get(k, [d])[0]
        if self.path.startswith("http://"):
            return self.echo(body, url, proxied=True)
        parts = path.strip("/").split("/")
        if path == "/echo":
            return self.echo(body, url)
        if parts[0] == "status" and len(parts) == 2:
            return self.send(int(parts[1]), "status %s\n" % parts[1])
        if parts[0] == "flaky" and len(parts) == 2:
            with COUNTS_MU:
                COUNTS[parts[1]] = COUNTS.get(parts[1], 0) + 1
                n = COUNTS[parts[1]]
            if n <= int(arg("fail", "2")):
                h = {"Retry-After": arg("retry_after", "1")} if arg("retry_after", "") else {}
                return self.send(int(arg("status", "503")), "busy %d\n" % n, headers=h)
            return self.send(200, json.dumps({"attempts": n}), "application/json")
        if parts[0] == "redirect" and len(parts) == 2:
            n = int(parts[1])
            if n <= 0:
                return self.send(200, "landed\n")
            return self.send(302, "", headers={"Location": "/redirect/%d" % (n - 1)})
        if path == "/loop":
            return self.send(302, "", headers={"Location": "/loop"})
        if path == "/trickle":
            n, every = int(arg("bytes", "100")), int(arg("every_ms", "200"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(every / 1000.0)
            except OSError:
                pass
            return
        if path == "/huge":
            size = int(arg("size", str(10 << 30)))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if arg("length", "0") == "1":
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                while size > 0:
                    self.wfile.write(chunk[:min(size, len(chunk))])
                    size -= len(chunk)
            except OSError:
                pass
            return
        if path == "/hang":
            time.sleep(3600)
            return
        if path == "/slow":
            with COUNTS_MU:
                INFLIGHT["now"] += 1
                INFLIGHT["max"] = max(INFLIGHT["max"], INFLIGHT["now"])
            time.sleep(int(arg("ms", "100")) / 1000.0)
            with COUNTS_MU:
                INFLIGHT["now"] -= 1
            return self.send(200, "slow done\n")
        if path == "/stats":
            with COUNTS_MU:
                doc = {"max_inflight": INFLIGHT["max"]}
                if arg("reset", "0") == "1":
                    INFLIGHT["max"] = INFLIGHT["now"]
            return self.send(200, json.dumps(doc), "application/json")
        if path == "/basic":
            ok = self.headers.get("Authorization") == "Basic YWxpY2U6czNjcmV0LXB3"  # alice:s3cret-pw
            return self.send(200 if ok else 401, json.dumps({"user": "alice" if ok else None}), "application/json")
        if path == "/bearer":
            ok = self.headers.get("Authorization") == "Bearer tok-12345-secret"
            return self.send(200 if ok else 401, "bearer %s\n" % ("ok" if ok else "refused"))
        if path == "/json":
            return self.send(200, json.dumps(DOC), "application/json", {"X-Request-Id": "abc-123"})
        if path == "/xml":
            return self.send(200, XML_DOC, "application/xml")
        if path == "/clientcert":
            cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
            if not cert:
                return self.send(401, "no client certificate\n")
            cn = dict(x[0] for x in cert["subject"]).get("commonName", "")
            return self.send(200, json.dumps({"cn": cn}), "application/json")
        return self.send(404, "not found: %s\n" % path)

    def echo(self, body, url, proxied=False):
        doc = {"method": self.command, "path": url.path, "query": urllib.parse.parse_qs(url.query),
               "headers": {k: v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace"), "proxied": proxied}
        self.send(200, json.dumps(doc), "application/json", {"X-Echo": "yes"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # clients that drop TLS handshakes or aborted bodies on purpose


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-ca", help="CA for optional client certificates")
    a = ap.parse_args()
    plain = Server(("127.0.0.1", 0), Handler)
    servers = [plain]
    tls_port = 0
    if a.tls_cert:
        tls = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.tls_ca:
            ctx.load_verify_locations(a.tls_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(tls)
        tls_port = tls.server_address[1]
    print("PORTS %d %d" % (plain.server_address[1], tls_port), flush=True)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        plain.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
