"""End-to-end audit trail: what an operator reads in `muster audit`.

The operator's story: someone runs a job, cancels another and drains an agent; `muster audit`
names each action, who did it, on what, and how it ended (a second cancel is refused, and says
so), newest first, with every task start reported by the agent that ran it and a sha256 of
what ran. `--action job.`, `--who` and `--since` narrow the list. A flood of calls the gate
refuses leaves a bounded number of records and one summary of the rest. Without etcd the
trail is a bounded ring in memory; with etcd it survives a restart of the control plane, any
member can list it, and the oldest records go once audit_max_records is passed.

Everything runs over mTLS: the CLI is the harness's admin certificate "test-admin".
"""
import hashlib
import json
import time

import grpc

from harness import job_status, wait_until
from ha_test import HA
from harness import main as harness_main

HB = "300ms"


def audit(c, addr, *args):
    """`muster -o json audit ARGS` at addr: the records, newest first."""
    rc, out, err = c.cli_at(addr, "-o", "json", "audit", *args)
    return [json.loads(line) for line in out.splitlines() if line]


def sha256(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def job_state(c, addr, job):
    # `muster status` exits 1 for a job that did not succeed
    rc, out, _ = c.cli_at(addr, "-o", "json", "status", job, check=False)
    return job_status(out)["state"] if out.strip() else None


def operator_story(c, addr, agent="a1"):
    """Runs a job, cancels one (twice), drains the agent; checks what `muster audit` says.
    Returns the ids of the records it made, oldest first."""
    c.cli_at(addr, "run", "--all", "--", "echo audited")
    done = json.loads(c.cli_at(addr, "-o", "json", "jobs")[1].splitlines()[0])["jobId"]
    rc, out, _ = c.cli_at(addr, "run", "--detach", "--all", "--", "sleep", "27")
    sleeper = out.strip()
    wait_until("the agent to start the sleeper", lambda: any(
        r["target"].startswith(sleeper + "/") for r in audit(c, addr, "--action", "task.start")))
    c.cli_at(addr, "cancel", sleeper)
    wait_until("the sleeper cancelled", lambda: job_state(c, addr, sleeper) == "JOB_CANCELLED")
    rc, _, err = c.cli_at(addr, "cancel", sleeper, check=False)
    assert rc != 0 and "already finished" in err, err
    c.cli_at(addr, "drain", agent)

    recs = audit(c, addr, "--limit", "1000")
    ids = [r["auditId"] for r in recs]
    assert ids == sorted(ids, reverse=True), ids  # newest first
    times = [int(r["timeMs"]) for r in recs]
    assert times == sorted(times, reverse=True), times
    mine = [r for r in recs if r["action"] != "authz.denied"]
    assert [r["action"] for r in mine][:7] == [
        "agent.drain", "job.cancel", "job.cancel", "task.start", "job.submit", "task.start",
        "job.submit"], [r["action"] for r in mine]
    drain, refused, cancel, start2, submit2, start1, submit1 = mine[:7]
    # the admin calls: who (the admin certificate, with its address), on what, how it ended
    for r in (drain, refused, cancel, submit2, submit1):
        assert r["caller"]["kind"] == "admin_cert" and r["caller"]["role"] == "admin", r
        assert r["caller"]["name"] == "test-admin", r
        assert r["caller"]["address"].startswith("ipv4:127.0.0.1:"), r
        assert r["memberId"], r
    assert drain["target"] == agent and drain["outcome"] == "ok", drain
    assert submit1["target"] == done and submit1["outcome"] == "ok", submit1
    assert "name='run: echo audited'" in submit1["params"], submit1
    assert submit2["target"] == sleeper and cancel["target"] == sleeper, (submit2, cancel)
    assert cancel["outcome"] == "ok" and "cancelling=1" in cancel["params"], cancel
    assert refused["target"] == sleeper and refused["outcome"].startswith("refused: "), refused
    assert "already finished" in refused["outcome"], refused
    # the task starts, reported by the agent, with a digest of what ran
    for r, job in ((start1, done), (start2, sleeper)):
        assert r["caller"]["kind"] == "agent" and r["caller"]["name"] == agent, r
        assert r["target"] == "%s/%s/run" % (job, agent), r
        assert "job=%s attempt=1" % job in r["params"] and "type=shell" in r["params"], r
    assert "command=%s of=script" % sha256("echo audited") in start1["params"], start1
    assert "command=%s of=command" % sha256("sleep 27") in start2["params"], start2

    # filters: an action family, one action, a caller, a recent window, a limit
    jobs = audit(c, addr, "--action", "job.")
    assert [r["action"] for r in jobs] == ["job.cancel", "job.cancel", "job.submit",
                                           "job.submit"], jobs
    assert [r["auditId"] for r in audit(c, addr, "--action", "job.submit")] == \
        [submit2["auditId"], submit1["auditId"]]
    assert {r["action"] for r in audit(c, addr, "--who", agent)} == {"task.start"}
    assert len(audit(c, addr, "--limit", "2")) == 2
    time.sleep(1.2)
    c.cli_at(addr, "drain", "--undrain", agent)
    recent = audit(c, addr, "--since", "1s")
    assert [(r["action"], r["target"]) for r in recent] == [("agent.undrain", agent)], recent
    # and the table a person reads
    rc, out, _ = c.cli_at(addr, "audit", "--action", "job.cancel")
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "WHO", "ACTION", "TARGET", "OUTCOME"], out
    assert "test-admin" in lines[1] and sleeper in lines[1] and "refused: " in lines[1], out
    assert lines[2].rstrip().endswith(" ok"), out
    return [r["auditId"] for r in reversed(mine[:7])] + [recent[0]["auditId"]]


def start_single(c, *flags):
    c.start_musterd("--heartbeat-timeout", "2s", *flags)
    c.members["musterd"] = (c.musterd, c.addr)  # stopped (and checked) with HA's members
    c.musterd = None
    c.start_agent("a1", "role=web", "--heartbeat-interval", HB)
    wait_until("a1 connected", lambda: c.states().get("a1") == "AGENT_CONNECTED")


def test_trail_in_memory(c):
    start_single(c, "--audit-denials-per-second", "5")
    operator_story(c, c.addr)
    # the audit log lines are there too, one per record
    log = c.members["musterd"][0].text()
    assert "audit: peer=ipv4:127.0.0.1:" in log and "action=agent.drain target=a1" in log, log[-2000:]
    # a flood of refused calls: at most 5 a second one by one, the rest summed up
    ch = c.grpc_channel()
    flood = 40
    for _ in range(flood):
        try:
            ch.unary_unary("/muster.v1.Admin/NoSuchMethod")(b"", timeout=5)
            raise AssertionError("a method missing from the permission table was allowed")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
    ch.close()

    def denials():
        recs = audit(c, c.addr, "--action", "authz.denied", "--limit", "1000")
        one = [r for r in recs if r["target"] == "/muster.v1.Admin/NoSuchMethod"]
        summed = sum(int(r["params"].split("suppressed=")[1].split()[0])
                     for r in recs if r["target"] == "*")
        return (one, summed, recs) if len(one) + summed == flood else None
    one, summed, recs = wait_until("every denial recorded or counted", denials, timeout=10)
    assert 0 < len(one) < flood and summed > 0, recs
    assert one[0]["outcome"].startswith("denied: /muster.v1.Admin/NoSuchMethod is not in the "
                                        "permission table"), one[0]
    assert one[0]["caller"]["kind"] == "admin_cert", one[0]
    summary = [r for r in recs if r["target"] == "*"][0]
    assert "audit_denials_per_second=5" in summary["outcome"], summary
    assert summary["caller"]["kind"] == "musterd", summary


def test_memory_ring_is_bounded(c):
    start_single(c, "--audit-max-records", "10")
    for i in range(8):
        c.cli("drain", "a1")
        c.cli("drain", "--undrain", "a1")
    recs = audit(c, c.addr, "--limit", "1000")
    assert len(recs) == 10, recs
    # the newest ten of sixteen, newest first
    assert [r["action"] for r in recs] == ["agent.undrain", "agent.drain"] * 5, recs


def test_trail_in_etcd_survives_restarts_and_is_bounded(c):
    c.start_etcd()
    flags = ("--audit-max-records", "20")
    addr = c.start_member("cp-a", *flags)
    wait_until("cp-a to lead", lambda: (c.cluster_at(addr) or {}).get("leader"))
    c.start_ha_agent("a1", addr)
    wait_until("a1 on cp-a", lambda: "a1" in c.connected_at(addr))
    story = operator_story(c, addr)

    # the records are in etcd: a restarted control plane lists them all
    p, _ = c.members.pop("cp-a")
    assert p.stop() == 0, p.text()[-3000:]
    addr = c.start_member("cp-a", *flags)
    wait_until("cp-a to lead again", lambda: (c.cluster_at(addr) or {}).get("leader"), timeout=15)
    after = [r["auditId"] for r in audit(c, addr, "--limit", "1000")]
    assert all(i in after for i in story), (story, after)
    # and so does a follower, reading etcd
    other = c.start_member("cp-b", *flags)
    assert not (c.cluster_at(other) or {}).get("leader")
    assert [r["auditId"] for r in audit(c, other, "--limit", "1000")] == after

    # past the bound the leader deletes the oldest: the story's first records go
    for i in range(12):
        c.cli_at(addr, "drain", "a1")
        c.cli_at(addr, "drain", "--undrain", "a1")
    kept = wait_until("at most 20 records", lambda: (lambda ids: ids if len(ids) <= 20 else None)(
        [r["auditId"] for r in audit(c, addr, "--limit", "1000")]), timeout=15)
    assert story[0] not in kept and story[1] not in kept, (story, kept)
    assert kept == sorted(kept, reverse=True) and len(kept) >= 18, kept
    assert "deleting the" in c.members["cp-a"][0].text()


if __name__ == "__main__":
    harness_main([
        test_trail_in_memory,
        test_memory_ring_is_bounded,
        test_trail_in_etcd_survives_restarts_and_is_bounded,
    ], lambda *bins: HA(*bins))
