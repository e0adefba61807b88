/* The messages between the agent and a muster-plugin-host process (one per out-of-process
 * plugin type), on a socketpair. A frame is a little-endian u32 body length, then the body:
 *   u8 kind, u8 zero, u16 n_ints, u32 n_strs, u64 task, n_ints x i64, n_strs x (u32 len, bytes).
 * Every message is a kind (MU_PM_*), the agent's task handle (0 = none), some integers and
 * some byte strings; which kind carries which is in the table in pmsg.c, checked on decode,
 * so a handler can index ints[] and strs[] up to the kind's minimum without checking. Frames
 * are bounded (max_body) and decoding bytes from the peer never trusts a length. */
#ifndef MU_PLUGIN_PMSG_H
#define MU_PLUGIN_PMSG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_PM_HEADER 4      /* the length prefix */
#define MU_PM_BODY_FIXED 16 /* kind .. task */
#define MU_PM_MAX_INTS 32
#define MU_PM_MAX_STRS 65536
#define MU_PM_DEFAULT_MAX_BODY (32u * 1024 * 1024) /* a START carries the whole spec */

typedef enum {
  /* host -> agent */
  MU_PM_HELLO = 1,       /* ints: abi, has_validate, has_cancel, has_cleanup, pid[, has_configure, has_health];
                           * strs: type, version, description[, schema (describe(), SDK v2)] */
  MU_PM_LOAD_FAILED,     /* strs: reason (the host exits after it) */
  MU_PM_START_FAILED,    /* task; strs: errbuf (validate or start refused) */
  MU_PM_OUTPUT,          /* task; ints: stream; strs: data */
  MU_PM_PROGRESS,        /* task; ints: percent x 1e6; strs: message */
  MU_PM_PARAM,           /* task; strs: key, value */
  MU_PM_FINISH,          /* task; ints: state, exit_code, signal, has_message; strs: message */
  MU_PM_SPAWN,           /* task; ints: call, proc, want_output, has_stdin, has_cwd, n_argv;
                           * strs: cwd, stdin, argv..., env... */
  MU_PM_PROC_KILL,       /* task; ints: proc */
  MU_PM_LOG,             /* task; ints: level; strs: text */
  MU_PM_CANCEL_EXTEND,   /* task; ints: call, ms */
  MU_PM_CANCEL_WITHDRAW, /* task; ints: call */
  MU_PM_PONG,            /* ints: nonce */
  /* SDK v2, host -> agent (task 0: plugin-wide; MU_PM_LOG with task 0 is a plugin-wide log) */
  MU_PM_CONFIGURED, /* ints: call, rc; strs: errbuf */
  MU_PM_HEALTH_IS,  /* ints: call, health; strs: reason */
  MU_PM_METRIC_DEF, /* ints: id, type, n_buckets, bucket bits x n_buckets; strs: name, help, labels... */
  MU_PM_METRIC,     /* ints: id, op (1 add, 2 set, 3 observe), value bits; strs: label values */
  /* agent -> host */
  MU_PM_START = 32,  /* task; ints: attempt, n_params; strs: job, task, agent, dir, spec, config, k1, v1, ... */
  MU_PM_CANCEL,      /* task; ints: reason */
  MU_PM_CLEANUP,     /* task */
  MU_PM_REPLY,       /* task; ints: call, rc; strs: errbuf */
  MU_PM_PROC_EXIT,   /* task; ints: proc, exit_code, signal, timed_out, cancelled, oom,
                           * suggested_state, wall_ms, user_cpu_us, sys_cpu_us, max_rss; strs: message */
  MU_PM_PROC_OUTPUT, /* task; ints: proc, stream; strs: data */
  MU_PM_PING,        /* ints: nonce */
  MU_PM_CONFIGURE,   /* SDK v2: ints: call; strs: config json */
  MU_PM_HEALTH,      /* SDK v2: ints: call */
} mu_pm_kind;

typedef struct mu_pstr {
  const char *p; /* in a decoded message: NUL-terminated (data may hold NULs: use len) */
  size_t len;
} mu_pstr;

/* A decoded message: one allocation, freed with free(). */
typedef struct mu_pmsg {
  uint8_t kind;
  uint64_t task;
  uint16_t n_ints;
  uint32_t n_strs;
  int64_t *ints;
  mu_pstr *strs;
} mu_pmsg;

/* The name of a kind ("START"), "?" when unknown. */
const char *mu_pm_kind_name(uint8_t kind);

/* Encodes one frame (length prefix included). *ret is malloc'd, the caller frees it.
 * MU_ENOSPC when the body would pass max_body, MU_EINVAL for an unknown kind or too few
 * ints/strs for it. */
int mu_pmsg_encode(uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs, size_t n_strs,
                   size_t max_body, uint8_t **ret, size_t *ret_len, mu_err *err);

/* Looks at buf: returns 0 with *ret_frame_len = 0 when more bytes are needed, 0 with the
 * frame's full length when one is complete, MU_EINVAL when the length prefix is over
 * max_body or under the fixed part (the peer is broken: drop it). */
int mu_pmsg_frame_len(const uint8_t *buf, size_t len, size_t max_body, size_t *ret_frame_len, mu_err *err);

/* Decodes one complete frame (as measured by mu_pmsg_frame_len). MU_EINVAL with a message
 * naming the problem: counts past their bounds or the frame, a string running off the end,
 * trailing bytes, an unknown kind, fewer ints/strs than the kind needs. *ret: free(). */
int mu_pmsg_decode(const uint8_t *frame, size_t len, size_t max_body, mu_pmsg **ret, mu_err *err);

/* SDK v2: a METRIC_DEF read into a family description (labels/buckets point into m and the
 * struct). MU_EINVAL when counts do not add up: buckets over 16 or ints not 3 + n_buckets,
 * over 3 labels, buckets not finite and ascending, an unknown type. */
typedef struct mu_pm_metric_def {
  int64_t id;
  int type; /* MUSTER_METRIC_* */
  const char *name, *help;
  const char *labels[4]; /* NULL-terminated */
  size_t n_labels;
  double buckets[16];
  size_t n_buckets;
} mu_pm_metric_def;
int mu_pmsg_metric_def(const mu_pmsg *m, mu_pm_metric_def *ret, mu_err *err);

/* A double carried in an int64 (its bits), both ways. */
int64_t mu_pm_double_bits(double v);
double mu_pm_bits_double(int64_t bits);

#endif
