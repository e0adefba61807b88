/* max_severity after the pull (admission_scan.h): the store's layers scanned through the
 * cache, the findings summarised, every policy's max_severity evaluated with the summary. */
#define _GNU_SOURCE
#include "plugins/container/admission_scan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/imagepolicy/imagepolicy.h"
#include "lib/imagescan/scanrun.h"
#include "lib/imagescan/summary.h"

#define FEED_KEY "container_scan_feed_dir (agent.yaml) or MUSTER_FEED_DIR"

static const char *jstr(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static void append(char *buf, size_t cap, const char *fmt, const char *a, const char *b) {
  size_t off = strlen(buf);
  if (off + 1 < cap) snprintf(buf + off, cap - off, fmt, a, b);
}

/* The scan of img into *sum; a refusal's reason into why (the scan could not be made). */
static int summarize(mu_ctr_admission *adm, const char *store, const mu_image *img, int progress_fd,
                     mu_imgscan_summary *sum, char *why, size_t why_cap) {
  const char *feed_dir = jstr(adm->cfg, "scan_feed_dir");
  if (feed_dir[0] == '\0') {
    snprintf(why, why_cap,
             "max_severity: no vulnerability feed on this agent to scan the image with (set " FEED_KEY
             "; `muster image feed update` fills one)");
    return MU_EPERM;
  }
  const char **layers = calloc(img->manifest.n_layers + 1, sizeof *layers);
  char **paths = calloc(img->manifest.n_layers + 1, sizeof *paths);
  int rc = 0;
  json_t *result = NULL;
  bool cached = false;
  mu_err err = {0};
  if (layers == NULL || paths == NULL) {
    rc = MU_ENOMEM;
    snprintf(why, why_cap, "max_severity: out of memory");
    goto done;
  }
  for (size_t k = 0; k < img->manifest.n_layers; k++) {
    const char *d = img->manifest.layers[k].digest;
    if (asprintf(&paths[k], "%s/blobs/sha256/%s", store, strncmp(d, "sha256:", 7) == 0 ? d + 7 : d) < 0) {
      paths[k] = NULL;
      rc = MU_ENOMEM;
      snprintf(why, why_cap, "max_severity: out of memory");
      goto done;
    }
    layers[k] = paths[k];
  }
  char cache[PATH_MAX];
  snprintf(cache, sizeof cache, "%s/scan-cache", store);
  char name[MU_IMGREF_MAX + 80];
  snprintf(name, sizeof name, "%s/%s%s%s", adm->ref.registry, adm->ref.repository, adm->ref.tag[0] ? ":" : "",
           adm->ref.tag);
  mu_scan_run r = {.image = name,
                   .digest = img->manifest_digest,
                   .user = img->config.user ? img->config.user : "",
                   .layers = layers,
                   .n_layers = img->manifest.n_layers,
                   .feed_dir = feed_dir,
                   .cache_dir = cache};
  rc = mu_scan_run_layers(&r, &result, &cached, &err);
  if (rc != 0) {
    snprintf(why, why_cap, "max_severity: the image could not be scanned (feed %s, set by " FEED_KEY "): %s", feed_dir,
             err.msg);
    goto done;
  }
  rc = mu_scan_summary(json_object_get(result, "findings"), (int64_t)time(NULL), sum, &err);
  if (rc != 0) {
    snprintf(why, why_cap, "max_severity: %s", err.msg);
    goto done;
  }
  if (progress_fd >= 0)
    dprintf(progress_fd, "progress 52 image scanned%s: %zu findings (feed %.23s)\n", cached ? " (cached result)" : "",
            json_array_size(json_object_get(result, "findings")), jstr(result, "feedVersion"));
done:
  for (size_t k = 0; paths != NULL && k < img->manifest.n_layers; k++) free(paths[k]);
  free(paths);
  free(layers);
  json_decref(result);
  return rc;
}

int mu_ctr_admission_scan(mu_ctr_admission *adm, const char *store, const mu_image *img, int progress_fd, mu_err *err) {
  if (!adm->scan_pending) return 0;
  adm->scan_pending = false;
  char body[MU_CTR_ADMISSION_REPORT_MAX] = "";
  mu_imgscan_summary sum;
  memset(&sum, 0, sizeof sum);
  char why[MU_CTR_ADMISSION_REPORT_MAX] = "";
  bool scanned = summarize(adm, store, img, progress_fd, &sum, why, sizeof why) == 0;
  mu_imgpolicy_result *res = calloc(1, sizeof *res);
  if (res == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t total = 0, i;
  json_t *e;
  /* the policies again, as the callback read them: only max_severity is still owed */
  json_array_foreach(json_object_get(adm->cfg, "policy_files"), i, e) {
    const char *source = jstr(e, "source");
    mu_imgpolicy *p = NULL;
    mu_err perr = {0};
    int rc = mu_imgpolicy_load(jstr(e, "path"), &p, &perr);
    if (rc == MU_ENOENT && json_is_true(json_object_get(e, "optional"))) continue;
    if (rc != 0) {
      append(body, sizeof body, "%s%s", total++ ? "; " : "", perr.msg); /* fail closed */
      continue;
    }
    if (!mu_imgpolicy_wants_scan(p)) {
      mu_imgpolicy_free(p);
      continue;
    }
    char head[64];
    snprintf(head, sizeof head, "%s%s policy: ", total ? "; " : "", source);
    if (!scanned) {
      append(body, sizeof body, "%s%s", head, why);
      total++;
      mu_imgpolicy_free(p);
      continue;
    }
    mu_imgfacts f = {.manifest_digest = img->manifest_digest, .config_known = true, .scan = &sum};
    memset(res, 0, sizeof *res);
    (void)mu_imgpolicy_eval(p, &f, res);
    mu_imgpolicy_free(p);
    size_t kept = 0;
    for (size_t k = 0; k < res->n; k++)
      if (strcmp(res->v[k].rule, "max_severity") == 0) res->v[kept++] = res->v[k];
    res->n = kept;
    res->dropped = 0;
    if (kept == 0) continue;
    char one[MU_CTR_ADMISSION_REPORT_MAX];
    mu_imgpolicy_result_format(res, one, sizeof one);
    append(body, sizeof body, "%s%s", head, one);
    total += kept;
  }
  free(res);
  if (total == 0) return 0;
  char name[MU_IMGREF_MAX + 80];
  snprintf(name, sizeof name, "%s/%s%s%s", adm->ref.registry, adm->ref.repository, adm->ref.tag[0] ? ":" : "",
           adm->ref.tag);
  snprintf(adm->report, sizeof adm->report, "image %s refused by the admission policy: %s", name, body);
  adm->refused = true;
  return mu_err_set(err, MU_EPERM, "%s", adm->report);
}
