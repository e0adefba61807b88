/* Wiping an Assign's secret values (assign_secrets.h). */
#include "agent/assign_secrets.h"

#include <string.h>

void mu_assign_wipe_secrets(Muster__V1__Assign *as) {
  for (size_t i = 0; as != NULL && i < as->n_secrets; i++)
    if (as->secrets[i]->value.data != NULL) explicit_bzero(as->secrets[i]->value.data, as->secrets[i]->value.len);
}
