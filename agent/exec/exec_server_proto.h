/* The wire between the agent (exec_server.c) and `muster-exec --server` (helper_server.c): one
 * SOCK_SEQPACKET message per request or reply on a socketpair that is fd 3 in the server.
 *
 * Spawn request: mu_xs_req, then req.strings_len bytes of NUL-terminated strings: the cwd, then
 * n_join cgroup.procs paths, n_argv argv words, n_env K=V entries. Its SCM_RIGHTS carry the
 * task's stdout, stderr and control pipe ends, plus its stdin first when has_stdin (the server
 * gives the task /dev/null otherwise). The whole message is at most MU_XS_MAX_REQ bytes; larger
 * ones go through posix_spawn of the one-shot helper instead.
 *
 * The server's first message is READY, sent before it reads any request: a helper that dies
 * without it (e.g. an older muster-exec without --server) has started nothing.
 * Replies: mu_xs_rep. STARTED (pid in its own session; the task may already be gone), then
 * EXITED with the wait4() status and rusage; or REFUSED (err: an errno) when no process was
 * made. A server that dies drops every request in flight: the agent fails them and starts a
 * new server for the next one. Both ends are one machine and one build: no versioning beyond
 * the magic. */
#ifndef MU_EXEC_SERVER_PROTO_H
#define MU_EXEC_SERVER_PROTO_H

#include <stdint.h>

#define MU_XS_MAGIC 0x3153584du /* "MXS1" */
#define MU_XS_MAX_REQ (128 * 1024)
#define MU_XS_FD 3 /* the socket in the server */

enum { MU_XS_STARTED = 1, MU_XS_EXITED = 2, MU_XS_REFUSED = 3, MU_XS_READY = 4 };

typedef struct mu_xs_req {
  uint32_t magic;
  uint32_t id;
  int32_t uid, gid;                /* -1: keep the server's */
  int64_t rl_as, rl_nproc, rl_cpu; /* -1: none */
  uint32_t n_join, n_argv, n_env;
  uint32_t has_stdin;
  uint32_t strings_len;
  uint32_t pad;
} mu_xs_req;

typedef struct mu_xs_rep {
  uint32_t magic;
  uint32_t kind; /* MU_XS_STARTED, _EXITED, _REFUSED */
  uint32_t id;
  int32_t pid;
  int32_t code, sig; /* EXITED: exit code (-1 when signalled) and signal */
  int32_t err;       /* REFUSED: errno */
  int32_t pad;
  int64_t utime_us, stime_us, maxrss_kb;
  int64_t inblock, oublock; /* rusage block counts (512-byte units) */
} mu_xs_rep;

#endif
