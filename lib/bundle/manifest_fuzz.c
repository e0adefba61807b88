/* Fuzzes the pieces of a bundle that arrive as text before anything is unpacked: byte 0 picks
 * MANIFEST.json (0), an entry path and symlink target "PATH\nTARGET" (1), a .sig or .pub file
 * (2), or two versions "A\nB" (3). Properties: an accepted manifest is its own canonical form
 * and every entry obeys the path rules; an accepted symlink never resolves above the bundle
 * root; keys and signatures format back to what parses the same; version order is a total
 * order on what it accepts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bundle/keys.h"
#include "lib/bundle/manifest.h"
#include "lib/bundle/version.h"
#include "lib/fuzz/fuzz_util.h"

static void manifest(const char *json, size_t len) {
  mu_manifest *m = NULL;
  mu_err err = {0};
  int rc = mu_manifest_parse(json, len, 64, 1u << 20, &m, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK((rc == MU_EINVAL || rc == MU_ENOSPC || rc == MU_ENOMEM) && m == NULL);
    MU_FUZZ_CHECK(strncmp(err.msg, "manifest", 8) == 0);
    return;
  }
  char *canon = NULL;
  size_t clen = 0;
  MU_FUZZ_CHECK(mu_manifest_to_json(m, &canon, &clen, &err) == 0);
  MU_FUZZ_CHECK(clen == len && memcmp(canon, json, len) == 0);
  free(canon);
  MU_FUZZ_CHECK(m->n_files <= 64 && mu_bundle_name_check(m->name, NULL) == 0);
  for (size_t i = 0; i < m->n_files; i++) {
    const mu_bundle_file *f = &m->files[i];
    MU_FUZZ_CHECK(mu_bundle_path_check(f->path, NULL) == 0);
    MU_FUZZ_CHECK(mu_manifest_find(m, f->path) == (long)i);
    MU_FUZZ_CHECK(f->mode <= 0777);
    if (f->type == MU_BUNDLE_SYMLINK) MU_FUZZ_CHECK(mu_bundle_link_check(f->path, f->target, NULL) == 0);
  }
  if (m->entry != NULL) MU_FUZZ_CHECK(mu_manifest_find(m, m->entry) >= 0);
  mu_manifest_free(m);
}

/* Resolves target from the directory of path by names alone (what the rules promise holds
 * whatever the links on disk are, as no entry may sit under a symlink). 1 when it stays
 * inside the bundle root. */
static int stays_inside(const char *path, const char *target) {
  long depth = 0;
  for (const char *q = path; *q; q++) depth += *q == '/';
  const char *p = target;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (--depth < 0) return 0;
    } else if (len > 0 && !(len == 1 && p[0] == '.')) {
      depth++;
    }
    if (slash == NULL) return 1;
    p = slash + 1;
  }
}

static void link(const char *path, const char *target) {
  mu_err err = {0};
  int rc = mu_bundle_path_check(path, &err);
  if (rc != 0) MU_FUZZ_CHECK(rc == MU_EINVAL && err.msg[0] != '\0');
  if (rc == 0) MU_FUZZ_CHECK(path[0] != '/' && strstr(path, "//") == NULL);
  rc = mu_bundle_link_check(path, target, &err);
  if (rc != 0) MU_FUZZ_CHECK(rc == MU_EINVAL && err.msg[0] != '\0');
  if (rc == 0 && mu_bundle_path_check(path, NULL) == 0) MU_FUZZ_CHECK(stays_inside(path, target));
}

static void key_text(const char *text, size_t len) {
  mu_err err = {0};
  mu_sig sig, sig2;
  if (mu_sig_parse(text, len, &sig, &err) == 0) {
    char *again = NULL;
    MU_FUZZ_CHECK(mu_sig_format(&sig, &again, &err) == 0);
    MU_FUZZ_CHECK(mu_sig_parse(again, strlen(again), &sig2, &err) == 0);
    MU_FUZZ_CHECK(strcmp(sig.key_id, sig2.key_id) == 0 && memcmp(sig.sig, sig2.sig, 64) == 0);
    free(again);
  } else {
    MU_FUZZ_CHECK(err.code == MU_EINVAL && err.msg[0] != '\0');
  }
  mu_pubkey pk, pk2;
  if (mu_pubkey_parse(text, len, &pk, &err) == 0) {
    char *again = NULL;
    MU_FUZZ_CHECK(mu_pubkey_format(&pk, &again, &err) == 0);
    MU_FUZZ_CHECK(mu_pubkey_parse(again, strlen(again), &pk2, &err) == 0);
    MU_FUZZ_CHECK(strcmp(pk.key_id, pk2.key_id) == 0 && memcmp(pk.pk, pk2.pk, 32) == 0);
    free(again);
  }
}

static int sign(int v) { return (v > 0) - (v < 0); }

static void versions(const char *a, const char *b) {
  mu_err err = {0};
  int va = mu_bundle_version_check(a, &err) == 0;
  int vb = mu_bundle_version_check(b, &err) == 0;
  int ab = sign(mu_bundle_version_cmp(a, b)), ba = sign(mu_bundle_version_cmp(b, a));
  MU_FUZZ_CHECK(ab == -ba);
  MU_FUZZ_CHECK(mu_bundle_version_cmp(a, a) == 0);
  if (va && !vb) MU_FUZZ_CHECK(ab > 0); /* an invalid version sorts below every valid one */
  int rc = mu_bundle_rollback_check("b", va ? a : NULL, b, &err);
  if (!vb) MU_FUZZ_CHECK(rc == MU_EINVAL);
  else if (va) MU_FUZZ_CHECK((rc == MU_EPERM) == (ab > 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int mode = data[0] % 4;
  data++;
  size--;
  if (mode == 0 || mode == 2) {
    char *text = mu_fuzz_cstr(data, size); /* the callers' buffers are NUL-terminated too */
    if (text == NULL) return 0;
    if (mode == 0) manifest(text, size);
    else key_text(text, size);
    free(text);
    return 0;
  }
  char *parts[2];
  if (mu_fuzz_split(data, size, "\n", parts, NULL, 2) != 0) return 0;
  if (mode == 1) link(parts[0], parts[1]);
  else versions(parts[0], parts[1]);
  mu_fuzz_split_free(parts, 2);
  return 0;
}
