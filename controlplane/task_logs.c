/* muster.v1.Admin/TaskLogs: the full output of a task from its agent's output spool, read
 * through the agent's stream (ControlMessage.LogRequest -> AgentMessage.LogRequestReply,
 * routed here by request_id), and the tail this control plane keeps (in memory, loaded from
 * etcd after a restart) when the agent is not connected, is busy, does not answer, or no
 * longer has the output. What the caller gets is never silently less than the output: every
 * byte range it misses (dropped or evicted on the agent, past the output limit, covered by no
 * tail) is a LogChunk with `note` and `gap` set; a chunk that cannot be queued ends the call
 * with DATA_LOSS. The trailing metadata `muster-log-source` says where the output came from
 * (agent, tail, agent+tail).
 *
 * The tasks a call names are read one after another; follow reads the one task live from its
 * agent (waiting for it to start), or in the fallback from the task events this control plane
 * receives. Flow control end to end: the agent sends at most MU_LOGS_WINDOW spool bytes past
 * what we acknowledged, and we acknowledge only while the caller's send queue is under
 * MU_LOGS_CALLER_HIGH (again once it drains under MU_LOGS_CALLER_LOW): a slow caller stops the
 * agent's read, and memory here and there stays bounded by the windows. Agents without flow
 * control (older ones: their opening reply has no window) are paused by cancelling their read
 * and asking again from the same offset. Bounds: at most MU_LOGS_PER_AGENT reads asked of one
 * agent and MU_LOGS_MAX_FETCHES calls at once; the agent has MU_LOGS_ACK_MS to open a read. A
 * caller that goes away cancels the agent's read. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/task_logs.h"

#include "controlplane/daemon.h"
#include "controlplane/gateway.h"
#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/pbjson/pbjson.h"
#include "lib/output/frames.h"
#include "lib/rpc/pb.h"

#define MU_LOGS_PER_AGENT 8
#define MU_LOGS_MAX_FETCHES 256
#define MU_LOGS_ACK_MS 10000      /* the agent opens the read (first reply) within this */
#define MU_LOGS_IDLE_MS 30000     /* a read without follow: silence past this ends it */
#define MU_LOGS_WINDOW (2u << 20) /* spool bytes an agent sends ahead of our acks */
#define MU_LOGS_ACK_EVERY (MU_LOGS_WINDOW / 4)
#define MU_LOGS_CALLER_HIGH (2u << 20)
#define MU_LOGS_CALLER_LOW (512u << 10)
#define MU_LOGS_PAUSE_BYTES (4u << 20) /* agents without flow control */
#define MU_LOGS_RESUME_BYTES (512u << 10)
#define MU_LOGS_PUMP_MS 50
#define MU_LOGS_CHUNK (256 * 1024) /* data per LogChunk sent to the caller */

typedef struct log_target {
  char *task_id;
  char *agent_id;    /* NULL: not placed yet */
  uint32_t attempt;  /* 0: never assigned */
  size_t host, task; /* indexes into the job */
} log_target;

struct mu_log_fetch {
  struct mu_log_fetch *next;
  mu_daemon *d;
  mu_rpc_call *call;
  char *job_id;
  log_target *targets;
  size_t n, cur;
  uint32_t want_attempt; /* the request's attempt (0 = latest) */
  int follow;
  int got_request;
  /* the agent read of targets[cur] */
  int reading, acked, paused, read_follow;
  int flow;    /* the agent keeps our window (its opening reply said so) */
  int waiting; /* follow: the task has not started yet; the pump looks again */
  char request_id[64];
  uint32_t read_attempt;
  int64_t stamp; /* the agent's connected_at_ms when asked */
  int64_t last_mono;
  uint64_t offset;       /* spool bytes received (record boundary) */
  uint64_t acked_offset; /* what the agent was told we passed on */
  uint64_t pos[3];       /* output bytes accounted for per stream (1, 2): passed on or
                                  * reported missing */
  int truncation_reported;
  int used_agent, used_tail;
  mu_watcher *watcher; /* fallback follow: live output through the scheduler */
  int done;
};

static void next_target(mu_log_fetch *f);

/* --- helpers --- */

static mu_task_run *target_run(mu_log_fetch *f, const log_target *t, mu_host_run **ret_host) {
  mu_job *job = mu_sched_find(f->d->sched, f->job_id);
  if (job == NULL || t->host >= job->n_hosts || t->task >= job->spec->n_tasks) return NULL;
  mu_task_run *tr = &job->hosts[t->host].tasks[t->task];
  if (strcmp(tr->task_id, t->task_id) != 0) return NULL;
  if (ret_host != NULL) *ret_host = &job->hosts[t->host];
  return tr;
}

static const char *cur_task(const mu_log_fetch *f) { return f->cur < f->n ? f->targets[f->cur].task_id : ""; }

static void cancel_agent_read(mu_log_fetch *f);

/* Queues one LogChunk for the caller. One that cannot be queued (the caller's queue is at
 * its bound, or the call is over) ends the call with DATA_LOSS rather than leave a hole:
 * 0, or -1 and the call is ending. */
static int send_lc(mu_log_fetch *f, const Muster__V1__LogChunk *lc) {
  if (f->done) return -1;
  mu_err err = {0};
  if (mu_pb_send(f->call, &lc->base, &err) == 0) return 0;
  mu_warn("logs", "%s: output not passed on, ending the call: %s", cur_task(f), err.msg);
  cancel_agent_read(f);
  f->done = 1;
  char msg[700];
  snprintf(msg, sizeof msg,
           "%s: output after byte %llu of stdout / %llu of stderr could not be "
           "sent: %s",
           cur_task(f), (unsigned long long)f->pos[1], (unsigned long long)f->pos[2], err.msg);
  mu_rpc_call_finish(f->call, MU_RPC_DATA_LOSS, msg, NULL);
  return -1;
}

static int send_chunk(mu_log_fetch *f, const char *task_id, int stream, const void *data, size_t len) {
  Muster__V1__LogChunk lc = MUSTER__V1__LOG_CHUNK__INIT;
  Muster__V1__OutputChunk oc = MUSTER__V1__OUTPUT_CHUNK__INIT;
  oc.stream = (Muster__V1__OutputChunk__Stream)stream;
  oc.data.data = (uint8_t *)data;
  oc.data.len = len;
  lc.task_id = (char *)task_id;
  lc.output = &oc;
  return send_lc(f, &lc);
}

static void send_note(mu_log_fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A note for the reader: a LogChunk with note set and no output. */
static void send_note(mu_log_fetch *f, const char *fmt, ...) {
  char msg[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  Muster__V1__LogChunk lc = MUSTER__V1__LOG_CHUNK__INIT;
  lc.task_id = (char *)cur_task(f);
  lc.note = msg;
  send_lc(f, &lc);
}

static const char *stream_name(int stream) {
  return stream == 1 ? "stdout" : stream == 2 ? "stderr" : "the output (stdout and stderr together)";
}

/* Reports missing output: bytes [start, end) of stream (0: the whole output; end 0: not
 * known), as a note for people and a LogGap for programs; detail finishes the sentence
 * after the verb the reason gives ("were dropped", "are missing"). */
static void send_gap(mu_log_fetch *f, int stream, uint64_t start, uint64_t end, int reason, const char *detail) {
  static const char *const verbs[][2] = {
      [MUSTER__V1__LOG_GAP__REASON__DROPPED] = {"were dropped", "was dropped"},
      [MUSTER__V1__LOG_GAP__REASON__TRUNCATED] = {"were truncated", "was truncated"},
      [MUSTER__V1__LOG_GAP__REASON__EVICTED] = {"were evicted", "was evicted"},
      [MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE] = {"are missing", "is missing"},
  };
  if (reason < MUSTER__V1__LOG_GAP__REASON__DROPPED || reason > MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE)
    reason = MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE;
  const char *verb = verbs[reason][end > start ? 0 : 1];
  char msg[800];
  if (end > start)
    snprintf(msg, sizeof msg, "%s: bytes %llu..%llu of %s %s%s", cur_task(f), (unsigned long long)start,
             (unsigned long long)(end - 1), stream_name(stream), verb, detail);
  else
    snprintf(msg, sizeof msg, "%s: %s from byte %llu on %s%s", cur_task(f), stream_name(stream),
             (unsigned long long)start, verb, detail);
  Muster__V1__LogChunk lc = MUSTER__V1__LOG_CHUNK__INIT;
  Muster__V1__LogGap gap = MUSTER__V1__LOG_GAP__INIT;
  gap.stream = (Muster__V1__OutputChunk__Stream)stream;
  gap.start = start;
  gap.end = end > start ? end : 0;
  gap.reason = (Muster__V1__LogGap__Reason)reason;
  lc.task_id = (char *)cur_task(f);
  lc.note = msg;
  lc.gap = &gap;
  send_lc(f, &lc);
}

static size_t reads_of_agent(const mu_daemon *d, const char *agent_id) {
  size_t n = 0;
  for (const mu_log_fetch *f = d->logs->fetches; f != NULL; f = f->next)
    if ((f->reading || f->paused) && f->cur < f->n && f->targets[f->cur].agent_id != NULL &&
        strcmp(f->targets[f->cur].agent_id, agent_id) == 0)
      n++;
  return n;
}

static mu_agent *connected_agent(mu_daemon *d, const char *agent_id) {
  mu_agent *a = agent_id ? mu_registry_find(&d->registry, agent_id) : NULL;
  return a != NULL && a->session != NULL ? a : NULL;
}

/* The agent of the read in progress, while its stream is the one we asked on. */
static mu_agent *read_agent(mu_log_fetch *f) {
  mu_agent *a = connected_agent(f->d, f->targets[f->cur].agent_id);
  return a != NULL && a->connected_at_ms == f->stamp ? a : NULL;
}

/* Asks the agent to start (task_id set), cancel (task_id NULL, ack 0) or move the window of
 * (ack 1: offset passed on) the read request_id. */
static int send_request(mu_agent *a, const char *request_id, const char *task_id, uint32_t attempt, uint64_t offset,
                        int follow, int ack, mu_err *err) {
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__LogRequest lr = MUSTER__V1__LOG_REQUEST__INIT;
  lr.request_id = (char *)request_id;
  lr.task_id = (char *)(task_id ? task_id : "");
  lr.attempt = attempt;
  lr.offset = offset;
  lr.follow = follow;
  lr.cancel = task_id == NULL && !ack;
  lr.ack = ack;
  lr.window = MU_LOGS_WINDOW;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_LOG_REQUEST;
  msg.log_request = &lr;
  return mu_gateway_send(a, &msg, err);
}

static void cancel_agent_read(mu_log_fetch *f) {
  if (!f->reading) return;
  f->reading = 0;
  mu_agent *a = read_agent(f);
  if (a != NULL) send_request(a, f->request_id, NULL, 0, 0, 0, 0, NULL);
}

static int ask_agent(mu_log_fetch *f, mu_agent *a, mu_err *err) {
  const log_target *t = &f->targets[f->cur];
  snprintf(f->request_id, sizeof f->request_id, "logs-%llu", (unsigned long long)++f->d->logs->seq);
  int rc = send_request(a, f->request_id, t->task_id, f->read_attempt, f->offset, f->read_follow, 0, err);
  if (rc != 0) return rc;
  f->reading = 1;
  f->acked = 0;
  f->paused = 0;
  f->acked_offset = f->offset;
  f->stamp = a->connected_at_ms;
  f->last_mono = mu_mono_ms();
  return 0;
}

/* --- the tail kept here --- */

/* Sends the kept tail of targets[cur] after a fallback (why: the reason, reason: the LogGap
 * reason of what it leaves out; NULL when the task never ran), with a gap for every byte
 * range neither the agent nor the tail gave. The tail lines up with the agent's bytes only
 * when it holds just this attempt, which has ended, and the control plane received all of it
 * (its count matches the agent's final one); else what is missing has no known end. Returns 1
 * when the call now follows the task live through the scheduler (the call stays open). */
static int send_tail(mu_log_fetch *f, const char *why, int reason) {
  const log_target *t = &f->targets[f->cur];
  mu_host_run *h = NULL;
  mu_task_run *tr = target_run(f, t, &h);
  f->used_tail = 1;
  if (tr == NULL) {
    send_gap(f, 0, f->pos[1] + f->pos[2], 0, MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE,
             ": the job is no longer held by this control plane");
    return 0;
  }
  size_t cap = tr->tail.cap + 1;
  char *buf = malloc(cap);
  size_t n = buf ? mu_tail_copy(&tr->tail, buf, cap) : 0;
  uint64_t total = tr->tail.total, first = total - n; /* output byte where the tail starts */
  uint64_t at = f->pos[1] + f->pos[2];                /* what the caller has accounted for */
  int final = tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED;
  /* the agent's count: the control plane misses output events its agent could not journal */
  int known = final && tr->has_metrics;
  uint64_t size = known ? (uint64_t)tr->metrics.output_bytes : total;
  /* a running attempt has no final count to check against: its tail is trusted to start
   * where it says only when nothing is to be joined to it */
  int aligned = f->read_attempt == tr->attempt && tr->attempt <= 1 && (known ? size == total : at == 0);
  size_t skip = 0;
  if (why != NULL) {
    char what[600];
    if (reason == MUSTER__V1__LOG_GAP__REASON__EVICTED)
      snprintf(what, sizeof what, " from agent %s's output spool", t->agent_id);
    else snprintf(what, sizeof what, ": %s", why);
    if (aligned && at >= first) {
      skip = at - first < n ? (size_t)(at - first) : n;
      if (at > 0)
        send_note(f, "%s: %s after %llu bytes; the rest from the tail kept by the control plane", t->task_id, why,
                  (unsigned long long)at);
      else
        send_note(f,
                  "%s: %s; showing the output kept by the control plane (all %zu bytes, "
                  "stdout and stderr merged)",
                  t->task_id, why, n);
    } else {
      if (aligned) send_gap(f, 0, at, first, reason, what);
      else send_gap(f, 0, at, 0, reason, what);
      send_note(f,
                "%s: showing the tail kept by the control plane instead (the last %zu of %llu "
                "bytes it received%s, stdout and stderr merged)",
                t->task_id, n, (unsigned long long)total, tr->attempt > 1 ? " over every attempt" : "");
    }
    if (known && tr->metrics.output_dropped_bytes > 0 && !f->truncation_reported) {
      f->truncation_reported = 1;
      send_gap(f, 0, size, size + (uint64_t)tr->metrics.output_dropped_bytes, MUSTER__V1__LOG_GAP__REASON__TRUNCATED,
               " at the task's output limit");
    }
  }
  for (size_t off = skip; off < n && !f->done; off += MU_LOGS_CHUNK) {
    size_t len = n - off < MU_LOGS_CHUNK ? n - off : MU_LOGS_CHUNK;
    send_chunk(f, t->task_id, MUSTER__V1__OUTPUT_CHUNK__STREAM__STREAM_UNSPECIFIED, buf + off, len);
  }
  free(buf);
  if (f->done || !f->follow || f->n != 1 || final || h->state != MU_HOST_RUNNING) return 0;
  /* follow the live output this control plane receives (the scheduler ends the call when
   * the task ends) */
  mu_job *job = mu_sched_find(f->d->sched, f->job_id);
  f->watcher = calloc(1, sizeof *f->watcher);
  if (job != NULL && f->watcher != NULL) f->watcher->task_id = strdup(t->task_id);
  if (job == NULL || f->watcher == NULL || f->watcher->task_id == NULL) return 0;
  f->watcher->call = f->call;
  f->watcher->follow = 1;
  mu_job_add_watcher(job, f->watcher);
  return 1;
}

/* --- moving through the targets --- */

static void fetch_finish(mu_log_fetch *f) {
  if (f->done) return;
  f->done = 1;
  mu_rpc_metadata md = {0};
  mu_rpc_metadata_add(&md, "muster-log-source",
                      f->used_agent && f->used_tail ? "agent+tail"
                      : f->used_agent               ? "agent"
                                                    : "tail");
  mu_rpc_call_finish(f->call, MU_RPC_OK, "", &md);
}

/* The read of targets[cur] cannot go on (why): the tail, then the next target. */
static void fall_back(mu_log_fetch *f, const char *why, int reason) {
  cancel_agent_read(f);
  f->paused = 0;
  mu_info("logs", "%s: %s; serving the control plane's tail", cur_task(f), why);
  if (send_tail(f, why, reason)) return;
  f->cur++;
  next_target(f);
}

/* Follow of one task that has not started (or waits for its retry): wait for the attempt
 * to start on its agent rather than end at once or read an attempt that is over. */
static int worth_waiting(mu_log_fetch *f, const mu_task_run *tr) {
  mu_job *job = mu_sched_find(f->d->sched, f->job_id);
  return f->read_follow && tr != NULL && job != NULL && !mu_job_finished(job) &&
         tr->state < MUSTER__V1__TASK_STATE__STARTING;
}

static void next_target(mu_log_fetch *f) {
  mu_daemon *d = f->d;
  f->waiting = 0;
  while (!f->done && f->cur < f->n) {
    log_target *t = &f->targets[f->cur];
    mu_host_run *h = NULL;
    mu_task_run *tr = target_run(f, t, &h);
    if (h != NULL && h->agent_id != NULL && (t->agent_id == NULL || strcmp(t->agent_id, h->agent_id) != 0)) {
      free(t->agent_id); /* placed since (an "any" target), or its retry went elsewhere */
      t->agent_id = strdup(h->agent_id);
    }
    f->offset = 0;
    memset(f->pos, 0, sizeof f->pos);
    f->truncation_reported = 0;
    f->read_attempt = f->want_attempt ? f->want_attempt : (tr ? tr->attempt : t->attempt);
    f->read_follow = f->follow && f->n == 1;
    char why[300] = "";
    if (!f->want_attempt && worth_waiting(f, tr)) {
      f->waiting = 1; /* the pump looks again */
      return;
    }
    if (t->agent_id == NULL || f->read_attempt == 0) {
      /* never ran: there is no output anywhere but what may come (follow) */
      if (send_tail(f, NULL, 0)) return;
      f->cur++;
      continue;
    }
    mu_agent *a = connected_agent(d, t->agent_id);
    mu_err err = {0};
    if (d->stopping) snprintf(why, sizeof why, "the control plane is stopping");
    else if (a == NULL) snprintf(why, sizeof why, "agent %s is not connected", t->agent_id);
    else if (reads_of_agent(d, t->agent_id) >= MU_LOGS_PER_AGENT)
      snprintf(why, sizeof why, "agent %s is serving %d log reads already", t->agent_id, MU_LOGS_PER_AGENT);
    else if (ask_agent(f, a, &err) != 0) snprintf(why, sizeof why, "asking agent %s: %s", t->agent_id, err.msg);
    else return; /* its replies move us on */
    mu_info("logs", "%s: %s; serving the control plane's tail", t->task_id, why);
    if (send_tail(f, why, MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE)) return;
    f->cur++;
  }
  fetch_finish(f);
}

/* --- replies from agents --- */

/* A gap record from the agent's spool: reported with its byte range (from where the stream
 * stands here, should the two differ). */
static void forward_gap(mu_log_fetch *f, const mu_output_gap *g, const char *agent_id) {
  char what[400];
  if (g->stream == 0) { /* past the output limit: after everything else */
    f->truncation_reported = 1;
    send_gap(f, 0, g->start, g->start + g->len, MUSTER__V1__LOG_GAP__REASON__TRUNCATED, " at the task's output limit");
    return;
  }
  /* from where the stream stands: bytes before g->start that never came are missing too */
  uint64_t start = f->pos[g->stream], end = g->start + g->len;
  if (end <= start) return; /* reported already */
  snprintf(what, sizeof what, " by agent %s's output spool: %s", agent_id, mu_output_drop_cause_text(g->cause));
  send_gap(f, g->stream, start, end, MUSTER__V1__LOG_GAP__REASON__DROPPED, what);
  f->pos[g->stream] = end;
}

/* Passes the records in data to the caller, merging runs of one stream. 0, or -1 when
 * malformed or the call is ending. */
static int forward_records(mu_log_fetch *f, const uint8_t *data, size_t len, const char *agent_id) {
  const char *task_id = f->targets[f->cur].task_id;
  long whole = mu_output_frames_whole(data, len);
  if (whole != (long)len) return -1;
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return -1;
  size_t off = 0, run_len = 0;
  int run_stream = 0, rc = 0;
  while (off < len && rc == 0) {
    int kind;
    const uint8_t *p;
    size_t n;
    mu_output_frame_get(data + off, &kind, &p, &n);
    off += MU_OUTPUT_FRAME_HEADER + n;
    if (run_len > 0 && (kind != run_stream || run_len + n > MU_LOGS_CHUNK)) {
      rc = send_chunk(f, task_id, run_stream, buf, run_len);
      run_len = 0;
    }
    if (kind == MU_OUTPUT_GAP) {
      mu_output_gap g;
      if (mu_output_gap_get(p, n, &g) != 0) rc = -1;
      else forward_gap(f, &g, agent_id);
      rc = f->done ? -1 : rc;
      continue;
    }
    run_stream = kind;
    memcpy(buf + run_len, p, n);
    run_len += n;
    f->pos[kind] += n;
  }
  if (run_len > 0 && rc == 0) rc = send_chunk(f, task_id, run_stream, buf, run_len);
  free(buf);
  f->offset += off;
  return rc;
}

static void send_ack(mu_log_fetch *f) {
  mu_agent *a = read_agent(f);
  if (a == NULL || !f->reading || f->offset == f->acked_offset) return;
  if (send_request(a, f->request_id, NULL, 0, f->offset, 0, 1, NULL) == 0) {
    f->acked_offset = f->offset;
    f->last_mono = mu_mono_ms(); /* the agent's silence counts from here */
  }
}

static void on_caller_drained(mu_rpc_call *call, void *arg) {
  mu_log_fetch *f = arg;
  (void)call;
  if (!f->done && f->flow) send_ack(f);
}

/* After passing data on: let the agent send more, unless the caller is behind. */
static void pace(mu_log_fetch *f) {
  size_t queued = mu_rpc_call_queued_bytes(f->call);
  if (!f->flow) {
    if (queued > MU_LOGS_PAUSE_BYTES) { /* an older agent: stop its read, ask again later */
      cancel_agent_read(f);
      f->paused = 1;
    }
    return;
  }
  if (queued >= MU_LOGS_CALLER_HIGH) mu_rpc_call_on_drain(f->call, MU_LOGS_CALLER_LOW, on_caller_drained, f);
  else if (f->offset - f->acked_offset >= MU_LOGS_ACK_EVERY) send_ack(f);
}

void mu_task_logs_on_reply(mu_daemon *d, mu_agent *agent, const Muster__V1__LogRequestReply *rep) {
  mu_log_fetch *f = d->logs->fetches;
  for (; f != NULL; f = f->next)
    if (f->reading && strcmp(f->request_id, rep->request_id) == 0) break;
  if (f == NULL || f->targets[f->cur].agent_id == NULL || strcmp(f->targets[f->cur].agent_id, agent->id) != 0)
    return;                                 /* a read already cancelled or given up */
  if (!f->acked) f->flow = rep->window > 0; /* the opening reply */
  f->acked = 1;
  f->last_mono = mu_mono_ms();
  if (rep->error[0] != '\0') {
    f->reading = 0; /* the agent ended it */
    fall_back(f, rep->error,
              rep->evicted ? MUSTER__V1__LOG_GAP__REASON__EVICTED : MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE);
    return;
  }
  if (f->flow && rep->data.len > 0 && rep->offset != f->offset) {
    char why[200];
    snprintf(why, sizeof why, "agent %s sent spool offset %llu where %llu was due", agent->id,
             (unsigned long long)rep->offset, (unsigned long long)f->offset);
    fall_back(f, why, MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE);
    return;
  }
  f->used_agent = 1;
  if (forward_records(f, rep->data.data, rep->data.len, agent->id) != 0) {
    if (!f->done) fall_back(f, "malformed output records from the agent", MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE);
    return;
  }
  if (rep->eof) {
    f->reading = 0;
    if (rep->running && !f->read_follow)
      send_note(f, "%s: attempt %u is still running: this is its output so far; -f follows it", cur_task(f),
                f->read_attempt);
    f->cur++;
    next_target(f);
    return;
  }
  pace(f);
}

void mu_task_logs_on_agent_down(mu_daemon *d, mu_agent *agent) {
  mu_log_fetch *f = d->logs->fetches;
  while (f != NULL) {
    mu_log_fetch *next = f->next;
    const char *id = f->cur < f->n ? f->targets[f->cur].agent_id : NULL;
    if ((f->reading || f->paused) && id != NULL && strcmp(id, agent->id) == 0) {
      f->reading = 0;
      char why[200];
      snprintf(why, sizeof why, "agent %s disconnected", agent->id);
      fall_back(f, why, MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE);
    }
    f = next;
  }
}

static void on_pump(uv_timer_t *t) {
  mu_daemon *d = t->data;
  int64_t now = mu_mono_ms();
  mu_log_fetch *f = d->logs->fetches;
  while (f != NULL) {
    mu_log_fetch *next = f->next;
    if (!f->done && f->waiting) {
      mu_task_run *tr = target_run(f, &f->targets[f->cur], NULL);
      if (tr == NULL || !worth_waiting(f, tr)) next_target(f);
    } else if (!f->done && (f->reading || f->paused)) {
      const char *id = f->targets[f->cur].agent_id;
      mu_agent *a = read_agent(f);
      char why[200] = "";
      mu_err err = {0};
      if (a == NULL) snprintf(why, sizeof why, "agent %s disconnected", id);
      else if (f->reading && !f->acked && now - f->last_mono > MU_LOGS_ACK_MS)
        snprintf(why, sizeof why, "agent %s did not answer within %ds", id, MU_LOGS_ACK_MS / 1000);
      else if (f->reading && !f->read_follow && now - f->last_mono > MU_LOGS_IDLE_MS &&
               !(f->flow && f->offset - f->acked_offset >= MU_LOGS_ACK_EVERY)) /* not held by us */
        snprintf(why, sizeof why, "agent %s stopped sending for %ds", id, MU_LOGS_IDLE_MS / 1000);
      else if (f->paused && mu_rpc_call_queued_bytes(f->call) < MU_LOGS_RESUME_BYTES && ask_agent(f, a, &err) != 0)
        snprintf(why, sizeof why, "asking agent %s again: %s", id, err.msg);
      if (why[0] != '\0') {
        if (a == NULL) f->reading = 0;
        fall_back(f, why, MUSTER__V1__LOG_GAP__REASON__UNAVAILABLE);
      }
    }
    f = next;
  }
}

/* --- the call --- */

static void on_pump_closed(uv_handle_t *h) { free(h); }

static void fetch_free(mu_log_fetch *f) {
  mu_daemon *d = f->d;
  for (mu_log_fetch **pp = &d->logs->fetches; *pp != NULL; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  for (size_t i = 0; i < f->n; i++) {
    free(f->targets[i].task_id);
    free(f->targets[i].agent_id);
  }
  free(f->targets);
  free(f->job_id);
  free(f);
  d->logs->n_fetches--;
  if (d->logs->fetches == NULL && d->logs->pump != NULL) {
    uv_timer_stop(d->logs->pump);
    uv_close((uv_handle_t *)d->logs->pump, on_pump_closed);
    d->logs->pump = NULL;
  }
}

static void start_fetch(mu_log_fetch *f, const Muster__V1__TaskLogsRequest *req) {
  mu_daemon *d = f->d;
  mu_job *job = req->job_id[0] ? mu_sched_find(d->sched, req->job_id) : NULL;
  if (job != NULL && !job->ready) job = NULL;
  if (job == NULL) {
    if (req->job_id[0] == '\0') mu_pb_fail(f->call, MU_RPC_INVALID_ARGUMENT, "job_id: required");
    else mu_sched_fail_not_found(d->sched, f->call, req->job_id);
    f->done = 1;
    return;
  }
  f->job_id = strdup(job->id);
  f->targets = calloc(job->n_hosts * job->spec->n_tasks + 1, sizeof *f->targets);
  if (f->job_id == NULL || f->targets == NULL) {
    mu_pb_fail(f->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    f->done = 1;
    return;
  }
  for (size_t i = 0; i < job->n_hosts; i++)
    for (size_t t = 0; t < job->spec->n_tasks; t++) {
      const mu_task_run *tr = &job->hosts[i].tasks[t];
      if (req->task_id[0] && !mu_task_id_matches(job, tr->task_id, req->task_id)) continue;
      log_target *lt = &f->targets[f->n++];
      lt->task_id = strdup(tr->task_id);
      lt->agent_id = job->hosts[i].agent_id ? strdup(job->hosts[i].agent_id) : NULL;
      lt->attempt = tr->attempt;
      lt->host = i;
      lt->task = t;
    }
  if (f->n == 0) {
    mu_pb_fail(f->call, MU_RPC_NOT_FOUND, "job %s has no task '%s' (task ids are AGENT/TASK)", job->id, req->task_id);
    f->done = 1;
    return;
  }
  f->want_attempt = req->attempt;
  f->follow = req->follow;
  if (f->follow && f->n > 1) {
    /* following several tasks: the tails kept here, then their live output as it arrives */
    for (f->cur = 0; f->cur < f->n; f->cur++) send_tail(f, NULL, 0);
    if (f->done) return;
    int finished = mu_job_finished(job);
    if (!finished) f->watcher = calloc(1, sizeof *f->watcher);
    if (!finished && f->watcher != NULL) f->watcher->task_id = strdup("");
    if (finished || f->watcher == NULL || f->watcher->task_id == NULL) {
      fetch_finish(f);
      return;
    }
    f->watcher->call = f->call;
    f->watcher->follow = 1;
    mu_job_add_watcher(job, f->watcher);
    return;
  }
  next_target(f);
}

static int on_request(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  mu_log_fetch *f = ud;
  (void)call;
  if (f->got_request) return 1;
  f->got_request = 1;
  Muster__V1__TaskLogsRequest *req = muster__v1__task_logs_request__unpack(NULL, len, data);
  mu_err err = {0};
  if (req != NULL && mu_pbjson_proto3_check(&req->base, &err) != 0) {
    protobuf_c_message_free_unpacked(&req->base, NULL);
    req = NULL;
  }
  if (req == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "malformed TaskLogsRequest%s%s", err.msg[0] ? ": " : "", err.msg);
    f->done = 1;
    return 1;
  }
  start_fetch(f, req);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  return 1;
}

static void on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  mu_log_fetch *f = ud;
  (void)call;
  (void)st;
  f->done = 1;
  /* a caller gone mid-read: the agent stops reading too */
  if (!f->d->stopping) cancel_agent_read(f);
  if (f->watcher != NULL) {
    mu_watcher_unlink(f->watcher);
    free(f->watcher->task_id);
    free(f->watcher);
  }
  fetch_free(f);
}

static void on_logs(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)md;
  if (d->logs->n_fetches >= MU_LOGS_MAX_FETCHES) {
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "too many TaskLogs calls at once; try again shortly", NULL);
    return;
  }
  mu_log_fetch *f = calloc(1, sizeof *f);
  if (f == NULL) {
    mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  if (d->logs->pump == NULL) {
    d->logs->pump = malloc(sizeof *d->logs->pump);
    if (d->logs->pump == NULL) {
      free(f);
      mu_rpc_call_finish(call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory", NULL);
      return;
    }
    uv_timer_init(d->loop, d->logs->pump);
    d->logs->pump->data = d;
    uv_timer_start(d->logs->pump, on_pump, MU_LOGS_PUMP_MS, MU_LOGS_PUMP_MS);
  }
  f->d = d;
  f->call = call;
  f->next = d->logs->fetches;
  d->logs->fetches = f;
  d->logs->n_fetches++;
  mu_rpc_call_handlers h = {.on_message = on_request, .on_done = on_done};
  mu_rpc_call_start(call, &h, f);
}

int mu_task_logs_register(mu_daemon *d, mu_err *err) {
  return mu_rpc_server_add_method(d->server, "/muster.v1.Admin/TaskLogs", on_logs, d, err);
}
