/* The agent's side of TaskLogs: a ControlMessage.LogRequest opens a read of one attempt's
 * spooled output (output_spool.h) and the agent answers with LogRequestReply messages on its
 * stream: first an empty reply (the read is open, with the window it keeps), then whole spool
 * records, at most MU_LOGS_CHUNK bytes per reply, and eof on the reply that ends the read (a
 * finished attempt read to its end, or the end of what there is without follow), with gap
 * records for output the spool saw and does not have.
 *
 * Two bounds pace a read, so what it holds in memory is one chunk whatever the output's size:
 * the stream's send queue (read more only under MU_LOGS_WINDOW, so heartbeats and task events
 * never wait behind a log; resumed by mu_rpc_call_on_drain), and the control plane's window
 * (records only up to LogRequest.window bytes past what it acknowledged with a LogRequest
 * with ack set: a slow caller stops the read here). A LogRequest with cancel set cancels the
 * read of its request_id. Reads end with the stream: the control plane asks again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/base/log.h"

#define MU_LOGS_MAX_READS 16                                            /* concurrent reads per agent */
#define MU_LOGS_CHUNK (256 * 1024)                                      /* data bytes per LogRequestReply */
#define MU_LOGS_WINDOW (512 * 1024)                                     /* stream send queue under which we read more */
#define MU_LOGS_MIN_READ (MU_OUTPUT_FRAME_HEADER + MU_OUTPUT_FRAME_MAX) /* one whole record */
#define MU_LOGS_MISSING_MAX (4 * MU_OUTPUT_GAP_RECORD)
#define MU_LOGS_PUMP_MS 20 /* follow: how often a waiting read looks for output */

typedef struct log_read {
  struct log_read *next;
  struct mu_agent_logs *logs;
  char *request_id;
  char *task_id;
  uint32_t attempt;
  int follow;
  mu_output_reader *reader;
  int reading;     /* a spool read is in flight */
  uint64_t window; /* 0: the control plane does no flow control */
  uint64_t sent;   /* spool offset after the records sent */
  uint64_t limit;  /* records may be sent up to this offset */
  uint8_t *held;   /* a reply the stream had no room for, sent first */
  size_t held_len;
  int held_eof, held_running;
} log_read;

struct mu_agent_logs {
  mu_agent_daemon *agent;
  log_read *reads;
  size_t n;
  uv_timer_t pump;
  int stopping;
};

static void pump_all(struct mu_agent_logs *l);

static int stream_up(const mu_agent_daemon *a) { return a->conn.call != NULL && a->conn.welcomed; }

/* Queues one reply on the stream: 0, MU_ENOSPC when the stream's queue is full (try again
 * once it drains), or another MU_E* when the stream is gone. */
static int send_reply(mu_agent_daemon *a, const log_read *r, const char *request_id, const uint8_t *data, size_t len,
                      int eof, int running, const char *error, int evicted) {
  if (!stream_up(a)) return MU_EAGAIN;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__LogRequestReply rep = MUSTER__V1__LOG_REQUEST_REPLY__INIT;
  rep.request_id = (char *)request_id;
  rep.data.data = (uint8_t *)data;
  rep.data.len = len;
  rep.eof = eof;
  rep.error = (char *)(error ? error : "");
  rep.evicted = evicted;
  rep.running = running;
  if (r != NULL) {
    rep.offset = r->sent;
    rep.window = r->window;
  }
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_LOG_REPLY;
  msg.log_reply = &rep;
  mu_err err = {0};
  int rc = mu_conn_send(&a->conn, &msg, &err);
  if (rc != 0 && rc != MU_ENOSPC) mu_debug("logs", "reply to %s not sent: %s", request_id, err.msg);
  return rc;
}

static void on_stream_drained(mu_rpc_call *call, void *arg) {
  (void)call;
  pump_all(arg);
}

/* Resumes the reads once the stream's queue is under the window again. */
static void wait_for_stream(struct mu_agent_logs *l) {
  mu_rpc_call_on_drain(l->agent->conn.call, MU_LOGS_WINDOW, on_stream_drained, l);
}

static void read_drop(struct mu_agent_logs *l, log_read *r) {
  for (log_read **pp = &l->reads; *pp != NULL; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      l->n--;
      break;
    }
  mu_output_reader_close(r->reader); /* a read in flight ends quietly */
  free(r->held);
  free(r->request_id);
  free(r->task_id);
  free(r);
  if (l->reads == NULL) uv_timer_stop(&l->pump);
}

/* Sends records read from the spool (and, with eof, the gaps the file does not hold unless
 * they are in data already: held); holds them when the stream is full. 0 when the read goes
 * on, -1 when it was dropped. */
static int read_send(struct mu_agent_logs *l, log_read *r, const uint8_t *data, size_t len, int eof, int running,
                     int held) {
  uint8_t *joined = NULL;
  if (eof && !held) {
    joined = malloc(len + MU_LOGS_MISSING_MAX);
    if (joined == NULL) {
      send_reply(l->agent, r, r->request_id, NULL, 0, 0, 0, "agent out of memory", 0);
      read_drop(l, r);
      return -1;
    }
    if (len > 0) memcpy(joined, data, len);
    len += mu_output_reader_missing(r->reader, joined + len, MU_LOGS_MISSING_MAX);
    data = joined;
  }
  int rc = send_reply(l->agent, r, r->request_id, data, len, eof, running, NULL, 0);
  if (rc == MU_ENOSPC) { /* the stream is full of other messages: keep this reply for later */
    r->held = joined ? joined : malloc(len ? len : 1);
    if (r->held == NULL) {
      read_drop(l, r);
      return -1;
    }
    if (joined == NULL && len > 0) memcpy(r->held, data, len);
    r->held_len = len;
    r->held_eof = eof;
    r->held_running = running;
    wait_for_stream(l);
    return 0;
  }
  free(joined);
  if (rc != 0 || eof) { /* the stream is gone (the control plane asks again), or done */
    read_drop(l, r);
    return -1;
  }
  r->sent += len;
  return 0;
}

static void read_pump(log_read *r);

static void on_spool_read(mu_output_reader *rd, int status, const char *message, const uint8_t *data, size_t len,
                          void *arg) {
  log_read *r = arg;
  struct mu_agent_logs *l = r->logs;
  (void)rd;
  r->reading = 0;
  if (status != 0) {
    send_reply(l->agent, r, r->request_id, NULL, 0, 0, 0, message, 0);
    read_drop(l, r);
    return;
  }
  mu_output_read_state st = mu_output_reader_state(r->reader);
  int eof = st == MU_OUTPUT_READ_EOF || (st == MU_OUTPUT_READ_WAIT && !r->follow);
  if ((len > 0 || eof) && read_send(l, r, data, len, eof, st == MU_OUTPUT_READ_WAIT, 0) != 0) return;
  read_pump(r);
}

/* Reads and sends what the stream and the window allow; ends the read at its end. */
static void read_pump(log_read *r) {
  struct mu_agent_logs *l = r->logs;
  mu_agent_daemon *a = l->agent;
  if (r->reading) return;
  if (!stream_up(a)) {
    read_drop(l, r);
    return;
  }
  if (mu_rpc_call_queued_bytes(a->conn.call) >= MU_LOGS_WINDOW) {
    wait_for_stream(l);
    return;
  }
  if (r->held != NULL) {
    uint8_t *held = r->held;
    size_t len = r->held_len;
    r->held = NULL;
    int rc = read_send(l, r, held, len, r->held_eof, r->held_running, 1);
    free(held);
    if (rc != 0 || r->held != NULL) return;
  }
  mu_output_read_state st = mu_output_reader_state(r->reader);
  if (st == MU_OUTPUT_READ_WAIT && r->follow) return; /* the timer looks again */
  if (st != MU_OUTPUT_READ_DATA) {
    read_send(l, r, NULL, 0, 1, st == MU_OUTPUT_READ_WAIT, 0);
    return;
  }
  if (r->limit - r->sent < MU_LOGS_MIN_READ) return; /* the control plane's ack moves it */
  size_t max = r->limit - r->sent < MU_LOGS_CHUNK ? (size_t)(r->limit - r->sent) : MU_LOGS_CHUNK;
  int rc = mu_output_reader_read(r->reader, max, on_spool_read, r);
  if (rc != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "reading the output of task %s attempt %u: %s", r->task_id, r->attempt, mu_strerror(rc));
    send_reply(a, r, r->request_id, NULL, 0, 0, 0, msg, 0);
    read_drop(l, r);
    return;
  }
  r->reading = 1;
}

static void pump_all(struct mu_agent_logs *l) {
  log_read *r = l->reads;
  while (r != NULL) {
    log_read *next = r->next;
    read_pump(r); /* may drop r */
    r = next;
  }
}

static void on_pump(uv_timer_t *t) { pump_all(t->data); }

static log_read *read_find(struct mu_agent_logs *l, const char *request_id) {
  for (log_read *r = l->reads; r != NULL; r = r->next)
    if (strcmp(r->request_id, request_id) == 0) return r;
  return NULL;
}

void mu_logs_on_request(mu_agent_daemon *a, const Muster__V1__LogRequest *req) {
  struct mu_agent_logs *l = a->logs;
  if (l == NULL || l->stopping || req->request_id[0] == '\0') return;
  log_read *old = read_find(l, req->request_id);
  if (req->ack) { /* the control plane passed on what came before req->offset */
    if (old != NULL && old->window > 0 && req->offset + old->window > old->limit) {
      old->limit = req->offset + old->window;
      read_pump(old);
    }
    return;
  }
  if (old != NULL) read_drop(l, old);           /* a cancel, or a request that replaces its read */
  if (req->cancel || req->task_id[0] == '\0') { /* an empty task_id names nothing to read */
    mu_debug("logs", "%s: cancelled%s", req->request_id, old ? "" : " (already over)");
    return;
  }
  char msg[600];
  if (l->n >= MU_LOGS_MAX_READS) {
    snprintf(msg, sizeof msg, "agent %s is serving %d log reads already; try again shortly", a->cfg.id,
             MU_LOGS_MAX_READS);
    send_reply(a, NULL, req->request_id, NULL, 0, 0, 0, msg, 0);
    return;
  }
  mu_output_reader *rd = NULL;
  mu_err err = {0};
  if (a->spool == NULL || mu_output_reader_open(a->spool, req->task_id, req->attempt, req->offset, &rd, &err) != 0) {
    snprintf(msg, sizeof msg, "agent %s: %s", a->cfg.id, a->spool ? err.msg : "no output spool");
    send_reply(a, NULL, req->request_id, NULL, 0, 0, 0, msg,
               a->spool != NULL && mu_output_spool_evicted(a->spool, req->task_id, req->attempt));
    return;
  }
  log_read *r = calloc(1, sizeof *r);
  if (r != NULL) r->request_id = strdup(req->request_id);
  if (r != NULL && r->request_id != NULL) r->task_id = strdup(req->task_id);
  if (r == NULL || r->request_id == NULL || r->task_id == NULL) {
    if (r != NULL) free(r->request_id);
    free(r);
    mu_output_reader_close(rd);
    send_reply(a, NULL, req->request_id, NULL, 0, 0, 0, "out of memory", 0);
    return;
  }
  r->logs = l;
  r->attempt = req->attempt;
  r->follow = req->follow;
  r->reader = rd;
  r->window = req->window;
  r->sent = req->offset;
  /* an older control plane acks nothing: the stream's queue alone paces the read */
  r->limit = req->window > 0 ? req->offset + req->window : UINT64_MAX;
  r->next = l->reads;
  l->reads = r;
  l->n++;
  mu_debug("logs", "%s: task %s attempt %u from %llu, window %llu%s", req->request_id, req->task_id, req->attempt,
           (unsigned long long)req->offset, (unsigned long long)req->window, req->follow ? " (follow)" : "");
  if (send_reply(a, r, req->request_id, NULL, 0, 0, 0, NULL, 0) != 0) { /* the read is open */
    read_drop(l, r);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&l->pump)) uv_timer_start(&l->pump, on_pump, MU_LOGS_PUMP_MS, MU_LOGS_PUMP_MS);
  read_pump(r);
}

void mu_logs_on_stream_end(mu_agent_daemon *a) {
  struct mu_agent_logs *l = a->logs;
  while (l != NULL && l->reads != NULL) read_drop(l, l->reads);
}

int mu_logs_start(mu_agent_daemon *a, mu_err *err) {
  struct mu_agent_logs *l = calloc(1, sizeof *l);
  if (l == NULL) return mu_err_set(err, MU_ENOMEM, "logs: out of memory");
  l->agent = a;
  uv_timer_init(a->loop, &l->pump);
  l->pump.data = l;
  a->logs = l;
  return 0;
}

static void on_pump_closed(uv_handle_t *h) { free(h->data); }

void mu_logs_stop(mu_agent_daemon *a) {
  struct mu_agent_logs *l = a->logs;
  if (l == NULL) return;
  l->stopping = 1;
  mu_logs_on_stream_end(a);
  if (a->conn.call != NULL) mu_rpc_call_on_drain(a->conn.call, 0, NULL, NULL);
  a->logs = NULL;
  uv_close((uv_handle_t *)&l->pump, on_pump_closed);
}
