"""The install story end to end (docs/install.md): the .deb's metadata, file modes and units
(systemd-analyze verify), dpkg install / remove / purge into a scratch root (--root, maintainer
scripts run chrootless with DPKG_ROOT), scripts/install into another root (an existing config
kept), and the installed binaries run: a musterd and an agent started WITHOUT --plugin-dir or
--exec-helper (it finds lib/muster/plugins and libexec/muster beside itself) run a shell task
over mTLS with a `muster pki` CA, the CLI reaching it through a context of its config file.

    python3 install_test.py DEB INSTALL_SCRIPT DIST_TAR
"""
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Scratch:
    """A work dir and the daemons started in it (what harness.main expects of a cluster)."""

    def __init__(self, deb, install, dist):
        self.deb, self.install, self.dist = (os.path.abspath(p) for p in (deb, install, dist))
        self.dir = tempfile.mkdtemp(prefix="muster-install-")
        self._procs = []

    def procs(self):
        return self._procs

    def start(self, name, argv):
        p = harness.Proc(name, argv, self.dir)
        self._procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self._procs):
            if p.alive():
                rc = p.stop()
                if rc != 0:
                    raise AssertionError("%s exited %s:\n%s" % (p.name, rc, p.text()[-2000:]))
        shutil.rmtree(self.dir, ignore_errors=True)


def run(*argv, check=True, env=None, **kw):
    r = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=120, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (argv, r.returncode, r.stdout, r.stderr))
    return r


def dpkg_root(root, *args):
    return run("dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends",
               "--log=/dev/null", *args)


def files_under(root, skip=("var/lib/dpkg", "var/log")):
    out = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        out += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return sorted(out)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_deb_metadata(s):
    info = run("dpkg-deb", "-f", s.deb, "Package", "Version", "Architecture", "Depends").stdout
    fields = dict(l.split(": ", 1) for l in info.strip().split("\n"))
    assert fields["Package"] == "muster", fields
    version = run("tar", "-xOf", s.dist, "./VERSION").stdout.strip()
    assert fields["Version"] == version, (fields, version)
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    depends = [d.split(" ")[0] for d in fields["Depends"].split(", ")]
    for lib in ("libc6", "libuv1", "libssl3", "libyaml-0-2", "libjansson4", "libprotobuf-c1"):
        assert lib in depends, (lib, depends)
    assert "(>= " in fields["Depends"], fields["Depends"]
    conffiles = run("dpkg-deb", "-I", s.deb, "conffiles").stdout.split()
    assert conffiles == ["/etc/muster/agent.yaml", "/etc/muster/musterd.yaml"], conffiles
    listing = {}
    for line in run("dpkg-deb", "-c", s.deb).stdout.strip().split("\n"):
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        listing[path] = (perms, owner)
    expect = {
        "./usr/bin/muster": "-rwxr-xr-x", "./usr/bin/musterd": "-rwxr-xr-x",
        "./usr/bin/muster-agent": "-rwxr-xr-x",
        "./usr/libexec/muster/muster-exec": "-rwxr-xr-x",
        "./usr/libexec/muster/muster-plugin-host": "-rwxr-xr-x",
        "./usr/libexec/muster/muster-image-build": "-rwxr-xr-x",
        "./usr/lib/muster/plugins/libmuster_shell.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/libmuster_http.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/libmuster_python.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/libmuster_flink.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/libmuster_spark.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/libmuster_container.so": "-rw-r--r--",
        "./usr/lib/muster/plugins/muster-container": "-rwxr-xr-x",
        "./usr/lib/muster/plugins/muster-container-full": "-rwxr-xr-x",
        "./lib/systemd/system/musterd.service": "-rw-r--r--",
        "./lib/systemd/system/muster-agent.service": "-rw-r--r--",
        "./etc/muster/agent.yaml": "-rw-r--r--", "./etc/muster/musterd.yaml": "-rw-r--r--",
        "./etc/muster/tls/": "drwx------",
        "./usr/share/man/man1/muster.1.gz": "-rw-r--r--",
        "./usr/share/man/man8/musterd.8.gz": "-rw-r--r--",
        "./usr/share/man/man8/muster-agent.8.gz": "-rw-r--r--",
        "./usr/share/bash-completion/completions/muster": "-rw-r--r--",
        "./usr/share/zsh/vendor-completions/_muster": "-rw-r--r--",
    }
    for path, perms in expect.items():
        assert path in listing, (path, sorted(listing))
        assert listing[path][0] == perms, (path, listing[path])
    assert all(o == "root/root" for _p, o in listing.values()), listing
    assert not any(p.startswith("./var") for p in listing), "the state dir is made by postinst"
    ctl = os.path.join(s.dir, "control")
    run("dpkg-deb", "-e", s.deb, ctl)
    for script in ("postinst", "prerm", "postrm"):
        assert mode(os.path.join(ctl, script)) == 0o755, script
    if shutil.which("apt-get"):  # the Depends resolve on this machine: `apt install ./x.deb` works
        copy = os.path.join(s.dir, "muster_%s.deb" % version)
        shutil.copy(s.deb, copy)
        r = run("apt-get", "install", "--simulate", "-o", "Debug::NoLocking=1", copy)
        assert "Inst muster" in r.stdout, r.stdout[-2000:]


def test_units(s):
    root = os.path.join(s.dir, "x")
    run("dpkg-deb", "-x", s.deb, root)
    units = os.path.join(root, "lib/systemd/system")
    agent = open(os.path.join(units, "muster-agent.service")).read()
    musterd = open(os.path.join(units, "musterd.service")).read()
    for text in (agent, musterd):
        for line in ("Restart=on-failure", "RestartPreventExitStatus=2", "KillMode=mixed",
                     "StateDirectory=muster"):
            assert "\n" + line + "\n" in text, (line, text)
        assert "ExecStopPost" not in text  # it would stop mixed's final SIGKILL (systemd #14566)
    assert "ExecStart=/usr/bin/muster-agent --config /etc/muster/agent.yaml\n" in agent
    assert "ExecStart=/usr/bin/musterd --config /etc/muster/musterd.yaml\n" in musterd
    assert "Delegate=yes" in agent and "ProtectSystem" not in agent and "NoNewPrivileges" not in agent
    assert "ProtectSystem=strict" in musterd and "NoNewPrivileges=yes" in musterd
    if not shutil.which("systemd-analyze"):
        print("SKIP systemd-analyze verify: systemd-analyze is not installed")
        return
    # verify checks that ExecStart exists on this machine: point it at the extracted binaries
    check = os.path.join(s.dir, "verify")
    os.makedirs(check)
    for name, text in (("muster-agent.service", agent), ("musterd.service", musterd)):
        with open(os.path.join(check, name), "w") as f:
            f.write(text.replace("/usr/bin/", os.path.join(root, "usr/bin") + "/"))
    r = run("systemd-analyze", "verify", "--man=no", os.path.join(check, "musterd.service"),
            os.path.join(check, "muster-agent.service"), check=False)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr


def test_dpkg_install_remove_purge(s):
    root = os.path.join(s.dir, "root")
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    dpkg_root(root, "-i", s.deb)
    state = os.path.join(root, "var/lib/muster")
    assert os.path.isdir(state) and mode(state) == 0o750, "postinst makes the state dir 0750"
    installed = files_under(root)
    assert "usr/bin/muster-agent" in installed and "etc/muster/agent.yaml" in installed
    with open(os.path.join(root, "etc/muster/agent.yaml"), "a") as f:
        f.write("log_level: debug\n")
    dpkg_root(root, "-r", "muster")  # remove: only the conffiles stay
    left = files_under(root)
    assert left == ["etc/muster/agent.yaml", "etc/muster/musterd.yaml"], left
    assert "log_level: debug" in open(os.path.join(root, "etc/muster/agent.yaml")).read()
    assert not os.path.exists(state), "an empty state dir goes with remove"
    dpkg_root(root, "-P", "muster")  # purge: nothing left
    assert files_under(root) == [], files_under(root)
    assert not os.path.exists(os.path.join(root, "etc/muster"))
    # reinstall, put state in, purge: the state goes too
    dpkg_root(root, "-i", s.deb)
    os.makedirs(os.path.join(state, "spool"))
    open(os.path.join(state, "spool", "journal"), "w").close()
    dpkg_root(root, "-r", "muster")
    assert os.path.exists(os.path.join(state, "spool", "journal")), "remove keeps state"
    dpkg_root(root, "-P", "muster")
    assert not os.path.exists(state) and files_under(root) == []


def test_install_script(s):
    root = os.path.join(s.dir, "root")
    run(s.install, "--from", s.dist, "--prefix", "/usr/local", "--root", root, "--no-reload")
    for path, m in (("usr/local/bin/muster", 0o755), ("usr/local/bin/musterd", 0o755),
                    ("usr/local/bin/muster-agent", 0o755),
                    ("usr/local/libexec/muster/muster-exec", 0o755),
                    ("usr/local/libexec/muster/muster-plugin-host", 0o755),
                    ("usr/local/lib/muster/plugins/libmuster_shell.so", 0o644),
                    ("usr/local/lib/muster/plugins/muster-container", 0o755),
                    ("usr/local/lib/muster/plugins/muster-container-full", 0o755),
                    ("usr/local/share/man/man1/muster.1.gz", 0o644),
                    ("etc/muster/agent.yaml", 0o644), ("etc/muster/tls", 0o700),
                    ("etc/systemd/system/muster-agent.service", 0o644),
                    ("var/lib/muster", 0o750)):
        assert mode(os.path.join(root, path)) == m, (path, oct(mode(os.path.join(root, path))))
    unit = open(os.path.join(root, "etc/systemd/system/muster-agent.service")).read()
    assert "ExecStart=/usr/local/bin/muster-agent --config /etc/muster/agent.yaml\n" in unit
    man = gzip.open(os.path.join(root, "usr/local/share/man/man1/muster.1.gz"), "rt").read()
    assert ".SH NAME" in man and ".SS muster agents" in man and "\\-\\-context" in man
    with open(os.path.join(root, "etc/muster/agent.yaml"), "w") as f:
        f.write("id: mine\n")
    r = run(s.install, "--from", s.dist, "--prefix", "/usr/local", "--root", root, "--no-reload")
    assert open(os.path.join(root, "etc/muster/agent.yaml")).read() == "id: mine\n"
    assert os.path.exists(os.path.join(root, "etc/muster/agent.yaml.example"))
    assert "keeping /etc/muster/agent.yaml" in r.stderr, r.stderr
    r = run(s.install, "--bogus", check=False)
    assert r.returncode == 2 and "usage: scripts/install" in r.stderr, r.stderr


def test_installed_binaries_run_a_task(s):
    root = os.path.join(s.dir, "root")
    run("dpkg-deb", "-x", s.deb, root)
    bindir = os.path.join(root, "usr/bin")
    muster = os.path.join(bindir, "muster")
    for b in ("muster", "musterd", "muster-agent"):
        v = run(os.path.join(bindir, b), "--version").stdout
        assert v.startswith(b + " ") and "(commit " in v, v
    pki = os.path.join(s.dir, "pki")
    run(muster, "pki", "init", "--out", os.path.join(pki, "ca"))
    ca = os.path.join(pki, "ca")
    run(muster, "pki", "issue", "--ca", ca, "--kind", "server", "--name", "localhost", "--san",
        "127.0.0.1,localhost", "--out", os.path.join(pki, "server"))
    run(muster, "pki", "issue", "--ca", ca, "--kind", "agent", "--name", "installed-1", "--out",
        os.path.join(pki, "agent"))
    run(muster, "pki", "issue", "--ca", ca, "--kind", "admin", "--name", "ops", "--role", "admin",
        "--out", os.path.join(pki, "admin"))
    port = harness.free_port()
    tls = ["--tls-ca", os.path.join(ca, "ca.crt")]
    s.start("musterd", [os.path.join(bindir, "musterd"), "--no-etcd", "--listen",
                        "127.0.0.1:%d" % port, "--state-dir", os.path.join(s.dir, "state")] + tls +
            ["--tls-cert", os.path.join(pki, "server.crt"), "--tls-key",
             os.path.join(pki, "server.key")])
    # No --plugin-dir, no --exec-helper: found beside the installed binary.
    agent = s.start("agent", [os.path.join(bindir, "muster-agent"), "--control",
                              "127.0.0.1:%d" % port, "--spool-dir", os.path.join(s.dir, "spool"),
                              "--labels", "role=installed"] + tls +
                    ["--tls-cert", os.path.join(pki, "agent.crt"), "--tls-key",
                     os.path.join(pki, "agent.key")])
    plugins = os.path.join(root, "usr/lib/muster/plugins")
    harness.wait_until("the agent's task types", lambda: "task types:" in agent.text())
    log = agent.text()
    types = log.split("task types: ", 1)[1].split("\n", 1)[0]
    assert sorted(types.split(", ")) == ["container", "flink", "http", "python", "shell", "spark"], log[-2000:]
    assert "plugin dir %s/../lib/muster/plugins" % bindir in log, log[-2000:]
    assert "muster-exec not found" not in log, log[-2000:]
    # The CLI reaches it through a context of its config file (no --addr/--ca flags).
    config = os.path.join(s.dir, "config.yaml")
    with open(config, "w") as f:
        f.write("# contexts for the install test\ncontexts:\n  installed:\n"
                "    addr: 127.0.0.1:%d\n    ca: pki/ca/ca.crt\n    cert: pki/admin.crt\n"
                "    key: pki/admin.key\n  elsewhere:\n    addr: 127.0.0.1:1\n" % port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    env["MUSTER_CONFIG"] = config
    run(muster, "config", "use-context", "installed", env=env)

    def connected():
        r = run(muster, "agents", "-o", "json", env=env, check=False)
        rows = [json.loads(l) for l in r.stdout.strip().split("\n") if l.strip()]
        return [a for a in rows if a.get("agentId") == "installed-1" and a.get("state") == "AGENT_CONNECTED"]
    harness.wait_until("installed-1 connected", connected, timeout=30)
    r = run(muster, "run", "-t", "role=installed", "--", "sh", "-c",
            "echo hello from $(basename $0) on installed", env=env)
    assert "hello from sh on installed" in r.stdout, r.stdout + r.stderr
    # The other context points where nothing listens: --context picks it (exit 1, unreachable).
    r = run(muster, "--context", "elsewhere", "agents", env=env, check=False)
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr, (r.returncode, r.stderr)
    # bash completion from the installed file completes commands from the command table.
    comp = os.path.join(root, "usr/share/bash-completion/completions/muster")
    r = run("bash", "-c", 'source "$1"; COMP_WORDS=(muster ag); COMP_CWORD=1; _muster; '
            'echo "${COMPREPLY[@]}"', "_", comp)
    assert r.stdout.split() == ["agents"], r.stdout
    assert os.path.isdir(plugins)


if __name__ == "__main__":
    harness.main([test_deb_metadata, test_units, test_dpkg_install_remove_purge,
                  test_install_script, test_installed_binaries_run_a_task],
                 make_cluster=Scratch)
