/* Reading peers: serials, and identities from muster:// URIs, including certificates crafted
 * the way mu_pki_issue never would (two identities, a role on an agent, unknown kinds and
 * roles, bad names) that authorization must refuse. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pki/peer.h"
#include "lib/pki/test_util.h"

static void test_serial(void **state) {
  (void)state;
  char *pem = pt_cert_with_sans(NULL); /* serial 4242 = 0x1092 */
  uint8_t buf[MU_PKI_SERIAL_MAX];
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_pki_cert_serial_from_pem(pem, buf, sizeof buf, &len, &err), 0);
  assert_int_equal(len, 2);
  assert_int_equal(buf[0], 0x10);
  assert_int_equal(buf[1], 0x92);
  assert_int_equal(mu_pki_cert_serial_from_pem(pem, buf, 1, &len, &err), MU_ENOSPC);
  assert_int_equal(mu_pki_cert_serial_from_pem("junk", buf, sizeof buf, &len, &err), MU_EINVAL);
  char *negative = pt_cert_with_serial(NULL, -5);
  assert_int_equal(mu_pki_cert_serial_from_pem(negative, buf, sizeof buf, &len, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "negative serial"));
  free(negative);
  char *zero = pt_cert_with_serial(NULL, 0);
  assert_int_equal(mu_pki_cert_serial_from_pem(zero, buf, sizeof buf, &len, &err), 0);
  assert_int_equal(len, 0);
  free(zero);
  mu_pki_cert_info info;
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_string_equal(info.serial_hex, "1092");
  assert_string_equal(info.kind, ""); /* not a muster identity */
  assert_string_equal(info.cn, "crafted");
  assert_string_equal(info.issuer_cn, "crafted");
  assert_false(info.server_auth || info.client_auth);
  free(pem);
}

static void test_info_accepts(void **state) {
  (void)state;
  mu_err err = {0};
  mu_pki_cert_info info;
  char *pem = pt_cert_with_sans(
      "DNS:a.example,IP:10.1.2.3,URI:https://example.com/x,URI:muster://admin/ops-1,"
      "URI:muster://role/admin,email:x@example.com");
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_string_equal(info.kind, "admin");
  assert_string_equal(info.name, "ops-1");
  assert_string_equal(info.role, "admin");
  assert_string_equal(info.sans, "a.example,10.1.2.3");
  assert_false(info.sans_truncated);
  assert_true(info.not_after - info.not_before == 3660);
  free(pem);
  /* An admin without a role URI has the least role. */
  pem = pt_cert_with_sans("URI:muster://admin/ops-2");
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_string_equal(info.role, "viewer");
  free(pem);
  /* Many SANs: the list is cut, and says so. */
  char conf[8192] = "URI:muster://server/s";
  for (int i = 0; i < 120; i++) {
    size_t n = strlen(conf);
    snprintf(conf + n, sizeof conf - n, ",DNS:host-%03d.example.com", i);
  }
  pem = pt_cert_with_sans(conf);
  assert_int_equal(mu_pki_cert_info_from_pem(pem, &info, &err), 0);
  assert_true(info.sans_truncated);
  assert_true(strlen(info.sans) < MU_PKI_SANS_SIZE);
  assert_string_equal(info.kind, "server");
  free(pem);
}

static void test_info_refuses(void **state) {
  (void)state;
  static const struct {
    const char *sans, *needle;
  } cases[] = {
      {"URI:muster://agent/a,URI:muster://agent/b", "a second identity"},
      {"URI:muster://agent/a,URI:muster://admin/a", "a second identity"},
      {"URI:muster://agent/a,URI:muster://role/admin", "on a certificate of kind agent"},
      {"URI:muster://role/admin", "without a muster identity"},
      {"URI:muster://admin/a,URI:muster://role/root", "unknown role"},
      {"URI:muster://admin/a,URI:muster://role/viewer,URI:muster://role/admin", "a second role"},
      {"URI:muster://robot/a", "unknown kind 'robot'"},
      {"URI:muster://agent/a%2Fb", "character '%'"},
      {"URI:muster://agent/", "URI name is required"},
      {"URI:muster://agent", "want muster://KIND/NAME"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *pem = pt_cert_with_sans(cases[i].sans);
    mu_pki_cert_info info;
    mu_err err = {0};
    int rc = mu_pki_cert_info_from_pem(pem, &info, &err);
    if (rc != MU_EINVAL || strstr(err.msg, cases[i].needle) == NULL) {
      fprintf(stderr, "%s: want EINVAL with '%s', got %d '%s'\n", cases[i].sans, cases[i].needle, rc, err.msg);
    }
    assert_int_equal(rc, MU_EINVAL);
    assert_non_null(strstr(err.msg, cases[i].needle));
    free(pem);
  }
}

int mu_test_peer(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serial),
      cmocka_unit_test(test_info_accepts),
      cmocka_unit_test(test_info_refuses),
  };
  return cmocka_run_group_tests_name("peer", tests, NULL, NULL);
}
