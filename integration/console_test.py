"""End-to-end: the web console (docs/console.md) in a real headless Chromium.

The operator's story: musterd runs with --web-listen over HTTPS (its own server certificate,
the harness's throwaway CA, mTLS for agents as always). An admin makes a viewer token. In the
browser, a wrong token is refused on the login page; the viewer's token logs in; the fleet
page lists the three agents with their labels and a selector narrows it; a job of a few
sleeps on every agent shows up in the jobs list, and its page draws a per-host timeline that
moves on while the job runs (read twice) and ends with every bar succeeded; the log tail shows
a task's output; an unknown job gives the 404 page. Screenshots of each page are kept in
$TEST_UNDECLARED_OUTPUTS_DIR.

The JSON endpoints are checked directly too (urllib over the CA): no credentials or a wrong
token 401, a viewer token 200, an admin certificate without a token 200, an agent
certificate 403, unknown job 404 JSON, the page's 404 status, a POST 405, the live events
stream in order, 90 requests from 16 threads at once, and a revoked token refused at once.

With a real etcd and two members, the follower's console answers from its watched copy."""
import json
import os
import ssl
import time
import urllib.error
import urllib.request

from browser import Browser, available
from ha_test import HA
from harness import free_port, main, wait_until

HEARTBEAT = ["--heartbeat-interval", "300ms"]
OUT = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or os.environ.get("TEST_TMPDIR", "/tmp")


def start(c):
    """musterd with the console, three agents; returns the console's base URL."""
    web = free_port()
    c.start_musterd("--heartbeat-timeout", "2s", "--web-listen", "127.0.0.1:%d" % web)
    c.members["musterd"] = (c.musterd, c.addr)  # HA's stop_all and procs see it
    c.start_agent("web-1", "role=web,dc=eu", *HEARTBEAT)
    c.start_agent("web-2", "role=web,dc=us", *HEARTBEAT)
    c.start_agent("db-1", "role=db,dc=eu", *HEARTBEAT)
    wait_until("three connected agents",
               lambda: list(c.states().values()).count("AGENT_CONNECTED") == 3)
    return "https://127.0.0.1:%d" % web


def viewer_token(c):
    _, out, _ = c.cli("token", "create", "dash", "--role", "viewer")
    token = out.strip()
    assert token.startswith("mst_"), out
    return token


def http(c, url, token=None, cert=None, method="GET"):
    """(status, parsed JSON or text) of a request to the console, trusting the test CA."""
    ctx = ssl.create_default_context(cafile=c.pki.ca)
    if cert:
        ctx.load_cert_chain(*cert)
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    text = body.decode("utf-8", "replace")
    return status, json.loads(text) if ctype.startswith("application/json") else text


def submit_sleeps(c, seconds=1.5, tasks=3):
    path = os.path.join(c.workdir, "sleeps.yaml")
    with open(path, "w") as f:
        f.write("name: sleeps\ntarget: {all: true}\ntasks:\n")
        for i in range(tasks):
            f.write("  - name: step%d\n    shell: {script: \"echo step%d on $(hostname); "
                    "sleep %s; echo step%d done\"}\n" % (i + 1, i + 1, seconds, i + 1))
    c.cli("submit", "--detach", path)
    _, out, _ = c.cli("-o", "json", "jobs")
    return json.loads(out.splitlines()[0])["jobId"]


def shot(b, name):
    b.screenshot(os.path.join(OUT, "console-%s.png" % name))


def test_browser_story(c):
    why = available()
    if why:
        raise AssertionError("cannot run the browser test: " + why)
    base = start(c)
    token = viewer_token(c)
    with Browser(c.workdir) as b:
        # not logged in: every page sends you to the login page
        b.get(base + "/")
        b.wait_js("the login page", "return document.querySelector('#login-form') !== null")
        # a wrong token is refused and nothing is kept
        b.type("#token", "mst_aaaaaaaaaaaa_" + "A" * 43)
        b.click("#login-submit")
        err = b.wait_js("the refusal", "const t = document.querySelector('#login-error')"
                        ".textContent; return t.includes('refused') ? t : null")
        assert "unknown token" in err, err
        assert b.js("return sessionStorage.getItem('muster.token')") is None
        assert b.url().endswith("/login?next=%2F"), b.url()
        shot(b, "login-refused")
        # the viewer's token logs in and lands on the fleet page
        b.js("document.querySelector('#token').value = ''")
        b.type("#token", token)
        b.click("#login-submit")
        rows = b.wait_js("three agents on the fleet page",
                         "const r = [...document.querySelectorAll('#agents-body tr')]"
                         ".map(t => t.dataset.agent); return r.length === 3 ? r : null")
        assert sorted(rows) == ["db-1", "web-1", "web-2"], rows
        assert "token dash (viewer)" in b.js("return document.querySelector('#who').textContent")
        labels = b.js("return document.querySelector('tr[data-agent=\"web-2\"]').textContent")
        assert "role=web" in labels and "dc=us" in labels, labels
        assert b.js("return document.querySelector('#count-connected .n').textContent") == "3"
        shot(b, "fleet")
        # a selector narrows the fleet
        b.type("#selector", "role=web")
        b.click("#selector-form button")
        rows = b.wait_js("the web agents only",
                         "const r = [...document.querySelectorAll('#agents-body tr')]"
                         ".map(t => t.dataset.agent); return r.length === 2 ? r : null")
        assert sorted(rows) == ["web-1", "web-2"], rows
        assert "selector=role%3Dweb" in b.url(), b.url()
        # a job of three sleeps on every agent: the jobs list shows it running
        job = submit_sleeps(c)
        b.get(base + "/jobs")
        state = b.wait_js("the job in the list", "const r = document.querySelector("
                          "'tr[data-job=\"%s\"]'); return r && r.dataset.state" % job)
        assert state in ("running", "pending"), state
        shot(b, "jobs-running")
        # its page: a timeline bar per started task run, moving on live
        b.click('tr[data-job="%s"] a' % job)
        read = ("return [...document.querySelectorAll('#timeline rect.run')].map("
                "r => r.dataset.host + '/' + r.dataset.task + '=' + r.dataset.state).sort()")
        first = b.wait_js("bars on the timeline", read + ".join(' ') || null")
        assert "running" in first, first
        assert b.js("return document.querySelector('#live').textContent").strip() == "● live"
        shot(b, "job-running")
        second = b.wait_js("the timeline to move on",
                           "const s = " + read.replace("return ", "") + ".join(' ');"
                           "return s !== %s ? s : null" % json.dumps(first), timeout=30)
        assert second.count("succeeded") > first.count("succeeded"), (first, second)
        # the end: every host's three bars succeeded, the job's state too (no reload)
        final = b.wait_js("the job to succeed",
                          "const e = document.querySelector('#job-state');"
                          "return e && e.dataset.state === 'succeeded' ? e.dataset.state : null",
                          timeout=40)
        assert final == "succeeded"
        bars = b.wait_js("nine succeeded bars",
                         "const r = " + read.replace("return ", "") + ";"
                         "return r.length === 9 && r.every(x => x.endsWith('=succeeded')) ? r : null")
        assert len(bars) == 9, bars
        assert b.js("return document.querySelector('#job-count-succeeded .n').textContent") == "3"
        # the log tail of a host's task
        b.js("const s = document.querySelector('#log-host'); s.value = 'web-2';"
             "s.dispatchEvent(new Event('change'))")
        log = b.wait_js("web-2's output", "const t = document.querySelector('#log').textContent;"
                        "return t.includes('step1 done') ? t : null")
        assert "step1 on" in log, log
        shot(b, "job-done")
        # an unknown job: the 404 page, without leaving the console
        b.get(base + "/jobs/j-does-not-exist")
        msg = b.wait_js("the 404 page", "const e = document.querySelector('#not-found-message');"
                        "return e && e.textContent")
        assert "j-does-not-exist" in msg, msg
        shot(b, "job-404")
        b.get(base + "/no/such/page")
        b.wait_js("the 404 page for a bad path", "return document.querySelector('#not-found')")
        # log out: the token is gone from the tab
        b.get(base + "/jobs")
        b.wait_js("the jobs page", "return document.querySelector('#jobs-table')")
        b.click("#logout")
        b.wait_js("the login page", "return document.querySelector('#login-form')")
        assert b.js("return sessionStorage.getItem('muster.token')") is None


def test_schedules_page(c):
    """GET /api/v1/schedules (viewer) lists the schedules with their next fire times and
    last outcome; the Schedules page shows them in a real Chromium."""
    why = available()
    if why:
        raise AssertionError("cannot run the browser test: " + why)
    base = start(c)
    token = viewer_token(c)
    path = os.path.join(c.workdir, "nightly.yaml")
    with open(path, "w") as f:
        f.write("name: nightly\ntarget: {all: true}\ntasks:\n"
                "  - name: hello\n    shell: {script: \"echo hi\"}\n")
    c.cli("schedule", "create", "nightly", "--cron", "30 2 * * *", "--tz", "Europe/Paris", path)
    c.cli("schedule", "create", "quiet", "--cron", "0 0 1 1 *", "--paused", path)
    _, out, _ = c.cli("schedule", "trigger", "nightly")
    job = out.strip()
    st, body = http(c, base + "/api/v1/schedules")
    assert st == 401, (st, body)
    st, body = http(c, base + "/api/v1/schedules", token=token)
    assert st == 200, (st, body)
    by = {s["name"]: s for s in body["schedules"]}
    assert set(by) == {"nightly", "quiet"}, body
    n = by["nightly"]
    assert n["cron"] == "30 2 * * *" and n["tz"] == "Europe/Paris" and not n["paused"], n
    assert len(n["next_fire_s"]) == 3 and n["next_fire_s"][0] > time.time(), n
    assert n["last"]["job_id"] == job and n["last"]["manual"], n
    assert by["quiet"]["paused"] and by["quiet"]["next_fire_s"] == [], by["quiet"]
    with Browser(c.workdir) as b:
        b.get(base + "/login?next=%2Fschedules")
        b.wait_js("the login page", "return document.querySelector('#login-form') !== null")
        b.type("#token", token)
        b.click("#login-submit")
        b.wait_js("the schedules page", "return document.querySelector('#schedules-table')")
        row = b.wait_js("nightly in the list", "const r = document.querySelector("
                        "'tr[data-schedule=\"nightly\"]'); return r && r.textContent")
        assert "30 2 * * *" in row and "Europe/Paris" in row and "active" in row, row
        assert job in row and "(manual)" in row, row
        nxt = b.js("return document.querySelector('tr[data-schedule=\"nightly\"] .next')"
                   ".textContent")
        assert nxt.count("UTC") == 3, nxt
        quiet = b.js("return document.querySelector('tr[data-schedule=\"quiet\"]').textContent")
        assert "paused" in quiet and "never fired" in quiet, quiet
        shot(b, "schedules")
        b.click('tr[data-schedule="nightly"] a')
        b.wait_js("the job page", "return location.pathname === '/jobs/%s'" % job)


def test_endpoints_and_auth(c):
    base = start(c)
    token = viewer_token(c)
    api = base + "/api/v1"
    # credentials: none, malformed, wrong -> 401; viewer token, admin cert -> 200
    st, body = http(c, api + "/agents")
    assert st == 401 and "needs a client certificate or a token" in body["error"], (st, body)
    st, body = http(c, api + "/agents", token="not a token")
    assert st == 401, (st, body)
    st, body = http(c, api + "/agents", token="mst_aaaaaaaaaaaa_" + "A" * 43)
    assert st == 401 and "unknown token" in body["error"], (st, body)
    st, body = http(c, api + "/agents", token=token)
    assert st == 200 and body["counts"]["connected"] == 3, (st, body)
    assert {a["id"]: a["labels"]["role"] for a in body["agents"]} == {
        "web-1": "web", "web-2": "web", "db-1": "db"}, body
    admin = c.pki.issue("admin", "ops", role="admin")
    st, body = http(c, api + "/whoami", cert=admin)
    assert st == 200 and body["caller"] == "admin cert ops (admin)", (st, body)
    st, body = http(c, api + "/whoami", cert=c.pki.issue("agent", "web-9"))
    assert st == 403 and "agent web-9" in body["error"], (st, body)
    # selector, paging
    st, body = http(c, api + "/agents?selector=dc%3Deu", token=token)
    assert st == 200 and sorted(a["id"] for a in body["agents"]) == ["db-1", "web-1"], body
    st, body = http(c, api + "/agents?selector=role%3D%3D", token=token)
    assert st == 400 and "selector" in body["error"], (st, body)
    st, body = http(c, api + "/agents?limit=2", token=token)
    assert [a["id"] for a in body["agents"]] == ["db-1", "web-1"] and body["next"] == "web-1", body
    st, body = http(c, api + "/agents?limit=2&after=web-1", token=token)
    assert [a["id"] for a in body["agents"]] == ["web-2"] and body["next"] is None, body
    # a job: its runs, its live events in order, its log tail
    job = submit_sleeps(c, seconds=0.5, tasks=2)
    ctx = ssl.create_default_context(cafile=c.pki.ca)
    req = urllib.request.Request(api + "/jobs/%s/events" % job,
                                 headers={"Authorization": "Bearer " + token})
    events = []
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        name = None
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "end":
                    break
    names = [n for n, _ in events]
    assert names[-2:] == ["job", "end"] and events[-2][1]["state"] == "succeeded", names
    done = [(e["host"], e["task"]) for n, e in events if n == "task" and e["state"] == "succeeded"]
    assert sorted(done) == sorted((h, t) for h in ("db-1", "web-1", "web-2")
                                  for t in ("step1", "step2")), done
    outs = [e for n, e in events if n == "output" and e["host"] == "web-1" and e["task"] == "step2"]
    assert "".join(o["data"] for o in outs).endswith("step2 done\n"), outs
    # history=0: live events only; the job is over, so just the end
    st, body = http(c, api + "/jobs/%s/events?history=0" % job, token=token)
    assert st == 200 and body.startswith("event: end\n"), (st, body)
    st, body = http(c, api + "/jobs/%s/events?history=2" % job, token=token)
    assert st == 400, (st, body)
    st, body = http(c, api + "/jobs/" + job, token=token)
    assert st == 200 and body["state"] == "succeeded" and body["succeeded"] == 3, body
    assert body["runs_total"] == 6 and len(body["runs"]) == 6, body
    run = body["runs"][0]
    for k in ("host", "task", "state", "attempt", "exit_code", "started_at_ms", "finished_at_ms",
              "message"):
        assert k in run, run
    assert run["attempt"] == 1 and run["exit_code"] == 0 and run["finished_at_ms"] >= run["started_at_ms"] > 0
    st, body = http(c, api + "/jobs/%s?offset=4&limit=1" % job, token=token)
    assert len(body["runs"]) == 1 and body["next_offset"] == 5, body
    st, body = http(c, api + "/jobs/%s/logs/web-2/step1?tail=11" % job, token=token)
    assert st == 200 and body["data"] == "step1 done\n" and body["truncated"], body
    st, body = http(c, api + "/jobs/%s/logs/web-2/nope" % job, token=token)
    assert st == 404, (st, body)
    st, body = http(c, api + "/jobs?state=succeeded", token=token)
    assert [j["id"] for j in body["jobs"]] == [job], body
    st, body = http(c, api + "/jobs?state=running", token=token)
    assert body["jobs"] == [], body
    st, body = http(c, api + "/jobs?state=bogus", token=token)
    assert st == 400, (st, body)
    # unknown: JSON 404 for the API, the 404 page (status 404) for a bad path
    st, body = http(c, api + "/jobs/j-nope", token=token)
    assert st == 404 and body["error"] == "no job 'j-nope'", (st, body)
    st, body = http(c, api + "/jobs/j-nope/events", token=token)
    assert st == 404, (st, body)
    st, body = http(c, base + "/no/such/page")
    assert st == 404 and "/static/app.js" in body, st
    st, body = http(c, base + "/static/app.js")
    assert st == 200 and "sessionStorage" in body, st
    # read-only: nothing but GET
    st, body = http(c, api + "/jobs", token=token, method="POST")
    assert st == 405, (st, body)
    # the loop answers many browsers at once (a thread per connection waits, the loop doesn't)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: http(c, api + ("/agents", "/jobs", "/jobs/" + job)[i % 3],
                                            token=token)[0], range(90)))
    assert codes == [200] * 90, codes
    # a revoked token stops working at once, as on the admin API
    c.cli("token", "revoke", "dash")
    st, body = http(c, api + "/whoami", token=token)
    assert st == 401 and "revoked" in body["error"], (st, body)
    # the denials are logged by musterd as the admin API's are
    wait_until("the denial in musterd's log", lambda: "denied console GET" in c.musterd.text())


def test_follower_serves_the_console(c):
    """Two members on a real etcd, each with a console: the follower's console answers from
    its watched copy (agents, jobs, a job's runs), authenticates a token made on the leader,
    and says it is not leading."""
    c.start_etcd()
    webs = {}
    for name in ("cp-a", "cp-b"):
        webs[name] = free_port()
        c.start_member(name, "--web-listen", "127.0.0.1:%d" % webs[name])
    leader = wait_until("one leader", c.leader, timeout=10)
    follower = [n for n in c.members if n != leader[0]][0]
    c.addr = leader[1]  # agents and the CLI talk to the leader
    c.start_agent("web-1", "role=web", *HEARTBEAT)
    c.start_agent("web-2", "role=web", *HEARTBEAT)
    token = viewer_token(c)
    api = "https://127.0.0.1:%d/api/v1" % webs[follower]
    st, body = wait_until("the token on the follower",
                          lambda: (lambda r: r if r[0] == 200 else None)(
                              http(c, api + "/whoami", token=token)), timeout=5)
    assert body["leading"] is False and body["member"] == follower, body
    wait_until("both agents on the follower's console", lambda: http(
        c, api + "/agents", token=token)[1].get("counts", {}).get("connected") == 2, timeout=10)
    job = submit_sleeps(c, seconds=0.2, tasks=2)
    def done():
        st, body = http(c, api + "/jobs/" + job, token=token)
        return st == 200 and body["state"] == "succeeded" and body
    body = wait_until("the job done on the follower's console", done, timeout=30)
    assert sorted((r["host"], r["task"], r["state"]) for r in body["runs"]) == [
        (h, t, "succeeded") for h in ("web-1", "web-2") for t in ("step1", "step2")], body
    st, body = http(c, api + "/jobs/j-nope", token=token)
    assert st == 404, (st, body)


if __name__ == "__main__":
    main([test_browser_story, test_schedules_page, test_endpoints_and_auth, test_follower_serves_the_console],
         lambda *bins: HA(*bins))
