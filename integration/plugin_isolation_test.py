"""End-to-end: a third-party plugin that crashes runs out of process and takes nothing else down.

The operator's story: an agent loads a third-party plugin (crasher) from its plugin dir; by
default it runs in its own muster-plugin-host process. A shell task runs on the host; a
crasher task segfaults in start(): that task fails with "plugin 'crasher' crashed (SIGSEGV);
restarted", the shell task beside it finishes untouched, the agent process is the same one,
and the next crasher task runs on the restarted host. `plugins: {TYPE: {isolation: ...}}` in
the agent's config is honoured and a bad value is refused at start.

argv: MUSTERD AGENT CLI CRASH_PLUGIN_SO SLEEP_ECHO_SO
"""
import json
import os
import re
import subprocess
import sys
import time

from harness import main, wait_until

CRASH_SO, ECHO_SO = (os.path.abspath(p) for p in sys.argv[4:6])
HB = "300ms"
# The host process inherits the agent's environment: under ASan, keep a segfault a SIGSEGV.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "handle_segv=0"]))


def plugin_dir(c):
    d = os.path.join(c.workdir, "plugins")
    os.makedirs(d, exist_ok=True)
    for so, name in ((CRASH_SO, "libcrash_plugin.so"), (ECHO_SO, "libmuster_sleep_echo.so")):
        if not os.path.exists(os.path.join(d, name)):
            os.symlink(so, os.path.join(d, name))
    return d


def host_pids(agent_pid):
    """muster-plugin-host children of the agent."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(agent_pid)], capture_output=True, text=True).stdout
    return {int(l.split()[0]): l for l in out.splitlines() if "muster-plugin-host" in l}


def submit(c, name, task_yaml, detach=False):
    spec = os.path.join(c.workdir, name + ".yaml")
    with open(spec, "w") as f:
        f.write("name: %s\ntarget: {selector: \"role=web\"}\ntasks:\n%s" % (name, task_yaml))
    args = ["-o", "json", "submit", spec] + (["--detach"] if detach else [])
    rc, out, err = c.cli(*args, check=False, timeout=60)
    return rc, out, err


def runs(out):
    return [json.loads(l) for l in out.splitlines() if "taskId" in l]


def test_crash_leaves_agent_and_shell_running(c):
    c.start_musterd()
    agent = c.start_agent("web-1", "role=web", "--heartbeat-interval", HB, plugin_dir=plugin_dir(c))
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    log = agent.text()
    assert re.search(r"loaded crasher 0\.0\.1 \(ABI 2\) from \S+ in its own process", log), log
    assert "loaded sleep-echo" in log and "in its own process" in log, log
    hosts = host_pids(agent.pid)
    assert len(hosts) == 2, hosts  # crasher and sleep-echo, each in its own host process
    _, table, _ = c.cli("agents")
    assert "crasher" in table and "shell" in table, table
    # a shell task that outlives the crash
    rc, out, err = submit(c, "long-shell",
                          "  - name: long\n    shell: {script: \"sleep 2; echo survived\"}\n", detach=True)
    assert rc == 0, (out, err)
    shell_job = out.strip().splitlines()[-1].strip()
    shell_job = json.loads(shell_job)["jobId"] if shell_job.startswith("{") else shell_job
    time.sleep(0.3)
    rc, out, err = submit(c, "crash", "  - name: boom\n    type: crasher\n"
                                      "    plugin: {type: crasher, config_json: '{\"crash\": \"start\"}'}\n")
    boom = runs(out)
    assert len(boom) == 1 and boom[0]["state"] == "FAILED", (out, err)
    assert "plugin 'crasher' crashed (SIGSEGV); restarted" in boom[0].get("message", ""), boom
    # the agent is the same process, still connected; the shell task finishes untouched
    assert agent.alive()
    wait_until("the shell job to finish",
               lambda: '"JOB_SUCCEEDED"' in c.cli("-o", "json", "status", shell_job, check=False)[1], timeout=20)
    _, out, _ = c.cli("logs", shell_job)
    assert "survived" in out, out
    assert c.states().get("web-1") == "AGENT_CONNECTED"
    assert re.search(r"plugin 'crasher' host \(pid \d+\) crashed \(SIGSEGV\); 1 running task failed; restarting",
                     agent.text()), agent.text()[-3000:]
    # the host was restarted: the next crasher task runs there; sleep-echo was never touched
    wait_until("crasher host back", lambda: "host up again" in agent.text())
    rc, out, err = submit(c, "calm", "  - name: calm\n    type: crasher\n"
                                     "    plugin: {type: crasher, config_json: '{\"crash\": \"none\", \"ms\": 50}'}\n"
                                     "  - name: echo\n    type: sleep-echo\n"
                                     "    plugin: {type: sleep-echo, config_json: '{\"message\": \"hi\", \"count\": 2,"
                                     " \"intervalMs\": 10}'}\n")
    states = {r["taskName"]: r["state"] for r in runs(out)}
    assert states == {"calm": "SUCCEEDED", "echo": "SUCCEEDED"}, (out, err)
    after = host_pids(agent.pid)
    assert len(after) == 2 and len(set(after) & set(hosts)) == 1, (hosts, after)  # one replaced


def test_isolation_config(c):
    c.start_musterd()
    cfg = os.path.join(c.workdir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("plugins:\n  sleep-echo: {isolation: in-process}\n")
    agent = c.start_agent("web-1", "role=web", "-c", cfg, plugin_dir=plugin_dir(c))
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    assert len(host_pids(agent.pid)) == 1  # only crasher runs out of process now
    assert re.search(r"loaded sleep-echo 0\.1\.0 \(ABI 1\) from \S+libmuster_sleep_echo\.so$", agent.text(), re.M)
    with open(cfg, "w") as f:
        f.write("plugins:\n  sleep-echo: {isolation: sandbox}\n")
    r = subprocess.run([c.agent_bin, "-c", cfg, "--insecure"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r
    assert "isolation \"sandbox\": expected in-process or process" in r.stderr, r.stderr


if __name__ == "__main__":
    main([test_crash_leaves_agent_and_shell_running, test_isolation_config])
