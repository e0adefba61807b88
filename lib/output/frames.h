/* The record format of task output, as the agent's output spool keeps it on disk
 * (agent/output_spool.h), the agent sends it in LogRequestReply.data and the control plane
 * reads it (controlplane/task_logs.c). A record is an 8-byte header {'M', 'O', kind, 0,
 * payload length u32 little-endian} and its payload:
 *   kind 1 (stdout) or 2 (stderr): at most MU_OUTPUT_FRAME_MAX bytes of that stream's output;
 *   kind 3 (a gap): MU_OUTPUT_GAP_PAYLOAD bytes saying which output bytes are missing here
 *     {stream (0: stdout and stderr together), reason, cause, 5 zero bytes, start u64, length
 *     u64, little-endian}. Offsets count one stream's bytes, or the whole output for stream 0.
 * Older readers stop at a gap record as malformed: they never pass a hole off as whole. */
#ifndef MU_OUTPUT_FRAMES_H
#define MU_OUTPUT_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define MU_OUTPUT_FRAME_HEADER 8
#define MU_OUTPUT_FRAME_MAX 32768 /* payload bytes per output record */
#define MU_OUTPUT_GAP 3           /* the record kind of a gap */
#define MU_OUTPUT_GAP_PAYLOAD 24
#define MU_OUTPUT_GAP_RECORD (MU_OUTPUT_FRAME_HEADER + MU_OUTPUT_GAP_PAYLOAD)

typedef enum {
  MU_OUTPUT_GAP_DROPPED = 1,   /* the spool could not keep it (cause says why) */
  MU_OUTPUT_GAP_TRUNCATED = 2, /* past the task's output limit: never captured */
} mu_output_gap_reason;

typedef enum {
  MU_OUTPUT_DROP_UNKNOWN = 0,
  MU_OUTPUT_DROP_QUEUE = 1, /* the write queue was full: the disk did not keep up */
  MU_OUTPUT_DROP_CAP = 2,   /* the spool cap, with no finished output left to evict */
  MU_OUTPUT_DROP_WRITE = 3, /* the file could not be written */
  MU_OUTPUT_DROP_NOMEM = 4,
} mu_output_drop_cause;

typedef struct mu_output_gap {
  int stream;     /* 1, 2, or 0 for the whole output */
  int reason;     /* mu_output_gap_reason */
  int cause;      /* mu_output_drop_cause, for MU_OUTPUT_GAP_DROPPED */
  uint64_t start; /* the first missing byte */
  uint64_t len;
} mu_output_gap;

/* The bytes of whole records at the start of buf (0 when the first one is incomplete); -1
 * when a header is malformed (or a gap record has the wrong size). */
long mu_output_frames_whole(const uint8_t *buf, size_t len);
/* The record at buf (whole, as checked above): its kind (1, 2 or MU_OUTPUT_GAP) and payload. */
void mu_output_frame_get(const uint8_t *buf, int *ret_kind, const uint8_t **ret_data, size_t *ret_len);
/* Writes one output record of stream (1 or 2) with len <= MU_OUTPUT_FRAME_MAX bytes into buf
 * (room for MU_OUTPUT_FRAME_HEADER + len); returns the bytes written. */
size_t mu_output_frame_put(uint8_t *buf, int stream, const void *data, size_t len);
/* Writes the gap record of g into buf (MU_OUTPUT_GAP_RECORD bytes); returns that size. */
size_t mu_output_gap_put(uint8_t *buf, const mu_output_gap *g);
/* The gap in a gap record's payload; 0, or -1 when it is not one. */
int mu_output_gap_get(const uint8_t *payload, size_t len, mu_output_gap *ret);
/* Why output was dropped, for people ("the spool's write queue was full ..."); never NULL. */
const char *mu_output_drop_cause_text(int cause);

#endif
