/* Helpers for the fuzz targets: copies of the input as strings, splitting an input into the
 * several texts a target needs, and in-memory files for path-only parsers. */
#define _GNU_SOURCE
#include "lib/fuzz/fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mu_fuzz_fail(const char *what, const char *file, int line) {
  fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
  abort();
}

char *mu_fuzz_cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL) return NULL;
  if (size > 0) memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

void mu_fuzz_split_free(char **parts, size_t max) {
  for (size_t i = 0; i < max; i++) {
    free(parts[i]);
    parts[i] = NULL;
  }
}

int mu_fuzz_split(const uint8_t *data, size_t size, const char *sep, char **ret_parts, size_t *ret_lens, size_t max) {
  size_t seplen = strlen(sep);
  const uint8_t *p = data, *end = data + size;
  for (size_t i = 0; i < max; i++) ret_parts[i] = NULL;
  for (size_t i = 0; i < max; i++) {
    const uint8_t *cut = end;
    if (i + 1 < max && seplen > 0 && (size_t)(end - p) >= seplen) {
      const uint8_t *hit = memmem(p, (size_t)(end - p), sep, seplen);
      if (hit != NULL) cut = hit;
    }
    ret_parts[i] = mu_fuzz_cstr(p, (size_t)(cut - p));
    if (ret_lens != NULL) ret_lens[i] = (size_t)(cut - p);
    if (ret_parts[i] == NULL) {
      mu_fuzz_split_free(ret_parts, max);
      return -1;
    }
    p = cut == end ? end : cut + seplen;
  }
  return 0;
}

int mu_fuzz_memfile(const uint8_t *data, size_t size, char *ret_path, size_t path_size) {
  int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < size) {
    ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)w;
  }
  snprintf(ret_path, path_size, "/proc/self/fd/%d", fd);
  return fd;
}
