/* libFuzzer: etcd's Status and MemberList replies (the gateway's JSON) as GetCluster's probe
 * parses them: any bytes give an error or bounded figures, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/etcd_probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *body = malloc(size + 1);
  if (body == NULL) return 0;
  memcpy(body, data, size);
  body[size] = '\0';
  mu_etcd_probe *p = calloc(1, sizeof *p);
  if (p != NULL) {
    mu_err err = {0};
    mu_etcd_probe_parse_status(p, body, &err);
    mu_etcd_probe_parse_members(p, body, &err);
    if (p->n_members > MU_ETCD_PROBE_MEMBERS) abort();
    free(p);
  }
  free(body);
  return 0;
}
