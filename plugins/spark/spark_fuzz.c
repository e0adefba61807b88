/* Fuzzes what the Spark task type parses: its spec (the TaskSpec JSON and its "spark"
 * section), spark-submit's output, and the cluster managers' answers (YARN RM app / apps /
 * state, standalone REST replies, monitoring API jobs, Livy batches, a saved handle) and what
 * `spark-submit --status` says about a Kubernetes driver pod. Input:
 * "SPEC\n--\nSPARK\n--\nOUTPUT\n--\nBODY". Properties: an accepted spec builds an argv whose
 * display holds no secret; ids taken from output have their documented shape; parsers never
 * report success without the fields they promise. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "muster_plugin.h"
#include "spark_argv.h"
#include "spark_handle.h"
#include "spark_k8s.h"
#include "spark_livy.h"
#include "spark_output.h"
#include "spark_proto.h"
#include "spark_spec.h"

static void check_spec(const mu_spark_spec *s) {
  MU_FUZZ_CHECK(s->master != NULL);
  MU_FUZZ_CHECK(
      !(s->cluster && s->master_kind == MU_SPARK_LOCAL && s->via != MU_SPARK_VIA_LIVY)); /* Livy: its server decides */
  bool jvm = s->program == MU_SPARK_JAVA || s->program == MU_SPARK_SCALA;
  MU_FUZZ_CHECK(jvm == (s->main_class != NULL));
  MU_FUZZ_CHECK(s->program == MU_SPARK_SQL ? (s->sql != NULL) != (s->app_resource != NULL) : s->app_resource != NULL);
  MU_FUZZ_CHECK(s->poll_ms >= MU_SPARK_MIN_POLL_MS && s->max_poll_errors > 0);
  mu_spark_submit_ctx c = {.task_dir = "/t",
                           .sql_file = s->sql ? "/t/q.sql" : NULL,
                           .task_tag = "muster-j-t",
                           .attempt_tag = "muster-j-t-a1",
                           .app_name = "n"};
  mu_spark_argv a;
  char err[MUSTER_ERRBUF_SIZE];
  MU_FUZZ_CHECK(mu_spark_build_argv(s, &c, &a, err) == 0);
  MU_FUZZ_CHECK(a.n > 3 && a.argv[a.n] == NULL);
  for (size_t i = 0; i < a.n; i++) MU_FUZZ_CHECK(a.argv[i] != NULL);
  char *shown = mu_spark_argv_display(s, &a);
  MU_FUZZ_CHECK(shown != NULL);
  for (size_t i = 0; i < s->n_secrets; i++) {
    if (strchr(s->secrets[i], '*') != NULL || strchr(s->secrets[i], '\'') != NULL) continue;
    MU_FUZZ_CHECK(strstr(shown, s->secrets[i]) == NULL);
  }
  free(shown);
  mu_spark_argv_free(&a);
}

static void check_id(const char *id, const char *prefix) {
  if (id[0] == '\0') return;
  MU_FUZZ_CHECK(strncmp(id, prefix, strlen(prefix)) == 0);
  for (const char *p = id; *p; p++) MU_FUZZ_CHECK(isalnum((unsigned char)*p) || *p == '_' || *p == '-');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *part[4];
  size_t len[4];
  if (mu_fuzz_split(data, size, "\n--\n", part, len, 4) != 0) return 0;
  mu_spark_spec *s = NULL;
  char errbuf[MUSTER_ERRBUF_SIZE] = "";
  mu_spark_defaults def = {.yarn_rm_urls = "http://rm1:8088, http://rm2:8088/"};
  int rc = mu_spark_spec_parse(part[0][0] ? part[0] : NULL, part[1], &def, &s, errbuf);
  if (rc != 0) MU_FUZZ_CHECK(rc < 0 && errbuf[0] != '\0' && s == NULL);
  else check_spec(s);
  mu_spark_spec_free(s);

  mu_spark_scan *sc = mu_spark_scan_new();
  MU_FUZZ_CHECK(sc != NULL);
  size_t half = len[2] / 2;
  mu_spark_scan_feed(sc, 1, part[2], half);
  mu_spark_scan_feed(sc, 2, part[2] + half, len[2] - half);
  mu_spark_scan_end(sc);
  const mu_spark_found *f = mu_spark_scan_found(sc);
  check_id(f->yarn_app_id, "application_");
  check_id(f->driver_id, "driver-");
  check_id(f->standalone_app_id, "app-");
  mu_spark_scan_free(sc);
  mu_spark_k8s_status ks;
  mu_spark_k8s_status_parse(part[2], len[2], &ks);
  MU_FUZZ_CHECK(!(ks.found && ks.not_found) && ks.found == (ks.phase[0] != '\0') && ks.exit_code >= -1);
  (void)mu_spark_k8s_phase(ks.phase);

  const char *body = part[3];
  size_t bl = len[3];
  char why[MU_SPARK_TEXT_MAX];
  mu_spark_yarn_app app, apps[4];
  if (mu_spark_yarn_app_parse(body, bl, &app, why) == 0) {
    MU_FUZZ_CHECK(app.state[0] != '\0' && app.progress >= 0 && app.progress <= 100);
    (void)mu_spark_yarn_phase(app.state, app.final_status);
  }
  int n = mu_spark_yarn_apps_parse(body, bl, "muster-j-t", apps, 4, why);
  MU_FUZZ_CHECK(n <= 4);
  for (int i = 0; i < n; i++) MU_FUZZ_CHECK(mu_spark_tags_have(apps[i].tags, "muster-j-t"));
  mu_spark_rest_reply rep;
  if (mu_spark_rest_parse(body, bl, &rep, why) == 0) MU_FUZZ_CHECK(rep.action[0] != '\0');
  char state[32];
  (void)mu_spark_yarn_state_parse(body, bl, state);
  char text[200];
  mu_spark_error_text(body, bl, text, sizeof text);
  MU_FUZZ_CHECK(strlen(text) < sizeof text);
  double p = mu_spark_jobs_progress(body, bl);
  MU_FUZZ_CHECK(p == -1 || (p >= 0 && p <= 100));
  mu_spark_livy_batch lb;
  if (mu_spark_livy_batch_parse(body, bl, &lb, why) == 0) {
    MU_FUZZ_CHECK(lb.id[0] != '\0' && lb.state[0] != '\0');
    for (const char *q = lb.id; *q; q++) MU_FUZZ_CHECK(isdigit((unsigned char)*q));
    (void)mu_spark_livy_phase(lb.state);
  }
  free(mu_spark_livy_log_text(body, bl, 4096, why));
  if (mu_spark_livy_find(body, bl, "muster-j-t", &lb, why) == 1)
    MU_FUZZ_CHECK(strstr(lb.name, "[muster-j-t-a") != NULL);
  mu_spark_k8s_pod pods[4];
  int np = mu_spark_k8s_pods_parse(body, bl, pods, 4, why);
  MU_FUZZ_CHECK(np <= 4);
  for (int i = 0; i < np; i++) MU_FUZZ_CHECK(pods[i].name[0] != '\0');
  char label[MU_SPARK_K8S_LABEL_MAX + 1];
  mu_spark_k8s_label_value(part[0], label);
  MU_FUZZ_CHECK(strlen(label) <= MU_SPARK_K8S_LABEL_MAX);
  mu_spark_handle h;
  if (mu_spark_handle_parse(body, bl, &h) == 0) MU_FUZZ_CHECK(h.attempt > 0 && h.phase >= 1 && h.phase <= 3);
  mu_fuzz_split_free(part, 4);
  return 0;
}
