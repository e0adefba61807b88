/* sim_agents: N simulated agents (bench/fleet.h) against one musterd, for end-to-end tests
 * that need a fleet bigger than this machine can run as real muster-agent processes. Each
 * answers every Assign at once like `hostname` (output "<id>\n", exit 0). Prints "ready N"
 * on stdout once every stream is welcomed, "failed: WHY" and exits 1 if a stream ends
 * early, and stops cleanly (exit 0) on SIGTERM or SIGINT.
 *
 * --task-time DUR makes each task run that long (the live panel's tests and bench).
 * --cpu-mix M1,M2,... makes agent i declare M[i % n] millicores of CPU (placement tests).
 *
 * usage: sim_agents --control HOST:PORT [--agents N] [--prefix P] [--heartbeat-interval DUR]
 *                   [--task-time DUR] [--cpu-mix M1,M2,...] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench/fleet.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/rpc.h"

typedef struct sim {
  uv_loop_t *loop;
  mu_rpc_engine *engine;
  mu_fleet *fleet;
  uv_timer_t tick;
  uv_signal_t sigterm, sigint;
  size_t agents;
  int announced, stopping, failed;
} sim;

static void on_engine_closed(void *ud) { (void)ud; }

static void on_fleet_stopped(void *ud) {
  sim *s = ud;
  uv_close((uv_handle_t *)&s->tick, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  mu_rpc_engine_close(s->engine, on_engine_closed, s);
}

static void stop(sim *s) {
  if (s->stopping) return;
  s->stopping = 1;
  uv_timer_stop(&s->tick);
  mu_fleet_stop(s->fleet, on_fleet_stopped, s);
}

static void on_tick(uv_timer_t *t) {
  sim *s = t->data;
  const mu_fleet_stats *st = mu_fleet_stats_get(s->fleet);
  if (st->failed > 0) {
    printf("failed: %zu streams ended: %s\n", st->failed, st->first_error);
    fflush(stdout);
    s->failed = 1;
    stop(s);
  } else if (!s->announced && st->welcomed == s->agents) {
    printf("ready %zu\n", st->welcomed);
    fflush(stdout);
    s->announced = 1;
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  stop(h->data);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"control", required_argument, NULL, 'c'},
      {"agents", required_argument, NULL, 'n'},
      {"prefix", required_argument, NULL, 'p'},
      {"heartbeat-interval", required_argument, NULL, 'h'},
      {"task-time", required_argument, NULL, 't'},
      {"cpu-mix", required_argument, NULL, 'm'},
      {NULL, 0, NULL, 0},
  };
  const char *control = NULL, *prefix = "sim";
  long agents = 100;
  int64_t heartbeat_ms = 1000, task_ms = 0;
  uint32_t cpu_mix[16];
  size_t n_cpu_mix = 0;
  mu_err err = {0};
  int opt;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
      case 'c': control = optarg; break;
      case 'n': agents = strtol(optarg, NULL, 10); break;
      case 'p': prefix = optarg; break;
      case 'h':
        if (mu_duration_parse(optarg, &heartbeat_ms, &err) != 0 || heartbeat_ms <= 0) {
          fprintf(stderr, "sim_agents: --heartbeat-interval: %s\n", err.msg[0] ? err.msg : "must be positive");
          return 2;
        }
        break;
      case 't':
        if (mu_duration_parse(optarg, &task_ms, &err) != 0 || task_ms < 0) {
          fprintf(stderr, "sim_agents: --task-time: %s\n", err.msg[0] ? err.msg : "negative");
          return 2;
        }
        break;
      case 'm':
        for (char *save = NULL, *tok = strtok_r(optarg, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
          char *end = NULL;
          unsigned long v = strtoul(tok, &end, 10);
          if (*end != '\0' || v == 0 || v > 1000000 || n_cpu_mix == 16) {
            fprintf(stderr, "sim_agents: --cpu-mix: up to 16 millicore amounts, got '%s'\n", tok);
            return 2;
          }
          cpu_mix[n_cpu_mix++] = (uint32_t)v;
        }
        break;
      default: return 2;
    }
  }
  if (control == NULL || agents < 1 || agents > 100000) {
    fprintf(stderr,
            "usage: sim_agents --control HOST:PORT [--agents 1..100000] [--prefix P]"
            " [--heartbeat-interval DUR] [--task-time DUR]\n");
    return 2;
  }
  sim s;
  memset(&s, 0, sizeof s);
  s.loop = uv_default_loop();
  s.agents = (size_t)agents;
  mu_fleet_config fc = {.target = control,
                        .agents = s.agents,
                        .agents_per_channel = 50,
                        .heartbeat_interval_ms = heartbeat_ms,
                        .id_prefix = prefix,
                        .task_ms = task_ms,
                        .cpu_mix = cpu_mix,
                        .n_cpu_mix = n_cpu_mix};
  if (mu_rpc_engine_new(s.loop, &s.engine, &err) != 0 || mu_fleet_new(s.engine, &fc, &s.fleet, &err) != 0 ||
      mu_fleet_connect(s.fleet, &err) != 0) {
    fprintf(stderr, "sim_agents: %s\n", err.msg);
    return 1; /* process exit releases what was set up; nothing is shared */
  }
  uv_timer_init(s.loop, &s.tick);
  s.tick.data = &s;
  uv_timer_start(&s.tick, on_tick, 20, 20);
  uv_signal_init(s.loop, &s.sigterm);
  uv_signal_init(s.loop, &s.sigint);
  s.sigterm.data = s.sigint.data = &s;
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  mu_fleet_free(s.fleet);
  return s.failed ? 1 : 0;
}
