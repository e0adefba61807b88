/* Encoding and decoding the agent <-> muster-plugin-host frames (pmsg.h). The decoder is the
 * one place bytes from the other process are read, so every count and length is checked
 * against what is left of the frame before it is used (fuzzed by pmsg_fuzz). */
#include "agent/plugin/pmsg.h"

#include <stdlib.h>
#include <string.h>

typedef struct kind_info {
  uint8_t kind;
  const char *name;
  uint16_t min_ints;
  uint32_t min_strs;
} kind_info;

static const kind_info kinds[] = {
    {MU_PM_HELLO, "HELLO", 5, 3},
    {MU_PM_LOAD_FAILED, "LOAD_FAILED", 0, 1},
    {MU_PM_START_FAILED, "START_FAILED", 0, 1},
    {MU_PM_OUTPUT, "OUTPUT", 1, 1},
    {MU_PM_PROGRESS, "PROGRESS", 1, 1},
    {MU_PM_PARAM, "PARAM", 0, 2},
    {MU_PM_FINISH, "FINISH", 4, 1},
    {MU_PM_SPAWN, "SPAWN", 6, 3},
    {MU_PM_PROC_KILL, "PROC_KILL", 1, 0},
    {MU_PM_LOG, "LOG", 1, 1},
    {MU_PM_CANCEL_EXTEND, "CANCEL_EXTEND", 2, 0},
    {MU_PM_CANCEL_WITHDRAW, "CANCEL_WITHDRAW", 1, 0},
    {MU_PM_PONG, "PONG", 1, 0},
    {MU_PM_START, "START", 2, 6},
    {MU_PM_CANCEL, "CANCEL", 1, 0},
    {MU_PM_CLEANUP, "CLEANUP", 0, 0},
    {MU_PM_REPLY, "REPLY", 2, 1},
    {MU_PM_PROC_EXIT, "PROC_EXIT", 11, 1},
    {MU_PM_PROC_OUTPUT, "PROC_OUTPUT", 2, 1},
    {MU_PM_PING, "PING", 1, 0},
    {MU_PM_CONFIGURED, "CONFIGURED", 2, 1},
    {MU_PM_HEALTH_IS, "HEALTH_IS", 2, 1},
    {MU_PM_METRIC_DEF, "METRIC_DEF", 3, 2},
    {MU_PM_METRIC, "METRIC", 3, 0},
    {MU_PM_CONFIGURE, "CONFIGURE", 1, 1},
    {MU_PM_HEALTH, "HEALTH", 1, 0},
};

static const kind_info *find_kind(uint8_t kind) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (kinds[i].kind == kind) return &kinds[i];
  return NULL;
}

const char *mu_pm_kind_name(uint8_t kind) {
  const kind_info *k = find_kind(kind);
  return k ? k->name : "?";
}

static void put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

int mu_pmsg_encode(uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs, size_t n_strs,
                   size_t max_body, uint8_t **ret, size_t *ret_len, mu_err *err) {
  const kind_info *k = find_kind(kind);
  if (k == NULL) return mu_err_set(err, MU_EINVAL, "plugin message: unknown kind %u", kind);
  if (n_ints < k->min_ints || n_strs < k->min_strs || n_ints > MU_PM_MAX_INTS || n_strs > MU_PM_MAX_STRS)
    return mu_err_set(err, MU_EINVAL, "plugin message %s: %zu ints and %zu strings (wants >= %u and >= %u)", k->name,
                      n_ints, n_strs, k->min_ints, k->min_strs);
  size_t body = MU_PM_BODY_FIXED + 8 * n_ints;
  for (size_t i = 0; i < n_strs; i++) {
    if (strs[i].len > max_body || body + 4 + strs[i].len > max_body)
      return mu_err_set(err, MU_ENOSPC, "plugin message %s: over the %zu-byte message bound", k->name, max_body);
    body += 4 + strs[i].len;
  }
  if (body > max_body)
    return mu_err_set(err, MU_ENOSPC, "plugin message %s: over the %zu-byte message bound", k->name, max_body);
  uint8_t *b = malloc(MU_PM_HEADER + body);
  if (b == NULL) return mu_err_set(err, MU_ENOMEM, "plugin message: out of memory");
  uint8_t *p = b;
  put_u32(p, (uint32_t)body);
  p += 4;
  p[0] = kind;
  p[1] = 0;
  put_u16(p + 2, (uint16_t)n_ints);
  put_u32(p + 4, (uint32_t)n_strs);
  put_u64(p + 8, task);
  p += MU_PM_BODY_FIXED;
  for (size_t i = 0; i < n_ints; i++, p += 8) put_u64(p, (uint64_t)ints[i]);
  for (size_t i = 0; i < n_strs; i++) {
    put_u32(p, (uint32_t)strs[i].len);
    if (strs[i].len > 0) memcpy(p + 4, strs[i].p, strs[i].len);
    p += 4 + strs[i].len;
  }
  *ret = b;
  *ret_len = MU_PM_HEADER + body;
  return 0;
}

int mu_pmsg_frame_len(const uint8_t *buf, size_t len, size_t max_body, size_t *ret_frame_len, mu_err *err) {
  *ret_frame_len = 0;
  if (len < MU_PM_HEADER) return 0;
  uint32_t body = get_u32(buf);
  if (body < MU_PM_BODY_FIXED || body > max_body)
    return mu_err_set(err, MU_EINVAL, "plugin message: length %u outside %d..%zu", body, MU_PM_BODY_FIXED, max_body);
  if (len - MU_PM_HEADER >= body) *ret_frame_len = MU_PM_HEADER + (size_t)body;
  return 0;
}

int mu_pmsg_decode(const uint8_t *frame, size_t len, size_t max_body, mu_pmsg **ret, mu_err *err) {
  size_t flen = 0;
  int rc = mu_pmsg_frame_len(frame, len, max_body, &flen, err);
  if (rc != 0) return rc;
  if (flen == 0 || flen != len)
    return mu_err_set(err, MU_EINVAL, "plugin message: frame of %zu bytes, length prefix says %zu", len,
                      flen ? flen : (len >= 4 ? MU_PM_HEADER + (size_t)get_u32(frame) : 0));
  const uint8_t *p = frame + MU_PM_HEADER, *end = frame + len;
  uint8_t kind = p[0];
  uint16_t n_ints = get_u16(p + 2);
  uint32_t n_strs = get_u32(p + 4);
  uint64_t task = get_u64(p + 8);
  const kind_info *k = find_kind(kind);
  if (k == NULL) return mu_err_set(err, MU_EINVAL, "plugin message: unknown kind %u", kind);
  if (p[1] != 0) return mu_err_set(err, MU_EINVAL, "plugin message %s: reserved byte is %u", k->name, p[1]);
  if (n_ints > MU_PM_MAX_INTS || n_strs > MU_PM_MAX_STRS)
    return mu_err_set(err, MU_EINVAL, "plugin message %s: %u ints / %u strings over the bounds (%d / %d)", k->name,
                      n_ints, n_strs, MU_PM_MAX_INTS, MU_PM_MAX_STRS);
  if (n_ints < k->min_ints || n_strs < k->min_strs)
    return mu_err_set(err, MU_EINVAL, "plugin message %s: %u ints and %u strings, needs %u and %u", k->name, n_ints,
                      n_strs, k->min_ints, k->min_strs);
  p += MU_PM_BODY_FIXED;
  if ((size_t)(end - p) < 8u * n_ints)
    return mu_err_set(err, MU_EINVAL, "plugin message %s: %u ints run past the frame", k->name, n_ints);
  /* Each string needs at least its 4-byte length, so n_strs is bounded by the frame too. */
  if ((size_t)(end - p) - 8u * n_ints < 4u * (size_t)n_strs)
    return mu_err_set(err, MU_EINVAL, "plugin message %s: %u strings cannot fit the frame", k->name, n_strs);
  size_t str_bytes = 0;
  const uint8_t *q = p + 8u * n_ints;
  for (uint32_t i = 0; i < n_strs; i++) {
    if ((size_t)(end - q) < 4)
      return mu_err_set(err, MU_EINVAL, "plugin message %s: string %u runs past the frame", k->name, i);
    uint32_t sl = get_u32(q);
    if ((size_t)(end - q) - 4 < sl)
      return mu_err_set(err, MU_EINVAL, "plugin message %s: string %u of %u bytes runs past the frame", k->name, i, sl);
    q += 4 + sl;
    str_bytes += sl + 1;
  }
  if (q != end) return mu_err_set(err, MU_EINVAL, "plugin message %s: %zu trailing bytes", k->name, (size_t)(end - q));
  size_t size = sizeof(mu_pmsg) + sizeof(int64_t) * n_ints + sizeof(mu_pstr) * n_strs + str_bytes;
  mu_pmsg *m = malloc(size);
  if (m == NULL) return mu_err_set(err, MU_ENOMEM, "plugin message: out of memory");
  m->kind = kind;
  m->task = task;
  m->n_ints = n_ints;
  m->n_strs = n_strs;
  m->ints = (int64_t *)(m + 1);
  m->strs = (mu_pstr *)(m->ints + n_ints);
  char *sb = (char *)(m->strs + n_strs);
  for (uint16_t i = 0; i < n_ints; i++, p += 8) m->ints[i] = (int64_t)get_u64(p);
  for (uint32_t i = 0; i < n_strs; i++) {
    uint32_t sl = get_u32(p);
    memcpy(sb, p + 4, sl);
    sb[sl] = '\0';
    m->strs[i].p = sb;
    m->strs[i].len = sl;
    sb += sl + 1;
    p += 4 + sl;
  }
  *ret = m;
  return 0;
}

int64_t mu_pm_double_bits(double v) {
  int64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

double mu_pm_bits_double(int64_t bits) {
  double v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

int mu_pmsg_metric_def(const mu_pmsg *m, mu_pm_metric_def *ret, mu_err *err) {
  if (m->kind != MU_PM_METRIC_DEF || m->n_ints < 3) return mu_err_set(err, MU_EINVAL, "METRIC_DEF: too short");
  memset(ret, 0, sizeof *ret);
  int64_t nb = m->ints[2];
  if (nb < 0 || nb > 16 || m->n_ints != 3 + nb)
    return mu_err_set(err, MU_EINVAL, "METRIC_DEF: %lld buckets in %u ints", (long long)nb, m->n_ints);
  if (m->n_strs < 2 || m->n_strs > 2 + 3) return mu_err_set(err, MU_EINVAL, "METRIC_DEF: %u strings", m->n_strs);
  if (m->ints[1] < 1 || m->ints[1] > 3)
    return mu_err_set(err, MU_EINVAL, "METRIC_DEF: type %lld", (long long)m->ints[1]);
  ret->id = m->ints[0];
  ret->type = (int)m->ints[1];
  ret->name = m->strs[0].p;
  ret->help = m->strs[1].p;
  ret->n_labels = m->n_strs - 2;
  for (size_t i = 0; i < ret->n_labels; i++) ret->labels[i] = m->strs[2 + i].p;
  ret->n_buckets = (size_t)nb;
  for (size_t i = 0; i < ret->n_buckets; i++) {
    double b = mu_pm_bits_double(m->ints[3 + i]);
    if (!(b - b == 0) || (i > 0 && !(b > ret->buckets[i - 1])))
      return mu_err_set(err, MU_EINVAL, "METRIC_DEF: bucket %zu not finite and ascending", i + 1);
    ret->buckets[i] = b;
  }
  return 0;
}
