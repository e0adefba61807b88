/* Task directories: fresh per attempt, owned by the task's user, removed off-loop. */
#define _GNU_SOURCE
#include "agent/exec/workdir.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path, mode_t mode) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -errno;
  return 0;
}

int mu_workdir_create(const char *spool_dir, const char *task_id, uint32_t attempt, bool chown_to, uid_t uid, gid_t gid,
                      char **ret_path, mu_err *err) {
  char base[PATH_MAX], safe[128];
  size_t n = 0;
  for (const char *p = task_id; *p && n + 1 < sizeof safe; p++)
    safe[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
  safe[n] = '\0';
  if (n == 0 || safe[0] == '.') safe[0] = '_';
  snprintf(base, sizeof base, "%s/work", spool_dir);
  int rc;
  char *path = NULL;
  if (asprintf(&path, "%s/%s.%u.XXXXXX", base, safe, attempt) < 0)
    return mu_err_set(err, MU_ENOMEM, "workdir: out of memory");
  size_t plen = strlen(path);
  /* The base exists after the first task: make it (and its parents) only when missing. */
  bool made = mkdtemp(path) != NULL;
  if (!made && errno == ENOENT) {
    rc = mkdir_p(base, 0711);
    if (rc != 0) {
      free(path);
      return mu_err_set(err, MU_EIO, "workdir: cannot create %s: %s", base, strerror(-rc));
    }
    memcpy(path + plen - 6, "XXXXXX", 6);
    made = mkdtemp(path) != NULL;
  }
  if (!made) {
    rc = mu_err_set(err, MU_EIO, "workdir: cannot create %s: %s", path, strerror(errno));
    free(path);
    return rc;
  }
  if (chown_to && chown(path, uid, gid) != 0) {
    rc = mu_err_set(err, MU_EIO, "workdir: cannot chown %s to %u:%u: %s", path, (unsigned)uid, (unsigned)gid,
                    strerror(errno));
    rmdir(path);
    free(path);
    return rc;
  }
  *ret_path = path;
  return 0;
}

typedef struct rm_work {
  uv_work_t req;
  char *path;
  int status;
  void (*cb)(void *, int);
  void *arg;
} rm_work;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  int rc = (flag == FTW_DP) ? rmdir(p) : unlink(p);
  return rc != 0 && errno != ENOENT ? -errno : 0;
}

static void rm_run(uv_work_t *req) {
  rm_work *w = req->data;
  w->status = nftw(w->path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  if (w->status > 0) w->status = 0;
}

static void rm_done(uv_work_t *req, int status) {
  rm_work *w = req->data;
  (void)status;
  if (w->cb != NULL) w->cb(w->arg, w->status);
  free(w->path);
  free(w);
}

int mu_workdir_remove(uv_loop_t *loop, char *path, void (*cb)(void *arg, int status), void *arg) {
  rm_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    free(path);
    return MU_ENOMEM;
  }
  w->req.data = w;
  w->path = path;
  w->cb = cb;
  w->arg = arg;
  int rc = uv_queue_work(loop, &w->req, rm_run, rm_done);
  if (rc != 0) {
    free(path);
    free(w);
  }
  return rc;
}
