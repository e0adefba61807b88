/* grpc.health.v1.Health/Check and server reflection (v1 and v1alpha share one wire format,
 * so one handler over lib/reflect serves both). */
#include <stdlib.h>
#include <string.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "descriptor_set.h"
#include "grpc/health/v1/health.pb-c.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"

static const char *const served_services[] = {
    "muster.v1.Admin",
    "muster.v1.AgentGateway",
    "muster.v1.Tokens",
    "muster.v1.Secrets",
    "muster.v1.Audit",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};
#define N_SERVED (sizeof served_services / sizeof served_services[0])

static void health_check(mu_rpc_call *call, const ProtobufCMessage *req_msg, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)req_msg;
  (void)md;
  int known = req->service[0] == '\0';
  for (size_t i = 0; i < N_SERVED && !known; i++) known = strcmp(req->service, served_services[i]) == 0;
  if (!known) {
    mu_pb_fail(call, MU_RPC_NOT_FOUND, "unknown service '%s'", req->service);
    return;
  }
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  char why[400];
  int serving = !d->stopping && (d->cluster->role == MU_ROLE_SINGLE || mu_cluster_etcd_healthy(d, why, sizeof why));
  resp.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                        : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  mu_pb_reply(call, &resp.base);
}

int mu_health_register(mu_daemon *d, mu_err *err) {
  return mu_pb_add_unary(d->server, "/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
                         health_check, d, err);
}

/* --- reflection: a bidi stream, one response per request --- */

static int reflect_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  mu_daemon *d = ud;
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  mu_err err = {0};
  if (mu_reflect_handle(d->reflect, data, len, &resp, &resp_len, &err) != 0) {
    mu_rpc_call_finish(call, mu_rpc_code_from_err(err.code), err.msg, NULL);
    return 1;
  }
  int rc = mu_rpc_call_send(call, resp, resp_len, &err);
  free(resp);
  if (rc != 0) {
    mu_rpc_call_finish(call, mu_rpc_code_from_err(err.code), err.msg, NULL);
    return 1;
  }
  return 0;
}

static void reflect_on_read_end(mu_rpc_call *call, void *ud) {
  (void)ud;
  mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
}

static void on_reflect(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  mu_rpc_call_handlers h = {.on_message = reflect_on_message, .on_read_end = reflect_on_read_end};
  mu_rpc_call_start(call, &h, ud);
}

int mu_reflection_register(mu_daemon *d, mu_err *err) {
  int rc = mu_reflect_index_new(mu_descriptor_set, mu_descriptor_set_len, &d->reflect, err);
  if (rc != 0) return rc;
  if (mu_reflect_set_services(d->reflect, served_services, N_SERVED) != 0)
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  rc = mu_rpc_server_add_method(d->server, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", on_reflect, d,
                                err);
  if (rc == 0)
    rc = mu_rpc_server_add_method(d->server, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  on_reflect, d, err);
  return rc;
}
