/* Blocking calls for the CLI over lib/rpc. One session per process keeps the loop, the engine
 * and a channel per address, so `muster run` (RunAdhoc, then WatchJob) sets gRPC up once.
 * --addr may list several control planes ("a,b,c"): each is tried in turn while they answer
 * UNAVAILABLE without naming a leader; a leader named in the `muster-leader` trailer is
 * followed at once. */
#include "cli/client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "lib/rpc/rpc.h"

#define MU_CLI_MAX_HOPS 8
#define MU_CLI_MAX_CHANNELS 8 /* the oldest channel is closed to make room */
#define MU_CLI_ADDR_MAX 300

struct mu_cli_session {
  uv_loop_t loop;
  int loop_ready;
  mu_rpc_engine *engine;
  int busy; /* inside an attempt (its loop is running): nested calls get their own session */
  size_t n_channels;
  struct {
    char addr[MU_CLI_ADDR_MAX];
    mu_rpc_channel *channel;
  } channels[MU_CLI_MAX_CHANNELS];
};

mu_cli_session *mu_cli_session_new(void) { return calloc(1, sizeof(mu_cli_session)); }

static void on_closed(void *ud) { *(int *)ud = 1; }

void mu_cli_session_close(mu_cli_session *s) {
  if (s == NULL) return;
  if (s->engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(s->engine, on_closed, &closed); /* closes the channels too */
    while (!closed) uv_run(&s->loop, UV_RUN_ONCE);
  }
  if (s->loop_ready) {
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
  }
  free(s);
}

static int session_start(mu_cli_session *s, mu_err *err) {
  if (!s->loop_ready) {
    int rc = uv_loop_init(&s->loop);
    if (rc != 0) return mu_err_set(err, MU_EIO, "uv_loop_init: %s", uv_strerror(rc));
    s->loop_ready = 1;
  }
  if (s->engine == NULL) return mu_rpc_engine_new(&s->loop, &s->engine, err);
  return 0;
}

/* gRPC's default resolver goes through getaddrinfo on a worker thread even for literals;
 * "ipv4:1.2.3.4:5" skips it. Other forms are passed as they are. */
static void target_for(const char *addr, char *buf, size_t size) {
  const char *colon = strrchr(addr, ':');
  char host[64];
  size_t n = colon != NULL ? (size_t)(colon - addr) : 0;
  struct in_addr a;
  if (n > 0 && n < sizeof host) {
    memcpy(host, addr, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, &a) == 1) {
      snprintf(buf, size, "ipv4:%s", addr);
      return;
    }
  }
  snprintf(buf, size, "%s", addr);
}

static void session_drop_at(mu_cli_session *s, size_t i) {
  mu_rpc_channel_close(s->channels[i].channel);
  memmove(&s->channels[i], &s->channels[i + 1], (s->n_channels - i - 1) * sizeof s->channels[0]);
  s->n_channels--;
}

/* Closes the channel to addr, if any, so the next call there connects afresh. */
static void session_drop(mu_cli_session *s, const char *addr) {
  for (size_t i = 0; i < s->n_channels; i++) {
    if (strcmp(s->channels[i].addr, addr) == 0) {
      session_drop_at(s, i);
      return;
    }
  }
}

/* The session's channel to addr, opened on first use; the session owns it. */
int mu_cli_channel_new(const mu_cli_opts *opts, mu_rpc_engine *engine, const char *addr, const mu_rpc_options *ro,
                       mu_rpc_channel **ret, mu_err *err) {
  char target[MU_CLI_ADDR_MAX + 8];
  target_for(addr, target, sizeof target);
  mu_rpc_creds creds = {.tls = opts->ca != NULL && opts->ca[0] != '\0',
                        .ca_file = opts->ca,
                        .cert_file = opts->cert && opts->cert[0] ? opts->cert : NULL,
                        .key_file = opts->key && opts->key[0] ? opts->key : NULL};
  if (creds.tls && (creds.cert_file == NULL) != (creds.key_file == NULL))
    return mu_err_set(err, MU_EINVAL, "--cert and --key go together (MUSTER_CERT, MUSTER_KEY)");
  return mu_rpc_channel_new(engine, target, &creds, ro, ret, err);
}

static int session_channel(mu_cli_session *s, const mu_cli_opts *opts, const char *addr, mu_rpc_channel **ret,
                           mu_err *err) {
  for (size_t i = 0; i < s->n_channels; i++) {
    if (strcmp(s->channels[i].addr, addr) == 0) {
      *ret = s->channels[i].channel;
      return 0;
    }
  }
  if (s->n_channels == MU_CLI_MAX_CHANNELS) session_drop_at(s, 0);
  mu_rpc_channel *ch = NULL;
  int rc = mu_cli_channel_new(opts, s->engine, addr, NULL, &ch, err);
  if (rc != 0) return rc;
  snprintf(s->channels[s->n_channels].addr, MU_CLI_ADDR_MAX, "%s", addr);
  s->channels[s->n_channels++].channel = ch;
  *ret = ch;
  return 0;
}

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

int mu_cli_route(const mu_cli_opts *opts, mu_cli_attempt_fn attempt, void *ud, mu_cli_result *res, char *ret_addr,
                 size_t addr_size, mu_err *err) {
  mu_cli_session *s = opts->session, *own = NULL;
  if (s == NULL || s->busy) {
    own = mu_cli_session_new();
    if (own == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    s = own;
  }
  char addr[MU_CLI_ADDR_MAX];
  size_t next = 1; /* the next list entry to try */
  int rc = 0;
  memset(res, 0, sizeof *res);
  if (!nth_addr(opts->addr, 0, addr, sizeof addr)) {
    rc = mu_err_set(err, MU_EINVAL, "--addr: '%s' is not HOST:PORT[,HOST:PORT...]", opts->addr);
    goto out;
  }
  snprintf(ret_addr, addr_size, "%s", addr);
  rc = session_start(s, err);
  if (rc != 0) goto out;
  for (int hop = 0; hop < MU_CLI_MAX_HOPS; hop++) {
    mu_rpc_channel *channel = NULL;
    memset(res, 0, sizeof *res);
    snprintf(ret_addr, addr_size, "%s", addr);
    rc = session_channel(s, opts, addr, &channel, err);
    if (rc != 0) break;
    s->busy = 1;
    rc = attempt(&s->loop, channel, ud, res, err);
    s->busy = 0;
    if (rc != 0) break;
    if (res->code == MU_RPC_UNAVAILABLE && res->leader[0] == '\0') session_drop(s, addr);
    if (res->code == MU_RPC_UNAVAILABLE && !res->delivered) {
      if (res->leader[0] != '\0' && strcmp(res->leader, addr) != 0) {
        snprintf(addr, sizeof addr, "%s", res->leader); /* follow the redirect */
        continue;
      }
      if (res->leader[0] == '\0' && nth_addr(opts->addr, next, addr, sizeof addr)) {
        next++; /* down, or no leader known there: try the next address of the list */
        continue;
      }
    }
    if (res->code != MU_RPC_UNAVAILABLE) remember_addr(opts, next - 1);
    break;
  }
out:
  mu_cli_session_close(own);
  return rc;
}

/* --- what to check when a call fails --- */

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

/* The host part of HOST:PORT or [HOST]:PORT (without brackets): start and length. */
static const char *host_start(const char *addr) { return addr[0] == '[' ? addr + 1 : addr; }
static size_t host_len(const char *addr) {
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    return end != NULL ? (size_t)(end - addr - 1) : strlen(addr);
  }
  const char *colon = strrchr(addr, ':');
  return colon != NULL ? (size_t)(colon - addr) : strlen(addr);
}

/* gRPC gives one status text for every transport failure; these are the words it uses (the
 * core's subchannel and TLS handshaker messages) for the causes a user can act on. */
static int has(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *p = text; *p != '\0'; p++)
    if (strncasecmp(p, word, n) == 0) return 1;
  return 0;
}

int mu_cli_status_error(const mu_cli_opts *opts, const char *addr, const mu_cli_result *res, mu_err *err) {
  const char *m = res->message;
  const char *code = mu_rpc_code_name(res->code);
  int plaintext = opts->ca == NULL || opts->ca[0] == '\0';
  static const char tls_hint[] = "give --ca, --cert and --key, or set MUSTER_CA, MUSTER_CERT and MUSTER_KEY";
  if (res->code == MU_RPC_UNAUTHENTICATED && plaintext)
    return mu_err_set(err, MU_EPERM,
                      "%s: %s: %s (the control plane serves mTLS unless started "
                      "with --insecure: %s)",
                      addr, code, m, tls_hint);
  int transport = res->code == MU_RPC_UNAVAILABLE && !res->delivered && res->leader[0] == '\0';
  int timed_out = res->code == MU_RPC_DEADLINE_EXCEEDED && !res->delivered;
  if (!transport && !timed_out) return mu_err_set(err, err_from_code(res->code), "%s: %s: %s", addr, code, m);
  if (has(m, "handshake") || has(m, "ssl") || has(m, "certificate") || has(m, "tls")) {
    return mu_err_set(err, MU_EIO,
                      "cannot reach the control plane at %s: the TLS handshake "
                      "failed: check --ca/--cert/--key (MUSTER_CA, MUSTER_CERT, MUSTER_KEY) and "
                      "that the server certificate names %.*s\ndetail: %s: %s",
                      addr, (int)host_len(addr), host_start(addr), code, m);
  }
  if (timed_out)
    return mu_err_set(err, MU_ETIMEDOUT,
                      "no answer from the control plane at %s in time (timed "
                      "out; --timeout sets the limit): is musterd running and reachable? set "
                      "--addr or MUSTER_ADDR\ndetail: %s: %s",
                      addr, code, m);
  const char *why = has(m, "refused") ? "connection refused"
                    : has(m, "dns") || has(m, "resolv") || has(m, "not known") || has(m, "name not found")
                        ? "name not resolved"
                    : has(m, "timed out") || has(m, "timeout") ? "timed out"
                    : has(m, "unreachable")                    ? "host unreachable"
                    : has(m, "reset")                          ? "connection reset"
                    : has(m, "closed")                         ? "connection closed"
                                                               : "unavailable";
  /* A plaintext client talking to a TLS server sees the connection dropped, not refused. */
  int suggest_tls = plaintext && strcmp(why, "connection refused") != 0 && strcmp(why, "name not resolved") != 0;
  return mu_err_set(err, MU_EIO,
                    "cannot reach the control plane at %s (%s): %s set --addr or "
                    "MUSTER_ADDR%s%s\ndetail: %s: %s",
                    addr, why, strcmp(why, "name not resolved") == 0 ? "check the host name;" : "is musterd running?",
                    suggest_tls ? "; it serves mTLS unless started with --insecure: " : "", suggest_tls ? tls_hint : "",
                    code, m);
}

/* --- credentials --- */

int mu_cli_call_metadata(const mu_cli_opts *opts, mu_rpc_metadata *ret_md, mu_err *err) {
  char value[sizeof ret_md->entries[0].value];
  memset(ret_md, 0, sizeof *ret_md);
  if (opts->token == NULL || opts->token[0] == '\0') return 0;
  size_t n = strlen(opts->token);
  for (size_t i = 0; i < n; i++)
    if (opts->token[i] <= ' ' || opts->token[i] > '~')
      return mu_err_set(err, MU_EINVAL,
                        "--token (or MUSTER_TOKEN): character %zu is not printable "
                        "ASCII; expected the mst_... text `muster token create` printed",
                        i + 1);
  if (n + 8 > sizeof value) return mu_err_set(err, MU_EINVAL, "--token (or MUSTER_TOKEN): %zu characters, too long", n);
  snprintf(value, sizeof value, "Bearer %s", opts->token);
  mu_rpc_metadata_add(ret_md, "authorization", value);
  return 0;
}

/* --- unary --- */

typedef struct unary_ctx {
  const char *path;
  const mu_rpc_metadata *md;
  const uint8_t *req;
  size_t req_len;
  int64_t timeout_ms;
  mu_cli_result *res;
  int done;
  int oom;
  uint8_t *reply;
  size_t reply_len;
} unary_ctx;

static void on_reply(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  unary_ctx *u = ud;
  u->done = 1;
  u->res->code = st->code;
  snprintf(u->res->message, sizeof u->res->message, "%s", st->message);
  const char *leader = mu_rpc_metadata_get(st->trailers, "muster-leader");
  if (leader != NULL) snprintf(u->res->leader, sizeof u->res->leader, "%s", leader);
  free(u->reply);
  u->reply = NULL;
  u->reply_len = 0;
  if (reply != NULL) {
    u->reply = malloc(len ? len : 1);
    if (u->reply == NULL) u->oom = 1;
    else memcpy(u->reply, reply, len);
    u->reply_len = len;
  }
}

static int unary_attempt(uv_loop_t *loop, mu_rpc_channel *channel, void *ud, mu_cli_result *res, mu_err *err) {
  unary_ctx *u = ud;
  u->res = res;
  u->done = 0;
  int rc = mu_rpc_unary(channel, u->path, u->timeout_ms, u->md, u->req, u->req_len, on_reply, u, err);
  if (rc != 0) return rc;
  while (!u->done) uv_run(loop, UV_RUN_ONCE);
  return 0;
}

int mu_cli_unary(const mu_cli_opts *opts, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply, mu_err *err) {
  mu_rpc_metadata md;
  if (mu_cli_call_metadata(opts, &md, err) != 0) return err->code;
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  protobuf_c_message_pack(req, buf);
  unary_ctx u = {.path = path, .req = buf, .req_len = len, .timeout_ms = opts->timeout_ms, .md = &md};
  mu_cli_result res;
  char addr[MU_CLI_ADDR_MAX];
  int rc = mu_cli_route(opts, unary_attempt, &u, &res, addr, sizeof addr, err);
  if (rc != 0) goto out;
  if (res.code != MU_RPC_OK) {
    rc = mu_cli_status_error(opts, addr, &res, err);
    goto out;
  }
  if (u.oom) {
    rc = mu_err_set(err, MU_ENOMEM, "%s: out of memory for the %s reply", addr, reply_desc->name);
    goto out;
  }
  *ret_reply = protobuf_c_message_unpack(reply_desc, NULL, u.reply_len, u.reply);
  if (*ret_reply == NULL) rc = mu_err_set(err, MU_EIO, "%s: malformed %s reply", addr, reply_desc->name);
out:
  free(u.reply);
  free(buf);
  return rc;
}

int mu_cli_unary_exit(const mu_cli_opts *opts, const char *what, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  mu_err err = {0};
  if (mu_cli_unary(opts, path, req, reply_desc, ret_reply, &err) == 0) return 0;
  fprintf(stderr, "muster%s%s: %s\n", what ? " " : "", what ? what : "", err.msg);
  return err.code == MU_EINVAL || err.code == MU_ENOENT || err.code == MU_EEXIST ? 2 : 1;
}
