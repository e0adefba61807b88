/* Unit tests of the Musterfile parser: every instruction's forms, continuations, comments,
 * ARG/ENV substitution per Dockerfile rules, and each refusal naming its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "plugins/container/musterfile.h"

static mu_musterfile parse_ok(const char *text, const char *const *args) {
  mu_musterfile mf;
  mu_err err = {0};
  if (mu_musterfile_parse(text, strlen(text), args, NULL, &mf, &err) != 0) fail_msg("%s", err.msg);
  return mf;
}

static void parse_bad(const char *text, int code, const char *needle) {
  mu_musterfile mf;
  mu_err err = {0};
  int rc = mu_musterfile_parse(text, strlen(text), NULL, NULL, &mf, &err);
  if (rc != code) fail_msg("rc %d (want %d) for:\n%s\n%s", rc, code, text, err.msg);
  if (strstr(err.msg, needle) == NULL) fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_forms(void **state) {
  (void)state;
  mu_musterfile mf = parse_ok(
      "# syntax=docker/dockerfile:1\n"
      "FROM 127.0.0.1:5000/base:1\n"
      "\n"
      "# a comment\n"
      "COPY --chown=1000:1000 app.sh /w/\n"
      "RUN echo one && \\\n"
      "  # a comment inside\n"
      "    echo two\n"
      "RUN [\"/bin/echo\", \"exec form\"]\n"
      "ENV A=1 B=\"two words\"\n"
      "ENV LEGACY the rest of it\n"
      "WORKDIR /w\n"
      "USER app\n"
      "LABEL org.example.a=x \"b c\"=d\n"
      "EXPOSE 80 53/udp\n"
      "ENTRYPOINT [\"/bin/sh\", \"/w/app.sh\"]\n"
      "cmd --help\n",
      NULL);
  assert_int_equal(mf.n_steps, 12);
  assert_int_equal(mf.steps[0].kind, MU_MF_FROM);
  assert_int_equal(mf.steps[0].line, 2);
  assert_string_equal(mf.steps[0].args[0], "127.0.0.1:5000/base:1");
  assert_int_equal(mf.steps[1].kind, MU_MF_COPY);
  assert_string_equal(mf.steps[1].chown, "1000:1000");
  assert_int_equal(mf.steps[1].n_args, 2);
  assert_string_equal(mf.steps[1].args[0], "app.sh");
  assert_string_equal(mf.steps[1].args[1], "/w/");
  assert_int_equal(mf.steps[2].line, 6);
  assert_true(mf.steps[2].shell_form);
  assert_string_equal(mf.steps[2].args[0], "/bin/sh");
  assert_string_equal(mf.steps[2].args[2], "echo one &&  echo two");
  assert_false(mf.steps[3].shell_form);
  assert_string_equal(mf.steps[3].args[1], "exec form");
  assert_int_equal(mf.steps[4].n_args, 4);
  assert_string_equal(mf.steps[4].args[3], "two words");
  assert_string_equal(mf.steps[5].args[0], "LEGACY");
  assert_string_equal(mf.steps[5].args[1], "the rest of it");
  assert_string_equal(mf.steps[8].args[2], "b c");
  assert_string_equal(mf.steps[9].args[0], "80/tcp");
  assert_string_equal(mf.steps[9].args[1], "53/udp");
  assert_int_equal(mf.steps[11].kind, MU_MF_CMD);
  assert_string_equal(mf.steps[11].args[2], "--help");
  mu_musterfile_free(&mf);
}

static void test_substitution(void **state) {
  (void)state;
  const char *args[] = {"VER=2", "UNUSED=x", NULL};
  mu_musterfile mf = parse_ok(
      "ARG REG=127.0.0.1:5000\n"
      "FROM ${REG}/base:1\n"
      "ARG REG\n"
      "ARG VER=1\n"
      "ARG NONE\n"
      "ENV DIR=/opt/app V=$VER\n"
      "WORKDIR $DIR/sub\n"
      "COPY a.txt ${DIR}/\n"
      "COPY [\"b.txt\", \"${DIR}/b\"]\n"
      "LABEL v=${VER} w=${NONE:-dflt} x=${VER:+set} y='$VER' z=\\$VER\n"
      "RUN echo $DIR\n",
      args);
  assert_string_equal(mf.steps[1].args[0], "127.0.0.1:5000/base:1");
  assert_string_equal(mf.steps[2].args[1], "127.0.0.1:5000"); /* the pre-FROM default */
  assert_string_equal(mf.steps[3].args[1], "2");              /* --build-arg wins */
  assert_null(mf.steps[4].args[1]);
  assert_string_equal(mf.steps[5].args[3], "2");
  assert_string_equal(mf.steps[6].args[0], "/opt/app/sub");
  assert_string_equal(mf.steps[7].args[1], "/opt/app/");
  assert_string_equal(mf.steps[8].args[1], "/opt/app/b");
  assert_string_equal(mf.steps[9].args[1], "2");
  assert_string_equal(mf.steps[9].args[3], "dflt");
  assert_string_equal(mf.steps[9].args[5], "set");
  assert_string_equal(mf.steps[9].args[7], "$VER");
  assert_string_equal(mf.steps[9].args[9], "$VER");
  assert_string_equal(mf.steps[10].args[2], "echo $DIR"); /* RUN: left to the shell */
  assert_int_equal(mf.n_unused_args, 1);
  assert_string_equal(mf.unused_args[0], "UNUSED");
  mu_musterfile_free(&mf);
}

static void test_sources(void **state) {
  (void)state;
  mu_musterfile mf = parse_ok("FROM r/b:1\nCOPY ./a/./b/ /x\nCOPY a/../c /y\nCOPY / /z\nADD ./f /f\n", NULL);
  assert_string_equal(mf.steps[1].args[0], "a/b");
  assert_string_equal(mf.steps[2].args[0], "c");
  assert_string_equal(mf.steps[3].args[0], ".");
  assert_int_equal(mf.steps[4].kind, MU_MF_ADD);
  mu_musterfile_free(&mf);
}

static void test_refusals(void **state) {
  (void)state;
  parse_bad("FROM a/b:1\nRUN true\nVOLUME /data\n", MU_ENOTSUP, "line 3: VOLUME is not supported");
  parse_bad("FROM a/b:1\n\nFOO bar\n", MU_EINVAL, "line 3: unknown instruction FOO");
  parse_bad("FROM a/b:1\nADD https://example.com/x.tgz /x\n", MU_ENOTSUP, "line 2: ADD of a URL");
  parse_bad("FROM a/b:1\nCOPY ../secret /x\n", MU_EPERM, "line 2: COPY source \"../secret\" is outside");
  parse_bad("FROM a/b:1\nCOPY a/../../x /x\n", MU_EPERM, "outside the build context");
  parse_bad("FROM a/b:1\nCOPY --from=builder /x /x\n", MU_ENOTSUP, "line 2: COPY flag --from=builder");
  parse_bad("FROM a/b:1\nCOPY --chown=app /x /x\n", MU_EINVAL, "numeric UID[:GID] only");
  parse_bad("FROM a/b:1\nCOPY onlyone\n", MU_EINVAL, "line 2: COPY needs at least one source");
  parse_bad("FROM a/b:1\nFROM c/d:1\n", MU_ENOTSUP, "line 2: a second FROM");
  parse_bad("FROM a/b:1 AS x\n", MU_ENOTSUP, "multi-stage");
  parse_bad("FROM scratch\n", MU_ENOTSUP, "FROM scratch");
  parse_bad("RUN true\n", MU_EINVAL, "line 1: RUN before FROM");
  parse_bad("# only a comment\n", MU_EINVAL, "no FROM");
  parse_bad("FROM a/b:1\nENV A=\"open\n", MU_EINVAL, "line 2: unterminated double quote");
  parse_bad("FROM a/b:1\nENV A=${B\n", MU_EINVAL, "malformed ${...}");
  parse_bad("FROM a/b:1\nENV 1A=x\n", MU_EINVAL, "not a valid variable name");
  parse_bad("FROM a/b:1\nEXPOSE 99999\n", MU_EINVAL, "EXPOSE \"99999\"");
  parse_bad("FROM a/b:1\nEXPOSE 80/xyz\n", MU_EINVAL, "EXPOSE \"80/xyz\"");
  parse_bad("FROM a/b:1\nWORKDIR a b\n", MU_EINVAL, "WORKDIR takes one value");
  parse_bad("FROM a/b:1\nRUN\n", MU_EINVAL, "RUN needs a command");
  mu_musterfile mf;
  mu_err err = {0};
  const char *bad_arg[] = {"NOEQUALS", NULL};
  assert_int_equal(mu_musterfile_parse("FROM a/b:1\n", 11, bad_arg, NULL, &mf, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "--build-arg \"NOEQUALS\""));
  mu_mf_limits lim = {.max_steps = 2};
  const char *three = "FROM a/b:1\nRUN a\nRUN b\n";
  assert_int_equal(mu_musterfile_parse(three, strlen(three), NULL, &lim, &mf, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "line 3: more than 2 instructions"));
  lim = (mu_mf_limits){.max_bytes = 10};
  assert_int_equal(mu_musterfile_parse(three, strlen(three), NULL, &lim, &mf, &err), MU_ENOSPC);
  assert_int_equal(mu_musterfile_parse("FROM a\0b", 8, NULL, NULL, &mf, &err), MU_EINVAL);
}

static void test_continuation_at_end(void **state) {
  (void)state;
  mu_musterfile mf = parse_ok("FROM a/b:1\nRUN echo a \\\n\n  b \\", NULL);
  assert_int_equal(mf.n_steps, 2);
  assert_string_equal(mf.steps[1].args[2], "echo a  b");
  mu_musterfile_free(&mf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forms),    cmocka_unit_test(test_substitution),        cmocka_unit_test(test_sources),
      cmocka_unit_test(test_refusals), cmocka_unit_test(test_continuation_at_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
