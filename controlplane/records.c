/* records.h */
#include "controlplane/records.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/pbjson/pbjson.h"

/* The record's own 64-bit fields as JSON numbers, as musterd wrote them before store.proto (the
 * proto3 mapping writes strings): a member of the earlier version still reads them. Nested
 * messages (spec, hello, metrics) were pbjson's already and stay so. */
static void int64_as_numbers(const ProtobufCMessageDescriptor *desc, json_t *o) {
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) continue;
    if (f->type != PROTOBUF_C_TYPE_INT64 && f->type != PROTOBUF_C_TYPE_SINT64 && f->type != PROTOBUF_C_TYPE_SFIXED64)
      continue;
    const char *text = json_string_value(json_object_get(o, f->name));
    if (text != NULL) json_object_set_new(o, f->name, json_integer(strtoll(text, NULL, 10)));
  }
}

int mu_record_encode(const ProtobufCMessage *rec, char **ret_text, mu_err *err) {
  json_t *o = NULL;
  int rc = mu_pbjson_to_json(rec, MU_PBJSON_ORIGINAL_NAMES | MU_PBJSON_ENUMS_AS_INTS, &o, err);
  if (rc != 0) return rc;
  int64_as_numbers(rec->descriptor, o);
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text == NULL)
    return mu_err_set(err, MU_EINVAL, "%s: cannot be written as JSON (a string is not UTF-8?)", rec->descriptor->name);
  *ret_text = text;
  return 0;
}

/* Records written before store.proto: JobRecord.hosts held null for an "any" target not yet
 * placed; the proto3 mapping has no null inside a list, so it becomes "". */
static void upgrade_v1(const ProtobufCMessageDescriptor *desc, json_t *o) {
  if (desc != &muster__v1__job_record__descriptor) return;
  json_t *hosts = json_object_get(o, "hosts");
  for (size_t i = 0; i < json_array_size(hosts); i++)
    if (json_is_null(json_array_get(hosts, i))) json_array_set_new(hosts, i, json_string(""));
}

int mu_record_decode(const ProtobufCMessageDescriptor *desc, const char *value, size_t len, ProtobufCMessage **ret,
                     mu_err *err) {
  json_error_t jerr;
  json_t *o = json_loadb(value, len, 0, &jerr);
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return mu_err_set(err, MU_EINVAL, "not a JSON object (%s)", o ? "another JSON value" : jerr.text);
  }
  upgrade_v1(desc, o);
  int rc = mu_pbjson_from_json(desc, o, ret, err);
  json_decref(o);
  return rc;
}

const char *mu_record_leaf(const char *rel_key, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(rel_key, prefix, n) != 0) return NULL;
  const char *name = rel_key + n;
  return name[0] == '\0' || strchr(name, '/') != NULL ? NULL : name;
}
