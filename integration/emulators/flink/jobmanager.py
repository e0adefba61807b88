#!/usr/bin/python3
"""An emulator of a Flink JobManager's REST API (v1, as apache/flink's rest_v1_dispatcher.yml and
/work/shared/notes/spark-flink-protocols.md section 2.1 document it), for Muster's Flink task
tests. No Flink runs here: jobs are state machines that advance one step per GET /jobs/{id}.

    jobmanager.py [--port 0] [--state FILE] [--savepoint-polls N] [--savepoint-mode ok|fail|hang]
                  [--application] [--rm URL --app-id ID]

Prints "PORT <n>" once listening. Endpoints (wire names as Flink sends them):
  POST /jars/upload                multipart field "jarfile" -> {"filename": ".../<uuid>_<name>", "status": "success"}
  GET  /jars                       {"address", "files": [{"id", "name", "uploaded", "entry": [{"name"}]}]}
  POST /jars/{jarid}/run           {entryClass, programArgsList, parallelism, jobId, savepointPath,
                                    allowNonRestoredState, restoreMode} -> {"jobid"}
  GET  /jobs, /jobs/overview, /overview, /config
  GET  /jobs/{jid}                 JobDetailsInfo (jid, name, isStoppable, state, start-time, end-time,
                                    duration, now, timestamps, vertices, status-counts)
  PATCH /jobs/{jid}?mode=cancel    202 {}
  POST /jobs/{jid}/stop            {"targetDirectory", "drain"} -> 202 {"request-id"}
  POST /jobs/{jid}/savepoints      {"target-directory", "cancel-job"} -> 202 {"request-id"}
  GET  /jobs/{jid}/savepoints/{triggerid}   {"status": {"id": IN_PROGRESS|COMPLETED}, "operation": {...}}
  GET  /jobs/{jid}/checkpoints, /jobs/{jid}/exceptions, /jobs/{jid}/execution-result
Errors are {"errors": [...]} with Flink's own texts (unknown job, unknown trigger, duplicate JobID,
entry class not in the jar, missing savepoint).

The program's behaviour comes from the uploaded jar's text (test jars are text files), one line
per entry class:  class <name> batch|streaming [finish_after=N] [fail_after=N] [error=TEXT...]
[restart_every=N] [checkpoint_every=N]. The first class is the jar's Main-Class.

Test controls (not Flink): GET /emulator/state (jobs with what their run asked for, submissions
per JobID, uploads, triggers), POST /emulator/config {"savepoint_polls", "savepoint_mode",
"fail_next": N (N replies 503), "delay_ms", "checkpoint_age_ms" (how old the latest checkpoint is),
"savepoints_unreadable" (savepoints complete, but a restore from one fails as if its storage lost it)}. --state FILE keeps jobs, jars and triggers across a
restart of the emulator. --application runs one job (given by the flink CLI emulator through
/emulator/submit) and exits, closing its port, one poll after the job has ended, reporting the
final status to the YARN RM emulator (--rm, --app-id) as a real application cluster does; with
--keep-after-finish (the client's -Dexecution.shutdown-on-application-finish=false) it stays
after its job's end, answering for the ended job, until DELETE /cluster (202) shuts it down.
"""
import argparse
import email.parser
import email.policy
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TERMINAL = ("FINISHED", "FAILED", "CANCELED")
MU = threading.Lock()


def hex32():
    return uuid.uuid4().hex


def now_ms():
    return int(time.time() * 1000)


class State:
    def __init__(self, path, args):
        self.path = path
        self.jars = {}          # jarid -> {"name", "text", "uploaded"}
        self.jobs = {}          # jid -> job dict
        self.triggers = {}      # (jid, trigger) -> op dict
        self.submissions = {}   # jid -> run calls that named or produced it
        self.uploads = 0
        self.savepoint_dirs = {}  # location -> jid
        self.config = {"savepoint_polls": args.savepoint_polls, "savepoint_mode": args.savepoint_mode,
                       "fail_next": 0, "delay_ms": 0}
        if path and os.path.exists(path):
            with open(path) as f:
                d = json.load(f)
            self.jars, self.jobs, self.submissions = d["jars"], d["jobs"], d["submissions"]
            self.uploads, self.savepoint_dirs = d["uploads"], d.get("savepoints", {})
            self.triggers = {tuple(k.split("/")): v for k, v in d["triggers"].items()}
            self.config.update(d.get("config", {}))

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"jars": self.jars, "jobs": self.jobs, "submissions": self.submissions,
                       "uploads": self.uploads, "savepoints": self.savepoint_dirs, "config": self.config,
                       "triggers": {"/".join(k): v for k, v in self.triggers.items()}}, f)
        os.replace(tmp, self.path)


def parse_classes(text):
    """The jar's entry classes: name -> behaviour."""
    classes = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) < 3 or parts[0] != "class":
            continue
        b = {"kind": parts[2], "order": len(classes)}
        rest = " ".join(parts[3:])
        m = re.search(r"error=(.*)$", rest)
        if m:
            b["error"] = m.group(1)
            rest = rest[:m.start()]
        for kv in rest.split():
            k, _, v = kv.partition("=")
            b[k] = int(v) if v.isdigit() else v
        classes[parts[1]] = b
    return classes


def new_job(jid, name, behaviour, run):
    t = now_ms()
    return {"jid": jid, "name": name, "state": "INITIALIZING", "polls": 0, "running_polls": 0,
            "start-time": t, "end-time": -1, "timestamps": {"INITIALIZING": t},
            "behaviour": behaviour, "run": run, "checkpoints": 0, "restarts": 0,
            "exception": None, "stopping": None, "cancel_polls": 0}


def set_state(job, state):
    job["state"] = state
    job["timestamps"][state] = now_ms()
    if state in TERMINAL:
        job["end-time"] = now_ms()


def advance(st, job):
    """One step of the job's state machine (called for each GET /jobs/{id})."""
    job["polls"] += 1
    s, b = job["state"], job["behaviour"]
    if s in TERMINAL:
        return
    if s == "INITIALIZING":
        sp = job["run"].get("savepointPath")
        if sp and not savepoint_exists(st, sp):
            set_state(job, "FAILED")
            job["exception"] = ("java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory "
                                "'%s' on file system 'file'." % sp)
            return
        set_state(job, "CREATED")
        return
    if s == "CREATED":
        set_state(job, "RUNNING")
        return
    if s == "CANCELLING":
        set_state(job, "CANCELED")
        return
    if s == "FAILING":
        set_state(job, "FAILED")
        return
    if s == "RESTARTING":
        set_state(job, "RUNNING")
        return
    if s == "RUNNING":
        job["running_polls"] += 1
        stop = job["stopping"]
        if stop is not None:
            op = st.triggers.get((job["jid"], stop))
            if op and op["status"] == "COMPLETED" and "failure" in op:
                job["stopping"] = None  # the savepoint failed: the job runs on
            elif op and op["status"] == "COMPLETED":
                # the savepoint completes before the job reaches its end (one poll later)
                if op.get("seen_done"):
                    set_state(job, "CANCELED" if op["kind"] == "savepoints" else "FINISHED")
                else:
                    op["seen_done"] = True
            return
        every = int(b.get("checkpoint_every", 1) or 1)
        if b["kind"] == "streaming" and job["running_polls"] % every == 0:
            job["checkpoints"] += 1
        if b.get("fail_after") and job["running_polls"] >= int(b["fail_after"]):
            job["exception"] = b.get("error", "java.lang.RuntimeException: the job failed")
            set_state(job, "FAILING")
            return
        if b["kind"] == "batch" and job["running_polls"] >= int(b.get("finish_after", 3)):
            set_state(job, "FINISHED")
            return
        re_every = int(b.get("restart_every", 0) or 0)
        if re_every and job["running_polls"] % re_every == 0:
            job["restarts"] += 1
            set_state(job, "RESTARTING")


def savepoint_exists(st, path):
    if path in st.savepoint_dirs:
        return not st.config.get("savepoints_unreadable")  # test control: the storage lost them
    m = re.fullmatch(r"file:/tmp/flink-ck/([0-9a-f]{32})/chk-(\d+)", path)  # a retained checkpoint
    if m and m.group(1) in st.jobs and 0 < int(m.group(2)) <= st.jobs[m.group(1)]["checkpoints"]:
        return True
    local = path[5:] if path.startswith("file:") else path
    return os.path.exists(local)


def step_trigger(st, op):
    """One step of a savepoint operation (called for each GET of its status)."""
    if op["status"] == "COMPLETED":
        return
    op["polls"] += 1
    mode = op["mode"]
    if mode == "hang" or op["polls"] < op["needed"]:
        return
    op["status"] = "COMPLETED"
    if mode == "fail":
        op["failure"] = {"class": "java.util.concurrent.CompletionException",
                         "stack-trace": "java.util.concurrent.CompletionException: "
                                        "org.apache.flink.runtime.checkpoint.CheckpointException: "
                                        "Checkpoint expired before completing.\n\tat java.base/..."}
        return
    location = "%s/savepoint-%s-%s" % (op["dir"].rstrip("/"), op["jid"][:6], hex32()[:12])
    op["location"] = location
    st.savepoint_dirs[location] = op["jid"]
    local = location[5:] if location.startswith("file:") else location
    if local.startswith("/"):
        try:
            os.makedirs(local, exist_ok=True)
            with open(os.path.join(local, "_metadata"), "w") as f:
                f.write(op["jid"])
        except OSError:
            pass


def job_details(job):
    t = now_ms()
    end = job["end-time"]
    return {"jid": job["jid"], "name": job["name"], "isStoppable": False, "state": job["state"],
            "start-time": job["start-time"], "end-time": end,
            "duration": (end if end > 0 else t) - job["start-time"], "maxParallelism": -1, "now": t,
            "timestamps": job["timestamps"], "vertices": [],
            "status-counts": {job["state"] if job["state"] in ("RUNNING", "FINISHED", "FAILED", "CANCELED")
                              else "CREATED": 1}, "plan": {"jid": job["jid"], "name": job["name"], "nodes": []}}


def checkpoints(job, age_ms=0):
    n = job["checkpoints"]
    latest = None
    if n > 0:
        latest = {"className": "completed", "id": n, "status": "COMPLETED", "is_savepoint": False,
                  "trigger_timestamp": now_ms() - age_ms - 40, "latest_ack_timestamp": now_ms() - age_ms - 5,
                  "state_size": 4096 * n, "end_to_end_duration": 35, "num_subtasks": 1,
                  "num_acknowledged_subtasks": 1, "external_path": "file:/tmp/flink-ck/%s/chk-%d" % (job["jid"], n),
                  "discarded": False}
    return {"counts": {"restored": 1 if job["run"].get("savepointPath") else 0, "total": n, "in_progress": 0,
                       "completed": n, "failed": 0},
            "summary": {}, "latest": {"completed": latest, "savepoint": None, "failed": None,
                                      "restored": None}, "history": []}


def errors(*msgs):
    return {"errors": list(msgs)}


def not_found_job(jid):
    return errors("org.apache.flink.runtime.rest.handler.RestHandlerException: "
                  "org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (%s)" % jid)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def json_body(self):
        raw = self.body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        st = self.server.st
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = urllib.parse.parse_qs(url.query)
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["emulator"]:
            return self.control(method, parts[1:])
        if method == "DELETE" and parts == ["cluster"]:  # "Shuts down the cluster"
            self.body()
            self.reply(202, {})
            return self.server.shut_down_cluster()
        with MU:
            delay = st.config.get("delay_ms", 0)
            if st.config.get("fail_next", 0) > 0:
                st.config["fail_next"] -= 1
                self.body()
                return self.reply(503, {"message": "emulated outage"})
        if delay:
            time.sleep(delay / 1000.0)
        with MU:
            status, obj = self.flink(method, parts, query)
            st.save()
        self.reply(status, obj)

    # ---- Flink's API ----

    def flink(self, method, parts, query):
        st = self.server.st
        if method == "POST" and parts == ["jars", "upload"]:
            return self.upload()
        if method == "GET" and parts == ["jars"]:
            files = [{"id": k, "name": v["name"], "uploaded": v["uploaded"],
                      "entry": [{"name": c, "description": None} for c in parse_classes(v["text"])]}
                     for k, v in st.jars.items()]
            return 200, {"address": "http://localhost:%d" % self.server.server_port, "files": files}
        if method == "POST" and len(parts) == 3 and parts[0] == "jars" and parts[2] == "run":
            return self.run(parts[1], query)
        if method == "GET" and parts == ["overview"]:
            c = lambda s: sum(1 for j in st.jobs.values() if j["state"] == s)
            return 200, {"taskmanagers": 1, "slots-total": 8, "slots-available": 8 - c("RUNNING"),
                         "jobs-running": c("RUNNING"), "jobs-finished": c("FINISHED"),
                         "jobs-cancelled": c("CANCELED"), "jobs-failed": c("FAILED"),
                         "flink-version": "1.15.4", "flink-commit": "emulated"}
        if method == "GET" and parts == ["config"]:
            return 200, {"refresh-interval": 3000, "timezone-name": "Coordinated Universal Time",
                         "timezone-offset": 0, "flink-version": "1.15.4", "flink-revision": "emulated",
                         "features": {"web-submit": True, "web-cancel": True}}
        if method == "GET" and parts == ["jobs"]:
            return 200, {"jobs": [{"id": j["jid"], "status": j["state"]} for j in st.jobs.values()]}
        if method == "GET" and parts == ["jobs", "overview"]:
            return 200, {"jobs": [{"jid": j["jid"], "name": j["name"], "state": j["state"],
                                   "start-time": j["start-time"], "end-time": j["end-time"],
                                   "duration": job_details(j)["duration"], "last-modification": now_ms(),
                                   "tasks": {}} for j in st.jobs.values()]}
        if len(parts) >= 2 and parts[0] == "jobs":
            jid = parts[1]
            job = st.jobs.get(jid)
            if job is None:
                return 404, not_found_job(jid)
            rest = parts[2:]
            if method == "GET" and rest == []:
                advance(st, job)
                self.server.after_poll(job)
                return 200, job_details(job)
            if method == "PATCH" and rest == []:
                mode = (query.get("mode") or ["cancel"])[0]
                if mode != "cancel":
                    return 400, errors("Invalid mode %s" % mode)
                if job["state"] in TERMINAL:
                    return 409, errors("org.apache.flink.runtime.messages.FlinkJobTerminatedWithoutCancellationException: "
                                       "Flink job (%s) was not canceled, but instead %s." % (jid, job["state"]))
                set_state(job, "CANCELLING")
                return 202, {}
            if method == "POST" and rest in (["stop"], ["savepoints"]):
                return self.trigger(job, rest[0])
            if method == "GET" and len(rest) == 2 and rest[0] == "savepoints":
                op = st.triggers.get((jid, rest[1]))
                if op is None:
                    return 404, errors("There is no savepoint operation with triggerId=%s for job %s." % (rest[1], jid))
                step_trigger(st, op)
                if op["status"] == "IN_PROGRESS":
                    return 200, {"status": {"id": "IN_PROGRESS"}}
                if "failure" in op:
                    return 200, {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": dict(
                        op["failure"], **{"serialized-throwable": "rO0ABXNy"})}}
                return 200, {"status": {"id": "COMPLETED"}, "operation": {"location": op["location"]}}
            if method == "GET" and rest == ["checkpoints"]:
                return 200, checkpoints(job, int(st.config.get("checkpoint_age_ms", 0)))
            if method == "GET" and rest == ["exceptions"]:
                exc = job["exception"]
                return 200, {"root-exception": exc + "\n\tat org.example.Job.run(Job.java:42)" if exc else None,
                             "timestamp": job["end-time"] if exc else None, "all-exceptions": [],
                             "truncated": False, "exceptionHistory": {"entries": [], "truncated": False}}
            if method == "GET" and rest == ["execution-result"]:
                if job["state"] not in TERMINAL:
                    return 200, {"status": {"id": "IN_PROGRESS"}}
                app = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "CANCELED": "CANCELED"}[job["state"]]
                return 200, {"status": {"id": "COMPLETED"}, "job-execution-result": {
                    "id": jid, "applicationStatus": app, "accumulatorResults": {}, "net-runtime": 1}}
        return 404, errors("Not found: /%s" % "/".join(parts))

    def upload(self):
        st = self.server.st
        ctype = self.headers.get("Content-Type", "")
        raw = self.body()
        if not ctype.startswith("multipart/form-data"):
            return 400, errors("Request did not match expected format MultipartFileRequest.")
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") != "jarfile":
                continue
            name = part.get_filename() or "upload.jar"
            if not name.endswith(".jar"):
                return 400, errors("Only Jar files are allowed.")
            jarid = "%s_%s" % (uuid.uuid4(), os.path.basename(name))
            st.jars[jarid] = {"name": os.path.basename(name), "uploaded": now_ms(),
                              "text": part.get_payload(decode=True).decode(errors="replace")}
            st.uploads += 1
            return 200, {"filename": "/tmp/flink-web-%s/flink-web-upload/%s" % (self.server.web_id, jarid),
                         "status": "success"}
        return 400, errors("Exactly 1 file must be sent, received 0.")

    def run(self, jarid, query):
        st = self.server.st
        jar = st.jars.get(jarid)
        if jar is None:
            return 400, errors("org.apache.flink.runtime.rest.handler.RestHandlerException: Jar file /tmp/flink-web-%s/"
                               "flink-web-upload/%s does not exist" % (self.server.web_id, jarid))
        req = self.json_body()
        if req is None:
            return 400, errors("Request did not match expected format JarRunRequestBody.")
        return self.start_job(jar["name"], jar["text"], req)

    def start_job(self, jar_name, text, req):
        st = self.server.st
        classes = parse_classes(text)
        entry = req.get("entryClass")
        if not entry and classes:
            entry = min(classes, key=lambda c: classes[c]["order"])
        if classes and entry not in classes:
            return 500, errors("Internal server error.", "<Exception on server side:\n"
                               "org.apache.flink.client.program.ProgramInvocationException: The program's entry "
                               "point class '%s' was not found in the jar file.\n\tat org.apache.flink.client."
                               "program.PackagedProgram.loadMainClass(PackagedProgram.java:476)\n\nEnd of exception "
                               "on server side>" % entry)
        jid = req.get("jobId") or hex32()
        if not re.fullmatch(r"[0-9a-f]{32}", jid):
            return 400, errors("Could not parse JobID %s" % jid)
        st.submissions[jid] = st.submissions.get(jid, 0) + 1
        if jid in st.jobs:
            return 500, errors("Internal server error.", "<Exception on server side:\n"
                               "org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already "
                               "been submitted.\n\nEnd of exception on server side>")
        behaviour = classes.get(entry, {"kind": "batch"})
        run = {"entryClass": entry, "programArgsList": req.get("programArgsList") or [],
               "parallelism": req.get("parallelism"), "savepointPath": req.get("savepointPath"),
               "allowNonRestoredState": req.get("allowNonRestoredState"),
               "restoreMode": req.get("restoreMode"), "jar": jar_name}
        st.jobs[jid] = new_job(jid, "%s (%s)" % (entry or "job", jar_name), behaviour, run)
        return 200, {"jobid": jid}

    def trigger(self, job, kind):
        st = self.server.st
        req = self.json_body()
        if req is None:
            return 400, errors("Request did not match expected format.")
        target = req.get("targetDirectory") if kind == "stop" else req.get("target-directory")
        if not target:
            return 400, errors("Config key [state.savepoints.dir] is not set. Property [%s] must be provided." %
                               ("targetDirectory" if kind == "stop" else "target-directory"))
        if job["state"] != "RUNNING":
            return 409, errors("org.apache.flink.runtime.checkpoint.CheckpointException: Not all required tasks are "
                               "currently running (job %s is %s)." % (job["jid"], job["state"]))
        trig = req.get("triggerId") or hex32()
        st.triggers[(job["jid"], trig)] = {"jid": job["jid"], "kind": kind, "dir": target, "status": "IN_PROGRESS",
                                           "polls": 0, "needed": st.config["savepoint_polls"],
                                           "mode": st.config["savepoint_mode"], "drain": bool(req.get("drain")),
                                           "cancel": bool(req.get("cancel-job"))}
        if kind == "stop" or req.get("cancel-job"):
            job["stopping"] = trig
        return 202, {"request-id": trig}

    # ---- test controls ----

    def control(self, method, parts):
        st = self.server.st
        with MU:
            if method == "GET" and parts == ["state"]:
                jobs = {k: {"state": v["state"], "run": v["run"], "restarts": v["restarts"],
                            "checkpoints": v["checkpoints"]} for k, v in st.jobs.items()}
                trig = [dict(v, trigger=k[1]) for k, v in st.triggers.items()]
                return self.reply(200, {"jobs": jobs, "submissions": st.submissions, "uploads": st.uploads,
                                        "triggers": trig, "config": st.config})
            if method == "POST" and parts == ["config"]:
                req = self.json_body() or {}
                st.config.update(req)
                st.save()
                return self.reply(200, st.config)
            if method == "POST" and parts == ["submit"]:  # the CLI emulator's way into an application cluster
                req = self.json_body() or {}
                status, obj = self.start_job(req.get("jar", "app.jar"), req.get("text", ""), req)
                st.save()
                return self.reply(status, obj)
        self.reply(404, errors("no such control"))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, st, args):
        super().__init__(addr, Handler)
        self.st = st
        self.args = args
        self.web_id = hex32()[:8]
        self.done_polls = 0

    def after_poll(self, job):
        """An application cluster ends with its job: one poll after the terminal state the
        process reports to the RM and exits (its port then refuses connections)."""
        if not self.args.application or job["state"] not in TERMINAL or self.args.keep_after_finish:
            return
        self.done_polls += 1
        if self.done_polls < 2:
            return
        self.end_application(job)

    def shut_down_cluster(self):
        jobs = list(self.st.jobs.values())
        if jobs and self.args.application:
            self.end_application(jobs[0])
        else:
            threading.Thread(target=self.shutdown, daemon=True).start()

    def end_application(self, job):
        final = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "CANCELED": "KILLED"}.get(job["state"], "KILLED")
        if self.args.rm and self.args.app_id:
            try:
                req = urllib.request.Request("%s/emulator/apps/%s/finish" % (self.args.rm, self.args.app_id),
                                             data=json.dumps({"finalStatus": final}).encode(), method="POST")
                urllib.request.urlopen(req, timeout=5).read()
            except OSError as e:
                print("cannot report to the RM: %s" % e, file=sys.stderr)
        threading.Thread(target=self.shutdown, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state")
    ap.add_argument("--savepoint-polls", type=int, default=2)
    ap.add_argument("--savepoint-mode", default="ok", choices=["ok", "fail", "hang"])
    ap.add_argument("--application", action="store_true")
    ap.add_argument("--keep-after-finish", action="store_true")
    ap.add_argument("--rm")
    ap.add_argument("--app-id")
    ap.add_argument("--port-file")
    args = ap.parse_args()
    st = State(args.state, args)
    srv = Server(("127.0.0.1", args.port), st, args)
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
    srv.server_close()


if __name__ == "__main__":
    main()
