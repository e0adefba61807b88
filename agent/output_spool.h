/* The agent's output spool: every attempt's full output (what the supervisor delivered, so
 * already capped by the task's output limit) in <dir>/<key>.log, where key is the task id,
 * percent-encoded to [A-Za-z0-9._-] (long ids: a prefix and a hash), then ".<attempt>".
 * TaskLogs reads it back through the agent's stream (agent/logs.c).
 *
 * On disk: a sequence of records (lib/output/frames.h): output of stdout or stderr, so both
 * stay apart and in the order they were produced, and gap records where output the spool saw
 * is missing -- dropped for a bound, or past the task's output limit (mu_output_spool_
 * truncated) -- with the stream offsets it covers, so a reader can say which bytes. A torn
 * last record (crash mid-write) is ignored by readers.
 *
 * Writes are queued on the loop and done by libuv fs requests (the thread pool): one write in
 * flight per file, the loop never waits on the disk. Bounds: max_bytes over every file (the
 * oldest finished attempts are evicted first to make room; past that, new output is dropped,
 * counted as overflow and recorded as a gap), max_pending bytes queued for writing, and
 * finished attempts older than retention_ms are removed by mu_output_spool_sweep. Gap records
 * go in before the next output that fits, or when the attempt finishes (then past the bounds
 * by at most three records). Loop thread only. */
#ifndef MU_AGENT_OUTPUT_SPOOL_H
#define MU_AGENT_OUTPUT_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"
#include "lib/output/frames.h"

typedef struct mu_output_spool mu_output_spool;
typedef struct mu_output_reader mu_output_reader;

typedef struct mu_output_spool_opts {
  uint64_t max_bytes;         /* every spooled file together; 0 = 1 GiB */
  int64_t retention_ms;       /* finished attempts kept this long; 0 = 7 days */
  uint64_t max_pending;       /* bytes queued for writing; 0 = 16 MiB */
  uint32_t max_evicted_names; /* evicted files remembered (to say "evicted"); 0 = 4096 */
} mu_output_spool_opts;

typedef struct mu_output_spool_stats {
  uint64_t files;         /* attempts in the spool */
  uint64_t bytes;         /* their size (records accepted, written or queued) */
  uint64_t evicted_files; /* removed for the cap */
  uint64_t evicted_bytes;
  uint64_t expired_files;  /* removed for the retention age */
  uint64_t overflow_bytes; /* output not spooled: cap or pending bound hit */
  uint64_t write_errors;
} mu_output_spool_stats;

/* Opens the spool in dir (created if missing) and indexes the files already there, each as
 * a finished attempt (synchronously: call at start-up, before the loop serves traffic). *ret
 * is owned by the caller; release with mu_output_spool_close. MU_EIO names the directory. */
int mu_output_spool_open(uv_loop_t *loop, const char *dir, const mu_output_spool_opts *opts, mu_output_spool **ret,
                         mu_err *err);

/* An attempt re-adopted after an agent restart (agent/exec/adopt.h): its file, indexed at open
 * as a finished attempt, is continued at its end instead of begun again. Stream offsets of
 * later gap records count from the restart. Nothing when the spool has no such file. */
void mu_output_spool_resume(mu_output_spool *s, const char *task_id, uint32_t attempt);

/* Starts an attempt's file (idempotent; append does it too). */
void mu_output_spool_begin(mu_output_spool *s, const char *task_id, uint32_t attempt);
/* Appends output of stream (1 stdout, 2 stderr) as records; data is copied. Output that does
 * not fit the bounds is dropped, counted, logged once per attempt and recorded as a gap. */
void mu_output_spool_append(mu_output_spool *s, const char *task_id, uint32_t attempt, int stream, const void *data,
                            size_t len);
/* Records that `bytes` more output of the attempt were never captured (past the task's output
 * limit): a gap after everything appended, written when the attempt finishes. */
void mu_output_spool_truncated(mu_output_spool *s, const char *task_id, uint32_t attempt, uint64_t bytes);
/* Marks the attempt finished: nothing more is appended; eviction may take it. */
void mu_output_spool_finish(mu_output_spool *s, const char *task_id, uint32_t attempt);

/* Removes finished attempts past the retention age, and evicts for the cap. */
void mu_output_spool_sweep(mu_output_spool *s);
void mu_output_spool_stats_get(const mu_output_spool *s, mu_output_spool_stats *ret);

/* Writes what is queued, then frees the spool and calls cb (may be NULL) on the loop. Every
 * reader must be closed first. */
void mu_output_spool_close(mu_output_spool *s, void (*cb)(void *arg), void *arg);

/* 1 when the attempt's output was here and was removed (evicted for the cap or past the
 * retention age; remembered for the last max_evicted_names files), else 0. */
int mu_output_spool_evicted(const mu_output_spool *s, const char *task_id, uint32_t attempt);

/* The file name key of (task_id, attempt), without ".log", into buf (>= 256 bytes). */
void mu_output_spool_key(const char *task_id, uint32_t attempt, char *buf, size_t size);

/* --- reading --- */

typedef enum {
  MU_OUTPUT_READ_DATA = 0, /* records past the offset are on disk: read them */
  MU_OUTPUT_READ_WAIT,     /* nothing new yet; the attempt is still running */
  MU_OUTPUT_READ_EOF,      /* the attempt is finished and everything was read */
} mu_output_read_state;

/* Opens a reader at offset (a record boundary: 0, or the sum of what earlier reads gave).
 * *ret is owned by the caller; release with mu_output_reader_close. MU_ENOENT with a message
 * saying whether the attempt's output is unknown here or was evicted / expired. */
int mu_output_reader_open(mu_output_spool *s, const char *task_id, uint32_t attempt, uint64_t offset,
                          mu_output_reader **ret, mu_err *err);
mu_output_read_state mu_output_reader_state(const mu_output_reader *r);
uint64_t mu_output_reader_offset(const mu_output_reader *r);
/* Gap records (into buf, room for 4 * MU_OUTPUT_GAP_RECORD) for output the spool saw and has
 * not put in the file, and never will as things stand: drops not yet followed by output that
 * fit, or what a file that could not be written lost. For the end of a read (it may come
 * later in the file otherwise). Returns the bytes written. */
size_t mu_output_reader_missing(const mu_output_reader *r, uint8_t *buf, size_t size);
/* Reads whole records after the offset, at most max bytes (>= MU_OUTPUT_FRAME_HEADER +
 * MU_OUTPUT_FRAME_MAX), and calls cb once on the loop: status 0 with data (borrowed for the
 * callback; len may be 0 when the rest is a torn record), else a negative MU_E* with a
 * message. The offset advances by len. cb never runs before this returns; an error return
 * means it will not run: MU_EAGAIN when a read is in flight, MU_ENOENT when the state is not
 * DATA, MU_EIO / MU_ENOMEM when the read cannot be queued. */
typedef void (*mu_output_read_cb)(mu_output_reader *r, int status, const char *message, const uint8_t *data, size_t len,
                                  void *arg);
int mu_output_reader_read(mu_output_reader *r, size_t max, mu_output_read_cb cb, void *arg);
/* Frees the reader (a read in flight is finished quietly first; its cb is not called). */
void mu_output_reader_close(mu_output_reader *r);

#endif
