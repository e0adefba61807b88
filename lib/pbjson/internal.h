/* Shared between to_json.c and from_json.c: JSON names of fields, map-entry detection, the C
 * size of each protobuf-c field type, and base64. Not part of the public API. */
#ifndef MU_PBJSON_INTERNAL_H
#define MU_PBJSON_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the proto3 JSON name of a .proto field name (protoc's ToJsonName: drop each '_' and
 * upper-case the letter after it) into buf. Returns buf, or name itself when it does not fit. */
const char *mu_pbjson_camel(const char *name, char *buf, size_t cap);

/* True when key names field f, either as written in the .proto or in its JSON name. */
bool mu_pbjson_key_matches(const ProtobufCFieldDescriptor *f, const char *key);

/* True when f (a field of desc) is a map<K,V>: protobuf-c gives maps as repeated nested
 * "<CamelName>Entry" messages with exactly the fields key = 1 and value = 2. */
bool mu_pbjson_is_map(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f);

/* Bytes one value of type t takes in a protobuf-c struct or repeated array. */
size_t mu_pbjson_type_size(ProtobufCType t);

/* True for the 64-bit integer types, which the JSON mapping writes as strings. */
bool mu_pbjson_is_64bit(ProtobufCType t);

/* Standard base64 with padding of data into a new NUL-terminated malloc'd string (NULL on
 * out-of-memory). */
char *mu_pbjson_b64_encode(const uint8_t *data, size_t len);

/* Decodes standard or URL-safe base64, padding optional, into a new malloc'd buffer (NULL when
 * the result is empty). Returns 0, -1 on bad input, -2 on out-of-memory. */
int mu_pbjson_b64_decode(const char *text, uint8_t **ret_data, size_t *ret_len);

#endif
