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
#ifdef MU_CONTAINER_SIGNATURES
#include "plugins/container/imagesig_registry.h"
#endif

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

#ifdef MU_CONTAINER_SIGNATURES
/* True when the agent's key at path (its key id kid) is one the policies' trusted_keys name:
 * by key id, by path, or by file name without ".pub". An empty list names every key. */
static bool key_named(const char *const *names, size_t n, const char *path, const char *kid) {
  if (n == 0) return true;
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  size_t stem = strlen(base) > 4 && strcmp(base + strlen(base) - 4, ".pub") == 0 ? strlen(base) - 4 : strlen(base);
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], kid) == 0 || strcmp(names[i], path) == 0 ||
        (strlen(names[i]) == stem && strncmp(names[i], base, stem) == 0))
      return true;
  return false;
}

/* imagesig's verdict for the image's reference, as the policy's signature fact. */
static mu_imgsig_status verify_signature(mu_ctr_admission *adm, struct mu_registry *reg, const char *const *names,
                                         size_t n_names) {
  json_t *keys = json_object_get(adm->cfg, "signature_keys");
  mu_trust_set *trust = NULL;
  mu_err err = {0};
  mu_imgsig_status st = MU_IMGSIG_NOT_CHECKED;
  if (mu_trust_set_new(json_array_size(keys) + 1, &trust, &err) != 0) {
    snprintf(adm->signature_detail, sizeof adm->signature_detail, "%s", err.msg);
    return st;
  }
  size_t i;
  json_t *e;
  json_array_foreach(keys, i, e) {
    mu_pubkey pk;
    const char *path = json_string_value(e);
    if (path == NULL || mu_pubkey_load_file(path, &pk, &err) != 0) {
      snprintf(adm->signature_detail, sizeof adm->signature_detail, "signature key: %s", err.msg);
      goto done;
    }
    if (key_named(names, n_names, path, pk.key_id) && mu_trust_set_add(trust, &pk, &err) != 0) {
      snprintf(adm->signature_detail, sizeof adm->signature_detail, "signature key: %s", err.msg);
      goto done;
    }
  }
  if (mu_trust_set_count(trust) == 0) {
    snprintf(adm->signature_detail, sizeof adm->signature_detail,
             "this agent trusts no signature key the policy names (MUSTER_CONTAINER_SIGNATURE_KEYS)");
    goto done;
  }
  mu_imagesig_check_opts o = {
      .trust = trust, .max_signatures = (size_t)json_integer_value(json_object_get(adm->cfg, "max_signatures"))};
  mu_imagesig_verdict v;
  mu_imagesig_status vs = mu_imagesig_check(reg, &adm->ref, &o, &v);
  snprintf(adm->signature_detail, sizeof adm->signature_detail, "%s", v.msg);
  st = vs == MU_IMAGESIG_OK          ? MU_IMGSIG_VALID
       : vs == MU_IMAGESIG_UNSIGNED  ? MU_IMGSIG_MISSING
       : vs == MU_IMAGESIG_UNTRUSTED ? MU_IMGSIG_UNTRUSTED
       : vs == MU_IMAGESIG_EXPIRED   ? MU_IMGSIG_EXPIRED
       : vs == MU_IMAGESIG_ERROR     ? MU_IMGSIG_NOT_CHECKED
                                     : MU_IMGSIG_INVALID;
done:
  mu_trust_set_free(trust);
  return st;
}
#endif

/* What verification and scanning add to f, when a policy asks. The signature: imagesig's
 * verdict (admission.h), or not checked without a registry client or the verifier. No scan
 * here: the layers are not fetched yet; a policy's max_severity is checked after the pull
 * (admission_scan.h, see drop_scan_rule). */
static void gather_signature_and_scan(mu_ctr_admission *adm, struct mu_registry *reg, const char *manifest_digest,
                                      bool want_signature, const char *const *names, size_t n_names, mu_imgfacts *f) {
  (void)manifest_digest, (void)names, (void)n_names;
  f->signature = MU_IMGSIG_NOT_CHECKED;
  f->scan = NULL;
  if (!want_signature) return;
  if (adm->bundle_image) {
    snprintf(adm->signature_detail, sizeof adm->signature_detail, "an image from the bundle has no image signature");
  } else if (reg == NULL) {
    adm->needs_registry = true;
    snprintf(adm->signature_detail, sizeof adm->signature_detail, "the registry was not asked (pull_policy never)");
  } else {
#ifdef MU_CONTAINER_SIGNATURES
    f->signature = verify_signature(adm, reg, names, n_names);
#else
    snprintf(adm->signature_detail, sizeof adm->signature_detail, "this helper has no signature verifier");
#endif
  }
  f->signature_detail = adm->signature_detail;
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
  const char *names[MU_IMGPOLICY_MAX_LIST * MAX_POLICIES];
  size_t n_names = 0;
  bool all_keys = false; /* a policy that names no key trusts all of the agent's */
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
    const char *const *keys = NULL;
    if (mu_imgpolicy_wants_signature(pols[n_pols], &keys)) {
      want_signature = true;
      all_keys = all_keys || keys == NULL || keys[0] == NULL;
      for (size_t k = 0; keys != NULL && keys[k] != NULL && n_names < sizeof names / sizeof *names; k++)
        names[n_names++] = keys[k];
    }
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
  if (want_signature || want_scan)
    gather_signature_and_scan(adm, reg, manifest_digest, want_signature, names, all_keys ? 0 : n_names, &f);
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
