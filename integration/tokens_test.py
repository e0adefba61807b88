"""End-to-end: admin bearer tokens and roles (docs/security.md, "Tokens and roles").

The operator's story: an admin makes a viewer, a scoped operator and an admin token. The
viewer can look but not run; the operator runs on its web hosts and its task types only, and
is told which hosts are outside its scope; a revoked, an expired or a garbage token is
refused; the secret is printed once by `token create` and appears nowhere else, not in
`token ls` and not in the control plane's log. With etcd, a token made on the leader works on
the follower, its revocation reaches the follower at once, a full table gives up its oldest
dead token on every member, and tokens survive a restart.

Everything runs over mTLS: the CLI presents the harness's admin certificate, and a call that
also carries a token is authenticated as the token.
"""
import json
import os
import subprocess

from ha_test import HA
from harness import main, wait_until

HEARTBEAT = ["--heartbeat-timeout", "2s"]


def start_single(c):
    """musterd without etcd plus two agents, web-1 (role=web) and db-1 (role=db)."""
    c.start_musterd(*HEARTBEAT)
    c.members["musterd"] = (c.musterd, c.addr)  # HA's stop_all and procs see it
    c.start_agent("web-1", "role=web", "--heartbeat-interval", "300ms")
    c.start_agent("db-1", "role=db", "--heartbeat-interval", "300ms")
    wait_until("two connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 2)


def create(c, name, *args, addr=None):
    """`muster token create`: the token alone on stdout, the notes on stderr."""
    rc, out, err = c.cli_at(addr or c.addr, "token", "create", name, *args)
    token = out.strip()
    assert token.startswith("mst_") and len(token) == 60 and "\n" not in token, out
    assert "only time the token is shown" in err and "MUSTER_TOKEN=" in err, err
    assert "authorization: Bearer" in err, err
    return token


def as_token(c, token, *args, addr=None):
    return c.cli_at(addr or c.addr, "--token", token, *args, check=False)


def refused(result, *words):
    rc, out, err = result
    assert rc != 0, "expected a refusal, got rc 0: %s" % out
    for w in words:
        assert w in err, "%r not in %r" % (w, err)
    return err


def secrets_of(tokens):
    return [t[17:] for t in tokens]


def test_roles_scope_and_types(c):
    start_single(c)
    viewer = create(c, "dash", "--role", "viewer")
    web_ops = create(c, "web-ops", "--role", "operator", "--scope", "role=web", "--ttl", "12h")
    http_only = create(c, "pinger", "--role", "operator", "--types", "http")
    admin = create(c, "root", "--role", "admin")

    # a viewer reads (MUSTER_TOKEN works as well as --token) but runs nothing
    env = dict(os.environ, MUSTER_TOKEN=viewer)
    r = subprocess.run([c.cli_bin, "--addr", c.addr, "agents"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "web-1" in r.stdout, (r.stdout, r.stderr)
    refused(as_token(c, viewer, "run", "--all", "--", "echo no"),
            "PERMISSION_DENIED", "token dash (viewer)", "operator role")
    refused(as_token(c, viewer, "token", "ls"), "PERMISSION_DENIED", "admin role")

    # an operator scoped to role=web runs there, and nowhere else
    rc, out, err = as_token(c, web_ops, "run", "-t", "role=web", "--", "echo scoped-ok")
    assert rc == 0 and "scoped-ok" in out, (out, err)
    for target in (["-t", "role=db"], ["--all"], ["--hosts", "web-1,db-1"]):
        e = refused(as_token(c, web_ops, "run", *target, "--", "echo no"),
                    "PERMISSION_DENIED", "token web-ops (operator)", "role=web", "db-1")
        assert "web-1" not in e.split("outside it:")[-1], e
    refused(as_token(c, web_ops, "drain", "db-1"), "db-1")
    refused(as_token(c, web_ops, "token", "create", "x", "--role", "admin"), "admin role")

    # an operator limited to http may not run a shell task
    refused(as_token(c, http_only, "run", "-t", "role=web", "--", "echo no"),
            "PERMISSION_DENIED", "task type 'shell'")

    # an admin token manages tokens; bad requests are refused naming the field
    rc, out, _ = as_token(c, admin, "token", "ls")
    assert rc == 0 and "web-ops" in out and "role=web" in out, out
    for args, word in ((["--role", "king"], "role 'king'"),
                       (["--role", "viewer", "--scope", "role=web"], "only operator tokens"),
                       (["--role", "operator", "--scope", "=x"], "scope"),
                       (["--role", "operator", "--ttl", "0s"], "ttl '0s'")):
        rc, _, err = as_token(c, admin, "token", "create", "bad", *args)
        assert rc == 2 and "INVALID_ARGUMENT" in err and word in err, (args, rc, err)
    rc, _, err = as_token(c, admin, "token", "create", "dash", "--role", "viewer")
    assert rc == 1 and "ALREADY_EXISTS" in err and "dash" in err, err

    # the secrets were printed once and are nowhere else
    rc, table, _ = c.cli("token", "ls")
    rc, js, _ = c.cli("-o", "json", "token", "ls")
    rows = [json.loads(line) for line in js.splitlines() if line]
    assert {r["name"] for r in rows} == {"dash", "web-ops", "pinger", "root"}, rows
    web = [r for r in rows if r["name"] == "web-ops"][0]
    assert web["role"] == "operator" and web["scope"] == "role=web" and web["state"] == "active"
    assert int(web["expiresAtMs"]) - int(web["createdAtMs"]) == 12 * 3600 * 1000, web
    assert all("hash" not in r for r in rows), rows
    log = c.musterd.text()
    for s in secrets_of([viewer, web_ops, http_only, admin]):
        assert s not in table and s not in js and s not in log, "a secret leaked"


def test_revoked_expired_and_garbage_are_refused(c):
    start_single(c)
    ci = create(c, "ci", "--role", "viewer")
    other = create(c, "other", "--role", "operator")
    short = create(c, "short", "--role", "viewer", "--ttl", "1s")
    assert as_token(c, ci, "agents")[0] == 0

    # revoked by name, then by id: refused at once, the message names the token
    rc, out, _ = c.cli("token", "revoke", "ci")
    assert "revoked token ci" in out, out
    refused(as_token(c, ci, "agents"), "UNAUTHENTICATED", "token ci was revoked")
    other_id = other[4:16]
    c.cli("token", "revoke", other_id)
    refused(as_token(c, other, "agents"), "token other was revoked")
    rc, out, _ = c.cli("token", "revoke", "ci")
    assert rc == 0 and "already revoked" in out, out
    rc, _, err = c.cli("token", "revoke", "nobody", check=False)
    assert rc == 1 and "NOT_FOUND" in err, err
    # a revoked name may be used again; the old record stays listed as revoked
    again = create(c, "ci", "--role", "viewer")
    assert as_token(c, again, "agents")[0] == 0

    # a 1s TTL expires
    wait_until("the 1s token to expire",
               lambda: "token short expired" in as_token(c, short, "agents")[2], timeout=5)

    # garbage, a well-formed unknown token, and a known id with a wrong secret
    refused(as_token(c, "garbage", "agents"), "UNAUTHENTICATED", "malformed token")
    refused(as_token(c, "mst_" + "a" * 12 + "_" + "b" * 43, "agents"), "unknown token")
    refused(as_token(c, again[:17] + "c" * 43, "agents"), "unknown token")

    rows = [json.loads(line) for line in c.cli("-o", "json", "token", "ls")[1].splitlines()]
    states = sorted((r["name"], r["state"]) for r in rows)
    assert states == [("ci", "active"), ("ci", "revoked"), ("other", "revoked"),
                      ("short", "expired")], states
    log = c.musterd.text()
    for s in secrets_of([ci, other, short, again]):
        assert s not in log, "a secret leaked into the log"


def test_tokens_with_etcd_reach_every_member_and_survive_a_restart(c):
    c.start_etcd()
    c.start_member("cp-a", "--max-tokens", "4")
    c.start_member("cp-b", "--max-tokens", "4")
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [addr for n, (_, addr) in c.members.items() if n != leader[0]][0]

    # made through the follower (redirected to the leader), usable on both
    keep = create(c, "keeper", "--role", "viewer", addr=follower)
    gone = create(c, "goner", "--role", "admin", addr=leader[1])
    old = create(c, "old", "--role", "viewer", addr=leader[1])
    for addr in (leader[1], follower):
        wait_until("the tokens on " + addr,
                   lambda: as_token(c, keep, "agents", addr=addr)[0] == 0 and
                   as_token(c, gone, "token", "ls", addr=addr)[0] == 0, timeout=5)

    # revoked on the leader: refused on the follower at once
    c.cli_at(leader[1], "token", "revoke", "old")
    c.cli_at(leader[1], "token", "revoke", "goner")
    wait_until("the follower to refuse the revoked token",
               lambda: "was revoked" in as_token(c, gone, "agents", addr=follower)[2], timeout=2)

    # a full table (max_tokens 4) gives up the token dead the longest, on every member
    create(c, "new", "--role", "viewer", addr=leader[1])
    newer = create(c, "newer", "--role", "viewer", addr=leader[1])
    wait_until("the follower to take the newest token past max_tokens",
               lambda: as_token(c, newer, "agents", addr=follower)[0] == 0, timeout=2)
    refused(as_token(c, old, "agents", addr=follower), "unknown token")

    # both members restart: the tokens come back from etcd
    for name in list(c.members):
        p, _ = c.members.pop(name)
        assert p.stop() == 0, p.text()[-3000:]
    addr = c.start_member("cp-a", "--max-tokens", "4")
    wait_until("cp-a leads", lambda: c.leader() is not None, timeout=10)
    wait_until("the kept token to work after the restart",
               lambda: as_token(c, keep, "agents", addr=addr)[0] == 0, timeout=5)
    refused(as_token(c, gone, "agents", addr=addr), "token goner was revoked")
    rows = [json.loads(l) for l in c.cli_at(addr, "-o", "json", "token", "ls")[1].splitlines()]
    assert sorted((r["name"], r["state"]) for r in rows) == [
        ("goner", "revoked"), ("keeper", "active"), ("new", "active"), ("newer", "active")], rows
    logs = "".join(open(os.path.join(c.workdir, n + ".log"), errors="replace").read()
                   for n in ("cp-a", "cp-b"))
    for s in secrets_of([keep, gone, old, newer]):
        assert s not in logs, "a secret leaked into a log"
    assert "skipped" not in logs, "a token record was skipped"


if __name__ == "__main__":
    main([test_roles_scope_and_types,
          test_revoked_expired_and_garbage_are_refused,
          test_tokens_with_etcd_reach_every_member_and_survive_a_restart], HA)
