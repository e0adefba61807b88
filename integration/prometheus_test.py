"""A real Prometheus (Debian's) watching a real fleet, as docs/observability.md sets it up:
musterd on a real etcd and two agents serve /metrics, `promtool check metrics` accepts all
three, Prometheus scrapes them on loopback while jobs run, and its HTTP API then shows the
task counters, a duration quantile and a rate that match what the test ran. The shipped alert
rules pass `promtool check rules` and their unit tests (`promtool test rules`), and evaluate
without error on the live data; every expression of the shipped Grafana dashboard is a valid
query. With etcd gone, scrapes still answer at once from fresh snapshots that count the failed
etcd requests."""
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

from ha_test import HA
from harness import Proc, free_port, main, wait_until

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")


class PromCluster(HA):
    """musterd (one member on a real etcd), agents, and a Prometheus scraping them."""

    def __init__(self, *bins):
        super().__init__(*bins)
        self.prometheus = None
        self.prom_url = None

    def start_prometheus(self, targets):
        """targets: {job: [host:port, ...]}; scrapes every second, loads docs/alerts.yml."""
        port = free_port()
        cfg = os.path.join(self.workdir, "prometheus.yml")
        jobs = "".join("  - job_name: %s\n    static_configs:\n      - targets: [%s]\n" %
                       (job, ", ".join("'%s'" % t for t in ts)) for job, ts in targets.items())
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\nscrape_configs:\n%s" %
                    (os.path.abspath(os.path.join(DOCS, "alerts.yml")), jobs))
        self.prom_url = "http://127.0.0.1:%d" % port
        self.prometheus = Proc("prometheus", [
            "/usr/bin/prometheus", "--config.file", cfg,
            "--storage.tsdb.path", os.path.join(self.workdir, "tsdb"),
            "--web.listen-address", "127.0.0.1:%d" % port], self.workdir)
        wait_until("Prometheus to be ready", lambda: http_get(self.prom_url + "/-/ready")[0] == 200,
                   timeout=30)

    def query(self, expr):
        """The result list of an instant query (raises on a query error)."""
        code, body = http_get(self.prom_url + "/api/v1/query?" +
                              urllib.parse.urlencode({"query": expr}))
        reply = json.loads(body)
        assert code == 200 and reply["status"] == "success", (expr, code, body)
        return reply["data"]["result"]

    def value(self, expr):
        r = self.query(expr)
        return float(r[0]["value"][1]) if r else None

    def stop_all(self):
        if self.prometheus is not None and self.prometheus.alive():
            self.prometheus.stop()
        problems = []
        if self.musterd is not None:
            rc = self.musterd.stop()
            if rc != 0:
                problems.append("musterd exited %d:\n%s" % (rc, self.musterd.text()[-3000:]))
            self.musterd = None
        try:
            super().stop_all()
        finally:
            if problems:
                raise AssertionError("\n".join(problems))

    def procs(self):
        return super().procs() + ([self.musterd] if self.musterd else []) + \
            ([self.prometheus] if self.prometheus else [])


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def promtool(*args, stdin=None):
    r = subprocess.run(["/usr/bin/promtool"] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=60, cwd=DOCS)
    return r.returncode, r.stdout + r.stderr


def test_alert_rules_and_their_unit_tests(c):
    rc, out = promtool("check", "rules", "alerts.yml")
    assert rc == 0 and "SUCCESS: 10 rules found" in out, out
    rc, out = promtool("test", "rules", "alerts_test.yml")
    assert rc == 0 and "SUCCESS" in out, out
    # the unit tests can fail: a wrong expectation is reported
    broken = os.path.join(c.workdir, "broken_test.yml")
    with open(os.path.join(DOCS, "alerts_test.yml")) as f:
        text = f.read().replace('"50% of shell', '"40% of shell')
    with open(broken, "w") as f:
        f.write(text.replace("  - alerts.yml", "  - " + os.path.abspath(os.path.join(DOCS, "alerts.yml"))))
    rc, out = promtool("test", "rules", broken)
    assert rc != 0 and "FAILED" in out, out


def scrape(url):
    code, body = http_get(url)
    assert code == 200, (url, code)
    return body


def test_prometheus_scrapes_a_running_fleet(c):
    c.start_etcd()
    ports = {"musterd": free_port(), "web-1": free_port(), "web-2": free_port()}
    c.start_musterd("--metrics-listen", "127.0.0.1:%d" % ports["musterd"], etcd=c.endpoint)
    for a in ("web-1", "web-2"):
        c.start_agent(a, "role=web", "--metrics-listen", "127.0.0.1:%d" % ports[a])
    wait_until("both agents connected",
               lambda: c.states() == {"web-1": "AGENT_CONNECTED", "web-2": "AGENT_CONNECTED"})
    urls = {k: "http://127.0.0.1:%d/metrics" % p for k, p in ports.items()}
    wait_until("the first snapshots", lambda: all(
        "muster_metrics_series_dropped_total" in scrape(u) for u in urls.values()))
    for name, url in urls.items():
        text = scrape(url)
        rc, out = promtool("check", "metrics", stdin=text)
        assert rc == 0 and out.strip() == "", (name, out)
        print("%s: %d samples, %d bytes before any task" % (
            name, sum(1 for l in text.splitlines() if l and not l.startswith("#")), len(text)))
    c.start_prometheus({"musterd": ["127.0.0.1:%d" % ports["musterd"]],
                        "muster-agent": ["127.0.0.1:%d" % ports["web-1"],
                                          "127.0.0.1:%d" % ports["web-2"]]})
    wait_until("every target up", lambda: c.value("sum(up)") == 3, timeout=30)

    # job 1: two successes of about 0.3 s
    rc, _, err = c.cli("run", "--hosts", "web-1,web-2", "--", "sleep 0.3", check=False)
    assert rc == 0, err
    ok = 'sum(muster_tasks_finished_total{type="shell",state="succeeded",reason="none"})'
    wait_until("Prometheus to see 2 successes", lambda: c.value(ok) == 2, timeout=30)
    seen_2 = time.monotonic()
    time.sleep(5)
    # job 2: an exit code on web-1, a timeout on web-2; job 3: two more successes
    rc, _, _ = c.cli("run", "--hosts", "web-1", "--", "exit 3", check=False)
    assert rc != 0
    rc, _, _ = c.cli("run", "--hosts", "web-2", "--timeout", "1s", "--", "sleep 30", check=False)
    assert rc != 0
    # (each also writes and syncs 1 MiB to its work directory: block IO by type)
    io = ("dd if=/dev/zero of=io.bin bs=64k count=16 conv=fsync 2>/dev/null"
          " && rm io.bin && sleep 0.3")
    rc, _, err = c.cli("run", "--hosts", "web-1,web-2", "--", io, check=False)
    assert rc == 0, err
    wait_until("Prometheus to see 4 successes", lambda: c.value(ok) == 4, timeout=30)
    time.sleep(2)

    # the counters, by state and reason class, on the control plane and summed over agents
    want = {("succeeded", "none"): 4, ("failed", "exit_code"): 1, ("timed_out", "timeout"): 1}
    for metric in ("muster_tasks_finished_total", "muster_agent_tasks_finished_total"):
        got = {(r["metric"]["state"], r["metric"]["reason"]): float(r["value"][1])
               for r in c.query('sum by (state, reason) (%s{type="shell"})' % metric)}
        assert got == want, (metric, got)
    per_agent = {r["metric"]["instance"]: float(r["value"][1]) for r in
                 c.query("sum by (instance) (muster_agent_tasks_finished_total)")}
    assert per_agent == {"127.0.0.1:%d" % ports["web-1"]: 3,
                         "127.0.0.1:%d" % ports["web-2"]: 3}, per_agent
    assert c.value('sum(muster_tasks_started_total{type="shell"})') == 6

    # a quantile: of the six run times (4 x 0.3 s, one exit at once, one 1 s timeout) the
    # median falls in the (0.25, 0.5] bucket
    q = c.value('histogram_quantile(0.5, sum by (le) '
                '(muster_task_duration_seconds_bucket{type="shell"}))')
    assert q is not None and 0.25 < q <= 0.5, q
    q = c.value('histogram_quantile(0.5, sum by (le) '
                '(muster_agent_task_duration_seconds_bucket{type="shell"}))')
    assert q is not None and 0.25 < q <= 0.5, q
    # a rate: over a window that starts after the first two successes were scraped, two more
    # per window (Prometheus extrapolates a counter's increase to the window's edges: by at
    # most window / (window - 2 scrape intervals))
    window = int(time.monotonic() - seen_2) - 1
    rate = c.value('sum(rate(muster_tasks_finished_total{state="succeeded"}[%ds]))' % window)
    assert rate is not None and 2.0 / window <= rate <= 2.0 / (window - 2), (window, rate)
    # the other families have data too
    assert c.value('sum(muster_jobs_by_state{state="succeeded"})') == 2
    assert c.value('sum(muster_jobs_by_state{state="failed"})') == 2
    # one submission-to-assignment per host run, one assignment-to-start per attempt
    assert c.value('sum(muster_dispatch_latency_seconds_count{stage="assign"})') == 6
    assert c.value('sum(muster_dispatch_latency_seconds_count{stage="start"})') == 6
    assert c.value('sum(muster_rpc_requests_total{service="muster.v1.Admin",method="RunAdhoc",code="OK"})') == 4
    assert c.value('sum(muster_etcd_request_duration_seconds_count{op="txn"})') > 0
    assert c.value("max(muster_leader)") == 1
    assert c.value("sum(muster_leader_changes_total)") >= 1
    assert c.value('sum(muster_agent_task_cpu_seconds_total{type="shell"})') >= 0
    assert c.value('sum(muster_agent_task_queue_wait_seconds_count{type="shell"})') == 6
    written = c.value('sum(muster_agent_task_written_bytes_total{type="shell"})')
    assert written is not None and written >= 2 * 1048576, written

    for name, url in urls.items():
        text = scrape(url)
        rc, out = promtool("check", "metrics", stdin=text)
        assert rc == 0 and out.strip() == "", (name, out)
        print("%s: %d samples, %d bytes after 6 shell attempts" % (
            name, sum(1 for l in text.splitlines() if l and not l.startswith("#")), len(text)))

    # the shipped rules evaluate on these data without errors; the dashboard's queries parse
    code, body = http_get(c.prom_url + "/api/v1/rules")
    groups = json.loads(body)["data"]["groups"]
    assert [g["name"] for g in groups] == ["muster"], groups
    wait_until("every rule evaluated", lambda: all(
        r.get("lastEvaluation", "").startswith("20") for r in
        json.loads(http_get(c.prom_url + "/api/v1/rules")[1])["data"]["groups"][0]["rules"]))
    rules = json.loads(http_get(c.prom_url + "/api/v1/rules")[1])["data"]["groups"][0]["rules"]
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad and len(rules) == 10, bad
    with open(os.path.join(DOCS, "grafana-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 20
    for e in exprs:
        c.query(e)

    # etcd goes away: /metrics still answers at once from the last snapshot, which keeps
    # being taken (its timestamp moves), and counts the failed etcd requests; /healthz says why
    c.etcd.stop()
    def etcd_errors():
        t0 = time.monotonic()
        text = scrape(urls["musterd"])
        assert time.monotonic() - t0 < 2, "a scrape waited on etcd"
        errs = sum(float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith("muster_etcd_request_errors_total"))
        return errs > 0
    wait_until("musterd to count failed etcd requests", etcd_errors, timeout=30)
    stamp = lambda: float(next(l.split()[-1] for l in scrape(urls["musterd"]).splitlines()
                               if l.startswith("muster_metrics_snapshot_timestamp_seconds ")))
    first = stamp()
    wait_until("a newer snapshot", lambda: stamp() > first, timeout=5)
    health = "http://127.0.0.1:%d/healthz" % ports["musterd"]
    wait_until("/healthz to say 503", lambda: http_get(health)[0] == 503, timeout=30)
    assert http_get(health)[1], "a 503 without a reason"


if __name__ == "__main__":
    main([
        test_alert_rules_and_their_unit_tests,
        test_prometheus_scrapes_a_running_fleet,
    ], lambda *bins: PromCluster(*bins))
