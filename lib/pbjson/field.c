/* Field naming and layout facts for lib/pbjson: the proto3 JSON name of a field, whether a
 * repeated field is really a map, and how many bytes each field type takes in a protobuf-c
 * struct. Pure functions over descriptors. */
#include <ctype.h>
#include <string.h>

#include "lib/pbjson/internal.h"

const char *mu_pbjson_camel(const char *name, char *buf, size_t cap) {
  size_t n = 0;
  bool up = false;
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '_') {
      up = true;
      continue;
    }
    if (n + 1 >= cap) {
      return name;
    }
    buf[n++] = up ? (char)toupper((unsigned char)*p) : *p;
    up = false;
  }
  buf[n] = '\0';
  return buf;
}

/* Compares key against the JSON name of name without building it. */
static bool camel_equals(const char *name, const char *key) {
  bool up = false;
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '_') {
      up = true;
      continue;
    }
    char c = up ? (char)toupper((unsigned char)*p) : *p;
    up = false;
    if (*key != c) {
      return false;
    }
    key++;
  }
  return *key == '\0';
}

bool mu_pbjson_key_matches(const ProtobufCFieldDescriptor *f, const char *key) {
  return strcmp(f->name, key) == 0 || camel_equals(f->name, key);
}

bool mu_pbjson_is_map(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) {
    return false;
  }
  const ProtobufCMessageDescriptor *e = f->descriptor;
  if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 || strcmp(e->fields[0].name, "key") != 0 ||
      strcmp(e->fields[1].name, "value") != 0) {
    return false;
  }
  /* The entry is nested in desc and named after the field: "<Desc>.<CamelName>Entry". */
  size_t plen = strlen(desc->name);
  if (strncmp(e->name, desc->name, plen) != 0 || e->name[plen] != '.') {
    return false;
  }
  const char *s = e->short_name;
  bool up = true;
  for (const char *p = f->name; *p != '\0'; p++) {
    if (*p == '_') {
      up = true;
      continue;
    }
    char c = up ? (char)toupper((unsigned char)*p) : *p;
    up = false;
    if (*s != c) {
      return false;
    }
    s++;
  }
  return strcmp(s, "Entry") == 0;
}

size_t mu_pbjson_type_size(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

bool mu_pbjson_is_64bit(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64 ||
         t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
}
