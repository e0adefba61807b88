/* The proven identity of a server call's peer, read from gRPC's auth context: transport
 * security, the client certificate's subject CN, its URI SANs and the leaf PEM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/internal.h"

static void copy_value(char *dst, size_t size, const grpc_auth_property *p) {
  size_t n = p->value_length < size - 1 ? p->value_length : size - 1;
  memcpy(dst, p->value, n);
  dst[n] = '\0';
}

void mu_rpc_peer_fill(grpc_call *call, mu_rpc_peer *peer, grpc_auth_context **ret_ctx) {
  memset(peer, 0, sizeof *peer);
  *ret_ctx = NULL;
  char *addr = grpc_call_get_peer(call);
  if (addr != NULL) {
    snprintf(peer->address, sizeof peer->address, "%s", addr);
    gpr_free(addr);
  }
  grpc_auth_context *ctx = grpc_call_auth_context(call);
  if (ctx == NULL) return;
  grpc_auth_property_iterator it;
  const grpc_auth_property *p;
  it = grpc_auth_context_find_properties_by_name(ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  p = grpc_auth_property_iterator_next(&it);
  if (p != NULL) peer->tls = p->value_length == 3 && memcmp(p->value, "ssl", 3) == 0;
  if (!peer->tls) {
    grpc_auth_context_release(ctx);
    return;
  }
  peer->verified = grpc_auth_context_peer_is_authenticated(ctx);
  it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
  p = grpc_auth_property_iterator_next(&it);
  if (p != NULL) copy_value(peer->common_name, sizeof peer->common_name, p);
  it = grpc_auth_context_find_properties_by_name(ctx, GRPC_PEER_URI_PROPERTY_NAME);
  while ((p = grpc_auth_property_iterator_next(&it)) != NULL && peer->n_uris < MU_RPC_PEER_MAX_URIS)
    copy_value(peer->uris[peer->n_uris++], sizeof peer->uris[0], p);
  it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  p = grpc_auth_property_iterator_next(&it);
  if (p != NULL) peer->pem = p->value;
  *ret_ctx = ctx;
}
