/* main() for the gcc builds of fuzz targets (mu_fuzz_target in fuzz.bzl): feeds every file
 * named on the command line, or found in a directory named there, to LLVMFuzzerTestOneInput
 * once, in order. A sanitizer report or a crash fails the run; so does an empty corpus, which
 * would otherwise pass while testing nothing. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf == NULL) {
    fprintf(stderr, "replay: out of memory reading %s\n", path);
    return -1;
  }
  /* An exact-size copy, so ASan sees a read past the input as the overflow it is. */
  uint8_t *exact = malloc(len ? len : 1);
  if (exact == NULL) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, len);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

/* Returns the number of inputs replayed, or -1. */
static int replay_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "replay: no such file or directory: %s\n", path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return replay_file(path) == 0 ? 1 : -1;
  struct dirent **names = NULL;
  int n = scandir(path, &names, NULL, alphasort);
  if (n < 0) {
    fprintf(stderr, "replay: cannot read directory %s\n", path);
    return -1;
  }
  int done = 0;
  for (int i = 0; i < n; i++) {
    char child[4096];
    if (names[i]->d_name[0] != '.' && done >= 0) {
      snprintf(child, sizeof child, "%s/%s", path, names[i]->d_name);
      int r = replay_path(child);
      done = r < 0 ? -1 : done + r;
    }
    free(names[i]);
  }
  free(names);
  return done;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize != NULL) LLVMFuzzerInitialize(&argc, &argv);
  int total = 0;
  for (int i = 1; i < argc; i++) {
    int r = replay_path(argv[i]);
    if (r < 0) return 1;
    total += r;
  }
  if (total == 0) {
    fprintf(stderr, "replay: no inputs (give corpus files or directories)\n");
    return 1;
  }
  printf("replay: %d inputs ran without a sanitizer report\n", total);
  return 0;
}
