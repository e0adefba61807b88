"""`muster stats` on real runs: ten quick runs of a task and one slow one; the slow run is
flagged SLOW against the task's history (and nothing else is), the figures (runs,
percentiles, trend) are printed, -o json carries the flags per run. NEAR_OOM, MEM_HIGH and
TRUNCATED are decided by the same code, tested in cli/stats_test.c."""
import json

from harness import main, wait_until


def test_stats_flags_the_slow_run(c):
    c.start_musterd()
    c.start_agent("web-1", "role=web")
    wait_until("web-1 connected", lambda: c.states() == {"web-1": "AGENT_CONNECTED"})
    for _ in range(10):
        c.cli("run", "--hosts", "web-1", "--", "sleep 0.1")
    c.cli("run", "--hosts", "web-1", "--", "sleep 3")
    rc, out, err = c.cli("stats", "--task", "run", check=False)
    assert rc == 0, err
    assert "run: 11 runs" in out and "duration" in out and "trend" in out, out
    assert "flagged runs:" in out and "SLOW" in out, out
    rc, out, _ = c.cli("-o", "json", "stats", "--task", "run", "--last", "20", check=False)
    runs = [json.loads(l) for l in out.splitlines() if l]
    assert len(runs) == 11 and all(r["kind"] == "taskStats" for r in runs), runs
    slow = [r for r in runs if r["durationMs"] >= 2900]
    assert len(slow) == 1 and "SLOW" in slow[0]["flags"], runs
    # the quick runs are not flagged (one delayed a lot by a loaded machine could be: SLOW is
    # about the run, not the command)
    median = sorted(r["durationMs"] for r in runs)[len(runs) // 2]
    assert all(r["flags"] == "-" for r in runs if r["durationMs"] < 2 * median), runs
    # one job alone: no history, no SLOW; its figures all the same
    rc, out, _ = c.cli("stats", slow[0]["jobId"], check=False)
    assert rc == 0 and "run: 1 runs" in out and "SLOW" not in out, out
    rc, _, err = c.cli("stats", check=False)
    assert rc == 2 and "JOB or --task NAME is required" in err, err


if __name__ == "__main__":
    main([test_stats_flags_the_slow_run])
