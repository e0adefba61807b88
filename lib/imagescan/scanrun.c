/* A scan from layer blobs on disk through the cache (scanrun.h). */
#include "lib/imagescan/scanrun.h"

#include <string.h>

#include "lib/imagescan/cache.h"
#include "lib/imagescan/match.h"
#include "lib/imagescan/report.h"

int mu_scan_run_layers(const mu_scan_run *r, json_t **ret, bool *ret_cached, mu_err *err) {
  *ret = NULL;
  *ret_cached = false;
  char version[72];
  mu_err e = {0};
  int rc = mu_feed_current_version(r->feed_dir, version, &e);
  if (rc == MU_ENOENT) return mu_err_set(err, MU_ENOENT, "feed %s holds no imported feed", r->feed_dir);
  if (rc != 0) return mu_err_set(err, rc, "feed %s: %s", r->feed_dir, e.msg);
  if (r->cache_dir != NULL && mu_scan_cache_get(r->cache_dir, r->digest, version, ret, &e) == 0) {
    *ret_cached = true;
    return 0;
  }
  mu_feed *feed = NULL;
  mu_inventory inv;
  mu_findings fs;
  memset(&inv, 0, sizeof inv);
  memset(&fs, 0, sizeof fs);
  mu_inventory_limits il = {0};
  rc = mu_feed_load(r->feed_dir, r->flimits, &feed, err);
  if (rc != 0) {
    mu_err_prefix(err, "feed %s", r->feed_dir);
    goto fail;
  }
  rc = mu_inventory_read_layers(r->layers, r->n_layers, r->ilimits ? r->ilimits : &il, &inv, err);
  if (rc != 0) goto fail;
  const char *user = r->user ? r->user : "";
  if (mu_user_is_root(user))
    mu_inventory_add_risk(&inv, MU_RISK_ROOT_USER, "",
                          *user ? "the image's user is root" : "the image sets no user (runs as root)",
                          r->ilimits ? r->ilimits->max_risks : 0);
  mu_inventory_sort(&inv);
  rc = mu_match(&inv, feed, &fs, err);
  if (rc != 0) goto fail;
  mu_scan_meta meta = {.image = r->image ? r->image : "",
                       .digest = r->digest,
                       .feed_version = feed->version,
                       .feed_records = feed->records,
                       .user = user};
  *ret = mu_scan_result_json(&meta, &inv, &fs);
  if (*ret == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  if (r->cache_dir != NULL) (void)mu_scan_cache_put(r->cache_dir, r->digest, version, *ret, r->cache_max, &e);
fail:
  mu_findings_free(&fs);
  mu_inventory_free(&inv);
  mu_feed_free(feed);
  return rc;
}
