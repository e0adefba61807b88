/* Blocking unary calls for the CLI over lib/rpc: a private loop and engine per call, torn
 * down before returning. --addr may list several control planes ("a,b,c"): each is tried in
 * turn while they answer UNAVAILABLE without naming a leader; a leader named in the
 * `muster-leader` trailer is followed at once. */
#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/rpc/rpc.h"

typedef struct call_state {
  int done;
  int code;
  char message[1024];
  char leader[300];
  uint8_t *reply;
  size_t reply_len;
} call_state;

static void on_reply(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  call_state *cs = ud;
  cs->done = 1;
  cs->code = st->code;
  snprintf(cs->message, sizeof cs->message, "%s", st->message);
  const char *leader = mu_rpc_metadata_get(st->trailers, "muster-leader");
  if (leader != NULL) snprintf(cs->leader, sizeof cs->leader, "%s", leader);
  if (reply != NULL) {
    cs->reply = malloc(len ? len : 1);
    if (cs->reply != NULL) memcpy(cs->reply, reply, len);
    cs->reply_len = len;
  }
}

static void on_closed(void *ud) { *(int *)ud = 1; }

static int err_from_code(int code) {
  switch (code) {
    case MU_RPC_INVALID_ARGUMENT: return MU_EINVAL;
    case MU_RPC_NOT_FOUND: return MU_ENOENT;
    case MU_RPC_ALREADY_EXISTS: return MU_EEXIST;
    case MU_RPC_PERMISSION_DENIED: return MU_EPERM;
    case MU_RPC_DEADLINE_EXCEEDED: return MU_ETIMEDOUT;
    default: return MU_EIO;
  }
}

static int call_once(const char *addr, int64_t timeout_ms, const char *path, const uint8_t *req,
                     size_t req_len, call_state *cs, mu_err *err) {
  uv_loop_t loop;
  mu_rpc_engine *engine = NULL;
  mu_rpc_channel *channel = NULL;
  int rc;
  uv_loop_init(&loop);
  if ((rc = mu_rpc_engine_new(&loop, &engine, err)) != 0) goto out;
  if ((rc = mu_rpc_channel_new(engine, addr, NULL, NULL, &channel, err)) != 0) goto out;
  if ((rc = mu_rpc_unary(channel, path, timeout_ms, NULL, req, req_len, on_reply, cs, err)) != 0)
    goto out;
  while (!cs->done) uv_run(&loop, UV_RUN_ONCE);
out:
  if (engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(engine, on_closed, &closed);
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_loop_close(&loop);
  return rc;
}

#define MU_CLI_MAX_HOPS 8

/* The i-th address of the comma-separated list (trimmed) into buf; 0 when there is none. */
static int nth_addr(const char *list, size_t i, char *buf, size_t size) {
  const char *p = list;
  for (size_t k = 0; k < i; k++) {
    p = strchr(p, ',');
    if (p == NULL) return 0;
    p++;
  }
  while (*p == ' ') p++;
  size_t n = strcspn(p, ", ");
  if (n == 0 || n >= size) return 0;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return 1;
}

/* With several addresses, points opts->addr at entry i of the list (the one that answered,
 * or redirected us to the leader), so later calls of this command, streams included, go
 * there first: the list lives in argv or the environment, which may be shortened in place. */
static void remember_addr(const mu_cli_opts *opts, size_t i) {
  char *p = (char *)opts->addr;
  if (strchr(p, ',') == NULL) return;
  for (size_t k = 0; k < i; k++) p = strchr(p, ',') + 1;
  while (*p == ' ') p++;
  p[strcspn(p, ", ")] = '\0';
  ((mu_cli_opts *)opts)->addr = p;
}

int mu_cli_unary(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply,
                 mu_err *err) {
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  protobuf_c_message_pack(req, buf);
  char addr[300];
  size_t next = 1; /* the next list entry to try */
  if (!nth_addr(opts->addr, 0, addr, sizeof addr)) {
    free(buf);
    return mu_err_set(err, MU_EINVAL, "--addr: '%s' is not HOST:PORT[,HOST:PORT...]", opts->addr);
  }
  int rc = 0;
  for (int hop = 0; hop < MU_CLI_MAX_HOPS; hop++) {
    call_state cs;
    memset(&cs, 0, sizeof cs);
    rc = call_once(addr, opts->timeout_ms, path, buf, len, &cs, err);
    if (rc != 0) break;
    if (cs.code == MU_RPC_UNAVAILABLE && cs.leader[0] != '\0' && strcmp(cs.leader, addr) != 0) {
      snprintf(addr, sizeof addr, "%s", cs.leader); /* follow the redirect */
      free(cs.reply);
      continue;
    }
    if (cs.code == MU_RPC_UNAVAILABLE && cs.leader[0] == '\0' &&
        nth_addr(opts->addr, next, addr, sizeof addr)) {
      next++; /* down, or no leader known there: try the next address of the list */
      free(cs.reply);
      continue;
    }
    if (cs.code != MU_RPC_OK) {
      rc = mu_err_set(err, err_from_code(cs.code), "%s: %s: %s", addr,
                      mu_rpc_code_name(cs.code), cs.message);
      free(cs.reply);
      break;
    }
    remember_addr(opts, next - 1);
    *ret_reply = protobuf_c_message_unpack(reply_desc, NULL, cs.reply_len, cs.reply);
    free(cs.reply);
    if (*ret_reply == NULL)
      rc = mu_err_set(err, MU_EIO, "%s: malformed %s reply", addr, reply_desc->name);
    break;
  }
  free(buf);
  return rc;
}
