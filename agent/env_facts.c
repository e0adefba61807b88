/* Gathers the environment facts `muster doctor` judges (env_facts.h). */
#define _GNU_SOURCE
#include "agent/env_facts.h"

#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/exec/runas.h"

static void add(char (*items)[400], char **ptrs, size_t *n, const char *fmt, const char *a, const char *b) {
  if (*n >= MU_ENV_FACTS_MAX) return;
  snprintf(items[*n], sizeof items[*n], fmt, a, b);
  ptrs[*n] = items[*n];
  (*n)++;
}

static void check_run_as(mu_env_facts *f, const char *run_as, const char *host) {
  if (run_as == NULL || run_as[0] == '\0') return;
  snprintf(f->run_as[0], sizeof f->run_as[0], "%s", run_as);
  f->run_as_ptrs[0] = f->run_as[0];
  f->n_run_as = 1;
  mu_runas ra;
  mu_err err = {0};
  if (mu_runas_resolve(run_as, host, &ra, &err) != 0 || mu_runas_check(&ra, &err) != 0)
    add(f->run_as_missing, f->run_as_missing_ptrs, &f->n_run_as_missing, "%s: %s", run_as, err.msg);
}

/* Sums the blocks of regular files under the directory fd dfd (closed here), at most
 * *budget entries and 16 levels deep. */
static uint64_t dir_bytes(int dfd, size_t *budget, int depth) {
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return 0;
  }
  uint64_t sum = 0;
  struct dirent *e;
  while (*budget > 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    (*budget)--;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) sum += (uint64_t)st.st_blocks * 512;
    if (S_ISDIR(st.st_mode) && depth < 16) {
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) sum += dir_bytes(sub, budget, depth + 1);
    }
  }
  closedir(d);
  return sum;
}

/* A cache dir the plugin can use: writable, or not there yet under a writable ancestor (the
 * plugin creates it with its parents on first use). */
static bool dir_usable(const char *dir) {
  if (access(dir, W_OK | X_OK) == 0) return true;
  if (errno != ENOENT) return false;
  char path[sizeof((mu_env_facts *)0)->python_cache_dir];
  snprintf(path, sizeof path, "%s", dir);
  for (;;) {
    char *slash = strrchr(path, '/');
    if (slash == NULL) return false;
    if (slash == path) {
      path[1] = '\0';
    } else {
      *slash = '\0';
    }
    if (access(path, F_OK) == 0) return access(path, W_OK | X_OK) == 0;
    if (errno != ENOENT || slash == path) return false;
  }
}

static void check_python(mu_env_facts *f, const mu_plugin_info *pi) {
  void *h = dlopen(pi->path, RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return;
  const char *(*fn)(void) = (const char *(*)(void))dlsym(h, "muster_python_cache_dir");
  const char *dir = fn ? fn() : NULL;
  if (dir != NULL) snprintf(f->python_cache_dir, sizeof f->python_cache_dir, "%s", dir);
  dlclose(h);
  if (f->python_cache_dir[0] == '\0') return;
  f->python_cache_writable = dir_usable(f->python_cache_dir);
  size_t budget = MU_ENV_CACHE_WALK_MAX;
  int dfd = open(f->python_cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) f->python_cache_bytes = dir_bytes(dfd, &budget, 0);
}

static bool fs_supported(const char *name) {
  FILE *fp = fopen("/proc/filesystems", "r");
  if (fp == NULL) return false;
  char line[128];
  bool found = false;
  while (!found && fgets(line, sizeof line, fp) != NULL) {
    char *tab = strrchr(line, '\t');
    const char *fs = tab ? tab + 1 : line;
    found = strncmp(fs, name, strlen(name)) == 0 && (fs[strlen(name)] == '\n' || fs[strlen(name)] == '\0');
  }
  fclose(fp);
  return found;
}

/* What plugins/container needs: its muster-container helper (MUSTER_CONTAINER_HELPER or
 * beside the .so), overlayfs for the rootfs, and root for the mount/pid namespaces. */
static void check_container(mu_env_facts *f, const mu_plugin_info *pi) {
  f->container_plugin = true;
  char helper[1024];
  const char *env = getenv("MUSTER_CONTAINER_HELPER");
  if (env != NULL && env[0] != '\0') {
    snprintf(helper, sizeof helper, "%s", env);
  } else {
    const char *slash = strrchr(pi->path, '/');
    int len = slash ? (int)(slash - pi->path) : 1;
    snprintf(helper, sizeof helper, "%.*s/muster-container", len, slash ? pi->path : ".");
  }
  if (access(helper, X_OK) != 0)
    add(f->container_missing, f->container_missing_ptrs, &f->n_container_missing,
        "helper: %s is not there or not executable%s", helper,
        " (install muster-container beside the plugin or set MUSTER_CONTAINER_HELPER)");
  if (!fs_supported("overlay"))
    add(f->container_missing, f->container_missing_ptrs, &f->n_container_missing, "overlay: %s%s",
        "the kernel has no overlay filesystem", " (modprobe overlay; add it to /etc/modules-load.d)");
  if (geteuid() != 0)
    add(f->container_missing, f->container_missing_ptrs, &f->n_container_missing, "namespaces: %s%s",
        "the agent is not root", ", so it cannot create the mount and pid namespaces of a container (run it as root)");
}

void mu_env_facts_gather(mu_env_facts *f, const char *run_as, const char *host, const mu_plugin_host *plugins) {
  memset(f, 0, sizeof *f);
  check_run_as(f, run_as, host);
  size_t n = plugins ? mu_plugin_host_count(plugins) : 0;
  for (size_t i = 0; i < n; i++) {
    const mu_plugin_info *pi = mu_plugin_host_info(plugins, i);
    if (strcmp(pi->type, "python") == 0) check_python(f, pi);
    if (strcmp(pi->type, "container") == 0) check_container(f, pi);
  }
}
