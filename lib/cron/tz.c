/* TZif files and POSIX TZ rules (see tz.h). The parser trusts nothing in the file: every count
 * is checked against the bytes present, every index against its table, transition times must
 * ascend, offsets must be within a day. */
#include "lib/cron/tz.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cron/civil.h"

#define MU_TZ_NAME_MAX 64
#define MU_TZ_MAX_OFFSET (25 * 3600) /* RFC 8536: -89999..93599 */
#define MU_TZ_MAX_DST_OFFSET 93599   /* a summer time offset RFC 8536 still allows */
#define MU_TZ_TIME_LIMIT (1LL << 45) /* about a million years either side of 1970 */

typedef enum { DATE_MONTH_WEEK_DAY, DATE_JULIAN_NO_LEAP, DATE_ZERO_BASED } date_kind;

typedef struct rule_date {
  date_kind kind;
  int month, week, weekday; /* Mm.w.d */
  int day;                  /* Jn (1..365) or n (0..365) */
  int32_t time;             /* seconds after local midnight, -167h..167h */
} rule_date;

typedef struct posix_rule {
  int32_t std_off; /* seconds east */
  int has_dst;
  int32_t dst_off;
  rule_date start, end;
} posix_rule;

struct mu_tz {
  char name[MU_TZ_NAME_MAX];
  size_t n_trans;
  int64_t *trans;
  uint8_t *trans_type;
  size_t n_types;
  int32_t *type_off;
  int has_rule;
  posix_rule rule;
};

void mu_tz_free(mu_tz *tz) {
  if (tz == NULL) return;
  free(tz->trans);
  free(tz->trans_type);
  free(tz->type_off);
  free(tz);
}

const char *mu_tz_name(const mu_tz *tz) { return tz->name; }

/* ---- POSIX TZ rules ---- */

typedef struct cursor {
  const char *p, *end;
} cursor;

static int parse_zone_abbr(cursor *c) {
  size_t n = 0;
  if (c->p < c->end && *c->p == '<') {
    c->p++;
    while (c->p < c->end && *c->p != '>' && n < 32 && (isalnum((unsigned char)*c->p) || *c->p == '+' || *c->p == '-')) {
      c->p++;
      n++;
    }
    if (c->p >= c->end || *c->p != '>' || n < 3) return -1;
    c->p++;
    return 0;
  }
  while (c->p < c->end && isalpha((unsigned char)*c->p) && n < 32) {
    c->p++;
    n++;
  }
  return n >= 3 ? 0 : -1;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours; seconds. */
static int parse_hms(cursor *c, int max_hours, int32_t *ret) {
  int sign = 1;
  if (c->p < c->end && (*c->p == '+' || *c->p == '-')) sign = *c->p++ == '-' ? -1 : 1;
  int32_t parts[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (i > 0) {
      if (c->p >= c->end || *c->p != ':') break;
      c->p++;
    }
    int digits = 0, v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p) && digits < 3) {
      v = v * 10 + (*c->p++ - '0');
      digits++;
    }
    if (digits == 0 || (i > 0 && v > 59)) return -1;
    parts[i] = v;
  }
  if (parts[0] > max_hours) return -1;
  *ret = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
  return 0;
}

static int parse_int(cursor *c, int lo, int hi, int *ret) {
  int v = 0, digits = 0;
  while (c->p < c->end && isdigit((unsigned char)*c->p) && digits < 4) {
    v = v * 10 + (*c->p++ - '0');
    digits++;
  }
  if (digits == 0 || v < lo || v > hi) return -1;
  *ret = v;
  return 0;
}

static int parse_date(cursor *c, rule_date *d) {
  if (c->p >= c->end) return -1;
  if (*c->p == 'M') {
    c->p++;
    d->kind = DATE_MONTH_WEEK_DAY;
    if (parse_int(c, 1, 12, &d->month) != 0 || c->p >= c->end || *c->p++ != '.' || parse_int(c, 1, 5, &d->week) != 0 ||
        c->p >= c->end || *c->p++ != '.' || parse_int(c, 0, 6, &d->weekday) != 0)
      return -1;
  } else if (*c->p == 'J') {
    c->p++;
    d->kind = DATE_JULIAN_NO_LEAP;
    if (parse_int(c, 1, 365, &d->day) != 0) return -1;
  } else {
    d->kind = DATE_ZERO_BASED;
    if (parse_int(c, 0, 365, &d->day) != 0) return -1;
  }
  d->time = 7200; /* 02:00 by default */
  if (c->p < c->end && *c->p == '/') {
    c->p++;
    if (parse_hms(c, 167, &d->time) != 0) return -1;
  }
  return 0;
}

static int parse_rule(const char *text, size_t len, posix_rule *r) {
  cursor c = {text, text + len};
  int32_t off;
  memset(r, 0, sizeof *r);
  if (parse_zone_abbr(&c) != 0 || parse_hms(&c, 24, &off) != 0) return -1;
  r->std_off = -off; /* POSIX offsets are west of Greenwich */
  if (c.p == c.end) return 0;
  if (parse_zone_abbr(&c) != 0) return -1;
  r->has_dst = 1;
  r->dst_off = r->std_off + 3600;
  if (c.p < c.end && *c.p != ',') {
    if (parse_hms(&c, 24, &off) != 0) return -1;
    r->dst_off = -off;
  }
  if (r->dst_off <= -MU_TZ_MAX_OFFSET || r->dst_off > MU_TZ_MAX_DST_OFFSET) return -1;
  if (c.p == c.end) { /* POSIX's default rule (the US one) */
    r->start = (rule_date){DATE_MONTH_WEEK_DAY, 3, 2, 0, 0, 7200};
    r->end = (rule_date){DATE_MONTH_WEEK_DAY, 11, 1, 0, 0, 7200};
    return 0;
  }
  if (*c.p++ != ',' || parse_date(&c, &r->start) != 0 || c.p >= c.end || *c.p++ != ',' ||
      parse_date(&c, &r->end) != 0 || c.p != c.end)
    return -1;
  return 0;
}

/* Days since the epoch of the rule date in year y. */
static int64_t rule_day(const rule_date *d, int64_t y) {
  if (d->kind == DATE_JULIAN_NO_LEAP) return mu_days_from_civil(y, 1, 1) + d->day - 1 + (mu_is_leap(y) && d->day >= 60);
  if (d->kind == DATE_ZERO_BASED) return mu_days_from_civil(y, 1, 1) + d->day;
  int64_t first = mu_days_from_civil(y, d->month, 1);
  int64_t day = first + (d->weekday - mu_weekday(first) + 7) % 7 + 7 * (d->week - 1);
  while (day >= first + mu_days_in_month(y, d->month)) day -= 7;
  return day;
}

static int32_t rule_offset(const posix_rule *r, int64_t t) {
  if (!r->has_dst) return r->std_off;
  if (t > MU_TZ_TIME_LIMIT) t = MU_TZ_TIME_LIMIT; /* the calendar math stays in range */
  if (t < -MU_TZ_TIME_LIMIT) t = -MU_TZ_TIME_LIMIT;
  mu_civil c;
  mu_civil_from_seconds(t + r->std_off, &c);
  int64_t start = rule_day(&r->start, c.year) * 86400 + r->start.time - r->std_off;
  int64_t end = rule_day(&r->end, c.year) * 86400 + r->end.time - r->dst_off;
  int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---- */

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

typedef struct tzif_header {
  int version;
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static int read_header(const uint8_t *p, size_t len, tzif_header *h) {
  if (len < 44 || memcmp(p, "TZif", 4) != 0) return -1;
  h->version = p[4] == 0 ? 1 : p[4] - '0';
  if (h->version < 1 || h->version > 9) return -1;
  h->isutcnt = be32(p + 20);
  h->isstdcnt = be32(p + 24);
  h->leapcnt = be32(p + 28);
  h->timecnt = be32(p + 32);
  h->typecnt = be32(p + 36);
  h->charcnt = be32(p + 40);
  if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 || h->timecnt > 1000000 || h->leapcnt > 100000 ||
      (h->isutcnt != 0 && h->isutcnt != h->typecnt) || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
      h->charcnt > 100000)
    return -1;
  return 0;
}

static size_t block_size(const tzif_header *h, size_t time_size) {
  return (size_t)h->timecnt * time_size + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
         (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

static int fail(mu_err *err, const char *name, const char *what) {
  return mu_err_set(err, MU_EINVAL, "time zone '%s': not a valid TZif file (%s)", name, what);
}

int mu_tz_parse(const char *name, const uint8_t *data, size_t len, mu_tz **ret, mu_err *err) {
  tzif_header h;
  if (read_header(data, len, &h) != 0) return fail(err, name, "bad header");
  size_t time_size = 4, off = 44;
  if (h.version >= 2) { /* skip the 32-bit block; use the 64-bit one */
    size_t v1 = block_size(&h, 4);
    if (v1 > len - off) return fail(err, name, "truncated");
    off += v1;
    if (read_header(data + off, len - off, &h) != 0) return fail(err, name, "bad second header");
    off += 44;
    time_size = 8;
  }
  if (block_size(&h, time_size) > len - off) return fail(err, name, "truncated");
  mu_tz *tz = calloc(1, sizeof *tz);
  if (tz == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(tz->name, sizeof tz->name, "%s", name);
  tz->n_trans = h.timecnt;
  tz->n_types = h.typecnt;
  tz->trans = calloc(h.timecnt + 1, sizeof *tz->trans);
  tz->trans_type = calloc(h.timecnt + 1, 1);
  tz->type_off = calloc(h.typecnt, sizeof *tz->type_off);
  int rc = 0;
  if (tz->trans == NULL || tz->trans_type == NULL || tz->type_off == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  const uint8_t *p = data + off;
  for (size_t i = 0; i < h.timecnt; i++, p += time_size) {
    tz->trans[i] = time_size == 8 ? be64(p) : (int32_t)be32(p);
    if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) {
      rc = fail(err, name, "transition times out of order");
      goto fail;
    }
  }
  for (size_t i = 0; i < h.timecnt; i++, p++) {
    if (*p >= h.typecnt) {
      rc = fail(err, name, "transition names a missing type");
      goto fail;
    }
    tz->trans_type[i] = *p;
  }
  for (size_t i = 0; i < h.typecnt; i++, p += 6) {
    int32_t utoff = (int32_t)be32(p);
    if (utoff <= -MU_TZ_MAX_OFFSET || utoff >= MU_TZ_MAX_OFFSET || p[5] >= h.charcnt) {
      rc = fail(err, name, "bad local time type");
      goto fail;
    }
    tz->type_off[i] = utoff;
  }
  off += block_size(&h, time_size);
  /* the footer: "\nRULE\n", after a v2+ block */
  if (h.version >= 2 && off < len) {
    const uint8_t *f = data + off;
    const uint8_t *nl = len - off > 1 ? memchr(f + 1, '\n', len - off - 1) : NULL;
    if (f[0] != '\n' || nl == NULL) {
      rc = fail(err, name, "bad footer");
      goto fail;
    }
    size_t n = (size_t)(nl - f - 1);
    if (n > 0) {
      if (parse_rule((const char *)f + 1, n, &tz->rule) != 0) {
        rc = fail(err, name, "bad TZ rule in the footer");
        goto fail;
      }
      tz->has_rule = 1;
    }
  }
  *ret = tz;
  return 0;
fail:
  mu_tz_free(tz);
  return rc;
}

int mu_tz_from_rule(const char *rule, mu_tz **ret, mu_err *err) {
  mu_tz *tz = calloc(1, sizeof *tz);
  if (tz == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(tz->name, sizeof tz->name, "%s", rule);
  if (parse_rule(rule, strlen(rule), &tz->rule) != 0) {
    mu_tz_free(tz);
    return mu_err_set(err, MU_EINVAL, "'%s' is not a POSIX TZ rule", rule);
  }
  tz->has_rule = 1;
  *ret = tz;
  return 0;
}

static int valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= MU_TZ_NAME_MAX || name[0] == '/') return 0;
  for (const char *c = name; *c; c++) {
    if (!isalnum((unsigned char)*c) && strchr("/_+-", *c) == NULL && *c != '.') return 0;
    if ((c == name || c[-1] == '/') && *c == '.') return 0; /* no "..", no hidden names */
  }
  return 1;
}

int mu_tz_load(const char *name, const char *dir, mu_tz **ret, mu_err *err) {
  if (!valid_name(name)) return mu_err_set(err, MU_EINVAL, "'%s' is not a time zone name (like Europe/Berlin)", name);
  if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
    int rc = mu_tz_from_rule("UTC0", ret, err);
    if (rc == 0) snprintf((*ret)->name, sizeof(*ret)->name, "%s", name);
    return rc;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir ? dir : MU_TZ_DIR, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return mu_err_set(err, errno == ENOENT ? MU_ENOENT : MU_EIO, "unknown time zone '%s' (%s: %s)", name, path,
                      strerror(errno));
  uint8_t *data = malloc(MU_TZ_MAX_FILE + 1);
  size_t len = data ? fread(data, 1, MU_TZ_MAX_FILE + 1, f) : 0;
  fclose(f);
  int rc;
  if (data == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  else if (len > MU_TZ_MAX_FILE) rc = mu_err_set(err, MU_EINVAL, "time zone '%s': %s is too large", name, path);
  else rc = mu_tz_parse(name, data, len, ret, err);
  free(data);
  return rc;
}

int32_t mu_tz_offset(const mu_tz *tz, int64_t t) {
  if (tz->n_trans == 0 || t >= tz->trans[tz->n_trans - 1]) {
    if (tz->has_rule) return rule_offset(&tz->rule, t);
    if (tz->n_trans == 0) return tz->n_types ? tz->type_off[0] : 0;
    return tz->type_off[tz->trans_type[tz->n_trans - 1]];
  }
  if (t < tz->trans[0]) return tz->type_off[0];
  size_t lo = 0, hi = tz->n_trans - 1; /* trans[lo] <= t < trans[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->trans[mid] <= t) lo = mid;
    else hi = mid;
  }
  return tz->type_off[tz->trans_type[lo]];
}

int64_t mu_tz_resolve(const mu_tz *tz, int64_t local) {
  /* the offsets in force a little over a day either side: at most one change between */
  int32_t before = mu_tz_offset(tz, local - 90000), after = mu_tz_offset(tz, local + 90000);
  int64_t a = local - before, b = local - after;
  int a_ok = a + mu_tz_offset(tz, a) == local, b_ok = b + mu_tz_offset(tz, b) == local;
  if (a_ok && b_ok) return a < b ? a : b;
  if (a_ok) return a;
  if (b_ok) return b;
  /* a skipped time: the instant the offset changed, between the two candidates */
  int64_t lo = a < b ? a : b, hi = a < b ? b : a;
  int32_t lo_off = mu_tz_offset(tz, lo);
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (mu_tz_offset(tz, mid) == lo_off) lo = mid;
    else hi = mid;
  }
  return hi;
}
