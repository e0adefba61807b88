/* lib/imagepolicy: a table of policies x image facts (each rule refused with its message,
 * allowed facts pass, every violation listed at once), and the strict parser's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/imagepolicy/imagepolicy.h"

static mu_imgpolicy *parse(const char *text) {
  mu_imgpolicy *p = NULL;
  mu_err err = {0};
  int rc = mu_imgpolicy_parse("policy.yaml", text, strlen(text), &p, &err);
  if (rc != 0) fail_msg("parse: %s", err.msg);
  return p;
}

static const char *vols_ok[] = {"/srv/data/in"};
static const char *vols_bad[] = {"/srv/data/in", "/etc"};
static mu_imgscan_summary scan_clean = {{0}, {0}};
static mu_imgscan_summary scan_crit_old = {.unfixed = {0, 0, 0, 1, 2}, .oldest_days = {0, 0, 0, 3, 40}};
static mu_imgscan_summary scan_crit_new = {.unfixed = {0, 0, 0, 0, 2}, .oldest_days = {0, 0, 0, 0, 5}};

/* An allowed image: digest-pinned, from the allowed repo, user 1000, small, signed, clean. */
static mu_imgfacts good(void) {
  return (mu_imgfacts){.registry = "127.0.0.1:5055",
                       .repository = "team/app",
                       .tag = "",
                       .digest = "sha256:aaaa",
                       .manifest_digest = "sha256:aaaa",
                       .config_known = true,
                       .config_user = "1000",
                       .compressed_bytes = 1000,
                       .network = "none",
                       .volumes = vols_ok,
                       .n_volumes = 1,
                       .signature = MU_IMGSIG_VALID,
                       .scan = &scan_clean};
}

typedef struct row {
  const char *name;
  const char *policy;
  void (*mutate)(mu_imgfacts *f);
  const char *rule; /* NULL: allowed */
  const char *msg;  /* a substring of the violation */
} row;

static void m_none(mu_imgfacts *f) { (void)f; }
static void m_other_repo(mu_imgfacts *f) { f->repository = "evil/app"; }
static void m_other_registry(mu_imgfacts *f) { f->registry = "docker.io"; }
static void m_tag(mu_imgfacts *f) {
  f->digest = "";
  f->tag = "1.2";
}
static void m_unsigned(mu_imgfacts *f) { f->signature = MU_IMGSIG_NOT_CHECKED; }
static void m_sig_missing(mu_imgfacts *f) { f->signature = MU_IMGSIG_MISSING; }
static void m_sig_untrusted(mu_imgfacts *f) {
  f->signature = MU_IMGSIG_UNTRUSTED;
  f->signature_detail = "key evil";
}
static void m_sig_expired(mu_imgfacts *f) { f->signature = MU_IMGSIG_EXPIRED; }
static void m_sig_invalid(mu_imgfacts *f) { f->signature = MU_IMGSIG_INVALID; }
static void m_no_scan(mu_imgfacts *f) { f->scan = NULL; }
static void m_crit_old(mu_imgfacts *f) { f->scan = &scan_crit_old; }
static void m_crit_new(mu_imgfacts *f) { f->scan = &scan_crit_new; }
static void m_root_image(mu_imgfacts *f) { f->config_user = ""; }
static void m_root_image_task_user(mu_imgfacts *f) {
  f->config_user = "root";
  f->run_user = "1000:1000";
}
static void m_task_root(mu_imgfacts *f) { f->run_user = "0:0"; }
static void m_no_config(mu_imgfacts *f) { f->config_known = false; }
static void m_host(mu_imgfacts *f) { f->network = "host"; }
static void m_vol(mu_imgfacts *f) {
  f->volumes = vols_bad;
  f->n_volumes = 2;
}
static void m_big(mu_imgfacts *f) { f->compressed_bytes = 20u << 20; }
static void m_big_unpacked(mu_imgfacts *f) { f->uncompressed_bytes = 20u << 20; }
static void m_size_unknown(mu_imgfacts *f) { f->compressed_bytes = 0; }

static const row rows[] = {
    {"empty policy allows", "", m_tag, NULL, NULL},
    {"registry allowed", "registries: ['127.0.0.1:*/team/*']", m_none, NULL, NULL},
    {"repo refused", "registries: ['127.0.0.1:*/team/*']", m_other_repo, "registries",
     "127.0.0.1:5055/evil/app is not an allowed registry/repository (allowed: 127.0.0.1:*/team/*)"},
    {"registry refused", "registries: ['127.0.0.1:*/**']", m_other_registry, "registries", "docker.io/team/app"},
    {"** crosses segments", "registries: ['127.0.0.1:5055/**']", m_none, NULL, NULL},
    {"digests only", "digests_only: true", m_tag, "digests_only", "named by tag \"1.2\""},
    {"digests only, pinned", "digests_only: true", m_none, NULL, NULL},
    {"signature not checked", "require_signed: true", m_unsigned, "require_signed", "signature not checked"},
    {"signature missing", "require_signed: true", m_sig_missing, "require_signed", "no signature for sha256:aaaa"},
    {"signature untrusted", "require_signed: true", m_sig_untrusted, "require_signed", "untrusted key: key evil"},
    {"signature expired", "require_signed: true", m_sig_expired, "require_signed", "has expired"},
    {"signature invalid", "require_signed: true", m_sig_invalid, "require_signed", "is invalid"},
    {"signature valid", "require_signed: true", m_none, NULL, NULL},
    {"no scan", "max_severity: HIGH", m_no_scan, "max_severity", "no scan available"},
    {"critical", "max_severity: high", m_crit_old, "max_severity",
     "2 unfixed CRITICAL findings (the policy allows up to HIGH)"},
    {"critical older than grace", "max_severity: HIGH\nseverity_grace_days: 30", m_crit_old, "max_severity",
     "the oldest published 40 days ago"},
    {"critical within grace", "max_severity: HIGH\nseverity_grace_days: 30", m_crit_new, NULL, NULL},
    {"high allowed under CRITICAL", "max_severity: CRITICAL", m_crit_old, NULL, NULL},
    {"root image", "allow_root_user: false", m_root_image, "allow_root_user", "the image's user is root"},
    {"root image, task user", "allow_root_user: false", m_root_image_task_user, NULL, NULL},
    {"task root", "allow_root_user: false", m_task_root, "allow_root_user", "asks to run as root (user \"0:0\")"},
    {"config unknown", "allow_root_user: false", m_no_config, "allow_root_user", "not known"},
    {"root allowed", "allow_root_user: true", m_root_image, NULL, NULL},
    {"host network", "allow_host_network: false", m_host, "allow_host_network", "network host"},
    {"host network allowed", "allow_host_network: true", m_host, NULL, NULL},
    {"volume refused", "allowed_volumes: [/srv/data/**]", m_vol, "allowed_volumes",
     "host path /etc is not allowed (allowed: /srv/data/**)"},
    {"no volumes allowed", "allowed_volumes: []", m_none, "allowed_volumes", "/srv/data/in is not allowed"},
    {"volume allowed", "allowed_volumes: ['/srv/*/in']", m_none, NULL, NULL},
    {"too big", "max_image_size: 10M", m_big, "max_image_size", "20.0 MiB compressed, over the 10.0 MiB allowed"},
    {"too big unpacked", "max_image_size: 10M", m_big_unpacked, "max_image_size", "20.0 MiB unpacked"},
    {"size unknown", "max_image_size: 10M", m_size_unknown, "max_image_size", "not known"},
    {"json form", "{\"digests_only\": true, \"allow_host_network\": false}", m_host, "allow_host_network", "host"},
};

static void test_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const row *r = &rows[i];
    mu_imgpolicy *p = parse(r->policy);
    mu_imgfacts f = good();
    r->mutate(&f);
    mu_imgpolicy_result res = {0};
    size_t n = mu_imgpolicy_eval(p, &f, &res);
    char all[4096];
    mu_imgpolicy_result_format(&res, all, sizeof all);
    if (r->rule == NULL) {
      if (n != 0) fail_msg("%s: expected allowed, got %s", r->name, all);
    } else {
      if (n != 1) fail_msg("%s: expected one violation, got %zu: %s", r->name, n, all);
      if (strcmp(res.v[0].rule, r->rule) != 0) fail_msg("%s: rule %s, expected %s", r->name, res.v[0].rule, r->rule);
      if (strstr(res.v[0].msg, r->msg) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", r->name, res.v[0].msg, r->msg);
    }
    /* the canonical JSON gives the same verdicts */
    char *json = mu_imgpolicy_to_json(p);
    mu_imgpolicy *again = parse(json);
    mu_imgpolicy_result res2 = {0};
    assert_int_equal(mu_imgpolicy_eval(again, &f, &res2), n);
    free(json);
    mu_imgpolicy_free(again);
    mu_imgpolicy_free(p);
  }
}

/* Every rule broken at once: every one named, in the policy's order. */
static void test_every_violation(void **state) {
  (void)state;
  mu_imgpolicy *p = parse(
      "registries: [reg:5000/team/*]\ndigests_only: true\nrequire_signed: true\n"
      "max_severity: HIGH\nallow_root_user: false\nallow_host_network: false\n"
      "allowed_volumes: [/srv/**]\nmax_image_size: 1M\n");
  const char *vols[] = {"/etc", "/var/run/docker.sock"};
  mu_imgfacts f = {.registry = "127.0.0.1:5055",
                   .repository = "t/run",
                   .tag = "1",
                   .config_known = true,
                   .config_user = "",
                   .compressed_bytes = 5u << 20,
                   .network = "host",
                   .volumes = vols,
                   .n_volumes = 2};
  mu_imgpolicy_result res = {0};
  assert_int_equal(mu_imgpolicy_eval(p, &f, &res), 9);
  const char *want[] = {"registries",         "digests_only",    "require_signed",  "max_severity",  "allow_root_user",
                        "allow_host_network", "allowed_volumes", "allowed_volumes", "max_image_size"};
  for (size_t i = 0; i < 9; i++) assert_string_equal(res.v[i].rule, want[i]);
  char buf[4096];
  mu_imgpolicy_result_format(&res, buf, sizeof buf);
  assert_non_null(strstr(buf, "require_signed: signature not checked"));
  assert_non_null(strstr(buf, "max_severity: no scan available"));
  assert_non_null(strstr(buf, "/var/run/docker.sock is not allowed"));
  /* a small buffer is cut with "..." */
  char small[64];
  mu_imgpolicy_result_format(&res, small, sizeof small);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_string_equal(small + sizeof small - 4, "...");
  /* the agent's and the cluster's policy: both evaluated into one result */
  mu_imgpolicy *q = parse("allow_host_network: false");
  mu_imgpolicy_eval(q, &f, &res);
  assert_int_equal(res.n, 10);
  mu_imgpolicy_free(q);
  mu_imgpolicy_free(p);
}

typedef struct bad {
  const char *text, *want;
} bad;

static void test_strict_parser(void **state) {
  (void)state;
  static const bad bads[] = {
      {"digests_only: true\nregistrys: [a/b]\n", "policy.yaml:2: field 'registrys': unknown key"},
      {"registries: [a/b, \"r/[a\"]\n", "policy.yaml:1: field 'registries': [1]: bad glob \"r/[a\": unterminated '['"},
      {"registries:\n  - a/b\n  - 'r/***'\n", "policy.yaml:3: field 'registries': [1]: bad glob"},
      {"registries: [docker.io]\n", "must be REGISTRY/REPOSITORY"},
      {"max_severity: SEVERE\n",
       "policy.yaml:1: field 'max_severity': \"SEVERE\" is not LOW, MEDIUM, HIGH or CRITICAL"},
      {"max_severity: [HIGH]\n", "expected a value, got a list"},
      {"digests_only: maybe\n", "expected true or false"},
      {"max_image_size: huge\n", "field 'max_image_size': expected a size"},
      {"allowed_volumes: [srv/data]\n", "must be an absolute host path"},
      {"severity_grace_days: 3\n", "severity_grace_days needs max_severity"},
      {"severity_grace_days: -3\nmax_severity: LOW\n", "whole number of days"},
      {"trusted_keys: [k]\n", "trusted_keys needs require_signed"},
      {"digests_only: true\ndigests_only: false\n", "given twice"},
      {"- a\n- b\n", "policy.yaml"},
      {"{\"digests_only\": true, \"nope\": 1}", "field 'nope': unknown key"},
  };
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    mu_imgpolicy *p = NULL;
    mu_err err = {0};
    int rc = mu_imgpolicy_parse("policy.yaml", bads[i].text, strlen(bads[i].text), &p, &err);
    if (rc == 0) fail_msg("accepted: %s", bads[i].text);
    if (strstr(err.msg, bads[i].want) == NULL)
      fail_msg("%s: message \"%s\" lacks \"%s\"", bads[i].text, err.msg, bads[i].want);
    assert_null(p);
  }
  /* too big */
  size_t n = MU_IMGPOLICY_MAX_BYTES + 1;
  char *big = malloc(n);
  memset(big, '#', n);
  mu_imgpolicy *p = NULL;
  mu_err err = {0};
  assert_int_equal(mu_imgpolicy_parse("big", big, n, &p, &err), MU_ENOSPC);
  free(big);
}

static void test_canonical_and_accessors(void **state) {
  (void)state;
  mu_imgpolicy *p = parse("max_image_size: 1K\nrequire_signed: true\ntrusted_keys: [ops]\nmax_severity: medium\n");
  char *json = mu_imgpolicy_to_json(p);
  assert_string_equal(json,
                      "{\"allow_host_network\":true,\"allow_root_user\":true,\"digests_only\":false,"
                      "\"max_image_size\":\"1024\",\"max_severity\":\"MEDIUM\",\"require_signed\":true,"
                      "\"trusted_keys\":[\"ops\"]}");
  const char *const *keys = NULL;
  assert_true(mu_imgpolicy_wants_signature(p, &keys));
  assert_string_equal(keys[0], "ops");
  assert_null(keys[1]);
  assert_true(mu_imgpolicy_wants_scan(p));
  assert_false(mu_imgpolicy_is_empty(p));
  free(json);
  mu_imgpolicy_free(p);
  p = parse("# nothing\n");
  assert_true(mu_imgpolicy_is_empty(p));
  assert_false(mu_imgpolicy_wants_signature(p, &keys));
  assert_null(keys[0]);
  mu_imgpolicy_free(p);
  mu_imgsig_status st;
  assert_int_equal(mu_imgsig_status_parse("untrusted", &st), 0);
  assert_int_equal(st, MU_IMGSIG_UNTRUSTED);
  assert_string_equal(mu_imgsig_status_name(MU_IMGSIG_NOT_CHECKED), "not_checked");
}

static void test_globs(void **state) {
  (void)state;
  static const struct {
    const char *p, *t;
    bool ok;
  } g[] = {
      {"a/*", "a/b", true},
      {"a/*", "a/b/c", false},
      {"a/**", "a/b/c", true},
      {"a/**/c", "a/b/x/c", true},
      {"a/**", "a", true},
      {"a/**", "ab", false},
      {"a/?", "a/b", true},
      {"a/?", "a//", false},
      {"a/[bc]", "a/c", true},
      {"a/[!bc]", "a/c", false},
      {"a/[a-c]x", "a/bx", true},
      {"reg:*/t/*", "reg:5000/t/run", true},
      {"*", "", true},
      {"**", "x/y", true},
      {"a*b*c*d*e*f*g*h", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
  };
  for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
    if (mu_imgpolicy_glob_match(g[i].p, g[i].t) != g[i].ok) fail_msg("%s vs %s", g[i].p, g[i].t);
  mu_err err = {0};
  assert_int_equal(mu_imgpolicy_glob_check("a/[]", &err), MU_EINVAL);
  assert_int_equal(mu_imgpolicy_glob_check("a/[z-a]", &err), MU_EINVAL);
  assert_int_equal(mu_imgpolicy_glob_check("a b", &err), MU_EINVAL);
  assert_int_equal(mu_imgpolicy_glob_check("a]", &err), MU_EINVAL);
  assert_int_equal(mu_imgpolicy_glob_check("*/*/*/*/*/*/*/*/*", &err), MU_EINVAL);
  assert_int_equal(mu_imgpolicy_glob_check("reg:5000/team/**", &err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),         cmocka_unit_test(test_every_violation),
      cmocka_unit_test(test_strict_parser), cmocka_unit_test(test_canonical_and_accessors),
      cmocka_unit_test(test_globs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
