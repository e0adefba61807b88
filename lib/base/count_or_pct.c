/* count_or_pct.h */
#include "lib/base/count_or_pct.h"

#include <ctype.h>
#include <stdlib.h>

int mu_count_or_pct_parse(const char *text, uint32_t *ret_count, uint32_t *ret_pct, mu_err *err) {
  char *end;
  if (text == NULL || !isdigit((unsigned char)text[0]))
    return mu_err_set(err, MU_EINVAL, "expected a count like \"10\" or a percentage like \"25%%\", got \"%s\"",
                      text ? text : "");
  unsigned long v = strtoul(text, &end, 10);
  if (*end == '%' && end[1] == '\0') {
    if (v == 0 || v > 100) return mu_err_set(err, MU_EINVAL, "percentage must be 1%%..100%%, got \"%s\"", text);
    *ret_count = 0;
    *ret_pct = (uint32_t)v;
    return 0;
  }
  if (*end != '\0' || v > 1000000)
    return mu_err_set(err, MU_EINVAL, "expected a count like \"10\" or a percentage like \"25%%\", got \"%s\"", text);
  *ret_count = (uint32_t)v;
  *ret_pct = 0;
  return 0;
}
