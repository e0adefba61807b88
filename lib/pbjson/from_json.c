/* JSON -> protobuf-c message, the parsing half of the proto3 JSON mapping. The result is built
 * exactly as protobuf_c_message_unpack() would build it with the default allocator (each
 * string, array and submessage its own malloc), so protobuf_c_message_free_unpacked() frees it,
 * including a half-built message when a later field fails. Every error names the field's path
 * as written in the input: `tasks[1].http.method: expected a string, got an array`. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pbjson/internal.h"
#include "lib/pbjson/pbjson.h"

#define MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))
#define PATH_MAX_LEN 320

typedef struct dec {
  const char *root;        /* full name of the top message, for errors at the top */
  char path[PATH_MAX_LEN]; /* "tasks[1].http.method" */
  size_t len;
  mu_err *err;
} dec;

static int parse_message(dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j, int depth,
                         ProtobufCMessage **ret);

static size_t path_push(dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path; returns the old length for path_pop. A path too long is cut short. */
static size_t path_push(dec *d, const char *fmt, ...) {
  size_t old = d->len;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(d->path + d->len, sizeof(d->path) - d->len, fmt, ap);
  va_end(ap);
  if (n > 0) {
    d->len += (size_t)n;
    if (d->len >= sizeof(d->path)) {
      d->len = sizeof(d->path) - 1;
    }
  }
  return old;
}

static void path_pop(dec *d, size_t old) {
  d->len = old;
  d->path[old] = '\0';
}

static size_t path_field(dec *d, const char *key) {
  return d->len == 0 ? path_push(d, "%s", key) : path_push(d, ".%s", key);
}

static int fail(dec *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(dec *d, int code, const char *fmt, ...) {
  char msg[MU_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return mu_err_set(d->err, code, "%s: %s", d->len > 0 ? d->path : d->root, msg);
}

static const char *jtype(const json_t *j) {
  switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "something else";
}

static const char *type_name(ProtobufCType t) {
  static const char *const names[] = {"int32",  "sint32",  "sfixed32", "int64",   "sint64", "sfixed64",
                                      "uint32", "fixed32", "uint64",   "fixed64", "float",  "double",
                                      "bool",   "enum",    "string",   "bytes",   "message"};
  return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* An integer from a JSON integer, an integral JSON number, or a decimal string. */
static int get_int(dec *d, const json_t *j, ProtobufCType t, int64_t min, int64_t max, int64_t *ret) {
  int64_t v = 0;
  if (json_is_integer(j)) {
    v = json_integer_value(j);
  } else if (json_is_real(j)) {
    double r = json_real_value(j);
    if (r != floor(r) || r < -9223372036854775808.0 || r >= 9223372036854775808.0) {
      return fail(d, MU_EINVAL, "%g is not a valid %s", r, type_name(t));
    }
    v = (int64_t)r;
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    char *end = NULL;
    errno = 0;
    long long ll = strtoll(s, &end, 10);
    if (s[0] == '\0' || s[0] == ' ' || *end != '\0' || errno != 0) {
      return fail(d, MU_EINVAL, "expected an integer (%s), got \"%s\"", type_name(t), s);
    }
    v = ll;
  } else {
    return fail(d, MU_EINVAL, "expected an integer, got %s", jtype(j));
  }
  if (v < min || v > max) {
    return fail(d, MU_EINVAL, "value %lld is out of range for %s", (long long)v, type_name(t));
  }
  *ret = v;
  return 0;
}

static int get_uint(dec *d, const json_t *j, ProtobufCType t, uint64_t max, uint64_t *ret) {
  uint64_t v = 0;
  if (json_is_integer(j)) {
    json_int_t i = json_integer_value(j);
    if (i < 0) {
      return fail(d, MU_EINVAL, "value %lld is out of range for %s", (long long)i, type_name(t));
    }
    v = (uint64_t)i;
  } else if (json_is_real(j)) {
    double r = json_real_value(j);
    if (r != floor(r) || r < 0 || r >= 18446744073709551616.0) {
      return fail(d, MU_EINVAL, "%g is not a valid %s", r, type_name(t));
    }
    v = (uint64_t)r;
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    char *end = NULL;
    errno = 0;
    unsigned long long ull = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0) {
      return fail(d, MU_EINVAL, "expected an integer (%s), got \"%s\"", type_name(t), s);
    }
    v = ull;
  } else {
    return fail(d, MU_EINVAL, "expected an integer, got %s", jtype(j));
  }
  if (v > max) {
    return fail(d, MU_EINVAL, "value %llu is out of range for %s", (unsigned long long)v, type_name(t));
  }
  *ret = v;
  return 0;
}

static int get_double(dec *d, const json_t *j, ProtobufCType t, double *ret) {
  double v = 0;
  if (json_is_number(j)) {
    v = json_number_value(j);
  } else if (json_is_string(j)) {
    const char *s = json_string_value(j);
    char *end = NULL;
    if (strcmp(s, "NaN") == 0) {
      v = NAN;
    } else if (strcmp(s, "Infinity") == 0) {
      v = INFINITY;
    } else if (strcmp(s, "-Infinity") == 0) {
      v = -INFINITY;
    } else {
      v = strtod(s, &end);
      if (s[0] == '\0' || s[0] == ' ' || *end != '\0' || !isfinite(v)) {
        return fail(d, MU_EINVAL, "expected a number (%s), got \"%s\"", type_name(t), s);
      }
    }
  } else {
    return fail(d, MU_EINVAL, "expected a number, got %s", jtype(j));
  }
  if (t == PROTOBUF_C_TYPE_FLOAT && isfinite(v) && fabs(v) > FLT_MAX) {
    return fail(d, MU_EINVAL, "value %g is out of range for float", v);
  }
  *ret = v;
  return 0;
}

/* Parses one value of field f into dst (a struct member, a union slot or an array element).
 * dst is written only on success, so a failed value never leaves memory to free behind. */
static int parse_value(dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, void *dst, int depth) {
  int64_t i = 0;
  uint64_t u = 0;
  double r = 0;
  int rc = 0;
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      rc = get_int(d, j, f->type, INT32_MIN, INT32_MAX, &i);
      if (rc == 0) {
        *(int32_t *)dst = (int32_t)i;
      }
      return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      rc = get_int(d, j, f->type, INT64_MIN, INT64_MAX, &i);
      if (rc == 0) {
        *(int64_t *)dst = i;
      }
      return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      rc = get_uint(d, j, f->type, UINT32_MAX, &u);
      if (rc == 0) {
        *(uint32_t *)dst = (uint32_t)u;
      }
      return rc;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      rc = get_uint(d, j, f->type, UINT64_MAX, &u);
      if (rc == 0) {
        *(uint64_t *)dst = u;
      }
      return rc;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
      rc = get_double(d, j, f->type, &r);
      if (rc == 0 && f->type == PROTOBUF_C_TYPE_FLOAT) {
        *(float *)dst = (float)r;
      } else if (rc == 0) {
        *(double *)dst = r;
      }
      return rc;
    case PROTOBUF_C_TYPE_BOOL:
      /* "true"/"false" as strings too: YAML job files hand every scalar over as text. */
      if (json_is_string(j) &&
          (strcmp(json_string_value(j), "true") == 0 || strcmp(json_string_value(j), "false") == 0)) {
        *(protobuf_c_boolean *)dst = strcmp(json_string_value(j), "true") == 0;
        return 0;
      }
      if (!json_is_boolean(j)) {
        return fail(d, MU_EINVAL, "expected true or false, got %s", jtype(j));
      }
      *(protobuf_c_boolean *)dst = json_is_true(j);
      return 0;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumDescriptor *ed = f->descriptor;
      if (json_is_string(j)) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
        if (ev == NULL) {
          return fail(d, MU_EINVAL, "unknown value \"%s\" for enum %s", json_string_value(j), ed->name);
        }
        *(int32_t *)dst = ev->value;
        return 0;
      }
      if (!json_is_number(j)) {
        return fail(d, MU_EINVAL, "expected an enum name or number (%s), got %s", ed->name, jtype(j));
      }
      /* proto3 enums are open: a number this build does not know is kept. */
      rc = get_int(d, j, PROTOBUF_C_TYPE_INT32, INT32_MIN, INT32_MAX, &i);
      if (rc == 0) {
        *(int32_t *)dst = (int32_t)i;
      }
      return rc;
    }
    case PROTOBUF_C_TYPE_STRING: {
      if (!json_is_string(j)) {
        return fail(d, MU_EINVAL, "expected a string, got %s", jtype(j));
      }
      if (strlen(json_string_value(j)) != json_string_length(j)) {
        return fail(d, MU_EINVAL, "string contains a NUL character");
      }
      char *s = strdup(json_string_value(j));
      if (s == NULL) {
        return fail(d, MU_ENOMEM, "out of memory");
      }
      *(char **)dst = s;
      return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      ProtobufCBinaryData b = {0, NULL};
      if (!json_is_string(j)) {
        return fail(d, MU_EINVAL, "expected a base64 string, got %s", jtype(j));
      }
      rc = mu_pbjson_b64_decode(json_string_value(j), &b.data, &b.len);
      if (rc == -2) {
        return fail(d, MU_ENOMEM, "out of memory");
      }
      if (rc < 0) {
        return fail(d, MU_EINVAL, "invalid base64");
      }
      *(ProtobufCBinaryData *)dst = b;
      return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      ProtobufCMessage *sub = NULL;
      rc = parse_message(d, f->descriptor, j, depth + 1, &sub);
      if (rc == 0) {
        *(ProtobufCMessage **)dst = sub;
      }
      return rc;
    }
  }
  return fail(d, MU_EINVAL, "unsupported field type %d", (int)f->type);
}

static int parse_repeated(dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, ProtobufCMessage *msg,
                          int depth) {
  size_t sz = mu_pbjson_type_size(f->type);
  size_t n = json_array_size(j);
  if (!json_is_array(j)) {
    return fail(d, MU_EINVAL, "expected an array, got %s", jtype(j));
  }
  if (n == 0) {
    return 0;
  }
  char *arr = calloc(n, sz);
  if (arr == NULL) {
    return fail(d, MU_ENOMEM, "out of memory for %zu elements", n);
  }
  /* Owned by msg from here on; the count grows only past fully parsed elements. */
  MEMBER(void *, msg, f->offset) = arr;
  MEMBER(size_t, msg, f->quantifier_offset) = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(j, i);
    size_t old = path_push(d, "[%zu]", i);
    int rc = 0;
    if (json_is_null(e)) {
      rc = fail(d, MU_EINVAL, "null is not allowed in a list");
    } else {
      rc = parse_value(d, f, e, arr + i * sz, depth);
    }
    if (rc < 0) {
      return rc;
    }
    path_pop(d, old);
    MEMBER(size_t, msg, f->quantifier_offset) = i + 1;
  }
  return 0;
}

/* A map key arrives as a JSON object key: a string, which integer and bool keys parse. */
static int parse_map_key(dec *d, const ProtobufCFieldDescriptor *kf, const char *key, void *dst) {
  if (kf->type == PROTOBUF_C_TYPE_BOOL) {
    if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0) {
      return fail(d, MU_EINVAL, "map key must be \"true\" or \"false\"");
    }
    *(protobuf_c_boolean *)dst = strcmp(key, "true") == 0;
    return 0;
  }
  json_t *k = json_string(key);
  if (k == NULL) {
    return fail(d, MU_ENOMEM, "out of memory");
  }
  int rc = parse_value(d, kf, k, dst, 0);
  json_decref(k);
  return rc;
}

static int parse_map(dec *d, const ProtobufCFieldDescriptor *f, const json_t *j, ProtobufCMessage *msg, int depth) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0];
  const ProtobufCFieldDescriptor *vf = &ed->fields[1];
  const char *key = NULL;
  const json_t *val = NULL;
  if (!json_is_object(j)) {
    return fail(d, MU_EINVAL, "expected an object (a map), got %s", jtype(j));
  }
  size_t n = json_object_size(j);
  if (n == 0) {
    return 0;
  }
  ProtobufCMessage **arr = calloc(n, sizeof(*arr));
  if (arr == NULL) {
    return fail(d, MU_ENOMEM, "out of memory for %zu map entries", n);
  }
  MEMBER(void *, msg, f->offset) = arr;
  MEMBER(size_t, msg, f->quantifier_offset) = 0;
  size_t count = 0;
  json_object_foreach((json_t *)j, key, val) {
    size_t old = path_push(d, "[\"%s\"]", key);
    if (json_is_null(val)) {
      return fail(d, MU_EINVAL, "null is not allowed as a map value");
    }
    ProtobufCMessage *e = malloc(ed->sizeof_message);
    if (e == NULL) {
      return fail(d, MU_ENOMEM, "out of memory");
    }
    ed->message_init(e);
    arr[count++] = e;
    MEMBER(size_t, msg, f->quantifier_offset) = count;
    int rc = parse_map_key(d, kf, key, (char *)e + kf->offset);
    if (rc == 0) {
      rc = parse_value(d, vf, val, (char *)e + vf->offset, depth);
    }
    if (rc < 0) {
      return rc;
    }
    path_pop(d, old);
  }
  return 0;
}

static int find_field(const ProtobufCMessageDescriptor *desc, const char *key) {
  for (unsigned i = 0; i < desc->n_fields; i++) {
    if (mu_pbjson_key_matches(&desc->fields[i], key)) {
      return (int)i;
    }
  }
  return -1;
}

/* Parses one "key": value of an object into msg; seen[] remembers the key used per field. */
static int parse_field(dec *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg, const char *key,
                       const json_t *val, const char **seen, int depth) {
  int idx = find_field(desc, key);
  size_t old = path_field(d, key);
  if (idx < 0) {
    return fail(d, MU_EINVAL, "unknown field");
  }
  const ProtobufCFieldDescriptor *f = &desc->fields[idx];
  if (seen[idx] != NULL) {
    return fail(d, MU_EINVAL, "field given twice (as \"%s\" and \"%s\")", seen[idx], key);
  }
  seen[idx] = key;
  if (json_is_null(val)) {
    path_pop(d, old);
    return 0;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t cur = MEMBER(uint32_t, msg, f->quantifier_offset);
    if (cur != 0) {
      const char *other = "?";
      for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].id == cur && seen[i] != NULL) {
          other = seen[i];
        }
      }
      path_pop(d, old);
      return fail(d, MU_EINVAL, "\"%s\" and \"%s\" are members of the same oneof; set only one", other, key);
    }
  }
  int rc = 0;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    if (mu_pbjson_is_map(desc, f)) {
      rc = parse_map(d, f, val, msg, depth);
    } else {
      rc = parse_repeated(d, f, val, msg, depth);
    }
  } else {
    rc = parse_value(d, f, val, (char *)msg + f->offset, depth);
  }
  if (rc < 0) {
    return rc;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    MEMBER(uint32_t, msg, f->quantifier_offset) = f->id;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE) {
    MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
  }
  path_pop(d, old);
  return 0;
}

static int parse_message(dec *d, const ProtobufCMessageDescriptor *desc, const json_t *j, int depth,
                         ProtobufCMessage **ret) {
  ProtobufCMessage *msg = NULL;
  const char **seen = NULL;
  const char *key = NULL;
  const json_t *val = NULL;
  int rc = 0;
  if (!json_is_object(j)) {
    return fail(d, MU_EINVAL, "expected an object (%s), got %s", desc->name, jtype(j));
  }
  if (depth > MU_PBJSON_MAX_DEPTH) {
    return fail(d, MU_EINVAL, "nested deeper than %d messages", MU_PBJSON_MAX_DEPTH);
  }
  msg = malloc(desc->sizeof_message);
  seen = calloc(desc->n_fields + 1, sizeof(*seen));
  if (msg == NULL || seen == NULL) {
    free(msg);
    msg = NULL;
    rc = fail(d, MU_ENOMEM, "out of memory");
    goto fail;
  }
  desc->message_init(msg);
  json_object_foreach((json_t *)j, key, val) {
    rc = parse_field(d, desc, msg, key, val, seen, depth);
    if (rc < 0) {
      goto fail;
    }
  }
  free(seen);
  *ret = msg;
  return 0;
fail:
  free(seen);
  if (msg != NULL) {
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  return rc;
}

int mu_pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json, ProtobufCMessage **ret_msg,
                        mu_err *err) {
  dec d = {.root = desc->name, .len = 0, .err = err};
  d.path[0] = '\0';
  if (json == NULL) {
    return mu_err_set(err, MU_EINVAL, "%s: no JSON given", desc->name);
  }
  return parse_message(&d, desc, json, 0, ret_msg);
}
