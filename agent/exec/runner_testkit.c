/* The plugin tests' runner kit (see runner_testkit.h). */
#include "agent/exec/runner_testkit.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

mu_tk_rec *mu_tk_rec_for(mu_tk_world *w, const char *task_id) {
  for (int i = 0; i < w->n_recs; i++)
    if (strcmp(w->recs[i].task_id, task_id) == 0) return &w->recs[i];
  assert_true(w->n_recs < MU_TK_MAX_TASKS);
  mu_tk_rec *r = &w->recs[w->n_recs++];
  memset(r, 0, sizeof *r);
  snprintf(r->task_id, sizeof r->task_id, "%s", task_id);
  r->out = calloc(1, w->out_cap + 1);
  r->err = calloc(1, w->err_cap + 1);
  assert_true(r->out != NULL && r->err != NULL);
  return r;
}

static void append(char *dst, size_t *len, size_t cap, const char *data, size_t n) {
  if (n > cap - *len) n = cap - *len;
  memcpy(dst + *len, data, n);
  *len += n;
  dst[*len] = '\0';
}

static void on_event(void *arg, const mu_task_event *ev) {
  mu_tk_world *w = arg;
  mu_tk_rec *r = mu_tk_rec_for(w, ev->task_id);
  assert_false(r->final); /* nothing after the final state */
  switch (ev->kind) {
    case MU_EV_STATE:
      r->state = ev->state.state;
      if (r->n_states < MU_TK_MAX_STATES) r->states[r->n_states++] = ev->state.state;
      if (mu_task_state_final(ev->state.state)) {
        r->final = true;
        r->final_ms = uv_hrtime() / 1000000;
        r->exit_code = ev->state.exit_code;
        r->signal = ev->state.signal;
        snprintf(r->message, sizeof r->message, "%s", ev->state.message);
      }
      break;
    case MU_EV_OUTPUT:
      if (ev->output.stream == 1) {
        append(r->out, &r->out_len, w->out_cap, ev->output.data, ev->output.len);
        r->out_total += ev->output.len;
      } else {
        append(r->err, &r->err_len, w->err_cap, ev->output.data, ev->output.len);
      }
      break;
    case MU_EV_PROGRESS:
      r->n_progress++;
      r->last_pct = ev->progress.percent;
      break;
    case MU_EV_PARAM: {
      size_t n = strlen(r->params);
      snprintf(r->params + n, sizeof r->params - n, "%s=%s;", ev->param.key, ev->param.value);
      break;
    }
  }
}

void mu_tk_world_init(mu_tk_world *w, const char *plugin_so, const mu_runner_config *cfg, size_t out_cap,
                      size_t err_cap) {
  memset(w, 0, sizeof *w);
  w->out_cap = out_cap;
  w->err_cap = err_cap;
  uv_loop_init(&w->loop);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&w->plugins, &err), 0);
  if (mu_plugin_host_load(w->plugins, plugin_so, &err) != 0) fail_msg("load: %s", err.msg);
  mu_runner_sink sink = {on_event, w};
  if (mu_runner_new(&w->loop, w->plugins, cfg, &sink, &w->runner, &err) != 0) fail_msg("runner: %s", err.msg);
}

static void on_closed(void *arg) { ((mu_tk_world *)arg)->closed = true; }

void mu_tk_world_free(mu_tk_world *w) {
  mu_runner_close(w->runner, on_closed, w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  assert_true(w->closed);
  assert_int_equal(uv_loop_close(&w->loop), 0); /* every plugin handle closed */
  mu_plugin_host_free(w->plugins);
  for (int i = 0; i < w->n_recs; i++) {
    free(w->recs[i].out);
    free(w->recs[i].err);
  }
}

mu_tk_rec *mu_tk_assign(mu_tk_world *w, const char *task_id, const char *spec, const mu_kv *params, size_t n_params) {
  mu_err err = {0};
  if (mu_runner_assign(w->runner, "job-1", task_id, 1, spec, params, n_params, &err) != 0)
    fail_msg("assign %s: %s", task_id, err.msg);
  return mu_tk_rec_for(w, task_id);
}

void mu_tk_run_until_final(mu_tk_world *w, mu_tk_rec *r) {
  while (!r->final) uv_run(&w->loop, UV_RUN_ONCE);
}

bool mu_tk_pid_gone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return true;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  return rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
}
