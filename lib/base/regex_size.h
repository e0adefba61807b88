/* A bound on the work a user's POSIX extended regular expression costs to compile.
 *
 * glibc's regcomp() expands a bounded repetition by copying its operand: "(a{1000}){1000}"
 * builds a million nodes and takes seconds (found by http_fuzz). Patterns arrive from job
 * specs and command lines, so before compiling one we estimate the size of its expansion —
 * every atom counts 1, a group counts the sum of its branches, "{m,n}" multiplies its operand
 * by max(m,n)+1, "+" by 2 — and refuse a pattern whose estimate passes a budget. The estimate
 * over-counts a little and never under-counts the copies glibc makes. */
#ifndef MUSTER_LIB_BASE_REGEX_SIZE_H
#define MUSTER_LIB_BASE_REGEX_SIZE_H

#include <stddef.h>

/* The default budget: ample for any pattern a person writes (a UUID with its {8}-{4}-{4}
 * groups is about 40; an IPv4 address with {1,3} four times is about 20). Compile time is
 * worse than linear when the copies can match empty: "((a{0}){99}){99}" (10,000 units) took
 * 7.6 s here, "(a?){5000}" 0.8 s; at 2,000 units the worst case measured was 0.3 s. */
#define MU_REGEX_MAX_UNITS 2000
#define MU_REGEX_MAX_DEPTH 64

/* 0 when pattern's expansion fits max_units and its groups nest at most MU_REGEX_MAX_DEPTH
 * deep; otherwise -1 with why (cap bytes) naming the problem. Syntax errors are left to
 * regcomp(): this only measures. */
int mu_regex_check_size(const char *pattern, size_t max_units, char *why, size_t cap);

#endif
