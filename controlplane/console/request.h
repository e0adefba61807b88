/* What a web console request asks for, decided from its method, path, query values and
 * Authorization header alone (no daemon state): the route (a page, a static file, or one of
 * the JSON endpoints with its job id, host and task), and the checked query parameters.
 * Everything here parses bytes from the network, so it is bounded and fuzzed
 * (console_request_fuzz). Any thread. */
#ifndef MU_CONSOLE_REQUEST_H
#define MU_CONSOLE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define MU_CONSOLE_PATH_MAX 1024 /* a longer path is 414 */
#define MU_CONSOLE_ID_MAX 128    /* job id, agent id */
#define MU_CONSOLE_TASK_MAX 256  /* task name */
#define MU_CONSOLE_SELECTOR_MAX 1024
#define MU_CONSOLE_TOKEN_MAX 256 /* a bearer token past this is refused unread */

typedef enum {
  MU_CONSOLE_NOT_FOUND = 0,  /* nothing here: 404 (a page path gets the 404 page) */
  MU_CONSOLE_PAGE,           /* the single page (/, /jobs, /jobs/ID, /login) */
  MU_CONSOLE_STATIC,         /* /static/NAME: a file embedded from web/ */
  MU_CONSOLE_API_WHOAMI,     /* /api/v1/whoami: who the credentials prove */
  MU_CONSOLE_API_AGENTS,     /* /api/v1/agents */
  MU_CONSOLE_API_JOBS,       /* /api/v1/jobs */
  MU_CONSOLE_API_JOB,        /* /api/v1/jobs/ID */
  MU_CONSOLE_API_JOB_EVENTS, /* /api/v1/jobs/ID/events (server-sent events) */
  MU_CONSOLE_API_TASK_LOG,   /* /api/v1/jobs/ID/logs/HOST/TASK */
  MU_CONSOLE_API_SCHEDULES,  /* /api/v1/schedules */
  MU_CONSOLE_API_UNKNOWN,    /* under /api/ but no endpoint: a 404 JSON answer */
} mu_console_route_kind;

typedef struct mu_console_route {
  mu_console_route_kind kind;
  char job_id[MU_CONSOLE_ID_MAX + 1];
  char host[MU_CONSOLE_ID_MAX + 1];
  char task[MU_CONSOLE_TASK_MAX + 1];
  char static_name[64]; /* MU_CONSOLE_STATIC: the file name after /static/ */
  int page_is_404;      /* MU_CONSOLE_PAGE served for a path that is no page */
} mu_console_route;

/* HTTP status codes the parser answers with. */
#define MU_CONSOLE_HTTP_OK 200
#define MU_CONSOLE_HTTP_BAD_REQUEST 400
#define MU_CONSOLE_HTTP_NOT_FOUND 404
#define MU_CONSOLE_HTTP_METHOD 405
#define MU_CONSOLE_HTTP_URI_TOO_LONG 414

/* Routes path (already percent-decoded, as libmicrohttpd hands it over) for method. Returns
 * 200 with *ret filled (kind MU_CONSOLE_NOT_FOUND for paths with nothing, which the caller
 * answers 404), 405 for a method other than GET or HEAD, 414 for a path past
 * MU_CONSOLE_PATH_MAX, 400 for a path with control bytes, an empty or "."/".." segment in
 * an id, or an id past its bound; msg says why (never echoing more than 64 bytes). */
int mu_console_route_parse(const char *method, const char *path, mu_console_route *ret, char *msg, size_t size);

/* The token of an Authorization header "Bearer T" (scheme case-insensitive, spaces after it
 * skipped, trailing spaces dropped) copied into out. Returns 1 with the token, 0 when header
 * is NULL or empty (no credentials), -1 when it is another scheme, an empty token, a token
 * with bytes outside the base64url/underscore alphabet, or longer than MU_CONSOLE_TOKEN_MAX
 * (refused unread). */
int mu_console_bearer(const char *header, char *out, size_t size);

/* Query values. NULL value: *ret gets def and 0 is returned. */
/* A decimal integer in [0, max]; -1 for anything else (sign, spaces, overflow, empty). */
int mu_console_param_uint(const char *value, uint64_t def, uint64_t max, uint64_t *ret);
/* A job state filter: "running", "succeeded", "failed", "cancelled", "pending" or the
 * proto names (JOB_RUNNING, ...); *ret gets the Muster__V1__JobState number, 0 for "" or
 * "all". -1 when unknown. */
int mu_console_param_job_state(const char *value, int *ret);
/* A selector: copied to out when shorter than MU_CONSOLE_SELECTOR_MAX and free of control
 * bytes (its syntax is lib/selector's to judge); -1 otherwise. NULL value: out = "". */
int mu_console_param_selector(const char *value, char *out, size_t size);
/* An id given as a paging cursor ("after"): the same rules as ids in paths. -1 otherwise. */
int mu_console_param_id(const char *value, char *out, size_t size);

#endif
