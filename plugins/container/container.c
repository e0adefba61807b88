/* The container task type: a plugin that checks the "container" section against the agent's
 * policy, writes the helper's config (0600, in the task's private dir) and runs
 * `muster-container run` under the agent's supervisor, which applies the task's timeout,
 * cgroup limits (memory, cpu, pids) and output cap and reports an OOM kill. The helper pulls
 * the image into the store, then runs it (launch.h). See docs/task-container.md.
 *
 * Agent policy, from the agent's environment (read once at load):
 *   MUSTER_CONTAINER_HELPER             the helper; default: muster-container beside this .so
 *   MUSTER_CONTAINER_STORE              image store dir; default /var/lib/muster/images
 *   MUSTER_CONTAINER_DEFAULT_REGISTRY   resolves short names; unset: short names refused
 *   MUSTER_CONTAINER_INSECURE_REGISTRIES  comma list of registries reached over plain http
 *                                       (loopback ones only; the helper refuses others)
 *   MUSTER_CONTAINER_CA_FILE            CA bundle for registries
 *   MUSTER_CONTAINER_VOLUMES            colon list of host dirs volumes may come from
 *   MUSTER_CONTAINER_ALLOW_ROOT=1       tasks may ask for user root
 *   MUSTER_CONTAINER_ALLOW_HOST_NETWORK=1  tasks may ask for network host
 *   MUSTER_CONTAINER_CAPS               comma list of capabilities tasks may add
 *   MUSTER_CONTAINER_REGISTRY_AUTH      REGISTRY=FILE,...: credentials files (user:password, mode
 *                                       0600/0400) for tasks without registryAuth
 *   MUSTER_CONTAINER_PULL_TIMEOUT       seconds; default 300
 *   MUSTER_CONTAINER_MAX_IMAGE_BYTES    unpacked size cap; default 8 GiB
 *   MUSTER_CONTAINER_STORE_MAX_BYTES    GC bound on the store's size (after a pull that fetched)
 *   MUSTER_CONTAINER_STORE_MAX_AGE      GC: images unused this many seconds are removed
 *   MUSTER_CONTAINER_REQUIRE_SIGNED=1   (container.require_signed) run only registry images with a
 *                                       valid signature by one of the keys below, checked by
 *                                       the helper before any layer is fetched (imagesig_registry.h)
 *   MUSTER_CONTAINER_SIGNATURE_KEYS     (container.signature_keys) comma list of .pub files
 *   MUSTER_CONTAINER_MAX_SIGNATURES     signatures checked per image at most; default 16
 *   MUSTER_CONTAINER_POLICY             the agent's image admission policy file (lib/imagepolicy)
 *   MUSTER_CONTAINER_CLUSTER_POLICY     where the agent keeps the cluster's pushed policy (set
 *                                       by the agent; absent file = no cluster policy)
 * Both policies are evaluated by the helper before any layer is fetched (admission.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "muster_plugin.h"
#include "plugins/container/imageref.h"

#define CT_MAX_ARGS 1024
#define CT_MAX_VOLUMES 64

static struct {
  char helper[PATH_MAX];
  char store[PATH_MAX];
  char *default_registry, *insecure, *ca_file, *volumes, *caps, *registry_auth;
  char *signature_keys;
  char *policy, *cluster_policy; /* image admission policy files */
  char *scan_feed_dir;           /* the feed a policy's max_severity scans with */
  bool allow_root, allow_host_network, require_signed;
  long long pull_timeout_s, max_image_bytes, store_max_bytes, store_max_age_s, max_signatures;
} g;

typedef struct ct_task {
  muster_task *task;
  char image[512];
  const muster_host_api *host;
  char config_path[PATH_MAX];
  char report_path[PATH_MAX]; /* the helper's reason for ending the container, if any */
  bool finished;
} ct_task;

static int fail(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, MUSTER_ERRBUF_SIZE, fmt, ap);
  va_end(ap);
  return -1;
}

static json_t *get(json_t *o, const char *camel, const char *snake) {
  json_t *v = json_object_get(o, camel);
  if (v == NULL && snake != NULL) v = json_object_get(o, snake);
  return v == NULL || json_is_null(v) ? NULL : v;
}

static const char *get_str(json_t *o, const char *camel, const char *snake) {
  const char *s = json_string_value(get(o, camel, snake));
  return s != NULL && *s != '\0' ? s : NULL;
}

/* True when name is in the comma list. */
static bool in_list(const char *list, const char *name, bool caseless) {
  if (list == NULL) return false;
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 0 && *p == ' ') p++, len--;
    if (len == n && (caseless ? strncasecmp(p, name, n) : strncmp(p, name, n)) == 0) return true;
    if (e == NULL) break;
    p = e + 1;
  }
  return false;
}

/* MUSTER_CONTAINER_REGISTRY_AUTH ("REGISTRY=FILE,..."): the file for registry into buf, or
 * false. */
static bool auth_file_for(const char *registry, char *buf, size_t cap) {
  size_t n = strlen(registry);
  for (const char *p = g.registry_auth; p != NULL && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 0 && *p == ' ') p++, len--;
    if (len > n + 1 && strncmp(p, registry, n) == 0 && p[n] == '=') {
      snprintf(buf, cap, "%.*s", (int)(len - n - 1), p + n + 1);
      return true;
    }
    if (e == NULL) break;
    p = e + 1;
  }
  return false;
}

/* The agent's credentials file for a registry: a regular file readable by its owner only, of
 * at most 1 KiB, holding "user:password" (one trailing newline dropped). 0, or -1 with
 * errbuf naming the file and the problem. */
static int read_auth_file(const char *registry, const char *path, char *out, size_t cap, char *errbuf) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return fail(errbuf, "MUSTER_CONTAINER_REGISTRY_AUTH: %s for %s: %s", path, registry, strerror(e));
  }
  ssize_t n = -1;
  if (S_ISREG(st.st_mode) && (st.st_mode & 077) == 0 && st.st_size < (off_t)cap && st.st_size <= 1024)
    n = read(fd, out, cap - 1);
  close(fd);
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
    return fail(errbuf,
                "MUSTER_CONTAINER_REGISTRY_AUTH: %s for %s: must be a regular file readable by its owner only "
                "(mode 0600 or 0400; it is %04o)",
                path, registry, (unsigned)(st.st_mode & 07777));
  if (n < 0) return fail(errbuf, "MUSTER_CONTAINER_REGISTRY_AUTH: %s for %s: unreadable or over 1 KiB", path, registry);
  out[n] = '\0';
  if (n > 0 && out[n - 1] == '\n') out[--n] = '\0';
  char *colon = strchr(out, ':');
  if (colon == NULL || colon == out || strchr(out, '\n') != NULL) {
    explicit_bzero(out, cap);
    return fail(errbuf, "MUSTER_CONTAINER_REGISTRY_AUTH: %s for %s: expected one line user:password", path, registry);
  }
  return 0;
}

/* True when path (absolute, no "..") is one of the allowed dirs or below one. */
static bool volume_allowed(const char *path) {
  if (g.volumes == NULL || path[0] != '/' || strstr(path, "/..") != NULL) return false;
  char real[PATH_MAX];
  if (realpath(path, real) == NULL) return false;
  for (const char *p = g.volumes; *p;) {
    const char *e = strchr(p, ':');
    char one[PATH_MAX], root[PATH_MAX];
    snprintf(one, sizeof one, "%.*s", (int)(e ? (size_t)(e - p) : strlen(p)), p);
    if (realpath(one, root) != NULL) {
      size_t len = strlen(root);
      if (strncmp(real, root, len) == 0 && (real[len] == '\0' || real[len] == '/' || strcmp(root, "/") == 0))
        return true;
    }
    if (e == NULL) break;
    p = e + 1;
  }
  return false;
}

static int check_strings(json_t *a, const char *what, size_t max, char *errbuf) {
  if (a == NULL) return 0;
  if (!json_is_array(a)) return fail(errbuf, "container.%s: must be a list of strings", what);
  if (json_array_size(a) > max) return fail(errbuf, "container.%s: more than %zu entries", what, max);
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e) {
    if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
      return fail(errbuf, "container.%s[%zu]: must be a string without NUL", what, i);
  }
  return 0;
}

static long long duration_ms(const char *s, long long def) {
  if (s == NULL) return def;
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0) return def;
  if (strcmp(end, "ms") == 0) return (long long)v;
  if (*end == '\0' || strcmp(end, "s") == 0) return (long long)(v * 1000);
  if (strcmp(end, "m") == 0) return (long long)(v * 60000);
  if (strcmp(end, "h") == 0) return (long long)(v * 3600000);
  return def;
}

static int check(json_t *spec, json_t *c, char *errbuf) {
  if (!json_is_object(c)) return fail(errbuf, "container: must be an object");
  static const char *const fields[] = {
      "image",        "command",       "args",           "mounts",           "network",
      "registryAuth", "registry_auth", "readOnlyRootfs", "read_only_rootfs", "pullPolicy",
      "pull_policy",  "user",          "capAdd",         "cap_add",          "workingDir",
      "working_dir",  "platform",      "writableRootfs", "writable_rootfs",  "pullTimeout",
      "pull_timeout", "hostname",      "healthCheck",    "health_check"};
  const char *key;
  json_t *val;
  json_object_foreach(c, key, val) {
    bool known = false;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) known = known || strcmp(key, fields[i]) == 0;
    if (!known) return fail(errbuf, "container.%s: unknown field", key);
  }
  mu_imgref ref;
  memset(&ref, 0, sizeof ref);
  mu_err err = {0};
  const char *image = get_str(c, "image", NULL);
  if (g.require_signed && image != NULL &&
      (strncmp(image, "oci-layout:", 11) == 0 || strncmp(image, "docker-archive:", 15) == 0))
    return fail(errbuf,
                "container.image: \"%.200s\": an image from the bundle carries no image signature, and this agent "
                "requires signed images (MUSTER_CONTAINER_REQUIRE_SIGNED); push it to a registry and sign it",
                image);
  if (g.require_signed && (g.signature_keys == NULL || *g.signature_keys == '\0'))
    return fail(errbuf,
                "container: this agent requires signed images but trusts no signature key "
                "(MUSTER_CONTAINER_SIGNATURE_KEYS)");
  if (image != NULL && strncmp(image, "oci-layout:", 11) == 0) {
    const char *dir = image + 11;
    if (*dir == '\0' || *dir == '/' || strstr(dir, "..") != NULL)
      return fail(
          errbuf,
          "container.image: \"%s\": oci-layout:DIR[:TAG] needs DIR inside the task dir (the bundle), without \"..\"",
          image);
  } else if (image != NULL && strncmp(image, "docker-archive:", 15) == 0) {
    const char *file = image + 15;
    if (*file == '\0' || *file == '/' || *file == ':' || strstr(file, "..") != NULL)
      return fail(errbuf,
                  "container.image: \"%s\": docker-archive:FILE[:REPO:TAG] needs FILE inside the task dir (the "
                  "bundle), without \"..\"",
                  image);
  } else if (mu_imgref_parse(image, g.default_registry, &ref, &err) != 0) {
    return fail(errbuf, "container.%s", err.msg);
  }
  if (check_strings(get(c, "command", NULL), "command", CT_MAX_ARGS, errbuf) != 0 ||
      check_strings(get(c, "args", NULL), "args", CT_MAX_ARGS, errbuf) != 0 ||
      check_strings(get(c, "capAdd", "cap_add"), "capAdd", 64, errbuf) != 0)
    return -1;
  const char *net = get_str(c, "network", NULL);
  if (net != NULL && strcmp(net, "none") != 0 && strcmp(net, "host") != 0)
    return fail(errbuf, "container.network: \"%s\" is not none or host", net);
  if (net != NULL && strcmp(net, "host") == 0 && !g.allow_host_network)
    return fail(errbuf, "container.network: host is not allowed on this agent (MUSTER_CONTAINER_ALLOW_HOST_NETWORK)");
  const char *pp = get_str(c, "pullPolicy", "pull_policy");
  if (pp != NULL && strcmp(pp, "always") != 0 && strcmp(pp, "if-not-present") != 0 && strcmp(pp, "never") != 0)
    return fail(errbuf, "container.pullPolicy: \"%s\" is not always, if-not-present or never", pp);
  const char *user = get_str(c, "user", NULL);
  if (user != NULL) {
    if (strlen(user) > 64 || strpbrk(user, "/\n"))
      return fail(errbuf, "container.user: \"%.64s\" is not user[:group]", user);
    if ((strcmp(user, "root") == 0 || strcmp(user, "0") == 0 || strncmp(user, "0:", 2) == 0 ||
         strncmp(user, "root:", 5) == 0) &&
        !g.allow_root)
      return fail(errbuf, "container.user: root is not allowed on this agent (MUSTER_CONTAINER_ALLOW_ROOT)");
  }
  json_t *caps = get(c, "capAdd", "cap_add");
  size_t i;
  json_t *e;
  json_array_foreach(caps, i, e) {
    const char *name = json_string_value(e);
    const char *bare = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
    if (!in_list(g.caps, bare, true))
      return fail(errbuf, "container.capAdd: %s is not allowed on this agent (MUSTER_CONTAINER_CAPS)", name);
  }
  const char *wd = get_str(c, "workingDir", "working_dir");
  if (wd != NULL && (wd[0] != '/' || strstr(wd, "..") != NULL || strncmp(wd, "/proc", 5) == 0))
    return fail(errbuf, "container.workingDir: \"%s\" must be absolute, without \"..\", not under /proc", wd);
  json_t *mounts = get(c, "mounts", NULL);
  if (mounts != NULL && (!json_is_array(mounts) || json_array_size(mounts) > CT_MAX_VOLUMES))
    return fail(errbuf, "container.mounts: must be a list of at most %d {source, target, readOnly}", CT_MAX_VOLUMES);
  json_array_foreach(mounts, i, e) {
    const char *src = get_str(e, "source", NULL), *tgt = get_str(e, "target", NULL);
    if (src == NULL || tgt == NULL) return fail(errbuf, "container.mounts[%zu]: source and target are required", i);
    if (tgt[0] != '/' || strstr(tgt, "..") != NULL || strcmp(tgt, "/") == 0 || strncmp(tgt, "/proc", 5) == 0 ||
        strncmp(tgt, "/dev", 4) == 0)
      return fail(errbuf, "container.mounts[%zu].target: \"%s\" must be absolute, without \"..\", not /, /proc or /dev",
                  i, tgt);
    if (!volume_allowed(src))
      return fail(
          errbuf,
          "container.mounts[%zu].source: \"%s\" is not under a host path this agent allows (MUSTER_CONTAINER_VOLUMES)",
          i, src);
  }
  const char *auth = get_str(c, "registryAuth", "registry_auth");
  if (auth != NULL && strncmp(auth, "${secret.", 9) != 0)
    return fail(errbuf, "container.registryAuth: use ${secret.NAME} (a secret holding user:password)");
  char auth_file[PATH_MAX], creds[1100];
  if (auth == NULL && ref.registry[0] != '\0' && auth_file_for(ref.registry, auth_file, sizeof auth_file)) {
    int bad = read_auth_file(ref.registry, auth_file, creds, sizeof creds, errbuf);
    explicit_bzero(creds, sizeof creds);
    if (bad) return -1;
  }
  if (spec != NULL && get_str(spec, "runAs", "run_as") != NULL)
    return fail(errbuf, "run_as: not used by container tasks; set container.user (a user of the image)");
  json_t *hc = get(c, "healthCheck", "health_check");
  if (hc != NULL) {
    if (!json_is_object(hc))
      return fail(errbuf, "container.healthCheck: must be {command, interval, timeout, startPeriod, retries}");
    json_t *hcmd = get(hc, "command", NULL);
    if (json_array_size(hcmd) == 0)
      return fail(errbuf, "container.healthCheck.command: a non-empty list of strings is required");
    if (check_strings(hcmd, "healthCheck.command", CT_MAX_ARGS, errbuf) != 0) return -1;
    static const char *const durations[][2] = {{"interval", NULL}, {"timeout", NULL}, {"startPeriod", "start_period"}};
    for (size_t k = 0; k < 3; k++) {
      const char *d = get_str(hc, durations[k][0], durations[k][1]);
      if (d != NULL && duration_ms(d, -1) < 0)
        return fail(errbuf, "container.healthCheck.%s: bad duration \"%s\"", durations[k][0], d);
    }
    json_t *rt = get(hc, "retries", NULL);
    const char *rts = json_string_value(rt);
    long long rv = json_is_integer(rt) ? json_integer_value(rt) : rts ? atoll(rts) : 3;
    if (rv < 1 || rv > 100) return fail(errbuf, "container.healthCheck.retries: must be 1..100");
  }
  const char *plat = get_str(c, "platform", NULL);
  if (plat != NULL && (strlen(plat) > 90 || strchr(plat, '/') == NULL))
    return fail(errbuf, "container.platform: \"%s\" is not os/arch[/variant]", plat);
  return 0;
}

static int ct_validate(const char *spec_json, const char *config_json, char *errbuf) {
  json_t *spec = json_loads(spec_json ? spec_json : "{}", 0, NULL);
  json_t *c = json_loads(config_json, 0, NULL);
  int rc = c == NULL ? fail(errbuf, "container: bad JSON") : check(spec, c, errbuf);
  json_decref(spec);
  json_decref(c);
  return rc;
}

/* "${secret.NAME}" -> the value of the task's secret NAME. */
static const char *secret_value(json_t *spec, const char *ref) {
  size_t n = strlen(ref);
  if (strncmp(ref, "${secret.", 9) != 0 || ref[n - 1] != '}') return NULL;
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(spec, "secrets"), i, e) {
    const char *name = json_string_value(json_object_get(e, "name"));
    if (name && strlen(name) == n - 10 && strncmp(name, ref + 9, n - 10) == 0)
      return json_string_value(json_object_get(e, "value"));
  }
  return NULL;
}

static json_t *build_config(json_t *spec, json_t *c, const muster_task_context *ctx, char *errbuf) {
  json_t *o = json_object();
  mu_imgref ref;
  memset(&ref, 0, sizeof ref);
  const char *image = get_str(c, "image", NULL);
  if (strncmp(image, "oci-layout:", 11) == 0) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", ctx->task_dir, image + 11);
    char *colon = strrchr(dir + strlen(ctx->task_dir), ':');
    if (colon != NULL) {
      json_object_set_new(o, "layout_tag", json_string(colon + 1));
      *colon = '\0';
    }
    json_object_set_new(o, "layout", json_string(dir));
  } else if (strncmp(image, "docker-archive:", 15) == 0) {
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/%s", ctx->task_dir, image + 15);
    char *colon = strchr(file + strlen(ctx->task_dir), ':'); /* FILE has no ':'; REPO:TAG may */
    if (colon != NULL) {
      json_object_set_new(o, "layout_tag", json_string(colon + 1));
      *colon = '\0';
    }
    json_object_set_new(o, "docker_archive", json_string(file));
  } else {
    mu_imgref_parse(image, g.default_registry, &ref, NULL);
  }
  json_object_set_new(o, "store", json_string(g.store));
  json_object_set_new(o, "image", json_string(get_str(c, "image", NULL)));
  if (g.default_registry) json_object_set_new(o, "default_registry", json_string(g.default_registry));
  if (in_list(g.insecure, ref.registry, false)) json_object_set_new(o, "insecure", json_true());
  if (g.ca_file) json_object_set_new(o, "ca_file", json_string(g.ca_file));
  const char *pp = get_str(c, "pullPolicy", "pull_policy");
  if (pp) json_object_set_new(o, "pull_policy", json_string(pp));
  const char *plat = get_str(c, "platform", NULL);
  if (plat) json_object_set_new(o, "platform", json_string(plat));
  json_object_set_new(o, "pull_timeout_ms",
                      json_integer(duration_ms(get_str(c, "pullTimeout", "pull_timeout"), g.pull_timeout_s * 1000)));
  if (g.max_image_bytes > 0) json_object_set_new(o, "max_image_bytes", json_integer(g.max_image_bytes));
  if (g.store_max_bytes > 0) json_object_set_new(o, "store_max_bytes", json_integer(g.store_max_bytes));
  if (g.store_max_age_s > 0) json_object_set_new(o, "store_max_age_s", json_integer(g.store_max_age_s));
  if (g.require_signed) json_object_set_new(o, "require_signed", json_true());
  if (g.signature_keys != NULL) { /* also for an admission policy's require_signed */
    json_t *keys = json_array();
    for (const char *p = g.signature_keys; p != NULL && *p;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      while (len > 0 && *p == ' ') p++, len--;
      if (len > 0) json_array_append_new(keys, json_stringn(p, len));
      if (e == NULL) break;
      p = e + 1;
    }
    json_object_set_new(o, "signature_keys", keys);
    if (g.max_signatures > 0) json_object_set_new(o, "max_signatures", json_integer(g.max_signatures));
  }
  const char *auth = get_str(c, "registryAuth", "registry_auth");
  if (auth != NULL) {
    const char *v = secret_value(spec, auth);
    if (v == NULL) {
      fail(errbuf, "container.registryAuth: %s is not one of the task's secrets", auth);
      json_decref(o);
      return NULL;
    }
    json_object_set_new(o, "auth", json_string(v));
  } else if (ref.registry[0] != '\0') { /* the agent's own credentials for this registry, if any */
    char auth_file[PATH_MAX], creds[1100];
    if (auth_file_for(ref.registry, auth_file, sizeof auth_file)) {
      if (read_auth_file(ref.registry, auth_file, creds, sizeof creds, errbuf) != 0) {
        json_decref(o);
        return NULL;
      }
      json_object_set_new(o, "auth", json_string(creds));
      explicit_bzero(creds, sizeof creds);
    }
  }
  json_t *cmd = get(c, "command", NULL), *args = get(c, "args", NULL);
  if (cmd) json_object_set(o, "command", cmd);
  if (args) json_object_set(o, "args", args);
  json_t *env = json_array();
  const char *k;
  json_t *v;
  size_t i;
  json_t *e;
  json_object_foreach(json_object_get(spec, "env"), k, v) {
    char *kv = NULL;
    if (json_is_string(v) && asprintf(&kv, "%s=%s", k, json_string_value(v)) > 0)
      json_array_append_new(env, json_string(kv));
    free(kv);
  }
  /* env secrets reach the container's environment (file secrets are copied by the helper);
   * the registry credentials do not */
  const char *auth_ref = get_str(c, "registryAuth", "registry_auth");
  json_array_foreach(json_object_get(spec, "secrets"), i, e) {
    const char *name = json_string_value(json_object_get(e, "name")),
               *value = json_string_value(json_object_get(e, "value"));
    const char *as = json_string_value(json_object_get(e, "as"));
    bool as_file = json_is_true(json_object_get(e, "asFile")) || json_is_true(json_object_get(e, "as_file")) ||
                   (as && strcmp(as, "file") == 0);
    if (name == NULL || value == NULL || as_file) continue;
    if (auth_ref != NULL && strlen(auth_ref) == strlen(name) + 10 && strncmp(auth_ref + 9, name, strlen(name)) == 0)
      continue;
    char *kv = NULL;
    if (asprintf(&kv, "%s=%s", name, value) > 0) json_array_append_new(env, json_string(kv));
    if (kv) explicit_bzero(kv, strlen(kv));
    free(kv);
  }
  json_object_set_new(o, "env", env);
  if (auth_ref != NULL && strlen(auth_ref) > 10)
    json_object_set_new(o, "skip_secret", json_stringn(auth_ref + 9, strlen(auth_ref) - 10));
  const char *wd = get_str(c, "workingDir", "working_dir"), *user = get_str(c, "user", NULL);
  if (wd) json_object_set_new(o, "working_dir", json_string(wd));
  if (user) json_object_set_new(o, "user", json_string(user));
  if (g.allow_root) json_object_set_new(o, "allow_root", json_true());
  const char *net = get_str(c, "network", NULL);
  json_object_set_new(o, "network", json_string(net ? net : "none"));
  json_t *wr = get(c, "writableRootfs", "writable_rootfs");
  if (json_is_true(wr)) json_object_set_new(o, "writable_rootfs", json_true());
  json_t *caps = get(c, "capAdd", "cap_add");
  if (caps) json_object_set(o, "cap_add", caps);
  json_t *vols = json_array();
  json_array_foreach(get(c, "mounts", NULL), i, e) {
    json_t *ro = get(e, "readOnly", "read_only");
    json_array_append_new(vols, json_pack("{s:s, s:s, s:b}", "source", get_str(e, "source", NULL), "target",
                                          get_str(e, "target", NULL), "read_only", json_is_true(ro)));
  }
  json_object_set_new(o, "volumes", vols);
  if (g.volumes) {
    /* the allow-list, resolved, for the helper's check of what it actually opened */
    char *roots = NULL;
    size_t rl = 0;
    FILE *m = open_memstream(&roots, &rl);
    for (const char *p = g.volumes; m && *p;) {
      const char *e = strchr(p, ':');
      char one[PATH_MAX], real[PATH_MAX];
      snprintf(one, sizeof one, "%.*s", (int)(e ? (size_t)(e - p) : strlen(p)), p);
      if (realpath(one, real) != NULL) fprintf(m, "%s%s", ftell(m) ? ":" : "", real);
      if (e == NULL) break;
      p = e + 1;
    }
    if (m) fclose(m);
    json_object_set_new(o, "volume_roots", json_string(roots ? roots : ""));
    free(roots);
  }
  const char *hn = get_str(c, "hostname", NULL);
  char hostname[64];
  snprintf(hostname, sizeof hostname, "%.63s", hn ? hn : ctx->task_id);
  for (char *p = hostname; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
      *p = '-';
  json_object_set_new(o, "hostname", json_string(hostname));
  char state[PATH_MAX];
  snprintf(state, sizeof state, "%s/.container", ctx->task_dir);
  json_object_set_new(o, "state_dir", json_string(state));
  json_t *pf = json_array();
  if (g.policy) json_array_append_new(pf, json_pack("{s:s, s:s}", "source", "agent", "path", g.policy));
  if (g.cluster_policy)
    json_array_append_new(pf,
                          json_pack("{s:s, s:s, s:b}", "source", "cluster", "path", g.cluster_policy, "optional", 1));
  json_object_set_new(o, "policy_files", pf);
  if (g.scan_feed_dir) json_object_set_new(o, "scan_feed_dir", json_string(g.scan_feed_dir));
  json_object_set_new(o, "watch_pid", json_integer(getpid())); /* the agent */
  /* A task without secrets outlives an agent restart (shim.h, agent/exec/adopt.h); one with
   * secrets does not: a restarted agent no longer has their values to redact its output. */
  if (json_array_size(json_object_get(spec, "secrets")) == 0) {
    char shim[PATH_MAX];
    snprintf(shim, sizeof shim, "%s/.shim", ctx->task_dir);
    json_object_set_new(o, "shim_dir", json_string(shim));
  }
  json_t *hc = get(c, "healthCheck", "health_check");
  if (hc != NULL) {
    json_t *rt = get(hc, "retries", NULL);
    const char *rts = json_string_value(rt);
    json_object_set_new(o, "health_check",
                        json_pack("{s:O, s:I, s:I, s:I, s:I}", "command", get(hc, "command", NULL), "interval_ms",
                                  (json_int_t)duration_ms(get_str(hc, "interval", NULL), 30000), "timeout_ms",
                                  (json_int_t)duration_ms(get_str(hc, "timeout", NULL), 30000), "start_period_ms",
                                  (json_int_t)duration_ms(get_str(hc, "startPeriod", "start_period"), 0), "retries",
                                  (json_int_t)(json_is_integer(rt) ? json_integer_value(rt)
                                               : rts               ? atoll(rts)
                                                                   : 3)));
  }
  return o;
}

/* The spec a restarted agent re-adopts the task with (agent/exec/adopt.h): only for tasks
 * without secrets, so it holds no secret value. Best effort: without it the task is not
 * re-adopted (killed and LOST after an agent restart, as before). */
static void write_shim_spec(const char *shim_dir, const char *spec_json) {
  if (shim_dir == NULL || spec_json == NULL) return;
  char path[PATH_MAX];
  if (mkdir(shim_dir, 0700) != 0 && errno != EEXIST) return;
  snprintf(path, sizeof path, "%s/spec.json", shim_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  size_t len = strlen(spec_json);
  if (write(fd, spec_json, len) != (ssize_t)len) unlink(path);
  close(fd);
}

static void finish(ct_task *ct, const muster_result *r) {
  if (ct->finished) return;
  ct->finished = true;
  ct->host->finish(ct->task, r);
}

static void on_exit_cb(muster_task *task, muster_proc *proc, const muster_proc_exit *x, void *user) {
  (void)task;
  (void)proc;
  ct_task *ct = user;
  unlink(ct->config_path);
  char msg[2200], report[2048] = "";
  FILE *rf = fopen(ct->report_path, "re");
  if (rf != NULL) {
    size_t n = fread(report, 1, sizeof report - 1, rf);
    report[n] = '\0';
    fclose(rf);
  }
  muster_result r = {.state = x->suggested_state, .exit_code = x->exit_code, .signal = x->signal, .message = msg};
  if (strstr(report, "refused by the admission policy") != NULL) /* the agent's audit line */
    ct->host->log(ct->task, MUSTER_LOG_WARN, "audit: action=image.refused image=%s outcome=refused: %s", ct->image,
                  report);
  if (report[0] != '\0' && !x->timed_out && !x->cancelled) {
    r.state = MUSTER_STATE_FAILED;
    r.exit_code = x->signal ? 128 + x->signal : x->exit_code;
    r.signal = 0;
    snprintf(msg, sizeof msg, "container %s", report);
  } else if (x->oom_killed) {
    r.exit_code = 137; /* as Docker reports it: 128 + SIGKILL, the signal in the message */
    r.signal = 0;
    snprintf(msg, sizeof msg, "container killed by the OOM killer (exit 137): the memory limit was reached");
  } else if (x->signal != 0) {
    r.exit_code = 128 + x->signal;
    r.signal = 0;
    snprintf(msg, sizeof msg, "container %s (exit %d)", x->message ? x->message : "killed", r.exit_code);
  } else if (x->exit_code == 125) {
    snprintf(msg, sizeof msg, "container could not start (see stderr): %s", x->message ? x->message : "exit 125");
  } else {
    snprintf(msg, sizeof msg, "%s", x->message ? x->message : "");
  }
  finish(ct, &r);
}

static int ct_start(muster_task *task, const muster_host_api *host, char *errbuf) {
  const muster_task_context *ctx = host->context(task);
  json_t *spec = json_loads(ctx->spec_json, 0, NULL), *c = json_loads(ctx->config_json, 0, NULL), *conf = NULL;
  ct_task *ct = calloc(1, sizeof *ct);
  int rc = -1;
  if (ct == NULL || spec == NULL || c == NULL) {
    fail(errbuf, "container: bad spec JSON or out of memory");
    goto done;
  }
  if (check(spec, c, errbuf) != 0) goto done;
  if (geteuid() != 0) {
    fail(errbuf, "container: this agent does not run as root, which the container runtime needs (namespaces, mounts)");
    goto done;
  }
  if (access(g.helper, X_OK) != 0) {
    fail(errbuf, "container: helper %s: %s (set MUSTER_CONTAINER_HELPER)", g.helper, strerror(errno));
    goto done;
  }
  conf = build_config(spec, c, ctx, errbuf);
  if (conf == NULL) goto done;
  snprintf(ct->config_path, sizeof ct->config_path, "%s/.container.json", ctx->task_dir);
  snprintf(ct->report_path, sizeof ct->report_path, "%s/.container/report", ctx->task_dir);
  int fd = open(ct->config_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || json_dumpfd(conf, fd, JSON_COMPACT) != 0) {
    if (fd >= 0) close(fd);
    fail(errbuf, "container: cannot write %s: %s", ct->config_path, strerror(errno));
    goto done;
  }
  close(fd);
  write_shim_spec(json_string_value(json_object_get(conf, "shim_dir")), ctx->spec_json);
  ct->task = task;
  ct->host = host;
  snprintf(ct->image, sizeof ct->image, "%s", get_str(c, "image", NULL));
  const char *stdin_data = json_string_value(json_object_get(spec, "stdin"));
  const char *argv[] = {g.helper, "run", ct->config_path, NULL};
  muster_spawn_opts o = {.size = sizeof o,
                         .argv = argv,
                         .on_exit = on_exit_cb,
                         .user = ct,
                         .stdin_data = stdin_data,
                         .stdin_len = stdin_data ? strlen(stdin_data) : 0};
  host->set_user_data(task, ct);
  char ebuf[MUSTER_ERRBUF_SIZE] = "";
  if (host->spawn(task, &o, NULL, ebuf) != 0) {
    unlink(ct->config_path);
    host->set_user_data(task, NULL);
    fail(errbuf, "container: cannot start the helper: %s", ebuf);
    goto done;
  }
  ct = NULL;
  rc = 0;
done:
  json_decref(conf);
  json_decref(spec);
  json_decref(c);
  free(ct);
  return rc;
}

static void ct_cleanup(muster_task *task, const muster_host_api *host, void *user_data) {
  (void)task;
  (void)host;
  free(user_data);
}

static char *env_dup(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? strdup(v) : NULL;
}

__attribute__((constructor)) static void ct_load(void) {
  const char *h = getenv("MUSTER_CONTAINER_HELPER");
  Dl_info info;
  if (h != NULL && *h) snprintf(g.helper, sizeof g.helper, "%s", h);
  else if (dladdr((void *)&ct_load, &info) != 0 && info.dli_fname != NULL) {
    char so[PATH_MAX];
    snprintf(so, sizeof so, "%s", info.dli_fname);
    char *slash = strrchr(so, '/');
    if (slash) *slash = '\0';
    snprintf(g.helper, sizeof g.helper, "%s/muster-container", slash ? so : ".");
  }
  const char *s = getenv("MUSTER_CONTAINER_STORE");
  snprintf(g.store, sizeof g.store, "%s", s && *s == '/' ? s : "/var/lib/muster/images");
  g.default_registry = env_dup("MUSTER_CONTAINER_DEFAULT_REGISTRY");
  g.insecure = env_dup("MUSTER_CONTAINER_INSECURE_REGISTRIES");
  g.ca_file = env_dup("MUSTER_CONTAINER_CA_FILE");
  g.volumes = env_dup("MUSTER_CONTAINER_VOLUMES");
  g.caps = env_dup("MUSTER_CONTAINER_CAPS");
  g.registry_auth = env_dup("MUSTER_CONTAINER_REGISTRY_AUTH");
  g.policy = env_dup("MUSTER_CONTAINER_POLICY");
  g.cluster_policy = env_dup("MUSTER_CONTAINER_CLUSTER_POLICY");
  g.scan_feed_dir = env_dup("MUSTER_CONTAINER_SCAN_FEED_DIR");
  if (g.scan_feed_dir == NULL) g.scan_feed_dir = env_dup("MUSTER_FEED_DIR");
  const char *v = getenv("MUSTER_CONTAINER_ALLOW_ROOT");
  g.allow_root = v && strcmp(v, "1") == 0;
  v = getenv("MUSTER_CONTAINER_ALLOW_HOST_NETWORK");
  g.allow_host_network = v && strcmp(v, "1") == 0;
  v = getenv("MUSTER_CONTAINER_PULL_TIMEOUT");
  g.pull_timeout_s = v && atoll(v) > 0 ? atoll(v) : 300;
  v = getenv("MUSTER_CONTAINER_MAX_IMAGE_BYTES");
  g.max_image_bytes = v ? atoll(v) : 0;
  v = getenv("MUSTER_CONTAINER_STORE_MAX_BYTES");
  g.store_max_bytes = v ? atoll(v) : 0;
  v = getenv("MUSTER_CONTAINER_STORE_MAX_AGE");
  g.store_max_age_s = v ? atoll(v) : 0;
  v = getenv("MUSTER_CONTAINER_REQUIRE_SIGNED");
  g.require_signed = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
  g.signature_keys = env_dup("MUSTER_CONTAINER_SIGNATURE_KEYS");
  v = getenv("MUSTER_CONTAINER_MAX_SIGNATURES");
  g.max_signatures = v ? atoll(v) : 0;
}

__attribute__((destructor)) static void ct_unload(void) {
  free(g.default_registry);
  free(g.insecure);
  free(g.ca_file);
  free(g.volumes);
  free(g.registry_auth);
  free(g.caps);
  free(g.signature_keys);
  free(g.policy);
  free(g.cluster_policy);
  free(g.scan_feed_dir);
  memset(&g, 0, sizeof g);
}

__attribute__((visibility("default"))) const muster_plugin muster_plugin_descriptor = {
    .abi_version = MUSTER_PLUGIN_ABI_VERSION,
    .type = "container",
    .version = "1.0.0",
    .description = "runs OCI images from a registry in the agent's own namespaces + seccomp launcher",
    .validate = ct_validate,
    .start = ct_start,
    .cleanup = ct_cleanup,
};
