/* muster-plugin-test: runs a task-type plugin through the agent's real runner as the agent
 * would, checks scripted expectations, and with --conformance runs the conformance suite
 * (conformance.h). The test file is a task spec, or {"spec": ..., "params": {...},
 * "expect": [...], "bundleDir": DIR, "cancel": {"spec": ..., "afterMs": N}, "skipCancel": "why",
 * "pluginConfig": {...} (SDK v2: what configure() gets; default {})}.
 * Exit 0: every check passed; 1: a check failed; 2: bad usage or input. */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/testing/conformance.h"
#include "plugins/testing/plugin_test.h"

#define MAX_EXPECT 128

static const char usage[] =
    "usage: muster-plugin-test PLUGIN.so TEST.json [--expect ASSERTION]... [--conformance]\n"
    "                          [--isolation in-process|process] [--cancel-after MS]\n"
    "                          [--exec-helper PATH] [--plugin-host PATH] [--max-stall-ms N]\n"
    "Runs the plugin's task through the agent's runner and checks assertions:\n"
    "  state=SUCCEEDED|FAILED|TIMED_OUT|CANCELLED  exit=N  signal=N\n"
    "  stdout=TEXT  stdout~TEXT (contains)  stderr=TEXT  stderr~TEXT  message~TEXT\n"
    "  param.KEY=VALUE  param.KEY~TEXT  noparam.KEY  progress>=N  pct=N\n"
    "  ms<=N  stall<=N (longest loop iteration, ms)  leftover=0\n"
    "TEST.json: a task spec, or {\"spec\": {...}, \"params\": {\"task.key\": \"v\"}, \"expect\": [...],\n"
    "  \"bundleDir\": \"DIR copied into each task dir\",\n"
    "  \"cancel\": {\"spec\": {...}, \"afterMs\": 300}, \"skipCancel\": \"reason\"}\n"
    "--conformance runs the suite every plugin must pass (docs/plugins.md, Testing plugins).\n";

/* muster-exec / muster-plugin-host beside this binary, installed, or in the Bazel tree. */
static const char *beside_self(const char *const *rel, size_t n, char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return NULL;
  self[len] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return NULL;
  *slash = '\0';
  for (size_t i = 0; i < n; i++) {
    snprintf(out, cap, "%s/%s", self, rel[i]);
    if (access(out, X_OK) == 0) return out;
  }
  return NULL;
}

/* An assertion as one line: newlines and tabs in it shown as \n, \t. */
static void print_escaped(const char *s) {
  for (; *s; s++) {
    if (*s == '\n') fputs("\\n", stdout);
    else if (*s == '\t') fputs("\\t", stdout);
    else putchar(*s);
  }
}

static char *dump(json_t *j) { return j ? json_dumps(j, JSON_COMPACT) : NULL; }

int main(int argc, char **argv) {
  static const struct option opts[] = {{"expect", required_argument, NULL, 'e'},
                                       {"conformance", no_argument, NULL, 'C'},
                                       {"isolation", required_argument, NULL, 'i'},
                                       {"cancel-after", required_argument, NULL, 'c'},
                                       {"exec-helper", required_argument, NULL, 'x'},
                                       {"plugin-host", required_argument, NULL, 'p'},
                                       {"max-stall-ms", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *expect[MAX_EXPECT + 1] = {0};
  size_t n_expect = 0;
  int conformance = 0, process = 0;
  long cancel_after = -1, max_stall = 10;
  const char *helper = NULL, *host = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'e':
        if (n_expect == MAX_EXPECT) {
          fprintf(stderr, "muster-plugin-test: more than %d --expect\n", MAX_EXPECT);
          return 2;
        }
        expect[n_expect++] = optarg;
        break;
      case 'C': conformance = 1; break;
      case 'i':
        if (strcmp(optarg, "process") != 0 && strcmp(optarg, "in-process") != 0) {
          fprintf(stderr, "muster-plugin-test: --isolation: expected in-process or process, got \"%s\"\n", optarg);
          return 2;
        }
        process = strcmp(optarg, "process") == 0;
        break;
      case 'c': cancel_after = atol(optarg); break;
      case 'x': helper = optarg; break;
      case 'p': host = optarg; break;
      case 's': max_stall = atol(optarg); break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return 2;
    }
  }
  if (argc - optind != 2) {
    fputs(usage, stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const char *so = argv[optind], *test_path = argv[optind + 1];
  char helper_buf[PATH_MAX + 64], host_buf[PATH_MAX + 64], so_abs[PATH_MAX];
  static const char *const helper_rel[] = {"muster-exec", "../libexec/muster/muster-exec",
                                           "../../agent/exec/muster-exec"};
  static const char *const host_rel[] = {"muster-plugin-host", "../libexec/muster/muster-plugin-host",
                                         "../../agent/plugin/muster-plugin-host"};
  if (helper == NULL) helper = beside_self(helper_rel, 3, helper_buf, sizeof helper_buf);
  if (host == NULL) host = beside_self(host_rel, 3, host_buf, sizeof host_buf);
  if (realpath(so, so_abs) == NULL) {
    fprintf(stderr, "muster-plugin-test: %s: no such file\n", so);
    return 2;
  }
  char helper_abs[PATH_MAX], host_abs[PATH_MAX];
  if (helper != NULL && realpath(helper, helper_abs) != NULL) helper = helper_abs;
  if (host != NULL && realpath(host, host_abs) != NULL) host = host_abs;
  json_error_t je;
  json_t *test = json_load_file(test_path, 0, &je);
  if (!json_is_object(test)) {
    fprintf(stderr, "muster-plugin-test: %s:%d: %s\n", test_path, je.line, test ? "expected a JSON object" : je.text);
    return 2;
  }
  json_t *spec = json_object_get(test, "spec");
  if (spec == NULL) spec = test; /* the whole file is the task spec */
  json_t *cancel = json_object_get(test, "cancel");
  json_t *jexp = json_object_get(test, "expect");
  size_t i;
  json_t *v;
  json_array_foreach(jexp, i, v) {
    if (json_is_string(v) && n_expect < MAX_EXPECT) expect[n_expect++] = json_string_value(v);
  }
  mu_kv params[256];
  size_t n_params = 0;
  const char *k;
  json_object_foreach(json_object_get(test, "params"), k, v) {
    if (json_is_string(v) && n_params < 256) params[n_params++] = (mu_kv){k, json_string_value(v)};
  }
  char *spec_json = dump(spec);
  char *cancel_json = dump(json_object_get(cancel, "spec"));
  if (cancel_after < 0 && json_is_integer(json_object_get(cancel, "afterMs")))
    cancel_after = (long)json_integer_value(json_object_get(cancel, "afterMs"));
  char bundle_abs[PATH_MAX];
  const char *bundle = json_string_value(json_object_get(test, "bundleDir"));
  if (bundle != NULL && realpath(bundle, bundle_abs) == NULL) {
    fprintf(stderr, "muster-plugin-test: %s: bundleDir %s does not exist\n", test_path, bundle);
    return 2;
  }
  char *plugin_config = dump(json_object_get(test, "pluginConfig")); /* SDK v2 configure() */
  muster_pt_opts wo = {.helper_path = helper,
                       .host_path = process ? host : NULL,
                       .bundle_dir = bundle ? bundle_abs : NULL,
                       .plugin_config = plugin_config};
  if (process && host == NULL) {
    fprintf(stderr, "muster-plugin-test: --isolation process needs muster-plugin-host (--plugin-host)\n");
    free(plugin_config);
    return 2;
  }
  int rc = 0;
  mu_err err = {0};
  if (conformance) {
    wo.host_path = host;
    muster_pt_conformance_opts co = {.plugin_so = so_abs,
                                     .world = wo,
                                     .spec_json = spec_json,
                                     .expect = expect,
                                     .params = params,
                                     .n_params = n_params,
                                     .cancel_spec_json = cancel_json,
                                     .cancel_after_ms = cancel_after > 0 ? cancel_after : 0,
                                     .max_stall_ms = max_stall,
                                     .skip_cancel = json_string_value(json_object_get(test, "skipCancel"))};
    int failed = muster_pt_conformance(&co, stdout, &err);
    if (failed < 0) fprintf(stderr, "muster-plugin-test: %s\n", err.msg);
    rc = failed < 0 ? 2 : failed > 0 ? 1 : 0;
  } else {
    muster_pt_world *w = NULL;
    if (muster_pt_world_new(so_abs, &wo, &w, &err) != 0) {
      fprintf(stderr, "muster-plugin-test: %s\n", err.msg);
      rc = 2;
    } else {
      muster_pt_result r;
      muster_pt_run_opts ro = {
          .spec_json = spec_json, .params = params, .n_params = n_params, .cancel_after_ms = cancel_after};
      int run = muster_pt_run(w, &ro, &r, &err);
      printf(
          "task %s: %s exit=%d signal=%d in %lld ms; %d progress, %zu params, %llu/%llu bytes out/err, "
          "longest loop iteration %lld ms, %d left behind\n  message: %s\n",
          r.task_id, muster_pt_state_name(r.state), r.exit_code, r.signal, (long long)r.wall_ms, r.n_progress,
          r.n_params, (unsigned long long)r.out_total, (unsigned long long)r.err_total, (long long)r.max_stall_ms,
          r.leftover_pids, r.message);
      if (run != 0) {
        printf("FAIL run: %s\n", err.msg);
        rc = 1;
      }
      for (size_t e = 0; e < n_expect && run == 0; e++) {
        char why[1024];
        int x = muster_pt_expect(&r, expect[e], why, sizeof why);
        printf("%s expect ", x == 0 ? "ok  " : "FAIL");
        print_escaped(expect[e]);
        printf("%s%s\n", x ? ": " : "", x ? why : "");
        if (x != 0) rc = x < 0 ? 2 : rc == 2 ? 2 : 1;
      }
      muster_pt_result_free(&r);
      muster_pt_world_free(w);
    }
  }
  free(spec_json);
  free(cancel_json);
  free(plugin_config);
  json_decref(test);
  return rc;
}
