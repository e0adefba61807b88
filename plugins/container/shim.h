/* The container's shim half of re-adoption (conmon / containerd-shim in spirit): with a shim
 * dir, the container's stdout and stderr are pipes the helper owns and relays to its own
 * (the agent's pipes). When the agent dies the helper does not kill the container: it keeps
 * reading those pipes into files in the shim dir, and when the container ends it writes the
 * exit there. A restarted agent that still has the attempt in its journal finds the helper by
 * the shim dir's pid file (pid and start time) and its cgroup, reads the files and the exit,
 * and reports the real end (agent/exec/adopt.h).
 *
 * Shim dir files (all written by rename, so a reader sees a whole file or none):
 *   pid      "<pid> <starttime>\n": the helper (starttime: field 22 of /proc/<pid>/stat)
 *   stdout   what the container wrote to stdout after the agent died (appended)
 *   stderr   the same for stderr
 *   exit     "<code>\n": the task's exit code, written after both pipes reached EOF
 *   read     "<stdout bytes> <stderr bytes>\n": how far a re-adopting agent has emitted the
 *            files (written by the agent, adopt.c), so an agent restarted again goes on
 *            from there instead of repeating them */
#ifndef MU_CONTAINER_SHIM_H
#define MU_CONTAINER_SHIM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mu_shim {
  char dir[4096]; /* "" = no shim: the container writes to the helper's fds 1 and 2 */
  int in[2];      /* read ends of the container's stdout/stderr pipes, -1 once at EOF */
  int out[2];     /* where relayed output goes: fds 1/2, then the shim dir's files */
  int child[2];   /* write ends the container takes as fds 1 and 2; -1 once closed here */
  bool detached;  /* the agent is gone: output goes to the files */
} mu_shim;

/* Makes the shim dir (0700) and the container's output pipes (s->child: the write ends the
 * container takes as fds 1 and 2; the helper closes its copies after the clone) and writes
 * the pid file. Returns 0, or -1 with a message on stderr; s is then a no-shim (dir ""): the
 * container writes to fds 1 and 2 directly and is killed with the agent, as without a shim. */
int mu_shim_open(mu_shim *s, const char *dir);

/* The helper's copies of the write ends, after the clone. */
void mu_shim_close_child(mu_shim *s);

/* The agent died: further output goes to the shim dir's files. Idempotent. */
void mu_shim_detach(mu_shim *s);

/* Relays what stream i (0 stdout, 1 stderr) has now; a write to a closed agent pipe detaches. */
void mu_shim_pump(mu_shim *s, int i);

/* Reads both pipes to EOF (the container has exited: its pid namespace is gone). */
void mu_shim_drain(mu_shim *s);

/* Records the task's exit code in the shim dir and closes everything. */
void mu_shim_close(mu_shim *s, int exit_code);

#endif
