/* Proleptic Gregorian calendar arithmetic on plain integers (Howard Hinnant's days_from_civil
 * and civil_from_days): no libc time zone state, valid far beyond any schedule's range. */
#ifndef MU_CRON_CIVIL_H
#define MU_CRON_CIVIL_H

#include <stdint.h>

typedef struct mu_civil {
  int64_t year;
  int month; /* 1..12 */
  int day;   /* 1..31 */
  int hour, minute, second;
} mu_civil;

/* Days since 1970-01-01 of y-m-d. */
static inline int64_t mu_days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static inline void mu_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static inline int mu_is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static inline int mu_days_in_month(int64_t y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && mu_is_leap(y) ? 29 : days[m - 1];
}

/* 0 = Sunday .. 6 = Saturday (1970-01-01 was a Thursday). */
static inline int mu_weekday(int64_t days) {
  int64_t w = (days + 4) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

/* Seconds since the epoch of a civil time taken as UTC (a "local naive" time stays naive). */
static inline int64_t mu_civil_to_seconds(const mu_civil *c) {
  return mu_days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->minute * 60 + c->second;
}

static inline void mu_civil_from_seconds(int64_t t, mu_civil *c) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t rem = t - days * 86400;
  mu_civil_from_days(days, &c->year, &c->month, &c->day);
  c->hour = (int)(rem / 3600);
  c->minute = (int)(rem / 60 % 60);
  c->second = (int)(rem % 60);
}

#endif
