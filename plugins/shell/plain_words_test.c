/* mu_shell_plain_words: which scripts skip the shell, and the argv they become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "plugins/shell/plain_words.h"

static size_t split(const char *script, const char **words) {
  static char buf[256];
  return mu_shell_plain_words(script, buf, sizeof buf, words, 4);
}

static void test_plain_commands_split_like_sh(void **state) {
  (void)state;
  const char *w[5];
  assert_int_equal(split("true", w), 1);
  assert_string_equal(w[0], "true");
  assert_null(w[1]);
  assert_int_equal(split("  ls  -l\t/tmp/a_b.c ", w), 3);
  assert_string_equal(w[0], "ls");
  assert_string_equal(w[1], "-l");
  assert_string_equal(w[2], "/tmp/a_b.c");
  assert_null(w[3]);
  assert_int_equal(split("dd if=/dev/zero count=1 bs=1k", w), 4);
  assert_string_equal(w[1], "if=/dev/zero");
  assert_int_equal(split("/usr/bin/env user@host:8080,x+y%z", w), 2);
}

static void test_shell_syntax_needs_the_shell(void **state) {
  (void)state;
  const char *w[5];
  const char *need_sh[] = {
      "",        "   ",    "echo hi",  "exit 3",    "cd /tmp",  "export A",  ". ./x",    ": x",      "kill 1",
      "A=1 env", "ls *.c", "ls ~",     "ls $HOME",  "ls 'a b'", "ls \"a\"",  "a | b",    "a; b",     "a && b",
      "a > f",   "a < f",  "a\nb",     "a # c",     "ls a\\ b", "f(){ x; }", "ls {a,b}", "ls `pwd`", "a &",
      "ls [ab]", "ls ?",   "printf x", "test -f x", "time ls",  "a b c d e"}; /* the last: more than 4 words */
  for (size_t i = 0; i < sizeof need_sh / sizeof *need_sh; i++) {
    if (split(need_sh[i], w) != 0) fail_msg("\"%s\" was taken as plain", need_sh[i]);
  }
  char buf[4];
  assert_int_equal(mu_shell_plain_words("hostname", buf, sizeof buf, w, 4), 0); /* does not fit */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_commands_split_like_sh),
      cmocka_unit_test(test_shell_syntax_needs_the_shell),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
