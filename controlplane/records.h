/* Stored records (protos/muster/v1/store.proto) to and from the JSON values kept in etcd,
 * through lib/pbjson: .proto field names, enums as numbers, the record's own 64-bit integers
 * as numbers (as before store.proto; nested messages keep pbjson's strings). The reader also
 * takes what musterd wrote before store.proto (null for an unplaced host in JobRecord.hosts,
 * every default written out), so an upgraded cluster keeps its jobs (records_test.c loads
 * such records, kept in testdata/store_v1_records.jsonl). */
#ifndef MU_CP_RECORDS_H
#define MU_CP_RECORDS_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "lib/base/err.h"
#include "muster/v1/store.pb-c.h"

#define MU_RECORD_VERSION 1

/* The JSON text of rec (a store.proto message), NUL-terminated; the caller frees it.
 * MU_ENOMEM, or MU_EINVAL when rec cannot be written (a string that is not UTF-8). */
int mu_record_encode(const ProtobufCMessage *rec, char **ret_text, mu_err *err);

/* Parses a record of type desc from value (len bytes, not NUL-terminated). On success *ret is
 * the caller's (protobuf_c_message_free_unpacked(*ret, NULL)); its sub-messages may be taken
 * by setting the pointer to NULL before the free. MU_EINVAL says what is wrong ("not JSON: ...",
 * "created_at_ms: ..."). */
int mu_record_decode(const ProtobufCMessageDescriptor *desc, const char *value, size_t len, ProtobufCMessage **ret,
                     mu_err *err);

/* The NAME of a record key rel_key = prefix + NAME when NAME is one non-empty path segment
 * ("templates/deploy" under "templates/": "deploy"), else NULL (another prefix, or a key
 * under the record such as "schedules/n/slots/..."). Borrowed from rel_key. */
const char *mu_record_leaf(const char *rel_key, const char *prefix);

#endif
