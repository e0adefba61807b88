/* Fuzzes what the console parses from a request (request.h): the path (routes, ids, task
 * names), the Authorization header, and each query value. The input is newline-separated:
 * method, path, Authorization, then query values (selector, state, tail, limit, after).
 * Properties: a routed id is within its bound and never "." or ".."; a bearer token is
 * within MU_CONSOLE_TOKEN_MAX and in its alphabet; a parsed number is within its max. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/console/request.h"

#define FIELDS 8

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "console_request_fuzz: %s\n", what);
    abort();
  }
}

static int dotty(const char *s) { return strcmp(s, ".") == 0 || strcmp(s, "..") == 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (buf == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  const char *f[FIELDS] = {0};
  char *p = buf;
  for (int i = 0; i < FIELDS && p != NULL; i++) {
    f[i] = p;
    p = strchr(p, '\n');
    if (p != NULL) *p++ = '\0';
  }
  mu_console_route r;
  char msg[128];
  int st = mu_console_route_parse(f[0], f[1], &r, msg, sizeof msg);
  check(st == 200 || st == 400 || st == 404 || st == 405 || st == 414, "status");
  if (st == 200) {
    check(strlen(r.job_id) <= MU_CONSOLE_ID_MAX && !dotty(r.job_id), "job id");
    check(strlen(r.host) <= MU_CONSOLE_ID_MAX && !dotty(r.host), "host");
    check(strlen(r.task) <= MU_CONSOLE_TASK_MAX && !dotty(r.task), "task");
    if (r.kind == MU_CONSOLE_API_JOB || r.kind == MU_CONSOLE_API_JOB_EVENTS)
      check(r.job_id[0] != '\0' && strchr(r.job_id, '/') == NULL, "job route without id");
    if (r.kind == MU_CONSOLE_API_TASK_LOG)
      check(r.host[0] != '\0' && r.task[0] != '\0' && strchr(r.host, '/') == NULL, "log route");
    if (r.kind == MU_CONSOLE_STATIC)
      check(strchr(r.static_name, '/') == NULL && r.static_name[0] != '.', "static name");
  }
  char tok[MU_CONSOLE_TOKEN_MAX + 1];
  int a = mu_console_bearer(f[2], tok, sizeof tok);
  check(a >= -1 && a <= 1, "bearer verdict");
  if (a == 1) {
    check(tok[0] != '\0' && strlen(tok) <= MU_CONSOLE_TOKEN_MAX, "token bound");
    for (const char *t = tok; *t; t++) check(*t > ' ' && *t < 0x7f, "token byte");
  }
  char sel[MU_CONSOLE_SELECTOR_MAX + 1];
  if (mu_console_param_selector(f[3], sel, sizeof sel) == 0)
    check(strlen(sel) < MU_CONSOLE_SELECTOR_MAX, "selector bound");
  int state;
  if (mu_console_param_job_state(f[4], &state) == 0) check((state >= 0 && state <= 5) || state == 20, "state");
  uint64_t v;
  if (mu_console_param_uint(f[5], 7, 65536, &v) == 0) check(v <= 65536, "tail bound");
  if (mu_console_param_uint(f[6], 1, 1000, &v) == 0) check(v <= 1000, "limit bound");
  char id[MU_CONSOLE_ID_MAX + 1];
  if (mu_console_param_id(f[7], id, sizeof id) == 0) check(!dotty(id) && strchr(id, '/') == NULL, "after id");
  free(buf);
  return 0;
}
