/* Fuzzes the Flink task type's parsing: its spec (the TaskSpec JSON and its "flink" section, as
 * the agent hands them over), every JobManager reply the plugin reads (the same body through
 * each reader), and the flink CLI's output. Input: "SPEC\n--\nFLINK\n--\nREPLY" (the reply may
 * hold any bytes). Properties: an accepted spec has a program, a known target and, for session,
 * a REST URL; a refusal names a field; ids read from replies are 32 lowercase hex or safe path
 * segments; copied texts are bounded and hold no line breaks; a JobID read from CLI output is
 * valid; the argv of an accepted spec ends with NULL and holds the JobID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flink_cli.h"
#include "flink_json.h"
#include "flink_spec.h"
#include "lib/fuzz/fuzz_util.h"
#include "muster_plugin.h"

static void check_spec(const mu_flink_spec *s) {
  MU_FUZZ_CHECK(s->program_file != NULL && s->program_file[0] != '\0');
  MU_FUZZ_CHECK(s->target <= MU_FLINK_TARGET_LOCAL);
  MU_FUZZ_CHECK(s->target != MU_FLINK_TARGET_SESSION || s->rest_url != NULL);
  MU_FUZZ_CHECK(s->job_id[0] == '\0' || mu_flink_job_id_valid(s->job_id));
  MU_FUZZ_CHECK(s->on_cancel == MU_FLINK_CANCEL_PLAIN || s->savepoint_dir != NULL);
  MU_FUZZ_CHECK(s->poll_ms >= 50 && s->savepoint_timeout_ms > 0 && s->unreachable_ms > 0);
  for (size_t i = 0; i < s->n_conf; i++) MU_FUZZ_CHECK(strpbrk(s->conf[i].key, "=\r\n") == NULL);
  char **argv = NULL;
  const char *id = "0123456789abcdef0123456789abcdef";
  if (mu_flink_cli_argv(s, "flink", "/t/p", id, &argv) == 0) {
    int has_id = 0;
    for (size_t i = 0; argv[i] != NULL; i++) has_id |= strstr(argv[i], id) != NULL;
    MU_FUZZ_CHECK(has_id);
    mu_flink_cli_argv_free(argv);
  }
}

static void no_breaks(const char *s) { MU_FUZZ_CHECK(strpbrk(s, "\r\n") == NULL); }

static void check_replies(const char *body, size_t len) {
  char id[256], err[256], text[MU_FLINK_TEXT_MAX];
  if (mu_flink_json_upload(body, len, id, sizeof id, err, sizeof err) == 0)
    MU_FUZZ_CHECK(id[0] != '\0' && strpbrk(id, "/?#% ") == NULL);
  else MU_FUZZ_CHECK(err[0] != '\0');
  if (mu_flink_json_jar_find(body, len, "a.jar", id, sizeof id, err, sizeof err) == 0)
    MU_FUZZ_CHECK(id[0] != '\0' && strpbrk(id, "/?#% ") == NULL);
  char jid[MU_FLINK_JOB_ID_LEN + 1];
  if (mu_flink_json_run(body, len, jid, err, sizeof err) == 0) MU_FUZZ_CHECK(mu_flink_job_id_valid(jid));
  mu_flink_job_info ji;
  if (mu_flink_json_job(body, len, &ji, err, sizeof err) == 0) {
    MU_FUZZ_CHECK(ji.state <= MU_FLINK_JOB_RECONCILING);
    MU_FUZZ_CHECK(ji.state == MU_FLINK_JOB_UNKNOWN || strcmp(mu_flink_job_state_name(ji.state), ji.state_name) == 0);
    no_breaks(ji.name);
  }
  if (mu_flink_json_trigger(body, len, id, sizeof id, err, sizeof err) == 0) MU_FUZZ_CHECK(mu_flink_job_id_valid(id));
  mu_flink_savepoint_info sp;
  if (mu_flink_json_savepoint(body, len, &sp, err, sizeof err) == 0) {
    MU_FUZZ_CHECK(sp.status != MU_FLINK_OP_COMPLETED || sp.location[0] != '\0');
    MU_FUZZ_CHECK(sp.status != MU_FLINK_OP_FAILED || sp.failure[0] != '\0');
    no_breaks(sp.location);
    no_breaks(sp.failure);
  }
  mu_flink_checkpoint_info ck;
  if (mu_flink_json_checkpoints(body, len, &ck, err, sizeof err) == 0) {
    no_breaks(ck.latest_path);
    no_breaks(ck.latest_failure);
  }
  if (mu_flink_json_exceptions(body, len, text, sizeof text, err, sizeof err) == 0) no_breaks(text);
  mu_flink_yarn_app app;
  if (mu_flink_json_yarn_app(body, len, &app, err, sizeof err) == 0) {
    MU_FUZZ_CHECK(app.state[0] != '\0' || !app.ended);
    no_breaks(app.state);
    no_breaks(app.final_status);
  }
  if (mu_flink_json_errors(body, len, text, sizeof text)) MU_FUZZ_CHECK(strlen(text) < sizeof text);
  mu_flink_cli_facts f = {0};
  mu_flink_cli_scan(body, len, &f);
  MU_FUZZ_CHECK(f.job_id[0] == '\0' || mu_flink_job_id_valid(f.job_id));
  MU_FUZZ_CHECK(f.yarn_app_id[0] == '\0' || strncmp(f.yarn_app_id, "application_", 12) == 0);
  no_breaks(f.web_url);
  no_breaks(f.savepoint_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *part[3];
  size_t len[3];
  if (mu_fuzz_split(data, size, "\n--\n", part, len, 3) != 0) return 0;
  mu_flink_spec *s = NULL;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  int rc = mu_flink_spec_parse(part[0][0] ? part[0] : NULL, part[1], &s, errbuf);
  if (rc != 0) MU_FUZZ_CHECK(rc < 0 && errbuf[0] != '\0' && s == NULL);
  else check_spec(s);
  mu_flink_spec_free(s);
  check_replies(part[2], len[2]);
  mu_fuzz_split_free(part, 3);
  return 0;
}
