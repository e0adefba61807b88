/* The followed job's state (watch_model.h): task runs and hosts by hashed id, output kept
 * within a bound, counts as musterd sent them. */
#include "cli/watch_model.h"

#include <stdlib.h>
#include <string.h>

#include "lib/jobcounts/jobcounts.h"

#define NO_INDEX ((size_t)-1)

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* Index lookup/insert: keys are read through key_of(base, i). */
typedef const char *(*key_fn)(const void *base, size_t i);

static const char *run_key(const void *base, size_t i) { return ((const mu_watch_run *)base)[i].task_id; }
static const char *host_key(const void *base, size_t i) { return ((const mu_watch_host *)base)[i].agent_id; }

static size_t *slot_of(size_t *index, size_t cap, const void *base, key_fn key, const char *k) {
  size_t mask = cap - 1;
  for (size_t s = hash_str(k) & mask;; s = (s + 1) & mask)
    if (index[s] == NO_INDEX || strcmp(key(base, index[s]), k) == 0) return &index[s];
}

/* Grows index to hold n + 1 entries at most half full; 0 or -1 (out of memory). */
static int index_reserve(size_t **index, size_t *cap, size_t n, const void *base, key_fn key) {
  if ((n + 1) * 2 <= *cap) return 0;
  size_t ncap = *cap ? *cap * 2 : 64;
  while ((n + 1) * 2 > ncap) ncap *= 2;
  size_t *g = malloc(ncap * sizeof *g);
  if (g == NULL) return -1;
  for (size_t i = 0; i < ncap; i++) g[i] = NO_INDEX;
  for (size_t i = 0; i < n; i++) *slot_of(g, ncap, base, key, key(base, i)) = i;
  free(*index);
  *index = g;
  *cap = ncap;
  return 0;
}

void mu_watch_model_init(mu_watch_model *m, uint32_t targets, uint32_t n_tasks, mu_keep_mode keep, size_t keep_bytes) {
  memset(m, 0, sizeof *m);
  m->targets = targets;
  m->n_tasks = n_tasks ? n_tasks : 1;
  m->keep = keep;
  m->keep_bytes = keep_bytes;
  muster__v1__job_counts__init(&m->counts);
  m->counts.targets = targets;
  m->counts.pending = targets;
}

void mu_watch_model_free(mu_watch_model *m) {
  for (size_t i = 0; i < m->n_runs; i++) {
    free(m->runs[i].task_id);
    free(m->runs[i].task_name);
    free(m->runs[i].message);
    free(m->runs[i].out);
  }
  for (size_t i = 0; i < m->n_hosts; i++) free(m->hosts[i].agent_id);
  free(m->runs);
  free(m->hosts);
  free(m->run_index);
  free(m->host_index);
  memset(m, 0, sizeof *m);
}

static size_t host_for(mu_watch_model *m, const char *agent_id) {
  if (index_reserve(&m->host_index, &m->host_index_cap, m->n_hosts, m->hosts, host_key) != 0) return NO_INDEX;
  size_t *slot = slot_of(m->host_index, m->host_index_cap, m->hosts, host_key, agent_id);
  if (*slot != NO_INDEX) return *slot;
  if (m->n_hosts == m->cap_hosts) {
    size_t cap = m->cap_hosts ? m->cap_hosts * 2 : 64;
    mu_watch_host *g = realloc(m->hosts, cap * sizeof *g);
    if (g == NULL) return NO_INDEX;
    m->hosts = g;
    m->cap_hosts = cap;
  }
  mu_watch_host *h = &m->hosts[m->n_hosts];
  memset(h, 0, sizeof *h);
  h->agent_id = strdup(agent_id);
  if (h->agent_id == NULL) return NO_INDEX;
  *slot = m->n_hosts;
  return m->n_hosts++;
}

static mu_watch_run *run_for(mu_watch_model *m, const Muster__V1__TaskRun *t) {
  if (index_reserve(&m->run_index, &m->run_index_cap, m->n_runs, m->runs, run_key) != 0) return NULL;
  size_t *slot = slot_of(m->run_index, m->run_index_cap, m->runs, run_key, t->task_id);
  if (*slot != NO_INDEX) return &m->runs[*slot];
  /* an "any" target is named by its agent once placed; before that by its task id */
  size_t host = host_for(m, t->agent_id[0] ? t->agent_id : t->task_id);
  if (host == NO_INDEX) return NULL;
  if (m->n_runs == m->cap_runs) {
    size_t cap = m->cap_runs ? m->cap_runs * 2 : 64;
    mu_watch_run *g = realloc(m->runs, cap * sizeof *g);
    if (g == NULL) return NULL;
    m->runs = g;
    m->cap_runs = cap;
  }
  mu_watch_run *r = &m->runs[m->n_runs];
  memset(r, 0, sizeof *r);
  r->task_id = strdup(t->task_id);
  r->task_name = strdup(t->task_name);
  r->host = host;
  if (r->task_id == NULL || r->task_name == NULL) {
    free(r->task_id);
    free(r->task_name);
    return NULL;
  }
  *slot = m->n_runs++;
  return r;
}

static void keep_output(mu_watch_model *m, mu_watch_run *r, const uint8_t *data, size_t n) {
  r->out_seen += n;
  if (m->keep == MU_KEEP_NONE || m->keep_bytes == 0) return;
  if (m->keep == MU_KEEP_HEAD) {
    if (r->out_len >= m->keep_bytes) return;
    if (r->out_len + n > m->keep_bytes) n = m->keep_bytes - r->out_len;
  } else if (n >= m->keep_bytes) { /* tail: the newest bytes win */
    data += n - m->keep_bytes;
    n = m->keep_bytes;
    r->out_len = 0;
  } else if (r->out_len + n > m->keep_bytes) {
    size_t drop = r->out_len + n - m->keep_bytes;
    memmove(r->out, r->out + drop, r->out_len - drop);
    r->out_len -= drop;
  }
  char *g = realloc(r->out, r->out_len + n + 1);
  if (g == NULL) return;
  memcpy(g + r->out_len, data, n);
  r->out_len += n;
  g[r->out_len] = '\0';
  r->out = g;
}

static int is_active(Muster__V1__TaskState s) {
  return s == MUSTER__V1__TASK_STATE__ASSIGNED || s == MUSTER__V1__TASK_STATE__STARTING ||
         s == MUSTER__V1__TASK_STATE__RUNNING;
}

static void set_str(char **dst, const char *src) {
  char *c = strdup(src ? src : "");
  if (c == NULL) return;
  free(*dst);
  *dst = c;
}

mu_watch_change mu_watch_model_apply(mu_watch_model *m, const Muster__V1__JobEvent *ev, int64_t now_ms,
                                     mu_watch_run **ret_run) {
  *ret_run = NULL;
  if (ev->job_state != MUSTER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED) m->job_state = ev->job_state;
  if (ev->counts != NULL) {
    m->counts = *ev->counts;
    m->counts.base.unknown_fields = NULL;
    m->counts.base.n_unknown_fields = 0;
    m->have_counts = 1;
    if (m->counts.running > m->max_running) m->max_running = m->counts.running;
  }
  const Muster__V1__TaskRun *t = ev->task;
  if (t == NULL || t->task_id[0] == '\0') return MU_EV_NONE;
  mu_watch_run *r = run_for(m, t);
  if (r == NULL) return MU_EV_NONE;
  *ret_run = r;
  mu_watch_host *h = &m->hosts[r->host];
  if (ev->output != NULL) {
    keep_output(m, r, ev->output->data.data, ev->output->data.len);
    return MU_EV_OUTPUT;
  }
  if (ev->progress != NULL) return MU_EV_NONE;
  if (t->agent_id[0] && strcmp(h->agent_id, t->agent_id) != 0) {
    /* an "any" target placed on its agent: the host takes the agent's name */
    set_str(&h->agent_id, t->agent_id);
    free(m->host_index); /* rebuilt on the next lookup */
    m->host_index = NULL;
    m->host_index_cap = 0;
  }
  int was_ended = r->ended;
  r->state = t->state;
  r->attempt = t->attempt;
  r->signal = t->signal;
  r->has_exit = mu_task_run_exit(t, &r->exit_code);
  r->started_at_ms = t->started_at_ms;
  r->finished_at_ms = t->finished_at_ms;
  set_str(&r->message, t->message);
  if (is_active(t->state)) {
    if (h->first_start_mono == 0) h->first_start_mono = now_ms;
    return MU_EV_CHANGED;
  }
  int final = t->state >= MUSTER__V1__TASK_STATE__SUCCEEDED;
  if (final && t->retry_pending) {
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
    r->out_seen = 0;
    return MU_EV_RETRYING;
  }
  if (!final) return MU_EV_CHANGED;
  if (!was_ended) {
    r->ended = 1;
    h->runs_ended++;
    /* musterd says "skipped: ..." for the runs of a target skip_unreachable skipped */
    if (t->state == MUSTER__V1__TASK_STATE__UNREACHABLE && strncmp(t->message, "skipped", 7) == 0) h->skipped = 1;
    else if (t->state != MUSTER__V1__TASK_STATE__SUCCEEDED) h->failed = 1;
  }
  if (r->out_seen == 0 && t->output_tail[0] && m->keep != MU_KEEP_NONE) {
    /* the stream carried no output (a late watcher past the history bound): the tail */
    size_t n = strlen(t->output_tail);
    keep_output(m, r, (const uint8_t *)t->output_tail, n);
    r->out_from_tail = 1;
  }
  if (ev->host_done && !h->done) {
    h->done = 1;
    h->ended_mono = now_ms;
    if (h->first_start_mono > 0) {
      m->host_ms_sum += now_ms - h->first_start_mono;
      m->host_ms_n++;
    }
  }
  return was_ended ? MU_EV_CHANGED : MU_EV_ENDED;
}

void mu_watch_run_drop_output(mu_watch_run *r) {
  free(r->out);
  r->out = NULL;
  r->out_len = 0;
}

uint64_t mu_watch_model_runs_ended(const mu_watch_model *m) {
  uint64_t n = 0;
  for (size_t i = 0; i < m->n_hosts; i++) n += m->hosts[i].done ? m->n_tasks : m->hosts[i].runs_ended;
  /* hosts that ended without an event of theirs (cancelled before they started) */
  uint32_t ended = mu_job_counts_ended(&m->counts);
  size_t done_seen = 0;
  for (size_t i = 0; i < m->n_hosts; i++) done_seen += m->hosts[i].done;
  if (ended > done_seen) n += (uint64_t)(ended - done_seen) * m->n_tasks;
  uint64_t total = (uint64_t)m->targets * m->n_tasks;
  return n > total ? total : n;
}

int64_t mu_watch_model_eta_ms(const mu_watch_model *m, int64_t now_ms) {
  if (m->host_ms_n == 0) return -1;
  int64_t mean = m->host_ms_sum / m->host_ms_n;
  int64_t work = (int64_t)m->counts.pending * mean;
  for (size_t i = 0; i < m->n_hosts; i++) {
    const mu_watch_host *h = &m->hosts[i];
    if (h->done || h->first_start_mono == 0) continue;
    int64_t left = mean - (now_ms - h->first_start_mono);
    if (left > 0) work += left;
  }
  uint32_t lanes = m->max_running ? m->max_running : 1;
  return work / lanes;
}
