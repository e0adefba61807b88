/* An attempt's secrets (the spec's `secrets`, with the values the control plane delivered in
 * the assign): env entries, 0400 files in a memory-only directory (secret_dir.h) announced as
 * MUSTER_SECRETS_DIR and NAME_FILE, and the redactor that every output stream, message,
 * progress text and param of the attempt passes through before it leaves the runner. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/exec/task_int.h"

int mu_task_secrets_prepare(muster_task *t, bool chown_to, mu_err *err) {
  const mu_task_spec *spec = t->spec;
  size_t n = spec->n_secrets, bytes = 0, k = 0;
  bool files = false;
  t->secret_env = calloc(n + 2, sizeof *t->secret_env);
  const void **values = calloc(n + 1, sizeof *values);
  size_t *lens = calloc(n + 1, sizeof *lens);
  int rc = t->secret_env && values && lens ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    values[i] = spec->secrets[i].value;
    lens[i] = strlen(spec->secrets[i].value);
    bytes += lens[i];
    files |= spec->secrets[i].as_file;
  }
  if (rc == 0 && n > 0) rc = mu_redactor_new(values, lens, n, &t->redactor, err);
  for (int s = 0; s < 2; s++) mu_redact_stream_init(&t->redact[s], t->redactor);
  if (rc == 0 && files)
    rc = mu_secret_dir_create(t->task_dir, t->runner->agent_id, bytes, chown_to, t->run_as.uid, t->run_as.gid,
                              &t->secret_dir, err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const mu_spec_secret *sec = &spec->secrets[i];
    char *kv = NULL, *path = NULL;
    if (sec->as_file) {
      rc = mu_secret_dir_write(t->secret_dir, sec->name, sec->value, lens[i], &path, err);
      if (rc == 0 && asprintf(&kv, "%s_FILE=%s", sec->name, path) < 0) kv = NULL;
      free(path);
    } else if (asprintf(&kv, "%s=%s", sec->name, sec->value) < 0) {
      kv = NULL;
    }
    if (rc == 0 && kv == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    if (rc == 0) t->secret_env[k++] = kv;
  }
  if (rc == 0 && files && asprintf(&t->secret_env[k], "MUSTER_SECRETS_DIR=%s", mu_secret_dir_path(t->secret_dir)) < 0) {
    t->secret_env[k] = NULL;
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  free(values);
  free(lens);
  return rc;
}

void mu_task_secrets_flush(muster_task *t) {
  for (int s = 0; s < 2; s++) {
    const void *out;
    size_t len;
    mu_redact_stream_flush(&t->redact[s], &out, &len);
    if (len > 0) mu_task_emit_output_redacted(t, s + 1, out, len);
  }
}

void mu_task_secrets_release(muster_task *t) {
  mu_secret_dir_wipe(t->secret_dir);
  t->secret_dir = NULL;
  for (int s = 0; s < 2; s++) mu_redact_stream_free(&t->redact[s]);
  mu_redactor_free(t->redactor);
  t->redactor = NULL;
  for (int s = 0; s < 2; s++) mu_redact_stream_init(&t->redact[s], NULL);
  if (t->secret_env != NULL) {
    for (size_t i = 0; t->secret_env[i] != NULL; i++) {
      explicit_bzero(t->secret_env[i], strlen(t->secret_env[i]));
      free(t->secret_env[i]);
    }
    free(t->secret_env);
    t->secret_env = NULL;
  }
}
