/* muster-container: the container task's helper, spawned by the plugin under the agent's
 * supervisor (so muster-exec has already put it in the task's cgroup with its limits).
 *
 *   muster-container run CONFIG.json     pull (if needed), then run the container
 *   muster-container pull [--store DIR] [--insecure] [--ca FILE] [--platform P]
 *                         [--policy P] [--auth-env VAR] [--timeout-ms N]
 *                         [--require-signed] [--signature-key PUB...] [--image-policy FILE] IMAGE
 *   muster-container pull --layout DIR [--store DIR] TAG      (an OCI image layout)
 *   muster-container pull --docker-archive TAR [--store DIR] REPO:TAG|""   (a `docker save` tar)
 *   muster-container images|gc [--store DIR] [--max-bytes N] [--max-age-s N] [--list]
 *
 * `run` reads the config the plugin wrote (0600 in the task's private dir) and deletes it at
 * once (it may hold registry credentials). Progress goes to the control fd
 * ($MUSTER_CONTROL) as "progress" lines, the pinned digest as "param image_digest=...".
 * The exit status is the container's: its exit code, or the signal that killed it re-raised
 * (so the supervisor sees SIGKILL from the OOM killer as such). Setup failures exit 125.
 *
 * Built twice (BUILD): muster-container-full does all of the above; muster-container
 * (MU_CONTAINER_LITE) links neither libcurl nor libarchive and only runs an image the store
 * already holds (a warm start: ~13 ms of library loading saved); for anything else, a pull, an
 * unpack, a bundle's image, another command, it execs muster-container-full beside it with
 * the same arguments (the config file is still there: the full helper reads and deletes it). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plugins/container/admission.h"
#ifndef MU_CONTAINER_LITE
#include "plugins/container/admission_scan.h"
#endif
#include "plugins/container/gc.h"
#include "plugins/container/image.h"
#include "plugins/container/launch.h"
#ifdef MU_CONTAINER_SIGNATURES
#include "plugins/container/imagesig_registry.h"
#endif

static int control_fd = -1;

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total) {
  (void)arg;
  static int64_t last_ms;
  int64_t now = mu_registry_now_ms();
  if (control_fd < 0 || (now - last_ms < 250 && done != total)) return;
  last_ms = now;
  double pct = total ? 50.0 * (double)done / (double)total : 0;
  dprintf(control_fd, "progress %.1f pulling: %s %llu/%llu bytes\n", pct, phase, (unsigned long long)done,
          (unsigned long long)total);
}

static char **strv(json_t *a) {
  size_t n = json_array_size(a);
  char **v = calloc(n + 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++) v[i] = (char *)json_string_value(json_array_get(a, i));
  return v;
}

static const char *jstr(json_t *o, const char *k, const char *def) {
  const char *v = json_string_value(json_object_get(o, k));
  return v && *v ? v : def;
}

#ifdef MU_CONTAINER_LITE
#define MU_NEEDS_FULL (-1)
static const char *lite_config_path; /* deleted once the warm start is sure */

/* execs muster-container-full beside this binary; returns only on failure (125). */
static int exec_full(char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
  if (n <= 0) {
    fprintf(stderr, "muster-container: cannot find myself: %s\n", strerror(errno));
    return 125;
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  snprintf(slash ? slash + 1 : self, sizeof self - (size_t)(slash ? slash + 1 - self : 0), "muster-container-full");
  execv(self, argv);
  fprintf(stderr, "muster-container: cannot run %s: %s\n", self, strerror(errno));
  return 125;
}
#endif

#ifdef MU_CONTAINER_SIGNATURES
/* The task's message when the helper refuses before the container exists (the plugin reads
 * state_dir/report, as for the launcher's own reasons). */
static void write_report(json_t *cfg, const char *text) {
  const char *dir = jstr(cfg, "state_dir", NULL);
  if (dir == NULL) return;
  mkdir(dir, 0700);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/report", dir);
  FILE *f = fopen(path, "we");
  if (f == NULL) return;
  fputs(text, f);
  fclose(f);
}

/* container.require_signed: before anything of the image but its manifest is fetched, a
 * signature by one of signature_keys must hold for the manifest (or index) digest; the pull
 * is then pinned to that digest (a tag moved meanwhile changes nothing). 0, or 125 with the
 * reason on stderr and as the task's message. */
static int check_signature(json_t *cfg, mu_imgref *ref, const mu_registry_opts *ro) {
  json_t *keys = json_object_get(cfg, "signature_keys");
  mu_trust_set *trust = NULL;
  mu_registry *reg = NULL;
  mu_err err = {0};
  char msg[MU_ERR_MSG_MAX + 64] = "";
  int rc = 125;
  if (mu_trust_set_new(json_array_size(keys) + 1, &trust, &err) != 0) {
    snprintf(msg, sizeof msg, "image refused: %s", err.msg);
    goto done;
  }
  for (size_t i = 0; i < json_array_size(keys); i++)
    if (mu_trust_set_add_file(trust, json_string_value(json_array_get(keys, i)), &err) != 0) {
      snprintf(msg, sizeof msg, "image refused: signature key: %s", err.msg);
      goto done;
    }
  if (mu_trust_set_count(trust) == 0) {
    snprintf(msg, sizeof msg,
             "image refused: this agent requires signed images but trusts no signature key "
             "(MUSTER_CONTAINER_SIGNATURE_KEYS)");
    goto done;
  }
  if (mu_registry_new(ref, ro, &reg, &err) != 0) {
    snprintf(msg, sizeof msg, "image refused: %s", err.msg);
    goto done;
  }
  if (control_fd >= 0) dprintf(control_fd, "progress 1 checking the image's signature\n");
  mu_imagesig_check_opts o = {.trust = trust,
                              .max_signatures = (size_t)json_integer_value(json_object_get(cfg, "max_signatures"))};
  mu_imagesig_verdict v;
  if (mu_imagesig_check(reg, ref, &o, &v) != MU_IMAGESIG_OK) {
    snprintf(msg, sizeof msg, "image refused (%s): %s", mu_imagesig_status_name(v.status), v.msg);
    goto done;
  }
  snprintf(ref->digest, sizeof ref->digest, "%s", v.subject.digest);
  if (control_fd >= 0) {
    dprintf(control_fd, "param image_signed_by=%s\n", v.best.key_id);
    dprintf(control_fd, "progress 2 signature ok: %s\n", v.msg);
  }
  rc = 0;
done:
  if (rc != 0) {
    fprintf(stderr, "muster-container: %s\n", msg);
    write_report(cfg, msg);
  }
  mu_registry_free(reg);
  mu_trust_set_free(trust);
  return rc;
}
#endif

#ifndef MU_CONTAINER_LITE
/* A policy's max_severity once the layers are in the store, before the container starts;
 * on a refusal img is freed. */
static int scan_gate(mu_ctr_admission *adm, const char *store, mu_image *img, mu_err *err) {
  int rc = mu_ctr_admission_scan(adm, store, img, control_fd, err);
  if (rc != 0) mu_image_free(img);
  return rc;
}
#else
static int scan_gate(mu_ctr_admission *adm, const char *store, mu_image *img, mu_err *err) {
  (void)adm, (void)store, (void)img, (void)err;
  return 0; /* not reached: the lite helper hands a pending scan to the full one */
}
#endif

static int pull_image(json_t *cfg, const char *store, mu_image *img) {
  mu_imgref ref;
  mu_err err = {0};
#ifdef MU_CONTAINER_LITE
  /* the warm start only: a registry image this store holds, unless the policy says always or
   * a signature must be checked (that needs the registry) */
  const char *pol = jstr(cfg, "pull_policy", "");
  if (json_is_true(json_object_get(cfg, "require_signed"))) return MU_NEEDS_FULL;
  if (jstr(cfg, "layout", NULL) != NULL || jstr(cfg, "docker_archive", NULL) != NULL || strcmp(pol, "always") == 0 ||
      mu_imgref_parse(jstr(cfg, "image", ""), jstr(cfg, "default_registry", NULL), &ref, &err) != 0)
    return MU_NEEDS_FULL;
  mu_ctr_admission ladm;
  mu_ctr_admission_init(&ladm, cfg, &ref);
  mu_pull_opts lo = {.policy = MU_PULL_NEVER, .admit = mu_ctr_admission_check, .admit_arg = &ladm};
  const char *lplat = jstr(cfg, "platform", NULL);
  if (lplat == NULL || mu_platform_parse(lplat, &lo.platform, &err) != 0) mu_platform_host(&lo.platform);
  if (mu_image_pull(store, &ref, &lo, img, &err) != 0) {
    if (!ladm.refused || ladm.needs_registry) return MU_NEEDS_FULL; /* a signature needs the registry */
    mu_ctr_admission_report(&ladm); /* refused from the store: no need of the full helper */
    return 125;
  }
  if (ladm.scan_pending) { /* max_severity: the scanner (and its cache) is in the full helper */
    mu_image_free(img);
    return MU_NEEDS_FULL;
  }
  if (control_fd >= 0) {
    dprintf(control_fd, "param image_digest=%s\n", img->manifest_digest);
    dprintf(control_fd, "progress 50 image %s ready (0 layers downloaded, 0 bytes)\n", img->manifest_digest);
  }
  return 0;
#endif
  const char *layout = jstr(cfg, "layout", NULL), *archive = jstr(cfg, "docker_archive", NULL);
  mu_ctr_admission adm;
  if (layout != NULL || archive != NULL) { /* an OCI layout or a `docker save` tar (from the task's bundle) */
    mu_ctr_admission_init(&adm, cfg, NULL);
    mu_pull_opts po = {.on_progress = on_progress, .admit = mu_ctr_admission_check, .admit_arg = &adm};
    const char *plat = jstr(cfg, "platform", NULL);
    if (plat == NULL || mu_platform_parse(plat, &po.platform, &err) != 0) mu_platform_host(&po.platform);
    po.unpack.max_bytes = (uint64_t)json_integer_value(json_object_get(cfg, "max_image_bytes"));
    int rc = archive != NULL ? mu_image_from_docker_archive(store, archive, jstr(cfg, "layout_tag", ""), &po, img, &err)
                             : mu_image_from_layout(store, layout, jstr(cfg, "layout_tag", ""), &po, img, &err);
    if (rc == 0) rc = scan_gate(&adm, store, img, &err);
    if (rc != 0 && adm.refused) mu_ctr_admission_report(&adm);
    else if (rc != 0) fprintf(stderr, "muster-container: %s\n", err.msg);
    if (rc != 0) return 125;
    if (control_fd >= 0) dprintf(control_fd, "param image_digest=%s\n", img->manifest_digest);
    return 0;
  }
  if (mu_imgref_parse(jstr(cfg, "image", ""), jstr(cfg, "default_registry", NULL), &ref, &err) != 0) {
    fprintf(stderr, "muster-container: %s\n", err.msg);
    return 125;
  }
  mu_ctr_admission_init(&adm, cfg, &ref);
  mu_pull_opts po = {.on_progress = on_progress, .admit = mu_ctr_admission_check, .admit_arg = &adm};
  if (mu_pull_policy_parse(jstr(cfg, "pull_policy", ""), &po.policy) != 0) {
    fprintf(stderr, "muster-container: pull_policy must be always, if-not-present or never\n");
    return 125;
  }
  const char *plat = jstr(cfg, "platform", NULL);
  if (plat == NULL) mu_platform_host(&po.platform);
  else if (mu_platform_parse(plat, &po.platform, &err) != 0) {
    fprintf(stderr, "muster-container: %s\n", err.msg);
    return 125;
  }
  po.registry.insecure = json_is_true(json_object_get(cfg, "insecure"));
  if (po.registry.insecure && !mu_registry_is_loopback(ref.registry) &&
      !json_is_true(json_object_get(cfg, "insecure_any"))) {
    fprintf(stderr, "muster-container: plain http is allowed for loopback registries only, not %s\n", ref.registry);
    return 125;
  }
  po.registry.ca_file = jstr(cfg, "ca_file", NULL);
  po.registry.stall_ms = json_integer_value(json_object_get(cfg, "stall_ms"));
  json_int_t t = json_integer_value(json_object_get(cfg, "pull_timeout_ms"));
  if (t > 0) po.registry.deadline_ms = mu_registry_now_ms() + t;
  char auth[1024] = "";
  const char *a = jstr(cfg, "auth", NULL);
  if (a != NULL) {
    snprintf(auth, sizeof auth, "%s", a);
    char *colon = strchr(auth, ':');
    if (colon == NULL) {
      fprintf(stderr, "muster-container: registry credentials must be user:password\n");
      return 125;
    }
    *colon = '\0';
    po.registry.username = auth;
    po.registry.password = colon + 1;
  }
  po.unpack.max_bytes = (uint64_t)json_integer_value(json_object_get(cfg, "max_image_bytes"));
  po.unpack.max_entries = (uint64_t)json_integer_value(json_object_get(cfg, "max_image_entries"));
  po.parallel = (int)json_integer_value(json_object_get(cfg, "parallel_downloads"));
  po.store_parallel = (int)json_integer_value(json_object_get(cfg, "store_parallel_downloads"));
#ifdef MU_CONTAINER_SIGNATURES
  if (json_is_true(json_object_get(cfg, "require_signed")) && check_signature(cfg, &ref, &po.registry) != 0) {
    explicit_bzero(auth, sizeof auth);
    return 125;
  }
#endif
  int rc = mu_image_pull(store, &ref, &po, img, &err);
  explicit_bzero(auth, sizeof auth);
#ifdef MU_CONTAINER_SIGNATURES
  if (rc == 0 && json_is_true(json_object_get(cfg, "require_signed"))) { /* pinned: the tag is ours to record */
    mu_err rerr = {0};
    mu_store_ref_set(store, &ref, img->manifest_digest, &rerr);
  }
#endif
  if (rc == 0) rc = scan_gate(&adm, store, img, &err);
  if (rc != 0 && adm.refused) {
    mu_ctr_admission_report(&adm);
    return 125;
  }
  if (rc != 0) {
    char name[MU_IMGREF_MAX + 80];
    mu_imgref_format(&ref, name, sizeof name);
    fprintf(stderr, "muster-container: pull %s: %s\n", name, err.msg);
    return 125;
  }
  if (control_fd >= 0) {
    dprintf(control_fd, "param image_digest=%s\n", img->manifest_digest);
    dprintf(control_fd, "progress 50 image %s ready (%d layers downloaded, %llu bytes)\n", img->manifest_digest,
            img->layers_downloaded, (unsigned long long)img->downloaded_bytes);
  }
  return 0;
}

/* The memory cgroup's OOM kill counter (v1 memory.oom_control, v2 memory.events), opened
 * before the launcher enters a new cgroup namespace. -1 when there is none. */
static int open_oom_counter(void) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) return -1;
  char line[4096], v1[4096] = "", v2[4096] = "";
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (b == NULL) continue;
    *b = '\0';
    if (strcmp(a + 1, "memory") == 0) snprintf(v1, sizeof v1, "%s", b + 1);
    else if (a[1] == '\0') snprintf(v2, sizeof v2, "%s", b + 1);
  }
  fclose(f);
  char path[8300];
  int fd = -1;
  if (v1[0]) {
    snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.oom_control", v1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0 && v2[0]) {
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.events", v2);
    fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  return fd;
}

static long long read_oom_kills(int fd) {
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *p = strstr(buf, "oom_kill ");
  return p ? atoll(p + 9) : -1;
}

static int run_config(json_t *cfg);

static int cmd_run(const char *path, char **argv) {
  json_error_t je;
  json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
#ifdef MU_CONTAINER_LITE
  lite_config_path = path; /* kept for muster-container-full until the warm start is sure */
  if (!json_is_object(cfg)) unlink(path);
#else
  (void)argv;
  unlink(path);
#endif
  if (!json_is_object(cfg)) {
    fprintf(stderr, "muster-container: config %s: %s\n", path, je.text);
    json_decref(cfg);
    return 125;
  }
  int rc = run_config(cfg);
  json_decref(cfg);
#ifdef MU_CONTAINER_LITE
  if (rc == MU_NEEDS_FULL) return exec_full(argv);
  unlink(path);
#endif
  return rc;
}

static int run_config(json_t *cfg) {
  const char *store = jstr(cfg, "store", "/var/lib/muster/images");
  mu_image img;
  int rc = pull_image(cfg, store, &img);
  json_object_del(cfg, "auth");
  if (rc != 0) return rc;
  /* Hold the image against GC while it runs; a GC that removed it just now means pull again. */
  int use_fd = -1;
  mu_err uerr = {0};
  if (mu_store_use(img.rootfs, &use_fd, &uerr) != 0) {
    mu_image_free(&img);
    rc = pull_image(cfg, store, &img);
    if (rc != 0) return rc;
    if (mu_store_use(img.rootfs, &use_fd, &uerr) != 0) {
      fprintf(stderr, "muster-container: %s\n", uerr.msg);
      mu_image_free(&img);
      return 125;
    }
  }
#ifdef MU_CONTAINER_LITE
  unlink(lite_config_path); /* the image is held: this run goes on here */
#endif
  json_int_t gc_bytes = json_integer_value(json_object_get(cfg, "store_max_bytes"));
  json_int_t gc_age = json_integer_value(json_object_get(cfg, "store_max_age_s"));
  if ((gc_bytes > 0 || gc_age > 0) && (img.layers_downloaded > 0 || img.unpacked)) {
    mu_gc_opts go = {.max_bytes = (uint64_t)gc_bytes, .max_age_s = gc_age, .keep_digest = img.manifest_digest};
    mu_gc_result gr;
    if (mu_store_gc(store, &go, &gr, &uerr) == 0 && gr.images_removed > 0 && control_fd >= 0)
      dprintf(control_fd, "progress 55 image store: removed %d unused image(s), %llu -> %llu bytes\n",
              gr.images_removed, (unsigned long long)gr.bytes_before, (unsigned long long)gr.bytes_after);
  }
  if (json_is_true(json_object_get(cfg, "pull_only"))) {
    printf("%s %s\n", img.manifest_digest, img.rootfs);
    mu_image_free(&img);
    close(use_fd);
    return 0;
  }

  /* argv: task command overrides Entrypoint, task args override Cmd. */
  json_t *command = json_object_get(cfg, "command"), *args = json_object_get(cfg, "args");
  char **ep = json_array_size(command) ? strv(command) : NULL;
  char **cm = json_array_size(args) ? strv(args) : NULL;
  char **entry = ep ? ep : (json_array_size(command) ? NULL : img.config.entrypoint);
  char **cmdv = cm ? cm : (ep ? NULL : img.config.cmd);
  size_t n = 0;
  for (char **p = entry; p && *p; p++) n++;
  for (char **p = cmdv; p && *p; p++) n++;
  if (n == 0) {
    fprintf(stderr,
            "muster-container: nothing to run: the image has no Entrypoint or Cmd and the task gives no command\n");
    free(ep);
    free(cm);
    mu_image_free(&img);
    return 125;
  }
  const char **argv = calloc(n + 1, sizeof *argv);
  size_t k = 0;
  for (char **p = entry; p && *p; p++) argv[k++] = *p;
  for (char **p = cmdv; p && *p; p++) argv[k++] = *p;

  /* env: the image's, then the task's on top (same key replaced). */
  json_t *tenv = json_object_get(cfg, "env");
  size_t ne = 0;
  for (char **p = img.config.env; p && *p; p++) ne++;
  const char **env = calloc(ne + json_array_size(tenv) + 4, sizeof *env);
  size_t m = 0;
  for (char **p = img.config.env; p && *p; p++) env[m++] = *p;
  for (size_t i = 0; i < json_array_size(tenv); i++) {
    const char *kv = json_string_value(json_array_get(tenv, i));
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (eq == NULL) continue;
    size_t kl = (size_t)(eq - kv) + 1;
    size_t j = 0;
    for (; j < m; j++)
      if (strncmp(env[j], kv, kl) == 0) break;
    env[j] = kv;
    if (j == m) m++;
  }
  /* file secrets: copied by the launcher to /run/secrets, named as the agent names them */
  const char *secrets_dir = getenv("MUSTER_SECRETS_DIR");
  char **secret_env = NULL;
  size_t n_secret_env = 0;
  if (secrets_dir != NULL && *secrets_dir) {
    DIR *d = opendir(secrets_dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.' || strcmp(de->d_name, jstr(cfg, "skip_secret", "")) == 0) continue;
      char **grown = realloc(secret_env, (n_secret_env + 2) * sizeof *grown);
      if (grown == NULL) break;
      secret_env = grown;
      if (asprintf(&secret_env[n_secret_env], "%s_FILE=/run/secrets/%s", de->d_name, de->d_name) > 0) n_secret_env++;
    }
    if (d != NULL) closedir(d);
    const char **grown_env = realloc(env, (m + n_secret_env + 4) * sizeof *env);
    if (grown_env != NULL) {
      env = grown_env;
      for (size_t i = 0; i < n_secret_env; i++) env[m++] = secret_env[i];
      env[m++] = "MUSTER_SECRETS_DIR=/run/secrets";
      env[m] = NULL;
    }
  }
  bool have_path = false, have_home = false;
  for (size_t j = 0; j < m; j++) {
    have_path |= strncmp(env[j], "PATH=", 5) == 0;
    have_home |= strncmp(env[j], "HOME=", 5) == 0;
  }
  if (!have_path) env[m++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (!have_home) env[m++] = "HOME=/";

  json_t *vols = json_object_get(cfg, "volumes");
  mu_volume *v = calloc(json_array_size(vols) + 1, sizeof *v);
  for (size_t i = 0; i < json_array_size(vols); i++) {
    json_t *o = json_array_get(vols, i);
    v[i].source = jstr(o, "source", "");
    v[i].target = jstr(o, "target", "");
    v[i].read_only = json_is_true(json_object_get(o, "read_only"));
  }
  json_t *caps = json_object_get(cfg, "cap_add");
  char **capv = strv(caps);
  mu_launch_spec spec = {
      .rootfs = img.rootfs,
      .state_dir = jstr(cfg, "state_dir", "."),
      .argv = argv,
      .env = env,
      .cwd = jstr(cfg, "working_dir", img.config.working_dir),
      .user = jstr(cfg, "user", img.config.user),
      .allow_root = json_is_true(json_object_get(cfg, "allow_root")),
      .host_network = strcmp(jstr(cfg, "network", "none"), "host") == 0,
      .read_only_root = !json_is_true(json_object_get(cfg, "writable_rootfs")),
      .hostname = jstr(cfg, "hostname", "container"),
      .cap_add = (const char *const *)capv,
      .volumes = v,
      .n_volumes = json_array_size(vols),
      .volume_roots = jstr(cfg, "volume_roots", NULL),
      .secrets_dir = secrets_dir && *secrets_dir ? secrets_dir : NULL,
      .secrets_skip = jstr(cfg, "skip_secret", NULL),
      .stop_signal = img.config.stop_signal ? mu_signal_from_name(img.config.stop_signal) : 0,
      .watch_pid = (int)json_integer_value(json_object_get(cfg, "watch_pid")),
  };
  char report[600] = "";
  spec.report = report;
  spec.report_cap = sizeof report;
  json_t *hc = json_object_get(cfg, "health_check");
  char **hargv = json_array_size(json_object_get(hc, "command")) ? strv(json_object_get(hc, "command")) : NULL;
  spec.health = (mu_health_check){.argv = (const char *const *)hargv,
                                  .interval_ms = json_integer_value(json_object_get(hc, "interval_ms")),
                                  .timeout_ms = json_integer_value(json_object_get(hc, "timeout_ms")),
                                  .start_period_ms = json_integer_value(json_object_get(hc, "start_period_ms")),
                                  .retries = (int)json_integer_value(json_object_get(hc, "retries"))};
  /* Root image user without allow_root: run as nobody rather than fail (non-root by default);
   * an explicit task user of root is refused by the launcher. */
  if (!spec.allow_root && jstr(cfg, "user", NULL) == NULL && spec.user != NULL &&
      (strcmp(spec.user, "root") == 0 || strcmp(spec.user, "0") == 0 || strncmp(spec.user, "0:", 2) == 0 ||
       strncmp(spec.user, "root:", 5) == 0))
    spec.user = NULL;
  /* a shim dir (tasks the restarted agent may re-adopt): the container outlives the agent */
  mu_shim shim = {.dir = ""};
  const char *shim_dir = jstr(cfg, "shim_dir", NULL);
  if (shim_dir != NULL && spec.watch_pid > 0 && mu_shim_open(&shim, shim_dir) == 0) spec.shim = &shim;
  if (control_fd >= 0) dprintf(control_fd, "progress 60 starting %s\n", argv[0]);
  int oom_fd = open_oom_counter();
  long long oom_before = read_oom_kills(oom_fd);
  int status = mu_launch_run(&spec);
  long long oom_after = read_oom_kills(oom_fd);
  free(hargv);
  for (size_t i = 0; i < n_secret_env; i++) free(secret_env[i]);
  free(secret_env);
  if (report[0] != '\0') { /* the plugin takes the task's message from here */
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/report", spec.state_dir);
    FILE *rf = fopen(rp, "we");
    if (rf != NULL) {
      fputs(report, rf);
      fclose(rf);
    }
  }
  if (oom_fd >= 0) close(oom_fd);
  if (status >= 0 && oom_after > oom_before && oom_before >= 0) {
    /* Something in the container was OOM-killed (maybe a child of its pid 1, which then
     * exited 137): say so, and end the way the supervisor recognises as an OOM kill. */
    fprintf(stderr, "muster-container: the OOM killer ended a process of the container (memory limit)\n");
    status = SIGKILL; /* a wait status "killed by SIGKILL" */
  }
  mu_shim_close(&shim, status < 0 ? 125 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  free(argv);
  free(env);
  free(v);
  free(capv);
  free(ep);
  free(cm);
  mu_image_free(&img);
  close(use_fd);
  if (status < 0) return 125;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  int sig = WTERMSIG(status);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  return 128 + sig;
}

static int cmd_pull(int argc, char **argv) {
  json_t *cfg = json_object();
  json_object_set_new(cfg, "pull_only", json_true());
  const char *store = "/var/lib/muster/images";
  int i = 2;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--insecure") == 0) {
      json_object_set_new(cfg, "insecure", json_true());
      continue;
    }
    if (strcmp(o, "--require-signed") == 0) {
      json_object_set_new(cfg, "require_signed", json_true());
      continue;
    }
    if (i + 1 >= argc) break;
    const char *val = argv[++i];
    if (strcmp(o, "--store") == 0) store = val;
    else if (strcmp(o, "--ca") == 0) json_object_set_new(cfg, "ca_file", json_string(val));
    else if (strcmp(o, "--platform") == 0) json_object_set_new(cfg, "platform", json_string(val));
    else if (strcmp(o, "--policy") == 0) json_object_set_new(cfg, "pull_policy", json_string(val));
    else if (strcmp(o, "--auth-env") == 0)
      json_object_set_new(cfg, "auth", json_string(getenv(val) ? getenv(val) : ""));
    else if (strcmp(o, "--timeout-ms") == 0) json_object_set_new(cfg, "pull_timeout_ms", json_integer(atoll(val)));
    else if (strcmp(o, "--stall-ms") == 0) json_object_set_new(cfg, "stall_ms", json_integer(atoll(val)));
    else if (strcmp(o, "--max-bytes") == 0) json_object_set_new(cfg, "max_image_bytes", json_integer(atoll(val)));
    else if (strcmp(o, "--default-registry") == 0) json_object_set_new(cfg, "default_registry", json_string(val));
    else if (strcmp(o, "--layout") == 0) json_object_set_new(cfg, "layout", json_string(val));
    else if (strcmp(o, "--docker-archive") == 0) json_object_set_new(cfg, "docker_archive", json_string(val));
    else if (strcmp(o, "--image-policy") == 0) { /* the agent's admission policy file */
      if (json_object_get(cfg, "policy_files") == NULL) json_object_set_new(cfg, "policy_files", json_array());
      json_array_append_new(json_object_get(cfg, "policy_files"),
                            json_pack("{s:s, s:s}", "source", "agent", "path", val));
    } else if (strcmp(o, "--signature-key") == 0) {
      if (json_object_get(cfg, "signature_keys") == NULL) json_object_set_new(cfg, "signature_keys", json_array());
      json_array_append_new(json_object_get(cfg, "signature_keys"), json_string(val));
    } else {
      fprintf(stderr, "muster-container: unknown option %s\n", o);
      return 2;
    }
  }
  if (i != argc - 1) {
    fprintf(stderr, "usage: muster-container pull [options] IMAGE\n");
    return 2;
  }
  json_object_set_new(cfg, "image", json_string(argv[i]));
  if (json_object_get(cfg, "layout") || json_object_get(cfg, "docker_archive"))
    json_object_set_new(cfg, "layout_tag", json_string(argv[i]));
  mu_image img;
  int rc = pull_image(cfg, store, &img);
  if (rc == 0) {
    printf("%s %s %d %llu\n", img.manifest_digest, img.rootfs, img.layers_downloaded,
           (unsigned long long)img.downloaded_bytes);
    mu_image_free(&img);
  }
  json_decref(cfg);
  return rc;
}

static int cmd_store(int argc, char **argv) {
  const char *store = "/var/lib/muster/images";
  mu_gc_opts go = {0};
  bool list_after = false; /* gc --list: the images left, after the summary line */
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--list") == 0) list_after = true;
    else if (i + 1 < argc && strcmp(argv[i], "--store") == 0) store = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--max-bytes") == 0) go.max_bytes = strtoull(argv[++i], NULL, 10);
    else if (i + 1 < argc && strcmp(argv[i], "--max-age-s") == 0) go.max_age_s = atoll(argv[++i]);
    else {
      fprintf(stderr, "muster-container: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  mu_err err = {0};
  if (strcmp(argv[1], "images") == 0) {
    if (mu_store_list(store, stdout, &err) != 0) {
      fprintf(stderr, "muster-container: %s\n", err.msg);
      return 1;
    }
    return 0;
  }
  mu_gc_result r;
  if (mu_store_gc(store, &go, &r, &err) != 0) {
    fprintf(stderr, "muster-container: %s\n", err.msg);
    return 1;
  }
  printf("removed %d kept %d in-use %d bytes %llu -> %llu\n", r.images_removed, r.images_kept, r.images_in_use,
         (unsigned long long)r.bytes_before, (unsigned long long)r.bytes_after);
  if (list_after && mu_store_list(store, stdout, &err) != 0) {
    fprintf(stderr, "muster-container: %s\n", err.msg);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *c = getenv("MUSTER_CONTROL");
  if (c != NULL && *c) control_fd = atoi(c);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "run") == 0) return cmd_run(argv[2], argv);
#ifdef MU_CONTAINER_LITE
  return exec_full(argv);
#endif
  if (argc >= 3 && strcmp(argv[1], "pull") == 0) return cmd_pull(argc, argv);
  if (argc >= 2 && (strcmp(argv[1], "images") == 0 || strcmp(argv[1], "gc") == 0)) return cmd_store(argc, argv);
  fprintf(stderr,
          "usage: muster-container run CONFIG.json | pull [options] IMAGE | images [--store DIR] |\n"
          "       gc [--store DIR] [--max-bytes N] [--max-age-s N]\n");
  return 2;
}
