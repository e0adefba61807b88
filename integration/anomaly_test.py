"""The run history and its anomaly flags, on a real etcd with a real agent: after ten quick
runs of a task name, a slow one is flagged SLOW as it ends — an `anomaly` event in WatchJob,
`[flagged SLOW]` in `muster status`, muster_task_anomalies_total — and the history keeps it
past the job's eviction (short retention) and a musterd restart (`muster stats --task` reads
it from musterd); the console's job page JSON carries the flags too. The decision itself is tested on tables in lib/anomaly/anomaly_test.c."""
import json
import os

from bundles_test import ETCD_FLAGS, etcd_keys, leading, start_etcd
from console_test import http, viewer_token
from harness import free_port, main, wait_until
import urllib.request


def anomalies_metric(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
            if l.startswith("muster_task_anomalies_total{")}


def history(c):
    rc, out, err = c.cli("-o", "json", "stats", "--task", "run", check=False)
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l]


def test_slow_run_flagged_and_kept(c):
    etcd, endpoint = start_etcd(c)
    try:
        mport = free_port()
        conf = os.path.join(c.workdir, "musterd.yaml")
        with open(conf, "w") as f:
            f.write("run_history_per_task: 50\nrun_history_max: 1000\n")
        web = free_port()
        flags = ETCD_FLAGS + ("--metrics-listen", "127.0.0.1:%d" % mport, "--config", conf,
                              "--web-listen", "127.0.0.1:%d" % web,
                              "--max-jobs-kept", "2", "--jobs-kept-min-age", "0s")
        c.start_musterd(*flags, etcd=endpoint)
        wait_until("leader", lambda: leading(c, c.addr))
        c.start_agent("web-1", "role=web", "--heartbeat-interval", "300ms")
        wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
        for _ in range(10):
            c.cli("run", "--hosts", "web-1", "--", "sleep 0.1")
        assert anomalies_metric(mport) == {}, anomalies_metric(mport)
        rc, out, err = c.cli("run", "--detach", "--hosts", "web-1", "--", "sleep 2.5")
        job = out.strip()
        # WatchJob: the anomaly event, as it ends (watch follows the job to its end)
        rc, out, err = c.cli("-o", "json", "watch", job, check=False, timeout=60)
        events = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        flagged = [e for e in events if e.get("kind") == "anomaly"]
        assert len(flagged) == 1 and flagged[0]["flags"] == "SLOW", out
        assert flagged[0]["agentId"] == "web-1" and "took " in flagged[0]["detail"], flagged
        rc, out, _ = c.cli("status", job, check=False)
        assert rc == 0 and "[flagged SLOW]" in out, out
        rc, out, _ = c.cli("-o", "json", "status", job, check=False)
        tasks = [json.loads(l) for l in out.splitlines() if '"task"' in l]
        assert any(t.get("anomalies") == ["SLOW"] for t in tasks), out
        # the console's job page
        status, page = http(c, "https://127.0.0.1:%d/api/v1/jobs/%s" % (web, job), viewer_token(c))
        assert status == 200 and [r["anomalies"] for r in page["runs"]] == [["SLOW"]], page
        m = wait_until("the metric", lambda: anomalies_metric(mport))  # published every few s
        assert len(m) == 1 and list(m.values()) == [1.0] and 'flag="slow"' in list(m)[0], m
        keys = etcd_keys(endpoint, "/muster/runhistory/run/")
        assert len(keys) == 11, keys
        # short retention: three more jobs evict it; the history keeps its run and flag
        for _ in range(3):
            c.cli("run", "--hosts", "web-1", "--", "true")
        wait_until("slow job evicted", lambda: "was evicted" in c.cli("status", job, check=False)[2])
        runs = history(c)
        assert len(runs) == 14, runs
        slow = [r for r in runs if r["jobId"] == job]
        assert len(slow) == 1 and slow[0]["flags"] == "SLOW", runs
        assert all(r["flags"] == "-" for r in runs if r["jobId"] != job), runs
        # a restart: read back from etcd
        assert c.musterd.stop() == 0
        c.start_musterd(*flags, etcd=endpoint)
        wait_until("leader again", lambda: leading(c, c.addr))
        runs = history(c)
        assert len(runs) == 14 and [r["flags"] for r in runs if r["jobId"] == job] == ["SLOW"], runs
        rc, out, _ = c.cli("stats", "--task", "run", check=False)
        assert rc == 0 and "run: 14 runs" in out and "flagged runs:" in out and job in out, out
        c.stop_all()
        c.musterd = None
        c.agents = {}
    finally:
        etcd.stop()


if __name__ == "__main__":
    main([test_slow_run_flagged_and_kept])
