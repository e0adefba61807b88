/* A schedule's rules (plan.h): parsing them from a ScheduleSpec, and the pure decisions the
 * leader makes with them (due slots, catch-up, overlap, jitter). */
#include "controlplane/schedules/plan.h"

#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"

#define DUE_BUDGET 100000 /* slots looked at per call; the rest waits for the next one */

int mu_schedule_name_check(const char *name, mu_err *err) {
  size_t n = strlen(name);
  if (n == 0) return mu_err_set(err, MU_EINVAL, "schedule name: required");
  if (n > MU_SCHEDULE_NAME_MAX)
    return mu_err_set(err, MU_EINVAL, "schedule name '%.64s...': longer than %d characters", name,
                      MU_SCHEDULE_NAME_MAX);
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return mu_err_set(err, MU_EINVAL, "schedule name '%s' is not allowed", name);
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return mu_err_set(err, MU_EINVAL, "schedule name '%s': character %zu ('%c') is not one of A-Z a-z 0-9 . _ -",
                        name, i + 1, (c >= 32 && c < 127) ? c : '?');
  }
  return 0;
}

static int set_default(char **field, const char *value, mu_err *err) {
  if ((*field)[0] != '\0') return 0;
  char *s = strdup(value);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (*field != protobuf_c_empty_string) free(*field);
  *field = s;
  return 0;
}

static int parse_overlap(const char *s, mu_overlap *ret, mu_err *err) {
  if (strcmp(s, "skip") == 0) *ret = MU_OVERLAP_SKIP;
  else if (strcmp(s, "queue") == 0) *ret = MU_OVERLAP_QUEUE;
  else if (strcmp(s, "cancel-previous") == 0) *ret = MU_OVERLAP_CANCEL_PREVIOUS;
  else return mu_err_set(err, MU_EINVAL, "overlap: '%s' is not one of skip, queue, cancel-previous", s);
  return 0;
}

static int parse_catch_up(const char *s, mu_catch_up *ret, mu_err *err) {
  if (strcmp(s, "none") == 0) *ret = MU_CATCH_UP_NONE;
  else if (strcmp(s, "latest") == 0) *ret = MU_CATCH_UP_LATEST;
  else if (strcmp(s, "all") == 0) *ret = MU_CATCH_UP_ALL;
  else return mu_err_set(err, MU_EINVAL, "catch-up: '%s' is not one of none, latest, all", s);
  return 0;
}

static int parse_span(const char *what, const char *text, int64_t max_ms, int64_t *ret_ms, mu_err *err) {
  int rc = mu_duration_parse(text, ret_ms, err);
  if (rc != 0) return mu_err_prefix(err, "%s", what);
  if (*ret_ms < 0 || *ret_ms > max_ms)
    return mu_err_set(err, MU_EINVAL, "%s: '%s' is out of range (0 to %lld s)", what, text, (long long)(max_ms / 1000));
  return 0;
}

int mu_schedule_rules_parse(Muster__V1__ScheduleSpec *spec, const char *tz_dir, mu_schedule_rules *ret, mu_err *err) {
  mu_schedule_rules r = {0};
  int64_t window_ms = 0;
  int rc = mu_schedule_name_check(spec->name, err);
  if (rc == 0 && spec->cron[0] == '\0') rc = mu_err_set(err, MU_EINVAL, "cron: required");
  if (rc == 0) {
    rc = mu_cron_parse(spec->cron, &r.cron, err);
    if (rc != 0 && strncmp(err->msg, "cron", 4) != 0) mu_err_prefix(err, "cron");
  }
  if (rc == 0) rc = set_default(&spec->tz, "UTC", err);
  if (rc == 0) rc = mu_tz_load(spec->tz, tz_dir, &r.tz, err);
  if (rc == 0) rc = set_default(&spec->jitter, "0s", err);
  if (rc == 0) rc = parse_span("jitter", spec->jitter, MU_SCHEDULE_MAX_JITTER_MS, &r.jitter_ms, err);
  if (rc == 0) rc = set_default(&spec->overlap, "skip", err);
  if (rc == 0) rc = parse_overlap(spec->overlap, &r.overlap, err);
  if (rc == 0) rc = set_default(&spec->catch_up, "none", err);
  if (rc == 0) rc = parse_catch_up(spec->catch_up, &r.catch_up, err);
  if (rc == 0) rc = set_default(&spec->catch_up_window, "1h", err);
  if (rc == 0)
    rc = parse_span("catch-up-window", spec->catch_up_window, MU_SCHEDULE_MAX_WINDOW_S * 1000, &window_ms, err);
  if (rc != 0) {
    mu_schedule_rules_free(&r);
    return rc;
  }
  r.window_s = window_ms / 1000;
  *ret = r;
  return 0;
}

void mu_schedule_rules_free(mu_schedule_rules *r) {
  mu_cron_free(r->cron);
  mu_tz_free(r->tz);
  r->cron = NULL;
  r->tz = NULL;
}

int64_t mu_schedule_jitter_ms(const char *name, int64_t slot_s, int64_t jitter_ms) {
  if (jitter_ms <= 0) return 0;
  uint64_t h = 1469598103934665603ull; /* FNV-1a over name, NUL, slot */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h *= 1099511628211ull;
  for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)((uint64_t)slot_s >> (8 * i))) * 1099511628211ull;
  return (int64_t)(h % (uint64_t)(jitter_ms + 1));
}

int64_t mu_schedule_next(const mu_schedule_rules *r, const char *name, int64_t after_s, int64_t *ret_due_ms) {
  int64_t next = mu_cron_next(r->cron, r->tz, after_s);
  *ret_due_ms = next < 0 ? -1 : next * 1000 + mu_schedule_jitter_ms(name, next, r->jitter_ms);
  return next;
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

size_t mu_schedule_due(const mu_schedule_rules *r, const char *name, int64_t cursor_s, int64_t now_ms,
                       int64_t on_time_ms, int64_t *fire, size_t max_fire, int64_t *ret_cursor, size_t *ret_skipped) {
  int64_t now_s = floor_div(now_ms, 1000);
  /* slots at or before floor_s are missed beyond recall: skipped without being looked at */
  int64_t floor_s = r->catch_up == MU_CATCH_UP_NONE ? floor_div(now_ms - on_time_ms - r->jitter_ms, 1000) - 1
                                                    : now_s - r->window_s - 1;
  int64_t s = cursor_s > floor_s ? cursor_s : floor_s;
  int64_t decided = s;    /* every slot up to it is fired or skipped */
  int64_t candidate = -1; /* catch-up latest: the newest missed slot so far */
  int64_t before_candidate = s;
  size_t n = 0, skipped = 0, budget = DUE_BUDGET;
  int natural_end = 0;
  for (;;) {
    int64_t due;
    int64_t next = mu_schedule_next(r, name, s, &due);
    if (next < 0 || due > now_ms) {
      natural_end = 1;
      break;
    }
    if (budget-- == 0) break;
    int on_time = now_ms - due <= on_time_ms;
    int in_window = now_s - next <= r->window_s;
    if (on_time || (r->catch_up == MU_CATCH_UP_ALL && in_window)) {
      if (n == max_fire) break;
      if (candidate >= 0) skipped++; /* an on-time slot supersedes the missed one */
      candidate = -1;
      fire[n++] = next;
      decided = next;
    } else if (r->catch_up == MU_CATCH_UP_LATEST && in_window) {
      if (candidate >= 0) skipped++;
      candidate = next;
      before_candidate = s;
      decided = s;
    } else {
      skipped++;
      if (candidate < 0) decided = next;
    }
    s = next;
  }
  if (candidate >= 0) {
    if (natural_end && n < max_fire) {
      fire[n++] = candidate;
      decided = s;
    } else {
      decided = before_candidate; /* looked at again next time */
    }
  }
  *ret_cursor = decided > cursor_s ? decided : cursor_s;
  *ret_skipped = skipped;
  return n;
}

mu_slot_action mu_schedule_overlap(mu_overlap o, int previous_running, int queued) {
  if (!previous_running) return MU_SLOT_FIRE; /* a queued slot has started first */
  switch (o) {
    case MU_OVERLAP_QUEUE: return queued ? MU_SLOT_SKIP : MU_SLOT_QUEUE;
    case MU_OVERLAP_CANCEL_PREVIOUS: return MU_SLOT_CANCEL_AND_FIRE;
    case MU_OVERLAP_SKIP: break;
  }
  return MU_SLOT_SKIP;
}

const char *mu_overlap_name(mu_overlap o) {
  return o == MU_OVERLAP_QUEUE ? "queue" : o == MU_OVERLAP_CANCEL_PREVIOUS ? "cancel-previous" : "skip";
}

const char *mu_catch_up_name(mu_catch_up c) {
  return c == MU_CATCH_UP_LATEST ? "latest" : c == MU_CATCH_UP_ALL ? "all" : "none";
}
