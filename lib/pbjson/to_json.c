/* protobuf-c message -> JSON, the proto3 JSON mapping: lowerCamelCase names (or the .proto
 * names with MU_PBJSON_ORIGINAL_NAMES), 64-bit integers as strings, enums by name, bytes as
 * base64, maps as objects, default values omitted unless MU_PBJSON_EMIT_DEFAULTS. Walks the
 * message through its descriptor only, so it works for any generated type. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pbjson/internal.h"
#include "lib/pbjson/pbjson.h"

#define MEMBER(type, msg, off) (*(type *)((const char *)(msg) + (off)))

static int message_to_json(const ProtobufCMessage *msg, int flags, int depth, json_t **ret, mu_err *err);

static json_t *real_to_json(double v) {
  if (isnan(v)) {
    return json_string("NaN");
  }
  if (isinf(v)) {
    return json_string(v > 0 ? "Infinity" : "-Infinity");
  }
  return json_real(v);
}

/* A float widened to double prints as 0.10000000149011612; use the shortest decimal that
 * reads back as the same float instead, as protobuf's own printer does. */
static json_t *float_to_json(float f) {
  if (isnan(f) || isinf(f)) {
    return real_to_json(f);
  }
  char buf[32];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
    if (strtof(buf, NULL) == f) {
      break;
    }
  }
  return json_real(strtod(buf, NULL));
}

static json_t *int64_to_json(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRId64, v);
  return json_string(buf);
}

static json_t *uint64_to_json(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRIu64, v);
  return json_string(buf);
}

/* One value of field f stored at p (a struct member or an element of a repeated array). */
static int value_to_json(const ProtobufCFieldDescriptor *f, const void *p, int flags, int depth, json_t **ret,
                         mu_err *err) {
  json_t *j = NULL;
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: j = json_integer(*(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: j = json_integer(*(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      j = (flags & MU_PBJSON_INT64_AS_NUMBERS) ? json_integer(*(const int64_t *)p) : int64_to_json(*(const int64_t *)p);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      /* past INT64_MAX a uint64 cannot be a jansson integer: it stays a string */
      j = (flags & MU_PBJSON_INT64_AS_NUMBERS) && *(const uint64_t *)p <= INT64_MAX
              ? json_integer((json_int_t) * (const uint64_t *)p)
              : uint64_to_json(*(const uint64_t *)p);
      break;
    case PROTOBUF_C_TYPE_FLOAT: j = float_to_json(*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: j = real_to_json(*(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: j = json_boolean(*(const protobuf_c_boolean *)p); break;
    case PROTOBUF_C_TYPE_ENUM: {
      int32_t v = *(const int32_t *)p;
      const ProtobufCEnumValue *ev = NULL;
      if ((flags & MU_PBJSON_ENUMS_AS_INTS) == 0) {
        ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
      }
      /* A number the descriptor does not know (a newer peer) stays a number. */
      j = ev != NULL ? json_string(ev->name) : json_integer(v);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)p;
      j = json_string(s != NULL ? s : "");
      if (j == NULL && s != NULL) {
        return mu_err_set(err, MU_EINVAL, "field %s: string is not valid UTF-8", f->name);
      }
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = p;
      char *s = mu_pbjson_b64_encode(b->data, b->len);
      if (s != NULL) {
        j = json_string(s);
        free(s);
      }
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
      if (sub == NULL && (flags & MU_PBJSON_EMIT_UNSET_MESSAGES)) {
        j = json_null(); /* present, and saying it is not set */
        break;
      }
      if (sub == NULL) {
        j = json_object();
        break;
      }
      return message_to_json(sub, flags, depth + 1, ret, err);
    }
  }
  if (j == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory converting field %s to JSON", f->name);
  }
  *ret = j;
  return 0;
}

/* A map key is always a JSON string: "7", "true", or the string itself. */
static int map_key_text(const ProtobufCFieldDescriptor *kf, const void *p, char *buf, size_t cap, const char **ret) {
  switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: *ret = *(const char *const *)p != NULL ? *(const char *const *)p : ""; return 0;
    case PROTOBUF_C_TYPE_BOOL: *ret = *(const protobuf_c_boolean *)p ? "true" : "false"; return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: snprintf(buf, cap, "%" PRId32, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: snprintf(buf, cap, "%" PRId64, *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)p); break;
    default: return -1;
  }
  *ret = buf;
  return 0;
}

static int map_to_json(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *const *entries, size_t n, int flags,
                       int depth, json_t **ret, mu_err *err) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0];
  const ProtobufCFieldDescriptor *vf = &ed->fields[1];
  json_t *obj = json_object();
  int rc = 0;
  if (obj == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory converting map %s", f->name);
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessage *e = entries[i];
    char buf[32];
    const char *key = NULL;
    json_t *v = NULL;
    if (e == NULL) {
      continue;
    }
    if (map_key_text(kf, (const char *)e + kf->offset, buf, sizeof(buf), &key) < 0) {
      rc = mu_err_set(err, MU_EINVAL, "map %s: unsupported key type", f->name);
      goto fail;
    }
    rc = value_to_json(vf, (const char *)e + vf->offset, flags, depth, &v, err);
    if (rc < 0) {
      goto fail;
    }
    if (json_object_set_new(obj, key, v) < 0) {
      rc = mu_err_set(err, MU_EINVAL, "map %s: key is not valid UTF-8", f->name);
      goto fail;
    }
  }
  *ret = obj;
  return 0;
fail:
  json_decref(obj);
  return rc;
}

static int repeated_to_json(const ProtobufCFieldDescriptor *f, const void *arr, size_t n, int flags, int depth,
                            json_t **ret, mu_err *err) {
  size_t sz = mu_pbjson_type_size(f->type);
  json_t *a = json_array();
  int rc = 0;
  if (a == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory converting field %s", f->name);
  }
  for (size_t i = 0; i < n; i++) {
    json_t *v = NULL;
    rc = value_to_json(f, (const char *)arr + i * sz, flags, depth, &v, err);
    if (rc < 0) {
      goto fail;
    }
    if (json_array_append_new(a, v) < 0) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory converting field %s", f->name);
      goto fail;
    }
  }
  *ret = a;
  return 0;
fail:
  json_decref(a);
  return rc;
}

/* Whether a proto3 field without presence holds its default value. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)p;
      return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(const ProtobufCMessage *const *)p == NULL;
  }
  return true;
}

/* Decides whether a singular field is printed: 1 yes, 0 no. */
static int singular_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, int flags) {
  const void *p = (const char *)msg + f->offset;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    return MEMBER(uint32_t, msg, f->quantifier_offset) == f->id;
  }
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    return *(const ProtobufCMessage *const *)p != NULL || (flags & MU_PBJSON_EMIT_UNSET_MESSAGES);
  }
  if (f->label == PROTOBUF_C_LABEL_REQUIRED) {
    return 1;
  }
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
    /* proto2 optional / proto3 `optional`: strings have no has_ flag, NULL means unset. */
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = *(const char *const *)p;
      return s != NULL && s != f->default_value;
    }
    return MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) != 0;
  }
  return (flags & MU_PBJSON_EMIT_DEFAULTS) || !is_default(f, p);
}

static int message_to_json(const ProtobufCMessage *msg, int flags, int depth, json_t **ret, mu_err *err) {
  const ProtobufCMessageDescriptor *desc = msg->descriptor;
  json_t *obj = NULL;
  int rc = 0;
  if (depth > MU_PBJSON_MAX_DEPTH) {
    return mu_err_set(err, MU_EINVAL, "%s: nested deeper than %d messages", desc->name, MU_PBJSON_MAX_DEPTH);
  }
  obj = json_object();
  if (obj == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory converting %s", desc->name);
  }
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    json_t *v = NULL;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = MEMBER(size_t, msg, f->quantifier_offset);
      const void *arr = MEMBER(const void *, msg, f->offset);
      if (n == 0 && (flags & MU_PBJSON_EMIT_DEFAULTS) == 0) {
        continue;
      }
      if (mu_pbjson_is_map(desc, f)) {
        rc = map_to_json(f, arr, n, flags, depth, &v, err);
      } else {
        rc = repeated_to_json(f, arr, n, flags, depth, &v, err);
      }
    } else {
      if (!singular_present(msg, f, flags)) {
        continue;
      }
      rc = value_to_json(f, (const char *)msg + f->offset, flags, depth, &v, err);
    }
    if (rc < 0) {
      goto fail;
    }
    char buf[128];
    const char *name = (flags & MU_PBJSON_ORIGINAL_NAMES) ? f->name : mu_pbjson_camel(f->name, buf, sizeof(buf));
    if (json_object_set_new(obj, name, v) < 0) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory converting %s", desc->name);
      goto fail;
    }
  }
  *ret = obj;
  return 0;
fail:
  json_decref(obj);
  return rc;
}

int mu_pbjson_to_json(const ProtobufCMessage *msg, int flags, json_t **ret_json, mu_err *err) {
  return message_to_json(msg, flags, 0, ret_json, err);
}

int mu_pbjson_print(const ProtobufCMessage *msg, int flags, FILE *out) {
  json_t *j = NULL;
  mu_err err = {0};
  int rc = mu_pbjson_to_json(msg, flags, &j, &err);
  if (rc < 0) {
    return rc;
  }
  /* 16 significant digits print 0.37 as 0.37 rather than jansson's default 0.36999999999999999. */
  rc = json_dumpf(j, out, JSON_COMPACT | JSON_REAL_PRECISION(16));
  json_decref(j);
  if (rc < 0 || fputc('\n', out) == EOF) {
    return MU_EIO;
  }
  return 0;
}
