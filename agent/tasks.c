/* The agent's task path: Assign and Cancel from the control plane go to the runner; every
 * task event the runner reports is packed into an AgentMessage, appended to the on-disk
 * journal, and sent only once the journal says it is durable. Acks from the control plane
 * trim the journal; after a reconnect everything unacked is sent again. Each attempt is marked
 * in the journal while it runs (marks outlive acks), so after a restart the attempts the
 * previous process was running are reported LOST, as events and in every Hello until the
 * control plane acks those events. Output also goes to the output spool
 * (output_spool.h), which TaskLogs reads through logs.c. Assignments are never journaled: the
 * secret values one carries (Assign.secrets) go into the spec handed to the runner, in memory,
 * and are wiped from every copy once used; after a restart a task that was running is LOST
 * and the control plane decides whether to send it again (resolving its secrets afresh). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/assign_secrets.h"
#include "agent/exec/adopt.h"
#include "agent/meters.h"
#include "agent/task_audit.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/pbjson/pbjson.h"

#define MU_TASK_AUDITS_MAX 100000 /* attempts assigned and not started yet, for their audit */

/* --- journal -> stream --- */

typedef struct send_ctx {
  mu_agent_daemon *agent;
  uint64_t upto;
} send_ctx;

static int send_record(void *arg, uint64_t seq, const void *data, size_t len) {
  send_ctx *sc = arg;
  mu_agent_daemon *a = sc->agent;
  if (seq <= a->sent_seq) return 0;
  if (seq > sc->upto) return 1;
  mu_err err = {0};
  if (a->conn.call == NULL || !a->conn.welcomed || mu_rpc_call_send(a->conn.call, data, len, &err) != 0)
    return 1; /* resent after the next Welcome */
  a->sent_seq = seq;
  return 0;
}

void mu_tasks_flush(mu_agent_daemon *a) {
  if (a->journal == NULL || a->conn.call == NULL || !a->conn.welcomed) return;
  mu_journal_stats st;
  mu_journal_stats_get(a->journal, &st);
  send_ctx sc = {a, st.persisted_seq};
  mu_journal_foreach(a->journal, send_record, &sc);
}

static void on_persisted(mu_journal *j, uint64_t upto, void *arg) {
  (void)j;
  (void)upto;
  mu_tasks_flush(arg);
}

static void on_journal_error(mu_journal *j, int code, const char *msg, void *arg) {
  (void)j;
  (void)arg;
  mu_error("tasks", "journal write failed (%s): %s; retrying with the next batch", mu_strerror(code), msg);
}

void mu_tasks_on_welcome(mu_agent_daemon *a) {
  a->sent_seq = 0; /* the control plane acks what it has; resend the rest */
  mu_tasks_flush(a);
  mu_agent_bundles_on_welcome(a);
}

void mu_tasks_on_ack(mu_agent_daemon *a, uint64_t seq) {
  if (a->journal != NULL) mu_journal_ack(a->journal, seq);
  /* the control plane has our LOST events, so it has seen a Hello listing them */
  if (a->n_lost > 0 && seq >= a->lost_seq) mu_tasks_lost_free(a);
}

/* Appends one TaskEvent (its sequence filled in here) to the journal. */
static void journal_event(mu_agent_daemon *a, Muster__V1__TaskEvent *ev) {
  if (a->journal == NULL) return;
  mu_journal_stats st;
  mu_journal_stats_get(a->journal, &st);
  ev->sequence = st.next_seq;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_EVENT;
  msg.event = ev;
  size_t len = muster__v1__agent_message__get_packed_size(&msg);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return;
  muster__v1__agent_message__pack(&msg, buf);
  uint64_t seq = 0;
  mu_err err = {0};
  if (mu_journal_append(a->journal, buf, len, &seq, &err) != 0)
    mu_error("tasks", "task %s: event not journaled: %s", ev->task_id, err.msg);
  free(buf);
}

static void report_final(mu_agent_daemon *a, const char *job_id, const char *task_id, uint32_t attempt,
                         Muster__V1__TaskState state, const char *message) {
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  Muster__V1__StateChange sc = MUSTER__V1__STATE_CHANGE__INIT;
  ev.job_id = (char *)job_id;
  ev.task_id = (char *)task_id;
  ev.attempt = attempt;
  ev.at_ms = mu_now_ms();
  sc.state = state;
  sc.exit_code = -1;
  sc.message = (char *)message;
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_STATE;
  ev.state = &sc;
  journal_event(a, &ev);
  if (state == MUSTER__V1__TASK_STATE__FAILED) mu_agent_meters_refused(a->meters, task_id, attempt);
}

static void track_attempt(mu_agent_daemon *a, const mu_task_event *e);

/* --- runner -> journal --- */

static void on_runner_event(void *arg, const mu_task_event *e) {
  mu_agent_daemon *a = arg;
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  Muster__V1__StateChange sc = MUSTER__V1__STATE_CHANGE__INIT;
  Muster__V1__TaskMetrics m = MUSTER__V1__TASK_METRICS__INIT;
  Muster__V1__OutputChunk oc = MUSTER__V1__OUTPUT_CHUNK__INIT;
  Muster__V1__Progress pr = MUSTER__V1__PROGRESS__INIT;
  Muster__V1__OutputParams op = MUSTER__V1__OUTPUT_PARAMS__INIT;
  Muster__V1__OutputParams__ParamsEntry pe = MUSTER__V1__OUTPUT_PARAMS__PARAMS_ENTRY__INIT;
  Muster__V1__OutputParams__ParamsEntry *pes[1] = {&pe};
  Muster__V1__TaskStartAudit sa;
  mu_task_audit started;
  ev.job_id = (char *)e->job_id;
  ev.task_id = (char *)e->task_id;
  ev.attempt = e->attempt;
  ev.at_ms = e->at_ms;
  switch (e->kind) {
    case MU_EV_STATE:
      if (a->spool != NULL) {
        if (mu_task_state_final(e->state.state)) {
          if (e->state.metrics != NULL && e->state.metrics->output_dropped_bytes > 0)
            mu_output_spool_truncated(a->spool, e->task_id, e->attempt,
                                      (uint64_t)e->state.metrics->output_dropped_bytes);
          mu_output_spool_finish(a->spool, e->task_id, e->attempt);
        } else mu_output_spool_begin(a->spool, e->task_id, e->attempt);
      }
      sc.state = (Muster__V1__TaskState)e->state.state;
      sc.exit_code = e->state.exit_code;
      sc.signal = e->state.signal;
      sc.message = (char *)(e->state.message ? e->state.message : "");
      if (e->state.metrics != NULL) {
        m.wall_ms = e->state.metrics->wall_ms;
        m.user_cpu_ms = e->state.metrics->user_cpu_ms;
        m.sys_cpu_ms = e->state.metrics->sys_cpu_ms;
        m.max_rss_bytes = e->state.metrics->max_rss_bytes;
        m.cgroup_memory_peak_bytes = e->state.metrics->cgroup_memory_peak_bytes;
        m.output_bytes = e->state.metrics->output_bytes;
        m.output_dropped_bytes = e->state.metrics->output_dropped_bytes;
        sc.metrics = &m;
      }
      ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_STATE;
      ev.state = &sc;
      if (e->state.state == MU_TASK_STARTING &&
          mu_task_audits_start(a->task_audits, e->job_id, e->task_id, e->attempt, &started, &sa) == 0)
        ev.start_audit = &sa; /* the control plane records who started what */
      if (mu_task_state_final(e->state.state)) {
        mu_task_audits_drop(a->task_audits, e->task_id, e->attempt);
        mu_agent_bundles_attempt_ended(a, e->task_id, e->attempt);
        mu_info("tasks", "%s attempt %u: %s (exit %d) %s", e->task_id, e->attempt,
                protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, sc.state)->name,
                e->state.exit_code, sc.message);
      }
      break;
    case MU_EV_OUTPUT:
      if (a->spool != NULL)
        mu_output_spool_append(a->spool, e->task_id, e->attempt, e->output.stream == 2 ? 2 : 1, e->output.data,
                               e->output.len);
      oc.stream =
          e->output.stream == 2 ? MUSTER__V1__OUTPUT_CHUNK__STREAM__STDERR : MUSTER__V1__OUTPUT_CHUNK__STREAM__STDOUT;
      oc.data.data = (uint8_t *)e->output.data;
      oc.data.len = e->output.len;
      oc.dropped_bytes = e->output.dropped_bytes;
      ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_OUTPUT;
      ev.output = &oc;
      break;
    case MU_EV_PROGRESS:
      pr.percent = e->progress.percent;
      pr.message = (char *)(e->progress.message ? e->progress.message : "");
      ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_PROGRESS;
      ev.progress = &pr;
      break;
    case MU_EV_PARAM:
      pe.key = (char *)e->param.key;
      pe.value = (char *)e->param.value;
      op.n_params = 1;
      op.params = pes;
      ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_PARAMS;
      ev.params = &op;
      break;
  }
  journal_event(a, &ev);
  if (e->kind == MU_EV_STATE) track_attempt(a, e);
  mu_agent_meters_event(a->meters, e);
}

/* --- control plane -> runner --- */

static int run_assign(mu_agent_daemon *a, const Muster__V1__Assign *as);

/* Reports the assigned attempt FAILED with message. */
static void tasks_fail(mu_agent_daemon *a, const Muster__V1__Assign *as, const char *message) {
  report_final(a, as->job_id, as->task_id, as->attempt, MUSTER__V1__TASK_STATE__FAILED, message);
}

void mu_tasks_on_assign(mu_agent_daemon *a, Muster__V1__Assign *as) {
  if (a->stopping) { /* the runner is closing: the run goes LOST with the stream, as before */
    mu_info("tasks", "%s attempt %u not started: the agent is stopping", as->task_id, as->attempt);
    mu_assign_wipe_secrets(as);
    return;
  }
  if (a->meters != NULL && as->spec != NULL) {
    uint64_t mem = 0;
    if (as->spec->resources != NULL && as->spec->resources->memory[0] != '\0')
      mu_size_parse(as->spec->resources->memory, &mem, NULL);
    mu_agent_meters_assigned(a->meters, as->task_id, as->attempt, as->spec->type, mem);
  }
  if (!mu_agent_bundles_on_assign(a, as)) /* else it runs once its bundle is unpacked */
    run_assign(a, as);
  mu_assign_wipe_secrets(as); /* the stream's copy; the runner has its own */
}

/* --- secrets: the values in the Assign go into the spec the runner gets, and nowhere else --- */

/* Fills each spec.secrets entry with its value from as->secrets ("value", "as"); the runner
 * refuses an entry left without one. The spec with values lives in memory only: this
 * function's caller wipes its text, the runner wipes its copy. */
static int add_secret_values(const Muster__V1__Assign *as, json_t *spec, mu_err *err) {
  json_t *arr = json_object_get(spec, "secrets");
  size_t i;
  json_t *entry;
  json_array_foreach(arr, i, entry) {
    const char *name = json_string_value(json_object_get(entry, "name"));
    for (size_t k = 0; name != NULL && k < as->n_secrets; k++) {
      const Muster__V1__ResolvedSecret *rs = as->secrets[k];
      if (strcmp(rs->name, name) != 0) continue;
      json_t *v = json_stringn((const char *)rs->value.data, rs->value.len);
      if (v == NULL || memchr(rs->value.data, 0, rs->value.len) != NULL) {
        json_decref(v);
        return mu_err_set(err, MU_EINVAL, "secret %s: the delivered value is not UTF-8 text", name);
      }
      json_object_set_new(entry, "value", v);
      json_object_set_new(entry, "as", json_string(rs->as));
      json_object_del(entry, "asFile");
    }
  }
  return 0;
}

/* Zeroes the secret values held by spec (jansson frees its strings without wiping them). */
static void wipe_secret_values(json_t *spec) {
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(spec, "secrets"), i, entry) {
    json_t *v = json_object_get(entry, "value");
    if (json_is_string(v)) explicit_bzero((char *)json_string_value(v), json_string_length(v));
  }
}

/* Hands an assign to the runner now; 0 or the runner's refusal (already reported FAILED). */
static int run_assign(mu_agent_daemon *a, const Muster__V1__Assign *as) {
  json_t *spec = NULL;
  mu_err err = {0};
  char *spec_text = NULL;
  mu_kv *params = NULL;
  int rc = MU_EINVAL;
  if (a->stopping || a->runner == NULL) { /* a bundle that arrived while the agent stops */
    mu_info("tasks", "%s attempt %u not started: the agent is stopping", as->task_id, as->attempt);
    return MU_ECANCELED;
  }
  if (as->spec == NULL) {
    report_final(a, as->job_id, as->task_id, as->attempt, MUSTER__V1__TASK_STATE__FAILED, "assign without a task spec");
    return rc;
  }
  if (mu_pbjson_to_json(&as->spec->base, 0, &spec, &err) == 0) {
    mu_params_apply(as, spec);
    if (add_secret_values(as, spec, &err) != 0) {
      wipe_secret_values(spec);
      json_decref(spec);
      spec = NULL;
    }
  }
  if (spec != NULL) spec_text = json_dumps(spec, JSON_COMPACT);
  if (spec == NULL || spec_text == NULL) {
    report_final(a, as->job_id, as->task_id, as->attempt, MUSTER__V1__TASK_STATE__FAILED,
                 err.msg[0] ? err.msg : "cannot encode the task spec");
    goto out;
  }
  mu_task_audits_add(a->task_audits, as->task_id, as->attempt, spec, as->bundle_digest);
  params = calloc(as->n_params + 1, sizeof *params);
  for (size_t i = 0; params != NULL && i < as->n_params; i++) {
    params[i].key = as->params[i]->key;
    params[i].value = as->params[i]->value;
  }
  rc = mu_runner_assign(a->runner, as->job_id, as->task_id, as->attempt, spec_text, params, params ? as->n_params : 0,
                        &err);
  if (rc != 0) {
    mu_warn("tasks", "%s attempt %u refused: %s", as->task_id, as->attempt, err.msg);
    mu_task_audits_drop(a->task_audits, as->task_id, as->attempt);
    report_final(a, as->job_id, as->task_id, as->attempt, MUSTER__V1__TASK_STATE__FAILED, err.msg);
  }
out:
  free(params);
  if (spec_text != NULL) explicit_bzero(spec_text, strlen(spec_text));
  free(spec_text);
  if (spec != NULL) wipe_secret_values(spec);
  json_decref(spec);
  return rc;
}

void mu_tasks_on_cancel(mu_agent_daemon *a, const Muster__V1__Cancel *c) {
  mu_err err = {0};
  if (a->runner == NULL) return; /* stopping: every run was cancelled already */
  if ((c->force ? mu_runner_cancel_force : mu_runner_cancel)(a->runner, c->task_id, c->attempt, c->reason, &err) != 0)
    mu_info("tasks", "cancel %s attempt %u: %s", c->task_id, c->attempt, err.msg);
}

void mu_tasks_on_action(mu_agent_daemon *a, const Muster__V1__TaskAction *ta) {
  mu_err err = {0};
  if (a->runner == NULL) return; /* stopping */
  if (mu_runner_action(a->runner, ta->task_id, ta->attempt, ta->action, &err) != 0)
    mu_warn("tasks", "action %s on %s attempt %u: %s", ta->action, ta->task_id, ta->attempt, err.msg);
}

/* --- which attempts are running, as the journal knows it across a crash --- */

#define MU_LOST_MESSAGE "agent restarted (previous process ended while the task ran)"

/* The journal mark of an attempt: "<task_id>#<attempt>". */
static void attempt_key(const char *task_id, uint32_t attempt, char *buf, size_t size) {
  snprintf(buf, size, "%s#%u", task_id, attempt);
}

/* Marks an attempt as it starts and unmarks it once its final event is journaled: the marks
 * outlive the acks of its events, so the next process knows what this one was running. */
static void track_attempt(mu_agent_daemon *a, const mu_task_event *e) {
  int final = mu_task_state_final(e->state.state);
  if (a->journal == NULL || (e->state.state != MU_TASK_STARTING && !final)) return;
  char key[1100];
  attempt_key(e->task_id, e->attempt, key, sizeof key);
  if (final) {
    mu_journal_unmark(a->journal, key);
    return;
  }
  Muster__V1__LostAttempt la = MUSTER__V1__LOST_ATTEMPT__INIT;
  la.job_id = (char *)e->job_id;
  la.task_id = (char *)e->task_id;
  la.attempt = e->attempt;
  uint8_t buf[1200];
  size_t len = muster__v1__lost_attempt__get_packed_size(&la);
  mu_err err = {0};
  if (len > sizeof buf) mu_err_set(&err, MU_EINVAL, "ids too long to mark");
  else mu_journal_mark(a->journal, key, buf, muster__v1__lost_attempt__pack(&la, buf), &err);
  if (err.msg[0] != '\0')
    mu_warn("tasks",
            "%s attempt %u not marked running (after a crash it is found LOST only by "
            "the control plane's grace period): %s",
            e->task_id, e->attempt, err.msg);
}

/* What the previous process was running when it ended: its marks, and (for journals written
 * before marks) attempts whose last unacked event is not final; an unacked final event wins. */
typedef struct lost_scan {
  Muster__V1__LostAttempt *items; /* strings owned */
  size_t n;
} lost_scan;

static size_t lost_find(const lost_scan *ls, const char *task_id, uint32_t attempt) {
  size_t i = 0;
  while (i < ls->n && (ls->items[i].attempt != attempt || strcmp(ls->items[i].task_id, task_id) != 0)) i++;
  return i;
}

static void lost_add(lost_scan *ls, const char *job_id, const char *task_id, uint32_t attempt) {
  if (lost_find(ls, task_id, attempt) < ls->n) return;
  Muster__V1__LostAttempt *g = realloc(ls->items, (ls->n + 1) * sizeof *g);
  if (g == NULL) return;
  ls->items = g;
  muster__v1__lost_attempt__init(&g[ls->n]);
  g[ls->n].job_id = strdup(job_id);
  g[ls->n].task_id = strdup(task_id);
  g[ls->n].attempt = attempt;
  if (g[ls->n].job_id == NULL || g[ls->n].task_id == NULL) {
    free(g[ls->n].job_id);
    free(g[ls->n].task_id);
    return;
  }
  ls->n++;
}

static void lost_remove(lost_scan *ls, size_t i) {
  free(ls->items[i].job_id);
  free(ls->items[i].task_id);
  ls->items[i] = ls->items[--ls->n];
}

static int scan_mark(void *arg, const char *key, const void *data, size_t len) {
  (void)key;
  Muster__V1__LostAttempt *la = muster__v1__lost_attempt__unpack(NULL, len, data);
  if (la == NULL) return 0;
  lost_add(arg, la->job_id, la->task_id, la->attempt);
  protobuf_c_message_free_unpacked(&la->base, NULL);
  return 0;
}

static int scan_record(void *arg, uint64_t seq, const void *data, size_t len) {
  lost_scan *ls = arg;
  (void)seq;
  Muster__V1__AgentMessage *m = muster__v1__agent_message__unpack(NULL, len, data);
  if (m == NULL) return 0;
  if (m->msg_case == MUSTER__V1__AGENT_MESSAGE__MSG_EVENT &&
      m->event->event_case == MUSTER__V1__TASK_EVENT__EVENT_STATE) {
    const Muster__V1__TaskEvent *ev = m->event;
    size_t i = lost_find(ls, ev->task_id, ev->attempt);
    if (ev->state->state >= MUSTER__V1__TASK_STATE__SUCCEEDED) {
      if (i < ls->n) lost_remove(ls, i);
    } else {
      lost_add(ls, ev->job_id, ev->task_id, ev->attempt);
    }
  }
  protobuf_c_message_free_unpacked(&m->base, NULL);
  return 0;
}

/* At start-up, before the runner sweeps the previous process's cgroups: what it left running,
 * and which of those a shim keeps running (adopt.h), whose groups the sweep must spare. */
typedef struct adopt_plan {
  lost_scan ls;
  mu_adoptee *ads; /* per ls item; pid 0 when there is nothing to adopt */
  pid_t *keep;     /* the shims' pids, for the sweep */
  size_t n_keep;
} adopt_plan;

static void plan_adoption(mu_agent_daemon *a, adopt_plan *p) {
  mu_journal_foreach_mark(a->journal, scan_mark, &p->ls);
  mu_journal_foreach(a->journal, scan_record, &p->ls);
  p->ads = calloc(p->ls.n + 1, sizeof *p->ads);
  p->keep = calloc(p->ls.n + 1, sizeof *p->keep);
  for (size_t i = 0; p->ads != NULL && p->keep != NULL && i < p->ls.n; i++) {
    const Muster__V1__LostAttempt *la = &p->ls.items[i];
    mu_err err = {0};
    if (mu_adopt_probe(a->cfg.spool_dir, la->task_id, la->attempt, &p->ads[i], &err) != 0) {
      mu_info("tasks", "%s attempt %u: not re-adoptable: %s", la->task_id, la->attempt, err.msg);
      continue;
    }
    p->keep[p->n_keep++] = p->ads[i].pid;
  }
}

/* Re-adopts what the plan found (runner may be NULL: nothing is); reports every other attempt
 * the previous process left running LOST (journaled), drops its mark, and keeps the list for
 * Hello (a->lost) until those events are acked. A shim that could not be re-adopted is killed
 * (its container dies with it): nothing is left running unseen. */
static void report_lost(mu_agent_daemon *a, adopt_plan *p) {
  lost_scan *ls = &p->ls;
  size_t n_lost = 0;
  for (size_t i = 0; i < ls->n; i++) {
    const Muster__V1__LostAttempt *la = &ls->items[i];
    mu_adoptee *ad = p->ads != NULL ? &p->ads[i] : NULL;
    if (ad != NULL && ad->pid > 0) {
      mu_err err = {0};
      if (a->runner != NULL && mu_runner_adopt(a->runner, la->job_id, la->task_id, la->attempt, ad, &err) == 0) {
        mu_warn("tasks", "%s attempt %u was running when the agent's previous process ended: re-adopted", la->task_id,
                la->attempt);
        mu_output_spool_resume(a->spool, la->task_id, la->attempt); /* its output so far stays */
        mu_adoptee_free(ad);
        continue; /* still running: its mark stays */
      }
      mu_warn("tasks", "%s attempt %u: re-adopting failed (%s): killing it", la->task_id, la->attempt,
              a->runner != NULL ? err.msg : "no runner");
      if (mu_adoptee_alive(ad)) kill(ad->pid, SIGKILL);
      mu_adoptee_free(ad);
    }
    /* LOST: moved to the front, so a->lost_items[0..n_lost) are the LOST ones */
    Muster__V1__LostAttempt tmp = ls->items[n_lost];
    ls->items[n_lost] = ls->items[i];
    ls->items[i] = tmp;
    n_lost++;
  }
  for (size_t i = n_lost; i < ls->n; i++) { /* the adopted ones */
    free(ls->items[i].job_id);
    free(ls->items[i].task_id);
  }
  ls->n = n_lost;
  free(p->ads);
  free(p->keep);
  p->ads = NULL;
  p->keep = NULL;
  a->lost = calloc(ls->n + 1, sizeof *a->lost);
  for (size_t i = 0; i < ls->n; i++) {
    const Muster__V1__LostAttempt *la = &ls->items[i];
    mu_warn("tasks", "%s attempt %u was running when the agent's previous process ended: reporting LOST", la->task_id,
            la->attempt);
    report_final(a, la->job_id, la->task_id, la->attempt, MUSTER__V1__TASK_STATE__LOST, MU_LOST_MESSAGE);
    char key[1100];
    attempt_key(la->task_id, la->attempt, key, sizeof key);
    mu_journal_unmark(a->journal, key);
    if (a->lost != NULL) a->lost[i] = &ls->items[i];
  }
  a->lost_items = ls->items;
  a->n_lost = ls->n;
  mu_journal_stats st;
  mu_journal_stats_get(a->journal, &st);
  a->lost_seq = st.next_seq - 1;
}

void mu_tasks_lost_free(mu_agent_daemon *a) {
  for (size_t i = 0; i < a->n_lost; i++) {
    free(a->lost_items[i].job_id);
    free(a->lost_items[i].task_id);
  }
  free(a->lost_items);
  free(a->lost);
  a->lost_items = NULL;
  a->lost = NULL;
  a->n_lost = 0;
}

/* mu_agent_bundles_hooks: a task that waited for its bundle runs, or fails, from here. */
static int bundle_ready(void *arg, const Muster__V1__Assign *assign) { return run_assign(arg, assign); }

static void bundle_refused(void *arg, const Muster__V1__Assign *assign, const char *message) {
  tasks_fail(arg, assign, message);
}

int mu_tasks_start(mu_agent_daemon *a, const char *helper_path, mu_err *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/journal", a->cfg.spool_dir);
  mu_journal_opts jo = {.on_persisted = on_persisted, .on_error = on_journal_error, .arg = a};
  int rc = mu_journal_open(a->loop, path, &jo, &a->journal, err);
  if (rc != 0) return rc;
  a->task_audits = mu_task_audits_new(MU_TASK_AUDITS_MAX);
  if (a->task_audits == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  mu_agent_bundles_hooks bh = {.ready = bundle_ready, .refused = bundle_refused, .arg = a};
  rc = mu_agent_bundles_start(a, &bh, err);
  if (rc != 0) return rc;
  snprintf(path, sizeof path, "%s/output", a->cfg.spool_dir);
  mu_output_spool_opts so = {.max_bytes = a->cfg.output_spool_size, .retention_ms = a->cfg.output_retention_ms};
  rc = mu_output_spool_open(a->loop, path, &so, &a->spool, err);
  if (rc != 0) return rc;
  rc = mu_logs_start(a, err);
  if (rc != 0) return rc;
  adopt_plan plan = {0};
  plan_adoption(a, &plan);
  /* one cgroup sub-tree per agent: id and spool dir. Two agents on one host (tests, staging)
   * never share a task's cgroup when their task ids coincide — even with the same id, as
   * concurrent test clusters have (job ids are "j-<second>-<n>") — so one cannot kill the
   * other's tasks; the same agent restarted finds its sub-tree again. */
  char cgroup_name[sizeof a->cfg.id + 24];
  uint32_t h = 2166136261u; /* FNV-1a of the spool dir */
  for (const char *c = a->cfg.spool_dir; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  snprintf(cgroup_name, sizeof cgroup_name, "muster-%s-%08x", a->cfg.id, h);
  const mu_agent_config *c = &a->cfg;
  if (strcmp(c->sandbox_network, "none") != 0 && strcmp(c->sandbox_network, "host") != 0) {
    report_lost(a, &plan);
    return mu_err_set(err, MU_EINVAL, "sandbox_network: expected none or host, got '%s'", c->sandbox_network);
  }
  a->sandbox = (mu_sandbox_policy){
      .force_types = (const char *const *)c->sandbox_types.items,
      .n_force_types = c->sandbox_types.n,
      .network_host = strcmp(c->sandbox_network, "host") == 0,
      .read_only_root = c->sandbox_read_only_root,
      .writable = (const char *const *)c->sandbox_writable.items,
      .n_writable = c->sandbox_writable.n,
      .hidden = (const char *const *)c->sandbox_hidden.items,
      .n_hidden = c->sandbox_hidden.n,
  };
  mu_runner_config rcfg = {
      .sandbox = &a->sandbox,
      .cgroup_name = cgroup_name,
      .slots = a->cfg.slots,
      .spool_dir = a->cfg.spool_dir,
      .agent_id = a->cfg.id,
      .helper_path = helper_path,
      .run_as = a->cfg.run_as[0] ? a->cfg.run_as : NULL,
      .retention = MU_RETAIN_NEVER,
      .queue_max = a->cfg.queue_max,
      .type_slots = a->n_type_slots ? a->type_slots : NULL,
      .n_type_slots = a->n_type_slots,
      .prepare_dir = mu_agent_bundles_prepare_dir,
      .started = mu_agent_bundles_started,
      .prepare_arg = a,
      .sweep_keep = plan.keep,
      .n_sweep_keep = plan.n_keep,
  };
  mu_runner_sink sink = {.on_event = on_runner_event, .arg = a};
  rc = mu_runner_new(a->loop, a->plugins, &rcfg, &sink, &a->runner, err);
  report_lost(a, &plan); /* re-adopts through the runner, or reports LOST */
  return rc;
}
