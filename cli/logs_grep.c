/* Grep across a job's hosts with clubak-style grouping (see logs_grep.h). */
#include "cli/logs_grep.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/regex_size.h"

typedef struct host_lines {
  char *host;
  char **lines; /* "TASK: line" */
  size_t n, cap;
  size_t dropped;     /* matching lines past MU_GREP_MAX_LINES */
  char *partial_task; /* the task whose unfinished line is in partial */
  char *partial;
  size_t partial_len;
  int group; /* index of its group once printed, -1 before */
} host_lines;

struct mu_logs_grep {
  regex_t re;
  char **only; /* hosts to keep, NULL: all */
  size_t n_only;
  char *only_copy;
  host_lines *hosts;
  size_t n_hosts, cap_hosts;
};

int mu_logs_grep_new(const char *regex, const char *hosts, mu_logs_grep **ret, mu_err *err) {
  mu_logs_grep *g = calloc(1, sizeof *g);
  if (g == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  char size_why[160];
  if (mu_regex_check_size(regex, MU_REGEX_MAX_UNITS, size_why, sizeof size_why) != 0) {
    free(g);
    return mu_err_set(err, MU_EINVAL, "--grep '%s': regular expression %s", regex, size_why);
  }
  int rc = regcomp(&g->re, regex, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char why[200];
    regerror(rc, &g->re, why, sizeof why);
    free(g);
    return mu_err_set(err, MU_EINVAL, "--grep '%s': %s", regex, why);
  }
  if (hosts != NULL && hosts[0] != '\0') {
    g->only_copy = strdup(hosts);
    g->only = calloc(strlen(hosts) / 2 + 2, sizeof *g->only);
    if (g->only_copy == NULL || g->only == NULL) {
      mu_logs_grep_free(g);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *h = strtok_r(g->only_copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) g->only[g->n_only++] = h;
  }
  *ret = g;
  return 0;
}

void mu_logs_grep_free(mu_logs_grep *g) {
  if (g == NULL) return;
  regfree(&g->re);
  for (size_t i = 0; i < g->n_hosts; i++) {
    host_lines *h = &g->hosts[i];
    for (size_t k = 0; k < h->n; k++) free(h->lines[k]);
    free(h->lines);
    free(h->host);
    free(h->partial_task);
    free(h->partial);
  }
  free(g->hosts);
  free(g->only);
  free(g->only_copy);
  free(g);
}

/* "JOB/AGENT/TASK" or "AGENT/TASK" -> agent and task. */
static void split_task_id(const char *task_id, char *agent, size_t asize, const char **task) {
  const char *last = strrchr(task_id, '/');
  const char *first = strchr(task_id, '/');
  const char *start = first != NULL && first != last ? first + 1 : task_id;
  size_t n = last != NULL ? (size_t)(last - start) : strlen(start);
  snprintf(agent, asize, "%.*s", (int)n, start);
  *task = last != NULL ? last + 1 : "";
}

static host_lines *host_of(mu_logs_grep *g, const char *agent) {
  for (size_t i = 0; i < g->n_hosts; i++)
    if (strcmp(g->hosts[i].host, agent) == 0) return &g->hosts[i];
  if (g->n_only > 0) {
    size_t k = 0;
    while (k < g->n_only && strcmp(g->only[k], agent) != 0) k++;
    if (k == g->n_only) return NULL;
  }
  if (g->n_hosts == MU_GREP_MAX_HOSTS) return NULL;
  if (g->n_hosts == g->cap_hosts) {
    size_t cap = g->cap_hosts ? g->cap_hosts * 2 : 16;
    host_lines *grown = realloc(g->hosts, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    g->hosts = grown;
    g->cap_hosts = cap;
  }
  host_lines *h = &g->hosts[g->n_hosts];
  memset(h, 0, sizeof *h);
  h->host = strdup(agent);
  if (h->host == NULL) return NULL;
  h->group = -1;
  g->n_hosts++;
  return h;
}

static void add_line(mu_logs_grep *g, host_lines *h, const char *task, const char *line, size_t n) {
  char text[MU_GREP_MAX_LINE + 1];
  size_t keep = n < MU_GREP_MAX_LINE ? n : MU_GREP_MAX_LINE;
  memcpy(text, line, keep);
  text[keep] = '\0';
  if (keep > 0 && text[keep - 1] == '\r') text[--keep] = '\0';
  if (regexec(&g->re, text, 0, NULL, 0) != 0) return;
  if (h->n == MU_GREP_MAX_LINES) {
    h->dropped++;
    return;
  }
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 16;
    char **grown = realloc(h->lines, cap * sizeof *grown);
    if (grown == NULL) {
      h->dropped++;
      return;
    }
    h->lines = grown;
    h->cap = cap;
  }
  size_t len = strlen(task) + keep + 3;
  char *entry = malloc(len);
  if (entry == NULL) {
    h->dropped++;
    return;
  }
  snprintf(entry, len, "%s: %s", task, text);
  h->lines[h->n++] = entry;
}

static void flush_partial(mu_logs_grep *g, host_lines *h) {
  if (h->partial_task != NULL && h->partial_len > 0) add_line(g, h, h->partial_task, h->partial, h->partial_len);
  free(h->partial_task);
  h->partial_task = NULL;
  h->partial_len = 0;
}

void mu_logs_grep_feed(mu_logs_grep *g, const char *task_id, const char *data, size_t len) {
  char agent[256];
  const char *task;
  split_task_id(task_id, agent, sizeof agent, &task);
  host_lines *h = host_of(g, agent);
  if (h == NULL) return;
  if (h->partial_task != NULL && strcmp(h->partial_task, task) != 0) flush_partial(g, h);
  const char *p = data, *end = data + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (h->partial_len > 0 || nl == NULL) { /* join with the unfinished line */
      size_t room = MU_GREP_MAX_LINE - h->partial_len;
      size_t take = n < room ? n : room;
      if (h->partial == NULL) h->partial = malloc(MU_GREP_MAX_LINE);
      if (h->partial != NULL) {
        memcpy(h->partial + h->partial_len, p, take);
        h->partial_len += take;
      }
      if (h->partial_task == NULL) h->partial_task = strdup(task);
      if (nl != NULL) flush_partial(g, h);
    } else {
      add_line(g, h, task, p, n);
    }
    if (nl == NULL) break;
    p = nl + 1;
  }
}

static int same_lines(const host_lines *a, const host_lines *b) {
  if (a->n != b->n || a->dropped != b->dropped) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->lines[i], b->lines[i]) != 0) return 0;
  return 1;
}

static int cmp_host(const void *a, const void *b) {
  return strcmp(((const host_lines *)a)->host, ((const host_lines *)b)->host);
}

size_t mu_logs_grep_print(mu_logs_grep *g, FILE *out) {
  for (size_t i = 0; i < g->n_hosts; i++) flush_partial(g, &g->hosts[i]);
  if (g->n_hosts > 1) qsort(g->hosts, g->n_hosts, sizeof *g->hosts, cmp_host);
  /* groups: the first host of each, its size */
  size_t *first = calloc(g->n_hosts + 1, sizeof *first), *size = calloc(g->n_hosts + 1, sizeof *size);
  size_t groups = 0, matches = 0;
  for (size_t i = 0; first && size && i < g->n_hosts; i++) {
    host_lines *h = &g->hosts[i];
    if (h->n == 0 && h->dropped == 0) continue;
    matches += h->n + h->dropped;
    size_t k = 0;
    while (k < groups && !same_lines(&g->hosts[first[k]], h)) k++;
    if (k == groups) first[groups++] = i;
    size[k]++;
    h->group = (int)k;
  }
  /* the biggest group first; the odd hosts out come last */
  for (size_t printed = 0; first && size && printed < groups; printed++) {
    size_t best = groups;
    for (size_t k = 0; k < groups; k++)
      if (size[k] > 0 && (best == groups || size[k] > size[best])) best = k;
    fputs("---------------\n", out);
    size_t shown = 0;
    for (size_t i = 0; i < g->n_hosts; i++)
      if (g->hosts[i].group == (int)best) fprintf(out, "%s%s", shown++ ? "," : "", g->hosts[i].host);
    fprintf(out, " (%zu)\n---------------\n", size[best]);
    const host_lines *h = &g->hosts[first[best]];
    for (size_t i = 0; i < h->n; i++) fprintf(out, "%s\n", h->lines[i]);
    if (h->dropped > 0) fprintf(out, "... and %zu more matching lines\n", h->dropped);
    size[best] = 0;
  }
  size_t none = 0;
  for (size_t i = 0; i < g->n_hosts; i++)
    if (g->hosts[i].n == 0 && g->hosts[i].dropped == 0)
      fprintf(out, "%s%s", none++ ? "," : "no match on: ", g->hosts[i].host);
  if (none > 0) fputc('\n', out);
  free(first);
  free(size);
  return matches;
}
