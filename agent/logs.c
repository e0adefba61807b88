/* The agent's side of TaskLogs: a ControlMessage.LogRequest opens a read of one attempt's
 * spooled output (output_spool.h) and the agent answers with LogRequestReply messages on its
 * stream: first an empty reply (the read is open), then whole spool records, at most
 * MU_LOGS_CHUNK bytes per reply, read only while the stream's send queue is under
 * MU_LOGS_WINDOW so heartbeats and task events never wait behind a log; eof on the reply that
 * ends the read (a finished attempt read to its end, or the end of what there is without
 * follow). A LogRequest with cancel set cancels the read of its request_id. Reads end
 * with the stream: the control plane asks again on the next one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/base/log.h"

#define MU_LOGS_MAX_READS 16          /* concurrent reads per agent */
#define MU_LOGS_CHUNK (64 * 1024)     /* data bytes per LogRequestReply */
#define MU_LOGS_WINDOW (256 * 1024)   /* stream send queue under which we read more */
#define MU_LOGS_PUMP_MS 20

typedef struct log_read {
  struct log_read *next;
  struct mu_agent_logs *logs;
  char *request_id;
  char *task_id;
  uint32_t attempt;
  int follow;
  mu_output_reader *reader;
  int reading;                   /* a spool read is in flight */
} log_read;

struct mu_agent_logs {
  mu_agent_daemon *agent;
  log_read *reads;
  size_t n;
  uv_timer_t pump;
  int stopping;
};

static int send_reply(mu_agent_daemon *a, const char *request_id, const uint8_t *data,
                      size_t len, int eof, const char *error) {
  if (a->conn.call == NULL || !a->conn.welcomed) return MU_EAGAIN;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__LogRequestReply rep = MUSTER__V1__LOG_REQUEST_REPLY__INIT;
  rep.request_id = (char *)request_id;
  rep.data.data = (uint8_t *)data;
  rep.data.len = len;
  rep.eof = eof;
  rep.error = (char *)(error ? error : "");
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_LOG_REPLY;
  msg.log_reply = &rep;
  size_t n = muster__v1__agent_message__get_packed_size(&msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) return MU_ENOMEM;
  muster__v1__agent_message__pack(&msg, buf);
  mu_err err = {0};
  int rc = mu_rpc_call_send(a->conn.call, buf, n, &err);
  free(buf);
  if (rc != 0) mu_debug("logs", "reply to %s not sent: %s", request_id, err.msg);
  return rc;
}

static void read_drop(struct mu_agent_logs *l, log_read *r) {
  for (log_read **pp = &l->reads; *pp != NULL; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      l->n--;
      break;
    }
  mu_output_reader_close(r->reader); /* a read in flight ends quietly */
  free(r->request_id);
  free(r->task_id);
  free(r);
  if (l->reads == NULL) uv_timer_stop(&l->pump);
}

static void read_pump(log_read *r);

static void on_spool_read(mu_output_reader *rd, int status, const char *message,
                          const uint8_t *data, size_t len, void *arg) {
  log_read *r = arg;
  struct mu_agent_logs *l = r->logs;
  (void)rd;
  r->reading = 0;
  if (status != 0) {
    send_reply(l->agent, r->request_id, NULL, 0, 0, message);
    read_drop(l, r);
    return;
  }
  mu_output_read_state st = mu_output_reader_state(r->reader);
  int eof = st == MU_OUTPUT_READ_EOF || (st == MU_OUTPUT_READ_WAIT && !r->follow);
  if ((len > 0 || eof) && send_reply(l->agent, r->request_id, data, len, eof, NULL) != 0) {
    read_drop(l, r); /* the stream is gone or full: the control plane gives up and asks again */
    return;
  }
  if (eof) {
    read_drop(l, r);
    return;
  }
  read_pump(r);
}

/* Reads and sends what the window allows; ends the read at its end. */
static void read_pump(log_read *r) {
  struct mu_agent_logs *l = r->logs;
  mu_agent_daemon *a = l->agent;
  if (r->reading) return;
  if (a->conn.call == NULL || !a->conn.welcomed) {
    read_drop(l, r);
    return;
  }
  if (mu_rpc_call_queued_bytes(a->conn.call) >= MU_LOGS_WINDOW) return; /* the timer retries */
  mu_output_read_state st = mu_output_reader_state(r->reader);
  if (st == MU_OUTPUT_READ_WAIT && r->follow) return;
  if (st != MU_OUTPUT_READ_DATA) {
    send_reply(a, r->request_id, NULL, 0, 1, NULL);
    read_drop(l, r);
    return;
  }
  int rc = mu_output_reader_read(r->reader, MU_LOGS_CHUNK, on_spool_read, r);
  if (rc != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "reading the output of task %s attempt %u: %s", r->task_id,
             r->attempt, mu_strerror(rc));
    send_reply(a, r->request_id, NULL, 0, 0, msg);
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
  if (old != NULL) read_drop(l, old); /* a cancel, or a request that replaces its read */
  if (req->cancel || req->task_id[0] == '\0') { /* an empty task_id names nothing to read */
    mu_debug("logs", "%s: cancelled%s", req->request_id, old ? "" : " (already over)");
    return;
  }
  char msg[600];
  if (l->n >= MU_LOGS_MAX_READS) {
    snprintf(msg, sizeof msg, "agent %s is serving %d log reads already; try again shortly",
             a->cfg.id, MU_LOGS_MAX_READS);
    send_reply(a, req->request_id, NULL, 0, 0, msg);
    return;
  }
  mu_output_reader *rd = NULL;
  mu_err err = {0};
  if (a->spool == NULL ||
      mu_output_reader_open(a->spool, req->task_id, req->attempt, req->offset, &rd, &err) != 0) {
    snprintf(msg, sizeof msg, "agent %s: %s", a->cfg.id,
             a->spool ? err.msg : "no output spool");
    send_reply(a, req->request_id, NULL, 0, 0, msg);
    return;
  }
  log_read *r = calloc(1, sizeof *r);
  if (r == NULL || (r->request_id = strdup(req->request_id)) == NULL ||
      (r->task_id = strdup(req->task_id)) == NULL) {
    if (r != NULL) free(r->request_id);
    free(r);
    mu_output_reader_close(rd);
    send_reply(a, req->request_id, NULL, 0, 0, "out of memory");
    return;
  }
  r->logs = l;
  r->attempt = req->attempt;
  r->follow = req->follow;
  r->reader = rd;
  r->next = l->reads;
  l->reads = r;
  l->n++;
  mu_debug("logs", "%s: task %s attempt %u from %llu%s", req->request_id, req->task_id,
           req->attempt, (unsigned long long)req->offset, req->follow ? " (follow)" : "");
  if (send_reply(a, req->request_id, NULL, 0, 0, NULL) != 0) { /* the read is open */
    read_drop(l, r);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&l->pump))
    uv_timer_start(&l->pump, on_pump, MU_LOGS_PUMP_MS, MU_LOGS_PUMP_MS);
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
  a->logs = NULL;
  uv_close((uv_handle_t *)&l->pump, on_pump_closed);
}
