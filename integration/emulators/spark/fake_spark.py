"""The fake spark-submit and spark-sql (bin/spark-submit, bin/spark-sql): they parse the real
command line (SparkSubmitArguments' options), print the lines Spark's clients print (log4j's
"yy/MM/dd HH:mm:ss LEVEL Class: message" on stderr, the program's output on stdout) and exit
with Spark's exit codes, talking to spark_emu.py where the real ones talk to a cluster. The
emulator's addresses come from $SPARK_HOME/conf/emulator.json ({"rm": url, "rest": url})."""
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

VALUE_OPTS = {"--master", "--deploy-mode", "--class", "--name", "--jars", "--packages", "--exclude-packages",
              "--repositories", "--py-files", "--files", "--archives", "--conf", "-c", "--properties-file",
              "--driver-memory", "--driver-java-options", "--driver-library-path", "--driver-class-path",
              "--executor-memory", "--proxy-user", "--driver-cores", "--total-executor-cores", "--executor-cores",
              "--num-executors", "--queue", "--principal", "--keytab", "--kill", "--status"}
FLAG_OPTS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version"}
SQL_VALUE_OPTS = {"-f", "-e", "-i", "--hiveconf", "--hivevar", "-d", "--define", "--database"}


def log(level, cls, msg):
    sys.stderr.write("%s %s %s: %s\n" % (time.strftime("%y/%m/%d %H:%M:%S"), level, cls, msg))
    sys.stderr.flush()


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse(argv, sql):
    opts, conf, rest = {}, {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in VALUE_OPTS or (sql and a in SQL_VALUE_OPTS):
            if i + 1 >= len(argv):
                sys.stderr.write("Error: Missing argument for option '%s'.\n" % a)
                sys.exit(1)
            v = argv[i + 1]
            if a in ("--conf", "-c"):
                if "=" not in v:
                    sys.stderr.write("Error: Spark config without '=': %s\n" % v)
                    sys.exit(1)
                k, _, val = v.partition("=")
                conf[k] = val
            else:
                opts[a] = v
            i += 2
        elif a in FLAG_OPTS:
            opts[a] = True
            i += 1
        elif a.startswith("--") and not sql:
            sys.stderr.write("Error: Unrecognized option: %s\n" % a)
            sys.exit(1)
        else:
            rest = argv[i:]
            break
    return opts, conf, rest


def emulator():
    home = os.environ.get("SPARK_HOME") or os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
    with open(os.path.join(home, "conf", "emulator.json")) as f:
        return json.load(f)


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json;charset=UTF-8"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


class Killed(Exception):
    pass


def on_term(signum, frame):
    raise Killed()


def boot(name, master):
    log("WARN", "NativeCodeLoader", "Unable to load native-hadoop library for your platform... using builtin-java classes where applicable")
    log("INFO", "SparkContext", "Running Spark version 3.5.0")
    log("INFO", "SparkContext", "Submitted application: %s" % name)
    log("INFO", "Utils", "Successfully started service 'sparkDriver' on port 40123.")
    log("INFO", "Utils", "Successfully started service 'SparkUI' on port 4040.")
    log("INFO", "SparkUI", "Bound SparkUI to 0.0.0.0, and started at http://127.0.0.1:4040")


def yarn_report(app_id, state, rm):
    log("INFO", "Client", "Application report for %s (state: %s)" % (app_id, state))


def yarn_details(app_id, rm, queue):
    log("INFO", "Client", "\n\t client token: N/A\n\t diagnostics: AM container is launched, waiting for AM container to Register with RM"
        "\n\t ApplicationMaster host: N/A\n\t ApplicationMaster RPC port: -1\n\t queue: %s\n\t start time: %d\n\t final status: UNDEFINED"
        "\n\t tracking URL: %s/proxy/%s/\n\t user: spark" % (queue, int(time.time() * 1000), rm, app_id))


def describe_pod(p):
    """KubernetesUtils.formatPodState's shape: one '\t key: value' line per field."""
    labels = ", ".join("%s -> %s" % kv for kv in sorted(p["labels"].items()))
    lines = ["pod name: %s" % p["name"], "namespace: %s" % p["namespace"], "labels: %s" % labels,
             "pod uid: 00000000-0000-0000-0000-000000000000", "creation time: %s" % p["creationTimestamp"],
             "service account name: spark", "node name: node-1", "phase: %s" % p["phase"]]
    if p["exitCode"] is not None:
        lines += ["container status: ", "\t container name: spark-kubernetes-driver", "\t container state: terminated",
                  "\t exit code: %d" % p["exitCode"]]
    return "\n\t " + "\n\t ".join(lines)


def k8s_op(what, sid, emu):
    """spark-submit --status/--kill namespace:pod (a glob) --master k8s://... (K8SSparkSubmitOperation)."""
    code, pods = call("POST" if what == "kill" else "GET", "%s/_emu/k8s/pods?id=%s" % (emu["rm"], urllib.parse.quote(sid)))
    if code != 200:
        log("ERROR", "K8SSparkSubmitOperation", "io.fabric8.kubernetes.client.KubernetesClientException: emulated failure")
        return 1
    if not pods:
        out("Application not found.")
        return 0
    for p in pods:
        if what == "status":
            out("Application status (driver): " + describe_pod(p))
    return 0


def k8s_submit(name, master, conf, emu):
    """KubernetesClientApplication: creates the driver pod, then watches it or (waitAppCompletion
    false) says where it went and exits."""
    labels = {k[len("spark.kubernetes.driver.label."):]: v for k, v in conf.items()
              if k.startswith("spark.kubernetes.driver.label.")}
    code, p = call("POST", emu["rm"] + "/_emu/k8s/submit", {"name": name, "namespace": conf.get("spark.kubernetes.namespace"),
                                                           "labels": labels, "conf": conf})
    if code != 200:
        log("ERROR", "Client", "Please check \"kubectl auth can-i create pod\" first.")
        return 1
    sid = "%s:%s" % (p["namespace"], p["name"])
    app_id = p["labels"]["spark-app-selector"]
    time.sleep(float(conf.get("spark.emulator.clientSleepBeforeId", "0")))  # a slow client
    if conf.get("spark.emulator.clientCrashAfterSubmit") == "true":  # the pod exists, then the client dies
        sys.stderr.write('Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: '
                         'Operation: [get] for kind: [Pod] with name: [null]: java.net.SocketException: Connection reset\n')
        return 1
    log("INFO", "LoggingPodStatusWatcherImpl", "State changed, new state: " + describe_pod(p))
    if conf.get("spark.kubernetes.submission.waitAppCompletion", "true") == "false":
        log("INFO", "LoggingPodStatusWatcherImpl", "Deployed Spark application %s with application ID %s and submission ID %s "
            "into Kubernetes" % (name, app_id, sid))
        log("INFO", "ShutdownHookManager", "Shutdown hook called")
        return 0
    while True:
        time.sleep(1)
        _, pods = call("GET", "%s/_emu/k8s/pods?id=%s" % (emu["rm"], urllib.parse.quote(sid)))
        if not pods:
            log("INFO", "LoggingPodStatusWatcherImpl", "Application %s with submission ID %s finished" % (name, sid))
            return 1
        p = pods[0]
        log("INFO", "LoggingPodStatusWatcherImpl", "Application status for %s (phase: %s)" % (app_id, p["phase"]))
        if p["phase"] in ("Succeeded", "Failed"):
            log("INFO", "LoggingPodStatusWatcherImpl", "Container final statuses:\n\n\t container name: spark-kubernetes-driver"
                "\n\t container state: terminated\n\t exit code: %d" % p["exitCode"])
            log("INFO", "LoggingPodStatusWatcherImpl", "Application %s with submission ID %s finished" % (name, sid))
            return 0 if p["phase"] == "Succeeded" else 1


def run_program(conf, sql_file=None, sql_text=None):
    """The 'user program': prints its lines, runs runSeconds, then succeeds or throws."""
    run_s = float(conf.get("spark.emulator.runSeconds", "0.5"))
    final = conf.get("spark.emulator.final", "SUCCEEDED")
    if sql_file is not None or sql_text is not None:
        text = sql_text if sql_text is not None else open(sql_file).read()
        for stmt in [s.strip() for s in text.split(";") if s.strip()]:
            if "fail" in stmt.lower():
                sys.stderr.write("Error in query: [TABLE_OR_VIEW_NOT_FOUND] The table or view `fail` cannot be found.\n")
                return 1
            time.sleep(run_s / 2)
            out(re.sub(r"(?i)^select\s+", "", stmt))
            sys.stderr.write("Time taken: %.3f seconds, Fetched 1 row(s)\n" % (run_s / 2))
        return 0
    for line in conf.get("spark.emulator.stdout", "Pi is roughly 3.14159").split("|"):
        out(line)
    steps = max(1, int(run_s / 0.1))
    for _ in range(steps):
        time.sleep(run_s / steps)
    if final != "SUCCEEDED":
        sys.stderr.write('Exception in thread "main" java.lang.RuntimeException: emulated failure\n'
                         "\tat org.example.Main$.main(Main.scala:12)\n\tat org.example.Main.main(Main.scala)\n")
        return 1
    return 0


def main(sql=False):
    signal.signal(signal.SIGTERM, on_term)
    opts, conf, rest = parse(sys.argv[1:], sql)
    master = opts.get("--master", "local[*]")
    mode = opts.get("--deploy-mode", "client")
    name = opts.get("--name", "spark")
    emu = emulator() if not master.startswith("local") or "--kill" in opts or "--status" in opts else {}
    if ("--kill" in opts or "--status" in opts) and master.startswith("k8s://"):
        return k8s_op("kill" if "--kill" in opts else "status", opts.get("--kill") or opts.get("--status"), emu)
    if "--kill" in opts or "--status" in opts:
        did = opts.get("--kill") or opts.get("--status")
        what = "kill" if "--kill" in opts else "status"
        log("INFO", "RestSubmissionClient", "Submitting a request to %s submission %s in %s." % (what, did, master))
        code, resp = call("POST" if what == "kill" else "GET", "%s/v1/submissions/%s/%s" % (emu["rest"], what, did))
        log("INFO", "RestSubmissionClient", "Server responded with %s:\n%s" % (resp.get("action"), json.dumps(resp, indent=2)))
        return 0 if code == 200 and resp.get("success") else 1
    if sql:
        sql_file = next((rest[i + 1] for i in range(len(rest) - 1) if rest[i] == "-f"), None)
        sql_text = next((rest[i + 1] for i in range(len(rest) - 1) if rest[i] == "-e"), None)
        if sql_file is not None and not os.path.exists(sql_file):
            sys.stderr.write("Could not open input file for reading. (File file:%s does not exist)\n" % sql_file)
            return 1
        resource, args = None, []
    else:
        if not rest:
            sys.stderr.write("Error: Must specify a primary resource (JAR or Python or R file)\n")
            return 1
        resource, args = rest[0], rest[1:]
        if "://" not in resource and not os.path.exists(resource):
            if resource.endswith(".py"):
                sys.stderr.write("python3: can't open file '%s': [Errno 2] No such file or directory\n" % resource)
                return 2
            sys.stderr.write("Warning: Local jar %s does not exist, skipping.\n" % resource)
            sys.stderr.write("Error: Failed to load class %s.\n" % opts.get("--class", "<main>"))
            return 101
    queue = opts.get("--queue", "default")
    try:
        if master == "yarn":
            rm = emu["rm"]
            log("INFO", "Client", "Requesting a new application from cluster with 1 NodeManagers")
            code, resp = call("POST", rm + "/_emu/yarn/submit", {"name": name, "queue": queue, "tags": conf.get("spark.yarn.tags", ""),
                                                                 "conf": conf, "mode": mode})
            if code != 200:
                sys.stderr.write('Exception in thread "main" java.net.ConnectException: Call From host to rm:8032 failed on connection exception\n')
                return 1
            app_id = resp["id"]
            time.sleep(float(conf.get("spark.emulator.clientSleepBeforeId", "0")))  # a slow client
            if conf.get("spark.emulator.clientCrashAfterSubmit") == "true":  # submitted, then the client dies
                sys.stderr.write('Exception in thread "main" java.io.IOException: Connection reset by peer\n')
                return 1
            log("INFO", "Client", "Submitting application %s to ResourceManager" % app_id)
            log("INFO", "YarnClientImpl", "Submitted application %s" % app_id)
            yarn_report(app_id, "ACCEPTED", rm)
            yarn_details(app_id, rm, queue)
            if mode == "cluster":
                if conf.get("spark.yarn.submit.waitAppCompletion", "true") == "false":
                    log("INFO", "ShutdownHookManager", "Shutdown hook called")
                    return 0
                while True:
                    time.sleep(1)
                    _, r = call("GET", "%s/ws/v1/cluster/apps/%s" % (rm, app_id))
                    st = r["app"]["state"]
                    yarn_report(app_id, st, rm)
                    if st in ("FINISHED", "FAILED", "KILLED"):
                        if st == "KILLED":
                            sys.stderr.write('Exception in thread "main" org.apache.spark.SparkException: Application %s is killed\n' % app_id)
                            return 1
                        if r["app"]["finalStatus"] != "SUCCEEDED":
                            sys.stderr.write('Exception in thread "main" org.apache.spark.SparkException: Application %s finished with failed status\n' % app_id)
                            return 1
                        return 0
            boot(name, master)
            yarn_report(app_id, "RUNNING", rm)
            log("INFO", "YarnClientSchedulerBackend", "Application %s has started running." % app_id)
            try:
                rc = run_program(conf)
            except Killed:
                call("POST", rm + "/_emu/yarn/finish", {"id": app_id, "state": "FINISHED", "finalStatus": "FAILED",
                                                       "diagnostics": "Shutdown hook called before final status was reported."})
                raise
            call("POST", rm + "/_emu/yarn/finish", {"id": app_id, "state": "FINISHED",
                                                   "finalStatus": "SUCCEEDED" if rc == 0 else "FAILED",
                                                   "diagnostics": "" if rc == 0 else "User class threw exception: java.lang.RuntimeException: emulated failure"})
            log("INFO", "SparkContext", "Successfully stopped SparkContext")
            return rc
        if master.startswith("spark://") and mode == "cluster":
            rest_url = emu["rest"]
            log("INFO", "RestSubmissionClient", "Submitting a request to launch an application in %s." % master)
            props = dict(conf)
            props.update({"spark.app.name": name, "spark.master": master, "spark.submit.deployMode": "cluster"})
            code, resp = call("POST", rest_url + "/v1/submissions/create", {
                "action": "CreateSubmissionRequest", "appResource": resource, "mainClass": opts.get("--class"),
                "appArgs": args, "sparkProperties": props, "environmentVariables": {}, "clientSparkVersion": "3.5.0"})
            if code != 200 or not resp.get("success"):
                log("ERROR", "RestSubmissionClient", "Application submission failed: %s" % (resp.get("message") if isinstance(resp, dict) else resp))
                return 1
            did = resp["submissionId"]
            if conf.get("spark.emulator.clientCrashAfterSubmit") == "true":  # created, then the client dies
                sys.stderr.write('Exception in thread "main" java.net.SocketException: Connection reset\n')
                return 1
            log("INFO", "RestSubmissionClient", "Submission successfully created as %s. Polling submission state..." % did)
            log("INFO", "RestSubmissionClient", "Submitting a request for the status of submission %s in %s." % (did, master))
            _, s = call("GET", "%s/v1/submissions/status/%s" % (rest_url, did))
            log("INFO", "RestSubmissionClient", "State of driver %s is now %s." % (did, s.get("driverState")))
            log("INFO", "RestSubmissionClient", "Server responded with CreateSubmissionResponse:\n%s" % json.dumps(resp, indent=2))
            return 0
        if master.startswith("k8s://") and mode == "cluster":
            return k8s_submit(name, master, conf, emu)
        boot(name, master)
        if master.startswith("spark://"):
            log("INFO", "StandaloneAppClient$ClientEndpoint", "Connecting to master %s..." % master)
            log("INFO", "StandaloneSchedulerBackend", "Connected to Spark cluster with app ID app-%s-0000" % time.strftime("%Y%m%d%H%M%S"))
        else:
            log("INFO", "Executor", "Starting executor ID driver on host 127.0.0.1")
        rc = run_program(conf, sql_file if sql else None, sql_text if sql else None)
        log("INFO", "SparkContext", "Successfully stopped SparkContext")
        log("INFO", "ShutdownHookManager", "Shutdown hook called")
        return rc
    except Killed:
        log("INFO", "SparkContext", "Invoking stop() from shutdown hook")
        log("INFO", "ShutdownHookManager", "Shutdown hook called")
        return 143
