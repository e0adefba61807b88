/* Task events as the runner hands them to the agent: one struct per muster.v1.TaskEvent, with
 * borrowed pointers valid only during the sink callback (the agent serialises and journals
 * them there). seq is per task attempt and increasing from 1; the agent assigns its own
 * per-agent sequence when it journals the event. */
#ifndef MU_EVENT_H
#define MU_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Numbered as muster.v1.TaskState. */
typedef enum {
  MU_TASK_STARTING = 3,
  MU_TASK_RUNNING = 4,
  MU_TASK_SUCCEEDED = 5,
  MU_TASK_FAILED = 6,
  MU_TASK_TIMED_OUT = 7,
  MU_TASK_CANCELLED = 8,
} mu_task_state;

typedef enum { MU_EV_STATE = 1, MU_EV_OUTPUT, MU_EV_PROGRESS, MU_EV_PARAM } mu_event_kind;

/* As muster.v1.TaskMetrics; -1 where unknown. */
typedef struct mu_task_metrics {
  int64_t wall_ms;
  int64_t user_cpu_ms;
  int64_t sys_cpu_ms;
  int64_t max_rss_bytes;
  int64_t cgroup_memory_peak_bytes;
  int64_t output_bytes;
  int64_t output_dropped_bytes;
  /* block IO bytes summed over the attempt's processes (0 when unknown); agent-only, not in
   * muster.v1.TaskMetrics */
  int64_t io_read_bytes, io_write_bytes;
} mu_task_metrics;

typedef struct mu_task_event {
  mu_event_kind kind;
  const char *job_id;
  const char *task_id;
  uint32_t attempt;
  uint64_t seq;
  int64_t at_ms; /* wall clock */
  struct {
    mu_task_state state;
    int exit_code;
    int signal;
    const char *message;            /* "" when none */
    const mu_task_metrics *metrics; /* final states only, else NULL */
  } state;
  struct {
    int stream; /* 1 stdout, 2 stderr */
    const void *data;
    size_t len;
    uint64_t dropped_bytes; /* dropped so far in this task */
  } output;
  struct {
    double percent;
    const char *message;
  } progress;
  struct {
    const char *key;
    const char *value;
  } param;
} mu_task_event;

typedef void (*mu_event_cb)(void *arg, const mu_task_event *ev);

static inline int mu_task_state_final(mu_task_state s) { return s >= MU_TASK_SUCCEEDED; }

#endif
