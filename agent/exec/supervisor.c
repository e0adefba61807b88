/* The task supervisor (supervisor.h): spawns muster-exec (spawn.c) in a new session with five
 * pipes (stdin, stdout, stderr, control fd 3, report fd 4), enforces the timeout with TERM, grace,
 * KILL to the whole process group and cgroup, and once the process is gone and its pipes are
 * drained, gathers metrics, removes the cgroup and calls on_exit. Output bounds and the control
 * and report pipes are read in output.c. */
#include "agent/exec/supervisor.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/exec/supervisor_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

static void on_handle_closed(uv_handle_t *h) {
  mu_proc *p = h->data;
  if (--p->open_handles == 0) {
    if (p->xs != NULL) mu_exec_server_forget(p->xs, p);
    mu_proc_close_fds(p->xs_child);
    mu_ctl_reader_free(&p->ctl);
    if (p->cg != NULL) mu_cgroup_free(p->cg);
    free(p->stdin_copy);
    free(p);
  }
}

static void close_handle(mu_proc *p, uv_handle_t *h) {
  if (h->data == p && !uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void close_all(mu_proc *p) {
  for (int i = 0; i < MU_PIPE_COUNT; i++) close_handle(p, (uv_handle_t *)&p->pipes[i]);
  close_handle(p, (uv_handle_t *)&p->timeout_timer);
  close_handle(p, (uv_handle_t *)&p->grace_timer);
  close_handle(p, (uv_handle_t *)&p->drain_timer);
  close_handle(p, (uv_handle_t *)&p->rmdir_timer);
  if (p->spawned) close_handle(p, (uv_handle_t *)&p->sigchld);
}

void mu_proc_kill_group(mu_proc *p, int sig) {
  p->last_sig = sig; /* sent again when an exec server reports the pid later */
  if (p->pid > 0) (void)kill(-p->pid, sig);
  if (sig == SIGKILL && p->cg != NULL) (void)mu_cgroup_kill_all(p->cg);
}

static const char *reason_text(mu_kill_reason r) {
  switch (r) {
    case MU_KILL_TIMEOUT: return "timed out";
    case MU_KILL_CANCEL: return "cancelled";
    case MU_KILL_REQUEST: return "stopped by the agent";
    default: return "";
  }
}

static void build_result(mu_proc *p, mu_proc_result *r) {
  memset(r, 0, sizeof *r);
  r->exit_code = p->term_signal != 0 ? -1 : (int)p->exit_status;
  r->signal = p->term_signal;
  r->killed_for = p->killed_for;
  r->wall_ms = p->end_ms - p->start_ms;
  r->user_cpu_us = r->sys_cpu_us = r->max_rss_bytes = r->cgroup_memory_peak_bytes = -1;
  r->io_read_bytes = r->io_write_bytes = -1;
  r->output_bytes = p->out_bytes;
  r->dropped_bytes = p->dropped;
  r->limits_via = p->limits_via;
  if (p->have_report) {
    r->user_cpu_us = p->rep_user_us;
    r->sys_cpu_us = p->rep_sys_us;
    r->max_rss_bytes = p->rep_maxrss_kb * 1024;
    if (p->rep_in_blocks >= 0) r->io_read_bytes = p->rep_in_blocks * 512;
    if (p->rep_out_blocks >= 0) r->io_write_bytes = p->rep_out_blocks * 512;
  }
  if (p->have_cg_stats) {
    if (r->user_cpu_us < 0) r->user_cpu_us = p->cg_stats.user_us;
    if (r->sys_cpu_us < 0) r->sys_cpu_us = p->cg_stats.sys_us;
    r->cgroup_memory_peak_bytes = p->cg_stats.memory_peak_bytes;
    /* the cgroup also counts what children left running wrote; rusage only waited ones */
    if (p->cg_stats.io_read_bytes >= 0) r->io_read_bytes = p->cg_stats.io_read_bytes;
    if (p->cg_stats.io_write_bytes >= 0) r->io_write_bytes = p->cg_stats.io_write_bytes;
    /* killed by the OOM killer: the task itself, or a child of a shell that then exited
     * 128 + SIGKILL */
    r->oom_killed = p->cg_stats.oom_kills > 0 && p->limits.memory_bytes > 0 &&
                    (r->signal == SIGKILL || r->exit_code == 128 + SIGKILL);
  }
  size_t n = 0;
  char *m = r->message;
  size_t cap = sizeof r->message;
  /* A timeout kept by the caller (no timeout_ms here: the runner's task deadline) is the
   * caller's to word, with the limit it knows; here it would read "after 0s". */
  bool own_words = p->killed_for != MU_KILL_TIMEOUT || p->timeout_ms > 0;
  if (p->killed_for != MU_KILL_NONE && own_words) {
    n += snprintf(m + n, cap - n, "%s", reason_text(p->killed_for));
    if (p->killed_for == MU_KILL_TIMEOUT) n += snprintf(m + n, cap - n, " after %.3gs", (double)p->timeout_ms / 1000.0);
    n += snprintf(m + n, cap - n, "; ");
  }
  if (p->xs_refused != 0)
    n += snprintf(m + n, cap - n, "muster-exec --server could not start it: %s; ", strerror(p->xs_refused));
  if (p->xs_lost) n += snprintf(m + n, cap - n, "the exec server died while it ran; ");
  if (n < cap) {
    if (r->signal != 0) n += snprintf(m + n, cap - n, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
    else n += snprintf(m + n, cap - n, "exit code %d", r->exit_code);
  }
  if (n < cap && r->oom_killed)
    n += snprintf(m + n, cap - n, ": memory limit of %llu bytes exceeded", (unsigned long long)p->limits.memory_bytes);
  if (n < cap && p->dropped > 0)
    n += snprintf(m + n, cap - n, "; output limit of %llu bytes hit, %llu bytes dropped",
                  (unsigned long long)p->out_limit, (unsigned long long)p->dropped);
}

static void finish(mu_proc *p) {
  mu_proc_result r;
  build_result(p, &r);
  if (p->cb.on_exit != NULL) p->cb.on_exit(p, p->arg, &r);
  close_all(p);
}

/* Removes the cgroup; killed processes may take a moment to leave it, so retry briefly. */
static void cgroup_cleanup(mu_proc *p);

static void on_rmdir_timer(uv_timer_t *t) { cgroup_cleanup(t->data); }

static void cgroup_cleanup(mu_proc *p) {
  if (p->cg == NULL) {
    finish(p);
    return;
  }
  if (!p->have_cg_stats) {
    p->have_cg_stats = mu_cgroup_stats_read(p->cg, &p->cg_stats) == 0;
  }
  int rc = p->cg_pool != NULL ? mu_cgroup_pool_give(p->cg_pool, p->cg) : mu_cgroup_remove(p->cg);
  if (rc == MU_EAGAIN && p->rmdir_tries++ < 100) {
    (void)mu_cgroup_kill_all(p->cg);
    uv_timer_start(&p->rmdir_timer, on_rmdir_timer, 20, 0);
    return;
  }
  if (p->rmdir_tries > 100) mu_warn("supervisor", "pid %d: cgroup not removable; left behind", (int)p->pid);
  if (p->cg_pool != NULL) {
    if (rc != 0) mu_cgroup_pool_drop(p->cg_pool, p->cg);
    p->cg = NULL; /* the pool's again */
  }
  finish(p);
}

void mu_proc_maybe_done(mu_proc *p) {
  if (!p->exited || p->done) return;
  for (int i = MU_PIPE_STDOUT; i < MU_PIPE_COUNT; i++)
    if (!p->pipe_eof[i]) return;
  p->done = true;
  uv_timer_stop(&p->drain_timer);
  cgroup_cleanup(p);
}

static void on_drain_timeout(uv_timer_t *t) {
  mu_proc *p = t->data;
  /* Something outside our reach (a process that left the group) still holds a pipe. */
  for (int i = MU_PIPE_STDOUT; i < MU_PIPE_COUNT; i++) mu_proc_pipe_eof(p, i);
  mu_proc_maybe_done(p);
}

void mu_proc_exited(mu_proc *p, int64_t exit_status, int term_signal) {
  p->exited = true;
  p->end_ms = mu_mono_ms();
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  uv_timer_stop(&p->timeout_timer);
  uv_timer_stop(&p->grace_timer);
  /* Whatever the main process left behind in its group or cgroup ends with it. */
  mu_proc_kill_group(p, SIGKILL);
  uv_timer_start(&p->drain_timer, on_drain_timeout, (uint64_t)p->drain_ms, 0);
  mu_proc_maybe_done(p);
}

/* ---- replies from the exec server (exec_server.c) ---- */

void mu_proc_xs_started(mu_proc *p, pid_t pid) {
  mu_proc_close_fds(p->xs_child); /* the server holds the task's ends now */
  p->pid = pid;
  /* a kill asked for before the pid was known */
  if (p->last_sig != 0) mu_proc_kill_group(p, p->last_sig);
}

void mu_proc_xs_exited(mu_proc *p, int code, int sig, const mu_xs_usage *u) {
  mu_proc_close_fds(p->xs_child);
  p->have_report = true;
  p->rep_user_us = u->utime_us;
  p->rep_sys_us = u->stime_us;
  p->rep_maxrss_kb = u->maxrss_kb;
  p->rep_in_blocks = u->inblock;
  p->rep_out_blocks = u->oublock;
  mu_proc_exited(p, sig != 0 ? 0 : code, sig);
}

void mu_proc_xs_refused(mu_proc *p, int err) {
  mu_proc_close_fds(p->xs_child); /* the pipes then read EOF */
  p->xs_refused = err != 0 ? err : EIO;
  mu_proc_exited(p, 126, 0);
}

void mu_proc_xs_lost(mu_proc *p) {
  mu_proc_close_fds(p->xs_child);
  p->xs_lost = true;
  mu_proc_kill_group(p, SIGKILL); /* and its cgroup, in mu_proc_exited */
  mu_proc_exited(p, 0, SIGKILL);
}

static void on_grace(uv_timer_t *t) {
  mu_proc *p = t->data;
  mu_proc_kill_group(p, SIGKILL);
}

void mu_proc_kill(mu_proc *p, mu_kill_reason reason) {
  if (p == NULL || p->exited) return;
  if (p->killed_for == MU_KILL_NONE) p->killed_for = reason;
  if (p->killing) return;
  p->killing = true;
  mu_proc_kill_group(p, SIGTERM);
  uv_timer_start(&p->grace_timer, on_grace, (uint64_t)p->grace_ms, 0);
}

static void on_timeout(uv_timer_t *t) { mu_proc_kill(t->data, MU_KILL_TIMEOUT); }

pid_t mu_proc_pid(const mu_proc *p) { return p->pid; }

/* What the helper does before exec: cgroups to join, rlimits for what no cgroup covers, the
 * run-as user. Sets p->limits_via. */
static void plan_launch(mu_proc *p, const mu_proc_opts *o, mu_launch *l) {
  memset(l, 0, sizeof *l);
  l->rl_as = l->rl_nproc = l->rl_cpu = -1;
  l->uid = l->gid = -1;
  if (p->cg != NULL) l->n_join = mu_cgroup_procs_files(p->cg, l->joins, MU_CG_COUNT);
  const mu_cgroup_root *root = p->cg != NULL ? o->cgroup_root : NULL;
  if (o->limits.memory_bytes > 0 && !mu_cgroup_root_has(root, MU_CG_MEMORY)) l->rl_as = (int64_t)o->limits.memory_bytes;
  if (o->limits.pids > 0 && !mu_cgroup_root_has(root, MU_CG_PIDS)) l->rl_nproc = o->limits.pids;
  int64_t window = o->limit_window_ms > 0 ? o->limit_window_ms : o->timeout_ms;
  /* No quota without a cgroup: cap total CPU seconds at what the quota allows in the timeout. */
  if (o->limits.cpu_cores > 0 && window > 0 && !mu_cgroup_root_has(root, MU_CG_CPU))
    l->rl_cpu = (int64_t)ceil((double)window / 1000.0 * o->limits.cpu_cores) + 1;
  if (o->run_as.set && geteuid() == 0) {
    l->uid = (int32_t)o->run_as.uid;
    l->gid = (int32_t)o->run_as.gid;
  }
  bool used_rlimit = l->rl_as >= 0 || l->rl_nproc >= 0 || l->rl_cpu >= 0;
  if (p->cg != NULL)
    p->limits_via = used_rlimit ? "cgroup+rlimit" : (o->cgroup_root->mode == MU_CGROUP_V2 ? "cgroup-v2" : "cgroup-v1");
  else p->limits_via = used_rlimit ? "rlimit" : "none";
}

/* The one-shot muster-exec's argv for l, with the report fd. */
static int build_helper_argv(const mu_proc_opts *o, const mu_launch *l, char ***ret, mu_err *err) {
  size_t n_user = 0, n_extra = 0;
  while (o->argv[n_user] != NULL) n_user++;
  while (o->helper_args != NULL && o->helper_args[n_extra] != NULL) n_extra++;
  size_t cap = n_user + n_extra + 32;
  char **a = calloc(cap, sizeof *a);
  if (a == NULL) return mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
  size_t n = 0;
  a[n++] = strdup(o->helper_path);
  for (int i = 0; i < l->n_join; i++) {
    a[n++] = strdup("--join");
    a[n++] = strdup(l->joins[i]);
  }
  char v[64];
  const struct {
    const char *name;
    int64_t v;
  } rl[] = {{"as", l->rl_as}, {"nproc", l->rl_nproc}, {"cpu", l->rl_cpu}};
  for (size_t i = 0; i < sizeof rl / sizeof *rl; i++) {
    if (rl[i].v < 0) continue;
    snprintf(v, sizeof v, "%s=%lld", rl[i].name, (long long)rl[i].v);
    a[n++] = strdup("--rlimit");
    a[n++] = strdup(v);
  }
  if (l->uid >= 0) {
    a[n++] = strdup("--gid");
    snprintf(v, sizeof v, "%d", (int)l->gid);
    a[n++] = strdup(v);
    a[n++] = strdup("--uid");
    snprintf(v, sizeof v, "%d", (int)l->uid);
    a[n++] = strdup(v);
  }
  a[n++] = strdup("--report-fd");
  snprintf(v, sizeof v, "%d", MU_PIPE_REPORT);
  a[n++] = strdup(v);
  for (size_t i = 0; i < n_extra; i++) a[n++] = strdup(o->helper_args[i]);
  a[n++] = strdup("--");
  for (size_t i = 0; i < n_user; i++) a[n++] = strdup(o->argv[i]);
  for (size_t i = 0; i < n; i++) {
    if (a[i] == NULL) {
      mu_strv_free(a);
      return mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
    }
  }
  *ret = a;
  return 0;
}

static char **build_env(const char *const *env) {
  size_t n = 0;
  while (env != NULL && env[n] != NULL) n++;
  char **e = calloc(n + 2, sizeof *e);
  if (e == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(env[i], "MUSTER_CONTROL=", 15) == 0) continue;
    e[k++] = strdup(env[i]);
  }
  char v[32];
  snprintf(v, sizeof v, "MUSTER_CONTROL=%d", MU_PROC_CONTROL_FD);
  e[k++] = strdup(v);
  for (size_t i = 0; i < k; i++)
    if (e[i] == NULL) {
      mu_strv_free(e);
      return NULL;
    }
  return e;
}

void mu_strv_free(char **v) {
  if (v == NULL) return;
  for (size_t i = 0; v[i] != NULL; i++) free(v[i]);
  free(v);
}

static void on_stdin_written(uv_write_t *req, int status) {
  mu_proc *p = req->data;
  (void)status; /* EPIPE: the task did not read its stdin; not our failure */
  close_handle(p, (uv_handle_t *)&p->pipes[MU_PIPE_STDIN]);
}

int mu_proc_spawn(uv_loop_t *loop, const mu_proc_opts *o, mu_proc **ret, mu_err *err) {
  if (o == NULL || o->helper_path == NULL || o->argv == NULL || o->argv[0] == NULL || o->cwd == NULL ||
      o->cb.on_exit == NULL)
    return mu_err_set(err, MU_EINVAL, "supervisor: helper_path, argv, cwd and on_exit are required");
  bool want_cg = o->cgroup_root != NULL && o->cgroup_root->mode != MU_CGROUP_NONE;
  if (want_cg && o->cgroup_leaf == NULL)
    return mu_err_set(err, MU_EINVAL, "supervisor: cgroup_leaf is required with a cgroup root");
  if (mu_runas_check(&o->run_as, err) != 0) return err->code;

  mu_proc *p = calloc(1, sizeof *p);
  if (p == NULL) return mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
  char **hargv = NULL, **env = NULL;
  int rc;
  p->loop = loop;
  for (int i = 0; i < MU_PIPE_COUNT; i++) p->xs_child[i] = -1;
  p->cb = o->cb;
  p->arg = o->arg;
  p->limits = o->limits;
  p->timeout_ms = o->timeout_ms;
  p->grace_ms = o->grace_ms > 0 ? o->grace_ms : 5000;
  p->drain_ms = o->drain_ms > 0 ? o->drain_ms : 2000;
  p->out_limit = o->output_limit;
  rc = mu_ctl_reader_init(&p->ctl, o->control_max_line > 0 ? o->control_max_line : 4096,
                          o->control_max_lines > 0 ? o->control_max_lines : 10000);
  if (rc != 0) {
    free(p);
    return mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
  }
  /* From here on every handle is initialised, so failure paths can close_all(). */
  for (int i = 0; i < MU_PIPE_COUNT; i++) {
    uv_pipe_init(loop, &p->pipes[i], 0);
    p->pipes[i].data = p;
    p->open_handles++;
  }
  uv_timer_t *timers[] = {&p->timeout_timer, &p->grace_timer, &p->drain_timer, &p->rmdir_timer};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = p;
    p->open_handles++;
  }
  if (o->stdin_data != NULL && o->stdin_len > 0) {
    p->stdin_copy = malloc(o->stdin_len);
    if (p->stdin_copy == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
      goto fail;
    }
    memcpy(p->stdin_copy, o->stdin_data, o->stdin_len);
    p->stdin_len = o->stdin_len;
  }
  if (want_cg) {
    bool no_limits = o->limits.memory_bytes == 0 && o->limits.pids == 0 && o->limits.cpu_cores <= 0;
    if (o->cgroup_pool != NULL && no_limits) {
      rc = mu_cgroup_pool_take(o->cgroup_pool, &p->cg, err);
      if (rc == 0) p->cg_pool = o->cgroup_pool;
    } else {
      rc = mu_cgroup_create(o->cgroup_root, o->cgroup_leaf, &o->limits, &p->cg, err);
    }
    if (rc != 0) goto fail;
  }
  mu_launch l;
  plan_launch(p, o, &l);
  env = build_env(o->env);
  if (env == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "supervisor: out of memory");
    goto fail;
  }

  p->start_ms = mu_mono_ms();
  /* Through the exec server when there is one and it takes the request; else the one-shot
   * helper. A task with helper options (a sandbox: muster-exec's --sb-*, sandbox_enter.h)
   * always takes the one-shot helper, which is what sets those up. */
  bool plain = o->helper_args == NULL || o->helper_args[0] == NULL;
  if (plain && o->exec_server != NULL && mu_proc_spawn_via_server(p, o->exec_server, &l, o->argv, env, o->cwd) == 0) {
    mu_strv_free(env);
    goto started;
  }
  rc = build_helper_argv(o, &l, &hargv, err);
  if (rc != 0) goto fail;
  rc = mu_proc_spawn_helper(p, o->helper_path, hargv, env, o->cwd);
  if (rc != 0) {
    rc = mu_err_set(err, rc == -ENOENT ? MU_ENOENT : MU_EIO, "supervisor: cannot start %s: %s", o->helper_path,
                    strerror(-rc));
    goto fail;
  }
  mu_strv_free(hargv);
  mu_strv_free(env);

started:
  mu_proc_start_reading(p);
  if (p->stdin_copy != NULL) {
    uv_buf_t b = uv_buf_init(p->stdin_copy, (unsigned)p->stdin_len);
    p->wreq.data = p;
    if (uv_write(&p->wreq, (uv_stream_t *)&p->pipes[MU_PIPE_STDIN], &b, 1, on_stdin_written) != 0)
      close_handle(p, (uv_handle_t *)&p->pipes[MU_PIPE_STDIN]);
  }
  if (o->timeout_ms > 0) uv_timer_start(&p->timeout_timer, on_timeout, (uint64_t)o->timeout_ms, 0);
  *ret = p;
  return 0;
fail:
  mu_strv_free(hargv);
  mu_strv_free(env);
  if (p->cg != NULL && p->cg_pool != NULL) {
    if (mu_cgroup_pool_give(p->cg_pool, p->cg) != 0) mu_cgroup_pool_drop(p->cg_pool, p->cg);
    p->cg = NULL;
  } else if (p->cg != NULL) {
    (void)mu_cgroup_remove(p->cg);
  }
  p->cb.on_exit = NULL;
  close_all(p);
  return rc;
}
