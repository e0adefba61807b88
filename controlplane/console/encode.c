/* The console's JSON shapes (encode.h). */
#include "controlplane/console/encode.h"

#include <stdlib.h>
#include <string.h>

#include "lib/base/err.h"

#define MU_CONSOLE_MESSAGE_MAX 1024

const char *mu_console_task_state_name(int state) {
  static const char *const names[] = {"unspecified", "pending",   "assigned",  "starting", "running",    "succeeded",
                                      "failed",      "timed_out", "cancelled", "lost",     "unreachable"};
  return state >= 0 && state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

const char *mu_console_job_state_name(int state) {
  static const char *const names[] = {"unspecified", "pending", "running", "succeeded", "failed", "cancelled"};
  if (state == MUSTER__V1__JOB_STATE__JOB_HELD) return "held";
  return state >= 0 && state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

const char *mu_console_agent_state_name(int state) {
  static const char *const names[] = {"unspecified", "connected", "disconnected", "draining"};
  return state >= 0 && state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t need;
  uint32_t cp;
  if (c < 0x80) return c == 0 ? 0 : 1;
  if (c >= 0xc2 && c <= 0xdf) need = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) need = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) need = 4, cp = c & 0x07;
  else return 0;
  if (n < need) return 0;
  for (size_t i = 1; i < need; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return need;
}

json_t *mu_console_text_json(const char *data, size_t len, size_t max) {
  if (data == NULL) return json_string("");
  if (len > max) len = max;
  char *out = malloc(len * 3 + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)data;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_len(p + i, len - i);
    if (n == 0) { /* U+FFFD for a bad byte (or a NUL) */
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
      continue;
    }
    memcpy(out + o, p + i, n);
    o += n;
    i += n;
  }
  json_t *s = json_stringn(out, o);
  free(out);
  return s;
}

static json_t *str(const char *s, size_t max) { return mu_console_text_json(s ? s : "", s ? strlen(s) : 0, max); }

json_t *mu_console_task_run_json(const Muster__V1__TaskRun *run) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  json_object_set_new(o, "host", str(run->agent_id, 256));
  json_object_set_new(o, "task", str(run->task_name, 256));
  json_object_set_new(o, "state", json_string(mu_console_task_state_name((int)run->state)));
  json_object_set_new(o, "attempt", json_integer(run->attempt));
  json_object_set_new(o, "exit_code", json_integer(run->exit_code));
  json_object_set_new(o, "signal", json_integer(run->signal));
  json_object_set_new(o, "started_at_ms", json_integer(run->started_at_ms));
  json_object_set_new(o, "finished_at_ms", json_integer(run->finished_at_ms));
  json_object_set_new(o, "message", str(run->message, MU_CONSOLE_MESSAGE_MAX));
  json_object_set_new(o, "retry_pending", json_boolean(run->retry_pending));
  json_t *flags = json_array(); /* run history anomaly flags, once ended */
  for (size_t i = 0; flags != NULL && i < run->n_anomalies && i < 8; i++)
    json_array_append_new(flags, str(run->anomalies[i], 32));
  if (flags != NULL) json_object_set_new(o, "anomalies", flags);
  return o;
}

json_t *mu_console_agent_json(const Muster__V1__AgentInfo *a, uint32_t running) {
  json_t *o = json_object();
  json_t *labels = json_object();
  if (o == NULL || labels == NULL) {
    json_decref(o);
    json_decref(labels);
    return NULL;
  }
  json_object_set_new(o, "id", str(a->agent_id, 256));
  json_object_set_new(o, "hostname", str(a->hostname, 256));
  json_object_set_new(o, "state", json_string(mu_console_agent_state_name((int)a->state)));
  for (size_t i = 0; i < a->n_labels && i < 256; i++) {
    const Muster__V1__AgentInfo__LabelsEntry *e = a->labels[i];
    if (e->key != NULL) json_object_set_new(labels, e->key, str(e->value, 1024));
  }
  json_object_set_new(o, "labels", labels);
  json_object_set_new(o, "os", str(a->os, 64));
  json_object_set_new(o, "arch", str(a->arch, 64));
  json_object_set_new(o, "cpus", json_integer(a->cpu_count));
  json_object_set_new(o, "memory_bytes", json_integer((json_int_t)a->memory_bytes));
  const Muster__V1__HostMetrics *m = a->metrics;
  json_object_set_new(o, "load1", m ? json_real(m->load1) : json_null());
  json_object_set_new(o, "load5", m ? json_real(m->load5) : json_null());
  json_object_set_new(o, "memory_available_bytes",
                      m ? json_integer((json_int_t)m->memory_available_bytes) : json_null());
  json_object_set_new(o, "running", json_integer(running));
  json_object_set_new(o, "last_heartbeat_ms", json_integer(a->last_heartbeat_ms));
  json_object_set_new(o, "connected_at_ms", json_integer(a->connected_at_ms));
  json_object_set_new(o, "disconnect_reason", str(a->disconnect_reason, 512));
  return o;
}

int mu_console_event_json(const uint8_t *packed, size_t len, size_t max_output, const char **ret_name,
                          char **ret_data) {
  Muster__V1__JobEvent *ev = muster__v1__job_event__unpack(NULL, len, packed);
  if (ev == NULL) return MU_EINVAL;
  json_t *o = NULL;
  const char *name;
  if (ev->output != NULL) {
    name = "output";
    o = json_object();
    if (o != NULL) {
      const Muster__V1__TaskRun *t = ev->task;
      json_object_set_new(o, "host", str(t ? t->agent_id : "", 256));
      json_object_set_new(o, "task", str(t ? t->task_name : "", 256));
      json_object_set_new(
          o, "stream",
          json_string(ev->output->stream == MUSTER__V1__OUTPUT_CHUNK__STREAM__STDERR ? "stderr" : "stdout"));
      json_object_set_new(o, "data",
                          mu_console_text_json((const char *)ev->output->data.data, ev->output->data.len, max_output));
      json_object_set_new(o, "dropped_bytes", json_integer((json_int_t)ev->output->dropped_bytes));
    }
  } else if (ev->task != NULL) {
    name = "task";
    o = mu_console_task_run_json(ev->task);
  } else if (ev->anomaly != NULL) {
    name = "anomaly";
    o = json_object();
    json_t *flags = json_array();
    const Muster__V1__RunAnomaly *an = ev->anomaly;
    if (o != NULL && flags != NULL) {
      json_object_set_new(o, "host", str(an->agent_id, 256));
      json_object_set_new(o, "task", str(an->task_name, 256));
      json_object_set_new(o, "attempt", json_integer(an->attempt));
      for (size_t i = 0; i < an->n_flags && i < 8; i++) json_array_append_new(flags, str(an->flags[i], 32));
      json_object_set_new(o, "flags", json_incref(flags));
      json_object_set_new(o, "detail", str(an->detail, MU_CONSOLE_MESSAGE_MAX));
    }
    json_decref(flags);
  } else {
    name = "job";
    o = json_object();
    if (o != NULL) json_object_set_new(o, "state", json_string(mu_console_job_state_name((int)ev->job_state)));
  }
  if (o != NULL) json_object_set_new(o, "at_ms", json_integer(ev->at_ms));
  muster__v1__job_event__free_unpacked(ev, NULL);
  char *data = o ? mu_console_dump(o) : NULL;
  if (data == NULL) return MU_ENOMEM;
  *ret_name = name;
  *ret_data = data;
  return 0;
}

char *mu_console_error_json(unsigned int status, const char *msg) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  json_object_set_new(o, "error", str(msg, 1024));
  json_object_set_new(o, "status", json_integer(status));
  return mu_console_dump(o);
}

char *mu_console_dump(json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  return s;
}
