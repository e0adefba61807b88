/* Cron expressions (see cron.h): fields as bit sets, and the next fire time found on the wall
 * clock (plain calendar arithmetic, civil.h) then mapped to an instant by the zone. */
#include "lib/cron/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cron/civil.h"

#define MU_CRON_MAX_EXPR 256
#define MU_CRON_SEARCH_YEARS 10

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct {
  const char *name;
  int lo, hi;
} fields[F_COUNT] = {{"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
                     {"day of month", 1, 31}, {"month", 1, 12},  {"day of week", 0, 7}};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct mu_cron {
  uint64_t set[F_COUNT];  /* bit v set: value v matches */
  int dom_star, dow_star; /* the field starts with '*' (Vixie's day rule) */
  int seconds;
};

void mu_cron_free(mu_cron *c) { free(c); }

int mu_cron_has_seconds(const mu_cron *c) { return c->seconds; }

/* A number or (months, days of week) a name; -1 when text[0..n) is neither. */
static int value_of(int f, const char *text, size_t n) {
  if (n > 0 && isdigit((unsigned char)text[0])) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isdigit((unsigned char)text[i]) || v > 1000) return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  }
  if (n == 3 && f == F_MONTH)
    for (int i = 0; i < 12; i++)
      if (strncasecmp(text, month_names[i], 3) == 0) return i + 1;
  if (n == 3 && f == F_DOW)
    for (int i = 0; i < 7; i++)
      if (strncasecmp(text, day_names[i], 3) == 0) return i;
  return -1;
}

static int field_error(mu_err *err, int f, int pos, const char *tok, size_t n, const char *why) {
  return mu_err_set(err, MU_EINVAL, "cron field %d (%s): '%.*s'%s", pos, fields[f].name, (int)(n > 40 ? 40 : n), tok,
                    why);
}

/* One comma-separated item of field f: *, N, A-B, with an optional /S. */
static int parse_item(int f, int pos, const char *tok, size_t n, uint64_t *set, mu_err *err) {
  const char *slash = memchr(tok, '/', n);
  size_t rn = slash ? (size_t)(slash - tok) : n;
  int lo = fields[f].lo, hi = fields[f].hi, step = 1;
  char why[96];
  for (size_t i = 0; i < n; i++) {
    char ch = (char)toupper((unsigned char)tok[i]);
    int alone = !(i > 0 && isalpha((unsigned char)tok[i - 1])) && !(i + 1 < n && isalpha((unsigned char)tok[i + 1]));
    if ((ch == 'L' || ch == 'W') && alone && (f == F_DOM || f == F_DOW))
      return field_error(err, f, pos, tok, n, ": 'L' (last) and 'W' (weekday) are not supported");
    if (ch == '#') return field_error(err, f, pos, tok, n, ": '#' (nth weekday) is not supported");
    if (ch == '?') return field_error(err, f, pos, tok, n, ": '?' is not supported; use '*'");
  }
  if (slash != NULL) {
    step = value_of(F_SEC, slash + 1, n - rn - 1);
    if (step < 1 || step > hi) {
      snprintf(why, sizeof why, ": the step must be 1-%d", hi);
      return field_error(err, f, pos, tok, n, why);
    }
  }
  if (!(rn == 1 && tok[0] == '*')) {
    const char *dash = memchr(tok, '-', rn);
    size_t an = dash ? (size_t)(dash - tok) : rn;
    int a = value_of(f, tok, an);
    int b = dash ? value_of(f, dash + 1, rn - an - 1) : (slash ? hi : a);
    if (a < 0 || b < 0) return field_error(err, f, pos, tok, n, " is not a value, range or step");
    if (a < fields[f].lo || a > hi || b < fields[f].lo || b > hi) {
      snprintf(why, sizeof why, " is out of range %d-%d", fields[f].lo, fields[f].hi);
      return field_error(err, f, pos, tok, n, why);
    }
    if (a > b) return field_error(err, f, pos, tok, n, ": a range must go up");
    lo = a;
    hi = b;
  }
  for (int v = lo; v <= hi; v += step) *set |= 1ull << v;
  return 0;
}

static int parse_field(int f, int pos, const char *tok, size_t n, mu_cron *c, mu_err *err) {
  const char *end = tok + n;
  for (const char *p = tok; p <= end;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    if (stop == p) return field_error(err, f, pos, tok, n, " has an empty list item");
    int rc = parse_item(f, pos, p, (size_t)(stop - p), &c->set[f], err);
    if (rc != 0) return rc;
    p = stop + 1;
  }
  if (f == F_DOW && (c->set[F_DOW] >> 7 & 1)) c->set[F_DOW] = (c->set[F_DOW] | 1) & 0x7f;
  return 0;
}

static const struct {
  const char *name;
  const char *expr;
} macros[] = {{"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
              {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
              {"@hourly", "0 0 * * * *"}};

/* A restricted day of month that no month of the set ever has. */
static int never_fires(const mu_cron *c) {
  if (c->dom_star || !c->dow_star) return 0;
  for (int m = 1; m <= 12; m++) {
    if (!(c->set[F_MONTH] >> m & 1)) continue;
    for (int d = 1; d <= mu_days_in_month(2000, m); d++) /* a leap year: Feb 29 counts */
      if (c->set[F_DOM] >> d & 1) return 0;
  }
  return 1;
}

int mu_cron_parse(const char *expr, mu_cron **ret, mu_err *err) {
  if (strlen(expr) > MU_CRON_MAX_EXPR)
    return mu_err_set(err, MU_EINVAL, "cron: longer than %d characters", MU_CRON_MAX_EXPR);
  while (isspace((unsigned char)*expr)) expr++;
  int macro = expr[0] == '@';
  if (macro) {
    size_t n = strcspn(expr, " \t");
    const char *rest = expr + n;
    while (isspace((unsigned char)*rest)) rest++;
    const char *found = NULL;
    for (size_t i = 0; i < sizeof macros / sizeof *macros && *rest == '\0'; i++)
      if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0) found = macros[i].expr;
    if (found == NULL)
      return mu_err_set(err, MU_EINVAL,
                        "cron: unknown macro '%.*s' (@yearly, @annually, "
                        "@monthly, @weekly, @daily, @midnight, @hourly)",
                        (int)(n > 40 ? 40 : n), expr);
    expr = found;
  }
  const char *tok[F_COUNT + 1];
  size_t len[F_COUNT + 1];
  int count = 0;
  for (const char *p = expr; *p;) {
    while (isspace((unsigned char)*p)) p++;
    if (*p == '\0') break;
    size_t n = strcspn(p, " \t\n\r");
    if (count <= F_COUNT) {
      tok[count] = p;
      len[count] = n;
    }
    count++;
    p += n;
  }
  if (count != 5 && count != 6)
    return mu_err_set(err, MU_EINVAL,
                      "cron: expected 5 fields (minute hour day-of-month month "
                      "day-of-week) or 6 (seconds first), got %d",
                      count);
  mu_cron *c = calloc(1, sizeof *c);
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  c->seconds = count == 6 && !macro;
  int first = count == 6 ? F_SEC : F_MIN;
  if (count == 5) c->set[F_SEC] = 1; /* second 0 */
  for (int i = 0; i < count; i++) {
    int f = first + i;
    int rc = parse_field(f, i + 1, tok[i], len[i], c, err);
    if (rc != 0) {
      free(c);
      return rc;
    }
    if (f == F_DOM) c->dom_star = tok[i][0] == '*';
    if (f == F_DOW) c->dow_star = tok[i][0] == '*';
  }
  if (never_fires(c)) {
    int dom_i = F_DOM - first, mon_i = F_MONTH - first;
    mu_err_set(err, MU_EINVAL, "cron: never fires (no month in '%.*s' has day '%.*s')",
               (int)(len[mon_i] > 40 ? 40 : len[mon_i]), tok[mon_i], (int)(len[dom_i] > 40 ? 40 : len[dom_i]),
               tok[dom_i]);
    free(c);
    return MU_EINVAL;
  }
  *ret = c;
  return 0;
}

/* The smallest value >= v in set (bits lo..hi), or -1. */
static int next_in(uint64_t set, int v, int hi) {
  for (; v <= hi; v++)
    if (set >> v & 1) return v;
  return -1;
}

static int day_matches(const mu_cron *c, const mu_civil *t) {
  int dom = (int)(c->set[F_DOM] >> t->day & 1);
  int dow = (int)(c->set[F_DOW] >> mu_weekday(mu_days_from_civil(t->year, t->month, t->day)) & 1);
  return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

static void next_day(mu_civil *t) {
  if (++t->day > mu_days_in_month(t->year, t->month)) {
    t->day = 1;
    if (++t->month > 12) {
      t->month = 1;
      t->year++;
    }
  }
  t->hour = t->minute = t->second = 0;
}

/* The first matching wall-clock time >= start (naive seconds), or -1 past limit. */
static int64_t next_wall(const mu_cron *c, int64_t start, int64_t limit) {
  mu_civil t;
  mu_civil_from_seconds(start, &t);
  for (int guard = 0; guard < 100000; guard++) {
    if (mu_civil_to_seconds(&t) > limit) return -1;
    if (!(c->set[F_MONTH] >> t.month & 1)) {
      int m = next_in(c->set[F_MONTH], t.month + 1, 12);
      if (m < 0) {
        t.year++;
        m = next_in(c->set[F_MONTH], 1, 12);
      }
      t.month = m;
      t.day = 1;
      t.hour = t.minute = t.second = 0;
      continue;
    }
    if (!day_matches(c, &t)) {
      next_day(&t);
      continue;
    }
    int h = next_in(c->set[F_HOUR], t.hour, 23);
    if (h < 0) {
      next_day(&t);
      continue;
    }
    if (h != t.hour) {
      t.hour = h;
      t.minute = t.second = 0;
    }
    int m = next_in(c->set[F_MIN], t.minute, 59);
    if (m < 0) {
      t.minute = t.second = 0;
      if (++t.hour > 23) next_day(&t);
      continue;
    }
    if (m != t.minute) {
      t.minute = m;
      t.second = 0;
    }
    int s = next_in(c->set[F_SEC], t.second, 59);
    if (s < 0) {
      t.second = 0;
      if (++t.minute > 59) {
        t.minute = 0;
        if (++t.hour > 23) next_day(&t);
      }
      continue;
    }
    t.second = s;
    return mu_civil_to_seconds(&t);
  }
  return -1;
}

int64_t mu_cron_next(const mu_cron *c, const mu_tz *tz, int64_t after) {
  int64_t wall = after + mu_tz_offset(tz, after);
  int64_t limit = wall + (int64_t)MU_CRON_SEARCH_YEARS * 366 * 86400;
  /* Wall times map to instants in non-decreasing order (tz.h), so the first wall time after
   * the wall clock of `after` whose instant is later than `after` is the answer. Only the
   * repeated hour makes the loop go round more than once. */
  for (int64_t w = wall + 1; w <= limit;) {
    int64_t next = next_wall(c, w, limit);
    if (next < 0) return -1;
    int64_t at = mu_tz_resolve(tz, next);
    if (at > after) return at;
    w = next + 1;
  }
  return -1;
}
