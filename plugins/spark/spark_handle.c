/* Durable application handles (spark_handle.h). */
#include "spark_handle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void safe_part(const char *in, char *out, size_t size) {
  size_t n = 0;
  for (const char *p = in; *p && n + 1 < size; p++)
    out[n++] =
        ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
            ? *p
            : '_';
  out[n] = '\0';
}

void mu_spark_handle_path(const char *dir, const char *agent_id, const char *job_id, const char *task_id, char *buf,
                          size_t size) {
  /* readable parts plus a hash of the exact ids, so ids that clean up alike stay apart */
  uint64_t h = 1469598103934665603ull;
  const char *parts[] = {agent_id, job_id, task_id};
  for (int i = 0; i < 3; i++) {
    for (const char *p = parts[i]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  char a[64], j[96], t[96];
  safe_part(agent_id, a, sizeof a);
  safe_part(job_id, j, sizeof j);
  safe_part(task_id, t, sizeof t);
  snprintf(buf, size, "%s/%s.%s.%s.%016llx.json", dir, a, j, t, (unsigned long long)h);
}

static const char *phase_name(mu_spark_h_phase p) {
  return p == MU_SPARK_H_SUBMITTING ? "submitting" : p == MU_SPARK_H_SUBMITTED ? "submitted" : "done";
}

char *mu_spark_handle_json(const mu_spark_handle *h) {
  json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "phase", phase_name(h->phase), "attempt",
                        (int)h->attempt, "kind", h->kind, "app_id", h->app_id, "cluster", h->cluster, "tag", h->tag,
                        "tracking_url", h->tracking_url);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

static void copy(char *dst, size_t size, json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  snprintf(dst, size, "%s", v ? v : "");
}

int mu_spark_handle_parse(const char *text, size_t len, mu_spark_handle *ret) {
  memset(ret, 0, sizeof *ret);
  json_t *o = json_loadb(text, len, 0, NULL);
  if (!json_is_object(o)) {
    json_decref(o);
    return -1;
  }
  const char *ph = json_string_value(json_object_get(o, "phase"));
  ret->phase = ph == NULL                      ? 0
               : strcmp(ph, "submitting") == 0 ? MU_SPARK_H_SUBMITTING
               : strcmp(ph, "submitted") == 0  ? MU_SPARK_H_SUBMITTED
               : strcmp(ph, "done") == 0       ? MU_SPARK_H_DONE
                                               : 0;
  json_int_t at = json_integer_value(json_object_get(o, "attempt"));
  ret->attempt = at > 0 && at < 1000000 ? (unsigned)at : 0;
  copy(ret->kind, sizeof ret->kind, o, "kind");
  copy(ret->app_id, sizeof ret->app_id, o, "app_id");
  copy(ret->cluster, sizeof ret->cluster, o, "cluster");
  copy(ret->tag, sizeof ret->tag, o, "tag");
  copy(ret->tracking_url, sizeof ret->tracking_url, o, "tracking_url");
  json_decref(o);
  return ret->phase == 0 || ret->attempt == 0 ? -1 : 0;
}

int mu_spark_handle_load(const char *path, mu_spark_handle *ret, char *why) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    snprintf(why, 256, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0 || mu_spark_handle_parse(buf, (size_t)n, ret) != 0) {
    snprintf(why, 256, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "not a handle");
    return -1;
  }
  return 1;
}

typedef struct save_req {
  uv_work_t work;
  char *path;
  char *text;
  mu_spark_handle_cb cb;
  void *arg;
  int rc;
  char msg[512];
} save_req;

static void save_work(uv_work_t *w) {
  save_req *r = w->data;
  char tmp[4200], dir[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", r->path);
  snprintf(dir, sizeof dir, "%s", r->path);
  char *slash = strrchr(dir, '/');
  if (slash != NULL) *slash = '\0';
  mkdir(dir, 0700); /* first use; EEXIST is fine */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t len = strlen(r->text);
  if (fd < 0 || write(fd, r->text, len) != (ssize_t)len || fdatasync(fd) != 0) {
    r->rc = -errno;
    snprintf(r->msg, sizeof r->msg, "cannot write %s: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  close(fd);
  if (rename(tmp, r->path) != 0) {
    r->rc = -errno;
    snprintf(r->msg, sizeof r->msg, "cannot rename %s: %s", tmp, strerror(errno));
    return;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

static void save_done(uv_work_t *w, int status) {
  save_req *r = w->data;
  if (status != 0 && r->rc == 0) {
    r->rc = status;
    snprintf(r->msg, sizeof r->msg, "write cancelled");
  }
  r->cb(r->arg, r->rc, r->msg);
  free(r->path);
  free(r->text);
  free(r);
}

int mu_spark_handle_save(uv_loop_t *loop, const char *path, const mu_spark_handle *h, mu_spark_handle_cb cb,
                         void *arg) {
  save_req *r = calloc(1, sizeof *r);
  if (r == NULL) return -ENOMEM;
  r->path = strdup(path);
  r->text = mu_spark_handle_json(h);
  r->cb = cb;
  r->arg = arg;
  r->work.data = r;
  if (r->path == NULL || r->text == NULL || uv_queue_work(loop, &r->work, save_work, save_done) != 0) {
    free(r->path);
    free(r->text);
    free(r);
    return -ENOMEM;
  }
  return 0;
}
