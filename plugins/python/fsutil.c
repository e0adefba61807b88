/* File helpers for the python plugin (fsutil.h): the few blocking file operations its
 * thread-pool work needs, written against plain POSIX calls so they are safe on any thread. */
#define _GNU_SOURCE
#include "plugins/python/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int py_fs_mkdirs(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -ENAMETOOLONG;
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
    *p = c;
    if (c == '\0') break;
  }
  struct stat sb;
  if (stat(buf, &sb) != 0) return -errno;
  if (!S_ISDIR(sb.st_mode)) return -ENOTDIR;
  if (sb.st_uid == geteuid() && (sb.st_mode & 07777) != 0755 && chmod(buf, 0755) != 0) return -errno;
  return 0;
}

int py_fs_walk(const char *path, bool remove, uint64_t *size) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -errno;
  int rc = 0;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (d == NULL) return -errno;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char child[PATH_MAX];
      if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
        rc = -ENAMETOOLONG;
        continue;
      }
      int r = py_fs_walk(child, remove, size);
      if (r != 0) rc = r;
    }
    closedir(d);
    if (remove && rmdir(path) != 0) rc = -errno;
  } else {
    if (size != NULL && S_ISREG(sb.st_mode)) *size += (uint64_t)sb.st_blocks * 512;
    if (remove && unlink(path) != 0) rc = -errno;
  }
  return rc;
}

int py_fs_rmtree(const char *path) { return py_fs_walk(path, true, NULL); }

int py_fs_read_small(const char *path, char *buf, size_t cap, size_t *ret_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t n = 0;
  ssize_t r;
  while (n < cap && (r = read(fd, buf + n, cap - n)) > 0) n += (size_t)r;
  close(fd);
  *ret_len = n;
  return 0;
}

int py_fs_write_file(const char *path, const char *data, size_t len, mode_t mode) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%lx", path, (int)getpid(), (unsigned long)pthread_self()) >= (int)sizeof tmp)
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0) {
      int e = -errno;
      close(fd);
      unlink(tmp);
      return e;
    }
    off += (size_t)w;
  }
  if (fchmod(fd, mode) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    int e = -errno;
    unlink(tmp);
    return e;
  }
  return 0;
}

int py_fs_write_if_changed(const char *path, const char *data, size_t len) {
  char *cur = malloc(len + 1);
  size_t n = 0;
  if (cur != NULL && py_fs_read_small(path, cur, len + 1, &n) == 0 && n == len && memcmp(cur, data, len) == 0) {
    free(cur);
    return 0;
  }
  free(cur);
  return py_fs_write_file(path, data, len, 0644);
}
