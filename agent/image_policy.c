/* Image admission policy on the agent (docs/images.md#admission-policy). Two policies apply to
 * a container task, and both must allow its image:
 *   - the agent's own, `container_policy: FILE` in agent.yaml (or MUSTER_CONTAINER_POLICY),
 *     checked here at start: a bad file stops the agent naming the file, line and key;
 *   - the cluster's, pushed by the control plane (ImagePolicyPush, after Welcome and on every
 *     change) and kept in the spool as cluster-image-policy.json, which the container plugin's
 *     helper reads when it pulls. Until a push arrives the last one kept applies.
 * Both paths reach the plugin through its environment (MUSTER_CONTAINER_POLICY,
 * MUSTER_CONTAINER_CLUSTER_POLICY), set here before the plugins load; so does the feed a
 * policy's max_severity scans images with (container_scan_feed_dir,
 * MUSTER_CONTAINER_SCAN_FEED_DIR). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/base/log.h"
#include "lib/bundle/keys.h"
#include "lib/imagepolicy/imagepolicy.h"

#define CLUSTER_FILE "cluster-image-policy.json"

/* container_require_signed / container_signature_keys: every key must load (a typo stops the
 * agent, naming the file), then both reach the plugin's helper through its environment. */
static int signature_setup(const mu_agent_config *cfg, mu_err *err) {
  const mu_strlist *keys = &cfg->container_signature_keys;
  char joined[4096] = "";
  size_t used = 0;
  for (size_t i = 0; i < keys->n; i++) {
    mu_pubkey pk;
    int rc = mu_pubkey_load_file(keys->items[i], &pk, err);
    if (rc != 0) return mu_err_prefix(err, "container_signature_keys");
    int n = snprintf(joined + used, sizeof joined - used, "%s%s", i ? "," : "", keys->items[i]);
    if (n < 0 || (size_t)n >= sizeof joined - used)
      return mu_err_set(err, MU_EINVAL, "container_signature_keys: the paths are longer than %zu bytes together",
                        sizeof joined - 1);
    used += (size_t)n;
  }
  if (keys->n > 0 && setenv("MUSTER_CONTAINER_SIGNATURE_KEYS", joined, 1) != 0)
    return mu_err_set(err, MU_ENOMEM, "setenv: %s", strerror(errno));
  if (!cfg->container_require_signed) return 0;
  const char *env_keys = getenv("MUSTER_CONTAINER_SIGNATURE_KEYS");
  if (env_keys == NULL || env_keys[0] == '\0')
    return mu_err_set(err, MU_EINVAL,
                      "container_require_signed: no container_signature_keys (no image could ever be trusted)");
  if (setenv("MUSTER_CONTAINER_REQUIRE_SIGNED", "1", 1) != 0)
    return mu_err_set(err, MU_ENOMEM, "setenv: %s", strerror(errno));
  mu_info("agent", "container images must be signed by one of: %s", env_keys);
  return 0;
}

int mu_image_policy_setup(mu_agent_daemon *a, mu_err *err) {
  const char *own = a->cfg.container_policy[0] ? a->cfg.container_policy : getenv("MUSTER_CONTAINER_POLICY");
  if (own != NULL && own[0] != '\0') {
    mu_imgpolicy *p = NULL;
    int rc = mu_imgpolicy_load(own, &p, err);
    if (rc != 0) return mu_err_prefix(err, "container_policy");
    mu_imgpolicy_free(p);
    if (setenv("MUSTER_CONTAINER_POLICY", own, 1) != 0)
      return mu_err_set(err, MU_ENOMEM, "setenv: %s", strerror(errno));
    mu_info("agent", "container image policy of this agent: %s", own);
  }
  if (a->cfg.container_scan_feed_dir[0] != '\0' &&
      setenv("MUSTER_CONTAINER_SCAN_FEED_DIR", a->cfg.container_scan_feed_dir, 1) != 0)
    return mu_err_set(err, MU_ENOMEM, "setenv: %s", strerror(errno));
  int rc = signature_setup(&a->cfg, err);
  if (rc != 0) return rc;
  snprintf(a->cluster_policy_path, sizeof a->cluster_policy_path, "%s/%s", a->cfg.spool_dir, CLUSTER_FILE);
  if (setenv("MUSTER_CONTAINER_CLUSTER_POLICY", a->cluster_policy_path, 1) != 0)
    return mu_err_set(err, MU_ENOMEM, "setenv: %s", strerror(errno));
  return 0;
}

/* A few KiB into the page cache and a rename: no fsync (a lost write is repaired by the next
 * connect's push), so nothing here waits on the disk. Written on every push, so a file lost
 * or damaged on this host is repaired by the next connect; logged when it changed. */
void mu_image_policy_on_push(mu_agent_daemon *a, const Muster__V1__ImagePolicyPush *push) {
  const char *json = push->policy_json ? push->policy_json : "";
  const char *sha = push->sha256 ? push->sha256 : "";
  bool changed = !a->cluster_policy_seen || strcmp(a->cluster_policy_sha, sha) != 0;
  if (a->cluster_policy_path[0] == '\0') return;
  if (json[0] == '\0') {
    if (unlink(a->cluster_policy_path) != 0 && errno != ENOENT)
      mu_warn("agent", "cluster image policy: cannot remove %s: %s", a->cluster_policy_path, strerror(errno));
    else if (changed) mu_info("agent", "cluster image policy: none");
  } else {
    mu_imgpolicy *p = NULL;
    mu_err err = {0};
    /* kept even when this agent cannot read it: its helper then refuses every image (fail
     * closed) saying why, rather than running what the cluster meant to forbid */
    if (mu_imgpolicy_parse("cluster policy", json, strlen(json), &p, &err) != 0)
      mu_error("agent", "cluster image policy %s: %s; container tasks will be refused", sha, err.msg);
    mu_imgpolicy_free(p);
    char tmp[sizeof a->cluster_policy_path + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", a->cluster_policy_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    size_t len = strlen(json);
    bool ok = fd >= 0 && write(fd, json, len) == (ssize_t)len;
    if (fd >= 0 && close(fd) != 0) ok = false;
    if (!ok || rename(tmp, a->cluster_policy_path) != 0) {
      mu_error("agent", "cluster image policy: cannot write %s: %s", a->cluster_policy_path, strerror(errno));
      unlink(tmp);
      return;
    }
    if (changed) mu_info("agent", "cluster image policy %s applied: %s", sha, json);
  }
  snprintf(a->cluster_policy_sha, sizeof a->cluster_policy_sha, "%s", sha);
  a->cluster_policy_seen = 1;
}
