/* Per-call authorization cost: the gate's decision for one call (table lookup, caller from the
 * certificate's URIs, role verdict) and for a bearer-token caller's metadata parse, timed over
 * many iterations. Prints ns per call; the figure is kept in docs/benchmarks.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/authz.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 2000000;
  const char *methods[] = {"/muster.v1.Admin/ListAgents", "/muster.v1.Admin/RunAdhoc", "/muster.v1.Admin/UploadBundle",
                           "/muster.v1.AgentGateway/Connect"};
  mu_rpc_peer peer = {.tls = 1, .verified = 1, .n_uris = 2};
  snprintf(peer.common_name, sizeof peer.common_name, "alice");
  snprintf(peer.uris[0], sizeof peer.uris[0], "muster://admin/alice");
  snprintf(peer.uris[1], sizeof peer.uris[1], "muster://role/operator");
  mu_rpc_metadata md = {0};
  mu_rpc_metadata_add(&md, "user-agent", "grpc-c/29.0.0 (linux; chttp2)");
  mu_rpc_metadata_add(&md, "authorization", "Bearer mst_abcdefghijkl_0123456789");
  char msg[300];
  long allowed = 0;
  double t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    const char *m = methods[i & 3];
    mu_caller c = {0};
    if (mu_authz_caller_from_cert(&peer, &c, msg, sizeof msg) != 0) return 1;
    allowed += mu_authz_judge(&c, mu_authz_method_perm(m), m, 0, msg, sizeof msg) == 0;
  }
  double cert_ns = (now_ns() - t0) / (double)iters;
  t0 = now_ns();
  long found = 0;
  for (long i = 0; i < iters; i++) found += mu_authz_bearer_token(&md) != NULL;
  double token_ns = (now_ns() - t0) / (double)iters;
  printf("authz decision, certificate caller: %.0f ns per call (%ld calls, %ld allowed)\n", cert_ns, iters, allowed);
  printf("bearer metadata parse: %.0f ns per call (%ld found)\n", token_ns, found);
  return 0;
}
