/* Inside lib/imagepolicy: the parsed policy (parse.c builds it, eval.c reads it). */
#ifndef MU_IMAGEPOLICY_INT_H
#define MU_IMAGEPOLICY_INT_H

#include "lib/imagepolicy/imagepolicy.h"

typedef struct mu_imgpolicy_list {
  bool set; /* the key was given (an empty list then allows nothing) */
  char **items;
  size_t n;
} mu_imgpolicy_list;

struct mu_imgpolicy {
  mu_imgpolicy_list registries; /* REGISTRY/REPOSITORY globs */
  bool digests_only;
  bool require_signed;
  mu_imgpolicy_list trusted_keys; /* key ids or files, for the verifier (not read here) */
  bool severity_set;
  mu_severity max_severity; /* the worst unfixed finding allowed */
  bool grace_set;
  uint32_t grace_days; /* findings published fewer days ago than this are tolerated */
  bool root_set, allow_root_user;
  bool host_network_set, allow_host_network;
  mu_imgpolicy_list volumes; /* absolute host path globs */
  uint64_t max_image_size;   /* bytes; 0 = no bound */
};

void mu_imgpolicy_list_free(mu_imgpolicy_list *l);

#endif
