/* ${secret.NAME} references in spec strings (see secret_refs.h). */
#include "secret_refs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

int muster_secret_refs_substitute(json_t *secrets, const char *in, const char *field, char **ret, char *errbuf) {
  size_t cap = strlen(in) + 1, n = 0;
  char *out = malloc(cap);
  if (out == NULL) return -ENOMEM;
  const char *p = in;
  while (*p) {
    const char *ref = strstr(p, "${secret.");
    size_t lit = ref ? (size_t)(ref - p) : strlen(p);
    const char *val = NULL;
    size_t skip = lit;
    if (ref != NULL) {
      const char *close = strchr(ref, '}');
      if (close == NULL) {
        free(out);
        snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: unterminated ${secret.NAME}", field);
        return -EINVAL;
      }
      size_t nl = (size_t)(close - ref) - 9;
      size_t i;
      json_t *e;
      json_array_foreach(secrets, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name != NULL && strlen(name) == nl && strncmp(name, ref + 9, nl) == 0)
          val = json_string_value(json_object_get(e, "value"));
      }
      if (val == NULL) {
        free(out);
        snprintf(errbuf, MUSTER_ERRBUF_SIZE, "%s: unknown secret \"%.*s\" (not in the task's secrets)", field, (int)nl,
                 ref + 9);
        return -EINVAL;
      }
      skip = (size_t)(close - p) + 1;
    }
    size_t need = n + lit + (val ? strlen(val) : 0) + 1;
    if (need > cap) {
      char *g = realloc(out, need);
      if (g == NULL) {
        free(out);
        return -ENOMEM;
      }
      out = g;
      cap = need;
    }
    memcpy(out + n, p, lit);
    n += lit;
    if (val != NULL) {
      memcpy(out + n, val, strlen(val));
      n += strlen(val);
    }
    p += skip;
  }
  out[n] = '\0';
  *ret = out;
  return 0;
}
