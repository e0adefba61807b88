/* Clocks and the duration/size syntax shared by configs, job files and CLI flags. */
#include "lib/base/clock.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t mu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mu_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mu_duration_parse(const char *text, int64_t *ret_ms, mu_err *err) {
  const char *p = text;
  double total = 0;
  if (text == NULL || *text == '\0')
    return mu_err_set(err, MU_EINVAL, "empty duration (expected e.g. \"30s\", \"5m\", \"1h30m\")");
  while (*p != '\0') {
    char *end;
    if (!isdigit((unsigned char)*p) && *p != '.') goto bad;
    double v = strtod(p, &end);
    if (end == p || v < 0 || !isfinite(v)) goto bad;
    p = end;
    double unit_ms;
    if (strncmp(p, "ms", 2) == 0) {
      unit_ms = 1;
      p += 2;
    } else if (*p == 's') {
      unit_ms = 1000;
      p++;
    } else if (*p == 'm') {
      unit_ms = 60e3;
      p++;
    } else if (*p == 'h') {
      unit_ms = 3600e3;
      p++;
    } else if (*p == 'd') {
      unit_ms = 86400e3;
      p++;
    } else if (*p == '\0' && p == end && total == 0) {
      unit_ms = 1000; /* bare number: seconds */
    } else {
      goto bad;
    }
    total += v * unit_ms;
    if (total > 9e15) goto bad;
  }
  *ret_ms = (int64_t)llround(total);
  return 0;
bad:
  return mu_err_set(err, MU_EINVAL, "bad duration \"%s\" (expected e.g. \"30s\", \"5m\", \"1h30m\", \"250ms\")", text);
}

int mu_size_parse(const char *text, uint64_t *ret_bytes, mu_err *err) {
  char *end;
  if (text == NULL || !isdigit((unsigned char)*text)) goto bad;
  double v = strtod(text, &end);
  if (end == text || v < 0 || !isfinite(v)) goto bad;
  double mult = 1;
  switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B':
      mult = 1;
      end++;
      break;
    case 'K':
      mult = 1024.0;
      end++;
      break;
    case 'M':
      mult = 1024.0 * 1024;
      end++;
      break;
    case 'G':
      mult = 1024.0 * 1024 * 1024;
      end++;
      break;
    case 'T':
      mult = 1024.0 * 1024 * 1024 * 1024;
      end++;
      break;
    default: goto bad;
  }
  if (mult > 1) {
    if (*end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
  }
  if (*end != '\0' || v * mult > 1.8e19) goto bad;
  *ret_bytes = (uint64_t)(v * mult);
  return 0;
bad:
  return mu_err_set(err, MU_EINVAL, "bad size \"%s\" (expected e.g. \"512M\", \"2G\", \"4096\")", text ? text : "");
}
