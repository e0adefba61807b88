/* Trace and span ids derived from job and task ids (see trace.h). */
#include "lib/base/trace.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define FNV_BASIS_A 0xcbf29ce484222325ull
#define FNV_BASIS_B 0x84222325cbf29ce4ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv(const char *s, uint64_t h) {
  for (; *s; s++) h = (h ^ (uint8_t)*s) * FNV_PRIME;
  return h;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

void mu_trace_id(const char *job_id, char out[MU_TRACE_ID_HEX]) {
  uint64_t hi = mix(fnv(job_id, FNV_BASIS_A)), lo = mix(fnv(job_id, FNV_BASIS_B));
  if (hi == 0 && lo == 0) lo = 1;
  snprintf(out, MU_TRACE_ID_HEX, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
}

void mu_span_id(const char *task_id, uint32_t attempt, char out[MU_SPAN_ID_HEX]) {
  char tail[16];
  snprintf(tail, sizeof tail, "#%u", attempt);
  uint64_t h = mix(fnv(tail, fnv(task_id, FNV_BASIS_A)));
  if (h == 0) h = 1;
  snprintf(out, MU_SPAN_ID_HEX, "%016llx", (unsigned long long)h);
}

void mu_traceparent(const char *job_id, const char *task_id, uint32_t attempt, char out[MU_TRACEPARENT_LEN]) {
  char trace[MU_TRACE_ID_HEX], span[MU_SPAN_ID_HEX];
  mu_trace_id(job_id, trace);
  mu_span_id(task_id, attempt, span);
  snprintf(out, MU_TRACEPARENT_LEN, "00-%s-%s-01", trace, span);
}

int mu_trace_find_job_id(const char *text, char *out, size_t out_size) {
  for (const char *p = strstr(text, "j-"); p != NULL; p = strstr(p + 1, "j-")) {
    if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '_')) continue;
    const char *q = p + 2;
    while (isxdigit((unsigned char)*q)) q++;
    if (q == p + 2 || *q != '-' || !isdigit((unsigned char)q[1])) continue;
    q++;
    while (isdigit((unsigned char)*q)) q++;
    size_t n = (size_t)(q - p);
    if (n + 1 > out_size) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
  }
  return -1;
}
