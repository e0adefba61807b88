/* `muster image scan` and `muster image feed` (docs/images.md, "Scanning"): local commands,
 * no control plane. scan resolves an image (registry, OCI layout, docker/OCI archive) into a
 * local blob store, reads its layers for an inventory and risky facts, matches the packages
 * against an offline OSV feed and prints findings by severity; results are cached per image
 * digest + feed version. feed update imports OSV files into a feed directory. The work is
 * lib/imagescan; this file is options, defaults and printing.
 *
 * Built twice (cli/BUILD): into the helper `muster-scan` (scan_main.c) with everything, and
 * into `muster` with MU_SCAN_EXEC, where both commands exec that helper (beside the binary,
 * else ../libexec/muster/, or $MUSTER_SCAN_HELPER): the scanner's libraries (libarchive and
 * its compression and XML/ICU tree, libcurl) would otherwise be loaded by every `muster`
 * command and double its start-up (docs/benchmarks.md, "Image scan"). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"

#ifdef MU_SCAN_EXEC

/* The helper's path: $MUSTER_SCAN_HELPER, beside this binary, or ../libexec/muster/. */
int mu_cli_scan_helper_path(char *out, size_t cap) {
  const char *env = getenv("MUSTER_SCAN_HELPER");
  if (env != NULL && *env) {
    snprintf(out, cap, "%s", env);
    return 0;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  snprintf(out, cap, "%s/muster-scan", self);
  if (access(out, X_OK) == 0) return 0;
  snprintf(out, cap, "%s/../libexec/muster/muster-scan", self);
  return 0;
}

static int exec_helper(const mu_cli_opts *opts, const char *sub, int argc, char **argv) {
  char path[PATH_MAX];
  char **args = calloc((size_t)argc + 6, sizeof *args);
  if (args == NULL || mu_cli_scan_helper_path(path, sizeof path) != 0) {
    fprintf(stderr, "muster image %s: cannot find the scanner helper muster-scan\n", sub);
    free(args);
    return MU_EXIT_FAILED;
  }
  int n = 0;
  args[n++] = path;
  if (opts->json) {
    args[n++] = "-o";
    args[n++] = "json";
  }
  if (opts->quiet) args[n++] = "-q";
  args[n++] = (char *)sub;
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  fflush(stdout);
  execv(path, args);
  fprintf(stderr, "muster image %s: cannot run the scanner helper %s: %s\n", sub, path, strerror(errno));
  free(args);
  return MU_EXIT_FAILED;
}

int mu_cmd_image_scan(const mu_cli_opts *opts, int argc, char **argv) { return exec_helper(opts, "scan", argc, argv); }

int mu_cmd_image_feed(const mu_cli_opts *opts, int argc, char **argv) { return exec_helper(opts, "feed", argc, argv); }

#else /* the helper: the commands themselves */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_json.h"
#include "lib/base/clock.h"
#include "lib/imagescan/cache.h"
#include "lib/imagescan/feed.h"
#include "lib/imagescan/inventory.h"
#include "lib/imagescan/match.h"
#include "lib/imagescan/report.h"
#include "lib/imagescan/source.h"
#include "lib/imagescan/storecap.h"
#include "plugins/container/imageref.h"

/* Findings at or above --fail-on (documented in docs/cli.md and docs/images.md). */
#define MU_EXIT_FINDINGS 3

static const char scan_usage[] =
    "usage: muster image scan REF [--feed DIR] [--fail-on SEVERITY] [-o json]\n"
    "                        [--store DIR] [--store-max-bytes SIZE] [--cache-dir DIR] [--no-cache]\n"
    "                        [--pull always|if-not-present|never]\n"
    "                        [--ca FILE] [--insecure] [--auth FILE] [--platform OS/ARCH[/VARIANT]]\n"
    "                        [--max-entries N] [--max-db-bytes SIZE] [--max-archive-bytes SIZE]\n"
    "\n"
    "Inventories an image without running or unpacking it (OS from etc/os-release; dpkg, apk and\n"
    "Python packages), matches the packages against an offline OSV feed, and reports findings by\n"
    "severity with the version that fixes each, plus risky facts that need no feed: setuid/setgid\n"
    "files, world-writable directories without the sticky bit, a root image user, files that look\n"
    "like secrets (private keys, .env, id_rsa).\n"
    "REF: a registry reference (REGISTRY/REPO:TAG or @sha256:...), an OCI layout directory\n"
    "(DIR or oci:DIR[:TAG]), a `docker save` tar (FILE or docker-archive:FILE[:REPO:TAG]) or an\n"
    "OCI archive (FILE or oci-archive:FILE[:TAG]).\n"
    "--feed DIR: a feed made by `muster image feed update`, or a directory of OSV .json files\n"
    "(read for this scan only); default $MUSTER_FEED_DIR, else ~/.local/share/muster/feed when it\n"
    "holds one, else no feed (inventory and risky facts only).\n"
    "Registry options as the container plugin's: --ca (MUSTER_CONTAINER_CA_FILE), --insecure for\n"
    "loopback registries (MUSTER_CONTAINER_INSECURE_REGISTRIES), --auth FILE with one line\n"
    "user:password, mode 0600 (MUSTER_CONTAINER_REGISTRY_AUTH=REGISTRY=FILE,...).\n"
    "Exit: 0 scanned (findings or not), 3 a finding at or above --fail-on (CRITICAL, HIGH, MEDIUM,\n"
    "LOW, UNKNOWN), 2 bad input (reference, file, options, feed), 1 the scan failed (registry,\n"
    "I/O).\n";

static const char feed_usage[] =
    "usage: muster image feed update SRC [--feed-dir DIR] [--strict] [--max-record-bytes SIZE]\n"
    "                                    [--max-records N] [-o json]\n"
    "       muster image feed show [--feed-dir DIR] [-o json]\n"
    "\n"
    "update imports OSV records (https://ossf.github.io/osv-schema/) from SRC, a .json file or a\n"
    "directory of them (e.g. OSV's Debian/all.zip unzipped), into the feed directory (default\n"
    "$MUSTER_FEED_DIR, else ~/.local/share/muster/feed): records of the Debian, Ubuntu, Alpine\n"
    "and PyPI ecosystems are validated (range versions in their ecosystem's scheme; listed\n"
    "versions that are not valid are left out) and merged with what the feed holds (a record\n"
    "replaces the one with its id; a withdrawn one is removed), then the new feed version\n"
    "becomes current at once. A bad record (not JSON, a wrong type, a bad range version, over\n"
    "--max-record-bytes, default 1M) is refused and named; the others are imported (exit 1), or\n"
    "with --strict nothing is (exit 2). More than --max-records records (default 1000000)\n"
    "refuses the update. The feed keeps what it had until an update succeeds.\n"
    "show prints the current version and record count.\n";

/* $VAR, else $XDG_VAR/sub, else $HOME/home_sub. */
static void user_dir(const char *var, const char *xdg, const char *sub, const char *home_sub, char *out, size_t cap) {
  const char *v = var ? getenv(var) : NULL, *x = getenv(xdg), *home = getenv("HOME");
  if (v != NULL && *v) snprintf(out, cap, "%s", v);
  else if (x != NULL && *x) snprintf(out, cap, "%s/%s", x, sub);
  else snprintf(out, cap, "%s/%s", home && *home ? home : "/tmp", home_sub);
}

static void default_feed_dir(char *out, size_t cap) {
  user_dir("MUSTER_FEED_DIR", "XDG_DATA_HOME", "muster/feed", ".local/share/muster/feed", out, cap);
}

static void cache_base(char *out, size_t cap) { user_dir(NULL, "XDG_CACHE_HOME", "muster", ".cache/muster", out, cap); }

static int exit_for(int code) {
  return code == MU_EINVAL || code == MU_ENOENT || code == MU_ENOTSUP ? MU_EXIT_USAGE : MU_EXIT_FAILED;
}

/* ---- the feed a scan uses ---- */

static void warn_refused(void *arg, const char *msg) {
  (void)arg;
  fprintf(stderr, "muster image scan: feed: %s (skipped)\n", msg);
}

typedef struct scan_feed {
  char dir[4096];
  bool imported; /* an imported feed: version from feed.json, index loaded only when needed */
  bool given;
  char version[72];
  mu_feed *feed; /* loaded (or built from raw OSV files) */
} scan_feed;

static int feed_prepare(scan_feed *sf, const mu_feed_limits *lim, mu_err *err) {
  struct stat st;
  if (!sf->given && stat(sf->dir, &st) != 0) { /* no default feed: inventory only */
    snprintf(sf->version, sizeof sf->version, "none");
    return 0;
  }
  if (stat(sf->dir, &st) != 0) return mu_err_set(err, MU_ENOENT, "--feed %s: no such directory", sf->dir);
  mu_err e = {0};
  int rc = mu_feed_current_version(sf->dir, sf->version, &e);
  if (rc == 0) {
    sf->imported = true;
    return 0;
  }
  if (rc != MU_ENOENT) return mu_err_set(err, rc, "%s", e.msg);
  if (!sf->given) {
    snprintf(sf->version, sizeof sf->version, "none");
    return 0;
  }
  /* a directory of OSV records: read for this scan */
  mu_feed_report rep = {.on_refused = warn_refused};
  rc = mu_feed_build(sf->dir, NULL, lim, false, &rep, &sf->feed, err);
  if (rc != 0) return rc;
  snprintf(sf->version, sizeof sf->version, "%s", sf->feed->version);
  return 0;
}

static int feed_get(scan_feed *sf, const mu_feed_limits *lim, mu_err *err) {
  if (sf->feed != NULL) return 0;
  if (sf->imported) return mu_feed_load(sf->dir, lim, &sf->feed, err);
  sf->feed = mu_feed_empty();
  return sf->feed ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
}

/* ---- printing ---- */

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static json_int_t jint(const json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void print_text(const json_t *r, bool cached, double ms) {
  const json_t *os = json_object_get(r, "os"), *pk = json_object_get(r, "packages");
  printf("image     %s\n", jstr(r, "image"));
  printf("digest    %s\n", jstr(r, "digest"));
  const char *pretty = jstr(os, "prettyName");
  printf("os        %s\n", *pretty ? pretty : *jstr(os, "id") ? jstr(os, "id") : "(unknown: no os-release)");
  printf("packages  %lld (dpkg %lld, apk %lld, python %lld)\n", (long long)jint(pk, "total"),
         (long long)jint(pk, "dpkg"), (long long)jint(pk, "apk"), (long long)jint(pk, "python"));
  if (jint(r, "packagesBadVersion") > 0)
    printf("          %lld not matched: version not valid in its scheme\n", (long long)jint(r, "packagesBadVersion"));
  if (strcmp(jstr(r, "feedVersion"), "none") == 0) printf("feed      none (inventory and risky facts only)\n");
  else printf("feed      %.23s (%lld records)\n", jstr(r, "feedVersion"), (long long)jint(r, "feedRecords"));
  printf("scanned   %.0f ms%s\n", ms, cached ? " (cached result)" : "");
  const json_t *findings = json_object_get(r, "findings");
  static const char *const sev[] = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"};
  printf("\nfindings  %zu\n", json_array_size(findings));
  for (int s = 0; s < 5; s++) {
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(findings, i, f) n += strcmp(jstr(f, "severity"), sev[s]) == 0;
    if (n == 0) continue;
    printf("\n%s (%zu)\n", sev[s], n);
    printf("  %-28s %-26s %-26s %s\n", "PACKAGE", "INSTALLED", "FIXED IN", "ID (ALIASES)");
    json_array_foreach(findings, i, f) {
      if (strcmp(jstr(f, "severity"), sev[s]) != 0) continue;
      char pkg[160], aliases[512] = "";
      if (*jstr(f, "sourceVersion"))
        snprintf(pkg, sizeof pkg, "%s (%s %s)", jstr(f, "package"), jstr(f, "source"), jstr(f, "sourceVersion"));
      else if (*jstr(f, "source")) snprintf(pkg, sizeof pkg, "%s (%s)", jstr(f, "package"), jstr(f, "source"));
      else snprintf(pkg, sizeof pkg, "%s", jstr(f, "package"));
      size_t k;
      json_t *a;
      json_array_foreach(json_object_get(f, "aliases"), k, a) {
        size_t l = strlen(aliases);
        snprintf(aliases + l, sizeof aliases - l, "%s%s", l ? ", " : "", json_string_value(a));
      }
      printf("  %-28s %-26s %-26s %s%s%s%s\n", pkg, jstr(f, "installedVersion"),
             *jstr(f, "fixedIn") ? jstr(f, "fixedIn") : "(no fix yet)", jstr(f, "id"), *aliases ? " (" : "", aliases,
             *aliases ? ")" : "");
    }
  }
  const json_t *risks = json_object_get(r, "risks");
  printf("\nrisky facts  %zu\n", json_array_size(risks) + (size_t)jint(r, "risksDropped"));
  size_t i;
  json_t *k;
  json_array_foreach(risks, i, k) {
    const char *path = jstr(k, "path");
    printf("  %-20s %s%-40s %s\n", jstr(k, "riskKind"), *path ? "/" : "", path, jstr(k, "detail"));
  }
  if (jint(r, "risksDropped") > 0) printf("  ... and %lld more\n", (long long)jint(r, "risksDropped"));
}

static int print_json(json_t *r, bool cached, double ms) {
  json_t *summary = json_copy(r); /* shallow: the lists are dropped from it below */
  if (summary == NULL) return 1;
  json_object_del(summary, "findings");
  json_object_del(summary, "risks");
  json_object_set_new(summary, "findingCount",
                      json_integer((json_int_t)json_array_size(json_object_get(r, "findings"))));
  json_object_set_new(summary, "riskCount", json_integer((json_int_t)json_array_size(json_object_get(r, "risks"))));
  json_object_set_new(summary, "cached", json_boolean(cached));
  json_object_set_new(summary, "elapsedMs", json_integer((json_int_t)ms));
  int rc = mu_cli_json_emit("imageScan", summary);
  size_t i;
  json_t *x;
  const char *digest = jstr(r, "digest");
  json_t *dj = json_string(digest);
  /* each element gets the digest in place and is lent to the line (no copy of 1,000s) */
  json_array_foreach(json_object_get(r, "findings"), i, x) {
    json_object_set(x, "digest", dj);
    rc |= mu_cli_json_emit("finding", json_incref(x));
  }
  json_array_foreach(json_object_get(r, "risks"), i, x) {
    json_object_set(x, "digest", dj);
    rc |= mu_cli_json_emit("risk", json_incref(x));
  }
  json_decref(dj);
  return rc;
}

/* ---- scan ---- */

/* REGISTRY=FILE,... : the file for registry, into out. */
static bool auth_from_env(const char *registry, char *out, size_t cap) {
  const char *list = getenv("MUSTER_CONTAINER_REGISTRY_AUTH");
  size_t rl = strlen(registry);
  for (const char *p = list; p && *p;) {
    size_t l = strcspn(p, ",");
    if (l > rl + 1 && strncmp(p, registry, rl) == 0 && p[rl] == '=') {
      snprintf(out, cap, "%.*s", (int)(l - rl - 1), p + rl + 1);
      return true;
    }
    p += l;
    if (*p == ',') p++;
  }
  return false;
}

static bool listed(const char *list, const char *item) {
  size_t il = strlen(item);
  for (const char *p = list; p && *p;) {
    size_t l = strcspn(p, ",");
    if (l == il && strncmp(p, item, il) == 0) return true;
    p += l;
    if (*p == ',') p++;
  }
  return false;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Keeps the blob store under its bound, the image just scanned kept (a note when it fails). */
static void store_cap(const mu_cli_opts *opts, const mu_scan_source_opts *so, const mu_scan_image *img,
                      uint64_t max_bytes) {
  mu_scan_store_touch((const char *const *)img->layers, img->n_layers);
  mu_scan_store_touch((const char *const *)img->blobs, 2);
  size_t n_keep = img->n_layers + 2;
  const char **keep = calloc(n_keep, sizeof *keep);
  mu_err err = {0};
  if (keep == NULL) return;
  for (size_t i = 0; i < img->n_layers; i++) keep[i] = img->layers[i];
  keep[img->n_layers] = img->blobs[0];
  keep[img->n_layers + 1] = img->blobs[1];
  if (mu_scan_store_trim(so->store, max_bytes, keep, n_keep, NULL, &err) != 0 && !opts->quiet)
    fprintf(stderr, "muster image scan: note: store %s: %s\n", so->store, err.msg);
  free(keep);
}

static int scan_run(const mu_cli_opts *opts, const char *ref, scan_feed *sf, const mu_scan_source_opts *so,
                    const mu_inventory_limits *ilim, const mu_feed_limits *flim, const char *cache_dir, bool use_cache,
                    mu_severity fail_on, uint64_t store_max) {
  double t0 = now_ms();
  mu_err err = {0};
  mu_scan_image img;
  mu_inventory inv;
  mu_findings fs;
  memset(&inv, 0, sizeof inv);
  memset(&fs, 0, sizeof fs);
  json_t *result = NULL;
  bool cached = false;
  int rc = feed_prepare(sf, flim, &err);
  if (rc != 0) {
    fprintf(stderr, "muster image scan: %s\n", err.msg);
    return exit_for(rc);
  }
  rc = mu_scan_source_open(ref, so, &img, &err);
  if (rc != 0) {
    fprintf(stderr, "muster image scan: %s: %s\n", ref, err.msg);
    mu_scan_image_free(&img);
    mu_feed_free(sf->feed);
    return exit_for(rc);
  }
  store_cap(opts, so, &img, store_max);
  if (use_cache && mu_scan_cache_get(cache_dir, img.digest, sf->version, &result, &err) == 0) {
    cached = true;
    json_object_set_new(result, "image", json_string(ref)); /* the same digest under another name */
  } else {
    rc = feed_get(sf, flim, &err);
    if (rc == 0) rc = mu_inventory_read_layers((const char *const *)img.layers, img.n_layers, ilim, &inv, &err);
    if (rc == 0) {
      if (mu_user_is_root(img.user))
        mu_inventory_add_risk(&inv, MU_RISK_ROOT_USER, "",
                              *img.user ? "the image's user is root" : "the image sets no user (runs as root)",
                              ilim->max_risks);
      mu_inventory_sort(&inv);
      rc = mu_match(&inv, sf->feed, &fs, &err);
    }
    if (rc == 0) {
      mu_scan_meta meta = {.image = ref,
                           .digest = img.digest,
                           .feed_version = sf->version,
                           .feed_records = sf->feed->records,
                           .user = img.user};
      result = mu_scan_result_json(&meta, &inv, &fs);
      if (result == NULL) rc = mu_err_set(&err, MU_ENOMEM, "out of memory");
    }
    if (rc != 0) {
      fprintf(stderr, "muster image scan: %s: %s\n", ref, err.msg);
      rc = exit_for(rc == MU_ENOSPC ? MU_EINVAL : rc); /* a bound hit: the image is refused as input */
      goto done;
    }
    if (use_cache && mu_scan_cache_put(cache_dir, img.digest, sf->version, result, 0, &err) != 0 && !opts->quiet)
      fprintf(stderr, "muster image scan: note: %s\n", err.msg);
  }
  double ms = now_ms() - t0;
  if (opts->json) rc = print_json(result, cached, ms) ? MU_EXIT_FAILED : MU_EXIT_OK;
  else {
    print_text(result, cached, ms);
    rc = MU_EXIT_OK;
  }
  if (rc == MU_EXIT_OK && fail_on != MU_SEV_COUNT) {
    const json_t *counts = json_object_get(result, "counts");
    static const char *const keys[] = {"critical", "high", "medium", "low", "unknown"};
    json_int_t at_or_above = 0;
    for (int s = 0; s <= (int)fail_on; s++) at_or_above += jint(counts, keys[s]);
    if (at_or_above > 0) {
      if (!opts->quiet)
        fprintf(stderr, "muster image scan: %lld finding(s) at %s or above (--fail-on)\n", (long long)at_or_above,
                mu_finding_severity_name(fail_on));
      rc = MU_EXIT_FINDINGS;
    }
  }
done:
  json_decref(result);
  mu_findings_free(&fs);
  mu_inventory_free(&inv);
  mu_scan_image_free(&img);
  mu_feed_free(sf->feed);
  sf->feed = NULL;
  return rc;
}

static int count_arg(const char *name, const char *text, uint64_t *ret) {
  mu_err e = {0};
  if (mu_size_parse(text, ret, &e) != 0) {
    fprintf(stderr, "muster image: %s: %s\n", name, e.msg);
    return -1;
  }
  return 0;
}

int mu_cmd_image_scan(const mu_cli_opts *opts, int argc, char **argv) {
  enum {
    O_FEED = 256,
    O_STORE,
    O_CACHE,
    O_NOCACHE,
    O_PULL,
    O_CA,
    O_INSECURE,
    O_AUTH,
    O_PLATFORM,
    O_FAILON,
    O_MAXENT,
    O_MAXDB,
    O_MAXARCH,
    O_STOREMAX
  };
  static const struct option lo[] = {{"feed", required_argument, NULL, O_FEED},
                                     {"store", required_argument, NULL, O_STORE},
                                     {"cache-dir", required_argument, NULL, O_CACHE},
                                     {"no-cache", no_argument, NULL, O_NOCACHE},
                                     {"pull", required_argument, NULL, O_PULL},
                                     {"ca", required_argument, NULL, O_CA},
                                     {"insecure", no_argument, NULL, O_INSECURE},
                                     {"auth", required_argument, NULL, O_AUTH},
                                     {"platform", required_argument, NULL, O_PLATFORM},
                                     {"fail-on", required_argument, NULL, O_FAILON},
                                     {"max-entries", required_argument, NULL, O_MAXENT},
                                     {"max-db-bytes", required_argument, NULL, O_MAXDB},
                                     {"max-archive-bytes", required_argument, NULL, O_MAXARCH},
                                     {"store-max-bytes", required_argument, NULL, O_STOREMAX},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  scan_feed sf = {0};
  char store[4096], cache_dir[4096], base[4096], auth[4096] = "";
  mu_scan_source_opts so = {.policy = MU_PULL_ALWAYS,
                            .ca_file = getenv("MUSTER_CONTAINER_CA_FILE"),
                            .default_registry = getenv("MUSTER_CONTAINER_DEFAULT_REGISTRY")};
  mu_inventory_limits ilim = {0};
  mu_feed_limits flim = {0};
  mu_severity fail_on = MU_SEV_COUNT;
  bool use_cache = true;
  uint64_t store_max = 4ull << 30;
  cache_base(base, sizeof base);
  snprintf(store, sizeof store, "%s/images", base);
  snprintf(cache_dir, sizeof cache_dir, "%s/scan", base);
  default_feed_dir(sf.dir, sizeof sf.dir);
  optind = 1;
  opterr = 0;
  int c;
  uint64_t n;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case O_FEED:
        snprintf(sf.dir, sizeof sf.dir, "%s", optarg);
        sf.given = true;
        break;
      case O_STORE: snprintf(store, sizeof store, "%s", optarg); break;
      case O_CACHE: snprintf(cache_dir, sizeof cache_dir, "%s", optarg); break;
      case O_NOCACHE: use_cache = false; break;
      case O_PULL:
        if (mu_pull_policy_parse(optarg, &so.policy) != 0) {
          fprintf(stderr, "muster image scan: --pull: always, if-not-present or never, not '%s'\n", optarg);
          return MU_EXIT_USAGE;
        }
        break;
      case O_CA: so.ca_file = optarg; break;
      case O_INSECURE: so.insecure = true; break;
      case O_AUTH: snprintf(auth, sizeof auth, "%s", optarg); break;
      case O_PLATFORM: so.platform = optarg; break;
      case O_FAILON:
        fail_on = mu_finding_severity_parse(optarg);
        if (fail_on == MU_SEV_COUNT) {
          fprintf(stderr, "muster image scan: --fail-on: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN, not '%s'\n", optarg);
          return MU_EXIT_USAGE;
        }
        break;
      case O_MAXENT:
        if (count_arg("--max-entries", optarg, &ilim.max_entries) != 0) return MU_EXIT_USAGE;
        break;
      case O_MAXDB:
        if (count_arg("--max-db-bytes", optarg, &ilim.max_db_bytes) != 0) return MU_EXIT_USAGE;
        break;
      case O_MAXARCH:
        if (count_arg("--max-archive-bytes", optarg, &n) != 0) return MU_EXIT_USAGE;
        so.max_bytes = n;
        break;
      case O_STOREMAX:
        if (count_arg("--store-max-bytes", optarg, &store_max) != 0) return MU_EXIT_USAGE;
        break;
      case 'h': fputs(scan_usage, stdout); return MU_EXIT_OK;
      default:
        fprintf(stderr, "muster image scan: unknown option '%s'\n%s", argv[optind - 1], scan_usage);
        return MU_EXIT_USAGE;
    }
  }
  if (optind != argc - 1) {
    fputs(scan_usage, stderr);
    return MU_EXIT_USAGE;
  }
  const char *ref = argv[optind];
  /* the plugin's environment for a registry reference: insecure list, credentials */
  struct stat st;
  mu_imgref parsed;
  mu_err perr = {0};
  bool is_path = stat(ref, &st) == 0 || strncmp(ref, "oci:", 4) == 0 || strncmp(ref, "oci-archive:", 12) == 0 ||
                 strncmp(ref, "docker-archive:", 15) == 0;
  if (!is_path && mu_imgref_parse(ref, so.default_registry, &parsed, &perr) == 0) {
    if (!so.insecure && listed(getenv("MUSTER_CONTAINER_INSECURE_REGISTRIES"), parsed.registry))
      so.insecure = mu_registry_is_loopback(parsed.registry);
    if (auth[0] == '\0') auth_from_env(parsed.registry, auth, sizeof auth);
  }
  so.store = store;
  so.auth_file = auth[0] ? auth : NULL;
  return scan_run(opts, ref, &sf, &so, &ilim, &flim, cache_dir, use_cache, fail_on, store_max);
}

/* ---- feed ---- */

static void print_refused(void *arg, const char *msg) {
  (void)arg;
  fprintf(stderr, "muster image feed: refused %s\n", msg);
}

static int feed_show(const mu_cli_opts *opts, const char *dir) {
  char version[72];
  mu_err err = {0};
  int rc = mu_feed_current_version(dir, version, &err);
  if (rc != 0) {
    fprintf(stderr, "muster image feed: %s\n", err.msg);
    return exit_for(rc);
  }
  mu_feed *f = NULL;
  rc = mu_feed_load(dir, NULL, &f, &err);
  if (rc != 0) {
    fprintf(stderr, "muster image feed: %s\n", err.msg);
    return MU_EXIT_FAILED;
  }
  if (opts->json)
    rc = mu_cli_json_emit("feed", json_pack("{s:s, s:s, s:I, s:I}", "feedDir", dir, "feedVersion", f->version,
                                            "records", (json_int_t)f->records, "entries", (json_int_t)f->n_lines));
  else
    printf("feed     %s\nversion  %s\nrecords  %zu (%zu package entries)\n", dir, f->version, f->records, f->n_lines);
  mu_feed_free(f);
  return rc ? MU_EXIT_FAILED : MU_EXIT_OK;
}

int mu_cmd_image_feed(const mu_cli_opts *opts, int argc, char **argv) {
  enum { O_DIR = 256, O_STRICT, O_MAXREC, O_MAXRECS };
  static const struct option lo[] = {{"feed-dir", required_argument, NULL, O_DIR},
                                     {"strict", no_argument, NULL, O_STRICT},
                                     {"max-record-bytes", required_argument, NULL, O_MAXREC},
                                     {"max-records", required_argument, NULL, O_MAXRECS},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(feed_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "update") != 0 && strcmp(sub, "show") != 0) {
    fprintf(stderr, "muster image feed: unknown subcommand '%s' (update, show)\n", sub);
    return MU_EXIT_USAGE;
  }
  char dir[4096];
  default_feed_dir(dir, sizeof dir);
  bool strict = false;
  mu_feed_limits lim = {0};
  uint64_t n;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc - 1, argv + 1, "h", lo, NULL)) != -1) {
    switch (c) {
      case O_DIR: snprintf(dir, sizeof dir, "%s", optarg); break;
      case O_STRICT: strict = true; break;
      case O_MAXREC:
        if (count_arg("--max-record-bytes", optarg, &lim.max_record_bytes) != 0) return MU_EXIT_USAGE;
        break;
      case O_MAXRECS:
        if (count_arg("--max-records", optarg, &n) != 0) return MU_EXIT_USAGE;
        lim.max_records = (size_t)n;
        break;
      case 'h': fputs(feed_usage, stdout); return MU_EXIT_OK;
      default:
        fprintf(stderr, "muster image feed: unknown option '%s'\n%s", argv[optind], feed_usage);
        return MU_EXIT_USAGE;
    }
  }
  int rest = argc - 1 - optind;
  if (strcmp(sub, "show") == 0) {
    if (rest != 0) {
      fputs(feed_usage, stderr);
      return MU_EXIT_USAGE;
    }
    return feed_show(opts, dir);
  }
  if (rest != 1) {
    fputs(feed_usage, stderr);
    return MU_EXIT_USAGE;
  }
  const char *src = argv[1 + optind];
  mu_err err = {0};
  mu_feed *base = NULL, *next = NULL;
  int rc = mu_feed_load(dir, &lim, &base, &err);
  if (rc != 0 && rc != MU_ENOENT) {
    fprintf(stderr, "muster image feed: %s\n", err.msg);
    return MU_EXIT_FAILED;
  }
  mu_feed_report rep = {.on_refused = print_refused};
  rc = mu_feed_build(src, base, &lim, strict, &rep, &next, &err);
  if (rc == 0) rc = mu_feed_save(next, dir, &err);
  if (rc != 0) {
    fprintf(stderr, "muster image feed: %s\n", err.msg);
    fprintf(stderr, "muster image feed: %s unchanged%s%s\n", dir, base ? " at " : "", base ? base->version : "");
    mu_feed_free(base);
    mu_feed_free(next);
    return rc == MU_EIO || rc == MU_ENOMEM ? MU_EXIT_FAILED : MU_EXIT_USAGE;
  }
  if (opts->json) {
    mu_cli_json_emit(
        "feedUpdate",
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "feedDir", dir, "source", src,
                  "feedVersion", next->version, "records", (json_int_t)next->records, "entries",
                  (json_int_t)next->n_lines, "files", (json_int_t)rep.files, "imported", (json_int_t)rep.records,
                  "refused", (json_int_t)rep.refused, "withdrawn", (json_int_t)rep.withdrawn, "skippedEcosystemEntries",
                  (json_int_t)rep.skipped_eco, "invalidListedVersions", (json_int_t)rep.versions_dropped));
  } else {
    printf("imported %zu records (%zu package entries) from %zu files of %s", rep.records, rep.lines, rep.files, src);
    if (rep.withdrawn) printf(", %zu withdrawn", rep.withdrawn);
    if (rep.skipped_eco) printf(", %zu entries of other ecosystems skipped", rep.skipped_eco);
    if (rep.versions_dropped) printf(", %zu listed versions not valid in their scheme left out", rep.versions_dropped);
    printf("\nfeed %s is now %s: %zu records\n", dir, next->version, next->records);
    if (rep.refused) printf("refused %zu records (named above); the rest were imported\n", rep.refused);
  }
  mu_feed_free(base);
  mu_feed_free(next);
  return rep.refused ? MU_EXIT_FAILED : MU_EXIT_OK;
}

#endif /* MU_SCAN_EXEC */
