/* The agent's durability journal: an append-only file of opaque event records, each with a
 * sequence number, so no task event is lost across a dropped connection, a control-plane
 * failover or an agent restart. The agent appends an event before sending it, and acks records
 * when the control plane's Ack{sequence} arrives.
 *
 * On disk: records of a 24-byte little-endian header {magic "MUJ1", type, seq u64, len u32,
 * crc32 over type|seq|len|payload} and the payload. Types: event, ack (all seq <= s are done),
 * base (compaction point: sequence numbers continue after s). A torn or corrupt tail (crash mid-
 * write) is cut off at open with a warning, never fatal.
 *
 * Threading: appends and acks are queued on the loop thread; a libuv worker (uv_queue_work)
 * writes each batch and calls fdatasync() once per batch, so the loop never waits on the disk.
 * Group commit: a batch starts at the next turn of the loop (a uv_idle_t), so everything one
 * turn's callbacks append, ack or mark (several tasks' events, a task's event and its mark)
 * shares one fdatasync; what arrives while a batch is in flight forms the next one.
 * on_persisted reports the highest sequence durably written. One batch or compaction is in
 * flight at a time. When acked records make up more than compact_bytes of the file, it is
 * rewritten with only the live records (tmp file + fdatasync + rename + directory fsync).
 *
 * Bounds: live (unacked) bytes are capped by max_bytes; an append past it fails with
 * MU_ENOSPC and counts an overflow. Everything live is also kept in memory (same bound), so
 * unacked records can be re-sent after a reconnect without touching the disk.
 *
 * Marks: small keyed records (types mark and unmark, seq 0) that acks never drop, for what
 * must outlive an acked event: the agent marks each attempt as it starts and unmarks it when
 * it ends, so after a crash it knows what was running even though the control plane acked
 * every event about it. They are written in order with the events around them, kept by
 * compaction while set, and held in memory (at most max_marks). An agent older than marks
 * takes the first mark for a corrupt tail and cuts the file there. */
#ifndef MU_JOURNAL_H
#define MU_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"

typedef struct mu_journal mu_journal;

typedef struct mu_journal_opts {
  uint64_t max_bytes;     /* cap on live records (headers included); 0 = 64 MiB */
  uint64_t compact_bytes; /* rewrite when dead bytes exceed this; 0 = max_bytes / 2 */
  uint32_t max_record;    /* largest payload; 0 = 4 MiB */
  uint32_t max_marks;     /* marks set at once; 0 = 4096 */
  /* Called on the loop thread after a batch is durable; may be NULL. */
  void (*on_persisted)(mu_journal *j, uint64_t upto_seq, void *arg);
  /* Called on the loop thread when a write fails (the journal keeps records in memory and
   * retries with the next batch); may be NULL. */
  void (*on_error)(mu_journal *j, int code, const char *msg, void *arg);
  void *arg;
} mu_journal_opts;

typedef struct mu_journal_stats {
  uint64_t live_records;
  uint64_t live_bytes;
  uint64_t file_bytes;
  uint64_t next_seq;
  uint64_t persisted_seq; /* highest seq durably on disk */
  uint64_t acked_seq;
  uint64_t overflows;  /* appends refused for max_bytes */
  uint64_t torn_bytes; /* cut off the tail at open */
  uint64_t compactions;
  uint64_t write_errors;
  uint64_t batches;    /* append batches written (one fdatasync each) */
  uint64_t marks;      /* marks set */
  uint64_t mark_bytes; /* their records' bytes (headers included) */
} mu_journal_stats;

/* Opens (creating if needed) the journal at path and replays it synchronously: call at
 * start-up, before the loop serves traffic. Unacked records are then visible through
 * mu_journal_foreach. *ret is owned by the caller; release with mu_journal_close. Errors:
 * MU_EIO (message names the file), MU_ENOSPC when the replayed records exceed max_bytes. */
int mu_journal_open(uv_loop_t *loop, const char *path, const mu_journal_opts *opts, mu_journal **ret, mu_err *err);

/* Visits live records in sequence order; stop early by returning non-zero. data is borrowed
 * until the next append/ack. */
typedef int (*mu_journal_visit_cb)(void *arg, uint64_t seq, const void *data, size_t len);
void mu_journal_foreach(const mu_journal *j, mu_journal_visit_cb cb, void *arg);

/* Queues a record (copied) and returns its sequence number in *ret_seq. Durable once
 * on_persisted reports a seq >= it. MU_ENOSPC when the bound is hit, MU_EINVAL when too big
 * or after close. */
int mu_journal_append(mu_journal *j, const void *data, size_t len, uint64_t *ret_seq, mu_err *err);

/* Drops every record with seq <= upto (the control plane has them). Idempotent. */
void mu_journal_ack(mu_journal *j, uint64_t upto);

void mu_journal_stats_get(const mu_journal *j, mu_journal_stats *ret);

/* Sets mark key (a non-empty string of at most 1 KiB) to data (copied), replacing its old
 * value; durable with the next batch. MU_ENOSPC when max_marks are set already, MU_EINVAL for
 * a bad key, a record over max_record or after close, MU_ENOMEM. */
int mu_journal_mark(mu_journal *j, const char *key, const void *data, size_t len, mu_err *err);

/* Drops mark key (durable with the next batch); nothing when it is not set. */
void mu_journal_unmark(mu_journal *j, const char *key);

/* Visits the marks set (those replayed at open first, in the order they were first set); stop
 * early by returning non-zero. key and data are borrowed until the next mark/unmark. */
typedef int (*mu_journal_mark_cb)(void *arg, const char *key, const void *data, size_t len);
void mu_journal_foreach_mark(const mu_journal *j, mu_journal_mark_cb cb, void *arg);

/* Writes what is queued, then frees the journal and calls cb (may be NULL) on the loop. */
void mu_journal_close(mu_journal *j, void (*cb)(void *arg), void *arg);

/* CRC-32 (IEEE 802.3, as zlib's crc32), continuing from crc (start with 0). */
uint32_t mu_crc32(uint32_t crc, const void *data, size_t len);

#endif
