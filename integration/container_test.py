"""End-to-end: container tasks through real musterd and a real agent (its runner, supervisor and
cgroups) with images from a real loopback docker-registry (plugins/container/regfixture.py).

The operator's story: a job runs an image's entrypoint on a host and shows its output and the
pinned digest; a second run starts warm; the task's command, env and limits apply (a memory
hog is OOM-killed, exit 137, and said so); the full output is in `muster logs`; a spec the
agent's policy refuses fails with a message naming the field; a secret gives registry creds.

argv: MUSTERD AGENT CLI PLUGIN_SO MUSTER_CONTAINER REGFIXTURE_PY
"""
import json
import os
import shutil
import sys
import tempfile

from harness import live_pids, main, task_cgroups, wait_until

PLUGIN_SO, HELPER, FIXTURE = (os.path.abspath(p) for p in sys.argv[4:7])
sys.path.insert(0, os.path.dirname(FIXTURE))
import regfixture as rf  # noqa: E402


def setup(c, reg):
    plugins = tempfile.mkdtemp(prefix="ctr-plugins.", dir=c.workdir)
    os.symlink(PLUGIN_SO, os.path.join(plugins, "libmuster_container.so"))
    os.symlink(HELPER, os.path.join(plugins, "muster-container"))  # found beside the .so
    os.environ["MUSTER_CONTAINER_STORE"] = os.path.join(c.workdir, "images")
    os.environ["MUSTER_CONTAINER_INSECURE_REGISTRIES"] = reg.host
    os.environ.pop("MUSTER_CONTAINER_HELPER", None)
    c.plugin_dir = plugins
    c.start_musterd()
    c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=plugins)
    wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")


def can_run(name):
    """Root, docker-registry and busybox-static, or a SKIP line for test name."""
    if os.geteuid() != 0 or shutil.which("docker-registry") is None or not os.path.exists(rf.BUSYBOX):
        print("SKIP %s: needs root, docker-registry and busybox-static (scripts/setup)" % name)
        return False
    return True


def start_sleeper(c, reg, secs):
    """Submits a detached job running `sleep secs` in the run image; waits until it runs."""
    path = os.path.join(c.workdir, "sleep-%d.yaml" % secs)
    with open(path, "w") as f:
        f.write('name: long\ntarget: {hosts: [box-1]}\ntasks:\n  - name: sleeper\n    type: container\n'
                '    container: {image: "%s/t/run:1", command: [/bin/sleep, "%d"]}\n' % (reg.host, secs))
    rc, out, err = c.cli("submit", "--detach", path)
    wait_until("the container to run", lambda: live_pids("sleep %d" % secs), timeout=30)
    return out.strip().split()[-1]


def submit(c, yaml_text):
    path = os.path.join(c.workdir, "job-%d.yaml" % len(os.listdir(c.workdir)))
    with open(path, "w") as f:
        f.write(yaml_text)
    rc, out, err = c.cli("-o", "json", "submit", path, check=False, timeout=120)
    runs = [json.loads(l) for l in out.splitlines() if "taskId" in l]
    summary = [json.loads(l) for l in out.splitlines() if "jobId" in l and "taskId" not in l]
    return rc, runs, (summary[-1] if summary else {}), err


def test_container_job(c):
    if not can_run("test_container_job"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        setup(c, reg)
        rc, runs, summary, err = submit(c, """
name: ctr
target: {hosts: [box-1]}
tasks:
  - name: hello
    type: container
    timeout: 60s
    container: {image: "%(r)s/t/run:1"}
  - name: again
    type: container
    env: {GREETING: hi}
    container:
      image: "%(r)s/t/run:1"
      command: [/bin/sh, -c, 'echo "$GREETING from $(id -u) in $(pwd)"; grep -c . /proc/net/dev']
""" % {"r": reg.host})
        assert rc == 0, (runs, err)
        hello = [r for r in runs if r["taskName"] == "hello"][-1]
        assert hello["state"] == "SUCCEEDED", hello
        assert hello["outputTail"] == "hello from the image\n", hello
        assert hello["outputParams"]["image_digest"].startswith("sha256:"), hello
        again = [r for r in runs if r["taskName"] == "again"][-1]
        assert again["outputTail"] == "hi from 1000 in /w\n3\n", again  # image user, WorkingDir, only lo
        rc, out, _ = c.cli("logs", summary["jobId"], "box-1/hello")
        assert out == "hello from the image\n", out

        # limits: a memory hog is OOM-killed and reported as such
        rc, runs, summary, err = submit(c, """
name: hog
target: {hosts: [box-1]}
tasks:
  - name: hog
    type: container
    resources: {memory: 32M}
    container: {image: "%s/t/run:1", command: [/bin/sh, -c, "echo start; dd if=/dev/zero of=/dev/null bs=200M count=1"]}
""" % reg.host)
        hog = [r for r in runs if r["taskName"] == "hog"][-1]
        assert rc != 0 and hog["state"] == "FAILED", hog
        assert hog["exitCode"] == 137 and "OOM" in hog["message"], hog

        # the agent's policy: host network and root are refused by default
        rc, runs, summary, err = submit(c, """
name: refused
target: {hosts: [box-1]}
tasks:
  - name: net
    type: container
    container: {image: "%s/t/run:1", network: host}
""" % reg.host)
        net = [r for r in runs if r["taskName"] == "net"]
        text = json.dumps(net) + err
        assert rc != 0 and "host is not allowed" in text, text
    finally:
        reg.close()


def test_build_tree_agent_finds_container(c):
    """An agent started from the Bazel tree with no plugin flag serves the container type (and
    spark and flink) from the plugins built beside it, helper included, and runs an image."""
    if not can_run("test_build_tree_agent_finds_container"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        os.environ["MUSTER_CONTAINER_STORE"] = os.path.join(c.workdir, "images")
        os.environ["MUSTER_CONTAINER_INSECURE_REGISTRIES"] = reg.host
        os.environ.pop("MUSTER_CONTAINER_HELPER", None)
        c.start_musterd()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms")
        wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        types = sorted(p["type"] for p in c.agents_json()["box-1"].get("plugins", []))
        for t in ("container", "flink", "shell", "spark"):
            assert t in types, types
        rc, runs, _, err = submit(c, 'name: tree\ntarget: {hosts: [box-1]}\ntasks:\n'
                                     '  - {name: hello, type: container, container: {image: "%s/t/run:1"}}\n' % reg.host)
        assert rc == 0 and runs[-1]["outputTail"] == "hello from the image\n", (runs, err)
    finally:
        reg.close()


def test_images_list(c):
    """`muster images`: each agent's store through the control plane: the image a job pulled,
    with its tag, size and last use, and `in use` while a container runs it."""
    if not can_run("test_images_list"):
        return
    reg = rf.Registry()
    try:
        digest, _ = rf.push_run_image(reg)
        setup(c, reg)
        rc, out, err = c.cli("images")
        assert "0 images on 1 agent" in out, (out, err)
        rc, runs, _, err = submit(c, 'name: pull\ntarget: {hosts: [box-1]}\ntasks:\n'
                                     '  - {name: hello, type: container, container: {image: "%s/t/run:1"}}\n' % reg.host)
        assert rc == 0, (runs, err)
        rc, out, err = c.cli("-o", "json", "images", "-t", "role=ctr")
        agents = [json.loads(l) for l in out.splitlines()]
        assert [(a["kind"], a["agentId"]) for a in agents] == [("images", "box-1")], agents
        imgs = agents[0]["images"]
        assert [i["digest"] for i in imgs] == [digest], imgs
        assert imgs[0]["refs"] == ["%s/t/run:1" % reg.host], imgs
        assert int(imgs[0]["bytes"]) > 100000 and not imgs[0].get("inUse"), imgs
        rc, out, _ = c.cli("images", "-t", "role=nobody")
        assert "0 images on 0 agents" in out, out
        # in use while a container runs it
        job = start_sleeper(c, reg, 6062)
        rc, out, _ = c.cli("images")
        row = [l for l in out.splitlines() if l.startswith("box-1")]
        assert len(row) == 1 and " yes " in row[0] and "t/run:1" in row[0], out
        # prune: a second image goes, the one in use stays
        reg.push_image("t/other", "1", [rf.busybox_layer(lambda l: l.file("o", "other\n"))], {"Cmd": ["/bin/true"]})
        rc, runs, _, err = submit(c, 'name: other\ntarget: {hosts: [box-1]}\ntasks:\n'
                                     '  - {name: o, type: container, container: {image: "%s/t/other:1"}}\n' % reg.host)
        assert rc == 0, (runs, err)
        rc, out, _ = c.cli("images")
        assert "2 images on 1 agent" in out, out
        rc, out, err = c.cli("images", "prune", "--max-bytes", "lots", check=False)
        assert rc == 2 and "--max-bytes" in err, (rc, out, err)
        rc, out, err = c.cli("images", "prune", "-t", "role=ctr", "--max-bytes", "1K")
        assert "box-1: removed 1 image," in out and "1 image on 1 agent" in out and "t/other" not in out, out
        rc, out, err = c.cli("images", "prune", check=False)
        assert rc != 0 and "give max_bytes or max_age" in err, (out, err)
        c.cli("cancel", job)
        wait_until("the container to stop", lambda: not live_pids("sleep 6062"), timeout=30)
    finally:
        reg.close()


def test_agent_registry_credentials(c):
    """The agent's own registry credentials (MUSTER_CONTAINER_REGISTRY_AUTH, a 0600 file per
    registry) against a token-auth registry (the container-fixtures token server): with the
    right ones a task that gives no registryAuth pulls and runs the private image; with wrong
    ones the pull is refused (401), and the credentials show up nowhere."""
    if not can_run("test_agent_registry_credentials"):
        return
    reg = rf.Registry(token=True)
    try:
        reg.login_push("private/run")
        rf.push_run_image(reg, repo="private/run")
        reg.auth_header = None
        creds = os.path.join(c.workdir, "regcreds")
        with open(creds, "w") as f:
            f.write("muster:secret\n")
        os.chmod(creds, 0o600)
        os.environ["MUSTER_CONTAINER_REGISTRY_AUTH"] = "%s=%s" % (reg.host, creds)
        setup(c, reg)
        job = """
name: private
target: {hosts: [box-1]}
tasks:
  - name: run
    type: container
    container: {image: "%s/private/run:1", pullPolicy: always}
""" % reg.host
        rc, runs, summary, err = submit(c, job)
        run = [r for r in runs if r["taskName"] == "run"][-1]
        assert rc == 0 and run["state"] == "SUCCEEDED", (run, err)
        assert run["outputTail"] == "hello from the image\n", run

        # the same agent restarted with a wrong password: the registry refuses the pull
        with open(creds, "w") as f:
            f.write("muster:not-the-password\n")
        c.agents["box-1"].stop()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)
        wait_until("the agent to reconnect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        rc, runs, summary, err = submit(c, job)
        run = [r for r in runs if r["taskName"] == "run"][-1]
        text = json.dumps(run) + err
        assert rc != 0 and run["state"] == "FAILED", text
        assert "401" in text, text
        assert "not-the-password" not in text and "secret" not in text.replace("secrets", ""), text
        rc, logs, _ = c.cli("logs", summary["jobId"], "box-1/run", check=False)
        assert "not-the-password" not in logs, logs
    finally:
        os.environ.pop("MUSTER_CONTAINER_REGISTRY_AUTH", None)
        reg.close()


def shim_dirs(c, agent_id="box-1"):
    """The shim dirs (plugins/container/shim.h) in the agent's task dirs."""
    work = os.path.join(c.workdir, "spool-" + agent_id, "work")
    return [os.path.join(work, d, ".shim") for d in (os.listdir(work) if os.path.isdir(work) else [])
            if os.path.isdir(os.path.join(work, d, ".shim"))]


def test_agent_killed_container_readopted(c):
    """kill -9 of the agent while a container runs: the container runs on (its shim keeps its
    output), the restarted agent re-adopts it, and the task ends with the container's real
    exit code and all of its output, from before and after the restart; then nothing is left:
    no process, no task cgroup."""
    if not can_run("test_agent_killed_container_readopted"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        setup(c, reg)
        path = os.path.join(c.workdir, "readopt.yaml")
        script = ("echo before-restart; echo err-before >&2; sleep 5; echo between-restarts; sleep 5; "
                  "echo after-restart; echo err-after >&2; exit 7")
        with open(path, "w") as f:
            f.write('name: readopt\ntarget: {hosts: [box-1]}\ntasks:\n  - name: long\n    type: container\n'
                    '    timeout: 2m\n'
                    '    container: {image: "%s/t/run:1", command: [/bin/sh, -c, "%s"]}\n' % (reg.host, script))
        rc, out, err = c.cli("submit", "--detach", path)
        job = out.strip().split()[-1]
        wait_until("the container to run", lambda: live_pids("echo before-restart"), timeout=30)

        def seen_before():
            rc, out, _ = c.cli("logs", job, "box-1/long", check=False)
            return "before-restart" in out and out
        wait_until("the output before the restart to reach musterd", seen_before, timeout=15)
        shim = live_pids("echo before-restart")
        c.agents["box-1"].kill()
        # the container survives its agent (the shim keeps it), unlike before re-adoption
        import time
        time.sleep(0.5)
        assert live_pids("echo before-restart") == shim, "the container died with its agent"
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)

        # killed again while it follows the re-adopted container: the next agent takes it back
        # from where the last one had read, so nothing is repeated
        def seen_between():
            rc, out, _ = c.cli("logs", job, "box-1/long", check=False)
            return "between-restarts" in out and out
        wait_until("the output after the first restart", seen_between, timeout=20)
        c.agents["box-1"].kill()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)

        def final_state():
            rc, out, _ = c.cli("-o", "json", "status", job, check=False)
            return any(s in out for s in ("LOST", "FAILED", "SUCCEEDED")) and out
        out = wait_until("the re-adopted attempt to end", final_state, timeout=60)
        runs = [json.loads(l) for l in out.splitlines() if "taskId" in l]
        assert runs and runs[-1].get("state") == "FAILED", out
        assert runs[-1].get("exitCode") == 7, out   # the container's own exit code
        assert runs[-1].get("attempt", 1) == 1, out  # the same attempt, not a retry
        rc, logs, _ = c.cli("logs", job, "box-1/long", check=False)
        for line in ("before-restart", "err-before", "between-restarts", "after-restart", "err-after"):
            assert logs.count(line) == 1, (line, logs)
        wait_until("the container's processes to be gone", lambda: not live_pids("echo before-restart"),
                   timeout=10)
        # and its shim (the helper, `muster-container run <task dir>/.container.json`) too
        wait_until("the shim to be gone", lambda: not live_pids(".container.json"), timeout=10)
        wait_until("its cgroup to be removed", lambda: task_cgroups(c, "box-1") == [], timeout=10)
    finally:
        reg.close()


def test_readopted_container_cancelled(c):
    """A re-adopted container is cancelled like any task: TERM to its shim (the image's stop
    signal to the container; `sleep` as pid 1 ignores it), KILL of the whole group after the
    grace period, CANCELLED; nothing left."""
    if not can_run("test_readopted_container_cancelled"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        setup(c, reg)
        job = start_sleeper(c, reg, 6063)
        c.agents["box-1"].kill()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)
        wait_until("the agent to reconnect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        assert live_pids("sleep 6063"), "the container did not survive its agent"
        c.cli("cancel", job)

        def final_state():
            rc, out, _ = c.cli("-o", "json", "status", job, check=False)
            return any(s in out for s in ("LOST", "FAILED", "SUCCEEDED", "CANCELLED")) and out
        out = wait_until("the cancel to end it", final_state, timeout=30)
        assert "CANCELLED" in out and "LOST" not in out, out
        wait_until("the container to be gone", lambda: not live_pids("sleep 6063"), timeout=10)
        wait_until("its shim to be gone", lambda: not live_pids(".container.json"), timeout=10)
        wait_until("its cgroup to be removed", lambda: task_cgroups(c, "box-1") == [], timeout=10)
    finally:
        reg.close()


def test_agent_killed_container_not_readoptable(c):
    """kill -9 of the agent, and the container's shim cannot be re-adopted (its pid file is
    gone; then, a live shim whose spec.json is damaged): the restarted agent kills it (the
    cgroup sweep; the failed re-adoption) and reports the attempt LOST, never leaving it
    running unseen."""
    if not can_run("test_agent_killed_container_not_readoptable"):
        return
    reg = rf.Registry()
    try:
        rf.push_run_image(reg)
        setup(c, reg)
        job = start_sleeper(c, reg, 6061)
        assert task_cgroups(c, "box-1"), "no task cgroup seen while the container runs"
        c.agents["box-1"].kill()
        for d in shim_dirs(c):
            os.unlink(os.path.join(d, "pid"))
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)

        def final_state():
            rc, out, _ = c.cli("-o", "json", "status", job, check=False)
            return ("LOST" in out or "FAILED" in out) and out  # exit 1: the job failed
        out = wait_until("the attempt to be reported", final_state, timeout=30)
        assert "LOST" in out, out
        # nothing left: no process, no task cgroup (the restarted agent swept its sub-tree)
        wait_until("the container to be killed", lambda: not live_pids("sleep 6061"), timeout=10)
        assert task_cgroups(c, "box-1") == [], task_cgroups(c, "box-1")

        # a live shim whose spec the agent refuses: the sweep spared its group, the failed
        # re-adoption kills and removes it
        job = start_sleeper(c, reg, 6062)
        c.agents["box-1"].kill()
        for d in shim_dirs(c):
            with open(os.path.join(d, "spec.json"), "w") as f:
                f.write("{")
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=c.plugin_dir)

        def final_state2():
            rc, out, _ = c.cli("-o", "json", "status", job, check=False)
            return ("LOST" in out or "FAILED" in out) and out
        out = wait_until("the second attempt to be reported", final_state2, timeout=30)
        assert "LOST" in out, out
        assert "re-adopting failed" in c.agents["box-1"].text(), c.agents["box-1"].text()[-2000:]
        wait_until("the second container to be killed", lambda: not live_pids("sleep 6062"), timeout=10)
        wait_until("its shim to be gone", lambda: not live_pids(".container.json"), timeout=10)
        wait_until("its cgroup to be removed", lambda: task_cgroups(c, "box-1") == [], timeout=10)
    finally:
        reg.close()


if __name__ == "__main__":
    main([test_container_job, test_agent_registry_credentials, test_agent_killed_container_readopted,
          test_readopted_container_cancelled, test_agent_killed_container_not_readoptable,
          test_build_tree_agent_finds_container, test_images_list])
