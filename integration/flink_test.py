"""End-to-end: Flink tasks with real musterd, a real agent loading plugins/flink, and the
JobManager emulator (integration/emulators/flink/jobmanager.py, built from Flink's documented
REST protocol: no Flink runs here).

The operator's story: a batch job from a signed bundle runs on a session cluster and succeeds,
or fails with Flink's own exception; a bad entry class, a missing jar, a missing savepoint and
an unreachable JobManager each fail with a message that says so. A streaming job runs until it
is cancelled, stops with a savepoint whose path is recorded, and the next version restores from
it. A savepoint that never completes leaves the job and the task RUNNING (no second job); a
second cancel stops it. When the agent is killed -9 mid-stream, the retry re-attaches to the
same JobID: Flink sees one submission. Application targets go through the flink CLI emulator,
and an application cluster that vanishes at the end is read from the YARN RM emulator.

    python3 flink_test.py MUSTERD AGENT CLI LIBMUSTER_FLINK_SO EMULATOR_DIR
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from harness import free_port, job_status, main, wait_until

HB = "300ms"
FLINK_SO = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None
EMU_DIR = os.path.abspath(sys.argv[5]) if len(sys.argv) > 5 else None

JAR = """Manifest-Version: 1.0 (an emulated jar: the JobManager emulator reads these lines)
class com.example.WordCount batch finish_after=3
class com.example.Broken batch fail_after=1 error=java.lang.IllegalStateException: input /data/in is missing
class com.example.Clicks streaming checkpoint_every=1
class com.example.Flaky streaming restart_every=2
"""


class JobManager:
    """The JobManager emulator as a process on a free port."""

    def __init__(self, workdir, *extra, name="jm"):
        self.state = os.path.join(workdir, name + "-state.json")
        self.port_file = os.path.join(workdir, name + ".port")
        self.workdir, self.extra, self.name = workdir, extra, name
        self.port = None
        self.start()

    def start(self, port=None):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        argv = ["/usr/bin/python3", os.path.join(EMU_DIR, "jobmanager.py"), "--state", self.state,
                "--port-file", self.port_file, "--port", str(port or 0)] + list(self.extra)
        self.log = open(os.path.join(self.workdir, self.name + ".log"), "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until("the JobManager emulator to listen", lambda: os.path.exists(self.port_file))
        self.port = int(open(self.port_file).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)
        self.log.close()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def emu(self):
        return self.get("/emulator/state")


def setup(c, *agent_flags, musterd_flags=(), etcd=None):
    """musterd, one agent with the Flink plugin, a signed bundle `clicks@1.0.0` holding app.jar."""
    c.start_musterd("--heartbeat-timeout", "2s", *musterd_flags, etcd=etcd)
    plugins = os.path.join(c.workdir, "plugins")
    os.makedirs(plugins, exist_ok=True)
    os.symlink(FLINK_SO, os.path.join(plugins, "libmuster_flink.so"))
    c.cli("keygen", "--out", os.path.join(c.workdir, "team"))
    start_agent(c, *agent_flags)
    src = os.path.join(c.workdir, "src")
    os.makedirs(os.path.join(src, "lib"), exist_ok=True)
    with open(os.path.join(src, "lib", "app.jar"), "w") as f:
        f.write(JAR)
    with open(os.path.join(src, "report.sql"), "w") as f:
        f.write("-- class sql.Report batch finish_after=2\nCREATE TABLE clicks (id INT) WITH ('connector' = "
                "'datagen');\nINSERT INTO report SELECT id FROM clicks;\n")
    with open(os.path.join(src, "job.py"), "w") as f:
        f.write("# a PyFlink program (the CLI emulator reads the class line)\n# class job.Main batch finish_after=2\n")
    for version in ("1.0.0", "2.0.0"):
        out = os.path.join(c.workdir, "clicks-%s.bundle" % version)
        c.cli("bundle", "pack", src, "--name", "clicks", "--version", version, "--out", out)
        c.cli("bundle", "sign", out, "--key", os.path.join(c.workdir, "team.key"))
        c.cli("bundle", "push", out)


def start_agent(c, *flags):
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB, "--trust-key",
                  os.path.join(c.workdir, "team.pub"), *flags, plugin_dir=os.path.join(c.workdir, "plugins"))
    wait_until("agent connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    wait_until("agent serves flink", lambda: "flink" in [p["type"] for p in c.agents_json()["web-1"].get("plugins", [])])


def job_file(c, flink, name="flink-job", task="stream", target='{hosts: [web-1]}', extra=""):
    path = os.path.join(c.workdir, "job-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("name: %s\ntarget: %s\ntasks:\n  - name: %s\n    type: flink\n    bundle: clicks@1.0.0\n"
                "%s    flink: %s\n" % (name, target, task, extra, json.dumps(flink)))
    return path


def submit(c, flink, **kw):
    """Runs a job to its end: (exit code, the task's TaskRun)."""
    rc, out, err = c.cli("-o", "json", "submit", job_file(c, flink, **kw), check=False, timeout=90)
    runs = [json.loads(l) for l in out.splitlines() if '"taskId"' in l]
    assert runs, (out, err)
    return rc, runs[-1]


def submit_detached(c, flink, **kw):
    rc, out, err = c.cli("submit", "--detach", job_file(c, flink, **kw), check=False)
    assert rc == 0, err
    return out.strip()


def status(c, job):
    return job_status(c.cli("-o", "json", "status", job, check=False)[1])


def task_of(c, job):
    return status(c, job)["tasks"][-1]


def wait_job_end(c, job, timeout=30):
    return wait_until("job %s to end" % job, lambda: (lambda s: s if s["state"] not in (
        "JOB_RUNNING", "JOB_PENDING") else None)(status(c, job)), timeout=timeout)


def logs(c, job):
    return c.cli("logs", job, check=False)[1]


def streaming(jm, **over):
    f = {"jobmanagerUrl": jm.url, "jar": "lib/app.jar", "entryClass": "com.example.Clicks", "kind": "streaming",
         "onCancel": "savepoint", "savepointDir": "file:" + os.path.join(jm.workdir, "savepoints"),
         "pollInterval": "200ms", "savepointTimeout": "5s"}
    f.update(over)
    return f


def running_job(jm, n=1):
    jobs = jm.emu()["jobs"]
    running = [k for k, v in jobs.items() if v["state"] == "RUNNING"]
    return running if len(running) == n else None


# ---- tests ----

def test_batch_success_failure_and_bad_input(c):
    setup(c)
    jm = JobManager(c.workdir)
    try:
        base = {"jobmanagerUrl": jm.url, "jar": "lib/app.jar", "pollInterval": "100ms", "parallelism": 2,
                "programArgs": ["--input", "/data/in"]}
        rc, run = submit(c, dict(base, entryClass="com.example.WordCount"))
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        jid = run["outputParams"]["job_id"]
        assert "FINISHED" in run["message"] and jid in run["message"], run
        st = jm.emu()
        assert st["jobs"][jid]["state"] == "FINISHED" and st["submissions"][jid] == 1, st
        assert st["jobs"][jid]["run"]["programArgsList"] == ["--input", "/data/in"], st
        assert st["jobs"][jid]["run"]["parallelism"] == 2, st

        # a second task with the same jar reuses the upload
        rc, run = submit(c, dict(base, entryClass="com.example.WordCount"), name="again")
        assert rc == 0 and jm.emu()["uploads"] == 1, jm.emu()
        assert "reusing uploaded jar" in run["outputTail"], run

        # the job fails: Flink's root exception is the task's message
        rc, run = submit(c, dict(base, entryClass="com.example.Broken"))
        assert rc == 1 and run["state"] == "FAILED", run
        assert "FAILED: java.lang.IllegalStateException: input /data/in is missing" in run["message"], run

        # bad input, each named
        rc, run = submit(c, dict(base, entryClass="com.example.Nope"))
        assert run["state"] == "FAILED", run
        assert "entry point class 'com.example.Nope' was not found in the jar file" in run["message"], run
        rc, run = submit(c, dict(base, jar="lib/missing.jar"))
        assert run["state"] == "FAILED" and 'flink.jar: "lib/missing.jar" not found' in run["message"], run
        rc, run = submit(c, dict(base, entryClass="com.example.Clicks", kind="streaming",
                                 savepointPath="file:/nonexistent/savepoint-1"))
        assert run["state"] == "FAILED", run
        assert "Cannot find checkpoint or savepoint file/directory 'file:/nonexistent/savepoint-1'" in run["message"], run
        dead = "http://127.0.0.1:%d" % free_port()
        rc, run = submit(c, dict(base, jobmanagerUrl=dead, unreachableTimeout="1s"))
        assert run["state"] == "FAILED", run
        assert "unreachable for 1s" in run["message"] and "nothing was submitted" in run["message"], run
        # refused by the plugin's validate() before anything runs, naming the field
        rc, run = submit(c, dict(base, kind="streaming", onCancel="savepoint"))
        assert rc != 0 and run["state"] == "FAILED", run
        assert "flink.on_cancel: savepoint needs savepoint_dir" in run["message"], run

        # a SQL script on the session cluster: sql-client.sh -f, JobID from its "Job ID:" line
        rc, run = submit(c, {"jobmanagerUrl": jm.url, "sqlScript": "report.sql", "flinkHome": EMU_DIR,
                             "pollInterval": "100ms"}, name="sql")
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        assert "Job ID: " + run["outputParams"]["job_id"] in run["outputTail"], run
        assert jm.emu()["jobs"][run["outputParams"]["job_id"]]["state"] == "FINISHED", jm.emu()

        # 503s from the JobManager are retried within the budget
        jm.post("/emulator/config", {"fail_next": 3})
        rc, run = submit(c, dict(base, entryClass="com.example.WordCount"), name="flaky")
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        assert "unreachable (HTTP 503)" in run["outputTail"], run
    finally:
        jm.stop()


def test_stream_stop_with_savepoint_then_restore(c):
    setup(c)
    jm = JobManager(c.workdir)
    try:
        job = submit_detached(c, streaming(jm))
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING with checkpoints", lambda: (lambda t: t["state"] == "RUNNING" and
                   "last_checkpoint_path" in t.get("outputParams", {}))(task_of(c, job)))
        t = task_of(c, job)
        assert t["outputParams"]["job_id"] == jid, t
        c.cli("cancel", job)
        st = wait_job_end(c, job)
        t = st["tasks"][-1]
        assert t["state"] == "CANCELLED", t
        sp = t["outputParams"]["savepoint_path"]
        assert sp.startswith("file:" + os.path.join(jm.workdir, "savepoints") + "/savepoint-"), t
        assert "stopped with a savepoint at " + sp in t["message"], t
        assert "Savepoint completed. Path: " + sp in logs(c, job)
        emu = jm.emu()
        assert emu["jobs"][jid]["state"] == "FINISHED", emu
        assert [tr["kind"] for tr in emu["triggers"]] == ["stop"] and not emu["triggers"][0]["drain"], emu

        # the next version restores from it (the emulator sees savepointPath)
        job2 = submit_detached(c, streaming(jm, savepointPath=sp, restoreMode="claim", allowNonRestoredState=True,
                                            onCancel="drain"), name="v2")
        jid2 = wait_until("the restored job", lambda: running_job(jm))[0]
        run = jm.emu()["jobs"][jid2]["run"]
        assert run["savepointPath"] == sp and run["restoreMode"] == "CLAIM" and run["allowNonRestoredState"], run
        c.cli("cancel", job2)
        t = wait_job_end(c, job2)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "savepoint_path" in t["outputParams"], t
        assert jm.emu()["triggers"][-1]["drain"] is True, jm.emu()
    finally:
        jm.stop()


def test_upgrade_modes(c):
    """savepoint: stop the running version with a savepoint, start the new one from it;
    last-state: start from the running version's latest checkpoint, refused when it is older
    than max_checkpoint_age unless forced; stateless: cancel, start empty."""
    setup(c)
    jm = JobManager(c.workdir)
    try:
        job1 = submit_detached(c, streaming(jm), name="v1")
        jid1 = wait_until("v1 running", lambda: running_job(jm))[0]
        wait_until("v1 checkpointed", lambda: jm.emu()["jobs"][jid1]["checkpoints"] >= 1)

        job2 = submit_detached(c, streaming(jm, upgradeMode="savepoint", upgradeFrom=jid1), name="v2")
        jid2 = wait_until("v2 running", lambda: (lambda r: r if r and r[0] != jid1 else None)(running_job(jm)))[0]
        emu = jm.emu()
        assert emu["jobs"][jid1]["state"] == "FINISHED", emu
        sp = [t for t in emu["triggers"] if t["jid"] == jid1][0]["location"]
        assert emu["jobs"][jid2]["run"]["savepointPath"] == sp, emu
        t = task_of(c, job2)
        assert t["outputParams"]["upgrade_savepoint_path"] == sp and t["outputParams"]["job_id"] == jid2, t
        # v1's task saw its job FINISHED by someone else's stop: it ends, nothing restarts it
        t1 = wait_job_end(c, job1)["tasks"][-1]
        assert t1["state"] == "SUCCEEDED" and "FINISHED" in t1["message"], t1

        wait_until("v2 checkpointed", lambda: jm.emu()["jobs"][jid2]["checkpoints"] >= 2)
        job3 = submit_detached(c, streaming(jm, upgradeMode="last-state", upgradeFrom=jid2), name="v3")
        jid3 = wait_until("v3 running", lambda: (lambda r: r if r and r[0] not in (jid1, jid2) else None)(
            running_job(jm)))[0]
        emu = jm.emu()
        ck = emu["jobs"][jid3]["run"]["savepointPath"]
        assert emu["jobs"][jid2]["state"] == "CANCELED", emu
        assert ck.startswith("file:/tmp/flink-ck/%s/chk-" % jid2), emu
        assert int(ck.rsplit("-", 1)[1]) >= 2, ck  # the latest one
        assert task_of(c, job3)["outputParams"]["upgrade_checkpoint_path"] == ck

        # a checkpoint two hours old is refused, and nothing changes
        jm.post("/emulator/config", {"checkpoint_age_ms": 7200000})
        rc, run = submit(c, streaming(jm, upgradeMode="last-state", upgradeFrom=jid3, maxCheckpointAge="1h"),
                         name="v4")
        assert run["state"] == "FAILED" and "over max_checkpoint_age (3600s)" in run["message"], run
        assert "nothing was changed" in run["message"] and jm.emu()["jobs"][jid3]["state"] == "RUNNING", jm.emu()
        job4 = submit_detached(c, streaming(jm, upgradeMode="last-state", upgradeFrom=jid3, maxCheckpointAge="1h",
                                            forceUpgrade=True), name="v4-forced")
        jid4 = wait_until("v4 running", lambda: (lambda r: r if r and r[0] not in (jid1, jid2, jid3) else None)(
            running_job(jm)))[0]

        job5 = submit_detached(c, streaming(jm, upgradeMode="stateless", upgradeFrom=jid4), name="v5")
        jid5 = wait_until("v5 running", lambda: (lambda r: r if r and r[0] not in (jid1, jid2, jid3, jid4) else None)(
            running_job(jm)))[0]
        emu = jm.emu()
        assert emu["jobs"][jid4]["state"] == "CANCELED" and emu["jobs"][jid5]["run"]["savepointPath"] is None, emu
        assert all(n == 1 for n in emu["submissions"].values()), emu
        for j in (job2, job3, job4):
            assert wait_job_end(c, j)["tasks"][-1]["state"] == "CANCELLED"
        c.cli("cancel", job5)
        assert wait_job_end(c, job5)["tasks"][-1]["state"] == "CANCELLED"
    finally:
        jm.stop()


def test_savepoint_timeout_keeps_job_running(c):
    setup(c)
    jm = JobManager(c.workdir, "--savepoint-mode", "hang")
    try:
        job = submit_detached(c, streaming(jm, savepointTimeout="1s"))
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING")
        c.cli("cancel", job)
        wait_until("the savepoint timeout event", lambda: "the job is still RUNNING" in logs(c, job), timeout=20)
        time.sleep(1.5)  # several polls later: still running, on both sides, and no second job
        assert task_of(c, job)["state"] == "RUNNING", task_of(c, job)
        emu = jm.emu()
        assert emu["jobs"][jid]["state"] == "RUNNING" and len(emu["jobs"]) == 1, emu
        assert emu["submissions"] == {jid: 1}, emu
        assert "still IN_PROGRESS after savepoint_timeout (1s)" in logs(c, job)
        # the savepoint works again: a second cancel stops the job with one
        jm.post("/emulator/config", {"savepoint_mode": "ok"})
        c.cli("cancel", job)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "savepoint_path" in t["outputParams"], t
        assert jm.emu()["jobs"][jid]["state"] == "FINISHED", jm.emu()
    finally:
        jm.stop()


def test_agent_kill9_reattaches_by_job_id(c):
    setup(c)
    jm = JobManager(c.workdir)
    try:
        job = submit_detached(c, streaming(jm, onCancel="cancel"), target='{any: "role=web"}',
                              extra="    retries: 2\n")
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING")
        p = c.agents["web-1"]
        p.p.send_signal(signal.SIGKILL)
        p.p.wait()
        p.log.close()
        # the JobManager restarts too, on the same port, with its state
        jm.stop()
        jm.start(port=jm.port)
        start_agent(c)
        wait_until("the retry re-attached", lambda: "re-attached" in logs(c, job), timeout=30)
        t = task_of(c, job)
        assert t["state"] == "RUNNING" and t["attempt"] >= 2, t
        assert t["outputParams"]["job_id"] == jid or jid in logs(c, job), t
        emu = jm.emu()
        assert emu["submissions"] == {jid: 1} and len(emu["jobs"]) == 1, emu
        c.cli("cancel", job)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "CANCELED" in t["message"], t
        assert jm.emu()["jobs"][jid]["state"] == "CANCELED", jm.emu()
    finally:
        jm.stop()


class YarnRM(JobManager):
    """The YARN RM emulator (it launches application clusters: jobmanager.py --application)."""

    def start(self, port=None):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        argv = ["/usr/bin/python3", os.path.join(EMU_DIR, "yarn_rm.py"), "--port-file", self.port_file,
                "--workdir", self.workdir, "--port", str(port or 0)]
        self.log = open(os.path.join(self.workdir, self.name + ".log"), "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until("the YARN RM emulator to listen", lambda: os.path.exists(self.port_file))
        self.port = int(open(self.port_file).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def apps(self):
        return self.get("/emulator/state")["apps"]

    def kill(self, app_id):
        req = urllib.request.Request("%s/ws/v1/cluster/apps/%s/state" % (self.url, app_id), method="PUT",
                                     data=json.dumps({"state": "KILLED"}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()


def application(rm, **over):
    f = {"target": "yarn-application", "flinkHome": EMU_DIR, "yarnRmUrl": rm.url, "jar": "lib/app.jar",
         "entryClass": "com.example.Clicks", "kind": "streaming", "yarnQueue": "etl", "pollInterval": "200ms"}
    f.update(over)
    return f


def env_for(rm):
    return "    env: {FLINK_EMU_RM: \"%s\"}\n" % rm.url


def test_application_targets_through_the_cli(c):
    setup(c)
    rm = YarnRM(c.workdir, name="rm")
    try:
        # a batch job in its own application cluster: JobID pinned, app id from the CLI's lines
        rc, run = submit(c, application(rm, entryClass="com.example.WordCount", kind="batch"), extra=env_for(rm))
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        app_id = run["outputParams"]["yarn_app_id"]
        assert app_id.startswith("application_") and "Submitted application " + app_id in run["outputTail"], run
        assert rm.apps()[app_id]["queue"] == "etl", rm.apps()

        # per-job (deprecated, accepted): `flink run -d -t yarn-per-job` prints the JobID line
        rc, run = submit(c, application(rm, target="yarn-per-job", entryClass="com.example.WordCount", kind="batch"),
                         extra=env_for(rm), name="per-job")
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        assert "Job has been submitted with JobID " + run["outputParams"]["job_id"] in run["outputTail"], run

        # kubernetes-application: the cluster id is the handle; tracked at the printed web interface
        rc, run = submit(c, {"target": "kubernetes-application", "flinkHome": EMU_DIR, "jar": "lib/app.jar",
                             "entryClass": "com.example.WordCount", "kubernetesClusterId": "wordcount-k8s",
                             "kubernetesNamespace": "flink", "pollInterval": "200ms"}, extra=env_for(rm), name="k8s")
        assert rc == 0 and run["state"] == "SUCCEEDED", run
        assert "Create flink application cluster wordcount-k8s successfully" in run["outputTail"], run

        # local, PyFlink: the job runs in the CLI and ends with it
        rc, run = submit(c, {"target": "local", "flinkHome": EMU_DIR, "python": "job.py"}, name="local-py")
        assert rc == 0 and run["state"] == "SUCCEEDED" and "ended with the CLI" in run["message"], run

        # a streaming application killed through YARN: its JobManager vanishes, the RM says how it ended
        job = submit_detached(c, application(rm), extra=env_for(rm), name="killed")
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING" and
                   "yarn_app_id" in task_of(c, job).get("outputParams", {}))
        app_id = task_of(c, job)["outputParams"]["yarn_app_id"]
        wait_until("the application RUNNING", lambda: rm.apps()[app_id]["state"] == "RUNNING")
        time.sleep(0.5)
        rm.kill(app_id)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED", t
        assert "application cluster %s is gone; the RM reports KILLED/KILLED" % app_id in t["message"], t

        # kill -9 the agent while an application streams: the retry finds it through the RM, no second one
        job = submit_detached(c, application(rm, onCancel="savepoint", savepointDir="file:" + c.workdir + "/sp"),
                              extra=env_for(rm) + "    retries: 2\n", target='{any: "role=web"}', name="reattach")
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING" and
                   "yarn_app_id" in task_of(c, job).get("outputParams", {}))
        app_id = task_of(c, job)["outputParams"]["yarn_app_id"]
        n_apps = len(rm.apps())
        p = c.agents["web-1"]
        p.p.send_signal(signal.SIGKILL)
        p.p.wait()
        p.log.close()
        start_agent(c)
        wait_until("the retry re-attached", lambda: "re-attached" in logs(c, job), timeout=30)
        assert len(rm.apps()) == n_apps, rm.apps()
        assert task_of(c, job)["state"] == "RUNNING", task_of(c, job)
        # stop with a savepoint through the RM's proxy; the cluster then goes away with its job
        c.cli("cancel", job)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "stopped with a savepoint" in t["message"], t
        assert t["outputParams"]["savepoint_path"].startswith("file:" + c.workdir + "/sp/savepoint-"), t
    finally:
        rm.stop()


def test_leader_kill9_while_streaming(c):
    """Two musterd on a real etcd; kill -9 the leader while a streaming job runs: the agent
    follows the new leader, the task keeps its job (one submission), and a cancel through the
    new leader stops it with a savepoint."""
    from ha_test import HA
    h = HA(c.musterd_bin, c.agent_bin, c.cli_bin)
    jm = None
    try:
        h.start_etcd()
        a = h.start_member("cp-a", "--allow-unsigned-bundles")
        b = h.start_member("cp-b", "--allow-unsigned-bundles")
        leader = wait_until("one leader", h.leader, timeout=10)
        follower = [(n, addr) for n, (_, addr) in h.members.items() if n != leader[0]][0]
        plugins = os.path.join(h.workdir, "plugins")
        os.makedirs(plugins, exist_ok=True)
        os.symlink(FLINK_SO, os.path.join(plugins, "libmuster_flink.so"))
        spool = os.path.join(h.workdir, "spool-web-1")
        os.makedirs(spool, exist_ok=True)
        from harness import Proc
        h.agents["web-1"] = Proc("agent-web-1", [
            h.agent_bin, "--control", a + "," + b, "--id", "web-1", "--spool-dir", spool, "--plugin-dir", plugins,
            "--heartbeat-interval", HB, "--allow-unsigned"] + h.agent_tls("web-1"), h.workdir)
        wait_until("the agent on the leader", lambda: "web-1" in h.connected_at(leader[1]))
        src = os.path.join(h.workdir, "src")
        os.makedirs(os.path.join(src, "lib"), exist_ok=True)
        with open(os.path.join(src, "lib", "app.jar"), "w") as f:
            f.write(JAR)
        out = os.path.join(h.workdir, "clicks.bundle")
        h.cli_at(leader[1], "bundle", "pack", src, "--name", "clicks", "--version", "1.0.0", "--out", out)
        h.cli_at(leader[1], "bundle", "push", out)
        jm = JobManager(h.workdir)
        spec = job_file(h, streaming(jm))
        rc, outp, err = h.cli_at(leader[1], "submit", "--detach", spec)
        assert rc == 0, err
        job = outp.strip()
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING", lambda: (h.job(leader[1], job) or {}).get("tasks", [{}])[-1].get("state") ==
                   "RUNNING")
        p, _ = h.members.pop(leader[0])
        p.kill()
        wait_until("the follower to lead", lambda: (h.cluster_at(follower[1]) or {}).get("leader"), timeout=10,
                   step=0.1)
        wait_until("the agent on the new leader", lambda: "web-1" in h.connected_at(follower[1]), timeout=15)
        t = h.job(follower[1], job)["tasks"][-1]
        assert t["state"] == "RUNNING" and t["attempt"] == 1, t
        time.sleep(1)
        assert jm.emu()["submissions"] == {jid: 1} and jm.emu()["jobs"][jid]["state"] == "RUNNING", jm.emu()
        h.cli_at(follower[1], "cancel", job)
        def ended():  # `muster status` exits 1 for a cancelled job: read its JSON anyway
            out = h.cli_at(follower[1], "-o", "json", "status", job, check=False)[1]
            j = job_status(out) if out.strip() else None
            return j if j and j["state"] not in ("JOB_RUNNING", "JOB_PENDING") else None
        st = wait_until("the job to end", ended, timeout=30)
        t = st["tasks"][-1]
        assert t["state"] == "CANCELLED" and "stopped with a savepoint" in t["message"], t
        assert jm.emu()["submissions"] == {jid: 1} and jm.emu()["jobs"][jid]["state"] == "FINISHED", jm.emu()
    finally:
        if jm is not None:
            jm.stop()
        h.stop_all()


def catalogue(c, task=""):
    out = c.cli("-o", "json", "savepoints", *([task] if task else []))[1]
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_savepoint_catalogue_trigger_and_force_cancel(c):
    """musterd on a real etcd with savepoints_kept_per_task 2: `muster flink savepoint` takes
    savepoints of a running job without stopping it, a stop adds its own; each lands in the
    catalogue (`muster savepoints`) and in etcd, the oldest trimmed past 2. `cancel --force`
    then cancels a job whose stop-with-savepoint hangs, without a savepoint."""
    from bundles_test import etcd_keys, start_etcd
    etcd, endpoint = start_etcd(c)
    cfg = os.path.join(c.workdir, "musterd.yaml")
    with open(cfg, "w") as f:
        f.write("savepoints_kept_per_task: 2\n")
    setup(c, etcd=endpoint, musterd_flags=("--config", cfg))
    jm = JobManager(c.workdir)
    try:
        job = submit_detached(c, streaming(jm), task="clicks")
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING")
        rc, out, err = c.cli("flink", "savepoint", "nosuch", check=False)
        assert rc != 0 and "no RUNNING task named 'nosuch'" in err, (rc, out, err)
        out = c.cli("flink", "savepoint", "clicks")[1]
        assert "savepoint triggered: %s/web-1/clicks" % job in out, out
        sp1 = wait_until("the triggered savepoint in the catalogue", lambda: catalogue(c, "clicks"), timeout=20)[0]
        assert sp1["kind"] == "trigger" and sp1["flinkJobId"] == jid and sp1["jobId"] == job, sp1
        assert sp1["location"].startswith("file:" + os.path.join(jm.workdir, "savepoints")), sp1
        assert sp1["taskId"] == "%s/web-1/clicks" % job and sp1["attempt"] == 1, sp1
        emu = jm.emu()
        assert emu["jobs"][jid]["state"] == "RUNNING", emu  # not stopped
        assert [(t["kind"], t["cancel"]) for t in emu["triggers"]] == [("savepoints", False)], emu
        assert "Savepoint completed. Path: " + sp1["location"] in logs(c, job)
        assert task_of(c, job)["state"] == "RUNNING"
        keys = etcd_keys(endpoint, "/muster/savepoints/clicks/")
        assert len(keys) == 1 and keys[0].endswith("-%s-0-1" % job), keys

        c.cli("flink", "savepoint", "%s/clicks" % job)
        wait_until("a second savepoint", lambda: len(catalogue(c, "clicks")) == 2, timeout=20)
        # a stop: the third; the oldest (sp1) is trimmed, in memory and in etcd
        c.cli("cancel", job)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED", t
        cat = wait_until("the stop's savepoint", lambda: (lambda l: l if l and l[0]["kind"] == "stop" else None)(
            catalogue(c, "clicks")), timeout=20)
        assert len(cat) == 2 and cat[0]["location"] == t["outputParams"]["savepoint_path"], cat
        assert cat[1]["kind"] == "trigger" and sp1["location"] not in [x["location"] for x in cat], cat
        wait_until("etcd trimmed", lambda: len(etcd_keys(endpoint, "/muster/savepoints/clicks/")) == 2)
        assert catalogue(c, "other") == [] and len(catalogue(c)) == 2
        out = c.cli("savepoints", "clicks")[1]
        assert "TASK" in out and "stop" in out and cat[0]["location"] in out, out

        # cancel --force: the stop's savepoint hangs; --force cancels without one
        jm.post("/emulator/config", {"savepoint_mode": "hang"})
        job2 = submit_detached(c, streaming(jm, savepointTimeout="60s"), task="clicks", name="v2")
        jid2 = wait_until("the second job", lambda: (lambda r: r if r and r[0] != jid else None)(running_job(jm)))[0]
        wait_until("task RUNNING", lambda: task_of(c, job2)["state"] == "RUNNING")
        c.cli("cancel", job2)
        wait_until("the stop under way", lambda: "with a savepoint (trigger" in logs(c, job2), timeout=10)
        out = c.cli("cancel", "--force", job2)[1]
        assert "forced" in out, out
        t = wait_job_end(c, job2)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "CANCELED" in t["message"], t
        assert "savepoint_path" not in t["outputParams"], t
        assert "cancelled without a savepoint (the savepoint under way is abandoned)" in logs(c, job2)
        assert jm.emu()["jobs"][jid2]["state"] == "CANCELED", jm.emu()
        assert len(catalogue(c, "clicks")) == 2 and catalogue(c, "clicks")[0]["jobId"] == job, catalogue(c)

        # --force from the start: on_cancel savepoint is skipped, no trigger at all
        jm.post("/emulator/config", {"savepoint_mode": "ok"})
        n_triggers = len(jm.emu()["triggers"])
        job3 = submit_detached(c, streaming(jm), task="clicks", name="v3")
        jid3 = wait_until("the third job", lambda: (lambda r: r if r and r[0] not in (jid, jid2) else None)(
            running_job(jm)))[0]
        wait_until("task RUNNING", lambda: task_of(c, job3)["state"] == "RUNNING")
        c.cli("cancel", job3, "--force")
        t = wait_job_end(c, job3)["tasks"][-1]
        assert t["state"] == "CANCELLED" and "savepoint_path" not in t["outputParams"], t
        assert jm.emu()["jobs"][jid3]["state"] == "CANCELED" and len(jm.emu()["triggers"]) == n_triggers, jm.emu()
    finally:
        jm.stop()
        etcd.stop()


def test_flink_upgrade_command(c):
    """`muster flink upgrade TASK --bundle clicks@2.0.0` in each mode: savepoint (stop with a
    savepoint, recorded in the catalogue as kind upgrade, the new version starts from it),
    last-state (latest checkpoint; refused past max_checkpoint_age unless --force), stateless."""
    setup(c)
    jm = JobManager(c.workdir)
    try:
        job1 = submit_detached(c, streaming(jm), name="app", task="clicks")
        jid1 = wait_until("v1 running", lambda: running_job(jm))[0]
        wait_until("v1 RUNNING", lambda: task_of(c, job1)["state"] == "RUNNING")
        rc, out, err = c.cli("flink", "upgrade", "clicks", check=False)
        assert rc == 2 and "--bundle" in err, err
        rc, out, err = c.cli("flink", "upgrade", "clicks", "--bundle", "clicks@2.0.0", "--upgrade-mode", "fast",
                             check=False)
        assert rc == 2 and "not one of stateless, savepoint, last-state" in err, err
        out = c.cli("-o", "json", "flink", "upgrade", "clicks", "--bundle", "clicks@2.0.0")[1]
        up = json.loads(out.splitlines()[-1])
        job2 = up["jobId"]
        assert up["upgradeFrom"] == jid1 and up["upgradeMode"] == "savepoint" and up["upgradedJob"] == job1, up
        jid2 = wait_until("v2 running", lambda: (lambda r: r if r and r[0] != jid1 else None)(running_job(jm)))[0]
        emu = jm.emu()
        sp = [t for t in emu["triggers"] if t["jid"] == jid1][0]["location"]
        assert emu["jobs"][jid1]["state"] == "FINISHED" and emu["jobs"][jid2]["run"]["savepointPath"] == sp, emu
        st = status(c, job2)
        assert st["spec"]["tasks"][0]["bundle"] == "clicks@2.0.0", st["spec"]
        cat = wait_until("the upgrade's savepoint", lambda: catalogue(c, "clicks"), timeout=10)
        assert cat[0]["kind"] == "upgrade" and cat[0]["location"] == sp and cat[0]["flinkJobId"] == jid1, cat
        assert wait_job_end(c, job1)["tasks"][-1]["state"] == "SUCCEEDED"
        wait_until("v2 RUNNING", lambda: task_of(c, job2)["state"] == "RUNNING")

        # last-state: a two-hour-old checkpoint is refused (nothing changes), --force takes it
        wait_until("v2 checkpointed", lambda: jm.emu()["jobs"][jid2]["checkpoints"] >= 2)
        jm.post("/emulator/config", {"checkpoint_age_ms": 7200000})
        job3 = c.cli("flink", "upgrade", "clicks", "--bundle", "clicks@2.0.0", "--upgrade-mode", "last-state")[1]
        job3 = job3.split()[1].rstrip(":")
        t = wait_job_end(c, job3)["tasks"][-1]
        assert t["state"] == "FAILED" and "over max_checkpoint_age" in t["message"], t
        assert jm.emu()["jobs"][jid2]["state"] == "RUNNING"
        job4 = c.cli("flink", "upgrade", "%s/clicks" % job2, "--bundle", "clicks@2.0.0", "--upgrade-mode",
                     "last-state", "--force")[1].split()[1].rstrip(":")
        jid4 = wait_until("v4 running", lambda: (lambda r: r if r and r[0] not in (jid1, jid2) else None)(
            running_job(jm)))[0]
        emu = jm.emu()
        assert emu["jobs"][jid2]["state"] == "CANCELED", emu
        assert emu["jobs"][jid4]["run"]["savepointPath"].startswith("file:/tmp/flink-ck/%s/chk-" % jid2), emu
        wait_until("v4 RUNNING", lambda: task_of(c, job4)["state"] == "RUNNING")

        # stateless: cancel, start empty
        job5 = c.cli("flink", "upgrade", "clicks", "--bundle", "clicks@2.0.0", "--upgrade-mode",
                     "stateless")[1].split()[1].rstrip(":")
        jid5 = wait_until("v5 running", lambda: (lambda r: r if r and r[0] not in (jid1, jid2, jid4) else None)(
            running_job(jm)))[0]
        emu = jm.emu()
        assert emu["jobs"][jid4]["state"] == "CANCELED" and emu["jobs"][jid5]["run"]["savepointPath"] is None, emu
        assert all(n == 1 for n in emu["submissions"].values()), emu
        wait_until("v5 RUNNING", lambda: task_of(c, job5)["state"] == "RUNNING")

        # a restore that fails: the new version FAILS with Flink's exception, the old version's
        # savepoint stays recorded (params and catalogue) and the message says so
        jm.post("/emulator/config", {"savepoints_unreadable": True})
        job6 = c.cli("flink", "upgrade", "clicks", "--bundle", "clicks@2.0.0")[1].split()[1].rstrip(":")
        t = wait_job_end(c, job6)["tasks"][-1]
        sp6 = t["outputParams"]["upgrade_savepoint_path"]
        assert t["state"] == "FAILED" and "FileNotFoundException" in t["message"], t
        assert "did not restore; the old version is stopped and its savepoint stays recorded" in t["message"], t
        cat = catalogue(c, "clicks")
        assert cat[0]["location"] == sp6 and cat[0]["kind"] == "upgrade" and cat[0]["flinkJobId"] == jid5, cat
        assert jm.emu()["jobs"][jid5]["state"] == "FINISHED", jm.emu()
        assert wait_job_end(c, job5)["tasks"][-1]["state"] == "SUCCEEDED"
    finally:
        jm.stop()


def test_agent_sigterm_reattaches_by_job_id(c):
    """A graceful agent stop (SIGTERM) leaves the Flink job running and the attempt detached;
    the restarted agent reports it LOST, the retry re-attaches by JobID: one submission.
    (A heartbeat timeout longer than the agent's restart: past it, a lone `any` target's retry
    finds no agent and the job ends unreachable, as after a kill -9.)"""
    setup(c, musterd_flags=("--heartbeat-timeout", "15s"))
    jm = JobManager(c.workdir)
    try:
        job = submit_detached(c, streaming(jm, onCancel="cancel"), target='{any: "role=web"}',
                              extra="    retries: 2\n")
        jid = wait_until("a running streaming job", lambda: running_job(jm))[0]
        wait_until("task RUNNING", lambda: task_of(c, job)["state"] == "RUNNING")
        p = c.agents["web-1"]
        p.p.send_signal(signal.SIGTERM)
        assert p.p.wait(30) == 0
        p.log.close()
        t = task_of(c, job)
        assert t["state"] == "RUNNING" and t["attempt"] == 1, t  # nothing final was reported
        assert jm.emu()["jobs"][jid]["state"] == "RUNNING", jm.emu()
        start_agent(c)
        wait_until("the retry re-attached", lambda: "re-attached" in logs(c, job), timeout=30)
        t = task_of(c, job)
        assert t["state"] == "RUNNING" and t["attempt"] >= 2, t
        emu = jm.emu()
        assert emu["submissions"] == {jid: 1} and len(emu["jobs"]) == 1, emu
        c.cli("cancel", job)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "CANCELLED" and jm.emu()["jobs"][jid]["state"] == "CANCELED", (t, jm.emu())
    finally:
        jm.stop()


def refused(url):
    try:
        urllib.request.urlopen(url + "/overview", timeout=2).read()
        return False
    except OSError:
        return True


def test_kubernetes_application_end_read_from_the_kept_cluster(c):
    """kubernetes-application has no RM to ask once a cluster is gone, so the task keeps it
    (-Dexecution.shutdown-on-application-finish=false), reads the job's end from it, and shuts it
    down (DELETE /cluster). A job that ends while the agent is stopped is read the same way by
    the retry. The emulators' cluster launcher is the RM emulator; no RM is asked here."""
    setup(c, musterd_flags=("--heartbeat-timeout", "15s"))
    rm = YarnRM(c.workdir, name="rm")
    try:
        k8s = {"target": "kubernetes-application", "flinkHome": EMU_DIR, "jar": "lib/app.jar",
               "kubernetesNamespace": "flink", "pollInterval": "200ms"}
        rc, run = submit(c, dict(k8s, entryClass="com.example.WordCount", kubernetesClusterId="wc"), extra=env_for(rm),
                         name="k8s-ok")
        assert rc == 0 and run["state"] == "SUCCEEDED" and "FINISHED" in run["message"], run
        assert "shut down (DELETE /cluster) after job %s ended" % run["outputParams"]["job_id"] in run["outputTail"], run
        wait_until("the cluster gone", lambda: refused(run["outputParams"]["jobmanager_url"]))
        rc, run = submit(c, dict(k8s, entryClass="com.example.Broken", kubernetesClusterId="broken"), extra=env_for(rm),
                         name="k8s-broken")
        assert run["state"] == "FAILED" and "input /data/in is missing" in run["message"], run
        wait_until("the cluster gone", lambda: refused(run["outputParams"]["jobmanager_url"]))

        # the agent stops (SIGTERM); the job is stopped on the cluster meanwhile; the retry reads
        # how it ended from the kept cluster and shuts it down
        job = submit_detached(c, dict(k8s, entryClass="com.example.Clicks", kind="streaming", kubernetesClusterId="clicks"),
                              extra=env_for(rm) + "    retries: 2\n", target='{any: "role=web"}', name="k8s-stream")
        t = wait_until("task RUNNING", lambda: (lambda t: t if t["state"] == "RUNNING" and
                       "jobmanager_url" in t.get("outputParams", {}) else None)(task_of(c, job)))
        url, jid = t["outputParams"]["jobmanager_url"], t["outputParams"]["job_id"]
        p = c.agents["web-1"]
        p.p.send_signal(signal.SIGTERM)
        assert p.p.wait(30) == 0
        p.log.close()
        get = lambda: json.loads(urllib.request.urlopen(url + "/jobs/" + jid, timeout=5).read())["state"]
        wait_until("the job RUNNING on the cluster", lambda: get() == "RUNNING", step=0.2)
        req = urllib.request.Request(url + "/jobs/%s/stop" % jid, method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"targetDirectory": "file:" + c.workdir + "/sp"}).encode())
        trig = json.loads(urllib.request.urlopen(req, timeout=5).read())["request-id"]
        status = lambda: json.loads(urllib.request.urlopen(url + "/jobs/%s/savepoints/%s" % (jid, trig),
                                                           timeout=5).read())["status"]["id"]
        wait_until("the savepoint", lambda: status() == "COMPLETED", step=0.2)
        wait_until("the job FINISHED on the kept cluster", lambda: get() == "FINISHED", step=0.2)
        time.sleep(0.6)
        assert not refused(url)  # still there: kept for us
        start_agent(c)
        t = wait_job_end(c, job)["tasks"][-1]
        assert t["state"] == "SUCCEEDED" and t["attempt"] >= 2 and "FINISHED" in t["message"], t
        assert "re-attached (found FINISHED on the cluster" in logs(c, job)
        wait_until("the cluster gone", lambda: refused(url))
    finally:
        rm.stop()


if __name__ == "__main__":
    main([
        test_batch_success_failure_and_bad_input,
        test_stream_stop_with_savepoint_then_restore,
        test_upgrade_modes,
        test_savepoint_timeout_keeps_job_running,
        test_agent_kill9_reattaches_by_job_id,
        test_application_targets_through_the_cli,
        test_leader_kill9_while_streaming,
        test_savepoint_catalogue_trigger_and_force_cancel,
        test_flink_upgrade_command,
        test_agent_sigterm_reattaches_by_job_id,
        test_kubernetes_application_end_read_from_the_kept_cluster,
    ])
