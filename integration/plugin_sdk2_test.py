"""SDK v2 end to end (issue 22 item 4): a real etcd, a real musterd, two real agents.

The operator's story: the example SDK v2 plugin `greet` takes its configuration from each
agent's YAML (plugins: {greet: {config: ...}}); on web-1 it runs out of process (the default for
a third-party plugin), on db-1 in process, beside the SDK v1 plugin sleep-echo, which still runs.
Its metrics show on the agent's /metrics under muster_plugin_greet_*, with its health gauge; a
plugin that reports itself unhealthy shows in `muster doctor`, at once from the heartbeats. `muster run --type greet --help`
prints the parameters its agents describe, and a greet task whose parameters do not fit that
schema is refused at submit. `muster plugin config greet -t role=web FILE` is
checked against the type's schema (a bad key or type is refused, naming it, and nothing is
stored), stored in etcd and pushed to web-1 live: the next task greets with it while db-1 keeps
its own; it survives a musterd restart and a kill -9 failover of the leader, and reaches an agent
that starts afresh; --clear gives web-1 its YAML config back.

argv: MUSTERD AGENT CLI GREET_SO SLEEP_ECHO_SO
"""
import json
import os
import subprocess
import sys
import urllib.request

from harness import Proc, free_port, wait_until
from ha_test import GRACE, TTL, main

GREET_SO, ECHO_SO = (os.path.abspath(p) for p in sys.argv[4:6])


def write(c, name, text):
    path = os.path.join(c.workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def plugin_dir(c):
    d = os.path.join(c.workdir, "plugins")
    os.makedirs(d, exist_ok=True)
    for so, name in ((GREET_SO, "libmuster_greet.so"), (ECHO_SO, "libmuster_sleep_echo.so")):
        if not os.path.exists(os.path.join(d, name)):
            os.symlink(so, os.path.join(d, name))
    return d


def greet(c, host, name="bob"):
    """Runs one greet task on host; (state, stdout) of its run."""
    path = write(c, "greet-%s-%d.yaml" % (host, len(os.listdir(c.workdir))),
                 "name: g\ntarget: {hosts: [%s]}\ntasks:\n  - name: hi\n    type: greet\n"
                 "    plugin: {type: greet, config_json: '{\"name\": \"%s\"}'}\n" % (host, name))
    rc, out, err = c.cli_at(c.addr, "-o", "json", "submit", path, check=False, timeout=60)
    runs = [json.loads(l) for l in out.splitlines() if '"taskId"' in l]
    assert len(runs) == 1, (rc, out, err)
    job = runs[0]["jobId"]
    _, logs, _ = c.cli_at(c.addr, "logs", job, check=False)
    assert runs[0]["state"] == "SUCCEEDED", (runs, logs)
    return logs


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def start(c):
    plugin_dir(c)
    c.start_etcd()
    c.addr = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    web_cfg = write(c, "web.yaml", "labels: {role: web}\nplugins:\n  greet:\n    config: {greeting: hola}\n")
    db_cfg = write(c, "db.yaml", "labels: {role: db}\nplugins:\n  greet:\n    isolation: in-process\n"
                                 "    config:\n      greeting: \"\"\n")
    c.mport = free_port()
    c.web_args = ("-c", web_cfg, "--metrics-listen", "127.0.0.1:%d" % c.mport)
    c.start_ha_agent("web-1", c.addr, c.web_args)
    c.start_ha_agent("db-1", c.addr, ("-c", db_cfg))
    wait_until("agents connected", lambda: {"web-1", "db-1"} <= c.connected_at(c.addr), timeout=20)


def restart_member(c, name, addr):
    p = Proc(name, [c.musterd_bin, "--listen", addr, "--etcd", c.endpoint, "--member-id", name,
                    "--leader-ttl", TTL, "--takeover-grace", GRACE, "--heartbeat-timeout", "2s"] + c.server_tls(name),
             c.workdir)
    c.members[name] = (p, addr)
    wait_until(name + " to answer", lambda: c.cli_at(addr, "cluster", check=False)[0] == 0)


def test_sdk_v2(c):
    start(c)
    web, db = c.agents["web-1"], c.agents["db-1"]
    assert "loaded greet 2.0.0 (ABI 2)" in web.text() and "in its own process" in web.text(), web.text()[-2000:]
    assert "plugin 'greet' configured from the agent config" in web.text(), web.text()[-2000:]
    # YAML config on both; the v1 plugin beside it still runs
    out = greet(c, "web-1")
    assert "hola, bob!" in out, out
    out = greet(c, "db-1")
    assert ", bob!" in out and "hola" not in out, out  # db-1 YAML sets an empty greeting
    path = write(c, "echo.yaml", "name: e\ntarget: {hosts: [db-1]}\ntasks:\n  - name: e\n    type: sleep-echo\n"
                                 "    plugin: {type: sleep-echo, config_json: '{\"message\": \"v1\", \"count\": 1}'}\n")
    rc, out, err = c.cli_at(c.addr, "submit", path, check=False, timeout=60)
    assert rc == 0, (out, err)

    # metrics: the plugin's own, from its host process, and its health gauge
    wait_until("greet metrics on web-1", lambda: 'muster_plugin_greet_greetings_total{outcome="ok"} 1' in metrics(c.mport))
    m = metrics(c.mport)
    assert 'muster_agent_plugin_health{type="greet"} 0' in m, m
    assert "muster_plugin_greet_name_length_bytes_bucket" in m, m
    assert 'muster_agent_plugin_health{type="shell"} 0' in m, m
    lint = subprocess.run(["promtool", "check", "metrics"], input=m, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr  # the plugins' own families too

    # doctor: db-1's greet says its greeting is empty
    rc, out, _ = c.cli_at(c.addr, "doctor", check=False)
    assert "plugin-greet" in out and "the greeting is empty" in out, out
    assert "db-1" in out.split("plugin-greet")[0].splitlines()[-1], out

    # muster run --type greet --help: the parameters the agents describe
    rc, out, _ = c.cli_at(c.addr, "run", "--type", "greet", "--help", check=False)
    assert rc == 0 and "Parameters of task type greet" in out, out
    assert "name                 string, required  who to greet" in out, out

    # submit-time: a greet task's parameters are checked against the schema its agents describe
    path = write(c, "nameless.yaml", "name: g\ntarget: {hosts: [web-1]}\ntasks:\n  - name: hi\n    type: greet\n"
                                     "    plugin: {type: greet, config_json: '{\"nam\": \"bob\"}'}\n")
    rc, out, err = c.cli_at(c.addr, "submit", path, check=False, timeout=60)
    assert rc == 2 and "task hi: greet.nam: unknown key (known: name, delayMs)" in err, (rc, out, err)
    path = write(c, "long.yaml", "name: g\ntarget: {hosts: [web-1]}\ntasks:\n  - name: hi\n    type: greet\n"
                                 "    plugin: {type: greet, config_json: '{\"name\": \"b\", \"delayMs\": -1}'}\n")
    rc, out, err = c.cli_at(c.addr, "submit", path, check=False, timeout=60)
    assert rc == 2 and "task hi: greet.delayMs: -1 is under the minimum 0" in err, (rc, out, err)

    # central config: checked against the schema first
    bad = write(c, "bad.yaml", "greeting: 5\n")
    rc, _, err = c.cli_at(c.addr, "plugin", "config", "greet", "-t", "role=web", bad, check=False)
    assert rc == 2 and "greet config.greeting: want string, got integer" in err, err
    bad = write(c, "bad2.yaml", "greting: hi\n")
    rc, _, err = c.cli_at(c.addr, "plugin", "config", "greet", "-t", "role=web", bad, check=False)
    assert rc == 2 and "greet config.greting: unknown key (known: greeting, punctuation)" in err, err
    rc, out, _ = c.cli_at(c.addr, "plugin", "config", "greet", "--show")
    assert "no central config" in out, out
    good = write(c, "good.yaml", "greeting: salut\npunctuation: \" !\"\n")
    rc, out, err = c.cli_at(c.addr, "plugin", "config", "greet", "-t", "role=web", good)
    assert "pushed to 1 agent" in out, (out, err)
    wait_until("web-1 configured centrally", lambda: "configured from the central config" in web.text())
    out = greet(c, "web-1")
    assert "salut, bob !" in out, out
    out = greet(c, "db-1")
    assert ", bob!" in out and "hola" not in out and "salut" not in out, out  # the selector does not match db-1
    rc, out, _ = c.cli_at(c.addr, "plugin", "config", "greet", "--show")
    assert '{"greeting":"salut","punctuation":" !"}' in out and "role=web" in out and "web-1" in out, out
    assert "greeting" in out.split("config keys:")[1], out
    _, out, _ = c.cli_at(c.addr, "-o", "json", "plugin", "config", "greet", "--show")
    shown = json.loads(out)
    assert shown["config"] == {"greeting": "salut", "punctuation": " !"} and shown["agents"] == ["web-1"], shown
    web_pid = web.pid

    # survives a musterd restart (from etcd), and reaches an agent that reconnects fresh
    p, _ = c.members["cp-a"]
    p.stop()
    restart_member(c, "cp-a", c.addr)
    web.stop()
    c.start_ha_agent("web-1", c.addr, c.web_args)
    web = c.agents["web-1"]
    assert web.pid != web_pid
    wait_until("web-1 back", lambda: "web-1" in c.connected_at(c.addr), timeout=20)
    wait_until("web-1 configured centrally again", lambda: "configured from the central config" in web.text())
    out = greet(c, "web-1")
    assert "salut, bob !" in out, out

    # live health of the out-of-process plugin on /metrics: an empty greeting makes it warn
    empty = write(c, "empty.yaml", "greeting: \"\"\n")
    c.cli_at(c.addr, "plugin", "config", "greet", "-t", "role=web", empty)
    wait_until("greet health warns on web-1",
               lambda: 'muster_agent_plugin_health{type="greet"} 1' in metrics(c.mport), timeout=20)

    def web_doctor_line():
        out = c.cli_at(c.addr, "doctor", check=False)[1]
        return [l for l in out.splitlines() if "agent web-1" in l and "plugin-greet" in l]
    # doctor sees it from the next heartbeat, not only from the Hello
    wait_until("doctor shows web-1's greet warning", lambda: web_doctor_line() != [], timeout=20)
    assert "WARN" in web_doctor_line()[0] and "the greeting is empty" in web_doctor_line()[0], web_doctor_line()

    # --clear: web-1 is back on its own YAML config, live
    rc, out, _ = c.cli_at(c.addr, "plugin", "config", "greet", "--clear")
    assert "removed" in out, out
    wait_until("web-1 back on its YAML", lambda: web.text().count("configured from the agent config") >= 2)
    wait_until("greet healthy again", lambda: 'muster_agent_plugin_health{type="greet"} 0' in metrics(c.mport))
    out = greet(c, "web-1")
    assert "hola, bob!" in out, out


def test_config_across_leader_failover(c):
    """kill -9 of the leader: the follower, which read the config from etcd (and showed it),
    leads; an agent that starts afresh after the failover is pushed the config by the new
    leader, and a new config set there reaches the agent live."""
    plugin_dir(c)
    c.start_etcd()
    a = c.start_member("cp-a")
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    b = c.start_member("cp-b")
    c.addr = a
    args = ("--labels", "role=web")
    c.start_ha_agent("web-1", a + "," + b, args)
    wait_until("web-1 on the leader", lambda: "web-1" in c.connected_at(a), timeout=20)
    c.cli_at(a, "plugin", "config", "greet", "-t", "role=web", write(c, "f.yaml", "greeting: failover\n"))
    wait_until("the follower to read it",
               lambda: "failover" in c.cli_at(b, "plugin", "config", "greet", "--show", check=False)[1])
    p, _ = c.members.pop("cp-a")
    p.kill()
    wait_until("cp-b to lead", lambda: (c.cluster_at(b) or {}).get("leader"), timeout=10, step=0.1)
    wait_until("web-1 on the new leader", lambda: "web-1" in c.connected_at(b), timeout=15)
    c.addr = b
    web = c.agents["web-1"]
    web.stop()
    c.start_ha_agent("web-1", b, args)  # a fresh agent process: nothing but what the leader pushes
    web = c.agents["web-1"]
    wait_until("web-1 back", lambda: "web-1" in c.connected_at(b), timeout=20)
    wait_until("the new leader to push the config", lambda: "configured from the central config" in web.text())
    out = greet(c, "web-1")
    assert "failover, bob!" in out, out
    c.cli_at(b, "plugin", "config", "greet", "-t", "role=web", write(c, "g.yaml", "greeting: later\n"))
    wait_until("the live change", lambda: web.text().count("configured from the central config") >= 2)
    out = greet(c, "web-1")
    assert "later, bob!" in out, out


if __name__ == "__main__":
    main([test_sdk_v2, test_config_across_leader_failover])
