#!/usr/bin/env python3
"""Emulators of the Spark cluster managers' documented REST protocols, for tests of the spark
task type (plugins/spark) on a machine with no Spark, YARN or JVM. Python 3 stdlib only.

What is emulated (from ../shared/notes/spark-flink-protocols.md, which cites the sources):
- the YARN ResourceManager REST API: GET /ws/v1/cluster/apps/{id}, GET /ws/v1/cluster/apps
  (states, applicationTags, queue, limit filters), GET/PUT /ws/v1/cluster/apps/{id}/state
  (kill: 202 with the current state and a Location header until the kill completes, then 200
  {"state":"KILLED"}; 400 BadRequestException for a target other than KILLED; 200 with the
  final state for an application that already ended), the 404 NotFoundException body, the
  state ladder NEW_SAVING/SUBMITTED/ACCEPTED/RUNNING/FINISHED|FAILED|KILLED with finalStatus
  UNDEFINED/SUCCEEDED/FAILED/KILLED (FINISHED+FAILED included), an application that never
  leaves ACCEPTED, and a standby RM answering 307 with a Location and "This is standby RM.
  The redirect url is: ...";
- the Spark standalone master's REST submission server: POST /v1/submissions/create,
  GET /v1/submissions/status/{id}, POST /v1/submissions/kill/{id} (asynchronous for a running
  driver), driver ids driver-yyyyMMddHHmmss-NNNN, driverState SUBMITTED/RUNNING/FINISHED/
  FAILED/ERROR/KILLED, success:false for unknown or finished drivers, STANDBY refusals, 400
  ErrorResponse for a malformed request, 468 for an unknown protocol version;
- the Spark monitoring API's /api/v1/applications/{id}/jobs (numTasks, numCompletedTasks);
- Kubernetes driver pods: the fake spark-submit creates, describes and deletes them through
  /_emu/k8s/... (where the real one speaks to the API server through fabric8): pod name
  <app name>-<16 hex>-driver, labels spark-app-selector, spark-role and the
  spark.kubernetes.driver.label.* ones, phases Pending -> Running -> Succeeded | Failed (with
  the driver container's exit code), a deletion that takes the grace period (kill delay);
  and the Kubernetes API server's subset the plugin itself uses, on its own port (https with
  --k8s-cert/--k8s-key): GET /api/v1/namespaces/{ns}/pods?labelSelector=... (a v1 PodList;
  equality selectors k=v, k==v, k!=v, k, !k; 400 BadRequest for others), GET and DELETE
  /api/v1/namespaces/{ns}/pods/{name} (a v1 Pod with metadata.labels, deletionTimestamp once
  deleting, status.phase and the driver container's state; a deleted pod is 404), bearer token
  auth (--k8s-token; 401 Status "Unauthorized" otherwise), 403 Forbidden Status for namespaces
  in faults.k8s_forbidden_namespaces, 404 NotFound Status bodies as the API server sends them,
  and k8s_fail_next (500 InternalError);
- Apache Livy's batch API (apache/livy docs/rest-api.md): POST /batches (201 with the Batch
  {id, name, owner, proxyUser, state, appId, appInfo{driverLogUrl, sparkUiUrl}, log[]}),
  GET /batches ({from, total, sessions}), GET /batches/{id}, GET /batches/{id}/state ({id,
  state}), GET /batches/{id}/log, DELETE /batches/{id} ({"msg":"deleted"}; the batch is
  shutting_down for the kill delay, then Livy forgets it: 404 {"msg":"Session 'N' not
  found."}); states starting -> running -> success | dead, and killed; ids count from 0.

How each application behaves comes from its Spark properties (real Spark ignores unknown
spark.* keys): spark.emulator.acceptSeconds (time in ACCEPTED/SUBMITTED; -1 = forever),
spark.emulator.runSeconds, spark.emulator.final (SUCCEEDED | FAILED = FINISHED+FAILED |
FAILED_STATE = state FAILED | ERROR for a standalone driver), spark.emulator.diagnostics,
spark.emulator.killDelaySeconds (how long a kill takes), spark.emulator.ignoreKill=true
(a kill that never completes); for the fake spark-submit also spark.emulator.stdout (the
program's output lines, '|'-separated) and spark.emulator.clientCrashAfterSubmit=true (the
client dies right after YARN accepted the application, the Kubernetes driver pod was created or
the standalone master created the driver, before printing its id) and
spark.emulator.clientSleepBeforeId (seconds between YARN accepting it, or the driver pod being
created, and printing the id).

Test knobs (not part of any real protocol) live under /_emu/ on the RM port: POST /_emu/faults
{"rm_fail_next": N (500s), "rm_garbage_next": N (200 with a non-JSON body), "rm_unauthorized":
bool (401 with WWW-Authenticate: Negotiate, as a Kerberos-secured RM), "rest_fail_next",
"rest_standby": bool, "livy_fail_next" (500s), "livy_hang_next" (carries the request out, then answers
after hang_ms, default 12000: an answer lost to the client's timeout), "delay_ms", "auth": {"basic": "user:password"} or {"bearer": "token"} or
{"negotiate": "client@REALM"} (SPNEGO checked with GSS-API against the service keytab in KRB5_KTNAME,
python3-gssapi; the client principals accepted are counted in stats as negotiated)
(every real endpoint then answers 401 with WWW-Authenticate unless the request carries exactly
that Authorization; the number of authenticated requests is in stats as auth_ok)}; GET /_emu/stats (submissions per tag, kill requests, every
application's computed state); POST /_emu/yarn/submit and /_emu/yarn/finish, which the fake
spark-submit uses where the real one would speak YARN's RPC protocol. State is saved to
--state after every change and loaded at start, so a restarted emulator keeps its
applications (re-attach tests); their states follow wall-clock time.

Usage: spark_emu.py --state FILE --ready FILE [--rm-port P] [--standby-port P] [--rest-port P]
  [--livy-port P] [--k8s-port P --k8s-cert PEM --k8s-key PEM --k8s-token T]
The ready file gets {"rm": url, "standby": url, "rest": url, "livy": url, "k8s": url} once every
server listens.
"""
import argparse
import base64
import fnmatch
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SPARK_VERSION = "3.5.0"
LOCK = threading.RLock()


class State:
    def __init__(self, path):
        self.path = path
        self.d = {"cluster_ts": int(time.time() * 1000), "seq": 0, "driver_seq": 0, "apps": {}, "drivers": {},
                  "submissions": {}, "kills": {}, "faults": {}, "batches": {}, "batch_seq": 0, "pods": {},
                  "auth_ok": 0}
        if os.path.exists(path):
            with open(path) as f:
                self.d.update(json.load(f))

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.d, f)
        os.replace(tmp, self.path)

    def count(self, tag):
        self.d["submissions"][tag] = self.d["submissions"].get(tag, 0) + 1

    def fault(self, name):
        """Takes one from a fault counter; True when the fault fires."""
        n = self.d["faults"].get(name, 0)
        if isinstance(n, bool):
            return n
        if n > 0:
            self.d["faults"][name] = n - 1
            self.save()
            return True
        return False


def behaviour(conf):
    def num(k, default):
        try:
            return float(conf.get(k, default))
        except (TypeError, ValueError):
            return default
    return {
        "accept_s": num("spark.emulator.acceptSeconds", 0.3),
        "run_s": num("spark.emulator.runSeconds", 1.0),
        "final": conf.get("spark.emulator.final", "SUCCEEDED"),
        "diagnostics": conf.get("spark.emulator.diagnostics", ""),
        "kill_delay_s": num("spark.emulator.killDelaySeconds", 0.5),
        "ignore_kill": conf.get("spark.emulator.ignoreKill", "false") == "true",
    }


# ---- YARN ----

def yarn_view(app, base, now=None):
    """The RM's view of an application at time now: state, finalStatus, progress, ..."""
    now = now or time.time()
    b = app["b"]
    t0 = app["submitted_at"]
    state, final, progress, diag, finished = "ACCEPTED", "UNDEFINED", 0.0, "", 0
    ended_at = None
    if app.get("client"):  # the driver runs in the submitting process and reports its end
        if app.get("client_final"):
            state, final = app["client_final"]["state"], app["client_final"]["finalStatus"]
            diag = app["client_final"].get("diagnostics", "")
            ended_at = app["client_final"]["at"]
            progress = 100.0
        elif now - t0 >= 0.2:
            state, progress = "RUNNING", 10.0
    else:
        accept = b["accept_s"]
        run_end = t0 + accept + b["run_s"]
        if now - t0 < 0.05:
            state = "SUBMITTED"
        elif accept < 0 or now - t0 < accept:
            state = "ACCEPTED"
        elif now < run_end:
            state = "RUNNING"
            progress = round(100.0 * (now - t0 - accept) / max(b["run_s"], 0.001), 1)
        else:
            ended_at = run_end
            progress = 100.0
            f = b["final"]
            if f == "SUCCEEDED":
                state, final = "FINISHED", "SUCCEEDED"
            elif f == "FAILED_STATE":
                state, final = "FAILED", "FAILED"
                diag = b["diagnostics"] or "Application application failed 2 times due to AM Container exited with exitCode: 1"
            else:
                state, final = "FINISHED", "FAILED"
                diag = b["diagnostics"] or "User class threw exception: java.lang.RuntimeException: emulated failure"
    k = app.get("kill_at")
    if k is not None and not b["ignore_kill"] and (ended_at is None or ended_at > k + b["kill_delay_s"]):
        if now >= k + b["kill_delay_s"]:
            state, final, diag = "KILLED", "KILLED", "Application killed by user."
            ended_at = k + b["kill_delay_s"]
    if state in ("FINISHED", "FAILED", "KILLED"):
        finished = int((ended_at or now) * 1000)
    return {
        "id": app["id"], "user": "spark", "name": app["name"], "queue": app["queue"], "state": state,
        "finalStatus": final, "progress": progress, "trackingUI": "ApplicationMaster" if finished == 0 else "History",
        "trackingUrl": "%s/proxy/%s/" % (base, app["id"]), "diagnostics": diag, "clusterId": 1,
        "applicationType": "SPARK", "applicationTags": ",".join(app["tags"]), "priority": 0,
        "startedTime": int(t0 * 1000), "launchTime": int(t0 * 1000) + 50, "finishedTime": finished,
        "elapsedTime": int(((ended_at or now) - t0) * 1000),
        "amContainerLogs": "http://127.0.0.1:8042/node/containerlogs/container_%s_01_000001/spark" % app["id"][12:],
        "amHostHttpAddress": "127.0.0.1:8042", "runningContainers": 1 if state == "RUNNING" else 0,
    }


def not_found(app_id):
    return {"RemoteException": {"exception": "NotFoundException",
                                "message": "java.lang.Exception: app with id: %s not found" % app_id,
                                "javaClassName": "org.apache.hadoop.yarn.webapp.NotFoundException"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Jetty(9.4.51)"
    role = "rm"  # rm | standby | rest

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.role, fmt % args))

    deferred = None

    def send(self, code, obj=None, raw=None, headers=(), ctype="application/json"):
        if self.deferred is not None and not self.deferred:  # a late answer: kept for later
            self.deferred.append(((code, obj, raw, headers, ctype), {}))
            return None
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        if self.negotiate_reply and code < 400:  # mutual authentication
            self.send_header("WWW-Authenticate", "Negotiate " + self.negotiate_reply)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        try:
            return json.loads(data or b"null")
        except ValueError:
            return data

    def base(self):
        return "http://%s" % self.headers.get("Host", "127.0.0.1")

    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def authorized(self):
        """The configured credentials (faults.auth) on this request; counts the good ones."""
        st = self.server.state
        want = st.d["faults"].get("auth")
        if not want:
            return True
        got = self.headers.get("Authorization", "")
        if "negotiate" in want:  # SPNEGO: the token checked by GSS-API against the service keytab
            return self.negotiate(got, want["negotiate"])
        if "basic" in want:
            ok = got == "Basic " + base64.b64encode(want["basic"].encode()).decode()
        else:
            ok = got == "Bearer " + want.get("bearer", "")
        if ok:
            st.d["auth_ok"] = st.d.get("auth_ok", 0) + 1
        return ok

    negotiate_reply = None

    def negotiate(self, got, principal):
        """An HTTP Negotiate (SPNEGO, RFC 4559) request: accepted when GSS-API (python3-gssapi, the
        service keytab in KRB5_KTNAME) completes the context and the client is the expected
        principal, as a Kerberized Hadoop web endpoint does; the server's token goes back in
        WWW-Authenticate."""
        st = self.server.state
        if not got.startswith("Negotiate "):
            return False
        try:
            import gssapi
            ctx = gssapi.SecurityContext(usage="accept", creds=gssapi.Credentials(usage="accept"))
            out = ctx.step(base64.b64decode(got[len("Negotiate "):]))
        except Exception as e:  # a bad or unverifiable token
            sys.stderr.write("negotiate refused: %s\n" % e)
            return False
        who = str(ctx.initiator_name)
        if not ctx.complete or who != principal:
            sys.stderr.write("negotiate refused: %s (complete %s)\n" % (who, ctx.complete))
            return False
        st.d["auth_ok"] = st.d.get("auth_ok", 0) + 1
        st.d.setdefault("negotiated", {})
        st.d["negotiated"][who] = st.d["negotiated"].get(who, 0) + 1
        self.negotiate_reply = base64.b64encode(out).decode() if out else None
        return True

    def route(self, method):
        st = self.server.state
        self.negotiate_reply = None
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        delay = st.d["faults"].get("delay_ms", 0)
        if delay and not u.path.startswith("/_emu/"):
            time.sleep(delay / 1000.0)
        with LOCK:
            if u.path.startswith("/_emu/"):
                return self.control(method, u.path, q)
            if not self.authorized() and self.role != "k8s":
                self.body()  # drain it: the connection is kept alive
                auth = self.server.state.d["faults"]["auth"]
                scheme = "Basic realm=\"emulator\"" if "basic" in auth else "Negotiate" if "negotiate" in auth else "Bearer"
                return self.send(401, raw=b"<html><head><title>Error 401 Unauthorized</title></head>"
                                          b"<body><h2>HTTP ERROR 401</h2><p>Unauthorized</p></body></html>",
                                 headers=[("WWW-Authenticate", scheme)], ctype="text/html;charset=iso-8859-1")
            if self.role == "k8s":  # its own bearer token and Status bodies
                return self.k8s(method, u.path, q)
            if self.role == "livy":
                if not self.server.state.fault("livy_hang_next"):
                    return self.livy(method, u.path, q)
                # the request is carried out, then the answer is late (past the client's timeout)
                self.deferred = []
                self.livy(method, u.path, q)
        if self.role == "livy":  # outside the lock: the others keep answering
            time.sleep(self.server.state.d["faults"].get("hang_ms", 12000) / 1000.0)
            try:
                return self.send(*self.deferred[0][0], **self.deferred[0][1])
            except OSError:  # the client gave up
                return None
        with LOCK:
            if self.role == "standby":
                loc = self.server.active + self.path
                return self.send(307, raw=("This is standby RM. The redirect url is: %s" % loc).encode(),
                                 headers=[("Location", loc)], ctype="text/plain;charset=utf-8")
            if self.role == "rm":
                return self.yarn(method, u.path, q)
            return self.rest(method, u.path)

    # -- test control --
    def control(self, method, path, q):
        st = self.server.state
        if path == "/_emu/faults" and method == "POST":
            st.d["faults"].update(self.body() or {})
            st.save()
            return self.send(200, st.d["faults"])
        if path == "/_emu/stats":
            now = time.time()
            apps = {i: yarn_view(a, self.base(), now) for i, a in st.d["apps"].items()}
            drivers = {i: driver_view(d, now) for i, d in st.d["drivers"].items()}
            return self.send(200, {"submissions": st.d["submissions"], "kills": st.d["kills"], "apps": apps,
                                   "drivers": drivers, "api_calls": st.d.get("api_calls", 0),
                                   "batches": {i: batch_view(b, now) for i, b in st.d["batches"].items()},
                                   "pods": {i: pod_json(p, now) for i, p in st.d["pods"].items()},
                                   "auth_ok": st.d.get("auth_ok", 0), "k8s_calls": st.d.get("k8s_calls", 0),
                                   "negotiated": st.d.get("negotiated", {})})
        if path == "/_emu/yarn/submit" and method == "POST":
            req = self.body()
            st.d["seq"] += 1
            app_id = "application_%d_%04d" % (st.d["cluster_ts"], st.d["seq"])
            tags = [t.strip().lower() for t in req.get("tags", "").split(",") if t.strip()]
            st.d["apps"][app_id] = {"id": app_id, "name": req.get("name", "spark"), "queue": req.get("queue") or "default",
                                    "tags": tags, "submitted_at": time.time(), "client": req.get("mode") == "client",
                                    "b": behaviour(req.get("conf", {}))}
            for t in tags:
                st.count(t)
            st.save()
            return self.send(200, {"id": app_id})
        if path == "/_emu/k8s/submit" and method == "POST":
            req = self.body()
            ns = req.get("namespace") or "default"
            base = re.sub(r"[^a-z0-9-]+", "-", req.get("name", "spark").lower()).strip("-")[:40] or "spark"
            pod = "%s-%s-driver" % (base, os.urandom(8).hex())
            labels = {"spark-app-selector": "spark-" + os.urandom(16).hex(), "spark-role": "driver"}
            labels.update(req.get("labels") or {})
            st.d["pods"]["%s:%s" % (ns, pod)] = {"name": pod, "namespace": ns, "labels": labels,
                                                  "submitted_at": time.time(), "b": behaviour(req.get("conf", {}))}
            for k in ("muster-task", "muster-attempt"):
                if k in labels:
                    st.count(labels[k])
            st.save()
            return self.send(200, pod_json(st.d["pods"]["%s:%s" % (ns, pod)]))
        if path == "/_emu/k8s/pods":  # GET: describe, POST: delete; id is namespace:pod, a glob allowed
            found = [p for key, p in sorted(st.d["pods"].items()) if fnmatch.fnmatchcase(key, q.get("id", "")) and not pod_gone(p)]
            if method == "POST":
                for p in found:
                    key = "%s:%s" % (p["namespace"], p["name"])
                    st.d["kills"][key] = st.d["kills"].get(key, 0) + 1
                    if p.get("kill_at") is None:
                        p["kill_at"] = time.time()
                st.save()
            return self.send(200, [pod_json(p) for p in found])
        if path == "/_emu/yarn/finish" and method == "POST":
            req = self.body()
            app = st.d["apps"].get(req.get("id"))
            if app is None:
                return self.send(404, not_found(req.get("id")))
            if not app.get("client_final"):
                app["client_final"] = {"state": req["state"], "finalStatus": req["finalStatus"],
                                       "diagnostics": req.get("diagnostics", ""), "at": time.time()}
                st.save()
            return self.send(200, {})
        return self.send(404, {"error": "no such control endpoint"})

    # -- YARN ResourceManager --
    def yarn(self, method, path, q):
        st = self.server.state
        if st.fault("rm_fail_next"):
            return self.send(500, {"RemoteException": {"exception": "WebApplicationException",
                                                       "message": "java.lang.RuntimeException: emulated failure",
                                                       "javaClassName": "javax.ws.rs.WebApplicationException"}})
        if st.d["faults"].get("rm_unauthorized"):  # a secured RM asked without credentials
            return self.send(401, raw=b"<html><head><title>Error 401 Authentication required</title></head>"
                                      b"<body><h2>HTTP ERROR 401</h2><p>Authentication required</p></body></html>",
                             headers=[("WWW-Authenticate", "Negotiate")], ctype="text/html;charset=iso-8859-1")
        if st.fault("rm_garbage_next"):
            return self.send(200, raw=b"<html><body>Proxy error: upstream sent garbage</body></html>", ctype="text/html")
        if path == "/ws/v1/cluster/apps" and method == "GET":
            now = time.time()
            views = [yarn_view(a, self.base(), now) for a in st.d["apps"].values()]
            if "states" in q:
                want = {s.strip().upper() for s in q["states"].split(",")}
                views = [v for v in views if v["state"] in want]
            if "applicationTags" in q:
                want = {t.strip().lower() for t in q["applicationTags"].split(",")}
                views = [v for v in views if want & set(v["applicationTags"].split(","))]
            if "queue" in q:
                views = [v for v in views if v["queue"] == q["queue"]]
            if "limit" in q:
                views = views[:int(q["limit"])]
            return self.send(200, {"apps": {"app": views} if views else None})
        m = re.fullmatch(r"/ws/v1/cluster/apps/([^/]+)(/state)?", path)
        if m is None:
            return self.send(404, {"RemoteException": {"exception": "NotFoundException", "message": "java.lang.Exception: Not found: " + path,
                                                       "javaClassName": "org.apache.hadoop.yarn.webapp.NotFoundException"}})
        app = st.d["apps"].get(m.group(1))
        if app is None:
            return self.send(404, not_found(m.group(1)))
        view = yarn_view(app, self.base())
        if m.group(2) is None and method == "GET":
            return self.send(200, {"app": view})
        if m.group(2) and method == "GET":
            return self.send(200, {"state": view["state"]})
        if m.group(2) and method == "PUT":
            req = self.body()
            if not isinstance(req, dict) or req.get("state") != "KILLED":
                return self.send(400, {"RemoteException": {"exception": "BadRequestException",
                                                           "message": "java.lang.Exception: Only 'KILLED' is allowed as a target state.",
                                                           "javaClassName": "org.apache.hadoop.yarn.webapp.BadRequestException"}})
            st.d["kills"][app["id"]] = st.d["kills"].get(app["id"], 0) + 1
            if view["state"] in ("FINISHED", "FAILED", "KILLED"):
                st.save()
                return self.send(200, {"state": view["state"]})
            if app.get("kill_at") is None:
                app["kill_at"] = time.time()
                if app.get("client"):  # the AM goes; the driver's app ends killed
                    app["client_final"] = {"state": "KILLED", "finalStatus": "KILLED", "at": time.time() + app["b"]["kill_delay_s"],
                                           "diagnostics": "Application killed by user."}
            st.save()
            view = yarn_view(app, self.base())
            if view["state"] == "KILLED":
                return self.send(200, {"state": "KILLED"})
            return self.send(202, {"state": view["state"]}, headers=[("Location", self.base() + path)])
        return self.send(405, {"RemoteException": {"exception": "WebApplicationException", "message": "HTTP 405 Method Not Allowed"}})

    # -- Spark standalone REST submission server --
    def rest(self, method, path):
        st = self.server.state
        if st.fault("rest_fail_next"):
            return self.send(500, {"action": "ErrorResponse", "message": "Server error: emulated failure",
                                   "serverSparkVersion": SPARK_VERSION})
        m = re.fullmatch(r"/(v\d+)/submissions/(create|status|kill)(?:/([^/]+))?", path)
        api = re.fullmatch(r"/api/v1/applications/([^/]+)/jobs", path)
        if api:
            return self.jobs(api.group(1))
        if m is None:
            return self.send(400, {"action": "ErrorResponse", "message": "Malformed path %s." % path,
                                   "serverSparkVersion": SPARK_VERSION})
        if m.group(1) != "v1":
            return self.send(468, {"action": "ErrorResponse", "highestProtocolVersion": "v1",
                                   "message": "Unknown protocol version '%s'." % m.group(1), "serverSparkVersion": SPARK_VERSION})
        what, did = m.group(2), m.group(3)
        if what == "create" and method == "POST":
            req = self.body()
            props = req.get("sparkProperties", {}) if isinstance(req, dict) else {}
            missing = [f for f in ("clientSparkVersion", "appResource") if not isinstance(req, dict) or not req.get(f)]
            if isinstance(req, dict) and req.get("action") != "CreateSubmissionRequest":
                return self.send(400, {"action": "ErrorResponse", "serverSparkVersion": SPARK_VERSION,
                                       "message": "Malformed request: Unexpected action %s." % req.get("action")})
            if missing or "spark.app.name" not in props:
                return self.send(400, {"action": "ErrorResponse", "serverSparkVersion": SPARK_VERSION,
                                       "message": "Malformed request: %s is missing." % (missing[0] if missing else "spark.app.name")})
            if st.d["faults"].get("rest_standby"):
                return self.send(200, {"action": "CreateSubmissionResponse", "serverSparkVersion": SPARK_VERSION, "success": False,
                                       "message": "Current state is not alive: STANDBY. Can only accept driver submissions in ALIVE state."})
            st.d["driver_seq"] += 1
            did = "driver-%s-%04d" % (time.strftime("%Y%m%d%H%M%S"), st.d["driver_seq"] - 1)
            name = props["spark.app.name"]
            tag = re.search(r"\[([a-z0-9-]+)\]$", name)
            st.d["drivers"][did] = {"id": did, "name": name, "submitted_at": time.time(), "b": behaviour(props),
                                    "args": req.get("appArgs", []), "mainClass": req.get("mainClass")}
            if tag:  # the attempt's tag, and the task's (the attempt tag less its "-aN")
                st.count(tag.group(1))
                st.count(re.sub(r"-a\d+$", "", tag.group(1)))
            known = {"action", "appResource", "mainClass", "appArgs", "sparkProperties", "environmentVariables", "clientSparkVersion"}
            extra = sorted(set(req) - known)
            st.save()
            resp = {"action": "CreateSubmissionResponse", "message": "Driver successfully submitted as %s" % did,
                    "serverSparkVersion": SPARK_VERSION, "submissionId": did, "success": True}
            if extra:
                resp["unknownFields"] = extra
            return self.send(200, resp)
        if what == "status" and method == "GET" and did:
            d = st.d["drivers"].get(did)
            if d is None:
                return self.send(200, {"action": "SubmissionStatusResponse", "serverSparkVersion": SPARK_VERSION,
                                       "submissionId": did, "success": False,
                                       "message": "Driver %s not found." % did})
            v = driver_view(d)
            resp = {"action": "SubmissionStatusResponse", "driverState": v["driverState"], "serverSparkVersion": SPARK_VERSION,
                    "submissionId": did, "success": True, "workerHostPort": "127.0.0.1:7078",
                    "workerId": "worker-20240101000000-127.0.0.1-7078"}
            if v.get("message"):
                resp["message"] = v["message"]
            return self.send(200, resp)
        if what == "kill" and method == "POST" and did:
            d = st.d["drivers"].get(did)
            st.d["kills"][did] = st.d["kills"].get(did, 0) + 1
            v = driver_view(d) if d else None
            if d is None or v["driverState"] in ("FINISHED", "FAILED", "ERROR", "KILLED"):
                st.save()
                return self.send(200, {"action": "KillSubmissionResponse", "serverSparkVersion": SPARK_VERSION,
                                       "submissionId": did, "success": False,
                                       "message": "Driver %s has already finished or does not exist" % did})
            if d.get("kill_at") is None:
                d["kill_at"] = time.time()
                if v["driverState"] == "SUBMITTED":  # a waiting driver goes at once
                    d["kill_now"] = True
            st.save()
            return self.send(200, {"action": "KillSubmissionResponse", "serverSparkVersion": SPARK_VERSION,
                                   "submissionId": did, "success": True, "message": "Kill request for %s submitted" % did})
        return self.send(400, {"action": "ErrorResponse", "message": "Malformed request.", "serverSparkVersion": SPARK_VERSION})

    # -- Apache Livy batches --
    def livy(self, method, path, q):
        st = self.server.state
        if st.fault("livy_fail_next"):
            return self.send(500, {"msg": "java.lang.RuntimeException: emulated failure"})
        if path == "/batches" and method == "POST":
            req = self.body()
            if not isinstance(req, dict):
                return self.send(400, {"msg": "Rejected, Reason: malformed JSON"})
            if not req.get("file"):
                return self.send(400, {"msg": "requirement failed: File is required."})
            if req.get("proxyUser") and st.d["faults"].get("livy_deny_impersonation"):
                return self.send(403, {"msg": "User 'livy' not allowed to impersonate '%s'." % req["proxyUser"]})
            bid = st.d["batch_seq"]
            st.d["batch_seq"] += 1
            name = req.get("name")
            conf = req.get("conf") or {}
            st.d["batches"][str(bid)] = {"id": bid, "name": name, "submitted_at": time.time(), "b": behaviour(conf),
                                         "file": req["file"], "className": req.get("className"),
                                         "args": req.get("args", []), "conf": conf, "request": req}
            tag = re.search(r"\[([a-z0-9-]+)\]$", name or "")
            if tag:  # the attempt's tag, and the task's (the attempt tag less its "-aN")
                st.count(tag.group(1))
                st.count(re.sub(r"-a\d+$", "", tag.group(1)))
            st.save()
            return self.send(201, batch_json(st.d["batches"][str(bid)]), headers=[("Location", "/batches/%d" % bid)])
        if path == "/batches" and method == "GET":
            frm, size = int(q.get("from", 0)), int(q.get("size", 100))
            live = [b for _, b in sorted(st.d["batches"].items(), key=lambda kv: int(kv[0])) if not gone(b)]
            return self.send(200, {"from": frm, "total": len(live), "sessions": [batch_json(b) for b in live[frm:frm + size]]})
        m = re.fullmatch(r"/batches/(\d+)(/state|/log)?", path)
        if m is None:
            return self.send(404, {"msg": "Not found: %s" % path})
        b = st.d["batches"].get(m.group(1))
        if b is None or gone(b):
            return self.send(404, {"msg": "Session '%s' not found." % m.group(1)})
        if method == "GET" and m.group(2) == "/state":
            return self.send(200, {"id": b["id"], "state": batch_view(b)["state"]})
        if method == "GET" and m.group(2) == "/log":
            # Livy's serializeLogs: size defaults to 100; without from, the last size lines
            lines = batch_json(b)["log"]
            size = int(q.get("size", 100))
            frm = int(q["from"]) if "from" in q else max(0, len(lines) - size)
            return self.send(200, {"id": b["id"], "from": frm, "total": len(lines), "log": lines[frm:frm + size]})
        if method == "GET" and m.group(2) is None:
            return self.send(200, batch_json(b))
        if method == "DELETE" and m.group(2) is None:
            st.d["kills"][str(b["id"])] = st.d["kills"].get(str(b["id"]), 0) + 1
            if b.get("kill_at") is None:
                b["kill_at"] = time.time()
            st.save()
            return self.send(200, {"msg": "deleted"})
        return self.send(405, {"msg": "Method not allowed"})

    # -- the Kubernetes API server: driver pods (the subset spark-submit's k8s mode and the plugin use) --
    def k8s_status(self, code, reason, message, details=None):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason, "code": code}
        if details is not None:
            body["details"] = details
        return self.send(code, body)

    def k8s(self, method, path, q):
        st = self.server.state
        st.d["k8s_calls"] = st.d.get("k8s_calls", 0) + 1
        if self.headers.get("Authorization", "") != "Bearer " + (self.server.k8s_token or ""):
            return self.k8s_status(401, "Unauthorized", "Unauthorized")
        if st.fault("k8s_fail_next"):
            return self.k8s_status(500, "InternalError", "Internal error occurred: emulated failure",
                                   {"causes": [{"message": "emulated failure"}]})
        m = re.fullmatch(r"/api/v1/namespaces/([a-z0-9-]+)/pods(?:/([a-z0-9.-]+))?", path)
        if m is None:
            return self.k8s_status(404, "NotFound", "the server could not find the requested resource", {})
        ns, name = m.group(1), m.group(2)
        verb = {"GET": "get" if name else "list", "DELETE": "delete"}.get(method)
        if verb is None:
            return self.k8s_status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                                   {})
        if ns in (st.d["faults"].get("k8s_forbidden_namespaces") or []):
            return self.k8s_status(403, "Forbidden", 'pods%s is forbidden: User "system:serviceaccount:default:muster" '
                                   'cannot %s resource "pods" in API group "" in the namespace "%s"'
                                   % (' "%s"' % name if name else "", verb, ns), {"name": name, "kind": "pods"} if name
                                   else {"kind": "pods"})
        if name is None:
            try:
                sel = parse_selector(q.get("labelSelector", ""))
            except ValueError as e:
                return self.k8s_status(400, "BadRequest", "unable to parse requirement: %s" % e)
            items = [k8s_pod(p) for key, p in sorted(st.d["pods"].items())
                     if p["namespace"] == ns and not pod_gone(p) and selected(p["labels"], sel)]
            return self.send(200, {"kind": "PodList", "apiVersion": "v1",
                                   "metadata": {"resourceVersion": str(st.d.get("seq", 0) + 1000)}, "items": items})
        p = st.d["pods"].get("%s:%s" % (ns, name))
        if p is None or pod_gone(p):
            return self.k8s_status(404, "NotFound", 'pods "%s" not found' % name, {"name": name, "kind": "pods"})
        if method == "DELETE":
            key = "%s:%s" % (ns, name)
            st.d["kills"][key] = st.d["kills"].get(key, 0) + 1
            if p.get("kill_at") is None:
                p["kill_at"] = time.time()
            st.save()
        return self.send(200, k8s_pod(p))

    def jobs(self, app_id):
        """Monitoring API: one job whose completed tasks follow the application's progress."""
        st = self.server.state
        st.d["api_calls"] = st.d.get("api_calls", 0) + 1
        a = st.d["apps"].get(app_id)
        if a is None:
            return self.send(404, raw=("unknown app: %s" % app_id).encode(), ctype="text/plain")
        done = int(yarn_view(a, self.base())["progress"])
        return self.send(200, [{"jobId": 0, "name": "count", "status": "RUNNING" if done < 100 else "SUCCEEDED",
                                "numTasks": 100, "numCompletedTasks": done, "numActiveTasks": 0, "numFailedTasks": 0}])


def driver_view(d, now=None):
    now = now or time.time()
    b = d["b"]
    t0 = d["submitted_at"]
    accept = b["accept_s"]
    end = t0 + accept + b["run_s"]
    if d.get("kill_at") is not None and not b["ignore_kill"]:
        k = d["kill_at"] + (0 if d.get("kill_now") else b["kill_delay_s"])
        if now >= k and k < end:
            return {"driverState": "KILLED"}
    if accept < 0 or now - t0 < accept:
        return {"driverState": "SUBMITTED"}
    if now < end:
        return {"driverState": "RUNNING"}
    f = b["final"]
    if f == "SUCCEEDED":
        return {"driverState": "FINISHED"}
    if f == "ERROR":
        return {"driverState": "ERROR", "message": b["diagnostics"] or "Exception from the cluster: java.io.IOException: emulated"}
    return {"driverState": "FAILED"}


def batch_view(b, now=None):
    """A Livy batch's state at time now; deleted is True once Livy has forgotten it."""
    now = now or time.time()
    bh = b["b"]
    t0 = b["submitted_at"]
    end = t0 + bh["accept_s"] + bh["run_s"]
    k = b.get("kill_at")
    if k is not None and not bh["ignore_kill"]:
        if now >= k + bh["kill_delay_s"]:
            return {"state": "killed", "deleted": True}
        return {"state": "shutting_down", "deleted": False}
    if bh["accept_s"] < 0 or now - t0 < bh["accept_s"]:
        return {"state": "starting", "deleted": False}
    if now < end:
        return {"state": "running", "deleted": False}
    return {"state": "success" if bh["final"] == "SUCCEEDED" else "dead", "deleted": False}


def pod_json(p, now=None):
    """A driver pod at time now: phase, the driver container's exit code once it ended, and
    deleted once a deletion's grace period passed."""
    now = now or time.time()
    b = p["b"]
    t0 = p["submitted_at"]
    end = t0 + b["accept_s"] + b["run_s"]
    phase, code = "Running", None
    if b["accept_s"] < 0 or now - t0 < b["accept_s"]:
        phase = "Pending"
    elif now >= end:
        phase, code = ("Succeeded", 0) if b["final"] == "SUCCEEDED" else ("Failed", 1)
    k = p.get("kill_at")
    deleted = k is not None and not b["ignore_kill"] and now >= k + b["kill_delay_s"]
    return {"name": p["name"], "namespace": p["namespace"], "labels": p["labels"], "phase": phase, "exitCode": code,
            "deleted": deleted, "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))}


def parse_selector(text):
    """An equality-based label selector: k=v, k==v, k!=v, k, !k (comma-separated)."""
    reqs = []
    for part in [x.strip() for x in text.split(",") if x.strip()]:
        m = re.fullmatch(r"([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)", part)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
        elif re.fullmatch(r"!?[A-Za-z0-9._/-]+", part):
            reqs.append((part.lstrip("!"), "absent" if part.startswith("!") else "exists", None))
        else:
            raise ValueError("%s: found '%s', expected: '=', '!=', '==' or 'in', 'notin'" % (part, part))
    return reqs


def selected(labels, reqs):
    for k, op, v in reqs:
        if (op == "=" and labels.get(k) != v) or (op == "!=" and labels.get(k) == v) or \
                (op == "exists" and k not in labels) or (op == "absent" and k in labels):
            return False
    return True


def k8s_pod(p, now=None):
    """A driver pod as the API server returns it (v1 Pod): metadata with labels and, once a
    deletion started, deletionTimestamp; status.phase and the driver container's state."""
    v = pod_json(p, now)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    md = {"name": v["name"], "namespace": v["namespace"], "uid": p.get("uid", "00000000-0000-4000-8000-%012x"
          % (abs(hash(v["name"])) % (1 << 48))), "resourceVersion": "1", "labels": v["labels"],
          "creationTimestamp": v["creationTimestamp"]}
    if p.get("kill_at") is not None:
        md["deletionTimestamp"] = iso(p["kill_at"] + p["b"]["kill_delay_s"])
        md["deletionGracePeriodSeconds"] = int(p["b"]["kill_delay_s"])
    if v["phase"] == "Pending":
        cs = {"state": {"waiting": {"reason": "ContainerCreating"}}, "ready": False}
    elif v["phase"] == "Running":
        cs = {"state": {"running": {"startedAt": v["creationTimestamp"]}}, "ready": True}
    else:
        cs = {"state": {"terminated": {"exitCode": v["exitCode"], "reason": "Completed" if v["exitCode"] == 0 else "Error",
                                       "startedAt": v["creationTimestamp"]}}, "ready": False}
    cs.update({"name": "spark-kubernetes-driver", "image": "apache/spark:" + SPARK_VERSION, "restartCount": 0})
    return {"kind": "Pod", "apiVersion": "v1", "metadata": md,
            "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:" + SPARK_VERSION}],
                     "restartPolicy": "Never", "serviceAccountName": "spark"},
            "status": {"phase": v["phase"], "containerStatuses": [cs]}}


def pod_gone(p):
    return pod_json(p)["deleted"]


def gone(b):
    return batch_view(b)["deleted"]


def batch_json(b):
    v = batch_view(b)
    running = v["state"] not in ("starting", "not_started")
    app_id = "application_1700000000000_%04d" % (b["id"] + 1) if running else None
    log = ["stdout: ", "\nstderr: ", "24/01/01 00:00:00 INFO SparkContext: Running Spark version " + SPARK_VERSION]
    if v["state"] == "dead":
        log.append("Exception in thread \"main\" java.lang.RuntimeException: emulated failure")
    return {"id": b["id"], "name": b["name"], "owner": None, "proxyUser": b.get("request", {}).get("proxyUser"), "state": v["state"], "appId": app_id,
            "appInfo": {"driverLogUrl": None, "sparkUiUrl": "http://127.0.0.1:8088/proxy/%s/" % app_id if app_id else None},
            "log": log}


def serve(role, port, state, active=None, tls=None, token=None):
    h = type("H_" + role, (Handler,), {"role": role})
    srv = ThreadingHTTPServer(("127.0.0.1", port), h)
    srv.daemon_threads = True
    srv.state = state
    srv.active = active
    srv.k8s_token = token
    if tls is not None:  # (cert, key): https, as a Kubernetes API server speaks
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--rm-port", type=int, default=0)
    ap.add_argument("--standby-port", type=int, default=0)
    ap.add_argument("--rest-port", type=int, default=0)
    ap.add_argument("--livy-port", type=int, default=0)
    ap.add_argument("--k8s-port", type=int, default=0)
    ap.add_argument("--k8s-cert", help="PEM certificate for the Kubernetes API server (https); without it, http")
    ap.add_argument("--k8s-key")
    ap.add_argument("--k8s-token", default="emulator-token", help="the service account token it accepts")
    a = ap.parse_args()
    state = State(a.state)
    rm = serve("rm", a.rm_port, state)
    rm_url = "http://127.0.0.1:%d" % rm.server_address[1]
    standby = serve("standby", a.standby_port, state, active=rm_url)
    rest = serve("rest", a.rest_port, state)
    livy = serve("livy", a.livy_port, state)
    k8s = serve("k8s", a.k8s_port, state, tls=(a.k8s_cert, a.k8s_key) if a.k8s_cert else None, token=a.k8s_token)
    urls = {"rm": rm_url, "standby": "http://127.0.0.1:%d" % standby.server_address[1],
            "rest": "http://127.0.0.1:%d" % rest.server_address[1],
            "livy": "http://127.0.0.1:%d" % livy.server_address[1],
            "k8s": "%s://127.0.0.1:%d" % ("https" if a.k8s_cert else "http", k8s.server_address[1])}
    with open(a.ready + ".tmp", "w") as f:
        json.dump(urls, f)
    os.replace(a.ready + ".tmp", a.ready)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
