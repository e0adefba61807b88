"""End-to-end: task sandboxes (issue 18 item 5) through real musterd and a real agent running
shell tasks with muster-exec's sandbox.

The operator's story: a shell task with `sandbox:` writes its task dir and the paths it lists,
and nothing else on the host (the rest is read-only, still readable); a hidden path and the
agent's spool look empty; with `network: none` it cannot reach a port listening on the host's
loopback, with `host` it can; without a sandbox the same script writes where it likes (so the
checks can fail). An agent whose policy forces a sandbox on shell tasks sandboxes a task that
asked for none, and refuses one asking for the host network or a writable path outside the
agent's list, naming the field.

argv: MUSTERD AGENT CLI
"""
import json
import os
import shutil
import socket
import tempfile

from harness import live_pids, main, wait_until

SCRIPT = r"""
echo data > out.txt && echo "taskdir: ok"
(echo x > %(allowed)s/f) 2>/dev/null && echo "allowed: ok" || echo "allowed: refused"
(echo x > %(outside)s/%(name)s) 2>/dev/null && echo "outside: WROTE" || echo "outside: refused"
cat %(outside)s/visible.txt
(cat %(hidden)s/secret.txt) 2>/dev/null && echo "hidden: SEEN" || echo "hidden: not there"
test -e %(spool)s/journal && echo "journal: SEEN" || echo "journal: hidden"
python3 -c "import socket; socket.create_connection(('127.0.0.1', %(port)d), 2)" 2>/dev/null \
  && echo "net: connected" || echo "net: none"
"""


def fixture(c):
    """Host dirs outside /tmp (a sandbox's /tmp is its own tmpfs) and a listening port."""
    base = tempfile.mkdtemp(prefix="muster-sandbox-test.", dir="/var/tmp")
    paths = {k: os.path.join(base, k) for k in ("allowed", "outside", "hidden")}
    for p in paths.values():
        os.makedirs(p)
    with open(os.path.join(paths["outside"], "visible.txt"), "w") as f:
        f.write("visible: yes\n")
    with open(os.path.join(paths["hidden"], "secret.txt"), "w") as f:
        f.write("the secret\n")
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(16)
    paths["port"] = lsn.getsockname()[1]
    paths["spool"] = os.path.join(c.workdir, "spool-box-1")
    return base, paths, lsn


def submit(c, yaml_text):
    path = os.path.join(c.workdir, "job-%d.yaml" % len(os.listdir(c.workdir)))
    with open(path, "w") as f:
        f.write(yaml_text)
    rc, out, err = c.cli("-o", "json", "submit", path, check=False, timeout=60)
    runs = {}
    for line in out.splitlines():
        r = json.loads(line)
        if "taskId" in r:
            runs[r["taskName"]] = r
    return rc, runs, err


def task(name, paths, sandbox):
    script = SCRIPT % dict(paths, name=name)
    lines = ["  - name: %s" % name, "    shell:", "      interpreter: bash", "      script: |"]
    lines += ["        " + l for l in script.strip().splitlines()]
    if sandbox is not None:
        lines.append("    sandbox: %s" % sandbox)
    return "\n".join(lines) + "\n"


def can_sandbox():
    if os.geteuid() != 0 or shutil.which("python3") is None:
        print("SKIP: needs root (mount and network namespaces) and python3")
        return False
    return True


def test_task_sandbox(c):
    if not can_sandbox():
        return
    base, p, lsn = fixture(c)
    try:
        c.start_musterd()
        c.start_agent("box-1", "role=sb", "--heartbeat-interval", "300ms")
        wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        rc, runs, err = submit(c, "name: sb\ntarget: {hosts: [box-1]}\ntasks:\n" +
                               task("boxed", p, "{network: none, read_only_root: true, writable: [%s], hidden: [%s]}"
                                    % (p["allowed"], p["hidden"])) +
                               task("hostnet", p, "{network: host, read_only_root: true}") +
                               task("free", p, None))
        assert rc == 0, (runs, err)
        boxed = runs["boxed"]
        assert boxed["state"] == "SUCCEEDED", boxed
        assert boxed["outputTail"] == ("taskdir: ok\nallowed: ok\noutside: refused\nvisible: yes\n"
                                       "hidden: not there\njournal: hidden\nnet: none\n"), boxed
        host = runs["hostnet"]["outputTail"]
        assert "net: connected\n" in host and "allowed: refused\n" in host and "outside: refused" in host, host
        free = runs["free"]["outputTail"]
        assert free == ("taskdir: ok\nallowed: ok\noutside: WROTE\nvisible: yes\n"
                        "the secret\nhidden: SEEN\njournal: SEEN\nnet: connected\n"), free
        # on the host: the allowed write landed, the refused ones did not, the secret is intact
        assert os.path.exists(os.path.join(p["allowed"], "f"))
        assert sorted(os.listdir(p["outside"])) == ["free", "visible.txt"], os.listdir(p["outside"])
        assert open(os.path.join(p["hidden"], "secret.txt")).read() == "the secret\n"
        assert os.path.exists(os.path.join(p["spool"], "journal"))
    finally:
        lsn.close()
        shutil.rmtree(base, ignore_errors=True)


def test_forced_sandbox(c):
    if not can_sandbox():
        return
    base, p, lsn = fixture(c)
    try:
        c.start_musterd()
        c.start_agent("box-1", "role=sb", "--heartbeat-interval", "300ms", "--sandbox-types", "shell,python",
                      "--sandbox-writable", p["allowed"], "--sandbox-hidden", p["hidden"])
        wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        py = ("import socket\n"
              "for path in ('out.txt', '%(allowed)s/py', '%(outside)s/py'):\n"
              "    try:\n"
              "        open(path, 'w').write('x')\n"
              "        print(path.split('/')[-2] if '/' in path else 'taskdir', 'ok')\n"
              "    except OSError as e:\n"
              "        print(path.split('/')[-2], 'refused')\n"
              "try:\n"
              "    socket.create_connection(('127.0.0.1', %(port)d), 2)\n"
              "    print('net: connected')\n"
              "except OSError:\n"
              "    print('net: none')\n") % p
        rc, runs, err = submit(c, "name: forced\ntarget: {hosts: [box-1]}\ntasks:\n" +
                               task("plain", p, None) +
                               "  - name: py\n    python:\n      code: %s\n" % json.dumps(py))
        assert rc == 0, (runs, err)
        assert runs["py"]["outputTail"] == "taskdir ok\nallowed ok\noutside refused\nnet: none\n", runs["py"]
        assert runs["plain"]["outputTail"] == ("taskdir: ok\nallowed: ok\noutside: refused\nvisible: yes\n"
                                               "hidden: not there\njournal: hidden\nnet: none\n"), runs
        rc, runs, err = submit(c, "name: loosen\ntarget: {hosts: [box-1]}\ntasks:\n" +
                               task("net", p, "{network: host}"))
        text = json.dumps(runs) + err
        assert rc != 0 and "sandbox.network: host is not allowed for shell tasks" in text, text
        rc, runs, err = submit(c, "name: loosen2\ntarget: {hosts: [box-1]}\ntasks:\n" +
                               task("rw", p, "{writable: [%s]}" % p["outside"]))
        text = json.dumps(runs) + err
        assert rc != 0 and "sandbox.writable[0]: %s is not under the agent's sandbox_writable" % p["outside"] in text, text
        assert os.listdir(p["outside"]) == ["visible.txt"], os.listdir(p["outside"])
    finally:
        lsn.close()
        shutil.rmtree(base, ignore_errors=True)


PIDS_SCRIPT = r"""
echo "pid: $$"
ps -e -o pid= | wc -l | sed 's/^ */procs: /'
test -e /proc/%(host_pid)d && echo "host pid: SEEN" || echo "host pid: hidden"
kill -0 %(host_pid)d 2>/dev/null && echo "signal host: SENT" || echo "signal host: refused"
grep '^Seccomp:' /proc/self/status | tr -d '\t'
unshare --user true 2>/dev/null && echo "unshare: ALLOWED" || echo "unshare: refused"
sleep 1000 &
exit 3
"""


def test_sandbox_pids_and_seccomp(c):
    """A sandboxed task has its own pid namespace (ps and /proc show only its processes, a host
    process cannot be seen or signalled) and the container launcher's seccomp filter
    (Seccomp: 2, unshare refused); its exit code is its own and what it left running dies
    with it. hostPid / seccompUnconfined opt out; a forced sandbox cannot."""
    if not can_sandbox():
        return
    c.start_musterd()
    c.start_agent("box-1", "role=sb", "--heartbeat-interval", "300ms")
    wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
    script = PIDS_SCRIPT % {"host_pid": os.getpid()}

    def pid_task(name, sandbox):
        lines = ["  - name: %s" % name, "    shell:", "      interpreter: bash", "      script: |"]
        lines += ["        " + l for l in script.strip().splitlines()]
        lines.append("    sandbox: %s" % sandbox)
        return "\n".join(lines) + "\n"
    rc, runs, err = submit(c, "name: pids\ntarget: {hosts: [box-1]}\ntasks:\n" + pid_task("boxed", "{network: none}"))
    boxed = runs["boxed"]
    rc, runs, err = submit(c, "name: optout\ntarget: {hosts: [box-1]}\ntasks:\n" +
                           pid_task("optout", "{network: none, host_pid: true, seccomp_unconfined: true}"))
    optout = runs["optout"]
    assert boxed["state"] == "FAILED" and boxed.get("exitCode") == 3, boxed
    out = boxed["outputTail"]
    # pid 1 is muster-exec's init; the shell and ps are the only others
    assert "pid: 2\n" in out, out
    procs = int(out.split("procs: ")[1].split("\n")[0])
    assert procs <= 5, out
    for want in ("host pid: hidden", "signal host: refused", "Seccomp:2", "unshare: refused"):
        assert want + "\n" in out, (want, out)
    assert optout.get("exitCode") == 3, optout
    out = optout["outputTail"]
    for want in ("host pid: SEEN", "signal host: SENT", "Seccomp:0", "unshare: ALLOWED"):
        assert want + "\n" in out, (want, out)
    # the boxed task's `sleep 1000 &` died with its pid namespace
    wait_until("the tasks' background sleeps to be gone", lambda: not live_pids("sleep 1000"), timeout=10)


def test_forced_sandbox_no_opt_out(c):
    if not can_sandbox():
        return
    c.start_musterd()
    c.start_agent("box-1", "role=sb", "--heartbeat-interval", "300ms", "--sandbox-types", "shell")
    wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
    rc, runs, err = submit(c, "name: optout\ntarget: {hosts: [box-1]}\ntasks:\n"
                           "  - name: t\n    shell: {script: 'ps -e'}\n    sandbox: {host_pid: true}\n")
    text = json.dumps(runs) + err
    assert rc != 0 and "sandbox.hostPid: not allowed for shell tasks" in text, text


if __name__ == "__main__":
    main([test_task_sandbox, test_forced_sandbox, test_sandbox_pids_and_seccomp, test_forced_sandbox_no_opt_out])
