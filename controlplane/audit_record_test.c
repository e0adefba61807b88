/* Tests for audit_record.c: ids that sort by time, the JSON value round trip, fields held to
 * their bounds and cleaned (one record, one log line), secret-looking parameters redacted,
 * query matching, the denial limiter, and the --no-etcd ring's count and age bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/audit_record.h"
#include "controlplane/authz.h"

static mu_audit_rec *make(int64_t ms, uint64_t seq, const char *action, const char *name) {
  mu_audit_rec in = {.time_ms = ms,
                     .seq = seq,
                     .member = "m1:7400",
                     .caller_kind = "token",
                     .caller_name = name,
                     .caller_role = "operator",
                     .token_id = "tk123",
                     .address = "ipv4:127.0.0.1:5000",
                     .action = action,
                     .target = "j-1",
                     .params = "tasks=2",
                     .outcome = "ok"};
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  assert_non_null(r);
  return r;
}

static void ids_sort_by_time(void **state) {
  (void)state;
  char a[MU_AUDIT_ID_MAX], b[MU_AUDIT_ID_MAX], c[MU_AUDIT_ID_MAX];
  mu_audit_id(999, 7, "m/1 x", a, sizeof a);
  assert_string_equal(a, "0000000000999-0000000007-m_1_x"); /* one key segment */
  mu_audit_id(1000, 1, "m", b, sizeof b);
  mu_audit_id(1000, 2, "m", c, sizeof c);
  assert_true(strcmp(a, b) < 0);
  assert_true(strcmp(b, c) < 0);
  assert_int_equal(mu_audit_id_time(b), 1000);
  assert_int_equal(mu_audit_id_time("12-x"), -1);
  assert_int_equal(mu_audit_id_time("00000000009990000"), -1);
}

static void json_round_trip(void **state) {
  (void)state;
  mu_audit_rec *r = make(1700000000123, 42, "job.cancel", "ci-bot");
  assert_string_equal(r->id, "1700000000123-0000000042-m1:7400");
  char *text = mu_audit_rec_to_json(r);
  assert_non_null(text);
  mu_audit_rec *back = NULL;
  mu_err err = {0};
  assert_int_equal(mu_audit_rec_from_json(text, strlen(text), &back, &err), 0);
  assert_string_equal(back->id, r->id);
  assert_int_equal(back->time_ms, r->time_ms);
  assert_int_equal(back->seq, 42);
  assert_string_equal(back->member, "m1:7400");
  assert_string_equal(back->caller_kind, "token");
  assert_string_equal(back->caller_name, "ci-bot");
  assert_string_equal(back->caller_role, "operator");
  assert_string_equal(back->token_id, "tk123");
  assert_string_equal(back->address, "ipv4:127.0.0.1:5000");
  assert_string_equal(back->action, "job.cancel");
  assert_string_equal(back->target, "j-1");
  assert_string_equal(back->params, "tasks=2");
  assert_string_equal(back->outcome, "ok");
  free(back);
  free(text);
  free(r);
}

static void bad_json_is_refused(void **state) {
  (void)state;
  const char *bad[] = {
      "not json",
      "[1,2]",
      "{\"v\":2,\"time_ms\":1,\"action\":\"x\"}",
      "{\"v\":1,\"time_ms\":-5,\"action\":\"x\"}",
      "{\"v\":1,\"time_ms\":\"1\",\"action\":\"x\"}",
      "{\"v\":1,\"time_ms\":1}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mu_audit_rec *r = NULL;
    mu_err err = {0};
    assert_int_equal(mu_audit_rec_from_json(bad[i], strlen(bad[i]), &r, &err), MU_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err.msg, "audit record"));
  }
  /* fields of the wrong type read as empty; a missing caller is fine */
  const char *odd = "{\"v\":1,\"time_ms\":5,\"action\":\"a.b\",\"target\":7,\"caller\":[]}";
  mu_audit_rec *r = NULL;
  mu_err err = {0};
  assert_int_equal(mu_audit_rec_from_json(odd, strlen(odd), &r, &err), 0);
  assert_string_equal(r->target, "");
  assert_string_equal(r->caller_name, "");
  assert_string_equal(r->id, "0000000000005-0000000000-");
  free(r);
}

static void fields_are_bounded_and_cleaned(void **state) {
  (void)state;
  char longname[1000], longparams[3000];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  memset(longparams, 'p', sizeof longparams - 1);
  longparams[sizeof longparams - 1] = '\0';
  /* "é" (2 bytes) straddling the target bound must not be split */
  char target[MU_AUDIT_TARGET_MAX + 10];
  memset(target, 'x', sizeof target);
  memcpy(target + MU_AUDIT_TARGET_MAX - 5, "\xc3\xa9", 2);
  target[sizeof target - 1] = '\0';
  mu_audit_rec in = {.time_ms = 1,
                     .caller_name = longname,
                     .action = "job.submit\nINFO  audit: forged",
                     .target = target,
                     .params = longparams,
                     .outcome = "refused: bad \xff\xfe byte\tand tab"};
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  assert_non_null(r);
  assert_int_equal(strlen(r->caller_name), MU_AUDIT_NAME_MAX - 1);
  assert_string_equal(r->caller_name + MU_AUDIT_NAME_MAX - 4, "...");
  assert_true(strlen(r->params) < MU_AUDIT_TEXT_MAX);
  assert_true(strlen(r->target) < MU_AUDIT_TARGET_MAX);
  assert_string_equal(r->target + strlen(r->target) - 3, "...");
  /* no newline survives: one record is one log line */
  assert_null(strchr(r->action, '\n'));
  assert_string_equal(r->action, "job.submit?INFO  audit: forged");
  assert_string_equal(r->outcome, "refused: bad ?? byte?and tab");
  assert_string_equal(r->member, ""); /* NULL reads as "" */
  /* the cleaned record is valid JSON (jansson refuses bad UTF-8) */
  char *text = mu_audit_rec_to_json(r);
  assert_non_null(text);
  free(text);
  free(r);
}

static void secrets_are_redacted(void **state) {
  (void)state;
  char out[512];
  assert_string_equal(mu_audit_redact("name=db role=admin", out, sizeof out), "name=db role=admin");
  assert_string_equal(mu_audit_redact("name=db value=hunter2 ttl=1h", out, sizeof out),
                      "name=db value=[redacted] ttl=1h");
  assert_string_equal(mu_audit_redact("Password='a b c' x=1", out, sizeof out), "Password=[redacted] x=1");
  assert_string_equal(mu_audit_redact("db_password=\"q\" api_key=k1 apikey=k2", out, sizeof out),
                      "db_password=[redacted] api_key=[redacted] apikey=[redacted]");
  assert_string_equal(mu_audit_redact("token=mst_abc_def", out, sizeof out), "token=[redacted]");
  assert_string_equal(mu_audit_redact("reason='leaked mst_ab_cd here'", out, sizeof out),
                      "reason='leaked [redacted] here'");
  /* names and ids of tokens and secrets are not secret */
  assert_string_equal(mu_audit_redact("token_id=tk1 secret_name=db", out, sizeof out), "token_id=tk1 secret_name=db");
  /* an unterminated quote hides the rest */
  assert_string_equal(mu_audit_redact("secret='abc def", out, sizeof out), "secret=[redacted]");
  /* bounded output */
  char small[8];
  assert_string_equal(mu_audit_redact("password=xyz", small, sizeof small), "passwor");
  /* pack redacts params */
  mu_audit_rec in = {.time_ms = 1, .action = "secret.set", .params = "value=s3cr3t"};
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  assert_string_equal(r->params, "value=[redacted]");
  free(r);
}

static void filters_match(void **state) {
  (void)state;
  mu_audit_rec *r = make(5000, 1, "job.cancel", "ci-bot");
  mu_audit_filter f = {0};
  assert_true(mu_audit_rec_matches(r, &f));
  f.since_ms = 5000;
  assert_true(mu_audit_rec_matches(r, &f));
  f.since_ms = 5001;
  assert_false(mu_audit_rec_matches(r, &f));
  f = (mu_audit_filter){.who = "bot"};
  assert_true(mu_audit_rec_matches(r, &f));
  f.who = "tk12"; /* token id */
  assert_true(mu_audit_rec_matches(r, &f));
  f.who = "127.0.0.1"; /* address */
  assert_true(mu_audit_rec_matches(r, &f));
  f.who = "alice";
  assert_false(mu_audit_rec_matches(r, &f));
  f = (mu_audit_filter){.action = "job."};
  assert_true(mu_audit_rec_matches(r, &f));
  f.action = "job.*";
  assert_true(mu_audit_rec_matches(r, &f));
  f.action = "job.cancel";
  assert_true(mu_audit_rec_matches(r, &f));
  f.action = "job";
  assert_false(mu_audit_rec_matches(r, &f)); /* exact unless it ends with . or * */
  f.action = "agent.";
  assert_false(mu_audit_rec_matches(r, &f));
  free(r);
}

/* The caller as the gate proved it becomes the record's caller fields. */
static void callers_become_fields(void **state) {
  (void)state;
  static const struct {
    mu_caller c;
    const char *kind, *name, *role, *token_id;
  } cases[] = {
      {{.kind = MU_CALLER_ANONYMOUS, .name = "anonymous", .role = MU_ACCESS_ADMIN},
       "anonymous",
       "anonymous",
       "admin",
       ""},
      {{.kind = MU_CALLER_ANONYMOUS, .name = "anonymous", .role = MU_ACCESS_NONE},
       "anonymous",
       "anonymous",
       "none",
       ""},
      {{.kind = MU_CALLER_ADMIN_CERT, .name = "alice", .role = MU_ACCESS_OPERATOR},
       "admin_cert",
       "alice",
       "operator",
       ""},
      {{.kind = MU_CALLER_TOKEN, .name = "ci-bot", .role = MU_ACCESS_VIEWER, .token_id = "tk9"},
       "token",
       "ci-bot",
       "viewer",
       "tk9"},
      {{.kind = MU_CALLER_AGENT, .name = "web-1", .role = MU_ACCESS_ADMIN, .token_id = "x"},
       "agent",
       "web-1",
       "",
       ""}, /* agents have no role, and never a token */
      {{.kind = MU_CALLER_SERVER, .name = "cp-2"}, "server", "cp-2", "", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mu_caller c = cases[i].c;
    snprintf(c.address, sizeof c.address, "ipv4:10.0.0.%zu:5000", i);
    mu_audit_rec in = {.time_ms = 1, .member = "m1", .action = "job.submit", .outcome = "ok"};
    mu_audit_rec_set_caller(&in, &c, "m1");
    mu_audit_rec *r = mu_audit_rec_pack(&in);
    assert_string_equal(r->caller_kind, cases[i].kind);
    assert_string_equal(r->caller_name, cases[i].name);
    assert_string_equal(r->caller_role, cases[i].role);
    assert_string_equal(r->token_id, cases[i].token_id);
    assert_string_equal(r->address, c.address);
    free(r);
  }
  mu_audit_rec in = {.time_ms = 1, .action = "authz.denied", .outcome = "denied: x"};
  mu_audit_rec_set_caller(&in, NULL, "m1"); /* musterd itself (a denial summary) */
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  assert_string_equal(r->caller_kind, "musterd");
  assert_string_equal(r->caller_name, "m1");
  assert_string_equal(r->address, "");
  free(r);
}

static void limiter_bounds_denials(void **state) {
  (void)state;
  mu_audit_limiter l = {.per_sec = 3};
  uint64_t summary = 0;
  int admitted = 0;
  for (int i = 0; i < 100; i++) {
    admitted += mu_audit_limiter_admit(&l, 10000 + i, &summary);
    assert_int_equal(summary, 0);
  }
  assert_int_equal(admitted, 3);
  assert_int_equal(mu_audit_limiter_flush(&l, 10500), 0); /* window still open */
  /* the next window reports the 97 counted, once */
  assert_int_equal(mu_audit_limiter_admit(&l, 11000, &summary), 1);
  assert_int_equal(summary, 97);
  assert_int_equal(mu_audit_limiter_admit(&l, 11001, &summary), 1);
  assert_int_equal(summary, 0);
  /* a quiet end: the timer's flush reports */
  mu_audit_limiter_admit(&l, 11002, &summary);
  assert_int_equal(mu_audit_limiter_admit(&l, 11003, &summary), 0);
  assert_int_equal(mu_audit_limiter_flush(&l, 12000), 1);
  assert_int_equal(mu_audit_limiter_flush(&l, 12001), 0);
}

static void ring_keeps_the_newest_within_bounds(void **state) {
  (void)state;
  mu_audit_ring ring;
  mu_audit_ring_init(&ring, 100, 60000);
  size_t dropped = 0;
  for (int i = 0; i < 250; i++)
    dropped += mu_audit_ring_push(&ring, make(1000000 + i, (uint64_t)i, "job.submit", "x"), 1000000 + i);
  assert_int_equal(dropped, 150);
  assert_int_equal(ring.n, 100);
  assert_int_equal(mu_audit_ring_get(&ring, 0)->seq, 249); /* newest first */
  assert_int_equal(mu_audit_ring_get(&ring, 99)->seq, 150);
  assert_null(mu_audit_ring_get(&ring, 100));
  /* age: records older than a minute go */
  assert_int_equal(mu_audit_ring_prune(&ring, 1000000 + 200 + 60000), 50);
  assert_int_equal(ring.n, 50);
  assert_int_equal(mu_audit_ring_get(&ring, 49)->seq, 200);
  /* all of them, then the ring works again */
  assert_int_equal(mu_audit_ring_push(&ring, make(9000000, 1, "a.b", "y"), 9000000), 50);
  assert_int_equal(ring.n, 1);
  assert_string_equal(mu_audit_ring_get(&ring, 0)->action, "a.b");
  mu_audit_ring_free(&ring);
  assert_int_equal(ring.n, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ids_sort_by_time),
      cmocka_unit_test(json_round_trip),
      cmocka_unit_test(bad_json_is_refused),
      cmocka_unit_test(fields_are_bounded_and_cleaned),
      cmocka_unit_test(secrets_are_redacted),
      cmocka_unit_test(filters_match),
      cmocka_unit_test(callers_become_fields),
      cmocka_unit_test(limiter_bounds_denials),
      cmocka_unit_test(ring_keeps_the_newest_within_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
