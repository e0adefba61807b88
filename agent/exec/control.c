/* Parser for the task control channel (control.h): splits the byte stream into bounded lines
 * and turns each into a progress report, an output param, or a warning. Pure code, no I/O, so
 * the supervisor feeds it from its pipe reader and tests feed it strings. */
#include "agent/exec/control.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/err.h"

bool mu_ctl_key_valid(const char *key) {
  size_t n = 0;
  for (const char *p = key; *p; p++, n++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') return false;
  return n > 0 && n <= MU_CTL_KEY_MAX;
}

static void bad(mu_ctl_line *ret, const char *why, const char *text) {
  ret->kind = MU_CTL_BAD;
  ret->error = why;
  ret->text = text;
}

void mu_ctl_parse_line(char *line, mu_ctl_line *ret) {
  memset(ret, 0, sizeof *ret);
  ret->message = "";
  size_t n = strlen(line);
  if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';
  if (strncmp(line, "progress ", 9) == 0) {
    char *end;
    const char *num = line + 9;
    errno = 0;
    double pct = strtod(num, &end);
    if (end == num || errno != 0 || !isfinite(pct) || pct < 0 || pct > 100 || (*end != '\0' && *end != ' ')) {
      bad(ret, "progress: percent must be a number from 0 to 100", line);
      return;
    }
    while (*end == ' ') end++;
    ret->kind = MU_CTL_PROGRESS;
    ret->percent = pct;
    ret->message = end;
    return;
  }
  if (strncmp(line, "param ", 6) == 0) {
    char *key = line + 6;
    char *eq = strchr(key, '=');
    if (eq == NULL) {
      bad(ret, "param: expected key=value", line);
      return;
    }
    *eq = '\0';
    if (!mu_ctl_key_valid(key)) {
      *eq = '=';
      bad(ret, "param: key must be 1-128 characters of [A-Za-z0-9_.-]", line);
      return;
    }
    ret->kind = MU_CTL_PARAM;
    ret->key = key;
    ret->value = eq + 1;
    return;
  }
  bad(ret, "unknown command (expected \"progress N [msg]\" or \"param key=value\")", line);
}

int mu_ctl_reader_init(mu_ctl_reader *r, size_t max_line, uint32_t max_lines) {
  memset(r, 0, sizeof *r);
  r->cap = max_line + 1;
  r->max_lines = max_lines;
  r->buf = malloc(r->cap);
  return r->buf ? 0 : MU_ENOMEM;
}

void mu_ctl_reader_free(mu_ctl_reader *r) {
  free(r->buf);
  r->buf = NULL;
}

static void emit(mu_ctl_reader *r, mu_ctl_cb cb, void *arg) {
  r->buf[r->len] = '\0';
  bool overlong = r->overlong;
  r->overlong = false;
  size_t len = r->len;
  r->len = 0;
  if (r->gave_up) return;
  if (!overlong && (len == 0 || r->buf[0] == '#')) return;
  if (++r->lines > r->max_lines) {
    r->gave_up = true;
    mu_ctl_line l = {
        .kind = MU_CTL_BAD, .error = "too many control lines; the rest is ignored", .text = "", .message = ""};
    cb(arg, &l);
    return;
  }
  mu_ctl_line l;
  if (overlong) {
    memset(&l, 0, sizeof l);
    l.message = "";
    bad(&l, "line too long; ignored", r->buf);
  } else {
    mu_ctl_parse_line(r->buf, &l);
  }
  cb(arg, &l);
}

void mu_ctl_reader_feed(mu_ctl_reader *r, const char *data, size_t len, mu_ctl_cb cb, void *arg) {
  for (size_t i = 0; i < len; i++) {
    char c = data[i];
    if (c == '\n') {
      emit(r, cb, arg);
      continue;
    }
    if (r->len + 1 < r->cap) {
      r->buf[r->len++] = (c == '\0') ? ' ' : c;
    } else {
      r->overlong = true; /* keep the head for the warning, drop the rest */
    }
  }
}

void mu_ctl_reader_finish(mu_ctl_reader *r, mu_ctl_cb cb, void *arg) {
  if (r->len > 0 || r->overlong) emit(r, cb, arg);
}
