/* One JSON call to a cluster manager on the agent's loop (libcurl multi shared per loop, see
 * plugins/http/http_multi.h): method, URL, optional JSON body, a timeout, a bounded answer
 * (MU_SPARK_HTTP_MAX_BODY) and the Location header; redirects are not followed, so the caller
 * sees a standby ResourceManager's 307 and picks the active one itself. */
#ifndef MU_SPARK_HTTP_H
#define MU_SPARK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define MU_SPARK_HTTP_MAX_BODY (512 * 1024)

typedef struct mu_spark_call mu_spark_call;

typedef struct mu_spark_reply {
  long status;      /* 0 when no answer came */
  const char *body; /* NUL-terminated, may be "" */
  size_t len;
  const char *location; /* Location header or NULL */
  const char *error;    /* transport error text, NULL when an answer came */
} mu_spark_reply;

/* Runs once on the loop; the reply is valid during the call only. */
typedef void (*mu_spark_call_cb)(void *arg, const mu_spark_reply *r);

/* Credentials for a cluster's REST endpoint, borrowed for the call's start only (libcurl copies
 * them): HTTP Basic (user and password) or a bearer token (`Authorization: Bearer`, also how a
 * standalone master behind Spark's JWSFilter takes its JWS). All NULL: no Authorization. Livy's
 * CSRF header (X-Requested-By) is sent on every call. */
typedef struct mu_spark_auth {
  const char *user, *password;
  const char *token;
  const char *ca_file; /* PEM CA bundle for https (a Kubernetes API server's CA); NULL: the system's */
  /* SPNEGO (HTTP Negotiate) with the process's Kerberos credentials (KRB5CCNAME, or MIT's client
   * keytab KRB5_CLIENT_KTNAME): libcurl's GSS-API. The first exchange with the KDC for a ticket
   * runs inside libcurl's call on the loop (GSS-API has no asynchronous interface); later calls
   * use the cached tickets. */
  bool negotiate;
} mu_spark_auth;

/* Starts a call (auth may be NULL). *ret is the caller's handle until cb runs (then it is freed) or it is
 * cancelled. 0, or -ENOMEM / -EIO. */
int mu_spark_call_start(uv_loop_t *loop, const char *method, const char *url, const char *json_body, long timeout_ms,
                        const mu_spark_auth *auth, mu_spark_call_cb cb, void *arg, mu_spark_call **ret);
/* Aborts a call: cb will not run. Safe with NULL. */
void mu_spark_call_cancel(mu_spark_call *c);

#endif
