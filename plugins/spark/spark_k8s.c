/* Driver pods by label from the Kubernetes API (spark_k8s.h), with jansson; every copied
 * string is bounded by its field's buffer. */
#include "spark_k8s.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void copy_str(char *dst, size_t size, json_t *v) {
  const char *s = json_string_value(v);
  snprintf(dst, size, "%s", s ? s : "");
}

/* Label keys and values are [A-Za-z0-9._/-]; anything else is percent-encoded. */
static size_t put_escaped(char *buf, size_t size, size_t n, const char *s) {
  for (; *s && n + 4 < size; s++) {
    unsigned char ch = (unsigned char)*s;
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
    if (plain) buf[n++] = (char)ch;
    else n += (size_t)snprintf(buf + n, size - n, "%%%02X", ch);
  }
  if (*s) return size;
  buf[n] = '\0';
  return n;
}

int mu_spark_k8s_pods_url(const char *api, const char *ns, const char *key, const char *value, char *buf, size_t size) {
  int w = snprintf(buf, size, "%s/api/v1/namespaces/", api);
  if (w < 0 || (size_t)w >= size) return -1;
  size_t n = put_escaped(buf, size, (size_t)w, ns && *ns ? ns : "default");
  if (n >= size) return -1;
  w = snprintf(buf + n, size - n, "/pods?labelSelector=spark-role%%3Ddriver%%2C");
  if (w < 0 || (size_t)w >= size - n) return -1;
  n = put_escaped(buf, size, n + (size_t)w, key);
  if (n + 4 >= size) return -1;
  memcpy(buf + n, "%3D", 4);
  n = put_escaped(buf, size, n + 3, value);
  return n >= size ? -1 : 0;
}

int mu_spark_k8s_pods_parse(const char *body, size_t len, mu_spark_k8s_pod *ret, size_t max, char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  int rc = -1;
  const char *kind = json_string_value(json_object_get(j, "kind"));
  json_t *items = json_object_get(j, "items");
  if (kind != NULL && strcmp(kind, "Status") == 0) {
    const char *reason = json_string_value(json_object_get(j, "reason"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    snprintf(why, MU_SPARK_TEXT_MAX, "%s: %s", reason ? reason : "Status", msg ? msg : "");
    goto done;
  }
  if (!json_is_array(items)) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"items\" array (not a PodList)");
    goto done;
  }
  size_t i, n = 0;
  json_t *p;
  json_array_foreach(items, i, p) {
    if (n >= max) break;
    json_t *md = json_object_get(p, "metadata");
    mu_spark_k8s_pod *o = &ret[n];
    memset(o, 0, sizeof *o);
    copy_str(o->name, sizeof o->name, json_object_get(md, "name"));
    if (o->name[0] == '\0') continue;
    copy_str(o->namespace_, sizeof o->namespace_, json_object_get(md, "namespace"));
    copy_str(o->phase, sizeof o->phase, json_object_get(json_object_get(p, "status"), "phase"));
    copy_str(o->attempt, sizeof o->attempt, json_object_get(json_object_get(md, "labels"), "muster-attempt"));
    o->deleting = json_is_string(json_object_get(md, "deletionTimestamp"));
    o->created_order = (long)i;
    n++;
  }
  rc = (int)n;
done:
  json_decref(j);
  return rc;
}

void mu_spark_k8s_label_value(const char *tag, char *buf) {
  size_t n = strlen(tag);
  if (n <= MU_SPARK_K8S_LABEL_MAX) {
    memcpy(buf, tag, n + 1);
    return;
  }
  uint64_t h = 1469598103934665603ull; /* FNV-1a: a stable short name, not a security measure */
  for (const char *p = tag; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  snprintf(buf, MU_SPARK_K8S_LABEL_MAX + 1, "%.50s-%012llx", tag, (unsigned long long)(h & 0xffffffffffffull));
}
