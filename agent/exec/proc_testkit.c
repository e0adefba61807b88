/* The single-process test kit (proc_testkit.h). */
#include "agent/exec/proc_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

static void on_output(mu_proc *p, void *arg, int stream, const char *data, size_t len) {
  (void)p;
  mu_tp_run *r = arg;
  if (stream != 1) return;
  if (len > sizeof r->out - 1 - r->out_len) len = sizeof r->out - 1 - r->out_len;
  memcpy(r->out + r->out_len, data, len);
  r->out_len += len;
  r->out[r->out_len] = '\0';
}

static void on_exit_cb(mu_proc *p, void *arg, const mu_proc_result *res) {
  (void)p;
  mu_tp_run *r = arg;
  r->exited = true;
  r->res = *res;
}

mu_proc_opts mu_tp_opts(mu_tp_run *r, const char *helper, const char *cwd, const char *const *argv) {
  static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};
  mu_proc_opts o;
  memset(&o, 0, sizeof o);
  o.helper_path = helper;
  o.argv = argv;
  o.env = env;
  o.cwd = cwd;
  o.grace_ms = 300;
  o.cb.on_output = on_output;
  o.cb.on_exit = on_exit_cb;
  o.arg = r;
  return o;
}

void mu_tp_run_until(uv_loop_t *loop, const bool *flag) {
  for (int i = 0; i < 20000 && !*flag; i++) uv_run(loop, UV_RUN_ONCE);
  assert_true(*flag);
}
