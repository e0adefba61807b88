/* `muster plugin config TYPE [-t SELECTOR] FILE | --show | --clear` (muster.v1.PluginConfigs,
 * docs/plugins.md "Configuration"): the central configuration of a plugin type, handed to the
 * plugin's configure() on the agents the selector matches, live. FILE is YAML or JSON (one
 * mapping); musterd checks it against the type's schema before storing it. Also the type's
 * parameter list for `muster run --type TYPE --help` (mu_cli_type_help). */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "lib/config/yaml_doc.h"
#include "lib/config/yaml_json.h"
#include "lib/pschema/pschema.h"

static const char usage[] =
    "usage: muster plugin config TYPE [-t SELECTOR] FILE\n"
    "       muster plugin config TYPE --show\n"
    "       muster plugin config TYPE --clear\n"
    "\n"
    "Sets the central configuration of plugin type TYPE (YAML or JSON: one mapping) for the\n"
    "agents SELECTOR matches (default: every agent serving TYPE). musterd checks it against the\n"
    "type's config schema, as the agents serving it describe it, stores it in etcd and pushes it\n"
    "to those agents, whose plugin takes it at once (configure()); other agents keep their own\n"
    "(agent.yaml plugins: {TYPE: {config: ...}}). --show prints it, the agents it reaches and\n"
    "the keys the type takes; --clear removes it. Set needs admin, show viewer.\n";

#define CONFIG_MAX_FILE (256 * 1024)

static int show(const mu_cli_opts *opts, const char *type) {
  Muster__V1__GetPluginConfigRequest req = MUSTER__V1__GET_PLUGIN_CONFIG_REQUEST__INIT;
  req.type = (char *)type;
  ProtobufCMessage *reply = NULL;
  int rc = mu_cli_unary_exit(opts, "plugin config", "/muster.v1.PluginConfigs/GetPluginConfig", &req.base,
                             &muster__v1__plugin_config_info__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__PluginConfigInfo *in = (const Muster__V1__PluginConfigInfo *)reply;
  if (opts->json) {
    json_t *cfg = in->config_json[0] ? json_loads(in->config_json, 0, NULL) : NULL;
    json_t *agents = json_array();
    for (size_t i = 0; i < in->n_agents; i++) json_array_append_new(agents, json_string(in->agents[i]));
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s, s:o}", "type", in->type, "selector", in->selector, "config",
                          cfg ? cfg : json_null(), "sha256", in->sha256, "set_at_ms", (json_int_t)in->set_at_ms,
                          "set_by", in->set_by, "agents", agents);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
  } else if (in->config_json[0] == '\0') {
    printf("plugin %s: no central config (agents use their own plugins.%s.config)\n", type, type);
  } else {
    printf("plugin %s: %s\nselector: %s\nsha256:   %s\nset by:   %s\nagents:   %zu", type, in->config_json,
           in->selector[0] ? in->selector : "(every agent serving it)", in->sha256, in->set_by, in->n_agents);
    for (size_t i = 0; i < in->n_agents && i < 20; i++) printf("%s%s", i ? ", " : " (", in->agents[i]);
    printf("%s\n", in->n_agents > 20 ? ", ...)" : in->n_agents > 0 ? ")" : "");
  }
  char *help = NULL;
  mu_err err = {0};
  if (!opts->json && in->schema_json[0] != '\0' && mu_pschema_help(in->schema_json, "config", &help, &err) == 0 &&
      help[0] != '\0')
    printf("config keys:\n%s", help);
  free(help);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int set(const mu_cli_opts *opts, const char *type, const char *selector, const char *file, int clear) {
  Muster__V1__SetPluginConfigRequest req = MUSTER__V1__SET_PLUGIN_CONFIG_REQUEST__INIT;
  req.type = (char *)type;
  req.selector = (char *)(selector ? selector : "");
  req.clear = clear;
  char *json = NULL;
  if (!clear) {
    mu_yaml_doc *doc = NULL;
    mu_err err = {0};
    if (mu_yaml_doc_load(file, CONFIG_MAX_FILE, &doc, &err) != 0 ||
        mu_yaml_node_json(mu_yaml_doc_root(doc), CONFIG_MAX_FILE, &json, &err) != 0) {
      fprintf(stderr, "muster plugin config: %s%s%s (nothing changed)\n", doc != NULL ? file : "",
              doc != NULL ? ": " : "", err.msg);
      mu_yaml_doc_free(doc);
      return MU_EXIT_USAGE;
    }
    mu_yaml_doc_free(doc);
    req.config_json = json;
  }
  ProtobufCMessage *reply = NULL;
  int rc = mu_cli_unary_exit(opts, "plugin config", "/muster.v1.PluginConfigs/SetPluginConfig", &req.base,
                             &muster__v1__plugin_config_info__descriptor, &reply);
  free(json);
  if (rc != 0) return rc;
  const Muster__V1__PluginConfigInfo *in = (const Muster__V1__PluginConfigInfo *)reply;
  if (!opts->quiet) {
    if (clear) printf("plugin %s: central config removed\n", type);
    else
      printf("plugin %s: config %.12s stored, pushed to %zu agent%s\n", type, in->sha256, in->n_agents,
             in->n_agents == 1 ? "" : "s");
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_plugin_config(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"selector", required_argument, NULL, 't'},
                                     {"show", no_argument, NULL, 's'},
                                     {"clear", no_argument, NULL, 'x'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  const char *selector = NULL;
  int do_show = 0, do_clear = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+t:h", lo, NULL)) != -1) {
    switch (c) {
      case 't': selector = optarg; break;
      case 's': do_show = 1; break;
      case 'x': do_clear = 1; break;
      case 'h': fputs(usage, stdout); return 0;
      default:
        fprintf(stderr, "muster plugin config: unknown option '%s'\n%s", argv[optind - 1], usage);
        return MU_EXIT_USAGE;
    }
  }
  /* TYPE first, then FILE; options may come between them */
  const char *type = optind < argc ? argv[optind++] : NULL;
  while ((c = getopt_long(argc, argv, "+t:h", lo, NULL)) != -1) {
    if (c == 't') selector = optarg;
    else if (c == 's') do_show = 1;
    else if (c == 'x') do_clear = 1;
    else {
      fprintf(stderr, "muster plugin config: bad option\n%s", usage);
      return MU_EXIT_USAGE;
    }
  }
  const char *file = optind < argc ? argv[optind++] : NULL;
  if (type == NULL || optind < argc || do_show + do_clear + (file != NULL) != 1) {
    fprintf(stderr, "muster plugin config: give TYPE and one of FILE, --show, --clear\n%s", usage);
    return MU_EXIT_USAGE;
  }
  if (do_show) return show(opts, type);
  return set(opts, type, selector, file, do_clear);
}

int mu_cli_type_help(const mu_cli_opts *opts, const char *type, FILE *out) {
  Muster__V1__GetPluginConfigRequest req = MUSTER__V1__GET_PLUGIN_CONFIG_REQUEST__INIT;
  req.type = (char *)type;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.PluginConfigs/GetPluginConfig", &req.base,
                   &muster__v1__plugin_config_info__descriptor, &reply, &err) != 0) {
    fprintf(out, "\nParameters of task type %s: not known (%s)\n", type, err.msg);
    return 1;
  }
  const Muster__V1__PluginConfigInfo *in = (const Muster__V1__PluginConfigInfo *)reply;
  char *help = NULL;
  int rc = 0;
  if (in->schema_json[0] == '\0') {
    fprintf(
        out,
        "\nParameters of task type %s: no connected agent describes them (an SDK v1 plugin, or no agent serves it)\n",
        type);
    rc = 1;
  } else if (mu_pschema_help(in->schema_json, "params", &help, &err) != 0) {
    fprintf(out, "\nParameters of task type %s: %s\n", type, err.msg);
    rc = 1;
  } else {
    fprintf(out, "\nParameters of task type %s (the \"%s\" object of a task, as its agents describe it):\n%s", type,
            type, help);
  }
  free(help);
  protobuf_c_message_free_unpacked(reply, NULL);
  return rc;
}
