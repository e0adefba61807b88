/* Tests for jobs.c: output tails that grow on demand and wrap at their cap, and task and host
 * lookups by id (binary search over the host index, the "<agent>/<task>" short form). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/jobs.h"

static void tail_grows_then_wraps(void **state) {
  (void)state;
  mu_tail t = {.cap = 1000};
  char out[2048];
  mu_tail_append(&t, "hello ", 6);
  mu_tail_append(&t, "world\n", 6);
  assert_int_equal(mu_tail_copy(&t, out, sizeof out), 12);
  assert_string_equal(out, "hello world\n");
  assert_true(t.alloc < t.cap); /* short output: small buffer */
  char big[700];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  mu_tail_append(&t, big, sizeof big);
  mu_tail_append(&t, big, sizeof big); /* 1412 bytes in all: the ring keeps the last 1000 */
  assert_int_equal(t.total, 1412);
  assert_int_equal(mu_tail_copy(&t, out, sizeof out), 1000);
  assert_memory_equal(out + 300, big, sizeof big);
  assert_memory_equal(out, big + 400, 300);
  mu_tail_append(&t, "XY", 2);
  assert_int_equal(mu_tail_copy(&t, out, sizeof out), 1000);
  assert_memory_equal(out + 998, "XY", 2);
  free(t.buf);
  mu_tail z = {.cap = 8};
  mu_tail_append(&z, "0123456789", 10); /* longer than the cap at once */
  assert_int_equal(mu_tail_copy(&z, out, sizeof out), 8);
  assert_string_equal(out, "23456789");
  free(z.buf);
}

static mu_job *make_job(size_t n_hosts, size_t n_tasks, const char *any) {
  Muster__V1__JobSpec *spec = calloc(1, sizeof *spec);
  muster__v1__job_spec__init(spec);
  spec->target = calloc(1, sizeof *spec->target);
  muster__v1__target__init(spec->target);
  if (any) spec->target->any = strdup(any);
  spec->n_tasks = n_tasks;
  spec->tasks = calloc(n_tasks, sizeof *spec->tasks);
  for (size_t i = 0; i < n_tasks; i++) {
    spec->tasks[i] = calloc(1, sizeof *spec->tasks[i]);
    muster__v1__task_spec__init(spec->tasks[i]);
    char name[16];
    snprintf(name, sizeof name, "t%zu", i);
    spec->tasks[i]->name = strdup(name);
  }
  char **ids = calloc(n_hosts, sizeof *ids);
  for (size_t i = 0; i < n_hosts && !any; i++) {
    ids[i] = malloc(32);
    snprintf(ids[i], 32, "agent/%05zu", (i * 7919) % n_hosts); /* unsorted, ids with '/' */
  }
  mu_rollout r = {.max_errors = -1};
  mu_job *job = mu_job_new("j-1", spec, &r, ids, n_hosts, 64);
  for (size_t i = 0; i < n_hosts; i++) free(ids[i]);
  free(ids);
  return job;
}

static void task_lookup(void **state) {
  (void)state;
  mu_job *job = make_job(1000, 3, NULL);
  mu_host_run *h = NULL;
  mu_task_run *tr = mu_job_task(job, "j-1/agent/00042/t2", &h);
  assert_non_null(tr);
  assert_string_equal(h->agent_id, "agent/00042");
  assert_ptr_equal(tr, &h->tasks[2]);
  assert_ptr_equal(mu_job_task(job, "agent/00042/t2", NULL), tr); /* short form */
  assert_null(mu_job_task(job, "j-1/agent/01000/t0", NULL));
  assert_null(mu_job_task(job, "j-1/agent/00042/t3", NULL));
  assert_null(mu_job_task(job, "j-2/agent/00042/t0", NULL));
  assert_ptr_equal(mu_job_host(job, "agent/00999"), mu_job_task(job, "j-1/agent/00999/t0", &h) ? h : NULL);
  assert_null(mu_job_host(job, "agent/1"));
  mu_job_free(job);
  /* "any": the one host is renamed when placed; lookups scan */
  job = make_job(1, 1, "role=web");
  assert_non_null(mu_job_task(job, "j-1/any/t0", NULL));
  free(job->hosts[0].agent_id);
  job->hosts[0].agent_id = strdup("web-1");
  assert_ptr_equal(mu_job_host(job, "web-1"), &job->hosts[0]);
  mu_job_free(job);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tail_grows_then_wraps),
      cmocka_unit_test(task_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
