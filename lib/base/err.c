/* mu_err: the error value every fallible function fills (see err.h). */
#include "lib/base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mu_err_set(mu_err *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

int mu_err_prefix(mu_err *err, const char *fmt, ...) {
  if (err == NULL) return 0;
  char prefix[MU_ERR_MSG_MAX];
  char old[MU_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
  return err->code;
}

void mu_err_clear(mu_err *err) {
  if (err == NULL) return;
  err->code = 0;
  err->msg[0] = '\0';
}

const char *mu_strerror(int code) {
  if (code == 0) return "ok";
  if (code < 0) return strerror(-code);
  return "unknown error";
}
