/* `muster logs`: the output of a job's tasks as Admin/TaskLogs streams it
 * (controlplane/task_logs.c): raw for one task, each line prefixed with its task for several,
 * the control plane's notes on stderr. Every byte is written or the command fails: stdout may
 * be a pipe another process made non-blocking (a CI runner), so a full pipe is waited for, and
 * a write that fails ends the command with exit 1. Output the call says is missing (a LogChunk
 * with a gap) also makes the exit 1, unless --allow-partial. Writing blocks the loop on
 * purpose: gRPC's flow control then tells the control plane, and through it the agent, to
 * wait for us. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/output_json.h"
#include "cli/logs_grep.h"
#include "lib/pbjson/pbjson.h"
#include "muster/v1/admin.pb-c.h"

#define MU_LOGS_LINE_MAX (64 * 1024) /* a longer line is printed in pieces */

typedef struct logs_state {
  const mu_cli_opts *opts;
  mu_logs_grep *grep; /* --grep: lines are collected, printed grouped at the end */
  int prefix;
  size_t gaps;     /* chunks that said output is missing */
  char error[400]; /* set: stop, exit 1 */
  /* prefix mode: the unfinished last line of the task whose output came last */
  char *partial_task;
  char *partial;
  size_t partial_len;
  char *out; /* prefix mode: the lines of one chunk, written at once */
  size_t out_len, out_cap;
} logs_state;

/* Writes all of buf to fd, waiting for room when fd is non-blocking. 0, or -1 with errno. */
static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n >= 0) {
      p += n;
      len -= (size_t)n;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return -1;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  return 0;
}

static void put_out(logs_state *ls, const void *data, size_t len) {
  if (ls->error[0] == '\0' && write_all(STDOUT_FILENO, data, len) != 0)
    snprintf(ls->error, sizeof ls->error, "writing the output: %s", strerror(errno));
}

static void put_err(const char *fmt, const char *text) {
  char buf[1200];
  int n = snprintf(buf, sizeof buf, fmt, text);
  write_all(STDERR_FILENO, buf, n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Appends to the lines of this chunk (prefix mode). */
static void out_add(logs_state *ls, const char *p, size_t n) {
  if (ls->out_len + n > ls->out_cap) {
    size_t cap = ls->out_cap ? ls->out_cap : 4096;
    while (cap < ls->out_len + n) cap *= 2;
    char *g = realloc(ls->out, cap);
    if (g == NULL) {
      snprintf(ls->error, sizeof ls->error, "out of memory");
      return;
    }
    ls->out = g;
    ls->out_cap = cap;
  }
  memcpy(ls->out + ls->out_len, p, n);
  ls->out_len += n;
}

static void out_line(logs_state *ls, const char *task_id, const char *p, size_t n) {
  out_add(ls, task_id, strlen(task_id));
  out_add(ls, ": ", 2);
  out_add(ls, p, n);
  out_add(ls, "\n", 1);
}

static void logs_flush_partial(logs_state *ls) {
  if (ls->partial_len > 0) out_line(ls, ls->partial_task, ls->partial, ls->partial_len);
  ls->partial_len = 0;
}

static void out_write(logs_state *ls) {
  put_out(ls, ls->out, ls->out_len);
  ls->out_len = 0;
}

/* Prints "task: line" per line, like pdsh; a line split over chunks is printed once whole. */
static void logs_print_prefixed(logs_state *ls, const char *task_id, const char *p, size_t n) {
  if (ls->partial_task == NULL || strcmp(ls->partial_task, task_id) != 0) {
    logs_flush_partial(ls);
    free(ls->partial_task);
    ls->partial_task = strdup(task_id);
    if (ls->partial_task == NULL) return;
  }
  if (ls->partial == NULL) {
    ls->partial = malloc(MU_LOGS_LINE_MAX);
    if (ls->partial == NULL) return;
  }
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      out_line(ls, task_id, ls->partial, ls->partial_len);
      ls->partial_len = 0;
      continue;
    }
    if (ls->partial_len == MU_LOGS_LINE_MAX) logs_flush_partial(ls);
    ls->partial[ls->partial_len++] = p[i];
  }
  out_write(ls);
}

static void print_json(logs_state *ls, const ProtobufCMessage *msg) {
  char *buf = mu_cli_json_message_line(msg);
  if (buf == NULL) {
    snprintf(ls->error, sizeof ls->error, "cannot print a chunk as JSON: out of memory");
  } else {
    put_out(ls, buf, strlen(buf));
    put_out(ls, "\n", 1);
  }
  free(buf);
}

static int on_log(void *ud, const uint8_t *data, size_t len) {
  logs_state *ls = ud;
  Muster__V1__LogChunk *lc = muster__v1__log_chunk__unpack(NULL, len, data);
  if (lc == NULL) {
    snprintf(ls->error, sizeof ls->error, "a LogChunk of %zu bytes cannot be decoded", len);
    return 1;
  }
  if (lc->gap != NULL) ls->gaps++;
  if (lc->note[0] != '\0' && !ls->opts->json) {
    /* a note from the control plane (where the output comes from, what is missing); -q: none */
    if (ls->prefix && !ls->opts->quiet) {
      logs_flush_partial(ls);
      out_write(ls);
    }
    if (!ls->opts->quiet) put_err("muster logs: note: %s\n", lc->note);
  } else if (ls->grep != NULL && lc->output != NULL) {
    mu_logs_grep_feed(ls->grep, lc->task_id, (const char *)lc->output->data.data, lc->output->data.len);
  } else if (lc->output != NULL || lc->note[0] != '\0') {
    if (ls->opts->json) print_json(ls, &lc->base);
    else if (ls->prefix)
      logs_print_prefixed(ls, lc->task_id, (const char *)lc->output->data.data, lc->output->data.len);
    else put_out(ls, lc->output->data.data, lc->output->data.len);
  }
  protobuf_c_message_free_unpacked(&lc->base, NULL);
  return ls->error[0] != '\0';
}

int mu_cmd_logs(const mu_cli_opts *opts, int argc, char **argv) {
  static const char usage[] =
      "usage: muster logs JOB [TASK] [-f] [--allow-partial] [--grep REGEX [--hosts H1,H2]]\n\n"
      "Prints the output of a job's tasks (TASK is AGENT/NAME; all tasks when omitted, each\n"
      "line prefixed with its task): the full output from the agent's spool, or the tail the\n"
      "control plane keeps when the agent is away (a note on stderr says so). -f follows\n"
      "running tasks until they end. -o json prints one LogChunk per line.\n"
      "Output that is missing (dropped or evicted on the agent, past the task's output limit,\n"
      "not in the tail) is named on stderr by its byte range, and the exit code is 1 unless\n"
      "--allow-partial. Exit codes: 0 all output printed, 1 output missing or an error, 2\n"
      "bad usage.\n"
      "--grep prints only the lines that match REGEX (POSIX extended), hosts with the same\n"
      "matching lines grouped once (the biggest group first, so the odd host out is last),\n"
      "then the hosts without a match; --hosts narrows it to those agents. Exit 0 when a\n"
      "line matched, 1 when none did.\n";
  Muster__V1__TaskLogsRequest req = MUSTER__V1__TASK_LOGS_REQUEST__INIT;
  const char *pos[2] = {NULL, NULL}, *grep = NULL, *hosts = NULL;
  int n = 0, allow_partial = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0) {
      req.follow = 1;
    } else if (strcmp(argv[i], "--grep") == 0 && i + 1 < argc) {
      grep = argv[++i];
    } else if (strcmp(argv[i], "--hosts") == 0 && i + 1 < argc) {
      hosts = argv[++i];
    } else if (strcmp(argv[i], "--allow-partial") == 0) {
      allow_partial = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "muster logs: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    } else if (n < 2) {
      pos[n++] = argv[i];
    } else {
      fprintf(stderr, "muster logs: unexpected argument '%s'\n%s", argv[i], usage);
      return 2;
    }
  }
  if (n == 0) {
    fprintf(stderr, "muster logs: JOB is required\n%s", usage);
    return 2;
  }
  if (hosts != NULL && grep == NULL) {
    fprintf(stderr, "muster logs: --hosts narrows --grep; give --grep REGEX too\n%s", usage);
    return 2;
  }
  if (grep != NULL && (req.follow || opts->json)) {
    fprintf(stderr, "muster logs: --grep groups finished output; not with -f or -o json\n");
    return 2;
  }
  req.job_id = (char *)pos[0];
  req.task_id = (char *)(pos[1] ? pos[1] : "");
  logs_state ls = {.opts = opts, .prefix = pos[1] == NULL};
  mu_err err = {0};
  if (grep != NULL && mu_logs_grep_new(grep, hosts, &ls.grep, &err) != 0) {
    fprintf(stderr, "muster logs: %s\n", err.msg);
    return 2;
  }
  fflush(stdout); /* from here on stdout is written with write(2) only */
  int rc = mu_cli_stream(opts, "/muster.v1.Admin/TaskLogs", &req.base, on_log, NULL, &ls, &err);
  logs_flush_partial(&ls);
  out_write(&ls);
  size_t matched = 0;
  if (ls.grep != NULL) {
    matched = mu_logs_grep_print(ls.grep, stdout);
    fflush(stdout);
    mu_logs_grep_free(ls.grep);
  }
  free(ls.partial_task);
  free(ls.partial);
  free(ls.out);
  if (ls.error[0] != '\0') {
    put_err("muster logs: %s\n", ls.error);
    return 1;
  }
  if (rc != 0) {
    put_err("muster logs: %s\n", err.msg);
    return 1;
  }
  if (ls.gaps > 0 && !allow_partial) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "%zu part%s of the output %s missing (the notes above say which "
             "bytes); --allow-partial accepts that",
             ls.gaps, ls.gaps == 1 ? "" : "s", ls.gaps == 1 ? "is" : "are");
    put_err("muster logs: %s\n", msg);
    return 1;
  }
  return grep != NULL && matched == 0 ? 1 : 0;
}
