/* cp_extract: a host's tar lands under the destination with its files, directories and
 * symlinks; hostile entries (.., absolute, through a symlink, devices, hardlinks), truncated
 * archives and archives over the limits are refused, and nothing is written outside. */
#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cp_extract.h"

typedef struct tar {
  struct archive *a;
  char buf[1 << 16];
  size_t used;
} tar;

static void tar_open(tar *t) {
  t->a = archive_write_new();
  archive_write_set_format_pax_restricted(t->a);
  archive_write_set_bytes_in_last_block(t->a, 1);
  assert_int_equal(archive_write_open_memory(t->a, t->buf, sizeof t->buf, &t->used), ARCHIVE_OK);
}

static void tar_add(tar *t, const char *path, mode_t type, mode_t perm, const char *data, const char *link) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, perm);
  if (type == AE_IFLNK) archive_entry_set_symlink(e, link);
  if (type != AE_IFLNK && link != NULL) archive_entry_set_hardlink(e, link);
  archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
  assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
  if (data != NULL) archive_write_data(t->a, data, strlen(data));
  archive_entry_free(e);
}

static void tar_close(tar *t) {
  archive_write_close(t->a);
  archive_write_free(t->a);
}

static char root[64];

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof root, "/tmp/cp-extract-XXXXXX");
  return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  return system(cmd);
}

static int extract(tar *t, const char *sub, const mu_cp_limits *limits, mu_err *err) {
  char dest[128];
  snprintf(dest, sizeof dest, "%s/%s", root, sub);
  return mu_cp_extract_mem((const uint8_t *)t->buf, t->used, dest, limits, NULL, err);
}

static char *read_text(const char *sub) {
  static char text[256];
  char path[160];
  snprintf(path, sizeof path, "%s/%s", root, sub);
  FILE *f = fopen(path, "r");
  if (f == NULL) return NULL;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  return text;
}

static void files_dirs_and_symlinks(void **state) {
  (void)state;
  tar t;
  tar_open(&t);
  tar_add(&t, "etc", AE_IFDIR, 0755, NULL, NULL);
  tar_add(&t, "etc/hosts", AE_IFREG, 0644, "127.0.0.1 localhost\n", NULL);
  tar_add(&t, "etc/run.sh", AE_IFREG, 04755, "#!/bin/sh\n", NULL);
  tar_add(&t, "etc/alias", AE_IFLNK, 0777, NULL, "hosts");
  tar_close(&t);
  mu_err err = {0};
  size_t entries = 0;
  char dest[128];
  snprintf(dest, sizeof dest, "%s/web-1", root);
  assert_int_equal(mu_cp_extract_mem((const uint8_t *)t.buf, t.used, dest, NULL, &entries, &err), 0);
  assert_int_equal(entries, 4);
  assert_string_equal(read_text("web-1/etc/hosts"), "127.0.0.1 localhost\n");
  assert_string_equal(read_text("web-1/etc/alias"), "127.0.0.1 localhost\n");
  struct stat st;
  char path[160];
  snprintf(path, sizeof path, "%s/web-1/etc/run.sh", root);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755); /* setuid dropped */
}

static void hostile_entries_refused(void **state) {
  (void)state;
  static const struct {
    const char *path;
    mode_t type;
    const char *link;
    const char *want;
  } cases[] = {
      {"../escaped", AE_IFREG, NULL, "'..' component"},
      {"a/../../escaped", AE_IFREG, NULL, "'..' component"},
      {"/tmp/escaped-abs", AE_IFREG, NULL, "absolute path"},
      {"dev", AE_IFCHR, NULL, "only files, directories and symlinks"},
      {"fifo", AE_IFIFO, NULL, "only files, directories and symlinks"},
      {"hard", AE_IFREG, "etc/passwd", "hardlinks are not extracted"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tar t;
    tar_open(&t);
    tar_add(&t, cases[i].path, cases[i].type, 0644, "x", cases[i].link);
    tar_close(&t);
    mu_err err = {0};
    char sub[32];
    snprintf(sub, sizeof sub, "h%zu", i);
    assert_int_equal(extract(&t, sub, NULL, &err), MU_EINVAL);
    if (strstr(err.msg, cases[i].want) == NULL) fail_msg("%s: got '%s'", cases[i].path, err.msg);
  }
  /* a symlink to outside, then a file through it */
  tar t;
  tar_open(&t);
  tar_add(&t, "out", AE_IFLNK, 0777, NULL, root);
  tar_add(&t, "out/through-link", AE_IFREG, 0644, "x", NULL);
  tar_close(&t);
  mu_err err = {0};
  assert_int_not_equal(extract(&t, "sym", NULL, &err), 0);
  assert_null(read_text("through-link"));
  assert_null(read_text("escaped"));
  assert_int_equal(access("/tmp/escaped-abs", F_OK), -1);
}

static void truncated_and_limits(void **state) {
  (void)state;
  tar t;
  tar_open(&t);
  tar_add(&t, "a", AE_IFREG, 0644, "0123456789", NULL);
  tar_add(&t, "b", AE_IFREG, 0644, "0123456789", NULL);
  tar_close(&t);
  mu_err err = {0};
  mu_cp_limits one = {.max_entries = 1};
  assert_int_equal(extract(&t, "l1", &one, &err), MU_ENOSPC);
  mu_cp_limits bytes = {.max_bytes = 15};
  assert_int_equal(extract(&t, "l2", &bytes, &err), MU_ENOSPC);
  t.used = 600; /* the first header and part of its data */
  assert_int_equal(extract(&t, "l3", NULL, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(files_dirs_and_symlinks),
      cmocka_unit_test(hostile_entries_refused),
      cmocka_unit_test(truncated_and_limits),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
