/* Fuzzes logs --grep over output from hosts: the input is split into chunks of several tasks
 * (a byte picks the task, the next the chunk length); nothing crashes, leaks or overruns. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/logs_grep.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const tasks[] = {"j/web-1/a", "j/web-2/a", "web-3/b", "x", "j//", "/"};
  mu_logs_grep *g = NULL;
  mu_err err = {0};
  MU_FUZZ_CHECK(mu_logs_grep_new("ERR|^$|[0-9]+", NULL, &g, &err) == 0);
  size_t i = 0;
  while (i + 2 <= size) {
    const char *task = tasks[data[i] % 6];
    size_t n = data[i + 1];
    i += 2;
    if (n > size - i) n = size - i;
    mu_logs_grep_feed(g, task, (const char *)data + i, n);
    i += n;
  }
  FILE *out = fopen("/dev/null", "w");
  MU_FUZZ_CHECK(out != NULL);
  mu_logs_grep_print(g, out);
  fclose(out);
  mu_logs_grep_free(g);
  return 0;
}
