/* Image admission in the helper (admission.h): facts from the manifest, the config and the
 * task's config; the agent's and the cluster's policies read from their files at pull time
 * (so a policy pushed a moment ago applies), each evaluated by lib/imagepolicy. */
#define _GNU_SOURCE
#include "plugins/container/admission.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/imagepolicy/imagepolicy.h"

#define MAX_POLICIES 4

static const char *jstr(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

void mu_ctr_admission_init(mu_ctr_admission *adm, json_t *cfg, const mu_imgref *ref) {
  memset(adm, 0, sizeof *adm);
  adm->cfg = cfg;
  if (ref != NULL) {
    adm->ref = *ref;
    return;
  }
  /* a bundle's image: named by where it sits in the task's signed bundle */
  adm->bundle_image = true;
  const char *image = jstr(cfg, "image");
  const char *colon = strchr(image, ':');
  snprintf(adm->ref.registry, sizeof adm->ref.registry, "%.*s", colon ? (int)(colon - image) : 0, image);
  snprintf(adm->ref.repository, sizeof adm->ref.repository, "%s", colon ? colon + 1 : image);
}

/* The policy file at path into *ret (NULL: none, for an absent cluster policy). */
static int load_policy(const char *source, const char *path, bool optional, mu_imgpolicy **ret, mu_err *err) {
  *ret = NULL;
  int rc = mu_imgpolicy_load(path, ret, err);
  if (rc == MU_ENOENT && optional) return 0;
  if (rc != 0) mu_err_prefix(err, "the %s image policy cannot be used", source);
  return rc == 0 ? 0 : MU_EINVAL;
}

static void append(mu_ctr_admission *adm, const char *fmt, const char *a, const char *b) {
  size_t off = strlen(adm->report);
  if (off + 1 < sizeof adm->report) snprintf(adm->report + off, sizeof adm->report - off, fmt, a, b);
}

/* What verification and scanning would add to f, when a policy asks. Not wired yet: the
 * signature stays MU_IMGSIG_NOT_CHECKED and there is no scan, so such a policy refuses
 * ("signature not checked", "no scan available"). The lead wires here: imagesig's verdict for
 * (adm->ref, manifest_digest) against the union of the policies' trusted keys (reg, the
 * registry client, is NULL on a warm start and for bundles' images: the verifier then reads a
 * verdict it stored), and lib/imagescan's summary of the store's scan of manifest_digest. */
static void gather_signature_and_scan(mu_ctr_admission *adm, struct mu_registry *reg, const char *manifest_digest,
                                      bool want_signature, bool want_scan, mu_imgfacts *f) {
  (void)adm, (void)reg, (void)manifest_digest, (void)want_signature, (void)want_scan;
  f->signature = MU_IMGSIG_NOT_CHECKED;
  f->scan = NULL;
}

/* A policy's max_severity waits for the layers (admission_scan.h): its "no scan available"
 * is left out here, and adm->scan_pending says the scan is still owed. */
static size_t drop_scan_rule(mu_imgpolicy_result *res, size_t n) {
  size_t kept = 0, dropped = 0;
  for (size_t i = 0; i < res->n; i++) {
    if (strcmp(res->v[i].rule, "max_severity") == 0) {
      dropped++;
      continue;
    }
    res->v[kept++] = res->v[i];
  }
  res->n = kept;
  return n - dropped;
}

int mu_ctr_admission_check(void *arg, struct mu_registry *reg, const char *manifest_digest, const mu_manifest *m,
                           const mu_image_config *c, mu_err *err) {
  mu_ctr_admission *adm = arg;
  json_t *files = json_object_get(adm->cfg, "policy_files");
  if (json_array_size(files) == 0) return 0;
  adm->report[0] = '\0';
  adm->scan_pending = false;
  /* the policies first: what they need decides what is verified and scanned */
  mu_imgpolicy *pols[MAX_POLICIES] = {NULL};
  const char *sources[MAX_POLICIES] = {NULL};
  size_t n_pols = 0, total = 0, i;
  bool want_signature = false, want_scan = false;
  json_t *e;
  json_array_foreach(files, i, e) {
    if (n_pols >= MAX_POLICIES) break;
    const char *source = jstr(e, "source"), *path = jstr(e, "path");
    mu_err perr = {0};
    if (load_policy(source, path, json_is_true(json_object_get(e, "optional")), &pols[n_pols], &perr) != 0) {
      append(adm, "%s%s", total++ ? "; " : "", perr.msg); /* refused: fail closed */
      continue;
    }
    if (pols[n_pols] == NULL) continue;
    want_signature = want_signature || mu_imgpolicy_wants_signature(pols[n_pols], NULL);
    want_scan = want_scan || mu_imgpolicy_wants_scan(pols[n_pols]);
    sources[n_pols++] = source;
  }
  const char *vols[MU_IMGPOLICY_MAX_LIST];
  size_t n_vols = 0;
  json_array_foreach(json_object_get(adm->cfg, "volumes"), i, e) {
    if (n_vols < MU_IMGPOLICY_MAX_LIST) vols[n_vols++] = jstr(e, "source");
  }
  uint64_t compressed = (uint64_t)(m->config.size > 0 ? m->config.size : 0);
  for (size_t k = 0; k < m->n_layers; k++) compressed += (uint64_t)(m->layers[k].size > 0 ? m->layers[k].size : 0);
  mu_imgfacts f = {.registry = adm->ref.registry,
                   .repository = adm->ref.repository,
                   .tag = adm->ref.tag,
                   .digest = adm->bundle_image ? manifest_digest : adm->ref.digest,
                   .manifest_digest = manifest_digest,
                   .config_known = true,
                   .config_user = c->user ? c->user : "",
                   .run_user = jstr(adm->cfg, "user"),
                   .compressed_bytes = compressed,
                   .network = jstr(adm->cfg, "network"),
                   .volumes = vols,
                   .n_volumes = n_vols};
  if (want_signature || want_scan) gather_signature_and_scan(adm, reg, manifest_digest, want_signature, want_scan, &f);
  mu_imgpolicy_result *res = calloc(1, sizeof *res);
  int rc = 0;
  char one[MU_CTR_ADMISSION_REPORT_MAX];
  for (size_t k = 0; k < n_pols && res != NULL; k++) {
    memset(res, 0, sizeof *res);
    size_t n = mu_imgpolicy_eval(pols[k], &f, res);
    if (want_scan && f.scan == NULL) n = drop_scan_rule(res, n);
    if (n == 0) continue;
    mu_imgpolicy_result_format(res, one, sizeof one);
    char head[64];
    snprintf(head, sizeof head, "%s%s policy: ", total ? "; " : "", sources[k]);
    append(adm, "%s%s", head, one);
    total += n;
  }
  for (size_t k = 0; k < n_pols; k++) mu_imgpolicy_free(pols[k]);
  adm->scan_pending = want_scan && f.scan == NULL;
  if (res == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  free(res);
  if (total > 0) {
    char name[MU_IMGREF_MAX + 80];
    snprintf(name, sizeof name, "%s/%s%s%s", adm->ref.registry, adm->ref.repository, adm->ref.tag[0] ? ":" : "",
             adm->ref.tag);
    char body[MU_CTR_ADMISSION_REPORT_MAX];
    snprintf(body, sizeof body, "%s", adm->report);
    snprintf(adm->report, sizeof adm->report, "image %s refused by the admission policy: %s", name, body);
    adm->refused = true;
    rc = mu_err_set(err, MU_EPERM, "%s", adm->report);
  }
  return rc;
}

void mu_ctr_admission_report(const mu_ctr_admission *adm) {
  const char *state = jstr(adm->cfg, "state_dir");
  fprintf(stderr, "muster-container: %s\n", adm->report);
  if (state[0] == '\0') return;
  (void)mkdir(state, 0700);
  char path[4200];
  snprintf(path, sizeof path, "%s/report", state);
  FILE *f = fopen(path, "we");
  if (f == NULL) return;
  fputs(adm->report, f);
  fclose(f);
}
