/* lib/pbjson: protobuf-c messages <-> JSON (jansson), driven only by ProtobufCMessageDescriptor
 * and following the proto3 JSON mapping: lowerCamelCase names (snake_case accepted on input),
 * 64-bit integers as strings, enums by name, bytes as base64, maps as objects, repeated fields
 * as arrays. The CLI's `-o json`, job files (YAML turned into JSON) and grpcurl-shaped requests
 * all go through here.
 *
 * Not covered: google.protobuf well-known types (Timestamp, Duration, Any, Struct, wrappers)
 * are treated as ordinary messages; the muster protos use none of them. */
#ifndef MU_PBJSON_H
#define MU_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

#include "lib/base/err.h"

/* Flags for mu_pbjson_to_json / mu_pbjson_print. */
#define MU_PBJSON_EMIT_DEFAULTS \
  0x1                                /* print proto3 fields that hold their default value \
                                        (0, "", false, first enum value, [] and {});      \
                                        unset message fields and oneofs stay omitted */
#define MU_PBJSON_ORIGINAL_NAMES 0x2 /* field names as in the .proto (snake_case) */
#define MU_PBJSON_ENUMS_AS_INTS 0x4  /* enums as numbers instead of names */
#define MU_PBJSON_INT64_AS_NUMBERS \
  0x8 /* 64-bit integers as JSON numbers (exact up to 2^53 in readers that use doubles); \
         a uint64 past INT64_MAX stays a string. Output only: not the proto3 mapping */
#define MU_PBJSON_EMIT_UNSET_MESSAGES \
  0x10 /* an unset singular message field (not in a oneof) prints as null instead of being \
          omitted; with EMIT_DEFAULTS every field is present. Output only */

/* Deepest message nesting accepted or produced; deeper input is MU_EINVAL (as protobuf's
 * own parsers do, this guards the recursion against hostile input). */
#define MU_PBJSON_MAX_DEPTH 64

/* Converts msg to a new JSON object. On success *ret_json is a new reference the caller
 * releases with json_decref(). Errors: MU_ENOMEM; MU_EINVAL when msg is nested deeper than
 * MU_PBJSON_MAX_DEPTH. */
int mu_pbjson_to_json(const ProtobufCMessage *msg, int flags, json_t **ret_json, mu_err *err);

/* Builds a message of type desc from a JSON object. Field names are accepted in lowerCamelCase
 * and snake_case; enums by name or number; 64-bit integers as numbers or strings; bytes as
 * standard or URL-safe base64; maps as objects; null means "leave at default".
 * Unknown fields, type mismatches, out-of-range numbers, a field given twice, and two members
 * of one oneof are MU_EINVAL with a message that starts with the field's full path, e.g.
 * `tasks[1].http.method: expected a string, got an array`.
 * On success *ret_msg is laid out exactly like protobuf_c_message_unpack()'s result with the
 * default allocator: the caller frees it with protobuf_c_message_free_unpacked(msg, NULL).
 * Errors: MU_EINVAL, MU_ENOMEM. */
int mu_pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json, ProtobufCMessage **ret_msg,
                        mu_err *err);

/* Checks what proto3 requires but protobuf-c's unpack does not enforce (C++, Go and Python
 * refuse such messages when they parse): every string field, nested and repeated and map ones
 * included, holds valid UTF-8, and no unknown field is numbered outside 1..2^29-1. Servers
 * call it on what they unpack from peers. A message that passes converts with
 * mu_pbjson_to_json and survives a pack/unpack copy. Returns 0, or MU_EINVAL naming the path
 * ("tasks[0].shell.command[1]: string is not valid UTF-8"), also for a nesting deeper than
 * MU_PBJSON_MAX_DEPTH. */
int mu_pbjson_proto3_check(const ProtobufCMessage *msg, mu_err *err);

/* Prints msg as one line of JSON plus a newline to out. Returns 0, MU_ENOMEM or MU_EIO. */
int mu_pbjson_print(const ProtobufCMessage *msg, int flags, FILE *out);

#endif
