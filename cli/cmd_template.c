/* `muster job template create|ls|show|rm` and `muster dispatch NAME key=value ...`
 * (muster.v1.Templates, docs/scheduling.md#job-templates). A template file is YAML or JSON of
 * muster.v1.JobTemplate: `params:` (name, required, default_value, description) and `job:`
 * (a job spec as `muster submit` takes it, with ${param.KEY} in its strings). dispatch
 * follows the job like `muster submit` (or prints its id with --detach). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/jobfile.h"
#include "cli/watch.h"
#include "muster/v1/schedule.pb-c.h"

static const char template_usage[] =
    "usage: muster job template create NAME FILE\n"
    "       muster job template ls [PREFIX]\n"
    "       muster job template show NAME\n"
    "       muster job template rm NAME\n"
    "       muster dispatch NAME [key=value ...] [--detach] [--plan]\n"
    "\n"
    "A job template is a job spec with declared params (FILE, YAML or JSON):\n"
    "  params: [{name: version, required: true}, {name: region, default_value: eu}]\n"
    "  job: {target: {all: true}, tasks: [{shell: {script: \"deploy ${param.version}\"}}]}\n"
    "create checks it as submit would (every ${param.KEY} must be declared; $${ is a literal).\n"
    "dispatch creates a job from it: a missing required param or an unknown one is refused\n"
    "naming it; the values together may hold up to 1 MiB.\n";

static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "muster: %s%s\n%s", what, arg ? arg : "", template_usage);
  return 2;
}

static int call(const mu_cli_opts *opts, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  return mu_cli_unary_exit(opts, NULL, method, req, reply_desc, ret_reply);
}

static void print_params(const Muster__V1__JobTemplate *t, FILE *out) {
  for (size_t i = 0; i < t->n_params; i++) {
    const Muster__V1__TemplateParam *p = t->params[i];
    if (p->required) fprintf(out, "%s%s (required)", i ? ", " : "", p->name);
    else fprintf(out, "%s%s=%s", i ? ", " : "", p->name, p->default_value);
  }
  if (t->n_params == 0) fputs("-", out);
}

static int template_create(const mu_cli_opts *opts, const char *name, const char *path) {
  ProtobufCMessage *msg = NULL;
  mu_err err = {0};
  if (mu_jobfile_load_as(&muster__v1__job_template__descriptor, path, &msg, &err) != 0) {
    fprintf(stderr, "muster job template create: %s\n", err.msg);
    return 2;
  }
  Muster__V1__JobTemplate *t = (Muster__V1__JobTemplate *)msg;
  char *file_name = t->name;
  t->name = (char *)name;
  Muster__V1__CreateTemplateRequest req = MUSTER__V1__CREATE_TEMPLATE_REQUEST__INIT;
  req.template_ = t;
  ProtobufCMessage *reply = NULL;
  int rc =
      call(opts, "/muster.v1.Templates/CreateTemplate", &req.base, &muster__v1__job_template_info__descriptor, &reply);
  t->name = file_name;
  protobuf_c_message_free_unpacked(msg, NULL);
  if (rc != 0) return rc;
  if (opts->json) mu_cli_print_json(reply);
  else printf("template %s created\n", name);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int template_ls(const mu_cli_opts *opts, const char *prefix) {
  Muster__V1__ListTemplatesRequest req = MUSTER__V1__LIST_TEMPLATES_REQUEST__INIT;
  if (prefix != NULL) req.name_prefix = (char *)prefix;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Templates/ListTemplates", &req.base, &muster__v1__list_templates_response__descriptor,
                &reply);
  if (rc != 0) return rc;
  const Muster__V1__ListTemplatesResponse *r = (const Muster__V1__ListTemplatesResponse *)reply;
  if (!opts->json) printf("%-24s %-6s %s\n", "NAME", "TASKS", "PARAMS");
  for (size_t i = 0; i < r->n_templates; i++) {
    const Muster__V1__JobTemplate *t = r->templates[i]->template_;
    if (opts->json) {
      mu_cli_print_json(&r->templates[i]->base);
      continue;
    }
    printf("%-24s %-6zu ", t->name, t->job ? t->job->n_tasks : 0);
    print_params(t, stdout);
    printf("\n");
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int template_named(const mu_cli_opts *opts, const char *sub, const char *name) {
  Muster__V1__TemplateNameRequest req = MUSTER__V1__TEMPLATE_NAME_REQUEST__INIT;
  req.name = (char *)name;
  ProtobufCMessage *reply = NULL;
  int rm = strcmp(sub, "rm") == 0;
  int rc = call(opts, rm ? "/muster.v1.Templates/DeleteTemplate" : "/muster.v1.Templates/GetTemplate", &req.base,
                &muster__v1__job_template_info__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__JobTemplateInfo *info = (const Muster__V1__JobTemplateInfo *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else if (rm) {
    printf("template %s removed (jobs made from it are kept)\n", name);
  } else if (info->template_ != NULL) {
    const Muster__V1__JobTemplate *t = info->template_;
    char when[40];
    printf("name:     %s\nparams:   ", t->name);
    print_params(t, stdout);
    printf("\njob:      %s (%zu tasks)\ncreated:  %s by %s\n", t->job ? t->job->name : "-",
           t->job ? t->job->n_tasks : 0, mu_cli_ago(info->created_at_ms, when, sizeof when),
           info->created_by[0] ? info->created_by : "-");
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_job(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "template") != 0) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      fputs(template_usage, stdout);
      return 0;
    }
    return usage_error("job: expected 'template create|ls|show|rm'", NULL);
  }
  const char *sub = argv[2];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(template_usage, stdout);
    return 0;
  }
  if (strcmp(sub, "create") == 0) {
    if (argc != 5) return usage_error("job template create: expected NAME FILE", NULL);
    return template_create(opts, argv[3], argv[4]);
  }
  if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
    if (argc > 4) return usage_error("job template ls: unexpected argument ", argv[4]);
    return template_ls(opts, argc == 4 ? argv[3] : NULL);
  }
  if (strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0) {
    if (argc != 4 || argv[3][0] == '-') return usage_error("job template: expected one NAME", NULL);
    return template_named(opts, sub, argv[3]);
  }
  return usage_error("job template: unknown subcommand ", sub);
}

int mu_cmd_dispatch(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"detach", no_argument, NULL, 'd'},  {"plan", no_argument, NULL, 'n'},
                                     {"dry-run", no_argument, NULL, 'n'}, MU_WATCH_LONG_OPTIONS,
                                     {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0}};
  mu_watch_opts w = {0};
  int detach = 0, dry_run = 0, c;
  mu_err oerr = {0};
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
    int used;
    if (c == 'd') {
      detach = 1;
    } else if (c == 'n') {
      dry_run = 1;
    } else if (c == 'h') {
      fputs(template_usage, stdout);
      return 0;
    } else {
      used = mu_watch_opts_apply(&w, c, optarg, &oerr);
      if (used < 0) {
        return usage_error("dispatch: ", oerr.msg);
      } else if (used == 0) {
        return usage_error("dispatch: unknown or incomplete option ", argv[optind - 1]);
      }
    }
  }
  if (optind >= argc) return usage_error("dispatch: expected a template NAME", NULL);
  Muster__V1__DispatchRequest req = MUSTER__V1__DISPATCH_REQUEST__INIT;
  req.name = argv[optind];
  req.params = argv + optind + 1;
  req.n_params = (size_t)(argc - optind - 1);
  req.dry_run = dry_run;
  w.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  return mu_cli_submit_and_watch(opts, "/muster.v1.Templates/Dispatch", &req.base, &w, detach, 0, NULL);
}
