/* The names Muster's certificates carry: peer names (like agent ids), the three kinds and the
 * three admin roles, checked the same way when issuing (issue.c) and when reading a peer's
 * certificate (peer.c). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/pki/internal.h"
#include "lib/pki/pki.h"

const char *const mu__pki_kinds[] = {"server", "agent", "admin", NULL};
const char *const mu__pki_roles[] = {"viewer", "operator", "admin", NULL};

bool mu__pki_one_of(const char *s, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcmp(s, *list) == 0) return true;
  return false;
}

int mu__pki_check_name(const char *what, const char *name, mu_err *err) {
  if (name == NULL || name[0] == '\0') return mu_err_set(err, MU_EINVAL, "%s is required", what);
  size_t n = strlen(name);
  if (n > MU_PKI_NAME_MAX) {
    return mu_err_set(err, MU_EINVAL, "%s '%.32s...' is %zu characters long, at most %d allowed", what, name, n,
                      MU_PKI_NAME_MAX);
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (isalnum(c) || c == '.' || c == '_' || c == '-') continue;
    char shown[8];
    if (isprint(c)) {
      snprintf(shown, sizeof shown, "'%c'", c);
    } else {
      snprintf(shown, sizeof shown, "\\x%02x", c);
    }
    return mu_err_set(err, MU_EINVAL, "%s '%s': character %s is not allowed (only A-Z a-z 0-9 . _ -)", what,
                      isprint(c) ? name : "(unprintable)", shown);
  }
  return 0;
}

int mu__pki_check_days(int days, int def, int *ret, mu_err *err) {
  if (days == 0) days = def;
  if (days < 1 || days > MU_PKI_MAX_DAYS) {
    return mu_err_set(err, MU_EINVAL, "days must be 1..%d, got %d", MU_PKI_MAX_DAYS, days);
  }
  *ret = days;
  return 0;
}
