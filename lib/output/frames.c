/* The output record format (frames.h): splitting a buffer into whole records, and writing
 * and reading output and gap records. Pure functions; no allocation. */
#include "lib/output/frames.h"

#include <string.h>

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_header(uint8_t *h, int kind, size_t len) {
  h[0] = 'M';
  h[1] = 'O';
  h[2] = (uint8_t)kind;
  h[3] = 0;
  h[4] = (uint8_t)len;
  h[5] = (uint8_t)(len >> 8);
  h[6] = (uint8_t)(len >> 16);
  h[7] = (uint8_t)(len >> 24);
}

long mu_output_frames_whole(const uint8_t *buf, size_t len) {
  size_t off = 0;
  while (len - off >= MU_OUTPUT_FRAME_HEADER) {
    const uint8_t *h = buf + off;
    if (h[0] != 'M' || h[1] != 'O' || h[2] < 1 || h[2] > MU_OUTPUT_GAP) return -1;
    uint32_t n = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
    if (n > MU_OUTPUT_FRAME_MAX || (h[2] == MU_OUTPUT_GAP && n != MU_OUTPUT_GAP_PAYLOAD)) return -1;
    if (len - off - MU_OUTPUT_FRAME_HEADER < n) break;
    off += MU_OUTPUT_FRAME_HEADER + n;
  }
  return (long)off;
}

void mu_output_frame_get(const uint8_t *buf, int *ret_kind, const uint8_t **ret_data, size_t *ret_len) {
  *ret_kind = buf[2];
  *ret_len = (size_t)buf[4] | (size_t)buf[5] << 8 | (size_t)buf[6] << 16 | (size_t)buf[7] << 24;
  *ret_data = buf + MU_OUTPUT_FRAME_HEADER;
}

size_t mu_output_frame_put(uint8_t *buf, int stream, const void *data, size_t len) {
  put_header(buf, stream == 2 ? 2 : 1, len);
  memcpy(buf + MU_OUTPUT_FRAME_HEADER, data, len);
  return MU_OUTPUT_FRAME_HEADER + len;
}

size_t mu_output_gap_put(uint8_t *buf, const mu_output_gap *g) {
  put_header(buf, MU_OUTPUT_GAP, MU_OUTPUT_GAP_PAYLOAD);
  uint8_t *p = buf + MU_OUTPUT_FRAME_HEADER;
  memset(p, 0, MU_OUTPUT_GAP_PAYLOAD);
  p[0] = (uint8_t)g->stream;
  p[1] = (uint8_t)g->reason;
  p[2] = (uint8_t)g->cause;
  put_u64(p + 8, g->start);
  put_u64(p + 16, g->len);
  return MU_OUTPUT_GAP_RECORD;
}

int mu_output_gap_get(const uint8_t *payload, size_t len, mu_output_gap *ret) {
  if (len != MU_OUTPUT_GAP_PAYLOAD || payload[0] > 2) return -1;
  ret->stream = payload[0];
  ret->reason = payload[1];
  ret->cause = payload[2];
  ret->start = get_u64(payload + 8);
  ret->len = get_u64(payload + 16);
  return 0;
}

const char *mu_output_drop_cause_text(int cause) {
  switch (cause) {
    case MU_OUTPUT_DROP_QUEUE: return "its write queue was full (the disk did not keep up)";
    case MU_OUTPUT_DROP_CAP: return "the spool cap was reached with no finished output left to evict";
    case MU_OUTPUT_DROP_WRITE: return "the spool file could not be written";
    case MU_OUTPUT_DROP_NOMEM: return "the agent was out of memory";
    default: return "the spool could not keep it";
  }
}
