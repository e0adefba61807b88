/* lib/rpc helpers: status code names and mapping, metadata, deadlines and channel args. */
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/internal.h"

const char *mu_rpc_code_name(int code) {
  static const char *const names[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN";
  return names[code];
}

int mu_rpc_code_from_err(int err_code) {
  switch (err_code) {
    case 0: return MU_RPC_OK;
    case MU_EINVAL: return MU_RPC_INVALID_ARGUMENT;
    case MU_ENOENT: return MU_RPC_NOT_FOUND;
    case MU_EEXIST: return MU_RPC_ALREADY_EXISTS;
    case MU_ETIMEDOUT: return MU_RPC_DEADLINE_EXCEEDED;
    case MU_ECANCELED: return MU_RPC_CANCELLED;
    case MU_ENOSPC: return MU_RPC_RESOURCE_EXHAUSTED;
    case MU_EPERM: return MU_RPC_PERMISSION_DENIED;
    case MU_EAGAIN: return MU_RPC_UNAVAILABLE;
    case MU_ENOTSUP: return MU_RPC_UNIMPLEMENTED;
    default: return MU_RPC_INTERNAL;
  }
}

int mu_rpc_metadata_add(mu_rpc_metadata *md, const char *key, const char *value) {
  size_t klen = strlen(key);
  if (klen == 0 || klen >= sizeof md->entries[0].key) return MU_EINVAL;
  for (size_t i = 0; i < klen; i++) {
    char c = key[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) return MU_EINVAL;
  }
  if (md->count >= MU_RPC_MAX_METADATA) return MU_ENOSPC;
  if (strlen(value) >= sizeof md->entries[0].value) return MU_ENOSPC;
  strcpy(md->entries[md->count].key, key);
  strcpy(md->entries[md->count].value, value);
  md->count++;
  return 0;
}

const char *mu_rpc_metadata_get(const mu_rpc_metadata *md, const char *key) {
  if (md == NULL) return NULL;
  for (size_t i = 0; i < md->count; i++)
    if (strcmp(md->entries[i].key, key) == 0) return md->entries[i].value;
  return NULL;
}

void mu_rpc_metadata_from_grpc(mu_rpc_metadata *md, const grpc_metadata_array *arr) {
  md->count = 0;
  for (size_t i = 0; i < arr->count && md->count < MU_RPC_MAX_METADATA; i++) {
    size_t kl = GRPC_SLICE_LENGTH(arr->metadata[i].key);
    size_t vl = GRPC_SLICE_LENGTH(arr->metadata[i].value);
    if (kl >= sizeof md->entries[0].key) continue;
    if (vl >= sizeof md->entries[0].value) vl = sizeof md->entries[0].value - 1;
    memcpy(md->entries[md->count].key, GRPC_SLICE_START_PTR(arr->metadata[i].key), kl);
    md->entries[md->count].key[kl] = '\0';
    memcpy(md->entries[md->count].value, GRPC_SLICE_START_PTR(arr->metadata[i].value), vl);
    md->entries[md->count].value[vl] = '\0';
    md->count++;
  }
}

gpr_timespec mu_rpc_deadline(int64_t deadline_ms) {
  if (deadline_ms <= 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
}

grpc_channel_args *mu_rpc_args_new(const mu_rpc_options *opts, int server) {
  size_t max_message = opts && opts->max_message ? opts->max_message : 16u << 20;
  int keepalive = opts ? opts->keepalive_ms : 0;
  grpc_channel_args *args = calloc(1, sizeof *args);
  grpc_arg *a = calloc(8, sizeof *a);
  size_t n = 0;
  if (args == NULL || a == NULL) {
    free(args);
    free(a);
    return NULL;
  }
  a[n].type = GRPC_ARG_INTEGER;
  a[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  a[n++].value.integer = (int)max_message;
  a[n].type = GRPC_ARG_INTEGER;
  a[n].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  a[n++].value.integer = (int)max_message;
  if (keepalive > 0) {
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    a[n++].value.integer = keepalive;
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    a[n++].value.integer = keepalive;
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    a[n++].value.integer = 1;
  }
  if (server) {
    /* Agents ping on idle streams; let them. */
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    a[n++].value.integer = 1000;
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_HTTP2_MAX_PING_STRIKES;
    a[n++].value.integer = 0;
  }
  args->num_args = n;
  args->args = a;
  return args;
}

void mu_rpc_args_free(grpc_channel_args *args) {
  if (args == NULL) return;
  free(args->args);
  free(args);
}
