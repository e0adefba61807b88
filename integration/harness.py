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
import traceback


LSAN_SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsan.supp")
# every process a test starts (daemons, the CLI, tools) inherits it
os.environ["LSAN_OPTIONS"] = "suppressions=" + LSAN_SUPPRESSIONS
# the CLI never reads the developer's own contexts (~/.config/muster/config.yaml) in a test
os.environ["MUSTER_CONFIG"] = "/nonexistent/muster-test-config.yaml"
os.environ.pop("MUSTER_CONTEXT", None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def json_lines(out):
    """`muster -o json ...` output: one object per line (docs/cli.md, "JSON output")."""
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def job_status(out):
    """`muster -o json status JOB` output (a "job" line, then a "task" line per task run) as one
    dict: the job with its task runs under "tasks"."""
    lines = json_lines(out)
    job = next(l for l in lines if l.get("kind") == "job")
    job["tasks"] = [l for l in lines if l.get("kind") == "task"]
    return job


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
        env = dict(os.environ)
        env["LSAN_OPTIONS"] = "suppressions=" + LSAN_SUPPRESSIONS
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)

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


class Pki:
    """A throwaway CA in dir and the certificates a test needs, made with the `openssl` CLI the
    way docs/security.md documents it (muster pki writes the same files; its own tests are in
    lib/pki). Certificates are cached by (kind, name, role)."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self.ca = os.path.join(dir, "ca.crt")
        self.ca_key = os.path.join(dir, "ca.key")
        self.serial = os.path.join(dir, "ca.srl")
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.ca_key)
        self._openssl("req", "-x509", "-new", "-key", self.ca_key, "-subj", "/O=muster/CN=muster test CA",
                      "-days", "30", "-out", self.ca)
        self.issued = {}

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed: %s" % (args[0], r.stderr))

    def issue(self, kind, name, role=None, sans=("localhost", "127.0.0.1"), days=30, ca=None,
              ca_key=None):
        """(crt, key) paths of a certificate of kind server|agent|admin for name (signed by
        this CA, or by ca/ca_key)."""
        k = (kind, name, role, days, ca)
        if k in self.issued:
            return self.issued[k]
        prefix = os.path.join(self.dir, "%s-%s%s-%d" % (kind, name, "-" + role if role else "",
                                                          len(self.issued)))
        crt, key, csr, ext = prefix + ".crt", prefix + ".key", prefix + ".csr", prefix + ".ext"
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        self._openssl("req", "-new", "-key", key, "-subj", "/O=muster/OU=%s/CN=%s" % (kind, name),
                      "-out", csr)
        alt = ["URI:muster://%s/%s" % (kind, name)]
        if role:
            alt.append("URI:muster://role/%s" % role)
        if kind == "server":
            alt += ["IP:" + h if h[0].isdigit() else "DNS:" + h for h in sans]
        eku = "serverAuth,clientAuth" if kind == "server" else "clientAuth"
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n" %
                    (",".join(alt), eku))
        self._openssl("x509", "-req", "-in", csr, "-CA", ca or self.ca, "-CAkey", ca_key or self.ca_key,
                      "-CAcreateserial", "-CAserial", self.serial, "-days", str(days),
                      "-extfile", ext, "-out", crt)
        os.chmod(key, 0o600)
        self.issued[k] = (crt, key)
        return crt, key


class Cluster:
    """A test's daemons. Every connection is mTLS from a throwaway CA (insecure=True: the one
    plaintext path, `--insecure` on both daemons). The CLI gets the admin certificate through
    MUSTER_CA / MUSTER_CERT / MUSTER_KEY in this process's environment."""

    insecure = False

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
        for v in ("MUSTER_CA", "MUSTER_CERT", "MUSTER_KEY", "MUSTER_TOKEN"):
            os.environ.pop(v, None)
        self.pki = None
        if not self.insecure:
            self.pki = Pki(os.path.join(self.workdir, "pki"))
            crt, key = self.pki.issue("admin", "test-admin", role="admin")
            os.environ.update(MUSTER_CA=self.pki.ca, MUSTER_CERT=crt, MUSTER_KEY=key)

    def server_tls(self, name="musterd"):
        """musterd's flags for TLS (or --insecure)."""
        if self.insecure:
            return ["--insecure"]
        crt, key = self.pki.issue("server", name)
        return ["--tls-ca", self.pki.ca, "--tls-cert", crt, "--tls-key", key]

    def grpc_channel(self, kind="admin", name="test-admin", role="admin", addr=None):
        """A python3-grpcio channel to musterd with a certificate of kind/name (plaintext when
        the cluster is insecure, or kind is None)."""
        import grpc
        addr = addr or self.addr
        if self.insecure or kind is None:
            return grpc.insecure_channel(addr)
        crt, key = self.pki.issue(kind, name, role=role if kind == "admin" else None)
        creds = grpc.ssl_channel_credentials(root_certificates=open(self.pki.ca, "rb").read(),
                                             private_key=open(key, "rb").read(),
                                             certificate_chain=open(crt, "rb").read())
        return grpc.secure_channel(addr, creds)

    def agent_tls(self, agent_id):
        """muster-agent's flags for an agent certificate of agent_id (or --insecure)."""
        if self.insecure:
            return ["--insecure"]
        crt, key = self.pki.issue("agent", agent_id)
        return ["--tls-ca", self.pki.ca, "--tls-cert", crt, "--tls-key", key]

    def start_musterd(self, *extra, etcd=None):
        """Starts musterd; in memory (--no-etcd) unless etcd= names endpoints."""
        store = ["--etcd", etcd] if etcd else ["--no-etcd"]
        self.musterd = Proc("musterd", [self.musterd_bin, "--listen", self.addr] + store +
                            self.server_tls() + list(extra), self.workdir)
        wait_until("musterd to answer on " + self.addr,
                   lambda: self.cli("cluster", check=False)[0] == 0)
        return self.musterd

    def start_agent(self, agent_id, labels="", *extra, plugin_dir=None, agent_bin=None):
        """Starts an agent as the README does: no plugin flags unless plugin_dir is given (it
        finds the plugins that ship with Muster itself); agent_bin runs another copy."""
        spool = os.path.join(self.workdir, "spool-" + agent_id)
        os.makedirs(spool, exist_ok=True)
        argv = [agent_bin or self.agent_bin, "--control", self.addr, "--id", agent_id,
                "--spool-dir", spool] + self.agent_tls(agent_id) + list(extra)
        if plugin_dir is not None:
            argv += ["--plugin-dir", plugin_dir]
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
            print("FAIL %s: %s" % (fn.__name__, e or repr(e)), flush=True)
            print(traceback.format_exc()[-3000:], flush=True)
            for p in c.procs():
                try:
                    if p.alive():
                        p.kill()
                    print("---- %s log (tail) ----\n%s" % (p.name, p.text()[-3000:]))
                except Exception:  # noqa: BLE001
                    pass
    print("%d passed, %d failed" % (len(test_functions) - failed, failed))
    sys.exit(1 if failed else 0)


def task_cgroups(c, agent_id):
    """The task groups (sub-directories) under this agent's cgroup sub-trees, in every
    hierarchy: [path, ...]. The sub-tree is "muster-<id>-<FNV-1a of the spool dir>"
    (agent/tasks.c), so other runs' agents named alike are not looked at."""
    h = 2166136261
    for b in os.path.join(c.workdir, "spool-" + agent_id).encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    name = "muster-%s-%08x" % (agent_id, h)
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        if top.count("/") > 9:
            dirs[:] = []
            continue
        if os.path.basename(top) == name:
            found += [os.path.join(top, d) for d in dirs]
            dirs[:] = []
    return found


def live_pids(needle):
    """Pids (not zombies) whose command line contains needle."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/status" % pid) as f:
                state = [l for l in f if l.startswith("State:")][0]
        except (OSError, IndexError):
            continue
        if needle in cmd and "zombie" not in state:
            found.append(int(pid))
    return found
