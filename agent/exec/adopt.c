/* Re-adoption after an agent restart (adopt.h): finding a task's live shim in its task dir,
 * and the stand-in plugin that follows it until it ends. */
#define _GNU_SOURCE
#include "agent/exec/adopt.h"

#include "agent/exec/plugin_host.h"
#include "lib/base/procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADOPT_POLL_MS 50
#define ADOPT_SPEC_MAX (1u << 20)

int mu_adoptee_alive(const mu_adoptee *a) { return a->pid > 0 && mu_proc_start_time(a->pid) == a->born; }

/* Reads a whole small file into a NUL-terminated buffer (caller frees). NULL when missing or
 * over max. */
static char *slurp(const char *path, size_t max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return NULL;
  struct stat st;
  char *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= max) buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf != NULL && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (buf != NULL) buf[got] = '\0';
  return buf;
}

static int find_task_dir(const char *spool_dir, const char *task_id, uint32_t attempt, char *ret, size_t cap) {
  char safe[128], prefix[160], work[PATH_MAX];
  size_t n = 0;
  for (const char *p = task_id; *p && n + 1 < sizeof safe; p++) /* as workdir.c names it */
    safe[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
  safe[n] = '\0';
  if (n == 0 || safe[0] == '.') safe[0] = '_';
  snprintf(prefix, sizeof prefix, "%s.%u.", safe, attempt);
  snprintf(work, sizeof work, "%s/work", spool_dir);
  DIR *d = opendir(work);
  int found = -1;
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
    size_t pl = strlen(prefix);
    if (strncmp(de->d_name, prefix, pl) != 0 || strlen(de->d_name) != pl + 6) continue; /* mkdtemp's XXXXXX */
    char shim[PATH_MAX];
    if (snprintf(shim, sizeof shim, "%s/%s/.shim/pid", work, de->d_name) >= (int)sizeof shim) continue;
    if (access(shim, F_OK) != 0) continue;
    snprintf(ret, cap, "%s/%s", work, de->d_name);
    found = 0;
    break;
  }
  if (d != NULL) closedir(d);
  return found;
}

int mu_adopt_probe(const char *spool_dir, const char *task_id, uint32_t attempt, mu_adoptee *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (find_task_dir(spool_dir, task_id, attempt, ret->task_dir, sizeof ret->task_dir) != 0)
    return mu_err_set(err, MU_ENOENT, "no task dir with a shim (a task type or task that is not re-adopted)");
  snprintf(ret->shim_dir, sizeof ret->shim_dir, "%.4000s/.shim", ret->task_dir);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/pid", ret->shim_dir);
  char *pid_text = slurp(path, 128);
  int pid = 0;
  unsigned long long born = 0;
  if (pid_text == NULL || sscanf(pid_text, "%d %llu", &pid, &born) != 2 || pid <= 1) {
    free(pid_text);
    return mu_err_set(err, MU_ENOENT, "shim pid file %s unreadable", path);
  }
  free(pid_text);
  ret->pid = (pid_t)pid;
  ret->born = born;
  if (!mu_adoptee_alive(ret)) return mu_err_set(err, MU_ENOENT, "its shim (pid %d) is gone", pid);
  snprintf(path, sizeof path, "%s/spec.json", ret->shim_dir);
  struct stat st;
  ret->spec_json = slurp(path, ADOPT_SPEC_MAX);
  if (ret->spec_json == NULL || stat(path, &st) != 0) {
    mu_adoptee_free(ret);
    return mu_err_set(err, MU_ENOENT, "shim spec %s unreadable", path);
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  ret->spec_age_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
                     ((int64_t)now.tv_nsec - (int64_t)st.st_mtim.tv_nsec) / 1000000;
  if (ret->spec_age_ms < 0) ret->spec_age_ms = 0;
  return 0;
}

void mu_adoptee_free(mu_adoptee *a) {
  free(a->spec_json);
  a->spec_json = NULL;
}

/* ---- the stand-in plugin ---- */

struct mu_adopt_state {
  mu_adoptee a;
  mu_cgroup *cg;
  int64_t grace_ms;
  muster_timer *poll;
  int fd[2];          /* the shim's stdout / stderr files, -1 until they exist */
  uint64_t off[2];    /* bytes of each already emitted (also by an earlier re-adoption) */
  int read_fd;        /* .shim/read: off[] for the next agent, should this one die too */
  int64_t stop_at_ms; /* KILL of the group when a stop is under way; 0 = none */
  int64_t waited_ms;
  bool done;
};

mu_adopt_state *mu_adopt_state_new(const mu_adoptee *a, mu_cgroup *cg, int64_t grace_ms) {
  mu_adopt_state *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->a = *a;
  s->a.spec_json = NULL; /* the runner keeps its own copy */
  s->cg = cg;
  s->grace_ms = grace_ms > 0 ? grace_ms : 5000;
  s->fd[0] = s->fd[1] = -1;
  char path[PATH_MAX + 16], text[64] = "";
  snprintf(path, sizeof path, "%s/read", a->shim_dir);
  s->read_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  ssize_t n = s->read_fd >= 0 ? pread(s->read_fd, text, sizeof text - 1, 0) : -1;
  unsigned long long o0 = 0, o1 = 0;
  if (n > 0 && sscanf(text, "%llu %llu", &o0, &o1) == 2) {
    s->off[0] = o0;
    s->off[1] = o1;
  }
  return s;
}

/* Emits what the shim's files have past what was read. */
static void pump(muster_task *task, const muster_host_api *host, mu_adopt_state *s) {
  static const char *const names[2] = {"stdout", "stderr"};
  for (int i = 0; i < 2; i++) {
    if (s->fd[i] < 0) {
      char path[PATH_MAX + 16];
      snprintf(path, sizeof path, "%s/%s", s->a.shim_dir, names[i]);
      s->fd[i] = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (s->fd[i] < 0) continue;
    }
    char buf[65536];
    bool moved = false;
    for (int rounds = 0; rounds < 64; rounds++) { /* at most 4 MiB a tick: the loop goes on */
      ssize_t n = pread(s->fd[i], buf, sizeof buf, (off_t)s->off[i]);
      if (n <= 0) break;
      host->emit_output(task, i == 0 ? MUSTER_STDOUT : MUSTER_STDERR, buf, (size_t)n);
      s->off[i] += (uint64_t)n;
      moved = true;
    }
    if (moved && s->read_fd >= 0) {
      char text[64];
      int len =
          snprintf(text, sizeof text, "%llu %llu\n", (unsigned long long)s->off[0], (unsigned long long)s->off[1]);
      if (pwrite(s->read_fd, text, (size_t)len, 0) != len) {
        close(s->read_fd); /* a later agent re-reads from the start: duplicates, never a loss */
        s->read_fd = -1;
      }
    }
  }
}

static void end(muster_task *task, const muster_host_api *host, mu_adopt_state *s, int code, const char *why) {
  if (s->done) return;
  s->done = true;
  pump(task, host, s);
  if (s->poll != NULL) host->timer_stop(task, s->poll);
  s->poll = NULL;
  char msg[300];
  muster_result r = {.state = code == 0 ? MUSTER_STATE_SUCCEEDED : MUSTER_STATE_FAILED, .exit_code = code};
  if (why != NULL) snprintf(msg, sizeof msg, "%s", why);
  else if (code == 137) snprintf(msg, sizeof msg, "container exit 137 (killed; re-adopted after an agent restart)");
  else snprintf(msg, sizeof msg, "exit code %d (re-adopted after an agent restart)", code);
  r.message = msg;
  host->finish(task, &r);
}

static void on_poll(muster_task *task, muster_timer *timer, void *user) {
  (void)timer;
  const muster_host_api *host = mu_host_api();
  mu_adopt_state *s = user;
  pump(task, host, s);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/exit", s->a.shim_dir);
  char *text = slurp(path, 64);
  if (text != NULL) {
    int code = atoi(text);
    free(text);
    end(task, host, s, code, NULL);
    return;
  }
  if (!mu_adoptee_alive(&s->a)) {
    /* the exit file is written before the shim exits: give a rename in flight one more tick */
    s->waited_ms += ADOPT_POLL_MS;
    if (s->waited_ms > 4 * ADOPT_POLL_MS)
      end(task, host, s, -1, "the re-adopted container's shim ended without recording an exit");
    return;
  }
  if (s->stop_at_ms > 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= s->stop_at_ms) {
      /* the grace is over: the whole group, shim included; without a group, the shim (the
       * container's pid 1 has it as its parent-death signal's parent) */
      if (s->cg != NULL) (void)mu_cgroup_kill_all(s->cg);
      else if (mu_adoptee_alive(&s->a)) kill(s->a.pid, SIGKILL);
      s->stop_at_ms = 0;
    }
  }
}

static int adopt_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  mu_adopt_state *s = host->user_data(task);
  if (s == NULL) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "re-adopt: no state");
    return -1;
  }
  host->report_progress(task, -1,
                        "re-adopted after an agent restart: following the running container (output since the restart "
                        "from its shim)");
  int rc = host->timer_start(task, 0, ADOPT_POLL_MS, on_poll, s, &s->poll);
  if (rc != 0) {
    snprintf(errbuf, MUSTER_ERRBUF_SIZE, "re-adopt: timer: %s", strerror(-rc));
    return -1;
  }
  return 0;
}

static void adopt_cancel(muster_task *task, const muster_host_api *host, muster_cancel_reason reason) {
  (void)task;
  (void)host;
  (void)reason;
  mu_adopt_state *s = host->user_data(task);
  if (s == NULL || s->done) return;
  if (mu_adoptee_alive(&s->a)) kill(s->a.pid, SIGTERM); /* the shim forwards the image's stop signal */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  s->stop_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + s->grace_ms;
  /* the poll timer goes on: it reports the exit the stop causes, or kills the group */
}

static void adopt_cleanup(muster_task *task, const muster_host_api *host, void *user) {
  (void)task;
  (void)host;
  mu_adopt_state *s = user;
  if (s == NULL) return;
  for (int i = 0; i < 2; i++)
    if (s->fd[i] >= 0) close(s->fd[i]);
  if (s->read_fd >= 0) close(s->read_fd);
  if (s->cg != NULL) {
    /* what is left of it (the shim between its exit file and its exit, a stopped container):
     * the task's processes never outlive it, and its group goes */
    for (int tries = 0; tries < 100; tries++) {
      (void)mu_cgroup_kill_all(s->cg);
      if (mu_cgroup_remove(s->cg) == 0) break;
      usleep(10000);
    }
    mu_cgroup_free(s->cg);
  }
  free(s);
}

const muster_plugin mu_adopt_plugin = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "re-adopted",
    .version = "1",
    .description = "a task re-adopted from its shim after an agent restart",
    .start = adopt_start,
    .cancel = adopt_cancel,
    .cleanup = adopt_cleanup,
};
