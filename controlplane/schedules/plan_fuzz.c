/* Fuzzes a schedule's rules as a user sends them (CreateSchedule: cron, jitter, overlap,
 * catch-up and its window, one per line; zone UTC) and the due-slot decision: a refusal says
 * why; accepted rules fire slots after the cursor, not after now, oldest first, and move the
 * cursor forward only. */
#include <stdlib.h>
#include <string.h>

#include "controlplane/schedules/plan.h"
#include "lib/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  MU_FUZZ_CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = '\0';
  char *fields[5] = {"", "", "", "", ""};
  char *save = NULL, *line = strtok_r(text, "\n", &save);
  for (int i = 0; i < 5 && line != NULL; i++, line = strtok_r(NULL, "\n", &save)) fields[i] = line;
  Muster__V1__ScheduleSpec spec = MUSTER__V1__SCHEDULE_SPEC__INIT;
  spec.name = "fuzz";
  spec.cron = fields[0];
  spec.tz = "UTC";
  char **given[] = {&spec.jitter, &spec.overlap, &spec.catch_up, &spec.catch_up_window};
  for (int i = 0; i < 4; i++)
    if (fields[i + 1][0] != '\0') *given[i] = fields[i + 1];
  mu_schedule_rules r;
  mu_err err = {0};
  int rc = mu_schedule_rules_parse(&spec, NULL, &r, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(rc == MU_EINVAL || rc == MU_ENOMEM);
    MU_FUZZ_CHECK(err.msg[0] != '\0');
  } else {
    int64_t cursor = 1772952600LL, now_ms = (cursor + 3600) * 1000;
    for (int call = 0; call < 3; call++) {
      int64_t fire[8], next_cursor;
      size_t skipped;
      size_t n = mu_schedule_due(&r, "fuzz", cursor, now_ms, 2000, fire, 8, &next_cursor, &skipped);
      MU_FUZZ_CHECK(n <= 8 && next_cursor >= cursor);
      for (size_t k = 0; k < n; k++) {
        MU_FUZZ_CHECK(fire[k] > cursor && fire[k] * 1000 <= now_ms);
        MU_FUZZ_CHECK(k == 0 || fire[k] > fire[k - 1]);
      }
      cursor = next_cursor;
    }
    mu_schedule_rules_free(&r);
  }
  for (int i = 0; i < 4; i++) /* defaults the parse filled in */
    if (*given[i] != protobuf_c_empty_string && *given[i] != fields[i + 1]) free(*given[i]);
  free(text);
  return 0;
}
