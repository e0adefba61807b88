/* MU_ASSERT: an invariant check that stays on in every build (tests, -O2, release). For a
 * broken invariant that would otherwise corrupt state — a count going below zero, a journal
 * sequence running backwards, a bounded queue past its bound — stopping the process with the
 * place and the condition beats carrying on with wrong books. Not for input checks: bad input
 * is an error return with a message (err.h). Costs one predictable branch. */
#ifndef MU_ASSERT_H
#define MU_ASSERT_H

/* Writes "assertion failed: COND (FILE:LINE, in FUNC)" to stderr and aborts. */
void mu_assert_fail(const char *cond, const char *file, int line, const char *func) __attribute__((noreturn, cold));

#define MU_ASSERT(cond)                                                                    \
  do {                                                                                     \
    if (__builtin_expect(!(cond), 0)) mu_assert_fail(#cond, __FILE__, __LINE__, __func__); \
  } while (0)

#endif
