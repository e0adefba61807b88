/* Builds the reflection index from a serialized FileDescriptorSet: the raw bytes of each file
 * (sliced out of the set, so answers carry exactly what protoc wrote), each file's direct
 * dependencies, a sorted table of every fully-qualified symbol, and the extensions by the type
 * they extend. Everything is computed once; answering requests only reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/reflect/internal.h"

#define MAX_NESTING 100

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= len) {
      return -1;
    }
    uint8_t b = p[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *ret = v;
      return 0;
    }
  }
  return -1;
}

/* Records where each `repeated FileDescriptorProto file = 1` element sits in the set. */
static int slice_files(mu_reflect_index *idx, mu_err *err) {
  size_t pos = 0;
  size_t n = 0;
  while (pos < idx->set_len) {
    uint64_t tag = 0;
    uint64_t flen = 0;
    if (read_varint(idx->set, idx->set_len, &pos, &tag) < 0) {
      goto bad;
    }
    switch (tag & 7) {
      case 0:
        if (read_varint(idx->set, idx->set_len, &pos, &flen) < 0) {
          goto bad;
        }
        continue;
      case 1: flen = 8; break;
      case 5: flen = 4; break;
      case 2:
        if (read_varint(idx->set, idx->set_len, &pos, &flen) < 0) {
          goto bad;
        }
        break;
      default: goto bad;
    }
    if (flen > idx->set_len - pos) {
      goto bad;
    }
    if ((tag >> 3) == 1 && (tag & 7) == 2) {
      if (n >= idx->n_files) {
        goto bad;
      }
      idx->files[n].raw = idx->set + pos;
      idx->files[n].raw_len = flen;
      n++;
    }
    pos += flen;
  }
  if (n == idx->n_files) {
    return 0;
  }
bad:
  return mu_err_set(err, MU_EINVAL, "descriptor set: malformed wire data at byte %zu", pos);
}

static int add_sym(mu_reflect_index *idx, const char *prefix, const char *name, size_t file, mu_reflect_kind kind,
                   const char **ret_name, mu_err *err) {
  if (name == NULL || name[0] == '\0') {
    return mu_err_set(err, MU_EINVAL, "descriptor set: file %s: a definition has no name", idx->files[file].name);
  }
  if (idx->n_syms == idx->cap_syms) {
    size_t cap = idx->cap_syms ? idx->cap_syms * 2 : 256;
    mu_reflect_sym *s = realloc(idx->syms, cap * sizeof(*s));
    if (s == NULL) {
      return mu_err_set(err, MU_ENOMEM, "out of memory indexing descriptors");
    }
    idx->syms = s;
    idx->cap_syms = cap;
  }
  size_t plen = prefix != NULL ? strlen(prefix) : 0;
  char *full = malloc(plen + 1 + strlen(name) + 1);
  if (full == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory indexing descriptors");
  }
  if (plen > 0) {
    sprintf(full, "%s.%s", prefix, name);
  } else {
    strcpy(full, name);
  }
  idx->syms[idx->n_syms++] = (mu_reflect_sym){.name = full, .file = file, .kind = kind};
  if (ret_name != NULL) {
    *ret_name = full;
  }
  return 0;
}

static int add_ext(mu_reflect_index *idx, const Google__Protobuf__FieldDescriptorProto *f, size_t file, mu_err *err) {
  if (f->extendee == NULL) {
    return 0;
  }
  if (idx->n_exts == idx->cap_exts) {
    size_t cap = idx->cap_exts ? idx->cap_exts * 2 : 16;
    mu_reflect_ext *e = realloc(idx->exts, cap * sizeof(*e));
    if (e == NULL) {
      return mu_err_set(err, MU_ENOMEM, "out of memory indexing descriptors");
    }
    idx->exts = e;
    idx->cap_exts = cap;
  }
  const char *extendee = f->extendee[0] == '.' ? f->extendee + 1 : f->extendee;
  idx->exts[idx->n_exts++] = (mu_reflect_ext){.extendee = extendee, .number = f->number, .file = file};
  return 0;
}

/* An enum's values live in the enum's enclosing scope (protobuf's C++ scoping), so both
 * "pkg.PENDING" and "pkg.TaskState.PENDING" are answered. */
static int add_enum(mu_reflect_index *idx, const char *scope, const Google__Protobuf__EnumDescriptorProto *e,
                    size_t file, mu_err *err) {
  const char *full = NULL;
  int rc = add_sym(idx, scope, e->name, file, MU_REFLECT_SYM_ENUM, &full, err);
  for (size_t i = 0; rc == 0 && i < e->n_value; i++) {
    rc = add_sym(idx, scope, e->value[i]->name, file, MU_REFLECT_SYM_OTHER, NULL, err);
    if (rc == 0) {
      rc = add_sym(idx, full, e->value[i]->name, file, MU_REFLECT_SYM_OTHER, NULL, err);
    }
  }
  return rc;
}

static int add_message(mu_reflect_index *idx, const char *scope, const Google__Protobuf__DescriptorProto *m,
                       size_t file, int depth, mu_err *err) {
  const char *full = NULL;
  if (depth > MAX_NESTING) {
    return mu_err_set(err, MU_EINVAL, "descriptor set: messages nested too deep in %s", idx->files[file].name);
  }
  int rc = add_sym(idx, scope, m->name, file, MU_REFLECT_SYM_MESSAGE, &full, err);
  for (size_t i = 0; rc == 0 && i < m->n_field; i++) {
    rc = add_sym(idx, full, m->field[i]->name, file, MU_REFLECT_SYM_OTHER, NULL, err);
  }
  for (size_t i = 0; rc == 0 && i < m->n_oneof_decl; i++) {
    rc = add_sym(idx, full, m->oneof_decl[i]->name, file, MU_REFLECT_SYM_OTHER, NULL, err);
  }
  for (size_t i = 0; rc == 0 && i < m->n_extension; i++) {
    rc = add_sym(idx, full, m->extension[i]->name, file, MU_REFLECT_SYM_OTHER, NULL, err);
    if (rc == 0) {
      rc = add_ext(idx, m->extension[i], file, err);
    }
  }
  for (size_t i = 0; rc == 0 && i < m->n_enum_type; i++) {
    rc = add_enum(idx, full, m->enum_type[i], file, err);
  }
  for (size_t i = 0; rc == 0 && i < m->n_nested_type; i++) {
    rc = add_message(idx, full, m->nested_type[i], file, depth + 1, err);
  }
  return rc;
}

static int add_file(mu_reflect_index *idx, size_t fi, mu_err *err) {
  const Google__Protobuf__FileDescriptorProto *f = idx->fds->file[fi];
  const char *pkg = f->package;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < f->n_message_type; i++) {
    rc = add_message(idx, pkg, f->message_type[i], fi, 0, err);
  }
  for (size_t i = 0; rc == 0 && i < f->n_enum_type; i++) {
    rc = add_enum(idx, pkg, f->enum_type[i], fi, err);
  }
  for (size_t i = 0; rc == 0 && i < f->n_extension; i++) {
    rc = add_sym(idx, pkg, f->extension[i]->name, fi, MU_REFLECT_SYM_OTHER, NULL, err);
    if (rc == 0) {
      rc = add_ext(idx, f->extension[i], fi, err);
    }
  }
  for (size_t i = 0; rc == 0 && i < f->n_service; i++) {
    const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
    const char *full = NULL;
    rc = add_sym(idx, pkg, s->name, fi, MU_REFLECT_SYM_OTHER, &full, err);
    for (size_t j = 0; rc == 0 && j < s->n_method; j++) {
      rc = add_sym(idx, full, s->method[j]->name, fi, MU_REFLECT_SYM_OTHER, NULL, err);
    }
  }
  return rc;
}

static int sym_cmp(const void *a, const void *b) {
  const mu_reflect_sym *x = a;
  const mu_reflect_sym *y = b;
  int c = strcmp(x->name, y->name);
  if (c != 0) {
    return c;
  }
  /* Same name twice (a broken set): the earlier file wins, deterministically. */
  return x->file < y->file ? -1 : x->file > y->file;
}

long mu_reflect_find_file(const mu_reflect_index *idx, const char *name) {
  for (size_t i = 0; i < idx->n_files; i++) {
    if (strcmp(idx->files[i].name, name) == 0) {
      return (long)i;
    }
  }
  return -1;
}

const mu_reflect_sym *mu_reflect_find_symbol(const mu_reflect_index *idx, const char *name) {
  size_t lo = 0;
  size_t hi = idx->n_syms;
  while (lo < hi) { /* lower bound, so duplicates resolve to the first */
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(idx->syms[mid].name, name) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < idx->n_syms && strcmp(idx->syms[lo].name, name) == 0) {
    return &idx->syms[lo];
  }
  return NULL;
}

static int resolve_deps(mu_reflect_index *idx, mu_err *err) {
  for (size_t i = 0; i < idx->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *f = idx->fds->file[i];
    mu_reflect_file *rf = &idx->files[i];
    if (f->n_dependency == 0) {
      continue;
    }
    rf->deps = calloc(f->n_dependency, sizeof(*rf->deps));
    if (rf->deps == NULL) {
      return mu_err_set(err, MU_ENOMEM, "out of memory indexing descriptors");
    }
    for (size_t j = 0; j < f->n_dependency; j++) {
      long d = mu_reflect_find_file(idx, f->dependency[j]);
      /* A dependency missing from the set (built without --include_imports) is left out;
       * clients then report it themselves, naming the file. */
      if (d >= 0) {
        rf->deps[rf->n_deps++] = (size_t)d;
      }
    }
  }
  return 0;
}

int mu_reflect_index_new(const uint8_t *set, size_t len, mu_reflect_index **ret, mu_err *err) {
  int rc = 0;
  mu_reflect_index *idx = calloc(1, sizeof(*idx));
  if (idx == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory for the reflection index");
  }
  idx->set = malloc(len > 0 ? len : 1);
  if (idx->set == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory for the reflection index");
    goto fail;
  }
  memcpy(idx->set, set, len);
  idx->set_len = len;
  idx->fds = google__protobuf__file_descriptor_set__unpack(NULL, len, idx->set);
  if (idx->fds == NULL) {
    rc = mu_err_set(err, MU_EINVAL, "descriptor set: not a valid FileDescriptorSet (%zu bytes)", len);
    goto fail;
  }
  idx->n_files = idx->fds->n_file;
  idx->files = calloc(idx->n_files + 1, sizeof(*idx->files));
  if (idx->files == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory for the reflection index");
    goto fail;
  }
  for (size_t i = 0; i < idx->n_files; i++) {
    idx->files[i].name = idx->fds->file[i]->name;
    if (idx->files[i].name == NULL) {
      rc = mu_err_set(err, MU_EINVAL, "descriptor set: file #%zu has no name", i);
      goto fail;
    }
  }
  rc = slice_files(idx, err);
  if (rc < 0) {
    goto fail;
  }
  rc = resolve_deps(idx, err);
  for (size_t i = 0; rc == 0 && i < idx->n_files; i++) {
    rc = add_file(idx, i, err);
  }
  if (rc < 0) {
    goto fail;
  }
  qsort(idx->syms, idx->n_syms, sizeof(*idx->syms), sym_cmp);

  /* Default list_services answer: every service, in file order. */
  size_t n_svc = 0;
  for (size_t i = 0; i < idx->n_files; i++) {
    n_svc += idx->fds->file[i]->n_service;
  }
  const char **names = calloc(n_svc + 1, sizeof(*names));
  if (names == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory for the reflection index");
    goto fail;
  }
  size_t k = 0;
  for (size_t i = 0; i < idx->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *f = idx->fds->file[i];
    for (size_t j = 0; j < f->n_service; j++) {
      char buf[512];
      snprintf(buf, sizeof(buf), "%s%s%s", f->package ? f->package : "", f->package && f->package[0] ? "." : "",
               f->service[j]->name);
      const mu_reflect_sym *s = mu_reflect_find_symbol(idx, buf);
      if (s != NULL) {
        names[k++] = s->name;
      }
    }
  }
  rc = mu_reflect_set_services(idx, names, k);
  free(names);
  if (rc < 0) {
    mu_err_set(err, rc, "out of memory for the reflection index");
    goto fail;
  }
  *ret = idx;
  return 0;
fail:
  mu_reflect_index_free(idx);
  return rc;
}

int mu_reflect_set_services(mu_reflect_index *idx, const char *const *names, size_t n) {
  char **copy = calloc(n + 1, sizeof(*copy));
  if (copy == NULL) {
    return MU_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    copy[i] = strdup(names[i]);
    if (copy[i] == NULL) {
      for (size_t j = 0; j < i; j++) {
        free(copy[j]);
      }
      free(copy);
      return MU_ENOMEM;
    }
  }
  for (size_t i = 0; i < idx->n_services; i++) {
    free(idx->services[i]);
  }
  free(idx->services);
  idx->services = copy;
  idx->n_services = n;
  return 0;
}

void mu_reflect_index_free(mu_reflect_index *idx) {
  if (idx == NULL) {
    return;
  }
  for (size_t i = 0; i < idx->n_services; i++) {
    free(idx->services[i]);
  }
  free(idx->services);
  for (size_t i = 0; i < idx->n_syms; i++) {
    free(idx->syms[i].name);
  }
  free(idx->syms);
  free(idx->exts);
  if (idx->files != NULL) {
    for (size_t i = 0; i < idx->n_files; i++) {
      free(idx->files[i].deps);
    }
    free(idx->files);
  }
  if (idx->fds != NULL) {
    google__protobuf__file_descriptor_set__free_unpacked(idx->fds, NULL);
  }
  free(idx->set);
  free(idx);
}
