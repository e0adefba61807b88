"""Named queues and the HELD state end to end on a real etcd with real agents (issue 20 item 3,
docs/scheduling.md#queues).

The operator's story: musterd's config has queue `etl` (weight 3, at most 2 running) and
`adhoc` (weight 1). On an agent with 4 slots, 4 etl jobs and 3 adhoc jobs are submitted: never
more than 2 etl tasks run at once (counted by the tasks themselves), the etl jobs past the
limit say `waiting: queue 'etl' at its limit of 2 running`, and adhoc gets the other slots. A
job naming an unknown queue is refused, naming the known ones. A job held with `muster hold` is
JOB_HELD and does not run (held while it still waited on another job). `muster queue set`
stores a queue (listed by the follower); `queue ls` shows running/waiting per queue; a config
queue cannot be removed with `queue rm`. The leader is killed (kill -9): on the new leader the limit still
holds, the held job is still HELD and the stored queue still there; released, the job runs;
the stored queue removed, a job naming it is refused.

Degradation: with hold_above 50 and both slots busy with priority-10 jobs, a priority-0 job is
JOB_HELD saying why (listed by `muster jobs --state held`) and runs by itself once they end.
"""
import json
import os
import time
import urllib.request

from harness import Proc, free_port, job_status, wait_until
from ha_test import HA, main

QUEUES = "queues:\n  etl: {weight: 3, max_running: 2}\n  adhoc: {weight: 1}\n"


def start_agent(c, agent_id, control, slots):
    spool = os.path.join(c.workdir, "spool-" + agent_id)
    os.makedirs(spool, exist_ok=True)
    p = Proc("agent-" + agent_id,
             [c.agent_bin, "--control", control, "--id", agent_id, "--spool-dir", spool,
              "--plugin-dir", os.path.join(c.workdir, "plugins"), "--slots", str(slots),
              "--heartbeat-interval", "300ms"] + c.agent_tls(agent_id), c.workdir)
    c.agents[agent_id] = p
    return p


def submit(c, addr, name, script, queue=None, check=True, after=None):
    spec = {"name": name, "target": {"all": True},
            "tasks": [{"name": "t", "shell": {"script": script}}]}
    if after is not None:
        spec["after"] = after
    if queue is not None:
        spec["queue"] = queue
    path = os.path.join(c.workdir, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    rc, out, err = c.cli_at(addr, "submit", "--detach", path, check=check)
    return out.strip() if check else (rc, out, err)


def status(c, addr, job_id):
    rc, out, _ = c.cli_at(addr, "-o", "json", "status", job_id, check=False)
    return job_status(out) if '"kind":"job"' in out.replace(" ", "") else None


def ended(c, addr, job_id):
    j = status(c, addr, job_id)
    return j if j and j["state"] not in ("JOB_PENDING", "JOB_RUNNING", "JOB_HELD") else None


def running_now(path):
    """Each etl task appends how many etl tasks ran (itself included) when it started."""
    return [int(x) for x in open(path).read().split()] if os.path.exists(path) else []


def etl_script(d, log, i):
    return ("mkdir -p {d}; touch {d}/e{i}; ls {d} | wc -l >> {log}; sleep 3; rm {d}/e{i}"
            .format(d=d, log=log, i=i))


def test_queues_limit_share_and_hold_across_failover(c):
    c.start_etcd()
    conf = os.path.join(c.workdir, "musterd.yaml")
    with open(conf, "w") as f:
        f.write(QUEUES)
    mport = free_port()
    a_addr = c.start_member("cp-a", "--config", conf, "--metrics-listen", "127.0.0.1:%d" % mport)
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    b_addr = c.start_member("cp-b", "--config", conf)
    start_agent(c, "a1", a_addr + "," + b_addr, 4)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(a_addr))

    rc, out, err = submit(c, a_addr, "bad", "true", queue="web", check=False)
    assert rc == 2 and "queue: no queue 'web' (known: default, etl, adhoc)" in err, (rc, out, err)

    # a job waiting on another (PENDING) is held; it is HELD once its dependency ended
    _, first, _ = c.cli_at(a_addr, "run", "--detach", "--all", "--", "sleep 2")
    held = submit(c, a_addr, "held", "echo H >> %s" % os.path.join(c.workdir, "held"),
                  after=[first.strip()])
    c.cli_at(a_addr, "hold", held)
    wait_until("the held job HELD", lambda: status(c, a_addr, held)["state"] == "JOB_HELD",
               timeout=20)
    _, out, _ = c.cli_at(a_addr, "jobs", "--state", "held", "-q")
    assert out.split() == [held], out
    rc, out, err = c.cli_at(a_addr, "hold", held, check=False)
    assert rc != 0 and "already held" in err, (rc, err)

    d, log = os.path.join(c.workdir, "etl-running"), os.path.join(c.workdir, "etl-log")
    etl = [submit(c, a_addr, "etl%d" % i, etl_script(d, log, i), queue="etl") for i in range(4)]
    adhoc = [submit(c, a_addr, "adhoc%d" % i, "sleep 3", queue="adhoc") for i in range(3)]
    why = "waiting: queue 'etl' at its limit of 2 running"

    def limited(addr):
        sts = [status(c, addr, j) for j in etl]
        running = [s for s in sts if s and any(t.get("state") in ("ASSIGNED", "STARTING", "RUNNING")
                                                for t in s["tasks"])]
        waiting = [s for s in sts if s and any(t.get("message") == why for t in s["tasks"])]
        return (running, waiting) if len(running) == 2 and len(waiting) == 2 else None

    running, waiting = wait_until("2 etl running, 2 waiting with the reason",
                                  lambda: limited(a_addr), timeout=20)
    # the other two slots went to adhoc
    wait_until("adhoc running beside etl", lambda: sum(
        1 for j in adhoc if any(t.get("state") == "RUNNING" for t in (status(c, a_addr, j) or
                                                                     {"tasks": []})["tasks"])) == 2,
        timeout=20)
    _, out, _ = c.cli_at(a_addr, "status", waiting[0]["jobId"])
    assert why in out, out
    _, out, _ = c.cli_at(a_addr, "-o", "json", "queue", "ls")
    qs = {q["name"]: q for q in (json.loads(l) for l in out.splitlines() if l)}
    assert qs["etl"]["running"] == 2 and qs["etl"]["waiting"] == 2, qs
    assert qs["etl"]["source"] == "config" and qs["default"]["source"] == "builtin", qs
    wait_until("etl's hosts in the metrics", lambda: all(
        line in urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
        for line in ('muster_queue_hosts{queue="etl",state="running"} 2',
                     'muster_queue_hosts{queue="etl",state="waiting"} 2')), timeout=10)

    # a queue set with `muster queue set` is stored: the follower lists it
    _, out, _ = c.cli_at(a_addr, "queue", "set", "batch", "--weight", "2", "--max-running", "1")
    assert "queue batch: weight 2, at most 1 running" in out, out
    wait_until("cp-b to list batch", lambda: "batch" in c.cli_at(b_addr, "queue", "ls",
                                                                  check=False)[1])
    rc, out, err = c.cli_at(a_addr, "queue", "rm", "etl", check=False)
    assert rc == 2 and "queue 'etl' comes from musterd's config" in err, (rc, out, err)
    rc, out, err = c.cli_at(a_addr, "queue", "set", "bad name", check=False)
    assert rc == 2 and "queue name 'bad name'" in err, (rc, out, err)

    # kill -9 the leader while etl jobs wait: the limit and the hold hold on the new leader
    p, _ = c.members.pop("cp-a")
    p.kill()
    wait_until("cp-b to lead", lambda: (c.cluster_at(b_addr) or {}).get("leader"), timeout=10,
               step=0.1)
    wait_until("a1 on the new leader", lambda: "a1" in c.connected_at(b_addr), timeout=10)
    st = status(c, b_addr, held)
    assert st["state"] == "JOB_HELD", st
    _, out, _ = c.cli_at(b_addr, "queue", "ls")
    assert [l.split()[:3] for l in out.splitlines() if l.startswith("batch")] == [["batch", "2", "1"]], out
    b1 = submit(c, b_addr, "b1", "true", queue="batch")
    for j in etl:
        st = wait_until("etl job %s to end" % j, lambda j=j: ended(c, b_addr, j), timeout=60)
        assert st["state"] == "JOB_SUCCEEDED", st
    runs = running_now(log)
    assert len(runs) == 4 and max(runs) <= 2, runs
    assert not os.path.exists(os.path.join(c.workdir, "held"))
    _, out, _ = c.cli_at(b_addr, "release", held)
    assert "released" in out, out
    st = wait_until("the released job to end", lambda: ended(c, b_addr, held), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert open(os.path.join(c.workdir, "held")).read().split() == ["H"]
    st = wait_until("the batch job to end", lambda: ended(c, b_addr, b1), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    _, out, _ = c.cli_at(b_addr, "queue", "rm", "batch")
    assert "queue batch removed" in out, out
    rc, out, err = submit(c, b_addr, "b2", "true", queue="batch", check=False)
    assert rc == 2 and "no queue 'batch'" in err, (rc, out, err)
    # audited: the hold and the release of the job, the queue set and removed
    _, out, _ = c.cli_at(b_addr, "audit", "--action", "job.")
    assert any("job.hold" in l and held in l and l.rstrip().endswith("ok") for l in out.splitlines()), out
    assert any("job.release" in l and held in l for l in out.splitlines()), out
    _, out, _ = c.cli_at(b_addr, "audit", "--action", "queue.")
    acts = [l.split()[3] for l in out.splitlines()[1:] if l.strip()]
    assert "queue.set" in acts and "queue.delete" in acts, out
    for j in adhoc:
        st = wait_until("adhoc job to end", lambda j=j: ended(c, b_addr, j), timeout=30)
        assert st["state"] == "JOB_SUCCEEDED", st



def test_degradation_holds_then_resumes(c):
    """Past hold_above, a job below hold_priority_floor is JOB_HELD with the reason; when the
    busy jobs end it runs by itself."""
    c.start_etcd()
    conf = os.path.join(c.workdir, "musterd-hold.yaml")
    with open(conf, "w") as f:
        f.write("hold_above: 50\nhold_priority_floor: 5\n")
    addr = c.start_member("cp-a", "--config", conf)
    wait_until("cp-a to lead", lambda: c.leader() is not None, timeout=10)
    start_agent(c, "a1", addr, 2)
    wait_until("a1 connected", lambda: "a1" in c.connected_at(addr))
    spec = {"name": "busy", "target": {"all": True}, "priority": 10,
            "tasks": [{"name": "t", "shell": {"script": "sleep 4"}}]}
    busy = []
    for i in range(2):
        path = os.path.join(c.workdir, "busy%d.json" % i)
        with open(path, "w") as f:
            json.dump(dict(spec, name="busy%d" % i), f)
        busy.append(c.cli_at(addr, "submit", "--detach", path)[1].strip())
    wait_until("both slots busy", lambda: all(
        any(t.get("state") == "RUNNING" for t in status(c, addr, j)["tasks"]) for j in busy), timeout=20)
    marks = os.path.join(c.workdir, "low")
    low = submit(c, addr, "low", "echo L >> %s" % marks)
    st = wait_until("the low job HELD", lambda: (lambda j: j if j["state"] == "JOB_HELD" else None)(
        status(c, addr, low)), timeout=10)
    assert "held: the fleet is 100% busy (hold_above 50%)" in st["tasks"][0].get("message", ""), st
    _, out, _ = c.cli_at(addr, "jobs", "--state", "held", "-q")
    assert out.split() == [low], out
    st = wait_until("the low job to end", lambda: ended(c, addr, low), timeout=30)
    assert st["state"] == "JOB_SUCCEEDED", st
    assert open(marks).read().split() == ["L"]


if __name__ == "__main__":
    main([test_queues_limit_share_and_hold_across_failover, test_degradation_holds_then_resumes])
