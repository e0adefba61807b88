/* The agent's bundle path for one task: cache get (fetch on a miss) -> on the thread pool:
 * read, verify digest and signature, rollback check, unpack into a staging dir -> hand the
 * assign to the runner, whose prepare_dir hook checks rollback again and moves the staged tree
 * into the task dir; the runner's started hook then raises the rollback floor (a bundle that
 * never ran must not). Refusals fail the task with the rule that refused it. */
#define _GNU_SOURCE
#include "agent/bundles.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/assign_secrets.h"
#include "agent/bundle_cache.h"
#include "agent/exec/workdir.h"
#include "agent/plugin_deploy.h"
#include "lib/base/log.h"
#include "lib/bundle/unpack.h"
#include "lib/bundle/version.h"

#define MU_RECENT_KEYS 256
#define MU_MAX_SIG_BYTES (64 * 1024)
#define MU_MAX_RAN_NAMES 4096

typedef struct prep {
  struct prep *next;
  mu_agent_bundles *ab;
  Muster__V1__Assign *assign; /* owned copy */
  char digest[MU_BUNDLE_DIGEST_SIZE];
  int pinned;                                                            /* the task names the bundle by digest */
  char name[MU_BUNDLE_NAME_MAX + 1], version[MU_BUNDLE_VERSION_MAX + 1]; /* once verified */
  char *stage;                                                           /* <spool>/bundles/stage/<n> */
  char *path, *sig_path;                                                 /* from the cache, while held */
  int holding;                                                           /* holds a cache reference */
  int staged;    /* unpacked, waiting for the runner's prepare_dir */
  int in_assign; /* inside hooks.ready (the runner taking it) */
  int consumed;  /* prepare_dir moved it into the task dir */
  uv_work_t work;
  int rc;
  mu_err err;
  char note[300];
} prep;

/* An attempt whose bundle is in its task dir, until the runner says it started (the floor is
 * raised then) or it ends without starting. */
typedef struct ran_wait {
  struct ran_wait *next;
  char *task_id;
  uint32_t attempt;
  char name[MU_BUNDLE_NAME_MAX + 1], version[MU_BUNDLE_VERSION_MAX + 1];
} ran_wait;

struct mu_agent_bundles {
  mu_agent_daemon *a;
  mu_agent_bundles_hooks hooks;
  mu_bundle_cache *cache;
  mu_trust_set *trust;
  char *root; /* <spool>/bundles */
  char *stage_root;
  char *ran_path;
  uint64_t stage_seq;
  prep *preps;
  int workers;
  int closing;
  int cache_closing; /* mu_bundle_cache_close called */
  int cache_closed;  /* ... and done: cache is NULL */
  /* rollback record: the highest version run per name; shared with workers under lock */
  pthread_mutex_t ran_lock;
  char **ran_names, **ran_versions;
  size_t n_ran;
  ran_wait *waits;     /* started from a bundle, not yet reported started */
  uv_work_t save_work; /* writes the record on the thread pool, one at a time */
  int saving, save_again;
  int save_errno; /* set by the save worker, logged on the loop */
  /* (task_id, attempt) keys recently handled: a repeated Assign is ignored */
  char *recent[MU_RECENT_KEYS];
  size_t recent_next;
};

static void maybe_free(mu_agent_bundles *ab);
static void ran_save_later(mu_agent_bundles *ab);

/* --- rollback record --- */

/* Raises name's floor to version (adds the name when new). Caller holds ran_lock, or is the
 * only thread (start-up). 1 when raised, 0 when it was already there or higher, or MU_ENOMEM
 * / MU_ENOSPC (the record is full). */
static int ran_put(mu_agent_bundles *ab, const char *name, const char *version) {
  size_t i = 0;
  while (i < ab->n_ran && strcmp(ab->ran_names[i], name) != 0) i++;
  if (i < ab->n_ran && mu_bundle_version_cmp(version, ab->ran_versions[i]) <= 0) return 0;
  char *v = strdup(version);
  if (v == NULL) return MU_ENOMEM;
  if (i < ab->n_ran) {
    free(ab->ran_versions[i]);
    ab->ran_versions[i] = v;
    return 1;
  }
  char *n = ab->n_ran < MU_MAX_RAN_NAMES ? strdup(name) : NULL;
  char **gn = n ? realloc(ab->ran_names, (ab->n_ran + 1) * sizeof *gn) : NULL;
  if (gn != NULL) ab->ran_names = gn;
  char **gv = gn ? realloc(ab->ran_versions, (ab->n_ran + 1) * sizeof *gv) : NULL;
  if (gv == NULL) {
    free(n);
    free(v);
    return ab->n_ran < MU_MAX_RAN_NAMES ? MU_ENOMEM : MU_ENOSPC;
  }
  ab->ran_versions = gv;
  ab->ran_names[ab->n_ran] = n;
  ab->ran_versions[ab->n_ran] = v;
  ab->n_ran++;
  return 1;
}

static void ran_load(mu_agent_bundles *ab) {
  FILE *fp = fopen(ab->ran_path, "re");
  if (fp == NULL) return;
  char name[256], version[128];
  while (fscanf(fp, "%255s %127s", name, version) == 2 && ran_put(ab, name, version) >= 0) {}
  fclose(fp);
}

/* Writes the record (tmp + rename) on a worker, from a copy taken under ran_lock, so neither
 * the loop nor a bundle check waits on the disk. */
static void ran_save_work(uv_work_t *w) {
  mu_agent_bundles *ab = w->data;
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (mem == NULL) return;
  pthread_mutex_lock(&ab->ran_lock);
  for (size_t i = 0; i < ab->n_ran; i++) fprintf(mem, "%s %s\n", ab->ran_names[i], ab->ran_versions[i]);
  pthread_mutex_unlock(&ab->ran_lock);
  int ok = fclose(mem) == 0;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", ab->ran_path);
  FILE *fp = ok ? fopen(tmp, "we") : NULL;
  if (fp != NULL) {
    ok = fwrite(text, 1, len, fp) == len && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, ab->ran_path) != 0) ab->save_errno = errno ? errno : EIO;
  } else {
    ab->save_errno = errno ? errno : EIO;
  }
  free(text);
}

static void ran_save_done(uv_work_t *w, int status) {
  mu_agent_bundles *ab = w->data;
  (void)status;
  ab->workers--;
  ab->saving = 0;
  if (ab->save_errno != 0)
    mu_warn("bundles", "rollback record %s not saved: %s", ab->ran_path, strerror(ab->save_errno));
  ab->save_errno = 0;
  if (ab->save_again) {
    ab->save_again = 0;
    ran_save_later(ab);
  }
  maybe_free(ab);
}

static void ran_save_later(mu_agent_bundles *ab) {
  if (ab->saving) {
    ab->save_again = 1;
    return;
  }
  ab->save_work.data = ab;
  ab->saving = 1;
  ab->workers++;
  if (uv_queue_work(ab->a->loop, &ab->save_work, ran_save_work, ran_save_done) != 0) {
    ab->saving = 0;
    ab->workers--;
  }
}

/* A plugin deploy's bundle (plugin_deploy.h) is not a task bundle: its versions follow the
 * deploy's own downgrade rule (--allow-downgrade, rollback), not the rollback record. */
static int is_plugin_install(const prep *p) {
  const Muster__V1__TaskSpec *spec = p->assign != NULL ? p->assign->spec : NULL;
  return spec != NULL && spec->type != NULL && strcmp(spec->type, MU_PLUGIN_INSTALL_TYPE) == 0;
}

/* The rollback rule (any thread): 0 when version may run; note says why a lower one may. */
static int ran_check(mu_agent_bundles *ab, const prep *p, char *note, size_t note_size, mu_err *err) {
  if (is_plugin_install(p)) return 0;
  pthread_mutex_lock(&ab->ran_lock);
  size_t i = 0;
  while (i < ab->n_ran && strcmp(ab->ran_names[i], p->name) != 0) i++;
  const char *last = i < ab->n_ran ? ab->ran_versions[i] : NULL;
  int rc = mu_bundle_rollback_check(p->name, last, p->version, err);
  if (rc == MU_EPERM && p->pinned && ab->a->cfg.allow_downgrade) {
    snprintf(note, note_size, "bundle '%s': running %s below %s: pinned by digest and downgrades are allowed", p->name,
             p->version, last);
    rc = 0;
  } else if (rc == MU_EPERM && p->pinned) {
    mu_err_prefix(err, "%s", "pinned by digest, but this agent does not allow downgrades (--allow-downgrade)");
  }
  pthread_mutex_unlock(&ab->ran_lock);
  return rc;
}

/* Unlinks and returns the wait of (task_id, attempt); NULL when there is none. */
static ran_wait *wait_take(mu_agent_bundles *ab, const char *task_id, uint32_t attempt) {
  for (ran_wait **pw = ab ? &ab->waits : NULL; pw != NULL && *pw != NULL; pw = &(*pw)->next)
    if ((*pw)->attempt == attempt && strcmp((*pw)->task_id, task_id) == 0) {
      ran_wait *w = *pw;
      *pw = w->next;
      return w;
    }
  return NULL;
}

static void wait_free(ran_wait *w) {
  if (w == NULL) return;
  free(w->task_id);
  free(w);
}

void mu_agent_bundles_started(void *arg, const char *task_id, uint32_t attempt) {
  mu_agent_daemon *a = arg;
  mu_agent_bundles *ab = a->bundles;
  ran_wait *w = wait_take(ab, task_id, attempt);
  if (w == NULL) return;
  pthread_mutex_lock(&ab->ran_lock);
  int rc = ran_put(ab, w->name, w->version);
  pthread_mutex_unlock(&ab->ran_lock);
  if (rc < 0) mu_warn("bundles", "%s@%s not added to the rollback record: %s", w->name, w->version, mu_strerror(rc));
  else if (rc > 0) ran_save_later(ab);
  wait_free(w);
}

void mu_agent_bundles_attempt_ended(mu_agent_daemon *a, const char *task_id, uint32_t attempt) {
  wait_free(wait_take(a->bundles, task_id, attempt));
}

/* --- per task --- */

static void prep_free(mu_agent_bundles *ab, prep *p) {
  for (prep **pp = &ab->preps; *pp != NULL; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  if (p->holding && ab->cache != NULL) mu_bundle_cache_release(ab->cache, p->digest);
  mu_assign_wipe_secrets(p->assign);
  if (p->assign != NULL) protobuf_c_message_free_unpacked(&p->assign->base, NULL);
  free(p->stage);
  free(p->path);
  free(p->sig_path);
  free(p);
}

static void remove_tree_later(mu_agent_bundles *ab, const char *path) {
  char *copy = strdup(path);
  if (copy != NULL) mu_workdir_remove(ab->a->loop, copy, NULL, NULL);
}

static void prep_work(uv_work_t *w) {
  prep *p = w->data;
  mu_agent_bundles *ab = p->ab;
  mu_unpack_limits limits;
  mu_unpack_limits_default(&limits);
  uint8_t *data = NULL, *sig = NULL;
  size_t len = 0, sig_len = 0;
  mu_bundle_info *info = NULL;
  int rc = mu_bundle_read_file(p->path, limits.max_archive_bytes, &data, &len, &p->err);
  if (rc == 0 && p->sig_path != NULL) rc = mu_bundle_read_file(p->sig_path, MU_MAX_SIG_BYTES, &sig, &sig_len, &p->err);
  mu_bundle_check check = {.expected_digest = p->digest,
                           .trust = ab->trust,
                           .sig = sig,
                           .sig_len = sig_len,
                           .allow_unsigned = ab->a->cfg.allow_unsigned};
  if (rc == 0) rc = mu_bundle_verify(data, len, &check, &limits, &info, &p->err);
  if (rc == 0) {
    snprintf(p->name, sizeof p->name, "%s", info->manifest->name);
    snprintf(p->version, sizeof p->version, "%s", info->manifest->version);
    rc = ran_check(ab, p, p->note, sizeof p->note, &p->err);
  }
  /* verified just above: unpack checks every entry but does not hash the archive again */
  if (rc == 0) rc = mu_bundle_unpack_verified(data, len, info, &limits, p->stage, 0, &p->err);
  if (rc != 0 && info != NULL && info->manifest != NULL)
    mu_err_prefix(&p->err, "bundle %s@%s (%s)", info->manifest->name, info->manifest->version, p->digest);
  else if (rc != 0) mu_err_prefix(&p->err, "bundle %s", p->digest);
  p->rc = rc;
  mu_bundle_info_free(info);
  free(data);
  free(sig);
}

static void prep_done(uv_work_t *w, int status) {
  prep *p = w->data;
  mu_agent_bundles *ab = p->ab;
  ab->workers--;
  if (p->holding && ab->cache != NULL) mu_bundle_cache_release(ab->cache, p->digest);
  p->holding = 0;
  if (status != 0 && p->rc == 0) p->rc = mu_err_set(&p->err, MU_ECANCELED, "bundle preparation cancelled");
  if (ab->closing) {
    if (p->rc == 0) remove_tree_later(ab, p->stage);
    prep_free(ab, p);
    maybe_free(ab);
    return;
  }
  if (p->rc != 0) {
    mu_warn("bundles", "%s attempt %u refused: %s", p->assign->task_id, p->assign->attempt, p->err.msg);
    ab->hooks.refused(ab->hooks.arg, p->assign, p->err.msg);
    prep_free(ab, p);
    return;
  }
  if (p->note[0] != '\0') mu_warn("bundles", "%s: %s", p->assign->task_id, p->note);
  p->staged = 1;
  p->in_assign = 1;
  int rc = ab->hooks.ready(ab->hooks.arg, p->assign);
  p->in_assign = 0;
  if (p->consumed || rc != 0) {
    if (!p->consumed) remove_tree_later(ab, p->stage);
    prep_free(ab, p);
  }
  /* else: the runner took it without making a dir yet; prepare_dir frees it later */
}

static void on_cached(void *arg, int rc, const char *msg, const mu_cached_bundle *b) {
  prep *p = arg;
  mu_agent_bundles *ab = p->ab;
  if (rc != 0) {
    if (!ab->closing) {
      char text[MU_ERR_MSG_MAX];
      snprintf(text, sizeof text, "bundle %s: %s", p->digest, msg);
      mu_warn("bundles", "%s attempt %u: %s", p->assign->task_id, p->assign->attempt, text);
      ab->hooks.refused(ab->hooks.arg, p->assign, text);
    }
    prep_free(ab, p);
    maybe_free(ab);
    return;
  }
  p->holding = 1;
  p->path = strdup(b->path);
  p->sig_path = b->sig_path ? strdup(b->sig_path) : NULL;
  if (p->path == NULL || (b->sig_path != NULL && p->sig_path == NULL) || ab->closing) {
    if (!ab->closing) ab->hooks.refused(ab->hooks.arg, p->assign, "out of memory preparing the bundle");
    prep_free(ab, p);
    maybe_free(ab);
    return;
  }
  p->work.data = p;
  ab->workers++;
  if (uv_queue_work(ab->a->loop, &p->work, prep_work, prep_done) != 0) {
    ab->workers--;
    ab->hooks.refused(ab->hooks.arg, p->assign, "cannot queue the bundle preparation");
    prep_free(ab, p);
  }
}

static int seen_recently(mu_agent_bundles *ab, const char *key) {
  for (size_t i = 0; i < MU_RECENT_KEYS; i++)
    if (ab->recent[i] != NULL && strcmp(ab->recent[i], key) == 0) return 1;
  free(ab->recent[ab->recent_next]);
  ab->recent[ab->recent_next] = strdup(key);
  ab->recent_next = (ab->recent_next + 1) % MU_RECENT_KEYS;
  return 0;
}

int mu_agent_bundles_on_assign(mu_agent_daemon *a, const Muster__V1__Assign *as) {
  mu_agent_bundles *ab = a->bundles;
  if (as->spec == NULL || as->spec->bundle[0] == '\0' || ab == NULL) return 0;
  if (ab->closing) {
    ab->hooks.refused(ab->hooks.arg, as, "the agent is stopping");
    return 1;
  }
  char key[700];
  snprintf(key, sizeof key, "%s#%u", as->task_id, as->attempt);
  if (seen_recently(ab, key)) {
    mu_info("bundles", "%s attempt %u already assigned; ignoring the repeat", as->task_id, as->attempt);
    return 1;
  }
  if (as->bundle_digest[0] == '\0' || mu_bundle_digest_check(as->bundle_digest, NULL) != 0) {
    char text[600];
    snprintf(text, sizeof text, "bundle '%.300s' is not stored on the control plane (no digest in the assign)",
             as->spec->bundle);
    ab->hooks.refused(ab->hooks.arg, as, text);
    return 1;
  }
  prep *p = calloc(1, sizeof *p);
  size_t len = muster__v1__assign__get_packed_size(as);
  uint8_t *buf = malloc(len ? len : 1);
  if (p == NULL || buf == NULL) {
    free(p);
    free(buf);
    ab->hooks.refused(ab->hooks.arg, as, "out of memory");
    return 1;
  }
  muster__v1__assign__pack(as, buf);
  p->assign = muster__v1__assign__unpack(NULL, len, buf);
  explicit_bzero(buf, len); /* it held the secret values */
  free(buf);
  p->ab = ab;
  snprintf(p->digest, sizeof p->digest, "%s", as->bundle_digest);
  p->pinned = strncmp(as->spec->bundle, MU_BUNDLE_DIGEST_PREFIX, strlen(MU_BUNDLE_DIGEST_PREFIX)) == 0;
  if (asprintf(&p->stage, "%s/%llu", ab->stage_root, (unsigned long long)++ab->stage_seq) < 0) p->stage = NULL;
  if (p->assign == NULL || p->stage == NULL) {
    free(p->stage);
    mu_assign_wipe_secrets(p->assign);
    if (p->assign) protobuf_c_message_free_unpacked(&p->assign->base, NULL);
    free(p);
    ab->hooks.refused(ab->hooks.arg, as, "out of memory");
    return 1;
  }
  p->next = ab->preps;
  ab->preps = p;
  mu_bundle_cache_get(ab->cache, p->digest, on_cached, p);
  return 1;
}

/* Moves the unpacked tree of p from its stage dir into task_dir. */
static int move_staged(const prep *p, const char *task_dir, mu_err *err) {
  DIR *dir = opendir(p->stage);
  if (dir == NULL) return mu_err_set(err, MU_EIO, "bundle: staged dir %s: %s", p->stage, strerror(errno));
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char from[4400], to[4400];
    snprintf(from, sizeof from, "%s/%s", p->stage, de->d_name);
    snprintf(to, sizeof to, "%s/%s", task_dir, de->d_name);
    if (rename(from, to) != 0)
      rc = mu_err_set(err, MU_EIO, "bundle: moving %s into the task dir: %s", de->d_name, strerror(errno));
  }
  closedir(dir);
  if (rc == 0) rmdir(p->stage);
  return rc;
}

/* Remembers p's name@version for the attempt until the runner says it started. */
static int wait_for_start(mu_agent_bundles *ab, const prep *p, const char *task_id, uint32_t attempt, mu_err *err) {
  if (is_plugin_install(p)) return 0; /* never raises the rollback record */
  ran_wait *w = calloc(1, sizeof *w);
  if (w != NULL) w->task_id = strdup(task_id);
  if (w == NULL || w->task_id == NULL) {
    free(w);
    return mu_err_set(err, MU_ENOMEM, "bundle: out of memory");
  }
  w->attempt = attempt;
  snprintf(w->name, sizeof w->name, "%s", p->name);
  snprintf(w->version, sizeof w->version, "%s", p->version);
  w->next = ab->waits;
  ab->waits = w;
  return 0;
}

int mu_agent_bundles_prepare_dir(void *arg, const char *task_id, uint32_t attempt, const char *task_dir, mu_err *err) {
  mu_agent_daemon *a = arg;
  mu_agent_bundles *ab = a->bundles;
  prep *p = ab ? ab->preps : NULL;
  for (; p != NULL; p = p->next)
    if (p->staged && !p->consumed && p->assign->attempt == attempt && strcmp(p->assign->task_id, task_id) == 0) break;
  if (p == NULL) return 0;
  /* Checked again as it is about to run (it may have waited for a slot): a higher version
   * may have started from another task since the worker checked. */
  char note[sizeof p->note];
  int rc = ran_check(ab, p, note, sizeof note, err);
  if (rc != 0) mu_err_prefix(err, "bundle %s@%s (%s)", p->name, p->version, p->digest);
  if (rc == 0) rc = move_staged(p, task_dir, err);
  if (rc == 0) rc = wait_for_start(ab, p, task_id, attempt, err);
  if (rc != 0) remove_tree_later(ab, p->stage);
  p->consumed = 1;
  if (!p->in_assign) prep_free(ab, p);
  return rc;
}

void mu_agent_bundles_on_chunk(mu_agent_daemon *a, const Muster__V1__BundleChunk *ch) {
  if (a->bundles != NULL && !a->bundles->cache_closing && a->bundles->cache != NULL)
    mu_bundle_cache_on_chunk(a->bundles->cache, ch);
}

void mu_agent_bundles_on_welcome(mu_agent_daemon *a) {
  if (a->bundles != NULL && !a->bundles->cache_closing && a->bundles->cache != NULL)
    mu_bundle_cache_resume(a->bundles->cache);
}

static int send_request(void *arg, const char *digest, uint64_t offset) {
  mu_agent_daemon *a = arg;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__BundleRequest req = MUSTER__V1__BUNDLE_REQUEST__INIT;
  req.digest = (char *)digest;
  req.offset = offset;
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_BUNDLE_REQUEST;
  msg.bundle_request = &req;
  mu_err err = {0};
  int rc = mu_conn_send(&a->conn, &msg, &err);
  if (rc != 0 && rc != MU_EAGAIN) mu_warn("bundles", "asking for %s: %s", digest, err.msg);
  return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

int mu_agent_bundles_start(mu_agent_daemon *a, const mu_agent_bundles_hooks *hooks, mu_err *err) {
  mu_agent_bundles *ab = calloc(1, sizeof *ab);
  if (ab == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  ab->a = a;
  ab->hooks = *hooks;
  pthread_mutex_init(&ab->ran_lock, NULL);
  a->bundles = ab;
  int rc = 0;
  char *cache_dir = NULL;
  if (asprintf(&ab->root, "%s/bundles", a->cfg.spool_dir) < 0 || asprintf(&ab->stage_root, "%s/stage", ab->root) < 0 ||
      asprintf(&ab->ran_path, "%s/ran", ab->root) < 0 || asprintf(&cache_dir, "%s/cache", ab->root) < 0) {
    free(cache_dir);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (mkdir(ab->root, 0700) != 0 && errno != EEXIST) {
    rc = mu_err_set(err, MU_EIO, "bundle dir %s: %s", ab->root, strerror(errno));
    goto out;
  }
  /* Stage dirs of an earlier run are leftovers: start empty (start-up only, so it may block). */
  nftw(ab->stage_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (mkdir(ab->stage_root, 0700) != 0 && errno != EEXIST) {
    rc = mu_err_set(err, MU_EIO, "bundle stage dir %s: %s", ab->stage_root, strerror(errno));
    goto out;
  }
  size_t n_keys = a->cfg.trust_keys.n;
  rc = mu_trust_set_new(n_keys ? n_keys : 1, &ab->trust, err);
  if (rc != 0) goto out;
  for (size_t i = 0; i < n_keys && rc == 0; i++) rc = mu_trust_set_add_file(ab->trust, a->cfg.trust_keys.items[i], err);
  if (rc != 0) {
    mu_err_prefix(err, "--trust-key");
    goto out;
  }
  ran_load(ab);
  mu_bundle_cache_config cc = {
      .dir = cache_dir, .max_bytes = a->cfg.bundle_cache_size, .request = send_request, .arg = a};
  rc = mu_bundle_cache_open(a->loop, &cc, &ab->cache, err);
  if (rc != 0) goto out;
  mu_bundle_cache_stats st;
  mu_bundle_cache_stats_get(ab->cache, &st);
  mu_info("bundles", "cache %s: %zu bundles, %llu bytes (cap %llu); %zu trusted keys%s%s", cache_dir, st.entries,
          (unsigned long long)st.bytes, (unsigned long long)a->cfg.bundle_cache_size, n_keys,
          a->cfg.allow_unsigned ? ", unsigned bundles allowed" : "",
          a->cfg.allow_downgrade ? ", pinned downgrades allowed" : "");
out:
  free(cache_dir);
  if (rc != 0) {
    ab->cache_closed = 1;
    ab->closing = 1;
    maybe_free(ab);
  }
  return rc;
}

static void free_now(mu_agent_bundles *ab) {
  if (ab->a->bundles == ab) ab->a->bundles = NULL;
  for (size_t i = 0; i < MU_RECENT_KEYS; i++) free(ab->recent[i]);
  for (size_t i = 0; i < ab->n_ran; i++) {
    free(ab->ran_names[i]);
    free(ab->ran_versions[i]);
  }
  free(ab->ran_names);
  free(ab->ran_versions);
  while (ab->waits != NULL) {
    ran_wait *w = ab->waits;
    ab->waits = w->next;
    wait_free(w);
  }
  mu_trust_set_free(ab->trust);
  pthread_mutex_destroy(&ab->ran_lock);
  free(ab->root);
  free(ab->stage_root);
  free(ab->ran_path);
  free(ab);
}

static void on_cache_closed(void *arg) {
  mu_agent_bundles *ab = arg;
  ab->cache = NULL;
  ab->cache_closed = 1;
  maybe_free(ab);
}

/* Frees ab once stopping, with no worker running and the cache closed. */
static void maybe_free(mu_agent_bundles *ab) {
  if (!ab->closing || ab->workers > 0) return;
  if (!ab->cache_closed) {
    if (!ab->cache_closing) {
      ab->cache_closing = 1;
      /* waiting fetches fail with MU_ECANCELED: their preps are freed in on_cached */
      mu_bundle_cache_close(ab->cache, on_cache_closed, ab);
    }
    return;
  }
  while (ab->preps != NULL) prep_free(ab, ab->preps);
  free_now(ab);
}

void mu_agent_bundles_stop(mu_agent_daemon *a) {
  mu_agent_bundles *ab = a->bundles;
  if (ab == NULL || ab->closing) return;
  ab->closing = 1;
  /* Staged trees nobody will run. */
  prep *p = ab->preps;
  while (p != NULL) {
    prep *next = p->next;
    if (p->staged && !p->in_assign) {
      remove_tree_later(ab, p->stage);
      prep_free(ab, p);
    }
    p = next;
  }
  maybe_free(ab);
}

size_t mu_agent_bundles_cached(const mu_agent_daemon *a, const char **ret, size_t max) {
  if (a->bundles == NULL || a->bundles->cache == NULL) return 0;
  return mu_bundle_cache_list(a->bundles->cache, ret, max);
}

void mu_agent_bundles_stats(const mu_agent_daemon *a, mu_bundle_cache_stats *ret) {
  memset(ret, 0, sizeof *ret);
  if (a->bundles != NULL && a->bundles->cache != NULL && !a->bundles->cache_closed)
    mu_bundle_cache_stats_get(a->bundles->cache, ret);
}
