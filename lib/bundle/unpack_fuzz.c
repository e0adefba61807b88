/* Fuzzes bundle archives as an agent receives them: verify (digest, MANIFEST.json read out of
 * the archive in memory) and extract with mu_bundle_unpack into a fresh directory under a
 * scratch dir this target makes and wipes after every input. Limits are small so a hostile
 * archive cannot fill the disk. Properties: after success the directory holds exactly the
 * manifest's entries with their types and sizes; after a refusal it is gone; either way
 * nothing is written beside it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bundle/unpack.h"
#include "lib/fuzz/fuzz_util.h"

static char g_scratch[512]; /* holds only "out" while an input runs */
static char g_dest[600];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag == FTW_D || flag == FTW_DP) chmod(path, (st->st_mode & 0777) | 0700);
  if (flag == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

static void wipe(const char *path) { nftw(path, rm_entry, 16, FTW_PHYS | FTW_DEPTH); }

static void cleanup(void) {
  if (g_scratch[0] != '\0') wipe(g_scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *base = getenv("TEST_TMPDIR");
  if (base == NULL) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(g_scratch, sizeof g_scratch, "%s/mu-unpack-fuzz-XXXXXX", base);
  MU_FUZZ_CHECK(mkdtemp(g_scratch) != NULL);
  snprintf(g_dest, sizeof g_dest, "%s/out", g_scratch);
  atexit(cleanup);
  return 0;
}

static size_t scratch_entries(void) {
  size_t n = 0;
  DIR *d = opendir(g_scratch);
  MU_FUZZ_CHECK(d != NULL);
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static const mu_manifest *g_manifest;
static size_t g_found;

static int check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)flag;
  if (ftw->level == 0) return 0;
  const char *rel = path + strlen(g_dest) + 1;
  long at = mu_manifest_find(g_manifest, rel);
  if (at < 0) fprintf(stderr, "unpacked '%s' is not in the manifest\n", rel);
  MU_FUZZ_CHECK(at >= 0);
  const mu_bundle_file *f = &g_manifest->files[at];
  if (f->type == MU_BUNDLE_FILE) MU_FUZZ_CHECK(S_ISREG(st->st_mode) && (uint64_t)st->st_size == f->size);
  if (f->type == MU_BUNDLE_DIR) MU_FUZZ_CHECK(S_ISDIR(st->st_mode));
  if (f->type == MU_BUNDLE_SYMLINK) MU_FUZZ_CHECK(S_ISLNK(st->st_mode));
  MU_FUZZ_CHECK((st->st_mode & 07000) == 0);
  g_found++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mu_unpack_limits limits = {.max_archive_bytes = 1u << 20,
                             .max_total_bytes = 1u << 20,
                             .max_file_bytes = 256u << 10,
                             .max_entries = 64,
                             .max_manifest_bytes = 64u << 10};
  mu_bundle_check check = {.allow_unsigned = true};
  mu_bundle_info *info = NULL;
  mu_err err = {0};
  int rc = mu_bundle_unpack(data, size, &check, &limits, g_dest, &info, &err);
  MU_FUZZ_CHECK(scratch_entries() == (rc == 0 ? 1u : 0u));
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == MU_EINVAL || rc == MU_ENOSPC || rc == MU_EIO || rc == MU_ENOMEM);
    MU_FUZZ_CHECK(err.msg[0] != '\0' && info == NULL);
    return 0;
  }
  g_manifest = info->manifest;
  g_found = 0;
  MU_FUZZ_CHECK(nftw(g_dest, check_entry, 16, FTW_PHYS) == 0);
  MU_FUZZ_CHECK(g_found == info->manifest->n_files);
  mu_bundle_info_free(info);
  wipe(g_dest);
  return 0;
}
