/* The scan facts of `muster policy test --feed` (policy_scan.h). */
#define _GNU_SOURCE
#include "cli/policy_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "lib/imagescan/summary.h"

#define STDERR_KEEP 400

/* The helper's JSON lines: the findings into arr. */
static int parse_lines(char *text, json_t *arr, mu_err *err) {
  bool seen_summary = false;
  for (char *line = text, *next; line != NULL && *line; line = next) {
    next = strchr(line, '\n');
    if (next != NULL) *next++ = '\0';
    if (*line == '\0') continue;
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (kind == NULL) {
      json_decref(o);
      return mu_err_set(err, MU_EIO, "the scanner printed what is not its JSON: %.80s", line);
    }
    if (strcmp(kind, "imageScan") == 0) seen_summary = true;
    if (strcmp(kind, "finding") == 0) json_array_append(arr, o);
    json_decref(o);
  }
  return seen_summary ? 0 : mu_err_set(err, MU_EIO, "the scanner printed no result");
}

int mu_policy_scan(const mu_policy_scan_opts *o, mu_imgscan_summary *ret, size_t *ret_findings, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  *ret_findings = 0;
  char path[PATH_MAX];
  if (mu_cli_scan_helper_path(path, sizeof path) != 0)
    return mu_err_set(err, MU_EIO, "cannot find the scanner helper muster-scan");
  const char *argv[16];
  int n = 0;
  argv[n++] = path;
  argv[n++] = "-q";
  argv[n++] = "-o";
  argv[n++] = "json";
  argv[n++] = "scan";
  argv[n++] = o->ref;
  argv[n++] = "--feed";
  argv[n++] = o->feed;
  if (o->insecure) argv[n++] = "--insecure";
  if (o->ca != NULL) {
    argv[n++] = "--ca";
    argv[n++] = o->ca;
  }
  if (o->platform != NULL) {
    argv[n++] = "--platform";
    argv[n++] = o->platform;
  }
  argv[n] = NULL;
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    int e = errno;
    if (out[0] >= 0) close(out[0]), close(out[1]);
    return mu_err_set(err, MU_EIO, "pipe: %s", strerror(e));
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(errp[1], 2);
    execv(path, (char *const *)argv);
    dprintf(2, "cannot run the scanner helper %s: %s\n", path, strerror(errno));
    _exit(2);
  }
  close(out[1]);
  close(errp[1]);
  if (pid < 0) {
    close(out[0]);
    close(errp[0]);
    return mu_err_set(err, MU_EIO, "fork: %s", strerror(errno));
  }
  /* stderr is small (messages) and read after stdout; a pipe holds 64 KiB of it meanwhile */
  size_t max = o->max_output ? o->max_output : (256u << 20), len = 0, cap = 0;
  char *text = NULL;
  int rc = 0;
  for (;;) {
    if (len + 65536 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 131072;
      char *t = realloc(text, ncap);
      if (t == NULL) {
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        break;
      }
      text = t;
      cap = ncap;
    }
    ssize_t r = read(out[0], text + len, 65536);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
    if (len > max) {
      rc = mu_err_set(err, MU_ENOSPC, "the scanner printed more than %zu bytes", max);
      kill(pid, SIGKILL);
      break;
    }
  }
  close(out[0]);
  char msg[STDERR_KEEP + 1];
  ssize_t m = read(errp[0], msg, STDERR_KEEP);
  msg[m > 0 ? m : 0] = '\0';
  msg[strcspn(msg, "\n")] = '\0';
  close(errp[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  json_t *arr = json_array();
  if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    rc = mu_err_set(err, WIFEXITED(status) && WEXITSTATUS(status) == 2 ? MU_EINVAL : MU_EIO, "%s",
                    msg[0] ? msg : "the scanner failed");
  if (rc == 0 && arr == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0) {
    text[len] = '\0';
    rc = parse_lines(text, arr, err);
  }
  if (rc == 0) {
    rc = mu_scan_summary(arr, (int64_t)time(NULL), ret, err);
    *ret_findings = json_array_size(arr);
  }
  json_decref(arr);
  free(text);
  return rc;
}
