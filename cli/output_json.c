/* The CLI's JSON lines (output_json.h): proto messages through lib/pbjson with every field
 * present and numbers as numbers, then renamed to the names every command shares. */
#include "cli/output_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jobcounts/jobcounts.h"
#include "lib/pbjson/pbjson.h"

#define JSON_FLAGS (MU_PBJSON_EMIT_DEFAULTS | MU_PBJSON_INT64_AS_NUMBERS | MU_PBJSON_EMIT_UNSET_MESSAGES)

static void rename_key(json_t *obj, const char *from, const char *to) {
  json_t *v = json_object_get(obj, from);
  if (v == NULL) return;
  json_object_set(obj, to, v);
  json_object_del(obj, from);
}

static void shape_task_run(const Muster__V1__TaskRun *t, json_t *obj) {
  int code;
  if (!mu_task_run_exit(t, &code)) json_object_set_new(obj, "exitCode", json_null());
}

/* No bare "id" anywhere: a message's own id is named after what it is ("jobId", "auditId",
 * "memberId", "tokenId"), at every depth. */
static void rename_ids(const ProtobufCMessageDescriptor *d, json_t *obj) {
  if (!json_is_object(obj)) return;
  if (json_object_get(obj, "id") != NULL) {
    static const struct {
      const char *type, *name;
    } names[] = {{"Job", "jobId"},
                 {"AuditRecord", "auditId"},
                 {"Member", "memberId"},
                 {"TokenInfo", "tokenId"},
                 {"CreateTokenResponse", "tokenId"}};
    char buf[80];
    const char *to = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && to == NULL; i++)
      if (strcmp(d->short_name, names[i].type) == 0) to = names[i].name;
    if (to == NULL) {
      snprintf(buf, sizeof buf, "%sId", d->short_name);
      if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
      to = buf;
    }
    /* the new name goes first, where "id" was read by people */
    json_t *v = json_incref(json_object_get(obj, "id"));
    json_t *copy = json_object();
    json_object_set_new(copy, to, v);
    json_object_del(obj, "id");
    json_object_update(copy, obj);
    json_object_clear(obj);
    json_object_update(obj, copy);
    json_decref(copy);
  }
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    char camel[128];
    size_t k = 0;
    for (const char *p = f->name; *p && k < sizeof camel - 1; p++) {
      if (*p == '_' && p[1] != '\0') camel[k++] = (char)(*++p >= 'a' && *p <= 'z' ? *p - 32 : *p);
      else camel[k++] = *p;
    }
    camel[k] = '\0';
    json_t *v = json_object_get(obj, camel);
    const ProtobufCMessageDescriptor *sub = f->descriptor;
    if (json_is_array(v)) {
      for (size_t j = 0; j < json_array_size(v); j++) rename_ids(sub, json_array_get(v, j));
    } else if (json_is_object(v) && f->label != PROTOBUF_C_LABEL_REPEATED) {
      rename_ids(sub, v);
    }
  }
}

static void shape_job(const Muster__V1__Job *job, json_t *obj) {
  rename_key(obj, "unreachable", "unreachableHosts");
  static const char *const flat[] = {"pending", "running", "succeeded", "failed"};
  for (size_t i = 0; i < sizeof flat / sizeof flat[0]; i++) json_object_del(obj, flat[i]);
  /* task runs are lines of their own ("kind":"task"), never nested in the job's line */
  (void)job;
  json_object_del(obj, "tasks");
}

json_t *mu_cli_json_of(const ProtobufCMessage *msg) {
  json_t *obj = NULL;
  mu_err err = {0};
  if (mu_pbjson_to_json(msg, JSON_FLAGS, &obj, &err) != 0) return NULL;
  rename_ids(msg->descriptor, obj);
  if (msg->descriptor == &muster__v1__job__descriptor) shape_job((const Muster__V1__Job *)msg, obj);
  else if (msg->descriptor == &muster__v1__task_run__descriptor) shape_task_run((const Muster__V1__TaskRun *)msg, obj);
  return obj;
}

char *mu_cli_json_line(const char *kind, json_t *obj) {
  if (obj == NULL) return NULL;
  json_t *line = json_object();
  char *text = NULL;
  if (line != NULL && json_object_set_new(line, "schema", json_integer(MU_CLI_JSON_SCHEMA)) == 0 &&
      json_object_set_new(line, "kind", json_string(kind)) == 0 && json_object_update(line, obj) == 0)
    text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(16));
  json_decref(line);
  json_decref(obj);
  return text;
}

int mu_cli_json_emit(const char *kind, json_t *obj) {
  char *text = mu_cli_json_line(kind, obj);
  if (text == NULL) {
    fprintf(stderr, "muster: cannot print JSON: out of memory\n");
    return 1;
  }
  int rc = 0;
  if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF) {
    fprintf(stderr, "muster: cannot print JSON: write error\n");
    rc = 1;
  }
  fflush(stdout);
  free(text);
  return rc;
}

int mu_cli_json_emit_camel(const char *kind, json_t *obj) {
  if (obj == NULL) return mu_cli_json_emit(kind, NULL);
  json_t *camel = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    char name[128];
    size_t k = 0;
    for (const char *p = key; *p && k < sizeof name - 1; p++) {
      if (*p == '_' && p[1] >= 'a' && p[1] <= 'z') name[k++] = (char)(*++p - 'a' + 'A');
      else name[k++] = *p;
    }
    name[k] = '\0';
    json_object_set(camel, name, v);
  }
  json_decref(obj);
  return mu_cli_json_emit(kind, camel);
}

/* The kind of a line that prints one message of type desc. */
static const char *kind_of(const ProtobufCMessageDescriptor *desc, char *buf, size_t size) {
  static const struct {
    const char *type, *kind;
  } kinds[] = {{"AgentInfo", "agent"},   {"Job", "job"},           {"TaskRun", "task"},
               {"AuditRecord", "audit"}, {"BundleInfo", "bundle"}, {"TokenInfo", "token"},
               {"SecretInfo", "secret"}, {"Cluster", "cluster"},   {"LogChunk", "log"}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(desc->short_name, kinds[i].type) == 0) return kinds[i].kind;
  snprintf(buf, size, "%s", desc->short_name);
  if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

int mu_cli_json_message(const char *kind, const ProtobufCMessage *msg) {
  char name[64];
  if (kind == NULL) kind = kind_of(msg->descriptor, name, sizeof name);
  return mu_cli_json_emit(kind, mu_cli_json_of(msg));
}

char *mu_cli_json_message_line(const ProtobufCMessage *msg) {
  char name[64];
  return mu_cli_json_line(kind_of(msg->descriptor, name, sizeof name), mu_cli_json_of(msg));
}
