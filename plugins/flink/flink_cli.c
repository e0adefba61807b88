/* Building `flink` command lines and reading their output (flink_cli.h). The JobID is fixed
 * with `-D$internal.pipeline.job-id` (how Flink's application mode and the Kubernetes operator
 * pin it), and read back from the CLI's own line, which wins. */
#include "flink_cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct argv_buf {
  char **v;
  size_t n;
  int rc;
} argv_buf;

static void add(argv_buf *b, const char *fmt, const char *a, const char *c) {
  if (b->rc != 0) return;
  if (b->n + 1 >= MU_FLINK_CLI_MAX_ARGV) {
    b->rc = -ENOMEM;
    return;
  }
  size_t len = strlen(fmt) + (a ? strlen(a) : 0) + (c ? strlen(c) : 0) + 1;
  char *s = malloc(len);
  if (s == NULL) {
    b->rc = -ENOMEM;
    return;
  }
  snprintf(s, len, fmt, a ? a : "", c ? c : "");
  b->v[b->n++] = s;
}

#define MU_FLINK_SHUTDOWN_KEY "execution.shutdown-on-application-finish"

int mu_flink_keeps_cluster(const mu_flink_spec *s) {
  if (s->target != MU_FLINK_TARGET_K8S_APPLICATION) return 0;
  for (size_t i = 0; i < s->n_conf; i++)
    if (strcmp(s->conf[i].key, MU_FLINK_SHUTDOWN_KEY) == 0) return strcmp(s->conf[i].value, "false") == 0;
  return 1;
}

static int conf_has(const mu_flink_spec *s, const char *key) {
  for (size_t i = 0; i < s->n_conf; i++)
    if (strcmp(s->conf[i].key, key) == 0) return 1;
  return 0;
}

int mu_flink_cli_argv(const mu_flink_spec *s, const char *flink_bin, const char *program, const char *job_id,
                      char ***ret_argv) {
  argv_buf b = {.v = calloc(MU_FLINK_CLI_MAX_ARGV, sizeof(char *))};
  if (b.v == NULL) return -ENOMEM;
  add(&b, "%s", flink_bin, NULL);
  bool sql = s->program == MU_FLINK_PROGRAM_SQL;
  const char *target = NULL;
  switch (s->target) {
    case MU_FLINK_TARGET_YARN_APPLICATION: target = "yarn-application"; break;
    case MU_FLINK_TARGET_K8S_APPLICATION: target = "kubernetes-application"; break;
    case MU_FLINK_TARGET_YARN_PER_JOB: target = "yarn-per-job"; break;
    case MU_FLINK_TARGET_LOCAL: target = "local"; break;
    case MU_FLINK_TARGET_SESSION: target = "remote"; break;
  }
  bool application = s->target == MU_FLINK_TARGET_YARN_APPLICATION || s->target == MU_FLINK_TARGET_K8S_APPLICATION;
  if (!sql) {
    add(&b, application ? "run-application" : "run", NULL, NULL);
    if (!application && s->target != MU_FLINK_TARGET_LOCAL) add(&b, "--detached", NULL, NULL);
    add(&b, "-t", NULL, NULL);
    add(&b, "%s", target, NULL);
  } else {
    add(&b, "-Dexecution.target=%s", target, NULL);
  }
  if (s->target == MU_FLINK_TARGET_SESSION && s->rest_url != NULL) {
    const char *hp = strstr(s->rest_url, "://");
    add(&b, "-Drest.address=%s", hp ? hp + 3 : s->rest_url, NULL);
  }
  add(&b, "-D$internal.pipeline.job-id=%s", job_id, NULL);
  for (size_t i = 0; i < s->n_conf; i++) add(&b, "-D%s=%s", s->conf[i].key, s->conf[i].value);
  if (mu_flink_keeps_cluster(s) && !conf_has(s, MU_FLINK_SHUTDOWN_KEY))
    add(&b, "-D%s=false", MU_FLINK_SHUTDOWN_KEY, NULL);
  char num[16];
  snprintf(num, sizeof num, "%u", s->parallelism);
  if (s->parallelism > 0) add(&b, "-Dparallelism.default=%s", num, NULL);
  if (s->savepoint_path != NULL) {
    add(&b, "-Dexecution.savepoint.path=%s", s->savepoint_path, NULL);
    if (s->allow_non_restored_state) add(&b, "-Dexecution.savepoint.ignore-unclaimed-state=true", NULL, NULL);
    if (s->restore_mode != NULL) add(&b, "-Dexecution.savepoint-restore-mode=%s", s->restore_mode, NULL);
  }
  if (sql) {
    add(&b, "-f", NULL, NULL);
    add(&b, "%s", program, NULL);
  } else {
    if (s->entry_class != NULL) {
      add(&b, "-c", NULL, NULL);
      add(&b, "%s", s->entry_class, NULL);
    }
    if (s->program == MU_FLINK_PROGRAM_PYTHON) add(&b, "-py", NULL, NULL);
    add(&b, "%s", program, NULL);
    for (size_t i = 0; i < s->n_args; i++) add(&b, "%s", s->args[i], NULL);
  }
  if (b.rc != 0) {
    mu_flink_cli_argv_free(b.v);
    return b.rc;
  }
  *ret_argv = b.v;
  return 0;
}

void mu_flink_cli_argv_free(char **argv) {
  if (argv == NULL) return;
  for (size_t i = 0; argv[i] != NULL; i++) free(argv[i]);
  free(argv);
}

/* Copies the token at p (up to whitespace or a quote) into ret. */
static void token(const char *p, const char *end, char *ret, size_t size) {
  size_t n = 0;
  while (p < end && n + 1 < size && !isspace((unsigned char)*p) && *p != '\'' && *p != '"' && (unsigned char)*p >= 0x21)
    ret[n++] = *p++;
  ret[n] = '\0';
}

static void scan_line(const char *l, const char *end, mu_flink_cli_facts *f) {
  static const char submitted[] = "Job has been submitted with JobID ";
  static const char savepoint[] = "Savepoint completed. Path: ";
  static const char web[] = "JobManager Web Interface: ";
  static const char found_web[] = "Found Web Interface ";
  static const char sql_job[] = "Job ID: ";
  size_t len = (size_t)(end - l);
  char line[2048];
  if (len >= sizeof line) len = sizeof line - 1;
  memcpy(line, l, len);
  line[len] = '\0';
  for (size_t i = 0; i < len; i++)
    if (line[i] == '\0') line[i] = ' ';
  const char *p;
  p = strstr(line, submitted);
  if (p != NULL) {
    char id[64];
    token(p + sizeof submitted - 1, line + len, id, sizeof id);
    for (char *c = id; *c; c++) *c = (char)tolower((unsigned char)*c);
    if (mu_flink_job_id_valid(id)) memcpy(f->job_id, id, sizeof f->job_id);
  }
  p = strstr(line, sql_job);
  if (p != NULL && p == line) { /* sql-client.sh: "Job ID: <id>" */
    char id[64];
    token(p + sizeof sql_job - 1, line + len, id, sizeof id);
    if (mu_flink_job_id_valid(id)) memcpy(f->job_id, id, sizeof f->job_id);
  }
  p = strstr(line, savepoint);
  if (p != NULL) token(p + sizeof savepoint - 1, line + len, f->savepoint_path, sizeof f->savepoint_path);
  p = strstr(line, web);
  if (p != NULL) token(p + sizeof web - 1, line + len, f->web_url, sizeof f->web_url);
  p = strstr(line, found_web);
  if (p != NULL) { /* "Found Web Interface host:port of application 'app'." */
    char hp[200];
    token(p + sizeof found_web - 1, line + len, hp, sizeof hp);
    if (hp[0] != '\0') snprintf(f->web_url, sizeof f->web_url, "http://%s", hp);
  }
  p = strstr(line, "application_");
  if (p != NULL) {
    char id[64];
    token(p, line + len, id, sizeof id);
    size_t n = strlen(id);
    while (n > 0 && (id[n - 1] == '.' || id[n - 1] == ',')) id[--n] = '\0';
    /* application_<digits>_<digits> */
    const char *q = id + 12;
    int parts = 0;
    bool ok = true;
    while (*q && ok) {
      const char *start = q;
      while (isdigit((unsigned char)*q)) q++;
      ok = q > start;
      parts++;
      if (*q == '_') q++;
      else if (*q != '\0') ok = false;
    }
    if (ok && parts == 2) memcpy(f->yarn_app_id, id, n + 1);
  }
}

void mu_flink_cli_scan(const char *out, size_t len, mu_flink_cli_facts *facts) {
  const char *p = out, *end = out + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    scan_line(p, le, facts);
    p = nl ? nl + 1 : end;
  }
}
