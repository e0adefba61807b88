/* The console's request parsing (request.h): routes, the bearer token and query values. Pure
 * functions over bounded strings; the fuzz target feeds them arbitrary bytes. */
#include "controlplane/console/request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "muster/v1/job.pb-c.h"

static int has_control(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
  return 0;
}

/* Copies the segment [s, s+n) into out (size bytes) when it is a usable id: non-empty, not
 * "." or "..", within size-1 bytes. */
static int copy_id(const char *s, size_t n, char *out, size_t size) {
  if (n == 0 || n >= size) return -1;
  if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return -1;
  memcpy(out, s, n);
  out[n] = '\0';
  return 0;
}

static int bad(char *msg, size_t size, int code, const char *why) {
  snprintf(msg, size, "%s", why);
  return code;
}

/* /api/v1/jobs/ID[/events | /logs/HOST/TASK] with rest pointing after "/api/v1/jobs/". */
static int route_job(const char *rest, mu_console_route *r, char *msg, size_t size) {
  const char *slash = strchr(rest, '/');
  size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
  if (copy_id(rest, n, r->job_id, sizeof r->job_id) != 0)
    return bad(msg, size, MU_CONSOLE_HTTP_BAD_REQUEST, "bad job id in path");
  if (slash == NULL || slash[1] == '\0') {
    r->kind = MU_CONSOLE_API_JOB;
    return MU_CONSOLE_HTTP_OK;
  }
  const char *sub = slash + 1;
  if (strcmp(sub, "events") == 0) {
    r->kind = MU_CONSOLE_API_JOB_EVENTS;
    return MU_CONSOLE_HTTP_OK;
  }
  if (strncmp(sub, "logs/", 5) == 0) {
    const char *host = sub + 5;
    const char *hs = strchr(host, '/');
    if (hs == NULL || copy_id(host, (size_t)(hs - host), r->host, sizeof r->host) != 0)
      return bad(msg, size, MU_CONSOLE_HTTP_BAD_REQUEST, "expected /api/v1/jobs/ID/logs/HOST/TASK");
    /* the task name is the rest: names may hold '/' once decoded */
    if (copy_id(hs + 1, strlen(hs + 1), r->task, sizeof r->task) != 0)
      return bad(msg, size, MU_CONSOLE_HTTP_BAD_REQUEST, "bad task name in path");
    r->kind = MU_CONSOLE_API_TASK_LOG;
    return MU_CONSOLE_HTTP_OK;
  }
  r->kind = MU_CONSOLE_API_UNKNOWN;
  return MU_CONSOLE_HTTP_OK;
}

int mu_console_route_parse(const char *method, const char *path, mu_console_route *r, char *msg, size_t size) {
  memset(r, 0, sizeof *r);
  if (size > 0) msg[0] = '\0';
  if (method == NULL || path == NULL) return bad(msg, size, MU_CONSOLE_HTTP_BAD_REQUEST, "no method or path");
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return bad(msg, size, MU_CONSOLE_HTTP_METHOD, "the console is read-only: GET only");
  if (strlen(path) > MU_CONSOLE_PATH_MAX) return bad(msg, size, MU_CONSOLE_HTTP_URI_TOO_LONG, "path too long");
  if (path[0] != '/' || has_control(path)) return bad(msg, size, MU_CONSOLE_HTTP_BAD_REQUEST, "bad path");
  static const char api[] = "/api/";
  if (strncmp(path, api, sizeof api - 1) == 0 || strcmp(path, "/api") == 0) {
    r->kind = MU_CONSOLE_API_UNKNOWN;
    if (strcmp(path, "/api/v1/whoami") == 0) r->kind = MU_CONSOLE_API_WHOAMI;
    else if (strcmp(path, "/api/v1/agents") == 0) r->kind = MU_CONSOLE_API_AGENTS;
    else if (strcmp(path, "/api/v1/jobs") == 0) r->kind = MU_CONSOLE_API_JOBS;
    else if (strcmp(path, "/api/v1/schedules") == 0) r->kind = MU_CONSOLE_API_SCHEDULES;
    else if (strncmp(path, "/api/v1/jobs/", 13) == 0) return route_job(path + 13, r, msg, size);
    return MU_CONSOLE_HTTP_OK;
  }
  static const char st[] = "/static/";
  if (strncmp(path, st, sizeof st - 1) == 0) {
    const char *name = path + sizeof st - 1;
    size_t n = strlen(name);
    /* embedded files have flat names: no '/', nothing hidden */
    if (n == 0 || n >= sizeof r->static_name || strchr(name, '/') != NULL || name[0] == '.')
      return MU_CONSOLE_HTTP_OK; /* NOT_FOUND */
    memcpy(r->static_name, name, n + 1);
    r->kind = MU_CONSOLE_STATIC;
    return MU_CONSOLE_HTTP_OK;
  }
  r->kind = MU_CONSOLE_PAGE;
  if (strcmp(path, "/") == 0 || strcmp(path, "/login") == 0 || strcmp(path, "/jobs") == 0 ||
      strcmp(path, "/agents") == 0 || strcmp(path, "/schedules") == 0)
    return MU_CONSOLE_HTTP_OK;
  if (strncmp(path, "/jobs/", 6) == 0) {
    const char *id = path + 6;
    size_t n = strlen(id);
    if (n > 0 && id[n - 1] == '/') n--;
    if (memchr(id, '/', n) == NULL && copy_id(id, n, r->job_id, sizeof r->job_id) == 0) return MU_CONSOLE_HTTP_OK;
    r->job_id[0] = '\0';
  }
  r->page_is_404 = 1; /* the page renders "not found" for it */
  return MU_CONSOLE_HTTP_OK;
}

int mu_console_bearer(const char *header, char *out, size_t size) {
  if (size > 0) out[0] = '\0';
  if (header == NULL) return 0;
  while (*header == ' ' || *header == '\t') header++;
  if (*header == '\0') return 0;
  if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t')) return -1;
  const char *t = header + 7;
  while (*t == ' ' || *t == '\t') t++;
  size_t n = 0;
  while (t[n] != '\0' && t[n] != ' ' && t[n] != '\t') {
    char c = t[n];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
             c == '.' || c == '=' || c == '+' || c == '/';
    if (!ok || n >= MU_CONSOLE_TOKEN_MAX) return -1;
    n++;
  }
  for (const char *e = t + n; *e != '\0'; e++)
    if (*e != ' ' && *e != '\t') return -1; /* two words after the scheme */
  if (n == 0 || n >= size) return -1;
  memcpy(out, t, n);
  out[n] = '\0';
  return 1;
}

int mu_console_param_uint(const char *value, uint64_t def, uint64_t max, uint64_t *ret) {
  if (value == NULL) {
    *ret = def;
    return 0;
  }
  if (value[0] == '\0') return -1;
  uint64_t v = 0;
  for (const char *p = value; *p != '\0'; p++) {
    if (*p < '0' || *p > '9') return -1;
    uint64_t digit = (uint64_t)(*p - '0');
    if (v > (UINT64_MAX - digit) / 10) return -1;
    v = v * 10 + digit;
    if (v > max) return -1;
  }
  *ret = v;
  return 0;
}

int mu_console_param_job_state(const char *value, int *ret) {
  static const char *const names[][2] = {
      {"pending", "JOB_PENDING"}, {"running", "JOB_RUNNING"},     {"succeeded", "JOB_SUCCEEDED"},
      {"failed", "JOB_FAILED"},   {"cancelled", "JOB_CANCELLED"},
  };
  if (value == NULL || value[0] == '\0' || strcmp(value, "all") == 0) {
    *ret = 0;
    return 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(value, names[i][0]) == 0 || strcmp(value, names[i][1]) == 0) {
      *ret = (int)i + 1;
      return 0;
    }
  if (strcasecmp(value, "held") == 0 || strcmp(value, "JOB_HELD") == 0) {
    *ret = MUSTER__V1__JOB_STATE__JOB_HELD;
    return 0;
  }
  return -1;
}

int mu_console_param_selector(const char *value, char *out, size_t size) {
  if (size == 0) return -1;
  out[0] = '\0';
  if (value == NULL) return 0;
  size_t n = strlen(value);
  if (n >= MU_CONSOLE_SELECTOR_MAX || n >= size || has_control(value)) return -1;
  memcpy(out, value, n + 1);
  return 0;
}

int mu_console_param_id(const char *value, char *out, size_t size) {
  if (size == 0) return -1;
  out[0] = '\0';
  if (value == NULL) return 0;
  if (has_control(value) || strchr(value, '/') != NULL) return -1;
  return copy_id(value, strlen(value), out, size);
}
