/* `muster agents` and `muster cluster`: the fleet and the control plane at a glance. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/list_agents.h"
#include "cli/output_json.h"
#include "lib/jobcounts/jobcounts.h"
#include "lib/base/clock.h"
#include "lib/pbjson/pbjson.h"
#include "muster/v1/admin.pb-c.h"

int mu_cli_print_json(const ProtobufCMessage *msg) { return mu_cli_json_message(NULL, msg); }

const char *mu_cli_ago(int64_t then_ms, char *buf, size_t size) {
  if (then_ms <= 0) {
    snprintf(buf, size, "-");
    return buf;
  }
  int64_t s = (mu_now_ms() - then_ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120) snprintf(buf, size, "%llds ago", (long long)s);
  else if (s < 7200) snprintf(buf, size, "%lldm ago", (long long)(s / 60));
  else snprintf(buf, size, "%lldh ago", (long long)(s / 3600));
  return buf;
}

static const char agents_usage[] =
    "usage: muster agents [-t SELECTOR] [--state connected|disconnected|draining] [-o json]\n"
    "                     [--page-size N]\n"
    "       muster agents rm [--force] ID...\n"
    "\n"
    "Lists the agents the control plane knows: id, state, labels, task types, last heartbeat,\n"
    "load and running tasks. A connected agent that serves no task type shows as degraded.\n"
    "-t filters by labels and built-in facts (\"role=web,dc=eu*,!canary,cpus>=8\"; facts: os,\n"
    "kernel, arch, hostname, cpus, mem_gib, distro, distro_version). -q prints ids only.\n"
    "rm forgets agents (a dead host): refused while one is connected unless --force, which\n"
    "ends its stream first (an agent still running reconnects and is registered again).\n"
    "musterd also forgets agents disconnected longer than agent_gc_after (default 7d).\n"
    "The list is read --page-size agents a call (default 10000, the most musterd sends).\n";

/* `muster agents rm [--force] ID...`: RemoveAgent for each; exit 1 if any was refused. */
static int agents_rm(const mu_cli_opts *opts, int argc, char **argv) {
  int force = 0, n = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0) {
      force = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(agents_usage, stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "muster agents rm: unknown option '%s'\n%s", argv[i], agents_usage);
      return 2;
    } else {
      n++;
    }
  }
  if (n == 0) {
    fprintf(stderr, "muster agents rm: give at least one agent ID\n%s", agents_usage);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    Muster__V1__RemoveAgentRequest req = MUSTER__V1__REMOVE_AGENT_REQUEST__INIT;
    req.agent_id = argv[i];
    req.force = force;
    ProtobufCMessage *reply = NULL;
    mu_err err = {0};
    if (mu_cli_unary(opts, "/muster.v1.Admin/RemoveAgent", &req.base, &muster__v1__remove_agent_response__descriptor,
                     &reply, &err) != 0) {
      fprintf(stderr, "muster agents rm: %s\n", err.msg);
      failed = 1;
      continue;
    }
    const Muster__V1__RemoveAgentResponse *r = (const Muster__V1__RemoveAgentResponse *)reply;
    if (opts->json) {
      json_t *o = json_object();
      json_object_set_new(o, "agentId", json_string(argv[i]));
      json_object_set_new(o, "removed", json_true());
      json_object_set_new(o, "disconnected", json_boolean(r->disconnected));
      mu_cli_json_emit("removed", o);
    } else if (!opts->quiet) {
      printf("%s: removed%s\n", argv[i], r->disconnected ? " (its stream was ended)" : "");
    }
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  return failed;
}

static const char *state_name(Muster__V1__AgentState s) {
  switch (s) {
    case MUSTER__V1__AGENT_STATE__AGENT_CONNECTED: return "connected";
    case MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED: return "disconnected";
    case MUSTER__V1__AGENT_STATE__AGENT_DRAINING: return "draining";
    default: return "unknown";
  }
}

int mu_cmd_agents(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"selector", required_argument, NULL, 't'},
                                     {"state", required_argument, NULL, 's'},
                                     {"page-size", required_argument, NULL, 'P'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  if (argc > 1 && strcmp(argv[1], "rm") == 0) return agents_rm(opts, argc - 1, argv + 1);
  Muster__V1__ListAgentsRequest req = MUSTER__V1__LIST_AGENTS_REQUEST__INIT;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "t:s:P:h", lo, NULL)) != -1) {
    switch (c) {
      case 't': req.selector = optarg; break;
      case 's':
        if (strcmp(optarg, "connected") == 0) {
          req.state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
        } else if (strcmp(optarg, "disconnected") == 0) {
          req.state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
        } else if (strcmp(optarg, "draining") == 0) {
          req.state = MUSTER__V1__AGENT_STATE__AGENT_DRAINING;
        } else {
          fprintf(stderr, "muster agents: --state: expected connected, disconnected or draining, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'P': {
        char *end = NULL;
        unsigned long n = strtoul(optarg, &end, 10);
        if (end == optarg || *end != '\0' || n < 1 || n > 10000) {
          fprintf(stderr, "muster agents: --page-size: expected a number from 1 to 10000, got '%s'\n", optarg);
          return 2;
        }
        req.page_size = (uint32_t)n;
        break;
      }
      case 'h': fputs(agents_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster agents: unknown or incomplete option '%s'\n%s", argv[optind - 1], agents_usage);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "muster agents: unexpected argument '%s'\n%s", argv[optind], agents_usage);
    return 2;
  }
  ProtobufCMessage *reply_msg = NULL;
  mu_err err = {0};
  if (mu_cli_list_agents(opts, &req, &reply_msg, &err) != 0) {
    fprintf(stderr, "muster agents: %s\n", err.msg);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  Muster__V1__ListAgentsResponse *reply = (Muster__V1__ListAgentsResponse *)reply_msg;
  int rc = 0;
  if (opts->json) {
    for (size_t i = 0; i < reply->n_agents && rc == 0; i++) rc = mu_cli_print_json(&reply->agents[i]->base);
  } else if (opts->quiet) { /* ids only, for scripts: muster agents -q --state disconnected */
    for (size_t i = 0; i < reply->n_agents; i++) printf("%s\n", reply->agents[i]->agent_id);
  } else {
    int types_w = 20; /* as wide as the longest list of task types */
    for (size_t i = 0; i < reply->n_agents; i++) {
      int w = -1;
      for (size_t j = 0; j < reply->agents[i]->n_plugins; j++) w += 1 + (int)strlen(reply->agents[i]->plugins[j]->type);
      if (w > types_w) types_w = w < 200 ? w : 200;
    }
    printf("%-24s %-13s %-32s %-*s %-10s %6s %5s\n", "ID", "STATE", "LABELS", types_w, "TYPES", "LAST SEEN", "LOAD",
           "TASKS");
    for (size_t i = 0; i < reply->n_agents; i++) {
      const Muster__V1__AgentInfo *a = reply->agents[i];
      char labels[512] = "";
      size_t off = 0;
      for (size_t j = 0; j < a->n_labels && off < sizeof labels; j++)
        off += (size_t)snprintf(labels + off, sizeof labels - off, "%s%s=%s", j ? "," : "", a->labels[j]->key,
                                a->labels[j]->value);
      if (labels[0] == '\0') snprintf(labels, sizeof labels, "-");
      char types[256] = "";
      off = 0;
      for (size_t j = 0; j < a->n_plugins && off < sizeof types; j++)
        off += (size_t)snprintf(types + off, sizeof types - off, "%s%s", j ? "," : "", a->plugins[j]->type);
      if (types[0] == '\0') snprintf(types, sizeof types, "-");
      /* Connected but serving no task type: every job sent there would fail. */
      const char *state =
          a->state == MUSTER__V1__AGENT_STATE__AGENT_CONNECTED && a->n_plugins == 0 ? "degraded" : state_name(a->state);
      char ago[32];
      printf("%-24s %-13s %-32s %-*s %-10s %6.2f %5u\n", a->agent_id, state, labels, types_w, types,
             mu_cli_ago(a->last_heartbeat_ms, ago, sizeof ago), a->metrics ? a->metrics->load1 : 0.0,
             a->metrics ? a->metrics->running_tasks : 0);
    }
    size_t connected = 0;
    for (size_t i = 0; i < reply->n_agents; i++)
      connected += reply->agents[i]->state == MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
    char na[48];
    printf("%s, %zu connected\n", mu_plural(reply->n_agents, "agent", na, sizeof na), connected);
  }
  protobuf_c_message_free_unpacked(reply_msg, NULL);
  return rc;
}

static const char drain_usage[] =
    "usage: muster drain AGENT [--undrain]\n"
    "\n"
    "Drains an agent: what runs there finishes, but no new host run starts on it and job\n"
    "targets (all, selectors, host globs, any) skip it until --undrain. Survives control-plane\n"
    "failovers.\n";

int mu_cmd_drain(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__DrainAgentRequest req = MUSTER__V1__DRAIN_AGENT_REQUEST__INIT;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(drain_usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "--undrain") == 0) {
      req.undrain = 1;
    } else if (argv[i][0] == '-' || req.agent_id[0] != '\0') {
      fprintf(stderr, "muster drain: unexpected argument '%s'\n%s", argv[i], drain_usage);
      return 2;
    } else {
      req.agent_id = argv[i];
    }
  }
  if (req.agent_id[0] == '\0') {
    fprintf(stderr, "muster drain: AGENT is required\n%s", drain_usage);
    return 2;
  }
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/DrainAgent", &req.base, &muster__v1__drain_agent_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "muster drain: %s\n", err.msg);
    return 1;
  }
  Muster__V1__DrainAgentResponse *r = (Muster__V1__DrainAgentResponse *)reply;
  if (opts->json) mu_cli_print_json(reply);
  else if (!opts->quiet)
    printf("%s: %s%s\n", req.agent_id, state_name(r->state),
           req.undrain ? "" : " (running tasks finish; no new ones start)");
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static const char cluster_usage[] =
    "usage: muster cluster [-o json]\n"
    "\n"
    "Shows the control plane: version, leader, members, etcd health and agent counts.\n"
    "-q prints the leader's address only.\n";

int mu_cmd_cluster(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
      fputs(cluster_usage, stdout);
      return 0;
    }
    fprintf(stderr, "muster cluster: unexpected argument '%s'\n%s", argv[1], cluster_usage);
    return 2;
  }
  Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
  ProtobufCMessage *reply_msg = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/GetCluster", &req.base, &muster__v1__cluster__descriptor, &reply_msg,
                   &err) != 0) {
    fprintf(stderr, "muster cluster: %s\n", err.msg);
    return 1;
  }
  Muster__V1__Cluster *c = (Muster__V1__Cluster *)reply_msg;
  int rc = 0;
  if (opts->json) {
    rc = mu_cli_print_json(reply_msg);
  } else if (opts->quiet) { /* the leader's address alone ("" line when none is known) */
    printf("%s\n", c->leader_address);
  } else {
    char ago[32];
    printf("version:   %s\n", c->version);
    printf("member:    %s at %s%s\n", c->member_id, c->address, c->leader ? " (leader)" : "");
    printf("leader:    %s (term %llu)\n", c->leader_address[0] ? c->leader_address : "none",
           (unsigned long long)c->leader_term);
    printf("members:   %zu\n", c->n_members);
    for (size_t i = 0; i < c->n_members; i++)
      printf("  %s %s%s\n", c->members[i]->id, c->members[i]->address, c->members[i]->leader ? " leader" : "");
    printf("etcd:      %s%s%s\n", c->etcd_healthy ? "healthy" : "unavailable", c->etcd_error[0] ? ": " : "",
           c->etcd_error);
    printf("agents:    %u connected of %u\n", c->agents_connected, c->agents_total);
    printf("started:   %s\n", mu_cli_ago(c->started_at_ms, ago, sizeof ago));
    printf("healthy:   %s\n", c->healthy ? "yes" : "no");
    if (c->security[0] != '\0')
      printf("security:  %s\n", strcmp(c->security, "insecure") == 0
                                    ? "INSECURE: plaintext, no authentication (musterd --insecure)"
                                    : c->security);
    if (c->caller[0] != '\0') printf("you are:   %s\n", c->caller);
  }
  protobuf_c_message_free_unpacked(reply_msg, NULL);
  return rc;
}
