/* Image admission in the helper (docs/images.md#admission-policy): the policies the plugin
 * names in the helper's config ("policy_files": the agent's own, the cluster's as pushed) are
 * read and evaluated against the image's facts when the manifest and config are known and no
 * layer has been fetched (image.h mu_pull_opts.admit). Every violation of every policy is
 * named; the refusal goes to the task's report (its message) and stderr.
 *
 * Signatures (when a policy has require_signed): in muster-container-full
 * (MU_CONTAINER_SIGNATURES) the image's reference is checked with imagesig_registry.h against
 * the agent's signature keys (the config's "signature_keys", narrowed to the policies'
 * trusted_keys when they name some), through the pull's registry client. Without a client (the
 * lite helper's warm start, pull_policy never) the signature stays not checked and
 * needs_registry is set: the lite helper then hands the task to muster-container-full. A
 * bundle's image has no registry signature. A policy's max_severity
 * needs the layers: the callback leaves it out and sets scan_pending, and the full helper
 * checks it once the layers are in the store, before the container starts
 * (admission_scan.h). */
#ifndef MU_CTR_ADMISSION_H
#define MU_CTR_ADMISSION_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/base/err.h"
#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"

#define MU_CTR_ADMISSION_REPORT_MAX 2048

typedef struct mu_ctr_admission {
  json_t *cfg;                           /* the helper's config (borrowed): policy_files, user, network, volumes */
  mu_imgref ref;                         /* registry images; for a bundle's image: registry "oci-layout" or
                         * "docker-archive", repository its path in the task dir */
  bool bundle_image;                     /* an image from the task's signed bundle: pinned by content */
  bool refused;                          /* set when the callback refused */
  bool needs_registry;                   /* a signature was wanted and no registry client was at hand */
  char signature_detail[MU_ERR_MSG_MAX]; /* the verifier's verdict, for the policy's message */
  bool scan_pending;                     /* a policy has max_severity: checked once the layers are in the store
                      * (admission_scan.h), so the callback left that rule out */
  char report[MU_CTR_ADMISSION_REPORT_MAX];
} mu_ctr_admission;

/* Fills adm for cfg and the image's reference (NULL for a bundle's image, named from cfg). */
void mu_ctr_admission_init(mu_ctr_admission *adm, json_t *cfg, const mu_imgref *ref);

/* mu_pull_opts.admit: arg is a mu_ctr_admission. 0 when every policy allows the image (or
 * there is none); MU_EPERM with err = adm->report when refused; MU_EINVAL when a policy file
 * cannot be read or parsed (refused too: fail closed). */
struct mu_registry; /* registry.h */
int mu_ctr_admission_check(void *arg, struct mu_registry *reg, const char *manifest_digest, const mu_manifest *m,
                           const mu_image_config *c, mu_err *err);

/* After a refusal: the report written to <state_dir>/report for the plugin's task message. */
void mu_ctr_admission_report(const mu_ctr_admission *adm);

#endif
