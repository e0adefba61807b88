"""Shared helpers for Muster's end-to-end tests: start real musterd and muster-agent
processes on free loopback ports, run the real `muster` CLI, wait for conditions, and make
sure every daemon stops cleanly (exit 0: no AddressSanitizer or leak report).

Binaries come from the command line (Bazel passes their runfiles paths):
    python3 test.py MUSTERD AGENT CLI
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout=15.0, step=0.05):
    """Polls cond() until it returns a truthy value; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s (last value: %r)" % (timeout, what, last))


class Proc:
    """A daemon under test with its log in the work dir."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not stop within %ds of SIGTERM" % (self.name, timeout))
        self.log.close()
        return self.p.returncode

    def kill(self):
        self.p.kill()
        self.p.wait()
        self.log.close()


class Cluster:
    def __init__(self, musterd, agent, cli):
        self.musterd_bin = os.path.abspath(musterd)
        self.agent_bin = os.path.abspath(agent)
        self.cli_bin = os.path.abspath(cli)
        self.workdir = tempfile.mkdtemp(prefix="muster-it-", dir=os.environ.get("TEST_TMPDIR"))
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.musterd = None
        self.agents = {}
        self.failures = []

    def start_musterd(self, *extra, etcd=None):
        """Starts musterd; in memory (--no-etcd) unless etcd= names endpoints."""
        store = ["--etcd", etcd] if etcd else ["--no-etcd"]
        self.musterd = Proc("musterd", [self.musterd_bin, "--listen", self.addr] + store + list(extra),
                            self.workdir)
        wait_until("musterd to answer on " + self.addr,
                   lambda: self.cli("cluster", check=False)[0] == 0)
        return self.musterd

    def start_agent(self, agent_id, labels="", *extra):
        spool = os.path.join(self.workdir, "spool-" + agent_id)
        os.makedirs(spool, exist_ok=True)
        argv = [self.agent_bin, "--control", self.addr, "--id", agent_id, "--spool-dir", spool,
                "--plugin-dir", os.path.join(self.workdir, "plugins")] + list(extra)
        if labels:
            argv += ["--labels", labels]
        p = Proc("agent-" + agent_id, argv, self.workdir)
        self.agents[agent_id] = p
        return p

    def cli(self, *args, check=True, timeout=30):
        r = subprocess.run([self.cli_bin, "--addr", self.addr] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("muster %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return r.returncode, r.stdout, r.stderr

    def agents_json(self, *args):
        rc, out, _ = self.cli("-o", "json", "agents", *args, check=False)
        if rc != 0:
            return None
        return {a["agentId"]: a for a in (json.loads(line) for line in out.splitlines() if line)}

    def states(self):
        agents = self.agents_json() or {}
        return {k: v.get("state") for k, v in agents.items()}

    def procs(self):
        return list(self.agents.values()) + ([self.musterd] if self.musterd else [])

    def stop_all(self):
        """Stops every daemon; a non-zero exit (sanitizer report, crash) is a failure."""
        problems = []
        for name, p in list(self.agents.items()):
            rc = p.stop()
            if rc != 0:
                problems.append("agent %s exited %d:\n%s" % (name, rc, p.text()[-3000:]))
        if self.musterd is not None:
            rc = self.musterd.stop()
            if rc != 0:
                problems.append("musterd exited %d:\n%s" % (rc, self.musterd.text()[-3000:]))
        if problems:
            raise AssertionError("\n".join(problems))


def main(test_functions, make_cluster=None):
    """Runs each test(cluster) with a fresh cluster (make_cluster(musterd, agent, cli), default
    Cluster); prints a line per test, the log tails of a failed test's daemons and a count;
    exit 1 on failure. MUSTER_TEST_ONLY=name runs one test."""
    if len(sys.argv) < 4:
        print("usage: %s MUSTERD AGENT CLI" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    make_cluster = make_cluster or Cluster
    only = os.environ.get("MUSTER_TEST_ONLY")
    test_functions = [t for t in test_functions if not only or t.__name__ == only]
    failed = 0
    for fn in test_functions:
        c = make_cluster(*sys.argv[1:4])
        t0 = time.monotonic()
        try:
            fn(c)
            c.stop_all()
            print("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure, then go on
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)
            for p in c.procs():
                try:
                    if p.alive():
                        p.kill()
                    print("---- %s log (tail) ----\n%s" % (p.name, p.text()[-3000:]))
                except Exception:  # noqa: BLE001
                    pass
    print("%d passed, %d failed" % (len(test_functions) - failed, failed))
    sys.exit(1 if failed else 0)
