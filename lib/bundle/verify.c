/* Bundle signatures: signing digest || manifest with an Ed25519 key and checking a bundle's
 * digest, manifest and signature against a trust set, all from bytes in memory. Unpacking
 * (unpack.c) calls mu_bundle_verify before it touches the disk. */
#define _GNU_SOURCE /* asprintf */
#include "lib/bundle/verify.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bundle/archive_util.h"

void mu_bundle_info_free(mu_bundle_info *info) {
  if (info == NULL) return;
  mu_manifest_free(info->manifest);
  free(info);
}

int mu_bundle_read_manifest(const uint8_t *data, size_t len, const mu_unpack_limits *limits, char **ret_json,
                            size_t *ret_len, mu_manifest **ret_manifest, mu_err *err) {
  limits = mu_unpack_limits_or_default(limits);
  char *json = NULL;
  mu_manifest *m = NULL;
  struct archive_entry *e = NULL;
  int rc;
  struct archive *a = NULL;
  rc = mu_archive_reader_open(data, len, &a, err);
  if (rc != 0) return rc;
  int r = archive_read_next_header(a, &e);
  if (r != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EINVAL, "archive is truncated or corrupt: %s",
                    r == ARCHIVE_EOF ? "no entries" : archive_error_string(a));
    goto fail;
  }
  const char *name = archive_entry_pathname(e);
  if (name == NULL || strcmp(name, MU_BUNDLE_MANIFEST_NAME) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "first entry must be %s, got '%s'", MU_BUNDLE_MANIFEST_NAME,
                    name != NULL ? name : "");
    goto fail;
  }
  if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
    rc = mu_err_set(err, MU_EINVAL, "%s must be a regular file", MU_BUNDLE_MANIFEST_NAME);
    goto fail;
  }
  uint64_t size = (uint64_t)archive_entry_size(e);
  if (size > limits->max_manifest_bytes) {
    rc = mu_err_set(err, MU_ENOSPC, "%s: %llu bytes, over the cap of %llu", MU_BUNDLE_MANIFEST_NAME,
                    (unsigned long long)size, (unsigned long long)limits->max_manifest_bytes);
    goto fail;
  }
  json = malloc(size + 1);
  if (json == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  size_t got = 0;
  while (got < size) {
    la_ssize_t n = archive_read_data(a, json + got, size - got);
    if (n <= 0) {
      rc = mu_err_set(err, MU_EINVAL, "archive is truncated or corrupt: %s: %s", MU_BUNDLE_MANIFEST_NAME,
                      n < 0 ? archive_error_string(a) : "short read");
      goto fail;
    }
    got += (size_t)n;
  }
  json[size] = '\0';
  rc = mu_manifest_parse(json, size, limits->max_entries, limits->max_total_bytes, &m, err);
  if (rc != 0) goto fail;
  archive_read_free(a);
  if (ret_manifest != NULL) {
    *ret_manifest = m;
  } else {
    mu_manifest_free(m);
  }
  if (ret_json != NULL) {
    *ret_json = json;
    *ret_len = size;
  } else {
    free(json);
  }
  return 0;
fail:
  archive_read_free(a);
  free(json);
  return rc;
}

/* Builds "sha256:<hex>" || manifest, the bytes a signature covers. Caller frees. */
static int signed_message(const char *digest, const char *json, size_t json_len, uint8_t **ret_msg, size_t *ret_len,
                          mu_err *err) {
  size_t dlen = strlen(digest);
  uint8_t *msg = malloc(dlen + json_len);
  if (msg == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  memcpy(msg, digest, dlen);
  memcpy(msg + dlen, json, json_len);
  *ret_msg = msg;
  *ret_len = dlen + json_len;
  return 0;
}

int mu_bundle_sign(const uint8_t *data, size_t len, const mu_seckey *sk, const mu_unpack_limits *limits,
                   char **ret_sig_text, mu_err *err) {
  char digest[MU_BUNDLE_DIGEST_SIZE];
  char *json = NULL;
  size_t json_len = 0;
  uint8_t *msg = NULL;
  size_t msg_len = 0;
  mu_sig sig;
  int rc = mu_bundle_read_manifest(data, len, limits, &json, &json_len, NULL, err);
  if (rc != 0) return rc;
  mu_bundle_digest(data, len, digest);
  rc = signed_message(digest, json, json_len, &msg, &msg_len, err);
  if (rc == 0) rc = mu_sign(sk, msg, msg_len, &sig, err);
  if (rc == 0) rc = mu_sig_format(&sig, ret_sig_text, err);
  free(msg);
  free(json);
  return rc;
}

int mu_bundle_sign_file(const char *path, const mu_seckey *sk, const mu_unpack_limits *limits, char **ret_sig_path,
                        mu_err *err) {
  limits = mu_unpack_limits_or_default(limits);
  uint8_t *data = NULL;
  size_t len = 0;
  char *text = NULL;
  char *sig_path = NULL;
  char *tmp_path = NULL;
  int fd = -1;
  int rc = mu_bundle_read_file(path, limits->max_archive_bytes, &data, &len, err);
  if (rc != 0) return rc;
  rc = mu_bundle_sign(data, len, sk, limits, &text, err);
  if (rc != 0) {
    mu_err_prefix(err, "'%s'", path);
    goto out;
  }
  if (asprintf(&sig_path, "%s.sig", path) < 0) sig_path = NULL;
  if (asprintf(&tmp_path, "%s.sig.tmp-XXXXXX", path) < 0) tmp_path = NULL;
  if (sig_path == NULL || tmp_path == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  fd = mkstemp(tmp_path);
  if (fd < 0) {
    rc = mu_err_set(err, MU_EIO, "'%s': %s", tmp_path, strerror(errno));
    goto out;
  }
  size_t tlen = strlen(text);
  if (fchmod(fd, 0644) != 0 || write(fd, text, tlen) != (ssize_t)tlen || fsync(fd) != 0 || close(fd) != 0 ||
      rename(tmp_path, sig_path) != 0) {
    rc = mu_err_set(err, MU_EIO, "'%s': %s", sig_path, strerror(errno));
    fd = -1;
    unlink(tmp_path);
    goto out;
  }
  fd = -1;
  if (ret_sig_path != NULL) {
    *ret_sig_path = sig_path;
    sig_path = NULL;
  }
out:
  if (fd >= 0) {
    close(fd);
    unlink(tmp_path);
  }
  free(tmp_path);
  free(sig_path);
  free(text);
  free(data);
  return rc;
}

int mu_bundle_verify(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                     mu_bundle_info **ret_info, mu_err *err) {
  static const mu_bundle_check strict = {0}; /* signed by a trusted key; none trusted */
  if (check == NULL) check = &strict;
  limits = mu_unpack_limits_or_default(limits);
  mu_bundle_info *info = calloc(1, sizeof *info);
  char *json = NULL;
  size_t json_len = 0;
  uint8_t *msg = NULL;
  size_t msg_len = 0;
  int rc;
  if (info == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (len > limits->max_archive_bytes) {
    rc = mu_err_set(err, MU_ENOSPC, "bundle is %zu bytes, over the cap of %llu", len,
                    (unsigned long long)limits->max_archive_bytes);
    goto fail;
  }
  info->archive_bytes = len;
  mu_bundle_digest(data, len, info->digest);
  if (check->expected_digest != NULL && strcmp(check->expected_digest, info->digest) != 0) {
    rc = mu_err_set(err, MU_EPERM, "digest mismatch: expected %s, got %s", check->expected_digest, info->digest);
    goto fail;
  }
  rc = mu_bundle_read_manifest(data, len, limits, &json, &json_len, &info->manifest, err);
  if (rc != 0) goto fail;
  if (check->sig == NULL || check->sig_len == 0) {
    if (!check->allow_unsigned) {
      rc = mu_err_set(err, MU_EPERM, "bundle is unsigned (unsigned bundles are not allowed)");
      goto fail;
    }
  } else {
    mu_sig sig;
    rc = mu_sig_parse((const char *)check->sig, check->sig_len, &sig, err);
    if (rc != 0) {
      goto fail;
    }
    const mu_pubkey *pk = mu_trust_set_find(check->trust, sig.key_id);
    if (pk == NULL) {
      rc = mu_err_set(err, MU_EPERM, "unknown key id %s: not in the trust set", sig.key_id);
      goto fail;
    }
    rc = signed_message(info->digest, json, json_len, &msg, &msg_len, err);
    if (rc != 0) goto fail;
    rc = mu_sig_verify(pk, &sig, msg, msg_len, err);
    if (rc != 0) goto fail;
    memcpy(info->key_id, sig.key_id, MU_KEY_ID_SIZE);
  }
  free(msg);
  free(json);
  if (ret_info != NULL) {
    *ret_info = info;
  } else {
    mu_bundle_info_free(info);
  }
  return 0;
fail:
  free(msg);
  free(json);
  mu_bundle_info_free(info);
  return rc;
}
