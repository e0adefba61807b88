/* The reflection index, shared by index.c (builds it) and handle.c (answers from it). */
#ifndef MU_REFLECT_INTERNAL_H
#define MU_REFLECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "lib/reflect/reflect.h"

typedef enum mu_reflect_kind {
  MU_REFLECT_SYM_MESSAGE,
  MU_REFLECT_SYM_ENUM,
  MU_REFLECT_SYM_OTHER, /* service, method, field, oneof, enum value, extension */
} mu_reflect_kind;

typedef struct mu_reflect_sym {
  char *name;  /* fully qualified, no leading dot; owned */
  size_t file; /* index into files */
  mu_reflect_kind kind;
} mu_reflect_sym;

typedef struct mu_reflect_file {
  const char *name;   /* borrowed from fds */
  const uint8_t *raw; /* this FileDescriptorProto's bytes inside idx->set */
  size_t raw_len;
  size_t *deps; /* indices of direct dependencies found in the set; owned */
  size_t n_deps;
} mu_reflect_file;

typedef struct mu_reflect_ext {
  const char *extendee; /* fully qualified, no leading dot; borrowed from fds */
  int32_t number;
  size_t file;
} mu_reflect_ext;

struct mu_reflect_index {
  uint8_t *set; /* owned copy of the serialized set */
  size_t set_len;
  Google__Protobuf__FileDescriptorSet *fds; /* unpacked; owned */
  mu_reflect_file *files;
  size_t n_files;
  mu_reflect_sym *syms; /* sorted by name for bsearch */
  size_t n_syms;
  size_t cap_syms;
  mu_reflect_ext *exts;
  size_t n_exts;
  size_t cap_exts;
  char **services; /* what list_services answers; owned */
  size_t n_services;
};

/* Lookups for handle.c; NULL / -1 when absent. */
const mu_reflect_sym *mu_reflect_find_symbol(const mu_reflect_index *idx, const char *name);
long mu_reflect_find_file(const mu_reflect_index *idx, const char *name);

#endif
