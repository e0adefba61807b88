/* placement: resource-aware placement decisions per second, in process (no network, no etcd):
 * a registry of A simulated agents of mixed capacities (2..32 CPU, 4..128 GiB, 8..64 slots)
 * and T queued one-task jobs on `any: role=sim` with random CPU and memory requests; times
 * the scheduler passes (mu_sched_pass, the daemon's own code: placement, Assign building and
 * the hooks) until every job is placed or waiting. A decision is a pending host placed on an
 * agent or found to have to wait (with its reason). Then placement quality for both
 * strategies: the spread of CPU utilisation (max - min over agents) under spread, and the
 * agents used under binpack. Prints "name: value unit"; docs/benchmarks.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/pbjson/pbjson.h"

#define TARGET_DECISIONS_PER_S 20000.0 /* issue 20 */

typedef struct bench {
  uv_loop_t loop;
  mu_registry reg;
  mu_scheduler s;
  uint64_t assigns;
  int session;
} bench;

static int hook_send(void *ud, mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err) {
  (void)agent, (void)err;
  if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN) ((bench *)ud)->assigns++;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_agents(bench *b, size_t n, unsigned *seed) {
  static const uint32_t cpus[] = {2, 4, 8, 16, 32};
  for (size_t i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "sim-%04zu", i);
    uint32_t cpu = cpus[rand_r(seed) % 5];
    json_t *j = json_pack("{s:{s:s,s:s,s:{s:s},s:I,s:I,s:{s:i},s:[{s:s}]}}", "hello", "agent_id", id, "hostname", id,
                          "labels", "role", "sim", "cpu_count", (json_int_t)cpu, "memory_bytes",
                          (json_int_t)cpu * 4 << 30, "capacity", "slots", (int)(cpu * 2), "plugins", "type", "shell");
    Muster__V1__AgentMessage *msg = NULL;
    mu_err err = {0};
    mu_agent *a = NULL;
    if (mu_pbjson_from_json(&muster__v1__agent_message__descriptor, j, (ProtobufCMessage **)&msg, &err) != 0 ||
        mu_registry_upsert(&b->reg, id, &a, &err) != 0) {
      fprintf(stderr, "placement: agent %s: %s\n", id, err.msg);
      json_decref(j);
      return -1;
    }
    json_decref(j);
    mu_registry_set_connected(&b->reg, a, msg, "bench", (mu_agent_session *)&b->session, 1, 1);
  }
  return 0;
}

static int submit(bench *b, const char *strategy, uint32_t cpu, uint32_t mem_mib) {
  char text[512];
  snprintf(text, sizeof text,
           "{\"target\":{\"any\":\"role=sim\",\"strategy\":\"%s\"},\"tasks\":[{\"name\":\"t\","
           "\"shell\":{\"script\":\"true\"},\"resources\":{\"requests\":{\"cpu\":%u,\"memory\":"
           "\"%uM\"}}}]}",
           strategy, cpu, mem_mib);
  json_t *j = json_loads(text, 0, NULL);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  mu_job *job = NULL;
  int rc = mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err);
  json_decref(j);
  if (rc == 0) rc = mu_sched_submit(&b->s, spec, NULL, &job, &err);
  if (rc != 0) fprintf(stderr, "placement: submit: %s\n", err.msg);
  return rc;
}

typedef struct result {
  double secs;
  uint64_t decisions, placed, passes;
  double util_spread; /* max - min CPU utilisation over agents */
  size_t agents_used;
} result;

static int run(size_t n_agents, size_t n_tasks, const char *strategy, unsigned seed, result *r) {
  bench *b = calloc(1, sizeof *b);
  if (b == NULL) return -1;
  uv_loop_init(&b->loop);
  mu_registry_init(&b->reg, n_agents + 1);
  mu_sched_config cfg = {.loop = &b->loop,
                         .registry = &b->reg,
                         .heartbeat_timeout_ms = 60000,
                         .tail_bytes = 256,
                         .history_bytes = 4096,
                         .max_tasks = 8,
                         .max_task_runs = 1000,
                         .retention = {.max_kept = n_tasks + 1, .hard_cap = n_tasks + 2}};
  mu_sched_hooks hooks = {.ud = b, .send = hook_send};
  mu_sched_init(&b->s, &cfg, &hooks);
  int rc = add_agents(b, n_agents, &seed);
  for (size_t i = 0; rc == 0 && i < n_tasks; i++)
    rc = submit(b, strategy, 250 * (1 + rand_r(&seed) % 8), 256 * (1 + rand_r(&seed) % 8));
  memset(r, 0, sizeof *r);
  if (rc == 0) {
    /* one pass decides every queued host: placed, or waiting with its reason */
    double t0 = now_s();
    mu_sched_pass(&b->s);
    r->secs = now_s() - t0;
    r->passes = 1;
    r->placed = b->assigns;
    r->decisions = n_tasks;
    double lo = 2, hi = -1;
    for (size_t i = 0; i < b->reg.n; i++) {
      const mu_agent *a = b->reg.agents[i];
      double u = (double)a->alloc.cpu / (double)a->cap.cpu;
      if (u < lo) lo = u;
      if (u > hi) hi = u;
      r->agents_used += a->alloc.slots > 0;
    }
    r->util_spread = hi - lo;
  }
  mu_sched_close(&b->s);
  uv_run(&b->loop, UV_RUN_NOWAIT);
  mu_sched_free(&b->s);
  for (size_t i = 0; i < b->reg.n; i++) b->reg.agents[i]->session = NULL;
  mu_registry_free(&b->reg);
  uv_loop_close(&b->loop);
  free(b);
  return rc;
}

int main(int argc, char **argv) {
  size_t agents = 1000, tasks = 10000, quality_tasks = 10000;
  if (getenv("PLACEMENT_SMALL")) agents = 100, tasks = quality_tasks = 500;
  int c;
  while ((c = getopt(argc, argv, "a:t:")) != -1) {
    if (c == 'a') agents = strtoul(optarg, NULL, 10);
    else if (c == 't') tasks = quality_tasks = strtoul(optarg, NULL, 10);
    else {
      fprintf(stderr, "usage: placement [-a AGENTS] [-t TASKS]\n");
      return 2;
    }
  }
  mu_log_set_level(MU_LOG_WARN);
  result r;
  if (run(agents, tasks, "spread", 1, &r) != 0) return 1;
  double rate = (double)r.decisions / r.secs;
  printf("placement_agents: %zu\nplacement_queued_tasks: %zu\n", agents, tasks);
  printf("placement_pass: %.1f ms (%llu placed, %llu waiting)\n", r.secs * 1000, (unsigned long long)r.placed,
         (unsigned long long)(r.decisions - r.placed));
  printf("placement_decisions_per_s: %.0f /s (target >= %.0f: %s)\n", rate, TARGET_DECISIONS_PER_S,
         rate >= TARGET_DECISIONS_PER_S ? "met" : "missed");
  size_t qs[2] = {quality_tasks, quality_tasks / 5};
  for (size_t k = 0; k < 2 && qs[k] > 0; k++) {
    size_t q = qs[k];
    result sp, bp;
    if (run(agents, q, "spread", 2, &sp) != 0 || run(agents, q, "binpack", 2, &bp) != 0) return 1;
    printf(
        "quality_%zu_tasks_spread: cpu utilisation range %.3f (max - min), %zu agents used, "
        "%llu placed\n",
        q, sp.util_spread, sp.agents_used, (unsigned long long)sp.placed);
    printf(
        "quality_%zu_tasks_binpack: cpu utilisation range %.3f, %zu of %zu agents used, "
        "%llu placed\n",
        q, bp.util_spread, bp.agents_used, agents, (unsigned long long)bp.placed);
  }
  return 0;
}
