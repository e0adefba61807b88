/* `muster queue set NAME [--weight W] [--max-running N]`, `queue ls`, `queue rm NAME`: the
 * cluster's named queues (muster.v1.Queues, docs/scheduling.md#queues). ls shows every queue,
 * from musterd's config or set here, with its hosts running and waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "muster/v1/schedule.pb-c.h"

static const char queue_usage[] =
    "usage: muster queue set NAME [--weight W] [--max-running N]\n"
    "       muster queue ls\n"
    "       muster queue rm NAME\n"
    "\n"
    "A job names its queue with `queue:` in its spec (default: `default`). Across queues the\n"
    "next host to start comes from the queue with the fewest running per unit of weight;\n"
    "--max-running caps a queue's running hosts (0: no limit). A queue set here is stored in\n"
    "etcd and overrides a musterd config queue (`queues:`) of the same name; rm removes it.\n";

static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "muster: %s%s\n%s", what, arg ? arg : "", queue_usage);
  return 2;
}

static int call(const mu_cli_opts *opts, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply) {
  return mu_cli_unary_exit(opts, NULL, method, req, reply_desc, ret_reply);
}

static void print_row(const Muster__V1__QueueInfo *q) {
  char max[16];
  if (q->max_running) snprintf(max, sizeof max, "%u", q->max_running);
  else snprintf(max, sizeof max, "-");
  printf("%-20s %6u %11s %7u %7u  %s\n", q->name, q->weight, max, q->running, q->waiting, q->source);
}

static int parse_u32(const char *flag, const char *text, uint32_t *ret) {
  char *end = NULL;
  unsigned long v = strtoul(text, &end, 10);
  if (text[0] < '0' || text[0] > '9' || *end != '\0' || v > 1000000)
    return usage_error(flag, ": expected a number 0..1000000");
  *ret = (uint32_t)v;
  return 0;
}

static int queue_set(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__SetQueueRequest req = MUSTER__V1__SET_QUEUE_REQUEST__INIT;
  req.weight = 1;
  for (int i = 3; i < argc; i++) {
    int rc = 0;
    if (strcmp(argv[i], "--weight") == 0 && i + 1 < argc) rc = parse_u32("--weight", argv[++i], &req.weight);
    else if (strcmp(argv[i], "--max-running") == 0 && i + 1 < argc)
      rc = parse_u32("--max-running", argv[++i], &req.max_running);
    else return usage_error("queue set: unexpected argument ", argv[i]);
    if (rc != 0) return rc;
  }
  req.name = argv[2];
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Queues/SetQueue", &req.base, &muster__v1__queue_info__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__QueueInfo *q = (const Muster__V1__QueueInfo *)reply;
  if (opts->json) {
    mu_cli_print_json(reply);
  } else if (!opts->quiet) {
    char max[48] = "no running limit";
    if (q->max_running) snprintf(max, sizeof max, "at most %u running", q->max_running);
    printf("queue %s: weight %u, %s\n", q->name, q->weight, max);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int queue_ls(const mu_cli_opts *opts) {
  Muster__V1__ListQueuesRequest req = MUSTER__V1__LIST_QUEUES_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Queues/ListQueues", &req.base, &muster__v1__list_queues_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__ListQueuesResponse *r = (const Muster__V1__ListQueuesResponse *)reply;
  if (!opts->json)
    printf("%-20s %6s %11s %7s %7s  %s\n", "QUEUE", "WEIGHT", "MAX_RUNNING", "RUNNING", "WAITING", "SOURCE");
  for (size_t i = 0; i < r->n_queues; i++) {
    if (opts->json) mu_cli_print_json(&r->queues[i]->base);
    else print_row(r->queues[i]);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int queue_rm(const mu_cli_opts *opts, const char *name) {
  Muster__V1__QueueNameRequest req = MUSTER__V1__QUEUE_NAME_REQUEST__INIT;
  req.name = (char *)name;
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "/muster.v1.Queues/DeleteQueue", &req.base, &muster__v1__queue_info__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__QueueInfo *q = (const Muster__V1__QueueInfo *)reply;
  if (opts->json) mu_cli_print_json(reply);
  else if (!opts->quiet && q->source[0] == 'c')
    printf("queue %s removed; musterd's config queue of that name applies (weight %u)\n", name, q->weight);
  else if (!opts->quiet) printf("queue %s removed (its jobs wait in default)\n", name);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_queue(const mu_cli_opts *opts, int argc, char **argv) {
  const char *sub = argc >= 2 ? argv[1] : "";
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(queue_usage, stdout);
    return 0;
  }
  if (strcmp(sub, "set") == 0) {
    if (argc < 3 || argv[2][0] == '-') return usage_error("queue set: expected NAME", NULL);
    return queue_set(opts, argc, argv);
  }
  if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0) {
    if (argc > 2) return usage_error("queue ls: unexpected argument ", argv[2]);
    return queue_ls(opts);
  }
  if (strcmp(sub, "rm") == 0) {
    if (argc != 3 || argv[2][0] == '-') return usage_error("queue rm: expected one NAME", NULL);
    return queue_rm(opts, argv[2]);
  }
  return usage_error("queue: expected set, ls or rm", NULL);
}
