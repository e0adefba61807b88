/* lib/reflect: the logic of gRPC server reflection (grpc.reflection.v1.ServerReflection and
 * v1alpha, which share one wire format) as a pure function over a serialized
 * google.protobuf.FileDescriptorSet: one serialized ServerReflectionRequest in, one serialized
 * ServerReflectionResponse out. The network side (the bidi stream) lives elsewhere; it calls
 * mu_reflect_handle once per request message.
 *
 * Answers list_services, file_by_filename, file_containing_symbol (services, methods, messages
 * incl. nested ones, fields, oneofs, enums, enum values, extensions), file_containing_extension
 * and all_extension_numbers_of_type. File answers carry the file and all of its transitive
 * dependencies, each once, requested file first. Unknown names answer an error_response with
 * NOT_FOUND (5) naming the thing asked for. An index is immutable after set_services, so one
 * index may serve many threads at once. */
#ifndef MU_REFLECT_H
#define MU_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_reflect_index mu_reflect_index;

/* Builds an index over a serialized FileDescriptorSet (e.g. mu_descriptor_set from
 * //protos:descriptor_set). The bytes are copied; set may be freed afterwards. On success the
 * caller owns *ret and frees it with mu_reflect_index_free. Errors: MU_EINVAL (set unparsable
 * or a file without a name), MU_ENOMEM. */
int mu_reflect_index_new(const uint8_t *set, size_t len, mu_reflect_index **ret, mu_err *err);

void mu_reflect_index_free(mu_reflect_index *idx);

/* Sets the fully-qualified service names list_services answers (the services the server really
 * serves); names are copied. Default: every service in the set, in file order. Returns 0 or
 * MU_ENOMEM (the previous list is kept then). */
int mu_reflect_set_services(mu_reflect_index *idx, const char *const *names, size_t n);

/* Answers one serialized ServerReflectionRequest with one serialized ServerReflectionResponse
 * in a new malloc'd buffer the caller frees with free(). valid_host echoes the request's host
 * and original_request the request. "Not found" is an answer (error_response), not an error.
 * Errors: MU_EINVAL when req does not parse or breaks a proto3 rule (mu_pbjson_proto3_check;
 * the server answers INVALID_ARGUMENT), MU_ENOMEM. */
int mu_reflect_handle(const mu_reflect_index *idx, const uint8_t *req, size_t req_len, uint8_t **ret_resp,
                      size_t *ret_resp_len, mu_err *err);

#endif
