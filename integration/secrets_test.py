"""End-to-end secrets: stored encrypted, handed to the one agent that runs the task, never in
clear at rest or in output.

The operator's story: make a key, start musterd with it, store a database password; a job
uses it as an env var and as a file and prints it (split across two writes) — the output says
`***`, and the value is nowhere: not in etcd, the daemons' logs, the agent's journal and
output spool, `muster watch`, `muster logs` or `muster status`; the file is gone after the
task. An HTTP task sends it as a header. Inline values, secret-looking env literals and
unknown secret names are refused at submit, naming them. The key is rotated by replacing the
key file and asking the control plane to re-encrypt: the values still reach tasks, also on
another member after the leader is killed. Without a key, secrets are refused clearly.
"""
import hashlib
import json
import os
import secrets as pysecrets
import shutil
import subprocess
import sys

from harness import free_port, wait_until
from harness import main as harness_main
from ha_test import HA

HERE = os.path.dirname(os.path.abspath(__file__))


class Secrets(HA):
    """HA's etcd and members, plus the single musterd of the in-memory tests."""

    def stop_all(self):
        problems = []
        if self.musterd is not None and self.musterd.alive():
            rc = self.musterd.stop()
            if rc != 0:
                problems.append("musterd exited %d:\n%s" % (rc, self.musterd.text()[-3000:]))
        super().stop_all()
        if problems:
            raise AssertionError("\n".join(problems))

    def procs(self):
        return super().procs() + ([self.musterd] if self.musterd else [])


def job_file(c, name, body):
    path = os.path.join(c.workdir, name)
    with open(path, "w") as f:
        f.write(body)
    return path


def new_value():
    return "s3cr3t-Passw0rd-" + pysecrets.token_hex(8)


def keygen(c, cli, name):
    path = os.path.join(c.workdir, name)
    rc, out, err = cli("secret", "keygen", "--out", path, check=False)
    assert rc == 0 and "key id" in out, (out, err)
    assert os.stat(path).st_mode & 0o777 == 0o600
    return path


def set_secret(cli_bin, addr, name, value, *flags):
    r = subprocess.run([cli_bin, "--addr", addr, "secret", "set", name] + list(flags),
                       input=value + "\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert value not in r.stdout + r.stderr
    return r.stdout


USE_SECRET = """
name: uses-secret
target: {all: true}
tasks:
  - name: use-secret
    secrets:
      - {name: DB_PASSWORD, from: db-password}
      - {name: db_password, from: db-password, as: file}
    shell:
      interpreter: bash
      script: |
        printf '%%s' "${DB_PASSWORD:0:5}"; sleep 0.2; printf '%%s\\n' "${DB_PASSWORD:5}"
        cat "$MUSTER_SECRETS_DIR/db_password"; echo
        echo "sha=$(printf '%%s' "$DB_PASSWORD" | sha256sum | cut -c1-16)"
        cmp -s "$db_password_FILE" <(printf '%%s' "$DB_PASSWORD") && echo "file matches env"
        echo "$MUSTER_SECRETS_DIR" > %(marker)s
        echo done >&2
"""


def run_secret_job(c, cli, value):
    """Submits USE_SECRET; returns (job id, {what: text}) of everything a user can read."""
    marker = os.path.join(c.workdir, "secrets-dir-%s" % pysecrets.token_hex(4))
    spec = job_file(c, "use.yaml", USE_SECRET % {"marker": marker})
    rc, out, err = cli("-o", "json", "submit", spec, check=False)
    assert rc == 0, (out, err)
    job = json.loads(out.splitlines()[-1])["jobId"]
    seen = {"submit": out + err}
    for args in (("watch", job), ("-o", "json", "watch", job), ("logs", job),
                 ("-o", "json", "logs", job), ("-o", "json", "status", job), ("status", job),
                 ("-o", "json", "jobs")):
        rc, out, err = cli(*args, check=False)
        assert rc == 0, (args, out, err)
        seen[" ".join(args)] = out + err
    logs = seen["logs " + job]
    want_sha = hashlib.sha256(value.encode()).hexdigest()[:16]
    assert "sha=" + want_sha in logs, logs  # the task had the right value
    assert "file matches env" in logs, logs
    assert logs.count("***") >= 2, logs  # both prints, the split one too
    # the file form is gone once the task ended
    secrets_dir = open(marker).read().strip()
    assert secrets_dir and not os.path.exists(secrets_dir), secrets_dir
    return job, seen


def assert_nowhere(value, texts, paths=()):
    """value (and its base64) appears in none of texts nor in any file under paths."""
    needles = [value.encode()]
    for what, text in texts.items():
        assert value not in text, "secret value found in %s:\n%s" % (what, text)
    for root in paths:
        for d, _, files in os.walk(root):
            for name in files:
                p = os.path.join(d, name)
                try:
                    data = open(p, "rb").read()
                except OSError:
                    continue
                for n in needles:
                    assert n not in data, "secret value found in file %s" % p


def refusals(c, cli):
    """Inline values, secret-looking env literals and unknown names, refused at submit."""
    spec = job_file(c, "inline.yaml", """
target: {all: true}
tasks:
  - name: deploy
    secrets: [{name: DB_PASSWORD, value: hunter2hunter2}]
    shell: {script: "true"}
""")
    rc, _, err = cli("submit", spec, check=False)
    assert rc == 2 and "tasks[0] 'deploy'" in err and "'DB_PASSWORD' has an inline value" in err, err
    assert "secrets: [{name: DB_PASSWORD, from:" in err, err
    spec = job_file(c, "env.yaml", """
target: {all: true}
tasks:
  - name: deploy
    env: {STAGE: prod, Api_Token: abc123, TOKEN_FILE: /run/token}
    shell: {script: "true"}
""")
    rc, _, err = cli("submit", spec, check=False)
    assert rc == 2 and "env Api_Token looks like a secret" in err, err
    assert "secrets: [{name: Api_Token, from:" in err and "TOKEN_FILE" not in err, err
    rc, _, err = cli("run", "--env", "DB_PASSWORD=hunter2", "--", "true", check=False)
    assert rc == 2 and "DB_PASSWORD looks like a secret" in err, err
    spec = job_file(c, "unknown.yaml", """
target: {all: true}
tasks:
  - name: deploy
    secrets: [{name: X, from: no-such-secret}]
    shell: {script: "true"}
""")
    rc, _, err = cli("submit", spec, check=False)
    assert rc == 2 and "no secret named 'no-such-secret'" in err, err


def http_with_secret(c, cli):
    """An HTTP task sends a stored token as ${secret.TOKEN} in a header."""
    srv = subprocess.Popen([sys.executable, os.path.join(HERE, "http_server.py")],
                           stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline().split()[1])
        set_secret(c.cli_bin, c.addr, "api-token", "tok-12345-secret")
        spec = job_file(c, "http.yaml", """
target: {all: true}
tasks:
  - name: call
    secrets: [{name: TOKEN, from: api-token}]
    http:
      url: http://127.0.0.1:%d/bearer
      headers: {Authorization: "Bearer ${secret.TOKEN}"}
""" % port)
        rc, out, err = cli("-o", "json", "submit", spec, check=False)
        assert rc == 0 and "bearer ok" in out, (out, err)
        assert "tok-12345-secret" not in out + err, out
    finally:
        srv.kill()
        srv.wait()


def test_secrets_in_memory(c):
    key = keygen(c, c.cli, "secret.key")
    c.start_musterd("--secret-key", key, "--heartbeat-timeout", "2s")
    c.start_agent("sec-web-1", "env=prod", "--heartbeat-interval", "300ms")
    wait_until("the agent", lambda: c.states().get("sec-web-1") == "AGENT_CONNECTED")
    value = new_value()
    out = set_secret(c.cli_bin, c.addr, "db-password", "first-" + value)
    assert out.strip() == "secret db-password: version 1", out
    vfile = os.path.join(c.workdir, "value")
    with open(vfile, "w") as f:
        f.write(value + "\n")
    rc, out, _ = c.cli("secret", "set", "db-password", "--file", vfile)
    os.unlink(vfile)
    assert out.strip() == "secret db-password: version 2", out
    rc, out, err = c.cli("secret", "set", "db-password", value, check=False)
    assert rc == 2 and "never an argument" in err, err
    job, seen = run_secret_job(c, c.cli, value)
    rc, ls, _ = c.cli("secret", "ls")
    assert "db-password" in ls and " 2 " in ls, ls
    seen["secret ls"] = ls + c.cli("-o", "json", "secret", "ls")[1]
    # killed in the middle of printing it: the cut-off start is masked too
    spec = job_file(c, "killed.yaml", """
target: {all: true}
tasks:
  - name: killed-mid-print
    secrets: [{name: DB_PASSWORD, from: db-password}]
    shell: {interpreter: bash, script: 'printf "%s" "${DB_PASSWORD:0:8}"; kill -9 $$'}
""")
    rc, out, err = c.cli("-o", "json", "submit", spec, check=False)
    assert rc == 1 and "***" in out and value[:8] not in out, (out, err)
    seen["killed"] = out + c.cli("logs", json.loads(out.splitlines()[-1])["jobId"])[1]
    refusals(c, c.cli)
    http_with_secret(c, c.cli)
    # rotate: the operator writes a new key over the key file, the control plane re-encrypts
    new_key = keygen(c, c.cli, "secret.key.new")
    old_id = json.loads(c.cli("-o", "json", "secret", "ls")[1].splitlines()[0])["keyId"]
    shutil.copyfile(new_key, key)
    rc, out, err = c.cli("secret", "rotate-key", check=False)
    assert rc == 0 and "2 secrets re-encrypted" in out and old_id in out, (out, err)
    rc, out, _ = c.cli("-o", "json", "secret", "ls")
    assert all(json.loads(l)["keyId"] != old_id for l in out.splitlines()), out
    rc, out, err = c.cli("secret", "rotate-key", check=False)
    assert rc == 2 and "already in use" in err, err
    job2, seen2 = run_secret_job(c, c.cli, value)
    seen.update({k + " (after rotation)": v for k, v in seen2.items()})
    rc, out, _ = c.cli("secret", "rm", "api-token")
    assert "deleted secret api-token" in out, out
    c.stop_all()
    assert_nowhere(value, dict(seen, musterd=c.musterd.text(),
                               agent=c.agents["sec-web-1"].text()),
                   [os.path.join(c.workdir, "spool-sec-web-1")])
    c.musterd = None
    c.agents.clear()


def test_secrets_refused_without_a_key(c):
    key = os.path.join(c.workdir, "bad.key")
    for text, mode, why in (("00" * 32 + "\n", 0o644, "mode 0644 is wider than 0600"),
                            ("00" * 31 + "\n", 0o600, "a secret key is 32 bytes")):
        with open(key, "w") as f:
            f.write(text)
        os.chmod(key, mode)
        r = subprocess.run([c.musterd_bin, "--listen", c.addr, "--no-etcd", "--insecure",
                            "--secret-key", key], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and why in r.stderr and key in r.stderr, r.stderr
    c.start_musterd()
    c.start_agent("sec-web-1")
    wait_until("the agent", lambda: c.states().get("sec-web-1") == "AGENT_CONNECTED")
    r = subprocess.run([c.cli_bin, "--addr", c.addr, "secret", "set", "x"], input="value-1",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--secret-key" in r.stderr, r.stderr
    spec = job_file(c, "use.yaml", USE_SECRET % {"marker": "/dev/null"})
    rc, _, err = c.cli("submit", spec, check=False)
    assert rc == 2 and "uses secrets" in err and "--secret-key" in err, err


def test_secrets_with_etcd(c):
    """Two members on a real etcd: records in etcd are sealed, followers decrypt nothing until
    they lead, a rotation done by one leader is picked up by the next from the key file."""
    key = keygen(c, c.cli, "secret.key")
    c.start_etcd()
    a = c.start_member("cp-a", "--secret-key", key)
    b = c.start_member("cp-b", "--secret-key", key)
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [(n, addr) for n, (_, addr) in c.members.items() if n != leader[0]][0]
    c.start_ha_agent("sec-web-1", a + "," + b)
    wait_until("the agent on the leader", lambda: c.connected_at(leader[1]) == {"sec-web-1"})

    def cli(*args, check=True, timeout=30):  # through the follower: redirected to the leader
        return c.cli_at(follower[1] + "," + leader[1], *args, check=check, timeout=timeout)

    value = new_value()
    set_secret(c.cli_bin, follower[1] + "," + leader[1], "db-password", value)
    wait_until("the follower to see the record",
               lambda: "db-password" in c.cli_at(follower[1], "secret", "ls", check=False)[1])
    job, seen = run_secret_job(c, cli, value)
    refusals(c, cli)
    # rotate on the leader after replacing the key file every member reads
    new_key = keygen(c, c.cli, "secret.key.new")
    shutil.copyfile(new_key, key)
    rc, out, err = c.cli_at(leader[1], "secret", "rotate-key", check=False)
    assert rc == 0 and "1 secrets re-encrypted" in out, (out, err)
    # kill -9 the leader: the other member, which loaded the old key at start, leads and
    # finds the new key in its key file when it first needs it
    p, _ = c.members.pop(leader[0])
    p.kill()
    wait_until("the follower to lead", lambda: (c.cluster_at(follower[1]) or {}).get("leader"),
               timeout=10, step=0.1)
    wait_until("the agent on the new leader", lambda: c.connected_at(follower[1]) == {"sec-web-1"},
               timeout=15)
    job2, seen2 = run_secret_job(c, lambda *a, **k: c.cli_at(follower[1], *a, **k), value)
    seen.update({k + " (new leader)": v for k, v in seen2.items()})
    dump = subprocess.run(["etcdctl", "--endpoints", c.endpoint, "get", "--prefix", ""],
                          capture_output=True, timeout=20, env=dict(os.environ, ETCDCTL_API="3"))
    assert dump.returncode == 0 and b"/muster/secrets/db-password" in dump.stdout, dump.stderr
    assert b"ciphertext" in dump.stdout
    seen["etcd dump"] = dump.stdout.decode(errors="replace")
    logs = {"cp " + n: m.text() for n, (m, _) in c.members.items()}
    logs["killed leader"] = p.text()
    c.stop_all()
    logs["agent"] = c.agents["sec-web-1"].text()
    assert_nowhere(value, dict(seen, **logs),
                   [os.path.join(c.workdir, "spool-sec-web-1"), os.path.join(c.workdir, "etcd")])
    c.members.clear()
    c.agents.clear()
    c.etcd = None


if __name__ == "__main__":
    harness_main([
        test_secrets_in_memory,
        test_secrets_refused_without_a_key,
        test_secrets_with_etcd,
    ], Secrets)
