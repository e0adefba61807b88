/* libFuzzer: musterd `queues:` settings ("NAME.SETTING=value" lines, as the config file gives
 * them) applied to a queue table, then a job's queue checked and a pass run over it: any
 * bytes give an error or a bounded table, never a crash, and the pass never passes a limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/queues.h"

static size_t start_one(void *ud, size_t job, size_t budget, const char *why) {
  (void)job, (void)why;
  size_t *left = ud;
  size_t n = budget < *left ? budget : *left;
  if (n > 3) n = 3;
  *left -= n;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  mu_queue_table t = {0};
  mu_err err = {0};
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (eq == NULL) {
      (void)mu_queue_check(&t, line, &err);
      continue;
    }
    *eq = '\0';
    (void)mu_queue_table_apply(&t, line, eq + 1, &err);
  }
  if (t.n > MU_QUEUE_MAX) abort();
  const mu_queue_def *defs[MU_QUEUE_MAX + 1];
  uint32_t running[MU_QUEUE_MAX + 1] = {0};
  size_t nq = 0, queue[16];
  for (; nq < t.n; nq++) defs[nq] = &t.q[nq];
  defs[nq++] = mu_queue_find(&t, "") ? mu_queue_find(&t, "") : defs[0];
  for (size_t i = 0; i < 16; i++) queue[i] = (i * 7) % nq;
  size_t left = 100;
  if (mu_queue_pass(defs, nq, queue, 16, running, start_one, &left) == 0)
    for (size_t q = 0; q + 1 < nq; q++)
      if (defs[q]->max_running > 0 && running[q] > defs[q]->max_running) abort();
  free(text);
  return 0;
}
