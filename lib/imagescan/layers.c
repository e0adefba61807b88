/* The layer walk of mu_inventory_read_layers (see inventory.h): each layer's tar is streamed
 * once with libarchive; only the entries a scan cares about are kept, in a table keyed by
 * path that remembers the layer each came from, so a whiteout in layer i can hide exactly the
 * entries of layers below i. Package databases are parsed after the last layer, from what
 * is still visible. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/imagescan/inventory.h"
#include "lib/imagescan/pkgdb.h"

#define KEY_PROBE_BYTES 64           /* a PEM header fits in the first 64 bytes */
#define KEY_PROBE_MAX_FILE (1 << 20) /* files larger than this are not keys */

typedef enum { REC_OSREL_ETC = 0, REC_OSREL_USR, REC_DPKG, REC_DPKG_D, REC_APK, REC_PY, REC_RISK } rec_kind;

typedef struct rec {
  char *path;
  size_t layer;
  rec_kind kind;
  bool dead;
  char *data; /* content kinds; NULL for an os-release symlink */
  size_t len;
  mu_risk_kind risk;
  char detail[96];
} rec;

typedef struct walk {
  rec *recs;
  size_t n, cap, live;
  size_t *slots; /* open addressing: rec index + 1, 0 = empty */
  size_t n_slots;
  uint64_t kept, entries;
  mu_inventory_limits lim;
} walk;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static rec *lookup(walk *w, const char *path) {
  if (w->n_slots == 0) return NULL;
  for (size_t i = hash_str(path) & (w->n_slots - 1);; i = (i + 1) & (w->n_slots - 1)) {
    if (w->slots[i] == 0) return NULL;
    rec *r = &w->recs[w->slots[i] - 1];
    if (strcmp(r->path, path) == 0) return r;
  }
}

static void drop(walk *w, rec *r) {
  if (r->dead) return;
  r->dead = true;
  w->live--;
  w->kept -= r->len;
  free(r->data);
  r->data = NULL;
  r->len = 0;
}

/* A record for path (an existing one reused), alive, from layer; NULL when out of memory. */
static rec *put(walk *w, const char *path, size_t layer) {
  rec *r = lookup(w, path);
  if (r != NULL) {
    drop(w, r);
  } else {
    if ((w->n + 1) * 2 > w->n_slots) {
      size_t ns = w->n_slots ? w->n_slots * 2 : 256;
      size_t *slots = calloc(ns, sizeof *slots);
      if (slots == NULL) return NULL;
      for (size_t k = 0; k < w->n; k++) {
        size_t i = hash_str(w->recs[k].path) & (ns - 1);
        while (slots[i]) i = (i + 1) & (ns - 1);
        slots[i] = k + 1;
      }
      free(w->slots);
      w->slots = slots;
      w->n_slots = ns;
    }
    if (w->n == w->cap) {
      size_t cap = w->cap ? w->cap * 2 : 128;
      rec *nr = realloc(w->recs, cap * sizeof *nr);
      if (nr == NULL) return NULL;
      w->recs = nr;
      w->cap = cap;
    }
    r = &w->recs[w->n];
    memset(r, 0, sizeof *r);
    r->path = strdup(path);
    if (r->path == NULL) return NULL;
    size_t i = hash_str(path) & (w->n_slots - 1);
    while (w->slots[i]) i = (i + 1) & (w->n_slots - 1);
    w->slots[i] = ++w->n;
    r->dead = true; /* made alive below */
  }
  r->dead = false;
  r->layer = layer;
  w->live++;
  return r;
}

/* Hides what layers below layer hold at prefix (itself and under it; prefix "" = all when
 * only_under). */
static void hide(walk *w, const char *prefix, size_t layer, bool only_under) {
  size_t pl = strlen(prefix);
  for (size_t k = 0; k < w->n && w->live > 0; k++) {
    rec *r = &w->recs[k];
    if (r->dead || r->layer >= layer) continue;
    bool same = !only_under && strcmp(r->path, prefix) == 0;
    bool under = pl == 0 ? only_under : strncmp(r->path, prefix, pl) == 0 && r->path[pl] == '/';
    if (same || under) drop(w, r);
  }
}

/* "./a//b/" -> "a/b" into out; false for "..", an empty name or one too long. */
static bool clean(const char *raw, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = raw; p && *p;) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') return false;
    if (len > 0 && !(len == 1 && p[0] == '.')) {
      if (n + len + 2 > cap) return false;
      if (n) out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p += len;
  }
  out[n] = '\0';
  return n > 0;
}

static bool ends_with(const char *s, size_t sl, const char *suffix) {
  size_t l = strlen(suffix);
  return sl >= l && memcmp(s + sl - l, suffix, l) == 0;
}

/* The content kind of a regular file at path, or REC_RISK when it is not a database. */
static rec_kind content_kind(const char *path) {
  if (strcmp(path, "etc/os-release") == 0) return REC_OSREL_ETC;
  if (strcmp(path, "usr/lib/os-release") == 0) return REC_OSREL_USR;
  if (strcmp(path, "var/lib/dpkg/status") == 0) return REC_DPKG;
  if (strcmp(path, "lib/apk/db/installed") == 0) return REC_APK;
  if (strncmp(path, "var/lib/dpkg/status.d/", 22) == 0) {
    const char *name = path + 22;
    if (*name && strchr(name, '/') == NULL && !ends_with(name, strlen(name), ".md5sums")) return REC_DPKG_D;
    return REC_RISK;
  }
  size_t l = strlen(path);
  if (!ends_with(path, l, ".dist-info/METADATA")) return REC_RISK;
  /* .../{site,dist}-packages/NAME.dist-info/METADATA */
  const char *info = path + l - strlen("/METADATA");
  const char *p = info;
  while (p > path && p[-1] != '/') p--; /* p: start of NAME.dist-info */
  if (p == path) return REC_RISK;
  const char *dir_end = p - 1, *d = dir_end;
  while (d > path && d[-1] != '/') d--;
  size_t dl = (size_t)(dir_end - d);
  if ((dl == 13 && strncmp(d, "site-packages", 13) == 0) || (dl == 13 && strncmp(d, "dist-packages", 13) == 0))
    return REC_PY;
  return REC_RISK;
}

/* A secret by its name alone; the detail into out. */
static bool secret_name(const char *path, char *out, size_t cap) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  static const char *const names[] = {"id_rsa",           "id_dsa",  "id_ecdsa", "id_ed25519", ".netrc",
                                      ".git-credentials", ".pgpass", ".pypirc",  ".dockercfg"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(base, names[i]) == 0) {
      snprintf(out, cap, "file name %s", names[i]);
      return true;
    }
  if (strcmp(base, ".env") == 0 || strncmp(base, ".env.", 5) == 0) {
    snprintf(out, cap, "environment file (.env)");
    return true;
  }
  size_t l = strlen(path);
  if (ends_with(path, l, "/.aws/credentials") || strcmp(path, ".aws/credentials") == 0 ||
      ends_with(path, l, "/.docker/config.json")) {
    snprintf(out, cap, "credentials file");
    return true;
  }
  return false;
}

/* A PEM private key header ("-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]PRIVATE KEY"). */
static bool pem_private_key(const char *buf, size_t n) {
  if (n < 11 || memcmp(buf, "-----BEGIN ", 11) != 0) return false;
  const char *nl = memchr(buf, '\n', n);
  size_t l = nl ? (size_t)(nl - buf) : n;
  return memmem(buf, l, "PRIVATE KEY", 11) != NULL;
}

static int read_content(walk *w, struct archive *a, rec *r, const char *path, size_t layer, mu_err *err) {
  uint64_t max = w->lim.max_db_bytes;
  size_t cap = 0, len = 0;
  char *buf = NULL;
  for (;;) {
    if (len + 65536 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 65536 * 2;
      char *nb = realloc(buf, ncap);
      if (nb == NULL) {
        free(buf);
        return mu_err_set(err, MU_ENOMEM, "out of memory");
      }
      buf = nb;
      cap = ncap;
    }
    la_ssize_t n = archive_read_data(a, buf + len, 65536);
    if (n < 0) {
      free(buf);
      return mu_err_set(err, MU_EIO, "layer %zu: %s: %s", layer + 1, path, archive_error_string(a));
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len > max) {
      free(buf);
      return mu_err_set(err, MU_ENOSPC, "layer %zu: %s is over the %llu-byte database bound", layer + 1, path,
                        (unsigned long long)max);
    }
    if (w->kept + len > w->lim.max_kept_bytes) {
      free(buf);
      return mu_err_set(err, MU_ENOSPC, "layer %zu: %s: package databases over %llu bytes in all", layer + 1, path,
                        (unsigned long long)w->lim.max_kept_bytes);
    }
  }
  buf[len] = '\0';
  r->data = buf;
  r->len = len;
  w->kept += len;
  return 0;
}

/* One entry of layer: a whiteout, a database, a risky fact, or nothing kept. */
static int entry(walk *w, struct archive *a, struct archive_entry *e, size_t layer, mu_err *err) {
  char path[4096];
  if (!clean(archive_entry_pathname(e), path, sizeof path)) return 0;
  char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (strncmp(base, ".wh.", 4) == 0) {
    char target[4096];
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (strcmp(base, ".wh..wh..opq") == 0) {
      snprintf(target, sizeof target, "%.*s", (int)dl, path);
      hide(w, target, layer, true);
    } else if (base[4] != '\0') {
      snprintf(target, sizeof target, "%.*s%s%s", (int)dl, path, dl ? "/" : "", base + 4);
      hide(w, target, layer, false);
    }
    return 0;
  }
  rec *old = lookup(w, path);
  if (old != NULL) drop(w, old); /* replaced by this entry, whatever it is */
  mode_t type = archive_entry_filetype(e), mode = archive_entry_mode(e);
  rec *r = NULL;
  if (type == AE_IFDIR) {
    if ((mode & S_IWOTH) && !(mode & S_ISVTX)) {
      r = put(w, path, layer);
      if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
      r->kind = REC_RISK;
      r->risk = MU_RISK_WORLD_WRITABLE_DIR;
      snprintf(r->detail, sizeof r->detail, "mode %04o, no sticky bit", (unsigned)(mode & 07777));
    }
    return 0;
  }
  if (type == AE_IFLNK) {
    if (strcmp(path, "etc/os-release") == 0) { /* a link (to ../usr/lib/os-release): use that file */
      r = put(w, path, layer);
      if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
      r->kind = REC_OSREL_ETC;
    }
    return 0;
  }
  if (type != AE_IFREG) return 0;
  rec_kind k = content_kind(path);
  if (k != REC_RISK) {
    r = put(w, path, layer);
    if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    r->kind = k;
    return read_content(w, a, r, path, layer, err);
  }
  char detail[96];
  mu_risk_kind risk;
  if (mode & (S_ISUID | S_ISGID)) {
    risk = (mode & S_ISUID) ? MU_RISK_SETUID : MU_RISK_SETGID;
    snprintf(detail, sizeof detail, "mode %04o, owner %lld:%lld", (unsigned)(mode & 07777),
             (long long)archive_entry_uid(e), (long long)archive_entry_gid(e));
  } else if (secret_name(path, detail, sizeof detail)) {
    risk = MU_RISK_SECRET;
  } else {
    la_int64_t size = archive_entry_size(e);
    if (size < 20 || size > KEY_PROBE_MAX_FILE) return 0;
    char probe[KEY_PROBE_BYTES];
    la_ssize_t n = archive_read_data(a, probe, sizeof probe);
    if (n <= 0 || !pem_private_key(probe, (size_t)n)) return 0;
    risk = MU_RISK_SECRET;
    snprintf(detail, sizeof detail, "PEM private key");
  }
  r = put(w, path, layer);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  r->kind = REC_RISK;
  r->risk = risk;
  snprintf(r->detail, sizeof r->detail, "%s", detail);
  return 0;
}

static int read_layer(walk *w, const char *file, size_t layer, mu_err *err) {
  struct archive *a = archive_read_new();
  if (a == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  archive_read_support_filter_none(a);
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  int rc = 0;
  if (archive_read_open_filename(a, file, 65536) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "layer %zu (%s): %s", layer + 1, file, archive_error_string(a));
    goto done;
  }
  struct archive_entry *e;
  for (;;) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      rc = mu_err_set(err, MU_EIO, "layer %zu (%s): %s", layer + 1, file, archive_error_string(a));
      goto done;
    }
    if (++w->entries > w->lim.max_entries) {
      rc = mu_err_set(err, MU_ENOSPC, "layer %zu (%s): more than %llu entries in the image (the entry bound)",
                      layer + 1, file, (unsigned long long)w->lim.max_entries);
      goto done;
    }
    rc = entry(w, a, e, layer, err);
    if (rc != 0) goto done;
  }
done:
  archive_read_free(a);
  return rc;
}

/* From the visible records: the OS, the packages, the risky facts. */
static int collect(walk *w, mu_inventory *inv, mu_err *err) {
  rec *osr = lookup(w, "etc/os-release");
  if (osr == NULL || osr->dead || osr->data == NULL) osr = lookup(w, "usr/lib/os-release");
  if (osr != NULL && !osr->dead && osr->data != NULL) mu_osrelease_parse(osr->data, osr->len, &inv->os);
  size_t max = w->lim.max_pkgs;
  for (size_t k = 0; k < w->n; k++) {
    rec *r = &w->recs[k];
    if (r->dead) continue;
    int rc = 0;
    switch (r->kind) {
      case REC_DPKG: rc = mu_pkgdb_dpkg_parse(r->data, r->len, r->path, true, inv, max, err); break;
      case REC_DPKG_D: rc = mu_pkgdb_dpkg_parse(r->data, r->len, r->path, false, inv, max, err); break;
      case REC_APK: rc = mu_pkgdb_apk_parse(r->data, r->len, r->path, inv, max, err); break;
      case REC_PY: rc = mu_pkgdb_python_parse(r->data, r->len, r->path, inv, max, err); break;
      case REC_RISK: mu_inventory_add_risk(inv, r->risk, r->path, r->detail, w->lim.max_risks); break;
      case REC_OSREL_ETC:
      case REC_OSREL_USR: break;
    }
    if (rc != 0) return rc;
  }
  mu_inventory_sort(inv);
  return 0;
}

int mu_inventory_read_layers(const char *const *layers, size_t n, const mu_inventory_limits *limits, mu_inventory *ret,
                             mu_err *err) {
  memset(ret, 0, sizeof *ret);
  walk w = {0};
  if (limits) w.lim = *limits;
  if (w.lim.max_entries == 0) w.lim.max_entries = 2000000;
  if (w.lim.max_db_bytes == 0) w.lim.max_db_bytes = 64u << 20;
  if (w.lim.max_kept_bytes == 0) w.lim.max_kept_bytes = 256u << 20;
  if (w.lim.max_pkgs == 0) w.lim.max_pkgs = 200000;
  if (w.lim.max_risks == 0) w.lim.max_risks = 1000;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = read_layer(&w, layers[i], i, err);
  if (rc == 0) rc = collect(&w, ret, err);
  ret->entries = w.entries;
  for (size_t k = 0; k < w.n; k++) {
    free(w.recs[k].path);
    free(w.recs[k].data);
  }
  free(w.recs);
  free(w.slots);
  return rc;
}
