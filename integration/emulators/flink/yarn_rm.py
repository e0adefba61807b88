#!/usr/bin/python3
"""An emulator of the YARN ResourceManager REST API (hadoop ResourceManagerRest.md, the calls
/work/shared/notes/spark-flink-protocols.md section 2.4 names) for Muster's Flink tests, with
the RM's part in running a Flink application cluster: it launches the application's JobManager
(jobmanager.py --application, as the RM launches the AM container) and proxies to it.

    yarn_rm.py [--port-file F]          prints "PORT <n>"

  POST /ws/v1/cluster/apps/new-application   {"application-id": "application_<ts>_<n>", ...}
  POST /ws/v1/cluster/apps                   submit {"application-id", "application-name", "queue",
                                             "application-type", "flink-job": {...}} -> 202; the JobManager
                                             starts and runs flink-job (the emulated AM's payload)
  GET  /ws/v1/cluster/apps/{id}              {"app": {id, name, queue, state, finalStatus, trackingUrl, ...}}
                                             state NEW|ACCEPTED|RUNNING|FINISHED|FAILED|KILLED,
                                             finalStatus UNDEFINED|SUCCEEDED|FAILED|KILLED
  PUT  /ws/v1/cluster/apps/{id}/state        {"state": "KILLED"} kills the application
  ANY  /proxy/{id}/...                       forwarded to the application's JobManager while it runs
Unknown apps get 404 with YARN's RemoteException body. Test controls: GET /emulator/state,
POST /emulator/apps/{id}/finish {"finalStatus"} (the application's JobManager reports its end).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
MU = threading.Lock()
CLUSTER_TS = int(time.time() * 1000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, raw=None, ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def not_found(self, app_id):
        return self.reply(404, {"RemoteException": {
            "exception": "NotFoundException", "message": "java.lang.Exception: app with id: %s not found" % app_id,
            "javaClassName": "org.apache.hadoop.yarn.webapp.NotFoundException"}})

    def route(self, method):
        srv = self.server
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        raw = self.body()
        if parts[:1] == ["proxy"] and len(parts) >= 2:
            return self.proxy(method, parts[1], raw)
        if parts[:4] == ["ws", "v1", "cluster", "apps"]:
            rest = parts[4:]
            if method == "POST" and rest == ["new-application"]:
                with MU:
                    srv.seq += 1
                    app_id = "application_%d_%04d" % (CLUSTER_TS, srv.seq)
                return self.reply(200, {"application-id": app_id, "maximum-resource-capability":
                                        {"memory": 8192, "vCores": 4}})
            if method == "POST" and rest == []:
                return self.submit(json.loads(raw or b"{}"))
            if len(rest) >= 1:
                with MU:
                    app = srv.apps.get(rest[0])
                if app is None:
                    return self.not_found(rest[0])
                if method == "GET" and len(rest) == 1:
                    return self.reply(200, {"app": self.app_json(app)})
                if method == "PUT" and rest[1:] == ["state"]:
                    want = json.loads(raw or b"{}").get("state")
                    if want == "KILLED":
                        self.finish(app, "KILLED")
                        if app.get("proc") is not None and app["proc"].poll() is None:
                            app["proc"].terminate()
                    return self.reply(202, {"state": app["state"]})
        if parts[:1] == ["emulator"]:
            if method == "GET" and parts[1:] == ["state"]:
                with MU:
                    return self.reply(200, {"apps": {k: self.app_json(v) for k, v in srv.apps.items()}})
            if method == "POST" and len(parts) == 4 and parts[1] == "apps" and parts[3] == "finish":
                with MU:
                    app = srv.apps.get(parts[2])
                if app is None:
                    return self.not_found(parts[2])
                self.finish(app, json.loads(raw or b"{}").get("finalStatus", "SUCCEEDED"))
                return self.reply(200, {})
        self.reply(404, {"RemoteException": {"exception": "NotFoundException", "message": "no such resource"}})

    def app_json(self, app):
        return {"id": app["id"], "user": "flink", "name": app["name"], "queue": app["queue"],
                "state": app["state"], "finalStatus": app["finalStatus"], "progress": 100.0 if
                app["state"] in ("FINISHED", "FAILED", "KILLED") else 50.0, "trackingUI": "ApplicationMaster",
                "trackingUrl": "http://127.0.0.1:%d/proxy/%s/" % (self.server.server_port, app["id"]),
                "applicationType": app["type"], "startedTime": app["started"], "finishedTime": app["finished"],
                "amHostHttpAddress": app.get("jm_addr", "")}

    def finish(self, app, final):
        with MU:
            if app["state"] in ("FINISHED", "FAILED", "KILLED"):
                return
            app["finalStatus"] = final
            app["state"] = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}.get(final, "FINISHED")
            app["finished"] = int(time.time() * 1000)

    def submit(self, req):
        srv = self.server
        app_id = req.get("application-id")
        if not app_id:
            return self.reply(400, {"RemoteException": {"exception": "BadRequestException",
                                                        "message": "application-id missing"}})
        app = {"id": app_id, "name": req.get("application-name", "Flink Application Cluster"),
               "queue": req.get("queue", "default"), "type": req.get("application-type", "Apache Flink"),
               "state": "ACCEPTED", "finalStatus": "UNDEFINED", "started": int(time.time() * 1000),
               "finished": 0, "proc": None}
        with MU:
            srv.apps[app_id] = app
        # the AM: an application-mode JobManager that runs the one job and ends with it
        port_file = os.path.join(srv.workdir, app_id + ".port")
        log = open(os.path.join(srv.workdir, app_id + ".log"), "ab")
        app["proc"] = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "jobmanager.py"), "--application", "--port-file", port_file,
             "--rm", "http://127.0.0.1:%d" % srv.server_port, "--app-id", app_id,
             "--savepoint-polls", "1"] +
            ([] if (req.get("flink-job") or {}).get("shutdownOnApplicationFinish", True) else ["--keep-after-finish"]),
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(port_file):
            self.finish(app, "FAILED")
            return self.reply(500, {"RemoteException": {"exception": "YarnException",
                                                        "message": "the ApplicationMaster did not start"}})
        port = int(open(port_file).read())
        app["jm_addr"] = "127.0.0.1:%d" % port
        job = req.get("flink-job") or {}
        try:
            r = urllib.request.Request("http://%s/emulator/submit" % app["jm_addr"], data=json.dumps(job).encode(),
                                       method="POST", headers={"Content-Type": "application/json"})
            urllib.request.urlopen(r, timeout=5).read()
        except urllib.error.HTTPError as e:
            app["error"] = e.read().decode(errors="replace")
        with MU:
            app["state"] = "RUNNING"
        return self.reply(202, {"application-id": app_id, "jobmanager": app["jm_addr"], "error": app.get("error")})

    def proxy(self, method, app_id, raw):
        with MU:
            app = self.server.apps.get(app_id)
        if app is None:
            return self.not_found(app_id)
        if app["state"] != "RUNNING" or "jm_addr" not in app:
            return self.reply(503, None, raw=b"Application %s is not running (state %s)" % (
                app_id.encode(), app["state"].encode()), ctype="text/plain")
        rest = self.path.split("/proxy/%s" % app_id, 1)[1] or "/"
        req = urllib.request.Request("http://%s%s" % (app["jm_addr"], rest), data=raw if raw else None,
                                     method=method, headers={"Content-Type": self.headers.get(
                                         "Content-Type", "application/json")})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return self.reply(r.status, None, raw=r.read())
        except urllib.error.HTTPError as e:
            return self.reply(e.code, None, raw=e.read())
        except OSError as e:
            return self.reply(503, None, raw=("proxy: %s" % e).encode(), ctype="text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, workdir):
        super().__init__(addr, Handler)
        self.apps = {}
        self.seq = 0
        self.workdir = workdir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp"))
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), args.workdir)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    for app in srv.apps.values():
        if app.get("proc") is not None and app["proc"].poll() is None:
            app["proc"].terminate()
            app["proc"].wait(5)
    srv.server_close()


if __name__ == "__main__":
    main()
