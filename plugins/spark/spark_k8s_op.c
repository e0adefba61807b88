/* Kubernetes through spark-submit: `spark-submit --status <ns:pod>` gives the driver pod's phase,
 * `--kill <ns:pod>` deletes it; both run as supervised processes whose output is kept (bounded)
 * and read. */
#include "spark_k8s_op.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "muster_plugin.h"
#include "spark_argv.h"
#include "spark_fetch.h"
#include "spark_handle.h"
#include "spark_http.h"
#include "spark_k8s.h"
#include "spark_livy.h"
#include "spark_output.h"
#include "spark_proto.h"
#include "spark_spec.h"
#include "spark_task.h"
#include "spark_track.h"

static void on_op_output(muster_task *task, muster_proc *proc, muster_stream stream, const void *data, size_t len,
                         void *user) {
  (void)task;
  (void)stream;
  spark_task *st = user;
  if (proc != st->op_proc || st->op_out == NULL || st->op_len + len > SPARK_OP_OUT_MAX)
    return; /* the first 64 KiB say it */
  memcpy(st->op_out + st->op_len, data, len);
  st->op_len += len;
  st->op_out[st->op_len] = '\0';
}

/* The last non-empty line of what the op printed, for messages. */
static void op_last_line(const spark_task *st, char *buf, size_t size) {
  size_t e = st->op_len;
  while (e > 0 && (st->op_out[e - 1] == '\n' || st->op_out[e - 1] == '\r' || st->op_out[e - 1] == ' ')) e--;
  size_t b = e;
  while (b > 0 && st->op_out[b - 1] != '\n') b--;
  snprintf(buf, size, "%.*s", (int)(e - b), st->op_out + b);
}

static void on_op_exit(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  spark_task *st = user;
  if (proc != st->op_proc) return; /* one stop_work() abandoned */
  bool kill = st->op_kill;
  st->op_proc = NULL;
  if (st->finished || st->op_out == NULL) return;
  char last[300];
  op_last_line(st, last, sizeof last);
  const char *what = kill ? "--kill" : "--status";
  if (x->exit_code != 0) {
    spark_poll_error(st, "spark-submit %s %s: %s%s%s", what, st->h.app_id,
                     x->message && *x->message ? x->message : "failed", last[0] ? ": " : "", last);
    return;
  }
  mu_spark_k8s_status ks;
  mu_spark_k8s_status_parse(st->op_out, st->op_len, &ks);
  if (kill) { /* the pod is being deleted (or was gone): its status says when it is */
    st->kill_sent = true;
    st->poll_errors = 0;
    if (ks.not_found) spark_say(st, "spark: kill %s: Application not found", st->h.app_id);
    spark_start_status_call(st);
    return;
  }
  if (ks.not_found) {
    if (st->stage == ST_KILLING && st->kill_sent) { /* deleted: the kill is confirmed */
      spark_on_app_state(st, MU_SPARK_APP_KILLED, "deleted", NULL, NULL);
      return;
    }
    spark_poll_error(st, "spark-submit --status %s: the driver pod is gone (Application not found)", st->h.app_id);
    return;
  }
  if (!ks.found) {
    spark_poll_error(st, "spark-submit --status %s: no pod phase in its output%s%s", st->h.app_id, last[0] ? ": " : "",
                     last);
    return;
  }
  mu_spark_app_phase phase = mu_spark_k8s_phase(ks.phase);
  if (phase == MU_SPARK_APP_TRANSIENT) { /* Unknown: the node lost touch; it counts against the budget */
    snprintf(st->app_state, sizeof st->app_state, "%s", ks.phase);
    spark_poll_error(st, "spark-submit --status %s: pod phase %s", st->h.app_id, ks.phase);
    return;
  }
  st->poll_errors = 0;
  char detail[64] = "";
  if (ks.exit_code >= 0) snprintf(detail, sizeof detail, "driver container exit code %d", ks.exit_code);
  spark_on_app_state(st, phase, ks.phase, detail, NULL);
  if (!st->finished && st->stage != ST_ENDED)
    spark_track_next(st, st->stage == ST_KILLING ? spark_kill_retry(st) : (uint64_t)st->spec->poll_ms);
}

void spark_k8s_op(spark_task *st, bool kill) {
  mu_spark_argv av;
  char err[MUSTER_ERRBUF_SIZE] = "";
  if (st->op_out == NULL) st->op_out = malloc(SPARK_OP_OUT_MAX + 1);
  if (st->op_out == NULL) {
    spark_poll_error(st, "out of memory");
    return;
  }
  st->op_len = 0;
  st->op_out[0] = '\0';
  if (mu_spark_k8s_op_argv(st->spec, kill ? "--kill" : "--status", st->h.app_id, &av) != 0) {
    spark_poll_error(st, "out of memory");
    return;
  }
  char home_env[4200];
  const char *env[2] = {spark_home_env(st, home_env, sizeof home_env), NULL};
  if (kill) spark_say(st, "$ %s --kill %s --master %s", av.argv[0], st->h.app_id, st->spec->master);
  st->op_kill = kill;
  muster_spawn_opts o = {.size = sizeof o,
                         .argv = (const char *const *)av.argv,
                         .env = env,
                         .on_exit = on_op_exit,
                         .user = st,
                         .on_output = on_op_output};
  if (st->host->spawn(st->task, &o, &st->op_proc, err) != 0) {
    st->op_proc = NULL;
    spark_poll_error(st, "cannot start %s: %s", av.argv[0], err);
  }
  mu_spark_argv_free(&av);
}
