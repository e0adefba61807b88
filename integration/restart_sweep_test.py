"""End-to-end: what a killed agent leaves behind is gone once it restarts (issue 18 item 4's
"never left running unseen", for every task type). A shell task's process outlives a kill -9
of its agent (nothing kills it then); the restarted agent reports the attempt LOST, kills the
process it can no longer see through its cgroup and removes the task's cgroups.

argv: MUSTERD AGENT CLI
"""
import os
import time

from harness import live_pids, main, task_cgroups, wait_until


def test_restart_sweeps_a_shell_task(c):
    if os.geteuid() != 0:
        print("SKIP test_restart_sweeps_a_shell_task: needs root (cgroups)")
        return
    c.start_musterd()
    c.start_agent("box-1", "role=sw", "--heartbeat-interval", "300ms")
    wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
    rc, out, err = c.cli("run", "--detach", "--hosts", "box-1", "--", "sleep 7071; true")
    job = out.strip().split()[-1]
    wait_until("the task to run", lambda: live_pids("sleep 7071"), timeout=30)
    assert task_cgroups(c, "box-1"), "no task cgroup seen while the task runs"
    c.agents["box-1"].kill()
    time.sleep(0.5)
    assert live_pids("sleep 7071"), "expected the shell task to outlive its agent's kill -9"
    c.start_agent("box-1", "role=sw", "--heartbeat-interval", "300ms")

    def final_state():
        rc, out, _ = c.cli("-o", "json", "status", job, check=False)
        return "LOST" in out and out
    wait_until("the attempt to be reported LOST", final_state, timeout=30)
    wait_until("the leftover process to be gone", lambda: not live_pids("sleep 7071"), timeout=10)
    assert task_cgroups(c, "box-1") == [], task_cgroups(c, "box-1")
    assert "swept" in c.agents["box-1"].text(), c.agents["box-1"].text()[-2000:]


if __name__ == "__main__":
    main([test_restart_sweeps_a_shell_task])
