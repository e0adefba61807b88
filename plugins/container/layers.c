/* Per-layer unpacked directories (layers.h): unpack once per layer, the image's layer list,
 * and the checks that send an image to the merged copy instead. */
#define _GNU_SOURCE
#include "plugins/container/layers.h"

#include "lib/base/atomic_file.h"
#include "plugins/container/imageref.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* overlay's mount options must fit a page, with upperdir and workdir */
#define LOWERDIR_MAX 3000

/* Whether the store's filesystem holds overlay whiteouts and opaque xattrs. */
static bool fs_supports_overlay_layers(const char *root) {
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/tmp/probe.XXXXXX", root);
  if (mkdtemp(probe) == NULL) return false;
  char node[PATH_MAX + 8];
  snprintf(node, sizeof node, "%s/wh", probe);
  bool ok =
      mknod(node, S_IFCHR | 0000, makedev(0, 0)) == 0 && setxattr(probe, "trusted.overlay.opaque", "y", 1, 0) == 0;
  mu_rm_rf(probe);
  return ok;
}

static uint64_t read_bytes_file(const char *path) {
  char buf[32] = "";
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? strtoull(buf, NULL, 10) : 0;
}

/* layers/<hex>/ unpacked from blob unless it is there; its bytes into *ret_bytes. */
static int ensure_layer(const char *root, const char *hex, const char *blob, const mu_unpack_limits *limits,
                        uint64_t *ret_bytes, int *unpacked, mu_err *err) {
  char dir[PATH_MAX], bytes_name[100], bytes_path[PATH_MAX + 100];
  snprintf(dir, sizeof dir, "%s/layers/%s", root, hex);
  snprintf(bytes_name, sizeof bytes_name, "%s.bytes", hex);
  snprintf(bytes_path, sizeof bytes_path, "%s/layers/%s", root, bytes_name);
  struct stat st;
  if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    *ret_bytes = read_bytes_file(bytes_path);
    return 0;
  }
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/tmp/layer.XXXXXX", root);
  if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) != 0)
    return mu_err_set(err, MU_EIO, "cannot create %s: %s", tmp, strerror(errno));
  uint64_t bytes = 0;
  int rc = mu_unpack_layer_dir(tmp, blob, limits, &bytes, err);
  if (rc != 0) {
    mu_rm_rf(tmp);
    return rc;
  }
  char layers[PATH_MAX], text[32];
  snprintf(layers, sizeof layers, "%s/layers", root);
  snprintf(text, sizeof text, "%llu\n", (unsigned long long)bytes);
  if (mu_atomic_file_write(layers, bytes_name, text) != 0) {
    mu_rm_rf(tmp);
    return mu_err_set(err, MU_EIO, "cannot write %s: %s", bytes_path, strerror(errno));
  }
  if (rename(tmp, dir) != 0) {
    int e = errno;
    mu_rm_rf(tmp);
    if (e != EEXIST && e != ENOTEMPTY) return mu_err_set(err, MU_EIO, "cannot rename into %s: %s", dir, strerror(e));
  } else {
    (*unpacked)++;
  }
  *ret_bytes = bytes;
  return 0;
}

int mu_layers_unpack(const char *root, const mu_manifest *m, const char *const *blobs, const mu_unpack_limits *limits,
                     const char *rootfs_tmp, int *ret_unpacked, mu_err *err) {
  *ret_unpacked = 0;
  size_t opt_len = 0;
  for (size_t i = 0; i < m->n_layers; i++) opt_len += strlen(root) + sizeof "/layers/" + MU_DIGEST_HEX + 1;
  if (m->n_layers == 0 || opt_len > LOWERDIR_MAX) return MU_ENOTSUP; /* one overlay mount's options */
  char layers[PATH_MAX];
  snprintf(layers, sizeof layers, "%s/layers", root);
  if (mkdir(layers, 0700) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "cannot create %s: %s", layers, strerror(errno));
  if (!fs_supports_overlay_layers(root)) return MU_ENOTSUP;
  uint64_t max = limits && limits->max_bytes ? limits->max_bytes : (8ull << 30), total = 0;
  size_t cap = m->n_layers * (MU_DIGEST_HEX + 10) + 1;
  char *list = calloc(1, cap);
  if (list == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  size_t n = 0;
  int rc = 0;
  for (size_t i = 0; i < m->n_layers && rc == 0; i++) {
    const char *hex = m->layers[i].digest + 7;
    uint64_t bytes = 0;
    rc = ensure_layer(root, hex, blobs[i], limits, &bytes, ret_unpacked, err);
    if (rc != 0) {
      mu_err_prefix(err, "layer %zu (%s)", i + 1, m->layers[i].digest);
      break;
    }
    total += bytes;
    if (total > max)
      rc = mu_err_set(err, MU_EINVAL, "unpack: the image is over the %llu-byte cap", (unsigned long long)max);
    n += (size_t)snprintf(list + n, cap - n, "layers/%s\n", hex);
  }
  if (rc == 0 && mu_atomic_file_write(rootfs_tmp, MU_LAYERS_FILE, list) != 0)
    rc = mu_err_set(err, MU_EIO, "cannot write %s/%s: %s", rootfs_tmp, MU_LAYERS_FILE, strerror(errno));
  free(list);
  return rc;
}
