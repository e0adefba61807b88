/* The one error idiom: functions that can fail return 0 or a negative MU_E* code and fill a
 * caller-owned mu_err with a message naming the bad thing. Codes are negated errno values
 * (as in libuv), so mu_strerror() and strerror(-code) agree. */
#ifndef MU_ERR_H
#define MU_ERR_H

#include <errno.h>
#include <stddef.h>

#define MU_EINVAL (-EINVAL) /* bad input: spec, config, message */
#define MU_ENOMEM (-ENOMEM)
#define MU_EIO (-EIO)       /* I/O or peer failure */
#define MU_ENOENT (-ENOENT) /* no such thing */
#define MU_EEXIST (-EEXIST) /* already there */
#define MU_ETIMEDOUT (-ETIMEDOUT)
#define MU_ECANCELED (-ECANCELED)
#define MU_ENOSPC (-ENOSPC) /* a bound was hit */
#define MU_EPERM (-EPERM)   /* refused by policy or trust */
#define MU_EAGAIN (-EAGAIN) /* try again later (not leader, etcd down, ...) */
#define MU_ENOTSUP (-ENOTSUP)

#define MU_ERR_MSG_MAX 512

typedef struct mu_err {
  int code;                 /* 0 or a MU_E* code */
  char msg[MU_ERR_MSG_MAX]; /* human message, empty when code is 0 */
} mu_err;

/* Sets err (when non-NULL) to code and a printf-style message; returns code, so callers can
 * write `return mu_err_set(err, MU_EINVAL, "field %s: ...", name);`. */
int mu_err_set(mu_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with "prefix: " (e.g. a file name); returns err->code. */
int mu_err_prefix(mu_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void mu_err_clear(mu_err *err);

/* A short name for a code ("invalid argument", ...). Never NULL. */
const char *mu_strerror(int code);

#endif
