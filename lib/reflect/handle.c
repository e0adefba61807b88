/* Answers one ServerReflectionRequest from the index: decode, look up, encode. File answers
 * point into the index's copy of the set (no copying of descriptor bytes); the response and its
 * scratch arrays live only for the call. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "lib/pbjson/pbjson.h"
#include "lib/reflect/internal.h"

#define GRPC_NOT_FOUND 5
#define GRPC_UNIMPLEMENTED 12

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

/* Scratch owned by one call, freed after packing. */
typedef struct answer {
  resp_t resp;
  Grpc__Reflection__V1__FileDescriptorResponse files;
  Grpc__Reflection__V1__ListServiceResponse list;
  Grpc__Reflection__V1__ExtensionNumberResponse exts;
  Grpc__Reflection__V1__ErrorResponse error;
  char error_msg[512];
  ProtobufCBinaryData *file_data;
  Grpc__Reflection__V1__ServiceResponse *svc;
  Grpc__Reflection__V1__ServiceResponse **svc_ptrs;
  int32_t *numbers;
} answer;

static void set_error(answer *a, int code, const char *fmt, const char *what) {
  snprintf(a->error_msg, sizeof(a->error_msg), fmt, what);
  a->error.error_code = code;
  a->error.error_message = a->error_msg;
  a->resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  a->resp.error_response = &a->error;
}

/* Depth-first from `root`, each file once: the file first, then its dependencies. The walk
 * uses an explicit stack bounded by the number of files, so deep import chains are fine. */
static int answer_file(const mu_reflect_index *idx, size_t root, answer *a, mu_err *err) {
  bool *seen = calloc(idx->n_files, sizeof(*seen));
  size_t *stack = calloc(idx->n_files, sizeof(*stack));
  a->file_data = calloc(idx->n_files, sizeof(*a->file_data));
  if (seen == NULL || stack == NULL || a->file_data == NULL) {
    free(seen);
    free(stack);
    return mu_err_set(err, MU_ENOMEM, "out of memory answering reflection");
  }
  size_t n = 0;
  size_t top = 0;
  stack[top++] = root;
  seen[root] = true;
  while (top > 0) {
    const mu_reflect_file *f = &idx->files[stack[--top]];
    a->file_data[n].data = (uint8_t *)f->raw;
    a->file_data[n].len = f->raw_len;
    n++;
    /* Pushed in reverse so they come out in import order. */
    for (size_t i = f->n_deps; i > 0; i--) {
      size_t d = f->deps[i - 1];
      if (!seen[d]) {
        seen[d] = true;
        stack[top++] = d;
      }
    }
  }
  free(seen);
  free(stack);
  a->files.n_file_descriptor_proto = n;
  a->files.file_descriptor_proto = a->file_data;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  a->resp.file_descriptor_response = &a->files;
  return 0;
}

static int answer_list(const mu_reflect_index *idx, answer *a, mu_err *err) {
  size_t n = idx->n_services;
  a->svc = calloc(n + 1, sizeof(*a->svc));
  a->svc_ptrs = calloc(n + 1, sizeof(*a->svc_ptrs));
  if (a->svc == NULL || a->svc_ptrs == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory answering reflection");
  }
  for (size_t i = 0; i < n; i++) {
    grpc__reflection__v1__service_response__init(&a->svc[i]);
    a->svc[i].name = idx->services[i];
    a->svc_ptrs[i] = &a->svc[i];
  }
  a->list.n_service = n;
  a->list.service = a->svc_ptrs;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  a->resp.list_services_response = &a->list;
  return 0;
}

static const char *strip_dot(const char *name) { return name[0] == '.' ? name + 1 : name; }

static int answer_extension(const mu_reflect_index *idx, const req_t *rq, answer *a, mu_err *err) {
  const Grpc__Reflection__V1__ExtensionRequest *x = rq->file_containing_extension;
  const char *type = x != NULL && x->containing_type != NULL ? strip_dot(x->containing_type) : "";
  int32_t num = x != NULL ? x->extension_number : 0;
  for (size_t i = 0; i < idx->n_exts; i++) {
    if (idx->exts[i].number == num && strcmp(idx->exts[i].extendee, type) == 0) {
      return answer_file(idx, idx->exts[i].file, a, err);
    }
  }
  char what[300];
  snprintf(what, sizeof(what), "%.255s %d", type, (int)num);
  set_error(a, GRPC_NOT_FOUND, "extension not found: %s", what);
  return 0;
}

static int int32_cmp(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a;
  int32_t y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int answer_ext_numbers(const mu_reflect_index *idx, const char *type, answer *a, mu_err *err) {
  type = strip_dot(type);
  const mu_reflect_sym *s = mu_reflect_find_symbol(idx, type);
  if (s == NULL || s->kind != MU_REFLECT_SYM_MESSAGE) {
    set_error(a, GRPC_NOT_FOUND, "type not found: %s", type);
    return 0;
  }
  a->numbers = calloc(idx->n_exts + 1, sizeof(*a->numbers));
  if (a->numbers == NULL) {
    return mu_err_set(err, MU_ENOMEM, "out of memory answering reflection");
  }
  size_t n = 0;
  for (size_t i = 0; i < idx->n_exts; i++) {
    if (strcmp(idx->exts[i].extendee, type) == 0) {
      a->numbers[n++] = idx->exts[i].number;
    }
  }
  qsort(a->numbers, n, sizeof(*a->numbers), int32_cmp);
  a->exts.base_type_name = (char *)s->name;
  a->exts.n_extension_number = n;
  a->exts.extension_number = a->numbers;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
  a->resp.all_extension_numbers_response = &a->exts;
  return 0;
}

static int dispatch(const mu_reflect_index *idx, const req_t *rq, answer *a, mu_err *err) {
  switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
      return answer_list(idx, a, err);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
      const char *name = rq->file_by_filename != NULL ? rq->file_by_filename : "";
      long f = mu_reflect_find_file(idx, name);
      if (f < 0) {
        set_error(a, GRPC_NOT_FOUND, "file not found: %s", name);
        return 0;
      }
      return answer_file(idx, (size_t)f, a, err);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
      const char *name = rq->file_containing_symbol != NULL ? rq->file_containing_symbol : "";
      const mu_reflect_sym *s = mu_reflect_find_symbol(idx, strip_dot(name));
      if (s == NULL) {
        set_error(a, GRPC_NOT_FOUND, "symbol not found: %s", name);
        return 0;
      }
      return answer_file(idx, s->file, a, err);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
      return answer_extension(idx, rq, a, err);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
      return answer_ext_numbers(idx, rq->all_extension_numbers_of_type ? rq->all_extension_numbers_of_type : "", a,
                                err);
    default:
      /* No request, or a kind newer than this server: what grpc's own server answers. */
      set_error(a, GRPC_UNIMPLEMENTED, "%s", "request kind not supported");
      return 0;
  }
}

int mu_reflect_handle(const mu_reflect_index *idx, const uint8_t *req, size_t req_len, uint8_t **ret_resp,
                      size_t *ret_resp_len, mu_err *err) {
  uint8_t *buf = NULL;
  int rc = 0;
  answer a;
  memset(&a, 0, sizeof(a));
  req_t *rq = grpc__reflection__v1__server_reflection_request__unpack(NULL, req_len, req);
  if (rq == NULL) {
    return mu_err_set(err, MU_EINVAL, "reflection: request is not a valid ServerReflectionRequest (%zu bytes)",
                      req_len);
  }
  /* What protobuf-c lets through but other runtimes refuse; echoed back in original_request,
   * it would make the answer unreadable to the client (found by reflect_fuzz). */
  mu_err bad = {0};
  if (mu_pbjson_proto3_check(&rq->base, &bad) != 0) {
    protobuf_c_message_free_unpacked(&rq->base, NULL);
    return mu_err_set(err, MU_EINVAL, "reflection: request is not a valid ServerReflectionRequest: %s", bad.msg);
  }
  grpc__reflection__v1__server_reflection_response__init(&a.resp);
  grpc__reflection__v1__file_descriptor_response__init(&a.files);
  grpc__reflection__v1__list_service_response__init(&a.list);
  grpc__reflection__v1__extension_number_response__init(&a.exts);
  grpc__reflection__v1__error_response__init(&a.error);
  a.resp.valid_host = rq->host;
  a.resp.original_request = rq;
  rc = dispatch(idx, rq, &a, err);
  if (rc < 0) {
    goto done;
  }
  size_t len = grpc__reflection__v1__server_reflection_response__get_packed_size(&a.resp);
  buf = malloc(len > 0 ? len : 1);
  if (buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory answering reflection");
    goto done;
  }
  grpc__reflection__v1__server_reflection_response__pack(&a.resp, buf);
  *ret_resp = buf;
  *ret_resp_len = len;
done:
  free(a.file_data);
  free(a.svc);
  free(a.svc_ptrs);
  free(a.numbers);
  grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
  return rc;
}
