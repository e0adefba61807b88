/* The one daemon context of musterd: its loop, configuration, rpc server and the agent
 * registry. Owned by main; every handler reaches state only through it. */
#ifndef MU_CP_DAEMON_H
#define MU_CP_DAEMON_H

#include <uv.h>

#include "controlplane/registry.h"
#include "lib/config/server_config.h"
#include "lib/reflect/reflect.h"
#include "lib/rpc/rpc.h"

#define MU_VERSION "0.1.0"

typedef struct mu_daemon {
  uv_loop_t *loop;
  mu_server_config cfg;
  mu_rpc_engine *engine;
  mu_rpc_server *server;
  mu_registry registry;
  mu_reflect_index *reflect;
  uv_timer_t sweep_timer;     /* marks agents silent past the heartbeat timeout */
  uv_signal_t sigint, sigterm;
  int64_t started_at_ms;
  int port;                   /* the port actually bound */
  int stopping;
} mu_daemon;

/* gateway.c: muster.v1.AgentGateway/Connect */
int mu_gateway_register(mu_daemon *d, mu_err *err);
/* Disconnects agents whose last heartbeat is older than the timeout. */
void mu_gateway_sweep(mu_daemon *d);

/* admin.c: muster.v1.Admin */
int mu_admin_register(mu_daemon *d, mu_err *err);

/* health.c: grpc.health.v1.Health and server reflection (v1 and v1alpha) */
int mu_health_register(mu_daemon *d, mu_err *err);
int mu_reflection_register(mu_daemon *d, mu_err *err);

#endif
