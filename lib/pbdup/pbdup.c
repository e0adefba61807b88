/* Deep copy of protobuf-c messages (pbdup.h). The copy starts as a byte copy of the struct (all
 * scalars, counts and oneof cases); then every pointer the copy would share is first reset to
 * what protobuf_c_message_free_unpacked treats as "nothing to free", and filled in field by
 * field, so a copy abandoned half-way on ENOMEM is freed by the same function. */
#include "lib/pbdup/pbdup.h"

#include <stdlib.h>
#include <string.h>

#define MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))

static int field_active(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg) {
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0) return 1;
  return MEMBER(uint32_t, msg, f->quantifier_offset) == f->id;
}

static int has_pointer(const ProtobufCFieldDescriptor *f) {
  return f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_STRING ||
         f->type == PROTOBUF_C_TYPE_BYTES || f->type == PROTOBUF_C_TYPE_MESSAGE;
}

/* The copy's field as free_unpacked leaves alone: no array, the default string or bytes, no
 * sub-message. */
static void reset(const ProtobufCFieldDescriptor *f, ProtobufCMessage *copy) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    MEMBER(size_t, copy, f->quantifier_offset) = 0;
    MEMBER(void *, copy, f->offset) = NULL;
  } else if (f->type == PROTOBUF_C_TYPE_STRING) {
    MEMBER(const char *, copy, f->offset) = f->default_value;
  } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
    const ProtobufCBinaryData *def = f->default_value;
    MEMBER(ProtobufCBinaryData, copy, f->offset) = def ? *def : (ProtobufCBinaryData){0, NULL};
  } else {
    MEMBER(ProtobufCMessage *, copy, f->offset) = NULL;
  }
}

static size_t elem_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

static int dup_bytes(const ProtobufCBinaryData *src, ProtobufCBinaryData *ret) {
  ret->len = src->len;
  ret->data = NULL;
  if (src->data == NULL || src->len == 0) return 0;
  ret->data = malloc(src->len);
  if (ret->data == NULL) return -1;
  memcpy(ret->data, src->data, src->len);
  return 0;
}

/* Fills the copy's array for a repeated field; on failure the array holds what was copied so
 * far and the count says how much. */
static int dup_repeated(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg, ProtobufCMessage *copy) {
  size_t n = MEMBER(size_t, msg, f->quantifier_offset);
  const void *src = MEMBER(const void *, msg, f->offset);
  if (n == 0 || src == NULL) return 0;
  size_t es = elem_size(f);
  void *arr = calloc(n, es);
  if (arr == NULL) return -1;
  MEMBER(void *, copy, f->offset) = arr;
  if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE) {
    memcpy(arr, src, n * es);
    MEMBER(size_t, copy, f->quantifier_offset) = n;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    int rc = 0;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = ((char *const *)src)[i];
      ((char **)arr)[i] = strdup(s ? s : "");
      rc = ((char **)arr)[i] ? 0 : -1;
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
      rc = dup_bytes(&((const ProtobufCBinaryData *)src)[i], &((ProtobufCBinaryData *)arr)[i]);
    } else {
      const ProtobufCMessage *sub = ((ProtobufCMessage *const *)src)[i];
      ((ProtobufCMessage **)arr)[i] = mu_pb_dup(sub);
      rc = ((ProtobufCMessage **)arr)[i] || sub == NULL ? 0 : -1;
    }
    if (rc != 0) return -1;
    MEMBER(size_t, copy, f->quantifier_offset) = i + 1;
  }
  return 0;
}

static int dup_field(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg, ProtobufCMessage *copy) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return dup_repeated(f, msg, copy);
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    const char *s = MEMBER(const char *, msg, f->offset);
    /* an empty proto3 string (an allocated "" after unpack) is the default: shared, not copied */
    if (s == NULL || s == f->default_value) return 0;
    if (s[0] == '\0' && f->default_value != NULL && ((const char *)f->default_value)[0] == '\0') return 0;
    char *d = strdup(s);
    if (d == NULL) return -1;
    MEMBER(char *, copy, f->offset) = d;
    return 0;
  }
  if (f->type == PROTOBUF_C_TYPE_BYTES) {
    const ProtobufCBinaryData *src = &MEMBER(ProtobufCBinaryData, msg, f->offset);
    const ProtobufCBinaryData *def = f->default_value;
    if (def != NULL && src->data == def->data) return 0;
    return dup_bytes(src, &MEMBER(ProtobufCBinaryData, copy, f->offset));
  }
  const ProtobufCMessage *sub = MEMBER(const ProtobufCMessage *, msg, f->offset);
  if (sub == NULL) return 0;
  ProtobufCMessage *d = mu_pb_dup(sub);
  if (d == NULL) return -1;
  MEMBER(ProtobufCMessage *, copy, f->offset) = d;
  return 0;
}

ProtobufCMessage *mu_pb_dup(const ProtobufCMessage *msg) {
  if (msg == NULL) return NULL;
  const ProtobufCMessageDescriptor *desc = msg->descriptor;
  ProtobufCMessage *copy = malloc(desc->sizeof_message);
  if (copy == NULL) return NULL;
  memcpy(copy, msg, desc->sizeof_message);
  copy->n_unknown_fields = 0;
  copy->unknown_fields = NULL;
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (has_pointer(f) && field_active(f, msg)) reset(f, copy);
  }
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (has_pointer(f) && field_active(f, msg) && dup_field(f, msg, copy) != 0) goto fail;
  }
  if (msg->n_unknown_fields > 0) {
    copy->unknown_fields = calloc(msg->n_unknown_fields, sizeof *copy->unknown_fields);
    if (copy->unknown_fields == NULL) goto fail;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
      const ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];
      ProtobufCMessageUnknownField *d = &copy->unknown_fields[i];
      *d = *u;
      d->data = malloc(u->len ? u->len : 1);
      if (d->data == NULL) goto fail;
      memcpy(d->data, u->data, u->len);
      copy->n_unknown_fields = i + 1;
    }
  }
  return copy;
fail:
  protobuf_c_message_free_unpacked(copy, NULL);
  return NULL;
}
