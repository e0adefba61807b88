/* File secrets in memory only (secret_dir.h): a tmpfs per attempt when mounting is allowed, a
 * private directory on a tmpfs that is already there otherwise, and a wipe that overwrites
 * before it unlinks, so the freed pages do not keep the values. */
#define _GNU_SOURCE
#include "agent/exec/secret_dir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/base/log.h"

#define TMPFS_MAGIC_NUMBER 0x01021994
#define MOUNT_SLACK (1u << 20) /* tmpfs size beyond the secrets themselves */

struct mu_secret_dir {
  char *path;
  bool mounted; /* a tmpfs of our own on path */
};

const char *mu_secret_dir_path(const mu_secret_dir *sd) { return sd->path; }

static void safe_name(const char *in, char *out, size_t size) {
  size_t n = 0;
  for (; *in && n + 1 < size; in++)
    out[n++] = (isalnum((unsigned char)*in) || *in == '.' || *in == '-' || *in == '_') ? *in : '_';
  out[n] = '\0';
  if (n == 0 || out[0] == '.') out[0] = '_';
}

/* A tmpfs we may keep secrets on: /dev/shm, else $XDG_RUNTIME_DIR. "" when neither. */
static void memory_root(char *buf, size_t size) {
  struct statfs fs;
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  buf[0] = '\0';
  if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC_NUMBER && access("/dev/shm", W_OK) == 0)
    snprintf(buf, size, "/dev/shm");
  else if (xdg != NULL && xdg[0] == '/' && access(xdg, W_OK) == 0) snprintf(buf, size, "%s", xdg);
}

static void fallback_base(const char *tag, char *buf, size_t size) {
  char root[PATH_MAX], safe[128];
  memory_root(root, sizeof root);
  safe_name(tag, safe, sizeof safe);
  if (root[0] == '\0') buf[0] = '\0';
  else snprintf(buf, size, "%s/muster-secrets-%s", root, safe);
}

/* Mounts a private tmpfs on <task_dir>/.secrets; false when this agent may not mount. */
static bool try_mount(mu_secret_dir *sd, const char *task_dir, size_t bytes, bool chown_to, uid_t uid, gid_t gid) {
  if (geteuid() != 0 || asprintf(&sd->path, "%s/.secrets", task_dir) < 0) {
    sd->path = NULL;
    return false;
  }
  char opts[160];
  snprintf(opts, sizeof opts, "size=%zu,mode=0700,uid=%u,gid=%u", bytes + MOUNT_SLACK,
           (unsigned)(chown_to ? uid : geteuid()), (unsigned)(chown_to ? gid : getegid()));
  if (mkdir(sd->path, 0700) == 0 && mount("tmpfs", sd->path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) == 0) {
    sd->mounted = true;
    return true;
  }
  mu_debug("secrets", "cannot mount a tmpfs on %s (%s); using a directory on a tmpfs instead", sd->path,
           strerror(errno));
  rmdir(sd->path);
  free(sd->path);
  sd->path = NULL;
  return false;
}

/* The shared base directory must be ours and nobody else's to write: /dev/shm is open to all. */
static int own_base(const char *base, mu_err *err) {
  struct stat st;
  if (mkdir(base, 0711) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "secrets: cannot create %s: %s", base, strerror(errno));
  if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
    return mu_err_set(err, MU_EIO,
                      "secrets: %s is not a directory owned by the agent's user; "
                      "refusing to put secrets there",
                      base);
  if ((st.st_mode & 07777) != 0711 && chmod(base, 0711) != 0)
    return mu_err_set(err, MU_EIO, "secrets: cannot chmod %s: %s", base, strerror(errno));
  return 0;
}

int mu_secret_dir_create(const char *task_dir, const char *tag, size_t bytes, bool chown_to, uid_t uid, gid_t gid,
                         mu_secret_dir **ret, mu_err *err) {
  mu_secret_dir *sd = calloc(1, sizeof *sd);
  if (sd == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (try_mount(sd, task_dir, bytes, chown_to, uid, gid)) {
    *ret = sd;
    return 0;
  }
  char base[PATH_MAX], leaf[200];
  fallback_base(tag, base, sizeof base);
  const char *slash = strrchr(task_dir, '/');
  safe_name(slash ? slash + 1 : task_dir, leaf, sizeof leaf);
  int rc = 0;
  if (base[0] == '\0') {
    rc = mu_err_set(err, MU_EIO,
                    "secrets: no tmpfs to keep file secrets on (cannot mount one; "
                    "/dev/shm is not a writable tmpfs and XDG_RUNTIME_DIR is unset)");
  } else {
    rc = own_base(base, err);
    if (rc == 0 && asprintf(&sd->path, "%s/%s.XXXXXX", base, leaf) < 0)
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (rc == 0 && mkdtemp(sd->path) == NULL)
    rc = mu_err_set(err, MU_EIO, "secrets: cannot create %s: %s", sd->path, strerror(errno));
  else if (rc == 0 && chown_to && chown(sd->path, uid, gid) != 0)
    rc = mu_err_set(err, MU_EIO, "secrets: cannot chown %s: %s", sd->path, strerror(errno));
  if (rc != 0) {
    if (sd->path != NULL) rmdir(sd->path);
    free(sd->path);
    free(sd);
    return rc;
  }
  *ret = sd;
  return 0;
}

int mu_secret_dir_write(mu_secret_dir *sd, const char *name, const void *value, size_t len, char **ret_path,
                        mu_err *err) {
  if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL)
    return mu_err_set(err, MU_EINVAL, "secret file name '%s': no '/', not starting with '.'", name);
  char *path = NULL;
  if (asprintf(&path, "%s/%s", sd->path, name) < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  struct stat dir;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  int rc = 0;
  if (fd < 0 || stat(sd->path, &dir) != 0 || fchown(fd, dir.st_uid, dir.st_gid) != 0 ||
      write(fd, value, len) != (ssize_t)len)
    rc = mu_err_set(err, MU_EIO, "secret %s: cannot write %s: %s", name, path, strerror(errno));
  if (fd >= 0) close(fd);
  if (rc != 0) {
    unlink(path);
    free(path);
    return rc;
  }
  *ret_path = path;
  return 0;
}

/* nftw callback: zeroes a regular file's bytes in place, then removes the entry. */
static int wipe_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag == FTW_DP) return rmdir(p) != 0 && errno != ENOENT && errno != EBUSY ? -errno : 0;
  if (flag == FTW_F && S_ISREG(sb->st_mode) && sb->st_size > 0) {
    if ((sb->st_mode & S_IWUSR) == 0) (void)chmod(p, 0600);
    int fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      static const char zeros[4096];
      for (off_t left = sb->st_size; left > 0;) {
        ssize_t n = write(fd, zeros, left < (off_t)sizeof zeros ? (size_t)left : sizeof zeros);
        if (n <= 0) break;
        left -= n;
      }
      close(fd);
    }
  }
  return unlink(p) != 0 && errno != ENOENT ? -errno : 0;
}

static void wipe_tree(const char *path) { (void)nftw(path, wipe_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT); }

void mu_secret_dir_wipe(mu_secret_dir *sd) {
  if (sd == NULL) return;
  wipe_tree(sd->path);
  if (sd->mounted) {
    if (umount2(sd->path, MNT_DETACH) != 0) mu_warn("secrets", "cannot unmount %s: %s", sd->path, strerror(errno));
    rmdir(sd->path);
  }
  free(sd->path);
  free(sd);
}

void mu_secret_dir_sweep(const char *spool_dir, const char *tag) {
  char prefix[PATH_MAX], base[PATH_MAX], line[PATH_MAX + 256], mnt[PATH_MAX], type[64];
  int left = 0;
  snprintf(prefix, sizeof prefix, "%s/work/", spool_dir);
  FILE *f = fopen("/proc/self/mounts", "re");
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    size_t pl = strlen(prefix), ml;
    if (sscanf(line, "%*s %4095s %63s", mnt, type) != 2 || strcmp(type, "tmpfs") != 0) continue;
    ml = strlen(mnt);
    if (strncmp(mnt, prefix, pl) != 0 || ml < 9 || strcmp(mnt + ml - 9, "/.secrets") != 0) continue;
    wipe_tree(mnt);
    if (umount2(mnt, MNT_DETACH) == 0) left++;
  }
  if (f != NULL) fclose(f);
  fallback_base(tag, base, sizeof base);
  struct stat st;
  if (base[0] != '\0' && lstat(base, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) {
    DIR *dir = opendir(base);
    for (struct dirent *e; dir != NULL && (e = readdir(dir)) != NULL;)
      left += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (dir != NULL) closedir(dir);
    wipe_tree(base);
  }
  if (left > 0)
    mu_warn("secrets", "removed file secrets left by an agent that did not stop cleanly (%s)", base[0] ? base : prefix);
}
