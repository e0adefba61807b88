/* Per-task cgroups (v2 or v1): finding the agent's own group, creating one leaf per supervised
 * process with its limits, reading its accounting, killing what is left in it and removing it.
 * The process joins its leaf itself, before exec, through muster-exec (exec_helper.c), so no
 * fork can slip out between spawn and join. */
#include "agent/exec/cgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const v1_names[MU_CG_COUNT] = {"memory", "pids", "cpu", "cpuacct"};

struct mu_cgroup {
  mu_cgroup_mode mode;
  char v2_dir[PATH_MAX];
  char v1_dir[MU_CG_COUNT][PATH_MAX]; /* "" when that controller is not used */
  char procs[MU_CG_COUNT][PATH_MAX];
  int n_procs;
};

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int rc = (n == (ssize_t)len) ? 0 : (n < 0 ? -errno : MU_EIO);
  close(fd);
  return rc;
}

static int read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, cap - 1);
  int saved = errno;
  close(fd);
  if (n < 0) return -saved;
  buf[n] = '\0';
  return (int)n;
}

static int64_t read_i64(const char *path) {
  char buf[64];
  if (read_file(path, buf, sizeof buf) <= 0) return -1;
  return strtoll(buf, NULL, 10);
}

/* Finds "key value" in a flat-keyed stats file. */
static int64_t read_keyed(const char *path, const char *key) {
  char buf[8192];
  if (read_file(path, buf, sizeof buf) <= 0) return -1;
  size_t klen = strlen(key);
  for (char *line = buf; line != NULL && *line != '\0';) {
    char *nl = strchr(line, '\n');
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ') return strtoll(line + klen + 1, NULL, 10);
    line = nl ? nl + 1 : NULL;
  }
  return -1;
}

/* Sums "key=value" over the device lines of a nested-keyed file (v2 io.stat: "8:0 rbytes=1
 * wbytes=2 ..."); -1 when the file is unreadable, 0 when it has no devices. */
static int64_t sum_nested(const char *path, const char *key) {
  char buf[8192];
  if (read_file(path, buf, sizeof buf) < 0) return -1;
  size_t klen = strlen(key);
  int64_t sum = 0;
  for (char *f = strstr(buf, key); f != NULL; f = strstr(f + klen, key))
    if ((f == buf || f[-1] == ' ') && f[klen] == '=') sum += strtoll(f + klen + 1, NULL, 10);
  return sum;
}

static int mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
  return 0;
}

/* Reads our own group path for a v1 controller (or "" for the v2 line) from /proc/self/cgroup. */
static int own_path(const char *controller, char *ret, size_t cap, char *ret_mountdir, size_t mcap) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) return -errno;
  char line[1024];
  int rc = MU_ENOENT;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) continue;
    *c2 = '\0';
    const char *list = c1 + 1;
    const char *path = c2 + 1;
    bool match = false;
    if (controller == NULL) {
      match = (strcmp(line, "0") == 0 && *list == '\0');
    } else {
      char copy[256];
      snprintf(copy, sizeof copy, "%s", list);
      for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (strcmp(tok, controller) == 0) match = true;
    }
    if (!match) continue;
    snprintf(ret, cap, "%s", strcmp(path, "/") == 0 ? "" : path);
    if (ret_mountdir != NULL) snprintf(ret_mountdir, mcap, "%s", list);
    rc = 0;
    break;
  }
  fclose(f);
  return rc;
}

static bool v2_usable(const char *fs_root, const char *name, char *ret_parent, size_t cap) {
  char path[PATH_MAX], buf[512], own[PATH_MAX];
  snprintf(path, sizeof path, "%s/cgroup.controllers", fs_root);
  if (read_file(path, buf, sizeof buf) <= 0) return false;
  if (strstr(buf, "memory") == NULL || strstr(buf, "pids") == NULL) return false;
  if (own_path(NULL, own, sizeof own, NULL, 0) != 0) return false;
  char own_dir[PATH_MAX];
  snprintf(own_dir, sizeof own_dir, "%s%s", fs_root, own);
  snprintf(ret_parent, cap, "%s/%s", own_dir, name);
  if (mkdir_p(ret_parent) != 0) return false;
  /* Delegate controllers down to our parent and its children. The write on our own group can
   * fail when it holds processes (the no-internal-process rule); the parent's must work. */
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", own_dir);
  (void)write_file(path, "+memory +pids +cpu");
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", ret_parent);
  if (write_file(path, "+memory +pids +cpu") != 0 && write_file(path, "+memory +pids") != 0) return false;
  return true;
}

int mu_cgroup_root_detect(const char *fs_root, const char *name, mu_cgroup_root *ret) {
  memset(ret, 0, sizeof *ret);
  if (fs_root == NULL) fs_root = "/sys/fs/cgroup";
  if (name == NULL) name = "muster";
  if (v2_usable(fs_root, name, ret->v2_parent, sizeof ret->v2_parent)) {
    ret->mode = MU_CGROUP_V2;
    return 0;
  }
  ret->v2_parent[0] = '\0';
  for (int i = 0; i < MU_CG_COUNT; i++) {
    char own[PATH_MAX], mountdir[256], parent[PATH_MAX], probe[PATH_MAX];
    if (own_path(v1_names[i], own, sizeof own, mountdir, sizeof mountdir) != 0) continue;
    snprintf(parent, sizeof parent, "%s/%s%s/%s", fs_root, mountdir, own, name);
    if (mkdir_p(parent) != 0) continue;
    /* Probe: a sub-group must be creatable, not just the parent directory visible. */
    snprintf(probe, sizeof probe, "%s/.probe-%d", parent, (int)getpid());
    if (mkdir(probe, 0755) != 0 && errno != EEXIST) continue;
    rmdir(probe);
    snprintf(ret->v1_parent[i], sizeof ret->v1_parent[i], "%s", parent);
    ret->mode = MU_CGROUP_V1;
  }
  return 0;
}

bool mu_cgroup_root_has(const mu_cgroup_root *root, int controller) {
  if (root == NULL) return false;
  if (root->mode == MU_CGROUP_V2) return true;
  if (root->mode == MU_CGROUP_V1) return root->v1_parent[controller][0] != '\0';
  return false;
}

static int set_limit(const char *dir, const char *file, const char *value, mu_err *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int rc = write_file(path, value);
  if (rc != 0) return mu_err_set(err, MU_EIO, "cgroup: cannot write \"%s\" to %s: %s", value, path, strerror(-rc));
  return 0;
}

static int create_v2(mu_cgroup *cg, const mu_cgroup_root *root, const char *leaf, const mu_cgroup_limits *lim,
                     mu_err *err) {
  char v[64];
  snprintf(cg->v2_dir, sizeof cg->v2_dir, "%s/%s", root->v2_parent, leaf);
  if (mkdir(cg->v2_dir, 0755) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "cgroup: cannot create %s: %s", cg->v2_dir, strerror(errno));
  if (lim->memory_bytes > 0) {
    snprintf(v, sizeof v, "%llu", (unsigned long long)lim->memory_bytes);
    if (set_limit(cg->v2_dir, "memory.max", v, err) != 0) return err->code;
    (void)set_limit(cg->v2_dir, "memory.swap.max", "0", NULL);
  }
  if (lim->pids > 0) {
    snprintf(v, sizeof v, "%u", lim->pids);
    if (set_limit(cg->v2_dir, "pids.max", v, err) != 0) return err->code;
  }
  if (lim->cpu_cores > 0) {
    snprintf(v, sizeof v, "%lld 100000", (long long)(lim->cpu_cores * 100000 + 0.5));
    if (set_limit(cg->v2_dir, "cpu.max", v, err) != 0) return err->code;
  }
  snprintf(cg->procs[0], sizeof cg->procs[0], "%s/cgroup.procs", cg->v2_dir);
  cg->n_procs = 1;
  return 0;
}

static int create_v1(mu_cgroup *cg, const mu_cgroup_root *root, const char *leaf, const mu_cgroup_limits *lim,
                     mu_err *err) {
  char v[64];
  bool tracked = root->v1_parent[MU_CG_MEMORY][0] != '\0' || root->v1_parent[MU_CG_CPUACCT][0] != '\0';
  for (int i = 0; i < MU_CG_COUNT; i++) {
    if (root->v1_parent[i][0] == '\0') continue;
    /* pids and cpu only limit: without their limit a leaf there would be two more mkdir,
     * cgroup.procs write and rmdir per task for nothing. memory (peak, OOM kills) and cpuacct
     * (CPU when the helper could not report) always, and either one holds every process for
     * kill-all (when neither is there, every controller is used). */
    if (tracked && ((i == MU_CG_PIDS && lim->pids == 0) || (i == MU_CG_CPU && lim->cpu_cores <= 0))) continue;
    snprintf(cg->v1_dir[i], sizeof cg->v1_dir[i], "%s/%s", root->v1_parent[i], leaf);
    if (mkdir(cg->v1_dir[i], 0755) != 0 && errno != EEXIST)
      return mu_err_set(err, MU_EIO, "cgroup: cannot create %s: %s", cg->v1_dir[i], strerror(errno));
    int k = cg->n_procs++;
    size_t dl = strlen(cg->v1_dir[i]);
    if (dl + sizeof "/cgroup.procs" > PATH_MAX)
      return mu_err_set(err, MU_EINVAL, "cgroup: path too long: %s", cg->v1_dir[i]);
    memcpy(cg->procs[k], cg->v1_dir[i], dl);
    memcpy(cg->procs[k] + dl, "/cgroup.procs", sizeof "/cgroup.procs");
  }
  const char *mem = cg->v1_dir[MU_CG_MEMORY];
  if (lim->memory_bytes > 0 && mem[0] != '\0') {
    snprintf(v, sizeof v, "%llu", (unsigned long long)lim->memory_bytes);
    if (set_limit(mem, "memory.limit_in_bytes", v, err) != 0) return err->code;
    (void)set_limit(mem, "memory.memsw.limit_in_bytes", v, NULL); /* absent without swap accounting */
  }
  if (lim->pids > 0 && cg->v1_dir[MU_CG_PIDS][0] != '\0') {
    snprintf(v, sizeof v, "%u", lim->pids);
    if (set_limit(cg->v1_dir[MU_CG_PIDS], "pids.max", v, err) != 0) return err->code;
  }
  if (lim->cpu_cores > 0 && cg->v1_dir[MU_CG_CPU][0] != '\0') {
    if (set_limit(cg->v1_dir[MU_CG_CPU], "cpu.cfs_period_us", "100000", err) != 0) return err->code;
    snprintf(v, sizeof v, "%lld", (long long)(lim->cpu_cores * 100000 + 0.5));
    if (set_limit(cg->v1_dir[MU_CG_CPU], "cpu.cfs_quota_us", v, err) != 0) return err->code;
  }
  return 0;
}

int mu_cgroup_create(const mu_cgroup_root *root, const char *leaf, const mu_cgroup_limits *limits, mu_cgroup **ret,
                     mu_err *err) {
  if (root == NULL || root->mode == MU_CGROUP_NONE)
    return mu_err_set(err, MU_ENOTSUP, "cgroup: no writable cgroup hierarchy");
  if (leaf == NULL || *leaf == '\0' || leaf[0] == '.' || strlen(leaf) > 200)
    return mu_err_set(err, MU_EINVAL, "cgroup: bad group name \"%s\"", leaf ? leaf : "");
  for (const char *p = leaf; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
      return mu_err_set(err, MU_EINVAL, "cgroup: bad group name \"%s\"", leaf);
  mu_cgroup *cg = calloc(1, sizeof *cg);
  if (cg == NULL) return mu_err_set(err, MU_ENOMEM, "cgroup: out of memory");
  cg->mode = root->mode;
  mu_cgroup_limits none = {0};
  int rc = root->mode == MU_CGROUP_V2 ? create_v2(cg, root, leaf, limits ? limits : &none, err)
                                      : create_v1(cg, root, leaf, limits ? limits : &none, err);
  if (rc != 0) goto fail;
  *ret = cg;
  return 0;
fail:
  (void)mu_cgroup_remove(cg);
  mu_cgroup_free(cg);
  return rc;
}

int mu_cgroup_procs_files(const mu_cgroup *cg, const char **ret_paths, int max) {
  int n = 0;
  for (int i = 0; i < cg->n_procs && n < max; i++) ret_paths[n++] = cg->procs[i];
  return n;
}

static int kill_listed(const char *procs_path) {
  char buf[65536];
  if (read_file(procs_path, buf, sizeof buf) <= 0) return 0;
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
    pid_t pid = (pid_t)strtol(tok, NULL, 10);
    if (pid > 1 && kill(pid, SIGKILL) == 0) n++;
  }
  return n;
}

int mu_cgroup_kill_all(mu_cgroup *cg) {
  int n = 0;
  if (cg->mode == MU_CGROUP_V2) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cgroup.kill", cg->v2_dir);
    if (write_file(path, "1") == 0) return 1;
  }
  for (int i = 0; i < cg->n_procs; i++) n += kill_listed(cg->procs[i]);
  return n;
}

int mu_cgroup_stats_read(const mu_cgroup *cg, mu_cgroup_stats *ret) {
  char path[PATH_MAX];
  ret->user_us = ret->sys_us = ret->memory_peak_bytes = ret->oom_kills = -1;
  ret->io_read_bytes = ret->io_write_bytes = -1; /* v1: no blkio hierarchy joined */
  if (cg->mode == MU_CGROUP_V2) {
    snprintf(path, sizeof path, "%s/cpu.stat", cg->v2_dir);
    ret->user_us = read_keyed(path, "user_usec");
    ret->sys_us = read_keyed(path, "system_usec");
    snprintf(path, sizeof path, "%s/memory.peak", cg->v2_dir);
    ret->memory_peak_bytes = read_i64(path);
    snprintf(path, sizeof path, "%s/memory.events", cg->v2_dir);
    ret->oom_kills = read_keyed(path, "oom_kill");
    snprintf(path, sizeof path, "%s/io.stat", cg->v2_dir);
    ret->io_read_bytes = sum_nested(path, "rbytes");
    ret->io_write_bytes = sum_nested(path, "wbytes");
    return 0;
  }
  const char *acct = cg->v1_dir[MU_CG_CPUACCT];
  if (acct[0] != '\0') {
    snprintf(path, sizeof path, "%s/cpuacct.usage_user", acct);
    int64_t u = read_i64(path);
    snprintf(path, sizeof path, "%s/cpuacct.usage_sys", acct);
    int64_t s = read_i64(path);
    ret->user_us = u >= 0 ? u / 1000 : -1;
    ret->sys_us = s >= 0 ? s / 1000 : -1;
  }
  const char *mem = cg->v1_dir[MU_CG_MEMORY];
  if (mem[0] != '\0') {
    snprintf(path, sizeof path, "%s/memory.max_usage_in_bytes", mem);
    ret->memory_peak_bytes = read_i64(path);
    snprintf(path, sizeof path, "%s/memory.oom_control", mem);
    ret->oom_kills = read_keyed(path, "oom_kill");
    if (ret->oom_kills < 0) {
      snprintf(path, sizeof path, "%s/memory.failcnt", mem);
      ret->oom_kills = read_i64(path) > 0 ? 1 : 0; /* older kernels: hitting the limit at all */
    }
  }
  return 0;
}

int mu_cgroup_remove(mu_cgroup *cg) {
  int rc = 0;
  if (cg->mode == MU_CGROUP_V2) {
    if (cg->v2_dir[0] != '\0' && rmdir(cg->v2_dir) != 0 && errno != ENOENT) rc = MU_EAGAIN;
    return rc;
  }
  for (int i = 0; i < MU_CG_COUNT; i++) {
    if (cg->v1_dir[i][0] == '\0') continue;
    if (rmdir(cg->v1_dir[i]) != 0 && errno != ENOENT) rc = MU_EAGAIN;
  }
  return rc;
}

void mu_cgroup_free(mu_cgroup *cg) { free(cg); }

bool mu_cgroup_is_empty(const mu_cgroup *cg) {
  char buf[64];
  for (int i = 0; i < cg->n_procs; i++)
    if (read_file(cg->procs[i], buf, sizeof buf) != 0) return false; /* a pid, or unreadable */
  return true;
}

int mu_cgroup_reset_counters(mu_cgroup *cg) {
  if (cg->mode != MU_CGROUP_V1) return MU_ENOTSUP;
  const char *mem = cg->v1_dir[MU_CG_MEMORY], *acct = cg->v1_dir[MU_CG_CPUACCT];
  if (mem[0] != '\0' && set_limit(mem, "memory.max_usage_in_bytes", "0", NULL) != 0) return MU_EIO;
  if (acct[0] != '\0' && set_limit(acct, "cpuacct.usage", "0", NULL) != 0) return MU_EIO;
  return 0;
}

/* Kills what dir's cgroup.procs lists, recursing into sub-groups first (depth-bounded). */
static int kill_tree(const char *dir, int depth) {
  int n = 0;
  DIR *d = depth < 8 ? opendir(dir) : NULL;
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    char sub[PATH_MAX];
    if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) < (int)sizeof sub) n += kill_tree(sub, depth + 1);
  }
  if (d != NULL) closedir(d);
  char path[PATH_MAX], buf[65536];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  if (read_file(path, buf, sizeof buf) <= 0) return n;
  for (char *save = NULL, *tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
    long pid = strtol(tok, NULL, 10);
    if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0) n++;
  }
  return n;
}

/* Removes dir's sub-groups and then dir; false when one is left. */
static bool remove_tree(const char *dir, int depth) {
  bool ok = true;
  DIR *d = depth < 8 ? opendir(dir) : NULL;
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    char sub[PATH_MAX];
    if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) < (int)sizeof sub) ok &= remove_tree(sub, depth + 1);
  }
  if (d != NULL) closedir(d);
  return (rmdir(dir) == 0 || errno == ENOENT) && ok;
}

/* True when the group dir (not its sub-groups) lists one of pids. */
static bool holds_any(const char *dir, const pid_t *pids, size_t n) {
  if (n == 0) return false;
  char path[PATH_MAX], buf[65536];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path) return false;
  if (read_file(path, buf, sizeof buf) <= 0) return false;
  for (char *save = NULL, *tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
    pid_t pid = (pid_t)strtol(tok, NULL, 10);
    for (size_t i = 0; i < n; i++)
      if (pids[i] == pid) return true;
  }
  return false;
}

int mu_cgroup_sweep(const mu_cgroup_root *root, int *ret_groups, int *ret_procs) {
  return mu_cgroup_sweep_except(root, NULL, 0, ret_groups, ret_procs);
}

int mu_cgroup_sweep_except(const mu_cgroup_root *root, const pid_t *keep, size_t n_keep, int *ret_groups,
                           int *ret_procs) {
  const char *parents[1 + MU_CG_COUNT];
  int np = 0, groups = 0, procs = 0;
  if (root != NULL && root->mode == MU_CGROUP_V2) parents[np++] = root->v2_parent;
  for (int i = 0; root != NULL && root->mode == MU_CGROUP_V1 && i < MU_CG_COUNT; i++)
    if (root->v1_parent[i][0] != '\0') parents[np++] = root->v1_parent[i];
  bool left = false;
  for (int k = 0; k < np; k++) {
    DIR *d = opendir(parents[k]);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
      if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
      char leaf[PATH_MAX];
      if (snprintf(leaf, sizeof leaf, "%s/%s", parents[k], de->d_name) >= (int)sizeof leaf) continue;
      if (holds_any(leaf, keep, n_keep)) continue; /* a re-adopted task's group */
      procs += kill_tree(leaf, 0);
      bool gone = false;
      for (int tries = 0; tries < 100 && !(gone = remove_tree(leaf, 0)); tries++) {
        if (tries % 10 == 9) procs += kill_tree(leaf, 0); /* forked while being killed */
        usleep(10000);
      }
      groups += gone;
      left |= !gone;
    }
    if (d != NULL) closedir(d);
  }
  if (ret_groups != NULL) *ret_groups = groups;
  if (ret_procs != NULL) *ret_procs = procs;
  return left ? MU_EAGAIN : 0;
}

int mu_cgroup_find(const mu_cgroup_root *root, pid_t pid, mu_cgroup **ret, mu_err *err) {
  const char *parents[1 + MU_CG_COUNT];
  int np = 0;
  if (root != NULL && root->mode == MU_CGROUP_V2) parents[np++] = root->v2_parent;
  for (int i = 0; root != NULL && root->mode == MU_CGROUP_V1 && i < MU_CG_COUNT; i++)
    if (root->v1_parent[i][0] != '\0') parents[np++] = root->v1_parent[i];
  char leaf[256] = "";
  for (int k = 0; k < np && leaf[0] == '\0'; k++) {
    DIR *d = opendir(parents[k]);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
      char dir[PATH_MAX];
      if (de->d_type != DT_DIR || de->d_name[0] == '.' || strlen(de->d_name) >= sizeof leaf) continue;
      if (snprintf(dir, sizeof dir, "%s/%s", parents[k], de->d_name) >= (int)sizeof dir) continue;
      if (holds_any(dir, &pid, 1)) {
        snprintf(leaf, sizeof leaf, "%s", de->d_name);
        break;
      }
    }
    if (d != NULL) closedir(d);
  }
  if (leaf[0] == '\0') return mu_err_set(err, MU_ENOENT, "cgroup: process %d is in no group of this agent", (int)pid);
  mu_cgroup *cg = calloc(1, sizeof *cg);
  if (cg == NULL) return mu_err_set(err, MU_ENOMEM, "cgroup: out of memory");
  cg->mode = root->mode;
  struct stat st;
  if (root->mode == MU_CGROUP_V2) {
    snprintf(cg->v2_dir, sizeof cg->v2_dir, "%s/%s", root->v2_parent, leaf);
    snprintf(cg->procs[cg->n_procs++], sizeof cg->procs[0], "%s/cgroup.procs", cg->v2_dir);
  }
  for (int i = 0; root->mode == MU_CGROUP_V1 && i < MU_CG_COUNT; i++) {
    if (root->v1_parent[i][0] == '\0') continue;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", root->v1_parent[i], leaf) >= (int)sizeof dir) continue;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    memcpy(cg->v1_dir[i], dir, sizeof dir);
    snprintf(cg->procs[cg->n_procs++], sizeof cg->procs[0], "%.4000s/cgroup.procs", dir);
  }
  *ret = cg;
  return 0;
}
