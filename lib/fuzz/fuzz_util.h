/* Helpers the *_fuzz.c targets share: fuzz bytes as C strings, as split parts, and as a
 * readable file path for parsers that only take a path. */
#ifndef MU_FUZZ_UTIL_H
#define MU_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A property every input must keep; when it fails the target aborts (a finding), in every
 * build mode (unlike assert). */
#define MU_FUZZ_CHECK(cond) ((cond) ? (void)0 : mu_fuzz_fail(#cond, __FILE__, __LINE__))
void mu_fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

/* A NUL-terminated copy of data (embedded NULs stay, so C string parsers see a prefix).
 * Caller frees; NULL when out of memory. */
char *mu_fuzz_cstr(const uint8_t *data, size_t size);

/* Splits data on every occurrence of sep into at most max parts (the last part keeps any
 * further separators), each a NUL-terminated copy in ret_parts[i] (caller frees each with
 * free()) of ret_lens[i] bytes (ret_lens may be NULL; a part may hold NULs). Missing parts are
 * "" copies, so all max entries are set. Returns 0, or -1 when out of memory (then nothing is
 * left allocated). */
int mu_fuzz_split(const uint8_t *data, size_t size, const char *sep, char **ret_parts, size_t *ret_lens, size_t max);
void mu_fuzz_split_free(char **parts, size_t max);

/* Puts data in an anonymous in-memory file (memfd) and writes a path that opens it,
 * "/proc/self/fd/N", into ret_path (at least 32 bytes). Returns the fd, which the caller
 * closes, or -1. Nothing touches the disk. */
int mu_fuzz_memfile(const uint8_t *data, size_t size, char *ret_path, size_t path_size);

#endif
