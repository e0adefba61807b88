/* What proto3 requires of a message but protobuf-c's unpack lets through: string fields that
 * are not UTF-8 (JSON, so our etcd records and -o json, cannot hold them either), and unknown
 * fields numbered 0 (an overlong tag such as 0x82 0x00), which protobuf-c keeps and then packs
 * as a tag that its own unpack refuses. A message that passes converts with mu_pbjson_to_json
 * and survives a pack/unpack copy. UTF-8 follows jansson's rules: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/pbjson/internal.h"
#include "lib/pbjson/pbjson.h"

#define MEMBER(type, msg, off) (*(type *)((const char *)(msg) + (off)))
#define MAX_FIELD_NUMBER 536870911u /* 2^29 - 1 */

static bool utf8_valid(const unsigned char *s) {
  while (*s) {
    unsigned c = *s, n, v;
    if (c < 0x80) {
      s++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) n = 1, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 2, v = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, v = c & 0x07;
    else return false;
    for (unsigned i = 1; i <= n; i++) {
      if ((s[i] & 0xc0) != 0x80) return false; /* also stops at the NUL */
      v = (v << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && v < 0x800) || (n == 3 && v < 0x10000) || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return false;
    s += n + 1;
  }
  return true;
}

static int check_message(const ProtobufCMessage *msg, int depth, char *path, size_t len, mu_err *err);

/* One value of f at p; path (len bytes used, MU_ERR_MSG_MAX) names it. */
static int check_value(const ProtobufCFieldDescriptor *f, const void *p, int depth, char *path, size_t len,
                       mu_err *err) {
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    const char *s = *(const char *const *)p;
    if (s != NULL && !utf8_valid((const unsigned char *)s))
      return mu_err_set(err, MU_EINVAL, "%s: string is not valid UTF-8", path);
  } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
    if (sub != NULL) return check_message(sub, depth + 1, path, len, err);
  }
  return 0;
}

static int check_message(const ProtobufCMessage *msg, int depth, char *path, size_t len, mu_err *err) {
  const ProtobufCMessageDescriptor *desc = msg->descriptor;
  if (depth > MU_PBJSON_MAX_DEPTH)
    return mu_err_set(err, MU_EINVAL, "%s: nested deeper than %d messages", path[0] ? path : desc->name,
                      MU_PBJSON_MAX_DEPTH);
  for (size_t i = 0; i < msg->n_unknown_fields; i++) {
    uint32_t tag = msg->unknown_fields[i].tag;
    if (tag < 1 || tag > MAX_FIELD_NUMBER)
      return mu_err_set(err, MU_EINVAL, "%s%sfield number %u is out of range 1..%u", path[0] ? path : "",
                        path[0] ? ": " : "", (unsigned)tag, (unsigned)MAX_FIELD_NUMBER);
  }
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && MEMBER(uint32_t, msg, f->quantifier_offset) != f->id) continue;
    int n = snprintf(path + len, MU_ERR_MSG_MAX - len, "%s%s", len ? "." : "", f->name);
    size_t flen = n < 0 ? len : len + (size_t)n;
    if (flen >= MU_ERR_MSG_MAX) flen = MU_ERR_MSG_MAX - 1;
    int rc = 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = MEMBER(size_t, msg, f->quantifier_offset);
      const char *arr = MEMBER(const char *, msg, f->offset);
      size_t size = mu_pbjson_type_size(f->type);
      for (size_t k = 0; k < count && rc == 0; k++) {
        int m = snprintf(path + flen, MU_ERR_MSG_MAX - flen, "[%zu]", k);
        size_t klen = m < 0 ? flen : flen + (size_t)m;
        if (klen >= MU_ERR_MSG_MAX) klen = MU_ERR_MSG_MAX - 1;
        rc = check_value(f, arr + k * size, depth, path, klen, err);
      }
    } else {
      rc = check_value(f, (const char *)msg + f->offset, depth, path, flen, err);
    }
    if (rc != 0) return rc;
    path[len] = '\0';
  }
  return 0;
}

int mu_pbjson_proto3_check(const ProtobufCMessage *msg, mu_err *err) {
  char path[MU_ERR_MSG_MAX] = "";
  return check_message(msg, 0, path, 0, err);
}
