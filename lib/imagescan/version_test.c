/* The version schemes: a table of edge cases per scheme (each pair checked both ways), the
 * invalid versions each refuses, Debian's order cross-checked against the real
 * `dpkg --compare-versions` over generated pairs, and PEP 440's (order and validity) against
 * the `packaging` library Debian's python3 carries (pip's vendored copy). */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/imagescan/version.h"

extern char **environ;

typedef struct vcase {
  const char *a, *b;
  int want; /* sign of compare(a, b) */
} vcase;

static void check_table(mu_ver_scheme s, const vcase *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int c = 99, back = 99;
    mu_err err = {0};
    if (mu_ver_compare(s, t[i].a, t[i].b, &c, &err) != 0) fail_msg("%s: %s", mu_ver_scheme_name(s), err.msg);
    assert_int_equal(mu_ver_compare(s, t[i].b, t[i].a, &back, &err), 0);
    if (c != t[i].want || back != -t[i].want)
      fail_msg("%s: compare(%s, %s) = %d (back %d), want %d", mu_ver_scheme_name(s), t[i].a, t[i].b, c, back,
               t[i].want);
  }
}

static void test_deb_table(void **state) {
  (void)state;
  static const vcase t[] = {
      {"1.0~rc1", "1.0", -1},
      {"1:0.9", "2.0", 1},
      {"1.0", "1.0-0", 0},
      {"1.0~~", "1.0~", -1},
      {"1.0~", "1.0", -1},
      {"1.0", "1.0a", -1},
      {"1.0a", "1.0+", -1},
      {"1.0+", "1.0.", -1},
      {"2.30+dfsg-1", "2.30-1", 1},
      {"2.30+dfsg-1", "2.30+dfsg1-1", -1},
      {"1.2.3-1", "1.2.3-1+deb12u1", -1},
      {"3.0.11-1~deb12u2", "3.0.11-1", -1},
      {"3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1},
      {"0:1.0", "1.0", 0},
      {"1.0-1", "1.0-1.1", -1},
      {"10", "9", 1},
      {"1.01", "1.1", 0},
      {"1.0-1ubuntu1", "1.0-1", 1},
      {"1:1.0-1", "2:0.1", -1},
      {"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
      {"1.0-a", "1.0-1", 1},
      {"2.36.1-8+deb12u1", "2.36.1-8", 1},
      {"1:2.38.1-5+deb12u3", "1:2.38.1-5+deb12u1", 1},
  };
  check_table(MU_VER_DEB, t, sizeof t / sizeof *t);
  const char *bad[] = {"", "1.0-", "1:", ":1.0", "a:1.0", "1.0 1", "1.0_1", "1.0-1-2:", "1.0-1:2", "-1", "1!0"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (mu_ver_valid(MU_VER_DEB, bad[i])) fail_msg("Debian: \"%s\" accepted", bad[i]);
  assert_true(mu_ver_valid(MU_VER_DEB, "abc")); /* dpkg warns, still compares */
}

static void test_apk_table(void **state) {
  (void)state;
  static const vcase t[] = {
      {"1.2_rc1", "1.2", -1},
      {"1.2", "1.2-r1", -1},
      {"1.2_rc1", "1.2-r1", -1},
      {"1.2_alpha", "1.2_beta", -1},
      {"1.2_beta2", "1.2_pre1", -1},
      {"1.2_pre1", "1.2_rc1", -1},
      {"1.2_p1", "1.2", 1},
      {"1.2_p1", "1.2-r9", 1},
      {"1.2a", "1.2", 1},
      {"1.2a", "1.2b", -1},
      {"1.2.3", "1.2a", 1},
      {"1.10", "1.9", 1},
      {"1.02", "1.1", -1},
      {"1.2_git20240101", "1.2", 1},
      {"1.2_rc1", "1.2_rc2", -1},
      {"1.2-r10", "1.2-r9", 1},
      {"1.36.1-r5", "1.36.1-r6", -1},
      {"3.1.4-r1", "3.1.4-r1", 0},
      {"1.2~abc1", "1.2", 0},
      {"2", "1.999", 1},
  };
  check_table(MU_VER_APK, t, sizeof t / sizeof *t);
  const char *bad[] = {"", "a1", "1..2", "1.2_foo", "1.2-1", "1.2-r", "1.2 ", "1.2AB", "1.2~", ".1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (mu_ver_valid(MU_VER_APK, bad[i])) fail_msg("apk: \"%s\" accepted", bad[i]);
}

static void test_pep440_table(void **state) {
  (void)state;
  static const vcase t[] = {
      {"1.0.dev1", "1.0a1", -1},     {"1.0a1", "1.0", -1},
      {"1.0", "1.0.post1", -1},      {"1.0.dev1", "1.0", -1},
      {"1.0a1.dev1", "1.0a1", -1},   {"1.0a1", "1.0b1", -1},
      {"1.0b2", "1.0rc1", -1},       {"1.0rc1", "1.0c1", 0},
      {"1.0", "1.0.0", 0},           {"1!0.1", "2.0", 1},
      {"1.0+local", "1.0", 1},       {"1.0+abc", "1.0+1", -1},
      {"1.0+1.2", "1.0+1.10", -1},   {"1.0.post1.dev1", "1.0.post1", -1},
      {"1.0-1", "1.0.post1", 0},     {"v1.0", "1.0", 0},
      {"1.0alpha1", "1.0a1", 0},     {"1.0-r1", "1.0.post1", 0},
      {"1.0.post1", "1.1.dev1", -1}, {"2.31.0", "2.32.0", -1},
      {"1.0RC1", "1.0rc1", 0},       {"1.0a", "1.0a0", 0},
      {"1.0.dev", "1.0.dev0", 0},
  };
  check_table(MU_VER_PEP440, t, sizeof t / sizeof *t);
  const char *bad[] = {"", "a", "1.0+", "1.0+a..b", "1.0.", "1.0foo", "1.0-", "1 0", "1.0+a b", "!1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (mu_ver_valid(MU_VER_PEP440, bad[i])) fail_msg("PEP 440: \"%s\" accepted", bad[i]);
}

static void test_bad_version_refused(void **state) {
  (void)state;
  int c = 7;
  mu_err err = {0};
  assert_int_equal(mu_ver_compare(MU_VER_DEB, "1.0", "1.0-", &c, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "\"1.0-\" is not a valid Debian version"));
  assert_int_equal(c, 7);
}

/* ---- against dpkg ---- */

static int dpkg_says(const char *a, const char *op, const char *b) {
  char *argv[] = {"dpkg", "--compare-versions", (char *)a, (char *)op, (char *)b, NULL};
  pid_t pid;
  if (posix_spawnp(&pid, "dpkg", NULL, NULL, argv, environ) != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void gen(unsigned *seed, char *out, size_t cap) {
  static const char up[] = "0123456789.+~ab", rev[] = "0123456789.+~a";
  size_t n = 0;
  if (rand_r(seed) % 5 == 0) n += (size_t)snprintf(out, cap, "%d:", rand_r(seed) % 3);
  out[n++] = (char)('0' + rand_r(seed) % 10);
  int ul = rand_r(seed) % 7;
  for (int i = 0; i < ul; i++) out[n++] = up[rand_r(seed) % (sizeof up - 1)];
  if (rand_r(seed) % 2) {
    out[n++] = '-';
    int rl = 1 + rand_r(seed) % 4;
    for (int i = 0; i < rl; i++) out[n++] = rev[rand_r(seed) % (sizeof rev - 1)];
  }
  out[n] = '\0';
}

static void test_deb_against_dpkg(void **state) {
  (void)state;
  if (dpkg_says("1", "lt", "2") != 0) skip();
  unsigned seed = 1912;
  int checked = 0;
  for (int i = 0; i < 700; i++) {
    char a[64], b[64];
    gen(&seed, a, sizeof a);
    if (rand_r(&seed) % 3 == 0) { /* near pairs: b is a with one change */
      snprintf(b, sizeof b, "%s", a);
      size_t l = strlen(b);
      b[l - 1] = "0~9a+."[rand_r(&seed) % 6];
      if (!mu_ver_valid(MU_VER_DEB, b)) gen(&seed, b, sizeof b);
    } else {
      gen(&seed, b, sizeof b);
    }
    if (!mu_ver_valid(MU_VER_DEB, a) || !mu_ver_valid(MU_VER_DEB, b)) continue;
    int want = dpkg_says(a, "lt", b) == 0 ? -1 : dpkg_says(a, "eq", b) == 0 ? 0 : 1;
    int got = 99;
    assert_int_equal(mu_ver_compare(MU_VER_DEB, a, b, &got, NULL), 0);
    if (got != want) fail_msg("compare(%s, %s) = %d, dpkg says %d", a, b, got, want);
    checked++;
  }
  assert_true(checked > 600);
}

/* ---- PEP 440 against `packaging` (pip's vendored copy in Debian's python3) ---- */

static void gen_pep(unsigned *seed, char *out, size_t cap) {
  static const char *const pre[] = {"a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "A", "RC"};
  static const char *const post[] = {".post", "post", "-post", ".rev", "r", "-"};
  static const char *const sep[] = {"", ".", "-", "_"};
  size_t n = 0;
#define ADD(...) n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__)
  if (rand_r(seed) % 8 == 0) ADD("v");
  if (rand_r(seed) % 6 == 0) ADD("%d!", rand_r(seed) % 3);
  int parts = 1 + rand_r(seed) % 4;
  for (int i = 0; i < parts; i++) ADD("%s%d", i ? "." : "", rand_r(seed) % 4 == 0 ? 0 : rand_r(seed) % 12);
  if (rand_r(seed) % 3 == 0) {
    ADD("%s%s", sep[rand_r(seed) % 4], pre[rand_r(seed) % 10]);
    if (rand_r(seed) % 4) ADD("%s%d", rand_r(seed) % 3 ? "" : ".", rand_r(seed) % 4);
  }
  if (rand_r(seed) % 4 == 0) {
    const char *p = post[rand_r(seed) % 6];
    ADD("%s%d", p, rand_r(seed) % 3);
  }
  if (rand_r(seed) % 4 == 0) ADD("%sdev%d", sep[rand_r(seed) % 3], rand_r(seed) % 3);
  if (rand_r(seed) % 6 == 0) ADD("+%s", rand_r(seed) % 2 ? "ubuntu.1" : rand_r(seed) % 2 ? "7" : "abc.01");
#undef ADD
}

static void test_pep440_against_packaging(void **state) {
  (void)state;
  if (access("/usr/bin/python3", X_OK) != 0) skip();
  char path[] = "/tmp/pep440_pairs.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  enum { N = 3000 };
  static char a[N][96], b[N][96];
  unsigned seed = 440;
  for (int i = 0; i < N; i++) {
    gen_pep(&seed, a[i], sizeof a[i]);
    if (i % 3 == 0) snprintf(b[i], sizeof b[i], "%s", a[i]), b[i][strlen(b[i]) - 1] = (char)('0' + i % 10);
    else gen_pep(&seed, b[i], sizeof b[i]);
    fprintf(f, "%s %s\n", a[i], b[i]);
  }
  fclose(f);
  char cmd[600];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c 'import sys\n"
           "from pip._vendor.packaging.version import Version, InvalidVersion\n"
           "def v(s):\n"
           "  try: return Version(s)\n"
           "  except InvalidVersion: return None\n"
           "for l in open(sys.argv[1]):\n"
           "  x, y = l.split()\n"
           "  p, q = v(x), v(y)\n"
           "  print(\"bad\" if p is None or q is None else (p > q) - (p < q))' %s",
           path);
  FILE *py = popen(cmd, "r");
  assert_non_null(py);
  char line[32];
  int checked = 0;
  for (int i = 0; i < N && fgets(line, sizeof line, py) != NULL; i++) {
    bool ours_ok = mu_ver_valid(MU_VER_PEP440, a[i]) && mu_ver_valid(MU_VER_PEP440, b[i]);
    if (strncmp(line, "bad", 3) == 0) {
      if (ours_ok) fail_msg("PEP 440: packaging refuses \"%s\" or \"%s\", we accept both", a[i], b[i]);
      continue;
    }
    if (!ours_ok) fail_msg("PEP 440: packaging accepts \"%s\" and \"%s\", we refuse one", a[i], b[i]);
    int want = atoi(line), got = 99;
    assert_int_equal(mu_ver_compare(MU_VER_PEP440, a[i], b[i], &got, NULL), 0);
    if (got != want) fail_msg("PEP 440: compare(%s, %s) = %d, packaging says %d", a[i], b[i], got, want);
    checked++;
  }
  int st = pclose(py);
  unlink(path);
  if (st != 0 && checked == 0) skip(); /* no packaging module */
  assert_true(checked > 2000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deb_table),        cmocka_unit_test(test_apk_table),
      cmocka_unit_test(test_pep440_table),     cmocka_unit_test(test_bad_version_refused),
      cmocka_unit_test(test_deb_against_dpkg), cmocka_unit_test(test_pep440_against_packaging),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
