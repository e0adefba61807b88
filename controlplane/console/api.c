/* The console's JSON endpoints, on musterd's loop thread: each request is authenticated with
 * the admin API's own pieces (the client certificate's identity and the CRL, bearer tokens,
 * the permission verdict of authz.h; viewer suffices), then read from the registry and the
 * jobs held. /events subscribes a job watcher (jobs.h) that feeds a stream (stream.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit.h"
#include "controlplane/authz.h"
#include "controlplane/console/console_int.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/jobs.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules_int.h"
#include "controlplane/tokens.h"
#include "lib/base/log.h"
#include "lib/selector/selector.h"

#define MU_CONSOLE_AGENTS_DEFAULT 1000
#define MU_CONSOLE_AGENTS_MAX 10000
#define MU_CONSOLE_JOBS_DEFAULT 100
#define MU_CONSOLE_JOBS_MAX 1000
#define MU_CONSOLE_RUNS_DEFAULT 10000 /* task runs in one /jobs/ID answer */
#define MU_CONSOLE_RUNS_MAX 50000
#define MU_CONSOLE_TAIL_DEFAULT 16384
#define MU_CONSOLE_OUTPUT_EVENT_MAX 16384 /* bytes of one output chunk sent as an event */

struct mu_console_sub {
  mu_watcher w; /* linked to the job while live; w.ud is this */
  mu_console_sub *next;
  mu_console *c;
  mu_console_stream *s; /* our reference */
};

static int answer(mu_console_req *r, unsigned int status, char *body) {
  r->status = body ? status : 500;
  r->body = body ? body : mu_console_error_json(500, "out of memory");
  return 0;
}

static int answer_error(mu_console_req *r, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int answer_error(mu_console_req *r, unsigned int status, const char *fmt, ...) {
  char msg[MU_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return answer(r, status, mu_console_error_json(status, msg));
}

static const char *method_name(mu_console_route_kind k) {
  switch (k) {
    case MU_CONSOLE_API_WHOAMI: return "console GET /api/v1/whoami";
    case MU_CONSOLE_API_AGENTS: return "console GET /api/v1/agents";
    case MU_CONSOLE_API_JOBS: return "console GET /api/v1/jobs";
    case MU_CONSOLE_API_JOB: return "console GET /api/v1/jobs/ID";
    case MU_CONSOLE_API_JOB_EVENTS: return "console GET /api/v1/jobs/ID/events";
    case MU_CONSOLE_API_TASK_LOG: return "console GET /api/v1/jobs/ID/logs";
    case MU_CONSOLE_API_SCHEDULES: return "console GET /api/v1/schedules";
    default: return "console GET /api";
  }
}

/* The admin API's gate, for one console request: 0 with *c filled, else r is answered 401
 * (no or bad credentials) or 403 (a role or identity that may not read). */
static int authenticate(mu_console *con, mu_console_req *r, mu_caller *c) {
  mu_daemon *d = con->d;
  const char *method = method_name(r->route.kind);
  char msg[MU_ERR_MSG_MAX] = "";
  int code = MU_RPC_OK;
  memset(c, 0, sizeof *c);
  snprintf(c->address, sizeof c->address, "%s", r->peer.address);
  snprintf(c->name, sizeof c->name, "anonymous");
  c->role = d->cfg.insecure ? MU_ACCESS_ADMIN : MU_ACCESS_NONE;
  if (r->peer.verified && r->peer.pem != NULL) {
    code = mu_authz_check_revoked(d, &r->peer, msg, sizeof msg);
    if (code != MU_RPC_OK) goto out;
    code = mu_authz_caller_from_cert(&r->peer, c, msg, sizeof msg);
    if (code != MU_RPC_OK) goto out;
  }
  if (r->auth < 0) {
    snprintf(msg, sizeof msg, "malformed Authorization header: expected 'Bearer mst_...'");
    code = MU_RPC_UNAUTHENTICATED;
    goto out;
  }
  if (r->auth > 0) {
    if (c->kind == MU_CALLER_AGENT || c->kind == MU_CALLER_SERVER) {
      char who[200];
      snprintf(msg, sizeof msg, "%s cannot use the console, with or without a token",
               mu_caller_describe(c, who, sizeof who));
      code = MU_RPC_PERMISSION_DENIED;
      goto out;
    }
    mu_err err = {0};
    mu_caller t = {0};
    if (mu_tokens_authenticate(d, r->bearer, &t, &err) != 0) {
      snprintf(msg, sizeof msg, "bearer token refused: %s", err.msg);
      code = MU_RPC_UNAUTHENTICATED;
      goto out;
    }
    snprintf(t.address, sizeof t.address, "%s", r->peer.address);
    *c = t;
  }
  code = mu_authz_judge(c, MU_PERM_VIEW, method, d->cfg.insecure, msg, sizeof msg);
out:
  if (code == MU_RPC_OK) return 0;
  char who[200];
  mu_warn("console", "denied %s from %s (%s): %s", method, r->peer.address, mu_caller_describe(c, who, sizeof who),
          msg);
  mu_audit_denial(d, c, r->peer.address, method, msg);
  answer(r, code == MU_RPC_UNAUTHENTICATED ? 401 : 403,
         mu_console_error_json(code == MU_RPC_UNAUTHENTICATED ? 401 : 403, msg));
  return -1;
}

static int whoami(mu_console *con, mu_console_req *r, const mu_caller *c) {
  char who[200];
  json_t *o = json_object();
  if (o == NULL) return answer(r, 500, NULL);
  json_object_set_new(o, "caller", json_string(mu_caller_describe(c, who, sizeof who)));
  json_object_set_new(o, "role", json_string(mu_access_name(c->role)));
  json_object_set_new(o, "member", json_string(con->d->cfg.member_id));
  json_object_set_new(o, "leading", json_boolean(mu_cluster_leading(con->d)));
  json_object_set_new(o, "insecure", json_boolean(con->d->cfg.insecure));
  return answer(r, 200, mu_console_dump(o));
}

/* --- agents --- */

static json_t *agent_json(const mu_agent *a) {
  Muster__V1__AgentInfo info;
  size_t nl = a->hello_msg && a->hello_msg->hello ? a->hello_msg->hello->n_labels : 0;
  Muster__V1__AgentInfo__LabelsEntry *storage = calloc(nl + 1, sizeof *storage);
  Muster__V1__AgentInfo__LabelsEntry **ptrs = calloc(nl + 1, sizeof *ptrs);
  json_t *o = NULL;
  if (storage != NULL && ptrs != NULL) {
    mu_agent_to_info(a, &info, storage, ptrs);
    o = mu_console_agent_json(&info, a->running);
    if (o != NULL) json_object_set_new(o, "draining", json_boolean(a->draining));
  }
  free(storage);
  free(ptrs);
  return o;
}

static int list_agents(mu_console *con, mu_console_req *r) {
  mu_daemon *d = con->d;
  char text[MU_CONSOLE_SELECTOR_MAX + 1], after[MU_CONSOLE_ID_MAX + 1];
  uint64_t limit;
  if (mu_console_param_selector(r->query[MU_CQ_SELECTOR], text, sizeof text) != 0)
    return answer_error(r, 400, "selector: too long or holds control characters");
  if (mu_console_param_uint(r->query[MU_CQ_LIMIT], MU_CONSOLE_AGENTS_DEFAULT, MU_CONSOLE_AGENTS_MAX, &limit) != 0 ||
      limit == 0)
    return answer_error(r, 400, "limit: expected 1..%d", MU_CONSOLE_AGENTS_MAX);
  if (mu_console_param_id(r->query[MU_CQ_AFTER], after, sizeof after) != 0)
    return answer_error(r, 400, "after: expected an agent id");
  mu_selector *sel = NULL;
  mu_err err = {0};
  if (text[0] != '\0' && mu_selector_parse(text, &sel, &err) != 0) return answer_error(r, 400, "selector: %s", err.msg);
  json_t *o = json_object(), *list = json_array(), *counts = json_object();
  if (o == NULL || list == NULL || counts == NULL) goto oom;
  size_t matched = 0, by_state[4] = {0}, running = 0;
  const char *next = NULL;
  for (size_t i = 0; i < d->registry.n; i++) {
    const mu_agent *a = d->registry.agents[i];
    if (sel != NULL && !mu_selector_matches(sel, mu_agent_label, a)) continue;
    matched++;
    int st = (int)mu_agent_shown_state(a);
    if (st >= 0 && st < 4) by_state[st]++;
    running += a->running;
    if (after[0] != '\0' && strcmp(a->id, after) <= 0) continue; /* sorted by id */
    if (json_array_size(list) >= limit) {
      if (next == NULL) next = d->registry.agents[i - 1]->id;
      continue;
    }
    json_t *aj = agent_json(a);
    if (aj == NULL || json_array_append_new(list, aj) != 0) goto oom;
  }
  /* next: the cursor for the following page (the last id sent) */
  if (next != NULL) {
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    json_object_set(o, "next", json_object_get(last, "id"));
  } else {
    json_object_set_new(o, "next", json_null());
  }
  json_object_set_new(counts, "connected", json_integer((json_int_t)by_state[1]));
  json_object_set_new(counts, "disconnected", json_integer((json_int_t)by_state[2]));
  json_object_set_new(counts, "draining", json_integer((json_int_t)by_state[3]));
  json_object_set_new(o, "agents", list);
  json_object_set_new(o, "counts", counts);
  json_object_set_new(o, "matched", json_integer((json_int_t)matched));
  json_object_set_new(o, "running_tasks", json_integer((json_int_t)running));
  json_object_set_new(o, "selector", json_string(text));
  mu_selector_free(sel);
  return answer(r, 200, mu_console_dump(o));
oom:
  json_decref(o);
  json_decref(list);
  json_decref(counts);
  mu_selector_free(sel);
  return answer(r, 500, NULL);
}

/* --- jobs --- */

static json_t *job_json(const mu_job *job) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  const Muster__V1__JobSpec *spec = job->spec;
  json_object_set_new(o, "id", json_string(job->id));
  json_object_set_new(
      o, "name",
      mu_console_text_json(spec && spec->name ? spec->name : "", spec && spec->name ? strlen(spec->name) : 0, 256));
  json_object_set_new(o, "state", json_string(mu_console_job_state_name((int)job->state)));
  json_object_set_new(o, "created_at_ms", json_integer(job->created_at_ms));
  json_object_set_new(o, "finished_at_ms", json_integer(job->finished_at_ms));
  Muster__V1__JobCounts c; /* lib/jobcounts: the counts every surface shows */
  mu_job_counts_of(job, &c);
  json_object_set_new(o, "targets", json_integer(c.targets));
  json_object_set_new(o, "pending", json_integer(c.pending));
  json_object_set_new(o, "running", json_integer(c.running));
  json_object_set_new(o, "succeeded", json_integer(c.succeeded));
  json_object_set_new(o, "failed", json_integer(c.failed));
  json_object_set_new(o, "cancelled", json_integer(c.cancelled));
  json_object_set_new(o, "unreachable", json_integer(c.unreachable));
  json_object_set_new(o, "skipped", json_integer(c.skipped));
  json_t *tasks = json_array();
  for (size_t t = 0; tasks != NULL && spec != NULL && t < spec->n_tasks; t++) {
    json_t *tj = json_object();
    if (tj == NULL) break;
    json_object_set_new(tj, "name", json_string(spec->tasks[t]->name ? spec->tasks[t]->name : ""));
    json_object_set_new(tj, "type", json_string(spec->tasks[t]->type ? spec->tasks[t]->type : ""));
    json_array_append_new(tasks, tj);
  }
  json_object_set_new(o, "tasks", tasks ? tasks : json_null());
  json_object_set_new(o, "end_reason", json_string(job->end_reason ? job->end_reason : ""));
  return o;
}

static int list_jobs(mu_console *con, mu_console_req *r) {
  mu_daemon *d = con->d;
  int state;
  uint64_t limit;
  char after[MU_CONSOLE_ID_MAX + 1];
  if (mu_console_param_job_state(r->query[MU_CQ_STATE], &state) != 0)
    return answer_error(r, 400,
                        "state: expected pending, running, succeeded, failed, "
                        "cancelled or all");
  if (mu_console_param_uint(r->query[MU_CQ_LIMIT], MU_CONSOLE_JOBS_DEFAULT, MU_CONSOLE_JOBS_MAX, &limit) != 0 ||
      limit == 0)
    return answer_error(r, 400, "limit: expected 1..%d", MU_CONSOLE_JOBS_MAX);
  if (mu_console_param_id(r->query[MU_CQ_AFTER], after, sizeof after) != 0)
    return answer_error(r, 400, "after: expected a job id");
  json_t *o = json_object(), *list = json_array();
  if (o == NULL || list == NULL) {
    json_decref(o);
    json_decref(list);
    return answer(r, 500, NULL);
  }
  int skipping = after[0] != '\0';
  const mu_job *last = NULL;
  int more = 0;
  for (const mu_job *job = d->sched->jobs; job != NULL; job = job->next) { /* newest first */
    if (skipping) {
      if (strcmp(job->id, after) == 0) skipping = 0;
      continue;
    }
    if (job->submit_pending) continue;
    if (state != 0 && (int)job->state != state) continue;
    if (json_array_size(list) >= limit) {
      more = 1;
      break;
    }
    json_t *jj = job_json(job);
    if (jj != NULL) json_array_append_new(list, jj);
    last = job;
  }
  json_object_set_new(o, "jobs", list);
  json_object_set_new(o, "next", more && last ? json_string(last->id) : json_null());
  json_object_set_new(o, "held", json_integer((json_int_t)d->sched->n_jobs));
  return answer(r, 200, mu_console_dump(o));
}

static mu_job *find_job(mu_console *con, mu_console_req *r) {
  mu_job *job = mu_sched_find(con->d->sched, r->route.job_id);
  if (job != NULL && !job->submit_pending) return job;
  char msg[MU_ERR_MSG_MAX];
  mu_retention_not_found(&con->d->sched->cfg.retention, &con->d->sched->evicted, r->route.job_id, msg, sizeof msg);
  answer(r, 404, mu_console_error_json(404, msg));
  return NULL;
}

static int get_job(mu_console *con, mu_console_req *r) {
  mu_job *job = find_job(con, r);
  if (job == NULL) return 0;
  uint64_t offset, limit;
  if (mu_console_param_uint(r->query[MU_CQ_OFFSET], 0, UINT32_MAX, &offset) != 0)
    return answer_error(r, 400, "offset: expected a task-run index");
  if (mu_console_param_uint(r->query[MU_CQ_LIMIT], MU_CONSOLE_RUNS_DEFAULT, MU_CONSOLE_RUNS_MAX, &limit) != 0 ||
      limit == 0)
    return answer_error(r, 400, "limit: expected 1..%d", MU_CONSOLE_RUNS_MAX);
  json_t *o = job_json(job), *runs = json_array();
  if (o == NULL || runs == NULL) {
    json_decref(o);
    json_decref(runs);
    return answer(r, 500, NULL);
  }
  size_t n_tasks = job->spec ? job->spec->n_tasks : 0;
  size_t total = job->n_hosts * n_tasks, i = 0;
  for (size_t h = 0; h < job->n_hosts; h++)
    for (size_t t = 0; t < n_tasks; t++, i++) {
      if (i < offset || i >= offset + limit) continue;
      Muster__V1__TaskRun run;
      mu_task_run_view(job, &job->hosts[h], t, &run, NULL, NULL, NULL, 0);
      json_t *rj = mu_console_task_run_json(&run);
      if (rj != NULL) json_array_append_new(runs, rj);
    }
  json_object_set_new(o, "runs", runs);
  json_object_set_new(o, "runs_total", json_integer((json_int_t)total));
  json_object_set_new(o, "next_offset",
                      offset + limit < total ? json_integer((json_int_t)(offset + limit)) : json_null());
  return answer(r, 200, mu_console_dump(o));
}

static int task_log(mu_console *con, mu_console_req *r) {
  mu_job *job = find_job(con, r);
  if (job == NULL) return 0;
  uint64_t want;
  if (mu_console_param_uint(r->query[MU_CQ_TAIL], MU_CONSOLE_TAIL_DEFAULT, UINT32_MAX, &want) != 0)
    return answer_error(r, 400, "tail: expected a number of bytes");
  if (want > con->d->sched->cfg.tail_bytes) want = con->d->sched->cfg.tail_bytes;
  mu_host_run *h = mu_job_host(job, r->route.host);
  size_t idx = job->spec ? job->spec->n_tasks : 0;
  for (size_t t = 0; job->spec != NULL && t < job->spec->n_tasks; t++)
    if (job->spec->tasks[t]->name && strcmp(job->spec->tasks[t]->name, r->route.task) == 0) idx = t;
  if (h == NULL || job->spec == NULL || idx == job->spec->n_tasks)
    return answer_error(r, 404, "job %s has no task '%.100s' on host '%.100s'", job->id, r->route.task, r->route.host);
  const mu_task_run *tr = &h->tasks[idx];
  size_t cap = tr->tail.len + 1;
  char *buf = malloc(cap);
  if (buf == NULL) return answer(r, 500, NULL);
  size_t n = mu_tail_copy(&tr->tail, buf, cap);
  size_t from = n > want ? n - (size_t)want : 0;
  json_t *o = json_object();
  if (o != NULL) {
    json_object_set_new(o, "host", json_string(r->route.host));
    json_object_set_new(o, "task", json_string(r->route.task));
    json_object_set_new(o, "attempt", json_integer(tr->attempt));
    json_object_set_new(o, "state", json_string(mu_console_task_state_name((int)tr->state)));
    json_object_set_new(o, "total_bytes", json_integer((json_int_t)tr->tail.total));
    json_object_set_new(o, "truncated", json_boolean(tr->tail.total > n - from));
    json_object_set_new(o, "data", mu_console_text_json(buf + from, n - from, n - from));
  }
  free(buf);
  return answer(r, 200, o ? mu_console_dump(o) : NULL);
}

/* --- live events --- */

static void sub_free(mu_console_sub *s) {
  mu_console *c = s->c;
  for (mu_console_sub **pp = &c->subs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      c->n_subs--;
      break;
    }
  mu_console_stream_close(s->s);
  mu_console_stream_unref(s->s);
  free(s);
}

static int sub_on_event(mu_watcher *w, const uint8_t *event, size_t len) {
  mu_console_sub *s = w->ud;
  const char *name;
  char *data;
  if (mu_console_stream_reader_is_gone(s->s)) return 1;
  if (mu_console_event_json(event, len, MU_CONSOLE_OUTPUT_EVENT_MAX, &name, &data) != 0) return 0;
  int rc = mu_console_stream_push(s->s, name, data);
  free(data);
  return rc != 0;
}

static void sub_on_end(mu_watcher *w, int code, const char *message) {
  mu_console_sub *s = w->ud;
  json_t *o = json_object();
  if (o != NULL) {
    json_object_set_new(o, "code", json_integer(code));
    json_object_set_new(o, "message", json_string(message ? message : ""));
    char *data = mu_console_dump(o);
    if (data != NULL) mu_console_stream_push(s->s, "end", data);
    free(data);
  }
  sub_free(s);
}

static int job_events(mu_console *con, mu_console_req *r) {
  mu_job *job = find_job(con, r);
  if (job == NULL) return 0;
  uint64_t history;
  if (mu_console_param_uint(r->query[MU_CQ_HISTORY], 1, 1, &history) != 0)
    return answer_error(r, 400, "history: expected 0 or 1");
  if (con->n_subs >= (size_t)con->cfg.max_connections * 2)
    return answer_error(r, 503, "too many live event streams (%zu)", con->n_subs);
  mu_console_stream *st = mu_console_stream_new(con->cfg.stream_buffer);
  if (st == NULL) return answer(r, 500, NULL);
  /* what a late WatchJob caller replays, then live events: no gap, both on this thread */
  for (size_t i = 0; history && i < job->n_history; i++) {
    const char *name;
    char *data;
    if (mu_console_event_json(job->history[i], job->history_len[i], MU_CONSOLE_OUTPUT_EVENT_MAX, &name, &data) != 0)
      continue;
    int rc = mu_console_stream_push(st, name, data);
    free(data);
    if (rc != 0) break; /* overflowed: the stream says so and ends */
  }
  r->status = 200;
  r->stream = st; /* the request's reference */
  if (mu_job_finished(job) || mu_console_stream_overflowed(st)) {
    mu_console_stream_push(st, "end", "{\"code\":0,\"message\":\"job finished\"}");
    mu_console_stream_close(st);
    return 0;
  }
  mu_console_sub *s = calloc(1, sizeof *s);
  if (s == NULL) {
    mu_console_stream_close(st);
    return 0;
  }
  s->c = con;
  s->s = st;
  mu_console_stream_ref(st);
  s->w.on_event = sub_on_event;
  s->w.on_end = sub_on_end;
  s->w.ud = s;
  mu_job_add_watcher(job, &s->w);
  s->next = con->subs;
  con->subs = s;
  con->n_subs++;
  return 0;
}

void mu_console_subs_sweep(mu_console *c) {
  for (mu_console_sub *s = c->subs; s != NULL;) {
    mu_console_sub *next = s->next;
    if (mu_console_stream_reader_is_gone(s->s)) {
      mu_watcher_unlink(&s->w);
      sub_free(s);
    }
    s = next;
  }
}

void mu_console_subs_close_all(mu_console *c) {
  while (c->subs != NULL) {
    mu_console_sub *s = c->subs;
    mu_watcher_unlink(&s->w);
    mu_console_stream_push(s->s, "end", "{\"code\":14,\"message\":\"musterd is stopping\"}");
    sub_free(s);
  }
}

/* --- schedules --- */

/* One schedule as the list shows it: its rules, the next fire times, the last slot. */
static json_t *schedule_json(const Muster__V1__Schedule *v) {
  const Muster__V1__ScheduleSpec *sp = v->spec;
  json_t *next = json_array();
  for (size_t i = 0; next != NULL && i < v->n_next_fire_s; i++)
    json_array_append_new(next, json_integer(v->next_fire_s[i]));
  json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o*, s:s}", "name", sp ? sp->name : "", "cron", sp ? sp->cron : "",
                        "tz", sp && sp->tz[0] ? sp->tz : "UTC", "paused", sp && sp->paused, "overlap",
                        sp ? sp->overlap : "", "next_fire_s", next, "next_fire_local", v->next_fire_local);
  if (o != NULL && v->last != NULL)
    json_object_set_new(o, "last",
                        json_pack("{s:I, s:b, s:s, s:s, s:s, s:s}", "slot_s", (json_int_t)v->last->slot_s, "manual",
                                  v->last->manual, "state", v->last->state, "job_id", v->last->job_id, "job_state",
                                  v->last->job_state, "reason", v->last->reason));
  return o;
}

static int list_schedules(mu_console *con, mu_console_req *r) {
  mu_schedules *ss = con->d->schedules;
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && ss != NULL && i < ss->n; i++) {
    Muster__V1__Schedule *v = mu_schedules_view(ss, ss->items[i], 0);
    json_t *o = v ? schedule_json(v) : NULL;
    mu_schedules_view_free(v);
    if (o == NULL) {
      json_decref(arr);
      return answer(r, 500, NULL);
    }
    json_array_append_new(arr, o);
  }
  if (arr == NULL) return answer(r, 500, NULL);
  return answer(r, 200, mu_console_dump(json_pack("{s:o}", "schedules", arr)));
}

void mu_console_api_handle(mu_console *con, mu_console_req *r) {
  mu_caller caller;
  if (r->route.kind == MU_CONSOLE_API_UNKNOWN) {
    answer_error(r, 404, "no such endpoint (see docs/console.md)");
    return;
  }
  if (authenticate(con, r, &caller) != 0) return;
  switch (r->route.kind) {
    case MU_CONSOLE_API_WHOAMI: whoami(con, r, &caller); break;
    case MU_CONSOLE_API_AGENTS: list_agents(con, r); break;
    case MU_CONSOLE_API_JOBS: list_jobs(con, r); break;
    case MU_CONSOLE_API_JOB: get_job(con, r); break;
    case MU_CONSOLE_API_JOB_EVENTS: job_events(con, r); break;
    case MU_CONSOLE_API_TASK_LOG: task_log(con, r); break;
    case MU_CONSOLE_API_SCHEDULES: list_schedules(con, r); break;
    default: answer_error(r, 404, "no such endpoint"); break;
  }
}
