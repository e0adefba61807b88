/* The layer list as overlay's lowerdir (layers_list.h). */
#include "plugins/container/layers_list.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define HEX_LEN 64

static bool layer_line(const char *l, size_t len) {
  if (len != 7 + HEX_LEN || strncmp(l, "layers/", 7) != 0) return false;
  for (size_t i = 7; i < len; i++)
    if (!((l[i] >= '0' && l[i] <= '9') || (l[i] >= 'a' && l[i] <= 'f'))) return false;
  return true;
}

int mu_layers_lowerdir(const char *store, const char *list, char *buf, size_t cap, char *why, size_t why_cap) {
  const char *start[MU_LAYERS_LIST_MAX];
  size_t n = 0;
  if (cap > 0) buf[0] = '\0';
  if (strpbrk(store, ",:") != NULL) {
    snprintf(why, why_cap, "store path \"%.200s\" has ',' or ':'", store);
    return -1;
  }
  for (const char *p = list; *p != '\0';) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > 0) {
      if (n == MU_LAYERS_LIST_MAX) {
        snprintf(why, why_cap, "more than %d layers", MU_LAYERS_LIST_MAX);
        return -1;
      }
      if (!layer_line(p, len)) {
        snprintf(why, why_cap, "line %zu: not \"layers/<64 hex>\"", n + 1);
        return -1;
      }
      start[n++] = p;
    }
    p += len + (e != NULL);
  }
  if (n == 0) {
    snprintf(why, why_cap, "no layers");
    return -1;
  }
  size_t used = 0;
  while (n-- > 0) {
    int w = snprintf(buf + used, cap - used, "%s%s/%.*s", used ? ":" : "", store, 7 + HEX_LEN, start[n]);
    if (w < 0 || (size_t)w >= cap - used) {
      snprintf(why, why_cap, "too many layers for one overlay mount");
      if (cap > 0) buf[0] = '\0';
      return -1;
    }
    used += (size_t)w;
  }
  return 0;
}
