"""End-to-end: plugins as signed bundles rolled out to a fleet, upgraded hot, rolled back.

The operator's story (issue 22 items 1-3), with a real etcd, musterd, three agents and the CLI:
pack and sign v1 and v2 of the example plugin, push them, deploy v1; start long tasks, deploy v2
while they run: the running tasks finish on v1, new ones start on v2, and v1 is unloaded from
each agent (/proc/PID/maps) once its last task ended. A downgrade is refused without
--allow-downgrade; a rollback goes back to v1; the deployed version survives an agent restart;
a deployed version cannot be removed. A deploy whose requirement two agents lack stops at
--max-errors and those agents keep their version; an untrusted key, a wrong ABI, a wrong arch
and a .so whose type differs from plugin.yaml are each refused naming the rule; a task pinned to
a version range runs only where it matches and a range nobody has is refused at submit.
"""
import json
import os
import shutil
import sys
import time

from harness import main, wait_until
from bundles_test import start_etcd

HB = "300ms"
V1_SO, V2_SO = sys.argv[4], sys.argv[5]
IDS = ("a1", "a2", "a3")


def sh(c, *args, check=True, timeout=60):
    return c.cli(*args, check=check, timeout=timeout)


def plugin_dir(c, name, so, version, type_="sleep-echo", abi=1, arch="x86_64", requires=None):
    """A directory with the .so and its plugin.yaml."""
    d = os.path.join(c.workdir, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(so, os.path.join(d, os.path.basename(so)))
    with open(os.path.join(d, "plugin.yaml"), "w") as f:
        f.write("type: %s\nversion: %s\nabi_version: %d\nos: linux\narch: %s\nlibrary: %s\n"
                "description: the example plugin\n"
                "config_schema: {type: object, properties: {message: {type: string}}}\n"
                % (type_, version, abi, arch, os.path.basename(so)))
        if requires:
            f.write("requires: {binaries: [%s]}\n" % requires)
    return d


def pack(c, d, key="team", *extra):
    out = d + ".bundle"
    rc, o, err = sh(c, "plugin", "pack", d, "--out", out, "--key", os.path.join(c.workdir, key + ".key"),
                    *extra, check=False)
    return rc, out, err


def pack_push(c, d, *extra):
    rc, out, err = pack(c, d, "team", *extra)
    assert rc == 0, err
    rc, o, err = sh(c, "-o", "json", "plugin", "push", out, check=False)
    assert rc == 0, err
    return json.loads(o.strip().splitlines()[-1])


def runs(out):
    return {r["agentId"]: r for r in (json.loads(l) for l in out.splitlines() if "taskId" in l)}


def deploy(c, *args):
    rc, out, err = sh(c, "-o", "json", "plugin", *args, check=False, timeout=120)
    return rc, runs(out), err


def versions(c, type_="sleep-echo"):
    agents = c.agents_json() or {}
    return {a: next((p["version"] for p in info.get("plugins", []) if p["type"] == type_), None)
            for a, info in agents.items()}


def mapped(c, agent, needle):
    with open("/proc/%d/maps" % c.agents[agent].pid) as f:
        return needle in f.read()


def cluster(c, tool_on=IDS):
    """etcd, musterd trusting team.pub, three agents running sleep-echo in process; the agents
    in tool_on find the binary muster-it-tool in their PATH."""
    sh(c, "keygen", "--out", os.path.join(c.workdir, "team"))
    sh(c, "keygen", "--out", os.path.join(c.workdir, "mallory"))
    etcd, endpoint = start_etcd(c)
    c.etcd = etcd
    c.start_musterd("--heartbeat-timeout", "3s", "--trust-key", os.path.join(c.workdir, "team.pub"),
                    etcd=endpoint)
    tools = os.path.join(c.workdir, "tools")
    os.makedirs(tools, exist_ok=True)
    with open(os.path.join(tools, "muster-it-tool"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(os.path.join(tools, "muster-it-tool"), 0o755)
    cfg = os.path.join(c.workdir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write("plugins:\n  sleep-echo: {isolation: in-process}\n")
    path = os.environ["PATH"]
    for a in IDS:
        os.environ["PATH"] = (tools + ":" + path) if a in tool_on else path
        try:
            start_agent(c, a, cfg)
        finally:
            os.environ["PATH"] = path
    wait_until("agents connected", lambda: sum(
        1 for k, v in c.states().items() if v == "AGENT_CONNECTED") == len(IDS), timeout=30)


def start_agent(c, a, cfg):
    c.start_agent(a, "role=web", "--heartbeat-interval", HB, "-c", cfg,
                  "--trust-key", os.path.join(c.workdir, "team.pub"))


def echo_job(c, name, count, interval_ms, detach, pin=None):
    spec = os.path.join(c.workdir, name + ".yaml")
    with open(spec, "w") as f:
        f.write("name: %s\ntarget: {selector: \"role=web\"}\ntasks:\n  - name: echo\n    type: sleep-echo\n"
                "    timeout: 60s\n%s    plugin: {type: sleep-echo, config_json: '{\"message\": \"hi\", "
                "\"count\": %d, \"intervalMs\": %d}'}\n"
                % (name, "    plugin_version: \"%s\"\n" % pin if pin else "", count, interval_ms))
    return sh(c, "-o", "json", "submit", spec, *(["--detach"] if detach else []), check=False, timeout=120)


def job_runs(c, job_id):
    rc, out, err = sh(c, "-o", "json", "status", job_id, check=False)
    assert rc in (0, 1), err
    return runs(out)


def test_deploy_hot_upgrade_and_rollback(c):
    cluster(c)
    v1 = pack_push(c, plugin_dir(c, "v1", V1_SO, "1.0.0"))
    v2 = pack_push(c, plugin_dir(c, "v2", V2_SO, "2.0.0"))
    assert v1["name"] == "plugin-sleep-echo" and v1["version"] == "1.0.0", v1
    rc, out, _ = sh(c, "plugin", "ls")
    assert "sleep-echo" in out and "1.0.0" in out and "2.0.0" in out, out

    rc, r, err = deploy(c, "deploy", "sleep-echo@1.0.0", "-t", "role=web", "--max-concurrency", "1")
    assert rc == 0 and set(r) == set(IDS), (r, err)
    assert all("sleep-echo 1.0.0 is active" in x["message"] for x in r.values()), r
    wait_until("agents report 1.0.0", lambda: set(versions(c).values()) == {"1.0.0"})
    rc, r, err = deploy(c, "deploy", "sleep-echo@1.0.0", "--hosts", "a1")  # again: nothing to do
    assert rc == 0 and "sleep-echo 1.0.0 is already active" in r["a1"]["message"], (r, err)
    rc, out, _ = sh(c, "-o", "json", "plugin", "ls", "sleep-echo")
    ls = {json.loads(l)["version"]: json.loads(l) for l in out.splitlines()}
    assert ls["1.0.0"]["agents"] == 3 and ls["2.0.0"]["agents"] == 0, ls
    v1_so = "plugins/sleep-echo/1.0.0/libmuster_sleep_echo_v1.so"
    assert all(mapped(c, a, v1_so) for a in IDS)

    # long tasks on v1, then v2 deployed under them
    rc, out, err = echo_job(c, "long", 25, 200, detach=True)
    assert rc == 0, err
    long_id = out.strip().splitlines()[-1]
    long_id = json.loads(long_id)["jobId"] if long_id.startswith("{") else long_id
    wait_until("long tasks running", lambda: len([x for x in job_runs(c, long_id).values()
                                                  if x["state"] == "RUNNING"]) == 3, timeout=30)
    rc, r, err = deploy(c, "deploy", "sleep-echo@2.0.0", "-t", "role=web", "--max-concurrency", "50%")
    assert rc == 0, (r, err)
    assert all("(was 1.0.0)" in x["message"] for x in r.values()), r
    assert set(versions(c).values()) == {"2.0.0"}, versions(c)
    v2_so = "plugins/sleep-echo/2.0.0/libmuster_sleep_echo_v2.so"
    # new tasks start on v2 while the old ones still run on v1 (both loaded)
    rc, out, err = echo_job(c, "short", 1, 10, detach=False)
    assert rc == 0, err
    assert {a: x["outputParams"]["version"] for a, x in runs(out).items()} == dict.fromkeys(IDS, "2.0.0"), out
    assert all(mapped(c, a, v1_so) and mapped(c, a, v2_so) for a in IDS)
    assert all(x["state"] == "RUNNING" for x in job_runs(c, long_id).values())
    wait_until("long tasks done", lambda: all(x["state"] == "SUCCEEDED" for x in job_runs(c, long_id).values()),
               timeout=60)
    assert {a: x["outputParams"]["version"] for a, x in job_runs(c, long_id).items()} == dict.fromkeys(IDS, "1.0.0")
    wait_until("v1 unloaded", lambda: not any(mapped(c, a, v1_so) for a in IDS))
    assert all(mapped(c, a, v2_so) for a in IDS)
    assert "unloaded sleep-echo 1.0.0" in c.agents["a1"].text()

    # a downgrade needs --allow-downgrade; rollback goes back to what ran before
    rc, r, err = deploy(c, "deploy", "sleep-echo@1.0.0", "--hosts", "a1")
    assert rc != 0 and "downgrade refused" in r["a1"]["message"], (r, err)
    rc, r, err = deploy(c, "rollback", "sleep-echo", "-t", "role=web")
    assert rc == 0 and all("rolled back: sleep-echo 1.0.0 is active (was 2.0.0)" in x["message"]
                           for x in r.values()), (r, err)
    wait_until("agents report 1.0.0 again", lambda: set(versions(c).values()) == {"1.0.0"})
    rc, out, err = echo_job(c, "after-rollback", 1, 10, detach=False)
    assert rc == 0 and all(x["outputParams"]["version"] == "1.0.0" for x in runs(out).values()), out

    # a deployed version cannot be removed; one no agent runs can
    rc, _, err = sh(c, "plugin", "rm", "sleep-echo@1.0.0", check=False)
    assert rc == 2 and "deployed on 3 agents" in err, err
    rc, _, err = sh(c, "plugin", "rm", "sleep-echo@2.0.0", check=False)
    assert rc == 0, err

    # the deployed version survives an agent restart
    assert c.agents["a1"].stop() == 0
    start_agent(c, "a1", os.path.join(c.workdir, "agent.yaml"))
    wait_until("a1 back", lambda: c.states().get("a1") == "AGENT_CONNECTED", timeout=30)
    assert versions(c)["a1"] == "1.0.0", versions(c)
    assert "deployed sleep-echo 1.0.0 loaded again" in c.agents["a1"].text()
    c.etcd.stop()


def test_max_errors_and_bad_input(c):
    cluster(c, tool_on=("a3",))  # a1 and a2 lack muster-it-tool
    pack_push(c, plugin_dir(c, "v1", V1_SO, "1.0.0"))
    rc, r, err = deploy(c, "deploy", "sleep-echo@1.0.0", "--all")
    assert rc == 0, (r, err)
    pack_push(c, plugin_dir(c, "v2", V2_SO, "2.0.0", requires="muster-it-tool"))
    rc, r, err = deploy(c, "deploy", "sleep-echo@2.0.0", "--all", "--max-concurrency", "1", "--max-errors", "1")
    assert rc != 0, (r, err)
    failed = {a for a, x in r.items() if "requires binary 'muster-it-tool', not found in PATH" in x["message"]}
    skipped = {a for a, x in r.items() if "max errors reached" in x["message"]}
    assert failed == {"a1", "a2"} and skipped == {"a3"}, r
    assert set(versions(c).values()) == {"1.0.0"}, versions(c)  # everyone kept v1

    # a task pinned to a range runs where it matches; a range nobody has is refused
    rc, r, err = deploy(c, "deploy", "sleep-echo@2.0.0", "--hosts", "a3")
    assert rc == 0, (r, err)
    wait_until("a3 on 2.0.0", lambda: versions(c)["a3"] == "2.0.0")
    rc, out, err = echo_job(c, "pinned", 1, 10, detach=False, pin=">=2 <3")
    assert rc == 0 and set(runs(out)) == {"a3"}, (out, err)
    rc, out, err = echo_job(c, "pinned-none", 1, 10, detach=False, pin=">=3")
    assert rc == 2 and "plugin_version '>=3': no targeted agent has a matching version of sleep-echo" in err, err
    assert "a1: 1.0.0" in err and "a3: 2.0.0" in err, err

    # an untrusted key is refused at push
    rc, out, err = pack(c, plugin_dir(c, "evil", V2_SO, "2.0.0", type_="sleep-echo"), "mallory")
    assert rc == 0, err
    rc, _, err = sh(c, "plugin", "push", out, check=False)
    assert rc != 0 and "not in the trust set" in err, err
    # pack refuses a .so that disagrees with plugin.yaml
    rc, _, err = pack(c, plugin_dir(c, "other", V2_SO, "2.0.0", type_="other-echo"))
    assert rc == 2 and 'descriptor says type "sleep-echo", plugin.yaml says "other-echo"' in err, err
    # ... and the agent refuses it too when packed without the check
    pack_push(c, plugin_dir(c, "other", V2_SO, "2.0.0", type_="other-echo"), "--no-load-check")
    rc, r, err = deploy(c, "deploy", "other-echo@2.0.0", "--hosts", "a1")
    assert rc != 0 and 'descriptor says type "sleep-echo", plugin.yaml says "other-echo"' in r["a1"]["message"], r
    pack_push(c, plugin_dir(c, "abi", V2_SO, "2.0.1", type_="abi-echo", abi=2), "--no-load-check")
    rc, r, err = deploy(c, "deploy", "abi-echo@2.0.1", "--hosts", "a1")
    assert rc != 0 and "built for ABI version 2, this agent speaks 1" in r["a1"]["message"], r
    pack_push(c, plugin_dir(c, "arch", V2_SO, "2.0.2", type_="arch-echo", arch="aarch64"), "--no-load-check")
    rc, r, err = deploy(c, "deploy", "arch-echo@2.0.2", "--hosts", "a1")
    assert rc != 0 and "is for arch aarch64, this host is x86_64" in r["a1"]["message"], r
    assert versions(c)["a1"] == "1.0.0"
    c.etcd.stop()


if __name__ == "__main__":
    main([test_deploy_hot_upgrade_and_rollback, test_max_errors_and_bad_input])
