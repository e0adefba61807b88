// The Muster console: one page, five views (fleet, jobs, job, schedules, login) and a 404, talking only
// to musterd's /api/v1 endpoints. The bearer token lives in sessionStorage (gone when the tab
// closes) and travels as an Authorization header; no cookies. Text from the server is only
// ever set with textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "muster.token";
const SVG = "http://www.w3.org/2000/svg";
let timers = [];       // refresh timers of the current view
let aborters = [];     // live event streams of the current view

function h(tag, attrs, ...kids) {
  const el = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// fetch with the token; 401 sends the user to the login page (unless asked not to).
async function api(path, opts) {
  opts = opts || {};
  const headers = {};
  if (token()) headers.Authorization = "Bearer " + token();
  let resp;
  try {
    resp = await fetch(path, {headers, cache: "no-store", signal: opts.signal});
  } catch (e) {
    return {status: 0, body: {error: "musterd unreachable: " + e.message}};
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { body = {error: "bad answer"}; }
  if (resp.status === 401 && !opts.noRedirect) {
    goLogin(body && body.error);
    throw new Error("unauthenticated");
  }
  return {status: resp.status, body};
}

function goLogin(why) {
  const next = location.pathname + location.search;
  sessionStorage.setItem("muster.login_reason", why || "");
  navigate("/login?next=" + encodeURIComponent(next === "/login" ? "/" : next), true);
}

function stopView() {
  timers.forEach(clearInterval);
  timers = [];
  aborters.forEach(a => a.abort());
  aborters = [];
}

function navigate(path, replace) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route();
}

document.addEventListener("click", e => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

function setMain(...kids) {
  const app = document.getElementById("app");
  app.replaceChildren(...kids);
}

function ago(ms) {
  if (!ms) return "—";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return "just now";
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}

function dur(ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return ms + "ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + Math.round(s % 60) + "s";
  return Math.floor(s / 3600) + "h" + Math.round((s % 3600) / 60) + "m";
}

function bytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function badge(state) { return h("span", {class: "badge s-" + state}, state); }

function progressBar(j, big) {
  const t = Math.max(j.targets, 1);
  const pct = n => (100 * n / t).toFixed(2) + "%";
  const bar = h("div", {class: "bar" + (big ? " big" : ""),
                        title: `${j.succeeded} succeeded, ${j.failed + j.unreachable} failed, ` +
                               `${j.running} running, ${j.pending} pending of ${j.targets}`});
  for (const [cls, n] of [["succeeded", j.succeeded], ["failed", j.failed + j.unreachable +
                          j.cancelled], ["running", j.running]]) {
    const s = h("span", {class: cls});
    s.style.width = pct(n);
    bar.append(s);
  }
  return bar;
}

// --- views ---

async function whoami() {
  const r = await api("/api/v1/whoami");
  const who = document.getElementById("who");
  who.textContent = r.status === 200 ? r.body.caller + (r.body.leading ? "" : " · follower") : "";
  document.getElementById("logout").hidden = !token();
  return r;
}

function loginView() {
  const params = new URLSearchParams(location.search);
  const reason = sessionStorage.getItem("muster.login_reason") || "";
  sessionStorage.removeItem("muster.login_reason");
  const msg = h("p", {class: "error", id: "login-error"}, reason);
  const input = h("input", {type: "password", id: "token", name: "token",
                            autocomplete: "off", placeholder: "mst_…", required: true});
  const form = h("form", {class: "login", id: "login-form"},
    h("h1", {}, "Log in to Muster"),
    h("p", {class: "muted"}, "Paste a bearer token made with ",
      h("code", {}, "muster token create NAME --role viewer"),
      ". It is kept in this tab only (sessionStorage) and sent as an Authorization header."),
    h("label", {for: "token"}, "Token"), input, msg,
    h("button", {type: "submit", id: "login-submit"}, "Log in"));
  form.addEventListener("submit", async e => {
    e.preventDefault();
    msg.textContent = "";
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    const r = await api("/api/v1/whoami", {noRedirect: true});
    if (r.status === 200) {
      const next = params.get("next") || "/";
      navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
    } else {
      sessionStorage.removeItem(TOKEN_KEY);
      msg.textContent = (r.body && r.body.error) || ("refused (" + r.status + ")");
    }
  });
  setMain(form);
  input.focus();
}

function notFoundView(what) {
  document.title = "Not found · Muster";
  setMain(h("div", {class: "notfound", id: "not-found"},
    h("h1", {}, "404"), h("p", {id: "not-found-message"}, what || "There is no such page."),
    h("p", {}, h("a", {href: "/", "data-nav": true}, "Fleet"), " · ",
      h("a", {href: "/jobs", "data-nav": true}, "Jobs"))));
}

async function fleetView() {
  document.title = "Fleet · Muster";
  const params = new URLSearchParams(location.search);
  const sel = h("input", {type: "text", class: "wide", id: "selector", name: "selector",
                          placeholder: "selector, e.g. role=web,dc=eu*",
                          value: params.get("selector") || ""});
  const form = h("form", {class: "filter", id: "selector-form"}, sel,
                 h("button", {type: "submit"}, "Filter"));
  form.addEventListener("submit", e => {
    e.preventDefault();
    const v = sel.value.trim();
    navigate("/" + (v ? "?selector=" + encodeURIComponent(v) : ""));
  });
  const cards = h("div", {class: "cards", id: "fleet-cards"});
  const status = h("p", {class: "muted", id: "fleet-status"});
  const body = h("tbody", {id: "agents-body"});
  const table = h("table", {id: "agents-table"},
    h("thead", {}, h("tr", {}, h("th", {}, "Agent"), h("th", {}, "State"), h("th", {}, "Labels"),
      h("th", {class: "num"}, "Load"), h("th", {class: "num"}, "CPUs"),
      h("th", {class: "num"}, "Memory"), h("th", {class: "num"}, "Running"),
      h("th", {}, "Heartbeat"))), body);
  setMain(h("h1", {}, "Fleet"), form, cards, status, table);
  async function load() {
    const q = sel.value.trim();
    const r = await api("/api/v1/agents" + (q ? "?selector=" + encodeURIComponent(q) : ""));
    if (r.status !== 200) {
      status.textContent = r.body.error;
      status.className = "error";
      return;
    }
    status.className = "muted";
    const b = r.body;
    cards.replaceChildren(
      ...[["connected", b.counts.connected], ["draining", b.counts.draining],
          ["disconnected", b.counts.disconnected], ["running tasks", b.running_tasks]].map(
        ([k, v]) => h("div", {class: "card", id: "count-" + k.replace(" ", "-")},
                      h("div", {class: "n"}, v), h("div", {class: "muted"}, k))));
    status.textContent = `${b.matched} agent${b.matched === 1 ? "" : "s"}` +
      (b.selector ? ` matching ${b.selector}` : "") + (b.next ? " (first page shown)" : "");
    body.replaceChildren(...b.agents.map(a => h("tr", {"data-agent": a.id, "data-state": a.state},
      h("td", {}, a.id, a.hostname && a.hostname !== a.id ?
        h("div", {class: "muted"}, a.hostname) : null),
      h("td", {}, badge(a.state), a.disconnect_reason ?
        h("div", {class: "muted"}, a.disconnect_reason) : null),
      h("td", {}, Object.entries(a.labels).map(([k, v]) => h("span", {class: "chip"}, k + "=" + v))),
      h("td", {class: "num"}, a.load1 === null ? "—" : a.load1.toFixed(2)),
      h("td", {class: "num"}, a.cpus || "—"),
      h("td", {class: "num"}, a.memory_bytes ? bytes(a.memory_bytes) : "—"),
      h("td", {class: "num", "data-running": a.running}, a.running),
      h("td", {}, ago(a.last_heartbeat_ms)))));
  }
  await load();
  timers.push(setInterval(() => load().catch(() => {}), 3000));
}

async function jobsView() {
  document.title = "Jobs · Muster";
  const params = new URLSearchParams(location.search);
  const state = h("select", {id: "state-filter"},
    ["all", "running", "pending", "held", "succeeded", "failed", "cancelled"].map(s =>
      h("option", {value: s, selected: (params.get("state") || "all") === s}, s)));
  state.addEventListener("change", () =>
    navigate("/jobs" + (state.value === "all" ? "" : "?state=" + state.value)));
  const status = h("p", {class: "muted", id: "jobs-status"});
  const body = h("tbody", {id: "jobs-body"});
  setMain(h("h1", {}, "Jobs"), h("form", {class: "filter"}, h("label", {for: "state-filter"},
    "State"), state), status,
    h("table", {id: "jobs-table"}, h("thead", {}, h("tr", {}, h("th", {}, "Job"),
      h("th", {}, "Name"), h("th", {}, "State"), h("th", {}, "Progress"),
      h("th", {class: "num"}, "Hosts"), h("th", {}, "Created"), h("th", {}, "Took"))), body));
  async function load() {
    const s = state.value === "all" ? "" : "?state=" + state.value;
    const r = await api("/api/v1/jobs" + s);
    if (r.status !== 200) {
      status.textContent = r.body.error;
      return;
    }
    status.textContent = r.body.jobs.length ? "" : "No jobs.";
    body.replaceChildren(...r.body.jobs.map(j => h("tr", {"data-job": j.id, "data-state": j.state},
      h("td", {}, h("a", {href: "/jobs/" + encodeURIComponent(j.id), "data-nav": true}, j.id)),
      h("td", {}, j.name), h("td", {}, badge(j.state)),
      h("td", {}, progressBar(j), h("div", {class: "muted"},
        `${j.succeeded}/${j.targets} ok` + (j.failed ? `, ${j.failed} failed` : "") +
        (j.running ? `, ${j.running} running` : ""))),
      h("td", {class: "num"}, j.targets), h("td", {}, ago(j.created_at_ms)),
      h("td", {}, j.finished_at_ms ? dur(j.finished_at_ms - j.created_at_ms) :
        dur(Date.now() - j.created_at_ms) + "…"))));
  }
  await load();
  timers.push(setInterval(() => load().catch(() => {}), 2000));
}

function utc(s) { return new Date(s * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC"; }

async function schedulesView() {
  document.title = "Schedules · Muster";
  const status = h("p", {class: "muted", id: "schedules-status"});
  const body = h("tbody", {id: "schedules-body"});
  setMain(h("h1", {}, "Schedules"), status,
    h("table", {id: "schedules-table"}, h("thead", {}, h("tr", {}, h("th", {}, "Name"),
      h("th", {}, "Cron"), h("th", {}, "Zone"), h("th", {}, "State"), h("th", {}, "Next fires"),
      h("th", {}, "Last outcome"))), body));
  function outcome(l) {
    if (!l) return h("span", {class: "muted"}, "never fired");
    const when = utc(l.slot_s) + (l.manual ? " (manual)" : "");
    if (l.job_id) return h("span", {}, when + " ",
      h("a", {href: "/jobs/" + encodeURIComponent(l.job_id), "data-nav": true}, l.job_id), " ",
      l.job_state ? badge(l.job_state.replace(/^JOB_/, "").toLowerCase()) : badge(l.state));
    return h("span", {}, when + " ", badge(l.state), l.reason ? " " + l.reason : "");
  }
  async function load() {
    const r = await api("/api/v1/schedules");
    if (r.status !== 200) {
      status.textContent = r.body.error;
      return;
    }
    status.textContent = r.body.schedules.length ? "" : "No schedules.";
    body.replaceChildren(...r.body.schedules.map(s => h("tr", {"data-schedule": s.name,
        "data-paused": String(s.paused)},
      h("td", {}, s.name), h("td", {}, h("code", {}, s.cron)), h("td", {}, s.tz),
      h("td", {}, badge(s.paused ? "paused" : "active")),
      h("td", {class: "next"}, s.paused ? "—" : s.next_fire_s.map(utc).join(", ")),
      h("td", {class: "last"}, outcome(s.last)))));
  }
  await load();
  timers.push(setInterval(() => load().catch(() => {}), 5000));
}

// Reads a server-sent-events body from fetch (EventSource cannot send the token header).
// onOpen runs once the server holds the subscription (its answer's headers arrived).
async function readEvents(path, onEvent, signal, onOpen) {
  const resp = await fetch(path, {headers: token() ? {Authorization: "Bearer " + token()} : {},
                                  cache: "no-store", signal});
  if (resp.status === 401) { goLogin(); return; }
  if (!resp.ok || !resp.body) throw new Error("events: " + resp.status);
  if (onOpen) await onOpen();
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += dec.decode(value, {stream: true});
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

async function jobView(id) {
  document.title = id + " · Muster";
  const r = await api("/api/v1/jobs/" + encodeURIComponent(id));
  if (r.status === 404) return notFoundView(r.body.error || "No job " + id + ".");
  if (r.status !== 200) return setMain(h("p", {class: "error"}, r.body.error));
  let job = r.body;
  const runs = new Map();  // "host\ttask" -> run
  // A run only moves forward: a newer attempt, or a later state of the same attempt. So a
  // snapshot and live events can be merged in any order.
  const RANK = {unspecified: 0, pending: 0, assigned: 1, starting: 2, running: 3};
  function applyRun(x) {
    const k = x.host + "\t" + x.task, cur = runs.get(k);
    const rank = r => r.state in RANK ? RANK[r.state] : 4;
    if (cur && (x.attempt < cur.attempt || (x.attempt === cur.attempt && rank(x) < rank(cur))))
      return;
    runs.set(k, x);
  }
  for (const run of job.runs) applyRun(run);
  const taskNames = job.tasks.map(t => t.name);
  const hosts = [...new Set(job.runs.map(x => x.host))].sort();
  let selHost = hosts[0] || "", selTask = taskNames[0] || "";

  const head = h("div", {id: "job-head"});
  const live = h("span", {class: "live", id: "live"}, "");
  const legend = h("div", {class: "legend"}, ["pending", "running", "succeeded", "failed",
    "timed_out", "cancelled", "lost"].map(s => h("span", {}, h("i", {class: "s-" + s}), s)));
  const wrap = h("div", {class: "timeline-wrap"});
  const hostSel = h("select", {id: "log-host"}, hosts.map(x => h("option", {value: x}, x)));
  const taskSel = h("select", {id: "log-task"}, taskNames.map(x => h("option", {value: x}, x)));
  const log = h("pre", {class: "log", id: "log"});
  const logNote = h("span", {class: "muted", id: "log-note"});
  setMain(head, h("h2", {}, "Timeline ", live), legend, wrap,
    h("h2", {}, "Output"), h("form", {class: "filter"}, h("label", {for: "log-host"}, "Host"),
      hostSel, h("label", {for: "log-task"}, "Task"), taskSel, logNote), log);

  function renderHead() {
    document.title = job.id + " (" + job.state + ") · Muster";
    head.replaceChildren(...[
      h("h1", {}, "Job ", h("span", {id: "job-id"}, job.id), " ", job.name ?
        h("span", {class: "muted"}, job.name) : null, " ",
        h("span", {id: "job-state", "data-state": job.state}, badge(job.state))),
      h("div", {class: "cards"}, ...[["targets", job.targets], ["pending", job.pending],
        ["running", job.running], ["succeeded", job.succeeded], ["failed", job.failed +
        job.unreachable], ["cancelled", job.cancelled]].map(([k, v]) =>
        h("div", {class: "card", id: "job-count-" + k}, h("div", {class: "n"}, v),
          h("div", {class: "muted"}, k)))),
      progressBar(job, true),
      job.end_reason ? h("p", {class: "muted", id: "end-reason"}, job.end_reason) : null,
    ].filter(Boolean));
  }

  // One row per host, one bar per task run from start to finish (or now).
  function renderTimeline() {
    const rowH = 16, labelW = 170, width = Math.max(600, wrap.clientWidth - 20 || 900);
    const plotW = width - labelW - 10;
    const t0 = job.created_at_ms;
    let t1 = job.finished_at_ms || Date.now();
    for (const x of runs.values()) t1 = Math.max(t1, x.finished_at_ms || 0);
    const span = Math.max(t1 - t0, 1000);
    const X = ms => labelW + plotW * (ms - t0) / span;
    const svg = h("svg:svg", {class: "timeline", id: "timeline", width,
                              height: 24 + hosts.length * rowH, "data-span-ms": span});
    for (let i = 0; i <= 4; i++) {
      const x = labelW + plotW * i / 4;
      svg.append(h("svg:line", {class: "grid", x1: x, x2: x, y1: 14, y2: 24 + hosts.length * rowH}),
                 h("svg:text", {x: x + 2, y: 11}, "+" + dur(span * i / 4)));
    }
    if (!job.finished_at_ms) {
      const x = X(Date.now());
      svg.append(h("svg:line", {class: "now", x1: x, x2: x, y1: 14, y2: 24 + hosts.length * rowH}));
    }
    hosts.forEach((host, i) => {
      const y = 20 + i * rowH;
      const label = h("svg:text", {class: "host" + (host === selHost ? " selected" : ""),
                                   x: 4, y: y + 11, "data-host": host}, host.length > 24 ?
                                   host.slice(0, 23) + "…" : host);
      label.addEventListener("click", () => { hostSel.value = host; pickLog(); });
      svg.append(label);
      for (const task of taskNames) {
        const x = runs.get(host + "\t" + task);
        if (!x) continue;
        const start = x.started_at_ms, end = x.finished_at_ms || (start ? Date.now() : 0);
        if (!start) continue; // not started: nothing on the time axis yet
        const x0 = X(start), w = Math.max(3, X(end) - x0);
        const rect = h("svg:rect", {class: "run s-" + x.state, x: x0, y: y + 2, width: w,
                                    height: rowH - 4, "data-host": host, "data-task": task,
                                    "data-state": x.state,
                                    "data-anomalies": (x.anomalies || []).join(",")});
        rect.append(h("svg:title", {}, `${host} ${task}: ${x.state}, attempt ${x.attempt}` +
          (x.finished_at_ms ? `, exit ${x.exit_code}, ${dur(end - start)}` :
                              `, ${dur(Date.now() - start)} so far`) +
          (x.message ? " — " + x.message : "") +
          (x.anomalies && x.anomalies.length ? " — flagged " + x.anomalies.join(",") : "")));
        rect.addEventListener("click", () => { hostSel.value = host; taskSel.value = task; pickLog(); });
        svg.append(rect);
      }
    });
    wrap.replaceChildren(svg);
  }

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; renderHead(); renderTimeline(); }, 150);
  }

  async function pickLog() {
    selHost = hostSel.value;
    selTask = taskSel.value;
    render();
    if (!selHost || !selTask) return;
    const p = `/api/v1/jobs/${encodeURIComponent(job.id)}/logs/${encodeURIComponent(selHost)}/` +
              encodeURIComponent(selTask) + "?tail=16384";
    const lr = await api(p);
    if (lr.status !== 200) {
      log.textContent = "";
      logNote.textContent = lr.body.error;
      return;
    }
    log.textContent = lr.body.data;
    logNote.textContent = `attempt ${lr.body.attempt}, ${lr.body.state}, ${bytes(lr.body.total_bytes)}` +
      (lr.body.truncated ? " (last bytes shown)" : "");
    log.scrollTop = log.scrollHeight;
  }
  hostSel.addEventListener("change", pickLog);
  taskSel.addEventListener("change", pickLog);

  // Counts are recomputed from the runs the events carry; the job record is refetched at the end.
  function recount() {
    const byHost = new Map();
    for (const x of runs.values()) {
      if (!byHost.has(x.host)) byHost.set(x.host, []);
      byHost.get(x.host).push(x.state);
    }
    let running = 0, succeeded = 0, failed = 0, cancelled = 0, unreachable = 0, pendingN = 0;
    for (const states of byHost.values()) {
      if (states.some(s => s === "running" || s === "assigned" || s === "starting")) running++;
      else if (states.every(s => s === "succeeded")) succeeded++;
      else if (states.some(s => s === "failed" || s === "timed_out" || s === "lost")) failed++;
      else if (states.some(s => s === "cancelled")) cancelled++;
      else if (states.some(s => s === "unreachable")) unreachable++; // skipped ones too, until the refetch
      else pendingN++;
    }
    if (job.state !== "running" && job.state !== "pending") return;
    Object.assign(job, {running, succeeded, failed, cancelled, pending: pendingN, unreachable,
                        skipped: 0});
  }

  const ctl = new AbortController();
  aborters.push(ctl);
  async function follow() {
    live.textContent = "● live";
    try {
      // no history replay: the snapshot fetched once the subscription exists covers it
      const jobPath = "/api/v1/jobs/" + encodeURIComponent(job.id);
      await readEvents(jobPath + "/events?history=0", (name, ev) => {
        if (name === "task") {
          applyRun(ev);
          recount();
          render();
        } else if (name === "output") {
          if (ev.host === selHost && ev.task === selTask) {
            log.textContent += ev.data;
            log.scrollTop = log.scrollHeight;
          }
        } else if (name === "job") {
          job.state = ev.state;
          render();
        }
      }, ctl.signal, async () => {
        const snap = await api(jobPath);
        if (snap.status !== 200) return;
        const state = job.state, fresh = snap.body.runs;
        job = snap.body;
        if (state !== "running" && state !== "pending") job.state = state; // a "job" event won
        for (const run of fresh) applyRun(run);
        render();
      });
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    live.textContent = "";
    const again = await api("/api/v1/jobs/" + encodeURIComponent(job.id)).catch(() => null);
    if (again && again.status === 200) {
      job = again.body;
      for (const run of job.runs) applyRun(run);
      render();
      if (job.state === "running" || job.state === "pending") setTimeout(follow, 1000);
    }
  }
  renderHead();
  renderTimeline();
  pickLog();
  if (job.state === "running" || job.state === "pending") follow();
  // the "now" line and open bars move on even without events
  timers.push(setInterval(() => { if (!job.finished_at_ms) render(); }, 1000));
}

async function route() {
  stopView();
  const path = location.pathname;
  for (const [id, p] of [["nav-fleet", "/"], ["nav-jobs", "/jobs"],
                         ["nav-schedules", "/schedules"]])
    document.getElementById(id).classList.toggle("active",
      p === "/" ? path === "/" || path === "/agents" : path.startsWith(p));
  if (path === "/login") {
    document.getElementById("who").textContent = "";
    document.getElementById("logout").hidden = true;
    document.title = "Log in · Muster";
    return loginView();
  }
  try {
    const w = await whoami();
    if (w.status !== 200) return setMain(h("p", {class: "error"}, w.body.error));
    if (path === "/" || path === "/agents") return await fleetView();
    if (path === "/jobs") return await jobsView();
    if (path === "/schedules") return await schedulesView();
    const m = path.match(/^\/jobs\/([^/]+)\/?$/);
    if (m) return await jobView(decodeURIComponent(m[1]));
    notFoundView();
  } catch (e) {
    if (e.message !== "unauthenticated") setMain(h("p", {class: "error"}, String(e)));
  }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  navigate("/login", true);
});
route();
