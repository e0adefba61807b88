/* Reason classes and sentences for `muster explain` (see explain.h). */
#include "cli/explain.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "lib/jobcounts/reason.h"

static const char *state_name(Muster__V1__TaskState s) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&muster__v1__task_state__descriptor, (int)s);
  return v ? v->name : "?";
}

static void duration(int64_t ms, char *buf, size_t size) {
  if (ms < 0) ms = 0;
  if (ms < 10000) snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
  else if (ms < 120000) snprintf(buf, size, "%llds", (long long)(ms / 1000));
  else if (ms < 7200000) snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
  else snprintf(buf, size, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

static void bytes(uint64_t n, char *buf, size_t size) {
  if (n >= 1ull << 30) snprintf(buf, size, "%.1f GiB", (double)n / (1 << 30));
  else if (n >= 1ull << 20) snprintf(buf, size, "%.1f MiB", (double)n / (1 << 20));
  else snprintf(buf, size, "%.1f KiB", (double)n / 1024);
}

static const Muster__V1__TaskSpec *spec_of(const Muster__V1__Job *job, const char *name) {
  for (size_t i = 0; job->spec && i < job->spec->n_tasks; i++)
    if (strcmp(job->spec->tasks[i]->name, name) == 0) return job->spec->tasks[i];
  return NULL;
}

static const Muster__V1__AgentInfo *agent_of(Muster__V1__AgentInfo *const *agents, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(agents[i]->agent_id, id) == 0) return agents[i];
  return NULL;
}

/* "disconnected since 10m ago (reason)" / "draining" / "connected" for the agent. */
static void agent_state(const Muster__V1__AgentInfo *a, int64_t now_ms, char *buf, size_t size) {
  if (a == NULL) {
    snprintf(buf, size, "not known to the control plane (forgotten?)");
  } else if (a->state == MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED) {
    char ago[32] = "a while";
    if (a->last_heartbeat_ms > 0) duration(now_ms - a->last_heartbeat_ms, ago, sizeof ago);
    snprintf(buf, size, "disconnected, last heard from %s ago%s%s%s", ago, a->disconnect_reason[0] ? " (" : "",
             a->disconnect_reason, a->disconnect_reason[0] ? ")" : "");
  } else if (a->state == MUSTER__V1__AGENT_STATE__AGENT_DRAINING) {
    snprintf(buf, size, "draining (no new tasks start there; muster drain %s --undrain)", a->agent_id);
  } else {
    snprintf(buf, size, "connected");
  }
}

static const char *signal_text(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGSEGV: return "SIGSEGV (a crash)";
    case SIGABRT: return "SIGABRT (an abort)";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGBUS: return "SIGBUS";
    default: return "a signal";
  }
}

/* The reason class and sentence of one run. */
static void reason(const Muster__V1__Job *job, const Muster__V1__TaskRun *tr, Muster__V1__AgentInfo *const *agents,
                   size_t n_agents, int64_t now_ms, char *cls, size_t cls_size, char *why, size_t why_size) {
  const Muster__V1__TaskSpec *spec = spec_of(job, tr->task_name);
  const Muster__V1__TaskMetrics *m = tr->metrics;
  const char *msg = tr->message;
  char a_state[300], d[32];
  agent_state(agent_of(agents, n_agents, tr->agent_id), now_ms, a_state, sizeof a_state);
  uint64_t mem_limit = 0;
  if (spec && spec->resources && spec->resources->memory[0]) mu_size_parse(spec->resources->memory, &mem_limit, NULL);
  mu_run_end end = {
      .state = tr->state,
      .exit_code = tr->exit_code,
      .signal = tr->signal,
      .message = msg,
      .memory_peak_bytes = m && m->cgroup_memory_peak_bytes > 0 ? (uint64_t)m->cgroup_memory_peak_bytes : 0,
      .memory_limit_bytes = mem_limit};
  const char *rc = mu_run_reason(&end); /* the class; the words are this file's */
  switch (tr->state) {
    case MUSTER__V1__TASK_STATE__FAILED:
      if (strcmp(rc, "oom") == 0) {
        char peak[32], lim[32];
        bytes(m ? (uint64_t)m->cgroup_memory_peak_bytes : 0, peak, sizeof peak);
        bytes(mem_limit, lim, sizeof lim);
        snprintf(cls, cls_size, "out of memory");
        if (mem_limit > 0 && m)
          snprintf(why, why_size,
                   "killed by the kernel's OOM killer: memory peaked at %s of "
                   "its %s limit (resources.memory)",
                   peak, lim);
        else snprintf(why, why_size, "killed by the kernel's OOM killer: %s", msg);
      } else if (tr->signal != 0) {
        snprintf(cls, cls_size, "signal");
        snprintf(why, why_size, "killed by signal %d (%s)%s%s", tr->signal, signal_text(tr->signal), msg[0] ? ": " : "",
                 msg);
      } else if (tr->exit_code != 0) {
        snprintf(cls, cls_size, "exit code");
        snprintf(why, why_size, "exited with code %d%s%s", tr->exit_code, msg[0] ? ": " : "", msg);
      } else {
        snprintf(cls, cls_size, "refused");
        snprintf(why, why_size, "%s", msg[0] ? msg : "the agent could not start it");
      }
      break;
    case MUSTER__V1__TASK_STATE__TIMED_OUT:
      snprintf(cls, cls_size, "timeout");
      snprintf(why, why_size, "still running at its %s timeout, so it was stopped%s%s",
               spec && spec->timeout[0] ? spec->timeout : "", msg[0] ? ": " : "", msg);
      break;
    case MUSTER__V1__TASK_STATE__LOST:
      snprintf(cls, cls_size, "lost");
      snprintf(why, why_size, "%s; agent %s is %s", msg[0] ? msg : "the agent went away while it ran", tr->agent_id,
               a_state);
      break;
    case MUSTER__V1__TASK_STATE__UNREACHABLE:
      snprintf(cls, cls_size, "%s", rc);
      snprintf(why, why_size, "%s; agent %s is %s", msg[0] ? msg : "never started: its agent could not be reached",
               tr->agent_id[0] ? tr->agent_id : "-", a_state);
      break;
    case MUSTER__V1__TASK_STATE__CANCELLED: /* records from before UNREACHABLE said CANCELLED */
      if (strcmp(rc, "unreachable") == 0) {
        snprintf(cls, cls_size, "unreachable");
        snprintf(why, why_size, "%s; agent %s is %s", msg, tr->agent_id[0] ? tr->agent_id : "-", a_state);
      } else if (strstr(msg, "max errors")) {
        snprintf(cls, cls_size, "cancelled");
        snprintf(why, why_size, "%s: more hosts failed than rollout.max_errors (%s) allows", msg,
                 job->spec && job->spec->rollout ? job->spec->rollout->max_errors : "");
      } else {
        snprintf(cls, cls_size, "cancelled");
        snprintf(why, why_size, "%s", msg[0] ? msg : "cancelled");
      }
      break;
    case MUSTER__V1__TASK_STATE__PENDING:
      snprintf(cls, cls_size, "waiting");
      if (strstr(a_state, "connected") == a_state)
        snprintf(why, why_size,
                 "waiting for its turn (earlier tasks on %s, or the rollout's "
                 "concurrency or batch)%s%s",
                 tr->agent_id, msg[0] ? ": " : "", msg);
      else
        snprintf(why, why_size,
                 "waiting for agent %s, which is %s (rollout.disconnected_wait "
                 "decides how long)",
                 tr->agent_id[0] ? tr->agent_id : "(any)", a_state);
      break;
    case MUSTER__V1__TASK_STATE__ASSIGNED:
    case MUSTER__V1__TASK_STATE__STARTING:
    case MUSTER__V1__TASK_STATE__RUNNING:
      duration(tr->started_at_ms > 0 ? now_ms - tr->started_at_ms : 0, d, sizeof d);
      snprintf(cls, cls_size, "running");
      snprintf(why, why_size, "%s for %s on %s (agent %s)",
               tr->state == MUSTER__V1__TASK_STATE__RUNNING ? "running" : "starting", d, tr->agent_id, a_state);
      break;
    default:
      duration(tr->finished_at_ms - tr->started_at_ms, d, sizeof d);
      snprintf(cls, cls_size, "ok");
      snprintf(why, why_size, "succeeded in %s", d);
  }
}

/* The last n lines of text, each indented. */
static void tail_lines(const char *text, int n, FILE *out) {
  size_t len = strlen(text);
  while (len > 0 && text[len - 1] == '\n') len--;
  const char *start = text + len;
  for (int lines = 0; start > text && lines < n;) {
    start--;
    if (*start == '\n' && ++lines == n) {
      start++;
      break;
    }
  }
  if (len == 0) return;
  fprintf(out, "    last output:\n");
  for (const char *p = start; p < text + len;) {
    const char *nl = memchr(p, '\n', (size_t)(text + len - p));
    size_t k = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
    fprintf(out, "      | %.*s\n", (int)k, p);
    if (nl == NULL) break;
    p = nl + 1;
  }
}

static int matches(const Muster__V1__TaskRun *tr, const char *task) {
  size_t n = strlen(tr->agent_id);
  if (strcmp(tr->task_id, task) == 0) return 1;
  const char *slash = strrchr(tr->task_id, '/');
  if (slash && strcmp(slash + 1, task) == 0) return 1; /* just the task name */
  return strncmp(task, tr->agent_id, n) == 0 && task[n] == '/' && strcmp(task + n + 1, tr->task_name) == 0;
}

size_t mu_explain_job(const Muster__V1__Job *job, Muster__V1__AgentInfo *const *agents, size_t n_agents,
                      const char *task, int64_t now_ms, int brief, FILE *out) {
  const ProtobufCEnumValue *js =
      protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, (int)job->state);
  char d[32];
  duration((job->finished_at_ms > 0 ? job->finished_at_ms : now_ms) - job->created_at_ms, d, sizeof d);
  /* unreachable hosts: musterd's count (Job.unreachable lists the skipped ones too) */
  const Muster__V1__JobCounts *c = job->counts;
  uint32_t unreachable = c ? c->unreachable : (uint32_t)job->n_unreachable;
  if (!brief) {
    fprintf(out, "job %s '%s': %s after %s; %u of %u %s succeeded, %u failed, %u unreachable", job->id,
            job->spec ? job->spec->name : "", js ? js->name + 4 : "?", d, job->succeeded, job->targets,
            job->targets == 1 ? "target" : "targets", job->failed, unreachable);
    if (c != NULL && c->skipped > 0) fprintf(out, ", %u skipped", c->skipped);
    fputc('\n', out);
  }
  size_t explained = 0;
  for (size_t i = 0; i < job->n_tasks; i++) {
    const Muster__V1__TaskRun *tr = job->tasks[i];
    if (task != NULL ? !matches(tr, task) : tr->state == MUSTER__V1__TASK_STATE__SUCCEEDED || tr->retry_pending)
      continue;
    char cls[32], why[1200];
    reason(job, tr, agents, n_agents, now_ms, cls, sizeof cls, why, sizeof why);
    if (brief) {
      fprintf(out, "%s/%s %s %s: %s\n", tr->agent_id[0] ? tr->agent_id : "any", tr->task_name, state_name(tr->state),
              cls, why);
      explained++;
      continue;
    }
    fprintf(out, "%s/%s: %s (%s, attempt %u)\n  %s\n", tr->agent_id[0] ? tr->agent_id : "any", tr->task_name,
            state_name(tr->state), cls, tr->attempt, why);
    if (tr->state == MUSTER__V1__TASK_STATE__FAILED || tr->state == MUSTER__V1__TASK_STATE__TIMED_OUT || task != NULL)
      tail_lines(tr->output_tail, MU_EXPLAIN_TAIL_LINES, out);
    if (tr->metrics && tr->metrics->output_dropped_bytes > 0) {
      char b[32];
      bytes((uint64_t)tr->metrics->output_dropped_bytes, b, sizeof b);
      fprintf(out, "    %s of output were dropped past its output limit\n", b);
    }
    explained++;
  }
  if (explained == 0)
    fprintf(out, task ? "no task run '%s' in this job\n" : "every task run succeeded%s\n", task ? task : "");
  return explained;
}
