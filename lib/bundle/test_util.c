/* Helpers for the bundle tests (see test_util.h): scratch dirs and a libarchive-based crafter
 * for hostile bundles that the real packer would never write. */
#define _GNU_SOURCE
#include "lib/bundle/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/bundle/bundle.h"
#include "lib/bundle/manifest.h"

char *tu_mkdtemp(void) {
  const char *base = getenv("TEST_TMPDIR");
  char *tmpl = NULL;
  assert_true(asprintf(&tmpl, "%s/bt-XXXXXX", base != NULL ? base : "/tmp") > 0);
  assert_non_null(mkdtemp(tmpl));
  /* Resolve symlinks in the scratch path so absolute-path tests compare like with like. */
  char *real = realpath(tmpl, NULL);
  assert_non_null(real);
  free(tmpl);
  return real;
}

char *tu_path(const char *dir, const char *rel) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
  return p;
}

void tu_write(const char *dir, const char *rel, const char *content, mode_t mode) {
  char *p = tu_path(dir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(fd >= 0);
  size_t n = strlen(content);
  assert_int_equal(write(fd, content, n), (ssize_t)n);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  free(p);
}

void tu_mkdir(const char *dir, const char *rel, mode_t mode) {
  char *p = tu_path(dir, rel);
  assert_int_equal(mkdir(p, mode), 0);
  assert_int_equal(chmod(p, mode), 0);
  free(p);
}

uint8_t *tu_read(const char *path, size_t *ret_len) {
  uint8_t *data = NULL;
  mu_err err = {0};
  int rc = mu_bundle_read_file(path, 1ull << 31, &data, ret_len, &err);
  if (rc != 0) fprintf(stderr, "tu_read: %s\n", err.msg);
  assert_int_equal(rc, 0);
  return data;
}

int tu_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
  }
  closedir(d);
  return n;
}

bool tu_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

void tu_rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_PHYS | FTW_DEPTH); }

mu_trust_set *tu_trust(const mu_pubkey *pk) {
  mu_trust_set *set = NULL;
  mu_err err = {0};
  assert_int_equal(mu_trust_set_new(8, &set, &err), 0);
  assert_int_equal(mu_trust_set_add(set, pk, &err), 0);
  return set;
}

typedef struct tu_entry {
  char *path;
  tu_kind kind;
  mode_t mode;
  char *data;        /* file content */
  char *listed_data; /* what the manifest describes, when it differs */
  char *target;
  uint64_t zeros;
  bool listed;
  bool in_archive;
} tu_entry;

struct tu_craft {
  tu_entry *e;
  size_t n;
  size_t cap;
  bool no_manifest;
};

tu_craft *tu_craft_new(void) {
  tu_craft *c = calloc(1, sizeof *c);
  assert_non_null(c);
  return c;
}

static tu_entry *push(tu_craft *c, const char *path, tu_kind kind, mode_t mode, bool listed) {
  if (c->n == c->cap) {
    c->cap = c->cap != 0 ? c->cap * 2 : 16;
    c->e = realloc(c->e, c->cap * sizeof *c->e);
    assert_non_null(c->e);
  }
  tu_entry *e = &c->e[c->n++];
  memset(e, 0, sizeof *e);
  e->path = strdup(path);
  e->kind = kind;
  e->mode = mode;
  e->listed = listed;
  e->in_archive = true;
  return e;
}

void tu_craft_file(tu_craft *c, const char *path, const char *data, mode_t mode, bool listed, const char *listed_data) {
  tu_entry *e = push(c, path, TU_FILE, mode, listed);
  e->data = strdup(data);
  e->listed_data = listed_data != NULL ? strdup(listed_data) : NULL;
}

void tu_craft_dir(tu_craft *c, const char *path, mode_t mode, bool listed) { push(c, path, TU_DIR, mode, listed); }

void tu_craft_symlink(tu_craft *c, const char *path, const char *target, bool listed) {
  push(c, path, TU_SYMLINK, 0777, listed)->target = strdup(target);
}

void tu_craft_hardlink(tu_craft *c, const char *path, const char *target) {
  push(c, path, TU_HARDLINK, 0644, false)->target = strdup(target);
}

void tu_craft_node(tu_craft *c, const char *path, tu_kind kind, mode_t mode) { push(c, path, kind, mode, false); }

void tu_craft_zeros(tu_craft *c, const char *path, uint64_t size, bool listed) {
  push(c, path, TU_ZEROS, 0644, listed)->zeros = size;
}

void tu_craft_list_only(tu_craft *c, const char *path, const char *data) {
  tu_entry *e = push(c, path, TU_FILE, 0644, true);
  e->data = strdup(data);
  e->in_archive = false;
}

void tu_craft_no_manifest(tu_craft *c) { c->no_manifest = true; }

typedef struct membuf {
  uint8_t *p;
  size_t len;
  size_t cap;
} membuf;

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *buf, size_t len) {
  (void)a;
  membuf *m = ctx;
  if (m->len + len > m->cap) {
    m->cap = (m->len + len) * 2;
    m->p = realloc(m->p, m->cap);
    assert_non_null(m->p);
  }
  memcpy(m->p + m->len, buf, len);
  m->len += len;
  return (la_ssize_t)len;
}

static int cmp_mf(const void *a, const void *b) {
  return strcmp(((const mu_bundle_file *)a)->path, ((const mu_bundle_file *)b)->path);
}

static char *manifest_json(const tu_craft *c, size_t *ret_len) {
  mu_manifest m = {.format = MU_MANIFEST_FORMAT, .name = "crafted", .version = "1.0.0"};
  m.files = calloc(c->n + 1, sizeof *m.files);
  assert_non_null(m.files);
  for (size_t i = 0; i < c->n; i++) {
    const tu_entry *e = &c->e[i];
    if (!e->listed) continue;
    mu_bundle_file *f = &m.files[m.n_files++];
    f->path = e->path;
    f->mode = e->mode & 0777;
    if (e->kind == TU_DIR) {
      f->type = MU_BUNDLE_DIR;
    } else if (e->kind == TU_SYMLINK) {
      f->type = MU_BUNDLE_SYMLINK;
      f->target = e->target;
    } else if (e->kind == TU_ZEROS) {
      f->type = MU_BUNDLE_FILE;
      f->size = e->zeros;
    } else {
      f->type = MU_BUNDLE_FILE;
      const char *d = e->listed_data != NULL ? e->listed_data : e->data;
      f->size = strlen(d);
      crypto_hash_sha256(f->sha256, (const uint8_t *)d, f->size);
    }
  }
  qsort(m.files, m.n_files, sizeof *m.files, cmp_mf);
  char *json = NULL;
  mu_err err = {0};
  assert_int_equal(mu_manifest_to_json(&m, &json, ret_len, &err), 0);
  free(m.files);
  return json;
}

void tu_craft_build(tu_craft *c, uint8_t **ret, size_t *ret_len) {
  membuf out = {0};
  struct archive *a = archive_write_new();
  struct archive_entry *ae = archive_entry_new();
  archive_write_set_bytes_in_last_block(a, 1);
  assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open(a, &out, NULL, mem_write, NULL), ARCHIVE_OK);
  if (!c->no_manifest) {
    size_t len = 0;
    char *json = manifest_json(c, &len);
    archive_entry_set_pathname(ae, MU_BUNDLE_MANIFEST_NAME);
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, (la_int64_t)len);
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, json, len), (la_ssize_t)len);
    free(json);
  }
  static uint8_t zeros[1 << 20];
  for (size_t i = 0; i < c->n; i++) {
    tu_entry *e = &c->e[i];
    if (e->in_archive) {
      archive_entry_clear(ae);
      archive_entry_set_pathname(ae, e->path);
      archive_entry_set_mode(ae, e->mode);
      switch (e->kind) {
        case TU_FILE:
          archive_entry_set_filetype(ae, AE_IFREG);
          archive_entry_set_size(ae, (la_int64_t)strlen(e->data));
          break;
        case TU_ZEROS:
          archive_entry_set_filetype(ae, AE_IFREG);
          archive_entry_set_size(ae, (la_int64_t)e->zeros);
          break;
        case TU_DIR: archive_entry_set_filetype(ae, AE_IFDIR); break;
        case TU_SYMLINK:
          archive_entry_set_filetype(ae, AE_IFLNK);
          archive_entry_set_symlink(ae, e->target);
          break;
        case TU_HARDLINK:
          archive_entry_set_filetype(ae, AE_IFREG);
          archive_entry_set_hardlink(ae, e->target);
          archive_entry_set_size(ae, 0);
          break;
        case TU_CHR:
          archive_entry_set_filetype(ae, AE_IFCHR);
          archive_entry_set_rdev(ae, makedev(1, 3));
          break;
        case TU_FIFO: archive_entry_set_filetype(ae, AE_IFIFO); break;
      }
      archive_entry_set_perm(ae, e->mode);
      assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
      if (e->kind == TU_FILE) {
        size_t n = strlen(e->data);
        assert_int_equal(archive_write_data(a, e->data, n), (la_ssize_t)n);
      } else if (e->kind == TU_ZEROS) {
        for (uint64_t left = e->zeros; left > 0;) {
          size_t n = left < sizeof zeros ? (size_t)left : sizeof zeros;
          assert_int_equal(archive_write_data(a, zeros, n), (la_ssize_t)n);
          left -= n;
        }
      }
    }
    free(e->path);
    free(e->data);
    free(e->listed_data);
    free(e->target);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  archive_entry_free(ae);
  free(c->e);
  free(c);
  *ret = out.p;
  *ret_len = out.len;
}
